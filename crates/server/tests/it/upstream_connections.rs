//! The forwarding client's connections, seen from an upstream double that counts the
//! connections it accepts (crates/server/src/upstream_client.rs): calls one after the other
//! share one kept-open connection instead of opening one each, an answer of known length
//! keeps its `Content-Length`, a streamed answer reaches the client event by event while the
//! upstream is still writing it (and its connection is used again once it has ended), and
//! an answer that is not HTTP is a 502 in the protocol's shape.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Router;
use keygate_server::settings::UpstreamSettings;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::gateway_calls::{create_key, Reply};
use crate::helpers::{chat_completion, spawn_app_with, TestApp};

const MODEL: &str = "double-connections";

/// The double's state: what lets its streamed answer go on.
#[derive(Clone, Default)]
struct DoubleState {
    /// Notified by the test once it has read the stream's first event.
    go_on: Arc<Notify>,
}

/// A JSON chat completion (axum gives it its `Content-Length`), or a stream of two events
/// whose second waits for the test.
async fn answer(State(state): State<DoubleState>, body: Bytes) -> Response {
    let streamed = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|call| call["stream"].as_bool()).unwrap_or(false);
    if !streamed {
        return axum::Json(json!({
            "id": "chatcmpl-double", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "answered"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
        }))
        .into_response();
    }
    let event = |content: &str| {
        Bytes::from(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-double", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                   "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
        ))
    };
    let first = event("first");
    let second = event("second");
    let go_on = state.go_on.clone();
    let events = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<Bytes, Infallible>(first) }),
        futures_util::stream::once(async move {
            go_on.notified().await;
            Ok::<Bytes, Infallible>(Bytes::from([second, Bytes::from_static(b"data: [DONE]\n\n")].concat()))
        }),
    );
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(events)).into_response()
}

/// An upstream double served connection by connection with hyper, so that the connections
/// it accepts can be counted.
struct CountingDouble {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    state: DoubleState,
}

impl CountingDouble {
    async fn start() -> CountingDouble {
        let state = DoubleState::default();
        let router = Router::new().fallback(answer).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let router = router.clone();
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    tower::ServiceExt::oneshot(router.clone(), request)
                });
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service));
            }
        });
        CountingDouble { address, accepted, state }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn upstream_at(base: String) -> UpstreamSettings {
    UpstreamSettings {
        name: "counted".into(),
        openai_base_url: Some(format!("{base}/v1")),
        models: vec![MODEL.into()],
        ..UpstreamSettings::default()
    }
}

async fn chat(app: &TestApp, key: &str, stream: bool) -> reqwest::Response {
    chat_completion(app, key, MODEL, stream).await
}

#[tokio::test]
async fn calls_one_after_the_other_share_one_upstream_connection_and_keep_their_length() {
    let double = CountingDouble::start().await;
    let base = format!("http://{}", double.address);
    let app = spawn_app_with(move |settings| settings.upstreams = vec![upstream_at(base)]).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;

    for call in 0..30 {
        let response = chat(&app, &key, false).await;
        let length = response.headers().get(header::CONTENT_LENGTH).map(|value| value.to_str().unwrap().to_string());
        let reply = Reply::read(response).await;
        assert_eq!(reply.status, 200, "call {call}: {}", reply.text);
        assert_eq!(reply.body["choices"][0]["message"]["content"], "answered");
        // The upstream's length is kept: the client is not sent a chunked re-encoding.
        assert_eq!(length, Some(reply.text.len().to_string()), "call {call}");
    }
    // One connection kept open and used by every call (a client without a pool would have
    // opened 30).
    assert_eq!(double.accepted(), 1, "30 calls in a row opened {} upstream connections", double.accepted());
}

#[tokio::test]
async fn a_streamed_answer_reaches_the_client_while_the_upstream_is_still_writing_it() {
    let double = CountingDouble::start().await;
    let base = format!("http://{}", double.address);
    let app = spawn_app_with(move |settings| settings.upstreams = vec![upstream_at(base)]).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;

    let mut response = chat(&app, &key, true).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
    // The first event arrives before the upstream has been let go on to the second: the
    // answer is relayed as it comes, not when it is whole.
    let mut received = String::new();
    while !received.contains("first") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the first event is relayed before the upstream ends its answer")
            .expect("the stream reads")
            .expect("the stream has not ended before its first event");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!received.contains("second"), "{received}");
    double.state.go_on.notify_one();
    while let Some(chunk) =
        tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.expect("the stream ends").expect("the stream reads")
    {
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains("second") && received.contains("[DONE]"), "{received}");

    // The stream was read to its end: its connection is used again by the next call.
    let reply = Reply::read(chat(&app, &key, false).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(double.accepted(), 1);
}

#[tokio::test]
async fn an_upstream_answer_that_is_not_http_is_a_502_in_the_protocols_shape() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(b"this is not an HTTP answer\r\n\r\n").await;
            });
        }
    });
    let base = format!("http://{address}");
    let app = spawn_app_with(move |settings| settings.upstreams = vec![upstream_at(base)]).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let reply = Reply::read(chat(&app, &key, false).await).await;
    assert_eq!((reply.status, reply.body["error"]["code"].as_str()), (502, Some("upstream_error")), "{}", reply.text);
}

/// Calls made in turn over three client connections, twice round: how many upstream
/// connections they opened.
async fn upstream_connections_opened_by_three_clients(connection_runtimes: usize) -> usize {
    let double = CountingDouble::start().await;
    let base = format!("http://{}", double.address);
    let app = spawn_app_with(move |settings| {
        settings.upstreams = vec![upstream_at(base)];
        settings.connection_runtimes = Some(connection_runtimes);
    })
    .await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    // Each client keeps one connection to keygate; they are accepted one after the other,
    // so with three runtimes each lands on a runtime of its own.
    let clients: Vec<reqwest::Client> = (0..3).map(|_| reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap()).collect();
    let url = format!("http://{}/compatible-mode/v1/chat/completions", app.address);
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    for round in 0..2 {
        for (number, client) in clients.iter().enumerate() {
            let response = client.post(&url).bearer_auth(&key).json(&body).send().await.unwrap();
            let reply = Reply::read(response).await;
            assert_eq!(reply.status, 200, "round {round}, client {number}: {}", reply.text);
        }
    }
    double.accepted()
}

#[tokio::test]
async fn each_connection_runtime_keeps_its_own_upstream_connections() {
    // Three runtimes: a call's upstream connection is taken from its own runtime's shard of
    // the pool (one per runtime, each used again on the second round), so that a call's
    // client and upstream sockets are on one thread.
    assert_eq!(upstream_connections_opened_by_three_clients(3).await, 3);
    // Connections on the main runtime share one shard: calls in turn share one connection.
    assert_eq!(upstream_connections_opened_by_three_clients(0).await, 1);
}
