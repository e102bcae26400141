//! Identifiers and small validated values, each parsed once at the edge: key ids,
//! workspace ids, AccessKey ids, application ids, account and user names, descriptions.

use crate::random::random_string_from;

const LOWER_ALPHANUMERIC: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const ALPHANUMERIC: &[u8; 62] = crate::base62::ALPHABET;

/// Why an identifier or value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} '{shown}' is malformed: {expected}")]
    Malformed { what: &'static str, shown: String, expected: &'static str },
    #[error("{what} is too long: at most {maximum} characters, got {actual}")]
    TooLong { what: &'static str, maximum: usize, actual: usize },
}

fn malformed(what: &'static str, text: &str, expected: &'static str) -> IdError {
    // A key pasted where an id belongs is not repeated back.
    IdError::Malformed { what, shown: crate::keys::shown_input(text, 48), expected }
}

/// An API key id: a positive integer, increasing, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyId(i64);

impl ApiKeyId {
    pub fn parse(text: &str) -> Result<ApiKeyId, IdError> {
        match text.trim().parse::<i64>() {
            Ok(value) if value > 0 => Ok(ApiKeyId(value)),
            _ => Err(malformed("apiKeyId", text, "a positive integer")),
        }
    }

    pub fn from_i64(value: i64) -> ApiKeyId {
        ApiKeyId(value)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for ApiKeyId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// `llm-` + 16 characters `[a-z0-9]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    pub fn parse(text: &str) -> Result<WorkspaceId, IdError> {
        let valid = text.len() == 20 && text.starts_with("llm-") && text[4..].bytes().all(|byte| LOWER_ALPHANUMERIC.contains(&byte));
        if valid {
            Ok(WorkspaceId(text.to_string()))
        } else {
            Err(malformed("workspaceId", text, "'llm-' followed by 16 characters a-z or 0-9"))
        }
    }

    pub fn generate() -> WorkspaceId {
        WorkspaceId(format!("llm-{}", random_string_from(LOWER_ALPHANUMERIC, 16)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WorkspaceId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An AccessKey id: `LTAI` + 20 characters `[A-Za-z0-9]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessKeyId(String);

/// Length of an AccessKey secret.
pub const ACCESS_KEY_SECRET_LENGTH: usize = 30;

impl AccessKeyId {
    pub fn parse(text: &str) -> Result<AccessKeyId, IdError> {
        let valid = text.len() == 24 && text.starts_with("LTAI") && text[4..].bytes().all(|byte| byte.is_ascii_alphanumeric());
        if valid {
            Ok(AccessKeyId(text.to_string()))
        } else {
            Err(malformed("AccessKeyId", text, "'LTAI' followed by 20 letters or digits"))
        }
    }

    pub fn generate() -> AccessKeyId {
        AccessKeyId(format!("LTAI{}", random_string_from(ALPHANUMERIC, 20)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A fresh AccessKey secret (30 characters `[A-Za-z0-9]`), shown once.
pub fn generate_access_key_secret() -> secrecy::SecretString {
    secrecy::SecretString::from(random_string_from(ALPHANUMERIC, ACCESS_KEY_SECRET_LENGTH))
}

/// An application id: 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

impl AppId {
    pub fn parse(text: &str) -> Result<AppId, IdError> {
        let valid = text.len() == 32 && text.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if valid {
            Ok(AppId(text.to_string()))
        } else {
            Err(malformed("app id", text, "32 lowercase hex characters"))
        }
    }

    pub fn generate() -> AppId {
        AppId(random_string_from(b"0123456789abcdef", 32))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account or RAM user name: 1-64 characters `[A-Za-z0-9._-]`, starting with a letter
/// or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrincipalName(String);

impl PrincipalName {
    pub fn parse(text: &str) -> Result<PrincipalName, IdError> {
        // A name is shown everywhere (audit rows, `createdBy`, the console), so none may
        // start like a key: a key pasted into a name field would be stored and shown.
        let valid = (1..=64).contains(&text.len())
            && text.bytes().next().is_some_and(|byte| byte.is_ascii_alphanumeric())
            && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
            && ![crate::keys::CLASSIC_PREFIX, crate::keys::TEMPORARY_PREFIX].iter().any(|prefix| text.starts_with(prefix));
        if valid {
            Ok(PrincipalName(text.to_string()))
        } else {
            Err(malformed(
                "name",
                text,
                "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, and not with 'sk-' or 'st-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PrincipalName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Most characters in a key description.
pub const MAX_DESCRIPTION_CHARACTERS: usize = 200;

/// A key description: at most 200 characters (counted as characters, not bytes), no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub fn parse(text: &str) -> Result<Description, IdError> {
        let count = text.chars().count();
        if count > MAX_DESCRIPTION_CHARACTERS {
            return Err(IdError::TooLong { what: "description", maximum: MAX_DESCRIPTION_CHARACTERS, actual: count });
        }
        if text.chars().any(|character| character.is_control()) {
            return Err(malformed("description", text, "no control characters"));
        }
        Ok(Description(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A workspace name: 1-64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    pub fn parse(text: &str) -> Result<WorkspaceName, IdError> {
        let trimmed = text.trim();
        let count = trimmed.chars().count();
        if count == 0 || trimmed.chars().any(char::is_control) {
            return Err(malformed("workspaceName", text, "1 to 64 printable characters"));
        }
        if count > 64 {
            return Err(IdError::TooLong { what: "workspaceName", maximum: 64, actual: count });
        }
        Ok(WorkspaceName(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse() {
        assert!(WorkspaceId::parse(WorkspaceId::generate().as_str()).is_ok());
        assert!(AccessKeyId::parse(AccessKeyId::generate().as_str()).is_ok());
        assert!(AppId::parse(AppId::generate().as_str()).is_ok());
        assert_eq!(secrecy::ExposeSecret::expose_secret(&generate_access_key_secret()).len(), 30);
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!(WorkspaceId::parse("llm-UPPERCASE00000000").is_err());
        assert!(WorkspaceId::parse("ws-0123456789abcdef").is_err());
        assert!(ApiKeyId::parse("0").is_err());
        assert!(ApiKeyId::parse("abc").is_err());
        assert!(PrincipalName::parse("").is_err());
        assert!(PrincipalName::parse("-dash").is_err());
        assert!(PrincipalName::parse("alice smith").is_err());
        assert!(PrincipalName::parse("sk-ws-AbCd").is_err());
        assert!(PrincipalName::parse("st-AbCd").is_err());
        assert!(PrincipalName::parse("test-user").is_ok());
    }

    #[test]
    fn a_key_where_an_id_belongs_is_not_repeated_in_the_error() {
        let key = "sk-ws-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
        for error in [WorkspaceId::parse(key).unwrap_err(), PrincipalName::parse(key).unwrap_err(), AppId::parse(key).unwrap_err()] {
            assert!(!error.to_string().contains("AbCdEf"), "{error}");
        }
        assert!(WorkspaceId::parse("llm-ABC").unwrap_err().to_string().contains("'llm-ABC'"));
    }

    #[test]
    fn descriptions_count_characters_not_bytes() {
        assert!(Description::parse(&"中".repeat(200)).is_ok());
        assert_eq!(Description::parse(&"x".repeat(201)), Err(IdError::TooLong { what: "description", maximum: 200, actual: 201 }));
    }
}
