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
