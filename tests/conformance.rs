//! The conformance suite, stamped out once per enabled backend: the same
//! case names under `sqlite::` and `postgres::`. Each test gets its own
//! database (a temp SQLite file; a throwaway PostgreSQL schema), so they run
//! in parallel. The PostgreSQL tests read `POSTGRES_TEST_URL` (or a
//! postgres:// `DATABASE_URL`) and fail, never skip, without it.
//!
//! `postgres_least_privilege::` runs every case as an application role
//! with only the grants of `grant_application_role`, the schema migrated
//! by the owner and the store opened with migrations off; the cases of
//! `conformance::OWNER_ONLY` (which run DDL) are skipped there only.
//! `postgres_replica_least_privilege::` does the same with the read
//! replica below, read as that role too.
//!
//! `postgres_replica::` runs every case once more on a store opened with a
//! read replica: a private primary and a streaming replica (apply delay 0),
//! started once for this test process and stopped when it exits. Each case's
//! schema is created on the primary and reaches the replica by replay.

#[cfg(all(feature = "postgres", unix))]
mod common;

#[cfg(feature = "sqlite")]
handshake_storage::conformance_tests!(sqlite);

#[cfg(feature = "postgres")]
handshake_storage::conformance_tests!(postgres);

#[cfg(all(feature = "postgres", unix))]
handshake_storage::conformance_tests!(postgres_replica, crate::replica_target());

#[cfg(feature = "postgres")]
handshake_storage::conformance_tests!(
    postgres_least_privilege,
    handshake_storage::conformance::TestTarget::PostgresLeastPrivilege {
        admin_url: handshake_storage::conformance::TestTarget::standard_postgres_url(),
        replica_urls: Vec::new(),
    }
);

#[cfg(all(feature = "postgres", unix))]
handshake_storage::conformance_tests!(
    postgres_replica_least_privilege,
    crate::replica_least_privilege_target()
);

/// The shared primary+replica pair as a conformance target.
#[cfg(all(feature = "postgres", unix))]
fn replica_target() -> handshake_storage::conformance::TestTarget {
    let pair = common::cluster::shared_pair();
    handshake_storage::conformance::TestTarget::PostgresWithReplicas {
        admin_url: pair.primary.url(""),
        replica_urls: vec![pair.replica.url("")],
    }
}

/// The shared pair again, the store running as a least-privilege role on
/// the primary and the replica alike.
#[cfg(all(feature = "postgres", unix))]
fn replica_least_privilege_target() -> handshake_storage::conformance::TestTarget {
    let pair = common::cluster::shared_pair();
    handshake_storage::conformance::TestTarget::PostgresLeastPrivilege {
        admin_url: pair.primary.url(""),
        replica_urls: vec![pair.replica.url("")],
    }
}
