//! Fuzz target: arbitrary identity-sector bytes fed to the identity decoder.
//!
//! Properties: `decode` never panics; a passphrase it returns is 8..=63 printable ASCII and
//! encodes back to exactly the bytes it was read from (no second form of a valid record).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::identity;

fuzz_target!(|data: &[u8]| {
    let Ok(passphrase) = identity::decode(data) else {
        return;
    };
    let text = passphrase.expose_secret();
    assert!((identity::MIN_LEN..=identity::MAX_LEN).contains(&text.len()));
    assert!(text.iter().all(|b| (0x20..=0x7E).contains(b)));
    let record = identity::encode(&passphrase);
    assert_eq!(record[..], data[..identity::RECORD_LEN]);
});
