//! The files a SQLite store creates are private: mode 0600 for the
//! database and the `-wal`, `-shm` and `-journal` files SQLite puts beside
//! it, whatever the umask; a copy's target too; an existing file keeps its
//! mode. (The import's quarantine file: `tests/import.rs`.) Unix only: on
//! Windows only the user's ACLs apply.
#![cfg(all(unix, feature = "sqlite"))]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use handshake_storage::conformance::fixtures::human;
use handshake_storage::copy::{copy_store, CopyOptions};
use handshake_storage::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn write_something(store: &dyn Storage) {
    store
        .create_workspace(&human(), NewWorkspace { name: "w".into() })
        .unwrap();
}

#[test]
fn a_new_database_and_its_wal_and_shm_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/store.db");
    let store = open(path.to_str().unwrap()).unwrap();
    write_something(&*store);
    // The store is open: WAL mode keeps both files beside the database.
    for file in [path.clone(), beside(&path, "-wal"), beside(&path, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(store);

    // A rollback journal, should anyone switch the file out of WAL, gets
    // the database's mode too (PERSIST keeps it to look at).
    let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute(
        "PRAGMA journal_mode = PERSIST; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
    )
    .unwrap();
    assert_eq!(mode(&beside(&path, "-journal")), 0o600);
}

#[test]
fn an_existing_file_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    std::fs::File::create(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let store = open(path.to_str().unwrap()).unwrap();
    write_something(&*store);
    assert_eq!(mode(&path), 0o640);
    assert_eq!(mode(&beside(&path, "-wal")), 0o640);
}

#[test]
fn a_copy_target_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("from.db");
    let store = open(from.to_str().unwrap()).unwrap();
    write_something(&*store);
    drop(store);
    let to = dir.path().join("to.db");
    copy_store(
        from.to_str().unwrap(),
        to.to_str().unwrap(),
        &CopyOptions::default(),
    )
    .unwrap();
    assert_eq!(mode(&to), 0o600);
}
