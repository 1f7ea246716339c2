//! The one error type of the crate. Driver, pool and migration errors are
//! turned into text here or in the backend layer, so no Diesel or r2d2 type
//! ever reaches a caller (Handshake's trait purity rule, CX-DBP-040).

use thiserror::Error;

/// The result of every storage call.
pub type StorageResult<T> = Result<T, StorageError>;

/// What went wrong, by kind. Each kind is the same on every backend for the
/// same cause; the text says which entity and id, never a password.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorageError {
    /// The row the call names does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A duplicate id or another uniqueness clash.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Input the store refuses: a missing parent, a NUL byte, a bad URL, an
    /// empty name, a value out of range.
    #[error("validation failed: {0}")]
    Validation(String),
    /// The mutation guard refused the write (`HSK-403-SILENT-EDIT`).
    #[error("mutation guard blocked: {0}")]
    Guard(String),
    /// A value could not be encoded or a stored value could not be decoded
    /// (for example an enum string that is not one of ours).
    #[error("serialization error: {0}")]
    Serialization(String),
    /// The driver or the pool failed: connection, timeout, I/O.
    #[error("database error: {0}")]
    Database(String),
    /// Applying or reverting a migration failed.
    #[error("migration error: {0}")]
    Migration(String),
}

/// The kind of a [`StorageError`], one per variant, for comparing errors
/// across backends and in tests without matching on their text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Validation,
    Guard,
    Serialization,
    Database,
    Migration,
}

impl ErrorKind {
    /// The variant's name: `"NotFound"`, `"Validation"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::Validation => "Validation",
            ErrorKind::Guard => "Guard",
            ErrorKind::Serialization => "Serialization",
            ErrorKind::Database => "Database",
            ErrorKind::Migration => "Migration",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StorageError {
    /// Which kind of error this is; the same on every backend for the same
    /// cause.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StorageError::NotFound(_) => ErrorKind::NotFound,
            StorageError::Conflict(_) => ErrorKind::Conflict,
            StorageError::Validation(_) => ErrorKind::Validation,
            StorageError::Guard(_) => ErrorKind::Guard,
            StorageError::Serialization(_) => ErrorKind::Serialization,
            StorageError::Database(_) => ErrorKind::Database,
            StorageError::Migration(_) => ErrorKind::Migration,
        }
    }

    /// The message (as `Display` writes it) folded onto one line, for logs
    /// and command lines.
    pub fn to_one_line(&self) -> String {
        one_line(&self.to_string())
    }

    pub(crate) fn not_found(entity: &str, id: impl std::fmt::Display) -> Self {
        StorageError::NotFound(format!("{entity} {id}"))
    }

    pub(crate) fn validation(msg: impl Into<String>) -> Self {
        StorageError::Validation(msg.into())
    }
}

/// `message` folded onto one line: driver messages (libpq's above all) can
/// span several or end in a newline, and ours are one line each.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl From<serde_json::Error> for StorageError {
    fn from(err: serde_json::Error) -> Self {
        StorageError::Serialization(err.to_string())
    }
}
