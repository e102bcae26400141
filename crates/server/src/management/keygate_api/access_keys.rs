//! AccessKeys, the management credentials of the account and its RAM users: list (never
//! the secret), create (the secret is in that one response and stored only encrypted
//! under the master key), disable, enable and delete. Anyone active manages its own; the
//! account and admins also manage those of RAM users (`may_manage_access_keys_of`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use keygate_core::ids::{generate_access_key_secret, AccessKeyId};
use keygate_store::{AccessKeyRecord, StoreError, UserRecord};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, parse_name, respond, Result};
use crate::management::authentication::Authenticated;
use crate::management::errors::ManagementError;
use crate::management::form::FormFields;
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

fn access_key_not_found() -> ManagementError {
    ManagementError::from(StoreError::NotFound("AccessKey"))
}

/// The RAM user `name`, when the caller may manage its AccessKeys. A caller that does not
/// administer gets 403 for every other name, so it cannot probe which names exist.
async fn managed_user(state: &AppState, auth: &Authenticated, name: &str) -> Result<UserRecord> {
    let name = parse_name(name)?;
    match state.store().find_user(auth.caller.account_id, name.as_str()).await {
        Ok(user) => {
            auth.caller.may_manage_access_keys_of(Some(user.user_id))?;
            Ok(user)
        }
        Err(StoreError::NotFound(_)) if auth.caller.may_administer().is_err() => {
            Err(ManagementError::forbidden("you may manage only your own AccessKeys"))
        }
        Err(other) => Err(other.into()),
    }
}

/// A key of the caller's account that the caller may manage; other accounts' keys and
/// malformed ids are 404 `AccessKey.NotFound`.
async fn managed_access_key(state: &AppState, auth: &Authenticated, text: &str) -> Result<AccessKeyRecord> {
    let access_key_id = AccessKeyId::parse(text).map_err(|_| access_key_not_found())?;
    let record = state
        .store()
        .find_access_key(access_key_id.as_str())
        .await?
        .filter(|record| record.account_id == auth.caller.account_id)
        .ok_or_else(access_key_not_found)?;
    auth.caller.may_manage_access_keys_of(record.user_id)?;
    Ok(record)
}

/// The name of an AccessKey's owner: `None` for the account itself.
async fn owner_name(state: &AppState, auth: &Authenticated, user_id: Option<i64>) -> Result<Option<String>> {
    match user_id {
        None => Ok(None),
        Some(user_id) => Ok(Some(state.store().user_by_id(auth.caller.account_id, user_id).await?.name)),
    }
}

/// Every key the caller may manage, or only those of `?user=name`.
pub(super) async fn list_access_keys(State(state): State<AppState>, auth: Authenticated, RawQuery(query): RawQuery) -> Result<Response> {
    let outcome = async {
        let query = FormFields::parse(query.as_deref().unwrap_or(""), "query string")?;
        let records = match query.get_non_empty("user") {
            Some(name) => {
                let user = managed_user(&state, &auth, name).await?;
                state.store().list_access_keys(auth.caller.account_id, Some(Some(user.user_id))).await?
            }
            None => state.store().list_access_keys(auth.caller.account_id, None).await?,
        };
        let names: HashMap<i64, String> =
            state.store().list_users(auth.caller.account_id).await?.into_iter().map(|user| (user.user_id, user.name)).collect();
        let items: Vec<Value> = records
            .iter()
            .filter(|record| auth.caller.may_manage_access_keys_of(record.user_id).is_ok())
            .map(|record| access_key_json(record, record.user_id.and_then(|user_id| names.get(&user_id)).map(String::as_str)))
            .collect();
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
        let (user_id, user_name) = match request.user.as_deref() {
            Some(name) => {
                let user = managed_user(&state, &auth, name).await?;
                (Some(user.user_id), Some(user.name))
            }
            None => (auth.caller.user_id(), auth.caller.user_id().map(|_| auth.caller.display_name().to_string())),
        };
        auth.caller.may_manage_access_keys_of(user_id)?;
        let access_key_id = AccessKeyId::generate();
        let secret = generate_access_key_secret();
        let ciphertext = state.shared.master_key.encrypt(secret.expose_secret());
        let record = state.store().create_access_key(&auth.audit(), access_key_id.as_str(), user_id, &ciphertext).await?;
        Ok(json!({
            "accessKeyId": record.access_key_id,
            // The one place the secret leaves the server.
            "accessKeySecret": secret.expose_secret(),
            "user": user_name,
            "status": "active",
            "gmtCreate": record.created_at,
        }))
    }
    .await;
    respond(&auth, outcome)
}

async fn set_active(state: &AppState, auth: &Authenticated, access_key_id: &str, active: bool) -> Result<Value> {
    let record = managed_access_key(state, auth, access_key_id).await?;
    state.store().set_access_key_active(&auth.audit(), &record.access_key_id, active).await?;
    let updated = state.store().find_access_key(&record.access_key_id).await?.ok_or_else(access_key_not_found)?;
    let owner = owner_name(state, auth, updated.user_id).await?;
    Ok(json!({"accessKey": access_key_json(&updated, owner.as_deref())}))
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
        let record = managed_access_key(&state, &auth, &access_key_id).await?;
        state.store().delete_access_key(&auth.audit(), &record.access_key_id).await?;
        Ok(json!({"deleted": true}))
    }
    .await;
    respond(&auth, outcome)
}
