//! Workspace members and applications (`/keygate/v1/workspaces/{workspaceId}/...`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A RAM user that is a member of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Member {
    pub name: String,
    /// `admin`, `key-manager` or `member`.
    pub role: String,
    /// `active` or `disabled`.
    pub status: String,
}

/// `GET /keygate/v1/workspaces/{workspaceId}/members`: every RAM user for the default
/// workspace, else those added to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListMembersResponse {
    pub members: Vec<Member>,
}

/// `POST /keygate/v1/workspaces/{workspaceId}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// The RAM user's name.
    pub user: String,
}

/// The answer of adding a member: `{"added": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberAdded {
    pub added: bool,
}

/// The answer of removing a member: `{"removed": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberRemoved {
    pub removed: bool,
}

/// An application of a workspace, which keys with an app scope may call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub app_id: String,
    pub name: String,
    pub workspace_id: String,
}

/// `GET /keygate/v1/workspaces/{workspaceId}/applications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListApplicationsResponse {
    pub applications: Vec<Application>,
}

/// `POST /keygate/v1/workspaces/{workspaceId}/applications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplicationRequest {
    /// 1 to 64 printable characters after trimming.
    pub name: String,
}

/// The answer of creating an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApplicationResponse {
    pub application: Application,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_and_applications_have_exactly_their_fields() {
        let members = ListMembersResponse { members: vec![Member { name: "a".into(), role: "member".into(), status: "active".into() }] };
        assert_eq!(serde_json::to_value(members).unwrap(), json!({"members": [{"name": "a", "role": "member", "status": "active"}]}));
        let application = Application { app_id: "app-1".into(), name: "bot".into(), workspace_id: "llm-0123456789abcdef".into() };
        assert_eq!(
            serde_json::to_value(ApplicationResponse { application }).unwrap(),
            json!({"application": {"appId": "app-1", "name": "bot", "workspaceId": "llm-0123456789abcdef"}})
        );
        assert_eq!(serde_json::to_value(MemberAdded { added: true }).unwrap(), json!({"added": true}));
        assert_eq!(serde_json::to_value(MemberRemoved { removed: true }).unwrap(), json!({"removed": true}));
    }
}
