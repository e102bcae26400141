//! Model limits across nodes (docs/CONTRACT.md#model-limits, "Across nodes"): three nodes on
//! one PostgreSQL counting in Redis hold a workspace's limit under twice its load; three
//! nodes without Redis each admit their share; a node whose Redis is killed fails open (its
//! share, `/readyz` says so) or closed (503), and counts in Redis again when it returns.
//! Tests announce themselves skipped without `KEYGATE_TEST_DATABASE_URL` or
//! `KEYGATE_TEST_REDIS_URL` (the private `redis-server` of the last two needs the latter too,
//! as the sign that Redis is installed).

use std::net::SocketAddr;
use std::time::Duration;

use keygate_core::limits::{LimitChange, LimitValues};
use keygate_server::settings::Settings;
use serde_json::{json, Value};

use crate::helpers::{
    announce_postgres_skip, announce_redis_skip, redis_test_prefix, redis_test_url, spawn_app_with, spawn_node, PostgresSchema, TestApp,
};

/// What every node of these tests shares: heartbeats each second, and no staleness from
/// the clock moved to the start of an hour.
fn node_settings(settings: &mut Settings) {
    settings.node_heartbeat_seconds = 1;
    settings.max_staleness_seconds = 86_400;
    settings.redis_timeout_milliseconds = 200;
}

/// Moves every node's clock by the same amount, to just after the start of an hour, so that
/// a test's calls share one window of an hour.
fn to_start_of_hour(nodes: &[&TestApp]) {
    let now = nodes[0].state.shared.clock.now_seconds();
    let forward = 3600 - now.rem_euclid(3600) + 1;
    for node in nodes {
        node.state.shared.clock.advance_seconds(forward);
    }
}

/// Sets the default workspace's limit of demo-echo to `requests` an hour, through the store,
/// and waits until every node's registry has it.
async fn limit_demo_echo(nodes: &[&TestApp], requests: u64) {
    let store = nodes[0].state.store();
    let workspace = store.default_workspace(1, "ap-southeast-1").await.unwrap().workspace_id;
    let values =
        LimitValues { request_limit: Some(requests), request_limit_period: Some(3600), usage_limit: None, usage_limit_period: None };
    let change = LimitChange::parse(Some("OVERLAY"), values).unwrap();
    store.update_model_limits(&nodes[0].root_audit(), &workspace, &[("demo-echo".to_string(), change)]).await.unwrap();
    for node in nodes {
        wait_until("the limit reaches every node", || {
            let grants = node.state.store().registry().workspace(&workspace);
            grants.as_deref().and_then(|grants| grants.model_limit("demo-echo")).is_some()
        })
        .await;
    }
}

/// Polls `condition` every 20 ms for up to 20 s.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The status of a chat call of `model` with `key` to `address`, and its `Retry-After`.
async fn chat(app: &TestApp, address: SocketAddr, key: &str, model: &str) -> (u16, Option<String>, Value) {
    let response = app
        .http
        .post(format!("http://{address}/compatible-mode/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("gateway answers");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_string());
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

/// `calls` chat calls to each node at once; how many each node served.
async fn load(nodes: &[&TestApp], key: &str, calls: usize) -> Vec<usize> {
    let mut tasks = Vec::new();
    for node in nodes {
        let (http, address, key) = (node.http.clone(), node.address, key.to_string());
        tasks.push(tokio::spawn(async move {
            let mut served = 0;
            for _ in 0..calls {
                let status = http
                    .post(format!("http://{address}/compatible-mode/v1/chat/completions"))
                    .bearer_auth(&key)
                    .json(&json!({"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]}))
                    .send()
                    .await
                    .expect("gateway answers")
                    .status()
                    .as_u16();
                assert!(status == 200 || status == 429, "{status}");
                served += usize::from(status == 200);
            }
            served
        }));
    }
    let mut served = Vec::new();
    for task in tasks {
        served.push(task.await.unwrap());
    }
    served
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = app.http.get(format!("http://{}/readyz", app.address)).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_counting_in_redis_hold_a_workspace_limit_under_twice_its_load() {
    let test = "three_nodes_counting_in_redis_hold_a_workspace_limit";
    let Some(redis_url) = redis_test_url() else { return announce_redis_skip(test) };
    let Some(schema) = PostgresSchema::create().await else { return announce_postgres_skip(test) };
    let prefix = redis_test_prefix();
    let with_redis = |settings: &mut Settings| {
        node_settings(settings);
        settings.redis_url = Some(redis_url.clone());
        settings.redis_key_prefix = prefix.clone();
    };
    let node_a = spawn_node(&schema, "kg-node-a", with_redis).await;
    let node_b = spawn_node(&schema, "kg-node-b", with_redis).await;
    let node_c = spawn_node(&schema, "kg-node-c", with_redis).await;
    let nodes = [&node_a, &node_b, &node_c];
    for node in nodes {
        wait_until("the node reaches Redis", || node.state.shared.limiter.health().healthy).await;
    }
    to_start_of_hour(&nodes);
    limit_demo_echo(&nodes, 60).await;
    let (_, key) = node_a.login(None).await.create_all_key().await;
    for node in nodes {
        wait_until("the key reaches every node", || node.state.store().registry().live_key_count() > 0).await;
    }

    // Twice the limit, spread across the three nodes at once.
    let served = load(&nodes, &key, 40).await;
    let total: usize = served.iter().sum();
    assert!(total.abs_diff(60) * 100 <= 60 * 5, "served {total} of a limit of 60 ({served:?})");
    // Every node refuses the next call: the window is the same everywhere.
    for node in nodes {
        assert_eq!(chat(node, node.address, &key, "demo-echo").await.0, 429);
    }
    let (status, ready) = readiness(&node_b).await;
    assert_eq!((status, &ready["limiter"]["backend"], &ready["limiter"]["healthy"]), (200, &json!("redis"), &json!(true)), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_without_redis_each_admit_their_share() {
    let Some(schema) = PostgresSchema::create().await else {
        return announce_postgres_skip("three_nodes_without_redis_each_admit_their_share");
    };
    let node_a = spawn_node(&schema, "kg-node-a", node_settings).await;
    let node_b = spawn_node(&schema, "kg-node-b", node_settings).await;
    let node_c = spawn_node(&schema, "kg-node-c", node_settings).await;
    let nodes = [&node_a, &node_b, &node_c];
    to_start_of_hour(&nodes);
    for node in nodes {
        wait_until("every node counts three live nodes", || node.state.shared.live_nodes.get() == 3).await;
    }
    limit_demo_echo(&nodes, 30).await;
    let (_, key) = node_a.login(None).await.create_all_key().await;
    for node in nodes {
        wait_until("the key reaches every node", || node.state.store().registry().live_key_count() > 0).await;
    }
    // ceil(30 / 3) = 10 on each node, however many it is sent.
    assert_eq!(load(&nodes, &key, 20).await, vec![10, 10, 10]);
    let (status, ready) = readiness(&node_c).await;
    assert_eq!((status, &ready["limiter"]["backend"], &ready["limiter"]["liveNodes"]), (200, &json!("node-share"), &json!(3)), "{ready}");
}

/// A `redis-server` of the test's own on `port`, without persistence, in `directory`.
async fn start_redis(port: u16, directory: &std::path::Path) -> tokio::process::Child {
    let child = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .current_dir(directory)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server runs (KEYGATE_TEST_REDIS_URL is set, so Redis is installed)");
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("redis-server did not start on port {port}");
}

/// The requests counted in the private Redis under `prefix`, summed over its windows.
async fn requests_in_redis(port: u16, prefix: &str) -> u64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*:requests:*")).query_async(&mut connection).await.unwrap();
    let mut total = 0;
    for key in keys {
        total += redis::cmd("GET").arg(&key).query_async::<u64>(&mut connection).await.unwrap();
    }
    total
}

/// One node on SQLite counting in a private Redis that the test kills and restarts.
async fn node_with_private_redis(fail_closed: bool) -> Option<(TestApp, String, tempfile::TempDir, u16, tokio::process::Child, String)> {
    redis_test_url()?;
    let directory = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redis = start_redis(port, directory.path()).await;
    let prefix = redis_test_prefix();
    let (url, key_prefix) = (format!("redis://127.0.0.1:{port}"), prefix.clone());
    let app = spawn_app_with(move |settings| {
        node_settings(settings);
        settings.redis_url = Some(url);
        settings.redis_key_prefix = key_prefix;
        settings.limits_fail_closed = fail_closed;
    })
    .await;
    wait_until("the node reaches Redis", || app.state.shared.limiter.health().healthy).await;
    to_start_of_hour(&[&app]);
    limit_demo_echo(&[&app], 5).await;
    let (_, key) = app.login(None).await.create_all_key().await;
    Some((app, key, directory, port, redis, prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_a_node_fails_open_to_its_share_and_counts_in_redis_again_when_it_returns() {
    let Some((app, key, directory, port, mut redis, prefix)) = node_with_private_redis(false).await else {
        return announce_redis_skip("with_redis_killed_a_node_fails_open");
    };
    assert_eq!(chat(&app, app.address, &key, "demo-echo").await.0, 200);
    assert_eq!(chat(&app, app.address, &key, "demo-echo").await.0, 200);
    assert_eq!(requests_in_redis(port, &prefix).await, 2);

    redis.kill().await.unwrap();
    // Fail open: the node counts its share (all of it: one node) in memory, from the two
    // calls Redis admitted through it.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(chat(&app, app.address, &key, "demo-echo").await.0);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let (status, ready) = readiness(&app).await;
    assert_eq!((status, &ready["status"]), (200, &json!("ready")), "{ready}");
    let limiter = &ready["limiter"];
    assert_eq!(
        (&limiter["backend"], &limiter["healthy"], &limiter["failMode"]),
        (&json!("redis"), &json!(false), &json!("open")),
        "{ready}"
    );
    assert!(limiter["lastErrorAt"].is_string() && limiter["lastError"].is_string(), "{ready}");
    let metrics = app.http.get(format!("http://{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("keygate_limiter_healthy{backend=\"redis\"} 0"), "{metrics}");
    assert!(!metrics.contains("keygate_limiter_fallback_admissions_total 0\n"), "{metrics}");

    // Redis returns on the same port, empty: the node finds it by itself and counts there.
    let _redis = start_redis(port, directory.path()).await;
    wait_until("the node reaches Redis again", || app.state.shared.limiter.health().healthy).await;
    assert_eq!(chat(&app, app.address, &key, "demo-echo").await.0, 200);
    assert_eq!(requests_in_redis(port, &prefix).await, 1);
    assert_eq!(readiness(&app).await.1["limiter"]["healthy"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_a_node_that_fails_closed_refuses_limited_calls_until_it_returns() {
    let Some((app, key, directory, port, mut redis, prefix)) = node_with_private_redis(true).await else {
        return announce_redis_skip("with_redis_killed_a_node_that_fails_closed");
    };
    assert_eq!(chat(&app, app.address, &key, "demo-echo").await.0, 200);
    redis.kill().await.unwrap();
    let (status, retry_after, body) = chat(&app, app.address, &key, "demo-echo").await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("1")), "{body}");
    assert_eq!(body["error"]["code"], json!("service_unavailable"), "{body}");
    // A model without a limit is served as ever.
    let embedded = app
        .http
        .post(format!("http://{}/compatible-mode/v1/embeddings", app.address))
        .bearer_auth(&key)
        .json(&json!({"model": "demo-embed", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(embedded.status().as_u16(), 200);
    let (status, ready) = readiness(&app).await;
    assert_eq!(
        (status, &ready["status"], &ready["limiter"]["failMode"]),
        (503, &json!("limiter-unavailable"), &json!("closed")),
        "{ready}"
    );

    let _redis = start_redis(port, directory.path()).await;
    wait_until("the node reaches Redis again", || app.state.shared.limiter.health().healthy).await;
    assert_eq!(chat(&app, app.address, &key, "demo-echo").await.0, 200);
    assert_eq!(requests_in_redis(port, &prefix).await, 1);
    assert_eq!(readiness(&app).await.0, 200);
}
