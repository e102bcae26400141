//! Connections served on runtimes of their own (`connection_runtimes`,
//! crates/server/src/connection_runtimes.rs): a call in flight there when the server is
//! asked to stop is answered before `run` returns, and the server takes no new connection
//! meanwhile.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use keygate_server::settings::{ListenerSettings, Settings, UpstreamSettings};
use serde_json::json;
use tokio::sync::Notify;

use crate::gateway_calls::create_key;
use crate::helpers::{login_client, serve_upstream_double, ROOT_PASSWORD};

const MODEL: &str = "double-slow";

#[tokio::test]
async fn a_call_in_flight_on_a_connection_runtime_is_answered_before_the_server_stops() {
    // The upstream double tells the test when the call has reached it, then answers a
    // little later.
    let reached = Arc::new(Notify::new());
    let reached_in_double = reached.clone();
    let double = Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let reached = reached_in_double.clone();
            async move {
                reached.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                axum::Json(json!({
                    "id": "chatcmpl-slow", "object": "chat.completion", "created": 0, "model": MODEL,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "late but whole"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
                }))
            }
        }),
    );
    let (upstream, _upstream_stop) = serve_upstream_double(double).await;

    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::with_data_dir(data_dir.path().to_path_buf());
    settings.listeners = vec![ListenerSettings::plain("127.0.0.1:0".parse().unwrap(), "ap-southeast-1")];
    settings.connection_runtimes = Some(2);
    settings.upstreams = vec![UpstreamSettings {
        name: "slow".into(),
        openai_base_url: Some(format!("http://{upstream}/v1")),
        models: vec![MODEL.into()],
        ..UpstreamSettings::default()
    }];
    let password = secrecy::SecretString::from(ROOT_PASSWORD.to_string());
    let server = keygate_server::Server::bind(settings, Some(password)).await.unwrap();
    let address = server.local_addresses()[0].0;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let (_, key) = create_key(&login_client(&http, address, None).await, "", "").await;
    let call = tokio::spawn({
        let http = http.clone();
        async move {
            let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
            let response =
                http.post(format!("http://{address}/compatible-mode/v1/chat/completions")).bearer_auth(key).json(&body).send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        }
    });
    tokio::time::timeout(Duration::from_secs(10), reached.notified()).await.expect("the call reaches the upstream");
    stop.send(()).unwrap();

    let (status, text) = call.await.unwrap().expect("the call in flight is answered, not cut off");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("late but whole"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the server stops once its connections are done")
        .unwrap()
        .expect("run ends without an error");
    // Stopped: the port takes no more connections.
    assert!(tokio::net::TcpStream::connect(address).await.is_err(), "the listener is closed after run returns");
}
