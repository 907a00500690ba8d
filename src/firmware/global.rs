//! Callback-driven globals and the static SDK timers they drive.
//!
//! The SDK runs user callbacks one at a time on one core; a [`Global`] relies on that.

use core::cell::UnsafeCell;
use core::ffi::c_void;

/// Single-core, callback-driven global: the SDK runs one callback at a time.
pub(crate) struct Global<T>(UnsafeCell<T>);

// SAFETY: the NONOS SDK runs user callbacks one at a time on its single core, and this
// module never touches these globals from interrupt context.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub(crate) const fn new(value: T) -> Self {
        Global(UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: single core, callbacks never nest into this module while `f` runs (f does
        // not call SDK functions that call back synchronously), so this is the only reference.
        f(unsafe { &mut *self.0.get() })
    }
}

/// An unarmed SDK timer, for a static (the SDK keeps a pointer to an armed timer).
pub(crate) const fn new_timer() -> wifi_sys::ETSTimer {
    wifi_sys::ETSTimer {
        timer_next: core::ptr::null_mut(),
        timer_expire: 0,
        timer_period: 0,
        timer_func: None,
        timer_arg: core::ptr::null_mut(),
    }
}

/// A TCP block with no addresses and no callbacks, for a static espconn's `proto.tcp`.
pub(crate) const fn tcp_block(local_port: i32) -> wifi_sys::esp_tcp {
    wifi_sys::esp_tcp {
        remote_port: 0,
        local_port,
        local_ip: [0; 4],
        remote_ip: [0; 4],
        connect_callback: None,
        reconnect_callback: None,
        disconnect_callback: None,
        write_finish_fn: None,
    }
}

/// Most distinct timers the firmware arms (lifecycle, setup and the report use eight).
const MAX_TIMERS: usize = 10;

/// Every timer ever armed, so that [`disarm_all`] can stop them before a restart or sleep.
static ARMED: Global<[Option<&'static Global<wifi_sys::ETSTimer>>; MAX_TIMERS]> =
    Global::new([None; MAX_TIMERS]);

/// (Re)arms a static timer to call `func` after `ms` milliseconds, once or repeatedly.
/// Does nothing once the firmware has asked for a restart or a deep sleep.
pub(crate) fn arm(
    timer: &'static Global<wifi_sys::ETSTimer>,
    func: unsafe extern "C" fn(*mut c_void),
    ms: u32,
    repeat: bool,
) {
    if super::power::halted() {
        return;
    }
    ARMED.with(|armed| {
        let known = armed.iter().flatten().any(|t| core::ptr::eq(*t, timer));
        if !known && let Some(free) = armed.iter_mut().find(|t| t.is_none()) {
            *free = Some(timer);
        }
    });
    timer.with(|t| {
        let t: *mut wifi_sys::ETSTimer = t;
        // SAFETY: the timer is static (the SDK keeps the pointer) and `func` has the SDK's
        // timer signature.
        unsafe {
            wifi_sys::ets_timer_disarm(t);
            wifi_sys::ets_timer_setfn(t, Some(func), core::ptr::null_mut());
            wifi_sys::ets_timer_arm_new(t, ms, repeat, true);
        }
    });
}

/// Disarms every timer [`arm`] ever armed.
pub(crate) fn disarm_all() {
    let timers = ARMED.with(|armed| *armed);
    for timer in timers.into_iter().flatten() {
        disarm(timer);
    }
}

/// Disarms a static timer.
pub(crate) fn disarm(timer: &'static Global<wifi_sys::ETSTimer>) {
    timer.with(|t| {
        // SAFETY: disarming a static timer; harmless if it is not armed.
        unsafe { wifi_sys::ets_timer_disarm(t) };
    });
}
