//! PostgreSQL: connection setup and the few pieces `store.rs` needs from a
//! backend. A connection whose server went away is dropped by the pool, and
//! once one has gone every older pooled connection is pinged before its next
//! use (see [`Manager`]); otherwise checkout costs no round trip.
//! Connecting is bounded by the configured timeout through libpq's
//! `connect_timeout`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::pg::{Pg, PgConnection};
use diesel::r2d2::{ConnectionManager, ManageConnection, Pool};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, OptionalExtension, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

mod grant;
mod tls;

pub(crate) use grant::grant_application_role;

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
/// `copy_end::WriteRecords`) instead of multi-row INSERTs. Measured by
/// `benches/bulk_write.rs` (docs/performance.md, "Bulk writes: COPY or INSERT"): from
/// 100 rows on COPY was never slower (from 1,000 blocks on it took 0.6 to
/// 0.87 of INSERT's time; nodes and edges, whose cost is mostly foreign-key
/// checks, gained a few percent); at 10 rows it lost by up to 13%, and in
/// between the commit dominates.
pub(crate) const COPY_FROM_ROWS: Option<usize> = Some(100);
/// Whether Diesel's bookkeeping table exists where the store's names
/// resolve (a catalog read: no DDL, no privilege needed).
pub(crate) const MIGRATIONS_TABLE_PRESENT_SQL: &str =
    "SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS present";
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
///
/// Failover: a connection whose statement found the server gone or
/// read-only (SQLSTATE 25006: a primary demoted to a standby, or made
/// read-only during a switchover) is dropped outright, since a standby
/// still answers pings. With `target_session_attrs` in the URL, the check
/// at checkout asks what libpq asked when it connected (writable? in
/// recovery?), so every pooled connection to a demoted primary is dropped
/// too, and the next connection is opened anew: libpq then tries the URL's
/// hosts in turn and takes the new primary.
///
/// A URL with several hosts names a server that moves: connecting to it
/// is retried every [`CONNECT_POLL`] for up to half the connection timeout
/// before it fails, so that the pool reaches a new primary as soon as one
/// is writable (r2d2 itself waits longer and longer between attempts, up
/// to half the connection timeout, which would add seconds to a failover).
pub(crate) struct Manager {
    inner: ConnectionManager<PgConnection>,
    losses: Arc<AtomicU64>,
    /// Run on every new connection: the configured statement and lock
    /// timeouts (empty when neither is set).
    session_setup: String,
    session: SessionCheck,
    /// How long `connect` keeps trying (zero: one attempt).
    connect_for: Duration,
}

/// How often a multi-host URL's connection is tried while no host serves.
const CONNECT_POLL: Duration = Duration::from_millis(200);

impl Manager {
    fn new(url: &PgUrl, config: &StorageConfig) -> Self {
        let session_setup = [
            ("statement_timeout", config.statement_timeout),
            ("lock_timeout", config.lock_timeout),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some(format!("SET {name} = {};", value?.as_millis())))
        .collect();
        Manager {
            inner: ConnectionManager::new(url.as_str()),
            losses: Arc::default(),
            session_setup,
            session: SessionCheck::of(url),
            connect_for: if url.hosts().len() > 1 {
                config.connection_timeout / 2
            } else {
                Duration::ZERO
            },
        }
    }

    /// One new connection; for a multi-host URL, tried again while no
    /// host serves (a failover in progress).
    fn establish(&self) -> Result<PgConnection, diesel::r2d2::Error> {
        let started = Instant::now();
        loop {
            match self.inner.connect() {
                Err(_) if started.elapsed() + CONNECT_POLL < self.connect_for => {
                    std::thread::sleep(CONNECT_POLL)
                }
                result => return result,
            }
        }
    }

    /// Whether `conn` still answers, and still reaches the kind of server
    /// its URL's `target_session_attrs` asked for.
    fn check(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        let Some(sql) = self.session.sql() else {
            return self.inner.is_valid(conn);
        };
        match diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(sql)).get_result(conn) {
            Ok(true) => Ok(()),
            Ok(false) => Err(diesel::r2d2::Error::QueryError(
                diesel::result::Error::DatabaseError(
                    DatabaseErrorKind::ReadOnlyTransaction,
                    Box::new(format!(
                        "the server is no longer {}",
                        self.session.describe()
                    )),
                ),
            )),
            Err(e) => Err(diesel::r2d2::Error::QueryError(e)),
        }
    }
}

/// What a pooled connection must still reach, from the URL's
/// `target_session_attrs` (libpq checks it only when it connects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionCheck {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
}

impl SessionCheck {
    fn of(url: &PgUrl) -> Self {
        match url.param("target_session_attrs") {
            Some("read-write") => SessionCheck::ReadWrite,
            Some("read-only") => SessionCheck::ReadOnly,
            Some("primary") => SessionCheck::Primary,
            Some("standby") => SessionCheck::Standby,
            // `any`, `prefer-standby` (a primary is acceptable), or none.
            _ => SessionCheck::Any,
        }
    }

    /// A query that is true while the server is of the kind asked for.
    fn sql(self) -> Option<&'static str> {
        match self {
            SessionCheck::Any => None,
            SessionCheck::ReadWrite => Some("current_setting('transaction_read_only') = 'off'"),
            SessionCheck::ReadOnly => Some("current_setting('transaction_read_only') = 'on'"),
            SessionCheck::Primary => Some("NOT pg_is_in_recovery()"),
            SessionCheck::Standby => Some("pg_is_in_recovery()"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            SessionCheck::Any => "reachable",
            SessionCheck::ReadWrite => "writable (target_session_attrs=read-write)",
            SessionCheck::ReadOnly => "read-only (target_session_attrs=read-only)",
            SessionCheck::Primary => "a primary (target_session_attrs=primary)",
            SessionCheck::Standby => "a standby (target_session_attrs=standby)",
        }
    }
}

/// Per-connection health, kept in the connection's instrumentation slot
/// (the one place Diesel lets us attach state to it).
struct ConnectionHealth {
    /// A statement failed since the connection was last checked.
    suspect: bool,
    /// A statement found the server gone or read-only: drop the connection.
    doomed: bool,
    /// The store's loss count when this connection was last known good.
    losses_seen: u64,
    /// The application's default instrumentation (Diesel's
    /// `set_default_instrumentation`), which this slot would otherwise
    /// displace: every event is passed on to it.
    passed_on: Option<Box<dyn Instrumentation>>,
}

impl Instrumentation for ConnectionHealth {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery {
            error: Some(err), ..
        } = &event
        {
            self.suspect = true;
            self.doomed |= matches!(
                err,
                DieselError::DatabaseError(
                    DatabaseErrorKind::ReadOnlyTransaction
                        | DatabaseErrorKind::ClosedConnection
                        | DatabaseErrorKind::UnableToSendCommand,
                    _
                )
            );
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
        let mut conn = self.establish()?;
        if !self.session_setup.is_empty() {
            conn.batch_execute(&self.session_setup)
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        conn.set_instrumentation(ConnectionHealth {
            suspect: false,
            doomed: false,
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
        self.check(conn)?;
        if let Some(h) = health(conn) {
            h.losses_seen = losses;
            h.suspect = false;
        }
        Ok(())
    }

    /// Called as a connection goes back to the pool.
    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        let (suspect, doomed) = health(conn).map_or((false, false), |h| {
            (std::mem::take(&mut h.suspect), h.doomed)
        });
        if !suspect {
            return self.inner.has_broken(conn);
        }
        let broken = doomed || self.inner.has_broken(conn) || self.check(conn).is_err();
        if broken {
            self.losses.fetch_add(1, Ordering::SeqCst);
        }
        broken
    }
}

/// Runs a read of several statements in one REPEATABLE READ, read-only
/// transaction: one snapshot for all of them, as on SQLite (READ COMMITTED
/// would give each statement its own). It writes nothing, so a connection
/// lost under it never leaves an outcome unknown.
pub(crate) fn read_tx<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    let mut cause = TxCause::default();
    let result = conn
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(|c| cause.body(f(c)));
    cause
        .finish(result, || connection_lost(conn))
        .map_err(StorageError::known_not_applied)
}

/// Runs `f` in a transaction (PostgreSQL's row locks make a plain BEGIN
/// enough for writers to wait on each other).
pub(crate) fn write_tx<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> StorageResult<T>,
) -> StorageResult<T> {
    let mut cause = TxCause::default();
    let result = conn.transaction(|c| cause.body(f(c)));
    cause.finish(result, || connection_lost(conn))
}

/// Whether `conn` no longer reaches its server (asked after a failure,
/// so it costs a round trip only then).
fn connection_lost(conn: &mut Conn) -> bool {
    conn.batch_execute("SELECT 1").is_err()
}

/// A `Database` error naming the missing privilege when a schema of the
/// `search_path` exists but this role may not use it: PostgreSQL then
/// resolves no name in it, so the store's tables look absent (and
/// `current_schema()` is NULL) rather than forbidden.
pub(crate) fn check_schema_access(conn: &mut Conn) -> StorageResult<()> {
    #[derive(diesel::QueryableByName)]
    struct Denied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        schema: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        role: String,
    }
    let denied: Option<Denied> = diesel::sql_query(
        "SELECT n.nspname::text AS schema, current_user::text AS role FROM pg_namespace n \
         WHERE n.nspname = ANY (string_to_array(replace(replace( \
           current_setting('search_path'), '\"', ''), ' ', ''), ',')) \
         AND NOT has_schema_privilege(n.oid, 'USAGE') ORDER BY 1 LIMIT 1",
    )
    .get_result(conn)
    .optional()
    .map_err(|e| super::from_diesel(e, "schema privileges"))?;
    match denied {
        Some(Denied { schema, role }) => Err(StorageError::Database(format!(
            "permission denied for schema {schema}: role {role} lacks USAGE on it \
             (the owner grants what the store needs with `hsk-storage grant --role {role}`)"
        ))),
        None => Ok(()),
    }
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
/// `PGOPTIONS`, which libpq sends when the URL has no `options`, is
/// checked first, as the URL's own would be.
pub(crate) fn connect(url: &PgUrl) -> StorageResult<PgConnection> {
    url.check_environment()?;
    init_tls();
    PgConnection::establish(url.as_str()).map_err(|e| {
        StorageError::Database(format!(
            "cannot connect to PostgreSQL at {}: {}",
            url.redacted(),
            connect_failure(&e.to_string(), url)
        ))
    })
}

/// A driver's message on a failed connection, fit for an error: secrets
/// cut, on one line, led by what to fix when it is a TLS failure.
fn connect_failure(message: &str, url: &PgUrl) -> String {
    let message = scrub_secrets(message, url.as_str());
    match tls::explain(&message, url) {
        Some(line) => scrub_secrets(&format!("{line}; libpq said: {message}"), url.as_str()),
        None => message,
    }
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

pub(crate) fn open(
    url: &PgUrl,
    config: &StorageConfig,
    schema: super::SchemaOnOpen,
) -> StorageResult<Store> {
    Store::new(build_pool(url, config)?, (), schema)
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
        .build(Manager::new(&url, config))
        .map_err(|e| {
            StorageError::Database(format!(
                "cannot open a pool on {}: {}",
                url.redacted(),
                connect_failure(&e.to_string(), &url)
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

/// Creates `role` (a name we generated: letters, digits, `_`) as a login
/// role with no attributes and no privileges, and returns the random
/// password it was given.
#[cfg(feature = "testing")]
pub(crate) fn scratch_role_create(admin_url: &str, role: &str) -> StorageResult<String> {
    if !role.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StorageError::validation(format!("bad role name {role:?}")));
    }
    let password = uuid::Uuid::new_v4().simple().to_string();
    let mut conn = connect(&PgUrl::parse(admin_url)?)?;
    conn.batch_execute(&format!(
        "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT \
         NOREPLICATION NOBYPASSRLS PASSWORD '{password}'"
    ))
    .map_err(|e| StorageError::Database(format!("cannot create role {role}: {e}")))?;
    Ok(password)
}

/// `url` logging in as `user` with `password`.
#[cfg(feature = "testing")]
pub(crate) fn login_url(url: &str, user: &str, password: &str) -> StorageResult<String> {
    Ok(PgUrl::parse(url)?
        .with_login(user, password)
        .as_str()
        .to_string())
}

/// Drops a role made by [`scratch_role_create`], with every privilege
/// granted to it in the admin URL's database.
#[cfg(feature = "testing")]
pub(crate) fn scratch_role_drop(admin_url: &str, role: &str) -> StorageResult<()> {
    let mut conn = connect(&PgUrl::parse(admin_url)?)?;
    conn.batch_execute(&format!(
        "DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN \
         EXECUTE 'DROP OWNED BY \"{role}\"'; EXECUTE 'DROP ROLE \"{role}\"'; END IF; END$$"
    ))
    .map_err(|e| StorageError::Database(format!("cannot drop role {role}: {e}")))
}

/// Drops the scratch roles named `{prefix}{unix seconds}_...` created more
/// than a day ago (left by a killed test process), best effort, as
/// [`scratch_schema_sweep`] does for schemas.
#[cfg(feature = "testing")]
pub(crate) fn scratch_role_sweep(admin_url: &str, prefix: &str) {
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return;
    }
    let sweep = format!(
        "DO $$DECLARE r text; BEGIN \
         FOR r IN SELECT rolname FROM pg_roles \
           WHERE rolname ~ '^{prefix}[0-9]+_' \
           AND substring(rolname FROM '^{prefix}([0-9]+)_')::numeric \
               < extract(epoch FROM now()) - 86400 \
         LOOP EXECUTE format('DROP OWNED BY %I', r); EXECUTE format('DROP ROLE %I', r); \
         END LOOP; END$$"
    );
    if let Ok(mut conn) = PgUrl::parse(admin_url).and_then(|url| connect(&url)) {
        let _ = conn.batch_execute(&sweep);
    }
}
