//! `cargo xtask`: ramkey's automation (build, run, test, size), in one place.
//!
//! Plain arguments, no framework: `cargo xtask help` lists the commands. Each command
//! installs what it needs first (see [`setup`]), so they work on a fresh machine.

mod audit;
mod bench;
mod bridge;
mod broker;
mod budget;
mod checks;
mod firmware;
mod flashbus;
mod fuzz;
mod hostile;
mod image;
mod litfix;
mod portal;
mod production;
mod provision;
mod qemu;
mod scenarios;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

use ramkey::flash_layout::FlashSize;

use crate::firmware::BuildOptions;

const HELP: &str = "\
cargo xtask <command> [options]

commands:
  build [--features a,b] [--production] [--selftest] [--flash-size 1MB|2MB|4MB]
        Build the firmware. With ESP8266_NONOS_SDK=<sdk checkout> it links against the real
        SDK: target/ramkey/ramkey.elf, ramkey-0x00000.bin, ramkey-0x10000.bin. Without it,
        against ramkey's emulated SDK: target/ramkey/ramkey-emu.elf.
  run [build options] [--reset-reason N] [--provisioned] [--port <serial>]
        Build and boot the emulated firmware in QEMU on an erased flash, showing its console
        (--provisioned: with a fresh identity sector, so setup opens the AP). With the SDK and
        --port, flash the images to a board with esptool instead.
  test [filter]
        Host tests, both link modes the machine allows, image checks, QEMU boot tests, the
        SDK-model scenarios and their canaries. With a filter: only the checks whose name
        contains it (for development; it says it was not a full run).
  size [build options]
        The Rust share of each memory region, as a table and target/ramkey/size.json, against
        the size budgets (xtask/src/budget.rs).
  sdk-audit
        With ESP8266_NONOS_SDK: every flash write and erase in the SDK link, by function,
        against the reviewed list xtask/sdk-audit.txt.
  provision-key (--mac AA:BB:CC:DD:EE:FF | --port <serial>) [--flash-size S] [--out DIR]
        Generate a device's setup passphrase: identity sector (written to the board with
        --port), and a label with the WiFi QR code in target/provision/<ssid>/.
  portal [--port N]
        Serve the setup portal on 127.0.0.1 (default port 8080) with scripted networks.
  scenarios [filter]
        Build the emulated firmware and run the QEMU lifecycle and setup scenarios whose name
        contains the filter (all without one).
  bench Instruction counts (QEMU plugin) of the boot decision and one PBKDF2 derivation,
        printed and written to target/ramkey/bench.json.
  fuzz [--seconds N]
        Run every cargo-fuzz target in fuzz/ for N seconds (default 60).
  setup Install what is missing (apt packages as root, rust-src, esptool venv).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => parse_build(&args[1..]).and_then(|(opts, _)| {
            setup::ensure_build_tools()?;
            firmware::build(&opts).map(|out| out.print_summary())
        }),
        Some("run") => parse_build(&args[1..]).and_then(|(opts, rest)| run(&opts, &rest)),
        Some("test") => test::run_all(args.get(1).map_or("", String::as_str)),
        Some("size") => parse_build(&args[1..]).and_then(|(opts, _)| {
            setup::ensure_build_tools()?;
            let out = firmware::build(&opts)?;
            let report = checks::size_report(&out)?;
            budget::check(&out, &report)
        }),
        Some("scenarios") => scenarios::command(&args[1..]),
        Some("provision-key") => provision::command(&args[1..]),
        Some("portal") => portal::command(&args[1..]),
        Some("bench") => bench::run(),
        Some("sdk-audit") => audit::command(),
        Some("fuzz") => fuzz::command(&args[1..]),
        Some("setup") => setup::ensure_all().map(|_| ()),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Options of `run` that are not build options.
#[derive(Default)]
struct RunOptions {
    reset_reason: u32,
    port: Option<String>,
    provisioned: bool,
    /// Run behind the espconn bridge: the firmware's portal and DNS on host ports.
    bridge: bool,
    http_port: Option<u16>,
    dns_port: Option<u16>,
}

fn parse_build(args: &[String]) -> Result<(BuildOptions, RunOptions), String> {
    let mut opts = BuildOptions::default();
    let mut run = RunOptions::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--features" => {
                let list = value("--features")?;
                opts.features
                    .extend(list.split(',').filter(|f| !f.is_empty()).map(str::to_owned));
            }
            "--production" => opts.features.push("production".to_owned()),
            "--selftest" => opts.features.push("selftest".to_owned()),
            "--flash-size" => {
                let name = value("--flash-size")?;
                opts.flash_size = FlashSize::from_name(&name).map_err(|e| e.to_string())?;
            }
            "--reset-reason" => {
                let v = value("--reset-reason")?;
                run.reset_reason = v.parse().map_err(|_| format!("bad reset reason {v:?}"))?;
            }
            "--port" => run.port = Some(value("--port")?),
            "--provisioned" => run.provisioned = true,
            "--bridge" => run.bridge = true,
            "--http-port" => {
                let v = value("--http-port")?;
                run.http_port = Some(v.parse().map_err(|_| format!("bad port {v:?}"))?);
            }
            "--dns-port" => {
                let v = value("--dns-port")?;
                run.dns_port = Some(v.parse().map_err(|_| format!("bad port {v:?}"))?);
            }
            other => return Err(format!("unknown option {other:?}\n\n{HELP}")),
        }
    }
    opts.features.sort();
    opts.features.dedup();
    Ok((opts, run))
}

/// The emulated chip's flash: erased, as a new chip's is; with `provisioned`, a fresh
/// identity sector too (its label lands in `target/ramkey/qemu/provision/`), so setup mode
/// opens the access point and the portal.
fn prepare_flash(
    dir: &std::path::Path,
    size: ramkey::flash_layout::FlashSize,
    provisioned: bool,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut flash = vec![0xFFu8; size.bytes() as usize];
    if provisioned {
        // The emulated chip's MAC (emu/src/wifi.rs).
        let done = provision::provision(
            [0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3],
            Some(dir.join("provision")),
        )?;
        let sector = std::fs::read(done.dir.join("identity.bin")).map_err(|e| e.to_string())?;
        let offset = size.layout().device_identity.offset as usize;
        flash[offset..offset + sector.len()].copy_from_slice(&sector);
        println!(
            "emulated flash provisioned for {}; label in {}",
            done.ssid,
            done.dir.display()
        );
    }
    std::fs::write(dir.join("flash.bin"), flash).map_err(|e| e.to_string())
}

/// `cargo xtask run --bridge`: the firmware's portal and DNS on the host's loopback until
/// Ctrl-C (or until the firmware sleeps).
fn bridged_run(
    elf: &std::path::Path,
    work_dir: &std::path::Path,
    run: &RunOptions,
) -> Result<(), String> {
    let http = run.http_port.unwrap_or(8080);
    let dns = run.dns_port.unwrap_or(8053);
    let mut ports = bridge::PortMap::default();
    ports.tcp.insert(80, http);
    ports.udp.insert(53, dns);
    let scenario = qemu::Scenario {
        reset_reason: run.reset_reason,
        work_dir: Some(work_dir.to_path_buf()),
        networks: portal::emulated_world(),
        bridge: Some(ports),
        ..qemu::Scenario::default()
    };
    let mut running = qemu::spawn(elf, &scenario, qemu::Echo::Live)?;
    // Ctrl-C ends QEMU cleanly (and with it the relay and the FIFOs' users).
    catch_ctrl_c()?;
    let announced = {
        let relay = running.relay().ok_or("no relay")?;
        let timeout = std::time::Duration::from_secs(60);
        (
            relay.wait_for_tcp(80, timeout),
            relay.wait_for_udp(53, timeout),
        )
    };
    match announced {
        (Some(portal), Some(dns)) => println!(
            "bridge: the firmware's portal answers on http://{portal}/ and its DNS on udp {dns} \
             (networks: Garden accepts \"correct horse battery\", Cafe Guest is open, Shed never answers); Ctrl-C stops it"
        ),
        _ => println!(
            "bridge: the firmware did not open its portal and DNS (no identity? see above)"
        ),
    }
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = running.kill();
            println!("(stopped)");
            return Ok(());
        }
        if running.exited() {
            let outcome = running.finish(std::time::Duration::from_secs(1))?;
            println!(
                "(QEMU exited with status {}: {})",
                outcome.status,
                qemu::describe_status(outcome.status)
            );
            return Ok(());
        }
    }
}

/// Set by SIGINT.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns Ctrl-C into [`INTERRUPTED`] (std has no signal API; a tiny libc one is enough here).
fn catch_ctrl_c() -> Result<(), String> {
    extern "C" fn on_signal(_: libc::c_int) {
        // Only an atomic store: that much is async-signal-safe.
        INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // SAFETY: installs a plain function that only stores an atomic as the SIGINT handler.
    let previous =
        unsafe { libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t) };
    if previous == libc::SIG_ERR {
        return Err("cannot install the Ctrl-C handler".to_owned());
    }
    Ok(())
}

fn run(opts: &BuildOptions, run: &RunOptions) -> Result<(), String> {
    setup::ensure_build_tools()?;
    let out = firmware::build(opts)?;
    out.print_summary();
    if let Some(port) = &run.port {
        let esptool = setup::ensure_esptool()?;
        return firmware::flash(&out, &esptool, port);
    }
    let elf = out.emu_elf.as_ref().ok_or(
        "this build linked against the real SDK, which QEMU cannot run; \
         give --port <serial> to flash a board, or unset ESP8266_NONOS_SDK to boot the emulation",
    )?;
    setup::ensure_qemu()?;
    let work_dir = util::out_dir().join("qemu");
    prepare_flash(&work_dir, opts.flash_size, run.provisioned)?;
    if run.bridge {
        return bridged_run(elf, &work_dir, run);
    }
    let scenario = qemu::Scenario {
        reset_reason: run.reset_reason,
        work_dir: Some(work_dir),
        ..qemu::Scenario::default()
    };
    let result = qemu::boot(elf, &scenario, qemu::Echo::Live)?;
    println!(
        "(QEMU exited with status {}: {})",
        result.status,
        qemu::describe_status(result.status)
    );
    Ok(())
}
