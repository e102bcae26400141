//! Workspaces of the actor's account in its region: which ones a caller sees and where it
//! may create keys (the rules are `keygate_core::access`'s), create and delete, membership
//! of RAM users, applications and model grants. A workspace id that does not name a
//! workspace of the account in the region is `Workspace.NotFound`.

use keygate_core::ids::{AppId, WorkspaceId, WorkspaceName};
use keygate_store::{ModelGrant, UserRecord, WorkspaceDeletion, WorkspaceRecord};

use super::{shown, Actor, OperationError, Operations};

type Result<T> = std::result::Result<T, OperationError>;

/// The workspace `workspace_id` names in the actor's account and region; `None`: the
/// default workspace. Another id is refused as input (`InvalidParameter`).
pub async fn resolve_workspace(operations: Operations<'_>, actor: &Actor, workspace_id: Option<&str>) -> Result<WorkspaceRecord> {
    resolve_workspace_in(operations, actor, &actor.region, workspace_id).await
}

/// [`resolve_workspace`] in `region` (an import names its region).
pub async fn resolve_workspace_in(
    operations: Operations<'_>,
    actor: &Actor,
    region: &str,
    workspace_id: Option<&str>,
) -> Result<WorkspaceRecord> {
    match workspace_id {
        None => Ok(operations.store.default_workspace(actor.caller.account_id, region).await?),
        Some(text) => {
            let parsed = WorkspaceId::parse(text)?;
            operations.store.get_workspace(actor.caller.account_id, region, parsed.as_str()).await.map_err(|_| {
                OperationError::invalid_parameter(format!(
                    "workspaceId '{}' is not a workspace of this account in region {region}.",
                    shown(text)
                ))
            })
        }
    }
}

/// The workspace `text` names in the actor's account and region; a malformed id cannot
/// name one, and is answered the same as an unknown one (`Workspace.NotFound`).
pub async fn find_workspace(operations: Operations<'_>, actor: &Actor, text: &str) -> Result<WorkspaceRecord> {
    let workspace_id = WorkspaceId::parse(text).map_err(|_| OperationError::workspace_not_found())?;
    Ok(operations.store.get_workspace(actor.caller.account_id, &actor.region, workspace_id.as_str()).await?)
}

/// Whether the caller is a member of `workspace_id` (the account is a member of all, every
/// RAM user of the default workspace).
pub async fn caller_is_member(operations: Operations<'_>, actor: &Actor, workspace_id: &str) -> Result<bool> {
    match actor.caller.user_id() {
        None => Ok(true),
        Some(user_id) => Ok(operations.store.is_workspace_member(workspace_id, user_id).await?),
    }
}

/// The application ids of a workspace.
pub async fn workspace_app_ids(operations: Operations<'_>, workspace_id: &str) -> Result<Vec<String>> {
    Ok(operations.store.list_applications(workspace_id).await?.into_iter().map(|(app_id, _)| app_id).collect())
}

/// The sub-workspaces the caller is a member of (none for the account itself).
async fn memberships(operations: Operations<'_>, actor: &Actor) -> Result<Vec<String>> {
    match actor.caller.user_id() {
        None => Ok(Vec::new()),
        Some(user_id) => Ok(operations.store.user_by_id(actor.caller.account_id, user_id).await?.workspace_ids),
    }
}

/// The workspaces of the region the caller sees ([`keygate_core::access::Caller::may_see_workspace`]),
/// optionally only those with this id or name.
pub async fn visible_workspaces(
    operations: Operations<'_>,
    actor: &Actor,
    workspace_id: Option<&str>,
    workspace_name: Option<&str>,
) -> Result<Vec<WorkspaceRecord>> {
    let mut workspaces = operations.store.list_workspaces(actor.caller.account_id, &actor.region, workspace_id, workspace_name).await?;
    if !actor.caller.sees_every_workspace() {
        let member_of = memberships(operations, actor).await?;
        workspaces.retain(|workspace| actor.caller.may_see_workspace(workspace.is_default, member_of.contains(&workspace.workspace_id)));
    }
    Ok(workspaces)
}

/// The workspaces of the region the caller may create keys in
/// ([`keygate_core::access::Caller::may_create_keys_in`]), each with its applications.
pub async fn key_workspaces(operations: Operations<'_>, actor: &Actor) -> Result<Vec<(WorkspaceRecord, Vec<(String, String)>)>> {
    let mut workspaces = operations.store.list_workspaces(actor.caller.account_id, &actor.region, None, None).await?;
    if !actor.caller.is_account() {
        let member_of = memberships(operations, actor).await?;
        workspaces.retain(|workspace| actor.caller.may_create_keys_in(workspace.is_default, member_of.contains(&workspace.workspace_id)));
    }
    let mut choices = Vec::with_capacity(workspaces.len());
    for workspace in workspaces {
        let applications = operations.store.list_applications(&workspace.workspace_id).await?;
        choices.push((workspace, applications));
    }
    Ok(choices)
}

/// A workspace of the region as an administrator sees it: its model grants and applications.
#[derive(Debug, Clone)]
pub struct WorkspaceDetail {
    pub record: WorkspaceRecord,
    pub grants: Vec<ModelGrant>,
    pub applications: Vec<(String, String)>,
}

/// Every workspace of the region with its grants and applications, and the region's
/// workspace limit (administrators only).
pub async fn workspace_details(operations: Operations<'_>, actor: &Actor) -> Result<(Vec<WorkspaceDetail>, u32)> {
    actor.caller.may_administer()?;
    let records = operations.store.list_workspaces(actor.caller.account_id, &actor.region, None, None).await?;
    let mut details = Vec::with_capacity(records.len());
    for record in records {
        let grants = operations.store.list_model_grants(&record.workspace_id).await?;
        let applications = operations.store.list_applications(&record.workspace_id).await?;
        details.push(WorkspaceDetail { record, grants, applications });
    }
    let limit = actor.region_policy(&operations)?.workspace_limit;
    Ok((details, limit))
}

/// A new sub-workspace, within the region's workspace limit (administrators only).
pub async fn create_workspace(operations: Operations<'_>, actor: &Actor, name: &WorkspaceName) -> Result<WorkspaceRecord> {
    actor.caller.may_administer()?;
    let policy = actor.region_policy(&operations)?;
    Ok(operations.store.create_workspace(&actor.audit, name.as_str(), policy.workspace_limit).await?)
}

/// Deletes a sub-workspace, or says why it cannot be (administrators only).
pub async fn delete_workspace(operations: Operations<'_>, actor: &Actor, text: &str) -> Result<WorkspaceDeletion> {
    actor.caller.may_administer()?;
    let workspace_id = WorkspaceId::parse(text).map_err(|_| OperationError::workspace_not_found())?;
    Ok(operations.store.delete_workspace(&actor.audit, workspace_id.as_str()).await?)
}

/// Members: every RAM user for the default workspace, else those added to it
/// (administrators only).
pub async fn members(operations: Operations<'_>, actor: &Actor, workspace: &WorkspaceRecord) -> Result<Vec<UserRecord>> {
    actor.caller.may_administer()?;
    let users = operations.store.list_users(actor.caller.account_id).await?;
    Ok(users.into_iter().filter(|user| workspace.is_default || user.workspace_ids.contains(&workspace.workspace_id)).collect())
}

/// Adds (`add`) or removes the RAM user `user_name` to or from a sub-workspace: its keys
/// there work, or stop working (administrators only).
pub async fn change_membership(
    operations: Operations<'_>,
    actor: &Actor,
    workspace: &WorkspaceRecord,
    user_name: &str,
    add: bool,
) -> Result<()> {
    actor.caller.may_administer()?;
    let store = operations.store;
    if add {
        store.add_workspace_member(&actor.audit, &workspace.workspace_id, user_name).await?;
    } else {
        store.remove_workspace_member(&actor.audit, &workspace.workspace_id, user_name).await?;
    }
    Ok(())
}

/// Refuses a caller that may not see `workspace` (a RAM user who neither administers nor
/// is a member).
async fn require_visible(operations: Operations<'_>, actor: &Actor, workspace: &WorkspaceRecord) -> Result<()> {
    if actor.caller.sees_every_workspace() {
        return Ok(());
    }
    let is_member = caller_is_member(operations, actor, &workspace.workspace_id).await?;
    if !actor.caller.may_see_workspace(workspace.is_default, is_member) {
        return Err(OperationError::forbidden("You are not a member of this workspace."));
    }
    Ok(())
}

/// The applications of a workspace the caller sees, as (app id, name).
pub async fn applications(operations: Operations<'_>, actor: &Actor, workspace: &WorkspaceRecord) -> Result<Vec<(String, String)>> {
    require_visible(operations, actor, workspace).await?;
    Ok(operations.store.list_applications(&workspace.workspace_id).await?)
}

/// Most characters in an application name.
pub const MAX_APPLICATION_NAME_CHARACTERS: usize = 64;

/// An application name: 1 to 64 characters after trimming, no control characters. `None`:
/// not a name (each surface says so in its own words).
pub fn application_name(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let count = trimmed.chars().count();
    (count > 0 && count <= MAX_APPLICATION_NAME_CHARACTERS && !trimmed.chars().any(char::is_control)).then(|| trimmed.to_string())
}

/// Registers an application (a name checked by [`application_name`]) in a workspace
/// (administrators only); answers its new id.
pub async fn create_application(operations: Operations<'_>, actor: &Actor, workspace: &WorkspaceRecord, name: &str) -> Result<AppId> {
    actor.caller.may_administer()?;
    let app_id = AppId::generate();
    operations.store.create_application(&actor.audit, &workspace.workspace_id, app_id.as_str(), name).await?;
    Ok(app_id)
}

/// The model grants of a workspace the caller sees. The default workspace may call every
/// model, whatever its rows say.
pub async fn model_grants(operations: Operations<'_>, actor: &Actor, workspace: &WorkspaceRecord) -> Result<Vec<ModelGrant>> {
    require_visible(operations, actor, workspace).await?;
    Ok(operations.store.list_model_grants(&workspace.workspace_id).await?)
}

/// The default workspace may call every model; its grants never change.
fn refuse_default(workspace: &WorkspaceRecord) -> Result<()> {
    if workspace.is_default {
        return Err(OperationError::invalid_parameter("The default workspace may call every model; its permissions cannot be changed."));
    }
    Ok(())
}

/// Replaces the grants of a sub-workspace for the models in `grants` (administrators only).
pub async fn update_model_grants(
    operations: Operations<'_>,
    actor: &Actor,
    workspace: &WorkspaceRecord,
    grants: &[ModelGrant],
) -> Result<()> {
    actor.caller.may_administer()?;
    refuse_default(workspace)?;
    Ok(operations.store.update_model_grants(&actor.audit, &workspace.workspace_id, grants).await?)
}

/// Inference for exactly the `models` named, of every model of the catalog (deploy and
/// fine-tune grants are kept), in a sub-workspace (administrators only).
pub async fn set_inference_models(operations: Operations<'_>, actor: &Actor, workspace: &WorkspaceRecord, models: &[&str]) -> Result<()> {
    actor.caller.may_administer()?;
    refuse_default(workspace)?;
    let catalog = operations.catalog;
    if let Some(unknown) = models.iter().find(|model| !catalog.contains(model)) {
        return Err(OperationError::invalid_parameter(format!("There is no model named '{}'.", shown(unknown))));
    }
    let existing = operations.store.list_model_grants(&workspace.workspace_id).await?;
    let grants: Vec<ModelGrant> = catalog
        .iter()
        .map(|model| {
            let previous = existing.iter().find(|grant| grant.model == model.name);
            ModelGrant {
                model: model.name.clone(),
                inference: models.contains(&model.name.as_str()),
                deploy: previous.is_some_and(|grant| grant.deploy),
                fine_tune: previous.is_some_and(|grant| grant.fine_tune),
            }
        })
        .collect();
    Ok(operations.store.update_model_grants(&actor.audit, &workspace.workspace_id, &grants).await?)
}

/// What a key of the workspace `workspace_id` may call through its workspace: `None` for
/// the default workspace (every model of the catalog), else the models granted to it with
/// `inference`, in the catalog's order.
pub async fn inference_models(operations: Operations<'_>, actor: &Actor, workspace_id: &str) -> Result<Option<Vec<String>>> {
    let workspace = operations.store.get_workspace(actor.caller.account_id, &actor.region, workspace_id).await?;
    if workspace.is_default {
        return Ok(None);
    }
    let grants = operations.store.list_model_grants(&workspace.workspace_id).await?;
    let granted = |name: &str| grants.iter().any(|grant| grant.model == name && grant.inference);
    Ok(Some(operations.catalog.iter().filter(|model| granted(&model.name)).map(|model| model.name.clone()).collect()))
}

/// One model granted to a sub-workspace with `inference` (administrators only); its deploy
/// and fine-tune grants are kept. Audited as `Workspace.UpdateModelPermissions`.
pub async fn grant_model(operations: Operations<'_>, actor: &Actor, workspace: &WorkspaceRecord, model: &str) -> Result<()> {
    set_model_inference(operations, actor, workspace, model, true).await
}

/// One model's `inference` grant taken back from a sub-workspace (administrators only): its
/// keys' calls for it are refused from the change's version on. A model not granted is
/// refused. Audited as `Workspace.UpdateModelPermissions` with `inference=false`.
pub async fn revoke_model(operations: Operations<'_>, actor: &Actor, workspace: &WorkspaceRecord, model: &str) -> Result<()> {
    set_model_inference(operations, actor, workspace, model, false).await
}

async fn set_model_inference(
    operations: Operations<'_>,
    actor: &Actor,
    workspace: &WorkspaceRecord,
    model: &str,
    inference: bool,
) -> Result<()> {
    actor.caller.may_administer()?;
    refuse_default(workspace)?;
    if !operations.catalog.contains(model) {
        return Err(OperationError::invalid_parameter(format!("There is no model named '{}'.", shown(model))));
    }
    let existing = operations.store.list_model_grants(&workspace.workspace_id).await?;
    let previous = existing.iter().find(|grant| grant.model == model);
    if !inference && !previous.is_some_and(|grant| grant.inference) {
        return Err(OperationError::invalid_parameter(format!("The model '{model}' is not granted to the workspace {}.", workspace.name)));
    }
    let grant = ModelGrant {
        model: model.to_string(),
        inference,
        deploy: previous.is_some_and(|grant| grant.deploy),
        fine_tune: previous.is_some_and(|grant| grant.fine_tune),
    };
    Ok(operations.store.update_model_grants(&actor.audit, &workspace.workspace_id, &[grant]).await?)
}
