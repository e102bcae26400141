//! keygate's storage: every SQL statement of the project lives in this crate.
//!
//! [`Store`] wraps an SQLite database in WAL mode with `synchronous=FULL`, so that an
//! acknowledged write survives a crash. Writes go through a single writer connection,
//! which serializes them: a quota check and the insert it guards happen in one
//! transaction that no other writer can interleave with. Reads use a separate pool.
//!
//! Every mutation that affects verification also appends a row to the `changes` table
//! (the change feed) and, after commit, applies the recompiled state to the in-memory
//! [`KeyRegistry`](keygate_core::verification::KeyRegistry) at that version.

mod access_keys;
mod api_keys;
mod audit;
mod compile;
mod error;
mod rows;
mod users;
mod workspaces;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use keygate_core::verification::{KeyRegistry, RegistryUpdate};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use access_keys::{AccessKeyRecord, SessionRecord};
pub use api_keys::{ApiKeyRecord, KeyOrder, ListKeysQuery, NewApiKey, QuotaRule};
pub use audit::{AuditContext, AuditRecord};
pub use error::StoreError;
pub use users::{AccountRecord, UserRecord};
pub use workspaces::{ModelGrant, WorkspaceDeletion, WorkspaceRecord};

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE_NAME: &str = "keygate.db";

/// The database and the in-memory verification state it feeds.
#[derive(Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    registry: Arc<KeyRegistry>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) `keygate.db` in `data_dir`, runs migrations and loads the
    /// verification state of every key into memory.
    pub async fn open_sqlite(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DATABASE_FILE_NAME);
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it is acknowledged, in WAL mode too.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // One writer connection serializes writes inside this process.
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        let store = Store { writer, reader, registry: Arc::new(KeyRegistry::new()) };
        store.load_registry().await?;
        Ok(store)
    }

    /// The in-memory verification state this store keeps current.
    pub fn registry(&self) -> &Arc<KeyRegistry> {
        &self.registry
    }

    /// Loads every key and workspace into the registry (at start).
    pub async fn load_registry(&self) -> Result<(), StoreError> {
        let mut connection = self.reader.acquire().await?;
        let version: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM changes").fetch_one(&mut *connection).await?;
        let updates = compile::load_everything(&mut connection).await?;
        self.registry.apply(u64::try_from(version).unwrap_or(0), updates);
        Ok(())
    }

    /// Appends a change-feed row inside `transaction` and returns its version.
    async fn record_change(connection: &mut sqlx::SqliteConnection, kind: &str, subject: &str) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar("INSERT INTO changes (kind, subject, at) VALUES (?, ?, ?) RETURNING version")
            .bind(kind)
            .bind(subject)
            .bind(now_millis())
            .fetch_one(&mut *connection)
            .await?;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    fn publish(&self, version: u64, updates: Vec<RegistryUpdate>) {
        self.registry.apply(version, updates);
    }
}
