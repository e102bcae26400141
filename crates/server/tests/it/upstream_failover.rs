//! Upstreams that behave like a production gateway's (docs/CONTRACT.md#upstreams), against
//! doubles that refuse connections, answer 5xx, never answer, or go quiet mid-stream: a
//! model served by several upstreams fails over in order of priority before anything has
//! reached the client, a stream that has started is never sent elsewhere and is cut when
//! its upstream goes quiet, the last upstream's 5xx is relayed as it is, an upstream's keys
//! are used in turn, weights share the calls, and a model claimed twice without a priority
//! is warned about at start.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use keygate_server::settings::UpstreamSettings;
use serde_json::json;
use tokio::sync::oneshot;

use crate::gateway_calls::{closed_loopback_port, create_key, Reply};
use crate::helpers::{chat_completion, serve_upstream_double, spawn_app_with, TestApp};
use crate::log_capture;

const MODEL: &str = "double-failover";

/// How a double behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// A chat completion with usage.
    Answers,
    /// 500 with a JSON error.
    FailsWith500,
    /// 503 with a JSON error (the one a test expects relayed).
    FailsWith503,
    /// Takes the request and never answers.
    Hangs,
    /// Sends the head and one event of a stream, then nothing.
    GoesQuietMidStream,
}

#[derive(Clone)]
struct DoubleState {
    behaviour: Behaviour,
    /// The `Authorization` header of every request received.
    credentials: Arc<Mutex<Vec<String>>>,
}

struct Double {
    address: SocketAddr,
    state: DoubleState,
    _shutdown: oneshot::Sender<()>,
}

impl Double {
    async fn start(behaviour: Behaviour) -> Double {
        let state = DoubleState { behaviour, credentials: Arc::default() };
        let router = Router::new().fallback(answer).with_state(state.clone());
        let (address, shutdown) = serve_upstream_double(router).await;
        Double { address, state, _shutdown: shutdown }
    }

    fn calls(&self) -> usize {
        self.state.credentials.lock().unwrap().len()
    }

    fn credentials(&self) -> Vec<String> {
        self.state.credentials.lock().unwrap().clone()
    }
}

async fn answer(State(state): State<DoubleState>, headers: HeaderMap) -> Response {
    let credential = headers.get("authorization").and_then(|value| value.to_str().ok()).unwrap_or("").to_string();
    state.credentials.lock().unwrap().push(credential);
    match state.behaviour {
        Behaviour::Answers => axum::Json(json!({
            "id": "chatcmpl-double", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "answered"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
        }))
        .into_response(),
        Behaviour::FailsWith500 => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"error": {"message": "boom"}}))).into_response(),
        Behaviour::FailsWith503 => {
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"error": {"message": "the provider is overloaded"}}))).into_response()
        }
        Behaviour::Hangs => std::future::pending().await,
        Behaviour::GoesQuietMidStream => {
            let first = futures_util::stream::once(async { Ok::<Bytes, Infallible>(Bytes::from("data: {\"choices\":[]}\n\n")) });
            let events = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(events)).into_response()
        }
    }
}

/// An upstream of [`MODEL`] at `base` (a double, or a closed port) with `adjust` applied.
fn upstream(name: &str, base: &str, adjust: impl FnOnce(&mut UpstreamSettings)) -> UpstreamSettings {
    let mut settings = UpstreamSettings {
        name: name.into(),
        openai_base_url: Some(format!("{base}/v1")),
        models: vec![MODEL.into()],
        ..UpstreamSettings::default()
    };
    adjust(&mut settings);
    settings
}

fn base_of(double: &Double) -> String {
    format!("http://{}", double.address)
}

async fn app_with(upstreams: Vec<UpstreamSettings>) -> TestApp {
    spawn_app_with(move |settings| settings.upstreams = upstreams).await
}

async fn chat(app: &TestApp, key: &str, stream: bool) -> reqwest::Response {
    chat_completion(app, key, MODEL, stream).await
}

#[tokio::test]
async fn a_call_fails_over_in_order_of_priority_past_a_refused_connection_and_a_5xx() {
    log_capture::install();
    let (failing, answering) = (Double::start(Behaviour::FailsWith500).await, Double::start(Behaviour::Answers).await);
    let refused = format!("http://127.0.0.1:{}", closed_loopback_port());
    let app = app_with(vec![
        // Written last-first: the order of priority decides, not the order of the settings.
        upstream("answering", &base_of(&answering), |settings| settings.priority = Some(2)),
        upstream("failing", &base_of(&failing), |settings| settings.priority = Some(1)),
        upstream("refused", &refused, |settings| settings.priority = Some(0)),
    ])
    .await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;

    let reply = Reply::read(chat(&app, &key, false).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["choices"][0]["message"]["content"], "answered");
    assert_eq!((failing.calls(), answering.calls()), (1, 1));
    // Each failure is logged with the request id and its cause.
    let request_id = reply.header("x-acs-request-id").expect("a request id").to_string();
    let logged = log_capture::lines_containing(&request_id);
    assert!(logged.iter().any(|line| line.contains("upstream=refused") && line.contains("unreachable")), "{logged:#?}");
    assert!(logged.iter().any(|line| line.contains("upstream=failing") && line.contains("status=500")), "{logged:#?}");
}

#[tokio::test]
async fn an_upstream_that_never_answers_is_passed_over_after_its_first_byte_timeout() {
    let (hanging, answering) = (Double::start(Behaviour::Hangs).await, Double::start(Behaviour::Answers).await);
    let app = app_with(vec![
        upstream("hanging", &base_of(&hanging), |settings| {
            settings.priority = Some(0);
            settings.first_byte_timeout_seconds = Some(1);
        }),
        upstream("answering", &base_of(&answering), |settings| settings.priority = Some(1)),
    ])
    .await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let reply = Reply::read(chat(&app, &key, false).await).await;
    assert_eq!((reply.status, hanging.calls(), answering.calls()), (200, 1, 1), "{}", reply.text);
}

#[tokio::test]
async fn a_started_stream_is_never_retried_and_is_cut_when_its_upstream_goes_quiet() {
    let (quiet, answering) = (Double::start(Behaviour::GoesQuietMidStream).await, Double::start(Behaviour::Answers).await);
    let app = app_with(vec![
        upstream("quiet", &base_of(&quiet), |settings| {
            settings.priority = Some(0);
            settings.idle_timeout_seconds = Some(1);
        }),
        upstream("answering", &base_of(&answering), |settings| settings.priority = Some(1)),
    ])
    .await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let response = chat(&app, &key, true).await;
    assert_eq!(response.status(), 200);
    // The first event arrives, then the body ends in an error instead of hanging.
    let read = response.bytes().await;
    assert!(read.is_err(), "the cut stream must end in an error, got {read:?}");
    assert_eq!((quiet.calls(), answering.calls()), (1, 0), "a started stream went to another upstream");
}

#[tokio::test]
async fn the_last_upstreams_5xx_is_relayed_as_it_is_and_nothing_answering_is_a_502() {
    let overloaded = Double::start(Behaviour::FailsWith503).await;
    let app = app_with(vec![upstream("overloaded", &base_of(&overloaded), |_| {})]).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let reply = Reply::read(chat(&app, &key, false).await).await;
    assert_eq!((reply.status, reply.body["error"]["message"].as_str()), (503, Some("the provider is overloaded")));

    let refused = format!("http://127.0.0.1:{}", closed_loopback_port());
    let app = app_with(vec![upstream("refused", &refused, |_| {})]).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let reply = Reply::read(chat(&app, &key, false).await).await;
    assert_eq!((reply.status, reply.body["error"]["code"].as_str()), (502, Some("upstream_error")), "{}", reply.text);
}

#[tokio::test]
async fn an_upstreams_keys_are_used_in_turn() {
    let (first, second) = ("KEYGATE_IT_FAILOVER_KEY_ONE", "KEYGATE_IT_FAILOVER_KEY_TWO");
    std::env::set_var(first, "provider-key-one");
    std::env::set_var(second, "provider-key-two");
    let double = Double::start(Behaviour::Answers).await;
    let app = app_with(vec![upstream("two-keys", &base_of(&double), |settings| {
        settings.api_key_env = Some(first.into());
        settings.api_key_envs = vec![second.into()];
    })])
    .await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    for _ in 0..4 {
        assert_eq!(chat(&app, &key, false).await.status(), 200);
    }
    let used = double.credentials();
    assert_eq!(used.len(), 4);
    for pair in used.chunks(2) {
        let mut pair = pair.to_vec();
        pair.sort();
        assert_eq!(pair, ["Bearer provider-key-one", "Bearer provider-key-two"], "{used:?}");
    }
}

#[tokio::test]
async fn upstreams_of_one_priority_share_the_calls_by_weight() {
    let (heavy, light) = (Double::start(Behaviour::Answers).await, Double::start(Behaviour::Answers).await);
    let app = app_with(vec![
        upstream("heavy", &base_of(&heavy), |settings| {
            settings.priority = Some(0);
            settings.weight = Some(3);
        }),
        upstream("light", &base_of(&light), |settings| {
            settings.priority = Some(0);
            settings.weight = Some(1);
        }),
    ])
    .await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    for _ in 0..40 {
        assert_eq!(chat(&app, &key, false).await.status(), 200);
    }
    // Both are used, the heavier more (the chance of either failing by luck is below 1e-4).
    assert_eq!(heavy.calls() + light.calls(), 40);
    assert!(light.calls() >= 1 && heavy.calls() > light.calls(), "heavy {} light {}", heavy.calls(), light.calls());
}

#[tokio::test]
async fn a_model_claimed_twice_without_a_priority_is_warned_about_at_start() {
    log_capture::install();
    let model = format!("double-claimed-{}", std::process::id());
    let claimed = |name: &str| UpstreamSettings {
        name: name.into(),
        openai_base_url: Some("http://127.0.0.1:9/v1".into()),
        models: vec![model.clone()],
        ..UpstreamSettings::default()
    };
    let (first, second) = (claimed("claiming-one"), claimed("claiming-two"));
    let _app = app_with(vec![first, second]).await;
    let warned = log_capture::lines_containing(&model);
    assert!(
        warned.iter().any(|line| line.contains("WARN") && line.contains("claiming-one, claiming-two") && line.contains("priority")),
        "{warned:#?}"
    );
}
