//! The requests and answers of the Model Studio API (`/modelstudio/...`,
//! docs/CONTRACT.md#management-api) as the official SDK sends and reads them: camelCase
//! names, the answers inside the camelCase [`crate::envelope::Success`]. The server writes
//! the answers with these types and the CLI reads them with the same ones; a List answer
//! is [`Paged`], so that a client reads every page of it alike, and its item type is a
//! parameter, so that a client may take the items as the JSON the server sent.
//!
//! Requests arrive as query strings and form bodies, not JSON; each request type holds an
//! operation's parameters once the server has read and checked them (the names are the
//! wire's). The `auth.*` form fields of CreateApiKey and UpdateApiKey are not among them:
//! they are read by the key operations themselves, after the key and its workspace are
//! known, so that a caller learns nothing about a key it cannot see from the order of its
//! refusals.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A list's page as the List operations take it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageRequest {
    /// 1 to 100; 10 when absent.
    pub max_results: Option<u32>,
    /// Where the page starts: a `nextToken` this server answered before.
    pub next_token: Option<u32>,
}

/// CreateApiKey (`POST /modelstudio/apikeys`): the query's parameters; the key's
/// permissions come in the form body's `auth.*` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateApiKeyRequest {
    /// The default workspace of the region when absent.
    pub workspace_id: Option<String>,
    #[serde(default)]
    pub description: String,
    /// keygate's extension (docs/CONTRACT.md#expiry-and-grace-periods): when the key stops
    /// working, an RFC 3339 time or Unix seconds in the future; never when absent.
    pub keygate_expires_at: Option<String>,
    /// keygate's extension (docs/CONTRACT.md#per-key-limits): the key's limits, a JSON
    /// object as text; none when absent.
    pub keygate_limits: Option<String>,
}

/// The sort key of ListApiKeys (`orderBy`, matched in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiKeyOrder {
    #[serde(rename = "apiKeyId")]
    ApiKeyId,
    #[serde(rename = "gmtCreate")]
    GmtCreate,
}

/// The direction of ListApiKeys (`order`, matched in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SortOrder {
    #[serde(rename = "ASC")]
    Ascending,
    #[serde(rename = "DESC")]
    Descending,
}

/// ListApiKeys (`GET /modelstudio/apikeys`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListApiKeysRequest {
    #[serde(flatten)]
    pub page: PageRequest,
    /// `apiKeyId` when absent.
    pub order_by: Option<ApiKeyOrder>,
    /// `DESC` when absent.
    pub order: Option<SortOrder>,
    pub api_key_id: Option<i64>,
    pub description: Option<String>,
    pub workspace_id: Option<String>,
}

/// GetApiKey, DeleteApiKey, DisableApiKey, EnableApiKey and ResetApiKey: the key in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyIdRequest {
    pub api_key_id: i64,
}

/// UpdateApiKey (`PUT /modelstudio/apikeys/{apiKeyId}`): the key in the path, a new
/// description in the query (unchanged when absent); permissions in the form body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateApiKeyRequest {
    pub api_key_id: i64,
    pub description: Option<String>,
    /// keygate's extension: a new expiry (an RFC 3339 time or Unix seconds in the future),
    /// or `never` to remove it; unchanged when absent.
    pub keygate_expires_at: Option<String>,
    /// keygate's extension: the key's new limits, a JSON object as text that replaces them
    /// all (`{}`: none); unchanged when absent.
    pub keygate_limits: Option<String>,
}

/// ResetApiKey (`PUT /modelstudio/apikeys/{apiKeyId}/reset`): the key in the path, and
/// keygate's extension `keygateGraceSeconds` in the query: how long the old secret keeps
/// working beside the new one (0 to 86400; 0 or absent: it stops at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetApiKeyRequest {
    pub api_key_id: i64,
    /// An integer as text, judged once the key is known to be the caller's.
    pub keygate_grace_seconds: Option<String>,
}

/// An API key's permission mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AuthType {
    All,
    Custom,
}

impl AuthType {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::All => "All",
            AuthType::Custom => "Custom",
        }
    }
}

/// Which models a key may call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelAccessScope {
    pub allow_all_models: bool,
    pub accessible_models: Vec<String>,
}

/// Which applications a key may call (a keygate extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppAccessScope {
    pub allow_all_apps: bool,
    pub accessible_apps: Vec<String>,
}

/// An API key's `auth` object: its permission mode, address allow-list and scopes. A key
/// of type `All` answers an empty allow-list and both scopes open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuth {
    #[serde(rename = "type")]
    pub auth_type: AuthType,
    pub access_ips: Vec<String>,
    pub model_access_scope: ModelAccessScope,
    pub app_access_scope: AppAccessScope,
}

/// An API key as the API answers it. Every answer has the first four fields; CreateApiKey,
/// GetApiKey and ListApiKeys add [`ApiKeyDetails`], GetApiKey and ListApiKeys add
/// [`ApiKeyStanding`] too, and ResetApiKey answers the four alone.
// No `Debug`: it may hold a plaintext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub api_key_id: i64,
    /// The plaintext when the key was just created or reset (and a legacy key's on
    /// GetApiKey, docs/CONTRACT.md#key-formats); otherwise the masked key.
    pub api_key_value: String,
    pub workspace_id: String,
    pub masked_key: String,
    #[serde(flatten)]
    pub details: Option<ApiKeyDetails>,
    #[serde(flatten)]
    pub standing: Option<ApiKeyStanding>,
}

/// What a key is: who made it, where, with which permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDetails {
    pub created_by: String,
    pub description: String,
    /// Milliseconds since the epoch.
    pub gmt_create: i64,
    pub workspace_name: String,
    pub auth: ApiKeyAuth,
    /// `secure`, `classic`, `legacy` or `plan`.
    pub format: String,
    pub region: String,
    /// keygate's extension: when the key stops working, milliseconds since the epoch;
    /// `null` when it never expires.
    #[serde(default)]
    pub keygate_expires_at: Option<i64>,
    /// keygate's extension: the key's own limits (docs/CONTRACT.md#per-key-limits); `null`
    /// when it has none.
    #[serde(default)]
    pub keygate_limits: Option<crate::keygate_api::KeyLimits>,
}

/// How a key stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyStanding {
    /// 1 when disabled, 0 when not.
    pub disabled: i32,
    /// Milliseconds since the epoch; `null` when never used.
    pub last_used_at: Option<i64>,
    pub request_count: i64,
    /// An imported (legacy) key, to be replaced by a new one.
    pub replace_advised: bool,
    /// keygate's extension, named so that no field Model Studio adds can clash with it: the
    /// key's calls, tokens and cost over the retained usage (`usage_retention_days`), as far
    /// as the nodes have flushed them (docs/CONTRACT.md#key-fields). Zero when an older
    /// server leaves it out, so that the rest of the key is still read.
    #[serde(default)]
    pub keygate_usage: crate::keygate_api::UsageFigures,
    /// keygate's extension: true once the key's `keygateExpiresAt` has passed.
    #[serde(default)]
    pub keygate_expired: bool,
    /// keygate's extension: after a reset with a grace period, when the old secret stops
    /// working (milliseconds since the epoch); `null` when no old secret works.
    #[serde(default)]
    pub keygate_grace_ends_at: Option<i64>,
    /// keygate's extension: where the key's budget stands in its current period; `null`
    /// when it has no budget.
    #[serde(default)]
    pub keygate_budget: Option<crate::keygate_api::KeyBudgetStanding>,
}

/// CreateApiKey, GetApiKey and ResetApiKey: one key.
// No `Debug`: see [`ApiKey`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyResponse {
    pub api_key: ApiKey,
}

/// The paging fields of every List answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageResponse {
    /// Of every page, not only this one.
    pub total_count: u64,
    pub max_results: u32,
    /// Where the next page starts; empty on the last page.
    #[serde(default)]
    pub next_token: String,
}

/// A page of a List answer, as a client reads every page of the list.
pub trait Paged {
    type Item;
    fn page(&self) -> &PageResponse;
    fn into_items(self) -> Vec<Self::Item>;
}

/// A List answer is [`Paged`]: its paging fields are `page`, its items the field named.
macro_rules! paged {
    ($($list:ident: $items:ident),* $(,)?) => {$(
        impl<Item> Paged for $list<Item> {
            type Item = Item;
            fn page(&self) -> &PageResponse {
                &self.page
            }
            fn into_items(self) -> Vec<Item> {
                self.$items
            }
        }
    )*};
}

paged!(ListApiKeysResponse: api_keys, ListWorkspacesResponse: workspaces, ListModelPermissionsResponse: list);

/// ListApiKeys. `Item` is [`ApiKey`], or a JSON value to pass the items on as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ListApiKeysResponse")]
pub struct ListApiKeysResponse<Item = ApiKey> {
    pub api_keys: Vec<Item>,
    #[serde(flatten)]
    pub page: PageResponse,
}

/// ListWorkspaces (`GET /modelstudio/workspaces`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListWorkspacesRequest {
    #[serde(flatten)]
    pub page: PageRequest,
    pub workspace_id: Option<String>,
    pub workspace_name: Option<String>,
}

/// CreateWorkspace (`POST /modelstudio/workspaces`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateWorkspaceRequest {
    pub workspace_name: String,
}

/// DeleteWorkspace (`DELETE /modelstudio/workspaces/{workspaceId}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteWorkspaceRequest {
    pub workspace_id: String,
}

/// A workspace as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub workspace_id: String,
    pub workspace_name: String,
    pub region: String,
    /// The region again, as the SDK's name for it.
    pub service_site: String,
    /// The `Host` the request was sent to.
    pub api_host: String,
    /// Milliseconds since the epoch.
    pub gmt_create: i64,
    pub is_default: bool,
}

/// ListWorkspaces. `Item` as in [`ListApiKeysResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ListWorkspacesResponse")]
pub struct ListWorkspacesResponse<Item = Workspace> {
    pub workspaces: Vec<Item>,
    #[serde(flatten)]
    pub page: PageResponse,
}

/// CreateWorkspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceResponse {
    pub workspace: Workspace,
}

/// Why a workspace was not deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailReason {
    pub reason: String,
    pub resource_type: String,
}

/// DeleteWorkspace: deleted, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteWorkspaceResponse {
    pub is_deleted: bool,
    #[serde(default)]
    pub fail_reasons: Vec<FailReason>,
}

/// ListModelPermissions (`GET /modelstudio/models/permissions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListModelPermissionsRequest {
    #[serde(flatten)]
    pub page: PageRequest,
    /// The default workspace of the region when absent.
    #[serde(rename = "workspaceId")]
    pub workspace_id: Option<String>,
    /// Models whose name contains this.
    #[serde(rename = "filter.model")]
    pub model_filter: Option<String>,
    /// Models whose display name contains this, in any case.
    #[serde(rename = "filter.name")]
    pub name_filter: Option<String>,
    /// `inference`, `deploy` or `finetune` (any case): models the workspace may use so.
    #[serde(rename = "modelAction")]
    pub model_action: Option<String>,
}

/// What a workspace may do with a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPermissions {
    pub inference: bool,
    pub deploy: bool,
    pub fine_tune: bool,
}

/// One model of the catalog with a workspace's permissions on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPermission {
    pub model: String,
    /// The display name.
    pub name: String,
    /// Answered by keygate's built-in demo upstream.
    pub demo: bool,
    pub permissions: ModelPermissions,
}

/// ListModelPermissions. `Item` as in [`ListApiKeysResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ListModelPermissionsResponse")]
pub struct ListModelPermissionsResponse<Item = ModelPermission> {
    pub list: Vec<Item>,
    #[serde(flatten)]
    pub page: PageResponse,
    /// Always empty; the SDK reads it.
    #[serde(default)]
    pub error_message: String,
}

/// One model of UpdateModelPermissions (`models.N.model`, `models.N.inference`, ...; a flag
/// not sent is false).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelGrantRequest {
    pub model: String,
    #[serde(flatten)]
    pub permissions: ModelPermissions,
}

/// UpdateModelPermissions (`POST /modelstudio/models/permissions`): the form body's fields,
/// or the query's when the body has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateModelPermissionsRequest {
    pub workspace_id: String,
    /// Inference on every model of the catalog, before `models` (which may narrow it).
    pub access_all_entities: Option<bool>,
    /// `models.1`, `models.2`, ... in order.
    pub models: Vec<ModelGrantRequest>,
}

/// UpdateModelPermissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateModelPermissionsResponse {
    /// Always empty; the SDK reads it.
    pub error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Empty, Success};
    use serde_json::{json, Value};

    /// `captured` read as `T` and written again is the same JSON: no field renamed, none
    /// lost, none added, `null` kept where it was.
    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(captured: Value) -> T {
        let typed: T = serde_json::from_value(captured.clone()).expect("the captured body reads as the type");
        assert_eq!(serde_json::to_value(&typed).unwrap(), captured);
        typed
    }

    fn envelope(fields: Value) -> Value {
        let mut body = json!({"requestId": "8A1F0C2E-0000-0000-0000-000000000001", "code": "Success", "message": "", "httpStatusCode": 200, "success": true});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        body
    }

    fn all_auth() -> Value {
        json!({"type": "All", "accessIps": [], "modelAccessScope": {"allowAllModels": true, "accessibleModels": []}, "appAccessScope": {"allowAllApps": true, "accessibleApps": []}})
    }

    #[test]
    fn a_key_without_keygate_usage_keeps_its_standing() {
        // As an older server answers it.
        let listed = json!({"apiKeyId": 1, "apiKeyValue": "sk-ws-****abcd", "workspaceId": "llm-default", "maskedKey": "sk-ws-****abcd",
            "disabled": 1, "lastUsedAt": null, "requestCount": 0, "replaceAdvised": false});
        let key: ApiKey = serde_json::from_value(listed).unwrap();
        let standing = key.standing.expect("the standing is read");
        assert_eq!((standing.disabled, standing.keygate_usage), (1, crate::keygate_api::UsageFigures::default()));
    }

    #[test]
    fn the_three_shapes_of_an_api_key_round_trip() {
        let created = envelope(json!({"apiKey": {
            "apiKeyId": 12, "apiKeyValue": "sk-ws-plaintext", "createdBy": "root", "description": "demo", "gmtCreate": 1767225600000_i64,
            "workspaceId": "llm-default", "workspaceName": "Default", "auth": all_auth(), "format": "secure", "maskedKey": "sk-ws-****abcd",
            "region": "ap-southeast-1", "keygateExpiresAt": 1798761600000_i64, "keygateLimits": null,
        }}));
        let typed: Success<ApiKeyResponse> = round_trip(created);
        assert!(typed.body.api_key.details.is_some() && typed.body.api_key.standing.is_none());
        assert_eq!(typed.body.api_key.details.map(|details| details.keygate_expires_at), Some(Some(1798761600000)));

        let listed = envelope(json!({
            "apiKeys": [{
                "apiKeyId": 12, "apiKeyValue": "sk-ws-****abcd", "auth": {"type": "Custom", "accessIps": ["10.0.0.0/8"],
                    "modelAccessScope": {"allowAllModels": false, "accessibleModels": ["qwen-plus"]},
                    "appAccessScope": {"allowAllApps": true, "accessibleApps": []}},
                "createdBy": "alice", "description": "", "disabled": 0, "gmtCreate": 1767225600000_i64, "workspaceId": "llm-default",
                "workspaceName": "Default", "region": "ap-southeast-1", "format": "legacy", "maskedKey": "sk-****abcd",
                "lastUsedAt": null, "requestCount": 0, "replaceAdvised": true,
                "keygateUsage": {"requests": 2, "inputTokens": 30, "outputTokens": 12, "cachedTokens": 0, "reasoningTokens": 0,
                    "totalTokens": 42, "cost": "0.000054", "currency": "USD", "unpriced": false},
                "keygateExpiresAt": null, "keygateExpired": false, "keygateGraceEndsAt": 1767229200000_i64,
                "keygateLimits": null, "keygateBudget": null,
            }],
            "totalCount": 1, "maxResults": 10, "nextToken": "",
        }));
        let typed: Success<ListApiKeysResponse> = round_trip(listed);
        assert_eq!(typed.body.api_keys[0].standing.as_ref().map(|standing| standing.last_used_at), Some(None));
        assert_eq!(typed.body.api_keys[0].standing.as_ref().map(|standing| standing.keygate_usage.total_tokens), Some(42));
        assert_eq!(typed.body.api_keys[0].standing.as_ref().and_then(|standing| standing.keygate_grace_ends_at), Some(1767229200000));
        // An older server's answer, without keygate's expiry fields, still reads.
        let older = json!({"apiKeyId": 12, "apiKeyValue": "sk-ws-****abcd", "workspaceId": "llm-default", "maskedKey": "sk-ws-****abcd",
            "createdBy": "root", "description": "", "gmtCreate": 1, "workspaceName": "Default", "auth": all_auth(), "format": "secure",
            "region": "ap-southeast-1", "disabled": 0, "lastUsedAt": null, "requestCount": 0, "replaceAdvised": false});
        let older: ApiKey = serde_json::from_value(older).expect("an answer without the expiry fields reads");
        assert_eq!(older.standing.map(|standing| (standing.keygate_expired, standing.keygate_grace_ends_at)), Some((false, None)));

        let reset = envelope(
            json!({"apiKey": {"apiKeyId": 12, "apiKeyValue": "sk-ws-new", "workspaceId": "llm-default", "maskedKey": "sk-ws-****wxyz"}}),
        );
        let typed: Success<ApiKeyResponse> = round_trip(reset);
        assert_eq!((typed.body.api_key.details, typed.body.api_key.standing), (None, None));
    }

    #[test]
    fn workspace_and_model_answers_round_trip() {
        let workspace = json!({"workspaceId": "ws-1", "workspaceName": "Team", "region": "cn-beijing", "serviceSite": "cn-beijing",
            "apiHost": "127.0.0.1:8080", "gmtCreate": 1, "isDefault": false});
        round_trip::<Success<ListWorkspacesResponse>>(envelope(
            json!({"workspaces": [workspace], "totalCount": 3, "maxResults": 1, "nextToken": "1"}),
        ));
        round_trip::<Success<WorkspaceResponse>>(envelope(json!({"workspace": workspace})));
        round_trip::<Success<DeleteWorkspaceResponse>>(envelope(
            json!({"isDeleted": false, "failReasons": [{"reason": "2 API keys", "resourceType": "ApiKey"}]}),
        ));
        round_trip::<Success<ListModelPermissionsResponse>>(envelope(json!({
            "list": [{"model": "qwen-plus", "name": "Qwen Plus", "demo": true, "permissions": {"inference": true, "deploy": false, "fineTune": false}}],
            "totalCount": 1, "maxResults": 10, "nextToken": "", "errorMessage": "",
        })));
        round_trip::<Success<UpdateModelPermissionsResponse>>(envelope(json!({"errorMessage": ""})));
        round_trip::<Success<Empty>>(envelope(json!({})));
    }

    #[test]
    fn requests_use_the_wire_names() {
        let request: ListModelPermissionsRequest = round_trip(
            json!({"maxResults": 5, "nextToken": 10, "workspaceId": "ws-1", "filter.model": "qwen", "filter.name": null, "modelAction": "inference"}),
        );
        assert_eq!(request.page, PageRequest { max_results: Some(5), next_token: Some(10) });
        round_trip::<ListApiKeysRequest>(
            json!({"maxResults": null, "nextToken": null, "orderBy": "gmtCreate", "order": "ASC", "apiKeyId": 3,
            "description": null, "workspaceId": null}),
        );
        round_trip::<UpdateModelPermissionsRequest>(json!({"workspaceId": "ws-1", "accessAllEntities": true,
            "models": [{"model": "qwen-plus", "inference": true, "deploy": false, "fineTune": true}]}));
    }

    #[test]
    fn a_client_reads_every_page_alike_and_the_items_as_sent() {
        let listed = json!({"workspaces": [{"workspaceId": "ws-1"}], "totalCount": 3, "maxResults": 1, "nextToken": "1"});
        let page: ListWorkspacesResponse<Value> = serde_json::from_value(listed).unwrap();
        assert_eq!((page.page().total_count, page.page().next_token.as_str()), (3, "1"));
        assert_eq!(page.into_items(), [json!({"workspaceId": "ws-1"})]);
        let refused: DeleteWorkspaceResponse = serde_json::from_value(json!({"isDeleted": true})).unwrap();
        assert!(refused.fail_reasons.is_empty());
    }

    #[test]
    fn every_type_has_a_json_schema() {
        let schema = schemars::schema_for!(Success<ListApiKeysResponse>);
        let text = serde_json::to_string(&schema).unwrap();
        for name in ["apiKeys", "replaceAdvised", "accessibleModels", "requestId", "nextToken"] {
            assert!(text.contains(name), "{name} missing from the schema");
        }
    }
}

/// ListModels (`GET /modelstudio/models`): the catalog's filters and page. `capabilities`,
/// `features` and `providers` arrive as one parameter each holding a JSON array of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListCatalogModelsRequest {
    #[serde(flatten)]
    pub page: PageRequest,
    /// The model's name, exactly.
    pub model: Option<String>,
    /// Part of the display name, in any case.
    pub name: Option<String>,
    /// Any of these providers (a JSON array of strings).
    #[serde(default)]
    pub providers: Vec<String>,
    /// Any of these capabilities (a JSON array of strings).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Any of these features (a JSON array of strings).
    #[serde(default)]
    pub features: Vec<String>,
    /// Accepted; keygate does not know context windows, so it filters nothing.
    pub context_window: Option<i64>,
    /// Accepted (`zh-CN`, `en-US`); names are not localized.
    pub language: Option<String>,
}

/// What a model takes and gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferenceMetadata {
    pub request_modality: Vec<String>,
    pub response_modality: Vec<String>,
}

/// A model's token limits; 0 when keygate does not know them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub context_window: i64,
    pub max_input_tokens: i64,
    pub max_output_tokens: i64,
    pub max_reasoning_tokens: i64,
    pub reasoning_max_input_tokens: i64,
    pub reasoning_max_output_tokens: i64,
}

/// One price of a model: `price` a decimal text per `priceUnit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPriceItem {
    pub price_name: String,
    pub price: String,
    pub price_unit: String,
    pub time_band: String,
}

/// The prices of one range of a model (`Default` when its price is not tiered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPriceRange {
    pub range_name: String,
    pub prices: Vec<ModelPriceItem>,
}

/// One model of ListModels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogModelItem {
    pub model: String,
    pub name: String,
    pub description: String,
    pub provider: String,
    /// Unix milliseconds; 0 when unknown.
    pub published_time: i64,
    pub capabilities: Vec<String>,
    pub features: Vec<String>,
    pub inference_metadata: InferenceMetadata,
    pub model_info: ModelInfo,
    /// Empty when the model has no price.
    pub prices: Vec<ModelPriceRange>,
}

/// ListModels. `Item` is [`CatalogModelItem`], or a JSON value to pass the items on as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ListCatalogModelsResponse")]
pub struct ListCatalogModelsResponse<Item = CatalogModelItem> {
    pub models: Vec<Item>,
    #[serde(flatten)]
    pub page: PageResponse,
    #[serde(default)]
    pub error_message: String,
}

paged!(ListCatalogModelsResponse: models);

/// One item of UpdateModelLimits' `workspaceLimits` (a JSON array in one form field).
/// Periods are seconds; `operationType` is `OVERLAY` (the default) or `DELETE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceLimitChange {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_limit_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit_period: Option<i64>,
}

/// UpdateModelLimits (`POST /modelstudio/models/limits`, form body): `workspaceId` and
/// `workspaceLimits`, 1 to 200 items applied all or none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateModelLimitsRequest {
    pub workspace_id: String,
    pub workspace_limits: Vec<WorkspaceLimitChange>,
}

/// UpdateModelLimits: the envelope only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateModelLimitsResponse {
    /// Always empty; the SDK reads it.
    pub error_message: String,
}

/// ListModelLimits (`GET /modelstudio/models/limits`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListModelLimitsRequest {
    /// `maxResults` 0 to 200 (0 or absent: 20), `nextToken`.
    #[serde(flatten)]
    pub page: PageRequest,
    /// The default workspace of the region when absent.
    pub workspace_id: Option<String>,
    /// The model's name, exactly.
    pub model: Option<String>,
    /// Part of the display name, in any case.
    pub name: Option<String>,
}

/// A limit as ListModelLimits shows it: requests per `requestLimitPeriod` seconds and
/// tokens (`usageLimitField` `total_tokens`) per `usageLimitPeriod` seconds; a field that
/// is not set is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelLimitValues {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_limit_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit_period: Option<i64>,
}

/// One model of ListModelLimits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelLimitItem {
    pub model: String,
    pub name: String,
    pub workspace_id: String,
    /// The platform default (`[[model_limits]]` of the settings); `null` when none.
    pub model_limit: Option<ModelLimitValues>,
    /// The workspace's own limit; `null` when it sets none.
    pub workspace_limit: Option<ModelLimitValues>,
}

/// ListModelLimits. `Item` is [`ModelLimitItem`], or a JSON value to pass the items on as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ListModelLimitsResponse")]
pub struct ListModelLimitsResponse<Item = ModelLimitItem> {
    pub limits: Vec<Item>,
    #[serde(flatten)]
    pub page: PageResponse,
    #[serde(default)]
    pub error_message: String,
}

paged!(ListModelLimitsResponse: limits);

/// One dimension of a billing filter: `IN` keeps only `values`, `NOT` drops them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingDimensionFilter {
    pub code: String,
    pub select_type: String,
    pub values: Vec<String>,
}

/// The `filter` of the billing operations (a JSON document in one parameter); its
/// dimensions are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingFilter {
    #[serde(default)]
    pub dimensions: Vec<BillingDimensionFilter>,
}

/// One entry of `groupBy` (a JSON array in one parameter, exactly one entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingGroupBy {
    pub code: String,
}

/// What both billing operations select and how they group it: `filter`, `groupBy`,
/// `locale`, `regionId`, `topNum`, `zeroFilter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingSelection {
    pub filter: Option<BillingFilter>,
    pub group_by: Vec<BillingGroupBy>,
    pub locale: Option<String>,
    pub region_id: Option<String>,
    /// 1 to 20; 20 when absent.
    pub top_num: Option<u32>,
    /// Drop groups that cost nothing; true when absent.
    pub zero_filter: Option<bool>,
}

/// GetBillingOverview (`GET /modelstudio/billing/overview`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetBillingOverviewRequest {
    /// `YYYY-MM`, UTC.
    pub bill_month: String,
    #[serde(flatten)]
    pub selection: BillingSelection,
}

/// The days of GetBillingTrend (`YYYY-MM-DD`, UTC, both included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingTimePeriod {
    pub start: String,
    pub end: String,
}

/// GetBillingTrend (`GET /modelstudio/billing/trend`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetBillingTrendRequest {
    /// `DAY` or `MONTH`.
    pub granularity: String,
    pub time_period: BillingTimePeriod,
    #[serde(flatten)]
    pub selection: BillingSelection,
}

/// One group of GetBillingOverview; amounts are decimal texts, `percentage` a ratio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingOverviewGroup {
    pub key: String,
    pub name: String,
    pub amount: String,
    pub percentage: String,
    pub article_codes: Vec<String>,
}

/// What GetBillingOverview answers under `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingOverview {
    pub currency: String,
    pub total_amount: String,
    pub pretax_amount: String,
    pub tax_amount: String,
    pub groups: Vec<BillingOverviewGroup>,
}

/// GetBillingOverview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetBillingOverviewResponse {
    pub data: BillingOverview,
    /// Always empty. Sent, like ListModels', so that the success holds every envelope field
    /// of the Model Studio operations (`requestId`, `code`, `message`, `errorMessage`,
    /// `httpStatusCode`, `success`) whichever of them a client reads.
    #[serde(default)]
    pub error_message: String,
}

/// A total of GetBillingTrend, with its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingCost {
    pub amount: String,
    pub pretax_amount: String,
    pub tax_amount: String,
    pub currency: String,
}

/// One group's total over the whole time period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingGroupTotal {
    pub key: String,
    pub name: String,
    pub amount: String,
    pub pretax_amount: String,
    pub tax_amount: String,
}

/// One group's amount in one period, with its share of the period's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingPeriodDetail {
    pub key: String,
    pub name: String,
    pub amount: String,
    pub pretax_amount: String,
    pub tax_amount: String,
    pub percentage: String,
}

/// One period (`yyyyMMdd` or `yyyyMM`) of GetBillingTrend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingPeriod {
    pub period: String,
    pub total: BillingCost,
    pub period_details: Vec<BillingPeriodDetail>,
}

/// What GetBillingTrend answers under `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingTrend {
    pub cost_totals: BillingCost,
    pub group_by_total: Vec<BillingGroupTotal>,
    pub result_by_time: Vec<BillingPeriod>,
}

/// GetBillingTrend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetBillingTrendResponse {
    pub data: BillingTrend,
    /// Always empty. Sent, like ListModels', so that the success holds every envelope field
    /// of the Model Studio operations (`requestId`, `code`, `message`, `errorMessage`,
    /// `httpStatusCode`, `success`) whichever of them a client reads.
    #[serde(default)]
    pub error_message: String,
}
