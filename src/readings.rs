//! Sensor readings and the queue of undelivered ones in RTC memory.
//!
//! A [`Reading`] is one wake's measurements, each present or missing (a sensor that did not
//! answer is missing, never a made-up value), at the resolution the queue keeps. The
//! [`Ring`] holds up to [`CAPACITY`] of them in RTC memory ([`crate::rtc_layout::READINGS`]),
//! so readings a failed report could not deliver survive deep sleep and go out with the next
//! report; when it is full the oldest gives way.
//!
//! # Layout (19 words)
//!
//! Word 0 is the header; words 1..19 are six entries of three words (12 bytes,
//! little-endian): the reading's 8 bytes and the time it was taken.
//!
//! | Header bits | Field |
//! |-------------|-------|
//! | 0..8   | magic `0xA8` ([`RING_MAGIC`]; `0xA7` was the nine-entry format without times, which now reads as no queue) |
//! | 8..12  | index of the oldest entry, 0..6 |
//! | 12..16 | entries published, 0..=6 |
//! | 16..32 | CRC-16/IBM-3740 of header bits 0..16 (two bytes) then every published entry, oldest first |
//!
//! | Entry byte | Field |
//! |------------|-------|
//! | 0   | present: bit 0 temperature, 1 humidity, 2 pressure, 3 soil, 4 battery; bits 5..8 zero |
//! | 1-2 | temperature, 0.01 °C, signed |
//! | 3   | relative humidity, 0.5 % (0..=200) |
//! | 4-5 | pressure, 0.1 hPa |
//! | 6   | soil moisture, % (0..=100) |
//! | 7   | battery, 20 mV (up to 5.1 V) |
//! | 8-11 | when it was taken: the device clock in seconds (`report::ReportState::clock_s`) |
//!
//! A missing field is zero. Guarantees: an entry is written before the header word that
//! publishes it, and a header word is written in one 32-bit access (atomic), so a reset or
//! power cut at any point leaves the old queue or the new one. Anything that does not validate
//! (magic, indices, CRC, an entry's reserved bits or ranges) reads as an empty queue
//! ([`RingError`]), never as readings.
//!
//! Must never: touch words outside [`crate::rtc_layout::READINGS`].

#![forbid(unsafe_code)]

use crc::{CRC_16_IBM_3740, Crc, NoTable};

use crate::rtc_layout::READINGS;
use crate::rtc_record::{RtcError, RtcMemory};

/// Readings the queue holds.
pub const CAPACITY: usize = 6;
/// Words per entry: the reading and its time.
const ENTRY_WORDS: usize = 3;
/// Words of the queue: a header and three per entry.
pub const RING_WORDS: usize = 1 + ENTRY_WORDS * CAPACITY;
/// Low byte of every valid header word.
pub const RING_MAGIC: u8 = 0xA8;

/// A queued reading and when it was taken (device clock, seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The measurements.
    pub reading: Reading,
    /// The device clock when they were taken.
    pub taken_s: u32,
}

const CRC16: Crc<u16, NoTable> = Crc::<u16, NoTable>::new(&CRC_16_IBM_3740);

/// One wake's measurements, each `None` when its sensor did not answer (or the board has
/// none), at the resolution the queue keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// Air temperature in 0.01 °C.
    pub temperature_centi_c: Option<i16>,
    /// Relative humidity in 0.5 % steps (0..=200).
    pub humidity_half_pct: Option<u8>,
    /// Air pressure in 0.1 hPa.
    pub pressure_deci_hpa: Option<u16>,
    /// Soil moisture in % (0..=100).
    pub soil_pct: Option<u8>,
    /// Battery voltage in 20 mV steps.
    pub battery_20mv: Option<u8>,
}

/// Why the queue in RTC memory was not usable (it then counts as empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The header's magic is wrong: never written since power-on, or noise.
    NoQueue,
    /// The header's indices are out of range.
    BadHeader,
    /// The CRC does not match the published entries.
    BadChecksum,
    /// A published entry has reserved bits set or a value out of range.
    BadEntry,
    /// The RTC memory access failed.
    Rtc(RtcError),
}

impl From<RtcError> for RingError {
    fn from(e: RtcError) -> Self {
        RingError::Rtc(e)
    }
}

impl Reading {
    /// The 8 bytes of its entry.
    pub fn encode(&self) -> [u8; 8] {
        let mut e = [0u8; 8];
        if let Some(t) = self.temperature_centi_c {
            e[0] |= 1;
            e[1..3].copy_from_slice(&t.to_le_bytes());
        }
        if let Some(h) = self.humidity_half_pct {
            e[0] |= 2;
            e[3] = h;
        }
        if let Some(p) = self.pressure_deci_hpa {
            e[0] |= 4;
            e[4..6].copy_from_slice(&p.to_le_bytes());
        }
        if let Some(s) = self.soil_pct {
            e[0] |= 8;
            e[6] = s;
        }
        if let Some(b) = self.battery_20mv {
            e[0] |= 16;
            e[7] = b;
        }
        e
    }

    /// The reading an entry holds; `None` unless `bytes` is exactly what [`encode`]
    /// writes for some reading (reserved bits clear, missing fields zero, ranges kept).
    ///
    /// [`encode`]: Reading::encode
    pub fn decode(bytes: [u8; 8]) -> Option<Reading> {
        let flags = bytes[0];
        if flags & !0x1F != 0 {
            return None;
        }
        let field = |bit: u8, range: core::ops::Range<usize>| {
            let present = flags & bit != 0;
            let zero = bytes[range.clone()].iter().all(|&b| b == 0);
            (present, zero || present)
        };
        let mut ok = true;
        let mut take = |bit, range| {
            let (present, valid) = field(bit, range);
            ok &= valid;
            present
        };
        let reading = Reading {
            temperature_centi_c: take(1, 1..3).then(|| i16::from_le_bytes([bytes[1], bytes[2]])),
            humidity_half_pct: take(2, 3..4).then_some(bytes[3]),
            pressure_deci_hpa: take(4, 4..6).then(|| u16::from_le_bytes([bytes[4], bytes[5]])),
            soil_pct: take(8, 6..7).then_some(bytes[6]),
            battery_20mv: take(16, 7..8).then_some(bytes[7]),
        };
        let in_range = reading.humidity_half_pct.is_none_or(|h| h <= 200)
            && reading.soil_pct.is_none_or(|s| s <= 100);
        (ok && in_range).then_some(reading)
    }
}

/// The queue's header: where the oldest entry is and how many are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    oldest: usize,
    count: usize,
}

fn entry_word(index: usize) -> usize {
    READINGS.start + 1 + ENTRY_WORDS * index
}

fn read_entry(mem: &impl RtcMemory, index: usize) -> Result<[u8; 12], RtcError> {
    let mut words = [0u32; ENTRY_WORDS];
    mem.read_words(entry_word(index), &mut words)?;
    let mut bytes = [0u8; 12];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    Ok(bytes)
}

fn decode_entry(bytes: [u8; 12]) -> Option<Entry> {
    let mut reading = [0u8; 8];
    reading.copy_from_slice(&bytes[..8]);
    Some(Entry {
        reading: Reading::decode(reading)?,
        taken_s: u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
    })
}

/// The header word for `header` over the entries as they are in `mem`.
fn header_word(mem: &impl RtcMemory, header: Header) -> Result<u32, RtcError> {
    let low = u16::from(RING_MAGIC) | (header.oldest as u16) << 8 | (header.count as u16) << 12;
    let mut digest = CRC16.digest();
    digest.update(&low.to_le_bytes());
    for i in 0..header.count {
        digest.update(&read_entry(mem, (header.oldest + i) % CAPACITY)?);
    }
    Ok(u32::from(low) | u32::from(digest.finalize()) << 16)
}

fn read_header(mem: &impl RtcMemory) -> Result<Header, RingError> {
    let mut word = [0u32; 1];
    mem.read_words(READINGS.start, &mut word)?;
    let word = word[0];
    if word as u8 != RING_MAGIC {
        return Err(RingError::NoQueue);
    }
    let header = Header {
        oldest: (word >> 8 & 0xF) as usize,
        count: (word >> 12 & 0xF) as usize,
    };
    if header.oldest >= CAPACITY || header.count > CAPACITY {
        return Err(RingError::BadHeader);
    }
    if header_word(mem, header)? != word {
        return Err(RingError::BadChecksum);
    }
    for i in 0..header.count {
        if decode_entry(read_entry(mem, (header.oldest + i) % CAPACITY)?).is_none() {
            return Err(RingError::BadEntry);
        }
    }
    Ok(header)
}

fn write_header(mem: &mut impl RtcMemory, header: Header) -> Result<(), RtcError> {
    let word = header_word(mem, header)?;
    mem.write_words(READINGS.start, &[word])
}

/// The queue of undelivered readings in RTC memory. Stateless: every call reads the header.
pub struct Ring;

impl Ring {
    /// The queued readings, oldest first (at most [`CAPACITY`]).
    ///
    /// # Errors
    /// Why the queue is not usable; it then counts as empty (and [`Ring::push`] starts a new
    /// one).
    pub fn read(mem: &impl RtcMemory) -> Result<heapless::Vec<Entry, CAPACITY>, RingError> {
        let header = read_header(mem)?;
        let mut out = heapless::Vec::new();
        for i in 0..header.count {
            let bytes = read_entry(mem, (header.oldest + i) % CAPACITY)?;
            let entry = decode_entry(bytes).ok_or(RingError::BadEntry)?;
            let _ = out.push(entry);
        }
        Ok(out)
    }

    /// Queues `reading` after the others; when the queue is full the oldest gives way. An
    /// unusable queue is replaced by one holding `reading`. Returns how many readings are
    /// queued now and whether the oldest gave way.
    ///
    /// # Errors
    /// The RTC access failed; what was published before stays readable.
    pub fn push(mem: &mut impl RtcMemory, entry: &Entry) -> Result<(usize, bool), RtcError> {
        let mut header = match read_header(mem) {
            Ok(header) => header,
            Err(RingError::Rtc(e)) => return Err(e),
            Err(_) => {
                // Start afresh: publish an empty queue before reusing any entry.
                let empty = Header {
                    oldest: 0,
                    count: 0,
                };
                write_header(mem, empty)?;
                empty
            }
        };
        let dropped = header.count == CAPACITY;
        if dropped {
            // Retire the oldest first, so its entry can be overwritten safely.
            header = Header {
                oldest: (header.oldest + 1) % CAPACITY,
                count: header.count - 1,
            };
            write_header(mem, header)?;
        }
        let e = entry.reading.encode();
        let words = [
            u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
            u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            entry.taken_s,
        ];
        mem.write_words(
            entry_word((header.oldest + header.count) % CAPACITY),
            &words,
        )?;
        let count = header.count + 1;
        write_header(
            mem,
            Header {
                oldest: header.oldest,
                count,
            },
        )?;
        Ok((count, dropped))
    }

    /// Removes the `n` oldest readings (they were delivered); more than are queued empties it.
    ///
    /// # Errors
    /// The queue was not usable, or the RTC access failed.
    pub fn drop_oldest(mem: &mut impl RtcMemory, n: usize) -> Result<(), RingError> {
        let header = read_header(mem)?;
        let n = n.min(header.count);
        write_header(
            mem,
            Header {
                oldest: (header.oldest + n) % CAPACITY,
                count: header.count - n,
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc_record::{CutRtc, RamRtc, USER_WORDS};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn reading(i: u8) -> Entry {
        Entry {
            reading: plain(i),
            taken_s: 600 * u32::from(i) + 7,
        }
    }

    fn plain(i: u8) -> Reading {
        Reading {
            temperature_centi_c: Some(2150 + i16::from(i)),
            humidity_half_pct: Some(100 + i),
            pressure_deci_hpa: if i.is_multiple_of(3) {
                None
            } else {
                Some(10_132)
            },
            soil_pct: Some(i % 101),
            battery_20mv: if i.is_multiple_of(2) { Some(180) } else { None },
        }
    }

    #[test]
    fn noise_and_zeroes_are_an_empty_queue() {
        for fill in [0, u32::MAX, 0xA7A7_A7A7, 0x0000_00A7] {
            let mem = RamRtc::filled(fill);
            assert!(Ring::read(&mem).is_err(), "{fill:#x}");
        }
    }

    #[test]
    fn readings_come_back_oldest_first_and_the_oldest_gives_way() {
        let mut mem = RamRtc::filled(0x5A5A_5A5A);
        for i in 0..CAPACITY as u8 {
            let pushed = Ring::push(&mut mem, &reading(i)).expect("push");
            assert_eq!(pushed, (usize::from(i) + 1, false));
            assert_eq!(
                Ring::read(&mem).expect("queue").last().map(|e| e.taken_s),
                Some(600 * u32::from(i) + 7),
                "its time kept"
            );
        }
        assert_eq!(
            Ring::read(&mem).expect("queue").as_slice(),
            (0..CAPACITY as u8)
                .map(reading)
                .collect::<Vec<_>>()
                .as_slice()
        );
        assert_eq!(
            Ring::push(&mut mem, &reading(CAPACITY as u8)).expect("push"),
            (CAPACITY, true),
            "full: one dropped"
        );
        let queued = Ring::read(&mem).expect("queue");
        assert_eq!(queued.first(), Some(&reading(1)));
        assert_eq!(queued.last(), Some(&reading(CAPACITY as u8)));
        Ring::drop_oldest(&mut mem, 4).expect("delivered");
        assert_eq!(Ring::read(&mem).expect("queue").first(), Some(&reading(5)));
        Ring::drop_oldest(&mut mem, 100).expect("delivered");
        assert!(Ring::read(&mem).expect("queue").is_empty());
    }

    #[test]
    fn only_its_own_words_are_touched() {
        let mut mem = RamRtc::filled(0x1234_5678);
        for i in 0..20 {
            Ring::push(&mut mem, &reading(i)).expect("push");
        }
        Ring::drop_oldest(&mut mem, 3).expect("drop");
        for (w, word) in mem.words.iter().enumerate().take(USER_WORDS) {
            if !READINGS.contains(&w) {
                assert_eq!(*word, 0x1234_5678, "word {w}");
            }
        }
    }

    #[test]
    fn a_push_cut_after_any_word_leaves_the_old_queue_or_the_new_one() {
        for before in [0usize, 3, CAPACITY] {
            let mut base = RamRtc::filled(0xDEAD_BEEF);
            for i in 0..before as u8 {
                Ring::push(&mut base, &reading(i)).expect("push");
            }
            let old = Ring::read(&base).ok().unwrap_or_default();
            let mut full = base.clone();
            Ring::push(&mut full, &reading(42)).expect("push");
            let new = Ring::read(&full).expect("new queue");
            for cut in 0..8 {
                let mut mem = CutRtc {
                    mem: base.clone(),
                    budget: cut,
                    writes: 0,
                };
                Ring::push(&mut mem, &reading(42)).expect("push");
                let seen = Ring::read(&mem.mem).ok().unwrap_or_default();
                // A full queue may also show the intermediate state: the oldest retired.
                let retired: Vec<Entry> = old.iter().skip(1).copied().collect();
                assert!(
                    seen == old
                        || seen == new
                        || (before == CAPACITY && seen.as_slice() == retired.as_slice()),
                    "before {before}, cut after {cut} writes: {seen:?}"
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_published_queue_empties_it() {
        let mut mem = RamRtc::filled(0);
        for i in 0..5 {
            Ring::push(&mut mem, &reading(i)).expect("push");
        }
        let header = read_header(&mem).expect("valid");
        let published: Vec<usize> = core::iter::once(READINGS.start)
            .chain((0..header.count).flat_map(|i| {
                let w = entry_word((header.oldest + i) % CAPACITY);
                [w, w + 1, w + 2]
            }))
            .collect();
        for &word in &published {
            for bit in 0..32 {
                let mut flipped = mem.clone();
                flipped.words[word] ^= 1 << bit;
                assert!(
                    Ring::read(&flipped).is_err(),
                    "bit {bit} of word {word} went unnoticed"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn entries_round_trip_and_decoding_is_canonical(bytes in any::<[u8; 8]>()) {
            if let Some(r) = Reading::decode(bytes) {
                prop_assert_eq!(r.encode(), bytes);
            }
        }

        #[test]
        fn any_reading_in_range_round_trips(
            t in proptest::option::of(any::<i16>()),
            h in proptest::option::of(0u8..=200),
            p in proptest::option::of(any::<u16>()),
            s in proptest::option::of(0u8..=100),
            b in proptest::option::of(any::<u8>()),
        ) {
            let r = Reading {
                temperature_centi_c: t,
                humidity_half_pct: h,
                pressure_deci_hpa: p,
                soil_pct: s,
                battery_20mv: b,
            };
            prop_assert_eq!(Reading::decode(r.encode()), Some(r));
        }

        #[test]
        fn noise_never_panics(words in proptest::collection::vec(any::<u32>(), RING_WORDS)) {
            let mut mem = RamRtc::filled(0);
            mem.words[READINGS].copy_from_slice(&words);
            let _ = Ring::read(&mem);
            let _ = Ring::push(&mut mem, &reading(1));
            prop_assert!(Ring::read(&mem).is_ok());
        }
    }
}
