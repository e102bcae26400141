//! AccessKeys (`/keygate/v1/access-keys...`), the management credentials of the account
//! and its RAM users.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An AccessKey as lists show it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    /// `LTAI` and 20 characters.
    pub access_key_id: String,
    /// The owner's RAM user name; null for the account.
    pub user: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// Epoch milliseconds.
    pub gmt_create: i64,
    /// Epoch milliseconds; null when never used.
    pub last_used_at: Option<i64>,
}

/// `GET /keygate/v1/access-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListAccessKeysResponse {
    pub access_keys: Vec<AccessKey>,
}

/// `POST /keygate/v1/access-keys/{accessKeyId}/disable` and `.../enable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyResponse {
    pub access_key: AccessKey,
}

/// `POST /keygate/v1/access-keys`: an empty body, or the RAM user to create it for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccessKeyRequest {
    /// The RAM user to create it for; the caller itself when null or absent.
    #[serde(default)]
    pub user: Option<String>,
}

/// A new AccessKey: the one answer that holds its secret.
// No `Debug`: it holds the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAccessKey {
    pub access_key_id: String,
    /// Shown only here; stored only encrypted.
    pub access_key_secret: String,
    /// The owner's RAM user name; null for the account.
    pub user: Option<String>,
    /// Always `active`.
    pub status: String,
    /// Epoch milliseconds.
    pub gmt_create: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_access_key_of_the_account_has_a_null_user_and_a_null_last_use() {
        let key = AccessKey {
            access_key_id: "LTAI0123456789abcdefghij".into(),
            user: None,
            status: "active".into(),
            gmt_create: 5,
            last_used_at: None,
        };
        assert_eq!(
            serde_json::to_value(ListAccessKeysResponse { access_keys: vec![key] }).unwrap(),
            json!({"accessKeys": [{"accessKeyId": "LTAI0123456789abcdefghij", "user": null, "status": "active", "gmtCreate": 5, "lastUsedAt": null}]})
        );
    }

    #[test]
    fn a_created_access_key_carries_its_secret_and_a_request_its_user() {
        let created = CreatedAccessKey {
            access_key_id: "LTAI0123456789abcdefghij".into(),
            access_key_secret: "s".into(),
            user: Some("alice".into()),
            status: "active".into(),
            gmt_create: 1,
        };
        assert_eq!(
            serde_json::to_value(&created).unwrap(),
            json!({"accessKeyId": "LTAI0123456789abcdefghij", "accessKeySecret": "s", "user": "alice", "status": "active", "gmtCreate": 1})
        );
        assert_eq!(serde_json::to_value(CreateAccessKeyRequest::default()).unwrap(), json!({"user": null}));
    }
}
