//! The lock against a second copy into the same SQLite file at once.
//! SQLite has no advisory locks, so the copier holds an exclusive
//! transaction on a small side file, `<target>.hsk-copy-lock`, for the
//! length of the copy. The operating system releases it when the copier
//! exits or is killed, so a crash never leaves a stale lock. The side file
//! stays (removing it could let two copies lock two different files). Taken
//! once the target is open, so its directory exists.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

use super::CopyLock;
use crate::error::{one_line, StorageError, StorageResult};

pub(crate) fn lock_sqlite_target(target: &Path) -> StorageResult<CopyLock> {
    let path = format!("{}.hsk-copy-lock", target.display());
    let mut conn = SqliteConnection::establish(&path).map_err(|e| {
        StorageError::Database(format!("cannot open the copy lock file {path}: {e}"))
    })?;
    // No busy timeout: a held lock answers at once.
    conn.batch_execute("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE")
        .map_err(|e| {
            StorageError::Conflict(format!(
                "another copy into {} is running (its lock file {path} is held: {})",
                target.display(),
                one_line(&e.to_string())
            ))
        })?;
    Ok(Box::new(conn))
}
