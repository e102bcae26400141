//! Workspace membership of RAM users and the applications of a workspace. A workspace id
//! names a workspace of the caller's account in the request's region; any other id is
//! answered 404 `Workspace.NotFound`.

use axum::body::Bytes;
use keygate_wire::keygate_api::{
    AddMemberRequest, Application, ApplicationResponse, CreateApplicationRequest, ListApplicationsResponse, ListMembersResponse, Member,
    MemberAdded, MemberRemoved,
};
use serde::de::DeserializeOwned;

use super::{json_body, parse_name, Result};
use crate::management::call::{Administrator, Answer, Call};
use crate::management::errors::ManagementError;
use crate::operations::workspaces::{self, application_name, find_workspace, MAX_APPLICATION_NAME_CHARACTERS};
use crate::operations::{Actor, WorkspaceRecord};
use crate::planes::Path;

/// The caller as the actor of its operations, and the workspace `workspace_id` names in the
/// caller's account and the request's region.
async fn workspace_of_caller(call: &Call, workspace_id: &str) -> Result<(Actor, WorkspaceRecord)> {
    let actor = call.actor();
    let workspace = find_workspace(call.operations(), &actor, workspace_id).await?;
    Ok((actor, workspace))
}

/// [`workspace_of_caller`], then the request body read as `Request` (`expected` names its
/// shape): an unknown workspace is a 404 whatever the body.
async fn workspace_and_request<Request: DeserializeOwned>(
    call: &Call,
    workspace_id: &str,
    body: &[u8],
    expected: &str,
) -> Result<(Actor, WorkspaceRecord, Request)> {
    let (actor, workspace) = workspace_of_caller(call, workspace_id).await?;
    let request = json_body(body, expected)?;
    Ok((actor, workspace, request))
}

/// An application name: 1 to 64 characters after trimming, no control characters.
fn parse_application_name(text: &str) -> Result<String> {
    application_name(text).ok_or_else(|| {
        ManagementError::invalid_parameter(format!("name must have 1 to {MAX_APPLICATION_NAME_CHARACTERS} printable characters."))
    })
}

/// Members: every RAM user for the default workspace, else those added to it.
pub(super) async fn list_members(Administrator(call): Administrator, Path(workspace_id): Path<String>) -> Answer<ListMembersResponse> {
    let (actor, workspace) = workspace_of_caller(&call, &workspace_id).await?;
    let users = workspaces::members(call.operations(), &actor, &workspace).await?;
    let members = users
        .iter()
        .map(|user| Member { name: user.name.clone(), role: user.role.as_str().to_string(), status: user.status.as_str().to_string() })
        .collect();
    call.answer(ListMembersResponse { members })
}

pub(super) async fn add_member(Administrator(call): Administrator, Path(workspace_id): Path<String>, body: Bytes) -> Answer<MemberAdded> {
    let (actor, workspace, request): (_, _, AddMemberRequest) = workspace_and_request(&call, &workspace_id, &body, r#"{"user"}"#).await?;
    let name = parse_name(&request.user)?;
    workspaces::change_membership(call.operations(), &actor, &workspace, name.as_str(), true).await?;
    call.answer(MemberAdded { added: true })
}

pub(super) async fn remove_member(
    Administrator(call): Administrator,
    Path((workspace_id, name)): Path<(String, String)>,
) -> Answer<MemberRemoved> {
    let (actor, workspace) = workspace_of_caller(&call, &workspace_id).await?;
    let name = parse_name(&name)?;
    workspaces::change_membership(call.operations(), &actor, &workspace, name.as_str(), false).await?;
    call.answer(MemberRemoved { removed: true })
}

/// Applications: the account, admins, and members of the workspace may list them.
pub(super) async fn list_applications(call: Call, Path(workspace_id): Path<String>) -> Answer<ListApplicationsResponse> {
    let (actor, workspace) = workspace_of_caller(&call, &workspace_id).await?;
    let applications = workspaces::applications(call.operations(), &actor, &workspace).await?;
    let applications = applications
        .iter()
        .map(|(app_id, name)| Application {
            app_id: app_id.to_string(),
            name: name.to_string(),
            workspace_id: workspace.workspace_id.clone(),
        })
        .collect();
    call.answer(ListApplicationsResponse { applications })
}

pub(super) async fn create_application(
    Administrator(call): Administrator,
    Path(workspace_id): Path<String>,
    body: Bytes,
) -> Answer<ApplicationResponse> {
    let (actor, workspace, request): (_, _, CreateApplicationRequest) =
        workspace_and_request(&call, &workspace_id, &body, r#"{"name"}"#).await?;
    let name = parse_application_name(&request.name)?;
    let app_id = workspaces::create_application(call.operations(), &actor, &workspace, &name).await?;
    call.answer(ApplicationResponse {
        application: Application { app_id: app_id.as_str().to_string(), name, workspace_id: workspace.workspace_id },
    })
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
