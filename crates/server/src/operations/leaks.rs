//! Leak reports (keygate's API `POST /keygate/v1/leaks`): the caller reports API keys it
//! found exposed (by `keygate scan --revoke`, or by hand) and keygate disables at once
//! those that belong to the caller's account. Only the account and admin RAM users may call it (see
//! docs/DECISIONS.md, "Leak reports and key hygiene"): the plaintext proves possession,
//! so the rule that a RAM user sees only its own keys does not apply, but disabling a
//! colleague's key is an administrator's act.
//!
//! The answer says per key what happened, with the masked key only: a reported plaintext
//! is never echoed, and a key of another account is `not_found` exactly like one that does
//! not exist, so the endpoint tells nobody whether a key lives elsewhere.

use std::collections::HashMap;

use std::sync::Arc;

use keygate_core::access::KeyVisibility;
use keygate_core::keys::{mask_key, parse_permanent_key, KeyDigest};
use keygate_core::verification::{CompiledKey, KeyStanding};
use keygate_store::{AuditContext, StoreError};

use super::{Actor, OperationError, Operations};

type Result<T> = std::result::Result<T, OperationError>;

/// Most keys in one report (a scan with more sends several).
pub const MAX_KEYS_PER_REPORT: usize = 1000;

/// What happened to one reported key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakOutcome {
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
    /// The status the answer names.
    pub fn as_str(self) -> &'static str {
        match self {
            LeakOutcome::Disabled => "disabled",
            LeakOutcome::AlreadyDisabled => "already_disabled",
            LeakOutcome::NotFound => "not_found",
            LeakOutcome::Malformed => "malformed",
            LeakOutcome::UnsupportedInRegion => "unsupported_in_region",
        }
    }
}

/// The audit context of a change to `key`: the caller, in the key's own region (a leaked
/// key is disabled wherever it lives, whichever listener received the report).
fn audit_in_region_of(actor: &Actor, key: &CompiledKey) -> AuditContext {
    AuditContext { region: key.region.to_string(), ..actor.audit.clone() }
}

/// Disables one live key of the caller's account.
async fn disable_reported_key(operations: Operations<'_>, actor: &Actor, key: &CompiledKey) -> Result<LeakOutcome> {
    if key.standing == KeyStanding::Disabled {
        return Ok(LeakOutcome::AlreadyDisabled);
    }
    let supports_disable = operations.region_policy(&key.region).is_some_and(|policy| policy.disable_and_reset);
    if !supports_disable {
        return Ok(LeakOutcome::UnsupportedInRegion);
    }
    let audit = audit_in_region_of(actor, key);
    match operations.store.set_api_key_disabled(&audit, key.key_id, KeyVisibility::WholeAccount, true).await {
        Ok(_) => Ok(LeakOutcome::Disabled),
        // Deleted between the lookup and now.
        Err(StoreError::NotFound(_)) => Ok(LeakOutcome::NotFound),
        Err(other) => Err(other.into()),
    }
}

/// Looks up one reported key and acts on it.
async fn handle_reported_key(
    operations: Operations<'_>,
    actor: &Actor,
    digest: &KeyDigest,
) -> Result<(LeakOutcome, Option<Arc<CompiledKey>>)> {
    let Some(key) = operations.store.registry().lookup(digest).filter(|key| key.account_id == actor.caller.account_id) else {
        return Ok((LeakOutcome::NotFound, None));
    };
    let outcome = disable_reported_key(operations, actor, &key).await?;
    if matches!(outcome, LeakOutcome::Disabled | LeakOutcome::AlreadyDisabled | LeakOutcome::UnsupportedInRegion) {
        let audit = audit_in_region_of(actor, &key);
        operations
            .store
            .record_audit(&audit, "ApiKey.LeakReport", &format!("apiKey:{}", key.key_id), &format!("status={}", outcome.as_str()))
            .await?;
    }
    Ok((outcome, Some(key)))
}

/// What happened to one reported key: its masked form, the outcome, and for a key of the
/// actor's account the key itself.
#[derive(Debug, Clone)]
pub struct LeakResult {
    pub masked_key: String,
    pub outcome: LeakOutcome,
    pub key: Option<Arc<CompiledKey>>,
}

/// Acts on every reported key (administrators only): each one of the actor's account that
/// is live is disabled, wherever it lives. A key reported twice is acted on once and
/// answered the same both times. Answers a result per reported key and how many were
/// disabled.
pub async fn report_leaks(operations: Operations<'_>, actor: &Actor, keys: &[String]) -> Result<(Vec<LeakResult>, usize)> {
    actor.caller.may_administer()?;
    if keys.len() > MAX_KEYS_PER_REPORT {
        return Err(OperationError::invalid_parameter(format!("At most {MAX_KEYS_PER_REPORT} keys per report; send the rest in another.")));
    }
    let mut seen: HashMap<KeyDigest, (LeakOutcome, Option<Arc<CompiledKey>>)> = HashMap::new();
    let mut results = Vec::with_capacity(keys.len());
    let mut disabled = 0;
    for presented in keys {
        let presented = presented.trim();
        let masked_key = mask_key(presented);
        let Ok(parsed) = parse_permanent_key(presented) else {
            results.push(LeakResult { masked_key, outcome: LeakOutcome::Malformed, key: None });
            continue;
        };
        let (outcome, key) = match seen.get(&parsed.digest) {
            Some(known) => known.clone(),
            None => {
                let handled = handle_reported_key(operations, actor, &parsed.digest).await?;
                if handled.0 == LeakOutcome::Disabled {
                    disabled += 1;
                }
                seen.insert(parsed.digest, handled.clone());
                handled
            }
        };
        results.push(LeakResult { masked_key, outcome, key });
    }
    Ok((results, disabled))
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
}
