//! What the test harness tells the emulator: a small mailbox loaded into memory by QEMU.
//!
//! `cargo xtask` writes a little-endian block of u32 words and QEMU loads it with
//! `-device loader,file=...,addr=MAILBOX,force-raw=on`. On the `sim` machine that address is
//! plain RAM; on a real ESP8266 nothing is there, which is fine: this crate never runs there.
//! A missing or malformed mailbox means the defaults (a power-on boot).
//!
//! | word | meaning |
//! |---|---|
//! | 0 | magic `RKEM` (0x4D454B52) |
//! | 1 | layout version (1) |
//! | 2 | reset reason the SDK reports (0..6) |
//! | 3 | flags (reserved, 0) |

/// Address of the mailbox (in the sim machine's plain-RAM peripheral space).
pub const MAILBOX: usize = 0x6000_3000;
const MAGIC: u32 = 0x4D45_4B52;
const VERSION: u32 = 1;

/// The harness settings for this run.
#[derive(Clone, Copy)]
pub struct Settings {
    /// Value of `rst_info.reason`.
    pub reset_reason: u32,
}

impl Settings {
    const DEFAULT: Settings = Settings { reset_reason: 0 };

    /// Reads the mailbox.
    pub fn read() -> Settings {
        let word = |i: usize| -> u32 {
            // SAFETY: MAILBOX..MAILBOX+16 is RAM on QEMU's sim machine, which is the only
            // machine this crate is built for; aligned 32-bit volatile reads.
            unsafe { core::ptr::read_volatile((MAILBOX as *const u32).add(i)) }
        };
        if word(0) != MAGIC || word(1) != VERSION {
            return Settings::DEFAULT;
        }
        Settings { reset_reason: word(2) }
    }
}
