//! The flash firewall's glue: the SDK's `spi_flash_*` calls, wrapped by the link.
//!
//! `cargo xtask build` links with `--wrap` for every name in `wifi_sys::FIREWALLED`, so every
//! reference to `spi_flash_write`, `spi_flash_erase_sector` and `spi_flash_read` in any object
//! (the SDK's libraries, the emulated SDK, ramkey itself) lands here. The decisions are the
//! portable [`crate::firewall`]'s; this module gathers the secrets it must look for, moves the
//! bytes, and reports what it did. Built with `--features canary-no-firewall` the link leaves
//! these wrappers out, which is how `cargo xtask test` shows the firewall is what keeps flash
//! clean in its scenario.

use zeroize::Zeroize;

use super::global::Global;
use super::rtc::SdkRtc;
use crate::firewall::{Firewall, Verdict};
use crate::rtc_record::{self, NetworkKey};

const LAYOUT: crate::flash_layout::Layout = crate::build_config::FLASH_SIZE.layout();

static FIREWALL: Global<Firewall> = Global::new(Firewall::new(LAYOUT.system_parameter.offset));

/// The source buffer of the last cleaned write: the SDK reads that write back at once and
/// compares it with this buffer (`docs/sdk-model.md`, M7), which it still owns.
static PENDING_SOURCE: Global<*const u8> = Global::new(core::ptr::null());

const SPI_FLASH_RESULT_ERR: u32 = 1;

/// Writes 64 lowercase (or uppercase) hex digits of `key` into `out`.
fn hex(key: &[u8; 32], upper: bool, out: &mut [u8; 64]) {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    for (i, byte) in key.iter().enumerate() {
        out[2 * i] = digits[usize::from(byte >> 4)];
        out[2 * i + 1] = digits[usize::from(byte & 15)];
    }
}

/// Runs `f` with every secret ramkey knows of right now: the stored network's PSK (raw, and in
/// both hex cases), a key under test in setup, and the setup access point's passphrase. Every
/// copy made here is wiped before returning.
fn with_known_secrets<R>(f: impl FnOnce(&[&[u8]]) -> R) -> R {
    let mut stored = [0u8; 32];
    let mut testing = [0u8; 32];
    let mut have_stored = false;
    let mut have_testing = false;
    if let Ok(credentials) = rtc_record::load(&SdkRtc)
        && let NetworkKey::Psk(psk) = &credentials.key
    {
        stored.copy_from_slice(psk.expose_secret());
        have_stored = true;
    }
    super::setup::with_key_under_test(|psk| {
        testing.copy_from_slice(psk.expose_secret());
        have_testing = true;
    });
    let mut hex_forms = [[0u8; 64]; 4];
    hex(&stored, false, &mut hex_forms[0]);
    hex(&stored, true, &mut hex_forms[1]);
    hex(&testing, false, &mut hex_forms[2]);
    hex(&testing, true, &mut hex_forms[3]);
    let identity = super::setup::read_identity_with(super::flash::REAL_READ).ok();
    let mut secrets: heapless::Vec<&[u8], 7> = heapless::Vec::new();
    if have_stored {
        let _ = secrets.push(&stored);
        let _ = secrets.push(&hex_forms[0]);
        let _ = secrets.push(&hex_forms[1]);
    }
    if have_testing {
        let _ = secrets.push(&testing);
        let _ = secrets.push(&hex_forms[2]);
        let _ = secrets.push(&hex_forms[3]);
    }
    if let Some(passphrase) = &identity {
        let _ = secrets.push(passphrase.expose_secret());
    }
    let result = f(&secrets);
    drop(secrets);
    stored.zeroize();
    testing.zeroize();
    for form in hex_forms.iter_mut() {
        form.zeroize();
    }
    result
}

/// `spi_flash_write`, cleaned.
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_spi_flash_write(address: u32, source: *mut u32, size: u32) -> u32 {
    if source.is_null() {
        // SAFETY: same contract as the wrapped function; the SDK's driver refuses it.
        return unsafe { wifi_sys::__real_spi_flash_write(address, source, size) };
    }
    // SAFETY: the SDK's contract for spi_flash_write: `source` is readable for `size` bytes
    // for the duration of the call; this module only reads it.
    let data = unsafe { core::slice::from_raw_parts(source as *const u8, size as usize) };
    let mut code = 0u32;
    let outcome = with_known_secrets(|secrets| {
        FIREWALL.with(|firewall| {
            firewall.write(address, data, secrets, &mut |at: u32, chunk: &[u8]| {
                let mut words = [0u32; 16];
                for (word, bytes) in words.iter_mut().zip(chunk.chunks(4)) {
                    let mut b = [0u8; 4];
                    b[..bytes.len()].copy_from_slice(bytes);
                    *word = u32::from_le_bytes(b);
                }
                // SAFETY: `words` is a 4-aligned buffer holding `chunk.len()` bytes.
                let result = unsafe {
                    wifi_sys::__real_spi_flash_write(at, words.as_mut_ptr(), chunk.len() as u32)
                };
                words.zeroize();
                if result == wifi_sys::SPI_FLASH_RESULT_OK {
                    Ok(())
                } else {
                    code = result;
                    Err(result)
                }
            })
        })
    });
    match outcome {
        Ok(Verdict::Unchanged) => 0,
        Ok(Verdict::Cleaned {
            fields,
            secrets,
            checksum_fixed,
        }) => {
            PENDING_SOURCE.with(|p| *p = source as *const u8);
            let checksum = if checksum_fixed {
                ", checksum kept valid"
            } else {
                ""
            };
            if fields + secrets > 0 {
                warn!(
                    "firewall: cleaned a flash write at {:#x}: {} credential fields blanked, {} secrets wiped{}",
                    address, fields, secrets, checksum
                );
            } else {
                info!(
                    "firewall: flash write at {:#x} stored with safe defaults{}",
                    address, checksum
                );
            }
            0
        }
        Ok(Verdict::Refused(why)) => {
            error!("firewall: refused a flash write at {:#x}: {}", address, why);
            SPI_FLASH_RESULT_ERR
        }
        Err(_) => code,
    }
}

/// `spi_flash_read`; the SDK's read-back of a cleaned write gets the bytes it asked to write.
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_spi_flash_read(address: u32, destination: *mut u32, size: u32) -> u32 {
    // SAFETY: same contract as the wrapped function.
    let result = unsafe { wifi_sys::__real_spi_flash_read(address, destination, size) };
    let answer = result == wifi_sys::SPI_FLASH_RESULT_OK
        && !destination.is_null()
        && FIREWALL.with(|firewall| firewall.read_back(address, size));
    if answer {
        let source = PENDING_SOURCE.with(|p| core::mem::replace(p, core::ptr::null()));
        if !source.is_null() {
            // SAFETY: `source` is the buffer the SDK passed to the write just before this read
            // (M7: `wifi_param_save_protect_with_check` writes, then reads back the same
            // address and length and compares with that buffer, which it still owns); the
            // destination is the SDK's buffer of `size` bytes. They do not overlap.
            unsafe {
                core::ptr::copy_nonoverlapping(source, destination as *mut u8, size as usize)
            };
        }
    }
    result
}

/// `spi_flash_erase_sector`: always allowed (an erase stores nothing), counted.
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_spi_flash_erase_sector(sector: u16) -> u32 {
    FIREWALL.with(|firewall| firewall.erase(sector));
    PENDING_SOURCE.with(|p| *p = core::ptr::null());
    // SAFETY: same contract as the wrapped function.
    unsafe { wifi_sys::__real_spi_flash_erase_sector(sector) }
}

/// What the firewall did in this boot.
pub(crate) fn counters() -> crate::firewall::Counters {
    FIREWALL.with(|firewall| firewall.counters())
}
