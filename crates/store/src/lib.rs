//! keygate's storage: every SQL statement of the project lives in this crate.
//!
//! [`Store`] runs on SQLite (embedded, one node: WAL, `synchronous=FULL`, one writer
//! connection) or PostgreSQL (many nodes). Every operation is written once against the
//! thin [`database`] layer. Each mutation that affects verification writes, in one
//! transaction, its rows, its audit entry and a change-feed row; after commit the store
//! applies the recompiled state to its in-memory [`KeyRegistry`] at that change version.
//! Other nodes (and other processes on the same SQLite file) follow the change feed
//! ([`feed`]) and apply the same changes.
//!
//! The store never reads the clock: a change happens at the time of its [`AuditContext`]
//! (`at`), and the few calls without one take `now` (Unix milliseconds) from the caller.

mod access_keys;
mod api_keys;
mod audit;
mod compile;
pub mod database;
mod error;
pub mod feed;
mod group_commit;
mod model_limits;
mod nodes;
mod rows;
mod sqlite_snapshot;
pub mod usage;
mod users;
mod workspaces;

use std::path::Path;
use std::sync::Arc;

use keygate_core::verification::{KeyRegistry, RegistryUpdate};

pub use access_keys::{AccessKeyRecord, SessionRecord};
pub use api_keys::{ApiKeyRecord, KeyEdit, KeyOrder, ListKeysQuery, NewApiKey, QuotaRule};
pub use audit::{AuditContext, AuditFilter, AuditRecord};
use database::{params, Database, Dialect, Transaction};
pub use error::{Missing, StoreError};
pub use users::{AccountRecord, UserRecord};
pub use workspaces::{ModelGrant, WorkspaceDeletion, WorkspaceRecord};

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE_NAME: &str = "keygate.db";

/// The database and the in-memory verification state it feeds.
#[derive(Clone)]
pub struct Store {
    database: Database,
    registry: Arc<KeyRegistry>,
    /// The change-feed version of the snapshot loaded at open: the follower starts from
    /// there instead of loading everything a second time.
    opened_at_version: u64,
    /// PostgreSQL: the queue of this node's group commit, which CreateApiKey goes through.
    committer: Option<group_commit::GroupCommitter>,
    /// The default workspace of each (account, region) read so far. A default workspace is
    /// never deleted, renamed or replaced once it exists, so a copy never goes stale, and
    /// a create in the default workspace (the usual create) reads nothing for it.
    default_workspaces: Arc<std::sync::RwLock<std::collections::HashMap<(i64, String), WorkspaceRecord>>>,
    /// The callers behind session tokens read so far, emptied by any change that could
    /// end a session or change its caller.
    sessions: Arc<access_keys::SessionCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Store").field("dialect", &self.database.dialect()).finish_non_exhaustive()
    }
}

/// A change-feed entry about to be written: what changed, which digests it revoked, and
/// when (Unix ms).
pub(crate) struct Change<'a> {
    pub at: i64,
    pub kind: &'a str,
    pub subject: &'a str,
    pub revoked: &'a [keygate_core::keys::KeyDigest],
}

impl Store {
    /// Opens (creating if needed) `keygate.db` in `data_dir`, runs migrations and loads the
    /// verification state of every key into memory.
    pub async fn open_sqlite(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open(Database::open_sqlite(&data_dir.join(DATABASE_FILE_NAME)).await?).await
    }

    /// Connects to PostgreSQL (`postgres://...`), runs migrations and loads the registry.
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        Store::open(Database::open_postgres(url).await?).await
    }

    async fn open(database: Database) -> Result<Store, StoreError> {
        let registry = Arc::new(KeyRegistry::new());
        let committer = match database.dialect() {
            Dialect::Postgres => Some(group_commit::GroupCommitter::start(database.clone(), registry.clone())),
            Dialect::Sqlite => None,
        };
        let mut store =
            Store { database, registry, opened_at_version: 0, committer, default_workspaces: Arc::default(), sessions: Arc::default() };
        store.opened_at_version = store.resync_registry().await?;
        Ok(store)
    }

    /// Whether this store is PostgreSQL (shared by many nodes) or SQLite.
    pub fn is_postgres(&self) -> bool {
        self.database.dialect() == Dialect::Postgres
    }

    /// The in-memory verification state this store keeps current.
    pub fn registry(&self) -> &Arc<KeyRegistry> {
        &self.registry
    }

    /// Replaces the registry's contents with one consistent snapshot of every key and
    /// workspace (entries newer than the snapshot are kept). Returns the snapshot's version.
    /// Each key's row is compiled as it arrives, into a registry sized from the count of
    /// keys; the current registry serves until the new one is complete.
    pub async fn resync_registry(&self) -> Result<u64, StoreError> {
        let load = compile::load_everything(&self.database).await?;
        let version = load.version();
        // Changes may have been missed: sessions too.
        self.sessions.forget_all();
        self.registry.install(load);
        Ok(version)
    }

    /// Appends a change-feed row inside `transaction` and returns its version.
    ///
    /// PostgreSQL: versions are MAX + 1 under a transaction-scoped advisory lock, so they
    /// have no gaps and commit in order; the NOTIFY is delivered at commit (a group
    /// commit's transaction sends one for the whole batch). The transaction should have
    /// been begun with [`Database::begin_change`], which takes that lock first.
    pub(crate) async fn record_change(transaction: &mut Transaction, change: Change<'_>) -> Result<u64, StoreError> {
        let revoked = change.revoked.iter().map(hex_digest).collect::<Vec<_>>().join(",");
        let version = match transaction.dialect() {
            Dialect::Sqlite => transaction
                .fetch_one(
                    "INSERT INTO changes (kind, subject, revoked, at) VALUES ($1, $2, $3, $4) RETURNING version",
                    &params![change.kind, change.subject, revoked, change.at],
                )
                .await?
                .i64("version")?,
            Dialect::Postgres => {
                transaction.lock_change_feed().await?;
                let version = transaction
                    .fetch_one(
                        "INSERT INTO changes (version, kind, subject, revoked, at) SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4 FROM changes RETURNING version",
                        &params![change.kind, change.subject, revoked, change.at],
                    )
                    .await?
                    .i64("version")?;
                if !transaction.is_grouped() {
                    transaction.execute("SELECT pg_notify($1, $2)", &params![feed::CHANGE_FEED_CHANNEL, version.to_string()]).await?;
                }
                version
            }
        };
        Ok(u64::try_from(version).unwrap_or(0))
    }

    /// Appends the change-feed rows of a group commit's batch in one statement and returns
    /// their versions, consecutive and in the order of `changes`. PostgreSQL only (the
    /// batch takes the lock first, like [`Store::record_change`]; the NOTIFY is the batch's).
    pub(crate) async fn record_changes(transaction: &mut Transaction, changes: &[Change<'_>]) -> Result<Vec<u64>, StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        transaction.lock_change_feed().await?;
        let mut values = Vec::with_capacity(changes.len() * 5);
        let mut rows = Vec::with_capacity(changes.len());
        for (index, change) in changes.iter().enumerate() {
            let revoked = change.revoked.iter().map(hex_digest).collect::<Vec<_>>().join(",");
            let position = i64::try_from(index).unwrap_or(i64::MAX) + 1;
            values.extend(params![position, change.kind, change.subject, revoked, change.at]);
            let first = index * 5;
            rows.push(format!(
                "(${}::BIGINT, ${}::TEXT, ${}::TEXT, ${}::TEXT, ${}::BIGINT)",
                first + 1,
                first + 2,
                first + 3,
                first + 4,
                first + 5
            ));
        }
        let sql = format!(
            "INSERT INTO changes (version, kind, subject, revoked, at) \
             SELECT last.version + entry.position, entry.kind, entry.subject, entry.revoked, entry.at \
             FROM (SELECT COALESCE(MAX(version), 0) AS version FROM changes) AS last, (VALUES {}) AS entry(position, kind, subject, revoked, at) \
             RETURNING version",
            rows.join(", ")
        );
        let mut versions = transaction
            .fetch_all(&sql, &values)
            .await?
            .iter()
            .map(|row| row.i64("version").map(|version| u64::try_from(version).unwrap_or(0)))
            .collect::<Result<Vec<u64>, _>>()?;
        // The versions are the first one plus each entry's position.
        versions.sort_unstable();
        if versions.len() != changes.len() {
            return Err(StoreError::Corrupt(format!("{} change rows written for {} changes", versions.len(), changes.len())));
        }
        Ok(versions)
    }

    fn publish(&self, version: u64, updates: Vec<RegistryUpdate>) {
        self.registry.apply(version, updates);
    }
}

fn hex_digest(digest: &keygate_core::keys::KeyDigest) -> String {
    digest.as_bytes().iter().map(|byte| format!("{byte:02x}")).collect()
}

fn digest_from_hex(text: &str) -> Option<keygate_core::keys::KeyDigest> {
    if text.len() != 64 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..32).map(|index| u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()).collect();
    keygate_core::keys::KeyDigest::from_bytes(&bytes?)
}
