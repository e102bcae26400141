//! Steps 1-6 of docs/CONTRACT.md#order-of-checks for one request: find the presented key, authenticate it
//! against the in-memory registry (permanent or temporary), then check the address, the
//! workspace header and the model or app. Failed authentications feed the throttle.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use keygate_core::verification::{authorize_call, AuthenticationFailure, AuthorizationFailure, CallFacts, CallTarget, CompiledKey};

use super::errors::{GatewayRefusal, Protocol};
use crate::request_context::RequestContext;
use crate::state::AppState;

// Header names parsed once: a name given as `&str` is parsed on every lookup, and these
// lookups run on every call.
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static X_DASHSCOPE_WORKSPACE: HeaderName = HeaderName::from_static("x-dashscope-workspace");

/// An authenticated key.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub key: Arc<CompiledKey>,
    pub temporary: bool,
    /// When the presented secret stops working (Unix seconds, `i64::MAX`: never): a
    /// temporary key minted from it may not outlive it.
    pub works_until: i64,
    /// When it was authenticated (Unix milliseconds): the time usage is counted at, so
    /// that a call reads the clock once.
    pub at_milliseconds: i64,
}

/// The presented key: `Authorization: Bearer` everywhere, `x-api-key` too on the Anthropic
/// path and on `/auth/verify`.
pub fn presented_key(headers: &HeaderMap, protocol: Protocol) -> Option<&str> {
    presented_key_of(headers.get(axum::http::header::AUTHORIZATION), || headers.get(&X_API_KEY), protocol)
}

/// [`presented_key`] from the `Authorization` header's value and a way to find `x-api-key`'s
/// (looked for only when there is no bearer token).
pub fn presented_key_of<'a>(
    authorization: Option<&'a HeaderValue>,
    x_api_key: impl FnOnce() -> Option<&'a HeaderValue>,
    protocol: Protocol,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|value| value.to_str().ok()).and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    });
    let api_key = || x_api_key().and_then(|value| value.to_str().ok()).map(str::trim);
    match protocol {
        Protocol::OpenAi => bearer,
        Protocol::Native | Protocol::Anthropic => bearer.or_else(api_key),
    }
    .filter(|key| !key.is_empty())
}

/// Steps 1-3: a key is present, well-formed, known in this listener's region and usable.
pub fn authenticate_request(
    state: &AppState,
    protocol: Protocol,
    headers: &HeaderMap,
    context: &RequestContext,
) -> Result<Authorized, GatewayRefusal> {
    authenticate_presented(state, presented_key(headers, protocol), context)
}

/// Steps 1-3 for the key the request presented (`None`: none).
pub fn authenticate_presented(state: &AppState, presented: Option<&str>, context: &RequestContext) -> Result<Authorized, GatewayRefusal> {
    if let Some(problem) = state.staleness_problem() {
        tracing::warn!(%problem, "refusing a call: keys cannot be confirmed");
        return Err(GatewayRefusal::RegistryStale);
    }
    let at_milliseconds = state.shared.clock.now_milliseconds();
    let now = at_milliseconds.div_euclid(1000);
    let started = std::time::Instant::now();
    let outcome = match presented {
        None => Err(AuthenticationFailure::Missing),
        Some(presented) => state.store().registry().authenticate_any(
            presented,
            &state.listener_region,
            state.key_endpoint,
            &state.shared.temporary_key_secret,
            now,
        ),
    };
    state.shared.metrics.record_verification(started.elapsed());
    match outcome {
        Ok(authenticated) => Ok(Authorized {
            key: authenticated.key,
            temporary: authenticated.temporary,
            works_until: authenticated.works_until,
            at_milliseconds,
        }),
        Err(failure) => match state.shared.throttle.record_failure(context.client_address, now) {
            Some(retry_after_seconds) => Err(GatewayRefusal::Throttled { retry_after_seconds }),
            None => Err(GatewayRefusal::Authentication(failure)),
        },
    }
}

/// Steps 4-6 for `target`.
pub fn authorize_target(
    state: &AppState,
    authorized: &Authorized,
    context: &RequestContext,
    headers: &HeaderMap,
    target: CallTarget<'_>,
) -> Result<(), GatewayRefusal> {
    let workspace_header = headers.get(&X_DASHSCOPE_WORKSPACE).and_then(|value| value.to_str().ok());
    authorize_target_in(state, authorized, context, workspace_header, target)
}

/// Steps 4-6 for `target`, with the request's `X-DashScope-WorkSpace` header already read.
pub fn authorize_target_in(
    state: &AppState,
    authorized: &Authorized,
    context: &RequestContext,
    workspace_header: Option<&str>,
    target: CallTarget<'_>,
) -> Result<(), GatewayRefusal> {
    let grants = state.store().registry().workspace(&authorized.key.workspace_id);
    let facts = CallFacts { client_address: context.client_address, workspace_header, target };
    authorize_call(&authorized.key, grants.as_deref(), &facts, |model| state.shared.catalog.contains(model)).map_err(|failure| {
        match (failure, target) {
            (AuthorizationFailure::ModelNotAllowed(denial), CallTarget::Model(model)) => {
                GatewayRefusal::ModelDenied { model: model.to_string(), workspace_id: authorized.key.workspace_id.to_string(), denial }
            }
            (failure, _) => GatewayRefusal::Authorization(failure),
        }
    })
}
