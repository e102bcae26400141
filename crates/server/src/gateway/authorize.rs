//! Steps 1-6 of docs/CONTRACT.md#order-of-checks for one request: find the presented key, authenticate it
//! against the in-memory registry (permanent or temporary), then check the address, the
//! workspace header and the model or app. Failed authentications feed the throttle.

use axum::http::HeaderName;
use keygate_core::verification::{
    authorize_call, AuthenticatedKey, AuthenticatedView, AuthenticationFailure, AuthorizationFailure, CallFacts, CallTarget, CompiledKey,
    WorkspaceGrants,
};

use super::errors::{GatewayRefusal, Protocol};
use super::verify_headers::visible_text;
use crate::request_context::RequestContext;
use crate::request_headers::RequestHeaders;
use crate::state::AppState;
use crate::thread_handles::{thread_handle, ThreadHandle};

// Header names parsed once: a name given as `&str` is parsed on every lookup, and these
// lookups run on every call.
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub static X_DASHSCOPE_WORKSPACE: HeaderName = HeaderName::from_static("x-dashscope-workspace");

/// An authenticated key, and its workspace's grants as the registry held them then.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// This thread's handle on the key (`crate::thread_handles`): a call holds its key
    /// until its answer is relayed without writing the key's own reference count.
    pub key: ThreadHandle<CompiledKey>,
    pub workspace: Option<ThreadHandle<WorkspaceGrants>>,
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
pub fn presented_key<'a>(headers: RequestHeaders<'a>, protocol: Protocol) -> Option<&'a str> {
    presented_key_of(headers.get(&axum::http::header::AUTHORIZATION), || headers.get(&X_API_KEY), protocol)
}

/// [`presented_key`] from the `Authorization` header's value and a way to find `x-api-key`'s
/// (looked for only when there is no bearer token).
pub fn presented_key_of<'a>(
    authorization: Option<&'a [u8]>,
    x_api_key: impl FnOnce() -> Option<&'a [u8]>,
    protocol: Protocol,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|value| plain_bearer_token(value).or_else(|| bearer_token(value)));
    let api_key = || x_api_key().and_then(visible_text).map(str::trim);
    match protocol {
        Protocol::OpenAi => bearer,
        Protocol::Native | Protocol::Anthropic => bearer.or_else(api_key),
    }
    .filter(|key| !key.is_empty())
}

/// The token of an `Authorization` value (`Bearer TOKEN`, the scheme in any case, spaces
/// around either part ignored), or `None` when it has no bearer token.
fn bearer_token(value: &[u8]) -> Option<&str> {
    let (scheme, token) = visible_text(value)?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// [`bearer_token`] for the value every client sends, `Bearer ` and a token with no space
/// around it: the header's one validating pass and a look at the token's ends, without the
/// general reading's trims and search for the space, which were a tenth of what
/// `/auth/verify` adds to a bare hyper server (docs/PERFORMANCE.md). `None` for anything
/// else, which [`bearer_token`] then reads.
fn plain_bearer_token(value: &[u8]) -> Option<&str> {
    let token = visible_text(value.strip_prefix(b"Bearer ")?)?;
    // A valid header value holds visible ASCII, spaces and tabs only, so these two are the
    // only whitespace `trim` could have removed from either end.
    let spaced = |byte: Option<&u8>| byte.is_none_or(|byte| *byte == b' ' || *byte == b'\t');
    (!spaced(token.as_bytes().first()) && !spaced(token.as_bytes().last())).then_some(token)
}

/// Steps 1-3: a key is present, well-formed, known in this listener's region and usable.
pub fn authenticate_request(
    state: &AppState,
    protocol: Protocol,
    headers: RequestHeaders<'_>,
    context: &RequestContext,
) -> Result<Authorized, GatewayRefusal> {
    authenticate_presented(state, presented_key(headers, protocol), context)
}

/// The registry's verdict on the presented key (`None`: none) at `now` (Unix seconds), for
/// this listener's region and kind of key: steps 1-3 without their consequences (no
/// failure counted, no metric, no refusal made).
pub fn registry_verdict(state: &AppState, presented: Option<&str>, now: i64) -> Result<AuthenticatedKey, AuthenticationFailure> {
    match presented {
        None => Err(AuthenticationFailure::Missing),
        Some(presented) => state.store().registry().authenticate_any(
            presented,
            &state.listener_region,
            state.key_endpoint,
            &state.shared.temporary_key_secret,
            now,
        ),
    }
}

/// Steps 1-3 for the key the request presented (`None`: none).
pub fn authenticate_presented(state: &AppState, presented: Option<&str>, context: &RequestContext) -> Result<Authorized, GatewayRefusal> {
    // The key and its workspace found under one look of the registry's lock and held by
    // this thread's handles.
    authenticated_then(state, presented, context, |view, at_milliseconds| Authorized {
        key: thread_handle(view.key),
        workspace: view.workspace.map(thread_handle),
        temporary: view.temporary,
        works_until: view.works_until,
        at_milliseconds,
    })
}

/// Steps 1-6 for the key the request presented and `target`, then `then` on the key, for
/// a decision that only looks at the key (`/auth/verify`): the key is borrowed from the
/// registry, not shared (see `KeyRegistry::authenticate_then`). `then` runs under the
/// registry's read lock and gets the key and the time of the call (Unix milliseconds).
pub fn authenticate_and_authorize<R>(
    state: &AppState,
    presented: Option<&str>,
    context: &RequestContext,
    workspace_header: Option<&str>,
    target: CallTarget<'_>,
    then: impl FnOnce(&CompiledKey, i64) -> R,
) -> Result<R, GatewayRefusal> {
    let facts = CallFacts { client_address: context.client_address, workspace_header, target };
    authenticated_then(state, presented, context, |view, at_milliseconds| {
        authorize_call(view.key, view.workspace.map(|grants| &**grants), &facts, |model| state.shared.catalog.contains(model))
            .map(|()| then(view.key, at_milliseconds))
            .map_err(|failure| authorization_refusal(failure, target, view.key))
    })?
}

/// Steps 1-3 as `registry_verdict` decides them, with their consequences: refused while
/// the registry is stale, the clock read once, the verification timed for the metrics, a
/// failure counted by the throttle. On success `decide` runs under the registry's read
/// lock with the registry's view of the key and the time of the call (Unix milliseconds).
fn authenticated_then<R>(
    state: &AppState,
    presented: Option<&str>,
    context: &RequestContext,
    decide: impl FnOnce(AuthenticatedView<'_>, i64) -> R,
) -> Result<R, GatewayRefusal> {
    if let Some(problem) = state.staleness_problem() {
        tracing::warn!(%problem, "refusing a call: keys cannot be confirmed");
        return Err(GatewayRefusal::RegistryStale);
    }
    let at_milliseconds = state.shared.clock.now_milliseconds();
    let now = at_milliseconds.div_euclid(1000);
    let Some(presented) = presented else {
        return Err(authentication_refusal(state, context, AuthenticationFailure::Missing, now));
    };
    let started = std::time::Instant::now();
    let outcome = state.store().registry().authenticate_then(
        presented,
        &state.listener_region,
        state.key_endpoint,
        &state.shared.temporary_key_secret,
        now,
        |view| decide(view, at_milliseconds),
    );
    state.shared.metrics.record_verification(started.elapsed());
    outcome.map_err(|failure| authentication_refusal(state, context, failure, now))
}

/// A failed authentication, counted by the throttle: the refusal, or 429 once the client
/// address has failed too often.
fn authentication_refusal(state: &AppState, context: &RequestContext, failure: AuthenticationFailure, now: i64) -> GatewayRefusal {
    match state.shared.throttle.record_failure(context.client_address, now) {
        Some(retry_after_seconds) => GatewayRefusal::Throttled { retry_after_seconds },
        None => GatewayRefusal::Authentication(failure),
    }
}

/// A failed step 4-6, named with the model and the key's workspace when a model was denied.
fn authorization_refusal(failure: AuthorizationFailure, target: CallTarget<'_>, key: &CompiledKey) -> GatewayRefusal {
    match (failure, target) {
        (AuthorizationFailure::ModelNotAllowed(denial), CallTarget::Model(model)) => {
            GatewayRefusal::ModelDenied { model: model.to_string(), workspace_id: key.workspace_id.to_string(), denial }
        }
        (failure, _) => GatewayRefusal::Authorization(failure),
    }
}

/// Steps 4-6 for `target`.
pub fn authorize_target(
    state: &AppState,
    authorized: &Authorized,
    context: &RequestContext,
    headers: RequestHeaders<'_>,
    target: CallTarget<'_>,
) -> Result<(), GatewayRefusal> {
    let workspace_header = headers.get_str(&X_DASHSCOPE_WORKSPACE);
    authorize_target_in(state, authorized, context, workspace_header, target)
}

/// Steps 4-6 for `target`, with the request's `X-DashScope-WorkSpace` header already read
/// (a model call reads it once for its two checks), against the grants of the key's
/// workspace found with the key.
pub fn authorize_target_in(
    state: &AppState,
    authorized: &Authorized,
    context: &RequestContext,
    workspace_header: Option<&str>,
    target: CallTarget<'_>,
) -> Result<(), GatewayRefusal> {
    let facts = CallFacts { client_address: context.client_address, workspace_header, target };
    authorize_call(&authorized.key, authorized.workspace.as_deref(), &facts, |model| state.shared.catalog.contains(model))
        .map_err(|failure| authorization_refusal(failure, target, &authorized.key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn presented(authorization: &[u8], x_api_key: Option<&'static str>) -> Option<String> {
        let authorization = HeaderValue::from_bytes(authorization).unwrap();
        let x_api_key = x_api_key.map(HeaderValue::from_static);
        presented_key_of(Some(authorization.as_bytes()), || x_api_key.as_ref().map(|value| value.as_bytes()), Protocol::Native)
            .map(str::to_string)
    }

    #[test]
    fn the_token_is_read_the_same_whatever_the_spacing_and_the_scheme_case() {
        for value in ["Bearer sk-ws-abc", "bearer sk-ws-abc", "BEARER   sk-ws-abc", " Bearer sk-ws-abc  ", "Bearer sk-ws-abc\t"] {
            assert_eq!(presented(value.as_bytes(), None).as_deref(), Some("sk-ws-abc"), "{value:?}");
        }
    }

    #[test]
    fn a_value_without_a_bearer_token_falls_back_to_x_api_key_or_to_none() {
        for value in ["Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "sk-ws-abc", "Bearer\tsk-ws-abc", ""] {
            assert_eq!(presented(value.as_bytes(), Some("sk-ws-other")).as_deref(), Some("sk-ws-other"), "{value:?}");
            assert_eq!(presented(value.as_bytes(), None), None, "{value:?}");
        }
    }

    #[test]
    fn a_token_with_inner_spaces_is_kept_whole_for_the_parser_to_refuse_and_one_not_ascii_is_none() {
        assert_eq!(presented(b"Bearer sk-ws-abc def", None).as_deref(), Some("sk-ws-abc def"));
        assert_eq!(presented(b"Bearer sk-ws-\xffabc", None), None);
    }
}
