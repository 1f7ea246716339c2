//! Bench-only package: see `benches/sqlx.rs`.
