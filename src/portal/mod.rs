//! The setup portal: a sans-IO HTTP core that turns request bytes into response bytes.
//!
//! The device drives it from espconn callbacks (`src/firmware/setup.rs`), the host from a
//! `TcpListener` (`cargo xtask portal`); both hand it the bytes of one connection and send
//! back what it writes. It serves one self-contained page (scan list, passphrase, submit),
//! validates the form, answers captive-portal probes with redirects, and reports the
//! connection test on a status page that refreshes itself. The caller runs the test (see
//! [`Reply::Connect`]) and tells the portal the outcome with [`Portal::set_status`].
//!
//! Guarantees: no input makes it panic or write past the caller's buffer; a request line and
//! headers over [`MAX_HEAD`] get 431, a body over [`MAX_BODY`] 413, anything malformed 400.
//! Nothing of a passphrase is ever written into a response; the request bytes that carried
//! it are wiped ([`RequestBuffer`]) as soon as a response is ready, and the decoded copy is
//! wiped as soon as [`Passphrase`] has checked it.
//!
//! Must never: allocate, keep a passphrase, or trust the request's Host for anything but the
//! redirect decision.

mod admission;
mod form;
mod http;
mod page;

pub use admission::{
    ANSWER_DEADLINE_MS, Admission, Admit, BODY_DEADLINE_MS, Expired, GRACE_MS, HEAD_DEADLINE_MS,
    Phase, SLOTS,
};
pub use page::Response;

use zeroize::Zeroize;

use crate::rtc_record::Ssid;
use crate::secret::Passphrase;

/// Most bytes of a request line plus headers, including the blank line.
pub const MAX_HEAD: usize = 2048;
/// Most bytes of a request body.
pub const MAX_BODY: usize = 1024;
/// Most bytes of any HTML body the portal produces.
pub const MAX_PAGE: usize = 8192;
/// Bytes `out` must hold for every response: headers and body.
pub const RESPONSE_CAPACITY: usize = MAX_PAGE + 512;
/// Setup ends after this long without a successful connection test.
pub const SETUP_TIMEOUT_MS: u32 = 600_000;
/// While the scan list is empty, scan again this often.
pub const RESCAN_EMPTY_MS: u32 = 15_000;
/// Otherwise, scan again this often (a scan takes the radio off the AP's channel briefly).
pub const RESCAN_MS: u32 = 120_000;
/// Scan entries kept, strongest first.
pub const MAX_NETWORKS: usize = 16;

/// Whether a network needs a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// No key.
    Open,
    /// WEP, WPA or WPA2: a passphrase is needed.
    Secured,
}

/// One access point from a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// Its name (1 to 32 bytes, any bytes).
    pub ssid: Ssid,
    /// Signal strength in dBm.
    pub rssi: i8,
    /// Open or secured.
    pub security: Security,
    /// Its channel.
    pub channel: u8,
}

/// Scan results: one entry per SSID, strongest first, at most [`MAX_NETWORKS`].
#[derive(Clone, Debug, Default)]
pub struct ScanList {
    networks: heapless::Vec<Network, MAX_NETWORKS>,
}

impl ScanList {
    /// An empty list.
    pub const fn new() -> ScanList {
        ScanList {
            networks: heapless::Vec::new(),
        }
    }

    /// Adds one scan result. Hidden networks (empty SSID) are ignored; a second access point
    /// with the same SSID is merged into the first (strongest signal and its channel kept;
    /// secured if either is); when the list is full the weakest network gives way.
    pub fn add(&mut self, network: Network) {
        if network.ssid.is_empty() {
            return;
        }
        if let Some(known) = self
            .networks
            .iter_mut()
            .find(|n| n.ssid.as_bytes() == network.ssid.as_bytes())
        {
            if network.security == Security::Secured {
                known.security = Security::Secured;
            }
            if network.rssi > known.rssi {
                known.rssi = network.rssi;
                known.channel = network.channel;
            }
        } else if let Err(network) = self.networks.push(network) {
            // Full: the list is sorted, so the weakest is last.
            if let Some(weakest) = self.networks.last_mut()
                && network.rssi > weakest.rssi
            {
                *weakest = network;
            }
        }
        self.sort();
    }

    /// Strongest first (a stable insertion sort: the list is short and nearly sorted).
    fn sort(&mut self) {
        for i in 1..self.networks.len() {
            let mut j = i;
            while j > 0 && self.networks[j - 1].rssi < self.networks[j].rssi {
                self.networks.swap(j - 1, j);
                j -= 1;
            }
        }
    }

    /// The networks, strongest first.
    pub fn iter(&self) -> impl Iterator<Item = &Network> {
        self.networks.iter()
    }

    /// The network with this SSID, if the scan saw it.
    pub fn find(&self, ssid: &[u8]) -> Option<&Network> {
        self.networks.iter().find(|n| n.ssid.as_bytes() == ssid)
    }

    /// How many networks the list holds.
    pub fn len(&self) -> usize {
        self.networks.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Forgets every network (before a new scan's results).
    pub fn clear(&mut self) {
        self.networks.clear();
    }
}

/// Why a connection test failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The access point refused the key.
    WrongPassphrase,
    /// No access point with that name answered.
    NotFound,
    /// No answer in time.
    Timeout,
    /// Anything else (association refused, the SDK refused the settings, ...).
    Other,
}

impl Failure {
    /// Maps the SDK's station disconnect reason (`REASON_*`) to a failure: 2 (auth expired),
    /// 15 (4-way handshake timeout), 202 (auth failed) and 204 (handshake timeout) mean the
    /// key was wrong; 201 (no AP found) that the network was not found; anything else is
    /// [`Failure::Other`].
    pub fn from_disconnect_reason(reason: u8) -> Failure {
        match reason {
            2 | 15 | 202 | 204 => Failure::WrongPassphrase,
            201 => Failure::NotFound,
            _ => Failure::Other,
        }
    }
}

/// What the status page reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupStatus {
    /// No test yet: the status page redirects to the form.
    Idle,
    /// A test is running: the page refreshes itself.
    Connecting {
        /// The network being tried.
        ssid: Ssid,
    },
    /// The test succeeded; the device is about to restart in station mode.
    Connected {
        /// The network joined.
        ssid: Ssid,
        /// The address its DHCP server gave.
        ip: [u8; 4],
    },
    /// The test failed.
    Failed {
        /// The network tried.
        ssid: Ssid,
        /// Why.
        failure: Failure,
    },
}

/// What the portal needs to know about the device.
#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// The soft AP's address: probes and requests for other hosts redirect here.
    pub ap_ip: [u8; 4],
    /// The port the portal listens on (80 on the device; the host portal's own elsewhere).
    pub port: u16,
    /// The device's AP name (`ramkey-A1B2C3`), shown on the page.
    pub device_name: heapless::String<32>,
}

impl PortalConfig {
    /// A configuration; a device name over 32 bytes is cut at a character boundary.
    pub fn new(ap_ip: [u8; 4], port: u16, device_name: &str) -> PortalConfig {
        let mut name = heapless::String::new();
        for c in device_name.chars() {
            if name.push(c).is_err() {
                break;
            }
        }
        PortalConfig {
            ap_ip,
            port,
            device_name: name,
        }
    }
}

/// What the caller does with the connection after [`Portal::receive`].
// Returned by value from one call and matched at once (no allocator to box into).
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// Keep the connection open and wait for more bytes (nothing written).
    Incomplete,
    /// Send `out[..len]`, then close the connection.
    Respond {
        /// Bytes of the response.
        len: usize,
    },
    /// Send `out[..len]` (a redirect to the status page), close, and test `request`. The
    /// portal's status is already [`SetupStatus::Connecting`].
    Connect {
        /// Bytes of the response.
        len: usize,
        /// The network to try.
        request: ConnectRequest,
    },
}

/// What the caller does after [`Portal::receive_streamed`].
// Returned by value from one call and matched at once (no allocator to box into).
#[allow(clippy::large_enum_variant)]
pub enum Streamed {
    /// Keep the connection open and wait for more bytes.
    Incomplete,
    /// Send this response (in pieces: [`Portal::read_response`]), then close.
    Respond(Response),
    /// Send this response (a redirect to the status page), close, and test the request.
    /// The portal's status is already [`SetupStatus::Connecting`].
    Connect(Response, ConnectRequest),
}

/// A validated network choice, for the connection test.
pub struct ConnectRequest {
    /// The network's name (1 to 32 bytes).
    pub ssid: Ssid,
    /// Its key.
    pub key: ConnectKey,
    /// Where to report, if a broker was given.
    pub broker: Option<crate::settings::BrokerSettings>,
}

/// The key of a [`ConnectRequest`]. Not printable.
pub enum ConnectKey {
    /// The scan lists the network as open.
    Open,
    /// A valid WPA passphrase (or 64 hex digits).
    Passphrase(Passphrase),
}

/// The bytes of the one request being received. Wiped by [`clear`](RequestBuffer::clear)
/// and on drop, because a form body holds the passphrase.
pub struct RequestBuffer {
    bytes: [u8; MAX_HEAD + MAX_BODY],
    len: usize,
}

impl RequestBuffer {
    /// An empty buffer.
    pub const fn new() -> RequestBuffer {
        RequestBuffer {
            bytes: [0; MAX_HEAD + MAX_BODY],
            len: 0,
        }
    }

    /// Wipes and empties the buffer (for the next connection).
    pub fn clear(&mut self) {
        self.bytes.zeroize();
        self.len = 0;
    }

    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been received.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the bytes so far hold a whole request head (up to its blank line), for
    /// [`Admission::received`].
    pub fn head_complete(&self) -> bool {
        let bytes = self.as_bytes();
        bytes.windows(4).any(|w| w == b"\r\n\r\n") || bytes.windows(2).any(|w| w == b"\n\n")
    }

    /// Appends what fits; returns whether everything did.
    fn append(&mut self, bytes: &[u8]) -> bool {
        let room = self.bytes.len() - self.len;
        let take = bytes.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        take == bytes.len()
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for RequestBuffer {
    fn default() -> Self {
        RequestBuffer::new()
    }
}

impl Drop for RequestBuffer {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// The setup portal: its configuration, the scan list and the status of the last test.
pub struct Portal {
    config: PortalConfig,
    scan: ScanList,
    status: SetupStatus,
}

impl Portal {
    /// A portal with an empty scan list and no test yet.
    pub fn new(config: PortalConfig) -> Portal {
        Portal {
            config,
            scan: ScanList::new(),
            status: SetupStatus::Idle,
        }
    }

    /// The scan list, to fill from a scan.
    pub fn scan_mut(&mut self) -> &mut ScanList {
        &mut self.scan
    }

    /// The scan list.
    pub fn scan(&self) -> &ScanList {
        &self.scan
    }

    /// Reports a test's progress or outcome.
    pub fn set_status(&mut self, status: SetupStatus) {
        self.status = status;
    }

    /// The status the page shows.
    pub fn status(&self) -> &SetupStatus {
        &self.status
    }

    /// Appends `bytes` to `request` and, once a whole request is there (or it is too large or
    /// malformed), writes a complete HTTP/1.1 response into `out` (always `Connection: close`
    /// with a `Content-Length`) and wipes `request`.
    ///
    /// `out` should hold [`RESPONSE_CAPACITY`] bytes; with less, a page that does not fit is
    /// replaced by a short 500 response (or nothing, `len` 0, if even that does not fit).
    /// [`receive_streamed`](Portal::receive_streamed) needs no such buffer.
    pub fn receive(&mut self, request: &mut RequestBuffer, bytes: &[u8], out: &mut [u8]) -> Reply {
        match self.receive_streamed(request, bytes) {
            Streamed::Incomplete => Reply::Incomplete,
            Streamed::Respond(response) => Reply::Respond {
                len: response.write_all(&self.config, &self.scan, out),
            },
            Streamed::Connect(response, request) => Reply::Connect {
                len: response.write_all(&self.config, &self.scan, out),
                request,
            },
        }
    }

    /// Like [`receive`](Portal::receive), but returns the response as a [`Response`] to send
    /// in pieces with [`read_response`](Portal::read_response), so the caller needs no
    /// page-sized buffer. Between the pieces the scan list must not change (the status may:
    /// the response keeps its own copy).
    pub fn receive_streamed(&mut self, request: &mut RequestBuffer, bytes: &[u8]) -> Streamed {
        let complete = request.append(bytes);
        let reply = match http::parse(request.as_bytes(), complete) {
            http::Parsed::Incomplete => return Streamed::Incomplete,
            http::Parsed::Error(status) => Streamed::Respond(Response::error(status)),
            http::Parsed::Request(req) => self.route(&req),
        };
        request.clear();
        reply
    }

    /// Bytes `offset..offset + out.len()` of `response` into `out`; returns how many (0 once
    /// the whole response has been read).
    pub fn read_response(&self, response: &Response, offset: usize, out: &mut [u8]) -> usize {
        response.read_at(&self.config, &self.scan, offset, out)
    }

    /// Bytes of `response` in all.
    pub fn response_len(&self, response: &Response) -> usize {
        response.len(&self.config, &self.scan)
    }

    fn route(&mut self, req: &http::Request<'_>) -> Streamed {
        let head_only = req.method == http::Method::Head;
        if let Some(host) = req.host
            && !self.is_own_host(host)
        {
            return Streamed::Respond(Response::redirect_home(&self.config, head_only));
        }
        let path = req.path.split(|&b| b == b'?').next().unwrap_or_default();
        Streamed::Respond(match (req.method, path) {
            (http::Method::Post, b"/connect") => return self.connect(req.body),
            (http::Method::Post, _) => Response::error(http::Status::NotFound),
            // After a failed test ("Try again"), the form comes back with that network chosen.
            (_, b"/") => Response::form(
                match &self.status {
                    SetupStatus::Failed { ssid, .. } => {
                        form::Kept::retry(ssid.as_bytes(), &self.scan)
                    }
                    _ => form::Kept::none(),
                },
                None,
                head_only,
            ),
            // Icons browsers ask for by themselves: answered without a page (a redirect here
            // made every page load twice).
            (
                _,
                b"/favicon.ico" | b"/apple-touch-icon.png" | b"/apple-touch-icon-precomposed.png",
            ) => Response::empty(head_only),
            (_, b"/status") => match &self.status {
                SetupStatus::Idle => Response::redirect(b"/", http::Status::Found, head_only),
                status => Response::status(status.clone(), head_only),
            },
            // Probes (/generate_204, /hotspot-detect.html, /connecttest.txt, /ncsi.txt,
            // /success.txt, ...) and every other path: to the portal, so the phone opens it.
            _ => Response::redirect_home(&self.config, head_only),
        })
    }

    /// Whether `host` names this portal: its address, with or without its port.
    fn is_own_host(&self, host: &[u8]) -> bool {
        let mut own = heapless::String::<24>::new();
        let [a, b, c, d] = self.config.ap_ip;
        let port = self.config.port;
        let _ = core::fmt::write(&mut own, format_args!("{a}.{b}.{c}.{d}:{port}"));
        let (address, _) = own.split_once(':').unwrap_or((own.as_str(), ""));
        host == own.as_bytes() || host == address.as_bytes()
    }

    fn connect(&mut self, body: &[u8]) -> Streamed {
        let to_status = Response::redirect(b"/status", http::Status::SeeOther, false);
        if !matches!(self.status, SetupStatus::Idle | SetupStatus::Failed { .. }) {
            // A test is running or has succeeded: show it instead of starting another.
            return Streamed::Respond(to_status);
        }
        match form::validate(body, &self.scan) {
            Ok(request) => {
                self.status = SetupStatus::Connecting { ssid: request.ssid };
                Streamed::Connect(to_status, request)
            }
            Err((problem, kept)) => Streamed::Respond(Response::form(kept, Some(problem), false)),
        }
    }
}

/// What [`Session::poll`] says is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAction {
    /// Nothing.
    Nothing,
    /// [`SETUP_TIMEOUT_MS`] without a successful test: end setup (deep sleep).
    EndSetup,
}

/// The portal's scan schedule and its overall deadline, on a millisecond clock the caller
/// keeps (connections: [`Admission`]).
#[derive(Clone, Copy, Debug)]
pub struct Session {
    started_ms: u64,
    testing: bool,
    succeeded: bool,
    last_scan_ms: u64,
    rescan_requested: bool,
}

impl Session {
    /// A session starting at `now_ms`.
    pub const fn new(now_ms: u64) -> Session {
        Session {
            started_ms: now_ms,
            testing: false,
            succeeded: false,
            last_scan_ms: now_ms,
            rescan_requested: false,
        }
    }

    /// Asks for a scan at the next [`scan_due`](Session::scan_due) (results were dropped).
    pub fn rescan_soon(&mut self) {
        self.rescan_requested = true;
    }

    /// Whether to scan again now: every [`RESCAN_EMPTY_MS`] while the list is empty, every
    /// [`RESCAN_MS`] otherwise, never during a connection test or after a successful one.
    /// Returning `true` counts as starting the scan.
    pub fn scan_due(&mut self, now_ms: u64, have_networks: bool) -> bool {
        let period = if have_networks {
            RESCAN_MS
        } else {
            RESCAN_EMPTY_MS
        };
        if self.testing
            || self.succeeded
            || (!self.rescan_requested
                && now_ms.saturating_sub(self.last_scan_ms) < u64::from(period))
        {
            return false;
        }
        self.last_scan_ms = now_ms;
        self.rescan_requested = false;
        true
    }

    /// A connection test started (setup does not end while one runs).
    pub fn test_started(&mut self) {
        self.testing = true;
    }

    /// A connection test ended.
    pub fn test_finished(&mut self, success: bool) {
        self.testing = false;
        self.succeeded |= success;
    }

    /// What is due at `now_ms`.
    pub fn poll(&mut self, now_ms: u64) -> SessionAction {
        if !self.succeeded
            && !self.testing
            && now_ms.saturating_sub(self.started_ms) >= u64::from(SETUP_TIMEOUT_MS)
        {
            return SessionAction::EndSetup;
        }
        SessionAction::Nothing
    }
}

#[cfg(test)]
mod tests;
