//! Workspace membership of RAM users and the applications of a workspace. A workspace id
//! names a workspace of the caller's account in the request's region; any other id is
//! answered 404 `Workspace.NotFound`.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use keygate_core::ids::{AppId, WorkspaceId};
use keygate_store::WorkspaceRecord;
use serde::Deserialize;
use serde_json::json;

use super::{json_body, parse_name, respond, Administrator, Result};
use crate::management::authentication::Authenticated;
use crate::management::errors::ManagementError;
use crate::planes::Path;
use crate::state::AppState;

/// Most characters in an application name.
pub const MAX_APPLICATION_NAME_CHARACTERS: usize = 64;

/// The workspace `text` names in the caller's account and the request's region.
async fn workspace_of_caller(state: &AppState, auth: &Authenticated, text: &str) -> Result<WorkspaceRecord> {
    // A malformed id cannot name a workspace: the same answer as an unknown one.
    let workspace_id = WorkspaceId::parse(text).map_err(|_| ManagementError::workspace_not_found())?;
    Ok(state.store().get_workspace(auth.caller.account_id, &auth.region, workspace_id.as_str()).await?)
}

/// An application name: 1 to 64 characters after trimming, no control characters.
fn parse_application_name(text: &str) -> Result<String> {
    let trimmed = text.trim();
    let count = trimmed.chars().count();
    if count == 0 || count > MAX_APPLICATION_NAME_CHARACTERS || trimmed.chars().any(char::is_control) {
        return Err(ManagementError::invalid_parameter(format!(
            "name must have 1 to {MAX_APPLICATION_NAME_CHARACTERS} printable characters."
        )));
    }
    Ok(trimmed.to_string())
}

/// Members: every RAM user for the default workspace, else those added to it.
pub(super) async fn list_members(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(workspace_id): Path<String>,
) -> Result<Response> {
    let outcome = async {
        let workspace = workspace_of_caller(&state, &auth, &workspace_id).await?;
        let users = state.store().list_users(auth.caller.account_id).await?;
        let members: Vec<_> = users
            .iter()
            .filter(|user| workspace.is_default || user.workspace_ids.contains(&workspace.workspace_id))
            .map(|user| json!({"name": user.name, "role": user.role.as_str(), "status": user.status.as_str()}))
            .collect();
        Ok(json!({"members": members}))
    }
    .await;
    respond(&auth, outcome)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMemberRequest {
    user: String,
}

pub(super) async fn add_member(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let outcome = async {
        let workspace = workspace_of_caller(&state, &auth, &workspace_id).await?;
        let request: AddMemberRequest = json_body(&body, r#"{"user"}"#)?;
        let name = parse_name(&request.user)?;
        state.store().add_workspace_member(&auth.audit(), &workspace.workspace_id, name.as_str()).await?;
        Ok(json!({"added": true}))
    }
    .await;
    respond(&auth, outcome)
}

pub(super) async fn remove_member(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path((workspace_id, name)): Path<(String, String)>,
) -> Result<Response> {
    let outcome = async {
        let workspace = workspace_of_caller(&state, &auth, &workspace_id).await?;
        let name = parse_name(&name)?;
        state.store().remove_workspace_member(&auth.audit(), &workspace.workspace_id, name.as_str()).await?;
        Ok(json!({"removed": true}))
    }
    .await;
    respond(&auth, outcome)
}

/// Applications: the account, admins, and members of the workspace may list them.
pub(super) async fn list_applications(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(workspace_id): Path<String>,
) -> Result<Response> {
    let outcome = async {
        let workspace = workspace_of_caller(&state, &auth, &workspace_id).await?;
        if let (Err(_), Some(user_id)) = (auth.caller.may_administer(), auth.caller.user_id()) {
            if !state.store().is_workspace_member(&workspace.workspace_id, user_id).await? {
                return Err(ManagementError::forbidden("You are not a member of this workspace."));
            }
        }
        let applications = state.store().list_applications(&workspace.workspace_id).await?;
        let items: Vec<_> = applications
            .iter()
            .map(|(app_id, name)| json!({"appId": app_id, "name": name, "workspaceId": workspace.workspace_id}))
            .collect();
        Ok(json!({"applications": items}))
    }
    .await;
    respond(&auth, outcome)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApplicationRequest {
    name: String,
}

pub(super) async fn create_application(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let outcome = async {
        let workspace = workspace_of_caller(&state, &auth, &workspace_id).await?;
        let request: CreateApplicationRequest = json_body(&body, r#"{"name"}"#)?;
        let name = parse_application_name(&request.name)?;
        let app_id = AppId::generate();
        state.store().create_application(&auth.audit(), &workspace.workspace_id, app_id.as_str(), &name).await?;
        Ok(json!({"application": {"appId": app_id.as_str(), "name": name, "workspaceId": workspace.workspace_id}}))
    }
    .await;
    respond(&auth, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_are_trimmed_and_bounded() {
        assert_eq!(parse_application_name("  Support bot ").unwrap(), "Support bot");
        assert!(parse_application_name(&"应".repeat(MAX_APPLICATION_NAME_CHARACTERS)).is_ok());
        for refused in ["", "   ", "tab\there", &"x".repeat(MAX_APPLICATION_NAME_CHARACTERS + 1)] {
            assert_eq!(parse_application_name(refused).unwrap_err().code, "InvalidParameter", "{refused:?}");
        }
    }
}
