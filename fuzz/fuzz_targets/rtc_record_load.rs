//! Fuzz target: arbitrary RTC user memory fed to the credential record decoder.
//!
//! The input bytes become the 128 user words (little-endian, zero-padded). Properties:
//! `load` never panics; when it accepts the memory, `store` of what it returned followed by
//! `load` gives the same credentials back, `store` leaves the free words untouched, and
//! `wipe` then leaves no credentials and every slot word zero.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::rtc_record::{self, FREE_WORDS, LoadError, RamRtc, USER_WORDS};

fuzz_target!(|data: &[u8]| {
    let mut mem = RamRtc::filled(0);
    for (word, chunk) in mem.words.iter_mut().zip(data.chunks(4)) {
        let mut bytes = [0u8; 4];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u32::from_le_bytes(bytes);
    }
    // Inputs shorter than the slots would rarely carry the magic word in slot B; let the
    // first input byte's top bits plant it in either slot, so both are explored.
    if let Some(&first) = data.first() {
        if first & 0x80 != 0 {
            mem.words[rtc_record::SLOT_A] = rtc_record::MAGIC;
        }
        if first & 0x40 != 0 {
            mem.words[rtc_record::SLOT_B] = rtc_record::MAGIC;
        }
    }

    let Ok(credentials) = rtc_record::load(&mem) else {
        return;
    };
    let free_before = mem.words[FREE_WORDS].to_vec();
    rtc_record::store(&mut mem, &credentials).expect("a loaded record can be stored again");
    assert_eq!(rtc_record::load(&mem), Ok(credentials), "store + load must round-trip");
    assert_eq!(mem.words[FREE_WORDS], free_before[..], "store touched the free words");

    rtc_record::wipe(&mut mem).expect("RAM accepts every write");
    assert_eq!(rtc_record::load(&mem), Err(LoadError::Empty));
    assert!(mem.words[..FREE_WORDS.start].iter().all(|&w| w == 0));
    assert_eq!(mem.words.len(), USER_WORDS);
});
