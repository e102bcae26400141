//! The two model calls served in the connection front (OpenAI-compatible chat, Anthropic
//! messages), spoken to over a raw socket: what reaches the client must be what hyper
//! would have sent, on a connection that stays usable.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::gateway_calls::create_key;
use crate::gateway_forwarding::{forwarding_app, UpstreamDouble, DOUBLE_MODEL};
use crate::helpers::{spawn_app, spawn_app_with};

type Stream = tokio::io::BufReader<tokio::net::TcpStream>;

/// One answer: status, headers (names in lower case), and the body, de-chunked when it came
/// in chunks.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(found, _)| found == name).map(|(_, value)| value.as_str())
    }
}

async fn read_line(stream: &mut Stream) -> String {
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    line.trim_end_matches(['\r', '\n']).to_string()
}

/// Reads one HTTP/1.1 answer, framed by `content-length` or chunks, leaving what follows.
async fn read_answer(stream: &mut Stream) -> Answer {
    let status_line = read_line(stream).await;
    let status = status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(stream).await;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut answer = Answer { status, headers, body: String::new() };
    if answer.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = usize::from_str_radix(&read_line(stream).await, 16).unwrap();
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).await.unwrap();
            assert_eq!(&chunk[size..], b"\r\n", "a chunk ends with CRLF");
            answer.body.push_str(std::str::from_utf8(&chunk[..size]).unwrap());
            if size == 0 {
                break;
            }
        }
    } else {
        let length: usize = answer.header("content-length").expect("a length or chunks").parse().unwrap();
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
        answer.body = String::from_utf8(body).unwrap();
    }
    answer
}

async fn connect(address: std::net::SocketAddr) -> Stream {
    tokio::io::BufReader::new(tokio::net::TcpStream::connect(address).await.unwrap())
}

fn post(path: &str, key: &str, body: &str, more_headers: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n{more_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn model_calls_and_verifications_share_a_connection_with_bodies_split_and_answers_in_order() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (_, key) = root.create_all_key().await;
    let mut stream = connect(app.address).await;

    // A chat call whose body comes in two writes, a moment apart.
    let chat = post(
        "/compatible-mode/v1/chat/completions",
        &key,
        r#"{"model":"demo-echo","messages":[{"role":"user","content":"split body"}]}"#,
        "",
    );
    let (first, second) = chat.split_at(chat.len() - 20);
    stream.get_mut().write_all(first.as_bytes()).await.unwrap();
    stream.get_mut().flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stream.get_mut().write_all(second.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.header("content-length").is_some(), "a known length is kept: {:?}", answer.headers);
    assert!(answer.header("x-acs-request-id").is_some_and(|id| !id.is_empty()), "{:?}", answer.headers);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert!(body["choices"][0]["message"]["content"].as_str().is_some_and(|text| text.contains("split body")), "{body}");

    // A body longer than one read of the connection (split off its buffer rather than
    // copied out), in three writes a moment apart.
    let long_text = format!("{} the end of a long body", "x".repeat(20_000));
    let long = post(
        "/compatible-mode/v1/chat/completions",
        &key,
        &format!(r#"{{"model":"demo-echo","messages":[{{"role":"user","content":"{long_text}"}}]}}"#),
        "",
    );
    for part in long.as_bytes().chunks(7_000) {
        stream.get_mut().write_all(part).await.unwrap();
        stream.get_mut().flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert!(body["choices"][0]["message"]["content"].as_str().is_some_and(|text| text.ends_with("the end of a long body")), "{body}");

    // Then, written at once: Anthropic messages, a refused key, a verification, and a
    // streamed chat call that closes the connection.
    let requests = [
        post(
            "/apps/anthropic/v1/messages",
            &key,
            r#"{"model":"demo-echo","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#,
            "anthropic-version: 2023-06-01\r\n",
        ),
        post("/compatible-mode/v1/chat/completions", "sk-0123456789abcdef0123456789abcdef", r#"{"model":"demo-echo","messages":[]}"#, ""),
        format!("GET /auth/verify HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\n\r\n"),
        post(
            "/compatible-mode/v1/chat/completions",
            &key,
            r#"{"model":"demo-echo","stream":true,"messages":[{"role":"user","content":"streamed"}]}"#,
            "Connection: close\r\n",
        ),
    ]
    .concat();
    stream.get_mut().write_all(requests.as_bytes()).await.unwrap();

    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["type"], "message");

    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key", "the OpenAI error shape: {body}");

    assert_eq!(read_answer(&mut stream).await.status, 200, "the verification after them");

    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("transfer-encoding"), Some("chunked"), "{:?}", answer.headers);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(answer.header("content-type").is_some_and(|kind| kind.starts_with("text/event-stream")), "{:?}", answer.headers);
    assert!(answer.body.contains("streamed") && answer.body.trim_end().ends_with("data: [DONE]"), "{}", answer.body);
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "the connection closes after a `Connection: close` call");
}

#[tokio::test]
async fn a_model_call_whose_body_stops_coming_gets_408_in_its_protocols_shape_and_the_connection_closes() {
    let app = spawn_app_with(|settings| {
        settings.header_read_timeout_seconds = 1;
        settings.body_read_timeout_seconds = 2;
    })
    .await;
    let root = app.login(None).await;
    let (_, key) = root.create_all_key().await;
    let mut stream = connect(app.address).await;
    let head = format!(
        "POST /apps/anthropic/v1/messages HTTP/1.1\r\nHost: k\r\nx-api-key: {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":"
    );
    stream.get_mut().write_all(head.as_bytes()).await.unwrap();
    // Past the header timeout (1 s) the connection is busy, not cut: the body's 2 s apply.
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(answer.header("x-acs-request-id").is_some());
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["type"], "error", "the Anthropic error shape: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("did not arrive within 2 seconds")), "{body}");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "the rest of the body could still come: the connection closes");
}

#[tokio::test]
async fn a_model_call_the_front_does_not_take_is_served_by_hyper_the_same_way() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (_, key) = root.create_all_key().await;
    // Chunked: the front hands the connection to hyper, which serves the same call.
    let body = r#"{"model":"demo-echo","messages":[{"role":"user","content":"chunked"}]}"#;
    let request = format!(
        "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let mut stream = connect(app.address).await;
    stream.get_mut().write_all(request.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("chunked"), "{}", answer.body);
    // Two Content-Length headers that disagree: hyper's 400, nothing forwarded.
    let request = format!(
        "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}"
    );
    let mut stream = connect(app.address).await;
    stream.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[tokio::test]
async fn a_call_with_a_bad_key_is_refused_before_its_body_is_waited_for() {
    // A long body deadline: an answer that waited for the body would come after it.
    let app = spawn_app_with(|settings| settings.body_read_timeout_seconds = 60).await;
    let mut stream = connect(app.address).await;
    let head = "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer sk-0123456789abcdef0123456789abcdef\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"model\":";
    stream.get_mut().write_all(head.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), read_answer(&mut stream))
        .await
        .expect("refused at once, not after the body's 5,000 bytes or its deadline");
    assert_eq!(answer.status, 401, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
}

/// A chat call's headers reach the upstream the same whether the front read the call (a
/// `Content-Length`) or hyper did (chunks): names in lower case whatever case the client
/// wrote, the upstream's credential for the client's key, and neither hop-by-hop headers
/// (nor one the client's `Connection` names), nor `X-Keygate-*`, nor `X-Api-Key`; `Accept`
/// added when the client sent none. The upstream's answer comes back the same either way
/// too.
#[tokio::test]
async fn the_front_forwards_the_headers_hyper_forwards() {
    let double = UpstreamDouble::start().await;
    let (app, credential) = forwarding_app("front_headers", &double, None).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let body = format!(r#"{{"model":"{DOUBLE_MODEL}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    let more = format!(
        "X-Client-Trace: Trace-1\r\nCONNECTION: keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\nKeep-Alive: timeout=5\r\nX-Keygate-Identity: all\r\nX-Api-Key: {key}\r\nTE: trailers\r\nX-Client-Trace: Trace-2\r\n"
    );
    let target = "/compatible-mode/v1/chat/completions?trace=on&x=%2F";
    let in_front = post(target, &key, &body, &more);
    let through_hyper = format!(
        "POST {target} HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n{more}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let mut seen = Vec::new();
    let mut answers = Vec::new();
    for request in [in_front, through_hyper] {
        let mut stream = connect(app.address).await;
        stream.get_mut().write_all(request.as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        // What the client got back: the same headers either way (less the date and the
        // request id, which differ from one answer to the next).
        let mut answered: Vec<(String, String)> =
            answer.headers.iter().filter(|(name, _)| !matches!(name.as_str(), "date" | "x-acs-request-id")).cloned().collect();
        answered.sort();
        assert!(answer.header("x-acs-request-id").is_some(), "{:?}", answer.headers);
        assert_eq!(answer.headers.iter().filter(|(name, _)| name == "date").count(), 1, "one date: {:?}", answer.headers);
        answers.push((answered, answer.body));
        let received = double.received().pop().expect("the double was called");
        let mut headers: Vec<(String, String)> = received
            .headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "content-length" | "transfer-encoding"))
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
            .collect();
        headers.sort();
        seen.push((received.path_and_query, headers));
    }
    let expected = vec![
        ("accept".to_string(), "*/*".to_string()),
        ("authorization".to_string(), format!("Bearer {credential}")),
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), double.address.to_string()),
        ("x-client-trace".to_string(), "Trace-1".to_string()),
        ("x-client-trace".to_string(), "Trace-2".to_string()),
    ];
    assert_eq!(seen[0], ("/v1/chat/completions?trace=on&x=%2F".to_string(), expected), "in front");
    assert_eq!(seen[1], seen[0], "the front and hyper forward the same headers");
    // The upstream's end-to-end headers reach the client, its hop-by-hop ones do not, and
    // the length is the body's, whichever of the two wrote the answer.
    let (front_headers, front_body) = &answers[0];
    let header = |name: &str| front_headers.iter().find(|(found, _)| found == name).map(|(_, value)| value.as_str());
    assert_eq!(header("x-upstream-double"), Some("answered"), "{front_headers:?}");
    assert_eq!((header("keep-alive"), header("x-upstream-hop")), (None, None), "{front_headers:?}");
    assert_eq!(header("content-length"), Some(front_body.len().to_string().as_str()), "{front_headers:?}");
    assert_eq!(answers[1], answers[0], "the front and hyper relay the same answer");
}
