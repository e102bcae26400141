//! Who may do what: roles of RAM users, the caller of a management request, and the rules
//! of SPEC section 3 about creating, seeing and changing keys, users and workspaces.

/// A RAM user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages workspaces, users and (its own) keys.
    Admin,
    /// The "API-Key page permission": creates and manages its own keys.
    KeyManager,
    /// May call models with keys it is given, may not create keys.
    Member,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "key-manager" => Some(Role::KeyManager),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::KeyManager => "key-manager",
            Role::Member => "member",
        }
    }
}

/// A RAM user's status; deletion is final and not a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn parse(text: &str) -> Option<UserStatus> {
        match text {
            "active" => Some(UserStatus::Active),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }
}

/// The authenticated caller of a management request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: i64,
    pub account_name: String,
    pub identity: CallerIdentity,
}

/// The account itself, or one of its RAM users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerIdentity {
    Account,
    RamUser { user_id: i64, name: String, role: Role, status: UserStatus },
}

/// Which keys a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVisibility {
    /// Every key of the account.
    WholeAccount,
    /// Only keys this RAM user created.
    CreatedBy(i64),
}

/// A refusal, with a message fit for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AccessDenied(pub &'static str);

impl Caller {
    /// The name recorded as `createdBy` and in the audit log.
    pub fn display_name(&self) -> &str {
        match &self.identity {
            CallerIdentity::Account => &self.account_name,
            CallerIdentity::RamUser { name, .. } => name,
        }
    }

    /// The RAM user id, `None` for the account itself.
    pub fn user_id(&self) -> Option<i64> {
        match &self.identity {
            CallerIdentity::Account => None,
            CallerIdentity::RamUser { user_id, .. } => Some(*user_id),
        }
    }

    pub fn is_account(&self) -> bool {
        matches!(self.identity, CallerIdentity::Account)
    }

    fn active_role(&self) -> Result<Option<Role>, AccessDenied> {
        match &self.identity {
            CallerIdentity::Account => Ok(None),
            CallerIdentity::RamUser { status: UserStatus::Disabled, .. } => Err(AccessDenied("this RAM user is disabled")),
            CallerIdentity::RamUser { role, .. } => Ok(Some(*role)),
        }
    }

    /// Rule 1: the account, or an active admin or key-manager who is a member of the
    /// target workspace.
    pub fn may_create_key(&self, is_member_of_workspace: bool) -> Result<(), AccessDenied> {
        match self.active_role()? {
            None => Ok(()),
            Some(Role::Member) => {
                Err(AccessDenied("RAM users with the member role may not create API keys; ask an admin for the key-manager role"))
            }
            Some(_) if !is_member_of_workspace => Err(AccessDenied("you are not a member of this workspace")),
            Some(_) => Ok(()),
        }
    }

    /// Rule 4: the account sees every key; a RAM user only the keys it created.
    pub fn key_visibility(&self) -> KeyVisibility {
        match &self.identity {
            CallerIdentity::Account => KeyVisibility::WholeAccount,
            CallerIdentity::RamUser { user_id, .. } => KeyVisibility::CreatedBy(*user_id),
        }
    }

    /// Rule 4 for one key: `creator_user_id` is `None` for keys the account created.
    pub fn may_see_key(&self, creator_user_id: Option<i64>) -> bool {
        match self.key_visibility() {
            KeyVisibility::WholeAccount => true,
            KeyVisibility::CreatedBy(user_id) => creator_user_id == Some(user_id),
        }
    }

    /// Managing RAM users, workspaces, model grants and applications: the account or an
    /// active admin.
    pub fn may_administer(&self) -> Result<(), AccessDenied> {
        match self.active_role()? {
            None | Some(Role::Admin) => Ok(()),
            Some(_) => Err(AccessDenied("only the account or an admin RAM user may do this")),
        }
    }

    /// AccessKeys: anyone active for itself; the account and admins for RAM users.
    /// `target_user_id` is `None` for the account's own AccessKeys.
    pub fn may_manage_access_keys_of(&self, target_user_id: Option<i64>) -> Result<(), AccessDenied> {
        let role = self.active_role()?;
        match (role, target_user_id) {
            (None, _) => Ok(()),
            (Some(Role::Admin), Some(_)) => Ok(()),
            (Some(_), Some(target)) if Some(target) == self.user_id() => Ok(()),
            _ => Err(AccessDenied("you may manage only your own AccessKeys")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram(role: Role, status: UserStatus) -> Caller {
        Caller {
            account_id: 1,
            account_name: "root".into(),
            identity: CallerIdentity::RamUser { user_id: 7, name: "alice".into(), role, status },
        }
    }

    fn account() -> Caller {
        Caller { account_id: 1, account_name: "root".into(), identity: CallerIdentity::Account }
    }

    #[test]
    fn who_may_create_keys() {
        assert!(account().may_create_key(false).is_ok());
        assert!(ram(Role::Admin, UserStatus::Active).may_create_key(true).is_ok());
        assert!(ram(Role::KeyManager, UserStatus::Active).may_create_key(true).is_ok());
        assert!(ram(Role::KeyManager, UserStatus::Active).may_create_key(false).is_err());
        assert!(ram(Role::Member, UserStatus::Active).may_create_key(true).is_err());
        assert!(ram(Role::Admin, UserStatus::Disabled).may_create_key(true).is_err());
    }

    #[test]
    fn ram_users_see_only_their_own_keys_whatever_their_role() {
        assert!(account().may_see_key(Some(99)));
        assert!(account().may_see_key(None));
        for role in [Role::Admin, Role::KeyManager, Role::Member] {
            let caller = ram(role, UserStatus::Active);
            assert!(caller.may_see_key(Some(7)));
            assert!(!caller.may_see_key(Some(8)));
            assert!(!caller.may_see_key(None));
        }
    }

    #[test]
    fn administration_is_for_the_account_and_admins() {
        assert!(account().may_administer().is_ok());
        assert!(ram(Role::Admin, UserStatus::Active).may_administer().is_ok());
        assert!(ram(Role::KeyManager, UserStatus::Active).may_administer().is_err());
        assert!(ram(Role::Member, UserStatus::Active).may_manage_access_keys_of(Some(7)).is_ok());
        assert!(ram(Role::Member, UserStatus::Active).may_manage_access_keys_of(Some(8)).is_err());
        assert!(ram(Role::Admin, UserStatus::Active).may_manage_access_keys_of(None).is_err());
    }
}
