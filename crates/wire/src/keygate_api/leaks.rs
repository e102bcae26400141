//! Leak reports (`POST /keygate/v1/leaks`): keys found exposed, disabled at once when
//! they belong to the caller's account.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /keygate/v1/leaks`.
// No `Debug`: it holds plaintext keys.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakReport {
    /// The keys found, as found (at most 1000).
    pub keys: Vec<String>,
}

/// What happened to one reported key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakResult {
    /// The reported key, masked; the plaintext is never echoed.
    pub masked_key: String,
    /// `disabled`, `already_disabled`, `not_found`, `malformed` or `unsupported_in_region`.
    pub status: String,
    /// Only for a key of the caller's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<i64>,
    /// Only for a key of the caller's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The answer of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeakReportResponse {
    pub results: Vec<LeakResult>,
    /// Keys that were live and are disabled now.
    pub disabled_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_result_names_a_key_id_and_region_only_for_the_callers_keys() {
        let unknown = LeakResult { masked_key: "sk-ws-Ab3x****9xYz".into(), status: "not_found".into(), api_key_id: None, region: None };
        let own = LeakResult { api_key_id: Some(4), region: Some("ap-southeast-1".into()), status: "disabled".into(), ..unknown.clone() };
        assert_eq!(
            serde_json::to_value(LeakReportResponse { results: vec![unknown, own], disabled_count: 1 }).unwrap(),
            json!({"results": [
                {"maskedKey": "sk-ws-Ab3x****9xYz", "status": "not_found"},
                {"maskedKey": "sk-ws-Ab3x****9xYz", "status": "disabled", "apiKeyId": 4, "region": "ap-southeast-1"}
            ], "disabledCount": 1})
        );
    }
}
