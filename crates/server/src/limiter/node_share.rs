//! Each node's share of every limit, counted in its memory, for several nodes on one
//! PostgreSQL without Redis (docs/CONTRACT.md#model-limits, "Across nodes"): a limit of N
//! among L live nodes admits `ceil(N / L)` on each. The share is approximate: load that is
//! not spread evenly is refused on a busy node while another has room, and for the few
//! seconds after a node joins or leaves the shares are those of the old count (a leaving
//! node's share is unused; a joining node adds its share until the others count it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use keygate_core::limits::{EffectiveLimits, RateLimit, WindowStanding};

use super::{Admission, InMemoryLimitCounter, LimitCounter, LimitSubject, LimiterBackend, LimiterHealth, Pending};

/// How many nodes serve (at least 1: this one), as the heartbeats last showed.
#[derive(Debug)]
pub struct LiveNodes {
    count: AtomicU64,
}

impl Default for LiveNodes {
    fn default() -> LiveNodes {
        LiveNodes { count: AtomicU64::new(1) }
    }
}

impl LiveNodes {
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed).max(1)
    }

    pub fn set(&self, count: u64) {
        self.count.store(count.max(1), Ordering::Relaxed);
    }

    /// This node's share of `limit`: rounded up, so that a limit of 1 still admits a call
    /// somewhere and the shares add up to at least the limit (at most `nodes - 1` above).
    pub fn share(&self, limit: u64) -> u64 {
        limit.div_ceil(self.get())
    }

    fn share_of(&self, limit: Option<RateLimit>) -> Option<RateLimit> {
        limit.map(|limit| RateLimit { limit: self.share(limit.limit), ..limit })
    }
}

/// The in-memory counter of this node, each limit cut to its share.
#[derive(Debug)]
pub struct NodeShareCounter {
    counter: InMemoryLimitCounter,
    live_nodes: Arc<LiveNodes>,
}

impl NodeShareCounter {
    pub fn new(live_nodes: Arc<LiveNodes>) -> NodeShareCounter {
        NodeShareCounter { counter: InMemoryLimitCounter::default(), live_nodes }
    }

    pub fn live_nodes(&self) -> u64 {
        self.live_nodes.get()
    }

    /// Admits against this node's share; the answer names the whole limit (the headers'
    /// `x-ratelimit-limit-*`) and what is left of this node's share.
    pub fn admit_share(&self, subject: LimitSubject<'_>, limits: EffectiveLimits, now: i64) -> Admission {
        let shares =
            EffectiveLimits { requests: self.live_nodes.share_of(limits.requests), tokens: self.live_nodes.share_of(limits.tokens) };
        let whole = |standing: Option<WindowStanding>, limit: Option<RateLimit>| match (standing, limit) {
            (Some(standing), Some(limit)) => Some(WindowStanding { limit: limit.limit, ..standing }),
            (standing, _) => standing,
        };
        let admission = self.counter.admit_now(subject, shares, now);
        Admission { requests: whole(admission.requests, limits.requests), tokens: whole(admission.tokens, limits.tokens), ..admission }
    }

    /// Counts a request the shared counter admitted, so that this node's share, should it
    /// have to count alone, includes what it already admitted in the window.
    pub fn count_admitted(&self, subject: LimitSubject<'_>, limits: EffectiveLimits, now: i64) {
        if let Some(limit) = limits.requests {
            self.counter.count_request(subject, limit, now);
        }
    }

    pub fn enter_share(&self, subject: LimitSubject<'_>, max: u64) -> Result<u64, u64> {
        self.counter.enter_now(subject, self.live_nodes.share(max))
    }
}

impl LimitCounter for NodeShareCounter {
    fn admit<'a>(&'a self, subject: LimitSubject<'a>, limits: EffectiveLimits, now: i64) -> Pending<'a, Admission> {
        Box::pin(std::future::ready(self.admit_share(subject, limits, now)))
    }

    fn admit_at_once(&self, subject: LimitSubject<'_>, limits: EffectiveLimits, now: i64) -> Option<Admission> {
        Some(self.admit_share(subject, limits, now))
    }

    fn charge(&self, subject: LimitSubject<'_>, limit: RateLimit, tokens: u64, now: i64) {
        // Only the period of the limit names the window; the share does not matter here.
        self.counter.charge(subject, limit, tokens, now);
    }

    fn enter<'a>(&'a self, subject: LimitSubject<'a>, max: u64) -> Pending<'a, Result<u64, u64>> {
        Box::pin(std::future::ready(self.enter_share(subject, max)))
    }

    fn enter_at_once(&self, subject: LimitSubject<'_>, max: u64) -> Option<Result<u64, u64>> {
        Some(self.enter_share(subject, max))
    }

    fn leave(&self, subject: LimitSubject<'_>) {
        self.counter.leave(subject);
    }

    fn health(&self) -> LimiterHealth {
        LimiterHealth { backend: LimiterBackend::NodeShare, live_nodes: self.live_nodes.get(), ..LimiterHealth::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_of_three_nodes_admits_its_share_rounded_up() {
        let live_nodes = Arc::new(LiveNodes::default());
        live_nodes.set(3);
        let counter = NodeShareCounter::new(live_nodes.clone());
        let subject = LimitSubject::Model { workspace_id: "llm-w", model: "qwen-plus" };
        let limits = EffectiveLimits { requests: Some(RateLimit { limit: 10, period_seconds: 60 }), tokens: None };
        let admitted = (0..10).filter(|_| counter.admit_share(subject, limits, 0).refused_by.is_none()).count();
        assert_eq!(admitted, 4, "ceil(10 / 3)");
        let refused = counter.admit_share(subject, limits, 0);
        assert_eq!(refused.requests.map(|standing| (standing.limit, standing.remaining)), Some((10, 0)));
        // One node left: this one may take the whole limit (in the next window).
        live_nodes.set(0);
        assert_eq!(live_nodes.get(), 1);
        let admitted = (0..20).filter(|_| counter.admit_share(subject, limits, 60).refused_by.is_none()).count();
        assert_eq!(admitted, 10);
        assert_eq!(live_nodes.share(0), 0);
    }
}
