//! `cargo xtask sdk-audit`: every flash write and erase in the SDK link, by the function that
//! holds it, against a reviewed list.
//!
//! The linked ELF keeps its relocations (`--emit-relocs`), so every reference to the SDK's
//! `spi_flash_write` and `spi_flash_erase_sector` (or, once `--wrap`ped, to the firewall's
//! `__wrap_` functions) and to the ROM's SPI write and erase routines can be listed. Each is
//! attributed to an object (from the linker map) and a function (the function symbol that
//! contains it, or, for a literal, the one whose pool it is: the next function). The reviewed
//! list (`xtask/sdk-audit.txt`, made against the public SDK) gives each such reference a
//! verdict: routed through the firewall, or harmless with the reason. The audit fails on any
//! reference the list does not have, and on list entries the link no longer has (the list
//! must describe the link, not an older one).
//!
//! Without the SDK, `cargo xtask test` checks the list's format and runs the extraction on a
//! fixture: a small program of the project's own, linked the same way.

use std::collections::BTreeSet;
use std::path::Path;

use object::{Object, ObjectSymbol};

/// The references the audit looks for: the SDK's flash write and erase calls, the firewall's
/// wrappers of them, and the ROM routines that write or erase flash (`eagle.rom.addr.v6.ld`).
pub const AUDITED: [&str; 9] = [
    "spi_flash_write",
    "spi_flash_erase_sector",
    "__wrap_spi_flash_write",
    "__wrap_spi_flash_erase_sector",
    "SPIWrite",
    "SPIEraseSector",
    "SPIEraseBlock",
    "SPIEraseChip",
    "SPIEraseArea",
];

/// One reference: who holds it and what it reaches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The input object, as the map names it (`libmain.a(user_interface.o)`, `ramkey-firmware.o`).
    pub object: String,
    /// The function holding it.
    pub function: String,
    /// The symbol referenced.
    pub target: String,
}

/// What the reviewed list says of a reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The reference is the firewall's wrapper: the write is cleaned.
    Firewall,
    /// Reviewed and harmless for the reason given.
    Harmless,
}

/// One line of the reviewed list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Which reference.
    pub reference: Reference,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
}

/// The reviewed list, in the repository.
pub fn list_path() -> std::path::PathBuf {
    crate::util::root().join("xtask").join("sdk-audit.txt")
}

/// Parses the reviewed list: `object | function | target | firewall|harmless | reason`, one
/// per line; `#` starts a comment line. Every line must be well formed, every target one of
/// [`AUDITED`], a `firewall` verdict must name a `__wrap_` target (and only it), every reason
/// must say something, and no reference may appear twice.
pub fn parse_list(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut seen = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let [object, function, target, verdict, reason] = fields[..] else {
            return Err(format!(
                "line {}: expected 5 fields separated by |",
                number + 1
            ));
        };
        if object.is_empty() || function.is_empty() {
            return Err(format!("line {}: empty object or function", number + 1));
        }
        if !AUDITED.contains(&target) {
            return Err(format!(
                "line {}: {target:?} is not an audited name",
                number + 1
            ));
        }
        let verdict = match verdict {
            "firewall" => Verdict::Firewall,
            "harmless" => Verdict::Harmless,
            other => return Err(format!("line {}: unknown verdict {other:?}", number + 1)),
        };
        if (verdict == Verdict::Firewall) != target.starts_with("__wrap_") {
            return Err(format!(
                "line {}: only a reference to a __wrap_ function is routed through the firewall",
                number + 1
            ));
        }
        if reason.len() < 12 {
            return Err(format!("line {}: the reason must say why", number + 1));
        }
        let reference = Reference {
            object: object.to_owned(),
            function: function.to_owned(),
            target: target.to_owned(),
        };
        if !seen.insert(reference.clone()) {
            return Err(format!(
                "line {}: {reference:?} is listed twice",
                number + 1
            ));
        }
        entries.push(Entry {
            reference,
            verdict,
            reason: reason.to_owned(),
        });
    }
    if entries.is_empty() {
        return Err("the list has no entries".to_owned());
    }
    Ok(entries)
}

/// One input section of a link.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputSection {
    /// Its address.
    pub address: u64,
    /// Its size.
    pub size: u64,
    /// The object, shortened to its file name (`libmain.a(user_interface.o)`).
    pub object: String,
    /// The section's name in that object (`.text.user_start`).
    pub name: String,
}

/// Input sections from a GNU ld map.
pub fn input_sections(map: &str) -> Vec<InputSection> {
    let body = map
        .split_once("Linker script and memory map")
        .map_or(map, |(_, b)| b);
    let mut sections = Vec::new();
    let mut pending_name = String::new();
    for line in body.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        // `name 0xADDR 0xSIZE object` or, after a long name on its own line, `0xADDR 0xSIZE object`.
        let (name, address, size, object) = match tokens.as_slice() {
            [n, a, s, o] if a.starts_with("0x") && s.starts_with("0x") => {
                (n.to_string(), *a, *s, *o)
            }
            [a, s, o] if a.starts_with("0x") && s.starts_with("0x") => {
                (std::mem::take(&mut pending_name), *a, *s, *o)
            }
            [n] if n.starts_with('.') => {
                pending_name = n.to_string();
                continue;
            }
            _ => continue,
        };
        if !(object.contains('/') || object.contains('(')) || object.starts_with("0x") {
            continue;
        }
        let (Ok(address), Ok(size)) = (
            u64::from_str_radix(address.trim_start_matches("0x"), 16),
            u64::from_str_radix(size.trim_start_matches("0x"), 16),
        ) else {
            continue;
        };
        if size == 0 {
            continue;
        }
        let short = object.rsplit('/').next().unwrap_or(object).to_owned();
        sections.push(InputSection {
            address,
            size,
            object: short,
            name,
        });
    }
    sections.sort();
    sections
}

/// A symbol name as the reviewed list spells it: Rust names demangled without their crate
/// hashes (which change with every toolchain), C names as they are.
fn readable(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// Every audited reference in a linked ELF, attributed through its map.
pub fn references(elf: &Path, map_text: &str) -> Result<Vec<Reference>, String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    let sections = input_sections(map_text);
    if sections.is_empty() {
        return Err("the linker map lists no input sections".to_owned());
    }
    let mut functions: Vec<(u64, u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.is_definition())
        .filter_map(|s| Some((s.address(), s.size(), readable(s.name().ok()?))))
        .filter(|(_, _, name)| !name.is_empty())
        .collect();
    functions.sort();
    let mut found = BTreeSet::new();
    for relocation in crate::checks::symbol_relocations(&file, elf, &AUDITED)? {
        let (address, target) = (relocation.offset, relocation.target);
        let Some(input) = sections
            .iter()
            .rev()
            .find(|s| s.address <= address && address < s.address + s.size)
        else {
            return Err(format!(
                "{target} referenced at {address:#x}, outside every input section"
            ));
        };
        let end = input.address + input.size;
        let containing = functions
            .iter()
            .rev()
            .find(|(a, s, _)| *a <= address && address < a + (*s).max(1));
        let following = functions.iter().find(|(a, _, _)| *a > address && *a < end);
        let function = containing
            .or(following)
            .map(|(_, _, name)| name.clone())
            .unwrap_or_else(|| format!("(static, section {})", input.name));
        found.insert(Reference {
            object: input.object.clone(),
            function,
            target: target.to_owned(),
        });
    }
    Ok(found.into_iter().collect())
}

/// Compares what the link has with the list: (references the list lacks, entries the link
/// lacks).
pub fn compare(found: &[Reference], list: &[Entry]) -> (Vec<Reference>, Vec<Entry>) {
    let missing = found
        .iter()
        .filter(|r| !list.iter().any(|e| &e.reference == *r))
        .cloned()
        .collect();
    let stale = list
        .iter()
        .filter(|e| !found.contains(&e.reference))
        .cloned()
        .collect();
    (missing, stale)
}

fn line_of(reference: &Reference) -> String {
    format!(
        "{} | {} | {}",
        reference.object, reference.function, reference.target
    )
}

/// Audits a linked SDK build against the reviewed list; prints each reference and verdict.
pub fn audit(elf: &Path, map: &Path) -> Result<(), String> {
    let map_text =
        std::fs::read_to_string(map).map_err(|e| format!("cannot read {}: {e}", map.display()))?;
    let found = references(elf, &map_text)?;
    let list_text = std::fs::read_to_string(list_path()).map_err(|e| e.to_string())?;
    let list = parse_list(&list_text)?;
    for reference in &found {
        let verdict = list
            .iter()
            .find(|e| &e.reference == reference)
            .map_or("NOT REVIEWED".to_owned(), |e| {
                format!("{:?}: {}", e.verdict, e.reason)
            });
        println!("        {} -> {verdict}", line_of(reference));
    }
    let (missing, stale) = compare(&found, &list);
    let mut problems = Vec::new();
    for reference in &missing {
        problems.push(format!("not on the reviewed list: {}", line_of(reference)));
    }
    for entry in &stale {
        problems.push(format!(
            "listed but not in the link: {}",
            line_of(&entry.reference)
        ));
    }
    if !found
        .iter()
        .any(|r| r.target.starts_with("__wrap_") && !r.object.starts_with("ramkey"))
    {
        problems.push("no SDK object references the firewall: is --wrap missing?".to_owned());
    }
    if problems.is_empty() {
        println!(
            "        {} references, all reviewed ({} through the firewall)",
            found.len(),
            found
                .iter()
                .filter(|r| r.target.starts_with("__wrap_"))
                .count()
        );
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `cargo xtask sdk-audit`: links against `ESP8266_NONOS_SDK` and audits the result.
pub fn command() -> Result<(), String> {
    crate::setup::ensure_build_tools()?;
    let crate::firmware::LinkMode::Sdk(sdk) = crate::firmware::LinkMode::from_env()? else {
        return Err("sdk-audit needs ESP8266_NONOS_SDK=<checkout of the NONOS SDK>".to_owned());
    };
    let out = crate::firmware::build_with(
        &crate::firmware::BuildOptions::default(),
        &crate::firmware::LinkMode::Sdk(sdk),
        crate::firmware::LiteralFix::Apply,
    )?;
    audit(&out.elf, &out.map)
}

/// The fixture: a program of the project's own that calls the flash functions the way the SDK
/// does (through a literal, wrapped), with a firewall wrapper calling the original and a ROM
/// routine at an absolute address. Links it as the firmware link does and returns what the
/// audit extracts from it.
pub fn fixture_references(dir: &Path) -> Result<Vec<Reference>, String> {
    use std::process::Command;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    // Three objects, as in the SDK link: a library function that saves (its references to
    // the flash calls are undefined, so --wrap redirects them), the driver, the firewall.
    let function = |name: &str, body: &str, literals: &[(&str, &str)]| {
        let mut text =
            format!("    .section .text.{name}, \"ax\", @progbits\n    .literal_position\n");
        for (label, symbol) in literals {
            text.push_str(&format!("    .literal {label}, {symbol}\n"));
        }
        text.push_str(&format!(
            "    .global {name}\n    .type {name}, @function\n    .align 4\n{name}:\n{body}    .size {name}, . - {name}\n"
        ));
        text
    };
    let sources = [
        (
            "fixture-sdk",
            function(
                "sdk_like_save",
                "    l32r a0, .Lerase\n    callx0 a0\n    l32r a0, .Lwrite\n    callx0 a0\n    ret\n",
                &[
                    (".Lwrite", "spi_flash_write"),
                    (".Lerase", "spi_flash_erase_sector"),
                ],
            ) + &function(
                "_start",
                "    l32r a0, .Lsave\n    callx0 a0\n    ret\n",
                &[(".Lsave", "sdk_like_save")],
            ),
        ),
        (
            "fixture-driver",
            function(
                "spi_flash_write",
                "    l32r a8, .Lrom\n    jx a8\n",
                &[(".Lrom", "SPIWrite")],
            ) + &function("spi_flash_erase_sector", "    ret\n", &[]),
        ),
        (
            "fixture-firewall",
            function(
                "__wrap_spi_flash_write",
                "    l32r a8, .Lreal\n    jx a8\n",
                &[(".Lreal", "__real_spi_flash_write")],
            ) + &function("__wrap_spi_flash_erase_sector", "    ret\n", &[]),
        ),
    ];
    let mut objects = Vec::new();
    for (name, text) in sources {
        let source = dir.join(format!("{name}.S"));
        std::fs::write(&source, text).map_err(|e| e.to_string())?;
        let object = dir.join(format!("{name}.o"));
        crate::util::run(
            Command::new("xtensa-lx106-elf-gcc")
                .args(["-c", "-mtext-section-literals", "-o"])
                .arg(&object)
                .arg(&source),
        )?;
        objects.push(object);
    }
    let elf = dir.join("fixture.elf");
    let map = dir.join("fixture.map");
    crate::util::run(
        Command::new("xtensa-lx106-elf-gcc")
            .args([
                "-nostdlib",
                "-Wl,--wrap=spi_flash_write",
                "-Wl,--wrap=spi_flash_erase_sector",
                "-Wl,--emit-relocs",
                "-Wl,--gc-sections",
                "-Wl,--defsym=SPIWrite=0x40004a4c",
                "-Wl,-Ttext=0x40210000",
                "-Wl,-e,_start",
            ])
            .arg(format!("-Wl,-Map={}", map.display()))
            .args(&objects)
            .arg("-o")
            .arg(&elf),
    )?;
    let map_text = std::fs::read_to_string(&map).map_err(|e| e.to_string())?;
    references(&elf, &map_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_list_is_well_formed_and_routes_the_sdk_through_the_firewall() {
        let text = std::fs::read_to_string(list_path()).expect("xtask/sdk-audit.txt");
        let list = parse_list(&text).expect("the reviewed list parses");
        let routed = |object: &str, function: &str, target: &str| {
            list.iter().any(|e| {
                e.reference.object == object
                    && e.reference.function == function
                    && e.reference.target == target
                    && e.verdict == Verdict::Firewall
            })
        };
        // M27: after boot the block reaches flash only through this function's two calls.
        assert!(routed(
            "libmain.a(user_interface.o)",
            "wifi_param_save_protect_with_check",
            "__wrap_spi_flash_write"
        ));
        assert!(routed(
            "libmain.a(user_interface.o)",
            "wifi_param_save_protect_with_check",
            "__wrap_spi_flash_erase_sector"
        ));
    }

    #[test]
    fn malformed_lists_are_refused() {
        let good = "a.o | f | SPIWrite | harmless | dead code, never called\n";
        assert!(parse_list(good).is_ok());
        for bad in [
            "",
            "a.o | f | SPIWrite | harmless\n",
            "a.o | f | memcpy | harmless | not a flash write at all\n",
            "a.o | f | SPIWrite | firewall | a ROM routine is never wrapped\n",
            "a.o | f | __wrap_spi_flash_write | harmless | must say firewall\n",
            "a.o | f | SPIWrite | harmless | short\n",
            "a.o | f | SPIWrite | maybe | not a verdict we know\n",
            &good.repeat(2),
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn map_input_sections_are_read_in_both_forms() {
        let map = "\
Linker script and memory map

.irom0.text     0x40210000     0x5000
  .irom0.text    0x402384d4     0x42c9 /tmp/sdk/lib/libmain.a(user_interface.o)
 .text.a_long_function_name
                0x40210000       0x30 /b/obj/ramkey-firmware.o
                0x40210000                a_long_function_name
";
        let sections = input_sections(map);
        let summary: Vec<(u64, u64, &str, &str)> = sections
            .iter()
            .map(|s| (s.address, s.size, s.object.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    0x40210000,
                    0x30,
                    "ramkey-firmware.o",
                    ".text.a_long_function_name"
                ),
                (
                    0x402384d4,
                    0x42c9,
                    "libmain.a(user_interface.o)",
                    ".irom0.text"
                ),
            ]
        );
    }
}
