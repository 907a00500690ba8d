//! What the test harness tells the emulator: a small mailbox loaded into memory by QEMU.
//!
//! `cargo xtask` writes a little-endian block of u32 words and QEMU loads it with
//! `-device loader,file=...,addr=MAILBOX,force-raw=on`. On the `sim` machine that address is
//! plain RAM; on a real ESP8266 nothing is there, which is fine: this crate never runs there.
//! A missing or malformed mailbox means the defaults (a power-on boot, no networks).
//!
//! | word | meaning |
//! |---|---|
//! | 0 | magic `RKEM` (0x4D454B52) |
//! | 1 | layout version (3) |
//! | 2 | reset reason the SDK reports (0..6) |
//! | 3 | flags: bit 0 = flash erases fail; bits 1, 2: hypothetical SDK behaviours (below); bit 3 = bridged network |
//! | 4 | number of scripted networks (0..=6) |
//! | 5..221 | networks, [`NETWORK_WORDS`] words each (see [`Network`]), the unused ones zero |
//! | 221 | TOUT ADC: bit 31 set = given, bits 0..10 the value `system_adc_read` returns while GPIO12 powers the probe (0 otherwise) |
//! | 222 | I2C bus (`i2c_bus.rs`, on GPIO4 SDA / GPIO5 SCL): bit 0 no BME280, bit 1 a device holds SDA for 7 clocks (recoverable), bit 2 for 50 (stuck), bit 3 clock stretching (20 polls per clock), bit 4 no ADS1115 |

/// Address of the mailbox (in the sim machine's plain-RAM peripheral space).
pub const MAILBOX: usize = 0x6000_3000;
const MAGIC: u32 = 0x4D45_4B52;
const VERSION: u32 = 3;
/// Networks the mailbox can describe.
pub const MAX_NETWORKS: usize = 6;
/// Words per network: 4 header bytes (ssid length, channel, flags, rssi), ssid 32, psk 32,
/// bssid 6 + 2 pad, ip 4, passphrase 64 (NUL-padded).
pub const NETWORK_WORDS: usize = 36;
/// The mailbox word with the ADC reading.
const ADC_WORD: usize = 5 + MAX_NETWORKS * NETWORK_WORDS;
/// What `system_adc_read` returns when the harness says nothing (an arbitrary mid-scale value).
const DEFAULT_ADC: u16 = 512;

/// How a scripted access point answers a connection attempt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Accepts the station if its PSK matches.
    CheckKey,
    /// Never answers (the attempt times out).
    Silent,
}

/// One scripted access point.
#[derive(Clone, Copy)]
pub struct Network {
    /// SSID bytes (first `ssid_len`).
    pub ssid: [u8; 32],
    /// SSID length.
    pub ssid_len: u8,
    /// Channel it is on.
    pub channel: u8,
    /// How it answers.
    pub answer: Answer,
    /// The PSK it accepts (all zero and `open`: an open network).
    pub psk: [u8; 32],
    /// The passphrase that PSK is derived from (NUL-padded), for a station config that holds
    /// the passphrase rather than the key (the emulator does not run PBKDF2).
    pub passphrase: [u8; 64],
    /// Whether it is an open network.
    pub open: bool,
    /// Its BSSID.
    pub bssid: [u8; 6],
    /// The address its DHCP server hands out (network order bytes).
    pub ip: [u8; 4],
    /// Signal strength a scan reports, dBm.
    pub rssi: i8,
}

impl Network {
    /// The SSID as a slice.
    pub fn ssid(&self) -> &[u8] {
        &self.ssid[..usize::from(self.ssid_len).min(32)]
    }

    /// The passphrase as a slice (empty when the harness gave none).
    pub fn passphrase(&self) -> &[u8] {
        let len = self.passphrase.iter().position(|&b| b == 0).unwrap_or(64);
        &self.passphrase[..len]
    }
}

/// The harness settings for this run.
#[derive(Clone, Copy)]
pub struct Settings {
    /// Value of `rst_info.reason`.
    pub reset_reason: u32,
    /// Flash erases fail (to prove the scrub is bounded).
    pub erase_fails: bool,
    /// Hypothetical, not in the model (`docs/sdk-model.md` says the opposite, M20): the
    /// `_current` station setter leaves `PmkCurrent` set, as another SDK build might. Lets a
    /// test reach the SDK's own saves with ramkey's network.
    pub pmk_current_sticky: bool,
    /// Hypothetical, not in the model: once connected, the SDK saves its whole RAM block (as
    /// `system_save_sys_param` does at boot, M12). Stands for a flash write ramkey does not
    /// know about.
    pub save_ram_when_connected: bool,
    /// The network runs over the espconn bridge to real sockets, on the host's clock.
    pub bridged: bool,
    /// Scripted networks.
    pub networks: [Option<Network>; MAX_NETWORKS],
    /// What `system_adc_read` returns (0..=1023).
    pub adc: u16,
    /// The I2C bus's devices and faults (word 222).
    pub i2c: u32,
}

impl Settings {
    /// No mailbox: a power-on with no networks around.
    pub const DEFAULT: Settings = Settings {
        reset_reason: 0,
        erase_fails: false,
        pmk_current_sticky: false,
        save_ram_when_connected: false,
        bridged: false,
        networks: [None; MAX_NETWORKS],
        adc: DEFAULT_ADC,
        i2c: 0,
    };

    /// Reads the mailbox.
    pub fn read() -> Settings {
        let word = |i: usize| -> u32 {
            // SAFETY: the mailbox area (a few hundred bytes at MAILBOX) is RAM on QEMU's sim
            // machine, the only machine this crate is built for; aligned 32-bit reads.
            unsafe { core::ptr::read_volatile((MAILBOX as *const u32).add(i)) }
        };
        if word(0) != MAGIC || word(1) != VERSION {
            return Settings::DEFAULT;
        }
        let mut settings = Settings {
            reset_reason: word(2),
            erase_fails: word(3) & 1 != 0,
            pmk_current_sticky: word(3) & 2 != 0,
            save_ram_when_connected: word(3) & 4 != 0,
            bridged: word(3) & 8 != 0,
            networks: [None; MAX_NETWORKS],
            adc: {
                let adc = word(ADC_WORD);
                if adc & (1 << 31) != 0 {
                    (adc & 0x3FF) as u16
                } else {
                    DEFAULT_ADC
                }
            },
            i2c: word(ADC_WORD + 1),
        };
        let count = (word(4) as usize).min(MAX_NETWORKS);
        for (n, slot) in settings.networks.iter_mut().enumerate().take(count) {
            let mut bytes = [0u8; NETWORK_WORDS * 4];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(5 + n * NETWORK_WORDS + i).to_le_bytes());
            }
            let mut network = Network {
                ssid: [0; 32],
                ssid_len: bytes[0].min(32),
                channel: bytes[1],
                answer: if bytes[2] & 1 != 0 {
                    Answer::Silent
                } else {
                    Answer::CheckKey
                },
                open: bytes[2] & 2 != 0,
                psk: [0; 32],
                passphrase: [0; 64],
                bssid: [0; 6],
                ip: [0; 4],
                rssi: bytes[3] as i8,
            };
            network.ssid.copy_from_slice(&bytes[4..36]);
            network.psk.copy_from_slice(&bytes[36..68]);
            network.bssid.copy_from_slice(&bytes[68..74]);
            network.ip.copy_from_slice(&bytes[76..80]);
            network.passphrase.copy_from_slice(&bytes[80..144]);
            *slot = Some(network);
        }
        settings
    }
}
