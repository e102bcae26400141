//! Who may do what: roles of RAM users, the caller of a management request, and the rules
//! of docs/CONTRACT.md#api-key-rules about creating, seeing and changing keys, users and workspaces.

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
    /// What the caller proved itself with, for the audit log.
    pub credential: CallerCredential,
}

/// The credential a caller acted through. An AccessKey may be made by an admin for
/// another user, and that user then acts through it; the audit log names the AccessKey so
/// that such actions can be traced to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CallerCredential {
    /// On the database directly (`keygate admin`) or inside keygate.
    #[default]
    Direct,
    /// A signature made with this AccessKey id.
    AccessKey(String),
    /// A session, named by the first characters of its token's digest (not secret: the
    /// token cannot be recovered from them).
    Session(String),
}

impl CallerCredential {
    /// How the audit log writes it: `accessKey:LTAI...`, `session:1a2b3c4d`, or empty.
    pub fn audit_text(&self) -> String {
        match self {
            CallerCredential::Direct => String::new(),
            CallerCredential::AccessKey(id) => format!("accessKey:{id}"),
            CallerCredential::Session(id) => format!("session:{id}"),
        }
    }
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

/// What a caller does to an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    Create,
    List,
    View,
    Edit,
    Disable,
    Enable,
    /// A new secret for the key (ResetApiKey).
    Reset,
    /// A new secret for a plan key (RotateTokenPlanKey).
    Rotate,
    Delete,
}

impl KeyAction {
    pub const ALL: [KeyAction; 9] = [
        KeyAction::Create,
        KeyAction::List,
        KeyAction::View,
        KeyAction::Edit,
        KeyAction::Disable,
        KeyAction::Enable,
        KeyAction::Reset,
        KeyAction::Rotate,
        KeyAction::Delete,
    ];

    /// Whether the action can widen a key or hand out a working secret.
    pub fn needs_key_manager(self) -> bool {
        matches!(self, KeyAction::Create | KeyAction::Edit | KeyAction::Enable | KeyAction::Reset | KeyAction::Rotate)
    }
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

    /// How the audit log names the caller: the account's name, or `user@account` for a RAM
    /// user (a user's name is unique only within its account).
    pub fn audit_actor(&self) -> String {
        match &self.identity {
            CallerIdentity::Account => self.account_name.clone(),
            CallerIdentity::RamUser { name, .. } => format!("{name}@{}", self.account_name),
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

    /// Creating a key: the account, or an active admin or key-manager who is a member of
    /// the target workspace.
    pub fn may_create_key(&self, is_member_of_workspace: bool) -> Result<(), AccessDenied> {
        self.may_act_on_key(KeyAction::Create, is_member_of_workspace)
    }

    /// Whether the caller may do `action` to a key it may see (or, for `Create`, in a
    /// workspace), where `is_member_of_workspace` says whether it is a member of the key's
    /// workspace. Every active caller may list, view, disable and delete the keys it sees:
    /// those only take power away. Creating, editing, enabling, resetting and rotating can
    /// widen a key or hand out a working secret, so they need the account, or an admin or
    /// key-manager who is still a member of the key's workspace: a user demoted to member,
    /// or removed from the workspace, keeps its keys but can no longer revive or widen them.
    pub fn may_act_on_key(&self, action: KeyAction, is_member_of_workspace: bool) -> Result<(), AccessDenied> {
        let role = self.active_role()?;
        if !action.needs_key_manager() {
            return Ok(());
        }
        match role {
            None => Ok(()),
            Some(Role::Member) => Err(AccessDenied(match action {
                KeyAction::Create => {
                    "RAM users with the member role may not create API keys; ask an admin for the key-manager role"
                }
                _ => "RAM users with the member role may only list, view, disable and delete their API keys; ask an admin for the key-manager role",
            })),
            Some(_) if !is_member_of_workspace => Err(AccessDenied(match action {
                KeyAction::Create => "you are not a member of this workspace",
                _ => "you are no longer a member of this key's workspace",
            })),
            Some(_) => Ok(()),
        }
    }

    /// docs/CONTRACT.md#who-sees-a-key: the account sees every key; a RAM user only the keys it created.
    pub fn key_visibility(&self) -> KeyVisibility {
        match &self.identity {
            CallerIdentity::Account => KeyVisibility::WholeAccount,
            CallerIdentity::RamUser { user_id, .. } => KeyVisibility::CreatedBy(*user_id),
        }
    }

    /// Which workspaces of a region the caller sees: the account and admins all of them
    /// (see [`Caller::sees_every_workspace`]); another RAM user the default workspace and
    /// those it is a member of.
    pub fn may_see_workspace(&self, is_default: bool, is_member: bool) -> bool {
        is_default || is_member || self.sees_every_workspace()
    }

    /// Whether the caller sees every workspace of a region, whatever its memberships: the
    /// account and active admins.
    pub fn sees_every_workspace(&self) -> bool {
        self.may_administer().is_ok()
    }

    /// Which workspaces the caller's membership lets it create keys in: the account all of
    /// them; a RAM user, admins too, only the default workspace and those it is a member
    /// of. Whether its role lets it create keys at all is [`Caller::may_create_key`]'s.
    pub fn may_create_keys_in(&self, is_default: bool, is_member: bool) -> bool {
        self.is_account() || is_default || is_member
    }

    /// Managing RAM users, workspaces, model grants and applications: the account or an
    /// active admin.
    pub fn may_administer(&self) -> Result<(), AccessDenied> {
        match self.active_role()? {
            None | Some(Role::Admin) => Ok(()),
            Some(_) => Err(AccessDenied("only the account or an admin RAM user may do this")),
        }
    }

    /// Looking up or changing the password of the RAM user `name`: the account and admins
    /// for anyone, a RAM user for itself.
    pub fn may_act_on_user(&self, name: &str) -> Result<(), AccessDenied> {
        match &self.identity {
            CallerIdentity::RamUser { name: own_name, .. } if own_name == name => Ok(()),
            _ => self.may_administer(),
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
            credential: CallerCredential::Direct,
        }
    }

    fn account() -> Caller {
        Caller { account_id: 1, account_name: "root".into(), identity: CallerIdentity::Account, credential: CallerCredential::Direct }
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
    fn members_may_only_take_power_away_from_their_keys() {
        for action in KeyAction::ALL {
            assert!(account().may_act_on_key(action, false).is_ok(), "{action:?}");
            for role in [Role::Admin, Role::KeyManager] {
                assert!(ram(role, UserStatus::Active).may_act_on_key(action, true).is_ok(), "{role:?} {action:?}");
                assert_eq!(
                    ram(role, UserStatus::Active).may_act_on_key(action, false).is_ok(),
                    !action.needs_key_manager(),
                    "{role:?} {action:?}"
                );
            }
            assert_eq!(
                ram(Role::Member, UserStatus::Active).may_act_on_key(action, true).is_ok(),
                !action.needs_key_manager(),
                "{action:?}"
            );
            assert!(ram(Role::KeyManager, UserStatus::Disabled).may_act_on_key(action, true).is_err(), "{action:?}");
        }
    }

    #[test]
    fn the_audit_log_names_a_ram_user_with_its_account() {
        assert_eq!(account().audit_actor(), "root");
        assert_eq!(ram(Role::Member, UserStatus::Active).audit_actor(), "alice@root");
    }

    #[test]
    fn ram_users_see_only_their_own_keys_whatever_their_role() {
        assert_eq!(account().key_visibility(), KeyVisibility::WholeAccount);
        for role in [Role::Admin, Role::KeyManager, Role::Member] {
            assert_eq!(ram(role, UserStatus::Active).key_visibility(), KeyVisibility::CreatedBy(7), "{role:?}");
        }
    }

    #[test]
    fn workspaces_are_seen_by_administrators_and_members_and_keys_go_where_one_is_a_member() {
        assert!(account().may_see_workspace(false, false));
        assert!(account().may_create_keys_in(false, false));
        let admin = ram(Role::Admin, UserStatus::Active);
        assert!(admin.may_see_workspace(false, false));
        assert!(!admin.may_create_keys_in(false, false));
        for role in [Role::Admin, Role::KeyManager, Role::Member] {
            let caller = ram(role, UserStatus::Active);
            assert!(caller.may_see_workspace(true, false) && caller.may_see_workspace(false, true), "{role:?}");
            assert!(caller.may_create_keys_in(true, false) && caller.may_create_keys_in(false, true), "{role:?}");
        }
        assert!(!ram(Role::KeyManager, UserStatus::Active).may_see_workspace(false, false));
        assert!(!ram(Role::Admin, UserStatus::Disabled).sees_every_workspace());
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
