//! The setup form: `application/x-www-form-urlencoded` decoding and validation.
//!
//! Fields: `net` is the chosen network's SSID as hex (any SSID bytes survive the round trip
//! through HTML), or `other` for a hidden network whose name is in the field `other`; `pass`
//! is the passphrase. The broker: `mqtt` its host (empty: no broker, the readings wait in the
//! queue), `mport` its port (empty: 1883), `muser` the user name, `mpass` the password
//! (empty: none), `period` the report period in minutes (empty: 10). Unknown fields are
//! ignored; the first of a repeated field counts.

use zeroize::Zeroize;

use super::{ConnectKey, ConnectRequest, ScanList, Security};
use crate::flash_text;
use crate::flash_text::FlashText;
use crate::psk::PassphraseError;
use crate::rtc_record::{SSID_MAX_LEN, Ssid};
use crate::secret::{PASSPHRASE_MAX_LEN, Passphrase};
use crate::settings::{self, BrokerSettings, SettingsError};

/// Bytes of a typed broker field kept for the page (as typed, a little past the host's and
/// user name's limit so an overlong one shows as typed; the setup's responses live in DRAM).
pub(super) const BROKER_KEPT: usize = settings::HOST_MAX_LEN + 8;

/// Bytes of a typed hidden-network name kept for the page: a name over the 32-byte limit is
/// shown again as typed (up to three times the limit, cut at a character boundary), so the
/// person can shorten it rather than retype it.
pub(super) const OTHER_KEPT: usize = 3 * SSID_MAX_LEN;

/// What the person chose, kept to fill the form again after an error (never the passphrase).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Kept {
    pub(super) choice: Choice,
    /// The hidden network's name as typed (at most [`OTHER_KEPT`] bytes kept).
    pub(super) other: heapless::Vec<u8, OTHER_KEPT>,
    /// The broker's host, port, user name and period as typed (never its password).
    pub(super) broker: BrokerKept,
}

/// The broker fields as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct BrokerKept {
    pub(super) host: heapless::Vec<u8, BROKER_KEPT>,
    pub(super) port: heapless::Vec<u8, 6>,
    pub(super) user: heapless::Vec<u8, BROKER_KEPT>,
    pub(super) period: heapless::Vec<u8, 6>,
}

/// Which radio button was selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Choice {
    None,
    Network(heapless::Vec<u8, SSID_MAX_LEN>),
    Other,
}

impl Kept {
    pub(super) fn none() -> Kept {
        Kept {
            choice: Choice::None,
            other: heapless::Vec::new(),
            broker: Default::default(),
        }
    }

    /// The form again after a failed connection test: that network chosen (from the list if
    /// the scan has it, else as the hidden network's name).
    pub(super) fn retry(ssid: &[u8], scan: &ScanList) -> Kept {
        let mut kept = Kept::none();
        if scan.find(ssid).is_some() {
            kept.choice = Choice::Network(heapless::Vec::from_slice(ssid).unwrap_or_default());
        } else {
            kept.choice = Choice::Other;
            let _ = kept
                .other
                .extend_from_slice(cut_at_boundary(ssid, OTHER_KEPT));
        }
        kept
    }
}

/// The longest prefix of `bytes` of at most `max` bytes that does not end inside a UTF-8
/// sequence (bytes that are not UTF-8 are cut at `max`).
fn cut_at_boundary(bytes: &[u8], max: usize) -> &[u8] {
    if bytes.len() <= max {
        return bytes;
    }
    let continuation = |i: usize| bytes[i] & 0xC0 == 0x80;
    // The character at `max` starts at most three bytes earlier: cut before its start.
    let end = (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| !continuation(i))
        .unwrap_or(max);
    &bytes[..end]
}

/// What is wrong with a submitted form, in words the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Problem {
    Encoding,
    NoChoice,
    BadChoice,
    HiddenNameEmpty,
    HiddenNameTooLong,
    PassphraseNeeded,
    OpenNetworkWithPassphrase,
    Passphrase(PassphraseError),
    Broker(SettingsError),
}

impl Problem {
    pub(super) fn message(self) -> FlashText {
        match self {
            Problem::Encoding => flash_text!("The form arrived garbled. Please send it again."),
            Problem::NoChoice => {
                flash_text!(
                    "Choose a network from the list, or choose \u{201c}Other network\u{201d} and type its name."
                )
            }
            Problem::BadChoice => {
                flash_text!("That network choice was not understood. Please pick it again.")
            }
            Problem::HiddenNameEmpty => flash_text!("Type the name of the hidden network."),
            Problem::HiddenNameTooLong => flash_text!("Network names are at most 32 bytes long."),
            Problem::PassphraseNeeded => flash_text!("This network needs its passphrase."),
            Problem::OpenNetworkWithPassphrase => {
                flash_text!("This network is open: leave the passphrase empty.")
            }
            Problem::Passphrase(PassphraseError::TooShort) => {
                flash_text!(
                    "The passphrase is too short: WiFi passphrases have at least 8 characters."
                )
            }
            Problem::Passphrase(PassphraseError::TooLong) => {
                flash_text!(
                    "The passphrase is too long: at most 63 characters, or a 64-digit hex key."
                )
            }
            Problem::Passphrase(PassphraseError::NotPrintableAscii) => {
                flash_text!(
                    "The passphrase has a character WiFi passphrases cannot contain: use letters, digits, spaces and punctuation (no accents or emoji)."
                )
            }
            Problem::Passphrase(PassphraseError::NotHex) => {
                flash_text!("A 64-character passphrase must be a key in hex digits (0-9, a-f).")
            }
            Problem::Broker(SettingsError::BadHost) => flash_text!(
                "The broker must be a host name (letters, digits, dots, hyphens) or an IPv4 address, at most 32 characters."
            ),
            Problem::Broker(SettingsError::BadPort) => {
                flash_text!("The broker's port must be a number from 1 to 65535.")
            }
            Problem::Broker(SettingsError::BadUser) => flash_text!(
                "The MQTT user name may have at most 32 letters, digits or punctuation, no spaces."
            ),
            Problem::Broker(SettingsError::BadPassword) => {
                flash_text!("The MQTT password needs a user name and may have at most 64 bytes.")
            }
            Problem::Broker(SettingsError::BadPeriod) => {
                flash_text!("The report period must be 1 to 60 minutes.")
            }
            Problem::Broker(_) => flash_text!("The broker settings were not understood."),
        }
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Decodes one urlencoded value (`+` is a space, `%XX` a byte) into `out`; returns the
/// length, or `None` for a bad escape or a value longer than `out` (the caller decides what
/// "too long" means; `out` is one byte larger than the longest valid value).
fn decode_into(encoded: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    let mut i = 0;
    while i < encoded.len() {
        let byte = match encoded[i] {
            b'+' => b' ',
            b'%' => {
                let high = hex_value(*encoded.get(i + 1)?)?;
                let low = hex_value(*encoded.get(i + 2)?)?;
                i += 2;
                (high << 4) | low
            }
            other => other,
        };
        i += 1;
        if len == out.len() {
            // Too long: report the maximum plus one so the caller can say so.
            return Some(out.len() + 1);
        }
        out[len] = byte;
        len += 1;
    }
    Some(len)
}

/// A network choice's SSID from its hex value (at most 32 bytes).
fn ssid_from_hex(hex: &[u8]) -> Option<heapless::Vec<u8, SSID_MAX_LEN>> {
    if !hex.len().is_multiple_of(2) || hex.len() > 2 * SSID_MAX_LEN {
        return None;
    }
    let mut bytes = heapless::Vec::new();
    for pair in hex.chunks_exact(2) {
        bytes
            .push((hex_value(pair[0])? << 4) | hex_value(pair[1])?)
            .ok()?;
    }
    Some(bytes)
}

/// The raw (still encoded) value of the first field called `name`.
fn field<'a>(body: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let mut parts = pair.splitn(2, |&b| b == b'=');
        let key = parts.next()?;
        (key == name).then(|| parts.next().unwrap_or_default())
    })
}

/// Checks a submitted form against the scan list.
///
/// # Errors
/// What is wrong, with the person's choices kept for the page (the choice is decided first,
/// so it survives an error in any field).
// The error carries what the page needs to show the form again; it is built once per request.
#[allow(clippy::result_large_err)]
pub(super) fn validate(body: &[u8], scan: &ScanList) -> Result<ConnectRequest, (Problem, Kept)> {
    let mut kept = Kept::none();
    match field(body, b"net") {
        Some(b"other") => kept.choice = Choice::Other,
        Some(hex) => {
            if let Some(bytes) = ssid_from_hex(hex) {
                kept.choice = Choice::Network(bytes);
            }
        }
        None => {}
    }

    // The hidden network's name, kept even when another choice is made.
    let mut other = [0u8; OTHER_KEPT + 1];
    let other_len = match field(body, b"other").map(|v| decode_into(v, &mut other)) {
        None => 0,
        Some(Some(len)) => len,
        Some(None) => return Err((Problem::Encoding, kept)),
    };
    let _ = kept.other.extend_from_slice(cut_at_boundary(
        &other[..other_len.min(other.len())],
        OTHER_KEPT,
    ));

    let ssid = match field(body, b"net") {
        None | Some(b"") => return Err((Problem::NoChoice, kept)),
        Some(b"other") => {
            kept.choice = Choice::Other;
            match other_len {
                0 => return Err((Problem::HiddenNameEmpty, kept)),
                len if len > SSID_MAX_LEN => return Err((Problem::HiddenNameTooLong, kept)),
                len => Ssid::new(&other[..len])
                    .map_err(|_| (Problem::HiddenNameTooLong, kept.clone()))?,
            }
        }
        Some(hex) => {
            let Some(bytes) = ssid_from_hex(hex) else {
                return Err((Problem::BadChoice, kept));
            };
            Ssid::new(&bytes).map_err(|_| (Problem::BadChoice, kept.clone()))?
        }
    };

    let open = scan
        .find(ssid.as_bytes())
        .is_some_and(|n| n.security == Security::Open);
    let mut pass = [0u8; PASSPHRASE_MAX_LEN + 1];
    let pass_len = match field(body, b"pass").map(|v| decode_into(v, &mut pass)) {
        None => 0,
        Some(Some(len)) => len,
        Some(None) => {
            pass.zeroize();
            return Err((Problem::Encoding, kept));
        }
    };
    let key = match (pass_len, open) {
        (0, true) => ConnectKey::Open,
        (0, false) => return Err((Problem::PassphraseNeeded, kept)),
        (_, true) => {
            pass.zeroize();
            return Err((Problem::OpenNetworkWithPassphrase, kept));
        }
        (len, false) => {
            let checked = Passphrase::new(&pass[..len.min(pass.len())]);
            pass.zeroize();
            match checked {
                Ok(passphrase) => ConnectKey::Passphrase(passphrase),
                Err(e) => return Err((Problem::Passphrase(e), kept)),
            }
        }
    };
    let broker = broker(body, &mut kept).map_err(|p| (p, kept.clone()))?;
    Ok(ConnectRequest { ssid, key, broker })
}

fn keep<const N: usize>(into: &mut heapless::Vec<u8, N>, typed: &[u8]) {
    into.clear();
    let _ = into.extend_from_slice(cut_at_boundary(typed, N));
}

/// A decimal number of at most five digits, or `None`.
fn number(text: &[u8]) -> Option<u32> {
    (!text.is_empty() && text.len() <= 5 && text.iter().all(u8::is_ascii_digit))
        .then(|| text.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// Keeps the typed broker fields for the page, then validates them: `None` when no broker is
/// given (every broker field empty).
fn broker(body: &[u8], kept: &mut Kept) -> Result<Option<BrokerSettings>, Problem> {
    let mut fields = [[0u8; BROKER_KEPT + 1]; 4];
    let mut lens = [0usize; 4];
    for (i, name) in [&b"mqtt"[..], b"mport", b"muser", b"period"]
        .iter()
        .enumerate()
    {
        lens[i] = match field(body, name).map(|v| decode_into(v, &mut fields[i])) {
            None => 0,
            Some(Some(len)) => len,
            Some(None) => return Err(Problem::Encoding),
        };
        let typed = &fields[i][..lens[i].min(BROKER_KEPT)];
        let b = &mut kept.broker;
        match i {
            0 => keep(&mut b.host, typed),
            1 => keep(&mut b.port, typed),
            2 => keep(&mut b.user, typed),
            _ => keep(&mut b.period, typed),
        }
    }
    let mut password = [0u8; crate::mqtt::PASSWORD_MAX_LEN + 1];
    let password_len = match field(body, b"mpass").map(|v| decode_into(v, &mut password)) {
        None => 0,
        Some(Some(len)) => len,
        Some(None) => {
            password.zeroize();
            return Err(Problem::Encoding);
        }
    };
    let text = |i: usize| &fields[i][..lens[i].min(BROKER_KEPT + 1)];
    if lens[0] == 0 {
        password.zeroize();
        return if lens[2] > 0 || password_len > 0 {
            Err(Problem::Broker(SettingsError::BadHost))
        } else {
            Ok(None)
        };
    }
    let port = if lens[1] == 0 {
        Some(settings::PORT_DEFAULT)
    } else {
        number(text(1)).and_then(|n| u16::try_from(n).ok())
    };
    let period = if lens[3] == 0 {
        Some(settings::PERIOD_DEFAULT_S)
    } else {
        number(text(3))
            .filter(|m| (1..=60).contains(m))
            .map(|m| (m * 60) as u16)
    };
    let result = match (port, period) {
        (None, _) | (Some(0), _) => Err(SettingsError::BadPort),
        (_, None) => Err(SettingsError::BadPeriod),
        (Some(port), Some(period)) => BrokerSettings::new(
            text(0),
            port,
            text(2),
            (password_len > 0).then(|| &password[..password_len.min(password.len())]),
            period,
        ),
    };
    password.zeroize();
    result.map(Some).map_err(Problem::Broker)
}
