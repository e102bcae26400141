//! The one refusal of every operation: what kind of refusal it is, a stable code and a
//! message for the caller. Which HTTP status, envelope or page shows it is the business of
//! the surface that called (`management::errors` maps the kinds to statuses). An internal
//! failure carries a generic message for the caller and its detail for the log, which the
//! surface writes once, where it answers (`management::boundary`, the console's pages,
//! `keygate admin`'s output): building the error logs nothing, so that an error passed
//! along or converted is not logged twice.

use keygate_core::access::AccessDenied;
use keygate_core::ids::IdError;
use keygate_core::key_import::BadLine;
use keygate_store::{Missing, StoreError};

/// What kind of refusal an [`OperationError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong, or the operation is not possible as asked.
    Invalid,
    /// No valid credentials.
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// The thing named does not exist (or the caller may not know it does).
    NotFound,
    /// It conflicts with what exists (a name taken).
    Conflict,
    /// Too many attempts; see `retry_after_seconds`.
    Throttled,
    /// Something failed inside keygate; the detail is in the log.
    Internal,
}

/// A refused or failed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    /// What few refusals carry besides (boxed: errors travel in `Result`s, and clippy's
    /// `result_large_err` wants them small).
    more: Option<Box<More>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct More {
    retry_after_seconds: Option<u64>,
    bad_lines: Vec<BadLine>,
    /// An internal failure's detail, for `keygate admin`'s own output (never in an
    /// answer: that has `message`).
    detail: Option<String>,
}

impl OperationError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> OperationError {
        OperationError { kind, code, message: message.into(), more: None }
    }

    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }

    /// Throttled: seconds until a retry may succeed.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.more.as_ref().and_then(|more| more.retry_after_seconds)
    }

    pub fn with_retry_after_seconds(mut self, seconds: u64) -> OperationError {
        self.more().retry_after_seconds = Some(seconds);
        self
    }

    /// A refused import: every bad line (the message names the first few).
    pub fn bad_lines(&self) -> &[BadLine] {
        self.more.as_ref().map_or(&[], |more| &more.bad_lines)
    }

    /// The same refusal, naming `bad_lines` too.
    pub fn with_bad_lines(mut self, bad_lines: Vec<BadLine>) -> OperationError {
        self.more().bad_lines = bad_lines;
        self
    }

    /// An internal failure's detail: for the log and `keygate admin`'s output, never for an
    /// answer.
    pub fn detail(&self) -> Option<&str> {
        self.more.as_ref().and_then(|more| more.detail.as_deref())
    }

    pub fn invalid_parameter(message: impl Into<String>) -> OperationError {
        OperationError::new(ErrorKind::Invalid, "InvalidParameter", message)
    }

    pub fn forbidden(message: impl Into<String>) -> OperationError {
        OperationError::new(ErrorKind::Forbidden, "Forbidden", message)
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> OperationError {
        OperationError::new(ErrorKind::Unauthenticated, code, message)
    }

    pub fn api_key_not_found() -> OperationError {
        OperationError::new(ErrorKind::NotFound, "ApiKey.NotFound", "The API key does not exist.")
    }

    pub fn workspace_not_found() -> OperationError {
        OperationError::new(ErrorKind::NotFound, "Workspace.NotFound", "The workspace does not exist in this region.")
    }

    pub fn access_key_not_found() -> OperationError {
        OperationError::from(StoreError::NotFound(Missing::AccessKey))
    }

    pub fn unsupported_in_region(operation: &str, region: &str) -> OperationError {
        OperationError::new(ErrorKind::Invalid, "UnsupportedOperation", format!("{operation} is not supported in region {region}."))
    }

    /// Internal failure: the caller gets a generic message; the detail is kept for the log
    /// ([`OperationError::detail`]).
    pub fn internal(detail: impl std::fmt::Display) -> OperationError {
        let mut error = OperationError::new(ErrorKind::Internal, "InternalError", "An internal error occurred; see the server log.");
        error.more().detail = Some(detail.to_string());
        error
    }
}

/// The message; for an internal failure, its detail (`keygate admin` prints it).
impl std::fmt::Display for OperationError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.detail().unwrap_or(&self.message))
    }
}

impl std::error::Error for OperationError {}

impl From<StoreError> for OperationError {
    fn from(error: StoreError) -> Self {
        use ErrorKind::{Conflict, Invalid, NotFound};
        match error {
            StoreError::NotFound(Missing::ApiKey) => OperationError::api_key_not_found(),
            StoreError::NotFound(Missing::Workspace) => OperationError::workspace_not_found(),
            StoreError::NotFound(Missing::User) => OperationError::new(NotFound, "User.NotFound", "The RAM user does not exist."),
            StoreError::NotFound(Missing::AccessKey) => OperationError::new(NotFound, "AccessKey.NotFound", "The AccessKey does not exist."),
            StoreError::NotFound(what) => OperationError::new(NotFound, "NotFound", format!("{what} does not exist.")),
            StoreError::KeyQuotaExceeded { limit } => OperationError::new(
                Invalid,
                "QuotaExceeded.ApiKey",
                format!("The API key limit of this region ({limit}) is reached; delete a key first."),
            ),
            StoreError::ImportQuotaExceeded { limit, existing, importing } => OperationError::new(
                Invalid,
                "QuotaExceeded.ApiKey",
                format!(
                    "Nothing was imported: importing {importing} {} would exceed the API key limit of this region ({limit}) by {} ({existing} already exist).",
                    if importing == 1 { "key" } else { "keys" },
                    (existing + importing).saturating_sub(u64::from(limit))
                ),
            ),
            StoreError::KeysExist { positions } => OperationError::invalid_parameter(format!(
                "Nothing was imported: {} of the keys are already in keygate or repeat another.",
                positions.len()
            )),
            StoreError::WorkspaceQuotaExceeded { limit } => OperationError::new(
                Invalid,
                "QuotaExceeded.Workspace",
                format!("The workspace limit of this region ({limit}) is reached."),
            ),
            StoreError::Conflict(message) => OperationError::new(Conflict, "Conflict", message),
            StoreError::InvalidLimit(message) => OperationError::invalid_parameter(message),
            StoreError::Refused(message) => OperationError::new(Invalid, "OperationDenied", message),
            other => OperationError::internal(other),
        }
    }
}

impl From<AccessDenied> for OperationError {
    fn from(denied: AccessDenied) -> Self {
        OperationError::forbidden(denied.0)
    }
}

impl From<IdError> for OperationError {
    fn from(error: IdError) -> Self {
        OperationError::invalid_parameter(error.to_string())
    }
}
