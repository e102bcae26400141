//! Model limits (docs/CONTRACT.md#model-limits): UpdateModelLimits and ListModelLimits as the
//! official SDK sends them (set, `OVERLAY`, `DELETE`, the platform default beside the
//! workspace's own, who may do what, 400s with nothing applied), and their enforcement at
//! the gateway with the test clock (429 in every protocol with `Retry-After`, the
//! `x-ratelimit-*` headers, windows that reset, tokens charged after the call). Both stores.

use keygate_core::access::Role;
use keygate_server::settings::{ModelLimitSettings, Settings};
use serde_json::{json, Value};

use crate::gateway_calls::{create_key, create_workspace, Call, Reply, Shape, ALL_SHAPES};
use crate::helpers::{with_query, Client, TestApp};

const LIMITS_PATH: &str = "/modelstudio/models/limits";

/// A platform default for demo-embed: 1000 requests and 100000 tokens a minute. The tests
/// advance the clock by up to a minute: a PostgreSQL node must not count itself stale for it.
fn default_for_demo_embed(settings: &mut Settings) {
    settings.max_staleness_seconds = 3600;
    settings.model_limits = vec![ModelLimitSettings {
        model: "demo-embed".into(),
        request_limit: Some(1000),
        request_limit_period_seconds: Some(60),
        usage_limit: Some(100_000),
        usage_limit_period_seconds: Some(60),
    }];
}

/// UpdateModelLimits with `items` as the `workspaceLimits` JSON.
async fn update(client: &Client, workspace_id: &str, items: &Value) -> crate::helpers::Answer {
    let form = with_query("/", &[("workspaceId", workspace_id), ("workspaceLimits", &items.to_string())]);
    client.send("POST", LIMITS_PATH, form.trim_start_matches("/?")).await
}

async fn update_ok(client: &Client, workspace_id: &str, items: &Value) {
    let answer = update(client, workspace_id, items).await;
    assert_eq!((answer.status, &answer.body["success"]), (200, &json!(true)), "{}", answer.body);
}

/// ListModelLimits of `workspace_id`: the `limits` items by model.
async fn listed(client: &Client, workspace_id: &str) -> Vec<Value> {
    let answer = client.get(&with_query(LIMITS_PATH, &[("workspaceId", workspace_id), ("maxResults", "200")])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["limits"].as_array().unwrap().clone()
}

async fn limit_of(client: &Client, workspace_id: &str, model: &str) -> Value {
    listed(client, workspace_id).await.into_iter().find(|item| item["model"] == model).unwrap_or(Value::Null)
}

async fn default_workspace(app: &TestApp) -> String {
    app.state.store().default_workspace(1, "ap-southeast-1").await.unwrap().workspace_id
}

/// Starts the clock at the beginning of a minute and stops it there, so that a test's calls
/// share windows and the seconds left of a window are known exactly.
fn at_start_of_minute(app: &TestApp) {
    app.state.shared.clock.freeze();
    let now = app.state.shared.clock.now_seconds();
    app.state.shared.clock.advance_seconds(60 - now.rem_euclid(60));
}

fn assert_limited(reply: &Reply, shape: Shape, tokens: bool, retry_after: u64) {
    assert_eq!(reply.status, 429, "{shape:?}: {}", reply.text);
    assert_eq!(reply.header("retry-after"), Some(retry_after.to_string().as_str()), "{shape:?}");
    let expected = match (shape, tokens) {
        (Shape::Native, false) => json!("Throttling.RateQuota"),
        (Shape::Native, true) => json!("Throttling.AllocationQuota"),
        (Shape::OpenAi, false) => json!("limit_requests"),
        (Shape::OpenAi, true) => json!("insufficient_quota"),
        (Shape::Anthropic, _) => json!("rate_limit_error"),
    };
    let found = match shape {
        Shape::Native => &reply.body["code"],
        Shape::OpenAi => &reply.body["error"]["code"],
        Shape::Anthropic => &reply.body["error"]["type"],
    };
    assert_eq!(found, &expected, "{shape:?}: {}", reply.text);
    if shape == Shape::OpenAi {
        assert_eq!(reply.body["error"]["type"], expected);
    }
    if shape == Shape::Anthropic {
        assert_eq!(reply.body["type"], json!("error"));
    }
    let remaining = if tokens { "x-ratelimit-remaining-tokens" } else { "x-ratelimit-remaining-requests" };
    assert_eq!(reply.header(remaining), Some("0"), "{shape:?}");
}

on_both_stores! {
    settings: default_for_demo_embed;

    async fn limits_are_set_overlaid_deleted_and_listed_beside_the_default(app: TestApp) {
        let root = app.login(None).await;
        let workspace = default_workspace(&app).await;
        // Before any change: the platform default, no workspace limit.
        let embed = limit_of(&root, &workspace, "demo-embed").await;
        assert_eq!(embed["modelLimit"], json!({"requestLimit": 1000, "requestLimitPeriod": 60, "usageLimit": 100000, "usageLimitField": "total_tokens", "usageLimitPeriod": 60}));
        assert_eq!((&embed["workspaceLimit"], &embed["workspaceId"], &embed["name"]), (&Value::Null, &json!(workspace), &json!("Demo embeddings (built-in demo upstream)")));
        assert_eq!(limit_of(&root, &workspace, "qwen-plus").await["modelLimit"], Value::Null);

        update_ok(&root, &workspace, &json!([{"model": "qwen-plus", "operationType": "OVERLAY", "requestLimit": 60, "requestLimitPeriod": 60, "usageLimit": 100000, "usageLimitPeriod": 60}])).await;
        // OVERLAY is the default and merges: requestLimit changes, the rest stays.
        update_ok(&root, &workspace, &json!([{"model": "qwen-plus", "requestLimit": 5}])).await;
        let plus = limit_of(&root, &workspace, "qwen-plus").await;
        assert_eq!(plus["workspaceLimit"], json!({"requestLimit": 5, "requestLimitPeriod": 60, "usageLimit": 100000, "usageLimitField": "total_tokens", "usageLimitPeriod": 60}));
        // DELETE then OVERLAY of the requests only: limiting RPM while exempting TPM.
        update_ok(&root, &workspace, &json!([{"model": "qwen-plus", "operationType": "DELETE"}, {"model": "qwen-plus", "requestLimit": 10, "requestLimitPeriod": 1}])).await;
        assert_eq!(limit_of(&root, &workspace, "qwen-plus").await["workspaceLimit"], json!({"requestLimit": 10, "requestLimitPeriod": 1}));
        update_ok(&root, &workspace, &json!([{"model": "qwen-plus", "operationType": "delete"}])).await;
        assert_eq!(limit_of(&root, &workspace, "qwen-plus").await["workspaceLimit"], Value::Null);

        // Filters and paging.
        let page = root.get(&with_query(LIMITS_PATH, &[("name", "DEMO EMB"), ("maxResults", "1")])).await;
        assert_eq!((page.body["totalCount"].clone(), page.body["limits"][0]["model"].clone()), (json!(1), json!("demo-embed")), "{}", page.body);
        let one = root.get(&with_query(LIMITS_PATH, &[("model", "qwen-max")])).await;
        assert_eq!(one.body["limits"].as_array().unwrap().len(), 1);
        // Audited.
        let audit = app.state.store().list_audit(1, 20, None).await.unwrap();
        assert!(audit.iter().any(|entry| entry.action == "Workspace.UpdateModelLimits" && entry.detail.contains("qwen-plus:requests=5/60s")), "{audit:?}");
    }

    async fn a_sub_workspace_lists_its_granted_models_and_only_administrators_change_limits(app: TestApp) {
        let root = app.login(None).await;
        let workspace = create_workspace(&root, "limited").await;
        crate::gateway_calls::set_model_permissions(&root, &workspace, &[("demo-echo", true)]).await;
        update_ok(&root, &workspace, &json!([{"model": "qwen-max", "requestLimit": 1, "requestLimitPeriod": 60}])).await;
        let models: Vec<Value> = listed(&root, &workspace).await.iter().map(|item| item["model"].clone()).collect();
        assert_eq!(models, [json!("qwen-max"), json!("demo-echo")]);

        app.create_user("kim", Role::KeyManager).await;
        app.create_user("ada", Role::Admin).await;
        let kim = app.login(Some("kim")).await;
        let refused = update(&kim, &workspace, &json!([{"model": "demo-echo", "requestLimit": 1, "requestLimitPeriod": 60}])).await;
        assert_eq!((refused.status, refused.code()), (403, "Forbidden"), "{}", refused.body);
        // kim is not a member of the sub-workspace: it does not see its limits.
        let hidden = kim.get(&with_query(LIMITS_PATH, &[("workspaceId", &workspace)])).await;
        assert_eq!(hidden.status, 403, "{}", hidden.body);
        // Every RAM user sees the default workspace's.
        assert_eq!(kim.get(LIMITS_PATH).await.status, 200);
        update_ok(&app.login(Some("ada")).await, &workspace, &json!([{"model": "demo-echo", "requestLimit": 1, "requestLimitPeriod": 60}])).await;
        // Another account's or an unknown workspace is not there.
        let unknown = update(&root, "llm-doesnotexist0000", &json!([{"model": "demo-echo", "operationType": "DELETE"}])).await;
        assert_eq!((unknown.status, unknown.code()), (400, "InvalidParameter"), "{}", unknown.body);
    }

    async fn bad_limits_are_refused_with_400_and_nothing_is_applied(app: TestApp) {
        let root = app.login(None).await;
        let workspace = default_workspace(&app).await;
        let good = json!({"model": "qwen-plus", "requestLimit": 7, "requestLimitPeriod": 60});
        let cases = [
            (json!([good, {"model": "qwen-max", "operationType": "DELETE", "requestLimit": 1}]), "DELETE"),
            (json!([good, {"model": "qwen-max", "requestLimit": -1, "requestLimitPeriod": 60}]), "at least 0"),
            (json!([good, {"model": "qwen-max", "requestLimit": 1, "requestLimitPeriod": 0}]), "requestLimitPeriod"),
            (json!([good, {"model": "qwen-max", "usageLimit": 1}]), "usageLimitPeriod"),
            (json!([good, {"model": "no-such-model", "requestLimit": 1, "requestLimitPeriod": 60}]), "no-such-model"),
            (json!([good, {"model": "qwen-max", "operationType": "MERGE"}]), "OVERLAY or DELETE"),
            (json!([good, {"model": "qwen-max", "requestLimit": "many", "requestLimitPeriod": 60}]), "workspaceLimits"),
            (json!([]), "1 to 200"),
            (json!({"model": "qwen-plus"}), "workspaceLimits"),
        ];
        for (items, says) in cases {
            let answer = update(&root, &workspace, &items).await;
            assert_eq!((answer.status, answer.code(), answer.body["success"].clone()), (400, "InvalidParameter", json!(false)), "{items}: {}", answer.body);
            assert!(answer.body["message"].as_str().unwrap().contains(says), "{items}: {}", answer.body);
        }
        let missing = root.send("POST", LIMITS_PATH, &format!("workspaceId={workspace}")).await;
        assert_eq!((missing.status, missing.code()), (400, "InvalidParameter"));
        let bad_page = root.get(&with_query(LIMITS_PATH, &[("maxResults", "201")])).await;
        assert_eq!(bad_page.status, 400);
        // The valid first item of each refused batch was not applied.
        assert_eq!(limit_of(&root, &workspace, "qwen-plus").await["workspaceLimit"], Value::Null);
    }

    async fn a_request_limit_refuses_in_every_protocol_until_its_window_resets(app: TestApp) {
        let root = app.login(None).await;
        let workspace = default_workspace(&app).await;
        let (_, key) = create_key(&root, "", "").await;
        at_start_of_minute(&app);
        update_ok(&root, &workspace, &json!([{"model": "demo-echo", "requestLimit": 2, "requestLimitPeriod": 60}])).await;
        let call = Call::echo(app.address, &key);
        let first = call.send(&app.http, Shape::OpenAi).await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_eq!(
            (first.header("x-ratelimit-limit-requests"), first.header("x-ratelimit-remaining-requests"), first.header("x-ratelimit-reset-requests")),
            (Some("2"), Some("1"), Some("60s"))
        );
        assert_eq!(first.header("x-ratelimit-limit-tokens"), None);
        app.state.shared.clock.advance_seconds(10);
        assert_eq!(call.send(&app.http, Shape::Native).await.header("x-ratelimit-remaining-requests"), Some("0"));
        for shape in ALL_SHAPES {
            assert_limited(&call.send(&app.http, shape).await, shape, false, 50);
        }
        // Another model, and the same model in another workspace, are not limited.
        assert_eq!(Call::model(app.address, &key, "demo-embed").send(&app.http, Shape::OpenAi).await.status, 200);
        app.state.shared.clock.advance_seconds(50);
        let next_window = call.send(&app.http, Shape::Anthropic).await;
        assert_eq!((next_window.status, next_window.header("x-ratelimit-remaining-requests")), (200, Some("1")), "{}", next_window.text);
        // Deleting the limit reaches the gateway at once.
        update_ok(&root, &workspace, &json!([{"model": "demo-echo", "operationType": "DELETE"}])).await;
        for _ in 0..3 {
            let reply = call.send(&app.http, Shape::Native).await;
            assert_eq!((reply.status, reply.header("x-ratelimit-limit-requests")), (200, None));
        }
    }

    async fn a_token_limit_is_checked_before_and_charged_after_each_call(app: TestApp) {
        let root = app.login(None).await;
        let workspace = create_workspace(&root, "tokens").await;
        crate::gateway_calls::set_model_permissions(&root, &workspace, &[("demo-echo", true)]).await;
        let (_, key) = create_key(&root, &format!("workspaceId={workspace}"), "").await;
        at_start_of_minute(&app);
        update_ok(&root, &workspace, &json!([{"model": "demo-echo", "usageLimit": 3, "usageLimitPeriod": 60}])).await;
        let call = Call::echo(app.address, &key);
        // The first call finds the whole allowance and uses more than it: admitted, then charged.
        let first = call.send(&app.http, Shape::OpenAi).await;
        assert_eq!((first.status, first.header("x-ratelimit-remaining-tokens"), first.header("x-ratelimit-limit-tokens")), (200, Some("3"), Some("3")), "{}", first.text);
        let used = first.body["usage"]["total_tokens"].as_u64().unwrap();
        assert!(used > 3, "the demo call uses {used} tokens");
        app.state.shared.clock.advance_seconds(1);
        for shape in ALL_SHAPES {
            assert_limited(&call.send(&app.http, shape).await, shape, true, 59);
        }
        app.state.shared.clock.advance_seconds(59);
        assert_eq!(call.send(&app.http, Shape::Native).await.status, 200);
    }

    async fn the_platform_default_applies_where_the_workspace_sets_no_limit(app: TestApp) {
        let root = app.login(None).await;
        let (_, key) = create_key(&root, "", "").await;
        at_start_of_minute(&app);
        let embed = Call::model(app.address, &key, "demo-embed");
        let reply = embed.send(&app.http, Shape::OpenAi).await;
        assert_eq!((reply.header("x-ratelimit-limit-requests"), reply.header("x-ratelimit-limit-tokens")), (Some("1000"), Some("100000")));
        // The workspace's own request limit replaces the default's; the token default stays.
        update_ok(&root, &default_workspace(&app).await, &json!([{"model": "demo-embed", "requestLimit": 1, "requestLimitPeriod": 1}])).await;
        let reply = embed.send(&app.http, Shape::OpenAi).await;
        assert_eq!((reply.header("x-ratelimit-limit-requests"), reply.header("x-ratelimit-limit-tokens")), (Some("1"), Some("100000")));
        assert_limited(&embed.send(&app.http, Shape::OpenAi).await, Shape::OpenAi, false, 1);
    }
}
