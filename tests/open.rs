//! `open` and `open_from_env`: URL forms, feature errors, redaction, and the
//! in-memory database shared by the whole pool.

#[cfg(feature = "sqlite")]
use handshake_storage::conformance::fixtures::human;
use handshake_storage::*;

#[cfg(feature = "sqlite")]
#[test]
fn memory_url_is_one_database_for_the_whole_pool() {
    let store = open("sqlite::memory:").expect("open memory");
    assert_eq!(store.backend(), Backend::Sqlite);
    let ws = store
        .create_workspace(&human(), NewWorkspace { name: "mem".into() })
        .unwrap();
    // Many calls from many threads must all see the same database.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    assert!(store.get_workspace(&ws.id).unwrap().is_some());
                }
            });
        }
    });
    // Two memory stores are two databases.
    let other = open("sqlite::memory:").unwrap();
    assert!(other.list_workspaces().unwrap().is_empty());
}

#[cfg(feature = "sqlite")]
#[test]
fn file_url_forms_open_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/store.db");
    let a = open(&format!("sqlite://{}", path.display())).expect("sqlite:// url");
    let ws = a
        .create_workspace(
            &human(),
            NewWorkspace {
                name: "file".into(),
            },
        )
        .unwrap();
    drop(a);
    let b = open(path.to_str().unwrap()).expect("plain path");
    assert_eq!(b.get_workspace(&ws.id).unwrap().unwrap().name, "file");
}

#[test]
fn unknown_scheme_is_validation_without_password() {
    let err = open("mysql://root:hunter22@127.0.0.1/db")
        .err()
        .expect("must fail");
    assert!(matches!(err, StorageError::Validation(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter22"), "{err}");
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_url_without_feature_names_the_feature() {
    let err = open("postgres://u:pw12345@127.0.0.1/db")
        .err()
        .expect("must fail");
    assert!(
        matches!(&err, StorageError::Validation(m) if m.contains("postgres")),
        "{err:?}"
    );
    assert!(!err.to_string().contains("pw12345"));
}

#[cfg(feature = "postgres")]
#[test]
fn wrong_password_or_unreachable_server_is_database_error_without_password() {
    let config = StorageConfig::default().connection_timeout(std::time::Duration::from_secs(2));
    for url in [
        "postgres://nobody:sekrit-pass@127.0.0.1:1/handshake",
        "postgres://nobody:sekrit-pass@127.0.0.1:5432/no_such_db_hsk",
    ] {
        let err = open_with_config(url, &config).err().expect("must fail");
        assert!(matches!(err, StorageError::Database(_)), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("sekrit-pass"), "{text}");
    }
}

#[cfg(feature = "sqlite")]
#[test]
#[serial_test::serial]
fn open_from_env_defaults_to_data_dir_and_honours_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("from-env.db");
    std::env::set_var("DATABASE_URL", format!("sqlite://{}", path.display()));
    let store = open_from_env().expect("open from env");
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.exists());
    std::env::remove_var("DATABASE_URL");
    assert_eq!(database_url_from_env(), DEFAULT_DATABASE_URL);
}

#[cfg(not(feature = "sqlite"))]
#[test]
fn sqlite_url_without_feature_names_the_feature() {
    for url in ["sqlite::memory:", "sqlite://data/x.db", "plain.db"] {
        let err = open(url).err().expect("must fail");
        assert!(
            matches!(&err, StorageError::Validation(m) if m.contains("`sqlite`")),
            "{url}: {err:?}"
        );
    }
}
