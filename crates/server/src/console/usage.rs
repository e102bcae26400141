//! The Usage page (`/console/usage`): what the caller's API keys used in the last 24 hours,
//! 7 days or 30 days: the totals and their cost, tokens and requests over time, and the top
//! keys and models, drawn by [`super::charts`]. The account sees the usage of every key of
//! the account, a RAM user only that of the keys it created, in every region:
//! [`crate::operations::usage`] decides, as it does for the API.
//!
//! Also what each key's page ([`super::key_page`]) shows of the same: the time ranges, the
//! usage over time of a selection of keys, its figures and its charts.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::usage::{format_amount, top_groups, UsageTotals};
use maud::{html, Markup};

use super::charts::{bar_chart, column_chart, grouped, Bar, ChartText, Column, Series};
use super::i18n::Language;
use super::layout::{error_page, page, with_region, Section};
use super::page_actions::query_fields;
use super::session::Console;
use crate::management::errors::ManagementError;
use crate::operations::keys::find_keys_in_served_regions;
use crate::operations::usage::{usage, CostedTotals, Selection, UsageDimension, UsagePeriod, UsageRequest, UsageView, DAY, HOUR};
use crate::state::AppState;

/// Keys and models the top charts show by name; the rest are summed into one bar.
const TOP: usize = 5;

/// The time ranges the usage pages offer, as `?range=` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Range {
    Day,
    Week,
    Month,
}

impl Range {
    const ALL: [Range; 3] = [Range::Day, Range::Week, Range::Month];

    fn name(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    pub(super) fn label(self, language: Language) -> &'static str {
        language.text(match self {
            Range::Day => "usage.range_day",
            Range::Week => "usage.range_week",
            Range::Month => "usage.range_month",
        })
    }

    /// The range `?range=` names in `query`; `default` when it names none.
    pub(super) fn from_query(query: Option<&str>, default: Range) -> Range {
        let fields = query_fields(query);
        let named = fields.get_non_empty("range");
        Range::ALL.into_iter().find(|range| Some(range.name()) == named).unwrap_or(default)
    }

    /// The range cut into periods ending with the current one (UTC): 24 hours, or 7 or 30
    /// days, so that what was used a moment ago is in the last column.
    pub(super) fn window(self, now: i64) -> Window {
        let (period, step, count) = match self {
            Range::Day => (UsagePeriod::Hour, HOUR, 24),
            Range::Week => (UsagePeriod::Day, DAY, 7),
            Range::Month => (UsagePeriod::Day, DAY, 30),
        };
        let current = now - now.rem_euclid(step);
        Window { from: current - (count - 1) * step, period, step, count }
    }
}

/// A stretch of time cut into `count` periods of `step` seconds from `from` (Unix seconds).
pub(super) struct Window {
    from: i64,
    period: UsagePeriod,
    step: i64,
    count: i64,
}

impl Window {
    fn until(&self) -> i64 {
        self.from + self.step * self.count
    }

    /// What the charts call a period.
    fn column_header(&self, language: Language) -> &'static str {
        language.text(if self.step == HOUR { "usage.hour_utc" } else { "usage.day_utc" })
    }

    /// Each period as a chart column: `14:00` or `08-01` under the axis, whole in the table.
    fn columns(&self) -> Vec<Column> {
        (0..self.count)
            .map(|index| {
                let timestamp = format_utc_timestamp(self.from + index * self.step);
                let (date, time) = (&timestamp[..10], &timestamp[11..16]);
                if self.step == HOUR {
                    Column { label: time.to_string(), full_label: format!("{date} {time}") }
                } else {
                    Column { label: timestamp[5..10].to_string(), full_label: date.to_string() }
                }
            })
            .collect()
    }
}

/// The caller's usage as `request` asks (the operation narrows it to the caller's keys).
async fn caller_usage(state: &AppState, console: &Console, request: &UsageRequest) -> Result<UsageView, ManagementError> {
    let operations = state.operations();
    Ok(usage(operations, &console.auth.actor(&operations), request).await?)
}

/// The caller's usage of `keys` in `window`: its total, and the totals of every period
/// (zero where nothing was used), in order.
pub(super) async fn usage_over_time(
    state: &AppState,
    console: &Console,
    window: &Window,
    keys: Selection<i64>,
) -> Result<(CostedTotals, Vec<UsageTotals>), ManagementError> {
    let request = UsageRequest { keys, from: window.from, until: window.until(), period: Some(window.period), ..UsageRequest::default() };
    let view = caller_usage(state, console, &request).await?;
    let mut per_period = vec![UsageTotals::default(); window.count as usize];
    for row in &view.rows {
        let index = row.period_start.and_then(|start| usize::try_from((start - window.from).div_euclid(window.step)).ok());
        if let Some(period) = index.and_then(|index| per_period.get_mut(index)) {
            period.add(&row.usage.totals);
        }
    }
    Ok((view.total, per_period))
}

/// Tokens (input and output stacked) and requests in each period of `window`; `id` starts
/// the ids of both charts.
pub(super) fn over_time_charts(language: Language, id: &str, window: &Window, per_period: &[UsageTotals]) -> Markup {
    let columns = window.columns();
    let values = |pick: fn(&UsageTotals) -> i64| per_period.iter().map(pick).collect::<Vec<_>>();
    let tokens = [
        Series { name: language.text("usage.input"), class: "series-input", values: values(|totals| totals.tokens.input) },
        Series { name: language.text("usage.output"), class: "series-output", values: values(|totals| totals.tokens.output) },
    ];
    let requests = [Series { name: language.text("usage.requests"), class: "series-requests", values: values(|totals| totals.requests) }];
    let (tokens_id, requests_id) = (format!("{id}-tokens"), format!("{id}-requests"));
    let chart_text = |id, title, unit| ChartText { id, title: language.text(title), unit: language.text(unit), language };
    let column_header = window.column_header(language);
    html! {
        (column_chart(&chart_text(&tokens_id, "usage.tokens_over_time", "usage.unit_tokens"), column_header, &columns, &tokens))
        (column_chart(&chart_text(&requests_id, "usage.requests_over_time", "usage.unit_requests"), column_header, &columns, &requests))
    }
}

/// A cost in its currency, to the millionth; a dash when nothing was priced.
fn cost_text(total: &CostedTotals) -> String {
    match &total.currency {
        Some(currency) => format!("{} {currency}", format_amount(total.cost_micros, 6)),
        None => "—".to_string(),
    }
}

/// Requests, input and output tokens and the cost, as figures; `id` names the list. When
/// some usage has no price the cost leaves it out, and a line says so (naming the
/// `unpriced_models` when they are known).
pub(super) fn totals_figures(language: Language, id: &str, total: &CostedTotals, unpriced_models: &[String]) -> Markup {
    let figures = [
        ("usage.requests", grouped(total.totals.requests)),
        ("usage.input_tokens", grouped(total.totals.tokens.input)),
        ("usage.output_tokens", grouped(total.totals.tokens.output)),
        ("usage.cost", cost_text(total)),
    ];
    html! {
        dl.figures id=(id) {
            @for (name, value) in figures {
                div { dt { (language.text(name)) } dd { (value) } }
            }
        }
        @if total.unpriced {
            p.hint.unpriced {
                @if unpriced_models.is_empty() {
                    (language.text("usage.unpriced_models"))
                } @else {
                    (language.fill("usage.unpriced_named", &[&unpriced_models.join(language.text("chart.separator"))]))
                }
                (language.text("usage.prices_before")) code { "[[prices]]" } (language.text("usage.prices_after"))
            }
        }
    }
}

/// Links to the page at `path` over each range, the one shown marked as current.
pub(super) fn range_choice(language: Language, path: &str, region: &str, shown: Range) -> Markup {
    html! {
        nav.range-choice aria-label=(language.text("usage.time_range")) {
            ul {
                @for range in Range::ALL {
                    li { a href={ (with_region(path, region)) "&range=" (range.name()) } aria-current=[(range == shown).then_some("page")] { (range.label(language)) } }
                }
            }
        }
    }
}

/// The groups with the most tokens (at most [`TOP`], largest first, ties by key) and the
/// tokens of the others, when there are others.
fn top_by_tokens<K: Ord + Clone>(groups: impl Iterator<Item = (K, UsageTotals)>) -> (Vec<(K, i64)>, Option<i64>) {
    let (top, others) = top_groups(groups.map(|(key, totals)| (key, totals.tokens.total(), totals)).collect(), TOP, false);
    (top.into_iter().map(|(key, tokens, _)| (key, tokens)).collect(), others.map(|(tokens, _)| tokens))
}

/// `top` as bars, `label` naming each (and maybe linking it), then the others as one bar.
fn bars<K>(top: Vec<(K, i64)>, others: Option<i64>, others_label: &str, label: impl Fn(&K) -> (String, Option<String>)) -> Vec<Bar> {
    let mut bars: Vec<Bar> = top
        .iter()
        .map(|(key, tokens)| {
            let (text, link) = label(key);
            Bar { label: text, value: *tokens, link }
        })
        .collect();
    bars.extend(others.map(|tokens| Bar { label: others_label.to_string(), value: tokens, link: None }));
    bars
}

/// What the Usage page shows.
struct UsagePage {
    range: Range,
    window: Window,
    total: CostedTotals,
    per_period: Vec<UsageTotals>,
    top_keys: Vec<Bar>,
    top_models: Vec<Bar>,
    unpriced_models: Vec<String>,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/console/usage", get(usage_page))
}

/// `GET /console/usage?region=...&range=24h|7d|30d`
async fn usage_page(State(state): State<AppState>, console: Console, RawQuery(query): RawQuery) -> Response {
    let range = Range::from_query(query.as_deref(), Range::Week);
    match load(&state, &console, range).await {
        Ok(loaded) => (StatusCode::OK, page(&state, &console, Section::Usage, None, usage_markup(&console, &loaded))).into_response(),
        Err(error) => error_page(&state, &console, Section::Usage, &error),
    }
}

async fn load(state: &AppState, console: &Console, range: Range) -> Result<UsagePage, ManagementError> {
    let window = range.window(state.shared.clock.now_seconds());
    let (total, per_period) = usage_over_time(state, console, &window, Selection::default()).await?;
    let grouped_by =
        |dimension| UsageRequest { from: window.from, until: window.until(), group_by: vec![dimension], ..UsageRequest::default() };
    let by_key = caller_usage(state, console, &grouped_by(UsageDimension::Key)).await?;
    let by_model = caller_usage(state, console, &grouped_by(UsageDimension::Model)).await?;

    let (top_keys, other_keys) = top_by_tokens(by_key.rows.iter().filter_map(|row| Some((row.key_id?, row.usage.totals))));
    let key_ids: Vec<i64> = top_keys.iter().map(|(key_id, _)| *key_id).collect();
    let operations = state.operations();
    let records = find_keys_in_served_regions(operations, &console.auth.actor(&operations), &key_ids).await?;
    let key_label = |key_id: &i64| match records.iter().find(|record| record.api_key_id == *key_id) {
        Some(record) => {
            let label = if record.description.is_empty() {
                record.masked_key.clone()
            } else {
                format!("{} · {}", record.masked_key, record.description)
            };
            (label, Some(with_region(&format!("/console/keys/{key_id}"), &record.region)))
        }
        None => (console.language.fill("usage.deleted_key", &[key_id]), None),
    };
    let (top_models, other_models) = top_by_tokens(by_model.rows.iter().filter_map(|row| Some((row.model.clone()?, row.usage.totals))));
    Ok(UsagePage {
        range,
        window,
        total,
        per_period,
        top_keys: bars(top_keys, other_keys, console.language.text("usage.other_keys"), key_label),
        top_models: bars(top_models, other_models, console.language.text("usage.other_models"), |model| (model.clone(), None)),
        unpriced_models: by_model.rows.iter().filter(|row| row.usage.unpriced).filter_map(|row| row.model.clone()).collect(),
    })
}

fn usage_markup(console: &Console, loaded: &UsagePage) -> Markup {
    let language = console.language;
    let whose = language.text(if console.auth.caller.is_account() { "usage.whose_account" } else { "usage.whose_user" });
    let top = |id, title| ChartText { id, title: language.text(title), unit: language.text("usage.unit_tokens"), language };
    html! {
        div.page-head {
            div {
                h1 { (language.text("section.usage")) }
                p.muted { (whose) (language.text("usage.delay")) }
            }
            (range_choice(language, "/console/usage", console.region(), loaded.range))
        }
        @if loaded.total.totals.is_zero() {
            p.empty { (language.fill("usage.none", &[&loaded.range.label(language).to_lowercase()])) }
        } @else {
            h2.visually-hidden { (language.text("usage.totals")) }
            (totals_figures(language, "usage-totals", &loaded.total, &loaded.unpriced_models))
            div.charts {
                (over_time_charts(language, "usage", &loaded.window, &loaded.per_period))
                (bar_chart(&top("top-keys", "usage.top_keys"), language.text("column.key"), &loaded.top_keys))
                (bar_chart(&top("top-models", "usage.top_models"), language.text("usage.model"), &loaded.top_models))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_end_with_the_current_period() {
        // 2026-08-02T13:45:10Z
        let now = keygate_core::civil_time::parse_utc_timestamp("2026-08-02T13:45:10Z").unwrap();
        let day = Range::Day.window(now);
        assert_eq!((day.count, day.step, day.period), (24, HOUR, UsagePeriod::Hour));
        assert_eq!(format_utc_timestamp(day.from), "2026-08-01T14:00:00Z");
        assert_eq!(format_utc_timestamp(day.until()), "2026-08-02T14:00:00Z");
        let columns = day.columns();
        assert_eq!((columns[0].label.as_str(), columns[23].full_label.as_str()), ("14:00", "2026-08-02 13:00"));
        let month = Range::Month.window(now);
        assert_eq!(format_utc_timestamp(month.from), "2026-07-04T00:00:00Z");
        assert_eq!(format_utc_timestamp(month.until()), "2026-08-03T00:00:00Z");
        assert_eq!((month.columns()[29].label.as_str(), month.columns()[29].full_label.as_str()), ("08-02", "2026-08-02"));
        assert_eq!(Range::from_query(Some("region=x&range=24h"), Range::Week), Range::Day);
        assert_eq!(Range::from_query(Some("range=1y"), Range::Week), Range::Week);
        assert_eq!(Range::from_query(None, Range::Month), Range::Month);
    }

    #[test]
    fn the_top_groups_then_the_others() {
        let totals = |input| UsageTotals { requests: 1, tokens: keygate_core::usage::TokenUsage { input, ..Default::default() } };
        let groups = (1..=7).map(|key| (key, totals(key * 10)));
        let (top, others) = top_by_tokens(groups);
        assert_eq!(top, [(7, 70), (6, 60), (5, 50), (4, 40), (3, 30)]);
        assert_eq!(others, Some(30));
        let drawn = bars(top, others, "Other API keys", |key| (format!("key {key}"), None));
        assert_eq!(drawn.last().map(|bar| (bar.label.as_str(), bar.value)), Some(("Other API keys", 30)));
    }
}
