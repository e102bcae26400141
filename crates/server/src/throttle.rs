//! Counting per subject in fixed one-minute windows, and the two throttles built on it:
//! failed authentications per client address (IPv6 per /64), which never blocks a valid
//! key because the gateway consults it only after a key failed (logins use another
//! instance, consulted before the password is checked), and temporary keys minted per API
//! key ([`MintCounter`], which also keeps the audit summaries of each minute's mints).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use keygate_store::{AuditContext, Store};

const WINDOW_SECONDS: i64 = 60;
/// Entries beyond this are pruned of expired windows, so memory stays bounded.
const PRUNE_THRESHOLD: usize = 100_000;

/// The unit failures are counted in: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
    Unknown,
}

fn bucket_of(address: Option<IpAddr>) -> Bucket {
    match address {
        Some(IpAddr::V4(v4)) => Bucket::V4(v4.octets()),
        Some(IpAddr::V6(v6)) => {
            let octets = v6.octets();
            Bucket::V6Prefix(octets[..8].try_into().expect("8 bytes"))
        }
        None => Bucket::Unknown,
    }
}

/// Events per subject in the current one-minute window. Memory stays bounded: past
/// [`PRUNE_THRESHOLD`] subjects, those of earlier windows are dropped.
#[derive(Debug)]
pub struct WindowCounter<K> {
    limit_per_window: u32,
    windows: Mutex<HashMap<K, (i64, u32)>>,
}

/// The start of the window `now_seconds` falls in, and the seconds left in it (at least 1).
fn window_of(now_seconds: i64) -> (i64, u64) {
    let window_start = now_seconds - now_seconds.rem_euclid(WINDOW_SECONDS);
    (window_start, u64::try_from(window_start + WINDOW_SECONDS - now_seconds).unwrap_or(1).max(1))
}

impl<K: std::hash::Hash + Eq + Copy> WindowCounter<K> {
    pub fn new(limit_per_window: u32) -> WindowCounter<K> {
        WindowCounter { limit_per_window, windows: Mutex::new(HashMap::new()) }
    }

    /// The seconds to wait when `subject` has already reached its limit in this window
    /// (so that one more event would pass it); `None` when it may go on. Counts nothing.
    pub fn retry_after(&self, subject: K, now_seconds: i64) -> Option<u64> {
        let (window_start, left) = window_of(now_seconds);
        let windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, count) = *windows.get(&subject)?;
        (start == window_start && count >= self.limit_per_window).then_some(left)
    }

    /// Counts one event: its number in this window, and the seconds to wait when it passed
    /// the limit.
    pub fn record(&self, subject: K, now_seconds: i64) -> (u32, Option<u64>) {
        let (window_start, left) = window_of(now_seconds);
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > PRUNE_THRESHOLD {
            windows.retain(|_, (start, _)| *start == window_start);
        }
        let entry = windows.entry(subject).or_insert((window_start, 0));
        if entry.0 != window_start {
            *entry = (window_start, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        (entry.1, (entry.1 > self.limit_per_window).then_some(left))
    }
}

/// Failed authentications (gateway) or logins per client address; IPv6 per /64.
#[derive(Debug)]
pub struct FailedAuthenticationThrottle(WindowCounter<Bucket>);

impl FailedAuthenticationThrottle {
    pub fn new(limit_per_window: u32) -> FailedAuthenticationThrottle {
        FailedAuthenticationThrottle(WindowCounter::new(limit_per_window))
    }

    /// The seconds to wait when `address` has already failed `limit_per_window` times in
    /// this window (so that one more attempt would pass the limit); `None` when it may try.
    /// Counts nothing.
    pub fn retry_after(&self, address: Option<IpAddr>, now_seconds: i64) -> Option<u64> {
        self.0.retry_after(bucket_of(address), now_seconds)
    }

    /// Counts one failure; returns the seconds to wait when the address is now over its
    /// limit (this failure included).
    pub fn record_failure(&self, address: Option<IpAddr>, now_seconds: i64) -> Option<u64> {
        self.0.record(bucket_of(address), now_seconds).1
    }
}

/// Mints per API key in the current minute, and the summaries still to be written.
#[derive(Debug)]
pub struct MintCounter {
    counter: WindowCounter<i64>,
    /// By key id: the minute, how many were minted in it, and who minted them.
    minutes: Mutex<HashMap<i64, MintedInMinute>>,
}

#[derive(Debug, Clone)]
struct MintedInMinute {
    minute_start: i64,
    count: u32,
    audit: AuditContext,
}

impl MintCounter {
    pub fn new(counter: WindowCounter<i64>) -> MintCounter {
        MintCounter { counter, minutes: Mutex::new(HashMap::new()) }
    }

    /// Counts a mint: `Ok(true)` when it is the first of this minute (audit it now),
    /// `Ok(false)` for a later one, `Err(seconds)` past the limit.
    pub fn admit(&self, key_id: i64, now_seconds: i64, audit: &AuditContext) -> Result<bool, u64> {
        let (count, retry_after) = self.counter.record(key_id, now_seconds);
        if let Some(seconds) = retry_after {
            return Err(seconds);
        }
        let minute_start = now_seconds - now_seconds.rem_euclid(60);
        let mut minutes = self.minutes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = minutes.entry(key_id).or_insert_with(|| MintedInMinute { minute_start, count: 0, audit: audit.clone() });
        if entry.minute_start != minute_start {
            // The previous minute's summary is written by `write_summaries`, which also
            // runs before a new minute replaces it here.
            *entry = MintedInMinute { minute_start, count: 0, audit: audit.clone() };
        }
        entry.count = count;
        Ok(count == 1)
    }

    /// Writes one summary row for every finished minute in which a key minted more than
    /// one temporary key (all of them, at shutdown).
    pub async fn write_summaries(&self, store: &Store, now_seconds: i64, everything: bool) {
        let current_minute = now_seconds - now_seconds.rem_euclid(60);
        let finished: Vec<(i64, MintedInMinute)> = {
            let mut minutes = self.minutes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let keys: Vec<i64> = minutes
                .iter()
                .filter(|(_, minted)| everything || minted.minute_start < current_minute)
                .map(|(key_id, _)| *key_id)
                .collect();
            keys.into_iter().filter_map(|key_id| minutes.remove(&key_id).map(|minted| (key_id, minted))).collect()
        };
        for (key_id, minted) in finished.into_iter().filter(|(_, minted)| minted.count > 1) {
            let detail = format!("minted={} minute_start={}", minted.count, minted.minute_start);
            // Written now, by whoever minted first in that minute.
            let audit = AuditContext { at: now_seconds * 1000, ..minted.audit };
            if let Err(error) = store.record_audit(&audit, "ApiKey.MintTemporary.Summary", &format!("apiKey:{key_id}"), &detail).await {
                tracing::error!(%error, key_id, "could not write the summary of minted temporary keys");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_the_limit_and_forgets_in_the_next_window() {
        let throttle = FailedAuthenticationThrottle::new(3);
        let address = Some("203.0.113.9".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(throttle.record_failure(address, 120), None);
        }
        assert_eq!(throttle.record_failure(address, 130), Some(50));
        assert_eq!(throttle.record_failure(Some("203.0.113.10".parse().unwrap()), 130), None);
        assert_eq!(throttle.record_failure(address, 180), None);
    }

    #[test]
    fn retry_after_says_whether_one_more_attempt_would_pass_the_limit() {
        let throttle = FailedAuthenticationThrottle::new(2);
        let address = Some("198.51.100.7".parse().unwrap());
        assert_eq!(throttle.retry_after(address, 60), None);
        throttle.record_failure(address, 60);
        assert_eq!(throttle.retry_after(address, 61), None);
        throttle.record_failure(address, 61);
        assert_eq!(throttle.retry_after(address, 75), Some(45));
        assert_eq!(throttle.retry_after(Some("198.51.100.8".parse().unwrap()), 75), None);
        assert_eq!(throttle.retry_after(address, 120), None, "a new window starts afresh");
    }

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let throttle = FailedAuthenticationThrottle::new(1);
        assert_eq!(throttle.record_failure(Some("2001:db8::1".parse().unwrap()), 0), None);
        assert!(throttle.record_failure(Some("2001:db8::ffff:2".parse().unwrap()), 0).is_some());
        assert_eq!(throttle.record_failure(Some("2001:db8:0:1::1".parse().unwrap()), 0), None);
    }
}
