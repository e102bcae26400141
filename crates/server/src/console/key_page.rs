//! Each API key's page (`/console/keys/{id}`): what the key is (masked key, workspace,
//! permission, description, creator, dates, status, expiry), a banner when its budget is
//! nearly or wholly used or its expiry near or past, its limits with where its budget
//! stands and the form that changes them (`POST /console/keys/{id}/limits`, see
//! [`super::key_limits`]), and its usage panel: the totals of all its recorded usage with
//! their cost, then its figures and charts over the last 24 hours, 7 or 30 days. Only a key
//! the caller may see in the region has a page (else the API's 404, `The API key does not
//! exist.`); the key's other actions stay in the key list's dialogs.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use keygate_core::access::KeyAction;
use keygate_core::key_limits::{key_warnings, KeyWarning, Spend};
use keygate_core::usage::UsageTotals;
use maud::{html, Markup};

use super::key_limits::{limits_panel, warning_banner, BudgetStanding, LimitsForm, LimitsFormValues, LimitsPanel};
use super::keys::{permission_markup, status_markup};
use super::layout::{error_page, page, time, with_region, Section};
use super::page_actions::query_fields;
use super::session::{Console, ConsoleForm};
use super::usage::{over_time_charts, range_choice, totals_figures, usage_over_time, Range, Window};
use crate::management::errors::ManagementError;
use crate::operations::keys::{self as key_operations, find_key, parse_key_id, require_key_action, KeepPermissions, KeyEditRequest};
use crate::operations::usage::{budget_spends, budgets_of, key_totals, CostedTotals, Selection};
use crate::operations::{ApiKeyRecord, ErrorKind};
use crate::planes::Path;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/console/keys/{api_key_id}", get(key_page)).route("/console/keys/{api_key_id}/limits", post(set_limits))
}

/// What a finished change of the limits says on the page it redirects to: its `done`, the
/// message key of the text.
const LIMITS_DONE: [(&str, &str); 2] = [("limits", "key_page.limits_saved"), ("limits-removed", "key_page.limits_removed")];

/// What the key's page shows.
struct KeyPage {
    record: ApiKeyRecord,
    recorded: CostedTotals,
    range: Range,
    window: Window,
    in_range: CostedTotals,
    per_period: Vec<UsageTotals>,
    /// What the key spent in its budget's current period (nothing without a budget).
    spent: Spend,
    /// The currency of costs (the price table's).
    currency: String,
    /// Whether the caller may edit the key (and so change its limits).
    may_edit: bool,
    /// When the page was loaded (Unix seconds): whether the key has expired.
    now: i64,
}

/// What the page shows besides what it loads: the limits form as sent back with its
/// refusal, or what a finished change did.
#[derive(Default)]
struct Shown {
    limits_form: Option<LimitsForm>,
    /// The message key of what a finished change did.
    done: Option<&'static str>,
}

/// `GET /console/keys/{id}?region=...&range=24h|7d|30d`
async fn key_page(State(state): State<AppState>, Path(api_key_id): Path<String>, console: Console, RawQuery(query): RawQuery) -> Response {
    let range = Range::from_query(query.as_deref(), Range::Month);
    let done = query_fields(query.as_deref())
        .get_non_empty("done")
        .and_then(|done| LIMITS_DONE.iter().find(|(name, _)| *name == done).map(|(_, key)| *key));
    answer(&state, &console, &api_key_id, range, StatusCode::OK, Shown { done, ..Shown::default() }).await
}

/// The key's page answering `status`.
async fn answer(state: &AppState, console: &Console, api_key_id: &str, range: Range, status: StatusCode, shown: Shown) -> Response {
    match load(state, console, api_key_id, range).await {
        Ok(loaded) => (status, page(state, console, Section::Keys, None, key_markup(console, &loaded, &shown))).into_response(),
        Err(error) => error_page(state, console, Section::Keys, &error),
    }
}

/// `POST /console/keys/{id}/limits?region=...`: the key's limits replaced by the form's
/// (all empty, or "Remove all limits": none), through the API's edit. A refusal answers
/// the page again with the form as sent and the reason; nothing is changed.
async fn set_limits(State(state): State<AppState>, Path(api_key_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let values = LimitsFormValues::from_fields(&form.fields);
    let key_id = match parse_key_id(&api_key_id) {
        Ok(key_id) => key_id,
        Err(error) => return error_page(&state, &console, Section::Keys, &error.into()),
    };
    let operations = state.operations();
    let sent = values.to_sent();
    let request = KeyEditRequest { description: None, expires_at: None, limits: Some(&sent) };
    match key_operations::edit_key(operations, &console.auth.actor(&operations), key_id, request, &KeepPermissions).await {
        Ok(()) => {
            let done = if values.is_empty() { "limits-removed" } else { "limits" };
            let path = with_region(&format!("/console/keys/{key_id}"), console.region());
            Redirect::to(&format!("{path}&done={done}#limits")).into_response()
        }
        Err(error) if matches!(error.error.kind, ErrorKind::NotFound | ErrorKind::Internal) => {
            error_page(&state, &console, Section::Keys, &error.error.into())
        }
        Err(error) => {
            let message = error.plain_message().to_string();
            let status = ManagementError::from(error.error).status;
            let shown = Shown { limits_form: Some(LimitsForm { values, error: Some(message) }), done: None };
            answer(&state, &console, &api_key_id, Range::Month, status, shown).await
        }
    }
}

async fn load(state: &AppState, console: &Console, api_key_id: &str, range: Range) -> Result<KeyPage, ManagementError> {
    let key_id = parse_key_id(api_key_id)?;
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    let record = find_key(operations, &actor, key_id).await?;
    let mut totals = key_totals(operations, &actor, &[key_id]).await?;
    let recorded = totals.by_key.remove(&key_id).unwrap_or_default();
    let spent = budget_spends(operations, &actor, &budgets_of(std::slice::from_ref(&record))).await?.remove(&key_id).unwrap_or_default();
    let may_edit = match require_key_action(operations, &actor, &record, KeyAction::Edit).await {
        Ok(()) => true,
        Err(error) if error.kind == ErrorKind::Forbidden => false,
        Err(error) => return Err(error.into()),
    };
    let window = range.window(state.shared.clock.now_seconds());
    let (in_range, per_period) = usage_over_time(state, console, &window, Selection::only(vec![key_id])).await?;
    let now = state.shared.clock.now_seconds();
    Ok(KeyPage { record, recorded, range, window, in_range, per_period, spent, currency: totals.currency, may_edit, now })
}

/// The warnings `record` deserves at `now` after `spent` in its budget's period.
pub(super) fn warnings_of(record: &ApiKeyRecord, spent: Spend, now: i64) -> Vec<KeyWarning> {
    key_warnings(record.limits.as_ref().and_then(|limits| limits.budget.as_ref()), spent, record.expires_at, now)
}

fn key_markup(console: &Console, loaded: &KeyPage, shown: &Shown) -> Markup {
    let language = console.language;
    let record = &loaded.record;
    let region = console.region();
    let limits = record.limits.as_ref();
    let budget = limits.and_then(|limits| limits.budget.as_ref());
    let form = shown.limits_form.clone().unwrap_or_else(|| LimitsForm { values: LimitsFormValues::from_limits(limits), error: None });
    let action = with_region(&format!("/console/keys/{}/limits", record.api_key_id), region);
    let panel = LimitsPanel {
        limits,
        budget: budget.map(|budget| BudgetStanding { budget, spent: loaded.spent, currency: &loaded.currency }),
        now: loaded.now,
        form: loaded.may_edit.then(|| (&form, format!("{action}#limits-form"))),
        done: shown.done.map(|key| language.text(key)),
        currency: &loaded.currency,
    };
    html! {
        div.page-head {
            div {
                p.breadcrumb { a href=(with_region("/console/keys", region)) { (language.text("section.keys")) } }
                h1 { (language.text("key_page.heading")) code.masked-key { (record.masked_key) } }
                @if !record.description.is_empty() { p.muted { (record.description) } }
            }
        }
        (warning_banner(language, &warnings_of(record, loaded.spent, loaded.now), loaded.now))
        section.panel aria-labelledby="key-details-heading" {
            h2 #key-details-heading { (language.text("key_page.details")) }
            dl.details #key-details {
                div { dt { (language.text("key_page.id")) } dd { (record.api_key_id) } }
                div { dt { (language.text("column.workspace")) } dd { (record.workspace_name) " " code.workspace-id.muted { (record.workspace_id) } } }
                div { dt { (language.text("column.permission")) } dd { (permission_markup(language, &record.auth)) } }
                div { dt { (language.text("column.creator")) } dd { (record.created_by) } }
                div { dt { (language.text("column.created")) } dd { (time(record.created_at)) } }
                div { dt { (language.text("column.last_used")) } dd { @match record.last_used_at { Some(at) => { (time(at)) } None => { span.muted { (language.text("row.never")) } } } } }
                div { dt { (language.text("column.status")) } dd { (status_markup(language, record, loaded.now)) } }
                div { dt { (language.text("form.expires")) } dd { @match record.expires_at { Some(at) => { (time(at.saturating_mul(1000))) } None => { span.muted { (language.text("key_page.never_expires")) } } } } }
            }
        }
        (limits_panel(console, &panel))
        section.key-usage #usage aria-labelledby="key-usage-heading" {
            h2 #key-usage-heading { (language.text("section.usage")) }
            h3 { (language.text("key_page.all_recorded")) }
            (totals_figures(language, "key-recorded", &loaded.recorded, &[]))
            div.usage-head {
                h3 { (loaded.range.label(language)) }
                (range_choice(language, &format!("/console/keys/{}", record.api_key_id), region, loaded.range))
            }
            @if loaded.in_range.totals.is_zero() {
                p.empty { (language.fill("key_page.no_usage", &[&loaded.range.label(language).to_lowercase()])) }
            } @else {
                (totals_figures(language, "key-in-range", &loaded.in_range, &[]))
                div.charts { (over_time_charts(language, "key", &loaded.window, &loaded.per_period)) }
            }
        }
    }
}
