//! The requests and answers of the Token Plan operations (`/tokenplan/...`,
//! docs/CONTRACT.md#token-plan): PascalCase names, the answers under `Data` in the
//! PascalCase [`crate::envelope::PlanSuccess`]. Requests arrive as query strings; each
//! request type holds an operation's parameters once the server has read and checked them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CreateTokenPlanKey (`POST /tokenplan/api-keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CreateTokenPlanKeyRequest {
    /// The account or RAM user that will hold the plan key.
    pub account_id: String,
    #[serde(default)]
    pub description: String,
}

/// A plan key as it was just issued or rotated: the first fields of both answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct IssuedPlanKey {
    /// The key's id, as a string.
    pub api_key_id: String,
    /// The one place a plan key's new plaintext leaves the server.
    pub plain_api_key: String,
    pub masked_api_key: String,
}

/// CreateTokenPlanKey's `Data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CreatedTokenPlanKey {
    #[serde(flatten)]
    pub key: IssuedPlanKey,
    pub description: String,
    /// The workspace that holds the key (the region's default).
    pub source_id: String,
    /// `2026-01-31T12:00:00Z`.
    pub created_at: String,
    /// The account or RAM user that holds the key.
    pub holder: String,
    pub region: String,
}

/// RotateTokenPlanKey (`POST /tokenplan/api-key-rotations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RotateTokenPlanKeyRequest {
    pub api_key_id: i64,
}

/// RotateTokenPlanKey's `Data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RotatedTokenPlanKey {
    #[serde(flatten)]
    pub key: IssuedPlanKey,
    /// When the old secret stopped working: `2026-01-31T12:00:00Z`.
    pub reset_at: String,
    pub source_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::PlanSuccess;
    use serde_json::json;

    #[test]
    fn captured_answers_round_trip() {
        let created = json!({"RequestId": "R-1", "Code": "Success", "Message": "", "HttpStatusCode": 200, "Success": true, "Data": {
            "ApiKeyId": "41", "PlainApiKey": "sk-sp-plaintext", "MaskedApiKey": "sk-sp-****abcd", "Description": "", "SourceId": "llm-default",
            "CreatedAt": "2026-01-31T12:00:00Z", "Holder": "root", "Region": "ap-southeast-1"}});
        let typed: PlanSuccess<CreatedTokenPlanKey> = serde_json::from_value(created.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), created);
        let rotated = json!({"RequestId": "R-2", "Code": "Success", "Message": "", "HttpStatusCode": 200, "Success": true, "Data": {
            "ApiKeyId": "41", "PlainApiKey": "sk-sp-new", "MaskedApiKey": "sk-sp-****wxyz", "ResetAt": "2026-01-31T12:00:00Z",
            "SourceId": "llm-default"}});
        let typed: PlanSuccess<RotatedTokenPlanKey> = serde_json::from_value(rotated.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), rotated);
    }

    #[test]
    fn requests_use_the_wire_names() {
        let request: CreateTokenPlanKeyRequest = serde_json::from_value(json!({"AccountId": "alice"})).unwrap();
        assert_eq!(request, CreateTokenPlanKeyRequest { account_id: "alice".into(), description: String::new() });
        assert_eq!(serde_json::to_value(RotateTokenPlanKeyRequest { api_key_id: 4 }).unwrap(), json!({"ApiKeyId": 4}));
        assert!(serde_json::to_string(&schemars::schema_for!(PlanSuccess<CreatedTokenPlanKey>)).unwrap().contains("PlainApiKey"));
    }
}
