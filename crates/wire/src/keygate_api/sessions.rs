//! Sessions: logging in (`POST /keygate/v1/sessions`), logging out and asking who the
//! caller is (`/keygate/v1/sessions/current`), and the caller changing its own password
//! (`PUT /keygate/v1/password`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /keygate/v1/sessions`.
// No `Debug`: it holds a password.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct LoginRequest {
    /// The account's name, e.g. `root`.
    pub account: String,
    /// A RAM user of the account; null or absent to log in as the account itself.
    #[serde(default)]
    pub user: Option<String>,
    #[schemars(extend("format" = "password"))]
    pub password: String,
}

/// A new session.
// No `Debug`: it holds the session token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// The session token (`kgs-...`), sent afterwards as `x-acs-bearer-token`; shown only here.
    pub token: String,
    /// Expiry, epoch milliseconds.
    pub expires_at: i64,
    pub account: String,
    /// The RAM user logged in, null for the account.
    pub user: Option<String>,
    /// `account`, or the RAM user's role (`admin`, `key-manager`, `member`).
    pub role: String,
}

/// `GET /keygate/v1/sessions/current`: the caller behind the request's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WhoAmIResponse {
    pub account: String,
    /// The RAM user, null for the account.
    pub user: Option<String>,
    /// `account`, or the RAM user's role.
    pub role: String,
    /// The region of the request.
    pub region: String,
}

/// `DELETE /keygate/v1/sessions/current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutResponse {
    pub logged_out: bool,
}

/// `PUT /keygate/v1/password`: the caller's own new password, with its current one.
// No `Debug`: it holds passwords.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schemars(extend("format" = "password"))]
    pub current_password: String,
    /// 8 to 256 characters, like a password set at creation.
    #[schemars(extend("format" = "password"))]
    pub new_password: String,
}

/// The answer of a password change: the caller's other sessions (API session tokens and
/// console cookies) have ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordResponse {
    pub changed: bool,
    /// How many of the caller's sessions ended; the one that made the change stays.
    pub sessions_ended: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_login_answer_names_a_missing_user_null() {
        let answer = LoginResponse { token: "kgs-x".into(), expires_at: 7, account: "root".into(), user: None, role: "account".into() };
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            json!({"token": "kgs-x", "expiresAt": 7, "account": "root", "user": null, "role": "account"})
        );
        assert_eq!(serde_json::to_value(LogoutResponse { logged_out: true }).unwrap(), json!({"loggedOut": true}));
    }

    #[test]
    fn a_password_change_names_both_passwords_in_camel_case_and_refuses_other_fields() {
        let request = ChangePasswordRequest { current_password: "old-one-1".into(), new_password: "new-one-12".into() };
        assert_eq!(serde_json::to_value(&request).unwrap(), json!({"currentPassword": "old-one-1", "newPassword": "new-one-12"}));
        assert!(serde_json::from_str::<ChangePasswordRequest>(r#"{"currentPassword": "a", "newPassword": "b", "password": "c"}"#).is_err());
        let answer = ChangePasswordResponse { changed: true, sessions_ended: 2 };
        assert_eq!(serde_json::to_value(answer).unwrap(), json!({"changed": true, "sessionsEnded": 2}));
    }

    #[test]
    fn a_login_request_may_leave_the_user_out_and_sends_it_as_null() {
        let request: LoginRequest = serde_json::from_str(r#"{"account": "root", "password": "p"}"#).unwrap();
        assert_eq!(request.user, None);
        assert_eq!(serde_json::to_value(&request).unwrap(), json!({"account": "root", "user": null, "password": "p"}));
    }
}
