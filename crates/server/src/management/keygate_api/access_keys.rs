//! AccessKeys, the management credentials of the account and its RAM users: list (never
//! the secret), create (the secret is in that one response and stored only encrypted
//! under the master key), disable, enable and delete, through
//! [`crate::operations::access_keys`]. Anyone active manages its own; the account and
//! admins also manage those of RAM users (`may_manage_access_keys_of`).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use keygate_wire::keygate_api::{AccessKey, AccessKeyResponse, CreateAccessKeyRequest, CreatedAccessKey, Deleted, ListAccessKeysResponse};
use secrecy::ExposeSecret;

use super::{json_body, parse_name, respond, Result};
use crate::management::authentication::Authenticated;
use crate::management::form::FormFields;
use crate::operations::access_keys::{self, AccessKeyOwner};
use crate::operations::AccessKeyRecord;
use crate::planes::Path;
use crate::state::AppState;

/// An AccessKey as lists show it: who owns it and its state, never the secret.
fn access_key(record: &AccessKeyRecord, owner_name: Option<&str>) -> AccessKey {
    AccessKey {
        access_key_id: record.access_key_id.clone(),
        user: owner_name.map(str::to_string),
        status: if record.active { "active" } else { "disabled" }.to_string(),
        gmt_create: record.created_at,
        last_used_at: record.last_used_at,
    }
}

/// Every key the caller may manage, or only those of `?user=name`.
pub(super) async fn list_access_keys(State(state): State<AppState>, auth: Authenticated, RawQuery(query): RawQuery) -> Result<Response> {
    let outcome = async {
        let query = FormFields::parse(query.as_deref().unwrap_or(""), "query string")?;
        let user = query.get_non_empty("user").map(parse_name).transpose()?;
        let operations = state.operations();
        let keys = access_keys::list_access_keys(operations, &auth.actor(&operations), user.as_ref()).await?;
        Ok(ListAccessKeysResponse { access_keys: keys.iter().map(|key| access_key(&key.record, key.owner.as_deref())).collect() })
    }
    .await;
    respond(&auth, outcome)
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
        Ok(CreatedAccessKey {
            access_key_id: record.access_key_id.clone(),
            // The one place the secret leaves the server.
            access_key_secret: created.secret.expose_secret().to_string(),
            user: created.owner.clone(),
            status: "active".to_string(),
            gmt_create: record.created_at,
        })
    }
    .await;
    respond(&auth, outcome)
}

/// `POST .../disable` (`ACTIVE` false) and `POST .../enable` (`ACTIVE` true): one handler,
/// so that the two cannot drift apart.
pub(super) async fn set_access_key_active<const ACTIVE: bool>(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(access_key_id): Path<String>,
) -> Result<Response> {
    let outcome = async {
        let operations = state.operations();
        let updated = access_keys::set_access_key_active(operations, &auth.actor(&operations), &access_key_id, ACTIVE).await?;
        Ok(AccessKeyResponse { access_key: access_key(&updated.record, updated.owner.as_deref()) })
    }
    .await;
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
        Ok(Deleted { deleted: true })
    }
    .await;
    respond(&auth, outcome)
}
