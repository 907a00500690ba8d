//! Portal tests: framing, limits, routing, validation, pages, scan list, session.

use super::*;
use proptest::prelude::*;
use std::string::String;
use std::vec::Vec;
use std::{format, vec};

fn config() -> PortalConfig {
    PortalConfig::new([192, 168, 4, 1], 80, "ramkey-A1B2C3")
}

#[test]
fn long_device_names_are_cut_at_a_character_boundary() {
    let name = "\u{e9}".repeat(20); // 40 bytes of two-byte characters
    let config = PortalConfig::new([10, 0, 0, 1], 80, &name);
    assert_eq!(config.device_name.len(), 32);
    assert!(name.starts_with(config.device_name.as_str()));
}

fn network(ssid: &[u8], rssi: i8, security: Security) -> Network {
    Network {
        ssid: Ssid::new(ssid).expect("short"),
        rssi,
        security,
        channel: 6,
    }
}

fn portal() -> Portal {
    let mut portal = Portal::new(config());
    portal
        .scan_mut()
        .add(network(b"Garden", -48, Security::Secured));
    portal
        .scan_mut()
        .add(network(b"Cafe Guest", -60, Security::Open));
    portal
        .scan_mut()
        .add(network(b"<b>&\"x\"", -80, Security::Secured));
    portal
}

/// One request through a fresh buffer; the response as text (or None when incomplete).
fn send(portal: &mut Portal, request: &[u8]) -> (Option<String>, Option<ConnectRequest>) {
    let mut buffer = RequestBuffer::new();
    let mut out = vec![0u8; RESPONSE_CAPACITY];
    match portal.receive(&mut buffer, request, &mut out) {
        Reply::Incomplete => (None, None),
        Reply::Respond { len } => (
            Some(String::from_utf8_lossy(&out[..len]).into_owned()),
            None,
        ),
        Reply::Connect { len, request } => (
            Some(String::from_utf8_lossy(&out[..len]).into_owned()),
            Some(request),
        ),
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 192.168.4.1\r\n\r\n").into_bytes()
}

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST /connect HTTP/1.1\r\nHost: 192.168.4.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status_of(response: &str) -> u16 {
    response[9..12].parse().expect("status code")
}

fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").expect("head ends").1
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn well_framed(response: &str) {
    assert!(response.starts_with("HTTP/1.1 "), "{response}");
    let length: usize = header(response, "content-length")
        .expect("Content-Length")
        .parse()
        .expect("number");
    assert_eq!(length, body_of(response).len(), "{response}");
    assert_eq!(header(response, "connection"), Some("close"));
}

const GARDEN: &str = "47617264656e";

#[test]
fn form_page_lists_networks_strongest_first_and_fits() {
    let (response, _) = send(&mut portal(), &get("/"));
    let response = response.expect("complete");
    well_framed(&response);
    assert_eq!(status_of(&response), 200);
    let body = body_of(&response);
    assert!(body.len() <= MAX_PAGE);
    let garden = body.find("Garden").expect("Garden listed");
    let cafe = body.find("Cafe Guest").expect("Cafe listed");
    assert!(garden < cafe, "strongest first");
    assert!(body.contains(&format!("value={GARDEN}")));
    assert!(
        body.contains("&lt;b&gt;&amp;&quot;x&quot;"),
        "hostile SSID escaped"
    );
    assert!(!body.contains("<b>&\""), "hostile SSID not raw");
    assert!(body.contains("name=viewport"));
    assert!(body.contains("ramkey-A1B2C3"));
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "no external resources"
    );
    assert!(!body.contains("<script"), "works without JavaScript");
}

#[test]
fn worst_case_page_drops_weakest_networks_and_stays_under_8_kib() {
    let mut portal = Portal::new(config());
    for i in 0..MAX_NETWORKS {
        let mut ssid = [b'&'; 32];
        ssid[0] = b'a' + i as u8;
        ssid[1..8].copy_from_slice(b"<\"'>&<\"");
        portal
            .scan_mut()
            .add(network(&ssid, -40 - i as i8, Security::Secured));
    }
    let (response, _) = send(&mut portal, &get("/"));
    let response = response.expect("complete");
    well_framed(&response);
    let body = body_of(&response);
    assert!(body.len() <= MAX_PAGE, "{} bytes", body.len());
    assert!(body.contains("weaker networks not shown"));
    assert!(body.contains("</html>"), "the page is complete");
    // The strongest is listed.
    assert!(body.contains("value=613c22273e263c22"));
}

#[test]
fn requests_split_anywhere_give_the_same_response() {
    let whole = post(&format!("net={GARDEN}&pass=correct+horse+battery"));
    for split in [1, 5, 20, whole.len() - 3, whole.len() - 1] {
        let mut portal = portal();
        let mut buffer = RequestBuffer::new();
        let mut out = vec![0u8; RESPONSE_CAPACITY];
        assert!(matches!(
            portal.receive(&mut buffer, &whole[..split], &mut out),
            Reply::Incomplete
        ));
        match portal.receive(&mut buffer, &whole[split..], &mut out) {
            Reply::Connect { request, .. } => assert_eq!(request.ssid.as_bytes(), b"Garden"),
            _ => panic!("split at {split}: no connect"),
        }
        assert!(buffer.is_empty(), "request wiped");
    }
}

#[test]
fn byte_by_byte() {
    let mut portal = portal();
    let mut buffer = RequestBuffer::new();
    let mut out = vec![0u8; RESPONSE_CAPACITY];
    let request = get("/");
    for (i, byte) in request.iter().enumerate() {
        let reply = portal.receive(&mut buffer, core::slice::from_ref(byte), &mut out);
        if i + 1 < request.len() {
            assert!(matches!(reply, Reply::Incomplete), "byte {i}");
        } else {
            assert!(matches!(reply, Reply::Respond { .. }));
        }
    }
}

#[test]
fn limits() {
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(3000));
    let (r, _) = send(&mut portal(), long_line.as_bytes());
    assert_eq!(status_of(&r.expect("answered")), 431);
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(30));
    assert_eq!(
        status_of(&send(&mut portal(), many.as_bytes()).0.expect("answered")),
        431
    );
    let big = "POST /connect HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
    assert_eq!(
        status_of(&send(&mut portal(), big.as_bytes()).0.expect("answered")),
        413
    );
    let no_length = "POST /connect HTTP/1.1\r\n\r\nnet=aa";
    assert_eq!(
        status_of(
            &send(&mut portal(), no_length.as_bytes())
                .0
                .expect("answered")
        ),
        411
    );
    let chunked = "POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        status_of(&send(&mut portal(), chunked.as_bytes()).0.expect("answered")),
        400
    );
    let bad_length = "POST /connect HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
    assert_eq!(
        status_of(
            &send(&mut portal(), bad_length.as_bytes())
                .0
                .expect("answered")
        ),
        400
    );
    let two_lengths = "POST /connect HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
    assert_eq!(
        status_of(
            &send(&mut portal(), two_lengths.as_bytes())
                .0
                .expect("answered")
        ),
        400
    );
    let garbage = b"\x00\x01\x02\xff\r\n\r\n";
    assert_eq!(
        status_of(&send(&mut portal(), garbage).0.expect("answered")),
        400
    );
    let delete = "DELETE / HTTP/1.1\r\n\r\n";
    let r = send(&mut portal(), delete.as_bytes()).0.expect("answered");
    assert_eq!(status_of(&r), 405);
    assert_eq!(header(&r, "allow"), Some("GET, HEAD, POST"));
    for r in [long_line.as_bytes(), big.as_bytes(), garbage] {
        well_framed(&send(&mut portal(), r).0.expect("answered"));
    }
}

#[test]
fn a_full_buffer_of_header_bytes_is_431_not_a_hang() {
    let mut portal = portal();
    let mut buffer = RequestBuffer::new();
    let mut out = vec![0u8; RESPONSE_CAPACITY];
    let mut reply = portal.receive(&mut buffer, b"GET /", &mut out);
    for _ in 0..100 {
        reply = portal.receive(
            &mut buffer,
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &mut out,
        );
        if !matches!(reply, Reply::Incomplete) {
            break;
        }
    }
    let Reply::Respond { len } = reply else {
        panic!("no answer to an endless request line");
    };
    assert!(out[..len].starts_with(b"HTTP/1.1 431"));
}

#[test]
fn probes_and_foreign_hosts_redirect_to_the_portal() {
    for path in [
        "/generate_204",
        "/gen_204",
        "/hotspot-detect.html",
        "/library/test/success.html",
        "/connecttest.txt",
        "/ncsi.txt",
        "/success.txt",
        "/canonical.html",
        "/redirect",
        "/anything/else",
    ] {
        let (r, _) = send(&mut portal(), &get(path));
        let r = r.expect("answered");
        assert_eq!(status_of(&r), 302, "{path}");
        assert_eq!(
            header(&r, "location"),
            Some("http://192.168.4.1/"),
            "{path}"
        );
        well_framed(&r);
    }
    for host in [
        "connectivitycheck.gstatic.com",
        "captive.apple.com",
        "www.msftconnecttest.com",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let r = send(&mut portal(), request.as_bytes()).0.expect("answered");
        assert_eq!(status_of(&r), 302, "{host}");
        assert_eq!(header(&r, "location"), Some("http://192.168.4.1/"));
    }
    // The portal's own address, with or without the port, and HTTP/1.0 without Host.
    for request in [
        "GET / HTTP/1.1\r\nHost: 192.168.4.1:80\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
    ] {
        assert_eq!(
            status_of(&send(&mut portal(), request.as_bytes()).0.expect("ok")),
            200
        );
    }
}

#[test]
fn a_portal_on_another_port_accepts_its_host_and_redirects_to_itself() {
    let mut portal = Portal::new(PortalConfig {
        port: 8099,
        ..config()
    });
    let own = b"GET / HTTP/1.1\r\nHost: 192.168.4.1:8099\r\n\r\n";
    assert_eq!(status_of(&send(&mut portal, own).0.expect("answered")), 200);
    let r = send(&mut portal, &get("/generate_204"))
        .0
        .expect("answered");
    assert_eq!(header(&r, "location"), Some("http://192.168.4.1:8099/"));
    let other_port = b"GET / HTTP/1.1\r\nHost: 192.168.4.1:8100\r\n\r\n";
    assert_eq!(
        status_of(&send(&mut portal, other_port).0.expect("answered")),
        302
    );
}

#[test]
fn head_has_headers_only() {
    let r = send(
        &mut portal(),
        b"HEAD / HTTP/1.1\r\nHost: 192.168.4.1\r\n\r\n",
    )
    .0
    .expect("answered");
    assert_eq!(status_of(&r), 200);
    assert_eq!(body_of(&r), "");
    assert!(
        header(&r, "content-length")
            .expect("length")
            .parse::<usize>()
            .expect("n")
            > 1000
    );
}

#[test]
fn post_elsewhere_is_404() {
    let r = b"POST /other HTTP/1.1\r\nHost: 192.168.4.1\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(status_of(&send(&mut portal(), r).0.expect("answered")), 404);
}

fn form_error(body: &str) -> String {
    let mut portal = portal();
    let (r, connect) = send(&mut portal, &post(body));
    assert!(connect.is_none(), "{body} was accepted");
    assert_eq!(portal.status(), &SetupStatus::Idle);
    let r = r.expect("answered");
    assert_eq!(status_of(&r), 200);
    well_framed(&r);
    String::from(body_of(&r))
}

#[test]
fn validation_errors_in_words_with_input_kept_but_never_the_passphrase() {
    let page = form_error("pass=secretpass1");
    assert!(page.contains("Choose a network"));
    assert!(!page.contains("secretpass1"));

    let page = form_error(&format!("net={GARDEN}&pass=short77"));
    assert!(page.contains("too short"));
    assert!(
        page.contains(&format!("value={GARDEN} checked")),
        "choice kept"
    );
    assert!(!page.contains("short77"));

    let page = form_error(&format!("net={GARDEN}&pass="));
    assert!(page.contains("needs its passphrase"));

    let page = form_error(&format!("net={GARDEN}&pass={}", "a".repeat(70)));
    assert!(page.contains("too long"));

    let page = form_error(&format!("net={GARDEN}&pass=caf%C3%A9caf%C3%A9"));
    assert!(page.contains("cannot contain"));
    assert!(!page.contains("caf"), "nothing of the passphrase");

    let page = form_error(&format!("net={GARDEN}&pass={}", "g".repeat(64)));
    assert!(page.contains("hex digits"));

    let page = form_error("net=other&other=&pass=whatever1");
    assert!(page.contains("name of the hidden network"));
    assert!(page.contains("value=other checked"));

    let page = form_error(&format!(
        "net=other&other={}&pass=whatever1",
        "n".repeat(33)
    ));
    assert!(page.contains("at most 32 bytes"));

    let page = form_error("net=other&other=My+%3Cb%3E+Net&pass=");
    assert!(
        page.contains("value=\"My &lt;b&gt; Net\""),
        "hidden name kept, escaped"
    );
    assert!(
        page.contains("needs its passphrase"),
        "hidden networks need a passphrase"
    );

    let page = form_error("net=zz&pass=whatever1");
    assert!(page.contains("not understood"));

    let page = form_error(&format!("net={}&pass=whatever1", "43616665204775657374"));
    assert!(page.contains("open: leave the passphrase empty"));

    let page = form_error(&format!("net={GARDEN}&pass=%zz"));
    assert!(page.contains("garbled"));
}

#[test]
fn valid_forms_start_a_test() {
    let mut portal = portal();
    let (r, connect) = send(
        &mut portal,
        &post(&format!("net={GARDEN}&pass=correct+horse+battery")),
    );
    let r = r.expect("answered");
    assert_eq!(status_of(&r), 303);
    assert_eq!(header(&r, "location"), Some("/status"));
    let request = connect.expect("a test");
    assert_eq!(request.ssid.as_bytes(), b"Garden");
    let ConnectKey::Passphrase(p) = request.key else {
        panic!("no passphrase")
    };
    assert_eq!(p.expose_secret(), b"correct horse battery");
    assert!(matches!(portal.status(), SetupStatus::Connecting { .. }));
    assert!(!r.contains("horse"));
    // While it runs, another submission only points at the status page.
    let (r, again) = send(
        &mut portal,
        &post(&format!("net={GARDEN}&pass=other+passphrase")),
    );
    assert!(again.is_none());
    assert_eq!(status_of(&r.expect("answered")), 303);

    // An open network from the scan, without a passphrase.
    let mut portal = super::tests::portal();
    let (_, connect) = send(&mut portal, &post("net=43616665204775657374&pass="));
    assert!(matches!(connect.expect("a test").key, ConnectKey::Open));

    // A hidden network by name, and a 64-hex-digit key.
    let mut portal = super::tests::portal();
    let hexkey = "0123456789abcdef".repeat(4);
    let (_, connect) = send(
        &mut portal,
        &post(&format!("net=other&other=Attic+AP&pass={hexkey}")),
    );
    assert_eq!(connect.expect("a test").ssid.as_bytes(), b"Attic AP");
}

#[test]
fn status_pages() {
    let mut portal = portal();
    let r = send(&mut portal, &get("/status")).0.expect("answered");
    assert_eq!((status_of(&r), header(&r, "location")), (302, Some("/")));

    let ssid = Ssid::new(b"Garden").expect("short");
    portal.set_status(SetupStatus::Connecting { ssid });
    let r = send(&mut portal, &get("/status")).0.expect("answered");
    assert!(body_of(&r).contains("http-equiv=refresh content=2"));
    assert!(body_of(&r).contains("Connecting to Garden"));

    portal.set_status(SetupStatus::Connected {
        ssid,
        ip: [192, 168, 7, 41],
    });
    let r = send(&mut portal, &get("/status")).0.expect("answered");
    assert!(body_of(&r).contains("192.168.7.41"));
    assert!(!body_of(&r).contains("refresh"));

    for (failure, words) in [
        (Failure::WrongPassphrase, "refused the passphrase"),
        (Failure::NotFound, "was not found"),
        (Failure::Timeout, "did not answer in time"),
        (Failure::Other, "failed"),
    ] {
        portal.set_status(SetupStatus::Failed { ssid, failure });
        let r = send(&mut portal, &get("/status")).0.expect("answered");
        well_framed(&r);
        assert!(body_of(&r).contains(words), "{failure:?}");
        assert!(body_of(&r).contains("href=/>Try again"));
    }
    // After a failure, a new submission starts a new test.
    let (_, connect) = send(
        &mut portal,
        &post(&format!("net={GARDEN}&pass=correct+horse+battery")),
    );
    assert!(connect.is_some());
}

#[test]
fn disconnect_reasons() {
    assert_eq!(
        Failure::from_disconnect_reason(15),
        Failure::WrongPassphrase
    );
    assert_eq!(Failure::from_disconnect_reason(2), Failure::WrongPassphrase);
    assert_eq!(
        Failure::from_disconnect_reason(202),
        Failure::WrongPassphrase
    );
    assert_eq!(
        Failure::from_disconnect_reason(204),
        Failure::WrongPassphrase
    );
    assert_eq!(Failure::from_disconnect_reason(201), Failure::NotFound);
    assert_eq!(Failure::from_disconnect_reason(203), Failure::Other);
    assert_eq!(Failure::from_disconnect_reason(200), Failure::Other);
}

#[test]
fn scan_list_merges_sorts_and_caps() {
    let mut scan = ScanList::new();
    scan.add(network(b"A", -70, Security::Open));
    scan.add(network(b"B", -50, Security::Secured));
    scan.add(network(b"A", -40, Security::Secured));
    scan.add(network(b"", -10, Security::Open));
    let names: Vec<&[u8]> = scan.iter().map(|n| n.ssid.as_bytes()).collect();
    assert_eq!(names, [&b"A"[..], b"B"]);
    let a = scan.find(b"A").expect("merged");
    assert_eq!((a.rssi, a.security), (-40, Security::Secured));
    for i in 0..30u8 {
        scan.add(network(&[b'n', i], -90 + i as i8, Security::Open));
    }
    assert_eq!(scan.len(), MAX_NETWORKS);
    let rssi: Vec<i8> = scan.iter().map(|n| n.rssi).collect();
    assert!(rssi.windows(2).all(|w| w[0] >= w[1]), "{rssi:?}");
    assert_eq!(rssi[0], -40);
    assert!(scan.find(&[b'n', 0]).is_none(), "weakest dropped");
    scan.clear();
    assert!(scan.is_empty());
}

#[test]
fn session_timeouts() {
    let mut session = Session::new(1000);
    assert_eq!(session.poll(1000 + 9_999), SessionAction::Nothing);
    assert_eq!(session.poll(600_999), SessionAction::Nothing);
    session.test_started();
    assert_eq!(
        session.poll(601_000),
        SessionAction::Nothing,
        "not during a test"
    );
    session.test_finished(false);
    assert_eq!(session.poll(601_000), SessionAction::EndSetup);
    let mut done = Session::new(0);
    done.test_started();
    done.test_finished(true);
    assert_eq!(
        done.poll(10_000_000),
        SessionAction::Nothing,
        "no end after success"
    );
}

#[test]
fn rescans() {
    let mut session = Session::new(0);
    assert!(!session.scan_due(14_999, false));
    assert!(session.scan_due(15_000, false), "empty list: soon");
    assert!(!session.scan_due(20_000, true));
    assert!(!session.scan_due(134_999, true));
    assert!(
        session.scan_due(135_000, true),
        "full list: every 2 minutes"
    );
    session.rescan_soon();
    assert!(session.scan_due(135_001, true), "dropped results: at once");
    assert!(!session.scan_due(135_002, true));
    session.test_started();
    assert!(!session.scan_due(1_000_000, false), "never during a test");
    session.test_finished(true);
    assert!(!session.scan_due(2_000_000, false), "never after success");
}

#[test]
fn short_output_buffers_never_overrun() {
    for size in [0, 10, 200, 400, 1000, 4000] {
        let mut portal = portal();
        let mut buffer = RequestBuffer::new();
        let mut out = vec![0u8; size];
        if let Reply::Respond { len } = portal.receive(&mut buffer, &get("/"), &mut out) {
            assert!(len <= size);
            if len > 0 {
                let text = String::from_utf8_lossy(&out[..len]).into_owned();
                well_framed(&text);
                assert!([200, 500].contains(&status_of(&text)), "{text}");
            }
        }
    }
}

/// The response read in pieces of `chunk` bytes, as the device sends it.
fn streamed(portal: &mut Portal, request: &[u8], chunk: usize) -> Option<Vec<u8>> {
    let mut buffer = RequestBuffer::new();
    let response = match portal.receive_streamed(&mut buffer, request) {
        Streamed::Incomplete => return None,
        Streamed::Respond(r) | Streamed::Connect(r, _) => r,
    };
    let total = portal.response_len(&response);
    let mut bytes = Vec::new();
    let mut piece = vec![0u8; chunk];
    loop {
        let n = portal.read_response(&response, bytes.len(), &mut piece);
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&piece[..n]);
    }
    assert_eq!(bytes.len(), total);
    Some(bytes)
}

proptest! {
    #[test]
    fn pieces_add_up_to_the_whole_response(chunk in 1usize..3000, which in 0usize..9) {
        let requests: [Vec<u8>; 9] = [
            get("/"),
            get("/status"),
            get("/generate_204"),
            post(&format!("net={GARDEN}&pass=short")),
            post("net=other&other=%3Cx%3E&pass="),
            b"HEAD / HTTP/1.1\r\n\r\n".to_vec(),
            b"DELETE / HTTP/1.1\r\n\r\n".to_vec(),
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(3000)).into_bytes(),
            post(&format!("net={GARDEN}&pass=correct+horse+battery")),
        ];
        let request = &requests[which];
        let mut whole_portal = portal();
        let whole = send(&mut whole_portal, request).0.expect("answered");
        let mut pieces_portal = portal();
        let pieces = streamed(&mut pieces_portal, request, chunk).expect("answered");
        prop_assert_eq!(whole.as_bytes(), &pieces[..]);
    }

    #[test]
    fn receive_never_panics(
        first in proptest::collection::vec(any::<u8>(), 0..3000),
        second in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut portal = portal();
        let mut buffer = RequestBuffer::new();
        let mut out = vec![0u8; RESPONSE_CAPACITY];
        for part in [&first, &second] {
            match portal.receive(&mut buffer, part, &mut out) {
                Reply::Incomplete => {}
                Reply::Respond { len } | Reply::Connect { len, .. } => {
                    let text = String::from_utf8_lossy(&out[..len]).into_owned();
                    well_framed(&text);
                    buffer.clear();
                }
            }
        }
    }

    #[test]
    fn any_ssid_round_trips_through_the_page(ssid in proptest::collection::vec(any::<u8>(), 1..=32)) {
        let mut portal = Portal::new(config());
        portal.scan_mut().add(network(&ssid, -50, Security::Secured));
        let page = send(&mut portal, &get("/")).0.expect("answered");
        // The radio value on the page is what the browser sends back.
        let value = body_of(&page).split("name=net value=").nth(1).expect("listed");
        let value: String = value.chars().take_while(char::is_ascii_hexdigit).collect();
        let (_, connect) = send(&mut portal, &post(&format!("net={value}&pass=correct+horse+battery")));
        let accepted = connect.expect("accepted");
        prop_assert_eq!(accepted.ssid.as_bytes(), &ssid[..]);
    }

    #[test]
    fn typed_passphrases_arrive_exactly(pass in "[ -~]{8,63}") {
        let encoded: String = pass.bytes().map(|b| format!("%{b:02X}")).collect();
        let mut portal = portal();
        let (r, connect) = send(&mut portal, &post(&format!("net={GARDEN}&pass={encoded}")));
        let Some(ConnectRequest { key: ConnectKey::Passphrase(p), .. }) = connect else {
            panic!("refused");
        };
        prop_assert_eq!(p.expose_secret(), pass.as_bytes());
        prop_assert!(!r.expect("answered").contains(&encoded));
    }
}

#[test]
fn head_complete_sees_the_blank_line_only() {
    let mut portal = Portal::new(PortalConfig::new([192, 168, 4, 1], 80, "ramkey-A1B2C3"));
    let mut buffer = RequestBuffer::new();
    let head = b"POST /connect HTTP/1.1\r\nContent-Length: 5\r\n";
    assert!(matches!(
        portal.receive_streamed(&mut buffer, head),
        Streamed::Incomplete
    ));
    assert!(!buffer.head_complete());
    assert!(matches!(
        portal.receive_streamed(&mut buffer, b"\r\nne"),
        Streamed::Incomplete
    ));
    assert!(buffer.head_complete(), "a body is being received");
    buffer.clear();
    assert!(!buffer.head_complete());
}

#[test]
fn error_pages_are_mobile_pages_with_a_way_back() {
    let big = "POST /connect HTTP/1.1\r\nHost: 192.168.4.1\r\nContent-Length: 1100\r\n\r\n";
    let cases: [(&[u8], u16); 4] = [
        (big.as_bytes(), 413),
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST /nowhere HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404),
        (b"POST /connect HTTP/1.1\r\n\r\n", 411),
    ];
    for (request, code) in cases {
        let r = send(&mut portal(), request).0.expect("answered");
        well_framed(&r);
        assert_eq!(status_of(&r), code);
        let body = body_of(&r);
        assert!(body.starts_with("<!doctype html><html lang=en>"), "{body}");
        assert!(body.contains("name=viewport"), "{code}: viewport");
        assert!(body.contains("<style>"), "{code}: the portal's look");
        assert!(body.contains("class=err role=alert"), "{code}");
        assert!(body.contains("class=btn href=/"), "{code}: a way back");
        assert!(body.ends_with("</body></html>"), "{code}");
    }
    let r = send(&mut portal(), big.as_bytes()).0.expect("answered");
    assert!(
        body_of(&r).contains("history.back()"),
        "a 413 goes back in the history, where the typed form is kept"
    );
}

#[test]
fn icons_get_204_without_a_page() {
    for path in [
        "/favicon.ico",
        "/apple-touch-icon.png",
        "/apple-touch-icon-precomposed.png",
    ] {
        let r = send(&mut portal(), &get(path)).0.expect("answered");
        assert_eq!(status_of(&r), 204, "{path}");
        assert_eq!(body_of(&r), "", "{path}: no body");
        assert_eq!(
            header(&r, "content-length"),
            None,
            "RFC 9110: none on a 204"
        );
        assert_eq!(header(&r, "cache-control"), Some("max-age=86400"));
        assert_eq!(header(&r, "connection"), Some("close"));
    }
    let page = send(&mut portal(), &get("/")).0.expect("answered");
    assert!(
        body_of(&page).contains("<link rel=icon href=\"data:,\">"),
        "pages name no icon, so the browser does not ask"
    );
}

#[test]
fn form_fields_limit_bytes_and_have_labels() {
    let page = send(&mut portal(), &get("/")).0.expect("answered");
    let body = body_of(&page);
    assert!(
        body.contains("<label for=other>"),
        "the hidden name has a label"
    );
    assert!(body.contains("id=other name=other"));
    assert!(
        body.contains("new TextEncoder().encode(this.value).length>32"),
        "the name is checked in bytes"
    );
    assert!(!body.contains("maxlength=32"), "characters are not bytes");
    assert!(body.contains("pattern=\"[ -~]{8,63}|[0-9A-Fa-f]{64}\""));
    assert!(
        body.contains("border:1px solid #767676"),
        "3:1 contrast or more"
    );
}

#[test]
fn kept_state_survives_every_error_that_can_keep_it() {
    // 33 bytes of two-byte characters and more: shown again as typed, not cut to 32 bytes.
    let name = "\u{e9}".repeat(20);
    let encoded: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
    let page = form_error(&format!("net=other&other={encoded}&pass=whatever1"));
    assert!(page.contains("at most 32 bytes"));
    assert!(
        page.contains(&format!("value=\"{name}\"")),
        "the whole name kept"
    );
    // Longer than what is kept: cut at a character boundary.
    let long = "\u{e9}".repeat(60);
    let encoded: String = long.bytes().map(|b| format!("%{b:02X}")).collect();
    let page = form_error(&format!("net=other&other={encoded}&pass=whatever1"));
    assert!(page.contains(&format!("value=\"{}\"", "\u{e9}".repeat(48))));
    // A bad escape in the name keeps the "Other network" choice.
    let page = form_error("net=other&other=%zz&pass=whatever1");
    assert!(page.contains("garbled"));
    assert!(page.contains("value=other checked"));
    // And in the passphrase, the network choice.
    let page = form_error(&format!("other=x&net={GARDEN}&pass=%z"));
    assert!(page.contains(&format!("value={GARDEN} checked")));
}

#[test]
fn try_again_brings_back_the_network_that_failed() {
    let mut portal = portal();
    let garden = Ssid::new(b"Garden").expect("short");
    portal.set_status(SetupStatus::Failed {
        ssid: garden,
        failure: Failure::WrongPassphrase,
    });
    let page = send(&mut portal, &get("/")).0.expect("answered");
    assert!(body_of(&page).contains(&format!("value={GARDEN} checked")));
    let hidden = Ssid::new(b"Attic").expect("short");
    portal.set_status(SetupStatus::Failed {
        ssid: hidden,
        failure: Failure::NotFound,
    });
    let page = send(&mut portal, &get("/")).0.expect("answered");
    assert!(body_of(&page).contains("value=other checked"));
    assert!(body_of(&page).contains("value=\"Attic\""));
    portal.set_status(SetupStatus::Idle);
    let page = send(&mut portal, &get("/")).0.expect("answered");
    assert!(
        !body_of(&page).contains(" checked"),
        "a fresh form before any test"
    );
}

#[test]
fn rfc_9112_targets_and_lengths() {
    // Absolute-form targets are accepted; their authority stands in for Host.
    let r = send(
        &mut portal(),
        b"GET http://192.168.4.1/ HTTP/1.1\r\nHost: 192.168.4.1\r\n\r\n",
    )
    .0
    .expect("answered");
    assert_eq!(status_of(&r), 200);
    let r = send(&mut portal(), b"GET HTTP://192.168.4.1 HTTP/1.1\r\n\r\n")
        .0
        .expect("answered");
    assert_eq!(status_of(&r), 200, "no path is /");
    let r = send(
        &mut portal(),
        b"GET http://example.com/x HTTP/1.1\r\nHost: 192.168.4.1\r\n\r\n",
    )
    .0
    .expect("answered");
    assert_eq!(status_of(&r), 302, "the target's host decides");
    let r = send(&mut portal(), b"GET ftp://192.168.4.1/ HTTP/1.1\r\n\r\n")
        .0
        .expect("answered");
    assert_eq!(status_of(&r), 400);
    // Lengths: leading zeros are digits; a length too long to hold is too large, not bad.
    let body = format!("net={GARDEN}&pass=correct+horse+battery");
    let padded = format!(
        "POST /connect HTTP/1.1\r\nContent-Length: 0000000000{}\r\n\r\n{body}",
        body.len()
    );
    let (r, connect) = send(&mut portal(), padded.as_bytes());
    assert_eq!(status_of(&r.expect("answered")), 303);
    assert!(connect.is_some());
    for length in ["1234567890", "99999999999999999999999999"] {
        let r = format!("POST /connect HTTP/1.1\r\nContent-Length: {length}\r\n\r\n");
        let r = send(&mut portal(), r.as_bytes()).0.expect("answered");
        assert_eq!(status_of(&r), 413, "{length}");
    }
}

/// The lockout on virtual time, admission and portal together as the firmware drives them:
/// a slowloris client dribbling a header byte every 2 s and 20 idle connections, then a
/// normal `GET /` 1 s in, which is admitted and answered at once (well within the grace);
/// the slowloris is closed at its head deadline however long it keeps dribbling.
#[test]
fn lockout_on_virtual_time() {
    let mut portal = portal();
    let mut admission = Admission::<SLOTS>::new();
    let mut buffers = [RequestBuffer::new(), RequestBuffer::new()];
    let mut out = vec![0u8; RESPONSE_CAPACITY];
    let admit = |admission: &mut Admission<SLOTS>, now| match admission.open(now) {
        Admit::Slot(i) | Admit::TakeOver(i) => Some(i),
        Admit::Refuse => None,
    };
    let slow = admit(&mut admission, 0).expect("a free slot");
    let dribble = b"GET / HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain(core::iter::repeat(&b'a'));
    let mut dribble = dribble.take(200);
    let mut feed =
        |portal: &mut Portal, admission: &mut Admission<SLOTS>, buffer: &mut RequestBuffer, now| {
            let byte = [*dribble.next().expect("bytes")];
            assert!(matches!(
                portal.receive(buffer, &byte, &mut out),
                Reply::Incomplete
            ));
            admission.received(slow, now, buffer.head_complete());
        };
    feed(&mut portal, &mut admission, &mut buffers[slow], 0);
    for i in 0..20 {
        let idle = admit(&mut admission, 10 + i).expect("an idle connection gets a slot");
        assert_ne!(idle, slow, "the fresh slowloris keeps its slot");
        buffers[idle].clear();
    }
    let get_at = 1000;
    let get_slot = admit(&mut admission, get_at).expect("the GET is admitted");
    assert_ne!(get_slot, slow);
    buffers[get_slot].clear();
    let mut response = vec![0u8; RESPONSE_CAPACITY];
    let Reply::Respond { len } = portal.receive(&mut buffers[get_slot], &get("/"), &mut response)
    else {
        panic!("GET / not answered");
    };
    admission.answering(get_slot, get_at);
    let page = String::from_utf8_lossy(&response[..len]);
    assert_eq!(status_of(&page), 200);
    assert!(page.contains("Garden"));
    admission.closed(get_slot);
    let mut now = get_at;
    let closed_at = loop {
        now += 2000;
        feed(&mut portal, &mut admission, &mut buffers[slow], now);
        if let Some((slot, expired)) = admission.poll(now) {
            assert_eq!((slot, expired), (slow, Expired::Head));
            break now;
        }
        assert!(now < 60_000, "the slowloris is never closed");
    };
    assert!(closed_at >= u64::from(HEAD_DEADLINE_MS));
    assert!(closed_at < u64::from(HEAD_DEADLINE_MS + GRACE_MS));
}

#[test]
fn the_broker_fields_are_optional_validated_and_kept_without_the_password() {
    // No broker: the readings wait in the queue.
    let (_, request) = send(
        &mut portal(),
        &post(&format!("net={GARDEN}&pass=correct+horse+battery")),
    );
    assert!(request.expect("valid").broker.is_none());
    // A broker with defaults for port and period.
    let (_, request) = send(
        &mut portal(),
        &post(&format!(
            "net={GARDEN}&pass=correct+horse+battery&mqtt=broker.lan&muser=garden&mpass=p%26w+d"
        )),
    );
    let broker = request.expect("valid").broker.expect("a broker");
    assert_eq!(broker.host.as_bytes(), b"broker.lan");
    assert_eq!((broker.port, broker.period_s), (1883, 600));
    assert_eq!(broker.user(), Some(&b"garden"[..]));
    assert_eq!(
        broker.password().map(|p| p.expose_secret()),
        Some(&b"p&w d"[..])
    );
    // Every field as given.
    let (_, request) = send(
        &mut portal(),
        &post(&format!(
            "net={GARDEN}&pass=correct+horse+battery&mqtt=10.0.0.7&mport=8883&muser=&mpass=&period=5"
        )),
    );
    let broker = request.expect("valid").broker.expect("a broker");
    assert_eq!((broker.port, broker.period_s), (8883, 300));
    assert!(broker.user().is_none() && broker.password().is_none());
    // Errors name the field and keep what was typed, never the password.
    let cases = [
        ("mqtt=bad_host&mpass=hunter22", "host name", "bad_host"),
        (
            "mqtt=b.lan&mport=99999&mpass=hunter22",
            "port must be",
            "99999",
        ),
        ("mqtt=b.lan&mport=0", "port must be", "b.lan"),
        (
            "mqtt=b.lan&period=61&muser=u&mpass=hunter22",
            "1 to 60 minutes",
            "value=\"61\"",
        ),
        ("mqtt=b.lan&mpass=hunter22", "needs a user name", "b.lan"),
        ("muser=u&mpass=hunter22", "host name", "value=\"u\""),
        ("mqtt=b.lan&muser=a+b", "no spaces", "a b"),
    ];
    for (fields, message, kept) in cases {
        let page = form_error(&format!("net={GARDEN}&pass=correct+horse+battery&{fields}"));
        assert!(page.contains(message), "{fields}: {page}");
        assert!(page.contains(kept), "{fields}: {kept} not kept");
        assert!(
            !page.contains("hunter22"),
            "{fields}: the password shown again"
        );
        assert!(
            page.contains(&format!("value={GARDEN} checked")),
            "{fields}"
        );
    }
}
