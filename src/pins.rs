//! Console pins: how the production profile takes GPIO1, GPIO3 and GPIO2 away from the UARTs.
//!
//! After reset the ESP8266's IO multiplexer routes GPIO1 to UART0 TX and GPIO3 to UART0 RX,
//! and the SDK uses GPIO2 as UART1 TX for its debug output. A production image switches all
//! three to plain GPIO inputs with pull-ups, so even an SDK message that escapes
//! `system_set_os_print(0)` goes nowhere and the pins do not accept UART input. This module
//! only computes register addresses and values; the firmware does the 32-bit writes.
//! It cannot disable the ROM serial bootloader, which runs before any firmware.

/// Base address of the IO multiplexer registers.
pub const IO_MUX_BASE: u32 = 0x6000_0800;
/// GPIO register that clears output-enable bits (write 1 to make a pin an input).
pub const GPIO_ENABLE_W1TC: u32 = 0x6000_0314;

/// Bits of the function field in an IO_MUX pin register (bits 4, 5 and 8).
const FUNCTION_MASK: u32 = 0x13 << 4;
/// Pull-up enable bit of an IO_MUX pin register.
const PULL_UP: u32 = 1 << 7;

/// One pin of the IO multiplexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MuxPin {
    /// GPIO number.
    pub gpio: u8,
    /// Address of its IO_MUX register.
    pub register: u32,
    /// The function number that makes it a GPIO.
    pub gpio_function: u8,
}

/// GPIO1, UART0 TX after reset.
pub const UART0_TX: MuxPin = MuxPin {
    gpio: 1,
    register: IO_MUX_BASE + 0x18,
    gpio_function: 3,
};
/// GPIO3, UART0 RX after reset.
pub const UART0_RX: MuxPin = MuxPin {
    gpio: 3,
    register: IO_MUX_BASE + 0x14,
    gpio_function: 3,
};
/// GPIO2, which the SDK uses as UART1 TX.
pub const UART1_TX: MuxPin = MuxPin {
    gpio: 2,
    register: IO_MUX_BASE + 0x38,
    gpio_function: 0,
};

/// GPIO4 (D2 on a D1 mini), the garden board's I2C SDA.
pub const I2C_SDA: MuxPin = MuxPin {
    gpio: 4,
    register: IO_MUX_BASE + 0x3C,
    gpio_function: 0,
};
/// GPIO5 (D1 on a D1 mini), the garden board's I2C SCL.
pub const I2C_SCL: MuxPin = MuxPin {
    gpio: 5,
    register: IO_MUX_BASE + 0x40,
    gpio_function: 0,
};

/// GPIO12 (D6 on a D1 mini), which powers the garden board's sensors.
pub const SENSOR_POWER: MuxPin = MuxPin {
    gpio: 12,
    register: IO_MUX_BASE + 0x04,
    gpio_function: 3,
};

/// Whether the application drives GPIO2 itself (then production leaves it alone).
pub const APPLICATION_USES_GPIO2: bool = false;

/// The pins a production image takes away from the UARTs.
pub const fn production_pins() -> &'static [MuxPin] {
    if APPLICATION_USES_GPIO2 {
        &[UART0_TX, UART0_RX]
    } else {
        &[UART0_TX, UART0_RX, UART1_TX]
    }
}

/// Encodes a function number into the register's split field (bit 2 of the number goes to
/// register bit 8, bits 0..1 to register bits 4..5).
pub const fn function_bits(function: u8) -> u32 {
    let f = function as u32;
    (((f & 0b100) << 2) | (f & 0b011)) << 4
}

/// The new value of a pin's IO_MUX register: GPIO function, pull-up on, other bits kept.
pub const fn as_gpio_with_pull_up(current: u32, pin: MuxPin) -> u32 {
    (current & !FUNCTION_MASK) | function_bits(pin.gpio_function) | PULL_UP
}

/// The value to write to [`GPIO_ENABLE_W1TC`] to make `pins` inputs.
pub fn output_disable_mask(pins: &[MuxPin]) -> u32 {
    pins.iter().fold(0, |mask, pin| mask | (1 << pin.gpio))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_field_is_split_like_the_hardware() {
        assert_eq!(function_bits(0), 0);
        assert_eq!(function_bits(3), 0x30);
        assert_eq!(function_bits(4), 0x100);
        assert_eq!(function_bits(7), 0x130);
    }

    #[test]
    fn uart_function_is_replaced_and_other_bits_kept() {
        // Reset value of U0TXD: function 0 (UART), with an unrelated bit 0 set.
        let new = as_gpio_with_pull_up(0x0000_0001, UART0_TX);
        assert_eq!(new, 0x0000_0001 | 0x30 | 0x80);
        // A register with every function bit set ends with exactly the GPIO function.
        let new = as_gpio_with_pull_up(0xFFFF_FFFF, UART1_TX);
        assert_eq!(new & FUNCTION_MASK, 0);
        assert_eq!(new | FUNCTION_MASK, 0xFFFF_FFFF);
    }

    #[test]
    fn production_covers_both_uart0_pins_and_gpio2() {
        let pins = production_pins();
        assert_eq!(output_disable_mask(pins), 0b1110);
        assert!(pins.contains(&UART0_TX) && pins.contains(&UART0_RX));
    }
}
