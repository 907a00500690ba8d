//! The sensor HAL over the SDK: embedded-hal 1.0 pins and delays, the garden board's I2C bus
//! and its BME280.
//!
//! GPIO goes through the ROM's `gpio_output_set`/`gpio_input_get` (the calls the emulator can
//! observe; QEMU's sim machine has no GPIO registers) after the pin's IO_MUX register selects
//! the GPIO function with the pull-up on. A pin is open drain: low is "output enabled, value
//! 0", high is "output disabled" (released to the pull-up). Delays are the ROM's busy-wait
//! `ets_delay_us`. The portable I2C master (`crate::i2c`) runs on top.

use core::convert::Infallible;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

use crate::i2c::{BitBang, Config};
use crate::pins::{self, MuxPin};
use crate::sensors::Climate;

/// An open-drain GPIO pin.
pub struct OpenDrain {
    mask: u32,
}

/// Makes `pin` a GPIO with its pull-up on, other bits of its IO_MUX register kept.
pub fn select_gpio(pin: MuxPin) {
    let register = pin.register as *mut u32;
    // SAFETY: IO_MUX pin registers are always-mapped 32-bit peripheral registers; the access
    // is aligned and 32 bits wide, as the hardware requires, and each pin has one user.
    unsafe {
        let current = core::ptr::read_volatile(register);
        core::ptr::write_volatile(register, pins::as_gpio_with_pull_up(current, pin));
    }
}

impl OpenDrain {
    /// `pin` as a GPIO with its pull-up, released.
    pub fn new(pin: MuxPin) -> OpenDrain {
        select_gpio(pin);
        let mask = 1 << pin.gpio;
        // SAFETY: ROM call with plain masks: output value 0, output disabled (released).
        unsafe { wifi_sys::gpio_output_set(0, mask, 0, mask) };
        OpenDrain { mask }
    }
}

impl ErrorType for OpenDrain {
    type Error = Infallible;
}

impl OutputPin for OpenDrain {
    fn set_low(&mut self) -> Result<(), Infallible> {
        // SAFETY: ROM call with plain masks: value 0, output enabled.
        unsafe { wifi_sys::gpio_output_set(0, self.mask, self.mask, 0) };
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        // SAFETY: ROM call with plain masks: output disabled, the pull-up holds the line.
        unsafe { wifi_sys::gpio_output_set(0, 0, 0, self.mask) };
        Ok(())
    }
}

impl InputPin for OpenDrain {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        // SAFETY: ROM call, reads the input levels.
        Ok(unsafe { wifi_sys::gpio_input_get() } & self.mask != 0)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|high| !high)
    }
}

/// Drives a push-pull output: the sensors' power pin, high while they are read.
pub fn set_power(pin: MuxPin, on: bool) {
    select_gpio(pin);
    let mask = 1 << pin.gpio;
    // SAFETY: ROM call with plain masks: output enabled, value high or low.
    unsafe {
        if on {
            wifi_sys::gpio_output_set(mask, 0, mask, 0);
        } else {
            wifi_sys::gpio_output_set(0, mask, mask, 0);
        }
    }
}

/// The chip's ADC on TOUT (`system_adc_read` returns a finished conversion).
pub struct Tout;

impl crate::sensors::Adc for Tout {
    type Error = Infallible;

    fn read(&mut self) -> nb::Result<u16, Infallible> {
        // SAFETY: plain ADC read.
        Ok(unsafe { wifi_sys::system_adc_read() })
    }
}

/// Busy waits through the ROM. Only for the short waits of bit timing and the sensor
/// driver's own waits (2 ms after reset, 40 ms per measurement in bme280 0.5.1); nothing
/// longer belongs in a callback.
pub struct BusyDelay;

impl DelayNs for BusyDelay {
    fn delay_ns(&mut self, ns: u32) {
        // SAFETY: ROM busy wait.
        unsafe { wifi_sys::ets_delay_us(ns.div_ceil(1000)) };
    }
}

/// Why the BME280 gave no reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorError {
    /// The bus failed (no device, stuck, timeout).
    Bus(crate::i2c::Error),
    /// The device answered but is not a BME280, or its data made no sense.
    Device,
}

impl core::fmt::Display for SensorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SensorError::Bus(e) => e.fmt(f),
            SensorError::Device => f.write_str("not a BME280, or nonsense data"),
        }
    }
}

/// The battery's ADC on the board's bus, in one-shot mode.
pub type BatteryAdc = ads1x1x::Ads1x1x<
    BitBang<OpenDrain, OpenDrain, BusyDelay>,
    ads1x1x::ic::Ads1115,
    ads1x1x::ic::Resolution16Bit,
    ads1x1x::mode::OneShot,
>;

fn adc_error(e: ads1x1x::Error<crate::i2c::Error>) -> SensorError {
    match e {
        ads1x1x::Error::I2C(e) => SensorError::Bus(e),
        _ => SensorError::Device,
    }
}

/// The board's I2C bus: SDA GPIO4, SCL GPIO5, 100 kHz.
fn board_bus() -> Result<BitBang<OpenDrain, OpenDrain, BusyDelay>, SensorError> {
    let sda = OpenDrain::new(pins::I2C_SDA);
    let scl = OpenDrain::new(pins::I2C_SCL);
    BitBang::new(sda, scl, BusyDelay, Config::STANDARD).map_err(SensorError::Bus)
}

/// The ADS1115 at 0x48, set to ±4.096 V (a battery of up to 8.2 V behind a 1:2 divider).
pub fn battery_adc() -> Result<BatteryAdc, SensorError> {
    let mut adc = ads1x1x::Ads1x1x::new_ads1115(board_bus()?, ads1x1x::TargetAddr::default());
    adc.set_full_scale_range(ads1x1x::FullScaleRange::Within4_096V)
        .map_err(adc_error)?;
    Ok(adc)
}

/// The battery's AIN0 code once a conversion is done: the first call starts one and every
/// call until it is done is `WouldBlock` (one sample period, 7.8 ms at 128 SPS): the caller
/// polls from an SDK timer.
pub fn poll_battery(adc: &mut BatteryAdc) -> nb::Result<i16, SensorError> {
    adc.read(ads1x1x::channel::SingleA0)
        .map_err(|e| e.map(adc_error))
}

/// One forced measurement of the BME280 on the board's bus.
pub fn read_bme280() -> Result<Climate, SensorError> {
    let mut sensor = bme280::i2c::BME280::new_primary(board_bus()?);
    let mut delay = BusyDelay;
    let map = |e: bme280::Error<crate::i2c::Error>| match e {
        bme280::Error::Bus(e) => SensorError::Bus(e),
        _ => SensorError::Device,
    };
    sensor.init(&mut delay).map_err(map)?;
    let m = sensor.measure(&mut delay).map_err(map)?;
    Ok(Climate {
        temperature_c: m.temperature,
        humidity_pct: m.humidity,
        pressure_pa: m.pressure,
    })
}
