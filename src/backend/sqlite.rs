//! SQLite: connection setup and the few pieces `store.rs` needs from a
//! backend. Every pooled connection gets, in this order, a busy timeout,
//! WAL (files only), `synchronous` as configured (`FULL` by default) and
//! foreign keys (per connection, or cascades silently do nothing); writes take the write lock up front (`BEGIN
//! IMMEDIATE`) so concurrent writers wait instead of failing.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::TxCause;
use crate::config::{DatabaseUrl, SqliteSynchronous, StorageConfig};
use crate::error::{StorageError, StorageResult};
use crate::types::Backend;

pub(crate) use crate::schema::sqlite as schema;
pub(crate) type Conn = SqliteConnection;
pub(crate) type DbBackend = Sqlite;
pub(crate) type Manager = ConnectionManager<SqliteConnection>;
/// An in-memory database lives as long as one connection to it: the store
/// keeps one open beside the pool.
pub(crate) type KeepAlive = Option<Mutex<SqliteConnection>>;
pub(crate) const BACKEND: Backend = Backend::Sqlite;
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations_sqlite");
/// SQLITE_MAX_VARIABLE_NUMBER of the bundled SQLite.
pub(crate) const MAX_BIND_PARAMS: usize = 32_766;
/// From how many rows a bulk write goes through the backend's bulk writer
/// instead of multi-row INSERTs: never, SQLite has no COPY (see
/// `postgres.rs`).
pub(crate) const COPY_FROM_ROWS: Option<usize> = None;
/// Whether Diesel's bookkeeping table exists.
pub(crate) const MIGRATIONS_TABLE_PRESENT_SQL: &str = "SELECT EXISTS (SELECT 1 FROM sqlite_master \
     WHERE type = 'table' AND name = '__diesel_schema_migrations') AS present";
// The live schema, for `schema_fingerprint` (Diesel's bookkeeping table
// and SQLite's own left out).
pub(crate) const SCHEMA_COLUMNS_SQL: &str = "SELECT m.name AS table_name, p.name AS column_name, \
     p.type AS sql_type, (p.\"notnull\" = 0) AS nullable, p.dflt_value AS default_value \
     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
     AND m.name <> '__diesel_schema_migrations'";
pub(crate) const SCHEMA_INDEXES_SQL: &str = "SELECT m.name AS table_name, il.name AS index_name, \
     il.\"unique\" AS is_unique, (il.origin = 'pk') AS is_primary, ix.seqno AS position, \
     ix.name AS column_name, ix.\"desc\" AS descending \
     FROM sqlite_master m JOIN pragma_index_list(m.name) il JOIN pragma_index_xinfo(il.name) ix \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
     AND m.name <> '__diesel_schema_migrations' AND ix.key = 1";
pub(crate) const SCHEMA_FOREIGN_KEYS_SQL: &str = "SELECT m.name AS table_name, \
     CAST(fk.id AS TEXT) AS name, fk.seq AS position, fk.\"from\" AS column_name, \
     fk.\"table\" AS ref_table, COALESCE(fk.\"to\", '') AS ref_column, fk.on_update AS on_update, \
     fk.on_delete AS on_delete \
     FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) fk \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
     AND m.name <> '__diesel_schema_migrations'";
pub(crate) const SCHEMA_TRIGGERS_SQL: &str = "SELECT tbl_name AS table_name, name, \
     sql AS definition FROM sqlite_master WHERE type = 'trigger'";

/// Bytes of the `ai_jobs` primary-key index (the bundled SQLite has the
/// `dbstat` table).
#[cfg(feature = "bench")]
pub(crate) const AI_JOBS_PKEY_BYTES_SQL: &str = "SELECT COALESCE(SUM(pgsize), 0) AS bytes \
     FROM dbstat WHERE name = 'sqlite_autoindex_ai_jobs_1'";

// The query code is shared with PostgreSQL: the same file, compiled here
// against this module's schema and connection.
#[allow(clippy::duplicate_mod)]
#[path = "store.rs"]
mod store;

pub(crate) use store::Store;

#[path = "sqlite_deadline.rs"]
mod deadline;

#[cfg(feature = "bench")]
#[allow(clippy::duplicate_mod)]
#[path = "baseline.rs"]
mod baseline;

/// The benchmarks' raw-SQL baseline, on a pool built like the store's.
#[cfg(feature = "bench")]
pub(crate) fn open_baseline(
    target: &DatabaseUrl,
    config: &StorageConfig,
) -> StorageResult<baseline::RawSql> {
    let (pool, _keep_alive) = build_pool(target, config)?;
    Ok(baseline::RawSql::new(pool))
}

/// Runs a read of several statements in one (deferred) transaction: in WAL
/// mode it reads one snapshot.
pub(crate) fn read_tx<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    let mut cause = TxCause::default();
    let result = conn.transaction(|c| cause.body(f(c)));
    cause.finish(result, || false)
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction.
pub(crate) fn write_tx<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    let mut cause = TxCause::default();
    let result = conn.immediate_transaction(|c| cause.body(f(c)));
    cause.finish(result, || false)
}

/// Nothing to check: a SQLite connection that opened the file may read
/// all of it.
pub(crate) fn check_schema_access(_conn: &mut Conn) -> StorageResult<()> {
    Ok(())
}

/// Migrations run inside one `BEGIN IMMEDIATE` transaction: a second
/// process waits for the first, then finds nothing pending.
pub(crate) fn migration_lock<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    write_tx(conn, f)
}

#[derive(Debug)]
struct ConnectionSetup {
    busy_timeout_ms: u128,
    on_disk: bool,
    /// `StorageConfig::statement_timeout`: each statement's bound.
    statement_timeout: Option<Duration>,
    /// `StorageConfig::sqlite_synchronous`.
    synchronous: SqliteSynchronous,
}

impl ConnectionSetup {
    fn apply(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
        conn.batch_execute(&format!("PRAGMA busy_timeout = {};", self.busy_timeout_ms))?;
        if self.on_disk {
            conn.batch_execute("PRAGMA journal_mode = WAL;")?;
            conn.batch_execute("PRAGMA wal_autocheckpoint = 1000;")?;
        }
        // Per connection: SQLite does not keep it in the file.
        conn.batch_execute(&format!(
            "PRAGMA synchronous = {};",
            self.synchronous.as_sql()
        ))?;
        conn.batch_execute("PRAGMA foreign_keys = ON;")
    }
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        match self.statement_timeout {
            Some(limit) => conn.set_instrumentation(deadline::Deadlines::new(
                limit,
                super::statement_instrumentation(),
            )),
            #[cfg(feature = "tracing")]
            None => {
                if let Some(chain) = super::statement_instrumentation() {
                    conn.set_instrumentation(chain);
                }
            }
            #[cfg(not(feature = "tracing"))]
            None => {}
        }
        self.apply(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

pub(crate) fn open(
    target: &DatabaseUrl,
    config: &StorageConfig,
    schema: super::SchemaOnOpen,
) -> StorageResult<Store> {
    let (pool, keep_alive) = build_pool(target, config)?;
    Store::new(pool, keep_alive, schema)
}

fn build_pool(
    target: &DatabaseUrl,
    config: &StorageConfig,
) -> StorageResult<(Pool<Manager>, KeepAlive)> {
    if config.statement_timeout.is_some() {
        // Before any connection opens: each one gets the progress handler.
        deadline::register()?;
    }
    let (conn_url, on_disk, pool_size) = match target {
        DatabaseUrl::SqliteMemory => (
            format!(
                "file:hsk-memory-{}?mode=memory&cache=shared",
                uuid::Uuid::new_v4().simple()
            ),
            false,
            // One connection: shared-cache connections lock tables and fail
            // with SQLITE_LOCKED instead of waiting.
            1,
        ),
        DatabaseUrl::SqliteFile(path) => {
            ensure_parent_dir(path)?;
            create_private(path)?;
            (path.to_string_lossy().into_owned(), true, config.pool_size)
        }
        DatabaseUrl::Postgres(_) => {
            return Err(StorageError::validation("not a SQLite URL"));
        }
    };
    let setup = ConnectionSetup {
        busy_timeout_ms: config.sqlite_lock_wait().as_millis(),
        on_disk,
        statement_timeout: config.statement_timeout,
        synchronous: config.sqlite_synchronous,
    };
    // One connection first, outside the pool: a bad path fails at once with
    // SQLite's own reason instead of after the pool's timeout.
    let mut first = SqliteConnection::establish(&conn_url).map_err(|e| {
        StorageError::Database(format!("cannot open SQLite database {conn_url}: {e}"))
    })?;
    setup.apply(&mut first).map_err(|e| {
        StorageError::Database(format!("cannot set up SQLite database {conn_url}: {e}"))
    })?;
    let keep_alive = (!on_disk).then(|| Mutex::new(first));
    let pool = Pool::builder()
        .max_size(pool_size)
        .min_idle(Some(1))
        .connection_timeout(config.connection_timeout)
        .test_on_check_out(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .connection_customizer(Box::new(setup))
        .build(Manager::new(&conn_url))
        .map_err(|e| {
            StorageError::Database(format!("cannot open SQLite database {conn_url}: {e}"))
        })?;
    Ok((pool, keep_alive))
}

/// Creates a missing database file empty, with mode 0600, before SQLite
/// opens it (SQLite would create it through the umask); SQLite gives its
/// `-wal`, `-shm` and `-journal` files the main file's mode. An existing
/// file is left as it is.
fn create_private(path: &Path) -> StorageResult<()> {
    match crate::private_file::private_options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StorageError::Database(format!(
            "cannot create SQLite database {}: {e}",
            path.display()
        ))),
    }
}

/// Creates the parent directory of a SQLite file if it is missing.
fn ensure_parent_dir(path: &Path) -> StorageResult<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|e| {
                StorageError::Database(format!("cannot create directory {}: {e}", dir.display()))
            }),
        _ => Ok(()),
    }
}
