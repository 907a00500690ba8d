//! Whole boot cycles on the host: the portable pieces the firmware wires together (boot
//! decision, RTC record, boot state) driven through a device's life with a simulated clock,
//! RTC memory that survives deep sleep but not power loss, and a scripted access point.

#![allow(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use ramkey::boot::{
    self, AfterConnect, BootInputs, BootState, FlashState, Mode, RecordState, ResetReason,
};
use ramkey::rtc_record::{
    self, Credentials, IpConfig, LoadError, NetworkKey, RamRtc, ReconnectCache, RtcMemory, Ssid,
};
use ramkey::secret::{Passphrase, Psk};

const STATE_WORD: usize = rtc_record::FREE_WORDS.start;

/// A device: RTC memory, what is in the SDK's flash parameter area, and a clock.
struct Device {
    rtc: RamRtc,
    flash: FlashState,
    clock_seconds: u64,
}

/// What one boot did.
#[derive(Debug, PartialEq)]
enum Outcome {
    Scrubbed,
    Setup,
    Online,
    Backoff(u64),
}

impl Device {
    fn new() -> Device {
        Device {
            rtc: RamRtc::filled(0xA5A5_5A5A),
            flash: FlashState::Clean,
            clock_seconds: 0,
        }
    }

    fn power_cycle(&mut self) {
        // RTC memory holds noise after power returns.
        self.rtc = RamRtc::filled(0x1234_5678 ^ self.clock_seconds as u32);
    }

    /// One boot as `firmware::lifecycle` runs it; `ap_accepts` is whether the access point
    /// takes the stored key.
    fn boot(&mut self, reason: ResetReason, ap_accepts: bool) -> Outcome {
        let mut words = [0u32; boot::BOOT_STATE_WORDS];
        self.rtc.read_words(STATE_WORD, &mut words).unwrap();
        let loaded = rtc_record::load(&self.rtc);
        let record = match &loaded {
            Ok(_) => RecordState::Valid,
            Err(LoadError::Empty) => RecordState::Absent,
            Err(_) => RecordState::Corrupt,
        };
        let plan = boot::decide(&BootInputs {
            reset_reason: reason,
            record,
            flash: self.flash,
            setup_button: false,
            state: BootState::decode(words),
        });
        if plan.wipe_record {
            rtc_record::wipe(&mut self.rtc).unwrap();
        }
        self.rtc
            .write_words(STATE_WORD, &plan.state.encode())
            .unwrap();
        match plan.mode {
            Mode::ScrubAndRestart => {
                self.flash = FlashState::Clean;
                Outcome::Scrubbed
            }
            Mode::Setup => Outcome::Setup,
            Mode::BackoffSleep { micros } => Outcome::Backoff(micros / 1_000_000),
            Mode::Station { .. } => {
                assert!(loaded.is_ok(), "station mode without a record");
                let after = boot::after_connect_result(plan.state, ap_accepts);
                self.rtc
                    .write_words(STATE_WORD, &after.state.encode())
                    .unwrap();
                match after.next {
                    AfterConnect::Online => {
                        let cache = ReconnectCache {
                            bssid: [2, 0, 0, 0, 0, 1],
                            channel: 6,
                        };
                        rtc_record::update_cache(&mut self.rtc, Some(cache), IpConfig::None)
                            .unwrap();
                        Outcome::Online
                    }
                    AfterConnect::BackoffSleep { micros } => Outcome::Backoff(micros / 1_000_000),
                }
            }
        }
    }

    fn sleep(&mut self, seconds: u64) {
        self.clock_seconds += seconds;
    }
}

fn garden() -> Credentials {
    let passphrase = Passphrase::new(b"correct horse battery").unwrap();
    let ssid = Ssid::new(b"Garden").unwrap();
    let psk: Psk = ramkey::psk::derive(&passphrase, &ssid);
    Credentials {
        ssid,
        key: NetworkKey::Psk(psk),
        cache: None,
        ip: IpConfig::None,
    }
}

#[test]
fn a_garden_sensors_life() {
    let mut device = Device::new();
    // An older firmware left credentials in flash: the first boot scrubs them.
    device.flash = FlashState::HoldsCredentials;
    assert_eq!(device.boot(ResetReason::PowerOn, true), Outcome::Scrubbed);
    assert_eq!(device.boot(ResetReason::SoftRestart, true), Outcome::Setup);

    // Setup stores the record (what the portal does after a successful test connection).
    rtc_record::store(&mut device.rtc, &garden()).unwrap();

    // A week of ten-minute cycles.
    for _ in 0..(7 * 24 * 6) {
        device.sleep(600);
        assert_eq!(
            device.boot(ResetReason::DeepSleepWake, true),
            Outcome::Online
        );
    }
    assert_eq!(
        rtc_record::load(&device.rtc)
            .unwrap()
            .cache
            .map(|c| c.channel),
        Some(6)
    );

    // The router's passphrase changes: back off, never open setup, keep the record.
    let mut sleeps = Vec::new();
    for _ in 0..8 {
        match device.boot(ResetReason::DeepSleepWake, false) {
            Outcome::Backoff(seconds) => {
                sleeps.push(seconds);
                device.sleep(seconds);
            }
            other => panic!("expected a backoff, got {other:?}"),
        }
    }
    assert_eq!(sleeps, [30, 60, 120, 300, 900, 1800, 3600, 3600]);
    assert!(
        rtc_record::load(&device.rtc).is_ok(),
        "the record survives failures"
    );

    // A crash (watchdog) keeps the record; the router is back.
    assert_eq!(
        device.boot(ResetReason::HardwareWatchdog, true),
        Outcome::Online
    );

    // Someone cuts the power: the credentials are gone, setup opens.
    device.power_cycle();
    assert_eq!(device.boot(ResetReason::PowerOn, true), Outcome::Setup);
    assert!(rtc_record::load(&device.rtc).is_err());
}

#[test]
fn reset_pin_wipes_even_a_valid_record() {
    let mut device = Device::new();
    rtc_record::store(&mut device.rtc, &garden()).unwrap();
    assert_eq!(
        device.boot(ResetReason::DeepSleepWake, true),
        Outcome::Online
    );
    assert_eq!(
        device.boot(ResetReason::ExternalReset, true),
        Outcome::Setup
    );
    assert!(matches!(
        rtc_record::load(&device.rtc),
        Err(LoadError::Empty)
    ));
}
