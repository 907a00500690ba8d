//! The broker settings: where the garden sensor reports, kept in RTC memory like the WiFi
//! record and under the same rules.
//!
//! [`BrokerSettings`] holds the broker's host (a DNS name or a dotted IPv4 address), its port,
//! the MQTT user name, the optional password (a [`MqttPassword`]: not printable, zeroed on
//! drop) and the report period. Setup validates them ([`BrokerSettings::new`]) and stores
//! them in [`crate::rtc_layout::SETTINGS`] before the WiFi record, so a device whose WiFi
//! record is valid always had its settings written first. They follow the WiFi record's
//! trust policy: wiped with it at an untrusted reset, never copied to flash.
//!
//! # Record (37 words, 148 bytes)
//!
//! | Offset | Size | Field |
//! |--------|------|-------|
//! | 0   | 4  | magic, the bytes `rkBS` ([`MAGIC`]); written last |
//! | 4   | 2  | format version, 1 |
//! | 6   | 2  | payload length, 136 |
//! | 8   | 4  | CRC-32/ISO-HDLC of bytes 0..8 then of the payload (12..148) |
//! | 12  | 1  | host length, 1..=32 |
//! | 13  | 1  | user name length, 0..=32 (0: no user name) |
//! | 14  | 1  | password length, 0..=64 |
//! | 15  | 1  | flags: bit 0 a password is set; other bits zero |
//! | 16  | 2  | port, 1..=65535 |
//! | 18  | 2  | report period in seconds, [`PERIOD_MIN_S`]..=[`PERIOD_MAX_S`] |
//! | 20  | 32 | host; zero after its length |
//! | 52  | 32 | user name; zero after its length |
//! | 84  | 64 | password; zero after its length |
//!
//! Guarantees: [`load`] accepts only what [`store`] writes for valid settings (every field
//! validated again, padding zero, CRC), so noise, a version 1 layout's never-written words or
//! a torn store read as [`SettingsError::Empty`] or [`SettingsError::Corrupt`], never as a
//! broker. The staging buffers that held the password are zeroed.
//!
//! Must never: touch words outside [`crate::rtc_layout::SETTINGS`], or print the password.

#![forbid(unsafe_code)]

use crc::{CRC_32_ISO_HDLC, Crc, NoTable};
use zeroize::Zeroize;

use crate::mqtt::{MqttPassword, PASSWORD_MAX_LEN};
use crate::rtc_layout::SETTINGS;
use crate::rtc_record::{RtcError, RtcMemory};

/// Longest broker host name.
pub const HOST_MAX_LEN: usize = 32;
/// Longest MQTT user name.
pub const USER_MAX_LEN: usize = 32;
/// Shortest report period (1 minute).
pub const PERIOD_MIN_S: u16 = 60;
/// Longest report period (1 hour, the back-off cap).
pub const PERIOD_MAX_S: u16 = 3600;
/// The report period setup proposes (10 minutes).
pub const PERIOD_DEFAULT_S: u16 = 600;
/// The MQTT port setup proposes.
pub const PORT_DEFAULT: u16 = 1883;
/// The record's first word.
pub const MAGIC: u32 = u32::from_le_bytes(*b"rkBS");
/// Words of the record.
pub const RECORD_WORDS: usize = 37;

const VERSION: u16 = 1;
const BYTES: usize = RECORD_WORDS * 4;
const HEADER: usize = 12;
const PAYLOAD_LEN: u16 = (BYTES - HEADER) as u16;
const HOST_AT: usize = 20;
const USER_AT: usize = HOST_AT + HOST_MAX_LEN;
const PASSWORD_AT: usize = USER_AT + USER_MAX_LEN;
const FLAG_PASSWORD: u8 = 1;

const _: () = assert!(PASSWORD_AT + PASSWORD_MAX_LEN == BYTES);
const _: () = assert!(SETTINGS.end - SETTINGS.start == RECORD_WORDS);

const CRC32: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISO_HDLC);

/// Why settings are not valid (setup's message to the person, or why a record is ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsError {
    /// The host is empty, too long, or not a DNS name or dotted IPv4 address.
    BadHost,
    /// The port is 0 or not a number.
    BadPort,
    /// The user name is too long or has characters outside printable ASCII.
    BadUser,
    /// The password is too long, or given without a user name (MQTT 3.1.1, 3.1.2.9).
    BadPassword,
    /// The period is outside one minute to one hour.
    BadPeriod,
    /// No record (never written since power-on, wiped, or a store cut short).
    Empty,
    /// A record whose header, checksum or fields do not validate.
    Corrupt,
    /// The RTC memory access failed.
    Rtc(RtcError),
}

impl core::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SettingsError::BadHost => {
                "the broker must be a host name or an IPv4 address (at most 32 characters)"
            }
            SettingsError::BadPort => "the port must be a number from 1 to 65535",
            SettingsError::BadUser => {
                "the user name may have at most 32 printable characters, no spaces"
            }
            SettingsError::BadPassword => {
                "the password may have at most 64 bytes and needs a user name"
            }
            SettingsError::BadPeriod => "the report period must be 1 to 60 minutes",
            SettingsError::Empty => "no broker settings",
            SettingsError::Corrupt => "broker settings corrupt",
            SettingsError::Rtc(_) => "RTC memory access failed",
        })
    }
}

impl From<RtcError> for SettingsError {
    fn from(e: RtcError) -> Self {
        SettingsError::Rtc(e)
    }
}

/// A broker host: a DNS name (letters, digits, hyphens, dots; labels of 1 to 63, no hyphen at
/// either end) or a dotted IPv4 address.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Host {
    bytes: [u8; HOST_MAX_LEN],
    len: u8,
}

impl Host {
    /// `name` if it is a valid host.
    pub fn new(name: &[u8]) -> Result<Host, SettingsError> {
        if name.is_empty() || name.len() > HOST_MAX_LEN {
            return Err(SettingsError::BadHost);
        }
        let labels_ok = name.split(|&b| b == b'.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-')
        });
        let all_digits = name.iter().all(|&b| b.is_ascii_digit() || b == b'.');
        if !labels_ok || (all_digits && dotted(name).is_none()) {
            return Err(SettingsError::BadHost);
        }
        let mut bytes = [0; HOST_MAX_LEN];
        bytes[..name.len()].copy_from_slice(name);
        Ok(Host {
            bytes,
            len: name.len() as u8,
        })
    }

    /// The name as given.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The address, when the host is a dotted IPv4 address (no lookup needed).
    pub fn ipv4(&self) -> Option<[u8; 4]> {
        dotted(self.as_bytes())
    }
}

impl core::fmt::Debug for Host {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}",
            core::str::from_utf8(self.as_bytes()).unwrap_or("<host>")
        )
    }
}

/// A dotted IPv4 address, if `name` is one (four decimal parts 0..=255, no leading zeros).
pub fn dotted(name: &[u8]) -> Option<[u8; 4]> {
    let mut ip = [0u8; 4];
    let mut parts = name.split(|&b| b == b'.');
    for byte in ip.iter_mut() {
        let part = parts.next()?;
        if part.is_empty()
            || part.len() > 3
            || (part.len() > 1 && part[0] == b'0')
            || !part.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let value = part.iter().fold(0u16, |v, &d| v * 10 + u16::from(d - b'0'));
        *byte = u8::try_from(value).ok()?;
    }
    parts.next().is_none().then_some(ip)
}

/// Where and how often the sensor reports.
pub struct BrokerSettings {
    /// The broker.
    pub host: Host,
    /// Its TCP port.
    pub port: u16,
    user: heapless::Vec<u8, USER_MAX_LEN>,
    password: Option<MqttPassword>,
    /// Seconds between two reports.
    pub period_s: u16,
}

impl core::fmt::Debug for BrokerSettings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BrokerSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &core::str::from_utf8(&self.user).unwrap_or("?"))
            .field(
                "password",
                &if self.password.is_some() {
                    "<redacted>"
                } else {
                    "none"
                },
            )
            .field("period_s", &self.period_s)
            .finish()
    }
}

impl BrokerSettings {
    /// Validated settings; the password (if any) is copied into a [`MqttPassword`], the
    /// caller wipes its own buffer.
    pub fn new(
        host: &[u8],
        port: u16,
        user: &[u8],
        password: Option<&[u8]>,
        period_s: u16,
    ) -> Result<BrokerSettings, SettingsError> {
        let host = Host::new(host)?;
        if port == 0 {
            return Err(SettingsError::BadPort);
        }
        if user.len() > USER_MAX_LEN || !user.iter().all(|b| (0x21..0x7F).contains(b)) {
            return Err(SettingsError::BadUser);
        }
        let password = match password {
            None => None,
            Some(p) if user.is_empty() || p.len() > PASSWORD_MAX_LEN => {
                return Err(SettingsError::BadPassword);
            }
            Some(p) => Some(MqttPassword::new(p).ok_or(SettingsError::BadPassword)?),
        };
        if !(PERIOD_MIN_S..=PERIOD_MAX_S).contains(&period_s) {
            return Err(SettingsError::BadPeriod);
        }
        let mut kept = heapless::Vec::new();
        let _ = kept.extend_from_slice(user);
        Ok(BrokerSettings {
            host,
            port,
            user: kept,
            password,
            period_s,
        })
    }

    /// The user name, if one is set.
    pub fn user(&self) -> Option<&[u8]> {
        (!self.user.is_empty()).then_some(self.user.as_slice())
    }

    /// The password, if one is set.
    pub fn password(&self) -> Option<&MqttPassword> {
        self.password.as_ref()
    }

    fn encode(&self, bytes: &mut [u8; BYTES]) {
        bytes.fill(0);
        bytes[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[4..6].copy_from_slice(&VERSION.to_le_bytes());
        bytes[6..8].copy_from_slice(&PAYLOAD_LEN.to_le_bytes());
        let host = self.host.as_bytes();
        let password = self
            .password
            .as_ref()
            .map_or(&[][..], |p| p.expose_secret());
        bytes[12] = host.len() as u8;
        bytes[13] = self.user.len() as u8;
        bytes[14] = password.len() as u8;
        bytes[15] = if self.password.is_some() {
            FLAG_PASSWORD
        } else {
            0
        };
        bytes[16..18].copy_from_slice(&self.port.to_le_bytes());
        bytes[18..20].copy_from_slice(&self.period_s.to_le_bytes());
        bytes[HOST_AT..HOST_AT + host.len()].copy_from_slice(host);
        bytes[USER_AT..USER_AT + self.user.len()].copy_from_slice(&self.user);
        bytes[PASSWORD_AT..PASSWORD_AT + password.len()].copy_from_slice(password);
        let crc = checksum(bytes);
        bytes[8..12].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(bytes: &[u8; BYTES]) -> Result<BrokerSettings, SettingsError> {
        if bytes[0..4] != MAGIC.to_le_bytes() {
            return Err(SettingsError::Empty);
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        if u16_at(4) != VERSION
            || u16_at(6) != PAYLOAD_LEN
            || bytes[8..12] != checksum(bytes).to_le_bytes()
        {
            return Err(SettingsError::Corrupt);
        }
        let (host_len, user_len, pass_len, flags) = (
            usize::from(bytes[12]),
            usize::from(bytes[13]),
            usize::from(bytes[14]),
            bytes[15],
        );
        let padded = |at: usize, len: usize, max: usize| {
            len <= max && bytes[at + len..at + max].iter().all(|&b| b == 0)
        };
        if flags & !FLAG_PASSWORD != 0
            || (flags & FLAG_PASSWORD == 0 && pass_len != 0)
            || !padded(HOST_AT, host_len, HOST_MAX_LEN)
            || !padded(USER_AT, user_len, USER_MAX_LEN)
            || !padded(PASSWORD_AT, pass_len, PASSWORD_MAX_LEN)
        {
            return Err(SettingsError::Corrupt);
        }
        let password =
            (flags & FLAG_PASSWORD != 0).then(|| &bytes[PASSWORD_AT..PASSWORD_AT + pass_len]);
        BrokerSettings::new(
            &bytes[HOST_AT..HOST_AT + host_len],
            u16_at(16),
            &bytes[USER_AT..USER_AT + user_len],
            password,
            u16_at(18),
        )
        .map_err(|_| SettingsError::Corrupt)
    }

    /// The CRC-32 of the record these settings make: what the report state is bound to, so
    /// a cached address or a back-off count never outlives the broker it was for.
    pub fn fingerprint(&self) -> u32 {
        let mut bytes = [0u8; BYTES];
        self.encode(&mut bytes);
        let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        bytes.zeroize();
        crc
    }
}

fn checksum(bytes: &[u8; BYTES]) -> u32 {
    let mut digest = CRC32.digest();
    digest.update(&bytes[..8]);
    digest.update(&bytes[HEADER..]);
    digest.finalize()
}

fn to_words(bytes: &[u8; BYTES], words: &mut [u32; RECORD_WORDS]) {
    for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
}

/// The settings in RTC memory, if a valid record is there.
pub fn load(mem: &impl RtcMemory) -> Result<BrokerSettings, SettingsError> {
    let mut words = [0u32; RECORD_WORDS];
    let read = mem.read_words(SETTINGS.start, &mut words);
    let mut bytes = [0u8; BYTES];
    for (chunk, w) in bytes.chunks_exact_mut(4).zip(&words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    words.zeroize();
    let result = read
        .map_err(SettingsError::Rtc)
        .and_then(|()| BrokerSettings::decode(&bytes));
    bytes.zeroize();
    result
}

/// Stores `settings`: the magic word zeroed, the body, the magic word last, then read back.
/// A reset at any point leaves no record or the new one (or, before the first write, the old).
pub fn store(mem: &mut impl RtcMemory, settings: &BrokerSettings) -> Result<(), SettingsError> {
    let mut bytes = [0u8; BYTES];
    settings.encode(&mut bytes);
    let mut words = [0u32; RECORD_WORDS];
    to_words(&bytes, &mut words);
    bytes.zeroize();
    let written = mem
        .write_words(SETTINGS.start, &[0])
        .and_then(|()| mem.write_words(SETTINGS.start + 1, &words[1..]))
        .and_then(|()| mem.write_words(SETTINGS.start, &words[..1]));
    let mut check = [0u32; RECORD_WORDS];
    let read = written.and_then(|()| mem.read_words(SETTINGS.start, &mut check));
    let same = check == words;
    check.zeroize();
    words.zeroize();
    read?;
    if same {
        Ok(())
    } else {
        Err(SettingsError::Corrupt)
    }
}

/// Wipes the record: the magic word first, then every other word.
pub fn wipe(mem: &mut impl RtcMemory) -> Result<(), RtcError> {
    mem.write_words(SETTINGS.start, &[0])?;
    mem.write_words(SETTINGS.start + 1, &[0; RECORD_WORDS - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc_record::{CutRtc, RamRtc};
    use proptest::prelude::*;

    fn home() -> BrokerSettings {
        BrokerSettings::new(b"broker.lan", 1883, b"garden", Some(b"s3cret pw"), 600).expect("valid")
    }

    #[test]
    fn validation_refuses_what_setup_must_refuse() {
        assert!(Host::new(b"broker.lan").is_ok());
        assert_eq!(
            Host::new(b"10.0.0.7").map(|h| h.ipv4()),
            Ok(Some([10, 0, 0, 7]))
        );
        assert_eq!(Host::new(b"mqtt").map(|h| h.ipv4()), Ok(None));
        for bad in [
            &b""[..],
            b"a b",
            b"-x.lan",
            b"x-.lan",
            b"x..lan",
            b"256.1.1.1",
            b"1.2.3",
            b"01.2.3.4",
            b"host_name",
            b"broker.example.averyveryverylongname",
        ] {
            assert_eq!(Host::new(bad), Err(SettingsError::BadHost), "{bad:?}");
        }
        let new = |port, user: &[u8], password: Option<&[u8]>, period| {
            BrokerSettings::new(b"b.lan", port, user, password, period).map(|_| ())
        };
        assert_eq!(new(0, b"u", None, 600), Err(SettingsError::BadPort));
        assert_eq!(new(1, b"a b", None, 600), Err(SettingsError::BadUser));
        assert_eq!(new(1, &[b'u'; 33], None, 600), Err(SettingsError::BadUser));
        assert_eq!(
            new(1, b"", Some(b"pw"), 600),
            Err(SettingsError::BadPassword)
        );
        assert_eq!(
            new(1, b"u", Some(&[b'p'; 65]), 600),
            Err(SettingsError::BadPassword)
        );
        assert_eq!(new(1, b"u", None, 59), Err(SettingsError::BadPeriod));
        assert_eq!(new(1, b"u", None, 3601), Err(SettingsError::BadPeriod));
        assert_eq!(new(65535, b"", None, 60), Ok(()));
        assert_eq!(
            new(1, b"u", Some(b""), 3600),
            Ok(()),
            "an empty password is a password"
        );
    }

    #[test]
    fn a_stored_record_loads_back_and_stays_in_its_region() {
        let mut mem = RamRtc::filled(0xA5A5_A5A5);
        assert_eq!(load(&mem).map(|_| ()), Err(SettingsError::Empty), "noise");
        store(&mut mem, &home()).expect("stored");
        for (i, w) in mem.words.iter().enumerate() {
            if !SETTINGS.contains(&i) {
                assert_eq!(*w, 0xA5A5_A5A5, "word {i} touched");
            }
        }
        let back = load(&mem).expect("valid");
        assert_eq!(back.host.as_bytes(), b"broker.lan");
        assert_eq!((back.port, back.period_s), (1883, 600));
        assert_eq!(back.user(), Some(&b"garden"[..]));
        assert_eq!(
            back.password().map(|p| p.expose_secret()),
            Some(&b"s3cret pw"[..])
        );
        assert_eq!(back.fingerprint(), home().fingerprint());
        let debug = std::format!("{back:?}");
        assert!(
            !debug.contains("s3cret") && debug.contains("redacted"),
            "{debug}"
        );
        wipe(&mut mem).expect("wiped");
        assert_eq!(load(&mem).map(|_| ()), Err(SettingsError::Empty));
        assert!(
            mem.words[SETTINGS].iter().all(|&w| w == 0),
            "no password left"
        );
    }

    #[test]
    fn every_torn_store_leaves_nothing_or_the_new_record() {
        let mut old = RamRtc::filled(0);
        let first = BrokerSettings::new(b"old.lan", 1, b"", None, 60).expect("valid");
        store(&mut old, &first).expect("stored");
        for budget in 0..=RECORD_WORDS + 1 {
            let mut cut = CutRtc {
                mem: old.clone(),
                budget,
                writes: 0,
            };
            let _ = store(&mut cut, &home());
            match load(&cut.mem) {
                Ok(s) if s.fingerprint() == home().fingerprint() => {}
                Ok(s) if budget == 0 && s.fingerprint() == first.fingerprint() => {}
                Err(SettingsError::Empty) => {}
                other => panic!("budget {budget}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn any_words_load_as_settings_store_would_write_or_not_at_all(
            words in proptest::collection::vec(any::<u32>(), RECORD_WORDS),
            magic in any::<bool>(),
        ) {
            let mut mem = RamRtc::filled(0);
            mem.words[SETTINGS].copy_from_slice(&words);
            if magic {
                mem.words[SETTINGS.start] = MAGIC;
            }
            if let Ok(s) = load(&mem) {
                let mut again = RamRtc::filled(0);
                store(&mut again, &s).expect("stored");
                prop_assert_eq!(&again.words[SETTINGS], &mem.words[SETTINGS]);
            }
        }

        #[test]
        fn one_flipped_bit_is_never_a_different_broker(word in 0..RECORD_WORDS, bit in 0..32u32) {
            let mut mem = RamRtc::filled(0);
            store(&mut mem, &home()).expect("stored");
            mem.words[SETTINGS.start + word] ^= 1 << bit;
            prop_assert!(load(&mem).is_err());
        }
    }
}
