//! Checks on linked firmware: literal alignment and the size report.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use object::{Object, ObjectSection};

use crate::firmware::{BuildOutput, LinkMode};
use crate::util;

/// Result of scanning every `l32r` in an ELF.
pub struct LiteralScan {
    /// `l32r` instructions found.
    pub loads: usize,
    /// Those whose literal address is not a multiple of 4 (`address: instruction`).
    pub misaligned: Vec<String>,
}

/// Disassembles `elf` and checks that every `l32r` reads a 4-byte aligned literal.
pub fn scan_literals(elf: &Path) -> Result<LiteralScan, String> {
    let listing = util::run(
        Command::new("xtensa-lx106-elf-objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(elf),
    )?;
    Ok(scan_listing(&listing))
}

/// The pure part of [`scan_literals`], over objdump's text.
pub fn scan_listing(listing: &str) -> LiteralScan {
    let mut loads = 0;
    let mut misaligned = Vec::new();
    for line in listing.lines() {
        let Some((_, instruction)) = line.split_once(":\t") else {
            continue;
        };
        let instruction = instruction.trim();
        let Some(operands) = instruction.strip_prefix("l32r") else {
            continue;
        };
        loads += 1;
        let target = operands
            .split(',')
            .nth(1)
            .map(str::trim)
            .and_then(|t| t.split_whitespace().next());
        match target.and_then(|t| u32::from_str_radix(t, 16).ok()) {
            Some(address) if address % 4 == 0 => {}
            _ => misaligned.push(line.trim().to_owned()),
        }
    }
    LiteralScan { loads, misaligned }
}

/// The first instruction's mnemonic at every function label in an objdump listing.
pub fn first_instructions(listing: &str) -> BTreeMap<String, String> {
    let mut firsts = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in listing.lines() {
        if let Some(label) = line
            .split_once(" <")
            .and_then(|(address, rest)| {
                (!address.is_empty() && address.chars().all(|c| c.is_ascii_hexdigit()))
                    .then_some(rest)
            })
            .and_then(|rest| rest.strip_suffix(">:"))
        {
            current = (!label.contains('+') && !label.contains('-')).then(|| label.to_owned());
            continue;
        }
        let Some(name) = current.take_if(|_| line.contains(":\t")) else {
            continue;
        };
        let mnemonic = line
            .split('\t')
            .nth(1)
            .map(|m| m.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        firsts.insert(name, mnemonic);
    }
    firsts
}

/// Every function symbol of the linked ELF that the project's object defines starts with the
/// instruction the object has there: the link moved no symbol off its code (GNU ld's Xtensa
/// relaxation can, see `firmware::build_with_extras`). Returns how many were compared.
pub fn symbols_on_their_code(elf: &Path, object: &Path) -> Result<usize, String> {
    let dump = |path: &Path| {
        util::run(
            Command::new("xtensa-lx106-elf-objdump")
                .args(["-d", "--no-show-raw-insn"])
                .arg(path),
        )
    };
    let linked = first_instructions(&dump(elf)?);
    let own = first_instructions(&dump(object)?);
    let mut compared = 0;
    let mut moved = Vec::new();
    for (name, mnemonic) in &own {
        let Some(in_elf) = linked.get(name) else {
            continue;
        };
        compared += 1;
        if in_elf != mnemonic {
            moved.push(format!(
                "{name}: object starts with {mnemonic}, linked ELF with {in_elf}"
            ));
        }
    }
    if compared < 20 {
        return Err(format!(
            "only {compared} functions compared: the listings were not read"
        ));
    }
    if moved.is_empty() {
        Ok(compared)
    } else {
        Err(format!(
            "{} of {compared} function symbols are off their code:\n{}",
            moved.len(),
            moved.join("\n")
        ))
    }
}

/// Sizes of one link, per output section, split into the project's share and the total.
#[derive(Default)]
pub struct Sizes {
    /// Output section -> (bytes from the project's objects, bytes in all).
    pub sections: BTreeMap<String, (u64, u64)>,
    /// Output section -> bytes of the emulated SDK inside the project's objects (input
    /// sections whose name contains `ramkey_emu`, the emulator's crate and section prefix).
    pub emulator: BTreeMap<String, u64>,
}

/// Regions reported, in order.
const REPORTED: [&str; 5] = [".irom0.text", ".text", ".data", ".rodata", ".bss"];

/// Reads the per-section sizes from a GNU ld map file, attributing input sections to the
/// project when their object file is one of `own`.
pub fn sizes_from_map(map: &str, own: &[String]) -> Sizes {
    let mut sizes = Sizes::default();
    let mut current: Option<String> = None;
    let mut pending_name = false;
    let mut input_name = String::new();
    let body = map
        .split_once("Linker script and memory map")
        .map_or(map, |(_, b)| b);
    for line in body.lines() {
        if let Some(first) = line.split_whitespace().next()
            && !line.starts_with(' ')
            && first.starts_with('.')
        {
            current = REPORTED.contains(&first).then(|| first.to_owned());
            continue;
        }
        let Some(section) = &current else { continue };
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let is_input_start = line.starts_with(' ') && !line.starts_with("  ") && tokens.len() == 1;
        if is_input_start {
            pending_name = true;
            input_name = tokens[0].to_owned();
            continue;
        }
        let (size, file) = match tokens.as_slice() {
            [name, address, size, file]
                if line.starts_with(' ') && name.starts_with('.') && address.starts_with("0x") =>
            {
                input_name = (*name).to_owned();
                (*size, *file)
            }
            [address, size, file] if pending_name && address.starts_with("0x") => (*size, *file),
            _ => {
                pending_name = false;
                continue;
            }
        };
        pending_name = false;
        let Ok(bytes) = u64::from_str_radix(size.trim_start_matches("0x"), 16) else {
            continue;
        };
        let name = Path::new(file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let entry = sizes.sections.entry(section.clone()).or_default();
        entry.1 += bytes;
        if own.contains(&name) {
            entry.0 += bytes;
            if input_name.contains("ramkey_emu") || name == "ramkey-start.o" {
                *sizes.emulator.entry(section.clone()).or_default() += bytes;
            }
        }
    }
    sizes
}

/// Bytes of the project's anonymous `.rodata` constants (string literals, tables) that only
/// the emulated SDK's code references: every relocation that reaches them sits in an emulator
/// function (its name starts `ramkey_emu`, or it is in a `ramkey_emu` section) or in the
/// literal pool of one.
pub fn emulator_constants(elf: &Path, map: &str) -> Result<u64, String> {
    use object::ObjectSymbol;
    let bytes = fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    let inputs = crate::audit::input_sections(map);
    let is_emulator_section = |name: &str| name.contains("ramkey_emu");
    let mut functions: Vec<(u64, u64, bool)> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.is_definition())
        .filter_map(|s| {
            let name = format!("{:#}", rustc_demangle::demangle(s.name().ok()?));
            let section = inputs
                .iter()
                .find(|i| i.address <= s.address() && s.address() < i.address + i.size)
                .map_or("", |i| i.name.as_str());
            let emulator = name.starts_with("ramkey_emu") || is_emulator_section(section);
            Some((s.address(), s.size(), emulator))
        })
        .collect();
    functions.sort();
    let by_emulator = |address: u64| -> bool {
        let containing = functions
            .iter()
            .rev()
            .find(|(a, size, _)| *a <= address && address < a + (*size).max(1));
        let following = functions.iter().find(|(a, _, _)| *a > address);
        containing.or(following).is_some_and(|(_, _, e)| *e)
    };
    let constants: Vec<&crate::audit::InputSection> = inputs
        .iter()
        .filter(|i| i.object.starts_with("ramkey-firmware") && i.name.starts_with(".rodata."))
        .collect();
    let constant_at = |address: u64| {
        constants
            .iter()
            .position(|c| c.address <= address && address < c.address + c.size)
    };
    // Per constant: referenced at all; referenced from code that is not the emulator's; and
    // the constants it is referenced from (a table of pieces pointing at a string).
    let mut referenced = vec![false; constants.len()];
    let mut shared = vec![false; constants.len()];
    let mut edges = Vec::new();
    // The word a 32-bit relocation left in the image is the address it resolved to (the
    // emitted relocations' addends for section symbols are not reliable for this target).
    const R_XTENSA_32: u32 = 1;
    for section in file.sections() {
        let data = section.data().unwrap_or_default();
        for (offset, relocation) in section.relocations() {
            if relocation.flags()
                != (object::RelocationFlags::Elf {
                    r_type: R_XTENSA_32,
                })
            {
                continue;
            }
            let Some(at) = offset
                .checked_sub(section.address())
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| i + 4 <= data.len())
            else {
                continue;
            };
            let target = u64::from(u32::from_le_bytes([
                data[at],
                data[at + 1],
                data[at + 2],
                data[at + 3],
            ]));
            let Some(k) = constant_at(target) else {
                continue;
            };
            referenced[k] = true;
            match constant_at(offset) {
                Some(from) => edges.push((from, k)),
                None if !by_emulator(offset) => shared[k] = true,
                None => {}
            }
        }
    }
    // A constant that a shared constant points at is shared too.
    let mut changed = true;
    while changed {
        changed = false;
        for &(from, to) in &edges {
            if shared[from] && !shared[to] {
                shared[to] = true;
                changed = true;
            }
        }
    }
    Ok(constants
        .iter()
        .zip(referenced.iter().zip(&shared))
        .filter(|(_, (r, s))| **r && !**s)
        .map(|(c, _)| c.size)
        .sum())
}

/// Section sizes of an ELF by name.
fn elf_section_sizes(elf: &Path) -> Result<BTreeMap<String, u64>, String> {
    let bytes = fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    Ok(file
        .sections()
        .filter_map(|s| Some((s.name().ok()?.to_owned(), s.size())))
        .collect())
}

/// Prints the size table and writes `target/ramkey/size.json`.
pub fn size_report(out: &BuildOutput) -> Result<serde_json::Value, String> {
    let map = fs::read_to_string(&out.map)
        .map_err(|e| format!("cannot read {}: {e}", out.map.display()))?;
    let mut sizes = sizes_from_map(&map, &out.own_objects);
    let totals = elf_section_sizes(&out.elf)?;
    let linked_with = match &out.mode {
        LinkMode::Emulated => {
            let constants = emulator_constants(&out.elf, &map)?;
            *sizes.emulator.entry(".rodata".to_owned()).or_default() += constants;
            "emulated SDK: its named code and data, and the anonymous constants only its code \
             references, count as `emulator`; constants shared with ramkey stay in `ramkey`; \
             set ESP8266_NONOS_SDK for exact numbers"
        }
        LinkMode::Sdk(_) => "NONOS SDK",
    };
    println!(
        "size of {} ({}), linked with the {linked_with}",
        out.elf.display(),
        out.options.variant()
    );
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10}",
        "section", "ramkey", "emulator", "whole", "limit"
    );
    let limits: BTreeMap<&str, u64> = [
        (
            ".irom0.text",
            u64::from(out.options.flash_size.layout().irom.size),
        ),
        (".text", 0x8000),
        (".data", 0x14000),
        (".rodata", 0x14000),
        (".bss", 0x14000),
    ]
    .into_iter()
    .collect();
    let mut json = serde_json::Map::new();
    for name in REPORTED {
        let (own, _) = sizes.sections.get(name).copied().unwrap_or_default();
        let emulator = sizes.emulator.get(name).copied().unwrap_or_default();
        let ramkey = own.saturating_sub(emulator);
        let whole = totals.get(name).copied().unwrap_or_default();
        let limit = limits.get(name).copied().unwrap_or_default();
        println!("{name:<12} {ramkey:>10} {emulator:>10} {whole:>10} {limit:>10}");
        json.insert(
            name.to_owned(),
            serde_json::json!({
                "ramkey": ramkey,
                "emulator": emulator,
                "whole_image": whole,
                "region_limit": limit
            }),
        );
    }
    println!("(.data, .rodata and .bss share one 80 KiB DRAM region; .text is the 32 KiB IRAM)");
    let report = serde_json::json!({
        "elf": out.elf.display().to_string(),
        "variant": out.options.variant(),
        "linked_with": match &out.mode { LinkMode::Emulated => "emulated", LinkMode::Sdk(_) => "sdk" },
        "sections": json,
    });
    let path = out.elf.with_file_name("size.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(report)
}

/// Printable runs of at least `min` bytes in an ELF's allocated data sections (`.rodata`,
/// `.data`): what `strings` would find in the image.
pub fn image_strings(elf: &Path, min: usize) -> Result<Vec<String>, String> {
    let bytes = fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    let mut found = Vec::new();
    for section in file.sections() {
        let name = section.name().unwrap_or_default();
        if !(name.starts_with(".rodata") || name.starts_with(".data") || name.starts_with(".irom0"))
        {
            continue;
        }
        let Ok(data) = section.data() else { continue };
        let mut run = Vec::new();
        for &b in data.iter().chain(std::iter::once(&0u8)) {
            if (0x20..0x7F).contains(&b) {
                run.push(b);
            } else {
                if run.len() >= min {
                    found.push(String::from_utf8_lossy(&run).into_owned());
                }
                run.clear();
            }
        }
    }
    Ok(found)
}

/// Names of the symbols defined in an ELF.
pub fn defined_symbols(elf: &Path) -> Result<Vec<String>, String> {
    use object::ObjectSymbol;
    let bytes = fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    Ok(file
        .symbols()
        .filter(|s| !s.is_undefined())
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .collect())
}

/// The address of the symbol `name` in an ELF.
pub fn symbol_address(elf: &Path, name: &str) -> Result<u64, String> {
    use object::ObjectSymbol;
    let bytes = fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    file.symbols()
        .find(|s| s.name() == Ok(name))
        .map(|s| s.address())
        .ok_or_else(|| format!("{name} not found in {}", elf.display()))
}

/// Names of the symbols an object file references but does not define.
pub fn undefined_symbols(object_file: &Path) -> Result<Vec<String>, String> {
    use object::ObjectSymbol;
    let bytes =
        fs::read(object_file).map_err(|e| format!("cannot read {}: {e}", object_file.display()))?;
    let file =
        object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", object_file.display()))?;
    Ok(file
        .symbols()
        .filter(|s| s.is_undefined())
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .collect())
}

/// Relocations in a linked ELF (kept by `--emit-relocs`) whose target symbol is one of
/// `names`: each as `section+offset -> symbol`. Also fails if the ELF has no relocations at
/// all, since then the check could not see anything.
pub fn relocations_to(elf: &Path, names: &[&str]) -> Result<Vec<String>, String> {
    let bytes = fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    Ok(symbol_relocations(&file, elf, names)?
        .into_iter()
        .map(|r| format!("{}+{:#x} -> {}", r.section, r.offset, r.target))
        .collect())
}

/// One relocation to a named symbol.
pub struct SymbolRelocation<'a> {
    /// The output section it sits in.
    pub section: &'a str,
    /// Its address (a linked executable's relocations carry the virtual address).
    pub offset: u64,
    /// The symbol it resolves to.
    pub target: &'a str,
}

/// Every relocation of `file` whose target symbol is one of `names`; an error if the ELF (at
/// `elf`) has no relocations at all, since then no check could see anything.
pub fn symbol_relocations<'a>(
    file: &'a object::File<'a>,
    elf: &Path,
    names: &[&str],
) -> Result<Vec<SymbolRelocation<'a>>, String> {
    use object::{ObjectSymbol, RelocationTarget};
    let mut total = 0;
    let mut found = Vec::new();
    for section in file.sections() {
        for (offset, relocation) in section.relocations() {
            total += 1;
            let RelocationTarget::Symbol(index) = relocation.target() else {
                continue;
            };
            let Ok(symbol) = file.symbol_by_index(index) else {
                continue;
            };
            let target = symbol.name().unwrap_or_default();
            if names.contains(&target) {
                found.push(SymbolRelocation {
                    section: section.name().unwrap_or("?"),
                    offset,
                    target,
                });
            }
        }
    }
    if total == 0 {
        return Err(format!(
            "{} has no relocations: was it linked with --emit-relocs?",
            elf.display()
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_scan_finds_misaligned_targets() {
        let listing = "\
40210000 <f>:
40210004:\tl32r\ta2, 40210000 <f>
40210007:\tl32r\ta3, 4021000e <g+0x2>
4021000a:\tret.n
";
        let scan = scan_listing(listing);
        assert_eq!(scan.loads, 2);
        assert_eq!(scan.misaligned.len(), 1);
        assert!(scan.misaligned[0].contains("4021000e"));
    }

    #[test]
    fn first_instructions_are_read_per_label() {
        let listing = "\
4021a02c <f>:
4021a02c:\tl32r\ta6, 40219b2c <g+0x34>
4021a02f:\tret.n
4021a030 <g>:
4021a030:\tmovi\ta8, 0xfffffcb0
00000010 <h-0x8>:
00000018 <h>:
  18:\taddi\ta1, a1, -16
";
        let firsts = first_instructions(listing);
        assert_eq!(firsts.get("f").map(String::as_str), Some("l32r"));
        assert_eq!(firsts.get("g").map(String::as_str), Some("movi"));
        assert_eq!(firsts.get("h").map(String::as_str), Some("addi"));
        assert_eq!(firsts.len(), 3);
    }

    #[test]
    fn map_sizes_split_own_and_foreign_objects() {
        let map = "\
Discarded input sections
 .text.gone     0x0 0x99 /x/ramkey-firmware.o
Linker script and memory map

.irom0.text     0x40210000      0x140
 .text.user_init
                0x40210000       0x30 /b/obj/ramkey-firmware.o
 .text.memcpy   0x40210030      0x100 /sdk/lib/libmain.a(mem.o)
 .text.ramkey_emu.ets_putc
                0x40210130       0x10 /b/obj/ramkey-firmware.o
.data           0x3ffe8000        0x8
 .data.x        0x3ffe8000        0x8 /b/obj/ramkey-builtins.o
";
        let own = vec![
            "ramkey-firmware.o".to_owned(),
            "ramkey-builtins.o".to_owned(),
        ];
        let sizes = sizes_from_map(map, &own);
        assert_eq!(sizes.sections[".irom0.text"], (0x30 + 0x10, 0x140));
        assert_eq!(sizes.sections[".data"], (8, 8));
        assert_eq!(sizes.emulator[".irom0.text"], 0x10);
        assert!(!sizes.emulator.contains_key(".data"));
    }
}
