//! What a deployment offers: its model catalog (`GET /keygate/v1/models`) and its regions
//! (`GET /keygate/v1/regions`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A model of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Model {
    /// The name calls use, e.g. `qwen-plus`.
    pub model: String,
    /// The name shown to people.
    pub name: String,
    /// Answered by the built-in demo upstream.
    pub demo: bool,
}

/// `GET /keygate/v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListModelsResponse {
    pub models: Vec<Model>,
}

/// A region and its policy (docs/CONTRACT.md#regions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    /// e.g. `ap-southeast-1`.
    pub region_id: String,
    /// e.g. `Singapore`.
    pub name: String,
    /// API keys that are not deleted, per `limitScope`.
    pub key_limit: u32,
    /// `account` or `creator`: whether the limit counts all keys of the account or each
    /// owner's separately.
    pub limit_scope: String,
    pub custom_permissions: bool,
    pub disable_and_reset: bool,
    /// `secure` or `classic`.
    pub new_key_format: String,
    pub workspace_limit: u32,
    /// A listener of this deployment serves the region.
    pub served: bool,
}

/// `GET /keygate/v1/regions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListRegionsResponse {
    pub regions: Vec<Region>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn models_and_regions_have_exactly_their_fields() {
        let models = ListModelsResponse { models: vec![Model { model: "demo-echo".into(), name: "Echo".into(), demo: true }] };
        assert_eq!(serde_json::to_value(models).unwrap(), json!({"models": [{"model": "demo-echo", "name": "Echo", "demo": true}]}));
        let region = Region {
            region_id: "ap-southeast-1".into(),
            name: "Singapore".into(),
            key_limit: 20,
            limit_scope: "account".into(),
            custom_permissions: true,
            disable_and_reset: true,
            new_key_format: "secure".into(),
            workspace_limit: 10,
            served: true,
        };
        assert_eq!(
            serde_json::to_value(ListRegionsResponse { regions: vec![region] }).unwrap(),
            json!({"regions": [{"regionId": "ap-southeast-1", "name": "Singapore", "keyLimit": 20, "limitScope": "account", "customPermissions": true, "disableAndReset": true, "newKeyFormat": "secure", "workspaceLimit": 10, "served": true}]})
        );
    }
}
