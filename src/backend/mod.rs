//! The database side: picking a backend from a URL, the per-backend pieces
//! (`sqlite`, `postgres`), the field types whose storage differs
//! (`fields`), and the query code written once for both (`store.rs`, see
//! its module doc for how it is shared).

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
/// reads and writes (`crate::copy`), plus (feature `testing`) what the
/// conformance harness needs beyond them. Crate-private:
/// callers only ever see `dyn Storage`.
#[cfg(not(feature = "testing"))]
pub(crate) trait Maintenance: Storage + crate::copy::CopyEnd {}

/// See above; with the hooks the conformance harness calls.
#[cfg(feature = "testing")]
pub(crate) trait Maintenance: Storage + crate::copy::CopyEnd {
    fn revert_all_migrations(&self) -> StorageResult<usize>;
    fn revert_last_migration(&self) -> StorageResult<()>;
    fn columns(&self) -> StorageResult<Vec<ColumnInfo>>;
    fn execute_sql(&self, sql: &str) -> StorageResult<usize>;
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

/// Opens the store a URL names.
pub(crate) fn open_maintained(
    url: &str,
    config: &StorageConfig,
) -> StorageResult<Arc<dyn Maintenance>> {
    config.validate()?;
    let target = DatabaseUrl::parse(url)?;
    config.replicas.validate(&target)?;
    match target {
        #[cfg(feature = "sqlite")]
        target @ (DatabaseUrl::SqliteMemory | DatabaseUrl::SqliteFile(_)) => {
            Ok(Arc::new(sqlite::open(&target, config)?))
        }
        #[cfg(feature = "postgres")]
        DatabaseUrl::Postgres(url) if !config.replicas.urls.is_empty() => {
            Ok(Arc::new(postgres::open_replicated(&url, config)?))
        }
        #[cfg(feature = "postgres")]
        DatabaseUrl::Postgres(url) => Ok(Arc::new(postgres::open(&url, config)?)),
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
                _ => StorageError::Database(format!("{what}: {detail}")),
            }
        }
        DieselError::DeserializationError(e) => {
            StorageError::Serialization(format!("cannot read {what}: {e}"))
        }
        DieselError::SerializationError(e) => {
            StorageError::Serialization(format!("cannot write {what}: {e}"))
        }
        other => StorageError::Database(one_line(&format!("{what}: {other}"))),
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

impl TxError {
    pub(crate) fn into_storage(self) -> StorageError {
        match self {
            TxError::Storage(err) => err,
            TxError::Diesel(err) => from_diesel(err, "transaction"),
        }
    }
}

/// The error that made a transaction fail. When the rollback fails too (the
/// connection died, or SQLite already rolled back after an I/O error),
/// Diesel returns the rollback's error instead; callers need the cause, so
/// the one kept here wins.
#[derive(Default)]
pub(crate) struct TxCause(Option<StorageError>);

impl TxCause {
    pub(crate) fn keep(&mut self, err: StorageError) -> TxError {
        self.0 = Some(err.clone());
        TxError::Storage(err)
    }

    pub(crate) fn finish<T>(self, result: Result<T, TxError>) -> StorageResult<T> {
        result.map_err(|err| match (err, self.0) {
            (TxError::Diesel(_), Some(cause)) => cause,
            (err, _) => err.into_storage(),
        })
    }
}
