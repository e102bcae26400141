//! The API-key operations that the Model Studio API, the Token Plan operations and the
//! console perform: create (workspace, the right to create there, the region's
//! custom-permission rule, the quota), edit, disable/enable and reset (where the region
//! supports them), delete, view (an imported key's plaintext again, audited) and list; and
//! the plan keys' create and rotate. Each takes an [`Actor`] and input already taken off
//! the wire, so the rules live here once and each surface keeps only its own wire format.
//!
//! Errors say which input they are about ([`KeyField`]) so that a form can show them
//! next to that field; the API answers with the same [`OperationError`] as before.

use keygate_core::access::{AccessDenied, KeyAction};
use keygate_core::catalog::ModelCatalog;
use keygate_core::ids::{ApiKeyId, AppId, Description, IdError};
use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::key_expiry::{checked_grace_seconds, parse_expiry, ExpiryError, ExpiryInput, MAX_GRACE_SECONDS};
use keygate_core::key_limits::{parse_key_limits, KeyLimits, KeyLimitsInput, LIMITS_FIELD};
use keygate_core::keys::{expose, generate_key, mask_key, KeyFormat};
use keygate_core::permissions::{normalise_list, AppScope, CustomPermissions, KeyAuth, ModelScope};
use keygate_core::region::{LimitScope, RegionPolicy};
use keygate_store::{ApiKeyRecord, KeyEdit, KeyOrder, ListKeysQuery, NewApiKey, QuotaRule, StoreError};
use secrecy::SecretString;

use super::workspaces::{caller_is_member, resolve_workspace, workspace_app_ids};
use super::{shown, Actor, OperationError, Operations};

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
    /// `keygateExpiresAt`.
    Expiry,
    /// `keygateLimits`.
    Limits,
}

/// A refused key operation: the API's error, the field it is about (if one), and the
/// same refusal in plain words for a form (when it differs from the API's message).
#[derive(Debug, Clone)]
pub struct KeyOperationError {
    pub field: Option<KeyField>,
    pub error: OperationError,
    plain: Option<String>,
}

impl KeyOperationError {
    fn about(field: KeyField, error: OperationError, plain: impl Into<String>) -> KeyOperationError {
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

impl From<OperationError> for KeyOperationError {
    fn from(error: OperationError) -> Self {
        KeyOperationError { field: None, error, plain: None }
    }
}

impl From<StoreError> for KeyOperationError {
    fn from(error: StoreError) -> Self {
        OperationError::from(error).into()
    }
}

impl From<AccessDenied> for KeyOperationError {
    fn from(denied: AccessDenied) -> Self {
        OperationError::from(denied).into()
    }
}

impl From<KeyOperationError> for OperationError {
    fn from(error: KeyOperationError) -> Self {
        error.error
    }
}

type Result<T, E = KeyOperationError> = std::result::Result<T, E>;

/// Permissions sent with a create or edit, turned into a [`KeyAuth`] once the key's
/// region and workspace are known. `None`: the request did not say (create: `All`; edit:
/// keep the key's permissions).
pub trait KeyAuthInput {
    fn key_auth(&self, region: &RegionPolicy, catalog: &ModelCatalog, workspace_apps: &[String]) -> KeyAuthOutcome;

    /// Whether the permissions sent may name applications, which must be the workspace's:
    /// `false` spares a create reading the workspace's applications (most creates send
    /// no app scope).
    fn may_name_apps(&self) -> bool {
        true
    }
}

/// What [`KeyAuthInput::key_auth`] answers: the permissions sent, if any, or the refusal.
pub type KeyAuthOutcome = Result<Option<KeyAuth>>;

/// An edit that leaves the key's permissions as they are (the console's limits form).
pub struct KeepPermissions;

impl KeyAuthInput for KeepPermissions {
    fn key_auth(&self, _region: &RegionPolicy, _catalog: &ModelCatalog, _workspace_apps: &[String]) -> KeyAuthOutcome {
        Ok(None)
    }

    fn may_name_apps(&self) -> bool {
        false
    }
}

// ---- the rules of Custom permissions, in the order the API's `auth.*` fields apply them -----

/// Custom permissions exist only where the region offers them.
pub fn require_custom_permissions(region: &RegionPolicy) -> Result<()> {
    if region.custom_permissions {
        return Ok(());
    }
    Err(KeyOperationError::about(
        KeyField::Permission,
        OperationError::invalid_parameter(format!(
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
            OperationError::invalid_parameter(format!("auth.accessIps: {error}.")),
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
            OperationError::invalid_parameter(format!("auth.modelAccessScope.accessibleModels: unknown model '{}'.", shown(unknown))),
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
                OperationError::from(error),
                format!("'{}' is not an application id (32 characters 0-9 and a-f).", shown(app)),
            )
        })?;
        if !workspace_apps.contains(app) {
            return Err(KeyOperationError::about(
                KeyField::Apps,
                OperationError::invalid_parameter(format!(
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
    KeyAuth::Custom(Box::new(CustomPermissions {
        access_ips,
        model_scope: ModelScope { allow_all_models, accessible_models: if allow_all_models { Vec::new() } else { normalise_list(models) } },
        app_scope: AppScope { allow_all_apps, accessible_apps: if allow_all_apps { Vec::new() } else { normalise_list(apps) } },
    }))
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

/// The name of the expiry parameter of CreateApiKey and UpdateApiKey, keygate's extension
/// (docs/CONTRACT.md#expiry-and-grace-periods).
pub const EXPIRES_AT_PARAMETER: &str = "keygateExpiresAt";
/// The name of the grace-period parameter of ResetApiKey, keygate's extension.
pub const GRACE_SECONDS_PARAMETER: &str = "keygateGraceSeconds";

/// An expiry as sent (`None`: not sent), read at `now` (Unix seconds): a time in the
/// future, or `never`.
fn read_expiry(text: Option<&str>, now: i64) -> Result<Option<Option<i64>>> {
    let Some(text) = text else {
        return Ok(None);
    };
    match parse_expiry(text, now) {
        Ok(ExpiryInput::At(at)) => Ok(Some(Some(at))),
        Ok(ExpiryInput::Never) => Ok(Some(None)),
        Err(error) => {
            let plain = match error {
                ExpiryError::Malformed => "Write the expiry as a date and time with its offset (2027-01-31T00:00:00Z), or leave it empty.",
                ExpiryError::InThePast => "The expiry must be in the future.",
            };
            Err(KeyOperationError::about(
                KeyField::Expiry,
                OperationError::invalid_parameter(format!("{EXPIRES_AT_PARAMETER} {error}, got '{}'.", shown(text))),
                plain,
            ))
        }
    }
}

/// The name of the limits parameter of CreateApiKey and UpdateApiKey, keygate's extension
/// (docs/CONTRACT.md#per-key-limits).
pub const LIMITS_PARAMETER: &str = LIMITS_FIELD;

/// `keygateLimits` as read off the wire: the limits as sent, or why they could not be read
/// (judged, like every input, only once the key is known to be the caller's).
pub type LimitsSent = std::result::Result<KeyLimitsInput, String>;

/// Limits as sent (`None`: not sent): `Some(None)` removes them (`{}`), `Some(Some(..))`
/// replaces them.
fn read_limits(sent: Option<&LimitsSent>) -> Result<Option<Option<KeyLimits>>> {
    let Some(sent) = sent else { return Ok(None) };
    let refuse = |message: String| KeyOperationError::about(KeyField::Limits, OperationError::invalid_parameter(message.clone()), message);
    let input = sent.as_ref().map_err(|message| refuse(message.clone()))?;
    let limits = parse_key_limits(input).map_err(|error| refuse(error.0))?;
    Ok(Some((!limits.is_empty()).then_some(limits)))
}

/// A grace period as sent (`None`: none), in seconds.
fn read_grace_seconds(text: Option<&str>) -> Result<u32, OperationError> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(0);
    };
    text.parse::<u64>().ok().and_then(checked_grace_seconds).ok_or_else(|| {
        OperationError::invalid_parameter(format!(
            "{GRACE_SECONDS_PARAMETER} must be an integer from 0 to {MAX_GRACE_SECONDS}, got '{}'.",
            shown(text)
        ))
    })
}

/// The actor's moment in Unix seconds: the time its changes are audited at.
fn now_seconds(actor: &Actor) -> i64 {
    actor.audit.at.div_euclid(1000)
}

// ---- what more than one operation needs -----------------------------------------------

/// The id of an API key as a caller names it. A malformed id cannot name a key the caller
/// may see: the same answer as a missing one (`ApiKey.NotFound`).
pub fn parse_key_id(text: &str) -> Result<i64, OperationError> {
    ApiKeyId::parse(text).map(ApiKeyId::get).map_err(|_| OperationError::api_key_not_found())
}

/// The key `key_id`, if the actor may see it in its region (else `ApiKey.NotFound`).
async fn visible_key(operations: Operations<'_>, actor: &Actor, key_id: i64) -> Result<ApiKeyRecord, OperationError> {
    Ok(operations.store.get_api_key(actor.caller.account_id, &actor.region, key_id, actor.caller.key_visibility()).await?)
}

/// Refuses `action` on `key` unless the caller's role and membership allow it
/// ([`keygate_core::access::Caller::may_act_on_key`]); called after the key was found
/// visible, so a key the caller may not see stays a 404.
pub async fn require_key_action(
    operations: Operations<'_>,
    actor: &Actor,
    key: &ApiKeyRecord,
    action: KeyAction,
) -> Result<(), OperationError> {
    if !action.needs_key_manager() || actor.caller.is_account() {
        return Ok(());
    }
    let is_member = caller_is_member(operations, actor, &key.workspace_id).await?;
    Ok(actor.caller.may_act_on_key(action, is_member)?)
}

// ---- the operations ---------------------------------------------------------------------

/// What a create asks for.
pub struct NewKeyRequest<'a, A: KeyAuthInput> {
    /// `None`: the default workspace.
    pub workspace_id: Option<&'a str>,
    pub description: &'a str,
    pub auth: &'a A,
    /// `keygateExpiresAt` as sent; `None`: the key never expires.
    pub expires_at: Option<&'a str>,
    /// `keygateLimits` as sent; `None`: no limits.
    pub limits: Option<&'a LimitsSent>,
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

/// docs/CONTRACT.md#api-key-rules, the first three: who may create where, the region's permission modes, and its limit
/// (checked with the insert, atomically).
pub async fn create_key<A: KeyAuthInput + Sync>(
    operations: Operations<'_>,
    actor: &Actor,
    request: NewKeyRequest<'_, A>,
) -> Result<IssuedKey> {
    let region = actor.region_policy(&operations)?;
    let description = parse_description(request.description)?;
    let expires_at = read_expiry(request.expires_at, now_seconds(actor))?.flatten();
    let limits = read_limits(request.limits)?.flatten();
    let workspace = resolve_workspace(operations, actor, request.workspace_id)
        .await
        .map_err(|error| KeyOperationError::from(error).with_field(KeyField::Workspace))?;
    let is_member = caller_is_member(operations, actor, &workspace.workspace_id).await?;
    actor.caller.may_create_key(is_member).map_err(|denied| {
        let error = KeyOperationError::from(denied);
        if is_member {
            error
        } else {
            error.with_field(KeyField::Workspace)
        }
    })?;
    let apps = if request.auth.may_name_apps() { workspace_app_ids(operations, &workspace.workspace_id).await? } else { Vec::new() };
    let key_auth = request.auth.key_auth(region, operations.catalog, &apps)?.unwrap_or(KeyAuth::All);
    let generated = generate_key(region.new_key_format);
    let new_key = NewApiKey {
        region: actor.region.clone(),
        workspace_id: workspace.workspace_id.clone(),
        creator_user_id: actor.caller.user_id(),
        created_by: actor.caller.display_name().to_string(),
        description: description.as_str().to_string(),
        format: generated.format,
        digest: generated.digest,
        masked_key: generated.masked.clone(),
        auth: key_auth,
        legacy_ciphertext: None,
        expires_at,
        limits,
    };
    let record =
        operations.store.create_api_key(&actor.audit, new_key, QuotaRule { limit: region.key_limit, scope: region.limit_scope }).await?;
    Ok(IssuedKey { record, plaintext: generated.plaintext })
}

fn parse_description(text: &str) -> Result<Description> {
    Description::parse(text).map_err(|error| {
        let plain = match &error {
            IdError::TooLong { maximum, actual, .. } => format!("Use at most {maximum} characters; this description has {actual}."),
            IdError::Malformed { .. } => "Remove the control characters (tabs, line breaks) from the description.".to_string(),
        };
        KeyOperationError::about(KeyField::Description, OperationError::from(error), plain)
    })
}

/// What an edit asks for besides permissions; `None` keeps a part as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyEditRequest<'a> {
    pub description: Option<&'a str>,
    /// `keygateExpiresAt` as sent: a time, or `never` to remove the expiry.
    pub expires_at: Option<&'a str>,
    /// `keygateLimits` as sent: the key's limits as a whole (`{}`: none).
    pub limits: Option<&'a LimitsSent>,
}

/// docs/CONTRACT.md#changing-a-key, Edit: a new description, expiry and permissions (`None`:
/// keep them). A key the caller may not see is `ApiKey.NotFound` before any input is judged.
pub async fn edit_key<A: KeyAuthInput + Sync>(
    operations: Operations<'_>,
    actor: &Actor,
    key_id: i64,
    request: KeyEditRequest<'_>,
    auth_input: &A,
) -> Result<()> {
    let region = actor.region_policy(&operations)?;
    let existing = visible_key(operations, actor, key_id).await?;
    require_key_action(operations, actor, &existing, KeyAction::Edit).await?;
    let description = match request.description {
        None => None,
        Some(text) => Some(parse_description(text)?.as_str().to_string()),
    };
    let expires_at = read_expiry(request.expires_at, now_seconds(actor))?;
    let limits = read_limits(request.limits)?;
    let apps = workspace_app_ids(operations, &existing.workspace_id).await?;
    let key_auth = auth_input.key_auth(region, operations.catalog, &apps)?;
    let edit = KeyEdit { description, auth: key_auth, expires_at, limits };
    operations.store.update_api_key(&actor.audit, key_id, actor.caller.key_visibility(), edit).await?;
    Ok(())
}

/// docs/CONTRACT.md#changing-a-key, Disable and Enable; disabling needs a region that supports it.
pub async fn set_key_disabled(operations: Operations<'_>, actor: &Actor, key_id: i64, disabled: bool) -> Result<(), OperationError> {
    let region = actor.region_policy(&operations)?;
    let existing = visible_key(operations, actor, key_id).await?;
    require_key_action(operations, actor, &existing, if disabled { KeyAction::Disable } else { KeyAction::Enable }).await?;
    if disabled && !region.disable_and_reset {
        return Err(OperationError::unsupported_in_region("DisableApiKey", &actor.region));
    }
    operations.store.set_api_key_disabled(&actor.audit, key_id, actor.caller.key_visibility(), disabled).await?;
    Ok(())
}

/// docs/CONTRACT.md#changing-a-key, Reset: a new secret for the same id, in a region that
/// supports it. The old one stops working at once, or after `grace_seconds`
/// (docs/CONTRACT.md#expiry-and-grace-periods; 0: at once).
pub async fn reset_key(
    operations: Operations<'_>,
    actor: &Actor,
    key_id: i64,
    grace_seconds: Option<&str>,
) -> Result<IssuedKey, OperationError> {
    let region = actor.region_policy(&operations)?;
    let existing = visible_key(operations, actor, key_id).await?;
    require_key_action(operations, actor, &existing, KeyAction::Reset).await?;
    if !region.disable_and_reset {
        return Err(OperationError::unsupported_in_region("ResetApiKey", &actor.region));
    }
    // A plan key stays a plan key; any other key (an imported legacy one too) gets the
    // region's format.
    let grace_seconds = read_grace_seconds(grace_seconds)?;
    let format = if existing.format == KeyFormat::Plan { KeyFormat::Plan } else { region.new_key_format };
    let grace_ends_at = (grace_seconds > 0).then(|| now_seconds(actor) + i64::from(grace_seconds));
    reissue(operations, actor, key_id, format, grace_ends_at).await
}

/// Ends the grace period of a reset key's old secret now (docs/CONTRACT.md#expiry-and-grace-periods):
/// whoever may reset the key may. A key without an old secret in a grace period is refused
/// with `InvalidParameter`.
pub async fn end_key_grace(operations: Operations<'_>, actor: &Actor, key_id: i64) -> Result<ApiKeyRecord, OperationError> {
    let region = actor.region_policy(&operations)?;
    let existing = visible_key(operations, actor, key_id).await?;
    require_key_action(operations, actor, &existing, KeyAction::Reset).await?;
    if !region.disable_and_reset {
        return Err(OperationError::unsupported_in_region("ResetApiKey", &actor.region));
    }
    if existing.grace_ends_at.is_none_or(|ends_at| ends_at <= now_seconds(actor)) {
        return Err(OperationError::invalid_parameter(format!("API key {key_id} has no old secret in a grace period.")));
    }
    Ok(operations.store.end_api_key_grace(&actor.audit, key_id, actor.caller.key_visibility()).await?)
}

/// A new secret of `format` for the visible key `key_id`; the old one keeps working until
/// `grace_ends_at` (Unix seconds) when there is one.
async fn reissue(
    operations: Operations<'_>,
    actor: &Actor,
    key_id: i64,
    format: KeyFormat,
    grace_ends_at: Option<i64>,
) -> Result<IssuedKey, OperationError> {
    let generated = generate_key(format);
    let record = operations
        .store
        .reset_api_key(
            &actor.audit,
            key_id,
            actor.caller.key_visibility(),
            generated.format,
            generated.digest,
            generated.masked.clone(),
            grace_ends_at,
        )
        .await?;
    Ok(IssuedKey { record, plaintext: generated.plaintext })
}

/// docs/CONTRACT.md#changing-a-key, Delete: final.
pub async fn delete_key(operations: Operations<'_>, actor: &Actor, key_id: i64) -> Result<(), OperationError> {
    operations.store.delete_api_key(&actor.audit, key_id, actor.caller.key_visibility()).await?;
    Ok(())
}

/// A key as GetApiKey shows it: its record and, for an imported key, its plaintext.
pub struct ViewedKey {
    pub record: ApiKeyRecord,
    /// An imported (legacy) key's plaintext, which whoever may see the key may view again.
    pub legacy_plaintext: Option<SecretString>,
}

/// GetApiKey: one key the actor may see. An imported key's plaintext comes with it, and
/// each such view is audited (`ApiKey.ViewPlaintext`) before it is answered.
pub async fn view_key(operations: Operations<'_>, actor: &Actor, key_id: i64) -> Result<ViewedKey, OperationError> {
    let record = visible_key(operations, actor, key_id).await?;
    let legacy_plaintext = legacy_plaintext(operations, actor, &record).await?;
    Ok(ViewedKey { record, legacy_plaintext })
}

/// The key `key_id` as the console's key page shows it, if the actor may see it in its
/// region (else `ApiKey.NotFound`). Unlike [`view_key`], never an imported key's plaintext,
/// so a look at the page is not audited.
pub async fn find_key(operations: Operations<'_>, actor: &Actor, key_id: i64) -> Result<ApiKeyRecord, OperationError> {
    visible_key(operations, actor, key_id).await
}

/// Those of `key_ids` the actor may see, in whichever region this server serves each is in:
/// usage is per account, and its keys are named by their records. Deleted keys and keys the
/// actor may not see are left out.
pub async fn find_keys_in_served_regions(
    operations: Operations<'_>,
    actor: &Actor,
    key_ids: &[i64],
) -> Result<Vec<ApiKeyRecord>, OperationError> {
    let mut found: Vec<ApiKeyRecord> = Vec::new();
    for region in operations.served_regions() {
        for &key_id in key_ids {
            if found.iter().any(|record| record.api_key_id == key_id) {
                continue;
            }
            match operations.store.get_api_key(actor.caller.account_id, &region, key_id, actor.caller.key_visibility()).await {
                Ok(record) => found.push(record),
                Err(StoreError::NotFound(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(found)
}

/// The plaintext of a legacy (imported) key, audited. `None` for other keys, and (logged)
/// when the ciphertext does not decrypt under this master key to the key that was stored.
async fn legacy_plaintext(
    operations: Operations<'_>,
    actor: &Actor,
    record: &ApiKeyRecord,
) -> Result<Option<SecretString>, OperationError> {
    let Some(ciphertext) = record.legacy_ciphertext.as_deref().filter(|_| record.format == KeyFormat::Legacy) else {
        return Ok(None);
    };
    let plaintext = match operations.master_key.decrypt_legacy_key(ciphertext) {
        Ok(plaintext) if mask_key(expose(&plaintext)) == record.masked_key => plaintext,
        Ok(_) => {
            tracing::error!(api_key_id = record.api_key_id, "a legacy key's ciphertext decrypts to another key; answering the masked key");
            return Ok(None);
        }
        Err(error) => {
            tracing::error!(api_key_id = record.api_key_id, %error, "a legacy key's plaintext does not decrypt; answering the masked key");
            return Ok(None);
        }
    };
    operations
        .store
        .record_audit(
            &actor.audit,
            "ApiKey.ViewPlaintext",
            &format!("apiKey:{}", record.api_key_id),
            &format!("masked={}", record.masked_key),
        )
        .await?;
    Ok(Some(plaintext))
}

/// Which keys a list shows, in which order, and which page of them.
#[derive(Debug, Clone)]
pub struct KeyListing {
    pub api_key_id: Option<i64>,
    /// Substring of the description.
    pub description: Option<String>,
    /// A part of the description (in any case) or the start of the key's id.
    pub search: Option<String>,
    pub workspace_id: Option<String>,
    pub order_by: KeyOrder,
    pub descending: bool,
    pub offset: u32,
    pub limit: u32,
}

/// docs/CONTRACT.md#who-sees-a-key: one page of the keys the actor may see in its region, and how many match.
pub async fn list_keys(operations: Operations<'_>, actor: &Actor, listing: KeyListing) -> Result<(Vec<ApiKeyRecord>, u64), OperationError> {
    let query = ListKeysQuery {
        account_id: actor.caller.account_id,
        region: actor.region.clone(),
        visibility: actor.caller.key_visibility(),
        api_key_id: listing.api_key_id,
        description: listing.description,
        search: listing.search,
        workspace_id: listing.workspace_id,
        order_by: listing.order_by,
        descending: listing.descending,
        offset: listing.offset,
        limit: listing.limit,
    };
    Ok(operations.store.list_api_keys(&query).await?)
}

// ---- plan keys ----------------------------------------------------------------------------

/// Plan keys one principal may hold in a region.
pub const PLAN_KEYS_PER_PRINCIPAL: u32 = 1;

/// The principal that will hold a plan key.
struct Holder {
    user_id: Option<i64>,
    name: String,
}

/// `AccountId`: the account (its name or numeric id) or one of its RAM users (by name).
async fn resolve_holder(operations: Operations<'_>, actor: &Actor, account_id: &str) -> Result<Holder, OperationError> {
    let caller = &actor.caller;
    if account_id == caller.account_name || account_id == caller.account_id.to_string() {
        return Ok(Holder { user_id: None, name: caller.account_name.clone() });
    }
    let not_found = || {
        OperationError::invalid_parameter(format!(
            "AccountId '{}' is neither your account ({} or {}) nor one of its RAM users.",
            shown(account_id),
            caller.account_name,
            caller.account_id
        ))
    };
    let user = match operations.store.find_user(caller.account_id, account_id).await {
        Ok(user) => user,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(error) => return Err(error.into()),
    };
    if user.status != keygate_core::access::UserStatus::Active {
        return Err(OperationError::invalid_parameter(format!("RAM user '{}' is disabled; enable it first.", user.name)));
    }
    Ok(Holder { user_id: Some(user.user_id), name: user.name })
}

/// CreateTokenPlanKey: a plan key held by `account_id` (the account or one of its RAM
/// users), in the default workspace of the actor's region. Each principal holds at most
/// [`PLAN_KEYS_PER_PRINCIPAL`] per region; plan keys do not count against the region's
/// pay-as-you-go key limit.
pub async fn create_plan_key(
    operations: Operations<'_>,
    actor: &Actor,
    account_id: &str,
    description: &Description,
) -> Result<IssuedKey, OperationError> {
    // docs/CONTRACT.md#who-may-create-a-key (the default workspace, of which every RAM user is a member).
    actor.caller.may_create_key(true)?;
    let holder = resolve_holder(operations, actor, account_id).await?;
    if holder.user_id != actor.caller.user_id() {
        actor
            .caller
            .may_administer()
            .map_err(|_| OperationError::forbidden("Only the account or an admin RAM user may create a plan key for someone else."))?;
    }
    let workspace = operations.store.default_workspace(actor.caller.account_id, &actor.region).await?;
    let generated = generate_key(KeyFormat::Plan);
    let new_key = NewApiKey {
        region: actor.region.clone(),
        workspace_id: workspace.workspace_id.clone(),
        creator_user_id: holder.user_id,
        created_by: holder.name.clone(),
        description: description.as_str().to_string(),
        format: KeyFormat::Plan,
        digest: generated.digest,
        masked_key: generated.masked.clone(),
        auth: KeyAuth::All,
        legacy_ciphertext: None,
        expires_at: None,
        limits: None,
    };
    // Counted per holder, among plan keys only (the store counts keys of the new key's kind).
    let quota = QuotaRule { limit: PLAN_KEYS_PER_PRINCIPAL, scope: LimitScope::Creator };
    let record = operations.store.create_api_key(&actor.audit, new_key, quota).await.map_err(|error| match error {
        StoreError::KeyQuotaExceeded { .. } => OperationError::new(
            super::ErrorKind::Invalid,
            "QuotaExceeded.TokenPlanKey",
            format!(
                "'{}' already holds a plan key in region {}; replace it with RotateTokenPlanKey (or delete it with DeleteApiKey).",
                holder.name, actor.region
            ),
        ),
        other => other.into(),
    })?;
    Ok(IssuedKey { record, plaintext: generated.plaintext })
}

/// RotateTokenPlanKey: a new secret for the plan key `key_id`; the old one stops working
/// at once (and so do temporary keys minted from it). Pay-as-you-go keys are reset with
/// ResetApiKey: to this operation they do not exist.
pub async fn rotate_plan_key(operations: Operations<'_>, actor: &Actor, key_id: i64) -> Result<IssuedKey, OperationError> {
    let existing = visible_key(operations, actor, key_id).await?;
    if existing.format != KeyFormat::Plan {
        return Err(OperationError::api_key_not_found());
    }
    require_key_action(operations, actor, &existing, KeyAction::Rotate).await?;
    reissue(operations, actor, key_id, KeyFormat::Plan, None).await
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
