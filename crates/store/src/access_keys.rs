//! AccessKeys (management credentials whose secrets are stored encrypted), console/CLI
//! sessions (stored as token digests) and the ACS3 nonce ledger.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::audit::{write_audit, AuditContext};
use crate::{now_millis, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub account_id: i64,
    pub user_id: Option<i64>,
    /// The secret, AES-256-GCM encrypted under the master key.
    pub secret_ciphertext: Vec<u8>,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub account_id: i64,
    pub user_id: Option<i64>,
    pub expires_at: i64,
}

fn access_key_from_row(row: &SqliteRow) -> AccessKeyRecord {
    let status: String = row.get("status");
    AccessKeyRecord {
        access_key_id: row.get("access_key_id"),
        account_id: row.get("account_id"),
        user_id: row.get("user_id"),
        secret_ciphertext: row.get("secret_ciphertext"),
        active: status == "active",
        created_at: row.get("created_at"),
        last_used_at: row.get("last_used_at"),
    }
}

const ACCESS_KEY_COLUMNS: &str = "access_key_id, account_id, user_id, secret_ciphertext, status, created_at, last_used_at";

impl Store {
    pub async fn create_access_key(&self, context: &AuditContext, access_key_id: &str, user_id: Option<i64>, secret_ciphertext: &[u8]) -> Result<AccessKeyRecord, StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(&format!("INSERT INTO access_keys (access_key_id, account_id, user_id, secret_ciphertext, status, created_at) VALUES (?, ?, ?, ?, 'active', ?) RETURNING {ACCESS_KEY_COLUMNS}"))
            .bind(access_key_id)
            .bind(context.account_id)
            .bind(user_id)
            .bind(secret_ciphertext)
            .bind(now_millis())
            .fetch_one(&mut *transaction)
            .await?;
        write_audit(&mut transaction, context, "AccessKey.Create", &format!("accessKey:{access_key_id}"), &user_id.map(|id| format!("user_id={id}")).unwrap_or_else(|| "owner=account".into())).await?;
        transaction.commit().await?;
        Ok(access_key_from_row(&row))
    }

    pub async fn find_access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE access_key_id = ?")).bind(access_key_id).fetch_optional(&self.reader).await?;
        Ok(row.as_ref().map(access_key_from_row))
    }

    /// AccessKeys of the account; only those of `user_id` when given.
    pub async fn list_access_keys(&self, account_id: i64, owner: Option<Option<i64>>) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let rows = match owner {
            None => sqlx::query(&format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE account_id = ? ORDER BY created_at")).bind(account_id).fetch_all(&self.reader).await?,
            Some(user_id) => sqlx::query(&format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE account_id = ? AND user_id IS ? ORDER BY created_at"))
                .bind(account_id)
                .bind(user_id)
                .fetch_all(&self.reader)
                .await?,
        };
        Ok(rows.iter().map(access_key_from_row).collect())
    }

    pub async fn set_access_key_active(&self, context: &AuditContext, access_key_id: &str, active: bool) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let changed = sqlx::query("UPDATE access_keys SET status = ? WHERE access_key_id = ? AND account_id = ?")
            .bind(if active { "active" } else { "disabled" })
            .bind(access_key_id)
            .bind(context.account_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("AccessKey"));
        }
        let action = if active { "AccessKey.Enable" } else { "AccessKey.Disable" };
        write_audit(&mut transaction, context, action, &format!("accessKey:{access_key_id}"), "").await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn delete_access_key(&self, context: &AuditContext, access_key_id: &str) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let changed = sqlx::query("DELETE FROM access_keys WHERE access_key_id = ? AND account_id = ?").bind(access_key_id).bind(context.account_id).execute(&mut *transaction).await?.rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("AccessKey"));
        }
        write_audit(&mut transaction, context, "AccessKey.Delete", &format!("accessKey:{access_key_id}"), "").await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Stores a session under the digest of its token.
    pub async fn create_session(&self, context: &AuditContext, token_digest: &[u8], user_id: Option<i64>, expires_at: i64) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < ?").bind(now_millis()).execute(&mut *transaction).await?;
        sqlx::query("INSERT INTO sessions (token_digest, account_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(token_digest)
            .bind(context.account_id)
            .bind(user_id)
            .bind(now_millis())
            .bind(expires_at)
            .execute(&mut *transaction)
            .await?;
        write_audit(&mut transaction, context, "Session.Login", "session", "").await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The live session with this token digest.
    pub async fn find_session(&self, token_digest: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query("SELECT account_id, user_id, expires_at FROM sessions WHERE token_digest = ? AND expires_at > ?")
            .bind(token_digest)
            .bind(now_millis())
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|row| SessionRecord { account_id: row.get("account_id"), user_id: row.get("user_id"), expires_at: row.get("expires_at") }))
    }

    pub async fn delete_session(&self, context: &AuditContext, token_digest: &[u8]) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM sessions WHERE token_digest = ?").bind(token_digest).execute(&mut *transaction).await?;
        write_audit(&mut transaction, context, "Session.Logout", "session", "").await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Records an ACS3 nonce; `false` when it was already seen (a replay). Nonces older
    /// than `forget_before` (Unix ms) are pruned: the clock window refuses them anyway.
    pub async fn remember_nonce(&self, nonce: &str, forget_before: i64) -> Result<bool, StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM signature_nonces WHERE seen_at < ?").bind(forget_before).execute(&mut *transaction).await?;
        let inserted = sqlx::query("INSERT INTO signature_nonces (nonce, seen_at) VALUES (?, ?) ON CONFLICT(nonce) DO NOTHING")
            .bind(nonce)
            .bind(now_millis())
            .execute(&mut *transaction)
            .await?
            .rows_affected()
            == 1;
        transaction.commit().await?;
        Ok(inserted)
    }
}
