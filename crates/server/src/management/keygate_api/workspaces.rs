//! Workspace membership of RAM users and the applications of a workspace. A workspace id
//! names a workspace of the caller's account in the request's region; any other id is
//! answered 404 `Workspace.NotFound`.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use keygate_wire::keygate_api::{
    AddMemberRequest, Application, ApplicationResponse, CreateApplicationRequest, ListApplicationsResponse, ListMembersResponse, Member,
    MemberAdded, MemberRemoved,
};
use serde::de::DeserializeOwned;

use super::{json_body, parse_name, respond, Administrator, Result};
use crate::management::authentication::Authenticated;
use crate::management::errors::ManagementError;
use crate::operations::workspaces::{self, application_name, find_workspace, MAX_APPLICATION_NAME_CHARACTERS};
use crate::operations::{Actor, Operations, WorkspaceRecord};
use crate::planes::Path;
use crate::state::AppState;

/// The operations, the caller as their actor, and the workspace `workspace_id` names in the
/// caller's account and the request's region.
async fn workspace_of_caller<'a>(
    state: &'a AppState,
    auth: &Authenticated,
    workspace_id: &str,
) -> Result<(Operations<'a>, Actor, WorkspaceRecord)> {
    let operations = state.operations();
    let actor = auth.actor(&operations);
    let workspace = find_workspace(operations, &actor, workspace_id).await?;
    Ok((operations, actor, workspace))
}

/// [`workspace_of_caller`], then the request body read as `Request` (`expected` names its
/// shape): an unknown workspace is a 404 whatever the body.
async fn workspace_and_request<'a, Request: DeserializeOwned>(
    state: &'a AppState,
    auth: &Authenticated,
    workspace_id: &str,
    body: &[u8],
    expected: &str,
) -> Result<(Operations<'a>, Actor, WorkspaceRecord, Request)> {
    let (operations, actor, workspace) = workspace_of_caller(state, auth, workspace_id).await?;
    let request = json_body(body, expected)?;
    Ok((operations, actor, workspace, request))
}

/// An application name: 1 to 64 characters after trimming, no control characters.
fn parse_application_name(text: &str) -> Result<String> {
    application_name(text).ok_or_else(|| {
        ManagementError::invalid_parameter(format!("name must have 1 to {MAX_APPLICATION_NAME_CHARACTERS} printable characters."))
    })
}

/// Members: every RAM user for the default workspace, else those added to it.
pub(super) async fn list_members(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(workspace_id): Path<String>,
) -> Result<Response> {
    let outcome = async {
        let (operations, actor, workspace) = workspace_of_caller(&state, &auth, &workspace_id).await?;
        let users = workspaces::members(operations, &actor, &workspace).await?;
        let members = users
            .iter()
            .map(|user| Member { name: user.name.clone(), role: user.role.as_str().to_string(), status: user.status.as_str().to_string() })
            .collect();
        Ok(ListMembersResponse { members })
    }
    .await;
    respond(&auth, outcome)
}

pub(super) async fn add_member(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let outcome = async {
        let (operations, actor, workspace, request): (_, _, _, AddMemberRequest) =
            workspace_and_request(&state, &auth, &workspace_id, &body, r#"{"user"}"#).await?;
        let name = parse_name(&request.user)?;
        workspaces::change_membership(operations, &actor, &workspace, name.as_str(), true).await?;
        Ok(MemberAdded { added: true })
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
        let (operations, actor, workspace) = workspace_of_caller(&state, &auth, &workspace_id).await?;
        let name = parse_name(&name)?;
        workspaces::change_membership(operations, &actor, &workspace, name.as_str(), false).await?;
        Ok(MemberRemoved { removed: true })
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
        let (operations, actor, workspace) = workspace_of_caller(&state, &auth, &workspace_id).await?;
        let applications = workspaces::applications(operations, &actor, &workspace).await?;
        let applications = applications
            .iter()
            .map(|(app_id, name)| Application {
                app_id: app_id.to_string(),
                name: name.to_string(),
                workspace_id: workspace.workspace_id.clone(),
            })
            .collect();
        Ok(ListApplicationsResponse { applications })
    }
    .await;
    respond(&auth, outcome)
}

pub(super) async fn create_application(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let outcome = async {
        let (operations, actor, workspace, request): (_, _, _, CreateApplicationRequest) =
            workspace_and_request(&state, &auth, &workspace_id, &body, r#"{"name"}"#).await?;
        let name = parse_application_name(&request.name)?;
        let app_id = workspaces::create_application(operations, &actor, &workspace, &name).await?;
        Ok(ApplicationResponse {
            application: Application { app_id: app_id.as_str().to_string(), name, workspace_id: workspace.workspace_id },
        })
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
