//! The conformance suite, stamped out once per enabled backend: the same
//! case names under `sqlite::` and `postgres::`. Each test gets its own
//! database (a temp SQLite file; a throwaway PostgreSQL schema), so they run
//! in parallel. The PostgreSQL tests read `POSTGRES_TEST_URL` (or a
//! postgres:// `DATABASE_URL`) and fail, never skip, without it.

#[cfg(feature = "sqlite")]
handshake_storage::conformance_tests!(sqlite);

#[cfg(feature = "postgres")]
handshake_storage::conformance_tests!(postgres);
