//! RAM users (`/keygate/v1/users...`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A RAM user as the API shows it; never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: i64,
    pub name: String,
    /// `admin`, `key-manager` or `member`.
    pub role: String,
    /// `active` or `disabled`.
    pub status: String,
    /// Sub-workspaces the user was added to, in every region; every user is also a member
    /// of each default workspace.
    pub workspaces: Vec<String>,
    /// Epoch milliseconds.
    pub gmt_create: i64,
}

/// `GET /keygate/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListUsersResponse {
    pub users: Vec<User>,
}

/// The answer of every call that reads or changes one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserResponse {
    pub user: User,
}

/// `POST /keygate/v1/users`.
// No `Debug`: it may hold a password.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub name: String,
    /// `admin`, `key-manager` or `member`.
    pub role: String,
    /// Without one the user cannot log in (AccessKeys still work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "password"))]
    pub password: Option<String>,
}

/// `PUT /keygate/v1/users/{name}/role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// `admin`, `key-manager` or `member`.
    pub role: String,
}

/// `PUT /keygate/v1/users/{name}/password`.
// No `Debug`: it holds a password.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    #[schemars(extend("format" = "password"))]
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_user_has_exactly_its_six_fields() {
        let user = User {
            user_id: 3,
            name: "alice".into(),
            role: "key-manager".into(),
            status: "active".into(),
            workspaces: vec!["llm-0123456789abcdef".into()],
            gmt_create: 9,
        };
        assert_eq!(
            serde_json::to_value(UserResponse { user }).unwrap(),
            json!({"user": {"userId": 3, "name": "alice", "role": "key-manager", "status": "active", "workspaces": ["llm-0123456789abcdef"], "gmtCreate": 9}})
        );
    }

    #[test]
    fn requests_refuse_unknown_fields_and_a_user_without_password_sends_none() {
        assert!(serde_json::from_str::<SetRoleRequest>(r#"{"role": "admin", "x": 1}"#).is_err());
        let request = CreateUserRequest { name: "bob".into(), role: "member".into(), password: None };
        assert_eq!(serde_json::to_value(&request).unwrap(), json!({"name": "bob", "role": "member"}));
    }
}
