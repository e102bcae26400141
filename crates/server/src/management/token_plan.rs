//! Token Plan / Coding Plan keys (SPEC section 6.4): CreateTokenPlanKey
//! (`POST /tokenplan/api-keys`) and RotateTokenPlanKey (`POST /tokenplan/api-key-rotations`)
//! as the official SDK calls them: query parameters in, PascalCase bodies out
//! (`{Code, Message, Success, RequestId, Data{...}}`), errors in the same PascalCase shape.
//!
//! A plan key is an `sk-sp-` key held by one principal of the account (the account itself
//! or a RAM user, named by `AccountId`), in the default workspace of the region. Each
//! principal holds at most one per region, which it replaces by rotating; plan keys do
//! not count against the region's pay-as-you-go key limit. They are accepted only on plan
//! listeners (`[[listeners]] plan = true`), and refused on every other path.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use keygate_core::access::KeyAction;
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::ids::Description;
use keygate_core::keys::{expose, generate_key, KeyFormat};
use keygate_core::region::LimitScope;
use keygate_store::{ApiKeyRecord, NewApiKey, QuotaRule, StoreError};
use serde_json::{json, Value};

use super::authentication::Authenticated;
use super::errors::{ErrorShape, ManagementError};
use super::form::shown;
use super::model_studio::{parse_key_id, query_fields};
use crate::operations::keys::require_key_action;
use crate::state::AppState;

/// Routes of the Token Plan operations (authentication is layered on by the caller).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokenplan/api-keys", post(create_token_plan_key))
        .route("/tokenplan/api-key-rotations", post(rotate_token_plan_key))
}

/// Plan keys one principal may hold in a region.
pub const PLAN_KEYS_PER_PRINCIPAL: u32 = 1;

/// The principal that will hold a plan key.
struct Holder {
    user_id: Option<i64>,
    name: String,
}

/// `AccountId`: the account (its name or numeric id) or one of its RAM users (by name).
async fn resolve_holder(state: &AppState, auth: &Authenticated, account_id: &str) -> Result<Holder, ManagementError> {
    let caller = &auth.caller;
    if account_id == caller.account_name || account_id == caller.account_id.to_string() {
        return Ok(Holder { user_id: None, name: caller.account_name.clone() });
    }
    let not_found = || {
        ManagementError::invalid_parameter(format!(
            "AccountId '{}' is neither your account ({} or {}) nor one of its RAM users.",
            shown(account_id),
            caller.account_name,
            caller.account_id
        ))
    };
    let user = match state.store().find_user(caller.account_id, account_id).await {
        Ok(user) => user,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(error) => return Err(error.into()),
    };
    if user.status != keygate_core::access::UserStatus::Active {
        return Err(ManagementError::invalid_parameter(format!("RAM user '{}' is disabled; enable it first.", user.name)));
    }
    Ok(Holder { user_id: Some(user.user_id), name: user.name })
}

/// The answer: `fields` under `Data` in the PascalCase envelope.
fn plan_success(auth: &Authenticated, data: Value) -> Response {
    axum::Json(json!({
        "RequestId": auth.request_id(),
        "Code": "Success",
        "Message": "",
        "HttpStatusCode": 200,
        "Success": true,
        "Data": data,
    }))
    .into_response()
}

fn plan_failure(auth: &Authenticated, error: ManagementError) -> Response {
    error.with_request_id(auth.request_id()).into_response_shaped(ErrorShape::TokenPlan)
}

fn timestamp(milliseconds: i64) -> String {
    format_utc_timestamp(milliseconds.div_euclid(1000))
}

/// CreateTokenPlanKey: `AccountId` (required) names the holder, `Description` is optional.
async fn create_token_plan_key(State(state): State<AppState>, auth: Authenticated, RawQuery(query): RawQuery) -> Response {
    match create(&state, &auth, query).await {
        Ok(data) => plan_success(&auth, data),
        Err(error) => plan_failure(&auth, error),
    }
}

async fn create(state: &AppState, auth: &Authenticated, query: Option<String>) -> Result<Value, ManagementError> {
    let query = query_fields(query)?;
    let account_id = query
        .get_non_empty("AccountId")
        .ok_or_else(|| ManagementError::invalid_parameter("AccountId is required: the account or RAM user that will hold the plan key."))?;
    let description = Description::parse(query.get("Description").unwrap_or(""))?;
    // Rule 1 (the default workspace, of which every RAM user is a member).
    auth.caller.may_create_key(true)?;
    let holder = resolve_holder(state, auth, account_id).await?;
    if holder.user_id != auth.caller.user_id() {
        auth.caller
            .may_administer()
            .map_err(|_| ManagementError::forbidden("Only the account or an admin RAM user may create a plan key for someone else."))?;
    }
    let workspace = state.store().default_workspace(auth.caller.account_id, &auth.region).await?;
    let generated = generate_key(KeyFormat::Plan);
    let new_key = NewApiKey {
        region: auth.region.clone(),
        workspace_id: workspace.workspace_id.clone(),
        creator_user_id: holder.user_id,
        created_by: holder.name.clone(),
        description: description.as_str().to_string(),
        format: KeyFormat::Plan,
        digest: generated.digest,
        masked_key: generated.masked.clone(),
        auth: keygate_core::permissions::KeyAuth::All,
        legacy_ciphertext: None,
    };
    // Counted per holder, among plan keys only (the store counts keys of the new key's kind).
    let quota = QuotaRule { limit: PLAN_KEYS_PER_PRINCIPAL, scope: LimitScope::Creator };
    let record = state.store().create_api_key(&auth.audit(), new_key, quota).await.map_err(|error| match error {
        StoreError::KeyQuotaExceeded { .. } => ManagementError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "QuotaExceeded.TokenPlanKey",
            format!(
                "'{}' already holds a plan key in region {}; replace it with RotateTokenPlanKey (or delete it with DeleteApiKey).",
                holder.name, auth.region
            ),
        ),
        other => other.into(),
    })?;
    Ok(json!({
        "ApiKeyId": record.api_key_id.to_string(),
        // The one place a new plan key's plaintext leaves the server.
        "PlainApiKey": expose(&generated.plaintext),
        "MaskedApiKey": record.masked_key,
        "Description": record.description,
        "SourceId": record.workspace_id,
        "CreatedAt": timestamp(record.created_at),
        "Holder": record.created_by,
        "Region": record.region,
    }))
}

/// RotateTokenPlanKey: a new secret for the plan key `ApiKeyId`; the old one stops working
/// at once (and so do temporary keys minted from it).
async fn rotate_token_plan_key(State(state): State<AppState>, auth: Authenticated, RawQuery(query): RawQuery) -> Response {
    match rotate(&state, &auth, query).await {
        Ok(data) => plan_success(&auth, data),
        Err(error) => plan_failure(&auth, error),
    }
}

async fn rotate(state: &AppState, auth: &Authenticated, query: Option<String>) -> Result<Value, ManagementError> {
    let query = query_fields(query)?;
    let text = query.get_non_empty("ApiKeyId").ok_or_else(|| ManagementError::invalid_parameter("ApiKeyId is required."))?;
    let key_id = parse_key_id(text)?;
    let visibility = auth.caller.key_visibility();
    let existing: ApiKeyRecord = state.store().get_api_key(auth.caller.account_id, &auth.region, key_id, visibility).await?;
    if existing.format != KeyFormat::Plan {
        // Pay-as-you-go keys are reset with ResetApiKey; this operation knows only plan keys.
        return Err(ManagementError::api_key_not_found());
    }
    require_key_action(state, auth, &existing, KeyAction::Rotate).await?;
    let generated = generate_key(KeyFormat::Plan);
    let record =
        state.store().reset_api_key(&auth.audit(), key_id, visibility, KeyFormat::Plan, generated.digest, generated.masked.clone()).await?;
    Ok(json!({
        "ApiKeyId": record.api_key_id.to_string(),
        "PlainApiKey": expose(&generated.plaintext),
        "MaskedApiKey": record.masked_key,
        "ResetAt": timestamp(keygate_store::now_millis()),
        "SourceId": record.workspace_id,
    }))
}
