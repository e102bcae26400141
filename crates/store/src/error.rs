//! The store's errors: domain outcomes (not found, quota, conflict) kept apart from
//! database failures, which the HTTP layer logs and answers as a generic 500.

/// What a [`StoreError::NotFound`] did not find: callers answer each kind with its own
/// code (`ApiKey.NotFound`, ...), so it is a type, not a string to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Account,
    AccessKey,
    ApiKey,
    User,
    Workspace,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Missing::Account => "Account",
            Missing::AccessKey => "AccessKey",
            Missing::ApiKey => "ApiKey",
            Missing::User => "User",
            Missing::Workspace => "Workspace",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing does not exist, or the caller may not see it.
    #[error("{0} not found")]
    NotFound(Missing),
    #[error("the API key limit of {limit} is reached")]
    KeyQuotaExceeded { limit: u32 },
    /// An import would take an owner past the region's limit: `existing` keys plus
    /// `importing` new ones exceed `limit`. Nothing was written.
    #[error("importing {importing} keys would exceed the API key limit of {limit} ({existing} exist)")]
    ImportQuotaExceeded { limit: u32, existing: u64, importing: u64 },
    /// An import names keys that are already stored or that repeat an earlier key of the
    /// same batch, at these positions of the batch. Nothing was written.
    #[error("{} keys of the import already exist", positions.len())]
    KeysExist { positions: Vec<usize> },
    #[error("the workspace limit of {limit} is reached")]
    WorkspaceQuotaExceeded { limit: u32 },
    /// A unique constraint: the name or id is taken.
    #[error("{0}")]
    Conflict(String),
    /// A model limit that cannot be stored (UpdateModelLimits); the message names the item
    /// and the field. Nothing was written.
    #[error("{0}")]
    InvalidLimit(String),
    /// A request the data refuses (e.g. deleting the account's default workspace).
    #[error("{0}")]
    Refused(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A failure of the SQLite connection the full load reads on ([`crate::sqlite_snapshot`]).
    #[error("database error: {0}")]
    SqliteSnapshot(#[from] rusqlite::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database file could not be created or its permissions set.
    #[error("database file: {0}")]
    Io(std::io::Error),
    /// The group commit this write was part of did not commit (the database failed
    /// during the batch): nothing of the write was stored.
    #[error("the grouped write did not commit: {0}")]
    GroupCommit(String),
    /// A row that does not decode into a domain value (corruption or a bug).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when this is a unique-constraint violation.
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(database_error)) if database_error.is_unique_violation())
    }
}
