//! `/metrics`: gateway outcomes, verification latency and the registry's size are exported
//! in the Prometheus text format, and move when calls are made.

use serde_json::json;

use crate::helpers::spawn_app;

fn value_of(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no series {series} in:\n{metrics}"))
}

#[tokio::test]
async fn gateway_calls_show_up_in_the_metrics() {
    let app = spawn_app().await;
    let (_, plaintext) = app.login(None).await.create_all_key().await;
    let chat = json!({"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("http://{}/compatible-mode/v1/chat/completions", app.address);
    for key in [plaintext.as_str(), plaintext.as_str(), "sk-ws-not-a-key"] {
        app.http.post(&url).bearer_auth(key).json(&chat).send().await.unwrap();
    }
    let response = app.http.get(format!("http://{}/metrics", app.address)).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let metrics = response.text().await.unwrap();
    assert_eq!(value_of(&metrics, "keygate_gateway_requests_total{outcome=\"ok\"}"), 2.0);
    assert_eq!(value_of(&metrics, "keygate_gateway_requests_total{outcome=\"InvalidApiKey\"}"), 1.0);
    assert_eq!(value_of(&metrics, "keygate_verification_seconds_count"), 3.0);
    assert_eq!(value_of(&metrics, "keygate_registry_live_keys"), 1.0);
    assert!(value_of(&metrics, "keygate_change_feed_applied_version") >= 1.0);
    // The metrics carry no key material.
    assert!(!metrics.contains(&plaintext));
}
