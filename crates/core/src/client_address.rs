//! Which address a request comes from: the TCP peer, unless the peer is a trusted proxy;
//! then `X-Forwarded-For` is walked from the right, skipping trusted addresses, and the
//! first untrusted one is the client.

use std::net::IpAddr;

use crate::ip_allowlist::{canonical_address, parse_client_address, IpNetwork};

/// Resolves the client address. `None` when the header names an address that cannot be
/// parsed where the walk stops (such an address matches no whitelist entry).
pub fn resolve_client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: &[IpNetwork]) -> Option<IpAddr> {
    let peer = canonical_address(peer);
    let is_trusted = |address: IpAddr| trusted_proxies.iter().any(|network| network.contains(address));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else { return Some(peer) };
    let mut last_trusted = peer;
    for hop in header.rsplit(',') {
        match parse_client_address(hop) {
            Some(address) if is_trusted(address) => last_trusted = address,
            Some(address) => return Some(address),
            None => return None,
        }
    }
    // Every hop was a trusted proxy: the leftmost one is the best we know.
    Some(last_trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_spoof_the_header() {
        let trusted = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        assert_eq!(resolve_client_address(ip("203.0.113.5"), Some("1.2.3.4"), &trusted), Some(ip("203.0.113.5")));
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trusted = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        assert_eq!(resolve_client_address(ip("10.0.0.1"), Some("6.6.6.6, 198.51.100.7, 10.0.0.9"), &trusted), Some(ip("198.51.100.7")));
        assert_eq!(resolve_client_address(ip("::ffff:10.0.0.1"), Some("::ffff:198.51.100.7"), &trusted), Some(ip("198.51.100.7")));
        assert_eq!(resolve_client_address(ip("10.0.0.1"), Some("garbage"), &trusted), None);
        assert_eq!(resolve_client_address(ip("10.0.0.1"), None, &trusted), Some(ip("10.0.0.1")));
    }
}
