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

/// A multi-host URL whose first server is down: libpq tries the next one,
/// in both spellings (hosts in the authority, `host=`/`port=` parameters).
#[cfg(feature = "postgres")]
#[test]
fn multi_host_url_skips_a_server_that_is_down() {
    use handshake_storage::conformance::TestTarget;
    let TestTarget::Postgres { admin_url } = TestTarget::standard("postgres") else {
        unreachable!("the standard postgres target is a PostgreSQL server");
    };
    let url = url::Url::parse(&admin_url).expect("POSTGRES_TEST_URL is a URL");
    let host = url.host_str().expect("a host");
    let port = url.port().unwrap_or(5432);
    let db = url.path().trim_start_matches('/');
    let user = match url.password() {
        Some(password) => format!("{}:{password}", url.username()),
        None => url.username().to_string(),
    };
    // Opened for maintenance: neither migrated nor checked, whatever the
    // default schema of the test database holds.
    let config = StorageConfig::default().connection_timeout(std::time::Duration::from_secs(5));
    for multi in [
        format!("postgres://{user}@127.0.0.1:1,{host}:{port}/{db}?target_session_attrs=read-write"),
        format!("postgresql://{user}@/{db}?host=127.0.0.1&host={host}&port=1&port={port}"),
    ] {
        let store = open_for_maintenance(&multi, &config)
            .unwrap_or_else(|e| panic!("open {}: {e}", redact_url(&multi)));
        store.ping().expect("ping through the second host");
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

/// A URL's `options=` may not choose the session's role or put other
/// schemas on its search path: refused before any connection, with a
/// `Validation` error that names the setting and shows no password.
#[test]
fn options_that_set_role_or_search_path_are_refused() {
    for options in [
        "-c%20role%3Dpostgres",
        "-crole=postgres",
        "--role=postgres",
        "-c%20session_authorization%3Dpostgres",
        "--session-authorization=postgres",
        "-c%5C%20ROLE%3Dpostgres",
        "-csearch_path=evil,public",
        "--search_path=pg_temp",
        "-c%20search_path%3D%22%24user%22",
        // Every white space the server splits at, doubled spaces, escaped
        // spaces, run-together switches, a byte some locales read as a
        // space.
        "-c%09role%3Dpostgres",
        "-c%0Brole%3Dpostgres",
        "-c%20%20role%3Dpostgres",
        "-c%5C%20%5C%20role%3Dpostgres",
        "-Fc%20ROLE%3Dpostgres",
        "-F-role%3Dpostgres",
        "-c%20search-path%3Dtenant%5C%2Cpg_temp",
        "-c%20application_name%3D%C2%A0-crole%3Dpostgres",
    ] {
        let url = format!("postgres://app:hunter22@127.0.0.1:1/db?options={options}");
        let err = open(&url).err().expect(options);
        assert_eq!(err.kind(), ErrorKind::Validation, "{options}: {err}");
        let message = err.to_string();
        assert!(
            message.contains("role")
                || message.contains("ASCII")
                || message.contains("backslash")
                || message.contains("session_authorization")
                || message.contains("search_path"),
            "{options}: {message}"
        );
        assert!(!message.contains("hunter22"), "{message}");
    }
}

/// libpq sends `PGOPTIONS` when the URL has no `options`: it is checked as
/// the URL's would be. Run in a child process (this test binary again,
/// this test only), since the variable applies to the whole process.
#[cfg(feature = "postgres")]
#[test]
fn pgoptions_that_set_role_or_search_path_are_refused() {
    const CHILD: &str = "HSK_PGOPTIONS_CHILD";
    const NAME: &str = "pgoptions_that_set_role_or_search_path_are_refused";
    let url = "postgres://app:hunter22@127.0.0.1:1/db";
    if std::env::var_os(CHILD).is_some() {
        let err = open(url).err().expect("opened");
        assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
        let message = err.to_string();
        assert!(message.contains("PGOPTIONS"), "{message}");
        assert!(!message.contains("hunter22"), "{message}");
        // With `options` in the URL libpq ignores PGOPTIONS: the closed
        // port is what fails.
        let err = open(&format!("{url}?options=-c%20statement_timeout%3D5"))
            .err()
            .expect("opened");
        assert_eq!(err.kind(), ErrorKind::Database, "{err}");
        return;
    }
    for pgoptions in [
        "-c role=postgres",
        "-c\\ \\ ROLE=postgres",
        "--session-authorization=postgres",
        "--search_path=pg_temp,public",
        "-c application_name=\u{a0}-crole=x",
    ] {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", NAME, "--test-threads=1"])
            .env(CHILD, "1")
            .env("PGOPTIONS", pgoptions)
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "PGOPTIONS={pgoptions:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// libpq decodes a query key as it decodes a value and keeps the last of
/// repeated parameters: every `options`, however its key is spelled, is
/// checked.
#[cfg(feature = "postgres")]
#[test]
fn options_under_an_encoded_key_or_repeated_are_checked() {
    for query in [
        "opt%69ons=-crole%3Dpostgres",
        "options=-c%20statement_timeout%3D5&options=--role%3Dpostgres",
        "options=--role%3Dpostgres&options=-c%20statement_timeout%3D5",
        "%6Fptions=-F-search_path%3Dpg_temp%2Cpublic",
    ] {
        let url = format!("postgres://app:hunter22@127.0.0.1:1/db?{query}");
        let err = open(&url).err().expect(query);
        assert_eq!(err.kind(), ErrorKind::Validation, "{query}: {err}");
        assert!(err.to_string().contains("`options`"), "{query}: {err}");
        assert!(!err.to_string().contains("hunter22"), "{err}");
    }
}

/// With migrations off, a SQLite file at an older version, or with no
/// migration applied, or changed by hand, is refused with one line; the
/// maintenance open still reads it, and once migrated it opens.
#[cfg(feature = "sqlite")]
#[test]
fn migrations_off_refuses_a_sqlite_file_that_is_not_this_builds() {
    use handshake_storage::conformance::TestTarget;
    const NEWEST: &str = "20261204000001";
    let off = StorageConfig::default().run_migrations(false);
    let h = TestTarget::standard("sqlite").harness().unwrap();
    h.revert_last_migration().unwrap();
    let err = open_with_config(h.url(), &off).err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "migration error: schema at version 20261203000002, this build expects {NEWEST}; \
             run `hsk-storage migrate` as the owner"
        )
    );
    let store = open_for_maintenance(h.url(), &StorageConfig::default()).unwrap();
    assert_eq!(store.migration_status().unwrap().pending, vec![NEWEST]);
    store.run_migrations().unwrap();
    open_with_config(h.url(), &off)
        .expect("current again")
        .list_workspaces()
        .unwrap();

    // Changed by hand at the right version: the fingerprint differs.
    h.execute_sql("CREATE INDEX by_hand ON blocks (raw_content)")
        .unwrap();
    let err = open_with_config(h.url(), &off).err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("schema at version {NEWEST} has fingerprint ")),
        "{err}"
    );
    assert!(!err.to_string().contains('\n'), "{err}");

    // A new file: nothing applied, and nothing created in it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let err = open_with_config(&format!("sqlite://{}", path.display()), &off)
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
    assert!(
        err.to_string().contains(&format!(
            "schema at version none (no migration applied), this build expects {NEWEST}"
        )),
        "{err}"
    );
    let store = open_for_maintenance(
        &format!("sqlite://{}", path.display()),
        &StorageConfig::default(),
    )
    .unwrap();
    assert!(store.migration_status().unwrap().applied.is_empty());
    assert!(store
        .schema_fingerprint()
        .unwrap()
        .description
        .tables
        .is_empty());
}
