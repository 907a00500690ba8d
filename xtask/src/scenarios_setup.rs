//! Setup-mode scenarios: the lx106 firmware's portal, driven by a scripted phone.
//!
//! The phone's traffic is `net-in.bin` (see `emu/src/net.rs`): a DNS query, a captive-portal
//! probe, the form, a wrong then a right passphrase with pauses in between, and status page
//! reads. Everything the firmware sent comes back in `net-out.bin` and is checked response by
//! response; then the RTC record it left is loaded, the flash is compared byte for byte with
//! what the scenario put there, and the next boot (a deep-sleep wake) must connect.

use std::path::Path;

use ramkey::flash_layout::FlashSize;
use ramkey::identity::SetupPassphrase;
use ramkey::rtc_record::{self, NetworkKey};

use super::{
    EXIT_DEEP_SLEEP, Network, boot, expect, flash_is_clean, prepare, rtc_words, saved_rtc,
};
use crate::flashbus;
use crate::qemu::ScriptedNetwork;

const KIND_TCP: u32 = 1;
const KIND_UDP: u32 = 2;
const KIND_PAUSE: u32 = 3;

/// The setup passphrase the scenarios provision (what `cargo xtask provision-key` would write).
const SETUP_PASSPHRASE: &str = "k7m3p-x9qrt-4hwzc-b8nfd";
/// The emulated chip's soft-AP MAC ends in A1:B2:C3 (`emu/src/wifi.rs`).
const AP_NAME: &str = "ramkey-A1B2C3";

/// An erased 4 MB flash with the identity sector written, as provisioning leaves it.
pub(super) fn provisioned_flash(dir: &Path) -> Result<Vec<u8>, String> {
    let passphrase =
        SetupPassphrase::new(SETUP_PASSPHRASE.as_bytes()).map_err(|e| e.to_string())?;
    let sector = crate::provision::identity_sector(&passphrase);
    let mut flash = vec![0xFFu8; FlashSize::FourMiB.bytes() as usize];
    let offset = FlashSize::FourMiB.layout().device_identity.offset as usize;
    flash[offset..offset + sector.len()].copy_from_slice(&sector);
    std::fs::write(dir.join("flash.bin"), &flash).map_err(|e| e.to_string())?;
    Ok(flash)
}

/// The scripted phone's traffic.
#[derive(Default)]
struct Script(Vec<u8>);

impl Script {
    fn record(&mut self, kind: u32, port: u32, bytes: &[u8]) -> &mut Script {
        self.0.extend_from_slice(&kind.to_le_bytes());
        self.0.extend_from_slice(&port.to_le_bytes());
        self.0
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self.0.resize(self.0.len().div_ceil(4) * 4, 0);
        self
    }

    fn get(&mut self, host: &str, path: &str) -> &mut Script {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: scripted-phone\r\nAccept: text/html\r\n\r\n"
        );
        self.record(KIND_TCP, 80, request.as_bytes())
    }

    fn post(&mut self, body: &str) -> &mut Script {
        let request = format!(
            "POST /connect HTTP/1.1\r\nHost: 192.168.4.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.record(KIND_TCP, 80, request.as_bytes())
    }

    fn raw(&mut self, bytes: &[u8]) -> &mut Script {
        self.record(KIND_TCP, 80, bytes)
    }

    fn dns_a(&mut self, id: u16, name: &str) -> &mut Script {
        let mut query = Vec::new();
        query.extend_from_slice(&id.to_be_bytes());
        query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        self.record(KIND_UDP, 53, &query)
    }

    fn pause(&mut self, ms: u32) -> &mut Script {
        self.record(KIND_PAUSE, ms, &[])
    }
}

/// What the firmware sent: DNS datagrams, and TCP responses (chunks joined per response).
struct Sent {
    dns: Vec<Vec<u8>>,
    http: Vec<String>,
}

fn sent(dir: &Path) -> Result<Sent, String> {
    let bytes = std::fs::read(dir.join("net-out.bin")).unwrap_or_default();
    let mut out = Sent {
        dns: Vec::new(),
        http: Vec::new(),
    };
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let (kind, len) = (word(at), word(at + 8) as usize);
        let data = bytes
            .get(at + 12..at + 12 + len)
            .ok_or("net-out.bin is truncated")?;
        if kind == KIND_UDP {
            out.dns.push(data.to_vec());
        } else {
            let text = String::from_utf8_lossy(data).into_owned();
            match out.http.last_mut() {
                Some(last) if !text.starts_with("HTTP/1.1 ") => last.push_str(&text),
                _ => out.http.push(text),
            }
        }
        at += 12 + len.div_ceil(4) * 4;
    }
    Ok(out)
}

fn check_response(
    response: Option<&String>,
    what: &str,
    status: &str,
    contains: &[&str],
) -> Result<(), String> {
    let response = response.ok_or_else(|| format!("{what}: no response"))?;
    if !response.starts_with(&format!("HTTP/1.1 {status}")) {
        return Err(format!("{what}: expected {status}, got:\n{response}"));
    }
    let lower = response.to_lowercase();
    for needle in contains {
        if !lower.contains(&needle.to_lowercase()) {
            return Err(format!("{what}: no {needle:?} in:\n{response}"));
        }
    }
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{what}: no end of headers"))?;
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .ok_or_else(|| format!("{what}: no Content-Length"))?;
    if length != body.len() {
        return Err(format!(
            "{what}: Content-Length {length}, body {} bytes",
            body.len()
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every setup scenario, by name.
pub fn all() -> Vec<(&'static str, super::ScenarioFn)> {
    let all: Vec<(&'static str, super::ScenarioFn)> = vec![
        (
            "setup: a phone sets the device up through the portal (wrong, then right passphrase)",
            phone_setup,
        ),
        (
            "setup: without a device identity the AP stays off",
            no_identity,
        ),
        (
            "setup: 10 minutes without success -> deep sleep, nothing stored",
            setup_timeout,
        ),
    ];
    all
}

pub fn phone_setup(elf: &Path) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = prepare("setup-phone")?;
    let flash_before = provisioned_flash(&dir)?;
    let cafe = ScriptedNetwork {
        ssid: b"Cafe Guest".to_vec(),
        psk: None,
        passphrase: Vec::new(),
        channel: 11,
        bssid: [0x02, 0x52, 0x4B, 0, 0, 9],
        ip: [10, 0, 0, 9],
        silent: false,
        rssi: -71,
    };
    let ssid_hex = hex(garden.ssid.as_bytes());
    let mut script = Script::default();
    script
        .pause(3000) // the scan finishes
        .dns_a(0x1234, "connectivitycheck.gstatic.com")
        .get("connectivitycheck.gstatic.com", "/generate_204")
        .get("192.168.4.1", "/")
        .raw(b"GET / HTTP/1.1\r\nHost: \x00\xff\r\n\r\n")
        .raw(format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(3000)).as_bytes())
        .post(&format!("net={ssid_hex}&pass=short"))
        .post(&format!("net={ssid_hex}&pass=wrong+horse+battery"))
        .get("192.168.4.1", "/status")
        .pause(8000)
        .get("192.168.4.1", "/status")
        .post(&format!(
            "net={ssid_hex}&pass=correct+horse+battery&mqtt=10.0.0.7&mport=1884&muser=garden&mpass=scripted+mqtt+pw&period=5"
        ))
        .pause(8000)
        .get("192.168.4.1", "/status");
    std::fs::write(dir.join("net-in.bin"), &script.0).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(dir.join("net-out.bin"));

    let out = boot(elf, &dir, 0, None, vec![garden.scripted(None), cafe])?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &[
            "I setup mode",
            "emu: wifi: wifi_set_opmode_current(3)",
            &format!(
                "emu: wifi: wifi_softap_set_config_current ssid={AP_NAME} auth=3 channel=6 hidden=0 max_connection=1 key={} chars",
                SETUP_PASSPHRASE.len()
            ),
            "emu: wifi: wifi_softap_dhcps_start",
            "emu: net: listening on tcp:80",
            "emu: net: listening on udp:53",
            "I setup: connected; credentials kept in RTC memory",
            "I setup: done; restarting in station mode",
        ],
    )?;
    if out.console.contains(SETUP_PASSPHRASE) || out.console.contains("horse") {
        return Err(format!(
            "a passphrase reached the console:\n{}",
            out.console
        ));
    }
    // The page text came from flash (src/flash_text.rs), read in whole words; every boot's
    // flash-bus report has already been checked for narrower loads.
    let bus = flashbus::read(&dir.join("flashbus-0.txt"))?;
    if bus.text_loads32 < 500 {
        return Err(format!(
            "the portal read only {} words of its flash text: is the page text still in DRAM?",
            bus.text_loads32
        ));
    }
    let sent = sent(&dir)?;
    // DNS: the probe's name resolves to the portal.
    let answer = sent.dns.first().ok_or("no DNS answer")?;
    if answer.get(..2) != Some(&[0x12, 0x34][..]) || !answer.ends_with(&[192, 168, 4, 1]) {
        return Err(format!(
            "DNS answer {answer:02x?} does not point at 192.168.4.1"
        ));
    }
    let mut http = sent.http.iter();
    check_response(
        http.next(),
        "Android probe",
        "302",
        &["location: http://192.168.4.1/"],
    )?;
    check_response(
        http.next(),
        "form",
        "200",
        &["Garden", "Cafe Guest", AP_NAME, "<form"],
    )?;
    check_response(http.next(), "bad Host header", "400", &[])?;
    check_response(http.next(), "3000-byte request line", "431", &[])?;
    check_response(
        http.next(),
        "short passphrase",
        "200",
        &["Garden", "The passphrase is too short"],
    )?;
    check_response(
        http.next(),
        "wrong passphrase submitted",
        "303",
        &["location: /status"],
    )?;
    check_response(http.next(), "status while testing", "200", &["refresh"])?;
    check_response(
        http.next(),
        "status after the wrong passphrase",
        "200",
        &["passphrase"],
    )?;
    check_response(
        http.next(),
        "right passphrase submitted",
        "303",
        &["location: /status"],
    )?;
    check_response(
        http.next(),
        "status after success",
        "200",
        &["192.168.7.41"],
    )?;
    if let Some(extra) = http.next() {
        return Err(format!("unexpected extra response:\n{extra}"));
    }
    // The requests reached the firmware in pieces, as lwIP hands them over, not whole.
    let pieces: Vec<u32> = out
        .console
        .lines()
        .filter_map(|l| l.strip_prefix("emu: net: tcp:80 request arrived in "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    // (The 3000-byte request line is answered before all of it arrives.)
    if pieces.len() + 1 < sent.http.len() || pieces.iter().filter(|&&n| n > 1).count() < 5 {
        return Err(format!(
            "{} responses, but the requests arrived in {pieces:?} segments: not segmented",
            sent.http.len()
        ));
    }
    for response in &sent.http {
        if response.contains("horse")
            || response.contains("mqtt+pw")
            || response.contains("mqtt pw")
        {
            return Err(format!(
                "a response echoes the passphrase or the MQTT password:\n{response}"
            ));
        }
    }
    // The record: Garden, with the key derived from the right passphrase.
    let after = rtc_words(&saved_rtc(&out)?);
    let record =
        rtc_record::load(&after).map_err(|e| format!("no valid record after setup: {e}"))?;
    let expected_key = NetworkKey::Psk(ramkey::secret::Psk::from_bytes(&garden.psk));
    if record.ssid.as_bytes() != garden.ssid.as_bytes() || record.key != expected_key {
        return Err(format!("setup stored {record:?}"));
    }
    // The broker as the form gave it, in RTC memory beside the record.
    let broker = ramkey::settings::load(&after)
        .map_err(|e| format!("no broker settings after setup: {e}"))?;
    if broker.host.ipv4() != Some([10, 0, 0, 7])
        || (broker.port, broker.period_s) != (1884, 300)
        || broker.password().map(|p| p.expose_secret()) != Some(&b"scripted mqtt pw"[..])
    {
        return Err(format!("setup stored the broker as {broker:?}"));
    }
    // Nothing of it in flash: outside the SDK's parameter area (which the SDK itself writes
    // on a first boot, docs/sdk-model.md M12-M14) the flash is byte for byte what
    // provisioning left, and the search finds no secret anywhere.
    let flash_after = std::fs::read(dir.join("flash.bin")).map_err(|e| e.to_string())?;
    super::unchanged_outside_parameter_area(&flash_before, &flash_after)?;
    flash_is_clean(&dir, &[&garden])?;
    if flash_after.windows(16).any(|w| w == b"scripted mqtt pw") {
        return Err("the MQTT password is in flash".to_owned());
    }
    // The short sleep ends in station mode with the new record, and reports to the broker
    // (no scripted server answers: refused, readings kept, back-off).
    let _ = std::fs::remove_file(dir.join("net-in.bin"));
    let out = boot(
        elf,
        &dir,
        5,
        Some(rtc_bytes_of(&after)),
        vec![garden.scripted(None)],
    )?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &[
            "I boot: record Valid",
            "I connected, ip 192.168.7.41",
            "I report: connecting to 10.0.0.7:1884",
            "W report: failed (connection error); 1 readings kept, next try in 300 s",
        ],
    )?;
    if out.console.contains("wifi_softap_set_config_current") {
        return Err("the soft AP came up again after a successful setup".to_owned());
    }
    Ok(())
}

fn rtc_bytes_of(mem: &rtc_record::RamRtc) -> Vec<u8> {
    mem.words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn no_identity(elf: &Path) -> Result<(), String> {
    let dir = prepare("setup-no-identity")?;
    let out = boot(elf, &dir, 0, None, Vec::new())?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &["I setup mode", "E setup: no device identity"],
    )?;
    if out.console.contains("wifi_softap_set_config_current") || out.console.contains("listening") {
        return Err(format!(
            "the AP or the portal started without an identity:\n{}",
            out.console
        ));
    }
    Ok(())
}

fn setup_timeout(elf: &Path) -> Result<(), String> {
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = prepare("setup-timeout")?;
    provisioned_flash(&dir)?;
    let ssid_hex = hex(garden.ssid.as_bytes());
    let mut script = Script::default();
    script
        .pause(3000)
        .post(&format!("net={ssid_hex}&pass=wrong+horse+battery"));
    std::fs::write(dir.join("net-in.bin"), &script.0).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(dir.join("net-out.bin"));
    let out = boot(elf, &dir, 0, None, vec![garden.scripted(None)])?;
    expect(
        &out,
        EXIT_DEEP_SLEEP,
        &[
            "I setup mode",
            "W setup: connection test failed",
            "I setup: no successful setup in 10 minutes",
        ],
    )?;
    let after = rtc_words(&saved_rtc(&out)?);
    if rtc_record::load(&after).is_ok() {
        return Err("a failed setup left a record".to_owned());
    }
    flash_is_clean(&dir, &[&garden])
}
