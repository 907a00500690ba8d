//! The report's decisions, sans-IO: what one wake publishes, and what it keeps for the next.
//!
//! [`ReportState`] lives in [`crate::rtc_layout::REPORT_STATE`] between wakes: the broker's
//! address from the last lookup (so a warm wake skips DNS), the device clock, when discovery
//! last went out and for which entities, and how many reports failed in a row. It is bound to
//! the broker settings by their CRC ([`crate::settings::BrokerSettings::fingerprint`]), so
//! new settings start from the defaults; a torn write or noise reads as the defaults too,
//! which cost one lookup and one discovery round, never a wrong broker.
//!
//! [`Plan`]: the messages of one report, in order: the discovery configs when due (the
//! entities are new or changed, or a day has passed: retained messages get lost when a broker
//! is rebuilt), the queued readings older than the newest on the history topic (oldest
//! first), and the newest as the retained state.
//!
//! Back-off: a failed report (no address, no connection, a refused login, no PUBACK within
//! the budget) keeps every reading and sleeps the report period doubled per failure in a row,
//! capped at an hour; it never opens setup and never touches the WiFi record.
//!
//! # State (4 words)
//!
//! | Word | Field |
//! |------|-------|
//! | 0 | broker IPv4 address, network order as bytes (0: none cached) |
//! | 1 | device clock at this boot, seconds |
//! | 2 | device clock when discovery last went out |
//! | 3 | bits 0..4 `0xA` (marker), 4..9 entities announced (0: never), 9..13 failures in a row, 13..16 zero, 16..32 CRC-16/IBM-3740 of words 0..2, the low half of word 3 and the settings' CRC-32 |
//!
//! The device clock counts what the firmware programmed and measured: each sleep adds its
//! length and the time awake before it. It is not wall time (the chip has none across deep
//! sleep) and drifts with the RTC oscillator, a few percent (the fast-wake issue measures
//! it); reading times are relative to it.

#![forbid(unsafe_code)]

use crc::{CRC_16_IBM_3740, Crc, NoTable};

use crate::rtc_layout::REPORT_STATE;
use crate::rtc_record::{RtcError, RtcMemory};

/// Seconds after which discovery goes out again even when nothing changed.
pub const REDISCOVER_S: u32 = 86_400;
/// Longest back-off sleep.
pub const BACKOFF_CAP_S: u32 = 3600;
/// Most failures counted (the back-off is capped long before).
const MAX_FAILURES: u8 = 15;
const MARKER: u32 = 0xA;

const CRC16: Crc<u16, NoTable> = Crc::<u16, NoTable>::new(&CRC_16_IBM_3740);

const _: () = assert!(REPORT_STATE.end - REPORT_STATE.start == 4);

/// What the report keeps between wakes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportState {
    /// The broker's address from the last lookup.
    pub broker_ip: Option<[u8; 4]>,
    /// The device clock at the start of this boot, seconds.
    pub clock_s: u32,
    /// The device clock when discovery last went out.
    pub discovered_at_s: u32,
    /// The entities (bits in [`crate::discovery::ENTITIES`] order) last announced; 0: never.
    pub announced: u8,
    /// Reports that failed in a row.
    pub failures: u8,
}

impl ReportState {
    fn low(&self) -> u32 {
        MARKER | u32::from(self.announced & 0x1F) << 4 | u32::from(self.failures & 0xF) << 9
    }

    fn crc(&self, fingerprint: u32) -> u16 {
        let mut digest = CRC16.digest();
        digest.update(&u32::from_le_bytes(self.broker_ip.unwrap_or([0; 4])).to_le_bytes());
        digest.update(&self.clock_s.to_le_bytes());
        digest.update(&self.discovered_at_s.to_le_bytes());
        digest.update(&(self.low() as u16).to_le_bytes());
        digest.update(&fingerprint.to_le_bytes());
        digest.finalize()
    }

    /// The four words, bound to the settings with this fingerprint.
    pub fn encode(&self, fingerprint: u32) -> [u32; 4] {
        [
            u32::from_le_bytes(self.broker_ip.unwrap_or([0; 4])),
            self.clock_s,
            self.discovered_at_s,
            self.low() | u32::from(self.crc(fingerprint)) << 16,
        ]
    }

    /// The state the words hold for these settings, if they validate.
    pub fn decode(words: [u32; 4], fingerprint: u32) -> Option<ReportState> {
        let flags = words[3];
        if flags & 0xF != MARKER || flags >> 13 & 0x7 != 0 {
            return None;
        }
        let state = ReportState {
            broker_ip: (words[0] != 0).then(|| words[0].to_le_bytes()),
            clock_s: words[1],
            discovered_at_s: words[2],
            announced: (flags >> 4 & 0x1F) as u8,
            failures: (flags >> 9 & 0xF) as u8,
        };
        (u32::from(state.crc(fingerprint)) == flags >> 16).then_some(state)
    }

    /// The state in RTC memory; the defaults when it does not validate, with the clock
    /// continued from the newest queued reading (`newest_s`) so queued times stay ordered.
    pub fn load(
        mem: &impl RtcMemory,
        fingerprint: u32,
        newest_s: Option<u32>,
    ) -> Result<(ReportState, bool), RtcError> {
        let mut words = [0u32; 4];
        mem.read_words(REPORT_STATE.start, &mut words)?;
        Ok(match ReportState::decode(words, fingerprint) {
            Some(state) => (state, true),
            None => (
                ReportState {
                    clock_s: newest_s.map_or(0, |t| t.saturating_add(1)),
                    ..ReportState::default()
                },
                false,
            ),
        })
    }

    /// Writes the state (four words; a cut write reads as the defaults next wake).
    pub fn store(&self, mem: &mut impl RtcMemory, fingerprint: u32) -> Result<(), RtcError> {
        mem.write_words(REPORT_STATE.start, &self.encode(fingerprint))
    }

    /// Whether this report must carry discovery for `entities` at device time `now_s`.
    pub fn discovery_due(&self, entities: u8, now_s: u32) -> bool {
        self.announced != entities || now_s.wrapping_sub(self.discovered_at_s) >= REDISCOVER_S
    }

    /// A report went through: the address worked, the failures are over; `announced` is the
    /// entity set when it carried discovery.
    pub fn succeeded(&mut self, ip: [u8; 4], announced: Option<u8>, now_s: u32) {
        self.broker_ip = Some(ip);
        self.failures = 0;
        if let Some(entities) = announced {
            self.announced = entities;
            self.discovered_at_s = now_s;
        }
    }

    /// A report failed; `forget_address` when the cached address itself may be the cause (no
    /// connection to it), so the next wake looks the name up again.
    pub fn failed(&mut self, forget_address: bool) {
        self.failures = (self.failures + 1).min(MAX_FAILURES);
        if forget_address {
            self.broker_ip = None;
        }
    }

    /// How long to sleep after this report: the period, or the back-off after failures (the
    /// period doubled per failure in a row, capped at an hour, never below the period).
    pub fn sleep_s(&self, period_s: u32) -> u32 {
        if self.failures == 0 {
            return period_s;
        }
        let doubled = period_s.saturating_mul(1 << (self.failures - 1).min(12));
        doubled.min(BACKOFF_CAP_S).max(period_s)
    }

    /// Advances the clock past this boot: `awake_s` since it started, then `sleep_s`.
    pub fn advance(&mut self, awake_s: u32, sleep_s: u32) {
        self.clock_s = self.clock_s.wrapping_add(awake_s).wrapping_add(sleep_s);
    }
}

/// One message of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publication {
    /// The retained discovery config of entity `i` of [`crate::discovery::ENTITIES`].
    Config(usize),
    /// Queued reading `i` (oldest first) on the history topic.
    History(usize),
    /// The newest reading as the retained state.
    State,
}

/// The messages of one report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Entities announced this time (0: no discovery).
    pub discovery: u8,
    /// Readings queued, the newest included.
    pub queued: usize,
}

impl Plan {
    /// How many messages.
    pub fn total(&self) -> usize {
        self.discovery.count_ones() as usize + self.queued.saturating_sub(1) + 1
    }

    /// Message `i` (configs, then history oldest first, then the state).
    pub fn get(&self, i: usize) -> Option<Publication> {
        let configs = self.discovery.count_ones() as usize;
        if i < configs {
            let entity = (0..8).filter(|b| self.discovery & 1 << b != 0).nth(i)?;
            return Some(Publication::Config(entity));
        }
        let history = self.queued.saturating_sub(1);
        match i - configs {
            k if k < history => Some(Publication::History(k)),
            k if k == history => Some(Publication::State),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc_record::RamRtc;
    use proptest::prelude::*;

    const PRINT: u32 = 0x1234_5678;

    #[test]
    fn state_round_trips_and_is_bound_to_the_settings() {
        let state = ReportState {
            broker_ip: Some([192, 168, 1, 20]),
            clock_s: 123_456,
            discovered_at_s: 100_000,
            announced: 0b11111,
            failures: 3,
        };
        let mut mem = RamRtc::filled(0x5A5A_5A5A);
        state.store(&mut mem, PRINT).expect("stored");
        assert_eq!(ReportState::load(&mem, PRINT, None), Ok((state, true)));
        let (other, valid) = ReportState::load(&mem, PRINT ^ 1, Some(900)).expect("read");
        assert!(!valid, "other settings");
        assert_eq!(other.broker_ip, None);
        assert_eq!(other.clock_s, 901, "continues after the newest reading");
        assert!(other.discovery_due(0b11111, 901));
        assert!(
            !ReportState::load(&RamRtc::filled(0), PRINT, None)
                .expect("read")
                .1
        );
    }

    #[test]
    fn discovery_goes_out_when_new_changed_or_a_day_old() {
        let mut state = ReportState::default();
        assert!(state.discovery_due(0b11111, 0), "new");
        state.succeeded([10, 0, 0, 1], Some(0b11111), 50);
        assert!(!state.discovery_due(0b11111, 50 + REDISCOVER_S - 1));
        assert!(state.discovery_due(0b11111, 50 + REDISCOVER_S), "a day");
        assert!(state.discovery_due(0b01000, 60), "the sensor set changed");
    }

    #[test]
    fn back_off_doubles_from_the_period_up_to_an_hour() {
        let mut state = ReportState::default();
        assert_eq!(state.sleep_s(600), 600);
        let mut seen = std::vec::Vec::new();
        for _ in 0..20 {
            state.failed(false);
            seen.push(state.sleep_s(600));
        }
        assert_eq!(&seen[..4], &[600, 1200, 2400, 3600]);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]) && seen[19] == 3600);
        assert_eq!(state.failures, 15);
        assert_eq!(state.broker_ip, None);
        state.succeeded([1, 2, 3, 4], None, 0);
        assert_eq!(state.sleep_s(600), 600);
        state.failed(true);
        assert_eq!(state.broker_ip, None, "a dead address is forgotten");
        state.failures = 15;
        assert_eq!(state.sleep_s(3600), 3600);
        assert_eq!(state.sleep_s(60), 3600);
    }

    #[test]
    fn a_plan_lists_configs_history_then_state() {
        let plan = Plan {
            discovery: 0b10011,
            queued: 3,
        };
        let all: std::vec::Vec<_> = (0..plan.total()).map(|i| plan.get(i)).collect();
        assert_eq!(
            all,
            [
                Some(Publication::Config(0)),
                Some(Publication::Config(1)),
                Some(Publication::Config(4)),
                Some(Publication::History(0)),
                Some(Publication::History(1)),
                Some(Publication::State),
            ]
        );
        assert_eq!(plan.get(plan.total()), None);
        let warm = Plan {
            discovery: 0,
            queued: 1,
        };
        assert_eq!(warm.total(), 1);
        assert_eq!(warm.get(0), Some(Publication::State));
    }

    proptest! {
        #[test]
        fn any_words_decode_as_a_state_that_encodes_back_or_not_at_all(
            words in any::<[u32; 4]>()
        ) {
            if let Some(state) = ReportState::decode(words, PRINT) {
                prop_assert_eq!(state.encode(PRINT), words);
            }
        }

        #[test]
        fn a_flipped_bit_is_noticed(bit in 0..128usize) {
            let state = ReportState {
                broker_ip: Some([10, 1, 2, 3]),
                clock_s: 77,
                discovered_at_s: 5,
                announced: 9,
                failures: 1,
            };
            let mut words = state.encode(PRINT);
            words[bit / 32] ^= 1 << (bit % 32);
            prop_assert_eq!(ReportState::decode(words, PRINT), None);
        }
    }
}
