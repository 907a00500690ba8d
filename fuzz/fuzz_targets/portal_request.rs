//! Fuzz target: arbitrary bytes on a portal connection, split where the fuzzer chooses.
//!
//! The first input byte picks the split point (as a fraction of the rest), so requests
//! arriving in two TCP segments are explored too. Properties: `receive` never panics; every
//! response starts with a status line, ends its head with a blank line, and carries a
//! Content-Length equal to its body's length; a request that starts a test only ever comes
//! with a 303 to the status page; when the whole input arrives in one piece, the streamed
//! form of the same response, read back in fuzzer-sized pieces, gives exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::portal::{
    Network, Portal, PortalConfig, RESPONSE_CAPACITY, Reply, RequestBuffer, ScanList, Security,
    Streamed,
};
use ramkey::rtc_record::Ssid;

fn portal() -> Portal {
    let mut portal = Portal::new(PortalConfig::new([192, 168, 4, 1], 80, "ramkey-A1B2C3"));
    let scan: &mut ScanList = portal.scan_mut();
    for (name, security) in [
        (&b"Garden"[..], Security::Secured),
        (b"Cafe", Security::Open),
    ] {
        if let Ok(ssid) = Ssid::new(name) {
            scan.add(Network {
                ssid,
                rssi: -50,
                security,
                channel: 6,
            });
        }
    }
    portal
}

fn check(response: &[u8]) {
    assert!(response.starts_with(b"HTTP/1.1 "), "no status line");
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head ends with a blank line");
    let head = core::str::from_utf8(&response[..end]).expect("ASCII head");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .expect("a number");
    let body = response.len() - end - 4;
    assert!(
        body == length || body == 0,
        "Content-Length {length}, body {body}"
    );
}

/// The same request answered through `receive_streamed`, read back in `piece`-byte pieces,
/// must give exactly the bytes `receive` wrote.
fn streamed_matches(data: &[u8], piece: usize, whole: &[u8]) {
    let mut portal = portal();
    let mut buffer = RequestBuffer::new();
    let response = match portal.receive_streamed(&mut buffer, data) {
        Streamed::Incomplete => return,
        Streamed::Respond(r) | Streamed::Connect(r, _) => r,
    };
    let mut bytes = Vec::new();
    let mut window = vec![0u8; piece];
    loop {
        let n = portal.read_response(&response, bytes.len(), &mut window);
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&window[..n]);
    }
    assert_eq!(
        bytes, whole,
        "pieces of {piece} bytes differ from the whole response"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = rest.len() * usize::from(split) / 255;
    let (first, second) = rest.split_at(at.min(rest.len()));
    let mut portal = portal();
    let mut buffer = RequestBuffer::new();
    let mut out = vec![0u8; RESPONSE_CAPACITY];
    for part in [first, second] {
        match portal.receive(&mut buffer, part, &mut out) {
            Reply::Incomplete => {}
            Reply::Respond { len } if part.len() == rest.len() => {
                check(&out[..len]);
                streamed_matches(rest, 1 + usize::from(split) * 7, &out[..len]);
            }
            Reply::Respond { len } => check(&out[..len]),
            Reply::Connect { len, .. } => {
                check(&out[..len]);
                assert!(out.starts_with(b"HTTP/1.1 303 See Other\r\n"));
            }
        }
    }
});
