//! Responses: the setup page, the status page, redirects and short error pages.
//!
//! Pages are rendered into the caller's buffer after a reserved head room, then the headers
//! (which need the body's length) are written in front and the body moved up to meet them.
//! Every write is bounded: a page that does not fit becomes a 500, never an overrun.

use core::fmt::Write;

use super::form::{Choice, Kept, Problem};
use super::http::Status;
use super::{Failure, SetupStatus::*};
use super::{MAX_PAGE, Network, PortalConfig, ScanList, Security, SetupStatus};

/// Bytes reserved in front of the body for the status line and headers.
const HEAD_ROOM: usize = 320;
/// Bytes kept free for the end of the form page while networks are listed.
const FORM_TAIL: usize = 1100;

/// A bounded writer over a byte buffer.
struct Sink<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
}

impl<'a> Sink<'a> {
    fn new(buf: &'a mut [u8]) -> Sink<'a> {
        Sink {
            buf,
            len: 0,
            full: false,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(room) if !self.full => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => self.full = true,
        }
    }

    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
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
        if self.full {
            Err(core::fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// Writes the headers in front of a body rendered at `out[HEAD_ROOM..][..body_len]`.
fn finish(
    out: &mut [u8],
    status: Status,
    location: Option<&[u8]>,
    body_len: usize,
    head_only: bool,
) -> usize {
    let mut head = [0u8; HEAD_ROOM];
    let mut sink = Sink::new(&mut head);
    let _ = write!(
        sink,
        "HTTP/1.1 {} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        status.code(),
        status.reason(),
        body_len
    );
    if let Some(location) = location {
        sink.text("Location: ");
        sink.bytes(location);
        sink.text("\r\n");
    }
    if status == Status::MethodNotAllowed {
        sink.text("Allow: GET, HEAD, POST\r\n");
    }
    sink.text("\r\n");
    let (head_len, head_full) = (sink.len, sink.full);
    let body_len = if head_only { 0 } else { body_len };
    if head_full || head_len + body_len > out.len() || HEAD_ROOM + body_len > out.len() {
        return 0;
    }
    out.copy_within(HEAD_ROOM..HEAD_ROOM + body_len, head_len);
    out[..head_len].copy_from_slice(&head[..head_len]);
    head_len + body_len
}

/// Renders a body with `render` and frames it; a body that does not fit becomes a 500.
fn respond(
    out: &mut [u8],
    status: Status,
    location: Option<&[u8]>,
    head_only: bool,
    render: impl FnOnce(&mut Sink<'_>),
) -> usize {
    let limit = out.len().saturating_sub(HEAD_ROOM).min(MAX_PAGE);
    let body = out
        .get_mut(HEAD_ROOM..HEAD_ROOM + limit)
        .unwrap_or_default();
    let mut sink = Sink::new(body);
    render(&mut sink);
    if sink.full {
        return error_page(out, Status::InternalError, false);
    }
    let len = sink.len;
    finish(out, status, location, len, head_only)
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
input[type=text],input[type=password]{font:inherit;width:100%;box-sizing:border-box;padding:.6em;margin:.3em 0;border:1px solid #999;border-radius:6px}\
button,.btn{font:inherit;display:block;box-sizing:border-box;width:100%;padding:.8em;margin-top:1em;border:0;border-radius:6px;background:#1d4ed8;color:#fff;text-align:center;text-decoration:none}\
</style>";

fn document_start(sink: &mut Sink<'_>, title: &str, refresh: bool) {
    sink.text("<!doctype html><html lang=en><head>");
    sink.text(STYLE);
    if refresh {
        sink.text("<meta http-equiv=refresh content=2>");
    }
    sink.text("<title>");
    sink.text(title);
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
    sink.text("<label class=n><input type=radio name=net value=");
    hex(sink, network.ssid.as_bytes());
    if checked {
        sink.text(" checked");
    }
    sink.text("><span class=s>");
    sink.escaped(network.ssid.as_bytes());
    sink.text("</span><span class=r><span class=bar aria-label=\"signal ");
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
pub(super) fn form(
    config: &PortalConfig,
    scan: &ScanList,
    kept: &Kept,
    problem: Option<Problem>,
    head_only: bool,
    out: &mut [u8],
) -> usize {
    respond(out, Status::Ok, None, head_only, |sink| {
        document_start(sink, "Set up ramkey", false);
        sink.text("<h1>Connect this device to your WiFi</h1><p class=dev>Device ");
        sink.escaped(config.device_name.as_bytes());
        sink.text("</p>");
        if let Some(problem) = problem {
            sink.text("<p class=err role=alert>");
            sink.text(problem.message());
            sink.text("</p>");
        }
        sink.text("<form method=post action=/connect><fieldset><legend>Network</legend>");
        // List networks while the end of the page still fits; the weakest go first.
        let budget = sink.buf.len().min(MAX_PAGE).saturating_sub(FORM_TAIL);
        let mut hidden = 0;
        for network in scan.iter() {
            let before = sink.len;
            let checked = kept.choice
                == Choice::Network(
                    heapless::Vec::from_slice(network.ssid.as_bytes()).unwrap_or_default(),
                );
            network_entry(sink, network, checked);
            if sink.full || sink.len > budget {
                sink.len = before;
                sink.full = false;
                hidden += 1;
            }
        }
        if scan.is_empty() {
            sink.text("<p>No networks found yet. Reload this page in a few seconds, or type a name below.</p>");
        } else if hidden > 0 {
            let _ = write!(sink, "<p class=dev>{hidden} weaker networks not shown.</p>");
        }
        sink.text("<label class=n><input type=radio name=net value=other");
        if kept.choice == Choice::Other {
            sink.text(" checked");
        }
        sink.text("><span class=s>Other network (hidden)</span></label>");
        sink.text("<input type=text name=other maxlength=32 autocapitalize=off autocomplete=off placeholder=\"Network name\" aria-label=\"Hidden network name\" value=\"");
        sink.escaped(&kept.other);
        sink.text("\"></fieldset><p><label for=pass>Passphrase</label>");
        sink.text("<input type=password id=pass name=pass maxlength=64 autocomplete=off autocapitalize=off placeholder=\"Empty for an open network\"></p>");
        sink.text("<button type=submit>Connect</button></form>");
        sink.text("<p class=dev>The device tries the network before it keeps anything. It never stores your passphrase: only the key derived from it, in memory that forgets it when power is cut.</p></body></html>");
    })
}

fn ip_text(sink: &mut Sink<'_>, ip: [u8; 4]) {
    let _ = write!(sink, "{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
}

/// The status page for a test that started.
pub(super) fn status(
    config: &PortalConfig,
    status: &SetupStatus,
    head_only: bool,
    out: &mut [u8],
) -> usize {
    respond(out, Status::Ok, None, head_only, |sink| {
        let refresh = matches!(status, Connecting { .. });
        document_start(sink, "ramkey setup status", refresh);
        sink.text("<h1>");
        match status {
            Idle => sink.text("No network chosen yet"),
            Connecting { ssid } => {
                sink.text("Connecting to ");
                sink.escaped(ssid.as_bytes());
                sink.text("\u{2026}</h1><p>The device is trying the network. This page updates itself every 2 seconds; it takes up to half a minute.");
            }
            Connected { ssid, ip } => {
                sink.text("Connected</h1><p class=ok role=status>The device joined ");
                sink.escaped(ssid.as_bytes());
                sink.text(" and got the address ");
                ip_text(sink, *ip);
                sink.text(".</p><p>It now restarts and starts its work. You can close this page and reconnect your phone to your usual WiFi.");
            }
            Failed { ssid, failure } => {
                sink.text("Not connected</h1><p class=err role=alert>");
                match failure {
                    Failure::WrongPassphrase => {
                        sink.escaped(ssid.as_bytes());
                        sink.text(
                            " refused the passphrase. Check it (capitals count) and try again.",
                        );
                    }
                    Failure::NotFound => {
                        sink.escaped(ssid.as_bytes());
                        sink.text(" was not found. Check the name, and that the device is within reach of the router.");
                    }
                    Failure::Timeout => {
                        sink.escaped(ssid.as_bytes());
                        sink.text(" did not answer in time. Move the device closer to the router and try again.");
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
    })
}

/// A redirect to `location` (a path on this server) with a link for browsers that stop.
pub(super) fn redirect(location: &[u8], status: Status, head_only: bool, out: &mut [u8]) -> usize {
    respond(out, status, Some(location), head_only, |sink| {
        sink.text("<!doctype html><title>Moved</title><a href=\"");
        sink.escaped(location);
        sink.text("\">Continue to the setup page</a>");
    })
}

/// The redirect captive-portal probes get: the portal's address, absolute.
pub(super) fn redirect_home(config: &PortalConfig, head_only: bool, out: &mut [u8]) -> usize {
    let ap_ip = config.ap_ip;
    let mut location = [0u8; 40];
    let mut sink = Sink::new(&mut location);
    let _ = write!(
        sink,
        "http://{}.{}.{}.{}",
        ap_ip[0], ap_ip[1], ap_ip[2], ap_ip[3]
    );
    if config.port != 80 {
        let _ = write!(sink, ":{}", config.port);
    }
    sink.text("/");
    let len = sink.len;
    redirect(&location[..len], Status::Found, head_only, out)
}

/// A short page for an error status.
pub(super) fn error(status: Status, out: &mut [u8]) -> usize {
    error_page(out, status, false)
}

fn error_page(out: &mut [u8], status: Status, head_only: bool) -> usize {
    let explanation = match status {
        Status::BadRequest => "The request was not understood.",
        Status::NotFound => "There is nothing here.",
        Status::MethodNotAllowed => "This method is not supported here.",
        Status::LengthRequired => "A form must say how long it is.",
        Status::PayloadTooLarge => "The form is too large.",
        Status::HeadersTooLarge => "The request is too large.",
        _ => "The device could not answer this request.",
    };
    let limit = out.len().saturating_sub(HEAD_ROOM).min(MAX_PAGE);
    let Some(body) = out.get_mut(HEAD_ROOM..HEAD_ROOM + limit) else {
        return 0;
    };
    let mut sink = Sink::new(body);
    let _ = write!(
        sink,
        "<!doctype html><meta charset=utf-8><title>{0} {1}</title><h1>{0} {1}</h1><p>{2}</p><a href=/>Back to setup</a>",
        status.code(),
        status.reason(),
        explanation
    );
    if sink.full {
        return 0;
    }
    let len = sink.len;
    finish(out, status, None, len, head_only)
}
