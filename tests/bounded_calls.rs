//! `StorageConfig::statement_timeout` and `lock_timeout`: a call blocked on
//! a row another connection holds fails with a `Database` error naming the
//! limit it hit, changes nothing, and the store's connection works
//! afterwards. On SQLite `lock_timeout` is the busy timeout and
//! `statement_timeout` a progress handler that interrupts the statement.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use handshake_storage::conformance::fixtures::{human, new_block, new_doc, raw_update};
use handshake_storage::conformance::TestTarget;
use handshake_storage::*;

const LIMIT: Duration = Duration::from_millis(300);

/// A block in a fresh store on `harness`, and a store on the same database
/// opened with `config` (one connection, so "afterwards" is the same one).
fn block_and_bounded_store(
    harness: &handshake_storage::conformance::Harness,
    config: StorageConfig,
) -> (Block, std::sync::Arc<dyn Storage>) {
    let store = harness.store();
    let ws = store
        .create_workspace(&human(), NewWorkspace { name: "w".into() })
        .unwrap();
    let doc = store
        .create_document(&human(), new_doc(&ws.id, "d"))
        .unwrap();
    let block = store
        .create_block(&human(), new_block(&doc.id, 0, Some("locked-block")))
        .unwrap();
    let bounded = open_with_config(harness.url(), &config.pool_size(1)).unwrap();
    (block, bounded)
}

/// The blocked update fails within a few times `LIMIT` with a `Database`
/// error naming `limit`; the block is unchanged once the holder lets go,
/// and the same store then updates it.
fn assert_bounded(store: &dyn Storage, block: &Block, limit: &str, release: impl FnOnce()) {
    let started = Instant::now();
    let err = store
        .update_block(&human(), &block.id, raw_update("blocked"))
        .expect_err("the row is held by another connection");
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    assert!(err.to_string().contains(limit), "names {limit}: {err}");
    assert!(waited >= LIMIT && waited < LIMIT * 20, "waited {waited:?}");
    release();
    assert_eq!(store.get_block(&block.id).unwrap(), *block);
    let updated = store
        .update_block(&human(), &block.id, raw_update("afterwards"))
        .unwrap();
    assert_eq!(updated.raw_content, "afterwards");
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    fn blocked_update_names(config: StorageConfig, limit: &str) {
        let harness = TestTarget::standard("postgres").harness().unwrap();
        let (block, store) = block_and_bounded_store(&harness, config);
        let mut holder = diesel::PgConnection::establish(harness.url()).unwrap();
        holder
            .batch_execute("BEGIN; SELECT id FROM blocks WHERE id = 'locked-block' FOR UPDATE;")
            .unwrap();
        assert_bounded(&*store, &block, limit, || {
            holder.batch_execute("ROLLBACK").unwrap();
        });
    }

    #[test]
    fn lock_timeout_is_a_database_error_naming_55p03() {
        blocked_update_names(
            StorageConfig::default().lock_timeout(LIMIT),
            "lock_timeout (SQLSTATE 55P03)",
        );
    }

    #[test]
    fn statement_timeout_is_a_database_error_naming_57014() {
        blocked_update_names(
            StorageConfig::default().statement_timeout(LIMIT),
            "statement_timeout (SQLSTATE 57014)",
        );
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    #[test]
    fn lock_timeout_bounds_the_wait_for_the_write_lock() {
        let harness = TestTarget::standard("sqlite").harness().unwrap();
        let (block, store) =
            block_and_bounded_store(&harness, StorageConfig::default().lock_timeout(LIMIT));
        let mut holder =
            diesel::SqliteConnection::establish(harness.url().trim_start_matches("sqlite://"))
                .unwrap();
        holder.batch_execute("BEGIN IMMEDIATE").unwrap();
        assert_bounded(&*store, &block, "lock_timeout", || {
            holder.batch_execute("ROLLBACK").unwrap();
        });
    }

    /// A trigger `name` that makes every update of a block count to `to`
    /// first.
    fn slow_updates(owner: &mut diesel::SqliteConnection, name: &str, to: u64) {
        owner
            .batch_execute(&format!(
                "CREATE TRIGGER {name} BEFORE UPDATE ON blocks BEGIN \
                 SELECT count(*) FROM (WITH RECURSIVE n(i) AS \
                 (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {to}) SELECT i FROM n); \
                 END;"
            ))
            .unwrap();
    }

    /// A trigger that counts to 10^9 makes the update run for minutes: the
    /// progress handler stops it after `LIMIT`.
    #[test]
    fn statement_timeout_interrupts_a_long_statement() {
        let harness = TestTarget::standard("sqlite").harness().unwrap();
        let (block, store) =
            block_and_bounded_store(&harness, StorageConfig::default().statement_timeout(LIMIT));
        let mut owner =
            diesel::SqliteConnection::establish(harness.url().trim_start_matches("sqlite://"))
                .unwrap();
        slow_updates(&mut owner, "slow_update", 1_000_000_000);
        assert_bounded(&*store, &block, "statement_timeout", || {
            owner.batch_execute("DROP TRIGGER slow_update").unwrap();
        });
        // A store without the bound is not stopped by the handler, which
        // every SQLite connection opened from now on carries.
        let unbounded = open_with_config(harness.url(), &StorageConfig::default()).unwrap();
        slow_updates(&mut owner, "slower_update", 300_000);
        // Hundreds of thousands of instructions: a deadline left behind by
        // the bounded store's statements on this thread (all past by now)
        // would stop it at the handler's first look.
        let updated = unbounded
            .update_block(&human(), &block.id, raw_update("unbounded"))
            .unwrap();
        assert_eq!(updated.raw_content, "unbounded");
    }
}
