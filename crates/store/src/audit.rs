//! The audit log: who did what, when, from which address. Written in the same transaction
//! as the change it describes; never holds a plaintext key or secret.

use sqlx::Row;

use crate::{now_millis, Store, StoreError};

/// Who is acting, from where, in which region: passed to every mutation.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub account_id: i64,
    pub actor: String,
    pub client_address: String,
    pub region: String,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub audit_id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub client_address: String,
    pub region: String,
}

pub(crate) async fn write_audit(
    connection: &mut sqlx::SqliteConnection,
    context: &AuditContext,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (at, account_id, actor, action, target, detail, client_address, region) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(now_millis())
        .bind(context.account_id)
        .bind(&context.actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(&context.client_address)
        .bind(&context.region)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

impl Store {
    /// Records an event that changes no other row (e.g. minting a temporary key).
    pub async fn record_audit(&self, context: &AuditContext, action: &str, target: &str, detail: &str) -> Result<(), StoreError> {
        let mut connection = self.writer.acquire().await?;
        write_audit(&mut connection, context, action, target, detail).await
    }

    /// The newest entries of an account, newest first, before `before_id` when given.
    pub async fn list_audit(&self, account_id: i64, limit: u32, before_id: Option<i64>) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query("SELECT audit_id, at, actor, action, target, detail, client_address, region FROM audit_log WHERE account_id = ? AND audit_id < ? ORDER BY audit_id DESC LIMIT ?")
            .bind(account_id)
            .bind(before_id.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .iter()
            .map(|row| AuditRecord {
                audit_id: row.get("audit_id"),
                at: row.get("at"),
                actor: row.get("actor"),
                action: row.get("action"),
                target: row.get("target"),
                detail: row.get("detail"),
                client_address: row.get("client_address"),
                region: row.get("region"),
            })
            .collect())
    }
}
