//! Real answers of the Model Studio API, the Token Plan operations and keygate's API (its
//! usage answers too, and the keys' `keygateUsage`), made through the app, validated
//! against the schemas the OpenAPI document gives their routes: the document describes what
//! the server sends, field for field.

use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::usage::TokenUsage;
use serde_json::{json, Map, Value};

use crate::helpers::{price_demo_models, spawn_app, spawn_app_with, stored_usage, with_query, Answer};

/// OpenAPI 3.0's `nullable: true` as JSON Schema says it (a `null` type beside the
/// schema's), everywhere in `schema`, so that a JSON Schema validator reads it alike.
fn as_json_schema(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            object.values_mut().for_each(as_json_schema);
            if object.remove("nullable") == Some(Value::Bool(true)) {
                let without_null = Value::Object(std::mem::take(object));
                object.insert("anyOf".into(), json!([without_null, {"type": "null"}]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(as_json_schema),
        _ => {}
    }
}

/// The schema of the `status` answer of `method path` in `document` (or of its `default`
/// answer: the Token Plan operations' refusals), with the document's components beside it
/// for its `$ref`s.
fn answer_schema(document: &Value, method: &str, path: &str, status: &str) -> Value {
    let responses = &document["paths"][path][method]["responses"];
    let mut response = responses.get(status).or_else(|| responses.get("default")).expect("the status is documented");
    if let Some(shared) = response["$ref"].as_str() {
        response = document.pointer(shared.trim_start_matches('#')).expect("a shared response");
    }
    let schema = response["content"]["application/json"]["schema"].clone();
    assert!(schema.is_object(), "no schema for {status} of {method} {path}");
    let mut root = Map::new();
    root.insert("allOf".into(), json!([schema]));
    root.insert("components".into(), document["components"].clone());
    let mut root = Value::Object(root);
    as_json_schema(&mut root);
    root
}

/// Where `answer` differs from the schema of its status on `method path`.
fn problems(document: &Value, method: &str, path: &str, answer: &Answer) -> Vec<String> {
    let schema = answer_schema(document, method, path, &answer.status.to_string());
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator.iter_errors(&answer.body).map(|error| format!("{}: {error}", error.instance_path())).collect()
}

/// The type named by the 200 answer's schema of `method path`: the operation's fields
/// beside the envelope's.
fn answer_type<'a>(document: &'a Value, method: &str, path: &str) -> &'a str {
    let schema = &document["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
    let reference = schema["allOf"][1]["$ref"].as_str().or_else(|| schema["$ref"].as_str()).expect("a $ref");
    reference.trim_start_matches("#/components/schemas/")
}

#[tokio::test]
async fn model_studio_and_token_plan_answers_validate_against_the_document() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let document = root.get("/keygate/v1/openapi.json").await.body;

    let created = root.send("POST", "/modelstudio/apikeys?description=documented", "").await;
    let id = created.body["apiKey"]["apiKeyId"].as_i64().expect("a created key");
    let key = format!("/modelstudio/apikeys/{id}");
    let answers = [
        ("post", "/modelstudio/apikeys", created),
        ("get", "/modelstudio/apikeys", root.get("/modelstudio/apikeys").await),
        ("get", "/modelstudio/apikeys/{apiKeyId}", root.get(&key).await),
        ("put", "/modelstudio/apikeys/{apiKeyId}/disable", root.send("PUT", &format!("{key}/disable"), "").await),
        ("put", "/modelstudio/apikeys/{apiKeyId}/reset", root.send("PUT", &format!("{key}/reset"), "").await),
        ("get", "/modelstudio/workspaces", root.get("/modelstudio/workspaces").await),
        ("post", "/modelstudio/workspaces", root.send("POST", "/modelstudio/workspaces?workspaceName=Documented", "").await),
        ("get", "/modelstudio/models/permissions", root.get("/modelstudio/models/permissions").await),
        ("get", "/modelstudio/apikeys/{apiKeyId}", root.get("/modelstudio/apikeys/999999").await),
        ("post", "/tokenplan/api-keys", root.send("POST", "/tokenplan/api-keys?AccountId=root", "").await),
        ("post", "/tokenplan/api-key-rotations", root.send("POST", "/tokenplan/api-key-rotations?ApiKeyId=999999", "").await),
        ("get", "/keygate/v1/users", root.get("/keygate/v1/users").await),
    ];
    let statuses: Vec<u16> = answers.iter().map(|(_, _, answer)| answer.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 404, 200, 404, 200], "{answers:?}");
    for (method, path, answer) in &answers {
        let problems = problems(&document, method, path, answer);
        assert!(problems.is_empty(), "{method} {path} ({}) does not match its schema: {problems:?}\n{}", answer.status, answer.body);
    }
    // The schemas are strict enough to notice a field of the wrong type or a missing one.
    let mut listed = answers[1].2.clone();
    listed.body["apiKeys"][0]["requestCount"] = json!("many");
    assert_eq!(problems(&document, "get", "/modelstudio/apikeys", &listed).len(), 1, "{}", listed.body);
    let mut plan = answers[9].2.clone();
    plan.body["Data"].as_object_mut().unwrap().remove("PlainApiKey");
    assert_eq!(problems(&document, "post", "/tokenplan/api-keys", &plan).len(), 1, "{}", plan.body);

    let expected = [
        ("post", "/modelstudio/apikeys", "ApiKeyResponse"),
        ("get", "/modelstudio/apikeys", "ListApiKeysResponse"),
        ("put", "/modelstudio/apikeys/{apiKeyId}", "Empty"),
        ("delete", "/modelstudio/workspaces/{workspaceId}", "DeleteWorkspaceResponse"),
        ("post", "/modelstudio/models/permissions", "UpdateModelPermissionsResponse"),
        ("post", "/tokenplan/api-keys", "PlanSuccess_CreatedTokenPlanKey"),
        ("post", "/tokenplan/api-key-rotations", "PlanSuccess_RotatedTokenPlanKey"),
    ];
    for (method, path, type_name) in expected {
        assert_eq!(answer_type(&document, method, path), type_name, "{method} {path}");
    }
}

#[tokio::test]
async fn usage_answers_and_key_usage_validate_against_the_document() {
    let app = spawn_app_with(price_demo_models).await;
    let root = app.login(None).await;
    let document = root.get("/keygate/v1/openapi.json").await.body;
    let (key_id, _) = root.create_all_key().await;
    let key = root.get(&format!("/modelstudio/apikeys/{key_id}")).await;
    let workspace = key.body["apiKey"]["workspaceId"].as_str().expect("the key's workspace").to_string();
    let now = app.state.shared.clock.now_seconds();
    let this_minute = format_utc_timestamp(now - now.rem_euclid(60));
    let tokens = TokenUsage { input: 1_000, output: 2_000, cached: 10, reasoning: 20 };
    let rows = [
        stored_usage(key_id, &workspace, "demo-echo", &this_minute, 3, tokens),
        stored_usage(key_id, &workspace, "qwen-plus", &this_minute, 1, tokens),
    ];
    app.state.store().add_token_usage(&rows).await.unwrap();

    let usage = "/keygate/v1/usage";
    let answers = [
        ("get", usage, root.get(&with_query(usage, &[("groupBy", "key,model,workspace"), ("granularity", "hour")])).await),
        ("get", usage, root.get(&with_query(usage, &[("granularity", "none")])).await),
        ("get", usage, root.get(&with_query(usage, &[("granularity", "week")])).await),
        ("get", "/modelstudio/apikeys/{apiKeyId}", root.get(&format!("/modelstudio/apikeys/{key_id}")).await),
        ("get", "/modelstudio/apikeys", root.get("/modelstudio/apikeys").await),
    ];
    let statuses: Vec<u16> = answers.iter().map(|(_, _, answer)| answer.status).collect();
    assert_eq!(statuses, [200, 200, 400, 200, 200], "{answers:?}");
    assert_eq!(answers[0].2.body["rows"].as_array().map(Vec::len), Some(2), "{}", answers[0].2.body);
    assert_eq!(answers[3].2.body["apiKey"]["keygateUsage"]["requests"], json!(4), "{}", answers[3].2.body);
    for (method, path, answer) in &answers {
        let problems = problems(&document, method, path, answer);
        assert!(problems.is_empty(), "{method} {path} ({}) does not match its schema: {problems:?}\n{}", answer.status, answer.body);
    }
    let mut row_without_cost = answers[0].2.clone();
    row_without_cost.body["rows"][0].as_object_mut().unwrap().remove("cost");
    assert_eq!(problems(&document, "get", usage, &row_without_cost).len(), 1, "{}", row_without_cost.body);
    assert_eq!(answer_type(&document, "get", usage), "UsageResponse");
    let csv = &document["paths"][usage]["get"]["responses"]["200"]["content"]["text/csv"];
    assert_eq!(csv["schema"]["type"], "string", "the CSV answer is documented");
}

#[tokio::test]
async fn model_limit_answers_validate_against_the_document() {
    let app = spawn_app_with(|settings| {
        settings.model_limits = vec![keygate_server::settings::ModelLimitSettings {
            model: "demo-echo".into(),
            request_limit: Some(10),
            request_limit_period_seconds: Some(60),
            usage_limit: None,
            usage_limit_period_seconds: None,
        }]
    })
    .await;
    let root = app.login(None).await;
    let document = root.get("/keygate/v1/openapi.json").await.body;
    let workspace = app.state.store().default_workspace(1, "ap-southeast-1").await.unwrap().workspace_id;
    let items = json!([{"model": "demo-echo", "usageLimit": 100, "usageLimitPeriod": 60}]).to_string();
    let form = format!("workspaceId={workspace}&workspaceLimits={}", with_query("/", &[("x", &items)]).trim_start_matches("/?x="));
    let answers = [
        ("post", "/modelstudio/models/limits", root.send("POST", "/modelstudio/models/limits", &form).await),
        ("get", "/modelstudio/models/limits", root.get("/modelstudio/models/limits?maxResults=200").await),
        ("post", "/modelstudio/models/limits", root.send("POST", "/modelstudio/models/limits", "workspaceId=x").await),
    ];
    let statuses: Vec<u16> = answers.iter().map(|(_, _, answer)| answer.status).collect();
    assert_eq!(statuses, [200, 200, 400], "{answers:?}");
    let echo = answers[1].2.body["limits"].as_array().unwrap().iter().find(|item| item["model"] == "demo-echo").unwrap().clone();
    assert_eq!((echo["modelLimit"]["requestLimit"].clone(), echo["workspaceLimit"]["usageLimit"].clone()), (json!(10), json!(100)));
    for (method, path, answer) in &answers {
        let problems = problems(&document, method, path, answer);
        assert!(problems.is_empty(), "{method} {path} ({}) does not match its schema: {problems:?}\n{}", answer.status, answer.body);
    }
}
