//! The docs/CONTRACT.md#data-plane-errors table, row by row, in all three protocol shapes (native,
//! OpenAI-compatible, Anthropic-compatible), as whole bodies: each test builds a table of
//! cases and `check_all` makes every call and reports every mismatch, naming the case.
//! Application rows exist only on the native path (`/api/v1/apps/{id}/completion`).

use keygate_core::access::{Role, UserStatus};
use keygate_core::ids::AppId;
use keygate_core::keys::{expose, generate_key, KeyFormat};
use keygate_server::settings::UpstreamSettings;
use serde_json::json;

use crate::gateway_calls::{
    assert_demo_answer, assert_management_success, assert_refused, assert_served_in_every_shape, check_all, closed_loopback_port,
    create_key, create_workspace, key_operation, mint_token, model_not_granted, model_not_in_key_scope, Call, Case, Shape, Target,
    ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED, APP_ACCESS_DENIED, APP_NOT_ALLOWED, BAD_REQUEST, CREATOR_NOT_ACTIVE, INVALID_API_KEY,
    INVALID_KEY, KEY_DISABLED, MODEL_NOT_ALLOWED, MODEL_NOT_FOUND, NOT_JSON, NO_KEY, NO_MODEL, TEMPORARY_KEY_EXPIRED, THROTTLED,
    TOO_MANY_FAILURES, UNKNOWN_MODEL, UPSTREAM_DOWN, UPSTREAM_UNREACHABLE, WORKSPACE_HEADER_MISMATCH, WORKSPACE_MISMATCH,
};
use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// The largest model-call body the table's server accepts.
const BODY_LIMIT: usize = 1024;
const UNREACHABLE_MODEL: &str = "unreachable-model";

/// A server whose throttle never gets in the way, with a small body limit and one upstream
/// that nothing listens on.
async fn table_app() -> TestApp {
    let base = format!("http://127.0.0.1:{}", closed_loopback_port());
    spawn_app_with(move |settings| {
        settings.failed_authentications_per_minute = 1_000_000;
        settings.body_limit_bytes = BODY_LIMIT;
        settings.upstreams = vec![UpstreamSettings {
            name: "nowhere".into(),
            openai_base_url: Some(format!("{base}/v1")),
            dashscope_base_url: Some(format!("{base}/api/v1")),
            anthropic_base_url: Some(format!("{base}/anthropic")),
            responses_base_url: None,
            api_key_env: None,
            models: vec![UNREACHABLE_MODEL.into()],
            apps: Vec::new(),
            ..UpstreamSettings::default()
        }];
    })
    .await
}

/// The same key with one character of its checksum changed.
fn with_bad_checksum(key: &str) -> String {
    let mut characters: Vec<char> = key.chars().collect();
    let last = characters.len() - 1;
    characters[last] = if characters[last] == 'A' { 'B' } else { 'A' };
    characters.into_iter().collect()
}

#[tokio::test]
async fn every_authentication_failure_answers_401_in_every_shape() {
    let app = table_app().await;
    let (http, here) = (&app.http, app.address);
    let root = app.login(None).await;
    let (_, working) = create_key(&root, "", "").await;
    assert_served_in_every_shape(http, &Call::echo(here, &working)).await;

    let (deleted_id, deleted) = create_key(&root, "", "").await;
    key_operation(&root, deleted_id, "delete").await;
    let (disabled_id, disabled) = create_key(&root, "", "").await;
    key_operation(&root, disabled_id, "disable").await;
    let (_, virginia) = create_key(&app.login_at(app.us_address, None).await, "", "").await;
    assert_served_in_every_shape(http, &Call::echo(app.us_address, &virginia)).await;

    // A RAM user that is disabled, and one removed from the key's workspace.
    let workspace = create_workspace(&root, "table").await;
    app.create_user("kim", Role::KeyManager).await;
    app.create_user("lee", Role::KeyManager).await;
    app.state.store().add_workspace_member(&app.root_audit(), &workspace, "lee").await.unwrap();
    let (_, of_disabled_user) = create_key(&app.login(Some("kim")).await, "", "").await;
    let (_, of_removed_member) = create_key(&app.login(Some("lee")).await, &format!("workspaceId={workspace}"), "").await;
    app.state.store().set_user_status(&app.root_audit(), "kim", UserStatus::Disabled).await.unwrap();
    app.state.store().remove_workspace_member(&app.root_audit(), &workspace, "lee").await.unwrap();

    let (expired, _) = mint_token(http, here, &working, "expire_in_seconds=1").await;
    app.state.shared.clock.advance_seconds(2);

    let never_issued = expose(&generate_key(KeyFormat::Secure).plaintext).to_string();
    let call = |key: &str| Call::echo(here, key);
    let no_key = Call { key: None, ..call("") };
    let cases = [
        Case::new("no key", no_key, INVALID_API_KEY, NO_KEY),
        Case::new("unknown key (well-formed, never issued)", call(&never_issued), INVALID_API_KEY, INVALID_KEY),
        Case::new("unknown classic-format key", call(&format!("sk-{}", "0".repeat(32))), INVALID_API_KEY, INVALID_KEY),
        Case::new("malformed: secure prefix, short body", call("sk-ws-nope"), INVALID_API_KEY, INVALID_KEY),
        Case::new("malformed: no known prefix", call("not-a-keygate-key"), INVALID_API_KEY, INVALID_KEY),
        Case::new("malformed temporary key", call("st-notatoken"), INVALID_API_KEY, INVALID_KEY),
        Case::new("bad checksum", call(&with_bad_checksum(&working)), INVALID_API_KEY, INVALID_KEY),
        Case::new("deleted key", call(&deleted), INVALID_API_KEY, INVALID_KEY),
        Case::new("key of another region (us-east-1 on ap-southeast-1)", call(&virginia), INVALID_API_KEY, INVALID_KEY),
        Case::new("expired temporary key", call(&expired), INVALID_API_KEY, TEMPORARY_KEY_EXPIRED),
        Case::new("disabled key", call(&disabled), INVALID_API_KEY, KEY_DISABLED),
        Case::new("creator disabled", call(&of_disabled_user), INVALID_API_KEY, CREATOR_NOT_ACTIVE),
        Case::new("creator removed from the workspace", call(&of_removed_member), INVALID_API_KEY, CREATOR_NOT_ACTIVE),
    ];
    check_all(http, &cases).await;
    assert!(KEY_DISABLED.contains("disabled") && TEMPORARY_KEY_EXPIRED.contains("expired"), "the 401 says why to a holder of the secret");
}

#[tokio::test]
async fn every_authorization_failure_answers_403_or_404_in_every_shape() {
    let app = table_app().await;
    let (http, here) = (&app.http, app.address);
    let root = app.login(None).await;
    let created = root.create_key("", "").await;
    assert_management_success(&created);
    let working = created.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
    let default_workspace = created.body["apiKey"]["workspaceId"].as_str().unwrap().to_string();
    let sub_workspace = create_workspace(&root, "scoped").await;

    let (_, whitelisted) = create_key(&root, "", "auth.type=Custom&auth.accessIps.1=10.0.0.0%2F8").await;
    let (_, in_sub_workspace) = create_key(&root, &format!("workspaceId={sub_workspace}"), "").await;
    let (_, embed_only) = create_key(
        &root,
        "",
        "auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1=demo-embed",
    )
    .await;

    let (first_app, second_app, other_workspace_app) = (AppId::generate(), AppId::generate(), AppId::generate());
    let store = app.state.store();
    store.create_application(&app.root_audit(), &default_workspace, first_app.as_str(), "first").await.unwrap();
    store.create_application(&app.root_audit(), &default_workspace, second_app.as_str(), "second").await.unwrap();
    store.create_application(&app.root_audit(), &sub_workspace, other_workspace_app.as_str(), "elsewhere").await.unwrap();
    let scope =
        format!("auth.type=Custom&auth.appAccessScope.allowAllApps=false&auth.appAccessScope.accessibleApps.1={}", first_app.as_str());
    let (_, first_app_only) = create_key(&root, "", &scope).await;

    // What the refusals are measured against: these calls are served.
    assert_served_in_every_shape(http, &Call::echo(here, &working).with_header("X-DashScope-WorkSpace", &default_workspace)).await;
    assert_served_in_every_shape(http, &Call::model(here, &embed_only, "demo-embed")).await;
    let app_call = |key: &str, app_id: &AppId| Call { target: Target::App(app_id.as_str().to_string()), ..Call::echo(here, key) };
    for (key, app_id) in [(&working, &first_app), (&working, &second_app), (&first_app_only, &first_app)] {
        assert_demo_answer(&app_call(key, app_id).send(http, Shape::Native).await, Shape::Native);
    }

    let unknown_app = AppId::generate();
    let cases = [
        Case::new("address not whitelisted", Call::echo(here, &whitelisted), ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED),
        Case::new(
            "workspace header names another workspace",
            Call::echo(here, &working).with_header("X-DashScope-WorkSpace", &sub_workspace),
            WORKSPACE_MISMATCH,
            WORKSPACE_HEADER_MISMATCH,
        ),
        Case::new(
            "model not granted to the key's workspace",
            Call::echo(here, &in_sub_workspace),
            MODEL_NOT_ALLOWED,
            &model_not_granted("demo-echo", &sub_workspace),
        ),
        Case::new(
            "model outside the key's model scope",
            Call::echo(here, &embed_only),
            MODEL_NOT_ALLOWED,
            &model_not_in_key_scope("demo-echo"),
        ),
        Case::native_only("app of another workspace", app_call(&working, &other_workspace_app), APP_NOT_ALLOWED, APP_ACCESS_DENIED),
        Case::native_only("app that does not exist", app_call(&working, &unknown_app), APP_NOT_ALLOWED, APP_ACCESS_DENIED),
        Case::native_only("app outside the key's app scope", app_call(&first_app_only, &second_app), APP_NOT_ALLOWED, APP_ACCESS_DENIED),
        Case::new("unknown model", Call::model(here, &working, "no-such-model"), MODEL_NOT_FOUND, UNKNOWN_MODEL),
        Case::new(
            "unknown model, sub-workspace key",
            Call::model(here, &in_sub_workspace, "no-such-model"),
            MODEL_NOT_FOUND,
            UNKNOWN_MODEL,
        ),
    ];
    check_all(http, &cases).await;
}

#[tokio::test]
async fn bodies_that_are_not_json_too_large_or_without_a_model_answer_400_in_every_shape() {
    let app = table_app().await;
    let root = app.login(None).await;
    let (_, working) = create_key(&root, "", "").await;
    let with_body = |body: String| Call { target: Target::RawBody(body), ..Call::echo(app.address, &working) };
    let too_large = json!({"model": "demo-echo", "input": {"prompt": "x".repeat(2 * BODY_LIMIT)}}).to_string();
    let cases = [
        Case::new("body not JSON", with_body("model=demo-echo".into()), BAD_REQUEST, NOT_JSON),
        Case::new("body empty", with_body(String::new()), BAD_REQUEST, NOT_JSON),
        Case::new("body a JSON array", with_body(r#"[{"model": "demo-echo"}]"#.into()), BAD_REQUEST, NOT_JSON),
        Case::new(
            "body over the limit",
            with_body(too_large),
            BAD_REQUEST,
            &format!("The request body is larger than the limit of {BODY_LIMIT} bytes."),
        ),
        Case::new("no model", with_body(r#"{"messages": [{"role": "user", "content": "hi"}]}"#.into()), BAD_REQUEST, NO_MODEL),
        Case::new("model empty", with_body(r#"{"model": ""}"#.into()), BAD_REQUEST, NO_MODEL),
        Case::new("model not a string", with_body(r#"{"model": 7}"#.into()), BAD_REQUEST, NO_MODEL),
    ];
    check_all(&app.http, &cases).await;
}

#[tokio::test]
async fn an_unreachable_upstream_answers_502_in_every_shape() {
    let app = table_app().await;
    let (_, working) = create_key(&app.login(None).await, "", "").await;
    let cases =
        [Case::new("upstream unreachable", Call::model(app.address, &working, UNREACHABLE_MODEL), UPSTREAM_UNREACHABLE, UPSTREAM_DOWN)];
    check_all(&app.http, &cases).await;
}

#[tokio::test]
async fn too_many_failed_authentications_answer_429_but_a_valid_key_still_works() {
    const LIMIT: u32 = 3;
    let app = spawn_app_with(|settings| settings.failed_authentications_per_minute = LIMIT).await;
    let (http, here) = (&app.http, app.address);
    let (_, working) = create_key(&app.login(None).await, "", "").await;
    // Start at the beginning of a one-minute window, so that the failures share it.
    let now = app.state.shared.clock.now_seconds();
    app.state.shared.clock.advance_seconds(60 - now.rem_euclid(60));

    let wrong = Call::echo(here, "sk-ws-nope");
    for attempt in 1..=LIMIT {
        let reply = wrong.send(http, Shape::Native).await;
        assert_refused(&reply, Shape::Native, INVALID_API_KEY, INVALID_KEY);
        assert!(reply.header("retry-after").is_none(), "failure {attempt} of {LIMIT} is not throttled yet");
    }
    let no_key = Call { key: None, ..wrong.clone() };
    let cases = [
        Case::new("a wrong key over the limit", wrong.clone(), THROTTLED, TOO_MANY_FAILURES),
        Case::new("no key over the limit", no_key, THROTTLED, TOO_MANY_FAILURES),
    ];
    check_all(http, &cases).await;

    // A valid key from the same address is never throttled by others' failures ...
    assert_served_in_every_shape(http, &Call::echo(here, &working)).await;
    let (token, _) = mint_token(http, here, &working, "").await;
    assert_served_in_every_shape(http, &Call::echo(here, &token)).await;
    // ... and the address may fail again in the next window.
    app.state.shared.clock.advance_seconds(61);
    assert_refused(&wrong.send(http, Shape::OpenAi).await, Shape::OpenAi, INVALID_API_KEY, INVALID_KEY);
}

#[tokio::test]
async fn failed_authentications_are_counted_per_client_address_and_per_ipv6_slash_64() {
    const LIMIT: u32 = 2;
    let app = spawn_app_with(|settings| {
        settings.failed_authentications_per_minute = LIMIT;
        settings.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let now = app.state.shared.clock.now_seconds();
    app.state.shared.clock.advance_seconds(60 - now.rem_euclid(60));
    let wrong_key_from = |address: &str| Call::echo(app.address, "sk-ws-nope").with_header("X-Forwarded-For", address);
    let send = |address: &'static str| {
        let call = wrong_key_from(address);
        let http = app.http.clone();
        async move { call.send(&http, Shape::Native).await }
    };

    for (address, neighbour, other) in
        [("192.0.2.1", "192.0.2.1", "192.0.2.2"), ("2001:db8:0:1::1", "2001:db8:0:1::ffff", "2001:db8:0:2::1")]
    {
        for _ in 0..LIMIT {
            assert_refused(&send(address).await, Shape::Native, INVALID_API_KEY, INVALID_KEY);
        }
        assert_refused(&send(neighbour).await, Shape::Native, THROTTLED, TOO_MANY_FAILURES);
        assert_refused(&send(other).await, Shape::Native, INVALID_API_KEY, INVALID_KEY);
    }
}

#[tokio::test]
async fn the_first_failing_check_decides_the_error() {
    let app = table_app().await;
    let (http, here) = (&app.http, app.address);
    let root = app.login(None).await;
    let (_, working) = create_key(&root, "", "").await;
    let (disabled_id, disabled_outside_whitelist) = create_key(&root, "", "auth.type=Custom&auth.accessIps.1=10.0.0.0%2F8").await;
    key_operation(&root, disabled_id, "disable").await;
    let (_, outside_whitelist) = create_key(&root, "", "auth.type=Custom&auth.accessIps.1=10.0.0.0%2F8").await;
    let other_workspace = create_workspace(&root, "elsewhere").await;

    let unknown_model = |key: &str| Call::model(here, key, "no-such-model").with_header("X-DashScope-WorkSpace", &other_workspace);
    let not_json = |key: &str| Call { target: Target::RawBody("not json".into()), ..unknown_model(key) };
    let cases = [
        Case::new("no key, and everything else wrong", Call { key: None, ..not_json("") }, INVALID_API_KEY, NO_KEY),
        Case::new("malformed key before a bad body", not_json("sk-ws-nope"), INVALID_API_KEY, INVALID_KEY),
        Case::new("disabled before the whitelist", unknown_model(&disabled_outside_whitelist), INVALID_API_KEY, KEY_DISABLED),
        Case::new("whitelist before the workspace header", unknown_model(&outside_whitelist), ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED),
        Case::new("whitelist before the body", not_json(&outside_whitelist), ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED),
        Case::new("workspace header before the model", unknown_model(&working), WORKSPACE_MISMATCH, WORKSPACE_HEADER_MISMATCH),
        Case::new("workspace header before the body", not_json(&working), WORKSPACE_MISMATCH, WORKSPACE_HEADER_MISMATCH),
    ];
    check_all(http, &cases).await;
}

#[tokio::test]
async fn the_key_is_read_from_bearer_everywhere_and_from_x_api_key_on_the_anthropic_path() {
    let app = spawn_app().await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let keyless = Call { key: None, ..Call::echo(app.address, &key) };
    // Claude Code's ANTHROPIC_AUTH_TOKEN: a Bearer on the Anthropic path.
    let as_bearer = keyless.clone().with_header("authorization", &format!("Bearer {key}"));
    assert_demo_answer(&as_bearer.send(&app.http, Shape::Anthropic).await, Shape::Anthropic);
    // The OpenAI-compatible path reads only Authorization.
    let as_x_api_key = keyless.with_header("x-api-key", &key);
    assert_refused(&as_x_api_key.send(&app.http, Shape::OpenAi).await, Shape::OpenAi, INVALID_API_KEY, NO_KEY);
}
