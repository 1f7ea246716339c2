//! Fail-closed startup: under `HANDSHAKE_CONTROL_PLANE_REQUIRES_POSTGRES=true`
//! or `HANDSHAKE_STORAGE_MODE=postgres_primary`, `open_from_env` and
//! `hsk-storage` (cli/tests/fail_closed.rs) refuse the default SQLite file and a SQLite `DATABASE_URL`
//! with one `Validation` error naming the variable, and create nothing.
//! Without them nothing changes. The tests that set this process's
//! environment are `#[serial]`.

use std::path::Path;

use handshake_storage::*;
use serial_test::serial;

const VARS: [&str; 3] = ["DATABASE_URL", REQUIRES_POSTGRES_VAR, STORAGE_MODE_VAR];

/// Sets the three variables as given (`None`: unset) for the life of the
/// guard, then restores what was there.
struct Env(Vec<(&'static str, Option<String>)>);

impl Env {
    fn set(values: [Option<&str>; 3]) -> Self {
        let saved = VARS.iter().map(|v| (*v, std::env::var(v).ok())).collect();
        for (var, value) in VARS.iter().zip(values) {
            match value {
                Some(value) => std::env::set_var(var, value),
                None => std::env::remove_var(var),
            }
        }
        Env(saved)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for (var, value) in &self.0 {
            match value {
                Some(value) => std::env::set_var(var, value),
                None => std::env::remove_var(var),
            }
        }
    }
}

/// `open_from_env` fails with `Validation` naming `var`, and writes no file.
#[track_caller]
fn assert_refused(var: &str, sqlite_file: &Path) {
    let existed = sqlite_file.exists();
    let err = match open_from_env() {
        Ok(store) => panic!("opened a {} store", store.backend()),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    let text = err.to_string();
    assert!(text.contains(var), "the error names {var}: {text}");
    assert!(
        text.contains("postgres://"),
        "the error says what to do: {text}"
    );
    assert_eq!(sqlite_file.exists(), existed, "nothing was created");
}

#[test]
#[serial]
fn requires_postgres_refuses_the_default_sqlite_file() {
    let default_file = Path::new("data/handshake.db");
    for value in ["true", "TRUE", "1", "yes", " on "] {
        let _env = Env::set([None, Some(value), None]);
        assert_refused(REQUIRES_POSTGRES_VAR, default_file);
    }
    let _env = Env::set([None, None, Some("postgres_primary")]);
    assert_refused(STORAGE_MODE_VAR, default_file);
}

#[cfg(feature = "sqlite")]
#[test]
#[serial]
fn requires_postgres_refuses_a_sqlite_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("control-plane.db");
    let url = format!("sqlite://{}", file.display());
    let _env = Env::set([Some(&url), Some("true"), None]);
    assert_refused(REQUIRES_POSTGRES_VAR, &file);
    let _env = Env::set([Some(&url), None, Some("postgres_primary")]);
    assert_refused(STORAGE_MODE_VAR, &file);
    let plain = file.display().to_string();
    let _env = Env::set([Some(&plain), Some("true"), Some("postgres_primary")]);
    assert_refused(REQUIRES_POSTGRES_VAR, &file);
}

#[cfg(feature = "sqlite")]
#[test]
#[serial]
fn without_the_settings_sqlite_opens_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("local.db").display());
    for (requires, mode) in [
        (None, None),
        (Some("false"), None),
        (Some("0"), None),
        (Some(""), Some("sqlite_primary")),
        (None, Some("postgres_secondary")),
    ] {
        let _env = Env::set([Some(&url), requires, mode]);
        let store = open_from_env().expect("open_from_env without the requirement");
        assert_eq!(store.backend(), Backend::Sqlite);
    }
}

#[test]
#[serial]
fn an_unreadable_requirement_fails_closed() {
    let _env = Env::set([None, Some("maybe"), None]);
    let err = open_from_env().map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    assert!(err.to_string().contains(REQUIRES_POSTGRES_VAR), "{err}");
}

#[cfg(feature = "postgres")]
#[test]
#[serial]
fn requires_postgres_opens_a_postgres_database_url() {
    use handshake_storage::conformance::TestTarget;
    let harness = TestTarget::standard("postgres")
        .harness()
        .expect("a scratch PostgreSQL schema");
    for (requires, mode) in [(Some("true"), None), (None, Some("postgres_primary"))] {
        let _env = Env::set([Some(harness.url()), requires, mode]);
        let store = open_from_env().expect("a postgres URL passes");
        assert_eq!(store.backend(), Backend::Postgres);
        store.ping().expect("ping");
    }
}
