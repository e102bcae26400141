//! The canary scan (docs/CONTRACT.md#secrets): run a server with `RUST_LOG=debug`, make every kind of
//! secret through the CLI (API keys from create and reset, AccessKey secrets from `admin`
//! and from `users access-keys create`, session tokens, passwords), present some of them
//! to the server, then check that none of them appears in the server's log, in any file
//! of its data directory, or on any client command's stderr.

use std::path::Path;

use crate::harness::{files_under, raw_request, CliOutput, TestEnv, ALICE_PASSWORD, ROOT_PASSWORD};

const CAROL_PASSWORD: &str = "carol-password-canary-5Kp";
const WRONG_PASSWORD: &str = "wrong-password-canary-8Jm";

/// `sk-ws-Ab3x...9x` style: enough to recognise a finding without printing the secret.
fn hint(secret: &str) -> String {
    let characters: Vec<char> = secret.chars().collect();
    let start: String = characters.iter().take(6).collect();
    let end: String = characters.iter().skip(characters.len().saturating_sub(2)).collect();
    format!("{start}...{end} ({} characters)", characters.len())
}

fn json_string(output: &CliOutput, pointer: &str) -> String {
    output
        .json()
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("`{}` printed no {pointer}:\n{}", output.description, output.stdout))
        .to_string()
}

#[test]
fn no_secret_reaches_the_log_the_data_dir_or_stderr() {
    let mut env = TestEnv::new();
    let mut secrets: Vec<String> = vec![ROOT_PASSWORD.into(), ALICE_PASSWORD.into(), CAROL_PASSWORD.into(), WRONG_PASSWORD.into()];
    let bootstrap = [("KEYGATE_ROOT_PASSWORD", ROOT_PASSWORD), ("KEYGATE_USER_PASSWORD", ALICE_PASSWORD), ("RUST_LOG", "debug")];

    // Bootstrap: a RAM user and AccessKeys made on the database directly.
    env.run_with(
        &["admin", "create-user", "--init", "--account", "root", "--name", "alice", "--role", "key-manager", "--json"],
        "",
        &bootstrap,
    )
    .success();
    let root_access_key = env.run_with(&["admin", "create-access-key", "--account", "root", "--json"], "", &bootstrap).success();
    secrets.push(json_string(&root_access_key, "/accessKeySecret"));
    let alice_access_key =
        env.run_with(&["admin", "create-access-key", "--account", "root", "--user", "alice", "--json"], "", &bootstrap).success();
    secrets.push(json_string(&alice_access_key, "/accessKeySecret"));

    env.start_server(&[("RUST_LOG", "debug")]);

    // A refused login, then root's session.
    env.run_with(&["login"], &format!("{WRONG_PASSWORD}\n"), &[]).failure();
    env.login_root();
    let root_token = env.session()["token"].as_str().expect("token").to_string();
    secrets.push(root_token.clone());

    // API keys: create (All and Custom, table and JSON output) and reset.
    let first = env.run(&["keys", "create", "--description", "canary all"]).success();
    secrets.push(first.labelled("API key"));
    let first_id = first.labelled("API key id");
    let custom = env
        .run(&["keys", "create", "--description", "canary custom", "--custom", "--ip", "127.0.0.1", "--model", "demo-echo", "--json"])
        .success();
    secrets.push(json_string(&custom, "/apiKey/apiKeyValue"));
    let reset = env.run(&["keys", "reset", &first_id, "--yes"]).success();
    secrets.push(reset.labelled("API key"));
    let custom_id = custom.json()["apiKey"]["apiKeyId"].to_string();
    let reset_json = env.run(&["keys", "reset", &custom_id, "--yes", "--json"]).success();
    secrets.push(json_string(&reset_json, "/apiKey/apiKeyValue"));
    env.run(&["keys", "list"]).success();
    env.run(&["keys", "get", &first_id, "--json"]).success();

    // AccessKeys and a user with a password, through the API.
    let own_access_key = env.run(&["users", "access-keys", "create", "--json"]).success();
    secrets.push(json_string(&own_access_key, "/accessKeySecret"));
    let alice_second = env.run(&["users", "access-keys", "create", "--user", "alice"]).success();
    secrets.push(alice_second.labelled("AccessKey secret"));
    env.run_with(&["users", "create", "carol", "--role", "key-manager", "--password-stdin"], &format!("{CAROL_PASSWORD}\n"), &[]).success();

    // Alice: a session, a key, and a logout (the token is deleted on the server).
    env.login_user("alice", ALICE_PASSWORD);
    secrets.push(env.session()["token"].as_str().expect("token").to_string());
    let alice_key = env.run(&["keys", "create", "--description", "alice canary"]).success();
    secrets.push(alice_key.labelled("API key"));
    env.run(&["logout"]).success();
    env.login_user("carol", CAROL_PASSWORD);
    secrets.push(env.session()["token"].as_str().expect("token").to_string());
    let carol_key = env.run(&["keys", "create", "--json"]).success();
    let live_key = json_string(&carol_key, "/apiKey/apiKeyValue");
    secrets.push(live_key.clone());

    // Present secrets where a debug log could print headers or bodies: the gateway paths
    // (whatever they answer), a bad session token, the login body.
    // A live key goes all the way through the gateway to the demo upstream.
    let body = r#"{"model":"demo-echo","messages":[{"role":"user","content":"canary"}],"max_tokens":16}"#;
    let bearer = format!("Bearer {live_key}");
    let replaced_bearer = format!("Bearer {}", first.labelled("API key"));
    let chat = raw_request(
        env.port,
        "POST",
        "/compatible-mode/v1/chat/completions",
        &[("authorization", bearer.as_str()), ("content-type", "application/json")],
        body,
    );
    assert_eq!(chat, 200, "the live key should pass the gateway:\n{}", env.server_log());
    let presented = [
        ("POST", "/apps/anthropic/v1/messages", vec![("x-api-key", live_key.as_str()), ("content-type", "application/json")]),
        ("GET", "/auth/verify", vec![("authorization", bearer.as_str())]),
        (
            "POST",
            "/compatible-mode/v1/chat/completions",
            vec![("authorization", replaced_bearer.as_str()), ("content-type", "application/json")],
        ),
        ("GET", "/modelstudio/apikeys", vec![("x-acs-bearer-token", root_token.as_str())]),
        ("GET", "/modelstudio/apikeys", vec![("x-acs-bearer-token", live_key.as_str())]),
    ];
    for (method, path, headers) in &presented {
        assert_ne!(raw_request(env.port, method, path, headers, body), 0, "no answer to {method} {path}");
    }

    // Stop the server first: whatever is in the WAL or the log by then is scanned.
    env.stop_server();

    let unique: std::collections::BTreeSet<&String> = secrets.iter().collect();
    assert_eq!(unique.len(), secrets.len(), "every secret is distinct");
    assert!(secrets.len() >= 16, "the scan would be too thin: {} secrets", secrets.len());
    assert!(secrets.iter().all(|secret| secret.len() >= 20), "{:?}", secrets.iter().map(|secret| hint(secret)).collect::<Vec<_>>());

    // The log exists, has the access lines and debug output: a broken log cannot pass.
    let log = std::fs::read(env.server_log_path()).expect("server log");
    let log_text = String::from_utf8_lossy(&log);
    assert!(log.len() > 1000, "the server log is (nearly) empty:\n{log_text}");
    for needle in
        ["path=/keygate/v1/sessions", "path=/modelstudio/apikeys", "path=/compatible-mode/v1/chat/completions", "status=401", "DEBUG"]
    {
        assert!(log_text.contains(needle), "the server log has no `{needle}`:\n{log_text}");
    }

    let mut findings = Vec::new();
    let mut scan = |name: &str, content: &[u8]| {
        for secret in &secrets {
            if content.windows(secret.len()).any(|window| window == secret.as_bytes()) {
                findings.push(format!("{name}: {}", hint(secret)));
            }
        }
    };
    scan("server log", &log);
    let data_files = files_under(env.data_dir.path());
    let names: Vec<String> = data_files.iter().map(|path| file_name(path)).collect();
    assert!(names.iter().any(|name| name == "keygate.db"), "{names:?}");
    assert!(names.iter().any(|name| name == "master.key"), "{names:?}");
    for path in &data_files {
        scan(&format!("data dir {}", file_name(path)), &std::fs::read(path).expect("read a data file"));
    }
    for (index, stderr) in env.client_stderr.borrow().iter().enumerate() {
        scan(&format!("stderr of client command #{index}"), stderr.as_bytes());
    }
    assert!(findings.is_empty(), "plaintext secrets found:\n{}", findings.join("\n"));
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}
