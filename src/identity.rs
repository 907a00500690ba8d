//! Device identity: the per-device setup passphrase, in its own flash sector.
//!
//! `cargo xtask provision-key` generates a passphrase for each device and writes it to the
//! identity sector ([`Layout::device_identity`](crate::flash_layout::Layout::device_identity),
//! outside the SDK's sectors), and prints it on a label with a WiFi QR code. The firmware reads
//! it only in setup mode, to protect the setup access point `ramkey-XXXXXX` with WPA2.
//!
//! Record, at the start of the sector, little-endian, [`RECORD_LEN`] bytes:
//!
//! | offset | size | field                                              |
//! |--------|------|----------------------------------------------------|
//! | 0      | 4    | magic `rkID`                                       |
//! | 4      | 2    | format version ([`FORMAT_VERSION`])                |
//! | 6      | 2    | passphrase length, 8..=63                          |
//! | 8      | 64   | passphrase (printable ASCII), zero padded          |
//! | 72     | 4    | CRC-32 (ISO-HDLC) of bytes 0..72                   |
//!
//! Guarantees: decoding never panics; an erased sector, a torn write, a wrong version or a
//! bad checksum each give their own [`IdentityError`], never a passphrase.
//! Must never: print the passphrase (the type has no `Debug` or `Display`), or treat this
//! passphrase as anything but the setup AP's: it is in flash by design.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::secret::SecretBytes;

/// Magic word at the start of the record.
pub const MAGIC: [u8; 4] = *b"rkID";
/// Current record format.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the record (a multiple of 4, for `spi_flash_read`).
pub const RECORD_LEN: usize = 76;
/// Shortest setup passphrase WPA2 allows.
pub const MIN_LEN: usize = 8;
/// Longest setup passphrase (WPA2's text limit).
pub const MAX_LEN: usize = 63;
/// Characters [`generate`] draws from: no 0/O, 1/l/I, so a label is easy to type.
pub const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Bits of entropy in a [`generate`]d passphrase: 20 symbols of 5 bits.
pub const GENERATED_BITS: u32 = 100;

const OFFSET_VERSION: usize = 4;
const OFFSET_LEN: usize = 6;
const OFFSET_TEXT: usize = 8;
const OFFSET_CRC: usize = 72;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why the identity sector holds no usable passphrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// The sector is erased: the device was never provisioned.
    Empty,
    /// Fewer than [`RECORD_LEN`] bytes were given.
    Truncated,
    /// Something other than a record (or a torn one whose magic is damaged).
    BadMagic,
    /// A record of a format this firmware does not know.
    UnknownVersion(u16),
    /// The checksum does not match: a torn or damaged write.
    BadChecksum,
    /// The passphrase is not 8..=63 printable ASCII characters.
    BadPassphrase,
}

impl core::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IdentityError::Empty => f.write_str("identity sector erased (device not provisioned)"),
            IdentityError::Truncated => f.write_str("identity record truncated"),
            IdentityError::BadMagic => f.write_str("identity sector holds no identity record"),
            IdentityError::UnknownVersion(v) => write!(f, "identity record version {v} unknown"),
            IdentityError::BadChecksum => f.write_str("identity record checksum mismatch"),
            IdentityError::BadPassphrase => {
                f.write_str("setup passphrase must be 8 to 63 printable ASCII characters")
            }
        }
    }
}

impl core::error::Error for IdentityError {}

/// The setup access point's passphrase. Not printable, not cloneable, zeroed on drop.
pub struct SetupPassphrase {
    bytes: SecretBytes<MAX_LEN>,
}

impl SetupPassphrase {
    /// Checks `bytes` (8..=63 printable ASCII) and copies them.
    ///
    /// # Errors
    /// [`IdentityError::BadPassphrase`] if the rule is broken.
    pub fn new(bytes: &[u8]) -> Result<SetupPassphrase, IdentityError> {
        if !(MIN_LEN..=MAX_LEN).contains(&bytes.len())
            || !bytes.iter().all(|b| (0x20..=0x7E).contains(b))
        {
            return Err(IdentityError::BadPassphrase);
        }
        let bytes = SecretBytes::new(bytes).ok_or(IdentityError::BadPassphrase)?;
        Ok(SetupPassphrase { bytes })
    }

    /// The passphrase bytes. Whatever reads them must not log or keep them.
    pub fn expose_secret(&self) -> &[u8] {
        self.bytes.expose_secret()
    }
}

impl ZeroizeOnDrop for SetupPassphrase {}

/// Turns 16 random bytes into a passphrase a person can type from a label: 20 symbols from
/// [`ALPHABET`] (5 bits each, [`GENERATED_BITS`] in all) in four groups of five joined by `-`,
/// for example `k7m3p-x9qrt-4hwzc-b8nfd`. The caller supplies the randomness (the host's
/// OS generator in `cargo xtask provision-key`) and should wipe it.
pub fn generate(random: &[u8; 16]) -> SetupPassphrase {
    let mut text = [0u8; 23];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut source = random.iter();
    let mut out = 0;
    for symbol in 0..20 {
        if bits < 5 {
            acc = (acc << 8) | u32::from(*source.next().unwrap_or(&0));
            bits += 8;
        }
        bits -= 5;
        let index = ((acc >> bits) & 31) as usize;
        if symbol > 0 && symbol % 5 == 0 {
            text[out] = b'-';
            out += 1;
        }
        text[out] = ALPHABET[index];
        out += 1;
    }
    acc.zeroize();
    let passphrase = SetupPassphrase::new(&text[..out]);
    text.zeroize();
    // 23 printable characters always pass the check.
    passphrase.unwrap_or_else(|_| SetupPassphrase {
        bytes: SecretBytes::truncated(&[b'x'; MIN_LEN]),
    })
}

/// The record for `passphrase`, to write at the start of the identity sector.
pub fn encode(passphrase: &SetupPassphrase) -> [u8; RECORD_LEN] {
    let mut record = [0u8; RECORD_LEN];
    record[..4].copy_from_slice(&MAGIC);
    record[OFFSET_VERSION..OFFSET_VERSION + 2].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let text = passphrase.expose_secret();
    record[OFFSET_LEN..OFFSET_LEN + 2].copy_from_slice(&(text.len() as u16).to_le_bytes());
    record[OFFSET_TEXT..OFFSET_TEXT + text.len()].copy_from_slice(text);
    let crc = CRC.checksum(&record[..OFFSET_CRC]);
    record[OFFSET_CRC..].copy_from_slice(&crc.to_le_bytes());
    record
}

/// Reads the record at the start of `bytes` (the identity sector, or its first
/// [`RECORD_LEN`] bytes).
///
/// # Errors
/// Which defect the bytes have; see [`IdentityError`].
pub fn decode(bytes: &[u8]) -> Result<SetupPassphrase, IdentityError> {
    let record = bytes.get(..RECORD_LEN).ok_or(IdentityError::Truncated)?;
    if record.iter().all(|&b| b == 0xFF) {
        return Err(IdentityError::Empty);
    }
    if record[..4] != MAGIC {
        return Err(IdentityError::BadMagic);
    }
    let version = u16::from_le_bytes([record[OFFSET_VERSION], record[OFFSET_VERSION + 1]]);
    if version != FORMAT_VERSION {
        return Err(IdentityError::UnknownVersion(version));
    }
    let stored = u32::from_le_bytes([
        record[OFFSET_CRC],
        record[OFFSET_CRC + 1],
        record[OFFSET_CRC + 2],
        record[OFFSET_CRC + 3],
    ]);
    if CRC.checksum(&record[..OFFSET_CRC]) != stored {
        return Err(IdentityError::BadChecksum);
    }
    let len = usize::from(u16::from_le_bytes([
        record[OFFSET_LEN],
        record[OFFSET_LEN + 1],
    ]));
    let text = record
        .get(OFFSET_TEXT..OFFSET_TEXT + len)
        .filter(|_| len <= MAX_LEN)
        .ok_or(IdentityError::BadPassphrase)?;
    // The padding is zero: a valid record has exactly one form.
    if record[OFFSET_TEXT + len..OFFSET_CRC].iter().any(|&b| b != 0) {
        return Err(IdentityError::BadPassphrase);
    }
    SetupPassphrase::new(text)
}

/// The setup access point's name: `ramkey-` and the last three bytes of the soft AP's MAC
/// as six uppercase hex digits (`ramkey-A1B2C3`).
pub fn ap_ssid(mac: [u8; 6]) -> heapless::String<16> {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut name = heapless::String::new();
    let _ = name.push_str("ramkey-");
    for byte in &mac[3..] {
        let _ = name.push(char::from(DIGITS[usize::from(byte >> 4)]));
        let _ = name.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    name
}

/// Most bytes [`wifi_qr_text`] writes: the frame plus both fields fully escaped.
pub const WIFI_QR_MAX: usize = 32 + 2 * 32 + 2 * MAX_LEN;

/// The standard WiFi QR payload for the setup AP: `WIFI:T:WPA;S:<ssid>;P:<passphrase>;;`,
/// with `\ ; , : "` escaped by a backslash. Phones join the network when they scan it.
pub fn wifi_qr_text(ssid: &str, passphrase: &SetupPassphrase) -> heapless::String<WIFI_QR_MAX> {
    fn push_escaped(out: &mut heapless::String<WIFI_QR_MAX>, text: &[u8]) {
        for &b in text {
            if matches!(b, b'\\' | b';' | b',' | b':' | b'"') {
                let _ = out.push('\\');
            }
            let _ = out.push(char::from(b));
        }
    }
    let mut out = heapless::String::new();
    let _ = out.push_str("WIFI:T:WPA;S:");
    push_escaped(&mut out, &ssid.as_bytes()[..ssid.len().min(32)]);
    let _ = out.push_str(";P:");
    push_escaped(&mut out, passphrase.expose_secret());
    let _ = out.push_str(";;");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn pass(text: &str) -> SetupPassphrase {
        SetupPassphrase::new(text.as_bytes()).expect("valid")
    }

    #[test]
    fn round_trip() {
        let record = encode(&pass("k7m3p-x9qrt-4hwzc-b8nfd"));
        let decoded = decode(&record).expect("valid record");
        assert_eq!(decoded.expose_secret(), b"k7m3p-x9qrt-4hwzc-b8nfd");
    }

    #[test]
    fn erased_sector_is_empty() {
        assert_eq!(decode(&[0xFF; 4096]).err(), Some(IdentityError::Empty));
        assert_eq!(decode(&[0xFF; 8]).err(), Some(IdentityError::Truncated));
    }

    #[test]
    fn every_defect_is_named() {
        let good = encode(&pass("correct horse"));
        let mut bad = good;
        bad[0] = b'x';
        assert_eq!(decode(&bad).err(), Some(IdentityError::BadMagic));
        let mut bad = good;
        bad[OFFSET_VERSION] = 9;
        assert_eq!(decode(&bad).err(), Some(IdentityError::UnknownVersion(9)));
        let mut bad = good;
        bad[OFFSET_TEXT] ^= 1;
        assert_eq!(decode(&bad).err(), Some(IdentityError::BadChecksum));
        // A length that lies, with a checksum that matches the lie.
        let mut bad = good;
        bad[OFFSET_LEN] = 70;
        let crc = CRC.checksum(&bad[..OFFSET_CRC]);
        bad[OFFSET_CRC..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&bad).err(), Some(IdentityError::BadPassphrase));
        let mut bad = good;
        bad[OFFSET_LEN] = 3;
        let crc = CRC.checksum(&bad[..OFFSET_CRC]);
        bad[OFFSET_CRC..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&bad).err(), Some(IdentityError::BadPassphrase));
    }

    #[test]
    fn torn_writes_never_decode() {
        // Flash writes turn 1 bits into 0 bits in order: a write cut after n bytes leaves the
        // rest erased. Every such prefix must be refused.
        let good = encode(&pass("k7m3p-x9qrt-4hwzc-b8nfd"));
        for n in 0..RECORD_LEN {
            let mut torn = [0xFFu8; RECORD_LEN];
            torn[..n].copy_from_slice(&good[..n]);
            assert!(decode(&torn).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn passphrase_rules() {
        assert!(SetupPassphrase::new(b"1234567").is_err());
        assert!(SetupPassphrase::new(&[b'a'; 64]).is_err());
        assert!(SetupPassphrase::new(b"tab\there!").is_err());
        assert!(SetupPassphrase::new(&[b'a'; 63]).is_ok());
    }

    #[test]
    fn generated_passphrases_follow_the_pattern() {
        let p = generate(&[0u8; 16]);
        assert_eq!(p.expose_secret(), b"aaaaa-aaaaa-aaaaa-aaaaa");
        let p = generate(&[0xFF; 16]);
        assert_eq!(p.expose_secret(), b"99999-99999-99999-99999");
        // 0b00001_00010_00011_... : symbols 1, 2, 3, ... of the alphabet.
        let p = generate(&[
            0x08, 0x86, 0x42, 0x98, 0xE8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(&p.expose_secret()[..9], b"bcdef-ghi");
    }

    #[test]
    fn ssid_from_mac() {
        assert_eq!(
            ap_ssid([0x5E, 0xCF, 0x7F, 0xA1, 0xB2, 0x0C]).as_str(),
            "ramkey-A1B20C"
        );
    }

    #[test]
    fn qr_text_escapes_specials() {
        let text = wifi_qr_text("ramkey-A1B2C3", &pass("a;b,c:d\\e\"f"));
        assert_eq!(
            text.as_str(),
            "WIFI:T:WPA;S:ramkey-A1B2C3;P:a\\;b\\,c\\:d\\\\e\\\"f;;"
        );
        let worst = wifi_qr_text(&"\"".repeat(32), &pass(&";".repeat(63)));
        assert_eq!(worst.len(), 13 + 64 + 3 + 126 + 2);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn any_valid_passphrase_round_trips(text in "[ -~]{8,63}") {
            let record = encode(&pass(&text));
            let decoded = decode(&record).expect("valid");
            prop_assert_eq!(decoded.expose_secret(), text.as_bytes());
        }

        #[test]
        fn generated_are_distinct_and_valid(a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            let (pa, pb) = (generate(&a), generate(&b));
            prop_assert_eq!(pa.expose_secret().len(), 23);
            prop_assert!(pa.expose_secret().iter().all(|c| ALPHABET.contains(c) || *c == b'-'));
            // 100 of the 128 bits are used: inputs equal in their first 100 bits collide.
            let used = |r: &[u8; 16]| -> Vec<u8> { let mut v = r[..12].to_vec(); v.push(r[12] & 0xF0); v };
            prop_assert_eq!(used(&a) == used(&b), pa.expose_secret() == pb.expose_secret());
        }
    }
}
