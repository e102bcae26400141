//! What the caller's keys used (docs/CONTRACT.md#usage): the stored token usage filtered by
//! keys, models and workspaces, grouped by some of them and by a period, each group with its
//! cost at the `[[prices]]` of its model. keygate's usage API, `keygate usage`, the
//! console's Usage page and the per-key totals on key views all read usage through here, so
//! that a caller sees the same numbers everywhere: the account all of its usage, a RAM user
//! only its own keys'.
//!
//! Usage reaches the store one flush interval after the call (`usage_flush_interval_milliseconds`);
//! what a node counted and has not flushed yet is not shown.

use std::collections::HashMap;

use keygate_core::access::KeyVisibility;
use keygate_core::civil_time::month_start;
use keygate_core::key_limits::{BudgetPeriod, Spend};
use keygate_core::usage::{cost_micros, ModelPrice, UsageTotals};
/// What a [`UsageRequest`] is made of (filters, groupings, periods) and the lengths of its
/// periods, for the surfaces that build one.
pub use keygate_store::usage::{Selection, UsageDimension, UsagePeriod, DAY, HOUR};
use keygate_store::usage::{UsageQuery, MINUTE};
use keygate_store::{ApiKeyRecord, KeyOrder, ListKeysQuery};

use super::{Actor, OperationError, Operations, Result};

/// The longest time range of one usage view, per period it is grouped by: a view never
/// holds more than a few thousand periods, whatever a caller asks.
pub fn longest_range_seconds(period: Option<UsagePeriod>) -> i64 {
    match period {
        Some(UsagePeriod::Minute) => 2 * DAY,
        Some(UsagePeriod::Hour) => 31 * DAY,
        Some(UsagePeriod::Day) | Some(UsagePeriod::Month) | None => 800 * DAY,
    }
}

/// The end of a usage view's time range when the caller names none: the end of the
/// current minute, so that the calls of this minute (once flushed) are in it.
pub fn default_until(operations: Operations<'_>) -> i64 {
    let now = operations.clock.now_seconds();
    now - now.rem_euclid(MINUTE) + MINUTE
}

/// The start of a usage view's time range when the caller names none: the last 60 minutes,
/// 24 hours, 7 days or 12 months up to `until`, the period `until` falls in included and
/// every period whole (7 days when the view has no period). Each default range fits
/// [`longest_range_seconds`].
pub fn default_from(period: Option<UsagePeriod>, until: i64) -> i64 {
    let last_second = until - 1;
    let periods_before = |length: i64, count: i64| last_second - last_second.rem_euclid(length) - (count - 1) * length;
    match period {
        Some(UsagePeriod::Minute) => periods_before(MINUTE, 60),
        Some(UsagePeriod::Hour) => periods_before(HOUR, 24),
        Some(UsagePeriod::Day) | None => periods_before(DAY, 7),
        Some(UsagePeriod::Month) => (1..12).fold(month_start(last_second), |start, _| month_start(start - 1)),
    }
}

/// What a usage view sums: usage in `[from, until)` (Unix seconds) of the selected keys,
/// models and workspaces (within the caller's own), grouped by `group_by` and `period`.
#[derive(Debug, Clone, Default)]
pub struct UsageRequest {
    pub keys: Selection<i64>,
    pub models: Selection<String>,
    pub workspaces: Selection<String>,
    pub from: i64,
    pub until: i64,
    pub group_by: Vec<UsageDimension>,
    pub period: Option<UsagePeriod>,
}

/// Calls, tokens and what they cost: `cost_micros` sums the cost of the priced models'
/// tokens, in their `currency`; `unpriced` says that some tokens were of a model without a
/// price, whose cost is not in the sum.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CostedTotals {
    pub totals: UsageTotals,
    pub cost_micros: i64,
    pub currency: Option<String>,
    pub unpriced: bool,
}

impl CostedTotals {
    fn add_priced(&mut self, totals: &UsageTotals, model: &str, prices: &HashMap<String, ModelPrice>) {
        self.totals.add(totals);
        match prices.get(model) {
            Some(price) => {
                self.cost_micros = self.cost_micros.saturating_add(cost_micros(&totals.tokens, price));
                self.currency.get_or_insert_with(|| price.currency.clone());
            }
            None => self.unpriced |= !totals.is_zero(),
        }
    }
}

/// One group of a usage view: the dimensions it was grouped by are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub period_start: Option<i64>,
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub workspace_id: Option<String>,
    pub usage: CostedTotals,
}

/// A usage view: its groups (in period, then key, model and workspace order) and their
/// sum; `currency` is the total's, else the one a cost of nothing is shown in
/// ([`fallback_currency`]).
#[derive(Debug, Clone, Default)]
pub struct UsageView {
    pub rows: Vec<UsageRow>,
    pub total: CostedTotals,
    pub currency: String,
}

/// The caller's usage as `request` asks: a range that runs forward and is no longer than
/// its granularity allows ([`longest_range_seconds`]).
pub async fn usage(operations: Operations<'_>, actor: &Actor, request: &UsageRequest) -> Result<UsageView> {
    if request.until <= request.from {
        return Err(OperationError::invalid_parameter("The end of the time range must be after its start."));
    }
    if request.until - request.from > longest_range_seconds(request.period) {
        return Err(OperationError::invalid_parameter(format!(
            "The time range is too long for this granularity: at most {} days.",
            longest_range_seconds(request.period) / DAY
        )));
    }
    grouped_usage(operations, actor, request).await
}

/// [`usage`] without its checks of the range, which a caller's request needs and the
/// retained period of [`key_totals`] (as long as the settings say) must not meet.
async fn grouped_usage(operations: Operations<'_>, actor: &Actor, request: &UsageRequest) -> Result<UsageView> {
    let prices = price_table(operations)?;
    let mut query = UsageQuery {
        account_id: Some(actor.caller.account_id),
        keys: request.keys.clone(),
        models: request.models.clone(),
        workspaces: request.workspaces.clone(),
        from: request.from,
        until: request.until,
        group_by: request.group_by.clone(),
        period: request.period,
    };
    if let Some(visible) = visible_keys(operations, actor).await? {
        narrow_to(&mut query.keys, visible);
    }
    // Costs are per model: the store groups by model too, and rows of other models of one
    // group are folded here.
    let by_model_too = !query.group_by.contains(&UsageDimension::Model);
    if by_model_too {
        query.group_by.push(UsageDimension::Model);
    }
    let report = operations.store.query_usage(&query).await?;
    let mut view = UsageView::default();
    for group in report.groups {
        let model = group.model.clone().unwrap_or_default();
        view.total.add_priced(&group.totals, &model, &prices);
        let row_model = if by_model_too { None } else { group.model.clone() };
        let same_group = |row: &UsageRow| {
            row.period_start == group.period_start
                && row.key_id == group.key_id
                && row.workspace_id == group.workspace_id
                && row.model == row_model
        };
        // The store orders by period and the grouped columns: rows of one group that
        // differ only by model are not always adjacent, so they are looked up.
        match view.rows.iter_mut().rev().find(|row| same_group(row)) {
            Some(row) => row.usage.add_priced(&group.totals, &model, &prices),
            None => {
                let mut usage = CostedTotals::default();
                usage.add_priced(&group.totals, &model, &prices);
                view.rows.push(UsageRow {
                    period_start: group.period_start,
                    key_id: group.key_id,
                    model: row_model,
                    workspace_id: group.workspace_id.clone(),
                    usage,
                });
            }
        }
    }
    view.rows.sort_by(|left, right| {
        (left.period_start, left.key_id, &left.model, &left.workspace_id).cmp(&(
            right.period_start,
            right.key_id,
            &right.model,
            &right.workspace_id,
        ))
    });
    view.currency = view.total.currency.clone().unwrap_or_else(|| fallback_currency(&prices));
    Ok(view)
}

/// The usage of some keys, each over the retained period: `by_key` holds the keys that
/// have usage; `currency` is the one a cost of nothing is shown in.
#[derive(Debug, Clone, Default)]
pub struct KeyTotals {
    pub by_key: HashMap<i64, CostedTotals>,
    pub currency: String,
}

/// The usage of each of `key_ids` (those the caller may see) over the retained period, for
/// the usage totals shown with keys, in one query whatever the number of keys. Keys without
/// usage are absent.
pub async fn key_totals(operations: Operations<'_>, actor: &Actor, key_ids: &[i64]) -> Result<KeyTotals> {
    if key_ids.is_empty() {
        return Ok(KeyTotals { by_key: HashMap::new(), currency: fallback_currency(&price_table(operations)?) });
    }
    let now = operations.clock.now_seconds();
    let retained = i64::from(operations.settings.usage_retention_days) * DAY;
    let request = UsageRequest {
        keys: Selection::only(key_ids.to_vec()),
        from: now - retained - DAY,
        // The current hour's minutes are included.
        until: now + HOUR,
        group_by: vec![UsageDimension::Key],
        ..UsageRequest::default()
    };
    let view = grouped_usage(operations, actor, &request).await?;
    let by_key = view.rows.into_iter().filter_map(|row| row.key_id.map(|key_id| (key_id, row.usage))).collect();
    Ok(KeyTotals { by_key, currency: view.currency })
}

/// What each of `budgets` (a key the caller may see, and its budget's period) spent in its
/// current period (docs/CONTRACT.md#per-key-limits), from the stored usage: at most one
/// query per kind of period, whatever the number of keys. The same figures the gateway
/// starts from ([`crate::key_budgets`]), without what the nodes have not flushed yet.
pub async fn budget_spends(operations: Operations<'_>, actor: &Actor, budgets: &[(i64, BudgetPeriod)]) -> Result<HashMap<i64, Spend>> {
    let now = operations.clock.now_seconds();
    let mut spends = HashMap::new();
    for period in [BudgetPeriod::Day, BudgetPeriod::Month] {
        let key_ids: Vec<i64> = budgets.iter().filter(|(_, of)| *of == period).map(|(key_id, _)| *key_id).collect();
        if key_ids.is_empty() {
            continue;
        }
        let (from, until) = period.bounds(now);
        let request =
            UsageRequest { keys: Selection::only(key_ids), from, until, group_by: vec![UsageDimension::Key], ..UsageRequest::default() };
        for row in grouped_usage(operations, actor, &request).await?.rows {
            if let Some(key_id) = row.key_id {
                let tokens = u64::try_from(row.usage.totals.tokens.total()).unwrap_or(0);
                spends.insert(key_id, Spend { tokens, cost_micros: row.usage.cost_micros });
            }
        }
    }
    Ok(spends)
}

/// The keys among `records` with a budget, and its period: what [`budget_spends`] asks for.
pub fn budgets_of(records: &[ApiKeyRecord]) -> Vec<(i64, BudgetPeriod)> {
    records.iter().filter_map(|record| Some((record.api_key_id, record.limits?.budget?.period))).collect()
}

/// Keeps only `allowed` in `selection` (an `IN` of its own narrowed to them).
fn narrow_to(selection: &mut Selection<i64>, allowed: Vec<i64>) {
    selection.include = Some(match selection.include.take() {
        None => allowed,
        Some(kept) => kept.into_iter().filter(|value| allowed.contains(value)).collect(),
    });
}

/// The price of each priced model.
pub(super) fn price_table(operations: Operations<'_>) -> Result<HashMap<String, ModelPrice>> {
    // Checked when the settings were loaded: an error here is the server's.
    operations.settings.price_table().map_err(|error| OperationError::internal(format!("prices: {error}")))
}

/// The currency of a cost when no priced model was used: the first of the price table's
/// currencies in order, else `USD`.
pub(super) fn fallback_currency(prices: &HashMap<String, ModelPrice>) -> String {
    prices.values().map(|price| &price.currency).min().cloned().unwrap_or_else(|| "USD".to_string())
}

/// The keys of the caller's usage: `None` for every key of the account, or the keys a RAM
/// user created (in every region this server serves).
pub(super) async fn visible_keys(operations: Operations<'_>, actor: &Actor) -> Result<Option<Vec<i64>>> {
    let visibility = actor.caller.key_visibility();
    if visibility == KeyVisibility::WholeAccount {
        return Ok(None);
    }
    let mut keys = Vec::new();
    for region in operations.served_regions() {
        let query = ListKeysQuery {
            search: None,
            account_id: actor.caller.account_id,
            region,
            visibility,
            api_key_id: None,
            description: None,
            workspace_id: None,
            order_by: KeyOrder::ApiKeyId,
            descending: false,
            offset: 0,
            limit: u32::MAX,
        };
        let (records, _) = operations.store.list_api_keys(&query).await?;
        keys.extend(records.iter().map(|record| record.api_key_id));
    }
    Ok(Some(keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::civil_time::{format_utc_timestamp, parse_utc_timestamp};

    #[test]
    fn default_ranges_are_whole_periods_that_fit_their_granularity() {
        let until = parse_utc_timestamp("2026-08-15T10:31:00Z").unwrap();
        let from = |period| format_utc_timestamp(default_from(period, until));
        assert_eq!(from(Some(UsagePeriod::Minute)), "2026-08-15T09:31:00Z");
        assert_eq!(from(Some(UsagePeriod::Hour)), "2026-08-14T11:00:00Z");
        assert_eq!(from(Some(UsagePeriod::Day)), "2026-08-09T00:00:00Z");
        assert_eq!(from(None), "2026-08-09T00:00:00Z");
        assert_eq!(from(Some(UsagePeriod::Month)), "2025-09-01T00:00:00Z");
        for period in [Some(UsagePeriod::Minute), Some(UsagePeriod::Hour), Some(UsagePeriod::Day), Some(UsagePeriod::Month), None] {
            assert!(until - default_from(period, until) <= longest_range_seconds(period), "{period:?}");
        }
        // An end on a period's boundary does not include the period it starts.
        let midnight = parse_utc_timestamp("2026-08-15T00:00:00Z").unwrap();
        assert_eq!(format_utc_timestamp(default_from(Some(UsagePeriod::Day), midnight)), "2026-08-08T00:00:00Z");
    }
}
