//! Scenarios of the SDK as it really is (`docs/sdk-model.md`), and the canaries of ramkey's
//! defences against it.
//!
//! Each scenario boots the firmware against an emulated SDK that does what the model says the
//! real one does: saves its parameter block at boot, brings up its default SoftAP for a blank
//! opmode, auto-connects with stored credentials before the init-done callback, persists what
//! it learns while `PmkCurrent` is set, defers restarts. A *canary* is a firmware build with
//! one defence left out (a cargo feature); it must make its scenario fail, or the defence is
//! not shown to work. Two scenarios use hypothetical SDK behaviours the model does not have
//! (harness flags, printed as `emu: HYPOTHETICAL`): they reach the SDK's own saves and an
//! unknown flash write, which ramkey's other defences would otherwise keep out of reach.

use std::path::Path;

use ramkey::flash_layout::FlashSize;
use wifi_sys::param as at;

use super::{
    EXIT_DEEP_SLEEP, EXIT_RESTART, Network, boot_with, expect, flash_is_clean, prepare, rtc_bytes,
    saved_rtc, stored,
};
use crate::qemu::Scenario;

/// QEMU exit status of the emulated soft watchdog (`emu/src/sdk.rs`).
const EXIT_WATCHDOG: i32 = 12;
/// The emulated chip's station MAC (`emu/src/wifi.rs`): an older firmware's block on this
/// chip carries it as its MAC backup, so the SDK's boot does not save the block again.
const STATION_MAC: [u8; 6] = [0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3];

pub use super::ScenarioFn;

/// The scenarios of the modelled SDK, for the normal build.
pub fn all() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        (
            "SDK: erased flash -> its boot saves store safe defaults, its default AP never starts",
            erased_flash,
        ),
        (
            "SDK: an older firmware's network in range -> no start-up auto-connect, scrubbed",
            old_network_in_range,
        ),
        (
            "SDK: setup's access point starts with ramkey's config, never the default one",
            setup_ap_config_first,
        ),
        (
            "SDK: its own saves while connected (hypothetical: PmkCurrent stays set) store nothing",
            sdk_saves_while_connected,
        ),
        (
            "SDK: an unknown flash write of its RAM block (hypothetical) is cleaned",
            unknown_ram_block_write,
        ),
    ]
}

/// A defence left out, and the scenario that must then fail (or, for `holds`, still pass:
/// one defence alone must be enough where two are layered).
pub struct Canary {
    /// What is left out.
    pub name: &'static str,
    /// The cargo features of the canary build.
    pub features: &'static [&'static str],
    /// The scenario.
    pub scenario: ScenarioFn,
    /// `true`: the scenario must still pass (the other layer holds alone).
    pub holds: bool,
}

/// Every canary, by defence (README, "Defences against the SDK").
pub fn canaries() -> Vec<Canary> {
    vec![
        Canary {
            name: "no _current radio config in user_init: the SDK's default AP comes up",
            features: &["canary-no-early-config"],
            scenario: erased_flash,
            holds: false,
        },
        Canary {
            name: "no _current radio config in user_init: the SDK auto-connects with an older firmware's credentials",
            features: &["canary-no-early-config"],
            scenario: old_network_in_range,
            holds: false,
        },
        Canary {
            name: "no SoftAP config in user_init: setup's AP starts with the SDK's default config",
            features: &["canary-no-early-config"],
            scenario: setup_ap_config_first,
            holds: false,
        },
        Canary {
            name: "no scrub: an older firmware's credentials stay in flash",
            features: &["canary-no-scrub"],
            scenario: old_network_in_range,
            holds: false,
        },
        Canary {
            name: "no flash firewall: the SDK's boot saves store its SoftAP default and auto-connect",
            features: &["canary-no-firewall"],
            scenario: erased_flash,
            holds: false,
        },
        Canary {
            name: "no flash firewall: an unknown write of the RAM block stores the network",
            features: &["canary-no-firewall"],
            scenario: unknown_ram_block_write,
            holds: false,
        },
        Canary {
            name: "SDK saves unwrapped: the firewall alone keeps their writes clean",
            features: &["canary-no-sdk-save-wrap"],
            scenario: sdk_saves_while_connected,
            holds: true,
        },
        Canary {
            name: "no flash firewall: the refused SDK saves alone keep flash clean",
            features: &["canary-no-firewall"],
            scenario: sdk_saves_while_connected,
            holds: true,
        },
        Canary {
            name: "SDK saves unwrapped and no firewall: the SDK stores the network",
            features: &["canary-no-sdk-save-wrap", "canary-no-firewall"],
            scenario: sdk_saves_while_connected,
            holds: false,
        },
        Canary {
            name: "setup matches closes by the connection's espconn: a client that hangs up mid-answer holds the portal until its deadline",
            features: &["canary-pointer-match"],
            scenario: super::bridged::hostile,
            holds: false,
        },
        Canary {
            name: "per-byte idle timer, no takeover: a slowloris client and idle connections lock a phone out",
            features: &["canary-per-byte-idle"],
            scenario: super::bridged::lockout,
            holds: false,
        },
        Canary {
            name: "sensors left powered into deep sleep",
            features: &["canary-sensors-stay-powered"],
            scenario: super::readings_queued,
            holds: false,
        },
        Canary {
            name: "the report sends before lwIP acknowledged its last send",
            features: &["canary-report-send-without-wait"],
            scenario: super::bridged::report,
            holds: false,
        },
    ]
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The parameter block the SDK would boot from: the data sector the flag record names.
fn current_block(flash: &[u8]) -> (usize, &[u8]) {
    let area = FlashSize::FourMiB.layout().system_parameter.offset as usize;
    let sector = usize::from(flash[area + 2 * 0x1000] != 0);
    let start = area + sector * 0x1000;
    (sector, &flash[start..start + at::BLOCK_LEN])
}

/// An older firmware's parameter block on this chip, as the SDK would have saved it after
/// `wifi_station_set_config` (M32): the network (if any) in the station fields and AP-cache
/// slot 0, the passphrase as typed, a PMK still to be derived, the given opmode,
/// auto-connect on, and a valid flag record naming sector 0.
pub(super) fn plant_old_firmware(
    dir: &Path,
    old: Option<&Network>,
    opmode: u8,
) -> Result<(), String> {
    let path = dir.join("flash.bin");
    let mut flash = std::fs::read(&path).map_err(|e| e.to_string())?;
    let mut block = vec![0u8; at::BLOCK_LEN];
    block[at::OPMODE] = opmode;
    let ssid = old.map_or(&b""[..], |n| n.ssid.as_bytes());
    let passphrase = old.map_or(&b""[..], |n| n.passphrase.as_bytes());
    for (len_at, ssid_at, password_at) in [
        (at::STA_SSID_LEN, at::STA_SSID, at::STA_PASSWORD),
        (at::SLOT_SSID_LEN, at::SLOT_SSID, at::SLOT_PASSWORD),
    ] {
        block[len_at..len_at + 4].copy_from_slice(&(ssid.len() as u32).to_le_bytes());
        block[ssid_at..ssid_at + ssid.len()].copy_from_slice(ssid);
        block[password_at..password_at + passphrase.len()].copy_from_slice(passphrase);
    }
    block[at::STA_PMK_INVALID] = 1;
    block[at::STA_PMK..at::STA_PMK + 32].fill(0xFF);
    for slot in 0..at::SLOTS {
        block[at::SLOT_PMK + 32 * slot..at::SLOT_PMK + 32 * slot + 32].fill(0xFF);
        if slot > 0 || old.is_none() {
            let s = at::SLOT_SSID + slot * at::SLOT_STRIDE;
            block[s..s + 32].fill(0xFF);
        }
    }
    block[at::CACHE_SIZE] = 1;
    block[at::AUTO_CONNECT] = 1;
    // The SoftAP fields as the SDK's first boot left them (M13, M18): its default, open.
    let default_ap = b"ESP-A1B2C3";
    block[at::AP_SSID_LEN..at::AP_SSID_LEN + 4]
        .copy_from_slice(&(default_ap.len() as u32).to_le_bytes());
    block[at::AP_SSID..at::AP_SSID + default_ap.len()].copy_from_slice(default_ap);
    block[at::AP_CHANNEL] = 1;
    block[at::AP_MAX_CONN] = 4;
    block[at::AP_BEACON..at::AP_BEACON + 2].copy_from_slice(&100u16.to_le_bytes());
    block[at::MAC_BACKUP..at::MAC_BACKUP + 6].copy_from_slice(&STATION_MAC);
    let mut flag = [0xFFu8; at::FLAG_LEN];
    flag[0] = 0;
    flag[4..8].copy_from_slice(&at::FLAG_MAGIC_1.to_le_bytes());
    flag[8..12].copy_from_slice(&7u32.to_le_bytes());
    flag[at::FLAG_LEN_WORDS..at::FLAG_LEN_WORDS + 4].copy_from_slice(&32u32.to_le_bytes());
    let sum = block[..at::CHECKSUM_LEN]
        .iter()
        .fold(at::CHECKSUM_SEED, |acc, b| acc ^ b);
    flag[at::FLAG_CHECKSUM_WORDS..at::FLAG_CHECKSUM_WORDS + 4]
        .copy_from_slice(&u32::from(sum).to_le_bytes());
    flag[28..32].copy_from_slice(&at::FLAG_MAGIC_2.to_le_bytes());
    let area = FlashSize::FourMiB.layout().system_parameter.offset as usize;
    flash[area..area + block.len()].copy_from_slice(&block);
    flash[area + 2 * 0x1000..area + 2 * 0x1000 + flag.len()].copy_from_slice(&flag);
    std::fs::write(&path, flash).map_err(|e| e.to_string())
}

/// Boots with the per-boot checks of `boot_with`.
fn boot(elf: &Path, dir: &Path, scenario: Scenario) -> Result<crate::qemu::Outcome, String> {
    boot_with(elf, dir, scenario)
}

fn erased_flash(elf: &Path) -> Result<(), String> {
    let dir = prepare("sdk-erased-flash")?;
    let out = boot(elf, &dir, Scenario::default())?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &[
            "emu: sdk: MAC backup differs: saving the parameter block",
            "emu: sdk: blank opmode: SoftAP by default, saving the parameter block",
            "emu: sdk: start-up applies opmode 0",
            "I setup mode",
        ],
    )?;
    let flash = std::fs::read(dir.join("flash.bin")).map_err(|e| e.to_string())?;
    let (sector, block) = current_block(&flash);
    if (block[at::OPMODE], block[at::AUTO_CONNECT]) != (0, 0) {
        return Err(format!(
            "the SDK's boot save stored opmode {} and auto-connect {:#x} in sector {sector} (safe: 0 and 0)",
            block[at::OPMODE],
            block[at::AUTO_CONNECT]
        ));
    }
    let flag_at = FlashSize::FourMiB.layout().system_parameter.offset as usize + 2 * 0x1000;
    let flag = &flash[flag_at..flag_at + at::FLAG_LEN];
    let sum = block[..at::CHECKSUM_LEN]
        .iter()
        .fold(at::CHECKSUM_SEED, |acc, b| acc ^ b);
    if le32(flag, at::FLAG_CHECKSUM_WORDS + 4 * sector) != u32::from(sum) {
        return Err("the stored block's checksum does not match it".to_owned());
    }
    println!("        stored block: opmode 0, auto-connect 0, checksum valid");
    Ok(())
}

fn old_network_in_range(elf: &Path) -> Result<(), String> {
    let old = Network::new("OldNet", "old-secret-passphrase", 3, 1)?;
    let dir = prepare("sdk-old-network")?;
    plant_old_firmware(&dir, Some(&old), wifi_sys::STATION_MODE)?;
    let networks = vec![old.scripted(None)];
    let first = Scenario {
        networks: networks.clone(),
        ..Scenario::default()
    };
    let out = boot(elf, &dir, first)?;
    if let Some(line) = out
        .console
        .lines()
        .find(|l| l.starts_with("emu: sdk: start-up auto-connect"))
    {
        return Err(format!(
            "the SDK connected with the stored credentials before ramkey decided: {line:?}"
        ));
    }
    expect(
        &out,
        EXIT_RESTART,
        &["I boot: record Absent, flash Erasing { attempt: 1 } -> scrub flash and restart"],
    )?;
    let out = boot(
        elf,
        &dir,
        Scenario {
            reset_reason: 4,
            rtc: Some(saved_rtc(&out)?),
            networks,
            ..Scenario::default()
        },
    )?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &["I boot: record Absent, flash Scrubbed", "I setup mode"],
    )?;
    flash_is_clean(&dir, &[&old])
}

fn setup_ap_config_first(elf: &Path) -> Result<(), String> {
    let dir = prepare("sdk-setup-ap")?;
    super::setup::provisioned_flash(&dir)?;
    // An older firmware left station mode and no network: nothing to scrub, and the SDK's
    // start-up starts only the station, so the SoftAP comes up only when setup asks for it.
    plant_old_firmware(&dir, None, wifi_sys::STATION_MODE)?;
    let out = boot(elf, &dir, Scenario::default())?;
    let first_ap = out
        .console
        .lines()
        .find(|l| l.starts_with("emu: softap up"))
        .ok_or_else(|| format!("no SoftAP came up:\n{}", out.console))?;
    if !first_ap.starts_with("emu: softap up ssid=ramkey-A1B2C3 auth=3") {
        return Err(format!("the first SoftAP was {first_ap:?}"));
    }
    if out.console.contains("emu: softap reconfigured") {
        return Err("the SoftAP was reconfigured after it came up".to_owned());
    }
    println!("        first SoftAP: {first_ap}");
    Ok(())
}

fn sdk_saves_while_connected(elf: &Path) -> Result<(), String> {
    hypothetical_wake(
        elf,
        "sdk-saves",
        |s| s.pmk_current_sticky = true,
        "emu: HYPOTHETICAL: PmkCurrent stays set",
    )
}

fn unknown_ram_block_write(elf: &Path) -> Result<(), String> {
    hypothetical_wake(
        elf,
        "sdk-unknown-write",
        |s| s.save_ram_when_connected = true,
        "emu: HYPOTHETICAL: the SDK saves its RAM block",
    )
}

/// A deep-sleep wake that connects to Garden with one hypothetical SDK behaviour switched on
/// (`announced` is the emulator's line saying so): the flash must stay clean.
fn hypothetical_wake(
    elf: &Path,
    name: &str,
    behaviour: impl FnOnce(&mut Scenario),
    announced: &str,
) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = prepare(name)?;
    let mut scenario = Scenario {
        reset_reason: 5,
        rtc: Some(rtc_bytes(&stored(&garden)?)),
        networks: vec![garden.scripted(None)],
        ..Scenario::default()
    };
    behaviour(&mut scenario);
    let out = boot(elf, &dir, scenario)?;
    expect(&out, EXIT_DEEP_SLEEP, &[announced, "I connected, ip"])?;
    flash_is_clean(&dir, &[&garden])
}

/// A panic after connecting ends in the soft watchdog's reset (the panic handler cannot
/// return to the SDK, M38), and the next boot trusts the record whichever reason the SDK
/// reports (4 by its code, 3 by its header: M38 leaves it open).
pub fn panic_path(panicking: &Path, normal: &Path) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    for reason in [3, 4] {
        let dir = prepare(&format!("sdk-panic-{reason}"))?;
        let out = boot(
            panicking,
            &dir,
            Scenario {
                reset_reason: 5,
                rtc: Some(rtc_bytes(&stored(&garden)?)),
                networks: vec![garden.scripted(None)],
                ..Scenario::default()
            },
        )?;
        expect(
            &out,
            EXIT_WATCHDOG,
            &["E panic at", "emu: soft watchdog: a callback kept the SDK"],
        )?;
        let out = boot(
            normal,
            &dir,
            Scenario {
                reset_reason: reason,
                rtc: Some(saved_rtc(&out)?),
                networks: vec![garden.scripted(None)],
                ..Scenario::default()
            },
        )?;
        expect(
            &out,
            EXIT_DEEP_SLEEP,
            &["I boot: record Valid", "I connected, ip"],
        )?;
        flash_is_clean(&dir, &[&garden])?;
    }
    Ok(())
}
