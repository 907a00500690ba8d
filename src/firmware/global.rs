//! One callback-driven global: the SDK runs user callbacks one at a time on one core.

use core::cell::UnsafeCell;

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
