//! Compiles stored rows into the registry's verification state: a key with its creator's
//! standing and workspace membership folded in, and a workspace with its grants. A full
//! load compiles each key's row into the [`RegistryLoad`] as it arrives, so that the rows
//! of a million keys are never in memory at once: on SQLite from one statement read in
//! place ([`crate::sqlite_snapshot`]), on PostgreSQL in batches of [`LOAD_BATCH`] rows,
//! each compiled on a blocking thread while the next is read.

use std::sync::Arc;

use keygate_core::keys::{KeyDigest, KeyFormat};
use keygate_core::verification::{CompiledKey, GraceSecret, KeyStanding, RegistryLoad, RegistryUpdate, WorkspaceGrants};

use crate::database::{params, value_rows, Columns, Database, Row, SqlValue, Transaction};
use crate::rows::{auth_from_row, limits_from_row};
use crate::sqlite_snapshot::Snapshot;
use crate::StoreError;

/// The select list and joins that give everything a compiled key needs. The lists of a
/// `Custom` key are read only for such keys (NULL otherwise): most keys are `All`, and a
/// full load reads every key.
const KEY_STATE_QUERY: &str = "
SELECT k.api_key_id, k.account_id, a.name AS account_name, k.region, k.workspace_id,
       k.creator_user_id, k.format, k.key_digest, k.disabled,
       k.auth_type, CASE WHEN k.auth_type = 'Custom' THEN k.access_ips END AS access_ips, k.allow_all_models,
       CASE WHEN k.auth_type = 'Custom' THEN k.accessible_models END AS accessible_models, k.allow_all_apps,
       CASE WHEN k.auth_type = 'Custom' THEN k.accessible_apps END AS accessible_apps,
       k.expires_at, k.previous_key_digest, k.previous_secret_ends_at,
       k.limit_requests_per_minute, k.limit_tokens_per_minute, k.limit_max_in_flight, k.budget_period, k.budget_tokens, k.budget_cost_micros,
       u.status AS creator_status,
       (k.creator_user_id IS NULL OR w.is_default OR EXISTS (
            SELECT 1 FROM workspace_members m WHERE m.workspace_id = k.workspace_id AND m.user_id = k.creator_user_id
       )) AS creator_is_member
FROM api_keys k
JOIN accounts a ON a.account_id = k.account_id
JOIN workspaces w ON w.workspace_id = k.workspace_id
LEFT JOIN ram_users u ON u.user_id = k.creator_user_id";

fn compile_key_row(row: &impl Columns) -> Result<RegistryUpdate, StoreError> {
    let digest = KeyDigest::from_bytes(row.blob("key_digest")?).ok_or_else(|| StoreError::Corrupt("key digest length".into()))?;
    let format_name = row.text("format")?;
    let format = KeyFormat::parse(format_name).ok_or_else(|| StoreError::Corrupt(format!("key format {format_name}")))?;
    let standing = if row.boolean("disabled")? {
        KeyStanding::Disabled
    } else if row.opt_text("creator_status")? == Some("disabled") {
        KeyStanding::CreatorDisabled
    } else if !row.boolean("creator_is_member")? {
        KeyStanding::CreatorNotMember
    } else {
        KeyStanding::Usable
    };
    let grace_secret = match (row.opt_blob("previous_key_digest")?, row.opt_i64("previous_secret_ends_at")?) {
        (Some(bytes), Some(ends_at)) => Some(Box::new(GraceSecret {
            digest: KeyDigest::from_bytes(bytes).ok_or_else(|| StoreError::Corrupt("previous key digest length".into()))?,
            ends_at,
        })),
        _ => None,
    };
    let key = CompiledKey {
        key_id: row.i64("api_key_id")?,
        account_id: row.i64("account_id")?,
        account_name: row.text("account_name")?.into(),
        region: row.text("region")?.into(),
        workspace_id: row.text("workspace_id")?.into(),
        creator_user_id: row.opt_i64("creator_user_id")?,
        format,
        standing,
        auth: auth_from_row(row)?,
        expires_at: row.opt_i64("expires_at")?,
        grace_secret,
        limits: limits_from_row(row)?.map(Box::new),
    };
    Ok(RegistryUpdate::Key { digest, key: Arc::new(key) })
}

/// Recompiles the keys matched by `filter` (a WHERE clause on `k` with one `$1`).
async fn keys_where(transaction: &mut Transaction, filter: &str, value: SqlValue) -> Result<Vec<RegistryUpdate>, StoreError> {
    let rows = transaction.fetch_all(&format!("{KEY_STATE_QUERY} WHERE {filter}"), &[value]).await?;
    rows.iter().map(compile_key_row).collect()
}

/// The change-feed kind of a batch of keys (an import), whose subject is the id range
/// `first-last`. Every key in the range is recompiled: that may include keys of other
/// batches, which is harmless, since the state read is current.
pub(crate) const KEY_RANGE_CHANGE: &str = "api_key_range";

pub(crate) async fn keys_in_id_range(transaction: &mut Transaction, first: i64, last: i64) -> Result<Vec<RegistryUpdate>, StoreError> {
    let rows =
        transaction.fetch_all(&format!("{KEY_STATE_QUERY} WHERE k.api_key_id >= $1 AND k.api_key_id <= $2"), &params![first, last]).await?;
    rows.iter().map(compile_key_row).collect()
}

/// The keys with these ids (those that exist), keyed by id, in one statement per
/// [`KEYS_PER_LOOKUP`] ids.
pub(crate) async fn keys_by_ids(
    transaction: &mut Transaction,
    key_ids: &[i64],
) -> Result<std::collections::HashMap<i64, RegistryUpdate>, StoreError> {
    let mut keys = std::collections::HashMap::with_capacity(key_ids.len());
    for chunk in key_ids.chunks(KEYS_PER_LOOKUP) {
        let sql = format!("{KEY_STATE_QUERY} WHERE k.api_key_id IN {}", value_rows(1, chunk.len()));
        let values: Vec<SqlValue> = chunk.iter().map(|&key_id| SqlValue::from(key_id)).collect();
        for row in transaction.fetch_all(&sql, &values).await? {
            keys.insert(row.i64("api_key_id")?, compile_key_row(&row)?);
        }
    }
    Ok(keys)
}

/// Ids per `IN (...)` of [`keys_by_ids`].
const KEYS_PER_LOOKUP: usize = 500;

pub(crate) async fn key_by_id(transaction: &mut Transaction, key_id: i64) -> Result<Vec<RegistryUpdate>, StoreError> {
    keys_where(transaction, "k.api_key_id = $1", key_id.into()).await
}

pub(crate) async fn keys_of_user(transaction: &mut Transaction, user_id: i64) -> Result<Vec<RegistryUpdate>, StoreError> {
    keys_where(transaction, "k.creator_user_id = $1", user_id.into()).await
}

const WORKSPACE_QUERY: &str = "SELECT is_default FROM workspaces WHERE workspace_id = $1";
const GRANTED_MODELS_QUERY: &str = "SELECT model FROM model_grants WHERE workspace_id = $1 AND inference ORDER BY model";
const APPLICATIONS_QUERY: &str = "SELECT app_id FROM applications WHERE workspace_id = $1 ORDER BY app_id";

/// A workspace's grants from its row and the rows of [`GRANTED_MODELS_QUERY`],
/// [`APPLICATIONS_QUERY`] and [`crate::model_limits::LIMITS_OF_WORKSPACE`].
fn grants_from_rows(
    workspace_id: &str,
    workspace: &Row,
    models: &[Row],
    applications: &[Row],
    limits: &[Row],
) -> Result<RegistryUpdate, StoreError> {
    let strings = |rows: &[Row], column: &str| rows.iter().map(|row| row.string(column)).collect::<Result<Vec<_>, _>>();
    Ok(RegistryUpdate::Workspace(Arc::new(WorkspaceGrants {
        workspace_id: workspace_id.to_string(),
        is_default: workspace.boolean("is_default")?,
        inference_models: strings(models, "model")?,
        applications: strings(applications, "app_id")?,
        model_limits: crate::model_limits::limits_from_rows(limits)?,
    })))
}

/// The grants of one workspace, or its removal when it no longer exists.
pub(crate) async fn workspace_grants(transaction: &mut Transaction, workspace_id: &str) -> Result<RegistryUpdate, StoreError> {
    let Some(workspace) = transaction.fetch_optional(WORKSPACE_QUERY, &params![workspace_id]).await? else {
        return Ok(RegistryUpdate::WorkspaceRemoved { workspace_id: workspace_id.to_string() });
    };
    let models = transaction.fetch_all(GRANTED_MODELS_QUERY, &params![workspace_id]).await?;
    let applications = transaction.fetch_all(APPLICATIONS_QUERY, &params![workspace_id]).await?;
    let limits = transaction.fetch_all(crate::model_limits::LIMITS_OF_WORKSPACE, &params![workspace_id]).await?;
    grants_from_rows(workspace_id, &workspace, &models, &applications, &limits)
}

/// [`workspace_grants`] in an SQLite snapshot.
fn workspace_grants_in_snapshot(snapshot: &Snapshot, workspace_id: &str) -> Result<RegistryUpdate, StoreError> {
    let Some(workspace) = snapshot.fetch_all(WORKSPACE_QUERY, &params![workspace_id])?.into_iter().next() else {
        return Ok(RegistryUpdate::WorkspaceRemoved { workspace_id: workspace_id.to_string() });
    };
    let models = snapshot.fetch_all(GRANTED_MODELS_QUERY, &params![workspace_id])?;
    let applications = snapshot.fetch_all(APPLICATIONS_QUERY, &params![workspace_id])?;
    let limits = snapshot.fetch_all(crate::model_limits::LIMITS_OF_WORKSPACE, &params![workspace_id])?;
    grants_from_rows(workspace_id, &workspace, &models, &applications, &limits)
}

/// Keys read per statement of a full load on PostgreSQL: each batch's rows are dropped
/// once compiled, and at most [`BATCHES_AHEAD`] wait for the compiling.
pub(crate) const LOAD_BATCH: i64 = 2_000;

/// The version of a snapshot: the newest change it holds.
const SNAPSHOT_VERSION_QUERY: &str = "SELECT COALESCE(MAX(version), 0) AS version FROM changes";

/// How many digests a full load will hold (every key's, and the old one of each key in a
/// grace period), to size the registry before the rows arrive.
const DIGEST_COUNT_QUERY: &str = "SELECT COUNT(*) + COUNT(previous_key_digest) AS digests FROM api_keys";

const WORKSPACE_IDS_QUERY: &str = "SELECT workspace_id FROM workspaces";

/// An empty load of the snapshot at `version`, sized for `digests` digests (both as the
/// queries above answer them).
fn new_load(version: i64, digests: i64) -> RegistryLoad {
    RegistryLoad::new(u64::try_from(version).unwrap_or(0), usize::try_from(digests).unwrap_or(0))
}

/// Every key and workspace of one snapshot, compiled into a load of the registry: the
/// initial fill and every full resync. The load carries the snapshot's version.
pub(crate) async fn load_everything(database: &Database) -> Result<RegistryLoad, StoreError> {
    if let Some(load) = database.read_sqlite_snapshot(load_sqlite_snapshot).await {
        return load;
    }
    let mut snapshot = database.begin_snapshot().await?;
    let version = snapshot.fetch_one(SNAPSHOT_VERSION_QUERY, &[]).await?.i64("version")?;
    let load = new_load(version, snapshot.fetch_one(DIGEST_COUNT_QUERY, &[]).await?.i64("digests")?);
    let mut load = load_in_batches(&mut snapshot, load).await?;
    let workspace_ids = snapshot.fetch_all(WORKSPACE_IDS_QUERY, &[]).await?;
    for row in workspace_ids {
        load.add([workspace_grants(&mut snapshot, row.text("workspace_id")?).await?]);
    }
    snapshot.commit().await?;
    Ok(load)
}

/// SQLite: the keys in one statement, each row compiled where SQLite holds it (no copy of
/// its values, no thread between the reading and the compiling), then the workspaces.
fn load_sqlite_snapshot(snapshot: &Snapshot) -> Result<RegistryLoad, StoreError> {
    let read_one = |sql: &str, column: &str| -> Result<i64, StoreError> {
        snapshot.fetch_all(sql, &[])?.first().ok_or_else(|| StoreError::Corrupt(format!("no {column}")))?.i64(column)
    };
    let mut load = new_load(read_one(SNAPSHOT_VERSION_QUERY, "version")?, read_one(DIGEST_COUNT_QUERY, "digests")?);
    snapshot.for_each_row(&format!("{KEY_STATE_QUERY} ORDER BY k.api_key_id"), &[], |row| {
        load.add([compile_key_row(row)?]);
        Ok(())
    })?;
    for row in snapshot.fetch_all(WORKSPACE_IDS_QUERY, &[])? {
        load.add([workspace_grants_in_snapshot(snapshot, row.text("workspace_id")?)?]);
    }
    Ok(load)
}

/// PostgreSQL: the keys in order of id, [`LOAD_BATCH`] at a time (each statement starts
/// after the last id of the one before), all in `transaction`'s one snapshot. A thread of
/// tokio's blocking pool compiles each batch into the load while the next is read, so that
/// PostgreSQL's work on a statement and the compiling of the batch before overlap; at most
/// [`BATCHES_AHEAD`] batches wait for it, so the rows in memory stay a few batches'.
async fn load_in_batches(transaction: &mut Transaction, load: RegistryLoad) -> Result<RegistryLoad, StoreError> {
    let (batches, mut arriving) = tokio::sync::mpsc::channel::<Vec<Row>>(BATCHES_AHEAD);
    let compiler = tokio::task::spawn_blocking(move || -> Result<RegistryLoad, StoreError> {
        let mut load = load;
        while let Some(rows) = arriving.blocking_recv() {
            for row in &rows {
                load.add([compile_key_row(row)?]);
            }
        }
        Ok(load)
    });
    let batch_query = format!("{KEY_STATE_QUERY} WHERE k.api_key_id > $1 ORDER BY k.api_key_id LIMIT $2");
    let mut after = i64::MIN;
    loop {
        let rows = transaction.fetch_all(&batch_query, &params![after, LOAD_BATCH]).await?;
        let Some(last) = rows.last() else { break };
        after = last.i64("api_key_id")?;
        let complete = i64::try_from(rows.len()).unwrap_or(i64::MAX) < LOAD_BATCH;
        // A send fails only once the compiler has stopped at a row it could not compile:
        // its error is the answer.
        if batches.send(rows).await.is_err() || complete {
            break;
        }
    }
    drop(batches);
    match compiler.await {
        Ok(load) => load,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(StoreError::Refused(format!("the compiling of the registry's load was cancelled: {error}"))),
    }
}

/// Batches of a PostgreSQL load read ahead of the compiling.
const BATCHES_AHEAD: usize = 2;

/// One change-feed entry as read: its kind, subject and revoked digests.
pub(crate) struct ChangeEntry {
    pub kind: String,
    pub subject: String,
    pub revoked: String,
    /// An `api_key` entry whose key the registry already holds at this entry's version or
    /// later (this node's own write): nothing to read for it.
    pub key_already_applied: bool,
}

/// What each of a run of change-feed entries means for the registry, read in `transaction`:
/// [`updates_for_change`] of each, except that the keys the `api_key` entries name are read
/// in one statement for the whole run (a follower behind a group commit's batch reads its
/// keys at once, not one query per key). One snapshot serves both ways alike: each entry
/// gets the key's state as of that snapshot.
pub(crate) async fn updates_for_changes(
    transaction: &mut Transaction,
    entries: &[ChangeEntry],
) -> Result<Vec<Vec<RegistryUpdate>>, StoreError> {
    let key_id = |entry: &ChangeEntry| (entry.kind == "api_key").then(|| entry.subject.parse::<i64>().ok()).flatten();
    let mut key_ids: Vec<i64> = entries.iter().filter(|entry| !entry.key_already_applied).filter_map(key_id).collect();
    key_ids.sort_unstable();
    key_ids.dedup();
    let keys = keys_by_ids(transaction, &key_ids).await?;
    let mut all = Vec::with_capacity(entries.len());
    for entry in entries {
        let updates = match key_id(entry) {
            Some(id) => {
                let mut updates = revoked_updates(&entry.revoked);
                if !entry.key_already_applied {
                    updates.extend(keys.get(&id).cloned());
                }
                updates
            }
            None => updates_for_change(transaction, &entry.kind, &entry.subject, &entry.revoked).await?,
        };
        all.push(updates);
    }
    Ok(all)
}

fn revoked_updates(revoked: &str) -> Vec<RegistryUpdate> {
    revoked
        .split(',')
        .filter(|text| !text.is_empty())
        .filter_map(crate::digest_from_hex)
        .map(|digest| RegistryUpdate::Revoked { digest })
        .collect()
}

/// What one change-feed entry means for the registry, read in `transaction`.
pub(crate) async fn updates_for_change(
    transaction: &mut Transaction,
    kind: &str,
    subject: &str,
    revoked: &str,
) -> Result<Vec<RegistryUpdate>, StoreError> {
    let mut updates = revoked_updates(revoked);
    match kind {
        "api_key" => {
            if let Ok(key_id) = subject.parse::<i64>() {
                updates.extend(key_by_id(transaction, key_id).await?);
            }
        }
        KEY_RANGE_CHANGE => {
            if let Some((first, last)) = subject.split_once('-') {
                if let (Ok(first), Ok(last)) = (first.parse::<i64>(), last.parse::<i64>()) {
                    updates.extend(keys_in_id_range(transaction, first, last).await?);
                }
            }
        }
        "user" | "membership" => {
            if let Ok(user_id) = subject.parse::<i64>() {
                updates.extend(keys_of_user(transaction, user_id).await?);
            }
        }
        "workspace" => {
            if subject == "defaults" {
                let rows = transaction.fetch_all("SELECT workspace_id FROM workspaces WHERE is_default", &[]).await?;
                for row in rows {
                    updates.push(workspace_grants(transaction, &row.string("workspace_id")?).await?);
                }
            } else {
                updates.push(workspace_grants(transaction, subject).await?);
            }
        }
        _ => {}
    }
    Ok(updates)
}
