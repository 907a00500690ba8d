//! `cargo xtask test`: everything CI runs, with a plain pass/fail count at the end.
//!
//! Host tests run through cargo; the firmware checks run here, each as a named check that
//! passes, fails or is skipped with a reason. A skipped check is never counted as passed.

use std::process::Command;

use ramkey::flash_layout::FlashSize;

use crate::firmware::{self, BuildOptions, LinkMode, LiteralFix};
use crate::qemu::{self, Echo, Scenario};
use crate::{checks, setup, util};

struct Report {
    filter: String,
    filtered: usize,
    passed: Vec<String>,
    failed: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
}

impl Report {
    /// Runs one named check unless the filter (`cargo xtask test FILTER`) leaves it out.
    fn check(&mut self, name: &str, run: impl FnOnce() -> Result<(), String>) {
        if !name.contains(self.filter.as_str()) {
            self.filtered += 1;
            return;
        }
        match run() {
            Ok(()) => {
                println!("ok      {name}");
                self.passed.push(name.to_owned());
            }
            Err(why) => {
                println!("FAILED  {name}\n{}", indent(&why));
                self.failed.push((name.to_owned(), why));
            }
        }
    }

    fn skip(&mut self, name: &str, why: &str) {
        if !name.contains(self.filter.as_str()) {
            self.filtered += 1;
            return;
        }
        println!("SKIPPED {name}: {why} (not counted as passed)");
        self.skipped.push((name.to_owned(), why.to_owned()));
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs every test; fails if any check failed.
pub fn run_all(filter: &str) -> Result<(), String> {
    let esptool = setup::ensure_all()?;
    let mut report = Report {
        filter: filter.to_owned(),
        filtered: 0,
        passed: Vec::new(),
        failed: Vec::new(),
        skipped: Vec::new(),
    };

    report.check("host: cargo test (workspace)", || host_tests(&esptool));
    report.check(
        "host: MQTT core and Home Assistant discovery against a real Mosquitto (QoS 1, retained, refused login)",
        mqtt_against_mosquitto,
    );
    report.check("ld/memory-*.ld agree with flash_layout", || {
        memory_scripts_match_layout()
    });

    let default = BuildOptions::default();
    let production = BuildOptions {
        features: vec!["production".to_owned()],
        ..BuildOptions::default()
    };
    let dev_build = firmware::build_with(&default, &LinkMode::Emulated, LiteralFix::Apply);
    let prod_build = firmware::build_with(&production, &LinkMode::Emulated, LiteralFix::Apply);
    match (&dev_build, &prod_build) {
        (Ok(dev), Ok(prod)) => {
            report.check("production build links (emulated SDK)", || Ok(()));
            report.check(
                "production: no log strings, build-info marker present",
                || crate::production::strings(dev, prod),
            );
            report.check("production: no console/UART function reachable", || {
                crate::production::no_console_calls(prod)
            });
            report.check(
                "production: two QEMU lifecycles print nothing, console pins released",
                || crate::production::console_output(dev, prod),
            );
            report.check(
                "production: bridged, the silent image reports to a real Mosquitto",
                || {
                    let elf = prod.emu_elf.as_ref().ok_or("not an emulated build")?;
                    crate::scenarios::bridged::report_production(elf)
                },
            );
            report.check(
                "size: ramkey's share within its budgets (production)",
                || checks::size_report(prod).and_then(|r| crate::budget::check(prod, &r)),
            );
        }
        (_, Err(e)) => report.check("production build links (emulated SDK)", || Err(e.clone())),
        (Err(_), _) => report.check("production build links (emulated SDK)", || {
            Err("the development build failed".to_owned())
        }),
    }
    match dev_build {
        Err(e) => report.check("emulated build links", || Err(e)),
        Ok(out) => {
            report.check("emulated build links", || Ok(()));
            report.check("emulated ELF: every l32r literal is 4-byte aligned", || {
                literals_aligned(&out.elf)
            });
            report.check("emulated ELF: every function symbol is on its code", || {
                symbols_on_code(&out)
            });
            report.check("emulated ELF: no reference to a persistent setter", || {
                no_persistent_references(&out.elf)
            });
            report.check("emulated ELF: v1 images pass esptool image-info", || {
                images_valid(&out.elf, &esptool, default.flash_size)
            });
            report.check("QEMU: power-on boot prints the boot lines", || {
                boot_lines(&out, 0, "power-on")
            });
            report.check("QEMU: deep-sleep wake is reported as such", || {
                boot_lines(&out, 5, "deep-sleep wake")
            });
            report.check(
                "size: ramkey's share within its budgets (development)",
                || checks::size_report(&out).and_then(|r| crate::budget::check(&out, &r)),
            );
            match &out.emu_elf {
                Some(elf) => {
                    for (name, scenario) in crate::scenarios::all() {
                        report.check(&format!("scenario: {name}"), || scenario(elf));
                    }
                    report.check(
                        "bridged: Chromium walks the firmware's setup page; record stored, flash clean",
                        || crate::scenarios::bridged::browser(elf),
                    );
                    report.check("bridged: dig queries the firmware's captive DNS", || {
                        crate::scenarios::bridged::dns(elf)
                    });
                    report.check(
                        "bridged: the firmware reports to a real Mosquitto across wakes (discovery, warm wake, broker away and back, wrong password)",
                        || crate::scenarios::bridged::report(elf),
                    );
                    report.check(
                        "bridged: hostile HTTP clients against the firmware; GET / served after each",
                        || crate::scenarios::bridged::hostile(elf),
                    );
                    report.check(
                        "scenario: SDK: a panic ends in a watchdog reset, the record stays trusted",
                        || {
                            let panicking = firmware::emulated_elf("test-panic")?;
                            crate::scenarios::sdk::panic_path(&panicking, elf)
                        },
                    );
                    for canary in crate::scenarios::sdk::canaries() {
                        let verb = if canary.holds { "holds" } else { "fails" };
                        report.check(&format!("canary ({verb}): {}", canary.name), || {
                            run_canary(&canary)
                        });
                    }
                }
                None => report.check("scenarios", || {
                    Err("the emulated build produced no QEMU ELF: no scenario could run".to_owned())
                }),
            }
        }
    }
    report.check("QEMU: lx106 self-test output equals the host's", || {
        selftest()
    });
    for size in [FlashSize::OneMiB, FlashSize::TwoMiB] {
        report.check(
            &format!("QEMU: {} build registers its partition table", size.name()),
            || flash_size_boot(size),
        );
    }
    report.check(
        "literal-pool bug still present without the fix (canary)",
        literal_fix_still_needed,
    );
    report.check(
        "sdk-audit: the reviewed list is well formed, the audit reads a fixture link",
        audit_fixture,
    );
    report.check(
        "GNU ld relaxation still moves __wrap_ symbols off their code (canary)",
        relaxation_still_broken,
    );
    report.check(
        "flash bus: a byte load from flash is caught (canary)",
        flashbus_canary,
    );
    report.check(
        &format!("fuzz: every target {FUZZ_SECONDS} s without a crash"),
        fuzz_smoke,
    );
    report.check(
        "bench: instruction counts are exact (two runs agree)",
        bench_repeats,
    );
    report.check(
        "--wrap: a call to a persistent setter is redirected, and caught without it",
        wrap_probe,
    );
    report.check(
        "browser: setup flow in headless Chromium at 360 px, without JavaScript",
        browser_flow,
    );
    report.check(
        "host portal: hostile HTTP clients over real sockets; GET / served after each",
        host_hostile,
    );
    report.check(
        "label: the SVG as Chromium renders it carries a QR code with the WiFi payload",
        crate::provision::check_rendered_label,
    );

    match LinkMode::from_env() {
        Ok(LinkMode::Sdk(sdk)) => {
            report.check("SDK build links and makes valid images", || {
                sdk_build(&sdk, &esptool, &default)
            });
            report.check("SDK production build links and makes valid images", || {
                sdk_build(&sdk, &esptool, &production)
            });
            report.check(
                "SDK audit: every flash write and erase in the link is reviewed, the SDK's go through the firewall",
                || sdk_audit(&sdk),
            );
            report.check(
                "SDK production: ramkey's object calls no console/UART function",
                || sdk_production_console(&sdk),
            );
        }
        Ok(LinkMode::Emulated) => {
            for name in [
                "SDK build links and makes valid images",
                "SDK production build links and makes valid images",
                "SDK audit: every flash write and erase in the link is reviewed, the SDK's go through the firewall",
                "SDK production: ramkey's object calls no console/UART function",
            ] {
                report.skip(name, "ESP8266_NONOS_SDK is not set");
            }
        }
        Err(e) => report.check("SDK build links and makes valid images", || Err(e)),
    }

    println!();
    for (name, why) in &report.skipped {
        println!("skipped: {name}: {why}");
    }
    for (name, _) in &report.failed {
        println!("failed: {name}");
    }
    println!(
        "xtask: {} passed, {} failed, {} skipped",
        report.passed.len(),
        report.failed.len(),
        report.skipped.len()
    );
    if report.filtered > 0 {
        // A filtered run is for development only: it is never what CI runs.
        println!(
            "xtask: {} checks left out by the filter {:?}: this is not a full test run",
            report.filtered, report.filter
        );
    }
    if report.passed.is_empty() && report.failed.is_empty() {
        return Err(format!("no check matched the filter {:?}", report.filter));
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} checks failed", report.failed.len()))
    }
}

fn host_tests(esptool: &std::path::Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    util::run_live(Command::new(&cargo).current_dir(util::root()).args([
        "test",
        "--workspace",
        "--exclude",
        "ramkey-emu",
    ]))?;
    // The image tests compare with esptool, which only this command installs.
    util::run_live(
        Command::new(&cargo)
            .current_dir(util::root())
            .env("RAMKEY_ESPTOOL", esptool)
            .args(["test", "-p", "xtask", "--", "--ignored"]),
    )
}

fn memory_scripts_match_layout() -> Result<(), String> {
    for size in FlashSize::ALL {
        let path = util::root()
            .join("ld")
            .join(format!("memory-{}.ld", size.name()));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let layout = size.layout();
        let expected = format!(
            "org = {:#X}, len = {:#X}",
            layout.irom_cpu_address(),
            layout.irom.size
        )
        .replace("0X", "0x");
        if !text.contains(&expected) {
            return Err(format!(
                "{} should declare irom0_0_seg with `{expected}`",
                path.display()
            ));
        }
    }
    Ok(())
}

fn literals_aligned(elf: &std::path::Path) -> Result<(), String> {
    let scan = checks::scan_literals(elf)?;
    if scan.loads == 0 {
        return Err("no l32r found at all: the scan is not reading the code".to_owned());
    }
    if !scan.misaligned.is_empty() {
        return Err(format!(
            "{} of {} l32r misaligned:\n{}",
            scan.misaligned.len(),
            scan.loads,
            scan.misaligned.join("\n")
        ));
    }
    println!("        {} l32r, all aligned", scan.loads);
    Ok(())
}

fn images_valid(
    elf: &std::path::Path,
    esptool: &std::path::Path,
    size: FlashSize,
) -> Result<(), String> {
    let bytes = std::fs::read(elf).map_err(|e| e.to_string())?;
    let images = crate::image::elf_to_v1_images(&bytes, crate::image::FlashParams::dio_40m(size))
        .map_err(|e| e.to_string())?;
    let path = elf.with_file_name("emu-check-0x00000.bin");
    std::fs::write(&path, &images.image0).map_err(|e| e.to_string())?;
    let info = crate::image::esptool_image_info(esptool, &path)?;
    crate::image::check_image_info(&info)
}

fn expect_lines(console: &str, lines: &[String]) -> Result<(), String> {
    for line in lines {
        if !console.lines().any(|l| l == line) {
            return Err(format!("missing line {line:?} in console:\n{console}"));
        }
    }
    Ok(())
}

fn boot_lines(out: &firmware::BuildOutput, reason: u32, name: &str) -> Result<(), String> {
    let elf = out.emu_elf.as_ref().ok_or("not an emulated build")?;
    let run = qemu::boot(
        elf,
        &Scenario {
            reset_reason: reason,
            ..Scenario::default()
        },
        Echo::Quiet,
    )?;
    // With no record the boot ends in setup mode, which (until the portal) sleeps.
    if run.status != 11 {
        return Err(format!(
            "QEMU exit status {} ({}):\n{}",
            run.status,
            qemu::describe_status(run.status),
            run.console
        ));
    }
    expect_lines(
        &run.console,
        &[
            format!("I ramkey {} (development)", env!("CARGO_PKG_VERSION")),
            "I sdk: emulated SDK".to_owned(),
            format!("I reset reason: {name} ({reason})"),
            "I flash: 4MB (size map 4)".to_owned(),
            "I setup mode: no trusted credentials".to_owned(),
        ],
    )
}

fn selftest() -> Result<(), String> {
    let elf = &firmware::emulated_elf("selftest")?;
    let run = qemu::boot(elf, &Scenario::default(), Echo::Quiet)?;
    let mut expected = String::new();
    ramkey::selftest::report(&mut expected).map_err(|e| e.to_string())?;
    let device: Vec<&str> = run
        .console
        .lines()
        .filter(|l| l.starts_with("selftest: "))
        .collect();
    let host: Vec<&str> = expected.lines().collect();
    if device != host {
        return Err(format!(
            "lx106 printed:\n{}\nhost computed:\n{}",
            device.join("\n"),
            host.join("\n")
        ));
    }
    println!("        {} lines identical", host.len());
    Ok(())
}

fn flash_size_boot(size: FlashSize) -> Result<(), String> {
    let options = BuildOptions {
        flash_size: size,
        ..BuildOptions::default()
    };
    let out = firmware::build_with(&options, &LinkMode::Emulated, LiteralFix::Apply)?;
    let elf = out.emu_elf.as_ref().ok_or("not an emulated build")?;
    let run = qemu::boot(elf, &Scenario::default(), Echo::Quiet)?;
    expect_lines(
        &run.console,
        &[
            format!(
                "emu: partition table accepted, flash size map {}",
                size.sdk_size_map()
            ),
            format!(
                "I flash: {} (size map {})",
                size.name(),
                size.sdk_size_map()
            ),
        ],
    )
}

/// The audit's list parses, and its extraction finds in a small link of the project's own what
/// that link holds: the wrapped calls attributed to their caller, the wrapper's call of the
/// original, the driver's call of the ROM routine.
fn audit_fixture() -> Result<(), String> {
    let list = std::fs::read_to_string(crate::audit::list_path()).map_err(|e| e.to_string())?;
    let entries = crate::audit::parse_list(&list)?;
    let found = crate::audit::fixture_references(&util::out_dir().join("audit-fixture"))?;
    let reference = |object: &str, function: &str, target: &str| crate::audit::Reference {
        object: object.to_owned(),
        function: function.to_owned(),
        target: target.to_owned(),
    };
    let expected = vec![
        reference("fixture-driver.o", "spi_flash_write", "SPIWrite"),
        reference(
            "fixture-firewall.o",
            "__wrap_spi_flash_write",
            "spi_flash_write",
        ),
        reference(
            "fixture-sdk.o",
            "sdk_like_save",
            "__wrap_spi_flash_erase_sector",
        ),
        reference("fixture-sdk.o", "sdk_like_save", "__wrap_spi_flash_write"),
    ];
    if found != expected {
        return Err(format!(
            "the fixture gave {found:#?}, expected {expected:#?}"
        ));
    }
    let (missing, _) = crate::audit::compare(&found, &entries);
    if missing.len() != found.len() {
        return Err("the fixture's references should not be on the SDK's list".to_owned());
    }
    println!(
        "        {} reviewed entries; the fixture's {} references found and attributed",
        entries.len(),
        found.len()
    );
    Ok(())
}

fn sdk_audit(sdk: &std::path::Path) -> Result<(), String> {
    let out = firmware::build_with(
        &BuildOptions::default(),
        &LinkMode::Sdk(sdk.to_path_buf()),
        LiteralFix::Apply,
    )?;
    crate::audit::audit(&out.elf, &out.map)
}

fn host_hostile() -> Result<(), String> {
    // The portal's clock 10 times faster: head deadline 1 s, grace 300 ms (the GET beside the
    // lockout must be answered within the grace, so it is not made tighter than this).
    let speed = 10;
    let address = crate::portal::spawn(0, crate::portal::Options { speed })?;
    let timing = crate::hostile::Timing::scaled(speed);
    let summary = crate::hostile::run(address, &address.to_string(), &timing)?;
    println!(
        "        {} cases, {} requests",
        summary.cases, summary.requests
    );
    Ok(())
}

/// Builds a canary's firmware and runs its scenario: it must fail (or, for a layered
/// defence, still pass).
fn run_canary(canary: &crate::scenarios::sdk::Canary) -> Result<(), String> {
    let options = BuildOptions {
        features: canary.features.iter().map(|f| (*f).to_owned()).collect(),
        ..BuildOptions::default()
    };
    let out = firmware::build_with(&options, &LinkMode::Emulated, LiteralFix::Apply)?;
    let elf = out.emu_elf.ok_or("not an emulated build")?;
    match ((canary.scenario)(&elf), canary.holds) {
        (Err(e), false) => {
            let first = e.lines().next().unwrap_or_default();
            println!(
                "        caught: {}",
                first.chars().take(200).collect::<String>()
            );
            Ok(())
        }
        (Ok(()), false) => Err(format!(
            "the scenario passed without the defence ({}): it does not show the defence works",
            canary.features.join(", ")
        )),
        (Ok(()), true) => Ok(()),
        (Err(e), true) => Err(format!("the remaining defence did not hold alone:\n{e}")),
    }
}

/// The object file of the project's code in a build's output folder.
fn own_object(out: &firmware::BuildOutput) -> std::path::PathBuf {
    let folder = match out.mode {
        LinkMode::Emulated => "obj-emu",
        LinkMode::Sdk(_) => "obj-sdk",
    };
    out.elf
        .parent()
        .map(|d| d.join(folder).join("ramkey-firmware.o"))
        .unwrap_or_default()
}

fn symbols_on_code(out: &firmware::BuildOutput) -> Result<(), String> {
    let compared = checks::symbols_on_their_code(&out.elf, &own_object(out))?;
    println!("        {compared} function symbols start with their object's first instruction");
    Ok(())
}

/// Links with GNU ld's relaxation on: some `__wrap_` symbol must land off its code. If none
/// does, binutils was fixed and `--no-relax` can go.
fn relaxation_still_broken() -> Result<(), String> {
    let extras = firmware::LinkExtras {
        tag: "relaxed".to_owned(),
        relax: true,
        ..firmware::LinkExtras::default()
    };
    let out = firmware::build_with_extras(
        &BuildOptions::default(),
        &LinkMode::Emulated,
        LiteralFix::Apply,
        &extras,
    )?;
    match checks::symbols_on_their_code(&out.elf, &own_object(&out)) {
        Err(e) if e.contains("__wrap_") => {
            println!(
                "        relaxed link: {}",
                e.lines().nth(1).unwrap_or_default().trim()
            );
            Ok(())
        }
        Err(e) => Err(format!("the relaxed link failed the check otherwise:\n{e}")),
        Ok(_) => Err("every symbol is on its code with relaxation: binutils may be fixed, and --no-relax may go (xtask/src/firmware.rs)".to_owned()),
    }
}

/// The flash-bus check must see a byte load from flash: the canary build does one at boot.
fn flashbus_canary() -> Result<(), String> {
    let elf = &firmware::emulated_elf("flashbus-canary")?;
    let dir = util::out_dir().join("flashbus-canary");
    qemu::fresh_work_dir(&dir)?;
    let result = dir.join("flashbus.txt");
    let scenario = Scenario {
        reset_reason: 0,
        work_dir: Some(dir),
        plugin: Some(crate::flashbus::plugin_arg(elf, &result)?),
        ..Scenario::default()
    };
    let run = qemu::boot(elf, &scenario, Echo::Quiet)?;
    if !run.console.contains("I flashbus canary: read ") {
        return Err(format!("the canary did not run:\n{}", run.console));
    }
    let bus = crate::flashbus::read(&result)?;
    let caught =
        bus.check().is_err() && bus.bad_lines.iter().any(|l| l.ends_with("size=1 store=0"));
    if !caught {
        return Err(format!("the byte load from flash went unnoticed: {bus:?}"));
    }
    println!(
        "        caught: {}",
        bus.bad_lines.first().map_or("", String::as_str)
    );
    Ok(())
}

/// Builds without the fix: the link must fail with LLVM's misplaced pools or leave
/// misaligned literals. If neither happens, LLVM was fixed and the workaround can go.
fn literal_fix_still_needed() -> Result<(), String> {
    let options = BuildOptions {
        features: vec!["selftest".to_owned()],
        ..BuildOptions::default()
    };
    match firmware::build_with(&options, &LinkMode::Emulated, LiteralFix::Skip) {
        // The bug shows as unaligned pools at the end of the previous section, or as pools
        // that landed in a data section (.rodata, .llvmcmd) out of l32r's reach.
        Err(e) if e.contains("dangerous relocation: l32r") => {
            let first = e
                .lines()
                .find(|l| l.contains("dangerous relocation: l32r"))
                .unwrap_or_default();
            let count = e.matches("dangerous relocation: l32r").count();
            println!(
                "        unfixed link fails ({count} bad l32r relocations), e.g.:\n        {}",
                first.trim()
            );
            Ok(())
        }
        Err(e) => Err(format!(
            "the unfixed build failed for another reason:\n{}",
            e.chars().take(4000).collect::<String>()
        )),
        Ok(out) => {
            let scan = checks::scan_literals(&out.elf)?;
            if scan.misaligned.is_empty() {
                Err("LLVM's literal pools link correctly without the fix: the workaround (xtask/src/litfix.rs) may be obsolete".to_owned())
            } else {
                println!(
                    "        unfixed build links but {} l32r read misaligned literals",
                    scan.misaligned.len()
                );
                Ok(())
            }
        }
    }
}

fn sdk_build(
    sdk: &std::path::Path,
    esptool: &std::path::Path,
    options: &BuildOptions,
) -> Result<(), String> {
    let out = firmware::build_with(
        options,
        &LinkMode::Sdk(sdk.to_path_buf()),
        LiteralFix::Apply,
    )?;
    literals_aligned(&out.elf)?;
    // The SDK link is relaxed: that is safe only while ramkey's object references no name the
    // link wraps (xtask/src/firmware.rs), and every symbol must then be on its code.
    let wrapped = firmware::wrapped_names(options, &firmware::LinkExtras::default());
    let undefined = checks::undefined_symbols(&own_object(&out))?;
    let hits: Vec<&String> = undefined
        .iter()
        .filter(|u| wrapped.contains(&u.as_str()))
        .collect();
    if !hits.is_empty() {
        return Err(format!(
            "ramkey's object references wrapped names {hits:?}: the relaxed link would move their wrappers (call them through src/firmware/flash.rs)"
        ));
    }
    symbols_on_code(&out)?;
    no_persistent_references(&out.elf)?;
    let report = checks::size_report(&out)?;
    crate::budget::check(&out, &report)?;
    let (image0, _) = out.images.as_ref().ok_or("no images written")?;
    let info = crate::image::esptool_image_info(esptool, image0)?;
    crate::image::check_image_info(&info)
}

fn sdk_production_console(sdk: &std::path::Path) -> Result<(), String> {
    let options = BuildOptions {
        features: vec!["production".to_owned()],
        ..BuildOptions::default()
    };
    let out = firmware::build_with(
        &options,
        &LinkMode::Sdk(sdk.to_path_buf()),
        LiteralFix::Apply,
    )?;
    crate::production::no_console_calls(&out)?;
    let report = checks::size_report(&out)?;
    crate::budget::check(&out, &report)
}

/// No relocation in the image targets an unwrapped persistent setter.
fn no_persistent_references(elf: &std::path::Path) -> Result<(), String> {
    let found = checks::relocations_to(elf, &firmware::WRAPPED)?;
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "references to persistent setters:\n{}",
            found.join("\n")
        ))
    }
}

/// Links a probe object that calls `wifi_station_set_config` into the emulated image twice:
/// with `--wrap` the reference must land on `__wrap_wifi_station_set_config`; without it the
/// relocation check must report it (so the check can fail).
fn wrap_probe() -> Result<(), String> {
    let dir = util::out_dir().join("wrap-probe");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let source = dir.join("probe.S");
    std::fs::write(
        &source,
        "    .section .text.ramkey_wrap_probe, \"ax\", @progbits\n\
             .literal_position\n\
             .literal .Ltarget, wifi_station_set_config\n\
             .global ramkey_wrap_probe\n\
             .align 4\n\
         ramkey_wrap_probe:\n\
             l32r a2, .Ltarget\n\
             callx0 a2\n\
             ret\n",
    )
    .map_err(|e| e.to_string())?;
    let object = dir.join("probe.o");
    util::run(
        Command::new("xtensa-lx106-elf-gcc")
            .args(["-c", "-mtext-section-literals", "-o"])
            .arg(&object)
            .arg(&source),
    )?;
    let options = BuildOptions::default();
    let probe = vec![(object, "ramkey_wrap_probe".to_owned())];
    let wrapped = firmware::LinkExtras {
        objects: probe.clone(),
        no_wrap: false,
        tag: "wrap-probe".to_owned(),
        relax: false,
    };
    let out =
        firmware::build_with_extras(&options, &LinkMode::Emulated, LiteralFix::Apply, &wrapped)?;
    no_persistent_references(&out.elf)?;
    if checks::relocations_to(&out.elf, &["__wrap_wifi_station_set_config"])?.is_empty() {
        return Err("the probe's call did not reach __wrap_wifi_station_set_config".to_owned());
    }
    let unwrapped = firmware::LinkExtras {
        objects: probe,
        no_wrap: true,
        tag: "no-wrap-probe".to_owned(),
        relax: false,
    };
    let out =
        firmware::build_with_extras(&options, &LinkMode::Emulated, LiteralFix::Apply, &unwrapped)?;
    let found = checks::relocations_to(&out.elf, &firmware::WRAPPED)?;
    if found.is_empty() {
        return Err(
            "without --wrap the check saw no reference to wifi_station_set_config".to_owned(),
        );
    }
    println!(
        "        with --wrap: redirected; without: caught {}",
        found.join(", ")
    );
    Ok(())
}

/// The host portal driven by Playwright in Debian's Chromium (`tests/browser/portal.mjs`);
/// screenshots land in `target/ramkey/browser/`.
fn browser_flow() -> Result<(), String> {
    setup::ensure_browser()?;
    let address = crate::portal::spawn(0, crate::portal::Options::default())?;
    let shots = util::out_dir().join("browser");
    let _ = std::fs::remove_dir_all(&shots);
    let output = util::run(
        Command::new("node")
            .current_dir(util::root().join("tests").join("browser"))
            .arg("portal.mjs")
            .arg(format!("http://{address}/"))
            .arg(&shots),
    )?;
    browser_screenshots(&shots).map_err(|e| format!("{e}:\n{output}"))
}

/// Every screenshot `tests/browser/portal.mjs` takes, one per step, is in `shots`.
pub fn browser_screenshots(shots: &std::path::Path) -> Result<(), String> {
    for shot in [
        "01-form.png",
        "02-wrong.png",
        "03-connected.png",
        "04-error.png",
        "05-not-found.png",
        "06-too-large.png",
    ] {
        if !shots.join(shot).exists() {
            return Err(format!("no screenshot {shot}"));
        }
    }
    Ok(())
}

fn bench_repeats() -> Result<(), String> {
    let first = crate::bench::measure()?;
    let second = crate::bench::measure()?;
    if first.regions.contains(&0) {
        return Err(format!(
            "a region counted zero instructions: {:?}",
            first.regions
        ));
    }
    if first.regions != second.regions {
        return Err(format!(
            "counts differ between runs: {:?} vs {:?}",
            first.regions, second.regions
        ));
    }
    println!("        {:?} instructions, twice", first.regions);
    Ok(())
}

/// Seconds each fuzz target runs in `cargo xtask test` (longer runs: `cargo xtask fuzz`).
const FUZZ_SECONDS: u32 = 20;

fn fuzz_smoke() -> Result<(), String> {
    let results = crate::fuzz::run_all(FUZZ_SECONDS)?;
    for (target, runs) in &results {
        println!("        {target}: {runs} runs");
    }
    Ok(())
}

/// One report through ramkey's sans-IO MQTT core (`ramkey::mqtt`) over a host socket: one
/// publication written at a time, as the firmware does.
fn report_over_tcp(
    port: u16,
    password: &str,
    messages: &[ramkey::mqtt::Message<'_>],
) -> Result<ramkey::mqtt::Event, String> {
    use ramkey::mqtt::{Event, MqttPassword, Session, encode_connect, encode_disconnect};
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let secret = MqttPassword::new(password.as_bytes()).ok_or("password too long")?;
    let mut out = [0u8; 1024];
    let n = encode_connect(
        &mut out,
        b"ramkey-test",
        Some(crate::broker::USER.as_bytes()),
        Some(&secret),
        60,
    )
    .map_err(|e| format!("{e:?}"))?;
    stream.write_all(&out[..n]).map_err(|e| e.to_string())?;
    let mut session = Session::new(messages.len()).ok_or("too many messages")?;
    let mut buffer = [0u8; 256];
    loop {
        while session.wants_message() {
            let message = &messages[session.published()];
            let k = session
                .publish(&mut out, message)
                .map_err(|e| format!("{e:?}"))?;
            stream.write_all(&out[..k]).map_err(|e| e.to_string())?;
        }
        let n = stream.read(&mut buffer).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the broker closed the connection".to_owned());
        }
        match session.receive(&buffer[..n]) {
            Event::Waiting | Event::Accepted => {}
            Event::Done => {
                let k = encode_disconnect(&mut out).map_err(|e| format!("{e:?}"))?;
                stream.write_all(&out[..k]).map_err(|e| e.to_string())?;
                return Ok(Event::Done);
            }
            other => return Ok(other),
        }
    }
}

fn mqtt_against_mosquitto() -> Result<(), String> {
    use ramkey::discovery::{self, Device, ENTITIES};
    use ramkey::mqtt::{Event, Message};
    let broker = crate::broker::start()?;
    let device = Device::from_mac([0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3]);
    let reading = ramkey::readings::Reading {
        temperature_centi_c: Some(2508),
        humidity_half_pct: Some(102),
        pressure_deci_hpa: Some(10_065),
        soil_pct: Some(50),
        battery_20mv: None,
    };
    let configs: Vec<(String, String)> = ENTITIES
        .iter()
        .map(|e| {
            (
                discovery::config_topic(&device, e).as_str().to_owned(),
                discovery::config_payload(&device, e, 600, "test")
                    .as_str()
                    .to_owned(),
            )
        })
        .collect();
    let state_topic = discovery::state_topic(&device).as_str().to_owned();
    let state = discovery::state_payload(&reading).as_str().to_owned();
    let mut messages: Vec<Message<'_>> = configs
        .iter()
        .map(|(t, p)| Message {
            topic: t.as_bytes(),
            payload: p.as_bytes(),
            retain: true,
        })
        .collect();
    messages.push(Message {
        topic: state_topic.as_bytes(),
        payload: state.as_bytes(),
        retain: true,
    });
    let count = messages.len();
    let sub = crate::broker::subscribe(
        &broker,
        &["homeassistant/sensor/+/+/config", "ramkey/+/state"],
        count,
        15,
    )?;
    std::thread::sleep(std::time::Duration::from_millis(700));
    match report_over_tcp(broker.port, crate::broker::PASSWORD, &messages)? {
        Event::Done => {}
        other => return Err(format!("the report ended with {other:?}")),
    }
    let output = sub.wait_with_output().map_err(|e| e.to_string())?;
    let seen = String::from_utf8_lossy(&output.stdout).into_owned();
    // Home Assistant's documented fields, read back from what the broker delivered.
    for entity in &ENTITIES {
        let topic = format!("homeassistant/sensor/ramkey_a1b2c3/{}/config", entity.key);
        let line = seen
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{topic} ")))
            .ok_or_else(|| format!("no config for {} in:\n{seen}", entity.key))?;
        let json: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{topic}: {e}"))?;
        let field = |k: &str| {
            json.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let ok = field("dev_cla") == entity.device_class
            && field("unit_of_meas") == entity.unit
            && field("stat_cla") == "measurement"
            && field("stat_t") == state_topic
            && field("uniq_id") == format!("ramkey_a1b2c3_{}", entity.key)
            && json.get("exp_aft").and_then(|v| v.as_u64()) == Some(1800)
            && json["dev"]["ids"][0] == "ramkey_a1b2c3";
        if !ok {
            return Err(format!(
                "{topic}: fields not as Home Assistant documents them: {json}"
            ));
        }
    }
    let state_line = seen
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{state_topic} ")))
        .ok_or_else(|| format!("no state in:\n{seen}"))?;
    let state: serde_json::Value = serde_json::from_str(state_line).map_err(|e| e.to_string())?;
    if state["temperature"] != 25.08 || state["soil"] != 50 || state.get("battery").is_some() {
        return Err(format!(
            "state {state}: expected 25.08 degrees, 50 % soil and no battery"
        ));
    }
    // Retained: a subscriber that comes later still gets the config.
    let late = crate::broker::subscribe(
        &broker,
        &["homeassistant/sensor/ramkey_a1b2c3/soil/config"],
        1,
        5,
    )?;
    let late = late.wait_with_output().map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&late.stdout).contains("moisture") {
        return Err("the discovery config was not retained".to_owned());
    }
    // A wrong password: CONNACK refuses it (4: bad user name or password; 5: not authorised).
    match report_over_tcp(broker.port, "not the password", &messages)? {
        Event::Refused(4 | 5) => {}
        other => {
            return Err(format!(
                "a wrong password ended with {other:?}, not a refusal"
            ));
        }
    }
    println!(
        "        {count} messages at QoS 1: 5 discovery configs checked against Home Assistant's fields, the state; a wrong password refused"
    );
    Ok(())
}
