//! The WiFi station, scripted: which networks exist and what each answers.
//!
//! The harness describes up to four access points in the mailbox (SSID, channel, BSSID, the
//! PSK each accepts, the address its DHCP server gives). A connection attempt is answered on
//! the virtual clock with the events the SDK would deliver: `CONNECTED` then `GOT_IP` for the
//! right key, `DISCONNECTED` with reason 15 (4-way handshake timeout) for a wrong key, 201
//! (no AP found) for an unknown SSID or a BSSID that does not match, and nothing at all for
//! an access point scripted to stay silent.
//!
//! Every configuration call is printed (`emu: wifi ...`) so tests can see exactly which setters
//! the firmware used. The key is never printed. The persistent, flash-writing setters exist
//! here as the SDK has them, and print `emu: PERSISTENT ...` when called: the link redirects
//! the firmware's references (`--wrap`), so a test that sees that line has found a leak.

use core::ffi::c_void;

use wifi_sys::{ETSTimer, System_Event_t, bss_info, ip_info, softap_config, station_config};

use crate::emulate;
use crate::harness::{Answer, Network};
use crate::scheduler::{Global, SCHEDULER};
use crate::semihosting::say;

const EVENT_CONNECTED: u32 = 0;
const EVENT_DISCONNECTED: u32 = 1;
const EVENT_GOT_IP: u32 = 3;
const REASON_4WAY_HANDSHAKE_TIMEOUT: u8 = 15;
const REASON_NO_AP_FOUND: u8 = 201;

/// Station connection states (`wifi_station_get_connect_status`).
const STATION_IDLE: u8 = 0;
const STATION_CONNECTING: u8 = 1;
const STATION_WRONG_PASSWORD: u8 = 2;
const STATION_NO_AP_FOUND: u8 = 3;
const STATION_GOT_IP: u8 = 5;

/// Size of `System_Event_t` and of `station_config` (checked in wifi-sys).
const EVENT_BYTES: usize = 44;
const CONFIG_BYTES: usize = 116;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    None,
    Connected,
    GotIp,
    Disconnected(u8),
}

struct Station {
    opmode: u8,
    config: [u8; CONFIG_BYTES],
    handler: Option<unsafe extern "C" fn(*mut System_Event_t)>,
    status: u8,
    network: Option<Network>,
    next: Step,
}

static STATION: Global<Station> = Global::new(Station {
    opmode: 0,
    config: [0; CONFIG_BYTES],
    handler: None,
    status: STATION_IDLE,
    network: None,
    next: Step::None,
});

/// The timer that delivers the next event.
static EVENT_TIMER: Global<ETSTimer> = Global::new(ETSTimer {
    timer_next: core::ptr::null_mut(),
    timer_expire: 0,
    timer_period: 0,
    timer_func: None,
    timer_arg: core::ptr::null_mut(),
});

fn timer() -> *mut ETSTimer {
    EVENT_TIMER.with(|t| t as *mut ETSTimer)
}

fn schedule(step: Step, delay_ms: u64) {
    STATION.with(|s| s.next = step);
    let timer = timer();
    EVENT_TIMER.with(|t| {
        t.timer_func = Some(deliver);
        t.timer_arg = core::ptr::null_mut();
    });
    SCHEDULER.with(|s| s.arm(timer, delay_ms * 1000, false));
}

fn printable(ssid: &[u8]) -> heapless_ssid::Text {
    heapless_ssid::Text::from(ssid)
}

/// A tiny fixed buffer for printing SSIDs with non-printable bytes escaped.
mod heapless_ssid {
    pub struct Text {
        bytes: [u8; 128],
        len: usize,
    }
    impl Text {
        pub fn from(ssid: &[u8]) -> Text {
            let mut text = Text {
                bytes: [0; 128],
                len: 0,
            };
            for &b in ssid {
                if (0x20..0x7F).contains(&b) && b != b'\\' {
                    text.push(b);
                } else {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    for c in [
                        b'\\',
                        b'x',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ] {
                        text.push(c);
                    }
                }
            }
            text
        }
        fn push(&mut self, b: u8) {
            if self.len < self.bytes.len() {
                self.bytes[self.len] = b;
                self.len += 1;
            }
        }
    }
    impl core::fmt::Display for Text {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str(core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("?"))
        }
    }
}

fn ssid_of(config: &[u8; CONFIG_BYTES]) -> &[u8] {
    let raw = &config[..32];
    let len = raw.iter().position(|&b| b == 0).unwrap_or(32);
    &raw[..len]
}

/// The 32-byte key from the config's password field: 64 hex digits (what ramkey passes),
/// or `None` for anything else (a passphrase the emulator does not derive).
fn key_of(config: &[u8; CONFIG_BYTES]) -> Option<[u8; 32]> {
    let text = &config[32..96];
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = (digit(text[2 * i])? << 4) | digit(text[2 * i + 1])?;
    }
    Some(key)
}

fn event(kind: u32, network: &Network, reason: u8) -> [u8; EVENT_BYTES] {
    let mut e = [0u8; EVENT_BYTES];
    e[0..4].copy_from_slice(&kind.to_le_bytes());
    match kind {
        EVENT_GOT_IP => {
            e[4..8].copy_from_slice(&network.ip);
            e[8..12].copy_from_slice(&[255, 255, 255, 0]);
            e[12..16].copy_from_slice(&[network.ip[0], network.ip[1], network.ip[2], 1]);
        }
        _ => {
            e[4..4 + network.ssid().len()].copy_from_slice(network.ssid());
            e[36] = network.ssid_len;
            e[37..43].copy_from_slice(&network.bssid);
            e[43] = if kind == EVENT_CONNECTED {
                network.channel
            } else {
                reason
            };
        }
    }
    e
}

unsafe extern "C" fn deliver(_arg: *mut c_void) {
    let (step, handler, network, config) =
        STATION.with(|s| (s.next, s.handler, s.network, s.config));
    let fallback = Network {
        ssid: [0; 32],
        ssid_len: 0,
        channel: 0,
        answer: Answer::Silent,
        psk: [0; 32],
        open: false,
        bssid: [0; 6],
        ip: [0; 4],
        rssi: 0,
    };
    let mut target = network.unwrap_or(fallback);
    if network.is_none() {
        let ssid = ssid_of(&config);
        target.ssid[..ssid.len()].copy_from_slice(ssid);
        target.ssid_len = ssid.len() as u8;
    }
    let (bytes, next, status) = match step {
        Step::None => return,
        Step::Connected => {
            say!(
                "wifi event: connected to {} on channel {}",
                printable(target.ssid()),
                target.channel
            );
            (
                event(EVENT_CONNECTED, &target, 0),
                Step::GotIp,
                STATION_CONNECTING,
            )
        }
        Step::GotIp => {
            let ip = target.ip;
            say!("wifi event: got ip {}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
            (event(EVENT_GOT_IP, &target, 0), Step::None, STATION_GOT_IP)
        }
        Step::Disconnected(reason) => {
            say!(
                "wifi event: disconnected from {}, reason {reason}",
                printable(target.ssid())
            );
            let status = if reason == REASON_NO_AP_FOUND {
                STATION_NO_AP_FOUND
            } else {
                STATION_WRONG_PASSWORD
            };
            (
                event(EVENT_DISCONNECTED, &target, reason),
                Step::None,
                status,
            )
        }
    };
    STATION.with(|s| s.status = status);
    if next != Step::None {
        schedule(next, 700);
    } else {
        STATION.with(|s| s.next = Step::None);
    }
    if let Some(handler) = handler {
        let mut bytes = bytes;
        // SAFETY: the handler was registered by the firmware with the SDK's signature, and the
        // buffer has System_Event_t's size and layout (wifi-sys asserts both).
        unsafe { handler(bytes.as_mut_ptr() as *mut System_Event_t) };
    }
}

emulate! {
    /// Sets the operating mode without writing flash.
    fn wifi_set_opmode_current(opmode: u8) -> bool {
        say!("wifi: wifi_set_opmode_current({opmode})");
        if opmode > 3 {
            return false;
        }
        STATION.with(|s| s.opmode = opmode);
        true
    }
}

emulate! {
    /// The current mode.
    fn wifi_get_opmode() -> u8 {
        STATION.with(|s| s.opmode)
    }
}

emulate! {
    /// Sets the station configuration without writing flash. Prints the SSID, BSSID lock and
    /// channel, and only the shape of the key.
    fn wifi_station_set_config_current(config: *mut station_config) -> bool {
        if config.is_null() {
            return false;
        }
        let mut bytes = [0u8; CONFIG_BYTES];
        // SAFETY: the firmware passes a valid station_config of CONFIG_BYTES bytes.
        unsafe { core::ptr::copy_nonoverlapping(config as *const u8, bytes.as_mut_ptr(), CONFIG_BYTES) };
        let key = if key_of(&bytes).is_some() {
            "64 hex digits"
        } else if bytes[32] == 0 {
            "none"
        } else {
            "other"
        };
        say!(
            "wifi: wifi_station_set_config_current ssid={} key={key} bssid_set={} channel={}",
            printable(ssid_of(&bytes)),
            bytes[97],
            bytes[96]
        );
        STATION.with(|s| s.config = bytes);
        true
    }
}

emulate! {
    /// Registers the event handler.
    fn wifi_set_event_handler_cb(cb: Option<unsafe extern "C" fn(*mut System_Event_t)>) {
        STATION.with(|s| s.handler = cb);
    }
}

emulate! {
    /// Starts a connection attempt; its outcome arrives as events.
    fn wifi_station_connect() -> bool {
        let config = STATION.with(|s| s.config);
        let ssid = ssid_of(&config);
        let bssid_set = config[97] != 0;
        let networks = crate::sdk::settings().networks;
        let found = networks.iter().flatten().find(|n| {
            n.ssid() == ssid && (!bssid_set || n.bssid[..] == config[98..104])
        });
        say!("wifi: wifi_station_connect to {}", printable(ssid));
        STATION.with(|s| {
            s.network = found.copied();
            s.status = STATION_CONNECTING;
        });
        match found {
            None => schedule(Step::Disconnected(REASON_NO_AP_FOUND), 3000),
            Some(network) if network.answer == Answer::Silent => {}
            Some(network) => {
                let accepted = if network.open { config[32] == 0 } else { key_of(&config) == Some(network.psk) };
                if accepted {
                    schedule(Step::Connected, 800);
                } else {
                    schedule(Step::Disconnected(REASON_4WAY_HANDSHAKE_TIMEOUT), 2000);
                }
            }
        }
        true
    }
}

emulate! {
    /// Stops any attempt; no further events.
    fn wifi_station_disconnect() -> bool {
        say!("wifi: wifi_station_disconnect");
        SCHEDULER.with(|s| s.disarm(timer()));
        STATION.with(|s| {
            s.next = Step::None;
            s.status = STATION_IDLE;
        });
        true
    }
}

emulate! {
    /// The station's state.
    fn wifi_station_get_connect_status() -> u8 {
        STATION.with(|s| s.status)
    }
}

/// The persistent setters as the SDK has them: they store the configuration in the flash
/// parameter area. The firmware's link redirects its references away from these.
fn persistent(name: &str, config: Option<&[u8; CONFIG_BYTES]>) {
    say!("PERSISTENT {name} called: the real SDK would write flash now");
    if let (Some(config), Some(address)) = (config, crate::flash::stored_config_address()) {
        let mut words = [0u32; CONFIG_BYTES / 4];
        for (w, chunk) in words.iter_mut().zip(config.chunks_exact(4)) {
            *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        crate::flash::spi_flash_write(address, words.as_mut_ptr(), CONFIG_BYTES as u32);
    }
}

/// Flash-writing station setter (emulated; unreachable from ramkey through the link's --wrap).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.wifi_station_set_config")]
pub extern "C" fn wifi_station_set_config(config: *mut station_config) -> bool {
    if config.is_null() {
        return false;
    }
    let mut bytes = [0u8; CONFIG_BYTES];
    // SAFETY: a caller passes a valid station_config.
    unsafe {
        core::ptr::copy_nonoverlapping(config as *const u8, bytes.as_mut_ptr(), CONFIG_BYTES)
    };
    persistent("wifi_station_set_config", Some(&bytes));
    STATION.with(|s| s.config = bytes);
    true
}

/// Flash-writing opmode setter (emulated; see [`wifi_station_set_config`]).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.wifi_set_opmode")]
pub extern "C" fn wifi_set_opmode(opmode: u8) -> bool {
    persistent("wifi_set_opmode", None);
    STATION.with(|s| s.opmode = opmode);
    true
}

/// Flash-writing auto-connect setter (emulated; see [`wifi_station_set_config`]).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.wifi_station_set_auto_connect")]
pub extern "C" fn wifi_station_set_auto_connect(set: u8) -> bool {
    let _ = set;
    persistent("wifi_station_set_auto_connect", None);
    true
}

/// Flash-writing soft-AP setter (emulated; see [`wifi_station_set_config`]).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.wifi_softap_set_config")]
pub extern "C" fn wifi_softap_set_config(config: *mut c_void) -> bool {
    let _ = config;
    persistent("wifi_softap_set_config", None);
    true
}

/// MAC addresses of the emulated chip (the soft AP's is the station's with the local bit).
const STATION_MAC: [u8; 6] = [0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3];
const SOFTAP_MAC: [u8; 6] = [0x5E, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3];

struct Extra {
    softap_ip: ip_info,
    scan_results: [bss_info; crate::harness::MAX_NETWORKS],
    scan_done: Option<unsafe extern "C" fn(*mut c_void, u32)>,
}

static EXTRA: Global<Extra> = Global::new(Extra {
    softap_ip: ip_info {
        ip: wifi_sys::ip_addr { addr: 0 },
        netmask: wifi_sys::ip_addr { addr: 0 },
        gw: wifi_sys::ip_addr { addr: 0 },
    },
    scan_results: [bss_info {
        next: core::ptr::null_mut(),
        bssid: [0; 6],
        ssid: [0; 32],
        ssid_len: 0,
        channel: 0,
        rssi: 0,
        authmode: 0,
        is_hidden: 0,
        freq_offset: 0,
        freqcal_val: 0,
        esp_mesh_ie: core::ptr::null_mut(),
        simple_pair: 0,
        pairwise_cipher: 0,
        group_cipher: 0,
        phy_bits: 0,
    }; crate::harness::MAX_NETWORKS],
    scan_done: None,
});

static SCAN_TIMER: Global<ETSTimer> = Global::new(ETSTimer {
    timer_next: core::ptr::null_mut(),
    timer_expire: 0,
    timer_period: 0,
    timer_func: None,
    timer_arg: core::ptr::null_mut(),
});

emulate! {
    /// Configures the soft AP without writing flash. Prints the settings and the key's length
    /// (never the key).
    fn wifi_softap_set_config_current(config: *mut softap_config) -> bool {
        if config.is_null() {
            return false;
        }
        // SAFETY: the firmware passes a valid softap_config.
        let c = unsafe { *config };
        let len = if c.ssid_len == 0 {
            c.ssid.iter().position(|&b| b == 0).unwrap_or(32)
        } else {
            usize::from(c.ssid_len).min(32)
        };
        let key_len = c.password.iter().position(|&b| b == 0).unwrap_or(64);
        say!(
            "wifi: wifi_softap_set_config_current ssid={} auth={} channel={} hidden={} max_connection={} key={key_len} chars",
            printable(&c.ssid[..len]),
            c.authmode,
            c.channel,
            c.ssid_hidden,
            c.max_connection
        );
        true
    }
}

emulate! {
    /// Starts the soft AP's DHCP server.
    fn wifi_softap_dhcps_start() -> bool {
        say!("wifi: wifi_softap_dhcps_start");
        true
    }
}

emulate! {
    /// Stops the soft AP's DHCP server.
    fn wifi_softap_dhcps_stop() -> bool {
        true
    }
}

emulate! {
    /// Starts the station's DHCP client.
    fn wifi_station_dhcpc_start() -> bool {
        true
    }
}

emulate! {
    /// Stops the station's DHCP client.
    fn wifi_station_dhcpc_stop() -> bool {
        true
    }
}

emulate! {
    /// Whether the SDK reconnects by itself (the emulator never does).
    fn wifi_station_set_reconnect_policy(set: bool) -> bool {
        let _ = set;
        true
    }
}

emulate! {
    /// Sets an interface's address (the soft AP's is remembered).
    fn wifi_set_ip_info(if_index: u8, info: *mut ip_info) -> bool {
        if info.is_null() {
            return false;
        }
        // SAFETY: the firmware passes a valid ip_info.
        let info = unsafe { *info };
        let ip = info.ip.addr.to_le_bytes();
        say!("wifi: wifi_set_ip_info({if_index}) {}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
        if if_index == wifi_sys::SOFTAP_IF {
            EXTRA.with(|e| e.softap_ip = info);
        }
        true
    }
}

emulate! {
    /// An interface's address.
    fn wifi_get_ip_info(if_index: u8, info: *mut ip_info) -> bool {
        if info.is_null() {
            return false;
        }
        let value = EXTRA.with(|e| e.softap_ip);
        // SAFETY: the firmware passes a writable ip_info.
        unsafe { *info = if if_index == wifi_sys::SOFTAP_IF { value } else { ip_info::default() } };
        true
    }
}

emulate! {
    /// The chip's MAC addresses.
    fn wifi_get_macaddr(if_index: u8, macaddr: *mut u8) -> bool {
        if macaddr.is_null() {
            return false;
        }
        let mac = if if_index == wifi_sys::SOFTAP_IF { SOFTAP_MAC } else { STATION_MAC };
        // SAFETY: the firmware passes a 6-byte buffer.
        unsafe { core::ptr::copy_nonoverlapping(mac.as_ptr(), macaddr, 6) };
        true
    }
}

emulate! {
    /// A chip id.
    fn system_get_chip_id() -> u32 {
        0x00A1_B2C3
    }
}

emulate! {
    /// The station configuration in use.
    fn wifi_station_get_config(config: *mut station_config) -> bool {
        if config.is_null() {
            return false;
        }
        let bytes = STATION.with(|s| s.config);
        // SAFETY: `config` points to a writable station_config of CONFIG_BYTES bytes.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), config as *mut u8, CONFIG_BYTES) };
        true
    }
}

unsafe extern "C" fn scan_finished(_arg: *mut c_void) {
    let networks = crate::sdk::settings().networks;
    let (head, done) = EXTRA.with(|e| {
        let mut count = 0;
        for network in networks.iter().flatten() {
            let entry = &mut e.scan_results[count];
            entry.bssid = network.bssid;
            entry.ssid = network.ssid;
            entry.ssid_len = network.ssid_len;
            entry.channel = network.channel;
            entry.rssi = network.rssi;
            entry.authmode = if network.open {
                wifi_sys::AUTH_OPEN
            } else {
                wifi_sys::AUTH_WPA2_PSK
            };
            count += 1;
        }
        for i in 0..count {
            let next = if i + 1 < count {
                &raw mut e.scan_results[i + 1]
            } else {
                core::ptr::null_mut()
            };
            e.scan_results[i].next = next;
        }
        let head = if count > 0 {
            &raw mut e.scan_results[0]
        } else {
            core::ptr::null_mut()
        };
        (head, e.scan_done.take())
    });
    say!("wifi event: scan done");
    if let Some(done) = done {
        // SAFETY: registered by the firmware with the SDK's signature; status 0 is OK.
        unsafe { done(head.cast(), 0) };
    }
}

emulate! {
    /// Scans: the scripted networks arrive as a bss_info list two virtual seconds later.
    fn wifi_station_scan(
        config: *mut wifi_sys::scan_config,
        done: Option<unsafe extern "C" fn(*mut c_void, u32)>,
    ) -> bool {
        let _ = config;
        say!("wifi: wifi_station_scan");
        EXTRA.with(|e| e.scan_done = done);
        let timer = SCAN_TIMER.with(|t| {
            t.timer_func = Some(scan_finished);
            t as *mut ETSTimer
        });
        SCHEDULER.with(|s| s.arm(timer, 2_000_000, false));
        true
    }
}
