//! RAM users of the caller's account: list, create, look up, change role, disable, enable,
//! set a password, and delete for good (which deletes the user's API keys too), through
//! [`crate::operations::users`].

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use keygate_core::access::UserStatus;
use keygate_wire::keygate_api::{CreateUserRequest, Deleted, ListUsersResponse, SetPasswordRequest, SetRoleRequest, User, UserResponse};

use super::{json_body, parse_name, respond, Administrator, Result};
use crate::management::authentication::Authenticated;
use crate::operations::users::{self, parse_new_password, parse_role, NewUser};
use crate::operations::UserRecord;
use crate::planes::Path;
use crate::state::AppState;

/// A user as the API shows it; never the password hash.
fn user(record: &UserRecord) -> User {
    User {
        user_id: record.user_id,
        name: record.name.clone(),
        role: record.role.as_str().to_string(),
        status: record.status.as_str().to_string(),
        workspaces: record.workspace_ids.clone(),
        gmt_create: record.created_at,
    }
}

/// The answer of every call that reads or changes one user.
fn user_response(record: &UserRecord) -> UserResponse {
    UserResponse { user: user(record) }
}

pub(super) async fn list_users(State(state): State<AppState>, Administrator(auth): Administrator) -> Result<Response> {
    let outcome = async {
        let operations = state.operations();
        let users = users::list_users(operations, &auth.actor(&operations)).await?;
        Ok(ListUsersResponse { users: users.iter().map(user).collect() })
    }
    .await;
    respond(&auth, outcome)
}

pub(super) async fn create_user(State(state): State<AppState>, Administrator(auth): Administrator, body: Bytes) -> Result<Response> {
    let outcome = async {
        let request: CreateUserRequest = json_body(&body, r#"{"name", "role", "password"?}"#)?;
        let name = parse_name(&request.name)?;
        let role = parse_role(&request.role)?;
        let password = request.password.map(parse_new_password).transpose()?;
        let operations = state.operations();
        let user = users::create_user(operations, &auth.actor(&operations), NewUser { name, role, password }).await?;
        Ok(user_response(&user))
    }
    .await;
    respond(&auth, outcome)
}

pub(super) async fn get_user(State(state): State<AppState>, auth: Authenticated, Path(name): Path<String>) -> Result<Response> {
    let outcome = async {
        let name = parse_name(&name)?;
        let operations = state.operations();
        let user = users::get_user(operations, &auth.actor(&operations), &name).await?;
        Ok(user_response(&user))
    }
    .await;
    respond(&auth, outcome)
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
        let operations = state.operations();
        let user = users::set_role(operations, &auth.actor(&operations), &name, role).await?;
        Ok(user_response(&user))
    }
    .await;
    respond(&auth, outcome)
}

/// `POST .../disable` (`ACTIVE` false) and `POST .../enable` (`ACTIVE` true): one handler,
/// so that the two cannot drift apart.
pub(super) async fn set_user_active<const ACTIVE: bool>(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(name): Path<String>,
) -> Result<Response> {
    let outcome = async {
        let name = parse_name(&name)?;
        let status = if ACTIVE { UserStatus::Active } else { UserStatus::Disabled };
        let operations = state.operations();
        Ok(user_response(&users::set_status(operations, &auth.actor(&operations), &name, status).await?))
    }
    .await;
    respond(&auth, outcome)
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
        let operations = state.operations();
        let actor = auth.actor(&operations);
        users::may_set_password(&actor, &name)?;
        let request: SetPasswordRequest = json_body(&body, r#"{"password"}"#)?;
        let password = parse_new_password(request.password)?;
        let own_session = headers
            .get("x-acs-bearer-token")
            .and_then(|value| value.to_str().ok())
            .map(|token| crate::secrets::session_token_digest(token.trim()));
        let user = users::set_password(operations, &actor, &name, password, own_session.as_ref()).await?;
        Ok(user_response(&user))
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
        let operations = state.operations();
        users::delete_user(operations, &auth.actor(&operations), &name).await?;
        Ok(Deleted { deleted: true })
    }
    .await;
    respond(&auth, outcome)
}
