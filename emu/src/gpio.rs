//! GPIO as the ROM's `gpio_output_set`/`gpio_input_get` see it (QEMU's sim machine has no
//! GPIO registers, so these calls are all the emulator can observe), with the I2C bus model
//! (`i2c_bus.rs`) on GPIO4 (SDA) and GPIO5 (SCL), and `ets_delay_us` as a busy wait on the
//! virtual clock.
//!
//! A pin is an output when its enable bit is set; then it drives its output bit. An input
//! reads the line: for the two bus pins what the bus model says (open drain: a device may
//! hold it low), for the others high (the IO_MUX pull-up).
//!
//! The emulated board is ramkey's default garden board: GPIO12 powers the BME280, the
//! ADS1115 (a 3.92 V battery behind a 1:2 divider on AIN0) and the soil probe. The BME280 answers only from 2 ms after power-up (its datasheet's start-up
//! time); the probe's ADC reading is 0 while it is unpowered; and a deep sleep with GPIO12
//! still high is reported (`emu: gpio: sensors still powered at deep sleep`), which fails
//! every scenario.

use crate::emulate;
use crate::i2c_bus::{Ads1115, Bme280, Bus, Calibration, EMULATED_BATTERY_MV, EMULATED_RAW};
use crate::scheduler::Global;

/// The bus pins.
const SDA: u32 = 4;
const SCL: u32 = 5;
/// The sensors' power pin.
const POWER: u32 = 12;
/// The BME280's start-up time after power-up (datasheet table 1, t_startup).
const START_UP_US: u64 = 2_000;

struct Gpio {
    out: u32,
    enabled: u32,
    bus: Option<Bus>,
    /// When GPIO12 last went high (virtual microseconds), while it is high.
    powered_since: Option<u64>,
}

static GPIO: Global<Gpio> = Global::new(Gpio {
    out: 0,
    enabled: 0,
    bus: None,
    powered_since: None,
});

/// Whether the sensors are powered (GPIO12 an output driving high).
pub fn sensors_powered() -> bool {
    GPIO.with(|g| g.powered_since.is_some())
}

/// Called at deep sleep: sensors left powered drain the battery.
pub fn check_at_sleep() {
    if sensors_powered() {
        crate::semihosting::say!("gpio: sensors still powered at deep sleep (GPIO12 high)");
    }
}

fn with_bus<R>(f: impl FnOnce(&mut Bus) -> R) -> R {
    GPIO.with(|g| {
        let bus = g.bus.get_or_insert_with(|| {
            let flags = crate::sdk::settings().i2c;
            let sensor =
                (flags & 1 == 0).then(|| Bme280::new(&Calibration::DATASHEET, EMULATED_RAW));
            let mut bus = Bus::new(sensor);
            // The battery (3.92 V) behind a 1:2 divider on the ADS1115's AIN0.
            bus.ads1115 =
                (flags & 16 == 0).then(|| Ads1115::new([EMULATED_BATTERY_MV / 2, 0, 0, 0]));
            bus.stuck_clocks = if flags & 4 != 0 {
                50
            } else if flags & 2 != 0 {
                7
            } else {
                0
            };
            bus.stretch_polls = if flags & 8 != 0 { 20 } else { 0 };
            bus
        });
        // Powered and past its start-up: the device takes part in the bus.
        let now = crate::sdk::now_us();
        bus.now_us = now;
        bus.powered = g
            .powered_since
            .is_some_and(|since| now.saturating_sub(since) >= START_UP_US);
        f(bus)
    })
}

/// Whether the master drives `pin` low.
fn drives_low(out: u32, enabled: u32, pin: u32) -> bool {
    enabled >> pin & 1 == 1 && out >> pin & 1 == 0
}

emulate! {
    /// Sets the masks, then tells the bus what the master now drives on SDA and SCL.
    fn gpio_output_set(set_mask: u32, clear_mask: u32, enable_mask: u32, disable_mask: u32) {
        let now = crate::sdk::now_us();
        let (out, enabled) = GPIO.with(|g| {
            g.out = (g.out | set_mask) & !clear_mask;
            g.enabled = (g.enabled | enable_mask) & !disable_mask;
            let high = g.enabled >> POWER & 1 == 1 && g.out >> POWER & 1 == 1;
            g.powered_since = match (high, g.powered_since) {
                (true, Some(since)) => Some(since),
                (true, None) => Some(now),
                (false, _) => None,
            };
            (g.out, g.enabled)
        });
        with_bus(|bus| {
            bus.set_sda_low(drives_low(out, enabled, SDA));
            bus.set_scl_low(drives_low(out, enabled, SCL));
        });
    }
}

emulate! {
    /// Outputs read back their level; the bus pins read the bus; other inputs read high.
    fn gpio_input_get() -> u32 {
        let (out, enabled) = GPIO.with(|g| (g.out, g.enabled));
        let (sda, scl) = with_bus(|bus| (bus.sda(), bus.scl()));
        let mut levels = (out & enabled) | !enabled;
        levels &= !(1 << SDA | 1 << SCL);
        levels | u32::from(sda) << SDA | u32::from(scl) << SCL
    }
}

emulate! {
    /// A busy wait: virtual time moves on by `us` inside the callback (the soft watchdog sees
    /// it, as on the chip).
    fn ets_delay_us(us: u32) {
        crate::sdk::spin(u64::from(us));
    }
}
