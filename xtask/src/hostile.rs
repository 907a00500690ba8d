//! Hostile HTTP clients over real sockets, for the host portal and for the firmware behind the
//! espconn bridge alike.
//!
//! Each case sends what a broken or malicious client would (malformed heads, oversize heads and
//! bodies, bad and contradictory lengths, request smuggling, a client that dribbles, one that
//! goes silent, one that hangs up in the middle of the answer) and checks the status it gets;
//! after every case a normal `GET /` must still be served. The firmware answers one
//! connection at a time and closes before its disconnect callback has run, so the follow-up
//! request may be turned away while the previous connection is still being torn down: it is
//! tried up to [`RETRIES`] times, and the retries are counted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Attempts of the follow-up `GET /`.
const RETRIES: usize = 3;

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
    for attempt in 0..RETRIES {
        summary.requests += 1;
        last = exchange(address, request.as_bytes(), Duration::from_secs(20))?;
        if status(&last) == "200" && last.contains("Garden") && last.ends_with("</html>") {
            if attempt > 0 {
                summary.retried += 1;
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
pub fn run(address: SocketAddr, host: &str, idle_timeout: Duration) -> Result<Summary, String> {
    let mut summary = Summary::default();
    let h = |request: &str| request.replace("{host}", host);
    let simple: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"GARBAGE\x00\x01\r\n\r\n".to_vec(), "400"),
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

    // A silent client is closed after the idle timeout; then the next one is served.
    let mut idle = connect(address, idle_timeout * 3)?;
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
    if started.elapsed() + Duration::from_millis(100) < idle_timeout {
        return Err(format!(
            "idle client: closed after {:?}, before the idle timeout {idle_timeout:?}",
            started.elapsed()
        ));
    }
    get_root(address, host, &mut summary).map_err(|e| format!("after an idle client: {e}"))?;
    summary.cases += 1;
    Ok(summary)
}
