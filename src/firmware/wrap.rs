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
