//! The RTC user area's plan (layout version 2): which words hold what, in one place.
//!
//! RTC user memory is 128 words (512 bytes, SDK blocks 64..192). It survives deep sleep and
//! every reset while powered and loses everything when power is cut; words never written
//! since power-on hold noise. Every region below is validated on its own (magic, lengths,
//! checksum), so noise, a torn write or a region an older firmware never wrote reads as
//! "absent", never as data.
//!
//! | Words    | Bytes | Region | Record and its guarantees |
//! |----------|-------|--------|---------------------------|
//! | 0..32    | 128   | [`WIFI_SLOT_A`] | WiFi record slot A (`rtc_record`, format 1: 108 B used) |
//! | 32..64   | 128   | [`WIFI_SLOT_B`] | WiFi record slot B: A/B with sequence numbers, magic written last, CRC-32 |
//! | 64..66   | 8     | [`BOOT_STATE`] | boot state (`boot::BootState`): one 32-bit word of fields, one of CRC-16 + magic |
//! | 66..68   | 8     | [`WAKE_STATE`] | wake state, for the fast-wake issue (early wake, RF calibration): reserved, never written yet |
//! | 68..88   | 80    | [`SETTINGS_SLOT_A`] | settings slot A, for the report issue: broker (host name or IPv4, port), one 32-byte secret (MQTT password or TLS-PSK key), flags; A/B like the WiFi record, 12-byte header |
//! | 88..108  | 80    | [`SETTINGS_SLOT_B`] | settings slot B |
//! | 108..127 | 76    | [`READINGS`] | undelivered readings (`readings::Ring`): one header word (magic, oldest, count, CRC-16 over the published entries), 9 entries of 8 bytes |
//! | 127..128 | 4     | [`SPARE`] | spare |
//!
//! Version 1 (issues 1-11) used words 0..66 exactly as above and never wrote 66..128, so a
//! version 2 firmware loads a version 1 WiFi record and boot state as they are (the record's
//! own format stays 1), and finds the new regions absent. What gives for the fit: the reading
//! ring holds 9 readings (90 minutes at the 10-minute cycle) in 8 bytes each, at the sensors'
//! useful resolution rather than their full one; the broker's host name is at most 32 bytes;
//! the MQTT user name is the device name, not stored; one secret serves as password or PSK.
//! The 20 unused bytes at the end of each WiFi slot are not reclaimed: moving the slots would
//! break loading version 1 records, and a migration that rewrites them could tear.
//!
//! A DHCP lease has no region of its own: the WiFi record already carries the last lease
//! (`rtc_record::IpConfig`), updated with the reconnect cache.

use core::ops::Range;

use crate::rtc_record::USER_WORDS;

/// The layout this firmware writes.
pub const LAYOUT_VERSION: u16 = 2;

/// WiFi record slot A.
pub const WIFI_SLOT_A: Range<usize> = 0..32;
/// WiFi record slot B.
pub const WIFI_SLOT_B: Range<usize> = 32..64;
/// Boot state.
pub const BOOT_STATE: Range<usize> = 64..66;
/// Wake state (reserved for the fast-wake issue).
pub const WAKE_STATE: Range<usize> = 66..68;
/// Settings slot A (reserved for the report issue).
pub const SETTINGS_SLOT_A: Range<usize> = 68..88;
/// Settings slot B (reserved for the report issue).
pub const SETTINGS_SLOT_B: Range<usize> = 88..108;
/// The reading ring: a header word and its entries.
pub const READINGS: Range<usize> = 108..127;
/// Not used.
pub const SPARE: Range<usize> = 127..128;

/// Every region in word order.
pub const REGIONS: [Range<usize>; 8] = [
    WIFI_SLOT_A,
    WIFI_SLOT_B,
    BOOT_STATE,
    WAKE_STATE,
    SETTINGS_SLOT_A,
    SETTINGS_SLOT_B,
    READINGS,
    SPARE,
];

/// The regions tile the user area exactly: in order, no gap, no overlap, 128 words.
const fn tiles() -> bool {
    let mut next = 0;
    let mut i = 0;
    while i < REGIONS.len() {
        if REGIONS[i].start != next || REGIONS[i].end <= REGIONS[i].start {
            return false;
        }
        next = REGIONS[i].end;
        i += 1;
    }
    next == USER_WORDS
}
const _: () = assert!(tiles());
const _: () = assert!(
    WIFI_SLOT_A.start == crate::rtc_record::SLOT_A
        && WIFI_SLOT_B.start == crate::rtc_record::SLOT_B
        && WIFI_SLOT_B.end - WIFI_SLOT_B.start == crate::rtc_record::SLOT_WORDS
);
const _: () = assert!(BOOT_STATE.end - BOOT_STATE.start == crate::boot::BOOT_STATE_WORDS);
const _: () = assert!(READINGS.end - READINGS.start == crate::readings::RING_WORDS);
