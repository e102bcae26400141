//! The data plane: authorize model calls with keygate keys (SPEC section 4) and forward them
//! (section 5). Native DashScope, OpenAI-compatible and Anthropic-compatible paths, temporary
//! keys, and `/auth/verify` for gateways that already exist (nginx `auth_request`, Envoy
//! `ext_authz`). Verification reads only the in-memory registry, never the database.

pub mod authorize;
pub mod demo;
pub mod errors;
pub mod throttle;
pub mod upstream;
pub mod usage;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use keygate_core::temporary_keys::{checked_lifetime, mint_temporary_key, DEFAULT_TEMPORARY_KEY_SECONDS};
use keygate_core::verification::CallTarget;
use serde_json::{json, Value};

use self::authorize::{authenticate_request, authorize_target, Authorized};
use self::demo::DemoEndpoint;
use self::errors::{GatewayRefusal, Protocol};
use self::upstream::Route;
use crate::request_context::RequestContext;
use crate::state::AppState;

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
        .route("/compatible-mode/v1/models", get(openai_models))
        .route("/apps/anthropic/v1/messages", post(anthropic_messages))
        .route("/api/v1/tokens", post(mint_temporary))
}

/// Routes of a plan listener (SPEC section 6.4): the plan host's OpenAI-compatible base
/// is `/v1` and its Anthropic-compatible base `/apps/anthropic`. The handlers are the
/// ordinary ones; the listener's [`keygate_core::verification::KeyEndpoint`] makes them
/// take only plan keys.
pub fn plan_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(openai_call))
        .route("/v1/models", get(openai_models))
        .route("/apps/anthropic/v1/messages", post(anthropic_messages))
}

/// Turns a handler's outcome into the response, counting it in the metrics.
fn respond(state: &AppState, protocol: Protocol, context: &RequestContext, result: Result<Response, GatewayRefusal>) -> Response {
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

/// Reads the body under the configured limit, as a JSON object.
async fn read_json_object(state: &AppState, body: Body) -> Result<(Bytes, Value), GatewayRefusal> {
    let limit = state.shared.settings.body_limit_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| GatewayRefusal::BadRequest(format!("The request body is larger than the limit of {limit} bytes.")))?;
    let parsed: Value =
        serde_json::from_slice(&bytes).map_err(|_| GatewayRefusal::BadRequest("The request body must be a JSON object.".into()))?;
    if !parsed.is_object() {
        return Err(GatewayRefusal::BadRequest("The request body must be a JSON object.".into()));
    }
    Ok((bytes, parsed))
}

fn model_of(request: &Value) -> Result<String, GatewayRefusal> {
    request
        .get("model")
        .and_then(Value::as_str)
        .filter(|model| !model.is_empty())
        .map(str::to_string)
        .ok_or_else(|| GatewayRefusal::BadRequest("The request body must name a model (\"model\").".into()))
}

fn wants_stream(protocol: Protocol, headers: &HeaderMap, request: &Value) -> bool {
    match protocol {
        Protocol::Native => {
            headers.get("x-dashscope-sse").and_then(|value| value.to_str().ok()).is_some_and(|value| value.eq_ignore_ascii_case("enable"))
                || headers.get("accept").and_then(|value| value.to_str().ok()).is_some_and(|value| value.contains("text/event-stream"))
        }
        Protocol::OpenAi | Protocol::Anthropic => request.get("stream").and_then(Value::as_bool).unwrap_or(false),
    }
}

/// The part of the path after the protocol's prefix, appended to an upstream's base URL.
/// OpenAI-compatible calls come under `/compatible-mode/v1`, or `/v1` on a plan listener.
fn path_after_prefix(protocol: Protocol, path: &str) -> String {
    let prefixes: &[&str] = match protocol {
        Protocol::Native => &["/api/v1"],
        Protocol::OpenAi => &["/compatible-mode/v1", "/v1"],
        Protocol::Anthropic => &["/apps/anthropic"],
    };
    prefixes.iter().find_map(|prefix| path.strip_prefix(prefix)).unwrap_or(path).to_string()
}

struct ModelCall {
    protocol: Protocol,
    demo_endpoint: DemoEndpoint,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

/// The whole model-call pipeline: authenticate, authorize, read the body, route, forward.
async fn serve_model_call(state: &AppState, context: &RequestContext, call: ModelCall, body: Body) -> Result<Response, GatewayRefusal> {
    let authorized = authenticate_request(state, call.protocol, &call.headers, context)?;
    authorize_target(state, &authorized, context, &call.headers, CallTarget::Nothing)?;
    let (bytes, request) = read_json_object(state, body).await?;
    let model = model_of(&request)?;
    authorize_target(state, &authorized, context, &call.headers, CallTarget::Model(&model))?;
    let route = state.shared.upstreams.route_model(&model).ok_or_else(|| {
        GatewayRefusal::BadRequest(format!("The model '{model}' is in the catalog but no upstream of this deployment serves it."))
    })?;
    state.shared.usage.record(authorized.key.key_id, authorized.at_milliseconds);
    match route {
        Route::Demo => Ok(demo::answer(
            call.demo_endpoint,
            &model,
            &request,
            wants_stream(call.protocol, &call.headers, &request),
            &context.request_id,
        )),
        Route::Upstream(upstream) => {
            if !upstream.speaks(call.protocol) {
                return Err(GatewayRefusal::BadRequest(format!(
                    "The model '{model}' is served here only through: {}.",
                    upstream.protocol_names().join(", ")
                )));
            }
            upstream::forward(
                &state.shared.http_client,
                &upstream,
                call.protocol,
                call.method,
                &path_after_prefix(call.protocol, call.uri.path()),
                call.uri.query(),
                &call.headers,
                bytes,
            )
            .await
        }
    }
}

fn native_endpoint(rest: &str) -> DemoEndpoint {
    if rest.contains("embedding") {
        DemoEndpoint::NativeEmbedding
    } else {
        DemoEndpoint::NativeGeneration
    }
}

async fn native_service(
    State(state): State<AppState>,
    context: RequestContext,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let call = ModelCall { protocol: Protocol::Native, demo_endpoint: native_endpoint(&rest), method, uri, headers };
    respond(&state, Protocol::Native, &context, serve_model_call(&state, &context, call, body).await)
}

async fn openai_call(
    State(state): State<AppState>,
    context: RequestContext,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let demo_endpoint = if uri.path().ends_with("/embeddings") { DemoEndpoint::OpenAiEmbeddings } else { DemoEndpoint::OpenAiChat };
    let call = ModelCall { protocol: Protocol::OpenAi, demo_endpoint, method, uri, headers };
    respond(&state, Protocol::OpenAi, &context, serve_model_call(&state, &context, call, body).await)
}

async fn anthropic_messages(
    State(state): State<AppState>,
    context: RequestContext,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let call = ModelCall { protocol: Protocol::Anthropic, demo_endpoint: DemoEndpoint::AnthropicMessages, method, uri, headers };
    respond(&state, Protocol::Anthropic, &context, serve_model_call(&state, &context, call, body).await)
}

async fn application_completion(
    State(state): State<AppState>,
    context: RequestContext,
    Path(app_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let authorized = authenticate_request(&state, Protocol::Native, &headers, &context)?;
        authorize_target(&state, &authorized, &context, &headers, CallTarget::Application(&app_id))?;
        let (bytes, request) = read_json_object(&state, body).await?;
        let route = state
            .shared
            .upstreams
            .route_app(&app_id)
            .ok_or_else(|| GatewayRefusal::BadRequest(format!("No upstream of this deployment serves the application '{app_id}'.")))?;
        state.shared.usage.record(authorized.key.key_id, authorized.at_milliseconds);
        match route {
            Route::Demo => Ok(demo::answer(
                DemoEndpoint::ApplicationCompletion,
                "demo-app",
                &request,
                wants_stream(Protocol::Native, &headers, &request),
                &context.request_id,
            )),
            Route::Upstream(upstream) => {
                upstream::forward(
                    &state.shared.http_client,
                    &upstream,
                    Protocol::Native,
                    method,
                    &path_after_prefix(Protocol::Native, uri.path()),
                    uri.query(),
                    &headers,
                    bytes,
                )
                .await
            }
        }
    }
    .await;
    respond(&state, Protocol::Native, &context, result)
}

/// `GET /compatible-mode/v1/models`: only the models this key may call, served in this
/// protocol.
async fn openai_models(State(state): State<AppState>, context: RequestContext, headers: HeaderMap) -> Response {
    let result = (|| {
        let authorized = authenticate_request(&state, Protocol::OpenAi, &headers, &context)?;
        authorize_target(&state, &authorized, &context, &headers, CallTarget::Nothing)?;
        let callable: Vec<Value> = state
            .shared
            .catalog
            .iter()
            .filter(|model| state.shared.upstreams.serves_in(&model.name, Protocol::OpenAi))
            .filter(|model| authorize_target(&state, &authorized, &context, &headers, CallTarget::Model(&model.name)).is_ok())
            .map(|model| json!({"id": model.name, "object": "model", "created": 0, "owned_by": if model.demo { "keygate-demo" } else { "keygate" }}))
            .collect();
        Ok::<_, GatewayRefusal>(Json(json!({"object": "list", "data": callable})).into_response())
    })();
    respond(&state, Protocol::OpenAi, &context, result)
}

/// `POST /api/v1/tokens?expire_in_seconds=N`: a temporary key from a permanent one.
async fn mint_temporary(State(state): State<AppState>, context: RequestContext, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let result = async {
        let authorized = authenticate_request(&state, Protocol::Native, &headers, &context)?;
        if authorized.temporary {
            return Err(GatewayRefusal::TemporaryKeyCannotMint);
        }
        authorize_target(&state, &authorized, &context, &headers, CallTarget::Nothing)?;
        let requested = form_value(query.as_deref().unwrap_or(""), "expire_in_seconds");
        let lifetime = match requested {
            None => DEFAULT_TEMPORARY_KEY_SECONDS,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .and_then(checked_lifetime)
                .ok_or_else(|| GatewayRefusal::BadRequest("expire_in_seconds must be an integer from 1 to 1800.".into()))?,
        };
        let digest = state
            .store()
            .registry()
            .digest_of(authorized.key.key_id)
            .ok_or(GatewayRefusal::Authentication(keygate_core::verification::AuthenticationFailure::Unknown))?;
        let expires_at = state.shared.clock.now_seconds() + lifetime;
        let token = mint_temporary_key(&state.shared.temporary_key_secret, authorized.key.key_id, &digest, expires_at);
        let audit = keygate_store::AuditContext {
            account_id: authorized.key.account_id,
            actor: format!("apiKey:{}", authorized.key.key_id),
            client_address: context.client_address_text(),
            region: state.listener_region.clone(),
        };
        // Minting is rare; the audit row is written before the token is handed out.
        if let Err(error) = state
            .store()
            .record_audit(&audit, "ApiKey.MintTemporary", &format!("apiKey:{}", authorized.key.key_id), &format!("expires_at={expires_at}"))
            .await
        {
            tracing::error!(%error, "could not audit a temporary key");
            return Err(GatewayRefusal::Internal);
        }
        Ok(Json(json!({"token": token, "expires_at": expires_at, "request_id": context.request_id})).into_response())
    }
    .await;
    respond(&state, Protocol::Native, &context, result)
}

fn form_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(key, _)| *key == name).map(|(_, value)| value)
}

/// The app id in an original URI of `/api/v1/apps/{id}/...`.
fn app_in_uri(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("/api/v1/apps/")?;
    rest.split(['/', '?']).next().filter(|id| !id.is_empty())
}

async fn verify(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    answer_verify(&state, crate::request_context::peer_of(&request), request.uri(), request.headers())
}

// The header names of `/auth/verify`, parsed once (a `&str` name is parsed on every use).
static X_KEYGATE_MODEL: HeaderName = HeaderName::from_static("x-keygate-model");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_KEYGATE_IDENTITY: HeaderName = HeaderName::from_static("x-keygate-identity");
static X_KEYGATE_KEY_ID: HeaderName = HeaderName::from_static("x-keygate-key-id");
static X_KEYGATE_WORKSPACE: HeaderName = HeaderName::from_static("x-keygate-workspace");
static X_KEYGATE_ACCOUNT: HeaderName = HeaderName::from_static("x-keygate-account");
static X_KEYGATE_REGION: HeaderName = HeaderName::from_static("x-keygate-region");

/// Whether a `/auth/verify` request asks for the key's identity in the answer
/// (`X-Keygate-Identity: on`, `1`, `true` or `yes`). Off by default, like oauth2-proxy's
/// `--set-xauthrequest`: most callers need only the verdict, and four more response headers
/// are a sixth of the cost of an answer (docs/PERFORMANCE.md).
fn asks_for_identity(headers: &HeaderMap) -> bool {
    headers.get(&X_KEYGATE_IDENTITY).and_then(|value| value.to_str().ok()).is_some_and(|value| {
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
    original_path_after_verify(request.uri()).is_some()
}

/// The original request's path and query when `uri` is `/auth/verify/<original>` (Envoy),
/// `Some("")` for `/auth/verify` itself, `None` for any other path.
fn original_path_after_verify(uri: &Uri) -> Option<&str> {
    let rest = uri.path().strip_prefix("/auth/verify")?;
    if rest.is_empty() {
        return Some("");
    }
    rest.starts_with('/').then(|| uri.path_and_query().map_or(rest, |whole| &whole.as_str()["/auth/verify".len()..]))
}

/// `/auth/verify`: the authorization decision for an existing gateway, for a request from
/// `peer` to `uri` with `headers`. 200 (with the key's identity in `X-Keygate-*` headers when asked
/// for), or 401/403/429 with the native error body. Synchronous: it reads only memory, and needs neither the body nor the
/// router.
pub fn answer_verify(state: &AppState, peer: std::net::IpAddr, uri: &Uri, headers: &HeaderMap) -> Response {
    // A 200 carries no request id: one is made only for an error body.
    let mut context =
        RequestContext { request_id: String::new(), client_address: crate::request_context::client_address_of(state, peer, headers) };
    let result = (|| {
        let authorized: Authorized = authenticate_request(state, Protocol::Native, headers, &context)?;
        let header = |name: &HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
        let model = header(&X_KEYGATE_MODEL).filter(|model| !model.is_empty());
        // nginx says where the call was going in X-Original-URI; Envoy in the path itself.
        let original_uri = header(&X_ORIGINAL_URI).or_else(|| original_path_after_verify(uri)).unwrap_or("");
        let target = match (model, app_in_uri(original_uri)) {
            (Some(model), _) => CallTarget::Model(model),
            (None, Some(app_id)) => CallTarget::Application(app_id),
            (None, None) => CallTarget::Nothing,
        };
        authorize_target(state, &authorized, &context, headers, target)?;
        state.shared.usage.record(authorized.key.key_id, authorized.at_milliseconds);
        let mut response = StatusCode::OK.into_response();
        if !asks_for_identity(headers) {
            return Ok(response);
        }
        let response_headers = response.headers_mut();
        response_headers.insert(X_KEYGATE_KEY_ID.clone(), HeaderValue::from(authorized.key.key_id));
        for (name, value) in [
            (&X_KEYGATE_WORKSPACE, &authorized.key.workspace_id),
            (&X_KEYGATE_ACCOUNT, &authorized.key.account_name),
            (&X_KEYGATE_REGION, &authorized.key.region),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                response_headers.insert(name.clone(), value);
            }
        }
        Ok::<_, GatewayRefusal>(response)
    })();
    if result.is_err() {
        context.request_id = crate::request_context::new_request_id();
    }
    respond(state, Protocol::Native, &context, result)
}
