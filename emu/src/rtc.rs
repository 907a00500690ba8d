//! RTC memory and deep sleep.
//!
//! RTC memory is 192 blocks of 4 bytes at 0x60001000 (blocks 0..63 the system's, 64..191
//! the user's). On QEMU's `sim` machine that address range is plain RAM, so the emulation
//! keeps the bytes exactly where the chip has them, and the harness preloads the user area
//! from a file (`-device loader,...,addr=0x60001100`), as if the chip had kept it powered
//! through a deep sleep. A deep sleep writes the user area to `rtc-out.bin` in QEMU's working
//! directory and ends the run; the harness feeds that file to the next boot.

use core::ffi::c_void;

use crate::emulate;
use crate::semihosting::{self, say};

/// Address of RTC block 0.
const RTC_BASE: usize = 0x6000_1000;
/// Blocks in RTC memory.
const BLOCKS: u32 = 192;
/// First block of the user area.
const FIRST_USER_BLOCK: u32 = 64;
/// QEMU exit status: the firmware entered deep sleep.
pub const EXIT_DEEP_SLEEP: u32 = 11;

fn valid_range(block: u8, buffer: *const c_void, bytes: u16) -> bool {
    let block = u32::from(block);
    !buffer.is_null()
        && (buffer as usize) % 4 == 0
        && bytes % 4 == 0
        && block < BLOCKS
        && block * 4 + u32::from(bytes) <= BLOCKS * 4
}

emulate! {
    /// Copies `bytes` from RTC memory starting at `block`, as aligned 32-bit words (the only
    /// access the hardware allows). Fails like the SDK for a bad block, buffer or length.
    fn system_rtc_mem_read(block: u8, buffer: *mut c_void, bytes: u16) -> bool {
        if !valid_range(block, buffer, bytes) {
            return false;
        }
        let words = usize::from(bytes) / 4;
        for i in 0..words {
            // SAFETY: the range check keeps the source inside RTC memory (plain RAM on the sim
            // machine) and the destination inside the caller's aligned buffer of `bytes`.
            unsafe {
                let word = core::ptr::read_volatile((RTC_BASE as *const u32).add(usize::from(block) + i));
                core::ptr::write_volatile((buffer as *mut u32).add(i), word);
            }
        }
        true
    }
}

emulate! {
    /// Copies `bytes` into RTC memory starting at `block`; same rules as the read.
    fn system_rtc_mem_write(block: u8, buffer: *const c_void, bytes: u16) -> bool {
        if !valid_range(block, buffer, bytes) {
            return false;
        }
        let words = usize::from(bytes) / 4;
        for i in 0..words {
            // SAFETY: as in system_rtc_mem_read, with source and destination swapped.
            unsafe {
                let word = core::ptr::read_volatile((buffer as *const u32).add(i));
                core::ptr::write_volatile((RTC_BASE as *mut u32).add(usize::from(block) + i), word);
            }
        }
        true
    }
}

/// The user area's bytes, read a word at a time.
fn user_area() -> [u8; 512] {
    let mut bytes = [0u8; 512];
    for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
        // SAFETY: blocks 64..191 are inside RTC memory (plain RAM on the sim machine).
        let word = unsafe {
            core::ptr::read_volatile((RTC_BASE as *const u32).add(FIRST_USER_BLOCK as usize + i))
        };
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

/// Writes the user area to `rtc-out.bin` so the harness can start the next boot with it.
pub(crate) fn save_user_area() {
    let flags = semihosting::O_WRONLY | semihosting::O_CREAT | semihosting::O_TRUNC;
    match semihosting::open(c"rtc-out.bin", flags) {
        Some(fd) => {
            if !semihosting::write_all(fd, &user_area()) {
                say!("could not write rtc-out.bin");
            }
            semihosting::close(fd);
        }
        None => say!("could not create rtc-out.bin"),
    }
}

/// The longest sleep the SDK accepts: its RTC tick count must fit 31 bits (M39). The tick is
/// about 6 us (the RTC clock's calibration varies per chip; this is the model's value).
pub const MAX_DEEP_SLEEP_US: u64 = (1 << 31) * 6;

emulate! {
    /// Deep sleep 100 ms after the call (M37): RTC memory is kept (saved for the next boot),
    /// everything else is lost. Refused for a time the RTC counter cannot hold (M39).
    fn system_deep_sleep(time_in_us: u64) -> bool {
        if time_in_us > MAX_DEEP_SLEEP_US {
            say!("system_deep_sleep({time_in_us}) refused: too long for the RTC counter");
            return false;
        }
        say!("system_deep_sleep requested: sleeping in 100 ms");
        crate::sdk::arm_deep_sleep(time_in_us);
        true
    }
}

emulate! {
    /// Accepts the options the SDK accepts (0, 1, 2, 4).
    fn system_deep_sleep_set_option(option: u8) -> bool {
        matches!(option, 0 | 1 | 2 | 4)
    }
}
