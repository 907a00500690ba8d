//! PSK derivation: a WPA passphrase and SSID become the network's 32-byte key (PMK).
//!
//! WPA/WPA2-Personal derives the key as PBKDF2-HMAC-SHA1(passphrase, SSID, 4096 rounds,
//! 32 bytes) (IEEE 802.11i, annex H.4). This module checks passphrases, performs that
//! derivation once at setup time, and accepts 64 hex digits as the key itself.
//!
//! Guarantees:
//! - every buffer that holds the passphrase or anything keyed by it (the HMAC key blocks, the
//!   two SHA-1 midstates, the running PBKDF2 blocks) belongs to this module and is zeroed when
//!   the work ends or is dropped;
//! - the derivation can run in slices ([`PskDerivation::step`]), so the firmware can return
//!   to the SDK between slices: the whole derivation is 4095 × 4 SHA-1 compressions, far too
//!   long for one NONOS task on an 80 MHz lx106 without starving the watchdog and the radio;
//! - results match the IEEE 802.11i annex H.4 vectors, RFC 6070 and the RustCrypto `pbkdf2`
//!   crate (tests).
//!
//! Must never: store the passphrase, log it, or panic on any input.
//!
//! Why not `pbkdf2::pbkdf2_hmac::<Sha1>`: that function keeps its running block in a local the
//! crate does not wipe, its HMAC state is wiped only with a `zeroize` feature this crate does
//! not enable, and it runs all 4096 rounds in one call. HMAC over a key shorter than one
//! block and PBKDF2 with one-block messages are a few lines over
//! [`sha1::block_api::compress`]; the RustCrypto crates stay the reference in the tests.

#![forbid(unsafe_code)]

use zeroize::Zeroize;

use crate::rtc_record::Ssid;
use crate::secret::{PSK_LEN, Passphrase, Psk};

/// PBKDF2 rounds that WPA prescribes.
pub const ROUNDS: u32 = 4096;

/// Shortest text passphrase WPA accepts.
pub const MIN_TEXT_LEN: usize = 8;

/// Longest text passphrase WPA accepts.
pub const MAX_TEXT_LEN: usize = 63;

/// Length of a passphrase given as the key in hex.
pub const HEX_KEY_LEN: usize = 2 * PSK_LEN;

/// What a valid passphrase is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassphraseKind {
    /// 8 to 63 printable ASCII characters, to derive the key from.
    Text,
    /// 64 hex digits that spell the 32-byte key itself.
    HexKey,
}

/// Why a byte string is not a WPA passphrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassphraseError {
    /// Fewer than 8 bytes.
    TooShort,
    /// More than 64 bytes.
    TooLong,
    /// 8 to 63 bytes, but one is not printable ASCII (space to `~`).
    NotPrintableAscii,
    /// Exactly 64 bytes, which must then be hex digits, and one is not.
    NotHex,
}

impl core::fmt::Display for PassphraseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PassphraseError::TooShort => "passphrase shorter than 8 characters",
            PassphraseError::TooLong => "passphrase longer than 64 characters",
            PassphraseError::NotPrintableAscii => {
                "passphrase has a character outside printable ASCII"
            }
            PassphraseError::NotHex => {
                "a 64-character passphrase must be hex digits (the key itself)"
            }
        })
    }
}

impl core::error::Error for PassphraseError {}

/// Checks a passphrase against WPA's rules: 8 to 63 printable ASCII characters (0x20 to
/// 0x7E), or exactly 64 hex digits.
///
/// # Errors
/// The first rule that `bytes` breaks.
pub fn classify(bytes: &[u8]) -> Result<PassphraseKind, PassphraseError> {
    match bytes.len() {
        0..MIN_TEXT_LEN => Err(PassphraseError::TooShort),
        MIN_TEXT_LEN..=MAX_TEXT_LEN => {
            if bytes.iter().all(|&b| (0x20..=0x7E).contains(&b)) {
                Ok(PassphraseKind::Text)
            } else {
                Err(PassphraseError::NotPrintableAscii)
            }
        }
        HEX_KEY_LEN => {
            if bytes.iter().all(u8::is_ascii_hexdigit) {
                Ok(PassphraseKind::HexKey)
            } else {
                Err(PassphraseError::NotHex)
            }
        }
        _ => Err(PassphraseError::TooLong),
    }
}

/// Derives the network key in one call: 4095 × 4 SHA-1 compressions for a text passphrase.
///
/// On the device prefer [`PskDerivation`] in slices; this is for hosts and tests.
pub fn derive(passphrase: &Passphrase, ssid: &Ssid) -> Psk {
    let mut derivation = PskDerivation::new(passphrase, ssid);
    loop {
        if let Some(psk) = derivation.step(u32::MAX) {
            return psk;
        }
    }
}

/// SHA-1 chaining state: five 32-bit words.
type Sha1State = [u32; 5];

/// SHA-1's initial chaining value (FIPS 180-4, 5.3.1).
const SHA1_INITIAL: Sha1State = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// Bytes in one SHA-1 block.
const BLOCK_LEN: usize = 64;

/// Bytes in one SHA-1 (and HMAC-SHA1) output.
const DIGEST_LEN: usize = 20;

/// PBKDF2 output blocks needed for 32 bytes of key: T1 (20 bytes) and 12 bytes of T2.
const LANES: usize = 2;

/// A PBKDF2-HMAC-SHA1 derivation of a WPA key that runs in slices.
///
/// Holds the two HMAC midstates keyed by the passphrase and both running PBKDF2 blocks; all
/// of it is zeroed on drop. Not printable, not cloneable.
pub struct PskDerivation {
    /// SHA-1 state after absorbing (key XOR ipad).
    inner: Sha1State,
    /// SHA-1 state after absorbing (key XOR opad).
    outer: Sha1State,
    /// The last U_j of each PBKDF2 block.
    last: [[u8; DIGEST_LEN]; LANES],
    /// The running XOR T_i of each PBKDF2 block.
    sum: [[u8; DIGEST_LEN]; LANES],
    /// Rounds still to run (each round advances both blocks).
    remaining: u32,
}

impl PskDerivation {
    /// Starts a derivation; this already runs the first round (6 compressions per lane plus
    /// the key setup). A hex passphrase is decoded here and needs no rounds at all.
    pub fn new(passphrase: &Passphrase, ssid: &Ssid) -> PskDerivation {
        match passphrase.kind() {
            PassphraseKind::Text => {
                PskDerivation::start(passphrase.expose_secret(), ssid.as_bytes(), ROUNDS)
            }
            PassphraseKind::HexKey => PskDerivation::from_hex(passphrase.expose_secret()),
        }
    }

    /// Rounds left before [`step`](PskDerivation::step) returns the key; each costs four
    /// SHA-1 compressions.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Runs at most `max_rounds` rounds and returns the key once all have run (and again on
    /// every later call).
    pub fn step(&mut self, max_rounds: u32) -> Option<Psk> {
        let rounds = max_rounds.min(self.remaining);
        let mut block = [0u8; BLOCK_LEN];
        let mut state = [0u32; 5];
        for _ in 0..rounds {
            for lane in 0..LANES {
                hmac_of_digest(
                    &self.inner,
                    &self.outer,
                    &mut self.last[lane],
                    &mut block,
                    &mut state,
                );
                for (s, u) in self.sum[lane].iter_mut().zip(&self.last[lane]) {
                    *s ^= u;
                }
            }
        }
        self.remaining -= rounds;
        block.zeroize();
        state.zeroize();
        if self.remaining > 0 {
            return None;
        }
        let mut psk = Psk::zeroed();
        let out = psk.expose_secret_mut();
        out[..DIGEST_LEN].copy_from_slice(&self.sum[0]);
        out[DIGEST_LEN..].copy_from_slice(&self.sum[1][..PSK_LEN - DIGEST_LEN]);
        Some(psk)
    }

    /// PBKDF2-HMAC-SHA1 with any round count (≥ 1); `key` at most 64 bytes, `salt` at most
    /// 51 bytes (one-block HMAC messages). WPA limits are far below both.
    fn start(key: &[u8], salt: &[u8], rounds: u32) -> PskDerivation {
        let mut derivation = PskDerivation {
            inner: SHA1_INITIAL,
            outer: SHA1_INITIAL,
            last: [[0; DIGEST_LEN]; LANES],
            sum: [[0; DIGEST_LEN]; LANES],
            remaining: rounds.saturating_sub(1),
        };
        // HMAC key block: the key padded with zeros (keys longer than a block are hashed by
        // HMAC, but WPA passphrases never are).
        let mut pad = [0u8; BLOCK_LEN];
        let key_len = key.len().min(BLOCK_LEN);
        pad[..key_len].copy_from_slice(&key[..key_len]);
        pad.iter_mut().for_each(|b| *b ^= 0x36);
        sha1::block_api::compress(&mut derivation.inner, core::slice::from_ref(&pad));
        pad.iter_mut().for_each(|b| *b ^= 0x36 ^ 0x5C);
        sha1::block_api::compress(&mut derivation.outer, core::slice::from_ref(&pad));
        pad.zeroize();

        // U_1 = HMAC(key, salt || INT(i)) for blocks i = 1, 2.
        let salt_len = salt.len().min(BLOCK_LEN - 9 - 4);
        let mut block = [0u8; BLOCK_LEN];
        let mut state = [0u32; 5];
        for lane in 0..LANES {
            block.fill(0);
            block[..salt_len].copy_from_slice(&salt[..salt_len]);
            // lane < 2, so the block number fits any integer type.
            let index = lane as u32 + 1;
            block[salt_len..salt_len + 4].copy_from_slice(&index.to_be_bytes());
            pad_block(&mut block, salt_len + 4);
            state = derivation.inner;
            sha1::block_api::compress(&mut state, core::slice::from_ref(&block));
            let mut inner_digest = [0u8; DIGEST_LEN];
            write_digest(&state, &mut inner_digest);
            hmac_outer(&derivation.outer, &mut inner_digest, &mut block, &mut state);
            derivation.last[lane] = inner_digest;
            derivation.sum[lane] = inner_digest;
            inner_digest.zeroize();
        }
        block.zeroize();
        state.zeroize();
        derivation
    }

    /// A finished derivation whose key is the 64 hex digits in `hex` (already checked).
    fn from_hex(hex: &[u8]) -> PskDerivation {
        let mut derivation = PskDerivation {
            inner: [0; 5],
            outer: [0; 5],
            last: [[0; DIGEST_LEN]; LANES],
            sum: [[0; DIGEST_LEN]; LANES],
            remaining: 0,
        };
        for (i, pair) in hex.chunks_exact(2).take(PSK_LEN).enumerate() {
            let byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
            derivation.sum[i / DIGEST_LEN][i % DIGEST_LEN] = byte;
        }
        derivation
    }
}

impl Drop for PskDerivation {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
        self.last.iter_mut().for_each(Zeroize::zeroize);
        self.sum.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl zeroize::ZeroizeOnDrop for PskDerivation {}

/// Replaces `digest` with HMAC(key, digest), the key given as its two midstates. `block` and
/// `state` are scratch space the caller wipes.
fn hmac_of_digest(
    inner: &Sha1State,
    outer: &Sha1State,
    digest: &mut [u8; DIGEST_LEN],
    block: &mut [u8; BLOCK_LEN],
    state: &mut Sha1State,
) {
    block.fill(0);
    block[..DIGEST_LEN].copy_from_slice(digest);
    pad_block(block, DIGEST_LEN);
    *state = *inner;
    sha1::block_api::compress(state, core::slice::from_ref(block));
    write_digest(state, digest);
    hmac_outer(outer, digest, block, state);
}

/// Replaces `inner_digest` with SHA-1((key XOR opad) || inner_digest).
fn hmac_outer(
    outer: &Sha1State,
    inner_digest: &mut [u8; DIGEST_LEN],
    block: &mut [u8; BLOCK_LEN],
    state: &mut Sha1State,
) {
    block.fill(0);
    block[..DIGEST_LEN].copy_from_slice(inner_digest);
    pad_block(block, DIGEST_LEN);
    *state = *outer;
    sha1::block_api::compress(state, core::slice::from_ref(block));
    write_digest(state, inner_digest);
}

/// SHA-1 padding for a message of one key block plus `len` bytes (`len` ≤ 55) already in
/// `block`, whose remaining bytes are zero.
fn pad_block(block: &mut [u8; BLOCK_LEN], len: usize) {
    block[len] = 0x80;
    // len ≤ 55, so the bit count is far below u64::MAX.
    let bits = ((BLOCK_LEN + len) as u64) * 8;
    block[BLOCK_LEN - 8..].copy_from_slice(&bits.to_be_bytes());
}

/// The big-endian bytes of a SHA-1 state: the digest.
fn write_digest(state: &Sha1State, out: &mut [u8; DIGEST_LEN]) {
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

/// The value of one hex digit (already checked to be one; anything else gives 0).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn derive_bytes(passphrase: &[u8], ssid: &[u8]) -> [u8; PSK_LEN] {
        let passphrase = Passphrase::new(passphrase).expect("valid passphrase");
        let ssid = Ssid::new(ssid).expect("valid SSID");
        *derive(&passphrase, &ssid).expose_secret()
    }

    /// IEEE 802.11i-2004 annex H.4 (IEEE 802.11-2016 J.4.2), test cases 1 to 3.
    #[test]
    fn ieee_802_11i_annex_h4_vectors() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                b"password",
                b"IEEE",
                "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e",
            ),
            (
                b"ThisIsAPassword",
                b"ThisIsASSID",
                "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af",
            ),
            (
                &[b'a'; 32],
                &[b'Z'; 32],
                "becb93866bb8c3832cb777c2f559807c8c59afcb6eae734885001300a981cc62",
            ),
        ];
        for (passphrase, ssid, expected) in cases {
            assert_eq!(derive_bytes(passphrase, ssid)[..], hex(expected)[..]);
        }
    }

    /// Extremes of both lengths (values from Python's hashlib.pbkdf2_hmac).
    #[test]
    fn longest_passphrase_longest_ssid_and_empty_ssid() {
        assert_eq!(
            derive_bytes(&[b'~'; 63], &[0xFF; 32])[..],
            hex("66aaf1b4f8b80dc2a173dacbdc23d6c39a2b54321d20473f06702fd36f89f871")[..]
        );
        assert_eq!(
            derive_bytes(b"12345678", b"")[..],
            hex("ffacf2bb9b14dab76a22249a52dd14cc2390a1e18d7011e58d5b16cfe7e0ef2b")[..]
        );
    }

    /// RFC 6070 PBKDF2-HMAC-SHA1 vectors 1 to 3 (first 20 bytes; 32-byte values from hashlib).
    #[test]
    fn rfc6070_vectors_with_other_round_counts() {
        let cases = [
            (
                1,
                "0c60c80f961f0e71f3a9b524af6012062fe037a6e0f0eb94fe8fc46bdc637164",
            ),
            (
                2,
                "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957cae93136266537a8d7bf4b76",
            ),
            (
                4096,
                "4b007901b765489abead49d926f721d065a429c12e463f6c4cd79401085b03db",
            ),
        ];
        for (rounds, expected) in cases {
            let mut derivation = PskDerivation::start(b"password", b"salt", rounds);
            let psk = derivation.step(u32::MAX).expect("all rounds run");
            assert_eq!(
                psk.expose_secret()[..],
                hex(expected)[..],
                "{rounds} rounds"
            );
        }
    }

    #[test]
    fn slices_give_the_same_key_as_one_call() {
        let passphrase = Passphrase::new(b"ThisIsAPassword").expect("valid");
        let ssid = Ssid::new(b"ThisIsASSID").expect("valid");
        let mut derivation = PskDerivation::new(&passphrase, &ssid);
        assert_eq!(derivation.remaining(), ROUNDS - 1);
        let mut calls = 0;
        let psk = loop {
            calls += 1;
            if let Some(psk) = derivation.step(100) {
                break psk;
            }
        };
        assert_eq!(calls, 41, "4095 rounds in slices of 100");
        assert_eq!(derivation.remaining(), 0);
        assert!(psk == derive(&passphrase, &ssid));
        assert!(derivation.step(0).expect("still finished") == psk);
        assert!(PskDerivation::new(&passphrase, &ssid).step(0).is_none());
    }

    #[test]
    fn hex_passphrase_is_the_key_itself() {
        let text = "0DC0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af";
        let key = derive_bytes(text.as_bytes(), b"any SSID is ignored");
        assert_eq!(key[..], hex(&text.to_ascii_lowercase())[..]);
        let passphrase = Passphrase::new(text.as_bytes()).expect("valid");
        let ssid = Ssid::new(b"x").expect("valid");
        assert_eq!(PskDerivation::new(&passphrase, &ssid).remaining(), 0);
    }

    #[test]
    fn classify_follows_the_wpa_rules() {
        assert_eq!(classify(b""), Err(PassphraseError::TooShort));
        assert_eq!(classify(b"1234567"), Err(PassphraseError::TooShort));
        assert_eq!(classify(b"12345678"), Ok(PassphraseKind::Text));
        assert_eq!(
            classify(b" ~ spaces and tildes ok"),
            Ok(PassphraseKind::Text)
        );
        assert_eq!(classify(&[b'x'; 63]), Ok(PassphraseKind::Text));
        assert_eq!(
            classify(b"tab\there!"),
            Err(PassphraseError::NotPrintableAscii)
        );
        assert_eq!(
            classify("àccentato".as_bytes()),
            Err(PassphraseError::NotPrintableAscii)
        );
        assert_eq!(
            classify(&[0x7F; 10]),
            Err(PassphraseError::NotPrintableAscii)
        );
        assert_eq!(classify(&[b'F'; 64]), Ok(PassphraseKind::HexKey));
        assert_eq!(classify(&[b'g'; 64]), Err(PassphraseError::NotHex));
        assert_eq!(classify(&[b'a'; 65]), Err(PassphraseError::TooLong));
        assert_eq!(classify(&[b'a'; 1000]), Err(PassphraseError::TooLong));
    }

    proptest! {
        /// Differential test against the RustCrypto pbkdf2 + hmac + sha1 crates for every
        /// key length an HMAC block holds, every SSID length and small round counts.
        #[test]
        fn matches_rustcrypto_pbkdf2(
            key in proptest::collection::vec(any::<u8>(), 0..=64),
            salt in proptest::collection::vec(any::<u8>(), 0..=32),
            rounds in 1u32..40,
        ) {
            let mut expected = [0u8; PSK_LEN];
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(&key, &salt, rounds, &mut expected);
            let mut derivation = PskDerivation::start(&key, &salt, rounds);
            let psk = derivation.step(u32::MAX).expect("all rounds run");
            prop_assert_eq!(psk.expose_secret(), &expected);
        }

        /// classify never panics, and accepts exactly what the rules describe.
        #[test]
        fn classify_accepts_exactly_the_rules(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let text = (8..=63).contains(&bytes.len()) && bytes.iter().all(|b| (0x20..=0x7E).contains(b));
            let hex = bytes.len() == 64 && bytes.iter().all(u8::is_ascii_hexdigit);
            match classify(&bytes) {
                Ok(PassphraseKind::Text) => prop_assert!(text),
                Ok(PassphraseKind::HexKey) => prop_assert!(hex),
                Err(_) => prop_assert!(!text && !hex),
            }
        }
    }
}
