//! Hostile HTTP clients over real sockets, for the host portal and for the firmware behind the
//! espconn bridge alike.
//!
//! Each case sends what a broken or malicious client would (malformed heads, oversize heads and
//! bodies, bad and contradictory lengths, request smuggling, a client that dribbles, one that
//! goes silent, one that hangs up in the middle of the answer) and checks the status it gets;
//! after every case a normal `GET /` must still be served. The lockout case holds the portal's
//! slots with a slowloris client and a flood of silent connections and requires a normal
//! `GET /` to be answered within the grace of `ramkey::portal::Admission`. The firmware
//! closes a connection before its disconnect callback has run, so a follow-up request may be
//! turned away while the previous connection is still being torn down: it is tried up to
//! [`RETRIES`] times, and the retries are counted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Attempts of the follow-up `GET /`.
const RETRIES: usize = 3;
/// How long the follow-up `GET /` may take in all, retries included: a phone's patience
/// (and the firmware's grace), so a case that holds the portal until a deadline fails.
const FOLLOW_UP: Duration = Duration::from_secs(3);
/// Silent connections the lockout case opens (a phone's speculative ones, many times over).
const IDLE_FLOOD: usize = 20;

/// The portal's deadlines in real time (the host portal's tests run its clock faster).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// `ramkey::portal::HEAD_DEADLINE_MS`.
    pub head_deadline: Duration,
    /// `ramkey::portal::GRACE_MS`.
    pub grace: Duration,
}

impl Timing {
    /// The deadlines of a portal whose clock runs `speed` times faster than real time.
    pub fn scaled(speed: u32) -> Timing {
        let ms = |v: u32| Duration::from_millis(u64::from(v / speed.max(1)));
        Timing {
            head_deadline: ms(ramkey::portal::HEAD_DEADLINE_MS),
            grace: ms(ramkey::portal::GRACE_MS),
        }
    }
}

/// What the run saw.
#[derive(Debug, Default)]
pub struct Summary {
    /// Cases passed.
    pub cases: usize,
    /// Follow-up requests that needed more than one attempt.
    pub retried: usize,
    /// Requests sent in all (for matching against the server's own record).
    pub requests: usize,
}

/// Sends `request`, reads until the server closes; the response as text.
pub fn exchange(address: SocketAddr, request: &[u8], timeout: Duration) -> Result<String, String> {
    let mut stream = connect(address, timeout)?;
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// A connection whose reads give up after `timeout`.
fn connect(address: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(address).map_err(|e| format!("connect to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// The status code of a response ("none" if it is too short to have one).
pub fn status(response: &str) -> &str {
    response.get(9..12).unwrap_or("none")
}

fn get_root(address: SocketAddr, host: &str, summary: &mut Summary) -> Result<(), String> {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let mut last = String::new();
    let started = Instant::now();
    for attempt in 0..RETRIES {
        summary.requests += 1;
        last = exchange(address, request.as_bytes(), Duration::from_secs(20))?;
        if status(&last) == "200" && last.contains("Garden") && last.ends_with("</html>") {
            if attempt > 0 {
                summary.retried += 1;
            }
            let took = started.elapsed();
            if took > FOLLOW_UP {
                return Err(format!(
                    "GET / was served only after {took:?} (more than {FOLLOW_UP:?})"
                ));
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Err(format!(
        "GET / was not served after {RETRIES} attempts; last answer:\n{last}"
    ))
}

/// Runs every case against the portal at `address`, which answers to `host`.
pub fn run(address: SocketAddr, host: &str, timing: &Timing) -> Result<Summary, String> {
    let mut summary = Summary::default();
    let h = |request: &str| request.replace("{host}", host);
    let simple: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"GARBAGE\x00\x01\r\n\r\n".to_vec(), "400"),
        ("an icon the browser asks for", h("GET /favicon.ico HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(), "204"),
        (
            "an absolute-form target",
            h("GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
            "200",
        ),
        (
            "a 12-digit length",
            h("POST /connect HTTP/1.1\r\nHost: {host}\r\nContent-Length: 000000000099999999999\r\n\r\n").into_bytes(),
            "413",
        ),
        ("unknown HTTP version", h("GET / HTTP/9.9\r\nHost: {host}\r\n\r\n").into_bytes(), "400"),
        (
            "3000-byte header",
            h(&format!("GET / HTTP/1.1\r\nHost: {{host}}\r\nX-Long: {}\r\n\r\n", "a".repeat(3000))).into_bytes(),
            "431",
        ),
        ("5000 bytes of 0xFF", vec![0xFF; 5000], "400"),
        (
            "a length that is not a number",
            h("POST /connect HTTP/1.1\r\nHost: {host}\r\nContent-Length: abc\r\n\r\n").into_bytes(),
            "400",
        ),
        (
            "POST without a length",
            h("POST /connect HTTP/1.1\r\nHost: {host}\r\n\r\nnet=x").into_bytes(),
            "411",
        ),
        (
            "smuggling: a length and chunked encoding",
            h("POST /connect HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").into_bytes(),
            "400",
        ),
        (
            "smuggling: two different lengths",
            h("POST /connect HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nnet=xyz").into_bytes(),
            "400",
        ),
    ];
    for (what, request, expected) in simple {
        summary.requests += 1;
        let response = exchange(address, &request, Duration::from_secs(20))?;
        if status(&response) != expected {
            return Err(format!("{what}: expected {expected}, got:\n{response}"));
        }
        get_root(address, host, &mut summary).map_err(|e| format!("after {what}: {e}"))?;
        summary.cases += 1;
    }

    // An oversize body is refused from its length, before it is sent.
    summary.requests += 1;
    let mut stream = connect(address, Duration::from_secs(20))?;
    stream
        .write_all(
            h("POST /connect HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100000\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    if status(&response) != "413" {
        return Err(format!("oversize body: expected 413, got:\n{response}"));
    }
    get_root(address, host, &mut summary).map_err(|e| format!("after the oversize body: {e}"))?;
    summary.cases += 1;

    // A client that dribbles its request a byte at a time is still answered.
    summary.requests += 1;
    let mut stream = connect(address, Duration::from_secs(20))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    for byte in h("GET /status HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes() {
        stream.write_all(&[*byte]).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    if status(&response) != "302" {
        return Err(format!("dribbled request: expected 302, got:\n{response}"));
    }
    get_root(address, host, &mut summary)
        .map_err(|e| format!("after the dribbled request: {e}"))?;
    summary.cases += 1;

    // A client that hangs up in the middle of the answer.
    summary.requests += 1;
    let mut stream = connect(address, Duration::from_secs(20))?;
    stream
        .write_all(h("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut first = [0u8; 100];
    stream
        .read_exact(&mut first)
        .map_err(|e| format!("mid-response close: {e}"))?;
    drop(stream);
    get_root(address, host, &mut summary)
        .map_err(|e| format!("after a mid-response close: {e}"))?;
    summary.cases += 1;

    // A silent client is closed at the head deadline, not before; then the next one is served.
    let head_deadline = timing.head_deadline;
    let mut idle = connect(address, head_deadline * 3)?;
    idle.write_all(b"GET / HTT").map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut rest = Vec::new();
    let n = idle
        .read_to_end(&mut rest)
        .map_err(|e| format!("idle client: {e}"))?;
    if n != 0 {
        return Err(format!(
            "idle client: the server answered an incomplete request: {}",
            String::from_utf8_lossy(&rest)
        ));
    }
    if started.elapsed() + Duration::from_millis(100) < head_deadline {
        return Err(format!(
            "idle client: closed after {:?}, before the head deadline {head_deadline:?}",
            started.elapsed()
        ));
    }
    get_root(address, host, &mut summary).map_err(|e| format!("after an idle client: {e}"))?;
    summary.cases += 1;

    lockout(address, host, timing, &mut summary)?;
    get_root(address, host, &mut summary).map_err(|e| format!("after the lockout: {e}"))?;
    summary.cases += 1;
    Ok(summary)
}

/// A slowloris client (a header byte every fifth of the head deadline) and [`IDLE_FLOOD`]
/// silent connections: a normal `GET /` must be answered within the grace, and the slowloris
/// closed at its head deadline however it dribbles.
pub fn lockout(
    address: SocketAddr,
    host: &str,
    timing: &Timing,
    summary: &mut Summary,
) -> Result<(), String> {
    let interval = timing.head_deadline / 5;
    let mut slow = connect(address, interval)?;
    slow.set_nodelay(true).map_err(|e| e.to_string())?;
    let opened = Instant::now();
    let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-Slow: ");
    let limit = timing.head_deadline * 3;
    let dribbler = std::thread::spawn(move || -> Result<Duration, String> {
        let mut bytes = head.into_bytes().into_iter().chain(std::iter::repeat(b'a'));
        let mut scratch = [0u8; 64];
        while opened.elapsed() < limit {
            let byte = bytes.next().unwrap_or(b'a');
            if slow.write_all(&[byte]).is_err() {
                return Ok(opened.elapsed());
            }
            // The read timeout is the pause between bytes; a close ends the wait early.
            match slow.read(&mut scratch) {
                Ok(0) => return Ok(opened.elapsed()),
                Ok(_) => return Err("the server answered an incomplete request".into()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Ok(opened.elapsed()),
            }
        }
        Err(format!("still open after {limit:?}"))
    });
    // The slowloris goes first, then the flood (the device may reset some of it at once).
    std::thread::sleep(interval / 2);
    let flood: Vec<TcpStream> = (0..IDLE_FLOOD)
        .filter_map(|_| TcpStream::connect(address).ok())
        .collect();
    std::thread::sleep(interval / 4);
    summary.requests += 1;
    let started = Instant::now();
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let response = exchange(address, request.as_bytes(), Duration::from_secs(20))?;
    let took = started.elapsed();
    drop(flood);
    if status(&response) != "200" || !response.ends_with("</html>") {
        return Err(format!(
            "lockout: GET / beside a slowloris and {IDLE_FLOOD} silent connections got:\n{response}"
        ));
    }
    if took > timing.grace {
        return Err(format!(
            "lockout: GET / took {took:?}, more than the grace {:?}",
            timing.grace
        ));
    }
    let closed = dribbler
        .join()
        .map_err(|_| "the slowloris thread panicked".to_owned())?
        .map_err(|e| format!("lockout: slowloris: {e}"))?;
    let latest = timing.head_deadline + timing.grace;
    if closed + interval < timing.head_deadline || closed > latest {
        return Err(format!(
            "lockout: the slowloris was closed after {closed:?}; expected between the head \
             deadline {:?} and {latest:?}",
            timing.head_deadline
        ));
    }
    Ok(())
}
