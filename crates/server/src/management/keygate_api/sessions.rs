//! Sessions: logging in with a name and password (the one unauthenticated call), logging
//! out, and asking who the current caller is.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use keygate_core::access::CallerIdentity;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{json_body, respond, Result};
use crate::management::authentication::Authenticated;
use crate::management::errors::success;
use crate::operations::sessions::{self, Credentials};
use crate::request_body::read_body;
use crate::request_context::RequestContext;
use crate::secrets::session_token_digest;
use crate::state::AppState;

#[derive(Deserialize)]
struct LoginRequest {
    account: String,
    #[serde(default)]
    user: Option<String>,
    password: String,
}

/// Largest login body: a name and a password fit many times over. The one body read
/// before anyone is authenticated, so it is small and under the body-read deadline.
pub const MAX_LOGIN_BODY_BYTES: usize = 16 * 1024;

pub(super) async fn login(State(state): State<AppState>, context: RequestContext, headers: HeaderMap, body: Body) -> Result<Response> {
    let body = read_body(&headers, body, MAX_LOGIN_BODY_BYTES, state.shared.settings.body_read_timeout()).await?;
    let request: LoginRequest = json_body(&body, r#"{"account", "user"?, "password"}"#)?;
    let password = SecretString::from(request.password);
    let credentials = Credentials { account: &request.account, user: request.user.as_deref(), password: &password };
    let operations = state.operations();
    let session =
        sessions::login(operations, &state.shared.login_throttle, credentials, context.client_address, &state.listener_region).await?;
    let (token, expires_at, caller) = (session.token, session.expires_at, session.caller);
    Ok(success(
        &context.request_id,
        json!({
            "token": token.expose_secret(),
            "expiresAt": expires_at,
            "account": caller.account_name,
            "user": request.user,
            "role": caller_role(&caller.identity),
        }),
    ))
}

/// The role shown for a caller: `account`, or the RAM user's role.
pub(super) fn caller_role(identity: &CallerIdentity) -> &'static str {
    match identity {
        CallerIdentity::Account => "account",
        CallerIdentity::RamUser { role, .. } => role.as_str(),
    }
}

pub(super) async fn logout(State(state): State<AppState>, auth: Authenticated, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = headers.get("x-acs-bearer-token").and_then(|value| value.to_str().ok()) {
        let operations = state.operations();
        sessions::logout(operations, &auth.actor(&operations), &session_token_digest(token.trim())).await?;
    }
    respond(&auth, Ok(json!({"loggedOut": true})))
}

pub(super) async fn whoami(auth: Authenticated) -> Result<Response> {
    let user = match &auth.caller.identity {
        CallerIdentity::Account => None,
        CallerIdentity::RamUser { name, .. } => Some(name.clone()),
    };
    respond(
        &auth,
        Ok(json!({"account": auth.caller.account_name, "user": user, "role": caller_role(&auth.caller.identity), "region": auth.region})),
    )
}
