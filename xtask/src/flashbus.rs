//! The flash-bus check: under QEMU, every data access to the flash-mapped window must be an
//! aligned 32-bit load, as on the chip (`xtask/qemu-plugin/flashbus.c` watches them).
//!
//! The chip raises LoadStoreError for a byte, half-word or unaligned load from flash, and
//! for any store there; QEMU's lx106 model lets them all through, so without this check a
//! firmware that reads its flash text (`src/flash_text.rs`) the wrong way would pass every
//! emulated test and crash on the first page it serves.

use std::path::Path;

use crate::{checks, qemu};

/// What the plugin saw in one run.
#[derive(Debug)]
pub struct Report {
    /// Aligned 32-bit loads from the firmware's flash text (`_ramkey_flash_text_start..end`).
    pub text_loads32: u64,
    /// Accesses the chip would refuse.
    pub bad: u64,
    /// The first of them, as the plugin printed them (`bad pc=... addr=... size=... store=...`).
    pub bad_lines: Vec<String>,
}

impl Report {
    /// An error naming the refused accesses, if there were any.
    pub fn check(&self) -> Result<(), String> {
        if self.bad == 0 {
            return Ok(());
        }
        Err(format!(
            "{} data access(es) to flash that the chip refuses (only aligned 32-bit loads work there); the first:\n{}",
            self.bad,
            self.bad_lines.join("\n")
        ))
    }
}

/// The `-plugin` argument that writes the report for a run of `elf` to `out`.
pub fn plugin_arg(elf: &Path, out: &Path) -> Result<String, String> {
    let plugin = qemu::plugin("flashbus")?;
    let start = checks::symbol_address(elf, "_ramkey_flash_text_start")?;
    let end = checks::symbol_address(elf, "_ramkey_flash_text_end")?;
    Ok(format!(
        "{},data_from={start:#x},data_to={end:#x},out={}",
        plugin.display(),
        out.display()
    ))
}

/// Reads the report the plugin wrote.
pub fn read(out: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(out)
        .map_err(|e| format!("no flash-bus report {}: {e}", out.display()))?;
    let value = |key: &str| -> Result<u64, String> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
            .ok_or_else(|| format!("flash-bus report without {key}:\n{text}"))
    };
    Ok(Report {
        text_loads32: value("data_loads32")?,
        bad: value("bad")?,
        bad_lines: text
            .lines()
            .filter(|l| l.starts_with("bad pc="))
            .map(str::to_owned)
            .collect(),
    })
}
