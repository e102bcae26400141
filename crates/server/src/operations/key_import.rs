//! Existing `sk-` keys from another deployment brought into one workspace, as legacy keys
//! created by the caller (keygate's API `POST /keygate/v1/keys/import`, which
//! `keygate keys import` calls).
//!
//! The same caller rule as CreateApiKey applies (the account, or an admin or key-manager
//! who is a member of the workspace). Every line is checked first (shape, description,
//! repeats, keys already in keygate), and a bad line makes the whole import refused, naming
//! every bad line; with `skip_bad` the good lines are imported and the bad ones reported.
//! The region's limit is checked for the whole batch: an import that would pass it imports
//! nothing. The store writes all keys, an `ApiKey.Import` audit row each, and one
//! change-feed entry in one transaction.
//!
//! A plaintext is encrypted with the master key into the key's row (so that its owner may
//! view it again) and never written anywhere else: refusals name a key by its masked form
//! at most.

use keygate_core::key_import::{check_entry, summarize, BadLine, CheckedEntry, LineProblem, SeenKeys, MAX_KEYS_PER_IMPORT};
use keygate_core::keys::{expose, KeyFormat};
use keygate_core::permissions::KeyAuth;
use keygate_core::region::RegionPolicy;
use keygate_store::{ApiKeyRecord, AuditContext, NewApiKey, QuotaRule, StoreError};
use secrecy::SecretString;
use serde::Deserialize;

use super::workspaces::{caller_is_member, resolve_workspace_in};
use super::{shown, Actor, OperationError, Operations};

type Result<T> = std::result::Result<T, OperationError>;

/// Bad lines named in an error message; `badLines` has them all.
const BAD_LINES_IN_MESSAGE: usize = 20;

/// What an import asks for.
#[derive(Debug)]
pub struct ImportRequest {
    /// Default: the actor's region.
    pub region: Option<String>,
    /// Default: the account's default workspace in the region.
    pub workspace_id: Option<String>,
    pub keys: Vec<ImportEntry>,
    /// Import the good lines and report the bad ones, instead of refusing them all.
    pub skip_bad: bool,
}

/// One key to import, as the caller sent it (keygate's API reads it from JSON as is).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportEntry {
    /// The line of the caller's file (default: the position in `keys`, from 1).
    pub line: Option<u64>,
    pub key: String,
    #[serde(default)]
    pub description: String,
}

impl std::fmt::Debug for ImportEntry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ImportEntry").field("line", &self.line).finish_non_exhaustive()
    }
}

/// A line that passed every check: what the store needs, and the plaintext to encrypt.
pub struct GoodLine {
    pub line: u64,
    entry: CheckedEntry,
    plaintext: SecretString,
}

/// The import's region: the request's unless the body names another this server serves.
fn import_region<'a>(operations: &Operations<'a>, actor: &Actor, requested: Option<&str>) -> Result<&'a RegionPolicy> {
    let region = requested.filter(|text| !text.is_empty()).unwrap_or(&actor.region);
    let served_regions = operations.served_regions();
    if !served_regions.iter().any(|served| served == region) {
        return Err(OperationError::invalid_parameter(format!(
            "region '{}' is not served here; this server serves {}.",
            shown(region),
            served_regions.join(", ")
        )));
    }
    operations.region_policy(region).ok_or_else(|| OperationError::internal(format!("region {region} has no policy")))
}

/// Checks every entry: shape, description, repeats within the import.
pub fn check_entries(entries: Vec<ImportEntry>) -> (Vec<GoodLine>, Vec<BadLine>) {
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

/// The refusal of an import with bad lines: nothing was imported.
pub fn refused_for_bad_lines(bad: &[BadLine], any_good: bool) -> OperationError {
    let advice = if any_good { " Fix them, or set skipBad to import the other lines." } else { " No line can be imported." };
    let count = if bad.len() == 1 { "1 bad line".to_string() } else { format!("{} bad lines", bad.len()) };
    OperationError::invalid_parameter(format!("Nothing was imported: {count}: {}.{advice}", summarize(bad, BAD_LINES_IN_MESSAGE)))
        .with_bad_lines(bad.to_vec())
}

/// A key imported, and the line it came from.
#[derive(Debug)]
pub struct ImportedKey {
    pub line: u64,
    pub record: ApiKeyRecord,
}

/// What an import did: where, the keys imported, and the bad lines skipped.
#[derive(Debug)]
pub struct ImportOutcome {
    pub region: String,
    pub workspace_id: String,
    pub imported: Vec<ImportedKey>,
    pub skipped: Vec<BadLine>,
}

/// Imports the keys of `request` as the actor's, all or nothing (with `skip_bad`: every
/// good line).
pub async fn import_keys(operations: Operations<'_>, actor: &Actor, request: ImportRequest) -> Result<ImportOutcome> {
    // Who may never create keys (members, disabled users): refused before anything else.
    actor.caller.may_create_key(true)?;
    let policy = import_region(&operations, actor, request.region.as_deref())?;
    let region = policy.id.as_str().to_string();
    let workspace_id = request.workspace_id.as_deref().filter(|text| !text.is_empty());
    let workspace = resolve_workspace_in(operations, actor, &region, workspace_id).await?;
    let is_member = caller_is_member(operations, actor, &workspace.workspace_id).await?;
    actor.caller.may_create_key(is_member)?;
    if request.keys.is_empty() {
        return Err(OperationError::invalid_parameter("keys is empty: there is nothing to import."));
    }
    if request.keys.len() > MAX_KEYS_PER_IMPORT {
        return Err(OperationError::invalid_parameter(format!(
            "At most {MAX_KEYS_PER_IMPORT} keys per import, got {}; split the file.",
            request.keys.len()
        )));
    }
    let skip_bad = request.skip_bad;
    let (mut good, mut bad) = check_entries(request.keys);
    let digests: Vec<_> = good.iter().map(|line| line.entry.digest).collect();
    let stored = operations.store.existing_key_digests(&digests).await?;
    refuse_stored(&mut good, &mut bad, |_, line| stored.contains(&line.entry.digest));
    let audit = AuditContext { region: region.clone(), ..actor.audit.clone() };
    let quota = QuotaRule { limit: policy.key_limit, scope: policy.limit_scope };
    let master_key = operations.master_key;
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
                creator_user_id: actor.caller.user_id(),
                created_by: actor.caller.display_name().to_string(),
                description: line.entry.description.as_str().to_string(),
                format: KeyFormat::Legacy,
                digest: line.entry.digest,
                masked_key: line.entry.masked.clone(),
                auth: KeyAuth::All,
                legacy_ciphertext: Some(master_key.encrypt_legacy_key(expose(&line.plaintext))),
                expires_at: None,
                limits: None,
            })
            .collect();
        match operations.store.import_api_keys(&audit, new_keys, quota).await {
            Ok(records) => break records,
            Err(StoreError::KeysExist { positions }) => {
                let positions: std::collections::HashSet<usize> = positions.into_iter().collect();
                refuse_stored(&mut good, &mut bad, |position, _| positions.contains(&position));
            }
            Err(error @ StoreError::ImportQuotaExceeded { .. }) => return Err(OperationError::from(error).with_bad_lines(bad)),
            Err(other) => return Err(other.into()),
        }
    };
    let imported = good.iter().zip(records).map(|(line, record)| ImportedKey { line: line.line, record }).collect();
    Ok(ImportOutcome { region, workspace_id: workspace.workspace_id, imported, skipped: bad })
}
