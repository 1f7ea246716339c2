//! Read-replica settings: which PostgreSQL streaming replicas a store may
//! read from and how far behind one may fall before it is skipped. Nothing
//! here touches a database; routing lives in `backend::replica`.

use std::time::Duration;

use super::{redact_url, DatabaseUrl, StorageConfig};
use crate::error::{StorageError, StorageResult};

/// The environment variable `open_from_env` reads replica URLs from,
/// comma-separated.
pub const REPLICA_URLS_ENV: &str = "DATABASE_REPLICA_URLS";

/// Where reads may go besides the primary. Empty by default: a store with
/// no replicas behaves exactly as before, statement for statement.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// `postgres://` URLs of streaming replicas of the primary.
    pub urls: Vec<String>,
    /// A replica whose replay lags the primary by more than this is
    /// skipped until it catches up.
    pub max_lag: Duration,
    /// How long a replica's measured state (replayed position, lag, up or
    /// down) is trusted before it is measured again, and how long a replica
    /// that failed is left alone before it is tried again.
    pub check_interval: Duration,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            max_lag: Duration::from_secs(5),
            check_interval: Duration::from_secs(1),
        }
    }
}

/// Replica URLs may hold passwords: `Debug` shows them redacted.
impl std::fmt::Debug for ReplicaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("max_lag", &self.max_lag)
            .field("check_interval", &self.check_interval)
            .finish()
    }
}

impl StorageConfig {
    /// Streaming replicas of a PostgreSQL primary to send lag-tolerant reads
    /// to (see the routing table on [`crate::Storage`]). Each must be a
    /// `postgres://` URL; anything else is a `Validation` error at open.
    pub fn read_replicas(mut self, urls: Vec<String>) -> Self {
        self.replicas.urls = urls;
        self
    }

    /// Skip a replica whose replay lags by more than `lag` (default 5 s).
    pub fn replica_max_lag(mut self, lag: Duration) -> Self {
        self.replicas.max_lag = lag;
        self
    }

    /// How often a replica's state is measured again (default 1 s).
    pub fn replica_check_interval(mut self, interval: Duration) -> Self {
        self.replicas.check_interval = interval;
        self
    }
}

impl ReplicaConfig {
    /// Checks the settings and that every URL names a PostgreSQL server,
    /// given the primary's URL: replicas of a SQLite file do not exist.
    pub(crate) fn validate(&self, primary: &DatabaseUrl) -> StorageResult<()> {
        if self.urls.is_empty() {
            return Ok(());
        }
        if !matches!(primary, DatabaseUrl::Postgres(_)) {
            return Err(StorageError::validation(
                "read replicas need a PostgreSQL primary; this store opens a SQLite database",
            ));
        }
        for (name, value) in [
            ("replica_max_lag", self.max_lag),
            ("replica_check_interval", self.check_interval),
        ] {
            if value < Duration::from_millis(1) || value > Duration::from_secs(24 * 60 * 60) {
                return Err(StorageError::validation(format!(
                    "{name} must be between 1 ms and 24 hours, got {value:?}"
                )));
            }
        }
        for (n, url) in self.urls.iter().enumerate() {
            match DatabaseUrl::parse(url) {
                Ok(DatabaseUrl::Postgres(_)) => {}
                Ok(_) => {
                    return Err(StorageError::validation(format!(
                        "read replica {} ({}) is not a PostgreSQL URL: replicas must be \
                         postgres:// or postgresql:// streaming replicas of the primary",
                        n + 1,
                        redact_url(url)
                    )))
                }
                Err(err) => {
                    return Err(StorageError::validation(format!(
                        "read replica {}: {err}",
                        n + 1
                    )))
                }
            }
        }
        Ok(())
    }
}

/// The replica URLs in `DATABASE_REPLICA_URLS` (comma-separated, blanks
/// ignored).
pub(crate) fn replica_urls_from_env() -> Vec<String> {
    split_url_list(&std::env::var(REPLICA_URLS_ENV).unwrap_or_default())
}

/// A comma-separated list of URLs. A libpq multi-host URL holds commas
/// too (`postgres://u@r1:5432,r2:5432/db`): a piece without `://` goes on
/// the URL before it, so each URL comes back whole.
fn split_url_list(list: &str) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for piece in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match urls.last_mut() {
            Some(url) if !piece.contains("://") => {
                url.push(',');
                url.push_str(piece);
            }
            _ => urls.push(piece.to_string()),
        }
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary() -> DatabaseUrl {
        DatabaseUrl::parse("postgres://u@h/db").unwrap()
    }

    #[test]
    fn replica_urls_must_be_postgres() {
        let config = StorageConfig::default().read_replicas(vec!["sqlite://x.db".into()]);
        let err = config.replicas.validate(&primary()).unwrap_err();
        assert!(matches!(err, StorageError::Validation(_)), "{err:?}");
        let config = StorageConfig::default().read_replicas(vec!["mysql://u:pw@h/db".into()]);
        let err = config.replicas.validate(&primary()).unwrap_err();
        assert!(matches!(err, StorageError::Validation(_)), "{err:?}");
        assert!(!err.to_string().contains("pw@"), "{err}");
        let config = StorageConfig::default().read_replicas(vec!["postgres://u@r/db".into()]);
        config.replicas.validate(&primary()).unwrap();
        let err = config
            .replicas
            .validate(&DatabaseUrl::SqliteMemory)
            .unwrap_err();
        assert!(matches!(err, StorageError::Validation(_)), "{err:?}");
    }

    #[test]
    fn replica_lists_keep_multi_host_urls_whole() {
        assert_eq!(
            split_url_list(
                " postgres://u@r1:5432,r2:5433/db?target_session_attrs=standby , ,\
                 postgresql://u@r3/db"
            ),
            [
                "postgres://u@r1:5432,r2:5433/db?target_session_attrs=standby",
                "postgresql://u@r3/db"
            ]
        );
        assert!(split_url_list("").is_empty());
    }

    #[test]
    fn debug_hides_replica_passwords() {
        let config =
            StorageConfig::default().read_replicas(vec!["postgres://u:s3cr3t@r/db".into()]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
