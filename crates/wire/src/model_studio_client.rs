//! The answers of the Model Studio API (`/modelstudio/...`) as the CLI reads them: the
//! fields it shows, each optional where some operations leave it out (Reset answers
//! fewer fields than Create). To be merged with `model_studio.rs`, the server's types of
//! the same API, into one set of types both sides use.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The permissions of a key: `All`, or `Custom` with its lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiKeyAuth {
    /// `All` or `Custom`.
    #[serde(rename = "type")]
    pub permission_type: String,
    pub access_ips: Vec<String>,
    pub model_access_scope: ModelAccessScope,
    pub app_access_scope: AppAccessScope,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ModelAccessScope {
    pub allow_all_models: bool,
    pub accessible_models: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct AppAccessScope {
    pub allow_all_apps: bool,
    pub accessible_apps: Vec<String>,
}

/// An API key as Create, Reset, Get and List answer it. `apiKeyValue` is the plaintext in
/// the answers of Create and Reset (and Get of an imported key for those who may see it),
/// the masked key elsewhere.
// No `Debug`: it may hold a plaintext.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiKey {
    pub api_key_id: i64,
    pub api_key_value: Option<String>,
    pub masked_key: Option<String>,
    pub auth: Option<ApiKeyAuth>,
    pub created_by: Option<String>,
    pub description: Option<String>,
    /// 1 when disabled, 0 when enabled.
    pub disabled: Option<i32>,
    /// Epoch milliseconds.
    pub gmt_create: Option<i64>,
    pub workspace_id: Option<String>,
    pub workspace_name: Option<String>,
    pub region: Option<String>,
    /// `secure`, `classic` or `legacy`.
    pub format: Option<String>,
    /// Epoch milliseconds.
    pub last_used_at: Option<i64>,
    pub request_count: Option<i64>,
    /// An imported (legacy) key, to be replaced by a new one.
    pub replace_advised: Option<bool>,
}

/// The answer of CreateApiKey, GetApiKey and ResetApiKey.
// No `Debug`: see [`ApiKey`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyResponse {
    pub api_key: ApiKey,
}

/// A page of ListApiKeys; `Item` is [`ApiKey`], or a JSON value to pass the page on as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListApiKeysResponse<Item = ApiKey> {
    pub api_keys: Vec<Item>,
    pub total_count: u64,
    /// Empty on the last page.
    #[serde(default)]
    pub next_token: String,
}

/// A workspace of the account in the request's region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Workspace {
    pub workspace_id: String,
    pub workspace_name: String,
    pub region: String,
    /// Epoch milliseconds.
    pub gmt_create: Option<i64>,
    pub is_default: bool,
}

/// The answer of CreateWorkspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceResponse {
    pub workspace: Workspace,
}

/// A page of ListWorkspaces; `Item` as in [`ListApiKeysResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListWorkspacesResponse<Item = Workspace> {
    pub workspaces: Vec<Item>,
    pub total_count: u64,
    #[serde(default)]
    pub next_token: String,
}

/// The answer of DeleteWorkspace: deleted, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteWorkspaceResponse {
    pub is_deleted: bool,
    #[serde(default)]
    pub fail_reasons: Vec<FailReason>,
}

/// Why a workspace was not deleted, e.g. it still has keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailReason {
    pub reason: String,
    pub resource_type: String,
}

/// A model and what a workspace may do with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelPermission {
    pub model: String,
    pub name: String,
    pub demo: bool,
    pub permissions: ModelPermissionFlags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPermissionFlags {
    pub inference: bool,
    pub deploy: bool,
    pub fine_tune: bool,
}

/// A page of ListModelPermissions; `Item` as in [`ListApiKeysResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListModelPermissionsResponse<Item = ModelPermission> {
    pub list: Vec<Item>,
    pub total_count: u64,
    #[serde(default)]
    pub next_token: String,
}

/// The answer of the operations that say nothing but success (UpdateApiKey, Disable,
/// Enable, Delete, UpdateModelPermissions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NoFields {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_listed_key_reads_with_its_permissions_and_a_reset_key_with_fewer_fields() {
        let listed: ListApiKeysResponse = serde_json::from_value(json!({
            "apiKeys": [{"apiKeyId": 4, "apiKeyValue": "sk-ws-Ab****yz", "maskedKey": "sk-ws-Ab****yz", "disabled": 1,
                         "auth": {"type": "Custom", "accessIps": ["10.0.0.0/8"],
                                  "modelAccessScope": {"allowAllModels": false, "accessibleModels": ["qwen-plus"]},
                                  "appAccessScope": {"allowAllApps": true, "accessibleApps": []}},
                         "lastUsedAt": null, "replaceAdvised": false}],
            "totalCount": 1, "maxResults": 100, "nextToken": ""
        }))
        .unwrap();
        let key = &listed.api_keys[0];
        assert_eq!((key.api_key_id, key.disabled, key.last_used_at), (4, Some(1), None));
        assert_eq!(key.auth.as_ref().unwrap().model_access_scope.accessible_models, ["qwen-plus"]);
        let reset: ApiKeyResponse = serde_json::from_value(
            json!({"apiKey": {"apiKeyId": 4, "apiKeyValue": "sk-ws-new", "workspaceId": "llm-0123456789abcdef", "maskedKey": "m"}}),
        )
        .unwrap();
        assert_eq!((reset.api_key.description, reset.api_key.auth), (None, None));
    }

    #[test]
    fn a_refused_workspace_deletion_reads_with_its_reasons() {
        let refused: DeleteWorkspaceResponse =
            serde_json::from_value(json!({"isDeleted": false, "failReasons": [{"reason": "has keys", "resourceType": "ApiKey"}]})).unwrap();
        assert_eq!(refused.fail_reasons, [FailReason { reason: "has keys".into(), resource_type: "ApiKey".into() }]);
    }
}
