//! keygate's own JSON API under `/keygate/v1/`, for what the Model Studio API does not
//! cover: sessions, RAM users, workspace membership, AccessKeys, the model catalog,
//! regions and the audit log. Errors use the same envelope as the Model Studio API.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, post};
use axum::Router;
use keygate_core::access::CallerIdentity;
use keygate_core::ids::PrincipalName;
use keygate_store::{AuditContext, StoreError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::authentication::Authenticated;
use super::errors::{success, ManagementError};
use crate::request_context::RequestContext;
use crate::secrets::{generate_session_token, session_token_digest, verify_password};
use crate::state::AppState;

/// Routes that need no authentication (logging in, the OpenAPI document).
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/keygate/v1/sessions", post(login))
        .route("/keygate/v1/openapi.json", axum::routing::get(super::openapi::openapi_document))
}

/// Routes behind the authentication middleware.
pub fn authenticated_routes() -> Router<AppState> {
    Router::new().route("/keygate/v1/sessions/current", delete(logout).get(whoami))
}

type Result<T> = std::result::Result<T, ManagementError>;

#[derive(Deserialize)]
struct LoginRequest {
    account: String,
    #[serde(default)]
    user: Option<String>,
    password: String,
}

/// Checks a name and password; the same work is done whether or not the name exists.
pub async fn check_login(state: &AppState, account: &str, user: Option<&str>, password: &SecretString) -> Result<(i64, Option<i64>)> {
    let refused = || ManagementError::unauthenticated("InvalidCredentials", "The name or password is wrong.");
    let account_record = state.store().find_account(account).await?;
    let (stored_hash, identity) = match (&account_record, user) {
        (None, _) => (None, None),
        (Some(record), None) => (Some(record.password_hash.clone()), Some((record.account_id, None))),
        (Some(record), Some(user_name)) => match state.store().find_user(record.account_id, user_name).await {
            Ok(user) if user.status == keygate_core::access::UserStatus::Active => (user.password_hash.clone(), Some((record.account_id, Some(user.user_id)))),
            Ok(_) | Err(StoreError::NotFound(_)) => (None, None),
            Err(other) => return Err(other.into()),
        },
    };
    let password = password.clone();
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, stored_hash.as_deref())).await.map_err(ManagementError::internal)?;
    match identity {
        Some(identity) if verified => Ok(identity),
        _ => Err(refused()),
    }
}

async fn login(State(state): State<AppState>, context: RequestContext, body: axum::body::Bytes) -> Result<Response> {
    async {
        let request: LoginRequest = serde_json::from_slice(&body).map_err(|error| ManagementError::invalid_parameter(format!("The body must be JSON {{\"account\", \"user\"?, \"password\"}}: {error}")))?;
        let password = SecretString::from(request.password);
        let (account_id, user_id) = check_login(&state, &request.account, request.user.as_deref(), &password).await?;
        let (token, digest) = generate_session_token();
        let expires_at = keygate_store::now_millis() + state.shared.settings.session_lifetime_seconds * 1000;
        let caller = state.store().caller(account_id, user_id).await?;
        let audit = AuditContext { account_id, actor: caller.display_name().to_string(), client_address: context.client_address_text(), region: state.listener_region.clone() };
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

fn caller_role(identity: &CallerIdentity) -> &'static str {
    match identity {
        CallerIdentity::Account => "account",
        CallerIdentity::RamUser { role, .. } => role.as_str(),
    }
}

async fn logout(State(state): State<AppState>, auth: Authenticated, headers: axum::http::HeaderMap) -> Result<Response> {
    if let Some(token) = headers.get("x-acs-bearer-token").and_then(|value| value.to_str().ok()) {
        state.store().delete_session(&auth.audit(), &session_token_digest(token.trim())).await.map_err(|error| ManagementError::from(error).with_request_id(auth.request_id()))?;
    }
    Ok(success(auth.request_id(), json!({"loggedOut": true})))
}

async fn whoami(auth: Authenticated) -> Result<Response> {
    let user = match &auth.caller.identity {
        CallerIdentity::Account => None,
        CallerIdentity::RamUser { name, .. } => Some(name.clone()),
    };
    Ok(success(auth.request_id(), json!({"account": auth.caller.account_name, "user": user, "role": caller_role(&auth.caller.identity), "region": auth.region})))
}

/// Parses a principal name from a request, as a 400 on failure.
pub fn parse_name(text: &str) -> Result<PrincipalName> {
    Ok(PrincipalName::parse(text)?)
}

/// Reads a JSON body into `T`, as a 400 on failure.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|error| ManagementError::invalid_parameter(format!("The body is not the expected JSON: {error}")))
}
