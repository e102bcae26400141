//! Conversions between domain values and their column forms (JSON arrays for lists).

use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::key_limits::{Budget, BudgetPeriod, KeyLimits};
use keygate_core::permissions::{AppScope, CustomPermissions, KeyAuth, ModelScope};

use crate::database::{Columns, SqlValue};
use crate::StoreError;

pub(crate) fn list_to_json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

pub(crate) fn json_to_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("list column: {error}")))
}

/// The auth columns of an `api_keys` row, in bind order.
pub(crate) struct AuthColumns {
    pub auth_type: &'static str,
    pub access_ips: String,
    pub allow_all_models: bool,
    pub accessible_models: String,
    pub allow_all_apps: bool,
    pub accessible_apps: String,
}

pub(crate) fn auth_columns(auth: &KeyAuth) -> AuthColumns {
    match auth {
        KeyAuth::All => AuthColumns {
            auth_type: "All",
            access_ips: "[]".into(),
            allow_all_models: true,
            accessible_models: "[]".into(),
            allow_all_apps: true,
            accessible_apps: "[]".into(),
        },
        KeyAuth::Custom(custom) => AuthColumns {
            auth_type: "Custom",
            access_ips: list_to_json(&custom.access_ips.canonical_entries()),
            allow_all_models: custom.model_scope.allow_all_models,
            accessible_models: list_to_json(&custom.model_scope.accessible_models),
            allow_all_apps: custom.app_scope.allow_all_apps,
            accessible_apps: list_to_json(&custom.app_scope.accessible_apps),
        },
    }
}

pub(crate) fn auth_from_row(row: &impl Columns) -> Result<KeyAuth, StoreError> {
    if row.text("auth_type")? == "All" {
        return Ok(KeyAuth::All);
    }
    let ips = json_to_list(row.text("access_ips")?)?;
    let access_ips = IpAllowlist::parse(&ips).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    Ok(KeyAuth::Custom(Box::new(CustomPermissions {
        access_ips,
        model_scope: ModelScope {
            allow_all_models: row.boolean("allow_all_models")?,
            accessible_models: json_to_list(row.text("accessible_models")?)?,
        },
        app_scope: AppScope {
            allow_all_apps: row.boolean("allow_all_apps")?,
            accessible_apps: json_to_list(row.text("accessible_apps")?)?,
        },
    })))
}

/// The limit columns of an `api_keys` row (docs/CONTRACT.md#per-key-limits), in the order
/// of [`LIMIT_COLUMNS`]; all NULL for a key without limits.
pub(crate) const LIMIT_COLUMNS: [&str; 6] =
    ["limit_requests_per_minute", "limit_tokens_per_minute", "limit_max_in_flight", "budget_period", "budget_tokens", "budget_cost_micros"];

pub(crate) fn limit_columns(limits: Option<&KeyLimits>) -> [SqlValue; 6] {
    let limits = limits.copied().unwrap_or_default();
    let count = |value: Option<u64>| SqlValue::from(value.map(|value| i64::try_from(value).unwrap_or(i64::MAX)));
    let budget = limits.budget;
    [
        count(limits.requests_per_minute),
        count(limits.tokens_per_minute),
        count(limits.max_in_flight),
        SqlValue::from(budget.map(|budget| budget.period.as_str())),
        count(budget.and_then(|budget| budget.tokens)),
        SqlValue::from(budget.and_then(|budget| budget.cost_micros)),
    ]
}

/// A key's limits from its row: `None` when it has none.
pub(crate) fn limits_from_row(row: &impl Columns) -> Result<Option<KeyLimits>, StoreError> {
    let count = |column: &str| -> Result<Option<u64>, StoreError> {
        row.opt_i64(column)?.map(|value| u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} {value}")))).transpose()
    };
    let budget = match row.opt_text("budget_period")? {
        None => None,
        Some(period) => Some(Budget {
            period: BudgetPeriod::parse(period).ok_or_else(|| StoreError::Corrupt(format!("budget_period {period}")))?,
            tokens: count("budget_tokens")?,
            cost_micros: row.opt_i64("budget_cost_micros")?,
        }),
    };
    let limits = KeyLimits {
        requests_per_minute: count("limit_requests_per_minute")?,
        tokens_per_minute: count("limit_tokens_per_minute")?,
        max_in_flight: count("limit_max_in_flight")?,
        budget,
    };
    Ok((!limits.is_empty()).then_some(limits))
}

/// Limits in an audit row's detail: ` limits=none`, or each set part
/// (` limits=rpm:60,tpm:1000,in_flight:2,budget:day/tokens:500/cost_micros:2000000`).
pub(crate) fn limits_detail(limits: Option<&KeyLimits>) -> String {
    let Some(limits) = limits else { return " limits=none".to_string() };
    let mut parts = Vec::new();
    for (name, value) in [("rpm", limits.requests_per_minute), ("tpm", limits.tokens_per_minute), ("in_flight", limits.max_in_flight)] {
        if let Some(value) = value {
            parts.push(format!("{name}:{value}"));
        }
    }
    if let Some(budget) = limits.budget {
        let mut text = format!("budget:{}", budget.period.as_str());
        if let Some(tokens) = budget.tokens {
            text.push_str(&format!("/tokens:{tokens}"));
        }
        if let Some(cost) = budget.cost_micros {
            text.push_str(&format!("/cost_micros:{cost}"));
        }
        parts.push(text);
    }
    format!(" limits={}", parts.join(","))
}
