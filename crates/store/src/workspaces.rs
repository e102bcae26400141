//! Workspaces (the default one per account and region, and sub-workspaces under the
//! region's limit), model grants (UpdateModelPermissions) and applications.

use keygate_core::ids::WorkspaceId;

use crate::audit::{write_audit, AuditContext};
use crate::compile;
use crate::database::{params, Row, Transaction};
use crate::{Change, Missing, Store, StoreError};

/// Name given to every default workspace.
pub const DEFAULT_WORKSPACE_NAME: &str = "Default workspace";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRecord {
    pub workspace_id: String,
    pub account_id: i64,
    pub region: String,
    pub name: String,
    pub is_default: bool,
    pub created_at: i64,
}

/// A model's permissions in one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelGrant {
    pub model: String,
    pub inference: bool,
    pub deploy: bool,
    pub fine_tune: bool,
}

/// The outcome of DeleteWorkspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceDeletion {
    Deleted,
    /// Not deleted, with (reason, resource type) pairs.
    Refused(Vec<(String, String)>),
}

fn workspace_from_row(row: &Row) -> Result<WorkspaceRecord, StoreError> {
    Ok(WorkspaceRecord {
        workspace_id: row.string("workspace_id")?,
        account_id: row.i64("account_id")?,
        region: row.string("region")?,
        name: row.string("name")?,
        is_default: row.boolean("is_default")?,
        created_at: row.i64("created_at")?,
    })
}

const WORKSPACE_COLUMNS: &str = "workspace_id, account_id, region, name, is_default, created_at";

impl Store {
    /// Creates the account's default workspace in each region that lacks one, at `now`
    /// (Unix ms).
    pub async fn ensure_default_workspaces(&self, account_id: i64, regions: &[String], now: i64) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_change().await?;
        transaction.lock_account(account_id).await?;
        let mut created = Vec::new();
        for region in regions {
            let exists = transaction
                .fetch_one(
                    "SELECT EXISTS (SELECT 1 FROM workspaces WHERE account_id = $1 AND region = $2 AND is_default) AS present",
                    &params![account_id, region],
                )
                .await?
                .boolean("present")?;
            if !exists {
                let workspace_id = WorkspaceId::generate();
                transaction
                    .execute(
                        "INSERT INTO workspaces (workspace_id, account_id, region, name, is_default, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                        &params![workspace_id.as_str(), account_id, region, DEFAULT_WORKSPACE_NAME, true, now],
                    )
                    .await?;
                created.push(workspace_id);
            }
        }
        if created.is_empty() {
            return Ok(());
        }
        let version =
            Self::record_change(&mut transaction, Change { at: now, kind: "workspace", subject: "defaults", revoked: &[] }).await?;
        let mut updates = Vec::new();
        for workspace_id in &created {
            updates.push(compile::workspace_grants(&mut transaction, workspace_id.as_str()).await?);
        }
        transaction.commit().await?;
        self.publish(version, updates);
        Ok(())
    }

    /// Records a change of `workspace_id` at `at` in the change feed, commits `transaction`
    /// and publishes the workspace's recompiled grants (and limits) to the registry.
    pub(crate) async fn commit_workspace_change(
        &self,
        mut transaction: Transaction,
        at: i64,
        workspace_id: &str,
    ) -> Result<(), StoreError> {
        let version = Self::record_change(&mut transaction, Change { at, kind: "workspace", subject: workspace_id, revoked: &[] }).await?;
        let update = compile::workspace_grants(&mut transaction, workspace_id).await?;
        transaction.commit().await?;
        self.publish(version, vec![update]);
        Ok(())
    }

    /// The account's default workspace in `region`: read once, then from this store's copy
    /// (see [`Store`]'s `default_workspaces`).
    pub async fn default_workspace(&self, account_id: i64, region: &str) -> Result<WorkspaceRecord, StoreError> {
        let known = self
            .default_workspaces
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(account_id, region.to_string()))
            .cloned();
        if let Some(workspace) = known {
            return Ok(workspace);
        }
        let row = self
            .database
            .fetch_optional(
                &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE account_id = $1 AND region = $2 AND is_default"),
                &params![account_id, region],
            )
            .await?
            .ok_or(StoreError::NotFound(Missing::Workspace))?;
        let workspace = workspace_from_row(&row)?;
        self.default_workspaces
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((account_id, region.to_string()), workspace.clone());
        Ok(workspace)
    }

    /// A workspace of the account in `region`.
    pub async fn get_workspace(&self, account_id: i64, region: &str, workspace_id: &str) -> Result<WorkspaceRecord, StoreError> {
        let row = self
            .database
            .fetch_optional(
                &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE account_id = $1 AND region = $2 AND workspace_id = $3"),
                &params![account_id, region, workspace_id],
            )
            .await?
            .ok_or(StoreError::NotFound(Missing::Workspace))?;
        workspace_from_row(&row)
    }

    /// Workspaces of the account in `region`, optionally filtered, default first.
    pub async fn list_workspaces(
        &self,
        account_id: i64,
        region: &str,
        workspace_id: Option<&str>,
        name_contains: Option<&str>,
    ) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let dialect = self.database.dialect();
        let mut values = params![account_id, region].to_vec();
        let mut conditions = "account_id = $1 AND region = $2".to_string();
        if let Some(workspace_id) = workspace_id {
            values.push(workspace_id.into());
            conditions.push_str(&format!(" AND workspace_id = ${}", values.len()));
        }
        if let Some(name) = name_contains {
            values.push(name.into());
            conditions.push_str(&format!(" AND {}", dialect.contains("name", &format!("${}", values.len()))));
        }
        let rows = self
            .database
            .fetch_all(
                &format!(
                    "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE {conditions} ORDER BY is_default DESC, created_at, workspace_id"
                ),
                &values,
            )
            .await?;
        rows.iter().map(workspace_from_row).collect()
    }

    /// Creates a sub-workspace under the region's limit (the default one counts).
    pub async fn create_workspace(&self, context: &AuditContext, name: &str, limit: u32) -> Result<WorkspaceRecord, StoreError> {
        let mut transaction = self.database.begin_change().await?;
        transaction.lock_account(context.account_id).await?;
        let existing = transaction
            .fetch_one(
                "SELECT COUNT(*) AS n FROM workspaces WHERE account_id = $1 AND region = $2",
                &params![context.account_id, &context.region],
            )
            .await?
            .i64("n")?;
        if existing >= i64::from(limit) {
            return Err(StoreError::WorkspaceQuotaExceeded { limit });
        }
        let workspace_id = WorkspaceId::generate();
        let inserted = transaction
            .fetch_one(
                &format!("INSERT INTO workspaces (workspace_id, account_id, region, name, is_default, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {WORKSPACE_COLUMNS}"),
                &params![workspace_id.as_str(), context.account_id, &context.region, name, false, context.at],
            )
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(error) if error.is_unique_violation() => {
                return Err(StoreError::Conflict(format!("a workspace named '{name}' already exists in this region")))
            }
            Err(error) => return Err(error),
        };
        write_audit(&mut transaction, context, "Workspace.Create", &format!("workspace:{workspace_id}"), &format!("name={name}")).await?;
        let version = Self::record_change(
            &mut transaction,
            Change { at: context.at, kind: "workspace", subject: workspace_id.as_str(), revoked: &[] },
        )
        .await?;
        let update = compile::workspace_grants(&mut transaction, workspace_id.as_str()).await?;
        transaction.commit().await?;
        self.publish(version, vec![update]);
        workspace_from_row(&row)
    }

    /// Deletes an empty sub-workspace; the default one and one with keys are refused.
    pub async fn delete_workspace(&self, context: &AuditContext, workspace_id: &str) -> Result<WorkspaceDeletion, StoreError> {
        let mut transaction = self.database.begin_change().await?;
        let is_default = transaction
            .fetch_optional(
                "SELECT is_default FROM workspaces WHERE account_id = $1 AND region = $2 AND workspace_id = $3",
                &params![context.account_id, &context.region, workspace_id],
            )
            .await?
            .ok_or(StoreError::NotFound(Missing::Workspace))?
            .boolean("is_default")?;
        let mut reasons = Vec::new();
        if is_default {
            reasons.push(("The default workspace cannot be deleted.".to_string(), "Workspace".to_string()));
        }
        let keys =
            transaction.fetch_one("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = $1", &params![workspace_id]).await?.i64("n")?;
        if keys > 0 {
            reasons.push((format!("The workspace still has {keys} API key(s); delete them first."), "ApiKey".to_string()));
        }
        if !reasons.is_empty() {
            return Ok(WorkspaceDeletion::Refused(reasons));
        }
        transaction.execute("DELETE FROM workspaces WHERE workspace_id = $1", &params![workspace_id]).await?;
        write_audit(&mut transaction, context, "Workspace.Delete", &format!("workspace:{workspace_id}"), "").await?;
        self.commit_workspace_change(transaction, context.at, workspace_id).await?;
        Ok(WorkspaceDeletion::Deleted)
    }

    pub async fn list_model_grants(&self, workspace_id: &str) -> Result<Vec<ModelGrant>, StoreError> {
        let rows = self
            .database
            .fetch_all(
                "SELECT model, inference, deploy, fine_tune FROM model_grants WHERE workspace_id = $1 ORDER BY model",
                &params![workspace_id],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ModelGrant {
                    model: row.string("model")?,
                    inference: row.boolean("inference")?,
                    deploy: row.boolean("deploy")?,
                    fine_tune: row.boolean("fine_tune")?,
                })
            })
            .collect()
    }

    /// Sets the given models' permissions in a workspace (others unchanged).
    pub async fn update_model_grants(&self, context: &AuditContext, workspace_id: &str, grants: &[ModelGrant]) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_change().await?;
        for grant in grants {
            transaction
                .execute(
                    "INSERT INTO model_grants (workspace_id, model, inference, deploy, fine_tune) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, model) DO UPDATE SET inference = excluded.inference, deploy = excluded.deploy, fine_tune = excluded.fine_tune",
                    &params![workspace_id, &grant.model, grant.inference, grant.deploy, grant.fine_tune],
                )
                .await?;
        }
        let detail = grants.iter().map(|grant| format!("{}:inference={}", grant.model, grant.inference)).collect::<Vec<_>>().join(",");
        write_audit(&mut transaction, context, "Workspace.UpdateModelPermissions", &format!("workspace:{workspace_id}"), &detail).await?;
        self.commit_workspace_change(transaction, context.at, workspace_id).await?;
        Ok(())
    }

    /// Application ids and names of a workspace.
    pub async fn list_applications(&self, workspace_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .database
            .fetch_all("SELECT app_id, name FROM applications WHERE workspace_id = $1 ORDER BY created_at, app_id", &params![workspace_id])
            .await?;
        rows.iter().map(|row| Ok((row.string("app_id")?, row.string("name")?))).collect()
    }

    /// Registers an application in a workspace.
    pub async fn create_application(&self, context: &AuditContext, workspace_id: &str, app_id: &str, name: &str) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_change().await?;
        let inserted = transaction
            .execute(
                "INSERT INTO applications (app_id, account_id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4, $5)",
                &params![app_id, context.account_id, workspace_id, name, context.at],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => return Err(StoreError::Conflict(format!("application {app_id} already exists"))),
            Err(error) => return Err(error),
        }
        write_audit(&mut transaction, context, "Application.Create", &format!("app:{app_id}"), &format!("workspace={workspace_id}"))
            .await?;
        self.commit_workspace_change(transaction, context.at, workspace_id).await?;
        Ok(())
    }
}
