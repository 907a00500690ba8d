//! Toolchain self-test: a fixed workload whose printed result must be identical on the host
//! and on the lx106.
//!
//! The lx106 build goes through an unusual path (custom target, assembly rewritten by the
//! literal-pool fix, GNU `as`, no hardware divide). This module exercises the parts most
//! likely to break there: 64-bit division and remainder, `core::fmt` (integers, padding,
//! hex), slices and sorting, and a `match` large enough to become a jump table. The host
//! runs it in unit tests; `cargo xtask test` boots the `selftest` firmware under QEMU and
//! compares the lines it prints with the host's, byte for byte. It never uses floats on a
//! hot path and needs no heap.

use core::fmt::{self, Write};

/// Writes the self-test report, one `selftest:` line per check, ending with a checksum line.
pub fn report(out: &mut impl Write) -> fmt::Result {
    let mut sum = Fnv::new();

    // 64-bit division and remainder go through compiler_builtins (no hardware divide).
    let divisions: [(u64, u64); 4] = [
        (u64::MAX, 4_294_967_291),
        (1_000_000_000_000, 7),
        (0x0123_4567_89AB_CDEF, 0xFFFF),
        (987_654_321_987_654_321, 123_456_789),
    ];
    for (n, d) in divisions {
        let (q, r) = (core::hint::black_box(n) / d, core::hint::black_box(n) % d);
        sum.add(q);
        sum.add(r);
        writeln!(out, "selftest: {n} / {d} = {q} rem {r}")?;
    }
    let signed = core::hint::black_box(-9_223_372_036_854_775_807i64) / 3;
    sum.add(signed as u64);
    writeln!(
        out,
        "selftest: i64 {signed} {:+} {:>8}|{:<6}|{:#010x}",
        -42, 7, "ab", 0xBEEFu32
    )?;

    // Slices: sort, search, windows, rev.
    let mut values = [29u32, 3, 17, 3, 101, 0, 64, 8];
    values.sort_unstable();
    let found = values.binary_search(&64).ok();
    let max_step = values.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let reversed_sum: u32 = values.iter().rev().step_by(2).sum();
    sum.add(u64::from(max_step) + u64::from(reversed_sum));
    writeln!(
        out,
        "selftest: sorted {values:?} found {found:?} step {max_step} rev {reversed_sum}"
    )?;

    // A dense match: LLVM turns it into a jump table, whose literals the fix must place.
    let mut text = [0u8; 16];
    for (i, slot) in text.iter_mut().enumerate() {
        *slot = table_lookup(core::hint::black_box(i as u32));
    }
    for &b in &text {
        sum.add(u64::from(b));
    }
    let text = core::str::from_utf8(&text).unwrap_or("?");
    writeln!(out, "selftest: table {text}")?;

    writeln!(out, "selftest: checksum {:016x}", sum.finish())
}

fn table_lookup(i: u32) -> u8 {
    match i {
        0 => b'r',
        1 => b'a',
        2 => b'm',
        3 => b'k',
        4 => b'e',
        5 => b'y',
        6 => b'-',
        7 => b'l',
        8 => b'x',
        9 => b'1',
        10 => b'0',
        11 => b'6',
        12 => b'-',
        13 => b'o',
        14 => b'k',
        _ => b'!',
    }
}

/// FNV-1a over 64-bit values: a small checksum of every computed number.
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, value: u64) {
        for byte in value.to_le_bytes() {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    const fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[test]
    fn report_has_the_known_values() {
        let mut s = String::new();
        report(&mut s).unwrap();
        assert!(
            s.contains("selftest: 1000000000000 / 7 = 142857142857 rem 1\n"),
            "{s}"
        );
        assert!(
            s.contains("selftest: 18446744073709551615 / 4294967291 = 4294967301 rem 24\n"),
            "{s}"
        );
        assert!(s.contains("selftest: table ramkey-lx106-ok!\n"), "{s}");
        assert!(s.contains("found Some(6)"), "{s}");
        assert!(s.contains("-0042") || s.contains("-42"), "{s}");
        assert_eq!(s.lines().filter(|l| l.starts_with("selftest: ")).count(), 8);
    }
}
