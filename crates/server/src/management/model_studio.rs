//! The Model Studio-compatible management API (`/modelstudio/...`), as the official SDK
//! `alibabacloud-modelstudio20260210` calls it: ROA paths, query parameters, form bodies,
//! camelCase JSON in the success envelope. The requests and answers are the types of
//! [`keygate_wire::model_studio`]: each operation reads its fields into its request type in
//! one function (`read_...`), and answers its response type; errors leave as
//! [`ManagementError`]s, which [`super::boundary`] renders.

use axum::body::Bytes;
use axum::extract::{FromRequest, RawQuery, Request};
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use axum::Router;
use keygate_core::catalog::ModelCatalog;
use keygate_core::ids::{ApiKeyId, WorkspaceId, WorkspaceName};
use keygate_core::key_limits::{format_cost, Budget, BudgetInput, KeyLimits, KeyLimitsInput, Spend};
use keygate_core::keys::{expose, KeyFormat};
use keygate_core::limits::{LimitChange, LimitValues, USAGE_LIMIT_FIELD};
use keygate_core::permissions::KeyAuth;
use keygate_core::verification::has_expired;
use keygate_wire::keygate_api;
use std::collections::HashMap;

use keygate_wire::envelope::Empty;
use keygate_wire::model_studio::{
    ApiKey, ApiKeyAuth, ApiKeyDetails, ApiKeyIdRequest, ApiKeyOrder, ApiKeyResponse, ApiKeyStanding, AppAccessScope, AuthType,
    CreateApiKeyRequest, CreateWorkspaceRequest, DeleteWorkspaceRequest, DeleteWorkspaceResponse, FailReason, ListApiKeysRequest,
    ListApiKeysResponse, ListModelPermissionsRequest, ListModelPermissionsResponse, ListWorkspacesRequest, ListWorkspacesResponse,
    ModelAccessScope, ModelGrantRequest, ModelPermission, ModelPermissions, PageRequest, PageResponse, ResetApiKeyRequest, SortOrder,
    UpdateApiKeyRequest, UpdateModelPermissionsRequest, UpdateModelPermissionsResponse, Workspace, WorkspaceResponse,
};
use keygate_wire::model_studio::{
    BillingCost, BillingDimensionFilter, BillingFilter, BillingGroupBy, BillingGroupTotal, BillingOverview, BillingOverviewGroup,
    BillingPeriod, BillingPeriodDetail, BillingSelection, BillingTimePeriod, BillingTrend, CatalogModelItem, GetBillingOverviewRequest,
    GetBillingOverviewResponse, GetBillingTrendRequest, GetBillingTrendResponse, InferenceMetadata, ListCatalogModelsRequest,
    ListCatalogModelsResponse, ModelInfo, ModelPriceItem, ModelPriceRange,
};
use keygate_wire::model_studio::{
    ListModelLimitsRequest, ListModelLimitsResponse, ModelLimitItem, ModelLimitValues, UpdateModelLimitsRequest, UpdateModelLimitsResponse,
    WorkspaceLimitChange,
};

use super::call::{Answer, Call};
use super::errors::ManagementError;
use super::form::{shown, FormFields};
use super::keygate_api::usage::usage_figures;
use crate::operations::billing::{self, BillingDimension, BillingQuery, DimensionFilter, Granularity, ModelListing};
use crate::operations::keys::{
    self as key_operations, KeyEditRequest, KeyListing, LimitsSent, NewKeyRequest, EXPIRES_AT_PARAMETER, GRACE_SECONDS_PARAMETER,
    LIMITS_PARAMETER,
};
use crate::operations::model_limits::{self, LimitListing};
use crate::operations::usage::{self, CostedTotals, KeyTotals};
use crate::operations::workspaces::{self, resolve_workspace};
use crate::operations::{ApiKeyRecord, KeyOrder, ModelGrant, WorkspaceDeletion, WorkspaceRecord};
use crate::planes::Path;
use crate::request_body::BodyReadError;
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
        .route("/modelstudio/models", get(list_models))
        .route("/modelstudio/models/limits", get(list_model_limits).post(update_model_limits))
        .route("/modelstudio/billing/overview", get(get_billing_overview))
        .route("/modelstudio/billing/trend", get(get_billing_trend))
}

type Result<T> = std::result::Result<T, ManagementError>;

/// What a call sent besides its path: the query string and the body, read into fields by
/// each operation in its own order (a key in the path first, then the query, then the body).
pub(super) struct Sent {
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl FromRequest<AppState> for Sent {
    type Rejection = ManagementError;

    async fn from_request(request: Request, _state: &AppState) -> Result<Sent> {
        let query = request.uri().query().map(str::to_string);
        let (parts, body) = request.into_parts();
        // The authentication middleware has read the body (under the route's limit) already.
        let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|_| ManagementError::from(BodyReadError::Broken))?;
        Ok(Sent { query, headers: parts.headers, body })
    }
}

impl Sent {
    fn query(&self) -> Result<FormFields> {
        query_fields(self.query.clone())
    }

    /// The form body: must be form-encoded when not empty.
    fn form(&self) -> Result<FormFields> {
        if self.body.is_empty() {
            return Ok(FormFields::default());
        }
        let content_type = self.headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or("");
        if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
            return Err(ManagementError::invalid_parameter("The body must be application/x-www-form-urlencoded."));
        }
        let text = std::str::from_utf8(&self.body).map_err(|_| ManagementError::invalid_parameter("The form body is not valid UTF-8."))?;
        FormFields::parse(text, "form body")
    }
}

pub(super) fn query_fields(query: Option<String>) -> Result<FormFields> {
    FormFields::parse(query.as_deref().unwrap_or(""), "query string")
}

pub(super) fn parse_key_id(text: &str) -> Result<i64> {
    Ok(key_operations::parse_key_id(text)?)
}

/// GetApiKey, DeleteApiKey, DisableApiKey, EnableApiKey and ResetApiKey: the key in the path.
fn read_api_key_id(api_key_id: &str) -> Result<ApiKeyIdRequest> {
    Ok(ApiKeyIdRequest { api_key_id: parse_key_id(api_key_id)? })
}

/// Page size bounds of List operations.
const DEFAULT_PAGE_SIZE: u32 = 10;
const MAX_PAGE_SIZE: i64 = 100;

/// The page of a List operation: `maxResults`, then `nextToken`.
fn read_page(query: &FormFields) -> Result<PageRequest> {
    let max_results = query.integer("maxResults", 1..=MAX_PAGE_SIZE)?.map(|limit| u32::try_from(limit).unwrap_or(DEFAULT_PAGE_SIZE));
    Ok(PageRequest { max_results, next_token: read_next_token(query)? })
}

/// Where a page starts: a `nextToken` this server answered before.
fn read_next_token(query: &FormFields) -> Result<Option<u32>> {
    match query.get_non_empty("nextToken") {
        None => Ok(None),
        Some(token) => token
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ManagementError::invalid_parameter(format!("nextToken '{}' was not issued by this server.", shown(token)))),
    }
}

/// Where a page starts and how long it is.
fn page_window(page: PageRequest) -> (u32, u32) {
    (page.next_token.unwrap_or(0), page.max_results.unwrap_or(DEFAULT_PAGE_SIZE))
}

/// The paging fields of an answer that returned `returned` of `total` from `offset`.
fn page_response(offset: u32, limit: u32, returned: usize, total: u64) -> PageResponse {
    let next = u64::from(offset) + returned as u64;
    let next_token = if returned > 0 && next < total { next.to_string() } else { String::new() };
    PageResponse { total_count: total, max_results: limit, next_token }
}

/// One page of `items`, with its paging fields.
fn paged<T>(items: impl IntoIterator<Item = T>, total: u64, page: PageRequest) -> (Vec<T>, PageResponse) {
    let (offset, limit) = page_window(page);
    let items: Vec<T> = items.into_iter().skip(offset as usize).take(limit as usize).collect();
    let paging = page_response(offset, limit, items.len(), total);
    (items, paging)
}

fn auth_wire(auth: &KeyAuth) -> ApiKeyAuth {
    match auth {
        KeyAuth::All => ApiKeyAuth {
            auth_type: AuthType::All,
            access_ips: Vec::new(),
            model_access_scope: ModelAccessScope { allow_all_models: true, accessible_models: Vec::new() },
            app_access_scope: AppAccessScope { allow_all_apps: true, accessible_apps: Vec::new() },
        },
        KeyAuth::Custom(custom) => ApiKeyAuth {
            auth_type: AuthType::Custom,
            access_ips: custom.access_ips.canonical_entries(),
            model_access_scope: ModelAccessScope {
                allow_all_models: custom.model_scope.allow_all_models,
                accessible_models: custom.model_scope.accessible_models.clone(),
            },
            app_access_scope: AppAccessScope {
                allow_all_apps: custom.app_scope.allow_all_apps,
                accessible_apps: custom.app_scope.accessible_apps.clone(),
            },
        },
    }
}

/// Which answer a key is shown in (see [`ApiKey`]).
#[derive(Debug, Clone, Copy)]
enum KeyShown<'a> {
    /// ResetApiKey: the new secret and where the key is.
    Reset,
    /// CreateApiKey: the new secret and what the key is.
    Created,
    /// GetApiKey and ListApiKeys: what the key is and how it stands, with its usage among
    /// these totals (of every key of the answer, asked for at once), and its budget's spend
    /// in its current period among these.
    Viewed(&'a KeyTotals, &'a HashMap<i64, Spend>),
}

/// The one way an API key is answered. `api_key_value` is the new plaintext (the one place
/// it leaves the server), a legacy key's plaintext on GetApiKey, or else the masked key.
/// `now` (Unix seconds) decides whether the key has expired and whether an old secret still
/// works.
fn api_key(record: &ApiKeyRecord, api_key_value: String, shown: KeyShown<'_>, now: i64) -> ApiKey {
    let details = (!matches!(shown, KeyShown::Reset)).then(|| ApiKeyDetails {
        created_by: record.created_by.clone(),
        description: record.description.clone(),
        gmt_create: record.created_at,
        workspace_name: record.workspace_name.clone(),
        auth: auth_wire(&record.auth),
        format: record.format.as_str().to_string(),
        region: record.region.clone(),
        keygate_expires_at: record.expires_at.map(|seconds| seconds.saturating_mul(1000)),
        keygate_limits: record.limits.as_ref().map(limits_wire),
    });
    let standing = match shown {
        KeyShown::Viewed(totals, spends) => Some(ApiKeyStanding {
            disabled: i32::from(record.disabled),
            last_used_at: record.last_used_at,
            request_count: record.request_count,
            // An imported key, to be replaced by a new one.
            replace_advised: record.format == KeyFormat::Legacy,
            keygate_usage: usage_figures(totals.by_key.get(&record.api_key_id).unwrap_or(&CostedTotals::default()), &totals.currency),
            keygate_expired: has_expired(record.expires_at, now),
            keygate_grace_ends_at: record.grace_ends_at.filter(|ends_at| *ends_at > now).map(|seconds| seconds.saturating_mul(1000)),
            keygate_budget: record
                .limits
                .and_then(|limits| limits.budget)
                .map(|budget| budget_standing(&budget, spends.get(&record.api_key_id).copied().unwrap_or_default(), &totals.currency, now)),
        }),
        KeyShown::Reset | KeyShown::Created => None,
    };
    ApiKey {
        api_key_id: record.api_key_id,
        api_key_value,
        workspace_id: record.workspace_id.clone(),
        masked_key: record.masked_key.clone(),
        details,
        standing,
    }
}

/// A key's limits on the wire.
pub(crate) fn limits_wire(limits: &KeyLimits) -> keygate_api::KeyLimits {
    let count = |value: Option<u64>| value.map(|value| i64::try_from(value).unwrap_or(i64::MAX));
    keygate_api::KeyLimits {
        requests_per_minute: count(limits.requests_per_minute),
        tokens_per_minute: count(limits.tokens_per_minute),
        max_in_flight: count(limits.max_in_flight),
        budget: limits.budget.map(|budget| keygate_api::KeyBudget {
            period: Some(budget.period.as_str().to_string()),
            tokens: count(budget.tokens),
            cost: budget.cost_micros.map(format_cost),
        }),
    }
}

/// Where a budget stands at `now` after `spent` in its current period.
pub(crate) fn budget_standing(budget: &Budget, spent: Spend, currency: &str, now: i64) -> keygate_api::KeyBudgetStanding {
    let (start, end) = budget.period.bounds(now);
    let (remaining_tokens, remaining_cost) = budget.remaining(spent);
    keygate_api::KeyBudgetStanding {
        period: budget.period.as_str().to_string(),
        period_start: start * 1000,
        period_end: end * 1000,
        used_tokens: i64::try_from(spent.tokens).unwrap_or(i64::MAX),
        used_cost: format_cost(spent.cost_micros),
        currency: currency.to_string(),
        remaining_tokens: remaining_tokens.map(|tokens| i64::try_from(tokens).unwrap_or(i64::MAX)),
        remaining_cost: remaining_cost.map(format_cost),
        nearly_used: budget.nearly_used(spent),
        used_up: budget.used_up(spent).is_some(),
    }
}

/// `keygateLimits` as sent: a JSON object read into its wire type and handed to the rules
/// as it came (a bad one is judged by the key operations, after the key is known).
fn read_limits_parameter(text: Option<&str>) -> Option<LimitsSent> {
    let text = text?;
    Some(match serde_json::from_str::<keygate_api::KeyLimits>(text) {
        Ok(sent) => Ok(KeyLimitsInput {
            requests_per_minute: sent.requests_per_minute,
            tokens_per_minute: sent.tokens_per_minute,
            max_in_flight: sent.max_in_flight,
            budget: sent.budget.map(|budget| BudgetInput { period: budget.period, tokens: budget.tokens, cost: budget.cost }),
        }),
        Err(error) => Err(format!(
            "{LIMITS_PARAMETER} must be a JSON object like {{\"requestsPerMinute\":60,\"budget\":{{\"period\":\"day\",\"cost\":\"5.00\"}}}} ({{}}: none): {}.",
            keygate_wire::json_errors::describe_json_error(&error)
        )),
    })
}

fn read_create_api_key(sent: &Sent) -> Result<CreateApiKeyRequest> {
    let query = sent.query()?;
    Ok(CreateApiKeyRequest {
        workspace_id: query.get_non_empty("workspaceId").map(str::to_string),
        description: query.get("description").unwrap_or("").to_string(),
        keygate_expires_at: query.get(EXPIRES_AT_PARAMETER).map(str::to_string),
        keygate_limits: query.get(LIMITS_PARAMETER).map(str::to_string),
    })
}

async fn create_api_key(call: Call, sent: Sent) -> Answer<ApiKeyResponse> {
    let request = read_create_api_key(&sent)?;
    let form = sent.form()?;
    let limits = read_limits_parameter(request.keygate_limits.as_deref());
    let new_key = NewKeyRequest {
        workspace_id: request.workspace_id.as_deref(),
        description: &request.description,
        auth: &form,
        expires_at: request.keygate_expires_at.as_deref(),
        limits: limits.as_ref(),
    };
    let created = key_operations::create_key(call.operations(), &call.actor(), new_key).await?;
    let now = call.state.shared.clock.now_seconds();
    call.answer(ApiKeyResponse { api_key: api_key(&created.record, expose(&created.plaintext).to_string(), KeyShown::Created, now) })
}

/// ListApiKeys' query: the page, then `orderBy` and `order` (matched in any case; an error
/// shows the value as the caller sent it), then the filters.
fn read_list_api_keys(query: Option<String>) -> Result<ListApiKeysRequest> {
    let query = query_fields(query)?;
    let page = read_page(&query)?;
    let order_by = match query.get_non_empty("orderBy") {
        None => None,
        Some(text) if text.eq_ignore_ascii_case("apiKeyId") => Some(ApiKeyOrder::ApiKeyId),
        Some(text) if text.eq_ignore_ascii_case("gmtCreate") => Some(ApiKeyOrder::GmtCreate),
        Some(other) => {
            return Err(ManagementError::invalid_parameter(format!("orderBy must be apiKeyId or gmtCreate, got '{}'.", shown(other))))
        }
    };
    let order = match query.get_non_empty("order") {
        None => None,
        Some(text) if text.eq_ignore_ascii_case("DESC") => Some(SortOrder::Descending),
        Some(text) if text.eq_ignore_ascii_case("ASC") => Some(SortOrder::Ascending),
        Some(other) => return Err(ManagementError::invalid_parameter(format!("order must be ASC or DESC, got '{}'.", shown(other)))),
    };
    let api_key_id = query.get_non_empty("apiKeyId").map(ApiKeyId::parse).transpose()?.map(ApiKeyId::get);
    let workspace_id = query.get_non_empty("workspaceId").map(WorkspaceId::parse).transpose()?.map(|id| id.as_str().to_string());
    let description = query.get_non_empty("description").map(str::to_string);
    Ok(ListApiKeysRequest { page, order_by, order, api_key_id, description, workspace_id })
}

async fn list_api_keys(call: Call, RawQuery(query): RawQuery) -> Answer<ListApiKeysResponse> {
    let request = read_list_api_keys(query)?;
    let (offset, limit) = page_window(request.page);
    let listing = KeyListing {
        search: None,
        api_key_id: request.api_key_id,
        description: request.description,
        workspace_id: request.workspace_id,
        order_by: match request.order_by {
            None | Some(ApiKeyOrder::ApiKeyId) => KeyOrder::ApiKeyId,
            Some(ApiKeyOrder::GmtCreate) => KeyOrder::GmtCreate,
        },
        descending: request.order != Some(SortOrder::Ascending),
        offset,
        limit,
    };
    let (operations, actor) = (call.operations(), call.actor());
    let (records, total) = key_operations::list_keys(operations, &actor, listing).await?;
    // The usage of the whole page in one query.
    let key_ids: Vec<i64> = records.iter().map(|record| record.api_key_id).collect();
    let totals = usage::key_totals(operations, &actor, &key_ids).await?;
    let spends = usage::budget_spends(operations, &actor, &usage::budgets_of(&records)).await?;
    let now = call.state.shared.clock.now_seconds();
    let api_keys: Vec<ApiKey> =
        records.iter().map(|record| api_key(record, record.masked_key.clone(), KeyShown::Viewed(&totals, &spends), now)).collect();
    let page = page_response(offset, limit, api_keys.len(), total);
    call.answer(ListApiKeysResponse { api_keys, page })
}

async fn get_api_key(call: Call, Path(api_key_id): Path<String>) -> Answer<ApiKeyResponse> {
    let request = read_api_key_id(&api_key_id)?;
    let (operations, actor) = (call.operations(), call.actor());
    let viewed = key_operations::view_key(operations, &actor, request.api_key_id).await?;
    let totals = usage::key_totals(operations, &actor, &[request.api_key_id]).await?;
    let spends = usage::budget_spends(operations, &actor, &usage::budgets_of(std::slice::from_ref(&viewed.record))).await?;
    // Legacy keys may be viewed again (docs/CONTRACT.md#key-formats), by whoever may see them.
    let value =
        viewed.legacy_plaintext.as_ref().map_or_else(|| viewed.record.masked_key.clone(), |plaintext| expose(plaintext).to_string());
    let now = call.state.shared.clock.now_seconds();
    call.answer(ApiKeyResponse { api_key: api_key(&viewed.record, value, KeyShown::Viewed(&totals, &spends), now) })
}

/// UpdateApiKey: the key first, then the query (the form body is read after both).
fn read_update_api_key(api_key_id: &str, sent: &Sent) -> Result<UpdateApiKeyRequest> {
    let api_key_id = parse_key_id(api_key_id)?;
    let query = sent.query()?;
    Ok(UpdateApiKeyRequest {
        api_key_id,
        description: query.get("description").map(str::to_string),
        keygate_expires_at: query.get(EXPIRES_AT_PARAMETER).map(str::to_string),
        keygate_limits: query.get(LIMITS_PARAMETER).map(str::to_string),
    })
}

async fn update_api_key(call: Call, Path(api_key_id): Path<String>, sent: Sent) -> Answer<Empty> {
    let request = read_update_api_key(&api_key_id, &sent)?;
    let form = sent.form()?;
    // Not found before bad input: a caller learns nothing about keys it cannot see.
    let limits = read_limits_parameter(request.keygate_limits.as_deref());
    let edit = KeyEditRequest {
        description: request.description.as_deref(),
        expires_at: request.keygate_expires_at.as_deref(),
        limits: limits.as_ref(),
    };
    key_operations::edit_key(call.operations(), &call.actor(), request.api_key_id, edit, &form).await?;
    call.answer(Empty {})
}

async fn delete_api_key(call: Call, Path(api_key_id): Path<String>) -> Answer<Empty> {
    let request = read_api_key_id(&api_key_id)?;
    key_operations::delete_key(call.operations(), &call.actor(), request.api_key_id).await?;
    call.answer(Empty {})
}

async fn set_disabled(call: Call, api_key_id: &str, disabled: bool) -> Answer<Empty> {
    let request = read_api_key_id(api_key_id)?;
    key_operations::set_key_disabled(call.operations(), &call.actor(), request.api_key_id, disabled).await?;
    call.answer(Empty {})
}

async fn disable_api_key(call: Call, Path(api_key_id): Path<String>) -> Answer<Empty> {
    set_disabled(call, &api_key_id, true).await
}

async fn enable_api_key(call: Call, Path(api_key_id): Path<String>) -> Answer<Empty> {
    set_disabled(call, &api_key_id, false).await
}

/// ResetApiKey: the key first, then the query.
fn read_reset_api_key(api_key_id: &str, query: Option<String>) -> Result<ResetApiKeyRequest> {
    let api_key_id = parse_key_id(api_key_id)?;
    let query = query_fields(query)?;
    Ok(ResetApiKeyRequest { api_key_id, keygate_grace_seconds: query.get(GRACE_SECONDS_PARAMETER).map(str::to_string) })
}

async fn reset_api_key(call: Call, Path(api_key_id): Path<String>, RawQuery(query): RawQuery) -> Answer<ApiKeyResponse> {
    let request = read_reset_api_key(&api_key_id, query)?;
    let (operations, actor) = (call.operations(), call.actor());
    let reset = key_operations::reset_key(operations, &actor, request.api_key_id, request.keygate_grace_seconds.as_deref()).await?;
    let now = call.state.shared.clock.now_seconds();
    call.answer(ApiKeyResponse { api_key: api_key(&reset.record, expose(&reset.plaintext).to_string(), KeyShown::Reset, now) })
}

fn workspace_wire(record: &WorkspaceRecord, api_host: &str) -> Workspace {
    Workspace {
        workspace_id: record.workspace_id.clone(),
        workspace_name: record.name.clone(),
        region: record.region.clone(),
        service_site: record.region.clone(),
        api_host: api_host.to_string(),
        gmt_create: record.created_at,
        is_default: record.is_default,
    }
}

fn api_host(headers: &HeaderMap) -> &str {
    headers.get("host").and_then(|value| value.to_str().ok()).unwrap_or("")
}

fn read_list_workspaces(query: Option<String>) -> Result<ListWorkspacesRequest> {
    let query = query_fields(query)?;
    Ok(ListWorkspacesRequest {
        page: read_page(&query)?,
        workspace_id: query.get_non_empty("workspaceId").map(str::to_string),
        workspace_name: query.get_non_empty("workspaceName").map(str::to_string),
    })
}

async fn list_workspaces(call: Call, RawQuery(query): RawQuery, headers: HeaderMap) -> Answer<ListWorkspacesResponse> {
    let request = read_list_workspaces(query)?;
    let (workspace_id, workspace_name) = (request.workspace_id.as_deref(), request.workspace_name.as_deref());
    let visible = workspaces::visible_workspaces(call.operations(), &call.actor(), workspace_id, workspace_name).await?;
    let host = api_host(&headers);
    let (workspaces, page) = paged(visible.iter().map(|workspace| workspace_wire(workspace, host)), visible.len() as u64, request.page);
    call.answer(ListWorkspacesResponse { workspaces, page })
}

fn read_create_workspace(query: Option<String>) -> Result<CreateWorkspaceRequest> {
    let query = query_fields(query)?;
    let workspace_name = query.get("workspaceName").ok_or_else(|| ManagementError::invalid_parameter("workspaceName is required."))?;
    Ok(CreateWorkspaceRequest { workspace_name: workspace_name.to_string() })
}

async fn create_workspace(call: Call, RawQuery(query): RawQuery, headers: HeaderMap) -> Answer<WorkspaceResponse> {
    call.auth.caller.may_administer()?;
    let request = read_create_workspace(query)?;
    let name = WorkspaceName::parse(&request.workspace_name)?;
    let record = workspaces::create_workspace(call.operations(), &call.actor(), &name).await?;
    call.answer(WorkspaceResponse { workspace: workspace_wire(&record, api_host(&headers)) })
}

async fn delete_workspace(call: Call, Path(workspace_id): Path<String>) -> Answer<DeleteWorkspaceResponse> {
    let request = DeleteWorkspaceRequest { workspace_id };
    let outcome = workspaces::delete_workspace(call.operations(), &call.actor(), &request.workspace_id).await?;
    call.answer(match outcome {
        WorkspaceDeletion::Deleted => DeleteWorkspaceResponse { is_deleted: true, fail_reasons: Vec::new() },
        WorkspaceDeletion::Refused(reasons) => DeleteWorkspaceResponse {
            is_deleted: false,
            fail_reasons: reasons.into_iter().map(|(reason, resource_type)| FailReason { reason, resource_type }).collect(),
        },
    })
}

fn read_list_model_permissions(query: Option<String>) -> Result<ListModelPermissionsRequest> {
    let query = query_fields(query)?;
    let text = |name: &str| query.get_non_empty(name).map(str::to_string);
    Ok(ListModelPermissionsRequest {
        page: read_page(&query)?,
        workspace_id: text("workspaceId"),
        model_filter: text("filter.model"),
        name_filter: text("filter.name"),
        model_action: text("modelAction"),
    })
}

async fn list_model_permissions(call: Call, RawQuery(query): RawQuery) -> Answer<ListModelPermissionsResponse> {
    let request = read_list_model_permissions(query)?;
    let (operations, actor) = (call.operations(), call.actor());
    let workspace = resolve_workspace(operations, &actor, request.workspace_id.as_deref()).await?;
    let grants = workspaces::model_grants(operations, &actor, &workspace).await?;
    let name_filter = request.name_filter.as_deref().map(str::to_ascii_lowercase);
    let action = request.model_action.as_deref().map(str::to_ascii_lowercase);
    let mut items = Vec::new();
    for model in call.state.shared.catalog.iter() {
        let grant = grants.iter().find(|grant| grant.model == model.name);
        let permissions = if workspace.is_default {
            ModelPermissions {
                inference: true,
                deploy: grant.is_some_and(|grant| grant.deploy),
                fine_tune: grant.is_some_and(|grant| grant.fine_tune),
            }
        } else {
            grant.map_or_else(ModelPermissions::default, |grant| ModelPermissions {
                inference: grant.inference,
                deploy: grant.deploy,
                fine_tune: grant.fine_tune,
            })
        };
        let matches_action = match action.as_deref() {
            None => true,
            Some("inference") => permissions.inference,
            Some("deploy") => permissions.deploy,
            Some("finetune") => permissions.fine_tune,
            Some(_) => true,
        };
        let matches_model = request.model_filter.as_deref().is_none_or(|filter| model.name.contains(filter));
        let matches_name = name_filter.as_ref().is_none_or(|filter| model.display_name.to_ascii_lowercase().contains(filter.as_str()));
        if matches_action && matches_model && matches_name {
            items.push(ModelPermission { model: model.name.clone(), name: model.display_name.clone(), demo: model.demo, permissions });
        }
    }
    let total = items.len() as u64;
    let (list, page) = paged(items, total, request.page);
    call.answer(ListModelPermissionsResponse { list, page, error_message: String::new() })
}

/// UpdateModelPermissions' fields: `workspaceId`, `accessAllEntities`, then `models.1`,
/// `models.2`, ... in order, each model checked against the catalog before its flags.
fn read_update_model_permissions(form: &FormFields, catalog: &ModelCatalog) -> Result<UpdateModelPermissionsRequest> {
    let workspace_id = form.get_non_empty("workspaceId").ok_or_else(|| ManagementError::invalid_parameter("workspaceId is required."))?;
    let access_all_entities = form.boolean("accessAllEntities")?;
    let mut models = Vec::new();
    let mut index = 1;
    while let Some(model) = form.get_non_empty(&format!("models.{index}.model")) {
        if !catalog.contains(model) {
            return Err(ManagementError::invalid_parameter(format!("models.{index}.model: unknown model '{}'.", shown(model))));
        }
        let flag = |name: &str| form.boolean(&format!("models.{index}.{name}")).map(|value| value.unwrap_or(false));
        let permissions = ModelPermissions { inference: flag("inference")?, deploy: flag("deploy")?, fine_tune: flag("fineTune")? };
        models.push(ModelGrantRequest { model: model.to_string(), permissions });
        index += 1;
    }
    Ok(UpdateModelPermissionsRequest { workspace_id: workspace_id.to_string(), access_all_entities, models })
}

async fn update_model_permissions(call: Call, sent: Sent) -> Answer<UpdateModelPermissionsResponse> {
    call.auth.caller.may_administer()?;
    let mut form = sent.form()?;
    // The SDK sends these in the body; accept them in the query too.
    if form.keys().next().is_none() {
        form = sent.query()?;
    }
    let catalog = &call.state.shared.catalog;
    let request = read_update_model_permissions(&form, catalog)?;
    let (operations, actor) = (call.operations(), call.actor());
    let workspace = resolve_workspace(operations, &actor, Some(&request.workspace_id)).await?;
    let mut grants: Vec<ModelGrant> = Vec::new();
    if request.access_all_entities == Some(true) {
        grants.extend(catalog.iter().map(|model| ModelGrant {
            model: model.name.clone(),
            inference: true,
            deploy: false,
            fine_tune: false,
        }));
    }
    for requested in request.models {
        grants.retain(|grant| grant.model != requested.model);
        let ModelPermissions { inference, deploy, fine_tune } = requested.permissions;
        grants.push(ModelGrant { model: requested.model, inference, deploy, fine_tune });
    }
    if grants.is_empty() {
        return Err(ManagementError::invalid_parameter("Name at least one model (models.1.model) or set accessAllEntities=true."));
    }
    workspaces::update_model_grants(operations, &actor, &workspace, &grants).await?;
    call.answer(UpdateModelPermissionsResponse { error_message: String::new() })
}

/// A parameter whose value is one JSON document (`capabilities`, `groupBy`, `filter`, ...).
fn json_parameter<T: serde::de::DeserializeOwned>(query: &FormFields, name: &str, shape: &str) -> Result<Option<T>> {
    match query.get_non_empty(name) {
        None => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|_| ManagementError::invalid_parameter(format!("{name} must be {shape}, got '{}'.", shown(text)))),
    }
}

/// ListModels' query: the page, then the filters (the lists as JSON arrays of strings).
fn read_list_models(query: Option<String>) -> Result<ListCatalogModelsRequest> {
    let query = query_fields(query)?;
    let list = |name: &str| json_parameter::<Vec<String>>(&query, name, "a JSON array of strings").map(Option::unwrap_or_default);
    Ok(ListCatalogModelsRequest {
        page: read_page(&query)?,
        model: query.get_non_empty("model").map(str::to_string),
        name: query.get_non_empty("name").map(str::to_string),
        providers: list("providers")?,
        capabilities: list("capabilities")?,
        features: list("features")?,
        context_window: query.integer("contextWindow", 0..=i64::MAX)?,
        language: query.get_non_empty("language").map(str::to_string),
    })
}

/// Millionths as a price text without trailing zeros (`0.8`, `12`).
fn price_text(micros: i64) -> String {
    let text = keygate_core::usage::format_amount(micros, 6);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn catalog_model_wire(listed: billing::ListedModel) -> CatalogModelItem {
    let strings = |values: &[&str]| values.iter().map(|value| value.to_string()).collect::<Vec<_>>();
    let prices = listed.price.map_or_else(Vec::new, |price| {
        let item = |name: &str, micros: i64| ModelPriceItem {
            price_name: name.to_string(),
            price: price_text(micros),
            price_unit: format!("{} per 1M tokens", price.currency),
            time_band: "standard".to_string(),
        };
        vec![ModelPriceRange {
            range_name: "Default".to_string(),
            prices: vec![item("input", price.input_micros_per_million), item("output", price.output_micros_per_million)],
        }]
    });
    let description = if listed.model.demo { "Served by keygate's built-in demo upstream." } else { "" };
    CatalogModelItem {
        model: listed.model.name.clone(),
        name: listed.model.display_name.clone(),
        description: description.to_string(),
        provider: listed.provider.to_string(),
        published_time: 0,
        capabilities: strings(&listed.capabilities),
        features: Vec::new(),
        inference_metadata: InferenceMetadata {
            request_modality: strings(&listed.request_modality),
            response_modality: strings(&["Text"]),
        },
        model_info: ModelInfo::default(),
        prices,
    }
}

async fn list_models(call: Call, RawQuery(query): RawQuery) -> Answer<ListCatalogModelsResponse> {
    let request = read_list_models(query)?;
    let listing = ModelListing {
        model: request.model,
        name: request.name,
        providers: request.providers,
        capabilities: request.capabilities,
        features: request.features,
    };
    let listed = billing::list_models(call.operations(), &listing)?;
    let total = listed.len() as u64;
    let (models, page) = paged(listed.into_iter().map(catalog_model_wire), total, request.page);
    call.answer(ListCatalogModelsResponse { models, page, error_message: String::new() })
}

/// ListModelLimits' page: `maxResults` 0 to 200 (0 or absent: 20), then `nextToken`.
const DEFAULT_LIMITS_PAGE_SIZE: u32 = 20;
const MAX_LIMITS_PAGE_SIZE: i64 = 200;

fn read_list_model_limits(query: Option<String>) -> Result<ListModelLimitsRequest> {
    let query = query_fields(query)?;
    let max_results = query
        .integer("maxResults", 0..=MAX_LIMITS_PAGE_SIZE)?
        .and_then(|limit| u32::try_from(limit).ok())
        .filter(|limit| *limit > 0)
        .unwrap_or(DEFAULT_LIMITS_PAGE_SIZE);
    let page = PageRequest { max_results: Some(max_results), next_token: read_next_token(&query)? };
    let text = |name: &str| query.get_non_empty(name).map(str::to_string);
    Ok(ListModelLimitsRequest { page, workspace_id: text("workspaceId"), model: text("model"), name: text("name") })
}

fn limit_values_wire(values: &LimitValues) -> ModelLimitValues {
    let signed = |value: Option<u64>| value.map(|value| i64::try_from(value).unwrap_or(i64::MAX));
    ModelLimitValues {
        request_limit: signed(values.request_limit),
        request_limit_period: signed(values.request_limit_period),
        usage_limit: signed(values.usage_limit),
        usage_limit_field: values.usage_limit.map(|_| USAGE_LIMIT_FIELD.to_string()),
        usage_limit_period: signed(values.usage_limit_period),
    }
}

async fn list_model_limits(call: Call, RawQuery(query): RawQuery) -> Answer<ListModelLimitsResponse> {
    let request = read_list_model_limits(query)?;
    let (operations, actor) = (call.operations(), call.actor());
    let workspace = resolve_workspace(operations, &actor, request.workspace_id.as_deref()).await?;
    let listing = LimitListing { model: request.model, name: request.name };
    let listed = model_limits::list_model_limits(operations, &actor, &workspace, &listing).await?;
    let total = listed.len() as u64;
    let items = listed.into_iter().map(|listed| ModelLimitItem {
        model: listed.model.name.clone(),
        name: listed.model.display_name.clone(),
        workspace_id: workspace.workspace_id.clone(),
        model_limit: listed.model.default_limit.as_ref().map(limit_values_wire),
        workspace_limit: listed.workspace_limit.as_ref().map(limit_values_wire),
    });
    let (limits, page) = paged(items, total, request.page);
    call.answer(ListModelLimitsResponse { limits, page, error_message: String::new() })
}

/// UpdateModelLimits' form body: `workspaceId`, and `workspaceLimits`, one JSON array.
fn read_update_model_limits(form: &FormFields) -> Result<UpdateModelLimitsRequest> {
    let workspace_id = form.get_non_empty("workspaceId").ok_or_else(|| ManagementError::invalid_parameter("workspaceId is required."))?;
    let workspace_limits = json_parameter::<Vec<WorkspaceLimitChange>>(
        form,
        "workspaceLimits",
        "a JSON array of {\"model\", \"operationType\", \"requestLimit\", \"requestLimitPeriod\", \"usageLimit\", \"usageLimitPeriod\"} with integer values",
    )?
    .ok_or_else(|| ManagementError::invalid_parameter("workspaceLimits is required."))?;
    Ok(UpdateModelLimitsRequest { workspace_id: workspace_id.to_string(), workspace_limits })
}

/// One item of `workspaceLimits` as a change: its values at least 0.
fn limit_change(index: usize, item: &WorkspaceLimitChange) -> Result<(String, LimitChange)> {
    let count = |name: &str, value: Option<i64>| {
        value
            .map(|value| {
                u64::try_from(value)
                    .map_err(|_| ManagementError::invalid_parameter(format!("workspaceLimits[{index}].{name} must be at least 0.")))
            })
            .transpose()
    };
    if item.model.is_empty() {
        return Err(ManagementError::invalid_parameter(format!("workspaceLimits[{index}].model is required.")));
    }
    let values = LimitValues {
        request_limit: count("requestLimit", item.request_limit)?,
        request_limit_period: count("requestLimitPeriod", item.request_limit_period)?,
        usage_limit: count("usageLimit", item.usage_limit)?,
        usage_limit_period: count("usageLimitPeriod", item.usage_limit_period)?,
    };
    let change = LimitChange::parse(item.operation_type.as_deref(), values)
        .map_err(|error| ManagementError::invalid_parameter(format!("workspaceLimits[{index}]: {error}")))?;
    Ok((item.model.clone(), change))
}

async fn update_model_limits(call: Call, sent: Sent) -> Answer<UpdateModelLimitsResponse> {
    call.auth.caller.may_administer()?;
    let request = read_update_model_limits(&sent.form()?)?;
    let changes = request.workspace_limits.iter().enumerate().map(|(index, item)| limit_change(index, item)).collect::<Result<Vec<_>>>()?;
    let (operations, actor) = (call.operations(), call.actor());
    let workspace = resolve_workspace(operations, &actor, Some(&request.workspace_id)).await?;
    model_limits::update_model_limits(operations, &actor, &workspace, &changes).await?;
    call.answer(UpdateModelLimitsResponse { error_message: String::new() })
}

fn read_billing_selection(query: &FormFields) -> Result<BillingSelection> {
    let filter = json_parameter::<BillingFilter>(query, "filter", "a JSON object {\"dimensions\": [...]}")?;
    let group_by = json_parameter::<Vec<BillingGroupBy>>(query, "groupBy", "a JSON array [{\"code\": ...}]")?
        .ok_or_else(|| ManagementError::invalid_parameter("groupBy is required."))?;
    if group_by.len() != 1 {
        return Err(ManagementError::invalid_parameter("groupBy must hold exactly one code."));
    }
    let top_num = query.integer("topNum", 1..=i64::from(billing::MAX_TOP))?.map(|top| u32::try_from(top).unwrap_or(billing::MAX_TOP));
    Ok(BillingSelection {
        filter,
        group_by,
        locale: query.get_non_empty("locale").map(str::to_string),
        region_id: query.get_non_empty("regionId").map(str::to_string),
        top_num,
        zero_filter: query.boolean("zeroFilter")?,
    })
}

/// The billing query of a request's filter, groupBy, topNum and zeroFilter over `[from, until)`.
fn billing_query(selection: &BillingSelection, (from, until): (i64, i64)) -> Result<BillingQuery> {
    let mut filters = Vec::new();
    for BillingDimensionFilter { code, select_type, values } in
        selection.filter.as_ref().map(|filter| filter.dimensions.as_slice()).unwrap_or_default()
    {
        let exclude = match select_type.to_ascii_uppercase().as_str() {
            "IN" | "INCLUDE" => false,
            "NOT" | "EXCLUDE" => true,
            _ => return Err(ManagementError::invalid_parameter(format!("selectType must be IN or NOT, got '{}'.", shown(select_type)))),
        };
        filters.push(DimensionFilter { dimension: BillingDimension::parse(code)?, exclude, values: values.clone() });
    }
    Ok(BillingQuery {
        filters,
        group_by: BillingDimension::parse(&selection.group_by[0].code)?,
        top: selection.top_num.unwrap_or(billing::MAX_TOP) as usize,
        drop_zero: selection.zero_filter.unwrap_or(true),
        period: from..until,
    })
}

/// An amount in millionths as the billing answers write it (six decimals).
fn amount_text(micros: i64) -> String {
    keygate_core::usage::format_amount(micros, 6)
}

fn read_get_billing_overview(query: Option<String>) -> Result<GetBillingOverviewRequest> {
    let query = query_fields(query)?;
    let bill_month =
        query.get_non_empty("billMonth").ok_or_else(|| ManagementError::invalid_parameter("billMonth is required (YYYY-MM)."))?.to_string();
    Ok(GetBillingOverviewRequest { bill_month, selection: read_billing_selection(&query)? })
}

async fn get_billing_overview(call: Call, RawQuery(query): RawQuery) -> Answer<GetBillingOverviewResponse> {
    let request = read_get_billing_overview(query)?;
    let month = billing::parse_month(&request.bill_month)
        .ok_or_else(|| ManagementError::invalid_parameter(format!("billMonth must be YYYY-MM, got '{}'.", shown(&request.bill_month))))?;
    let billing_query = billing_query(&request.selection, month)?;
    let overview = billing::overview(call.operations(), &call.actor(), &billing_query).await?;
    let top_sum = overview.groups.iter().fold(0_i64, |sum, group| sum.saturating_add(group.amount_micros));
    let groups = overview
        .groups
        .into_iter()
        .map(|group| BillingOverviewGroup {
            amount: amount_text(group.amount_micros),
            percentage: billing::ratio(group.amount_micros, top_sum),
            key: group.key,
            name: group.name,
            article_codes: Vec::new(),
        })
        .collect();
    call.answer(GetBillingOverviewResponse {
        data: BillingOverview {
            currency: overview.currency,
            total_amount: amount_text(overview.total_micros),
            pretax_amount: amount_text(overview.total_micros),
            tax_amount: amount_text(0),
            groups,
        },
        error_message: String::new(),
    })
}

fn read_get_billing_trend(query: Option<String>) -> Result<GetBillingTrendRequest> {
    let query = query_fields(query)?;
    let granularity =
        query.get_non_empty("granularity").ok_or_else(|| ManagementError::invalid_parameter("granularity is required (DAY or MONTH)."))?;
    let time_period = json_parameter::<BillingTimePeriod>(&query, "timePeriod", "a JSON object {\"start\": ..., \"end\": ...}")?
        .ok_or_else(|| ManagementError::invalid_parameter("timePeriod is required."))?;
    Ok(GetBillingTrendRequest { granularity: granularity.to_string(), time_period, selection: read_billing_selection(&query)? })
}

async fn get_billing_trend(call: Call, RawQuery(query): RawQuery) -> Answer<GetBillingTrendResponse> {
    let request = read_get_billing_trend(query)?;
    let granularity = match request.granularity.to_ascii_uppercase().as_str() {
        "DAY" => Granularity::Day,
        "MONTH" => Granularity::Month,
        _ => {
            return Err(ManagementError::invalid_parameter(format!(
                "granularity must be DAY or MONTH, got '{}'.",
                shown(&request.granularity)
            )))
        }
    };
    let day = |text: &str, name: &str| {
        keygate_core::civil_time::parse_utc_date(text)
            .ok_or_else(|| ManagementError::invalid_parameter(format!("timePeriod.{name} must be YYYY-MM-DD, got '{}'.", shown(text))))
    };
    let start = day(&request.time_period.start, "start")?;
    let end = day(&request.time_period.end, "end")?;
    if end < start || (end - start) / crate::operations::usage::DAY >= billing::MAX_TREND_DAYS {
        return Err(ManagementError::invalid_parameter(format!(
            "timePeriod must run forward and span at most {} days.",
            billing::MAX_TREND_DAYS
        )));
    }
    let range = (start, end + crate::operations::usage::DAY);
    let billing_query = billing_query(&request.selection, range)?;
    let trend = billing::trend(call.operations(), &call.actor(), &billing_query, granularity).await?;
    let cost = |micros: i64| BillingCost {
        amount: amount_text(micros),
        pretax_amount: amount_text(micros),
        tax_amount: amount_text(0),
        currency: trend.currency.clone(),
    };
    let group_by_total = trend
        .group_totals
        .iter()
        .map(|group| BillingGroupTotal {
            key: group.key.clone(),
            name: group.name.clone(),
            amount: amount_text(group.amount_micros),
            pretax_amount: amount_text(group.amount_micros),
            tax_amount: amount_text(0),
        })
        .collect();
    let result_by_time = trend
        .periods
        .iter()
        .map(|period| BillingPeriod {
            period: billing::period_name(period.start, granularity),
            total: cost(period.total_micros),
            period_details: period
                .details
                .iter()
                .map(|detail| BillingPeriodDetail {
                    key: detail.key.clone(),
                    name: detail.name.clone(),
                    amount: amount_text(detail.amount_micros),
                    pretax_amount: amount_text(detail.amount_micros),
                    tax_amount: amount_text(0),
                    percentage: billing::ratio(detail.amount_micros, period.total_micros),
                })
                .collect(),
        })
        .collect();
    call.answer(GetBillingTrendResponse {
        data: BillingTrend { cost_totals: cost(trend.total_micros), group_by_total, result_by_time },
        error_message: String::new(),
    })
}
