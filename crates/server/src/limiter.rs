//! The gateway's counting of limits (docs/CONTRACT.md#model-limits): each call is counted
//! in fixed windows per subject ([`LimitSubject`]: a workspace's use of a model, or one
//! key) and kind of limit, and a key's calls in flight are counted while they run.
//! [`LimitCounter`] is what the gateway asks; this node's [`InMemoryLimitCounter`] keeps
//! the windows in memory, sharded so that a lock is held only for one window's arithmetic
//! (`keygate_core::limits::WindowCount`). A counter shared by many nodes implements the
//! same trait.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use keygate_core::limits::{EffectiveLimits, LimitKind, RateLimit, WindowCount, WindowStanding};

/// What a call is counted under: its key's workspace and the model (the model limits of
/// Model Studio), or its key (keygate's per-key limits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitSubject {
    Model { workspace_id: String, model: String },
    Key { key_id: String },
}

/// The answer to a call's admission: where its windows stand, and the limit that refused
/// it, if one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub refused_by: Option<LimitKind>,
    pub requests: Option<WindowStanding>,
    pub tokens: Option<WindowStanding>,
}

impl Admission {
    /// Seconds until the refusing window frees.
    pub fn retry_after_seconds(&self) -> u64 {
        let standing = match self.refused_by {
            Some(LimitKind::Requests) => self.requests,
            Some(LimitKind::Tokens) => self.tokens,
            None => None,
        };
        standing.map_or(1, |standing| standing.reset_seconds)
    }
}

/// A boxed future, so that the trait stays object-safe for a counter that answers over the
/// network.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Counts calls against model limits. `admit` counts one request in the request window
/// (only when the call is admitted) and checks the token window; `charge` adds a finished
/// call's tokens to the token window, and must not block (it runs as a call is counted:
/// a remote counter would send it in the background).
///
/// `enter` counts a call in flight when fewer than `max` are (`Ok` with the count after it,
/// `Err` with the count that refused it); every admitted `enter` is matched by one `leave`
/// when the call ends, which must not block either.
pub trait LimitCounter: Send + Sync + std::fmt::Debug {
    fn admit<'a>(&'a self, subject: &'a LimitSubject, limits: EffectiveLimits, now: i64) -> Pending<'a, Admission>;
    fn charge(&self, subject: &LimitSubject, limit: RateLimit, tokens: u64, now: i64);
    fn enter<'a>(&'a self, subject: &'a LimitSubject, max: u64) -> Pending<'a, Result<u64, u64>>;
    fn leave(&self, subject: &LimitSubject);
}

/// One window: a subject, which limit, and its period (a changed period starts anew).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WindowKey {
    subject: LimitSubject,
    kind: LimitKind,
    period_seconds: u64,
}

const SHARDS: usize = 16;

/// The windows of this node, in [`SHARDS`] maps behind their own locks. A map holds one
/// window per workspace, model and kind of limit that has been counted: no more than the
/// limits configured, so nothing is evicted.
/// Calls in flight are counted per subject in a map of their own; an entry is removed when
/// its count returns to 0, so the map holds only subjects with calls running.
#[derive(Debug)]
pub struct InMemoryLimitCounter {
    shards: Vec<Mutex<HashMap<WindowKey, WindowCount>>>,
    in_flight: Mutex<HashMap<LimitSubject, u64>>,
}

impl Default for InMemoryLimitCounter {
    fn default() -> InMemoryLimitCounter {
        InMemoryLimitCounter { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), in_flight: Mutex::new(HashMap::new()) }
    }
}

impl InMemoryLimitCounter {
    /// Runs `apply` on the window of `subject`, `kind` and `limit`'s period, under its
    /// shard's lock only.
    fn with_window<T>(&self, subject: &LimitSubject, kind: LimitKind, limit: RateLimit, apply: impl FnOnce(&mut WindowCount) -> T) -> T {
        let key = WindowKey { subject: subject.clone(), kind, period_seconds: limit.period_seconds };
        let mut hasher = rustc_hash::FxHasher::default();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % SHARDS];
        let mut windows = shard.lock().unwrap_or_else(PoisonError::into_inner);
        apply(windows.entry(key).or_default())
    }

    fn admit_now(&self, subject: &LimitSubject, limits: EffectiveLimits, now: i64) -> Admission {
        let mut admission = Admission { refused_by: None, requests: None, tokens: None };
        if let Some(limit) = limits.requests {
            let (standing, admitted) =
                either(self.with_window(subject, LimitKind::Requests, limit, |window| window.take_request(limit, now)));
            admission.requests = Some(standing);
            if !admitted {
                admission.refused_by = Some(LimitKind::Requests);
                return admission;
            }
        }
        if let Some(limit) = limits.tokens {
            let (standing, admitted) =
                either(self.with_window(subject, LimitKind::Tokens, limit, |window| window.check_tokens(limit, now)));
            admission.tokens = Some(standing);
            if !admitted {
                admission.refused_by = Some(LimitKind::Tokens);
                // The refused call does not count against the request limit.
                if let Some(limit) = limits.requests {
                    self.with_window(subject, LimitKind::Requests, limit, |window| {
                        window.roll(now, limit.period_seconds);
                        window.used = window.used.saturating_sub(1);
                    });
                    admission.requests = admission
                        .requests
                        .map(|standing| WindowStanding { remaining: (standing.remaining + 1).min(standing.limit), ..standing });
                }
            }
        }
        admission
    }
}

/// A window's standing, and whether it admitted the call.
fn either(outcome: Result<WindowStanding, WindowStanding>) -> (WindowStanding, bool) {
    match outcome {
        Ok(standing) => (standing, true),
        Err(standing) => (standing, false),
    }
}

impl LimitCounter for InMemoryLimitCounter {
    fn admit<'a>(&'a self, subject: &'a LimitSubject, limits: EffectiveLimits, now: i64) -> Pending<'a, Admission> {
        let admission = self.admit_now(subject, limits, now);
        Box::pin(std::future::ready(admission))
    }

    fn charge(&self, subject: &LimitSubject, limit: RateLimit, tokens: u64, now: i64) {
        self.with_window(subject, LimitKind::Tokens, limit, |window| window.charge(tokens, now, limit.period_seconds));
    }

    fn enter<'a>(&'a self, subject: &'a LimitSubject, max: u64) -> Pending<'a, Result<u64, u64>> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let running = in_flight.get(subject).copied().unwrap_or(0);
        let outcome = if running >= max {
            Err(running)
        } else {
            in_flight.insert(subject.clone(), running + 1);
            Ok(running + 1)
        };
        Box::pin(std::future::ready(outcome))
    }

    fn leave(&self, subject: &LimitSubject) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = in_flight.get_mut(subject) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                in_flight.remove(subject);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_refused_for_tokens_does_not_use_a_request() {
        let counter = InMemoryLimitCounter::default();
        let subject = LimitSubject::Model { workspace_id: "llm-w".into(), model: "qwen-plus".into() };
        let limits = EffectiveLimits {
            requests: Some(RateLimit { limit: 5, period_seconds: 60 }),
            tokens: Some(RateLimit { limit: 10, period_seconds: 60 }),
        };
        let first = counter.admit_now(&subject, limits, 0);
        assert_eq!((first.refused_by, first.requests.unwrap().remaining, first.tokens.unwrap().remaining), (None, 4, 10));
        counter.charge(&subject, limits.tokens.unwrap(), 12, 1);
        let second = counter.admit_now(&subject, limits, 2);
        assert_eq!(second.refused_by, Some(LimitKind::Tokens));
        assert_eq!(second.requests.unwrap().remaining, 4);
        assert_eq!(second.retry_after_seconds(), 58);
        // Another workspace has windows of its own.
        let other = LimitSubject::Model { workspace_id: "llm-x".into(), model: "qwen-plus".into() };
        assert_eq!(counter.admit_now(&other, limits, 2).refused_by, None);
    }

    #[tokio::test]
    async fn calls_in_flight_are_bounded_and_freed_when_they_leave() {
        let counter = InMemoryLimitCounter::default();
        let key = LimitSubject::Key { key_id: "k1".into() };
        assert_eq!(counter.enter(&key, 2).await, Ok(1));
        assert_eq!(counter.enter(&key, 2).await, Ok(2));
        assert_eq!(counter.enter(&key, 2).await, Err(2));
        counter.leave(&key);
        assert_eq!(counter.enter(&key, 2).await, Ok(2));
        counter.leave(&key);
        counter.leave(&key);
        assert!(counter.in_flight.lock().unwrap().is_empty());
    }
}
