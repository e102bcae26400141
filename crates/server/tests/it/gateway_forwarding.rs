//! Forwarding to a real upstream (docs/CONTRACT.md#forwarding): an HTTP test double on a loopback port
//! records every request and answers like an OpenAI, DashScope or Anthropic endpoint, in
//! JSON or as server-sent events. The tests check what the double received (the upstream's
//! credential, never the client's key; no hop-by-hop headers), that streams pass through
//! event by event, that a model is refused in a protocol its upstream does not speak, and
//! that forwarded calls are counted in GetApiKey.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::StreamExt;
use keygate_core::ids::AppId;
use keygate_server::settings::UpstreamSettings;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Semaphore};

use crate::gateway_calls::{
    answer_text, assert_management_success, assert_refused, create_key, request_body, Call, Reply, Shape, Target, ALL_SHAPES, BAD_REQUEST,
    MODEL_NOT_FOUND, UNKNOWN_MODEL,
};
use crate::helpers::{serve_upstream_double, spawn_app_with, TestApp};

/// Served by the double in all three protocols.
pub(crate) const DOUBLE_MODEL: &str = "double-chat";
/// Served by the double only in the OpenAI-compatible protocol.
const OPENAI_ONLY_MODEL: &str = "double-openai-only";
/// What the double's JSON answers say.
const DOUBLE_TEXT: &str = "answered by the upstream double";
/// Hop-by-hop request headers a client might send (`x-hop-scoped` is made hop-by-hop by
/// naming it in `Connection`).
const HOP_BY_HOP_SENT: [(&str, &str); 5] = [
    ("connection", "keep-alive, x-hop-scoped"),
    ("x-hop-scoped", "for the next hop only"),
    ("keep-alive", "timeout=5"),
    ("proxy-authorization", "Basic cHJveHk6c2VjcmV0"),
    ("te", "trailers"),
];

/// How long a streaming test waits for what a buffering gateway would never send: a guard
/// against hanging, not a timing assertion.
const NEVER: Duration = Duration::from_secs(30);

/// One request as the double received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
    body: Bytes,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|value| value.to_str().expect("ASCII").to_string())
    }
}

#[derive(Clone)]
struct DoubleState {
    received: Arc<Mutex<Vec<Received>>>,
    /// Each streamed event after the first waits for a permit, so that the test decides
    /// when the next one is sent.
    next_event: Arc<Semaphore>,
}

/// An upstream provider on a loopback port, stopped when dropped.
pub(crate) struct UpstreamDouble {
    pub(crate) address: SocketAddr,
    state: DoubleState,
    _shutdown: oneshot::Sender<()>,
}

impl UpstreamDouble {
    pub(crate) async fn start() -> UpstreamDouble {
        let state = DoubleState { received: Arc::default(), next_event: Arc::new(Semaphore::new(0)) };
        let router = Router::new().fallback(answer).with_state(state.clone());
        let (address, shutdown) = serve_upstream_double(router).await;
        UpstreamDouble { address, state, _shutdown: shutdown }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("not poisoned").clone()
    }

    fn base(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// The protocol a request to the double was made in, from the base URL it came through.
fn protocol_of(path: &str) -> Shape {
    if path.starts_with("/anthropic/") {
        Shape::Anthropic
    } else if path.starts_with("/api/v1/") {
        Shape::Native
    } else {
        Shape::OpenAi
    }
}

/// The events the double streams in `shape`: three pieces of text, then the end.
fn streamed_events(shape: Shape) -> Vec<String> {
    let pieces = ["piece-1 ", "piece-2 ", "piece-3"];
    let mut events: Vec<String> = pieces
        .iter()
        .enumerate()
        .map(|(index, piece)| match shape {
            Shape::OpenAi => format!("data: {}\n\n", json!({"id": "chatcmpl-double", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]})),
            Shape::Native => format!("id:{}\nevent:result\n:HTTP_STATUS/200\ndata:{}\n\n", index + 1, json!({"output": {"text": piece, "finish_reason": "null"}, "request_id": "double"})),
            Shape::Anthropic => {
                format!("event: content_block_delta\ndata: {}\n\n", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}))
            }
        })
        .collect();
    events.push(match shape {
        Shape::OpenAi => "data: [DONE]\n\n".to_string(),
        Shape::Native => format!(
            "id:4\nevent:result\n:HTTP_STATUS/200\ndata:{}\n\n",
            json!({"output": {"text": "", "finish_reason": "stop"}, "request_id": "double"})
        ),
        Shape::Anthropic => format!("event: message_stop\ndata: {}\n\n", json!({"type": "message_stop"})),
    });
    events
}

/// The double's JSON answer in `shape`.
fn json_answer(shape: Shape) -> Value {
    match shape {
        Shape::OpenAi => {
            json!({"id": "chatcmpl-double", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": DOUBLE_TEXT}, "finish_reason": "stop"}]})
        }
        Shape::Native => json!({"output": {"text": DOUBLE_TEXT, "finish_reason": "stop"}, "request_id": "double"}),
        Shape::Anthropic => {
            json!({"id": "msg_double", "type": "message", "role": "assistant", "content": [{"type": "text", "text": DOUBLE_TEXT}], "stop_reason": "end_turn"})
        }
    }
}

async fn answer(State(state): State<DoubleState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    assert_eq!(method, Method::POST, "the double only expects model calls");
    let path_and_query = uri.path_and_query().map(ToString::to_string).unwrap_or_default();
    let shape = protocol_of(uri.path());
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let streaming = request["stream"] == json!(true) || headers.get("x-dashscope-sse").is_some_and(|value| value == "enable");
    state.received.lock().expect("not poisoned").push(Received { path_and_query, headers, body });
    if streaming {
        let gate = state.next_event.clone();
        let events = futures_util::stream::unfold((0, streamed_events(shape)), move |(index, events)| {
            let gate = gate.clone();
            async move {
                let event = events.get(index)?.clone();
                if index > 0 {
                    gate.acquire().await.expect("the gate stays open").forget();
                }
                Some((Ok::<Bytes, Infallible>(Bytes::from(event)), (index + 1, events)))
            }
        });
        return ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(events)).into_response();
    }
    let headers = [
        ("x-upstream-double", "answered"),
        ("keep-alive", "timeout=5"),
        ("connection", "x-upstream-hop"),
        ("x-upstream-hop", "for the next hop only"),
    ];
    (headers, Json(json_answer(shape))).into_response()
}

/// A server whose upstreams are the double: `DOUBLE_MODEL` and `app_id` in every protocol,
/// `OPENAI_ONLY_MODEL` in the OpenAI-compatible one. The upstream credential is read from
/// an environment variable named after the test; returns the credential too.
pub(crate) async fn forwarding_app(test_name: &str, double: &UpstreamDouble, app_id: Option<&AppId>) -> (TestApp, String) {
    let variable = format!("KEYGATE_IT_UPSTREAM_KEY_{}", test_name.to_ascii_uppercase());
    let credential = format!("upstream-credential-for-{test_name}");
    std::env::set_var(&variable, &credential);
    let base = double.base();
    let apps: Vec<String> = app_id.map(|id| id.as_str().to_string()).into_iter().collect();
    let app = spawn_app_with(move |settings| {
        settings.upstreams = vec![
            UpstreamSettings {
                name: "double".into(),
                openai_base_url: Some(format!("{base}/v1")),
                dashscope_base_url: Some(format!("{base}/api/v1")),
                anthropic_base_url: Some(format!("{base}/anthropic")),
                responses_base_url: None,
                api_key_env: Some(variable.clone()),
                models: vec![DOUBLE_MODEL.into()],
                apps,
                ..UpstreamSettings::default()
            },
            UpstreamSettings {
                name: "double-openai-only".into(),
                openai_base_url: Some(format!("{base}/v1/")),
                dashscope_base_url: None,
                anthropic_base_url: None,
                responses_base_url: None,
                api_key_env: Some(variable),
                models: vec![OPENAI_ONLY_MODEL.into()],
                apps: Vec::new(),
                ..UpstreamSettings::default()
            },
        ];
    })
    .await;
    (app, credential)
}

/// Where the double receives a call made at `path` in `shape` (its base URL plus the rest).
fn upstream_path(shape: Shape) -> &'static str {
    match shape {
        Shape::Native => "/api/v1/services/aigc/text-generation/generation",
        Shape::OpenAi => "/v1/chat/completions",
        Shape::Anthropic => "/anthropic/v1/messages",
    }
}

#[tokio::test]
async fn the_upstream_gets_its_own_credential_and_never_the_clients_key_nor_hop_by_hop_headers() {
    let double = UpstreamDouble::start().await;
    let (app, credential) = forwarding_app("credentials", &double, None).await;
    let (_, client_key) = create_key(&app.login(None).await, "", "").await;

    for shape in ALL_SHAPES {
        let mut call = Call::model(app.address, &client_key, DOUBLE_MODEL).with_header("x-client-trace", "trace-123");
        // The key in both places a client might put it.
        let other_key_header = if shape == Shape::Anthropic { "authorization" } else { "x-api-key" };
        let other_key_value = if shape == Shape::Anthropic { format!("Bearer {client_key}") } else { client_key.clone() };
        call = call.with_header(other_key_header, &other_key_value);
        for (name, value) in HOP_BY_HOP_SENT {
            call = call.with_header(name, value);
        }
        let (path, sent_body) = call.path_and_body(shape);
        let response = call.request(&app.http, shape).query(&[("trace", "on")]).send().await.unwrap();
        let reply = Reply::read(response).await;

        // The client gets the upstream's answer and its end-to-end headers only.
        assert_eq!((reply.status, answer_text(shape, &reply.body)), (200, Some(DOUBLE_TEXT)), "{shape:?} {path}: {}", reply.text);
        assert_eq!(reply.header("x-upstream-double"), Some("answered"), "{shape:?}");
        for name in ["keep-alive", "x-upstream-hop"] {
            assert_eq!(reply.header(name), None, "{shape:?}: hop-by-hop response header {name} came through");
        }
        // An answer relayed unchanged keeps the upstream's length: not re-sent chunked.
        let length = reply.text.len().to_string();
        assert_eq!(
            (reply.header("content-length"), reply.header("transfer-encoding")),
            (Some(length.as_str()), None),
            "{shape:?}: the upstream's Content-Length is kept"
        );

        let received = double.received().pop().expect("the double was called");
        let headers = &received.headers;
        let header = |name: &str| headers.get(name).map(|value| value.to_str().unwrap().to_string());
        assert_eq!(received.path_and_query, format!("{}?trace=on", upstream_path(shape)), "{shape:?}");
        assert_eq!(received.body, sent_body.as_bytes(), "{shape:?}: the body is forwarded as sent");
        match shape {
            Shape::Native | Shape::OpenAi => {
                assert_eq!((header("authorization"), header("x-api-key")), (Some(format!("Bearer {credential}")), None), "{shape:?}")
            }
            Shape::Anthropic => assert_eq!((header("x-api-key"), header("authorization")), (Some(credential.clone()), None), "{shape:?}"),
        }
        let key_body = client_key.trim_start_matches("sk-ws-");
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            assert!(!value.contains(key_body), "{shape:?}: the client's key reached the upstream in {name}: {value}");
        }
        for (name, _) in HOP_BY_HOP_SENT {
            assert_eq!(header(name), None, "{shape:?}: hop-by-hop header {name} reached the upstream");
        }
        assert_eq!(header("x-client-trace").as_deref(), Some("trace-123"), "{shape:?}: end-to-end headers are forwarded");
        assert_eq!(header("host"), Some(double.address.to_string()), "{shape:?}");
    }
    assert_eq!(double.received().len(), 3);
}

#[tokio::test]
async fn streamed_answers_pass_through_event_by_event() {
    let double = UpstreamDouble::start().await;
    let (app, _) = forwarding_app("streaming", &double, None).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;

    for shape in ALL_SHAPES {
        let mut call =
            Call { target: Target::RawBody(request_body(shape, DOUBLE_MODEL, true).to_string()), ..Call::echo(app.address, &key) };
        if shape == Shape::Native {
            call = call.with_header("X-DashScope-SSE", "enable");
        }
        // The double sends an event only when the test has seen the one before: a gateway
        // that buffered the answer would never deliver the first event, nor the headers.
        let response = tokio::time::timeout(NEVER, call.request(&app.http, shape).send())
            .await
            .unwrap_or_else(|_| panic!("{shape:?}: no answer while the upstream streamed: the stream is buffered"))
            .unwrap();
        assert_eq!(response.status(), 200, "{shape:?}");
        assert_eq!(response.headers()[header::CONTENT_TYPE.as_str()], "text/event-stream", "{shape:?}");
        let mut chunks = response.bytes_stream();
        let (mut received, mut n_chunks) = (String::new(), 0);
        let events = streamed_events(shape);
        for (index, event) in events.iter().enumerate() {
            let expected_so_far = events[..=index].concat();
            while received.len() < expected_so_far.len() {
                let next = tokio::time::timeout(NEVER, chunks.next()).await;
                let chunk = next
                    .unwrap_or_else(|_| {
                        panic!(
                            "{shape:?}: event {} of {} never arrived while the upstream waited: the stream is buffered",
                            index + 1,
                            events.len()
                        )
                    })
                    .unwrap_or_else(|| panic!("{shape:?}: the stream ended before event {}", index + 1))
                    .expect("a chunk");
                received.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
                n_chunks += 1;
            }
            assert_eq!(received, expected_so_far, "{shape:?}: event {} ({event:?})", index + 1);
            double.state.next_event.add_permits(1);
        }
        assert!(chunks.next().await.is_none(), "{shape:?}: nothing after the last event");
        assert!(n_chunks >= events.len(), "{shape:?}: {n_chunks} chunks for {} events", events.len());
    }
}

#[tokio::test]
async fn a_model_is_refused_with_400_in_a_protocol_its_upstream_does_not_speak() {
    let double = UpstreamDouble::start().await;
    let (app, _) = forwarding_app("protocols", &double, None).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let call = Call::model(app.address, &key, OPENAI_ONLY_MODEL);

    let message = format!("The model '{OPENAI_ONLY_MODEL}' is served here only through: OpenAI-compatible (/compatible-mode/v1).");
    for shape in [Shape::Native, Shape::Anthropic] {
        assert_refused(&call.send(&app.http, shape).await, shape, BAD_REQUEST, &message);
    }
    assert!(double.received().is_empty(), "nothing is forwarded in a protocol the upstream does not speak");

    let reply = call.send(&app.http, Shape::OpenAi).await;
    assert_eq!((reply.status, answer_text(Shape::OpenAi, &reply.body)), (200, Some(DOUBLE_TEXT)), "{}", reply.text);
    assert_eq!(double.received().iter().map(|received| received.path_and_query.as_str()).collect::<Vec<_>>(), ["/v1/chat/completions"]);
}

#[tokio::test]
async fn an_application_call_goes_to_the_upstream_that_serves_the_app() {
    let double = UpstreamDouble::start().await;
    let app_id = AppId::generate();
    let (app, credential) = forwarding_app("applications", &double, Some(&app_id)).await;
    let root = app.login(None).await;
    let created = root.create_key("", "").await;
    assert_management_success(&created);
    let key = created.body["apiKey"]["apiKeyValue"].as_str().unwrap();
    let workspace = created.body["apiKey"]["workspaceId"].as_str().unwrap();
    app.state.store().create_application(&app.root_audit(), workspace, app_id.as_str(), "forwarded").await.unwrap();

    let call = Call { target: Target::App(app_id.as_str().to_string()), ..Call::echo(app.address, key) };
    let reply = call.send(&app.http, Shape::Native).await;
    assert_eq!((reply.status, answer_text(Shape::Native, &reply.body)), (200, Some(DOUBLE_TEXT)), "{}", reply.text);
    let received = double.received().pop().expect("the double was called");
    assert_eq!(received.path_and_query, format!("/api/v1/apps/{}/completion", app_id.as_str()));
    assert_eq!(
        received.headers.get("authorization").map(|value| value.to_str().unwrap().to_string()),
        Some(format!("Bearer {credential}"))
    );
}

#[tokio::test]
async fn forwarded_calls_are_counted_in_get_api_key() {
    let double = UpstreamDouble::start().await;
    let (app, _) = forwarding_app("usage", &double, None).await;
    let root = app.login(None).await;
    let (key_id, key) = create_key(&root, "", "").await;
    let (idle_id, _) = create_key(&root, "", "").await;
    let usage_of = |key_id: i64| {
        let root = root.clone();
        async move {
            let answer = root.get(&format!("/modelstudio/apikeys/{key_id}")).await;
            assert_management_success(&answer);
            (answer.body["apiKey"]["requestCount"].clone(), answer.body["apiKey"]["lastUsedAt"].clone())
        }
    };
    assert_eq!(usage_of(key_id).await, (json!(0), Value::Null));

    let before = app.state.shared.clock.now_milliseconds();
    for shape in ALL_SHAPES {
        assert_eq!(Call::model(app.address, &key, DOUBLE_MODEL).send(&app.http, shape).await.status, 200, "{shape:?}");
    }
    // Refused calls are not counted.
    assert_refused(
        &Call::model(app.address, &key, "no-such-model").send(&app.http, Shape::OpenAi).await,
        Shape::OpenAi,
        MODEL_NOT_FOUND,
        UNKNOWN_MODEL,
    );
    let after = app.state.shared.clock.now_milliseconds();
    app.state.shared.usage.flush(app.state.store()).await;

    let (request_count, last_used_at) = usage_of(key_id).await;
    assert_eq!(request_count, json!(3));
    let last_used_at = last_used_at.as_i64().expect("lastUsedAt in epoch milliseconds");
    assert!((before..=after).contains(&last_used_at), "lastUsedAt {last_used_at} outside [{before}, {after}]");
    assert_eq!(usage_of(idle_id).await, (json!(0), Value::Null));
}
