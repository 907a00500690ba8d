//! espconn over lwIP, as the SDK runs it (`docs/sdk-model.md`, M46-M60), with its peers either
//! scripted or real.
//!
//! The model, from the SDK's open espconn sources and its shipped `liblwip.a`:
//!
//! - an accepted connection gets its own espconn (a *child*, copied from the listener); the
//!   connect, receive and sent callbacks get the child, the disconnect and error callbacks get
//!   the **listener**, into which the child's peer, state and callbacks are copied first; the
//!   child is freed afterwards (here: emptied, so a kept pointer stops working);
//! - at most [`MAX_TCP`] connections are established at once (a further peer waits, as its
//!   SYNs are dropped, and gets in at its next SYN retransmission once there is room:
//!   [`SYN_RETRANSMIT_S`]); `espconn_tcp_set_max_con_allow(n)` resets the (n+1)-th peer of a
//!   listener after its handshake, with no callback;
//! - one receive callback per segment (at most one MSS), a NUL-terminated copy; the window
//!   ([`TCP_WND`]) reopens before the callback, so the device applies no back-pressure unless
//!   `espconn_recv_hold` stops the reopening (deliveries continue; the peer stalls once the
//!   window is used), and `espconn_recv_unhold` reopens it by what arrived meanwhile;
//! - a FIN from the peer closes the connection at once (no half-close): what is already in
//!   lwIP (at most [`TCP_SND_BUF`]) still goes out, the rest of a send is dropped and its sent
//!   callback never comes; a close with held bytes is a reset;
//! - a second `espconn_send` before the first is fully acknowledged is `ESPCONN_MAXNUM`; the
//!   sent callback comes when the peer has acknowledged the whole buffer;
//! - disconnect and error callbacks run later, from espconn's task, never inside a call;
//! - the idle timeout (default 10 s) counts whole seconds without received data or
//!   acknowledgements, and closes the connection;
//! - UDP: one callback per datagram; the sender is known only to
//!   `espconn_get_connection_info` (not written into the espconn); datagrams over 1472 bytes go
//!   out in pieces; the UDP sent callback runs inside `espconn_sendto`;
//! - `espconn_connect` and `espconn_gethostbyname` for the firmware's own connections.
//!
//! Peers come from one of two transports. **Scripted** (`net-in.bin`, written by the harness):
//! records `[kind u32 (1 TCP, 2 UDP, 3 pause)][port u32][length u32][bytes, padded to 4]`; a
//! TCP record is one connection whose request arrives in segments of varying size (a fixed
//! pseudo-random sequence), then the client waits for the firmware to close (or closes after
//! 5 s idle); everything the firmware sends is appended to `net-out.bin`. **Bridged**
//! ([`crate::bridge`]): real sockets on the host's loopback, data as the host's `read()`
//! returned it, FIN and RST as they happen, acknowledgements when the host socket took the
//! bytes, and the receive window enforced by credit.

use core::ffi::{c_char, c_void};

use wifi_sys::{ETSTimer, esp_tcp, espconn, espconn_proto, ip_addr, remot_info};

use crate::bridge;
use crate::emulate;
use crate::scheduler::{Global, SCHEDULER};
use crate::semihosting::{self, say};

/// TCP_MSS of the SDK's lwIP.
pub const MSS: usize = 1460;
/// Receive window (set by `lwip_init`: 4 MSS).
pub const TCP_WND: usize = 4 * MSS;
/// Send buffer (2 MSS): what lwIP takes of one send at once.
pub const TCP_SND_BUF: usize = 2 * MSS;
/// Established TCP connections at once (MEMP_NUM_TCP_PCB).
pub const MAX_TCP: usize = 5;
/// TCP listeners (MEMP_NUM_TCP_PCB_LISTEN).
const MAX_LISTENERS: usize = 2;
/// UDP endpoints the emulation keeps.
const MAX_UDP: usize = 4;
/// Default server idle timeout, seconds.
const DEFAULT_IDLE_S: u32 = 10;
/// Largest UDP datagram without IP fragmentation.
const UDP_MAX: usize = 1472;
/// Peers waiting for a connection slot (their SYNs are being dropped).
const MAX_WAITING: usize = 4;
/// When a peer whose SYN was dropped sends it again, in seconds after its first SYN: a
/// 1 s initial retransmission timeout (RFC 6298 2.1) doubling each time, six retries (Linux's
/// default `tcp_syn_retries`); after the last one the peer gives up.
const SYN_RETRANSMIT_S: [u64; 6] = [1, 3, 7, 15, 31, 63];

const KIND_TCP: u32 = 1;
const KIND_UDP: u32 = 2;
const KIND_PAUSE: u32 = 3;
/// Largest scripted request.
const MAX_REQUEST: usize = 4096;
/// Records the harness may script.
const MAX_RECORDS: usize = 32;
/// Virtual time between two scripted deliveries, and the scripted client's idle close.
const STEP_MS: u64 = 300;
const IDLE_CLOSE_MS: u64 = 5000;
/// Virtual time until the scripted peer acknowledges a send, and between two segments.
const ACK_DELAY_US: u64 = 20_000;
const SEGMENT_GAP_US: u64 = 2_000;

/// Transport ids of the scripted client's connections (the relay's are small numbers, the
/// firmware's own connections count down from the top).
const SCRIPT_ID: u32 = 0x4000_0000;
const OWN_IDS: u32 = 0x8000_0000;

/// Where a connection stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// A client connection waiting for the handshake.
    Connecting,
    Open,
    /// Closed; its disconnect or error callback is still to run.
    Closed,
}

/// One espconn_send in progress.
#[derive(Clone, Copy)]
struct Sending {
    data: *const u8,
    len: usize,
    written: usize,
    acked: usize,
}

#[derive(Clone, Copy)]
struct Conn {
    state: State,
    id: u32,
    /// The listener it came from, or `None` for the firmware's own connection.
    listener: Option<usize>,
    /// The firmware's own espconn (client connections).
    app: *mut espconn,
    remote_ip: [u8; 4],
    remote_port: u16,
    window: usize,
    held: bool,
    held_bytes: usize,
    sending: Option<Sending>,
    idle_s: u32,
    timeout_s: u32,
}

const FREE: Conn = Conn {
    state: State::Free,
    id: 0,
    listener: None,
    app: core::ptr::null_mut(),
    remote_ip: [0; 4],
    remote_port: 0,
    window: 0,
    held: false,
    held_bytes: 0,
    sending: None,
    idle_s: 0,
    timeout_s: 0,
};

#[derive(Clone, Copy)]
struct Listener {
    espconn: *mut espconn,
    port: u16,
    max_allow: usize,
    timeout_s: u32,
}

#[derive(Clone, Copy)]
struct Udp {
    espconn: *mut espconn,
    port: u16,
    peer: remot_info,
}

/// A callback espconn's task runs later.
#[derive(Clone, Copy)]
enum Deferred {
    Disconnect(usize),
    Error(usize, i8),
}

#[derive(Clone, Copy)]
struct Waiting {
    id: u32,
    port: u16,
    remote_port: u16,
    /// When its first SYN was dropped.
    since_us: u64,
    /// Retransmissions so far.
    tries: usize,
}

#[derive(Clone, Copy)]
struct Record {
    kind: u32,
    port: u32,
    offset: usize,
    len: usize,
}

/// The scripted client.
struct Script {
    loaded: bool,
    data: [u8; MAX_REQUEST * 4],
    used: usize,
    records: [Option<Record>; MAX_RECORDS],
    next: usize,
    /// The open scripted connection: its request and how far it got.
    open: Option<(u32, Record, usize)>,
    idle_ms: u64,
    seed: u32,
    /// Bytes the firmware sent that the script has not acknowledged yet.
    unacked: usize,
    count: u32,
    /// Segments the open connection's request has arrived in so far.
    segments: u32,
}

struct Net {
    bridged: bool,
    listeners: [Option<Listener>; MAX_LISTENERS],
    udp: [Option<Udp>; MAX_UDP],
    conns: [Conn; MAX_TCP],
    deferred: [Option<Deferred>; 2 * MAX_TCP],
    waiting: [Option<Waiting>; MAX_WAITING],
    next_own_id: u32,
    /// A name lookup in flight: request id, its callback and argument, the name.
    lookup: Option<(
        u32,
        unsafe extern "C" fn(*const c_char, *mut ip_addr, *mut c_void),
        *mut c_void,
    )>,
    lookup_name: [u8; 64],
    script: Script,
}

static NET: Global<Net> = Global::new(Net {
    bridged: false,
    listeners: [None; MAX_LISTENERS],
    udp: [None; MAX_UDP],
    conns: [FREE; MAX_TCP],
    deferred: [None; 2 * MAX_TCP],
    waiting: [None; MAX_WAITING],
    next_own_id: OWN_IDS,
    lookup: None,
    lookup_name: [0; 64],
    script: Script {
        loaded: false,
        data: [0; MAX_REQUEST * 4],
        used: 0,
        records: [None; MAX_RECORDS],
        next: 0,
        open: None,
        idle_ms: 0,
        seed: 0x2545_F491,
        unacked: 0,
        count: 0,
        segments: 0,
    },
});

const EMPTY_TCP: esp_tcp = esp_tcp {
    remote_port: 0,
    local_port: 0,
    local_ip: [0; 4],
    remote_ip: [0; 4],
    connect_callback: None,
    reconnect_callback: None,
    disconnect_callback: None,
    write_finish_fn: None,
};

const EMPTY_CONN: espconn = espconn {
    type_: 0,
    state: 0,
    proto: espconn_proto {
        tcp: core::ptr::null_mut(),
    },
    recv_callback: None,
    sent_callback: None,
    link_cnt: 0,
    reverse: core::ptr::null_mut(),
};

/// The children: the espconn the SDK allocates per accepted connection.
static CHILDREN: Global<[espconn; MAX_TCP]> = Global::new([EMPTY_CONN; MAX_TCP]);
static CHILD_TCP: Global<[esp_tcp; MAX_TCP]> = Global::new([EMPTY_TCP; MAX_TCP]);
/// What `espconn_get_connection_info` hands out (the SDK's static `premot`).
static PREMOT: Global<[remot_info; MAX_TCP]> = Global::new(
    [remot_info {
        state: 0,
        remote_port: 0,
        remote_ip: [0; 4],
    }; MAX_TCP],
);
/// The copy a receive callback gets (NUL-terminated, like the SDK's).
static RECEIVED: Global<[u8; MSS + 1]> = Global::new([0; MSS + 1]);

const fn timer() -> ETSTimer {
    ETSTimer {
        timer_next: core::ptr::null_mut(),
        timer_expire: 0,
        timer_period: 0,
        timer_func: None,
        timer_arg: core::ptr::null_mut(),
    }
}

static TASK_TIMER: Global<ETSTimer> = Global::new(timer());
static POLL_TIMER: Global<ETSTimer> = Global::new(timer());
static RETRANSMIT_TIMER: Global<ETSTimer> = Global::new(timer());
static STEP_TIMER: Global<ETSTimer> = Global::new(timer());
static SEGMENT_TIMER: Global<ETSTimer> = Global::new(timer());
static ACK_TIMER: Global<ETSTimer> = Global::new(timer());
static RESOLVE_TIMER: Global<ETSTimer> = Global::new(timer());

/// A scripted lookup times out: the callback gets NULL.
unsafe extern "C" fn resolve_failed(_arg: *mut c_void) {
    if let Some(id) = NET.with(|n| n.lookup.map(|(id, _, _)| id)) {
        on_resolved(id, 0);
    }
}

fn arm(
    timer: &'static Global<ETSTimer>,
    func: unsafe extern "C" fn(*mut c_void),
    delay_us: u64,
    repeat: bool,
) {
    let pointer = timer.with(|t| {
        t.timer_func = Some(func);
        t.timer_arg = core::ptr::null_mut();
        t as *mut ETSTimer
    });
    SCHEDULER.with(|s| s.arm(pointer, delay_us, repeat));
}

fn child(slot: usize) -> *mut espconn {
    CHILDREN.with(|c| &raw mut c[slot])
}

fn first_line(bytes: &[u8]) -> &str {
    let end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len())
        .min(80);
    core::str::from_utf8(&bytes[..end]).unwrap_or("<binary>")
}

/// Starts the network for this run: bridged when the harness says so.
pub fn start(bridged: bool) {
    NET.with(|n| n.bridged = bridged);
    if bridged {
        bridge::open();
    }
}

/// Whether the peers are real (the event loop then follows the host's clock).
pub fn bridged() -> bool {
    NET.with(|n| n.bridged)
}

// ---------------------------------------------------------------------------------------------
// Transport: what goes to the peer.
// ---------------------------------------------------------------------------------------------

fn tx_send(id: u32, port: u16, bytes: &[u8]) {
    say!(
        "net: tcp:{port} -> {} ({} bytes)",
        first_line(bytes),
        bytes.len()
    );
    if NET.with(|n| n.bridged) {
        for piece in bytes.chunks(bridge::MAX_PAYLOAD) {
            bridge::send(bridge::up::SEND, id, 0, 0, piece);
        }
        return;
    }
    record_out(KIND_TCP, u32::from(port), bytes);
    NET.with(|n| n.script.unacked += bytes.len());
    arm(&ACK_TIMER, script_ack, ACK_DELAY_US, false);
}

fn tx_close(id: u32, port: u16) {
    say!("net: tcp:{port} closed by the firmware");
    if NET.with(|n| n.bridged) {
        bridge::send(bridge::up::CLOSE, id, 0, 0, &[]);
    } else {
        script_connection_ended(id);
    }
}

fn tx_abort(id: u32, port: u16) {
    say!("net: tcp:{port} reset by the firmware");
    if NET.with(|n| n.bridged) {
        bridge::send(bridge::up::ABORT, id, 0, 0, &[]);
    } else {
        script_connection_ended(id);
    }
}

fn tx_credit(id: u32, bytes: usize) {
    if bytes > 0 && NET.with(|n| n.bridged) {
        bridge::send(bridge::up::CREDIT, id, bytes as u32, 0, &[]);
    }
}

// ---------------------------------------------------------------------------------------------
// The model: events from the peer.
// ---------------------------------------------------------------------------------------------

fn slot_of(id: u32) -> Option<usize> {
    NET.with(|n| {
        n.conns
            .iter()
            .position(|c| c.state != State::Free && c.id == id)
    })
}

/// A peer connected to a listener's port.
fn on_accept(id: u32, port: u16, remote_port: u16) {
    let decision = NET.with(|n| {
        let Some(index) = n
            .listeners
            .iter()
            .position(|l| l.is_some_and(|l| l.port == port))
        else {
            return Err(false);
        };
        let Some(listener) = n.listeners[index] else {
            return Err(false);
        };
        let established = n.conns.iter().filter(|c| c.state == State::Open).count();
        if established == MAX_TCP {
            // lwIP drops the SYN: the peer retries and gets in once a slot is free.
            if let Some(w) = n.waiting.iter_mut().find(|w| w.is_none()) {
                *w = Some(Waiting {
                    id,
                    port,
                    remote_port,
                    since_us: SCHEDULER.with(|s| s.now_us()),
                    tries: 0,
                });
                return Err(true);
            }
            return Err(false);
        }
        let on_listener = n
            .conns
            .iter()
            .filter(|c| c.state == State::Open && c.listener == Some(index))
            .count();
        if on_listener == listener.max_allow {
            return Err(false);
        }
        let slot = n
            .conns
            .iter()
            .position(|c| c.state == State::Free)
            .ok_or(false)?;
        n.conns[slot] = Conn {
            state: State::Open,
            id,
            listener: Some(index),
            app: core::ptr::null_mut(),
            remote_ip: [192, 168, 4, 2],
            remote_port,
            window: TCP_WND,
            held: false,
            held_bytes: 0,
            sending: None,
            idle_s: 0,
            timeout_s: 0,
        };
        Ok((slot, listener.espconn))
    });
    let (slot, listener) = match decision {
        Ok(accepted) => accepted,
        Err(true) => {
            say!("net: tcp:{port}: {MAX_TCP} connections established, the peer waits");
            schedule_retransmit();
            return;
        }
        Err(false) => {
            say!("net: tcp:{port}: connection refused with a reset (no room)");
            tx_abort(id, port);
            return;
        }
    };
    // The SDK writes the peer into the listener first, then copies the listener into the
    // child; the child's write_finish_fn stays NULL.
    let child = child(slot);
    // SAFETY: `listener` is the firmware's static espconn with a TCP block; the child and its
    // TCP block are this module's statics.
    unsafe {
        let ltcp = (*listener).proto.tcp;
        (*ltcp).remote_ip = [192, 168, 4, 2];
        (*ltcp).remote_port = i32::from(remote_port);
        (*listener).state = wifi_sys::ESPCONN_CONNECT;
        let ctcp = CHILD_TCP.with(|t| &raw mut t[slot]);
        *ctcp = *ltcp;
        (*ctcp).write_finish_fn = None;
        *child = espconn {
            type_: wifi_sys::ESPCONN_TCP,
            state: wifi_sys::ESPCONN_CONNECT,
            proto: espconn_proto { tcp: ctcp },
            recv_callback: (*listener).recv_callback,
            sent_callback: (*listener).sent_callback,
            link_cnt: (*listener).link_cnt,
            reverse: (*listener).reverse,
        };
    }
    tx_credit(id, TCP_WND);
    say!("net: tcp:{port} <- connection from port {remote_port}");
    ensure_poll();
    // SAFETY: the child is a valid espconn with a TCP block for the callback's duration.
    let connect = unsafe { (*(*child).proto.tcp).connect_callback };
    if let Some(connect) = connect {
        // SAFETY: registered by the firmware with the SDK's signature.
        unsafe { connect(child.cast()) };
    }
}

/// The espconn a connection's callbacks get, and its receive or sent callback.
fn target(slot: usize) -> *mut espconn {
    NET.with(|n| {
        if n.conns[slot].listener.is_some() {
            child(slot)
        } else {
            n.conns[slot].app
        }
    })
}

/// Bytes from the peer.
fn on_data(id: u32, bytes: &[u8]) {
    let Some(slot) = slot_of(id) else {
        return;
    };
    if NET.with(|n| n.conns[slot].state) != State::Open {
        // Data for a connection lwIP has closed: it answers with a reset.
        let port = local_port(slot);
        tx_abort(id, port);
        return;
    }
    for segment in bytes.chunks(MSS) {
        if NET.with(|n| n.conns[slot].state) != State::Open {
            return;
        }
        let espconn = target(slot);
        // SAFETY: the connection's espconn (child or the firmware's own).
        let recv = unsafe { (*espconn).recv_callback };
        let credit = NET.with(|n| {
            let c = &mut n.conns[slot];
            c.window = c.window.saturating_sub(segment.len());
            if recv.is_some() {
                c.idle_s = 0;
            }
            if c.held {
                c.held_bytes += segment.len();
                0
            } else {
                // tcp_recved before the callback: the window reopens at once.
                c.window += segment.len();
                segment.len()
            }
        });
        tx_credit(id, credit);
        let Some(recv) = recv else { continue };
        let pointer = RECEIVED.with(|r| {
            r[..segment.len()].copy_from_slice(segment);
            r[segment.len()] = 0;
            r.as_mut_ptr()
        });
        // SAFETY: the espconn is valid for the callback; the buffer holds the segment.
        unsafe {
            (*espconn).state = wifi_sys::ESPCONN_READ;
            recv(
                espconn.cast(),
                pointer.cast::<c_char>(),
                segment.len() as u16,
            );
        }
        if NET.with(|n| n.conns[slot].state) == State::Open {
            // SAFETY: as above.
            unsafe { (*espconn).state = wifi_sys::ESPCONN_CONNECT };
        }
    }
}

fn local_port(slot: usize) -> u16 {
    NET.with(|n| {
        n.conns[slot]
            .listener
            .and_then(|l| n.listeners[l])
            .map_or(0, |l| l.port)
    })
}

/// Closes a connection from the device's side: a FIN (or a reset with held bytes), the rest of
/// a send dropped, the disconnect callback later.
fn close(slot: usize, reset_if_held: bool) {
    let (id, held) = NET.with(|n| {
        let c = &mut n.conns[slot];
        c.state = State::Closed;
        c.sending = None;
        (c.id, c.held_bytes > 0)
    });
    let port = local_port(slot);
    if reset_if_held && held {
        tx_abort(id, port);
    } else {
        tx_close(id, port);
    }
    defer(Deferred::Disconnect(slot));
}

/// The peer sent FIN: espconn closes at once.
fn on_fin(id: u32) {
    let Some(slot) = slot_of(id) else { return };
    if NET.with(|n| n.conns[slot].state) != State::Open {
        return;
    }
    say!(
        "net: tcp:{} <- FIN from the peer: closing",
        local_port(slot)
    );
    close(slot, true);
}

/// The peer reset the connection.
fn on_rst(id: u32) {
    let Some(slot) = slot_of(id) else { return };
    let state = NET.with(|n| n.conns[slot].state);
    if state != State::Open && state != State::Connecting {
        return;
    }
    say!("net: tcp:{} <- reset by the peer", local_port(slot));
    NET.with(|n| {
        n.conns[slot].state = State::Closed;
        n.conns[slot].sending = None;
    });
    defer(Deferred::Error(slot, wifi_sys::ESPCONN_RST));
}

/// The peer acknowledged `bytes` of what was sent.
fn on_sent(id: u32, bytes: usize) {
    let Some(slot) = slot_of(id) else { return };
    let step = NET.with(|n| {
        let c = &mut n.conns[slot];
        if c.state != State::Open {
            return None;
        }
        let sending = c.sending.as_mut()?;
        sending.acked += bytes;
        c.idle_s = 0;
        if sending.acked >= sending.len {
            c.sending = None;
            return Some(None);
        }
        // More of the application's buffer goes out as the acknowledgements free space.
        let in_flight = sending.written - sending.acked;
        let room = TCP_SND_BUF.saturating_sub(in_flight);
        let more = room.min(sending.len - sending.written);
        if more == 0 {
            return None;
        }
        let start = sending.written;
        sending.written += more;
        Some(Some((c.id, sending.data, start, more)))
    });
    match step {
        Some(None) => {
            let espconn = target(slot);
            // SAFETY: the connection's espconn.
            let sent = unsafe {
                (*espconn).state = wifi_sys::ESPCONN_CONNECT;
                (*espconn).sent_callback
            };
            if let Some(sent) = sent {
                // SAFETY: registered by the firmware with the SDK's signature.
                unsafe { sent(espconn.cast()) };
            }
        }
        Some(Some((id, data, start, more))) => {
            // SAFETY: the firmware's buffer of the send, which must stay valid until the sent
            // callback (the SDK reads the rest of a large send from it later, as here).
            let bytes = unsafe { core::slice::from_raw_parts(data.add(start), more) };
            tx_send(id, local_port(slot), bytes);
        }
        None => {}
    }
}

fn defer(event: Deferred) {
    let queued = NET.with(|n| match n.deferred.iter_mut().find(|d| d.is_none()) {
        Some(free) => {
            *free = Some(event);
            true
        }
        None => false,
    });
    if !queued {
        say!("net: espconn's event queue is full: an event is lost, as on the SDK");
    }
    arm(&TASK_TIMER, espconn_task, 0, false);
}

/// espconn's task: the deferred disconnect and error callbacks, then the slot is freed.
unsafe extern "C" fn espconn_task(_arg: *mut c_void) {
    while let Some(event) = NET.with(|n| n.deferred.iter_mut().find_map(Option::take)) {
        let slot = match event {
            Deferred::Disconnect(slot) | Deferred::Error(slot, _) => slot,
        };
        let (listener, app) = NET.with(|n| {
            let c = n.conns[slot];
            (c.listener.and_then(|l| n.listeners[l]), c.app)
        });
        // Server connections report to the listener, with the child's peer copied into it.
        let receiver = match listener {
            Some(listener) => {
                let child = child(slot);
                // SAFETY: the listener and the child are valid espconns with TCP blocks.
                unsafe {
                    let ltcp = (*listener.espconn).proto.tcp;
                    let ctcp = (*child).proto.tcp;
                    if !ctcp.is_null() {
                        (*ltcp).remote_ip = (*ctcp).remote_ip;
                        (*ltcp).remote_port = (*ctcp).remote_port;
                        (*ltcp).connect_callback = (*ctcp).connect_callback;
                        (*ltcp).reconnect_callback = (*ctcp).reconnect_callback;
                        (*ltcp).disconnect_callback = (*ctcp).disconnect_callback;
                        (*listener.espconn).recv_callback = (*child).recv_callback;
                        (*listener.espconn).sent_callback = (*child).sent_callback;
                        (*listener.espconn).reverse = (*child).reverse;
                    }
                    (*listener.espconn).state = wifi_sys::ESPCONN_CLOSE;
                }
                listener.espconn
            }
            None => app,
        };
        // SAFETY: the receiving espconn is valid with a TCP block.
        let (disconnect, error) = unsafe {
            let tcp = (*receiver).proto.tcp;
            ((*tcp).disconnect_callback, (*tcp).reconnect_callback)
        };
        match event {
            Deferred::Disconnect(_) => {
                if let Some(disconnect) = disconnect {
                    // SAFETY: registered by the firmware with the SDK's signature.
                    unsafe { disconnect(receiver.cast()) };
                }
            }
            Deferred::Error(_, code) => {
                if let Some(error) = error {
                    // SAFETY: as above.
                    unsafe { error(receiver.cast(), code) };
                }
            }
        }
        free(slot);
    }
}

/// Frees a connection; the child espconn is emptied, so a pointer the firmware kept stops
/// working (on the chip it would dangle). A waiting peer gets in at its next SYN
/// retransmission, not at once.
fn free(slot: usize) {
    NET.with(|n| n.conns[slot] = FREE);
    CHILDREN.with(|c| c[slot] = EMPTY_CONN);
    CHILD_TCP.with(|t| t[slot] = EMPTY_TCP);
}

fn next_retransmit_us(w: &Waiting) -> Option<u64> {
    SYN_RETRANSMIT_S
        .get(w.tries)
        .map(|s| w.since_us + s * 1_000_000)
}

/// Arms the retransmission timer for the earliest waiting peer's next SYN.
fn schedule_retransmit() {
    let now = SCHEDULER.with(|s| s.now_us());
    let due = NET.with(|n| {
        n.waiting
            .iter()
            .flatten()
            .filter_map(next_retransmit_us)
            .min()
    });
    if let Some(due) = due {
        arm(
            &RETRANSMIT_TIMER,
            on_retransmit,
            due.saturating_sub(now),
            false,
        );
    }
}

/// Waiting peers whose SYN is due send it again: each gets in if lwIP has room now, waits for
/// its next retransmission if not, and gives up (a reset to the relay) after the last.
unsafe extern "C" fn on_retransmit(_arg: *mut c_void) {
    let now = SCHEDULER.with(|s| s.now_us());
    for i in 0..MAX_WAITING {
        let Some(w) = NET.with(|n| n.waiting[i]) else {
            continue;
        };
        if next_retransmit_us(&w).is_none_or(|due| due > now) {
            continue;
        }
        let room = NET.with(|n| {
            n.conns.iter().filter(|c| c.state == State::Open).count() < MAX_TCP
                && n.conns.iter().any(|c| c.state == State::Free)
        });
        NET.with(|n| n.waiting[i] = None);
        if room {
            on_accept(w.id, w.port, w.remote_port);
        } else if w.tries + 1 < SYN_RETRANSMIT_S.len() {
            NET.with(|n| {
                n.waiting[i] = Some(Waiting {
                    tries: w.tries + 1,
                    ..w
                })
            });
        } else {
            say!(
                "net: tcp:{}: a waiting peer gave up after its last SYN",
                w.port
            );
            tx_abort(w.id, w.port);
        }
    }
    schedule_retransmit();
}

fn ensure_poll() {
    arm(&POLL_TIMER, poll, 1_000_000, true);
}

/// espconn's server poll, once a second: idle connections are closed.
unsafe extern "C" fn poll(_arg: *mut c_void) {
    for slot in 0..MAX_TCP {
        let expired = NET.with(|n| {
            let c = &mut n.conns[slot];
            if c.state != State::Open || c.listener.is_none() {
                return false;
            }
            let listener_timeout = c
                .listener
                .and_then(|l| n.listeners[l])
                .map_or(0, |l| l.timeout_s);
            let timeout = if c.timeout_s != 0 {
                c.timeout_s
            } else {
                listener_timeout
            };
            c.idle_s += 1;
            timeout != 0 && c.idle_s >= timeout
        });
        if expired {
            say!(
                "net: tcp:{} idle timeout: espconn closes the connection",
                local_port(slot)
            );
            close(slot, true);
        }
    }
}

/// A datagram for a UDP endpoint.
fn on_datagram(port: u16, remote_port: u16, bytes: &[u8]) {
    let Some(index) = NET.with(|n| n.udp.iter().position(|u| u.is_some_and(|u| u.port == port)))
    else {
        return;
    };
    if bytes.is_empty() {
        return;
    }
    let espconn = NET.with(|n| {
        let Some(u) = n.udp[index].as_mut() else {
            return core::ptr::null_mut();
        };
        // The sender is kept where espconn_get_connection_info finds it, not in the espconn.
        u.peer = remot_info {
            state: 0,
            remote_port: i32::from(remote_port),
            remote_ip: [192, 168, 4, 2],
        };
        u.espconn
    });
    if espconn.is_null() {
        return;
    }
    say!("net: udp:{port} <- {} bytes", bytes.len());
    let len = bytes.len().min(MSS);
    let pointer = RECEIVED.with(|r| {
        r[..len].copy_from_slice(&bytes[..len]);
        r[len] = 0;
        r.as_mut_ptr()
    });
    // SAFETY: the firmware's UDP espconn.
    if let Some(recv) = unsafe { (*espconn).recv_callback } {
        // SAFETY: registered by the firmware with the SDK's signature.
        unsafe { recv(espconn.cast(), pointer.cast::<c_char>(), len as u16) };
    }
}

// ---------------------------------------------------------------------------------------------
// The bridged transport.
// ---------------------------------------------------------------------------------------------

/// Handles every frame the relay has sent; waits up to `timeout_us` for the first.
pub fn poll_bridge(timeout_us: u64) {
    let mut wait = timeout_us;
    while let Some(frame) = bridge::next_frame(wait) {
        wait = 0;
        let payload = &frame.payload[..frame.len];
        match frame.kind {
            bridge::down::ACCEPTED => on_accept(frame.conn, frame.a as u16, frame.b as u16),
            bridge::down::DATA => on_data(frame.conn, payload),
            bridge::down::FIN => on_fin(frame.conn),
            bridge::down::RST => on_rst(frame.conn),
            bridge::down::SENT => on_sent(frame.conn, frame.a as usize),
            bridge::down::DATAGRAM => on_datagram(frame.a as u16, frame.b as u16, payload),
            bridge::down::CONNECTED => on_connected(frame.conn),
            bridge::down::CONNECT_FAILED => on_connect_failed(frame.conn),
            bridge::down::RESOLVED => on_resolved(frame.conn, frame.a),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scripted transport.
// ---------------------------------------------------------------------------------------------

fn load_script() {
    if NET.with(|n| n.script.loaded || n.bridged) {
        return;
    }
    NET.with(|n| n.script.loaded = true);
    let Some(fd) = semihosting::open(c"net-in.bin", 0) else {
        return;
    };
    let mut count = 0;
    loop {
        let mut header = [0u8; 12];
        if semihosting::read(fd, &mut header) != Some(12) {
            break;
        }
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (kind, port, len) = (word(0), word(4), word(8) as usize);
        let padded = (len + 3) & !3;
        let ok = NET.with(|n| {
            let s = &mut n.script;
            if len > MAX_REQUEST || s.used + padded > s.data.len() || count >= MAX_RECORDS {
                return false;
            }
            s.records[count] = Some(Record {
                kind,
                port,
                offset: s.used,
                len,
            });
            s.used += padded;
            true
        });
        if !ok {
            say!("net-in.bin: record {count} too large or too many records");
            break;
        }
        let mut chunk = [0u8; 512];
        let mut done = 0;
        while done < padded {
            let want = (padded - done).min(chunk.len());
            let Some(got) = semihosting::read(fd, &mut chunk[..want]) else {
                break;
            };
            if got == 0 {
                break;
            }
            NET.with(|n| {
                let start = n.script.records[count].map_or(0, |r| r.offset) + done;
                n.script.data[start..start + got].copy_from_slice(&chunk[..got]);
            });
            done += got;
        }
        count += 1;
    }
    semihosting::close(fd);
    say!("net: {count} scripted client packets");
    arm(&STEP_TIMER, script_step, STEP_MS * 1000, false);
}

fn record_out(kind: u32, port: u32, bytes: &[u8]) {
    let flags = semihosting::O_WRONLY | semihosting::O_CREAT | semihosting::O_APPEND;
    if let Some(fd) = semihosting::open(c"net-out.bin", flags) {
        let mut header = [0u8; 12];
        header[0..4].copy_from_slice(&kind.to_le_bytes());
        header[4..8].copy_from_slice(&port.to_le_bytes());
        header[8..12].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        semihosting::write_all(fd, &header);
        semihosting::write_all(fd, bytes);
        let pad = [0u8; 3];
        semihosting::write_all(fd, &pad[..(4 - bytes.len() % 4) % 4]);
        semihosting::close(fd);
    }
}

/// The scripted client's next move: deliver the next record whose listener exists, or close
/// a connection the firmware leaves open.
unsafe extern "C" fn script_step(_arg: *mut c_void) {
    let open = NET.with(|n| n.script.open.map(|(id, _, _)| (id, n.script.idle_ms)));
    if let Some((id, idle)) = open {
        if idle >= IDLE_CLOSE_MS {
            say!("net: client closes the idle connection");
            NET.with(|n| n.script.open = None);
            on_fin(id);
        } else {
            NET.with(|n| n.script.idle_ms += STEP_MS);
        }
        arm(&STEP_TIMER, script_step, STEP_MS * 1000, false);
        return;
    }
    let Some(record) = NET.with(|n| {
        let s = &n.script;
        let record = s.records.get(s.next).copied().flatten()?;
        let listening = match record.kind {
            KIND_TCP => n
                .listeners
                .iter()
                .any(|l| l.is_some_and(|l| u32::from(l.port) == record.port)),
            KIND_UDP => n
                .udp
                .iter()
                .any(|u| u.is_some_and(|u| u32::from(u.port) == record.port)),
            _ => true,
        };
        listening.then_some(record)
    }) else {
        return;
    };
    NET.with(|n| n.script.next += 1);
    match record.kind {
        KIND_PAUSE => {
            say!("net: client pauses {} ms", record.port);
            arm(
                &STEP_TIMER,
                script_step,
                u64::from(record.port).max(1) * 1000,
                false,
            );
        }
        KIND_UDP => {
            let mut datagram = [0u8; MAX_REQUEST];
            let len = record.len;
            NET.with(|n| {
                datagram[..len].copy_from_slice(&n.script.data[record.offset..record.offset + len])
            });
            on_datagram(record.port as u16, 50001, &datagram[..len]);
            record_in_console(record.port, &datagram[..len], "udp");
            arm(&STEP_TIMER, script_step, STEP_MS * 1000, false);
        }
        _ => {
            let id = NET.with(|n| {
                n.script.count += 1;
                SCRIPT_ID + n.script.count
            });
            let mut request = [0u8; MAX_REQUEST];
            let len = record.len;
            NET.with(|n| {
                request[..len].copy_from_slice(&n.script.data[record.offset..record.offset + len])
            });
            record_in_console(record.port, &request[..len], "tcp");
            NET.with(|n| {
                n.script.open = Some((id, record, 0));
                n.script.idle_ms = 0;
                n.script.segments = 0;
            });
            on_accept(id, record.port as u16, 50000 + (id % 10000) as u16);
            if slot_of(id).is_none() {
                // Refused: the client gives up on this request.
                NET.with(|n| n.script.open = None);
            } else {
                arm(&SEGMENT_TIMER, script_segment, SEGMENT_GAP_US, false);
            }
            arm(&STEP_TIMER, script_step, STEP_MS * 1000, false);
        }
    }
}

fn record_in_console(port: u32, bytes: &[u8], kind: &str) {
    say!(
        "net: {kind}:{port} <- {} ({} bytes)",
        first_line(bytes),
        bytes.len()
    );
}

/// The next segment of the scripted request: a size from a fixed pseudo-random sequence
/// (1 byte up to what is left of the request, at most 700), within the window the firmware
/// leaves open.
unsafe extern "C" fn script_segment(_arg: *mut c_void) {
    let Some((id, piece)) = NET.with(|n| {
        let (id, record, sent) = n.script.open?;
        if sent >= record.len {
            return None;
        }
        n.script.seed = n
            .script
            .seed
            .wrapping_mul(1_103_515_245)
            .wrapping_add(12_345);
        // Up to what is left (at most 700 bytes), so even a short request comes in pieces.
        let left = record.len - sent;
        let size = 1 + (n.script.seed >> 16) as usize % left.min(700);
        let slot = n
            .conns
            .iter()
            .position(|c| c.state != State::Free && c.id == id)?;
        let window = n.conns[slot].window;
        let size = size.min(window);
        if size == 0 {
            return Some((id, None));
        }
        let mut bytes = [0u8; 700];
        bytes[..size]
            .copy_from_slice(&n.script.data[record.offset + sent..record.offset + sent + size]);
        n.script.open = Some((id, record, sent + size));
        n.script.segments += 1;
        if sent + size == record.len {
            // Tests check that requests really arrive in pieces.
            say!(
                "net: tcp:{} request arrived in {} segment(s)",
                record.port,
                n.script.segments
            );
        }
        Some((id, Some((bytes, size))))
    }) else {
        return;
    };
    if let Some((bytes, size)) = piece {
        on_data(id, &bytes[..size]);
    }
    arm(&SEGMENT_TIMER, script_segment, SEGMENT_GAP_US, false);
}

/// The scripted peer acknowledges what the firmware sent.
unsafe extern "C" fn script_ack(_arg: *mut c_void) {
    let Some(id) = NET.with(|n| n.script.open.map(|(id, _, _)| id)) else {
        NET.with(|n| n.script.unacked = 0);
        return;
    };
    let bytes = NET.with(|n| core::mem::replace(&mut n.script.unacked, 0));
    on_sent(id, bytes);
}

fn script_connection_ended(id: u32) {
    NET.with(|n| {
        if n.script.open.is_some_and(|(open, _, _)| open == id) {
            n.script.open = None;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The firmware's own connections.
// ---------------------------------------------------------------------------------------------

fn on_connected(id: u32) {
    let Some(slot) = slot_of(id) else { return };
    let app = NET.with(|n| {
        let c = &mut n.conns[slot];
        if c.state != State::Connecting {
            return core::ptr::null_mut();
        }
        c.state = State::Open;
        c.app
    });
    if app.is_null() {
        return;
    }
    tx_credit(id, TCP_WND);
    // SAFETY: the firmware's own espconn with a TCP block.
    unsafe {
        (*app).state = wifi_sys::ESPCONN_CONNECT;
        if let Some(connect) = (*(*app).proto.tcp).connect_callback {
            connect(app.cast());
        }
    }
}

fn on_connect_failed(id: u32) {
    let Some(slot) = slot_of(id) else { return };
    NET.with(|n| n.conns[slot].state = State::Closed);
    // A refused connection (the relay could not connect) reads as a reset.
    defer(Deferred::Error(slot, wifi_sys::ESPCONN_RST));
}

fn on_resolved(request: u32, ip: u32) {
    let Some((id, found, arg)) = NET.with(|n| n.lookup.take()) else {
        return;
    };
    if id != request {
        return;
    }
    let mut address = ip_addr { addr: ip };
    let name = NET.with(|n| n.lookup_name.as_ptr());
    let result = if ip == 0 {
        core::ptr::null_mut()
    } else {
        &raw mut address
    };
    // SAFETY: registered by the firmware with the SDK's signature; the name is NUL-terminated.
    unsafe { found(name.cast::<c_char>(), result, arg) };
}

/// The connection an espconn stands for: a child, a firmware-owned client, or a listener (the
/// connection whose peer the listener holds, as the SDK resolves it).
fn find(espconn: *mut espconn) -> Option<usize> {
    if espconn.is_null() {
        return None;
    }
    NET.with(|n| {
        for (slot, c) in n.conns.iter().enumerate() {
            if c.state == State::Free {
                continue;
            }
            let is_child =
                c.listener.is_some() && core::ptr::eq(espconn, CHILDREN.with(|k| &raw mut k[slot]));
            if is_child || (c.listener.is_none() && core::ptr::eq(espconn, c.app)) {
                return Some(slot);
            }
        }
        let listener = n
            .listeners
            .iter()
            .flatten()
            .position(|l| core::ptr::eq(l.espconn, espconn))?;
        // SAFETY: the listener is the firmware's espconn with a TCP block.
        let port = unsafe { (*(*espconn).proto.tcp).remote_port };
        n.conns.iter().position(|c| {
            c.state != State::Free
                && c.listener == Some(listener)
                && i32::from(c.remote_port) == port
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The SDK functions.
// ---------------------------------------------------------------------------------------------

emulate! {
    /// Starts a TCP listener (at most two; a port already in use is refused).
    fn espconn_accept(espconn: *mut espconn) -> i8 {
        // SAFETY: a caller passes a valid espconn.
        if espconn.is_null() || unsafe { (*espconn).type_ } != wifi_sys::ESPCONN_TCP {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: a TCP espconn with its block.
        let port = unsafe { (*(*espconn).proto.tcp).local_port } as u16;
        let added = NET.with(|n| {
            if n.listeners.iter().flatten().any(|l| l.port == port) {
                return Err(wifi_sys::ESPCONN_ISCONN);
            }
            let free = n.listeners.iter_mut().find(|l| l.is_none()).ok_or(wifi_sys::ESPCONN_MEM)?;
            *free = Some(Listener { espconn, port, max_allow: MAX_TCP, timeout_s: DEFAULT_IDLE_S });
            Ok(())
        });
        if let Err(code) = added {
            return code;
        }
        // SAFETY: as above.
        unsafe { (*espconn).state = wifi_sys::ESPCONN_LISTEN };
        say!("net: listening on tcp:{port}");
        if NET.with(|n| n.bridged) {
            bridge::send(bridge::up::LISTEN_TCP, 0, u32::from(port), 0, &[]);
        } else {
            load_script();
        }
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Opens a UDP endpoint.
    fn espconn_create(espconn: *mut espconn) -> i8 {
        // SAFETY: a caller passes a valid espconn.
        if espconn.is_null() || unsafe { (*espconn).type_ } != wifi_sys::ESPCONN_UDP {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: a UDP espconn with its block.
        let port = unsafe { (*(*espconn).proto.udp).local_port } as u16;
        let added = NET.with(|n| {
            if n.udp.iter().flatten().any(|u| u.port == port) {
                return Err(wifi_sys::ESPCONN_ISCONN);
            }
            let free = n.udp.iter_mut().find(|u| u.is_none()).ok_or(wifi_sys::ESPCONN_MEM)?;
            *free = Some(Udp { espconn, port, peer: remot_info { state: 0, remote_port: 0, remote_ip: [0; 4] } });
            Ok(())
        });
        if let Err(code) = added {
            return code;
        }
        say!("net: listening on udp:{port}");
        if NET.with(|n| n.bridged) {
            bridge::send(bridge::up::LISTEN_UDP, 0, u32::from(port), 0, &[]);
        } else {
            load_script();
        }
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Stops a listener (refused while it has connections) or a UDP endpoint.
    fn espconn_delete(espconn: *mut espconn) -> i8 {
        NET.with(|n| {
            if let Some(index) = n.listeners.iter().position(|l| l.is_some_and(|l| core::ptr::eq(l.espconn, espconn))) {
                if n.conns.iter().any(|c| c.state != State::Free && c.listener == Some(index)) {
                    return wifi_sys::ESPCONN_INPROGRESS;
                }
                n.listeners[index] = None;
                return wifi_sys::ESPCONN_OK;
            }
            for u in n.udp.iter_mut() {
                if u.is_some_and(|u| core::ptr::eq(u.espconn, espconn)) {
                    *u = None;
                    return wifi_sys::ESPCONN_OK;
                }
            }
            wifi_sys::ESPCONN_ARG
        })
    }
}

emulate! {
    /// Closes a connection: FIN now (a reset with held bytes), the disconnect callback later.
    fn espconn_disconnect(espconn: *mut espconn) -> i8 {
        let Some(slot) = find(espconn) else {
            return wifi_sys::ESPCONN_ARG;
        };
        match NET.with(|n| (n.conns[slot].state, n.conns[slot].listener.is_none())) {
            (State::Closed, true) => return wifi_sys::ESPCONN_INPROGRESS,
            (State::Closed, false) => return wifi_sys::ESPCONN_OK,
            _ => {}
        }
        close(slot, true);
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Resets a connection; its disconnect callback (not the error one) follows later.
    fn espconn_abort(espconn: *mut espconn) -> i8 {
        let Some(slot) = find(espconn) else {
            return wifi_sys::ESPCONN_ARG;
        };
        if NET.with(|n| n.conns[slot].state) == State::Closed {
            return wifi_sys::ESPCONN_INPROGRESS;
        }
        let id = NET.with(|n| {
            n.conns[slot].state = State::Closed;
            n.conns[slot].sending = None;
            n.conns[slot].id
        });
        tx_abort(id, local_port(slot));
        defer(Deferred::Disconnect(slot));
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Stops the window from reopening; deliveries go on.
    fn espconn_recv_hold(espconn: *mut espconn) -> i8 {
        let Some(slot) = find(espconn) else {
            return wifi_sys::ESPCONN_ARG;
        };
        NET.with(|n| {
            let c = &mut n.conns[slot];
            if !c.held {
                c.held = true;
                c.held_bytes = 0;
            }
        });
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Reopens the window by what arrived while held.
    fn espconn_recv_unhold(espconn: *mut espconn) -> i8 {
        let Some(slot) = find(espconn) else {
            return wifi_sys::ESPCONN_ARG;
        };
        let (id, bytes) = NET.with(|n| {
            let c = &mut n.conns[slot];
            let bytes = if c.held { c.held_bytes } else { 0 };
            c.window += bytes;
            c.held = false;
            c.held_bytes = 0;
            (c.id, bytes)
        });
        tx_credit(id, bytes);
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Registers the connect callback (in the TCP block, as the SDK does).
    fn espconn_regist_connectcb(espconn: *mut espconn, cb: Option<unsafe extern "C" fn(*mut c_void)>) -> i8 {
        if espconn.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: a TCP espconn owned by the firmware (or a child).
        unsafe { (*(*espconn).proto.tcp).connect_callback = cb };
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Registers the receive callback.
    fn espconn_regist_recvcb(
        espconn: *mut espconn,
        cb: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, u16)>,
    ) -> i8 {
        if espconn.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: an espconn owned by the firmware (or a child).
        unsafe { (*espconn).recv_callback = cb };
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Registers the sent callback.
    fn espconn_regist_sentcb(espconn: *mut espconn, cb: Option<unsafe extern "C" fn(*mut c_void)>) -> i8 {
        if espconn.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: as above.
        unsafe { (*espconn).sent_callback = cb };
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Registers the disconnect callback (in the TCP block).
    fn espconn_regist_disconcb(espconn: *mut espconn, cb: Option<unsafe extern "C" fn(*mut c_void)>) -> i8 {
        if espconn.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: a TCP espconn.
        unsafe { (*(*espconn).proto.tcp).disconnect_callback = cb };
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Registers the error callback (in the TCP block).
    fn espconn_regist_reconcb(espconn: *mut espconn, cb: Option<unsafe extern "C" fn(*mut c_void, i8)>) -> i8 {
        if espconn.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: a TCP espconn.
        unsafe { (*(*espconn).proto.tcp).reconnect_callback = cb };
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// The idle timeout in seconds: for all of a listener's connections (0) or one (1).
    fn espconn_regist_time(espconn: *mut espconn, interval: u32, type_flag: u8) -> i8 {
        match type_flag {
            0 => NET.with(|n| {
                match n.listeners.iter_mut().flatten().find(|l| core::ptr::eq(l.espconn, espconn)) {
                    Some(listener) => {
                        listener.timeout_s = interval;
                        wifi_sys::ESPCONN_OK
                    }
                    None => wifi_sys::ESPCONN_ARG,
                }
            }),
            1 => match find(espconn) {
                Some(slot) => {
                    NET.with(|n| n.conns[slot].timeout_s = interval);
                    wifi_sys::ESPCONN_OK
                }
                None => wifi_sys::ESPCONN_ARG,
            },
            _ => wifi_sys::ESPCONN_ARG,
        }
    }
}

emulate! {
    /// Sends on a TCP connection: one buffer at a time until the peer acknowledged all of it.
    fn espconn_send(espconn: *mut espconn, data: *mut u8, len: u16) -> i8 {
        if espconn.is_null() || data.is_null() || len == 0 {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: a valid espconn.
        if unsafe { (*espconn).type_ } == wifi_sys::ESPCONN_UDP {
            // SAFETY: same contract.
            return unsafe { espconn_sendto(espconn, data, len) } as i8;
        }
        let Some(slot) = find(espconn) else {
            return wifi_sys::ESPCONN_ARG;
        };
        // SAFETY: as above.
        unsafe { (*espconn).state = wifi_sys::ESPCONN_WRITE };
        let plan = NET.with(|n| {
            let c = &mut n.conns[slot];
            match c.state {
                State::Open => {}
                _ => return Err(wifi_sys::ESPCONN_CONN),
            }
            if c.sending.is_some() {
                return Err(wifi_sys::ESPCONN_MAXNUM);
            }
            let first = usize::from(len).min(TCP_SND_BUF);
            c.sending = Some(Sending { data: data.cast_const(), len: usize::from(len), written: first, acked: 0 });
            Ok((c.id, first))
        });
        match plan {
            Ok((id, first)) => {
                // SAFETY: the firmware passes `len` readable bytes; lwIP copies what it takes.
                let bytes = unsafe { core::slice::from_raw_parts(data, first) };
                tx_send(id, local_port(slot), bytes);
                wifi_sys::ESPCONN_OK
            }
            Err(code) => {
                say!("net: espconn_send refused ({code})");
                code
            }
        }
    }
}

emulate! {
    /// Sends a UDP datagram to the espconn's remote (in pieces of at most 1472 bytes); the
    /// sent callback runs inside this call.
    fn espconn_sendto(espconn: *mut espconn, data: *mut u8, len: u16) -> i16 {
        if espconn.is_null() || data.is_null() {
            return i16::from(wifi_sys::ESPCONN_ARG);
        }
        // SAFETY: the firmware passes `len` readable bytes and a UDP espconn.
        let (bytes, port, remote_port) = unsafe {
            let udp = (*espconn).proto.udp;
            (core::slice::from_raw_parts(data, usize::from(len)), (*udp).local_port as u16, (*udp).remote_port as u16)
        };
        say!("net: udp:{port} -> {len} bytes");
        for piece in bytes.chunks(UDP_MAX) {
            if NET.with(|n| n.bridged) {
                for part in piece.chunks(bridge::MAX_PAYLOAD) {
                    bridge::send(bridge::up::SEND_TO, 0, u32::from(port), u32::from(remote_port), part);
                }
            } else {
                record_out(KIND_UDP, u32::from(port), piece);
            }
        }
        // SAFETY: the firmware's espconn.
        if let Some(sent) = unsafe { (*espconn).sent_callback } {
            // SAFETY: registered by the firmware with the SDK's signature.
            unsafe { sent(espconn.cast()) };
        }
        i16::from(wifi_sys::ESPCONN_OK)
    }
}

emulate! {
    /// The peers: for a UDP endpoint the last datagram's sender; for a listener its open
    /// connections (in the SDK's static table, overwritten by every call).
    fn espconn_get_connection_info(
        pespconn: *mut espconn,
        pcon_info: *mut *mut remot_info,
        typeflags: u8,
    ) -> i8 {
        let _ = typeflags;
        if pespconn.is_null() || pcon_info.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        let udp_peer = NET.with(|n| {
            n.udp.iter().flatten().find(|u| core::ptr::eq(u.espconn, pespconn)).map(|u| u.peer)
        });
        if let Some(peer) = udp_peer {
            let pointer = PREMOT.with(|p| {
                p[0] = peer;
                p.as_mut_ptr()
            });
            // SAFETY: the firmware passes a writable pointer.
            unsafe { *pcon_info = pointer };
            return wifi_sys::ESPCONN_OK;
        }
        let Some(index) = NET.with(|n| n.listeners.iter().position(|l| l.is_some_and(|l| core::ptr::eq(l.espconn, pespconn)))) else {
            return wifi_sys::ESPCONN_ARG;
        };
        let count = NET.with(|n| {
            let mut count = 0;
            PREMOT.with(|p| {
                for c in n.conns.iter().filter(|c| c.state == State::Open && c.listener == Some(index)) {
                    p[count] = remot_info { state: wifi_sys::ESPCONN_CONNECT, remote_port: i32::from(c.remote_port), remote_ip: c.remote_ip };
                    count += 1;
                }
            });
            count
        });
        // SAFETY: the firmware's listener; a writable pointer.
        unsafe {
            (*pespconn).link_cnt = count as u8;
            *pcon_info = PREMOT.with(|p| p.as_mut_ptr());
        }
        if count == 0 { wifi_sys::ESPCONN_ARG } else { wifi_sys::ESPCONN_OK }
    }
}

emulate! {
    /// How many connections a listener keeps; the next peer is reset after its handshake.
    fn espconn_tcp_set_max_con_allow(espconn: *mut espconn, num: u8) -> i8 {
        if usize::from(num) > MAX_TCP {
            return wifi_sys::ESPCONN_ARG;
        }
        NET.with(|n| match n.listeners.iter_mut().flatten().find(|l| core::ptr::eq(l.espconn, espconn)) {
            Some(listener) => {
                listener.max_allow = usize::from(num);
                say!("net: at most {num} tcp connection(s)");
                wifi_sys::ESPCONN_OK
            }
            None => wifi_sys::ESPCONN_ARG,
        })
    }
}

emulate! {
    /// Opens the firmware's own TCP connection (bridged runs only: the script has no servers).
    fn espconn_connect(espconn: *mut espconn) -> i8 {
        // SAFETY: a caller passes a valid espconn.
        if espconn.is_null() || unsafe { (*espconn).type_ } != wifi_sys::ESPCONN_TCP {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: a TCP espconn with its block.
        let (ip, port) = unsafe { ((*(*espconn).proto.tcp).remote_ip, (*(*espconn).proto.tcp).remote_port as u16) };
        let started = NET.with(|n| {
            let active = n.conns.iter().filter(|c| c.state != State::Free).count();
            if active >= MAX_TCP {
                return None;
            }
            let slot = n.conns.iter().position(|c| c.state == State::Free)?;
            n.next_own_id = n.next_own_id.wrapping_add(1) | OWN_IDS;
            n.conns[slot] = Conn { state: State::Connecting, id: n.next_own_id, app: espconn, remote_ip: ip, remote_port: port, window: TCP_WND, ..FREE };
            Some((slot, n.next_own_id, n.bridged))
        });
        let Some((slot, id, bridged)) = started else {
            return wifi_sys::ESPCONN_ISCONN;
        };
        // SAFETY: as above.
        unsafe { (*espconn).state = wifi_sys::ESPCONN_WAIT };
        say!("net: tcp -> connecting to {}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]);
        if bridged {
            bridge::send(bridge::up::CONNECT, id, u32::from_le_bytes(ip), u32::from(port), &[]);
        } else {
            // No scripted server answers: the connection is refused.
            NET.with(|n| n.conns[slot].state = State::Closed);
            defer(Deferred::Error(slot, wifi_sys::ESPCONN_RST));
        }
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Resolves a name: a dotted address at once, anything else through the relay (bridged)
    /// or not at all (scripted: the callback gets NULL), never inside the call.
    fn espconn_gethostbyname(
        espconn: *mut espconn,
        hostname: *const c_char,
        addr: *mut ip_addr,
        found: Option<unsafe extern "C" fn(*const c_char, *mut ip_addr, *mut c_void)>,
    ) -> i8 {
        if hostname.is_null() || addr.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: the firmware passes a NUL-terminated name.
        let name = unsafe { core::ffi::CStr::from_ptr(hostname) }.to_bytes();
        if name.is_empty() || name.len() >= 64 {
            return wifi_sys::ESPCONN_ARG;
        }
        if let Some(ip) = dotted(name) {
            // SAFETY: a writable ip_addr.
            unsafe { (*addr).addr = u32::from_le_bytes(ip) };
            return wifi_sys::ESPCONN_OK;
        }
        let Some(found) = found else {
            return wifi_sys::ESPCONN_ARG;
        };
        let request = NET.with(|n| {
            if n.lookup.is_some() {
                return None;
            }
            n.next_own_id = n.next_own_id.wrapping_add(1) | OWN_IDS;
            n.lookup = Some((n.next_own_id, found, espconn.cast()));
            n.lookup_name = [0; 64];
            n.lookup_name[..name.len()].copy_from_slice(name);
            Some((n.next_own_id, n.bridged))
        });
        let Some((id, bridged)) = request else {
            return wifi_sys::ESPCONN_MEM;
        };
        if bridged {
            bridge::send(bridge::up::RESOLVE, id, 0, 0, name);
        } else {
            // No scripted DNS server: the lookup fails, later (the SDK times out after ~7 s).
            arm(&RESOLVE_TIMER, resolve_failed, 7_000_000, false);
        }
        wifi_sys::ESPCONN_INPROGRESS
    }
}

/// A dotted IPv4 address, if `name` is one.
fn dotted(name: &[u8]) -> Option<[u8; 4]> {
    let mut ip = [0u8; 4];
    let mut parts = name.split(|&b| b == b'.');
    for byte in ip.iter_mut() {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *byte = core::str::from_utf8(part).ok()?.parse().ok()?;
    }
    parts.next().is_none().then_some(ip)
}
