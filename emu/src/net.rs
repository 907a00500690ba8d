//! espconn, scripted: canned client requests delivered to the firmware's listeners.
//!
//! The harness writes `net-in.bin` in QEMU's working directory: records of
//! `[kind u32 (1 TCP, 2 UDP, 3 pause)][port u32][length u32][bytes, padded to 4]`, in the order
//! a phone would send them; a pause record (no bytes) waits `port` virtual milliseconds, as a
//! person reading a page would. Once the firmware listens on a port (`espconn_accept` for TCP,
//! `espconn_create` for UDP), the records for that port are delivered one at a time on the
//! virtual clock: a TCP record becomes one connection (connect callback, then one receive
//! callback with the whole request); a UDP record one datagram. Everything the firmware sends
//! is appended to `net-out.bin` in the same record format and summarised on the console
//! (`emu: net: ...`, first line only). One TCP connection at a time, like the firmware's
//! portal; a connection the firmware leaves open is closed by the "client" after 5 virtual
//! seconds.
//!
//! Like lwIP under espconn, a send is refused while the previous one is still in flight
//! (`ESPCONN_MAXNUM`) or when it exceeds the TCP send buffer (`TCP_SND_BUF`, two segments:
//! `ESPCONN_MEM`); the sent callback comes later, from the scheduler, never from inside
//! `espconn_send`.

use core::ffi::{c_char, c_void};

use wifi_sys::{ETSTimer, esp_tcp, espconn, espconn_proto, remot_info};

use crate::emulate;
use crate::scheduler::{Global, SCHEDULER};
use crate::semihosting::{self, say};

const KIND_TCP: u32 = 1;
const KIND_UDP: u32 = 2;
const KIND_PAUSE: u32 = 3;
/// lwIP's TCP send buffer in the SDK (2 × MSS 1460): the most one `espconn_send` may pass.
const TCP_SEND_BUFFER: usize = 2 * 1460;
/// Virtual time until a send is acknowledged (the sent callback).
const SENT_DELAY_US: u64 = 20_000;
/// Largest request the harness may script.
const MAX_REQUEST: usize = 4096;
/// Records the harness may script.
const MAX_RECORDS: usize = 32;
/// Virtual time between two deliveries, and before a forgotten connection is closed.
const STEP_MS: u64 = 300;
const IDLE_CLOSE_MS: u64 = 5000;

#[derive(Clone, Copy)]
struct Record {
    kind: u32,
    port: u32,
    offset: usize,
    len: usize,
}

struct Net {
    loaded: bool,
    data: [u8; MAX_REQUEST * 4],
    used: usize,
    records: [Option<Record>; MAX_RECORDS],
    next: usize,
    tcp_listener: *mut espconn,
    udp_listener: *mut espconn,
    /// A TCP connection is open (waiting for the firmware to close it).
    open: bool,
    idle_ms: u64,
    closing: bool,
    /// A send waits for its sent callback.
    in_flight: bool,
}

static NET: Global<Net> = Global::new(Net {
    loaded: false,
    data: [0; MAX_REQUEST * 4],
    used: 0,
    records: [None; MAX_RECORDS],
    next: 0,
    tcp_listener: core::ptr::null_mut(),
    udp_listener: core::ptr::null_mut(),
    open: false,
    idle_ms: 0,
    closing: false,
    in_flight: false,
});

static CLIENT_TCP: Global<esp_tcp> = Global::new(esp_tcp {
    remote_port: 50000,
    local_port: 80,
    local_ip: [192, 168, 4, 1],
    remote_ip: [192, 168, 4, 2],
    connect_callback: None,
    reconnect_callback: None,
    disconnect_callback: None,
    write_finish_fn: None,
});

/// The accepted connection the firmware sees (the SDK hands out one per connection).
static CLIENT: Global<espconn> = Global::new(espconn {
    type_: wifi_sys::ESPCONN_TCP,
    state: 0,
    proto: espconn_proto {
        tcp: core::ptr::null_mut(),
    },
    recv_callback: None,
    sent_callback: None,
    link_cnt: 0,
    reverse: core::ptr::null_mut(),
});

static SENT_TIMER: Global<ETSTimer> = Global::new(ETSTimer {
    timer_next: core::ptr::null_mut(),
    timer_expire: 0,
    timer_period: 0,
    timer_func: None,
    timer_arg: core::ptr::null_mut(),
});

/// The peer `espconn_get_connection_info` reports (the phone).
static PEER: Global<remot_info> = Global::new(remot_info {
    state: 0,
    remote_port: 50001,
    remote_ip: [192, 168, 4, 2],
});

static STEP_TIMER: Global<ETSTimer> = Global::new(ETSTimer {
    timer_next: core::ptr::null_mut(),
    timer_expire: 0,
    timer_period: 0,
    timer_func: None,
    timer_arg: core::ptr::null_mut(),
});

fn load() {
    if NET.with(|n| n.loaded) {
        return;
    }
    NET.with(|n| n.loaded = true);
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
            if len > MAX_REQUEST || n.used + padded > n.data.len() || count >= MAX_RECORDS {
                return false;
            }
            let offset = n.used;
            n.records[count] = Some(Record {
                kind,
                port,
                offset,
                len,
            });
            n.used += padded;
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
                let start = n.records[count].map_or(0, |r| r.offset) + done;
                n.data[start..start + got].copy_from_slice(&chunk[..got]);
            });
            done += got;
        }
        count += 1;
    }
    semihosting::close(fd);
    say!("net: {count} scripted client packets");
}

fn arm_step(delay_ms: u64) {
    let timer = STEP_TIMER.with(|t| {
        t.timer_func = Some(step);
        t as *mut ETSTimer
    });
    SCHEDULER.with(|s| s.arm(timer, delay_ms * 1000, false));
}

fn first_line(bytes: &[u8]) -> &str {
    let end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len())
        .min(80);
    core::str::from_utf8(&bytes[..end]).unwrap_or("<binary>")
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

/// Delivers the next scripted packet whose listener exists; closes idle connections.
unsafe extern "C" fn step(_arg: *mut c_void) {
    let (open, idle) = NET.with(|n| (n.open, n.idle_ms));
    if open {
        if idle >= IDLE_CLOSE_MS {
            say!("net: client closes the idle connection");
            close_client();
        } else {
            NET.with(|n| n.idle_ms += STEP_MS);
        }
        arm_step(STEP_MS);
        return;
    }
    let Some((record, listener)) = NET.with(|n| {
        let record = n.records.get(n.next).copied().flatten()?;
        let listener = match record.kind {
            KIND_TCP => n.tcp_listener,
            KIND_UDP => n.udp_listener,
            _ => core::ptr::NonNull::<espconn>::dangling().as_ptr(),
        };
        if listener.is_null() {
            return None;
        }
        n.next += 1;
        Some((record, listener))
    }) else {
        return;
    };
    if record.kind == KIND_PAUSE {
        say!("net: client pauses {} ms", record.port);
        arm_step(u64::from(record.port).max(1));
        return;
    }
    let mut request = [0u8; MAX_REQUEST];
    let len = record.len;
    NET.with(|n| request[..len].copy_from_slice(&n.data[record.offset..record.offset + len]));
    let kind = if record.kind == KIND_TCP {
        "tcp"
    } else {
        "udp"
    };
    say!(
        "net: {kind}:{} <- {} ({len} bytes)",
        record.port,
        first_line(&request[..len])
    );
    if record.kind == KIND_UDP {
        // SAFETY: the listener is the firmware's static espconn with a UDP block.
        let recv = unsafe { (*listener).recv_callback };
        unsafe {
            (*(*listener).proto.udp).remote_ip = [192, 168, 4, 2];
            (*(*listener).proto.udp).remote_port = 50001;
        }
        if let Some(recv) = recv {
            // SAFETY: the callback was registered by the firmware with the SDK's signature.
            unsafe {
                recv(
                    listener.cast(),
                    request.as_mut_ptr().cast::<c_char>(),
                    len as u16,
                )
            };
        }
        arm_step(STEP_MS);
        return;
    }
    // TCP: a new connection inherits the listener's callbacks, then gets the request.
    // SAFETY: the listener is the firmware's static espconn with a TCP block.
    let (recv, sent, tcp) = unsafe {
        (
            (*listener).recv_callback,
            (*listener).sent_callback,
            *(*listener).proto.tcp,
        )
    };
    CLIENT_TCP.with(|t| {
        t.connect_callback = tcp.connect_callback;
        t.reconnect_callback = tcp.reconnect_callback;
        t.disconnect_callback = tcp.disconnect_callback;
        t.local_port = tcp.local_port;
        t.remote_port += 1;
    });
    let client = CLIENT.with(|c| {
        c.recv_callback = recv;
        c.sent_callback = sent;
        c.proto = espconn_proto {
            tcp: CLIENT_TCP.with(|t| t as *mut esp_tcp),
        };
        c as *mut espconn
    });
    NET.with(|n| {
        n.open = true;
        n.idle_ms = 0;
        n.closing = false;
    });
    if let Some(connect) = tcp.connect_callback {
        // SAFETY: registered by the firmware; `client` is a valid espconn for the call.
        unsafe { connect(client.cast()) };
    }
    // The firmware may have registered callbacks on the new connection itself.
    if let Some(recv) = CLIENT.with(|c| c.recv_callback) {
        // SAFETY: as above; the request buffer lives for the call.
        unsafe {
            recv(
                client.cast(),
                request.as_mut_ptr().cast::<c_char>(),
                len as u16,
            )
        };
    }
    arm_step(STEP_MS);
}

/// The peer acknowledged the last send: the SDK's sent callback.
unsafe extern "C" fn sent_done(_arg: *mut c_void) {
    if !NET.with(|n| core::mem::replace(&mut n.in_flight, false) && n.open) {
        return;
    }
    let client = CLIENT.with(|c| c as *mut espconn);
    if let Some(sent) = CLIENT.with(|c| c.sent_callback) {
        // SAFETY: registered by the firmware with the SDK's signature; `client` is valid.
        unsafe { sent(client.cast()) };
    }
}

fn close_client() {
    let client = CLIENT.with(|c| c as *mut espconn);
    NET.with(|n| {
        n.open = false;
        n.in_flight = false;
    });
    SCHEDULER.with(|s| s.disarm(SENT_TIMER.with(|t| t as *mut ETSTimer)));
    if let Some(disconnect) = CLIENT_TCP.with(|t| t.disconnect_callback) {
        // SAFETY: registered by the firmware with the SDK's signature.
        unsafe { disconnect(client.cast()) };
    }
}

emulate! {
    /// Starts a TCP listener; scripted connections follow.
    fn espconn_accept(espconn: *mut espconn) -> i8 {
        if espconn.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: the firmware passes its static espconn with a TCP block.
        let port = unsafe { (*(*espconn).proto.tcp).local_port };
        say!("net: listening on tcp:{port}");
        NET.with(|n| n.tcp_listener = espconn);
        load();
        arm_step(STEP_MS);
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Opens a UDP endpoint; scripted datagrams follow.
    fn espconn_create(espconn: *mut espconn) -> i8 {
        if espconn.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: the firmware passes its static espconn with a UDP block.
        let port = unsafe { (*(*espconn).proto.udp).local_port };
        say!("net: listening on udp:{port}");
        NET.with(|n| n.udp_listener = espconn);
        load();
        arm_step(STEP_MS);
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Stops a listener.
    fn espconn_delete(espconn: *mut espconn) -> i8 {
        NET.with(|n| {
            if n.tcp_listener == espconn {
                n.tcp_listener = core::ptr::null_mut();
            }
            if n.udp_listener == espconn {
                n.udp_listener = core::ptr::null_mut();
            }
        });
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// The firmware closes the connection.
    fn espconn_disconnect(espconn: *mut espconn) -> i8 {
        let _ = espconn;
        if NET.with(|n| n.open) {
            say!("net: server closed the connection");
            close_client();
        }
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Registers the connect callback (in the TCP block, as the SDK does).
    fn espconn_regist_connectcb(espconn: *mut espconn, cb: Option<unsafe extern "C" fn(*mut c_void)>) -> i8 {
        if espconn.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: a TCP espconn owned by the firmware.
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
        // SAFETY: an espconn owned by the firmware (or the emulator's client).
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
        if core::ptr::eq(espconn, CLIENT.with(|c| c as *mut espconn)) {
            CLIENT_TCP.with(|t| t.disconnect_callback = cb);
        }
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
    /// The idle timeout: the emulator's client closes forgotten connections itself.
    fn espconn_regist_time(espconn: *mut espconn, interval: u32, type_flag: u8) -> i8 {
        let _ = (espconn, interval, type_flag);
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Sends on the open TCP connection: recorded in `net-out.bin`.
    fn espconn_send(espconn: *mut espconn, data: *mut u8, len: u16) -> i8 {
        if espconn.is_null() || data.is_null() || !NET.with(|n| n.open) {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: the firmware passes `len` readable bytes.
        let bytes = unsafe { core::slice::from_raw_parts(data, usize::from(len)) };
        // SAFETY: a TCP espconn.
        let port = unsafe { (*(*espconn).proto.tcp).local_port } as u32;
        if NET.with(|n| n.in_flight) {
            say!("net: espconn_send refused: the previous send is still in flight");
            return wifi_sys::ESPCONN_MAXNUM;
        }
        if bytes.len() > TCP_SEND_BUFFER {
            say!("net: espconn_send refused: {len} bytes exceed the TCP send buffer");
            return wifi_sys::ESPCONN_MEM;
        }
        say!("net: tcp:{port} -> {} ({len} bytes)", first_line(bytes));
        record_out(KIND_TCP, port, bytes);
        NET.with(|n| {
            n.idle_ms = 0;
            n.in_flight = true;
        });
        let timer = SENT_TIMER.with(|t| {
            t.timer_func = Some(sent_done);
            t as *mut ETSTimer
        });
        SCHEDULER.with(|s| s.arm(timer, SENT_DELAY_US, false));
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Sends a UDP datagram: recorded in `net-out.bin`.
    fn espconn_sendto(espconn: *mut espconn, data: *mut u8, len: u16) -> i16 {
        if espconn.is_null() || data.is_null() {
            return i16::from(wifi_sys::ESPCONN_ARG);
        }
        // SAFETY: the firmware passes `len` readable bytes and a UDP espconn.
        let (bytes, port) = unsafe {
            (core::slice::from_raw_parts(data, usize::from(len)), (*(*espconn).proto.udp).local_port as u32)
        };
        say!("net: udp:{port} -> {len} bytes");
        record_out(KIND_UDP, port, bytes);
        i16::from(wifi_sys::ESPCONN_OK)
    }
}

emulate! {
    /// The peer of a connection: the scripted phone.
    fn espconn_get_connection_info(
        pespconn: *mut espconn,
        pcon_info: *mut *mut remot_info,
        typeflags: u8,
    ) -> i8 {
        let _ = typeflags;
        if pespconn.is_null() || pcon_info.is_null() {
            return wifi_sys::ESPCONN_ARG;
        }
        // SAFETY: the firmware passes a writable pointer; PEER is static.
        unsafe { *pcon_info = PEER.with(|p| p as *mut remot_info) };
        wifi_sys::ESPCONN_OK
    }
}

emulate! {
    /// Connections a server accepts at once (the scripted client opens one at a time anyway).
    fn espconn_tcp_set_max_con_allow(espconn: *mut espconn, num: u8) -> i8 {
        if espconn.is_null() || num == 0 {
            return wifi_sys::ESPCONN_ARG;
        }
        say!("net: at most {num} tcp connection(s)");
        wifi_sys::ESPCONN_OK
    }
}
