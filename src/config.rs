//! Reading database URLs and store settings. Nothing here touches a
//! database; it decides which backend a URL names and how to open it.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{StorageError, StorageResult};

/// Where `open_from_env` goes when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/handshake.db";

/// A database URL, classified by backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DatabaseUrl {
    /// `sqlite::memory:` or `:memory:`: one private in-memory database.
    SqliteMemory,
    /// `sqlite://path`, `sqlite:path` or a plain file path.
    SqliteFile(PathBuf),
    /// `postgres://...` or `postgresql://...`, kept as given.
    Postgres(String),
}

impl DatabaseUrl {
    pub(crate) fn parse(url: &str) -> StorageResult<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(StorageError::validation("the database URL is empty"));
        }
        if url.contains('\0') {
            return Err(StorageError::validation(
                "the database URL contains a NUL byte",
            ));
        }
        if url == "sqlite::memory:" || url == ":memory:" || url == "sqlite://:memory:" {
            return Ok(DatabaseUrl::SqliteMemory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url::Url::parse(url).map_err(|e| {
                StorageError::validation(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
            })?;
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(StorageError::validation(
                    "a sqlite URL needs a file path, e.g. sqlite://data/handshake.db",
                ));
            }
            return Ok(DatabaseUrl::SqliteFile(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(StorageError::validation(format!(
                "unsupported database URL scheme {scheme:?} in {}: expected sqlite://, \
                 postgres:// or postgresql://",
                redact_url(url)
            )));
        }
        Ok(DatabaseUrl::SqliteFile(PathBuf::from(url)))
    }
}

/// `url` with its password (if any) replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() && parsed.set_password(Some("***")).is_ok() {
            return parsed.to_string();
        }
        if parsed.password().is_none() && !url.contains('@') {
            return url.to_string();
        }
    }
    // Not a URL the parser understands: cut out anything between the
    // scheme's `//user:` and the last `@` before the host.
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start + 3 => {
            let userinfo = &url[start + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..start + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
/// A driver's `message` made fit for our errors: the password of `url`
/// (raw and percent-decoded) cut out, and folded onto one line (libpq's
/// messages span several).
pub(crate) fn scrub_secrets(message: &str, url: &str) -> String {
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(password) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    else {
        return message;
    };
    let decoded = url::form_urlencoded::parse(format!("p={password}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut out = message.replace(url, &redact_url(url));
    for secret in [password.as_str(), decoded.as_str()] {
        if secret.len() >= 3 {
            out = out.replace(secret, "***");
        }
    }
    out
}

/// Settings for `open_with_config`. The defaults suit a desktop app: a small
/// pool, a short wait for a connection, and SQLite writers that wait up to
/// ten seconds for each other instead of failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// Most connections the pool holds (SQLite in-memory databases always
    /// use one).
    pub pool_size: u32,
    /// How long a call waits for a free connection, and how long `open`
    /// waits for the first one.
    pub connection_timeout: Duration,
    /// How long a SQLite writer waits for the write lock.
    pub sqlite_busy_timeout: Duration,
    /// Whether `open` applies pending migrations.
    pub run_migrations: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            pool_size: 8,
            connection_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(10),
            run_migrations: true,
        }
    }
}

impl StorageConfig {
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }

    pub(crate) fn validate(&self) -> StorageResult<()> {
        if self.pool_size == 0 {
            return Err(StorageError::validation("pool_size must be at least 1"));
        }
        if self.connection_timeout.is_zero() {
            return Err(StorageError::validation(
                "connection_timeout must be greater than zero",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap(),
            DatabaseUrl::SqliteMemory
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/handshake.db").unwrap(),
            DatabaseUrl::SqliteFile("data/handshake.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::SqliteFile("/tmp/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("./local.db").unwrap(),
            DatabaseUrl::SqliteFile("./local.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u:p@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(matches!(
            DatabaseUrl::parse("mysql://root@h/db"),
            Err(StorageError::Validation(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse(""),
            Err(StorageError::Validation(_))
        ));
    }

    #[test]
    fn redaction_hides_passwords() {
        let r = redact_url("postgres://alice:s3cr3t@db.example:5432/app");
        assert!(!r.contains("s3cr3t"), "{r}");
        assert!(r.contains("alice"), "{r}");
        let r = redact_url("postgres://alice:s3cr%40t@[bad/app");
        assert!(!r.contains("s3cr"), "{r}");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
