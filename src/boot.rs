//! Boot decision: from the reset reason, the RTC record and the SDK's flash copy, what this boot does.
//!
//! `user_init` gathers a few facts ([`BootInputs`]), calls [`decide`] once, and carries out the
//! [`BootPlan`] it gets back: wipe the RTC credential record or not, save the new
//! [`BootState`], then one [`Mode`]: scrub the SDK's flash parameter sectors and restart,
//! connect as a station, open setup mode, or deep-sleep for a backoff. After a connection
//! attempt it calls [`after_connect_result`]. Nothing else in the firmware decides any of this.
//! The module is sans-IO: no SDK types, no `unsafe`, no heap; the firmware does the I/O.
//!
//! Guarantees (each one checked by the tests below, most of them exhaustively over every
//! reset reason x record state x flash state x saved boot state):
//! - **No station without a trusted record.** [`Mode::Station`] only comes from a
//!   [`RecordState::Valid`] record after a reset that keeps it ([`ResetReason::trusts_record`]).
//! - **Power-on, external (reset pin) and unknown resets never trust the record**: the plan
//!   always wipes it, and the boot ends in setup mode or in a flash scrub.
//! - **Failures never open setup mode.** Connection failures, and resets in the middle of a
//!   connection attempt, keep the record and end in a deep sleep on the [backoff
//!   schedule](BACKOFF_SCHEDULE_SECONDS); an open setup access point is something a jammer
//!   could otherwise force. Setup opens only without trusted credentials or on an explicit
//!   request (the setup button held at boot, or [`BootState::setup_requested`]).
//! - **Credentials in flash are scrubbed first.** When the flash check runs and the SDK's
//!   stored station configuration holds (or may hold) an SSID or password, the plan is
//!   [`Mode::ScrubAndRestart`] before anything else, unless the attempts are exhausted.
//! - **The scrub is bounded.** Every scrub plan adds one to [`BootState::scrub_attempts`] and
//!   none is planned at [`MAX_SCRUB_ATTEMPTS`]; only a clean flash check (or a power loss,
//!   which erases RTC memory) sets the count back to zero. With an erase that always fails,
//!   a power cycle therefore sees at most [`MAX_SCRUB_ATTEMPTS`] scrub restarts, whatever
//!   reset reasons the SDK reports, then boots normally and reports [`FlashCheck::GaveUp`].
//! - **Garbage never panics**: any RTC words decode to a valid [`BootState`] (the default
//!   when magic or check do not match), any raw reset reason maps to a [`ResetReason`].
//!
//! Must never: call the SDK or touch memory itself, keep credentials (the record is only
//! described by [`RecordState`]), open setup mode because of failures, or plan a restart
//! without counting it in the state it returns.
//!
//! # Reset reasons
//!
//! | Reason ([`ResetReason`])           | Raw | RTC record        | Flash check runs          |
//! |------------------------------------|-----|-------------------|---------------------------|
//! | power-on                           | 0   | wiped, untrusted  | yes                       |
//! | hardware watchdog                  | 1   | trusted           | only after a scrub restart |
//! | exception                          | 2   | trusted           | only after a scrub restart |
//! | software watchdog                  | 3   | trusted           | only after a scrub restart |
//! | soft restart (`system_restart`)    | 4   | trusted           | only after a scrub restart |
//! | deep-sleep wake                    | 5   | trusted           | only after a scrub restart |
//! | external reset (reset pin)         | 6   | wiped, untrusted  | yes                       |
//! | anything else (unknown)            | -   | wiped, untrusted  | yes                       |
//!
//! Crashes (exception, both watchdogs, and the panic handler's `system_restart`) keep the
//! record so that a firmware bug does not strand a garden sensor in setup mode. Power-on and
//! the reset pin are where a new owner, or an older firmware flashed over the serial port,
//! comes in: the record is wiped, and the flash is checked for what that firmware left.
//! "After a scrub restart" means [`BootState::scrub_restart`] is set, whatever the reason:
//! the restart that follows a scrub (normally a soft restart, but also a watchdog that fired
//! during the erase) checks that the erase worked.
//!
//! # Decision table
//!
//! The setup button is first folded into [`BootState::setup_requested`]. Then the first
//! matching row wins ("untrusted" = power-on, external or unknown reset):
//!
//! | # | Condition                                                     | Wipe record    | Mode                                  | Saved state changes                                       |
//! |---|---------------------------------------------------------------|----------------|---------------------------------------|-----------------------------------------------------------|
//! | 1 | flash check runs, flash not clean, scrub attempts < max       | if untrusted   | [`ScrubAndRestart`](Mode::ScrubAndRestart) | attempts + 1, scrub-restart marker set; if wiped: failures 0, attempt marker cleared |
//! | 2 | setup requested (button held now, or flag saved)              | yes            | [`Setup`](Mode::Setup)                | request, failures and attempt marker cleared              |
//! | 3 | reset untrusted                                               | yes            | [`Setup`](Mode::Setup)                | request, failures and attempt marker cleared              |
//! | 4 | record absent or corrupt                                      | yes            | [`Setup`](Mode::Setup)                | request, failures and attempt marker cleared              |
//! | 5 | record valid, connection-attempt marker set (a reset cut it)  | no             | [`BackoffSleep`](Mode::BackoffSleep) for `failures + 1` | failures + 1, attempt marker cleared      |
//! | 6 | record valid                                                  | no             | [`Station`](Mode::Station)            | attempt marker set                                        |
//!
//! Rows 2 to 6 also clear the scrub-restart marker. When the flash check runs and row 1 does
//! not apply, it still updates the state:
//!
//! | Flash ([`FlashState`])           | Scrub attempts | [`FlashCheck`] in the plan   | State change                |
//! |----------------------------------|----------------|------------------------------|-----------------------------|
//! | clean                            | 0              | `Clean`                      | none                        |
//! | clean                            | > 0            | `Scrubbed { attempts }`      | attempts set back to 0      |
//! | holds credentials, or unknown    | < max          | `Erasing { attempt }` (row 1)| see row 1                   |
//! | holds credentials, or unknown    | >= max         | `GaveUp { attempts }`        | none: no scrub until a clean check or a power loss |
//!
//! A flash state that could not be read ([`FlashState::Unknown`]) is scrubbed like one that
//! holds credentials: erasing is harmless (this firmware stores nothing there; the SDK writes
//! fresh defaults at the next boot) and the attempt count bounds the cost.
//!
//! # What the firmware does with a plan
//!
//! 1. Read the inputs: the reset reason ([`ResetReason::from_raw`]), the record
//!    ([`RecordState`]), the SDK's stored station configuration ([`FlashState::classify`],
//!    or [`FlashState::Unknown`] when it cannot be read), the setup button, and the boot
//!    state words ([`BootState::decode`]).
//! 2. `let plan = decide(&inputs)`.
//! 3. If [`BootPlan::wipe_record`], wipe the RTC record.
//! 4. Save [`BootPlan::state`] ([`BootState::encode`]) to its RTC words **before** acting. If
//!    that fails and the mode is [`Mode::ScrubAndRestart`], do not erase: decide again with
//!    `scrub_attempts` set to [`MAX_SCRUB_ATTEMPTS`] (the bound depends on the saved count).
//! 5. Carry out [`BootPlan::mode`]. For a scrub, erase all three SYSTEM_PARAMETER sectors
//!    (keep going if one fails), then `system_restart`. For a station, connect, then call
//!    [`after_connect_result`], save its state and carry out its [`AfterConnect`].
//!
//! To ask for setup mode from a running firmware, set [`BootState::setup_requested`], save
//! the state and restart.
//!
//! # Boot state in RTC memory
//!
//! [`BootState`] is not the credential record: it is two 32-bit words that the firmware keeps
//! in the RTC user area outside the record's slots. They survive deep sleep and every reset,
//! but not a loss of power (then they read as garbage, which decodes to the default).
//!
//! | Word | Bits   | Field                                                           |
//! |------|--------|-----------------------------------------------------------------|
//! | 0    | 0..16  | consecutive connection failures ([`BootState::failures`])       |
//! | 0    | 16..24 | scrub attempts ([`BootState::scrub_attempts`])                  |
//! | 0    | 24     | setup requested                                                 |
//! | 0    | 25     | scrub restart (the next boot follows the scrub's own restart)   |
//! | 0    | 26     | connection attempt in progress                                  |
//! | 0    | 27..32 | reserved, zero                                                  |
//! | 1    | 0..16  | CRC-16/IBM-3740 of word 0 then the magic, little-endian bytes   |
//! | 1    | 16..32 | magic `0xB007` ([`BOOT_STATE_MAGIC`]); a new layout needs a new magic |

#![forbid(unsafe_code)]

use crc::{CRC_16_IBM_3740, Crc, NoTable};

/// Scrub restarts allowed per power cycle before the device gives up and boots normally.
pub const MAX_SCRUB_ATTEMPTS: u8 = 3;

/// Deep-sleep durations after 1, 2, 3, ... consecutive failures, in seconds; the last entry
/// (one hour) repeats for every later failure. A garden sensor with a lost access point
/// retries quickly at first, then about once an hour, and never opens setup mode.
pub const BACKOFF_SCHEDULE_SECONDS: [u32; 7] = [30, 60, 120, 300, 900, 1800, 3600];

/// The longest backoff sleep: one hour.
pub const BACKOFF_CAP_SECONDS: u32 = BACKOFF_SCHEDULE_SECONDS[BACKOFF_SCHEDULE_SECONDS.len() - 1];

/// RTC words that hold an encoded [`BootState`].
pub const BOOT_STATE_WORDS: usize = 2;

/// Upper half of word 1 of every valid encoded [`BootState`].
pub const BOOT_STATE_MAGIC: u16 = 0xB007;

/// Why the chip reset, as the SDK's `rst_info.reason` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ResetReason {
    /// Power applied (`REASON_DEFAULT_RST`). RTC memory is garbage.
    PowerOn = 0,
    /// The hardware watchdog fired (`REASON_WDT_RST`).
    HardwareWatchdog = 1,
    /// A CPU exception (`REASON_EXCEPTION_RST`).
    Exception = 2,
    /// The software watchdog fired (`REASON_SOFT_WDT_RST`).
    SoftwareWatchdog = 3,
    /// `system_restart` (`REASON_SOFT_RESTART`): the firmware's own restart, the flash
    /// scrub's or the panic handler's.
    SoftRestart = 4,
    /// Wake from deep sleep (`REASON_DEEP_SLEEP_AWAKE`).
    DeepSleepWake = 5,
    /// The reset pin (`REASON_EXT_SYS_RST`): a person, or a serial flasher.
    ExternalReset = 6,
    /// A value this firmware does not know (or no reset information at all). Treated like
    /// power-on: the record is not trusted.
    Unknown = u32::MAX,
}

impl ResetReason {
    /// Every variant, in SDK order, unknown last.
    pub const ALL: [ResetReason; 8] = [
        ResetReason::PowerOn,
        ResetReason::HardwareWatchdog,
        ResetReason::Exception,
        ResetReason::SoftwareWatchdog,
        ResetReason::SoftRestart,
        ResetReason::DeepSleepWake,
        ResetReason::ExternalReset,
        ResetReason::Unknown,
    ];

    /// Maps the SDK's raw `rst_info.reason`; any value outside 0..=6 is [`ResetReason::Unknown`].
    pub const fn from_raw(raw: u32) -> ResetReason {
        match raw {
            0 => ResetReason::PowerOn,
            1 => ResetReason::HardwareWatchdog,
            2 => ResetReason::Exception,
            3 => ResetReason::SoftwareWatchdog,
            4 => ResetReason::SoftRestart,
            5 => ResetReason::DeepSleepWake,
            6 => ResetReason::ExternalReset,
            _ => ResetReason::Unknown,
        }
    }

    /// A short lower-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            ResetReason::PowerOn => "power-on",
            ResetReason::HardwareWatchdog => "hardware watchdog",
            ResetReason::Exception => "exception",
            ResetReason::SoftwareWatchdog => "software watchdog",
            ResetReason::SoftRestart => "soft restart",
            ResetReason::DeepSleepWake => "deep-sleep wake",
            ResetReason::ExternalReset => "external reset",
            ResetReason::Unknown => "unknown",
        }
    }

    /// Whether the RTC record survives this reset as trusted: deep-sleep wakes, the firmware's
    /// own restarts, and crashes (exception, watchdogs). Not power-on, the reset pin, or an
    /// unknown reason.
    pub const fn trusts_record(self) -> bool {
        match self {
            ResetReason::HardwareWatchdog
            | ResetReason::Exception
            | ResetReason::SoftwareWatchdog
            | ResetReason::SoftRestart
            | ResetReason::DeepSleepWake => true,
            ResetReason::PowerOn | ResetReason::ExternalReset | ResetReason::Unknown => false,
        }
    }
}

/// What the RTC credential record held when it was loaded at this boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordState {
    /// A record that passed every check.
    Valid,
    /// No record (never stored, or wiped).
    Absent,
    /// Something was there but failed the checks; treated as absent and wiped.
    Corrupt,
}

impl RecordState {
    /// Every variant.
    pub const ALL: [RecordState; 3] = [
        RecordState::Valid,
        RecordState::Absent,
        RecordState::Corrupt,
    ];
}

/// What the station configuration the SDK loaded from its flash parameter block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlashState {
    /// SSID and password are all zero bytes.
    Clean,
    /// Some byte of the SSID or password is not zero: an earlier firmware stored credentials.
    HoldsCredentials,
    /// The configuration could not be read. Scrubbed like [`FlashState::HoldsCredentials`].
    Unknown,
}

impl FlashState {
    /// Every variant.
    pub const ALL: [FlashState; 3] = [
        FlashState::Clean,
        FlashState::HoldsCredentials,
        FlashState::Unknown,
    ];

    /// Classifies the SDK's stored `station_config.ssid` and `.password` fields. Any non-zero
    /// byte counts, also after a terminating zero: a shorter string written over a longer one
    /// can leave the old one's tail behind.
    pub fn classify(ssid: &[u8], password: &[u8]) -> FlashState {
        if ssid.iter().chain(password).all(|&byte| byte == 0) {
            FlashState::Clean
        } else {
            FlashState::HoldsCredentials
        }
    }
}

/// Boot-to-boot state the firmware keeps in [`BOOT_STATE_WORDS`] RTC words (not the credential
/// record). The default is the state after a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BootState {
    /// Consecutive failed connection attempts with the current record (saturates).
    pub failures: u16,
    /// Scrub restarts since the flash was last seen clean (in this power cycle).
    pub scrub_attempts: u8,
    /// Open setup mode at the next boot (set by the firmware on an explicit request).
    pub setup_requested: bool,
    /// The last plan was a scrub: the next boot follows its restart and checks the flash again.
    pub scrub_restart: bool,
    /// A connection attempt started and has not reported through [`after_connect_result`];
    /// at the next boot this means a reset cut it short, which counts as a failure.
    pub connecting: bool,
}

const FLAG_SETUP_REQUESTED: u32 = 1 << 24;
const FLAG_SCRUB_RESTART: u32 = 1 << 25;
const FLAG_CONNECTING: u32 = 1 << 26;
const RESERVED_BITS: u32 = !((1 << 27) - 1);

const CHECK: Crc<u16, NoTable> = Crc::<u16, NoTable>::new(&CRC_16_IBM_3740);

fn check_of(word0: u32) -> u16 {
    let mut digest = CHECK.digest();
    digest.update(&word0.to_le_bytes());
    digest.update(&BOOT_STATE_MAGIC.to_le_bytes());
    digest.finalize()
}

impl BootState {
    /// The RTC words for this state (layout in the module docs).
    pub fn encode(&self) -> [u32; BOOT_STATE_WORDS] {
        let mut word0 = u32::from(self.failures) | (u32::from(self.scrub_attempts) << 16);
        if self.setup_requested {
            word0 |= FLAG_SETUP_REQUESTED;
        }
        if self.scrub_restart {
            word0 |= FLAG_SCRUB_RESTART;
        }
        if self.connecting {
            word0 |= FLAG_CONNECTING;
        }
        [
            word0,
            (u32::from(BOOT_STATE_MAGIC) << 16) | u32::from(check_of(word0)),
        ]
    }

    /// The state these words encode, or `None` if magic, check or reserved bits do not match.
    pub fn try_decode(words: [u32; BOOT_STATE_WORDS]) -> Option<BootState> {
        let [word0, word1] = words;
        let magic_ok = (word1 >> 16) as u16 == BOOT_STATE_MAGIC;
        let check_ok = word1 as u16 == check_of(word0);
        if !magic_ok || !check_ok || word0 & RESERVED_BITS != 0 {
            return None;
        }
        Some(BootState {
            failures: word0 as u16,
            scrub_attempts: (word0 >> 16) as u8,
            setup_requested: word0 & FLAG_SETUP_REQUESTED != 0,
            scrub_restart: word0 & FLAG_SCRUB_RESTART != 0,
            connecting: word0 & FLAG_CONNECTING != 0,
        })
    }

    /// The state these words encode, or the default state for anything else (after a power
    /// loss RTC memory holds garbage). Never panics.
    pub fn decode(words: [u32; BOOT_STATE_WORDS]) -> BootState {
        BootState::try_decode(words).unwrap_or_default()
    }

    /// This state with everything tied to the record forgotten (failures, attempt marker).
    const fn without_record(self) -> BootState {
        BootState {
            failures: 0,
            connecting: false,
            ..self
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BootInputs {
    /// Why the chip reset.
    pub reset_reason: ResetReason,
    /// What the RTC credential record holds.
    pub record: RecordState,
    /// What the SDK's stored station configuration holds. Only looked at when the flash check
    /// runs (see the module docs); any value will do otherwise.
    pub flash: FlashState,
    /// The setup button is held at this boot: an explicit request for setup mode.
    pub setup_button: bool,
    /// The state saved by the previous boot ([`BootState::decode`]).
    pub state: BootState,
}

/// What this boot does after the record and state are taken care of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Erase the three SYSTEM_PARAMETER sectors, then `system_restart`. Nothing else runs.
    ScrubAndRestart,
    /// Connect with the record, then report through [`after_connect_result`].
    Station {
        /// Consecutive failures before this attempt (0 normally); for logs, and a hint that a
        /// fast-reconnect cache may be stale.
        previous_failures: u16,
    },
    /// Open setup mode to receive new credentials.
    Setup,
    /// Deep-sleep this long, then try again (the record is kept).
    BackoffSleep {
        /// Sleep duration in microseconds, as `system_deep_sleep` takes it.
        micros: u64,
    },
}

impl Mode {
    /// A short lower-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::ScrubAndRestart => "scrub flash and restart",
            Mode::Station { .. } => "station",
            Mode::Setup => "setup",
            Mode::BackoffSleep { .. } => "backoff sleep",
        }
    }
}

/// What the flash check found this boot (for logs; the decision is already in [`Mode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlashCheck {
    /// No check: a trusted reset that does not follow a scrub.
    NotChecked,
    /// The stored configuration is clean; no scrub was needed.
    Clean,
    /// The stored configuration is clean after this many scrub attempts.
    Scrubbed {
        /// Scrub attempts it took.
        attempts: u8,
    },
    /// The plan scrubs: this is attempt number `attempt` (1..=[`MAX_SCRUB_ATTEMPTS`]).
    Erasing {
        /// Which attempt this is.
        attempt: u8,
    },
    /// Credentials may still be in flash, but the attempts are used up: booting normally.
    GaveUp {
        /// Scrub attempts made.
        attempts: u8,
    },
}

/// The decision for one boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BootPlan {
    /// Wipe the RTC credential record before anything else.
    pub wipe_record: bool,
    /// What the boot does.
    pub mode: Mode,
    /// The state to save to RTC memory before carrying out `mode`.
    pub state: BootState,
    /// What the flash check found.
    pub flash_check: FlashCheck,
}

/// Whether this boot looks at the SDK's parameter area: at untrusted resets, and after a
/// scrub's own restart. When it does not, [`decide`] ignores [`BootInputs::flash`], so a
/// caller may skip reading flash (a warm wake, ramkey's most frequent boot, then reads none).
pub fn flash_check_runs(reason: ResetReason, state: &BootState) -> bool {
    !reason.trusts_record() || state.scrub_restart
}

/// Decides what this boot does (the decision table is in the module docs).
///
/// ```
/// use ramkey::boot::{decide, BootInputs, BootState, FlashState, Mode, RecordState, ResetReason};
///
/// let plan = decide(&BootInputs {
///     reset_reason: ResetReason::DeepSleepWake,
///     record: RecordState::Valid,
///     flash: FlashState::Clean,
///     setup_button: false,
///     state: BootState::default(),
/// });
/// assert_eq!(plan.mode, Mode::Station { previous_failures: 0 });
/// assert!(!plan.wipe_record);
/// ```
pub fn decide(inputs: &BootInputs) -> BootPlan {
    let trusted = inputs.reset_reason.trusts_record();
    let mut state = inputs.state;
    state.setup_requested |= inputs.setup_button;

    let mut flash_check = FlashCheck::NotChecked;
    if flash_check_runs(inputs.reset_reason, &inputs.state) {
        match inputs.flash {
            FlashState::Clean => {
                flash_check = if state.scrub_attempts == 0 {
                    FlashCheck::Clean
                } else {
                    FlashCheck::Scrubbed {
                        attempts: state.scrub_attempts,
                    }
                };
                state.scrub_attempts = 0;
            }
            FlashState::HoldsCredentials | FlashState::Unknown => {
                if state.scrub_attempts < MAX_SCRUB_ATTEMPTS {
                    // Row 1. The record is wiped now if untrusted: after the scrub's soft
                    // restart it would otherwise look trusted.
                    state.scrub_attempts += 1;
                    state.scrub_restart = true;
                    if !trusted {
                        state = state.without_record();
                    }
                    return BootPlan {
                        wipe_record: !trusted,
                        mode: Mode::ScrubAndRestart,
                        state,
                        flash_check: FlashCheck::Erasing {
                            attempt: state.scrub_attempts,
                        },
                    };
                }
                flash_check = FlashCheck::GaveUp {
                    attempts: state.scrub_attempts,
                };
            }
        }
    }
    state.scrub_restart = false;

    // Rows 2, 3, 4: setup mode, always from a wiped record.
    if state.setup_requested || !trusted || inputs.record != RecordState::Valid {
        state = BootState {
            setup_requested: false,
            ..state.without_record()
        };
        return BootPlan {
            wipe_record: true,
            mode: Mode::Setup,
            state,
            flash_check,
        };
    }

    // Row 5: a reset cut the last connection attempt short; it counts as a failure.
    if state.connecting {
        state.connecting = false;
        state.failures = state.failures.saturating_add(1);
        let micros = backoff_micros(state.failures);
        return BootPlan {
            wipe_record: false,
            mode: Mode::BackoffSleep { micros },
            state,
            flash_check,
        };
    }

    // Row 6.
    let previous_failures = state.failures;
    state.connecting = true;
    BootPlan {
        wipe_record: false,
        mode: Mode::Station { previous_failures },
        state,
        flash_check,
    }
}

/// What the firmware does after a connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AfterConnect {
    /// Connected: run the application.
    Online,
    /// Not connected: deep-sleep this long, keeping the record; the wake retries.
    BackoffSleep {
        /// Sleep duration in microseconds, as `system_deep_sleep` takes it.
        micros: u64,
    },
}

/// The result of [`after_connect_result`]: the state to save, then what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectPlan {
    /// The state to save to RTC memory before acting.
    pub state: BootState,
    /// What to do next.
    pub next: AfterConnect,
}

/// The next step after a connection attempt that [`Mode::Station`] started.
///
/// Success sets the failure count back to zero. Failure adds one and sleeps for
/// [`backoff_micros`] of the new count. Either way the record is kept (there is nothing here
/// that could wipe it) and setup mode is never opened.
pub fn after_connect_result(state: BootState, success: bool) -> ConnectPlan {
    let state = BootState {
        connecting: false,
        ..state
    };
    if success {
        ConnectPlan {
            state: BootState {
                failures: 0,
                ..state
            },
            next: AfterConnect::Online,
        }
    } else {
        let failures = state.failures.saturating_add(1);
        ConnectPlan {
            state: BootState { failures, ..state },
            next: AfterConnect::BackoffSleep {
                micros: backoff_micros(failures),
            },
        }
    }
}

/// The deep-sleep duration after `failures` consecutive failures, in microseconds:
/// [`BACKOFF_SCHEDULE_SECONDS`]`[failures - 1]`, capped at [`BACKOFF_CAP_SECONDS`]
/// (0 failures gives the first entry). Never decreases as `failures` grows.
pub const fn backoff_micros(failures: u16) -> u64 {
    let last = BACKOFF_SCHEDULE_SECONDS.len() - 1;
    let index = failures.saturating_sub(1) as usize;
    let index = if index > last { last } else { index };
    BACKOFF_SCHEDULE_SECONDS[index] as u64 * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const UNTRUSTED: [ResetReason; 3] = [
        ResetReason::PowerOn,
        ResetReason::ExternalReset,
        ResetReason::Unknown,
    ];

    fn inputs(
        reason: ResetReason,
        record: RecordState,
        flash: FlashState,
        state: BootState,
    ) -> BootInputs {
        BootInputs {
            reset_reason: reason,
            record,
            flash,
            setup_button: false,
            state,
        }
    }

    /// Every saved state the exhaustive tests use: failures at the edges of the schedule and
    /// of the counter, scrub attempts 0..=MAX+1 and a wild value, every flag combination.
    fn interesting_states() -> Vec<BootState> {
        let failures = [0, 1, 2, 6, 7, 8, 1000, u16::MAX - 1, u16::MAX];
        let mut scrubs: Vec<u8> = (0..=MAX_SCRUB_ATTEMPTS + 1).collect();
        scrubs.push(u8::MAX);
        let mut states = Vec::new();
        for &failures in &failures {
            for &scrub_attempts in &scrubs {
                for flags in 0..8u8 {
                    states.push(BootState {
                        failures,
                        scrub_attempts,
                        setup_requested: flags & 1 != 0,
                        scrub_restart: flags & 2 != 0,
                        connecting: flags & 4 != 0,
                    });
                }
            }
        }
        states
    }

    fn every_input() -> Vec<BootInputs> {
        let mut all = Vec::new();
        for reason in ResetReason::ALL {
            for record in RecordState::ALL {
                for flash in FlashState::ALL {
                    for setup_button in [false, true] {
                        for state in interesting_states() {
                            all.push(BootInputs {
                                reset_reason: reason,
                                record,
                                flash,
                                setup_button,
                                state,
                            });
                        }
                    }
                }
            }
        }
        all
    }

    /// The documented decision table, evaluated independently of `decide`'s code: the row
    /// number (1..=6) that applies to these inputs.
    fn table_row(i: &BootInputs) -> u8 {
        let trusted = i.reset_reason.trusts_record();
        let check_runs = !trusted || i.state.scrub_restart;
        let requested = i.setup_button || i.state.setup_requested;
        if check_runs && i.flash != FlashState::Clean && i.state.scrub_attempts < MAX_SCRUB_ATTEMPTS
        {
            1
        } else if requested {
            2
        } else if !trusted {
            3
        } else if i.record != RecordState::Valid {
            4
        } else if i.state.connecting {
            5
        } else {
            6
        }
    }

    #[test]
    fn raw_reset_reasons_map_to_the_sdk_values_and_the_rest_to_unknown() {
        for (raw, reason) in ResetReason::ALL[..7].iter().enumerate() {
            assert_eq!(ResetReason::from_raw(raw as u32), *reason);
            assert_eq!(*reason as u32, raw as u32);
        }
        for raw in [7, 8, 255, 0x8000_0000, u32::MAX] {
            assert_eq!(ResetReason::from_raw(raw), ResetReason::Unknown);
        }
        assert!(!ResetReason::from_raw(7).trusts_record());
        let names: Vec<&str> = ResetReason::ALL.iter().map(|r| r.name()).collect();
        for (i, name) in names.iter().enumerate() {
            assert!(
                !name.is_empty() && !names[..i].contains(name),
                "names must be distinct"
            );
        }
    }

    #[test]
    fn trust_policy_is_the_issues() {
        for reason in UNTRUSTED {
            assert!(!reason.trusts_record(), "{reason:?}");
        }
        let trusted: Vec<ResetReason> = ResetReason::ALL
            .into_iter()
            .filter(|r| r.trusts_record())
            .collect();
        assert_eq!(
            trusted,
            [
                ResetReason::HardwareWatchdog,
                ResetReason::Exception,
                ResetReason::SoftwareWatchdog,
                ResetReason::SoftRestart,
                ResetReason::DeepSleepWake,
            ]
        );
    }

    /// Every reset reason x record x flash x button x saved state: the plan is exactly the
    /// documented table's row, and every invariant the issue asks for holds.
    #[test]
    fn exhaustive_decision_matches_table_and_invariants() {
        let all = every_input();
        assert!(all.len() > 50_000);
        for i in &all {
            let plan = decide(i);
            let trusted = i.reset_reason.trusts_record();
            let check_runs = !trusted || i.state.scrub_restart;
            let requested = i.setup_button || i.state.setup_requested;
            let s = plan.state;
            let context = std::format!("{i:?} -> {plan:?}");

            // The table, row by row.
            match table_row(i) {
                1 => {
                    assert_eq!(plan.mode, Mode::ScrubAndRestart, "{context}");
                    assert_eq!(plan.wipe_record, !trusted, "{context}");
                    assert_eq!(s.scrub_attempts, i.state.scrub_attempts + 1, "{context}");
                    assert!(s.scrub_restart, "{context}");
                    assert_eq!(
                        s.setup_requested, requested,
                        "a request survives the scrub: {context}"
                    );
                    assert_eq!(
                        plan.flash_check,
                        FlashCheck::Erasing {
                            attempt: s.scrub_attempts
                        },
                        "{context}"
                    );
                    if trusted {
                        assert_eq!(
                            (s.failures, s.connecting),
                            (i.state.failures, i.state.connecting),
                            "{context}"
                        );
                    } else {
                        assert_eq!((s.failures, s.connecting), (0, false), "{context}");
                    }
                }
                2..=4 => {
                    assert_eq!(plan.mode, Mode::Setup, "{context}");
                    assert!(plan.wipe_record, "{context}");
                    assert!(
                        !s.setup_requested && !s.connecting && s.failures == 0,
                        "{context}"
                    );
                }
                5 => {
                    let failures = i.state.failures.saturating_add(1);
                    assert_eq!(
                        plan.mode,
                        Mode::BackoffSleep {
                            micros: backoff_micros(failures)
                        },
                        "{context}"
                    );
                    assert!(
                        !plan.wipe_record && !s.connecting && s.failures == failures,
                        "{context}"
                    );
                }
                _ => {
                    assert_eq!(
                        plan.mode,
                        Mode::Station {
                            previous_failures: i.state.failures
                        },
                        "{context}"
                    );
                    assert!(
                        !plan.wipe_record && s.connecting && s.failures == i.state.failures,
                        "{context}"
                    );
                }
            }

            // Never Station without a valid, trusted record that is kept.
            if let Mode::Station { .. } = plan.mode {
                assert!(
                    trusted && i.record == RecordState::Valid && !plan.wipe_record && !requested,
                    "{context}"
                );
            }
            // Power-on, external and unknown resets never trust the record.
            if !trusted {
                assert!(plan.wipe_record, "{context}");
                assert!(
                    matches!(plan.mode, Mode::Setup | Mode::ScrubAndRestart),
                    "{context}"
                );
            }
            // A wiped record is never used in the same boot.
            if plan.wipe_record {
                assert!(
                    !matches!(plan.mode, Mode::Station { .. } | Mode::BackoffSleep { .. }),
                    "{context}"
                );
            }
            // Credentials in flash are scrubbed first unless the attempts are used up, and a
            // scrub happens for no other reason.
            let dirty = check_runs && i.flash != FlashState::Clean;
            assert_eq!(
                plan.mode == Mode::ScrubAndRestart,
                dirty && i.state.scrub_attempts < MAX_SCRUB_ATTEMPTS,
                "{context}"
            );
            if dirty && i.state.scrub_attempts >= MAX_SCRUB_ATTEMPTS {
                assert_eq!(
                    plan.flash_check,
                    FlashCheck::GaveUp {
                        attempts: i.state.scrub_attempts
                    },
                    "{context}"
                );
            }
            // The scrub count only grows by a scrub plan, by exactly one, never past the max.
            if plan.mode == Mode::ScrubAndRestart {
                assert!(s.scrub_attempts <= MAX_SCRUB_ATTEMPTS, "{context}");
            } else {
                assert!(s.scrub_attempts <= i.state.scrub_attempts, "{context}");
                assert!(
                    !s.scrub_restart,
                    "only a scrub plan marks its restart: {context}"
                );
            }
            // Without a check the flash state is ignored and nothing is reported.
            if !check_runs {
                assert_eq!(plan.flash_check, FlashCheck::NotChecked, "{context}");
                for flash in FlashState::ALL {
                    assert_eq!(decide(&BootInputs { flash, ..*i }), plan, "{context}");
                }
            }
            // Failures never open setup: with a valid trusted record and no request, no
            // failure count or cut attempt leads anywhere but station or backoff (or a scrub).
            if trusted && i.record == RecordState::Valid && !requested {
                assert!(plan.mode != Mode::Setup, "{context}");
            }
            // Setup opens only without trusted credentials or on request.
            if plan.mode == Mode::Setup {
                assert!(
                    !trusted || i.record != RecordState::Valid || requested,
                    "{context}"
                );
            }
            // Backoff sleeps are on the schedule.
            if let Mode::BackoffSleep { micros } = plan.mode {
                assert!(
                    micros <= u64::from(BACKOFF_CAP_SECONDS) * 1_000_000,
                    "{context}"
                );
                assert!(
                    BACKOFF_SCHEDULE_SECONDS
                        .iter()
                        .any(|&sec| u64::from(sec) * 1_000_000 == micros)
                );
            }
            // The attempt marker is set exactly when an attempt starts.
            assert_eq!(
                s.connecting,
                matches!(plan.mode, Mode::Station { .. })
                    || (plan.mode == Mode::ScrubAndRestart && trusted && i.state.connecting),
                "{context}"
            );
            // The saved state always survives the trip through RTC words.
            assert_eq!(BootState::try_decode(s.encode()), Some(s), "{context}");
        }
    }

    /// Hand-written examples, one or more per documented row, with the full expected plan.
    #[test]
    fn documented_rows_by_example() {
        let fresh = BootState::default();
        // Row 1: power-on after an older firmware, record wiped before the restart.
        let plan = decide(&inputs(
            ResetReason::PowerOn,
            RecordState::Valid,
            FlashState::HoldsCredentials,
            fresh,
        ));
        assert_eq!(
            plan,
            BootPlan {
                wipe_record: true,
                mode: Mode::ScrubAndRestart,
                state: BootState {
                    scrub_attempts: 1,
                    scrub_restart: true,
                    ..fresh
                },
                flash_check: FlashCheck::Erasing { attempt: 1 },
            }
        );
        // Row 1 after the scrub's own restart: the erase did not take, trusted record kept.
        let after = BootState {
            scrub_attempts: 1,
            scrub_restart: true,
            ..fresh
        };
        let plan = decide(&inputs(
            ResetReason::SoftRestart,
            RecordState::Valid,
            FlashState::Unknown,
            after,
        ));
        assert_eq!(
            (plan.wipe_record, plan.mode),
            (false, Mode::ScrubAndRestart)
        );
        assert_eq!(plan.state.scrub_attempts, 2);
        // Scrub worked: attempts back to zero, absent record -> setup.
        let plan = decide(&inputs(
            ResetReason::SoftRestart,
            RecordState::Absent,
            FlashState::Clean,
            after,
        ));
        assert_eq!(
            plan,
            BootPlan {
                wipe_record: true,
                mode: Mode::Setup,
                state: fresh,
                flash_check: FlashCheck::Scrubbed { attempts: 1 },
            }
        );
        // Row 2: the button at a deep-sleep wake with a valid record.
        let plan = decide(&BootInputs {
            setup_button: true,
            ..inputs(
                ResetReason::DeepSleepWake,
                RecordState::Valid,
                FlashState::Clean,
                BootState {
                    failures: 3,
                    ..fresh
                },
            )
        });
        assert_eq!(
            plan,
            BootPlan {
                wipe_record: true,
                mode: Mode::Setup,
                state: fresh,
                flash_check: FlashCheck::NotChecked
            }
        );
        // Row 2: a request saved by the running firmware, then its soft restart.
        let requested = BootState {
            setup_requested: true,
            ..fresh
        };
        let plan = decide(&inputs(
            ResetReason::SoftRestart,
            RecordState::Valid,
            FlashState::Clean,
            requested,
        ));
        assert_eq!((plan.mode, plan.state), (Mode::Setup, fresh));
        // Row 3: reset pin, clean flash, valid record -> wiped, setup.
        let plan = decide(&inputs(
            ResetReason::ExternalReset,
            RecordState::Valid,
            FlashState::Clean,
            fresh,
        ));
        assert_eq!(
            plan,
            BootPlan {
                wipe_record: true,
                mode: Mode::Setup,
                state: fresh,
                flash_check: FlashCheck::Clean
            }
        );
        // Row 4: a watchdog reset with a corrupt record.
        let plan = decide(&inputs(
            ResetReason::HardwareWatchdog,
            RecordState::Corrupt,
            FlashState::Clean,
            fresh,
        ));
        assert_eq!((plan.wipe_record, plan.mode), (true, Mode::Setup));
        // Row 5: an exception during a connection attempt.
        let cut = BootState {
            failures: 2,
            connecting: true,
            ..fresh
        };
        let plan = decide(&inputs(
            ResetReason::Exception,
            RecordState::Valid,
            FlashState::Clean,
            cut,
        ));
        assert_eq!(
            plan,
            BootPlan {
                wipe_record: false,
                mode: Mode::BackoffSleep {
                    micros: 120_000_000
                },
                state: BootState {
                    failures: 3,
                    ..fresh
                },
                flash_check: FlashCheck::NotChecked,
            }
        );
        // Row 6: a deep-sleep wake after four failures.
        let plan = decide(&inputs(
            ResetReason::DeepSleepWake,
            RecordState::Valid,
            FlashState::HoldsCredentials,
            BootState {
                failures: 4,
                ..fresh
            },
        ));
        assert_eq!(
            plan.mode,
            Mode::Station {
                previous_failures: 4
            }
        );
        assert_eq!(
            plan.state,
            BootState {
                failures: 4,
                connecting: true,
                ..fresh
            }
        );
        // Attempts used up: boot on, and say so.
        let spent = BootState {
            scrub_attempts: MAX_SCRUB_ATTEMPTS,
            ..fresh
        };
        let plan = decide(&inputs(
            ResetReason::ExternalReset,
            RecordState::Absent,
            FlashState::HoldsCredentials,
            spent,
        ));
        assert_eq!(plan.mode, Mode::Setup);
        assert_eq!(
            plan.flash_check,
            FlashCheck::GaveUp {
                attempts: MAX_SCRUB_ATTEMPTS
            }
        );
        assert_eq!(plan.state.scrub_attempts, MAX_SCRUB_ATTEMPTS);
    }

    /// A simulated device: RTC words that hold the boot state, the RTC record, the flash.
    struct Device {
        rtc: [u32; BOOT_STATE_WORDS],
        record: RecordState,
        flash: FlashState,
    }

    impl Device {
        /// One boot as `user_init` runs it: decode, decide, wipe, save. The erase never works.
        fn boot(&mut self, reason: ResetReason, setup_button: bool) -> BootPlan {
            let state = BootState::decode(self.rtc);
            let plan = decide(&BootInputs {
                reset_reason: reason,
                record: self.record,
                flash: self.flash,
                setup_button,
                state,
            });
            if plan.wipe_record {
                self.record = RecordState::Absent;
            }
            self.rtc = plan.state.encode();
            plan
        }
    }

    /// The erase always fails and the flash keeps its credentials: from any first reset and
    /// any starting RTC contents, and whatever reason the SDK reports for the restarts (even
    /// an SDK that reports every restart as power-on), the device leaves the scrub loop within
    /// MAX_SCRUB_ATTEMPTS + 1 boots, in setup mode, and later resets of the same power cycle
    /// do not start scrubbing again.
    #[test]
    fn failing_erase_never_loops() {
        let starts = [
            [0, 0],
            [u32::MAX, u32::MAX],
            [0xDEAD_BEEF, 0x1234_5678],
            BootState::default().encode(),
        ];
        for flash in [FlashState::HoldsCredentials, FlashState::Unknown] {
            for first in ResetReason::ALL {
                for restart_reported_as in ResetReason::ALL {
                    for record in RecordState::ALL {
                        for rtc in starts {
                            let mut device = Device { rtc, record, flash };
                            let mut reason = first;
                            let mut scrubs = 0;
                            let mut boots = 0;
                            let end = loop {
                                boots += 1;
                                assert!(
                                    boots <= usize::from(MAX_SCRUB_ATTEMPTS) + 1,
                                    "restart loop"
                                );
                                let plan = device.boot(reason, false);
                                if plan.mode != Mode::ScrubAndRestart {
                                    break plan;
                                }
                                scrubs += 1;
                                reason = restart_reported_as;
                            };
                            assert!(scrubs <= MAX_SCRUB_ATTEMPTS);
                            if !first.trusts_record() {
                                assert_eq!(
                                    scrubs, MAX_SCRUB_ATTEMPTS,
                                    "an untrusted boot always tries"
                                );
                                assert_eq!(end.mode, Mode::Setup);
                                assert_eq!(
                                    end.flash_check,
                                    FlashCheck::GaveUp {
                                        attempts: MAX_SCRUB_ATTEMPTS
                                    }
                                );
                            }
                            // Once it gave up, nothing else in the same power cycle (reset
                            // pin, unknown reasons, crashes, a power-on the SDK misreports)
                            // scrubs again.
                            if let FlashCheck::GaveUp { .. } = end.flash_check {
                                for later in ResetReason::ALL {
                                    assert_ne!(
                                        device.boot(later, false).mode,
                                        Mode::ScrubAndRestart
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A real power loss erases RTC memory: a new, equally bounded round of attempts.
    #[test]
    fn power_loss_starts_a_new_bounded_round() {
        let mut device = Device {
            rtc: [7, 7],
            record: RecordState::Absent,
            flash: FlashState::HoldsCredentials,
        };
        for _power_cycle in 0..3 {
            device.rtc = [0x5555_5555, 0xAAAA_AAAA];
            let mut reason = ResetReason::PowerOn;
            let mut scrubs = 0;
            while device.boot(reason, false).mode == Mode::ScrubAndRestart {
                scrubs += 1;
                reason = ResetReason::SoftRestart;
                assert!(scrubs <= MAX_SCRUB_ATTEMPTS);
            }
            assert_eq!(scrubs, MAX_SCRUB_ATTEMPTS);
        }
    }

    /// Migration from an older firmware: power-on with a (stale) record and credentials in
    /// flash; the erase works; the device ends in setup with nothing trusted.
    #[test]
    fn successful_scrub_then_setup() {
        let mut device = Device {
            rtc: [1, 2],
            record: RecordState::Valid,
            flash: FlashState::HoldsCredentials,
        };
        let plan = device.boot(ResetReason::PowerOn, false);
        assert_eq!((plan.mode, plan.wipe_record), (Mode::ScrubAndRestart, true));
        assert_eq!(device.record, RecordState::Absent);
        device.flash = FlashState::Clean; // the erase worked, the SDK wrote defaults
        let plan = device.boot(ResetReason::SoftRestart, false);
        assert_eq!(plan.mode, Mode::Setup);
        assert_eq!(plan.flash_check, FlashCheck::Scrubbed { attempts: 1 });
        assert_eq!(BootState::decode(device.rtc), BootState::default());
        // A button press during the first boot is remembered across the scrub restart.
        let mut device = Device {
            rtc: [0, 0],
            record: RecordState::Absent,
            flash: FlashState::Unknown,
        };
        device.boot(ResetReason::ExternalReset, true);
        assert!(BootState::decode(device.rtc).setup_requested);
        device.flash = FlashState::Clean;
        device.record = RecordState::Valid; // whatever the record says, the request wins
        assert_eq!(
            device.boot(ResetReason::SoftRestart, false).mode,
            Mode::Setup
        );
    }

    /// A garden sensor whose access point is gone for a day: it keeps its record, never opens
    /// setup, and sleeps on the schedule; when the access point returns it connects and the
    /// count starts over.
    #[test]
    fn lost_access_point_backs_off_and_never_opens_setup() {
        let mut device = Device {
            rtc: BootState::default().encode(),
            record: RecordState::Valid,
            flash: FlashState::HoldsCredentials,
        };
        let mut slept = Vec::new();
        for attempt in 0..40u16 {
            let plan = device.boot(ResetReason::DeepSleepWake, false);
            assert_eq!(
                plan.mode,
                Mode::Station {
                    previous_failures: attempt
                }
            );
            let result = after_connect_result(BootState::decode(device.rtc), false);
            device.rtc = result.state.encode();
            match result.next {
                AfterConnect::BackoffSleep { micros } => slept.push(micros / 1_000_000),
                AfterConnect::Online => panic!("failed attempt reported online"),
            }
            assert_eq!(device.record, RecordState::Valid);
        }
        assert_eq!(&slept[..8], &[30, 60, 120, 300, 900, 1800, 3600, 3600]);
        assert!(slept[7..].iter().all(|&s| s == 3600));
        // Back online.
        assert_eq!(
            device.boot(ResetReason::DeepSleepWake, false).mode,
            Mode::Station {
                previous_failures: 40
            }
        );
        let result = after_connect_result(BootState::decode(device.rtc), true);
        assert_eq!(
            result,
            ConnectPlan {
                state: BootState::default(),
                next: AfterConnect::Online
            }
        );
        device.rtc = result.state.encode();
        assert_eq!(
            device.boot(ResetReason::DeepSleepWake, false).mode,
            Mode::Station {
                previous_failures: 0
            }
        );
    }

    /// Crashes keep the record. A crash while connecting counts as a failure, so a crash loop
    /// in the connection path turns into backoff sleeps instead of a tight reset loop; a crash
    /// after a connection (no attempt in progress) just reconnects.
    #[test]
    fn crashes_keep_the_record_and_back_off_when_they_cut_an_attempt() {
        for crash in [
            ResetReason::HardwareWatchdog,
            ResetReason::Exception,
            ResetReason::SoftwareWatchdog,
            ResetReason::SoftRestart,
        ] {
            let mut device = Device {
                rtc: BootState::default().encode(),
                record: RecordState::Valid,
                flash: FlashState::Clean,
            };
            let mut sleeps = Vec::new();
            for _ in 0..10 {
                assert!(matches!(
                    device.boot(ResetReason::DeepSleepWake, false).mode,
                    Mode::Station { .. }
                ));
                match device.boot(crash, false).mode {
                    Mode::BackoffSleep { micros } => sleeps.push(micros),
                    other => panic!("{crash:?} while connecting gave {other:?}"),
                }
                assert_eq!(device.record, RecordState::Valid);
            }
            let expected: Vec<u64> = (1..=10).map(backoff_micros).collect();
            assert_eq!(
                sleeps, expected,
                "each cut attempt counts as one more failure"
            );
            // Connected, then crashed in the application: reconnect straight away.
            let result = after_connect_result(BootState::decode(device.rtc), true);
            device.rtc = result.state.encode();
            assert_eq!(
                device.boot(crash, false).mode,
                Mode::Station {
                    previous_failures: 0
                }
            );
        }
    }

    #[test]
    fn after_connect_result_keeps_everything_but_the_failure_count() {
        for state in interesting_states() {
            let ok = after_connect_result(state, true);
            assert_eq!(ok.next, AfterConnect::Online);
            assert_eq!(
                ok.state,
                BootState {
                    failures: 0,
                    connecting: false,
                    ..state
                }
            );
            let failed = after_connect_result(state, false);
            let failures = state.failures.saturating_add(1);
            assert_eq!(
                failed.state,
                BootState {
                    failures,
                    connecting: false,
                    ..state
                }
            );
            assert_eq!(
                failed.next,
                AfterConnect::BackoffSleep {
                    micros: backoff_micros(failures)
                }
            );
        }
    }

    #[test]
    fn backoff_is_monotonic_capped_and_on_schedule() {
        assert_eq!(backoff_micros(1), 30_000_000);
        assert_eq!(backoff_micros(0), backoff_micros(1));
        assert!(
            BACKOFF_SCHEDULE_SECONDS.windows(2).all(|w| w[0] < w[1]),
            "schedule strictly grows"
        );
        assert_eq!(BACKOFF_CAP_SECONDS, 3600);
        let cap = u64::from(BACKOFF_CAP_SECONDS) * 1_000_000;
        let mut previous = 0;
        for failures in 0..=u16::MAX {
            let micros = backoff_micros(failures);
            assert!(micros >= previous && micros <= cap, "failures {failures}");
            previous = micros;
        }
        assert_eq!(backoff_micros(BACKOFF_SCHEDULE_SECONDS.len() as u16), cap);
        assert_eq!(backoff_micros(u16::MAX), cap);
    }

    #[test]
    fn flash_classification_counts_any_non_zero_byte() {
        assert_eq!(FlashState::classify(&[0; 32], &[0; 64]), FlashState::Clean);
        assert_eq!(FlashState::classify(&[], &[]), FlashState::Clean);
        let mut ssid = [0u8; 32];
        ssid[..4].copy_from_slice(b"home");
        assert_eq!(
            FlashState::classify(&ssid, &[0; 64]),
            FlashState::HoldsCredentials
        );
        let mut password = [0u8; 64];
        password[40] = b'x'; // a tail left after a terminating zero
        assert_eq!(
            FlashState::classify(&[0; 32], &password),
            FlashState::HoldsCredentials
        );
    }

    #[test]
    fn encoding_has_the_documented_layout() {
        let state = BootState {
            failures: 0x1234,
            scrub_attempts: 2,
            setup_requested: true,
            scrub_restart: false,
            connecting: true,
        };
        let [word0, word1] = state.encode();
        assert_eq!(word0, 0x1234 | (2 << 16) | (1 << 24) | (1 << 26));
        assert_eq!(word1 >> 16, 0xB007);
        assert_eq!(BootState::try_decode([0, 0]), None);
        assert_eq!(
            BootState::decode([u32::MAX, u32::MAX]),
            BootState::default()
        );
        // Reserved bits set, even with a matching check, are rejected.
        let bad = word0 | (1 << 31);
        let forged = (u32::from(BOOT_STATE_MAGIC) << 16) | u32::from(check_of(bad));
        assert_eq!(BootState::try_decode([bad, forged]), None);
    }

    /// Every single-bit flip of a valid encoding decodes to the default, for every state the
    /// exhaustive test uses (the CRC catches every one-bit error in word 0, the magic and
    /// check compare word 1 whole).
    #[test]
    fn single_bit_flips_are_rejected() {
        for state in interesting_states() {
            let words = state.encode();
            for word in 0..BOOT_STATE_WORDS {
                for bit in 0..32 {
                    let mut flipped = words;
                    flipped[word] ^= 1 << bit;
                    assert_eq!(
                        BootState::try_decode(flipped),
                        None,
                        "{state:?} word {word} bit {bit}"
                    );
                }
            }
        }
    }

    fn any_state() -> impl Strategy<Value = BootState> {
        (
            any::<u16>(),
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(failures, scrub_attempts, setup_requested, scrub_restart, connecting)| {
                    BootState {
                        failures,
                        scrub_attempts,
                        setup_requested,
                        scrub_restart,
                        connecting,
                    }
                },
            )
    }

    fn any_reason() -> impl Strategy<Value = ResetReason> {
        prop::sample::select(ResetReason::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn state_round_trips(state in any_state()) {
            prop_assert_eq!(BootState::try_decode(state.encode()), Some(state));
        }

        /// Garbage never panics; anything that does not decode is the default, and anything
        /// that does re-encodes to the same words (the encoding is canonical).
        #[test]
        fn garbage_decodes_to_default_or_to_itself(words in any::<[u32; 2]>()) {
            match BootState::try_decode(words) {
                None => prop_assert_eq!(BootState::decode(words), BootState::default()),
                Some(state) => prop_assert_eq!(state.encode(), words),
            }
        }

        #[test]
        fn any_raw_reason_maps_without_panicking(raw in any::<u32>()) {
            let reason = ResetReason::from_raw(raw);
            prop_assert_eq!(reason == ResetReason::Unknown, raw > 6);
        }

        /// Any sequence of resets, record states, button presses and connection results in
        /// one power cycle, with a flash whose erase never works: at most MAX_SCRUB_ATTEMPTS
        /// scrub restarts in total, and never a station with an untrusted record.
        #[test]
        fn scrubs_are_bounded_over_any_boot_sequence(
            start in any::<[u32; 2]>(),
            boots in proptest::collection::vec(
                (any_reason(), prop::sample::select(RecordState::ALL.to_vec()), any::<bool>(), any::<bool>(), any::<bool>()),
                1..60,
            ),
        ) {
            let mut rtc = start;
            let start_attempts = BootState::decode(start).scrub_attempts;
            let budget = u32::from(MAX_SCRUB_ATTEMPTS.saturating_sub(start_attempts));
            let mut scrubs = 0u32;
            for (reason, record, button, unreadable, connected) in boots {
                let flash = if unreadable { FlashState::Unknown } else { FlashState::HoldsCredentials };
                let state = BootState::decode(rtc);
                let plan = decide(&BootInputs { reset_reason: reason, record, flash, setup_button: button, state });
                rtc = plan.state.encode();
                match plan.mode {
                    Mode::ScrubAndRestart => scrubs += 1,
                    Mode::Station { .. } => {
                        prop_assert!(reason.trusts_record() && record == RecordState::Valid);
                        rtc = after_connect_result(plan.state, connected).state.encode();
                    }
                    Mode::Setup | Mode::BackoffSleep { .. } => {}
                }
            }
            prop_assert!(scrubs <= budget, "{} scrubs, budget {}", scrubs, budget);
        }
    }
}
