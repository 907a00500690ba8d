//! What a garden board measures and how raw values become a [`Reading`]: the board's
//! configuration in one place ([`BOARD`]) and the conversions, all portable.
//!
//! The default board is the common garden sensor: a Wemos D1 mini (ESP8266) with a capacitive
//! soil probe on the TOUT pin (A0, 0..1.0 V at the chip, the D1 mini's own 220k/100k divider in
//! front), and a BME280 on I2C (SDA GPIO4 = D2, SCL GPIO5 = D1), both powered from GPIO12
//! (D6), which is low while the device sleeps. Which sensors a build has is
//! decided here; a sensor the board lacks is reported missing, as is one that fails.

use crate::readings::Reading;

/// An analogue input: embedded-hal 1.0 has no ADC trait, so this is ramkey's. The chip's
/// TOUT converter (`system_adc_read`) is always ready; an external one may not be.
pub trait Adc {
    /// Why a reading failed.
    type Error: core::fmt::Debug;

    /// A raw reading; `WouldBlock` while the conversion is not done.
    fn read(&mut self) -> nb::Result<u16, Self::Error>;
}

/// The first reading `adc` gives within `polls` tries, or `None` (a failed or never-ready
/// converter is a missing reading).
pub fn read_within(adc: &mut impl Adc, polls: usize) -> Option<u16> {
    for _ in 0..polls {
        match adc.read() {
            Ok(value) => return Some(value),
            Err(nb::Error::WouldBlock) => {}
            Err(nb::Error::Other(_)) => return None,
        }
    }
    None
}

/// A two-point calibration of a capacitive soil probe: its raw ADC reading in dry air (or dry
/// soil) and in water (or saturated soil). Capacitive probes read lower when wetter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoilCalibration {
    /// Raw reading when dry: 0 %.
    pub dry: u16,
    /// Raw reading when wet: 100 %.
    pub wet: u16,
}

impl SoilCalibration {
    /// Moisture in percent from a raw reading: linear between the two points, clamped to
    /// 0..=100, rounded to the nearest percent. `None` for a calibration whose points are equal
    /// (it says nothing), a raw value outside the 10-bit converter's range, or one more than
    /// half the span beyond either point: no probe gives that, an unpowered or disconnected
    /// one does (TOUT then reads near 0 or floats), and it must not pass for soaked soil.
    pub fn percent(&self, raw: u16) -> Option<u8> {
        if self.dry == self.wet || raw > 1023 {
            return None;
        }
        let (dry, wet, raw) = (i32::from(self.dry), i32::from(self.wet), i32::from(raw));
        let span = dry - wet;
        let margin = span.abs() / 2;
        if raw < dry.min(wet) - margin || raw > dry.max(wet) + margin {
            return None;
        }
        // Round half away from zero in the direction of the span.
        let scaled = (dry - raw) * 100;
        let percent = (2 * scaled + span.signum() * span.abs()) / (2 * span);
        Some(percent.clamp(0, 100) as u8)
    }
}

/// A GPIO that powers the sensors: high while they are read, low before deep sleep (a
/// capacitive probe draws milliamps all the time it is powered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SensorPower {
    /// The pin.
    pub pin: crate::pins::MuxPin,
    /// How long after power-up the sensors give valid readings (BME280: 2 ms start-up;
    /// capacitive probes settle in about 100 ms).
    pub warm_up_ms: u32,
}

/// When powered sensors are ready: polled with `nb`, so the caller can wait on a timer rather
/// than in a busy loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WarmUp {
    ready_at_ms: u64,
}

impl WarmUp {
    /// Power went on at `now_ms`.
    pub fn started(now_ms: u64, power: &SensorPower) -> WarmUp {
        WarmUp {
            ready_at_ms: now_ms + u64::from(power.warm_up_ms),
        }
    }

    /// `Ok` once the warm-up has passed; `WouldBlock` before.
    pub fn ready(&self, now_ms: u64) -> nb::Result<(), core::convert::Infallible> {
        if now_ms >= self.ready_at_ms {
            Ok(())
        } else {
            Err(nb::Error::WouldBlock)
        }
    }

    /// Milliseconds still to wait at `now_ms` (0 once ready).
    pub fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.ready_at_ms.saturating_sub(now_ms)
    }
}

/// The battery through a resistor divider into an ADS1115 (AIN0, ±4.096 V full scale): the
/// ESP8266's own ADC cannot read it while the soil probe has TOUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatteryDivider {
    /// Battery voltage over the voltage at AIN0 (2 for two equal resistors).
    pub ratio: u32,
}

impl BatteryDivider {
    /// The battery in 20 mV steps from an ADS1115 code at ±4.096 V full scale (125 µV per
    /// code); `None` for a negative code or a voltage beyond 5.1 V (not a battery: a wiring
    /// fault).
    pub fn battery_20mv(&self, code: i16) -> Option<u8> {
        if code < 0 {
            return None;
        }
        // code * 4096 / 32768 mV at the input, times the ratio; rounded to 20 mV.
        let uv = i64::from(code) * 125 * i64::from(self.ratio);
        let steps = (uv + 10_000) / 20_000;
        u8::try_from(steps).ok()
    }
}

/// What a build's board has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// The battery divider into an ADS1115 at 0x48, if the board has one.
    pub battery: Option<BatteryDivider>,
    /// The GPIO that powers the sensors, if they are switched.
    pub power: Option<SensorPower>,
    /// The soil probe on TOUT, with its calibration; `None`: no probe.
    pub soil: Option<SoilCalibration>,
    /// A BME280 on the I2C bus (GPIO4 SDA, GPIO5 SCL, address 0x76).
    pub bme280: bool,
}

/// The default garden board. The calibration is a typical capacitive probe (v1.2) behind the
/// D1 mini's divider; calibrate each probe (the raw value is logged at every wake in a
/// development build) and change it here.
pub const BOARD: Board = Board {
    battery: Some(BatteryDivider { ratio: 2 }),
    power: Some(SensorPower {
        pin: crate::pins::SENSOR_POWER,
        warm_up_ms: 100,
    }),
    soil: Some(SoilCalibration { dry: 620, wet: 280 }),
    bme280: true,
};

/// What a BME280 driver reports: °C, %RH, Pa.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Climate {
    /// Air temperature, °C.
    pub temperature_c: f32,
    /// Relative humidity, %.
    pub humidity_pct: f32,
    /// Air pressure, Pa.
    pub pressure_pa: f32,
}

/// `value * scale` rounded half away from zero, if it is a number inside `min..=max`.
fn scaled(value: f32, scale: f32, min: f32, max: f32) -> Option<i32> {
    let v = value * scale;
    if v.is_nan() || v < min - 0.5 || v > max + 0.5 {
        return None;
    }
    let rounded = if v >= 0.0 { v + 0.5 } else { v - 0.5 };
    // `as` truncates toward zero: with the half added, that is rounding.
    Some((rounded as i32).clamp(min as i32, max as i32))
}

/// One wake's reading from what the board's sensors gave: `soil_raw` is the TOUT reading and
/// `climate` the BME280's, each `None` when the sensor is absent or failed. Everything not
/// measured, or measured out of its physical range, is missing; nothing is made up.
pub fn reading(
    board: &Board,
    soil_raw: Option<u16>,
    climate: Option<Climate>,
    battery_code: Option<i16>,
) -> Reading {
    let climate = climate.filter(|_| board.bme280);
    Reading {
        soil_pct: board
            .soil
            .zip(soil_raw)
            .and_then(|(cal, raw)| cal.percent(raw)),
        // The BME280's ranges: -40..85 °C, 0..100 %RH, 300..1100 hPa.
        temperature_centi_c: climate
            .and_then(|c| scaled(c.temperature_c, 100.0, -4000.0, 8500.0))
            .map(|v| v as i16),
        humidity_half_pct: climate
            .and_then(|c| scaled(c.humidity_pct, 2.0, 0.0, 200.0))
            .map(|v| v as u8),
        pressure_deci_hpa: climate
            .and_then(|c| scaled(c.pressure_pa, 0.1, 3000.0, 11000.0))
            .map(|v| v as u16),
        battery_20mv: board
            .battery
            .zip(battery_code)
            .and_then(|(d, code)| d.battery_20mv(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAL: SoilCalibration = SoilCalibration { dry: 620, wet: 280 };

    #[test]
    fn two_point_calibration() {
        assert_eq!(CAL.percent(620), Some(0));
        assert_eq!(CAL.percent(280), Some(100));
        assert_eq!(CAL.percent(450), Some(50));
        assert_eq!(CAL.percent(700), Some(0), "drier than dry is 0 %");
        assert_eq!(CAL.percent(200), Some(100), "wetter than wet is 100 %");
        assert_eq!(
            CAL.percent(0),
            None,
            "an unpowered probe is missing, not soaked"
        );
        assert_eq!(CAL.percent(1023), None, "a floating input is missing");
        assert_eq!(CAL.percent(1024), None, "not a 10-bit reading");
        // 620 - 100 * 3.4 / 100 per percent: 617 is 0.88 % -> 1 %.
        assert_eq!(CAL.percent(617), Some(1));
        let flat = SoilCalibration { dry: 500, wet: 500 };
        assert_eq!(flat.percent(500), None);
        let inverted = SoilCalibration { dry: 200, wet: 800 };
        assert_eq!(
            inverted.percent(500),
            Some(50),
            "a probe that reads higher when wet"
        );
    }

    const CLIMATE: Climate = Climate {
        temperature_c: 25.08,
        humidity_pct: 50.037,
        pressure_pa: 100_653.0,
    };

    #[test]
    fn missing_sensors_are_missing() {
        let r = reading(&BOARD, None, None, None);
        assert_eq!(r, Reading::default());
        let bare = Board {
            battery: None,
            power: None,
            soil: None,
            bme280: false,
        };
        assert_eq!(
            reading(&bare, Some(400), Some(CLIMATE), Some(15_680)),
            Reading::default()
        );
        assert_eq!(reading(&BOARD, Some(450), None, None).soil_pct, Some(50));
    }

    #[test]
    fn climate_at_the_queue_resolution() {
        let r = reading(&BOARD, None, Some(CLIMATE), None);
        assert_eq!(r.temperature_centi_c, Some(2508));
        assert_eq!(r.humidity_half_pct, Some(100), "50.04 % in 0.5 % steps");
        assert_eq!(r.pressure_deci_hpa, Some(10_065), "1006.53 hPa");
        let cold = Climate {
            temperature_c: -12.345,
            ..CLIMATE
        };
        assert_eq!(
            reading(&BOARD, None, Some(cold), None).temperature_centi_c,
            Some(-1235)
        );
        let broken = Climate {
            temperature_c: f32::NAN,
            humidity_pct: 150.0,
            pressure_pa: 2_000.0,
        };
        let r = reading(&BOARD, None, Some(broken), None);
        assert_eq!(
            (
                r.temperature_centi_c,
                r.humidity_half_pct,
                r.pressure_deci_hpa
            ),
            (None, None, None),
            "out of range is missing, not clamped"
        );
    }

    struct Slow(usize, Result<u16, ()>);
    impl Adc for Slow {
        type Error = ();
        fn read(&mut self) -> nb::Result<u16, ()> {
            if self.0 > 0 {
                self.0 -= 1;
                return Err(nb::Error::WouldBlock);
            }
            self.1.map_err(nb::Error::Other)
        }
    }

    #[test]
    fn adc_readings_within_a_number_of_polls() {
        assert_eq!(read_within(&mut Slow(2, Ok(450)), 3), Some(450));
        assert_eq!(
            read_within(&mut Slow(3, Ok(450)), 3),
            None,
            "never ready in time"
        );
        assert_eq!(read_within(&mut Slow(0, Err(())), 3), None, "failed");
    }

    #[test]
    fn battery_from_the_adc_code() {
        let d = BatteryDivider { ratio: 2 };
        // 1960 mV at AIN0 is code 15680: a 3.92 V battery.
        assert_eq!(d.battery_20mv(15_680), Some(196));
        assert_eq!(d.battery_20mv(0), Some(0));
        assert_eq!(d.battery_20mv(-5), None);
        assert_eq!(d.battery_20mv(i16::MAX), None, "8.19 V is not a battery");
        assert_eq!(d.battery_20mv(20_400), Some(255), "5.10 V");
    }

    #[test]
    fn warm_up_blocks_until_its_time() {
        let power = BOARD.power.expect("the default board switches its sensors");
        let w = WarmUp::started(1_000, &power);
        assert_eq!(w.ready(1_099), Err(nb::Error::WouldBlock));
        assert_eq!(w.remaining_ms(1_050), 50);
        assert_eq!(w.ready(1_100), Ok(()));
        assert_eq!(w.remaining_ms(5_000), 0);
    }

    proptest! {
        #[test]
        fn percent_is_monotonic_and_in_range(dry in 0u16..=1023, wet in 0u16..=1023, a in 0u16..=1023, b in 0u16..=1023) {
            let cal = SoilCalibration { dry, wet };
            match (cal.percent(a), cal.percent(b)) {
                (Some(pa), Some(pb)) => {
                    prop_assert!(pa <= 100 && pb <= 100);
                    // Nearer the wet point is never drier.
                    let nearer_wet = (i32::from(a) - i32::from(wet)).abs() <= (i32::from(b) - i32::from(wet)).abs()
                        && (i32::from(a) - i32::from(dry)).abs() >= (i32::from(b) - i32::from(dry)).abs();
                    if nearer_wet {
                        prop_assert!(pa >= pb, "{a} -> {pa}, {b} -> {pb}");
                    }
                }
                (None, None) | (Some(_), None) | (None, Some(_)) => {
                    // Undefined only for a flat calibration or a value far outside it.
                    let span = (i32::from(dry) - i32::from(wet)).abs();
                    let (lo, hi) = (i32::from(dry.min(wet)) - span / 2, i32::from(dry.max(wet)) + span / 2);
                    for (v, p) in [(a, cal.percent(a)), (b, cal.percent(b))] {
                        prop_assert_eq!(p.is_none(), dry == wet || i32::from(v) < lo || i32::from(v) > hi);
                    }
                }
            }
        }
    }
}
