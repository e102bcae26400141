//! The data plane: authorize model calls with keygate keys (docs/CONTRACT.md#order-of-checks) and forward them
//! (docs/CONTRACT.md#forwarding). Native DashScope, OpenAI-compatible and Anthropic-compatible paths, temporary
//! keys, and `/auth/verify` for gateways that already exist (nginx `auth_request`, Envoy
//! `ext_authz`). Verification reads only the in-memory registry, never the database.

pub mod accounting;
pub mod authorize;
pub mod demo;
pub mod errors;
pub mod key_limits;
pub mod model_catalog;
pub mod provider_state;
pub mod responses;
pub mod tasks;
pub mod temporary_keys;
pub mod token_count;
pub mod upstream;
pub mod verify_headers;

use std::net::IpAddr;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use keygate_core::client_address::resolve_client_address;
use keygate_core::limits::{EffectiveLimits, RateLimit};
use keygate_core::verification::{CallTarget, WorkspaceGrants};
use keygate_wire::forwarding_path::{check_forwarded_path, reencode_query};
use keygate_wire::model_call_body::{read_model_call_body, ModelCallBody, ModelCallBodyError};
use serde_json::{json, Value};

use self::accounting::CallMeter;
use self::authorize::{authenticate_request, authorize_target, authorize_target_in, Authorized};
use self::demo::DemoEndpoint;
use self::errors::{GatewayRefusal, Protocol};
use self::key_limits::admit_to_key_limits;
use self::verify_headers::VerifyHeaders;
use crate::limiter::{self, LimitSubject};
use crate::provider_objects::{IdScanner, ObjectKind, ProviderObject};
use crate::request_body::{read_body, BodyReadError};
use crate::request_context::RequestContext;
use crate::request_headers::{HeadFields, RequestHeaders};
use crate::state::AppState;
use crate::thread_handles::thread_handle;
use crate::upstreams::{ModelPlan, Route};

/// `/auth/verify`, served outside the request-context middleware: it is on the hot path of
/// another gateway, so it makes its own context and writes no access log line (it is
/// counted in `/metrics`).
pub fn verify_routes() -> Router<AppState> {
    Router::new().route("/auth/verify", any(verify)).route("/auth/verify/{*original_path}", any(verify))
}

/// Routes of the data plane.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/services/{*rest}", post(native_service))
        .route("/api/v1/apps/{app_id}/completion", post(application_completion))
        .route("/compatible-mode/v1/chat/completions", post(openai_call))
        .route("/compatible-mode/v1/embeddings", post(openai_call))
        .route("/compatible-mode/v1/images/generations", post(openai_call))
        .route("/compatible-mode/v1/audio/speech", post(openai_call))
        .route("/compatible-mode/v1/models", get(model_catalog::openai_models))
        .route("/compatible-mode/v1/models/{model_id}", get(model_catalog::openai_model_by_id))
        .route("/apps/anthropic/v1/messages", post(anthropic_messages))
        .route("/apps/anthropic/v1/messages/count_tokens", post(token_count::anthropic_count_tokens))
        .route("/apps/anthropic/v1/models", get(model_catalog::anthropic_models))
        .route("/apps/anthropic/v1/models/{model_id}", get(model_catalog::anthropic_model_by_id))
        .route("/api/v1/tokens", post(temporary_keys::mint_temporary))
        .merge(provider_state::routes())
        .merge(responses::routes())
        .merge(tasks::routes())
}

/// Routes of a plan listener (docs/CONTRACT.md#token-plan): the plan host's OpenAI-compatible base
/// is `/v1` and its Anthropic-compatible base `/apps/anthropic`. The handlers are the
/// ordinary ones; the listener's [`keygate_core::verification::KeyEndpoint`] makes them
/// take only plan keys.
pub fn plan_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(openai_call))
        .route("/v1/models", get(model_catalog::openai_models))
        .route("/v1/models/{model_id}", get(model_catalog::openai_model_by_id))
        .route("/apps/anthropic/v1/messages", post(anthropic_messages))
        .route("/apps/anthropic/v1/messages/count_tokens", post(token_count::anthropic_count_tokens))
        .route("/apps/anthropic/v1/models", get(model_catalog::anthropic_models))
        .route("/apps/anthropic/v1/models/{model_id}", get(model_catalog::anthropic_model_by_id))
}

/// Turns a handler's outcome into the response, counting it in the metrics.
pub(crate) fn respond(
    state: &AppState,
    protocol: Protocol,
    context: &RequestContext,
    result: Result<Response, GatewayRefusal>,
) -> Response {
    match result {
        Ok(response) => {
            state.shared.metrics.record_outcome("ok");
            response
        }
        Err(refusal) => {
            state.shared.metrics.record_outcome(refusal.native_code());
            refusal.into_response_for(protocol, &context.request_id)
        }
    }
}

/// Where an authorized call goes on its upstream: the path after the protocol's prefix,
/// checked so that it cannot leave its route, and the query encoded again from its pairs.
///
/// The path is borrowed from the request (a checked path is the request's own, unchanged):
/// no copy of it per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardTarget<'a> {
    pub path: &'a str,
    pub query: Option<String>,
}

/// The [`ForwardTarget`] of a call to `uri`, or a 400 before anything else is done with it.
fn forward_target(protocol: Protocol, uri: &Uri) -> Result<ForwardTarget<'_>, GatewayRefusal> {
    forward_target_of(protocol, uri.path(), uri.query())
}

/// The [`ForwardTarget`] of a call to `path` with `query` (as `Uri::path` and `Uri::query`
/// give them), or a 400.
fn forward_target_of<'a>(protocol: Protocol, path: &'a str, query: Option<&str>) -> Result<ForwardTarget<'a>, GatewayRefusal> {
    let refuse = |error: keygate_wire::forwarding_path::ForwardingPathError| {
        GatewayRefusal::BadRequest(format!("The request path cannot be forwarded: {error}."))
    };
    let path = check_forwarded_path(path_after_prefix(protocol, path)).map_err(refuse)?;
    let query = match query {
        None => None,
        Some(raw) => reencode_query(raw).map_err(refuse)?,
    };
    Ok(ForwardTarget { path, query })
}

/// A model call's body: still to come (a call hyper parsed), or read already (the
/// connection front reads the body of a call it serves, within the limit and the deadline,
/// before the pipeline starts).
pub enum CallBody {
    Unread(Body),
    Read(Bytes),
}

/// Reads a model call's body under the configured limit and deadline: one JSON object
/// with at most one top-level `model`.
async fn read_model_call(state: &AppState, headers: RequestHeaders<'_>, body: CallBody) -> Result<(Bytes, ModelCallBody), GatewayRefusal> {
    let settings = &state.shared.settings;
    let read = match body {
        CallBody::Read(bytes) if bytes.len() > settings.body_limit_bytes => {
            Err(BodyReadError::TooLarge { limit: settings.body_limit_bytes })
        }
        CallBody::Read(bytes) => Ok(bytes),
        // Boxed (for hyper's calls only), so that the front's calls do not carry its room.
        CallBody::Unread(body) => Box::pin(read_body(headers, body, settings.body_limit_bytes, settings.body_read_timeout())).await,
    };
    let bytes = read.map_err(|error| match error {
        BodyReadError::TooLarge { limit } => {
            GatewayRefusal::BadRequest(format!("The request body is larger than the limit of {limit} bytes."))
        }
        BodyReadError::TimedOut { seconds } => GatewayRefusal::BodyTimedOut { seconds },
        BodyReadError::Broken => GatewayRefusal::BadRequest("The request body could not be read.".into()),
    })?;
    let read = read_model_call_body(&bytes).map_err(|error| GatewayRefusal::BadRequest(error.to_string()))?;
    Ok((bytes, read))
}

/// The body's model, taken out of it (nothing reads it from the body afterwards).
fn model_of(body: &mut ModelCallBody) -> Result<String, GatewayRefusal> {
    body.model
        .take()
        .filter(|model| !model.is_empty())
        .ok_or_else(|| GatewayRefusal::BadRequest("The request body must name a model (\"model\").".into()))
}

fn wants_stream(protocol: Protocol, headers: RequestHeaders<'_>, body: &ModelCallBody) -> bool {
    static X_DASHSCOPE_SSE: HeaderName = HeaderName::from_static("x-dashscope-sse");
    match protocol {
        Protocol::Native => {
            headers.get_str(&X_DASHSCOPE_SSE).is_some_and(|value| value.eq_ignore_ascii_case("enable"))
                || headers.get_str(&axum::http::header::ACCEPT).is_some_and(|value| value.contains("text/event-stream"))
        }
        Protocol::OpenAi | Protocol::Anthropic => body.stream,
    }
}

/// The part of the path after the protocol's prefix, appended to an upstream's base URL.
/// OpenAI-compatible calls come under `/compatible-mode/v1`, or `/v1` on a plan listener.
fn path_after_prefix(protocol: Protocol, path: &str) -> &str {
    let prefixes: &[&str] = match protocol {
        Protocol::Native => &["/api/v1"],
        Protocol::OpenAi => &[responses::MODEL_STUDIO_RESPONSES_BASE, "/compatible-mode/v1", "/v1"],
        Protocol::Anthropic => &["/apps/anthropic"],
    };
    prefixes.iter().find_map(|prefix| path.strip_prefix(prefix)).unwrap_or(path)
}

/// The demo answers from the parsed request; only calls routed to it pay for the parse.
/// `at_milliseconds`: when the call was authorized. The call is counted with the usage the
/// demo reports.
fn demo_answer(
    endpoint: DemoEndpoint,
    model: &str,
    bytes: &[u8],
    streaming: bool,
    request_id: &str,
    at_milliseconds: i64,
    meter: Option<CallMeter>,
) -> Result<Response, GatewayRefusal> {
    let request: Value = match serde_json::from_slice(bytes) {
        Ok(request) => request,
        Err(_) => {
            if let Some(meter) = meter {
                meter.finish(400, keygate_core::usage::TokenUsage::default(), None, None);
            }
            return Err(GatewayRefusal::BadRequest("The request body must be a JSON object.".into()));
        }
    };
    let (response, tokens) = demo::answer(endpoint, model, &request, streaming, request_id, at_milliseconds.div_euclid(1000));
    if let Some(meter) = meter {
        meter.finish(response.status().as_u16(), tokens, None, None);
    }
    Ok(response)
}

/// Starts counting an authorized model call of `model` (an application's is `app:<id>`):
/// `None` when token accounting is off, and then the call is counted for its key only.
fn start_meter(
    state: &AppState,
    context: &RequestContext,
    authorized: &Authorized,
    model: String,
    protocol: Protocol,
) -> Option<CallMeter> {
    if !state.shared.settings.token_accounting {
        state.shared.usage.record(authorized.key.key_id, authorized.at_milliseconds);
        return None;
    }
    // The request id and the start are kept for the call's log line only.
    let logged = accounting::CallMeter::logged();
    Some(CallMeter {
        shared: thread_handle(&state.shared),
        request_id: logged.then(|| context.request_id.clone()),
        key: authorized.key.clone(),
        model,
        protocol,
        at_milliseconds: authorized.at_milliseconds,
        started: logged.then(std::time::Instant::now),
        token_charges: accounting::TokenCharges::default(),
        in_flight: None,
    })
}

/// An OpenAI-compatible streaming call forwarded with `stream_options.include_usage` set,
/// so that the provider reports usage; and whether keygate set it (the client did not
/// ask), in which case the usage chunk is removed from what the client receives.
fn ask_for_stream_usage(bytes: Bytes) -> (Bytes, bool) {
    // The usual case, without `stream_options`: the member is written in after the opening
    // brace, the rest of the body unchanged (it is one JSON object: checked on reading).
    static STREAM_OPTIONS: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    // The searcher is built once: building one costs more than a search of a small body.
    if STREAM_OPTIONS.get_or_init(|| memchr::memmem::Finder::new(b"\"stream_options\"")).find(&bytes).is_none() {
        if let Some(brace) = bytes.iter().position(|byte| !byte.is_ascii_whitespace()).filter(|at| bytes[*at] == b'{') {
            let rest = &bytes[brace + 1..];
            let empty = rest.iter().all(|byte| byte.is_ascii_whitespace() || *byte == b'}');
            let member: &[u8] =
                if empty { b"\"stream_options\":{\"include_usage\":true}" } else { b"\"stream_options\":{\"include_usage\":true}," };
            let mut rewritten = Vec::with_capacity(bytes.len() + member.len());
            rewritten.extend_from_slice(&bytes[..=brace]);
            rewritten.extend_from_slice(member);
            rewritten.extend_from_slice(rest);
            return (Bytes::from(rewritten), true);
        }
    }
    let Ok(mut request) = serde_json::from_slice::<Value>(&bytes) else { return (bytes, false) };
    if request.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true) {
        return (bytes, false);
    }
    let Some(object) = request.as_object_mut() else { return (bytes, false) };
    let options = object.entry("stream_options").or_insert_with(|| json!({}));
    if !options.is_object() {
        *options = json!({});
    }
    options["include_usage"] = Value::Bool(true);
    match serde_json::to_vec(&request) {
        Ok(rewritten) => (Bytes::from(rewritten), true),
        Err(_) => (bytes, false),
    }
}

struct ModelCall<'a> {
    protocol: Protocol,
    /// A create of the OpenAI Responses API (docs/CONTRACT.md#responses-api).
    responses: bool,
    demo_endpoint: DemoEndpoint,
    method: Method,
    target: ForwardTarget<'a>,
    headers: RequestHeaders<'a>,
}

/// The whole model-call pipeline: authenticate, authorize, read the body, route, forward.
async fn serve_model_call(
    state: &AppState,
    context: &RequestContext,
    call: ModelCall<'_>,
    body: CallBody,
) -> Result<Response, GatewayRefusal> {
    let authorized = authenticate_request(state, call.protocol, call.headers, context)?;
    // Read once for both checks (and the grants for the model's limits too).
    let workspace_header = call.headers.get_str(&authorize::X_DASHSCOPE_WORKSPACE);
    let grants = authorized.workspace.as_deref();
    authorize_target_in(state, &authorized, context, workspace_header, CallTarget::Nothing)?;
    let (bytes, mut read) = read_model_call(state, call.headers, body).await?;
    let mut model = model_of(&mut read)?;
    authorize_target_in(state, &authorized, context, workspace_header, CallTarget::Model(&model))?;
    if call.responses {
        responses::check_previous_response(state, &authorized, context, call.headers, &bytes)?;
    }
    let ModelPlan { upstream, speaks, candidates } = state.shared.upstreams.plan(&model, call.protocol).ok_or_else(|| {
        GatewayRefusal::BadRequest(format!("The model '{model}' is in the catalog but no upstream of this deployment serves it."))
    })?;
    if let Some(upstream) = upstream {
        if !speaks {
            return Err(GatewayRefusal::BadRequest(format!(
                "The model '{model}' is served here only through: {}.",
                upstream.protocol_names().join(", ")
            )));
        }
    }
    let limited = admit_to_limits(state, &authorized, grants, &model).await?;
    let model_standing = limited.as_ref().map(|limited| limited.admission);
    // A key without limits of its own (most keys) does not make the admission's future:
    // making one copies all of its room, though it would answer at once.
    let mut key_admitted = if authorized.key.limits.is_none() {
        None
    } else {
        admit_to_key_limits(state, &authorized).await.map_err(|refusal| with_model_standing(refusal, model_standing))?
    };
    let streaming = wants_stream(call.protocol, call.headers, &read);
    let asynchronous = call.protocol == Protocol::Native && tasks::is_asynchronous(call.headers);
    // The meter takes the model when nothing reads it after this (no copy for a plain
    // forwarded call); the demo and the calls that remember an object still need it.
    let model_read_later = upstream.is_none() || call.responses || asynchronous;
    let meter_model = if model_read_later { model.clone() } else { std::mem::take(&mut model) };
    let mut meter = start_meter(state, context, &authorized, meter_model, call.protocol);
    if let Some(meter) = meter.as_mut() {
        meter.token_charges = accounting::TokenCharges {
            model: limited.as_ref().and_then(|limited| limited.token_charge),
            key: key_admitted.as_ref().and_then(|admitted| admitted.token_charge),
        };
    }
    let mut response = match upstream {
        None if call.responses => responses::demo_create(state, &authorized, &model, &bytes, streaming, meter)?,
        None if asynchronous => tasks::demo_submit(state, &authorized, &model, call.target.path, &bytes, &context.request_id, meter)?,
        None => demo_answer(call.demo_endpoint, &model, &bytes, streaming, &context.request_id, authorized.at_milliseconds, meter)?,
        Some(_) => {
            // A metered relayed answer holds its call's place in flight in its meter.
            if let Some(meter) = meter.as_mut() {
                meter.in_flight = key_admitted.as_mut().and_then(|admitted| admitted.in_flight.take());
            }
            // The Responses API reports usage in its `response.completed` event unasked.
            let (bytes, strip_usage_chunk) = if meter.is_some() && streaming && call.protocol == Protocol::OpenAi && !call.responses {
                ask_for_stream_usage(bytes)
            } else {
                (bytes, false)
            };
            let forwarded = upstream::Forwarded {
                protocol: call.protocol,
                responses: call.responses,
                method: call.method,
                target: &call.target,
                headers: call.headers,
                request_id: &context.request_id,
                header_room: if model_standing.is_some() || key_admitted.as_ref().is_some_and(|admitted| admitted.admission.is_some()) {
                    errors::RATE_LIMIT_HEADERS
                } else {
                    0
                },
            };
            let relayed = upstream::forward_with_failover(&candidates, forwarded, bytes, meter, strip_usage_chunk).await?;
            let (answer, answered_by) = (relayed.response, &relayed.upstream.name);
            if call.responses {
                remember_made_object(state, &authorized, &model, answered_by, answer, ObjectKind::Response)
            } else if asynchronous {
                remember_made_object(state, &authorized, &model, answered_by, answer, ObjectKind::Task)
            } else {
                answer
            }
        }
    };
    let key_standing = key_admitted.as_ref().and_then(|admitted| admitted.admission);
    let requests = key_limits::tightest(model_standing.and_then(|model| model.requests), key_standing.and_then(|key| key.requests));
    let tokens = key_limits::tightest(model_standing.and_then(|model| model.tokens), key_standing.and_then(|key| key.tokens));
    errors::insert_rate_limit_headers(response.headers_mut(), requests, tokens);
    Ok(match key_admitted.and_then(|admitted| admitted.in_flight) {
        Some(guard) => key_limits::hold_until_sent(response, guard),
        None => response,
    })
}

/// Remembers the id of the object (a Responses API response, a DashScope task) an upstream
/// made for this call, read from the start of its answer as it is relayed (a response's
/// `id`, a task's `task_id`), so that the workspace's keys, and only they, may name it next.
/// A failed create records nothing.
fn remember_made_object(
    state: &AppState,
    authorized: &Authorized,
    model: &str,
    upstream_name: &str,
    response: Response,
    kind: ObjectKind,
) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let object = ProviderObject {
        workspace_id: authorized.key.workspace_id.to_string(),
        model: model.to_string(),
        upstream: Some(upstream_name.to_string()),
        demo: None,
    };
    let id_key: &'static [u8] = match kind {
        ObjectKind::Response => b"\"id\"",
        ObjectKind::Task => b"\"task_id\"",
    };
    let (parts, body) = response.into_parts();
    let shared = state.shared.clone();
    let remember = Box::new(move |id: String| shared.provider_objects.remember(kind, &id, object));
    Response::from_parts(parts, Body::from_stream(IdScanner::new(body.into_data_stream(), id_key, remember)))
}

/// A refusal by the key's limits, its rate-limit headers merged with the windows of the
/// model limit the call was already counted in (the tightest of each kind is reported).
fn with_model_standing(refusal: GatewayRefusal, model: Option<limiter::Admission>) -> GatewayRefusal {
    match (refusal, model) {
        (GatewayRefusal::KeyLimited { limit, retry_after_seconds, requests, tokens }, Some(model)) => GatewayRefusal::KeyLimited {
            limit,
            retry_after_seconds,
            requests: key_limits::tightest(model.requests, requests),
            tokens: key_limits::tightest(model.tokens, tokens),
        },
        (refusal, _) => refusal,
    }
}

/// A call admitted under its workspace's limits of its model: where its windows stand, and
/// the token limit its tokens are charged to when it ends.
struct Limited {
    admission: limiter::Admission,
    /// The workspace's token limit of the model, charged with the call's tokens when it ends.
    token_charge: Option<RateLimit>,
}

/// Counts a call of `model` against the limits of the key's workspace (its own where it
/// sets them, else the catalog's default): `None` when none applies, a 429 when one is
/// used up (docs/CONTRACT.md#model-limits).
async fn admit_to_limits(
    state: &AppState,
    authorized: &Authorized,
    grants: Option<&WorkspaceGrants>,
    model: &str,
) -> Result<Option<Limited>, GatewayRefusal> {
    let shared = &state.shared;
    let workspace_limit = grants.and_then(|grants| grants.model_limit(model));
    let platform_default = shared.catalog.get(model).and_then(|model| model.default_limit.as_ref());
    let limits = EffectiveLimits::of(workspace_limit, platform_default);
    if limits.is_unlimited() {
        return Ok(None);
    }
    let subject = LimitSubject::Model { workspace_id: &authorized.key.workspace_id, model };
    let now = authorized.at_milliseconds.div_euclid(1000);
    let admission = match shared.limiter.admit_at_once(subject, limits, now) {
        Some(admission) => admission,
        None => shared.limiter.admit(subject, limits, now).await,
    };
    if admission.unavailable {
        return Err(GatewayRefusal::LimitsUnavailable);
    }
    if let Some(kind) = admission.refused_by {
        return Err(GatewayRefusal::ModelLimited {
            kind,
            retry_after_seconds: admission.retry_after_seconds(),
            requests: admission.requests,
            tokens: admission.tokens,
        });
    }
    Ok(Some(Limited { admission, token_charge: limits.tokens }))
}

fn native_endpoint(path: &str) -> DemoEndpoint {
    if path.contains("embedding") {
        DemoEndpoint::NativeEmbedding
    } else {
        DemoEndpoint::NativeGeneration
    }
}

/// Runs a model call of `protocol`: the path is checked first, before the key.
async fn model_call(
    state: &AppState,
    context: &RequestContext,
    protocol: Protocol,
    demo_endpoint: DemoEndpoint,
    request: Request,
) -> Response {
    model_call_of_api(state, context, protocol, demo_endpoint, false, request).await
}

/// `POST .../responses`: a model call of the OpenAI Responses API.
async fn responses_call(State(state): State<AppState>, context: RequestContext, request: Request) -> Response {
    model_call_of_api(&state, &context, Protocol::OpenAi, DemoEndpoint::OpenAiChat, true, request).await
}

async fn model_call_of_api(
    state: &AppState,
    context: &RequestContext,
    protocol: Protocol,
    demo_endpoint: DemoEndpoint,
    responses: bool,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let incoming = IncomingCall {
        method: parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: (&parts.headers).into(),
        body: CallBody::Unread(body),
    };
    model_call_as_it_came(state, context, protocol, demo_endpoint, responses, incoming).await
}

/// A model call as it came, hyper's or the connection front's: what the pipeline reads of
/// the request.
struct IncomingCall<'a> {
    method: Method,
    /// The request target's path and query, as `Uri::path` and `Uri::query` give them.
    path: &'a str,
    query: Option<&'a str>,
    headers: RequestHeaders<'a>,
    body: CallBody,
}

/// Runs a model call of `protocol`: its path is checked first, before the key.
async fn model_call_as_it_came(
    state: &AppState,
    context: &RequestContext,
    protocol: Protocol,
    demo_endpoint: DemoEndpoint,
    responses: bool,
    incoming: IncomingCall<'_>,
) -> Response {
    let IncomingCall { method, path, query, headers, body } = incoming;
    let result = match forward_target_of(protocol, path, query) {
        Ok(target) => {
            let call = ModelCall { protocol, responses, demo_endpoint, method, target, headers };
            serve_model_call(state, context, call, body).await
        }
        Err(refusal) => Err(refusal),
    };
    respond(state, protocol, context, result)
}

async fn native_service(State(state): State<AppState>, context: RequestContext, request: Request) -> Response {
    let demo_endpoint = native_endpoint(request.uri().path());
    model_call(&state, &context, Protocol::Native, demo_endpoint, request).await
}

async fn openai_call(State(state): State<AppState>, context: RequestContext, request: Request) -> Response {
    let path = request.uri().path();
    let demo_endpoint = if path.ends_with("/embeddings") {
        DemoEndpoint::OpenAiEmbeddings
    } else if path.ends_with("/images/generations") {
        DemoEndpoint::OpenAiImages
    } else if path.ends_with("/audio/speech") {
        DemoEndpoint::OpenAiSpeech
    } else {
        DemoEndpoint::OpenAiChat
    };
    model_call(&state, &context, Protocol::OpenAi, demo_endpoint, request).await
}

/// A model call the listener serves before the router (`app.rs`), as the router and its
/// request-context middleware would serve it: `POST` of the OpenAI-compatible chat path or
/// of the Anthropic messages path, the calls every SDK and coding tool makes. The router's
/// matching, its middleware's boxing and the extensions it fills cost about a tenth of a
/// forwarded call (docs/PERFORMANCE.md); any other method or path goes to the router.
#[derive(Debug, Clone, Copy)]
pub struct DirectModelCall {
    path: &'static str,
    protocol: Protocol,
    demo_endpoint: DemoEndpoint,
}

impl DirectModelCall {
    /// The call `method` and `path` make, when it is one served before the router.
    pub fn of(method: &Method, path: &str) -> Option<DirectModelCall> {
        const CALLS: [DirectModelCall; 2] = [
            DirectModelCall {
                path: "/compatible-mode/v1/chat/completions",
                protocol: Protocol::OpenAi,
                demo_endpoint: DemoEndpoint::OpenAiChat,
            },
            DirectModelCall {
                path: "/apps/anthropic/v1/messages",
                protocol: Protocol::Anthropic,
                demo_endpoint: DemoEndpoint::AnthropicMessages,
            },
        ];
        if method != Method::POST {
            return None;
        }
        CALLS.into_iter().find(|call| call.path == path)
    }

    /// Serves the call from `peer` with the handler the router would have chosen, in a
    /// request context of its own (id, log line, `x-acs-request-id`).
    pub async fn serve(self, state: AppState, peer: IpAddr, request: Request) -> Response {
        let started = crate::request_context::RequestStart::now();
        let context = RequestContext {
            request_id: crate::request_context::new_request_id(),
            client_address: crate::request_context::client_address_of(&state, peer, request.headers().into()),
        };
        // Boxed here, before it is moved into the context's future: a model call's future
        // is large, and each move by value copies all of it (without the box, copying took
        // a third of the call's instructions).
        let handled = Box::pin(model_call(&state, &context, self.protocol, self.demo_endpoint, request));
        crate::request_context::in_request_context(&state, &context, &Method::POST, self.path, started, handled).await
    }

    /// [`DirectModelCall::serve`] for a call `connection_front` parsed and read itself: its
    /// request target's path and query (split at the target's first `?`, checked to be
    /// what `Uri` reads), its headers read in the head, its body. No `Request` is made of
    /// them (see [`crate::request_headers`]).
    ///
    /// The state is borrowed from the connection (a copy per call was an allocation, for
    /// the listener's region, and a shared count moved up and down). The answer comes
    /// with its request id, for the caller to write as its `x-acs-request-id` (see
    /// `request_context::in_request_context_unlabelled`).
    pub async fn serve_parsed(
        self,
        state: &AppState,
        peer: IpAddr,
        path: &str,
        query: Option<&str>,
        headers: HeadFields<'_>,
        body: Bytes,
    ) -> (Response, std::sync::Arc<str>) {
        let started = crate::request_context::RequestStart::now();
        let headers = RequestHeaders::Head(headers);
        let context = RequestContext {
            request_id: crate::request_context::new_request_id(),
            client_address: crate::request_context::client_address_of(state, peer, headers),
        };
        let incoming = IncomingCall { method: Method::POST, path, query, headers, body: CallBody::Read(body) };
        // The box is made before the future, so that the future is written into it rather
        // than made on the stack and copied (all of its room, a few kilobytes, at each call).
        let handled = Box::into_pin(Box::write(
            Box::new_uninit(),
            model_call_as_it_came(state, &context, self.protocol, self.demo_endpoint, false, incoming),
        ));
        let response =
            crate::request_context::in_request_context_unlabelled(state, &context, &Method::POST, self.path, started, handled).await;
        (response, context.request_id)
    }

    /// Whether the key the call presents authenticates now (a look at the registry, with
    /// no side effect: no failure counted, no metric): `connection_front` waits for a
    /// call's body only then, since the handler refuses any other before reading its body.
    pub fn key_authenticates(self, state: &AppState, headers: RequestHeaders<'_>) -> bool {
        let now = state.shared.clock.now_milliseconds().div_euclid(1000);
        state.staleness_problem().is_none()
            && authorize::registry_verdict(state, authorize::presented_key(headers, self.protocol), now).is_ok()
    }

    /// The answer to the call when its body did not arrive within the body deadline
    /// (`connection_front` reads the body of the calls it serves itself): the refusal
    /// `read_body`'s deadline gives, in the same request context as [`DirectModelCall::serve`].
    pub async fn refuse_slow_body(self, state: AppState, peer: IpAddr, headers: RequestHeaders<'_>) -> Response {
        let started = crate::request_context::RequestStart::now();
        let context = RequestContext {
            request_id: crate::request_context::new_request_id(),
            client_address: crate::request_context::client_address_of(&state, peer, headers),
        };
        let seconds = state.shared.settings.body_read_timeout().as_secs();
        let refused = async { respond(&state, self.protocol, &context, Err(GatewayRefusal::BodyTimedOut { seconds })) };
        crate::request_context::in_request_context(&state, &context, &Method::POST, self.path, started, refused).await
    }
}

async fn anthropic_messages(State(state): State<AppState>, context: RequestContext, request: Request) -> Response {
    model_call(&state, &context, Protocol::Anthropic, DemoEndpoint::AnthropicMessages, request).await
}

/// The app id of a path `/api/v1/apps/{app_id}/completion`, read from the raw path (a
/// percent-decoding extractor would answer a malformed escape in plain text).
fn app_id_in_path(path: &str) -> &str {
    path.strip_prefix("/api/v1/apps/").and_then(|rest| rest.split('/').next()).unwrap_or("")
}

async fn application_completion(
    State(state): State<AppState>,
    context: RequestContext,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let target = forward_target(Protocol::Native, &uri)?;
        let app_id = app_id_in_path(uri.path());
        let headers = RequestHeaders::from(&headers);
        let authorized = authenticate_request(&state, Protocol::Native, headers, &context)?;
        authorize_target(&state, &authorized, &context, headers, CallTarget::Application(app_id))?;
        let (bytes, read) = read_model_call(&state, headers, CallBody::Unread(body)).await?;
        let route = state
            .shared
            .upstreams
            .route_app(app_id)
            .ok_or_else(|| GatewayRefusal::BadRequest(format!("No upstream of this deployment serves the application '{app_id}'.")))?;
        // An application call counts against its key's limits (not the model limits: its
        // models are the application's to choose).
        let key_admitted = admit_to_key_limits(&state, &authorized).await?;
        let mut meter = start_meter(&state, &context, &authorized, format!("app:{app_id}"), Protocol::Native);
        if let (Some(meter), Some(charge)) = (meter.as_mut(), key_admitted.as_ref().and_then(|admitted| admitted.token_charge)) {
            meter.token_charges.key = Some(charge);
        }
        let response = match route {
            Route::Demo => demo_answer(
                DemoEndpoint::ApplicationCompletion,
                "demo-app",
                &bytes,
                wants_stream(Protocol::Native, headers, &read),
                &context.request_id,
                authorized.at_milliseconds,
                meter,
            ),
            Route::Upstream(upstream) => {
                let forwarded = upstream::Forwarded {
                    protocol: Protocol::Native,
                    responses: false,
                    method,
                    target: &target,
                    headers,
                    request_id: &context.request_id,
                    header_room: if key_admitted.as_ref().is_some_and(|admitted| admitted.admission.is_some()) {
                        errors::RATE_LIMIT_HEADERS
                    } else {
                        0
                    },
                };
                upstream::forward(&upstream, forwarded, bytes, meter, false).await
            }
        }?;
        let key_standing = key_admitted.as_ref().and_then(|admitted| admitted.admission);
        let mut response = response;
        errors::insert_rate_limit_headers(
            response.headers_mut(),
            key_standing.and_then(|key| key.requests),
            key_standing.and_then(|key| key.tokens),
        );
        Ok(match key_admitted.and_then(|admitted| admitted.in_flight) {
            Some(guard) => key_limits::hold_until_sent(response, guard),
            None => response,
        })
    }
    .await;
    respond(&state, Protocol::Native, &context, result)
}

/// The app id in an original URI of `/api/v1/apps/{id}/...`.
fn app_in_uri(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("/api/v1/apps/")?;
    rest.split(['/', '?']).next().filter(|id| !id.is_empty())
}

async fn verify(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let peer = crate::request_context::peer_of(&request);
    let found = VerifyHeaders::of(request.headers());
    if found.has_body() {
        answer_verify_with_body(&state, peer, request).await
    } else {
        answer_verify(&state, peer, target_of(request.uri()), found)
    }
}

// The header names of `/auth/verify`'s identity answer, parsed once (a `&str` name is
// parsed on every use). The request's are found by `VerifyHeaders`.
static X_KEYGATE_KEY_ID: HeaderName = HeaderName::from_static("x-keygate-key-id");
static X_KEYGATE_WORKSPACE: HeaderName = HeaderName::from_static("x-keygate-workspace");
static X_KEYGATE_ACCOUNT: HeaderName = HeaderName::from_static("x-keygate-account");
static X_KEYGATE_REGION: HeaderName = HeaderName::from_static("x-keygate-region");

/// Whether a `/auth/verify` request asks for the key's identity in the answer
/// (`X-Keygate-Identity: on`, `1`, `true` or `yes`). Off by default, like oauth2-proxy's
/// `--set-xauthrequest`: most callers need only the verdict, and four more response headers
/// are a sixth of the cost of an answer (docs/PERFORMANCE.md).
fn asks_for_identity(header: Option<&str>) -> bool {
    header.is_some_and(|value| {
        let value = value.trim();
        ["on", "1", "true", "yes"].iter().any(|yes| value.eq_ignore_ascii_case(yes))
    })
}

/// Whether `request` is one for [`answer_verify`]: the listener's accept loop answers these
/// before the router (see `app.rs`).
///
/// Any method, and any path under `/auth/verify/`: Envoy's HTTP `ext_authz` sends the
/// original request's method and its path after `path_prefix`
/// (`/auth/verify/compatible-mode/v1/...`); nginx's `auth_request` sends a `GET` of
/// `/auth/verify` with `X-Original-URI`.
pub fn is_verify_request<B>(request: &axum::http::Request<B>) -> bool {
    is_verify_target(target_of(request.uri()))
}

/// Whether a request target (path and query, as the request line has it) is one for
/// [`answer_verify`].
pub fn is_verify_target(target: &str) -> bool {
    original_path_after_verify(target).is_some()
}

/// The path and query of `uri`, as the request line had them.
pub fn target_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |whole| whole.as_str())
}

/// The original request's path and query when `target` is `/auth/verify/<original>`
/// (Envoy), `Some("")` for `/auth/verify` itself (with or without a query), `None` for any
/// other path.
fn original_path_after_verify(target: &str) -> Option<&str> {
    // The prefix first: every model call's target is asked, and most are not this one (a
    // search for the `?` first cost a hundred instructions a call).
    let rest = target.strip_prefix("/auth/verify")?;
    match rest.as_bytes().first() {
        None | Some(b'?') => Some(""),
        Some(b'/') => Some(rest),
        Some(_) => None,
    }
}

/// `/auth/verify` with the original request's body: its top-level `model` names the
/// model (a proxy's `X-Keygate-Model` may say the same, never something else).
pub async fn answer_verify_with_body<B>(state: &AppState, peer: std::net::IpAddr, request: axum::http::Request<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (parts, body) = request.into_parts();
    let settings = &state.shared.settings;
    let read = match read_body((&parts.headers).into(), Body::new(body), settings.body_limit_bytes, settings.body_read_timeout()).await {
        Ok(bytes) => match read_model_call_body(&bytes) {
            Ok(read) => Ok(read.model),
            // Not JSON (a multipart upload, say): the body names no model.
            Err(ModelCallBodyError::NotAnObject) => Ok(None),
            Err(error @ ModelCallBodyError::RepeatedModel) => Err(GatewayRefusal::BadRequest(error.to_string())),
        },
        Err(BodyReadError::TooLarge { limit }) => {
            Err(GatewayRefusal::BadRequest(format!("The request body is larger than the limit of {limit} bytes.")))
        }
        Err(BodyReadError::TimedOut { seconds }) => Err(GatewayRefusal::BodyTimedOut { seconds }),
        Err(BodyReadError::Broken) => Err(GatewayRefusal::BadRequest("The request body could not be read.".into())),
    };
    match read {
        Ok(body_model) => decide_verify(state, peer, target_of(&parts.uri), VerifyHeaders::of(&parts.headers), body_model.as_deref()),
        Err(refusal) => {
            let context = RequestContext {
                request_id: crate::request_context::new_request_id(),
                client_address: crate::request_context::client_address_of(state, peer, (&parts.headers).into()),
            };
            respond(state, Protocol::Native, &context, Err(refusal))
        }
    }
}

/// `/auth/verify`: the authorization decision for an existing gateway, for a request from
/// `peer` to `target` (the request line's path and query) with `headers` and no body. 200 (with the key's identity in
/// `X-Keygate-*` headers when asked for), or 401/403/429 with the native error body.
/// Synchronous: it reads only memory, and needs neither the body nor the router.
pub fn answer_verify(state: &AppState, peer: std::net::IpAddr, target: &str, headers: VerifyHeaders<'_>) -> Response {
    decide_verify(state, peer, target, headers, None)
}

/// The decision of `/auth/verify`. The target is the model the proxy names in
/// `X-Keygate-Model` (or the body names, for Envoy), else the app of an
/// `/api/v1/apps/{id}/...` original URI; when neither is known the call is
/// [`CallTarget::Unnamed`] and passes only for a key that may call everything.
fn decide_verify(state: &AppState, peer: std::net::IpAddr, target: &str, found: VerifyHeaders<'_>, body_model: Option<&str>) -> Response {
    let text = VerifyHeaders::text;
    // A 200 carries no request id: one is made only for an error body.
    let mut context = RequestContext {
        request_id: Default::default(),
        client_address: resolve_client_address(peer, found.x_forwarded_for(), &state.shared.trusted_proxies),
    };
    let result = (|| {
        let presented = authorize::presented_key_of(found.authorization, || found.x_api_key, Protocol::Native);
        let header_model = text(found.x_keygate_model).filter(|model| !model.is_empty());
        let model = match (header_model, body_model.filter(|model| !model.is_empty())) {
            (Some(named), Some(in_body)) if named != in_body => {
                // Refused after the key is authenticated, as before: a wrong key is a 401
                // whatever else the request says.
                authorize::authenticate_presented(state, presented, &context)?;
                return Err(GatewayRefusal::BadRequest("X-Keygate-Model names another model than the request body.".into()));
            }
            (named, in_body) => in_body.or(named),
        };
        // nginx says where the call was going in X-Original-URI; Envoy in the path itself.
        let original_uri = text(found.x_original_uri).or_else(|| original_path_after_verify(target)).unwrap_or("");
        let target = match (model, app_in_uri(original_uri)) {
            (Some(model), _) => CallTarget::Model(model),
            (None, Some(app_id)) => CallTarget::Application(app_id),
            (None, None) => CallTarget::Unnamed,
        };
        let identity = asks_for_identity(text(found.x_keygate_identity));
        authorize::authenticate_and_authorize(
            state,
            presented,
            &context,
            text(found.x_dashscope_workspace),
            target,
            |key, at_milliseconds| {
                state.shared.usage.record(key.key_id, at_milliseconds);
                let mut response = StatusCode::OK.into_response();
                if identity {
                    let response_headers = response.headers_mut();
                    response_headers.insert(X_KEYGATE_KEY_ID.clone(), HeaderValue::from(key.key_id));
                    for (name, value) in [
                        (&X_KEYGATE_WORKSPACE, &key.workspace_id),
                        (&X_KEYGATE_ACCOUNT, &key.account_name),
                        (&X_KEYGATE_REGION, &key.region),
                    ] {
                        if let Ok(value) = HeaderValue::from_str(value) {
                            response_headers.insert(name.clone(), value);
                        }
                    }
                }
                response
            },
        )
    })();
    if result.is_err() {
        context.request_id = crate::request_context::new_request_id();
    }
    respond(state, Protocol::Native, &context, result)
}

#[cfg(test)]
mod tests {
    use super::original_path_after_verify;

    /// `/auth/verify` with or without a query, or with the original path after it (Envoy);
    /// no other path, however it starts.
    #[test]
    fn the_original_path_is_what_follows_auth_verify() {
        assert_eq!(original_path_after_verify("/auth/verify"), Some(""));
        assert_eq!(original_path_after_verify("/auth/verify?model=qwen-plus"), Some(""));
        assert_eq!(original_path_after_verify("/auth/verify/"), Some("/"));
        assert_eq!(
            original_path_after_verify("/auth/verify/compatible-mode/v1/chat/completions?a=1"),
            Some("/compatible-mode/v1/chat/completions?a=1")
        );
        for other in ["/auth/verifyx", "/auth/verify-me?x=/", "/auth/veri", "/compatible-mode/v1/chat/completions", "/auth/Verify", ""] {
            assert_eq!(original_path_after_verify(other), None, "{other:?}");
        }
    }
}
