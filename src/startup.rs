//! Fail-closed startup. A Handshake control plane that must run on
//! PostgreSQL says so with `HANDSHAKE_CONTROL_PLANE_REQUIRES_POSTGRES=true`
//! or `HANDSHAKE_STORAGE_MODE=postgres_primary`; then `open_from_env` and
//! `hsk-storage` refuse the default SQLite file and a SQLite
//! `DATABASE_URL` with one error naming the variable, instead of quietly
//! running on a local file. Without either variable nothing changes.

use crate::config::{redact_url, DatabaseUrl, DEFAULT_DATABASE_URL};
use crate::error::{StorageError, StorageResult};

/// `true` (or `1`, `yes`, `on`) requires PostgreSQL.
pub const REQUIRES_POSTGRES_VAR: &str = "HANDSHAKE_CONTROL_PLANE_REQUIRES_POSTGRES";
/// `postgres_primary` requires PostgreSQL.
pub const STORAGE_MODE_VAR: &str = "HANDSHAKE_STORAGE_MODE";

/// The setting that requires PostgreSQL (`NAME=value`), if one does. A
/// value of [`REQUIRES_POSTGRES_VAR`] that is neither true nor false is a
/// `Validation` error: an unreadable safety switch does not count as off.
pub fn postgres_required_by() -> StorageResult<Option<String>> {
    let _ = dotenvy::dotenv();
    if let Ok(value) = std::env::var(REQUIRES_POSTGRES_VAR) {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => {
                return Ok(Some(format!("{REQUIRES_POSTGRES_VAR}={}", value.trim())))
            }
            "false" | "0" | "no" | "off" | "" => {}
            _ => {
                return Err(StorageError::validation(format!(
                    "{REQUIRES_POSTGRES_VAR} must be true or false, got {value:?}"
                )))
            }
        }
    }
    match std::env::var(STORAGE_MODE_VAR) {
        Ok(mode) if mode.trim() == "postgres_primary" => {
            Ok(Some(format!("{STORAGE_MODE_VAR}=postgres_primary")))
        }
        _ => Ok(None),
    }
}

/// Refuses SQLite when PostgreSQL is required: `url` is the database URL
/// the caller was given (`None`: none was, so the default SQLite file
/// would be used). Without the requirement every URL passes.
pub fn require_postgres_if_configured(url: Option<&str>) -> StorageResult<()> {
    let Some(setting) = postgres_required_by()? else {
        return Ok(());
    };
    let fix = "set DATABASE_URL (or --database-url) to a postgres:// URL";
    match url {
        Some(url) if matches!(DatabaseUrl::parse(url)?, DatabaseUrl::Postgres(_)) => Ok(()),
        Some(url) => Err(StorageError::validation(format!(
            "{setting} requires PostgreSQL, but the database URL {} is SQLite; {fix}",
            redact_url(url)
        ))),
        None => Err(StorageError::validation(format!(
            "{setting} requires PostgreSQL, but no database URL is set and the default is \
             the SQLite file {DEFAULT_DATABASE_URL}; {fix}"
        ))),
    }
}
