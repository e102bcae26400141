//! `POST /keygate/v1/keys/import` on both stores: all or nothing (a bad line imports
//! nothing and is named), `skipBad`, repeats within the batch and keys already in keygate,
//! the region's limit for the whole batch, imported keys working at the gateway, their
//! plaintext viewable by the owner and the account only (404 for other RAM users), and no
//! plaintext in answers, refusals or audit rows.

use keygate_core::access::Role;
use keygate_core::keys::{expose, generate_key, mask_key, KeyFormat};
use serde_json::{json, Value};

use crate::gateway_calls::{assert_demo_answer, assert_served_in_every_shape, create_workspace, Call, Shape};
use crate::helpers::{Answer, Client, Credentials};

const REGION: &str = "ap-southeast-1";

/// A key of another deployment: classic `sk-` + 32 hex, or another `sk-` shape.
fn old_key(index: usize) -> String {
    if index.is_multiple_of(2) {
        expose(&generate_key(KeyFormat::Classic).plaintext).to_string()
    } else {
        let random = expose(&generate_key(KeyFormat::Classic).plaintext).trim_start_matches("sk-").to_string();
        format!("sk-legacy_{index}-{random}")
    }
}

fn old_keys(count: usize) -> Vec<String> {
    (0..count).map(old_key).collect()
}

/// `{"line": N, "key": ...}` for each key, lines from 1.
fn entries(keys: &[String]) -> Vec<Value> {
    keys.iter().enumerate().map(|(index, key)| json!({"line": index + 1, "key": key})).collect()
}

async fn import(client: &Client, body: Value) -> Answer {
    let Credentials::Session(token) = &client.credentials else { panic!("a session client") };
    let response = reqwest::Client::new()
        .post(format!("{}/keygate/v1/keys/import", client.base))
        .header("x-acs-bearer-token", token)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    Answer { status, body: serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body ({status}): {text}")) }
}

/// How many keys the caller sees in the region of `client`.
async fn key_count(client: &Client) -> u64 {
    let answer = client.get("/modelstudio/apikeys?maxResults=1").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["totalCount"].as_u64().expect("totalCount")
}

#[track_caller]
fn assert_no_plaintext(answer: &Answer, keys: &[String]) {
    let text = answer.body.to_string();
    for key in keys {
        assert!(!text.contains(key.as_str()), "the answer holds a plaintext: {text}");
    }
}

#[track_caller]
fn bad_lines(answer: &Answer) -> Vec<(u64, String)> {
    answer.body["badLines"]
        .as_array()
        .unwrap_or_else(|| panic!("no badLines: {}", answer.body))
        .iter()
        .map(|bad| (bad["line"].as_u64().unwrap(), bad["reason"].as_str().unwrap().to_string()))
        .collect()
}

on_both_stores! {
    async fn a_bad_line_imports_nothing_and_is_named(app: TestApp) {
        let root = app.login(None).await;
        let mut keys = old_keys(4);
        keys[2] = "sk-not a key".to_string();
        let answer = import(&root, json!({"keys": entries(&keys)})).await;
        assert_eq!((answer.status, answer.code()), (400, "InvalidParameter"), "{}", answer.body);
        assert_eq!(
            bad_lines(&answer),
            [(3, "not a key keygate can import (sk- and 8-200 characters A-Z, a-z, 0-9, '-' or '_')".to_string())]
        );
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.starts_with("Nothing was imported: 1 bad line: line 3: "), "{message}");
        assert_no_plaintext(&answer, &keys);
        assert_eq!(key_count(&root).await, 0, "nothing was imported");
        for key in [&keys[0], &keys[3]] {
            assert_eq!(Call::echo(app.address, key).send(&app.http, Shape::OpenAi).await.status, 401);
        }
    }

    async fn skip_bad_imports_the_good_lines_and_reports_the_others(app: TestApp) {
        let root = app.login(None).await;
        let keys = old_keys(3);
        let body = json!({"keys": [
            {"line": 10, "key": keys[0], "description": "first"},
            {"line": 11, "key": "sk-ws-not-importable"},
            {"line": 12, "key": keys[1], "description": "x".repeat(201)},
            {"line": 14, "key": keys[2]},
        ], "skipBad": true});
        let answer = import(&root, body).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!((answer.body["importedCount"].as_u64(), answer.body["skippedCount"].as_u64()), (Some(2), Some(2)));
        assert_eq!(
            bad_lines(&answer),
            [
                (11, "sk-ws- and sk-sp- keys are issued by keygate and cannot be imported".to_string()),
                (12, "the description has 201 characters; at most 200".to_string()),
            ]
        );
        let imported = answer.body["keys"].as_array().unwrap();
        assert_eq!(imported.iter().map(|key| key["line"].as_u64().unwrap()).collect::<Vec<_>>(), [10, 14]);
        assert_eq!(imported[0]["maskedKey"], json!(mask_key(&keys[0])));
        assert_eq!((answer.body["region"].as_str(), answer.body["workspaceId"].as_str().map(|id| id.starts_with("llm-"))), (Some(REGION), Some(true)));
        assert_no_plaintext(&answer, &keys);
        assert_eq!(key_count(&root).await, 2);
        let first = imported[0]["apiKeyId"].as_i64().unwrap();
        let got = root.get(&format!("/modelstudio/apikeys/{first}")).await;
        assert_eq!(got.body["apiKey"]["description"], "first");

        // Every line bad: refused even with skipBad.
        let answer = import(&root, json!({"keys": [{"key": "nope"}], "skipBad": true})).await;
        assert_eq!((answer.status, answer.code()), (400, "InvalidParameter"), "{}", answer.body);
        assert_eq!(bad_lines(&answer), [(1, "not an sk- key".to_string())]);
    }

    async fn repeats_and_keys_already_in_keygate_are_named(app: TestApp) {
        let root = app.login(None).await;
        let keys = old_keys(3);
        assert_eq!(import(&root, json!({"keys": entries(&keys[..1])})).await.status, 200);
        // A classic key made by keygate in US (Virginia) is importable in shape, but taken.
        let us_root = app.login_at(app.us_address, None).await;
        let (_, classic) = us_root.create_all_key().await;
        assert!(!classic.starts_with("sk-ws-"), "{classic}");
        let body = json!({"keys": [
            {"line": 1, "key": keys[0]},
            {"line": 2, "key": keys[1]},
            {"line": 3, "key": classic},
            {"line": 5, "key": format!("  {}  ", keys[1])},
            {"line": 6, "key": keys[2]},
        ]});
        let answer = import(&root, body).await;
        assert_eq!((answer.status, answer.code()), (400, "InvalidParameter"), "{}", answer.body);
        assert_eq!(
            bad_lines(&answer),
            [
                (1, format!("{} is already in keygate", mask_key(&keys[0]))),
                (3, format!("{} is already in keygate", mask_key(&classic))),
                (5, format!("{} repeats line 2", mask_key(&keys[1]))),
            ]
        );
        assert_no_plaintext(&answer, &[keys[0].clone(), keys[1].clone(), classic.clone()]);
        assert_eq!(key_count(&root).await, 1, "only the first import");
    }

    async fn an_import_past_the_limit_imports_nothing_and_says_so(app: TestApp) {
        let root = app.login(None).await;
        let first = old_keys(45);
        let answer = import(&root, json!({"keys": entries(&first)})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(key_count(&root).await, 45);
        let more = old_keys(10);
        let answer = import(&root, json!({"keys": entries(&more)})).await;
        assert_eq!((answer.status, answer.code()), (400, "QuotaExceeded.ApiKey"), "{}", answer.body);
        assert_eq!(
            answer.body["message"],
            "Nothing was imported: importing 10 keys would exceed the API key limit of this region (50) by 5 (45 already exist)."
        );
        assert_eq!(key_count(&root).await, 45);
        assert_eq!(Call::echo(app.address, &more[0]).send(&app.http, Shape::OpenAi).await.status, 401);
        // Up to the limit is fine.
        assert_eq!(import(&root, json!({"keys": entries(&more[..5])})).await.status, 200);
        assert_eq!(key_count(&root).await, 50);
    }

    async fn imported_keys_work_at_the_gateway_and_audit_rows_hold_no_plaintext(app: TestApp) {
        let root = app.login(None).await;
        let keys = old_keys(6);
        let answer = import(&root, json!({"keys": entries(&keys)})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_served_in_every_shape(&app.http, &Call::echo(app.address, &keys[0])).await;
        for key in &keys[1..] {
            assert_demo_answer(&Call::echo(app.address, key).send(&app.http, Shape::OpenAi).await, Shape::OpenAi);
        }
        // Another region served here, named in the body.
        let us_keys = old_keys(2);
        let answer = import(&root, json!({"region": "us-east-1", "keys": entries(&us_keys)})).await;
        assert_eq!((answer.status, answer.body["region"].as_str()), (200, Some("us-east-1")), "{}", answer.body);
        assert_demo_answer(&Call::echo(app.us_address, &us_keys[1]).send(&app.http, Shape::Native).await, Shape::Native);

        let audit = app.state.store().list_audit(1, 100, None).await.unwrap();
        let imports: Vec<_> = audit.iter().filter(|entry| entry.action == "ApiKey.Import").collect();
        assert_eq!(imports.len(), 8);
        assert_eq!(imports.iter().filter(|entry| entry.region == "us-east-1").count(), 2);
        for entry in &audit {
            let row = format!("{} {} {}", entry.target, entry.detail, entry.action);
            for key in keys.iter().chain(&us_keys) {
                assert!(!row.contains(key.as_str()), "an audit row holds a plaintext: {row}");
            }
        }
        let masked = mask_key(&keys[0]);
        assert!(imports.iter().any(|entry| entry.detail.contains(&masked)), "the masked key is audited");
    }

    async fn the_owner_and_the_account_may_view_the_plaintext_and_others_get_404(app: TestApp) {
        app.create_user("alice", Role::KeyManager).await;
        app.create_user("bob", Role::Admin).await;
        let alice = app.login(Some("alice")).await;
        let bob = app.login(Some("bob")).await;
        let root = app.login(None).await;
        let keys = old_keys(2);
        let answer = import(&alice, json!({"keys": entries(&keys)})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let key_id = answer.body["keys"][0]["apiKeyId"].as_i64().unwrap();
        let path = format!("/modelstudio/apikeys/{key_id}");

        for (who, client) in [("alice", &alice), ("root", &root)] {
            let got = client.get(&path).await;
            assert_eq!(got.status, 200, "{who}: {}", got.body);
            let item = &got.body["apiKey"];
            assert_eq!(item["apiKeyValue"].as_str(), Some(keys[0].as_str()), "{who} sees the plaintext");
            assert_eq!(item["maskedKey"], json!(mask_key(&keys[0])));
            assert_eq!((item["format"].as_str(), item["replaceAdvised"].as_bool()), (Some("legacy"), Some(true)));
            assert_eq!(item["createdBy"], "alice");
        }
        let refused = bob.get(&path).await;
        assert_eq!((refused.status, refused.code()), (404, "ApiKey.NotFound"), "{}", refused.body);
        assert_no_plaintext(&refused, &keys);

        // List shows the masked key only, and marks the key to be replaced.
        let listed = alice.get("/modelstudio/apikeys").await;
        assert_no_plaintext(&listed, &keys);
        let items = listed.body["apiKeys"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|item| item["replaceAdvised"] == json!(true) && item["apiKeyValue"] == item["maskedKey"]));

        let views = app.state.store().list_audit(1, 100, None).await.unwrap();
        let views: Vec<_> = views.iter().filter(|entry| entry.action == "ApiKey.ViewPlaintext").collect();
        assert_eq!(views.len(), 2, "each view is audited");
        assert_eq!(views[0].target, format!("apiKey:{key_id}"));

        // A reset makes it an ordinary key: shown once, then masked; no longer to be replaced.
        let reset = alice.send("PUT", &format!("{path}/reset"), "").await;
        assert_eq!(reset.status, 200, "{}", reset.body);
        let got = alice.get(&path).await;
        let item = &got.body["apiKey"];
        assert_eq!((item["format"].as_str(), item["replaceAdvised"].as_bool()), (Some("secure"), Some(false)));
        assert_eq!(item["apiKeyValue"], item["maskedKey"]);
        assert_eq!(Call::echo(app.address, &keys[0]).send(&app.http, Shape::OpenAi).await.status, 401);
    }

    async fn only_those_who_may_create_keys_import_them_where_they_may(app: TestApp) {
        app.create_user("mia", Role::Member).await;
        app.create_user("kim", Role::KeyManager).await;
        let root = app.login(None).await;
        let team = create_workspace(&root, "team").await;
        let keys = old_keys(1);

        let mia = app.login(Some("mia")).await;
        let refused = import(&mia, json!({"keys": entries(&keys)})).await;
        assert_eq!((refused.status, refused.code()), (403, "Forbidden"), "{}", refused.body);
        let refused = import(&mia, json!({"not": "an import"})).await;
        assert_eq!((refused.status, refused.code()), (403, "Forbidden"), "a member is refused before the body is read: {}", refused.body);
        let kim = app.login(Some("kim")).await;
        let refused = import(&kim, json!({"workspaceId": team, "keys": entries(&keys)})).await;
        assert_eq!((refused.status, refused.code()), (403, "Forbidden"), "kim is not a member of team: {}", refused.body);

        let refused = import(&root, json!({"region": "eu-central-1", "keys": entries(&keys)})).await;
        assert_eq!((refused.status, refused.code()), (400, "InvalidParameter"), "{}", refused.body);
        assert!(refused.body["message"].as_str().unwrap().contains("not served here"), "{}", refused.body);
        let refused = import(&root, json!({"workspaceId": "llm-doesnotexist0000", "keys": entries(&keys)})).await;
        assert_eq!((refused.status, refused.code()), (400, "InvalidParameter"), "{}", refused.body);
        let refused = import(&root, json!({"keys": []})).await;
        assert_eq!((refused.status, refused.code()), (400, "InvalidParameter"), "{}", refused.body);
        let refused = import(&root, json!({"keys": entries(&keys), "extra": 1})).await;
        assert_eq!((refused.status, refused.code()), (400, "InvalidParameter"), "{}", refused.body);

        let answer = import(&root, json!({"workspaceId": team, "keys": entries(&keys)})).await;
        assert_eq!((answer.status, answer.body["workspaceId"].as_str()), (200, Some(team.as_str())), "{}", answer.body);
        assert_eq!(key_count(&root).await, 1);
    }
}

/// The largest import (10,000 keys, long descriptions) fits the body limit of its route;
/// one more key is refused by count, not by size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keys_fit_in_one_request() {
    let app = crate::helpers::spawn_app_with(|settings| {
        if let Some(policy) = settings.regions.get_mut(REGION) {
            policy.key_limit = 10_000;
        }
    })
    .await;
    let root = app.login(None).await;
    let description = "d".repeat(200);
    let body_keys: Vec<Value> =
        (0..10_000).map(|index| json!({"line": index + 1, "key": old_key(index), "description": description})).collect();
    let mut one_more = body_keys.clone();
    one_more.push(json!({"key": old_key(1)}));
    let too_many = import(&root, json!({"keys": one_more})).await;
    assert_eq!((too_many.status, too_many.code()), (400, "InvalidParameter"), "{}", too_many.body);
    assert!(too_many.body["message"].as_str().unwrap().starts_with("At most 10000 keys per import"), "{}", too_many.body);
    let answer = import(&root, json!({"keys": body_keys})).await;
    assert_eq!(answer.status, 200, "{}", answer.body["message"]);
    assert_eq!(answer.body["importedCount"], 10_000);
    assert_eq!(key_count(&root).await, 10_000);
}

/// PostgreSQL: a batch reaches another node through its one change-feed entry, and the
/// other node (same master key) shows the plaintext to the owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_reaches_another_node_through_the_change_feed() {
    let Some(schema) = crate::helpers::PostgresSchema::create().await else {
        crate::helpers::announce_postgres_skip("an_import_reaches_another_node_through_the_change_feed");
        return;
    };
    let node_a = crate::helpers::spawn_node(&schema, "kg-node-a", |_| {}).await;
    let node_b = crate::helpers::spawn_node(&schema, "kg-node-b", |_| {}).await;
    let keys = old_keys(20);
    let answer = import(&node_a.login(None).await, json!({"keys": entries(&keys)})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let started = std::time::Instant::now();
    for key in [&keys[0], &keys[19]] {
        loop {
            let status = Call::echo(node_b.address, key).send(&node_b.http, Shape::OpenAi).await.status;
            if status == 200 {
                break;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "node b still answers {status}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let key_id = answer.body["keys"][19]["apiKeyId"].as_i64().unwrap();
    let got = node_b.login(None).await.get(&format!("/modelstudio/apikeys/{key_id}")).await;
    assert_eq!(got.body["apiKey"]["apiKeyValue"].as_str(), Some(keys[19].as_str()), "{}", got.body);
}
