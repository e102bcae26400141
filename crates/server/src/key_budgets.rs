//! What each key with a budget has spent in its current period (docs/CONTRACT.md#per-key-limits),
//! as the gateway checks it before a call: the stored usage of every node plus what this
//! node has counted and not written yet.
//!
//! A key's entry holds three parts. `stored` is what the store held when it was last read
//! (every node's flushed calls). `unflushed` is what this node charged since its last
//! flush began, and `flushing` what that flush is writing. The usage flusher
//! ([`KeyBudgets::flush_usage`]) moves `unflushed` to `flushing`, writes the usage, folds
//! `flushing` into `stored` when the write committed (or back into `unflushed` when it
//! failed), then reads `stored` again for every key in use: one query per kind of period.
//! So a node counts its own calls at once and other nodes' within about one flush interval
//! of theirs plus one of its own; that lag is the overshoot the contract states.
//!
//! An entry is made the first time a node sees a key with a budget (after a start, or after
//! the key was given one): that one read of the store is on the call's path, once per key,
//! because a budget must hold across restarts. A new period starts from nothing (this
//! node's calls of the new period count at once; the others' at the next refresh).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use rustc_hash::FxHashMap;

use keygate_core::key_limits::{BudgetPeriod, Spend};
use keygate_core::usage::{cost_micros, ModelPrice, TokenUsage};
use keygate_store::usage::{Selection, UsageDimension, UsageQuery};
use keygate_store::{Store, StoreError};

use crate::usage::UsageCounters;

/// Entries not used for this long are forgotten (and no longer refreshed): a key that
/// calls again is read from the store again.
const IDLE_SECONDS: i64 = 600;

#[derive(Debug, Clone, Copy)]
struct Entry {
    period: BudgetPeriod,
    period_start: i64,
    /// Where the period ends, kept so that a call need not work out its calendar month.
    period_end: i64,
    stored: Spend,
    flushing: Spend,
    unflushed: Spend,
    last_used: i64,
}

impl Entry {
    fn total(&self) -> Spend {
        self.stored.plus(self.flushing).plus(self.unflushed)
    }

    /// Moves the entry on to the period of `now` when that period has begun since: a new
    /// period starts from nothing. An earlier `now` (a call that began before the period
    /// did) leaves the entry in its period.
    fn roll(&mut self, now: i64) {
        if now >= self.period_end {
            *self = Entry::new(self.period, now, Spend::default(), self.last_used);
        }
    }

    /// A fresh entry for the period of `now`, with `stored` read from the store.
    fn new(period: BudgetPeriod, now: i64, stored: Spend, last_used: i64) -> Entry {
        let (period_start, period_end) = period.bounds(now);
        Entry { period, period_start, period_end, stored, flushing: Spend::default(), unflushed: Spend::default(), last_used }
    }

    fn holds(&self, at: i64) -> bool {
        (self.period_start..self.period_end).contains(&at)
    }
}

/// The spend of each key with a budget that this node has seen lately.
#[derive(Debug, Default)]
pub struct KeyBudgets {
    // Keyed by key ids the store assigned and catalog model names: a fast unkeyed hash is safe.
    entries: Mutex<FxHashMap<i64, Entry>>,
    prices: FxHashMap<String, ModelPrice>,
}

impl KeyBudgets {
    /// Costs are reckoned at `prices` (the price table of the settings).
    pub fn new(prices: HashMap<String, ModelPrice>) -> KeyBudgets {
        KeyBudgets { entries: Mutex::new(FxHashMap::default()), prices: prices.into_iter().collect() }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, FxHashMap<i64, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `key_id` spent in the `period` that holds `now`, when this node has its entry:
    /// the usual case, answered without a future (the store's read makes [`Self::spent`]'s
    /// large).
    pub fn spent_here(&self, key_id: i64, period: BudgetPeriod, now: i64) -> Option<Spend> {
        let mut entries = self.entries();
        let entry = entries.get_mut(&key_id).filter(|entry| entry.period == period)?;
        entry.roll(now);
        entry.last_used = now;
        Some(entry.total())
    }

    /// What `key_id` spent in the `period` that holds `now`, reading the store only when
    /// this node has no entry for the key (or the key's budget changed its period).
    pub async fn spent(&self, store: &Store, key_id: i64, period: BudgetPeriod, now: i64) -> Result<Spend, StoreError> {
        if let Some(spent) = self.spent_here(key_id, period, now) {
            return Ok(spent);
        }
        let stored = self.stored_spend(store, &[key_id], period, now).await?.remove(&key_id).unwrap_or_default();
        let mut entries = self.entries();
        // Another call may have made the entry meanwhile: its local counts are kept.
        let entry = entries.entry(key_id).or_insert_with(|| Entry::new(period, now, stored, now));
        if entry.period != period {
            *entry = Entry::new(period, now, stored, now);
        }
        Ok(entry.total())
    }

    /// Charges a finished call of `key_id` (made at `at`, Unix seconds) with its tokens of
    /// `model`: counted at once on this node.
    pub fn charge(&self, key_id: i64, model: &str, tokens: &TokenUsage, at: i64) {
        let spend = Spend {
            tokens: u64::try_from(tokens.total()).unwrap_or(0),
            cost_micros: self.prices.get(model).map_or(0, |price| cost_micros(tokens, price)),
        };
        if let Some(entry) = self.entries().get_mut(&key_id) {
            entry.roll(at);
            // A call that began in the period before counts there (its usage is written
            // with its own time), not in this one.
            if entry.holds(at) {
                entry.unflushed.add(spend);
            }
        }
    }

    /// Writes the usage counted on this node (as [`UsageCounters::flush`]) and brings every
    /// entry in use up to date with the store: the usage flusher's one step.
    pub async fn flush_usage(&self, usage: &UsageCounters, store: &Store, now: i64) {
        for entry in self.entries().values_mut() {
            let unflushed = std::mem::take(&mut entry.unflushed);
            entry.flushing.add(unflushed);
        }
        let written = usage.flush(store).await;
        for entry in self.entries().values_mut() {
            let flushing = std::mem::take(&mut entry.flushing);
            if written {
                entry.stored.add(flushing);
            } else {
                entry.unflushed.add(flushing);
            }
        }
        if written {
            self.refresh(store, now).await;
        }
    }

    /// Reads the stored spend of every entry in use again (entries idle for
    /// [`IDLE_SECONDS`] are dropped). A failed read keeps the figures as they were.
    async fn refresh(&self, store: &Store, now: i64) {
        let mut by_period: HashMap<BudgetPeriod, Vec<i64>> = HashMap::new();
        {
            let mut entries = self.entries();
            entries.retain(|_, entry| now - entry.last_used < IDLE_SECONDS);
            for (key_id, entry) in entries.iter_mut() {
                entry.roll(now);
                by_period.entry(entry.period).or_default().push(*key_id);
            }
        }
        for (period, key_ids) in by_period {
            let (period_start, _) = period.bounds(now);
            match self.stored_spend(store, &key_ids, period, now).await {
                Ok(mut spends) => {
                    let mut entries = self.entries();
                    for key_id in key_ids {
                        if let Some(entry) =
                            entries.get_mut(&key_id).filter(|entry| entry.period == period && entry.period_start == period_start)
                        {
                            entry.stored = spends.remove(&key_id).unwrap_or_default();
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "reading the spend of key budgets failed; will retry"),
            }
        }
    }

    /// The stored spend of `key_ids` in the `period` that holds `now`: one grouped query,
    /// costed per model.
    async fn stored_spend(
        &self,
        store: &Store,
        key_ids: &[i64],
        period: BudgetPeriod,
        now: i64,
    ) -> Result<HashMap<i64, Spend>, StoreError> {
        let (from, until) = period.bounds(now);
        let query = UsageQuery {
            keys: Selection::only(key_ids.to_vec()),
            from,
            until,
            group_by: vec![UsageDimension::Key, UsageDimension::Model],
            ..UsageQuery::default()
        };
        let mut spends: HashMap<i64, Spend> = HashMap::new();
        for group in store.query_usage(&query).await?.groups {
            let Some(key_id) = group.key_id else { continue };
            let tokens = &group.totals.tokens;
            let price = group.model.as_deref().and_then(|model| self.prices.get(model));
            let spend = Spend {
                tokens: u64::try_from(tokens.total()).unwrap_or(0),
                cost_micros: price.map_or(0, |price| cost_micros(tokens, price)),
            };
            spends.entry(key_id).or_default().add(spend);
        }
        Ok(spends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_call_counts_in_the_period_it_began_and_a_new_period_starts_from_nothing() {
        let budgets = KeyBudgets::new(HashMap::new());
        let today = 20_000 * DAY;
        budgets.entries().insert(7, Entry::new(BudgetPeriod::Day, today + 10, Spend { tokens: 100, cost_micros: 0 }, today + 10));
        let tokens = TokenUsage { input: 3, output: 4, ..TokenUsage::default() };
        budgets.charge(7, "qwen-plus", &tokens, today + 20);
        assert_eq!(budgets.spent_here(7, BudgetPeriod::Day, today + 30).map(|spend| spend.tokens), Some(107));
        // A call that began yesterday and ended today is yesterday's: today's spend keeps
        // what it had.
        budgets.charge(7, "qwen-plus", &tokens, today - 5);
        assert_eq!(budgets.spent_here(7, BudgetPeriod::Day, today + 40).map(|spend| spend.tokens), Some(107));
        // Tomorrow starts from nothing, and counts its own calls.
        budgets.charge(7, "qwen-plus", &tokens, today + DAY + 1);
        assert_eq!(budgets.spent_here(7, BudgetPeriod::Day, today + DAY + 2).map(|spend| spend.tokens), Some(7));
        // Another period's entry is not this one's answer.
        assert_eq!(budgets.spent_here(7, BudgetPeriod::Month, today + DAY + 2), None);
    }
}
