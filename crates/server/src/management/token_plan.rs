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

use axum::extract::RawQuery;
use axum::routing::post;
use axum::{Json, Router};
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::ids::Description;
use keygate_core::keys::expose;
use keygate_wire::envelope::PlanSuccess;
use keygate_wire::token_plan::{
    CreateTokenPlanKeyRequest, CreatedTokenPlanKey, IssuedPlanKey, RotateTokenPlanKeyRequest, RotatedTokenPlanKey,
};

use super::call::Call;
use super::errors::ManagementError;
use super::model_studio::{parse_key_id, query_fields};
use crate::operations::keys::{create_plan_key, rotate_plan_key, IssuedKey};
use crate::state::AppState;

/// Routes of the Token Plan operations (authentication is layered on by the caller).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokenplan/api-keys", post(create_token_plan_key))
        .route("/tokenplan/api-key-rotations", post(rotate_token_plan_key))
}

/// A handler's answer: its `Data` in the PascalCase envelope.
type Answer<T> = Result<Json<PlanSuccess<T>>, ManagementError>;

fn answer<T>(call: &Call, data: T) -> Answer<T> {
    Ok(Json(PlanSuccess::new(call.auth.request_id(), data)))
}

fn timestamp(milliseconds: i64) -> String {
    format_utc_timestamp(milliseconds.div_euclid(1000))
}

/// The new plaintext of a created or rotated plan key (the one place it leaves the server),
/// with its id and masked form.
fn issued(key: &IssuedKey) -> IssuedPlanKey {
    IssuedPlanKey {
        api_key_id: key.record.api_key_id.to_string(),
        plain_api_key: expose(&key.plaintext).to_string(),
        masked_api_key: key.record.masked_key.clone(),
    }
}

fn read_create(query: Option<String>) -> Result<CreateTokenPlanKeyRequest, ManagementError> {
    let query = query_fields(query)?;
    let account_id = query
        .get_non_empty("AccountId")
        .ok_or_else(|| ManagementError::invalid_parameter("AccountId is required: the account or RAM user that will hold the plan key."))?;
    Ok(CreateTokenPlanKeyRequest { account_id: account_id.to_string(), description: query.get("Description").unwrap_or("").to_string() })
}

/// CreateTokenPlanKey: `AccountId` (required) names the holder, `Description` is optional.
async fn create_token_plan_key(call: Call, RawQuery(query): RawQuery) -> Answer<CreatedTokenPlanKey> {
    let request = read_create(query)?;
    let description = Description::parse(&request.description)?;
    let created = create_plan_key(call.operations(), &call.actor(), &request.account_id, &description).await?;
    let record = &created.record;
    let data = CreatedTokenPlanKey {
        key: issued(&created),
        description: record.description.clone(),
        source_id: record.workspace_id.clone(),
        created_at: timestamp(record.created_at),
        holder: record.created_by.clone(),
        region: record.region.clone(),
    };
    answer(&call, data)
}

fn read_rotate(query: Option<String>) -> Result<RotateTokenPlanKeyRequest, ManagementError> {
    let query = query_fields(query)?;
    let text = query.get_non_empty("ApiKeyId").ok_or_else(|| ManagementError::invalid_parameter("ApiKeyId is required."))?;
    Ok(RotateTokenPlanKeyRequest { api_key_id: parse_key_id(text)? })
}

/// RotateTokenPlanKey: a new secret for the plan key `ApiKeyId`; the old one stops working
/// at once (and so do temporary keys minted from it).
async fn rotate_token_plan_key(call: Call, RawQuery(query): RawQuery) -> Answer<RotatedTokenPlanKey> {
    let request = read_rotate(query)?;
    let rotated = rotate_plan_key(call.operations(), &call.actor(), request.api_key_id).await?;
    let reset_at = timestamp(call.state.shared.clock.now_milliseconds());
    answer(&call, RotatedTokenPlanKey { key: issued(&rotated), reset_at, source_id: rotated.record.workspace_id.clone() })
}
