//! The API-Key page, in the spirit of Model Studio's: the caller's keys in the selected
//! region (masked, with usage), Create (a dialog ending in the show-once dialog), Edit,
//! Disable/Enable, Reset and Delete, each in a confirming dialog.
//!
//! Every change goes through [`key_operations`], the same code as the Model Studio API. A
//! new or reset key's plaintext is written only into the response to the POST that made
//! it, never into a URL, a redirect, a cookie or the log.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use keygate_core::access::{KeyAction, KeyVisibility};
use keygate_core::key_expiry::MAX_GRACE_SECONDS;
use keygate_core::key_limits::{KeyWarning, Spend, BUDGET_WARNING_PERCENT};
use keygate_core::keys::{expose, KeyFormat};
use keygate_core::permissions::KeyAuth;
use keygate_core::region::LimitScope;
use keygate_core::verification::has_expired;
use maud::{html, Markup};

use super::how_to_call::{how_to_call_panel, snippet_model, SnippetModel};
use super::i18n::Language;
use super::item_actions;
use super::key_form::{key_form_fields, AppChoice, KeyFormChoices, KeyFormErrors, KeyFormValues, WorkspaceChoice};
use super::key_limits::warning_badges;
use super::key_page::warnings_of;
use super::layout::{csrf_field, error_page, records_table, time, with_region, Section};
use super::page_actions::{done_notice, finish, query_fields, redirect_done, refused, render, FormPage};
use super::session::{Console, ConsoleForm};
use crate::management::errors::ManagementError;
use crate::operations::keys::{self as key_operations, IssuedKey, KeyEditRequest, KeyListing, NewKeyRequest};
use crate::operations::usage::{budget_spends, budgets_of};
use crate::operations::workspaces::{inference_models, key_workspaces};
use crate::operations::{Actor, ApiKeyRecord, ErrorKind, KeyOrder, Operations};
use crate::planes::Path;
use crate::state::AppState;

/// The page sizes the list offers (`?size=`), and the one it uses unless asked.
const PAGE_SIZES: [u32; 4] = [10, 20, 50, 100];
const DEFAULT_PAGE_SIZE: u32 = 20;

/// The columns of the key list (their message keys), as [`key_row`] fills them.
const KEY_COLUMNS: [&str; 9] = [
    "column.key",
    "column.workspace",
    "column.permission",
    "column.description",
    "column.creator",
    "column.created",
    "column.last_used",
    "column.status",
    "column.actions",
];

/// A key to show once: just created or reset.
struct ShowOnce {
    issued: IssuedKey,
    reset: bool,
    /// What the "how to call" panel's snippets call.
    model: SnippetModel,
}

/// Everything the page shows besides the list.
#[derive(Default)]
struct PageState {
    /// The list's page: where it starts, how many keys, and the search (`?offset=`,
    /// `?size=`, `?q=`).
    offset: u32,
    size: u32,
    search: String,
    /// The Create form as sent back with its errors (the dialog opens again).
    create: Option<(KeyFormValues, KeyFormErrors)>,
    /// An Edit form sent back with its errors: the key's id, values and errors.
    edit: Option<(i64, KeyFormValues, KeyFormErrors)>,
    show_once: Option<ShowOnce>,
}

/// The API-Key page and the actions of its dialogs on one key.
pub(super) fn routes() -> Router<AppState> {
    let key_actions = [
        ("edit", post(edit)),
        ("disable", post(disable)),
        ("enable", post(enable)),
        ("reset", post(reset)),
        ("end-grace", post(end_grace)),
        ("delete", post(delete)),
    ];
    Router::new().route("/console/keys", get(keys_page).post(create)).merge(item_actions("/console/keys/{api_key_id}", key_actions))
}

/// `GET /console` goes to the key list.
pub(super) async fn home(console: Console) -> Redirect {
    Redirect::to(&with_region("/console/keys", console.region()))
}

/// `GET /console/keys?region=...`
pub(super) async fn keys_page(State(state): State<AppState>, console: Console, RawQuery(query): RawQuery) -> Response {
    let query = query_fields(query.as_deref());
    let offset = query.get_non_empty("offset").and_then(|text| text.parse::<u32>().ok()).unwrap_or(0);
    let size = query.get_non_empty("size").and_then(|text| text.parse::<u32>().ok()).filter(|size| PAGE_SIZES.contains(size)).unwrap_or(0);
    let search = query.get("q").unwrap_or("").trim().chars().take(100).collect();
    let notice = done_notice(console.language, Section::Keys, &query);
    render(&state, &console, StatusCode::OK, notice, PageState { offset, size, search, ..PageState::default() }).await
}

/// `POST /console/keys`: Create. Success answers the page with the show-once dialog.
pub(super) async fn create(State(state): State<AppState>, form: ConsoleForm) -> Response {
    let console = form.console;
    let values = KeyFormValues::from_fields(&form.fields);
    let workspace_id = (!values.workspace_id.is_empty()).then_some(values.workspace_id.as_str());
    let request = NewKeyRequest {
        workspace_id,
        description: &values.description,
        auth: &values,
        expires_at: values.expiry_to_create(),
        limits: None,
    };
    let operations = state.operations();
    match key_operations::create_key(operations, &console.auth.actor(&operations), request).await {
        Ok(issued) => show_once(&state, &console, issued, false).await,
        Err(error) if error.error.kind == ErrorKind::Internal => error_page(&state, &console, Section::Keys, &error.error.into()),
        // Not allowed to create at all (a member): there is no form to show it in.
        Err(error) if error.field.is_none() && error.error.kind == ErrorKind::Forbidden => {
            refused::<PageState>(&state, &console, error.error.into()).await
        }
        Err(error) => {
            let errors = KeyFormErrors::from_error(&error);
            let status = ManagementError::from(error.error).status;
            render(&state, &console, status, None, PageState { create: Some((values, errors)), ..PageState::default() }).await
        }
    }
}

/// The key `api_key_id` names, with the operations and the caller as their actor.
fn acting_on_key<'a>(state: &'a AppState, console: &Console, api_key_id: &str) -> Result<(Operations<'a>, Actor, i64), ManagementError> {
    let key_id = parse_key_id(api_key_id)?;
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    Ok((operations, actor, key_id))
}

fn parse_key_id(text: &str) -> Result<i64, ManagementError> {
    Ok(key_operations::parse_key_id(text)?)
}

/// `POST /console/keys/{id}/edit`
pub(super) async fn edit(State(state): State<AppState>, Path(api_key_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let key_id = match parse_key_id(&api_key_id) {
        Ok(key_id) => key_id,
        Err(error) => return refused::<PageState>(&state, &console, error).await,
    };
    let values = KeyFormValues::from_fields(&form.fields);
    let operations = state.operations();
    let edit_request = KeyEditRequest { description: Some(&values.description), expires_at: values.expiry_to_edit(), limits: None };
    match key_operations::edit_key(operations, &console.auth.actor(&operations), key_id, edit_request, &values).await {
        Ok(()) => redirect_done(&console, Section::Keys, "edited"),
        Err(error) if error.field.is_none() => refused::<PageState>(&state, &console, error.error.into()).await,
        Err(error) => {
            let errors = KeyFormErrors::from_error(&error);
            let status = ManagementError::from(error.error).status;
            render(&state, &console, status, None, PageState { edit: Some((key_id, values, errors)), ..PageState::default() }).await
        }
    }
}

async fn set_disabled(state: AppState, api_key_id: String, form: ConsoleForm, disabled: bool) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, key_id) = acting_on_key(&state, &console, &api_key_id)?;
        Ok(key_operations::set_key_disabled(operations, &actor, key_id, disabled).await?)
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, if disabled { "disabled" } else { "enabled" }).await
}

/// `POST /console/keys/{id}/disable`
pub(super) async fn disable(State(state): State<AppState>, Path(api_key_id): Path<String>, form: ConsoleForm) -> Response {
    set_disabled(state, api_key_id, form, true).await
}

/// `POST /console/keys/{id}/enable`
pub(super) async fn enable(State(state): State<AppState>, Path(api_key_id): Path<String>, form: ConsoleForm) -> Response {
    set_disabled(state, api_key_id, form, false).await
}

/// `POST /console/keys/{id}/reset`: the new key in the show-once dialog.
pub(super) async fn reset(State(state): State<AppState>, Path(api_key_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, key_id) = acting_on_key(&state, &console, &api_key_id)?;
        let grace_seconds = form.fields.get("grace_seconds");
        Ok::<_, ManagementError>(key_operations::reset_key(operations, &actor, key_id, grace_seconds).await?)
    }
    .await;
    match outcome {
        Ok(issued) => show_once(&state, &console, issued, true).await,
        Err(error) => refused::<PageState>(&state, &console, error).await,
    }
}

/// `POST /console/keys/{id}/end-grace`: the old secret of a reset stops working now.
pub(super) async fn end_grace(State(state): State<AppState>, Path(api_key_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, key_id) = acting_on_key(&state, &console, &api_key_id)?;
        key_operations::end_key_grace(operations, &actor, key_id).await?;
        Ok(())
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, "grace-ended").await
}

/// `POST /console/keys/{id}/delete`
pub(super) async fn delete(State(state): State<AppState>, Path(api_key_id): Path<String>, form: ConsoleForm) -> Response {
    let console = form.console;
    let outcome = async {
        let (operations, actor, key_id) = acting_on_key(&state, &console, &api_key_id)?;
        Ok(key_operations::delete_key(operations, &actor, key_id).await?)
    }
    .await;
    finish::<PageState, _>(&state, &console, outcome, "deleted").await
}

// ---- loading --------------------------------------------------------------------------

/// One page of the key list: its keys, how many the caller has in all, and what each key
/// with a budget spent in its budget's current period.
struct KeyList {
    records: Vec<ApiKeyRecord>,
    total: u64,
    spends: HashMap<i64, Spend>,
}

/// The caller's keys in its region that match the search, newest first, one page, with
/// their budgets' spend.
async fn load_keys(state: &AppState, console: &Console, page_state: &PageState) -> Result<KeyList, ManagementError> {
    let listing = KeyListing {
        api_key_id: None,
        description: None,
        search: (!page_state.search.is_empty()).then(|| page_state.search.clone()),
        workspace_id: None,
        order_by: KeyOrder::ApiKeyId,
        descending: true,
        offset: page_state.offset,
        limit: page_state.page_size(),
    };
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    let (records, total) = key_operations::list_keys(operations, &actor, listing).await?;
    let spends = budget_spends(operations, &actor, &budgets_of(&records)).await?;
    Ok(KeyList { records, total, spends })
}

/// Workspaces the caller may create keys in (RAM users: the default one and those it is
/// a member of), the catalog, and the applications of those workspaces.
async fn load_choices(state: &AppState, console: &Console) -> Result<KeyFormChoices, ManagementError> {
    let auth = &console.auth;
    let operations = state.operations();
    let actor = auth.actor(&operations);
    let policy = actor.region_policy(&operations)?;
    let workspaces = key_workspaces(operations, &actor).await?;
    let mut apps = Vec::new();
    for (workspace, applications) in &workspaces {
        for (app_id, name) in applications {
            apps.push(AppChoice { app_id: app_id.clone(), name: name.clone(), workspace_name: workspace.name.clone() });
        }
    }
    Ok(KeyFormChoices {
        language: console.language,
        workspaces: workspaces
            .into_iter()
            .map(|(workspace, _)| WorkspaceChoice {
                workspace_id: workspace.workspace_id,
                name: workspace.name,
                is_default: workspace.is_default,
            })
            .collect(),
        models: state.shared.catalog.iter().map(|model| (model.name.clone(), model.display_name.clone(), model.demo)).collect(),
        apps,
        custom_allowed: policy.custom_permissions,
        region_name: policy.name.clone(),
    })
}

impl PageState {
    fn page_size(&self) -> u32 {
        if self.size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            self.size
        }
    }

    /// The list's link at `offset`, keeping the search and the page size.
    fn list_link(&self, region: &str, offset: u32) -> String {
        let mut link = with_region("/console/keys", region);
        if !self.search.is_empty() {
            link.push_str(&format!("&q={}", percent_encoding::utf8_percent_encode(&self.search, percent_encoding::NON_ALPHANUMERIC)));
        }
        if self.size != 0 {
            link.push_str(&format!("&size={}", self.size));
        }
        if offset > 0 {
            link.push_str(&format!("&offset={offset}"));
        }
        link
    }
}

impl FormPage for PageState {
    const SECTION: Section = Section::Keys;
    type Loaded = (KeyList, KeyFormChoices);

    async fn load(&self, state: &AppState, console: &Console) -> Result<Self::Loaded, ManagementError> {
        Ok((load_keys(state, console, self).await?, load_choices(state, console).await?))
    }

    fn markup(&self, state: &AppState, console: &Console, (list, choices): Self::Loaded) -> Markup {
        keys_markup(state, console, &list, &choices, self)
    }
}

/// The page with the show-once dialog of a key just created or reset.
async fn show_once(state: &AppState, console: &Console, issued: IssuedKey, reset: bool) -> Response {
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    let record = &issued.record;
    let model = match inference_models(operations, &actor, &record.workspace_id).await {
        Ok(models) => snippet_model(state, models.as_deref(), Some(&record.auth), &record.workspace_name),
        Err(error) => return error_page(state, console, Section::Keys, &error.into()),
    };
    render(state, console, StatusCode::OK, None, PageState { show_once: Some(ShowOnce { issued, reset, model }), ..PageState::default() })
        .await
}

// ---- rendering --------------------------------------------------------------------------

/// A key's permission: `All`, or `Custom` with its addresses, models and applications.
pub(super) fn permission_markup(language: Language, auth: &KeyAuth) -> Markup {
    match auth {
        KeyAuth::All => html! { span.permission { "All" } },
        KeyAuth::Custom(custom) => {
            let ips = custom.access_ips.canonical_entries();
            html! {
                span.permission { "Custom" }
                ul.scope-summary {
                    li { (language.text("perm.ips")) @if ips.is_empty() { (language.text("perm.any_address")) } @else { (ips.join(", ")) } }
                    li { (language.text("perm.models")) @if custom.model_scope.allow_all_models { (language.text("perm.all")) } @else if custom.model_scope.accessible_models.is_empty() { (language.text("perm.none")) } @else { (custom.model_scope.accessible_models.join(", ")) } }
                    li { (language.text("perm.apps")) @if custom.app_scope.allow_all_apps { (language.text("perm.all")) } @else if custom.app_scope.accessible_apps.is_empty() { (language.text("perm.none")) } @else { (custom.app_scope.accessible_apps.join(", ")) } }
                }
            }
        }
    }
}

/// A key's status at `now` (Unix seconds), as a badge, with its expiry and the end of an
/// old secret's grace period (docs/CONTRACT.md#expiry-and-grace-periods).
pub(super) fn status_markup(language: Language, record: &ApiKeyRecord, now: i64) -> Markup {
    let expired = has_expired(record.expires_at, now);
    let grace_ends_at = record.grace_ends_at.filter(|ends_at| *ends_at > now);
    html! {
        @if record.disabled { span.status.status-disabled { (language.text("status.disabled")) } }
        @else if expired { span.status.status-disabled { (language.text("status.expired")) } }
        @else { span.status.status-enabled { (language.text("status.enabled")) } }
        @if let Some(expires_at) = record.expires_at {
            br; span.muted { @if expired { (language.text("status.expired_at")) } @else { (language.text("status.expires_at")) } (time(expires_at.saturating_mul(1000))) }
        }
        @if let Some(ends_at) = grace_ends_at {
            br; span.muted { (language.text("status.grace")) (time(ends_at.saturating_mul(1000))) }
        }
    }
}

/// A dialog that asks before a change to one key.
fn confirm_dialog(console: &Console, dialog_id: &str, action: &str, title: &str, text: Markup, button: &str, danger: bool) -> Markup {
    confirm_dialog_with(console, dialog_id, action, title, text, html! {}, button, danger)
}

/// The reset dialog's field: how long the old secret keeps working.
fn grace_field(language: Language, key_id: i64) -> Markup {
    html! {
        div.field {
            label for={ "reset-" (key_id) "-grace" } { (language.text("grace.label")) " " span.optional { (language.text("grace.optional")) } }
            input type="number" id={ "reset-" (key_id) "-grace" } name="grace_seconds" min="0" max=(MAX_GRACE_SECONDS) step="1" value="0"
                aria-describedby={ "reset-" (key_id) "-grace-hint" };
            p.hint id={ "reset-" (key_id) "-grace-hint" } { (language.fill("grace.hint", &[&MAX_GRACE_SECONDS])) }
        }
    }
}

/// [`confirm_dialog`] with form `fields` after its text.
#[allow(clippy::too_many_arguments)]
fn confirm_dialog_with(
    console: &Console,
    dialog_id: &str,
    action: &str,
    title: &str,
    text: Markup,
    fields: Markup,
    button: &str,
    danger: bool,
) -> Markup {
    html! {
        dialog.confirm id=(dialog_id) aria-labelledby={ (dialog_id) "-title" } {
            form method="post" action=(action) {
                (csrf_field(console))
                h2 id={ (dialog_id) "-title" } { (title) }
                p { (text) }
                (fields)
                div.actions {
                    button.secondary type="button" data-close-dialog { (console.language.text("keys.cancel")) }
                    button.danger[danger] type="submit" { (button) }
                }
            }
        }
    }
}

fn key_row(
    state: &AppState,
    console: &Console,
    record: &ApiKeyRecord,
    warnings: &[KeyWarning],
    choices: &KeyFormChoices,
    page_state: &PageState,
) -> Markup {
    let region = console.region();
    let id = record.api_key_id;
    let disable_and_reset = state.region_policy(region).is_some_and(|policy| policy.disable_and_reset);
    let action = |verb: &str| with_region(&format!("/console/keys/{id}/{verb}"), region);
    let (edit_values, edit_errors, reopen_edit) = match &page_state.edit {
        Some((edited, values, errors)) if *edited == id => (values.clone(), errors.clone(), true),
        _ => (KeyFormValues::from_record(record), KeyFormErrors::default(), false),
    };
    let language = console.language;
    let masked = html! { code { (record.masked_key) } };
    let around = |key: &'static str| {
        let text = language.text(key);
        let (before, after) = text.split_once("{}").unwrap_or((text, ""));
        html! { (before) (masked) (after) }
    };
    // Offer only what the caller may do to this key: a member, or a key-manager no longer
    // in the key's workspace, may disable and delete it but not edit, enable or reset it.
    // `choices.workspaces` are the workspaces the caller is a member of.
    let is_member = choices.workspaces.iter().any(|workspace| workspace.workspace_id == record.workspace_id);
    let may = |action: KeyAction| console.auth.caller.may_act_on_key(action, is_member).is_ok();
    let now = state.shared.clock.now_seconds();
    let in_grace = record.grace_ends_at.is_some_and(|ends_at| ends_at > now);
    let (may_edit, may_enable, may_reset) = (may(KeyAction::Edit), may(KeyAction::Enable), disable_and_reset && may(KeyAction::Reset));
    html! {
        tr id={ "key-" (id) } data-key-id=(id) {
            td.key-cell data-label=(language.text("column.key")) {
                code.masked-key { (record.masked_key) }
                " "
                button.icon.copy type="button" data-copy-text=(record.masked_key) aria-label=(language.fill("row.copy_masked_label", &[&record.masked_key])) title=(language.text("row.copy_masked")) { (language.text("row.copy")) }
                @if record.format == KeyFormat::Legacy {
                    " " span.badge.warning title=(language.text("row.legacy_title")) { (language.text("row.legacy")) }
                }
            }
            td data-label=(language.text("column.workspace")) { (record.workspace_name) br; code.workspace-id.muted { (record.workspace_id) } }
            td data-label=(language.text("column.permission")) { (permission_markup(language, &record.auth)) }
            td data-label=(language.text("column.description")) { @if record.description.is_empty() { span.muted { "—" } } @else { (record.description) } }
            td data-label=(language.text("column.creator")) { (record.created_by) }
            td data-label=(language.text("column.created")) { (time(record.created_at)) }
            td data-label=(language.text("column.last_used")) {
                @match record.last_used_at { Some(at) => { (time(at)) } None => { span.muted { (language.text("row.never")) } } }
                br; span.muted { (language.fill(if record.request_count == 1 { "row.request" } else { "row.requests" }, &[&record.request_count])) }
            }
            td data-label=(language.text("column.status")) { (status_markup(language, record, now)) (warning_badges(language, warnings)) }
            td data-label=(language.text("column.actions")) {
                div.row-actions {
                    a.link href=(with_region(&format!("/console/keys/{id}"), region)) aria-label=(language.fill("row.usage_label", &[&record.masked_key])) { (language.text("row.usage")) }
                    @if may_edit {
                        button.link type="button" data-open-dialog={ "edit-" (id) } { (language.text("row.edit")) }
                    }
                    @if record.disabled {
                        @if may_enable {
                            button.link type="button" data-open-dialog={ "enable-" (id) } { (language.text("row.enable")) }
                        }
                    } @else if disable_and_reset {
                        button.link type="button" data-open-dialog={ "disable-" (id) } { (language.text("row.disable")) }
                    }
                    @if may_reset {
                        button.link type="button" data-open-dialog={ "reset-" (id) } { (language.text("row.reset")) }
                    }
                    @if may_reset && in_grace {
                        button.link type="button" data-open-dialog={ "end-grace-" (id) } { (language.text("row.end_grace")) }
                    }
                    button.link.danger-text type="button" data-open-dialog={ "delete-" (id) } { (language.text("row.delete")) }
                }
                @if may_edit {
                    dialog.form-dialog id={ "edit-" (id) } aria-labelledby={ "edit-" (id) "-title" } open[reopen_edit] data-show-on-load[reopen_edit] {
                        form method="post" action=(action("edit")) novalidate {
                            (csrf_field(console))
                            h2 id={ "edit-" (id) "-title" } { (language.fill("edit.title", &[&record.masked_key])) }
                            p.hint { (language.text("edit.workspace")) (record.workspace_name) " (" code { (record.workspace_id) } ")" }
                            (key_form_fields(&format!("edit-{id}"), &edit_values, &edit_errors, choices, false))
                            div.actions {
                                button.secondary type="button" data-close-dialog { (language.text("keys.cancel")) }
                                button type="submit" { (language.text("edit.save")) }
                            }
                        }
                    }
                }
                @if record.disabled {
                    @if may_enable {
                        (confirm_dialog(console, &format!("enable-{id}"), &action("enable"), language.text("confirm.enable_title"), around("confirm.enable_text"), language.text("row.enable"), false))
                    }
                } @else if disable_and_reset {
                    (confirm_dialog(console, &format!("disable-{id}"), &action("disable"), language.text("confirm.disable_title"), around("confirm.disable_text"), language.text("row.disable"), true))
                }
                @if may_reset {
                    (confirm_dialog_with(console, &format!("reset-{id}"), &action("reset"), language.text("confirm.reset_title"), around("confirm.reset_text"), grace_field(language, id), language.text("row.reset"), true))
                }
                @if may_reset && in_grace {
                    (confirm_dialog(console, &format!("end-grace-{id}"), &action("end-grace"), language.text("confirm.end_grace_title"), around("confirm.end_grace_text"), language.text("row.end_grace"), true))
                }
                (confirm_dialog(console, &format!("delete-{id}"), &action("delete"), language.text("confirm.delete_title"), around("confirm.delete_text"), language.text("row.delete"), true))
            }
        }
    }
}

fn show_once_markup(state: &AppState, console: &Console, show_once: &ShowOnce) -> Markup {
    let language = console.language;
    let record = &show_once.issued.record;
    let file_name = format!("keygate-api-key-{}.txt", record.api_key_id);
    html! {
        dialog.show-once #show-once open data-show-on-load data-secret aria-labelledby="show-once-title" aria-describedby="show-once-warning" {
            h2 #show-once-title { (language.text(if show_once.reset { "once.reset" } else { "once.created" })) }
            p.warning #show-once-warning role="alert" {
                strong { (language.text("once.copy_now")) }
                (language.text("once.warning"))
            }
            div.field {
                label for="show-once-key" { (language.text("once.key")) " " span.muted { "(id " (record.api_key_id) ", " (record.workspace_name) ")" } }
                input #show-once-key.secret type="text" readonly value=(expose(&show_once.issued.plaintext)) data-secret-value autocomplete="off" spellcheck="false";
            }
            div.actions {
                button type="button" data-copy-target="show-once-key" data-status-target="show-once-status" { (language.text("once.copy")) }
                button.secondary type="button" data-download-target="show-once-key" data-download-name=(file_name) data-status-target="show-once-status" { (language.text("once.download")) }
                button.secondary type="button" data-close-dialog { (language.text("once.close")) }
            }
            p.copy-status #show-once-status role="status" {}
            (how_to_call_panel(state, console, &show_once.model, "show-once-"))
        }
    }
}

fn limit_text(state: &AppState, console: &Console, total: u64) -> String {
    let Some(policy) = state.region_policy(console.region()) else { return String::new() };
    let language = console.language;
    match (policy.limit_scope, console.auth.caller.key_visibility()) {
        (LimitScope::Account, KeyVisibility::WholeAccount) => {
            language.fill("keys.limit_in_use", &[&total, &policy.key_limit, &policy.name])
        }
        (LimitScope::Account, _) => language.fill("keys.limit_account", &[&policy.key_limit, &policy.name]),
        (LimitScope::Creator, _) => language.fill("keys.limit_creator", &[&policy.key_limit, &policy.name]),
    }
}

/// The key list's search and page size, sent with GET.
fn search_form(console: &Console, page_state: &PageState) -> Markup {
    let language = console.language;
    html! {
        form #keys-search.filters method="get" action="/console/keys" role="search" aria-label=(language.text("keys.search_label")) {
            input type="hidden" name="region" value=(console.region());
            div.field.wide {
                label for="keys-q" { (language.text("keys.search")) }
                input #keys-q type="search" name="q" value=(page_state.search) aria-describedby="keys-q-hint";
                p.hint #keys-q-hint { (language.text("keys.search_hint")) }
            }
            div.field.narrow {
                label for="keys-size" { (language.text("keys.per_page")) }
                select #keys-size name="size" {
                    @for size in PAGE_SIZES { option value=(size) selected[size == page_state.page_size()] { (size) } }
                }
            }
            div.actions {
                button type="submit" { (language.text("keys.search")) }
                @if !page_state.search.is_empty() { a.button.secondary href=(with_region("/console/keys", console.region())) { (language.text("keys.clear")) } }
            }
        }
    }
}

fn keys_markup(state: &AppState, console: &Console, list: &KeyList, choices: &KeyFormChoices, page_state: &PageState) -> Markup {
    let (records, total) = (&list.records, list.total);
    let now = state.shared.clock.now_seconds();
    let warnings: Vec<Vec<KeyWarning>> =
        records.iter().map(|record| warnings_of(record, list.spends.get(&record.api_key_id).copied().unwrap_or_default(), now)).collect();
    let needing_attention = warnings.iter().filter(|warnings| !warnings.is_empty()).count();
    let region = console.region();
    let may_create = console.auth.caller.may_create_key(true);
    let disable_and_reset = state.region_policy(region).is_some_and(|policy| policy.disable_and_reset);
    let (create_values, create_errors) = match &page_state.create {
        Some((values, errors)) => (values.clone(), errors.clone()),
        None => (
            KeyFormValues::blank(choices.workspaces.first().map(|workspace| workspace.workspace_id.as_str()).unwrap_or("")),
            KeyFormErrors::default(),
        ),
    };
    let reopen_create = page_state.create.is_some();
    let next_offset = page_state.offset + records.len() as u32;
    let language = console.language;
    let columns = KEY_COLUMNS.map(|column| language.text(column));
    html! {
        div.page-head {
            div {
                h1 { (language.text("keys.heading")) }
                p.muted {
                    (choices.region_name) ". "
                    (language.text(if console.auth.caller.is_account() { "keys.account_sees" } else { "keys.user_sees" })) " "
                    (limit_text(state, console, total))
                }
            }
            div.page-actions {
                @match &may_create {
                    Ok(()) => { button #create-button type="button" data-open-dialog="create-dialog" { (language.text("keys.create")) } }
                    Err(denied) => {
                        button #create-button type="button" disabled aria-describedby="create-denied" { (language.text("keys.create")) }
                        p.denied #create-denied { (language.fill("keys.cannot_create", &[&denied.0])) }
                    }
                }
            }
        }
        @if !disable_and_reset {
            p.hint { (language.fill("keys.no_disable", &[&choices.region_name])) }
        }
        @if needing_attention > 0 {
            p.notice.notice-warning #keys-attention role="status" {
                strong { @if needing_attention == 1 { (language.text("keys.attention_one")) } @else { (language.fill("keys.attention_many", &[&needing_attention])) } }
                (language.fill("keys.attention_text", &[&BUDGET_WARNING_PERCENT]))
            }
        }
        p.visually-hidden #copy-status role="status" {}
        (search_form(console, page_state))
        @if records.is_empty() && page_state.search.is_empty() && page_state.offset == 0 {
            p.empty { (language.fill("keys.none_yet", &[&choices.region_name])) }
            (how_to_call_panel(state, console, &snippet_model(state, None, None, ""), ""))
        } @else if records.is_empty() {
            p.empty #keys-none-found { @if page_state.search.is_empty() { (language.text("keys.none_on_page")) } @else { (language.fill("keys.none_match", &[&page_state.search])) } }
        } @else {
            (records_table("keys", &language.fill("keys.table_caption", &[&choices.region_name]), &columns, html! {
                @for (record, warnings) in records.iter().zip(&warnings) {
                    (key_row(state, console, record, warnings, choices, page_state))
                }
            }))
        }
        @if total > 0 || page_state.offset > 0 {
            nav.pager aria-label=(language.text("keys.pages")) {
                span #keys-range {
                    @if records.is_empty() { (language.fill("keys.range_none", &[&total])) } @else { (language.fill("keys.range", &[&(page_state.offset + 1), &next_offset, &total])) }
                }
                @if page_state.offset > 0 {
                    a #keys-previous rel="prev" href=(page_state.list_link(region, page_state.offset.saturating_sub(page_state.page_size()))) { (language.text("keys.previous")) }
                }
                @if u64::from(next_offset) < total {
                    a #keys-next rel="next" href=(page_state.list_link(region, next_offset)) { (language.text("keys.next")) }
                }
            }
        }
        @if may_create.is_ok() {
            dialog.form-dialog #create-dialog aria-labelledby="create-dialog-title" open[reopen_create] data-show-on-load[reopen_create] {
                form #create-form method="post" action=(with_region("/console/keys", region)) novalidate {
                    (csrf_field(console))
                    h2 #create-dialog-title { (language.text("keys.create")) }
                    (key_form_fields("create", &create_values, &create_errors, choices, true))
                    div.actions {
                        button.secondary type="button" data-close-dialog { (language.text("keys.cancel")) }
                        button type="submit" { (language.text("keys.ok")) }
                    }
                }
            }
        }
        @if let Some(show_once) = &page_state.show_once {
            (show_once_markup(state, console, show_once))
        }
    }
}
