//! The Model Studio-compatible management API (`/modelstudio/...`), as the official SDK
//! `alibabacloud-modelstudio20260210` calls it: ROA paths, query parameters, form bodies,
//! camelCase JSON in the success envelope.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use keygate_core::ids::{ApiKeyId, WorkspaceId, WorkspaceName};
use keygate_core::keys::{expose, KeyFormat};
use keygate_core::permissions::KeyAuth;
use serde_json::{json, Value};

use super::authentication::Authenticated;
use super::errors::{success, ManagementError};
use super::form::{shown, FormFields};
use crate::operations::keys::{self as key_operations, KeyListing, NewKeyRequest};
use crate::operations::workspaces::{self, resolve_workspace};
use crate::operations::{ApiKeyRecord, KeyOrder, ModelGrant, WorkspaceDeletion, WorkspaceRecord};
use crate::planes::Path;
use crate::state::AppState;

/// Routes of the Model Studio API (authentication is layered on by the caller).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/modelstudio/apikeys", post(create_api_key).get(list_api_keys))
        .route("/modelstudio/apikeys/{api_key_id}", get(get_api_key).put(update_api_key).delete(delete_api_key))
        .route("/modelstudio/apikeys/{api_key_id}/disable", put(disable_api_key))
        .route("/modelstudio/apikeys/{api_key_id}/enable", put(enable_api_key))
        .route("/modelstudio/apikeys/{api_key_id}/reset", put(reset_api_key))
        .route("/modelstudio/workspaces", get(list_workspaces).post(create_workspace))
        .route("/modelstudio/workspaces/{workspace_id}", axum::routing::delete(delete_workspace))
        .route("/modelstudio/models/permissions", get(list_model_permissions).post(update_model_permissions))
}

type Result<T> = std::result::Result<T, ManagementError>;

/// Attaches the request id to an error on its way out.
trait WithRequestId<T> {
    fn for_request(self, auth: &Authenticated) -> Result<T>;
}

impl<T> WithRequestId<T> for Result<T> {
    fn for_request(self, auth: &Authenticated) -> Result<T> {
        self.map_err(|error| error.with_request_id(auth.request_id()))
    }
}

pub(super) fn query_fields(query: Option<String>) -> Result<FormFields> {
    FormFields::parse(query.as_deref().unwrap_or(""), "query string")
}

/// The form body: must be form-encoded when not empty.
fn body_fields(headers: &HeaderMap, body: &Bytes) -> Result<FormFields> {
    if body.is_empty() {
        return Ok(FormFields::default());
    }
    let content_type = headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(ManagementError::invalid_parameter("The body must be application/x-www-form-urlencoded."));
    }
    let text = std::str::from_utf8(body).map_err(|_| ManagementError::invalid_parameter("The form body is not valid UTF-8."))?;
    FormFields::parse(text, "form body")
}

pub(super) fn parse_key_id(text: &str) -> Result<i64> {
    Ok(key_operations::parse_key_id(text)?)
}

fn auth_json(auth: &KeyAuth) -> Value {
    match auth {
        KeyAuth::All => json!({
            "type": "All",
            "accessIps": [],
            "modelAccessScope": {"allowAllModels": true, "accessibleModels": []},
            "appAccessScope": {"allowAllApps": true, "accessibleApps": []},
        }),
        KeyAuth::Custom(custom) => json!({
            "type": "Custom",
            "accessIps": custom.access_ips.canonical_entries(),
            "modelAccessScope": {"allowAllModels": custom.model_scope.allow_all_models, "accessibleModels": custom.model_scope.accessible_models},
            "appAccessScope": {"allowAllApps": custom.app_scope.allow_all_apps, "accessibleApps": custom.app_scope.accessible_apps},
        }),
    }
}

/// GetApiKey / ListApiKeys item: the masked key, never the plaintext (GetApiKey puts a
/// legacy key's plaintext in `apiKeyValue`, see [`key_operations::view_key`]). `replaceAdvised`:
/// an imported key, to be replaced by a new one.
fn key_json(record: &ApiKeyRecord) -> Value {
    json!({
        "apiKeyId": record.api_key_id,
        "apiKeyValue": record.masked_key,
        "auth": auth_json(&record.auth),
        "createdBy": record.created_by,
        "description": record.description,
        "disabled": i32::from(record.disabled),
        "gmtCreate": record.created_at,
        "workspaceId": record.workspace_id,
        "workspaceName": record.workspace_name,
        "region": record.region,
        "format": record.format.as_str(),
        "maskedKey": record.masked_key,
        "lastUsedAt": record.last_used_at,
        "requestCount": record.request_count,
        "replaceAdvised": record.format == KeyFormat::Legacy,
    })
}

async fn create_api_key(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    async {
        let query = query_fields(query)?;
        let form = body_fields(&headers, &body)?;
        let request = NewKeyRequest {
            workspace_id: query.get_non_empty("workspaceId"),
            description: query.get("description").unwrap_or(""),
            auth: &form,
        };
        let operations = state.operations();
        let created = key_operations::create_key(operations, &auth.actor(&operations), request).await?;
        let record = &created.record;
        Ok(success(
            auth.request_id(),
            json!({"apiKey": {
                "apiKeyId": record.api_key_id,
                // The one place the plaintext leaves the server.
                "apiKeyValue": expose(&created.plaintext),
                "createdBy": record.created_by,
                "description": record.description,
                "gmtCreate": record.created_at,
                "workspaceId": record.workspace_id,
                "workspaceName": record.workspace_name,
                "auth": auth_json(&record.auth),
                "format": record.format.as_str(),
                "maskedKey": record.masked_key,
                "region": record.region,
            }}),
        ))
    }
    .await
    .for_request(&auth)
}

/// Page size bounds of List operations.
const DEFAULT_PAGE_SIZE: i64 = 10;
const MAX_PAGE_SIZE: i64 = 100;

fn page_window(query: &FormFields) -> Result<(u32, u32)> {
    let limit = query.integer("maxResults", 1..=MAX_PAGE_SIZE)?.unwrap_or(DEFAULT_PAGE_SIZE);
    let offset = match query.get_non_empty("nextToken") {
        None => 0,
        Some(token) => token
            .parse::<u32>()
            .map_err(|_| ManagementError::invalid_parameter(format!("nextToken '{}' was not issued by this server.", shown(token))))?,
    };
    Ok((offset, u32::try_from(limit).unwrap_or(10)))
}

fn next_token(offset: u32, returned: usize, total: u64) -> String {
    let next = u64::from(offset) + returned as u64;
    if returned > 0 && next < total {
        next.to_string()
    } else {
        String::new()
    }
}

async fn list_api_keys(State(state): State<AppState>, auth: Authenticated, RawQuery(query): RawQuery) -> Result<Response> {
    async {
        let query = query_fields(query)?;
        let (offset, limit) = page_window(&query)?;
        // Matched in any case; an error shows the value as the caller sent it.
        let order_by = match query.get_non_empty("orderBy") {
            None => KeyOrder::ApiKeyId,
            Some(text) if text.eq_ignore_ascii_case("apiKeyId") => KeyOrder::ApiKeyId,
            Some(text) if text.eq_ignore_ascii_case("gmtCreate") => KeyOrder::GmtCreate,
            Some(other) => {
                return Err(ManagementError::invalid_parameter(format!("orderBy must be apiKeyId or gmtCreate, got '{}'.", shown(other))))
            }
        };
        let descending = match query.get_non_empty("order") {
            None => true,
            Some(text) if text.eq_ignore_ascii_case("DESC") => true,
            Some(text) if text.eq_ignore_ascii_case("ASC") => false,
            Some(other) => return Err(ManagementError::invalid_parameter(format!("order must be ASC or DESC, got '{}'.", shown(other)))),
        };
        let api_key_id = match query.get_non_empty("apiKeyId") {
            None => None,
            Some(text) => Some(ApiKeyId::parse(text)?.get()),
        };
        let workspace_id = match query.get_non_empty("workspaceId") {
            None => None,
            Some(text) => Some(WorkspaceId::parse(text)?.as_str().to_string()),
        };
        let listing = KeyListing {
            api_key_id,
            description: query.get_non_empty("description").map(str::to_string),
            workspace_id,
            order_by,
            descending,
            offset,
            limit,
        };
        let operations = state.operations();
        let (records, total) = key_operations::list_keys(operations, &auth.actor(&operations), listing).await?;
        Ok(success(
            auth.request_id(),
            json!({
                "apiKeys": records.iter().map(key_json).collect::<Vec<_>>(),
                "totalCount": total,
                "maxResults": limit,
                "nextToken": next_token(offset, records.len(), total),
            }),
        ))
    }
    .await
    .for_request(&auth)
}

async fn get_api_key(State(state): State<AppState>, auth: Authenticated, Path(api_key_id): Path<String>) -> Result<Response> {
    async {
        let key_id = parse_key_id(&api_key_id)?;
        let operations = state.operations();
        let viewed = key_operations::view_key(operations, &auth.actor(&operations), key_id).await?;
        let mut item = key_json(&viewed.record);
        if let Some(plaintext) = &viewed.legacy_plaintext {
            // Legacy keys may be viewed again (docs/CONTRACT.md#key-formats), by whoever may see them.
            item["apiKeyValue"] = json!(expose(plaintext));
        }
        Ok(success(auth.request_id(), json!({"apiKey": item})))
    }
    .await
    .for_request(&auth)
}

async fn update_api_key(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(api_key_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    async {
        let key_id = parse_key_id(&api_key_id)?;
        let query = query_fields(query)?;
        let form = body_fields(&headers, &body)?;
        // Not found before bad input: a caller learns nothing about keys it cannot see.
        let operations = state.operations();
        key_operations::edit_key(operations, &auth.actor(&operations), key_id, query.get("description"), &form).await?;
        Ok(success(auth.request_id(), json!({})))
    }
    .await
    .for_request(&auth)
}

async fn delete_api_key(State(state): State<AppState>, auth: Authenticated, Path(api_key_id): Path<String>) -> Result<Response> {
    async {
        let key_id = parse_key_id(&api_key_id)?;
        let operations = state.operations();
        key_operations::delete_key(operations, &auth.actor(&operations), key_id).await?;
        Ok(success(auth.request_id(), json!({})))
    }
    .await
    .for_request(&auth)
}

async fn set_disabled(state: &AppState, auth: &Authenticated, api_key_id: &str, disabled: bool) -> Result<Response> {
    let key_id = parse_key_id(api_key_id)?;
    let operations = state.operations();
    key_operations::set_key_disabled(operations, &auth.actor(&operations), key_id, disabled).await?;
    Ok(success(auth.request_id(), json!({})))
}

async fn disable_api_key(State(state): State<AppState>, auth: Authenticated, Path(api_key_id): Path<String>) -> Result<Response> {
    set_disabled(&state, &auth, &api_key_id, true).await.for_request(&auth)
}

async fn enable_api_key(State(state): State<AppState>, auth: Authenticated, Path(api_key_id): Path<String>) -> Result<Response> {
    set_disabled(&state, &auth, &api_key_id, false).await.for_request(&auth)
}

async fn reset_api_key(State(state): State<AppState>, auth: Authenticated, Path(api_key_id): Path<String>) -> Result<Response> {
    async {
        let key_id = parse_key_id(&api_key_id)?;
        let operations = state.operations();
        let reset = key_operations::reset_key(operations, &auth.actor(&operations), key_id).await?;
        let record = &reset.record;
        Ok(success(
            auth.request_id(),
            json!({"apiKey": {
                "apiKeyId": record.api_key_id,
                "apiKeyValue": expose(&reset.plaintext),
                "workspaceId": record.workspace_id,
                "maskedKey": record.masked_key,
            }}),
        ))
    }
    .await
    .for_request(&auth)
}

fn workspace_json(record: &WorkspaceRecord, api_host: &str) -> Value {
    json!({
        "workspaceId": record.workspace_id,
        "workspaceName": record.name,
        "region": record.region,
        "serviceSite": record.region,
        "apiHost": api_host,
        "gmtCreate": record.created_at,
        "isDefault": record.is_default,
    })
}

fn api_host(headers: &HeaderMap) -> String {
    headers.get("host").and_then(|value| value.to_str().ok()).unwrap_or("").to_string()
}

async fn list_workspaces(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    async {
        let query = query_fields(query)?;
        let (offset, limit) = page_window(&query)?;
        let operations = state.operations();
        let workspaces = workspaces::visible_workspaces(
            operations,
            &auth.actor(&operations),
            query.get_non_empty("workspaceId"),
            query.get_non_empty("workspaceName"),
        )
        .await?;
        let total = workspaces.len() as u64;
        let host = api_host(&headers);
        let page: Vec<Value> =
            workspaces.iter().skip(offset as usize).take(limit as usize).map(|workspace| workspace_json(workspace, &host)).collect();
        let returned = page.len();
        Ok(success(
            auth.request_id(),
            json!({"workspaces": page, "totalCount": total, "maxResults": limit, "nextToken": next_token(offset, returned, total)}),
        ))
    }
    .await
    .for_request(&auth)
}

async fn create_workspace(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    async {
        auth.caller.may_administer()?;
        let query = query_fields(query)?;
        let name = WorkspaceName::parse(
            query.get("workspaceName").ok_or_else(|| ManagementError::invalid_parameter("workspaceName is required."))?,
        )?;
        let operations = state.operations();
        let record = workspaces::create_workspace(operations, &auth.actor(&operations), &name).await?;
        Ok(success(auth.request_id(), json!({"workspace": workspace_json(&record, &api_host(&headers))})))
    }
    .await
    .for_request(&auth)
}

async fn delete_workspace(State(state): State<AppState>, auth: Authenticated, Path(workspace_id): Path<String>) -> Result<Response> {
    async {
        let operations = state.operations();
        let outcome = workspaces::delete_workspace(operations, &auth.actor(&operations), &workspace_id).await?;
        let body = match outcome {
            WorkspaceDeletion::Deleted => json!({"isDeleted": true, "failReasons": []}),
            WorkspaceDeletion::Refused(reasons) => json!({
                "isDeleted": false,
                "failReasons": reasons.iter().map(|(reason, resource_type)| json!({"reason": reason, "resourceType": resource_type})).collect::<Vec<_>>(),
            }),
        };
        Ok(success(auth.request_id(), body))
    }
    .await
    .for_request(&auth)
}

async fn list_model_permissions(State(state): State<AppState>, auth: Authenticated, RawQuery(query): RawQuery) -> Result<Response> {
    async {
        let query = query_fields(query)?;
        let (offset, limit) = page_window(&query)?;
        let operations = state.operations();
        let actor = auth.actor(&operations);
        let workspace = resolve_workspace(operations, &actor, query.get_non_empty("workspaceId")).await?;
        let grants = workspaces::model_grants(operations, &actor, &workspace).await?;
        let model_filter = query.get_non_empty("filter.model");
        let name_filter = query.get_non_empty("filter.name").map(str::to_ascii_lowercase);
        let action = query.get_non_empty("modelAction").map(str::to_ascii_lowercase);
        let mut items = Vec::new();
        for model in state.shared.catalog.iter() {
            let grant = grants.iter().find(|grant| grant.model == model.name);
            let (inference, deploy, fine_tune) = if workspace.is_default {
                (true, grant.is_some_and(|grant| grant.deploy), grant.is_some_and(|grant| grant.fine_tune))
            } else {
                grant.map(|grant| (grant.inference, grant.deploy, grant.fine_tune)).unwrap_or((false, false, false))
            };
            let matches_action = match action.as_deref() {
                None => true,
                Some("inference") => inference,
                Some("deploy") => deploy,
                Some("finetune") => fine_tune,
                Some(_) => true,
            };
            let matches_model = model_filter.is_none_or(|filter| model.name.contains(filter));
            let matches_name = name_filter.as_ref().is_none_or(|filter| model.display_name.to_ascii_lowercase().contains(filter.as_str()));
            if matches_action && matches_model && matches_name {
                items.push(json!({"model": model.name, "name": model.display_name, "demo": model.demo, "permissions": {"inference": inference, "deploy": deploy, "fineTune": fine_tune}}));
            }
        }
        let total = items.len() as u64;
        let page: Vec<Value> = items.into_iter().skip(offset as usize).take(limit as usize).collect();
        let returned = page.len();
        Ok(success(auth.request_id(), json!({"list": page, "totalCount": total, "maxResults": limit, "nextToken": next_token(offset, returned, total), "errorMessage": ""})))
    }
    .await
    .for_request(&auth)
}

async fn update_model_permissions(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    async {
        auth.caller.may_administer()?;
        let mut form = body_fields(&headers, &body)?;
        // The SDK sends these in the body; accept them in the query too.
        if form.keys().next().is_none() {
            form = query_fields(query)?;
        }
        let workspace_id =
            form.get_non_empty("workspaceId").ok_or_else(|| ManagementError::invalid_parameter("workspaceId is required."))?;
        let operations = state.operations();
        let actor = auth.actor(&operations);
        let workspace = resolve_workspace(operations, &actor, Some(workspace_id)).await?;
        let mut grants: Vec<ModelGrant> = Vec::new();
        if form.boolean("accessAllEntities")? == Some(true) {
            grants.extend(state.shared.catalog.iter().map(|model| ModelGrant {
                model: model.name.clone(),
                inference: true,
                deploy: false,
                fine_tune: false,
            }));
        }
        let mut index = 1;
        while let Some(model) = form.get_non_empty(&format!("models.{index}.model")) {
            if !state.shared.catalog.contains(model) {
                return Err(ManagementError::invalid_parameter(format!("models.{index}.model: unknown model '{}'.", shown(model))));
            }
            let flag = |name: &str| form.boolean(&format!("models.{index}.{name}")).map(|value| value.unwrap_or(false));
            grants.retain(|grant| grant.model != model);
            grants.push(ModelGrant {
                model: model.to_string(),
                inference: flag("inference")?,
                deploy: flag("deploy")?,
                fine_tune: flag("fineTune")?,
            });
            index += 1;
        }
        if grants.is_empty() {
            return Err(ManagementError::invalid_parameter("Name at least one model (models.1.model) or set accessAllEntities=true."));
        }
        workspaces::update_model_grants(operations, &actor, &workspace, &grants).await?;
        Ok(success(auth.request_id(), json!({"errorMessage": ""})))
    }
    .await
    .for_request(&auth)
}
