//! The key import (`POST /keygate/v1/keys/import`): existing `sk-` keys brought into one
//! workspace, all or nothing unless `skipBad`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /keygate/v1/keys/import`.
// No `Debug`: it holds plaintext keys.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyImportRequest {
    /// Default: the region of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Default: the account's default workspace in the region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    pub keys: Vec<KeyToImport>,
    /// Import the good lines and report the bad ones, instead of importing nothing.
    #[serde(default)]
    pub skip_bad: bool,
}

/// One key of an import.
// No `Debug`: it holds a plaintext key.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyToImport {
    /// The line of the caller's file (default: the position in `keys`, from 1).
    #[serde(default)]
    pub line: Option<u64>,
    /// `sk-` and 8 to 200 characters A-Z, a-z, 0-9, `-` or `_`.
    pub key: String,
    /// At most 200 characters.
    #[serde(default)]
    pub description: String,
}

/// A key imported: the line it came from, its new id and its masked form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportedKey {
    pub line: u64,
    pub api_key_id: i64,
    pub masked_key: String,
}

/// A line that was not imported, and why (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BadLine {
    pub line: u64,
    pub reason: String,
}

/// The answer of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyImportResponse {
    pub region: String,
    pub workspace_id: String,
    pub imported_count: u64,
    pub skipped_count: u64,
    pub keys: Vec<ImportedKey>,
    /// The lines skipped with `skipBad`.
    pub bad_lines: Vec<BadLine>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_import_answer_has_exactly_its_fields() {
        let answer = KeyImportResponse {
            region: "ap-southeast-1".into(),
            workspace_id: "llm-0123456789abcdef".into(),
            imported_count: 1,
            skipped_count: 1,
            keys: vec![ImportedKey { line: 1, api_key_id: 9, masked_key: "sk-0123****cdef".into() }],
            bad_lines: vec![BadLine { line: 2, reason: "not an sk- key".into() }],
        };
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            json!({"region": "ap-southeast-1", "workspaceId": "llm-0123456789abcdef", "importedCount": 1, "skippedCount": 1,
                   "keys": [{"line": 1, "apiKeyId": 9, "maskedKey": "sk-0123****cdef"}], "badLines": [{"line": 2, "reason": "not an sk- key"}]})
        );
    }

    #[test]
    fn a_request_leaves_out_the_defaults_it_does_not_name_and_refuses_unknown_fields() {
        let request = KeyImportRequest {
            region: None,
            workspace_id: None,
            keys: vec![KeyToImport { line: Some(3), key: "sk-x".into(), description: String::new() }],
            skip_bad: false,
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"keys": [{"line": 3, "key": "sk-x", "description": ""}], "skipBad": false})
        );
        assert!(serde_json::from_str::<KeyImportRequest>(r#"{"keys": [], "extra": 1}"#).is_err());
    }
}
