//! The model catalog with its prices (ListModels) and what usage cost (GetBillingOverview,
//! GetBillingTrend; docs/CONTRACT.md#billing). Costs are the stored token usage
//! (`keygate_store::usage`) at the `[[prices]]` of each model (`keygate_core::usage`), summed
//! per group of one dimension, in millionths of the currency. A caller sees the usage of
//! the keys it may see: the account all of its usage, a RAM user only its own keys'.

use std::collections::BTreeMap;

use keygate_core::catalog::CatalogModel;
use keygate_core::civil_time::{format_utc_timestamp, month_start, parse_utc_date};
use keygate_core::usage::{cost_micros, top_groups, ModelPrice, UsageTotals};
use keygate_store::usage::{Selection, UsageDimension, UsagePeriod, UsageQuery, DAY};

use super::usage::{fallback_currency, price_table, visible_keys};
use super::{shown, Actor, OperationError, Operations, Result};

/// The key of a group whose value is missing.
pub const NULL_VALUE: &str = "DIMENSION_FILTER_NULL_VALUE";
/// The key of the trend's group of everything beyond the top N.
pub const OTHERS_VALUE: &str = "DIMENSION_GROUP_OTHERS_VALUE";
/// The largest and default top N.
pub const MAX_TOP: u32 = 20;
/// The longest time period of a trend, in days.
pub const MAX_TREND_DAYS: i64 = 366;

// ---- ListModels -----------------------------------------------------------------------------

/// One model of the catalog as ListModels shows it.
#[derive(Debug, Clone)]
pub struct ListedModel {
    pub model: CatalogModel,
    pub provider: &'static str,
    pub capabilities: Vec<&'static str>,
    pub request_modality: Vec<&'static str>,
    pub price: Option<ModelPrice>,
}

/// ListModels' filters: `model` exactly, `name` in any case, and any of the providers,
/// capabilities and features when given.
#[derive(Debug, Clone, Default)]
pub struct ModelListing {
    pub model: Option<String>,
    pub name: Option<String>,
    pub providers: Vec<String>,
    pub capabilities: Vec<String>,
    pub features: Vec<String>,
}

/// Who provides a model, from its name (`keygate` for the demo models).
fn provider_of(model: &CatalogModel) -> &'static str {
    if model.demo {
        "keygate"
    } else if model.name.starts_with("qwen") || model.name.starts_with("text-embedding") {
        "qwen"
    } else if model.name.starts_with("deepseek") {
        "deepseek"
    } else {
        "custom"
    }
}

/// What a model does, from its name: text embedding (`ME`), visual understanding (`VU`) or
/// text generation (`TG`).
fn capabilities_of(model: &CatalogModel) -> Vec<&'static str> {
    if model.name.contains("embed") {
        vec!["ME"]
    } else if model.name.contains("-vl") {
        vec!["VU"]
    } else {
        vec!["TG"]
    }
}

/// The models of the catalog that match `listing`, in catalog order, with their prices.
pub fn list_models(operations: Operations<'_>, listing: &ModelListing) -> Result<Vec<ListedModel>> {
    let prices = price_table(operations)?;
    let name = listing.name.as_deref().map(str::to_lowercase);
    let any_of = |wanted: &[String], have: &[&str]| wanted.is_empty() || wanted.iter().any(|value| have.contains(&value.as_str()));
    let mut models = Vec::new();
    for model in operations.catalog().iter() {
        let provider = provider_of(model);
        let capabilities = capabilities_of(model);
        let matches = listing.model.as_deref().is_none_or(|wanted| wanted == model.name)
            && name.as_deref().is_none_or(|wanted| model.display_name.to_lowercase().contains(wanted))
            && any_of(&listing.providers, &[provider])
            && any_of(&listing.capabilities, &capabilities)
            // keygate lists no features: a filter on features keeps nothing.
            && listing.features.is_empty();
        if matches {
            let request_modality = if capabilities.contains(&"VU") { vec!["Text", "Image"] } else { vec!["Text"] };
            models.push(ListedModel {
                model: model.clone(),
                provider,
                capabilities,
                request_modality,
                price: prices.get(&model.name).cloned(),
            });
        }
    }
    Ok(models)
}

// ---- billing ---------------------------------------------------------------------------------

/// A dimension usage is grouped and filtered by. keygate has only inference on pay-as-you-go
/// terms: `MAAS_TYPE`, `FEE_TYPE` and `CHARGE_TYPE` have one value each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingDimension {
    ApiKey,
    Model,
    Workspace,
    MaasType,
    FeeType,
    ChargeType,
}

impl BillingDimension {
    /// A code of the wire, in any case.
    pub fn parse(code: &str) -> Result<BillingDimension> {
        match code.to_ascii_uppercase().as_str() {
            "API_KEY_ID" => Ok(BillingDimension::ApiKey),
            "BASE_MODEL" => Ok(BillingDimension::Model),
            "WORKSPACE_ID" => Ok(BillingDimension::Workspace),
            "MAAS_TYPE" => Ok(BillingDimension::MaasType),
            "FEE_TYPE" => Ok(BillingDimension::FeeType),
            "CHARGE_TYPE" => Ok(BillingDimension::ChargeType),
            "BUSINESS_REGION" | "SERVICE_SITE" | "ARTICLE_CODE" => {
                Err(OperationError::invalid_parameter(format!("keygate does not record {} for usage.", code.to_ascii_uppercase())))
            }
            _ => Err(OperationError::invalid_parameter(format!(
                "Unknown dimension code '{}': use API_KEY_ID, BASE_MODEL, WORKSPACE_ID, MAAS_TYPE, FEE_TYPE or CHARGE_TYPE.",
                shown(code)
            ))),
        }
    }

    /// The one value of a dimension keygate does not vary.
    fn constant(self) -> Option<&'static str> {
        match self {
            BillingDimension::MaasType => Some("inference"),
            BillingDimension::FeeType => Some("billing"),
            BillingDimension::ChargeType => Some("postpaid"),
            BillingDimension::ApiKey | BillingDimension::Model | BillingDimension::Workspace => None,
        }
    }
}

/// One dimension of a filter: only `values` (`IN`), or never them (`NOT`).
#[derive(Debug, Clone)]
pub struct DimensionFilter {
    pub dimension: BillingDimension,
    pub exclude: bool,
    pub values: Vec<String>,
}

/// What a billing view sums: usage in `period` (Unix seconds) that passes every
/// filter, grouped by one dimension; the `top` largest groups, zero groups dropped when
/// `drop_zero`.
#[derive(Debug)]
pub struct BillingQuery {
    pub filters: Vec<DimensionFilter>,
    pub group_by: BillingDimension,
    pub top: usize,
    pub drop_zero: bool,
    pub period: std::ops::Range<i64>,
}

/// One group and what it cost, in millionths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAmount {
    pub key: String,
    pub name: String,
    pub amount_micros: i64,
}

/// GetBillingOverview's result: the total of every filtered group and the top groups.
#[derive(Debug, Clone)]
pub struct Overview {
    pub currency: String,
    pub total_micros: i64,
    pub groups: Vec<GroupAmount>,
}

/// The periods of a trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Month,
}

/// One period of a trend: its start (Unix seconds), its total and its groups (the top N,
/// the rest as [`OTHERS_VALUE`]), largest first.
#[derive(Debug, Clone)]
pub struct TrendPeriod {
    pub start: i64,
    pub total_micros: i64,
    pub details: Vec<GroupAmount>,
}

/// GetBillingTrend's result.
#[derive(Debug, Clone)]
pub struct Trend {
    pub currency: String,
    pub total_micros: i64,
    /// The top N over the whole time period, then the others when there are any.
    pub group_totals: Vec<GroupAmount>,
    pub periods: Vec<TrendPeriod>,
}

/// A month `YYYY-MM` (UTC) as the Unix seconds of its start and of the next month's.
pub fn parse_month(text: &str) -> Option<(i64, i64)> {
    if text.len() != 7 {
        return None;
    }
    let start = parse_utc_date(&format!("{text}-01"))?;
    Some((start, month_start(start + 31 * DAY)))
}

/// A period's name: `yyyyMMdd` for a day, `yyyyMM` for a month.
pub fn period_name(start: i64, granularity: Granularity) -> String {
    let date: String = format_utc_timestamp(start).chars().take(10).filter(|character| *character != '-').collect();
    match granularity {
        Granularity::Day => date,
        Granularity::Month => date[..6].to_string(),
    }
}

/// Adds a filter's values to the selection of one dimension (an `IN` narrows what an
/// earlier `IN` kept).
fn narrow<T: PartialEq + Clone>(selection: &mut Selection<T>, exclude: bool, values: Vec<T>) {
    if exclude {
        selection.exclude.extend(values);
    } else {
        selection.include = Some(match selection.include.take() {
            None => values,
            Some(kept) => kept.into_iter().filter(|value| values.contains(value)).collect(),
        });
    }
}

/// The cost of the filtered usage per (period, group key), and its currency.
async fn priced_groups(
    operations: Operations<'_>,
    actor: &Actor,
    query: &BillingQuery,
    period: Option<UsagePeriod>,
) -> Result<(BTreeMap<(i64, String), i64>, String)> {
    let prices = price_table(operations)?;
    let mut usage = UsageQuery {
        account_id: Some(actor.caller.account_id),
        from: query.period.start,
        until: query.period.end,
        group_by: vec![UsageDimension::Model],
        period,
        ..UsageQuery::default()
    };
    if let Some(keys) = visible_keys(operations, actor).await? {
        usage.keys = Selection::only(keys);
    }
    let mut nothing = false;
    for filter in &query.filters {
        // keygate records every value: the null value matches nothing.
        let values: Vec<&String> = filter.values.iter().filter(|value| !value.eq_ignore_ascii_case(NULL_VALUE)).collect();
        match filter.dimension {
            BillingDimension::ApiKey => {
                let ids = values.iter().filter_map(|value| value.parse::<i64>().ok()).collect();
                narrow(&mut usage.keys, filter.exclude, ids);
            }
            BillingDimension::Model => narrow(&mut usage.models, filter.exclude, values.into_iter().cloned().collect()),
            BillingDimension::Workspace => narrow(&mut usage.workspaces, filter.exclude, values.into_iter().cloned().collect()),
            constant => {
                let value = constant.constant().unwrap_or_default();
                let named = values.iter().any(|wanted| wanted.eq_ignore_ascii_case(value));
                nothing |= named == filter.exclude;
            }
        }
    }
    match query.group_by {
        BillingDimension::ApiKey => usage.group_by.push(UsageDimension::Key),
        BillingDimension::Workspace => usage.group_by.push(UsageDimension::Workspace),
        _ => {}
    }
    let mut amounts: BTreeMap<(i64, String), i64> = BTreeMap::new();
    let mut currency: Option<String> = None;
    if !nothing {
        let report = usage_report(operations, &usage).await?;
        for group in report {
            let model = group.model.clone().unwrap_or_default();
            let price = prices.get(&model);
            let amount = price.map_or(0, |price| cost_micros(&group.totals.tokens, price));
            if currency.is_none() {
                currency = price.map(|price| price.currency.clone());
            }
            let key = match query.group_by {
                BillingDimension::ApiKey => group.key_id.map(|id| id.to_string()).unwrap_or_else(|| NULL_VALUE.to_string()),
                BillingDimension::Model => model,
                BillingDimension::Workspace => group.workspace_id.clone().unwrap_or_else(|| NULL_VALUE.to_string()),
                constant => constant.constant().unwrap_or_default().to_string(),
            };
            let slot = amounts.entry((group.period_start.unwrap_or(0), key)).or_insert(0);
            *slot = slot.saturating_add(amount);
        }
    }
    let currency = currency.unwrap_or_else(|| fallback_currency(&prices));
    Ok((amounts, currency))
}

async fn usage_report(operations: Operations<'_>, usage: &UsageQuery) -> Result<Vec<keygate_store::usage::UsageGroup>> {
    Ok(operations.store.query_usage(usage).await?.groups)
}

/// A group's name: a model's display name, else its key (`-` for the null value).
fn name_of(operations: Operations<'_>, dimension: BillingDimension, key: &str) -> String {
    if key == NULL_VALUE {
        return "-".to_string();
    }
    match dimension {
        BillingDimension::Model => operations.catalog().get(key).map_or_else(|| key.to_string(), |model| model.display_name.clone()),
        BillingDimension::MaasType => "Model inference".to_string(),
        BillingDimension::FeeType => "Billing".to_string(),
        BillingDimension::ChargeType => "Pay-as-you-go".to_string(),
        BillingDimension::ApiKey | BillingDimension::Workspace => key.to_string(),
    }
}

fn grouped(amounts: impl IntoIterator<Item = (String, i64)>) -> Vec<(String, i64, UsageTotals)> {
    let mut by_key: BTreeMap<String, i64> = BTreeMap::new();
    for (key, amount) in amounts {
        let slot = by_key.entry(key).or_insert(0);
        *slot = slot.saturating_add(amount);
    }
    by_key.into_iter().map(|(key, amount)| (key, amount, UsageTotals::default())).collect()
}

/// GetBillingOverview: the month's cost grouped by one dimension, largest first, the top N.
pub async fn overview(operations: Operations<'_>, actor: &Actor, query: &BillingQuery) -> Result<Overview> {
    let (amounts, currency) = priced_groups(operations, actor, query, None).await?;
    let groups = grouped(amounts.into_iter().map(|((_, key), amount)| (key, amount)));
    let total_micros = groups.iter().fold(0_i64, |sum, group| sum.saturating_add(group.1));
    let (top, _) = top_groups(groups, query.top, query.drop_zero);
    let groups = top
        .into_iter()
        .map(|(key, amount_micros, _)| GroupAmount { name: name_of(operations, query.group_by, &key), key, amount_micros })
        .collect();
    Ok(Overview { currency, total_micros, groups })
}

/// GetBillingTrend: the cost of each day or month grouped by one dimension; groups beyond
/// the top N over the whole time period are merged into [`OTHERS_VALUE`].
pub async fn trend(operations: Operations<'_>, actor: &Actor, query: &BillingQuery, granularity: Granularity) -> Result<Trend> {
    let period = match granularity {
        Granularity::Day => UsagePeriod::Day,
        Granularity::Month => UsagePeriod::Month,
    };
    let (amounts, currency) = priced_groups(operations, actor, query, Some(period)).await?;
    let groups = grouped(amounts.iter().map(|((_, key), amount)| (key.clone(), *amount)));
    let total_micros = groups.iter().fold(0_i64, |sum, group| sum.saturating_add(group.1));
    let (top, others) = top_groups(groups, query.top, query.drop_zero);
    let amount = |key: &str, amount_micros: i64| GroupAmount {
        key: key.to_string(),
        name: if key == OTHERS_VALUE { "Others".to_string() } else { name_of(operations, query.group_by, key) },
        amount_micros,
    };
    let mut group_totals: Vec<GroupAmount> = top.iter().map(|(key, micros, _)| amount(key, *micros)).collect();
    if let Some((micros, _)) = others {
        if !(query.drop_zero && micros == 0) {
            group_totals.push(amount(OTHERS_VALUE, micros));
        }
    }
    let mut by_period: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    for ((start, key), micros) in amounts {
        let key = if top.iter().any(|(top_key, _, _)| *top_key == key) { key } else { OTHERS_VALUE.to_string() };
        let slot = by_period.entry(start).or_default().entry(key).or_insert(0);
        *slot = slot.saturating_add(micros);
    }
    let periods = by_period
        .into_iter()
        .map(|(start, groups)| {
            let total_micros = groups.values().fold(0_i64, |sum, micros| sum.saturating_add(*micros));
            let mut details: Vec<GroupAmount> = groups
                .into_iter()
                .filter(|(_, micros)| !(query.drop_zero && *micros == 0))
                .map(|(key, micros)| amount(&key, micros))
                .collect();
            details.sort_by(|left, right| right.amount_micros.cmp(&left.amount_micros).then_with(|| left.key.cmp(&right.key)));
            TrendPeriod { start, total_micros, details }
        })
        .collect();
    Ok(Trend { currency, total_micros, group_totals, periods })
}

/// `part` as a ratio of `whole`, with four decimals (`"0.6667"`), rounded half up once;
/// `"0.0000"` of nothing.
pub fn ratio(part: i64, whole: i64) -> String {
    if whole == 0 {
        return keygate_core::usage::format_amount(0, 4);
    }
    // In ten-thousandths, then as millionths (exact): rounding to millionths first and to
    // four decimals after would round twice (0.00004996 would become 0.0001).
    let ten_thousandths = (i128::from(part) * 20_000 + i128::from(whole)) / (2 * i128::from(whole));
    let micros = i64::try_from(ten_thousandths * 100).unwrap_or(i64::MAX);
    keygate_core::usage::format_amount(micros, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_are_checked_and_named() {
        let day = parse_utc_date("2026-08-01").unwrap();
        assert_eq!(period_name(day, Granularity::Day), "20260801");
        assert_eq!(period_name(day, Granularity::Month), "202608");
        let (start, end) = parse_month("2026-12").unwrap();
        assert_eq!(format_utc_timestamp(start), "2026-12-01T00:00:00Z");
        assert_eq!(format_utc_timestamp(end), "2027-01-01T00:00:00Z");
        assert_eq!(parse_month("2026-13"), None);
    }

    #[test]
    fn ratios_have_four_decimals() {
        assert_eq!(ratio(2, 3), "0.6667");
        assert_eq!(ratio(1, 1), "1.0000");
        assert_eq!(ratio(5, 0), "0.0000");
        // Rounded once: 0.00004996 is 0.0000, 0.00005 is 0.0001.
        assert_eq!(ratio(4_996, 100_000_000), "0.0000");
        assert_eq!(ratio(5_000, 100_000_000), "0.0001");
        assert_eq!(ratio(1, 8), "0.1250");
    }
}
