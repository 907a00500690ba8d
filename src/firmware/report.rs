//! The report over espconn: queue the reading, look up the broker (or use the cached
//! address), connect, run the MQTT session of `crate::mqtt`, and sleep only after every
//! PUBACK and the DISCONNECT, or after the budget ran out.
//!
//! Every decision is the portable `crate::report`'s; this module moves bytes between it and
//! the SDK. One publication at a time is in RAM: the send buffer comes from the SDK's heap
//! (setup never runs in the same boot), and the next message is encoded from the sent
//! callback (docs/sdk-model.md M55: one send in flight). Nothing here logs a payload, the
//! user name or the password; production logs nothing at all.

use core::ffi::{c_char, c_void};

use super::global::{Global, arm, disarm, new_timer};
use super::rtc::SdkRtc;
use crate::discovery::{self, Device, ENTITIES};
use crate::mqtt::{self, Event, Message, Session};
use crate::readings::{CAPACITY, Entry, Reading, Ring};
use crate::report::{Plan, Publication, ReportState};
use crate::settings::{self, BrokerSettings, PERIOD_DEFAULT_S};

/// The whole report, lookup included, must finish within this (the SDK's DNS gives up after
/// about 7 s, M60; a connection attempt after about 6 s, M59).
const BUDGET_MS: u32 = 20_000;
/// Keep-alive announced in CONNECT (the session lasts seconds).
const KEEP_ALIVE_S: u16 = 60;
/// The send buffer: the largest publication (a discovery config) with its header.
const SEND_BUFFER: usize = discovery::PAYLOAD_MAX + discovery::TOPIC_MAX + 16;

/// A report in progress.
struct Run {
    settings: BrokerSettings,
    fingerprint: u32,
    state: ReportState,
    plan: Plan,
    session: Session,
    entries: heapless::Vec<Entry, CAPACITY>,
    now_s: u32,
    device: Device,
    ip: [u8; 4],
    connected: bool,
    sending: bool,
    disconnecting: bool,
    goodbye: bool,
}

static RUN: Global<Option<Run>> = Global::new(None);
static BUDGET_TIMER: Global<wifi_sys::ETSTimer> = Global::new(new_timer());
static TCP: Global<wifi_sys::esp_tcp> = Global::new(super::global::tcp_block(0));
static CONN: Global<wifi_sys::espconn> = Global::new(wifi_sys::espconn {
    type_: wifi_sys::ESPCONN_TCP,
    state: 0,
    proto: wifi_sys::espconn_proto {
        tcp: core::ptr::null_mut(),
    },
    recv_callback: None,
    sent_callback: None,
    link_cnt: 0,
    reverse: core::ptr::null_mut(),
});
/// The name being looked up, NUL-terminated, and where the SDK writes its address.
static NAME: Global<[u8; settings::HOST_MAX_LEN + 1]> =
    Global::new([0; settings::HOST_MAX_LEN + 1]);
static FOUND: Global<wifi_sys::ip_addr> = Global::new(wifi_sys::ip_addr { addr: 0 });
/// The send buffer from the heap (null until the first send).
static BUFFER: Global<*mut u8> = Global::new(core::ptr::null_mut());

/// The sensors this board has, as entity bits.
fn board_entities() -> u8 {
    let board = &crate::sensors::BOARD;
    discovery::entity_mask(board.bme280, board.soil.is_some(), board.battery.is_some())
}

fn seconds_awake() -> u32 {
    // SAFETY: plain read of the system clock (microseconds since boot).
    (unsafe { wifi_sys::system_get_time() }) / 1_000_000
}

fn mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    // SAFETY: a 6-byte buffer, as the call requires; interface 0 is the station.
    unsafe { wifi_sys::wifi_get_macaddr(0, mac.as_mut_ptr()) };
    mac
}

/// Advances the device clock past this boot and deep-sleeps `sleep_s`.
fn sleep(mut state: ReportState, fingerprint: u32, sleep_s: u32) {
    state.advance(seconds_awake(), sleep_s);
    if let Err(e) = state.store(&mut SdkRtc, fingerprint) {
        warn!("report: state not saved ({})", e);
    }
    super::deep_sleep(u64::from(sleep_s) * 1_000_000);
}

/// A sleep outside the report (the WiFi back-off): the device clock still advances.
pub(super) fn sleep_keeping_time(micros: u64) {
    let settings = settings::load(&SdkRtc).ok();
    let fingerprint = settings.as_ref().map_or(0, BrokerSettings::fingerprint);
    let newest = Ring::read(&SdkRtc)
        .ok()
        .and_then(|q| q.last().map(|e| e.taken_s));
    match ReportState::load(&SdkRtc, fingerprint, newest) {
        Ok((state, _)) => sleep(state, fingerprint, (micros / 1_000_000) as u32),
        Err(_) => super::deep_sleep(micros),
    }
}

/// Queues `reading` with its time, then reports everything queued (or sleeps when no broker
/// is set up).
pub(super) fn deliver(reading: Reading) {
    let settings = settings::load(&SdkRtc);
    let fingerprint = settings.as_ref().map_or(0, BrokerSettings::fingerprint);
    let newest = Ring::read(&SdkRtc)
        .ok()
        .and_then(|q| q.last().map(|e| e.taken_s));
    let Ok((state, _)) = ReportState::load(&SdkRtc, fingerprint, newest) else {
        error!("report: RTC memory unreadable");
        super::deep_sleep(u64::from(PERIOD_DEFAULT_S) * 1_000_000);
        return;
    };
    let now_s = state.clock_s.wrapping_add(seconds_awake());
    let entry = Entry {
        reading,
        taken_s: now_s,
    };
    match Ring::push(&mut SdkRtc, &entry) {
        Ok((queued, dropped)) => info!(
            "report: {} readings queued{}",
            queued,
            if dropped { ", the oldest dropped" } else { "" }
        ),
        Err(e) => warn!("sensor: the reading could not be queued ({})", e),
    }
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => {
            info!("report: no collector configured ({})", e);
            sleep(state, fingerprint, u32::from(PERIOD_DEFAULT_S));
            return;
        }
    };
    let entries = Ring::read(&SdkRtc).unwrap_or_default();
    let entities = board_entities();
    let plan = Plan {
        discovery: if state.discovery_due(entities, now_s) {
            entities
        } else {
            0
        },
        queued: entries.len().max(1),
    };
    let Some(session) = Session::new(plan.total()) else {
        error!("report: too many messages");
        return sleep(state, fingerprint, u32::from(settings.period_s));
    };
    let cached = settings.host.ipv4().or(state.broker_ip);
    let host_len = settings.host.as_bytes().len();
    NAME.with(|n| {
        n.fill(0);
        n[..host_len].copy_from_slice(settings.host.as_bytes());
    });
    RUN.with(|r| {
        *r = Some(Run {
            settings,
            fingerprint,
            state,
            plan,
            session,
            entries,
            now_s,
            device: Device::from_mac(mac()),
            ip: [0; 4],
            connected: false,
            sending: false,
            disconnecting: false,
            goodbye: false,
        })
    });
    arm(&BUDGET_TIMER, on_budget, BUDGET_MS, false);
    match cached {
        Some(ip) => connect(ip),
        None => resolve(),
    }
}

fn resolve() {
    let conn = CONN.with(|c| c as *mut wifi_sys::espconn);
    let name = NAME.with(|n| n.as_ptr());
    let found = FOUND.with(|f| f as *mut wifi_sys::ip_addr);
    // SAFETY: static espconn, name and address, which outlive the lookup; the callback has
    // the SDK's signature.
    let result = unsafe {
        wifi_sys::espconn_gethostbyname(conn, name.cast::<c_char>(), found, Some(on_found))
    };
    match result {
        wifi_sys::ESPCONN_OK => {
            // SAFETY: the SDK wrote the address (a dotted name needs no lookup).
            let ip = FOUND.with(|f| f.addr).to_le_bytes();
            connect(ip);
        }
        wifi_sys::ESPCONN_INPROGRESS => {}
        code => {
            warn!("report: lookup refused ({})", code);
            failed(false, "no address");
        }
    }
}

unsafe extern "C" fn on_found(_name: *const c_char, ip: *mut wifi_sys::ip_addr, _arg: *mut c_void) {
    if super::power::halted() {
        return;
    }
    if ip.is_null() {
        warn!("report: the broker's name did not resolve");
        failed(false, "no address");
        return;
    }
    // SAFETY: the SDK passes a valid address for the duration of the callback.
    let ip = unsafe { (*ip).addr }.to_le_bytes();
    connect(ip);
}

fn connect(ip: [u8; 4]) {
    let Some(port) = RUN.with(|r| {
        r.as_mut().map(|run| {
            run.ip = ip;
            run.settings.port
        })
    }) else {
        return;
    };
    let tcp = TCP.with(|t| {
        t.remote_ip = ip;
        t.remote_port = i32::from(port);
        t.local_port = 0;
        t as *mut wifi_sys::esp_tcp
    });
    let conn = CONN.with(|c| {
        c.type_ = wifi_sys::ESPCONN_TCP;
        c.proto.tcp = tcp;
        c as *mut wifi_sys::espconn
    });
    info!(
        "report: connecting to {}.{}.{}.{}:{}",
        ip[0], ip[1], ip[2], ip[3], port
    );
    // SAFETY: a static espconn with its static TCP block; callbacks with the SDK's signatures.
    let result = unsafe {
        wifi_sys::espconn_regist_connectcb(conn, Some(on_connect));
        wifi_sys::espconn_regist_reconcb(conn, Some(on_error));
        wifi_sys::espconn_regist_disconcb(conn, Some(on_disconnect));
        wifi_sys::espconn_connect(conn)
    };
    if result != wifi_sys::ESPCONN_OK {
        warn!("report: connect refused ({})", result);
        failed(true, "no connection");
    }
}

/// The send buffer (allocated once, from the SDK's heap).
fn buffer() -> Option<&'static mut [u8; SEND_BUFFER]> {
    let pointer = BUFFER.with(|b| {
        if b.is_null() {
            // SAFETY: the SDK's allocator.
            *b = unsafe { wifi_sys::pvPortZalloc(SEND_BUFFER, c"report".as_ptr(), line!()) }.cast();
        }
        *b
    });
    // SAFETY: a block of SEND_BUFFER bytes from the heap, never freed, used only from the
    // SDK's single thread of callbacks, one borrow at a time.
    (!pointer.is_null()).then(|| unsafe { &mut *pointer.cast::<[u8; SEND_BUFFER]>() })
}

fn send(len: usize) -> bool {
    let Some(out) = buffer() else { return false };
    let conn = CONN.with(|c| c as *mut wifi_sys::espconn);
    // SAFETY: the heap buffer stays untouched until the sent callback (M55); the connection
    // is open.
    let result = unsafe { wifi_sys::espconn_send(conn, out.as_mut_ptr(), len as u16) };
    if result != wifi_sys::ESPCONN_OK {
        warn!("report: send failed ({})", result);
        return false;
    }
    true
}

unsafe extern "C" fn on_connect(arg: *mut c_void) {
    if super::power::halted() {
        return;
    }
    let conn = arg.cast::<wifi_sys::espconn>();
    // SAFETY: the SDK passes our espconn; registering callbacks with its signatures.
    unsafe {
        wifi_sys::espconn_regist_recvcb(conn, Some(on_receive));
        wifi_sys::espconn_regist_sentcb(conn, Some(on_sent));
    }
    let Some(out) = buffer() else {
        error!("report: no heap for the send buffer");
        return failed(false, "no memory");
    };
    let written = RUN.with(|r| {
        let run = r.as_mut()?;
        run.connected = true;
        run.sending = true;
        Some(mqtt::encode_connect(
            out,
            run.device.name.as_bytes(),
            run.settings.user(),
            run.settings.password(),
            KEEP_ALIVE_S,
        ))
    });
    match written {
        Some(Ok(n)) => {
            if !send(n) {
                failed(false, "send failed");
            }
            // The CONNECT held the password: wiped once lwIP has it (the sent callback).
        }
        Some(Err(_)) => failed(false, "CONNECT too long"),
        None => {}
    }
}

unsafe extern "C" fn on_receive(_arg: *mut c_void, data: *mut c_char, len: u16) {
    if super::power::halted() || data.is_null() {
        return;
    }
    // SAFETY: the SDK passes `len` readable bytes for the duration of the callback.
    let bytes = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), usize::from(len)) };
    let Some(event) = RUN.with(|r| r.as_mut().map(|run| run.session.receive(bytes))) else {
        return;
    };
    match event {
        Event::Waiting => {}
        Event::Accepted => send_next(),
        Event::Done => disconnect(),
        Event::Refused(code) => {
            warn!("report: the broker refused the login (code {})", code);
            failed(false, "login refused");
        }
        Event::Protocol(_) => failed(false, "protocol error"),
    }
}

/// Encodes and sends the next publication, if one is due and nothing is in flight.
fn send_next() {
    let Some(out) = buffer() else { return };
    let written = RUN.with(|r| {
        let run = r.as_mut()?;
        // The canary sends the next publication before lwIP acknowledged the last (M55).
        let busy = run.sending && !cfg!(feature = "canary-report-send-without-wait");
        if busy || run.disconnecting || !run.session.wants_message() {
            return None;
        }
        let index = run.session.published();
        let message = run.plan.get(index)?;
        let period = u32::from(run.settings.period_s);
        let (topic, payload, retain) = match message {
            Publication::Config(i) => (
                discovery::config_topic(&run.device, &ENTITIES[i]),
                discovery::config_payload(&run.device, &ENTITIES[i], period, FIRMWARE),
                true,
            ),
            Publication::History(k) => {
                let entry = run.entries.get(k)?;
                (
                    discovery::history_topic(&run.device),
                    discovery::history_payload(
                        &entry.reading,
                        run.now_s.wrapping_sub(entry.taken_s),
                    ),
                    false,
                )
            }
            Publication::State => (
                discovery::state_topic(&run.device),
                discovery::state_payload(
                    &run.entries.last().map(|e| e.reading).unwrap_or_default(),
                ),
                true,
            ),
        };
        let result = run.session.publish(
            out,
            &Message {
                topic: topic.as_bytes(),
                payload: payload.as_bytes(),
                retain,
            },
        );
        run.sending = result.is_ok();
        Some(result)
    });
    match written {
        Some(Ok(n)) => {
            if !send(n) {
                failed(false, "send failed");
            } else if cfg!(feature = "canary-report-send-without-wait") {
                send_next();
            }
        }
        Some(Err(_)) => failed(false, "message too long"),
        None => {}
    }
}

/// Every PUBACK is in: DISCONNECT, once the send buffer is free (else from `on_sent`).
fn disconnect() {
    let Some(out) = buffer() else { return };
    let ready = RUN.with(|r| {
        r.as_mut().is_some_and(|run| {
            run.disconnecting = true;
            let ready = !run.sending && !run.goodbye;
            if ready {
                run.sending = true;
                run.goodbye = true;
            }
            ready
        })
    });
    if ready {
        let sent = mqtt::encode_disconnect(out).is_ok_and(send);
        if !sent {
            // Every PUBACK is in: the report counts as delivered even if the goodbye fails.
            succeeded();
        }
    }
}

/// What the firmware reports as its version in the device block.
const FIRMWARE: &str = crate::build_config::PROFILE;

unsafe extern "C" fn on_sent(_arg: *mut c_void) {
    if super::power::halted() {
        return;
    }
    if let Some(out) = buffer() {
        // What went out (the CONNECT with the password among it) is not kept.
        zeroize::Zeroize::zeroize(&mut out[..]);
    }
    let (disconnecting, done) = RUN.with(|r| {
        r.as_mut().map_or((false, false), |run| {
            run.sending = false;
            (run.disconnecting, run.goodbye)
        })
    });
    if done {
        let conn = CONN.with(|c| c as *mut wifi_sys::espconn);
        // SAFETY: our open connection; its disconnect callback follows later (M53).
        unsafe { wifi_sys::espconn_disconnect(conn) };
    } else if disconnecting {
        disconnect();
    } else {
        send_next();
    }
}

unsafe extern "C" fn on_disconnect(_arg: *mut c_void) {
    if super::power::halted() {
        return;
    }
    let delivered = RUN.with(|r| {
        r.as_ref()
            .is_some_and(|run| run.disconnecting && run.session.acknowledged() == run.plan.total())
    });
    if delivered {
        succeeded();
    } else {
        failed(false, "the broker closed the connection");
    }
}

unsafe extern "C" fn on_error(_arg: *mut c_void, err: i8) {
    if super::power::halted() {
        return;
    }
    let connected = RUN.with(|r| r.as_ref().is_some_and(|run| run.connected));
    warn!("report: connection error {}", err);
    failed(!connected, "connection error");
}

unsafe extern "C" fn on_budget(_arg: *mut c_void) {
    if super::power::halted() {
        return;
    }
    let connected = RUN.with(|r| r.as_ref().is_some_and(|run| run.connected));
    warn!("report: no answer within {} s", BUDGET_MS / 1000);
    failed(!connected, "timed out");
}

fn succeeded() {
    let Some(mut run) = RUN.with(Option::take) else {
        return;
    };
    disarm(&BUDGET_TIMER);
    if let Err(e) = Ring::drop_oldest(&mut SdkRtc, run.entries.len()) {
        warn!("report: delivered readings not dropped ({:?})", e);
    }
    let announced = (run.plan.discovery != 0).then_some(run.plan.discovery);
    run.state.succeeded(run.ip, announced, run.now_s);
    info!(
        "report: delivered {} readings in {} messages",
        run.entries.len(),
        run.plan.total()
    );
    let period = u32::from(run.settings.period_s);
    sleep(run.state, run.fingerprint, period);
}

fn failed(forget_address: bool, why: &str) {
    let _ = why;
    let Some(mut run) = RUN.with(Option::take) else {
        return;
    };
    disarm(&BUDGET_TIMER);
    if run.connected {
        let conn = CONN.with(|c| c as *mut wifi_sys::espconn);
        // SAFETY: our connection; aborting a closed one is refused harmlessly.
        unsafe { wifi_sys::espconn_abort(conn) };
    }
    run.state.failed(forget_address);
    let sleep_s = run.state.sleep_s(u32::from(run.settings.period_s));
    warn!(
        "report: failed ({}); {} readings kept, next try in {} s",
        why,
        run.entries.len(),
        sleep_s
    );
    sleep(run.state, run.fingerprint, sleep_s);
}
