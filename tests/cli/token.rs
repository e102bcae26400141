//! `keygate token`: a temporary key minted from `DASHSCOPE_API_KEY` works at the gateway,
//! inherits its parent's life, and the permanent key is never taken as an argument.

use crate::harness::{chat_status, TestEnv};

#[test]
fn a_minted_temporary_key_calls_models_until_its_parent_is_disabled() {
    let mut environment = TestEnv::new();
    environment.start_server(&[]);
    environment.login_root().success();
    let created = environment.run(&["keys", "create", "--description", "token parent", "--json"]).success();
    let parent = created.json().pointer("/apiKey/apiKeyValue").and_then(|value| value.as_str()).expect("plaintext").to_string();
    let key_id = created.json().pointer("/apiKey/apiKeyId").and_then(|value| value.as_i64()).expect("id").to_string();

    let minted = environment.run_with(&["token", "--ttl", "120", "--json"], "", &[("DASHSCOPE_API_KEY", &parent)]).success();
    let token = minted.json()["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("st-"), "{token}");
    assert!(minted.json()["expires_at"].as_i64().is_some());
    assert_eq!(chat_status(&environment, &token), 200);

    environment.run(&["keys", "disable", &key_id]).success();
    assert_eq!(chat_status(&environment, &token), 401);
}

#[test]
fn without_a_key_in_the_environment_it_says_how_to_set_one() {
    let mut environment = TestEnv::new();
    environment.start_server(&[]);
    let output = environment.run_with(&["token"], "", &[("DASHSCOPE_API_KEY", "")]).failure();
    assert!(output.stderr.contains("DASHSCOPE_API_KEY is not set"), "{}", output.stderr);
    let refused = environment.run_with(&["token"], "", &[("DASHSCOPE_API_KEY", "sk-ws-notarealkey")]).failure();
    assert!(refused.stderr.contains("InvalidApiKey"), "{}", refused.stderr);
}

#[test]
fn the_lifetime_is_bounded_before_anything_is_sent() {
    let environment = TestEnv::new();
    let output = environment.run_with(&["token", "--ttl", "1801"], "", &[("DASHSCOPE_API_KEY", "sk-ws-x")]);
    // A usage error: clap's exit code 2, before any request.
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(output.stderr.contains("1801 is not in 1..=1800"), "{}", output.stderr);
}
