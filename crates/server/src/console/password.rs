//! The Password page, for every signed-in caller (the account and every RAM user): change
//! your own password, the current one required. The checks and the change are the API's
//! (`PUT /keygate/v1/password`): the new password parsed by the same function as at
//! creation, then [`crate::operations::users::change_own_password`], which checks the
//! current one like a login (and counts a wrong one as a failed login) and ends every
//! other session of the caller. The session that made the change stays signed in.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use secrecy::{ExposeSecret, SecretString};

use super::layout::{csrf_field, described_by, error_page, field_error, page, Notice, Section};
use super::page_actions::{done_notice, query_fields, redirect_done};
use super::session::{Console, ConsoleForm};
use crate::management::errors::ManagementError;
use crate::operations::users::{self, parse_new_password, PasswordChange};
use crate::operations::ErrorKind;
use crate::state::AppState;

/// The form's errors by field (the form never comes back with a password in it).
#[derive(Debug, Default)]
struct PasswordForm {
    current_error: Option<String>,
    new_error: Option<String>,
    repeat_error: Option<String>,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(Section::Password.path(), get(show).post(change))
}

/// `GET /console/password`.
async fn show(State(state): State<AppState>, console: Console, RawQuery(query): RawQuery) -> Response {
    let notice = done_notice(console.language, Section::Password, &query_fields(query.as_deref()));
    answer(&state, &console, StatusCode::OK, notice, &PasswordForm::default())
}

/// `POST /console/password`: the current password, the new one and the new one again.
async fn change(State(state): State<AppState>, form: ConsoleForm) -> Response {
    let console = form.console;
    let field = |name: &str| form.fields.get(name).unwrap_or("").to_string();
    let mut errors = PasswordForm::default();
    let current = SecretString::from(field("current_password"));
    if current.expose_secret().is_empty() {
        errors.current_error = Some(console.language.text("password.enter_current").into());
    }
    let repeated = SecretString::from(field("repeat_password"));
    let new = match parse_new_password(field("new_password")) {
        Ok(new) if new.expose_secret() != repeated.expose_secret() => {
            errors.repeat_error = Some(console.language.text("password.differ").into());
            None
        }
        Ok(new) => Some(new),
        Err(error) => {
            errors.new_error = Some(capitalised(&error.message));
            None
        }
    };
    let (Some(new), None) = (new, &errors.current_error) else {
        return answer(&state, &console, StatusCode::BAD_REQUEST, None, &errors);
    };
    let operations = state.operations();
    let actor = console.auth.actor(&operations);
    let change = PasswordChange { current, new };
    let throttle = &state.shared.login_throttle;
    let client_address = console.auth.context.client_address;
    let outcome = users::change_own_password(operations, &actor, throttle, client_address, change, Some(console.session_digest())).await;
    match outcome {
        Ok(_) => redirect_done(&console, Section::Password, "changed"),
        Err(error) if error.kind == ErrorKind::Forbidden => {
            errors.current_error = Some(error.message.clone());
            answer(&state, &console, StatusCode::FORBIDDEN, None, &errors)
        }
        Err(error) if error.kind == ErrorKind::Throttled => {
            answer(&state, &console, StatusCode::TOO_MANY_REQUESTS, Some(Notice::Error(error.message)), &errors)
        }
        Err(error) => error_page(&state, &console, Section::Password, &ManagementError::from(error)),
    }
}

fn capitalised(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

fn answer(state: &AppState, console: &Console, status: StatusCode, notice: Option<Notice>, form: &PasswordForm) -> Response {
    (status, page(state, console, Section::Password, notice.as_ref(), markup(console, form))).into_response()
}

/// One password field with its label, hint and error.
fn password_field(id: &str, name: &str, label: &str, autocomplete: &str, hint: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) type="password" name=(name) autocomplete=(autocomplete) required
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described_by(id, hint.is_some(), error.is_some())];
            @if let Some(hint) = hint { p.hint id={ (id) "-hint" } { (hint) } }
            (field_error(id, error))
        }
    }
}

fn markup(console: &Console, form: &PasswordForm) -> Markup {
    let text = |key| console.language.text(key);
    html! {
        section.panel {
            h1 { (text("password.heading")) }
            p.hint { (text("password.hint")) }
            form #password-form method="post" action=(Section::Password.path()) novalidate {
                (csrf_field(console))
                (password_field("current-password", "current_password", text("password.current"), "current-password", None, form.current_error.as_deref()))
                (password_field("new-password", "new_password", text("password.new"), "new-password", Some(text("password.new_hint")), form.new_error.as_deref()))
                (password_field("repeat-password", "repeat_password", text("password.repeat"), "new-password", None, form.repeat_error.as_deref()))
                div.actions { button type="submit" { (text("password.submit")) } }
            }
        }
    }
}
