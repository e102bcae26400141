//! The database each test runs on, and what the tests share.
//!
//! [`TestDatabase`] is a fresh database with the account `root` and its default workspaces:
//! on SQLite a file in a temporary directory; on PostgreSQL a schema of the test's own
//! (`CREATE SCHEMA kg_test_<random>`, selected through the URL's `search_path`) in the
//! database named by `KEYGATE_TEST_DATABASE_URL`, dropped when the test ends. Without that
//! variable the PostgreSQL half of each test does not run and says so on stderr, as the
//! server's tests do. `on_both_databases!` runs one test body on each.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate_core::access::KeyVisibility;
use keygate_core::keys::{expose, generate_key, mask_key, KeyDigest, KeyFormat};
use keygate_core::permissions::KeyAuth;
use keygate_core::region::LimitScope;
use keygate_core::verification::AuthenticationFailure;
use keygate_store::database::Database;
use keygate_store::feed::FeedHealth;
use keygate_store::{ApiKeyRecord, AuditContext, NewApiKey, QuotaRule, Store, StoreError};

/// A region with the upgrade (one limit for the whole account).
pub const SINGAPORE: &str = "ap-southeast-1";
/// A region without it (each owner has its own limit).
pub const VIRGINIA: &str = "us-east-1";
/// A limit no test reaches by accident.
pub const NO_LIMIT: QuotaRule = QuotaRule { limit: 10_000, scope: LimitScope::Account };
/// What tests wait for a follower at most (the contract's bound is one second; this leaves
/// room for two busy cores).
pub const FEED_WAIT: Duration = Duration::from_secs(5);

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `KEYGATE_TEST_DATABASE_URL`, when set and not empty.
pub fn postgres_test_url() -> Option<String> {
    std::env::var("KEYGATE_TEST_DATABASE_URL").ok().filter(|url| !url.trim().is_empty())
}

/// Says, past the test harness's output capture, that a PostgreSQL test did not run.
pub fn announce_postgres_skip(test: &str) {
    static BANNER: std::sync::Once = std::sync::Once::new();
    let mut stderr = std::io::stderr();
    BANNER.call_once(|| {
        let _ = writeln!(
            stderr,
            "\n*** SKIPPED: the PostgreSQL half of the store's tests. Set KEYGATE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test to run it (.ci/run does). ***\n"
        );
    });
    let _ = writeln!(stderr, "SKIPPED on PostgreSQL (KEYGATE_TEST_DATABASE_URL not set): {test}");
}

fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

/// A PostgreSQL schema of one test's own, dropped (with everything in it) on drop.
pub struct PostgresSchema {
    pub name: String,
    base_url: String,
}

impl PostgresSchema {
    /// Creates a fresh schema, or `None` when `KEYGATE_TEST_DATABASE_URL` is not set.
    async fn create() -> Option<PostgresSchema> {
        use sqlx::Connection;
        let base_url = postgres_test_url()?;
        let mut random = [0u8; 6];
        keygate_core::random::fill_random(&mut random);
        let name = format!("kg_test_{}", random.iter().map(|byte| format!("{byte:02x}")).collect::<String>());
        let mut connection = sqlx::PgConnection::connect(&base_url).await.expect("KEYGATE_TEST_DATABASE_URL answers");
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut connection).await.expect("create schema");
        Some(PostgresSchema { name, base_url })
    }

    /// The URL a store connects with: this schema first on the search path, and the
    /// [`PostgresSchema::application_name`] of `node`.
    pub fn url_for(&self, node: &str) -> String {
        let with_schema = with_parameter(&self.base_url, &format!("options=-c%20search_path%3D{}", self.name));
        with_parameter(&with_schema, &format!("application_name={}", self.application_name(node)))
    }

    /// The `application_name` of `node`'s connections (tests find them by it in
    /// `pg_stat_activity`, which shows every schema's): the schema's name and the node's.
    pub fn application_name(&self, node: &str) -> String {
        format!("{}-{node}", self.name)
    }

    /// A plain connection to the test database (for `pg_terminate_backend` and the like).
    pub async fn admin_connection(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.base_url).await.expect("KEYGATE_TEST_DATABASE_URL answers")
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let (base_url, name) = (self.base_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which must not block: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut connection) = sqlx::PgConnection::connect(&base_url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&mut connection).await;
                }
            });
        })
        .join();
    }
}

enum Location {
    Sqlite(tempfile::TempDir),
    Postgres(PostgresSchema),
}

/// A fresh database with the account `root` and its default workspaces in [`SINGAPORE`]
/// and [`VIRGINIA`], and a store open on it.
pub struct TestDatabase {
    /// Declared first: dropped before the directory or schema under it.
    pub store: Store,
    raw: tokio::sync::OnceCell<Database>,
    /// The account `root`.
    pub account_id: i64,
    location: Location,
}

impl TestDatabase {
    /// A fresh database on `backend`; `None` (announced) for PostgreSQL without a test database.
    pub async fn create(backend: Backend, test: &str) -> Option<TestDatabase> {
        let location = match backend {
            Backend::Sqlite => Location::Sqlite(tempfile::tempdir().expect("temporary directory")),
            Backend::Postgres => match PostgresSchema::create().await {
                Some(schema) => Location::Postgres(schema),
                None => {
                    announce_postgres_skip(test);
                    return None;
                }
            },
        };
        let store = open_at(&location, "kg-store-a").await;
        let (account, created) = store.ensure_account("root", "not-a-password-hash", now_millis()).await.expect("account");
        assert!(created, "a fresh database has no account");
        store
            .ensure_default_workspaces(account.account_id, &[SINGAPORE.to_string(), VIRGINIA.to_string()], now_millis())
            .await
            .expect("workspaces");
        Some(TestDatabase { store, raw: tokio::sync::OnceCell::new(), account_id: account.account_id, location })
    }

    /// Another store on the same database, as another node (PostgreSQL) or another
    /// process (SQLite) opens it: its own connections and its own registry, filled at open.
    pub async fn open_another(&self, node: &str) -> Store {
        open_at(&self.location, node).await
    }

    /// The thin database layer on the same database, for what no store operation does
    /// (a change row written behind the store's back, a gap in the feed).
    pub async fn raw(&self) -> &Database {
        self.raw
            .get_or_init(|| async {
                match &self.location {
                    Location::Sqlite(directory) => {
                        Database::open_sqlite(&directory.path().join(keygate_store::DATABASE_FILE_NAME)).await.expect("SQLite opens")
                    }
                    Location::Postgres(schema) => Database::open_postgres(&schema.url_for("kg-store-raw")).await.expect("PostgreSQL opens"),
                }
            })
            .await
    }

    /// The newest change-feed version in the database (read beside the store, which it
    /// leaves as it is).
    pub async fn feed_version(&self) -> u64 {
        let row = self.raw().await.fetch_one("SELECT COALESCE(MAX(version), 0) AS version FROM changes", &[]).await.expect("feed version");
        u64::try_from(row.i64("version").expect("version")).expect("a positive version")
    }

    /// How many audit rows the account has.
    pub async fn audit_count(&self) -> usize {
        self.store.list_audit(self.account_id, 100_000, None).await.expect("audit").len()
    }

    /// The schema, on PostgreSQL.
    pub fn postgres_schema(&self) -> Option<&PostgresSchema> {
        match &self.location {
            Location::Postgres(schema) => Some(schema),
            Location::Sqlite(_) => None,
        }
    }

    /// `root` acting in [`SINGAPORE`].
    pub fn root(&self) -> AuditContext {
        self.root_in(SINGAPORE)
    }

    /// `root` acting in `region`.
    pub fn root_in(&self, region: &str) -> AuditContext {
        AuditContext {
            account_id: self.account_id,
            actor: "root".into(),
            client_address: "test".into(),
            region: region.into(),
            credential: String::new(),
            at: now_millis(),
        }
    }

    /// The id of the account's default workspace in `region`.
    pub async fn default_workspace(&self, region: &str) -> String {
        self.store.default_workspace(self.account_id, region).await.expect("default workspace").workspace_id
    }
}

async fn open_at(location: &Location, node: &str) -> Store {
    match location {
        Location::Sqlite(directory) => Store::open_sqlite(directory.path()).await.expect("SQLite store opens"),
        Location::Postgres(schema) => Store::open_postgres(&schema.url_for(node)).await.expect("PostgreSQL store opens"),
    }
}

/// Runs each test body on SQLite and on PostgreSQL (which announces itself skipped when
/// `KEYGATE_TEST_DATABASE_URL` is not set). Each body gets a fresh [`TestDatabase`].
macro_rules! on_both_databases {
    ($(async fn $name:ident($db:ident: TestDatabase) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($db: $crate::support::TestDatabase) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let database = $crate::support::TestDatabase::create($crate::support::Backend::Sqlite, stringify!($name)).await;
                    body(database.expect("SQLite always runs")).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(database) = $crate::support::TestDatabase::create($crate::support::Backend::Postgres, stringify!($name)).await {
                        body(database).await;
                    }
                }
            }
        )*
    };
}

/// A key to create in `region` and `workspace_id` (by `creator_user_id`, or the account),
/// and its plaintext.
pub fn new_key(region: &str, workspace_id: &str, creator_user_id: Option<i64>, format: KeyFormat) -> (NewApiKey, String) {
    let generated = generate_key(format);
    let key = NewApiKey {
        region: region.to_string(),
        workspace_id: workspace_id.to_string(),
        creator_user_id,
        created_by: creator_user_id.map_or_else(|| "root".to_string(), |user_id| format!("user-{user_id}")),
        description: String::new(),
        format,
        digest: generated.digest,
        masked_key: generated.masked.clone(),
        auth: KeyAuth::All,
        legacy_ciphertext: None,
        expires_at: None,
        limits: None,
    };
    (key, expose(&generated.plaintext).to_string())
}

/// A key of another deployment to import (`sk-legacy-` and 32 hex), and its plaintext. The
/// "ciphertext" is opaque bytes: the store never decrypts it.
pub fn legacy_key(region: &str, workspace_id: &str, creator_user_id: Option<i64>) -> (NewApiKey, String) {
    let mut random = [0u8; 16];
    keygate_core::random::fill_random(&mut random);
    let plaintext = format!("sk-legacy-{}", random.iter().map(|byte| format!("{byte:02x}")).collect::<String>());
    let key = NewApiKey {
        region: region.to_string(),
        workspace_id: workspace_id.to_string(),
        creator_user_id,
        created_by: creator_user_id.map_or_else(|| "root".to_string(), |user_id| format!("user-{user_id}")),
        description: "imported".into(),
        format: KeyFormat::Legacy,
        digest: KeyDigest::of(&plaintext),
        masked_key: mask_key(&plaintext),
        auth: KeyAuth::All,
        legacy_ciphertext: Some(b"opaque ciphertext".to_vec()),
        expires_at: None,
        limits: None,
    };
    (key, plaintext)
}

/// Creates a secure key in the context's region and default workspace (by `creator_user_id`,
/// or the account) under [`NO_LIMIT`]; returns the record and the plaintext.
pub async fn create_key(database: &TestDatabase, context: &AuditContext, creator_user_id: Option<i64>) -> (ApiKeyRecord, String) {
    let workspace_id = database.default_workspace(&context.region).await;
    create_key_in(&database.store, context, &workspace_id, creator_user_id).await
}

/// Creates a secure key in `workspace_id` under [`NO_LIMIT`].
pub async fn create_key_in(
    store: &Store,
    context: &AuditContext,
    workspace_id: &str,
    creator_user_id: Option<i64>,
) -> (ApiKeyRecord, String) {
    let (key, plaintext) = new_key(&context.region, workspace_id, creator_user_id, KeyFormat::Secure);
    let record = store.create_api_key(context, key, NO_LIMIT).await.expect("key created");
    (record, plaintext)
}

/// What `store`'s registry says about a plaintext presented in `region`: the key id, or why
/// it is refused.
pub fn authenticate(store: &Store, plaintext: &str, region: &str) -> Result<i64, AuthenticationFailure> {
    store.registry().authenticate(plaintext, region, now_millis() / 1000).map(|key| key.key_id)
}

/// The keys of the account in `region` (all of them, by id).
pub async fn key_ids(store: &Store, account_id: i64, region: &str, visibility: KeyVisibility) -> Vec<i64> {
    let query = keygate_store::ListKeysQuery {
        search: None,
        account_id,
        region: region.to_string(),
        visibility,
        api_key_id: None,
        description: None,
        workspace_id: None,
        order_by: keygate_store::KeyOrder::ApiKeyId,
        descending: false,
        offset: 0,
        limit: 10_000,
    };
    let (records, total) = store.list_api_keys(&query).await.expect("list");
    assert_eq!(records.len() as u64, total, "one page holds every key");
    records.iter().map(|record| record.api_key_id).collect()
}

/// Asserts that `error` is a `NotFound`.
#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::NotFound(_))), "expected NotFound, got {result:?}");
}

/// Polls `condition` until it holds, for at most `limit`; panics with `what` otherwise.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if condition() {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A store following the change feed in the background, as every node does.
pub struct Follower {
    pub health: Arc<FeedHealth>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Starts `store` following the feed, polling every `poll_interval`.
    pub fn start(store: &Store, poll_interval: Duration) -> Follower {
        let health = Arc::new(FeedHealth::new(now_millis()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (store, task_health) = (store.clone(), health.clone());
        let task = tokio::spawn(async move { store.follow_changes(task_health, now_millis, poll_interval, stopped).await });
        Follower { health, stop, task }
    }

    /// Stops following and waits for the follower to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("the follower stops").expect("the follower ran");
    }
}

/// The time now (Unix ms). The store takes the time of every change from its caller's
/// audit context and never reads a clock itself, so its tests supply the time.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64
}
