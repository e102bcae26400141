//! Accounts and their RAM users: creation, roles, disable/enable, final deletion (which
//! deletes the user's keys), workspace membership, and the lookups behind logins.

use keygate_core::access::{Caller, CallerIdentity, Role, UserStatus};
use keygate_core::keys::KeyDigest;
use keygate_core::verification::RegistryUpdate;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::audit::{write_audit, AuditContext};
use crate::compile;
use crate::error::is_unique_violation;
use crate::{now_millis, Store, StoreError};

/// An account (the owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account_id: i64,
    pub name: String,
    pub password_hash: String,
    pub created_at: i64,
}

/// A RAM user that is not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user_id: i64,
    pub account_id: i64,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub password_hash: Option<String>,
    pub created_at: i64,
    /// Sub-workspaces the user is a member of (the default workspace is implicit).
    pub workspace_ids: Vec<String>,
}

fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let role: String = row.get("role");
    let status: String = row.get("status");
    Ok(UserRecord {
        user_id: row.get("user_id"),
        account_id: row.get("account_id"),
        name: row.get("name"),
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        status: UserStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        password_hash: row.get("password_hash"),
        created_at: row.get("created_at"),
        workspace_ids: Vec::new(),
    })
}

const USER_COLUMNS: &str = "user_id, account_id, name, role, status, password_hash, created_at";

impl Store {
    /// Creates the account if it does not exist; returns it and whether it was created.
    pub async fn ensure_account(&self, name: &str, password_hash: &str) -> Result<(AccountRecord, bool), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let created = sqlx::query("INSERT INTO accounts (name, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING")
            .bind(name)
            .bind(password_hash)
            .bind(now_millis())
            .execute(&mut *transaction)
            .await?
            .rows_affected()
            == 1;
        transaction.commit().await?;
        let account = self.find_account(name).await?.ok_or(StoreError::NotFound("Account"))?;
        Ok((account, created))
    }

    pub async fn find_account(&self, name: &str) -> Result<Option<AccountRecord>, StoreError> {
        let row = sqlx::query("SELECT account_id, name, password_hash, created_at FROM accounts WHERE name = ?").bind(name).fetch_optional(&self.reader).await?;
        Ok(row.map(|row| AccountRecord { account_id: row.get("account_id"), name: row.get("name"), password_hash: row.get("password_hash"), created_at: row.get("created_at") }))
    }

    pub async fn account_by_id(&self, account_id: i64) -> Result<AccountRecord, StoreError> {
        let row = sqlx::query("SELECT account_id, name, password_hash, created_at FROM accounts WHERE account_id = ?").bind(account_id).fetch_optional(&self.reader).await?.ok_or(StoreError::NotFound("Account"))?;
        Ok(AccountRecord { account_id: row.get("account_id"), name: row.get("name"), password_hash: row.get("password_hash"), created_at: row.get("created_at") })
    }

    /// Replaces an account's password hash.
    pub async fn set_account_password(&self, account_id: i64, password_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET password_hash = ? WHERE account_id = ?").bind(password_hash).bind(account_id).execute(&self.writer).await?;
        Ok(())
    }

    /// The caller for an authenticated account or RAM user; `NotFound` when the user was
    /// deleted meanwhile.
    pub async fn caller(&self, account_id: i64, user_id: Option<i64>) -> Result<Caller, StoreError> {
        let account = self.account_by_id(account_id).await?;
        let identity = match user_id {
            None => CallerIdentity::Account,
            Some(user_id) => {
                let user = self.user_by_id(account_id, user_id).await?;
                CallerIdentity::RamUser { user_id, name: user.name, role: user.role, status: user.status }
            }
        };
        Ok(Caller { account_id, account_name: account.name, identity })
    }

    pub async fn create_user(&self, context: &AuditContext, name: &str, role: Role, password_hash: Option<&str>) -> Result<UserRecord, StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = sqlx::query(&format!("INSERT INTO ram_users (account_id, name, role, status, password_hash, created_at) VALUES (?, ?, ?, 'active', ?, ?) RETURNING {USER_COLUMNS}"))
            .bind(context.account_id)
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now_millis())
            .fetch_one(&mut *transaction)
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(error) if is_unique_violation(&error) => return Err(StoreError::Conflict(format!("a RAM user named '{name}' already exists"))),
            Err(error) => return Err(error.into()),
        };
        let user = user_from_row(&row)?;
        write_audit(&mut transaction, context, "User.Create", &format!("user:{name}"), &format!("role={}", role.as_str())).await?;
        transaction.commit().await?;
        Ok(user)
    }

    pub async fn find_user(&self, account_id: i64, name: &str) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM ram_users WHERE account_id = ? AND name = ? AND deleted_at IS NULL"))
            .bind(account_id)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound("User"))?;
        self.with_workspaces(user_from_row(&row)?).await
    }

    pub async fn user_by_id(&self, account_id: i64, user_id: i64) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM ram_users WHERE account_id = ? AND user_id = ? AND deleted_at IS NULL"))
            .bind(account_id)
            .bind(user_id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound("User"))?;
        self.with_workspaces(user_from_row(&row)?).await
    }

    async fn with_workspaces(&self, mut user: UserRecord) -> Result<UserRecord, StoreError> {
        user.workspace_ids = sqlx::query_scalar("SELECT workspace_id FROM workspace_members WHERE user_id = ? ORDER BY workspace_id").bind(user.user_id).fetch_all(&self.reader).await?;
        Ok(user)
    }

    pub async fn list_users(&self, account_id: i64) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM ram_users WHERE account_id = ? AND deleted_at IS NULL ORDER BY user_id")).bind(account_id).fetch_all(&self.reader).await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.push(self.with_workspaces(user_from_row(row)?).await?);
        }
        Ok(users)
    }

    /// Runs a user change in a write transaction, audits it, and republishes the user's keys.
    async fn change_user(&self, context: &AuditContext, name: &str, action: &str, detail: &str, statement: &str, value: Option<&str>) -> Result<UserRecord, StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let user_id: i64 = sqlx::query_scalar("SELECT user_id FROM ram_users WHERE account_id = ? AND name = ? AND deleted_at IS NULL")
            .bind(context.account_id)
            .bind(name)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or(StoreError::NotFound("User"))?;
        let mut query = sqlx::query(statement);
        if let Some(value) = value {
            query = query.bind(value);
        }
        query.bind(user_id).execute(&mut *transaction).await?;
        write_audit(&mut transaction, context, action, &format!("user:{name}"), detail).await?;
        let version = Self::record_change(&mut transaction, "user", &user_id.to_string()).await?;
        let updates = compile::keys_of_user(&mut transaction, user_id).await?;
        transaction.commit().await?;
        self.publish(version, updates);
        self.user_by_id(context.account_id, user_id).await
    }

    pub async fn set_user_role(&self, context: &AuditContext, name: &str, role: Role) -> Result<UserRecord, StoreError> {
        self.change_user(context, name, "User.SetRole", &format!("role={}", role.as_str()), "UPDATE ram_users SET role = ? WHERE user_id = ?", Some(role.as_str())).await
    }

    pub async fn set_user_status(&self, context: &AuditContext, name: &str, status: UserStatus) -> Result<UserRecord, StoreError> {
        let action = match status {
            UserStatus::Active => "User.Enable",
            UserStatus::Disabled => "User.Disable",
        };
        self.change_user(context, name, action, "", "UPDATE ram_users SET status = ? WHERE user_id = ?", Some(status.as_str())).await
    }

    pub async fn set_user_password(&self, context: &AuditContext, name: &str, password_hash: &str) -> Result<UserRecord, StoreError> {
        self.change_user(context, name, "User.SetPassword", "", "UPDATE ram_users SET password_hash = ? WHERE user_id = ?", Some(password_hash)).await
    }

    /// Deletes a RAM user for good: its keys, AccessKeys, sessions and memberships go too.
    pub async fn delete_user(&self, context: &AuditContext, name: &str) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let user_id: i64 = sqlx::query_scalar("SELECT user_id FROM ram_users WHERE account_id = ? AND name = ? AND deleted_at IS NULL")
            .bind(context.account_id)
            .bind(name)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or(StoreError::NotFound("User"))?;
        let digests: Vec<Vec<u8>> = sqlx::query_scalar("DELETE FROM api_keys WHERE creator_user_id = ? RETURNING key_digest").bind(user_id).fetch_all(&mut *transaction).await?;
        for statement in [
            "DELETE FROM access_keys WHERE user_id = ?",
            "DELETE FROM sessions WHERE user_id = ?",
            "DELETE FROM workspace_members WHERE user_id = ?",
        ] {
            sqlx::query(statement).bind(user_id).execute(&mut *transaction).await?;
        }
        sqlx::query("UPDATE ram_users SET deleted_at = ?, status = 'disabled', password_hash = NULL WHERE user_id = ?").bind(now_millis()).bind(user_id).execute(&mut *transaction).await?;
        write_audit(&mut transaction, context, "User.Delete", &format!("user:{name}"), &format!("deleted_keys={}", digests.len())).await?;
        let version = Self::record_change(&mut transaction, "user", &user_id.to_string()).await?;
        transaction.commit().await?;
        let updates = digests.iter().filter_map(|bytes| KeyDigest::from_bytes(bytes)).map(|digest| RegistryUpdate::Revoked { digest }).collect();
        self.publish(version, updates);
        Ok(())
    }

    /// Adds a RAM user to a sub-workspace (idempotent).
    pub async fn add_workspace_member(&self, context: &AuditContext, workspace_id: &str, user_name: &str) -> Result<(), StoreError> {
        self.change_membership(context, workspace_id, user_name, true).await
    }

    /// Removes a RAM user from a sub-workspace: its keys there stop working.
    pub async fn remove_workspace_member(&self, context: &AuditContext, workspace_id: &str, user_name: &str) -> Result<(), StoreError> {
        self.change_membership(context, workspace_id, user_name, false).await
    }

    async fn change_membership(&self, context: &AuditContext, workspace_id: &str, user_name: &str, add: bool) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let is_default: bool = sqlx::query_scalar("SELECT is_default FROM workspaces WHERE workspace_id = ? AND account_id = ? AND region = ?")
            .bind(workspace_id)
            .bind(context.account_id)
            .bind(&context.region)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or(StoreError::NotFound("Workspace"))?;
        if is_default {
            return Err(StoreError::Refused("every user is a member of the default workspace; its membership cannot change".into()));
        }
        let user_id: i64 = sqlx::query_scalar("SELECT user_id FROM ram_users WHERE account_id = ? AND name = ? AND deleted_at IS NULL")
            .bind(context.account_id)
            .bind(user_name)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or(StoreError::NotFound("User"))?;
        let statement = if add {
            "INSERT INTO workspace_members (workspace_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM workspace_members WHERE workspace_id = ? AND user_id = ?"
        };
        sqlx::query(statement).bind(workspace_id).bind(user_id).execute(&mut *transaction).await?;
        let action = if add { "Workspace.AddMember" } else { "Workspace.RemoveMember" };
        write_audit(&mut transaction, context, action, &format!("workspace:{workspace_id}"), &format!("user={user_name}")).await?;
        let version = Self::record_change(&mut transaction, "membership", &user_id.to_string()).await?;
        let updates = compile::keys_of_user(&mut transaction, user_id).await?;
        transaction.commit().await?;
        self.publish(version, updates);
        Ok(())
    }

    /// Whether `user_id` may act in `workspace_id` (the default workspace: always).
    pub async fn is_workspace_member(&self, workspace_id: &str, user_id: i64) -> Result<bool, StoreError> {
        let member: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM workspaces w WHERE w.workspace_id = ?1 AND (w.is_default = 1 OR EXISTS (SELECT 1 FROM workspace_members m WHERE m.workspace_id = ?1 AND m.user_id = ?2)))",
        )
        .bind(workspace_id)
        .bind(user_id)
        .fetch_one(&self.reader)
        .await?;
        Ok(member)
    }
}
