//! The database side: picking a backend from a URL, the per-backend pieces
//! (`sqlite`, `postgres`), the field types whose storage differs
//! (`fields`), and the query code written once for both (`store.rs`, see
//! its module doc for how it is shared); what a store provides to the
//! copier (`copy_end`).

pub(crate) mod copy_end;
pub(crate) mod fields;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(all(feature = "bench", feature = "sqlite", feature = "postgres"))]
pub(crate) use postgres::raw_write;
#[cfg(feature = "bench")]
pub(crate) mod seeding;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::Arc;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::config::{DatabaseUrl, StorageConfig};
use crate::error::{one_line, StorageError, StorageResult};
use crate::storage::Storage;

/// A store as `open_maintained` returns it: the public API and the copier's
/// reads and writes (`copy_end`, for `crate::copy`), plus (feature `testing`) what the
/// conformance harness needs beyond them. Crate-private:
/// callers only ever see `dyn Storage`.
#[cfg(not(feature = "testing"))]
pub(crate) trait Maintenance: Storage + copy_end::CopyEnd {}

/// See above; with the hooks the conformance harness calls.
#[cfg(feature = "testing")]
pub(crate) trait Maintenance: Storage + copy_end::CopyEnd {
    fn revert_all_migrations(&self) -> StorageResult<usize>;
    fn revert_last_migration(&self) -> StorageResult<()>;
    fn columns(&self) -> StorageResult<Vec<ColumnInfo>>;
    fn execute_sql(&self, sql: &str) -> StorageResult<usize>;
    fn value_on_every_connection(&self, sql: &str) -> StorageResult<Vec<i64>>;
}

/// A column of one of our tables, as the live database describes it.
#[cfg(feature = "testing")]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnInfo {
    pub table: String,
    pub column: String,
    pub nullable: bool,
}

/// What a pooled connection passes its Diesel events on to: the
/// application's default instrumentation, behind the statement events of
/// feature `tracing`.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn statement_instrumentation() -> Option<Box<dyn diesel::connection::Instrumentation>> {
    let next = diesel::connection::get_default_instrumentation();
    #[cfg(feature = "tracing")]
    let next = Some(Box::new(crate::tracing_layer::StatementEvents::new(next)) as Box<_>);
    next
}

/// A plain PostgreSQL connection outside any pool (an import's source,
/// which is not a store of ours).
#[cfg(feature = "postgres")]
pub(crate) fn connect_postgres(url: &crate::config::PgUrl) -> StorageResult<diesel::PgConnection> {
    postgres::connect(url)
}

/// What opening a store does to (or checks of) its schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SchemaOnOpen {
    /// Apply pending migrations (`StorageConfig::run_migrations(true)`).
    Migrate,
    /// Issue no DDL; fail with `Migration` unless the applied migrations
    /// and the live fingerprint are this build's
    /// (`run_migrations(false)`).
    Check,
    /// Neither: for tools that inspect or migrate a store at any version
    /// (`open_for_maintenance`, a copy's source, a read replica).
    Leave,
}

impl SchemaOnOpen {
    /// What `config` asks for.
    pub(crate) fn of(config: &StorageConfig) -> Self {
        if config.run_migrations {
            SchemaOnOpen::Migrate
        } else {
            SchemaOnOpen::Check
        }
    }
}

/// Opens the store a URL (parsed once, by the caller) names, migrating or
/// checking its schema as `config.run_migrations` says.
pub(crate) fn open_maintained(
    target: &DatabaseUrl,
    config: &StorageConfig,
) -> StorageResult<Arc<dyn Maintenance>> {
    open_store(target, config, SchemaOnOpen::of(config))
}

/// Opens the store a URL names, doing `schema` to its schema.
pub(crate) fn open_store(
    target: &DatabaseUrl,
    config: &StorageConfig,
    schema: SchemaOnOpen,
) -> StorageResult<Arc<dyn Maintenance>> {
    config.validate()?;
    config.replicas.validate(target)?;
    match target {
        #[cfg(feature = "sqlite")]
        DatabaseUrl::SqliteMemory | DatabaseUrl::SqliteFile(_) => {
            Ok(Arc::new(sqlite::open(target, config, schema)?))
        }
        #[cfg(feature = "postgres")]
        DatabaseUrl::Postgres(url) if !config.replicas.urls.is_empty() => {
            Ok(Arc::new(postgres::open_replicated(url, config, schema)?))
        }
        #[cfg(feature = "postgres")]
        DatabaseUrl::Postgres(url) => Ok(Arc::new(postgres::open(url, config, schema)?)),
        #[allow(unreachable_patterns)]
        other => Err(missing_feature(other.feature())),
    }
}

/// Grants `role` what an application needs on the store a URL names
/// (`crate::grant_application_role`).
pub(crate) fn grant_application_role(
    target: &DatabaseUrl,
    role: &str,
) -> StorageResult<crate::grants::GrantReport> {
    crate::grants::check_role_name(role)?;
    match target {
        DatabaseUrl::SqliteMemory | DatabaseUrl::SqliteFile(_) => Err(StorageError::Validation(
            "grants are for PostgreSQL: SQLite has no roles (a SQLite store is guarded \
                 by its file's permissions, 0600 for a file the store creates)"
                .into(),
        )),
        #[cfg(feature = "postgres")]
        DatabaseUrl::Postgres(url) => postgres::grant_application_role(url, role),
        #[allow(unreachable_patterns)]
        other => Err(missing_feature(other.feature())),
    }
}

/// The benchmarks' raw-SQL baseline on the database a URL names.
#[cfg(feature = "bench")]
pub(crate) fn open_baseline(
    url: &str,
    config: &StorageConfig,
) -> StorageResult<Box<dyn seeding::Baseline>> {
    match DatabaseUrl::parse(url)? {
        #[cfg(feature = "sqlite")]
        target @ (DatabaseUrl::SqliteMemory | DatabaseUrl::SqliteFile(_)) => {
            Ok(Box::new(sqlite::open_baseline(&target, config)?))
        }
        #[cfg(feature = "postgres")]
        DatabaseUrl::Postgres(url) => Ok(Box::new(postgres::open_baseline(&url, config)?)),
        #[allow(unreachable_patterns)]
        other => Err(missing_feature(other.feature())),
    }
}

#[allow(dead_code)]
fn missing_feature(feature: &str) -> StorageError {
    StorageError::Validation(format!(
        "this build has no `{feature}` backend: rebuild handshake-storage with \
         `--features {feature}` to open this URL"
    ))
}

/// Creates a scratch schema for a conformance run and returns a URL whose
/// connections use it.
#[cfg(feature = "testing")]
pub(crate) fn scratch_schema_create(admin_url: &str, schema: &str) -> StorageResult<String> {
    #[cfg(feature = "postgres")]
    {
        postgres::scratch_schema_create(admin_url, schema)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (admin_url, schema);
        Err(missing_feature("postgres"))
    }
}

/// `url` (a replica of the server a scratch schema was created on) with
/// its connections' `search_path` set to that schema.
#[cfg(feature = "testing")]
pub(crate) fn scratch_schema_url(url: &str, schema: &str) -> StorageResult<String> {
    #[cfg(feature = "postgres")]
    {
        postgres::scratch_schema_url(url, schema)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (url, schema);
        Err(missing_feature("postgres"))
    }
}

/// Drops day-old scratch schemas named `{prefix}{unix seconds}_...`.
#[cfg(feature = "testing")]
pub(crate) fn scratch_schema_sweep(admin_url: &str, prefix: &str) {
    #[cfg(feature = "postgres")]
    postgres::scratch_schema_sweep(admin_url, prefix);
    #[cfg(not(feature = "postgres"))]
    let _ = (admin_url, prefix);
}

/// Creates a scratch login role without privileges; returns its password.
#[cfg(feature = "testing")]
pub(crate) fn scratch_role_create(admin_url: &str, role: &str) -> StorageResult<String> {
    #[cfg(feature = "postgres")]
    {
        postgres::scratch_role_create(admin_url, role)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (admin_url, role);
        Err(missing_feature("postgres"))
    }
}

/// A PostgreSQL `url` logging in as `user` with `password`.
#[cfg(feature = "testing")]
pub(crate) fn login_url(url: &str, user: &str, password: &str) -> StorageResult<String> {
    #[cfg(feature = "postgres")]
    {
        postgres::login_url(url, user, password)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (url, user, password);
        Err(missing_feature("postgres"))
    }
}

/// Drops a role made by [`scratch_role_create`] and its privileges.
#[cfg(feature = "testing")]
pub(crate) fn scratch_role_drop(admin_url: &str, role: &str) -> StorageResult<()> {
    #[cfg(feature = "postgres")]
    {
        postgres::scratch_role_drop(admin_url, role)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (admin_url, role);
        Err(missing_feature("postgres"))
    }
}

/// Drops day-old scratch roles named `{prefix}{unix seconds}_...`.
#[cfg(feature = "testing")]
pub(crate) fn scratch_role_sweep(admin_url: &str, prefix: &str) {
    #[cfg(feature = "postgres")]
    postgres::scratch_role_sweep(admin_url, prefix);
    #[cfg(not(feature = "postgres"))]
    let _ = (admin_url, prefix);
}

/// Drops a scratch schema made by [`scratch_schema_create`].
#[cfg(feature = "testing")]
pub(crate) fn scratch_schema_drop(admin_url: &str, schema: &str) -> StorageResult<()> {
    #[cfg(feature = "postgres")]
    {
        postgres::scratch_schema_drop(admin_url, schema)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (admin_url, schema);
        Err(missing_feature("postgres"))
    }
}

/// Turns a Diesel error into ours; `what` names the entity (and id) the
/// statement was about. The same Diesel kind maps to the same variant on
/// every backend.
pub(crate) fn from_diesel(err: DieselError, what: &str) -> StorageError {
    match err {
        DieselError::NotFound => StorageError::NotFound(what.to_string()),
        DieselError::DatabaseError(kind, info) => {
            let detail = one_line(info.message());
            match kind {
                DatabaseErrorKind::UniqueViolation => {
                    StorageError::Conflict(format!("{what} already exists ({detail})"))
                }
                DatabaseErrorKind::ForeignKeyViolation => StorageError::Validation(format!(
                    "{what} refers to a row that does not exist ({detail})"
                )),
                DatabaseErrorKind::NotNullViolation | DatabaseErrorKind::CheckViolation => {
                    StorageError::Validation(format!("{what}: {detail}"))
                }
                // A server that refuses to write (a primary demoted to a
                // standby, or read-only during a switchover), or a
                // statement that never left the client: nothing was done.
                DatabaseErrorKind::ReadOnlyTransaction | DatabaseErrorKind::UnableToSendCommand => {
                    StorageError::not_applied(format!("{what}: {detail}"))
                }
                // The server went away with the statement in flight: in
                // autocommit it may have committed. Callers that know
                // better (a read, a transaction short of COMMIT) say so.
                DatabaseErrorKind::ClosedConnection => {
                    StorageError::outcome_unknown(format!("{what}: {detail}"))
                }
                _ => match limit_hit(&detail) {
                    Some(limit) => StorageError::Database(format!(
                        "{what}: stopped by {limit}, the transaction rolled back ({detail})"
                    )),
                    None => StorageError::Database(format!("{what}: {detail}")),
                },
            }
        }
        // COMMIT failed and so did the ROLLBACK after it (the connection
        // died): the commit's error says what happened.
        DieselError::RollbackErrorOnCommit { commit_error, .. } => from_diesel(*commit_error, what),
        DieselError::DeserializationError(e) => {
            StorageError::Serialization(format!("cannot read {what}: {e}"))
        }
        DieselError::SerializationError(e) => {
            StorageError::Serialization(format!("cannot write {what}: {e}"))
        }
        other => StorageError::Database(one_line(&format!("{what}: {other}"))),
    }
}

/// Which configured bound (`StorageConfig::statement_timeout` or
/// `lock_timeout`, on SQLite the busy timeout) an error reports, read from
/// the database's message: Diesel does not hand on the SQLSTATE. A
/// PostgreSQL server's messages in English (`lc_messages`) are assumed;
/// otherwise the message is passed on unlabelled.
fn limit_hit(message: &str) -> Option<&'static str> {
    if message.contains("due to statement timeout") {
        Some("statement_timeout (SQLSTATE 57014)")
    } else if message.contains("due to lock timeout") {
        Some("lock_timeout (SQLSTATE 55P03)")
    } else if message == "interrupted" {
        // SQLITE_INTERRUPT: only the statement-timeout progress handler
        // interrupts a statement (`sqlite.rs`, `sqlite_deadline.rs`).
        Some("statement_timeout (on SQLite the progress handler, SQLITE_INTERRUPT)")
    } else if message == "database is locked" {
        Some("lock_timeout (on SQLite the busy timeout, SQLITE_BUSY)")
    } else {
        None
    }
}

/// The error type inside Diesel transactions: ours, or Diesel's own from
/// BEGIN/COMMIT. Kept private so Diesel never shows in `StorageError`.
pub(crate) enum TxError {
    Storage(StorageError),
    Diesel(DieselError),
}

impl From<DieselError> for TxError {
    fn from(err: DieselError) -> Self {
        TxError::Diesel(err)
    }
}

/// The error that made a transaction fail, and how far it got. When the
/// rollback fails too (the connection died, or SQLite already rolled back
/// after an I/O error), Diesel returns the rollback's error instead;
/// callers need the cause, so the one kept here wins. A transaction whose
/// body failed never reached COMMIT, so nothing of it was written however
/// its connection ended; only a connection lost during COMMIT leaves the
/// outcome unknown.
#[derive(Default)]
pub(crate) struct TxCause {
    cause: Option<StorageError>,
    /// The body returned `Ok`: COMMIT was sent next.
    committing: bool,
}

impl TxCause {
    /// The transaction body's result, as the transaction runner takes it.
    pub(crate) fn body<T>(&mut self, result: StorageResult<T>) -> Result<T, TxError> {
        match result {
            Ok(value) => {
                self.committing = true;
                Ok(value)
            }
            Err(err) => {
                self.cause = Some(err.clone());
                Err(TxError::Storage(err))
            }
        }
    }

    /// The transaction's outcome. `lost` tells, after a failure, whether
    /// the connection is gone: then a `Database` error that does not say so
    /// itself (an I/O error in a COPY stream, a server's last words before
    /// it closed the connection) is one too.
    pub(crate) fn finish<T>(
        self,
        result: Result<T, TxError>,
        lost: impl FnOnce() -> bool,
    ) -> StorageResult<T> {
        let TxCause { cause, committing } = self;
        let err = match result {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let (err, at_commit) = match (err, cause) {
            (TxError::Diesel(_), Some(cause)) => (cause, false),
            (TxError::Storage(err), _) => (err, false),
            (TxError::Diesel(err), None) if committing => (from_diesel(err, "commit"), true),
            (TxError::Diesel(err), None) => (from_diesel(err, "begin"), false),
        };
        let silent_loss = matches!(&err, StorageError::Database(_))
            && !err.is_retryable()
            && !err.is_outcome_unknown()
            && lost();
        Err(match (silent_loss, at_commit) {
            (true, true) => StorageError::outcome_unknown(err_text(err)),
            (true, false) => StorageError::not_applied(err_text(err)),
            (false, true) => err,
            (false, false) => err.known_not_applied(),
        })
    }
}

/// The message of a `Database` error, without its "database error: ".
fn err_text(err: StorageError) -> String {
    match err {
        StorageError::Database(message) => message,
        other => other.to_string(),
    }
}
