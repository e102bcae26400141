//! What every page with forms shares: how it is shown (loaded for the caller, then
//! rendered in the console frame), the caller acting as an administrator, and how the page
//! answers an action. A finished action redirects to the page with `?done=<what>`, which
//! the page shows as a notice (so reloading it repeats nothing); a refused one answers the
//! page again with the reason on top, or the error page for an internal error.

use std::future::Future;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;

use super::i18n::Language;
use super::layout::{error_page, page, with_region, Notice, Section};
use super::session::Console;
use crate::management::errors::ManagementError;
use crate::management::form::FormFields;
use crate::operations::{Actor, Operations};
use crate::state::AppState;

/// A page of the console that answers the actions of its own forms; `Self` is what the
/// page shows besides what it loads (a form sent back with its errors, a show-once dialog),
/// and its `Default` shows nothing of that.
pub trait FormPage: Default + Send + Sync {
    /// Where a finished action redirects, and where the error page leads back to.
    const SECTION: Section;
    /// What the page loads for the caller each time it is shown.
    type Loaded: Send;

    /// Loads what the page shows; a refusal (a caller who may not see the page) answers
    /// the error page.
    fn load(&self, state: &AppState, console: &Console) -> impl Future<Output = Result<Self::Loaded, ManagementError>> + Send;

    /// The page's body.
    fn markup(&self, state: &AppState, console: &Console, loaded: Self::Loaded) -> Markup;
}

/// `page_state`'s page answering `status`, with `notice` on top, inside the console frame.
pub async fn render<Page: FormPage>(
    state: &AppState,
    console: &Console,
    status: StatusCode,
    notice: Option<Notice>,
    page_state: Page,
) -> Response {
    match page_state.load(state, console).await {
        Ok(loaded) => {
            let body = page_state.markup(state, console, loaded);
            (status, page(state, console, Page::SECTION, notice.as_ref(), body)).into_response()
        }
        Err(error) => error_page(state, console, Page::SECTION, &error),
    }
}

/// `GET` of a page: the page, saying what the action that redirected here did.
pub async fn show<Page: FormPage>(State(state): State<AppState>, console: Console, RawQuery(query): RawQuery) -> Response {
    let notice = done_notice(console.language, Page::SECTION, &query_fields(query.as_deref()));
    render(&state, &console, StatusCode::OK, notice, Page::default()).await
}

/// What a finished action says on the page it redirects to: its section, its `done`, the
/// message key of the text.
const DONE_NOTICES: &[(Section, &str, &str)] = &[
    (Section::Keys, "edited", "done.keys.edited"),
    (Section::Keys, "disabled", "done.keys.disabled"),
    (Section::Keys, "enabled", "done.keys.enabled"),
    (Section::Keys, "deleted", "done.keys.deleted"),
    (Section::Keys, "grace-ended", "done.keys.grace_ended"),
    (Section::Users, "created", "done.users.created"),
    (Section::Users, "disabled", "done.users.disabled"),
    (Section::Users, "enabled", "done.users.enabled"),
    (Section::Users, "deleted", "done.users.deleted"),
    (Section::Users, "access-key-deleted", "done.users.access_key_deleted"),
    (Section::Workspaces, "created", "done.workspaces.created"),
    (Section::Workspaces, "models", "done.workspaces.models"),
    (Section::Workspaces, "model-granted", "done.workspaces.model_granted"),
    (Section::Workspaces, "model-revoked", "done.workspaces.model_revoked"),
    (Section::Workspaces, "member-added", "done.workspaces.member_added"),
    (Section::Workspaces, "member-removed", "done.workspaces.member_removed"),
    (Section::Workspaces, "application", "done.workspaces.application"),
    (Section::Password, "changed", "done.password.changed"),
];

/// A page's query string as fields; one that does not parse counts as empty.
pub fn query_fields(query: Option<&str>) -> FormFields {
    FormFields::parse(query.unwrap_or(""), "query string").unwrap_or_default()
}

/// The notice of the `done` a page of `section` was redirected with, if it names one of
/// its actions.
pub fn done_notice(language: Language, section: Section, query: &FormFields) -> Option<Notice> {
    let done = query.get_non_empty("done")?;
    DONE_NOTICES
        .iter()
        .find(|(notice_section, notice_done, _)| *notice_section == section && *notice_done == done)
        .map(|(_, _, key)| Notice::Success(language.text(key).to_string()))
}

/// The caller, who must be the account or an admin RAM user: the operations and the caller
/// as their actor.
pub fn acting_as_administrator<'a>(state: &'a AppState, console: &Console) -> Result<(Operations<'a>, Actor), ManagementError> {
    console.auth.caller.may_administer()?;
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    Ok((operations, actor))
}

/// A refused action: the page again with the reason on top (internal errors: the error page).
pub async fn refused<Page: FormPage>(state: &AppState, console: &Console, error: ManagementError) -> Response {
    if error.status.is_server_error() {
        return error_page(state, console, Page::SECTION, &error);
    }
    render(state, console, error.status, Some(Notice::Error(error.message)), Page::default()).await
}

/// The redirect after a finished action: the page in the caller's region, saying `done`.
pub fn redirect_done(console: &Console, section: Section, done: &str) -> Response {
    Redirect::to(&format!("{}&done={done}", with_region(section.path(), console.region()))).into_response()
}

/// After an action: the page again saying `done` (what the action returned is not shown),
/// or saying why it was not.
pub async fn finish<Page: FormPage, Returned>(
    state: &AppState,
    console: &Console,
    outcome: Result<Returned, ManagementError>,
    done: &str,
) -> Response {
    match outcome {
        Ok(_) => redirect_done(console, Page::SECTION, done),
        Err(error) => refused::<Page>(state, console, error).await,
    }
}
