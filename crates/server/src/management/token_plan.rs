//! Token Plan / Coding Plan keys (docs/CONTRACT.md#token-plan): CreateTokenPlanKey
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
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::ids::Description;
use keygate_core::keys::expose;
use serde_json::{json, Value};

use super::authentication::Authenticated;
use super::errors::{ErrorShape, ManagementError};
use super::model_studio::{parse_key_id, query_fields};
use crate::operations::keys::{create_plan_key, rotate_plan_key};
use crate::state::AppState;

/// Routes of the Token Plan operations (authentication is layered on by the caller).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokenplan/api-keys", post(create_token_plan_key))
        .route("/tokenplan/api-key-rotations", post(rotate_token_plan_key))
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
    let operations = state.operations();
    let created = create_plan_key(operations, &auth.actor(&operations), account_id, &description).await?;
    let record = &created.record;
    Ok(json!({
        "ApiKeyId": record.api_key_id.to_string(),
        // The one place a new plan key's plaintext leaves the server.
        "PlainApiKey": expose(&created.plaintext),
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
    let operations = state.operations();
    let actor = auth.actor(&operations);
    let rotated = rotate_plan_key(operations, &actor, key_id).await?;
    let record = &rotated.record;
    Ok(json!({
        "ApiKeyId": record.api_key_id.to_string(),
        "PlainApiKey": expose(&rotated.plaintext),
        "MaskedApiKey": record.masked_key,
        "ResetAt": timestamp(state.shared.clock.now_milliseconds()),
        "SourceId": record.workspace_id,
    }))
}
