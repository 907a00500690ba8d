//! Fuzz target: arbitrary flash writes through the flash firewall.
//!
//! The input chooses a secret (8..=64 bytes), where a write lands (anywhere in and around the
//! SDK's parameter area: data sectors, flag sector, unaligned) and its bytes. Properties: the
//! firewall never panics; a refused write reaches flash not at all; whatever reaches flash
//! never contains the secret (unless it is made only of the firewall's own fill bytes); credential fields of a data sector reach flash blank; a write
//! that left the firewall unchanged reaches flash byte for byte; its read-back is answered only
//! when the write was changed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramkey::firewall::{Firewall, Verdict};

const AREA: u32 = 0x3000;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let secret_len = 8 + usize::from(data[0]) % 57;
    let place = u32::from(u16::from_le_bytes([data[1], data[2]])) % 0x4000 + 0x2000;
    let rest = &data[3..];
    if rest.len() < secret_len {
        return;
    }
    let (secret, body) = rest.split_at(secret_len);
    let address = if data[0] & 0x80 == 0 { place & !3 } else { place };
    let body = if data[0] & 0x40 == 0 { &body[..body.len() & !3] } else { body };
    let mut firewall = Firewall::new(AREA);
    let mut written: Vec<(u32, Vec<u8>)> = Vec::new();
    let verdict = firewall
        .write(address, body, &[secret], &mut |at: u32, chunk: &[u8]| {
            written.push((at, chunk.to_vec()));
            Ok::<(), ()>(())
        })
        .expect("the sink never fails here");
    let flat: Vec<u8> = written.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    match verdict {
        Verdict::Refused(_) => assert!(written.is_empty()),
        Verdict::Unchanged => {
            assert_eq!(flat, body);
            assert!(!firewall.read_back(address, body.len() as u32));
        }
        Verdict::Cleaned { .. } => {
            assert_eq!(flat.len(), body.len());
            assert!(firewall.read_back(address, body.len() as u32));
        }
    }
    // A "secret" made only of the bytes the firewall writes itself (0x00, 0x01, 0xFF) is in
    // every blanked field; the firewall skips such strings (no real key looks like that).
    let degenerate = secret.iter().all(|&b| matches!(b, 0x00 | 0x01 | 0xFF));
    if !degenerate {
        assert!(!flat.windows(secret.len()).any(|w| w == secret));
    }
    // A write covering a whole data-sector block stores no credential.
    if !matches!(verdict, Verdict::Refused(_)) && address == AREA && body.len() >= 0x4A4 {
        let block = &flat[..0x4A4];
        assert_eq!(ramkey::firewall::holds_credentials(|offset, out: &mut [u8]| {
            out.copy_from_slice(&block[offset as usize..offset as usize + out.len()]);
            Ok::<(), ()>(())
        }), Ok(false));
    }
});
