//! `POST /keygate/v1/keys/import`: brings existing `sk-` keys from another deployment into
//! one workspace, as legacy keys created by the caller (`keygate keys import` calls it).
//!
//! The same caller rule as CreateApiKey applies (the account, or an admin or key-manager
//! who is a member of the workspace). Every line is checked first (shape, description,
//! repeats, keys already in keygate), and a bad line makes the whole import refused, naming
//! every bad line; with `skipBad` the good lines are imported and the bad ones reported.
//! The region's limit is checked for the whole batch: an import that would pass it imports
//! nothing. The store writes all keys, an `ApiKey.Import` audit row each, and one
//! change-feed entry in one transaction.
//!
//! A plaintext is read from the request, encrypted with the master key into the key's
//! row (so that its owner may view it again) and never written anywhere else: refusals
//! name a key by its masked form at most, and a body that does not parse is refused
//! without serde's excerpt of it.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use keygate_core::key_import::{check_entry, summarize, BadLine, CheckedEntry, LineProblem, SeenKeys, MAX_KEYS_PER_IMPORT};
use keygate_core::keys::{expose, KeyFormat};
use keygate_core::permissions::KeyAuth;
use keygate_core::region::RegionPolicy;
use keygate_store::{AuditContext, NewApiKey, QuotaRule, StoreError};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{respond, Result};
use crate::management::authentication::Authenticated;
use crate::management::errors::ManagementError;
use crate::management::form::shown;
use crate::operations::keys::{caller_is_member, resolve_workspace_in};
use crate::state::AppState;

/// The route's path (the authentication middleware allows it a larger body).
pub const IMPORT_PATH: &str = "/keygate/v1/keys/import";

/// Largest request body of an import: [`MAX_KEYS_PER_IMPORT`] entries with the longest
/// keys and descriptions, even with every character of a description `\u`-escaped.
pub const MAX_IMPORT_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Bad lines named in an error message; `badLines` has them all.
const BAD_LINES_IN_MESSAGE: usize = 20;

const EXPECTED_SHAPE: &str =
    r#"{"region": "...", "workspaceId": "...", "keys": [{"line": 1, "key": "sk-...", "description": "..."}], "skipBad": false}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImportRequest {
    /// Default: the region of the request.
    region: Option<String>,
    /// Default: the account's default workspace in the region.
    workspace_id: Option<String>,
    keys: Vec<ImportEntry>,
    #[serde(default)]
    skip_bad: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportEntry {
    /// The line of the caller's file (default: the position in `keys`, from 1).
    line: Option<u64>,
    key: String,
    #[serde(default)]
    description: String,
}

/// A line that passed every check: what the store needs, and the plaintext to encrypt.
struct GoodLine {
    line: u64,
    entry: CheckedEntry,
    plaintext: SecretString,
}

/// Reads the body. serde's messages can quote the input (a key in the wrong field), so a
/// refusal says only where the body went wrong.
fn parse_request(body: &[u8]) -> Result<ImportRequest> {
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

/// The import's region: the request's unless the body names another this server serves.
fn import_region<'a>(state: &'a AppState, auth: &Authenticated, requested: Option<&str>) -> Result<&'a RegionPolicy> {
    let region = requested.filter(|text| !text.is_empty()).unwrap_or(&auth.region);
    if !state.shared.served_regions.iter().any(|served| served == region) {
        return Err(ManagementError::invalid_parameter(format!(
            "region '{}' is not served here; this server serves {}.",
            shown(region),
            state.shared.served_regions.join(", ")
        )));
    }
    state.region_policy(region).ok_or_else(|| ManagementError::internal(format!("region {region} has no policy")))
}

/// Checks every entry: shape, description, repeats within the import.
fn check_entries(entries: Vec<ImportEntry>) -> (Vec<GoodLine>, Vec<BadLine>) {
    let mut seen = SeenKeys::default();
    let mut good = Vec::with_capacity(entries.len());
    let mut bad = Vec::new();
    for (position, entry) in entries.into_iter().enumerate() {
        let line = entry.line.unwrap_or(position as u64 + 1);
        let plaintext = SecretString::from(entry.key);
        let key = expose(&plaintext).trim();
        let checked = check_entry(key, &entry.description).and_then(|checked| seen.admit(&checked, line).map(|()| checked));
        match checked {
            Ok(checked) => {
                let plaintext = SecretString::from(key.to_string());
                good.push(GoodLine { line, entry: checked, plaintext });
            }
            Err(problem) => bad.push(BadLine { line, problem }),
        }
    }
    (good, bad)
}

/// Moves the lines whose keys are already stored from `good` to `bad`.
fn refuse_stored(good: &mut Vec<GoodLine>, bad: &mut Vec<BadLine>, is_stored: impl Fn(usize, &GoodLine) -> bool) {
    let mut kept = Vec::with_capacity(good.len());
    for (position, line) in std::mem::take(good).into_iter().enumerate() {
        if is_stored(position, &line) {
            bad.push(BadLine { line: line.line, problem: LineProblem::AlreadyStored { masked: line.entry.masked.clone() } });
        } else {
            kept.push(line);
        }
    }
    *good = kept;
    bad.sort_by_key(|bad_line| bad_line.line);
}

fn bad_lines_json(bad: &[BadLine]) -> Value {
    Value::Array(bad.iter().map(|bad_line| json!({"line": bad_line.line, "reason": bad_line.problem.to_string()})).collect())
}

/// The refusal of an import with bad lines: nothing was imported.
fn refused_for_bad_lines(bad: &[BadLine], any_good: bool) -> ManagementError {
    let advice = if any_good { " Fix them, or set skipBad to import the other lines." } else { " No line can be imported." };
    let count = if bad.len() == 1 { "1 bad line".to_string() } else { format!("{} bad lines", bad.len()) };
    ManagementError::invalid_parameter(format!("Nothing was imported: {count}: {}.{advice}", summarize(bad, BAD_LINES_IN_MESSAGE)))
        .with_field("badLines", bad_lines_json(bad))
}

/// `POST /keygate/v1/keys/import`.
pub(super) async fn import_keys(State(state): State<AppState>, auth: Authenticated, body: Bytes) -> Result<Response> {
    let outcome = import(&state, &auth, &body).await;
    respond(&auth, outcome)
}

async fn import(state: &AppState, auth: &Authenticated, body: &[u8]) -> Result<Value> {
    // Who may never create keys (members, disabled users) is refused before the body is read.
    auth.caller.may_create_key(true)?;
    let request = parse_request(body)?;
    let policy = import_region(state, auth, request.region.as_deref())?;
    let region = policy.id.as_str().to_string();
    let workspace_id = request.workspace_id.as_deref().filter(|text| !text.is_empty());
    let workspace = resolve_workspace_in(state, auth, &region, workspace_id).await?;
    let is_member = caller_is_member(state, auth, &workspace.workspace_id).await?;
    auth.caller.may_create_key(is_member)?;
    if request.keys.is_empty() {
        return Err(ManagementError::invalid_parameter("keys is empty: there is nothing to import."));
    }
    if request.keys.len() > MAX_KEYS_PER_IMPORT {
        return Err(ManagementError::invalid_parameter(format!(
            "At most {MAX_KEYS_PER_IMPORT} keys per import, got {}; split the file.",
            request.keys.len()
        )));
    }
    let skip_bad = request.skip_bad;
    let (mut good, mut bad) = check_entries(request.keys);
    let digests: Vec<_> = good.iter().map(|line| line.entry.digest).collect();
    let stored = state.store().existing_key_digests(&digests).await?;
    refuse_stored(&mut good, &mut bad, |_, line| stored.contains(&line.entry.digest));
    let audit = AuditContext { region: region.clone(), ..auth.audit() };
    let quota = QuotaRule { limit: policy.key_limit, scope: policy.limit_scope };
    let master_key = &state.shared.master_key;
    // Repeated only when keys were stored by someone else between the check and the write.
    let records = loop {
        if good.is_empty() || (!bad.is_empty() && !skip_bad) {
            return Err(refused_for_bad_lines(&bad, !good.is_empty()));
        }
        let new_keys: Vec<NewApiKey> = good
            .iter()
            .map(|line| NewApiKey {
                region: region.clone(),
                workspace_id: workspace.workspace_id.clone(),
                creator_user_id: auth.caller.user_id(),
                created_by: auth.caller.display_name().to_string(),
                description: line.entry.description.as_str().to_string(),
                format: KeyFormat::Legacy,
                digest: line.entry.digest,
                masked_key: line.entry.masked.clone(),
                auth: KeyAuth::All,
                legacy_ciphertext: Some(master_key.encrypt_legacy_key(expose(&line.plaintext))),
            })
            .collect();
        match state.store().import_api_keys(&audit, new_keys, quota).await {
            Ok(records) => break records,
            Err(StoreError::KeysExist { positions }) => {
                let positions: std::collections::HashSet<usize> = positions.into_iter().collect();
                refuse_stored(&mut good, &mut bad, |position, _| positions.contains(&position));
            }
            Err(error @ StoreError::ImportQuotaExceeded { .. }) => {
                let refused = ManagementError::from(error);
                return Err(if bad.is_empty() { refused } else { refused.with_field("badLines", bad_lines_json(&bad)) });
            }
            Err(other) => return Err(other.into()),
        }
    };
    let keys: Vec<Value> = good
        .iter()
        .zip(&records)
        .map(|(line, record)| json!({"line": line.line, "apiKeyId": record.api_key_id, "maskedKey": record.masked_key}))
        .collect();
    Ok(json!({
        "region": region,
        "workspaceId": workspace.workspace_id,
        "importedCount": records.len(),
        "skippedCount": bad.len(),
        "keys": keys,
        "badLines": bad_lines_json(&bad),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let refusal = refused_for_bad_lines(&bad, true);
        assert_eq!(refusal.code, "InvalidParameter");
        assert_eq!(
            refusal.message,
            "Nothing was imported: 3 bad lines: line 5: not a key keygate can import (sk- and 8-200 characters A-Z, a-z, 0-9, '-' or '_'); line 7: sk-0123****cdef repeats line 3; line 9: the description has 201 characters; at most 200. Fix them, or set skipBad to import the other lines."
        );
        assert_eq!(refusal.fields.as_ref().expect("fields")["badLines"][1], json!({"line": 7, "reason": "sk-0123****cdef repeats line 3"}));
        let text = format!("{} {}", refusal.message, Value::Object(*refusal.fields.clone().expect("fields")));
        assert!(!text.contains(key) && !text.contains(malformed), "{text}");
    }

    #[test]
    fn a_long_list_is_cut_in_the_message_but_whole_in_bad_lines() {
        let entries: Vec<ImportEntry> = (1..=25).map(|line| entry(Some(line), "nope", "")).collect();
        let (good, bad) = check_entries(entries);
        assert!(good.is_empty());
        let refusal = refused_for_bad_lines(&bad, false);
        assert!(refusal.message.ends_with("line 20: not an sk- key; and 5 more. No line can be imported."), "{}", refusal.message);
        assert_eq!(refusal.fields.as_ref().expect("fields")["badLines"].as_array().unwrap().len(), 25);
    }

    #[test]
    fn a_body_that_does_not_parse_is_refused_without_quoting_it() {
        let body = br#"{"keys": [{"line": "sk-0123456789abcdef0123456789abcdef", "key": "x"}]}"#;
        let refusal = parse_request(body).err().expect("refused");
        assert!(!refusal.message.contains("sk-0123"), "{}", refusal.message);
        assert!(refusal.message.contains("(line 1, column"), "{}", refusal.message);
    }
}
