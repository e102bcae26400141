//! Each API key's page (`/console/keys/{id}`): what the key is (masked key, workspace,
//! permission, description, creator, dates, status) and its usage panel: the totals of
//! all its recorded usage with their cost, then its figures and charts over the last 24
//! hours, 7 or 30 days. Only a key the caller may see in the region has a page (else the
//! API's 404, `The API key does not exist.`); the key's actions stay in the key list's
//! dialogs.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use keygate_core::usage::UsageTotals;
use maud::{html, Markup};

use super::keys::{permission_markup, status_markup};
use super::layout::{error_page, page, time, with_region, Section};
use super::session::Console;
use super::usage::{over_time_charts, range_choice, totals_figures, usage_over_time, Range, Window};
use crate::management::errors::ManagementError;
use crate::operations::keys::{find_key, parse_key_id};
use crate::operations::usage::{key_totals, CostedTotals, Selection};
use crate::operations::ApiKeyRecord;
use crate::planes::Path;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/console/keys/{api_key_id}", get(key_page))
}

/// What the key's page shows.
struct KeyPage {
    record: ApiKeyRecord,
    recorded: CostedTotals,
    range: Range,
    window: Window,
    in_range: CostedTotals,
    per_period: Vec<UsageTotals>,
    /// When the page was loaded (Unix seconds): whether the key has expired.
    now: i64,
}

/// `GET /console/keys/{id}?region=...&range=24h|7d|30d`
async fn key_page(State(state): State<AppState>, Path(api_key_id): Path<String>, console: Console, RawQuery(query): RawQuery) -> Response {
    let range = Range::from_query(query.as_deref(), Range::Month);
    match load(&state, &console, &api_key_id, range).await {
        Ok(loaded) => (StatusCode::OK, page(&state, &console, Section::Keys, None, key_markup(&console, &loaded))).into_response(),
        Err(error) => error_page(&state, &console, Section::Keys, &error),
    }
}

async fn load(state: &AppState, console: &Console, api_key_id: &str, range: Range) -> Result<KeyPage, ManagementError> {
    let key_id = parse_key_id(api_key_id)?;
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    let record = find_key(operations, &actor, key_id).await?;
    let recorded = key_totals(operations, &actor, &[key_id]).await?.by_key.remove(&key_id).unwrap_or_default();
    let window = range.window(state.shared.clock.now_seconds());
    let (in_range, per_period) = usage_over_time(state, console, &window, Selection::only(vec![key_id])).await?;
    Ok(KeyPage { record, recorded, range, window, in_range, per_period, now: state.shared.clock.now_seconds() })
}

fn key_markup(console: &Console, loaded: &KeyPage) -> Markup {
    let record = &loaded.record;
    let region = console.region();
    html! {
        div.page-head {
            div {
                p.breadcrumb { a href=(with_region("/console/keys", region)) { "API keys" } }
                h1 { "API key " code.masked-key { (record.masked_key) } }
                @if !record.description.is_empty() { p.muted { (record.description) } }
            }
        }
        section.panel aria-labelledby="key-details-heading" {
            h2 #key-details-heading { "Details" }
            dl.details {
                div { dt { "ID" } dd { (record.api_key_id) } }
                div { dt { "Workspace" } dd { (record.workspace_name) " " code.workspace-id.muted { (record.workspace_id) } } }
                div { dt { "Permission" } dd { (permission_markup(&record.auth)) } }
                div { dt { "Creator" } dd { (record.created_by) } }
                div { dt { "Created" } dd { (time(record.created_at)) } }
                div { dt { "Last used" } dd { @match record.last_used_at { Some(at) => { (time(at)) } None => { span.muted { "Never" } } } } }
                div { dt { "Status" } dd { (status_markup(record, loaded.now)) } }
            }
        }
        section.key-usage #usage aria-labelledby="key-usage-heading" {
            h2 #key-usage-heading { "Usage" }
            h3 { "All recorded usage" }
            (totals_figures("key-recorded", &loaded.recorded, &[]))
            div.usage-head {
                h3 { (loaded.range.label()) }
                (range_choice(&format!("/console/keys/{}", record.api_key_id), region, loaded.range))
            }
            @if loaded.in_range.totals.is_zero() {
                p.empty { "No usage in the " (loaded.range.label().to_lowercase()) "." }
            } @else {
                (totals_figures("key-in-range", &loaded.in_range, &[]))
                div.charts { (over_time_charts("key", &loaded.window, &loaded.per_period)) }
            }
        }
    }
}
