//! The Create and Edit form of an API key: its values (kept when the form comes back with
//! an error), its errors (each next to the field that caused it), its choices
//! (workspaces, models, applications, whether the region offers Custom), and how its
//! values become permissions, through the same rules as the API
//! ([`crate::operations::keys`]).

use crate::operations::ApiKeyRecord;
use keygate_core::catalog::ModelCatalog;
use keygate_core::permissions::KeyAuth;
use keygate_core::region::RegionPolicy;
use maud::{html, Markup};

use super::layout::{described_by, field_error};
use crate::management::form::FormFields;
use crate::operations::keys::{
    check_scope_apps, check_scope_models, custom_permissions, parse_access_ips, require_custom_permissions, KeyAuthInput, KeyAuthOutcome,
    KeyField, KeyOperationError,
};

/// What the form holds, as the person entered it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFormValues {
    /// Create only: the workspace id chosen.
    pub workspace_id: String,
    pub description: String,
    pub custom: bool,
    /// The IP whitelist as typed: one entry per line (commas and spaces also separate).
    pub access_ips: String,
    pub all_models: bool,
    pub models: Vec<String>,
    pub all_apps: bool,
    pub apps: Vec<String>,
}

impl KeyFormValues {
    /// A blank Create form in `workspace_id`.
    pub fn blank(workspace_id: &str) -> KeyFormValues {
        KeyFormValues { workspace_id: workspace_id.to_string(), all_models: true, all_apps: true, ..KeyFormValues::default() }
    }

    /// The Edit form of an existing key.
    pub fn from_record(record: &ApiKeyRecord) -> KeyFormValues {
        let mut values = KeyFormValues {
            workspace_id: record.workspace_id.clone(),
            description: record.description.clone(),
            all_models: true,
            all_apps: true,
            ..KeyFormValues::default()
        };
        if let KeyAuth::Custom(custom) = &record.auth {
            values.custom = true;
            values.access_ips = custom.access_ips.canonical_entries().join("\n");
            values.all_models = custom.model_scope.allow_all_models;
            values.models = custom.model_scope.accessible_models.clone();
            values.all_apps = custom.app_scope.allow_all_apps;
            values.apps = custom.app_scope.accessible_apps.clone();
        }
        values
    }

    /// The values a submitted form carries.
    pub fn from_fields(fields: &FormFields) -> KeyFormValues {
        KeyFormValues {
            workspace_id: fields.get("workspace").unwrap_or("").trim().to_string(),
            description: fields.get("description").unwrap_or("").to_string(),
            custom: fields.get("permission") == Some("Custom"),
            access_ips: fields.get("access_ips").unwrap_or("").to_string(),
            all_models: fields.get("model_scope") != Some("selected"),
            models: fields.values("model").map(str::to_string).collect(),
            all_apps: fields.get("app_scope") != Some("selected"),
            apps: fields.values("app").map(str::to_string).collect(),
        }
    }

    /// The whitelist entries typed, split on line breaks, commas and spaces.
    pub fn ip_entries(&self) -> Vec<String> {
        self.access_ips
            .split(|character: char| character == ',' || character.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The same rules as the API's `auth.*` fields, applied to the form's values.
impl KeyAuthInput for KeyFormValues {
    fn key_auth(&self, region: &RegionPolicy, catalog: &ModelCatalog, workspace_apps: &[String]) -> KeyAuthOutcome {
        if !self.custom {
            return Ok(Some(KeyAuth::All));
        }
        require_custom_permissions(region)?;
        let access_ips = parse_access_ips(&self.ip_entries())?;
        let models = if self.all_models { Vec::new() } else { self.models.clone() };
        check_scope_models(&models, catalog)?;
        let apps = if self.all_apps { Vec::new() } else { self.apps.clone() };
        check_scope_apps(&apps, workspace_apps)?;
        Ok(Some(custom_permissions(access_ips, self.all_models, models, self.all_apps, apps)))
    }
}

/// Errors of a refused form: one next to its field, or one for the whole form (quota,
/// permission to create).
#[derive(Debug, Clone, Default)]
pub struct KeyFormErrors {
    field: Option<(KeyField, String)>,
    form: Option<String>,
}

impl KeyFormErrors {
    pub fn from_error(error: &KeyOperationError) -> KeyFormErrors {
        match error.field {
            Some(field) => KeyFormErrors { field: Some((field, error.plain_message().to_string())), form: None },
            None => KeyFormErrors { field: None, form: Some(error.plain_message().to_string()) },
        }
    }

    fn on(&self, wanted: KeyField) -> Option<&str> {
        self.field.as_ref().filter(|(field, _)| *field == wanted).map(|(_, message)| message.as_str())
    }
}

/// A workspace the caller may create keys in.
#[derive(Debug, Clone)]
pub struct WorkspaceChoice {
    pub workspace_id: String,
    pub name: String,
    pub is_default: bool,
}

/// An application that an app scope may name.
#[derive(Debug, Clone)]
pub struct AppChoice {
    pub app_id: String,
    pub name: String,
    pub workspace_name: String,
}

/// What the form offers in this region.
#[derive(Debug, Clone)]
pub struct KeyFormChoices {
    pub workspaces: Vec<WorkspaceChoice>,
    /// (model name, display name, is a demo model)
    pub models: Vec<(String, String, bool)>,
    pub apps: Vec<AppChoice>,
    pub custom_allowed: bool,
    pub region_name: String,
}

fn workspace_label(choice: &WorkspaceChoice) -> String {
    if choice.is_default {
        format!("{} (default) · {}", choice.name, choice.workspace_id)
    } else {
        format!("{} · {}", choice.name, choice.workspace_id)
    }
}

/// The fields of the form; element ids start with `prefix` so that several forms live on
/// one page. `with_workspace`: Create asks for the workspace, Edit shows it.
pub fn key_form_fields(
    prefix: &str,
    values: &KeyFormValues,
    errors: &KeyFormErrors,
    choices: &KeyFormChoices,
    with_workspace: bool,
) -> Markup {
    let id = |name: &str| format!("{prefix}-{name}");
    let workspace_error = errors.on(KeyField::Workspace);
    let permission_error = errors.on(KeyField::Permission);
    let ips_error = errors.on(KeyField::AccessIps);
    let models_error = errors.on(KeyField::Models);
    let apps_error = errors.on(KeyField::Apps);
    let description_error = errors.on(KeyField::Description);
    html! {
        @if with_workspace {
            div.field {
                label for=(id("workspace")) { "Workspace" }
                select id=(id("workspace")) name="workspace" aria-invalid=[workspace_error.map(|_| "true")] aria-describedby=[described_by(&id("workspace"), true, workspace_error.is_some())] {
                    @for choice in &choices.workspaces {
                        option value=(choice.workspace_id) selected[choice.workspace_id == values.workspace_id] { (workspace_label(choice)) }
                    }
                }
                p.hint id=(id("workspace-hint")) { "We recommend the default workspace. A key can call what its workspace may call." }
                (field_error(&id("workspace"), workspace_error))
            }
        }
        @if choices.custom_allowed {
            fieldset.field.permission aria-describedby=[described_by(&id("permission"), false, permission_error.is_some())] {
                legend { "Permission" }
                div.choice {
                    input type="radio" id=(id("permission-all")) name="permission" value="All" checked[!values.custom];
                    label for=(id("permission-all")) { strong { "All" } " — every model and application of the workspace, from any address" }
                }
                div.choice {
                    input type="radio" id=(id("permission-custom")) name="permission" value="Custom" checked[values.custom];
                    label for=(id("permission-custom")) { strong { "Custom" } " — an IP whitelist and the models and applications this key may call" }
                }
                (field_error(&id("permission"), permission_error))
            }
            div.custom-fields {
                div.field {
                    label for=(id("ips")) { "IP whitelist" }
                    textarea id=(id("ips")) name="access_ips" rows="3" spellcheck="false" aria-invalid=[ips_error.map(|_| "true")] aria-describedby=[described_by(&id("ips"), true, ips_error.is_some())] { (values.access_ips) }
                    p.hint id=(id("ips-hint")) { "One IPv4 or IPv6 address or CIDR block per line (e.g. 10.0.0.0/8), at most 20. Empty: any address." }
                    (field_error(&id("ips"), ips_error))
                }
                fieldset.field.scope aria-describedby=[described_by(&id("models"), false, models_error.is_some())] {
                    legend { "Models" }
                    div.choice {
                        input type="radio" id=(id("models-all")) name="model_scope" value="all" checked[values.all_models];
                        label for=(id("models-all")) { "All models the workspace may call" }
                    }
                    div.choice {
                        input type="radio" id=(id("models-selected")) name="model_scope" value="selected" checked[!values.all_models];
                        label for=(id("models-selected")) { "Only the models selected below (none selected: no model)" }
                    }
                    div.scope-choices {
                        @for (index, (model, display_name, demo)) in choices.models.iter().enumerate() {
                            div.choice {
                                input type="checkbox" id={ (prefix) "-model-" (index) } name="model" value=(model) checked[values.models.contains(model)];
                                label for={ (prefix) "-model-" (index) } { code { (model) } @if display_name != model { " " (display_name) } @if *demo { " " span.badge { "demo" } } }
                            }
                        }
                    }
                    (field_error(&id("models"), models_error))
                }
                fieldset.field.scope aria-describedby=[described_by(&id("apps"), false, apps_error.is_some())] {
                    legend { "Applications" }
                    div.choice {
                        input type="radio" id=(id("apps-all")) name="app_scope" value="all" checked[values.all_apps];
                        label for=(id("apps-all")) { "All applications of the workspace" }
                    }
                    div.choice {
                        input type="radio" id=(id("apps-selected")) name="app_scope" value="selected" checked[!values.all_apps];
                        label for=(id("apps-selected")) { "Only the applications selected below (none selected: no application)" }
                    }
                    div.scope-choices {
                        @if choices.apps.is_empty() {
                            p.hint { "No applications yet; an admin adds them on the Workspaces page." }
                        }
                        @for (index, app) in choices.apps.iter().enumerate() {
                            div.choice {
                                input type="checkbox" id={ (prefix) "-app-" (index) } name="app" value=(app.app_id) checked[values.apps.contains(&app.app_id)];
                                label for={ (prefix) "-app-" (index) } { (app.name) " " span.muted { "(" (app.workspace_name) ", " code { (app.app_id) } ")" } }
                            }
                        }
                    }
                    (field_error(&id("apps"), apps_error))
                }
            }
        } @else {
            input type="hidden" name="permission" value="All";
            p.hint id=(id("permission")) { "Permission: All. Custom permissions (IP whitelist, model and application scope) are not offered in " (choices.region_name) "." }
            (field_error(&id("permission"), permission_error))
        }
        div.field {
            label for=(id("description")) { "Description " span.optional { "(optional)" } }
            input type="text" id=(id("description")) name="description" value=(values.description) autocomplete="off"
                aria-invalid=[description_error.map(|_| "true")] aria-describedby=[described_by(&id("description"), true, description_error.is_some())];
            p.hint id=(id("description-hint")) { "What the key is for, at most 200 characters." }
            (field_error(&id("description"), description_error))
        }
        @if let Some(message) = &errors.form {
            p.form-error role="alert" id=(id("form-error")) { (message) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::region::RegionTable;

    fn fields(text: &str) -> FormFields {
        FormFields::parse(text, "form").unwrap()
    }

    #[test]
    fn submitted_values_round_trip_into_permissions() {
        let values = KeyFormValues::from_fields(&fields("permission=Custom&access_ips=10.0.0.0%2F8%0D%0A192.168.1.1%2C+::1&model_scope=selected&model=demo-echo&app_scope=all&description=ci"));
        assert_eq!(values.ip_entries(), ["10.0.0.0/8", "192.168.1.1", "::1"]);
        let table = RegionTable::model_studio_default();
        let catalog = ModelCatalog::built_in(true);
        let Some(KeyAuth::Custom(custom)) = values.key_auth(table.get("ap-southeast-1").unwrap(), &catalog, &[]).unwrap() else {
            panic!("custom expected")
        };
        assert_eq!(custom.model_scope.accessible_models, ["demo-echo"]);
        assert!(custom.app_scope.allow_all_apps);
        let refused = values.key_auth(table.get("us-east-1").unwrap(), &catalog, &[]).unwrap_err();
        assert_eq!(refused.field, Some(KeyField::Permission));
        let all = KeyFormValues::from_fields(&fields("permission=All&access_ips=not-an-ip"));
        assert_eq!(all.key_auth(table.get("us-east-1").unwrap(), &catalog, &[]).unwrap(), Some(KeyAuth::All));
    }

    #[test]
    fn a_bad_cidr_is_reported_on_the_whitelist_field() {
        let values = KeyFormValues::from_fields(&fields("permission=Custom&access_ips=10.0.0.0%2F99"));
        let table = RegionTable::model_studio_default();
        let refused = values.key_auth(table.get("ap-southeast-1").unwrap(), &ModelCatalog::built_in(true), &[]).unwrap_err();
        let errors = KeyFormErrors::from_error(&refused);
        assert!(errors.on(KeyField::AccessIps).unwrap().contains("10.0.0.0/99"));
        assert_eq!(errors.on(KeyField::Description), None);
    }
}
