//! Model limits per workspace and model (ListModelLimits, UpdateModelLimits;
//! docs/CONTRACT.md#model-limits): a workspace's own limits beside the platform default of
//! the catalog (`[[model_limits]]`). Those who see a workspace see its limits; only the
//! account and admins change them (`keygate_core::access`'s rule for administering
//! workspaces). The rules of a change are `keygate_core::limits`'; the store applies a
//! batch all or nothing, audited, and publishes it to the gateway.

use keygate_core::catalog::CatalogModel;
use keygate_core::limits::{LimitChange, LimitValues};

use super::workspaces::model_grants;
use super::{shown, Actor, OperationError, Operations, Result, WorkspaceRecord};

/// Most items of one UpdateModelLimits.
pub const MAX_CHANGES: usize = 200;

/// One model of ListModelLimits: the platform default and the workspace's own limit.
#[derive(Debug, Clone)]
pub struct ListedLimit {
    pub model: CatalogModel,
    pub workspace_limit: Option<LimitValues>,
}

/// ListModelLimits' filters: `model` exactly, `name` a part of the display name in any case.
#[derive(Debug, Clone, Default)]
pub struct LimitListing {
    pub model: Option<String>,
    pub name: Option<String>,
}

/// The models the workspace may call (and any it sets a limit for), in catalog order, with
/// their limits; for a caller that sees the workspace.
pub async fn list_model_limits(
    operations: Operations<'_>,
    actor: &Actor,
    workspace: &WorkspaceRecord,
    listing: &LimitListing,
) -> Result<Vec<ListedLimit>> {
    let grants = model_grants(operations, actor, workspace).await?;
    let limits = operations.store.list_model_limits(&workspace.workspace_id).await?;
    let name = listing.name.as_deref().map(str::to_lowercase);
    let mut listed = Vec::new();
    for model in operations.catalog().iter() {
        let workspace_limit = limits.iter().find(|(name, _)| *name == model.name).map(|(_, values)| *values);
        let callable = workspace.is_default || grants.iter().any(|grant| grant.model == model.name && grant.inference);
        let matches = listing.model.as_deref().is_none_or(|wanted| wanted == model.name)
            && name.as_deref().is_none_or(|wanted| model.display_name.to_lowercase().contains(wanted));
        if (callable || workspace_limit.is_some()) && matches {
            listed.push(ListedLimit { model: model.clone(), workspace_limit });
        }
    }
    Ok(listed)
}

/// Applies `changes` (model, change) to a workspace's limits, in order, all or none
/// (administrators only): 1 to [`MAX_CHANGES`] items, each naming a model of the catalog.
pub async fn update_model_limits(
    operations: Operations<'_>,
    actor: &Actor,
    workspace: &WorkspaceRecord,
    changes: &[(String, LimitChange)],
) -> Result<()> {
    actor.caller.may_administer()?;
    if changes.is_empty() || changes.len() > MAX_CHANGES {
        return Err(OperationError::invalid_parameter(format!("workspaceLimits must hold 1 to {MAX_CHANGES} items.")));
    }
    for (index, (model, _)) in changes.iter().enumerate() {
        if !operations.catalog().contains(model) {
            return Err(OperationError::invalid_parameter(format!(
                "workspaceLimits[{index}]: there is no model named '{}'.",
                shown(model)
            )));
        }
    }
    Ok(operations.store.update_model_limits(&actor.audit, &workspace.workspace_id, changes).await?)
}
