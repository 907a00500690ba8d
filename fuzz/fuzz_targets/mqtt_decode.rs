//! Fuzz target: arbitrary bytes from a "broker" fed to the MQTT decoder and to a report.
//!
//! Properties: `decode` never panics and never claims more bytes than it was given; a report
//! fed the bytes in two pieces never panics, never writes past its output buffer, and is
//! `Done` only once every message was acknowledged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::mqtt::{Event, Message, Report, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = decode(data) {
        assert!(used <= data.len());
    }
    let messages = [
        Message { topic: b"a/b", payload: b"1", retain: true },
        Message { topic: b"a/c", payload: b"22", retain: false },
    ];
    let mut report = Report::<2>::new(&messages).expect("fits");
    let mut out = [0u8; 64];
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for piece in [&data[..cut], &data[cut..]] {
        match report.receive(piece, &mut out) {
            Event::Done(n) => {
                assert!(n <= out.len());
                assert_eq!(report.acknowledged(), messages.len());
                break;
            }
            Event::Send(n) => assert!(n <= out.len()),
            Event::Waiting => {}
            _ => break,
        }
    }
});
