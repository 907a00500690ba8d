//! Request framing: httparse for the request line and headers, the portal's limits on top.

use super::{MAX_BODY, MAX_HEAD};

/// Headers read per request; more is 431.
const MAX_HEADERS: usize = 24;

/// The methods the portal knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Head,
    Post,
}

/// Response statuses the portal sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    Ok,
    NoContent,
    Found,
    SeeOther,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    LengthRequired,
    PayloadTooLarge,
    HeadersTooLarge,
    InternalError,
}

impl Status {
    pub(super) fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::NoContent => 204,
            Status::Found => 302,
            Status::SeeOther => 303,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::LengthRequired => 411,
            Status::PayloadTooLarge => 413,
            Status::HeadersTooLarge => 431,
            Status::InternalError => 500,
        }
    }

    pub(super) fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NoContent => "No Content",
            Status::Found => "Found",
            Status::SeeOther => "See Other",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::LengthRequired => "Length Required",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::HeadersTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
        }
    }
}

/// A complete request.
pub(super) struct Request<'a> {
    pub(super) method: Method,
    pub(super) path: &'a [u8],
    pub(super) host: Option<&'a [u8]>,
    pub(super) body: &'a [u8],
}

pub(super) enum Parsed<'a> {
    Incomplete,
    Error(Status),
    Request(Request<'a>),
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    value.get(start..end).unwrap_or_default()
}

/// A Content-Length value: one or more decimal digits (RFC 9110 8.6: leading zeros allowed,
/// no sign); a value too large to hold saturates, so it is answered 413, not 400.
fn content_length(value: &[u8]) -> Option<usize> {
    let value = trim(value);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0usize, |n, d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    }))
}

/// An absolute-form target (`http://host[:port]/path`, RFC 9112 3.2.2): its authority and
/// its path (`/` when it has none). `None` for any other form.
fn absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let scheme = target.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"http://") {
        return None;
    }
    let rest = &target[7..];
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    Some((authority, if path.is_empty() { b"/" } else { path }))
}

/// Frames `bytes` (everything received on the connection so far). `complete` is false when
/// the buffer overflowed: more bytes arrived than a request may have.
pub(super) fn parse(bytes: &[u8], complete: bool) -> Parsed<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if bytes.len() >= MAX_HEAD || !complete {
                Parsed::Error(Status::HeadersTooLarge)
            } else {
                Parsed::Incomplete
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(Status::HeadersTooLarge),
        Err(_) => {
            // A head cut by the size limit can look malformed: say it is too large.
            return Parsed::Error(if bytes.len() >= MAX_HEAD {
                Status::HeadersTooLarge
            } else {
                Status::BadRequest
            });
        }
    };
    if head_len > MAX_HEAD {
        return Parsed::Error(Status::HeadersTooLarge);
    }
    let method = match request.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        _ => return Parsed::Error(Status::MethodNotAllowed),
    };
    let target = request.path.unwrap_or("/").as_bytes();
    // The authority of an absolute-form target stands in for the Host header (RFC 9112 3.2.2).
    let (path, target_host) = match absolute_form(target) {
        Some((authority, path)) => (path, Some(authority)),
        None if target.starts_with(b"/") => (target, None),
        None => return Parsed::Error(Status::BadRequest),
    };
    let mut host = None;
    let mut length: Option<usize> = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Parsed::Error(Status::BadRequest);
            }
            host = Some(trim(header.value));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let Some(value) = content_length(header.value) else {
                return Parsed::Error(Status::BadRequest);
            };
            if length.is_some_and(|l| l != value) {
                return Parsed::Error(Status::BadRequest);
            }
            length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Error(Status::BadRequest);
        }
    }
    let body_len = match (method, length) {
        (Method::Post, None) => return Parsed::Error(Status::LengthRequired),
        (_, Some(len)) if len > MAX_BODY => return Parsed::Error(Status::PayloadTooLarge),
        (_, len) => len.unwrap_or(0),
    };
    let Some(body) = bytes.get(head_len..head_len + body_len) else {
        return Parsed::Incomplete;
    };
    Parsed::Request(Request {
        method,
        path,
        host: target_host.or(host),
        body,
    })
}
