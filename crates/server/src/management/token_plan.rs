//! Token Plan / Coding Plan keys (docs/CONTRACT.md#token-plan): CreateTokenPlanKey
//! (`POST /tokenplan/api-keys`) and RotateTokenPlanKey (`POST /tokenplan/api-key-rotations`)
//! as the official SDK calls them: query parameters in, PascalCase bodies out
//! (`{Code, Message, Success, RequestId, Data{...}}`, the types of
//! [`keygate_wire::token_plan`]), errors in the same PascalCase shape ([`super::boundary`]
//! picks it by the path).
//!
//! A plan key is an `sk-sp-` key held by one principal of the account (the account itself
//! or a RAM user, named by `AccountId`), in the default workspace of the region. Each
//! principal holds at most one per region, which it replaces by rotating; plan keys do
//! not count against the region's pay-as-you-go key limit. They are accepted only on plan
//! listeners (`[[listeners]] plan = true`), and refused on every other path.

use axum::extract::{RawQuery, State};
use axum::routing::post;
use axum::{Json, Router};
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::ids::Description;
use keygate_core::keys::expose;
use keygate_wire::envelope::PlanSuccess;
use keygate_wire::token_plan::{CreateTokenPlanKeyRequest, CreatedTokenPlanKey, RotateTokenPlanKeyRequest, RotatedTokenPlanKey};

use super::authentication::Authenticated;
use super::errors::ManagementError;
use super::model_studio::{parse_key_id, query_fields};
use crate::operations::keys::{create_plan_key, rotate_plan_key};
use crate::state::AppState;

/// Routes of the Token Plan operations (authentication is layered on by the caller).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokenplan/api-keys", post(create_token_plan_key))
        .route("/tokenplan/api-key-rotations", post(rotate_token_plan_key))
}

/// A handler's answer: `data` under `Data` in the PascalCase envelope.
type Answer<T> = Result<Json<PlanSuccess<T>>, ManagementError>;

fn answer<T>(auth: &Authenticated, data: T) -> Answer<T> {
    Ok(Json(PlanSuccess::new(auth.request_id(), data)))
}

fn timestamp(milliseconds: i64) -> String {
    format_utc_timestamp(milliseconds.div_euclid(1000))
}

fn read_create(query: Option<String>) -> Result<CreateTokenPlanKeyRequest, ManagementError> {
    let query = query_fields(query)?;
    let account_id = query
        .get_non_empty("AccountId")
        .ok_or_else(|| ManagementError::invalid_parameter("AccountId is required: the account or RAM user that will hold the plan key."))?;
    Ok(CreateTokenPlanKeyRequest { account_id: account_id.to_string(), description: query.get("Description").unwrap_or("").to_string() })
}

/// CreateTokenPlanKey: `AccountId` (required) names the holder, `Description` is optional.
async fn create_token_plan_key(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
) -> Answer<CreatedTokenPlanKey> {
    let request = read_create(query)?;
    let description = Description::parse(&request.description)?;
    let operations = state.operations();
    let created = create_plan_key(operations, &auth.actor(&operations), &request.account_id, &description).await?;
    let record = &created.record;
    answer(
        &auth,
        CreatedTokenPlanKey {
            api_key_id: record.api_key_id.to_string(),
            // The one place a new plan key's plaintext leaves the server.
            plain_api_key: expose(&created.plaintext).to_string(),
            masked_api_key: record.masked_key.clone(),
            description: record.description.clone(),
            source_id: record.workspace_id.clone(),
            created_at: timestamp(record.created_at),
            holder: record.created_by.clone(),
            region: record.region.clone(),
        },
    )
}

fn read_rotate(query: Option<String>) -> Result<RotateTokenPlanKeyRequest, ManagementError> {
    let query = query_fields(query)?;
    let text = query.get_non_empty("ApiKeyId").ok_or_else(|| ManagementError::invalid_parameter("ApiKeyId is required."))?;
    Ok(RotateTokenPlanKeyRequest { api_key_id: parse_key_id(text)? })
}

/// RotateTokenPlanKey: a new secret for the plan key `ApiKeyId`; the old one stops working
/// at once (and so do temporary keys minted from it).
async fn rotate_token_plan_key(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
) -> Answer<RotatedTokenPlanKey> {
    let request = read_rotate(query)?;
    let operations = state.operations();
    let rotated = rotate_plan_key(operations, &auth.actor(&operations), request.api_key_id).await?;
    let record = &rotated.record;
    answer(
        &auth,
        RotatedTokenPlanKey {
            api_key_id: record.api_key_id.to_string(),
            plain_api_key: expose(&rotated.plaintext).to_string(),
            masked_api_key: record.masked_key.clone(),
            reset_at: timestamp(state.shared.clock.now_milliseconds()),
            source_id: record.workspace_id.clone(),
        },
    )
}
