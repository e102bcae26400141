//! API keys: create under the region's limit (atomically), list with filters and paging,
//! get, edit, disable/enable, reset and delete, each with its audit row and change-feed
//! entry in the same transaction.

use keygate_core::access::KeyVisibility;
use keygate_core::keys::{KeyDigest, KeyFormat};
use keygate_core::permissions::KeyAuth;
use keygate_core::region::LimitScope;
use keygate_core::verification::RegistryUpdate;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::audit::{write_audit, AuditContext};
use crate::compile;
use crate::error::is_unique_violation;
use crate::rows::{auth_columns, auth_from_row};
use crate::{now_millis, Store, StoreError};

/// The limit a create is checked against, taken from the region's policy.
#[derive(Debug, Clone, Copy)]
pub struct QuotaRule {
    pub limit: u32,
    pub scope: LimitScope,
}

/// A key to insert: the digest and masked form only, never the plaintext.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub region: String,
    pub workspace_id: String,
    pub creator_user_id: Option<i64>,
    pub created_by: String,
    pub description: String,
    pub format: KeyFormat,
    pub digest: KeyDigest,
    pub masked_key: String,
    pub auth: KeyAuth,
    /// Imported legacy keys: the plaintext encrypted with the master key.
    pub legacy_ciphertext: Option<Vec<u8>>,
}

/// A stored key as the management API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub api_key_id: i64,
    pub account_id: i64,
    pub region: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub creator_user_id: Option<i64>,
    pub created_by: String,
    pub description: String,
    pub format: KeyFormat,
    pub masked_key: String,
    pub auth: KeyAuth,
    pub disabled: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub request_count: i64,
    pub legacy_ciphertext: Option<Vec<u8>>,
}

/// Sort key of ListApiKeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    ApiKeyId,
    GmtCreate,
}

/// ListApiKeys: filters, order and one page.
#[derive(Debug, Clone)]
pub struct ListKeysQuery {
    pub account_id: i64,
    pub region: String,
    pub visibility: KeyVisibility,
    pub api_key_id: Option<i64>,
    /// Substring of the description.
    pub description: Option<String>,
    pub workspace_id: Option<String>,
    pub order_by: KeyOrder,
    pub descending: bool,
    pub offset: u32,
    pub limit: u32,
}

const KEY_COLUMNS: &str = "k.api_key_id, k.account_id, k.region, k.workspace_id, w.name AS workspace_name, k.creator_user_id, k.created_by, k.description, k.format, k.masked_key, k.auth_type, k.access_ips, k.allow_all_models, k.accessible_models, k.allow_all_apps, k.accessible_apps, k.disabled, k.created_at, k.last_used_at, k.request_count, k.legacy_ciphertext";

fn record_from_row(row: &SqliteRow) -> Result<ApiKeyRecord, StoreError> {
    let format_name: String = row.get("format");
    Ok(ApiKeyRecord {
        api_key_id: row.get("api_key_id"),
        account_id: row.get("account_id"),
        region: row.get("region"),
        workspace_id: row.get("workspace_id"),
        workspace_name: row.get("workspace_name"),
        creator_user_id: row.get("creator_user_id"),
        created_by: row.get("created_by"),
        description: row.get("description"),
        format: KeyFormat::parse(&format_name).ok_or_else(|| StoreError::Corrupt(format!("format {format_name}")))?,
        masked_key: row.get("masked_key"),
        auth: auth_from_row(row)?,
        disabled: row.get("disabled"),
        created_at: row.get("created_at"),
        last_used_at: row.get("last_used_at"),
        request_count: row.get("request_count"),
        legacy_ciphertext: row.get("legacy_ciphertext"),
    })
}

/// The visibility condition on `k` for a caller, as SQL and its bound value.
fn visibility_clause(visibility: KeyVisibility) -> (&'static str, Option<i64>) {
    match visibility {
        KeyVisibility::WholeAccount => ("1 = 1", None),
        KeyVisibility::CreatedBy(user_id) => ("k.creator_user_id = ?", Some(user_id)),
    }
}

async fn fetch_visible_key(
    connection: &mut SqliteConnection,
    account_id: i64,
    region: &str,
    key_id: i64,
    visibility: KeyVisibility,
) -> Result<ApiKeyRecord, StoreError> {
    let (clause, bound_user) = visibility_clause(visibility);
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k JOIN workspaces w ON w.workspace_id = k.workspace_id WHERE k.account_id = ? AND k.region = ? AND k.api_key_id = ? AND {clause}");
    let mut query = sqlx::query(&sql).bind(account_id).bind(region).bind(key_id);
    if let Some(user_id) = bound_user {
        query = query.bind(user_id);
    }
    let row = query.fetch_optional(&mut *connection).await?.ok_or(StoreError::NotFound("ApiKey"))?;
    record_from_row(&row)
}

impl Store {
    /// Checks the region's limit and inserts the key in one write transaction.
    pub async fn create_api_key(&self, context: &AuditContext, key: NewApiKey, quota: QuotaRule) -> Result<ApiKeyRecord, StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let existing: i64 = match quota.scope {
            LimitScope::Account => sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE account_id = ? AND region = ?")
                .bind(context.account_id)
                .bind(&key.region)
                .fetch_one(&mut *transaction)
                .await?,
            LimitScope::Creator => sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE account_id = ? AND region = ? AND creator_user_id IS ?")
                .bind(context.account_id)
                .bind(&key.region)
                .bind(key.creator_user_id)
                .fetch_one(&mut *transaction)
                .await?,
        };
        if existing >= i64::from(quota.limit) {
            return Err(StoreError::KeyQuotaExceeded { limit: quota.limit });
        }
        let columns = auth_columns(&key.auth);
        let inserted = sqlx::query(
            "INSERT INTO api_keys (account_id, region, workspace_id, creator_user_id, created_by, description, format, key_digest, masked_key, auth_type, access_ips, allow_all_models, accessible_models, allow_all_apps, accessible_apps, disabled, created_at, legacy_ciphertext)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING api_key_id",
        )
        .bind(context.account_id)
        .bind(&key.region)
        .bind(&key.workspace_id)
        .bind(key.creator_user_id)
        .bind(&key.created_by)
        .bind(&key.description)
        .bind(key.format.as_str())
        .bind(key.digest.as_bytes().as_slice())
        .bind(&key.masked_key)
        .bind(columns.auth_type)
        .bind(&columns.access_ips)
        .bind(columns.allow_all_models)
        .bind(&columns.accessible_models)
        .bind(columns.allow_all_apps)
        .bind(&columns.accessible_apps)
        .bind(now_millis())
        .bind(&key.legacy_ciphertext)
        .fetch_one(&mut *transaction)
        .await;
        let key_id: i64 = match inserted {
            Ok(row) => row.get(0),
            Err(error) if is_unique_violation(&error) => return Err(StoreError::Conflict("this key already exists".into())),
            Err(error) => return Err(error.into()),
        };
        let action = if key.legacy_ciphertext.is_some() { "ApiKey.Import" } else { "ApiKey.Create" };
        write_audit(&mut transaction, context, action, &format!("apiKey:{key_id}"), &format!("workspace={} auth={} masked={}", key.workspace_id, columns.auth_type, key.masked_key)).await?;
        let version = Self::record_change(&mut transaction, "api_key", &key_id.to_string()).await?;
        let updates = compile::key_by_id(&mut transaction, key_id).await?;
        let record = fetch_visible_key(&mut transaction, context.account_id, &key.region, key_id, KeyVisibility::WholeAccount).await?;
        transaction.commit().await?;
        self.publish(version, updates);
        Ok(record)
    }

    /// One key, if it exists in `region` and `visibility` allows it.
    pub async fn get_api_key(&self, account_id: i64, region: &str, key_id: i64, visibility: KeyVisibility) -> Result<ApiKeyRecord, StoreError> {
        let mut connection = self.reader.acquire().await?;
        fetch_visible_key(&mut connection, account_id, region, key_id, visibility).await
    }

    /// One page of keys and the total number matching the filters.
    pub async fn list_api_keys(&self, query: &ListKeysQuery) -> Result<(Vec<ApiKeyRecord>, u64), StoreError> {
        let (clause, bound_user) = visibility_clause(query.visibility);
        let mut conditions = format!("k.account_id = ? AND k.region = ? AND {clause}");
        if query.api_key_id.is_some() {
            conditions.push_str(" AND k.api_key_id = ?");
        }
        if query.description.is_some() {
            conditions.push_str(" AND instr(k.description, ?) > 0");
        }
        if query.workspace_id.is_some() {
            conditions.push_str(" AND k.workspace_id = ?");
        }
        let order_column = match query.order_by {
            KeyOrder::ApiKeyId => "k.api_key_id",
            KeyOrder::GmtCreate => "k.created_at",
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let select = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN workspaces w ON w.workspace_id = k.workspace_id WHERE {conditions} ORDER BY {order_column} {direction}, k.api_key_id {direction} LIMIT ? OFFSET ?"
        );
        let count = format!("SELECT COUNT(*) FROM api_keys k WHERE {conditions}");
        macro_rules! bind_filters {
            ($query:expr) => {{
                let mut bound = $query.bind(query.account_id).bind(&query.region);
                if let Some(user_id) = bound_user {
                    bound = bound.bind(user_id);
                }
                if let Some(key_id) = query.api_key_id {
                    bound = bound.bind(key_id);
                }
                if let Some(description) = &query.description {
                    bound = bound.bind(description);
                }
                if let Some(workspace_id) = &query.workspace_id {
                    bound = bound.bind(workspace_id);
                }
                bound
            }};
        }
        let mut connection = self.reader.acquire().await?;
        let total: i64 = bind_filters!(sqlx::query_scalar(&count)).fetch_one(&mut *connection).await?;
        let rows = bind_filters!(sqlx::query(&select))
            .bind(i64::from(query.limit))
            .bind(i64::from(query.offset))
            .fetch_all(&mut *connection)
            .await?;
        let records = rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok((records, u64::try_from(total).unwrap_or(0)))
    }

    /// Runs `change` on a visible key inside a write transaction, then audits, records the
    /// change and republishes the key.
    async fn change_api_key<F>(
        &self,
        context: &AuditContext,
        key_id: i64,
        visibility: KeyVisibility,
        action: &str,
        change: F,
    ) -> Result<ApiKeyRecord, StoreError>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection, &'c ApiKeyRecord) -> futures_like::BoxFuture<'c, Result<(String, Vec<RegistryUpdate>), StoreError>>,
    {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let before = fetch_visible_key(&mut transaction, context.account_id, &context.region, key_id, visibility).await?;
        let (detail, mut updates) = change(&mut transaction, &before).await?;
        write_audit(&mut transaction, context, action, &format!("apiKey:{key_id}"), &detail).await?;
        let version = Self::record_change(&mut transaction, "api_key", &key_id.to_string()).await?;
        updates.extend(compile::key_by_id(&mut transaction, key_id).await?);
        let after = fetch_visible_key(&mut transaction, context.account_id, &context.region, key_id, KeyVisibility::WholeAccount).await;
        transaction.commit().await?;
        self.publish(version, updates);
        // A deleted key has no "after": return what it was.
        Ok(after.unwrap_or(before))
    }

    /// Edit: a new description and/or permission mode.
    pub async fn update_api_key(
        &self,
        context: &AuditContext,
        key_id: i64,
        visibility: KeyVisibility,
        description: Option<String>,
        auth: Option<KeyAuth>,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.change_api_key(context, key_id, visibility, "ApiKey.Update", move |connection, before| {
            Box::pin(async move {
                let description = description.unwrap_or_else(|| before.description.clone());
                let auth = auth.unwrap_or_else(|| before.auth.clone());
                let columns = auth_columns(&auth);
                sqlx::query("UPDATE api_keys SET description = ?, auth_type = ?, access_ips = ?, allow_all_models = ?, accessible_models = ?, allow_all_apps = ?, accessible_apps = ? WHERE api_key_id = ?")
                    .bind(&description)
                    .bind(columns.auth_type)
                    .bind(&columns.access_ips)
                    .bind(columns.allow_all_models)
                    .bind(&columns.accessible_models)
                    .bind(columns.allow_all_apps)
                    .bind(&columns.accessible_apps)
                    .bind(before.api_key_id)
                    .execute(&mut *connection)
                    .await?;
                Ok((format!("auth={}", columns.auth_type), Vec::new()))
            })
        })
        .await
    }

    /// Disable (`true`) or enable (`false`).
    pub async fn set_api_key_disabled(&self, context: &AuditContext, key_id: i64, visibility: KeyVisibility, disabled: bool) -> Result<ApiKeyRecord, StoreError> {
        let action = if disabled { "ApiKey.Disable" } else { "ApiKey.Enable" };
        self.change_api_key(context, key_id, visibility, action, move |connection, before| {
            Box::pin(async move {
                sqlx::query("UPDATE api_keys SET disabled = ? WHERE api_key_id = ?").bind(disabled).bind(before.api_key_id).execute(&mut *connection).await?;
                Ok((String::new(), Vec::new()))
            })
        })
        .await
    }

    /// Reset: a new digest for the same id; the old digest is revoked at the same version.
    pub async fn reset_api_key(
        &self,
        context: &AuditContext,
        key_id: i64,
        visibility: KeyVisibility,
        format: KeyFormat,
        digest: KeyDigest,
        masked_key: String,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.change_api_key(context, key_id, visibility, "ApiKey.Reset", move |connection, before| {
            Box::pin(async move {
                let old_digest: Vec<u8> = sqlx::query_scalar("SELECT key_digest FROM api_keys WHERE api_key_id = ?").bind(before.api_key_id).fetch_one(&mut *connection).await?;
                sqlx::query("UPDATE api_keys SET key_digest = ?, masked_key = ?, format = ?, legacy_ciphertext = NULL WHERE api_key_id = ?")
                    .bind(digest.as_bytes().as_slice())
                    .bind(&masked_key)
                    .bind(format.as_str())
                    .bind(before.api_key_id)
                    .execute(&mut *connection)
                    .await?;
                let revoked = KeyDigest::from_bytes(&old_digest).map(|digest| RegistryUpdate::Revoked { digest });
                Ok((format!("masked={masked_key}"), revoked.into_iter().collect()))
            })
        })
        .await
    }

    /// Delete (final); the id is never reused.
    pub async fn delete_api_key(&self, context: &AuditContext, key_id: i64, visibility: KeyVisibility) -> Result<ApiKeyRecord, StoreError> {
        self.change_api_key(context, key_id, visibility, "ApiKey.Delete", move |connection, before| {
            Box::pin(async move {
                let digest: Vec<u8> = sqlx::query_scalar("DELETE FROM api_keys WHERE api_key_id = ? RETURNING key_digest").bind(before.api_key_id).fetch_one(&mut *connection).await?;
                let revoked = KeyDigest::from_bytes(&digest).map(|digest| RegistryUpdate::Revoked { digest });
                Ok((format!("masked={}", before.masked_key), revoked.into_iter().collect()))
            })
        })
        .await
    }

    /// Adds batched usage counts (from the gateway's in-memory counters).
    pub async fn add_key_usage(&self, usage: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for (key_id, count, last_used_at) in usage {
            sqlx::query("UPDATE api_keys SET request_count = request_count + ?, last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE api_key_id = ?")
                .bind(count)
                .bind(last_used_at)
                .bind(key_id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

/// A boxed future, so that closures can borrow the transaction (no `futures` dependency).
pub(crate) mod futures_like {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}
