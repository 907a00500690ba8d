//! The few C library pieces the SDK's libraries expect and do not bring.
//!
//! The SDK ships its own `libc.a`, but ramkey does not link it (it is large and would
//! duplicate what the ROM and compiler_builtins provide). These definitions follow the C
//! standard (and newlib's ctype table format, which the SDK was compiled against).

use core::ffi::{c_int, c_void};

/// `memchr`: the first `c` in the `n` bytes at `s`, or null. Used by lwIP's espconn buffers.
///
/// # Safety
/// `s` must point to `n` readable bytes (the C contract).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memchr(s: *const c_void, c: c_int, n: usize) -> *mut c_void {
    let needle = c as u8;
    let start = s as *const u8;
    for i in 0..n {
        // SAFETY: i < n and the caller guarantees n readable bytes at s.
        let p = unsafe { start.add(i) };
        // SAFETY: as above.
        if unsafe { *p } == needle {
            return p as *mut c_void;
        }
    }
    core::ptr::null_mut()
}

// newlib's character class bits.
const UPPER: u8 = 0o1;
const LOWER: u8 = 0o2;
const DIGIT: u8 = 0o4;
const SPACE: u8 = 0o10;
const PUNCT: u8 = 0o20;
const CONTROL: u8 = 0o40;
const HEX: u8 = 0o100;
const BLANK: u8 = 0o200;

const fn class(c: u8) -> u8 {
    match c {
        b'A'..=b'F' => UPPER | HEX,
        b'G'..=b'Z' => UPPER,
        b'a'..=b'f' => LOWER | HEX,
        b'g'..=b'z' => LOWER,
        b'0'..=b'9' => DIGIT | HEX,
        b' ' => SPACE | BLANK,
        b'\t' => CONTROL | SPACE | BLANK,
        b'\n' | 0x0B | 0x0C | b'\r' => CONTROL | SPACE,
        0x00..=0x1F | 0x7F => CONTROL,
        0x21..=0x7E => PUNCT,
        _ => 0,
    }
}

/// Entry 0 is for EOF (-1), entry 1 + c for character c, as newlib's `_ctype_`.
static CTYPE_TABLE: [u8; 257] = {
    let mut table = [0u8; 257];
    let mut c = 0;
    while c < 256 {
        table[c + 1] = class(c as u8);
        c += 1;
    }
    table
};

/// A pointer that may live in a `static` (it points to immutable data).
#[repr(transparent)]
pub struct TablePointer(*const u8);

// SAFETY: the pointer targets an immutable static table; sharing it between contexts is fine.
unsafe impl Sync for TablePointer {}

/// newlib's `__ctype_ptr__`, read by the `isdigit`-style macros compiled into lwIP.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals, reason = "the C library's symbol name")]
pub static __ctype_ptr__: TablePointer = TablePointer(CTYPE_TABLE.as_ptr());
