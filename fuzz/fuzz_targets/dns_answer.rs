//! Fuzz target: arbitrary datagrams fed to the captive DNS responder.
//!
//! Properties: `answer` never panics; when it answers, the reply is a response (QR set,
//! NOERROR) to the same ID with one question, at most one record (the access point's
//! address, at the end), no authority or additional records, and it fits in 512 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::dns;

const AP: [u8; 4] = [192, 168, 4, 1];

fuzz_target!(|data: &[u8]| {
    let mut out = [0u8; 600];
    let Ok(len) = dns::answer(data, AP, &mut out) else {
        return;
    };
    assert!(len <= dns::MAX_DATAGRAM + 16);
    let reply = &out[..len];
    assert_eq!(reply[..2], data[..2], "ID kept");
    assert_eq!(reply[2] & 0x80, 0x80, "a response");
    assert_eq!(reply[3] & 0x0F, 0, "NOERROR");
    assert_eq!(reply[4..6], [0, 1], "one question");
    assert!(reply[6..8] == [0, 0] || reply[6..8] == [0, 1]);
    assert_eq!(reply[8..12], [0, 0, 0, 0]);
    if reply[7] == 1 {
        assert_eq!(reply[len - 4..], AP);
    }
    // A smaller buffer is refused, never overrun.
    let mut short = [0u8; 16];
    if len > short.len() {
        assert_eq!(
            dns::answer(data, AP, &mut short),
            Err(dns::DnsError::OutputTooSmall)
        );
    }
});
