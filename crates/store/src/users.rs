//! Accounts and their RAM users: creation, roles, disable/enable, final deletion (which
//! deletes the user's keys), workspace membership, and the lookups behind logins.

use keygate_core::access::{Caller, CallerCredential, CallerIdentity, Role, UserStatus};
use keygate_core::keys::KeyDigest;
use keygate_core::verification::RegistryUpdate;

use crate::access_keys::SESSION_CHANGE;
use crate::audit::{write_audit, AuditContext};
use crate::compile;
use crate::database::{params, Row, Transaction};
use crate::{Change, Missing, Store, StoreError};

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

fn account_from_row(row: &Row) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        account_id: row.i64("account_id")?,
        name: row.string("name")?,
        password_hash: row.string("password_hash")?,
        created_at: row.i64("created_at")?,
    })
}

fn user_from_row(row: &Row) -> Result<UserRecord, StoreError> {
    let role = row.string("role")?;
    let status = row.string("status")?;
    Ok(UserRecord {
        user_id: row.i64("user_id")?,
        account_id: row.i64("account_id")?,
        name: row.string("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        status: UserStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        password_hash: row.opt_string("password_hash")?,
        created_at: row.i64("created_at")?,
        workspace_ids: Vec::new(),
    })
}

/// Whose password [`Store::replace_password`] sets: the account's, or a RAM user's.
#[derive(Debug, Clone, Copy)]
enum PasswordOwner {
    Account,
    User(i64),
}

const USER_COLUMNS: &str = "user_id, account_id, name, role, status, password_hash, created_at";
const ACCOUNT_COLUMNS: &str = "account_id, name, password_hash, created_at";

/// The id of a live RAM user of the account, inside a transaction.
async fn live_user_id(transaction: &mut Transaction, account_id: i64, name: &str) -> Result<i64, StoreError> {
    transaction
        .fetch_optional(
            "SELECT user_id FROM ram_users WHERE account_id = $1 AND name = $2 AND deleted_at IS NULL",
            &params![account_id, name],
        )
        .await?
        .ok_or(StoreError::NotFound(Missing::User))?
        .i64("user_id")
}

impl Store {
    /// Creates the account at `now` (Unix ms) if it does not exist; returns it and whether
    /// it was created.
    pub async fn ensure_account(&self, name: &str, password_hash: &str, now: i64) -> Result<(AccountRecord, bool), StoreError> {
        let mut transaction = self.database.begin_write().await?;
        let created = transaction
            .execute(
                "INSERT INTO accounts (name, password_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                &params![name, password_hash, now],
            )
            .await?
            == 1;
        transaction.commit().await?;
        let account = self.find_account(name).await?.ok_or(StoreError::NotFound(Missing::Account))?;
        Ok((account, created))
    }

    pub async fn find_account(&self, name: &str) -> Result<Option<AccountRecord>, StoreError> {
        let row = self.database.fetch_optional(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1"), &params![name]).await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn account_by_id(&self, account_id: i64) -> Result<AccountRecord, StoreError> {
        let row = self
            .database
            .fetch_optional(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1"), &params![account_id])
            .await?;
        account_from_row(&row.ok_or(StoreError::NotFound(Missing::Account))?)
    }

    /// Replaces the account's password hash (`keygate admin`, for recovery): every session
    /// of the account itself ends (its RAM users' stay), audited as `Account.SetPassword`
    /// with how many ended.
    pub async fn set_account_password(&self, context: &AuditContext, password_hash: &str) -> Result<u64, StoreError> {
        self.replace_password(context, PasswordOwner::Account, password_hash, None, "Account.SetPassword").await
    }

    /// A principal's own new password, changed by itself (the old one was checked): every
    /// session of that principal ends but `keep_session` (the digest of the session that
    /// made the change). Audited as `Account.ChangePassword` or `User.ChangePassword` with
    /// how many sessions ended, which it answers.
    pub async fn change_own_password(
        &self,
        context: &AuditContext,
        user_id: Option<i64>,
        password_hash: &str,
        keep_session: Option<&[u8; 32]>,
    ) -> Result<u64, StoreError> {
        match user_id {
            None => self.replace_password(context, PasswordOwner::Account, password_hash, keep_session, "Account.ChangePassword").await,
            Some(user_id) => {
                self.replace_password(context, PasswordOwner::User(user_id), password_hash, keep_session, "User.ChangePassword").await
            }
        }
    }

    /// Sets the password hash of the context's account or of one of its live RAM users,
    /// ends the owner's sessions but `keep_session`, and audits `action` against
    /// `account:<name>` or `user:<name>` with `sessions_ended=N`, all in one transaction.
    async fn replace_password(
        &self,
        context: &AuditContext,
        owner: PasswordOwner,
        password_hash: &str,
        keep_session: Option<&[u8; 32]>,
        action: &str,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.database.begin_change().await?;
        let kept: &[u8] = keep_session.map_or(&[], |digest| digest.as_slice());
        let (target, ended) = match owner {
            PasswordOwner::Account => {
                let name = transaction
                    .fetch_optional(
                        "UPDATE accounts SET password_hash = $1 WHERE account_id = $2 RETURNING name",
                        &params![password_hash, context.account_id],
                    )
                    .await?
                    .ok_or(StoreError::NotFound(Missing::Account))?
                    .string("name")?;
                let ended = transaction
                    .execute(
                        "DELETE FROM sessions WHERE account_id = $1 AND user_id IS NULL AND token_digest <> $2",
                        &params![context.account_id, kept],
                    )
                    .await?;
                (format!("account:{name}"), ended)
            }
            PasswordOwner::User(user_id) => {
                let name = transaction
                    .fetch_optional(
                        "UPDATE ram_users SET password_hash = $1 WHERE user_id = $2 AND account_id = $3 AND deleted_at IS NULL RETURNING name",
                        &params![password_hash, user_id, context.account_id],
                    )
                    .await?
                    .ok_or(StoreError::NotFound(Missing::User))?
                    .string("name")?;
                let ended =
                    transaction.execute("DELETE FROM sessions WHERE user_id = $1 AND token_digest <> $2", &params![user_id, kept]).await?;
                (format!("user:{name}"), ended)
            }
        };
        write_audit(&mut transaction, context, action, &target, &format!("sessions_ended={ended}")).await?;
        self.commit_sessions_ended(transaction, context).await?;
        Ok(ended)
    }

    /// Records that sessions ended (a `session` change: every node empties its session
    /// cache when it follows it), commits, and empties this node's at once.
    pub(crate) async fn commit_sessions_ended(&self, mut transaction: Transaction, context: &AuditContext) -> Result<(), StoreError> {
        let version = Self::record_change(
            &mut transaction,
            Change { at: context.at, kind: SESSION_CHANGE, subject: &context.account_id.to_string(), revoked: &[] },
        )
        .await?;
        transaction.commit().await?;
        self.sessions.forget_all();
        self.publish(version, Vec::new());
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
        Ok(Caller { account_id, account_name: account.name, identity, credential: CallerCredential::Direct })
    }

    pub async fn create_user(
        &self,
        context: &AuditContext,
        name: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> Result<UserRecord, StoreError> {
        let mut transaction = self.database.begin_write().await?;
        let inserted = transaction
            .fetch_one(
                &format!("INSERT INTO ram_users (account_id, name, role, status, password_hash, created_at) VALUES ($1, $2, $3, 'active', $4, $5) RETURNING {USER_COLUMNS}"),
                &params![context.account_id, name, role.as_str(), password_hash, context.at],
            )
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(error) if error.is_unique_violation() => {
                return Err(StoreError::Conflict(format!("a RAM user named '{name}' already exists")))
            }
            Err(error) => return Err(error),
        };
        let user = user_from_row(&row)?;
        write_audit(&mut transaction, context, "User.Create", &format!("user:{name}"), &format!("role={}", role.as_str())).await?;
        transaction.commit().await?;
        Ok(user)
    }

    pub async fn find_user(&self, account_id: i64, name: &str) -> Result<UserRecord, StoreError> {
        let row = self
            .database
            .fetch_optional(
                &format!("SELECT {USER_COLUMNS} FROM ram_users WHERE account_id = $1 AND name = $2 AND deleted_at IS NULL"),
                &params![account_id, name],
            )
            .await?
            .ok_or(StoreError::NotFound(Missing::User))?;
        self.with_workspaces(user_from_row(&row)?).await
    }

    pub async fn user_by_id(&self, account_id: i64, user_id: i64) -> Result<UserRecord, StoreError> {
        let row = self
            .database
            .fetch_optional(
                &format!("SELECT {USER_COLUMNS} FROM ram_users WHERE account_id = $1 AND user_id = $2 AND deleted_at IS NULL"),
                &params![account_id, user_id],
            )
            .await?
            .ok_or(StoreError::NotFound(Missing::User))?;
        self.with_workspaces(user_from_row(&row)?).await
    }

    async fn with_workspaces(&self, mut user: UserRecord) -> Result<UserRecord, StoreError> {
        user.workspace_ids = self
            .database
            .fetch_all("SELECT workspace_id FROM workspace_members WHERE user_id = $1 ORDER BY workspace_id", &params![user.user_id])
            .await?
            .iter()
            .map(|row| row.string("workspace_id"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(user)
    }

    pub async fn list_users(&self, account_id: i64) -> Result<Vec<UserRecord>, StoreError> {
        let rows = self
            .database
            .fetch_all(
                &format!("SELECT {USER_COLUMNS} FROM ram_users WHERE account_id = $1 AND deleted_at IS NULL ORDER BY user_id"),
                &params![account_id],
            )
            .await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.push(self.with_workspaces(user_from_row(row)?).await?);
        }
        Ok(users)
    }

    /// Sets one column of a live user, audits it, and republishes the user's keys.
    async fn change_user(
        &self,
        context: &AuditContext,
        name: &str,
        action: &str,
        detail: &str,
        statement: &str,
        value: Option<&str>,
    ) -> Result<UserRecord, StoreError> {
        let mut transaction = self.database.begin_change().await?;
        let user_id = live_user_id(&mut transaction, context.account_id, name).await?;
        transaction.execute(statement, &params![value, user_id]).await?;
        write_audit(&mut transaction, context, action, &format!("user:{name}"), detail).await?;
        let version =
            Self::record_change(&mut transaction, Change { at: context.at, kind: "user", subject: &user_id.to_string(), revoked: &[] })
                .await?;
        let updates = compile::keys_of_user(&mut transaction, user_id).await?;
        transaction.commit().await?;
        // The user's sessions now carry another role or status.
        self.sessions.forget_all();
        self.publish(version, updates);
        self.user_by_id(context.account_id, user_id).await
    }

    pub async fn set_user_role(&self, context: &AuditContext, name: &str, role: Role) -> Result<UserRecord, StoreError> {
        self.change_user(
            context,
            name,
            "User.SetRole",
            &format!("role={}", role.as_str()),
            "UPDATE ram_users SET role = $1 WHERE user_id = $2",
            Some(role.as_str()),
        )
        .await
    }

    pub async fn set_user_status(&self, context: &AuditContext, name: &str, status: UserStatus) -> Result<UserRecord, StoreError> {
        let action = match status {
            UserStatus::Active => "User.Enable",
            UserStatus::Disabled => "User.Disable",
        };
        self.change_user(context, name, action, "", "UPDATE ram_users SET status = $1 WHERE user_id = $2", Some(status.as_str())).await
    }

    /// A new password; every session of the user ends with the old one, except
    /// `keep_session` (the digest of the session that made the change, when it is theirs).
    pub async fn set_user_password(
        &self,
        context: &AuditContext,
        name: &str,
        password_hash: &str,
        keep_session: Option<&[u8; 32]>,
    ) -> Result<UserRecord, StoreError> {
        let mut transaction = self.database.begin_change().await?;
        let user_id = live_user_id(&mut transaction, context.account_id, name).await?;
        transaction.execute("UPDATE ram_users SET password_hash = $1 WHERE user_id = $2", &params![password_hash, user_id]).await?;
        let kept: &[u8] = keep_session.map_or(&[], |digest| digest.as_slice());
        let ended = transaction.execute("DELETE FROM sessions WHERE user_id = $1 AND token_digest <> $2", &params![user_id, kept]).await?;
        write_audit(&mut transaction, context, "User.SetPassword", &format!("user:{name}"), &format!("sessions_ended={ended}")).await?;
        self.commit_sessions_ended(transaction, context).await?;
        self.user_by_id(context.account_id, user_id).await
    }

    /// Deletes a RAM user for good: its keys, AccessKeys, sessions and memberships go too.
    pub async fn delete_user(&self, context: &AuditContext, name: &str) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_change().await?;
        let user_id = live_user_id(&mut transaction, context.account_id, name).await?;
        let revoked: Vec<KeyDigest> = transaction
            .fetch_all("DELETE FROM api_keys WHERE creator_user_id = $1 RETURNING key_digest", &params![user_id])
            .await?
            .iter()
            .map(|row| row.bytes("key_digest"))
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .filter_map(|bytes| KeyDigest::from_bytes(bytes))
            .collect();
        for statement in [
            "DELETE FROM access_keys WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM workspace_members WHERE user_id = $1",
        ] {
            transaction.execute(statement, &params![user_id]).await?;
        }
        transaction
            .execute(
                "UPDATE ram_users SET deleted_at = $1, status = 'disabled', password_hash = NULL WHERE user_id = $2",
                &params![context.at, user_id],
            )
            .await?;
        write_audit(&mut transaction, context, "User.Delete", &format!("user:{name}"), &format!("deleted_keys={}", revoked.len())).await?;
        let version = Self::record_change(
            &mut transaction,
            Change { at: context.at, kind: "user", subject: &user_id.to_string(), revoked: &revoked },
        )
        .await?;
        transaction.commit().await?;
        self.sessions.forget_all();
        self.publish(version, revoked.into_iter().map(|digest| RegistryUpdate::Revoked { digest }).collect());
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
        let mut transaction = self.database.begin_change().await?;
        let is_default = transaction
            .fetch_optional(
                "SELECT is_default FROM workspaces WHERE workspace_id = $1 AND account_id = $2 AND region = $3",
                &params![workspace_id, context.account_id, &context.region],
            )
            .await?
            .ok_or(StoreError::NotFound(Missing::Workspace))?
            .boolean("is_default")?;
        if is_default {
            return Err(StoreError::Refused("every user is a member of the default workspace; its membership cannot change".into()));
        }
        let user_id = live_user_id(&mut transaction, context.account_id, user_name).await?;
        let statement = if add {
            "INSERT INTO workspace_members (workspace_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2"
        };
        transaction.execute(statement, &params![workspace_id, user_id]).await?;
        let action = if add { "Workspace.AddMember" } else { "Workspace.RemoveMember" };
        write_audit(&mut transaction, context, action, &format!("workspace:{workspace_id}"), &format!("user={user_name}")).await?;
        let version = Self::record_change(
            &mut transaction,
            Change { at: context.at, kind: "membership", subject: &user_id.to_string(), revoked: &[] },
        )
        .await?;
        let updates = compile::keys_of_user(&mut transaction, user_id).await?;
        transaction.commit().await?;
        self.publish(version, updates);
        Ok(())
    }

    /// Whether `user_id` may act in `workspace_id` (the default workspace: always).
    pub async fn is_workspace_member(&self, workspace_id: &str, user_id: i64) -> Result<bool, StoreError> {
        self.database
            .fetch_one(
                "SELECT EXISTS (SELECT 1 FROM workspaces w WHERE w.workspace_id = $1 AND (w.is_default OR EXISTS (SELECT 1 FROM workspace_members m WHERE m.workspace_id = $1 AND m.user_id = $2))) AS member",
                &params![workspace_id, user_id],
            )
            .await?
            .boolean("member")
    }
}
