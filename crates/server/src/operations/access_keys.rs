//! AccessKeys, the management credentials of the account and its RAM users: list (never
//! the secret), create (the secret is in that one answer and stored only encrypted under
//! the master key), disable, enable and delete; and the key an ACS3 signature is checked
//! with. Anyone active manages its own; the account and admins also manage those of RAM
//! users ([`keygate_core::access::Caller::may_manage_access_keys_of`]).

use std::collections::HashMap;

use keygate_core::access::{Caller, CallerCredential};
use keygate_core::ids::{generate_access_key_secret, AccessKeyId, PrincipalName};
use keygate_store::{AccessKeyRecord, StoreError, UserRecord};
use secrecy::{ExposeSecret, SecretString};

use super::{Actor, ErrorKind, OperationError, Operations};

type Result<T> = std::result::Result<T, OperationError>;

/// The RAM user `name`, when the caller may manage its AccessKeys. A caller that does not
/// administer gets 403 for every other name, so it cannot probe which names exist.
async fn managed_user(operations: Operations<'_>, actor: &Actor, name: &PrincipalName) -> Result<UserRecord> {
    match operations.store.find_user(actor.caller.account_id, name.as_str()).await {
        Ok(user) => {
            actor.caller.may_manage_access_keys_of(Some(user.user_id))?;
            Ok(user)
        }
        Err(StoreError::NotFound(_)) if actor.caller.may_administer().is_err() => {
            Err(OperationError::forbidden("you may manage only your own AccessKeys"))
        }
        Err(other) => Err(other.into()),
    }
}

/// A key of the actor's account that the caller may manage; other accounts' keys and
/// malformed ids are `AccessKey.NotFound`.
async fn managed_access_key(operations: Operations<'_>, actor: &Actor, text: &str) -> Result<AccessKeyRecord> {
    let access_key_id = AccessKeyId::parse(text).map_err(|_| OperationError::access_key_not_found())?;
    let record = operations
        .store
        .find_access_key(access_key_id.as_str())
        .await?
        .filter(|record| record.account_id == actor.caller.account_id)
        .ok_or_else(OperationError::access_key_not_found)?;
    actor.caller.may_manage_access_keys_of(record.user_id)?;
    Ok(record)
}

/// An AccessKey with the name of its owner (`None`: the account itself).
#[derive(Debug, Clone)]
pub struct OwnedAccessKey {
    pub record: AccessKeyRecord,
    pub owner: Option<String>,
}

/// The AccessKeys the caller may manage, or only those of the RAM user `user`.
pub async fn list_access_keys(operations: Operations<'_>, actor: &Actor, user: Option<&PrincipalName>) -> Result<Vec<OwnedAccessKey>> {
    let account_id = actor.caller.account_id;
    let records = match user {
        Some(name) => {
            let user = managed_user(operations, actor, name).await?;
            operations.store.list_access_keys(account_id, Some(Some(user.user_id))).await?
        }
        None => operations.store.list_access_keys(account_id, None).await?,
    };
    let names: HashMap<i64, String> =
        operations.store.list_users(account_id).await?.into_iter().map(|user| (user.user_id, user.name)).collect();
    Ok(records
        .into_iter()
        .filter(|record| actor.caller.may_manage_access_keys_of(record.user_id).is_ok())
        .map(|record| {
            let owner = record.user_id.and_then(|user_id| names.get(&user_id)).cloned();
            OwnedAccessKey { record, owner }
        })
        .collect())
}

/// Every AccessKey of the account, whoever owns it (administrators only).
pub async fn list_account_access_keys(operations: Operations<'_>, actor: &Actor) -> Result<Vec<AccessKeyRecord>> {
    actor.caller.may_administer()?;
    Ok(operations.store.list_access_keys(actor.caller.account_id, None).await?)
}

/// Whom a new AccessKey is for.
#[derive(Debug, Clone, Copy)]
pub enum AccessKeyOwner<'a> {
    /// The caller itself (the account, or the RAM user calling).
    Caller,
    /// The account.
    Account,
    /// A RAM user of the account.
    User(&'a PrincipalName),
}

/// A new AccessKey with its secret: the one moment the secret leaves keygate.
pub struct NewAccessKey {
    pub record: AccessKeyRecord,
    pub secret: SecretString,
    /// The RAM user it is for; `None`: the account.
    pub owner: Option<String>,
}

impl std::fmt::Debug for NewAccessKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("NewAccessKey").field("access_key_id", &self.record.access_key_id).finish_non_exhaustive()
    }
}

/// Creates an AccessKey for `owner`; its secret is stored only encrypted.
pub async fn create_access_key(operations: Operations<'_>, actor: &Actor, owner: AccessKeyOwner<'_>) -> Result<NewAccessKey> {
    let caller = &actor.caller;
    let (user_id, owner) = match owner {
        AccessKeyOwner::User(name) => {
            let user = managed_user(operations, actor, name).await?;
            (Some(user.user_id), Some(user.name))
        }
        AccessKeyOwner::Caller => (caller.user_id(), caller.user_id().map(|_| caller.display_name().to_string())),
        AccessKeyOwner::Account => (None, None),
    };
    caller.may_manage_access_keys_of(user_id)?;
    let access_key_id = AccessKeyId::generate();
    let secret = generate_access_key_secret();
    let ciphertext = operations.master_key.encrypt(secret.expose_secret());
    let record = operations.store.create_access_key(&actor.audit, access_key_id.as_str(), user_id, &ciphertext).await?;
    Ok(NewAccessKey { record, secret, owner })
}

/// Disables or enables an AccessKey the caller may manage; answers it as it is now.
pub async fn set_access_key_active(operations: Operations<'_>, actor: &Actor, access_key_id: &str, active: bool) -> Result<OwnedAccessKey> {
    let record = managed_access_key(operations, actor, access_key_id).await?;
    operations.store.set_access_key_active(&actor.audit, &record.access_key_id, active).await?;
    let updated = operations.store.find_access_key(&record.access_key_id).await?.ok_or_else(OperationError::access_key_not_found)?;
    let owner = match updated.user_id {
        None => None,
        Some(user_id) => Some(operations.store.user_by_id(actor.caller.account_id, user_id).await?.name),
    };
    Ok(OwnedAccessKey { record: updated, owner })
}

/// Deletes an AccessKey the caller may manage: calls signed with it are refused from now on.
pub async fn delete_access_key(operations: Operations<'_>, actor: &Actor, access_key_id: &str) -> Result<()> {
    let record = managed_access_key(operations, actor, access_key_id).await?;
    Ok(operations.store.delete_access_key(&actor.audit, &record.access_key_id).await?)
}

// ---- signatures --------------------------------------------------------------------------

/// The AccessKey an ACS3 signature names, found active: whose it is, and its secret (still
/// encrypted until [`SigningKey::secret`]).
#[derive(Debug, Clone)]
pub struct SigningKey {
    access_key_id: String,
    account_id: i64,
    user_id: Option<i64>,
    secret_ciphertext: Vec<u8>,
}

fn unknown_access_key() -> OperationError {
    OperationError::new(ErrorKind::NotFound, "InvalidAccessKeyId.NotFound", "The AccessKey id does not exist.")
}

/// The active AccessKey `access_key_id` (`InvalidAccessKeyId.NotFound`, or `.Inactive`).
pub async fn signing_key(operations: Operations<'_>, access_key_id: &str) -> Result<SigningKey> {
    let record = operations.store.find_access_key(access_key_id).await?.ok_or_else(unknown_access_key)?;
    if !record.active {
        return Err(OperationError::new(ErrorKind::Invalid, "InvalidAccessKeyId.Inactive", "The AccessKey is disabled."));
    }
    Ok(SigningKey {
        access_key_id: record.access_key_id,
        account_id: record.account_id,
        user_id: record.user_id,
        secret_ciphertext: record.secret_ciphertext,
    })
}

impl SigningKey {
    /// The secret the signature must have been made with.
    pub fn secret(&self, operations: Operations<'_>) -> Result<SecretString> {
        operations.master_key.decrypt(&self.secret_ciphertext).map_err(OperationError::internal)
    }

    /// Spends a request's nonce: `false` when it was seen already (a replay). Nonces seen
    /// before `forget_before` (Unix ms) are forgotten: the clock window refuses them anyway.
    pub async fn spend_nonce(&self, operations: Operations<'_>, nonce: &str, forget_before: i64) -> Result<bool> {
        Ok(operations.store.remember_nonce(nonce, operations.clock.now_milliseconds(), forget_before).await?)
    }

    /// The caller a correct signature proves, acting through this AccessKey; its user
    /// deleted meanwhile is `InvalidAccessKeyId.NotFound`.
    pub async fn caller(&self, operations: Operations<'_>) -> Result<Caller> {
        match operations.store.caller(self.account_id, self.user_id).await {
            Ok(caller) => Ok(Caller { credential: CallerCredential::AccessKey(self.access_key_id.clone()), ..caller }),
            Err(StoreError::NotFound(_)) => Err(unknown_access_key()),
            Err(other) => Err(other.into()),
        }
    }
}
