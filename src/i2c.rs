//! A bit-banged I2C master for embedded-hal 1.0: the ESP8266 has no I2C peripheral.
//!
//! Generic over two open-drain pins (`set_low` drives the line low, `set_high` releases it to
//! the pull-up, `is_high` reads the line) and a [`DelayNs`], so the same code runs on the chip
//! (`src/firmware/hal.rs`: GPIO through the SDK's `gpio_output_set`/`gpio_input_get`) and on
//! the host against the emulator's bit-level bus model (`emu/src/i2c_bus.rs`).
//!
//! What it does beyond plain bit-banging:
//! - [`I2c::transaction`] as embedded-hal 1.0 defines it: one START, a repeated START and the
//!   address again where a write follows a read or a read a write, adjacent operations of one
//!   kind merged, the last byte read NACKed, one STOP;
//! - clock stretching: after releasing SCL it waits for the line to rise, up to
//!   [`Config::stretch_timeout_us`], then gives up with [`Error::ClockStretchTimeout`];
//! - bus recovery: a transaction that finds SDA held low clocks SCL up to nine times until the
//!   device lets go, then sends a STOP ([`Error::BusStuck`] if it never does); SCL held low is
//!   [`Error::BusStuck`] at once;
//! - a device that does not acknowledge is [`Error::NoAcknowledge`] (address or data), a
//!   released SDA that reads low while SCL is high is [`Error::ArbitrationLoss`]; every error
//!   ends with a STOP attempt, so the bus is free for the next transaction.
//!
//! Timing is counted in half periods of the clock, so no time source is needed.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::i2c::{self, ErrorKind, I2c, NoAcknowledgeSource, Operation, SevenBitAddress};

/// Clock timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Half a clock period in nanoseconds (5,000: 100 kHz).
    pub half_period_ns: u32,
    /// How long a device may hold SCL low (clock stretching) before the master gives up.
    pub stretch_timeout_us: u32,
}

impl Config {
    /// 100 kHz, stretching up to 25 ms (SMBus's limit for one device).
    pub const STANDARD: Config = Config {
        half_period_ns: 5_000,
        stretch_timeout_us: 25_000,
    };
}

/// What went wrong on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No device acknowledged the address or a byte.
    NoAcknowledge(NoAcknowledgeSource),
    /// SDA read low while the master released it: another master, or a confused device.
    ArbitrationLoss,
    /// A device held SCL low longer than the stretch timeout.
    ClockStretchTimeout,
    /// SCL is held low, or SDA stayed low through nine recovery clocks.
    BusStuck,
    /// A pin could not be driven or read.
    Pin,
}

impl i2c::Error for Error {
    fn kind(&self) -> ErrorKind {
        match *self {
            Error::NoAcknowledge(source) => ErrorKind::NoAcknowledge(source),
            Error::ArbitrationLoss => ErrorKind::ArbitrationLoss,
            Error::ClockStretchTimeout | Error::BusStuck => ErrorKind::Bus,
            Error::Pin => ErrorKind::Other,
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::NoAcknowledge(NoAcknowledgeSource::Address) => "no device at that address",
            Error::NoAcknowledge(_) => "the device refused a byte",
            Error::ArbitrationLoss => "arbitration lost",
            Error::ClockStretchTimeout => "the device held the clock too long",
            Error::BusStuck => "the bus is stuck",
            Error::Pin => "a bus pin failed",
        })
    }
}

/// The bit-banged master.
pub struct BitBang<SDA, SCL, D> {
    sda: SDA,
    scl: SCL,
    delay: D,
    config: Config,
}

impl<SDA, SCL, D> BitBang<SDA, SCL, D>
where
    SDA: InputPin + OutputPin,
    SCL: InputPin + OutputPin,
    D: DelayNs,
{
    /// A master on these pins; both lines are released.
    pub fn new(sda: SDA, scl: SCL, delay: D, config: Config) -> Result<Self, Error> {
        let mut bus = BitBang {
            sda,
            scl,
            delay,
            config,
        };
        bus.sda_release()?;
        bus.scl.set_high().map_err(|_| Error::Pin)?;
        Ok(bus)
    }

    /// The pins and the delay back.
    pub fn release(self) -> (SDA, SCL, D) {
        (self.sda, self.scl, self.delay)
    }

    fn half(&mut self) {
        self.delay.delay_ns(self.config.half_period_ns);
    }

    fn sda_release(&mut self) -> Result<(), Error> {
        self.sda.set_high().map_err(|_| Error::Pin)
    }

    fn sda_low(&mut self) -> Result<(), Error> {
        self.sda.set_low().map_err(|_| Error::Pin)
    }

    fn sda_is_high(&mut self) -> Result<bool, Error> {
        self.sda.is_high().map_err(|_| Error::Pin)
    }

    fn scl_low(&mut self) -> Result<(), Error> {
        self.scl.set_low().map_err(|_| Error::Pin)
    }

    /// Releases SCL and waits for it to rise (a device may stretch the clock).
    fn scl_release(&mut self) -> Result<(), Error> {
        self.scl.set_high().map_err(|_| Error::Pin)?;
        let limit = u64::from(self.config.stretch_timeout_us) * 1000
            / u64::from(self.config.half_period_ns.max(1));
        let mut waited = 0u64;
        while !self.scl.is_high().map_err(|_| Error::Pin)? {
            if waited >= limit {
                return Err(Error::ClockStretchTimeout);
            }
            self.half();
            waited += 1;
        }
        Ok(())
    }

    /// Makes sure both lines are high before a START: clocks a device that holds SDA out of
    /// its byte (up to nine clocks), then sends a STOP.
    fn recover(&mut self) -> Result<(), Error> {
        self.sda_release()?;
        if !self.scl.is_high().map_err(|_| Error::Pin)? {
            self.scl_release().map_err(|_| Error::BusStuck)?;
        }
        if self.sda_is_high()? {
            return Ok(());
        }
        for _ in 0..9 {
            self.scl_low()?;
            self.half();
            self.scl_release().map_err(|_| Error::BusStuck)?;
            self.half();
            if self.sda_is_high()? {
                // The device let go: a STOP puts the bus in a known state.
                self.scl_low()?;
                self.half();
                self.sda_low()?;
                self.half();
                self.stop()?;
                return Ok(());
            }
        }
        Err(Error::BusStuck)
    }

    /// START from idle (both high), or a repeated START after a byte (SCL low).
    fn start(&mut self) -> Result<(), Error> {
        self.sda_release()?;
        self.half();
        self.scl_release()?;
        if !self.sda_is_high()? {
            return Err(Error::ArbitrationLoss);
        }
        self.half();
        self.sda_low()?;
        self.half();
        self.scl_low()
    }

    fn stop(&mut self) -> Result<(), Error> {
        self.sda_low()?;
        self.half();
        self.scl_release()?;
        self.half();
        self.sda_release()?;
        self.half();
        if self.sda_is_high()? {
            Ok(())
        } else {
            Err(Error::ArbitrationLoss)
        }
    }

    fn write_bit(&mut self, one: bool) -> Result<(), Error> {
        if one {
            self.sda_release()?;
        } else {
            self.sda_low()?;
        }
        self.half();
        self.scl_release()?;
        if one && !self.sda_is_high()? {
            return Err(Error::ArbitrationLoss);
        }
        self.half();
        self.scl_low()
    }

    fn read_bit(&mut self) -> Result<bool, Error> {
        self.sda_release()?;
        self.half();
        self.scl_release()?;
        let bit = self.sda_is_high()?;
        self.half();
        self.scl_low()?;
        Ok(bit)
    }

    /// Sends a byte; returns whether the device acknowledged it.
    fn write_byte(&mut self, byte: u8) -> Result<bool, Error> {
        for i in (0..8).rev() {
            self.write_bit(byte >> i & 1 == 1)?;
        }
        Ok(!self.read_bit()?)
    }

    fn read_byte(&mut self, ack: bool) -> Result<u8, Error> {
        let mut byte = 0;
        for _ in 0..8 {
            byte = byte << 1 | u8::from(self.read_bit()?);
        }
        self.write_bit(!ack)?;
        Ok(byte)
    }

    fn run(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), Error> {
        self.recover()?;
        let mut previous_read: Option<bool> = None;
        let count = operations.len();
        for i in 0..count {
            let is_read = matches!(operations[i], Operation::Read(_));
            if previous_read != Some(is_read) {
                self.start()?;
                if !self.write_byte(address << 1 | u8::from(is_read))? {
                    return Err(Error::NoAcknowledge(NoAcknowledgeSource::Address));
                }
            }
            // The last byte before a repeated START or the STOP is NACKed.
            let next_is_read = operations
                .get(i + 1)
                .map(|o| matches!(o, Operation::Read(_)));
            match &mut operations[i] {
                Operation::Write(bytes) => {
                    for &byte in bytes.iter() {
                        if !self.write_byte(byte)? {
                            return Err(Error::NoAcknowledge(NoAcknowledgeSource::Data));
                        }
                    }
                }
                Operation::Read(buffer) => {
                    let continues = next_is_read == Some(true);
                    let len = buffer.len();
                    for (j, byte) in buffer.iter_mut().enumerate() {
                        *byte = self.read_byte(continues || j + 1 < len)?;
                    }
                }
            }
            previous_read = Some(is_read);
        }
        self.stop()
    }
}

impl<SDA, SCL, D> i2c::ErrorType for BitBang<SDA, SCL, D> {
    type Error = Error;
}

impl<SDA, SCL, D> I2c<SevenBitAddress> for BitBang<SDA, SCL, D>
where
    SDA: InputPin + OutputPin,
    SCL: InputPin + OutputPin,
    D: DelayNs,
{
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let result = self.run(address, operations);
        if result.is_err() {
            // Leave the bus free whatever happened (errors of the STOP itself are moot).
            let _ = self.scl_low();
            self.half();
            let _ = self.stop();
        }
        result
    }
}
