//! RAM users of the caller's account: list, create, look up, change role, disable, enable,
//! set a password, and delete for good (which deletes the user's API keys too), through
//! [`crate::operations::users`].

use axum::body::Bytes;
use keygate_core::access::UserStatus;
use keygate_wire::keygate_api::{CreateUserRequest, Deleted, ListUsersResponse, SetPasswordRequest, SetRoleRequest, User, UserResponse};

use super::{json_body, parse_name};
use crate::management::call::{Administrator, Answer, Call};
use crate::operations::users::{self, parse_new_password, parse_role, NewUser};
use crate::operations::UserRecord;
use crate::planes::Path;

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

pub(super) async fn list_users(Administrator(call): Administrator) -> Answer<ListUsersResponse> {
    let users = users::list_users(call.operations(), &call.actor()).await?;
    call.answer(ListUsersResponse { users: users.iter().map(user).collect() })
}

pub(super) async fn create_user(Administrator(call): Administrator, body: Bytes) -> Answer<UserResponse> {
    let request: CreateUserRequest = json_body(&body, r#"{"name", "role", "password"?}"#)?;
    let name = parse_name(&request.name)?;
    let role = parse_role(&request.role)?;
    let password = request.password.map(parse_new_password).transpose()?;
    let user = users::create_user(call.operations(), &call.actor(), NewUser { name, role, password }).await?;
    call.answer(user_response(&user))
}

pub(super) async fn get_user(call: Call, Path(name): Path<String>) -> Answer<UserResponse> {
    let name = parse_name(&name)?;
    let user = users::get_user(call.operations(), &call.actor(), &name).await?;
    call.answer(user_response(&user))
}

pub(super) async fn set_role(Administrator(call): Administrator, Path(name): Path<String>, body: Bytes) -> Answer<UserResponse> {
    let name = parse_name(&name)?;
    let request: SetRoleRequest = json_body(&body, r#"{"role"}"#)?;
    let role = parse_role(&request.role)?;
    let user = users::set_role(call.operations(), &call.actor(), &name, role).await?;
    call.answer(user_response(&user))
}

/// `POST .../disable` (`ACTIVE` false) and `POST .../enable` (`ACTIVE` true): one handler,
/// so that the two cannot drift apart.
pub(super) async fn set_user_active<const ACTIVE: bool>(
    Administrator(call): Administrator,
    Path(name): Path<String>,
) -> Answer<UserResponse> {
    let name = parse_name(&name)?;
    let status = if ACTIVE { UserStatus::Active } else { UserStatus::Disabled };
    call.answer(user_response(&users::set_status(call.operations(), &call.actor(), &name, status).await?))
}

/// A new password for another RAM user (administrators only; a caller changes its own
/// with `PUT /keygate/v1/password`, which asks for the current one). Every session of that
/// user ends: a stolen session does not outlive the password change.
pub(super) async fn set_password(call: Call, Path(name): Path<String>, body: Bytes) -> Answer<UserResponse> {
    let name = parse_name(&name)?;
    let actor = call.actor();
    users::may_set_password(&actor, &name)?;
    let request: SetPasswordRequest = json_body(&body, r#"{"password"}"#)?;
    let password = parse_new_password(request.password)?;
    let user = users::set_password(call.operations(), &actor, &name, password).await?;
    call.answer(user_response(&user))
}

pub(super) async fn delete_user(Administrator(call): Administrator, Path(name): Path<String>) -> Answer<Deleted> {
    let name = parse_name(&name)?;
    users::delete_user(call.operations(), &call.actor(), &name).await?;
    call.answer(Deleted { deleted: true })
}
