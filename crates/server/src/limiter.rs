//! The gateway's counting of limits (docs/CONTRACT.md#model-limits): each call is counted
//! in fixed windows per subject ([`LimitSubject`]: a workspace's use of a model, or one
//! key) and kind of limit, and a key's calls in flight are counted while they run.
//! [`LimitCounter`] is what the gateway asks; this node's [`InMemoryLimitCounter`] keeps
//! the windows in memory, sharded so that a lock is held only for one window's arithmetic
//! (`keygate_core::limits::WindowCount`).
//!
//! Across nodes (docs/CONTRACT.md#model-limits, "Across nodes"): with Redis configured,
//! [`RedisLimitCounter`] (`limiter/redis_counter.rs`) counts every node's calls in the same windows;
//! without it, a node on PostgreSQL enforces its share of each limit, counted in memory by
//! [`NodeShareCounter`] (`limiter/node_share.rs`) from the live nodes the heartbeats show.
//! [`counter_for`] picks one from the settings.

use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use keygate_core::limits::{EffectiveLimits, LimitKind, RateLimit, WindowCount, WindowStanding};

mod node_share;
mod redis_counter;

pub use node_share::{LiveNodes, NodeShareCounter};
pub use redis_counter::{RedisLimitCounter, RedisOptions};

/// What a call is counted under: its key's workspace and the model (the model limits of
/// Model Studio), or its key (keygate's per-key limits).
///
/// It borrows its strings from the call (the key's workspace, the model read from the
/// body), so that counting a call copies nothing: a counter keeps a [`HeldSubject`] only
/// the first time it counts a subject, and looks it up by this borrowed form after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitSubject<'a> {
    Model { workspace_id: &'a str, model: &'a str },
    Key { key_id: i64 },
}

/// A [`LimitSubject`] a counter keeps in its maps. It hashes and compares as its borrowed
/// form does, so the maps are searched with a `LimitSubject` and no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeldSubject {
    Model { workspace_id: Box<str>, model: Box<str> },
    Key { key_id: i64 },
}

impl HeldSubject {
    pub(crate) fn of(subject: LimitSubject<'_>) -> HeldSubject {
        match subject {
            LimitSubject::Model { workspace_id, model } => HeldSubject::Model { workspace_id: workspace_id.into(), model: model.into() },
            LimitSubject::Key { key_id } => HeldSubject::Key { key_id },
        }
    }

    pub(crate) fn borrowed(&self) -> LimitSubject<'_> {
        match self {
            HeldSubject::Model { workspace_id, model } => LimitSubject::Model { workspace_id, model },
            HeldSubject::Key { key_id } => LimitSubject::Key { key_id: *key_id },
        }
    }
}

impl Hash for HeldSubject {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        self.borrowed().hash(hasher);
    }
}

impl hashbrown::Equivalent<HeldSubject> for LimitSubject<'_> {
    fn equivalent(&self, held: &HeldSubject) -> bool {
        *self == held.borrowed()
    }
}

/// A map keyed by subjects and searched by their borrowed form. The subjects are store ids
/// and catalog model names (a call's model is counted only once authorized, so it is one
/// the catalog names), never a string a client chooses freely: an unkeyed fast hash is safe.
pub(crate) type SubjectMap<V> = hashbrown::HashMap<HeldSubject, V, rustc_hash::FxBuildHasher>;

/// The value of `subject` in `map`, made with `V::default()` (and the subject copied) the
/// first time.
pub(crate) fn entry_of<'m, V: Default>(map: &'m mut SubjectMap<V>, subject: LimitSubject<'_>) -> &'m mut V {
    let hash = map.hasher().hash_one(subject);
    entry_of_hashed(map, hash, subject)
}

/// [`entry_of`] with the subject's hash (by the map's hasher) already worked out.
fn entry_of_hashed<'m, V: Default>(map: &'m mut SubjectMap<V>, hash: u64, subject: LimitSubject<'_>) -> &'m mut V {
    match map.raw_entry_mut().from_hash(hash, |held| subject == held.borrowed()) {
        hashbrown::hash_map::RawEntryMut::Occupied(entry) => entry.into_mut(),
        hashbrown::hash_map::RawEntryMut::Vacant(entry) => entry.insert_hashed_nocheck(hash, HeldSubject::of(subject), V::default()).1,
    }
}

/// The answer to a call's admission: where its windows stand, and the limit that refused
/// it, if one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub refused_by: Option<LimitKind>,
    pub requests: Option<WindowStanding>,
    pub tokens: Option<WindowStanding>,
    /// The shared counter could not be asked and limits fail closed
    /// (`limits_fail_closed`): the call is refused with 503, nothing was counted.
    pub unavailable: bool,
}

impl Admission {
    /// Nothing refused, no window counted: what a counter starts from.
    pub const NONE: Admission = Admission { refused_by: None, requests: None, tokens: None, unavailable: false };

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
///
/// A counter that answers at once (in this node's memory) also answers `admit_at_once` and
/// `enter_at_once`, which the gateway asks first: no future is boxed for it.
pub trait LimitCounter: Send + Sync + std::fmt::Debug {
    fn admit<'a>(&'a self, subject: LimitSubject<'a>, limits: EffectiveLimits, now: i64) -> Pending<'a, Admission>;
    fn charge(&self, subject: LimitSubject<'_>, limit: RateLimit, tokens: u64, now: i64);
    fn enter<'a>(&'a self, subject: LimitSubject<'a>, max: u64) -> Pending<'a, Result<u64, u64>>;
    fn leave(&self, subject: LimitSubject<'_>);

    /// [`LimitCounter::admit`] when the answer needs no waiting; `None` otherwise.
    fn admit_at_once(&self, _subject: LimitSubject<'_>, _limits: EffectiveLimits, _now: i64) -> Option<Admission> {
        None
    }

    /// [`LimitCounter::enter`] when the answer needs no waiting; `None` otherwise.
    fn enter_at_once(&self, _subject: LimitSubject<'_>, _max: u64) -> Option<Result<u64, u64>> {
        None
    }

    /// Where the counting happens and whether it works (`/readyz`, `/metrics`).
    fn health(&self) -> LimiterHealth {
        LimiterHealth::default()
    }
}

/// Where a node counts its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimiterBackend {
    /// This node's memory, exactly (one node: SQLite).
    #[default]
    Memory,
    /// This node's memory, each limit divided among the live nodes (PostgreSQL without Redis).
    NodeShare,
    /// Redis, shared by every node.
    Redis,
}

impl LimiterBackend {
    pub fn name(self) -> &'static str {
        match self {
            LimiterBackend::Memory => "memory",
            LimiterBackend::NodeShare => "node-share",
            LimiterBackend::Redis => "redis",
        }
    }
}

/// The standing of a node's limit counting, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterHealth {
    pub backend: LimiterBackend,
    /// The shared counter answered its last call (always true in memory).
    pub healthy: bool,
    /// `limits_fail_closed`: calls under a limit are refused while it is unhealthy.
    pub fail_closed: bool,
    /// When (Unix ms) and why the shared counter last failed.
    pub last_error: Option<(i64, String)>,
    /// Live nodes this node counts itself among (the divisor of its share).
    pub live_nodes: u64,
    /// Calls to the shared counter that failed or timed out.
    pub failures: u64,
    /// Admissions counted in memory (this node's share) because the shared counter failed.
    pub fallback_admissions: u64,
    /// Admissions refused (503) because the shared counter failed and limits fail closed.
    pub refused_unavailable: u64,
    /// Token charges not sent to the shared counter: its queue was full or it failed.
    pub dropped_updates: u64,
}

impl Default for LimiterHealth {
    fn default() -> LimiterHealth {
        LimiterHealth {
            backend: LimiterBackend::Memory,
            healthy: true,
            fail_closed: false,
            last_error: None,
            live_nodes: 1,
            failures: 0,
            fallback_admissions: 0,
            refused_unavailable: 0,
            dropped_updates: 0,
        }
    }
}

impl LimiterHealth {
    /// Whether limited calls are being refused for want of the shared counter (then
    /// `/readyz` says not ready).
    pub fn refusing(&self) -> bool {
        self.fail_closed && !self.healthy
    }

    /// The Prometheus lines of the limiter (appended to `/metrics`).
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        let backend = self.backend.name();
        let gauge = |text: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} gauge");
            let _ = writeln!(text, "{name}{{backend=\"{backend}\"}} {value}");
        };
        let counter = |text: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} counter");
            let _ = writeln!(text, "{name} {value}");
        };
        gauge(&mut text, "keygate_limiter_healthy", "1 while the limits' counter answers (always 1 in memory).", u64::from(self.healthy));
        gauge(&mut text, "keygate_limiter_live_nodes", "Live nodes this node divides its limits' shares among.", self.live_nodes);
        counter(
            &mut text,
            "keygate_limiter_failures_total",
            "Calls to the shared limit counter (Redis) that failed or timed out.",
            self.failures,
        );
        counter(
            &mut text,
            "keygate_limiter_fallback_admissions_total",
            "Admissions counted in this node's memory against its share because Redis failed.",
            self.fallback_admissions,
        );
        counter(
            &mut text,
            "keygate_limiter_unavailable_refusals_total",
            "Calls refused (503) because Redis failed and limits_fail_closed is set.",
            self.refused_unavailable,
        );
        counter(
            &mut text,
            "keygate_limiter_dropped_updates_total",
            "Token charges not sent to Redis because its queue was full or Redis failed.",
            self.dropped_updates,
        );
        text
    }
}

/// The counter the settings ask for: Redis when `redis_url` is set; else, on PostgreSQL
/// (several nodes may serve), this node's share counted in memory; else (SQLite, one node)
/// memory, exactly. `live_nodes` is what the node heartbeats keep current.
pub fn counter_for(
    settings: &crate::settings::Settings,
    several_nodes: bool,
    node_id: &str,
    live_nodes: std::sync::Arc<LiveNodes>,
    clock: std::sync::Arc<crate::clock::Clock>,
) -> anyhow::Result<Box<dyn LimitCounter>> {
    if let Some(url) = &settings.redis_url {
        let options = RedisOptions {
            url: url.clone(),
            key_prefix: settings.redis_key_prefix.clone(),
            timeout: std::time::Duration::from_millis(settings.redis_timeout_milliseconds),
            fail_closed: settings.limits_fail_closed,
            node_id: node_id.to_string(),
            heartbeat: std::time::Duration::from_secs(settings.node_heartbeat_seconds),
        };
        return Ok(Box::new(RedisLimitCounter::new(options, live_nodes, clock)?));
    }
    if several_nodes {
        return Ok(Box::new(NodeShareCounter::new(live_nodes)));
    }
    Ok(Box::new(InMemoryLimitCounter::default()))
}

/// A subject's windows: one per kind of limit and period (a changed period starts anew).
/// A few at most, so a list searched in place.
type SubjectWindows = Vec<(LimitKind, u64, WindowCount)>;

const SHARDS: usize = 16;

/// The windows of this node, in [`SHARDS`] maps behind their own locks. A map holds one
/// window per workspace, model and kind of limit that has been counted: no more than the
/// limits configured, so nothing is evicted.
/// Calls in flight are counted per subject in a map of their own; an entry is removed when
/// its count returns to 0, so the map holds only subjects with calls running.
#[derive(Debug)]
pub struct InMemoryLimitCounter {
    shards: Vec<Mutex<SubjectMap<SubjectWindows>>>,
    in_flight: Mutex<SubjectMap<u64>>,
}

impl Default for InMemoryLimitCounter {
    fn default() -> InMemoryLimitCounter {
        InMemoryLimitCounter {
            shards: (0..SHARDS).map(|_| Mutex::new(SubjectMap::default())).collect(),
            in_flight: Mutex::new(SubjectMap::default()),
        }
    }
}

impl InMemoryLimitCounter {
    /// Runs `apply` on the window of `subject`, `kind` and `limit`'s period, under its
    /// shard's lock only.
    /// The subject is looked up by reference: it is copied only the first time it is counted.
    fn with_window<T>(&self, subject: LimitSubject<'_>, kind: LimitKind, limit: RateLimit, apply: impl FnOnce(&mut WindowCount) -> T) -> T {
        self.with_windows(subject, |windows| apply(window_in(windows, kind, limit)))
    }

    /// Runs `apply` on all the windows of `subject`, under its shard's lock: one lookup for
    /// a call counted in its request and token windows.
    fn with_windows<T>(&self, subject: LimitSubject<'_>, apply: impl FnOnce(&mut SubjectWindows) -> T) -> T {
        // Hashed once, for the shard and its map alike (the same hasher): the shard is
        // chosen by the hash's high bits, the map uses the low ones.
        let hash = rustc_hash::FxBuildHasher.hash_one(subject);
        let shard = &self.shards[(hash >> 60) as usize % SHARDS];
        let mut subjects = shard.lock().unwrap_or_else(PoisonError::into_inner);
        apply(entry_of_hashed(&mut subjects, hash, subject))
    }

    /// Counts one request admitted elsewhere (by the shared counter) in the window of
    /// `now`, without checking the limit: the node's own count, should it have to go on
    /// without the shared counter.
    pub(crate) fn count_request(&self, subject: LimitSubject<'_>, limit: RateLimit, now: i64) {
        self.with_window(subject, LimitKind::Requests, limit, |window| {
            window.roll(now, limit.period_seconds);
            window.used = window.used.saturating_add(1);
        });
    }

    /// [`LimitCounter::enter`], answered at once.
    pub(crate) fn enter_now(&self, subject: LimitSubject<'_>, max: u64) -> Result<u64, u64> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let running = in_flight.get(&subject).copied().unwrap_or(0);
        if running >= max {
            Err(running)
        } else {
            *entry_of(&mut in_flight, subject) = running + 1;
            Ok(running + 1)
        }
    }

    pub(crate) fn admit_now(&self, subject: LimitSubject<'_>, limits: EffectiveLimits, now: i64) -> Admission {
        if limits.is_unlimited() {
            return Admission::NONE;
        }
        self.with_windows(subject, |windows| {
            let mut admission = Admission::NONE;
            if let Some(limit) = limits.requests {
                let (standing, admitted) = either(window_in(windows, LimitKind::Requests, limit).take_request(limit, now));
                admission.requests = Some(standing);
                if !admitted {
                    admission.refused_by = Some(LimitKind::Requests);
                    return admission;
                }
            }
            if let Some(limit) = limits.tokens {
                let (standing, admitted) = either(window_in(windows, LimitKind::Tokens, limit).check_tokens(limit, now));
                admission.tokens = Some(standing);
                if !admitted {
                    admission.refused_by = Some(LimitKind::Tokens);
                    // The refused call does not count against the request limit.
                    if let Some(limit) = limits.requests {
                        let window = window_in(windows, LimitKind::Requests, limit);
                        window.roll(now, limit.period_seconds);
                        window.used = window.used.saturating_sub(1);
                        admission.requests = admission
                            .requests
                            .map(|standing| WindowStanding { remaining: (standing.remaining + 1).min(standing.limit), ..standing });
                    }
                }
            }
            admission
        })
    }
}

/// The window of `kind` and `limit`'s period among a subject's windows, made the first
/// time (a changed period starts anew).
fn window_in(windows: &mut SubjectWindows, kind: LimitKind, limit: RateLimit) -> &mut WindowCount {
    let position = windows.iter().position(|(held_kind, period, _)| *held_kind == kind && *period == limit.period_seconds);
    let index = position.unwrap_or_else(|| {
        windows.push((kind, limit.period_seconds, WindowCount::default()));
        windows.len() - 1
    });
    &mut windows[index].2
}

/// A window's standing, and whether it admitted the call.
fn either(outcome: Result<WindowStanding, WindowStanding>) -> (WindowStanding, bool) {
    match outcome {
        Ok(standing) => (standing, true),
        Err(standing) => (standing, false),
    }
}

impl LimitCounter for InMemoryLimitCounter {
    fn admit<'a>(&'a self, subject: LimitSubject<'a>, limits: EffectiveLimits, now: i64) -> Pending<'a, Admission> {
        let admission = self.admit_now(subject, limits, now);
        Box::pin(std::future::ready(admission))
    }

    fn admit_at_once(&self, subject: LimitSubject<'_>, limits: EffectiveLimits, now: i64) -> Option<Admission> {
        Some(self.admit_now(subject, limits, now))
    }

    fn charge(&self, subject: LimitSubject<'_>, limit: RateLimit, tokens: u64, now: i64) {
        self.with_window(subject, LimitKind::Tokens, limit, |window| window.charge(tokens, now, limit.period_seconds));
    }

    fn enter<'a>(&'a self, subject: LimitSubject<'a>, max: u64) -> Pending<'a, Result<u64, u64>> {
        Box::pin(std::future::ready(self.enter_now(subject, max)))
    }

    fn enter_at_once(&self, subject: LimitSubject<'_>, max: u64) -> Option<Result<u64, u64>> {
        Some(self.enter_now(subject, max))
    }

    fn leave(&self, subject: LimitSubject<'_>) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = in_flight.get_mut(&subject) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                in_flight.remove(&subject);
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
        let subject = LimitSubject::Model { workspace_id: "llm-w", model: "qwen-plus" };
        let limits = EffectiveLimits {
            requests: Some(RateLimit { limit: 5, period_seconds: 60 }),
            tokens: Some(RateLimit { limit: 10, period_seconds: 60 }),
        };
        let first = counter.admit_now(subject, limits, 0);
        assert_eq!((first.refused_by, first.requests.unwrap().remaining, first.tokens.unwrap().remaining), (None, 4, 10));
        counter.charge(subject, limits.tokens.unwrap(), 12, 1);
        let second = counter.admit_now(subject, limits, 2);
        assert_eq!(second.refused_by, Some(LimitKind::Tokens));
        assert_eq!(second.requests.unwrap().remaining, 4);
        assert_eq!(second.retry_after_seconds(), 58);
        // Another workspace has windows of its own.
        let other = LimitSubject::Model { workspace_id: "llm-x", model: "qwen-plus" };
        assert_eq!(counter.admit_now(other, limits, 2).refused_by, None);
    }

    #[tokio::test]
    async fn calls_in_flight_are_bounded_and_freed_when_they_leave() {
        let counter = InMemoryLimitCounter::default();
        let key = LimitSubject::Key { key_id: 1 };
        assert_eq!(counter.enter(key, 2).await, Ok(1));
        assert_eq!(counter.enter(key, 2).await, Ok(2));
        assert_eq!(counter.enter(key, 2).await, Err(2));
        counter.leave(key);
        assert_eq!(counter.enter(key, 2).await, Ok(2));
        counter.leave(key);
        counter.leave(key);
        assert!(counter.in_flight.lock().unwrap().is_empty());
    }
}
