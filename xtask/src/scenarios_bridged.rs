//! Real clients against the lx106 firmware: QEMU behind the espconn bridge (`bridge.rs`).
//!
//! Each test boots the firmware into setup mode on a provisioned flash, with the host
//! portal's scripted networks, and lets real software talk to it over the host's loopback:
//! headless Chromium walks the setup page, `dig` queries the captive DNS, hostile clients
//! (`hostile.rs`) attack the portal. Every test also reads the firmware's own record of what
//! it served (its `I portal: answered` and `I dns: answered` lines), so none can pass by
//! talking to something else. No instruction-level plugin runs here: the clock is the host's.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ramkey::rtc_record::{self, NetworkKey};

use super::{EXIT_DEEP_SLEEP, Network, flash_is_clean, rtc_words};
use crate::qemu::{self, Echo, Running, Scenario};
use crate::util;

/// How long the firmware may take to open its portal (key derivation of the AP included).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A bridged setup-mode run and where its portal and DNS answer.
/// A bridged firmware in setup mode, its scan done.
pub struct Bridged {
    pub running: Running,
    pub http: SocketAddr,
    dns: SocketAddr,
    dir: PathBuf,
}

/// Boots the firmware into setup mode, bridged, and waits until its portal is worth opening.
pub fn start(elf: &Path, name: &str) -> Result<Bridged, String> {
    let dir = super::prepare(name)?;
    super::setup::provisioned_flash(&dir)?;
    let scenario = Scenario {
        reset_reason: 0,
        work_dir: Some(dir.clone()),
        networks: crate::portal::emulated_world(),
        bridge: Some(crate::bridge::PortMap::default()),
        ..Scenario::default()
    };
    let running = qemu::spawn(elf, &scenario, Echo::Quiet)?;
    let relay = running.relay().ok_or("no relay")?;
    let http = relay.wait_for_tcp(80, START_TIMEOUT);
    let dns = relay.wait_for_udp(53, START_TIMEOUT);
    // A person opens the page once the device has looked around: its first scan takes the
    // SDK a couple of seconds, and a page served before it lists no networks.
    let scanned = running.wait_for_line("I setup: scan found", START_TIMEOUT);
    match (http, dns, scanned) {
        (Some(http), Some(dns), Ok(_)) => Ok(Bridged {
            running,
            http,
            dns,
            dir,
        }),
        _ => {
            let console = running.kill()?.console;
            Err(format!(
                "the firmware did not open its portal and DNS, or never scanned:\n{console}"
            ))
        }
    }
}

/// Stops a failed run and explains it: the error, the relay's record, the firmware's console.
fn failed(run: Bridged, error: String) -> String {
    let relay = run
        .running
        .relay()
        .map(|r| r.log().join("\n"))
        .unwrap_or_default();
    let console = match run.running.kill() {
        Ok(outcome) => outcome.console,
        Err(e) => e,
    };
    format!("{error}\nrelay:\n{relay}\nfirmware console:\n{console}")
}

fn count(console: &str, prefix: &str) -> usize {
    console.lines().filter(|l| l.starts_with(prefix)).count()
}

/// Chromium walks the setup page of the firmware (form, empty, wrong, not-found and right
/// passphrase); the device then stores the record, sleeps, and its flash holds no secret.
pub fn browser(elf: &Path) -> Result<(), String> {
    crate::setup::ensure_browser()?;
    let run = start(elf, "bridged-browser")?;
    let shots = util::out_dir().join("browser-firmware");
    let _ = std::fs::remove_dir_all(&shots);
    let walk = util::run(
        Command::new("node")
            .current_dir(util::root().join("tests").join("browser"))
            .arg("portal.mjs")
            .arg("http://192.168.4.1/")
            .arg(&shots)
            .arg(format!("192.168.4.1={}", run.http)),
    );
    let console = run.running.console();
    if let Err(e) = walk {
        return Err(failed(run, e));
    }
    // After success the device lingers 15 s for the phone, then deep-sleeps.
    let outcome = run.running.finish(Duration::from_secs(60))?;
    if outcome.status != EXIT_DEEP_SLEEP {
        return Err(format!(
            "expected the deep sleep after setup, got exit {}:\n{}",
            outcome.status, outcome.console
        ));
    }
    crate::test::browser_screenshots(&shots)?;
    let answered = count(&outcome.console, "I portal: answered");
    if answered < 8 {
        return Err(format!(
            "the firmware recorded only {answered} answered requests:\n{console}"
        ));
    }
    let garden = Network::new("Garden", "correct horse battery", 1, 6)?;
    let rtc = outcome
        .rtc
        .ok_or_else(|| format!("no RTC memory saved:\n{}", outcome.console))?;
    let record = rtc_record::load(&rtc_words(&rtc)).map_err(|e| format!("no valid record: {e}"))?;
    let expected = NetworkKey::Psk(ramkey::secret::Psk::from_bytes(&garden.psk));
    if record.ssid.as_bytes() != b"Garden" || record.key != expected {
        return Err(format!("setup stored {record:?}"));
    }
    let broker = ramkey::settings::load(&rtc_words(&rtc))
        .map_err(|e| format!("no broker settings after setup: {e}"))?;
    let typed = (
        broker.host.as_bytes(),
        broker.port,
        broker.user(),
        broker.password().map(|p| p.expose_secret()),
        broker.period_s,
    );
    if typed
        != (
            &b"broker.lan"[..],
            1883,
            Some(&b"garden"[..]),
            Some(&b"walk broker password"[..]),
            900,
        )
    {
        return Err(format!("setup stored the broker as {broker:?}"));
    }
    flash_is_clean(&run.dir, &[&garden])?;
    let flash = std::fs::read(run.dir.join("flash.bin")).map_err(|e| e.to_string())?;
    if flash.windows(20).any(|w| w == b"walk broker password") {
        return Err("the MQTT password typed into the portal is in flash".to_owned());
    }
    println!(
        "        broker settings in RTC memory as typed (broker.lan:1883, garden, 15 min), the MQTT password not in flash"
    );
    println!(
        "        {answered} requests answered by the firmware; screenshots in {}",
        shots.display()
    );
    Ok(())
}

/// `dig` against the captive DNS: every A query answers the portal, AAAA answers empty, a
/// malformed packet gets no crash and no amplification.
pub fn dns(elf: &Path) -> Result<(), String> {
    crate::setup::ensure_dig()?;
    let run = start(elf, "bridged-dns")?;
    if let Err(e) = dns_checks(&run) {
        return Err(failed(run, e));
    }
    let outcome = run.running.kill()?;
    let answered = count(&outcome.console, "I dns: answered");
    if answered < 3 {
        return Err(format!(
            "the firmware recorded {answered} DNS answers, the test got 3:\n{}",
            outcome.console
        ));
    }
    println!("        {answered} DNS answers recorded by the firmware");
    Ok(())
}

fn dig(server: SocketAddr, args: &[&str]) -> Result<String, String> {
    util::run(
        Command::new("dig")
            .arg(format!("@{}", server.ip()))
            .args(["-p", &server.port().to_string(), "+time=5", "+tries=2"])
            .args(args),
    )
}

fn dns_checks(run: &Bridged) -> Result<(), String> {
    for name in [
        "connectivitycheck.gstatic.com",
        "captive.apple.com",
        "example.org",
    ] {
        let answer = dig(run.dns, &["+short", name, "A"])?;
        if answer.trim() != "192.168.4.1" {
            return Err(format!("A {name}: dig printed {answer:?}"));
        }
    }
    let aaaa = dig(run.dns, &["example.org", "AAAA"])?;
    if !aaaa.contains("status: NOERROR") || !aaaa.contains("ANSWER: 0") {
        return Err(format!(
            "AAAA should answer NOERROR with no records:\n{aaaa}"
        ));
    }
    // Malformed packets: no answer larger than a bounded multiple of the query, and the
    // responder still answers afterwards.
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_millis(800)))
        .map_err(|e| e.to_string())?;
    let junk: [&[u8]; 4] = [
        b"\x12\x34",
        &[0xFF; 64],
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
        &[0u8; 512],
    ];
    for query in junk {
        socket.send_to(query, run.dns).map_err(|e| e.to_string())?;
        let mut buffer = [0u8; 2048];
        if let Ok((n, _)) = socket.recv_from(&mut buffer)
            && n > 4 * query.len().max(17)
        {
            return Err(format!(
                "a {}-byte malformed query got a {n}-byte answer (amplification)",
                query.len()
            ));
        }
    }
    let again = dig(run.dns, &["+short", "example.com", "A"])?;
    if again.trim() != "192.168.4.1" {
        return Err(format!("after the malformed packets: {again:?}"));
    }
    Ok(())
}

/// The hostile HTTP cases against the firmware; after each one `GET /` is still served.
pub fn hostile(elf: &Path) -> Result<(), String> {
    let run = start(elf, "bridged-hostile")?;
    // The firmware keeps real time: head deadline 10 s, grace 3 s (src/portal/admission.rs).
    let timing = crate::hostile::Timing::scaled(1);
    let summary = match crate::hostile::run(run.http, "192.168.4.1", &timing) {
        Ok(summary) => summary,
        Err(e) => return Err(failed(run, e)),
    };
    let outcome = run.running.kill()?;
    let answered = count(&outcome.console, "I portal: answered");
    if answered < summary.cases {
        return Err(format!(
            "{} cases passed but the firmware recorded only {answered} answers:\n{}",
            summary.cases, outcome.console
        ));
    }
    println!(
        "        {} cases; {} requests, {answered} answered by the firmware; {} follow-ups needed a retry",
        summary.cases, summary.requests, summary.retried
    );
    Ok(())
}

/// The lockout case alone (a slowloris client and silent connections; `GET /` within the
/// grace): the scenario of the `canary-per-byte-idle` canary (`super::sdk::canaries`).
pub fn lockout(elf: &Path) -> Result<(), String> {
    let run = start(elf, "bridged-lockout")?;
    let timing = crate::hostile::Timing::scaled(1);
    let mut summary = crate::hostile::Summary::default();
    if let Err(e) = crate::hostile::lockout(run.http, "192.168.4.1", &timing, &mut summary) {
        return Err(failed(run, e));
    }
    run.running.kill()?;
    Ok(())
}

/// One wake of a set-up garden sensor behind the bridge: boots with `rtc`, waits for its deep
/// sleep, and returns the outcome and the relay's record.
fn report_wake(
    elf: &Path,
    dir: &Path,
    rtc: &ramkey::rtc_record::RamRtc,
    networks: &[crate::qemu::ScriptedNetwork],
    i2c: u32,
) -> Result<(crate::qemu::Outcome, Vec<String>), String> {
    let scenario = Scenario {
        reset_reason: 5,
        work_dir: Some(dir.to_path_buf()),
        rtc: Some(super::rtc_bytes(rtc)),
        networks: networks.to_vec(),
        bridge: Some(crate::bridge::PortMap::default()),
        adc: Some(450),
        i2c,
        ..Scenario::default()
    };
    let mut running = qemu::spawn(elf, &scenario, Echo::Quiet)?;
    let started = std::time::Instant::now();
    while !running.exited() && started.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let relay = running.relay().map(|r| r.log()).unwrap_or_default();
    let outcome = running.finish(Duration::from_secs(1))?;
    super::every_boot(&outcome.console)?;
    if outcome.status != EXIT_DEEP_SLEEP {
        return Err(format!(
            "expected a deep sleep, got exit {}:\n{}",
            outcome.status, outcome.console
        ));
    }
    Ok((outcome, relay))
}

/// What a `mosquitto_sub` printed once it exited.
fn received(sub: std::process::Child) -> Result<String, String> {
    let output = sub.wait_with_output().map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// RTC memory of a device set up for `garden` that reports to `broker.lan` (every name
/// resolves to the loopback through the bridge) at `port` with the test broker's user and
/// password `password`.
fn set_up(
    garden: &super::Network,
    port: u16,
    password: &[u8],
) -> Result<ramkey::rtc_record::RamRtc, String> {
    let mut rtc = ramkey::rtc_record::RamRtc::filled(0xA5A5_A5A5);
    ramkey::rtc_record::store(&mut rtc, &garden.credentials()?).map_err(|e| e.to_string())?;
    let settings = ramkey::settings::BrokerSettings::new(
        b"broker.lan",
        port,
        crate::broker::USER.as_bytes(),
        Some(password),
        600,
    )
    .map_err(|e| e.to_string())?;
    ramkey::settings::store(&mut rtc, &settings).map_err(|e| e.to_string())?;
    Ok(rtc)
}

fn said<'a>(console: &'a str, prefix: &str) -> Result<&'a str, String> {
    console
        .lines()
        .find(|l| l.starts_with(prefix))
        .ok_or_else(|| format!("the firmware never said {prefix:?}:\n{console}"))
}

/// The garden sensor reports to a real Mosquitto through the bridge, across wakes: the first
/// report after setup (discovery, state), a warm wake (the cached address, state only), the
/// broker down for two wakes (readings kept, back-off) and back (every queued reading
/// arrives, oldest first, with its age), a wrong password (refused, back-off, no setup, WiFi
/// record intact). `mosquitto_sub` checks what the broker delivered; the flash holds neither
/// the WiFi secrets nor the MQTT password.
pub fn report(elf: &Path) -> Result<(), String> {
    use ramkey::readings::Ring;
    use ramkey::settings::{self, BrokerSettings};
    let garden = super::Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = super::prepare("bridged-report")?;
    let broker = crate::broker::start()?;
    let port = broker.port;
    let mut rtc = set_up(&garden, port, crate::broker::PASSWORD.as_bytes())?;
    let networks = vec![garden.scripted(None)];
    let topics = [
        "homeassistant/sensor/+/+/config",
        "ramkey/+/state",
        "ramkey/+/history",
    ];

    // 1: the first report: five configs and the state; the name looked up once.
    let sub = crate::broker::subscribe(&broker, &topics, 6, 60)?;
    std::thread::sleep(Duration::from_millis(500));
    let (first, relay) = report_wake(elf, &dir, &rtc, &networks, 0)?;
    said(
        &first.console,
        "I report: delivered 1 readings in 6 messages",
    )?;
    if !relay.iter().any(|l| l.contains("resolve \"broker.lan\"")) {
        return Err(format!(
            "the first wake never looked the broker up:\n{}",
            relay.join("\n")
        ));
    }
    let seen = received(sub)?;
    let configs = seen.lines().filter(|l| l.contains("/config {")).count();
    let state = seen
        .lines()
        .find(|l| l.starts_with("ramkey/") && l.contains("/state "))
        .ok_or_else(|| format!("no state arrived:\n{seen}"))?;
    let json: serde_json::Value = serde_json::from_str(state.split_once(' ').map_or("", |s| s.1))
        .map_err(|e| format!("{state}: {e}"))?;
    if configs != 5 || json["soil"] != 50 || json["temperature"].as_f64().is_none() {
        return Err(format!(
            "expected 5 configs and a state with 50 % soil and a temperature:\n{seen}"
        ));
    }
    for line in seen.lines().filter(|l| l.contains("/config {")) {
        let config: serde_json::Value =
            serde_json::from_str(line.split_once(' ').map_or("", |s| s.1))
                .map_err(|e| e.to_string())?;
        if config["exp_aft"] != 1800
            || config["stat_t"].as_str() != state.split_once(' ').map(|s| s.0)
        {
            return Err(format!(
                "a config not as Home Assistant documents it: {line}"
            ));
        }
    }
    rtc = super::rtc_words(&first.rtc.clone().ok_or("no RTC saved")?);
    if Ring::read(&rtc).map(|q| q.len()) != Ok(0) {
        return Err("the delivered reading is still queued".to_owned());
    }

    // 2: a warm wake with the BME280 and the battery's ADC missing: the cached address (no
    // lookup), no discovery, a state with the soil and nothing made up for the rest.
    // The broker first hands out the state retained from wake 1, then the new one.
    let sub = crate::broker::subscribe(&broker, &["ramkey/+/state"], 2, 60)?;
    std::thread::sleep(Duration::from_millis(500));
    let (warm, relay) = report_wake(elf, &dir, &rtc, &networks, 1 | 16)?;
    said(
        &warm.console,
        "I report: delivered 1 readings in 1 messages",
    )?;
    let seen = received(sub)?;
    if !seen.trim_end().ends_with(" {\"soil\":50}") {
        return Err(format!("expected a state with the soil only:\n{seen}"));
    }
    if relay.iter().any(|l| l.contains("resolve")) {
        return Err(format!(
            "the warm wake looked the name up again:\n{}",
            relay.join("\n")
        ));
    }
    rtc = super::rtc_words(&warm.rtc.clone().ok_or("no RTC saved")?);

    // 3: the broker away for two wakes: readings kept, the second sleep backs off.
    drop(broker);
    for (wake, sleep) in [(1, 600), (2, 1200)] {
        let (down, _) = report_wake(elf, &dir, &rtc, &networks, 0)?;
        said(
            &down.console,
            &format!(
                "W report: failed (connection error); {wake} readings kept, next try in {sleep} s"
            ),
        )?;
        if down.console.contains("setup mode") {
            return Err(format!("a broker away opened setup:\n{}", down.console));
        }
        rtc = super::rtc_words(&down.rtc.clone().ok_or("no RTC saved")?);
        ramkey::rtc_record::load(&rtc).map_err(|e| format!("the WiFi record was lost: {e}"))?;
    }

    // 4: back: the two kept readings on the history topic, oldest first, and the state (the
    // subscriber sees the state retained from wake 2 first: four messages).
    let broker = crate::broker::start_on(Some(port))?;
    let sub = crate::broker::subscribe(&broker, &["ramkey/+/history", "ramkey/+/state"], 4, 60)?;
    std::thread::sleep(Duration::from_millis(500));
    let (back, _) = report_wake(elf, &dir, &rtc, &networks, 0)?;
    said(
        &back.console,
        "I report: delivered 3 readings in 3 messages",
    )?;
    let seen = received(sub)?;
    let ages: Vec<u64> = seen
        .lines()
        .filter(|l| l.contains("/history "))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.split_once(' ')?.1).ok())
        .filter_map(|j| j["age_s"].as_u64())
        .collect();
    // Taken 600 + 1200 s and 1200 s (plus the time awake) before this report.
    let ok = ages.len() == 2 && (1800..1900).contains(&ages[0]) && (1200..1300).contains(&ages[1]);
    if !ok || !seen.lines().last().is_some_and(|l| l.contains("/state ")) {
        return Err(format!(
            "expected two history readings, oldest first, 1800 s and 1200 s old, then the state:\n{seen}"
        ));
    }
    rtc = super::rtc_words(&back.rtc.clone().ok_or("no RTC saved")?);

    // 5: a wrong password: refused, backed off, no setup, the WiFi record intact.
    let wrong = BrokerSettings::new(
        b"broker.lan",
        port,
        crate::broker::USER.as_bytes(),
        Some(b"not the password"),
        600,
    )
    .map_err(|e| e.to_string())?;
    settings::store(&mut rtc, &wrong).map_err(|e| e.to_string())?;
    let (refused, _) = report_wake(elf, &dir, &rtc, &networks, 0)?;
    said(
        &refused.console,
        "W report: the broker refused the login (code 5)",
    )
    .or_else(|_| {
        said(
            &refused.console,
            "W report: the broker refused the login (code 4)",
        )
    })?;
    said(
        &refused.console,
        "W report: failed (login refused); 1 readings kept, next try in 600 s",
    )?;
    if refused.console.contains("setup mode") {
        return Err(format!(
            "a refused login opened setup:\n{}",
            refused.console
        ));
    }
    let after = super::rtc_words(&refused.rtc.clone().ok_or("no RTC saved")?);
    ramkey::rtc_record::load(&after).map_err(|e| format!("the WiFi record was lost: {e}"))?;
    drop(broker);

    super::flash_is_clean(&dir, &[&garden])?;
    let flash = std::fs::read(dir.join("flash.bin")).map_err(|e| e.to_string())?;
    for secret in [crate::broker::PASSWORD.as_bytes(), b"not the password"] {
        if flash.windows(secret.len()).any(|w| w == secret) {
            return Err("the MQTT password is in flash".to_owned());
        }
    }
    println!(
        "        6 wakes against Mosquitto on 127.0.0.1:{port}: discovery + state, warm wake without lookup or BME280 (soil only), 2 wakes away (back-off 600, 1200 s), 3 readings delivered (history ages {ages:?} s), a wrong password refused; no MQTT password in flash"
    );
    Ok(())
}

/// The production image (no console) reports like the development one: one wake after setup
/// delivers discovery and the state to a real Mosquitto, and the firmware prints nothing.
pub fn report_production(elf: &Path) -> Result<(), String> {
    let garden = super::Network::new("Garden", "correct horse battery", 1, 6)?;
    let dir = super::prepare("bridged-report-production")?;
    let broker = crate::broker::start()?;
    let rtc = set_up(&garden, broker.port, crate::broker::PASSWORD.as_bytes())?;
    let sub = crate::broker::subscribe(
        &broker,
        &["homeassistant/sensor/+/+/config", "ramkey/+/state"],
        6,
        60,
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let (outcome, _) = report_wake(elf, &dir, &rtc, &[garden.scripted(None)], 0)?;
    let printed: Vec<&str> = outcome
        .console
        .lines()
        .filter(|l| !l.starts_with("emu: ") && !l.trim().is_empty())
        .collect();
    if !printed.is_empty() {
        return Err(format!(
            "the production image printed:\n{}",
            printed.join("\n")
        ));
    }
    let seen = received(sub)?;
    let configs = seen.lines().filter(|l| l.contains("/config {")).count();
    if configs != 5
        || !seen
            .lines()
            .any(|l| l.contains("/state {") && l.contains("\"soil\":50"))
    {
        return Err(format!(
            "expected 5 configs and the state from the production image:\n{seen}"
        ));
    }
    let after = super::rtc_words(&outcome.rtc.clone().ok_or("no RTC saved")?);
    if ramkey::readings::Ring::read(&after).map(|q| q.len()) != Ok(0) {
        return Err("the production image kept a delivered reading".to_owned());
    }
    println!(
        "        silent: 5 configs and the state delivered, nothing printed, the queue emptied"
    );
    Ok(())
}
