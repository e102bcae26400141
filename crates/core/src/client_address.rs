//! Which address a request comes from: the TCP peer, unless the peer is a trusted proxy;
//! then `X-Forwarded-For` is walked from the right, skipping trusted addresses, and the
//! first untrusted one is the client.

use std::net::IpAddr;

use crate::ip_allowlist::{canonical_address, parse_client_address, IpNetwork};

/// Resolves the client address from `forwarded_for`, the values of every `X-Forwarded-For`
/// line of the request in the order they came. Several lines are one list, as HTTP joins a
/// repeated field (RFC 9110, 5.3): a proxy that adds its own line after the client's (as
/// HAProxy does) puts the hop it saw last, and a walk that read only the first line would
/// take the client's own claim. `None` when the walk stops at a hop that cannot be parsed
/// (not text, or not an address): such a client matches no whitelist entry.
pub fn resolve_client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted_proxies: &[IpNetwork],
) -> Option<IpAddr> {
    let peer = canonical_address(peer);
    let is_trusted = |address: IpAddr| trusted_proxies.iter().any(|network| network.contains(address));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut last_trusted = peer;
    for line in forwarded_for.rev() {
        let Ok(line) = std::str::from_utf8(line) else { return None };
        for hop in line.rsplit(',') {
            match parse_client_address(hop) {
                Some(address) if is_trusted(address) => last_trusted = address,
                Some(address) => return Some(address),
                None => return None,
            }
        }
    }
    // Every hop was a trusted proxy (or there was no header): the leftmost is the best we know.
    Some(last_trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// The values of a request's `X-Forwarded-For` lines.
    fn lines<'a>(values: &'a [&'a str]) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        values.iter().map(|value| value.as_bytes())
    }

    #[test]
    fn untrusted_peers_cannot_spoof_the_header() {
        let trusted = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        assert_eq!(resolve_client_address(ip("203.0.113.5"), lines(&["1.2.3.4"]), &trusted), Some(ip("203.0.113.5")));
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trusted = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        assert_eq!(resolve_client_address(ip("10.0.0.1"), lines(&["6.6.6.6, 198.51.100.7, 10.0.0.9"]), &trusted), Some(ip("198.51.100.7")));
        assert_eq!(resolve_client_address(ip("::ffff:10.0.0.1"), lines(&["::ffff:198.51.100.7"]), &trusted), Some(ip("198.51.100.7")));
        assert_eq!(resolve_client_address(ip("10.0.0.1"), lines(&["garbage"]), &trusted), None);
        assert_eq!(resolve_client_address(ip("10.0.0.1"), lines(&[]), &trusted), Some(ip("10.0.0.1")));
        assert_eq!(resolve_client_address(ip("10.0.0.1"), [&b"caf\xc3\xa9"[..]].into_iter(), &trusted), None, "not text");
    }

    #[test]
    fn a_header_on_several_lines_is_one_list_walked_from_its_last_line() {
        // The client sent its own line; the trusted proxy added its own after it.
        let trusted = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        assert_eq!(resolve_client_address(ip("10.0.0.1"), lines(&["192.0.2.10", "198.51.100.7"]), &trusted), Some(ip("198.51.100.7")));
        assert_eq!(
            resolve_client_address(ip("10.0.0.1"), lines(&["192.0.2.10", "198.51.100.7, 10.0.0.9", "10.0.0.8"]), &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(resolve_client_address(ip("10.0.0.1"), lines(&["10.0.0.7", "10.0.0.8"]), &trusted), Some(ip("10.0.0.7")));
    }
}
