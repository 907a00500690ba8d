//! Restart and deep sleep, and the silence after asking for them.
//!
//! On the real SDK both calls only arm a 100 ms timer and return (`docs/sdk-model.md`, M37):
//! the firmware's code after the call runs, and so do its timers and callbacks until the
//! timer fires. Asking for either therefore first *halts* the firmware: every timer it armed
//! is disarmed, no new one can be armed, and every callback entry returns at once
//! ([`halted`]), so nothing ramkey does can race the SDK's own shutdown. A busy wait after
//! the call would keep the SDK's timer from ever firing (M38): ramkey never waits, it
//! returns to the SDK.
//!
//! `system_deep_sleep` refuses sleeps longer than its RTC counter holds (M39): then the
//! firmware restarts instead, which is trusted at the next boot like a wake.

use super::global::{Global, disarm_all};

static HALTED: Global<bool> = Global::new(false);

/// Whether a restart or deep sleep has been asked for: callbacks must do nothing more.
pub(crate) fn halted() -> bool {
    HALTED.with(|h| *h)
}

fn halt() {
    HALTED.with(|h| *h = true);
    disarm_all();
}

/// Deep sleep for `micros` microseconds with RF calibration as the SDK decides (option 1);
/// RTC memory survives, the next boot is a deep-sleep wake. Returns to the caller, who must
/// return to the SDK.
pub(crate) fn deep_sleep(micros: u64) {
    halt();
    // SAFETY: plain calls taking integers.
    let accepted = unsafe {
        wifi_sys::system_deep_sleep_set_option(1);
        wifi_sys::system_deep_sleep(micros)
    };
    if !accepted {
        error!(
            "deep sleep of {} s refused by the SDK: restarting instead",
            micros / 1_000_000
        );
        // SAFETY: plain call; the SDK restarts 100 ms later from its own timer.
        unsafe { wifi_sys::system_restart() };
    }
}

/// Restarts (the SDK does it 100 ms later). Returns to the caller, who must return to the SDK.
pub(crate) fn restart() {
    halt();
    // SAFETY: plain call; the SDK restarts from its own timer.
    unsafe { wifi_sys::system_restart() };
}
