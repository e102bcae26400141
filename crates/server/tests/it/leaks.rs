//! `POST /keygate/v1/leaks`: reported keys of the caller's account are disabled at once
//! (and refused by the next model call), other accounts' keys are `not_found` and keep
//! working, the plaintext is never echoed, and only the account and admins may report.

use keygate_core::access::{KeyVisibility, Role};
use keygate_core::keys::{expose, generate_key, KeyFormat};
use keygate_core::permissions::KeyAuth;
use keygate_core::region::LimitScope;
use keygate_store::{AuditContext, NewApiKey, QuotaRule};
use serde_json::{json, Value};

use crate::gateway_calls::{assert_refused_in_every_shape, assert_served_in_every_shape, Call, INVALID_API_KEY, KEY_DISABLED};
use crate::helpers::{spawn_app, Answer, Client, Credentials, TestApp};

const REGION: &str = "ap-southeast-1";

async fn report(client: &Client, keys: &[&str]) -> Answer {
    let Credentials::Session(token) = &client.credentials else { panic!("a session client") };
    let response = reqwest::Client::new()
        .post(format!("{}/keygate/v1/leaks", client.base))
        .header("x-acs-bearer-token", token)
        .json(&json!({"keys": keys}))
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    Answer { status, body: serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body ({status}): {text}")) }
}

/// A live key of a second account, made in the store directly; returns its plaintext.
async fn key_of_another_account(app: &TestApp) -> String {
    let store = app.state.store();
    let now = app.state.shared.clock.now_milliseconds();
    let (other, _) = store.ensure_account("other", "not-a-real-hash", now).await.unwrap();
    store.ensure_default_workspaces(other.account_id, &[REGION.to_string()], now).await.unwrap();
    let workspace = store.default_workspace(other.account_id, REGION).await.unwrap();
    let generated = generate_key(KeyFormat::Secure);
    let audit = AuditContext {
        account_id: other.account_id,
        actor: "other".into(),
        client_address: "test".into(),
        region: REGION.into(),
        credential: String::new(),
        at: now,
    };
    let new_key = NewApiKey {
        region: REGION.into(),
        workspace_id: workspace.workspace_id,
        creator_user_id: None,
        created_by: "other".into(),
        description: String::new(),
        format: KeyFormat::Secure,
        digest: generated.digest,
        masked_key: generated.masked.clone(),
        auth: KeyAuth::All,
        legacy_ciphertext: None,
        expires_at: None,
        limits: None,
    };
    store.create_api_key(&audit, new_key, QuotaRule { limit: 50, scope: LimitScope::Account }).await.unwrap();
    expose(&generated.plaintext).to_string()
}

fn statuses(answer: &Answer) -> Vec<String> {
    answer.body["results"].as_array().expect("results").iter().map(|result| result["status"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test]
async fn own_keys_are_disabled_at_once_and_others_are_not_found() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (first_id, first) = root.create_all_key().await;
    let (_, second) = root.create_all_key().await;
    let foreign = key_of_another_account(&app).await;
    let unknown = expose(&generate_key(KeyFormat::Secure).plaintext).to_string();
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &first)).await;

    let answer = report(&root, &[&first, &first, "sk-ws-not-a-key", &unknown, &foreign, &second]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(statuses(&answer), ["disabled", "disabled", "malformed", "not_found", "not_found", "disabled"]);
    assert_eq!(answer.body["disabledCount"], 2);
    let first_result = &answer.body["results"][0];
    assert_eq!(
        first_result,
        &json!({"maskedKey": keygate_core::keys::mask_key(&first), "status": "disabled", "apiKeyId": first_id, "region": REGION})
    );
    let foreign_result = &answer.body["results"][4];
    assert_eq!(foreign_result.as_object().unwrap().keys().collect::<Vec<_>>(), ["maskedKey", "status"], "nothing about the other account");
    let text = answer.body.to_string();
    for plaintext in [&first, &second, &foreign, &unknown] {
        assert!(!text.contains(plaintext.as_str()), "the answer echoes a plaintext: {text}");
    }

    assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &first), INVALID_API_KEY, KEY_DISABLED).await;
    assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &second), INVALID_API_KEY, KEY_DISABLED).await;
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &foreign)).await;

    let again = report(&root, &[&first]).await;
    assert_eq!((statuses(&again), &again.body["disabledCount"]), (vec!["already_disabled".to_string()], &json!(0)));

    let record = app.state.store().get_api_key(1, REGION, first_id, KeyVisibility::WholeAccount).await.unwrap();
    assert!(record.disabled);
    let audit = app.state.store().list_audit(1, 100, None).await.unwrap();
    let target = format!("apiKey:{first_id}");
    assert!(audit.iter().any(|entry| entry.action == "ApiKey.Disable" && entry.target == target && entry.actor == "root"));
    assert!(audit.iter().any(|entry| entry.action == "ApiKey.LeakReport" && entry.target == target && entry.detail == "status=disabled"));
    let serialized = format!("{audit:?}");
    assert!(!serialized.contains(&first), "the audit log holds a plaintext");
}

#[tokio::test]
async fn an_admin_may_report_a_colleagues_key_and_a_key_manager_may_not_report_at_all() {
    let app = spawn_app().await;
    app.create_user("alice", Role::KeyManager).await;
    app.create_user("ada", Role::Admin).await;
    let alice = app.login(Some("alice")).await;
    let (_, alices_key) = alice.create_all_key().await;

    let refused = report(&alice, &[&alices_key]).await;
    assert_eq!((refused.status, refused.code()), (403, "Forbidden"), "{}", refused.body);
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &alices_key)).await;

    let ada = app.login(Some("ada")).await;
    let answer = report(&ada, &[&alices_key]).await;
    assert_eq!(statuses(&answer), ["disabled"], "{}", answer.body);
    assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &alices_key), INVALID_API_KEY, KEY_DISABLED).await;
}

#[tokio::test]
async fn a_key_of_a_region_without_disable_is_reported_as_such_and_bad_bodies_are_refused() {
    let app = spawn_app().await;
    let us_root = app.login_at(app.us_address, None).await;
    let (_, classic) = us_root.create_all_key().await;
    assert!(classic.starts_with("sk-") && !classic.starts_with("sk-ws-"), "{classic}");
    // Reported on the other region's listener: the key's own region decides.
    let root = app.login(None).await;
    let answer = report(&root, &[&classic]).await;
    assert_eq!(statuses(&answer), ["unsupported_in_region"], "{}", answer.body);
    assert_eq!(answer.body["results"][0]["region"], "us-east-1");

    let too_many: Vec<String> = (0..1001).map(|index| format!("sk-{index}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let refused = report(&root, &too_many).await;
    assert_eq!((refused.status, refused.code()), (400, "InvalidParameter"));
    let Credentials::Session(token) = &root.credentials else { unreachable!() };
    let wrong_shape: Value = reqwest::Client::new()
        .post(format!("{}/keygate/v1/leaks", root.base))
        .header("x-acs-bearer-token", token)
        .json(&json!({"key": "sk-ws-x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wrong_shape["code"], "InvalidParameter");
}
