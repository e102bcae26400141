//! The client address behind trusted proxies: `X-Forwarded-For` walked from the right.
//! The input is lines: the trusted proxies (comma-separated allowlist entries), the TCP
//! peer, the `X-Forwarded-For` header (absent when the line is), and text a client
//! prepends to the header.
//!
//! Invariants:
//! - an untrusted peer, or a request without the header, is its own client;
//! - an answer is canonical (never IPv4-mapped IPv6) and is the peer or a hop of the
//!   header; it is the rightmost hop that is not a trusted proxy, or, when every hop is
//!   trusted, the leftmost; an unparseable hop reached before that makes it `None`;
//! - what a client writes to the left of the header cannot change an answer that is not
//!   a trusted proxy: a client cannot choose its own address.

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

    let is_trusted = |address: IpAddr| trusted.iter().any(|network| network.contains(address));
    let answer = resolve_client_address(peer, header, &trusted);
    let peer = canonical_address(peer);
    let Some(header) = header.filter(|_| is_trusted(peer)) else {
        assert_eq!(answer, Some(peer));
        return;
    };

    // The walk, written out: hops from the right until one is not a trusted proxy.
    let hops: Vec<Option<IpAddr>> = header.split(',').map(parse_client_address).collect();
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
            let spoofed = format!("{}, {header}", spoofed.unwrap_or("203.0.113.66"));
            assert_eq!(resolve_client_address(peer, Some(&spoofed), &trusted), answer, "{spoofed:?} moved the client");
        }
    }
});
