//! # handshake-storage
//!
//! One synchronous storage API for the Handshake backend, over Diesel, with
//! the same behaviour on an embedded SQLite file and on a PostgreSQL server.
//!
//! ## Quick start
//!
//! [`open`] a store by URL (the backend is picked from it and migrations
//! are applied), then read and write through [`Storage`]. Every write says
//! who is writing ([`WriteContext`]); the rows it touches carry that
//! provenance.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), handshake_storage::StorageError> {
//! use handshake_storage::*;
//!
//! // `sqlite://path/to/file.db` for a file; `postgres://...` for a server.
//! let store = open("sqlite::memory:")?;
//! let me = WriteContext::human(Some("ada".into()));
//!
//! let ws = store.create_workspace(&me, NewWorkspace { name: "Notes".into() })?;
//! let doc = store.create_document(
//!     &me,
//!     NewDocument { workspace_id: ws.id.clone(), title: "Groceries".into() },
//! )?;
//! store.create_block(
//!     &me,
//!     NewBlock {
//!         document_id: doc.id.clone(),
//!         kind: "paragraph".into(),
//!         sequence: 1,
//!         raw_content: "eggs, flour".into(),
//!         ..Default::default()
//!     },
//! )?;
//!
//! assert_eq!(store.get_workspace(&ws.id)?.map(|w| w.name).as_deref(), Some("Notes"));
//! assert_eq!(store.list_documents(&ws.id)?, vec![doc.clone()]);
//! let blocks = store.get_blocks(&doc.id)?;
//! assert_eq!(blocks[0].raw_content, "eggs, flour");
//! assert_eq!(blocks[0].provenance.actor_id.as_deref(), Some("ada"));
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
//!
//! Errors are one type, [`StorageError`], whose kind ([`ErrorKind`]) is
//! the same on every backend for the same cause: an unknown id is
//! `NotFound`, a duplicate `Conflict`, bad input `Validation`.
//!
//! Layout: [`types`] are the domain types (no database in sight);
//! [`Storage`] is the API; `backend` holds the query code, written once and
//! compiled per backend, over a few backend-specific pieces (schema module,
//! field types, connection setup); `conformance` (feature `testing`) is the
//! suite that proves the backends agree; [`copy`] moves a store's data to
//! another database (SQLite to PostgreSQL and back) and proves it arrived.
//!
//! Features: `sqlite` (default), `postgres`; both together serve both from
//! one binary, picked at run time by URL. `tokio`: [`AsyncStorage`], every
//! call as an `async fn`. `tracing`: a span per call and an event per
//! statement (see [`tracing_layer`]).

#![deny(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "handshake-storage needs at least one backend feature: enable `sqlite` (the default) \
     and/or `postgres`, e.g. `--features postgres` or `--no-default-features --features postgres`"
);

mod backend;
pub mod calls;
mod config;
pub mod copy;
mod error;
mod grants;
mod guard;
mod ids;
pub mod import;
pub mod job_contract;
pub mod kernel;
mod private_file;
mod schema;
pub mod schema_info;
mod startup;
mod storage;
pub mod types;
mod validate;

#[cfg(feature = "testing")]
pub mod conformance;

#[cfg(feature = "tokio")]
mod async_storage;
#[cfg(feature = "tracing")]
pub mod tracing_layer;

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

use std::sync::Arc;

#[cfg(feature = "tokio")]
pub use async_storage::{AsyncDispatch, AsyncStorage};
pub use config::{
    redact_url, ReplicaConfig, SqliteSynchronous, StorageConfig, DEFAULT_DATABASE_URL,
    REPLICA_URLS_ENV,
};
pub use error::{ErrorKind, StorageError, StorageResult};
pub use grants::GrantReport;
pub use kernel::{
    KernelActor, KernelActorKind, KernelEvent, KernelSessionLease, LeaseFence, NewKernelEvent,
    SessionClaim, SessionRun, SessionRunState, SessionRunUpdate,
};
pub use schema_info::SchemaFingerprint;
pub use startup::{
    postgres_required_by, require_postgres_if_configured, REQUIRES_POSTGRES_VAR, STORAGE_MODE_VAR,
};
pub use storage::Storage;
pub use types::*;

/// Opens the store a URL names, with default settings: picks the backend
/// (`sqlite://path`, a plain path, `sqlite::memory:`, `postgres://`,
/// `postgresql://`), builds the connection pool and applies pending
/// migrations.
///
/// A URL for a backend this build does not include is a `Validation`
/// error naming the missing feature.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use handshake_storage::{open, Backend};
///
/// let dir = tempfile::tempdir()?;
/// let url = format!("sqlite://{}", dir.path().join("handshake.db").display());
/// let store = open(&url)?;
/// store.ping()?;
/// assert_eq!(store.backend(), Backend::Sqlite);
/// assert!(store.migration_status()?.pending.is_empty());
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
pub fn open(url: &str) -> StorageResult<Arc<dyn Storage>> {
    open_with_config(url, &StorageConfig::default())
}

/// [`open`] with explicit settings.
///
/// With [`StorageConfig::run_migrations`]`(false)` the store issues no DDL
/// (so a role that may only read and write rows can open it; see
/// [`grant_application_role`]) and checks the schema instead: its applied
/// migrations and live fingerprint must be this build's, or the open fails
/// with `StorageError::Migration` and one line saying what it found, e.g.
/// "schema at version 20261124000003, this build expects 20261204000001;
/// run `hsk-storage migrate` as the owner".
pub fn open_with_config(url: &str, config: &StorageConfig) -> StorageResult<Arc<dyn Storage>> {
    let url = config::DatabaseUrl::parse(url)?;
    let store = backend::open_maintained(&url, config)?;
    #[cfg(feature = "tracing")]
    let store = tracing_layer::traced(store, &url, config);
    Ok(store)
}

/// Opens a store without touching or checking its schema, whatever
/// `config.run_migrations` says: for tools that inspect or migrate a store
/// at any version (`hsk-storage status` and `migrate`). The application
/// itself opens with [`open_with_config`], which migrates, or with
/// migrations off refuses a schema that is not this build's.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> Result<(), handshake_storage::StorageError> {
/// use handshake_storage::{open_for_maintenance, StorageConfig};
///
/// let store = open_for_maintenance("sqlite::memory:", &StorageConfig::default())?;
/// assert_eq!(store.migration_version()?, None); // nothing applied, and no error
/// store.run_migrations()?;
/// assert!(store.migration_status()?.pending.is_empty());
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
pub fn open_for_maintenance(url: &str, config: &StorageConfig) -> StorageResult<Arc<dyn Storage>> {
    let url = config::DatabaseUrl::parse(url)?;
    let store = backend::open_store(&url, config, backend::SchemaOnOpen::Leave)?;
    #[cfg(feature = "tracing")]
    let store = tracing_layer::traced(store, &url, config);
    Ok(store)
}

/// Grants `role` what an application needs to use the PostgreSQL store
/// `url` names, and nothing more: `USAGE` on its schema (the URL's
/// `search_path`, else the default), `SELECT`, `INSERT`, `UPDATE`,
/// `DELETE` on its tables, `SELECT` on Diesel's bookkeeping table (read by
/// the check at open), `USAGE` on sequences its tables own and `EXECUTE` on
/// the functions its triggers call. The role can then open the store with
/// [`StorageConfig::run_migrations`]`(false)`, but can neither change the
/// schema nor drop a table.
///
/// Run it as the owner (the role that ran the migrations), after
/// migrating, and again after each upgrade's migrations. The role must
/// exist (`NotFound` otherwise); its name is checked (`Validation` for an
/// empty, reserved or `pg_` name) and always sent quoted. A schema that is
/// not this build's is a `Migration` error, a connecting role that does not
/// own the tables a `Validation` error. On a SQLite URL: `Validation`
/// (SQLite has no roles). `hsk-storage grant --role NAME` calls this and
/// prints the statements.
pub fn grant_application_role(url: &str, role: &str) -> StorageResult<GrantReport> {
    backend::grant_application_role(&config::DatabaseUrl::parse(url)?, role)
}

/// Opens the store named by `DATABASE_URL` (a `.env` file is honoured);
/// unset means `sqlite://data/handshake.db`, whose directory is created.
///
/// Fails closed: under `HANDSHAKE_CONTROL_PLANE_REQUIRES_POSTGRES=true` or
/// `HANDSHAKE_STORAGE_MODE=postgres_primary`, an unset or SQLite
/// `DATABASE_URL` is a `Validation` error naming the variable.
///
/// `DATABASE_REPLICA_URLS` (comma-separated) adds read replicas.
pub fn open_from_env() -> StorageResult<Arc<dyn Storage>> {
    let url = env_database_url();
    require_postgres_if_configured(url.as_deref())?;
    let config = StorageConfig::default().read_replicas(config::replica_urls_from_env());
    open_with_config(url.as_deref().unwrap_or(DEFAULT_DATABASE_URL), &config)
}

/// `DATABASE_URL` from the environment or `.env`, else the default.
pub fn database_url_from_env() -> String {
    env_database_url().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
}

/// `DATABASE_URL` from the environment or `.env`, if set and not blank.
fn env_database_url() -> Option<String> {
    let _ = dotenvy::dotenv();
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}
