//! Bad input to the Model Studio key operations: each answers 400 `InvalidParameter` with a
//! message that names the problem, and changes nothing (the number of keys and an existing
//! key stay as they were). A missing key answers a JSON 404, DELETE included.

use serde_json::Value;

use crate::expectations::{assert_error, assert_key_not_found, key_as_seen_by, key_count};
use crate::helpers::{spawn_app, Answer, Client, Credentials, TestApp};

/// `{id}` in a path stands for the fixture's existing key.
const KEY_PATH: &str = "/modelstudio/apikeys/{id}";

/// A server with one key of every part that an edit could change.
struct Fixture {
    app: TestApp,
    root: Client,
    key_id: i64,
}

impl Fixture {
    async fn new() -> Fixture {
        let app = spawn_app().await;
        let root = app.login(None).await;
        let created = root
            .create_key(
                "description=original",
                "auth.type=Custom&auth.accessIps.1=10.0.0.0%2F8&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1=qwen-plus",
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.body);
        let key_id = created.body["apiKey"]["apiKeyId"].as_i64().unwrap();
        Fixture { app, root, key_id }
    }

    /// Sends the request (a form body unless `content_type` says otherwise) and checks the
    /// 400 and that nothing changed.
    async fn check(&self, method: &str, path: &str, body: &str, content_type: Option<&str>, message: &str) {
        let path = path.replace("{id}", &self.key_id.to_string());
        let count_before = key_count(&self.root).await;
        let key_before = key_as_seen_by(&self.root, self.key_id).await;
        let answer = match content_type {
            None => self.root.send(method, &path, body).await,
            Some(content_type) => self.send_with_content_type(method, &path, content_type, body).await,
        };
        assert_error(&answer, 400, "InvalidParameter", message);
        assert_eq!(key_count(&self.root).await, count_before, "{method} {path}: the number of keys changed");
        assert_eq!(key_as_seen_by(&self.root, self.key_id).await, key_before, "{method} {path}: the existing key changed");
    }

    /// The same form body refused by CreateApiKey and by UpdateApiKey.
    async fn check_create_and_update(&self, body: &str, message: &str) {
        self.check("POST", "/modelstudio/apikeys", body, None, message).await;
        self.check("PUT", KEY_PATH, body, None, message).await;
    }

    async fn send_with_content_type(&self, method: &str, path: &str, content_type: &str, body: &str) -> Answer {
        let Credentials::Session(token) = &self.root.credentials else { panic!("a session client") };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .app
            .http
            .request(method, format!("{}{path}", self.root.base))
            .header("x-acs-bearer-token", token)
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        Answer { status, body: response.json::<Value>().await.expect("a JSON body") }
    }
}

#[tokio::test]
async fn a_description_of_201_characters_is_refused_on_create_and_on_update() {
    let fixture = Fixture::new().await;
    let query = format!("?description={}", "x".repeat(201));
    let message = "description is too long: at most 200 characters, got 201";
    fixture.check("POST", &format!("/modelstudio/apikeys{query}"), "", None, message).await;
    fixture.check("PUT", &format!("{KEY_PATH}{query}"), "", None, message).await;
}

#[tokio::test]
async fn twenty_one_ip_entries_are_refused() {
    let fixture = Fixture::new().await;
    let entries: String = (1..=21).map(|index| format!("&auth.accessIps.{index}=10.0.0.{index}")).collect();
    fixture
        .check_create_and_update(&format!("auth.type=Custom{entries}"), "auth.accessIps: at most 20 IP entries are allowed, got 21.")
        .await;
}

#[tokio::test]
async fn a_prefix_longer_than_the_address_is_refused() {
    let fixture = Fixture::new().await;
    fixture
        .check_create_and_update(
            "auth.type=Custom&auth.accessIps.1=10.0.0.0%2F33",
            "auth.accessIps: '10.0.0.0/33' has a prefix length beyond the address size.",
        )
        .await;
}

#[tokio::test]
async fn an_ipv6_address_with_a_zone_index_is_refused() {
    let fixture = Fixture::new().await;
    fixture
        .check_create_and_update(
            "auth.type=Custom&auth.accessIps.1=fe80%3A%3A1%25eth0",
            "auth.accessIps: 'fe80::1%eth0' has a zone index (%...), which cannot be whitelisted.",
        )
        .await;
}

#[tokio::test]
async fn a_workspace_that_does_not_exist_here_is_refused() {
    let fixture = Fixture::new().await;
    fixture
        .check(
            "POST",
            "/modelstudio/apikeys?workspaceId=llm-0123456789abcdef",
            "",
            None,
            "workspaceId 'llm-0123456789abcdef' is not a workspace of this account in region ap-southeast-1.",
        )
        .await;
    // A workspace of another region is not one of this region.
    let virginia = fixture.app.state.store().default_workspace(1, "us-east-1").await.unwrap().workspace_id;
    let message = format!("workspaceId '{virginia}' is not a workspace of this account in region ap-southeast-1.");
    fixture.check("POST", &format!("/modelstudio/apikeys?workspaceId={virginia}"), "", None, &message).await;
    fixture
        .check(
            "POST",
            "/modelstudio/apikeys?workspaceId=llm-ABC",
            "",
            None,
            "workspaceId 'llm-ABC' is malformed: 'llm-' followed by 16 characters a-z or 0-9",
        )
        .await;
}

#[tokio::test]
async fn an_unknown_model_in_the_scope_is_refused() {
    let fixture = Fixture::new().await;
    fixture
        .check_create_and_update(
            "auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1=qwen-plus&auth.modelAccessScope.accessibleModels.2=gpt-nonexistent",
            "auth.modelAccessScope.accessibleModels: unknown model 'gpt-nonexistent'.",
        )
        .await;
}

#[tokio::test]
async fn a_malformed_form_body_is_refused() {
    let fixture = Fixture::new().await;
    fixture
        .check_create_and_update(
            "auth.type=Custom&auth.accessIps.1=%zz",
            "The form body is malformed at field 2: expected name=value with valid percent-encoding and UTF-8.",
        )
        .await;
}

#[tokio::test]
async fn an_auth_type_other_than_all_or_custom_is_refused() {
    let fixture = Fixture::new().await;
    fixture.check_create_and_update("auth.type=Sometimes", "auth.type must be All or Custom, got 'Sometimes'.").await;
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_refused() {
    let fixture = Fixture::new().await;
    let json_body = r#"{"auth":{"type":"All"}}"#;
    let message = "The body must be application/x-www-form-urlencoded.";
    fixture.check("POST", "/modelstudio/apikeys", json_body, Some("application/json"), message).await;
    fixture.check("PUT", KEY_PATH, json_body, Some("application/json"), message).await;
}

#[tokio::test]
async fn max_results_outside_1_to_100_is_refused() {
    let fixture = Fixture::new().await;
    for value in ["0", "101"] {
        let message = format!("maxResults must be an integer from 1 to 100, got '{value}'.");
        fixture.check("GET", &format!("/modelstudio/apikeys?maxResults={value}"), "", None, &message).await;
    }
}

#[tokio::test]
async fn an_unknown_order_or_sort_key_is_refused() {
    let fixture = Fixture::new().await;
    fixture.check("GET", "/modelstudio/apikeys?order=sideways", "", None, "order must be ASC or DESC, got 'sideways'.").await;
    fixture.check("GET", "/modelstudio/apikeys?orderBy=keyName", "", None, "orderBy must be apiKeyId or gmtCreate, got 'keyName'.").await;
}

#[tokio::test]
async fn deleting_a_missing_key_answers_a_json_404() {
    let fixture = Fixture::new().await;
    for missing in ["999999", "not-a-number"] {
        assert_key_not_found(&fixture.root.send("DELETE", &format!("/modelstudio/apikeys/{missing}"), "").await);
    }
    assert_eq!(key_count(&fixture.root).await, 1);
}
