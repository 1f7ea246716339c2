//! # handshake-storage
//!
//! One synchronous storage API for the Handshake backend, over Diesel, with
//! the same behaviour on an embedded SQLite file and on a PostgreSQL server.
//!
//! ```no_run
//! use handshake_storage::*;
//!
//! let store = open("sqlite::memory:")?;
//! let ws = store.create_workspace(&WriteContext::human(None), NewWorkspace { name: "Notes".into() })?;
//! assert_eq!(store.get_workspace(&ws.id)?.unwrap().name, "Notes");
//! # Ok::<(), StorageError>(())
//! ```
//!
//! Layout: [`types`] are the domain types (no database in sight);
//! [`Storage`] is the API; `backend` holds the query code, written once and
//! compiled per backend, over a few backend-specific pieces (schema module,
//! field types, connection setup); `conformance` (feature `testing`) is the
//! suite that proves the backends agree.
//!
//! Features: `sqlite` (default), `postgres`; both together serve both from
//! one binary, picked at run time by URL. `tokio`: [`AsyncStorage`], every
//! call as an `async fn`. `tracing`: a span per call and an event per
//! statement (see [`tracing_layer`]).

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
mod guard;
mod ids;
pub mod job_contract;
mod replicas;
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
pub use async_storage::AsyncStorage;
pub use config::{redact_url, StorageConfig, DEFAULT_DATABASE_URL};
pub use error::{ErrorKind, StorageError, StorageResult};
pub use replicas::{ReplicaConfig, REPLICA_URLS_ENV};
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
pub fn open(url: &str) -> StorageResult<Arc<dyn Storage>> {
    open_with_config(url, &StorageConfig::default())
}

/// [`open`] with explicit settings.
pub fn open_with_config(url: &str, config: &StorageConfig) -> StorageResult<Arc<dyn Storage>> {
    let store = backend::open_maintained(url, config)?;
    #[cfg(feature = "tracing")]
    let store = tracing_layer::traced(store, &config::DatabaseUrl::parse(url)?, config);
    Ok(store)
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
    let config = StorageConfig::default().read_replicas(replicas::replica_urls_from_env());
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
