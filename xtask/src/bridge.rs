//! The espconn bridge: the emulated SDK's network on real sockets of the host's loopback.
//!
//! QEMU's semihosting gives the emulator file I/O and a `select`-style wait on one file
//! descriptor, nothing else. The bridge is two FIFOs in QEMU's working directory and this
//! relay on the host side:
//!
//! - `bridge-up` carries frames from the emulator: listen on a TCP or UDP port, send on a
//!   connection, close or abort it, open a connection, resolve a name, grant receive credit,
//!   ask for the time;
//! - `bridge-down` carries frames to it: a connection accepted, data as the host's `read()`
//!   returned it, FIN, RST, bytes the host socket took, a datagram, a connection made or
//!   failed, a name resolved, the time.
//!
//! Every frame is a 20-byte header of five little-endian words (kind, connection, a, b, payload
//! length) and the payload padded to 4 bytes (`emu/src/bridge.rs` is the other end). TCP
//! servers the firmware starts listen on 127.0.0.1 at the port the port map gives (0: any free
//! one; the relay says which); UDP likewise; connections the firmware opens reach 127.0.0.1 at
//! the port it asked for, whatever address it gave, and every name resolves to 127.0.0.1.
//! Nothing here decides how espconn behaves: the emulator models lwIP's windows and buffers
//! and tells the relay how many bytes it may deliver on each connection (credit), so a flood
//! meets the same back-pressure as on the chip: the relay stops reading the socket.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

#[path = "../../emu/src/bridge_protocol.rs"]
mod protocol;
pub use protocol::{HEADER, MAX_PAYLOAD, down, up};

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What it is (`up::*` or `down::*`).
    pub kind: u32,
    /// The connection (or request) it is about.
    pub conn: u32,
    /// First argument.
    pub a: u32,
    /// Second argument.
    pub b: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Frame {
    fn new(kind: u32, conn: u32, a: u32, b: u32, payload: &[u8]) -> Frame {
        Frame {
            kind,
            conn,
            a,
            b,
            payload: payload.to_vec(),
        }
    }

    /// The frame as bytes on the FIFO.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = protocol::header([
            self.kind,
            self.conn,
            self.a,
            self.b,
            self.payload.len() as u32,
        ])
        .to_vec();
        bytes.extend_from_slice(&self.payload);
        bytes.resize(bytes.len() + protocol::padding(self.payload.len()), 0);
        bytes
    }

    /// Reads one frame; `None` at the end of the stream.
    pub fn read(from: &mut impl Read) -> std::io::Result<Option<Frame>> {
        let mut header = [0u8; HEADER];
        match from.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let [kind, conn, a, b, len] = protocol::words(&header);
        let len = len as usize;
        if len > MAX_PAYLOAD.max(256) {
            return Err(std::io::Error::other(format!(
                "frame payload of {len} bytes"
            )));
        }
        let mut payload = vec![0u8; len + protocol::padding(len)];
        from.read_exact(&mut payload)?;
        payload.truncate(len);
        Ok(Some(Frame {
            kind,
            conn,
            a,
            b,
            payload,
        }))
    }
}

/// Which host port each firmware port gets (`80 -> 8080`); unmapped ports get a free one.
#[derive(Clone, Debug, Default)]
pub struct PortMap {
    /// TCP: firmware port -> host port (0: any free port).
    pub tcp: HashMap<u16, u16>,
    /// UDP: firmware port -> host port (0: any free port).
    pub udp: HashMap<u16, u16>,
}

/// What the relay has opened, for tests and for the person at the console.
#[derive(Clone, Debug, Default)]
pub struct Bound {
    /// Firmware TCP port -> the host address serving it.
    pub tcp: HashMap<u16, SocketAddr>,
    /// Firmware UDP port -> the host address serving it.
    pub udp: HashMap<u16, SocketAddr>,
}

/// Per connection: how many bytes the emulator still takes (its receive window), and whether
/// the relay should stop.
struct Credit {
    bytes: Mutex<(usize, bool)>,
    changed: Condvar,
}

struct Shared {
    down: Mutex<std::fs::File>,
    credits: Mutex<HashMap<u32, Arc<Credit>>>,
    writers: Mutex<HashMap<u32, Sender<Option<Vec<u8>>>>>,
    streams: Mutex<HashMap<u32, TcpStream>>,
    udp: Mutex<HashMap<u16, Arc<UdpSocket>>>,
    /// (firmware UDP port, virtual remote port) -> the real peer.
    peers: Mutex<HashMap<(u16, u16), SocketAddr>>,
    bound: Mutex<Bound>,
    next_conn: Mutex<u32>,
    started: Instant,
    ports: PortMap,
    log: Mutex<Vec<String>>,
}

impl Shared {
    fn send(&self, frame: Frame) {
        if let Ok(mut down) = self.down.lock() {
            let _ = down.write_all(&frame.encode());
            let _ = down.flush();
        }
    }

    fn note(&self, line: String) {
        if let Ok(mut log) = self.log.lock() {
            log.push(line);
        }
    }

    fn conn_id(&self) -> u32 {
        let mut next = self.next_conn.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        *next
    }
}

/// A running relay.
pub struct Relay {
    shared: Arc<Shared>,
}

impl Relay {
    /// The sockets opened so far.
    pub fn bound(&self) -> Bound {
        self.shared
            .bound
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default()
    }

    /// What the relay did (connections, refusals), for test failures.
    pub fn log(&self) -> Vec<String> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Waits until the firmware listens on TCP port `port` (or `timeout` passes).
    pub fn wait_for_tcp(&self, port: u16, timeout: std::time::Duration) -> Option<SocketAddr> {
        self.wait_for(timeout, |bound| bound.tcp.get(&port).copied())
    }

    /// Waits until the firmware binds UDP port `port`.
    pub fn wait_for_udp(&self, port: u16, timeout: std::time::Duration) -> Option<SocketAddr> {
        self.wait_for(timeout, |bound| bound.udp.get(&port).copied())
    }

    fn wait_for(
        &self,
        timeout: std::time::Duration,
        find: impl Fn(&Bound) -> Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(address) = find(&self.bound()) {
                return Some(address);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

/// Creates the two FIFOs in `dir` (fresh ones).
pub fn make_fifos(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let up = dir.join("bridge-up");
    let down = dir.join("bridge-down");
    for fifo in [&up, &down] {
        let _ = std::fs::remove_file(fifo);
        crate::util::run(std::process::Command::new("mkfifo").arg(fifo))?;
    }
    Ok((up, down))
}

/// Starts the relay for the FIFOs in `dir` (QEMU's working directory). The FIFOs are opened
/// in the background: each open blocks until QEMU opens the other end.
pub fn start(dir: &Path, ports: PortMap) -> Result<Relay, String> {
    let (up_path, down_path) = make_fifos(dir)?;
    // Opening the writing end blocks until QEMU opens it for reading: do it on a thread and
    // hand the file over when it is open.
    let (down_tx, down_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = down_tx.send(std::fs::OpenOptions::new().write(true).open(&down_path));
    });
    let placeholder = null_sink()?;
    let shared = Arc::new(Shared {
        down: Mutex::new(placeholder),
        credits: Mutex::new(HashMap::new()),
        writers: Mutex::new(HashMap::new()),
        streams: Mutex::new(HashMap::new()),
        udp: Mutex::new(HashMap::new()),
        peers: Mutex::new(HashMap::new()),
        bound: Mutex::new(Bound::default()),
        next_conn: Mutex::new(0),
        started: Instant::now(),
        ports,
        log: Mutex::new(Vec::new()),
    });
    let relay_shared = Arc::clone(&shared);
    std::thread::spawn(move || {
        let Ok(Ok(down)) = down_rx.recv() else {
            return;
        };
        if let Ok(mut slot) = relay_shared.down.lock() {
            *slot = down;
        }
        let Ok(mut up) = std::fs::File::open(&up_path) else {
            return;
        };
        while let Ok(Some(frame)) = Frame::read(&mut up) {
            handle(&relay_shared, frame);
        }
        // The emulator is gone: stop every connection's reader.
        if let Ok(credits) = relay_shared.credits.lock() {
            for credit in credits.values() {
                if let Ok(mut c) = credit.bytes.lock() {
                    c.1 = true;
                }
                credit.changed.notify_all();
            }
        }
        if let Ok(streams) = relay_shared.streams.lock() {
            for stream in streams.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    });
    Ok(Relay { shared })
}

/// Where frames go until QEMU has opened its end (nothing is sent before it asks).
fn null_sink() -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| e.to_string())
}

fn handle(shared: &Arc<Shared>, frame: Frame) {
    match frame.kind {
        up::TIME => {
            let micros = shared.started.elapsed().as_micros() as u64;
            shared.send(Frame::new(
                down::TIME,
                0,
                micros as u32,
                (micros >> 32) as u32,
                &[],
            ));
        }
        up::LISTEN_TCP => listen_tcp(shared, frame.a as u16),
        up::LISTEN_UDP => listen_udp(shared, frame.a as u16),
        up::CREDIT => {
            let credit = shared
                .credits
                .lock()
                .ok()
                .and_then(|c| c.get(&frame.conn).cloned());
            if let Some(credit) = credit {
                if let Ok(mut c) = credit.bytes.lock() {
                    c.0 = c.0.saturating_add(frame.a as usize);
                }
                credit.changed.notify_all();
            }
        }
        up::SEND => {
            let writer = shared
                .writers
                .lock()
                .ok()
                .and_then(|w| w.get(&frame.conn).cloned());
            match writer {
                Some(writer) => {
                    let _ = writer.send(Some(frame.payload));
                }
                None => shared.send(Frame::new(down::RST, frame.conn, 0, 0, &[])),
            }
        }
        up::CLOSE => {
            let writer = shared
                .writers
                .lock()
                .ok()
                .and_then(|mut w| w.remove(&frame.conn));
            if let Some(writer) = writer {
                // After what is queued: the writer thread shuts the socket down.
                let _ = writer.send(None);
            }
            stop_reader(shared, frame.conn);
        }
        up::ABORT => {
            let stream = shared
                .streams
                .lock()
                .ok()
                .and_then(|mut s| s.remove(&frame.conn));
            if let Some(stream) = stream {
                abort(&stream);
            }
            if let Ok(mut writers) = shared.writers.lock() {
                writers.remove(&frame.conn);
            }
            stop_reader(shared, frame.conn);
        }
        up::SEND_TO => {
            let local = frame.a as u16;
            // A reply goes to the peer that sent from that port; anything else is a service
            // the firmware addresses itself, which lives on the host's loopback (as every
            // name resolves there).
            let peer = shared
                .peers
                .lock()
                .ok()
                .and_then(|p| p.get(&(local, frame.b as u16)).copied())
                .or_else(|| Some(SocketAddr::from(([127, 0, 0, 1], frame.b as u16))));
            let socket = shared.udp.lock().ok().and_then(|u| u.get(&local).cloned());
            if let (Some(peer), Some(socket)) = (peer, socket) {
                let _ = socket.send_to(&frame.payload, peer);
            } else {
                shared.note(format!(
                    "udp:{local} -> remote port {}: no such peer, dropped",
                    frame.b
                ));
            }
        }
        up::CONNECT => connect(shared, frame.conn, frame.b as u16),
        up::RESOLVE => {
            // Every name is the host's loopback: the services a test starts live there.
            let name = String::from_utf8_lossy(&frame.payload).into_owned();
            shared.note(format!("resolve {name:?} -> 127.0.0.1"));
            let ip = u32::from_le_bytes([127, 0, 0, 1]);
            shared.send(Frame::new(down::RESOLVED, frame.conn, ip, 0, &[]));
        }
        other => shared.note(format!("unknown frame kind {other} from the emulator")),
    }
}

fn stop_reader(shared: &Arc<Shared>, conn: u32) {
    let credit = shared.credits.lock().ok().and_then(|mut c| c.remove(&conn));
    if let Some(credit) = credit {
        if let Ok(mut c) = credit.bytes.lock() {
            c.1 = true;
        }
        credit.changed.notify_all();
    }
}

/// Resets a connection: the peer gets an RST, not a FIN.
///
/// SO_LINGER 0 alone resets only when the last descriptor closes, and the reader and writer
/// threads hold clones; `shutdown` would send a FIN. Linux disconnects a TCP socket with an
/// RST when it is connected to an `AF_UNSPEC` address (connect(2)), whatever else holds it.
fn abort(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a live option value of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // SAFETY: a zeroed sockaddr with only its family set, of the size given.
    unsafe {
        let mut unspec: libc::sockaddr = std::mem::zeroed();
        unspec.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
        libc::connect(
            fd,
            &raw const unspec,
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        );
    }
    // Wakes this connection's reader and writer threads.
    let _ = stream.shutdown(Shutdown::Both);
}

fn listen_tcp(shared: &Arc<Shared>, port: u16) {
    let host_port = shared.ports.tcp.get(&port).copied().unwrap_or(0);
    let listener = match TcpListener::bind(("127.0.0.1", host_port)) {
        Ok(listener) => listener,
        Err(e) => {
            shared.note(format!(
                "tcp:{port}: cannot listen on 127.0.0.1:{host_port}: {e}"
            ));
            return;
        }
    };
    if let (Ok(address), Ok(mut bound)) = (listener.local_addr(), shared.bound.lock()) {
        bound.tcp.insert(port, address);
    }
    let shared = Arc::clone(shared);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let conn = shared.conn_id();
            let remote = stream.peer_addr().map(|a| a.port()).unwrap_or(0);
            shared.note(format!("tcp:{port}: connection {conn} from port {remote}"));
            start_connection(&shared, conn, stream);
            shared.send(Frame::new(
                down::ACCEPTED,
                conn,
                u32::from(port),
                u32::from(remote),
                &[],
            ));
        }
    });
}

/// The reader (bytes as `read()` returns them, within the credit) and writer threads of one
/// connection.
fn start_connection(shared: &Arc<Shared>, conn: u32, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let credit = Arc::new(Credit {
        bytes: Mutex::new((0, false)),
        changed: Condvar::new(),
    });
    if let Ok(mut credits) = shared.credits.lock() {
        credits.insert(conn, Arc::clone(&credit));
    }
    if let (Ok(clone), Ok(mut streams)) = (stream.try_clone(), shared.streams.lock()) {
        streams.insert(conn, clone);
    }
    let (tx, rx) = mpsc::channel::<Option<Vec<u8>>>();
    if let Ok(mut writers) = shared.writers.lock() {
        writers.insert(conn, tx);
    }
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let writer_shared = Arc::clone(shared);
    std::thread::spawn(move || {
        while let Ok(message) = rx.recv() {
            match message {
                Some(bytes) => match writer.write_all(&bytes) {
                    Ok(()) => {
                        writer_shared.send(Frame::new(down::SENT, conn, bytes.len() as u32, 0, &[]))
                    }
                    Err(_) => {
                        writer_shared.send(Frame::new(down::RST, conn, 0, 0, &[]));
                        break;
                    }
                },
                None => {
                    let _ = writer.shutdown(Shutdown::Write);
                    break;
                }
            }
        }
    });
    let reader_shared = Arc::clone(shared);
    let mut reader = stream;
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; MAX_PAYLOAD];
        loop {
            // Wait for the emulator's window to open.
            let allowed = {
                let mut state = credit.bytes.lock().unwrap_or_else(|e| e.into_inner());
                while state.0 == 0 && !state.1 {
                    state = credit
                        .changed
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner());
                }
                if state.1 {
                    break;
                }
                state.0.min(MAX_PAYLOAD)
            };
            match reader.read(&mut buffer[..allowed]) {
                Ok(0) => {
                    reader_shared.send(Frame::new(down::FIN, conn, 0, 0, &[]));
                    break;
                }
                Ok(n) => {
                    if let Ok(mut state) = credit.bytes.lock() {
                        state.0 = state.0.saturating_sub(n);
                    }
                    reader_shared.send(Frame::new(down::DATA, conn, 0, 0, &buffer[..n]));
                }
                Err(_) => {
                    reader_shared.send(Frame::new(down::RST, conn, 0, 0, &[]));
                    break;
                }
            }
        }
    });
}

fn listen_udp(shared: &Arc<Shared>, port: u16) {
    let host_port = shared.ports.udp.get(&port).copied().unwrap_or(0);
    let socket = match UdpSocket::bind(("127.0.0.1", host_port)) {
        Ok(socket) => Arc::new(socket),
        Err(e) => {
            shared.note(format!(
                "udp:{port}: cannot bind 127.0.0.1:{host_port}: {e}"
            ));
            return;
        }
    };
    if let (Ok(address), Ok(mut bound)) = (socket.local_addr(), shared.bound.lock()) {
        bound.udp.insert(port, address);
    }
    if let Ok(mut udp) = shared.udp.lock() {
        udp.insert(port, Arc::clone(&socket));
    }
    let shared = Arc::clone(shared);
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 2048];
        while let Ok((n, peer)) = socket.recv_from(&mut buffer) {
            // The firmware sees the peer's real port; its address is the setup network's.
            let remote = peer.port();
            if let Ok(mut peers) = shared.peers.lock() {
                peers.insert((port, remote), peer);
            }
            let n = n.min(MAX_PAYLOAD);
            shared.send(Frame::new(
                down::DATAGRAM,
                0,
                u32::from(port),
                u32::from(remote),
                &buffer[..n],
            ));
        }
    });
}

fn connect(shared: &Arc<Shared>, conn: u32, port: u16) {
    let shared = Arc::clone(shared);
    std::thread::spawn(move || match TcpStream::connect(("127.0.0.1", port)) {
        Ok(stream) => {
            shared.note(format!("connection {conn} to 127.0.0.1:{port}"));
            start_connection(&shared, conn, stream);
            shared.send(Frame::new(down::CONNECTED, conn, 0, 0, &[]));
        }
        Err(e) => {
            shared.note(format!("connection {conn} to 127.0.0.1:{port} failed: {e}"));
            shared.send(Frame::new(down::CONNECT_FAILED, conn, 0, 0, &[]));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Plays the emulator's end of the FIFOs.
    struct Emulator {
        up: std::fs::File,
        down: mpsc::Receiver<Frame>,
        relay: Relay,
        _dir: PathBuf,
    }

    impl Emulator {
        fn start(name: &str) -> Emulator {
            let dir =
                std::env::temp_dir().join(format!("ramkey-relay-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            let relay = start(&dir, PortMap::default()).expect("relay");
            let mut down_file = std::fs::File::open(dir.join("bridge-down")).expect("down");
            let up = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("bridge-up"))
                .expect("up");
            let (tx, down) = mpsc::channel();
            std::thread::spawn(move || {
                while let Ok(Some(frame)) = Frame::read(&mut down_file) {
                    if tx.send(frame).is_err() {
                        break;
                    }
                }
            });
            Emulator {
                up,
                down,
                relay,
                _dir: dir,
            }
        }

        fn send(&mut self, kind: u32, conn: u32, a: u32, b: u32, payload: &[u8]) {
            self.up
                .write_all(&Frame::new(kind, conn, a, b, payload).encode())
                .expect("up frame");
        }

        /// The next frame that is not a time answer.
        fn expect(&self, kind: u32) -> Frame {
            let frame = self
                .down
                .recv_timeout(Duration::from_secs(5))
                .expect("a frame from the relay");
            assert_eq!(frame.kind, kind, "got {frame:?}");
            frame
        }

        fn quiet(&self) -> bool {
            self.down.recv_timeout(Duration::from_millis(300)).is_err()
        }
    }

    #[test]
    fn the_firmwares_own_connections_reach_host_services() {
        let mut emu = Emulator::start("out");
        // A name resolves to the loopback, where the services of a test live.
        emu.send(up::RESOLVE, 9, 0, 0, b"broker.lan");
        let resolved = emu.expect(down::RESOLVED);
        assert_eq!(
            (resolved.conn, resolved.a.to_le_bytes()),
            (9, [127, 0, 0, 1])
        );
        // TCP out: connect, send, receive, and the service's close arrives as FIN.
        let service = TcpListener::bind("127.0.0.1:0").expect("service");
        let port = service.local_addr().expect("address").port();
        emu.send(up::CONNECT, 1, 0, u32::from(port), &[]);
        assert_eq!(emu.expect(down::CONNECTED).conn, 1);
        let (mut peer, _) = service.accept().expect("accepted");
        emu.send(up::CREDIT, 1, 5840, 0, &[]);
        emu.send(up::SEND, 1, 0, 0, b"hello broker");
        let mut got = [0u8; 12];
        peer.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello broker");
        assert_eq!(emu.expect(down::SENT).a, 12);
        peer.write_all(b"hi device").expect("write");
        let data = emu.expect(down::DATA);
        assert_eq!((data.conn, &data.payload[..]), (1, &b"hi device"[..]));
        drop(peer);
        assert_eq!(emu.expect(down::FIN).conn, 1);
        // Nothing listens there: a refused connection is reported, not hung.
        drop(service);
        emu.send(up::CONNECT, 2, 0, u32::from(port), &[]);
        assert_eq!(emu.expect(down::CONNECT_FAILED).conn, 2);
        // UDP out from a bound port to a host service, and its reply back.
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp service");
        udp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let udp_port = udp.local_addr().expect("address").port();
        emu.send(up::LISTEN_UDP, 0, 5000, 0, &[]);
        assert!(
            (0..250).any(|_| {
                std::thread::sleep(Duration::from_millis(20));
                emu.relay.bound().udp.contains_key(&5000)
            }),
            "udp:5000 never bound"
        );
        emu.send(up::SEND_TO, 0, 5000, u32::from(udp_port), b"reading 21.5");
        let mut buffer = [0u8; 64];
        let (n, from) = udp.recv_from(&mut buffer).expect("datagram");
        assert_eq!(&buffer[..n], b"reading 21.5");
        udp.send_to(b"ack", from).expect("reply");
        let datagram = emu.expect(down::DATAGRAM);
        assert_eq!(
            (datagram.a, datagram.b, &datagram.payload[..]),
            (5000, u32::from(udp_port), &b"ack"[..])
        );
    }

    #[test]
    fn a_flood_gets_no_further_than_the_credit() {
        let mut emu = Emulator::start("credit");
        emu.send(up::LISTEN_TCP, 0, 80, 0, &[]);
        let address = (0..250)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                emu.relay.bound().tcp.get(&80).copied()
            })
            .expect("tcp:80 bound");
        let mut client = TcpStream::connect(address).expect("connect");
        let accepted = emu.expect(down::ACCEPTED);
        assert_eq!(accepted.a, 80);
        let flooder = std::thread::spawn(move || {
            let _ = client.write_all(&vec![b'x'; 20_000]);
            client
        });
        // Without credit nothing is delivered; with 1000 bytes of it, at most 1000 arrive.
        assert!(emu.quiet(), "data delivered without credit");
        emu.send(up::CREDIT, accepted.conn, 1000, 0, &[]);
        let mut delivered = 0;
        while delivered < 1000 {
            delivered += emu.expect(down::DATA).payload.len();
        }
        assert_eq!(delivered, 1000);
        assert!(emu.quiet(), "more than the credit delivered");
        // The window reopens: the rest follows.
        emu.send(up::CREDIT, accepted.conn, 19_000, 0, &[]);
        while delivered < 20_000 {
            delivered += emu.expect(down::DATA).payload.len();
        }
        assert_eq!(delivered, 20_000);
        // A reset from the firmware's side reaches the client as one.
        emu.send(up::ABORT, accepted.conn, 0, 0, &[]);
        let mut client = flooder.join().expect("flooder");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        let error = client
            .read(&mut byte)
            .expect_err("a reset, not an orderly end");
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn frames_round_trip_and_pad_to_words() {
        let frame = Frame::new(down::DATA, 7, 1, 2, b"hello");
        let bytes = frame.encode();
        assert_eq!(bytes.len(), HEADER + 8);
        let back = Frame::read(&mut &bytes[..])
            .expect("read")
            .expect("a frame");
        assert_eq!(back, frame);
        assert_eq!(Frame::read(&mut &[][..]).expect("eof"), None);
        // A header announcing more than any side ever sends is an error, not an allocation.
        let mut huge = Frame::new(up::SEND, 1, 0, 0, &[]).encode();
        huge[16..20].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(Frame::read(&mut &huge[..]).is_err());
    }
}
