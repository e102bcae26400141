//! `log_format = "json"` (here `KEYGATE_LOG_FORMAT=json`): every line of the log is a JSON
//! object, the lines of a call that fails upstream carry its request id and the failure's
//! cause, and no line carries the key, even one the client put in the URL's query.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{create_key, free_port, TestEnv};

/// Sends a chat call with `key` and returns the status and the `x-acs-request-id` answered.
fn chat_call(port: u16, path: &str, key: &str) -> (u16, String) {
    let body = r#"{"model":"qwen-unreachable","messages":[{"role":"user","content":"hi"}]}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let request_id = answer
        .lines()
        .find_map(|line| line.to_ascii_lowercase().starts_with("x-acs-request-id:").then(|| line[17..].trim().to_string()))
        .unwrap_or_else(|| panic!("no request id in:\n{answer}"));
    (status, request_id)
}

#[test]
fn json_logs_name_the_request_and_the_upstreams_failure_and_never_the_key() {
    let mut env = TestEnv::new();
    let closed_port = free_port();
    let config = env.data_dir.path().join("keygate.toml");
    std::fs::write(
        &config,
        format!(
            "[[upstreams]]\nname = \"gone\"\nopenai_base_url = \"http://127.0.0.1:{closed_port}/v1\"\nmodels = [\"qwen-unreachable\"]\n"
        ),
    )
    .expect("write the settings");
    env.start_server(&[("KEYGATE_CONFIG", config.to_str().expect("utf-8")), ("KEYGATE_LOG_FORMAT", "json")]);
    env.login_root();
    let (_, key) = create_key(&env);

    // The client put its key in the query too, as some clients do.
    let (status, request_id) = chat_call(env.port, &format!("/compatible-mode/v1/chat/completions?api_key={key}&stream=false"), &key);
    assert_eq!(status, 502);

    // The lines of the call: its access line and the upstream's failure, with the cause.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (log, lines) = loop {
        let log = env.server_log();
        // `keygate serve` prints its addresses on stdout, which the harness writes to the same file.
        let lines: Vec<Value> = log
            .lines()
            .filter(|line| !line.starts_with("keygate: "))
            .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}")))
            .collect();
        let of_the_call = lines.iter().filter(|line| line["request_id"] == request_id.as_str()).count();
        if of_the_call >= 3 || Instant::now() > deadline {
            break (log, lines);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let of_the_call: Vec<&Value> = lines.iter().filter(|line| line["request_id"] == request_id.as_str()).collect();
    let failure = of_the_call
        .iter()
        .find(|line| line["message"].as_str().is_some_and(|message| message.starts_with("upstream unreachable")))
        .unwrap_or_else(|| panic!("no upstream failure line with request id {request_id}:\n{log}"));
    assert_eq!(failure["level"], "WARN");
    assert_eq!(failure["upstream"], "gone");
    let cause = failure["cause"].as_str().expect("a cause");
    assert!(cause.contains(&format!("127.0.0.1:{closed_port}")) && cause.to_ascii_lowercase().contains("connect"), "{cause}");
    assert!(cause.contains("?redacted"), "the query is not repeated: {cause}");
    assert!(of_the_call.iter().any(|line| line["message"] == "request" && line["status"] == 502), "the access line: {of_the_call:?}");
    assert!(
        of_the_call.iter().any(|line| line["target"] == "keygate::model_call" && line["status"] == 502),
        "the model-call line: {of_the_call:?}"
    );
    assert!(!log.contains(&key), "a line holds the key:\n{log}");
}
