//! Fuzz target: arbitrary RTC words fed to the broker settings' and the report state's
//! decoders.
//!
//! The input becomes the settings region's 37 words and the report state's 4 (little-endian,
//! zero-padded); the first byte's low bit puts the settings magic in place so the deeper
//! checks run. Properties: neither load panics; settings that load are exactly what `store`
//! writes for them (and validate again); a report state that decodes encodes back to the same
//! words; nothing outside the two regions is touched by a store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::report::ReportState;
use ramkey::rtc_layout::{REPORT_STATE, SETTINGS};
use ramkey::rtc_record::RamRtc;
use ramkey::settings;

fuzz_target!(|data: &[u8]| {
    let mut mem = RamRtc::filled(0x3C3C_3C3C);
    let regions = SETTINGS.start..REPORT_STATE.end;
    for (word, chunk) in mem.words[regions.clone()].iter_mut().zip(data.chunks(4)) {
        let mut bytes = [0u8; 4];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u32::from_le_bytes(bytes);
    }
    if data.first().is_some_and(|b| b & 1 == 1) {
        mem.words[SETTINGS.start] = settings::MAGIC;
    }
    let fingerprint = match settings::load(&mem) {
        Ok(found) => {
            let mut again = RamRtc::filled(0x3C3C_3C3C);
            settings::store(&mut again, &found).expect("RAM accepts every write");
            assert_eq!(&again.words[SETTINGS], &mem.words[SETTINGS]);
            for (i, w) in again.words.iter().enumerate() {
                if !SETTINGS.contains(&i) {
                    assert_eq!(*w, 0x3C3C_3C3C, "word {i} outside the settings changed");
                }
            }
            found.fingerprint()
        }
        Err(_) => 0,
    };
    let mut words = [0u32; 4];
    words.copy_from_slice(&mem.words[REPORT_STATE]);
    if let Some(state) = ReportState::decode(words, fingerprint) {
        assert_eq!(state.encode(fingerprint), words);
    }
    let _ = ReportState::load(&mem, fingerprint, Some(5));
});
