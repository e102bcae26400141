//! AccessKeys, the management credentials of the account and its RAM users: list (never
//! the secret), create (the secret is in that one response and stored only encrypted
//! under the master key), disable, enable and delete, through
//! [`crate::operations::access_keys`]. Anyone active manages its own; the account and
//! admins also manage those of RAM users (`may_manage_access_keys_of`).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, parse_name, respond, Result};
use crate::management::authentication::Authenticated;
use crate::management::form::FormFields;
use crate::operations::access_keys::{self, AccessKeyOwner};
use crate::operations::AccessKeyRecord;
use crate::planes::Path;
use crate::state::AppState;

/// An AccessKey as lists show it: who owns it and its state, never the secret.
fn access_key_json(record: &AccessKeyRecord, owner_name: Option<&str>) -> Value {
    json!({
        "accessKeyId": record.access_key_id,
        "user": owner_name,
        "status": if record.active { "active" } else { "disabled" },
        "gmtCreate": record.created_at,
        "lastUsedAt": record.last_used_at,
    })
}

/// Every key the caller may manage, or only those of `?user=name`.
pub(super) async fn list_access_keys(State(state): State<AppState>, auth: Authenticated, RawQuery(query): RawQuery) -> Result<Response> {
    let outcome = async {
        let query = FormFields::parse(query.as_deref().unwrap_or(""), "query string")?;
        let user = query.get_non_empty("user").map(parse_name).transpose()?;
        let operations = state.operations();
        let keys = access_keys::list_access_keys(operations, &auth.actor(&operations), user.as_ref()).await?;
        let items: Vec<Value> = keys.iter().map(|key| access_key_json(&key.record, key.owner.as_deref())).collect();
        Ok(json!({"accessKeys": items}))
    }
    .await;
    respond(&auth, outcome)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateAccessKeyRequest {
    /// The RAM user to create it for; the caller itself when absent.
    #[serde(default)]
    user: Option<String>,
}

pub(super) async fn create_access_key(State(state): State<AppState>, auth: Authenticated, body: Bytes) -> Result<Response> {
    let outcome = async {
        let request: CreateAccessKeyRequest =
            if body.iter().all(u8::is_ascii_whitespace) { CreateAccessKeyRequest::default() } else { json_body(&body, r#"{"user"?}"#)? };
        let user = request.user.as_deref().map(parse_name).transpose()?;
        let owner = user.as_ref().map_or(AccessKeyOwner::Caller, AccessKeyOwner::User);
        let operations = state.operations();
        let created = access_keys::create_access_key(operations, &auth.actor(&operations), owner).await?;
        let record = &created.record;
        Ok(json!({
            "accessKeyId": record.access_key_id,
            // The one place the secret leaves the server.
            "accessKeySecret": created.secret.expose_secret(),
            "user": created.owner,
            "status": "active",
            "gmtCreate": record.created_at,
        }))
    }
    .await;
    respond(&auth, outcome)
}

async fn set_active(state: &AppState, auth: &Authenticated, access_key_id: &str, active: bool) -> Result<Value> {
    let operations = state.operations();
    let updated = access_keys::set_access_key_active(operations, &auth.actor(&operations), access_key_id, active).await?;
    Ok(json!({"accessKey": access_key_json(&updated.record, updated.owner.as_deref())}))
}

pub(super) async fn disable_access_key(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(access_key_id): Path<String>,
) -> Result<Response> {
    let outcome = set_active(&state, &auth, &access_key_id, false).await;
    respond(&auth, outcome)
}

pub(super) async fn enable_access_key(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(access_key_id): Path<String>,
) -> Result<Response> {
    let outcome = set_active(&state, &auth, &access_key_id, true).await;
    respond(&auth, outcome)
}

pub(super) async fn delete_access_key(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(access_key_id): Path<String>,
) -> Result<Response> {
    let outcome = async {
        let operations = state.operations();
        access_keys::delete_access_key(operations, &auth.actor(&operations), &access_key_id).await?;
        Ok(json!({"deleted": true}))
    }
    .await;
    respond(&auth, outcome)
}
