//! Every refusal the router reaches answers in the envelope of the plane its path belongs
//! to, with a request id where that envelope keeps one (and the same id in the header), and
//! leaves an access-log line with that id and status: an unknown path (404), a wrong method
//! (405 with `Allow`), a body over the limit, a request target over the limit (414), a path
//! parameter that is not percent-encoded UTF-8, a path to the provider account's own state
//! (files, batches, fine-tunes: 403), and the official SDK's operations that keygate does
//! not implement. Requests go out on raw sockets so that no client library
//! cleans up the very paths under test.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gateway_calls::create_key;
use crate::helpers::{spawn_app_with, Credentials, TestApp};
use crate::log_capture;

/// The gateway's body limit in these tests.
const BODY_LIMIT: usize = 1024;

/// An answer read off the wire.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(header, _)| header == name).map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("a JSON body ({}): {}", self.status, self.body))
    }
}

/// Sends `method target` with `headers` and `body` on a new connection and reads one
/// answer: its head, then a body of its `Content-Length` (the server may answer before it
/// has read a body it refuses, so the answer is not read to the end of the connection).
pub async fn raw_request(address: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> RawAnswer {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: keygate.test\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connects");
    stream.write_all(head.as_bytes()).await.expect("head written");
    // The server may answer (and close) before it reads a body it refuses.
    let _ = stream.write_all(body).await;
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer)).await.expect("an answer in time").unwrap_or(0);
        received.extend_from_slice(&buffer[..read]);
        let Some(split) = received.windows(4).position(|window| window == b"\r\n\r\n") else {
            assert!(read > 0, "closed before a whole head: {}", String::from_utf8_lossy(&received));
            continue;
        };
        let head_text = String::from_utf8_lossy(&received[..split]).to_string();
        let mut lines = head_text.split("\r\n");
        let status = lines.next().and_then(|line| line.split(' ').nth(1)).and_then(|code| code.parse().ok()).unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        let length = headers.iter().find(|(name, _)| name == "content-length").and_then(|(_, value)| value.parse::<usize>().ok());
        let body = &received[split + 4..];
        let complete = match length {
            Some(length) => body.len() >= length,
            None => read == 0,
        };
        if complete {
            return RawAnswer { status, headers, body: String::from_utf8_lossy(body).to_string() };
        }
        assert!(read > 0, "closed before the whole body: {}", String::from_utf8_lossy(&received));
    }
}

/// The error envelopes a refusal can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// DashScope native: `{"request_id", "code", "message"}`.
    Native,
    /// OpenAI-compatible: `{"error": {"message", "type", "param", "code"}, "request_id"}`.
    OpenAi,
    /// Anthropic-compatible: `{"type": "error", "error": {"type", "message"}}`, the id in
    /// the `request-id` header.
    Anthropic,
    /// Model Studio and keygate's own API: camelCase with `requestId`.
    ModelStudio,
    /// Token Plan: PascalCase with `RequestId`.
    TokenPlan,
    /// The console: an HTML page that shows the id.
    Console,
}

/// Checks that `answer` is a whole refusal of `status` in `envelope` with `code` (the
/// native or management code; the OpenAI `code`; the Anthropic `error.type`), and returns
/// its request id, after checking that every place that carries it agrees.
pub fn check_envelope(context: &str, answer: &RawAnswer, envelope: Envelope, status: u16, code: &str) -> String {
    assert_eq!(answer.status, status, "{context}: {answer:?}");
    let header_id = answer.header("x-acs-request-id").unwrap_or_else(|| panic!("{context}: no x-acs-request-id header: {answer:?}"));
    assert!(!header_id.is_empty(), "{context}");
    let content_type = answer.header("content-type").unwrap_or("");
    if envelope == Envelope::Console {
        assert!(content_type.starts_with("text/html"), "{context}: {answer:?}");
        assert!(answer.body.contains(header_id), "{context}: the page does not show the request id: {}", answer.body);
        return header_id.to_string();
    }
    assert!(content_type.starts_with("application/json"), "{context}: {answer:?}");
    let body = answer.json();
    let (body_id, fields): (Option<&str>, Vec<&str>) = match envelope {
        Envelope::Native => {
            assert_eq!(body["code"], code, "{context}: {body}");
            assert!(body["message"].as_str().is_some_and(|message| !message.is_empty()), "{context}: {body}");
            (body["request_id"].as_str(), vec!["request_id", "code", "message"])
        }
        Envelope::OpenAi => {
            assert_eq!(body["error"]["code"], code, "{context}: {body}");
            assert!(body["error"]["type"].is_string() && body["error"]["message"].is_string(), "{context}: {body}");
            assert_eq!(body["error"]["param"], Value::Null, "{context}: {body}");
            (body["request_id"].as_str(), vec!["error", "request_id"])
        }
        Envelope::Anthropic => {
            assert_eq!(body["type"], "error", "{context}: {body}");
            assert_eq!(body["error"]["type"], code, "{context}: {body}");
            assert!(body["error"]["message"].is_string(), "{context}: {body}");
            (answer.header("request-id"), vec!["type", "error"])
        }
        Envelope::ModelStudio => {
            assert_eq!(body["code"], code, "{context}: {body}");
            assert_eq!(body["success"], false, "{context}: {body}");
            assert_eq!(body["httpStatusCode"], status, "{context}: {body}");
            assert!(body["message"].is_string(), "{context}: {body}");
            (body["requestId"].as_str(), vec!["requestId", "code", "message", "httpStatusCode", "success"])
        }
        Envelope::TokenPlan => {
            assert_eq!(body["Code"], code, "{context}: {body}");
            assert_eq!(body["Success"], false, "{context}: {body}");
            assert_eq!(body["HttpStatusCode"], status, "{context}: {body}");
            assert!(body["Message"].is_string(), "{context}: {body}");
            (body["RequestId"].as_str(), vec!["RequestId", "Code", "Message", "HttpStatusCode", "Success"])
        }
        Envelope::Console => unreachable!(),
    };
    let mut keys: Vec<&str> = body.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = fields;
    expected.sort_unstable();
    assert_eq!(keys, expected, "{context}: the envelope has other members: {body}");
    assert_eq!(body_id, Some(header_id), "{context}: the body's request id is not the header's: {answer:?}");
    if matches!(envelope, Envelope::Native | Envelope::OpenAi | Envelope::Anthropic) {
        assert_eq!(answer.header("request-id"), Some(header_id), "{context}");
    }
    header_id.to_string()
}

/// Checks that the request with `request_id` left an access-log line with `status`.
pub async fn assert_logged(context: &str, request_id: &str, status: u16) {
    let line = log_capture::access_log_line(request_id).await.unwrap_or_else(|| panic!("{context}: no access-log line for {request_id}"));
    assert!(line.contains(&format!("status={status}")), "{context}: {line}");
}

/// One refusal to provoke.
struct Case {
    name: &'static str,
    listener: SocketAddr,
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, String)>,
    /// Sent after the head; a case that declares a larger `Content-Length` sends none.
    body: Vec<u8>,
    envelope: Envelope,
    status: u16,
    code: &'static str,
    /// For a 405: the methods the `Allow` header must list.
    allow: &'static [&'static str],
}

impl Case {
    fn new(
        name: &'static str,
        listener: SocketAddr,
        method: &'static str,
        target: &str,
        envelope: Envelope,
        status: u16,
        code: &'static str,
    ) -> Case {
        Case {
            name,
            listener,
            method,
            target: target.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            envelope,
            status,
            code,
            allow: &[],
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Case {
        self.headers.push((name, value.to_string()));
        self
    }

    fn body(mut self, body: &str) -> Case {
        self.body = body.as_bytes().to_vec();
        self
    }

    fn allowing(mut self, methods: &'static [&'static str]) -> Case {
        self.allow = methods;
        self
    }

    async fn check(&self) {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let answer = raw_request(self.listener, self.method, &self.target, &headers, &self.body).await;
        let context = format!("{} ({} {})", self.name, self.method, self.target.chars().take(80).collect::<String>());
        let request_id = check_envelope(&context, &answer, self.envelope, self.status, self.code);
        if !self.allow.is_empty() {
            let allow = answer.header("allow").unwrap_or_else(|| panic!("{context}: a 405 without Allow: {answer:?}"));
            let listed: Vec<&str> = allow.split(',').map(str::trim).collect();
            for method in self.allow {
                assert!(listed.contains(method), "{context}: Allow is '{allow}'");
            }
        }
        assert_logged(&context, &request_id, self.status).await;
    }
}

/// A server with a small gateway body limit, and a session token, a model key and a
/// console cookie for it.
async fn fixture() -> (TestApp, String, String) {
    log_capture::install();
    let app = spawn_app_with(|settings| settings.body_limit_bytes = BODY_LIMIT).await;
    let root = app.login(None).await;
    let Credentials::Session(token) = root.credentials.clone() else { panic!("a session") };
    let (_, key) = create_key(&root, "", "").await;
    (app, token, key)
}

/// A request target longer than any listener serves, under `prefix`.
fn too_long(prefix: &str) -> String {
    format!("{prefix}/{}", "a".repeat(9 * 1024))
}

#[tokio::test]
async fn the_data_plane_refuses_in_the_envelope_of_each_protocol() {
    let (app, _, key) = fixture().await;
    let here = app.address;
    let bearer = format!("Bearer {key}");
    let over_limit = (BODY_LIMIT + 1).to_string();
    use Envelope::{Anthropic, Native, OpenAi};
    let cases = [
        Case::new("native: unknown path", here, "POST", "/api/v1/nothing-here", Native, 404, "NotFound"),
        Case::new("native: wrong method", here, "GET", "/api/v1/services/aigc/text-generation/generation", Native, 405, "MethodNotAllowed")
            .allowing(&["POST"]),
        Case::new(
            "native: body over the limit",
            here,
            "POST",
            "/api/v1/services/aigc/text-generation/generation",
            Native,
            400,
            "InvalidParameter",
        )
        .header("Authorization", &bearer)
        .header("Content-Length", &over_limit),
        Case::new("native: target too long", here, "POST", &too_long("/api/v1/services"), Native, 414, "RequestURITooLong"),
        Case::new("native: app id not UTF-8", here, "POST", "/api/v1/apps/%ff%fe/completion", Native, 400, "InvalidParameter")
            .header("Authorization", &bearer)
            .body("{}"),
        Case::new("openai: unknown path", here, "POST", "/compatible-mode/v1/nothing-here", OpenAi, 404, "not_found"),
        Case::new("openai: wrong method", here, "GET", "/compatible-mode/v1/chat/completions", OpenAi, 405, "method_not_allowed")
            .allowing(&["POST"]),
        Case::new("openai: wrong method on models", here, "DELETE", "/compatible-mode/v1/models", OpenAi, 405, "method_not_allowed")
            .allowing(&["GET"]),
        Case::new(
            "openai: body over the limit",
            here,
            "POST",
            "/compatible-mode/v1/chat/completions",
            OpenAi,
            400,
            "invalid_request_error",
        )
        .header("Authorization", &bearer)
        .header("Content-Length", &over_limit),
        Case::new("openai: target too long", here, "GET", &too_long("/compatible-mode/v1"), OpenAi, 414, "invalid_request_error"),
        // Chat and messages calls are served before the router (`gateway::DirectModelCall`):
        // the same envelopes, request ids and log lines as every other call.
        Case::new(
            "openai: chat without a key, with a query",
            here,
            "POST",
            "/compatible-mode/v1/chat/completions?trace=1",
            OpenAi,
            401,
            "invalid_api_key",
        )
        .body("{}"),
        Case::new("anthropic: an unknown key", here, "POST", "/apps/anthropic/v1/messages", Anthropic, 401, "authentication_error")
            .header("x-api-key", "sk-ws-this-is-not-a-key-of-this-server")
            .body("{}"),
        Case::new("anthropic: unknown path", here, "POST", "/apps/anthropic/v1/nothing-here", Anthropic, 404, "not_found_error"),
        Case::new("anthropic: wrong method", here, "PUT", "/apps/anthropic/v1/messages", Anthropic, 405, "invalid_request_error")
            .allowing(&["POST"]),
        Case::new("anthropic: body over the limit", here, "POST", "/apps/anthropic/v1/messages", Anthropic, 400, "invalid_request_error")
            .header("x-api-key", &key)
            .header("Content-Length", &over_limit),
        Case::new("anthropic: target too long", here, "POST", &too_long("/apps/anthropic/v1"), Anthropic, 414, "invalid_request_error"),
        // The provider account's own state is refused under every method, key or not.
        Case::new("openai: files", here, "POST", "/compatible-mode/v1/files", OpenAi, 403, "access_denied")
            .header("Authorization", &bearer),
        Case::new("openai: a batch", here, "GET", "/compatible-mode/v1/batches/batch_1", OpenAi, 403, "access_denied"),
        Case::new("openai: fine-tuning jobs", here, "GET", "/compatible-mode/v1/fine_tuning/jobs?limit=1", OpenAi, 403, "access_denied"),
        Case::new("native: deployments", here, "GET", "/api/v1/deployments", Native, 403, "AccessDenied").header("Authorization", &bearer),
        Case::new("native: a file", here, "DELETE", "/api/v1/files/file-1", Native, 403, "AccessDenied"),
        Case::new("anthropic: message batches", here, "POST", "/apps/anthropic/v1/messages/batches", Anthropic, 403, "permission_error")
            .header("x-api-key", &key),
        Case::new("anthropic: files", here, "GET", "/apps/anthropic/v1/files", Anthropic, 403, "permission_error"),
        Case::new("plan listener: unknown path", app.plan_address, "POST", "/v1/nothing-here", OpenAi, 404, "not_found"),
        Case::new("plan listener: wrong method", app.plan_address, "GET", "/v1/chat/completions", OpenAi, 405, "method_not_allowed")
            .allowing(&["POST"]),
    ];
    for case in &cases {
        case.check().await;
    }
}

#[tokio::test]
async fn the_management_apis_refuse_in_their_own_envelopes() {
    let (app, token, _) = fixture().await;
    let here = app.address;
    let over_limit = (1024 * 1024 + 1).to_string();
    let large_login = (4 * 1024 * 1024).to_string();
    use Envelope::{ModelStudio, TokenPlan};
    let cases = [
        // Model Studio.
        Case::new("modelstudio: unknown path", here, "GET", "/modelstudio/nothing-here", ModelStudio, 404, "UnsupportedOperation"),
        Case::new("modelstudio: wrong method", here, "PATCH", "/modelstudio/apikeys", ModelStudio, 405, "MethodNotAllowed")
            .allowing(&["GET", "POST"]),
        Case::new("modelstudio: wrong method on a key", here, "POST", "/modelstudio/apikeys/1", ModelStudio, 405, "MethodNotAllowed")
            .allowing(&["GET", "PUT", "DELETE"]),
        Case::new("modelstudio: body over the limit", here, "POST", "/modelstudio/apikeys", ModelStudio, 413, "RequestEntityTooLarge")
            .header("x-acs-bearer-token", &token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Content-Length", &over_limit),
        Case::new("modelstudio: target too long", here, "GET", &too_long("/modelstudio/apikeys"), ModelStudio, 414, "RequestURITooLong"),
        Case::new("modelstudio: key id not UTF-8", here, "GET", "/modelstudio/apikeys/%ff%fe", ModelStudio, 400, "InvalidParameter")
            .header("x-acs-bearer-token", &token),
        Case::new("modelstudio: key id badly escaped", here, "DELETE", "/modelstudio/apikeys/1%zz", ModelStudio, 400, "InvalidParameter")
            .header("x-acs-bearer-token", &token),
        Case::new(
            "modelstudio: workspace id not UTF-8",
            here,
            "DELETE",
            "/modelstudio/workspaces/llm-%c3%28",
            ModelStudio,
            400,
            "InvalidParameter",
        )
        .header("x-acs-bearer-token", &token),
        // Token Plan.
        Case::new("tokenplan: unknown path", here, "GET", "/tokenplan/nothing-here", TokenPlan, 404, "UnsupportedOperation"),
        Case::new("tokenplan: wrong method", here, "GET", "/tokenplan/api-keys", TokenPlan, 405, "MethodNotAllowed").allowing(&["POST"]),
        Case::new("tokenplan: body over the limit", here, "POST", "/tokenplan/api-keys", TokenPlan, 413, "RequestEntityTooLarge")
            .header("x-acs-bearer-token", &token)
            .header("Content-Length", &over_limit),
        Case::new("tokenplan: target too long", here, "GET", &too_long("/tokenplan/api-keys"), TokenPlan, 414, "RequestURITooLong"),
        // keygate's own API.
        Case::new("keygate: unknown path", here, "GET", "/keygate/v1/nothing-here", ModelStudio, 404, "NotFound"),
        Case::new("keygate: wrong method", here, "PATCH", "/keygate/v1/users", ModelStudio, 405, "MethodNotAllowed")
            .allowing(&["GET", "POST"]),
        Case::new("keygate: login body over the limit", here, "POST", "/keygate/v1/sessions", ModelStudio, 413, "RequestEntityTooLarge")
            .header("Content-Type", "application/json")
            .header("Content-Length", &large_login),
        Case::new("keygate: body over the limit", here, "POST", "/keygate/v1/leaks", ModelStudio, 413, "RequestEntityTooLarge")
            .header("x-acs-bearer-token", &token)
            .header("Content-Length", &over_limit),
        Case::new("keygate: target too long", here, "GET", &too_long("/keygate/v1/users"), ModelStudio, 414, "RequestURITooLong"),
        Case::new("keygate: user name not UTF-8", here, "GET", "/keygate/v1/users/%ff", ModelStudio, 400, "InvalidParameter")
            .header("x-acs-bearer-token", &token),
        Case::new(
            "keygate: member name not UTF-8",
            here,
            "DELETE",
            "/keygate/v1/workspaces/llm-0123456789abcdef/members/a%80b",
            ModelStudio,
            400,
            "InvalidParameter",
        )
        .header("x-acs-bearer-token", &token),
        // Anything else answers in the Model Studio envelope.
        Case::new("root: unknown path", here, "GET", "/nothing-here", ModelStudio, 404, "NotFound"),
        Case::new("root: wrong method", here, "POST", "/healthz", ModelStudio, 405, "MethodNotAllowed").allowing(&["GET"]),
        Case::new("root: target too long", here, "GET", &too_long(""), ModelStudio, 414, "RequestURITooLong"),
    ];
    for case in &cases {
        case.check().await;
    }
}

#[tokio::test]
async fn the_console_refuses_with_a_page_that_shows_the_request_id() {
    let (app, token, _) = fixture().await;
    let here = app.address;
    let cookie = format!("keygate_session={token}");
    use Envelope::Console;
    let cases = [
        Case::new("console: unknown page", here, "GET", "/console/nothing-here", Console, 404, ""),
        Case::new("console: wrong method", here, "DELETE", "/console/keys", Console, 405, "").allowing(&["GET", "POST"]),
        Case::new("console: target too long", here, "GET", &too_long("/console"), Console, 414, ""),
        Case::new("console: key id not UTF-8", here, "POST", "/console/keys/%ff/disable", Console, 400, "")
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("csrf_token=x"),
        Case::new("console: form over the limit", here, "POST", "/console/keys", Console, 413, "")
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Content-Length", &(1024 * 1024).to_string()),
    ];
    for case in &cases {
        case.check().await;
    }
}

#[tokio::test]
async fn operations_of_the_official_sdk_that_keygate_does_not_implement_answer_unsupported_operation() {
    log_capture::install();
    let app = spawn_app_with(|_| {}).await;
    // Signed with an AccessKey, as the SDK sends them (method, path and query of each
    // operation as `alibabacloud-modelstudio20260210` builds it).
    let client = app.access_key_client_at(app.address, None).await;
    let operations = [
        ("GetOrganization", "GET", "/tokenplan/organization", true),
        ("UpdateOrganization", "POST", "/tokenplan/organization", true),
        ("ListOrganizationMembers", "GET", "/tokenplan/organization/members", true),
        ("BatchAssignSeats", "POST", "/tokenplan/subscription/seat-assignments", true),
    ];
    for (operation, method, target, pascal_case) in operations {
        let answer = client.send(method, target, "").await;
        let (code, request_id) = if pascal_case {
            (&answer.body["Code"], answer.body["RequestId"].as_str())
        } else {
            (&answer.body["code"], answer.body["requestId"].as_str())
        };
        assert_eq!((answer.status, code.as_str()), (404, Some("UnsupportedOperation")), "{operation}: {}", answer.body);
        let request_id = request_id.unwrap_or_else(|| panic!("{operation}: no request id: {}", answer.body));
        assert_logged(operation, request_id, 404).await;
    }
}

#[tokio::test]
async fn the_metrics_listener_refuses_other_paths_with_a_request_id() {
    log_capture::install();
    let app = spawn_app_with(|settings| settings.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics = app.metrics_address.expect("a metrics listener");
    let answer = raw_request(metrics, "GET", "/healthz", &[], b"").await;
    let request_id = check_envelope("metrics listener: other path", &answer, Envelope::ModelStudio, 404, "NotFound");
    assert_logged("metrics listener: other path", &request_id, 404).await;
    let answer = raw_request(metrics, "POST", "/metrics", &[], b"").await;
    let request_id = check_envelope("metrics listener: wrong method", &answer, Envelope::ModelStudio, 405, "MethodNotAllowed");
    assert_eq!(answer.header("allow").map(|allow| allow.contains("GET")), Some(true), "{answer:?}");
    assert_logged("metrics listener: wrong method", &request_id, 405).await;
    let answer = raw_request(metrics, "GET", "/metrics", &[], b"").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("keygate_gateway_requests_total"), "{}", answer.body);
}
