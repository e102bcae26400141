//! Several nodes on one PostgreSQL (docs/CONTRACT.md#storage-and-durability), in one process: each node has its own
//! store, registry and change-feed follower, and they share only the database and the
//! master key. Revocations reach the other node, a killed feed connection resyncs, a node
//! that cannot reach PostgreSQL fails closed and recovers, and the quota holds across
//! nodes. Each test announces itself skipped without `KEYGATE_TEST_DATABASE_URL`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{announce_postgres_skip, spawn_node, PostgresSchema, TestApp};

/// The status of a chat call with `key` to `address`.
async fn chat_status(app: &TestApp, address: SocketAddr, key: &str) -> u16 {
    app.http
        .post(format!("http://{address}/compatible-mode/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("gateway answers")
        .status()
        .as_u16()
}

/// Polls until the call answers `expected`, for at most `limit`; returns how long it took.
async fn wait_for_status(app: &TestApp, address: SocketAddr, key: &str, expected: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let status = chat_status(app, address, key).await;
        if status == expected {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "still {status}, not {expected}, after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn schema_or_skip(test: &str) -> Option<Arc<PostgresSchema>> {
    let schema = PostgresSchema::create().await;
    if schema.is_none() {
        announce_postgres_skip(test);
    }
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_node_is_refused_by_the_other() {
    let Some(schema) = schema_or_skip("a_key_revoked_through_one_node_is_refused_by_the_other").await else { return };
    let node_a = spawn_node(&schema, "kg-node-a", |_| {}).await;
    let node_b = spawn_node(&schema, "kg-node-b", |_| {}).await;
    let root = node_a.login(None).await;
    let (key_id, plaintext) = root.create_all_key().await;
    wait_for_status(&node_b, node_b.address, &plaintext, 200, Duration::from_secs(5)).await;

    let disabled = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}/disable"), "").await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    // docs/CONTRACT.md#revocation-bound: refused on every node within one second.
    wait_for_status(&node_b, node_b.address, &plaintext, 401, Duration::from_secs(1)).await;

    let enabled = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}/enable"), "").await;
    assert_eq!(enabled.status, 200);
    wait_for_status(&node_b, node_b.address, &plaintext, 200, Duration::from_secs(1)).await;
    let reset = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}/reset"), "").await;
    let new_plaintext = reset.body["apiKey"]["apiKeyValue"].as_str().expect("new key").to_string();
    wait_for_status(&node_b, node_b.address, &plaintext, 401, Duration::from_secs(1)).await;
    wait_for_status(&node_b, node_b.address, &new_plaintext, 200, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_key_minted_on_one_node_works_on_another() {
    let Some(schema) = schema_or_skip("a_temporary_key_minted_on_one_node_works_on_another").await else { return };
    let node_a = spawn_node(&schema, "kg-node-a", |_| {}).await;
    let node_c = spawn_node(&schema, "kg-node-c", |_| {}).await;
    let (_, plaintext) = node_a.login(None).await.create_all_key().await;
    let minted: Value = node_a
        .http
        .post(format!("http://{}/api/v1/tokens?expire_in_seconds=300", node_a.address))
        .bearer_auth(&plaintext)
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("JSON");
    let token = minted["token"].as_str().expect("token");
    wait_for_status(&node_c, node_c.address, token, 200, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_feed_connection_is_killed_resyncs_and_refuses_what_was_revoked_meanwhile() {
    let Some(schema) = schema_or_skip("a_node_whose_feed_connection_is_killed_resyncs").await else { return };
    let node_a = spawn_node(&schema, "kg-node-a", |_| {}).await;
    // Node B never polls: only notifications and the resync on reconnect can tell it.
    let node_b = spawn_node(&schema, "kg-node-b", |settings| settings.feed_poll_interval_milliseconds = 3_600_000).await;
    let root = node_a.login(None).await;
    let (key_id, plaintext) = root.create_all_key().await;
    wait_for_status(&node_b, node_b.address, &plaintext, 200, Duration::from_secs(5)).await;

    // Revoke without a notification (as if it were lost), then kill B's feed connection.
    let mut admin = schema.admin_connection().await;
    let schema_name = &schema.name;
    sqlx::query(&format!("UPDATE {schema_name}.api_keys SET disabled = TRUE WHERE api_key_id = $1"))
        .bind(key_id)
        .execute(&mut admin)
        .await
        .expect("disable");
    sqlx::query(&format!(
        "INSERT INTO {schema_name}.changes (version, kind, subject, revoked, at) SELECT COALESCE(MAX(version), 0) + 1, 'api_key', $1, '', 0 FROM {schema_name}.changes"
    ))
    .bind(key_id.to_string())
    .execute(&mut admin)
    .await
    .expect("change row");
    assert_eq!(chat_status(&node_b, node_b.address, &plaintext).await, 200, "B must not have heard of it yet");
    let killed: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = 'kg-node-b' AND query ILIKE 'LISTEN%'")
            .fetch_all(&mut admin)
            .await
            .expect("find the feed connection");
    assert_eq!(killed.len(), 1, "node B has one feed connection");
    sqlx::query("SELECT pg_terminate_backend($1)").bind(killed[0]).execute(&mut admin).await.expect("terminate");

    wait_for_status(&node_b, node_b.address, &plaintext, 401, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_concurrent_creates_across_two_nodes_make_exactly_fifty_keys() {
    let Some(schema) = schema_or_skip("one_hundred_concurrent_creates_across_two_nodes").await else { return };
    let node_a = spawn_node(&schema, "kg-node-a", |_| {}).await;
    let node_b = spawn_node(&schema, "kg-node-b", |_| {}).await;
    let (root_a, root_b) = (node_a.login(None).await, node_b.login(None).await);
    let mut tasks = Vec::new();
    for index in 0..100 {
        let client = if index % 2 == 0 { root_a.clone() } else { root_b.clone() };
        tasks.push(tokio::spawn(async move { client.create_key("", "").await }));
    }
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        let answer = task.await.expect("task");
        match (answer.status, answer.code()) {
            (200, _) => created += 1,
            (400, "QuotaExceeded.ApiKey") => refused += 1,
            other => panic!("unexpected answer {other:?}: {}", answer.body),
        }
    }
    assert_eq!((created, refused), (50, 50));
    let listed = root_b.get("/modelstudio/apikeys?maxResults=1").await;
    assert_eq!(listed.body["totalCount"], json!(50));
}

/// A TCP forwarder between a node and PostgreSQL that can cut the database off.
struct DatabaseCable {
    address: SocketAddr,
    accept_task: JoinHandle<()>,
    connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl DatabaseCable {
    /// Listens on `address` (port 0: any) and forwards each connection to 127.0.0.1:5432.
    async fn connect(address: SocketAddr) -> DatabaseCable {
        let listener = TcpListener::bind(address).await.expect("bind the cable");
        let address = listener.local_addr().expect("address");
        let connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = connections.clone();
        let accept_task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let forwarding = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tracked.lock().unwrap().push(forwarding);
            }
        });
        DatabaseCable { address, accept_task, connections }
    }

    /// Cuts every connection and stops accepting new ones (connections are then refused).
    fn cut(&self) {
        self.accept_task.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_reach_postgres_fails_closed_and_recovers_by_itself() {
    let Some(schema) = schema_or_skip("a_node_that_cannot_reach_postgres_fails_closed").await else { return };
    let node_a = spawn_node(&schema, "kg-node-a", |_| {}).await;
    let (_, plaintext) = node_a.login(None).await.create_all_key().await;
    let cable = DatabaseCable::connect("127.0.0.1:0".parse().unwrap()).await;
    let through_cable = schema.url_for_node("kg-node-far").replace("127.0.0.1:5432", &cable.address.to_string());
    assert_ne!(through_cable, schema.url_for_node("kg-node-far"), "KEYGATE_TEST_DATABASE_URL must name 127.0.0.1:5432 for this test");
    let master_key_file = schema.master_key_file.clone();
    let mut far = crate::helpers::spawn_app_with(move |settings| {
        settings.database_url = Some(through_cable);
        settings.master_key_file = Some(master_key_file);
        settings.feed_poll_interval_milliseconds = 200;
        settings.max_staleness_seconds = 1;
    })
    .await;
    far.schema = Some(schema.clone());
    wait_for_status(&far, far.address, &plaintext, 200, Duration::from_secs(5)).await;

    cable.cut();
    wait_for_status(&far, far.address, &plaintext, 503, Duration::from_secs(20)).await;
    let readiness = far.http.get(format!("http://{}/readyz", far.address)).send().await.expect("readyz");
    assert_eq!(readiness.status().as_u16(), 503);
    let body: Value = readiness.json().await.expect("JSON");
    assert_eq!(body["status"], json!("stale"));
    assert!(body["reason"].as_str().is_some_and(|reason| reason.contains("not been confirmed")), "{body}");

    // Give the accept task a moment to release the port before listening on it again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _restored = DatabaseCable::connect(cable.address).await;
    wait_for_status(&far, far.address, &plaintext, 200, Duration::from_secs(30)).await;
    let readiness = far.http.get(format!("http://{}/readyz", far.address)).send().await.expect("readyz");
    assert_eq!(readiness.status().as_u16(), 200);
}
