//! Three `keygate serve` processes on one PostgreSQL schema with one master key
//! (docs/CONTRACT.md#storage-and-durability): a key created through node A works on B and C; disabled, reset or deleted
//! through A, or its RAM user disabled, it is refused by B and C within the revocation bound
//! of one second after A's answer; a temporary key minted on A works on C. Management goes
//! through the CLI as an operator would; B and C are asked through `/auth/verify`.
//!
//! Runs only with `KEYGATE_TEST_DATABASE_URL` (e.g. postgres://postgres@127.0.0.1:5432/test);
//! without it the test passes and says on stderr, past libtest's capture, that it skipped.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::harness::{free_port, raw_request, ServerProcess, TestEnv, ALICE_PASSWORD, ROOT_PASSWORD};

/// docs/CONTRACT.md#revocation-bound: a revocation is refused on every node within one second of the call's answer.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);
/// How often each node is asked while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a new or re-enabled key may take to be accepted everywhere (the contract bounds only revocations).
const ACCEPTANCE_LIMIT: Duration = Duration::from_secs(10);

/// `KEYGATE_TEST_DATABASE_URL`, when set and not empty.
pub(crate) fn postgres_test_url() -> Option<String> {
    std::env::var("KEYGATE_TEST_DATABASE_URL").ok().filter(|url| !url.trim().is_empty())
}

/// Says, past libtest's output capture, that this test did not run.
fn announce_postgres_skip(test: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {test} (three keygate serve processes on PostgreSQL). Set KEYGATE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test to run it. ***\n"
    );
}

fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

/// Runs one future on a runtime of its own (this test is synchronous, like the harness).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(future)
}

/// A schema of this test's own in the database of `KEYGATE_TEST_DATABASE_URL`, dropped with
/// everything in it when this value is.
pub(crate) struct PostgresSchema {
    base_url: String,
    name: String,
}

impl PostgresSchema {
    /// Creates a fresh schema, or `None` when `KEYGATE_TEST_DATABASE_URL` is not set.
    pub(crate) fn create() -> Option<PostgresSchema> {
        let base_url = postgres_test_url()?;
        let name = format!("kg_cli_{}", random_hex(6));
        block_on(async {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&base_url).await.expect("KEYGATE_TEST_DATABASE_URL answers");
            sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut connection).await.expect("create the schema");
        });
        Some(PostgresSchema { base_url, name })
    }

    /// The URL a node (or `keygate admin`) connects with: this schema on the search path and
    /// an `application_name` that names the node.
    pub(crate) fn url_for_node(&self, node: &str) -> String {
        let with_schema = with_parameter(&self.base_url, &format!("options=-c%20search_path%3D{}", self.name));
        with_parameter(&with_schema, &format!("application_name={node}"))
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        block_on(async {
            use sqlx::Connection;
            if let Ok(mut connection) = sqlx::PgConnection::connect(&self.base_url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)).execute(&mut connection).await;
            }
        });
    }
}

/// `bytes` random bytes as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    keygate_core::random::fill_random(&mut random);
    random.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// One `keygate serve` process, stopped when dropped.
struct Node {
    name: &'static str,
    port: u16,
    _process: ServerProcess,
}

/// Starts a node named `name` on `port` against `schema`, with the shared master key.
fn start_node(environment: &TestEnv, schema: &PostgresSchema, master_key: &str, name: &'static str, port: u16) -> Node {
    let database_url = schema.url_for_node(name);
    let listen = format!("127.0.0.1:{port}=ap-southeast-1");
    let process = environment.spawn_server(
        port,
        &format!("serve-{name}.log"),
        &["--database-url", &database_url, "--listen", &listen],
        &[("KEYGATE_MASTER_KEY", master_key)],
    );
    Node { name, port, _process: process }
}

/// The status `/auth/verify` on `node` answers for `key`.
fn verify_status(node: &Node, key: &str) -> u16 {
    let authorization = format!("Bearer {key}");
    raw_request(node.port, "GET", "/auth/verify", &[("Authorization", &authorization)], "")
}

/// Polls every node until each has accepted `key` (200).
#[track_caller]
fn wait_until_accepted(nodes: &[&Node], key: &str, what: &str) {
    let started = Instant::now();
    let mut pending: Vec<&Node> = nodes.to_vec();
    loop {
        pending.retain(|node| verify_status(node, key) != 200);
        if pending.is_empty() {
            return;
        }
        let names: Vec<&str> = pending.iter().map(|node| node.name).collect();
        assert!(started.elapsed() < ACCEPTANCE_LIMIT, "{what}: not accepted by {names:?} within {ACCEPTANCE_LIMIT:?}");
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Polls every node until each refuses `key` (401), failing when one still does not after
/// [`REVOCATION_BOUND`] from `answered` (the moment the management call had returned).
/// Says on stderr how long each node took.
#[track_caller]
fn wait_until_refused(nodes: &[&Node], key: &str, answered: Instant, what: &str) {
    let mut refused_after = Vec::new();
    let mut pending: Vec<&Node> = nodes.to_vec();
    loop {
        let mut last_statuses = Vec::new();
        pending.retain(|node| {
            let status = verify_status(node, key);
            if status == 401 {
                refused_after.push((node.name, answered.elapsed()));
                false
            } else {
                last_statuses.push((node.name, status));
                true
            }
        });
        if pending.is_empty() {
            eprintln!("{what}: refused after {refused_after:?}");
            return;
        }
        assert!(
            answered.elapsed() <= REVOCATION_BOUND,
            "{what}: still not refused {:?} after the management call returned (contract bound {REVOCATION_BOUND:?}); last answers {last_statuses:?}",
            answered.elapsed()
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The plaintext and id of the `apiKey` in a Create or Reset answer printed with `--json`.
fn key_from_answer(answer: &serde_json::Value) -> (String, String) {
    let plaintext = answer.pointer("/apiKey/apiKeyValue").and_then(|value| value.as_str()).expect("apiKeyValue").to_string();
    let id = answer.pointer("/apiKey/apiKeyId").and_then(|value| value.as_i64()).expect("apiKeyId").to_string();
    (plaintext, id)
}

#[test]
fn three_processes_on_one_postgres_refuse_what_node_a_revoked_within_one_second() {
    const TEST: &str = "three_processes_on_one_postgres_refuse_what_node_a_revoked_within_one_second";
    // Declared first, so that it is dropped last: after every node has stopped.
    let Some(schema) = PostgresSchema::create() else {
        announce_postgres_skip(TEST);
        return;
    };
    let master_key = random_hex(32);
    let environment = TestEnv::new();
    // Client commands talk to the environment's port: node A.
    let node_a = start_node(&environment, &schema, &master_key, "kg-cli-node-a", environment.port);
    let node_b = start_node(&environment, &schema, &master_key, "kg-cli-node-b", free_port());
    let node_c = start_node(&environment, &schema, &master_key, "kg-cli-node-c", free_port());
    let others = [&node_b, &node_c];
    let everyone = [&node_a, &node_b, &node_c];

    // A RAM user made on the database directly while the nodes run, as an operator would.
    let admin_url = schema.url_for_node("kg-cli-admin");
    let alice = environment
        .run_with(
            &["admin", "create-user", "--database-url", &admin_url, "--name", "alice", "--role", "key-manager", "--json"],
            "",
            &[("KEYGATE_MASTER_KEY", &master_key), ("KEYGATE_USER_PASSWORD", ALICE_PASSWORD)],
        )
        .success()
        .json();
    assert_eq!(alice["name"], "alice");
    let without_master_key =
        environment.run_with(&["admin", "create-user", "--database-url", &admin_url, "--name", "bob"], "", &[]).failure();
    assert!(without_master_key.stderr.contains("KEYGATE_MASTER_KEY"), "{}", without_master_key.stderr);

    environment.login_root();
    let created = environment.run(&["keys", "create", "--description", "multinode", "--json"]).success().json();
    let (plaintext, key_id) = key_from_answer(&created);
    wait_until_accepted(&everyone, &plaintext, "a key created through node A");

    environment.run(&["keys", "disable", &key_id]).success();
    wait_until_refused(&others, &plaintext, Instant::now(), "disabled through node A");

    environment.run(&["keys", "enable", &key_id]).success();
    wait_until_accepted(&everyone, &plaintext, "re-enabled through node A");

    let reset = environment.run(&["keys", "reset", &key_id, "--yes", "--json"]).success().json();
    let answered = Instant::now();
    let (new_plaintext, _) = key_from_answer(&reset);
    assert_ne!(new_plaintext, plaintext);
    wait_until_refused(&others, &plaintext, answered, "the old secret after a reset through node A");
    wait_until_accepted(&everyone, &new_plaintext, "the new secret after a reset");

    // A temporary key minted on A is verified on C with the shared master key.
    let minted = environment.run_with(&["token", "--ttl", "300", "--json"], "", &[("DASHSCOPE_API_KEY", &new_plaintext)]).success().json();
    let token = minted["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("st-"), "{token}");
    assert_eq!(verify_status(&node_c, &token), 200, "a temporary key minted on node A works on node C");
    assert_eq!(verify_status(&node_b, &token), 200, "and on node B");

    environment.run(&["keys", "delete", &key_id, "--yes"]).success();
    let answered = Instant::now();
    wait_until_refused(&others, &new_plaintext, answered, "deleted through node A");
    wait_until_refused(&others, &token, answered, "a temporary key whose parent was deleted through node A");

    // A RAM user's key, refused everywhere once the user is disabled through A.
    environment.login_user("alice", ALICE_PASSWORD);
    let (alice_key, _) = key_from_answer(&environment.run(&["keys", "create", "--description", "alice's", "--json"]).success().json());
    wait_until_accepted(&everyone, &alice_key, "a RAM user's key created through node A");
    environment.login_root();
    environment.run(&["users", "disable", "alice"]).success();
    wait_until_refused(&others, &alice_key, Instant::now(), "the key of a RAM user disabled through node A");

    // Node A itself refuses everything it revoked, at once.
    for key in [&plaintext, &new_plaintext, &token, &alice_key] {
        assert_eq!(verify_status(&node_a, key), 401);
    }
}

#[test]
fn admin_on_a_postgres_database_no_node_has_started_on_refuses_without_init() {
    let Some(schema) = PostgresSchema::create() else {
        announce_postgres_skip("admin_on_a_postgres_database_no_node_has_started_on_refuses_without_init");
        return;
    };
    let master_key = random_hex(32);
    let environment = TestEnv::new();
    let url = schema.url_for_node("kg-cli-admin");
    let variables = [("KEYGATE_MASTER_KEY", master_key.as_str()), ("KEYGATE_ROOT_PASSWORD", ROOT_PASSWORD)];
    let refused = environment.run_with(&["admin", "create-access-key", "--database-url", &url, "--json"], "", &variables).failure();
    assert!(refused.stderr.contains("the database has no account 'root'") && refused.stderr.contains("--init"), "{}", refused.stderr);
    assert!(refused.stdout.is_empty(), "no AccessKey is printed: {}", refused.stdout);
    let created =
        environment.run_with(&["admin", "create-access-key", "--init", "--database-url", &url, "--json"], "", &variables).success();
    assert!(created.json()["accessKeyId"].is_string());
    environment.run_with(&["admin", "create-access-key", "--database-url", &url, "--json"], "", &variables).success();
}
