//! The web console at `/console`: Model Studio's API-Key page, self-hosted. Server-rendered
//! HTML (maud) with one stylesheet and one small script, no JavaScript build step.
//!
//! - [`session`]: login sessions in an `HttpOnly; SameSite=Strict` cookie, and the CSRF
//!   token every form carries; the extractors that make both checks unskippable.
//! - [`login`]: sign in (the account or a RAM user) and out.
//! - [`keys`] and [`key_form`]: the API-Key page; changes go through
//!   [`crate::operations::keys`], the code the Model Studio API runs.
//! - [`how_to_call`]: the base URL of each protocol and snippets that call a model with a
//!   key, shown after a key is created and on an empty key list.
//! - [`key_page`]: each key's page, with its limits and its usage panel; [`key_limits`]:
//!   a key's limits and budget shown, its warnings (a banner on its page, badges in the key
//!   list) and the form that changes its limits; [`usage`]: the Usage page, the
//!   caller's usage over time, top keys and models and cost; [`charts`]: the SVG charts
//!   both draw on the server.
//! - [`users`], [`workspaces`], [`audit`]: the pages for the account and admin RAM users.
//! - [`password`]: every signed-in caller changes its own password (linked from the header
//!   of every page).
//! - [`page_actions`]: what the pages with forms share: a page loaded and rendered through
//!   [`page_actions::FormPage`], acting as an administrator, the redirect that says what
//!   was done, the page again with a refusal.
//! - [`layout`]: the shared frame and helpers; [`assets`]: the CSS and JS; [`i18n`]: the
//!   languages (English, Chinese), their message tables and the switch.
//!
//! Every answer carries `Cache-Control: no-store` and a Content-Security-Policy that allows
//! only the console's own script and stylesheet.

mod assets;
mod audit;
mod charts;
mod how_to_call;
pub mod i18n;
mod key_form;
mod key_limits;
mod key_page;
mod keys;
mod layout;
mod login;
mod page_actions;
mod password;
pub mod session;
mod usage;
mod users;
mod workspaces;

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::http::HeaderValue;
use axum::middleware::{from_fn, Next};
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::state::AppState;

/// What the console's pages may load: their own script and stylesheet, nothing else.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, all under `/console`; each page module adds its page and the
/// actions of its forms.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(keys::home))
        .route("/console/", get(keys::home))
        .route("/console/assets/console.css", get(assets::stylesheet))
        .route("/console/assets/console.js", get(assets::script))
        .route("/console/login", get(login::login_page).post(login::login))
        .route("/console/logout", post(login::logout))
        .route("/console/language", get(i18n::switch_language))
        .route("/console/audit", get(audit::audit_page))
        .merge(keys::routes())
        .merge(key_page::routes())
        .merge(usage::routes())
        .merge(users::routes())
        .merge(workspaces::routes())
        .merge(password::routes())
        .layer(from_fn(security_headers))
        // Logs the internal failures behind the console's error pages, once, with the request id.
        .layer(from_fn(crate::management::boundary::answer_errors))
}

/// The routes of the forms that act on one item (a key, a user, a workspace): each posts to
/// `<item_path>/<action>`, the URL its page builds from the item and the action's name.
fn item_actions<const COUNT: usize>(item_path: &str, actions: [(&str, MethodRouter<AppState>); COUNT]) -> Router<AppState> {
    actions.into_iter().fold(Router::new(), |router, (action, handler)| router.route(&format!("{item_path}/{action}"), handler))
}

/// Adds the console's security headers; pages (which may hold a new key) are never stored.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
