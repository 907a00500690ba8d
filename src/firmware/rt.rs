//! Runtime pieces the compiler expects: the panic handler and `abort`.
//!
//! The atomics (`__atomic_load_N` / `__atomic_store_N`) are in `atomics.S`: they need `memw`,
//! and upstream rustc has no inline assembly for Xtensa.

use core::panic::PanicInfo;

/// A panic is a firmware bug. Development builds print where it happened; production
/// builds print nothing. Both then ask the SDK for a restart and wait. A panic cannot return
/// to the SDK, so the SDK's 100 ms restart timer never fires (docs/sdk-model.md, M37): the
/// soft watchdog resets the chip 3 to 6 s later instead (M38). The boot decision trusts the
/// RTC record after a watchdog reset (and after a restart, whichever reason the SDK
/// reports), so a crash does not strand a deployed device in setup mode.
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
    loop {
        // Waiting for the watchdog. Polling the clock costs nothing on the chip and is what
        // lets the emulated SDK see time pass in a callback that never returns.
        // SAFETY: plain read of the system clock.
        core::hint::black_box(unsafe { wifi_sys::system_get_time() });
    }
}
