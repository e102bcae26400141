//! A key's permission mode: `All`, or `Custom` with an IP whitelist, a model scope and an
//! application scope. Parsed and checked here; the wire forms live in the HTTP layer.

use crate::ip_allowlist::IpAllowlist;

/// Which models a `Custom` key may call (`modelAccessScope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelScope {
    pub allow_all_models: bool,
    /// Sorted, without duplicates; ignored when `allow_all_models`.
    pub accessible_models: Vec<String>,
}

/// Which applications a `Custom` key may call (`appAccessScope`, a keygate extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppScope {
    pub allow_all_apps: bool,
    /// Sorted, without duplicates; ignored when `allow_all_apps`.
    pub accessible_apps: Vec<String>,
}

impl ModelScope {
    pub fn everything() -> ModelScope {
        ModelScope { allow_all_models: true, accessible_models: Vec::new() }
    }

    pub fn allows(&self, model: &str) -> bool {
        self.allow_all_models || self.accessible_models.binary_search_by(|name| name.as_str().cmp(model)).is_ok()
    }
}

impl AppScope {
    pub fn everything() -> AppScope {
        AppScope { allow_all_apps: true, accessible_apps: Vec::new() }
    }

    pub fn allows(&self, app_id: &str) -> bool {
        self.allow_all_apps || self.accessible_apps.binary_search_by(|id| id.as_str().cmp(app_id)).is_ok()
    }
}

/// The restrictions of a `Custom` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPermissions {
    /// Empty means any address.
    pub access_ips: IpAllowlist,
    pub model_scope: ModelScope,
    pub app_scope: AppScope,
}

/// A key's permission mode. `Custom`'s restrictions are out of line: most keys are `All`,
/// and the registry holds every key of a deployment in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAuth {
    All,
    Custom(Box<CustomPermissions>),
}

impl KeyAuth {
    pub fn type_name(&self) -> &'static str {
        match self {
            KeyAuth::All => "All",
            KeyAuth::Custom(_) => "Custom",
        }
    }

    pub fn is_custom(&self) -> bool {
        matches!(self, KeyAuth::Custom(_))
    }
}

/// Sorts and deduplicates a scope list.
pub fn normalise_list(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names
}
