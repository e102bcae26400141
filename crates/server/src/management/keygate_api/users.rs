//! RAM users of the caller's account: list, create, look up, change role, disable, enable,
//! set a password, and delete for good (which deletes the user's API keys too).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use keygate_core::access::{Caller, CallerIdentity, Role, UserStatus};
use keygate_store::UserRecord;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, parse_name, respond, Administrator, Result};
use crate::management::authentication::Authenticated;
use crate::management::errors::ManagementError;
use crate::management::form::shown;
use crate::planes::Path;
use crate::secrets::hash_password;
use crate::state::AppState;

/// Fewest characters in a password set through the API.
pub const MIN_PASSWORD_CHARACTERS: usize = 8;
/// Most characters in a password set through the API.
pub const MAX_PASSWORD_CHARACTERS: usize = 256;

/// A user as the API shows it; never the password hash.
pub(super) fn user_json(user: &UserRecord) -> Value {
    json!({
        "userId": user.user_id,
        "name": user.name,
        "role": user.role.as_str(),
        "status": user.status.as_str(),
        "workspaces": user.workspace_ids,
        "gmtCreate": user.created_at,
    })
}

pub(crate) fn parse_role(text: &str) -> Result<Role> {
    Role::parse(text)
        .ok_or_else(|| ManagementError::invalid_parameter(format!("role must be admin, key-manager or member, got '{}'.", shown(text))))
}

/// A password to set: 8 to 256 characters. The refusal never repeats the password.
pub(crate) fn parse_new_password(text: String) -> Result<SecretString> {
    let count = text.chars().count();
    if !(MIN_PASSWORD_CHARACTERS..=MAX_PASSWORD_CHARACTERS).contains(&count) {
        return Err(ManagementError::invalid_parameter(format!(
            "password must have {MIN_PASSWORD_CHARACTERS} to {MAX_PASSWORD_CHARACTERS} characters, got {count}."
        )));
    }
    Ok(SecretString::from(text))
}

/// Hashes a password off the async runtime (argon2id is deliberately slow).
pub(crate) async fn hash_off_runtime(password: SecretString) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(ManagementError::internal)
}

/// The account and admins may act on any user; a RAM user on itself.
fn may_act_on_user(caller: &Caller, name: &str) -> Result<()> {
    match &caller.identity {
        CallerIdentity::RamUser { name: own_name, .. } if own_name == name => Ok(()),
        _ => Ok(caller.may_administer()?),
    }
}

pub(super) async fn list_users(State(state): State<AppState>, Administrator(auth): Administrator) -> Result<Response> {
    let outcome = async {
        let users = state.store().list_users(auth.caller.account_id).await?;
        Ok(json!({"users": users.iter().map(user_json).collect::<Vec<_>>()}))
    }
    .await;
    respond(&auth, outcome)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    name: String,
    role: String,
    #[serde(default)]
    password: Option<String>,
}

pub(super) async fn create_user(State(state): State<AppState>, Administrator(auth): Administrator, body: Bytes) -> Result<Response> {
    let outcome = async {
        let request: CreateUserRequest = json_body(&body, r#"{"name", "role", "password"?}"#)?;
        let name = parse_name(&request.name)?;
        let role = parse_role(&request.role)?;
        let password_hash = match request.password {
            None => None,
            Some(password) => Some(hash_off_runtime(parse_new_password(password)?).await?),
        };
        let user = state.store().create_user(&auth.audit(), name.as_str(), role, password_hash.as_deref()).await?;
        Ok(json!({"user": user_json(&user)}))
    }
    .await;
    respond(&auth, outcome)
}

pub(super) async fn get_user(State(state): State<AppState>, auth: Authenticated, Path(name): Path<String>) -> Result<Response> {
    let outcome = async {
        let name = parse_name(&name)?;
        may_act_on_user(&auth.caller, name.as_str())?;
        let user = state.store().find_user(auth.caller.account_id, name.as_str()).await?;
        Ok(json!({"user": user_json(&user)}))
    }
    .await;
    respond(&auth, outcome)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRoleRequest {
    role: String,
}

pub(super) async fn set_role(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let outcome = async {
        let name = parse_name(&name)?;
        let request: SetRoleRequest = json_body(&body, r#"{"role"}"#)?;
        let role = parse_role(&request.role)?;
        let user = state.store().set_user_role(&auth.audit(), name.as_str(), role).await?;
        Ok(json!({"user": user_json(&user)}))
    }
    .await;
    respond(&auth, outcome)
}

async fn set_status(state: &AppState, auth: &Authenticated, name: &str, status: UserStatus) -> Result<Value> {
    let name = parse_name(name)?;
    let user = state.store().set_user_status(&auth.audit(), name.as_str(), status).await?;
    Ok(json!({"user": user_json(&user)}))
}

pub(super) async fn disable_user(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(name): Path<String>,
) -> Result<Response> {
    let outcome = set_status(&state, &auth, &name, UserStatus::Disabled).await;
    respond(&auth, outcome)
}

pub(super) async fn enable_user(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(name): Path<String>,
) -> Result<Response> {
    let outcome = set_status(&state, &auth, &name, UserStatus::Active).await;
    respond(&auth, outcome)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPasswordRequest {
    password: String,
}

/// A new password for a RAM user. Every other session of that user ends (a stolen session
/// does not outlive the password change); the session that made the change, if it is the
/// user's own, stays.
pub(super) async fn set_password(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let outcome = async {
        let name = parse_name(&name)?;
        may_act_on_user(&auth.caller, name.as_str())?;
        let request: SetPasswordRequest = json_body(&body, r#"{"password"}"#)?;
        let password_hash = hash_off_runtime(parse_new_password(request.password)?).await?;
        let own_session = headers
            .get("x-acs-bearer-token")
            .and_then(|value| value.to_str().ok())
            .map(|token| crate::secrets::session_token_digest(token.trim()));
        let user = state.store().set_user_password(&auth.audit(), name.as_str(), &password_hash, own_session.as_ref()).await?;
        Ok(json!({"user": user_json(&user)}))
    }
    .await;
    respond(&auth, outcome)
}

pub(super) async fn delete_user(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(name): Path<String>,
) -> Result<Response> {
    let outcome = async {
        let name = parse_name(&name)?;
        state.store().delete_user(&auth.audit(), name.as_str()).await?;
        Ok(json!({"deleted": true}))
    }
    .await;
    respond(&auth, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn caller(identity: CallerIdentity) -> Caller {
        Caller { account_id: 1, account_name: "root".into(), identity, credential: Default::default() }
    }

    fn ram(name: &str, role: Role) -> Caller {
        caller(CallerIdentity::RamUser { user_id: 7, name: name.into(), role, status: UserStatus::Active })
    }

    #[test]
    fn passwords_are_bounded_and_never_echoed() {
        assert_eq!(parse_new_password("12345678".into()).unwrap().expose_secret(), "12345678");
        assert!(parse_new_password("密".repeat(MAX_PASSWORD_CHARACTERS)).is_ok());
        for refused in ["short-1", "", &"x".repeat(MAX_PASSWORD_CHARACTERS + 1)] {
            let error = parse_new_password(refused.to_string()).unwrap_err();
            assert_eq!(error.code, "InvalidParameter");
            assert!(refused.is_empty() || !error.message.contains(refused), "{}", error.message);
        }
    }

    #[test]
    fn a_ram_user_may_act_on_itself_and_only_admins_on_others() {
        assert!(may_act_on_user(&caller(CallerIdentity::Account), "bob").is_ok());
        assert!(may_act_on_user(&ram("alice", Role::Admin), "bob").is_ok());
        assert!(may_act_on_user(&ram("alice", Role::Member), "alice").is_ok());
        assert_eq!(may_act_on_user(&ram("alice", Role::KeyManager), "bob").unwrap_err().code, "Forbidden");
    }
}
