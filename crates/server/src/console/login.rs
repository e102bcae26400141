//! Signing in and out of the console: the account, or one of its RAM users, with a name
//! and password (checked by the same [`sessions::login`] as the API's login), and a session
//! cookie on success.

use axum::extract::{Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use keygate_core::random::random_bytes_32;
use maud::{html, Markup};
use secrecy::{ExposeSecret, SecretString};

use super::i18n::Language;
use super::layout::{bare_page, described_by, field_error};
use super::session::{
    cookie, cookie_header, csrf_token_matches, login_csrf_token, read_form, BrowserTransport, Console, ConsoleForm, ConsoleRejection,
    CSRF_FIELD, LOGIN_COOKIE, LOGIN_FORM_LIFETIME_SECONDS, SESSION_COOKIE,
};
use crate::operations::sessions::{self, Credentials};
use crate::operations::ErrorKind;
use crate::request_context::{new_request_id, RequestContext};
use crate::state::AppState;

/// What the login form shows again after a refusal (never the password).
#[derive(Debug, Default)]
struct LoginForm {
    account: String,
    user: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

fn login_markup(language: Language, form: &LoginForm, csrf_token: &str) -> Markup {
    let error_id = "login";
    html! {
        section.panel.login {
            h1 { (language.text("login.heading")) }
            p.hint { (language.text("login.hint")) }
            @if let Some(notice) = form.notice {
                p.notice.notice-success role="status" { (language.text(notice)) }
            }
            form method="post" action="/console/login" novalidate {
                input type="hidden" name=(CSRF_FIELD) value=(csrf_token);
                div.field {
                    label for="login-account" { (language.text("login.account")) }
                    input #login-account type="text" name="account" value=(form.account) autocomplete="organization" required autofocus[form.account.is_empty()];
                }
                div.field {
                    label for="login-user" { (language.text("login.user")) " " span.optional { (language.text("login.user_optional")) } }
                    input #login-user type="text" name="user" value=(form.user) autocomplete="username";
                }
                div.field {
                    label for="login-password" { (language.text("login.password")) }
                    input #login-password type="password" name="password" autocomplete="current-password" required
                        aria-invalid=[form.error.is_some().then_some("true")] aria-describedby=[described_by(error_id, false, form.error.is_some())]
                        autofocus[!form.account.is_empty()];
                    (field_error(error_id, form.error.as_deref()))
                }
                div.actions { button type="submit" { (language.text("login.submit")) } }
            }
        }
    }
}

/// The login page with a fresh form nonce (in the `keygate_login` cookie).
fn login_response(transport: BrowserTransport, language: Language, state: &AppState, status: StatusCode, form: &LoginForm) -> Response {
    let nonce = hex::encode(random_bytes_32());
    let csrf_token = login_csrf_token(state, &nonce);
    let cookie = cookie_header(transport, LOGIN_COOKIE, &nonce, LOGIN_FORM_LIFETIME_SECONDS);
    (
        status,
        AppendHeaders([(SET_COOKIE, cookie)]),
        bare_page(language, language.text("login.title"), login_markup(language, form, &csrf_token)),
    )
        .into_response()
}

/// `GET /console/login`; a caller already signed in goes to its keys.
pub(super) async fn login_page(
    State(state): State<AppState>,
    console: Result<Console, ConsoleRejection>,
    transport: BrowserTransport,
    headers: axum::http::HeaderMap,
    request_query: axum::extract::RawQuery,
) -> Response {
    if console.is_ok() {
        return Redirect::to("/console/keys").into_response();
    }
    let notice = match request_query.0.as_deref() {
        Some("signed-out") => Some("login.signed_out"),
        _ => None,
    };
    login_response(transport, Language::of_request(&headers), &state, StatusCode::OK, &LoginForm { notice, ..LoginForm::default() })
}

/// `POST /console/login`.
pub(super) async fn login(State(state): State<AppState>, request: Request) -> Result<Response, ConsoleRejection> {
    let context = request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| RequestContext { request_id: new_request_id(), client_address: None });
    let (parts, fields) = read_form(&state, request).await?;
    let transport = BrowserTransport::of(&parts.headers, &parts.extensions);
    let headers = parts.headers;
    let language = Language::of_request(&headers);
    let mut form = LoginForm {
        account: fields.get("account").unwrap_or("").trim().to_string(),
        user: fields.get("user").unwrap_or("").trim().to_string(),
        ..LoginForm::default()
    };
    let Some(nonce) = cookie(&headers, LOGIN_COOKIE) else {
        form.error = Some(language.text("login.expired").into());
        return Ok(login_response(transport, language, &state, StatusCode::BAD_REQUEST, &form));
    };
    if !csrf_token_matches(&login_csrf_token(&state, nonce), fields.get(CSRF_FIELD).unwrap_or("")) {
        tracing::warn!(request_id = %context.request_id, "console login refused: CSRF token missing or wrong");
        return Err(ConsoleRejection::CsrfRefused(language));
    }
    let password = SecretString::from(fields.get("password").unwrap_or("").to_string());
    if form.account.is_empty() || password.expose_secret().is_empty() {
        form.error = Some(language.text("login.missing").into());
        return Ok(login_response(transport, language, &state, StatusCode::BAD_REQUEST, &form));
    }
    let user = (!form.user.is_empty()).then_some(form.user.as_str());
    let credentials = Credentials { account: &form.account, user, password: &password };
    let operations = state.operations();
    let login =
        sessions::login(operations, &state.shared.login_throttle, credentials, context.client_address, &state.listener_region).await;
    let session = match login {
        Ok(session) => session,
        Err(error) if error.kind == ErrorKind::Unauthenticated => {
            form.error = Some(language.text("login.wrong").into());
            return Ok(login_response(transport, language, &state, StatusCode::UNAUTHORIZED, &form));
        }
        Err(error) if error.kind == ErrorKind::Throttled => {
            form.error = Some(error.message);
            return Ok(login_response(transport, language, &state, StatusCode::TOO_MANY_REQUESTS, &form));
        }
        Err(error) => return Err(ConsoleRejection::Internal(language, error)),
    };
    let lifetime_seconds = state.shared.settings.session_lifetime_seconds;
    let cookies = [
        (SET_COOKIE, cookie_header(transport, SESSION_COOKIE, session.token.expose_secret(), lifetime_seconds)),
        (SET_COOKIE, cookie_header(transport, LOGIN_COOKIE, "", 0)),
    ];
    Ok((AppendHeaders(cookies), Redirect::to("/console/keys")).into_response())
}

/// `POST /console/logout`: ends the session on the server and removes the cookie.
pub(super) async fn logout(
    State(state): State<AppState>,
    transport: BrowserTransport,
    form: ConsoleForm,
) -> Result<Response, ConsoleRejection> {
    let console = form.console;
    let operations = state.operations();
    sessions::logout(operations, &console.auth.actor(&operations), console.session_digest())
        .await
        .map_err(|error| ConsoleRejection::Internal(console.language, error))?;
    Ok((AppendHeaders([(SET_COOKIE, cookie_header(transport, SESSION_COOKIE, "", 0))]), Redirect::to("/console/login?signed-out"))
        .into_response())
}
