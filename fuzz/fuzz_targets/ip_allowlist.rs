//! IP allowlists: the entries a key's whitelist is made of (addresses and CIDR blocks,
//! IPv4, IPv6 and IPv4-mapped IPv6), the whole list, and client addresses as headers
//! carry them. The input is one entry a line.
//!
//! Invariants:
//! - an entry that parses has a canonical text that parses to the same network and is
//!   its own canonical text; the block contains its first and last address and neither
//!   neighbour outside it; a refusal repeats at most 60 characters of the entry;
//! - a list parses when it has at most 20 entries that all parse; its canonical entries
//!   have no repeats and parse back to the same list;
//! - a client address is canonical (never IPv4-mapped IPv6), and an IPv4 client and its
//!   IPv4-mapped IPv6 form are allowed alike.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use keygate_core::ip_allowlist::{parse_client_address, IpAllowlist, IpAllowlistError, IpNetwork, MAX_ALLOWLIST_ENTRIES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let entries: Vec<&str> = text.split('\n').collect();
    let mut all_parse = true;
    for entry in &entries {
        all_parse &= check_entry(entry);
    }
    let clients: Vec<IpAddr> = entries.iter().filter_map(|entry| parse_client_address(entry.split('/').next().unwrap_or(""))).collect();
    match IpAllowlist::parse(&entries) {
        Ok(list) => {
            assert!(entries.len() <= MAX_ALLOWLIST_ENTRIES && all_parse);
            let canonical = list.canonical_entries();
            let mut unique = canonical.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), canonical.len(), "repeats in {canonical:?}");
            assert_eq!(IpAllowlist::parse(&canonical).as_ref(), Ok(&list));
            assert_eq!(list.is_empty(), entries.is_empty());
            for client in clients {
                assert!(!is_mapped(client), "{client} is not canonical");
                if let IpAddr::V4(v4) = client {
                    assert_eq!(list.allows(client), list.allows(IpAddr::V6(v4.to_ipv6_mapped())), "{client}");
                }
            }
        }
        Err(IpAllowlistError::TooManyEntries(count)) => assert!(count > MAX_ALLOWLIST_ENTRIES && count == entries.len()),
        Err(_) => assert!(!all_parse),
    }
});

fn is_mapped(address: IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// Checks one entry; true when it parses.
fn check_entry(entry: &str) -> bool {
    let network = match IpNetwork::parse(entry) {
        Ok(network) => network,
        Err(error) => {
            let shown = match &error {
                IpAllowlistError::Malformed(shown) | IpAllowlistError::PrefixTooLong(shown) | IpAllowlistError::ZoneIndex(shown) => shown,
                IpAllowlistError::TooManyEntries(_) => panic!("one entry cannot be too many"),
            };
            assert!(shown.chars().count() <= 60, "{error}");
            return false;
        }
    };
    let canonical = network.canonical_text();
    assert_eq!(IpNetwork::parse(&canonical), Ok(network), "{entry:?} -> {canonical:?}");
    assert_eq!(IpNetwork::parse(&canonical).map(|again| again.canonical_text()), Ok(canonical.clone()));
    let (address, prefix) = match canonical.split_once('/') {
        Some((address, prefix)) => (address.parse::<IpAddr>().expect("address"), prefix.parse::<u32>().expect("prefix")),
        None => {
            let address = canonical.parse::<IpAddr>().expect("address");
            (address, if address.is_ipv4() { 32 } else { 128 })
        }
    };
    assert!(!is_mapped(address), "{canonical:?} keeps a mapped address");
    match address {
        IpAddr::V4(v4) => {
            assert!(prefix <= 32);
            let first = u32::from(v4);
            let host_bits = u32::MAX.checked_shr(prefix).unwrap_or(0);
            assert_eq!(first & host_bits, 0, "{canonical:?} has host bits");
            let last = first | host_bits;
            let inside = |bits: u32| network.contains(IpAddr::V4(Ipv4Addr::from(bits)));
            assert!(inside(first) && inside(last), "{canonical:?}");
            assert!(first.checked_sub(1).is_none_or(|before| !inside(before)), "{canonical:?}");
            assert!(last.checked_add(1).is_none_or(|after| !inside(after)), "{canonical:?}");
            // The same block as a client sends it over IPv6.
            assert!(network.contains(IpAddr::V6(Ipv4Addr::from(last).to_ipv6_mapped())));
        }
        IpAddr::V6(v6) => {
            assert!(prefix <= 128);
            let first = u128::from(v6);
            let host_bits = u128::MAX.checked_shr(prefix).unwrap_or(0);
            assert_eq!(first & host_bits, 0, "{canonical:?} has host bits");
            let last = first | host_bits;
            let inside = |bits: u128| network.contains(IpAddr::V6(Ipv6Addr::from(bits)));
            // A mapped client is folded to IPv4 first, so an IPv6 block never holds one.
            let plain = |bits: u128| Ipv6Addr::from(bits).to_ipv4_mapped().is_none();
            assert!(!plain(first) || inside(first), "{canonical:?}");
            assert!(!plain(last) || inside(last), "{canonical:?}");
            assert!(first.checked_sub(1).is_none_or(|before| !inside(before)), "{canonical:?}");
            assert!(last.checked_add(1).is_none_or(|after| !inside(after)), "{canonical:?}");
        }
    }
    true
}
