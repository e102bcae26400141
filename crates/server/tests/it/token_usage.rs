//! Token accounting (docs/CONTRACT.md#usage), seen from outside: calls in each protocol,
//! streamed and not, through the demo and through an upstream double that reports known
//! usage, are stored with exactly the tokens reported; an OpenAI-compatible streaming
//! client that did not ask for usage receives byte for byte what the double sent minus the
//! usage chunk keygate asked for (one that asked receives it); counts survive a graceful
//! restart, a crash loses only what was not yet flushed and nothing is counted twice; two
//! PostgreSQL nodes serving one key add up; `/metrics` counts tokens per model and protocol.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use keygate_core::usage::{TokenUsage, UsageTotals};
use keygate_server::settings::{ListenerSettings, Settings, UpstreamSettings};
use keygate_server::{AppState, Server};
use keygate_store::usage::{Selection, UsageDimension, UsageQuery};
use keygate_store::Store;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::helpers::{serve_upstream_double, spawn_node, Backend, PostgresSchema, TestApp, ROOT_PASSWORD};

const OPENAI_MODEL: &str = "double-openai";
const NATIVE_MODEL: &str = "double-native";
const ANTHROPIC_MODEL: &str = "double-anthropic";

/// What the double reports, per protocol: (not streamed, streamed).
const OPENAI_USAGE: (TokenUsage, TokenUsage) =
    (TokenUsage { input: 101, output: 23, cached: 7, reasoning: 5 }, TokenUsage { input: 202, output: 46, cached: 14, reasoning: 10 });
const NATIVE_USAGE: (TokenUsage, TokenUsage) =
    (TokenUsage { input: 31, output: 12, cached: 3, reasoning: 0 }, TokenUsage { input: 62, output: 24, cached: 0, reasoning: 4 });
/// Anthropic's `input` is its input plus cache reads and writes.
const ANTHROPIC_USAGE: (TokenUsage, TokenUsage) =
    (TokenUsage { input: 50, output: 9, cached: 10, reasoning: 0 }, TokenUsage { input: 100, output: 18, cached: 20, reasoning: 0 });

/// The OpenAI-compatible stream the double sends, without and with its usage chunk.
fn openai_stream(with_usage: bool) -> String {
    let mut events = String::new();
    for piece in ["Hel", "lo ", "world"] {
        events.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-d", "object": "chat.completion.chunk", "created": 1, "model": OPENAI_MODEL, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]})
        ));
    }
    events.push_str(&format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-d", "object": "chat.completion.chunk", "created": 1, "model": OPENAI_MODEL, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    ));
    if with_usage {
        events.push_str(&usage_chunk());
    }
    events.push_str("data: [DONE]\n\n");
    events
}

fn usage_chunk() -> String {
    let usage = OPENAI_USAGE.1;
    format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-d", "object": "chat.completion.chunk", "created": 1, "model": OPENAI_MODEL, "choices": [], "usage": {
            "prompt_tokens": usage.input, "completion_tokens": usage.output, "total_tokens": usage.input + usage.output,
            "prompt_tokens_details": {"cached_tokens": usage.cached}, "completion_tokens_details": {"reasoning_tokens": usage.reasoning}}})
    )
}

fn native_stream() -> String {
    let usage = NATIVE_USAGE.1;
    // Cumulative, as DashScope reports it: the last event holds the call's usage.
    (1..=3)
        .map(|step| {
            let data = json!({"output": {"text": format!("part {step}"), "finish_reason": if step == 3 { "stop" } else { "null" }},
                "usage": {"input_tokens": usage.input, "output_tokens": usage.output * step / 3, "output_tokens_details": {"reasoning_tokens": usage.reasoning * step / 3}},
                "request_id": "double"});
            format!("id:{step}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n")
        })
        .collect()
}

fn anthropic_stream() -> String {
    let usage = ANTHROPIC_USAGE.1;
    [
        format!("event: message_start\ndata: {}\n\n", json!({"type": "message_start", "message": {"id": "msg_d", "usage": {"input_tokens": 60, "cache_creation_input_tokens": 20, "cache_read_input_tokens": usage.cached, "output_tokens": 1}}})),
        format!("event: content_block_delta\ndata: {}\n\n", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}})),
        format!("event: message_delta\ndata: {}\n\n", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": usage.output}})),
        format!("event: message_stop\ndata: {}\n\n", json!({"type": "message_stop"})),
    ]
    .concat()
}

fn json_answer(path: &str) -> Value {
    if path.starts_with("/openai/") {
        let usage = OPENAI_USAGE.0;
        json!({"id": "chatcmpl-d", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage.input, "completion_tokens": usage.output, "total_tokens": usage.input + usage.output,
                "prompt_tokens_details": {"cached_tokens": usage.cached}, "completion_tokens_details": {"reasoning_tokens": usage.reasoning}}})
    } else if path.starts_with("/dashscope/") {
        let usage = NATIVE_USAGE.0;
        json!({"output": {"text": "hi", "finish_reason": "stop"}, "usage": {"input_tokens": usage.input, "output_tokens": usage.output, "prompt_tokens_details": {"cached_tokens": usage.cached}}, "request_id": "double"})
    } else {
        json!({"id": "msg_d", "type": "message", "content": [{"type": "text", "text": "hi"}],
            "usage": {"input_tokens": 30, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 10, "output_tokens": 9}})
    }
}

/// A provider on a loopback port that answers with known usage and records the bodies it
/// received.
struct UsageDouble {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Value>>>,
    _shutdown: oneshot::Sender<()>,
}

async fn double_answer(State(received): State<Arc<Mutex<Vec<Value>>>>, uri: Uri, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    received.lock().unwrap().push(request.clone());
    let path = uri.path();
    let streaming = request["stream"] == json!(true) || request.get("input").is_some() && request["parameters"]["stream"] == json!(true);
    if !streaming {
        return axum::Json(json_answer(path)).into_response();
    }
    let text = if path.starts_with("/openai/") {
        openai_stream(request.pointer("/stream_options/include_usage") == Some(&json!(true)))
    } else if path.starts_with("/dashscope/") {
        native_stream()
    } else {
        anthropic_stream()
    };
    // Sent in small pieces, so that events are split across chunks.
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> =
        text.into_bytes().chunks(37).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(futures_util::stream::iter(chunks))).into_response()
}

impl UsageDouble {
    async fn start() -> UsageDouble {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let router = Router::new().fallback(double_answer).with_state(received.clone());
        let (address, shutdown) = serve_upstream_double(router).await;
        UsageDouble { address, received, _shutdown: shutdown }
    }

    fn upstream(&self) -> UpstreamSettings {
        let base = format!("http://{}", self.address);
        UpstreamSettings {
            name: "usage-double".into(),
            openai_base_url: Some(format!("{base}/openai")),
            dashscope_base_url: Some(format!("{base}/dashscope")),
            anthropic_base_url: Some(format!("{base}/anthropic")),
            responses_base_url: None,
            api_key_env: None,
            models: vec![OPENAI_MODEL.into(), NATIVE_MODEL.into(), ANTHROPIC_MODEL.into()],
            apps: Vec::new(),
            ..UpstreamSettings::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    OpenAi,
    Native,
    Anthropic,
}

const PROTOCOLS: [Protocol; 3] = [Protocol::OpenAi, Protocol::Native, Protocol::Anthropic];

/// Sends one model call and returns (status, body bytes).
async fn call(
    http: &reqwest::Client,
    listener: SocketAddr,
    key: &str,
    protocol: Protocol,
    model: &str,
    stream: bool,
    extra: Value,
) -> (u16, Vec<u8>) {
    let (path, mut body) = match protocol {
        Protocol::OpenAi => (
            "/compatible-mode/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": "one two three"}], "stream": stream}),
        ),
        Protocol::Native => (
            "/api/v1/services/aigc/text-generation/generation",
            json!({"model": model, "input": {"prompt": "one two three"}, "parameters": {"stream": stream}}),
        ),
        Protocol::Anthropic => (
            "/apps/anthropic/v1/messages",
            json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "one two three"}], "stream": stream}),
        ),
    };
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let mut request = http.post(format!("http://{listener}{path}")).header("content-type", "application/json").body(body.to_string());
    request = match protocol {
        Protocol::Anthropic => request.header("x-api-key", key),
        _ => request.bearer_auth(key),
    };
    if protocol == Protocol::Native && stream {
        request = request.header("x-dashscope-sse", "enable");
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("a whole body").to_vec())
}

fn model_of(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::OpenAi => OPENAI_MODEL,
        Protocol::Native => NATIVE_MODEL,
        Protocol::Anthropic => ANTHROPIC_MODEL,
    }
}

fn expected_of(protocol: Protocol) -> (TokenUsage, TokenUsage) {
    match protocol {
        Protocol::OpenAi => OPENAI_USAGE,
        Protocol::Native => NATIVE_USAGE,
        Protocol::Anthropic => ANTHROPIC_USAGE,
    }
}

/// The stored usage of `key_id`, per model.
async fn stored_by_model(store: &Store, key_id: i64) -> Vec<(String, UsageTotals)> {
    let query = UsageQuery {
        keys: Selection::only(vec![key_id]),
        from: 0,
        until: i64::MAX,
        group_by: vec![UsageDimension::Model],
        ..UsageQuery::default()
    };
    store.query_usage(&query).await.unwrap().groups.into_iter().map(|group| (group.model.unwrap(), group.totals)).collect()
}

async fn flush(app: &TestApp) {
    app.state.shared.usage.flush(app.state.store()).await;
}

async fn app_on(backend: Backend, test: &str, adjust: impl FnOnce(&mut Settings) + Send + 'static) -> Option<TestApp> {
    match backend {
        Backend::Sqlite => Some(crate::helpers::spawn_app_with(adjust).await),
        Backend::Postgres => match PostgresSchema::create().await {
            Some(schema) => Some(spawn_node(&schema, "kg-node-a", adjust).await),
            None => {
                crate::helpers::announce_postgres_skip(test);
                None
            }
        },
    }
}

async fn upstream_usage_is_stored_exactly(backend: Backend) {
    let double = UsageDouble::start().await;
    let upstream = double.upstream();
    let Some(app) = app_on(backend, "upstream_usage_is_stored_exactly", move |settings| settings.upstreams = vec![upstream]).await else {
        return;
    };
    let (key_id, key) = app.login(None).await.create_all_key().await;
    for protocol in PROTOCOLS {
        for stream in [false, true] {
            let (status, body) = call(&app.http, app.address, &key, protocol, model_of(protocol), stream, json!({})).await;
            assert_eq!(status, 200, "{protocol:?} stream={stream}: {}", String::from_utf8_lossy(&body));
        }
    }
    flush(&app).await;
    let stored = stored_by_model(app.state.store(), key_id).await;
    for protocol in PROTOCOLS {
        let (plain, streamed) = expected_of(protocol);
        let mut tokens = plain;
        tokens.add(&streamed);
        let row = stored.iter().find(|(model, _)| model == model_of(protocol)).map(|(_, totals)| *totals);
        assert_eq!(row, Some(UsageTotals { requests: 2, tokens }), "{protocol:?}: {stored:?}");
    }
    // The key's own counter counts the same calls.
    let key_answer = app.login(None).await.get(&format!("/modelstudio/apikeys/{key_id}")).await;
    assert_eq!(key_answer.body["apiKey"]["requestCount"], json!(6), "{}", key_answer.body);
    // And /metrics counts tokens per model and protocol, with no key in its labels.
    let metrics = app.http.get(format!("http://{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!("keygate_model_calls_total{{model=\"{OPENAI_MODEL}\",protocol=\"openai\"}} 2")), "{metrics}");
    assert!(metrics.contains(&format!("keygate_model_tokens_total{{model=\"{NATIVE_MODEL}\",protocol=\"dashscope\",kind=\"input\"}} 93")));
    assert!(!metrics.contains("key_id="), "no per-key label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_usage_is_stored_exactly_on_sqlite() {
    upstream_usage_is_stored_exactly(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_usage_is_stored_exactly_on_postgres() {
    upstream_usage_is_stored_exactly(Backend::Postgres).await;
}

on_both_stores! {
    async fn demo_usage_is_derived_from_the_text(app: TestApp) {
        let (key_id, key) = app.login(None).await.create_all_key().await;
        for protocol in PROTOCOLS {
            for stream in [false, true] {
                let (status, body) = call(&app.http, app.address, &key, protocol, "demo-echo", stream, json!({})).await;
                assert_eq!(status, 200, "{protocol:?} stream={stream}: {}", String::from_utf8_lossy(&body));
            }
        }
        app.state.shared.usage.flush(app.state.store()).await;
        // "one two three" is 3 words in; "[keygate demo] echo: one two three" 6 words out.
        let stored = super::stored_by_model(app.state.store(), key_id).await;
        assert_eq!(stored, [("demo-echo".to_string(), UsageTotals { requests: 6, tokens: TokenUsage { input: 18, output: 36, cached: 0, reasoning: 0 } })]);
    }
}

/// The `data:` payloads of an SSE body.
fn data_lines(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}

#[tokio::test]
async fn the_demo_reports_stream_usage_only_when_asked() {
    let app = crate::helpers::spawn_app().await;
    let (_, key) = app.login(None).await.create_all_key().await;
    let (_, unasked) = call(&app.http, app.address, &key, Protocol::OpenAi, "demo-echo", true, json!({})).await;
    assert!(data_lines(&unasked).iter().all(|chunk| chunk.get("usage").is_none()), "{}", String::from_utf8_lossy(&unasked));
    let asked = json!({"stream_options": {"include_usage": true}});
    let (_, body) = call(&app.http, app.address, &key, Protocol::OpenAi, "demo-echo", true, asked).await;
    let usage: Vec<Value> = data_lines(&body).into_iter().filter_map(|chunk| chunk.get("usage").cloned()).collect();
    assert_eq!(usage, [json!({"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9})]);
}

#[tokio::test]
async fn a_streaming_client_gets_what_the_upstream_sent_minus_the_usage_chunk_it_did_not_ask_for() {
    let double = UsageDouble::start().await;
    let upstream = double.upstream();
    let app = crate::helpers::spawn_app_with(move |settings| settings.upstreams = vec![upstream]).await;
    let (key_id, key) = app.login(None).await.create_all_key().await;

    let (status, body) = call(&app.http, app.address, &key, Protocol::OpenAi, OPENAI_MODEL, true, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), openai_stream(false), "byte for byte, minus the usage chunk");
    let forwarded = double.received.lock().unwrap().last().cloned().unwrap();
    assert_eq!(forwarded["stream_options"], json!({"include_usage": true}), "keygate asked the upstream for usage");

    let asked = json!({"stream_options": {"include_usage": true}});
    let (_, body) = call(&app.http, app.address, &key, Protocol::OpenAi, OPENAI_MODEL, true, asked).await;
    assert_eq!(String::from_utf8(body).unwrap(), openai_stream(true), "a client that asked gets the chunk");

    // Both were counted with the usage the upstream reported.
    flush(&app).await;
    let mut tokens = OPENAI_USAGE.1;
    tokens.add(&OPENAI_USAGE.1);
    assert_eq!(stored_by_model(app.state.store(), key_id).await, [(OPENAI_MODEL.to_string(), UsageTotals { requests: 2, tokens })]);
}

/// A server on `settings` whose run can be awaited (graceful stop) or abandoned (crash).
struct RunningServer {
    state: AppState,
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    run: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_server(settings: Settings) -> RunningServer {
    let server = Server::bind(settings, Some(SecretString::from(ROOT_PASSWORD.to_string()))).await.expect("binds");
    let address = server.local_addresses()[0].0;
    let state = server.state().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    RunningServer { state, address, stop, run }
}

fn durable_settings(data_dir: &std::path::Path, database_url: Option<String>, master_key_file: Option<std::path::PathBuf>) -> Settings {
    let mut settings = Settings::with_data_dir(data_dir.to_path_buf());
    settings.listeners = vec![ListenerSettings::plain("127.0.0.1:0".parse().unwrap(), "ap-southeast-1")];
    settings.database_url = database_url;
    settings.master_key_file = master_key_file;
    // Only explicit flushes and the one at shutdown: the test decides when counts are written.
    settings.usage_flush_interval_milliseconds = 3_600_000;
    settings
}

async fn demo_calls(http: &reqwest::Client, address: SocketAddr, key: &str, count: usize) {
    for _ in 0..count {
        let (status, _) = call(http, address, key, Protocol::OpenAi, "demo-echo", false, json!({})).await;
        assert_eq!(status, 200);
    }
}

async fn stored_requests(settings: &Settings, key_id: i64) -> i64 {
    let store = match &settings.database_url {
        Some(url) => Store::open_postgres(url).await.unwrap(),
        None => Store::open_sqlite(&settings.data_dir).await.unwrap(),
    };
    stored_by_model(&store, key_id).await.iter().map(|(_, totals)| totals.requests).sum()
}

async fn counts_survive_a_restart_and_a_crash_loses_only_the_unflushed(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let schema = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match PostgresSchema::create().await {
            Some(schema) => Some(schema),
            None => return crate::helpers::announce_postgres_skip("counts_survive_a_restart"),
        },
    };
    let settings = durable_settings(
        data_dir.path(),
        schema.as_ref().map(|schema| schema.url_for_node("kg-node-a")),
        schema.as_ref().map(|schema| schema.master_key_file.clone()),
    );
    let http = reqwest::Client::new();

    // A graceful stop writes everything counted.
    let server = start_server(settings.clone()).await;
    let client = crate::helpers::login_client(&http, server.address, None).await;
    let (key_id, key) = client.create_all_key().await;
    demo_calls(&http, server.address, &key, 3).await;
    server.stop.send(()).unwrap();
    server.run.await.unwrap().unwrap();
    assert_eq!(stored_requests(&settings, key_id).await, 3);

    // A crash (the process gone without its shutdown) loses what was counted since the
    // last flush, and only that; nothing is counted twice after the restart.
    let crash_settings = settings.clone();
    let crash_key = key.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let server = start_server(crash_settings).await;
            let http = reqwest::Client::new();
            demo_calls(&http, server.address, &crash_key, 4).await;
            server.state.shared.usage.flush(server.state.store()).await;
            demo_calls(&http, server.address, &crash_key, 2).await;
            // Never stopped: the runtime is dropped with the server in it, like `kill -9`.
            std::mem::forget(server.stop);
        });
        drop(runtime);
    })
    .join()
    .unwrap();
    assert_eq!(stored_requests(&settings, key_id).await, 3 + 4, "the 2 calls after the last flush are lost, nothing else");

    let server = start_server(settings.clone()).await;
    demo_calls(&http, server.address, &key, 1).await;
    server.stop.send(()).unwrap();
    server.run.await.unwrap().unwrap();
    assert_eq!(stored_requests(&settings, key_id).await, 3 + 4 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_survive_a_restart_and_a_crash_loses_only_the_unflushed_on_sqlite() {
    counts_survive_a_restart_and_a_crash_loses_only_the_unflushed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_survive_a_restart_and_a_crash_loses_only_the_unflushed_on_postgres() {
    counts_survive_a_restart_and_a_crash_loses_only_the_unflushed(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_nodes_serving_one_key_add_up() {
    let Some(schema) = PostgresSchema::create().await else {
        return crate::helpers::announce_postgres_skip("two_postgres_nodes_serving_one_key_add_up");
    };
    let node_a = spawn_node(&schema, "kg-node-a", |_| {}).await;
    let node_b = spawn_node(&schema, "kg-node-b", |_| {}).await;
    let (key_id, key) = node_a.login(None).await.create_all_key().await;
    // Node B learns of the key from the change feed; its calls before that are refused.
    let mut served_by_b = 0;
    for _ in 0..100 {
        let (status, _) = call(&node_b.http, node_b.address, &key, Protocol::Anthropic, "demo-echo", false, json!({})).await;
        if status == 200 {
            served_by_b += 1;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(served_by_b, 1, "node B serves the key");
    for round in 0..10 {
        let stream = round % 2 == 0;
        for node in [&node_a, &node_b] {
            let (status, _) = call(&node.http, node.address, &key, Protocol::Anthropic, "demo-echo", stream, json!({})).await;
            assert_eq!(status, 200);
        }
    }
    // Both nodes write the same key, model and minute: the rows add up.
    flush(&node_a).await;
    flush(&node_b).await;
    let expected = UsageTotals { requests: 21, tokens: TokenUsage { input: 21 * 3, output: 21 * 6, cached: 0, reasoning: 0 } };
    assert_eq!(stored_by_model(node_a.state.store(), key_id).await, [("demo-echo".to_string(), expected)]);
}

#[tokio::test]
async fn each_model_call_logs_one_line_with_its_tokens_and_never_the_key() {
    crate::log_capture::install();
    let double = UsageDouble::start().await;
    let upstream = double.upstream();
    let app = crate::helpers::spawn_app_with(move |settings| settings.upstreams = vec![upstream]).await;
    let (key_id, key) = app.login(None).await.create_all_key().await;
    let response = app
        .http
        .post(format!("http://{}/compatible-mode/v1/chat/completions", app.address))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(json!({"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": true}).to_string())
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-acs-request-id"].to_str().unwrap().to_string();
    let _ = response.bytes().await.unwrap();
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = crate::log_capture::lines_containing(&format!("request_id={request_id} "))
            .into_iter()
            .filter(|line| line.contains("keygate::model_call"))
            .collect();
        if !lines.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(lines.len(), 1, "one line per call: {lines:?}");
    let line = &lines[0];
    let usage = OPENAI_USAGE.1;
    for field in [
        format!("key_id={key_id} "),
        format!("model={OPENAI_MODEL} "),
        "protocol=\"openai\"".to_string(),
        "status=200".to_string(),
        format!("input_tokens={} ", usage.input),
        format!("output_tokens={} ", usage.output),
        format!("cached_tokens={} ", usage.cached),
        format!("reasoning_tokens={} ", usage.reasoning),
        "upstream_latency_ms=".to_string(),
        "first_byte_ms=".to_string(),
    ] {
        assert!(line.contains(&field), "{field} missing from {line}");
    }
    assert!(!line.contains(&key), "the key is never logged");
}
