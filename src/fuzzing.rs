//! The crate's parsers and encoders, reachable without a database, for the
//! `cargo fuzz` targets in `fuzz/` (feature `fuzzing`). Not part of the
//! storage API: each function only forwards to the code the store runs.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::{self, DatabaseUrl, StorageConfig};
use crate::error::StorageResult;

/// What a database URL names: `"sqlite::memory:"`, `"sqlite:<path>"` or
/// `"postgres"`, or the `Validation` error `open` would give.
pub fn classify_database_url(url: &str) -> StorageResult<String> {
    Ok(match DatabaseUrl::parse(url)? {
        DatabaseUrl::SqliteMemory => "sqlite::memory:".to_string(),
        DatabaseUrl::SqliteFile(path) => format!("sqlite:{}", path.display()),
        DatabaseUrl::Postgres(_) => "postgres".to_string(),
    })
}

/// The URL libpq is handed for a PostgreSQL URL, password included (for
/// the fuzz targets only), or the `Validation` error `open` would give.
pub fn libpq_url(url: &str) -> StorageResult<String> {
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::Postgres(url) => Ok(url.as_str().to_string()),
        _ => Err(crate::StorageError::validation("not a PostgreSQL URL")),
    }
}

/// A driver message with the secrets of `url` cut out, as errors carry it.
pub fn scrub_secrets(message: &str, url: &str) -> String {
    config::scrub_secrets(message, url)
}

/// The check `open_with_config` makes of its settings.
pub fn validate_config(config: &StorageConfig) -> StorageResult<()> {
    config.validate()
}

/// The check every JSON value passes before it is written.
pub fn validate_json(value: &Value) -> StorageResult<()> {
    crate::validate::json("value", value)
}

/// JSON text as the stores write it.
pub fn stored_json_text(value: &Value) -> serde_json::Result<String> {
    let mut text = Vec::new();
    crate::backend::fields::write_json(value, &mut text)?;
    Ok(String::from_utf8(text).expect("serde_json writes UTF-8"))
}

/// The check a caller's timestamp passes, and the value then stored.
pub fn validate_timestamp(at: DateTime<Utc>) -> StorageResult<DateTime<Utc>> {
    crate::validate::timestamp("timestamp", at)
}

/// A timestamp as SQLite stores it.
#[cfg(feature = "sqlite")]
pub fn sqlite_time_text(at: &DateTime<Utc>) -> String {
    crate::backend::fields::sqlite_time_text(at)
}

/// Reads a timestamp as SQLite stores it.
#[cfg(feature = "sqlite")]
pub fn parse_sqlite_time(raw: &str) -> Result<DateTime<Utc>, String> {
    crate::backend::fields::parse_sqlite_time(raw)
}
