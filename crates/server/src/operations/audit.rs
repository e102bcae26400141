//! The audit log of the actor's account, newest first, a page at a time (administrators
//! only), optionally filtered. Rows never hold a key, secret or password.

use keygate_store::{AuditFilter, AuditRecord};

use super::{Actor, OperationError, Operations};

/// At most `limit` entries, newest first, before the entry `before` (an audit id) when given.
pub async fn list_audit(
    operations: Operations<'_>,
    actor: &Actor,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<AuditRecord>, OperationError> {
    list_audit_filtered(operations, actor, &AuditFilter::default(), limit, before).await
}

/// [`list_audit`], only the entries `filter` matches (the store applies it).
pub async fn list_audit_filtered(
    operations: Operations<'_>,
    actor: &Actor,
    filter: &AuditFilter,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<AuditRecord>, OperationError> {
    actor.caller.may_administer()?;
    Ok(operations.store.list_audit_filtered(actor.caller.account_id, filter, limit, before).await?)
}
