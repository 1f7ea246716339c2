//! `StorageConfig::sqlite_synchronous`: the chosen `PRAGMA synchronous` is
//! in force on every connection of a SQLite store's pool, not only on the
//! first, and the default is `FULL`.
#![cfg(feature = "sqlite")]

use handshake_storage::conformance::{Harness, TestTarget};
use handshake_storage::*;

/// `PRAGMA synchronous` as SQLite reads it back: 1 NORMAL, 2 FULL, 3 EXTRA.
const READ_SYNCHRONOUS: &str = "SELECT synchronous AS value FROM pragma_synchronous";

fn sqlite_store(synchronous: Option<SqliteSynchronous>) -> Harness {
    TestTarget::standard("sqlite")
        .harness_with(|config| match synchronous {
            Some(s) => config.sqlite_synchronous(s),
            None => config,
        })
        .expect("a fresh SQLite store")
}

fn assert_on_every_connection(harness: &Harness, expected: SqliteSynchronous) {
    let values = harness
        .value_on_every_connection(READ_SYNCHRONOUS)
        .expect("PRAGMA synchronous on every connection");
    // The harness's pool holds 8 connections; all of them answered.
    assert_eq!(values.len(), 8, "{values:?}");
    assert!(
        values.iter().all(|&v| v == expected.pragma_value()),
        "synchronous = {expected:?} ({}) expected on every connection, read {values:?}",
        expected.pragma_value()
    );
}

#[test]
fn each_setting_is_in_force_on_every_pooled_connection() {
    for setting in [
        SqliteSynchronous::Normal,
        SqliteSynchronous::Full,
        SqliteSynchronous::Extra,
    ] {
        let harness = sqlite_store(Some(setting));
        assert_on_every_connection(&harness, setting);
        // Still in force after writes through the store.
        harness
            .store()
            .create_workspace(
                &conformance::fixtures::human(),
                NewWorkspace {
                    name: format!("{setting:?}"),
                },
            )
            .expect("a write");
        assert_on_every_connection(&harness, setting);
    }
}

#[test]
fn the_default_is_full() {
    assert_eq!(
        StorageConfig::default().sqlite_synchronous,
        SqliteSynchronous::Full
    );
    assert_on_every_connection(&sqlite_store(None), SqliteSynchronous::Full);
}
