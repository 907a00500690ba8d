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

/// The log format strings of the firmware's sources: the first string literal after every
/// `info!(`, `warn!(` and `error!(` in `src/` (the one logging module's macros).
pub fn log_format_strings(root: &std::path::Path) -> Result<Vec<String>, String> {
    format_strings_under(&root.join("src"), &["info!(", "warn!(", "error!("])
}

/// The format strings of `macros` in every `.rs` file under `dir`.
fn format_strings_under(dir: &std::path::Path, macros: &[&str]) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                found.extend(format_strings_in(&text, macros));
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// The pure part of [`log_format_strings`]: format strings of the log macros in one file.
pub fn format_strings_in(source: &str, macros: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for macro_name in macros {
        let mut rest = source;
        while let Some(at) = rest.find(macro_name) {
            let preceded_by_ident = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            rest = &rest[at + macro_name.len()..];
            if preceded_by_ident {
                continue;
            }
            let trimmed = rest.trim_start();
            let Some(body) = trimmed.strip_prefix('"') else {
                continue;
            };
            let mut literal = String::new();
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => literal.push('\n'),
                        Some(other) => literal.push(other),
                        None => break,
                    },
                    c => literal.push(c),
                }
            }
            out.push(literal);
        }
    }
    out
}

/// The literal pieces of a format string (what `core::fmt` stores in the image): the text
/// between `{...}` placeholders, with `{{` and `}}` unescaped.
pub fn literal_pieces(format: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                current.push(c);
            }
            '{' => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                pieces.push(std::mem::take(&mut current));
            }
            c => current.push(c),
        }
    }
    pieces.push(current);
    pieces.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Pieces shorter than this are too common to attribute to a log line (`": "`, `" s"`).
const MIN_PIECE: usize = 8;

/// Every log format string's literal text that the development image holds is absent from
/// the production image, and the production image carries its build-info marker.
pub fn strings(dev: &BuildOutput, prod: &BuildOutput) -> Result<(), String> {
    let dev_strings = checks::image_strings(&dev.elf, 4)?;
    let prod_strings = checks::image_strings(&prod.elf, 4)?;
    let root = crate::util::root();
    let formats = log_format_strings(&root)?;
    // Both images carry the emulated SDK, whose own lines (`say!`) may share text with a
    // firmware line: such pieces say nothing about the firmware.
    let emulator = format_strings_under(&root.join("emu/src"), &["say!("])?;
    let mut pieces: Vec<String> = formats
        .iter()
        .flat_map(|f| literal_pieces(f))
        .map(|p| p.trim_end_matches('\n').to_owned())
        .filter(|p| p.len() >= MIN_PIECE)
        .filter(|p| !emulator.iter().any(|e| e.contains(p.as_str())))
        .collect();
    pieces.sort();
    pieces.dedup();
    let in_dev: Vec<&String> = pieces
        .iter()
        .filter(|p| dev_strings.iter().any(|s| s.contains(p.as_str())))
        .collect();
    // Pieces of lines compiled only into other variants (bench, canaries) are not in the
    // development image; most must be, or the extraction is not reading the log lines.
    if in_dev.len() * 4 < pieces.len() * 3 {
        return Err(format!(
            "only {} of {} log text pieces found in the development image: the check would prove little",
            in_dev.len(),
            pieces.len()
        ));
    }
    let leaked: Vec<&&String> = in_dev
        .iter()
        .filter(|p| prod_strings.iter().any(|s| s.contains(p.as_str())))
        .collect();
    if !leaked.is_empty() {
        return Err(format!(
            "the production image contains log text: {leaked:?}"
        ));
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
        "        {} log format strings; {} of their {} text pieces are in the development image, none in production",
        formats.len(),
        in_dev.len(),
        pieces.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_strings_are_found_across_lines_and_pieces_split() {
        let source = "info!(\"a {} b\", x);\n    error!(\n        \"long {:?} line \\\"q\\\"\",\n y);\nmy_info!(\"no\");";
        let found = format_strings_in(source, &["info!(", "error!("]);
        assert_eq!(
            found,
            vec!["a {} b".to_owned(), "long {:?} line \"q\"".to_owned()]
        );
        assert_eq!(literal_pieces("x {} y {{z}} {:?}"), vec!["x ", " y {z} "]);
    }
}
