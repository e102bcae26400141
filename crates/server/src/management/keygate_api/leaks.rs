//! `POST /keygate/v1/leaks`: the caller reports API keys it found exposed and keygate
//! disables at once those that belong to the caller's account
//! ([`crate::operations::leaks`] has the rules). The answer says per key what happened,
//! with the masked key only.

use axum::body::Bytes;
use keygate_core::verification::CompiledKey;
use keygate_wire::keygate_api::{LeakReport, LeakReportResponse, LeakResult};

use super::json_body;
use crate::management::call::{Administrator, Answer};
use crate::operations::leaks::{report_leaks as act_on_report, LeakOutcome};

/// The answer for one key: its masked form, what happened, and for a key of the caller's
/// account its id and region.
fn leak_result(masked_key: &str, outcome: LeakOutcome, key: Option<&CompiledKey>) -> LeakResult {
    LeakResult {
        masked_key: masked_key.to_string(),
        status: outcome.as_str().to_string(),
        api_key_id: key.map(|key| key.key_id),
        region: key.map(|key| key.region.to_string()),
    }
}

/// `POST /keygate/v1/leaks {"keys": [...]}`.
pub(super) async fn report_leaks(Administrator(call): Administrator, body: Bytes) -> Answer<LeakReportResponse> {
    let report: LeakReport = json_body(&body, r#"{"keys": ["sk-ws-..."]}"#)?;
    let (results, disabled) = act_on_report(call.operations(), &call.actor(), &report.keys).await?;
    let results = results.iter().map(|result| leak_result(&result.masked_key, result.outcome, result.key.as_deref())).collect();
    call.answer(LeakReportResponse { results, disabled_count: disabled as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_carries_the_masked_key_and_never_more_of_it() {
        let result = leak_result("sk-ws-Ab3x****9xYz", LeakOutcome::NotFound, None);
        assert_eq!(serde_json::to_value(result).unwrap(), serde_json::json!({"maskedKey": "sk-ws-Ab3x****9xYz", "status": "not_found"}));
    }
}
