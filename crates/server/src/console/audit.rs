//! The audit log page, for the account and admin RAM users: who changed what, when, from
//! where and through which credential (an AccessKey id or a session), newest first, a
//! page at a time, filtered by actor, action, API key and UTC days through query
//! parameters that the store applies. Rows never hold a key or secret.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keygate_core::civil_time::parse_utc_date;
use maud::{html, Markup};

use super::i18n::Language;
use super::layout::{described_by, error_page, field_error, page, records_table, time, with_region, Section};
use super::page_actions::query_fields;
use super::session::Console;
use crate::management::form::FormFields;
use crate::operations::audit::list_audit_filtered;
use crate::operations::AuditFilter;
use crate::state::AppState;

/// Entries per page.
const PAGE_SIZE: u32 = 100;

/// The filter fields as sent (`actor`, `action`, `key`, `from`, `to`), their errors, and the
/// filter they make.
#[derive(Default)]
struct FilterForm {
    actor: String,
    action: String,
    key: String,
    from: String,
    to: String,
    /// The fields refused: their ids and the message keys of why.
    errors: Vec<(&'static str, &'static str)>,
    filter: AuditFilter,
}

const DAY_MILLISECONDS: i64 = 86_400_000;

impl FilterForm {
    fn parse(query: &FormFields) -> FilterForm {
        let text = |name: &str| query.get(name).unwrap_or("").trim().to_string();
        let mut form = FilterForm {
            actor: text("actor"),
            action: text("action"),
            key: text("key"),
            from: text("from"),
            to: text("to"),
            ..FilterForm::default()
        };
        form.filter.actor = (!form.actor.is_empty()).then(|| form.actor.clone());
        form.filter.action = (!form.action.is_empty()).then(|| form.action.clone());
        if !form.key.is_empty() {
            match form.key.parse::<i64>() {
                Ok(key_id) if key_id > 0 => form.filter.api_key_id = Some(key_id),
                _ => form.errors.push(("audit-key", "audit.bad_key")),
            }
        }
        let day = |text: &str| parse_utc_date(text).map(|seconds| seconds * 1000);
        if !form.from.is_empty() {
            match day(&form.from) {
                Some(start) => form.filter.from = Some(start),
                None => form.errors.push(("audit-from", "audit.bad_day")),
            }
        }
        if !form.to.is_empty() {
            match day(&form.to) {
                Some(start) => form.filter.until = Some(start + DAY_MILLISECONDS),
                None => form.errors.push(("audit-to", "audit.bad_day")),
            }
        }
        form
    }

    fn error(&self, field_id: &str) -> Option<&'static str> {
        self.errors.iter().find(|(id, _)| *id == field_id).map(|(_, message)| *message)
    }

    fn is_filtered(&self) -> bool {
        self.filter != AuditFilter::default()
    }

    /// The filter's part of a link (`&actor=...`), so that paging keeps it.
    fn query_suffix(&self) -> String {
        let mut suffix = String::new();
        for (name, value) in [("actor", &self.actor), ("action", &self.action), ("key", &self.key), ("from", &self.from), ("to", &self.to)]
        {
            if !value.is_empty() {
                suffix.push_str(&format!("&{name}={}", percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)));
            }
        }
        suffix
    }

    fn markup(&self, console: &Console) -> Markup {
        let language = console.language;
        let field = |id: &str, name: &str, label: &'static str, value: &str, kind: &str, hint: Option<&'static str>| {
            let error = self.error(id).map(|key| language.text(key));
            let (label, hint) = (language.text(label), hint.map(|hint| language.text(hint)));
            html! {
                div.field {
                    label for=(id) { (label) }
                    input id=(id) type=(kind) name=(name) value=(value) aria-invalid=[error.map(|_| "true")] aria-describedby=[described_by(id, hint.is_some(), error.is_some())];
                    @if let Some(hint) = hint { p.hint id={ (id) "-hint" } { (hint) } }
                    (field_error(id, error))
                }
            }
        };
        html! {
            form #audit-filters.filters method="get" action="/console/audit" role="search" aria-label=(language.text("audit.filter_label")) {
                input type="hidden" name="region" value=(console.region());
                (field("audit-actor", "actor", "audit.actor", &self.actor, "text", None))
                (field("audit-action", "action", "audit.action", &self.action, "text", Some("audit.action_hint")))
                (field("audit-key", "key", "audit.key", &self.key, "text", None))
                (field("audit-from", "from", "audit.from", &self.from, "date", None))
                (field("audit-to", "to", "audit.to", &self.to, "date", None))
                div.actions {
                    button type="submit" { (language.text("audit.filter")) }
                    @if self.is_filtered() || !self.errors.is_empty() {
                        a.button.secondary href=(with_region("/console/audit", console.region())) { (language.text("audit.clear")) }
                    }
                }
            }
        }
    }
}

/// `GET /console/audit?region=...&actor=...&action=...&key=...&from=...&to=...&before=<auditId>`
pub(super) async fn audit_page(State(state): State<AppState>, console: Console, RawQuery(query): RawQuery) -> Response {
    if let Err(denied) = console.auth.caller.may_administer() {
        return error_page(&state, &console, Section::Audit, &denied.into());
    }
    let language = console.language;
    let query = query_fields(query.as_deref());
    let before = query.get_non_empty("before").and_then(|text| text.parse::<i64>().ok()).filter(|before| *before > 0);
    let form = FilterForm::parse(&query);
    if !form.errors.is_empty() {
        let body = html! { (heading(language)) (form.markup(&console)) };
        return (StatusCode::BAD_REQUEST, page(&state, &console, Section::Audit, None, body)).into_response();
    }
    let operations = state.operations();
    let records = match list_audit_filtered(operations, &console.auth.actor(&operations), &form.filter, PAGE_SIZE, before).await {
        Ok(records) => records,
        Err(error) => return error_page(&state, &console, Section::Audit, &error.into()),
    };
    let next_before = (records.len() == PAGE_SIZE as usize).then(|| records.last().map(|record| record.audit_id)).flatten();
    let columns =
        ["audit.when", "audit.who", "audit.action", "audit.target", "audit.detail", "audit.client", "audit.credential", "audit.region"]
            .map(|key| language.text(key));
    let here = format!("{}{}", with_region("/console/audit", console.region()), form.query_suffix());
    let body = html! {
        (heading(language))
        (form.markup(&console))
        @if records.is_empty() {
            p.empty { (language.text(if form.is_filtered() { "audit.none_match" } else { "audit.nothing" })) }
        } @else {
            (records_table("audit", language.text("audit.heading"), &columns, html! {
                @for record in &records {
                    tr {
                        td.when data-label=(columns[0]) { (time(record.at)) }
                        td.who data-label=(columns[1]) { (words(&record.actor)) }
                        td.action data-label=(columns[2]) { code { (record.action) } }
                        td.target data-label=(columns[3]) { (words(&record.target)) }
                        td.detail data-label=(columns[4]) { (words(&record.detail)) }
                        td.client data-label=(columns[5]) { (words(&record.client_address)) }
                        // Empty for a change made on the database directly (`keygate admin`).
                        td.credential data-label=(columns[6]) { @if record.credential.is_empty() { span.muted { "—" } } @else { (words(&record.credential)) } }
                        td.region data-label=(columns[7]) { (words(&record.region)) }
                    }
                }
            }))
        }
        @if let Some(before) = next_before {
            p.pager { a href={ (here) "&before=" (before) } { (language.text("audit.older")) } }
        }
        @if before.is_some() {
            p.pager { a href=(here) { (language.text("audit.newest")) } }
        }
    };
    (StatusCode::OK, page(&state, &console, Section::Audit, None, body)).into_response()
}

/// `text` with each of its words in a `span.word`, which the stylesheet keeps on one line
/// (a hyphen or a dot is no place to break an id), the spaces between them free to wrap.
fn words(text: &str) -> Markup {
    html! { @for (index, word) in text.split_whitespace().enumerate() { @if index > 0 { " " } span.word { (word) } } }
}

fn heading(language: Language) -> Markup {
    html! { div.page-head { div { h1 { (language.text("audit.heading")) } p.muted { (language.text("audit.intro")) } } } }
}
