//! Conversions between domain values and their column forms (JSON arrays for lists).

use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::permissions::{AppScope, CustomPermissions, KeyAuth, ModelScope};

use crate::database::Row;
use crate::StoreError;

pub(crate) fn list_to_json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

pub(crate) fn json_to_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("list column: {error}")))
}

/// The auth columns of an `api_keys` row, in bind order.
pub(crate) struct AuthColumns {
    pub auth_type: &'static str,
    pub access_ips: String,
    pub allow_all_models: bool,
    pub accessible_models: String,
    pub allow_all_apps: bool,
    pub accessible_apps: String,
}

pub(crate) fn auth_columns(auth: &KeyAuth) -> AuthColumns {
    match auth {
        KeyAuth::All => AuthColumns {
            auth_type: "All",
            access_ips: "[]".into(),
            allow_all_models: true,
            accessible_models: "[]".into(),
            allow_all_apps: true,
            accessible_apps: "[]".into(),
        },
        KeyAuth::Custom(custom) => AuthColumns {
            auth_type: "Custom",
            access_ips: list_to_json(&custom.access_ips.canonical_entries()),
            allow_all_models: custom.model_scope.allow_all_models,
            accessible_models: list_to_json(&custom.model_scope.accessible_models),
            allow_all_apps: custom.app_scope.allow_all_apps,
            accessible_apps: list_to_json(&custom.app_scope.accessible_apps),
        },
    }
}

pub(crate) fn auth_from_row(row: &Row) -> Result<KeyAuth, StoreError> {
    if row.string("auth_type")? == "All" {
        return Ok(KeyAuth::All);
    }
    let ips = json_to_list(&row.string("access_ips")?)?;
    let access_ips = IpAllowlist::parse(&ips).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    Ok(KeyAuth::Custom(CustomPermissions {
        access_ips,
        model_scope: ModelScope {
            allow_all_models: row.boolean("allow_all_models")?,
            accessible_models: json_to_list(&row.string("accessible_models")?)?,
        },
        app_scope: AppScope {
            allow_all_apps: row.boolean("allow_all_apps")?,
            accessible_apps: json_to_list(&row.string("accessible_apps")?)?,
        },
    }))
}
