//! The audit log: who did what, when, from which address. Written in the same transaction
//! as the change it describes; never holds a plaintext key or secret.

use crate::database::{params, value_rows, Transaction};
use crate::{Store, StoreError};

/// Who is acting, from where, in which region, and when: passed to every mutation.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub account_id: i64,
    pub actor: String,
    pub client_address: String,
    pub region: String,
    /// The credential the actor used (`accessKey:LTAI...`, `session:1a2b3c4d`), empty when
    /// it acted on the database directly.
    pub credential: String,
    /// When (Unix ms): the time of the audit row, and of what the change creates.
    pub at: i64,
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
    pub credential: String,
}

pub(crate) async fn write_audit(
    transaction: &mut Transaction,
    context: &AuditContext,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    transaction
        .execute(
            "INSERT INTO audit_log (at, account_id, actor, action, target, detail, client_address, region, credential) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &params![
                context.at,
                context.account_id,
                &context.actor,
                action,
                target,
                detail,
                &context.client_address,
                &context.region,
                &context.credential
            ],
        )
        .await?;
    Ok(())
}

/// Audit rows of one action over many targets, as `(target, detail)` pairs, in a few
/// multi-row statements (an import writes one row per key).
pub(crate) async fn write_audit_rows(
    transaction: &mut Transaction,
    context: &AuditContext,
    action: &str,
    rows: &[(String, String)],
) -> Result<(), StoreError> {
    const ROWS_PER_STATEMENT: usize = 200;
    let at = context.at;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len() * 9);
        for (target, detail) in chunk {
            values.extend(params![
                at,
                context.account_id,
                &context.actor,
                action,
                target,
                detail,
                &context.client_address,
                &context.region,
                &context.credential
            ]);
        }
        let sql = format!(
            "INSERT INTO audit_log (at, account_id, actor, action, target, detail, client_address, region, credential) VALUES {}",
            value_rows(chunk.len(), 9)
        );
        transaction.execute(&sql, &values).await?;
    }
    Ok(())
}

impl Store {
    /// Records an event that changes no other row (e.g. minting a temporary key).
    pub async fn record_audit(&self, context: &AuditContext, action: &str, target: &str, detail: &str) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_write().await?;
        write_audit(&mut transaction, context, action, target, detail).await?;
        transaction.commit().await
    }

    /// The newest entries of an account, newest first, before `before_id` when given.
    pub async fn list_audit(&self, account_id: i64, limit: u32, before_id: Option<i64>) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = self
            .database
            .fetch_all(
                "SELECT audit_id, at, actor, action, target, detail, client_address, region, credential FROM audit_log WHERE account_id = $1 AND audit_id < $2 ORDER BY audit_id DESC LIMIT $3",
                &params![account_id, before_id.unwrap_or(i64::MAX), i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    audit_id: row.i64("audit_id")?,
                    at: row.i64("at")?,
                    actor: row.string("actor")?,
                    action: row.string("action")?,
                    target: row.string("target")?,
                    detail: row.string("detail")?,
                    client_address: row.string("client_address")?,
                    credential: row.string("credential")?,
                    region: row.string("region")?,
                })
            })
            .collect()
    }
}
