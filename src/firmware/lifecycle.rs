//! The boot lifecycle: gather the inputs, let `boot::decide` choose, carry out its plan.
//!
//! Nothing here decides anything: the portable [`crate::boot`] module does. This module reads
//! the reset reason, the RTC record and boot state, and the SDK's parameter area (both data
//! sectors, for credentials an older firmware left); it does so in `user_init`
//! ([`prepare`]), before the SDK's start-up applies the radio settings, and acts from the
//! init-done callback ([`start`]): it saves the new state first, then scrubs and restarts,
//! connects with `_current` setters only, opens setup, or backs off in deep sleep.

use core::ffi::c_void;

use zeroize::Zeroize;

use super::global::{Global, arm, disarm, new_timer};
use super::power;
use super::rtc::SdkRtc;
use crate::boot::{
    self, AfterConnect, BootInputs, BootState, FlashState, Mode, RecordState, ResetReason,
};
use crate::rtc_record::{
    self, Credentials, IpConfig, LoadError, NetworkKey, ReconnectCache, RtcMemory,
};
use crate::sensors::WarmUp;

/// Where the boot state lives (`rtc_layout`).
const BOOT_STATE_WORD: usize = crate::rtc_layout::BOOT_STATE.start;
/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT_MS: u32 = 20_000;

const EVENT_STAMODE_CONNECTED: u32 = 0;
const EVENT_STAMODE_DISCONNECTED: u32 = 1;
const EVENT_STAMODE_GOT_IP: u32 = 3;

/// What the current connection attempt has learnt.
struct Attempt {
    state: BootState,
    cache: Option<ReconnectCache>,
    done: bool,
}

static ATTEMPT: Global<Attempt> = Global::new(Attempt {
    state: BootState {
        failures: 0,
        scrub_attempts: 0,
        setup_requested: false,
        scrub_restart: false,
        connecting: false,
    },
    cache: None,
    done: false,
});

/// The SDK keeps a pointer to the timer while it is armed, so it is static.
static TIMEOUT_TIMER: Global<wifi_sys::ETSTimer> = Global::new(new_timer());
/// The sensors' warm-up after power-on: its timer and when it started (`system_get_time`).
static WARM_UP_TIMER: Global<wifi_sys::ETSTimer> = Global::new(new_timer());
static WARM_UP: Global<Option<(u32, WarmUp)>> = Global::new(None);
/// The battery's conversion in progress, with what was read before it.
static BATTERY_TIMER: Global<wifi_sys::ETSTimer> = Global::new(new_timer());
static BATTERY: Global<Option<PendingBattery>> = Global::new(None);
/// How often and how many times the battery's conversion is polled (one sample period at
/// 128 SPS is 7.8 ms; ten polls give it 80 ms).
const BATTERY_POLL_MS: u32 = 8;
const BATTERY_POLLS: u8 = 10;

struct PendingBattery {
    adc: super::hal::BatteryAdc,
    soil_raw: Option<u16>,
    climate: Option<crate::sensors::Climate>,
    polls: u8,
}

fn read_state() -> BootState {
    let mut words = [0u32; boot::BOOT_STATE_WORDS];
    match SdkRtc.read_words(BOOT_STATE_WORD, &mut words) {
        Ok(()) => BootState::decode(words),
        Err(e) => {
            warn!("boot state unreadable ({}): starting fresh", e);
            BootState::default()
        }
    }
}

fn save_state(state: BootState) -> bool {
    match SdkRtc.write_words(BOOT_STATE_WORD, &state.encode()) {
        Ok(()) => true,
        Err(e) => {
            error!("boot state not saved: {}", e);
            false
        }
    }
}

/// What the SDK's parameter area holds: credentials in either data sector (the current one
/// and the one the SDK's rotation left behind, docs/sdk-model.md M3), read directly.
fn stored_flash_state() -> FlashState {
    if cfg!(feature = "canary-no-scrub") {
        return FlashState::Clean;
    }
    let area = crate::build_config::FLASH_SIZE
        .layout()
        .system_parameter
        .offset;
    let mut found = false;
    for sector in 0..2u32 {
        let base = area + sector * crate::flash_layout::SECTOR_SIZE;
        let result = crate::firewall::holds_credentials(|offset, out: &mut [u8]| {
            // Field offsets and lengths are not all multiples of 4: read the covering words.
            let start = (base + offset) & !3;
            let end = (base + offset + out.len() as u32 + 3) & !3;
            let mut words = [0u32; 18];
            let count = ((end - start) / 4) as usize;
            let Some(words) = words.get_mut(..count) else {
                return Err(());
            };
            let code = super::flash::read(start, words);
            let skip = (base + offset - start) as usize;
            for (i, byte) in out.iter_mut().enumerate() {
                let at = skip + i;
                *byte = words[at / 4].to_le_bytes()[at % 4];
            }
            words.zeroize();
            if code == wifi_sys::SPI_FLASH_RESULT_OK {
                Ok(())
            } else {
                Err(())
            }
        });
        match result {
            Ok(holds) => found |= holds,
            Err(()) => return FlashState::Unknown,
        }
    }
    if found {
        FlashState::HoldsCredentials
    } else {
        FlashState::Clean
    }
}

/// The boot decision as `user_init` saw it: whether it opens setup (so that the setup access
/// point's config is in RAM before any SoftAP starts). The init-done callback decides again
/// from the same inputs, which nothing changes in between, rather than keep the plan in DRAM.
pub struct Prepared {
    opens_setup: bool,
}

impl Prepared {
    /// Nothing decided (bench builds).
    #[cfg(feature = "bench")]
    pub fn none() -> Prepared {
        Prepared { opens_setup: false }
    }

    /// Whether this boot is going to open the setup access point.
    pub fn opens_setup(&self) -> bool {
        self.opens_setup
    }
}

/// What [`prepare`] saw, to check that [`start`] decides the same.
static PREPARED_SETUP: Global<Option<bool>> = Global::new(None);

/// Decides (no side effects). Called from `user_init`.
pub fn prepare(reason: u32) -> Prepared {
    let (plan, _) = gather_and_decide(reason);
    let opens_setup = matches!(plan.mode, Mode::Setup);
    PREPARED_SETUP.with(|p| *p = Some(opens_setup));
    Prepared { opens_setup }
}

/// Carries out the boot decision. Called once, from the init-done callback.
pub fn start(reason: u32) {
    let (plan, record) = gather_and_decide(reason);
    let prepared = PREPARED_SETUP.with(|p| *p);
    if prepared != Some(matches!(plan.mode, Mode::Setup)) {
        error!("the boot decision changed since user_init: decision bug");
    }
    let loaded = rtc_record::load(&SdkRtc);
    execute(plan, record, loaded);
}

/// Reads every input of the boot decision and decides (no side effects).
pub fn gather_and_decide(reason: u32) -> (boot::BootPlan, RecordState) {
    let reset_reason = ResetReason::from_raw(reason);
    let state = read_state();
    let record = match rtc_record::load(&SdkRtc) {
        Ok(_) => RecordState::Valid,
        Err(LoadError::Empty) => RecordState::Absent,
        Err(_) => RecordState::Corrupt,
    };
    // Read only when the decision looks at it (boot::flash_check_runs): otherwise ignored.
    let flash = if boot::flash_check_runs(reset_reason, &state) {
        stored_flash_state()
    } else {
        FlashState::Clean
    };
    let inputs = BootInputs {
        reset_reason,
        record,
        flash,
        setup_button: false,
        state,
    };
    (boot::decide(&inputs), record)
}

fn execute(plan: boot::BootPlan, record: RecordState, loaded: Result<Credentials, LoadError>) {
    info!(
        "boot: record {:?}, flash {:?} -> {}",
        record,
        plan.flash_check,
        plan.mode.name()
    );

    if plan.wipe_record {
        if let Err(e) = rtc_record::wipe(&mut SdkRtc) {
            error!("record wipe failed: {}", e);
        }
        // The broker settings (with their password) follow the WiFi record's trust policy.
        if let Err(e) = crate::settings::wipe(&mut SdkRtc) {
            error!("settings wipe failed: {}", e);
        }
    }
    let saved = save_state(plan.state);
    match plan.mode {
        Mode::ScrubAndRestart => {
            if saved {
                scrub_and_restart();
            } else {
                // Without a saved attempt count the scrub could loop: skip it this boot.
                error!("flash scrub skipped: its attempt count could not be saved");
            }
        }
        Mode::Station { previous_failures } => match loaded {
            Ok(credentials) => connect(&credentials, plan.state, previous_failures),
            Err(_) => error!("station mode without a record: decision bug"),
        },
        Mode::Setup => {
            info!("setup mode: no trusted credentials");
            super::setup::start();
        }
        Mode::BackoffSleep { micros } => {
            info!("backing off: deep sleep {} s", micros / 1_000_000);
            super::report::sleep_keeping_time(micros);
        }
    }
}

fn scrub_and_restart() {
    let sectors = crate::build_config::FLASH_SIZE.layout().system_parameter;
    let first = sectors.first_sector();
    let count = (sectors.size / crate::flash_layout::SECTOR_SIZE) as u16;
    for sector in first..first + count {
        // Erasing a sector of the SDK's own parameter area, which the partition table
        // registered; nothing of ramkey lives there.
        let result = super::flash::erase(sector);
        if result != 0 {
            error!("erase of sector {:#x} failed ({})", sector, result);
        }
    }
    info!("flash parameter area erased: restarting");
    power::restart();
}

/// Writes 64 lowercase hex digits of the key into `out`.
pub(super) fn hex_key(key: &[u8; 32], out: &mut [u8; 64]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in key.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(byte & 15)];
    }
}

fn connect(credentials: &Credentials, state: BootState, previous_failures: u16) {
    let mut config = super::zeroed_station_config();
    let ssid = credentials.ssid.as_bytes();
    config.ssid[..ssid.len()].copy_from_slice(ssid);
    match &credentials.key {
        NetworkKey::Open => config.threshold.authmode = wifi_sys::AUTH_OPEN,
        NetworkKey::Psk(psk) => {
            let mut hex = [0u8; 64];
            hex_key(psk.expose_secret(), &mut hex);
            config.password.copy_from_slice(&hex);
            hex.zeroize();
            // Refuse anything weaker than WPA-PSK: no downgrade to an open twin.
            config.threshold.authmode = wifi_sys::AUTH_WPA_PSK;
        }
    }
    // A stale cache after failures could pin a dead access point: drop it then.
    if let (Some(cache), 0) = (credentials.cache, previous_failures) {
        config.bssid_set = 1;
        config.bssid = cache.bssid;
        config.channel = cache.channel;
    }
    ATTEMPT.with(|a| {
        a.state = state;
        a.cache = None;
        a.done = false;
    });
    // SAFETY: plain setters; `config` is a valid station_config that the SDK copies. After
    // user_init the mode change starts the station interface (docs/sdk-model.md, M35).
    let configured = unsafe {
        wifi_sys::wifi_set_opmode_current(wifi_sys::STATION_MODE)
            && wifi_sys::wifi_station_set_config_current(&mut config)
    };
    config.password.zeroize();
    if !configured {
        error!("station configuration refused");
        finish(false);
        return;
    }
    arm(&TIMEOUT_TIMER, on_timeout, CONNECT_TIMEOUT_MS, false);
    // SAFETY: registering a callback with the SDK's signature, then starting the attempt.
    unsafe {
        wifi_sys::wifi_set_event_handler_cb(Some(on_wifi_event));
        if !wifi_sys::wifi_station_connect() {
            error!("wifi_station_connect refused");
        }
    }
    info!("connecting to the stored network");
}

unsafe extern "C" fn on_timeout(_arg: *mut c_void) {
    if power::halted() {
        return;
    }
    warn!("connection attempt timed out");
    finish(false);
}

unsafe extern "C" fn on_wifi_event(event: *mut wifi_sys::System_Event_t) {
    if event.is_null() || power::halted() {
        return;
    }
    // SAFETY: the SDK passes a valid event for the duration of the callback; the union member
    // read matches the event id, as the SDK documents.
    let event = unsafe { &*event };
    match event.event {
        EVENT_STAMODE_CONNECTED => {
            // SAFETY: `connected` is the member for this event id.
            let connected = unsafe { event.event_info.connected };
            ATTEMPT.with(|a| {
                a.cache = Some(ReconnectCache {
                    bssid: connected.bssid,
                    channel: connected.channel,
                })
            });
            info!("associated on channel {}", connected.channel);
        }
        EVENT_STAMODE_GOT_IP => {
            // SAFETY: `got_ip` is the member for this event id.
            let got_ip = unsafe { event.event_info.got_ip };
            let ip = got_ip.ip.addr.to_le_bytes();
            info!("connected, ip {}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
            finish(true);
        }
        EVENT_STAMODE_DISCONNECTED => {
            // SAFETY: `disconnected` is the member for this event id.
            let reason = unsafe { event.event_info.disconnected.reason };
            warn!("connection failed, reason {}", reason);
            finish(false);
        }
        _ => {}
    }
}

/// Ends the attempt once: saves the outcome, then runs the application or backs off.
fn finish(success: bool) {
    let Some((state, cache)) = ATTEMPT.with(|a| {
        if a.done {
            return None;
        }
        a.done = true;
        Some((a.state, a.cache))
    }) else {
        return;
    };
    disarm(&TIMEOUT_TIMER);
    if !success {
        // SAFETY: plain call: stop the SDK's own retries.
        unsafe { wifi_sys::wifi_station_disconnect() };
    }
    let plan = boot::after_connect_result(state, success);
    save_state(plan.state);
    match plan.next {
        AfterConnect::Online => {
            if let Err(e) = rtc_record::update_cache(&mut SdkRtc, cache, IpConfig::None) {
                warn!("reconnect cache not updated: {}", e);
            }
            #[cfg(feature = "test-panic")]
            panic!("test-panic build: a panic right after connecting");
            run_application();
        }
        AfterConnect::BackoffSleep { micros } => {
            info!(
                "backing off: deep sleep {} s, record kept",
                micros / 1_000_000
            );
            super::report::sleep_keeping_time(micros);
        }
    }
}

/// The garden-sensor cycle: read the sensor, report, sleep until the next report.
/// The garden-sensor cycle: power the sensors, wait their warm-up on a timer (not a busy
/// loop), read and queue, power them off, sleep.
fn run_application() {
    let Some(power) = crate::sensors::BOARD.power else {
        read_and_sleep();
        return;
    };
    super::hal::set_power(power.pin, true);
    // SAFETY: plain read of the system clock.
    let now_us = unsafe { wifi_sys::system_get_time() };
    WARM_UP.with(|w| *w = Some((now_us, WarmUp::started(0, &power))));
    arm(&WARM_UP_TIMER, on_warm_up, power.warm_up_ms, false);
}

unsafe extern "C" fn on_warm_up(_arg: *mut c_void) {
    if super::power::halted() {
        return;
    }
    let Some((since_us, warm)) = WARM_UP.with(|w| *w) else {
        return;
    };
    // SAFETY: plain read of the system clock.
    let elapsed_ms =
        u64::from(unsafe { wifi_sys::system_get_time() }.wrapping_sub(since_us) / 1000);
    match warm.ready(elapsed_ms) {
        Err(nb::Error::WouldBlock) => {
            // Timers may fire early: wait for the rest.
            let rest = warm.remaining_ms(elapsed_ms).max(1) as u32;
            arm(&WARM_UP_TIMER, on_warm_up, rest, false);
        }
        Ok(()) => read_and_sleep(),
    }
}

/// Reads every sensor the board has: soil and climate at once, the battery through the ADC's
/// conversion, polled from a timer; then [`finish_reading`].
fn read_and_sleep() {
    let board = &crate::sensors::BOARD;
    let soil_raw = board
        .soil
        .and_then(|_| crate::sensors::read_within(&mut super::hal::Tout, 1));
    let climate = if board.bme280 {
        match super::hal::read_bme280() {
            Ok(climate) => Some(climate),
            Err(e) => {
                warn!("sensor: bme280 missing ({})", e);
                None
            }
        }
    } else {
        None
    };
    if board.battery.is_none() {
        finish_reading(soil_raw, climate, None);
        return;
    }
    match super::hal::battery_adc() {
        Ok(adc) => {
            BATTERY.with(|b| {
                *b = Some(PendingBattery {
                    adc,
                    soil_raw,
                    climate,
                    polls: 0,
                })
            });
            poll_battery();
        }
        Err(e) => {
            warn!("sensor: battery adc missing ({})", e);
            finish_reading(soil_raw, climate, None);
        }
    }
}

/// Polls the battery's conversion: done, not yet (the timer again), or failed.
fn poll_battery() {
    let Some(mut pending) = BATTERY.with(Option::take) else {
        return;
    };
    match super::hal::poll_battery(&mut pending.adc) {
        Ok(code) => finish_reading(pending.soil_raw, pending.climate, Some(code)),
        Err(nb::Error::WouldBlock) if pending.polls < BATTERY_POLLS => {
            pending.polls += 1;
            BATTERY.with(|b| *b = Some(pending));
            arm(&BATTERY_TIMER, on_battery, BATTERY_POLL_MS, false);
        }
        Err(nb::Error::WouldBlock) => {
            warn!("sensor: battery adc never finished its conversion");
            finish_reading(pending.soil_raw, pending.climate, None);
        }
        Err(nb::Error::Other(e)) => {
            warn!("sensor: battery adc missing ({})", e);
            finish_reading(pending.soil_raw, pending.climate, None);
        }
    }
}

unsafe extern "C" fn on_battery(_arg: *mut c_void) {
    if super::power::halted() {
        return;
    }
    poll_battery();
}

/// Switches the sensors off, queues the reading, sleeps.
fn finish_reading(
    soil_raw: Option<u16>,
    climate: Option<crate::sensors::Climate>,
    battery_code: Option<i16>,
) {
    let board = &crate::sensors::BOARD;
    if let Some(power) = board.power
        && !cfg!(feature = "canary-sensors-stay-powered")
    {
        super::hal::set_power(power.pin, false);
    }
    let reading = crate::sensors::reading(board, soil_raw, climate, battery_code);
    info!(
        "sensor: soil {} % (adc {}), battery {} x 20 mV",
        reading.soil_pct.map_or(-1, i32::from),
        soil_raw.map_or(-1, i32::from),
        reading.battery_20mv.map_or(-1, i32::from)
    );
    if let Some(t) = reading.temperature_centi_c {
        info!(
            "sensor: bme280 {} centi-C, {} half-%RH, {} deci-hPa",
            t,
            reading.humidity_half_pct.map_or(-1, i32::from),
            reading.pressure_deci_hpa.map_or(-1, i32::from)
        );
    }
    // Queued in RTC memory with its time, then reported with whatever waited (`report`).
    super::report::deliver(reading);
}
