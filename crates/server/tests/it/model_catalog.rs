//! The models a key may call, as the OpenAI and Anthropic clients ask for them, and
//! Anthropic's `count_tokens` (docs/CONTRACT.md#models-and-token-counts): retrieving a
//! model by id, Anthropic's listing with its paging, both scoped to what the key may call
//! (a model out of scope answers like one that does not exist), and token counts from the
//! demo and through an upstream, authorized like the call they measure.

use serde_json::{json, Value};

use crate::gateway_calls::{create_key, Reply, PROMPT};
use crate::gateway_forwarding::{forwarding_app, UpstreamDouble, DOUBLE_MODEL};
use crate::helpers::{spawn_app, TestApp};

const ONLY_ECHO: &str = "auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1=demo-echo";

async fn get(app: &TestApp, path: &str, key: &str) -> Reply {
    Reply::read(app.http.get(format!("http://{}{path}", app.address)).bearer_auth(key).send().await.expect("the gateway answers")).await
}

async fn count_tokens(app: &TestApp, key: &str, body: &Value) -> Reply {
    let url = format!("http://{}/apps/anthropic/v1/messages/count_tokens", app.address);
    Reply::read(app.http.post(url).header("x-api-key", key).json(body).send().await.expect("the gateway answers")).await
}

fn messages_request(model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "system": "be brief", "messages": [{"role": "user", "content": PROMPT}]})
}

#[tokio::test]
async fn a_model_is_retrieved_by_id_only_when_the_key_may_call_it() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (_, everything) = create_key(&root, "", "").await;
    let (_, only_echo) = create_key(&root, "", ONLY_ECHO).await;

    let found = get(&app, "/compatible-mode/v1/models/demo-echo", &only_echo).await;
    assert_eq!(
        (found.status, &found.body),
        (200, &json!({"id": "demo-echo", "object": "model", "created": 0, "owned_by": "keygate-demo"}))
    );
    assert_eq!(get(&app, "/compatible-mode/v1/models/demo-embed", &everything).await.status, 200);

    // Out of the key's scope and not in the catalog at all: the same 404, in OpenAI's shape,
    // which a retry cannot change.
    for (key, model) in [(&only_echo, "demo-embed"), (&everything, "no-such-model")] {
        let refused = get(&app, &format!("/compatible-mode/v1/models/{model}"), key).await;
        assert_eq!(refused.status, 404, "{}", refused.text);
        assert_eq!(refused.body["error"]["code"], "model_not_found");
        assert_eq!(refused.body["error"]["type"], "invalid_request_error");
        assert_eq!(
            refused.body["error"]["message"],
            format!("The model '{model}' does not exist or this API key may not call it.").as_str()
        );
        assert!(refused.body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
        assert_eq!(refused.header("x-should-retry"), Some("false"));
    }
    // A key is authenticated first, and never repeated.
    let bad = get(&app, "/compatible-mode/v1/models/demo-echo", "sk-not-a-key").await;
    assert_eq!((bad.status, bad.body["error"]["code"].as_str()), (401, Some("invalid_api_key")));
    let pasted = get(&app, &format!("/compatible-mode/v1/models/{everything}"), &everything).await;
    assert_eq!(pasted.status, 404);
    assert!(!pasted.text.contains(&everything), "{}", pasted.text);
}

#[tokio::test]
async fn the_anthropic_model_list_is_scoped_and_paged_as_anthropic_pages_it() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (_, everything) = create_key(&root, "", "").await;
    let (_, only_echo) = create_key(&root, "", ONLY_ECHO).await;

    let listed = get(&app, "/apps/anthropic/v1/models", &only_echo).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.body,
        json!({
            "data": [{"type": "model", "id": "demo-echo", "display_name": listed.body["data"][0]["display_name"], "created_at": "1970-01-01T00:00:00Z"}],
            "has_more": false, "first_id": "demo-echo", "last_id": "demo-echo",
        })
    );
    assert!(listed.body["data"][0]["display_name"].as_str().is_some_and(|name| !name.is_empty()));

    // The demo answers both of its models in the Anthropic protocol; one page at a time.
    let first = get(&app, "/apps/anthropic/v1/models?limit=1", &everything).await;
    assert_eq!((first.body["data"].as_array().map(Vec::len), &first.body["has_more"]), (Some(1), &json!(true)), "{}", first.text);
    let first_id = first.body["first_id"].as_str().expect("first_id").to_string();
    let second = get(&app, &format!("/apps/anthropic/v1/models?limit=1&after_id={first_id}"), &everything).await;
    assert_eq!(second.body["has_more"], json!(false), "{}", second.text);
    assert_ne!(second.body["first_id"], json!(first_id));
    let back = get(&app, &format!("/apps/anthropic/v1/models?before_id={}", second.body["first_id"].as_str().unwrap()), &everything).await;
    assert_eq!(back.body["first_id"], json!(first_id));

    let one = get(&app, "/apps/anthropic/v1/models/demo-echo", &everything).await;
    assert_eq!((one.status, &one.body["id"], &one.body["type"]), (200, &json!("demo-echo"), &json!("model")));
    let hidden = get(&app, "/apps/anthropic/v1/models/demo-embed", &only_echo).await;
    assert_eq!((hidden.status, &hidden.body["type"], &hidden.body["error"]["type"]), (404, &json!("error"), &json!("not_found_error")));
    let bad_page = get(&app, "/apps/anthropic/v1/models?limit=0", &everything).await;
    assert_eq!((bad_page.status, &bad_page.body["error"]["type"]), (400, &json!("invalid_request_error")));
}

#[tokio::test]
async fn the_demo_counts_the_tokens_its_call_would_report_and_scope_applies() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (_, only_echo) = create_key(&root, "", ONLY_ECHO).await;

    let counted = count_tokens(&app, &only_echo, &messages_request("demo-echo")).await;
    assert_eq!(counted.status, 200, "{}", counted.text);
    let url = format!("http://{}/apps/anthropic/v1/messages", app.address);
    let called =
        Reply::read(app.http.post(url).header("x-api-key", &only_echo).json(&messages_request("demo-echo")).send().await.unwrap()).await;
    assert_eq!(called.status, 200, "{}", called.text);
    assert_eq!(counted.body, json!({"input_tokens": called.body["usage"]["input_tokens"]}));
    assert!(counted.body["input_tokens"].as_u64().is_some_and(|tokens| tokens > 0));

    let refused = count_tokens(&app, &only_echo, &messages_request("demo-embed")).await;
    assert_eq!((refused.status, &refused.body["error"]["type"]), (403, &json!("permission_error")), "{}", refused.text);
    let no_model = count_tokens(&app, &only_echo, &json!({"messages": []})).await;
    assert_eq!((no_model.status, &no_model.body["error"]["type"]), (400, &json!("invalid_request_error")));
}

#[tokio::test]
async fn token_counts_of_an_upstream_model_are_forwarded_with_the_deployments_credential() {
    let double = UpstreamDouble::start().await;
    let (app, credential) = forwarding_app("count_tokens", &double, None).await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;

    let counted = count_tokens(&app, &key, &messages_request(DOUBLE_MODEL)).await;
    assert_eq!(counted.status, 200, "{}", counted.text);
    let received = double.received().pop().expect("the double was asked");
    assert_eq!(received.path_and_query, "/anthropic/v1/messages/count_tokens");
    assert_eq!(received.header("x-api-key").as_deref(), Some(credential.as_str()));
}
