//! Key usage (`requestCount`, `lastUsedAt`) counted in memory on the request path and
//! written to the store in batches by a background task, never per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use keygate_store::Store;

/// Counters are split in shards, one per thread (round-robin), so that the workers that
/// serve calls do not take the same lock: an uncontended lock stays in its core's cache.
const SHARDS: usize = 16;

/// Pending counts by key id: (calls, latest call in Unix milliseconds).
type Pending = HashMap<i64, (i64, i64)>;

/// One shard on its own cache lines (two adjacent locks would bounce one line between the
/// cores that take them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Pending>);

#[derive(Debug, Default)]
pub struct UsageCounters {
    shards: [Shard; SHARDS],
}

fn add(pending: &mut Pending, key_id: i64, count: i64, last_used_at: i64) {
    let entry = pending.entry(key_id).or_insert((0, 0));
    entry.0 += count;
    entry.1 = entry.1.max(last_used_at);
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

    /// Counts one authorized call of `key_id` at `now_milliseconds`.
    pub fn record(&self, key_id: i64, now_milliseconds: i64) {
        let mut pending = self.shard().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        add(&mut pending, key_id, 1, now_milliseconds);
    }

    /// Everything counted so far, taken out of the shards.
    fn drain(&self) -> Pending {
        let mut all = Pending::new();
        for shard in &self.shards {
            let mut pending = shard.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key_id, (count, last_used_at)) in pending.drain() {
                add(&mut all, key_id, count, last_used_at);
            }
        }
        all
    }

    /// Writes what has accumulated; on failure the counts are put back for the next try.
    pub async fn flush(&self, store: &Store) {
        let batch: Vec<(i64, i64, i64)> =
            self.drain().into_iter().map(|(key_id, (count, last_used_at))| (key_id, count, last_used_at)).collect();
        if batch.is_empty() {
            return;
        }
        if let Err(error) = store.add_key_usage(&batch).await {
            tracing::warn!(%error, keys = batch.len(), "writing key usage failed; will retry");
            let mut pending = self.shard().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key_id, count, last_used_at) in batch {
                add(&mut pending, key_id, count, last_used_at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_every_thread_are_summed_per_key() {
        let counters = std::sync::Arc::new(UsageCounters::default());
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let counters = counters.clone();
                std::thread::spawn(move || {
                    for call in 0..100 {
                        counters.record(7, 1_000 + thread * 100 + call);
                    }
                    counters.record(8, 5);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let drained = counters.drain();
        assert_eq!(drained.get(&7), Some(&(400, 1_399)));
        assert_eq!(drained.get(&8), Some(&(4, 5)));
        assert!(counters.drain().is_empty(), "a drain takes the counts out");
    }
}
