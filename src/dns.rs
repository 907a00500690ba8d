//! Captive DNS: every name resolves to the setup access point.
//!
//! While the setup AP is up, phones ask its DHCP-announced DNS server (the device) for
//! `connectivitycheck.gstatic.com`, `captive.apple.com` and the like. [`answer`] replies to
//! every A question with the AP's address, so the phone's probe reaches the portal and the
//! phone opens it by itself. AAAA and every other type get an empty NOERROR answer (no IPv6
//! address to offer, and an error would make some phones retry elsewhere).
//!
//! Guarantees: [`answer`] never panics and never writes past `out`; anything that is not a
//! single-question standard query of class IN (a response, another opcode, a truncated name,
//! answer or authority records) is an error, and the caller drops the datagram. Additional
//! records (EDNS OPT, which phones send) are ignored, and the answer carries none.
//!
//! Parsing uses smoltcp's DNS wire types (`DnsPacket`, `DnsQuestion`, features `proto-dns` and
//! `proto-ipv4` only: no interface, no sockets). smoltcp has no way to emit a resource record,
//! so the one A record of the answer (16 bytes) is written here. `edge-captive` 0.8 (its
//! synchronous `reply`, no default features) does the whole job too, and was measured in the
//! SDK build in its place: 2,758 bytes more flash code and 614 bytes more DRAM constants than
//! this module, and it needs portable-atomic with a critical-section implementation, which the
//! firmware does not otherwise have (`domain` pulls in `jiff`, whose atomics need CAS, which
//! the lx106 lacks). Fuzzed by `fuzz/fuzz_targets/dns_answer.rs`.

/// Length of the DNS header.
pub const HEADER_LEN: usize = 12;
/// Largest datagram answered (classic DNS over UDP).
pub const MAX_DATAGRAM: usize = 512;
use smoltcp::wire::{DnsFlags, DnsOpcode, DnsPacket, DnsQueryType, DnsQuestion};

/// Seconds a phone may cache the answer: short, so the real network's answers win soon after
/// setup.
pub const TTL_SECONDS: u32 = 60;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
/// Name compression pointer marker in a label length byte.
const POINTER: u8 = 0xC0;
/// One answer: name pointer, type, class, TTL, length, IPv4 address.
const ANSWER_LEN: usize = 2 + 2 + 2 + 4 + 2 + 4;

/// Why a datagram gets no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// Shorter than its header or question says, or longer than [`MAX_DATAGRAM`].
    Truncated,
    /// A response, or a query with an opcode other than QUERY.
    NotAQuery,
    /// Not exactly one question, or answer/authority records in a query.
    QuestionCount,
    /// The question's name or type and class cannot be read, or the class is not IN.
    BadName,
    /// `out` cannot hold the answer.
    OutputTooSmall,
}

impl core::fmt::Display for DnsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DnsError::Truncated => "DNS datagram truncated or oversize",
            DnsError::NotAQuery => "not a standard DNS query",
            DnsError::QuestionCount => "DNS query without exactly one question",
            DnsError::BadName => "malformed name in DNS question",
            DnsError::OutputTooSmall => "DNS answer does not fit the buffer",
        })
    }
}

impl core::error::Error for DnsError {}

/// Writes the answer to `query` into `out` and returns its length.
///
/// # Errors
/// Why the datagram gets no answer ([`DnsError`]); the caller drops it silently.
pub fn answer(query: &[u8], ap_ip: [u8; 4], out: &mut [u8]) -> Result<usize, DnsError> {
    if query.len() > MAX_DATAGRAM {
        return Err(DnsError::Truncated);
    }
    let packet = DnsPacket::new_checked(query).map_err(|_| DnsError::Truncated)?;
    if packet.flags().contains(DnsFlags::RESPONSE) || packet.opcode() != DnsOpcode::Query {
        return Err(DnsError::NotAQuery);
    }
    // One question, no answers or authority; additional records (EDNS OPT) are ignored.
    if packet.question_count() != 1
        || packet.answer_record_count() != 0
        || packet.authority_record_count() != 0
    {
        return Err(DnsError::QuestionCount);
    }
    let (rest, question) = DnsQuestion::parse(packet.payload()).map_err(|_| DnsError::BadName)?;
    let question_end = query.len() - rest.len();
    let with_address = question.type_ == DnsQueryType::A;
    let total = question_end + if with_address { ANSWER_LEN } else { 0 };
    let out = out.get_mut(..total).ok_or(DnsError::OutputTooSmall)?;

    out[..question_end].copy_from_slice(&query[..question_end]);
    let mut flags = DnsFlags::RESPONSE | DnsFlags::AUTHORITATIVE;
    flags |= packet.flags() & DnsFlags::RECURSION_DESIRED;
    // ID and question kept; QR and AA set, RD copied; opcode QUERY, Z, RA and RCODE
    // (NOERROR) all zero: the whole flags word is written, nothing of the query's survives.
    out[2..4].copy_from_slice(&flags.bits().to_be_bytes());
    let mut response = DnsPacket::new_unchecked(&mut out[..]);
    response.set_answer_record_count(u16::from(with_address));
    response.set_authority_record_count(0);
    response.set_additional_record_count(0);
    if with_address {
        let record = &mut out[question_end..];
        record[0..2].copy_from_slice(&[POINTER, HEADER_LEN as u8]); // the question's name
        record[2..4].copy_from_slice(&TYPE_A.to_be_bytes());
        record[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
        record[6..10].copy_from_slice(&TTL_SECONDS.to_be_bytes());
        record[10..12].copy_from_slice(&4u16.to_be_bytes());
        record[12..16].copy_from_slice(&ap_ip);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const AP: [u8; 4] = [192, 168, 4, 1];

    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = Vec::new();
        q.extend_from_slice(&id.to_be_bytes());
        q.extend_from_slice(&[0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn a_query_gets_the_access_point() {
        let q = query(0xBEEF, "connectivitycheck.gstatic.com", 1);
        let mut out = [0u8; 512];
        let n = answer(&q, AP, &mut out).expect("answered");
        let r = &out[..n];
        assert_eq!(&r[..2], &[0xBE, 0xEF]);
        assert_eq!(r[2], 0x85, "QR, AA and RD");
        assert_eq!(r[3], 0, "NOERROR");
        assert_eq!(&r[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&r[12..q.len()], &q[12..], "question echoed");
        assert_eq!(
            &r[q.len()..],
            &[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 168, 4, 1]
        );
    }

    #[test]
    fn nothing_of_the_query_flags_but_rd_survives() {
        let mut q = query(3, "a.example", 1);
        q[2] |= 0x06; // TC and AA set by a confused client
        q[3] = 0xFF; // RA, Z and a non-zero RCODE
        let mut out = [0u8; 512];
        answer(&q, AP, &mut out).expect("answered");
        assert_eq!(&out[2..4], &[0x85, 0x00]);
    }

    #[test]
    fn aaaa_and_others_get_an_empty_answer() {
        for qtype in [28u16, 65, 16, 255] {
            let q = query(7, "captive.apple.com", qtype);
            let mut out = [0u8; 512];
            let n = answer(&q, AP, &mut out).expect("answered");
            assert_eq!(n, q.len());
            assert_eq!(&out[6..8], &[0, 0], "no answer records for type {qtype}");
            assert_eq!(out[3], 0, "NOERROR");
        }
    }

    #[test]
    fn edns_additional_record_is_ignored() {
        let mut q = query(9, "example.org", 1);
        q[11] = 1; // ARCOUNT 1: an OPT record follows
        q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        let mut out = [0u8; 512];
        let n = answer(&q, AP, &mut out).expect("answered");
        assert_eq!(&out[10..12], &[0, 0], "no additional records in the answer");
        assert_eq!(&out[n - 4..n], &AP);
    }

    #[test]
    fn malformed_datagrams_are_dropped() {
        let mut out = [0u8; 512];
        let good = query(1, "a.b", 1);
        assert_eq!(answer(&good[..11], AP, &mut out), Err(DnsError::Truncated));
        assert_eq!(
            answer(&good[..good.len() - 1], AP, &mut out),
            Err(DnsError::BadName)
        );
        let mut response = good.clone();
        response[2] |= 0x80;
        assert_eq!(answer(&response, AP, &mut out), Err(DnsError::NotAQuery));
        let mut opcode = good.clone();
        opcode[2] |= 0x10;
        assert_eq!(answer(&opcode, AP, &mut out), Err(DnsError::NotAQuery));
        let mut two = good.clone();
        two[5] = 2;
        assert_eq!(answer(&two, AP, &mut out), Err(DnsError::QuestionCount));
        let mut label_past_end = good.clone();
        label_past_end[12] = 60;
        assert_eq!(
            answer(&label_past_end, AP, &mut out),
            Err(DnsError::BadName)
        );
        let mut reserved_bits = good.clone();
        reserved_bits[12] = 0x80;
        assert_eq!(answer(&reserved_bits, AP, &mut out), Err(DnsError::BadName));
        let mut chaos_class = good.clone();
        let last = chaos_class.len() - 1;
        chaos_class[last] = 3;
        assert_eq!(answer(&chaos_class, AP, &mut out), Err(DnsError::BadName));
        assert_eq!(answer(&[0u8; 600], AP, &mut out), Err(DnsError::Truncated));
        assert_eq!(
            answer(&good, AP, &mut out[..good.len()]),
            Err(DnsError::OutputTooSmall)
        );
    }

    #[test]
    fn longest_names_are_answered() {
        let label = "y".repeat(63);
        let name = [label.as_str(); 3].join(".") + "." + &"z".repeat(61);
        let q = query(2, &name, 1);
        let mut out = [0u8; 512];
        assert!(answer(&q, AP, &mut out).is_ok(), "a 253-character name");
    }

    proptest! {
        #[test]
        fn never_panics_and_answers_keep_the_id(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut out = [0u8; 600];
            if let Ok(n) = answer(&bytes, AP, &mut out) {
                prop_assert!(n >= HEADER_LEN + 5);
                prop_assert_eq!(&out[..2], &bytes[..2]);
                prop_assert_eq!(out[2] & 0x80, 0x80);
                prop_assert_eq!(out[3], 0, "NOERROR, RA clear");
                prop_assert_eq!(&out[4..6], &[0, 1]);
            }
        }

        #[test]
        fn every_a_query_is_answered(labels in proptest::collection::vec("[a-z0-9-]{1,20}", 1..6), id in any::<u16>()) {
            let q = query(id, &labels.join("."), 1);
            let mut out = [0u8; 512];
            let n = answer(&q, AP, &mut out).expect("valid query");
            prop_assert_eq!(&out[n - 4..n], &AP);
        }
    }
}
