//! `POST /keygate/v1/leaks`: the caller reports API keys it found exposed (by
//! `keygate scan --revoke`, or by hand) and keygate disables at once those that belong to
//! the caller's account. Only the account and admin RAM users may call it (see
//! docs/DECISIONS.md, "Leak reports and key hygiene"): the plaintext proves possession,
//! so the rule that a RAM user sees only its own keys does not apply, but disabling a
//! colleague's key is an administrator's act.
//!
//! The answer says per key what happened, with the masked key only: a reported plaintext
//! is never echoed, and a key of another account is `not_found` exactly like one that does
//! not exist, so the endpoint tells nobody whether a key lives elsewhere.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use keygate_core::access::KeyVisibility;
use keygate_core::keys::{mask_key, parse_permanent_key, KeyDigest};
use keygate_core::verification::{CompiledKey, KeyStanding};
use keygate_store::{AuditContext, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, respond, Administrator, Result};
use crate::management::authentication::Authenticated;
use crate::management::errors::ManagementError;
use crate::state::AppState;

/// Most keys in one report (a scan with more sends several).
pub const MAX_KEYS_PER_REPORT: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeakReport {
    keys: Vec<String>,
}

/// What happened to one reported key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeakOutcome {
    /// It was live and is disabled now.
    Disabled,
    /// It was disabled already; nothing changed.
    AlreadyDisabled,
    /// No key of the caller's account has this secret (unknown, deleted, reset, or another
    /// account's).
    NotFound,
    /// Not a permanent key: bad shape or checksum.
    Malformed,
    /// The key's region cannot disable keys (US (Virginia)): delete or replace it instead.
    UnsupportedInRegion,
}

impl LeakOutcome {
    fn as_str(self) -> &'static str {
        match self {
            LeakOutcome::Disabled => "disabled",
            LeakOutcome::AlreadyDisabled => "already_disabled",
            LeakOutcome::NotFound => "not_found",
            LeakOutcome::Malformed => "malformed",
            LeakOutcome::UnsupportedInRegion => "unsupported_in_region",
        }
    }
}

/// The answer for one key: its masked form, what happened, and for a key of the caller's
/// account its id and region.
fn result_json(masked_key: &str, outcome: LeakOutcome, key: Option<&CompiledKey>) -> Value {
    let mut result = json!({"maskedKey": masked_key, "status": outcome.as_str()});
    if let Some(key) = key {
        result["apiKeyId"] = json!(key.key_id);
        result["region"] = json!(key.region);
    }
    result
}

/// The audit context of a change to `key`: the caller, in the key's own region (a leaked
/// key is disabled wherever it lives, whichever listener received the report).
fn audit_in_region_of(auth: &Authenticated, key: &CompiledKey) -> AuditContext {
    AuditContext { region: key.region.clone(), ..auth.audit() }
}

/// Disables one live key of the caller's account.
async fn disable_reported_key(state: &AppState, auth: &Authenticated, key: &CompiledKey) -> Result<LeakOutcome> {
    if key.standing == KeyStanding::Disabled {
        return Ok(LeakOutcome::AlreadyDisabled);
    }
    let supports_disable = state.region_policy(&key.region).is_some_and(|policy| policy.disable_and_reset);
    if !supports_disable {
        return Ok(LeakOutcome::UnsupportedInRegion);
    }
    let audit = audit_in_region_of(auth, key);
    match state.store().set_api_key_disabled(&audit, key.key_id, KeyVisibility::WholeAccount, true).await {
        Ok(_) => Ok(LeakOutcome::Disabled),
        // Deleted between the lookup and now.
        Err(StoreError::NotFound(_)) => Ok(LeakOutcome::NotFound),
        Err(other) => Err(other.into()),
    }
}

/// Looks up one reported key and acts on it.
async fn handle_reported_key(
    state: &AppState,
    auth: &Authenticated,
    digest: &KeyDigest,
) -> Result<(LeakOutcome, Option<std::sync::Arc<CompiledKey>>)> {
    let Some(key) = state.store().registry().lookup(digest).filter(|key| key.account_id == auth.caller.account_id) else {
        return Ok((LeakOutcome::NotFound, None));
    };
    let outcome = disable_reported_key(state, auth, &key).await?;
    if matches!(outcome, LeakOutcome::Disabled | LeakOutcome::AlreadyDisabled | LeakOutcome::UnsupportedInRegion) {
        let audit = audit_in_region_of(auth, &key);
        state
            .store()
            .record_audit(&audit, "ApiKey.LeakReport", &format!("apiKey:{}", key.key_id), &format!("status={}", outcome.as_str()))
            .await?;
    }
    Ok((outcome, Some(key)))
}

/// `POST /keygate/v1/leaks {"keys": [...]}`.
pub(super) async fn report_leaks(State(state): State<AppState>, Administrator(auth): Administrator, body: Bytes) -> Result<Response> {
    let outcome = async {
        let report: LeakReport = json_body(&body, r#"{"keys": ["sk-ws-..."]}"#)?;
        if report.keys.len() > MAX_KEYS_PER_REPORT {
            return Err(ManagementError::invalid_parameter(format!(
                "At most {MAX_KEYS_PER_REPORT} keys per report; send the rest in another."
            )));
        }
        // A key reported twice is acted on once and answered the same both times.
        let mut seen: HashMap<KeyDigest, (LeakOutcome, Option<std::sync::Arc<CompiledKey>>)> = HashMap::new();
        let mut results = Vec::with_capacity(report.keys.len());
        let mut disabled = 0;
        for presented in &report.keys {
            let presented = presented.trim();
            let masked = mask_key(presented);
            let Ok(parsed) = parse_permanent_key(presented) else {
                results.push(result_json(&masked, LeakOutcome::Malformed, None));
                continue;
            };
            let (outcome, key) = match seen.get(&parsed.digest) {
                Some(known) => known.clone(),
                None => {
                    let handled = handle_reported_key(&state, &auth, &parsed.digest).await?;
                    if handled.0 == LeakOutcome::Disabled {
                        disabled += 1;
                    }
                    seen.insert(parsed.digest, handled.clone());
                    handled
                }
            };
            results.push(result_json(&masked, outcome, key.as_deref()));
        }
        Ok(json!({"results": results, "disabledCount": disabled}))
    }
    .await;
    respond(&auth, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_their_documented_names() {
        let names = [
            LeakOutcome::Disabled,
            LeakOutcome::AlreadyDisabled,
            LeakOutcome::NotFound,
            LeakOutcome::Malformed,
            LeakOutcome::UnsupportedInRegion,
        ]
        .map(LeakOutcome::as_str);
        assert_eq!(names, ["disabled", "already_disabled", "not_found", "malformed", "unsupported_in_region"]);
    }

    #[test]
    fn a_result_carries_the_masked_key_and_never_more_of_it() {
        let result = result_json("sk-ws-Ab3x****9xYz", LeakOutcome::NotFound, None);
        assert_eq!(result, json!({"maskedKey": "sk-ws-Ab3x****9xYz", "status": "not_found"}));
    }
}
