//! keygate's own operations on API keys beside the Model Studio API's: ending the grace
//! period of a reset key's old secret (docs/CONTRACT.md#expiry-and-grace-periods).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /keygate/v1/keys/{apiKeyId}/end-grace`: the key whose old secret stopped working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndGraceResponse {
    pub api_key_id: i64,
    /// The key's current secret, masked.
    pub masked_key: String,
}

/// A key's own limits (docs/CONTRACT.md#per-key-limits), as `keygateLimits` is sent to
/// CreateApiKey and UpdateApiKey (a JSON object in the query) and answered by CreateApiKey,
/// GetApiKey and ListApiKeys. A field that is absent limits nothing; `{}` sent to
/// UpdateApiKey removes every limit. Unknown fields are refused, so that a misspelt limit
/// is not silently no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyLimits {
    /// Calls per minute (a fixed window on the minute), 1 to 10^12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<i64>,
    /// Input plus output tokens per minute, as providers report them, 1 to 10^12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<i64>,
    /// Calls running at once, 1 to 10^6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<KeyBudget>,
}

/// What a key may spend per UTC day or calendar month: tokens, cost, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyBudget {
    /// `day` or `month`.
    #[serde(default)]
    pub period: Option<String>,
    /// Input plus output tokens, 1 to 10^12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<i64>,
    /// A decimal text above 0 with at most 6 decimals (`"12.50"`), in the currency of the
    /// price table (`[[prices]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
}

/// Where a key's budget stands in its current period (GetApiKey and ListApiKeys'
/// `keygateBudget`), from the usage the nodes have flushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyBudgetStanding {
    /// `day` or `month`.
    pub period: String,
    /// The current period's first millisecond and the next period's, since the epoch.
    pub period_start: i64,
    pub period_end: i64,
    pub used_tokens: i64,
    /// A decimal text, like the usage figures' `cost`.
    pub used_cost: String,
    pub currency: String,
    /// What is left of the token budget; `null` without one.
    pub remaining_tokens: Option<i64>,
    /// What is left of the cost budget; `null` without one.
    pub remaining_cost: Option<String>,
    /// At least 80% of either part is used (the console's banner, `keygate keys list`'s
    /// warning line).
    pub nearly_used: bool,
    /// A part is used up: calls are refused until the period ends.
    pub used_up: bool,
}
