//! The SDK functions the firmware calls, emulated.
//!
//! Each is declared in `wifi-sys`; the `emulate!` macro checks the signatures match.

use core::ffi::{c_char, c_void};

use wifi_sys::{ETSEvent, ETSTimer, partition_item_t, rst_info};

use crate::emulate;
use crate::harness::Settings;
use crate::scheduler::{Global, Next, SCHEDULER};
use crate::semihosting::{self, say};

/// QEMU exit status: the device went idle (nothing pending).
pub const EXIT_IDLE: u32 = 0;
/// QEMU exit status: start-up failed the way the real SDK would boot-loop.
pub const EXIT_BOOT_LOOP: u32 = 3;
/// QEMU exit status: the emulator hit one of its own limits.
pub const EXIT_EMULATOR_LIMIT: u32 = 4;
/// QEMU exit status: the firmware called `system_restart`.
pub const EXIT_RESTART: u32 = 10;
/// QEMU exit status: the soft watchdog reset the chip (a callback never returned, M38).
pub const EXIT_WATCHDOG: u32 = 12;

/// `system_restart` and `system_deep_sleep` act this long after the call (M37).
const POWER_DELAY_US: u64 = 100_000;
/// A callback that keeps the SDK's loop from running this long is reset by the soft watchdog
/// (two 3 s periods, M38).
const SOFT_WDT_US: u64 = 6_000_000;
/// How far virtual time moves on at each `system_get_time` call inside one callback: the
/// emulator cannot see instructions, so a loop that polls the clock is how a busy wait shows.
const POLL_STEP_US: u64 = 100;

/// Events the loop runs before it declares the firmware stuck.
const MAX_EVENTS: u32 = 1_000_000;

unsafe extern "C" {
    fn user_pre_init();
    fn user_init();
}

/// Virtual microseconds now, without moving time on (unlike `system_get_time`).
pub fn now_us() -> u64 {
    if crate::net::bridged() {
        return crate::bridge::now_us();
    }
    SCHEDULER.with(|s| s.now_us()) + SYSTEM.with(|s| s.spin_us)
}

/// Moves virtual time on by `us` inside the current callback, as a busy wait does.
pub fn spin(us: u64) {
    SYSTEM.with(|s| s.spin_us += us);
}

/// The harness settings of this run.
pub fn settings() -> Settings {
    SYSTEM.with(|s| s.settings)
}

/// What the shared restart/deep-sleep timer will do when it fires (M37).
#[derive(Clone, Copy)]
enum Power {
    Restart,
    DeepSleep(u64),
}

struct System {
    settings: Settings,
    reset: rst_info,
    os_print: u8,
    flash_size_map: Option<u32>,
    init_done: Option<unsafe extern "C" fn()>,
    /// Set once `user_init` has returned (M35).
    user_init_returned: bool,
    power: Option<Power>,
    /// Virtual time the current callback has spent polling the clock.
    spin_us: u64,
}

static SYSTEM: Global<System> = Global::new(System {
    settings: Settings::DEFAULT,
    reset: rst_info {
        reason: 0,
        exccause: 0,
        epc1: 0,
        epc2: 0,
        epc3: 0,
        excvaddr: 0,
        depc: 0,
    },
    os_print: 1,
    flash_size_map: None,
    init_done: None,
    user_init_returned: false,
    power: None,
    spin_us: 0,
});

/// The shared `sta_con_timer` both power calls arm (M37).
static POWER_TIMER: Global<ETSTimer> = Global::new(ETSTimer {
    timer_next: core::ptr::null_mut(),
    timer_expire: 0,
    timer_period: 0,
    timer_func: None,
    timer_arg: core::ptr::null_mut(),
});

/// Whether `user_init` has returned (mode changes start and stop interfaces only then, M35).
pub fn user_init_returned() -> bool {
    SYSTEM.with(|s| s.user_init_returned)
}

/// Entry from `start.S`: the part of the SDK's start-up the firmware can observe.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.main")]
pub extern "C" fn ramkey_emu_main() -> ! {
    let settings = Settings::read();
    SYSTEM.with(|s| {
        s.settings = settings;
        s.reset.reason = settings.reset_reason;
    });
    say!("emulated SDK start, reset reason {}", settings.reset_reason);

    crate::net::start(settings.bridged);
    // M9, M10: the parameter block is loaded before anything of the firmware runs.
    crate::param::load_at_boot();
    // SAFETY: the firmware defines both entry points with the SDK's signatures; the SDK
    // calls them exactly once, in this order, before anything else.
    unsafe { user_pre_init() };
    let Some(map) = SYSTEM.with(|s| s.flash_size_map) else {
        say!("no valid partition table registered in user_pre_init: the SDK would boot-loop");
        semihosting::exit(EXIT_BOOT_LOOP);
    };
    say!("partition table accepted, flash size map {map}");
    // M12-M14: the SDK's own saves before user_init.
    crate::param::boot_saves(crate::wifi::STATION_MAC);
    // SAFETY: as above.
    unsafe { user_init() };
    SYSTEM.with(|s| {
        s.user_init_returned = true;
        s.spin_us = 0;
    });
    // M16: the start-up applies the RAM opmode and auto-connects, then calls init-done.
    crate::wifi::start_up_after_user_init();
    if let Some(init_done) = SYSTEM.with(|s| s.init_done.take()) {
        // SAFETY: registered by the firmware through system_init_done_cb with that signature.
        unsafe { init_done() };
    }

    if settings.bridged {
        bridged_loop();
    }
    for _ in 0..MAX_EVENTS {
        SYSTEM.with(|s| s.spin_us = 0);
        match SCHEDULER.with(|s| s.next()) {
            Next::Task(func, mut event) => {
                // SAFETY: registered through system_os_task by the firmware for exactly this.
                unsafe { func(&mut event) };
            }
            Next::Timer(func, arg) => {
                // SAFETY: set through ets_timer_setfn by the firmware together with its argument.
                unsafe { func(arg) };
            }
            Next::Idle => {
                report_console_pins();
                say!("idle: no task or timer pending");
                semihosting::exit(EXIT_IDLE);
            }
        }
    }
    say!("still busy after {MAX_EVENTS} events: stopping");
    semihosting::exit(EXIT_EMULATOR_LIMIT);
}

/// Longest idle wait while bridged, so a relay that dies is noticed.
const BRIDGED_WAIT_MAX_US: u64 = 500_000;

/// The event loop on the host's clock: run what is due, handle the relay's frames, and wait on
/// the bridge until a frame comes or the next timer is due. It ends when the firmware restarts
/// or sleeps, or when the relay closes the bridge.
fn bridged_loop() -> ! {
    loop {
        let now = crate::bridge::now_us();
        SCHEDULER.with(|s| s.set_now(now));
        crate::net::poll_bridge(0);
        let mut ran = false;
        loop {
            SYSTEM.with(|s| s.spin_us = 0);
            match SCHEDULER.with(|s| s.next_due()) {
                Next::Task(func, mut event) => {
                    // SAFETY: registered through system_os_task by the firmware.
                    unsafe { func(&mut event) };
                }
                Next::Timer(func, arg) => {
                    // SAFETY: set through ets_timer_setfn together with its argument.
                    unsafe { func(arg) };
                }
                Next::Idle => break,
            }
            ran = true;
        }
        if ran || crate::bridge::has_pending() {
            continue;
        }
        let wait = SCHEDULER
            .with(|s| s.next_expiry().map(|e| e.saturating_sub(s.now_us())))
            .unwrap_or(BRIDGED_WAIT_MAX_US)
            .min(BRIDGED_WAIT_MAX_US);
        crate::net::poll_bridge(wait);
    }
}

/// Prints the IO_MUX registers of the console pins (GPIO1, GPIO3, GPIO2) so tests can see
/// whether the firmware took them away from the UARTs. On the sim machine these addresses are
/// plain RAM that starts at zero, so "untouched" reads as 0.
pub fn report_console_pins() {
    let read = |address: usize| -> u32 {
        // SAFETY: IO_MUX registers are plain RAM on the sim machine; aligned 32-bit reads.
        unsafe { core::ptr::read_volatile(address as *const u32) }
    };
    say!(
        "io_mux gpio1={:#x} gpio3={:#x} gpio2={:#x}",
        read(0x6000_0818),
        read(0x6000_0814),
        read(0x6000_0838)
    );
}

emulate! {
    /// The console: one byte to standard output. The ROM version writes to UART0.
    fn ets_putc(c: c_char) {
        semihosting::write(semihosting::STDOUT, &[c as u8]);
    }
}

emulate! {
    /// Sets a UART's baud divisor; there is no UART here.
    fn uart_div_modify(uart_no: u8, divisor: u32) {
        let _ = (uart_no, divisor);
    }
}

emulate! {
    /// Stores the flag; the emulator has no SDK prints to silence.
    fn system_set_os_print(onoff: u8) {
        SYSTEM.with(|s| s.os_print = onoff);
    }
}

emulate! {
    /// The version string the firmware prints at boot.
    fn system_get_sdk_version() -> *const c_char {
        c"emulated SDK".as_ptr()
    }
}

emulate! {
    /// Reset information chosen by the harness.
    fn system_get_rst_info() -> *mut rst_info {
        SYSTEM.with(|s| &raw mut s.reset)
    }
}

/// M37: both power calls stop the interfaces and arm one shared 100 ms timer; the call
/// returns and the firmware and SDK keep running until it fires.
fn arm_power(power: Power) {
    crate::wifi::stop_interfaces();
    SYSTEM.with(|s| s.power = Some(power));
    let timer = POWER_TIMER.with(|t| {
        t.timer_func = Some(power_timer_fired);
        t.timer_arg = core::ptr::null_mut();
        t as *mut ETSTimer
    });
    SCHEDULER.with(|s| s.arm(timer, POWER_DELAY_US, false));
}

unsafe extern "C" fn power_timer_fired(_arg: *mut c_void) {
    let power = SYSTEM.with(|s| s.power.take());
    crate::rtc::save_user_area();
    report_console_pins();
    match power {
        Some(Power::DeepSleep(micros)) => {
            say!("deep sleep for {micros} us");
            semihosting::exit(crate::rtc::EXIT_DEEP_SLEEP);
        }
        Some(Power::Restart) | None => {
            say!("system_restart");
            semihosting::exit(EXIT_RESTART);
        }
    }
}

/// Arms the deferred deep sleep (called by `system_deep_sleep`).
pub fn arm_deep_sleep(micros: u64) {
    crate::gpio::check_at_sleep();
    arm_power(Power::DeepSleep(micros));
}

emulate! {
    /// Restarts 100 ms later (M37); the harness decides what boots next.
    fn system_restart() {
        say!("system_restart requested: restarting in 100 ms");
        arm_power(Power::Restart);
    }
}

emulate! {
    /// Checks the table like SDK 3.x does: a map it supports, and RF_CAL, PHY_DATA and
    /// SYSTEM_PARAMETER present, sector aligned and inside the chip.
    fn system_partition_table_regist(
        partition_table: *const partition_item_t,
        partition_num: u32,
        map: u32,
    ) -> bool {
        let flash_bytes: u32 = match map {
            2 => 0x10_0000,
            3 | 5 => 0x20_0000,
            4 | 6 => 0x40_0000,
            _ => {
                say!("partition table rejected: flash size map {map} is not supported");
                return false;
            }
        };
        if partition_table.is_null() || partition_num == 0 || partition_num > 32 {
            say!("partition table rejected: no entries");
            return false;
        }
        // SAFETY: the firmware passes a static table of `partition_num` entries.
        let table = unsafe { core::slice::from_raw_parts(partition_table, partition_num as usize) };
        let mut required = [false; 3];
        for item in table {
            let inside = item.addr % 0x1000 == 0
                && item.size > 0
                && item.addr.checked_add(item.size).is_some_and(|end| end <= flash_bytes);
            if !inside {
                say!("partition table rejected: type {} at {:#x}+{:#x}", item.type_, item.addr, item.size);
                return false;
            }
            match item.type_ {
                wifi_sys::SYSTEM_PARTITION_RF_CAL => required[0] = true,
                wifi_sys::SYSTEM_PARTITION_PHY_DATA => required[1] = true,
                wifi_sys::SYSTEM_PARTITION_SYSTEM_PARAMETER => {
                    required[2] = item.size == 0x3000;
                }
                _ => {}
            }
        }
        if required != [true; 3] {
            say!("partition table rejected: RF_CAL, PHY_DATA or SYSTEM_PARAMETER missing");
            return false;
        }
        SYSTEM.with(|s| s.flash_size_map = Some(map));
        true
    }
}

emulate! {
    /// Remembers the callback; called once `user_init` has returned.
    fn system_init_done_cb(cb: Option<unsafe extern "C" fn()>) {
        SYSTEM.with(|s| s.init_done = cb);
    }
}

emulate! {
    /// The map registered in `user_pre_init`.
    fn system_get_flash_size_map() -> u32 {
        SYSTEM.with(|s| s.flash_size_map.unwrap_or(0))
    }
}

emulate! {
    /// Virtual microseconds since boot, wrapping like the SDK's 32-bit counter. Inside one
    /// callback each call moves time on by [`POLL_STEP_US`]; a callback that polls past the
    /// soft watchdog's limit ends the run as the watchdog would (M38).
    fn system_get_time() -> u32 {
        let spin = SYSTEM.with(|s| {
            s.spin_us += POLL_STEP_US;
            s.spin_us
        });
        if crate::net::bridged() {
            // The host's clock; the relay answers within microseconds.
            return crate::bridge::now_us() as u32;
        }
        if spin > SOFT_WDT_US {
            crate::rtc::save_user_area();
            report_console_pins();
            say!("soft watchdog: a callback kept the SDK from running for {} s: reset", SOFT_WDT_US / 1_000_000);
            semihosting::exit(EXIT_WATCHDOG);
        }
        SCHEDULER.with(|s| (s.now_us() + spin) as u32)
    }
}

emulate! {
    /// Registers a task.
    fn system_os_task(
        task: Option<unsafe extern "C" fn(*mut ETSEvent)>,
        prio: u8,
        queue: *mut ETSEvent,
        qlen: u8,
    ) -> bool {
        let _ = queue;
        SCHEDULER.with(|s| s.register_task(task, prio, qlen))
    }
}

emulate! {
    /// Posts an event to a task.
    fn system_os_post(prio: u8, sig: u32, par: u32) -> bool {
        SCHEDULER.with(|s| s.post(prio, sig, par))
    }
}

emulate! {
    /// Sets a timer's callback (and disarms it, as the SDK requires before changing it).
    fn ets_timer_setfn(
        ptimer: *mut ETSTimer,
        pfunction: Option<unsafe extern "C" fn(*mut c_void)>,
        parg: *mut c_void,
    ) {
        SCHEDULER.with(|s| s.disarm(ptimer));
        if ptimer.is_null() {
            return;
        }
        // SAFETY: the firmware passes a timer it owns for as long as it is in use.
        unsafe {
            (*ptimer).timer_func = pfunction;
            (*ptimer).timer_arg = parg;
        }
    }
}

emulate! {
    /// Arms a timer in milliseconds or microseconds.
    fn ets_timer_arm_new(ptimer: *mut ETSTimer, time: u32, repeat_flag: bool, is_ms: bool) {
        if ptimer.is_null() {
            return;
        }
        let delay_us = if is_ms { u64::from(time) * 1000 } else { u64::from(time) };
        SCHEDULER.with(|s| s.arm(ptimer, delay_us, repeat_flag));
    }
}

emulate! {
    /// Disarms a timer.
    fn ets_timer_disarm(ptimer: *mut ETSTimer) {
        SCHEDULER.with(|s| s.disarm(ptimer));
    }
}

emulate! {
    /// The ADC (TOUT pin, 10 bits): the harness's value for this boot, 512 without one.
    fn system_adc_read() -> u16 {
        // The emulated board's probe is powered from GPIO12 (`gpio.rs`).
        if crate::gpio::sensors_powered() {
            settings().adc
        } else {
            0
        }
    }
}
