//! `POST /api/v1/tokens?expire_in_seconds=N`: a temporary `st-` key minted from a permanent
//! one, limited per API key (`temporary_keys_per_minute`, default 60) and audited in
//! aggregate.
//!
//! Minting needs no database read, so a client could otherwise mint without bound and
//! write one audit row each. The first key minted from an API key in a minute is audited
//! before its token is handed out; the others of that minute are counted, and when the
//! minute is over one summary row records how many there were
//! (`ApiKey.MintTemporary.Summary`), written by the background task that flushes usage.
//! A crash can lose a summary, never a first row.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keygate_core::key_expiry::temporary_key_expiry;
use keygate_core::temporary_keys::{checked_lifetime, mint_temporary_key, DEFAULT_TEMPORARY_KEY_SECONDS};
use keygate_core::verification::{AuthenticationFailure, CallTarget};
use keygate_store::AuditContext;
use serde_json::json;

use super::authorize::{authenticate_request, authorize_target};
use super::errors::{GatewayRefusal, Protocol};
use super::respond;
use crate::request_context::RequestContext;
use crate::state::AppState;

/// `POST /api/v1/tokens?expire_in_seconds=N`.
pub async fn mint_temporary(
    State(state): State<AppState>,
    context: RequestContext,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = mint(&state, &context, query.as_deref().unwrap_or(""), &headers).await;
    respond(&state, Protocol::Native, &context, result)
}

async fn mint(state: &AppState, context: &RequestContext, query: &str, headers: &HeaderMap) -> Result<Response, GatewayRefusal> {
    let authorized = authenticate_request(state, Protocol::Native, headers.into(), context)?;
    if authorized.temporary {
        return Err(GatewayRefusal::TemporaryKeyCannotMint);
    }
    authorize_target(state, &authorized, context, headers.into(), CallTarget::Nothing)?;
    let lifetime = match form_value(query, "expire_in_seconds") {
        None => DEFAULT_TEMPORARY_KEY_SECONDS,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .and_then(checked_lifetime)
            .ok_or_else(|| GatewayRefusal::BadRequest("expire_in_seconds must be an integer from 1 to 1800.".into()))?,
    };
    let digest =
        state.store().registry().digest_of(authorized.key.key_id).ok_or(GatewayRefusal::Authentication(AuthenticationFailure::Unknown))?;
    let now_milliseconds = state.shared.clock.now_milliseconds();
    let now = now_milliseconds.div_euclid(1000);
    // Never beyond the parent's expiry, or the grace period of the old secret presented.
    let expires_at = temporary_key_expiry(now, lifetime, authorized.works_until);
    let audit = AuditContext {
        account_id: authorized.key.account_id,
        actor: format!("apiKey:{}", authorized.key.key_id),
        client_address: context.client_address_text(),
        region: state.listener_region.clone(),
        credential: String::new(),
        at: now_milliseconds,
    };
    let first_of_minute = state
        .shared
        .temporary_key_mints
        .admit(authorized.key.key_id, now, &audit)
        .map_err(|retry_after_seconds| GatewayRefusal::MintThrottled { retry_after_seconds })?;
    if first_of_minute {
        // Written before the token is handed out.
        if let Err(error) = state
            .store()
            .record_audit(&audit, "ApiKey.MintTemporary", &format!("apiKey:{}", authorized.key.key_id), &format!("expires_at={expires_at}"))
            .await
        {
            tracing::error!(%error, request_id = %context.request_id, "could not audit a temporary key");
            return Err(GatewayRefusal::Internal);
        }
    }
    let token = mint_temporary_key(&state.shared.temporary_key_secret, authorized.key.key_id, &digest, expires_at);
    Ok(Json(json!({"token": token, "expires_at": expires_at, "request_id": context.request_id})).into_response())
}

fn form_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(key, _)| *key == name).map(|(_, value)| value)
}
