//! The Create and Edit form of an API key: its values (kept when the form comes back with
//! an error), its errors (each next to the field that caused it), its choices
//! (workspaces, models, applications, whether the region offers Custom), and how its
//! values become permissions, through the same rules as the API
//! ([`crate::operations::keys`]).

use crate::operations::ApiKeyRecord;
use keygate_core::catalog::ModelCatalog;
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::permissions::KeyAuth;
use keygate_core::region::RegionPolicy;
use maud::{html, Markup};

use super::i18n::Language;
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
    /// The expiry as typed (RFC 3339 or Unix seconds); empty: never.
    pub expires_at: String,
    /// Edit only: the expiry the form was filled with, so that an unchanged (perhaps past)
    /// expiry is kept rather than judged again.
    pub expires_at_was: String,
    /// Custom chosen rather than All.
    pub custom: bool,
    /// The fields of a Custom permission, kept as typed even while All is chosen, so that
    /// switching back shows them again.
    pub custom_fields: CustomFieldValues,
}

/// The fields of a Custom permission, as typed: the `div.custom-fields` of the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomFieldValues {
    /// The IP whitelist as typed: one entry per line (commas and spaces also separate).
    pub access_ips: String,
    pub models: ScopeValues,
    pub apps: ScopeValues,
}

/// One scope of a Custom permission (its models, or its applications): all of the
/// workspace's, or only those checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeValues {
    pub all: bool,
    pub checked: Vec<String>,
}

impl Default for ScopeValues {
    /// A new form offers everything, as the API's default scope does.
    fn default() -> ScopeValues {
        ScopeValues { all: true, checked: Vec::new() }
    }
}

impl ScopeValues {
    /// The scope a submitted form carries: the radio `scope_field` (`all` or `selected`) and
    /// the checkboxes named `checkbox_field`.
    fn from_fields(fields: &FormFields, scope_field: &str, checkbox_field: &str) -> ScopeValues {
        ScopeValues {
            all: fields.get(scope_field) != Some("selected"),
            checked: fields.values(checkbox_field).map(str::to_string).collect(),
        }
    }

    /// The names the scope is limited to: none when it allows all.
    fn limited_to(&self) -> Vec<String> {
        if self.all {
            Vec::new()
        } else {
            self.checked.clone()
        }
    }
}

impl KeyFormValues {
    /// A blank Create form in `workspace_id`.
    pub fn blank(workspace_id: &str) -> KeyFormValues {
        KeyFormValues { workspace_id: workspace_id.to_string(), ..KeyFormValues::default() }
    }

    /// The Edit form of an existing key.
    pub fn from_record(record: &ApiKeyRecord) -> KeyFormValues {
        let custom_fields = match &record.auth {
            KeyAuth::All => None,
            KeyAuth::Custom(custom) => Some(CustomFieldValues {
                access_ips: custom.access_ips.canonical_entries().join("\n"),
                models: ScopeValues { all: custom.model_scope.allow_all_models, checked: custom.model_scope.accessible_models.clone() },
                apps: ScopeValues { all: custom.app_scope.allow_all_apps, checked: custom.app_scope.accessible_apps.clone() },
            }),
        };
        let expires_at = record.expires_at.map(format_utc_timestamp).unwrap_or_default();
        KeyFormValues {
            workspace_id: record.workspace_id.clone(),
            description: record.description.clone(),
            expires_at_was: expires_at.clone(),
            expires_at,
            custom: custom_fields.is_some(),
            custom_fields: custom_fields.unwrap_or_default(),
        }
    }

    /// The values a submitted form carries.
    pub fn from_fields(fields: &FormFields) -> KeyFormValues {
        KeyFormValues {
            workspace_id: fields.get("workspace").unwrap_or("").trim().to_string(),
            description: fields.get("description").unwrap_or("").to_string(),
            expires_at: fields.get("expires_at").unwrap_or("").trim().to_string(),
            expires_at_was: fields.get("expires_at_was").unwrap_or("").trim().to_string(),
            custom: fields.get("permission") == Some("Custom"),
            custom_fields: CustomFieldValues {
                access_ips: fields.get("access_ips").unwrap_or("").to_string(),
                models: ScopeValues::from_fields(fields, "model_scope", "model"),
                apps: ScopeValues::from_fields(fields, "app_scope", "app"),
            },
        }
    }

    /// The expiry a Create sends: `None` (never) when left empty.
    pub fn expiry_to_create(&self) -> Option<&str> {
        (!self.expires_at.is_empty()).then_some(self.expires_at.as_str())
    }

    /// The expiry an Edit sends: `None` (keep it) when unchanged, `never` when emptied.
    pub fn expiry_to_edit(&self) -> Option<&str> {
        match self.expires_at.as_str() {
            unchanged if unchanged == self.expires_at_was => None,
            "" => Some("never"),
            changed => Some(changed),
        }
    }

    /// The whitelist entries typed, split on line breaks, commas and spaces.
    pub fn ip_entries(&self) -> Vec<String> {
        self.custom_fields
            .access_ips
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
        let CustomFieldValues { models: model_scope, apps: app_scope, .. } = &self.custom_fields;
        let models = model_scope.limited_to();
        check_scope_models(&models, catalog)?;
        let apps = app_scope.limited_to();
        check_scope_apps(&apps, workspace_apps)?;
        Ok(Some(custom_permissions(access_ips, model_scope.all, models, app_scope.all, apps)))
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
    /// The language the form is written in.
    pub language: Language,
    pub workspaces: Vec<WorkspaceChoice>,
    /// (model name, display name, is a demo model)
    pub models: Vec<(String, String, bool)>,
    pub apps: Vec<AppChoice>,
    pub custom_allowed: bool,
    pub region_name: String,
}

fn workspace_label(language: Language, choice: &WorkspaceChoice) -> String {
    if choice.is_default {
        format!("{} ({}) · {}", choice.name, language.text("form.default"), choice.workspace_id)
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
    let language = choices.language;
    let workspace_error = errors.on(KeyField::Workspace);
    let permission_error = errors.on(KeyField::Permission);
    let ips_error = errors.on(KeyField::AccessIps);
    let models_error = errors.on(KeyField::Models);
    let apps_error = errors.on(KeyField::Apps);
    let description_error = errors.on(KeyField::Description);
    let expiry_error = errors.on(KeyField::Expiry);
    let custom_fields = &values.custom_fields;
    let model_checkboxes = html! {
        @for (index, (model, display_name, demo)) in choices.models.iter().enumerate() {
            div.choice {
                input type="checkbox" id={ (prefix) "-model-" (index) } name="model" value=(model) checked[custom_fields.models.checked.contains(model)];
                label for={ (prefix) "-model-" (index) } { code { (model) } @if display_name != model { " " (display_name) } @if *demo { " " span.badge { "demo" } } }
            }
        }
    };
    let app_checkboxes = html! {
        @if choices.apps.is_empty() {
            p.hint { (language.text("form.no_apps")) }
        }
        @for (index, app) in choices.apps.iter().enumerate() {
            div.choice {
                input type="checkbox" id={ (prefix) "-app-" (index) } name="app" value=(app.app_id) checked[custom_fields.apps.checked.contains(&app.app_id)];
                label for={ (prefix) "-app-" (index) } { (app.name) " " span.muted { "(" (app.workspace_name) ", " code { (app.app_id) } ")" } }
            }
        }
    };
    html! {
        @if with_workspace {
            div.field {
                label for=(id("workspace")) { (language.text("form.workspace")) }
                select id=(id("workspace")) name="workspace" aria-invalid=[workspace_error.map(|_| "true")] aria-describedby=[described_by(&id("workspace"), true, workspace_error.is_some())] {
                    @for choice in &choices.workspaces {
                        option value=(choice.workspace_id) selected[choice.workspace_id == values.workspace_id] { (workspace_label(language, choice)) }
                    }
                }
                p.hint id=(id("workspace-hint")) { (language.text("form.workspace_hint")) }
                (field_error(&id("workspace"), workspace_error))
            }
        }
        @if choices.custom_allowed {
            fieldset.field.permission aria-describedby=[described_by(&id("permission"), false, permission_error.is_some())] {
                legend { (language.text("form.permission")) }
                div.choice {
                    input type="radio" id=(id("permission-all")) name="permission" value="All" checked[!values.custom];
                    label for=(id("permission-all")) { strong { "All" } (language.text("form.all_hint")) }
                }
                div.choice {
                    input type="radio" id=(id("permission-custom")) name="permission" value="Custom" checked[values.custom];
                    label for=(id("permission-custom")) { strong { "Custom" } (language.text("form.custom_hint")) }
                }
                (field_error(&id("permission"), permission_error))
            }
            div.custom-fields {
                div.field {
                    label for=(id("ips")) { (language.text("form.ips")) }
                    textarea id=(id("ips")) name="access_ips" rows="3" spellcheck="false" aria-invalid=[ips_error.map(|_| "true")] aria-describedby=[described_by(&id("ips"), true, ips_error.is_some())] { (custom_fields.access_ips) }
                    p.hint id=(id("ips-hint")) { (language.text("form.ips_hint")) }
                    (field_error(&id("ips"), ips_error))
                }
                (scope_fieldset(&id("models"), language.text("form.models"), "model_scope", [language.text("form.models_all"), language.text("form.models_selected")], &custom_fields.models, models_error, model_checkboxes))
                (scope_fieldset(&id("apps"), language.text("form.apps"), "app_scope", [language.text("form.apps_all"), language.text("form.apps_selected")], &custom_fields.apps, apps_error, app_checkboxes))
            }
        } @else {
            input type="hidden" name="permission" value="All";
            p.hint id=(id("permission")) { (language.fill("form.only_all", &[&choices.region_name])) }
            (field_error(&id("permission"), permission_error))
        }
        div.field {
            label for=(id("description")) { (language.text("form.description")) " " span.optional { (language.text("grace.optional")) } }
            input type="text" id=(id("description")) name="description" value=(values.description) autocomplete="off"
                aria-invalid=[description_error.map(|_| "true")] aria-describedby=[described_by(&id("description"), true, description_error.is_some())];
            p.hint id=(id("description-hint")) { (language.text("form.description_hint")) }
            (field_error(&id("description"), description_error))
        }
        div.field {
            label for=(id("expires")) { (language.text("form.expires")) " " span.optional { (language.text("grace.optional")) } }
            input type="text" id=(id("expires")) name="expires_at" value=(values.expires_at) autocomplete="off" spellcheck="false" placeholder="2027-01-31T00:00:00Z"
                aria-invalid=[expiry_error.map(|_| "true")] aria-describedby=[described_by(&id("expires"), true, expiry_error.is_some())];
            @if !with_workspace {
                input type="hidden" name="expires_at_was" value=(values.expires_at_was);
            }
            p.hint id=(id("expires-hint")) { (language.text("form.expires_hint")) }
            (field_error(&id("expires"), expiry_error))
        }
        @if let Some(message) = &errors.form {
            p.form-error role="alert" id=(id("form-error")) { (message) }
        }
    }
}

/// The fieldset of one scope (models or applications) with the id `field_id`: the radio
/// `radio_name` between all (`labels[0]`) and only those checked (`labels[1]`), then the
/// `checkboxes`.
fn scope_fieldset(
    field_id: &str,
    legend: &str,
    radio_name: &str,
    labels: [&str; 2],
    scope: &ScopeValues,
    error: Option<&str>,
    checkboxes: Markup,
) -> Markup {
    let [all_label, checked_label] = labels;
    html! {
        fieldset.field.scope aria-describedby=[described_by(field_id, false, error.is_some())] {
            legend { (legend) }
            div.choice {
                input type="radio" id={ (field_id) "-all" } name=(radio_name) value="all" checked[scope.all];
                label for={ (field_id) "-all" } { (all_label) }
            }
            div.choice {
                input type="radio" id={ (field_id) "-selected" } name=(radio_name) value="selected" checked[!scope.all];
                label for={ (field_id) "-selected" } { (checked_label) }
            }
            div.scope-choices { (checkboxes) }
            (field_error(field_id, error))
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
    fn an_unchanged_expiry_is_kept_an_emptied_one_removed() {
        let values = |query: &str| KeyFormValues::from_fields(&fields(query));
        assert_eq!(values("expires_at=").expiry_to_create(), None);
        assert_eq!(values("expires_at=2027-01-31T00%3A00%3A00Z").expiry_to_create(), Some("2027-01-31T00:00:00Z"));
        let was = "expires_at_was=2020-01-01T00%3A00%3A00Z";
        assert_eq!(values(&format!("expires_at=2020-01-01T00%3A00%3A00Z&{was}")).expiry_to_edit(), None, "a past expiry left as it was");
        assert_eq!(values(&format!("expires_at=&{was}")).expiry_to_edit(), Some("never"));
        assert_eq!(values(&format!("expires_at=2030-01-01T00%3A00%3A00Z&{was}")).expiry_to_edit(), Some("2030-01-01T00:00:00Z"));
        assert_eq!(values("expires_at=&expires_at_was=").expiry_to_edit(), None);
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
