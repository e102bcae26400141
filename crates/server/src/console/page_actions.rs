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
    let notice = done_notice(Page::SECTION, &query_fields(query.as_deref()));
    render(&state, &console, StatusCode::OK, notice, Page::default()).await
}

/// What a finished action says on the page it redirects to: its section, its `done`, the text.
const DONE_NOTICES: &[(Section, &str, &str)] = &[
    (Section::Keys, "edited", "The API key was saved."),
    (Section::Keys, "disabled", "The API key was disabled: calls with it are refused until you enable it."),
    (Section::Keys, "enabled", "The API key was enabled."),
    (Section::Keys, "deleted", "The API key was deleted."),
    (Section::Keys, "grace-ended", "The grace period was ended: the old secret no longer works."),
    (Section::Users, "created", "The user was created."),
    (Section::Users, "disabled", "The user was disabled: it cannot sign in, and its API keys stop working until it is enabled."),
    (Section::Users, "enabled", "The user was enabled."),
    (Section::Users, "deleted", "The user was deleted, with its API keys and AccessKeys."),
    (Section::Users, "access-key-deleted", "The AccessKey was deleted."),
    (Section::Workspaces, "created", "The workspace was created."),
    (Section::Workspaces, "models", "The workspace's models were saved."),
    (Section::Workspaces, "model-granted", "The model was granted: the workspace's keys may call it."),
    (Section::Workspaces, "model-revoked", "The model was revoked: the workspace's keys' calls for it are refused."),
    (Section::Workspaces, "member-added", "The user was added to the workspace."),
    (Section::Workspaces, "member-removed", "The user was removed from the workspace: its keys there stop working."),
    (Section::Workspaces, "application", "The application was added."),
];

/// A page's query string as fields; one that does not parse counts as empty.
pub fn query_fields(query: Option<&str>) -> FormFields {
    FormFields::parse(query.unwrap_or(""), "query string").unwrap_or_default()
}

/// The notice of the `done` a page of `section` was redirected with, if it names one of
/// its actions.
pub fn done_notice(section: Section, query: &FormFields) -> Option<Notice> {
    let done = query.get_non_empty("done")?;
    DONE_NOTICES
        .iter()
        .find(|(notice_section, notice_done, _)| *notice_section == section && *notice_done == done)
        .map(|(_, _, text)| Notice::Success(text.to_string()))
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
