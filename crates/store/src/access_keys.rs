//! AccessKeys (management credentials whose secrets are stored encrypted), console/CLI
//! sessions (stored as token digests) and the ACS3 nonce ledger.

use std::collections::HashMap;
use std::sync::Mutex;

use keygate_core::access::{Caller, CallerCredential, CallerIdentity, Role, UserStatus};

use crate::audit::{write_audit, AuditContext};
use crate::database::{params, Row};
use crate::{Missing, Store, StoreError};

/// Sessions a [`SessionCache`] holds at most; past that it starts again empty.
const SESSION_CACHE_CAPACITY: usize = 10_000;

/// The callers behind session tokens, so that a request with a session token reads the
/// database once per token rather than once per request. Everything a cached caller
/// depends on is written with a change-feed entry (`session` for a logout or a password
/// change, `user` for a RAM user's role, status or deletion), and the cache is emptied
/// when this node writes one and when it applies one from the feed: a session ended on
/// another node stops working here as soon as this node follows that change, as a
/// revoked key does. The expiry is checked on every use.
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    state: Mutex<SessionCacheState>,
}

#[derive(Debug, Default)]
struct SessionCacheState {
    /// Bumped when the cache is emptied: a read that began before cannot fill it with
    /// what it read.
    generation: u64,
    /// Token digest: the caller and the session's expiry (Unix ms).
    callers: HashMap<Vec<u8>, (Caller, i64)>,
}

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionCacheState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached caller of a session live at `now`; otherwise the generation to hand to
    /// [`SessionCache::remember`] after reading the database.
    fn get(&self, token_digest: &[u8], now: i64) -> Result<Caller, u64> {
        let state = self.lock();
        match state.callers.get(token_digest) {
            Some((caller, expires_at)) if *expires_at > now => Ok(caller.clone()),
            _ => Err(state.generation),
        }
    }

    fn remember(&self, generation: u64, token_digest: &[u8], caller: &Caller, expires_at: i64) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.callers.len() >= SESSION_CACHE_CAPACITY {
            state.callers.clear();
        }
        state.callers.insert(token_digest.to_vec(), (caller.clone(), expires_at));
    }

    /// Empties the cache: a session may have ended or its caller changed.
    pub(crate) fn forget_all(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.callers.clear();
    }
}

/// The change-feed kind of a write that ends sessions (a logout, a password change): it
/// changes no key, but empties every node's [`SessionCache`].
pub(crate) const SESSION_CHANGE: &str = "session";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub account_id: i64,
    pub user_id: Option<i64>,
    /// The secret, AES-256-GCM encrypted under the master key.
    pub secret_ciphertext: Vec<u8>,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub account_id: i64,
    pub user_id: Option<i64>,
    pub expires_at: i64,
}

fn access_key_from_row(row: &Row) -> Result<AccessKeyRecord, StoreError> {
    Ok(AccessKeyRecord {
        access_key_id: row.string("access_key_id")?,
        account_id: row.i64("account_id")?,
        user_id: row.opt_i64("user_id")?,
        secret_ciphertext: row.bytes("secret_ciphertext")?,
        active: row.string("status")? == "active",
        created_at: row.i64("created_at")?,
        last_used_at: row.opt_i64("last_used_at")?,
    })
}

const ACCESS_KEY_COLUMNS: &str = "access_key_id, account_id, user_id, secret_ciphertext, status, created_at, last_used_at";

impl Store {
    pub async fn create_access_key(
        &self,
        context: &AuditContext,
        access_key_id: &str,
        user_id: Option<i64>,
        secret_ciphertext: &[u8],
    ) -> Result<AccessKeyRecord, StoreError> {
        let mut transaction = self.database.begin_write().await?;
        let row = transaction
            .fetch_one(
                &format!("INSERT INTO access_keys (access_key_id, account_id, user_id, secret_ciphertext, status, created_at) VALUES ($1, $2, $3, $4, 'active', $5) RETURNING {ACCESS_KEY_COLUMNS}"),
                &params![access_key_id, context.account_id, user_id, secret_ciphertext, context.at],
            )
            .await?;
        let owner = user_id.map(|id| format!("user_id={id}")).unwrap_or_else(|| "owner=account".into());
        write_audit(&mut transaction, context, "AccessKey.Create", &format!("accessKey:{access_key_id}"), &owner).await?;
        transaction.commit().await?;
        access_key_from_row(&row)
    }

    pub async fn find_access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>, StoreError> {
        let row = self
            .database
            .fetch_optional(&format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE access_key_id = $1"), &params![access_key_id])
            .await?;
        row.as_ref().map(access_key_from_row).transpose()
    }

    /// AccessKeys of the account; only those of one owner when `owner` is given (`Some(None)`:
    /// the account's own).
    pub async fn list_access_keys(&self, account_id: i64, owner: Option<Option<i64>>) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let rows = match owner {
            None => self.database.fetch_all(&format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE account_id = $1 ORDER BY created_at"), &params![account_id]).await?,
            Some(user_id) => {
                self.database
                    .fetch_all(
                        &format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE account_id = $1 AND user_id IS NOT DISTINCT FROM $2 ORDER BY created_at"),
                        &params![account_id, user_id],
                    )
                    .await?
            }
        };
        rows.iter().map(access_key_from_row).collect()
    }

    pub async fn set_access_key_active(&self, context: &AuditContext, access_key_id: &str, active: bool) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_write().await?;
        let changed = transaction
            .execute(
                "UPDATE access_keys SET status = $1 WHERE access_key_id = $2 AND account_id = $3",
                &params![if active { "active" } else { "disabled" }, access_key_id, context.account_id],
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(Missing::AccessKey));
        }
        let action = if active { "AccessKey.Enable" } else { "AccessKey.Disable" };
        write_audit(&mut transaction, context, action, &format!("accessKey:{access_key_id}"), "").await?;
        transaction.commit().await
    }

    pub async fn delete_access_key(&self, context: &AuditContext, access_key_id: &str) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_write().await?;
        let changed = transaction
            .execute("DELETE FROM access_keys WHERE access_key_id = $1 AND account_id = $2", &params![access_key_id, context.account_id])
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(Missing::AccessKey));
        }
        write_audit(&mut transaction, context, "AccessKey.Delete", &format!("accessKey:{access_key_id}"), "").await?;
        transaction.commit().await
    }

    /// Stores a session under the digest of its token (sessions expired by then go).
    pub async fn create_session(
        &self,
        context: &AuditContext,
        token_digest: &[u8],
        user_id: Option<i64>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_write().await?;
        transaction.execute("DELETE FROM sessions WHERE expires_at < $1", &params![context.at]).await?;
        transaction
            .execute(
                "INSERT INTO sessions (token_digest, account_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &params![token_digest, context.account_id, user_id, context.at, expires_at],
            )
            .await?;
        write_audit(&mut transaction, context, "Session.Login", "session", "").await?;
        transaction.commit().await
    }

    /// The session with this token digest, if it is still live at `now` (Unix ms).
    pub async fn find_session(&self, token_digest: &[u8], now: i64) -> Result<Option<SessionRecord>, StoreError> {
        let row = self
            .database
            .fetch_optional(
                "SELECT account_id, user_id, expires_at FROM sessions WHERE token_digest = $1 AND expires_at > $2",
                &params![token_digest, now],
            )
            .await?;
        row.map(|row| {
            Ok(SessionRecord { account_id: row.i64("account_id")?, user_id: row.opt_i64("user_id")?, expires_at: row.i64("expires_at")? })
        })
        .transpose()
    }

    /// The caller behind an unexpired session, in one statement: its account and, for a
    /// RAM user's session, the user (`None` as well when that user was deleted). The
    /// caller's credential is left `Direct` for the caller to name.
    /// Served from this store's [`SessionCache`] after the first time.
    pub async fn session_caller(&self, token_digest: &[u8], now: i64) -> Result<Option<Caller>, StoreError> {
        let generation = match self.sessions.get(token_digest, now) {
            Ok(caller) => return Ok(Some(caller)),
            Err(generation) => generation,
        };
        let Some(row) = self
            .database
            .fetch_optional(
                "SELECT s.account_id, s.user_id, s.expires_at, a.name AS account_name, u.name AS user_name, u.role, u.status \
                 FROM sessions s JOIN accounts a ON a.account_id = s.account_id \
                 LEFT JOIN ram_users u ON u.user_id = s.user_id AND u.account_id = s.account_id AND u.deleted_at IS NULL \
                 WHERE s.token_digest = $1 AND s.expires_at > $2",
                &params![token_digest, now],
            )
            .await?
        else {
            return Ok(None);
        };
        let identity = match row.opt_i64("user_id")? {
            None => CallerIdentity::Account,
            Some(user_id) => {
                let Some(name) = row.opt_string("user_name")? else { return Ok(None) };
                let (role, status) = (row.string("role")?, row.string("status")?);
                CallerIdentity::RamUser {
                    user_id,
                    name,
                    role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
                    status: UserStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
                }
            }
        };
        let caller = Caller {
            account_id: row.i64("account_id")?,
            account_name: row.string("account_name")?,
            identity,
            credential: CallerCredential::Direct,
        };
        self.sessions.remember(generation, token_digest, &caller, row.i64("expires_at")?);
        Ok(Some(caller))
    }

    /// Ends the session, on every node: a `session` change in the feed (see [`SessionCache`]).
    pub async fn delete_session(&self, context: &AuditContext, token_digest: &[u8]) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_change().await?;
        transaction.execute("DELETE FROM sessions WHERE token_digest = $1", &params![token_digest]).await?;
        write_audit(&mut transaction, context, "Session.Logout", "session", "").await?;
        self.commit_sessions_ended(transaction, context).await
    }

    /// Records an ACS3 nonce seen at `now`; `false` when it was already seen (a replay).
    /// Nonces older than `forget_before` (both Unix ms) are pruned: the clock window
    /// refuses them anyway.
    pub async fn remember_nonce(&self, nonce: &str, now: i64, forget_before: i64) -> Result<bool, StoreError> {
        let mut transaction = self.database.begin_write().await?;
        transaction.execute("DELETE FROM signature_nonces WHERE seen_at < $1", &params![forget_before]).await?;
        let inserted = transaction
            .execute("INSERT INTO signature_nonces (nonce, seen_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING", &params![nonce, now])
            .await?
            == 1;
        transaction.commit().await?;
        Ok(inserted)
    }
}
