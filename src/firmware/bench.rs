//! Measured regions for `cargo xtask bench`: instruction counts under QEMU.
//!
//! The xtask's QEMU plugin counts executed instructions between each call of
//! [`ramkey_bench_begin`] and the next call of [`ramkey_bench_end`]. The regions, in order:
//! 1. the boot decision as `user_init` runs it (read reset reason, boot state, RTC record and
//!    stored config, decide), with whatever the harness put in RTC memory;
//! 2. one PBKDF2-HMAC-SHA1 derivation (4096 rounds) of a WPA2 PSK.
//! Only built with the `bench` feature.

use crate::rtc_record::Ssid;
use crate::secret::Passphrase;

/// Start of a measured region (its address is given to the plugin).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ramkey_bench_begin() {
    // Distinct bodies, so the two markers can never be merged into one address.
    core::hint::black_box(1u32);
}

/// End of a measured region.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ramkey_bench_end() {
    core::hint::black_box(2u32);
}

/// Runs the measured regions, printing what each computed.
pub fn run(reason: u32) {
    ramkey_bench_begin();
    let (plan, record, _) = super::lifecycle::gather_and_decide(reason);
    ramkey_bench_end();
    info!(
        "bench: boot decision: record {:?} -> {}",
        record,
        plan.mode.name()
    );

    let (Ok(passphrase), Ok(ssid)) = (Passphrase::new(b"password"), Ssid::new(b"IEEE")) else {
        error!("bench: inputs rejected");
        return;
    };
    ramkey_bench_begin();
    let psk = crate::psk::derive(&passphrase, &ssid);
    ramkey_bench_end();
    let key = psk.expose_secret();
    // The IEEE 802.11i test vector's first bytes: a check that the work really ran.
    info!(
        "bench: pbkdf2 vector {}",
        if key[..4] == [0xf4, 0x2c, 0x6f, 0xc5] {
            "ok"
        } else {
            "WRONG"
        }
    );
}
