//! The RTC user area's plan (layout version 3): which words hold what, in one place.
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
//! | 68..105  | 148   | [`SETTINGS`] | broker settings (`settings`): host, port, user name, password, report period; 12-byte header with magic written last and CRC-32; one copy, written by setup before the WiFi record |
//! | 105..109 | 16    | [`REPORT_STATE`] | report state (`report::ReportState`): the broker's cached address, the device clock, discovery and back-off counters, bound to the settings by their CRC; a torn write reads as the defaults |
//! | 109..128 | 76    | [`READINGS`] | undelivered readings (`readings::Ring`): one header word (magic, oldest, count, CRC-16 over the published entries), 6 entries of 12 bytes (a reading and its time) |
//!
//! Version 1 (issues 1-11) used words 0..66 exactly as above and never wrote 66..128, so a
//! later firmware loads a version 1 WiFi record and boot state as they are (the record's own
//! format stays 1), and finds the new regions absent. Version 2 (issue 12) put a nine-entry
//! ring without times at 108..127; its header magic differs from version 3's, so it reads as
//! no queue. What gives for the fit: the reading ring holds 6 readings (an hour at the
//! 10-minute cycle) at the sensors' useful resolution rather than their full one, each with
//! its time; the broker's host name and user name are at
//! most 32 bytes. The settings have one copy, not two: they are written once, by setup,
//! before the WiFi record, so a store cut short leaves no WiFi record either and the device
//! opens setup again; what changes every wake (the report state) is a separate region whose
//! loss only costs a DNS lookup and a discovery round.
//! The 20 unused bytes at the end of each WiFi slot are not reclaimed: moving the slots would
//! break loading version 1 records, and a migration that rewrites them could tear.
//!
//! A DHCP lease has no region of its own: the WiFi record already carries the last lease
//! (`rtc_record::IpConfig`), updated with the reconnect cache.

use core::ops::Range;

use crate::rtc_record::USER_WORDS;

/// The layout this firmware writes.
pub const LAYOUT_VERSION: u16 = 3;

/// WiFi record slot A.
pub const WIFI_SLOT_A: Range<usize> = 0..32;
/// WiFi record slot B.
pub const WIFI_SLOT_B: Range<usize> = 32..64;
/// Boot state.
pub const BOOT_STATE: Range<usize> = 64..66;
/// Wake state (reserved for the fast-wake issue).
pub const WAKE_STATE: Range<usize> = 66..68;
/// Broker settings.
pub const SETTINGS: Range<usize> = 68..105;
/// The report's state between wakes.
pub const REPORT_STATE: Range<usize> = 105..109;
/// The reading ring: a header word and its entries.
pub const READINGS: Range<usize> = 109..128;

/// Every region in word order.
pub const REGIONS: [Range<usize>; 7] = [
    WIFI_SLOT_A,
    WIFI_SLOT_B,
    BOOT_STATE,
    WAKE_STATE,
    SETTINGS,
    REPORT_STATE,
    READINGS,
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
