//! RAM users of the actor's account: list, create (with a role and maybe a password), look
//! up, change role, disable, enable, set a password, and delete for good (which deletes the
//! user's API keys too); every caller's change of its own password (the old one required);
//! and the account's password set for recovery (`keygate admin`).

use keygate_core::access::{Caller, Role, UserStatus};
use keygate_core::ids::PrincipalName;
use keygate_store::{AccountRecord, UserRecord};
use secrecy::SecretString;

use std::net::IpAddr;

use super::sessions::check_own_password;
use super::{shown, Actor, OperationError, Operations};
use crate::secrets::hash_password;
use crate::throttle::FailedAuthenticationThrottle;

type Result<T> = std::result::Result<T, OperationError>;

/// Fewest characters in a password set through the API or the console.
pub const MIN_PASSWORD_CHARACTERS: usize = 8;
/// Most characters in a password set through the API or the console.
pub const MAX_PASSWORD_CHARACTERS: usize = 256;

pub fn parse_role(text: &str) -> Result<Role> {
    Role::parse(text)
        .ok_or_else(|| OperationError::invalid_parameter(format!("role must be admin, key-manager or member, got '{}'.", shown(text))))
}

/// A password to set: 8 to 256 characters. The refusal never repeats the password.
pub fn parse_new_password(text: String) -> Result<SecretString> {
    let count = text.chars().count();
    if !(MIN_PASSWORD_CHARACTERS..=MAX_PASSWORD_CHARACTERS).contains(&count) {
        return Err(OperationError::invalid_parameter(format!(
            "password must have {MIN_PASSWORD_CHARACTERS} to {MAX_PASSWORD_CHARACTERS} characters, got {count}."
        )));
    }
    Ok(SecretString::from(text))
}

/// Hashes a password off the async runtime (argon2id is deliberately slow).
pub async fn hash_off_runtime(password: SecretString) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(OperationError::internal)
}

/// The account and admins may act on any user; a RAM user on itself
/// ([`Caller::may_act_on_user`]).
fn may_act_on_user(caller: &Caller, name: &str) -> Result<()> {
    Ok(caller.may_act_on_user(name)?)
}

/// Every RAM user of the account (administrators only).
pub async fn list_users(operations: Operations<'_>, actor: &Actor) -> Result<Vec<UserRecord>> {
    actor.caller.may_administer()?;
    Ok(operations.store.list_users(actor.caller.account_id).await?)
}

/// A RAM user to create. `password`: checked by [`parse_new_password`] (`keygate admin`
/// sets what the operator gives); `None`: the user cannot sign in until it gets one.
#[derive(Debug)]
pub struct NewUser {
    pub name: PrincipalName,
    pub role: Role,
    pub password: Option<SecretString>,
}

/// Creates a RAM user (administrators only).
pub async fn create_user(operations: Operations<'_>, actor: &Actor, user: NewUser) -> Result<UserRecord> {
    actor.caller.may_administer()?;
    let password_hash = match user.password {
        None => None,
        Some(password) => Some(hash_off_runtime(password).await?),
    };
    Ok(operations.store.create_user(&actor.audit, user.name.as_str(), user.role, password_hash.as_deref()).await?)
}

/// The RAM user `name`: administrators may look up anyone, a RAM user itself.
pub async fn get_user(operations: Operations<'_>, actor: &Actor, name: &PrincipalName) -> Result<UserRecord> {
    may_act_on_user(&actor.caller, name.as_str())?;
    Ok(operations.store.find_user(actor.caller.account_id, name.as_str()).await?)
}

/// A new role (administrators only).
pub async fn set_role(operations: Operations<'_>, actor: &Actor, name: &PrincipalName, role: Role) -> Result<UserRecord> {
    actor.caller.may_administer()?;
    Ok(operations.store.set_user_role(&actor.audit, name.as_str(), role).await?)
}

/// Disables or enables a user (administrators only): a disabled user cannot sign in or
/// call the management APIs, and its API keys stop working.
pub async fn set_status(operations: Operations<'_>, actor: &Actor, name: &PrincipalName, status: UserStatus) -> Result<UserRecord> {
    actor.caller.may_administer()?;
    Ok(operations.store.set_user_status(&actor.audit, name.as_str(), status).await?)
}

/// Checks that the actor may set `name`'s password, before the new password is even read:
/// administrators may set another user's; nobody sets its own this way, since that needs
/// the current password ([`change_own_password`]), so that a stolen session cannot lock
/// its owner out.
pub fn may_set_password(actor: &Actor, name: &PrincipalName) -> Result<()> {
    if actor.caller.user_id().is_some() && actor.caller.display_name() == name.as_str() {
        return Err(OperationError::forbidden(
            "Change your own password with PUT /keygate/v1/password (`keygate password`, or Password in the console), which asks for the current one.",
        ));
    }
    Ok(actor.caller.may_administer()?)
}

/// A new password (checked by [`parse_new_password`]) for another RAM user
/// (administrators only). Every session of that user ends: a stolen session does not
/// outlive the password change.
pub async fn set_password(operations: Operations<'_>, actor: &Actor, name: &PrincipalName, password: SecretString) -> Result<UserRecord> {
    may_set_password(actor, name)?;
    let password_hash = hash_off_runtime(password).await?;
    Ok(operations.store.set_user_password(&actor.audit, name.as_str(), &password_hash, None).await?)
}

/// What a caller presents to change its own password: the current one, and the new one
/// already checked by [`parse_new_password`].
pub struct PasswordChange {
    pub current: SecretString,
    pub new: SecretString,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PasswordChange")
    }
}

/// The caller (the account or a RAM user, through any credential) changes its own
/// password. The current one is checked like a login's ([`check_own_password`]: wrong,
/// it is 403 `IncorrectPassword` and counts as a failed login from `client_address`; past
/// `failed_logins_per_minute`, 429 `Throttling` before any check). Then every session of
/// the caller ends except `own_session` (the digest of the session making the change, if
/// it is one), so that the change does not sign out whoever made it but does sign out
/// anyone else who had the old password. Answers how many sessions ended.
pub async fn change_own_password(
    operations: Operations<'_>,
    actor: &Actor,
    throttle: &FailedAuthenticationThrottle,
    client_address: Option<IpAddr>,
    change: PasswordChange,
    own_session: Option<&[u8; 32]>,
) -> Result<u64> {
    check_own_password(operations, throttle, &actor.caller, &change.current, client_address).await?;
    let password_hash = hash_off_runtime(change.new).await?;
    Ok(operations.store.change_own_password(&actor.audit, actor.caller.user_id(), &password_hash, own_session).await?)
}

/// Deletes a RAM user for good, with its API keys, AccessKeys and sessions
/// (administrators only).
pub async fn delete_user(operations: Operations<'_>, actor: &Actor, name: &PrincipalName) -> Result<()> {
    actor.caller.may_administer()?;
    Ok(operations.store.delete_user(&actor.audit, name.as_str()).await?)
}

/// Makes sure the account `name` exists (created now with `password` when it does not),
/// with a default workspace in every region the deployment knows. Answers the account and
/// whether it was created.
pub async fn ensure_account(operations: Operations<'_>, name: &str, password: SecretString) -> Result<(AccountRecord, bool)> {
    let hash = hash_off_runtime(password).await?;
    let now = operations.clock.now_milliseconds();
    let (account, created) = operations.store.ensure_account(name, &hash, now).await?;
    let regions: Vec<String> = operations.settings.regions.iter().map(|policy| policy.id.as_str().to_string()).collect();
    operations.store.ensure_default_workspaces(account.account_id, &regions, now).await?;
    Ok((account, created))
}

/// The account named `name`, if there is one.
pub async fn find_account(operations: Operations<'_>, name: &str) -> Result<Option<AccountRecord>> {
    Ok(operations.store.find_account(name).await?)
}

/// A new password for the account (`keygate admin`, which acts as the account, for
/// recovery: no current password). Every session of the account ends. Answers how many.
pub async fn set_account_password(operations: Operations<'_>, actor: &Actor, password: SecretString) -> Result<u64> {
    if !actor.caller.is_account() {
        return Err(OperationError::forbidden("only the account may change its password"));
    }
    let hash = hash_off_runtime(password).await?;
    Ok(operations.store.set_account_password(&actor.audit, &hash).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::access::CallerIdentity;
    use secrecy::ExposeSecret;

    fn caller(identity: CallerIdentity) -> Caller {
        Caller { account_id: 1, account_name: "root".into(), identity, credential: Default::default() }
    }

    fn ram(name: &str, role: Role) -> Caller {
        caller(CallerIdentity::RamUser { user_id: 7, name: name.into(), role, status: UserStatus::Active })
    }

    #[test]
    fn passwords_are_bounded_and_never_echoed() {
        assert_eq!(parse_new_password("12345678".into()).unwrap().expose_secret(), "12345678");
        assert!(parse_new_password("密".repeat(MAX_PASSWORD_CHARACTERS)).is_ok());
        for refused in ["short-1", "", &"x".repeat(MAX_PASSWORD_CHARACTERS + 1)] {
            let error = parse_new_password(refused.to_string()).unwrap_err();
            assert_eq!(error.code, "InvalidParameter");
            assert!(refused.is_empty() || !error.message.contains(refused), "{}", error.message);
        }
    }

    #[test]
    fn a_ram_user_may_act_on_itself_and_only_admins_on_others() {
        assert!(may_act_on_user(&caller(CallerIdentity::Account), "bob").is_ok());
        assert!(may_act_on_user(&ram("alice", Role::Admin), "bob").is_ok());
        assert!(may_act_on_user(&ram("alice", Role::Member), "alice").is_ok());
        assert_eq!(may_act_on_user(&ram("alice", Role::KeyManager), "bob").unwrap_err().code, "Forbidden");
    }

    #[test]
    fn only_administrators_set_passwords_and_never_their_own() {
        let audit = keygate_store::AuditContext {
            account_id: 1,
            actor: String::new(),
            client_address: String::new(),
            region: String::new(),
            credential: String::new(),
            at: 0,
        };
        let actor = |caller: Caller| Actor { caller, region: String::new(), audit: audit.clone() };
        let name = |text: &str| PrincipalName::parse(text).unwrap();
        assert!(may_set_password(&actor(caller(CallerIdentity::Account)), &name("bob")).is_ok());
        assert!(may_set_password(&actor(ram("alice", Role::Admin)), &name("bob")).is_ok());
        for (who, whose) in
            [(ram("alice", Role::Admin), "alice"), (ram("alice", Role::Member), "alice"), (ram("alice", Role::Member), "bob")]
        {
            assert_eq!(may_set_password(&actor(who), &name(whose)).unwrap_err().code, "Forbidden", "{whose}");
        }
    }
}
