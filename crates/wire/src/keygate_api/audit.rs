//! The audit log (`GET /keygate/v1/audit`), newest first, paged with `before`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One change: who made it, when, from where, with which credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub audit_id: i64,
    /// Epoch milliseconds.
    pub at: i64,
    /// `alice@root`, or `root` for the account.
    pub actor: String,
    /// e.g. `ApiKey.Create`.
    pub action: String,
    /// e.g. `apiKey:42`.
    pub target: String,
    /// Never a key, secret or password.
    pub detail: String,
    pub client_address: String,
    pub region: String,
    /// `accessKey:<id>`, `session:<label>`, or empty for `keygate admin` on the database.
    pub credential: String,
}

/// `GET /keygate/v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListAuditResponse {
    pub entries: Vec<AuditEntry>,
    /// The `before` of the next page; null on the last page.
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_audit_page_has_its_entries_and_a_null_next_before_on_the_last_page() {
        let entry = AuditEntry {
            audit_id: 1,
            at: 2,
            actor: "root".into(),
            action: "ApiKey.Create".into(),
            target: "apiKey:1".into(),
            detail: String::new(),
            client_address: "127.0.0.1".into(),
            region: "ap-southeast-1".into(),
            credential: String::new(),
        };
        assert_eq!(
            serde_json::to_value(ListAuditResponse { entries: vec![entry], next_before: None }).unwrap(),
            json!({"entries": [{"auditId": 1, "at": 2, "actor": "root", "action": "ApiKey.Create", "target": "apiKey:1", "detail": "", "clientAddress": "127.0.0.1", "region": "ap-southeast-1", "credential": ""}], "nextBefore": null})
        );
    }
}
