//! Flash firewall: every flash write the SDK makes is cleaned of credentials before it lands.
//!
//! The NONOS SDK saves its parameter block (`docs/sdk-model.md`, M1-M27) by itself: at boot
//! when the block is blank, and while connecting when its `PmkCurrent` flag is still set. The
//! firmware's link routes the SDK's `spi_flash_write`, `spi_flash_erase_sector` and
//! `spi_flash_read` through this module (`--wrap`), which:
//!
//! - writes a cleaned copy, never touching the SDK's buffer: in the two data sectors of the
//!   parameter area every credential field is blanked whatever it holds (station SSID,
//!   password, PMK, WEP key and BSSID; the SoftAP password and PMK; the five AP-cache slots),
//!   the stored opmode becomes "none" and auto-connect "off", so that nothing stored can start
//!   a radio before ramkey decides; in every write anywhere, each occurrence of a secret the
//!   caller names (the PSK raw and as hex, a passphrase in flight) is wiped;
//! - keeps the block's checksum valid: the flag record the SDK writes after a data sector
//!   carries the checksum of the cleaned block, not of the SDK's buffer (M5);
//! - answers the SDK's read-back of a cleaned write with what the SDK asked to write, because
//!   `wifi_param_save_protect_with_check` erases and rewrites forever while the read-back
//!   differs (M7); flash itself keeps the cleaned bytes;
//! - refuses (an error the SDK gives up on, M7) what it cannot clean safely: an unaligned
//!   write into the area, or more secret occurrences than it can track;
//! - counts what it did.
//!
//! It is a sans-IO core: bytes in, cleaned chunks out through a closure, no SDK types. It
//! must never keep a copy of a secret beyond the chunk on the stack, and never write a byte
//! of the area that a rule or a secret says must be blank.

#![forbid(unsafe_code)]

use wifi_sys::param as at;

use crate::flash_layout::SECTOR_SIZE;

/// Size of the SDK's parameter block (M2).
pub const BLOCK_LEN: u32 = at::BLOCK_LEN as u32;
/// The flag record's size (M3).
pub const FLAG_LEN: u32 = at::FLAG_LEN as u32;
pub use wifi_sys::param::{CHECKSUM_LEN, FLAG_MAGIC_1, FLAG_MAGIC_2};
/// Bytes written to flash per call: one stack chunk.
const CHUNK: usize = 64;
/// Most secret occurrences one write may contain before it is refused.
const MAX_OCCURRENCES: usize = 8;
/// Shortest secret the firewall looks for (WiFi passphrases have at least 8 characters).
pub const MIN_SECRET_LEN: usize = 8;

/// The SDK's checksum: XOR of the bytes, starting from 0xEF (M5).
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(at::CHECKSUM_SEED, |acc, b| acc ^ b)
}

/// One field of the block and the byte the firewall stores in each of its bytes. Compact on
/// purpose: the table lives in DRAM (`.rodata`), where every byte is the SDK heap's.
#[derive(Clone, Copy, Debug)]
struct Rule {
    offset: u16,
    len: u8,
    fill: u8,
    /// Distance between AP-cache slots for a slot field (0 for the others).
    stride: u8,
    /// A credential (a secret or the network's name), rather than a safe default or a
    /// merely identifying value (a BSSID): counted in reports and checked by
    /// [`holds_credentials`].
    credential: bool,
}

const fn rule(offset: usize, len: usize, fill: u8, credential: bool) -> Rule {
    slot_rule(offset, len, fill, 0, credential)
}

const fn slot_rule(offset: usize, len: usize, fill: u8, stride: usize, credential: bool) -> Rule {
    Rule {
        offset: offset as u16,
        len: len as u8,
        fill,
        stride: stride as u8,
        credential,
    }
}

/// AP-cache slots in the block (M2).
pub const SLOTS: usize = at::SLOTS;

/// The block's fields outside the AP cache and what the firewall stores in them (M2's table).
const FIXED: [Rule; 15] = [
    // Opmode "none" and auto-connect off: nothing stored starts a radio (M16, M18).
    rule(at::OPMODE, 1, 0, false),
    rule(at::AUTO_CONNECT, 1, 0, false),
    // Station: ssid_len, SSID, "derive the PMK again", password and its NUL, PMK, WEP key,
    // bssid_set, BSSID.
    rule(at::STA_SSID_LEN, 4, 0, false),
    rule(at::STA_SSID, 32, 0, true),
    rule(at::STA_PMK_INVALID, 1, 1, false),
    rule(at::STA_PASSWORD, 64, 0, true),
    rule(at::STA_PASSWORD + 64, 1, 0, false),
    rule(at::STA_PMK, 32, 0xFF, true),
    rule(at::STA_WEP_KEY, 16, 0, true),
    rule(at::STA_BSSID_SET, 1, 0, false),
    rule(at::STA_BSSID, 6, 0, false),
    // SoftAP: password and its NUL, PMK.
    rule(at::AP_PASSWORD, 64, 0, true),
    rule(at::AP_PASSWORD + 64, 1, 0, false),
    rule(at::AP_PMK, 32, 0xFF, true),
    // The AP-cache size stays; the slots are marked free (SSID byte 0xFF).
    rule(at::CURRENT_AP, 1, 0, false),
];

/// One AP-cache slot's fields (slot 0's offsets; slot `n` is `n * stride` further).
const SLOT: [Rule; 6] = [
    slot_rule(at::SLOT_SSID_LEN, 4, 0xFF, at::SLOT_STRIDE, false),
    slot_rule(at::SLOT_SSID, 32, 0xFF, at::SLOT_STRIDE, true),
    slot_rule(at::SLOT_PASSWORD, 64, 0xFF, at::SLOT_STRIDE, true),
    slot_rule(at::SLOT_BSSID_SET, 1, 0, at::SLOT_BSSID_STRIDE, false),
    slot_rule(at::SLOT_BSSID, 6, 0, at::SLOT_BSSID_STRIDE, false),
    slot_rule(at::SLOT_PMK, 32, 0xFF, 32, true),
];

/// Every field rule: the fixed ones, then each slot's.
fn rules() -> impl Iterator<Item = Rule> {
    FIXED.iter().copied().chain((0..SLOTS).flat_map(|slot| {
        SLOT.iter().map(move |r| Rule {
            offset: r.offset + (slot * usize::from(r.stride)) as u16,
            ..*r
        })
    }))
}

impl Rule {
    fn range(&self) -> core::ops::Range<u32> {
        u32::from(self.offset)..u32::from(self.offset) + u32::from(self.len)
    }
}

/// What the firewall did, since it was created (each count saturates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Writes that reached flash with at least one byte changed.
    pub writes_cleaned: u16,
    /// Credential fields that held something (not all 0x00, not all 0xFF).
    pub fields_blanked: u16,
    /// Occurrences of a named secret wiped.
    pub secrets_wiped: u16,
    /// Flag records whose checksum was set to the cleaned block's.
    pub checksums_fixed: u16,
    /// Read-backs answered with the bytes the SDK asked to write.
    pub read_backs_answered: u16,
    /// Writes refused.
    pub refused: u16,
    /// Sectors of the parameter area erased.
    pub erases: u16,
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Address or length not a multiple of 4 where the area is concerned.
    Unaligned,
    /// More occurrences of secrets than one write may carry.
    TooManySecrets,
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Refusal::Unaligned => "unaligned write into the parameter area",
            Refusal::TooManySecrets => "too many secret occurrences in one write",
        })
    }
}

impl core::error::Error for Refusal {}

/// The outcome of one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Written as the caller gave it.
    Unchanged,
    /// Written with changes (the caller's read-back will be answered from its buffer).
    Cleaned {
        /// Credential fields blanked.
        fields: u32,
        /// Secret occurrences wiped.
        secrets: u32,
        /// Whether a flag record's checksum was corrected.
        checksum_fixed: bool,
    },
    /// Nothing was written; the caller must report an error to the SDK.
    Refused(Refusal),
}

/// Which part of flash a byte belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Data sector 0 or 1 of the parameter area, at this block offset.
    Block { sector: usize, offset: u32 },
    /// Any other byte of the parameter area sectors (flag sector, tail of a data sector).
    Area,
    /// Outside the area.
    Elsewhere,
}

/// The firewall's state between calls.
#[derive(Debug)]
pub struct Firewall {
    /// Flash offset of the parameter area (two data sectors, then the flag sector).
    area: u32,
    /// The last write that reached flash changed: (address, length). The SDK reads it back
    /// next (M7).
    /// A length of 0 means none (4 bytes less of DRAM than an `Option`).
    pending: (u32, u32),
    /// Checksum of the first 32 bytes of the cleaned block last written to each data sector.
    block_checksum: [Option<u8>; 2],
    counters: Counters,
}

impl Firewall {
    /// A firewall for the parameter area starting at flash offset `area` (sector aligned).
    pub const fn new(area: u32) -> Firewall {
        Firewall {
            area,
            pending: (0, 0),
            block_checksum: [None, None],
            counters: Counters {
                writes_cleaned: 0,
                fields_blanked: 0,
                secrets_wiped: 0,
                checksums_fixed: 0,
                read_backs_answered: 0,
                refused: 0,
                erases: 0,
            },
        }
    }

    /// What it has done so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    fn place(&self, address: u32) -> Place {
        let Some(relative) = address.checked_sub(self.area) else {
            return Place::Elsewhere;
        };
        if relative >= 3 * SECTOR_SIZE {
            return Place::Elsewhere;
        }
        let sector = (relative / SECTOR_SIZE) as usize;
        let offset = relative % SECTOR_SIZE;
        if sector < 2 && offset < BLOCK_LEN {
            Place::Block { sector, offset }
        } else {
            Place::Area
        }
    }

    fn touches_area(&self, address: u32, len: u32) -> bool {
        let end = address.saturating_add(len);
        address < self.area + 3 * SECTOR_SIZE && end > self.area
    }

    /// An erase of `sector` is about to happen (always allowed: erasing cannot store a
    /// secret). Forgets a pending read-back.
    pub fn erase(&mut self, sector: u16) {
        self.pending = (0, 0);
        let address = u32::from(sector) * SECTOR_SIZE;
        if self.touches_area(address, SECTOR_SIZE) {
            self.counters.erases = self.counters.erases.saturating_add(1);
            let relative = (address - self.area) / SECTOR_SIZE;
            if let Some(slot) = self.block_checksum.get_mut(relative as usize) {
                *slot = None;
            }
        }
    }

    /// A read of `len` bytes at `address` just completed. Returns true when it is the SDK's
    /// read-back of the last cleaned write: the caller then copies that write's source buffer
    /// over the bytes read, so the SDK's compare succeeds while flash keeps the cleaned bytes.
    pub fn read_back(&mut self, address: u32, len: u32) -> bool {
        let answer = len != 0 && self.pending == (address, len);
        if answer {
            self.counters.read_backs_answered = self.counters.read_backs_answered.saturating_add(1);
        }
        self.pending = (0, 0);
        answer
    }

    /// Cleans one write of `data` to `address` and hands the result to `flash` in chunks (each
    /// `(address, bytes)`, in order, 4-byte aligned when the write is). `secrets` are byte
    /// strings no write may carry; those shorter than [`MIN_SECRET_LEN`] are ignored.
    /// A `flash` error stops the write and is returned as is.
    pub fn write<E>(
        &mut self,
        address: u32,
        data: &[u8],
        secrets: &[&[u8]],
        flash: &mut impl FnMut(u32, &[u8]) -> Result<(), E>,
    ) -> Result<Verdict, E> {
        self.pending = (0, 0);
        let len = data.len() as u32;
        let in_area = self.touches_area(address, len);
        if in_area && (!address.is_multiple_of(4) || !len.is_multiple_of(4)) {
            self.counters.refused = self.counters.refused.saturating_add(1);
            return Ok(Verdict::Refused(Refusal::Unaligned));
        }
        // The field rules' spans in this write, for the secret search's view of it.
        let mut spans: heapless::Vec<(u16, u16, u8), { 15 + 6 * SLOTS }> = heapless::Vec::new();
        for (rule, from, to) in self.spans(address, data.len()) {
            let _ = spans.push((from as u16, to as u16, rule.fill));
        }
        let Some(occurrences) = find_secrets(data, &spans, secrets) else {
            self.counters.refused = self.counters.refused.saturating_add(1);
            return Ok(Verdict::Refused(Refusal::TooManySecrets));
        };
        let flag_record = address == self.area + 2 * SECTOR_SIZE && len == FLAG_LEN;
        // The checksum of a data sector is known when this write covers its first 32 bytes.
        let checksum_sector = match self.place(address) {
            Place::Block { sector, offset: 0 } if data.len() >= CHECKSUM_LEN => Some(sector),
            _ => None,
        };
        if let Place::Block { sector, .. } = self.place(address) {
            self.block_checksum[sector] = None;
        }
        let mut running = at::CHECKSUM_SEED;
        let mut fields = 0u32;
        let mut changed = false;
        let mut checksum_fixed = false;
        let mut chunk = [0u8; CHUNK];
        for (index, part) in data.chunks(CHUNK).enumerate() {
            let start = index * CHUNK;
            let at = address + start as u32;
            let out = &mut chunk[..part.len()];
            out.copy_from_slice(part);
            for &(from, to) in occurrences.iter() {
                let lo = from.max(start);
                let hi = to.min(start + part.len());
                for b in out
                    .iter_mut()
                    .take(hi.saturating_sub(start))
                    .skip(lo.saturating_sub(start))
                {
                    *b = WIPE;
                }
            }
            // The rules last: a wiped secret that reaches into a field leaves it blank.
            self.apply_rules(at, out);
            if flag_record && index == 0 {
                checksum_fixed = self.fix_flag_checksum(out);
            }
            if checksum_sector.is_some() {
                let covered = CHECKSUM_LEN.saturating_sub(start).min(out.len());
                running = out[..covered].iter().fold(running, |acc, b| acc ^ b);
            }
            if out != part {
                changed = true;
            }
            flash(at, out)?;
        }
        chunk.fill(0);
        if let Some(sector) = checksum_sector {
            self.block_checksum[sector] = Some(running);
        }
        if in_area {
            fields = count_fields(self, address, data);
        }
        if !changed {
            return Ok(Verdict::Unchanged);
        }
        let secrets_wiped = occurrences.len() as u32;
        self.pending = (address, len);
        self.counters.writes_cleaned = self.counters.writes_cleaned.saturating_add(1);
        self.counters.fields_blanked = self.counters.fields_blanked.saturating_add(fields as u16);
        self.counters.secrets_wiped = self
            .counters
            .secrets_wiped
            .saturating_add(secrets_wiped as u16);
        if checksum_fixed {
            self.counters.checksums_fixed = self.counters.checksums_fixed.saturating_add(1);
        }
        Ok(Verdict::Cleaned {
            fields,
            secrets: secrets_wiped,
            checksum_fixed,
        })
    }

    /// Every rule's overlap with `len` bytes written at `address`: (rule, first, end) as
    /// indices into the written bytes.
    fn spans(&self, address: u32, len: usize) -> impl Iterator<Item = (Rule, usize, usize)> + '_ {
        let end = address as u64 + len as u64;
        (0..2u32).flat_map(move |sector| {
            let base = self.area + sector * SECTOR_SIZE;
            rules().filter_map(move |rule| {
                let range = rule.range();
                let lo = (u64::from(base + range.start)).max(u64::from(address));
                let hi = (u64::from(base + range.end)).min(end);
                (lo < hi).then(|| {
                    (
                        rule,
                        (lo - u64::from(address)) as usize,
                        (hi - u64::from(address)) as usize,
                    )
                })
            })
        })
    }

    /// Applies the field rules to a chunk written at `at`.
    fn apply_rules(&self, at: u32, out: &mut [u8]) {
        for (rule, from, to) in self.spans(at, out.len()) {
            out[from..to].fill(rule.fill);
        }
    }

    /// In a flag record about to be written, sets the checksum of the sector it names to the
    /// cleaned block's. Returns whether it changed anything.
    fn fix_flag_checksum(&self, record: &mut [u8]) -> bool {
        if record.len() < FLAG_LEN as usize {
            return false;
        }
        let word =
            |r: &[u8], at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        if word(record, 4) != FLAG_MAGIC_1 {
            return false;
        }
        // Byte 0 names the current sector: 0 -> the first, anything else -> the second (M3).
        let sector = usize::from(record[0] != 0);
        let Some(sum) = self.block_checksum[sector] else {
            return false;
        };
        if word(record, at::FLAG_LEN_WORDS + 4 * sector) != CHECKSUM_LEN as u32 {
            return false;
        }
        let at = at::FLAG_CHECKSUM_WORDS + 4 * sector;
        let new = u32::from(sum).to_le_bytes();
        let changed = record[at..at + 4] != new;
        record[at..at + 4].copy_from_slice(&new);
        changed
    }
}

/// Counts the credential fields a write to the area held something in (bytes other than the
/// blank value), for the report.
fn count_fields(firewall: &Firewall, address: u32, data: &[u8]) -> u32 {
    let mut count = 0;
    for (rule, from, to) in firewall.spans(address, data.len()) {
        if !rule.credential {
            continue;
        }
        let field = &data[from..to];
        if !is_blank(field) {
            count += 1;
        }
    }
    count
}

/// A field holds nothing: all 0x00 (zeroed) or all 0xFF (erased).
fn is_blank(field: &[u8]) -> bool {
    field.iter().all(|&b| b == 0) || field.iter().all(|&b| b == 0xFF)
}

/// Whether one data sector of the parameter area holds credentials: some credential field
/// (station SSID, password, PMK or WEP key; SoftAP password or PMK; an AP-cache slot's SSID,
/// password or PMK) is neither all 0x00 nor all 0xFF. `read(offset, buffer)` reads the
/// block's bytes at `offset`; its error is returned as is.
pub fn holds_credentials<E>(
    mut read: impl FnMut(u32, &mut [u8]) -> Result<(), E>,
) -> Result<bool, E> {
    let mut field = [0u8; 64];
    let mut found = false;
    for rule in rules().filter(|r| r.credential) {
        let bytes = &mut field[..usize::from(rule.len)];
        read(u32::from(rule.offset), bytes)?;
        found |= !is_blank(bytes);
    }
    field.fill(0);
    Ok(found)
}

/// Fill of the wiped occurrences of a secret.
const WIPE: u8 = 0xFF;

/// Whether a secret could never be absent from flash: one made only of the bytes the
/// firewall itself writes (0x00, 0x01, 0xFF) would appear in every blanked field. No real key
/// or passphrase looks like that; such a "secret" is skipped rather than refused everywhere.
fn is_degenerate(secret: &[u8]) -> bool {
    secret.iter().all(|&b| matches!(b, 0x00 | 0x01 | WIPE))
}

/// Where the secrets occur in what the write would store (`data` with the field rules of
/// `spans` and the wipes found so far applied), as byte ranges, at most
/// [`MAX_OCCURRENCES`]; `None` when there are more. Wiping one occurrence (or blanking a
/// field) can complete another from the bytes around it, so the search runs again over the
/// cleaned view until it finds nothing new.
fn find_secrets(
    data: &[u8],
    spans: &[(u16, u16, u8)],
    secrets: &[&[u8]],
) -> Option<heapless::Vec<(usize, usize), MAX_OCCURRENCES>> {
    let mut found: heapless::Vec<(usize, usize), MAX_OCCURRENCES> = heapless::Vec::new();
    // As `write` stores it: a field's fill over everything, a wipe over the rest.
    let view = |found: &heapless::Vec<(usize, usize), MAX_OCCURRENCES>, i: usize| -> u8 {
        if let Some(&(_, _, fill)) = spans
            .iter()
            .find(|&&(from, to, _)| (usize::from(from)..usize::from(to)).contains(&i))
        {
            return fill;
        }
        if found.iter().any(|&(from, to)| (from..to).contains(&i)) {
            return WIPE;
        }
        data[i]
    };
    loop {
        let mut added = false;
        for secret in secrets
            .iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN && !is_degenerate(s))
        {
            let mut from = 0;
            while from + secret.len() <= data.len() {
                let hit = secret
                    .iter()
                    .enumerate()
                    .all(|(k, &b)| view(&found, from + k) == b);
                if hit {
                    found.push((from, from + secret.len())).ok()?;
                    added = true;
                    from += secret.len();
                } else {
                    from += 1;
                }
            }
        }
        if !added {
            return Some(found);
        }
    }
}

#[cfg(test)]
mod tests;
