//! The emulator's end of the espconn bridge (`xtask/src/bridge.rs` is the host's).
//!
//! Two FIFOs in QEMU's working directory, opened through semihosting: frames go up
//! (`bridge-up`) and come down (`bridge-down`), each a 20-byte header of five little-endian
//! words (kind, connection, a, b, payload length) and the payload padded to 4 bytes. The
//! espconn model ([`crate::net`]) is the only user; the firmware never sees any of this.
//!
//! While bridged the emulator's clock is the host's (asked for with a `TIME` frame), and the
//! event loop waits on `bridge-down` (`select_one`) until a frame comes or the next timer is
//! due, so the emulated CPU idles instead of spinning.

use crate::scheduler::Global;
use crate::semihosting::{self, say};

#[path = "bridge_protocol.rs"]
mod protocol;
pub use protocol::{HEADER, MAX_PAYLOAD, down, up};

/// One frame received.
pub struct Frame {
    pub kind: u32,
    pub conn: u32,
    pub a: u32,
    pub b: u32,
    pub len: usize,
    pub payload: [u8; MAX_PAYLOAD],
}

struct Fifos {
    up: Option<u32>,
    down: Option<u32>,
}

static FIFOS: Global<Fifos> = Global::new(Fifos {
    up: None,
    down: None,
});

/// Frames read ahead while waiting for a `TIME` answer, kept for the event loop.
static PENDING: Global<heapless::Deque<Frame, 4>> = Global::new(heapless::Deque::new());

/// Opens the FIFOs (blocks until the host relay has its ends open). False if they are missing.
pub fn open() -> bool {
    let down = semihosting::open(c"bridge-down", 0);
    let up = semihosting::open(c"bridge-up", semihosting::O_WRONLY);
    let ok = up.is_some() && down.is_some();
    FIFOS.with(|f| {
        f.up = up;
        f.down = down;
    });
    if !ok {
        say!("bridge: the FIFOs bridge-up and bridge-down are missing: no host relay");
    }
    ok
}

/// Sends one frame up.
pub fn send(kind: u32, conn: u32, a: u32, b: u32, payload: &[u8]) {
    let Some(fd) = FIFOS.with(|f| f.up) else {
        return;
    };
    semihosting::write_all(
        fd,
        &protocol::header([kind, conn, a, b, payload.len() as u32]),
    );
    semihosting::write_all(fd, payload);
    semihosting::write_all(fd, &[0u8; 3][..protocol::padding(payload.len())]);
}

fn read_exact(fd: u32, buffer: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buffer.len() {
        match semihosting::read(fd, &mut buffer[done..]) {
            Some(0) | None => return false,
            Some(n) => done += n,
        }
    }
    true
}

/// Reads one frame from the FIFO (blocking). `None` when the relay is gone.
fn read_frame() -> Option<Frame> {
    let fd = FIFOS.with(|f| f.down)?;
    let mut header = [0u8; HEADER];
    if !read_exact(fd, &mut header) {
        return None;
    }
    let [kind, conn, a, b, len] = protocol::words(&header);
    let len = len as usize;
    if len > MAX_PAYLOAD {
        say!("bridge: a frame of {len} bytes from the relay: stopping");
        return None;
    }
    let mut frame = Frame {
        kind,
        conn,
        a,
        b,
        len,
        payload: [0; MAX_PAYLOAD],
    };
    let mut pad = [0u8; 3];
    if !read_exact(fd, &mut frame.payload[..len])
        || !read_exact(fd, &mut pad[..protocol::padding(len)])
    {
        return None;
    }
    Some(frame)
}

/// The host's clock, in microseconds since the relay started.
pub fn now_us() -> u64 {
    send(up::TIME, 0, 0, 0, &[]);
    loop {
        let Some(frame) = read_frame() else {
            semihosting::exit(crate::sdk::EXIT_IDLE);
        };
        if frame.kind == down::TIME {
            return u64::from(frame.a) | (u64::from(frame.b) << 32);
        }
        if !PENDING.with(|p| p.push_back(frame).is_ok()) {
            say!("bridge: too many frames read ahead while asking for the time");
        }
    }
}

/// The next frame: one read ahead, or one within `timeout_us`. `None` if none came.
pub fn next_frame(timeout_us: u64) -> Option<Frame> {
    if let Some(frame) = PENDING.with(|p| p.pop_front()) {
        return Some(frame);
    }
    let fd = FIFOS.with(|f| f.down)?;
    if !semihosting::wait_readable(fd, timeout_us) {
        return None;
    }
    match read_frame() {
        Some(frame) => Some(frame),
        None => {
            say!("bridge: the host relay closed the bridge");
            semihosting::exit(crate::sdk::EXIT_IDLE);
        }
    }
}

/// Whether frames wait in the read-ahead queue.
pub fn has_pending() -> bool {
    !PENDING.with(|p| p.is_empty())
}
