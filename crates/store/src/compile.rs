//! Compiles stored rows into the registry's verification state: a key with its creator's
//! standing and workspace membership folded in, and a workspace with its grants.

use std::sync::Arc;

use keygate_core::keys::{KeyDigest, KeyFormat};
use keygate_core::verification::{CompiledKey, KeyStanding, RegistryUpdate, WorkspaceGrants};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::rows::auth_from_row;
use crate::StoreError;

/// The select list and joins that give everything a compiled key needs.
const KEY_STATE_QUERY: &str = "
SELECT k.api_key_id, k.account_id, a.name AS account_name, k.region, k.workspace_id,
       k.creator_user_id, k.format, k.key_digest, k.disabled,
       k.auth_type, k.access_ips, k.allow_all_models, k.accessible_models, k.allow_all_apps, k.accessible_apps,
       u.status AS creator_status,
       (k.creator_user_id IS NULL OR w.is_default = 1 OR EXISTS (
            SELECT 1 FROM workspace_members m WHERE m.workspace_id = k.workspace_id AND m.user_id = k.creator_user_id
       )) AS creator_is_member
FROM api_keys k
JOIN accounts a ON a.account_id = k.account_id
JOIN workspaces w ON w.workspace_id = k.workspace_id
LEFT JOIN ram_users u ON u.user_id = k.creator_user_id";

fn compile_key_row(row: &SqliteRow) -> Result<RegistryUpdate, StoreError> {
    let digest_bytes: Vec<u8> = row.get("key_digest");
    let digest = KeyDigest::from_bytes(&digest_bytes).ok_or_else(|| StoreError::Corrupt("key digest length".into()))?;
    let format_name: String = row.get("format");
    let format = KeyFormat::parse(&format_name).ok_or_else(|| StoreError::Corrupt(format!("key format {format_name}")))?;
    let creator_status: Option<String> = row.get("creator_status");
    let creator_is_member: bool = row.get("creator_is_member");
    let standing = if row.get::<bool, _>("disabled") {
        KeyStanding::Disabled
    } else if creator_status.as_deref() == Some("disabled") {
        KeyStanding::CreatorDisabled
    } else if !creator_is_member {
        KeyStanding::CreatorNotMember
    } else {
        KeyStanding::Usable
    };
    let key = CompiledKey {
        key_id: row.get("api_key_id"),
        account_id: row.get("account_id"),
        account_name: row.get("account_name"),
        region: row.get("region"),
        workspace_id: row.get("workspace_id"),
        creator_user_id: row.get("creator_user_id"),
        format,
        standing,
        auth: auth_from_row(row)?,
    };
    Ok(RegistryUpdate::Key { digest, key: Arc::new(key) })
}

/// Recompiles the keys matched by `filter` (a WHERE clause on `k`, with one bound id).
pub(crate) async fn keys_where(connection: &mut SqliteConnection, filter: &str, id: i64) -> Result<Vec<RegistryUpdate>, StoreError> {
    let rows = sqlx::query(&format!("{KEY_STATE_QUERY} WHERE {filter}")).bind(id).fetch_all(&mut *connection).await?;
    rows.iter().map(compile_key_row).collect()
}

pub(crate) async fn key_by_id(connection: &mut SqliteConnection, key_id: i64) -> Result<Vec<RegistryUpdate>, StoreError> {
    keys_where(connection, "k.api_key_id = ?", key_id).await
}

pub(crate) async fn keys_of_user(connection: &mut SqliteConnection, user_id: i64) -> Result<Vec<RegistryUpdate>, StoreError> {
    keys_where(connection, "k.creator_user_id = ?", user_id).await
}

/// The grants of one workspace, or its removal when it no longer exists.
pub(crate) async fn workspace_grants(connection: &mut SqliteConnection, workspace_id: &str) -> Result<RegistryUpdate, StoreError> {
    let is_default: Option<bool> = sqlx::query_scalar("SELECT is_default FROM workspaces WHERE workspace_id = ?")
        .bind(workspace_id)
        .fetch_optional(&mut *connection)
        .await?;
    let Some(is_default) = is_default else {
        return Ok(RegistryUpdate::WorkspaceRemoved { workspace_id: workspace_id.to_string() });
    };
    let inference_models: Vec<String> = sqlx::query_scalar("SELECT model FROM model_grants WHERE workspace_id = ? AND inference = 1 ORDER BY model")
        .bind(workspace_id)
        .fetch_all(&mut *connection)
        .await?;
    let applications: Vec<String> = sqlx::query_scalar("SELECT app_id FROM applications WHERE workspace_id = ? ORDER BY app_id")
        .bind(workspace_id)
        .fetch_all(&mut *connection)
        .await?;
    Ok(RegistryUpdate::Workspace(Arc::new(WorkspaceGrants { workspace_id: workspace_id.to_string(), is_default, inference_models, applications })))
}

/// Every key and workspace: the initial fill.
pub(crate) async fn load_everything(connection: &mut SqliteConnection) -> Result<Vec<RegistryUpdate>, StoreError> {
    let rows = sqlx::query(KEY_STATE_QUERY).fetch_all(&mut *connection).await?;
    let mut updates = rows.iter().map(compile_key_row).collect::<Result<Vec<_>, _>>()?;
    let workspace_ids: Vec<String> = sqlx::query_scalar("SELECT workspace_id FROM workspaces").fetch_all(&mut *connection).await?;
    for workspace_id in workspace_ids {
        updates.push(workspace_grants(connection, &workspace_id).await?);
    }
    Ok(updates)
}
