//! The audit log of the caller's account, newest first, paged with `before`. Only the
//! account and admins read it; rows never hold a key, secret or password.

use axum::extract::RawQuery;
use keygate_wire::keygate_api::{AuditEntry, ListAuditResponse};

use super::Result;
use crate::management::call::{Administrator, Answer};
use crate::management::form::FormFields;
use crate::operations::audit::list_audit as audit_entries;
use crate::operations::AuditRecord;

/// Entries per page when `limit` is not given.
pub const DEFAULT_AUDIT_PAGE: i64 = 50;
/// Most entries per page.
pub const MAX_AUDIT_PAGE: i64 = 500;

/// `limit` (1 to 500, default 50) and `before` (an `auditId`, exclusive) of a query.
fn audit_page(query: Option<&str>) -> Result<(u32, Option<i64>)> {
    let query = FormFields::parse(query.unwrap_or(""), "query string")?;
    let limit = query.integer("limit", 1..=MAX_AUDIT_PAGE)?.unwrap_or(DEFAULT_AUDIT_PAGE);
    let before = query.integer("before", 1..=i64::MAX)?;
    Ok((u32::try_from(limit).unwrap_or(50), before))
}

fn audit_entry(record: &AuditRecord) -> AuditEntry {
    AuditEntry {
        audit_id: record.audit_id,
        at: record.at,
        actor: record.actor.clone(),
        action: record.action.clone(),
        target: record.target.clone(),
        detail: record.detail.clone(),
        client_address: record.client_address.clone(),
        region: record.region.clone(),
        credential: record.credential.clone(),
    }
}

pub(super) async fn list_audit(Administrator(call): Administrator, RawQuery(query): RawQuery) -> Answer<ListAuditResponse> {
    let (limit, before) = audit_page(query.as_deref())?;
    let records = audit_entries(call.operations(), &call.actor(), limit, before).await?;
    // A full page may have more behind it; a short one is the end.
    let next_before = if records.len() == limit as usize { records.last().map(|record| record.audit_id) } else { None };
    call.answer(ListAuditResponse { entries: records.iter().map(audit_entry).collect(), next_before })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_pages_default_and_refuse_out_of_range_values() {
        assert_eq!(audit_page(None).unwrap(), (50, None));
        assert_eq!(audit_page(Some("limit=500&before=42")).unwrap(), (500, Some(42)));
        for refused in ["limit=0", "limit=501", "limit=ten", "before=0", "before=-3", "before=x"] {
            assert_eq!(audit_page(Some(refused)).unwrap_err().code, "InvalidParameter", "{refused}");
        }
    }
}
