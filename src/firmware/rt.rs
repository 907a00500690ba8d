//! Runtime pieces the compiler expects: the panic handler and `abort`.
//!
//! The atomics (`__atomic_load_N` / `__atomic_store_N`) are in `atomics.S`: they need `memw`,
//! and upstream rustc has no inline assembly for Xtensa.

use core::panic::PanicInfo;

/// A panic is a firmware bug. Development builds print where it happened; production
/// builds print nothing. Both then ask the SDK for a restart and wait for it (the SDK
/// restarts from its own task, or the watchdog resets the chip if that never comes): the
/// boot decision trusts the RTC record after such a reset, so a crash does not strand a
/// deployed device in setup mode.
#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    #[cfg(not(feature = "production"))]
    {
        match info.location() {
            Some(location) => error!("panic at {}:{}", location.file(), location.line()),
            None => error!("panic"),
        }
    }
    #[cfg(feature = "production")]
    let _ = info;
    restart_and_wait()
}

/// LLVM lowers traps (for example `core::intrinsics::abort`) to a call to `abort`.
#[unsafe(no_mangle)]
pub extern "C" fn abort() -> ! {
    error!("abort");
    restart_and_wait()
}

fn restart_and_wait() -> ! {
    // SAFETY: system_restart takes no arguments and may be called from any context.
    unsafe { wifi_sys::system_restart() };
    #[allow(
        clippy::empty_loop,
        reason = "waiting for the SDK's restart or the watchdog"
    )]
    loop {}
}
