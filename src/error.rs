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
    /// The driver or the pool failed: connection, timeout, I/O. When the
    /// server went away under the call (a failover, a shutdown, a primary
    /// turned read-only standby) the message says whether the call wrote
    /// anything: see [`StorageError::is_retryable`] and
    /// [`StorageError::is_outcome_unknown`].
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
    /// [`StorageError::NotFound`].
    NotFound,
    /// [`StorageError::Conflict`].
    Conflict,
    /// [`StorageError::Validation`].
    Validation,
    /// [`StorageError::Guard`].
    Guard,
    /// [`StorageError::Serialization`].
    Serialization,
    /// [`StorageError::Database`].
    Database,
    /// [`StorageError::Migration`].
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

    /// Whether the call certainly did not take effect because the server
    /// could not run it (a failover in progress, a shutdown, a connection
    /// refused or lost before the statement could commit, a primary turned
    /// read-only standby, no connection free in time): calling again is
    /// safe, and after a failover reaches the new primary. Never true for
    /// an error the data caused (`Conflict`, `Validation`, ...), nor when
    /// the connection was lost while a write was committing
    /// ([`StorageError::is_outcome_unknown`]). The store does not retry
    /// writes on its own.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Database(m) if m.ends_with(NOT_APPLIED))
    }

    /// Whether the connection was lost while a write was committing: it
    /// may or may not have taken effect. Not retryable blindly; a write
    /// with an id the caller chose can be sent again, and a `Conflict`
    /// then says that the first attempt did commit.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, StorageError::Database(m) if m.ends_with(OUTCOME_UNKNOWN))
    }

    /// A `Database` error for a call the server did not run (see
    /// [`StorageError::is_retryable`]).
    pub(crate) fn not_applied(message: impl std::fmt::Display) -> Self {
        StorageError::Database(format!("{message}{NOT_APPLIED}"))
    }

    /// A `Database` error for a connection lost while a statement may have
    /// been committing (see [`StorageError::is_outcome_unknown`]).
    pub(crate) fn outcome_unknown(message: impl std::fmt::Display) -> Self {
        StorageError::Database(format!("{message}{OUTCOME_UNKNOWN}"))
    }

    /// This error, known now not to have taken effect: an outcome-unknown
    /// error from a read, or from a statement of a transaction that never
    /// reached COMMIT (the server rolls back a transaction whose
    /// connection is gone). Any other error is returned unchanged.
    pub(crate) fn known_not_applied(self) -> Self {
        match self {
            StorageError::Database(m) if m.ends_with(OUTCOME_UNKNOWN) => {
                Self::not_applied(&m[..m.len() - OUTCOME_UNKNOWN.len()])
            }
            other => other,
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

/// Ends the message of an error of which [`StorageError::is_retryable`]
/// is true. Written only by this crate, at the places that know the call
/// did not take effect; kept in the text so that the error keeps its
/// kind (`Database`, on every backend) and its shape.
const NOT_APPLIED: &str =
    " (the server could not run the call: nothing was written; safe to retry)";

/// Ends the message of an error of which
/// [`StorageError::is_outcome_unknown`] is true.
const OUTCOME_UNKNOWN: &str = " (outcome unknown: the connection was lost while the write \
     may have been committing; it may or may not have taken effect)";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_errors_say_what_was_written() {
        let lost = StorageError::outcome_unknown("block b1: server closed the connection");
        assert!(lost.is_outcome_unknown() && !lost.is_retryable(), "{lost}");
        assert!(lost.to_string().contains("outcome unknown"), "{lost}");
        assert_eq!(lost.kind(), ErrorKind::Database);
        let refused = lost.known_not_applied();
        assert!(
            refused.is_retryable() && !refused.is_outcome_unknown(),
            "{refused}"
        );
        assert_eq!(
            refused.to_string(),
            "database error: block b1: server closed the connection (the server could not \
             run the call: nothing was written; safe to retry)"
        );
        assert_eq!(refused.clone().known_not_applied(), refused);
        for other in [
            StorageError::Database("pool: timed out".into()),
            StorageError::Conflict("block b1 already exists".into()),
        ] {
            assert!(
                !other.is_retryable() && !other.is_outcome_unknown(),
                "{other}"
            );
            assert_eq!(other.clone().known_not_applied(), other);
        }
    }
}
