//! Calling the gateway as a client would, in each of its three protocol shapes, and the
//! expectations the gateway tests share: the docs/CONTRACT.md#data-plane-errors table as whole bodies
//! (the random request id replaced by a placeholder), one `check` for a table of cases, and
//! the management calls that set a scenario up.

use std::net::SocketAddr;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use crate::helpers::{Answer, Client};

pub const NATIVE_GENERATION_PATH: &str = "/api/v1/services/aigc/text-generation/generation";
pub const OPENAI_CHAT_PATH: &str = "/compatible-mode/v1/chat/completions";
pub const ANTHROPIC_MESSAGES_PATH: &str = "/apps/anthropic/v1/messages";
pub const OPENAI_MODELS_PATH: &str = "/compatible-mode/v1/models";
/// What replaces the random request id before bodies are compared.
pub const REQUEST_ID_PLACEHOLDER: &str = "<request-id>";
/// The prompt every call sends; the demo echoes it.
pub const PROMPT: &str = "hello gateway";

/// The wire protocol a call is made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// DashScope native, `Authorization: Bearer`.
    Native,
    /// OpenAI-compatible, `Authorization: Bearer`.
    OpenAi,
    /// Anthropic-compatible, `x-api-key` (as Claude Code sends it).
    Anthropic,
}

pub const ALL_SHAPES: [Shape; 3] = [Shape::Native, Shape::OpenAi, Shape::Anthropic];

/// What a call asks for.
#[derive(Debug, Clone)]
pub enum Target {
    /// The shape's usual chat request naming this model.
    Model(String),
    /// This exact body on the shape's chat path.
    RawBody(String),
    /// `POST /api/v1/apps/{app_id}/completion` (native only).
    App(String),
}

/// One request to the gateway, sendable in any shape.
#[derive(Debug, Clone)]
pub struct Call {
    pub listener: SocketAddr,
    pub key: Option<String>,
    pub target: Target,
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// A call of `model` with `key` on `listener`.
    pub fn model(listener: SocketAddr, key: &str, model: &str) -> Call {
        Call { listener, key: Some(key.to_string()), target: Target::Model(model.to_string()), headers: Vec::new() }
    }

    /// A call of the demo model `demo-echo`.
    pub fn echo(listener: SocketAddr, key: &str) -> Call {
        Call::model(listener, key, "demo-echo")
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The path and JSON body this call has in `shape`.
    pub fn path_and_body(&self, shape: Shape) -> (String, String) {
        let path = match (&self.target, shape) {
            (Target::App(app_id), _) => {
                return (format!("/api/v1/apps/{app_id}/completion"), json!({"input": {"prompt": PROMPT}}).to_string())
            }
            (_, Shape::Native) => NATIVE_GENERATION_PATH,
            (_, Shape::OpenAi) => OPENAI_CHAT_PATH,
            (_, Shape::Anthropic) => ANTHROPIC_MESSAGES_PATH,
        };
        let body = match &self.target {
            Target::RawBody(body) => body.clone(),
            Target::Model(model) => request_body(shape, model, false).to_string(),
            Target::App(_) => unreachable!("answered above"),
        };
        (path.to_string(), body)
    }

    /// Sends the call in `shape`.
    pub async fn send(&self, http: &reqwest::Client, shape: Shape) -> Reply {
        Reply::read(self.request(http, shape).send().await.expect("the gateway answers")).await
    }

    /// The call in `shape`, ready to send.
    pub fn request(&self, http: &reqwest::Client, shape: Shape) -> reqwest::RequestBuilder {
        let (path, body) = self.path_and_body(shape);
        let mut request = http.post(format!("http://{}{path}", self.listener)).header("content-type", "application/json").body(body);
        if let Some(key) = &self.key {
            request = match shape {
                Shape::Anthropic => request.header("x-api-key", key),
                Shape::Native | Shape::OpenAi => request.bearer_auth(key),
            };
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }
}

/// The usual request body of `shape` for `model`.
pub fn request_body(shape: Shape, model: &str, stream: bool) -> Value {
    match shape {
        Shape::Native => json!({"model": model, "input": {"prompt": PROMPT}}),
        Shape::OpenAi => json!({"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}),
        Shape::Anthropic => json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}),
    }
}

/// A gateway answer: status, headers and body (JSON when it parses, else `Null`).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// One row of the docs/CONTRACT.md#data-plane-errors table: the status and each shape's code or type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub native_code: &'static str,
    pub openai_code: &'static str,
    pub openai_type: &'static str,
    pub anthropic_type: &'static str,
}

const fn refusal(
    status: u16,
    native_code: &'static str,
    openai_code: &'static str,
    openai_type: &'static str,
    anthropic_type: &'static str,
) -> Refusal {
    Refusal { status, native_code, openai_code, openai_type, anthropic_type }
}

pub const INVALID_API_KEY: Refusal = refusal(401, "InvalidApiKey", "invalid_api_key", "invalid_request_error", "authentication_error");
pub const ADDRESS_NOT_ALLOWED: Refusal = refusal(403, "AccessDenied", "access_denied", "access_denied", "permission_error");
pub const WORKSPACE_MISMATCH: Refusal = refusal(403, "Workspace.AccessDenied", "access_denied", "access_denied", "permission_error");
pub const MODEL_NOT_ALLOWED: Refusal = refusal(403, "Model.AccessDenied", "model_access_denied", "access_denied", "permission_error");
pub const APP_NOT_ALLOWED: Refusal = refusal(403, "App.AccessDenied", "access_denied", "access_denied", "permission_error");
pub const MODEL_NOT_FOUND: Refusal = refusal(404, "ModelNotFound", "model_not_found", "invalid_request_error", "not_found_error");
pub const THROTTLED: Refusal = refusal(429, "Throttling", "limit_requests", "limit_requests", "rate_limit_error");
pub const BAD_REQUEST: Refusal =
    refusal(400, "InvalidParameter", "invalid_request_error", "invalid_request_error", "invalid_request_error");
pub const UPSTREAM_UNREACHABLE: Refusal = refusal(502, "InternalError", "upstream_error", "upstream_error", "api_error");
/// A temporary key minting another (docs/CONTRACT.md#temporary-keys).
pub const ACCESS_DENIED: Refusal = ADDRESS_NOT_ALLOWED;

/// Messages the gateway answers with.
pub const NO_KEY: &str = "No API-key provided.";
pub const INVALID_KEY: &str = "Invalid API-key provided.";
pub const KEY_DISABLED: &str = "The API key is disabled.";
pub const CREATOR_NOT_ACTIVE: &str = "The API key's owner is disabled or no longer a member of its workspace.";
pub const TEMPORARY_KEY_EXPIRED: &str = "The temporary API key has expired.";
pub const KEY_EXPIRED: &str = "The API key has expired.";
pub const ADDRESS_NOT_WHITELISTED: &str = "Access denied: this address is not in the API key's IP whitelist.";
pub const WORKSPACE_HEADER_MISMATCH: &str = "Access denied: the workspace header does not name this API key's workspace.";
/// A model call refused because the key's workspace `workspace` was not granted `model`.
pub fn model_not_granted(model: &str, workspace: &str) -> String {
    format!("Model access denied: the workspace {workspace} of this API key has not been granted the model '{model}'; the account or an admin grants it on the workspace's page in the console or with `keygate workspaces grant {workspace} {model}`.")
}
/// A model call refused because the key's custom permissions do not include `model`.
pub fn model_not_in_key_scope(model: &str) -> String {
    format!("Model access denied: this API key's custom permissions do not include the model '{model}'; whoever manages the key may add it to the key's model access.")
}
pub const APP_ACCESS_DENIED: &str = "Access denied: this application is not available to this API key.";
pub const UNKNOWN_MODEL: &str = "The model does not exist or is not served here.";
pub const TOO_MANY_FAILURES: &str = "Requests throttling triggered: too many failed authentications from this address.";
pub const NOT_JSON: &str = "The request body must be a JSON object.";
pub const NO_MODEL: &str = "The request body must name a model (\"model\").";
pub const UPSTREAM_DOWN: &str = "The upstream model provider could not be reached.";
pub const TEMPORARY_CANNOT_MINT: &str = "Access denied: a temporary API key cannot create another temporary key.";
pub const BAD_LIFETIME: &str = "expire_in_seconds must be an integer from 1 to 1800.";

/// The whole error body `shape` answers for `refusal`, with the request id as
/// [`REQUEST_ID_PLACEHOLDER`] (Anthropic bodies carry none: it is a header).
pub fn expected_error_body(shape: Shape, refusal: Refusal, message: &str) -> Value {
    match shape {
        Shape::Native => json!({"request_id": REQUEST_ID_PLACEHOLDER, "code": refusal.native_code, "message": message}),
        Shape::OpenAi => json!({
            "error": {"message": message, "type": refusal.openai_type, "param": null, "code": refusal.openai_code},
            "request_id": REQUEST_ID_PLACEHOLDER,
        }),
        Shape::Anthropic => json!({"type": "error", "error": {"type": refusal.anthropic_type, "message": message}}),
    }
}

/// `None` when `reply` is exactly this refusal in `shape` (whole body, status, a request id
/// in the body or the Anthropic `request-id` header, `Retry-After` on a 429); else what
/// differs.
pub fn refusal_mismatch(reply: &Reply, shape: Shape, refusal: Refusal, message: &str) -> Option<String> {
    let mut body = reply.body.clone();
    match shape {
        Shape::Native | Shape::OpenAi => match body.get_mut("request_id") {
            Some(id) if id.as_str().is_some_and(|id| !id.is_empty()) => *id = json!(REQUEST_ID_PLACEHOLDER),
            _ => return Some(format!("no request_id in the body: {} {}", reply.status, reply.text)),
        },
        Shape::Anthropic => {
            if reply.header("request-id").filter(|id| !id.is_empty()).is_none() {
                return Some(format!("no request-id header ({} {})", reply.status, reply.text));
            }
        }
    }
    let expected = expected_error_body(shape, refusal, message);
    if reply.status != refusal.status || body != expected {
        return Some(format!("expected {} {expected}\n           got {} {}", refusal.status, reply.status, reply.text));
    }
    // A refusal that a retry cannot change tells the SDKs not to retry (Claude Code would
    // otherwise retry a disabled key's 401 for minutes); limits and failures leave it to them.
    let expected_should_retry = matches!(refusal.status, 400 | 401 | 403 | 404 | 405 | 414).then_some("false");
    if reply.header("x-should-retry") != expected_should_retry {
        return Some(format!("x-should-retry: expected {expected_should_retry:?}, got {:?}", reply.header("x-should-retry")));
    }
    if refusal.status == 429 {
        let retry_after = reply.header("retry-after").and_then(|value| value.parse::<u64>().ok());
        if !retry_after.is_some_and(|seconds| (1..=60).contains(&seconds)) {
            return Some(format!("a 429 needs Retry-After of 1 to 60 seconds, got {:?}", reply.header("retry-after")));
        }
    }
    None
}

/// Asserts that `reply` is exactly this refusal in `shape`.
#[track_caller]
pub fn assert_refused(reply: &Reply, shape: Shape, refusal: Refusal, message: &str) {
    if let Some(problem) = refusal_mismatch(reply, shape, refusal, message) {
        panic!("{shape:?}: {problem}");
    }
}

/// One row of an error table: a call, the shapes to make it in, and the refusal.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub call: Call,
    pub shapes: &'static [Shape],
    pub refusal: Refusal,
    pub message: String,
}

impl Case {
    /// A case made in all three shapes.
    pub fn new(name: &'static str, call: Call, refusal: Refusal, message: &str) -> Case {
        Case { name, call, shapes: &ALL_SHAPES, refusal, message: message.to_string() }
    }

    /// A case made only in the native shape (applications have no other path).
    pub fn native_only(name: &'static str, call: Call, refusal: Refusal, message: &str) -> Case {
        Case { name, call, shapes: &[Shape::Native], refusal, message: message.to_string() }
    }
}

/// Makes the case's call in each of its shapes; one line per shape that differs, naming
/// the case.
pub async fn check(http: &reqwest::Client, case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    for &shape in case.shapes {
        let reply = case.call.send(http, shape).await;
        if let Some(problem) = refusal_mismatch(&reply, shape, case.refusal, &case.message) {
            failures.push(format!("[{}, {shape:?}] {problem}", case.name));
        }
    }
    failures
}

/// Checks every case and panics with all the mismatches at once.
pub async fn check_all(http: &reqwest::Client, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        failures.extend(check(http, case).await);
    }
    assert!(failures.is_empty(), "{} of the cases answered otherwise:\n{}", failures.len(), failures.join("\n"));
}

/// The reply text of a chat answer in `shape` (the demo echoes the prompt).
pub fn answer_text(shape: Shape, body: &Value) -> Option<&str> {
    match shape {
        Shape::Native => body.pointer("/output/text"),
        Shape::OpenAi => body.pointer("/choices/0/message/content"),
        Shape::Anthropic => body.pointer("/content/0/text"),
    }
    .and_then(Value::as_str)
}

/// Asserts that `reply` is the demo's answer to [`PROMPT`] in `shape`.
#[track_caller]
pub fn assert_demo_answer(reply: &Reply, shape: Shape) {
    assert_eq!(reply.status, 200, "{shape:?}: expected the demo's answer, got {} {}", reply.status, reply.text);
    assert_eq!(answer_text(shape, &reply.body), Some(format!("[keygate demo] echo: {PROMPT}").as_str()), "{shape:?}: {}", reply.text);
}

/// Sends `call` in every shape and asserts the demo answered each.
pub async fn assert_served_in_every_shape(http: &reqwest::Client, call: &Call) {
    for shape in ALL_SHAPES {
        assert_demo_answer(&call.send(http, shape).await, shape);
    }
}

/// Sends `call` in every shape and asserts each got this refusal.
pub async fn assert_refused_in_every_shape(http: &reqwest::Client, call: &Call, refusal: Refusal, message: &str) {
    for shape in ALL_SHAPES {
        assert_refused(&call.send(http, shape).await, shape, refusal, message);
    }
}

/// `POST /api/v1/tokens` with `query` (e.g. `expire_in_seconds=60`, or empty) and `key`.
pub async fn mint(http: &reqwest::Client, listener: SocketAddr, key: &str, query: &str, extra_headers: &[(&str, &str)]) -> Reply {
    let url =
        if query.is_empty() { format!("http://{listener}/api/v1/tokens") } else { format!("http://{listener}/api/v1/tokens?{query}") };
    let mut request = http.post(url).bearer_auth(key);
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    Reply::read(request.send().await.expect("the gateway answers")).await
}

/// Mints a temporary key that must be granted; returns `(token, expires_at)`.
pub async fn mint_token(http: &reqwest::Client, listener: SocketAddr, key: &str, query: &str) -> (String, i64) {
    let reply = mint(http, listener, key, query, &[]).await;
    assert_eq!(reply.status, 200, "minting failed: {}", reply.text);
    (reply.body["token"].as_str().expect("token").to_string(), reply.body["expires_at"].as_i64().expect("expires_at"))
}

/// `GET /compatible-mode/v1/models` with `key`: the sorted model ids, or the refusal.
pub async fn listed_models(http: &reqwest::Client, listener: SocketAddr, key: &str) -> Vec<String> {
    let response = http.get(format!("http://{listener}{OPENAI_MODELS_PATH}")).bearer_auth(key).send().await.expect("the gateway answers");
    let reply = Reply::read(response).await;
    assert_eq!((reply.status, &reply.body["object"]), (200, &json!("list")), "{}", reply.text);
    let mut ids: Vec<String> =
        reply.body["data"].as_array().expect("data").iter().map(|model| model["id"].as_str().expect("id").to_string()).collect();
    ids.sort();
    ids
}

/// Panics unless `answer` is a management success.
#[track_caller]
pub fn assert_management_success(answer: &Answer) {
    assert_eq!((answer.status, &answer.body["success"]), (200, &json!(true)), "{}", answer.body);
}

/// CreateApiKey with `query` and form `body`; returns `(apiKeyId, plaintext)`.
pub async fn create_key(client: &Client, query: &str, body: &str) -> (i64, String) {
    let answer = client.create_key(query, body).await;
    assert_management_success(&answer);
    (
        answer.body["apiKey"]["apiKeyId"].as_i64().expect("apiKeyId"),
        answer.body["apiKey"]["apiKeyValue"].as_str().expect("apiKeyValue").to_string(),
    )
}

/// CreateWorkspace; returns the new workspace id.
pub async fn create_workspace(client: &Client, name: &str) -> String {
    let answer = client.send("POST", &format!("/modelstudio/workspaces?workspaceName={name}"), "").await;
    assert_management_success(&answer);
    answer.body["workspace"]["workspaceId"].as_str().expect("workspaceId").to_string()
}

/// UpdateModelPermissions: `(model, inference)` for each model, in the SDK's form.
pub async fn set_model_permissions(client: &Client, workspace_id: &str, models: &[(&str, bool)]) {
    let mut form = format!("workspaceId={workspace_id}");
    for (index, (model, inference)) in models.iter().enumerate() {
        form.push_str(&format!("&models.{}.model={model}&models.{}.inference={inference}", index + 1, index + 1));
    }
    assert_management_success(&client.send("POST", "/modelstudio/models/permissions", &form).await);
}

/// A management operation on a key: `disable`, `enable`, `reset` (PUT) or `delete`.
pub async fn key_operation(client: &Client, key_id: i64, operation: &str) -> Answer {
    let answer = match operation {
        "delete" => client.send("DELETE", &format!("/modelstudio/apikeys/{key_id}"), "").await,
        _ => client.send("PUT", &format!("/modelstudio/apikeys/{key_id}/{operation}"), "").await,
    };
    assert_management_success(&answer);
    answer
}

/// A loopback port that nothing listens on (bound, then closed).
pub fn closed_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
