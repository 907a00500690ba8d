//! RTC credential record: what the device needs after a deep-sleep wake, kept in RTC memory.
//!
//! The record holds the SSID, the network key (the 32-byte PSK, or "open"; never the
//! passphrase), and a fast-reconnect cache (BSSID, channel, and the last DHCP lease or a
//! static IP configuration). It lives in the SDK's RTC user area (blocks 64..191, 128 words),
//! which survives deep sleep and resets but not a loss of power, and is never copied to flash.
//!
//! Guarantees:
//! - **Atomic updates.** Two slots, A and B, each with a sequence number. [`store`] writes the
//!   slot that does not hold the current record, in this order: its magic word is zeroed, the
//!   other words are written, the magic word is written last. A reset at any point (after any
//!   32-bit word) leaves the old record or the new one readable, never a mix, and without
//!   relying on the checksum to notice half-written data. [`wipe`] is atomic the same way.
//! - **Validated reads.** [`load`] checks magic, version, payload length, CRC-32, every
//!   field's range and that every unused byte is zero; any failure means "no credentials"
//!   ([`LoadError`]), never a panic. A valid slot is exactly what [`store`] would write for the
//!   credentials it decodes to (the encoding is canonical).
//! - **Sequence numbers wrap safely**: the newer of two slots is the one whose sequence is
//!   ahead in serial-number arithmetic (RFC 1982), so 0 follows `u32::MAX`.
//! - **Secrets stay contained**: the staging buffers that held the PSK are zeroed after use;
//!   the PSK is a [`Psk`] (not printable, zeroed on drop).
//! - Only 32-bit aligned word accesses through [`RtcMemory`], the only way the hardware allows.
//!
//! Must never: touch words outside the two slots (the rest of the user area belongs to other
//! firmware state, see [`FREE_WORDS`]), store a passphrase, or use the SDK directly (the
//! firmware implements [`RtcMemory`] over `system_rtc_mem_read`/`system_rtc_mem_write` with
//! block = [`RTC_USER_FIRST_BLOCK`] + word offset).
//!
//! # Placement in the RTC user area (128 words)
//!
//! | Words    | SDK blocks | Bytes | Use                                              |
//! |----------|------------|-------|--------------------------------------------------|
//! | 0..32    | 64..96     | 128   | slot A                                           |
//! | 32..64   | 96..128    | 128   | slot B                                           |
//! | 64..128  | 128..192   | 256   | free for other firmware state ([`FREE_WORDS`])  |
//!
//! # Slot layout (format version 1)
//!
//! Bytes within a slot; word *i* holds bytes 4*i*..4*i*+4, little-endian (the lx106 is
//! little-endian, so the bytes in RAM are exactly this table). Multi-byte integers are
//! little-endian; IPv4 addresses are in network order (as written, `192.168.1.2` is
//! `c0 a8 01 02`).
//!
//! | Offset | Size | Field                                                          |
//! |--------|------|----------------------------------------------------------------|
//! | 0      | 4    | magic, the bytes `rkCR` ([`MAGIC`]); written last              |
//! | 4      | 2    | format version, 1 ([`FORMAT_VERSION`])                         |
//! | 6      | 2    | payload length in bytes, 92 ([`PAYLOAD_LEN`])                  |
//! | 8      | 4    | sequence number (wraps)                                        |
//! | 12     | 4    | CRC-32/ISO-HDLC of bytes 0..12 then of the payload (16..108)   |
//! | 16     | 1    | SSID length, 0..=32                                            |
//! | 17     | 1    | network key kind: 0 open, 1 PSK                                |
//! | 18     | 1    | reconnect cache: 0 absent, 1 present                           |
//! | 19     | 1    | IP configuration: 0 none, 1 DHCP lease, 2 static               |
//! | 20     | 32   | SSID bytes; zero after the SSID length                         |
//! | 52     | 32   | PSK; zero for an open network                                  |
//! | 84     | 6    | BSSID; zero without cache                                      |
//! | 90     | 1    | channel 1..=14; zero without cache                             |
//! | 91     | 1    | reserved, zero                                                 |
//! | 92     | 4    | IPv4 address; zero without IP configuration                    |
//! | 96     | 4    | netmask; zero without IP configuration                         |
//! | 100    | 4    | gateway; zero without IP configuration                         |
//! | 104    | 4    | DNS server; zero without IP configuration                      |
//! | 108    | 20   | unused, zero (not covered by the CRC, checked separately)      |

#![forbid(unsafe_code)]

use core::net::Ipv4Addr;
use core::ops::Range;

use crc::{CRC_32_ISO_HDLC, Crc, NoTable};
use zeroize::Zeroize;

use crate::secret::{PSK_LEN, Psk};

/// 32-bit words in the RTC user area (512 bytes).
pub const USER_WORDS: usize = 128;

/// SDK block number of user word 0: `system_rtc_mem_read(RTC_USER_FIRST_BLOCK + word, ..)`.
pub const RTC_USER_FIRST_BLOCK: u8 = 64;

/// Words in one slot.
pub const SLOT_WORDS: usize = 32;

/// First word of slot A.
pub const SLOT_A: usize = 0;

/// First word of slot B.
pub const SLOT_B: usize = SLOT_A + SLOT_WORDS;

/// User words this module never reads or writes: 64 words (blocks 128..191) for other state.
pub const FREE_WORDS: Range<usize> = SLOT_B + SLOT_WORDS..USER_WORDS;

/// First word of every valid slot: the bytes `rkCR`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"rkCR");

/// The only format version this firmware reads and writes.
pub const FORMAT_VERSION: u16 = 1;

/// Bytes of payload after the 16-byte header in format version 1.
pub const PAYLOAD_LEN: u16 = 92;

/// Longest SSID: 32 arbitrary bytes.
pub const SSID_MAX_LEN: usize = 32;

/// Highest 2.4 GHz channel number (Japan).
pub const MAX_CHANNEL: u8 = 14;

const SLOT_BYTES: usize = SLOT_WORDS * 4;
const HEADER_LEN: usize = 16;
const RECORD_END: usize = HEADER_LEN + PAYLOAD_LEN as usize;

const OFFSET_VERSION: usize = 4;
const OFFSET_LENGTH: usize = 6;
const OFFSET_SEQUENCE: usize = 8;
const OFFSET_CRC: usize = 12;
const OFFSET_SSID_LEN: usize = 16;
const OFFSET_KEY_KIND: usize = 17;
const OFFSET_CACHE_FLAG: usize = 18;
const OFFSET_IP_KIND: usize = 19;
const OFFSET_SSID: usize = 20;
const OFFSET_PSK: usize = 52;
const OFFSET_BSSID: usize = 84;
const OFFSET_CHANNEL: usize = 90;
const OFFSET_RESERVED: usize = 91;
const OFFSET_IP: usize = 92;
const OFFSET_NETMASK: usize = 96;
const OFFSET_GATEWAY: usize = 100;
const OFFSET_DNS: usize = 104;

const KEY_OPEN: u8 = 0;
const KEY_PSK: u8 = 1;
const IP_NONE: u8 = 0;
const IP_DHCP_LEASE: u8 = 1;
const IP_STATIC: u8 = 2;

// The layout must fit its slot, both slots plus at least 16 free words the user area.
const _: () = assert!(OFFSET_DNS + 4 == RECORD_END && RECORD_END <= SLOT_BYTES);
const _: () = assert!(OFFSET_PSK + PSK_LEN == OFFSET_BSSID);
const _: () = assert!(FREE_WORDS.start <= USER_WORDS - 16);

/// Bitwise CRC: a 1 KiB table would sit in DRAM (`.rodata` must stay there on the lx106),
/// and 104 bytes per check do not need the speed.
const CRC32: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISO_HDLC);

/// The 128 words of the RTC user area, as 32-bit aligned words only.
///
/// `word_offset` counts words from the start of the user area (block 64); an access must lie
/// within `0..USER_WORDS`. The firmware implements this over the SDK; tests over RAM.
pub trait RtcMemory {
    /// Reads `out.len()` words starting at `word_offset`.
    ///
    /// # Errors
    /// [`RtcError`] if the range leaves the user area or the hardware refuses.
    fn read_words(&self, word_offset: usize, out: &mut [u32]) -> Result<(), RtcError>;

    /// Writes `data` starting at `word_offset`, one word after another.
    ///
    /// # Errors
    /// [`RtcError`] if the range leaves the user area or the hardware refuses; words before
    /// the failing one may have been written.
    fn write_words(&mut self, word_offset: usize, data: &[u32]) -> Result<(), RtcError>;
}

/// A failed RTC memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcError {
    /// The words asked for are not all inside the user area.
    OutOfRange,
    /// The SDK refused the access (`system_rtc_mem_read`/`_write` returned false).
    Refused,
}

impl core::fmt::Display for RtcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RtcError::OutOfRange => "RTC access outside the user area",
            RtcError::Refused => "RTC memory access refused by the SDK",
        })
    }
}

impl core::error::Error for RtcError {}

/// RTC user memory simulated in RAM, for host tests, fuzzing and emulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RamRtc {
    /// The 128 user words.
    pub words: [u32; USER_WORDS],
}

impl RamRtc {
    /// User memory with every word set to `fill` (RTC memory holds noise after power-on).
    pub const fn filled(fill: u32) -> RamRtc {
        RamRtc {
            words: [fill; USER_WORDS],
        }
    }
}

impl RtcMemory for RamRtc {
    fn read_words(&self, word_offset: usize, out: &mut [u32]) -> Result<(), RtcError> {
        let end = word_offset
            .checked_add(out.len())
            .ok_or(RtcError::OutOfRange)?;
        out.copy_from_slice(
            self.words
                .get(word_offset..end)
                .ok_or(RtcError::OutOfRange)?,
        );
        Ok(())
    }

    fn write_words(&mut self, word_offset: usize, data: &[u32]) -> Result<(), RtcError> {
        let end = word_offset
            .checked_add(data.len())
            .ok_or(RtcError::OutOfRange)?;
        self.words
            .get_mut(word_offset..end)
            .ok_or(RtcError::OutOfRange)?
            .copy_from_slice(data);
        Ok(())
    }
}

/// A network name: 0 to 32 arbitrary bytes (not necessarily UTF-8).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ssid {
    bytes: [u8; SSID_MAX_LEN],
    len: u8,
}

/// An SSID longer than 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsidTooLong;

impl core::fmt::Display for SsidTooLong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SSID longer than 32 bytes")
    }
}

impl core::error::Error for SsidTooLong {}

impl Ssid {
    /// The SSID with these bytes.
    ///
    /// # Errors
    /// [`SsidTooLong`] for more than 32 bytes.
    pub fn new(bytes: &[u8]) -> Result<Ssid, SsidTooLong> {
        let mut ssid = Ssid {
            bytes: [0; SSID_MAX_LEN],
            len: 0,
        };
        ssid.bytes
            .get_mut(..bytes.len())
            .ok_or(SsidTooLong)?
            .copy_from_slice(bytes);
        // At most 32 after the check above.
        ssid.len = bytes.len() as u8;
        Ok(ssid)
    }

    /// The SSID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Number of bytes, 0..=32.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the SSID has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl core::fmt::Debug for Ssid {
    /// Printable ASCII as is, other bytes as `\xNN`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ssid(\"")?;
        for &b in self.as_bytes() {
            if (0x20..0x7F).contains(&b) && b != b'"' && b != b'\\' {
                core::fmt::Write::write_char(f, char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\")")
    }
}

/// How the device authenticates to the network.
#[derive(Clone, PartialEq, Eq)]
pub enum NetworkKey {
    /// An open network: no key.
    Open,
    /// WPA/WPA2-Personal with this pre-shared key.
    Psk(Psk),
}

impl core::fmt::Debug for NetworkKey {
    /// Never prints the key.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetworkKey::Open => f.write_str("Open"),
            NetworkKey::Psk(_) => f.write_str("Psk(<redacted>)"),
        }
    }
}

/// What lets the device skip the scan after a wake: the access point it last joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectCache {
    /// The access point's MAC address.
    pub bssid: [u8; 6],
    /// Its channel, 1..=14.
    pub channel: u8,
}

/// IPv4 settings: address, netmask, gateway, DNS server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Settings {
    /// The device's address.
    pub ip: Ipv4Addr,
    /// The netmask.
    pub netmask: Ipv4Addr,
    /// The default gateway.
    pub gateway: Ipv4Addr,
    /// The DNS server.
    pub dns: Ipv4Addr,
}

/// What the device does about its IP address after connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpConfig {
    /// Nothing known: run DHCP.
    None,
    /// The last lease DHCP gave; worth trying again before a full DHCP exchange.
    DhcpLease(Ipv4Settings),
    /// A fixed configuration chosen at setup: never run DHCP.
    Static(Ipv4Settings),
}

/// Everything the record holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The network's name.
    pub ssid: Ssid,
    /// Open, or the PSK derived at setup time.
    pub key: NetworkKey,
    /// The access point last joined, if known.
    pub cache: Option<ReconnectCache>,
    /// The IP configuration to reuse.
    pub ip: IpConfig,
}

/// What is wrong with a slot that carries the magic word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    /// A format version this firmware does not know.
    UnknownVersion,
    /// The payload length is not the one of the version.
    BadLength,
    /// The CRC-32 does not match.
    BadChecksum,
    /// SSID length above 32.
    SsidTooLong,
    /// A kind byte (network key, cache, IP configuration) out of range.
    UnknownKind,
    /// Reconnect channel outside 1..=14.
    BadChannel,
    /// A byte that must be zero is not.
    NonZeroPadding,
}

impl core::fmt::Display for Defect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Defect::UnknownVersion => "unknown format version",
            Defect::BadLength => "wrong payload length",
            Defect::BadChecksum => "checksum mismatch",
            Defect::SsidTooLong => "SSID length above 32",
            Defect::UnknownKind => "unknown key, cache or IP kind",
            Defect::BadChannel => "channel outside 1..=14",
            Defect::NonZeroPadding => "non-zero padding",
        })
    }
}

impl core::error::Error for Defect {}

/// Why [`load`] found no credentials. Every variant means the same to the device: there are
/// none; the variants only tell the log why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Neither slot carries the magic word: cold boot, or wiped.
    Empty,
    /// A slot carries the magic word but fails validation, and no slot is valid. The defect
    /// is slot A's if A carries the magic, otherwise slot B's.
    Corrupt(Defect),
    /// The RTC memory could not be read.
    Memory(RtcError),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::Empty => f.write_str("no credential record in RTC memory"),
            LoadError::Corrupt(defect) => write!(f, "corrupt credential record: {defect}"),
            LoadError::Memory(error) => write!(f, "credential record unreadable: {error}"),
        }
    }
}

impl core::error::Error for LoadError {}

/// Why [`store`] did not store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The reconnect cache's channel is outside 1..=14; nothing was written.
    InvalidChannel,
    /// An RTC access failed. The previous record is still the current one unless the failure
    /// came after the final magic write (then [`load`] decides by the contents).
    Memory(RtcError),
    /// The slot read back differs from what was written: the memory does not hold data.
    VerifyFailed,
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::InvalidChannel => f.write_str("reconnect channel outside 1..=14"),
            StoreError::Memory(error) => write!(f, "credential record not stored: {error}"),
            StoreError::VerifyFailed => f.write_str("credential record read back differs"),
        }
    }
}

impl core::error::Error for StoreError {}

/// Why [`update_cache`] did not update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// There is no valid record to update.
    Load(LoadError),
    /// The updated record could not be stored.
    Store(StoreError),
}

impl core::fmt::Display for UpdateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UpdateError::Load(error) => write!(f, "cache not updated: {error}"),
            UpdateError::Store(error) => write!(f, "cache not updated: {error}"),
        }
    }
}

impl core::error::Error for UpdateError {}

/// Reads the current record.
///
/// # Errors
/// [`LoadError`] when there are no usable credentials; the device then runs setup.
pub fn load(mem: &impl RtcMemory) -> Result<Credentials, LoadError> {
    let scan = scan(mem).map_err(LoadError::Memory)?;
    match scan.current {
        Some((slot, _)) => {
            let mut words = [0u32; SLOT_WORDS];
            let result = mem
                .read_words(slot, &mut words)
                .map_err(LoadError::Memory)
                .and_then(|()| {
                    // The slot was valid a moment ago; decoding again keeps one code path and
                    // still never trusts the words.
                    decode_slot(&words)
                        .map(|(_, credentials)| credentials)
                        .map_err(|fault| match fault {
                            SlotFault::NoMagic => LoadError::Empty,
                            SlotFault::Defect(defect) => LoadError::Corrupt(defect),
                        })
                });
            words.zeroize();
            result
        }
        None => Err(scan.failure),
    }
}

/// Writes `credentials` as the new current record, atomically (see the module doc).
///
/// The target is the slot that does not hold the current record, with sequence number
/// current + 1 (wrapping); with no valid record, slot A with sequence 1.
///
/// # Errors
/// [`StoreError`]; on error the previous record (or none) is still what [`load`] returns,
/// unless only the read-back failed.
pub fn store(mem: &mut impl RtcMemory, credentials: &Credentials) -> Result<(), StoreError> {
    if let Some(cache) = credentials.cache
        && !(1..=MAX_CHANNEL).contains(&cache.channel)
    {
        return Err(StoreError::InvalidChannel);
    }
    let scan = scan(mem).map_err(StoreError::Memory)?;
    let (target, sequence) = match scan.current {
        Some((SLOT_A, sequence)) => (SLOT_B, sequence.wrapping_add(1)),
        Some((_, sequence)) => (SLOT_A, sequence.wrapping_add(1)),
        None => (SLOT_A, 1),
    };
    let mut words = [0u32; SLOT_WORDS];
    encode_slot(credentials, sequence, &mut words);
    let result = write_slot(mem, target, &words);
    words.zeroize();
    result
}

/// Replaces the reconnect cache and IP configuration of the current record, keeping SSID and
/// key. Writes nothing when both are unchanged.
///
/// # Errors
/// [`UpdateError::Load`] without a valid record, [`UpdateError::Store`] as for [`store`].
pub fn update_cache(
    mem: &mut impl RtcMemory,
    cache: Option<ReconnectCache>,
    ip: IpConfig,
) -> Result<(), UpdateError> {
    let mut credentials = load(mem).map_err(UpdateError::Load)?;
    if credentials.cache == cache && credentials.ip == ip {
        return Ok(());
    }
    credentials.cache = cache;
    credentials.ip = ip;
    store(mem, &credentials).map_err(UpdateError::Store)
}

/// Erases both slots: every word zeroed, so nothing of the SSID or PSK remains.
///
/// Atomic as well: both magic words are zeroed first, the slot holding the older record
/// first, so an interrupted wipe leaves either the current record or nothing, and never
/// brings back an older one.
///
/// # Errors
/// [`RtcError`] if a write fails (the remaining words are still attempted). A failed read
/// only changes which magic word is zeroed first.
pub fn wipe(mem: &mut impl RtcMemory) -> Result<(), RtcError> {
    let (first, second) = match scan(mem) {
        Ok(Scan {
            current: Some((SLOT_A, _)),
            ..
        }) => (SLOT_B, SLOT_A),
        _ => (SLOT_A, SLOT_B),
    };
    let zeros = [0u32; SLOT_WORDS - 1];
    let results = [
        mem.write_words(first, &[0]),
        mem.write_words(second, &[0]),
        mem.write_words(first + 1, &zeros),
        mem.write_words(second + 1, &zeros),
    ];
    results.into_iter().collect()
}

/// The outcome of looking at both slots.
struct Scan {
    /// The current slot (its first word) and its sequence number.
    current: Option<(usize, u32)>,
    /// Why nothing is current (meaningful only when `current` is `None`).
    failure: LoadError,
}

/// Why a slot does not hold a record.
enum SlotFault {
    /// The magic word is absent: never written, wiped, or a store cut short.
    NoMagic,
    /// The magic word is present but the record is invalid.
    Defect(Defect),
}

/// Validates both slots and picks the current one.
fn scan(mem: &impl RtcMemory) -> Result<Scan, RtcError> {
    let mut words = [0u32; SLOT_WORDS];
    let mut sequences = [None; 2];
    let mut failure = LoadError::Empty;
    for (i, slot) in [SLOT_A, SLOT_B].into_iter().enumerate() {
        let read = mem.read_words(slot, &mut words);
        let decoded = read.map(|()| decode_slot(&words));
        words.zeroize();
        match decoded? {
            Ok((sequence, _credentials)) => sequences[i] = Some(sequence),
            Err(SlotFault::Defect(defect)) if failure == LoadError::Empty => {
                failure = LoadError::Corrupt(defect);
            }
            Err(_) => {}
        }
    }
    let current = match sequences {
        [Some(a), Some(b)] if is_newer(b, a) => Some((SLOT_B, b)),
        [Some(a), _] => Some((SLOT_A, a)),
        [None, Some(b)] => Some((SLOT_B, b)),
        [None, None] => None,
    };
    Ok(Scan { current, failure })
}

/// Whether sequence `a` is ahead of `b` (RFC 1982 serial-number arithmetic): `a - b`
/// (wrapping) lies in 1..2^31. Two sequences exactly 2^31 apart are not ahead of each other,
/// and then slot A wins; [`store`] never writes such a pair.
fn is_newer(a: u32, b: u32) -> bool {
    let ahead = a.wrapping_sub(b);
    ahead != 0 && ahead < 1 << 31
}

/// Writes one slot: magic zeroed, body, magic; then reads it back.
fn write_slot(
    mem: &mut impl RtcMemory,
    slot: usize,
    words: &[u32; SLOT_WORDS],
) -> Result<(), StoreError> {
    mem.write_words(slot, &[0]).map_err(StoreError::Memory)?;
    mem.write_words(slot + 1, &words[1..])
        .map_err(StoreError::Memory)?;
    mem.write_words(slot, &words[..1])
        .map_err(StoreError::Memory)?;
    let mut check = [0u32; SLOT_WORDS];
    let read = mem.read_words(slot, &mut check);
    let same = check == *words;
    check.zeroize();
    read.map_err(StoreError::Memory)?;
    if same {
        Ok(())
    } else {
        Err(StoreError::VerifyFailed)
    }
}

/// Serialises a record into the words of one slot.
fn encode_slot(credentials: &Credentials, sequence: u32, words: &mut [u32; SLOT_WORDS]) {
    let mut bytes = [0u8; SLOT_BYTES];
    bytes[..4].copy_from_slice(&MAGIC.to_le_bytes());
    bytes[OFFSET_VERSION..OFFSET_VERSION + 2].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes[OFFSET_LENGTH..OFFSET_LENGTH + 2].copy_from_slice(&PAYLOAD_LEN.to_le_bytes());
    bytes[OFFSET_SEQUENCE..OFFSET_SEQUENCE + 4].copy_from_slice(&sequence.to_le_bytes());

    let ssid = credentials.ssid.as_bytes();
    // An Ssid holds at most 32 bytes.
    bytes[OFFSET_SSID_LEN] = ssid.len() as u8;
    bytes[OFFSET_SSID..OFFSET_SSID + ssid.len()].copy_from_slice(ssid);
    match &credentials.key {
        NetworkKey::Open => bytes[OFFSET_KEY_KIND] = KEY_OPEN,
        NetworkKey::Psk(psk) => {
            bytes[OFFSET_KEY_KIND] = KEY_PSK;
            bytes[OFFSET_PSK..OFFSET_PSK + PSK_LEN].copy_from_slice(psk.expose_secret());
        }
    }
    if let Some(cache) = credentials.cache {
        bytes[OFFSET_CACHE_FLAG] = 1;
        bytes[OFFSET_BSSID..OFFSET_BSSID + 6].copy_from_slice(&cache.bssid);
        bytes[OFFSET_CHANNEL] = cache.channel;
    }
    let settings = match credentials.ip {
        IpConfig::None => None,
        IpConfig::DhcpLease(settings) => {
            bytes[OFFSET_IP_KIND] = IP_DHCP_LEASE;
            Some(settings)
        }
        IpConfig::Static(settings) => {
            bytes[OFFSET_IP_KIND] = IP_STATIC;
            Some(settings)
        }
    };
    if let Some(s) = settings {
        for (offset, address) in [
            (OFFSET_IP, s.ip),
            (OFFSET_NETMASK, s.netmask),
            (OFFSET_GATEWAY, s.gateway),
            (OFFSET_DNS, s.dns),
        ] {
            bytes[offset..offset + 4].copy_from_slice(&address.octets());
        }
    }
    let crc = checksum(&bytes);
    bytes[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_le_bytes());

    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    bytes.zeroize();
}

/// Validates one slot and decodes it; returns its sequence number and credentials.
fn decode_slot(words: &[u32; SLOT_WORDS]) -> Result<(u32, Credentials), SlotFault> {
    if words[0] != MAGIC {
        return Err(SlotFault::NoMagic);
    }
    let mut bytes = [0u8; SLOT_BYTES];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let result = decode_bytes(&bytes).map_err(SlotFault::Defect);
    bytes.zeroize();
    result
}

fn decode_bytes(bytes: &[u8; SLOT_BYTES]) -> Result<(u32, Credentials), Defect> {
    let u16_at = |offset: usize| u16::from_le_bytes([bytes[offset], bytes[offset + 1]]);
    let u32_at = |offset: usize| {
        u32::from_le_bytes([
            bytes[offset],
            bytes[offset + 1],
            bytes[offset + 2],
            bytes[offset + 3],
        ])
    };
    let all_zero = |range: Range<usize>| bytes[range].iter().all(|&b| b == 0);
    let address_at = |offset: usize| {
        Ipv4Addr::new(
            bytes[offset],
            bytes[offset + 1],
            bytes[offset + 2],
            bytes[offset + 3],
        )
    };

    if u16_at(OFFSET_VERSION) != FORMAT_VERSION {
        return Err(Defect::UnknownVersion);
    }
    if u16_at(OFFSET_LENGTH) != PAYLOAD_LEN {
        return Err(Defect::BadLength);
    }
    if u32_at(OFFSET_CRC) != checksum(bytes) {
        return Err(Defect::BadChecksum);
    }
    if !all_zero(RECORD_END..SLOT_BYTES) || bytes[OFFSET_RESERVED] != 0 {
        return Err(Defect::NonZeroPadding);
    }

    let ssid_len = usize::from(bytes[OFFSET_SSID_LEN]);
    if ssid_len > SSID_MAX_LEN {
        return Err(Defect::SsidTooLong);
    }
    if !all_zero(OFFSET_SSID + ssid_len..OFFSET_SSID + SSID_MAX_LEN) {
        return Err(Defect::NonZeroPadding);
    }
    let ssid =
        Ssid::new(&bytes[OFFSET_SSID..OFFSET_SSID + ssid_len]).map_err(|_| Defect::SsidTooLong)?;

    let psk_range = OFFSET_PSK..OFFSET_PSK + PSK_LEN;
    let key = match bytes[OFFSET_KEY_KIND] {
        KEY_OPEN if all_zero(psk_range.clone()) => NetworkKey::Open,
        KEY_OPEN => return Err(Defect::NonZeroPadding),
        KEY_PSK => {
            let mut psk = Psk::zeroed();
            psk.expose_secret_mut().copy_from_slice(&bytes[psk_range]);
            NetworkKey::Psk(psk)
        }
        _ => return Err(Defect::UnknownKind),
    };

    let cache_range = OFFSET_BSSID..OFFSET_CHANNEL + 1;
    let cache = match bytes[OFFSET_CACHE_FLAG] {
        0 if all_zero(cache_range) => None,
        0 => return Err(Defect::NonZeroPadding),
        1 => {
            let channel = bytes[OFFSET_CHANNEL];
            if !(1..=MAX_CHANNEL).contains(&channel) {
                return Err(Defect::BadChannel);
            }
            let mut bssid = [0u8; 6];
            bssid.copy_from_slice(&bytes[OFFSET_BSSID..OFFSET_BSSID + 6]);
            Some(ReconnectCache { bssid, channel })
        }
        _ => return Err(Defect::UnknownKind),
    };

    let settings = Ipv4Settings {
        ip: address_at(OFFSET_IP),
        netmask: address_at(OFFSET_NETMASK),
        gateway: address_at(OFFSET_GATEWAY),
        dns: address_at(OFFSET_DNS),
    };
    let ip = match bytes[OFFSET_IP_KIND] {
        IP_NONE if all_zero(OFFSET_IP..RECORD_END) => IpConfig::None,
        IP_NONE => return Err(Defect::NonZeroPadding),
        IP_DHCP_LEASE => IpConfig::DhcpLease(settings),
        IP_STATIC => IpConfig::Static(settings),
        _ => return Err(Defect::UnknownKind),
    };

    Ok((
        u32_at(OFFSET_SEQUENCE),
        Credentials {
            ssid,
            key,
            cache,
            ip,
        },
    ))
}

/// CRC-32/ISO-HDLC of the header without its CRC field, then the payload.
fn checksum(bytes: &[u8; SLOT_BYTES]) -> u32 {
    let mut digest = CRC32.digest();
    digest.update(&bytes[..OFFSET_CRC]);
    digest.update(&bytes[HEADER_LEN..RECORD_END]);
    digest.finalize()
}

/// RTC memory that loses power after `budget` word writes: later writes do nothing. For the
/// torn-write tests of every RTC record (`readings` uses it too).
#[cfg(test)]
pub(crate) struct CutRtc {
    pub(crate) mem: RamRtc,
    pub(crate) budget: usize,
    pub(crate) writes: usize,
}

#[cfg(test)]
impl RtcMemory for CutRtc {
    fn read_words(&self, word_offset: usize, out: &mut [u32]) -> Result<(), RtcError> {
        self.mem.read_words(word_offset, out)
    }

    fn write_words(&mut self, word_offset: usize, data: &[u32]) -> Result<(), RtcError> {
        for (i, &word) in data.iter().enumerate() {
            if self.writes < self.budget {
                self.mem.write_words(word_offset + i, &[word])?;
            }
            self.writes += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn settings(last: u8) -> Ipv4Settings {
        Ipv4Settings {
            ip: Ipv4Addr::new(192, 168, 1, last),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::new(192, 168, 1, 1),
            dns: Ipv4Addr::new(9, 9, 9, 9),
        }
    }

    fn home() -> Credentials {
        Credentials {
            ssid: Ssid::new(b"home").expect("short"),
            key: NetworkKey::Psk(Psk::from_bytes(&[0x11; PSK_LEN])),
            cache: Some(ReconnectCache {
                bssid: [2, 0, 0, 0, 0, 1],
                channel: 6,
            }),
            ip: IpConfig::DhcpLease(settings(23)),
        }
    }

    fn cafe() -> Credentials {
        Credentials {
            ssid: Ssid::new(&[0xFF; 32]).expect("32 bytes"),
            key: NetworkKey::Open,
            cache: None,
            ip: IpConfig::Static(settings(200)),
        }
    }

    fn office() -> Credentials {
        Credentials {
            ssid: Ssid::new(b"").expect("empty"),
            key: NetworkKey::Psk(Psk::from_bytes(&[0xEE; PSK_LEN])),
            cache: Some(ReconnectCache {
                bssid: [0xFF; 6],
                channel: 14,
            }),
            ip: IpConfig::None,
        }
    }

    /// Differs from every other example in every field.
    fn fresh() -> Credentials {
        Credentials {
            ssid: Ssid::new(b"fresh network").expect("short"),
            key: NetworkKey::Psk(Psk::from_bytes(&[0x5A; PSK_LEN])),
            cache: Some(ReconnectCache {
                bssid: [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC],
                channel: 1,
            }),
            ip: IpConfig::Static(settings(77)),
        }
    }

    /// Memory whose words are noise, as after power-on, with the free area marked.
    fn noisy() -> RamRtc {
        let mut mem = RamRtc::filled(0xDEAD_BEEF);
        for (i, word) in mem.words.iter_mut().enumerate() {
            *word ^= (i as u32).wrapping_mul(0x9E37_79B9);
        }
        mem
    }

    fn slot_words(mem: &RamRtc, slot: usize) -> [u32; SLOT_WORDS] {
        let mut words = [0; SLOT_WORDS];
        words.copy_from_slice(&mem.words[slot..slot + SLOT_WORDS]);
        words
    }

    fn slot_bytes(mem: &RamRtc, slot: usize) -> [u8; SLOT_BYTES] {
        let mut bytes = [0; SLOT_BYTES];
        for (chunk, word) in bytes
            .chunks_exact_mut(4)
            .zip(&mem.words[slot..slot + SLOT_WORDS])
        {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// Writes `bytes` into a slot, optionally with a freshly computed CRC.
    fn put_slot_bytes(mem: &mut RamRtc, slot: usize, mut bytes: [u8; SLOT_BYTES], reseal: bool) {
        if reseal {
            let crc = checksum(&bytes);
            bytes[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        }
        for (word, chunk) in mem.words[slot..slot + SLOT_WORDS]
            .iter_mut()
            .zip(bytes.chunks_exact(4))
        {
            *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
    }

    fn sequence_of(mem: &RamRtc, slot: usize) -> u32 {
        mem.words[slot + OFFSET_SEQUENCE / 4]
    }

    /// Counts the word writes a store makes.
    fn writes_of(mem: &RamRtc, operation: impl Fn(&mut CutRtc)) -> usize {
        let mut counter = CutRtc {
            mem: mem.clone(),
            budget: usize::MAX,
            writes: 0,
        };
        operation(&mut counter);
        counter.writes
    }

    #[test]
    fn layout_constants_match_the_documented_table() {
        assert_eq!(MAGIC.to_le_bytes(), *b"rkCR");
        assert_eq!(SLOT_BYTES, 128);
        assert_eq!(RECORD_END, 108);
        assert_eq!(FREE_WORDS, 64..128);
        let mut mem = RamRtc::filled(0);
        store(&mut mem, &home()).expect("stores");
        let bytes = slot_bytes(&mem, SLOT_A);
        assert_eq!(&bytes[0..4], b"rkCR");
        assert_eq!(&bytes[4..8], &[1, 0, 92, 0]);
        assert_eq!(&bytes[8..12], &1u32.to_le_bytes());
        assert_eq!(&bytes[16..20], &[4, 1, 1, 1]);
        assert_eq!(&bytes[20..24], b"home");
        assert_eq!(&bytes[52..84], &[0x11; 32]);
        assert_eq!(&bytes[84..92], &[2, 0, 0, 0, 0, 1, 6, 0]);
        assert_eq!(
            &bytes[92..108],
            &[
                192, 168, 1, 23, 255, 255, 255, 0, 192, 168, 1, 1, 9, 9, 9, 9
            ]
        );
        // The CRC is the standard CRC-32 of the 12 header bytes followed by the payload.
        let mut covered = Vec::from(&bytes[..12]);
        covered.extend_from_slice(&bytes[16..108]);
        let reference = Crc::<u32>::new(&CRC_32_ISO_HDLC).checksum(&covered);
        assert_eq!(&bytes[12..16], &reference.to_le_bytes());
    }

    #[test]
    fn store_then_load_round_trips_each_shape() {
        for credentials in [home(), cafe(), office()] {
            let mut mem = noisy();
            store(&mut mem, &credentials).expect("stores");
            assert_eq!(load(&mem), Ok(credentials));
        }
    }

    #[test]
    fn cold_boot_noise_and_zeros_are_empty() {
        assert_eq!(load(&noisy()), Err(LoadError::Empty));
        assert_eq!(load(&RamRtc::filled(0)), Err(LoadError::Empty));
        assert_eq!(load(&RamRtc::filled(u32::MAX)), Err(LoadError::Empty));
    }

    #[test]
    fn stores_alternate_slots_and_never_touch_the_free_words() {
        let mut mem = noisy();
        let free_before = mem.words[FREE_WORDS].to_vec();
        store(&mut mem, &home()).expect("stores");
        assert_eq!(sequence_of(&mem, SLOT_A), 1);
        store(&mut mem, &cafe()).expect("stores");
        assert_eq!(sequence_of(&mem, SLOT_B), 2);
        store(&mut mem, &office()).expect("stores");
        assert_eq!(sequence_of(&mem, SLOT_A), 3);
        assert_eq!(load(&mem), Ok(office()));
        assert_eq!(mem.words[FREE_WORDS], free_before[..]);
    }

    /// The core power-loss proof: cut a store after every word write (0 to all of them) and
    /// reboot; the record read is exactly the old one or exactly the new one. Repeated for
    /// every starting situation: nothing stored, one slot, both slots (each current), and
    /// the other slot corrupt.
    #[test]
    fn store_cut_after_any_word_leaves_old_or_new() {
        let mut starts: Vec<(RamRtc, Option<Credentials>)> = Vec::new();
        starts.push((noisy(), None));
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores");
        starts.push((mem.clone(), Some(home())));
        store(&mut mem, &cafe()).expect("stores");
        starts.push((mem.clone(), Some(cafe()))); // B current, A older
        store(&mut mem, &office()).expect("stores");
        starts.push((mem.clone(), Some(office()))); // A current, B older
        let mut damaged = mem.clone();
        damaged.words[SLOT_B + 20] ^= 1; // older slot corrupt
        starts.push((damaged, Some(office())));

        for (start, old) in starts {
            let new = fresh();
            let total = writes_of(&start, |m| store(m, &new).expect("stores"));
            assert_eq!(total, SLOT_WORDS + 1);
            let mut saw_old = false;
            let mut saw_new = false;
            for cut in 0..=total {
                let mut torn = CutRtc {
                    mem: start.clone(),
                    budget: cut,
                    writes: 0,
                };
                let _ = store(&mut torn, &new);
                let after = load(&torn.mem);
                match &old {
                    Some(old) if after.as_ref() == Ok(old) => saw_old = true,
                    None if after == Err(LoadError::Empty) => saw_old = true,
                    _ if after.as_ref() == Ok(&new) => saw_new = true,
                    _ => panic!("cut after {cut} of {total} words gave {after:?}"),
                }
                // The new record appears with the last word (its magic), never earlier.
                assert_eq!(after.as_ref() == Ok(&new), cut == total, "cut {cut}");
                // The free words are never written, even in part.
                assert_eq!(torn.mem.words[FREE_WORDS], start.words[FREE_WORDS]);
                // A store after the reboot works from whatever the cut left.
                let mut again = torn.mem.clone();
                store(&mut again, &cafe()).expect("stores");
                assert_eq!(load(&again), Ok(cafe()));
            }
            assert!(saw_old && saw_new);
        }
    }

    /// An interrupted wipe leaves the current record or nothing: never the older record.
    #[test]
    fn wipe_cut_after_any_word_never_resurrects_the_older_record() {
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores");
        store(&mut mem, &cafe()).expect("stores");
        let mut both_ways = std::vec![mem.clone()];
        store(&mut mem, &office()).expect("stores");
        both_ways.push(mem);
        for start in both_ways {
            let current = load(&start).expect("valid");
            let total = writes_of(&start, |m| wipe(m).expect("wipes"));
            assert_eq!(total, 2 * SLOT_WORDS);
            for cut in 0..=total {
                let mut torn = CutRtc {
                    mem: start.clone(),
                    budget: cut,
                    writes: 0,
                };
                wipe(&mut torn).expect("writes are accepted");
                let after = load(&torn.mem);
                assert!(
                    after.as_ref() == Ok(&current) || after == Err(LoadError::Empty),
                    "cut {cut}: {after:?}"
                );
            }
        }
    }

    #[test]
    fn wipe_zeroes_both_slots_and_nothing_else() {
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores");
        store(&mut mem, &office()).expect("stores");
        let free_before = mem.words[FREE_WORDS].to_vec();
        wipe(&mut mem).expect("wipes");
        assert!(mem.words[..FREE_WORDS.start].iter().all(|&w| w == 0));
        assert_eq!(mem.words[FREE_WORDS], free_before[..]);
        assert_eq!(load(&mem), Err(LoadError::Empty));
        // And storing afterwards starts again cleanly.
        store(&mut mem, &cafe()).expect("stores");
        assert_eq!(load(&mem), Ok(cafe()));
    }

    #[test]
    fn one_corrupt_slot_falls_back_to_the_other() {
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores"); // A, seq 1
        store(&mut mem, &cafe()).expect("stores"); // B, seq 2
        let mut b_bad = mem.clone();
        b_bad.words[SLOT_B + 10] ^= 0x0100;
        assert_eq!(load(&b_bad), Ok(home()));
        let mut a_bad = mem.clone();
        a_bad.words[SLOT_A + 10] ^= 0x0100;
        assert_eq!(load(&a_bad), Ok(cafe()));
        // The next store replaces the corrupt slot, not the good one.
        store(&mut b_bad, &office()).expect("stores");
        assert_eq!(load(&b_bad), Ok(office()));
        assert_eq!(sequence_of(&b_bad, SLOT_B), 2);
    }

    #[test]
    fn both_slots_corrupt_is_no_credentials() {
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores");
        store(&mut mem, &cafe()).expect("stores");
        mem.words[SLOT_A + 9] ^= 1;
        mem.words[SLOT_B + 9] ^= 1;
        assert_eq!(load(&mem), Err(LoadError::Corrupt(Defect::BadChecksum)));
        // Magic gone from both: empty.
        mem.words[SLOT_A] = 0;
        mem.words[SLOT_B] = 0;
        assert_eq!(load(&mem), Err(LoadError::Empty));
        assert_eq!(
            update_cache(&mut mem, None, IpConfig::None),
            Err(UpdateError::Load(LoadError::Empty))
        );
    }

    #[test]
    fn sequence_wraps_around() {
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores");
        let mut bytes = slot_bytes(&mem, SLOT_A);
        bytes[OFFSET_SEQUENCE..OFFSET_SEQUENCE + 4].copy_from_slice(&(u32::MAX - 1).to_le_bytes());
        put_slot_bytes(&mut mem, SLOT_A, bytes, true);
        assert_eq!(load(&mem), Ok(home()));
        let shapes = [cafe(), office(), home(), cafe()];
        let expected_sequences = [u32::MAX, 0, 1, 2];
        for (credentials, sequence) in shapes.into_iter().zip(expected_sequences) {
            store(&mut mem, &credentials).expect("stores");
            assert_eq!(load(&mem), Ok(credentials));
            let seqs = [sequence_of(&mem, SLOT_A), sequence_of(&mem, SLOT_B)];
            assert!(seqs.contains(&sequence), "{seqs:x?} lacks {sequence:x}");
        }
        assert!(is_newer(0, u32::MAX));
        assert!(!is_newer(u32::MAX, 0));
        assert!(!is_newer(5, 5));
        assert!(!is_newer(5 + (1 << 31), 5) && !is_newer(5, 5 + (1 << 31)));
    }

    #[test]
    fn equal_or_opposite_sequences_still_pick_one_whole_record() {
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores");
        store(&mut mem, &cafe()).expect("stores");
        for b_sequence in [1u32, 1 + (1 << 31)] {
            let mut copy = mem.clone();
            let mut bytes = slot_bytes(&copy, SLOT_B);
            bytes[OFFSET_SEQUENCE..OFFSET_SEQUENCE + 4].copy_from_slice(&b_sequence.to_le_bytes());
            put_slot_bytes(&mut copy, SLOT_B, bytes, true);
            assert_eq!(load(&copy), Ok(home()), "slot A wins a tie");
            store(&mut copy, &office()).expect("stores");
            assert_eq!(load(&copy), Ok(office()));
        }
    }

    #[test]
    fn out_of_range_fields_are_corrupt() {
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores");
        let good = slot_bytes(&mem, SLOT_A);
        let cases: [(usize, u8, Defect); 12] = [
            (OFFSET_VERSION, 2, Defect::UnknownVersion),
            (OFFSET_VERSION, 0, Defect::UnknownVersion),
            (OFFSET_VERSION + 1, 1, Defect::UnknownVersion),
            (OFFSET_LENGTH, 91, Defect::BadLength),
            (OFFSET_LENGTH, 93, Defect::BadLength),
            (OFFSET_LENGTH + 1, 0xFF, Defect::BadLength),
            (OFFSET_SSID_LEN, 33, Defect::SsidTooLong),
            (OFFSET_SSID_LEN, 0xFF, Defect::SsidTooLong),
            (OFFSET_KEY_KIND, 2, Defect::UnknownKind),
            (OFFSET_IP_KIND, 3, Defect::UnknownKind),
            (OFFSET_CHANNEL, 15, Defect::BadChannel),
            (OFFSET_CHANNEL, 0, Defect::BadChannel),
        ];
        for (offset, value, defect) in cases {
            let mut bytes = good;
            bytes[offset] = value;
            let mut corrupt = mem.clone();
            put_slot_bytes(&mut corrupt, SLOT_A, bytes, true);
            assert_eq!(
                load(&corrupt),
                Err(LoadError::Corrupt(defect)),
                "byte {offset} = {value}"
            );
        }
        let padding = [
            OFFSET_RESERVED,
            RECORD_END,
            SLOT_BYTES - 1,
            OFFSET_SSID + 4,
            OFFSET_SSID + 31,
        ];
        for offset in padding {
            let mut bytes = good;
            bytes[offset] = 1;
            let mut corrupt = mem.clone();
            put_slot_bytes(&mut corrupt, SLOT_A, bytes, true);
            assert_eq!(
                load(&corrupt),
                Err(LoadError::Corrupt(Defect::NonZeroPadding)),
                "byte {offset}"
            );
        }
        // Fields that must be zero when their kind says "absent".
        let mut open = noisy();
        store(&mut open, &cafe()).expect("stores");
        let mut bytes = slot_bytes(&open, SLOT_A);
        bytes[OFFSET_PSK + 7] = 1;
        put_slot_bytes(&mut open, SLOT_A, bytes, true);
        assert_eq!(load(&open), Err(LoadError::Corrupt(Defect::NonZeroPadding)));
        let mut no_ip = noisy();
        store(&mut no_ip, &office()).expect("stores");
        let mut bytes = slot_bytes(&no_ip, SLOT_A);
        bytes[OFFSET_DNS] = 8;
        put_slot_bytes(&mut no_ip, SLOT_A, bytes, true);
        assert_eq!(
            load(&no_ip),
            Err(LoadError::Corrupt(Defect::NonZeroPadding))
        );
    }

    #[test]
    fn store_rejects_an_invalid_channel_without_writing() {
        let mut mem = noisy();
        let before = mem.clone();
        for channel in [0, 15, 255] {
            let mut credentials = home();
            credentials.cache = Some(ReconnectCache {
                bssid: [1; 6],
                channel,
            });
            assert_eq!(
                store(&mut mem, &credentials),
                Err(StoreError::InvalidChannel)
            );
        }
        assert_eq!(mem, before);
    }

    #[test]
    fn update_cache_keeps_ssid_and_key() {
        let mut mem = noisy();
        store(&mut mem, &home()).expect("stores");
        let cache = Some(ReconnectCache {
            bssid: [9; 6],
            channel: 11,
        });
        update_cache(&mut mem, cache, IpConfig::None).expect("updates");
        let mut expected = home();
        expected.cache = cache;
        expected.ip = IpConfig::None;
        assert_eq!(load(&mem), Ok(expected));
        // Unchanged cache: no write at all.
        let writes = writes_of(&mem, |m| {
            update_cache(m, cache, IpConfig::None).expect("updates")
        });
        assert_eq!(writes, 0);
        let invalid = Some(ReconnectCache {
            bssid: [9; 6],
            channel: 0,
        });
        assert_eq!(
            update_cache(&mut mem, invalid, IpConfig::None),
            Err(UpdateError::Store(StoreError::InvalidChannel))
        );
    }

    #[test]
    fn memory_errors_are_reported_not_panicked() {
        struct Broken;
        impl RtcMemory for Broken {
            fn read_words(&self, _: usize, _: &mut [u32]) -> Result<(), RtcError> {
                Err(RtcError::Refused)
            }
            fn write_words(&mut self, _: usize, _: &[u32]) -> Result<(), RtcError> {
                Err(RtcError::Refused)
            }
        }
        assert_eq!(load(&Broken), Err(LoadError::Memory(RtcError::Refused)));
        assert_eq!(
            store(&mut Broken, &home()),
            Err(StoreError::Memory(RtcError::Refused))
        );
        assert_eq!(wipe(&mut Broken), Err(RtcError::Refused));

        /// Accepts writes but forgets them.
        struct Forgetful(RamRtc);
        impl RtcMemory for Forgetful {
            fn read_words(&self, offset: usize, out: &mut [u32]) -> Result<(), RtcError> {
                self.0.read_words(offset, out)
            }
            fn write_words(&mut self, _: usize, _: &[u32]) -> Result<(), RtcError> {
                Ok(())
            }
        }
        assert_eq!(
            store(&mut Forgetful(noisy()), &home()),
            Err(StoreError::VerifyFailed)
        );

        let mut ram = RamRtc::filled(0);
        assert_eq!(
            ram.read_words(USER_WORDS, &mut [0]),
            Err(RtcError::OutOfRange)
        );
        assert_eq!(
            ram.write_words(USER_WORDS - 1, &[0, 0]),
            Err(RtcError::OutOfRange)
        );
        assert_eq!(ram.write_words(usize::MAX, &[0]), Err(RtcError::OutOfRange));
    }

    /// Every single bit of both slots flipped in turn: a flip in one slot gives exactly the
    /// other slot's record; never a mix, never a panic. With one record, any flip gives no
    /// credentials.
    #[test]
    fn every_single_bit_flip_gives_old_new_or_nothing() {
        let mut two = noisy();
        store(&mut two, &cafe()).expect("stores"); // A: old
        store(&mut two, &home()).expect("stores"); // B: new
        let mut one = noisy();
        store(&mut one, &office()).expect("stores"); // A only; B is noise
        for word in 0..2 * SLOT_WORDS {
            for bit in 0..32 {
                let mut flipped = two.clone();
                flipped.words[word] ^= 1 << bit;
                let expected = if word < SLOT_B { home() } else { cafe() };
                assert_eq!(load(&flipped), Ok(expected), "word {word} bit {bit}");

                if word < SLOT_B {
                    let mut flipped = one.clone();
                    flipped.words[word] ^= 1 << bit;
                    let after = load(&flipped);
                    if word == 0 {
                        assert_eq!(after, Err(LoadError::Empty));
                    } else {
                        assert!(
                            matches!(after, Err(LoadError::Corrupt(_))),
                            "word {word} bit {bit}: {after:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let text = std::format!("{:?}", home());
        assert!(text.contains("Psk(<redacted>)"), "{text}");
        assert!(!text.contains("17") && !text.contains("11, 11"), "{text}");
        let ssid = Ssid::new(b"a\"b\x01").expect("short");
        assert_eq!(std::format!("{ssid:?}"), "Ssid(\"a\\x22b\\x01\")");
        assert_eq!(Ssid::new(&[0; 33]), Err(SsidTooLong));
    }

    fn arbitrary_settings() -> impl Strategy<Value = Ipv4Settings> {
        any::<[u32; 4]>().prop_map(|[ip, netmask, gateway, dns]| Ipv4Settings {
            ip: Ipv4Addr::from(ip),
            netmask: Ipv4Addr::from(netmask),
            gateway: Ipv4Addr::from(gateway),
            dns: Ipv4Addr::from(dns),
        })
    }

    fn arbitrary_credentials() -> impl Strategy<Value = Credentials> {
        (
            proptest::collection::vec(any::<u8>(), 0..=32),
            proptest::option::of(any::<[u8; 32]>()),
            proptest::option::of((any::<[u8; 6]>(), 1..=MAX_CHANNEL)),
            prop_oneof![
                Just(IpConfig::None),
                arbitrary_settings().prop_map(IpConfig::DhcpLease),
                arbitrary_settings().prop_map(IpConfig::Static),
            ],
        )
            .prop_map(|(ssid, key, cache, ip)| Credentials {
                ssid: Ssid::new(&ssid).expect("at most 32"),
                key: key.map_or(NetworkKey::Open, |k| NetworkKey::Psk(Psk::from_bytes(&k))),
                cache: cache.map(|(bssid, channel)| ReconnectCache { bssid, channel }),
                ip,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random words: load never panics, and whatever it accepts is canonical: the slot
        /// it came from is exactly what store would write.
        #[test]
        fn random_words_never_panic_and_accepted_slots_are_canonical(
            words in proptest::collection::vec(any::<u32>(), USER_WORDS),
            magic_a in any::<bool>(),
            magic_b in any::<bool>(),
        ) {
            let mut mem = RamRtc::filled(0);
            mem.words.copy_from_slice(&words);
            if magic_a { mem.words[SLOT_A] = MAGIC; }
            if magic_b { mem.words[SLOT_B] = MAGIC; }
            for slot in [SLOT_A, SLOT_B] {
                if let Ok((sequence, credentials)) = decode_slot(&slot_words(&mem, slot)) {
                    let mut again = [0; SLOT_WORDS];
                    encode_slot(&credentials, sequence, &mut again);
                    prop_assert_eq!(again, slot_words(&mem, slot));
                }
            }
            let _ = load(&mem);
        }

        /// Edits that keep the CRC valid (it is recomputed) reach the field checks: every
        /// edited slot is rejected, or accepted only in canonical form; load never panics.
        #[test]
        fn resealed_edits_are_rejected_or_canonical(
            credentials in arbitrary_credentials(),
            edits in proptest::collection::vec((4..SLOT_BYTES, any::<u8>()), 1..4),
        ) {
            let mut mem = noisy();
            store(&mut mem, &credentials).expect("stores");
            let mut bytes = slot_bytes(&mem, SLOT_A);
            for &(offset, value) in &edits {
                bytes[offset] = value;
            }
            put_slot_bytes(&mut mem, SLOT_A, bytes, true);
            match decode_slot(&slot_words(&mem, SLOT_A)) {
                Ok((sequence, decoded)) => {
                    let mut again = [0; SLOT_WORDS];
                    encode_slot(&decoded, sequence, &mut again);
                    prop_assert_eq!(again, slot_words(&mem, SLOT_A));
                    prop_assert_eq!(load(&mem), Ok(decoded));
                }
                Err(_) => prop_assert!(load(&mem).is_err()),
            }
        }

        /// Any credentials round-trip through any earlier state.
        #[test]
        fn arbitrary_credentials_round_trip(
            first in arbitrary_credentials(),
            second in arbitrary_credentials(),
            noise in any::<u32>(),
        ) {
            let mut mem = RamRtc::filled(noise);
            store(&mut mem, &first).expect("stores");
            prop_assert_eq!(load(&mem), Ok(first));
            store(&mut mem, &second).expect("stores");
            prop_assert_eq!(load(&mem), Ok(second));
        }

        /// A valid record pair with random corruption of one or more words: the result is
        /// one of the two records whole, or no credentials; never a mix or a panic. When only
        /// one slot is damaged, the other slot's record is returned.
        #[test]
        fn corrupted_records_give_a_whole_record_or_nothing(
            old in arbitrary_credentials(),
            new in arbitrary_credentials(),
            damage in proptest::collection::vec((0..2 * SLOT_WORDS, 1u32..=u32::MAX), 1..6),
        ) {
            let mut mem = noisy();
            store(&mut mem, &old).expect("stores");
            store(&mut mem, &new).expect("stores"); // new in B, old in A
            let clean = mem.clone();
            for &(word, mask) in &damage {
                mem.words[word] ^= mask;
            }
            let a_changed = slot_words(&mem, SLOT_A) != slot_words(&clean, SLOT_A);
            let b_changed = slot_words(&mem, SLOT_B) != slot_words(&clean, SLOT_B);
            let after = load(&mem);
            match (a_changed, b_changed) {
                (false, false) => prop_assert_eq!(after, Ok(new)),
                (true, false) => prop_assert_eq!(after, Ok(new)),
                (false, true) => prop_assert_eq!(after, Ok(old)),
                (true, true) => prop_assert!(after.is_err() || after == Ok(old) || after == Ok(new)),
            }
        }
    }
}
