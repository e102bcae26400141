//! The audit log page, for the account and admin RAM users: who changed what, when, from
//! where and through which credential (an AccessKey id or a session), newest first, a
//! page at a time. Rows never hold a key or secret.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{error_page, page, records_table, time, with_region, Section};
use super::page_actions::query_fields;
use super::session::Console;
use crate::operations::audit::list_audit;
use crate::state::AppState;

/// Entries per page.
const PAGE_SIZE: u32 = 100;

/// `GET /console/audit?region=...&before=<auditId>`
pub(super) async fn audit_page(State(state): State<AppState>, console: Console, RawQuery(query): RawQuery) -> Response {
    if let Err(denied) = console.auth.caller.may_administer() {
        return error_page(&state, &console, Section::Audit, &denied.into());
    }
    let before =
        query_fields(query.as_deref()).get_non_empty("before").and_then(|text| text.parse::<i64>().ok()).filter(|before| *before > 0);
    let operations = state.operations();
    let records = match list_audit(operations, &console.auth.actor(&operations), PAGE_SIZE, before).await {
        Ok(records) => records,
        Err(error) => return error_page(&state, &console, Section::Audit, &error.into()),
    };
    let next_before = (records.len() == PAGE_SIZE as usize).then(|| records.last().map(|record| record.audit_id)).flatten();
    let body = html! {
        div.page-head { div { h1 { "Audit log" } p.muted { "Every change to keys, users, workspaces and sessions of the account, newest first." } } }
        @if records.is_empty() {
            p.empty { "Nothing recorded yet." }
        } @else {
            (records_table("audit", "Audit log", &["When", "Who", "Action", "Target", "Detail", "From", "Credential", "Region"], html! {
                @for record in &records {
                    tr {
                        td data-label="When" { (time(record.at)) }
                        td data-label="Who" { (record.actor) }
                        td data-label="Action" { code { (record.action) } }
                        td data-label="Target" { (record.target) }
                        td data-label="Detail" { (record.detail) }
                        td data-label="From" { (record.client_address) }
                        // Empty for a change made on the database directly (`keygate admin`).
                        td data-label="Credential" { @if record.credential.is_empty() { span.muted { "—" } } @else { (record.credential) } }
                        td data-label="Region" { (record.region) }
                    }
                }
            }))
        }
        @if let Some(before) = next_before {
            p.pager { a href={ (with_region("/console/audit", console.region())) "&before=" (before) } { "Older entries" } }
        }
        @if before.is_some() {
            p.pager { a href=(with_region("/console/audit", console.region())) { "Newest entries" } }
        }
    };
    (StatusCode::OK, page(&state, &console, Section::Audit, None, body)).into_response()
}
