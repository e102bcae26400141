//! Who may read `/metrics`. On an ordinary listener, which may face the internet: with a
//! `metrics_token`, only a caller that sends it as a bearer token; without one, only a
//! client on this machine that no proxy relays. The loopback exemption belongs to the
//! socket peer alone: a forwarding header (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`)
//! takes it away whatever address it names, even from a trusted proxy, because a proxy on
//! the same machine relays clients from anywhere; and an IPv4 client of a dual-stack
//! listener (`::ffff:127.0.0.1`) is loopback. With `metrics_listen`, the metrics are served
//! there and an ordinary listener answers `/metrics` like any unknown path.
//!
//! A peer that is not loopback cannot connect here (tests send traffic to loopback only),
//! so those cases call the listener's router in process with the peer address set, as
//! the listener does for every connection.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use keygate_server::AppState;
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::spawn_app_with;
use crate::log_capture;
use crate::refusal_envelopes::{assert_logged, check_envelope, raw_request, Envelope, RawAnswer};

const TOKEN: &str = "metrics-token-for-tests-0123456789";
/// Addresses of the documentation ranges: never reached, only named as peers.
const REMOTE_PEER: &str = "203.0.113.7:40000";
const REMOTE_PROXY: &str = "192.0.2.10:40000";

/// `GET /metrics` through the listener's router, as if from `peer`, with `headers`.
async fn metrics_from(state: &AppState, peer: &str, headers: &[(&str, &str)]) -> RawAnswer {
    let peer: SocketAddr = peer.parse().expect("a socket address");
    let mut request = axum::http::Request::builder().method("GET").uri("/metrics").extension(ConnectInfo(peer));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = keygate_server::router(state.clone()).oneshot(request.body(Body::empty()).unwrap()).await.expect("infallible");
    let status = response.status().as_u16();
    let headers =
        response.headers().iter().map(|(name, value)| (name.as_str().to_string(), value.to_str().unwrap_or("").to_string())).collect();
    let body = response.into_body().collect().await.expect("a body").to_bytes();
    RawAnswer { status, headers, body: String::from_utf8_lossy(&body).to_string() }
}

fn assert_metrics(context: &str, answer: &RawAnswer) {
    assert_eq!(answer.status, 200, "{context}: {answer:?}");
    assert!(answer.body.contains("keygate_gateway_requests_total"), "{context}: {}", answer.body);
}

/// A management-envelope refusal with `status` and `code`, with its request id logged.
async fn assert_refused(context: &str, answer: &RawAnswer, status: u16, code: &str) {
    let request_id = check_envelope(context, answer, Envelope::ModelStudio, status, code);
    assert!(!answer.body.contains("keygate_"), "{context}: metrics in a refusal: {}", answer.body);
    assert_logged(context, &request_id, status).await;
}

#[tokio::test]
async fn without_a_token_only_an_unforwarded_loopback_peer_reads_the_metrics() {
    log_capture::install();
    let app = spawn_app_with(|settings| settings.trusted_proxies = vec!["127.0.0.0/8".into(), "192.0.2.0/24".into()]).await;
    let state = &app.state;

    // Over a real connection from loopback: served.
    assert_metrics("loopback peer", &raw_request(app.address, "GET", "/metrics", &[], b"").await);
    // An IPv4 client of a dual-stack listener is loopback too.
    assert_metrics("IPv4-mapped loopback peer", &metrics_from(state, "[::ffff:127.0.0.1]:40000", &[]).await);
    assert_metrics("IPv6 loopback peer", &metrics_from(state, "[::1]:40000", &[]).await);

    let forbidden = [
        ("a remote peer", REMOTE_PEER, vec![]),
        ("a remote peer naming loopback", REMOTE_PEER, vec![("X-Forwarded-For", "127.0.0.1")]),
        ("a remote trusted proxy relaying loopback", REMOTE_PROXY, vec![("X-Forwarded-For", "127.0.0.1")]),
        ("a local trusted proxy relaying a remote client", "127.0.0.1:40000", vec![("X-Forwarded-For", "203.0.113.7")]),
        ("a local trusted proxy relaying loopback", "127.0.0.1:40000", vec![("X-Forwarded-For", "127.0.0.1")]),
        ("a local proxy with Forwarded", "127.0.0.1:40000", vec![("Forwarded", "for=203.0.113.7")]),
        ("a local proxy with X-Real-IP", "127.0.0.1:40000", vec![("X-Real-IP", "203.0.113.7")]),
        ("a remote IPv4-mapped peer", "[::ffff:203.0.113.7]:40000", vec![]),
    ];
    for (context, peer, headers) in forbidden {
        assert_refused(context, &metrics_from(state, peer, &headers).await, 403, "Forbidden").await;
    }
    // A forwarded request over a real connection from loopback, as through nginx on the
    // same machine: refused.
    let answer = raw_request(app.address, "GET", "/metrics", &[("X-Forwarded-For", "203.0.113.7")], b"").await;
    assert_refused("through a local proxy", &answer, 403, "Forbidden").await;
}

#[tokio::test]
async fn with_a_token_every_caller_needs_it_and_it_is_enough() {
    log_capture::install();
    let app = spawn_app_with(|settings| settings.metrics_token = Some(TOKEN.to_string().into())).await;
    let state = &app.state;
    let bearer = format!("Bearer {TOKEN}");
    assert_metrics("a remote peer with the token", &metrics_from(state, REMOTE_PEER, &[("Authorization", &bearer)]).await);
    assert_metrics(
        "a proxied caller with the token",
        &metrics_from(state, REMOTE_PROXY, &[("Authorization", &bearer), ("X-Forwarded-For", "198.51.100.1")]).await,
    );
    assert_metrics("loopback with the token", &raw_request(app.address, "GET", "/metrics", &[("Authorization", &bearer)], b"").await);
    let refused = [
        ("a remote peer without the token", REMOTE_PEER, None),
        ("a remote peer with another token", REMOTE_PEER, Some("Bearer not-the-token")),
        ("a remote peer with the token but not as a bearer", REMOTE_PEER, Some(TOKEN)),
        ("an IPv4-mapped loopback peer without the token", "[::ffff:127.0.0.1]:40000", None),
    ];
    for (context, peer, authorization) in refused {
        let headers: Vec<(&str, &str)> = authorization.map(|value| ("Authorization", value)).into_iter().collect();
        let answer = metrics_from(state, peer, &headers).await;
        assert_refused(context, &answer, 401, "InvalidMetricsToken").await;
        assert!(!answer.body.contains(TOKEN), "{context}: {}", answer.body);
    }
    // Loopback is not exempt once a token is set.
    let answer = raw_request(app.address, "GET", "/metrics", &[], b"").await;
    assert_refused("loopback without the token", &answer, 401, "InvalidMetricsToken").await;
}

#[tokio::test]
async fn a_metrics_listener_serves_the_metrics_and_ordinary_listeners_then_do_not() {
    log_capture::install();
    let app = spawn_app_with(|settings| {
        settings.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        settings.metrics_token = Some(TOKEN.to_string().into());
    })
    .await;
    let metrics_address = app.metrics_address.expect("the metrics listener is bound");
    assert_metrics("the metrics listener", &raw_request(metrics_address, "GET", "/metrics", &[], b"").await);

    // The ordinary listener: a 404 like any unknown path, with or without the token.
    let bearer = format!("Bearer {TOKEN}");
    for (context, headers) in [("public listener", vec![]), ("public listener with the token", vec![("Authorization", bearer.as_str())])] {
        let answer = raw_request(app.address, "GET", "/metrics", &headers, b"").await;
        assert_refused(context, &answer, 404, "NotFound").await;
    }
    assert_refused("public listener, remote peer", &metrics_from(&app.state, REMOTE_PEER, &[]).await, 404, "NotFound").await;

    // The metrics listener's own refusals carry a request id.
    let answer = raw_request(metrics_address, "GET", "/keygate/v1/openapi.json", &[], b"").await;
    assert_refused("metrics listener, another path", &answer, 404, "NotFound").await;
    let body: Value = answer.json();
    assert_eq!(body["message"], "Only /metrics is served on this listener.");
}
