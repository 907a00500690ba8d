//! QEMU semihosting: console, files and exit, through the `simcall` instruction.

unsafe extern "C" {
    /// Defined in `start.S`: executes `simcall` with the call number and three arguments.
    fn ramkey_emu_simcall(call: u32, a: u32, b: u32, c: u32) -> i32;
}

const SYS_EXIT: u32 = 1;
const SYS_READ: u32 = 3;
const SYS_WRITE: u32 = 4;
const SYS_OPEN: u32 = 5;
const SYS_CLOSE: u32 = 6;
const SYS_LSEEK: u32 = 19;
const SYS_SELECT_ONE: u32 = 29;
/// `select_one`'s request: wait until the descriptor can be read.
const SELECT_ONE_READ: u32 = 1;

/// Linux `open` flags (QEMU passes them to the host unchanged).
pub const O_RDWR: u32 = 0o2;
/// Create if missing.
pub const O_CREAT: u32 = 0o100;
/// Truncate on open.
pub const O_TRUNC: u32 = 0o1000;
/// Append.
pub const O_APPEND: u32 = 0o2000;
/// Write only.
pub const O_WRONLY: u32 = 0o1;

/// File descriptor of QEMU's standard output.
pub const STDOUT: u32 = 1;

/// Writes bytes to a host file descriptor.
pub fn write(fd: u32, bytes: &[u8]) {
    // SAFETY: the pointer and length describe a live, readable slice; QEMU only reads it.
    unsafe {
        ramkey_emu_simcall(SYS_WRITE, fd, bytes.as_ptr() as u32, bytes.len() as u32);
    }
}

/// Opens a host file (path relative to QEMU's working directory); `None` if it fails.
pub fn open(path: &core::ffi::CStr, flags: u32) -> Option<u32> {
    // SAFETY: the path is a live NUL-terminated string; QEMU only reads it.
    let fd = unsafe { ramkey_emu_simcall(SYS_OPEN, path.as_ptr() as u32, flags, 0o644) };
    u32::try_from(fd).ok()
}

/// Closes a host file.
pub fn close(fd: u32) {
    // SAFETY: no pointers.
    unsafe {
        ramkey_emu_simcall(SYS_CLOSE, fd, 0, 0);
    }
}

/// Moves a host file's position to `offset` from the start; false if it fails.
pub fn seek(fd: u32, offset: u32) -> bool {
    // SAFETY: no pointers.
    unsafe { ramkey_emu_simcall(SYS_LSEEK, fd, offset, 0) == offset as i32 }
}

/// The size of a host file (its end, by `lseek(fd, 0, SEEK_END)`), if it can be told.
pub fn size(fd: u32) -> Option<u32> {
    // SAFETY: no pointers.
    let end = unsafe { ramkey_emu_simcall(SYS_LSEEK, fd, 0, 2) };
    u32::try_from(end).ok()
}

/// Reads up to `buffer.len()` bytes; the count read, or `None` on error.
pub fn read(fd: u32, buffer: &mut [u8]) -> Option<usize> {
    // SAFETY: the pointer and length describe a live, writable slice QEMU fills.
    let n = unsafe {
        ramkey_emu_simcall(
            SYS_READ,
            fd,
            buffer.as_mut_ptr() as u32,
            buffer.len() as u32,
        )
    };
    usize::try_from(n).ok()
}

/// Writes all bytes to a host file; false if fewer were written.
pub fn write_all(fd: u32, bytes: &[u8]) -> bool {
    // SAFETY: the pointer and length describe a live, readable slice; QEMU only reads it.
    let n = unsafe { ramkey_emu_simcall(SYS_WRITE, fd, bytes.as_ptr() as u32, bytes.len() as u32) };
    usize::try_from(n).is_ok_and(|n| n == bytes.len())
}

/// Waits until `fd` can be read or `timeout_us` passes (QEMU's `select_one`); true when it
/// can be read. The CPU does nothing meanwhile: this is how the emulator idles.
pub fn wait_readable(fd: u32, timeout_us: u64) -> bool {
    let timeval = [
        (timeout_us / 1_000_000) as u32,
        (timeout_us % 1_000_000) as u32,
    ];
    // SAFETY: `timeval` is a live pair of words QEMU only reads.
    let ready =
        unsafe { ramkey_emu_simcall(SYS_SELECT_ONE, fd, SELECT_ONE_READ, timeval.as_ptr() as u32) };
    ready > 0
}

/// Ends the QEMU run; `code` becomes QEMU's exit status.
pub fn exit(code: u32) -> ! {
    // SAFETY: the exit call takes no pointers.
    unsafe {
        ramkey_emu_simcall(SYS_EXIT, code, 0, 0);
    }
    // QEMU does not return from exit; if it ever did, stop here.
    #[allow(
        clippy::empty_loop,
        reason = "nothing left to run once the emulator has exited"
    )]
    loop {}
}

/// A `core::fmt::Write` sink that prints the emulator's own lines.
pub struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write(STDOUT, s.as_bytes());
        Ok(())
    }
}

/// Prints one line of the emulator's own, prefixed with `emu: `.
macro_rules! say {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::semihosting::Console, "emu: ");
        let _ = writeln!($crate::semihosting::Console, $($arg)*);
    }};
}
pub(crate) use say;
