//! Responses: the setup page, the status page, redirects and short error pages.
//!
//! A [`Response`] says what to send (with a snapshot of what the page shows, except the scan
//! list, which the portal keeps) and renders any window of its bytes on demand: the device
//! sends a page a TCP segment at a time from a 1460-byte buffer instead of holding 8 KiB,
//! rendering it again for each piece. Rendering is deterministic, so the pieces fit together
//! as long as the scan list does not change in between (the firmware holds scan results back
//! while a response is in flight). Nothing is ever written outside the caller's window.
//!
//! Constant text of 40 bytes or more (the style sheet, sentences, form errors) is
//! [`flash_text!`](crate::flash_text!): on the device it stays in flash, not DRAM, and only
//! the words a window overlaps are read.

use core::fmt::Write;

use crate::flash_text;
use crate::flash_text::FlashText;

use super::form::{Choice, Kept, Problem};
use super::http::Status;
use super::{Failure, SetupStatus::*};
use super::{MAX_PAGE, Network, PortalConfig, ScanList, Security, SetupStatus};

/// Bytes kept free for the end of the form page while networks are listed.
const FORM_TAIL: usize = 2200;
/// Longest redirect location the portal writes (`http://255.255.255.255:65535/`).
const MAX_LOCATION: usize = 32;

/// A writer that counts every byte and keeps those that fall in its window.
struct Sink<'a> {
    window: &'a mut [u8],
    /// Position of `window[0]` in the whole output.
    offset: usize,
    /// Bytes produced so far (the position of the next one).
    pos: usize,
    /// Where the body starts (after the head, when one was rendered into the same sink).
    base: usize,
}

impl<'a> Sink<'a> {
    fn window(window: &'a mut [u8], offset: usize) -> Sink<'a> {
        Sink {
            window,
            offset,
            pos: 0,
            base: 0,
        }
    }

    fn counter() -> Sink<'static> {
        Sink {
            window: &mut [],
            offset: 0,
            pos: 0,
            base: 0,
        }
    }

    /// Advances by `len` bytes; returns the part of the window they cover and where in them
    /// it starts, if any.
    // Inlined into its two callers: measured by `cargo xtask bench`, GET / takes 985,758
    // instructions this way and 1,145,466 with a call per piece of text.
    #[inline(always)]
    fn advance(&mut self, len: usize) -> Option<(&mut [u8], usize)> {
        let start = self.pos;
        let end = start.saturating_add(len);
        self.pos = end;
        let from = start.max(self.offset);
        let to = end.min(self.offset.saturating_add(self.window.len()));
        if from >= to {
            return None;
        }
        let dst = self.window.get_mut(from - self.offset..to - self.offset)?;
        Some((dst, from - start))
    }

    fn bytes(&mut self, bytes: &[u8]) {
        if let Some((dst, skip)) = self.advance(bytes.len())
            && let Some(src) = bytes.get(skip..skip + dst.len())
        {
            dst.copy_from_slice(src);
        }
    }

    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    /// Text kept in flash: only the words that overlap the window are read.
    fn flash(&mut self, text: FlashText) {
        if let Some((dst, skip)) = self.advance(text.len()) {
            text.read(skip, dst);
        }
    }

    /// Text with `& < > " '` escaped; invalid UTF-8 and control bytes become U+FFFD.
    fn escaped(&mut self, bytes: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '&' => self.text("&amp;"),
                    '<' => self.text("&lt;"),
                    '>' => self.text("&gt;"),
                    '"' => self.text("&quot;"),
                    '\'' => self.text("&#39;"),
                    c if c.is_control() => self.text("\u{fffd}"),
                    c => {
                        let mut utf8 = [0u8; 4];
                        self.text(c.encode_utf8(&mut utf8));
                    }
                }
            }
            if !chunk.invalid().is_empty() {
                self.text("\u{fffd}");
            }
        }
    }
}

impl Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.text(s);
        Ok(())
    }
}

/// What a response shows.
// No allocator to box the form's kept fields into: a response lives once per slot in
// setup's state, and the other variants are rare enough not to matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
enum Body {
    /// The setup form (the scan list comes from the portal at render time).
    Form {
        kept: Kept,
        problem: Option<Problem>,
    },
    /// The status page for this status.
    Status(SetupStatus),
    /// A redirect with its location.
    Redirect {
        location: heapless::Vec<u8, MAX_LOCATION>,
    },
    /// A short page for an error status.
    Error,
    /// Nothing (204: icons the browser asks for on its own).
    Empty,
}

/// A response to send: status, what it shows, whether it is for HEAD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: Status,
    body: Body,
    head_only: bool,
}

impl Response {
    /// The HTTP status code it answers with.
    pub fn status_code(&self) -> u16 {
        self.status.code()
    }

    pub(super) fn form(kept: Kept, problem: Option<Problem>, head_only: bool) -> Response {
        Response {
            status: Status::Ok,
            body: Body::Form { kept, problem },
            head_only,
        }
    }

    pub(super) fn status(status: SetupStatus, head_only: bool) -> Response {
        Response {
            status: Status::Ok,
            body: Body::Status(status),
            head_only,
        }
    }

    /// A redirect to a path on this server.
    pub(super) fn redirect(location: &[u8], status: Status, head_only: bool) -> Response {
        let location = heapless::Vec::from_slice(location).unwrap_or_default();
        Response {
            status,
            body: Body::Redirect { location },
            head_only,
        }
    }

    /// The redirect captive-portal probes get: the portal's address, absolute.
    pub(super) fn redirect_home(config: &PortalConfig, head_only: bool) -> Response {
        let [a, b, c, d] = config.ap_ip;
        let mut location = heapless::String::<MAX_LOCATION>::new();
        let _ = write!(location, "http://{a}.{b}.{c}.{d}");
        if config.port != 80 {
            let _ = write!(location, ":{}", config.port);
        }
        let _ = location.push('/');
        Response::redirect(location.as_bytes(), Status::Found, head_only)
    }

    /// 204 with no body, cacheable for a day: the icons browsers fetch by themselves
    /// (`/favicon.ico`, `/apple-touch-icon.png`), so they cost no page load.
    pub(super) fn empty(head_only: bool) -> Response {
        Response {
            status: Status::NoContent,
            body: Body::Empty,
            head_only,
        }
    }

    pub(super) fn error(status: Status) -> Response {
        Response {
            status,
            body: Body::Error,
            head_only: false,
        }
    }

    fn render_body(&self, config: &PortalConfig, scan: &ScanList, sink: &mut Sink<'_>) {
        match &self.body {
            Body::Form { kept, problem } => form(sink, config, scan, kept, *problem),
            Body::Status(status) => status_page(sink, config, status),
            Body::Redirect { location } => {
                sink.flash(flash_text!("<!doctype html><title>Moved</title><a href=\""));
                sink.escaped(location);
                sink.text("\">Continue to the setup page</a>");
            }
            Body::Error => error_body(sink, self.status),
            Body::Empty => {}
        }
    }

    fn render_head(&self, sink: &mut Sink<'_>, body_len: usize) {
        if self.body == Body::Empty {
            // RFC 9110 8.6: no Content-Length (nor type) on a 204.
            let _ = write!(
                sink,
                "HTTP/1.1 {} {}\r\nCache-Control: max-age=86400\r\nConnection: close\r\n\r\n",
                self.status.code(),
                self.status.reason()
            );
            return;
        }
        let _ = write!(
            sink,
            "HTTP/1.1 {} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status.code(),
            self.status.reason(),
            body_len
        );
        if let Body::Redirect { location } = &self.body {
            sink.text("Location: ");
            sink.bytes(location);
            sink.text("\r\n");
        }
        if self.status == Status::MethodNotAllowed {
            sink.text("Allow: GET, HEAD, POST\r\n");
        }
        sink.text("\r\n");
    }

    /// Renders bytes `offset..` of the whole response into `window`; returns the total length.
    fn render(
        &self,
        config: &PortalConfig,
        scan: &ScanList,
        offset: usize,
        window: &mut [u8],
    ) -> usize {
        let mut counter = Sink::counter();
        self.render_body(config, scan, &mut counter);
        let body_len = counter.pos;
        if body_len > MAX_PAGE {
            // Cannot happen with the budget the form keeps; never send an oversize page.
            return Response::error(Status::InternalError).render(config, scan, offset, window);
        }
        let mut sink = Sink::window(window, offset);
        self.render_head(&mut sink, body_len);
        // The form's network budget counts from the body's start, as in the counting pass.
        sink.base = sink.pos;
        if !self.head_only {
            self.render_body(config, scan, &mut sink);
        }
        sink.pos
    }

    /// Bytes of the whole response.
    pub fn len(&self, config: &PortalConfig, scan: &ScanList) -> usize {
        self.render(config, scan, 0, &mut [])
    }

    /// Whether the response is empty (never: there is always a status line).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Copies bytes `offset..offset + out.len()` of the response into `out`; returns how
    /// many there were (0 past the end).
    pub fn read_at(
        &self,
        config: &PortalConfig,
        scan: &ScanList,
        offset: usize,
        out: &mut [u8],
    ) -> usize {
        let total = self.render(config, scan, offset, out);
        total.saturating_sub(offset).min(out.len())
    }

    /// The whole response into `out`; a response longer than `out` is replaced by a short
    /// 500 (or nothing, 0, if even that does not fit).
    pub(super) fn write_all(
        &self,
        config: &PortalConfig,
        scan: &ScanList,
        out: &mut [u8],
    ) -> usize {
        let total = self.len(config, scan);
        if total <= out.len() {
            return self.read_at(config, scan, 0, out);
        }
        let fallback = Response::error(Status::InternalError);
        if fallback.len(config, scan) <= out.len() {
            return fallback.read_at(config, scan, 0, out);
        }
        0
    }
}

const STYLE: &str = "<meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\"><style>\
body{font:18px/1.4 system-ui,sans-serif;margin:0 auto;max-width:32em;padding:1em;color:#222;background:#fafafa}\
h1{font-size:1.4em;margin:.2em 0}p{margin:.6em 0}.dev{color:#666;font-size:.85em}\
.err{background:#fde8e8;border-left:4px solid #c22;padding:.6em}.ok{background:#e6f6e6;border-left:4px solid #2a2;padding:.6em}\
fieldset{border:0;padding:0;margin:0}label.n{display:flex;align-items:center;gap:.6em;padding:.7em .5em;border-bottom:1px solid #ddd;min-height:2em}\
label.n input{width:1.3em;height:1.3em}.s{flex:1;overflow-wrap:anywhere}.r{white-space:nowrap;color:#555}\
.bar b{color:#15803d;font-weight:normal}.bar{letter-spacing:-.1em;color:#ccc}\
.lk{display:inline-block;position:relative;width:.7em;height:.55em;margin:0 .15em 0 .3em;background:#555;border-radius:2px}\
.lk:before{content:\"\";position:absolute;left:.13em;top:-.38em;width:.28em;height:.3em;border:.08em solid #555;border-bottom:0;border-radius:.3em .3em 0 0}\
input[type=text],input[type=password]{font:inherit;width:100%;box-sizing:border-box;padding:.6em;margin:.3em 0;border:1px solid #767676;border-radius:6px}\
button,.btn{font:inherit;display:block;box-sizing:border-box;width:100%;padding:.8em;margin-top:1em;border:0;border-radius:6px;background:#1d4ed8;color:#fff;text-align:center;text-decoration:none}\
</style>";

fn document_start(sink: &mut Sink<'_>, title: &str, refresh: bool) {
    document_start_with(sink, refresh, |sink| sink.text(title));
}

/// [`document_start`] with a title the caller writes.
fn document_start_with(sink: &mut Sink<'_>, refresh: bool, title: impl FnOnce(&mut Sink<'_>)) {
    sink.text("<!doctype html><html lang=en><head>");
    sink.flash(flash_text!(STYLE));
    // No icon: the browser does not ask for /favicon.ico.
    sink.text("<link rel=icon href=\"data:,\">");
    if refresh {
        sink.text("<meta http-equiv=refresh content=2>");
    }
    sink.text("<title>");
    title(sink);
    sink.text("</title></head><body>");
}

/// Four signal levels from RSSI.
fn bars(rssi: i8) -> usize {
    match rssi {
        -55.. => 4,
        -67..=-56 => 3,
        -75..=-68 => 2,
        _ => 1,
    }
}

fn hex(sink: &mut Sink<'_>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        sink.bytes(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    }
}

fn network_entry(sink: &mut Sink<'_>, network: &Network, checked: bool) {
    sink.flash(flash_text!(
        "<label class=n><input type=radio name=net value="
    ));
    hex(sink, network.ssid.as_bytes());
    if checked {
        sink.text(" checked");
    }
    sink.text("><span class=s>");
    sink.escaped(network.ssid.as_bytes());
    sink.flash(flash_text!(
        "</span><span class=r><span class=bar aria-label=\"signal "
    ));
    let level = bars(network.rssi);
    let _ = write!(sink, "{level} of 4\"><b>");
    const BARS: [&str; 4] = ["\u{2582}", "\u{2584}", "\u{2586}", "\u{2588}"];
    for (i, bar) in BARS.iter().enumerate() {
        if i == level {
            sink.text("</b>");
        }
        sink.text(bar);
    }
    if level == BARS.len() {
        sink.text("</b>");
    }
    sink.text("</span> ");
    sink.text(match network.security {
        Security::Secured => "<i class=lk role=img aria-label=secured></i>",
        Security::Open => "open",
    });
    sink.text("</span></label>");
}

/// The setup form, with an error message and the person's choices when `problem` is set.
fn form(
    sink: &mut Sink<'_>,
    config: &PortalConfig,
    scan: &ScanList,
    kept: &Kept,
    problem: Option<Problem>,
) {
    {
        document_start(sink, "Set up ramkey", false);
        sink.flash(flash_text!(
            "<h1>Connect this device to your WiFi</h1><p class=dev>Device "
        ));
        sink.escaped(config.device_name.as_bytes());
        sink.text("</p>");
        if let Some(problem) = problem {
            sink.text("<p class=err role=alert>");
            sink.flash(problem.message());
            sink.text("</p>");
        }
        sink.flash(flash_text!(
            "<form method=post action=/connect><fieldset><legend>Network</legend>"
        ));
        // List networks while the end of the page still fits; the weakest go first. Each
        // entry is measured before it is written, so every rendering picks the same ones.
        let budget = MAX_PAGE - FORM_TAIL;
        let mut hidden = 0;
        for network in scan.iter() {
            let checked = kept.choice
                == Choice::Network(
                    heapless::Vec::from_slice(network.ssid.as_bytes()).unwrap_or_default(),
                );
            let mut measure = Sink::counter();
            network_entry(&mut measure, network, checked);
            if sink.pos - sink.base + measure.pos > budget {
                hidden += 1;
                continue;
            }
            network_entry(sink, network, checked);
        }
        if scan.is_empty() {
            sink.flash(flash_text!("<p>No networks found yet. Reload this page in a few seconds, or type a name below.</p>"));
        } else if hidden > 0 {
            let _ = write!(sink, "<p class=dev>{hidden} weaker networks not shown.</p>");
        }
        sink.flash(flash_text!(
            "<label class=n><input type=radio name=net value=other"
        ));
        if kept.choice == Choice::Other {
            sink.text(" checked");
        }
        sink.flash(flash_text!(
            "><span class=s>Other network (hidden)</span></label>"
        ));
        // maxlength counts characters, the limit is 32 bytes: the script checks the bytes as
        // the name is typed (the server checks again).
        sink.flash(flash_text!("<label for=other>Hidden network name</label><input type=text id=other name=other autocapitalize=off autocomplete=off placeholder=\"Network name\" oninput=\"this.setCustomValidity(new TextEncoder().encode(this.value).length>32?'At most 32 bytes (accented letters and emoji count 2 to 4)':'')\" value=\""));
        sink.escaped(&kept.other);
        sink.flash(flash_text!(
            "\"></fieldset><p><label for=pass>Passphrase</label>"
        ));
        // WPA passphrases are 8 to 63 printable ASCII characters or 64 hex digits: the pattern
        // keeps multibyte characters (and a 413) out of the form without a script.
        sink.flash(flash_text!("<input type=password id=pass name=pass maxlength=64 pattern=\"[ -~]{8,63}|[0-9A-Fa-f]{64}\" title=\"8 to 63 letters, digits, spaces or punctuation, or a 64-digit hex key\" autocomplete=off autocapitalize=off placeholder=\"Empty for an open network\"></p>"));
        // Where the sensor reports: optional (empty: the readings wait in RTC memory).
        sink.flash(flash_text!("<fieldset><legend>Report to (MQTT broker, optional)</legend><label for=mqtt>Broker host name or address</label><input type=text id=mqtt name=mqtt pattern=\"[A-Za-z0-9.\\-]{1,32}\" title=\"A host name or IPv4 address, at most 32 characters\" autocapitalize=off autocomplete=off inputmode=url placeholder=\"homeassistant.local\" value=\""));
        sink.escaped(&kept.broker.host);
        sink.flash(flash_text!("\"><label for=mport>Port</label><input type=text id=mport name=mport maxlength=5 inputmode=numeric pattern=\"[0-9]{1,5}\" placeholder=1883 value=\""));
        sink.escaped(&kept.broker.port);
        sink.flash(flash_text!("\"><label for=muser>User name</label><input type=text id=muser name=muser pattern=\"[!-~]{1,32}\" title=\"At most 32 letters, digits or punctuation, no spaces\" autocapitalize=off autocomplete=off value=\""));
        sink.escaped(&kept.broker.user);
        sink.flash(flash_text!("\"><label for=mpass>Password</label><input type=password id=mpass name=mpass maxlength=64 autocomplete=off autocapitalize=off placeholder=\"Empty for none\"><label for=period>Report every (minutes)</label><input type=text id=period name=period maxlength=2 inputmode=numeric pattern=\"[0-9]{1,2}\" placeholder=10 value=\""));
        sink.escaped(&kept.broker.period);
        sink.flash(flash_text!("\"></fieldset>"));
        sink.flash(flash_text!("<button type=submit>Connect</button></form>"));
        sink.flash(flash_text!("<p class=dev>The device tries the network before it keeps anything. It never stores your passphrase: only the key derived from it, in memory that forgets it when power is cut; the broker's password too is kept only there.</p></body></html>"));
    }
}

fn ip_text(sink: &mut Sink<'_>, ip: [u8; 4]) {
    let _ = write!(sink, "{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
}

/// The status page for a test that started.
fn status_page(sink: &mut Sink<'_>, config: &PortalConfig, status: &SetupStatus) {
    {
        let refresh = matches!(status, Connecting { .. });
        document_start(sink, "ramkey setup status", refresh);
        sink.text("<h1>");
        match status {
            Idle => sink.text("No network chosen yet"),
            Connecting { ssid } => {
                sink.text("Connecting to ");
                sink.escaped(ssid.as_bytes());
                sink.flash(flash_text!("\u{2026}</h1><p>The device is trying the network. This page updates itself every 2 seconds; it takes up to half a minute."));
            }
            Connected { ssid, ip } => {
                sink.flash(flash_text!(
                    "Connected</h1><p class=ok role=status>The device joined "
                ));
                sink.escaped(ssid.as_bytes());
                sink.text(" and got the address ");
                ip_text(sink, *ip);
                sink.flash(flash_text!(".</p><p>It now restarts and starts its work. You can close this page and reconnect your phone to your usual WiFi."));
            }
            Failed { ssid, failure } => {
                sink.flash(flash_text!("Not connected</h1><p class=err role=alert>"));
                match failure {
                    Failure::WrongPassphrase => {
                        sink.escaped(ssid.as_bytes());
                        sink.flash(flash_text!(
                            " refused the passphrase. Check it (capitals count) and try again."
                        ));
                    }
                    Failure::NotFound => {
                        sink.escaped(ssid.as_bytes());
                        sink.flash(flash_text!(" was not found. Check the name, and that the device is within reach of the router."));
                    }
                    Failure::Timeout => {
                        sink.escaped(ssid.as_bytes());
                        sink.flash(flash_text!(" did not answer in time. Move the device closer to the router and try again."));
                    }
                    Failure::Other => {
                        sink.text("The connection to ");
                        sink.escaped(ssid.as_bytes());
                        sink.text(" failed. Please try again.");
                    }
                }
                sink.text("</p><a class=btn href=/>Try again");
                sink.text("</a><p>");
            }
        }
        sink.text("</p><p class=dev>Device ");
        sink.escaped(config.device_name.as_bytes());
        sink.text("</p></body></html>");
    }
}

fn error_body(sink: &mut Sink<'_>, status: Status) {
    let explanation = match status {
        Status::BadRequest => "The request was not understood.",
        Status::NotFound => "There is nothing here.",
        Status::MethodNotAllowed => "This method is not supported here.",
        Status::LengthRequired => "A form must say how long it is.",
        Status::PayloadTooLarge => {
            "The form is too long for the device: shorten the network name, the passphrase or the broker fields."
        }
        Status::HeadersTooLarge => "The request is too large.",
        _ => "The device could not answer this request.",
    };
    let title = |sink: &mut Sink<'_>| {
        let _ = write!(sink, "{} ", status.code());
        sink.text(status.reason());
    };
    document_start_with(sink, false, title);
    sink.text("<h1>");
    title(sink);
    sink.text("</h1><p class=err role=alert>");
    sink.text(explanation);
    sink.text("</p>");
    if status == Status::PayloadTooLarge {
        // Back in the history keeps what was typed (a new load of / would not).
        sink.flash(flash_text!(
            "<a class=btn href=/ onclick=\"history.back();return false\">Back to the form</a>"
        ));
    } else {
        sink.text("<a class=btn href=/>Back to setup</a>");
    }
    sink.text("</body></html>");
}
