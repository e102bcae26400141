//! The Model Studio wire form of an API key's permissions: the `auth.*` fields of
//! CreateApiKey and UpdateApiKey (`auth.type`, `auth.accessIps.N`, ...) read into a
//! [`KeyAuth`] through the rules of [`crate::operations::keys`], in their order (the
//! [`KeyAuthInput`] of [`FormFields`]).

use keygate_core::catalog::ModelCatalog;
use keygate_core::permissions::KeyAuth;
use keygate_core::region::RegionPolicy;

use super::errors::ManagementError;
use super::form::{shown, FormFields};
use crate::operations::keys::{
    check_scope_apps, check_scope_models, custom_permissions, parse_access_ips, require_custom_permissions, KeyAuthInput, KeyAuthOutcome,
    KeyOperationError,
};
use crate::operations::OperationError;

fn invalid(message: impl Into<String>) -> KeyOperationError {
    OperationError::invalid_parameter(message).into()
}

/// A malformed form field (always `InvalidParameter`), as a key operation's refusal.
fn from_wire(error: ManagementError) -> KeyOperationError {
    invalid(error.message)
}

const AUTH_FIXED_FIELDS: [&str; 3] = ["auth.type", "auth.modelAccessScope.allowAllModels", "auth.appAccessScope.allowAllApps"];
const AUTH_LIST_FIELDS: [&str; 3] = ["auth.accessIps", "auth.modelAccessScope.accessibleModels", "auth.appAccessScope.accessibleApps"];

fn is_known_auth_field(name: &str) -> bool {
    AUTH_FIXED_FIELDS.contains(&name)
        || AUTH_LIST_FIELDS.iter().any(|prefix| name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')))
}

/// The Model Studio wire form: the `auth.*` fields, `None` when there are none.
/// `workspace_apps` are the application ids of the key's workspace (an app scope may name
/// only those).
impl KeyAuthInput for FormFields {
    fn key_auth(&self, region: &RegionPolicy, catalog: &ModelCatalog, workspace_apps: &[String]) -> KeyAuthOutcome {
        read_auth_fields(self, region, catalog, workspace_apps)
    }

    /// Only `auth.appAccessScope.accessibleApps.N` names applications.
    fn may_name_apps(&self) -> bool {
        self.keys().any(|name| name.starts_with("auth.appAccessScope.accessibleApps"))
    }
}

fn read_auth_fields(fields: &FormFields, region: &RegionPolicy, catalog: &ModelCatalog, workspace_apps: &[String]) -> KeyAuthOutcome {
    let auth_fields: Vec<&str> = fields.keys().filter(|name| *name == "auth" || name.starts_with("auth.")).collect();
    if auth_fields.is_empty() {
        return Ok(None);
    }
    if let Some(unknown) = auth_fields.iter().find(|name| !is_known_auth_field(name)) {
        return Err(invalid(format!("Unknown field '{}'.", shown(unknown))));
    }
    let type_text =
        fields.get_non_empty("auth.type").ok_or_else(|| invalid("auth.type is required (All or Custom) when any auth field is sent."))?;
    let is_custom = match type_text.to_ascii_lowercase().as_str() {
        "all" => false,
        "custom" => true,
        _ => return Err(invalid(format!("auth.type must be All or Custom, got '{}'.", shown(type_text)))),
    };
    if !is_custom {
        if auth_fields.len() > 1 {
            return Err(invalid("IP whitelists and access scopes need auth.type=Custom."));
        }
        return Ok(Some(KeyAuth::All));
    }
    require_custom_permissions(region)?;
    let ip_entries = fields.list("auth.accessIps").map_err(from_wire)?;
    let access_ips = parse_access_ips(&ip_entries)?;

    let models = fields.list("auth.modelAccessScope.accessibleModels").map_err(from_wire)?;
    let allow_all_models = fields.boolean("auth.modelAccessScope.allowAllModels").map_err(from_wire)?.unwrap_or(models.is_empty());
    check_scope_models(&models, catalog)?;

    let apps = fields.list("auth.appAccessScope.accessibleApps").map_err(from_wire)?;
    let allow_all_apps = fields.boolean("auth.appAccessScope.allowAllApps").map_err(from_wire)?.unwrap_or(apps.is_empty());
    check_scope_apps(&apps, workspace_apps)?;
    Ok(Some(custom_permissions(access_ips, allow_all_models, models, allow_all_apps, apps)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::region::RegionTable;

    /// `text` as the form body of a key in `region`, in a workspace without applications.
    fn read_in(region: &str, text: &str) -> KeyAuthOutcome {
        let table = RegionTable::model_studio_default();
        FormFields::parse(text, "form body").unwrap().key_auth(table.get(region).unwrap(), &ModelCatalog::built_in(true), &[])
    }

    #[test]
    fn parses_custom_auth_and_refuses_bad_parts() {
        let parse = |text: &str| read_in("ap-southeast-1", text);
        let auth = parse("auth.type=Custom&auth.accessIps.1=10.0.0.0%2F8&auth.modelAccessScope.allowAllModels=False&auth.modelAccessScope.accessibleModels.1=qwen-plus").unwrap().unwrap();
        let KeyAuth::Custom(custom) = auth else { panic!("custom expected") };
        assert_eq!(custom.access_ips.canonical_entries(), ["10.0.0.0/8"]);
        assert_eq!(custom.model_scope.accessible_models, ["qwen-plus"]);
        assert!(parse("auth.type=Sometimes").is_err());
        assert!(parse("auth.type=Custom&auth.modelAccessScope.accessibleModels.1=no-such-model").is_err());
        assert!(parse("auth.type=All&auth.accessIps.1=10.0.0.1").is_err());
        assert!(parse("auth.typo=All").is_err());
        assert!(read_in("us-east-1", "auth.type=Custom").is_err());
        assert_eq!(parse("description=x").unwrap(), None);
    }
}
