//! keygate's usage API (`GET /keygate/v1/usage`, docs/CONTRACT.md#usage-api) and the
//! `keygateUsage` of GetApiKey and ListApiKeys, seen from outside, on both stores: totals
//! equal to the stored usage and costed at the `[[prices]]`; each grouping and
//! granularity; `IN` and `NOT` filters; the CSV form, quoted and guarded against formulas;
//! a RAM user's view, which holds only its own keys' usage; and bad parameters refused
//! with 400 in the error envelope.

use keygate_core::access::Role;
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::usage::TokenUsage;
use serde_json::{json, Value};

use crate::helpers::{get_ok, price_demo_models, stored_usage, with_query, Client, TestApp};

const USAGE: &str = "/keygate/v1/usage";

/// A model name a provider or the settings could use, which a spreadsheet would run as a
/// formula and which holds CSV's separators.
const FORMULA_MODEL: &str = "=HYPERLINK(\"x\",\"y\")";

/// The account's key A in the default workspace, the RAM user kim's key B in a
/// sub-workspace, and their usage (stored directly) in August and September 2026:
///
/// | key | workspace | model | minute | calls | input | output | cached | reasoning | cost |
/// |---|---|---|---|---|---|---|---|---|---|
/// | A | default | demo-echo | 08-01 10:00 | 2 | 1,000,000 | 500,000 | 100,000 | 50,000 | 2.0 |
/// | A | default | demo-echo | 08-01 10:01 | 1 | 0 | 250,000 | 0 | 0 | 0.5 |
/// | A | default | `FORMULA_MODEL` (no price) | 08-02 00:00 | 1 | 100 | 0 | 0 | 0 | - |
/// | B | team | demo-embed | 08-01 11:30 | 3 | 2,000,000 | 0 | 0 | 0 | 1.0 |
/// | B | team | demo-echo | 09-05 23:59 | 1 | 1,000,000 | 0 | 0 | 0 | 1.0 |
struct Scene {
    root: Client,
    kim: Client,
    key_a: i64,
    key_b: i64,
    default_workspace: String,
    team_workspace: String,
}

async fn scene(app: &TestApp) -> Scene {
    let root = app.login(None).await;
    app.create_user("kim", Role::KeyManager).await;
    let created = root.send("POST", "/modelstudio/workspaces?workspaceName=Team", "").await;
    let team_workspace = created.body["workspace"]["workspaceId"].as_str().expect("a new workspace").to_string();
    let added = root.send_json("POST", &format!("/keygate/v1/workspaces/{team_workspace}/members"), &json!({"user": "kim"})).await;
    assert_eq!(added.status, 200, "{}", added.body);
    let kim = app.login(Some("kim")).await;
    let (key_a, _) = root.create_all_key().await;
    let default_workspace =
        root.get(&format!("/modelstudio/apikeys/{key_a}")).await.body["apiKey"]["workspaceId"].as_str().unwrap().to_string();
    let created_b = kim.create_key(&format!("workspaceId={team_workspace}"), "").await;
    let key_b = created_b.body["apiKey"]["apiKeyId"].as_i64().unwrap_or_else(|| panic!("kim's key: {}", created_b.body));
    let tokens = |input, output, cached, reasoning| TokenUsage { input, output, cached, reasoning };
    let (default, team) = (default_workspace.as_str(), team_workspace.as_str());
    let rows = [
        stored_usage(key_a, default, "demo-echo", "2026-08-01T10:00:00Z", 2, tokens(1_000_000, 500_000, 100_000, 50_000)),
        stored_usage(key_a, default, "demo-echo", "2026-08-01T10:01:00Z", 1, tokens(0, 250_000, 0, 0)),
        stored_usage(key_a, default, FORMULA_MODEL, "2026-08-02T00:00:00Z", 1, tokens(100, 0, 0, 0)),
        stored_usage(key_b, team, "demo-embed", "2026-08-01T11:30:00Z", 3, tokens(2_000_000, 0, 0, 0)),
        stored_usage(key_b, team, "demo-echo", "2026-09-05T23:59:00Z", 1, tokens(1_000_000, 0, 0, 0)),
    ];
    app.state.store().add_token_usage(&rows).await.unwrap();
    Scene { root, kim, key_a, key_b, default_workspace, team_workspace }
}

/// The whole range of the scene, with `extra` parameters.
async fn usage(client: &Client, extra: &[(&str, &str)]) -> Value {
    let mut pairs = vec![("from", "2026-08-01"), ("to", "2026-09-30")];
    pairs.extend_from_slice(extra);
    get_ok(client, USAGE, &pairs).await
}

/// Some figures of a row or total: `(requests, cost, unpriced)`.
type Figures<'a> = (i64, &'a str, bool);

/// The [`Figures`] of a row or total.
fn figures(value: &Value) -> Figures<'_> {
    (value["requests"].as_i64().unwrap(), value["cost"].as_str().unwrap(), value["unpriced"].as_bool().unwrap())
}

/// `(the value of field, requests, cost)` of each row.
fn rows_by<'a>(answer: &'a Value, field: &str) -> Vec<(Value, i64, &'a str)> {
    let rows = answer["rows"].as_array().expect("rows");
    rows.iter().map(|row| (row[field].clone(), row["requests"].as_i64().unwrap(), row["cost"].as_str().unwrap())).collect()
}

/// `(the value of first, of second, requests)` of each row.
fn rows_by_two(answer: &Value, first: &str, second: &str) -> Vec<(Value, Value, i64)> {
    let rows = answer["rows"].as_array().expect("rows");
    rows.iter().map(|row| (row[first].clone(), row[second].clone(), row["requests"].as_i64().unwrap())).collect()
}

on_both_stores! {
    settings: price_demo_models;

    async fn usage_totals_equal_the_stored_usage_and_its_cost(app: TestApp) {
        let Scene { root, .. } = scene(&app).await;
        let answer = usage(&root, &[("granularity", "none")]).await;
        let total = json!({
            "requests": 8, "inputTokens": 4_000_100, "outputTokens": 750_000, "cachedTokens": 100_000, "reasoningTokens": 50_000,
            "totalTokens": 4_750_100, "cost": "4.500000", "currency": "USD", "unpriced": true,
        });
        assert_eq!(answer["total"], total);
        assert_eq!((&answer["from"], &answer["to"]), (&json!("2026-08-01T00:00:00Z"), &json!("2026-10-01T00:00:00Z")), "the day of `to` is included");
        assert_eq!((&answer["granularity"], &answer["groupBy"]), (&json!("none"), &json!([])));
        let mut row = total.clone();
        row.as_object_mut().unwrap().extend([("periodStart", Value::Null), ("keyId", Value::Null), ("model", Value::Null), ("workspaceId", Value::Null)].map(|(name, value)| (name.to_string(), value)));
        assert_eq!(answer["rows"], json!([row]));
        // `total` is another name of `none`; RFC 3339 times with offsets name the same range.
        let same = get_ok(&root, USAGE, &[("from", "2026-08-01T08:00:00+08:00"), ("to", "2026-10-01T00:00:00.000Z"), ("granularity", "TOTAL")]).await;
        assert_eq!(same["total"], total);
    }

    async fn usage_groups_by_each_dimension_and_granularity(app: TestApp) {
        let Scene { root, key_a, key_b, default_workspace, team_workspace, .. } = scene(&app).await;
        let by_key = usage(&root, &[("granularity", "none"), ("groupBy", "key")]).await;
        assert_eq!(rows_by(&by_key, "keyId"), [(json!(key_a), 4, "2.500000"), (json!(key_b), 4, "2.000000")]);
        assert_eq!(by_key["rows"].as_array().unwrap().iter().map(|row| figures(row).2).collect::<Vec<_>>(), [true, false], "only A used a model without a price");
        assert!(by_key["rows"][0]["model"].is_null() && by_key["rows"][0]["periodStart"].is_null());

        let by_model = usage(&root, &[("granularity", "none"), ("groupBy", "model")]).await;
        assert_eq!(
            rows_by(&by_model, "model"),
            [(json!(FORMULA_MODEL), 1, "0.000000"), (json!("demo-echo"), 4, "3.500000"), (json!("demo-embed"), 3, "1.000000")]
        );
        let by_workspace = usage(&root, &[("granularity", "none"), ("groupBy", "workspace")]).await;
        let mut expected = vec![(json!(default_workspace), 4, "2.500000"), (json!(team_workspace), 4, "2.000000")];
        expected.sort_by(|left, right| left.0.as_str().cmp(&right.0.as_str()));
        assert_eq!(rows_by(&by_workspace, "workspaceId"), expected);

        let by_key_and_model = usage(&root, &[("granularity", "none"), ("groupBy", "model,KEY")]).await;
        assert_eq!(by_key_and_model["groupBy"], json!(["model", "key"]));
        assert_eq!(
            rows_by_two(&by_key_and_model, "keyId", "model"),
            [
                (json!(key_a), json!(FORMULA_MODEL), 1),
                (json!(key_a), json!("demo-echo"), 3),
                (json!(key_b), json!("demo-echo"), 1),
                (json!(key_b), json!("demo-embed"), 3),
            ]
        );

        let minutes = get_ok(&root, USAGE, &[("from", "2026-08-01T10:00:00Z"), ("to", "2026-08-01T12:00:00Z"), ("granularity", "minute")]).await;
        assert_eq!(
            rows_by(&minutes, "periodStart"),
            [(json!("2026-08-01T10:00:00Z"), 2, "2.000000"), (json!("2026-08-01T10:01:00Z"), 1, "0.500000"), (json!("2026-08-01T11:30:00Z"), 3, "1.000000")]
        );
        let hours = get_ok(&root, USAGE, &[("from", "2026-08-01"), ("to", "2026-08-01"), ("granularity", "hour")]).await;
        assert_eq!(rows_by(&hours, "periodStart"), [(json!("2026-08-01T10:00:00Z"), 3, "2.500000"), (json!("2026-08-01T11:00:00Z"), 3, "1.000000")]);
        // Day is the default granularity.
        let days = usage(&root, &[]).await;
        assert_eq!(days["granularity"], "day");
        assert_eq!(
            rows_by(&days, "periodStart"),
            [(json!("2026-08-01T00:00:00Z"), 6, "3.500000"), (json!("2026-08-02T00:00:00Z"), 1, "0.000000"), (json!("2026-09-05T00:00:00Z"), 1, "1.000000")]
        );
        let months = usage(&root, &[("granularity", "month"), ("groupBy", "key")]).await;
        assert_eq!(
            rows_by_two(&months, "periodStart", "keyId"),
            [(json!("2026-08-01T00:00:00Z"), json!(key_a), 4), (json!("2026-08-01T00:00:00Z"), json!(key_b), 3), (json!("2026-09-01T00:00:00Z"), json!(key_b), 1)]
        );
    }

    async fn usage_filters_keep_and_drop_keys_models_and_workspaces(app: TestApp) {
        let Scene { root, key_a, key_b, default_workspace, team_workspace, .. } = scene(&app).await;
        let (a, b) = (key_a.to_string(), key_b.to_string());
        let both = format!("{a},{b}");
        let (a, b, both) = (a.as_str(), b.as_str(), both.as_str());
        let (default_workspace, team_workspace) = (default_workspace.as_str(), team_workspace.as_str());
        let cases: Vec<(Vec<(&str, &str)>, Figures)> = vec![
            (vec![("keyId", a)], (4, "2.500000", true)),
            (vec![("excludeKeyId", a)], (4, "2.000000", false)),
            (vec![("keyId", both), ("excludeKeyId", b)], (4, "2.500000", true)),
            (vec![("model", "demo-echo")], (4, "3.500000", false)),
            // One model per parameter: a name with commas is taken whole.
            (vec![("model", FORMULA_MODEL)], (1, "0.000000", true)),
            (vec![("model", "demo-echo"), ("model", "demo-embed")], (7, "4.500000", false)),
            (vec![("excludeModel", "demo-echo"), ("excludeModel", "demo-embed")], (1, "0.000000", true)),
            (vec![("workspaceId", team_workspace)], (4, "2.000000", false)),
            (vec![("excludeWorkspaceId", team_workspace)], (4, "2.500000", true)),
            (vec![("keyId", both), ("model", "demo-echo"), ("excludeWorkspaceId", default_workspace)], (1, "1.000000", false)),
            (vec![("keyId", "999999")], (0, "0.000000", false)),
        ];
        for (filters, expected) in cases {
            let answer = usage(&root, &filters).await;
            assert_eq!(figures(&answer["total"]), expected, "{filters:?}");
        }
    }

    async fn usage_as_csv_is_quoted_and_guarded_against_formulas(app: TestApp) {
        let Scene { root, .. } = scene(&app).await;
        let pairs = [("from", "2026-08-01"), ("to", "2026-09-30"), ("granularity", "none"), ("groupBy", "model"), ("format", "csv")];
        let answer = root.get_text(&with_query(USAGE, &pairs), "application/json").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.content_type, "text/csv; charset=utf-8");
        assert_eq!(
            answer.text,
            "period_start,key_id,model,workspace_id,requests,input_tokens,output_tokens,cached_tokens,reasoning_tokens,total_tokens,cost,currency,unpriced\r\n\
             ,,\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\",,1,100,0,0,0,100,0.000000,USD,true\r\n\
             ,,demo-echo,,4,2000000,750000,100000,50000,2750000,3.500000,USD,false\r\n\
             ,,demo-embed,,3,2000000,0,0,0,2000000,1.000000,USD,false\r\n"
        );
        // Without `format`, an Accept header that prefers CSV asks for it; `format` wins.
        let without_format = &pairs[..4];
        let accepted = root.get_text(&with_query(USAGE, without_format), "text/csv, application/json;q=0.5").await;
        assert_eq!((accepted.status, accepted.text.as_str()), (200, answer.text.as_str()));
        let json_anyway = root.get_text(&with_query(USAGE, &[("format", "json")]), "text/csv").await;
        assert!(json_anyway.content_type.starts_with("application/json"), "{}", json_anyway.content_type);
        // A refused CSV request answers the JSON error envelope.
        let refused = root.get_text(&with_query(USAGE, &[("format", "csv"), ("granularity", "week")]), "text/csv").await;
        assert_eq!(refused.status, 400);
        let body: Value = serde_json::from_str(&refused.text).expect("a JSON refusal");
        assert_eq!(body["code"], "InvalidParameter");
    }

    async fn usage_of_a_ram_user_holds_only_its_own_keys(app: TestApp) {
        let Scene { kim, key_a, key_b, .. } = scene(&app).await;
        let mine = usage(&kim, &[("granularity", "none"), ("groupBy", "key")]).await;
        assert_eq!(rows_by(&mine, "keyId"), [(json!(key_b), 4, "2.000000")]);
        assert_eq!(figures(&mine["total"]), (4, "2.000000", false));
        // Asking for another user's key finds nothing, and says nothing about it.
        let theirs = usage(&kim, &[("keyId", &key_a.to_string())]).await;
        assert_eq!((figures(&theirs["total"]), &theirs["rows"]), ((0, "0.000000", false), &json!([])));
    }

    async fn usage_refuses_bad_parameters_with_400_in_the_error_envelope(app: TestApp) {
        let Scene { root, .. } = scene(&app).await;
        let cases: [(&[(&str, &str)], &str); 9] = [
            (&[("granularity", "week")], "granularity must be minute, hour, day, month or none, got 'week'."),
            (&[("from", "2026-08-10"), ("to", "2026-08-01")], "The end of the time range must be after its start."),
            (&[("from", "2026-08-01T10:00:00Z"), ("to", "2026-08-01T10:00:00Z")], "The end of the time range must be after its start."),
            (&[("from", "2026-08-01"), ("to", "2026-08-03"), ("granularity", "minute")], "The time range is too long for this granularity: at most 2 days."),
            (&[("from", "2024-01-01"), ("to", "2026-08-01")], "The time range is too long for this granularity: at most 800 days."),
            (&[("from", "yesterday")], "from must be an RFC 3339 time (2026-08-01T00:00:00Z) or a day YYYY-MM-DD (UTC), got 'yesterday'."),
            (&[("groupBy", "key,region")], "groupBy must be a list of key, model and workspace, got 'region'."),
            (&[("keyId", "abc")], "keyId must be API key ids (positive integers), got 'abc'."),
            (
                &[("group_by", "key")],
                "Unknown query parameter 'group_by': the parameters are from, to, granularity, groupBy, keyId, excludeKeyId, model, excludeModel, workspaceId, excludeWorkspaceId, format.",
            ),
        ];
        for (pairs, message) in cases {
            let answer = root.get(&with_query(USAGE, pairs)).await;
            let request_id = answer.body["requestId"].as_str().unwrap_or_default().to_string();
            assert!(!request_id.is_empty(), "{pairs:?}: {}", answer.body);
            assert_eq!(answer.status, 400, "{pairs:?}");
            assert_eq!(
                answer.body,
                json!({"requestId": request_id, "code": "InvalidParameter", "message": message, "httpStatusCode": 400, "success": false}),
                "{pairs:?}"
            );
        }
    }

    async fn keys_answer_their_usage_as_keygate_usage(app: TestApp) {
        let root = app.login(None).await;
        app.create_user("kim", Role::KeyManager).await;
        let kim = app.login(Some("kim")).await;
        let (key_a, _) = root.create_all_key().await;
        let (idle_key, _) = root.create_all_key().await;
        let (key_b, _) = kim.create_all_key().await;
        let workspace = root.get(&format!("/modelstudio/apikeys/{key_a}")).await.body["apiKey"]["workspaceId"].as_str().unwrap().to_string();
        // Key totals cover the retained period up to now: usage of this minute and of a month ago.
        let now = app.state.shared.clock.now_seconds();
        let minute = |seconds_ago: i64| format_utc_timestamp(now - seconds_ago - (now - seconds_ago).rem_euclid(60));
        let tokens = |input, output| TokenUsage { input, output, cached: 0, reasoning: 0 };
        let rows = [
            stored_usage(key_a, &workspace, "demo-echo", &minute(0), 2, tokens(1_000_000, 0)),
            stored_usage(key_a, &workspace, "qwen-plus", &minute(30 * 86_400), 1, tokens(10, 20)),
            stored_usage(key_b, &workspace, "demo-embed", &minute(0), 1, tokens(2_000_000, 0)),
        ];
        app.state.store().add_token_usage(&rows).await.unwrap();
        let usage_a = json!({
            "requests": 3, "inputTokens": 1_000_010, "outputTokens": 20, "cachedTokens": 0, "reasoningTokens": 0,
            "totalTokens": 1_000_030, "cost": "1.000000", "currency": "USD", "unpriced": true,
        });
        let usage_b = json!({
            "requests": 1, "inputTokens": 2_000_000, "outputTokens": 0, "cachedTokens": 0, "reasoningTokens": 0,
            "totalTokens": 2_000_000, "cost": "1.000000", "currency": "USD", "unpriced": false,
        });
        let nothing = json!({
            "requests": 0, "inputTokens": 0, "outputTokens": 0, "cachedTokens": 0, "reasoningTokens": 0,
            "totalTokens": 0, "cost": "0.000000", "currency": "USD", "unpriced": false,
        });
        let fetched = root.get(&format!("/modelstudio/apikeys/{key_a}")).await;
        assert_eq!(fetched.body["apiKey"]["keygateUsage"], usage_a, "{}", fetched.body);
        let fetched = root.get(&format!("/modelstudio/apikeys/{idle_key}")).await;
        assert_eq!(fetched.body["apiKey"]["keygateUsage"], nothing);
        let listed = get_ok(&root, "/modelstudio/apikeys", &[("order", "ASC")]).await;
        let usages: Vec<(i64, Value)> = listed["apiKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| (key["apiKeyId"].as_i64().unwrap(), key["keygateUsage"].clone()))
            .collect();
        assert_eq!(usages, [(key_a, usage_a), (idle_key, nothing), (key_b, usage_b.clone())]);
        // A RAM user sees its own key with its usage, and nothing of the others.
        let listed = get_ok(&kim, "/modelstudio/apikeys", &[]).await;
        assert_eq!(listed["apiKeys"].as_array().unwrap().len(), 1);
        assert_eq!(listed["apiKeys"][0]["keygateUsage"], usage_b);
        // A created key answers no usage (nor does a reset one: see the OpenAPI answers).
        let created = root.create_key("", "").await;
        assert!(created.body["apiKey"].get("keygateUsage").is_none(), "{}", created.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_range_is_whole_periods_up_to_the_end_of_this_minute() {
    let app = crate::helpers::spawn_app_with(price_demo_models).await;
    let root = app.login(None).await;
    for (granularity, period, periods) in [("day", 86_400, 7), ("none", 86_400, 7), ("hour", 3_600, 24), ("minute", 60, 60)] {
        // The minute may turn during the call: either side of it is right.
        let before = app.state.shared.clock.now_seconds();
        let answer = get_ok(&root, USAGE, &[("granularity", granularity)]).await;
        let after = app.state.shared.clock.now_seconds();
        let expected = |now: i64| {
            let until = now - now.rem_euclid(60) + 60;
            let last = until - 1;
            (format_utc_timestamp(last - last.rem_euclid(period) - (periods - 1) * period), format_utc_timestamp(until))
        };
        let answered = (answer["from"].as_str().unwrap().to_string(), answer["to"].as_str().unwrap().to_string());
        assert!(answered == expected(before) || answered == expected(after), "{granularity}: {answered:?}");
        assert_eq!((&answer["granularity"], &answer["rows"]), (&json!(granularity), &json!([])));
    }
    assert_eq!(get_ok(&root, USAGE, &[]).await["granularity"], "day");
}
