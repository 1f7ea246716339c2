//! Where conformance cases run: a [`TestTarget`] makes a fresh, isolated,
//! migrated database for each case and hands it out as a [`Harness`], which
//! removes it again when dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{self, ColumnInfo, Maintenance};
use crate::config::{redact_url, DatabaseUrl, StorageConfig};
use crate::error::{StorageError, StorageResult};
use crate::storage::Storage;
use crate::types::Backend;

/// What a PostgreSQL test run says when it has no database to run on.
pub const POSTGRES_URL_HELP: &str = "the postgres conformance tests need a PostgreSQL server: \
start one with `docker compose -f docker-compose.test.yml up -d --wait` and set \
POSTGRES_TEST_URL=postgres://postgres:postgres@127.0.0.1:5432/handshake_test \
(or DATABASE_URL to a postgres:// URL). These tests fail rather than skip without it.";

/// The name of every scratch schema starts with this, then its creation
/// time in Unix seconds.
const SCRATCH_PREFIX: &str = "hsk_test_";

/// A place to create fresh databases for cases. Its `Debug` output hides
/// passwords.
#[derive(Clone)]
pub enum TestTarget {
    /// A new SQLite file per case, in a temporary directory created under
    /// `parent` (the system temp directory when `None`).
    Sqlite { parent: Option<PathBuf> },
    /// A new schema per case in the database at `admin_url`, dropped after.
    Postgres { admin_url: String },
    /// As `Postgres`, with the store opened with `read_replicas`: each of
    /// `replica_urls` is a streaming replica of `admin_url`'s server, on
    /// which the case's schema appears once the replica replays its
    /// creation.
    PostgresWithReplicas {
        admin_url: String,
        replica_urls: Vec<String>,
    },
}

impl TestTarget {
    /// The standard target for a backend name as used by
    /// `conformance_tests!`: `sqlite` is a temp file; `postgres` reads
    /// `POSTGRES_TEST_URL`, then `DATABASE_URL` if it is a PostgreSQL URL,
    /// and panics with [`POSTGRES_URL_HELP`] when neither is set.
    pub fn standard(backend: &str) -> Self {
        match backend {
            "sqlite" => TestTarget::Sqlite { parent: None },
            "postgres" => match postgres_url_from_env() {
                Some(url) => TestTarget::Postgres { admin_url: url },
                None => panic!("{POSTGRES_URL_HELP}"),
            },
            other => panic!(
                "no standard conformance target for {other:?}; use \
                 conformance_tests!({other}, TestTarget::from_url(..))"
            ),
        }
    }

    /// A target for any database URL `open` accepts. For a SQLite file the
    /// scratch files go in a temporary directory beside it; the file itself
    /// is never touched.
    pub fn from_url(url: &str) -> StorageResult<Self> {
        Ok(match DatabaseUrl::parse(url)? {
            DatabaseUrl::SqliteMemory => TestTarget::Sqlite { parent: None },
            DatabaseUrl::SqliteFile(path) => TestTarget::Sqlite {
                parent: path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(PathBuf::from),
            },
            DatabaseUrl::Postgres(url) => TestTarget::Postgres {
                admin_url: url.as_str().to_string(),
            },
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestTarget::Sqlite { .. } => Backend::Sqlite,
            TestTarget::Postgres { .. } | TestTarget::PostgresWithReplicas { .. } => {
                Backend::Postgres
            }
        }
    }

    /// A printable description with any password redacted.
    pub fn describe(&self) -> String {
        match self {
            TestTarget::Sqlite { parent: None } => "sqlite (temporary files)".into(),
            TestTarget::Sqlite { parent: Some(p) } => {
                format!("sqlite (scratch files under {})", p.display())
            }
            TestTarget::Postgres { admin_url } => {
                format!("postgres {} (scratch schemas)", redact_url(admin_url))
            }
            TestTarget::PostgresWithReplicas {
                admin_url,
                replica_urls,
            } => format!(
                "postgres {} with read replicas {} (scratch schemas)",
                redact_url(admin_url),
                replica_urls
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// A fresh, migrated database and a store open on it.
    pub fn harness(&self) -> StorageResult<Harness> {
        let mut config = test_config();
        let (url, scratch) = match self {
            TestTarget::Sqlite { parent } => {
                let mut builder = tempfile::Builder::new();
                builder.prefix("hsk-storage-");
                let dir = match parent {
                    Some(p) => {
                        std::fs::create_dir_all(p).map_err(|e| {
                            StorageError::Database(format!("cannot create {}: {e}", p.display()))
                        })?;
                        builder.tempdir_in(p)
                    }
                    None => builder.tempdir(),
                }
                .map_err(|e| StorageError::Database(format!("cannot create a temp dir: {e}")))?;
                let file = dir.path().join("conformance.db");
                (format!("sqlite://{}", file.display()), Scratch::Dir(dir))
            }
            TestTarget::Postgres { admin_url }
            | TestTarget::PostgresWithReplicas { admin_url, .. } => {
                // The creation time in the name lets a later run drop the
                // schemas of a process killed before its guard ran.
                static SWEEP: std::sync::Once = std::sync::Once::new();
                SWEEP.call_once(|| backend::scratch_schema_sweep(admin_url, SCRATCH_PREFIX));
                let created = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let schema = format!(
                    "{SCRATCH_PREFIX}{created}_{}",
                    uuid::Uuid::new_v4().simple()
                );
                let url = backend::scratch_schema_create(admin_url, &schema)?;
                if let TestTarget::PostgresWithReplicas { replica_urls, .. } = self {
                    let replicas = replica_urls
                        .iter()
                        .map(|u| backend::scratch_schema_url(u, &schema))
                        .collect::<StorageResult<Vec<_>>>()?;
                    config = config.read_replicas(replicas);
                }
                (
                    url,
                    Scratch::Schema {
                        admin_url: admin_url.clone(),
                        schema,
                    },
                )
            }
        };
        // The scratch guard is built first so that a failed open still
        // removes what was created.
        let mut harness = Harness {
            store: None,
            url,
            config,
            scratch,
        };
        harness.store = Some(backend::open_maintained(&harness.url, &harness.config)?);
        Ok(harness)
    }
}

impl std::fmt::Debug for TestTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn postgres_url_from_env() -> Option<String> {
    let _ = dotenvy::dotenv();
    let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    non_empty("POSTGRES_TEST_URL").or_else(|| {
        non_empty("DATABASE_URL")
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    })
}

/// Generous timeouts: a loaded CI machine must not turn into false failures.
fn test_config() -> StorageConfig {
    StorageConfig::default()
        .pool_size(8)
        .connection_timeout(Duration::from_secs(60))
        .sqlite_busy_timeout(Duration::from_secs(60))
}

enum Scratch {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema { admin_url: String, schema: String },
}

/// A fresh database with a store open on it, removed when dropped.
pub struct Harness {
    store: Option<Arc<dyn Maintenance>>,
    url: String,
    config: StorageConfig,
    scratch: Scratch,
}

impl Harness {
    fn inner(&self) -> &Arc<dyn Maintenance> {
        self.store
            .as_ref()
            .expect("a harness always holds its store until it is dropped")
    }

    /// The store under test.
    pub fn store(&self) -> &dyn Storage {
        &**self.inner()
    }

    /// A shared handle to the store, for cases that spawn threads.
    pub fn shared_store(&self) -> Arc<dyn Storage> {
        Arc::clone(self.inner()) as Arc<dyn Storage>
    }

    pub fn backend(&self) -> Backend {
        self.store().backend()
    }

    /// The URL of this database, for tests that open their own store or
    /// connection on it. It may hold a password: never print it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a second, independent store on the same database (running
    /// `open`'s migration step again).
    pub fn reopen(&self) -> StorageResult<Arc<dyn Storage>> {
        crate::open_with_config(&self.url, &self.config)
    }

    /// The benchmarks' raw-SQL baseline on this harness's database.
    #[cfg(feature = "bench")]
    pub(crate) fn baseline(&self) -> StorageResult<Box<dyn crate::bench::Baseline>> {
        backend::open_baseline(&self.url, &self.config)
    }

    /// Reverts every applied migration, newest first; returns how many.
    pub fn revert_all_migrations(&self) -> StorageResult<usize> {
        self.inner().revert_all_migrations()
    }

    /// Reverts the newest applied migration only.
    pub fn revert_last_migration(&self) -> StorageResult<()> {
        self.inner().revert_last_migration()
    }

    /// Every column of every table of ours (Diesel's bookkeeping table
    /// excluded), sorted by table then column.
    pub fn columns(&self) -> StorageResult<Vec<ColumnInfo>> {
        self.inner().columns()
    }

    /// Runs raw SQL on the database, for cases that must damage a row the
    /// API would never write (a corrupt enum string, say). Returns the
    /// number of rows affected.
    pub fn execute_sql(&self, sql: &str) -> StorageResult<usize> {
        self.inner().execute_sql(sql)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Close the pool before removing the database under it.
        self.store.take();
        if let Scratch::Schema { admin_url, schema } = &self.scratch {
            if let Err(err) = backend::scratch_schema_drop(admin_url, schema) {
                eprintln!("warning: could not drop scratch schema {schema}: {err}");
            }
        }
    }
}
