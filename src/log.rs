//! Logging: the one place console output is decided.
//!
//! Every module logs through `info!`, `warn!` and `error!`. In development builds they
//! format into a fixed buffer and hand the bytes to a sink (the SDK console on the target, a
//! capture buffer in host tests). With the `production` feature every macro expands to
//! nothing: the arguments are not evaluated and no format string reaches the image.
//!
//! Secret values cannot be logged: the secret types implement neither `Debug` nor `Display`.

/// How important a log line is; printed as a one-letter prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed and the device takes a fallback.
    Error,
    /// Something unexpected that the device recovers from.
    Warn,
    /// Normal progress: boot lines, decisions.
    Info,
}

impl Level {
    /// The prefix written before the message.
    pub const fn prefix(self) -> &'static str {
        match self {
            Level::Error => "E ",
            Level::Warn => "W ",
            Level::Info => "I ",
        }
    }
}

/// A fixed-size line buffer that truncates instead of failing.
pub struct LineBuffer {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
    truncated: bool,
}

/// The longest log line; longer lines are cut and end in `~`.
pub const LINE_CAPACITY: usize = 160;

impl LineBuffer {
    /// An empty line.
    pub const fn new() -> Self {
        LineBuffer {
            bytes: [0; LINE_CAPACITY],
            len: 0,
            truncated: false,
        }
    }

    /// The text written so far, with a `~` in place of the last byte when it was cut.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len < LINE_CAPACITY {
                self.bytes[self.len] = b;
                self.len += 1;
            } else if !self.truncated {
                self.truncated = true;
                self.bytes[LINE_CAPACITY - 1] = b'~';
            }
        }
        Ok(())
    }
}

/// Formats one line (prefix, message, newline) into a buffer.
#[cfg(not(feature = "production"))]
pub fn format_line(level: Level, args: core::fmt::Arguments<'_>) -> LineBuffer {
    use core::fmt::Write as _;
    let mut line = LineBuffer::new();
    // LineBuffer never reports an error: a long line is truncated instead.
    let _ = line.write_str(level.prefix());
    let _ = line.write_fmt(args);
    if line.len == LINE_CAPACITY {
        line.bytes[LINE_CAPACITY - 1] = b'\n';
    } else {
        let _ = line.write_str("\n");
    }
    line
}

/// Writes one formatted line to the console (target) or discards it (host library builds).
#[cfg(not(feature = "production"))]
#[doc(hidden)]
pub fn emit(level: Level, args: core::fmt::Arguments<'_>) {
    let line = format_line(level, args);
    sink(line.as_bytes());
}

#[cfg(all(not(feature = "production"), target_arch = "xtensa"))]
fn sink(bytes: &[u8]) {
    crate::firmware::console_write(bytes);
}

#[cfg(all(not(feature = "production"), not(target_arch = "xtensa")))]
fn sink(_bytes: &[u8]) {}

/// Logs at [`Level::Info`](crate::log::Level::Info). Compiled out in production builds.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::__log!($crate::log::Level::Info, $($arg)*) };
}

/// Logs at [`Level::Warn`](crate::log::Level::Warn). Compiled out in production builds.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::__log!($crate::log::Level::Warn, $($arg)*) };
}

/// Logs at [`Level::Error`](crate::log::Level::Error). Compiled out in production builds.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::__log!($crate::log::Level::Error, $($arg)*) };
}

#[cfg(not(feature = "production"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($arg:tt)*) => { $crate::log::emit($level, format_args!($($arg)*)) };
}

#[cfg(feature = "production")]
#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($arg:tt)*) => {{}};
}

#[cfg(all(test, not(feature = "production")))]
mod tests {
    use super::*;

    #[test]
    fn line_has_prefix_and_newline() {
        let line = format_line(Level::Warn, format_args!("reset {}", 5));
        assert_eq!(line.as_bytes(), b"W reset 5\n");
    }

    #[test]
    fn long_line_is_cut_and_still_ends_the_line() {
        let long = [b'x'; 300];
        let text = core::str::from_utf8(&long).unwrap();
        let line = format_line(Level::Info, format_args!("{text}"));
        assert_eq!(line.as_bytes().len(), LINE_CAPACITY);
        assert_eq!(line.as_bytes()[LINE_CAPACITY - 1], b'\n');
        assert_eq!(line.as_bytes()[LINE_CAPACITY - 2], b'x');
    }
}
