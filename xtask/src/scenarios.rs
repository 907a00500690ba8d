//! Lifecycle scenarios: the lx106 firmware on QEMU against the emulated SDK, boot after boot.
//!
//! Each scenario prepares what a real device would find at boot (RTC memory, reset reason,
//! the flash contents, the access points around), boots the firmware, and checks what it
//! printed, what it left in RTC memory and what it left in flash. RTC memory is carried from
//! one boot to the next as a deep sleep or restart keeps it. After every scenario the emulated
//! flash is searched for the passphrase, the PSK and its hex form: any hit fails.

use std::path::{Path, PathBuf};

use ramkey::flash_layout::FlashSize;
use ramkey::rtc_record::{
    self, Credentials, IpConfig, NetworkKey, RamRtc, ReconnectCache, RtcMemory, Ssid, USER_WORDS,
};
use ramkey::secret::Passphrase;

use crate::qemu::{self, Echo, Outcome, Scenario, ScriptedNetwork};
use crate::{flashbus, util};

#[path = "scenarios_bridged.rs"]
pub mod bridged;
#[path = "scenarios_sdk.rs"]
pub mod sdk;
#[path = "scenarios_setup.rs"]
mod setup;

/// Exit statuses of the emulator (see `emu/src/sdk.rs` and `emu/src/rtc.rs`).
const EXIT_RESTART: i32 = 10;
const EXIT_DEEP_SLEEP: i32 = 11;

/// A network with the secrets the scenario must never find in flash.
struct Network {
    ssid: &'static str,
    passphrase: &'static str,
    psk: [u8; 32],
    bssid: [u8; 6],
    channel: u8,
}

impl Network {
    fn new(
        ssid: &'static str,
        passphrase: &'static str,
        bssid_last: u8,
        channel: u8,
    ) -> Result<Network, String> {
        let passphrase_secret =
            Passphrase::new(passphrase.as_bytes()).map_err(|e| e.to_string())?;
        let ssid_value = Ssid::new(ssid.as_bytes()).map_err(|e| e.to_string())?;
        let psk = *ramkey::psk::derive(&passphrase_secret, &ssid_value).expose_secret();
        Ok(Network {
            ssid,
            passphrase,
            psk,
            bssid: [0x02, 0x52, 0x4B, 0, 0, bssid_last],
            channel,
        })
    }

    fn scripted(&self, accepts: Option<[u8; 32]>) -> ScriptedNetwork {
        ScriptedNetwork {
            ssid: self.ssid.as_bytes().to_vec(),
            psk: accepts.or(Some(self.psk)),
            passphrase: if accepts.is_none() {
                self.passphrase.as_bytes().to_vec()
            } else {
                Vec::new()
            },
            channel: self.channel,
            bssid: self.bssid,
            ip: [192, 168, 7, 40 + self.bssid[5]],
            silent: false,
            rssi: -50 - 5 * self.bssid[5] as i8,
        }
    }

    fn credentials(&self) -> Result<Credentials, String> {
        Ok(Credentials {
            ssid: Ssid::new(self.ssid.as_bytes()).map_err(|e| e.to_string())?,
            key: NetworkKey::Psk(ramkey::secret::Psk::from_bytes(&self.psk)),
            cache: None,
            ip: IpConfig::None,
        })
    }

    /// Byte strings that must never be found in flash, each with what it is.
    fn secrets(&self) -> Vec<(&'static str, Vec<u8>)> {
        let hex: String = self.psk.iter().map(|b| format!("{b:02x}")).collect();
        vec![
            ("SSID", self.ssid.as_bytes().to_vec()),
            ("passphrase", self.passphrase.as_bytes().to_vec()),
            ("PSK", self.psk.to_vec()),
            ("PSK as hex", hex.to_uppercase().into_bytes()),
            ("PSK as hex", hex.into_bytes()),
        ]
    }
}

fn rtc_bytes(mem: &RamRtc) -> Vec<u8> {
    mem.words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn rtc_words(bytes: &[u8]) -> RamRtc {
    let mut mem = RamRtc::filled(0);
    for (w, chunk) in mem.words.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    mem
}

/// A scenario's working directory with an erased 4 MB `flash.bin`.
fn prepare(name: &str) -> Result<PathBuf, String> {
    let dir = util::out_dir().join("scenarios").join(name);
    qemu::fresh_work_dir(&dir)?;
    Ok(dir)
}

fn boot(
    elf: &Path,
    dir: &Path,
    reset_reason: u32,
    rtc: Option<Vec<u8>>,
    networks: Vec<ScriptedNetwork>,
) -> Result<Outcome, String> {
    let scenario = Scenario {
        reset_reason,
        rtc,
        networks,
        ..Scenario::default()
    };
    boot_with(elf, dir, scenario)
}

/// Boots one scenario in `dir` with every per-boot check: the flash-bus checker, and no call
/// of a persistent setter.
fn boot_with(elf: &Path, dir: &Path, scenario: Scenario) -> Result<Outcome, String> {
    let reset_reason = scenario.reset_reason;
    // Every boot runs under the flash-bus checker: the chip refuses what QEMU lets through.
    let bus = dir.join(format!("flashbus-{reset_reason}.txt"));
    let _ = std::fs::remove_file(&bus);
    let scenario = Scenario {
        work_dir: Some(dir.to_path_buf()),
        plugin: Some(flashbus::plugin_arg(elf, &bus)?),
        ..scenario
    };
    let outcome = qemu::boot(elf, &scenario, Echo::Quiet)?;
    // Kept beside the scenario's flash and RTC files, for whoever debugs a failure.
    let log = dir.join(format!("console-{reset_reason}.txt"));
    let _ = std::fs::write(log, &outcome.console);
    flashbus::read(&bus)?.check()?;
    every_boot(&outcome.console)?;
    Ok(outcome)
}

/// What no boot may show, whatever the scenario: a persistent setter called, the SDK's
/// default access point up (docs/sdk-model.md M18), or the firmware still acting after it
/// asked for a restart or a deep sleep (which the SDK defers, M37).
fn every_boot(console: &str) -> Result<(), String> {
    if console.contains("PERSISTENT") {
        return Err(format!(
            "a persistent (flash-writing) setter was called:\n{console}"
        ));
    }
    if let Some(line) = console
        .lines()
        .find(|l| l.starts_with("emu: softap up ssid=ESP-"))
    {
        return Err(format!(
            "the SDK's default access point came up ({line:?}):\n{console}"
        ));
    }
    if console.contains("emu: gpio: sensors still powered at deep sleep") {
        return Err(format!(
            "the device went to sleep with its sensors powered:\n{console}"
        ));
    }
    let mut asked = None;
    for line in console.lines() {
        if line.starts_with("emu: system_restart requested")
            || line.starts_with("emu: system_deep_sleep requested")
        {
            asked = Some(line);
        } else if let Some(request) = asked
            && !line.starts_with("emu: ")
        {
            return Err(format!(
                "the firmware printed {line:?} after {request:?}:\n{console}"
            ));
        }
    }
    Ok(())
}

fn expect(outcome: &Outcome, status: i32, lines: &[&str]) -> Result<(), String> {
    if outcome.status != status {
        return Err(format!(
            "expected exit {status} ({}), got {} ({}):\n{}",
            qemu::describe_status(status),
            outcome.status,
            qemu::describe_status(outcome.status),
            outcome.console
        ));
    }
    for line in lines {
        if !outcome.console.lines().any(|l| l.starts_with(line)) {
            return Err(format!(
                "no line starting with {line:?} in:\n{}",
                outcome.console
            ));
        }
    }
    Ok(())
}

fn saved_rtc(outcome: &Outcome) -> Result<Vec<u8>, String> {
    outcome
        .rtc
        .clone()
        .ok_or_else(|| format!("the run saved no RTC memory:\n{}", outcome.console))
}

/// Fails if `after` differs from `before` anywhere but in the SDK's parameter area.
fn unchanged_outside_parameter_area(before: &[u8], after: &[u8]) -> Result<(), String> {
    let area = FlashSize::FourMiB.layout().system_parameter;
    let outside = |i: usize| !(area.offset as usize..area.end() as usize).contains(&i);
    if before.len() != after.len() {
        return Err("the flash changed size".to_owned());
    }
    match (0..after.len()).find(|&i| outside(i) && before[i] != after[i]) {
        Some(at) => Err(format!(
            "flash changed outside the SDK's parameter area (first difference at {at:#x})"
        )),
        None => Ok(()),
    }
}

/// Fails if any secret appears anywhere in the scenario's flash file.
/// Prints what it looked for, so a scenario's output says what "clean" means.
fn flash_is_clean(dir: &Path, networks: &[&Network]) -> Result<(), String> {
    let flash = std::fs::read(dir.join("flash.bin")).map_err(|e| e.to_string())?;
    for network in networks {
        for (what, secret) in network.secrets() {
            if let Some(at) = flash
                .windows(secret.len())
                .position(|w| w == secret.as_slice())
            {
                return Err(format!(
                    "the {what} of {:?} is in flash at {at:#x}",
                    network.ssid
                ));
            }
        }
    }
    let names: Vec<String> = networks.iter().map(|n| format!("{:?}", n.ssid)).collect();
    println!(
        "        flash search ({} bytes): no SSID, passphrase, PSK or PSK hex (either case) of {}",
        flash.len(),
        names.join(", ")
    );
    Ok(())
}

/// A scenario: boots the given firmware ELF as often as it needs.
pub type ScenarioFn = fn(&Path) -> Result<(), String>;

/// Every scenario, by name.
pub fn all() -> Vec<(&'static str, ScenarioFn)> {
    let mut scenarios: Vec<(&'static str, ScenarioFn)> = vec![
        (
            "wake with a valid record connects with _current setters only",
            valid_wake,
        ),
        ("corrupt record -> setup mode, record wiped", corrupt_record),
        ("power-on -> record wiped, setup mode", power_on),
        (
            "torn write -> the old or the new record, never a mix",
            torn_write,
        ),
        (
            "failed connects -> backoff deep sleeps, record kept",
            failed_connects,
        ),
        ("old credentials in flash -> scrubbed, then setup", scrub),
        (
            "flash erase fails -> bounded scrub, no restart loop",
            scrub_fails,
        ),
        (
            "garden cycle: each wake's BME280, battery and soil reading queued in RTC memory; a missing or stuck sensor is missing",
            readings_queued,
        ),
    ];
    scenarios.extend(setup::all());
    scenarios.extend(sdk::all());
    scenarios
}

/// RTC memory holding a valid record for "Garden", and the access point that accepts it: a
/// deep-sleep wake with these connects, reports and sleeps (the whole garden-sensor cycle).
pub fn connected_cycle_inputs() -> Result<(Vec<u8>, Vec<ScriptedNetwork>), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    Ok((rtc_bytes(&stored(&garden)?), vec![garden.scripted(None)]))
}

fn stored(network: &Network) -> Result<RamRtc, String> {
    let mut mem = RamRtc::filled(0);
    rtc_record::store(&mut mem, &network.credentials()?).map_err(|e| e.to_string())?;
    Ok(mem)
}

/// A version 1 RTC image (a WiFi record, nothing in words 64..128 but noise) wakes four
/// times: with the BME280 and a wet probe; with no BME280 on the bus; with a device holding
/// SDA for 7 clocks (recovered); with the bus stuck for good. The record still loads; every
/// wake's reading is queued, oldest first; the climate is the datasheet formula's value of
/// the emulated raw readings at the queue's resolution, or missing when the sensor is, and a
/// missing sensor never stops the soil reading. Also the scenario of the
/// `canary-sensors-stay-powered` canary.
pub fn readings_queued(elf: &Path) -> Result<(), String> {
    use ramkey::readings::Ring;
    use ramkey_emu::i2c_bus::{Calibration, EMULATED_RAW, datasheet};
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = prepare("readings-queued")?;
    let mut rtc = stored(&garden)?;
    for word in &mut rtc.words[ramkey::rtc_layout::BOOT_STATE.start..] {
        *word = 0xA5A5_A5A5;
    }
    let (t, p, h) = datasheet(&Calibration::DATASHEET, &EMULATED_RAW);
    let climate = (
        t,
        (h as f64 / 1024.0 * 2.0).round() as i32,
        (p as f64 / 256.0 / 10.0).round() as i32,
    );
    let battery = (ramkey_emu::i2c_bus::EMULATED_BATTERY_MV / 20) as u8;
    // (adc, i2c faults, soil %, the I2C sensors answer, what the console says)
    let wakes: [(u16, u32, u8, bool, &str); 4] = [
        (450, 0, 50, true, "I sensor: bme280"),
        (
            620,
            1 | 16,
            0,
            false,
            "W sensor: bme280 missing (no device at that address)",
        ),
        (300, 2, 94, true, "I sensor: bme280"),
        (
            500,
            4,
            35,
            false,
            "W sensor: bme280 missing (the bus is stuck)",
        ),
    ];
    let mut queued: Vec<(u8, bool)> = Vec::new();
    for (adc, i2c, percent, answers, said) in wakes {
        let scenario = Scenario {
            reset_reason: 5,
            rtc: Some(rtc_bytes(&rtc)),
            networks: vec![garden.scripted(None)],
            adc: Some(adc),
            i2c,
            ..Scenario::default()
        };
        let out = boot_with(elf, &dir, scenario)?;
        queued.push((percent, answers));
        let battery_said = if answers { i32::from(battery) } else { -1 };
        expect(
            &out,
            EXIT_DEEP_SLEEP,
            &[
                "I boot: record Valid",
                said,
                &format!("I sensor: soil {percent} % (adc {adc}), battery {battery_said} x 20 mV"),
                &format!("I report: {} readings queued", queued.len()),
                "I report: no collector configured (no broker settings)",
            ],
        )?;
        rtc = rtc_words(&saved_rtc(&out)?);
        let ring = Ring::read(&rtc).map_err(|e| format!("queue unreadable: {e:?}"))?;
        let near = |got: Option<i32>, want: i32| got.is_some_and(|g| (g - want).abs() <= 1);
        // Each reading's time on the device clock: a 600 s sleep and the time awake apart.
        let times: Vec<u32> = ring.iter().map(|e| e.taken_s).collect();
        if times
            .windows(2)
            .any(|w| !(600..700).contains(&w[1].wrapping_sub(w[0])))
        {
            return Err(format!(
                "reading times {times:?}: expected one report period (600 s) and a few seconds awake apart"
            ));
        }
        for (k, (reading, &(percent, answers))) in
            ring.iter().map(|e| e.reading).zip(&queued).enumerate()
        {
            let i2c_ok = if answers {
                near(reading.temperature_centi_c.map(i32::from), climate.0)
                    && near(reading.humidity_half_pct.map(i32::from), climate.1)
                    && near(reading.pressure_deci_hpa.map(i32::from), climate.2)
                    && reading.battery_20mv == Some(battery)
            } else {
                reading.temperature_centi_c.is_none()
                    && reading.humidity_half_pct.is_none()
                    && reading.pressure_deci_hpa.is_none()
                    && reading.battery_20mv.is_none()
            };
            if reading.soil_pct != Some(percent) || !i2c_ok {
                return Err(format!(
                    "entry {k} after a wake with adc {adc}, i2c {i2c}: {reading:?}; expected soil {percent} % and {}",
                    if answers {
                        format!(
                            "climate {climate:?} (centi-C, half-%RH, deci-hPa), battery {battery} x 20 mV"
                        )
                    } else {
                        "climate and battery missing".to_owned()
                    }
                ));
            }
        }
        if ring.len() != queued.len() {
            return Err(format!(
                "{} readings queued, expected {}",
                ring.len(),
                queued.len()
            ));
        }
    }
    flash_is_clean(&dir, &[&garden])
}

fn valid_wake(elf: &Path) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = prepare("valid-wake")?;
    let out = boot(
        elf,
        &dir,
        5,
        Some(rtc_bytes(&stored(&garden)?)),
        vec![garden.scripted(None)],
    )?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &[
            "I boot: record Valid",
            "emu: wifi: wifi_set_opmode_current(1)",
            "emu: wifi: wifi_station_set_config_current ssid=Garden key=64 hex digits bssid_set=0",
            "I connected, ip 192.168.7.41",
        ],
    )?;
    let after = rtc_words(&saved_rtc(&out)?);
    let record = rtc_record::load(&after).map_err(|e| format!("record lost: {e}"))?;
    if record.cache
        != Some(ReconnectCache {
            bssid: garden.bssid,
            channel: garden.channel,
        })
    {
        return Err(format!("reconnect cache not updated: {:?}", record.cache));
    }
    // The next wake uses the cache: BSSID locked, channel known.
    let out = boot(
        elf,
        &dir,
        5,
        Some(rtc_bytes(&after)),
        vec![garden.scripted(None)],
    )?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &[
            "emu: wifi: wifi_station_set_config_current ssid=Garden key=64 hex digits bssid_set=1 channel=6",
            "I connected, ip",
        ],
    )?;
    flash_is_clean(&dir, &[&garden])
}

fn corrupt_record(elf: &Path) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = prepare("corrupt-record")?;
    let mut mem = stored(&garden)?;
    mem.words[6] ^= 0x0000_0100; // one bit of the SSID: the CRC no longer matches
    let out = boot(
        elf,
        &dir,
        5,
        Some(rtc_bytes(&mem)),
        vec![garden.scripted(None)],
    )?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &["I boot: record Corrupt", "I setup mode"],
    )?;
    if out.console.contains("wifi_station_connect") {
        return Err("connected with a corrupt record".to_owned());
    }
    let after = rtc_words(&saved_rtc(&out)?);
    if after.words[..64].iter().any(|&w| w != 0) {
        return Err("the corrupt record was not wiped".to_owned());
    }
    flash_is_clean(&dir, &[&garden])
}

fn power_on(elf: &Path) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = prepare("power-on")?;
    for reason in [0, 6] {
        let out = boot(
            elf,
            &dir,
            reason,
            Some(rtc_bytes(&stored(&garden)?)),
            vec![garden.scripted(None)],
        )?;
        expect(
            &out,
            EXIT_DEEP_SLEEP,
            &["I boot: record Valid", "I setup mode"],
        )?;
        let after = rtc_words(&saved_rtc(&out)?);
        if rtc_record::load(&after).is_ok() {
            return Err(format!(
                "reset reason {reason}: the record survived an untrusted reset"
            ));
        }
    }
    flash_is_clean(&dir, &[&garden])
}

/// A RAM RTC that stops accepting writes after `budget` words: a store cut by a reset.
struct Torn {
    mem: RamRtc,
    budget: usize,
}

impl RtcMemory for Torn {
    fn read_words(&self, offset: usize, out: &mut [u32]) -> Result<(), rtc_record::RtcError> {
        self.mem.read_words(offset, out)
    }

    fn write_words(&mut self, offset: usize, data: &[u32]) -> Result<(), rtc_record::RtcError> {
        for (i, &word) in data.iter().enumerate() {
            if self.budget == 0 {
                return Ok(());
            }
            self.budget -= 1;
            self.mem.write_words(offset + i, &[word])?;
        }
        Ok(())
    }
}

fn torn_write(elf: &Path) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let orchard = Network::new("Orchard", "apples and pears 42", 2, 11)?;
    let dir = prepare("torn-write")?;
    let networks = vec![garden.scripted(None), orchard.scripted(None)];
    // A store is 33 word writes: clear the target slot's magic, words 1..31, then the magic.
    for cut in [0, 1, 16, 31, 32, 33, 40] {
        let mut torn = Torn {
            mem: stored(&garden)?,
            budget: cut,
        };
        // The cut store reports an error (its read-back differs): that is the point.
        let _ = rtc_record::store(&mut torn, &orchard.credentials()?);
        let out = boot(elf, &dir, 5, Some(rtc_bytes(&torn.mem)), networks.clone())?;
        expect(
            &out,
            EXIT_DEEP_SLEEP,
            &["I boot: record Valid", "I connected, ip"],
        )?;
        let joined = if out.console.contains("ssid=Orchard") {
            "Orchard"
        } else {
            "Garden"
        };
        let complete = cut >= 33;
        if complete != (joined == "Orchard") {
            return Err(format!("store cut after {cut} words joined {joined}"));
        }
    }
    flash_is_clean(&dir, &[&garden, &orchard])
}

fn failed_connects(elf: &Path) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = prepare("failed-connects")?;
    // The access point now wants another key (its passphrase was changed).
    let changed = garden.scripted(Some([0x5A; 32]));
    let mut rtc = rtc_bytes(&stored(&garden)?);
    for expected_seconds in [30, 60, 120] {
        let out = boot(elf, &dir, 5, Some(rtc.clone()), vec![changed.clone()])?;
        expect(
            &out,
            EXIT_DEEP_SLEEP,
            &[
                "W connection failed, reason 204",
                &format!("I backing off: deep sleep {expected_seconds} s, record kept"),
            ],
        )?;
        if out.console.contains("setup mode") {
            return Err("a failed connection opened setup mode".to_owned());
        }
        rtc = saved_rtc(&out)?;
        rtc_record::load(&rtc_words(&rtc))
            .map_err(|e| format!("record lost after a failure: {e}"))?;
    }
    // The access point vanishes: no AP found, still backing off.
    let out = boot(elf, &dir, 5, Some(rtc), vec![])?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &[
            "W connection failed, reason 201",
            "I backing off: deep sleep 300 s",
        ],
    )?;
    flash_is_clean(&dir, &[&garden])
}

fn scrub(elf: &Path) -> Result<(), String> {
    let old = Network::new("OldNet", "old-secret-passphrase", 3, 1)?;
    let dir = prepare("scrub")?;
    sdk::plant_old_firmware(&dir, Some(&old), wifi_sys::STATION_MODE)?;
    let out = boot(elf, &dir, 0, None, vec![])?;
    expect(
        &out,
        EXIT_RESTART,
        &[
            "I boot: record",
            "emu: flash erase sector 0x3fd: ok",
            "emu: flash erase sector 0x3ff: ok",
        ],
    )?;
    let out = boot(elf, &dir, 4, Some(saved_rtc(&out)?), vec![])?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &["I boot: record Absent, flash Scrubbed", "I setup mode"],
    )?;
    flash_is_clean(&dir, &[&old])?;
    let flash = std::fs::read(dir.join("flash.bin")).map_err(|e| e.to_string())?;
    if flash.windows(6).any(|w| w == b"OldNet") {
        return Err("the old SSID is still in flash".to_owned());
    }
    Ok(())
}

fn scrub_fails(elf: &Path) -> Result<(), String> {
    let old = Network::new("OldNet", "old-secret-passphrase", 3, 1)?;
    let dir = prepare("scrub-fails")?;
    sdk::plant_old_firmware(&dir, Some(&old), wifi_sys::STATION_MODE)?;
    let mut reason = 0;
    let mut rtc = None;
    for boot_number in 1..=ramkey::boot::MAX_SCRUB_ATTEMPTS as usize + 2 {
        let scenario = Scenario {
            reset_reason: reason,
            rtc: rtc.clone(),
            erase_fails: true,
            ..Scenario::default()
        };
        let out = boot_with(elf, &dir, scenario)?;
        match out.status {
            EXIT_RESTART => {
                reason = 4;
                rtc = out.rtc.clone();
            }
            EXIT_DEEP_SLEEP => {
                expect(&out, EXIT_DEEP_SLEEP, &["I boot: record", "I setup mode"])?;
                if !out.console.contains("GaveUp") {
                    return Err(format!(
                        "ended without giving up the scrub:\n{}",
                        out.console
                    ));
                }
                return Ok(());
            }
            other => {
                return Err(format!(
                    "boot {boot_number}: exit {other}:\n{}",
                    out.console
                ));
            }
        }
    }
    Err(format!(
        "still restarting after {} boots",
        ramkey::boot::MAX_SCRUB_ATTEMPTS as usize + 2
    ))
}

/// Keeps `USER_WORDS` referenced: the RTC images above are exactly the user area.
const _: () = assert!(USER_WORDS * 4 == 512);

/// `cargo xtask scenarios [filter]`: builds the emulated firmware and runs the matching
/// scenarios, one line each.
pub fn command(args: &[String]) -> Result<(), String> {
    let filter = args.first().map(String::as_str).unwrap_or_default();
    crate::setup::ensure_build_tools()?;
    crate::setup::ensure_qemu()?;
    let out = crate::firmware::build(&crate::firmware::BuildOptions::default())?;
    let elf = out
        .emu_elf
        .ok_or("the build has no emulated ELF (is ESP8266_NONOS_SDK set?)")?;
    let mut failed = 0;
    for (name, scenario) in all().into_iter().filter(|(n, _)| n.contains(filter)) {
        match scenario(&elf) {
            Ok(()) => println!("ok: {name}"),
            Err(e) => {
                failed += 1;
                println!("FAILED: {name}\n{e}");
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} scenarios failed"))
    }
}
