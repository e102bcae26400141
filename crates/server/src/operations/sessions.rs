//! Sessions: logging in with a name and password (the API's `POST /keygate/v1/sessions`
//! and the console's sign-in), the current password checked again before a caller changes
//! it, logging out, and the caller behind a session token; and the account acting on the
//! database directly (`keygate admin`).

use std::net::IpAddr;

use keygate_core::access::{Caller, CallerCredential, CallerIdentity, UserStatus};
use keygate_store::{AccountRecord, AuditContext, StoreError};
use secrecy::SecretString;

use super::{Actor, ErrorKind, OperationError, Operations};
use crate::secrets::{generate_session_token, session_label, session_token_digest, verify_password};
use crate::throttle::FailedAuthenticationThrottle;

type Result<T> = std::result::Result<T, OperationError>;

/// What a login presents: the account's name, a RAM user's name (`None`: the account
/// itself) and the password.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub account: &'a str,
    pub user: Option<&'a str>,
    pub password: &'a SecretString,
}

/// Checks a name and password from `client_address`; the same work is done whether or not
/// the name exists. An address that has failed `failed_logins_per_minute` times this minute
/// is refused (`Throttling`) before any password is checked, so guessing from one address
/// runs at that rate whatever the guesses; a failure is counted against it. Answers the
/// account id and, for a RAM user, its user id.
pub async fn check_login(
    operations: Operations<'_>,
    throttle: &FailedAuthenticationThrottle,
    credentials: Credentials<'_>,
    client_address: Option<IpAddr>,
) -> Result<(i64, Option<i64>)> {
    let now = operations.clock.now_seconds();
    if let Some(seconds) = throttle.retry_after(client_address, now) {
        return Err(OperationError::new(
            ErrorKind::Throttled,
            "Throttling",
            format!("Too many failed logins from this address; try again in {seconds} s."),
        )
        .with_retry_after_seconds(seconds));
    }
    let outcome = check_password(operations, credentials).await;
    if matches!(&outcome, Err(error) if error.code == "InvalidCredentials") {
        throttle.record_failure(client_address, now);
    }
    outcome
}

/// Checks the current password of `caller` (the account or a RAM user) before it changes
/// it, as a login from `client_address` would be checked: the same throttle (429
/// `Throttling` past `failed_logins_per_minute`, before any check), and a wrong password
/// counted against that address. A wrong password is 403 `IncorrectPassword`: the caller
/// is signed in, so it is not a 401 that would send a client to log in again.
pub async fn check_own_password(
    operations: Operations<'_>,
    throttle: &FailedAuthenticationThrottle,
    caller: &Caller,
    password: &SecretString,
    client_address: Option<IpAddr>,
) -> Result<()> {
    let user = match &caller.identity {
        CallerIdentity::Account => None,
        CallerIdentity::RamUser { name, .. } => Some(name.as_str()),
    };
    let credentials = Credentials { account: &caller.account_name, user, password };
    match check_login(operations, throttle, credentials, client_address).await {
        Ok((account_id, user_id)) if account_id == caller.account_id && user_id == caller.user_id() => Ok(()),
        Ok(_) => Err(OperationError::internal("a password check found another principal than the caller")),
        Err(error) if error.code == "InvalidCredentials" => Err(OperationError::new(
            ErrorKind::Forbidden,
            "IncorrectPassword",
            "The current password is wrong; the password was not changed.",
        )),
        Err(other) => Err(other),
    }
}

async fn check_password(operations: Operations<'_>, credentials: Credentials<'_>) -> Result<(i64, Option<i64>)> {
    let refused = || OperationError::unauthenticated("InvalidCredentials", "The name or password is wrong.");
    let store = operations.store;
    let account_record = store.find_account(credentials.account).await?;
    let (stored_hash, identity) = match (&account_record, credentials.user) {
        (None, _) => (None, None),
        (Some(record), None) => (Some(record.password_hash.clone()), Some((record.account_id, None))),
        (Some(record), Some(user_name)) => match store.find_user(record.account_id, user_name).await {
            Ok(user) if user.status == UserStatus::Active => (user.password_hash.clone(), Some((record.account_id, Some(user.user_id)))),
            Ok(_) | Err(StoreError::NotFound(_)) => (None, None),
            Err(other) => return Err(other.into()),
        },
    };
    let password = credentials.password.clone();
    let verified =
        tokio::task::spawn_blocking(move || verify_password(&password, stored_hash.as_deref())).await.map_err(OperationError::internal)?;
    match identity {
        Some(identity) if verified => Ok(identity),
        _ => Err(refused()),
    }
}

/// A session just opened, with its token: the one moment the token exists.
pub struct NewSession {
    pub token: SecretString,
    /// Unix milliseconds.
    pub expires_at: i64,
    pub caller: Caller,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("NewSession").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Logs in ([`check_login`]) and opens a session of `session_lifetime_seconds`. Its
/// `Session.Login` audit row names the same actor and credential (the session) as every
/// later change made in it, and the listener's `region`.
pub async fn login(
    operations: Operations<'_>,
    throttle: &FailedAuthenticationThrottle,
    credentials: Credentials<'_>,
    client_address: Option<IpAddr>,
    region: &str,
) -> Result<NewSession> {
    let (account_id, user_id) = check_login(operations, throttle, credentials, client_address).await?;
    let (token, digest) = generate_session_token();
    let expires_at = operations.clock.now_milliseconds() + operations.settings.session_lifetime_seconds * 1000;
    let caller = operations.store.caller(account_id, user_id).await?;
    let session_caller = Caller { credential: CallerCredential::Session(session_label(&digest)), ..caller.clone() };
    let client_address = client_address.map(|address| address.to_string()).unwrap_or_else(|| "unknown".into());
    let actor = operations.actor(session_caller, region, client_address);
    operations.store.create_session(&actor.audit, &digest, user_id, expires_at).await?;
    Ok(NewSession { token, expires_at, caller })
}

/// Ends the session whose token has `token_digest`.
pub async fn logout(operations: Operations<'_>, actor: &Actor, token_digest: &[u8; 32]) -> Result<()> {
    Ok(operations.store.delete_session(&actor.audit, token_digest).await?)
}

/// The caller behind a session token, acting through that session; an unknown or expired
/// token, or one whose user was deleted, is `InvalidBearerToken`.
pub async fn authenticate_session(operations: Operations<'_>, token: &str) -> Result<Caller> {
    let invalid = || OperationError::unauthenticated("InvalidBearerToken", "The session token is invalid or expired; log in again.");
    let digest = session_token_digest(token.trim());
    let caller = operations.store.session_caller(&digest, operations.clock.now_milliseconds()).await?.ok_or_else(invalid)?;
    Ok(Caller { credential: CallerCredential::Session(session_label(&digest)), ..caller })
}

/// Whether `caller` is a disabled RAM user, whom every credential is refused.
pub fn is_disabled(caller: &Caller) -> bool {
    matches!(caller.identity, CallerIdentity::RamUser { status: UserStatus::Disabled, .. })
}

/// The account `account` acting on the database directly (`keygate admin`), now, named
/// `name` in the audit log, from `local`, in no region and through no credential.
pub fn direct_actor(operations: Operations<'_>, account: &AccountRecord, name: &str) -> Actor {
    let caller = Caller {
        account_id: account.account_id,
        account_name: account.name.clone(),
        identity: CallerIdentity::Account,
        credential: CallerCredential::Direct,
    };
    let audit = AuditContext {
        account_id: account.account_id,
        actor: name.to_string(),
        client_address: "local".into(),
        region: String::new(),
        credential: String::new(),
        at: operations.clock.now_milliseconds(),
    };
    Actor { caller, region: String::new(), audit }
}
