//! The espconn bridge's wire protocol: the one definition both ends use. The emulator
//! (`emu/src/bridge.rs`) and the host's relay (`xtask/src/bridge.rs`) include this file.
//!
//! A frame is a 20-byte header of five little-endian words (kind, connection, a, b, payload
//! length) and the payload, padded to 4 bytes. Plain constants only, so it builds for both
//! the lx106 (`no_std`) and the host.

/// Frames up, from the emulator.
pub mod up {
    /// Listen on TCP port `a`.
    pub const LISTEN_TCP: u32 = 1;
    /// Bind UDP port `a`.
    pub const LISTEN_UDP: u32 = 2;
    /// Send the payload on connection `conn`.
    pub const SEND: u32 = 3;
    /// Close connection `conn` after what was sent (FIN).
    pub const CLOSE: u32 = 4;
    /// Reset connection `conn`.
    pub const ABORT: u32 = 5;
    /// Send the payload from UDP port `a` to the peer known as remote port `b`.
    pub const SEND_TO: u32 = 6;
    /// Open connection `conn` to 127.0.0.1 port `b` (`a` is the address the firmware gave).
    pub const CONNECT: u32 = 7;
    /// Resolve the payload (a name); answer with request id `conn`.
    pub const RESOLVE: u32 = 8;
    /// The emulator can take `a` more bytes on connection `conn`.
    pub const CREDIT: u32 = 9;
    /// What time is it?
    pub const TIME: u32 = 10;
}

/// Frames down, to the emulator.
pub mod down {
    /// Connection `conn` accepted on local port `a` from remote port `b`.
    pub const ACCEPTED: u32 = 101;
    /// Bytes received on `conn`.
    pub const DATA: u32 = 102;
    /// The peer closed its sending side of `conn`.
    pub const FIN: u32 = 103;
    /// `conn` was reset or failed.
    pub const RST: u32 = 104;
    /// The host socket took `a` bytes of what was sent on `conn`.
    pub const SENT: u32 = 105;
    /// A datagram on UDP port `a` from remote port `b`.
    pub const DATAGRAM: u32 = 106;
    /// Connection `conn` opened by the firmware is up.
    pub const CONNECTED: u32 = 107;
    /// Connection `conn` opened by the firmware failed.
    pub const CONNECT_FAILED: u32 = 108;
    /// Name request `conn` resolved to address `a` (network byte order; 0: not found).
    pub const RESOLVED: u32 = 109;
    /// The time: `a` low and `b` high word of microseconds since the relay started.
    pub const TIME: u32 = 110;
}

/// Bytes of a frame header.
pub const HEADER: usize = 20;
/// Largest payload either side sends.
pub const MAX_PAYLOAD: usize = 1460;

/// A frame's header: kind, connection, a, b and the payload's length.
pub fn header(words: [u32; 5]) -> [u8; HEADER] {
    let mut bytes = [0u8; HEADER];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

/// The five words of a header, in [`header`]'s order.
pub fn words(header: &[u8; HEADER]) -> [u32; 5] {
    let mut words = [0u32; 5];
    for (word, chunk) in words.iter_mut().zip(header.chunks_exact(4)) {
        *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    words
}

/// Zero bytes after a payload of `len` bytes, so the next header starts on a word.
pub const fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}
