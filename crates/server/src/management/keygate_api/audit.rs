//! The audit log of the caller's account, newest first, paged with `before`. Only the
//! account and admins read it; rows never hold a key, secret or password.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{json, Value};

use super::{respond, Administrator, Result};
use crate::management::form::FormFields;
use crate::operations::audit::list_audit as audit_entries;
use crate::operations::AuditRecord;
use crate::state::AppState;

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

fn entry_json(record: &AuditRecord) -> Value {
    json!({
        "auditId": record.audit_id,
        "at": record.at,
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "detail": record.detail,
        "clientAddress": record.client_address,
        "region": record.region,
        "credential": record.credential,
    })
}

pub(super) async fn list_audit(
    State(state): State<AppState>,
    Administrator(auth): Administrator,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let outcome = async {
        let (limit, before) = audit_page(query.as_deref())?;
        let operations = state.operations();
        let records = audit_entries(operations, &auth.actor(&operations), limit, before).await?;
        // A full page may have more behind it; a short one is the end.
        let next_before = if records.len() == limit as usize { records.last().map(|record| record.audit_id) } else { None };
        Ok(json!({"entries": records.iter().map(entry_json).collect::<Vec<_>>(), "nextBefore": next_before}))
    }
    .await;
    respond(&auth, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_has_exactly_the_fields_the_openapi_document_promises() {
        let document: Value = serde_json::from_str(crate::management::openapi::OPENAPI_DOCUMENT).unwrap();
        let schema = &document["components"]["schemas"]["AuditEntry"];
        let mut promised: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|name| name.as_str().unwrap()).collect();
        let mut described: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let record = AuditRecord {
            audit_id: 1,
            at: 0,
            actor: "kim@root".into(),
            action: "ApiKey.Create".into(),
            target: "apiKey:1".into(),
            detail: String::new(),
            client_address: "127.0.0.1".into(),
            region: "ap-southeast-1".into(),
            credential: "accessKey:LTAI0123456789abcdefghij".into(),
        };
        let entry = entry_json(&record);
        let mut answered: Vec<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        for list in [&mut promised, &mut described, &mut answered] {
            list.sort_unstable();
        }
        assert_eq!(answered, promised);
        assert_eq!(answered, described);
    }

    #[test]
    fn audit_pages_default_and_refuse_out_of_range_values() {
        assert_eq!(audit_page(None).unwrap(), (50, None));
        assert_eq!(audit_page(Some("limit=500&before=42")).unwrap(), (500, Some(42)));
        for refused in ["limit=0", "limit=501", "limit=ten", "before=0", "before=-3", "before=x"] {
            assert_eq!(audit_page(Some(refused)).unwrap_err().code, "InvalidParameter", "{refused}");
        }
    }
}
