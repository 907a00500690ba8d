//! Setup mode on the device: the SoftAP, the captive DNS and the HTTP portal over espconn.
//!
//! Everything this module decides comes from the portable cores: [`crate::portal`] answers
//! HTTP and keeps time ([`portal::Session`], [`portal::Admission`]), [`crate::dns`] answers
//! DNS, [`crate::identity`] reads the setup passphrase. This module only moves bytes between them and the SDK:
//!
//! 1. read the device identity sector; without a valid one the AP stays off (said on the
//!    console) and the device sleeps, as it would after a setup timeout;
//! 2. STA+AP mode, SoftAP `ramkey-XXXXXX` with WPA2-PSK and the per-device passphrase, one
//!    client, its DHCP server on; all with `_current` setters, nothing written to flash;
//! 3. scan, listen on TCP 80 and UDP 53; [`portal::Admission`] decides which connections
//!    get the portal's two slots (request buffers on the SDK's heap) and when one is past
//!    its deadline;
//! 4. on a valid form, derive the key in slices, try the network in STA+AP mode, report the
//!    result through the portal's status page; only a successful attempt writes the RTC
//!    record, then the device deep-sleeps briefly and wakes in station mode;
//! 5. ten minutes without success: deep sleep, try again later.
//!
//! Must never: keep the setup or network passphrase beyond the call that consumes it, call a
//! persistent setter, or send a response the portal did not write.

use core::ffi::{c_char, c_void};

use zeroize::Zeroize;

use super::deep_sleep;
use super::global::{Global, arm, disarm, new_timer};
use super::power;
use super::rtc::SdkRtc;
use crate::portal::{
    Admission, Admit, ConnectKey, ConnectRequest, Failure, Network, Phase, Portal, PortalConfig,
    RequestBuffer, Response, SLOTS, Security, Session, SessionAction, SetupStatus, Streamed,
};
use crate::psk::PskDerivation;
use crate::rtc_record::{self, Credentials, IpConfig, NetworkKey, ReconnectCache, Ssid};
use crate::{dns, identity};

/// The SoftAP's address, netmask and the DHCP range the SDK derives from it.
const AP_IP: [u8; 4] = [192, 168, 4, 1];
const AP_NETMASK: [u8; 4] = [255, 255, 255, 0];
/// The SoftAP's channel until the station side joins a network (then the radio follows it).
const AP_CHANNEL: u8 = 6;
const HTTP_PORT: i32 = 80;
const DNS_PORT: i32 = 53;
/// The session clock: connection deadlines, the setup deadline, the connection-test deadline.
const TICK_MS: u32 = 250;
/// Key derivation in slices: rounds per slice and the pause between slices, so that the SDK's
/// WiFi tasks and watchdog run in between (one round is four SHA-1 compressions).
const ROUNDS_PER_SLICE: u32 = 32;
const SLICE_PAUSE_MS: u32 = 5;
/// How long a connection test may take.
const TEST_TIMEOUT_MS: u64 = 20_000;
/// After success: time for the phone to show the result, then a short sleep into station mode.
const SUCCESS_LINGER_MS: u32 = 15_000;
const SUCCESS_SLEEP_MICROS: u64 = 1_000_000;
/// After a setup timeout or without an identity: sleep, then try again (battery friendly).
const RETRY_SLEEP_MICROS: u64 = 10 * 60 * 1_000_000;
/// Bytes per `espconn_send`: one TCP segment, well inside the SDK's send buffer.
const SEND_CHUNK: usize = 1460;
/// The SDK closes TCP connections idle this long (seconds); the portal's deadlines close
/// them earlier (`portal::Admission`).
const ESPCONN_IDLE_SECONDS: u32 = 30;
/// Connections the SDK accepts on tcp:80: the portal's slots plus one, so that a newcomer
/// reaches the admission policy (to take a slot over, or be refused) while both are held.
/// Each costs about 416 B of heap while open (tcp_pcb, espconn_msg, espconn, esp_tcp
/// blocks, from liblwip.a and libmain.a; README, "Measurements").
const SDK_CONNECTIONS: u8 = SLOTS as u8 + 1;
/// Connections waiting for the close timer.
const TO_CLOSE: usize = SLOTS + 2;
/// Largest DNS datagram answered.
const DNS_MAX: usize = 512;

static TICK_TIMER: Global<wifi_sys::ETSTimer> = Global::new(new_timer());
static SLICE_TIMER: Global<wifi_sys::ETSTimer> = Global::new(new_timer());
static CLOSE_TIMER: Global<wifi_sys::ETSTimer> = Global::new(new_timer());
static FINISH_TIMER: Global<wifi_sys::ETSTimer> = Global::new(new_timer());

/// The listeners: the SDK keeps pointers to these, so they are static.
static HTTP_TCP: Global<wifi_sys::esp_tcp> = Global::new(super::global::tcp_block(HTTP_PORT));
static HTTP_LISTENER: Global<wifi_sys::espconn> = Global::new(wifi_sys::espconn {
    type_: wifi_sys::ESPCONN_TCP,
    state: wifi_sys::ESPCONN_NONE,
    proto: wifi_sys::espconn_proto {
        tcp: core::ptr::null_mut(),
    },
    recv_callback: None,
    sent_callback: None,
    link_cnt: 0,
    reverse: core::ptr::null_mut(),
});
static DNS_UDP: Global<wifi_sys::esp_udp> = Global::new(wifi_sys::esp_udp {
    remote_port: 0,
    local_port: DNS_PORT,
    local_ip: [0; 4],
    remote_ip: [0; 4],
});
static DNS_ENDPOINT: Global<wifi_sys::espconn> = Global::new(wifi_sys::espconn {
    type_: wifi_sys::ESPCONN_UDP,
    state: wifi_sys::ESPCONN_NONE,
    proto: wifi_sys::espconn_proto {
        udp: core::ptr::null_mut(),
    },
    recv_callback: None,
    sent_callback: None,
    link_cnt: 0,
    reverse: core::ptr::null_mut(),
});

/// Each slot's request buffer, on the SDK's heap (setup is the only mode that needs them, so
/// they cost no static DRAM); null if the heap refused.
static REQUESTS: Global<[*mut RequestBuffer; SLOTS]> = Global::new([core::ptr::null_mut(); SLOTS]);
/// The response being sent (one at a time; a second one waits in [`Setup::queued`]).
static RESPONSE: Global<Outgoing> = Global::new(Outgoing {
    response: None,
    sent: 0,
    slot: 0,
});
/// The segment being sent, which the SDK may read until the sent callback. Its own static:
/// all zero, it stays in `.bss` (an `Option` niche would put it in `.data`, in flash too).
static SEGMENT: Global<[u8; SEND_CHUNK]> = Global::new([0; SEND_CHUNK]);
static DNS_OUT: Global<[u8; DNS_MAX]> = Global::new([0; DNS_MAX]);

/// The response in flight, rendered a segment at a time into [`SEGMENT`].
struct Outgoing {
    response: Option<Response>,
    sent: usize,
    /// Whose it is.
    slot: usize,
}

/// A connection the portal serves or is closing: the SDK's espconn (freed by the SDK after
/// its disconnect callback) and its peer. The SDK reports a disconnect or error on the
/// listener, with the peer copied into it (docs/sdk-model.md M47), so the peer is how the
/// callback is matched.
#[derive(Clone, Copy)]
struct Client {
    connection: *mut wifi_sys::espconn,
    peer: ([u8; 4], u16),
}

impl Client {
    const NONE: Client = Client {
        connection: core::ptr::null_mut(),
        peer: ([0; 4], 0),
    };

    fn new(connection: *mut wifi_sys::espconn, peer: ([u8; 4], u16)) -> Client {
        Client { connection, peer }
    }
}

/// Where a connection test stands.
enum Test {
    None,
    /// Deriving the key from the passphrase, a slice at a time.
    Deriving {
        ssid: Ssid,
        derivation: PskDerivation,
    },
    /// Waiting for the SDK's events.
    Connecting {
        ssid: Ssid,
        key: NetworkKey,
        cache: Option<ReconnectCache>,
        started_ms: u64,
    },
}

struct Setup {
    portal: Portal,
    session: Session,
    test: Test,
    /// Which connections get a slot, and their deadlines.
    admission: Admission<SLOTS>,
    /// The connection in each slot.
    clients: [Client; SLOTS],
    /// Connections taken over, refused, expired or answered, for the close timer.
    to_close: [Client; TO_CLOSE],
    /// An answer waiting for the one being sent.
    queued: Option<(usize, Response)>,
    /// `system_get_time()` at the last tick, and the milliseconds since setup started.
    last_us: u32,
    now_ms: u64,
    done: bool,
}

static SETUP: Global<Option<Setup>> = Global::new(None);

fn with_setup<R>(f: impl FnOnce(&mut Setup) -> R) -> Option<R> {
    SETUP.with(|s| s.as_mut().map(f))
}

/// Milliseconds since setup started, from the SDK's wrapping microsecond clock.
fn now_ms() -> u64 {
    // SAFETY: plain read of the system clock.
    let now_us = unsafe { wifi_sys::system_get_time() };
    with_setup(|s| {
        let elapsed = now_us.wrapping_sub(s.last_us);
        // Whole milliseconds only, so no fraction is lost between two readings.
        let whole = elapsed / 1000;
        s.last_us = s.last_us.wrapping_add(whole * 1000);
        s.now_ms += u64::from(whole);
        s.now_ms
    })
    .unwrap_or(0)
}

fn ip_addr(bytes: [u8; 4]) -> wifi_sys::ip_addr {
    wifi_sys::ip_addr {
        addr: u32::from_le_bytes(bytes),
    }
}

/// Reads the setup passphrase from the identity sector.
pub(crate) fn read_identity() -> Result<identity::SetupPassphrase, identity::IdentityError> {
    read_identity_with(super::flash::READ)
}

/// [`read_identity`] through the given flash read (the firewall passes the SDK's own).
pub(crate) fn read_identity_with(
    read: super::flash::FlashRead,
) -> Result<identity::SetupPassphrase, identity::IdentityError> {
    let offset = crate::build_config::FLASH_SIZE
        .layout()
        .device_identity
        .offset;
    let mut words = [0u32; identity::RECORD_LEN / 4];
    // SAFETY: `words` is a 4-aligned writable buffer of exactly RECORD_LEN bytes, and the
    // identity sector is inside the flash the partition table describes.
    let result = unsafe { read(offset, words.as_mut_ptr(), identity::RECORD_LEN as u32) };
    let mut bytes = [0u8; identity::RECORD_LEN];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(&words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    words.zeroize();
    let decoded = if result == wifi_sys::SPI_FLASH_RESULT_OK {
        identity::decode(&bytes)
    } else {
        error!("setup: identity sector unreadable ({})", result);
        Err(identity::IdentityError::Empty)
    };
    bytes.zeroize();
    decoded
}

/// The setup access point as `user_init` prepared it: ready, or why there is none.
static PREPARED_AP: Global<Option<Result<(), identity::IdentityError>>> = Global::new(None);

/// The setup access point's name for this chip.
fn ap_name() -> heapless::String<16> {
    let mut mac = [0u8; 6];
    // SAFETY: `mac` is a writable 6-byte buffer.
    if !unsafe { wifi_sys::wifi_get_macaddr(wifi_sys::SOFTAP_IF, mac.as_mut_ptr()) } {
        warn!("setup: soft AP MAC unknown");
    }
    identity::ap_ssid(mac)
}

/// SoftAP mode and the setup access point's config, with `_current` setters only; its name,
/// and whether the SDK took both.
fn configure_access_point(passphrase: &identity::SetupPassphrase) -> (heapless::String<16>, bool) {
    let name = ap_name();
    let mut config = softap_config(name.as_bytes(), passphrase.expose_secret());
    // SAFETY: plain setters; the SDK copies `config`.
    let ok = unsafe {
        wifi_sys::wifi_set_opmode_current(wifi_sys::STATIONAP_MODE)
            && wifi_sys::wifi_softap_set_config_current(&mut config)
    };
    config.password.zeroize();
    (name, ok)
}

/// Called from `user_init` when this boot opens setup: puts the setup access point's config
/// in RAM before any SoftAP can start, so that the SoftAP never runs with the SDK's default
/// open "ESP-" config (docs/sdk-model.md, M18; M34: the SoftAP setter needs a SoftAP mode,
/// which before user_init returns changes only RAM, M35). Costs one PBKDF2 inside the SDK.
/// Without an identity there is nothing to prepare: [`start`] reports it.
pub fn prepare_access_point() {
    let prepared = match read_identity() {
        Ok(passphrase) => {
            if !configure_access_point(&passphrase).1 {
                error!("setup: the SDK refused the soft AP configuration");
                return;
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    PREPARED_AP.with(|p| *p = Some(prepared));
}

/// Enters setup mode (called by the lifecycle when the boot decision says so).
pub fn start() {
    let prepared = if cfg!(feature = "canary-no-early-config") {
        // The canary build prepares nothing in user_init: the naive order, the SoftAP mode
        // first and its config after, as the SDK's examples do it.
        read_identity().map(|passphrase| configure_access_point(&passphrase).0)
    } else {
        match PREPARED_AP.with(Option::take) {
            Some(prepared) => prepared.map(|()| ap_name()),
            None => {
                error!("setup: the access point was not prepared in user_init");
                deep_sleep(RETRY_SLEEP_MICROS);
                return;
            }
        }
    };
    let name = match prepared {
        Ok(name) => name,
        Err(e) => {
            error!(
                "setup: no device identity ({}): the setup AP stays off; provision this device with `cargo xtask provision-key`",
                e
            );
            deep_sleep(RETRY_SLEEP_MICROS);
            return;
        }
    };
    if !open_access_point() {
        error!("setup: the SDK refused the soft AP configuration");
        deep_sleep(RETRY_SLEEP_MICROS);
        return;
    }

    allocate_requests();
    // SAFETY: plain read of the system clock.
    let started_us = unsafe { wifi_sys::system_get_time() };
    SETUP.with(|s| {
        *s = Some(Setup {
            portal: Portal::new(PortalConfig::new(AP_IP, HTTP_PORT as u16, name.as_str())),
            session: Session::new(0),
            test: Test::None,
            admission: Admission::new(),
            clients: [Client::NONE; SLOTS],
            to_close: [Client::NONE; TO_CLOSE],
            queued: None,
            last_us: started_us,
            now_ms: 0,
            done: false,
        })
    });
    info!(
        "setup: soft AP {} up, portal at http://192.168.4.1/",
        name.as_str()
    );
    // SAFETY: registering a callback with the SDK's signature.
    unsafe { wifi_sys::wifi_set_event_handler_cb(Some(on_wifi_event)) };
    listen();
    scan();
    arm(&TICK_TIMER, on_tick, TICK_MS, true);
}

/// A request buffer per slot from the SDK's heap. A slot without one closes its connections
/// (said on the console); setup still runs with the other.
fn allocate_requests() {
    REQUESTS.with(|requests| {
        for (slot, buffer) in requests.iter_mut().enumerate() {
            if buffer.is_null() {
                // SAFETY: the SDK's allocator; zeroed memory is an empty RequestBuffer.
                *buffer = unsafe {
                    wifi_sys::pvPortZalloc(
                        core::mem::size_of::<RequestBuffer>(),
                        c"setup".as_ptr(),
                        line!(),
                    )
                }
                .cast();
                if buffer.is_null() {
                    error!("setup: no heap for slot {}'s request buffer", slot);
                }
            }
        }
    });
}

/// The setup access point: WPA2-PSK with the device's passphrase, one client.
fn softap_config(name: &[u8], passphrase: &[u8]) -> wifi_sys::softap_config {
    let mut config = wifi_sys::softap_config {
        ssid: [0; 32],
        password: [0; 64],
        ssid_len: 0,
        channel: AP_CHANNEL,
        authmode: wifi_sys::AUTH_WPA2_PSK,
        ssid_hidden: 0,
        max_connection: 1,
        beacon_interval: 100,
    };
    let name_len = name.len().min(config.ssid.len());
    config.ssid[..name_len].copy_from_slice(&name[..name_len]);
    config.ssid_len = name_len as u8;
    // The SDK wants the passphrase NUL-terminated: at most 63 bytes.
    let key_len = passphrase.len().min(config.password.len() - 1);
    config.password[..key_len].copy_from_slice(&passphrase[..key_len]);
    config
}

/// STA+AP mode (the SoftAP starts with the config already in RAM) and its address, with
/// `_current` setters only.
fn open_access_point() -> bool {
    let mut ip = wifi_sys::ip_info {
        ip: ip_addr(AP_IP),
        netmask: ip_addr(AP_NETMASK),
        gw: ip_addr(AP_IP),
    };
    // SAFETY: plain setters; the SDK copies `ip` before returning. The DHCP server must be
    // stopped while the soft AP's address changes.
    unsafe {
        wifi_sys::wifi_set_opmode_current(wifi_sys::STATIONAP_MODE)
            && {
                wifi_sys::wifi_softap_dhcps_stop();
                wifi_sys::wifi_set_ip_info(wifi_sys::SOFTAP_IF, &mut ip)
            }
            && wifi_sys::wifi_softap_dhcps_start()
    }
}

/// Runs `f` with the key of the network under test, if a test is connecting now (the flash
/// firewall wipes it from any write).
pub(crate) fn with_key_under_test(f: impl FnOnce(&crate::secret::Psk)) {
    SETUP.with(|s| {
        if let Some(Setup {
            test:
                Test::Connecting {
                    key: NetworkKey::Psk(psk),
                    ..
                },
            ..
        }) = s
        {
            f(psk);
        }
    });
}

fn listen() {
    let tcp = HTTP_TCP.with(|t| t as *mut wifi_sys::esp_tcp);
    let listener = HTTP_LISTENER.with(|l| {
        l.proto.tcp = tcp;
        l as *mut wifi_sys::espconn
    });
    let udp = DNS_UDP.with(|u| u as *mut wifi_sys::esp_udp);
    let endpoint = DNS_ENDPOINT.with(|e| {
        e.proto.udp = udp;
        e as *mut wifi_sys::espconn
    });
    // SAFETY: both espconns and their protocol blocks are static, as the SDK requires; the
    // callbacks have the SDK's signatures.
    unsafe {
        wifi_sys::espconn_regist_connectcb(listener, Some(on_http_connect));
        if wifi_sys::espconn_accept(listener) != wifi_sys::ESPCONN_OK {
            error!("setup: cannot listen on tcp:80");
        }
        wifi_sys::espconn_tcp_set_max_con_allow(listener, SDK_CONNECTIONS);
        wifi_sys::espconn_regist_time(listener, ESPCONN_IDLE_SECONDS, 0);
        wifi_sys::espconn_regist_recvcb(endpoint, Some(on_dns));
        if wifi_sys::espconn_create(endpoint) != wifi_sys::ESPCONN_OK {
            error!("setup: cannot listen on udp:53");
        }
    }
}

fn scan() {
    // SAFETY: a null config scans every channel; the callback has the SDK's signature.
    if !unsafe { wifi_sys::wifi_station_scan(core::ptr::null_mut(), Some(on_scan_done)) } {
        warn!("setup: scan refused");
    }
}

unsafe extern "C" fn on_scan_done(list: *mut c_void, status: u32) {
    if power::halted() {
        return;
    }
    if status != wifi_sys::SCAN_STATUS_OK {
        warn!("setup: scan failed ({})", status);
        return;
    }
    // A page being sent lists the networks it started with: hold new results back and scan
    // again soon instead.
    let answering = RESPONSE.with(|out| out.response.is_some())
        || with_setup(|s| s.queued.is_some()).unwrap_or(false);
    if answering {
        with_setup(|s| s.session.rescan_soon());
        return;
    }
    let mut count = 0u32;
    with_setup(|s| {
        s.portal.scan_mut().clear();
        let mut entry = list.cast::<wifi_sys::bss_info>();
        // The SDK's list is short; the bound guards against a corrupted `next` loop.
        while !entry.is_null() && count < 64 {
            // SAFETY: the SDK passes a valid linked list of bss_info for the duration of
            // the callback.
            let info = unsafe { &*entry };
            let len = usize::from(info.ssid_len).min(info.ssid.len());
            if let Ok(ssid) = Ssid::new(&info.ssid[..len]) {
                s.portal.scan_mut().add(Network {
                    ssid,
                    rssi: info.rssi,
                    security: if info.authmode == wifi_sys::AUTH_OPEN {
                        Security::Open
                    } else {
                        Security::Secured
                    },
                    channel: info.channel,
                });
            }
            count += 1;
            entry = info.next;
        }
    });
    info!("setup: scan found {} access points", count);
}

unsafe extern "C" fn on_http_connect(arg: *mut c_void) {
    if power::halted() {
        return;
    }
    let connection = arg.cast::<wifi_sys::espconn>();
    if connection.is_null() {
        return;
    }
    let now = now_ms();
    // SAFETY: the SDK's espconn of the new connection, with its TCP block.
    let peer = unsafe { peer_of(connection) };
    let admit = with_setup(|s| {
        let admit = s.admission.open(now);
        if let Admit::Slot(i) | Admit::TakeOver(i) = admit {
            let old = core::mem::replace(&mut s.clients[i], Client::new(connection, peer));
            if matches!(admit, Admit::TakeOver(_)) {
                close_soon(s, old);
            }
            clear_request(i);
        }
        admit
    });
    match admit {
        None | Some(Admit::Refuse) => {
            // Every slot is being answered or within its grace: close the newcomer.
            with_setup(|s| close_soon(s, Client::new(connection, peer)));
            return;
        }
        Some(Admit::TakeOver(_)) => info!("setup: a new connection takes over an unused one"),
        Some(Admit::Slot(_)) => {}
    }
    // SAFETY: registering callbacks with the SDK's signatures on the SDK's connection.
    unsafe {
        wifi_sys::espconn_regist_recvcb(connection, Some(on_http_receive));
        wifi_sys::espconn_regist_sentcb(connection, Some(on_http_sent));
        wifi_sys::espconn_regist_disconcb(connection, Some(on_http_disconnect));
        wifi_sys::espconn_regist_reconcb(connection, Some(on_http_error));
    }
}

/// Queues `client`'s connection to be closed by the close timer (espconn must not be
/// disconnected from inside its own callbacks). A full queue closes the oldest entry's
/// connection as soon as the timer runs anyway; the SDK's idle timeout is the backstop.
fn close_soon(s: &mut Setup, client: Client) {
    if client.connection.is_null() {
        return;
    }
    if let Some(entry) = s.to_close.iter_mut().find(|c| c.connection.is_null()) {
        *entry = client;
    } else {
        warn!("setup: too many connections to close");
    }
    arm(&CLOSE_TIMER, on_close, 0, false);
}

unsafe extern "C" fn on_close(_arg: *mut c_void) {
    if power::halted() {
        return;
    }
    let pending = with_setup(|s| core::mem::replace(&mut s.to_close, [Client::NONE; TO_CLOSE]))
        .unwrap_or([Client::NONE; TO_CLOSE]);
    for client in pending {
        if !client.connection.is_null() {
            // SAFETY: the SDK's connection: entries are removed when its disconnect callback
            // reports the peer (`forget`), so this one is still open.
            unsafe { wifi_sys::espconn_disconnect(client.connection) };
        }
    }
}

/// The slot whose connection this is.
fn slot_of(arg: *mut c_void) -> Option<usize> {
    let connection = arg.cast::<wifi_sys::espconn>();
    if connection.is_null() {
        return None;
    }
    with_setup(|s| s.clients.iter().position(|c| c.connection == connection)).flatten()
}

/// The request buffer of `slot`, on the heap (allocated when setup starts).
fn with_request<R>(slot: usize, f: impl FnOnce(&mut RequestBuffer) -> R) -> Option<R> {
    let buffer = REQUESTS.with(|r| r.get(slot).copied())?;
    if buffer.is_null() {
        return None;
    }
    // SAFETY: a block from pvPortZalloc the size of a RequestBuffer (all-zero is an empty
    // one), never freed while setup runs, and only ever borrowed here, for `f`.
    Some(f(unsafe { &mut *buffer }))
}

fn clear_request(slot: usize) {
    with_request(slot, RequestBuffer::clear);
}

unsafe extern "C" fn on_http_receive(arg: *mut c_void, data: *mut c_char, len: u16) {
    if power::halted() {
        return;
    }
    let Some(slot) = slot_of(arg) else {
        return;
    };
    if data.is_null() {
        return;
    }
    // SAFETY: the SDK passes `len` readable bytes for the duration of the callback.
    let bytes = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), usize::from(len)) };
    let now = now_ms();
    let Some(reply) = with_setup(|s| {
        if s.admission.phase(slot) == Phase::Answering {
            // Bytes after a complete request (pipelining): the answer ends the connection.
            return None;
        }
        let reply = with_request(slot, |request| {
            let reply = s.portal.receive_streamed(request, bytes);
            (reply, request.head_complete())
        });
        match reply {
            Some((Streamed::Incomplete, head)) => {
                s.admission.received(slot, now, head);
                None
            }
            Some((reply, _)) => {
                s.admission.answering(slot, now);
                Some(reply)
            }
            None => {
                error!("setup: no request buffer");
                finish_client(s, slot);
                None
            }
        }
    })
    .flatten() else {
        return;
    };
    match reply {
        Streamed::Incomplete => {}
        Streamed::Respond(response) => begin_response(slot, response),
        Streamed::Connect(response, request) => {
            begin_response(slot, response);
            begin_test(request);
        }
    }
}

/// Starts sending `response` on `slot`, or queues it while another answer is going out.
fn begin_response(slot: usize, response: Response) {
    clear_request(slot);
    let busy = RESPONSE.with(|out| out.response.is_some());
    if busy {
        with_setup(|s| s.queued = Some((slot, response)));
        return;
    }
    RESPONSE.with(|out| {
        out.response = Some(response);
        out.sent = 0;
        out.slot = slot;
    });
    send_next();
}

/// Sends the next chunk of the response; closes its connection once all of it is out.
fn send_next() {
    let piece = with_setup(|s| {
        RESPONSE.with(|out| {
            let response = out.response.as_ref()?;
            let connection = s.clients.get(out.slot)?.connection;
            let (n, pointer) = SEGMENT.with(|segment| {
                (
                    s.portal.read_response(response, out.sent, segment),
                    segment.as_mut_ptr(),
                )
            });
            if n == 0 {
                // The firmware's own record of what it served (the bridged tests read it).
                info!(
                    "portal: answered {} ({} B)",
                    response.status_code(),
                    out.sent
                );
                return Some(Err(out.slot));
            }
            out.sent += n;
            Some(Ok((connection, pointer, n)))
        })
    })
    .flatten();
    let (connection, pointer, chunk) = match piece {
        None => return,
        Some(Err(slot)) => return answered(slot),
        Some(Ok(piece)) => piece,
    };
    // SAFETY: `pointer` addresses `chunk` bytes of the static segment buffer, which stays
    // untouched until the sent callback; the connection is the SDK's, still open (a closed
    // slot's response is dropped in `forget`).
    let result = unsafe { wifi_sys::espconn_send(connection, pointer, chunk as u16) };
    if result != wifi_sys::ESPCONN_OK {
        warn!("setup: send failed ({})", result);
        let slot = RESPONSE.with(|out| out.slot);
        answered(slot);
    }
}

/// `slot`'s answer is out (or cannot go out): close it, start a queued answer.
fn answered(slot: usize) {
    RESPONSE.with(|out| out.response = None);
    with_setup(|s| finish_client(s, slot));
    start_queued();
}

/// Starts the answer that waited for the send buffer, if any.
fn start_queued() {
    if let Some((slot, response)) = with_setup(|s| s.queued.take()).flatten() {
        begin_response(slot, response);
    }
}

/// Frees `slot`: its admission, its queued answer, its request bytes. Returns its client.
fn free_slot(s: &mut Setup, slot: usize) -> Client {
    s.admission.closed(slot);
    if s.queued.as_ref().is_some_and(|(q, _)| *q == slot) {
        s.queued = None;
    }
    clear_request(slot);
    s.clients
        .get_mut(slot)
        .map_or(Client::NONE, |c| core::mem::replace(c, Client::NONE))
}

/// Frees `slot` and queues its connection's close.
fn finish_client(s: &mut Setup, slot: usize) {
    let client = free_slot(s, slot);
    close_soon(s, client);
}

unsafe extern "C" fn on_http_sent(arg: *mut c_void) {
    if power::halted() {
        return;
    }
    let current = RESPONSE.with(|out| out.response.is_some().then_some(out.slot));
    if current.is_some() && slot_of(arg) == current {
        send_next();
    }
}

/// Whether a disconnect or error callback is about `client`: the SDK passes the listener,
/// whose TCP block then holds the closed connection's peer (docs/sdk-model.md M47).
fn is_closing(arg: *mut c_void, peer: Option<([u8; 4], u16)>, client: &Client) -> bool {
    if client.connection.is_null() {
        return false;
    }
    if cfg!(feature = "canary-pointer-match") {
        // The canary matches as if the SDK passed the connection's own espconn.
        return arg.cast::<wifi_sys::espconn>() == client.connection;
    }
    peer == Some(client.peer)
}

/// The remote address and port in a TCP espconn's block.
///
/// # Safety
/// `connection` must point to a TCP espconn whose `proto.tcp` is valid.
unsafe fn peer_of(connection: *mut wifi_sys::espconn) -> ([u8; 4], u16) {
    // SAFETY: the caller's promise.
    let tcp = unsafe { (*connection).proto.tcp };
    // SAFETY: as above; plain reads of two fields.
    let (ip, port) = unsafe { ((*tcp).remote_ip, (*tcp).remote_port) };
    // A TCP port is 16 bits; the SDK keeps it in an int.
    (ip, port as u16)
}

/// A connection closed: free its slot (or forget its queued close).
fn forget(arg: *mut c_void) {
    let listener = HTTP_LISTENER.with(|l| l as *mut wifi_sys::espconn);
    // SAFETY: our static listener and its static TCP block.
    let peer = (arg.cast::<wifi_sys::espconn>() == listener).then(|| unsafe { peer_of(listener) });
    let slot = with_setup(|s| {
        for entry in s.to_close.iter_mut() {
            if is_closing(arg, peer, entry) {
                *entry = Client::NONE;
            }
        }
        let slot = s.clients.iter().position(|c| is_closing(arg, peer, c))?;
        // Closed already: nothing to close, just the slot to free.
        free_slot(s, slot);
        Some(slot)
    })
    .flatten();
    let Some(slot) = slot else {
        return;
    };
    let was_answering = RESPONSE.with(|out| out.response.is_some() && out.slot == slot);
    if was_answering {
        RESPONSE.with(|out| out.response = None);
        start_queued();
    }
}

unsafe extern "C" fn on_http_disconnect(arg: *mut c_void) {
    if power::halted() {
        return;
    }
    forget(arg);
}

unsafe extern "C" fn on_http_error(arg: *mut c_void, err: i8) {
    if power::halted() {
        return;
    }
    warn!("setup: connection error {}", err);
    forget(arg);
}

unsafe extern "C" fn on_dns(arg: *mut c_void, data: *mut c_char, len: u16) {
    if power::halted() {
        return;
    }
    let endpoint = arg.cast::<wifi_sys::espconn>();
    if endpoint.is_null() || data.is_null() {
        return;
    }
    // SAFETY: the SDK passes `len` readable bytes for the duration of the callback.
    let query = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), usize::from(len)) };
    let Some((pointer, size)) = DNS_OUT.with(|out| {
        dns::answer(query, AP_IP, out)
            .ok()
            .map(|size| (out.as_mut_ptr(), size))
    }) else {
        return; // Malformed or not a query: dropped.
    };
    let mut peer: *mut wifi_sys::remot_info = core::ptr::null_mut();
    // SAFETY: `endpoint` is our UDP espconn inside its receive callback; the SDK fills `peer`
    // with a pointer to its own record of the sender.
    let found = unsafe { wifi_sys::espconn_get_connection_info(endpoint, &mut peer, 0) };
    if found != wifi_sys::ESPCONN_OK || peer.is_null() {
        return;
    }
    // SAFETY: `peer` points to the SDK's remot_info, valid during the callback; the UDP block
    // is our static esp_udp.
    let sent = unsafe {
        let udp = (*endpoint).proto.udp;
        (*udp).remote_ip = (*peer).remote_ip;
        (*udp).remote_port = (*peer).remote_port;
        wifi_sys::espconn_sendto(endpoint, pointer, size as u16)
    };
    // The firmware's own record of what it answered (the bridged tests read it).
    info!("dns: answered {} B with {} B ({})", len, size, sent);
}

/// Starts a connection test for a request the portal accepted.
fn begin_test(request: ConnectRequest) {
    let ConnectRequest { ssid, key, broker } = request;
    info!("setup: testing the network");
    // The broker goes to RTC memory now (not into setup's DRAM, which is scarce): before the
    // WiFi record, which only a successful test writes, and wiped again if the test fails.
    let kept = match &broker {
        Some(broker) => crate::settings::store(&mut SdkRtc, broker),
        None => crate::settings::wipe(&mut SdkRtc).map_err(crate::settings::SettingsError::Rtc),
    };
    drop(broker);
    if let Err(e) = kept {
        error!("setup: broker settings not stored: {}", e);
    }
    match key {
        ConnectKey::Open => {
            let started_ms = now_ms();
            with_setup(|s| {
                s.session.test_started();
                s.test = Test::Connecting {
                    ssid,
                    key: NetworkKey::Open,
                    cache: None,
                    started_ms,
                };
            });
            connect_current();
        }
        ConnectKey::Passphrase(passphrase) => {
            let derivation = PskDerivation::new(&passphrase, &ssid);
            drop(passphrase);
            with_setup(|s| {
                s.session.test_started();
                s.test = Test::Deriving { ssid, derivation };
            });
            arm(&SLICE_TIMER, on_slice, SLICE_PAUSE_MS, false);
        }
    }
}

/// One slice of the key derivation; the last one starts the connection.
unsafe extern "C" fn on_slice(_arg: *mut c_void) {
    if power::halted() {
        return;
    }
    let started_ms = now_ms();
    let Some(finished) = with_setup(|s| {
        let Test::Deriving { derivation, .. } = &mut s.test else {
            return false;
        };
        let Some(psk) = derivation.step(ROUNDS_PER_SLICE) else {
            return false;
        };
        // The derivation (and its keyed state) is dropped, and wiped, here.
        if let Test::Deriving { ssid, .. } = core::mem::replace(&mut s.test, Test::None) {
            s.test = Test::Connecting {
                ssid,
                key: NetworkKey::Psk(psk),
                cache: None,
                started_ms,
            };
        }
        true
    }) else {
        return;
    };
    if finished {
        connect_current();
    } else if with_setup(|s| matches!(s.test, Test::Deriving { .. })).unwrap_or(false) {
        arm(&SLICE_TIMER, on_slice, SLICE_PAUSE_MS, false);
    }
}

/// Points the station side at the network under test (`_current` setter) and connects.
fn connect_current() {
    let Some(mut config) = with_setup(|s| {
        let Test::Connecting { ssid, key, .. } = &s.test else {
            return None;
        };
        let mut config = super::zeroed_station_config();
        config.ssid[..ssid.len()].copy_from_slice(ssid.as_bytes());
        match key {
            NetworkKey::Open => config.threshold.authmode = wifi_sys::AUTH_OPEN,
            NetworkKey::Psk(psk) => {
                super::lifecycle::hex_key(psk.expose_secret(), &mut config.password);
                config.threshold.authmode = wifi_sys::AUTH_WPA_PSK;
            }
        }
        Some(config)
    })
    .flatten() else {
        return;
    };
    // SAFETY: plain setters; the SDK copies `config`.
    let ok = unsafe {
        wifi_sys::wifi_station_set_config_current(&mut config) && wifi_sys::wifi_station_connect()
    };
    config.password.zeroize();
    if !ok {
        error!("setup: the SDK refused the station configuration");
        finish_test(Err(Failure::Other));
    }
}

unsafe extern "C" fn on_wifi_event(event: *mut wifi_sys::System_Event_t) {
    if power::halted() {
        return;
    }
    if event.is_null() {
        return;
    }
    // SAFETY: the SDK passes a valid event for the duration of the callback; each union member
    // read below matches the event id, as the SDK documents.
    let event = unsafe { &*event };
    match event.event {
        wifi_sys::EVENT_STAMODE_CONNECTED => {
            // SAFETY: `connected` is the member for this event id.
            let connected = unsafe { event.event_info.connected };
            with_setup(|s| {
                if let Test::Connecting { cache, .. } = &mut s.test {
                    *cache = Some(ReconnectCache {
                        bssid: connected.bssid,
                        channel: connected.channel,
                    });
                }
            });
        }
        wifi_sys::EVENT_STAMODE_GOT_IP => {
            // SAFETY: `got_ip` is the member for this event id.
            let got_ip = unsafe { event.event_info.got_ip };
            finish_test(Ok(got_ip.ip.addr.to_le_bytes()));
        }
        wifi_sys::EVENT_STAMODE_DISCONNECTED => {
            // SAFETY: `disconnected` is the member for this event id.
            let reason = unsafe { event.event_info.disconnected.reason };
            finish_test(Err(Failure::from_disconnect_reason(reason)));
        }
        _ => {}
    }
}

/// Ends the connection test: report it, and on success keep the credentials in RTC memory.
fn finish_test(result: Result<[u8; 4], Failure>) {
    let Some(Test::Connecting {
        ssid, key, cache, ..
    }) = with_setup(|s| core::mem::replace(&mut s.test, Test::None))
    else {
        return;
    };
    let status = match result {
        Ok(ip) => {
            let credentials = Credentials {
                ssid,
                key,
                cache,
                ip: IpConfig::None,
            };
            // The broker's settings are in RTC memory since the test started.
            match rtc_record::store(&mut SdkRtc, &credentials) {
                Ok(()) => {
                    info!("setup: connected; credentials kept in RTC memory");
                    SetupStatus::Connected { ssid, ip }
                }
                Err(e) => {
                    error!("setup: credentials not stored: {}", e);
                    SetupStatus::Failed {
                        ssid,
                        failure: Failure::Other,
                    }
                }
            }
        }
        Err(failure) => {
            warn!("setup: connection test failed: {:?}", failure);
            if let Err(e) = crate::settings::wipe(&mut SdkRtc) {
                error!("setup: broker settings not wiped: {}", e);
            }
            // SAFETY: plain call: stop the SDK's own retries.
            unsafe { wifi_sys::wifi_station_disconnect() };
            drop(key);
            SetupStatus::Failed { ssid, failure }
        }
    };
    let success = matches!(status, SetupStatus::Connected { .. });
    with_setup(|s| {
        s.session.test_finished(success);
        s.portal.set_status(status);
        s.done |= success;
    });
    if success {
        arm(&FINISH_TIMER, on_finished, SUCCESS_LINGER_MS, false);
    }
}

unsafe extern "C" fn on_finished(_arg: *mut c_void) {
    if power::halted() {
        return;
    }
    info!("setup: done; restarting in station mode");
    disarm(&TICK_TIMER);
    deep_sleep(SUCCESS_SLEEP_MICROS);
}

/// Closes every connection past its deadline (`Admission::poll`).
fn expire_connections(now: u64) {
    while let Some(slot) = with_setup(|s| s.admission.poll(now).map(|(slot, _)| slot)).flatten() {
        info!("setup: closing a connection past its deadline");
        let answering = RESPONSE.with(|out| out.response.is_some() && out.slot == slot);
        if answering {
            answered(slot);
        } else {
            with_setup(|s| finish_client(s, slot));
        }
    }
}

unsafe extern "C" fn on_tick(_arg: *mut c_void) {
    if power::halted() {
        return;
    }
    let now = now_ms();
    let Some((action, test_started, rescan)) = with_setup(|s| {
        let test_started = match &s.test {
            Test::Connecting { started_ms, .. } => Some(*started_ms),
            _ => None,
        };
        let rescan = s.session.scan_due(now, !s.portal.scan().is_empty());
        (s.session.poll(now), test_started, rescan)
    }) else {
        return;
    };
    if rescan {
        scan();
    }
    expire_connections(now);
    if test_started.is_some_and(|started| now.saturating_sub(started) >= TEST_TIMEOUT_MS) {
        finish_test(Err(Failure::Timeout));
    }
    match action {
        SessionAction::Nothing => {}
        SessionAction::EndSetup => {
            if with_setup(|s| s.done).unwrap_or(true) {
                return;
            }
            info!("setup: no successful setup in 10 minutes; sleeping");
            disarm(&TICK_TIMER);
            deep_sleep(RETRY_SLEEP_MICROS);
        }
    }
}
