//! Constant text kept in flash on the device, read one aligned 32-bit word at a time.
//!
//! On the ESP8266, `.rodata` sits in DRAM: the flash-mapped window (0x4020_0000..) accepts
//! only aligned 32-bit loads, and LLVM reads string constants with byte loads, which fault
//! there. The setup portal's page text (about 4 KiB) would take that much of the 80 KiB DRAM
//! the SDK's heap also lives in. [`flash_text!`](crate::flash_text!) stores a string as
//! 32-bit words in `.irom.text.ramkey_text` (linked into the flash-mapped `.irom0.text`) and
//! [`FlashText`] reads it back only through whole-word atomic loads, which LLVM can neither
//! narrow nor split: on the lx106 each is a call to `__atomic_load_4` (`memw; l32i`). On the
//! host the words are ordinary statics, so the same code is tested there; `cargo xtask test`
//! checks under QEMU that the device never reads flash with a narrower load.
//!
//! Must never: hand out a `&[u8]` or `&str` view of the words (a byte load would follow).

use core::sync::atomic::{AtomicU32, Ordering};

/// A string stored as little-endian 32-bit words; see the module documentation.
#[derive(Clone, Copy)]
pub struct FlashText {
    words: &'static [AtomicU32],
    len: usize,
}

impl core::fmt::Debug for FlashText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FlashText({} bytes)", self.len)
    }
}

impl FlashText {
    /// Text of `len` bytes held in `words`; the macro [`flash_text!`](crate::flash_text!)
    /// is the way to make one. A `len` past the words is cut to what they hold.
    pub const fn new(words: &'static [AtomicU32], len: usize) -> FlashText {
        let held = words.len().saturating_mul(4);
        FlashText {
            words,
            len: if len < held { len } else { held },
        }
    }

    /// Bytes of text.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the text is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies bytes `start..start + out.len()` of the text into `out`, as far as the text
    /// goes; returns how many were copied (0 when `start` is at or past the end).
    pub fn read(&self, start: usize, out: &mut [u8]) -> usize {
        let end = start.saturating_add(out.len()).min(self.len);
        if start >= end {
            return 0;
        }
        let mut at = start;
        while at < end {
            let Some(word) = self.words.get(at / 4) else {
                break;
            };
            let bytes = word.load(Ordering::Relaxed).to_le_bytes();
            let from = at % 4;
            let take = (4 - from).min(end - at);
            if let (Some(dst), Some(src)) = (
                out.get_mut(at - start..at - start + take),
                bytes.get(from..from + take),
            ) {
                dst.copy_from_slice(src);
            }
            at += take;
        }
        at - start
    }

    /// Whether the text is byte for byte `other`.
    #[cfg(test)]
    fn equals(&self, other: &[u8]) -> bool {
        if other.len() != self.len {
            return false;
        }
        let mut chunk = [0u8; 16];
        let mut at = 0;
        while at < self.len {
            let n = self.read(at, &mut chunk);
            if other.get(at..at + n) != chunk.get(..n) {
                return false;
            }
            at += n;
        }
        true
    }
}

/// The words of `text`, little-endian, zero-padded; `N` must be `text.len().div_ceil(4)`
/// (the macro computes it). Used by [`flash_text!`](crate::flash_text!) at compile time.
pub const fn words<const N: usize>(text: &str) -> [AtomicU32; N] {
    let bytes = text.as_bytes();
    let mut out = [const { AtomicU32::new(0) }; N];
    let mut i = 0;
    while i < N {
        let mut word = [0u8; 4];
        let mut j = 0;
        while j < 4 {
            if 4 * i + j < bytes.len() {
                word[j] = bytes[4 * i + j];
            }
            j += 1;
        }
        out[i] = AtomicU32::new(u32::from_le_bytes(word));
        i += 1;
    }
    out
}

/// A [`FlashText`] for a string constant: in flash on the device, an ordinary static on the
/// host. `flash_text!("...")` is an expression of type `FlashText`.
#[macro_export]
macro_rules! flash_text {
    ($text:expr) => {{
        // Item names are not hygienic: these must not shadow a constant `$text` names.
        const RAMKEY_FLASH_TEXT: &str = $text;
        const RAMKEY_FLASH_WORDS: usize = RAMKEY_FLASH_TEXT.len().div_ceil(4);
        // The atomics are never stored to: they only make every read a whole-word load.
        #[cfg_attr(target_arch = "xtensa", allow(unsafe_code))]
        #[cfg_attr(
            target_arch = "xtensa",
            unsafe(link_section = ".irom.text.ramkey_text")
        )]
        static RAMKEY_IN_FLASH: [::core::sync::atomic::AtomicU32; RAMKEY_FLASH_WORDS] =
            $crate::flash_text::words::<RAMKEY_FLASH_WORDS>(RAMKEY_FLASH_TEXT);
        $crate::flash_text::FlashText::new(&RAMKEY_IN_FLASH, RAMKEY_FLASH_TEXT.len())
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = "<p>Connect \u{2026} this device</p>";

    #[test]
    fn reads_back_the_text() {
        let text = flash_text!(SAMPLE);
        assert_eq!(text.len(), SAMPLE.len());
        let mut out = [0u8; 64];
        assert_eq!(text.read(0, &mut out), SAMPLE.len());
        assert_eq!(&out[..SAMPLE.len()], SAMPLE.as_bytes());
        assert!(text.equals(SAMPLE.as_bytes()));
        assert!(!text.equals(b"<p>Connect"));
        let mut changed = SAMPLE.as_bytes().to_vec();
        changed[7] ^= 1;
        assert!(!text.equals(&changed));
    }

    #[test]
    fn empty_and_past_the_end() {
        let empty = flash_text!("");
        assert!(empty.is_empty());
        assert_eq!(empty.read(0, &mut [0u8; 4]), 0);
        let text = flash_text!("abcde");
        let mut out = [9u8; 4];
        assert_eq!(text.read(5, &mut out), 0);
        assert_eq!(text.read(usize::MAX, &mut out), 0);
        assert_eq!(out, [9; 4], "nothing written past the end");
        assert_eq!(text.read(3, &mut out), 2);
        assert_eq!(out, [b'd', b'e', 9, 9]);
    }

    #[test]
    fn length_is_capped_to_the_words() {
        static WORDS: [AtomicU32; 1] = words::<1>("abcd");
        assert_eq!(FlashText::new(&WORDS, 100).len(), 4);
    }

    proptest! {
        #[test]
        fn any_window_matches_the_string(start in 0usize..48, len in 0usize..48) {
            const TEXT: &str = "0123456789abcdefghijklmnopqrstuvwxyz+-";
            let text = flash_text!(TEXT);
            let mut out = [0u8; 48];
            let n = text.read(start, &mut out[..len]);
            let expected = TEXT.as_bytes().get(start..).unwrap_or(&[]);
            let expected = &expected[..expected.len().min(len)];
            prop_assert_eq!(&out[..n], expected);
        }
    }
}
