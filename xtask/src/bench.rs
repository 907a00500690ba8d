//! `cargo xtask bench`: exact instruction counts of the firmware's costly steps, under QEMU.
//!
//! QEMU's TCG plugin API counts every executed lx106 instruction (`xtask/qemu-plugin/
//! icount.c`, built here with the host's gcc); the `bench` firmware build marks the regions.
//! Counts are identical from run to run, unlike time. They are instructions, not cycles: on
//! the chip, flash-cache misses and memory wait states add to them.

use ramkey::rtc_record::{self, Credentials, IpConfig, NetworkKey, RamRtc, ReconnectCache, Ssid};

use std::time::{Duration, Instant};

use crate::qemu::{self, Echo, Scenario};
use crate::{checks, firmware, util};

/// Names of the measured regions, in the order the firmware runs them.
pub const REGIONS: [&str; 6] = [
    "boot decision, deep-sleep wake with a valid record",
    "PBKDF2-HMAC-SHA1 PSK derivation (4096 rounds)",
    "portal: GET / answered in 1460-byte segments, 16 networks",
    "captive DNS: one A query answered",
    "firewall: one parameter-block write cleaned, 7 secrets",
    "sensor: one BME280 reading over bit-banged I2C (init + forced)",
];

/// One measurement.
pub struct Counts {
    /// Instructions per region, in [`REGIONS`] order.
    pub regions: Vec<u64>,
    /// Instructions of the whole run.
    pub total: u64,
    /// Modelled (virtual) microseconds of the BME280 reading, busy waits included.
    pub sensor_us: Option<u64>,
}

fn valid_record() -> Result<Vec<u8>, String> {
    let psk = ramkey::psk::derive(
        &ramkey::secret::Passphrase::new(b"correct horse battery").map_err(|e| e.to_string())?,
        &Ssid::new(b"Garden").map_err(|e| e.to_string())?,
    );
    let credentials = Credentials {
        ssid: Ssid::new(b"Garden").map_err(|e| e.to_string())?,
        key: NetworkKey::Psk(psk),
        cache: Some(ReconnectCache {
            bssid: [2, 0x52, 0x4B, 0, 0, 1],
            channel: 6,
        }),
        ip: IpConfig::None,
    };
    let mut mem = RamRtc::filled(0);
    rtc_record::store(&mut mem, &credentials).map_err(|e| e.to_string())?;
    Ok(mem.words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

/// Builds the bench firmware and measures it once.
pub fn measure() -> Result<Counts, String> {
    let plugin = qemu::plugin("icount")?;
    let elf = &firmware::emulated_elf("bench")?;
    let begin = checks::symbol_address(elf, "ramkey_bench_begin")?;
    let end = checks::symbol_address(elf, "ramkey_bench_end")?;
    // Its own directory with an erased 4 MB flash, so no file another run left behind (the
    // stored-config read of the boot decision looks at it) changes what is counted.
    let dir = util::out_dir().join("bench-run");
    qemu::fresh_work_dir(&dir)?;
    let result = dir.join("icount.txt");
    let _ = std::fs::remove_file(&result);
    let scenario = Scenario {
        reset_reason: 5,
        rtc: Some(valid_record()?),
        work_dir: Some(dir),
        plugin: Some(format!(
            "{},begin={begin:#x},end={end:#x},out={}",
            plugin.display(),
            result.display()
        )),
        ..Scenario::default()
    };
    let run = qemu::boot(elf, &scenario, Echo::Quiet)?;
    let page_answered = run
        .console
        .lines()
        .find_map(|l| l.strip_prefix("I bench: portal page "))
        .and_then(|l| l.strip_suffix(" bytes"))
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n > 4000);
    if !run.console.contains("I bench: pbkdf2 vector ok")
        || !run
            .console
            .contains("I bench: boot decision: record Valid -> station")
        || !page_answered
        || !run.console.contains("I bench: dns answer 45 bytes")
        || !run
            .console
            .contains("I bench: firewall 1188 bytes, cleaned")
        || !run.console.contains("I bench: bme280 2508 centi-C")
    {
        return Err(format!(
            "the bench firmware did not do the measured work:\n{}",
            run.console
        ));
    }
    let text = std::fs::read_to_string(&result)
        .map_err(|e| format!("no plugin output {}: {e}", result.display()))?;
    let mut regions = Vec::new();
    let mut total = 0;
    for line in text.lines() {
        let count = line
            .split(':')
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        match (line.starts_with("region"), line.starts_with("total"), count) {
            (true, _, Some(n)) => regions.push(n),
            (_, true, Some(n)) => total = n,
            _ => {}
        }
    }
    if regions.len() != REGIONS.len() {
        return Err(format!(
            "expected {} regions, the plugin reported:\n{text}",
            REGIONS.len()
        ));
    }
    let sensor_us = run.console.lines().find_map(|l| {
        l.split(" centi-C, ")
            .nth(1)?
            .strip_suffix(" us of modelled time (busy waits included)")?
            .parse()
            .ok()
    });
    Ok(Counts {
        regions,
        total,
        sensor_us,
    })
}

/// Requests timed per server in the bridge comparison.
const BRIDGE_REQUESTS: usize = 20;

/// Time to first byte and whole time of one `GET /`.
fn time_get(address: std::net::SocketAddr, host: &str) -> Result<(Duration, Duration), String> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut first = None;
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| started.elapsed());
        answer.extend_from_slice(&chunk[..n]);
    }
    let whole = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    if !text.starts_with("HTTP/1.1 200") || !text.contains("Garden") || !text.ends_with("</html>") {
        return Err(format!("not the setup page:\n{text}"));
    }
    Ok((first.unwrap_or(whole), whole))
}

/// Medians of [`BRIDGE_REQUESTS`] timed `GET /`s (a reset, the firmware's one-client limit
/// meeting the previous connection's close, is retried and counted).
fn time_server(
    address: std::net::SocketAddr,
    host: &str,
) -> Result<(Duration, Duration, usize), String> {
    let mut firsts = Vec::new();
    let mut wholes = Vec::new();
    let mut retries = 0;
    while firsts.len() < BRIDGE_REQUESTS {
        match time_get(address, host) {
            Ok((first, whole)) => {
                firsts.push(first);
                wholes.push(whole);
            }
            Err(_) if retries < BRIDGE_REQUESTS => {
                retries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
    firsts.sort();
    wholes.sort();
    Ok((firsts[firsts.len() / 2], wholes[wholes.len() / 2], retries))
}

/// `GET /` through the espconn bridge (the firmware under QEMU) against the host portal.
fn bridge_comparison() -> Result<serde_json::Value, String> {
    let out = firmware::build_with(
        &firmware::BuildOptions::default(),
        &firmware::LinkMode::Emulated,
        firmware::LiteralFix::Apply,
    )?;
    let elf = out.emu_elf.ok_or("not an emulated build")?;
    let host = crate::portal::spawn(0, crate::portal::Options::default())?;
    let bridged = crate::scenarios::bridged::start(&elf, "bench-bridge")?;
    let firmware_times = time_server(bridged.http, "192.168.4.1");
    let _ = bridged.running.kill();
    let (f_first, f_whole, f_retries) = firmware_times?;
    // The host portal's own address is its page's Host (it redirects any other).
    let (h_first, h_whole, _) = time_server(host, &host.to_string())?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!();
    println!(
        "GET / (median of {BRIDGE_REQUESTS}) {:>16} {:>16}",
        "first byte", "whole page"
    );
    println!(
        "{:<31} {:>13.2} ms {:>13.2} ms",
        "firmware under QEMU, bridged",
        ms(f_first),
        ms(f_whole)
    );
    println!(
        "{:<31} {:>13.2} ms {:>13.2} ms",
        "host portal",
        ms(h_first),
        ms(h_whole)
    );
    println!(
        "{:<31} {:>15.1}x {:>15.1}x   ({f_retries} firmware requests reset and retried)",
        "ratio firmware / host",
        ratio(f_first, h_first),
        ratio(f_whole, h_whole)
    );
    Ok(serde_json::json!({
        "requests": BRIDGE_REQUESTS,
        "firmware_first_byte_ms": ms(f_first),
        "firmware_whole_ms": ms(f_whole),
        "host_first_byte_ms": ms(h_first),
        "host_whole_ms": ms(h_whole),
        "ratio_first_byte": ratio(f_first, h_first),
        "ratio_whole": ratio(f_whole, h_whole),
        "firmware_retries": f_retries,
    }))
}

/// `cargo xtask bench`: prints the counts and writes `target/ramkey/bench.json`.
pub fn run() -> Result<(), String> {
    crate::setup::ensure_build_tools()?;
    crate::setup::ensure_qemu()?;
    let counts = measure()?;
    println!(
        "{:<55} {:>14}",
        "region (lx106, opt-level s)", "instructions"
    );
    let mut json = serde_json::Map::new();
    for (name, count) in REGIONS.iter().zip(&counts.regions) {
        println!("{name:<55} {count:>14}");
        json.insert((*name).to_owned(), serde_json::json!(count));
    }
    println!(
        "{:<55} {:>14}",
        "whole bench run (boot to exit)", counts.total
    );
    let ms = |n: u64| n as f64 / 80_000.0;
    println!(
        "(at 80 MHz and one instruction per cycle, a lower bound: {:.2} ms, {:.0} ms, {:.2} ms, {:.3} ms, {:.1} ms, {:.1} ms)",
        ms(counts.regions[0]),
        ms(counts.regions[1]),
        ms(counts.regions[2]),
        ms(counts.regions[3]),
        ms(counts.regions[4]),
        ms(counts.regions[5])
    );
    if let Some(us) = counts.sensor_us {
        println!(
            "(the BME280 reading takes {us} us of modelled time: the driver's 2 ms and 40 ms waits and the bus's half periods)"
        );
    }
    let bridge = bridge_comparison()?;
    let report = serde_json::json!({
        "unit": "instructions",
        "regions": json,
        "total": counts.total,
        "bridge_get_root": bridge,
    });
    let path = util::out_dir().join("bench.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n",
    )
    .map_err(|e| e.to_string())?;
    println!("wrote {}", path.display());
    Ok(())
}
