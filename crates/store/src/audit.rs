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

/// Which entries a listing keeps; every part is optional and they all apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Part of the actor (`alice@root`), in any case.
    pub actor: Option<String>,
    /// Part of the action (`ApiKey.`, `Delete`), in any case.
    pub action: Option<String>,
    /// The API key the entry is about (its target `apiKey:<id>`).
    pub api_key_id: Option<i64>,
    /// From this time on (Unix ms, included).
    pub from: Option<i64>,
    /// Before this time (Unix ms, excluded).
    pub until: Option<i64>,
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

/// One audit row of a group commit's batch: who acted (each request has its own context),
/// the action, its target and detail.
pub(crate) struct AuditEntry<'a> {
    pub context: &'a AuditContext,
    pub action: &'a str,
    pub target: String,
    pub detail: String,
}

/// Audit rows of different actors, in one multi-row statement (a batch has at most a few
/// dozen: 9 parameters each, well under the parameter limit).
pub(crate) async fn write_audit_entries(transaction: &mut Transaction, entries: &[AuditEntry<'_>]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut values = Vec::with_capacity(entries.len() * 9);
    for entry in entries {
        let context = entry.context;
        values.extend(params![
            context.at,
            context.account_id,
            &context.actor,
            entry.action,
            &entry.target,
            &entry.detail,
            &context.client_address,
            &context.region,
            &context.credential
        ]);
    }
    let sql = format!(
        "INSERT INTO audit_log (at, account_id, actor, action, target, detail, client_address, region, credential) VALUES {}",
        value_rows(entries.len(), 9)
    );
    transaction.execute(&sql, &values).await?;
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
        self.list_audit_filtered(account_id, &AuditFilter::default(), limit, before_id).await
    }

    /// [`Store::list_audit`], keeping only the entries `filter` matches.
    pub async fn list_audit_filtered(
        &self,
        account_id: i64,
        filter: &AuditFilter,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let dialect = self.database.dialect();
        let mut values = params![account_id, before_id.unwrap_or(i64::MAX)].to_vec();
        let mut conditions = "account_id = $1 AND audit_id < $2".to_string();
        for (column, part) in [("actor", &filter.actor), ("action", &filter.action)] {
            if let Some(part) = part {
                values.push(part.into());
                let needle = format!("lower(${})", values.len());
                conditions.push_str(&format!(" AND {}", dialect.contains(&format!("lower({column})"), &needle)));
            }
        }
        if let Some(key_id) = filter.api_key_id {
            values.push(format!("apiKey:{key_id}").into());
            conditions.push_str(&format!(" AND target = ${}", values.len()));
        }
        if let Some(from) = filter.from {
            values.push(from.into());
            conditions.push_str(&format!(" AND at >= ${}", values.len()));
        }
        if let Some(until) = filter.until {
            values.push(until.into());
            conditions.push_str(&format!(" AND at < ${}", values.len()));
        }
        values.push(i64::from(limit).into());
        let sql = format!(
            "SELECT audit_id, at, actor, action, target, detail, client_address, region, credential FROM audit_log WHERE {conditions} ORDER BY audit_id DESC LIMIT ${}",
            values.len()
        );
        let rows = self.database.fetch_all(&sql, &values).await?;
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
