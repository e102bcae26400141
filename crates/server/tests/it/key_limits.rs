//! docs/CONTRACT.md#per-key-limits through the API and the gateway, with the test clock
//! (advanced, never slept through), on both stores: `keygateLimits` set at create, replaced
//! and removed at edit, shown by GetApiKey and ListApiKeys with `keygateBudget`; requests
//! per minute refused in every protocol and free again the next minute; tokens per minute
//! charged after a call; a token and a cost budget per day refused until the next day and
//! still refused by a node started afresh on the same store; a temporary key counted against
//! its parent; refused input that changes nothing. Calls in flight, held open by a streaming
//! upstream, are counted on SQLite (the counting does not depend on the store).

use futures_util::StreamExt;
use keygate_server::settings::{Settings, UpstreamSettings};
use serde_json::{json, Value};

use crate::gateway_calls::{create_key, mint_token, Call, Reply, Shape, ALL_SHAPES};
use crate::helpers::{price_demo_models, spawn_app_with, spawn_node, with_query, Client, TestApp};

const DAY: i64 = 86_400;

/// The clock jumps a day ahead: a PostgreSQL node must not count itself stale for it; the
/// demo models have prices (for cost budgets).
fn patient_and_priced(settings: &mut Settings) {
    settings.max_staleness_seconds = 40 * DAY as u64;
    price_demo_models(settings);
}

/// `keygateLimits=<limits>` as a query.
fn limits_query(limits: &Value) -> String {
    with_query("/", &[("keygateLimits", &limits.to_string())]).trim_start_matches("/?").to_string()
}

async fn create_limited_key(client: &Client, limits: &Value) -> (i64, String) {
    create_key(client, &limits_query(limits), "").await
}

async fn get_key(client: &Client, key_id: i64) -> Value {
    let answer = client.get(&format!("/modelstudio/apikeys/{key_id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["apiKey"].clone()
}

/// Starts the clock at the beginning of a minute, so that a test's calls share windows.
fn at_start_of_minute(app: &TestApp) {
    app.state.shared.clock.freeze();
    let now = app.state.shared.clock.now_seconds();
    app.state.shared.clock.advance_seconds(60 - now.rem_euclid(60));
}

/// The usage flusher's step: this node's usage written, budgets brought up to date.
async fn flush(app: &TestApp) {
    let shared = &app.state.shared;
    shared.key_budgets.flush_usage(&shared.usage, app.state.store(), shared.clock.now_seconds()).await;
}

/// The code a 429 carries in `shape`, for a rate (`false`) or a quota (`true`) refusal.
fn expected_code(shape: Shape, quota: bool) -> &'static str {
    match (shape, quota) {
        (Shape::Native, false) => "Throttling.RateQuota",
        (Shape::Native, true) => "Throttling.AllocationQuota",
        (Shape::OpenAi, false) => "limit_requests",
        (Shape::OpenAi, true) => "insufficient_quota",
        (Shape::Anthropic, _) => "rate_limit_error",
    }
}

fn code_and_message(reply: &Reply, shape: Shape) -> (String, String) {
    let (code, message) = match shape {
        Shape::Native => (&reply.body["code"], &reply.body["message"]),
        Shape::OpenAi => (&reply.body["error"]["code"], &reply.body["error"]["message"]),
        Shape::Anthropic => (&reply.body["error"]["type"], &reply.body["error"]["message"]),
    };
    (code.as_str().unwrap_or_default().to_string(), message.as_str().unwrap_or_default().to_string())
}

/// A 429 in `shape` with `code`, `Retry-After` (give or take the second that may tick) and a message that names the key's limit.
fn assert_key_limited(reply: &Reply, shape: Shape, code: &str, retry_after: i64, says: &str) {
    assert_eq!(reply.status, 429, "{shape:?}: {}", reply.text);
    // The test clock is the system's plus an offset: a second may tick during the test.
    let waited: i64 = reply.header("retry-after").and_then(|value| value.parse().ok()).unwrap_or(-1);
    assert!(waited == retry_after || waited == retry_after - 1, "{shape:?}: Retry-After {waited}, expected {retry_after}");
    let (found, message) = code_and_message(reply, shape);
    assert_eq!(found, code, "{shape:?}: {}", reply.text);
    assert!(message.contains(says), "{shape:?}: {message}");
}

/// A node started afresh on `app`'s store (its budgets in memory empty), its clock where
/// `app`'s is.
async fn fresh_node_on_the_same_store(app: &TestApp) -> TestApp {
    let data_dir = app.state.shared.settings.data_dir.clone();
    let node = match &app.schema {
        Some(schema) => spawn_node(schema, "kg-node-b", patient_and_priced).await,
        None => {
            spawn_app_with(move |settings| {
                patient_and_priced(settings);
                settings.data_dir = data_dir;
            })
            .await
        }
    };
    let offset = app.state.shared.clock.now_seconds() - node.state.shared.clock.now_seconds();
    node.state.shared.clock.advance_seconds(offset);
    node
}

on_both_stores! {
    settings: patient_and_priced;

    async fn limits_are_set_replaced_removed_and_shown_by_get_and_list(app: TestApp) {
        let root = app.login(None).await;
        let sent = json!({"requestsPerMinute": 60, "tokensPerMinute": 100000, "maxInFlight": 4, "budget": {"period": "Month", "tokens": 2000000, "cost": "12.5"}});
        let created = root.create_key(&limits_query(&sent), "").await;
        assert_eq!(created.status, 200, "{}", created.body);
        let shown = json!({"requestsPerMinute": 60, "tokensPerMinute": 100000, "maxInFlight": 4, "budget": {"period": "month", "tokens": 2000000, "cost": "12.50"}});
        assert_eq!(created.body["apiKey"]["keygateLimits"], shown);
        let key_id = created.body["apiKey"]["apiKeyId"].as_i64().unwrap();
        let viewed = get_key(&root, key_id).await;
        assert_eq!(viewed["keygateLimits"], shown);
        let budget = &viewed["keygateBudget"];
        assert_eq!((&budget["period"], &budget["usedTokens"], &budget["remainingTokens"], &budget["remainingCost"]), (&json!("month"), &json!(0), &json!(2000000), &json!("12.50")), "{budget}");
        assert_eq!((&budget["nearlyUsed"], &budget["usedUp"], &budget["currency"]), (&json!(false), &json!(false), &json!("USD")));
        let listed = root.get(&format!("/modelstudio/apikeys?apiKeyId={key_id}")).await;
        assert_eq!(listed.body["apiKeys"][0]["keygateLimits"], shown);

        // An edit replaces the limits as a whole; one without keygateLimits keeps them; `{}` removes them.
        assert_eq!(root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?{}", limits_query(&json!({"requestsPerMinute": 5}))), "").await.status, 200);
        assert_eq!(get_key(&root, key_id).await["keygateLimits"], json!({"requestsPerMinute": 5}));
        assert_eq!(root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?description=renamed"), "").await.status, 200);
        assert_eq!(get_key(&root, key_id).await["keygateLimits"], json!({"requestsPerMinute": 5}));
        assert_eq!(root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?{}", limits_query(&json!({}))), "").await.status, 200);
        let cleared = get_key(&root, key_id).await;
        assert_eq!((&cleared["keygateLimits"], &cleared["keygateBudget"]), (&Value::Null, &Value::Null));
        // Audited.
        let audit = app.state.store().list_audit(1, 50, None).await.unwrap();
        let details: Vec<&str> = audit.iter().filter(|row| row.action.starts_with("ApiKey.")).map(|row| row.detail.as_str()).collect();
        assert!(details.iter().any(|detail| detail.ends_with(" limits=rpm:60,tpm:100000,in_flight:4,budget:month/tokens:2000000/cost_micros:12500000")), "{details:?}");
        assert!(details.contains(&"auth=All limits=rpm:5") && details.contains(&"auth=All limits=none"), "{details:?}");
    }

    async fn refused_limits_answer_400_naming_the_field_and_change_nothing(app: TestApp) {
        let root = app.login(None).await;
        let (key_id, _) = create_key(&root, "", "").await;
        let cases = [
            (json!({"requestsPerMinute": 0}), "keygateLimits.requestsPerMinute must be an integer from 1 to 1000000000000, got 0."),
            (json!({"maxInFlight": -1}), "keygateLimits.maxInFlight must be an integer from 1 to 1000000, got -1."),
            (json!({"budget": {"tokens": 5}}), "keygateLimits.budget.period is required: day or month."),
            (json!({"budget": {"period": "week", "tokens": 5}}), "keygateLimits.budget.period must be day or month, got 'week'."),
            (json!({"budget": {"period": "day"}}), "keygateLimits.budget needs tokens, cost or both."),
            (json!({"budget": {"period": "day", "cost": "1.0000001"}}), "keygateLimits.budget.cost must be a decimal text above 0"),
            (json!({"requestPerMinute": 5}), "keygateLimits must be a JSON object like"),
        ];
        for (limits, says) in &cases {
            let created = root.create_key(&limits_query(limits), "").await;
            assert_eq!((created.status, created.code()), (400, "InvalidParameter"), "{limits}: {}", created.body);
            assert!(created.body["message"].as_str().unwrap().starts_with(says), "{limits}: {}", created.body);
            // With a valid description in the same edit: neither is applied.
            let edited = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?description=changed&{}", limits_query(limits)), "").await;
            assert_eq!((edited.status, edited.code()), (400, "InvalidParameter"), "{limits}: {}", edited.body);
        }
        let unread = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?keygateLimits=%7Bnot%20json"), "").await;
        assert_eq!(unread.status, 400);
        let listed = root.get("/modelstudio/apikeys").await;
        assert_eq!(listed.body["apiKeys"].as_array().unwrap().len(), 1, "no key was created: {}", listed.body);
        let key = get_key(&root, key_id).await;
        assert_eq!((&key["description"], &key["keygateLimits"]), (&json!(""), &Value::Null));
        // A key the caller may not see is 404 before its limits are judged.
        let hidden = root.send("PUT", &format!("/modelstudio/apikeys/999999?{}", limits_query(&json!({"requestsPerMinute": 0}))), "").await;
        assert_eq!(hidden.code(), "ApiKey.NotFound");
    }

    async fn requests_per_minute_refuse_in_every_protocol_until_the_next_minute(app: TestApp) {
        let root = app.login(None).await;
        let (_, key) = create_limited_key(&root, &json!({"requestsPerMinute": 2})).await;
        at_start_of_minute(&app);
        let call = Call::echo(app.address, &key);
        let first = call.send(&app.http, Shape::OpenAi).await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_eq!(
            (first.header("x-ratelimit-limit-requests"), first.header("x-ratelimit-remaining-requests"), first.header("x-ratelimit-reset-requests")),
            (Some("2"), Some("1"), Some("60s"))
        );
        app.state.shared.clock.advance_seconds(15);
        assert_eq!(call.send(&app.http, Shape::Native).await.header("x-ratelimit-remaining-requests"), Some("0"));
        for shape in ALL_SHAPES {
            let reply = call.send(&app.http, shape).await;
            assert_key_limited(&reply, shape, expected_code(shape, false), 45, "the API key's limit of 2 requests per minute is used up");
            assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("0"), "{shape:?}");
        }
        // Another key is not limited by this one's.
        let (_, other) = create_key(&root, "", "").await;
        assert_eq!(Call::echo(app.address, &other).send(&app.http, Shape::OpenAi).await.status, 200);
        app.state.shared.clock.advance_seconds(45);
        for shape in ALL_SHAPES {
            app.state.shared.clock.advance_seconds(60);
            assert_eq!(call.send(&app.http, shape).await.status, 200, "{shape:?} in a new minute");
        }
    }

    async fn tokens_per_minute_are_charged_after_a_call_and_refuse_the_next(app: TestApp) {
        let root = app.login(None).await;
        let (_, key) = create_limited_key(&root, &json!({"tokensPerMinute": 3})).await;
        at_start_of_minute(&app);
        let call = Call::echo(app.address, &key);
        let first = call.send(&app.http, Shape::Anthropic).await;
        assert_eq!((first.status, first.header("x-ratelimit-limit-tokens"), first.header("x-ratelimit-remaining-tokens")), (200, Some("3"), Some("3")), "{}", first.text);
        app.state.shared.clock.advance_seconds(1);
        for shape in ALL_SHAPES {
            assert_key_limited(&call.send(&app.http, shape).await, shape, expected_code(shape, true), 59, "the API key's limit of 3 tokens per minute is used up");
        }
        app.state.shared.clock.advance_seconds(59);
        assert_eq!(call.send(&app.http, Shape::OpenAi).await.status, 200);
    }

    async fn a_token_budget_refuses_until_the_next_day_and_holds_on_a_fresh_node(app: TestApp) {
        let root = app.login(None).await;
        let (key_id, key) = create_limited_key(&root, &json!({"budget": {"period": "day", "tokens": 5}})).await;
        let call = Call::echo(app.address, &key);
        // Admitted with the whole budget left; the demo call uses more than it.
        assert_eq!(call.send(&app.http, Shape::OpenAi).await.status, 200);
        let now = app.state.shared.clock.now_seconds();
        let to_midnight = DAY - now.rem_euclid(DAY);
        for shape in ALL_SHAPES {
            assert_key_limited(&call.send(&app.http, shape).await, shape, expected_code(shape, true), to_midnight, "the API key's daily budget of 5 tokens is used up until the day ends (UTC)");
        }
        flush(&app).await;
        let budget = get_key(&root, key_id).await["keygateBudget"].clone();
        assert_eq!((&budget["usedUp"], &budget["nearlyUsed"], &budget["remainingTokens"]), (&json!(true), &json!(true), &json!(0)), "{budget}");
        // A node that starts now reads the spend from the store.
        let fresh = fresh_node_on_the_same_store(&app).await;
        let on_fresh = Call::echo(fresh.address, &key).send(&fresh.http, Shape::Native).await;
        assert_key_limited(&on_fresh, Shape::Native, "Throttling.AllocationQuota", to_midnight, "daily budget of 5 tokens");
        // The next day renews it.
        app.state.shared.clock.advance_seconds(to_midnight);
        assert_eq!(call.send(&app.http, Shape::Native).await.status, 200);
        // Up to a day passed: the console session of the morning may have ended meanwhile.
        let root = app.login(None).await;
        assert_eq!(get_key(&root, key_id).await["keygateBudget"]["usedTokens"], 0, "the new day's call is not flushed yet");
    }

    async fn a_cost_budget_refuses_once_spent_and_a_temporary_key_spends_its_parents(app: TestApp) {
        let root = app.login(None).await;
        // demo-echo costs 1 USD per million input tokens and 2 per million output: a call
        // costs a few millionths, more than this budget.
        let (key_id, key) = create_limited_key(&root, &json!({"budget": {"period": "day", "cost": "0.000001"}})).await;
        let (token, _) = mint_token(&app.http, app.address, &key, "").await;
        assert_eq!(Call::echo(app.address, &token).send(&app.http, Shape::OpenAi).await.status, 200);
        let reply = Call::echo(app.address, &key).send(&app.http, Shape::Native).await;
        assert_key_limited(&reply, Shape::Native, "Throttling.AllocationQuota", DAY - app.state.shared.clock.now_seconds().rem_euclid(DAY), "the API key's daily cost budget of 0.000001 is used up");
        let reply = Call::echo(app.address, &token).send(&app.http, Shape::Anthropic).await;
        assert_eq!(reply.status, 429, "the temporary key shares its parent's budget");
        flush(&app).await;
        let budget = get_key(&root, key_id).await["keygateBudget"].clone();
        assert_eq!((&budget["usedUp"], &budget["remainingCost"]), (&json!(true), &json!("0.00")), "{budget}");
        app.state.shared.clock.advance_seconds(DAY);
        assert_eq!(Call::echo(app.address, &token).send(&app.http, Shape::OpenAi).await.status, 401, "the token expired meanwhile");
        assert_eq!(Call::echo(app.address, &key).send(&app.http, Shape::OpenAi).await.status, 200);
    }

    async fn a_temporary_key_counts_against_its_parents_requests_per_minute(app: TestApp) {
        let root = app.login(None).await;
        let (_, key) = create_limited_key(&root, &json!({"requestsPerMinute": 1})).await;
        at_start_of_minute(&app);
        let (token, _) = mint_token(&app.http, app.address, &key, "").await;
        assert_eq!(Call::echo(app.address, &token).send(&app.http, Shape::OpenAi).await.status, 200);
        let parent = Call::echo(app.address, &key).send(&app.http, Shape::OpenAi).await;
        assert_key_limited(&parent, Shape::OpenAi, "limit_requests", 60, "1 requests per minute");
    }
}

/// A provider that streams one event and then holds its answer open until told to end it.
async fn holding_upstream() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::sync::broadcast::Sender<()>) {
    let (release, _) = tokio::sync::broadcast::channel::<()>(4);
    let releases = release.clone();
    let router = axum::Router::new().fallback(move || {
        let mut released = releases.subscribe();
        async move {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"))
            });
            let end = futures_util::stream::once(async move {
                let _ = released.recv().await;
                Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"data: [DONE]\n\n"))
            });
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(axum::body::Body::from_stream(first.chain(end)))
                .unwrap()
        }
    });
    let (address, shutdown) = crate::helpers::serve_upstream_double(router).await;
    (address, shutdown, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_are_bounded_and_freed_when_the_body_ends_or_the_client_goes() {
    let (upstream, _stop, release) = holding_upstream().await;
    let app = spawn_app_with(move |settings| {
        settings.upstreams = vec![UpstreamSettings {
            name: "holding".into(),
            openai_base_url: Some(format!("http://{upstream}/v1")),
            dashscope_base_url: Some(format!("http://{upstream}/api/v1")),
            anthropic_base_url: None,
            responses_base_url: None,
            api_key_env: None,
            models: vec!["double-chat".into()],
            apps: Vec::new(),
            ..UpstreamSettings::default()
        }];
    })
    .await;
    let root = app.login(None).await;
    let (_, key) = create_limited_key(&root, &json!({"maxInFlight": 1})).await;
    let call = Call::model(app.address, &key, "double-chat");
    let streamed = |http: &reqwest::Client| {
        let mut body = crate::gateway_calls::request_body(Shape::OpenAi, "double-chat", true);
        body["stream"] = json!(true);
        http.post(format!("http://{}/compatible-mode/v1/chat/completions", app.address)).bearer_auth(&key).json(&body)
    };
    // The first call holds its place while its answer streams.
    let mut held = streamed(&app.http).send().await.unwrap();
    assert_eq!(held.status(), 200);
    assert!(held.chunk().await.unwrap().is_some(), "the first event arrives");
    let refused = call.send(&app.http, Shape::OpenAi).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        code_and_message(&refused, Shape::OpenAi),
        ("limit_requests".into(), "Requests throttling triggered: the API key already has 1 calls in flight, its limit.".into())
    );
    let native = call.send(&app.http, Shape::Native).await;
    assert_eq!((native.status, native.body["code"].as_str()), (429, Some("Throttling")), "{}", native.text);
    // The answer ends: the place is free.
    release.send(()).unwrap();
    while held.chunk().await.unwrap().is_some() {}
    let mut second = eventually_admitted(&streamed, &app.http).await;
    assert!(second.chunk().await.unwrap().is_some());
    // The client goes away mid-answer: the place is free too.
    drop(second);
    let third = eventually_admitted(&streamed, &app.http).await;
    drop(third);
}

/// Sends until admitted: the place of a finished call is freed when the server has dropped
/// its body, which happens just after the client saw its end (a handful of tries at most).
async fn eventually_admitted(streamed: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder, http: &reqwest::Client) -> reqwest::Response {
    for _ in 0..200 {
        let response = streamed(http).send().await.unwrap();
        if response.status() == 200 {
            return response;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the call in flight was never freed");
}
