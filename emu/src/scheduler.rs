//! Posted tasks and software timers on a virtual clock.
//!
//! The real SDK runs one task at a time from its event loop and fires `ets_timer`s from a
//! hardware timer. Here time is virtual: it stands still while tasks run and jumps straight
//! to the next timer's expiry when nothing else is pending, so runs are fast and exactly
//! repeatable. When neither a task nor a timer is pending the device is idle and the run ends.

use core::cell::UnsafeCell;

use wifi_sys::{ETSEvent, ETSTimer};

/// Most timers armed at once (the firmware uses a handful).
const MAX_TIMERS: usize = 16;
/// Task priorities the SDK offers (0..=2).
const PRIORITIES: usize = 3;
/// Events queued per priority, at most (the SDK limits this by the caller's queue length).
const MAX_QUEUE: usize = 16;

type TaskFn = unsafe extern "C" fn(*mut ETSEvent);

#[derive(Clone, Copy)]
struct TaskSlot {
    func: Option<TaskFn>,
    capacity: usize,
    events: [(u32, u32); MAX_QUEUE],
    head: usize,
    count: usize,
}

impl TaskSlot {
    const EMPTY: TaskSlot = TaskSlot {
        func: None,
        capacity: 0,
        events: [(0, 0); MAX_QUEUE],
        head: 0,
        count: 0,
    };
}

/// The scheduler's whole state.
pub struct Scheduler {
    /// Virtual time in microseconds since boot.
    now_us: u64,
    tasks: [TaskSlot; PRIORITIES],
    timers: [Option<*mut ETSTimer>; MAX_TIMERS],
    /// Expiry (virtual µs) of each armed timer, parallel to `timers`.
    expiry: [u64; MAX_TIMERS],
    /// Period (µs) of each armed repeating timer, 0 for one-shot.
    period: [u64; MAX_TIMERS],
}

/// Single-core, interrupt-free global: the emulator runs one thing at a time.
pub struct Global<T>(UnsafeCell<T>);

// SAFETY: the emulator runs on one core with no interrupts or threads, so no two accesses
// can ever overlap.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Global(UnsafeCell::new(value))
    }

    /// Runs `f` with exclusive access. `f` must not call back into firmware code (which could
    /// re-enter the emulator and ask for the same global).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: single core, no interrupts, and callers never re-enter (see above), so this
        // is the only live reference.
        f(unsafe { &mut *self.0.get() })
    }
}

/// The one scheduler.
pub static SCHEDULER: Global<Scheduler> = Global::new(Scheduler {
    now_us: 0,
    tasks: [TaskSlot::EMPTY; PRIORITIES],
    timers: [None; MAX_TIMERS],
    expiry: [0; MAX_TIMERS],
    period: [0; MAX_TIMERS],
});

/// What the event loop runs next.
pub enum Next {
    /// A posted event for a task.
    Task(TaskFn, ETSEvent),
    /// An expired timer: its callback and argument.
    Timer(
        unsafe extern "C" fn(*mut core::ffi::c_void),
        *mut core::ffi::c_void,
    ),
    /// Nothing is pending.
    Idle,
}

impl Scheduler {
    /// Virtual microseconds since boot.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Registers a task at a priority, like `system_os_task`.
    pub fn register_task(&mut self, func: Option<TaskFn>, priority: u8, queue_len: u8) -> bool {
        let Some(slot) = self.tasks.get_mut(usize::from(priority)) else {
            return false;
        };
        if func.is_none() || queue_len == 0 || slot.func.is_some() {
            return false;
        }
        *slot = TaskSlot {
            func,
            capacity: usize::from(queue_len).min(MAX_QUEUE),
            ..TaskSlot::EMPTY
        };
        true
    }

    /// Queues an event, like `system_os_post`.
    pub fn post(&mut self, priority: u8, signal: u32, parameter: u32) -> bool {
        let Some(slot) = self.tasks.get_mut(usize::from(priority)) else {
            return false;
        };
        if slot.func.is_none() || slot.count >= slot.capacity {
            return false;
        }
        let index = (slot.head + slot.count) % MAX_QUEUE;
        slot.events[index] = (signal, parameter);
        slot.count += 1;
        true
    }

    /// Arms (or re-arms) a timer.
    pub fn arm(&mut self, timer: *mut ETSTimer, delay_us: u64, repeat: bool) {
        self.disarm(timer);
        if let Some(index) = self.timers.iter().position(Option::is_none) {
            self.timers[index] = Some(timer);
            self.expiry[index] = self.now_us + delay_us;
            self.period[index] = if repeat { delay_us.max(1) } else { 0 };
        } else {
            crate::semihosting::say!("too many timers armed; the SDK would misbehave too");
            crate::semihosting::exit(crate::sdk::EXIT_EMULATOR_LIMIT);
        }
    }

    /// Disarms a timer if it is armed.
    pub fn disarm(&mut self, timer: *mut ETSTimer) {
        for slot in self.timers.iter_mut() {
            if *slot == Some(timer) {
                *slot = None;
            }
        }
    }

    /// Moves the clock to `now_us` (never backwards): the host's clock, while bridged.
    pub fn set_now(&mut self, now_us: u64) {
        self.now_us = self.now_us.max(now_us);
    }

    /// When the earliest armed timer is due.
    pub fn next_expiry(&self) -> Option<u64> {
        (0..MAX_TIMERS)
            .filter(|&i| self.timers[i].is_some())
            .map(|i| self.expiry[i])
            .min()
    }

    /// Whether a posted event is waiting.
    pub fn task_pending(&self) -> bool {
        self.tasks.iter().any(|t| t.func.is_some() && t.count > 0)
    }

    /// Like [`Scheduler::next`], but without moving the clock: a timer runs only once it is
    /// due (the clock is the host's, while bridged).
    pub fn next_due(&mut self) -> Next {
        if self.task_pending() {
            return self.next();
        }
        match self.next_expiry() {
            Some(expiry) if expiry <= self.now_us => self.next(),
            _ => Next::Idle,
        }
    }

    /// Takes the next thing to run: the highest-priority posted event, else the earliest timer
    /// (advancing the clock to it).
    pub fn next(&mut self) -> Next {
        for slot in self.tasks.iter_mut().rev() {
            if let (Some(func), true) = (slot.func, slot.count > 0) {
                let (sig, par) = slot.events[slot.head];
                slot.head = (slot.head + 1) % MAX_QUEUE;
                slot.count -= 1;
                return Next::Task(func, ETSEvent { sig, par });
            }
        }
        let earliest = (0..MAX_TIMERS)
            .filter(|&i| self.timers[i].is_some())
            .min_by_key(|&i| (self.expiry[i], i));
        let Some(index) = earliest else {
            return Next::Idle;
        };
        let Some(timer) = self.timers[index] else {
            return Next::Idle;
        };
        self.now_us = self.now_us.max(self.expiry[index]);
        if self.period[index] > 0 {
            self.expiry[index] += self.period[index];
        } else {
            self.timers[index] = None;
        }
        // SAFETY: the firmware handed us this timer through ets_timer_arm_new and the SDK
        // contract says it stays valid while armed; we only read its callback fields.
        let (func, arg) = unsafe { ((*timer).timer_func, (*timer).timer_arg) };
        match func {
            Some(func) => Next::Timer(func, arg),
            None => self.next(),
        }
    }
}
