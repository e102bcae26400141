//! `POST /keygate/v1/leaks`: the caller reports API keys it found exposed and keygate
//! disables at once those that belong to the caller's account
//! ([`crate::operations::leaks`] has the rules). The answer says per key what happened,
//! with the masked key only.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use keygate_core::verification::CompiledKey;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, respond, Administrator, Result};
use crate::operations::leaks::{report_leaks as act_on_report, LeakOutcome};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeakReport {
    keys: Vec<String>,
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

/// `POST /keygate/v1/leaks {"keys": [...]}`.
pub(super) async fn report_leaks(State(state): State<AppState>, Administrator(auth): Administrator, body: Bytes) -> Result<Response> {
    let outcome = async {
        let report: LeakReport = json_body(&body, r#"{"keys": ["sk-ws-..."]}"#)?;
        let operations = state.operations();
        let (results, disabled) = act_on_report(operations, &auth.actor(&operations), &report.keys).await?;
        let results: Vec<Value> =
            results.iter().map(|result| result_json(&result.masked_key, result.outcome, result.key.as_deref())).collect();
        Ok(json!({"results": results, "disabledCount": disabled}))
    }
    .await;
    respond(&auth, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_carries_the_masked_key_and_never_more_of_it() {
        let result = result_json("sk-ws-Ab3x****9xYz", LeakOutcome::NotFound, None);
        assert_eq!(result, json!({"maskedKey": "sk-ws-Ab3x****9xYz", "status": "not_found"}));
    }
}
