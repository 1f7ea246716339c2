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

/// The name of every scratch role starts with this, then its creation
/// time in Unix seconds.
const SCRATCH_ROLE_PREFIX: &str = "hsk_test_role_";

/// A place to create fresh databases for cases. Its `Debug` output hides
/// passwords.
#[derive(Clone)]
pub enum TestTarget {
    /// A new SQLite file per case, in a temporary directory.
    Sqlite {
        /// Where the temporary directory is created (`None`: the system
        /// temp directory).
        parent: Option<PathBuf>,
    },
    /// A new schema per case in the database at `admin_url`, dropped after.
    Postgres {
        /// A database whose role may create and drop schemas.
        admin_url: String,
    },
    /// As `Postgres`, with the store opened with `read_replicas`: each of
    /// `replica_urls` is a streaming replica of `admin_url`'s server, on
    /// which the case's schema appears once the replica replays its
    /// creation.
    PostgresWithReplicas {
        /// The primary's database, as for `Postgres`.
        admin_url: String,
        /// Streaming replicas of that server.
        replica_urls: Vec<String>,
    },
    /// As `Postgres`, with the store used as an application role with only
    /// the grants of [`grant_application_role`](crate::grant_application_role):
    /// per case, the schema is migrated by `admin_url`'s role (the owner),
    /// a [`ScratchRole`] is created and granted, and the store is opened as
    /// that role with `run_migrations(false)`. The cases of
    /// [`OWNER_ONLY`](crate::conformance::OWNER_ONLY) run here and must be
    /// refused for want of a privilege.
    PostgresLeastPrivilege {
        /// A database whose role may create and drop schemas and roles.
        admin_url: String,
        /// Streaming replicas of that server (none: no replicas), read
        /// as the application role too.
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
            "postgres" => TestTarget::Postgres {
                admin_url: Self::standard_postgres_url(),
            },
            other => panic!(
                "no standard conformance target for {other:?}; use \
                 conformance_tests!({other}, TestTarget::from_url(..))"
            ),
        }
    }

    /// The PostgreSQL URL the standard `postgres` target uses
    /// (`POSTGRES_TEST_URL`, else a postgres:// `DATABASE_URL`); panics
    /// with [`POSTGRES_URL_HELP`] when neither is set.
    pub fn standard_postgres_url() -> String {
        postgres_url_from_env().unwrap_or_else(|| panic!("{POSTGRES_URL_HELP}"))
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

    /// The backend this target's databases run on.
    pub fn backend(&self) -> Backend {
        match self {
            TestTarget::Sqlite { .. } => Backend::Sqlite,
            TestTarget::Postgres { .. }
            | TestTarget::PostgresWithReplicas { .. }
            | TestTarget::PostgresLeastPrivilege { .. } => Backend::Postgres,
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
            TestTarget::PostgresLeastPrivilege {
                admin_url,
                replica_urls,
            } => format!(
                "postgres {} as a least-privilege role{} (scratch schemas and roles)",
                redact_url(admin_url),
                if replica_urls.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", with read replicas {}",
                        replica_urls
                            .iter()
                            .map(|u| redact_url(u))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
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
        self.harness_with(|config| config)
    }

    /// [`harness`](Self::harness) with the store opened with the test
    /// settings as `adjust` changes them (a setting under test, say).
    pub fn harness_with(
        &self,
        adjust: impl FnOnce(StorageConfig) -> StorageConfig,
    ) -> StorageResult<Harness> {
        let mut config = adjust(test_config());
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
            | TestTarget::PostgresWithReplicas { admin_url, .. }
            | TestTarget::PostgresLeastPrivilege { admin_url, .. } => {
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
                if let TestTarget::PostgresLeastPrivilege { replica_urls, .. } = self {
                    // Read as the application role, once it exists (below).
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
            owner_url: url.clone(),
            url,
            config,
            scratch,
            role: None,
        };
        if let TestTarget::PostgresLeastPrivilege { admin_url, .. } = self {
            // The owner migrates (without replicas); from here on the
            // store is the application role's, which may not run DDL.
            let replicas = std::mem::take(&mut harness.config.replicas.urls);
            drop(backend::open_maintained(
                &DatabaseUrl::parse(&harness.url)?,
                &harness.config,
            )?);
            let role = ScratchRole::create(admin_url, &harness.owner_url)?;
            crate::grant_application_role(&harness.owner_url, role.name())?;
            harness.url = role.url().to_string();
            harness.config.replicas.urls = replicas
                .iter()
                .map(|u| role.login_url(u))
                .collect::<StorageResult<_>>()?;
            harness.role = Some(role);
            harness.config = harness.config.clone().run_migrations(false);
        }
        harness.store = Some(backend::open_maintained(
            &DatabaseUrl::parse(&harness.url)?,
            &harness.config,
        )?);
        Ok(harness)
    }

    /// Why `case` is skipped on this target, if it is: the cases of
    /// [`OWNER_ONLY`](crate::conformance::OWNER_ONLY) on
    /// `PostgresLeastPrivilege`.
    pub fn skips(&self, case: &str) -> Option<&'static str> {
        match self {
            TestTarget::PostgresLeastPrivilege { .. } => crate::conformance::OWNER_ONLY
                .iter()
                .find(|(name, _)| *name == case)
                .map(|(_, why)| *why),
            _ => None,
        }
    }
}

/// A PostgreSQL login role made for a test: no superuser, no `CREATEDB`,
/// no `CREATEROLE`, no privileges of its own, a random password. Dropped,
/// with every privilege granted to it (`DROP OWNED BY`), when this guard
/// is dropped.
pub struct ScratchRole {
    admin_url: String,
    name: String,
    password: String,
    url: String,
}

impl ScratchRole {
    /// Creates a role through `admin_url` (whose role may create roles)
    /// and rewrites `url` (a database of the same server, e.g. a
    /// [`Harness::url`]) to log in as it.
    pub fn create(admin_url: &str, url: &str) -> StorageResult<Self> {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| backend::scratch_role_sweep(admin_url, SCRATCH_ROLE_PREFIX));
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!(
            "{SCRATCH_ROLE_PREFIX}{created}_{}",
            uuid::Uuid::new_v4().simple()
        );
        let password = backend::scratch_role_create(admin_url, &name)?;
        Ok(ScratchRole {
            url: backend::login_url(url, &name, &password)?,
            admin_url: admin_url.to_string(),
            name,
            password,
        })
    }

    /// `url` (a database of the same server, or of one of its streaming
    /// replicas) logging in as this role. It holds the role's password:
    /// never print it.
    pub fn login_url(&self, url: &str) -> StorageResult<String> {
        backend::login_url(url, &self.name, &self.password)
    }

    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL given to [`ScratchRole::create`], logging in as this role.
    /// It holds the role's password: never print it.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for ScratchRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchRole")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for ScratchRole {
    fn drop(&mut self) {
        if let Err(err) = backend::scratch_role_drop(&self.admin_url, &self.name) {
            eprintln!("warning: could not drop scratch role {}: {err}", self.name);
        }
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
    /// The URL of the role that migrated the database: `url` except on
    /// `PostgresLeastPrivilege`.
    owner_url: String,
    config: StorageConfig,
    scratch: Scratch,
    /// The application role of `PostgresLeastPrivilege`; dropped after
    /// the schema (`Harness::drop` runs before the fields are dropped).
    role: Option<ScratchRole>,
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

    /// The backend of this harness's store.
    pub fn backend(&self) -> Backend {
        self.store().backend()
    }

    /// The URL of this database, for tests that open their own store or
    /// connection on it. It may hold a password: never print it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of the role that owns this database's tables (it ran the
    /// migrations): [`Harness::url`] on every target but
    /// `PostgresLeastPrivilege`. It may hold a password: never print it.
    pub fn owner_url(&self) -> &str {
        &self.owner_url
    }

    /// The application role the store runs as on `PostgresLeastPrivilege`.
    pub fn role(&self) -> Option<&ScratchRole> {
        self.role.as_ref()
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// Opens a second, independent store on the same database (running
    /// `open`'s migration step, or its check, again).
    pub fn reopen(&self) -> StorageResult<Arc<dyn Storage>> {
        crate::open_with_config(&self.url, &self.config)
    }

    /// The benchmarks' raw-SQL baseline on this harness's database.
    #[cfg(feature = "bench")]
    pub(crate) fn baseline(&self) -> StorageResult<Box<dyn backend::seeding::Baseline>> {
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

    /// Runs `sql` on every connection the store's pool may hold, all
    /// checked out at once, and returns each one's answer: a query of one
    /// row with a BIGINT column named `value` (on SQLite, say, `SELECT
    /// synchronous AS value FROM pragma_synchronous`). With read replicas,
    /// the primary's pool.
    pub fn value_on_every_connection(&self, sql: &str) -> StorageResult<Vec<i64>> {
        self.inner().value_on_every_connection(sql)
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
