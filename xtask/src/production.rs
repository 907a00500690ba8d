//! Checks of the production profile: no console code, no log strings, pins released.

use crate::checks;
use crate::firmware::{BuildOutput, LinkMode};
use crate::qemu::{self, Echo, Scenario};

/// Console and UART functions of the SDK and ROM that a production image must not call.
pub const CONSOLE_FUNCTIONS: [&str; 7] = [
    "ets_putc",
    "uart_div_modify",
    "uart_tx_one_char",
    "os_printf_plus",
    "ets_printf",
    "ets_install_putc1",
    "uart_init",
];

/// Fragments of the firmware's own log lines: each is in the development image, none may be
/// in the production image.
pub const LOG_FRAGMENTS: [&str; 5] = [
    "reset reason: ",
    "partition table for ",
    "panic at ",
    "sdk: ",
    "flash: ",
];

/// The development image has the log strings; the production image has none of them, no
/// string the development image lacks, and the production build-info marker.
pub fn strings(dev: &BuildOutput, prod: &BuildOutput) -> Result<(), String> {
    let dev_strings = checks::image_strings(&dev.elf, 4)?;
    let prod_strings = checks::image_strings(&prod.elf, 4)?;
    for fragment in LOG_FRAGMENTS {
        if !dev_strings.iter().any(|s| s.contains(fragment)) {
            return Err(format!(
                "the development image lacks {fragment:?}: this check would prove nothing"
            ));
        }
        if let Some(hit) = prod_strings.iter().find(|s| s.contains(fragment)) {
            return Err(format!(
                "the production image contains the log string {hit:?}"
            ));
        }
    }
    if !prod_strings
        .iter()
        .any(|s| s.contains("profile=production"))
    {
        return Err(
            "the production image has no `profile=production` build-info marker".to_owned(),
        );
    }
    if let Some(path) = prod_strings
        .iter()
        .find(|s| s.contains("src/") && s.ends_with(".rs"))
    {
        return Err(format!(
            "the production image contains a source path {path:?} (panic location?)"
        ));
    }
    println!(
        "        {} strings in the development image, {} in production, no log strings",
        dev_strings.len(),
        prod_strings.len()
    );
    Ok(())
}

/// No console or UART function is reachable from the production firmware.
pub fn no_console_calls(prod: &BuildOutput) -> Result<(), String> {
    let (what, names) = match prod.mode {
        // The emulated SDK defines these functions; after --gc-sections only those
        // something calls are left, and the emulator itself never calls them.
        LinkMode::Emulated => ("linked ELF", checks::defined_symbols(&prod.elf)?),
        // The SDK's own libraries use them; what matters is that ramkey's object does not.
        LinkMode::Sdk(_) => {
            let object = prod
                .elf
                .parent()
                .map(|d| d.join("obj-sdk/ramkey-firmware.o"))
                .unwrap_or_default();
            (
                "ramkey-firmware.o (undefined references)",
                checks::undefined_symbols(&object)?,
            )
        }
    };
    let found: Vec<&str> = CONSOLE_FUNCTIONS
        .iter()
        .copied()
        .filter(|f| names.iter().any(|n| n == f))
        .collect();
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!("{what} still has {found:?}"))
    }
}

/// Boots both images through two lifecycles (a power-on into setup mode, and a deep-sleep wake
/// that connects, reports and sleeps): development prints its lines; production prints nothing
/// of its own (lines from the emulator start with `emu:`) and has released the console pins.
pub fn console_output(dev: &BuildOutput, prod: &BuildOutput) -> Result<(), String> {
    let (rtc, networks) = crate::scenarios::connected_cycle_inputs()?;
    let lifecycles = [
        ("power-on", Scenario::default()),
        (
            "connected cycle",
            Scenario {
                reset_reason: 5,
                rtc: Some(rtc),
                networks,
                ..Scenario::default()
            },
        ),
    ];
    for (name, scenario) in lifecycles {
        let run = |out: &BuildOutput| -> Result<qemu::Outcome, String> {
            let elf = out.emu_elf.as_ref().ok_or("not an emulated build")?;
            qemu::boot(elf, &scenario, Echo::Quiet)
        };
        let dev_run = run(dev)?;
        let prod_run = run(prod)?;
        let firmware_lines = |console: &str| -> Vec<String> {
            console
                .lines()
                .filter(|l| !l.starts_with("emu: "))
                .map(str::to_owned)
                .collect()
        };
        if firmware_lines(&dev_run.console).is_empty() {
            return Err(format!(
                "{name}: the development image printed nothing:\n{}",
                dev_run.console
            ));
        }
        if dev_run.status != prod_run.status {
            return Err(format!(
                "{name}: the images ended differently ({} vs {}):\n{}",
                dev_run.status, prod_run.status, prod_run.console
            ));
        }
        if name == "connected cycle" && !prod_run.console.contains("emu: wifi event: got ip") {
            return Err(format!(
                "{name}: the production image did not connect:\n{}",
                prod_run.console
            ));
        }
        let leaked = firmware_lines(&prod_run.console);
        if !leaked.is_empty() {
            return Err(format!(
                "{name}: the production image printed:\n{}",
                leaked.join("\n")
            ));
        }
        let pins = pin_report(&prod_run.console);
        // GPIO function (3 for GPIO1/GPIO3 -> 0x30, 0 for GPIO2) plus the pull-up bit 0x80.
        if pins != "emu: io_mux gpio1=0xb0 gpio3=0xb0 gpio2=0x80" {
            return Err(format!(
                "{name}: console pins not released as expected: {pins:?}"
            ));
        }
        let dev_pins = pin_report(&dev_run.console);
        if dev_pins != "emu: io_mux gpio1=0x0 gpio3=0x0 gpio2=0x0" {
            return Err(format!(
                "{name}: the development image touched the console pins: {dev_pins:?}"
            ));
        }
    }
    Ok(())
}

/// The emulator's `emu: io_mux ...` line (the console pins' IO_MUX registers), or "".
fn pin_report(console: &str) -> &str {
    console
        .lines()
        .find(|l| l.starts_with("emu: io_mux"))
        .unwrap_or_default()
}
