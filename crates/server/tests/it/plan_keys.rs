//! Plan keys (docs/CONTRACT.md#token-plan): CreateTokenPlanKey and RotateTokenPlanKey in their
//! PascalCase envelope, one plan key per holder, and the wall between the plan listener
//! (only `sk-sp-` keys) and every other path (no `sk-sp-` keys).

use keygate_core::access::Role;
use serde_json::Value;

use crate::gateway_calls::{Call, Shape};
use crate::helpers::{Answer, Client, TestApp};

const OPENAI_PLAN_CHAT_PATH: &str = "/v1/chat/completions";

/// CreateTokenPlanKey for `holder`, as the SDK sends it (query parameters, no body).
async fn create_plan_key(client: &Client, holder: &str, description: &str) -> Answer {
    client.send("POST", &format!("/tokenplan/api-keys?AccountId={holder}&Description={description}"), "").await
}

async fn rotate_plan_key(client: &Client, key_id: &str) -> Answer {
    client.send("POST", &format!("/tokenplan/api-key-rotations?ApiKeyId={key_id}"), "").await
}

/// `Data` of a successful answer.
fn data(answer: &Answer) -> &Value {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["Success"], true, "{}", answer.body);
    assert_eq!(answer.body["Code"], "Success");
    &answer.body["Data"]
}

/// A chat call of the demo model on the plan listener's OpenAI path (`/v1/...`).
async fn plan_chat_status(app: &TestApp, key: &str) -> (u16, Value) {
    let response = app
        .http
        .post(format!("http://{}{OPENAI_PLAN_CHAT_PATH}", app.plan_address))
        .bearer_auth(key)
        .json(&serde_json::json!({"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("the plan listener answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

on_both_stores! {
    async fn a_plan_key_works_on_the_plan_listener_only(app: TestApp) {
        let root = app.access_key_client_at(app.address, None).await;
        let created = create_plan_key(&root, "root", "coding%20plan").await;
        let created = data(&created);
        let plan_key = created["PlainApiKey"].as_str().expect("PlainApiKey").to_string();
        assert!(plan_key.starts_with("sk-sp-"), "{plan_key}");
        assert!(created["ApiKeyId"].is_string(), "ApiKeyId is a string in the Token Plan API: {created}");
        assert_eq!(created["MaskedApiKey"].as_str().unwrap(), keygate_core::keys::mask_key(&plan_key));
        assert_eq!(created["Description"], "coding plan");
        assert!(created["CreatedAt"].as_str().is_some_and(|at| at.ends_with('Z')), "{created}");

        // The plan listener: OpenAI-compatible under /v1, Anthropic under /apps/anthropic.
        assert_eq!(plan_chat_status(&app, &plan_key).await.0, 200);
        let anthropic = Call::echo(app.plan_address, &plan_key).send(&app.http, Shape::Anthropic).await;
        assert_eq!(anthropic.status, 200, "{}", anthropic.text);

        // Every ordinary path refuses it, in its protocol's shape.
        for shape in [Shape::Native, Shape::OpenAi, Shape::Anthropic] {
            let reply = Call::echo(app.address, &plan_key).send(&app.http, shape).await;
            assert_eq!(reply.status, 401, "{shape:?}: {}", reply.text);
            assert!(reply.text.contains("only on the plan endpoint"), "{shape:?}: {}", reply.text);
        }
        let verify = app.http.get(format!("http://{}/auth/verify", app.address)).bearer_auth(&plan_key).send().await.unwrap();
        assert_eq!(verify.status().as_u16(), 401);
        let mint = app.http.post(format!("http://{}/api/v1/tokens", app.address)).bearer_auth(&plan_key).send().await.unwrap();
        assert_eq!(mint.status().as_u16(), 401, "a plan key cannot mint temporary keys");

        // And the plan listener refuses an ordinary key, and serves nothing else.
        let (_, ordinary_key) = root.create_all_key().await;
        let (status, body) = plan_chat_status(&app, &ordinary_key).await;
        assert_eq!(status, 401);
        assert!(body["error"]["message"].as_str().unwrap_or("").contains("accepts only Token Plan and Coding Plan keys"), "{body}");
        let native = Call::echo(app.plan_address, &plan_key).send(&app.http, Shape::Native).await;
        assert_eq!(native.status, 404, "the plan listener has no native path");
        let management = app.http.get(format!("http://{}/modelstudio/apikeys", app.plan_address)).send().await.unwrap();
        assert_eq!(management.status().as_u16(), 404, "the plan listener has no management API");
    }

    async fn rotating_a_plan_key_replaces_its_secret_at_once(app: TestApp) {
        let root = app.access_key_client_at(app.address, None).await;
        let created = create_plan_key(&root, "root", "").await;
        let created = data(&created).clone();
        let old_key = created["PlainApiKey"].as_str().unwrap().to_string();
        let key_id = created["ApiKeyId"].as_str().unwrap().to_string();

        let rotated = rotate_plan_key(&root, &key_id).await;
        let rotated = data(&rotated);
        assert_eq!(rotated["ApiKeyId"].as_str(), Some(key_id.as_str()));
        let new_key = rotated["PlainApiKey"].as_str().unwrap().to_string();
        assert!(new_key.starts_with("sk-sp-") && new_key != old_key);
        assert!(rotated["ResetAt"].as_str().is_some_and(|at| at.ends_with('Z')), "{rotated}");
        assert_eq!(plan_chat_status(&app, &old_key).await.0, 401, "the old secret still works after a rotation");
        assert_eq!(plan_chat_status(&app, &new_key).await.0, 200);

        // ResetApiKey on a plan key keeps it a plan key.
        let reset = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}/reset"), "").await;
        assert_eq!(reset.status, 200, "{}", reset.body);
        let reset_key = reset.body["apiKey"]["apiKeyValue"].as_str().unwrap();
        assert!(reset_key.starts_with("sk-sp-"), "{reset_key}");
        assert_eq!(plan_chat_status(&app, reset_key).await.0, 200);

        // An ordinary key is not a plan key: RotateTokenPlanKey does not know it.
        let (ordinary_id, _) = root.create_all_key().await;
        let refused = rotate_plan_key(&root, &ordinary_id.to_string()).await;
        assert_eq!((refused.status, refused.body["Code"].as_str()), (404, Some("ApiKey.NotFound")), "{}", refused.body);
        assert_eq!(refused.body["Success"], false);
        assert!(refused.body["RequestId"].as_str().is_some_and(|id| !id.is_empty()));
        let missing = rotate_plan_key(&root, "not-a-number").await;
        assert_eq!(missing.status, 404);
    }

    async fn each_holder_has_one_plan_key_outside_the_pay_as_you_go_limit(app: TestApp) {
        let root = app.access_key_client_at(app.address, None).await;
        data(&create_plan_key(&root, "root", "").await);
        let second = create_plan_key(&root, "root", "").await;
        assert_eq!((second.status, second.body["Code"].as_str()), (400, Some("QuotaExceeded.TokenPlanKey")), "{}", second.body);
        assert!(second.body["Message"].as_str().unwrap().contains("RotateTokenPlanKey"));
        // The plan key is listed (as format "plan") but is not one of the region's 50.
        for _ in 0..50 {
            root.create_all_key().await;
        }
        let over = root.create_key("", "").await;
        assert_eq!(over.code(), "QuotaExceeded.ApiKey");
        let listed = root.get("/modelstudio/apikeys?maxResults=100").await;
        let plan_count = listed.body["apiKeys"].as_array().unwrap().iter().filter(|key| key["format"] == "plan").count();
        assert_eq!((listed.body["totalCount"].as_i64(), plan_count), (Some(51), 1));
    }

    async fn who_may_create_a_plan_key_for_whom(app: TestApp) {
        app.create_user("ada", Role::Admin).await;
        app.create_user("kim", Role::KeyManager).await;
        app.create_user("mo", Role::Member).await;
        let ada = app.access_key_client_at(app.address, Some("ada")).await;
        let kim = app.access_key_client_at(app.address, Some("kim")).await;
        let mo = app.access_key_client_at(app.address, Some("mo")).await;

        // An admin creates one for a member; the member holds (and sees) it.
        let for_mo = create_plan_key(&ada, "mo", "").await;
        let key_id = data(&for_mo)["ApiKeyId"].as_str().unwrap().to_string();
        let seen = mo.get(&format!("/modelstudio/apikeys/{key_id}")).await;
        assert_eq!(seen.status, 200, "the holder sees its plan key: {}", seen.body);
        assert_eq!(seen.body["apiKey"]["createdBy"], "mo");
        assert_eq!(ada.get(&format!("/modelstudio/apikeys/{key_id}")).await.status, 404, "the admin who made it is not its holder");

        // A key-manager may create only its own; a member none; unknown holders are named.
        data(&create_plan_key(&kim, "kim", "").await);
        let refused = create_plan_key(&kim, "mo", "").await;
        assert_eq!((refused.status, refused.body["Code"].as_str()), (403, Some("Forbidden")), "{}", refused.body);
        let member = create_plan_key(&mo, "mo", "").await;
        assert_eq!(member.status, 403);
        let unknown = create_plan_key(&ada, "nobody", "").await;
        assert_eq!((unknown.status, unknown.body["Code"].as_str()), (400, Some("InvalidParameter")));
        assert!(unknown.body["Message"].as_str().unwrap().contains("'nobody'"));
        let missing = ada.send("POST", "/tokenplan/api-keys", "").await;
        assert_eq!((missing.status, missing.body["Code"].as_str()), (400, Some("InvalidParameter")));

        // The holder's fate is its key's: a disabled holder's plan key stops working.
        let for_kim = create_plan_key(&ada, "ada", "").await;
        let ada_key = data(&for_kim)["PlainApiKey"].as_str().unwrap().to_string();
        assert_eq!(plan_chat_status(&app, &ada_key).await.0, 200);
        app.state.store().set_user_status(&app.root_audit(), "ada", keygate_core::access::UserStatus::Disabled).await.unwrap();
        assert_eq!(plan_chat_status(&app, &ada_key).await.0, 401);
    }
}

#[tokio::test]
async fn token_plan_errors_use_the_pascal_case_envelope_before_authentication_too() {
    let app = crate::helpers::spawn_app().await;
    let response = app.http.post(format!("http://{}/tokenplan/api-keys?AccountId=root", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Code"], "MissingAuthorization", "{body}");
    assert_eq!(body["Success"], false);
    assert!(body.get("code").is_none(), "camelCase leaked into a Token Plan error: {body}");
}
