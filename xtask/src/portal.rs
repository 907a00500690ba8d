//! `cargo xtask portal`: the setup portal served on 127.0.0.1 from a scripted world.
//!
//! A small std adapter around `ramkey::portal`, the same core the device drives from espconn
//! callbacks: one thread polls non-blocking sockets; `Admission` decides which connections
//! get its [`SLOTS`] slots (a newcomer takes over a silent one, or one that has not completed
//! its request within the grace) and when one is past its deadline; the bytes of each read go
//! to `Portal::receive_streamed`, the response is written a segment at a time as the device
//! does, the connection closed. Instead of a radio it has a script: a scan list and the
//! networks' passphrases. A connection test succeeds when the PSK derived from the submitted
//! passphrase equals the one derived from the script's, and its outcome shows on the status
//! page after [`TEST_DURATION`], as the device's would after a real attempt.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ramkey::portal::{
    Admission, Admit, ConnectKey, ConnectRequest, Failure, Network, Portal, PortalConfig,
    RequestBuffer, Response, SLOTS, Security, SetupStatus, Streamed,
};
use ramkey::rtc_record::Ssid;
use ramkey::secret::{Passphrase, Psk};

/// How long a scripted connection test takes.
pub const TEST_DURATION: Duration = Duration::from_millis(1500);
/// Bytes written per piece of a response (one TCP segment, as on the device).
const SEGMENT: usize = 1460;
/// The address a successful test "gets".
pub const CONNECTED_IP: [u8; 4] = [192, 168, 1, 57];

/// One scripted access point.
struct ScriptedNetwork {
    ssid: &'static [u8],
    rssi: i8,
    /// `None`: open.
    passphrase: Option<&'static str>,
    /// Never answers: the test times out.
    silent: bool,
}

/// The world the host portal sees: a duplicate (merged by the scan list), an open network, a
/// hostile name, and one that never answers.
const WORLD: [ScriptedNetwork; 6] = [
    ScriptedNetwork {
        ssid: b"Garden",
        rssi: -48,
        passphrase: Some("correct horse battery"),
        silent: false,
    },
    ScriptedNetwork {
        ssid: b"Cafe Guest",
        rssi: -60,
        passphrase: None,
        silent: false,
    },
    ScriptedNetwork {
        ssid: b"Neighbour",
        rssi: -71,
        passphrase: Some("not yours at all"),
        silent: false,
    },
    ScriptedNetwork {
        ssid: b"Garden",
        rssi: -80,
        passphrase: Some("correct horse battery"),
        silent: false,
    },
    ScriptedNetwork {
        ssid: b"<b>&\"x\"",
        rssi: -85,
        passphrase: Some("escaped properly"),
        silent: false,
    },
    ScriptedNetwork {
        ssid: b"Shed",
        rssi: -88,
        passphrase: Some("far away shed"),
        silent: true,
    },
];

/// The same world for the firmware under QEMU (`cargo xtask run --bridge`, the bridged
/// tests): the emulated access points, with the PSK each accepts derived on the host, the
/// connected address [`CONNECTED_IP`], the silent one silent.
pub fn emulated_world() -> Vec<crate::qemu::ScriptedNetwork> {
    WORLD
        .iter()
        .enumerate()
        .map(|(i, network)| crate::qemu::ScriptedNetwork {
            ssid: network.ssid.to_vec(),
            psk: network.passphrase.and_then(|p| {
                let passphrase = Passphrase::new(p.as_bytes()).ok()?;
                psk(&passphrase, network.ssid).map(|k| *k.expose_secret())
            }),
            passphrase: network
                .passphrase
                .map(|p| p.as_bytes().to_vec())
                .unwrap_or_default(),
            channel: 6,
            bssid: [0x02, 0x52, 0x4B, 0, 1, i as u8],
            ip: CONNECTED_IP,
            silent: network.silent,
            rssi: network.rssi,
        })
        .collect()
}

/// Options of a host portal.
#[derive(Clone, Copy)]
pub struct Options {
    /// How much faster than real time the portal's clock runs (1 on the command line; the
    /// tests run the deadlines of [`ramkey::portal::Admission`] 25 times faster).
    pub speed: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { speed: 1 }
    }
}

/// An admitted connection.
struct Client {
    stream: TcpStream,
    request: RequestBuffer,
    /// The response being written and how many of its bytes are out.
    answer: Option<(Response, usize)>,
}

struct Server {
    portal: Portal,
    options: Options,
    started: Instant,
    admission: Admission<SLOTS>,
    slots: [Option<Client>; SLOTS],
    /// Answered connections, closed for writing, drained until the client closes or for 1 s:
    /// closing with unread bytes (a body the server refused) would reset the connection
    /// before the client reads the answer.
    closing: Vec<(TcpStream, Instant)>,
    /// The outcome of the running test and when it is due.
    pending: Option<(Instant, SetupStatus)>,
}

fn psk(passphrase: &Passphrase, ssid: &[u8]) -> Option<Psk> {
    Some(ramkey::psk::derive(passphrase, &Ssid::new(ssid).ok()?))
}

impl Server {
    fn new(options: Options, port: u16) -> Server {
        let mut portal = Portal::new(PortalConfig::new([127, 0, 0, 1], port, "ramkey-A1B2C3"));
        for network in &WORLD {
            if let Ok(ssid) = Ssid::new(network.ssid) {
                portal.scan_mut().add(Network {
                    ssid,
                    rssi: network.rssi,
                    security: if network.passphrase.is_some() {
                        Security::Secured
                    } else {
                        Security::Open
                    },
                    channel: 6,
                });
            }
        }
        Server {
            portal,
            options,
            started: Instant::now(),
            admission: Admission::new(),
            slots: [const { None }; SLOTS],
            closing: Vec::new(),
            pending: None,
        }
    }

    /// What the scripted world answers to a connection attempt.
    fn outcome(request: &ConnectRequest) -> SetupStatus {
        let ssid = request.ssid;
        let failed = |failure| SetupStatus::Failed { ssid, failure };
        let Some(network) = WORLD.iter().find(|n| n.ssid == request.ssid.as_bytes()) else {
            return failed(Failure::NotFound);
        };
        if network.silent {
            return failed(Failure::Timeout);
        }
        let accepted = match (&request.key, network.passphrase) {
            (ConnectKey::Open, None) => true,
            (ConnectKey::Passphrase(given), Some(expected)) => {
                let expected = Passphrase::new(expected.as_bytes()).ok();
                let want = expected.and_then(|e| psk(&e, network.ssid));
                want.is_some() && want == psk(given, network.ssid)
            }
            _ => false,
        };
        if accepted {
            SetupStatus::Connected {
                ssid,
                ip: CONNECTED_IP,
            }
        } else {
            failed(Failure::WrongPassphrase)
        }
    }

    fn update(&mut self) {
        if let Some((due, _)) = &self.pending
            && Instant::now() >= *due
            && let Some((_, status)) = self.pending.take()
        {
            self.portal.set_status(status);
        }
    }

    /// The portal's clock: milliseconds since start, times the speed.
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 * u64::from(self.options.speed)
    }

    /// Serves every connection, one poll round per millisecond, as the device's callbacks
    /// would: accept (admit, take over or refuse), read, answer, expire.
    fn run(mut self, listener: TcpListener) {
        let _ = listener.set_nonblocking(true);
        let mut chunk = [0u8; 1024];
        loop {
            self.update();
            let now = self.now_ms();
            while let Ok((stream, _)) = listener.accept() {
                let _ = stream.set_nonblocking(true);
                let client = Client {
                    stream,
                    request: RequestBuffer::new(),
                    answer: None,
                };
                match self.admission.open(now) {
                    Admit::Slot(i) => self.slots[i] = Some(client),
                    // The old connection is dropped: closed, with a reset if it sent bytes.
                    Admit::TakeOver(i) => self.slots[i] = Some(client),
                    Admit::Refuse => drop(client),
                }
            }
            for i in 0..SLOTS {
                self.step(i, now, &mut chunk);
            }
            while let Some((i, _)) = self.admission.poll(now) {
                self.slots[i] = None;
            }
            self.closing.retain_mut(|(stream, until)| {
                Instant::now() < *until
                    && match stream.read(&mut chunk) {
                        Ok(n) => n > 0,
                        Err(e) => e.kind() == ErrorKind::WouldBlock,
                    }
            });
            self.wait(&listener);
        }
    }

    /// Waits until a socket is ready or a deadline may be due (at most 20 ms, for the
    /// scripted test's outcome and the closing list), with poll(2) on every socket.
    fn wait(&self, listener: &TcpListener) {
        use std::os::fd::AsRawFd;
        let pollfd = |fd: i32, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let mut fds = vec![pollfd(listener.as_raw_fd(), libc::POLLIN)];
        for client in self.slots.iter().flatten() {
            let events = if client.answer.is_some() {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            fds.push(pollfd(client.stream.as_raw_fd(), events));
        }
        for (stream, _) in &self.closing {
            fds.push(pollfd(stream.as_raw_fd(), libc::POLLIN));
        }
        let now = self.now_ms();
        let speed = u64::from(self.options.speed.max(1));
        let until_deadline = self
            .admission
            .next_deadline()
            .map_or(20, |due| due.saturating_sub(now).div_ceil(speed));
        let timeout = until_deadline.clamp(1, 20) as i32;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures for the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
    }

    /// Reads from or writes to slot `i`'s connection.
    fn step(&mut self, i: usize, now: u64, chunk: &mut [u8]) {
        let Some(client) = self.slots[i].as_mut() else {
            return;
        };
        if client.answer.is_none() {
            let n = match client.stream.read(chunk) {
                Ok(0) => return self.drop_slot(i),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return self.drop_slot(i),
            };
            let response = match self
                .portal
                .receive_streamed(&mut client.request, &chunk[..n])
            {
                Streamed::Incomplete => {
                    let head = client.request.head_complete();
                    self.admission.received(i, now, head);
                    return;
                }
                Streamed::Respond(response) => response,
                Streamed::Connect(response, request) => {
                    self.pending =
                        Some((Instant::now() + TEST_DURATION, Server::outcome(&request)));
                    response
                }
            };
            self.admission.answering(i, now);
            client.answer = Some((response, 0));
        }
        // A segment at a time, as the device sends it.
        let Some((response, sent)) = client.answer.as_mut() else {
            return;
        };
        let mut segment = [0u8; SEGMENT];
        loop {
            let n = self.portal.read_response(response, *sent, &mut segment);
            if n == 0 {
                break;
            }
            match client.stream.write(&segment[..n]) {
                Ok(k) => *sent += k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return self.drop_slot(i),
            }
        }
        if let Some(client) = self.slots[i].take() {
            let _ = client.stream.shutdown(Shutdown::Write);
            self.closing
                .push((client.stream, Instant::now() + Duration::from_secs(1)));
        }
        self.admission.closed(i);
    }

    fn drop_slot(&mut self, i: usize) {
        self.slots[i] = None;
        self.admission.closed(i);
    }
}

/// Starts a host portal on 127.0.0.1:`port` (0: any free port) in a thread.
pub fn spawn(port: u16, options: Options) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || Server::new(options, address.port()).run(listener));
    Ok(address)
}

/// `cargo xtask portal [--port N]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let port = match args {
        [] => 8080,
        [flag, value] if flag == "--port" => {
            value.parse().map_err(|_| format!("bad port {value:?}"))?
        }
        _ => return Err("usage: cargo xtask portal [--port N]".to_owned()),
    };
    let address = spawn(port, Options::default())?;
    println!(
        "setup portal on http://{address}/ (scripted networks; the right passphrase for Garden is \"correct horse battery\"); Ctrl-C stops it"
    );
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    //! The hostile clients' cases (malformed, oversize, dribbled, idle) run against this
    //! portal in `cargo xtask test` ("host portal: hostile HTTP clients", `crate::hostile`);
    //! what is left here is what only a host portal does.
    use super::*;

    /// The deadlines 25 times faster: head 400 ms, grace 120 ms.
    const SPEED: u32 = 25;

    fn quick() -> SocketAddr {
        spawn(0, Options { speed: SPEED }).expect("listening")
    }

    fn exchange(address: SocketAddr, request: &[u8]) -> String {
        crate::hostile::exchange(address, request, Duration::from_secs(10)).expect("exchange")
    }

    use crate::hostile::status;

    #[test]
    fn an_incomplete_request_does_not_delay_the_next_and_ends_at_its_deadline() {
        let timing = crate::hostile::Timing::scaled(SPEED);
        let address = quick();
        let mut idle = TcpStream::connect(address).expect("connect");
        idle.write_all(b"GET / HTT").expect("partial");
        let started = Instant::now();
        let r = exchange(address, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(status(&r), "200", "served beside the incomplete request");
        let mut rest = Vec::new();
        idle.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = idle.read_to_end(&mut rest).unwrap_or(0);
        assert_eq!(n, 0, "nothing sent to an incomplete request");
        let closed = started.elapsed();
        assert!(
            closed + Duration::from_millis(50) >= timing.head_deadline,
            "closed after {closed:?}, before the head deadline"
        );
    }

    #[test]
    fn setup_flow_wrong_then_right() {
        let address = quick();
        let post = |pass: &str| {
            let body = format!("net=47617264656e&pass={pass}");
            format!(
                "POST /connect HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let status_page = || exchange(address, b"GET /status HTTP/1.1\r\n\r\n");
        assert_eq!(
            status(&exchange(address, post("wrong+horse+battery").as_bytes())),
            "303"
        );
        assert!(status_page().contains("Connecting to Garden"));
        std::thread::sleep(TEST_DURATION + Duration::from_millis(100));
        assert!(status_page().contains("refused the passphrase"));
        assert_eq!(
            status(&exchange(address, post("correct+horse+battery").as_bytes())),
            "303"
        );
        std::thread::sleep(TEST_DURATION + Duration::from_millis(100));
        assert!(status_page().contains("192.168.1.57"));
    }
}
