//! Fuzz target: arbitrary RTC words fed to the reading queue's decoder.
//!
//! The input bytes become the queue's 19 words (little-endian, zero-padded); the first byte
//! doubles as the header's low byte so the magic is often right. Properties: `Ring::read`
//! never panics; a queue it accepts takes one more reading and reads back as before plus that
//! one (the oldest given way if it was full); nothing outside the queue's words changes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::readings::{CAPACITY, Entry, Reading, Ring, RING_MAGIC};
use ramkey::rtc_layout::READINGS;
use ramkey::rtc_record::RamRtc;

fuzz_target!(|data: &[u8]| {
    let mut mem = RamRtc::filled(0x5555_5555);
    for (word, chunk) in mem.words[READINGS].iter_mut().zip(data.chunks(4)) {
        let mut bytes = [0u8; 4];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u32::from_le_bytes(bytes);
    }
    if data.first().is_some_and(|b| b & 1 == 1) {
        mem.words[READINGS.start] = mem.words[READINGS.start] & !0xFF | u32::from(RING_MAGIC);
    }
    let before = Ring::read(&mem);
    let outside: Vec<(usize, u32)> = mem
        .words
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| !READINGS.contains(i))
        .collect();
    let extra = Entry {
        reading: Reading {
            temperature_centi_c: Some(-1234),
            humidity_half_pct: None,
            pressure_deci_hpa: Some(9876),
            soil_pct: Some(55),
            battery_20mv: None,
        },
        taken_s: 0xDEAD_BEEF,
    };
    let (queued, dropped) = Ring::push(&mut mem, &extra).expect("RAM accepts every write");
    let after = Ring::read(&mem).expect("a pushed queue is valid");
    match before {
        Ok(old) => {
            assert_eq!(dropped, old.len() == CAPACITY);
            let kept = &old[usize::from(dropped)..];
            assert_eq!(&after[..after.len() - 1], kept);
        }
        Err(_) => assert_eq!(after.len(), 1),
    }
    assert_eq!(after.last(), Some(&extra));
    assert_eq!(after.len(), queued);
    for (i, w) in outside {
        assert_eq!(mem.words[i], w, "word {i} outside the queue changed");
    }
});
