//! Sessions: logging in with a name and password (the one unauthenticated call), logging
//! out, and asking who the current caller is.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use keygate_core::access::{CallerIdentity, UserStatus};
use keygate_store::StoreError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{json_body, respond, Result};
use crate::management::authentication::Authenticated;
use crate::management::errors::{success, ManagementError};
use crate::request_body::read_body;
use crate::request_context::RequestContext;
use crate::secrets::{generate_session_token, session_token_digest, verify_password};
use crate::state::AppState;

#[derive(Deserialize)]
struct LoginRequest {
    account: String,
    #[serde(default)]
    user: Option<String>,
    password: String,
}

/// Checks a name and password from `client_address`; the same work is done whether or not
/// the name exists. An address that has failed `failed_logins_per_minute` times this minute
/// is answered 429 `Throttling` before any password is checked, so guessing from one
/// address runs at that rate whatever the guesses; a failure is counted against it.
pub async fn check_login(
    state: &AppState,
    account: &str,
    user: Option<&str>,
    password: &SecretString,
    client_address: Option<std::net::IpAddr>,
) -> Result<(i64, Option<i64>)> {
    let now = state.shared.clock.now_seconds();
    if let Some(seconds) = state.shared.login_throttle.retry_after(client_address, now) {
        let mut throttled = ManagementError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "Throttling",
            format!("Too many failed logins from this address; try again in {seconds} s."),
        );
        throttled.retry_after_milliseconds = std::num::NonZeroU64::new(seconds.saturating_mul(1000));
        return Err(throttled);
    }
    let outcome = check_password(state, account, user, password).await;
    if matches!(&outcome, Err(error) if error.code == "InvalidCredentials") {
        state.shared.login_throttle.record_failure(client_address, now);
    }
    outcome
}

async fn check_password(state: &AppState, account: &str, user: Option<&str>, password: &SecretString) -> Result<(i64, Option<i64>)> {
    let refused = || ManagementError::unauthenticated("InvalidCredentials", "The name or password is wrong.");
    let account_record = state.store().find_account(account).await?;
    let (stored_hash, identity) = match (&account_record, user) {
        (None, _) => (None, None),
        (Some(record), None) => (Some(record.password_hash.clone()), Some((record.account_id, None))),
        (Some(record), Some(user_name)) => match state.store().find_user(record.account_id, user_name).await {
            Ok(user) if user.status == UserStatus::Active => (user.password_hash.clone(), Some((record.account_id, Some(user.user_id)))),
            Ok(_) | Err(StoreError::NotFound(_)) => (None, None),
            Err(other) => return Err(other.into()),
        },
    };
    let password = password.clone();
    let verified =
        tokio::task::spawn_blocking(move || verify_password(&password, stored_hash.as_deref())).await.map_err(ManagementError::internal)?;
    match identity {
        Some(identity) if verified => Ok(identity),
        _ => Err(refused()),
    }
}

/// Largest login body: a name and a password fit many times over. The one body read
/// before anyone is authenticated, so it is small and under the body-read deadline.
pub const MAX_LOGIN_BODY_BYTES: usize = 16 * 1024;

pub(super) async fn login(State(state): State<AppState>, context: RequestContext, headers: HeaderMap, body: Body) -> Result<Response> {
    async {
        let body = read_body(&headers, body, MAX_LOGIN_BODY_BYTES, state.shared.settings.body_read_timeout()).await?;
        let request: LoginRequest = json_body(&body, r#"{"account", "user"?, "password"}"#)?;
        let password = SecretString::from(request.password);
        let (account_id, user_id) =
            check_login(&state, &request.account, request.user.as_deref(), &password, context.client_address).await?;
        let (token, digest) = generate_session_token();
        let expires_at = keygate_store::now_millis() + state.shared.settings.session_lifetime_seconds * 1000;
        let caller = state.store().caller(account_id, user_id).await?;
        let audit = Authenticated::login_audit(&state, caller.clone(), &digest, &context);
        state.store().create_session(&audit, &digest, user_id, expires_at).await?;
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
    .await
    .map_err(|error: ManagementError| error.with_request_id(&context.request_id))
}

/// The role shown for a caller: `account`, or the RAM user's role.
pub(super) fn caller_role(identity: &CallerIdentity) -> &'static str {
    match identity {
        CallerIdentity::Account => "account",
        CallerIdentity::RamUser { role, .. } => role.as_str(),
    }
}

pub(super) async fn logout(State(state): State<AppState>, auth: Authenticated, headers: HeaderMap) -> Result<Response> {
    let outcome = async {
        if let Some(token) = headers.get("x-acs-bearer-token").and_then(|value| value.to_str().ok()) {
            state.store().delete_session(&auth.audit(), &session_token_digest(token.trim())).await?;
        }
        Ok(json!({"loggedOut": true}))
    }
    .await;
    respond(&auth, outcome)
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
