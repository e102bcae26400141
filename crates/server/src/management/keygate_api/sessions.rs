//! Sessions: logging in with a name and password (the one unauthenticated call), logging
//! out, asking who the current caller is, and the caller changing its own password.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use keygate_core::access::CallerIdentity;
use keygate_wire::envelope::Success;
use keygate_wire::keygate_api::{
    ChangePasswordRequest, ChangePasswordResponse, LoginRequest, LoginResponse, LogoutResponse, WhoAmIResponse,
};
use secrecy::{ExposeSecret, SecretString};

use super::json_body;
use crate::management::call::{Answer, Call};
use crate::operations::sessions::{self, Credentials};
use crate::operations::users::{self, parse_new_password, PasswordChange};
use crate::request_body::read_body;
use crate::request_context::RequestContext;
use crate::secrets::session_token_digest;
use crate::state::AppState;

/// Largest login body: a name and a password fit many times over. The one body read
/// before anyone is authenticated, so it is small and under the body-read deadline.
pub const MAX_LOGIN_BODY_BYTES: usize = 16 * 1024;

pub(super) async fn login(State(state): State<AppState>, context: RequestContext, headers: HeaderMap, body: Body) -> Answer<LoginResponse> {
    let body = read_body((&headers).into(), body, MAX_LOGIN_BODY_BYTES, state.shared.settings.body_read_timeout()).await?;
    let request: LoginRequest = json_body(&body, r#"{"account", "user"?, "password"}"#)?;
    let password = SecretString::from(request.password);
    let credentials = Credentials { account: &request.account, user: request.user.as_deref(), password: &password };
    let operations = state.operations();
    let session =
        sessions::login(operations, &state.shared.login_throttle, credentials, context.client_address, &state.listener_region).await?;
    let (token, expires_at, caller) = (session.token, session.expires_at, session.caller);
    let answer = LoginResponse {
        token: token.expose_secret().to_string(),
        expires_at,
        role: caller_role(&caller.identity).to_string(),
        account: caller.account_name,
        user: request.user,
    };
    Ok(Json(Success::new(&context.request_id, answer)))
}

/// The role shown for a caller: `account`, or the RAM user's role.
pub(super) fn caller_role(identity: &CallerIdentity) -> &'static str {
    match identity {
        CallerIdentity::Account => "account",
        CallerIdentity::RamUser { role, .. } => role.as_str(),
    }
}

pub(super) async fn logout(call: Call, headers: HeaderMap) -> Answer<LogoutResponse> {
    if let Some(token) = headers.get("x-acs-bearer-token").and_then(|value| value.to_str().ok()) {
        sessions::logout(call.operations(), &call.actor(), &session_token_digest(token.trim())).await?;
    }
    call.answer(LogoutResponse { logged_out: true })
}

pub(super) async fn whoami(call: Call) -> Answer<WhoAmIResponse> {
    let auth = &call.auth;
    let user = match &auth.caller.identity {
        CallerIdentity::Account => None,
        CallerIdentity::RamUser { name, .. } => Some(name.clone()),
    };
    let answer = WhoAmIResponse {
        account: auth.caller.account_name.clone(),
        user,
        role: caller_role(&auth.caller.identity).to_string(),
        region: auth.region.to_string(),
    };
    call.answer(answer)
}

/// `PUT /keygate/v1/password`: the caller's own password, the current one required
/// ([`users::change_own_password`]). The new one is checked first, so that a malformed
/// request spends none of the address's failed logins; the session that sends the change
/// (its `x-acs-bearer-token`) stays signed in.
pub(super) async fn change_password(call: Call, headers: HeaderMap, body: Bytes) -> Answer<ChangePasswordResponse> {
    let request: ChangePasswordRequest = json_body(&body, r#"{"currentPassword", "newPassword"}"#)?;
    let change = PasswordChange { current: SecretString::from(request.current_password), new: parse_new_password(request.new_password)? };
    let own_session =
        headers.get("x-acs-bearer-token").and_then(|value| value.to_str().ok()).map(|token| session_token_digest(token.trim()));
    let sessions_ended = users::change_own_password(
        call.operations(),
        &call.actor(),
        &call.state.shared.login_throttle,
        call.auth.context.client_address,
        change,
        own_session.as_ref(),
    )
    .await?;
    call.answer(ChangePasswordResponse { changed: true, sessions_ended })
}
