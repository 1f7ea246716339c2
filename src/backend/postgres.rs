//! PostgreSQL: connection setup and the few pieces `store.rs` needs from a
//! backend. A connection whose server went away is dropped by the pool, and
//! once one has gone every older pooled connection is pinged before its next
//! use (see [`Manager`]); otherwise checkout costs no round trip.
//! Connecting is bounded by the configured timeout through libpq's
//! `connect_timeout`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::pg::{Pg, PgConnection};
use diesel::r2d2::{ConnectionManager, ManageConnection, Pool};
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::TxCause;
use crate::config::{scrub_secrets, PgUrl, StorageConfig};
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
/// From how many rows a bulk write (`replace_blocks`, `update_canvas_graph`,
/// per table) is sent as one binary `COPY FROM STDIN` (the copier's writer,
/// `copy::WriteRecords`) instead of multi-row INSERTs. Measured by
/// `benches/bulk_write.rs` (README, "Bulk writes: COPY or INSERT"): from
/// 100 rows on COPY was never slower (from 1,000 blocks on it took 0.6 to
/// 0.87 of INSERT's time; nodes and edges, whose cost is mostly foreign-key
/// checks, gained a few percent); at 10 rows it lost by up to 13%, and in
/// between the commit dominates.
pub(crate) const COPY_FROM_ROWS: Option<usize> = Some(100);
// The live schema of the current schema (search_path), for
// `schema_fingerprint` (Diesel's bookkeeping table left out). A column's
// collation is part of its type when it is not the type's default; names
// are unquoted and unqualified, as SQLite gives them.
pub(crate) const SCHEMA_COLUMNS_SQL: &str = "SELECT c.relname::text AS table_name, \
     a.attname::text AS column_name, \
     format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attcollation <> t.typcollation \
       THEN ' COLLATE \"' || co.collname || '\"' ELSE '' END AS sql_type, \
     NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default_value \
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid \
     LEFT JOIN pg_collation co ON co.oid = a.attcollation \
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
     WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 \
     AND NOT a.attisdropped AND c.relname <> '__diesel_schema_migrations'";
pub(crate) const SCHEMA_INDEXES_SQL: &str = "SELECT t.relname::text AS table_name, \
     i.relname::text AS index_name, ix.indisunique AS is_unique, ix.indisprimary AS is_primary, \
     k.ord::bigint AS position, \
     COALESCE(a.attname::text, pg_get_indexdef(ix.indexrelid, k.ord, false)) AS column_name, \
     (ix.indoption[k.ord - 1] & 1) = 1 AS descending \
     FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
     JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
     CROSS JOIN LATERAL generate_series(1, ix.indnkeyatts::int) AS k(ord) \
     LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = ix.indkey[k.ord - 1] \
     WHERE n.nspname = current_schema() AND t.relname <> '__diesel_schema_migrations'";
pub(crate) const SCHEMA_FOREIGN_KEYS_SQL: &str = "SELECT cl.relname::text AS table_name, \
     con.conname::text AS name, k.ord AS position, a.attname::text AS column_name, \
     rt.relname::text AS ref_table, ra.attname::text AS ref_column, \
     (CASE con.confupdtype WHEN 'c' THEN 'CASCADE' WHEN 'r' THEN 'RESTRICT' \
       WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END) AS on_update, \
     (CASE con.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'r' THEN 'RESTRICT' \
       WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END) AS on_delete \
     FROM pg_constraint con JOIN pg_class cl ON cl.oid = con.conrelid \
     JOIN pg_namespace n ON n.oid = cl.relnamespace JOIN pg_class rt ON rt.oid = con.confrelid \
     CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(col, refcol, ord) \
     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col \
     JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refcol \
     WHERE con.contype = 'f' AND n.nspname = current_schema()";
pub(crate) const SCHEMA_TRIGGERS_SQL: &str = "SELECT c.relname::text AS table_name, \
     tg.tgname::text AS name, pg_get_triggerdef(tg.oid, true) || '; ' || p.prosrc AS definition \
     FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = tg.tgfoid \
     WHERE NOT tg.tgisinternal AND n.nspname = current_schema()";

/// Bytes of the `ai_jobs` primary-key index.
#[cfg(feature = "bench")]
pub(crate) const AI_JOBS_PKEY_BYTES_SQL: &str =
    "SELECT pg_relation_size('ai_jobs_pkey')::bigint AS bytes";

// The query code is shared with SQLite: the same file, compiled here
// against this module's schema and connection.
#[allow(clippy::duplicate_mod)]
#[path = "store.rs"]
mod store;

pub(crate) use store::Store;

// Read replicas: a router over several `Store`s, a child of this module
// because it builds their pools.
#[path = "replica.rs"]
mod replica;

pub(crate) use replica::open_replicated;

#[cfg(feature = "bench")]
#[allow(clippy::duplicate_mod)]
#[path = "baseline.rs"]
mod baseline;

/// The benchmarks' raw-SQL baseline, on a pool built like the store's.
#[cfg(feature = "bench")]
pub(crate) fn open_baseline(
    url: &PgUrl,
    config: &StorageConfig,
) -> StorageResult<baseline::RawSql> {
    Ok(baseline::RawSql::new(build_pool(url, config)?))
}

/// The pool's connection manager. Diesel's own drops a connection only when
/// its transaction state is broken, so a connection whose server process
/// was killed while idle (or between statements) would go back into the
/// pool and fail every call that draws it. Here a connection on which a
/// statement failed is checked as it goes back (a terminated server's
/// first answer looks like any other error): if it is broken or does not
/// answer a ping it is dropped, and a store-wide count of such losses goes
/// up, so that every connection last checked before the loss is pinged once
/// at its next checkout. After a server restart or `pg_terminate_backend`
/// one call fails, not one per pooled connection; without errors there is
/// no extra round trip.
pub(crate) struct Manager {
    inner: ConnectionManager<PgConnection>,
    losses: Arc<AtomicU64>,
}

impl Manager {
    fn new(url: &PgUrl) -> Self {
        Manager {
            inner: ConnectionManager::new(url.as_str()),
            losses: Arc::default(),
        }
    }
}

/// Per-connection health, kept in the connection's instrumentation slot
/// (the one place Diesel lets us attach state to it).
struct ConnectionHealth {
    /// A statement failed since the connection was last checked.
    suspect: bool,
    /// The store's loss count when this connection was last known good.
    losses_seen: u64,
    /// The application's default instrumentation (Diesel's
    /// `set_default_instrumentation`), which this slot would otherwise
    /// displace: every event is passed on to it.
    passed_on: Option<Box<dyn Instrumentation>>,
}

impl Instrumentation for ConnectionHealth {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error: Some(_), .. } = &event {
            self.suspect = true;
        }
        if let Some(next) = &mut self.passed_on {
            next.on_connection_event(event);
        }
    }
}

fn health(conn: &mut PgConnection) -> Option<&mut ConnectionHealth> {
    conn.instrumentation().downcast_mut::<ConnectionHealth>()
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        init_tls();
        // The loss count from before the connection exists: a server killed
        // while it is being set up (its process already started) counts a
        // loss that this connection must not be taken to have seen, or it
        // would be handed out unchecked and fail a second call in a row.
        let losses_seen = self.losses.load(Ordering::SeqCst);
        let mut conn = self.inner.connect()?;
        conn.set_instrumentation(ConnectionHealth {
            suspect: false,
            losses_seen,
            passed_on: super::statement_instrumentation(),
        });
        Ok(conn)
    }

    /// Called on checkout: free unless a connection was lost since this
    /// one was last known good, then one `SELECT 1`.
    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        let losses = self.losses.load(Ordering::SeqCst);
        if health(conn).is_some_and(|h| h.losses_seen == losses) {
            return Ok(());
        }
        self.inner.is_valid(conn)?;
        if let Some(h) = health(conn) {
            h.losses_seen = losses;
            h.suspect = false;
        }
        Ok(())
    }

    /// Called as a connection goes back to the pool.
    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        let suspect = health(conn).is_some_and(|h| std::mem::take(&mut h.suspect));
        if !suspect {
            return self.inner.has_broken(conn);
        }
        let broken = self.inner.has_broken(conn) || self.inner.is_valid(conn).is_err();
        if broken {
            self.losses.fetch_add(1, Ordering::SeqCst);
        }
        broken
    }
}

/// Runs a read of several statements in one REPEATABLE READ, read-only
/// transaction: one snapshot for all of them, as on SQLite (READ COMMITTED
/// would give each statement its own).
pub(crate) fn read_tx<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    let mut cause = TxCause::default();
    let result = conn
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(|c| f(c).map_err(|e| cause.keep(e)));
    cause.finish(result)
}

/// Runs `f` in a transaction (PostgreSQL's row locks make a plain BEGIN
/// enough for writers to wait on each other).
pub(crate) fn write_tx<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    let mut cause = TxCause::default();
    let result = conn.transaction(|c| f(c).map_err(|e| cause.keep(e)));
    cause.finish(result)
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
fn with_connect_timeout(url: &PgUrl, config: &StorageConfig) -> PgUrl {
    if url.has_param("connect_timeout") {
        return url.clone();
    }
    let secs = config.connection_timeout.as_secs().max(1);
    url.with_param("connect_timeout", &secs.to_string())
}

/// Initialises the OpenSSL that libpq uses, once per process and before
/// libpq's first connection, the way rust-openssl does for its own users:
/// with `OPENSSL_INIT_NO_ATEXIT`. Without it OpenSSL frees its global state
/// in an `atexit` handler, while pool worker threads (which open and close
/// connections in the background, and which r2d2 never joins) may still be
/// inside libpq's TLS code: a process returning from `main` then died with
/// SIGSEGV about one run in twenty. Leaving out the exit-time teardown is safe:
/// the operating system reclaims the memory, and no thread can observe
/// freed OpenSSL state any more.
fn init_tls() {
    openssl_sys::init();
}

/// One connection, outside any pool, to the URL as parsed (see [`PgUrl`]).
fn connect(url: &PgUrl) -> StorageResult<PgConnection> {
    init_tls();
    PgConnection::establish(url.as_str()).map_err(|e| {
        StorageError::Database(format!(
            "cannot connect to PostgreSQL at {}: {}",
            url.redacted(),
            scrub_secrets(&e.to_string(), url.as_str())
        ))
    })
}

/// One write transaction on a connection of its own, outside any pool:
/// for the copy benchmark's raw baseline (`copy::raw_baseline`).
#[cfg(all(feature = "bench", feature = "sqlite"))]
pub(crate) fn raw_write<T>(
    url: &str,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    let crate::config::DatabaseUrl::Postgres(url) = crate::config::DatabaseUrl::parse(url)? else {
        return Err(StorageError::validation(
            "the target is not a PostgreSQL URL",
        ));
    };
    write_tx(&mut connect(&url)?, f)
}

pub(crate) fn open(url: &PgUrl, config: &StorageConfig) -> StorageResult<Store> {
    Store::new(build_pool(url, config)?, (), config.run_migrations)
}

fn build_pool(url: &PgUrl, config: &StorageConfig) -> StorageResult<Pool<Manager>> {
    let url = with_connect_timeout(url, config);
    // One connection first, outside the pool: an unreachable server or a
    // wrong password fails at once with libpq's reason.
    drop(connect(&url)?);
    Pool::builder()
        .max_size(config.pool_size)
        .min_idle(Some(1))
        .connection_timeout(config.connection_timeout)
        // `Manager::is_valid` makes this free until a connection is lost.
        .test_on_check_out(true)
        .build(Manager::new(&url))
        .map_err(|e| {
            StorageError::Database(format!(
                "cannot open a pool on {}: {}",
                url.redacted(),
                scrub_secrets(&e.to_string(), url.as_str())
            ))
        })
}

/// Creates `schema` (a name we generated: letters, digits, `_`) and returns
/// `admin_url` with its connections' `search_path` set to it.
#[cfg(feature = "testing")]
pub(crate) fn scratch_schema_create(admin_url: &str, schema: &str) -> StorageResult<String> {
    if !schema
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StorageError::validation(format!(
            "bad schema name {schema:?}"
        )));
    }
    let admin_url = PgUrl::parse(admin_url)?;
    let mut conn = connect(&admin_url)?;
    conn.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .map_err(|e| StorageError::Database(format!("cannot create schema {schema}: {e}")))?;
    scratch_schema_url(admin_url.as_str(), schema)
}

/// `url` with its connections' `search_path` set to `schema`.
#[cfg(feature = "testing")]
pub(crate) fn scratch_schema_url(url: &str, schema: &str) -> StorageResult<String> {
    let url = PgUrl::parse(url)?.with_param("options", &format!("-csearch_path={schema}"));
    Ok(url.as_str().to_string())
}

/// Drops the scratch schemas named `{prefix}{unix seconds}_...` that were
/// created more than a day ago: left behind by a test process that was
/// killed before its guard ran. Best effort: a sweep racing another one
/// may fail, and the next sweep finishes the job.
#[cfg(feature = "testing")]
pub(crate) fn scratch_schema_sweep(admin_url: &str, prefix: &str) {
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return;
    }
    let sweep = format!(
        "DO $$DECLARE s text; BEGIN \
         FOR s IN SELECT nspname FROM pg_namespace \
           WHERE nspname ~ '^{prefix}[0-9]+_' \
           AND substring(nspname FROM '^{prefix}([0-9]+)_')::numeric \
               < extract(epoch FROM now()) - 86400 \
         LOOP EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', s); END LOOP; END$$"
    );
    if let Ok(mut conn) = PgUrl::parse(admin_url).and_then(|url| connect(&url)) {
        let _ = conn.batch_execute(&sweep);
    }
}

/// Drops a schema made by [`scratch_schema_create`] with everything in it.
#[cfg(feature = "testing")]
pub(crate) fn scratch_schema_drop(admin_url: &str, schema: &str) -> StorageResult<()> {
    let mut conn = connect(&PgUrl::parse(admin_url)?)?;
    conn.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .map_err(|e| StorageError::Database(format!("cannot drop schema {schema}: {e}")))
}
