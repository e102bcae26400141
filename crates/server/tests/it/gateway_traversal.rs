//! Forwarding cannot leave its route: every spelling of a dot segment, an encoded slash or
//! backslash, an encoded dot or a NUL, through the three protocols, is refused before any
//! upstream is contacted, and a query string is encoded again from its pairs. The requests
//! go out on raw sockets, because an HTTP client library would normalise the very paths
//! under test. The upstream double records every request it receives; it must receive
//! none of these.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gateway_calls::create_key;
use crate::gateway_forwarding::{forwarding_app, UpstreamDouble, DOUBLE_MODEL};

/// Sends `request` (a whole HTTP/1.1 request) on a new connection and returns the status
/// and the body of the answer (the connection is closed by the request itself).
pub async fn raw_exchange(address: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connects");
    stream.write_all(request).await.expect("request written");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await.expect("an answer in time").expect("readable");
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

/// A model call to `target` (sent verbatim as the request target) with `key`.
fn model_call(target: &str, protocol_header: (&str, String)) -> Vec<u8> {
    let body =
        format!(r#"{{"model":"{DOUBLE_MODEL}","messages":[{{"role":"user","content":"hi"}}],"input":{{"prompt":"hi"}},"max_tokens":8}}"#);
    format!(
        "POST {target} HTTP/1.1\r\nHost: keygate.test\r\n{}: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        protocol_header.0,
        protocol_header.1,
        body.len()
    )
    .into_bytes()
}

/// Ways out of a route after its prefix: each is appended to the three protocols'
/// prefixes below.
const TRAVERSALS: [&str; 24] = [
    "/../fine-tunes",
    "/../../admin",
    "/%2e%2e/fine-tunes",
    "/%2E%2E/fine-tunes",
    "/.%2e/fine-tunes",
    "/%2e./fine-tunes",
    "/%2e%2e/%2e%2e/%2e%2e/compatible-mode/v1/batches",
    "/aigc%2f..%2f..%2ffine-tunes",
    "/aigc%2F..%2Ffine-tunes",
    "/..%5cfine-tunes",
    "/..\\fine-tunes",
    "/%252e%252e/fine-tunes",
    "/aigc/%00/generation",
    "/./aigc/text-generation/generation",
    "/aigc//..//fine-tunes",
    "/..;/fine-tunes",
    "/.../fine-tunes",
    "/%u002e%u002e/fine-tunes",
    "/%c0%ae%c0%ae/fine-tunes",
    "/aigc/text-generation/generation/..",
    "/aigc/text-generation/generation/%2e%2e",
    "/%2e%2e%2ffine-tunes",
    "/..%00/fine-tunes",
    "/aigc%5c..%5c..%5cfine-tunes",
];

#[tokio::test]
async fn no_spelling_of_a_way_out_of_the_route_reaches_the_upstream() {
    let double = UpstreamDouble::start().await;
    let (app, _) = forwarding_app("traversal", &double, None).await;
    let root = app.login(None).await;
    let scoped =
        format!("auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1={DOUBLE_MODEL}");
    let (_, key) = create_key(&root, "", &scoped).await;
    let bearer = ("Authorization", format!("Bearer {key}"));
    let anthropic = ("x-api-key", key.clone());

    // The control: a plain call does reach the double, so silence below means refusal.
    let (status, body) = raw_exchange(app.address, &model_call("/api/v1/services/aigc/text-generation/generation", bearer.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(double.received().len(), 1);

    let prefixes = [
        ("/api/v1/services", bearer.clone()),
        ("/api/v1/apps", bearer.clone()),
        ("/compatible-mode/v1", bearer.clone()),
        ("/compatible-mode/v1/chat/completions", bearer.clone()),
        ("/apps/anthropic", anthropic.clone()),
        ("/apps/anthropic/v1/messages", anthropic.clone()),
    ];
    let mut answered = Vec::new();
    for (prefix, header) in &prefixes {
        for traversal in TRAVERSALS {
            let target = format!("{prefix}{traversal}");
            let (status, body) = raw_exchange(app.address, &model_call(&target, header.clone())).await;
            assert!((400..500).contains(&status), "{target}: answered {status}: {body}");
            if status != 400 || !body.is_empty() {
                // keygate's own refusals are JSON; hyper refuses a malformed request line itself.
                assert!(body.is_empty() || serde_json::from_str::<serde_json::Value>(&body).is_ok(), "{target}: {status} {body}");
            }
            answered.push((target, status));
        }
    }
    let received: Vec<String> = double.received().into_iter().skip(1).map(|received| received.path_and_query).collect();
    assert!(received.is_empty(), "the upstream received {received:?}");
    assert_eq!(answered.len(), prefixes.len() * TRAVERSALS.len());
}

#[tokio::test]
async fn a_dot_segment_under_the_native_prefix_is_refused_in_the_native_shape_before_the_key_is_read() {
    let double = UpstreamDouble::start().await;
    let (app, _) = forwarding_app("traversal_shape", &double, None).await;
    // No key at all: the path is judged first.
    let request = "POST /api/v1/services/%2e%2e/fine-tunes HTTP/1.1\r\nHost: k\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    let (status, body) = raw_exchange(app.address, request.as_bytes()).await;
    assert_eq!(status, 400, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["code"], "InvalidParameter", "{body}");
    assert!(body["message"].as_str().unwrap().contains("cannot be forwarded"), "{body}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    assert!(double.received().is_empty());
}

#[tokio::test]
async fn a_query_string_is_forwarded_as_its_pairs_encoded_again() {
    let double = UpstreamDouble::start().await;
    let (app, _) = forwarding_app("traversal_query", &double, None).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let bearer = ("Authorization", format!("Bearer {key}"));
    for (query, forwarded) in [
        ("x=/../../admin", "x=%2F..%2F..%2Fadmin"),
        ("x=%2e%2e%2f%2e%2e", "x=..%2F.."),
        ("a=1&&b=%41", "a=1&b=A"),
        ("redirect=http://evil.example/", "redirect=http%3A%2F%2Fevil.example%2F"),
    ] {
        let target = format!("/compatible-mode/v1/chat/completions?{query}");
        let (status, body) = raw_exchange(app.address, &model_call(&target, bearer.clone())).await;
        assert_eq!(status, 200, "{query}: {body}");
        let received = double.received().pop().expect("forwarded");
        assert_eq!(received.path_and_query, format!("/v1/chat/completions?{forwarded}"), "{query}");
    }
    let (status, body) = raw_exchange(app.address, &model_call("/compatible-mode/v1/chat/completions?x=%zz", bearer)).await;
    assert_eq!(status, 400, "{body}");
}
