//! Secrets: the network key and the passphrase, in types that cannot leak by accident.
//!
//! Guarantees:
//! - [`Psk`] and [`Passphrase`] implement neither `Debug` nor `Display`, so no format string,
//!   log line or panic message can print their bytes; types that contain them (for example
//!   [`NetworkKey`](crate::rtc_record::NetworkKey)) print `<redacted>` in their place.
//! - Both overwrite their bytes with zeros when dropped (crate `zeroize`, whose writes the
//!   compiler may not remove).
//! - Comparing two [`Psk`]s takes the same time whatever the bytes (no early exit).
//!
//! Must never: implement `Copy` (every copy would be one more place to wipe), hand out the
//! bytes except through the explicitly named [`Psk::expose_secret`] and
//! [`Passphrase::expose_secret`], or store a [`Passphrase`] anywhere but RAM for the time of
//! one derivation.
//!
//! Limits that safe Rust cannot lift: moving a value (returning it, passing it by value) may
//! leave a bitwise copy in a stack slot that nothing wipes. Keep secrets in one place and pass
//! references; code that builds one from its own buffer must wipe that buffer itself
//! (`zeroize::Zeroize::zeroize`).

#![forbid(unsafe_code)]

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::psk::{self, PassphraseError, PassphraseKind};

/// Bytes in a WPA/WPA2 pre-shared key (the pairwise master key derived from a passphrase).
pub const PSK_LEN: usize = 32;

/// Most bytes a [`Passphrase`] holds: 63 characters, or 64 hex digits that spell the key.
pub const PASSPHRASE_MAX_LEN: usize = 64;

/// Up to `N` secret bytes: the storage of every variable-length secret ([`Passphrase`], the
/// setup passphrase, the MQTT password). Not printable, not cloneable, zeroed on drop.
pub struct SecretBytes<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> SecretBytes<N> {
    /// A copy of `bytes`, or `None` if they are more than `N` (or 255). The caller keeps its
    /// own buffer and must wipe it.
    pub fn new(bytes: &[u8]) -> Option<SecretBytes<N>> {
        (bytes.len() <= N.min(usize::from(u8::MAX))).then(|| SecretBytes::truncated(bytes))
    }

    /// A copy of the first `N` (at most 255) bytes of `bytes`.
    pub fn truncated(bytes: &[u8]) -> SecretBytes<N> {
        let len = bytes.len().min(N).min(usize::from(u8::MAX));
        let mut secret = SecretBytes {
            bytes: [0; N],
            len: len as u8,
        };
        secret.bytes[..len].copy_from_slice(&bytes[..len]);
        secret
    }

    /// The bytes. The name is the warning: whatever reads them must not log or keep them.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl<const N: usize> Drop for SecretBytes<N> {
    fn drop(&mut self) {
        self.bytes.zeroize();
        self.len.zeroize();
    }
}

impl<const N: usize> ZeroizeOnDrop for SecretBytes<N> {}

/// A network's 32-byte pre-shared key (PMK): what the radio needs, and what the RTC record
/// keeps instead of the passphrase.
///
/// Not printable, zeroed on drop; equality is constant-time.
#[derive(Clone)]
pub struct Psk([u8; PSK_LEN]);

impl Psk {
    /// A key with the given bytes. The caller still owns `bytes` and should wipe its copy.
    pub fn from_bytes(bytes: &[u8; PSK_LEN]) -> Psk {
        Psk(*bytes)
    }

    /// An all-zero key, to be filled in place with [`Psk::expose_secret_mut`].
    pub(crate) const fn zeroed() -> Psk {
        Psk([0; PSK_LEN])
    }

    /// The key bytes. The name is the warning: whatever reads them must not log or keep them.
    pub fn expose_secret(&self) -> &[u8; PSK_LEN] {
        &self.0
    }

    /// The key bytes, writable, so decoders can fill a key without a temporary copy.
    pub(crate) fn expose_secret_mut(&mut self) -> &mut [u8; PSK_LEN] {
        &mut self.0
    }
}

impl PartialEq for Psk {
    /// Constant-time: looks at every byte whatever the first difference.
    fn eq(&self, other: &Psk) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for Psk {}

impl Drop for Psk {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Psk {}

/// A WPA passphrase as typed by the user, valid by construction: 8 to 63 printable ASCII
/// characters, or exactly 64 hex digits that spell the key itself.
///
/// It exists only in RAM, only while [`psk::derive`] or [`psk::PskDerivation`] turns it into
/// a [`Psk`]; it is never stored. Not printable, not cloneable, zeroed on drop.
pub struct Passphrase {
    bytes: SecretBytes<PASSPHRASE_MAX_LEN>,
    kind: PassphraseKind,
}

impl Passphrase {
    /// Checks `bytes` (see [`psk::classify`]) and copies them.
    ///
    /// The caller keeps its own buffer and must wipe it.
    ///
    /// # Errors
    /// The [`PassphraseError`] saying which rule `bytes` breaks; nothing is copied then.
    pub fn new(bytes: &[u8]) -> Result<Passphrase, PassphraseError> {
        let kind = psk::classify(bytes)?;
        // classify() accepted at most PASSPHRASE_MAX_LEN bytes.
        let bytes = SecretBytes::new(bytes).ok_or(PassphraseError::TooLong)?;
        Ok(Passphrase { bytes, kind })
    }

    /// The passphrase bytes (never empty). Whatever reads them must not log or keep them.
    pub fn expose_secret(&self) -> &[u8] {
        self.bytes.expose_secret()
    }

    /// Whether this is text to derive from or 64 hex digits that are the key.
    pub fn kind(&self) -> PassphraseKind {
        self.kind
    }
}

impl ZeroizeOnDrop for Passphrase {}

/// Compares two byte strings of equal length without an early exit; different lengths are
/// unequal (the length itself is not secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    // black_box keeps the optimiser from turning the loop into a comparison that stops early.
    core::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_equality_compares_every_byte() {
        let a = Psk::from_bytes(&[7; PSK_LEN]);
        let mut last = [7; PSK_LEN];
        last[PSK_LEN - 1] = 8;
        let mut first = [7; PSK_LEN];
        first[0] = 0;
        assert!(a == a.clone());
        assert!(a != Psk::from_bytes(&last));
        assert!(a != Psk::from_bytes(&first));
        assert!(!constant_time_eq(&[1, 2], &[1, 2, 3]));
        assert!(constant_time_eq(&[], &[]));
    }

    #[test]
    fn psk_zeroize_clears_the_bytes() {
        // Drop calls exactly this; observing the bytes after a real drop would need unsafe.
        let mut key = Psk::from_bytes(&[0xA5; PSK_LEN]);
        key.0.zeroize();
        assert_eq!(key.expose_secret(), &[0; PSK_LEN]);
    }

    #[test]
    fn passphrase_keeps_exactly_the_given_bytes() {
        let p = Passphrase::new(b"correct horse").expect("valid passphrase");
        assert_eq!(p.expose_secret(), b"correct horse");
        assert_eq!(p.kind(), PassphraseKind::Text);
        let hex = [b'a'; 64];
        let p = Passphrase::new(&hex).expect("64 hex digits");
        assert_eq!(p.expose_secret(), &hex[..]);
        assert_eq!(p.kind(), PassphraseKind::HexKey);
        assert!(matches!(
            Passphrase::new(b"short"),
            Err(PassphraseError::TooShort)
        ));
    }

    /// The secret types must not be printable; this is a compile-time property, checked
    /// here by asking the trait system (autoref specialisation would be overkill: a type
    /// that gained `Debug` would make `NotDebug` ambiguous and fail to compile).
    #[test]
    fn secrets_implement_neither_debug_nor_display() {
        trait NotDebug<A> {
            fn check() {}
        }
        impl<T: ?Sized> NotDebug<()> for T {}
        #[allow(dead_code, reason = "only the impl's existence matters")]
        struct IsDebug;
        impl<T: ?Sized + core::fmt::Debug> NotDebug<IsDebug> for T {}
        trait NotDisplay<A> {
            fn check() {}
        }
        impl<T: ?Sized> NotDisplay<()> for T {}
        #[allow(dead_code, reason = "only the impl's existence matters")]
        struct IsDisplay;
        impl<T: ?Sized + core::fmt::Display> NotDisplay<IsDisplay> for T {}

        <Psk as NotDebug<_>>::check();
        <Passphrase as NotDebug<_>>::check();
        <Psk as NotDisplay<_>>::check();
        <Passphrase as NotDisplay<_>>::check();
    }
}
