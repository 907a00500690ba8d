//! RTC user memory through the SDK: the `RtcMemory` the portable record and boot state use.
//!
//! The SDK addresses RTC memory in 4-byte blocks (user blocks 64..191) and the hardware only
//! accepts aligned 32-bit accesses; `system_rtc_mem_read`/`write` need a word-aligned buffer.
//! Words are passed in `u32` slices, so alignment holds by construction.

use crate::rtc_record::{RTC_USER_FIRST_BLOCK, RtcError, RtcMemory, USER_WORDS};

/// RTC user memory, owned by the firmware's single thread of control.
pub struct SdkRtc;

fn block_of(word_offset: usize, words: usize) -> Result<u8, RtcError> {
    let end = word_offset.checked_add(words).ok_or(RtcError::OutOfRange)?;
    if end > USER_WORDS {
        return Err(RtcError::OutOfRange);
    }
    u8::try_from(usize::from(RTC_USER_FIRST_BLOCK) + word_offset).map_err(|_| RtcError::OutOfRange)
}

impl RtcMemory for SdkRtc {
    fn read_words(&self, word_offset: usize, out: &mut [u32]) -> Result<(), RtcError> {
        let block = block_of(word_offset, out.len())?;
        let bytes = u16::try_from(out.len() * 4).map_err(|_| RtcError::OutOfRange)?;
        // SAFETY: `out` is a live, word-aligned buffer of exactly `bytes` bytes and the range
        // was checked to stay inside the user blocks.
        let ok = unsafe { wifi_sys::system_rtc_mem_read(block, out.as_mut_ptr().cast(), bytes) };
        if ok { Ok(()) } else { Err(RtcError::Refused) }
    }

    fn write_words(&mut self, word_offset: usize, data: &[u32]) -> Result<(), RtcError> {
        let block = block_of(word_offset, data.len())?;
        let bytes = u16::try_from(data.len() * 4).map_err(|_| RtcError::OutOfRange)?;
        // SAFETY: as for reads; the SDK only reads from `data`.
        let ok = unsafe { wifi_sys::system_rtc_mem_write(block, data.as_ptr().cast(), bytes) };
        if ok { Ok(()) } else { Err(RtcError::Refused) }
    }
}
