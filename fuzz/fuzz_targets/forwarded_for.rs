//! The client address behind trusted proxies: `X-Forwarded-For` walked from the right.
//! The input is lines: the trusted proxies (comma-separated allowlist entries), the TCP
//! peer, the `X-Forwarded-For` header (absent when the line is; `|` separates the lines of
//! a header sent on several), and text a client prepends to the header, in its first line
//! and as a line of its own before the others.
//!
//! Invariants:
//! - an untrusted peer, or a request without the header, is its own client;
//! - an answer is canonical (never IPv4-mapped IPv6) and is the peer or a hop of the
//!   header; it is the rightmost hop that is not a trusted proxy, or, when every hop is
//!   trusted, the leftmost; an unparseable hop reached before that makes it `None`;
//! - several lines are one list, the last line's hops the nearest;
//! - what a client writes to the left of the header, or in a line before the proxies',
//!   cannot change an answer that is not a trusted proxy: a client cannot choose its own
//!   address.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use keygate_core::client_address::resolve_client_address;
use keygate_core::ip_allowlist::{canonical_address, parse_client_address, IpNetwork};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let trusted: Vec<IpNetwork> = lines.next().unwrap_or("").split(',').filter_map(|entry| IpNetwork::parse(entry).ok()).collect();
    let peer = lines.next().and_then(parse_client_address).unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let header = lines.next();
    let spoofed = lines.next();
    // resolve_client_address over the lines of `header` (none when absent).
    let resolve = |header: Option<&str>| {
        let header_lines: Vec<&[u8]> = header.map(|header| header.split('|').map(str::as_bytes).collect()).unwrap_or_default();
        resolve_client_address(peer, header_lines.into_iter(), &trusted)
    };

    let is_trusted = |address: IpAddr| trusted.iter().any(|network| network.contains(address));
    let answer = resolve(header);
    let peer = canonical_address(peer);
    let Some(header) = header.filter(|_| is_trusted(peer)) else {
        assert_eq!(answer, Some(peer));
        return;
    };

    // The walk, written out: hops from the right until one is not a trusted proxy.
    let hops: Vec<Option<IpAddr>> = header.split(['|', ',']).map(parse_client_address).collect();
    let mut expected = Some(peer);
    for hop in hops.iter().rev() {
        match hop {
            Some(address) if is_trusted(*address) => expected = Some(*address),
            Some(address) => {
                expected = Some(*address);
                break;
            }
            None => {
                expected = None;
                break;
            }
        }
    }
    assert_eq!(answer, expected, "peer {peer}, header {header:?}");
    if let Some(address) = answer {
        assert!(!matches!(address, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()), "{address} is not canonical");
        assert!(hops.contains(&Some(address)), "{address} is not in {header:?}");
        if !is_trusted(address) {
            let claim = spoofed.unwrap_or("203.0.113.66");
            let prepended = format!("{claim}, {header}");
            assert_eq!(resolve(Some(&prepended)), answer, "{prepended:?} moved the client");
            let own_line = format!("{claim}|{header}");
            assert_eq!(resolve(Some(&own_line)), answer, "{own_line:?} moved the client");
        }
    }
});
