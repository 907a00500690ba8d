//! The firewall against a model of the SDK's own save (`docs/sdk-model.md` M3-M7): the flag
//! record, the sector rotation, the checksum and the read-back loop that never ends on its own.

use std::borrow::ToOwned;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

/// The parameter area starts at sector 1 of this small flash; sector 0 stands for "elsewhere"
/// (RF calibration, the identity sector).
const AREA: u32 = SECTOR_SIZE;
const FLASH_BYTES: usize = 4 * SECTOR_SIZE as usize;
/// Passes of the SDK's erase-write-verify loop after which the model calls it endless.
const ENDLESS: u32 = 5;

struct Sdk {
    flash: Vec<u8>,
    firewall: Firewall,
    /// Every chunk the firewall handed to flash: (address, length).
    chunks: Vec<(u32, usize)>,
}

impl Sdk {
    fn new() -> Sdk {
        Sdk {
            flash: vec![0xFF; FLASH_BYTES],
            firewall: Firewall::new(AREA),
            chunks: Vec::new(),
        }
    }

    fn read(&self, address: u32, len: usize) -> Vec<u8> {
        self.flash[address as usize..address as usize + len].to_vec()
    }

    /// `wifi_param_save_protect_with_check` (M7): erase, write, read back, compare, and start
    /// over while the bytes differ. Returns the passes it took, or an error when it would loop
    /// forever; a refused write ends it (the SDK prints and returns).
    fn protect_with_check(
        &mut self,
        sector: u32,
        buf: &[u8],
        secrets: &[&[u8]],
    ) -> Result<u32, String> {
        let address = sector * SECTOR_SIZE;
        for pass in 1..=ENDLESS {
            self.firewall.erase(sector as u16);
            self.flash[address as usize..(address + SECTOR_SIZE) as usize].fill(0xFF);
            let flash = &mut self.flash;
            let chunks = &mut self.chunks;
            let verdict = self
                .firewall
                .write(address, buf, secrets, &mut |at: u32, bytes: &[u8]| {
                    chunks.push((at, bytes.len()));
                    for (i, b) in bytes.iter().enumerate() {
                        flash[at as usize + i] &= b;
                    }
                    Ok::<(), ()>(())
                })
                .map_err(|()| "flash error".to_owned())?;
            if let Verdict::Refused(_) = verdict {
                return Ok(pass);
            }
            let mut back = self.read(address, buf.len());
            if self.firewall.read_back(address, buf.len() as u32) {
                back.copy_from_slice(buf);
            }
            if back == buf {
                return Ok(pass);
            }
        }
        Err("the SDK's write-verify loop would never end".to_owned())
    }

    /// `system_param_save_with_protect` (M3-M4, M6).
    fn save(&mut self, block: &[u8], secrets: &[&[u8]]) -> Result<u32, String> {
        let flag_at = AREA + 2 * SECTOR_SIZE;
        let mut flag = self.read(flag_at, FLAG_LEN as usize);
        let current = usize::from(flag[0] != 0);
        let next = 1 - current;
        if self.read(AREA + current as u32 * SECTOR_SIZE, block.len()) == block {
            return Ok(0);
        }
        let mut passes =
            self.protect_with_check(AREA / SECTOR_SIZE + next as u32, block, secrets)?;
        let word =
            |f: &[u8], at: usize| u32::from_le_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]);
        let counter = if word(&flag, 4) == FLAG_MAGIC_1 && word(&flag, 28) == FLAG_MAGIC_2 {
            word(&flag, 8) + 1
        } else {
            1
        };
        flag[0] = next as u8;
        flag[4..8].copy_from_slice(&FLAG_MAGIC_1.to_le_bytes());
        flag[8..12].copy_from_slice(&counter.to_le_bytes());
        flag[12 + 4 * next..16 + 4 * next].copy_from_slice(&32u32.to_le_bytes());
        let sum = u32::from(checksum(&block[..CHECKSUM_LEN]));
        flag[20 + 4 * next..24 + 4 * next].copy_from_slice(&sum.to_le_bytes());
        flag[28..32].copy_from_slice(&FLAG_MAGIC_2.to_le_bytes());
        passes += self.protect_with_check(AREA / SECTOR_SIZE + 2, &flag, secrets)?;
        Ok(passes)
    }

    /// The boot load's check (M9, M10): the current sector's first 32 bytes match its checksum.
    fn boot_block(&self) -> Result<Vec<u8>, String> {
        let flag = self.read(AREA + 2 * SECTOR_SIZE, FLAG_LEN as usize);
        let current = usize::from(flag[0] != 0);
        let block = self.read(AREA + current as u32 * SECTOR_SIZE, BLOCK_LEN as usize);
        let stored = flag[20 + 4 * current];
        if stored != checksum(&block[..CHECKSUM_LEN]) {
            return Err(format!("checksum {stored:#x} does not match the block"));
        }
        Ok(block)
    }

    fn contains(&self, needle: &[u8]) -> bool {
        self.flash.windows(needle.len()).any(|w| w == needle)
    }
}

const SSID: &[u8] = b"HomeNetwork";
const PASSWORD: &[u8] = b"hunter22-hunter22";
const PMK: [u8; 32] = [0xA7; 32];
const AP_PASSWORD: &[u8] = b"setup-passphrase-77";

/// A block as the SDK holds it after a connection with PmkCurrent set: credentials in the
/// station fields, in AP-cache slot 0 and in the SoftAP fields.
fn block_with_credentials() -> Vec<u8> {
    let mut b = vec![0u8; BLOCK_LEN as usize];
    b[0x008] = 3;
    b[0x00C..0x010].copy_from_slice(&(SSID.len() as u32).to_le_bytes());
    b[0x010..0x010 + SSID.len()].copy_from_slice(SSID);
    b[0x037..0x037 + PASSWORD.len()].copy_from_slice(PASSWORD);
    b[0x078..0x098].copy_from_slice(&PMK);
    b[0x098] = 6;
    b[0x0AA..0x0B0].copy_from_slice(&[2, 0x11, 0x22, 0x33, 0x44, 0x55]);
    b[0x0A9] = 1;
    b[0x0D4..0x0D4 + AP_PASSWORD.len()].copy_from_slice(AP_PASSWORD);
    b[0x115..0x135].copy_from_slice(&PMK);
    b[0x13C] = 1;
    b[0x140..0x144].copy_from_slice(&(SSID.len() as u32).to_le_bytes());
    b[0x144..0x144 + SSID.len()].copy_from_slice(SSID);
    b[0x164..0x164 + PASSWORD.len()].copy_from_slice(PASSWORD);
    b[0x3E4..0x404].copy_from_slice(&PMK);
    b[0x340] = 1;
    b
}

#[test]
fn a_save_with_credentials_leaves_none_in_flash_and_the_sdk_loop_ends() {
    let mut sdk = Sdk::new();
    let block = block_with_credentials();
    let passes = sdk.save(&block, &[]).expect("save");
    assert_eq!(
        passes, 2,
        "one pass for the data sector, one for the flag record"
    );
    for secret in [SSID, PASSWORD, &PMK[..], AP_PASSWORD] {
        assert!(!sdk.contains(secret), "a credential reached flash");
    }
    let stored = sdk.boot_block().expect("the SDK's boot check must pass");
    assert_eq!(stored[0x008], 0, "stored opmode: none");
    assert_eq!(stored[0x340], 0, "stored auto-connect: off");
    assert_eq!(stored[0x098], 6, "the channel is no secret and stays");
    assert_eq!(stored[0x144], 0xFF, "slot 0 is free again");
    let c = sdk.firewall.counters();
    assert_eq!(c.writes_cleaned, 2);
    assert_eq!(c.checksums_fixed, 1);
    assert_eq!(c.read_backs_answered, 2);
    // Station SSID, password, PMK; SoftAP password, PMK; slot 0 SSID, password, PMK.
    assert_eq!(c.fields_blanked, 8, "{c:?}");
    assert!(
        sdk.chunks
            .iter()
            .all(|&(a, l)| a % 4 == 0 && l % 4 == 0 && l <= CHUNK)
    );
}

#[test]
fn saves_rotate_and_every_one_ends() {
    let mut sdk = Sdk::new();
    let block = block_with_credentials();
    for round in 0..4 {
        // Flash never equals the SDK's buffer, so every save writes (M7): it must still end.
        assert_eq!(sdk.save(&block, &[]), Ok(2), "round {round}");
        let flag = sdk.read(AREA + 2 * SECTOR_SIZE, 32);
        // An erased flag (0xFF) names the second sector, so the first save writes the first.
        assert_eq!(usize::from(flag[0]), round % 2, "data sectors alternate");
        sdk.boot_block().expect("checksum valid");
    }
    assert!(!sdk.contains(PASSWORD));
}

#[test]
fn the_boot_defaults_save_stores_no_radio_start() {
    // M12-M14: an erased block gets opmode 2 (SoftAP) and auto-connect 0xFF (on) in RAM, then saved.
    let mut block = vec![0xFFu8; BLOCK_LEN as usize];
    block[0x008] = 2;
    let mut sdk = Sdk::new();
    sdk.save(&block, &[]).expect("save");
    let stored = sdk.boot_block().expect("boot check");
    assert_eq!((stored[0x008], stored[0x340]), (0, 0));
}

#[test]
fn a_named_secret_is_wiped_anywhere_and_answered_on_read_back() {
    let mut sdk = Sdk::new();
    let psk_hex = b"a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7";
    let mut rf_cal = vec![0x11u8; 256];
    rf_cal[100..164].copy_from_slice(psk_hex);
    let passes = sdk
        .protect_with_check(0, &rf_cal, &[psk_hex])
        .expect("write");
    assert_eq!(passes, 1);
    assert!(!sdk.contains(psk_hex));
    assert_eq!(
        sdk.read(0, 100),
        vec![0x11; 100],
        "the rest of the write is untouched"
    );
    assert_eq!(sdk.firewall.counters().secrets_wiped, 1);
    // A write without secrets goes through unchanged, and its read-back is not answered.
    let plain = vec![0x22u8; 64];
    let verdict = sdk
        .firewall
        .write(0x200, &plain, &[psk_hex], &mut |_, _| Ok::<(), ()>(()))
        .expect("write");
    assert_eq!(verdict, Verdict::Unchanged);
    assert!(!sdk.firewall.read_back(0x200, 64));
}

#[test]
fn what_cannot_be_cleaned_is_refused_and_never_written() {
    let mut firewall = Firewall::new(AREA);
    let mut written = 0;
    let secret = b"12345678";
    let many: Vec<u8> = secret.repeat(MAX_OCCURRENCES + 1);
    let verdict = firewall.write(0, &many, &[secret], &mut |_, _| {
        written += 1;
        Ok::<(), ()>(())
    });
    assert_eq!(verdict, Ok(Verdict::Refused(Refusal::TooManySecrets)));
    let verdict = firewall.write(AREA + 2, &[0u8; 8], &[], &mut |_, _| {
        written += 1;
        Ok::<(), ()>(())
    });
    assert_eq!(verdict, Ok(Verdict::Refused(Refusal::Unaligned)));
    assert_eq!(written, 0);
    assert_eq!(firewall.counters().refused, 2);
    // Unaligned writes elsewhere are not the firewall's business (the SDK's driver refuses them).
    let verdict = firewall.write(3, &[1, 2, 3], &[], &mut |_, _| Ok::<(), ()>(()));
    assert_eq!(verdict, Ok(Verdict::Unchanged));
}

#[test]
fn a_flash_error_is_returned_and_nothing_is_left_pending() {
    let mut firewall = Firewall::new(AREA);
    let block = block_with_credentials();
    let result = firewall.write(AREA, &block, &[], &mut |_, _| Err("timeout"));
    assert_eq!(result, Err("timeout"));
    assert!(!firewall.read_back(AREA, BLOCK_LEN));
}

#[test]
fn credentials_are_found_in_a_block_and_not_in_a_cleaned_or_erased_one() {
    let read = |block: &[u8]| {
        let block = block.to_vec();
        move |offset: u32, out: &mut [u8]| {
            out.copy_from_slice(&block[offset as usize..offset as usize + out.len()]);
            Ok::<(), ()>(())
        }
    };
    assert_eq!(holds_credentials(read(&block_with_credentials())), Ok(true));
    assert_eq!(
        holds_credentials(read(&vec![0xFF; BLOCK_LEN as usize])),
        Ok(false)
    );
    let mut sdk = Sdk::new();
    sdk.save(&block_with_credentials(), &[]).expect("save");
    let cleaned = sdk.boot_block().expect("boot");
    assert_eq!(holds_credentials(read(&cleaned)), Ok(false));
    // One byte of a slot's password is enough.
    let mut block = vec![0u8; BLOCK_LEN as usize];
    block[0x164 + 100 * 4 + 63] = b'x';
    assert_eq!(holds_credentials(read(&block)), Ok(true));
    assert_eq!(
        holds_credentials(|_, _| Err("unreadable")),
        Err("unreadable")
    );
}

#[test]
fn a_secret_that_blanking_would_complete_is_wiped_too() {
    // The SoftAP PMK (0x115..0x135) is blanked to 0xFF; the four bytes after it are not a
    // credential and stay. A secret made of four 0xFF and those bytes is nowhere in the SDK's
    // buffer, but would be in what the firewall stores.
    let mut block = block_with_credentials();
    block[0x135..0x139].copy_from_slice(&[6, 3, 0, 4]);
    let secret = [0xFF, 0xFF, 0xFF, 0xFF, 6, 3, 0, 4];
    let mut sdk = Sdk::new();
    sdk.save(&block, &[&secret]).expect("save");
    assert!(!sdk.contains(&secret));
    // Only 0x00/0x01/0xFF bytes: in every blanked field, so skipped rather than refused.
    assert!(is_degenerate(&[0xFF; 8]) && !is_degenerate(&secret));
}

#[test]
fn a_secret_across_a_field_edge_leaves_the_field_blank() {
    // A secret that starts in a blanked field (its fill bytes) and ends in the free bytes
    // beside it is wiped; the field must still read as blank afterwards, not half fill and
    // half wipe (found by the firewall_write fuzz target).
    let covered = |i: u32| rules().any(|r| r.range().contains(&i));
    let mut tried = 0;
    for rule in rules().filter(|r| r.credential && r.fill != WIPE) {
        let end = rule.range().end;
        if end + 4 > BLOCK_LEN || (end..end + 4).any(covered) {
            continue;
        }
        tried += 1;
        let mut block = block_with_credentials();
        let tail = [0x5A, 0xA5, 0x3C, end as u8];
        block[end as usize..end as usize + 4].copy_from_slice(&tail);
        let mut secret = vec![rule.fill; 4];
        secret.extend_from_slice(&tail);
        let mut sdk = Sdk::new();
        sdk.save(&block, &[&secret]).expect("save");
        assert!(!sdk.contains(&secret), "field at {:#x}", rule.offset);
        let stored = sdk.boot_block().expect("boot");
        let field = &stored[rule.range().start as usize..end as usize];
        assert!(
            is_blank(field),
            "field at {:#x} reads {field:02x?}",
            rule.offset
        );
    }
    assert!(
        tried > 0,
        "no field with free bytes after it: the test tests nothing"
    );
}

#[test]
fn the_checksum_is_the_sdks_own() {
    // Two values from the SDK's definition (M5): XOR from 0xEF.
    assert_eq!(checksum(&[]), 0xEF);
    assert_eq!(checksum(&[0xEF, 0x01]), 0x01);
}

proptest! {
    #[test]
    fn no_secret_survives_any_block(
        mut block in proptest::collection::vec(any::<u8>(), BLOCK_LEN as usize),
        at in 0usize..(BLOCK_LEN as usize - 64),
        secret in proptest::collection::vec(any::<u8>(), 8..=64),
    ) {
        block[at..at + secret.len()].copy_from_slice(&secret);
        let mut sdk = Sdk::new();
        let passes = sdk.save(&block, &[&secret]).expect("the save ends");
        prop_assert!(passes <= 2);
        prop_assert!(!sdk.contains(&secret));
        sdk.boot_block().expect("checksum valid");
    }

    #[test]
    fn writes_in_pieces_clean_the_same_fields(split in 1usize..(BLOCK_LEN as usize / 4)) {
        // A block written in two calls gets the same credential fields blanked as one write.
        let block = block_with_credentials();
        let cut = split * 4;
        let mut whole = vec![0xFFu8; BLOCK_LEN as usize];
        let mut pieces = vec![0xFFu8; BLOCK_LEN as usize];
        let mut firewall = Firewall::new(AREA);
        firewall.write(AREA, &block, &[], &mut |a: u32, d: &[u8]| {
            let at = (a - AREA) as usize;
            whole[at..at + d.len()].copy_from_slice(d);
            Ok::<(), ()>(())
        }).expect("write");
        for (start, part) in [(0, &block[..cut]), (cut, &block[cut..])] {
            firewall.write(AREA + start as u32, part, &[], &mut |a: u32, d: &[u8]| {
                let at = (a - AREA) as usize;
                pieces[at..at + d.len()].copy_from_slice(d);
                Ok::<(), ()>(())
            }).expect("write");
        }
        prop_assert_eq!(whole, pieces);
    }
}
