//! Workspaces (the default one per account and region, and sub-workspaces under the
//! region's limit), model grants (UpdateModelPermissions) and applications.

use keygate_core::ids::WorkspaceId;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::audit::{write_audit, AuditContext};
use crate::compile;
use crate::error::is_unique_violation;
use crate::{now_millis, Store, StoreError};

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

fn workspace_from_row(row: &SqliteRow) -> WorkspaceRecord {
    WorkspaceRecord {
        workspace_id: row.get("workspace_id"),
        account_id: row.get("account_id"),
        region: row.get("region"),
        name: row.get("name"),
        is_default: row.get("is_default"),
        created_at: row.get("created_at"),
    }
}

const WORKSPACE_COLUMNS: &str = "workspace_id, account_id, region, name, is_default, created_at";

impl Store {
    /// Creates the account's default workspace in each region that lacks one.
    pub async fn ensure_default_workspaces(&self, account_id: i64, regions: &[String]) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut created = Vec::new();
        for region in regions {
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM workspaces WHERE account_id = ? AND region = ? AND is_default = 1)")
                .bind(account_id)
                .bind(region)
                .fetch_one(&mut *transaction)
                .await?;
            if !exists {
                let workspace_id = WorkspaceId::generate();
                sqlx::query("INSERT INTO workspaces (workspace_id, account_id, region, name, is_default, created_at) VALUES (?, ?, ?, ?, 1, ?)")
                    .bind(workspace_id.as_str())
                    .bind(account_id)
                    .bind(region)
                    .bind(DEFAULT_WORKSPACE_NAME)
                    .bind(now_millis())
                    .execute(&mut *transaction)
                    .await?;
                created.push(workspace_id);
            }
        }
        if created.is_empty() {
            return Ok(());
        }
        let version = Self::record_change(&mut transaction, "workspace", "defaults").await?;
        let mut updates = Vec::new();
        for workspace_id in &created {
            updates.push(compile::workspace_grants(&mut transaction, workspace_id.as_str()).await?);
        }
        transaction.commit().await?;
        self.publish(version, updates);
        Ok(())
    }

    pub async fn default_workspace(&self, account_id: i64, region: &str) -> Result<WorkspaceRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE account_id = ? AND region = ? AND is_default = 1"))
            .bind(account_id)
            .bind(region)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound("Workspace"))?;
        Ok(workspace_from_row(&row))
    }

    /// A workspace of the account in `region`.
    pub async fn get_workspace(&self, account_id: i64, region: &str, workspace_id: &str) -> Result<WorkspaceRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE account_id = ? AND region = ? AND workspace_id = ?"))
            .bind(account_id)
            .bind(region)
            .bind(workspace_id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound("Workspace"))?;
        Ok(workspace_from_row(&row))
    }

    /// Workspaces of the account in `region`, optionally filtered, default first.
    pub async fn list_workspaces(&self, account_id: i64, region: &str, workspace_id: Option<&str>, name_contains: Option<&str>) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE account_id = ? AND region = ? AND (? IS NULL OR workspace_id = ?) AND (? IS NULL OR instr(name, ?) > 0) ORDER BY is_default DESC, created_at, workspace_id"
        ))
        .bind(account_id)
        .bind(region)
        .bind(workspace_id)
        .bind(workspace_id)
        .bind(name_contains)
        .bind(name_contains)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(workspace_from_row).collect())
    }

    /// Creates a sub-workspace under the region's limit (the default one counts).
    pub async fn create_workspace(&self, context: &AuditContext, name: &str, limit: u32) -> Result<WorkspaceRecord, StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspaces WHERE account_id = ? AND region = ?")
            .bind(context.account_id)
            .bind(&context.region)
            .fetch_one(&mut *transaction)
            .await?;
        if existing >= i64::from(limit) {
            return Err(StoreError::WorkspaceQuotaExceeded { limit });
        }
        let workspace_id = WorkspaceId::generate();
        let inserted = sqlx::query(&format!("INSERT INTO workspaces (workspace_id, account_id, region, name, is_default, created_at) VALUES (?, ?, ?, ?, 0, ?) RETURNING {WORKSPACE_COLUMNS}"))
            .bind(workspace_id.as_str())
            .bind(context.account_id)
            .bind(&context.region)
            .bind(name)
            .bind(now_millis())
            .fetch_one(&mut *transaction)
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(error) if is_unique_violation(&error) => return Err(StoreError::Conflict(format!("a workspace named '{name}' already exists in this region"))),
            Err(error) => return Err(error.into()),
        };
        write_audit(&mut transaction, context, "Workspace.Create", &format!("workspace:{workspace_id}"), &format!("name={name}")).await?;
        let version = Self::record_change(&mut transaction, "workspace", workspace_id.as_str()).await?;
        let update = compile::workspace_grants(&mut transaction, workspace_id.as_str()).await?;
        transaction.commit().await?;
        self.publish(version, vec![update]);
        Ok(workspace_from_row(&row))
    }

    /// Deletes an empty sub-workspace; the default one and one with keys are refused.
    pub async fn delete_workspace(&self, context: &AuditContext, workspace_id: &str) -> Result<WorkspaceDeletion, StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let is_default: bool = sqlx::query_scalar("SELECT is_default FROM workspaces WHERE account_id = ? AND region = ? AND workspace_id = ?")
            .bind(context.account_id)
            .bind(&context.region)
            .bind(workspace_id)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or(StoreError::NotFound("Workspace"))?;
        let mut reasons = Vec::new();
        if is_default {
            reasons.push(("The default workspace cannot be deleted.".to_string(), "Workspace".to_string()));
        }
        let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE workspace_id = ?").bind(workspace_id).fetch_one(&mut *transaction).await?;
        if keys > 0 {
            reasons.push((format!("The workspace still has {keys} API key(s); delete them first."), "ApiKey".to_string()));
        }
        if !reasons.is_empty() {
            return Ok(WorkspaceDeletion::Refused(reasons));
        }
        sqlx::query("DELETE FROM workspaces WHERE workspace_id = ?").bind(workspace_id).execute(&mut *transaction).await?;
        write_audit(&mut transaction, context, "Workspace.Delete", &format!("workspace:{workspace_id}"), "").await?;
        let version = Self::record_change(&mut transaction, "workspace", workspace_id).await?;
        let update = compile::workspace_grants(&mut transaction, workspace_id).await?;
        transaction.commit().await?;
        self.publish(version, vec![update]);
        Ok(WorkspaceDeletion::Deleted)
    }

    pub async fn list_model_grants(&self, workspace_id: &str) -> Result<Vec<ModelGrant>, StoreError> {
        let rows = sqlx::query("SELECT model, inference, deploy, fine_tune FROM model_grants WHERE workspace_id = ? ORDER BY model").bind(workspace_id).fetch_all(&self.reader).await?;
        Ok(rows.iter().map(|row| ModelGrant { model: row.get("model"), inference: row.get("inference"), deploy: row.get("deploy"), fine_tune: row.get("fine_tune") }).collect())
    }

    /// Sets the given models' permissions in a workspace (others unchanged).
    pub async fn update_model_grants(&self, context: &AuditContext, workspace_id: &str, grants: &[ModelGrant]) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for grant in grants {
            sqlx::query("INSERT INTO model_grants (workspace_id, model, inference, deploy, fine_tune) VALUES (?, ?, ?, ?, ?) ON CONFLICT(workspace_id, model) DO UPDATE SET inference = excluded.inference, deploy = excluded.deploy, fine_tune = excluded.fine_tune")
                .bind(workspace_id)
                .bind(&grant.model)
                .bind(grant.inference)
                .bind(grant.deploy)
                .bind(grant.fine_tune)
                .execute(&mut *transaction)
                .await?;
        }
        let detail = grants.iter().map(|grant| format!("{}:inference={}", grant.model, grant.inference)).collect::<Vec<_>>().join(",");
        write_audit(&mut transaction, context, "Workspace.UpdateModelPermissions", &format!("workspace:{workspace_id}"), &detail).await?;
        let version = Self::record_change(&mut transaction, "workspace", workspace_id).await?;
        let update = compile::workspace_grants(&mut transaction, workspace_id).await?;
        transaction.commit().await?;
        self.publish(version, vec![update]);
        Ok(())
    }

    /// Application ids of a workspace.
    pub async fn list_applications(&self, workspace_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT app_id, name FROM applications WHERE workspace_id = ? ORDER BY created_at, app_id").bind(workspace_id).fetch_all(&self.reader).await?;
        Ok(rows.iter().map(|row| (row.get("app_id"), row.get("name"))).collect())
    }

    /// Registers an application in a workspace.
    pub async fn create_application(&self, context: &AuditContext, workspace_id: &str, app_id: &str, name: &str) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = sqlx::query("INSERT INTO applications (app_id, account_id, workspace_id, name, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(app_id)
            .bind(context.account_id)
            .bind(workspace_id)
            .bind(name)
            .bind(now_millis())
            .execute(&mut *transaction)
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Err(StoreError::Conflict(format!("application {app_id} already exists"))),
            Err(error) => return Err(error.into()),
        }
        write_audit(&mut transaction, context, "Application.Create", &format!("app:{app_id}"), &format!("workspace={workspace_id}")).await?;
        let version = Self::record_change(&mut transaction, "workspace", workspace_id).await?;
        let update = compile::workspace_grants(&mut transaction, workspace_id).await?;
        transaction.commit().await?;
        self.publish(version, vec![update]);
        Ok(())
    }
}
