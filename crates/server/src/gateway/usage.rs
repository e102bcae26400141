//! Key usage (`requestCount`, `lastUsedAt`) counted in memory on the request path and
//! written to the store in batches by a background task, never per request.

use std::collections::HashMap;
use std::sync::Mutex;

use keygate_store::Store;

#[derive(Debug, Default)]
pub struct UsageCounters {
    pending: Mutex<HashMap<i64, (i64, i64)>>,
}

impl UsageCounters {
    /// Counts one authorized call of `key_id` at `now_milliseconds`.
    pub fn record(&self, key_id: i64, now_milliseconds: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = pending.entry(key_id).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = entry.1.max(now_milliseconds);
    }

    /// Writes what has accumulated; on failure the counts are put back for the next try.
    pub async fn flush(&self, store: &Store) {
        let batch: Vec<(i64, i64, i64)> = {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.drain().map(|(key_id, (count, last_used_at))| (key_id, count, last_used_at)).collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(error) = store.add_key_usage(&batch).await {
            tracing::warn!(%error, keys = batch.len(), "writing key usage failed; will retry");
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key_id, count, last_used_at) in batch {
                let entry = pending.entry(key_id).or_insert((0, 0));
                entry.0 += count;
                entry.1 = entry.1.max(last_used_at);
            }
        }
    }
}
