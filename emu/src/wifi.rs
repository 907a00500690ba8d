//! The WiFi station and SoftAP, scripted, with the SDK's own state rules (`docs/sdk-model.md`).
//!
//! The harness describes up to four access points in the mailbox (SSID, channel, BSSID, the
//! PSK and passphrase each accepts, the address its DHCP server gives). What the real SDK
//! does around them is modelled, not simplified:
//!
//! - the opmode and the station and SoftAP configs live in the parameter block's RAM copy
//!   ([`crate::param`]); a `_current` setter changes only RAM, and before `user_init` returns
//!   only the RAM byte (M35); afterwards a mode change stops and starts the interfaces, and a
//!   SoftAP starts with whatever config RAM holds (`emu: softap up ...`, M18);
//! - after `user_init` the start-up applies the RAM opmode and, with the auto-connect byte
//!   set, connects with the RAM station config before the init-done callback (M16);
//! - `wifi_station_set_config_current` clears `PmkCurrent` and fails without the station bit
//!   (M31); `wifi_softap_set_config_current` fails below SoftAP mode (M34);
//! - a connection derives the PMK (64 hex digits are the PSK, anything else a passphrase),
//!   calls `wifi_station_save_pmk2cache`, and on association `wifi_station_save_bssid` and
//!   `wifi_station_save_ap_channel`, by their SDK names (M22-M25, M33);
//! - events as the SDK sends them (M40-M42): `CONNECTED` then `GOT_IP` for the right key;
//!   `DISCONNECTED` 204 once for a wrong key; 201 after every failed scan, retried each second
//!   while the reconnect policy is on; 8 after the firmware's own disconnect; nothing from an
//!   access point scripted to stay silent (the SDK's retries inside an attempt post no event).
//!
//! Every configuration call is printed (`emu: wifi ...`) so tests can see exactly which setters
//! the firmware used; keys are never printed. The persistent setters exist as the SDK has
//! them (they save the block and print `emu: PERSISTENT ...`): the firmware's link redirects
//! its references (`--wrap`), so a test that sees that line has found a leak.

use core::ffi::c_void;

use wifi_sys::{ETSTimer, System_Event_t, bss_info, ip_info, softap_config, station_config};

use crate::emulate;
use crate::harness::{Answer, Network};
use crate::param::{self, at};
use crate::scheduler::{Global, SCHEDULER};
use crate::semihosting::say;

const EVENT_CONNECTED: u32 = 0;
const EVENT_DISCONNECTED: u32 = 1;
const EVENT_GOT_IP: u32 = 3;
/// Disconnect reasons the model sends (M40-M42).
const REASON_ASSOC_LEAVE: u8 = 8;
const REASON_NO_AP_FOUND: u8 = 201;
const REASON_HANDSHAKE_TIMEOUT: u8 = 204;

/// Station connection states (`wifi_station_get_connect_status`).
const STATION_IDLE: u8 = 0;
const STATION_CONNECTING: u8 = 1;
const STATION_WRONG_PASSWORD: u8 = 2;
const STATION_NO_AP_FOUND: u8 = 3;
const STATION_GOT_IP: u8 = 5;
/// Failed scans in a row before the status says "no AP found" (M40-M42).
const NO_AP_STATUS_AFTER: u32 = 3;

/// Size of `System_Event_t` (checked in wifi-sys).
const EVENT_BYTES: usize = 44;

/// Virtual milliseconds of the steps of an attempt.
const SCAN_MS: u64 = 2000;
const RETRY_MS: u64 = 1000;
const ASSOCIATE_MS: u64 = 800;
const HANDSHAKE_FAIL_MS: u64 = 2000;
const DHCP_MS: u64 = 700;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    None,
    /// The scan of an attempt found nothing.
    NotFound,
    /// Associated: the SDK's own saves, then `CONNECTED`.
    Associated,
    GotIp,
    /// The 4-way handshake failed.
    WrongKey,
}

struct Station {
    handler: Option<unsafe extern "C" fn(*mut System_Event_t)>,
    status: u8,
    network: Option<Network>,
    next: Step,
    /// Interfaces started by a mode change after `user_init` (M35).
    station_up: bool,
    softap_up: bool,
    /// Associated with an access point (so a disconnect reports reason 8).
    associated: bool,
    /// The SDK retries failed scans by itself (M40-M42); `wifi_station_set_reconnect_policy`.
    reconnect: bool,
    failed_scans: u32,
}

static STATION: Global<Station> = Global::new(Station {
    handler: None,
    status: STATION_IDLE,
    network: None,
    next: Step::None,
    station_up: false,
    softap_up: false,
    associated: false,
    reconnect: true,
    failed_scans: 0,
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

fn cancel() {
    SCHEDULER.with(|s| s.disarm(timer()));
    STATION.with(|s| s.next = Step::None);
}

pub(crate) fn printable(ssid: &[u8]) -> heapless_ssid::Text {
    heapless_ssid::Text::from(ssid)
}

/// A tiny fixed buffer for printing SSIDs with non-printable bytes escaped.
pub(crate) mod heapless_ssid {
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

fn nul_len(bytes: &[u8]) -> usize {
    bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())
}

/// The station SSID in the RAM block.
fn ram_ssid() -> ([u8; 32], usize) {
    param::with_ram(|ram| {
        let mut ssid = [0u8; 32];
        ssid.copy_from_slice(&ram[at::STA_SSID..at::STA_SSID + 32]);
        let len = u32::from_le_bytes([
            ram[at::STA_SSID_LEN],
            ram[at::STA_SSID_LEN + 1],
            ram[at::STA_SSID_LEN + 2],
            ram[at::STA_SSID_LEN + 3],
        ]);
        (
            ssid,
            if len > 32 {
                nul_len(&ssid)
            } else {
                len as usize
            },
        )
    })
}

fn ram_opmode() -> u8 {
    param::with_ram(|ram| ram[at::OPMODE])
}

/// M33: the PMK for the RAM password: 64 characters are the PSK in hex (bad digits give a
/// wrong key, unchecked like the SDK), anything else a passphrase, whose PMK the emulator
/// knows only for the scripted network it belongs to (it does not run PBKDF2).
fn derive_pmk(network: Option<&Network>) -> [u8; 32] {
    let password = param::with_ram(|ram| {
        let mut p = [0u8; 64];
        p.copy_from_slice(&ram[at::STA_PASSWORD..at::STA_PASSWORD + 64]);
        p
    });
    let len = nul_len(&password);
    let digit = |c: u8| -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0,
        }
    };
    let mut pmk = [0u8; 32];
    if len == 64 {
        for (i, byte) in pmk.iter_mut().enumerate() {
            *byte = (digit(password[2 * i]) << 4) | digit(password[2 * i + 1]);
        }
    } else if let Some(network) = network
        && len > 0
        && network.passphrase() == &password[..len]
    {
        pmk = network.psk;
    }
    pmk
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

fn send(bytes: [u8; EVENT_BYTES]) {
    if let Some(handler) = STATION.with(|s| s.handler) {
        let mut bytes = bytes;
        // SAFETY: the handler was registered by the firmware with the SDK's signature, and the
        // buffer has System_Event_t's size and layout (wifi-sys asserts both).
        unsafe { handler(bytes.as_mut_ptr() as *mut System_Event_t) };
    }
}

/// The access point an event is about: the joined one, or the configured SSID.
fn target() -> Network {
    let network = STATION.with(|s| s.network);
    network.unwrap_or_else(|| {
        let (ssid, len) = ram_ssid();
        Network {
            ssid,
            ssid_len: len as u8,
            channel: 0,
            answer: Answer::Silent,
            psk: [0; 32],
            passphrase: [0; 64],
            open: false,
            bssid: [0; 6],
            ip: [0; 4],
            rssi: 0,
        }
    })
}

unsafe extern "C" fn deliver(_arg: *mut c_void) {
    let step = STATION.with(|s| {
        let step = s.next;
        s.next = Step::None;
        step
    });
    let target = target();
    match step {
        Step::None => {}
        Step::NotFound => {
            let failed = STATION.with(|s| {
                s.failed_scans += 1;
                if s.failed_scans >= NO_AP_STATUS_AFTER && s.status != STATION_WRONG_PASSWORD {
                    s.status = STATION_NO_AP_FOUND;
                }
                s.failed_scans
            });
            say!(
                "wifi event: disconnected from {}, reason {REASON_NO_AP_FOUND} (failed scan {failed})",
                printable(target.ssid())
            );
            // The SDK schedules its retry before it posts the event (M40-M42).
            if STATION.with(|s| s.reconnect) {
                schedule(Step::NotFound, RETRY_MS + SCAN_MS);
            }
            send(event(EVENT_DISCONNECTED, &target, REASON_NO_AP_FOUND));
        }
        Step::Associated => {
            // libwpa's wpa_set_bss derives the PMK when the block says so, then caches it.
            let derive = param::with_ram(|ram| ram[at::STA_PMK_INVALID] != 0);
            if derive {
                let pmk = derive_pmk(Some(&target));
                param::with_ram(|ram| {
                    ram[at::STA_PMK..at::STA_PMK + 32].copy_from_slice(&pmk);
                    ram[at::STA_PMK_INVALID] = 0;
                });
                // SAFETY: a plain call of the SDK function by its SDK name (wrappable).
                unsafe { wifi_sys::wifi_station_save_pmk2cache() };
            }
            // eagle_auth_done: the BSSID (unless locked) and the channel are saved.
            let locked = param::with_ram(|ram| {
                let locked = ram[at::STA_BSSID_SET] == 1;
                if !locked {
                    ram[at::STA_BSSID..at::STA_BSSID + 6].copy_from_slice(&target.bssid);
                }
                locked
            });
            // SAFETY: plain calls of SDK functions by their SDK names (wrappable).
            unsafe {
                if !locked {
                    wifi_sys::wifi_station_save_bssid();
                }
                wifi_sys::wifi_station_save_ap_channel(target.channel);
            }
            say!(
                "wifi event: connected to {} on channel {}",
                printable(target.ssid()),
                target.channel
            );
            STATION.with(|s| {
                s.associated = true;
                s.status = STATION_CONNECTING;
            });
            schedule(Step::GotIp, DHCP_MS);
            send(event(EVENT_CONNECTED, &target, 0));
        }
        Step::GotIp => {
            let ip = target.ip;
            say!("wifi event: got ip {}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
            STATION.with(|s| s.status = STATION_GOT_IP);
            if crate::sdk::settings().save_ram_when_connected {
                say!("HYPOTHETICAL: the SDK saves its RAM block while connected (harness flag)");
                param::save_ram();
            }
            send(event(EVENT_GOT_IP, &target, 0));
        }
        Step::WrongKey => {
            say!(
                "wifi event: disconnected from {}, reason {REASON_HANDSHAKE_TIMEOUT} (4-way handshake failed)",
                printable(target.ssid())
            );
            STATION.with(|s| {
                s.status = STATION_WRONG_PASSWORD;
                s.associated = false;
            });
            send(event(EVENT_DISCONNECTED, &target, REASON_HANDSHAKE_TIMEOUT));
        }
    }
}

/// Brings the interfaces in line with `mode`, as a mode change after `user_init` does (M35):
/// both stop, then the ones the mode names start. A SoftAP starts with the RAM config.
fn apply_mode(mode: u8) {
    stop_interfaces();
    let station = mode & wifi_sys::STATION_MODE != 0;
    let softap = mode & wifi_sys::SOFTAP_MODE != 0;
    STATION.with(|s| {
        s.station_up = station;
        s.softap_up = softap;
    });
    if softap {
        let (ssid, len, auth, channel, password_len) = param::with_ram(|ram| {
            let mut ssid = [0u8; 32];
            ssid.copy_from_slice(&ram[at::AP_SSID..at::AP_SSID + 32]);
            let len = u32::from_le_bytes([
                ram[at::AP_SSID_LEN],
                ram[at::AP_SSID_LEN + 1],
                ram[at::AP_SSID_LEN + 2],
                ram[at::AP_SSID_LEN + 3],
            ]);
            let len = if len > 32 {
                nul_len(&ssid)
            } else {
                len as usize
            };
            let password_len = nul_len(&ram[at::AP_PASSWORD..at::AP_PASSWORD + 64]);
            (
                ssid,
                len,
                ram[at::AP_AUTH],
                ram[at::AP_CHANNEL],
                password_len,
            )
        });
        say!(
            "softap up ssid={} auth={auth} channel={channel} key={password_len} chars",
            printable(&ssid[..len])
        );
    }
}

/// Stops both interfaces (a mode change, a restart or a deep sleep): no further events.
pub fn stop_interfaces() {
    cancel();
    SCHEDULER.with(|s| s.disarm(SCAN_TIMER.with(|t| t as *mut ETSTimer)));
    STATION.with(|s| {
        if s.softap_up {
            say!("softap down");
        }
        s.station_up = false;
        s.softap_up = false;
        s.associated = false;
        s.status = STATION_IDLE;
        s.network = None;
        s.failed_scans = 0;
    });
}

/// M16: what the SDK's start-up does right after `user_init` returns, before the init-done
/// callback: apply the RAM opmode, then auto-connect when the RAM byte says so.
pub fn start_up_after_user_init() {
    let mode = ram_opmode();
    say!("sdk: start-up applies opmode {mode}");
    apply_mode(if mode >= 4 {
        wifi_sys::SOFTAP_MODE
    } else {
        mode
    });
    let auto_connect = param::with_ram(|ram| ram[at::AUTO_CONNECT] != 0);
    if auto_connect {
        // SAFETY: the SDK's own call, by its SDK name.
        let started = unsafe { wifi_sys::wifi_station_connect() };
        if started && STATION.with(|s| s.next != Step::None) {
            let (ssid, len) = ram_ssid();
            say!("sdk: start-up auto-connect to {}", printable(&ssid[..len]));
        }
    }
}

emulate! {
    /// Sets the operating mode without writing flash (M35).
    fn wifi_set_opmode_current(opmode: u8) -> bool {
        say!("wifi: wifi_set_opmode_current({opmode})");
        if opmode > 3 {
            return false;
        }
        let changed = param::with_ram(|ram| {
            let changed = ram[at::OPMODE] != opmode;
            ram[at::OPMODE] = opmode;
            changed
        });
        if changed && crate::sdk::user_init_returned() {
            apply_mode(opmode);
        }
        true
    }
}

emulate! {
    /// The current mode (values of 4 and more read as SoftAP).
    fn wifi_get_opmode() -> u8 {
        let mode = ram_opmode();
        if mode >= 4 { wifi_sys::SOFTAP_MODE } else { mode }
    }
}

fn config_of(config: *const station_config) -> station_config {
    // SAFETY: the caller passes a valid station_config (checked non-null by the callers).
    unsafe { *config }
}

emulate! {
    /// Sets the station configuration in RAM only. Clears `PmkCurrent` first, whatever
    /// happens next, and fails without the station bit (M31). Prints the SSID, BSSID lock and
    /// channel, and only the shape of the key.
    fn wifi_station_set_config_current(config: *mut station_config) -> bool {
        param::set_pmk_current(false);
        if config.is_null() || ram_opmode() & wifi_sys::STATION_MODE == 0 {
            say!("wifi: wifi_station_set_config_current refused (opmode {})", ram_opmode());
            return false;
        }
        let c = config_of(config);
        let key_len = nul_len(&c.password);
        let key = match key_len {
            0 => "none",
            64 => "64 hex digits",
            _ => "a passphrase",
        };
        say!(
            "wifi: wifi_station_set_config_current ssid={} key={key} bssid_set={} channel={}",
            printable(&c.ssid[..nul_len(&c.ssid)]),
            c.bssid_set,
            c.channel
        );
        param::with_ram(|ram| param::apply_station_config(ram, &c));
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
    /// Starts connecting with the RAM station config. Refused before the station interface
    /// exists (inside `user_init`, or without the station bit: M19); an empty SSID succeeds
    /// without connecting (M16). The outcome arrives as events.
    fn wifi_station_connect() -> bool {
        if !STATION.with(|s| s.station_up) {
            return false;
        }
        let (ssid, len) = ram_ssid();
        if len == 0 {
            return true;
        }
        let ssid = &ssid[..len];
        let (bssid_set, bssid) = param::with_ram(|ram| {
            let mut b = [0u8; 6];
            b.copy_from_slice(&ram[at::STA_BSSID..at::STA_BSSID + 6]);
            (ram[at::STA_BSSID_SET] == 1, b)
        });
        let networks = crate::sdk::settings().networks;
        let found = networks
            .iter()
            .flatten()
            .find(|n| n.ssid() == ssid && (!bssid_set || n.bssid == bssid))
            .copied();
        say!("wifi: wifi_station_connect to {}", printable(ssid));
        cancel();
        STATION.with(|s| {
            s.network = found;
            s.status = STATION_CONNECTING;
            s.associated = false;
            s.failed_scans = 0;
        });
        match found {
            None => schedule(Step::NotFound, SCAN_MS),
            Some(network) if network.answer == Answer::Silent => {}
            Some(network) => {
                let password_len = param::with_ram(|ram| nul_len(&ram[at::STA_PASSWORD..at::STA_PASSWORD + 64]));
                let accepted = if network.open {
                    password_len == 0
                } else {
                    password_len > 0 && derive_pmk(Some(&network)) == network.psk
                };
                schedule(if accepted { Step::Associated } else { Step::WrongKey }, if accepted { ASSOCIATE_MS } else { HANDSHAKE_FAIL_MS });
            }
        }
        true
    }
}

emulate! {
    /// Stops any attempt and its retries (M40-M42); an association ends with reason 8.
    fn wifi_station_disconnect() -> bool {
        if !STATION.with(|s| s.station_up) {
            return false;
        }
        say!("wifi: wifi_station_disconnect");
        cancel();
        let was_associated = STATION.with(|s| {
            let was = s.associated;
            s.associated = false;
            s.status = STATION_IDLE;
            s.failed_scans = 0;
            was
        });
        if was_associated {
            send(event(EVENT_DISCONNECTED, &target(), REASON_ASSOC_LEAVE));
        }
        true
    }
}

emulate! {
    /// The station's state.
    fn wifi_station_get_connect_status() -> u8 {
        STATION.with(|s| s.status)
    }
}

emulate! {
    /// Whether the SDK retries by itself (M40-M42; on by default).
    fn wifi_station_set_reconnect_policy(set: bool) -> bool {
        STATION.with(|s| s.reconnect = set);
        true
    }
}

/// The persistent setters as the SDK has them: they change the stored block and save it.
/// The firmware's link redirects its references away from these.
fn persistent(name: &str) {
    say!("PERSISTENT {name} called: the real SDK writes flash now");
}

/// Flash-writing station setter (emulated; unreachable from ramkey through the link's --wrap).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.wifi_station_set_config")]
pub extern "C" fn wifi_station_set_config(config: *mut station_config) -> bool {
    param::set_pmk_current(true);
    if config.is_null() || ram_opmode() & wifi_sys::STATION_MODE == 0 {
        return false;
    }
    persistent("wifi_station_set_config");
    let c = config_of(config);
    let mut stored = param::load_stored();
    param::apply_station_config(&mut stored, &c);
    param::save_with_protect(&stored);
    param::with_ram(|ram| param::apply_station_config(ram, &c));
    true
}

/// Flash-writing opmode setter (emulated; see [`wifi_station_set_config`]).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.wifi_set_opmode")]
pub extern "C" fn wifi_set_opmode(opmode: u8) -> bool {
    if opmode > 3 {
        return false;
    }
    persistent("wifi_set_opmode");
    let mut stored = param::load_stored();
    if stored[at::OPMODE] != opmode {
        stored[at::OPMODE] = opmode;
        param::save_with_protect(&stored);
    }
    // SAFETY: the SDK's own RAM-side setter.
    unsafe { wifi_sys::wifi_set_opmode_current(opmode) }
}

/// Flash-writing auto-connect setter (emulated; see [`wifi_station_set_config`]).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.wifi_station_set_auto_connect")]
pub extern "C" fn wifi_station_set_auto_connect(set: u8) -> bool {
    if set > 1 || ram_opmode() & wifi_sys::STATION_MODE == 0 {
        return false;
    }
    persistent("wifi_station_set_auto_connect");
    param::with_ram(|ram| ram[at::AUTO_CONNECT] = set);
    let mut stored = param::load_stored();
    if stored[at::AUTO_CONNECT] != set {
        stored[at::AUTO_CONNECT] = set;
        param::save_with_protect(&stored);
    }
    true
}

/// Flash-writing soft-AP setter (emulated; see [`wifi_station_set_config`]).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.ramkey_emu.wifi_softap_set_config")]
pub extern "C" fn wifi_softap_set_config(config: *mut c_void) -> bool {
    let _ = config;
    persistent("wifi_softap_set_config");
    false
}

/// MAC addresses of the emulated chip (the soft AP's is the station's with the local bit).
pub const STATION_MAC: [u8; 6] = [0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3];
pub const SOFTAP_MAC: [u8; 6] = [0x5E, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3];

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
    /// Configures the soft AP in RAM only; fails below SoftAP mode (M34). Prints the settings
    /// and the key's length (never the key). A running AP takes the new config at once.
    fn wifi_softap_set_config_current(config: *mut softap_config) -> bool {
        if config.is_null() || ram_opmode() < wifi_sys::SOFTAP_MODE {
            say!("wifi: wifi_softap_set_config_current refused (opmode {})", ram_opmode());
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
        param::with_ram(|ram| {
            ram[at::AP_SSID_LEN..at::AP_SSID_LEN + 4].copy_from_slice(&(len as u32).to_le_bytes());
            ram[at::AP_SSID..at::AP_SSID + 32].copy_from_slice(&c.ssid);
            ram[at::AP_PASSWORD..at::AP_PASSWORD + 64].copy_from_slice(&c.password);
            ram[at::AP_PASSWORD + 64] = 0;
            ram[at::AP_CHANNEL] = c.channel;
            ram[at::AP_AUTH] = c.authmode as u8;
            ram[at::AP_HIDDEN] = c.ssid_hidden;
            ram[at::AP_MAX_CONN] = c.max_connection;
            ram[at::AP_BEACON..at::AP_BEACON + 2].copy_from_slice(&c.beacon_interval.to_le_bytes());
        });
        if STATION.with(|s| s.softap_up) {
            say!("softap reconfigured ssid={} auth={} key={key_len} chars", printable(&c.ssid[..len]), c.authmode);
        }
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
        // SAFETY: `config` points to a writable station_config (checked non-null).
        let c = unsafe { &mut *config };
        param::with_ram(|ram| {
            c.ssid.copy_from_slice(&ram[at::STA_SSID..at::STA_SSID + 32]);
            c.password.copy_from_slice(&ram[at::STA_PASSWORD..at::STA_PASSWORD + 64]);
            c.bssid_set = ram[at::STA_BSSID_SET];
            c.bssid.copy_from_slice(&ram[at::STA_BSSID..at::STA_BSSID + 6]);
            c.channel = ram[at::STA_CHANNEL];
        });
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
        if !STATION.with(|s| s.station_up) {
            say!("wifi: wifi_station_scan refused (no station interface)");
            return false;
        }
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
