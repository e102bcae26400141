//! Prometheus metrics: gateway outcomes, verification latency, the size of the in-memory
//! key registry and the change feed's position, rendered in the text exposition format.
//! Counters are atomics, so the request path pays a few nanoseconds and takes no lock.
//! Those counted on every call (outcomes, the verification histogram, model calls and their
//! tokens) are kept per thread ([`PerThread`]) and summed when rendered: one set shared by every worker put a
//! cache line on a round trip between the cores at every call, which showed as a few per
//! cent of `/auth/verify`'s cost against a bare server (docs/PERFORMANCE.md).
//! Served at `/metrics` by [`crate::metrics`].

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (microseconds) of the verification latency histogram.
const LATENCY_BUCKETS_MICROSECONDS: [u64; 8] = [1, 2, 5, 10, 50, 100, 1_000, 10_000];

/// Outcomes of gateway requests, by the code a client sees.
pub const OUTCOMES: [&str; 12] = [
    "ok",
    "InvalidApiKey",
    "AccessDenied",
    "Workspace.AccessDenied",
    "Model.AccessDenied",
    "App.AccessDenied",
    "ModelNotFound",
    "Throttling",
    "InvalidParameter",
    "InternalError",
    "ServiceUnavailable",
    "other",
];

/// Calls and tokens of one model in one protocol: calls, input, output, cached, reasoning.
type ModelCounters = [AtomicU64; 5];
/// The protocols model calls are counted in, as their labels say.
const MODEL_PROTOCOLS: [&str; 3] = ["dashscope", "openai", "anthropic"];

/// How many sets of per-call counters there are: threads beyond this share one.
const COUNTER_SHARDS: usize = 16;

/// The counters every call writes, one set per thread.
#[derive(Debug, Default)]
struct CallCounters {
    outcomes: [AtomicU64; OUTCOMES.len()],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MICROSECONDS.len()],
    latency_count: AtomicU64,
    latency_sum_nanoseconds: AtomicU64,
    /// By (model, protocol). Models are the catalog's (a call to any other is refused
    /// before it is counted), so the label set is bounded; there is no per-key label.
    /// FxHash, not SipHash: the names are the catalog's, which a client cannot add to.
    model_calls: std::sync::RwLock<rustc_hash::FxHashMap<Box<str>, [ModelCounters; MODEL_PROTOCOLS.len()]>>,
}

/// One [`CallCounters`] per thread (threads past the first `COUNTER_SHARDS - 1` share the
/// last), each on cache lines of its own.
#[derive(Debug, Default)]
struct PerThread([crossbeam_utils::CachePadded<CallCounters>; COUNTER_SHARDS]);

/// A thread's set of counters, and whether the thread is the only one that writes it.
struct Mine<'a> {
    counters: &'a CallCounters,
    only_writer: bool,
}

impl Mine<'_> {
    /// Adds `value` to `counter`. A set with one writer is added to with a plain read and
    /// write: no other thread writes it, so no count is lost, and a reader sees each
    /// counter whole (an atomic load). A locked add costs tens of cycles even on a cache
    /// line no other core touches, and a call adds to a dozen counters.
    fn add(&self, counter: &AtomicU64, value: u64) {
        if self.only_writer {
            counter.store(counter.load(Ordering::Relaxed).wrapping_add(value), Ordering::Relaxed);
        } else {
            counter.fetch_add(value, Ordering::Relaxed);
        }
    }
}

impl PerThread {
    /// This thread's set.
    fn mine(&self) -> Mine<'_> {
        use std::sync::atomic::AtomicUsize;
        static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static THIS_THREAD: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        }
        let thread = THIS_THREAD.with(|thread| *thread);
        // The first threads to count get a set each; every later one shares the last.
        let only_writer = thread < COUNTER_SHARDS - 1;
        Mine { counters: &self.0[thread.min(COUNTER_SHARDS - 1)], only_writer }
    }

    /// The sum over every thread of the counter `pick` chooses.
    fn sum(&self, pick: impl Fn(&CallCounters) -> &AtomicU64) -> u64 {
        self.0.iter().map(|counters| pick(counters).load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    calls: PerThread,
}

impl Metrics {
    /// Counts one gateway answer by its code (`"ok"` for success).
    pub fn record_outcome(&self, code: &str) {
        let index = OUTCOMES.iter().position(|outcome| *outcome == code).unwrap_or(OUTCOMES.len() - 1);
        let mine = self.calls.mine();
        mine.add(&mine.counters.outcomes[index], 1);
    }

    /// Counts one finished model call and its tokens.
    pub fn record_model_call(&self, model: &str, protocol: &'static str, tokens: &keygate_core::usage::TokenUsage) {
        let mine = self.calls.mine();
        let add = |counters: &ModelCounters| {
            let add = |index: usize, value: i64| mine.add(&counters[index], u64::try_from(value).unwrap_or(0));
            add(0, 1);
            add(1, tokens.input);
            add(2, tokens.output);
            add(3, tokens.cached);
            add(4, tokens.reasoning);
        };
        let index = MODEL_PROTOCOLS.iter().position(|known| *known == protocol).unwrap_or(0);
        // This thread's map: its lock and counters are written by this thread's calls only
        // (or, past the first threads, by the threads that share the last set).
        let model_calls = &mine.counters.model_calls;
        {
            // The usual case: the model is known, a read lock and no allocation.
            let known = model_calls.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(counters) = known.get(model) {
                add(&counters[index]);
                return;
            }
        }
        let mut known = model_calls.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        add(&known.entry(model.into()).or_default()[index]);
    }

    /// Records how long one key verification took.
    pub fn record_verification(&self, elapsed: Duration) {
        let nanoseconds = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mine = self.calls.mine();
        mine.add(&mine.counters.latency_count, 1);
        mine.add(&mine.counters.latency_sum_nanoseconds, nanoseconds);
        // One counter per request (the smallest bucket that holds it); `render` adds them up
        // into Prometheus's cumulative buckets.
        let microseconds = nanoseconds.div_ceil(1000);
        if let Some(index) = LATENCY_BUCKETS_MICROSECONDS.iter().position(|bound| microseconds <= *bound) {
            mine.add(&mine.counters.latency_buckets[index], 1);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, live_keys: usize, applied_version: u64, feed_lag_seconds: f64) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "# HELP keygate_gateway_requests_total Gateway answers by outcome.");
        let _ = writeln!(text, "# TYPE keygate_gateway_requests_total counter");
        for (index, outcome) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                text,
                "keygate_gateway_requests_total{{outcome=\"{outcome}\"}} {}",
                self.calls.sum(|counters| &counters.outcomes[index])
            );
        }
        // Every thread's counts of each (model, protocol), summed, in order.
        let mut summed: std::collections::BTreeMap<(Box<str>, &str), [u64; 5]> = std::collections::BTreeMap::new();
        for shard in &self.calls.0 {
            let known = shard.model_calls.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (model, by_protocol) in known.iter() {
                for (protocol, counters) in MODEL_PROTOCOLS.iter().zip(by_protocol.iter()) {
                    if counters[0].load(Ordering::Relaxed) > 0 {
                        let sums = summed.entry((model.clone(), protocol)).or_default();
                        for (sum, counter) in sums.iter_mut().zip(counters) {
                            *sum = sum.wrapping_add(counter.load(Ordering::Relaxed));
                        }
                    }
                }
            }
        }
        let model_calls: Vec<(&str, &str, &[u64; 5])> =
            summed.iter().map(|((model, protocol), counts)| (&**model, *protocol, counts)).collect();
        let _ = writeln!(text, "# HELP keygate_model_calls_total Model calls answered, by model and protocol.");
        let _ = writeln!(text, "# TYPE keygate_model_calls_total counter");
        for &(model, protocol, counters) in &model_calls {
            let model = model.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(text, "keygate_model_calls_total{{model=\"{model}\",protocol=\"{protocol}\"}} {}", counters[0]);
        }
        let _ = writeln!(text, "# HELP keygate_model_tokens_total Tokens of model calls, by model, protocol and kind.");
        let _ = writeln!(text, "# TYPE keygate_model_tokens_total counter");
        for &(model, protocol, counters) in &model_calls {
            let model = model.replace('\\', "\\\\").replace('"', "\\\"");
            for (index, kind) in ["input", "output", "cached", "reasoning"].iter().enumerate() {
                let _ = writeln!(
                    text,
                    "keygate_model_tokens_total{{model=\"{model}\",protocol=\"{protocol}\",kind=\"{kind}\"}} {}",
                    counters[index + 1]
                );
            }
        }
        drop(model_calls);
        let _ = writeln!(text, "# HELP keygate_verification_seconds Time to authenticate a presented key from memory.");
        let _ = writeln!(text, "# TYPE keygate_verification_seconds histogram");
        let mut cumulative = 0;
        for (index, bound) in LATENCY_BUCKETS_MICROSECONDS.iter().enumerate() {
            cumulative += self.calls.sum(|counters| &counters.latency_buckets[index]);
            let _ = writeln!(text, "keygate_verification_seconds_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
        }
        let count = self.calls.sum(|counters| &counters.latency_count);
        let _ = writeln!(text, "keygate_verification_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            text,
            "keygate_verification_seconds_sum {}",
            self.calls.sum(|counters| &counters.latency_sum_nanoseconds) as f64 / 1e9
        );
        let _ = writeln!(text, "keygate_verification_seconds_count {count}");
        let _ = writeln!(text, "# HELP keygate_registry_live_keys Keys held in the in-memory verification registry.");
        let _ = writeln!(text, "# TYPE keygate_registry_live_keys gauge");
        let _ = writeln!(text, "keygate_registry_live_keys {live_keys}");
        let _ = writeln!(text, "# HELP keygate_change_feed_applied_version Highest change-feed version applied to the registry.");
        let _ = writeln!(text, "# TYPE keygate_change_feed_applied_version gauge");
        let _ = writeln!(text, "keygate_change_feed_applied_version {applied_version}");
        let _ = writeln!(
            text,
            "# HELP keygate_change_feed_lag_seconds Time since this node last confirmed its registry against the change feed."
        );
        let _ = writeln!(text, "# TYPE keygate_change_feed_lag_seconds gauge");
        let _ = writeln!(text, "keygate_change_feed_lag_seconds {feed_lag_seconds}");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.record_outcome("ok");
        metrics.record_outcome("InvalidApiKey");
        metrics.record_outcome("something-new");
        metrics.record_verification(Duration::from_nanos(800));
        metrics.record_verification(Duration::from_micros(40));
        let tokens = keygate_core::usage::TokenUsage { input: 5, output: 2, cached: 1, reasoning: 0 };
        metrics.record_model_call("qwen-plus", "openai", &tokens);
        metrics.record_model_call("qwen-plus", "openai", &tokens);
        let text = metrics.render(3, 9, 0.5);
        assert!(text.contains("keygate_model_calls_total{model=\"qwen-plus\",protocol=\"openai\"} 2"), "{text}");
        assert!(text.contains("keygate_model_tokens_total{model=\"qwen-plus\",protocol=\"openai\",kind=\"input\"} 10"));
        assert!(text.contains("keygate_gateway_requests_total{outcome=\"ok\"} 1"));
        assert!(text.contains("keygate_gateway_requests_total{outcome=\"InvalidApiKey\"} 1"));
        assert!(text.contains("keygate_gateway_requests_total{outcome=\"other\"} 1"));
        assert!(text.contains("keygate_verification_seconds_bucket{le=\"0.000001\"} 1"));
        assert!(text.contains("keygate_verification_seconds_bucket{le=\"0.00005\"} 2"));
        assert!(text.contains("keygate_verification_seconds_count 2"));
        assert!(text.contains("keygate_registry_live_keys 3"));
        assert!(text.contains("keygate_change_feed_applied_version 9"));
        assert!(text.contains("keygate_change_feed_lag_seconds 0.5"));
    }

    #[test]
    fn counts_made_on_many_threads_are_all_in_one_rendering() {
        let metrics = Metrics::default();
        // More threads than there are sets of counters: some share one.
        std::thread::scope(|scope| {
            for _ in 0..COUNTER_SHARDS + 4 {
                scope.spawn(|| {
                    let tokens = keygate_core::usage::TokenUsage { input: 2, output: 1, cached: 0, reasoning: 0 };
                    for _ in 0..100 {
                        metrics.record_outcome("ok");
                        metrics.record_verification(Duration::from_micros(3));
                        metrics.record_model_call("qwen-plus", "dashscope", &tokens);
                    }
                });
            }
        });
        let calls = (COUNTER_SHARDS + 4) * 100;
        let text = metrics.render(0, 0, 0.0);
        assert!(text.contains(&format!("keygate_gateway_requests_total{{outcome=\"ok\"}} {calls}")), "{text}");
        assert!(text.contains(&format!("keygate_verification_seconds_bucket{{le=\"0.000005\"}} {calls}")), "{text}");
        assert!(text.contains(&format!("keygate_verification_seconds_count {calls}")), "{text}");
        assert!(text.contains(&format!("keygate_verification_seconds_sum {}", (calls as u64 * 3_000) as f64 / 1e9)), "{text}");
        assert!(text.contains(&format!("keygate_model_calls_total{{model=\"qwen-plus\",protocol=\"dashscope\"}} {calls}")), "{text}");
        let input = calls * 2;
        assert!(
            text.contains(&format!("keygate_model_tokens_total{{model=\"qwen-plus\",protocol=\"dashscope\",kind=\"input\"}} {input}")),
            "{text}"
        );
        assert_eq!(text.matches("keygate_model_calls_total{").count(), 1, "one line per model and protocol, whatever the threads");
    }
}
