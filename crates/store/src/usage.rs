//! Token accounting (docs/CONTRACT.md#usage): the deltas a node counted in memory, added to
//! `token_usage` in one statement per flush; the queries the usage and billing views are
//! built on; and the rollup of aging minute rows into hours and days, then their pruning.
//!
//! A flush passes all its rows as one JSON array in one parameter (SQLite's `json_each`,
//! PostgreSQL's `jsonb_array_elements`), so its size never meets a database's limit on
//! parameters and it is one statement whatever the number of rows. Rows are added, never
//! set: two nodes flushing the same key, model and minute add up.

use keygate_core::usage::{TokenUsage, UsageTotals};
use serde_json::json;

use crate::database::{params, Dialect, SqlValue};
use crate::{Store, StoreError};

/// Seconds in the periods rows are kept at.
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// Serializes rollups across nodes (PostgreSQL transaction-scoped advisory lock).
const ROLLUP_LOCK: i64 = 0x6b67_7573_6167_6531;

/// What a node counted for one key, model and minute since its last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    pub key_id: i64,
    pub model: String,
    /// Unix seconds, a multiple of 60.
    pub minute_start: i64,
    pub account_id: i64,
    pub workspace_id: String,
    pub totals: UsageTotals,
}

/// Calls of one key since the last flush (`request_count` and `last_used_at` of the key,
/// which `/auth/verify` counts too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCalls {
    pub key_id: i64,
    pub calls: i64,
    /// Unix milliseconds of the latest call.
    pub last_used_at: i64,
}

/// Which values of one dimension a query keeps: `IN` (when `include` is given) and `NOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<T> {
    /// `Some(values)`: only these (an empty list keeps nothing). `None`: every value.
    pub include: Option<Vec<T>>,
    /// Never these.
    pub exclude: Vec<T>,
}

impl<T> Default for Selection<T> {
    fn default() -> Self {
        Selection { include: None, exclude: Vec::new() }
    }
}

impl<T> Selection<T> {
    pub fn only(values: Vec<T>) -> Selection<T> {
        Selection { include: Some(values), exclude: Vec::new() }
    }
}

/// A dimension usage is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageDimension {
    Key,
    Model,
    Workspace,
}

/// A time bucket usage is grouped by (UTC). Rows older than the rollup ages are kept per
/// hour or per day: grouped by minute they fall on the hour or day they were rolled into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsagePeriod {
    Minute,
    Hour,
    Day,
    Month,
}

/// Usage rows to sum: filtered by account, keys, models and workspaces and by
/// `[from, until)` (Unix seconds), grouped by some dimensions and a period.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub account_id: Option<i64>,
    pub keys: Selection<i64>,
    pub models: Selection<String>,
    pub workspaces: Selection<String>,
    pub from: i64,
    pub until: i64,
    pub group_by: Vec<UsageDimension>,
    pub period: Option<UsagePeriod>,
}

/// One group of a [`UsageQuery`]: the dimensions it was grouped by are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageGroup {
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub workspace_id: Option<String>,
    /// Unix seconds of the period's start, when grouped by period.
    pub period_start: Option<i64>,
    pub totals: UsageTotals,
}

/// The groups of a query, in period then dimension order (text in byte order), and their total.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageReport {
    pub groups: Vec<UsageGroup>,
    pub totals: UsageTotals,
}

/// When rows are rolled up and pruned (seconds of age).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRetention {
    pub hourly_after_seconds: i64,
    pub daily_after_seconds: i64,
    pub keep_seconds: i64,
}

/// What a rollup did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RollupReport {
    pub minute_rows_rolled: u64,
    pub hour_rows_rolled: u64,
    pub rows_pruned: u64,
}

fn token_usage_upsert(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "INSERT INTO token_usage (key_id, model, period_seconds, period_start, account_id, workspace_id, requests, input_tokens, output_tokens, cached_tokens, reasoning_tokens) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), 60, json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), \
                    json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'), json_extract(value, '$[9]') \
             FROM json_each($1) WHERE true \
             ON CONFLICT (key_id, model, period_seconds, period_start) DO UPDATE SET \
             requests = token_usage.requests + excluded.requests, input_tokens = token_usage.input_tokens + excluded.input_tokens, \
             output_tokens = token_usage.output_tokens + excluded.output_tokens, cached_tokens = token_usage.cached_tokens + excluded.cached_tokens, \
             reasoning_tokens = token_usage.reasoning_tokens + excluded.reasoning_tokens"
        }
        Dialect::Postgres => {
            "INSERT INTO token_usage (key_id, model, period_seconds, period_start, account_id, workspace_id, requests, input_tokens, output_tokens, cached_tokens, reasoning_tokens) \
             SELECT (r->>0)::bigint, r->>1, 60, (r->>2)::bigint, (r->>3)::bigint, r->>4, \
                    (r->>5)::bigint, (r->>6)::bigint, (r->>7)::bigint, (r->>8)::bigint, (r->>9)::bigint \
             FROM jsonb_array_elements($1::jsonb) AS r \
             ON CONFLICT (key_id, model, period_seconds, period_start) DO UPDATE SET \
             requests = token_usage.requests + EXCLUDED.requests, input_tokens = token_usage.input_tokens + EXCLUDED.input_tokens, \
             output_tokens = token_usage.output_tokens + EXCLUDED.output_tokens, cached_tokens = token_usage.cached_tokens + EXCLUDED.cached_tokens, \
             reasoning_tokens = token_usage.reasoning_tokens + EXCLUDED.reasoning_tokens"
        }
    }
}

fn key_calls_update(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "UPDATE api_keys SET request_count = api_keys.request_count + u.calls, last_used_at = MAX(COALESCE(api_keys.last_used_at, 0), u.last) \
             FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS calls, json_extract(value, '$[2]') AS last FROM json_each($1)) AS u \
             WHERE api_keys.api_key_id = u.id"
        }
        // The keys are locked in key order (the sub-select's FOR UPDATE, applied after its
        // ORDER BY) before any is updated: a group commit changes several keys in one
        // transaction in key order too, so neither can wait for the other in a cycle. An
        // UPDATE with a join alone locks in whatever order its plan reads the rows.
        Dialect::Postgres => {
            "UPDATE api_keys SET request_count = api_keys.request_count + u.calls, last_used_at = GREATEST(COALESCE(api_keys.last_used_at, 0), u.last) \
             FROM (SELECT k.api_key_id AS id, c.calls, c.last FROM api_keys k \
                   JOIN (SELECT (r->>0)::bigint AS id, (r->>1)::bigint AS calls, (r->>2)::bigint AS last FROM jsonb_array_elements($1::jsonb) AS r) AS c \
                   ON c.id = k.api_key_id ORDER BY k.api_key_id FOR UPDATE OF k) AS u \
             WHERE api_keys.api_key_id = u.id"
        }
    }
}

/// The rows as one JSON array, in primary-key order (two nodes upserting the same rows
/// then lock them in the same order).
fn token_rows_json(rows: &[UsageDelta]) -> String {
    let mut sorted: Vec<&UsageDelta> = rows.iter().collect();
    sorted.sort_by(|left, right| (left.key_id, &left.model, left.minute_start).cmp(&(right.key_id, &right.model, right.minute_start)));
    let array: Vec<serde_json::Value> = sorted
        .iter()
        .map(|row| {
            let tokens = &row.totals.tokens;
            json!([
                row.key_id,
                row.model,
                row.minute_start,
                row.account_id,
                row.workspace_id,
                row.totals.requests,
                tokens.input,
                tokens.output,
                tokens.cached,
                tokens.reasoning
            ])
        })
        .collect();
    serde_json::Value::Array(array).to_string()
}

fn key_calls_json(keys: &[KeyCalls]) -> String {
    let mut sorted = keys.to_vec();
    sorted.sort_by_key(|calls| calls.key_id);
    serde_json::Value::Array(sorted.iter().map(|calls| json!([calls.key_id, calls.calls, calls.last_used_at])).collect()).to_string()
}

fn totals_of(row: &crate::database::Row) -> Result<UsageTotals, StoreError> {
    Ok(UsageTotals {
        requests: row.i64("requests")?,
        tokens: TokenUsage {
            input: row.i64("input_tokens")?,
            output: row.i64("output_tokens")?,
            cached: row.i64("cached_tokens")?,
            reasoning: row.i64("reasoning_tokens")?,
        },
    })
}

/// Whether a stored row may hold `value`: text with a NUL character is never stored (and
/// PostgreSQL refuses to compare text with one, where SQLite would just find nothing).
fn may_be_stored(value: &SqlValue) -> bool {
    !matches!(value, SqlValue::Text(text) if text.contains('\0'))
}

/// Adds `clause` for one selection of `column`, its values bound from `values`. A value
/// no row may hold is left out: it matches nothing.
fn select_clause<T: Clone>(column: &str, selection: &Selection<T>, clauses: &mut Vec<String>, values: &mut Vec<SqlValue>)
where
    SqlValue: From<T>,
{
    let storable = |list: &[T]| list.iter().map(|value| SqlValue::from(value.clone())).filter(may_be_stored).collect::<Vec<_>>();
    let placeholders = |list: Vec<SqlValue>, values: &mut Vec<SqlValue>| {
        list.into_iter()
            .map(|value| {
                values.push(value);
                format!("${}", values.len())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(include) = &selection.include {
        let include = storable(include);
        if include.is_empty() {
            clauses.push("1 = 0".into());
        } else {
            let list = placeholders(include, values);
            clauses.push(format!("{column} IN ({list})"));
        }
    }
    let exclude = storable(&selection.exclude);
    if !exclude.is_empty() {
        let list = placeholders(exclude, values);
        clauses.push(format!("{column} NOT IN ({list})"));
    }
}

impl Store {
    /// How many SQL statements this store has run since it was opened.
    pub fn statements_run(&self) -> u64 {
        self.database.statements_run()
    }

    /// Adds one flush's deltas: the calls of each key and the token rows, in one transaction
    /// of at most two statements, whatever their number.
    pub async fn flush_usage(&self, keys: &[KeyCalls], rows: &[UsageDelta]) -> Result<(), StoreError> {
        if keys.is_empty() && rows.is_empty() {
            return Ok(());
        }
        let mut transaction = self.database.begin_write().await?;
        let dialect = transaction.dialect();
        if !keys.is_empty() {
            transaction.execute(key_calls_update(dialect), &params![key_calls_json(keys)]).await?;
        }
        if !rows.is_empty() {
            transaction.execute(token_usage_upsert(dialect), &params![token_rows_json(rows)]).await?;
        }
        transaction.commit().await
    }

    /// Adds token rows in one statement.
    pub async fn add_token_usage(&self, rows: &[UsageDelta]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.database.execute(token_usage_upsert(self.database.dialect()), &params![token_rows_json(rows)]).await.map(|_| ())
    }

    /// Sums usage as `query` asks.
    pub async fn query_usage(&self, query: &UsageQuery) -> Result<UsageReport, StoreError> {
        let mut values: Vec<SqlValue> = vec![SqlValue::Integer(query.from), SqlValue::Integer(query.until)];
        let mut clauses = vec!["period_start >= $1".to_string(), "period_start < $2".to_string()];
        if let Some(account_id) = query.account_id {
            values.push(SqlValue::Integer(account_id));
            clauses.push(format!("account_id = ${}", values.len()));
        }
        select_clause("key_id", &query.keys, &mut clauses, &mut values);
        select_clause("model", &query.models, &mut clauses, &mut values);
        select_clause("workspace_id", &query.workspaces, &mut clauses, &mut values);
        let mut columns: Vec<&str> = Vec::new();
        for dimension in &query.group_by {
            let column = match dimension {
                UsageDimension::Key => "key_id",
                UsageDimension::Model => "model",
                UsageDimension::Workspace => "workspace_id",
            };
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
        // Months differ in length: they are summed here from days.
        let bucket_seconds = query.period.map(|period| match period {
            UsagePeriod::Minute => MINUTE,
            UsagePeriod::Hour => HOUR,
            UsagePeriod::Day | UsagePeriod::Month => DAY,
        });
        let mut select: Vec<String> = columns.iter().map(|column| column.to_string()).collect();
        let mut group: Vec<String> = columns.iter().map(|column| column.to_string()).collect();
        if let Some(seconds) = bucket_seconds {
            select.push(format!("(period_start / {seconds}) * {seconds} AS bucket"));
            group.push("bucket".into());
        }
        let sums = ["requests", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"]
            .iter()
            .map(|column| format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT) AS {column}"))
            .collect::<Vec<_>>()
            .join(", ");
        select.push(sums);
        let mut sql = format!("SELECT {} FROM token_usage WHERE {}", select.join(", "), clauses.join(" AND "));
        if !group.is_empty() {
            // Text in byte order on both stores, as SQLite sorts it: PostgreSQL would
            // otherwise sort by the database's collation (`en_US`: `demo_a` before
            // `demo-echo`, `Demo-b` between them).
            let order: Vec<String> = group
                .iter()
                .map(|column| match (self.database.dialect(), column.as_str()) {
                    (Dialect::Postgres, "model" | "workspace_id") => format!("{column} COLLATE \"C\""),
                    _ => column.clone(),
                })
                .collect();
            sql.push_str(&format!(" GROUP BY {} ORDER BY {}", group.join(", "), order.join(", ")));
        }
        let rows = self.database.fetch_all(&sql, &values).await?;
        let mut report = UsageReport::default();
        for row in rows {
            let totals = totals_of(&row)?;
            if group.is_empty() {
                report.totals = totals;
                return Ok(report);
            }
            let mut period_start = match bucket_seconds {
                Some(_) => Some(row.i64("bucket")?),
                None => None,
            };
            if query.period == Some(UsagePeriod::Month) {
                period_start = period_start.map(keygate_core::civil_time::month_start);
            }
            let group = UsageGroup {
                key_id: if columns.contains(&"key_id") { Some(row.i64("key_id")?) } else { None },
                model: if columns.contains(&"model") { Some(row.string("model")?) } else { None },
                workspace_id: if columns.contains(&"workspace_id") { Some(row.string("workspace_id")?) } else { None },
                period_start,
                totals,
            };
            report.totals.add(&group.totals);
            // Days of one month arrive in order: fold each into its month's group.
            if let Some(existing) = report.groups.iter_mut().find(|existing| {
                existing.period_start == group.period_start
                    && existing.key_id == group.key_id
                    && existing.model == group.model
                    && existing.workspace_id == group.workspace_id
            }) {
                existing.totals.add(&group.totals);
            } else {
                report.groups.push(group);
            }
        }
        if query.period == Some(UsagePeriod::Month) {
            report.groups.sort_by(|left, right| {
                (left.period_start, left.key_id, &left.model, &left.workspace_id).cmp(&(
                    right.period_start,
                    right.key_id,
                    &right.model,
                    &right.workspace_id,
                ))
            });
        }
        Ok(report)
    }

    /// Rolls minute rows older than `hourly_after_seconds` into hour rows and hour rows
    /// older than `daily_after_seconds` into day rows (sums unchanged), then deletes rows
    /// older than `keep_seconds`, as of `now_seconds`. One transaction; on PostgreSQL
    /// nodes take turns (an advisory lock), so that no two nodes roll the same rows.
    pub async fn roll_up_usage(&self, now_seconds: i64, retention: &UsageRetention) -> Result<RollupReport, StoreError> {
        let mut transaction = self.database.begin_write().await?;
        if transaction.dialect() == Dialect::Postgres {
            transaction.execute("SELECT pg_advisory_xact_lock($1)", &params![ROLLUP_LOCK]).await?;
        }
        let mut report = RollupReport::default();
        for (from, to, age) in [(MINUTE, HOUR, retention.hourly_after_seconds), (HOUR, DAY, retention.daily_after_seconds)] {
            // Whole target periods only: a partial hour is never split between rows.
            let cutoff = (now_seconds - age).div_euclid(to) * to;
            let roll = format!(
                "INSERT INTO token_usage (key_id, model, period_seconds, period_start, account_id, workspace_id, requests, input_tokens, output_tokens, cached_tokens, reasoning_tokens) \
                 SELECT key_id, model, {to}, bucket, MIN(account_id), MIN(workspace_id), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens) \
                 FROM (SELECT *, (period_start / {to}) * {to} AS bucket FROM token_usage WHERE period_seconds = {from} AND period_start < $1) AS aged \
                 WHERE true GROUP BY key_id, model, bucket \
                 ON CONFLICT (key_id, model, period_seconds, period_start) DO UPDATE SET \
                 requests = token_usage.requests + excluded.requests, input_tokens = token_usage.input_tokens + excluded.input_tokens, \
                 output_tokens = token_usage.output_tokens + excluded.output_tokens, cached_tokens = token_usage.cached_tokens + excluded.cached_tokens, \
                 reasoning_tokens = token_usage.reasoning_tokens + excluded.reasoning_tokens"
            );
            transaction.execute(&roll, &params![cutoff]).await?;
            let rolled = transaction
                .execute(&format!("DELETE FROM token_usage WHERE period_seconds = {from} AND period_start < $1"), &params![cutoff])
                .await?;
            if from == MINUTE {
                report.minute_rows_rolled = rolled;
            } else {
                report.hour_rows_rolled = rolled;
            }
        }
        report.rows_pruned =
            transaction.execute("DELETE FROM token_usage WHERE period_start < $1", &params![now_seconds - retention.keep_seconds]).await?;
        transaction.commit().await?;
        Ok(report)
    }
}
