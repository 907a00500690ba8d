//! The firmware: SDK entry points and the thin glue between the SDK and the portable core.
//!
//! Only this module (and its children) may use `unsafe`; every block says why it holds.
//! It calls the SDK through `wifi-sys` and never declares SDK functions of its own, so the
//! persistent (flash-writing) setters that `wifi-sys` leaves out cannot be called from Rust.

#[cfg(feature = "bench")]
mod bench;
#[cfg(not(feature = "canary-no-firewall"))]
mod firewall;
mod flash;
mod global;
mod hal;
mod libc;
mod lifecycle;
mod power;
mod report;
mod rt;
mod rtc;
mod setup;
mod wrap;

use crate::build_config;
use crate::flash_layout::Layout;

/// Marks the image: which version, profile and flash size it was built for. Kept in the
/// image (`#[used]`) so `strings` on a firmware file or a flash dump tells what it is.
#[used]
#[unsafe(link_section = ".rodata.ramkey_build_info")]
static BUILD_INFO: [u8; build_config::BUILD_INFO.len()] = {
    let mut bytes = [0u8; build_config::BUILD_INFO.len()];
    let src = build_config::BUILD_INFO.as_bytes();
    let mut i = 0;
    while i < src.len() {
        bytes[i] = src[i];
        i += 1;
    }
    bytes
};

const LAYOUT: Layout = build_config::FLASH_SIZE.layout();

const fn partition(kind: u32, region: crate::flash_layout::Region) -> wifi_sys::partition_item_t {
    wifi_sys::partition_item_t {
        type_: kind,
        addr: region.offset,
        size: region.size,
    }
}

/// The partition table SDK 3.x requires; the SDK keeps the pointer, so it is static.
static PARTITIONS: [wifi_sys::partition_item_t; 4] = [
    partition(wifi_sys::SYSTEM_PARTITION_RF_CAL, LAYOUT.rf_cal),
    partition(wifi_sys::SYSTEM_PARTITION_PHY_DATA, LAYOUT.phy_data),
    partition(
        wifi_sys::SYSTEM_PARTITION_SYSTEM_PARAMETER,
        LAYOUT.system_parameter,
    ),
    partition(
        wifi_sys::SYSTEM_PARTITION_CUSTOMER_BEGIN,
        LAYOUT.device_identity,
    ),
];

pub(crate) use power::deep_sleep;

/// The radio as ramkey wants it when `user_init` returns, before the SDK's start-up applies
/// what RAM holds (M16): a `_current` station config that is empty (which also clears
/// `PmkCurrent`, M20, and replaces whatever credentials the stored block put in RAM), the setup
/// access point's config when this boot is going to open it (so the SoftAP can never start
/// with the SDK's default "ESP-" config, M18), and opmode "none", so that the start-up starts
/// no interface and its auto-connect does nothing. The boot plan then starts what it needs
/// from the init-done callback.
///
/// `canary-no-early-config` leaves all of it out, to show in `cargo xtask test` what the SDK
/// does by itself.
fn quiet_radio(plan: &lifecycle::Prepared) {
    if cfg!(feature = "canary-no-early-config") {
        return;
    }
    let mut empty = zeroed_station_config();
    // SAFETY: plain setters; the SDK copies `empty`. Before user_init returns they change
    // only RAM (M35). The station setter needs the station bit (M31), so mode 1 comes first.
    let cleared = unsafe {
        wifi_sys::wifi_set_opmode_current(wifi_sys::STATION_MODE)
            && wifi_sys::wifi_station_set_config_current(&mut empty)
    };
    if !cleared {
        error!("the SDK refused the early station config: PmkCurrent may still be set");
    }
    if plan.opens_setup() {
        setup::prepare_access_point();
    }
    // SAFETY: plain setter (RAM only before user_init returns).
    if !unsafe { wifi_sys::wifi_set_opmode_current(wifi_sys::NULL_MODE) } {
        error!("the SDK refused opmode none");
    }
}

/// Writes bytes to the console (UART0 on hardware, semihosting under the emulator).
#[cfg(not(feature = "production"))]
pub(crate) fn console_write(bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: ets_putc is a ROM routine taking a plain byte; no pointers involved.
        unsafe { wifi_sys::ets_putc(b as core::ffi::c_char) };
    }
}

/// First code the SDK runs: silence the SDK in production, register the partition table.
#[unsafe(no_mangle)]
pub extern "C" fn user_pre_init() {
    #[cfg(feature = "production")]
    {
        // SAFETY: plain flag setter, safe to call at any time.
        unsafe { wifi_sys::system_set_os_print(0) };
        release_console_pins();
    }

    // SAFETY: PARTITIONS is a static array of `len` entries that lives forever, as the SDK
    // requires (it keeps the pointer).
    let accepted = unsafe {
        wifi_sys::system_partition_table_regist(
            PARTITIONS.as_ptr(),
            PARTITIONS.len() as u32,
            build_config::FLASH_SIZE.sdk_size_map(),
        )
    };
    if !accepted {
        error!(
            "partition table for {} rejected by the SDK",
            build_config::FLASH_SIZE.name()
        );
    }
}

/// Production: GPIO1/GPIO3 (UART0) and GPIO2 (UART1 TX) become GPIO inputs with pull-ups.
#[cfg(feature = "production")]
fn release_console_pins() {
    use crate::pins;
    let chosen = pins::production_pins();
    for pin in chosen {
        // Nothing else touches these pins during user_pre_init.
        hal::select_gpio(*pin);
    }
    // SAFETY: write-1-to-clear output-enable register; same access rules as above.
    unsafe {
        core::ptr::write_volatile(
            pins::GPIO_ENABLE_W1TC as *mut u32,
            pins::output_disable_mask(chosen),
        );
    }
}

/// The SDK's hand-over to the application once its own start-up is done.
#[unsafe(no_mangle)]
pub extern "C" fn user_init() {
    #[cfg(not(feature = "production"))]
    // SAFETY: ROM routine setting UART0's divisor: 80 MHz APB clock / 115200 baud.
    unsafe {
        wifi_sys::uart_div_modify(0, 80_000_000 / 115_200)
    };
    // Keep the marker referenced from code too, so no linker garbage collection drops it.
    core::hint::black_box(&BUILD_INFO);

    info!(
        "ramkey {} ({})",
        env!("CARGO_PKG_VERSION"),
        build_config::PROFILE
    );
    info!("sdk: {}", sdk_version());
    let reason = reset_reason();
    info!(
        "reset reason: {} ({})",
        crate::boot::ResetReason::from_raw(reason).name(),
        reason
    );
    // SAFETY: plain getter.
    let map = unsafe { wifi_sys::system_get_flash_size_map() };
    info!(
        "flash: {} (size map {})",
        build_config::FLASH_SIZE.name(),
        map
    );

    #[cfg(feature = "flashbus-canary")]
    {
        unsafe extern "C" {
            static _ramkey_flash_text_start: u8;
        }
        // SAFETY: not safe on a device, on purpose: a byte load from the flash window raises
        // LoadStoreError there. QEMU lets it through; the feature exists only so that
        // `cargo xtask test` sees its flash-bus check catch such a load.
        let byte = unsafe { core::ptr::read_volatile(&raw const _ramkey_flash_text_start) };
        info!("flashbus canary: read {:#04x} with a byte load", byte);
    }
    #[cfg(all(feature = "selftest", not(feature = "production")))]
    {
        let _ = crate::selftest::report(&mut LineWriter);
        return;
    }
    // The boot decision is made here, before the SDK's start-up applies the radio settings
    // in RAM (M16), so that they are ramkey's; it is carried out once the SDK is ready.
    #[cfg(not(feature = "bench"))]
    {
        let prepared = lifecycle::prepare(reason);
        quiet_radio(&prepared);
    }
    #[cfg(feature = "bench")]
    quiet_radio(&lifecycle::Prepared::none());
    // SAFETY: registering a callback with the SDK's signature.
    unsafe { wifi_sys::system_init_done_cb(Some(on_init_done)) };
}

/// Runs after the SDK's initialisation: the boot lifecycle (or the bench regions).
unsafe extern "C" fn on_init_done() {
    #[cfg(feature = "bench")]
    {
        bench::run(reset_reason());
        return;
    }
    #[allow(unreachable_code, reason = "bench builds stop before the lifecycle")]
    lifecycle::start(reset_reason());
}

/// A station config with every byte zero (the SDK's "nothing set").
pub(crate) fn zeroed_station_config() -> wifi_sys::station_config {
    wifi_sys::station_config {
        ssid: [0; 32],
        password: [0; 64],
        channel: 0,
        bssid_set: 0,
        bssid: [0; 6],
        threshold: wifi_sys::wifi_fast_scan_threshold_t {
            rssi: 0,
            authmode: 0,
        },
        open_and_wep_mode_disable: 0,
        all_channel_scan: 0,
    }
}

/// The SDK's version string, or `?` if it is not valid UTF-8.
fn sdk_version() -> &'static str {
    // SAFETY: the SDK returns a pointer to a static NUL-terminated string.
    let version = unsafe { core::ffi::CStr::from_ptr(wifi_sys::system_get_sdk_version()) };
    version.to_str().unwrap_or("?")
}

/// The raw reset reason the SDK reports (`rst_info.reason`).
fn reset_reason() -> u32 {
    // SAFETY: the SDK returns a pointer to its static reset record, valid for the whole run.
    let info = unsafe { wifi_sys::system_get_rst_info() };
    if info.is_null() {
        return u32::MAX;
    }
    // SAFETY: non-null and static, see above.
    unsafe { (*info).reason }
}

/// Forwards `core::fmt` output to the console unchanged (used by the self-test).
#[cfg(all(feature = "selftest", not(feature = "production")))]
struct LineWriter;

#[cfg(all(feature = "selftest", not(feature = "production")))]
impl core::fmt::Write for LineWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        console_write(s.as_bytes());
        Ok(())
    }
}
