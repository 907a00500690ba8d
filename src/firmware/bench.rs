//! Measured regions for `cargo xtask bench`: instruction counts under QEMU.
//!
//! The xtask's QEMU plugin counts executed instructions between each call of
//! [`ramkey_bench_begin`] and the next call of [`ramkey_bench_end`]. The regions, in order:
//! 1. the boot decision as `user_init` runs it (read reset reason, boot state, RTC record and
//!    stored config, decide), with whatever the harness put in RTC memory;
//! 2. one PBKDF2-HMAC-SHA1 derivation (4096 rounds) of a WPA2 PSK;
//! 3. the setup portal answering `GET /` with 16 networks on the page: parse, then render the
//!    response a 1460-byte segment at a time, as the device sends it;
//! 4. the captive DNS answering one A query;
//! 5. the flash firewall cleaning one 0x4A4-byte parameter-block write that holds credentials
//!    in the station fields, an AP-cache slot and the SoftAP fields, looking for seven named
//!    secrets (as many as the firmware gathers), into a sink that discards the chunks;
//! 6. one BME280 reading through the bit-banged I2C master and the bme280 driver (init,
//!    forced measurement, compensation), against the emulator's bus model.
//! Only built with the `bench` feature.

use super::global::Global;
use crate::portal::{self, Network, Portal, PortalConfig, RequestBuffer, Security, Streamed};
use crate::rtc_record::Ssid;
use crate::secret::Passphrase;

/// The portal's buffers are too large for the stack, as on the device.
static REQUEST: Global<RequestBuffer> = Global::new(RequestBuffer::new());
static SEGMENT: Global<[u8; 1460]> = Global::new([0; 1460]);

/// Start of a measured region (its address is given to the plugin).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ramkey_bench_begin() {
    // Distinct bodies, so the two markers can never be merged into one address.
    core::hint::black_box(1u32);
}

/// End of a measured region.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ramkey_bench_end() {
    core::hint::black_box(2u32);
}

/// Runs the measured regions, printing what each computed.
pub fn run(reason: u32) {
    ramkey_bench_begin();
    let (plan, record) = super::lifecycle::gather_and_decide(reason);
    ramkey_bench_end();
    info!(
        "bench: boot decision: record {:?} -> {}",
        record,
        plan.mode.name()
    );

    let (Ok(passphrase), Ok(ssid)) = (Passphrase::new(b"password"), Ssid::new(b"IEEE")) else {
        error!("bench: inputs rejected");
        return;
    };
    ramkey_bench_begin();
    let psk = crate::psk::derive(&passphrase, &ssid);
    ramkey_bench_end();
    let key = psk.expose_secret();
    // The IEEE 802.11i test vector's first bytes: a check that the work really ran.
    info!(
        "bench: pbkdf2 vector {}",
        if key[..4] == [0xf4, 0x2c, 0x6f, 0xc5] {
            "ok"
        } else {
            "WRONG"
        }
    );
    portal_and_dns();
}

fn portal_and_dns() {
    let mut portal = Portal::new(PortalConfig::new([192, 168, 4, 1], 80, "ramkey-A1B2C3"));
    for i in 0..portal::MAX_NETWORKS as u8 {
        let name = [b'n', b'e', b't', b'w', b'o', b'r', b'k', b'-', b'a' + i];
        if let Ok(ssid) = Ssid::new(&name) {
            portal.scan_mut().add(Network {
                ssid,
                rssi: -40 - i as i8,
                security: Security::Secured,
                channel: 1 + i % 11,
            });
        }
    }
    let request = b"GET / HTTP/1.1\r\nHost: 192.168.4.1\r\nUser-Agent: bench\r\n\r\n";
    // As the device does it: parse, then render the response a TCP segment at a time.
    ramkey_bench_begin();
    let mut sent = 0;
    if let Streamed::Respond(response) = REQUEST.with(|r| portal.receive_streamed(r, request)) {
        SEGMENT.with(|segment| {
            loop {
                let n = portal.read_response(&response, sent, segment);
                if n == 0 {
                    break;
                }
                sent += n;
            }
        });
    }
    ramkey_bench_end();
    info!("bench: portal page {} bytes", sent);

    let query = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x', b'a', b'm', b'p', b'l',
        b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
    ];
    let mut answer = [0u8; 64];
    ramkey_bench_begin();
    let answered = crate::dns::answer(&query, [192, 168, 4, 1], &mut answer);
    ramkey_bench_end();
    info!("bench: dns answer {} bytes", answered.map_or(0, |n| n));
    firewall();
}

/// The block of region 5, in `.bss` like the firmware's other large buffers.
static BLOCK: Global<[u8; crate::firewall::BLOCK_LEN as usize]> =
    Global::new([0; crate::firewall::BLOCK_LEN as usize]);

fn firewall() {
    use wifi_sys::param as at;
    let ssid = b"HomeNetwork";
    let password = b"hunter22-hunter22";
    BLOCK.with(|b| {
        b[at::OPMODE] = 1;
        for (ssid_at, password_at) in [
            (at::STA_SSID, at::STA_PASSWORD),
            (at::SLOT_SSID, at::SLOT_PASSWORD),
        ] {
            b[ssid_at..ssid_at + ssid.len()].copy_from_slice(ssid);
            b[password_at..password_at + password.len()].copy_from_slice(password);
        }
        b[at::STA_PMK..at::STA_PMK + 32].fill(0xA7);
        b[at::AP_PASSWORD..at::AP_PASSWORD + 8].copy_from_slice(b"setup-pw");
    });
    let secrets: [&[u8]; 7] = [
        &[0xA7; 32],
        b"a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7",
        b"A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7",
        &[0x5C; 32],
        b"5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c",
        b"5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C",
        b"k7m3p-x9qrt-4hwzc-b8nfd",
    ];
    let area = crate::build_config::FLASH_SIZE
        .layout()
        .system_parameter
        .offset;
    let mut firewall = crate::firewall::Firewall::new(area);
    let mut written = 0usize;
    ramkey_bench_begin();
    let verdict = BLOCK.with(|b| {
        firewall.write(area, b, &secrets, &mut |_, chunk: &[u8]| {
            written += chunk.len();
            Ok::<(), ()>(())
        })
    });
    ramkey_bench_end();
    info!(
        "bench: firewall {} bytes, {}",
        written,
        if matches!(verdict, Ok(crate::firewall::Verdict::Cleaned { .. })) {
            "cleaned"
        } else {
            "NOT CLEANED"
        }
    );

    // Powered and past the BME280's 2 ms start-up before the region, off after it.
    if let Some(power) = crate::sensors::BOARD.power {
        super::hal::set_power(power.pin, true);
        // SAFETY: ROM busy wait.
        unsafe { wifi_sys::ets_delay_us(2_000) };
    }
    // SAFETY: plain reads of the system clock.
    let started = unsafe { wifi_sys::system_get_time() };
    ramkey_bench_begin();
    let climate = super::hal::read_bme280();
    ramkey_bench_end();
    if let Some(power) = crate::sensors::BOARD.power {
        super::hal::set_power(power.pin, false);
    }
    // SAFETY: as above.
    let waited = unsafe { wifi_sys::system_get_time() }.wrapping_sub(started);
    match climate {
        Ok(c) => info!(
            "bench: bme280 {} centi-C, {} us of modelled time (busy waits included)",
            crate::sensors::reading(&crate::sensors::BOARD, None, Some(c), None)
                .temperature_centi_c
                .map_or(-1, i32::from),
            waited
        ),
        Err(e) => error!("bench: bme280 failed ({})", e),
    }
}
