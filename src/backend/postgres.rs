//! PostgreSQL: connection setup and the few pieces `store.rs` needs from a
//! backend. The pool runs no validation query on checkout (a broken
//! connection is detected by the failing call and replaced by r2d2);
//! connecting is bounded by the configured timeout through libpq's
//! `connect_timeout`.

use diesel::connection::SimpleConnection;
use diesel::pg::{Pg, PgConnection};
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::TxError;
use crate::config::{redact_url, scrub_secrets, StorageConfig};
use crate::error::{StorageError, StorageResult};
use crate::types::Backend;

pub(crate) use crate::schema::postgres as schema;
pub(crate) type Conn = PgConnection;
pub(crate) type DbBackend = Pg;
pub(crate) type KeepAlive = ();
pub(crate) const BACKEND: Backend = Backend::Postgres;
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations_postgres");
/// The wire protocol's limit on bind parameters per statement.
pub(crate) const MAX_BIND_PARAMS: usize = 65_535;
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) const COLUMNS_SQL: &str = "SELECT table_name::text AS table_name, \
     column_name::text AS column_name, (is_nullable = 'YES') AS nullable \
     FROM information_schema.columns \
     WHERE table_schema = current_schema() \
     AND table_name <> '__diesel_schema_migrations'";

// The query code is shared with SQLite: the same file, compiled here
// against this module's schema and connection.
#[allow(clippy::duplicate_mod)]
#[path = "store.rs"]
mod store;

pub(crate) use store::Store;

#[cfg(feature = "bench")]
#[allow(clippy::duplicate_mod)]
#[path = "baseline.rs"]
mod baseline;

/// The benchmarks' raw-SQL baseline, on a pool built like the store's.
#[cfg(feature = "bench")]
pub(crate) fn open_baseline(url: &str, config: &StorageConfig) -> StorageResult<baseline::RawSql> {
    Ok(baseline::RawSql::new(build_pool(url, config)?))
}

/// Runs a read of several statements in one REPEATABLE READ, read-only
/// transaction: one snapshot for all of them, as on SQLite (READ COMMITTED
/// would give each statement its own).
pub(crate) fn read_tx<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(|c| f(c).map_err(TxError::Storage))
        .map_err(TxError::into_storage)
}

/// Runs `f` in a transaction (PostgreSQL's row locks make a plain BEGIN
/// enough for writers to wait on each other).
pub(crate) fn write_tx<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    conn.transaction(|c| f(c).map_err(TxError::Storage))
        .map_err(TxError::into_storage)
}

/// Migrations run under a session advisory lock keyed by the schema, so a
/// second process waits for the first, then finds nothing pending.
pub(crate) fn migration_lock<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    const KEY: &str = "hashtextextended('handshake-storage migrations ' || current_schema(), 0)";
    let lock_err =
        |e: diesel::result::Error| StorageError::Migration(format!("migration lock: {e}"));
    conn.batch_execute(&format!("SELECT pg_advisory_lock({KEY})"))
        .map_err(lock_err)?;
    let result = f(conn);
    let unlocked = conn
        .batch_execute(&format!("SELECT pg_advisory_unlock({KEY})"))
        .map_err(lock_err);
    let value = result?;
    unlocked.map(|()| value)
}

/// `url` with libpq's `connect_timeout` set from the config unless the URL
/// sets its own.
fn with_connect_timeout(url: &str, config: &StorageConfig) -> StorageResult<String> {
    let mut parsed = parse_url(url)?;
    if parsed.query_pairs().any(|(k, _)| k == "connect_timeout") {
        return Ok(parsed.to_string());
    }
    let secs = config.connection_timeout.as_secs().max(1);
    parsed
        .query_pairs_mut()
        .append_pair("connect_timeout", &secs.to_string());
    Ok(parsed.to_string())
}

/// `url` read as a URL, the way [`connect`] hands it to libpq.
fn parse_url(url: &str) -> StorageResult<url::Url> {
    url::Url::parse(url).map_err(|e| {
        StorageError::validation(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
    })
}

fn connect(url: &str) -> StorageResult<PgConnection> {
    // libpq gets the URL as we read it: it ends the user info at the first
    // `@`, we at the last, so an unescaped `@` in a password would make
    // libpq name the rest of the password as the host in its error.
    let url = parse_url(url)?.to_string();
    PgConnection::establish(&url).map_err(|e| {
        StorageError::Database(format!(
            "cannot connect to PostgreSQL at {}: {}",
            redact_url(&url),
            scrub_secrets(&e.to_string(), &url)
        ))
    })
}

pub(crate) fn open(url: &str, config: &StorageConfig) -> StorageResult<Store> {
    Store::new(build_pool(url, config)?, (), config.run_migrations)
}

fn build_pool(
    url: &str,
    config: &StorageConfig,
) -> StorageResult<Pool<ConnectionManager<PgConnection>>> {
    let url = with_connect_timeout(url, config)?;
    // One connection first, outside the pool: an unreachable server or a
    // wrong password fails at once with libpq's reason.
    drop(connect(&url)?);
    Pool::builder()
        .max_size(config.pool_size)
        .min_idle(Some(1))
        .connection_timeout(config.connection_timeout)
        .test_on_check_out(false)
        .build(ConnectionManager::<PgConnection>::new(&url))
        .map_err(|e| {
            StorageError::Database(format!(
                "cannot open a pool on {}: {}",
                redact_url(&url),
                scrub_secrets(&e.to_string(), &url)
            ))
        })
}

/// Creates `schema` (a name we generated: letters, digits, `_`) and returns
/// `admin_url` with its connections' `search_path` set to it.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn scratch_schema_create(admin_url: &str, schema: &str) -> StorageResult<String> {
    if !schema
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StorageError::validation(format!(
            "bad schema name {schema:?}"
        )));
    }
    let mut conn = connect(admin_url)?;
    conn.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .map_err(|e| StorageError::Database(format!("cannot create schema {schema}: {e}")))?;
    let mut url = url::Url::parse(admin_url)
        .map_err(|e| StorageError::validation(format!("invalid PostgreSQL URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("options", &format!("-csearch_path={schema}"));
    Ok(url.to_string())
}

/// Drops a schema made by [`scratch_schema_create`] with everything in it.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn scratch_schema_drop(admin_url: &str, schema: &str) -> StorageResult<()> {
    let mut conn = connect(admin_url)?;
    conn.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .map_err(|e| StorageError::Database(format!("cannot drop schema {schema}: {e}")))
}
