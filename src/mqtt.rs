//! MQTT 3.1.1, sans-IO: the few packets a sleepy sensor needs, and the report as a state
//! machine that turns bytes from the broker into bytes to send.
//!
//! No maintained `no_std`, no-alloc codec fits (GARDEN.md: mqttrs 0.4 pins heapless 0.7, the
//! others are async or need alloc), so the codec is ramkey's own and small: CONNECT, CONNACK,
//! PUBLISH (QoS 0 and 1), PUBACK, DISCONNECT, PINGRESP (ignored). The decoder takes any bytes
//! (fuzzed: `fuzz/fuzz_targets/mqtt_decode.rs`); the encoder writes into the caller's buffer
//! and says when it is too small.
//!
//! [`Session`]: the caller sends CONNECT; once CONNACK accepts, each message goes out as a
//! QoS 1 PUBLISH when the caller's connection can take it (one in RAM at a time); once every
//! PUBACK is in, [`Event::Done`]: the caller sends DISCONNECT, and only then may the device
//! sleep. A refused login, a protocol violation or a broker that answers something else ends
//! it with the reason. The caller keeps the connection and the clock.
//!
//! Must never: send a message before CONNACK accepted, report [`Event::Done`] before every
//! PUBACK, or print the password (it is a [`MqttPassword`]: no `Debug`, zeroed on drop).

#![forbid(unsafe_code)]

/// Longest MQTT password kept.
pub const PASSWORD_MAX_LEN: usize = 64;

/// A broker password: not printable, not cloneable, zeroed on drop.
pub type MqttPassword = crate::secret::SecretBytes<PASSWORD_MAX_LEN>;

/// Why bytes could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferTooSmall,
    /// A string or payload is longer than MQTT allows (65,535 bytes; 268 MB in all).
    TooLong,
}

/// Why bytes from the broker are not a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining length is malformed (more than four bytes).
    BadLength,
    /// A packet the client never accepts from a broker, or a malformed one.
    Unexpected(u8),
}

/// A packet from the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// CONNACK with its return code (0: accepted; 1-5: refused, MQTT 3.1.1 3.2.2.3).
    ConnAck {
        /// The return code.
        code: u8,
    },
    /// PUBACK for this packet id.
    PubAck {
        /// The acknowledged packet id.
        id: u16,
    },
    /// PINGRESP.
    PingResp,
}

fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) -> Result<(), EncodeError> {
    let end = at.checked_add(bytes.len()).ok_or(EncodeError::TooLong)?;
    out.get_mut(*at..end)
        .ok_or(EncodeError::BufferTooSmall)?
        .copy_from_slice(bytes);
    *at = end;
    Ok(())
}

fn put_str(out: &mut [u8], at: &mut usize, s: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(s.len()).map_err(|_| EncodeError::TooLong)?;
    put(out, at, &len.to_be_bytes())?;
    put(out, at, s)
}

/// Writes the fixed header of a packet with `remaining` bytes after it.
fn header(out: &mut [u8], at: &mut usize, first: u8, remaining: usize) -> Result<(), EncodeError> {
    if remaining > 268_435_455 {
        return Err(EncodeError::TooLong);
    }
    put(out, at, &[first])?;
    let mut n = remaining;
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        put(out, at, &[byte])?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// CONNECT with a clean session, user name and optional password; returns the bytes written.
pub fn encode_connect(
    out: &mut [u8],
    client_id: &[u8],
    user: Option<&[u8]>,
    password: Option<&MqttPassword>,
    keep_alive_s: u16,
) -> Result<usize, EncodeError> {
    let field = |s: &[u8]| 2 + s.len();
    let remaining = 10
        + field(client_id)
        + user.map_or(0, field)
        + password.map_or(0, |p| field(p.expose_secret()));
    let mut flags = 0x02; // clean session
    if user.is_some() {
        flags |= 0x80;
    }
    if password.is_some() {
        flags |= 0x40;
    }
    let mut at = 0;
    header(out, &mut at, 0x10, remaining)?;
    put(out, &mut at, &[0, 4, b'M', b'Q', b'T', b'T', 4, flags])?;
    put(out, &mut at, &keep_alive_s.to_be_bytes())?;
    put_str(out, &mut at, client_id)?;
    if let Some(user) = user {
        put_str(out, &mut at, user)?;
    }
    if let Some(password) = password {
        put_str(out, &mut at, password.expose_secret())?;
    }
    Ok(at)
}

/// PUBLISH at QoS 1 with this packet id (`retain` as asked); returns the bytes written.
pub fn encode_publish(
    out: &mut [u8],
    topic: &[u8],
    payload: &[u8],
    id: u16,
    retain: bool,
) -> Result<usize, EncodeError> {
    let remaining = 2 + topic.len() + 2 + payload.len();
    let mut at = 0;
    header(out, &mut at, 0x32 | u8::from(retain), remaining)?;
    put_str(out, &mut at, topic)?;
    put(out, &mut at, &id.to_be_bytes())?;
    put(out, &mut at, payload)?;
    Ok(at)
}

/// DISCONNECT.
pub fn encode_disconnect(out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut at = 0;
    put(out, &mut at, &[0xE0, 0])?;
    Ok(at)
}

/// The first packet in `bytes`, and how many bytes it took; `Ok(None)` while incomplete.
pub fn decode(bytes: &[u8]) -> Result<Option<(Incoming, usize)>, DecodeError> {
    let Some(&first) = bytes.first() else {
        return Ok(None);
    };
    let mut remaining = 0usize;
    let mut at = 1;
    loop {
        let Some(&byte) = bytes.get(at) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * (at - 1));
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return Err(DecodeError::BadLength);
        }
    }
    let Some(body) = bytes.get(at..at + remaining) else {
        return Ok(None);
    };
    let packet = match (first, body) {
        (0x20, [flags, code]) if flags & 0xFE == 0 => Incoming::ConnAck { code: *code },
        (0x40, [high, low]) => Incoming::PubAck {
            id: u16::from_be_bytes([*high, *low]),
        },
        (0xD0, []) => Incoming::PingResp,
        _ => return Err(DecodeError::Unexpected(first)),
    };
    Ok(Some((packet, at + remaining)))
}

/// What bytes from the broker meant for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing new: wait for more bytes (or publish the next message).
    Waiting,
    /// CONNACK accepted the login: publish the messages ([`Session::publish`]).
    Accepted,
    /// Every message was published and acknowledged: send DISCONNECT, close, sleep.
    Done,
    /// The broker refused the login (CONNACK return code).
    Refused(u8),
    /// The broker broke the protocol.
    Protocol(DecodeError),
}

/// One message of a report.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// Its topic.
    pub topic: &'a [u8],
    /// Its payload.
    pub payload: &'a [u8],
    /// Retained by the broker (discovery and state are; history is not).
    pub retain: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Publishing,
    Finished,
    Failed,
}

/// Most messages one report carries (packet ids 1..=32, one bit each).
pub const MAX_MESSAGES: usize = 32;

/// One report's session: CONNECT sent by the caller; after [`Event::Accepted`] each message
/// goes out with [`Session::publish`] as the caller's connection takes it (one at a time, so
/// the device keeps one publication in RAM, not the report); [`Event::Done`] once every
/// message is published and acknowledged.
#[derive(Clone, Debug)]
pub struct Session {
    phase: Phase,
    total: u8,
    published: u8,
    acked: u32,
    received: heapless::Vec<u8, 8>,
}

impl Session {
    /// A session that will publish `total` messages (at most [`MAX_MESSAGES`]).
    pub fn new(total: usize) -> Option<Session> {
        (total <= MAX_MESSAGES).then_some(Session {
            phase: Phase::Connecting,
            total: total as u8,
            published: 0,
            acked: 0,
            received: heapless::Vec::new(),
        })
    }

    /// Messages acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.acked.count_ones() as usize
    }

    /// Messages published so far.
    pub fn published(&self) -> usize {
        usize::from(self.published)
    }

    /// Whether the next message may be published now (accepted, and not all out yet).
    pub fn wants_message(&self) -> bool {
        self.phase == Phase::Publishing && self.published < self.total
    }

    /// Encodes the next message as QoS 1 PUBLISH into `out`; returns the bytes written.
    /// `Ok(0)` when no message is due ([`Session::wants_message`] is false).
    pub fn publish(&mut self, out: &mut [u8], message: &Message<'_>) -> Result<usize, EncodeError> {
        if !self.wants_message() {
            return Ok(0);
        }
        let id = u16::from(self.published) + 1;
        let n = encode_publish(out, message.topic, message.payload, id, message.retain)?;
        self.published += 1;
        Ok(n)
    }

    fn all_acked(&self) -> bool {
        self.published == self.total && self.acknowledged() == usize::from(self.total)
    }

    /// Bytes from the broker, in any pieces.
    pub fn receive(&mut self, bytes: &[u8]) -> Event {
        if self.phase == Phase::Failed {
            return Event::Protocol(DecodeError::Unexpected(0));
        }
        let mut event = Event::Waiting;
        for &byte in bytes {
            if self.received.push(byte).is_err() {
                return self.fail(DecodeError::BadLength);
            }
            let packet = match decode(&self.received) {
                Ok(None) => continue,
                Ok(Some((packet, _))) => packet,
                Err(e) => return self.fail(e),
            };
            self.received.clear();
            match (self.phase, packet) {
                (Phase::Connecting, Incoming::ConnAck { code: 0 }) => {
                    self.phase = Phase::Publishing;
                    event = Event::Accepted;
                }
                (Phase::Connecting, Incoming::ConnAck { code }) => {
                    self.phase = Phase::Failed;
                    return Event::Refused(code);
                }
                (Phase::Publishing, Incoming::PubAck { id })
                    if (1..=u16::from(self.published)).contains(&id) =>
                {
                    self.acked |= 1 << (id - 1);
                }
                (_, Incoming::PingResp) => {}
                (_, _) => return self.fail(DecodeError::Unexpected(0)),
            }
            if self.phase == Phase::Publishing && self.all_acked() {
                self.phase = Phase::Finished;
                return Event::Done;
            }
        }
        event
    }

    fn fail(&mut self, e: DecodeError) -> Event {
        self.phase = Phase::Failed;
        Event::Protocol(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connect_matches_the_spec_example_layout() {
        let password = MqttPassword::new(b"pw").expect("short");
        let mut out = [0u8; 64];
        let n = encode_connect(&mut out, b"ramkey-A1B2C3", Some(b"u"), Some(&password), 60)
            .expect("fits");
        let mut want = std::vec![0x10, 10 + 15 + 3 + 4];
        want.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60]);
        want.extend_from_slice(&[0, 13]);
        want.extend_from_slice(b"ramkey-A1B2C3");
        want.extend_from_slice(&[0, 1, b'u', 0, 2, b'p', b'w']);
        assert_eq!(&out[..n], want.as_slice());
        assert_eq!(
            encode_connect(&mut out[..10], b"x", None, None, 0),
            Err(EncodeError::BufferTooSmall)
        );
    }

    #[test]
    fn remaining_lengths_use_the_variable_encoding() {
        let payload = [7u8; 200];
        let mut out = [0u8; 300];
        let n = encode_publish(&mut out, b"t", &payload, 9, true).expect("fits");
        // 2 + 1 + 2 + 200 = 205 = 0xCD 0x01.
        assert_eq!(&out[..5], &[0x33, 0xCD, 0x01, 0, 1]);
        assert_eq!(n, 3 + 205);
    }

    #[test]
    fn decoding_waits_for_whole_packets_and_refuses_strangers() {
        assert_eq!(decode(&[0x20]), Ok(None));
        assert_eq!(decode(&[0x20, 2, 0]), Ok(None));
        assert_eq!(
            decode(&[0x20, 2, 0, 5, 0xFF]),
            Ok(Some((Incoming::ConnAck { code: 5 }, 4)))
        );
        assert_eq!(
            decode(&[0x40, 2, 1, 2]),
            Ok(Some((Incoming::PubAck { id: 0x0102 }, 4)))
        );
        assert_eq!(decode(&[0x30, 0]), Err(DecodeError::Unexpected(0x30)));
        assert_eq!(
            decode(&[0x20, 0xFF, 0xFF, 0xFF, 0xFF, 1]),
            Err(DecodeError::BadLength)
        );
    }

    #[test]
    fn a_session_publishes_after_connack_and_is_done_only_after_every_puback() {
        let a = Message {
            topic: b"a",
            payload: b"1",
            retain: true,
        };
        let b = Message {
            topic: b"b",
            payload: b"2",
            retain: false,
        };
        let mut session = Session::new(2).expect("fits");
        let mut out = [0u8; 64];
        assert_eq!(
            session.publish(&mut out, &a),
            Ok(0),
            "nothing before CONNACK"
        );
        assert_eq!(session.receive(&[0x20, 2]), Event::Waiting);
        assert_eq!(session.receive(&[0, 0]), Event::Accepted);
        assert_eq!(session.publish(&mut out, &a), Ok(8));
        assert_eq!(&out[..8], &[0x33, 6, 0, 1, b'a', 0, 1, b'1']);
        assert_eq!(
            session.receive(&[0x40, 2, 0, 1]),
            Event::Waiting,
            "one of two"
        );
        assert_eq!(session.publish(&mut out, &b), Ok(8));
        assert_eq!(&out[..8], &[0x32, 6, 0, 1, b'b', 0, 2, b'2']);
        assert_eq!(session.publish(&mut out, &b), Ok(0), "all out");
        assert_eq!(
            session.receive(&[0x40, 2, 0, 1]),
            Event::Waiting,
            "a repeat"
        );
        assert_eq!(session.receive(&[0x40, 2]), Event::Waiting);
        assert_eq!(session.receive(&[0, 2]), Event::Done);
        let mut refused = Session::new(2).expect("fits");
        assert_eq!(refused.receive(&[0x20, 2, 0, 5]), Event::Refused(5));
        assert!(matches!(
            refused.receive(&[0x20, 2, 0, 0]),
            Event::Protocol(_)
        ));
        let mut early = Session::new(2).expect("fits");
        assert!(matches!(
            early.receive(&[0x40, 2, 0, 1]),
            Event::Protocol(_)
        ));
        let mut unpublished = Session::new(2).expect("fits");
        assert_eq!(unpublished.receive(&[0x20, 2, 0, 0]), Event::Accepted);
        assert!(
            matches!(unpublished.receive(&[0x40, 2, 0, 1]), Event::Protocol(_)),
            "a PUBACK for a message not yet sent"
        );
        let mut empty = Session::new(0).expect("fits");
        assert_eq!(empty.receive(&[0x20, 2, 0, 0]), Event::Done);
        assert!(Session::new(MAX_MESSAGES + 1).is_none());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(Some((_, used))) = decode(&bytes) {
                prop_assert!(used <= bytes.len());
            }
            let message = Message { topic: b"t", payload: b"p", retain: false };
            let mut session = Session::new(3).expect("fits");
            let mut out = [0u8; 64];
            for piece in bytes.chunks(5) {
                let _ = session.receive(piece);
                let _ = session.publish(&mut out, &message);
                prop_assert!(session.acknowledged() <= session.published());
            }
        }
    }
}
