//! ListModels, GetBillingOverview and GetBillingTrend (docs/CONTRACT.md#billing), seen from
//! outside: the catalog with its `[[prices]]`; the cost of stored usage grouped by each
//! dimension, filtered with `IN` and `NOT`, per day and per month, the top N with the
//! others; and a RAM user's view, which holds only its own keys' usage. Each test runs on
//! SQLite and on PostgreSQL (`on_both_stores!`).

use keygate_core::access::Role;
use keygate_core::usage::TokenUsage;
use keygate_store::usage::UsageDelta;
use serde_json::{json, Value};

use crate::helpers::{get_ok, price_demo_models, stored_usage, with_query, Client, TestApp};

/// Usage of `key_id` on `model` at `at` (UTC): one call.
pub(crate) fn delta(key_id: i64, workspace_id: &str, model: &str, at: &str, input: i64, output: i64) -> UsageDelta {
    stored_usage(key_id, workspace_id, model, at, 1, TokenUsage { input, output, cached: 0, reasoning: 0 })
}

/// The server (kept running while bound), the account's key A and the RAM user kim's key
/// B, both in the default workspace, with their plaintexts.
pub(crate) struct Scene {
    pub(crate) app: TestApp,
    root: Client,
    kim: Client,
    pub(crate) key_a: i64,
    pub(crate) plaintext_a: String,
    pub(crate) key_b: i64,
    pub(crate) plaintext_b: String,
    pub(crate) workspace: String,
}

/// Key A, created by the account with `query` (its description, say), and key B, created
/// by kim, a key-manager, on `app` (priced with `price_demo_models`); no usage yet.
pub(crate) async fn two_keys(app: TestApp, query: &str) -> Scene {
    let root = app.login(None).await;
    app.create_user("kim", Role::KeyManager).await;
    let kim = app.login(Some("kim")).await;
    let created = root.create_key(query, "").await;
    assert_eq!(created.status, 200, "{}", created.body);
    let key_a = created.body["apiKey"]["apiKeyId"].as_i64().unwrap();
    let plaintext_a = created.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
    let workspace = created.body["apiKey"]["workspaceId"].as_str().unwrap().to_string();
    let (key_b, plaintext_b) = kim.create_all_key().await;
    Scene { app, root, kim, key_a, plaintext_a, key_b, plaintext_b, workspace }
}

/// [`two_keys`] with usage in August and September 2026: A 2.5 in August (demo-echo 2.0,
/// demo-embed 0.5, qwen-plus unpriced), B 1.0 in August (demo-embed) and 1.0 in September
/// (demo-echo).
async fn scene(app: TestApp) -> Scene {
    let scene = two_keys(app, "").await;
    let (key_a, key_b, workspace) = (scene.key_a, scene.key_b, &scene.workspace);
    let rows = [
        delta(key_a, workspace, "demo-echo", "2026-08-01T10:00:00Z", 1_000_000, 500_000),
        delta(key_b, workspace, "demo-embed", "2026-08-01T11:00:00Z", 2_000_000, 0),
        delta(key_a, workspace, "demo-embed", "2026-08-02T00:00:00Z", 1_000_000, 0),
        delta(key_a, workspace, "qwen-plus", "2026-08-03T00:00:00Z", 100, 0),
        delta(key_b, workspace, "demo-echo", "2026-09-05T23:59:00Z", 1_000_000, 0),
    ];
    scene.app.state.store().add_token_usage(&rows).await.unwrap();
    scene
}

/// (key, amount, percentage) of an overview's groups.
fn overview_groups(body: &Value) -> Vec<(String, String, String)> {
    body["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| {
            (group["key"].as_str().unwrap().into(), group["amount"].as_str().unwrap().into(), group["percentage"].as_str().unwrap().into())
        })
        .collect()
}

fn group_by(code: &str) -> String {
    json!([{ "code": code }]).to_string()
}

/// (key, amount, percentage) of a trend period's detail.
type Detail<'a> = (&'a str, &'a str, &'a str);

const OVERVIEW: &str = "/modelstudio/billing/overview";
const TREND: &str = "/modelstudio/billing/trend";

on_both_stores! {
    settings: price_demo_models;

    async fn billing_overview_groups_by_every_dimension(app: TestApp) {
        let Scene { app: _app, root, key_a, key_b, workspace, .. } = scene(app).await;
        let overview = |code: &'static str, extra: Vec<(&'static str, String)>| {
            let root = root.clone();
            async move {
                let mut pairs = vec![("billMonth", "2026-08".to_string()), ("groupBy", group_by(code))];
                pairs.extend(extra);
                let pairs: Vec<(&str, &str)> = pairs.iter().map(|(name, value)| (*name, value.as_str())).collect();
                get_ok(&root, OVERVIEW, &pairs).await
            }
        };
        let body = overview("API_KEY_ID", vec![]).await;
        // Every envelope field of the Model Studio operations, whichever a client reads.
        let envelope = [("code", json!("Success")), ("message", json!("")), ("errorMessage", json!("")), ("httpStatusCode", json!(200))];
        for (field, value) in envelope {
            assert_eq!(body[field], value, "{field}");
        }
        assert_eq!(body["data"]["currency"], "USD");
        assert_eq!(body["data"]["totalAmount"], "3.500000");
        assert_eq!(body["data"]["pretaxAmount"], "3.500000");
        assert_eq!(body["data"]["taxAmount"], "0.000000");
        assert_eq!(
            overview_groups(&body),
            [(key_a.to_string(), "2.500000".into(), "0.7143".into()), (key_b.to_string(), "1.000000".into(), "0.2857".into())]
        );
        let body = overview("BASE_MODEL", vec![]).await;
        assert_eq!(
            overview_groups(&body),
            [("demo-echo".into(), "2.000000".into(), "0.5714".into()), ("demo-embed".into(), "1.500000".into(), "0.4286".into())]
        );
        // zeroFilter=False keeps the unpriced model.
        let body = overview("base_model", vec![("zeroFilter", "False".into())]).await;
        assert_eq!(overview_groups(&body).last().unwrap(), &("qwen-plus".into(), "0.000000".into(), "0.0000".into()));
        let body = overview("WORKSPACE_ID", vec![]).await;
        assert_eq!(overview_groups(&body), [(workspace.clone(), "3.500000".into(), "1.0000".into())]);
        let body = overview("MAAS_TYPE", vec![]).await;
        assert_eq!(overview_groups(&body), [("inference".into(), "3.500000".into(), "1.0000".into())]);
        // The top N: percentages of the groups returned.
        let body = overview("BASE_MODEL", vec![("topNum", "1".into())]).await;
        assert_eq!(overview_groups(&body), [("demo-echo".into(), "2.000000".into(), "1.0000".into())]);
        assert_eq!(body["data"]["totalAmount"], "3.500000");
        // Filters: IN and NOT, ANDed across dimensions.
        let filter = |select: &str, values: Value| json!({"dimensions": [{"code": "BASE_MODEL", "selectType": select, "values": values}]});
        let body = overview("API_KEY_ID", vec![("filter", filter("IN", json!(["demo-echo"])).to_string())]).await;
        assert_eq!(overview_groups(&body), [(key_a.to_string(), "2.000000".into(), "1.0000".into())]);
        let body = overview("API_KEY_ID", vec![("filter", filter("NOT", json!(["demo-echo"])).to_string())]).await;
        assert_eq!(body["data"]["totalAmount"], "1.500000");
        let both = json!({"dimensions": [
            {"code": "BASE_MODEL", "selectType": "IN", "values": ["demo-embed"]},
            {"code": "API_KEY_ID", "selectType": "NOT", "values": [key_a.to_string()]},
        ]});
        let body = overview("BASE_MODEL", vec![("filter", both.to_string())]).await;
        assert_eq!(overview_groups(&body), [("demo-embed".into(), "1.000000".into(), "1.0000".into())]);
        let training = json!({"dimensions": [{"code": "MAAS_TYPE", "selectType": "IN", "values": ["training"]}]});
        let body = overview("BASE_MODEL", vec![("filter", training.to_string())]).await;
        assert_eq!(body["data"]["groups"], json!([]));
        assert_eq!(body["data"]["totalAmount"], "0.000000");
    }

    async fn billing_filter_values_no_store_holds_match_nothing(app: TestApp) {
        // A NUL character is in no stored model or workspace (and PostgreSQL cannot even
        // compare text with one): IN such a value keeps nothing, NOT it drops nothing.
        let Scene { app: _app, root, workspace, .. } = scene(app).await;
        for code in ["BASE_MODEL", "WORKSPACE_ID", "API_KEY_ID"] {
            for (select, total) in [("IN", "0.000000"), ("NOT", "3.500000")] {
                let values = json!(["demo-echo\u{0}", format!("{workspace}\u{0}"), "\u{0}"]);
                let filter = json!({"dimensions": [{"code": code, "selectType": select, "values": values}]}).to_string();
                let pairs = [("billMonth", "2026-08"), ("groupBy", r#"[{"code":"BASE_MODEL"}]"#), ("filter", filter.as_str())];
                let body = get_ok(&root, OVERVIEW, &pairs).await;
                assert_eq!(body["data"]["totalAmount"], total, "{code} {select}");
            }
        }
    }

    async fn billing_trend_by_day_and_month_with_others(app: TestApp) {
        let Scene { app: _app, root, .. } = scene(app).await;
        let period = json!({"start": "2026-08-01", "end": "2026-09-30"}).to_string();
        let models = group_by("BASE_MODEL");
        let body = get_ok(&root, TREND, &[("granularity", "DAY"), ("timePeriod", &period), ("groupBy", &models), ("topNum", "1")]).await;
        assert_eq!(body["errorMessage"], "");
        let data = &body["data"];
        assert_eq!(
            data["costTotals"],
            json!({"amount": "4.500000", "pretaxAmount": "4.500000", "taxAmount": "0.000000", "currency": "USD"})
        );
        let totals: Vec<(&str, &str)> = data["groupByTotal"]
            .as_array()
            .unwrap()
            .iter()
            .map(|group| (group["key"].as_str().unwrap(), group["amount"].as_str().unwrap()))
            .collect();
        assert_eq!(totals, [("demo-echo", "3.000000"), ("DIMENSION_GROUP_OTHERS_VALUE", "1.500000")]);
        let periods: Vec<(&str, &str, Vec<Detail>)> = data["resultByTime"]
            .as_array()
            .unwrap()
            .iter()
            .map(|period| {
                let details = period["periodDetails"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|detail| {
                        (detail["key"].as_str().unwrap(), detail["amount"].as_str().unwrap(), detail["percentage"].as_str().unwrap())
                    })
                    .collect();
                (period["period"].as_str().unwrap(), period["total"]["amount"].as_str().unwrap(), details)
            })
            .collect();
        assert_eq!(
            periods,
            [
                ("20260801", "3.000000", vec![("demo-echo", "2.000000", "0.6667"), ("DIMENSION_GROUP_OTHERS_VALUE", "1.000000", "0.3333")]),
                ("20260802", "0.500000", vec![("DIMENSION_GROUP_OTHERS_VALUE", "0.500000", "1.0000")]),
                ("20260803", "0.000000", vec![]),
                ("20260905", "1.000000", vec![("demo-echo", "1.000000", "1.0000")]),
            ]
        );
        let keys = group_by("API_KEY_ID");
        let body = get_ok(&root, TREND, &[("granularity", "month"), ("timePeriod", &period), ("groupBy", &keys)]).await;
        let months: Vec<(&str, &str)> = body["data"]["resultByTime"]
            .as_array()
            .unwrap()
            .iter()
            .map(|period| (period["period"].as_str().unwrap(), period["total"]["amount"].as_str().unwrap()))
            .collect();
        assert_eq!(months, [("202608", "3.500000"), ("202609", "1.000000")]);
        // The end day is included; a day outside the period is not.
        let august = json!({"start": "2026-08-02", "end": "2026-08-02"}).to_string();
        let body = get_ok(&root, TREND, &[("granularity", "DAY"), ("timePeriod", &august), ("groupBy", &keys)]).await;
        assert_eq!(body["data"]["costTotals"]["amount"], "0.500000");
    }

    async fn billing_a_ram_user_sees_only_its_own_keys(app: TestApp) {
        let Scene { app: _app, kim, key_b, .. } = scene(app).await;
        let keys = group_by("API_KEY_ID");
        let body = get_ok(&kim, OVERVIEW, &[("billMonth", "2026-08"), ("groupBy", &keys), ("zeroFilter", "false")]).await;
        assert_eq!(overview_groups(&body), [(key_b.to_string(), "1.000000".into(), "1.0000".into())]);
        assert_eq!(body["data"]["totalAmount"], "1.000000");
        let period = json!({"start": "2026-08-01", "end": "2026-09-30"}).to_string();
        let body = get_ok(&kim, TREND, &[("granularity", "MONTH"), ("timePeriod", &period), ("groupBy", &group_by("BASE_MODEL"))]).await;
        assert_eq!(body["data"]["costTotals"]["amount"], "2.000000");
        let keys_seen: Vec<&str> =
            body["data"]["groupByTotal"].as_array().unwrap().iter().map(|group| group["key"].as_str().unwrap()).collect();
        assert_eq!(keys_seen, ["demo-echo", "demo-embed"]);
    }

    async fn billing_refuses_bad_parameters(app: TestApp) {
        let Scene { app: _app, root, .. } = scene(app).await;
        let keys = group_by("API_KEY_ID");
        let two = json!([{"code": "API_KEY_ID"}, {"code": "BASE_MODEL"}]).to_string();
        let period = json!({"start": "2026-08-01", "end": "2026-08-31"}).to_string();
        let backwards = json!({"start": "2026-08-31", "end": "2026-08-01"}).to_string();
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (OVERVIEW, vec![("groupBy", &keys)]),
            (OVERVIEW, vec![("billMonth", "2026-13"), ("groupBy", &keys)]),
            (OVERVIEW, vec![("billMonth", "2026-08"), ("groupBy", &two)]),
            (OVERVIEW, vec![("billMonth", "2026-08"), ("groupBy", "API_KEY_ID")]),
            (OVERVIEW, vec![("billMonth", "2026-08"), ("groupBy", &keys), ("topNum", "21")]),
            (OVERVIEW, vec![("billMonth", "2026-08"), ("groupBy", r#"[{"code":"COLOUR"}]"#)]),
            (TREND, vec![("granularity", "WEEK"), ("timePeriod", &period), ("groupBy", &keys)]),
            (TREND, vec![("granularity", "DAY"), ("groupBy", &keys)]),
            (TREND, vec![("granularity", "DAY"), ("timePeriod", &backwards), ("groupBy", &keys)]),
        ];
        for (path, pairs) in cases {
            let answer = root.get(&with_query(path, &pairs)).await;
            assert_eq!(answer.status, 400, "{path} {pairs:?}: {}", answer.body);
        }
    }

    async fn billing_list_models_shows_the_catalog_with_prices(app: TestApp) {
        let root = app.login(None).await;
        let body = get_ok(&root, "/modelstudio/models", &[("maxResults", "100")]).await;
        let models = body["models"].as_array().unwrap();
        assert_eq!(body["totalCount"].as_u64().unwrap() as usize, models.len());
        let echo = models.iter().find(|model| model["model"] == "demo-echo").unwrap();
        assert_eq!(echo["provider"], "keygate");
        assert_eq!(echo["capabilities"], json!(["TG"]));
        assert_eq!(echo["inferenceMetadata"], json!({"requestModality": ["Text"], "responseModality": ["Text"]}));
        assert_eq!(echo["prices"][0]["rangeName"], "Default");
        assert_eq!(echo["prices"][0]["prices"][0]["priceName"], "input");
        assert_eq!(echo["prices"][0]["prices"][0]["price"], "1");
        assert_eq!(echo["prices"][0]["prices"][1]["price"], "2");
        let qwen = models.iter().find(|model| model["model"] == "qwen-plus").unwrap();
        assert_eq!(qwen["prices"], json!([]));
        let body = get_ok(&root, "/modelstudio/models", &[("providers", r#"["keygate"]"#)]).await;
        let names: Vec<&str> = body["models"].as_array().unwrap().iter().map(|model| model["model"].as_str().unwrap()).collect();
        assert_eq!(names, ["demo-echo", "demo-embed"]);
        let body = get_ok(&root, "/modelstudio/models", &[("capabilities", r#"["ME"]"#), ("name", "EMBED")]).await;
        let names: Vec<&str> = body["models"].as_array().unwrap().iter().map(|model| model["model"].as_str().unwrap()).collect();
        assert_eq!(names, ["text-embedding-v3", "text-embedding-v4", "demo-embed"]);
        let bad = root.get(&with_query("/modelstudio/models", &[("providers", "keygate")])).await;
        assert_eq!(bad.status, 400, "{}", bad.body);
        // A demo call's usage, flushed, is billed in the current month at its price.
        let (_, key) = root.create_all_key().await;
        let response = app
            .http
            .post(format!("http://{}/compatible-mode/v1/chat/completions", app.address))
            .bearer_auth(&key)
            .json(&json!({"model": "demo-echo", "messages": [{"role": "user", "content": "one two three"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        app.state.shared.usage.flush(app.state.store()).await;
        let month = keygate_core::civil_time::format_utc_timestamp(app.state.shared.clock.now_seconds());
        let body = get_ok(&root, OVERVIEW, &[("billMonth", &month[..7]), ("groupBy", &group_by("BASE_MODEL"))]).await;
        // 3 tokens in at 1, 6 out at 2: 15 millionths.
        assert_eq!(overview_groups(&body), [("demo-echo".into(), "0.000015".into(), "1.0000".into())]);
    }
}
