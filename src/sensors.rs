//! What a garden board measures and how raw values become a [`Reading`]: the board's
//! configuration in one place ([`BOARD`]) and the conversions, all portable.
//!
//! The default board is the common garden sensor: a Wemos D1 mini (ESP8266) with a capacitive
//! soil probe on the TOUT pin (A0, 0..1.0 V at the chip, the D1 mini's own 220k/100k divider in
//! front), and a BME280 on I2C (SDA GPIO4 = D2, SCL GPIO5 = D1). Which sensors a build has is
//! decided here; a sensor the board lacks is reported missing, as is one that fails.

use crate::readings::Reading;

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
    /// (it says nothing) or a raw value outside the 10-bit converter's range.
    pub fn percent(&self, raw: u16) -> Option<u8> {
        if self.dry == self.wet || raw > 1023 {
            return None;
        }
        let (dry, wet, raw) = (i32::from(self.dry), i32::from(self.wet), i32::from(raw));
        let span = dry - wet;
        // Round half away from zero in the direction of the span.
        let scaled = (dry - raw) * 100;
        let percent = (2 * scaled + span.signum() * span.abs()) / (2 * span);
        Some(percent.clamp(0, 100) as u8)
    }
}

/// What a build's board has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// The soil probe on TOUT, with its calibration; `None`: no probe.
    pub soil: Option<SoilCalibration>,
}

/// The default garden board. The calibration is a typical capacitive probe (v1.2) behind the
/// D1 mini's divider; calibrate each probe (the raw value is logged at every wake in a
/// development build) and change it here.
pub const BOARD: Board = Board {
    soil: Some(SoilCalibration { dry: 620, wet: 280 }),
};

/// One wake's reading from what the board's sensors gave: `soil_raw` is the TOUT reading,
/// `None` when the board has no probe there. Everything the board has not measured is missing.
pub fn reading(board: &Board, soil_raw: Option<u16>) -> Reading {
    Reading {
        soil_pct: board
            .soil
            .zip(soil_raw)
            .and_then(|(cal, raw)| cal.percent(raw)),
        ..Reading::default()
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
        assert_eq!(CAL.percent(1023), Some(0), "drier than dry is 0 %");
        assert_eq!(CAL.percent(0), Some(100), "wetter than wet is 100 %");
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

    #[test]
    fn missing_sensors_are_missing() {
        let r = reading(&BOARD, None);
        assert_eq!(r, Reading::default());
        let bare = Board { soil: None };
        assert_eq!(reading(&bare, Some(400)).soil_pct, None);
        assert_eq!(reading(&BOARD, Some(450)).soil_pct, Some(50));
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
                (None, None) => prop_assert_eq!(dry, wet),
                _ => prop_assert!(false, "defined for one value and not another"),
            }
        }
    }
}
