//! The API-key operations that the Model Studio API and the console both perform: create
//! (workspace, the right to create there, the region's custom-permission rule, the quota),
//! edit, disable/enable and reset (where the region supports them) and delete. Each takes
//! an [`Authenticated`] caller and input already taken off the wire, so the rules live
//! here once and each surface keeps only its own wire format.
//!
//! Errors say which input they are about ([`KeyField`]) so that a form can show them
//! next to that field; the API answers with the same [`ManagementError`] as before.

use keygate_core::access::{AccessDenied, KeyAction};
use keygate_core::catalog::ModelCatalog;
use keygate_core::ids::{AppId, Description, IdError, WorkspaceId};
use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::keys::{generate_key, KeyFormat};
use keygate_core::permissions::{normalise_list, AppScope, CustomPermissions, KeyAuth, ModelScope};
use keygate_core::region::RegionPolicy;
use keygate_store::{ApiKeyRecord, NewApiKey, QuotaRule, StoreError, WorkspaceRecord};
use secrecy::SecretString;

use crate::management::authentication::Authenticated;
use crate::management::errors::ManagementError;
use crate::management::form::{parse_auth, shown, FormFields};
use crate::state::AppState;

/// The input of a create or edit that an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    Workspace,
    Description,
    /// All or Custom.
    Permission,
    AccessIps,
    Models,
    Apps,
}

/// A refused key operation: the API's error, the field it is about (if one), and the
/// same refusal in plain words for a form (when it differs from the API's message).
#[derive(Debug, Clone)]
pub struct KeyOperationError {
    pub field: Option<KeyField>,
    pub error: ManagementError,
    plain: Option<String>,
}

impl KeyOperationError {
    fn about(field: KeyField, error: ManagementError, plain: impl Into<String>) -> KeyOperationError {
        KeyOperationError { field: Some(field), error, plain: Some(plain.into()) }
    }

    fn with_field(mut self, field: KeyField) -> KeyOperationError {
        self.field = Some(field);
        self
    }

    /// The refusal in plain words, for a person reading a form.
    pub fn plain_message(&self) -> &str {
        self.plain.as_deref().unwrap_or(&self.error.message)
    }
}

impl From<ManagementError> for KeyOperationError {
    fn from(error: ManagementError) -> Self {
        KeyOperationError { field: None, error, plain: None }
    }
}

impl From<StoreError> for KeyOperationError {
    fn from(error: StoreError) -> Self {
        ManagementError::from(error).into()
    }
}

impl From<AccessDenied> for KeyOperationError {
    fn from(denied: AccessDenied) -> Self {
        ManagementError::from(denied).into()
    }
}

impl From<KeyOperationError> for ManagementError {
    fn from(error: KeyOperationError) -> Self {
        error.error
    }
}

type Result<T, E = KeyOperationError> = std::result::Result<T, E>;

/// Permissions sent with a create or edit, turned into a [`KeyAuth`] once the key's
/// region and workspace are known. `None`: the request did not say (create: `All`; edit:
/// keep the key's permissions).
pub trait KeyAuthInput {
    fn key_auth(&self, region: &RegionPolicy, catalog: &ModelCatalog, workspace_apps: &[String]) -> Result<Option<KeyAuth>>;
}

/// The Model Studio wire form: `auth.type`, `auth.accessIps.N`, ... (see [`parse_auth`]).
impl KeyAuthInput for FormFields {
    fn key_auth(&self, region: &RegionPolicy, catalog: &ModelCatalog, workspace_apps: &[String]) -> Result<Option<KeyAuth>> {
        Ok(parse_auth(self, region, catalog, workspace_apps)?)
    }
}

// ---- the rules of Custom permissions, in the order parse_auth applies them ----------------

/// Custom permissions exist only where the region offers them.
pub fn require_custom_permissions(region: &RegionPolicy) -> Result<()> {
    if region.custom_permissions {
        return Ok(());
    }
    Err(KeyOperationError::about(
        KeyField::Permission,
        ManagementError::invalid_parameter(format!(
            "Custom permissions are not supported in region {} ({}); use auth.type=All.",
            region.id, region.name
        )),
        format!("Custom permissions are not offered in {}; choose All.", region.name),
    ))
}

/// The IP whitelist: at most 20 addresses or CIDR blocks.
pub fn parse_access_ips(entries: &[String]) -> Result<IpAllowlist> {
    IpAllowlist::parse(entries).map_err(|error| {
        KeyOperationError::about(
            KeyField::AccessIps,
            ManagementError::invalid_parameter(format!("auth.accessIps: {error}.")),
            sentence(&error.to_string()),
        )
    })
}

/// Every model of a model scope must be in the catalog.
pub fn check_scope_models(models: &[String], catalog: &ModelCatalog) -> Result<()> {
    match models.iter().find(|model| !catalog.contains(model)) {
        None => Ok(()),
        Some(unknown) => Err(KeyOperationError::about(
            KeyField::Models,
            ManagementError::invalid_parameter(format!("auth.modelAccessScope.accessibleModels: unknown model '{}'.", shown(unknown))),
            format!("There is no model named '{}'.", shown(unknown)),
        )),
    }
}

/// Every application of an app scope must be an app id of the key's workspace.
pub fn check_scope_apps(apps: &[String], workspace_apps: &[String]) -> Result<()> {
    for app in apps {
        AppId::parse(app).map_err(|error| {
            KeyOperationError::about(
                KeyField::Apps,
                ManagementError::from(error),
                format!("'{}' is not an application id (32 characters 0-9 and a-f).", shown(app)),
            )
        })?;
        if !workspace_apps.contains(app) {
            return Err(KeyOperationError::about(
                KeyField::Apps,
                ManagementError::invalid_parameter(format!(
                    "auth.appAccessScope.accessibleApps: application '{}' is not in this workspace.",
                    shown(app)
                )),
                format!("Application '{}' is not in this key's workspace.", shown(app)),
            ));
        }
    }
    Ok(())
}

/// Custom permissions from checked parts; an "allow all" scope keeps no list.
pub fn custom_permissions(
    access_ips: IpAllowlist,
    allow_all_models: bool,
    models: Vec<String>,
    allow_all_apps: bool,
    apps: Vec<String>,
) -> KeyAuth {
    KeyAuth::Custom(CustomPermissions {
        access_ips,
        model_scope: ModelScope { allow_all_models, accessible_models: if allow_all_models { Vec::new() } else { normalise_list(models) } },
        app_scope: AppScope { allow_all_apps, accessible_apps: if allow_all_apps { Vec::new() } else { normalise_list(apps) } },
    })
}

/// "'x' is not ..." becomes "'x' is not ....": an error text as a sentence.
fn sentence(text: &str) -> String {
    let mut characters = text.chars();
    let mut output: String = match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    };
    if !output.ends_with('.') {
        output.push('.');
    }
    output
}

// ---- lookups both surfaces need ---------------------------------------------------------

/// The policy of the caller's region.
pub fn region_policy<'a>(state: &'a AppState, auth: &Authenticated) -> Result<&'a RegionPolicy, ManagementError> {
    state.region_policy(&auth.region).ok_or_else(|| ManagementError::internal(format!("region {} has no policy", auth.region)))
}

/// The workspace `workspace_id` names in the caller's account and region; `None`: the
/// default workspace.
pub async fn resolve_workspace(
    state: &AppState,
    auth: &Authenticated,
    workspace_id: Option<&str>,
) -> Result<WorkspaceRecord, ManagementError> {
    resolve_workspace_in(state, auth, &auth.region, workspace_id).await
}

/// [`resolve_workspace`] in `region` (an import names its region).
pub async fn resolve_workspace_in(
    state: &AppState,
    auth: &Authenticated,
    region: &str,
    workspace_id: Option<&str>,
) -> Result<WorkspaceRecord, ManagementError> {
    match workspace_id {
        None => Ok(state.store().default_workspace(auth.caller.account_id, region).await?),
        Some(text) => {
            let parsed = WorkspaceId::parse(text)?;
            state.store().get_workspace(auth.caller.account_id, region, parsed.as_str()).await.map_err(|_| {
                ManagementError::invalid_parameter(format!(
                    "workspaceId '{}' is not a workspace of this account in region {region}.",
                    shown(text)
                ))
            })
        }
    }
}

/// Whether the caller is a member of `workspace_id` (the account is a member of all).
pub async fn caller_is_member(state: &AppState, auth: &Authenticated, workspace_id: &str) -> Result<bool, ManagementError> {
    match auth.caller.user_id() {
        None => Ok(true),
        Some(user_id) => Ok(state.store().is_workspace_member(workspace_id, user_id).await?),
    }
}

/// Refuses `action` on `key` unless the caller's role and membership allow it
/// ([`keygate_core::access::Caller::may_act_on_key`]); called after the key was found
/// visible, so a key the caller may not see stays a 404.
pub async fn require_key_action(
    state: &AppState,
    auth: &Authenticated,
    key: &ApiKeyRecord,
    action: KeyAction,
) -> Result<(), ManagementError> {
    if !action.needs_key_manager() || auth.caller.is_account() {
        return Ok(());
    }
    let is_member = caller_is_member(state, auth, &key.workspace_id).await?;
    Ok(auth.caller.may_act_on_key(action, is_member)?)
}

/// The application ids of a workspace.
pub async fn workspace_app_ids(state: &AppState, workspace_id: &str) -> Result<Vec<String>, ManagementError> {
    Ok(state.store().list_applications(workspace_id).await?.into_iter().map(|(app_id, _)| app_id).collect())
}

// ---- the operations ---------------------------------------------------------------------

/// What a create asks for.
pub struct NewKeyRequest<'a, A: KeyAuthInput> {
    /// `None`: the default workspace.
    pub workspace_id: Option<&'a str>,
    pub description: &'a str,
    pub auth: &'a A,
}

/// A key just created or reset, with its plaintext: the one moment it exists.
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub plaintext: SecretString,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("IssuedKey")
            .field("api_key_id", &self.record.api_key_id)
            .field("masked_key", &self.record.masked_key)
            .finish_non_exhaustive()
    }
}

/// Rules 1-3: who may create where, the region's permission modes, and its limit
/// (checked with the insert, atomically).
pub async fn create_key<A: KeyAuthInput + Sync>(
    state: &AppState,
    auth: &Authenticated,
    request: NewKeyRequest<'_, A>,
) -> Result<IssuedKey> {
    let region = region_policy(state, auth)?;
    let description = parse_description(request.description)?;
    let workspace = resolve_workspace(state, auth, request.workspace_id)
        .await
        .map_err(|error| KeyOperationError::from(error).with_field(KeyField::Workspace))?;
    let is_member = caller_is_member(state, auth, &workspace.workspace_id).await?;
    auth.caller.may_create_key(is_member).map_err(|denied| {
        let error = KeyOperationError::from(denied);
        if is_member {
            error
        } else {
            error.with_field(KeyField::Workspace)
        }
    })?;
    let apps = workspace_app_ids(state, &workspace.workspace_id).await?;
    let key_auth = request.auth.key_auth(region, &state.shared.catalog, &apps)?.unwrap_or(KeyAuth::All);
    let generated = generate_key(region.new_key_format);
    let new_key = NewApiKey {
        region: auth.region.clone(),
        workspace_id: workspace.workspace_id.clone(),
        creator_user_id: auth.caller.user_id(),
        created_by: auth.caller.display_name().to_string(),
        description: description.as_str().to_string(),
        format: generated.format,
        digest: generated.digest,
        masked_key: generated.masked.clone(),
        auth: key_auth,
        legacy_ciphertext: None,
    };
    let record =
        state.store().create_api_key(&auth.audit(), new_key, QuotaRule { limit: region.key_limit, scope: region.limit_scope }).await?;
    Ok(IssuedKey { record, plaintext: generated.plaintext })
}

fn parse_description(text: &str) -> Result<Description> {
    Description::parse(text).map_err(|error| {
        let plain = match &error {
            IdError::TooLong { maximum, actual, .. } => format!("Use at most {maximum} characters; this description has {actual}."),
            IdError::Malformed { .. } => "Remove the control characters (tabs, line breaks) from the description.".to_string(),
        };
        KeyOperationError::about(KeyField::Description, ManagementError::from(error), plain)
    })
}

/// Rule 5, Edit: a new description (`None`: keep it) and permissions (`None`: keep them).
/// A key the caller may not see is `ApiKey.NotFound` before any input is judged.
pub async fn edit_key<A: KeyAuthInput + Sync>(
    state: &AppState,
    auth: &Authenticated,
    key_id: i64,
    description: Option<&str>,
    auth_input: &A,
) -> Result<()> {
    let region = region_policy(state, auth)?;
    let visibility = auth.caller.key_visibility();
    let existing = state.store().get_api_key(auth.caller.account_id, &auth.region, key_id, visibility).await?;
    require_key_action(state, auth, &existing, KeyAction::Edit).await?;
    let description = match description {
        None => None,
        Some(text) => Some(parse_description(text)?.as_str().to_string()),
    };
    let apps = workspace_app_ids(state, &existing.workspace_id).await?;
    let key_auth = auth_input.key_auth(region, &state.shared.catalog, &apps)?;
    state.store().update_api_key(&auth.audit(), key_id, visibility, description, key_auth).await?;
    Ok(())
}

/// Rule 5, Disable and Enable; disabling needs a region that supports it.
pub async fn set_key_disabled(state: &AppState, auth: &Authenticated, key_id: i64, disabled: bool) -> Result<(), ManagementError> {
    let region = region_policy(state, auth)?;
    let visibility = auth.caller.key_visibility();
    let existing = state.store().get_api_key(auth.caller.account_id, &auth.region, key_id, visibility).await?;
    require_key_action(state, auth, &existing, if disabled { KeyAction::Disable } else { KeyAction::Enable }).await?;
    if disabled && !region.disable_and_reset {
        return Err(ManagementError::unsupported_in_region("DisableApiKey", &auth.region));
    }
    state.store().set_api_key_disabled(&auth.audit(), key_id, visibility, disabled).await?;
    Ok(())
}

/// Rule 5, Reset: a new secret for the same id (the old one stops working at once), in a
/// region that supports it.
pub async fn reset_key(state: &AppState, auth: &Authenticated, key_id: i64) -> Result<IssuedKey, ManagementError> {
    let region = region_policy(state, auth)?;
    let visibility = auth.caller.key_visibility();
    let existing = state.store().get_api_key(auth.caller.account_id, &auth.region, key_id, visibility).await?;
    require_key_action(state, auth, &existing, KeyAction::Reset).await?;
    if !region.disable_and_reset {
        return Err(ManagementError::unsupported_in_region("ResetApiKey", &auth.region));
    }
    // A plan key stays a plan key; any other key (an imported legacy one too) gets the
    // region's format.
    let format = if existing.format == KeyFormat::Plan { KeyFormat::Plan } else { region.new_key_format };
    let generated = generate_key(format);
    let record = state
        .store()
        .reset_api_key(&auth.audit(), key_id, visibility, generated.format, generated.digest, generated.masked.clone())
        .await?;
    Ok(IssuedKey { record, plaintext: generated.plaintext })
}

/// Rule 5, Delete: final.
pub async fn delete_key(state: &AppState, auth: &Authenticated, key_id: i64) -> Result<(), ManagementError> {
    state.store().delete_api_key(&auth.audit(), key_id, auth.caller.key_visibility()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::region::RegionTable;

    #[test]
    fn custom_permission_refusals_name_their_field_in_both_voices() {
        let table = RegionTable::model_studio_default();
        let virginia = table.get("us-east-1").unwrap();
        let refused = require_custom_permissions(virginia).unwrap_err();
        assert_eq!(refused.field, Some(KeyField::Permission));
        assert!(refused.error.message.contains("auth.type=All"), "{}", refused.error.message);
        assert_eq!(refused.plain_message(), "Custom permissions are not offered in US (Virginia); choose All.");
        assert!(require_custom_permissions(table.get("ap-southeast-1").unwrap()).is_ok());

        let bad_ip = parse_access_ips(&["10.0.0.0/33".to_string()]).unwrap_err();
        assert_eq!(bad_ip.field, Some(KeyField::AccessIps));
        assert_eq!(bad_ip.error.message, "auth.accessIps: '10.0.0.0/33' has a prefix length beyond the address size.");
        assert_eq!(bad_ip.plain_message(), "'10.0.0.0/33' has a prefix length beyond the address size.");

        let catalog = ModelCatalog::built_in(true);
        assert_eq!(check_scope_models(&["no-such".to_string()], &catalog).unwrap_err().field, Some(KeyField::Models));
        let app = "0123456789abcdef0123456789abcdef".to_string();
        assert_eq!(check_scope_apps(std::slice::from_ref(&app), &[]).unwrap_err().field, Some(KeyField::Apps));
        assert!(check_scope_apps(std::slice::from_ref(&app), std::slice::from_ref(&app)).is_ok());
        assert_eq!(check_scope_apps(&["nope".to_string()], &[]).unwrap_err().error.code, "InvalidParameter");
    }

    #[test]
    fn descriptions_are_refused_with_the_count() {
        let refused = parse_description(&"x".repeat(201)).unwrap_err();
        assert_eq!(refused.field, Some(KeyField::Description));
        assert_eq!(refused.error.message, "description is too long: at most 200 characters, got 201");
        assert_eq!(refused.plain_message(), "Use at most 200 characters; this description has 201.");
    }
}
