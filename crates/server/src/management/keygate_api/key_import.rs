//! `POST /keygate/v1/keys/import`: brings existing `sk-` keys from another deployment into
//! one workspace, as legacy keys created by the caller (`keygate keys import` calls it),
//! through [`crate::operations::key_import`], which has the rules.
//!
//! A plaintext is read from the request and handed to the operation, never written
//! anywhere else: a body that does not parse is refused without serde's excerpt of it.

use axum::body::Bytes;
use keygate_wire::keygate_api::{BadLine, ImportedKey, KeyImportRequest, KeyImportResponse};

use super::Result;
use crate::management::call::{Answer, Call};
use crate::management::errors::ManagementError;
use crate::operations::key_import::{self, ImportEntry};

/// The route's path (the authentication middleware allows it a larger body).
pub const IMPORT_PATH: &str = "/keygate/v1/keys/import";

/// Largest request body of an import: [`keygate_core::key_import::MAX_KEYS_PER_IMPORT`]
/// entries with the longest keys and descriptions, even with every character of a
/// description `\u`-escaped.
pub const MAX_IMPORT_BODY_BYTES: usize = 16 * 1024 * 1024;

const EXPECTED_SHAPE: &str =
    r#"{"region": "...", "workspaceId": "...", "keys": [{"line": 1, "key": "sk-...", "description": "..."}], "skipBad": false}"#;

/// Reads the body. serde's messages can quote the input (a key in the wrong field), so a
/// refusal says only where the body went wrong.
fn parse_request(body: &[u8]) -> Result<KeyImportRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ManagementError::invalid_parameter(format!("The request body is empty; expected JSON {EXPECTED_SHAPE}.")));
    }
    serde_json::from_slice(body).map_err(|error| {
        ManagementError::invalid_parameter(format!(
            "The request body is not the expected JSON {EXPECTED_SHAPE} (line {}, column {}).",
            error.line(),
            error.column()
        ))
    })
}

/// `POST /keygate/v1/keys/import`.
pub(super) async fn import_keys(call: Call, body: Bytes) -> Answer<KeyImportResponse> {
    // Who may never create keys (members, disabled users) is refused before the body is read.
    call.auth.caller.may_create_key(true)?;
    let request = parse_request(&body)?;
    let request = key_import::ImportRequest {
        region: request.region,
        workspace_id: request.workspace_id,
        keys: request.keys.into_iter().map(|key| ImportEntry { line: key.line, key: key.key, description: key.description }).collect(),
        skip_bad: request.skip_bad,
    };
    let outcome = key_import::import_keys(call.operations(), &call.actor(), request).await?;
    let keys = outcome
        .imported
        .iter()
        .map(|key| ImportedKey { line: key.line, api_key_id: key.record.api_key_id, masked_key: key.record.masked_key.clone() })
        .collect();
    call.answer(KeyImportResponse {
        imported_count: outcome.imported.len() as u64,
        skipped_count: outcome.skipped.len() as u64,
        keys,
        bad_lines: outcome.skipped.iter().map(|bad| BadLine { line: bad.line, reason: bad.problem.to_string() }).collect(),
        region: outcome.region,
        workspace_id: outcome.workspace_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::key_import::{check_entries, refused_for_bad_lines};
    use serde_json::json;

    fn entry(line: Option<u64>, key: &str, description: &str) -> ImportEntry {
        ImportEntry { line, key: key.to_string(), description: description.to_string() }
    }

    #[test]
    fn every_bad_line_is_named_and_no_plaintext_is_echoed() {
        let key = "sk-0123456789abcdef0123456789abcdef";
        let malformed = "sk-not a key";
        let (good, bad) = check_entries(vec![
            entry(Some(3), key, "first"),
            entry(Some(5), malformed, ""),
            entry(Some(7), &format!(" {key} "), ""),
            entry(Some(9), "sk-another-legacy-key", &"x".repeat(201)),
        ]);
        assert_eq!(good.iter().map(|line| line.line).collect::<Vec<_>>(), [3]);
        let refusal = ManagementError::from(refused_for_bad_lines(&bad, true));
        assert_eq!(refusal.code, "InvalidParameter");
        assert_eq!(
            refusal.message,
            "Nothing was imported: 3 bad lines: line 5: not a key keygate can import (sk- and 8-200 characters A-Z, a-z, 0-9, '-' or '_'); line 7: sk-0123****cdef repeats line 3; line 9: the description has 201 characters; at most 200. Fix them, or set skipBad to import the other lines."
        );
        let bad_lines = serde_json::to_value(refusal.bad_lines.as_deref().expect("bad lines")).unwrap();
        assert_eq!(bad_lines[1], json!({"line": 7, "reason": "sk-0123****cdef repeats line 3"}));
        let text = format!("{} {bad_lines}", refusal.message);
        assert!(!text.contains(key) && !text.contains(malformed), "{text}");
    }

    #[test]
    fn a_long_list_is_cut_in_the_message_but_whole_in_bad_lines() {
        let entries: Vec<ImportEntry> = (1..=25).map(|line| entry(Some(line), "nope", "")).collect();
        let (good, bad) = check_entries(entries);
        assert!(good.is_empty());
        let refusal = ManagementError::from(refused_for_bad_lines(&bad, false));
        assert!(refusal.message.ends_with("line 20: not an sk- key; and 5 more. No line can be imported."), "{}", refusal.message);
        assert_eq!(refusal.bad_lines.expect("bad lines").len(), 25);
    }

    #[test]
    fn a_body_that_does_not_parse_is_refused_without_quoting_it() {
        let body = br#"{"keys": [{"line": "sk-0123456789abcdef0123456789abcdef", "key": "x"}]}"#;
        let refusal = parse_request(body).err().expect("refused");
        assert!(!refusal.message.contains("sk-0123"), "{}", refusal.message);
        assert!(refusal.message.contains("(line 1, column"), "{}", refusal.message);
    }
}
