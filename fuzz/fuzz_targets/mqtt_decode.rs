//! Fuzz target: arbitrary bytes from a "broker" fed to the MQTT decoder and to a session.
//!
//! Properties: `decode` never panics and never claims more bytes than it was given; a
//! session fed the bytes in pieces, publishing whenever it may, never panics, never writes
//! past its output buffer, never counts more acknowledgements than publications, and is
//! `Done` only once every message was published and acknowledged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::mqtt::{Event, Message, Session, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = decode(data) {
        assert!(used <= data.len());
    }
    let message = Message { topic: b"a/b", payload: b"1", retain: true };
    let mut session = Session::new(3).expect("fits");
    let mut out = [0u8; 64];
    let step = data.first().map_or(1, |&b| usize::from(b % 7) + 1);
    for piece in data.chunks(step) {
        match session.receive(piece) {
            Event::Done => {
                assert_eq!(session.acknowledged(), 3);
                assert_eq!(session.published(), 3);
                break;
            }
            Event::Waiting | Event::Accepted => {}
            _ => break,
        }
        if let Ok(n) = session.publish(&mut out, &message) {
            assert!(n <= out.len());
        }
        assert!(session.acknowledged() <= session.published());
    }
});
