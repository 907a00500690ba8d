//! The SDK's parameter block, kept and saved the way the real SDK does (`docs/sdk-model.md`).
//!
//! The real SDK holds a 0x4A4-byte block in RAM (M2) and a copy in the last three sectors of
//! flash: two data sectors used in turn and a 32-byte flag record naming the current one,
//! with an XOR checksum over the block's first 32 bytes (M1-M5). This module is that model:
//!
//! - [`load_at_boot`]: the boot load with the ROM's `SPIRead` (not `spi_flash_read`, so no
//!   wrapper sees it), no repair on a bad checksum (M9, M10);
//! - [`boot_saves`]: the two saves between `user_pre_init` and `user_init` (MAC backup
//!   mismatch; a blank opmode becomes SoftAP and is saved) and the field defaults (M12-M14);
//! - [`save_with_protect`]: compare with the current sector, write the other one, then the flag
//!   record, each through the erase-write-read-compare loop that never gives up while the
//!   read-back differs (M4, M6, M7); all through `spi_flash_*` by their SDK names, so the
//!   firmware's `--wrap` sees every write as it would on the chip;
//! - `PmkCurrent` and the three save functions libwpa calls while connecting (M20, M22-M25);
//! - applying a station config to a block and its five-slot AP cache (M31).
//!
//! The emulator bounds the endless loop at [`ENDLESS_PASSES`] passes and then stops the run
//! with [`EXIT_SDK_STUCK`]: the chip would erase and rewrite the sector until the watchdog or
//! the flash gave out.

use wifi_sys::station_config;

use crate::scheduler::Global;
use crate::semihosting::{self, say};
use crate::{emulate, emulate_wrappable, flash};

pub use wifi_sys::param as at;

/// Bytes in the block (M2).
pub const BLOCK: usize = at::BLOCK_LEN;
const SECTOR: u32 = 0x1000;
const FLAG_MAGIC_1: u32 = at::FLAG_MAGIC_1;
const FLAG_MAGIC_2: u32 = at::FLAG_MAGIC_2;
/// Bytes the checksum covers (M5).
const CHECKSUM_LEN: usize = at::CHECKSUM_LEN;
/// Passes of the erase-write-verify loop after which the emulator calls it endless.
pub const ENDLESS_PASSES: u32 = 20;
/// QEMU exit status: the SDK would loop forever rewriting a sector (M7).
pub const EXIT_SDK_STUCK: u32 = 5;

struct Params {
    /// The RAM block (`g_ic+0x20c` on the chip).
    ram: [u8; BLOCK],
    /// `PmkCurrent` (M20): 1 until the first `wifi_station_set_config_current`.
    pmk_current: bool,
    /// Round-robin slot index for a full AP cache (M31).
    next_slot: usize,
}

static PARAMS: Global<Params> = Global::new(Params {
    ram: [0xFF; BLOCK],
    pmk_current: true,
    next_slot: 0,
});

/// Runs `f` on the RAM block. `f` must not call flash or firmware code.
pub fn with_ram<R>(f: impl FnOnce(&mut [u8; BLOCK]) -> R) -> R {
    PARAMS.with(|p| f(&mut p.ram))
}

/// `PmkCurrent` as the save functions see it.
pub fn pmk_current() -> bool {
    PARAMS.with(|p| p.pmk_current)
}

/// Sets `PmkCurrent` (the persistent setter sets it, the `_current` one clears it: M20).
pub fn set_pmk_current(value: bool) {
    if !value && crate::sdk::settings().pmk_current_sticky {
        say!("HYPOTHETICAL: PmkCurrent stays set (harness flag; the modelled SDK clears it)");
        return;
    }
    PARAMS.with(|p| p.pmk_current = value);
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(at::CHECKSUM_SEED, |acc, b| acc ^ b)
}

/// First sector of the parameter area: flash size / sector size - 3 (M1).
fn first_sector() -> Option<u32> {
    flash::size().map(|bytes| bytes / SECTOR - 3)
}

/// M9, M10: the boot load, with direct reads (the ROM's `SPIRead`; no `spi_flash_read` wrapper
/// sees them). A bad checksum is reported and the data used anyway.
pub fn load_at_boot() {
    let Some(start) = first_sector() else { return };
    let mut flag = [0u8; 32];
    let mut block = [0u8; BLOCK];
    if flash::raw_read((start + 2) * SECTOR, &mut flag).is_none() {
        return;
    }
    let current = u32::from(flag[0] != 0);
    if flash::raw_read((start + current) * SECTOR, &mut block).is_none() {
        return;
    }
    let index = current as usize;
    let ok = word(&flag, 4) == FLAG_MAGIC_1
        && matches!(word(&flag, 28), FLAG_MAGIC_2 | u32::MAX)
        && word(&flag, at::FLAG_LEN_WORDS + 4 * index) == CHECKSUM_LEN as u32
        && word(&flag, at::FLAG_CHECKSUM_WORDS + 4 * index)
            == u32::from(checksum(&block[..CHECKSUM_LEN]));
    if !ok && word(&flag, 4) != u32::MAX {
        say!(
            "sdk: system param error, use last saved param (sector {})",
            start + current
        );
    }
    PARAMS.with(|p| p.ram = block);
}

/// M12-M14: between `user_pre_init` and `user_init`: the MAC backup save and the defaults, with a
/// save when the opmode was blank.
pub fn boot_saves(mac: [u8; 6]) {
    let mac_differs = with_ram(|ram| {
        let differs = ram[at::MAC_BACKUP..at::MAC_BACKUP + 6] != mac;
        if differs {
            ram[at::MAC_BACKUP..at::MAC_BACKUP + 6].copy_from_slice(&mac);
        }
        differs
    });
    if mac_differs {
        say!("sdk: MAC backup differs: saving the parameter block (system_save_sys_param)");
        save_ram();
    }
    let opmode_blank = with_ram(|ram| {
        let blank = ram[at::OPMODE] == 0xFF;
        if blank {
            ram[at::OPMODE] = wifi_sys::SOFTAP_MODE;
        }
        if word(ram, at::AP_SSID_LEN) == u32::MAX || ram[at::AP_SSID] == 0xFF {
            // "ESP-" and the SoftAP MAC's last three bytes (M18).
            ram[at::AP_SSID_LEN..at::AP_SSID + 32].fill(0);
            let hex = |n: u8| b"0123456789ABCDEF"[usize::from(n & 15)];
            let name = [
                b'E',
                b'S',
                b'P',
                b'-',
                hex(crate::wifi::SOFTAP_MAC[3] >> 4),
                hex(crate::wifi::SOFTAP_MAC[3]),
                hex(crate::wifi::SOFTAP_MAC[4] >> 4),
                hex(crate::wifi::SOFTAP_MAC[4]),
                hex(crate::wifi::SOFTAP_MAC[5] >> 4),
                hex(crate::wifi::SOFTAP_MAC[5]),
            ];
            ram[at::AP_SSID..at::AP_SSID + name.len()].copy_from_slice(&name);
            ram[at::AP_SSID_LEN..at::AP_SSID_LEN + 4]
                .copy_from_slice(&(name.len() as u32).to_le_bytes());
        }
        if !(1..=13).contains(&ram[at::AP_CHANNEL]) {
            ram[at::AP_CHANNEL] = 1;
        }
        if ram[at::AP_AUTH] >= 5 || ram[at::AP_AUTH] == 1 {
            ram[at::AP_AUTH] = 0;
            ram[at::AP_PASSWORD..at::AP_PASSWORD + 64].fill(0);
        }
        if ram[at::AP_HIDDEN] >= 2 {
            ram[at::AP_HIDDEN] = 0;
        }
        if ram[at::AP_MAX_CONN] > 8 {
            ram[at::AP_MAX_CONN] = 4;
        }
        if word(ram, at::STA_SSID_LEN) == u32::MAX {
            ram[at::STA_SSID_LEN..at::STA_SSID + 32].fill(0);
            ram[at::STA_PASSWORD..at::STA_PASSWORD + 64].fill(0);
        }
        if ram[at::STA_BSSID_SET] >= 2 {
            ram[at::STA_BSSID_SET] = 0;
        }
        if ram[at::CACHE_SIZE] >= 6 {
            ram[at::CACHE_SIZE] = 1;
        }
        blank
    });
    if opmode_blank {
        say!("sdk: blank opmode: SoftAP by default, saving the parameter block");
        save_ram();
    }
}

/// Saves the whole RAM block (`system_save_sys_param`).
pub fn save_ram() {
    let block = with_ram(|ram| *ram);
    save_with_protect(&block);
}

/// `system_param_load`: the current sector's block through `spi_flash_read` (which the
/// firmware's `--wrap` sees; M29). All 0xFF when it cannot be read.
pub fn load_stored() -> [u8; BLOCK] {
    let mut block = [0xFFu8; BLOCK];
    let Some(start) = first_sector() else {
        return block;
    };
    let mut flag = [0u32; 8];
    // SAFETY: both buffers are 4-aligned, writable and as long as the sizes passed.
    let current = unsafe {
        if wifi_sys::spi_flash_read((start + 2) * SECTOR, flag.as_mut_ptr(), 32) != 0 {
            return block;
        }
        u32::from(flag[0] & 0xFF != 0)
    };
    let mut words = [0u32; BLOCK / 4];
    // SAFETY: as above.
    let ok = unsafe {
        wifi_sys::spi_flash_read((start + current) * SECTOR, words.as_mut_ptr(), BLOCK as u32) == 0
    };
    if ok {
        for (chunk, w) in block.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
    }
    block
}

/// M4, M6: `system_param_save_with_protect(start, block, 0x4A4)`.
pub fn save_with_protect(block: &[u8; BLOCK]) {
    let Some(start) = first_sector() else { return };
    let mut flag = [0u32; 8];
    let mut current_words = [0u32; BLOCK / 4];
    // SAFETY: 4-aligned writable buffers of the sizes passed.
    let read_ok =
        unsafe { wifi_sys::spi_flash_read((start + 2) * SECTOR, flag.as_mut_ptr(), 32) == 0 };
    let mut flag_bytes = [0u8; 32];
    if read_ok {
        for (chunk, w) in flag_bytes.chunks_exact_mut(4).zip(flag) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
    } else {
        flag_bytes = [0xFF; 32];
    }
    let current = u32::from(flag_bytes[0] != 0);
    let next = 1 - current;
    // SAFETY: as above.
    let same = unsafe {
        wifi_sys::spi_flash_read(
            (start + current) * SECTOR,
            current_words.as_mut_ptr(),
            BLOCK as u32,
        ) == 0
    } && current_words
        .iter()
        .zip(block.chunks_exact(4))
        .all(|(w, c)| w.to_le_bytes() == [c[0], c[1], c[2], c[3]]);
    if same {
        return;
    }
    say!(
        "sdk: saving the parameter block to sector {:#x}",
        start + next
    );
    protect_with_check(start + next, block);
    // The flag record goes out whatever happened to the data write (M4, M6).
    let counter = if word(&flag_bytes, 4) == FLAG_MAGIC_1 && word(&flag_bytes, 28) == FLAG_MAGIC_2 {
        word(&flag_bytes, 8).wrapping_add(1)
    } else {
        1
    };
    let n = next as usize;
    flag_bytes[0] = next as u8;
    flag_bytes[4..8].copy_from_slice(&FLAG_MAGIC_1.to_le_bytes());
    flag_bytes[8..12].copy_from_slice(&counter.to_le_bytes());
    let len_at = at::FLAG_LEN_WORDS + 4 * n;
    flag_bytes[len_at..len_at + 4].copy_from_slice(&(CHECKSUM_LEN as u32).to_le_bytes());
    let sum = u32::from(checksum(&block[..CHECKSUM_LEN]));
    let sum_at = at::FLAG_CHECKSUM_WORDS + 4 * n;
    flag_bytes[sum_at..sum_at + 4].copy_from_slice(&sum.to_le_bytes());
    flag_bytes[28..32].copy_from_slice(&FLAG_MAGIC_2.to_le_bytes());
    protect_with_check(start + 2, &flag_bytes);
}

/// M7: `wifi_param_save_protect_with_check`: erase, write, read back, compare; start over
/// while the read-back differs. An error from any step ends it (the SDK prints and returns).
fn protect_with_check(sector: u32, bytes: &[u8]) {
    let mut words = [0u32; BLOCK / 4];
    let count = bytes.len().div_ceil(4);
    for (w, c) in words.iter_mut().zip(bytes.chunks(4)) {
        let mut b = [0u8; 4];
        b[..c.len()].copy_from_slice(c);
        *w = u32::from_le_bytes(b);
    }
    let mut back = [0u32; BLOCK / 4];
    for _ in 0..ENDLESS_PASSES {
        // SAFETY: `words` and `back` are 4-aligned buffers of at least `bytes.len()` bytes.
        unsafe {
            if wifi_sys::spi_flash_erase_sector(sector as u16) != 0 {
                say!("sdk: [E] erase of sector {sector:#x} failed");
                return;
            }
            if wifi_sys::spi_flash_write(sector * SECTOR, words.as_mut_ptr(), bytes.len() as u32)
                != 0
            {
                say!("sdk: [W] write of sector {sector:#x} failed");
                return;
            }
            if wifi_sys::spi_flash_read(sector * SECTOR, back.as_mut_ptr(), bytes.len() as u32) != 0
            {
                say!("sdk: [R] read of sector {sector:#x} failed");
                return;
            }
        }
        if back[..count] == words[..count] {
            return;
        }
        say!("sdk: read-back of sector {sector:#x} differs: erasing and writing again");
    }
    say!(
        "sdk: still rewriting sector {sector:#x} after {ENDLESS_PASSES} passes: the real SDK would loop forever"
    );
    semihosting::exit(EXIT_SDK_STUCK);
}

fn slot_matches(block: &[u8; BLOCK], slot: usize) -> bool {
    let ssid = at::SLOT_SSID + slot * at::SLOT_STRIDE;
    let password = at::SLOT_PASSWORD + slot * at::SLOT_STRIDE;
    block[ssid..ssid + 32] == block[at::STA_SSID..at::STA_SSID + 32]
        && block[password..password + 64] == block[at::STA_PASSWORD..at::STA_PASSWORD + 64]
}

/// The AP-cache slot holding the current SSID and password, if any.
fn current_slot(block: &[u8; BLOCK]) -> Option<usize> {
    let size = usize::from(block[at::CACHE_SIZE]).min(at::SLOTS);
    (0..size).find(|&slot| slot_matches(block, slot))
}

/// M22-M25: `wifi_station_save_pmk2cache`: the PMK into the RAM slot cache; with `PmkCurrent`,
/// the station part and the slot PMK into the stored block, saved.
fn save_pmk2cache_impl() {
    let (ram, slot) = with_ram(|ram| {
        let slot = current_slot(ram);
        if let Some(slot) = slot {
            let at_pmk = at::SLOT_PMK + 32 * slot;
            let pmk: [u8; 32] = ram[at::STA_PMK..at::STA_PMK + 32]
                .try_into()
                .unwrap_or([0; 32]);
            ram[at_pmk..at_pmk + 32].copy_from_slice(&pmk);
        }
        (*ram, slot)
    });
    if !pmk_current() {
        return;
    }
    let mut stored = load_stored();
    copy_station_part(&mut stored, &ram);
    if let Some(slot) = slot {
        let at_pmk = at::SLOT_PMK + 32 * slot;
        stored[at_pmk..at_pmk + 32].copy_from_slice(&ram[at_pmk..at_pmk + 32]);
    }
    say!("sdk: wifi_station_save_pmk2cache with PmkCurrent set: the password and PMK go to flash");
    save_with_protect(&stored);
}

/// The 164-byte station part of the block (SSID length, SSID, password, ...) from RAM into
/// `stored`: what both of the SDK's station saves write (M22, M23).
fn copy_station_part(stored: &mut [u8], ram: &[u8]) {
    let part = at::STA_SSID_LEN..at::STA_SSID_LEN + at::STA_PART_LEN;
    stored[part.clone()].copy_from_slice(&ram[part]);
}

emulate_wrappable! {
    /// M22-M25, called by the emulated libwpa after it derived the PMK.
    fn wifi_station_save_pmk2cache() {
        save_pmk2cache_impl();
    }
}

emulate_wrappable! {
    /// M22-M25: with `PmkCurrent`, the BSSID into the stored block when it changed, saved.
    fn wifi_station_save_bssid() {
        if !pmk_current() {
            return;
        }
        let bssid: [u8; 6] = with_ram(|ram| ram[at::STA_BSSID..at::STA_BSSID + 6].try_into().unwrap_or([0; 6]));
        let mut stored = load_stored();
        if stored[at::STA_BSSID..at::STA_BSSID + 6] != bssid {
            stored[at::STA_BSSID..at::STA_BSSID + 6].copy_from_slice(&bssid);
            save_with_protect(&stored);
        }
    }
}

emulate_wrappable! {
    /// M22-M25: the channel into RAM (and the current slot); with `PmkCurrent`, the station part
    /// into the stored block, saved.
    fn wifi_station_save_ap_channel(channel: u8) {
        let (ram, slot) = with_ram(|ram| {
            ram[at::STA_CHANNEL] = channel;
            let slot = current_slot(ram);
            if let Some(slot) = slot {
                ram[at::SLOT_CHANNEL + slot] = channel;
            }
            (*ram, slot)
        });
        if !pmk_current() {
            return;
        }
        let mut stored = load_stored();
        copy_station_part(&mut stored, &ram);
        if let Some(slot) = slot {
            stored[at::SLOT_CHANNEL + slot] = channel;
        }
        say!("sdk: wifi_station_save_ap_channel with PmkCurrent set: the station config goes to flash");
        save_with_protect(&stored);
    }
}

/// M31: applies a station config to a block and its AP cache (the SDK's static L_1470 and
/// L_1294). `Changed` when anything was written.
pub fn apply_station_config(block: &mut [u8; BLOCK], config: &station_config) {
    let ssid_len = config.ssid.iter().position(|&b| b == 0).unwrap_or(32);
    let size = usize::from(block[at::CACHE_SIZE]).clamp(1, at::SLOTS);
    let same_as_slot = |block: &[u8; BLOCK], slot: usize| {
        let s = at::SLOT_SSID + slot * at::SLOT_STRIDE;
        let p = at::SLOT_PASSWORD + slot * at::SLOT_STRIDE;
        block[s..s + 32] == config.ssid[..] && block[p..p + 64] == config.password[..]
    };
    let matching = (0..size).find(|&slot| same_as_slot(block, slot));
    if let Some(slot) = matching
        && usize::from(block[at::CURRENT_AP]) == slot
        && block[at::STA_SSID..at::STA_SSID + 32] == config.ssid[..]
    {
        block[at::STA_CHANNEL] = config.channel;
        return;
    }
    let slot = matching
        .or_else(|| (0..size).find(|&slot| block[at::SLOT_SSID + slot * at::SLOT_STRIDE] == 0xFF))
        .unwrap_or_else(|| {
            PARAMS.with(|p| {
                let slot = p.next_slot % size;
                p.next_slot = slot + 1;
                slot
            })
        });
    block[at::CURRENT_AP] = slot as u8;
    let s = at::SLOT_SSID + slot * at::SLOT_STRIDE;
    block[at::SLOT_SSID_LEN + slot * at::SLOT_STRIDE..s]
        .copy_from_slice(&(ssid_len as u32).to_le_bytes());
    block[s..s + 32].copy_from_slice(&config.ssid);
    let p = at::SLOT_PASSWORD + slot * at::SLOT_STRIDE;
    block[p..p + 64].copy_from_slice(&config.password);
    let same_credentials = block[at::STA_SSID..at::STA_SSID + 32] == config.ssid[..]
        && block[at::STA_PASSWORD..at::STA_PASSWORD + 64] == config.password[..];
    let pmk_slot = at::SLOT_PMK + 32 * slot;
    if same_credentials && block[pmk_slot] != 0xFF {
        block[at::STA_PMK_INVALID] = 0;
        let cached: [u8; 32] = block[pmk_slot..pmk_slot + 32].try_into().unwrap_or([0; 32]);
        block[at::STA_PMK..at::STA_PMK + 32].copy_from_slice(&cached);
    } else {
        block[pmk_slot..pmk_slot + 32].fill(0xFF);
        block[at::STA_PMK_INVALID] = 1;
    }
    block[at::STA_SSID_LEN..at::STA_SSID].copy_from_slice(&(ssid_len as u32).to_le_bytes());
    block[at::STA_SSID..at::STA_SSID + 32].copy_from_slice(&config.ssid);
    block[at::STA_PASSWORD..at::STA_PASSWORD + 64].copy_from_slice(&config.password);
    block[at::STA_PASSWORD + 64] = 0;
    block[at::STA_BSSID_SET] = config.bssid_set;
    if config.bssid_set == 1 {
        block[at::STA_BSSID..at::STA_BSSID + 6].copy_from_slice(&config.bssid);
        let b = at::SLOT_BSSID + slot * at::SLOT_BSSID_STRIDE;
        block[at::SLOT_BSSID_SET + slot * at::SLOT_BSSID_STRIDE] = 1;
        block[b..b + 6].copy_from_slice(&config.bssid);
    }
    block[at::STA_CHANNEL] = config.channel;
}

emulate! {
    /// The station settings stored in flash (M29): the current sector's block, read with
    /// `spi_flash_read`; an erased SSID length reads as an empty config.
    fn wifi_station_get_config_default(config: *mut station_config) -> bool {
        if config.is_null() {
            return false;
        }
        let mut block = load_stored();
        if word(&block, at::STA_SSID_LEN) == u32::MAX {
            block[at::STA_SSID_LEN..at::STA_SSID + 32].fill(0);
            block[at::STA_PASSWORD..at::STA_PASSWORD + 64].fill(0);
        }
        // SAFETY: `config` points to a writable station_config (checked non-null).
        let c = unsafe { &mut *config };
        c.ssid.copy_from_slice(&block[at::STA_SSID..at::STA_SSID + 32]);
        c.password.copy_from_slice(&block[at::STA_PASSWORD..at::STA_PASSWORD + 64]);
        c.bssid_set = if block[at::STA_BSSID_SET] >= 2 { 0 } else { block[at::STA_BSSID_SET] };
        c.bssid.copy_from_slice(&block[at::STA_BSSID..at::STA_BSSID + 6]);
        c.channel = block[at::STA_CHANNEL];
        block.fill(0);
        true
    }
}
