//! Connection hygiene on every listener: a client that sends nothing, or sends its head
//! slowly, is cut off after the header-read timeout; a keep-alive connection idle past the
//! idle timeout is closed; a body that does not arrive gets 408 when its deadline passes;
//! past the connection cap new connections wait until one closes; an oversized head is
//! refused; and a management request without credentials is answered before its body is
//! read. Timeouts are set to a second or two; each wait here is a guard against hanging,
//! never a timing assertion.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app_with;

/// Long enough for any of these answers on a loaded machine; none of them should take it.
const GUARD: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection; what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut received)).await.expect("the server closes the connection").ok();
    String::from_utf8_lossy(&received).to_string()
}

/// Reads one answer (its head and a body of `Content-Length`) from a kept-alive connection.
async fn read_one_answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(GUARD, stream.read(&mut buffer)).await.expect("an answer").expect("readable");
        assert!(read > 0, "closed before answering: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase().strip_prefix("content-length:").map(|value| value.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

async fn connect(address: SocketAddr) -> TcpStream {
    TcpStream::connect(address).await.expect("connects")
}

const HEALTH_CHECK: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: keygate.test\r\n\r\n";

#[tokio::test]
async fn a_client_that_sends_nothing_or_sends_its_head_slowly_is_cut_off() {
    let app = spawn_app_with(|settings| settings.header_read_timeout_seconds = 1).await;
    let mut silent = connect(app.address).await;
    let mut partial = connect(app.address).await;
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHost: keygate.test\r\nX-Slow: ").await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "", "closed without an answer");
    assert_eq!(read_until_closed(&mut partial).await, "");
    // Meanwhile and after, an ordinary request is served.
    let mut healthy = connect(app.address).await;
    healthy.write_all(HEALTH_CHECK).await.unwrap();
    assert!(read_one_answer(&mut healthy).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_keep_alive_connection_serves_requests_then_closes_when_idle_too_long() {
    let app = spawn_app_with(|settings| {
        settings.idle_timeout_seconds = 1;
        settings.header_read_timeout_seconds = 10;
    })
    .await;
    let mut stream = connect(app.address).await;
    for _ in 0..3 {
        stream.write_all(HEALTH_CHECK).await.unwrap();
        assert!(read_one_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    }
    // Idle now: closed after the idle timeout (well before the 10 s header timeout).
    let started = std::time::Instant::now();
    assert_eq!(read_until_closed(&mut stream).await, "");
    assert!(started.elapsed() < Duration::from_secs(10), "closed by the idle timeout, not the header one: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_body_that_does_not_arrive_gets_408_and_the_connection_is_not_cut_while_busy() {
    let app = spawn_app_with(|settings| {
        settings.header_read_timeout_seconds = 1;
        settings.body_read_timeout_seconds = 2;
    })
    .await;
    let session = app.login(None).await;
    let crate::helpers::Credentials::Session(token) = &session.credentials else { panic!("a session") };
    let mut stream = connect(app.address).await;
    let head = format!(
        "POST /keygate/v1/leaks HTTP/1.1\r\nHost: keygate.test\r\nx-acs-bearer-token: {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"keys\": ["
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The head was read, so the header timeout (1 s) no longer applies; the body's (2 s) does.
    let answer = read_one_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"RequestTimeout\""), "{answer}");
}

#[tokio::test]
async fn past_the_connection_cap_a_silent_connection_is_shed_for_a_new_one_and_a_busy_one_is_not() {
    let app = spawn_app_with(|settings| {
        settings.max_connections = Some(2);
        settings.header_read_timeout_seconds = 60;
        settings.body_read_timeout_seconds = 60;
    })
    .await;
    // One connection says nothing; one is busy: its request's body is still arriving.
    let mut silent = connect(app.address).await;
    let mut busy = connect(app.address).await;
    busy.write_all(
        b"POST /keygate/v1/sessions HTTP/1.1\r\nHost: keygate.test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third client, past a cap of two, is served: the silent connection made room.
    let mut probe = connect(app.address).await;
    probe.write_all(HEALTH_CHECK).await.unwrap();
    let answer = read_one_answer(&mut probe).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(read_until_closed(&mut silent).await, "", "the silent connection is closed without an answer");
    // The busy one was not touched: its request completes.
    busy.write_all(&[b' '; 99]).await.unwrap();
    let answer = read_one_answer(&mut busy).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "the busy request was answered: {answer}");
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_and_the_connection_closed() {
    let app = spawn_app_with(|_| {}).await;
    let mut stream = connect(app.address).await;
    let huge = format!("GET /healthz HTTP/1.1\r\nHost: keygate.test\r\nX-Padding: {}\r\n\r\n", "a".repeat(64 * 1024));
    // The server may close while we are still writing; what matters is its answer.
    let _ = stream.write_all(huge.as_bytes()).await;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn a_head_with_more_headers_than_taken_is_refused_with_431_in_the_planes_shape() {
    let app = spawn_app_with(|_| {}).await;
    let many: String = (0..101).map(|index| format!("X-Header-{index}: {index}\r\n")).collect();
    // A model call: the error shape of its protocol (OpenAI's `error` object).
    let mut stream = connect(app.address).await;
    let request =
        format!("POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: keygate.test\r\n{many}Content-Length: 2\r\n\r\n{{}}");
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_one_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("more than 100 headers")), "{body}");
    assert!(answer.to_ascii_lowercase().contains("x-acs-request-id: "), "{answer}");
    assert_eq!(read_until_closed(&mut stream).await, "", "the connection closes after the refusal");
    // A management request: the management shape, with its code.
    let mut stream = connect(app.address).await;
    let request = format!("GET /modelstudio/apikeys HTTP/1.1\r\nHost: keygate.test\r\n{many}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_one_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431") && answer.contains("RequestHeaderFieldsTooLarge"), "{answer}");
}

#[tokio::test]
async fn a_management_request_without_credentials_is_answered_before_its_body_is_read() {
    let app = spawn_app_with(|_| {}).await;
    for path in ["/keygate/v1/keys/import", "/modelstudio/apikeys", "/tokenplan/api-keys"] {
        let mut stream = connect(app.address).await;
        // 15 MiB declared, a few bytes sent: an answer can only come before the body.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: keygate.test\r\nContent-Type: application/json\r\nContent-Length: 15728640\r\n\r\n{{\"keys\":"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = read_one_answer(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
        assert!(answer.contains("MissingAuthorization"), "{path}: {answer}");
    }
    // An authenticated caller declaring more than the route's limit is refused at once too.
    let session = app.login(None).await;
    let crate::helpers::Credentials::Session(token) = &session.credentials else { panic!("a session") };
    let mut stream = connect(app.address).await;
    let head = format!(
        "POST /keygate/v1/keys/import HTTP/1.1\r\nHost: keygate.test\r\nx-acs-bearer-token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        17 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_one_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("RequestEntityTooLarge"), "{answer}");
}

#[tokio::test]
async fn a_login_reads_at_most_a_small_body() {
    let app = spawn_app_with(|_| {}).await;
    // Anyone may post a login, so a declared megabyte is refused from the head alone: the
    // answer comes although the body is never sent.
    for (path, content_type) in [("/keygate/v1/sessions", "application/json"), ("/console/login", "application/x-www-form-urlencoded")] {
        let mut stream = connect(app.address).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: keygate.test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = read_one_answer(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
    }
    // A login of ordinary size still works.
    let session = app.login(None).await;
    assert!(matches!(session.credentials, crate::helpers::Credentials::Session(_)));
}

#[tokio::test]
async fn a_login_whose_body_does_not_arrive_gets_408() {
    let app = spawn_app_with(|settings| settings.body_read_timeout_seconds = 1).await;
    let mut stream = connect(app.address).await;
    let head = "POST /keygate/v1/sessions HTTP/1.1\r\nHost: keygate.test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"account\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_one_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("RequestTimeout"), "{answer}");
}
