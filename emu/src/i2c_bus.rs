//! A bit-level I2C bus with a BME280 on it, for the emulated GPIO and the host tests of the
//! bit-banged master (`ramkey::i2c`). Portable: it builds for the host too.
//!
//! The lines are open-drain: each is low when the master or a device pulls it low. The model
//! sees every change of the master's pins and every read, and acts on the edges as a device
//! does: START (SDA falls while SCL is high), STOP (SDA rises while SCL is high), a bit
//! sampled on each rising SCL edge, the device's next bit put on SDA after each falling one.
//!
//! Faults a test can ask for: no device at all (every address NACKs), a device that holds SDA
//! low through `stuck_clocks` clock pulses (a reset in the middle of a read), and clock
//! stretching (the device holds SCL low for `stretch_polls` reads after each release).
//!
//! The BME280 model: chip id 0x60 at 0xD0, soft reset at 0xE0, the calibration words at
//! 0x88..0xA2 and 0xE1..0xE8 as the datasheet (section 5.4) lays them out, control registers
//! as written, and the raw readings in 0xF7..0xFF, filled when a forced measurement starts.

/// The BME280's primary address (SDO to ground).
pub const BME280_ADDRESS: u8 = 0x76;

/// A BME280's calibration words (datasheet table 16: `t1` is dig_T1, and so on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each field is the datasheet's word of that name
pub struct Calibration {
    pub t1: u16,
    pub t2: i16,
    pub t3: i16,
    pub p1: u16,
    pub p2: i16,
    pub p3: i16,
    pub p4: i16,
    pub p5: i16,
    pub p6: i16,
    pub p7: i16,
    pub p8: i16,
    pub p9: i16,
    pub h1: u8,
    pub h2: i16,
    pub h3: u8,
    pub h4: i16,
    pub h5: i16,
    pub h6: i8,
}

impl Calibration {
    /// The temperature and pressure words of the BMP280 datasheet's worked example
    /// (section 3.12: raw 519888 / 415148 give 25.08 °C and 100653 Pa), with typical
    /// humidity words.
    pub const DATASHEET: Calibration = Calibration {
        t1: 27504,
        t2: 26435,
        t3: -1000,
        p1: 36477,
        p2: -10685,
        p3: 3024,
        p4: 2855,
        p5: 140,
        p6: -7,
        p7: 15500,
        p8: -14600,
        p9: 6000,
        h1: 75,
        h2: 362,
        h3: 0,
        h4: 324,
        h5: 50,
        h6: 30,
    };
}

/// Raw (uncompensated) readings: pressure and temperature 20 bits, humidity 16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw {
    /// adc_P.
    pub pressure: u32,
    /// adc_T.
    pub temperature: u32,
    /// adc_H.
    pub humidity: u16,
}

/// What the emulated BME280 measures (`gpio.rs`): the BMP280 datasheet's worked example
/// (25.08 °C, 100653 Pa) and about 51 %RH with [`Calibration::DATASHEET`].
pub const EMULATED_RAW: Raw = Raw {
    pressure: 415_148,
    temperature: 519_888,
    humidity: 30_000,
};

/// The BME280's registers.
#[derive(Clone, Copy, Debug)]
pub struct Bme280 {
    regs: [u8; 256],
    raw: Raw,
    /// Forced measurements started.
    pub measurements: u32,
}

impl Bme280 {
    /// A sensor with this calibration that measures `raw`.
    pub fn new(calibration: &Calibration, raw: Raw) -> Bme280 {
        let mut regs = [0u8; 256];
        let c = calibration;
        let words: [u16; 12] = [
            c.t1,
            c.t2 as u16,
            c.t3 as u16,
            c.p1,
            c.p2 as u16,
            c.p3 as u16,
            c.p4 as u16,
            c.p5 as u16,
            c.p6 as u16,
            c.p7 as u16,
            c.p8 as u16,
            c.p9 as u16,
        ];
        for (i, w) in words.iter().enumerate() {
            regs[0x88 + 2 * i..0x8A + 2 * i].copy_from_slice(&w.to_le_bytes());
        }
        regs[0xA1] = c.h1;
        regs[0xE1..0xE3].copy_from_slice(&(c.h2 as u16).to_le_bytes());
        regs[0xE3] = c.h3;
        // H4: 0xE4 bits 11..4, 0xE5 bits 3..0; H5: 0xE5 bits 7..4 = H5 bits 3..0, 0xE6 bits 11..4.
        regs[0xE4] = (c.h4 >> 4) as u8;
        regs[0xE5] = (c.h4 & 0x0F) as u8 | ((c.h5 & 0x0F) << 4) as u8;
        regs[0xE6] = (c.h5 >> 4) as u8;
        regs[0xE7] = c.h6 as u8;
        regs[0xD0] = 0x60;
        Bme280 {
            regs,
            raw,
            measurements: 0,
        }
    }

    fn read(&self, register: u8) -> u8 {
        self.regs[usize::from(register)]
    }

    fn write(&mut self, register: u8, value: u8) {
        match register {
            0xE0 if value == 0xB6 => {
                // Soft reset: controls back to their reset values, data cleared.
                for r in [0xF2, 0xF4, 0xF5] {
                    self.regs[r] = 0;
                }
                self.regs[0xF7..0xFF].fill(0);
            }
            0xF2 | 0xF5 => self.regs[usize::from(register)] = value,
            0xF4 => {
                self.regs[0xF4] = value;
                if value & 0x03 == 0x01 || value & 0x03 == 0x02 {
                    // A forced measurement: the data registers hold it when the driver reads
                    // them (it waits the conversion time itself), then the sensor sleeps.
                    self.measurements += 1;
                    let Raw {
                        pressure: p,
                        temperature: t,
                        humidity: h,
                    } = self.raw;
                    self.regs[0xF7] = (p >> 12) as u8;
                    self.regs[0xF8] = (p >> 4) as u8;
                    self.regs[0xF9] = ((p & 0x0F) << 4) as u8;
                    self.regs[0xFA] = (t >> 12) as u8;
                    self.regs[0xFB] = (t >> 4) as u8;
                    self.regs[0xFC] = ((t & 0x0F) << 4) as u8;
                    self.regs[0xFD..0xFF].copy_from_slice(&h.to_be_bytes());
                    self.regs[0xF4] &= !0x03;
                }
            }
            _ => {}
        }
    }
}

/// The emulated board's battery, millivolts (behind a 1:2 divider on the ADS1115's AIN0).
pub const EMULATED_BATTERY_MV: i32 = 3_920;

/// The ADS1115's address (ADDR to ground).
pub const ADS1115_ADDRESS: u8 = 0x48;

/// An ADS1115 (16-bit ADC, TI datasheet SBAS444): the config register (0x01) and the
/// conversion register (0x00), big-endian; a single-shot conversion starts when the config is
/// written with OS set and takes one sample period of the data rate (7.8 ms at 128 SPS), while
/// which OS reads 0. Only single-ended inputs (MUX 100..111) are modelled.
#[derive(Clone, Copy, Debug)]
pub struct Ads1115 {
    config: u16,
    conversion: u16,
    /// When the running conversion ends, and its result.
    converting: Option<(u64, u16)>,
    /// The voltage at AIN0..AIN3, millivolts.
    pub input_mv: [i32; 4],
    /// Conversions started.
    pub conversions: u32,
}

impl Ads1115 {
    /// Reset state (config 0x8583) with these inputs.
    pub fn new(input_mv: [i32; 4]) -> Ads1115 {
        Ads1115 {
            config: 0x8583,
            conversion: 0,
            converting: None,
            input_mv,
            conversions: 0,
        }
    }

    fn settle(&mut self, now_us: u64) {
        if let Some((until, value)) = self.converting
            && now_us >= until
        {
            self.conversion = value;
            self.converting = None;
        }
    }

    fn register(&mut self, pointer: u8, now_us: u64) -> u16 {
        self.settle(now_us);
        match pointer & 0x03 {
            0 => self.conversion,
            1 => {
                let busy = self.converting.is_some();
                (self.config & 0x7FFF) | if busy { 0 } else { 0x8000 }
            }
            _ => 0,
        }
    }

    fn write(&mut self, pointer: u8, value: u16, now_us: u64) {
        self.settle(now_us);
        if pointer & 0x03 != 1 {
            return;
        }
        self.config = value & 0x7FFF;
        let single_shot = value & 0x0100 != 0;
        if value & 0x8000 != 0 && single_shot && self.converting.is_none() {
            let fsr_mv: i64 = match value >> 9 & 0x7 {
                0 => 6144,
                1 => 4096,
                2 => 2048,
                3 => 1024,
                4 => 512,
                _ => 256,
            };
            let mux = value >> 12 & 0x7;
            let mv = if mux >= 4 {
                i64::from(self.input_mv[usize::from(mux - 4)])
            } else {
                0
            };
            let code = (mv * 32768 / fsr_mv).clamp(-32768, 32767) as i16;
            let period_us: u64 = match value >> 5 & 0x7 {
                0 => 125_000,
                1 => 62_500,
                2 => 31_250,
                3 => 15_625,
                4 => 7_813,
                5 => 4_000,
                6 => 2_106,
                _ => 1_163,
            };
            self.conversions += 1;
            self.converting = Some((now_us + period_us, code as u16));
        }
    }
}

/// Which device the transaction addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Bme280,
    Ads1115,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not addressed: waiting for a START.
    Idle,
    /// Receiving the address byte or a written byte.
    Receiving { bits: u8, byte: u8, first: bool },
    /// Driving SDA low for the acknowledge bit of a received byte.
    Acking { then_send: bool },
    /// Sending a byte: bit 7 - `sent` is on SDA.
    Sending { byte: u8, sent: u8 },
    /// Reading the master's acknowledge of a sent byte.
    AwaitAck,
    /// The master NACKed the last byte: wait for STOP or a repeated START.
    Done,
}

/// The bus: the master's two pins, the device, the faults.
#[derive(Clone, Copy, Debug)]
pub struct Bus {
    master_sda_low: bool,
    master_scl_low: bool,
    device_sda_low: bool,
    stretching: u32,
    sda: bool,
    scl: bool,
    state: State,
    pointer: u8,
    /// Whether this write transaction's first byte (the register pointer) has come.
    pointer_set: bool,
    /// The sensor, if the board has one.
    pub bme280: Option<Bme280>,
    /// The ADC, if the board has one.
    pub ads1115: Option<Ads1115>,
    /// Virtual time, microseconds (the ADC's conversions take time); the owner moves it.
    pub now_us: u64,
    target: Option<Target>,
    /// Bytes of a 16-bit register written or read so far in this transaction.
    byte_index: u8,
    high_byte: u8,
    /// Clock pulses through which the device keeps SDA low at power-up (0: none).
    pub stuck_clocks: u32,
    /// Reads of SCL the device keeps it low after each release by the master (0: none).
    pub stretch_polls: u32,
    /// Whether the device is powered (and past its start-up): unpowered, it neither
    /// acknowledges nor drives a line.
    pub powered: bool,
    /// STARTs seen (repeated ones included).
    pub starts: u32,
    /// STOPs seen.
    pub stops: u32,
    /// Address bytes the device acknowledged.
    pub acked_addresses: u32,
}

impl Bus {
    /// Both lines released; `bme280` answers at [`BME280_ADDRESS`].
    pub fn new(bme280: Option<Bme280>) -> Bus {
        Bus {
            master_sda_low: false,
            master_scl_low: false,
            device_sda_low: false,
            stretching: 0,
            sda: true,
            scl: true,
            state: State::Idle,
            pointer: 0,
            pointer_set: false,
            bme280,
            ads1115: None,
            now_us: 0,
            target: None,
            byte_index: 0,
            high_byte: 0,
            stuck_clocks: 0,
            stretch_polls: 0,
            powered: true,
            starts: 0,
            stops: 0,
            acked_addresses: 0,
        }
    }

    /// The master drives SDA low (`true`) or releases it.
    pub fn set_sda_low(&mut self, low: bool) {
        self.master_sda_low = low;
        self.settle();
    }

    /// The master drives SCL low (`true`) or releases it; a release may be stretched.
    pub fn set_scl_low(&mut self, low: bool) {
        if self.master_scl_low && !low && self.stretch_polls > 0 {
            self.stretching = self.stretch_polls;
        }
        self.master_scl_low = low;
        self.settle();
    }

    /// The SDA line as the master reads it.
    pub fn sda(&mut self) -> bool {
        self.settle();
        self.sda
    }

    /// The SCL line as the master reads it (each read of a stretched clock counts down).
    pub fn scl(&mut self) -> bool {
        if self.stretching > 0 && !self.master_scl_low {
            self.stretching -= 1;
        }
        self.settle();
        self.scl
    }

    fn settle(&mut self) {
        let stuck = self.stuck_clocks > 0 && self.powered;
        let sda = !(self.master_sda_low || self.device_sda_low || stuck);
        let scl = !(self.master_scl_low || self.stretching > 0);
        let (old_sda, old_scl) = (self.sda, self.scl);
        self.sda = sda;
        self.scl = scl;
        if old_scl && scl && old_sda != sda {
            if sda {
                self.stop();
            } else {
                self.start();
            }
        } else if !old_scl && scl {
            self.rising();
        } else if old_scl && !scl {
            if self.stuck_clocks > 0 && self.powered {
                self.stuck_clocks -= 1;
            }
            self.falling();
            // The device's output may change with the falling edge.
            self.sda = !(self.master_sda_low
                || self.device_sda_low
                || (self.stuck_clocks > 0 && self.powered));
        }
    }

    fn start(&mut self) {
        self.starts += 1;
        self.pointer_set = false;
        self.byte_index = 0;
        self.device_sda_low = false;
        self.state = State::Receiving {
            bits: 0,
            byte: 0,
            first: true,
        };
    }

    fn stop(&mut self) {
        self.stops += 1;
        self.device_sda_low = false;
        self.state = State::Idle;
    }

    /// SCL rose: sample SDA.
    fn rising(&mut self) {
        let bit = self.sda;
        self.state = match self.state {
            State::Receiving { bits, byte, first } => State::Receiving {
                bits: bits + 1,
                byte: byte << 1 | u8::from(bit),
                first,
            },
            State::AwaitAck => {
                if bit {
                    State::Done
                } else {
                    let byte = self.next_byte();
                    State::Sending { byte, sent: 0 }
                }
            }
            other => other,
        };
    }

    /// SCL fell: the device changes what it drives.
    fn falling(&mut self) {
        self.state = match self.state {
            State::Receiving {
                bits: 8,
                byte,
                first,
            } => {
                if first {
                    let address = byte >> 1;
                    let read = byte & 1 == 1;
                    self.target = match address {
                        BME280_ADDRESS if self.bme280.is_some() => Some(Target::Bme280),
                        ADS1115_ADDRESS if self.ads1115.is_some() => Some(Target::Ads1115),
                        _ => None,
                    };
                    if self.target.is_some() && self.powered {
                        self.acked_addresses += 1;
                        self.device_sda_low = true;
                        State::Acking { then_send: read }
                    } else {
                        State::Idle
                    }
                } else {
                    self.received(byte);
                    self.device_sda_low = true;
                    State::Acking { then_send: false }
                }
            }
            State::Acking { then_send } => {
                self.device_sda_low = false;
                if then_send {
                    let byte = self.next_byte();
                    self.device_sda_low = byte & 0x80 == 0;
                    State::Sending { byte, sent: 1 }
                } else {
                    State::Receiving {
                        bits: 0,
                        byte: 0,
                        first: false,
                    }
                }
            }
            State::Sending { byte, sent } if sent < 8 => {
                self.device_sda_low = byte << sent & 0x80 == 0;
                State::Sending {
                    byte,
                    sent: sent + 1,
                }
            }
            State::Sending { .. } => {
                // All eight bits out: release SDA for the master's acknowledge.
                self.device_sda_low = false;
                State::AwaitAck
            }
            other => other,
        };
    }

    /// A byte written after the address: the register pointer, then data (auto-increment).
    fn received(&mut self, byte: u8) {
        if !self.pointer_set {
            self.pointer = byte;
            self.pointer_set = true;
            return;
        }
        match self.target {
            Some(Target::Bme280) => {
                if let Some(sensor) = &mut self.bme280 {
                    sensor.write(self.pointer, byte);
                }
                self.pointer = self.pointer.wrapping_add(1);
            }
            Some(Target::Ads1115) => {
                // 16-bit registers, most significant byte first.
                if self.byte_index.is_multiple_of(2) {
                    self.high_byte = byte;
                } else if let Some(adc) = &mut self.ads1115 {
                    adc.write(
                        self.pointer,
                        u16::from_be_bytes([self.high_byte, byte]),
                        self.now_us,
                    );
                }
                self.byte_index = self.byte_index.wrapping_add(1);
            }
            None => {}
        }
    }

    fn next_byte(&mut self) -> u8 {
        match self.target {
            Some(Target::Ads1115) => {
                let now = self.now_us;
                let pointer = self.pointer;
                let value = self
                    .ads1115
                    .as_mut()
                    .map_or(0xFFFF, |a| a.register(pointer, now));
                let byte = value.to_be_bytes()[usize::from(self.byte_index % 2)];
                self.byte_index = self.byte_index.wrapping_add(1);
                byte
            }
            _ => {
                let byte = self.bme280.as_ref().map_or(0xFF, |s| s.read(self.pointer));
                self.pointer = self.pointer.wrapping_add(1);
                byte
            }
        }
    }
}

/// The datasheet's integer compensation (BME280 datasheet 4.2.3): temperature in 0.01 °C,
/// pressure in Pa / 256, humidity in %RH / 1024. What a correct driver must agree with.
pub fn datasheet(c: &Calibration, raw: &Raw) -> (i32, u32, u32) {
    let adc_t = raw.temperature as i32;
    let var1 = (((adc_t >> 3) - ((c.t1 as i32) << 1)) * c.t2 as i32) >> 11;
    let var2 =
        (((((adc_t >> 4) - c.t1 as i32) * ((adc_t >> 4) - c.t1 as i32)) >> 12) * c.t3 as i32) >> 14;
    let t_fine = var1 + var2;
    let t = (t_fine * 5 + 128) >> 8; // 0.01 °C
    let adc_p = raw.pressure as i64;
    let mut v1 = t_fine as i64 - 128_000;
    let mut v2 = v1 * v1 * c.p6 as i64;
    v2 += (v1 * c.p5 as i64) << 17;
    v2 += (c.p4 as i64) << 35;
    v1 = ((v1 * v1 * c.p3 as i64) >> 8) + ((v1 * c.p2 as i64) << 12);
    v1 = (((1i64 << 47) + v1) * c.p1 as i64) >> 33;
    let mut p = 1_048_576 - adc_p;
    p = (((p << 31) - v2) * 3125) / v1;
    let w1 = (c.p9 as i64 * (p >> 13) * (p >> 13)) >> 25;
    let w2 = (c.p8 as i64 * p) >> 19;
    let p = (((p + w1 + w2) >> 8) + ((c.p7 as i64) << 4)) as u32; // Pa * 256
    let adc_h = raw.humidity as i32;
    let v = t_fine - 76_800;
    let mut h = (((adc_h << 14) - ((c.h4 as i32) << 20) - (c.h5 as i32 * v)) + 16_384) >> 15;
    h *= ((((((v * c.h6 as i32) >> 10) * (((v * c.h3 as i32) >> 11) + 32_768)) >> 10) + 2_097_152)
        * c.h2 as i32
        + 8192)
        >> 14;
    h -= ((((h >> 15) * (h >> 15)) >> 7) * c.h1 as i32) >> 4;
    let h = h.clamp(0, 419_430_400) >> 12; // %RH * 1024
    (t, p, h as u32)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use core::cell::RefCell;
    use embedded_hal::delay::DelayNs;
    use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
    use embedded_hal::i2c::{I2c, NoAcknowledgeSource, Operation};
    use ramkey::i2c::{BitBang, Config, Error};
    use std::rc::Rc;

    #[derive(Clone)]
    struct Line(Rc<RefCell<Bus>>, bool);

    impl ErrorType for Line {
        type Error = core::convert::Infallible;
    }

    impl OutputPin for Line {
        fn set_low(&mut self) -> Result<(), Self::Error> {
            let mut bus = self.0.borrow_mut();
            if self.1 {
                bus.set_sda_low(true)
            } else {
                bus.set_scl_low(true)
            }
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Self::Error> {
            let mut bus = self.0.borrow_mut();
            if self.1 {
                bus.set_sda_low(false)
            } else {
                bus.set_scl_low(false)
            }
            Ok(())
        }
    }

    impl InputPin for Line {
        fn is_high(&mut self) -> Result<bool, Self::Error> {
            let mut bus = self.0.borrow_mut();
            Ok(if self.1 { bus.sda() } else { bus.scl() })
        }
        fn is_low(&mut self) -> Result<bool, Self::Error> {
            self.is_high().map(|h| !h)
        }
    }

    struct NoDelay;
    impl DelayNs for NoDelay {
        fn delay_ns(&mut self, _ns: u32) {}
    }

    const RAW: Raw = EMULATED_RAW;

    fn master(bus: Bus) -> (Rc<RefCell<Bus>>, BitBang<Line, Line, NoDelay>) {
        let bus = Rc::new(RefCell::new(bus));
        let i2c = BitBang::new(
            Line(bus.clone(), true),
            Line(bus.clone(), false),
            NoDelay,
            Config::STANDARD,
        )
        .expect("pins");
        (bus, i2c)
    }

    fn sensor_bus() -> Bus {
        Bus::new(Some(Bme280::new(&Calibration::DATASHEET, RAW)))
    }

    #[test]
    fn write_read_uses_a_repeated_start() {
        let (bus, mut i2c) = master(sensor_bus());
        let mut id = [0u8; 1];
        i2c.write_read(BME280_ADDRESS, &[0xD0], &mut id)
            .expect("read");
        assert_eq!(id, [0x60]);
        let b = bus.borrow();
        assert_eq!((b.starts, b.stops, b.acked_addresses), (2, 1, 2));
    }

    #[test]
    fn writes_land_and_read_back_and_operations_merge() {
        let (bus, mut i2c) = master(sensor_bus());
        i2c.write(BME280_ADDRESS, &[0xF2, 0x05]).expect("write");
        let mut hum = [0u8; 1];
        let mut more = [0u8; 2];
        // Two writes merge (one address), two reads merge (one repeated START).
        i2c.transaction(
            BME280_ADDRESS,
            &mut [
                Operation::Write(&[]),
                Operation::Write(&[0xF2]),
                Operation::Read(&mut hum),
                Operation::Read(&mut more),
            ],
        )
        .expect("transaction");
        assert_eq!(hum, [0x05]);
        assert_eq!(more, [0x00, 0x00], "0xF3 and 0xF4 follow");
        let b = bus.borrow();
        assert_eq!((b.starts, b.stops), (1 + 2, 2));
        // A burst read of the calibration: 26 bytes in one go.
        drop(b);
        let mut calib = [0u8; 26];
        i2c.write_read(BME280_ADDRESS, &[0x88], &mut calib)
            .expect("burst");
        assert_eq!(u16::from_le_bytes([calib[0], calib[1]]), 27504);
        assert_eq!(calib[25], 75, "dig_H1 at 0xA1");
    }

    #[test]
    fn a_missing_device_is_a_typed_nack_and_the_bus_is_left_free() {
        let (bus, mut i2c) = master(Bus::new(None));
        let mut id = [0u8; 1];
        assert_eq!(
            i2c.write_read(BME280_ADDRESS, &[0xD0], &mut id),
            Err(Error::NoAcknowledge(NoAcknowledgeSource::Address))
        );
        let mut b = bus.borrow_mut();
        assert!(b.sda() && b.scl(), "both lines released");
        assert_eq!(b.stops, 1);
    }

    #[test]
    fn clock_stretching_is_waited_for_up_to_the_timeout() {
        let mut stretched = sensor_bus();
        stretched.stretch_polls = 20;
        let (_, mut i2c) = master(stretched);
        let mut id = [0u8; 1];
        i2c.write_read(BME280_ADDRESS, &[0xD0], &mut id)
            .expect("read");
        assert_eq!(id, [0x60]);
        let mut forever = sensor_bus();
        // 25 ms at 5 us per half period is 5,000 polls.
        forever.stretch_polls = 6_000;
        let (_, mut i2c) = master(forever);
        assert_eq!(
            i2c.write_read(BME280_ADDRESS, &[0xD0], &mut id),
            Err(Error::ClockStretchTimeout)
        );
    }

    #[test]
    fn a_stuck_bus_is_recovered_with_nine_clocks_or_reported() {
        let mut stuck = sensor_bus();
        stuck.stuck_clocks = 7;
        let (bus, mut i2c) = master(stuck);
        let mut id = [0u8; 1];
        i2c.write_read(BME280_ADDRESS, &[0xD0], &mut id)
            .expect("recovered");
        assert_eq!(id, [0x60]);
        assert_eq!(bus.borrow().stuck_clocks, 0);
        let mut dead = sensor_bus();
        dead.stuck_clocks = 50;
        let (_, mut i2c) = master(dead);
        assert_eq!(
            i2c.write_read(BME280_ADDRESS, &[0xD0], &mut id),
            Err(Error::BusStuck)
        );
    }

    #[test]
    fn the_adc_driver_crate_converts_in_one_sample_period() {
        let mut bus = sensor_bus();
        bus.ads1115 = Some(Ads1115::new([1960, 0, 0, 0]));
        let (bus, i2c) = master(bus);
        let mut adc = ads1x1x::Ads1x1x::new_ads1115(i2c, ads1x1x::TargetAddr::default());
        adc.set_full_scale_range(ads1x1x::FullScaleRange::Within4_096V)
            .expect("range");
        // A read starts a conversion and is not ready until one sample period (7.8 ms at
        // 128 SPS) later. (Writing the range with OS set, as the driver does, already starts
        // one, as the datasheet says a write of OS does.)
        let mut polls = 0;
        let value = loop {
            match adc.read(ads1x1x::channel::SingleA0) {
                Err(nb::Error::WouldBlock) => {
                    polls += 1;
                    assert!(polls < 20, "never ready");
                    bus.borrow_mut().now_us += 2_000;
                }
                other => break other,
            }
        };
        // 1960 mV at a 4.096 V full scale: 1960 * 32768 / 4096.
        assert!(matches!(value, Ok(15_680)), "{value:?}");
        assert!(polls >= 4, "ready after {polls} polls of 2 ms: too early");
        assert!(bus.borrow().ads1115.is_some_and(|a| a.conversions >= 1));
        // Both devices on one bus: the BME280 still answers.
        let mut i2c = adc.destroy_ads1115();
        let mut id = [0u8; 1];
        i2c.write_read(BME280_ADDRESS, &[0xD0], &mut id)
            .expect("read");
        assert_eq!(id, [0x60]);
    }

    #[test]
    fn the_driver_crate_reads_what_the_datasheet_formula_gives() {
        let (bus, i2c) = master(sensor_bus());
        let mut sensor = bme280::i2c::BME280::new_primary(i2c);
        let mut delay = NoDelay;
        sensor.init(&mut delay).expect("init");
        let m = sensor.measure(&mut delay).expect("measure");
        assert_eq!(bus.borrow().bme280.map(|s| s.measurements), Some(1));
        let (t, p, h) = datasheet(&Calibration::DATASHEET, &RAW);
        // The BMP280 datasheet's worked example: 25.08 °C, 100653 Pa.
        assert_eq!(t, 2508);
        assert_eq!(p / 256, 100_653);
        let h = h as f32 / 1024.0;
        assert!(
            (m.temperature - t as f32 / 100.0).abs() <= 0.01,
            "{}",
            m.temperature
        );
        assert!(
            (m.pressure - (p / 256) as f32).abs() <= 1.0,
            "{}",
            m.pressure
        );
        assert!((m.humidity - h).abs() <= 0.05, "{} vs {h}", m.humidity);
    }
}
