//! `cargo xtask portal`: the setup portal served on 127.0.0.1 from a scripted world.
//!
//! A small std adapter around `ramkey::portal`, the same core the device drives from espconn
//! callbacks: one connection at a time (others wait in the listen queue), a read timeout
//! of `IDLE_TIMEOUT_MS`, the bytes of each read handed to `Portal::receive_streamed`, the
//! response written a segment at a time as the device does, the connection closed. Instead of a radio it has a script: a scan list and the
//! networks' passphrases. A connection test succeeds when the PSK derived from the submitted
//! passphrase equals the one derived from the script's, and its outcome shows on the status
//! page after [`TEST_DURATION`], as the device's would after a real attempt.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ramkey::portal::{
    ConnectKey, ConnectRequest, Failure, IDLE_TIMEOUT_MS, Network, Portal, PortalConfig,
    RequestBuffer, Security, SetupStatus, Streamed,
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
    /// How long a connection may stay silent before the server closes it.
    pub idle_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            idle_timeout: Duration::from_millis(u64::from(IDLE_TIMEOUT_MS)),
        }
    }
}

struct Server {
    portal: Portal,
    options: Options,
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

    /// Serves one connection to its end.
    fn serve(&mut self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(self.options.idle_timeout));
        let mut request = RequestBuffer::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return, // closed by the client, idle, or broken
                Ok(n) => n,
            };
            self.update();
            let response = match self.portal.receive_streamed(&mut request, &chunk[..n]) {
                Streamed::Incomplete => continue,
                Streamed::Respond(response) => response,
                Streamed::Connect(response, request) => {
                    self.pending =
                        Some((Instant::now() + TEST_DURATION, Server::outcome(&request)));
                    response
                }
            };
            // A segment at a time, as the device sends it.
            let mut segment = [0u8; SEGMENT];
            let mut sent = 0;
            loop {
                let n = self.portal.read_response(&response, sent, &mut segment);
                if n == 0 || stream.write_all(&segment[..n]).is_err() {
                    break;
                }
                sent += n;
            }
            break;
        }
        // Close gently: the client may still be sending (a body the server refused), and
        // closing with unread bytes would reset the connection before it reads the answer.
        let _ = stream.shutdown(Shutdown::Write);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline && matches!(stream.read(&mut chunk), Ok(n) if n > 0) {}
    }
}

/// Starts a host portal on 127.0.0.1:`port` (0: any free port) in a thread.
pub fn spawn(port: u16, options: Options) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut server = Server::new(options, address.port());
        for stream in listener.incoming().flatten() {
            server.serve(stream);
        }
    });
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

    fn quick() -> SocketAddr {
        spawn(
            0,
            Options {
                idle_timeout: Duration::from_millis(400),
            },
        )
        .expect("listening")
    }

    fn exchange(address: SocketAddr, request: &[u8]) -> String {
        crate::hostile::exchange(address, request, Duration::from_secs(10)).expect("exchange")
    }

    use crate::hostile::status;

    #[test]
    fn idle_connection_is_closed_and_the_next_one_served() {
        let address = quick();
        let mut idle = TcpStream::connect(address).expect("connect");
        idle.write_all(b"GET / HTT").expect("partial");
        // A second connection waits until the first is done, then is served.
        let started = Instant::now();
        let second = std::thread::spawn(move || exchange(address, b"GET / HTTP/1.1\r\n\r\n"));
        let mut rest = Vec::new();
        idle.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = idle.read_to_end(&mut rest).expect("closed by the server");
        assert_eq!(n, 0, "nothing sent to an incomplete request");
        assert!(
            started.elapsed() >= Duration::from_millis(350),
            "closed only after the idle timeout"
        );
        let r = second.join().expect("second");
        assert_eq!(status(&r), "200");
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
