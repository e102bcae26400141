//! AccessKeys, the management credentials of the account and its RAM users: list (never
//! the secret), create (the secret is in that one response and stored only encrypted
//! under the master key), disable, enable and delete, through
//! [`crate::operations::access_keys`]. Anyone active manages its own; the account and
//! admins also manage those of RAM users (`may_manage_access_keys_of`).

use axum::body::Bytes;
use axum::extract::RawQuery;
use keygate_wire::keygate_api::{AccessKey, AccessKeyResponse, CreateAccessKeyRequest, CreatedAccessKey, Deleted, ListAccessKeysResponse};
use secrecy::ExposeSecret;

use super::{json_body, parse_name};
use crate::management::call::{Answer, Call};
use crate::management::form::FormFields;
use crate::operations::access_keys::{self, AccessKeyOwner};
use crate::operations::AccessKeyRecord;
use crate::planes::Path;

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
pub(super) async fn list_access_keys(call: Call, RawQuery(query): RawQuery) -> Answer<ListAccessKeysResponse> {
    let query = FormFields::parse(query.as_deref().unwrap_or(""), "query string")?;
    let user = query.get_non_empty("user").map(parse_name).transpose()?;
    let keys = access_keys::list_access_keys(call.operations(), &call.actor(), user.as_ref()).await?;
    call.answer(ListAccessKeysResponse { access_keys: keys.iter().map(|key| access_key(&key.record, key.owner.as_deref())).collect() })
}

pub(super) async fn create_access_key(call: Call, body: Bytes) -> Answer<CreatedAccessKey> {
    let request: CreateAccessKeyRequest =
        if body.iter().all(u8::is_ascii_whitespace) { CreateAccessKeyRequest::default() } else { json_body(&body, r#"{"user"?}"#)? };
    let user = request.user.as_deref().map(parse_name).transpose()?;
    let owner = user.as_ref().map_or(AccessKeyOwner::Caller, AccessKeyOwner::User);
    let created = access_keys::create_access_key(call.operations(), &call.actor(), owner).await?;
    let record = &created.record;
    call.answer(CreatedAccessKey {
        access_key_id: record.access_key_id.clone(),
        // The one place the secret leaves the server.
        access_key_secret: created.secret.expose_secret().to_string(),
        user: created.owner.clone(),
        status: "active".to_string(),
        gmt_create: record.created_at,
    })
}

/// `POST .../disable` (`ACTIVE` false) and `POST .../enable` (`ACTIVE` true): one handler,
/// so that the two cannot drift apart.
pub(super) async fn set_access_key_active<const ACTIVE: bool>(call: Call, Path(access_key_id): Path<String>) -> Answer<AccessKeyResponse> {
    let updated = access_keys::set_access_key_active(call.operations(), &call.actor(), &access_key_id, ACTIVE).await?;
    call.answer(AccessKeyResponse { access_key: access_key(&updated.record, updated.owner.as_deref()) })
}

pub(super) async fn delete_access_key(call: Call, Path(access_key_id): Path<String>) -> Answer<Deleted> {
    access_keys::delete_access_key(call.operations(), &call.actor(), &access_key_id).await?;
    call.answer(Deleted { deleted: true })
}
