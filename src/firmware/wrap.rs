//! Safe replacements for the SDK's persistent setters, installed by the link (`--wrap`).
//!
//! `cargo xtask build` links with `--wrap=NAME` for every setter that writes the SDK's
//! parameter block to flash. Every reference to `NAME` in any object, the SDK's own C
//! libraries included, then resolves to `__wrap_NAME` here instead, and nothing in the image
//! can reach the original. Setters with a RAM-only twin forward to it; the others refuse.
//! `cargo xtask test` checks the linked ELF for relocations against the original names.

// One `__wrap_` function for each name in `wifi_sys::PERSISTENT_SETTERS`.

/// `wifi_station_set_config` -> the RAM-only `wifi_station_set_config_current`.
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_wifi_station_set_config(config: *mut wifi_sys::station_config) -> bool {
    warn!("persistent station setter redirected to _current");
    // SAFETY: same contract as the wrapped function: the caller passes a station_config.
    unsafe { wifi_sys::wifi_station_set_config_current(config) }
}

/// `wifi_set_opmode` -> `wifi_set_opmode_current`.
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_wifi_set_opmode(opmode: u8) -> bool {
    // SAFETY: plain setter.
    unsafe { wifi_sys::wifi_set_opmode_current(opmode) }
}

/// `wifi_softap_set_config` -> `wifi_softap_set_config_current`.
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_wifi_softap_set_config(config: *mut wifi_sys::softap_config) -> bool {
    // SAFETY: same contract as the wrapped function.
    unsafe { wifi_sys::wifi_softap_set_config_current(config) }
}

/// Auto-connect is a flash setting: refused (ramkey connects explicitly).
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_wifi_station_set_auto_connect(set: u8) -> bool {
    let _ = set;
    false
}

/// `system_restore` rewrites the parameter block: refused (ramkey scrubs it instead).
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_system_restore() {}

/// The PHY mode is only settable persistently: refused.
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_wifi_set_phy_mode(mode: u32) -> bool {
    let _ = mode;
    false
}

/// The AP cache lives in flash: refused.
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_wifi_station_ap_number_set(number: u8) -> bool {
    let _ = number;
    false
}

// The SDK's own saves (wifi_sys::SDK_SAVES), called by libwpa while connecting. With the SDK's
// `PmkCurrent` flag set they copy the station config, password and PMK into the stored block
// and save it (docs/sdk-model.md, M22-M25). ramkey clears the flag in `user_init` (M20), but it
// cannot read it: it is a section-local byte of libmain. So the saves are refused outright,
// whatever the flag says; what they would have done in RAM (the AP cache's PMK and channel,
// the station channel byte) is lost, which costs at most a slower reconnect. Built with
// `--features canary-no-sdk-save-wrap`, the link leaves them unwrapped.

#[cfg(not(feature = "canary-no-sdk-save-wrap"))]
mod sdk_saves {
    use crate::firmware::global::Global;

    /// Refused calls in this boot.
    static REFUSED: Global<u32> = Global::new(0);

    fn refuse(name: &str) {
        let count = REFUSED.with(|r| {
            *r = r.saturating_add(1);
            *r
        });
        // Once per boot is enough: every association calls two of them.
        if count == 1 {
            info!("{} refused: the SDK's own saves never run", name);
        }
    }

    /// `wifi_station_save_pmk2cache`: refused.
    #[unsafe(no_mangle)]
    pub extern "C" fn __wrap_wifi_station_save_pmk2cache() {
        refuse("wifi_station_save_pmk2cache");
    }

    /// `wifi_station_save_bssid`: refused.
    #[unsafe(no_mangle)]
    pub extern "C" fn __wrap_wifi_station_save_bssid() {
        refuse("wifi_station_save_bssid");
    }

    /// `wifi_station_save_ap_channel`: refused.
    #[unsafe(no_mangle)]
    pub extern "C" fn __wrap_wifi_station_save_ap_channel(channel: u8) {
        let _ = channel;
        refuse("wifi_station_save_ap_channel");
    }
}
