//! Expectations shared by the Model Studio API tests: whole error envelopes (compared
//! without the random `requestId`), key look-ups through the API and the registry, counts.

use keygate_core::verification::AuthenticationFailure;
use serde_json::{json, Value};

use crate::helpers::{Answer, Client, TestApp};

/// Message of every `ApiKey.NotFound` answer.
pub const KEY_NOT_FOUND_MESSAGE: &str = "The API key does not exist.";

/// `None` when `answer` is exactly the error envelope (status, code, message,
/// `httpStatusCode`, `success: false`) with a non-empty `requestId`; else what differs.
pub fn error_mismatch(answer: &Answer, status: u16, code: &str, message: &str) -> Option<String> {
    let mut body = answer.body.clone();
    let request_id = body.as_object_mut().and_then(|fields| fields.remove("requestId"));
    let expected = json!({"code": code, "message": message, "httpStatusCode": status, "success": false});
    if !matches!(&request_id, Some(Value::String(id)) if !id.is_empty()) {
        return Some(format!("no requestId in {}", answer.body));
    }
    if answer.status != status || body != expected {
        return Some(format!("expected {status} {expected}, got {} {body}", answer.status));
    }
    None
}

/// Asserts that `answer` is exactly this error envelope.
#[track_caller]
pub fn assert_error(answer: &Answer, status: u16, code: &str, message: &str) {
    if let Some(problem) = error_mismatch(answer, status, code, message) {
        panic!("{problem}");
    }
}

#[track_caller]
pub fn assert_key_not_found(answer: &Answer) {
    assert_error(answer, 404, "ApiKey.NotFound", KEY_NOT_FOUND_MESSAGE);
}

/// Asserts a 200 success envelope.
#[track_caller]
pub fn assert_success(answer: &Answer) {
    assert_eq!((answer.status, &answer.body["success"]), (200, &json!(true)), "{}", answer.body);
}

/// GetApiKey.
pub async fn get_key(client: &Client, key_id: i64) -> Answer {
    client.get(&format!("/modelstudio/apikeys/{key_id}")).await
}

/// The `apiKey` object of GetApiKey, which must succeed.
pub async fn key_as_seen_by(client: &Client, key_id: i64) -> Value {
    let answer = get_key(client, key_id).await;
    assert_success(&answer);
    answer.body["apiKey"].clone()
}

/// `totalCount` of ListApiKeys for `client`.
pub async fn key_count(client: &Client) -> u64 {
    let answer = client.get("/modelstudio/apikeys?maxResults=100").await;
    assert_success(&answer);
    answer.body["totalCount"].as_u64().expect("totalCount")
}

/// The ids ListApiKeys shows `client`, ascending.
pub async fn listed_key_ids(client: &Client) -> Vec<i64> {
    let answer = client.get("/modelstudio/apikeys?maxResults=100&order=ASC").await;
    assert_success(&answer);
    answer.body["apiKeys"].as_array().expect("apiKeys").iter().map(|key| key["apiKeyId"].as_i64().expect("apiKeyId")).collect()
}

/// CreateWorkspace; returns the new workspace id.
pub async fn create_workspace(client: &Client, name: &str) -> String {
    let answer = client.send("POST", &format!("/modelstudio/workspaces?workspaceName={name}"), "").await;
    assert_success(&answer);
    answer.body["workspace"]["workspaceId"].as_str().expect("workspaceId").to_string()
}

/// What the in-process registry says about a plaintext: the key id, or why it is refused.
pub fn authenticate(app: &TestApp, plaintext: &str, region: &str) -> Result<i64, AuthenticationFailure> {
    app.state.store().registry().authenticate(plaintext, region, app.state.shared.clock.now_seconds()).map(|key| key.key_id)
}
