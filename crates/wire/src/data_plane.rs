//! The data plane's answers the CLI reads, in their snake_case shapes: a minted temporary
//! `st-` key (`POST /api/v1/tokens`, docs/CONTRACT.md#temporary-keys) and a refusal (of
//! that call, or of `/auth/verify` for `keygate env doctor`).

use serde::{Deserialize, Serialize};

/// A minted temporary key. No `Debug`: it holds the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintedTemporaryKey {
    pub token: String,
    /// Unix time, seconds.
    pub expires_at: i64,
    #[serde(default)]
    pub request_id: String,
}

/// A data-plane refusal; every field has a default, so that whatever part of it arrived
/// is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataPlaneError {
    pub code: String,
    pub message: String,
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_key_and_a_refusal_read_from_their_snake_case_shapes() {
        let minted: MintedTemporaryKey = serde_json::from_str(r#"{"token": "st-x", "expires_at": 60, "request_id": "R"}"#).unwrap();
        assert_eq!((minted.token.as_str(), minted.expires_at), ("st-x", 60));
        let refusal: DataPlaneError = serde_json::from_str(r#"{"code": "InvalidApiKey", "message": "no"}"#).unwrap();
        assert_eq!((refusal.code.as_str(), refusal.request_id.as_str()), ("InvalidApiKey", ""));
    }
}
