//! Usage counted in memory on the request path and written to the store in batches by a
//! background task, never per request (docs/CONTRACT.md#usage): per key its calls and
//! latest call (`requestCount`, `lastUsedAt`), and per key, model and minute the calls and
//! tokens of model calls. Each flush is one transaction of at most two statements, whatever
//! the number of rows; a crash loses at most what was counted since the last flush.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use keygate_core::usage::{TokenUsage, UsageTotals};
use keygate_store::usage::{KeyCalls, UsageDelta};
use keygate_store::Store;
use rustc_hash::FxHashMap as HashMap;

/// Counters are split in shards, one per thread (round-robin), so that the workers that
/// serve calls do not take the same lock: an uncontended lock stays in its core's cache.
/// The shards' maps hash with FxHash, not SipHash: their keys are key ids and minutes that
/// keygate assigned, which a client cannot choose to make them collide, and SipHash was a
/// tenth of what accounting costs a call.
const SHARDS: usize = 16;

/// The tokens of one key in one minute, per model (a key calls few models in a minute:
/// a short list is searched faster than a second map).
#[derive(Debug)]
struct ModelRow {
    model: Box<str>,
    account_id: i64,
    workspace_id: Arc<str>,
    totals: UsageTotals,
}

/// What one shard holds between flushes.
#[derive(Debug, Default)]
struct Pending {
    /// By key id: (calls, latest call in Unix milliseconds).
    keys: HashMap<i64, (i64, i64)>,
    /// By (key id, minute start in Unix seconds).
    tokens: HashMap<(i64, i64), Vec<ModelRow>>,
}

/// One shard on its own cache lines (two adjacent locks would bounce one line between the
/// cores that take them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Pending>);

#[derive(Debug, Default)]
pub struct UsageCounters {
    shards: [Shard; SHARDS],
    /// Held for the whole of a flush: a flush that starts while another writes waits for it,
    /// so that when a flush returns, everything counted before it began is written (or put
    /// back after a failure), not still on its way in the other one.
    flushing: tokio::sync::Mutex<()>,
}

/// One finished model call, as it is counted.
#[derive(Debug, Clone)]
pub struct CallUsage<'a> {
    pub key_id: i64,
    pub account_id: i64,
    pub workspace_id: &'a str,
    pub model: &'a str,
    /// When the call was authorized (Unix milliseconds): the minute it is counted in.
    pub at_milliseconds: i64,
    pub tokens: TokenUsage,
}

fn add_key(pending: &mut Pending, key_id: i64, count: i64, last_used_at: i64) {
    let entry = pending.keys.entry(key_id).or_insert((0, 0));
    entry.0 += count;
    entry.1 = entry.1.max(last_used_at);
}

fn add_tokens(pending: &mut Pending, key_id: i64, minute: i64, row: ModelRow) {
    let rows = pending.tokens.entry((key_id, minute)).or_default();
    match rows.iter_mut().find(|existing| existing.model == row.model) {
        Some(existing) => existing.totals.add(&row.totals),
        None => rows.push(row),
    }
}

impl UsageCounters {
    /// This thread's shard.
    fn shard(&self) -> &Mutex<Pending> {
        static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static THIS_THREADS_SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        &self.shards[THIS_THREADS_SHARD.with(|shard| *shard)].0
    }

    /// Counts one authorized call of `key_id` at `now_milliseconds` that is not a model
    /// call through keygate (`/auth/verify`).
    pub fn record(&self, key_id: i64, now_milliseconds: i64) {
        let mut pending = self.shard().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        add_key(&mut pending, key_id, 1, now_milliseconds);
    }

    /// Counts one model call and its tokens.
    pub fn record_call(&self, call: &CallUsage<'_>) {
        let minute = call.at_milliseconds.div_euclid(60_000) * 60;
        let mut pending = self.shard().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        add_key(&mut pending, call.key_id, 1, call.at_milliseconds);
        let rows = pending.tokens.entry((call.key_id, minute)).or_default();
        match rows.iter_mut().find(|existing| &*existing.model == call.model) {
            Some(existing) => existing.totals.add(&UsageTotals { requests: 1, tokens: call.tokens }),
            None => rows.push(ModelRow {
                model: call.model.into(),
                account_id: call.account_id,
                workspace_id: call.workspace_id.into(),
                totals: UsageTotals { requests: 1, tokens: call.tokens },
            }),
        }
    }

    /// Everything counted so far, taken out of the shards.
    fn drain(&self) -> Pending {
        let mut all = Pending::default();
        for shard in &self.shards {
            let mut pending = shard.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let taken = std::mem::take(&mut *pending);
            drop(pending);
            for (key_id, (count, last_used_at)) in taken.keys {
                add_key(&mut all, key_id, count, last_used_at);
            }
            for ((key_id, minute), rows) in taken.tokens {
                for row in rows {
                    add_tokens(&mut all, key_id, minute, row);
                }
            }
        }
        all
    }

    /// Counts waiting for the next flush: (key rows, token rows).
    pub fn pending_rows(&self) -> (usize, usize) {
        let mut counts = (0, 0);
        for shard in &self.shards {
            let pending = shard.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            counts.0 += pending.keys.len();
            counts.1 += pending.tokens.values().map(Vec::len).sum::<usize>();
        }
        counts
    }

    /// Writes what has accumulated (one transaction); on failure the counts are put back
    /// for the next try, so that nothing is lost and, the transaction having rolled back,
    /// nothing is counted twice. Answers whether everything counted is written.
    pub async fn flush(&self, store: &Store) -> bool {
        let _flushing = self.flushing.lock().await;
        let pending = self.drain();
        if pending.keys.is_empty() && pending.tokens.is_empty() {
            return true;
        }
        let keys: Vec<KeyCalls> =
            pending.keys.iter().map(|(&key_id, &(calls, last_used_at))| KeyCalls { key_id, calls, last_used_at }).collect();
        let rows: Vec<UsageDelta> = pending
            .tokens
            .iter()
            .flat_map(|(&(key_id, minute_start), rows)| {
                rows.iter().map(move |row| UsageDelta {
                    key_id,
                    model: row.model.to_string(),
                    minute_start,
                    account_id: row.account_id,
                    workspace_id: row.workspace_id.to_string(),
                    totals: row.totals,
                })
            })
            .collect();
        if let Err(error) = store.flush_usage(&keys, &rows).await {
            tracing::warn!(%error, keys = keys.len(), rows = rows.len(), "writing usage failed; will retry");
            let mut shard = self.shard().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key_id, (count, last_used_at)) in pending.keys {
                add_key(&mut shard, key_id, count, last_used_at);
            }
            for ((key_id, minute), rows) in pending.tokens {
                for row in rows {
                    add_tokens(&mut shard, key_id, minute, row);
                }
            }
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `record` on four threads at once (each told its number), as the gateway's
    /// workers do, and answers the counters they shared.
    fn record_from_four_threads(record: fn(i64, &UsageCounters)) -> std::sync::Arc<UsageCounters> {
        let counters = std::sync::Arc::new(UsageCounters::default());
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let counters = counters.clone();
                std::thread::spawn(move || record(thread, &counters))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        counters
    }

    #[test]
    fn counts_from_every_thread_are_summed_per_key() {
        let counters = record_from_four_threads(|thread, counters| {
            for call in 0..100 {
                counters.record(7, 1_000 + thread * 100 + call);
            }
            counters.record(8, 5);
        });
        let drained = counters.drain();
        assert_eq!(drained.keys.get(&7), Some(&(400, 1_399)));
        assert_eq!(drained.keys.get(&8), Some(&(4, 5)));
        assert!(counters.drain().keys.is_empty(), "a drain takes the counts out");
    }

    #[test]
    fn tokens_are_summed_per_key_model_and_minute() {
        let counters = record_from_four_threads(|_, counters| {
            for (model, at) in [("a", 60_000), ("a", 119_999), ("b", 60_500), ("a", 120_000)] {
                let tokens = TokenUsage { input: 10, output: 2, cached: 1, reasoning: 0 };
                let call = CallUsage { key_id: 1, account_id: 9, workspace_id: "ws", model, at_milliseconds: at, tokens };
                counters.record_call(&call);
            }
        });
        let drained = counters.drain();
        assert_eq!(drained.keys.get(&1), Some(&(16, 120_000)));
        let first_minute = &drained.tokens[&(1, 60)];
        let a = first_minute.iter().find(|row| &*row.model == "a").unwrap();
        assert_eq!(a.totals.requests, 8);
        assert_eq!(a.totals.tokens, TokenUsage { input: 80, output: 16, cached: 8, reasoning: 0 });
        assert_eq!(first_minute.iter().find(|row| &*row.model == "b").unwrap().totals.requests, 4);
        assert_eq!(drained.tokens[&(1, 120)][0].totals.requests, 4);
    }
}
