//! IP allowlists: IPv4 and IPv6 addresses and CIDR blocks, at most 20 entries, stored in a
//! canonical form, and matched against client addresses with IPv4-mapped IPv6 folded to
//! IPv4 (`::ffff:1.2.3.4` matches `1.2.3.0/24`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most entries one key's whitelist may hold (Model Studio's limit).
pub const MAX_ALLOWLIST_ENTRIES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpAllowlistError {
    #[error("at most {MAX_ALLOWLIST_ENTRIES} IP entries are allowed, got {0}")]
    TooManyEntries(usize),
    #[error("'{0}' is not an IPv4 or IPv6 address or CIDR block")]
    Malformed(String),
    #[error("'{0}' has a prefix length beyond the address size")]
    PrefixTooLong(String),
    #[error("'{0}' has a zone index (%...), which cannot be whitelisted")]
    ZoneIndex(String),
}

/// One network: an address with its prefix length, host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    address: IpAddr,
    prefix_length: u8,
}

/// Folds `::ffff:a.b.c.d` to `a.b.c.d`, so one address has one form.
pub fn canonical_address(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn mask_v4(address: Ipv4Addr, prefix_length: u8) -> Ipv4Addr {
    let bits = u32::from(address);
    let mask = if prefix_length == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix_length)) };
    Ipv4Addr::from(bits & mask)
}

fn mask_v6(address: Ipv6Addr, prefix_length: u8) -> Ipv6Addr {
    let bits = u128::from(address);
    let mask = if prefix_length == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix_length)) };
    Ipv6Addr::from(bits & mask)
}

impl IpNetwork {
    /// Parses `1.2.3.4`, `1.2.3.0/24`, `2001:db8::1`, `2001:db8::/32`, `::ffff:1.2.3.0/120`.
    pub fn parse(entry: &str) -> Result<IpNetwork, IpAllowlistError> {
        let trimmed = entry.trim();
        // A key pasted into the whitelist is not repeated back.
        let shown = || crate::keys::shown_input(trimmed, 60);
        if trimmed.contains('%') {
            return Err(IpAllowlistError::ZoneIndex(shown()));
        }
        let (address_text, prefix_text) = match trimmed.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (trimmed, None),
        };
        let address: IpAddr = address_text.parse().map_err(|_| IpAllowlistError::Malformed(shown()))?;
        let maximum = if address.is_ipv4() { 32 } else { 128 };
        let prefix_length = match prefix_text {
            None => maximum,
            Some(text) => {
                if text.is_empty() || text.len() > 3 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(IpAllowlistError::Malformed(shown()));
                }
                let value: u8 = text.parse().map_err(|_| IpAllowlistError::Malformed(shown()))?;
                if value > maximum {
                    return Err(IpAllowlistError::PrefixTooLong(shown()));
                }
                value
            }
        };
        Ok(IpNetwork::new(address, prefix_length))
    }

    fn new(address: IpAddr, prefix_length: u8) -> IpNetwork {
        match address {
            IpAddr::V4(v4) => IpNetwork { address: IpAddr::V4(mask_v4(v4, prefix_length)), prefix_length },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // A mapped block is stored as the IPv4 block it denotes.
                Some(v4) if prefix_length >= 96 => {
                    let v4_prefix = prefix_length - 96;
                    IpNetwork { address: IpAddr::V4(mask_v4(v4, v4_prefix)), prefix_length: v4_prefix }
                }
                _ => IpNetwork { address: IpAddr::V6(mask_v6(v6, prefix_length)), prefix_length },
            },
        }
    }

    /// True when `client` (canonicalised) is inside this network.
    pub fn contains(&self, client: IpAddr) -> bool {
        match (self.address, canonical_address(client)) {
            (IpAddr::V4(network), IpAddr::V4(client)) => mask_v4(client, self.prefix_length) == network,
            (IpAddr::V6(network), IpAddr::V6(client)) => mask_v6(client, self.prefix_length) == network,
            _ => false,
        }
    }

    /// Canonical text: a single address without `/32` or `/128`, else `network/prefix`.
    pub fn canonical_text(&self) -> String {
        let full = if self.address.is_ipv4() { 32 } else { 128 };
        if self.prefix_length == full {
            self.address.to_string()
        } else {
            format!("{}/{}", self.address, self.prefix_length)
        }
    }
}

/// A key's IP whitelist. Empty means "any address" (docs/CONTRACT.md#key-fields: `Custom` without `accessIps`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpAllowlist {
    networks: Vec<IpNetwork>,
}

impl IpAllowlist {
    /// Parses every entry; duplicates (after canonicalisation) are kept once.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<IpAllowlist, IpAllowlistError> {
        if entries.len() > MAX_ALLOWLIST_ENTRIES {
            return Err(IpAllowlistError::TooManyEntries(entries.len()));
        }
        let mut networks: Vec<IpNetwork> = Vec::with_capacity(entries.len());
        for entry in entries {
            let network = IpNetwork::parse(entry.as_ref())?;
            if !networks.contains(&network) {
                networks.push(network);
            }
        }
        Ok(IpAllowlist { networks })
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// True when the list is empty (any address) or some entry contains `client`.
    pub fn allows(&self, client: IpAddr) -> bool {
        self.networks.is_empty() || self.networks.iter().any(|network| network.contains(client))
    }

    /// Canonical entries, for storage and display.
    pub fn canonical_entries(&self) -> Vec<String> {
        self.networks.iter().map(IpNetwork::canonical_text).collect()
    }
}

/// Parses a client address as it arrives in a header; `None` when it cannot be parsed
/// (such an address matches nothing).
pub fn parse_client_address(text: &str) -> Option<IpAddr> {
    let trimmed = text.trim().trim_start_matches('[').trim_end_matches(']');
    trimmed.parse::<IpAddr>().ok().map(canonical_address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn accepts_addresses_and_blocks_and_canonicalises_them() {
        let list = IpAllowlist::parse(&["10.1.2.3/8", "192.168.1.1", "2001:DB8::1/32", "::ffff:1.2.3.4", "fe80::1"]).unwrap();
        assert_eq!(list.canonical_entries(), ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "1.2.3.4", "fe80::1"]);
    }

    #[test]
    fn refuses_bad_entries_with_reasons() {
        assert_eq!(IpNetwork::parse("10.0.0.0/33"), Err(IpAllowlistError::PrefixTooLong("10.0.0.0/33".into())));
        assert_eq!(IpNetwork::parse("fe80::1%eth0"), Err(IpAllowlistError::ZoneIndex("fe80::1%eth0".into())));
        assert!(matches!(IpNetwork::parse("10.0.0"), Err(IpAllowlistError::Malformed(_))));
        assert!(matches!(IpNetwork::parse("10.0.0.0/"), Err(IpAllowlistError::Malformed(_))));
        assert!(matches!(IpNetwork::parse("10.0.0.0/+8"), Err(IpAllowlistError::Malformed(_))));
        assert!(matches!(IpNetwork::parse("::/129"), Err(IpAllowlistError::PrefixTooLong(_))));
        let twenty_one: Vec<String> = (0..21).map(|n| format!("10.0.0.{n}")).collect();
        assert_eq!(IpAllowlist::parse(&twenty_one), Err(IpAllowlistError::TooManyEntries(21)));
        assert!(IpAllowlist::parse(&twenty_one[..20]).is_ok());
    }

    #[test]
    fn matching_folds_ipv4_mapped_addresses() {
        let list = IpAllowlist::parse(&["1.2.3.0/24", "2001:db8::/32"]).unwrap();
        assert!(list.allows(ip("1.2.3.200")));
        assert!(list.allows(ip("::ffff:1.2.3.4")));
        assert!(!list.allows(ip("1.2.4.1")));
        assert!(list.allows(ip("2001:db8:ffff::1")));
        assert!(!list.allows(ip("2001:db9::1")));
        let mapped_block = IpAllowlist::parse(&["::ffff:10.0.0.0/104"]).unwrap();
        assert!(mapped_block.allows(ip("10.200.0.1")));
    }

    #[test]
    fn empty_list_allows_any_address() {
        assert!(IpAllowlist::default().allows(ip("203.0.113.9")));
    }

    #[test]
    fn zero_prefix_matches_its_family_only() {
        let list = IpAllowlist::parse(&["0.0.0.0/0"]).unwrap();
        assert!(list.allows(ip("8.8.8.8")));
        assert!(!list.allows(ip("2001:db8::1")));
    }

    #[test]
    fn client_addresses_that_cannot_be_parsed_are_none() {
        assert_eq!(parse_client_address("[::ffff:1.2.3.4]"), Some(ip("1.2.3.4")));
        assert_eq!(parse_client_address("unknown"), None);
    }
}
