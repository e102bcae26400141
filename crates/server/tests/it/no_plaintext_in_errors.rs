//! A real key sent where it does not belong never comes back: not in a refusal's body or
//! headers, whatever field, type or path it was put in, and not in the server's log. Each
//! request below carries a live plaintext key of the test's own in a wrong place (a string
//! where a list belongs, an id, a name, a role, a path segment, a model, a header); every
//! answer must be a 4xx that holds no twelve consecutive characters of the key's body, and
//! no captured log line may hold any either.

use std::net::SocketAddr;

use crate::gateway_calls::{create_key, create_workspace};
use crate::helpers::{spawn_app_with, Credentials};
use crate::log_capture;
use crate::refusal_envelopes::{raw_request, RawAnswer};

/// Every run of `WINDOW` characters of the key's body (after `sk-ws-`): a refusal that
/// repeats any of them repeats part of the secret (the masked form shows only 4 + 4).
const WINDOW: usize = 12;

fn windows_of(key: &str) -> Vec<String> {
    let body: Vec<char> = key.trim_start_matches("sk-ws-").chars().collect();
    body.windows(WINDOW).map(|window| window.iter().collect()).collect()
}

/// One request that carries the key in a wrong place.
struct Misplaced {
    name: String,
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn misplaced(name: &str, method: &'static str, target: &str) -> Misplaced {
    Misplaced { name: name.to_string(), method, target: target.to_string(), headers: Vec::new(), body: String::new() }
}

impl Misplaced {
    fn header(mut self, name: &'static str, value: &str) -> Misplaced {
        self.headers.push((name, value.to_string()));
        self
    }

    fn json(self, body: &str) -> Misplaced {
        Misplaced { body: body.to_string(), ..self.header("Content-Type", "application/json") }
    }

    fn form(self, body: &str) -> Misplaced {
        Misplaced { body: body.to_string(), ..self.header("Content-Type", "application/x-www-form-urlencoded") }
    }

    async fn send(&self, address: SocketAddr) -> RawAnswer {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        raw_request(address, self.method, &self.target, &headers, self.body.as_bytes()).await
    }
}

/// Sends every request and reports each answer that is not a 4xx or that repeats the key.
async fn check_none_repeats(address: SocketAddr, key: &str, requests: &[Misplaced]) {
    let windows = windows_of(key);
    let mut problems = Vec::new();
    for request in requests {
        let answer = request.send(address).await;
        let headers: String = answer.headers.iter().map(|(name, value)| format!("{name}: {value}\n")).collect();
        let whole = format!("{headers}\n{}", answer.body);
        if !(400..500).contains(&answer.status) {
            problems.push(format!("{}: answered {} (expected a refusal): {}", request.name, answer.status, answer.body));
        }
        if windows.iter().any(|window| whole.contains(window.as_str())) {
            problems.push(format!("{}: the answer repeats the key: {whole}", request.name));
        }
    }
    assert!(problems.is_empty(), "{} of {} requests:\n{}", problems.len(), requests.len(), problems.join("\n"));
}

/// No captured log line holds any part of the key.
fn assert_not_logged(key: &str) {
    for window in windows_of(key) {
        let lines = log_capture::lines_containing(&window);
        assert!(lines.is_empty(), "the log holds part of the key:\n{}", lines.join("\n"));
    }
}

#[tokio::test]
async fn a_key_in_a_wrongly_typed_field_of_a_management_body_is_never_repeated() {
    log_capture::install();
    let app = spawn_app_with(|_| {}).await;
    let root = app.login(None).await;
    let Credentials::Session(token) = root.credentials.clone() else { panic!("a session") };
    let (_, key) = create_key(&root, "", "").await;
    let workspace = create_workspace(&root, "misplaced").await;
    app.create_user("alice", keygate_core::access::Role::Member).await;
    let session = |request: Misplaced| request.header("x-acs-bearer-token", &token);
    let k = key.as_str();
    let requests = vec![
        // The leak report: `keys` must be a list of strings.
        session(misplaced("leaks: keys a string", "POST", "/keygate/v1/leaks")).json(&format!(r#"{{"keys": "{k}"}}"#)),
        session(misplaced("leaks: keys an object", "POST", "/keygate/v1/leaks")).json(&format!(r#"{{"keys": {{"key": "{k}"}}}}"#)),
        session(misplaced("leaks: keys a list of lists", "POST", "/keygate/v1/leaks")).json(&format!(r#"{{"keys": [["{k}"]]}}"#)),
        session(misplaced("leaks: the key as a field name", "POST", "/keygate/v1/leaks")).json(&format!(r#"{{"{k}": []}}"#)),
        session(misplaced("leaks: an unknown field beside", "POST", "/keygate/v1/leaks"))
            .json(&format!(r#"{{"keys": ["{k}"], "also": 1}}"#)),
        session(misplaced("leaks: a bare string", "POST", "/keygate/v1/leaks")).json(&format!(r#""{k}""#)),
        session(misplaced("leaks: a list at the top", "POST", "/keygate/v1/leaks")).json(&format!(r#"["{k}"]"#)),
        session(misplaced("leaks: cut short", "POST", "/keygate/v1/leaks")).json(&format!(r#"{{"keys": ["{k}""#)),
        session(misplaced("leaks: unquoted", "POST", "/keygate/v1/leaks")).json(&format!(r#"{{"keys": [{k}]}}"#)),
        session(misplaced("leaks: a form body", "POST", "/keygate/v1/leaks")).form(&format!("keys={k}")),
        // keygate's own API.
        session(misplaced("users: the key as a name", "POST", "/keygate/v1/users"))
            .json(&format!(r#"{{"name": "{k}", "role": "member", "password": "long-enough-password"}}"#)),
        session(misplaced("users: the key as a role", "POST", "/keygate/v1/users"))
            .json(&format!(r#"{{"name": "bob", "role": "{k}", "password": "long-enough-password"}}"#)),
        session(misplaced("users: the key as a password of the wrong type", "POST", "/keygate/v1/users"))
            .json(&format!(r#"{{"name": "bob", "role": "member", "password": ["{k}"]}}"#)),
        session(misplaced("users: the key as a role to set", "PUT", "/keygate/v1/users/alice/role")).json(&format!(r#"{{"role": "{k}"}}"#)),
        session(misplaced("users: the key in the path", "GET", &format!("/keygate/v1/users/{k}"))),
        session(misplaced("members: the key as a user", "POST", &format!("/keygate/v1/workspaces/{workspace}/members")))
            .json(&format!(r#"{{"user": "{k}"}}"#)),
        session(misplaced("members: the key as the workspace", "GET", &format!("/keygate/v1/workspaces/{k}/members"))),
        session(misplaced(
            "applications: the key as a name of the wrong type",
            "POST",
            &format!("/keygate/v1/workspaces/{workspace}/applications"),
        ))
        .json(&format!(r#"{{"name": {{"{k}": 1}}}}"#)),
        session(misplaced("access keys: the key as a user", "POST", "/keygate/v1/access-keys")).json(&format!(r#"{{"user": "{k}"}}"#)),
        session(misplaced("access keys: the key as an id", "POST", &format!("/keygate/v1/access-keys/{k}/disable"))),
        session(misplaced("audit: the key as a limit", "GET", &format!("/keygate/v1/audit?limit={k}"))),
        session(misplaced("import: keys a string", "POST", "/keygate/v1/keys/import")).json(&format!(r#"{{"keys": "{k}"}}"#)),
        session(misplaced("import: a secure key imported", "POST", "/keygate/v1/keys/import"))
            .json(&format!(r#"{{"keys": [{{"key": "{k}"}}]}}"#)),
        misplaced("login: the key as a password of the wrong type", "POST", "/keygate/v1/sessions")
            .json(&format!(r#"{{"account": "root", "password": {{"{k}": true}}}}"#)),
        misplaced("login: the key as the account", "POST", "/keygate/v1/sessions")
            .json(&format!(r#"{{"account": "{k}", "password": "x"}}"#)),
        // Model Studio: query parameters, form fields and path ids.
        session(misplaced("create: the key as the workspace", "POST", &format!("/modelstudio/apikeys?workspaceId={k}"))),
        session(misplaced("create: the key as the auth type", "POST", "/modelstudio/apikeys")).form(&format!("auth.type={k}")),
        session(misplaced("create: the key as an IP", "POST", "/modelstudio/apikeys"))
            .form(&format!("auth.type=Custom&auth.accessIps.1={k}")),
        session(misplaced("create: the key as a model", "POST", "/modelstudio/apikeys"))
            .form(&format!("auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1={k}")),
        session(misplaced("create: the key as a boolean", "POST", "/modelstudio/apikeys"))
            .form(&format!("auth.type=Custom&auth.modelAccessScope.allowAllModels={k}")),
        session(misplaced("create: the key as an app", "POST", "/modelstudio/apikeys"))
            .form(&format!("auth.type=Custom&auth.appAccessScope.allowAllApps=false&auth.appAccessScope.accessibleApps.1={k}")),
        session(misplaced("create: the key as a field name", "POST", "/modelstudio/apikeys")).form(&format!("auth.{k}=1")),
        session(misplaced("create: a JSON body", "POST", "/modelstudio/apikeys")).json(&format!(r#"{{"auth": "{k}"}}"#)),
        session(misplaced("list: the key as maxResults", "GET", &format!("/modelstudio/apikeys?maxResults={k}"))),
        session(misplaced("list: the key as nextToken", "GET", &format!("/modelstudio/apikeys?nextToken={k}"))),
        session(misplaced("list: the key as order", "GET", &format!("/modelstudio/apikeys?order={k}"))),
        session(misplaced("list: the key as the workspace", "GET", &format!("/modelstudio/apikeys?workspaceId={k}"))),
        session(misplaced("get: the key as the id", "GET", &format!("/modelstudio/apikeys/{k}"))),
        session(misplaced("update: the key as the id", "PUT", &format!("/modelstudio/apikeys/{k}"))).form("auth.type=All"),
        session(misplaced("delete workspace: the key as the id", "DELETE", &format!("/modelstudio/workspaces/{k}"))),
        session(misplaced("permissions: the key as the workspace", "GET", &format!("/modelstudio/models/permissions?workspaceId={k}"))),
        session(misplaced("permissions: the key as a model", "POST", &format!("/modelstudio/models/permissions?workspaceId={workspace}")))
            .form(&format!("model={k}&inference=true")),
        session(misplaced("token plan: the key as the id", "POST", &format!("/tokenplan/api-key-rotations?ApiKeyId={k}"))),
        // Refusals before any handler.
        misplaced("unknown management path", "GET", &format!("/modelstudio/{k}")),
        misplaced("wrong method on a path holding it", "PATCH", &format!("/modelstudio/apikeys/{k}")),
        misplaced("unknown keygate path", "GET", &format!("/keygate/v1/{k}")),
    ];
    check_none_repeats(app.address, &key, &requests).await;
    assert_not_logged(&key);
}

#[tokio::test]
async fn a_key_in_a_wrong_place_of_a_model_call_is_never_repeated() {
    log_capture::install();
    let app = spawn_app_with(|_| {}).await;
    let root = app.login(None).await;
    let (_, key) = create_key(&root, "", "").await;
    let k = key.as_str();
    let bearer = format!("Bearer {k}");
    let with_key = |request: Misplaced| request.header("Authorization", &bearer);
    let chat = |model: &str| format!(r#"{{"model": {model}, "messages": [{{"role": "user", "content": "hi"}}]}}"#);
    let requests = vec![
        with_key(misplaced("native: the key as the model", "POST", "/api/v1/services/aigc/text-generation/generation"))
            .json(&format!(r#"{{"model": "{k}", "input": {{"prompt": "hi"}}}}"#)),
        with_key(misplaced("native: the model a list holding it", "POST", "/api/v1/services/aigc/text-generation/generation"))
            .json(&format!(r#"{{"model": ["{k}"], "input": {{"prompt": "hi"}}}}"#)),
        with_key(misplaced("native: two models", "POST", "/api/v1/services/aigc/text-generation/generation"))
            .json(&format!(r#"{{"model": "demo-echo", "model": "{k}"}}"#)),
        with_key(misplaced("native: not JSON", "POST", "/api/v1/services/aigc/text-generation/generation")).json(&format!("model={k}")),
        with_key(misplaced("native: the key as the workspace header", "POST", "/api/v1/services/aigc/text-generation/generation"))
            .header("X-DashScope-WorkSpace", k)
            .json(&chat(r#""demo-echo""#)),
        with_key(misplaced("native: the key as the app", "POST", &format!("/api/v1/apps/{k}/completion")))
            .json(r#"{"input": {"prompt": "hi"}}"#),
        with_key(misplaced("native: the key in an unknown path", "POST", &format!("/api/v1/{k}"))).json("{}"),
        with_key(misplaced("native: the key after a dot segment", "POST", &format!("/api/v1/services/../{k}"))).json("{}"),
        with_key(misplaced("temporary key: the key as the lifetime", "POST", &format!("/api/v1/tokens?expire_in_seconds={k}"))),
        misplaced("native: the key with one character more", "POST", "/api/v1/services/aigc/text-generation/generation")
            .header("Authorization", &format!("Bearer {k}x"))
            .json(&chat(r#""demo-echo""#)),
        misplaced("native: the key in the wrong header", "POST", "/api/v1/services/aigc/text-generation/generation")
            .header("Authorization", k)
            .json(&chat(r#""demo-echo""#)),
        with_key(misplaced("openai: the key as the model", "POST", "/compatible-mode/v1/chat/completions"))
            .json(&chat(&format!(r#""{k}""#))),
        with_key(misplaced("openai: a malformed query holding it", "POST", &format!("/compatible-mode/v1/chat/completions?x=%zz{k}")))
            .json(&chat(r#""demo-echo""#)),
        with_key(misplaced("openai: the key in an unknown path", "GET", &format!("/compatible-mode/v1/{k}"))),
        with_key(misplaced("openai: the key in a path of the wrong method", "GET", "/compatible-mode/v1/chat/completions")),
        misplaced("anthropic: the key as the model", "POST", "/apps/anthropic/v1/messages")
            .header("x-api-key", k)
            .json(&format!(r#"{{"model": "{k}", "max_tokens": 8, "messages": [{{"role": "user", "content": "hi"}}]}}"#)),
        misplaced("anthropic: the key in an unknown path", "POST", &format!("/apps/anthropic/v1/{k}")).header("x-api-key", k).json("{}"),
        misplaced("verify: the key as the model", "GET", "/auth/verify").header("Authorization", &bearer).header("X-Keygate-Model", k),
        misplaced("verify: the key in the original path", "GET", &format!("/auth/verify/api/v1/apps/{k}/completion"))
            .header("Authorization", &format!("Bearer {k}x")),
    ];
    check_none_repeats(app.address, &key, &requests).await;
    assert_not_logged(&key);
}
