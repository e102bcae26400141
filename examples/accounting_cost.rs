//! What token accounting costs the gateway (docs/PERFORMANCE.md, "Token accounting"):
//! the same calls through two in-process gateways, one with accounting on and one with it
//! off, interleaved in rounds, and the wall time per round of each; plus one flush of
//! 10,000 distinct key-model-minute rows and the statements it took.
//!
//! Each round makes, per iteration, one demo call (OpenAI-compatible, not streamed), one
//! forwarded JSON call and one forwarded streaming call (the client does not ask for usage,
//! so keygate asks for it and removes the chunk) to an upstream double on its own thread,
//! then flushes. The router is called directly (no TCP between client and gateway), so the
//! gateway's own work is a larger share than over HTTP: the comparison is conservative.
//!
//! `cargo run --release -p keygate --example accounting_cost -- both [ITERATIONS] [ROUNDS]`;
//! `on`/`off` run one gateway only (for `valgrind --tool=callgrind --toggle-collect='*run_calls*'`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use keygate_core::usage::TokenUsage;
use keygate_server::settings::{ListenerSettings, Settings, UpstreamSettings};
use keygate_server::usage::CallUsage;
use keygate_server::AppState;
use secrecy::SecretString;
use serde_json::{json, Value};
use tower::ServiceExt;

const MODEL: &str = "bench-model";

fn openai_stream(with_usage: bool) -> String {
    let mut text = String::new();
    for piece in ["Hello ", "from ", "the ", "benchmark ", "upstream."] {
        text.push_str(&format!("data: {}\n\n", json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]})));
    }
    if with_usage {
        text.push_str(&format!("data: {}\n\n", json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}})));
    }
    text.push_str("data: [DONE]\n\n");
    text
}

async fn upstream_answer(body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if request["stream"] == json!(true) {
        let text = openai_stream(request.pointer("/stream_options/include_usage") == Some(&json!(true)));
        return ([(axum::http::header::CONTENT_TYPE, "text/event-stream")], text).into_response();
    }
    axum::Json(json!({"id": "c", "object": "chat.completion", "model": MODEL, "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the benchmark upstream."}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}})).into_response()
}

/// The upstream double on a thread and runtime of its own (not part of what is measured).
fn start_upstream() -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, Router::new().fallback(upstream_answer)).await.unwrap();
        });
    });
    receiver.recv().unwrap()
}

struct Gateway {
    state: AppState,
    router: Router,
    key: String,
    _data_dir: tempfile::TempDir,
}

async fn call(router: &Router, method: &str, path: &str, headers: &[(&str, &str)], body: String) -> (u16, Bytes) {
    let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

async fn gateway(upstream: SocketAddr, accounting: bool) -> Gateway {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::with_data_dir(data_dir.path().to_path_buf());
    settings.listeners = vec![ListenerSettings::plain("127.0.0.1:0".parse().unwrap(), "ap-southeast-1")];
    settings.token_accounting = accounting;
    settings.upstreams = vec![UpstreamSettings {
        name: "bench".into(),
        openai_base_url: Some(format!("http://{upstream}/v1")),
        dashscope_base_url: None,
        anthropic_base_url: None,
        responses_base_url: None,
        api_key_env: None,
        models: vec![MODEL.into()],
        apps: Vec::new(),
        ..UpstreamSettings::default()
    }];
    let password = "bench-password-0123456789";
    let bootstrapped = keygate_server::bootstrap::bootstrap(settings, Some(SecretString::from(password.to_string()))).await.unwrap();
    let state = bootstrapped.state;
    let router = keygate_server::router(state.clone());
    let (_, login) = call(&router, "POST", "/keygate/v1/sessions", &[], json!({"account": "root", "password": password}).to_string()).await;
    let login: Value = serde_json::from_slice(&login).unwrap();
    let token = login["token"].as_str().expect("logged in").to_string();
    let (status, created) = call(
        &router,
        "POST",
        "/modelstudio/apikeys",
        &[("x-acs-bearer-token", &token), ("content-type", "application/x-www-form-urlencoded")],
        String::new(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&created));
    let created: Value = serde_json::from_slice(&created).unwrap();
    let key = created["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
    Gateway { state, router, key, _data_dir: data_dir }
}

/// The measured work: `iterations` times a demo call, a forwarded JSON call and a
/// forwarded stream, then one flush.
#[inline(never)]
async fn run_calls(gateway: &Gateway, iterations: usize) {
    let bearer = format!("Bearer {}", gateway.key);
    let headers = [("authorization", bearer.as_str())];
    let path = "/compatible-mode/v1/chat/completions";
    for _ in 0..iterations {
        for (model, stream) in [("demo-echo", false), (MODEL, false), (MODEL, true)] {
            let body = json!({"model": model, "messages": [{"role": "user", "content": "Hello there"}], "stream": stream}).to_string();
            let (status, _) = call(&gateway.router, "POST", path, &headers, body).await;
            assert_eq!(status, 200);
        }
    }
    gateway.state.shared.usage.flush(gateway.state.store()).await;
}

async fn flush_ten_thousand_rows(gateway: &Gateway) {
    for index in 0..10_000_i64 {
        let call = CallUsage {
            key_id: 1_000_000 + index / 10,
            account_id: 1,
            workspace_id: "ws",
            model: ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"][usize::try_from(index % 10).unwrap()],
            at_milliseconds: 1_785_542_400_000,
            tokens: TokenUsage { input: 10, output: 5, cached: 0, reasoning: 0 },
        };
        gateway.state.shared.usage.record_call(&call);
    }
    let before = gateway.state.store().statements_run();
    let started = Instant::now();
    gateway.state.shared.usage.flush(gateway.state.store()).await;
    println!(
        "flush of 10000 key-model-minute rows (and 1000 keys): {} statements, {:.1} ms",
        gateway.state.store().statements_run() - before,
        started.elapsed().as_secs_f64() * 1000.0
    );
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let mut arguments = std::env::args().skip(1);
    let mode = arguments.next().unwrap_or_else(|| "both".into());
    let iterations: usize = arguments.next().and_then(|text| text.parse().ok()).unwrap_or(300);
    let rounds: usize = arguments.next().and_then(|text| text.parse().ok()).unwrap_or(7);
    let upstream = start_upstream();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        match mode.as_str() {
            "on" | "off" => {
                let gateway = gateway(upstream, mode == "on").await;
                run_calls(&gateway, 10).await;
                run_calls(&gateway, iterations).await;
            }
            _ => {
                let on = gateway(upstream, true).await;
                let off = gateway(upstream, false).await;
                run_calls(&on, 20).await;
                run_calls(&off, 20).await;
                let (mut times_on, mut times_off) = (Vec::new(), Vec::new());
                for round in 0..rounds {
                    for (gateway, times) in if round % 2 == 0 {
                        [(&on, &mut times_on), (&off, &mut times_off)]
                    } else {
                        [(&off, &mut times_off), (&on, &mut times_on)]
                    } {
                        let started = Instant::now();
                        run_calls(gateway, iterations).await;
                        times.push(started.elapsed());
                    }
                }
                let calls = (iterations * 3) as f64;
                let (on_median, off_median) = (median(&mut times_on), median(&mut times_off));
                println!("calls per round: {calls} (demo, forwarded JSON, forwarded stream), {rounds} rounds");
                println!("accounting on:  median {:.1} us per call", on_median.as_secs_f64() * 1e6 / calls);
                println!("accounting off: median {:.1} us per call", off_median.as_secs_f64() * 1e6 / calls);
                println!("throughput with accounting / without: {:.3}", off_median.as_secs_f64() / on_median.as_secs_f64());
                flush_ten_thousand_rows(&on).await;
            }
        }
    });
}
