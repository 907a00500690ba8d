//! ramkey's own flash reads and erases.
//!
//! They call the firewall's wrappers by their own names rather than the SDK's: ramkey's object
//! then holds no reference to a name the link wraps, which GNU ld's Xtensa relaxation needs,
//! or it moves the wrapper's symbol into its literal pool (`xtask/src/firmware.rs`). The
//! firewall sees these calls exactly as it sees the SDK's. Without the firewall (its canary
//! build) they go to the SDK directly.

/// The SDK's `spi_flash_read` signature (flash offset, 4-aligned buffer, bytes).
pub(crate) type FlashRead = unsafe extern "C" fn(u32, *mut u32, u32) -> u32;

/// Reads `words.len() * 4` bytes at `address` (4-aligned); the SDK's result code.
pub(crate) fn read(address: u32, words: &mut [u32]) -> u32 {
    let bytes = (words.len() * 4) as u32;
    // SAFETY: `words` is a live, 4-aligned, writable buffer of exactly `bytes` bytes.
    unsafe { READ(address, words.as_mut_ptr(), bytes) }
}

/// Erases one sector; the SDK's result code.
pub(crate) fn erase(sector: u16) -> u32 {
    #[cfg(not(feature = "canary-no-firewall"))]
    return super::firewall::__wrap_spi_flash_erase_sector(sector);
    // SAFETY: plain call taking a sector number.
    #[cfg(feature = "canary-no-firewall")]
    return unsafe { wifi_sys::spi_flash_erase_sector(sector) };
}

/// The read ramkey uses.
#[cfg(not(feature = "canary-no-firewall"))]
pub(crate) const READ: FlashRead = read_through_firewall;

/// The read ramkey uses (no firewall in this canary build).
#[cfg(feature = "canary-no-firewall")]
pub(crate) const READ: FlashRead = wifi_sys::spi_flash_read;

#[cfg(not(feature = "canary-no-firewall"))]
unsafe extern "C" fn read_through_firewall(address: u32, buffer: *mut u32, bytes: u32) -> u32 {
    super::firewall::__wrap_spi_flash_read(address, buffer, bytes)
}

/// The SDK's own read, which the firewall itself uses (it must not see its own reads).
#[cfg(not(feature = "canary-no-firewall"))]
pub(crate) const REAL_READ: FlashRead = wifi_sys::__real_spi_flash_read;
