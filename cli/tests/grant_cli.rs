//! `hsk-storage grant --role NAME` prints and applies the grants of an
//! application role; `status` and `migrate` still work on a schema that is
//! out of date (they open it for maintenance, not with the check).

use std::process::{Command, Output};

use handshake_storage::conformance::TestTarget;

fn hsk(args: &[&str], database_url: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hsk-storage"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove(handshake_storage::REQUIRES_POSTGRES_VAR)
        .env_remove(handshake_storage::STORAGE_MODE_VAR);
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command.output().expect("run hsk-storage")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[track_caller]
fn assert_one_line_error(out: &Output, says: &str) {
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
}

/// Status and migrate on a schema one migration behind.
fn status_and_migrate_an_old_schema(target: &TestTarget) {
    let h = target.harness().unwrap();
    h.revert_last_migration().unwrap();
    let status = assert_ok(&hsk(&["status", "--database-url", h.url()], None));
    assert!(
        status.contains("schema version: 20261203000002"),
        "{status}"
    );
    assert!(status.contains("pending: 20261204000001"), "{status}");
    let migrated = assert_ok(&hsk(&["migrate", "--database-url", h.url()], None));
    assert!(migrated.contains("applied: 20261204000001"), "{migrated}");
    let status = assert_ok(&hsk(&["status"], Some(h.url())));
    assert!(
        status.contains("schema version: 20261204000001"),
        "{status}"
    );
    assert!(!status.contains("pending:"), "{status}");
}

#[cfg(feature = "sqlite")]
#[test]
fn status_and_migrate_work_on_an_old_sqlite_schema() {
    status_and_migrate_an_old_schema(&TestTarget::standard("sqlite"));
}

#[cfg(feature = "postgres")]
#[test]
fn status_and_migrate_work_on_an_old_postgres_schema() {
    status_and_migrate_an_old_schema(&TestTarget::standard("postgres"));
}

#[cfg(feature = "sqlite")]
#[test]
fn grant_on_sqlite_is_one_clear_line() {
    let h = TestTarget::standard("sqlite").harness().unwrap();
    let out = hsk(&["grant", "--role", "app", "--database-url", h.url()], None);
    assert_one_line_error(&out, "SQLite has no roles");
}

#[cfg(feature = "postgres")]
#[test]
fn grant_prints_and_applies_the_grants() {
    use handshake_storage::conformance::ScratchRole;
    use handshake_storage::{open_with_config, NewWorkspace, StorageConfig, WriteContext};

    let h = TestTarget::standard("postgres").harness().unwrap();
    let admin = TestTarget::standard_postgres_url();
    let role = ScratchRole::create(&admin, h.url()).unwrap();
    let off = StorageConfig::default().run_migrations(false);
    assert!(open_with_config(role.url(), &off).is_err(), "no grants yet");

    let out = hsk(&["grant", "--role", role.name()], Some(h.url()));
    let printed = assert_ok(&out);
    assert!(
        printed.contains(&format!("granted to role {:?}", role.name())),
        "{printed}"
    );
    assert!(printed.contains("GRANT USAGE ON SCHEMA \""), "{printed}");
    assert!(
        printed.contains("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE"),
        "{printed}"
    );
    assert!(printed.contains("GRANT EXECUTE ON FUNCTION"), "{printed}");
    let password = url::Url::parse(h.url())
        .unwrap()
        .password()
        .map(str::to_string);
    if let Some(password) = password.filter(|p| p.len() >= 4) {
        assert!(!printed.contains(&format!(":{password}@")), "{printed}");
    }

    let store = open_with_config(role.url(), &off).expect("open as the granted role");
    store
        .create_workspace(
            &WriteContext::human(Some("cli".into())),
            NewWorkspace {
                name: "granted".into(),
            },
        )
        .expect("write as the granted role");

    // An unknown role and a bad name: one line each, non-zero exit.
    let out = hsk(
        &[
            "grant",
            "--role",
            "hsk_no_such_role_cli",
            "--database-url",
            h.url(),
        ],
        None,
    );
    assert_one_line_error(&out, "hsk_no_such_role_cli");
    let out = hsk(
        &["grant", "--role", "pg_monitor", "--database-url", h.url()],
        None,
    );
    assert_one_line_error(&out, "bad role name");
    // The granted role cannot grant.
    let other = ScratchRole::create(&admin, h.url()).unwrap();
    let out = hsk(
        &[
            "grant",
            "--role",
            other.name(),
            "--database-url",
            role.url(),
        ],
        None,
    );
    assert_one_line_error(&out, "does not own table");
    let role_password = url::Url::parse(role.url())
        .unwrap()
        .password()
        .unwrap()
        .to_string();
    assert!(!text(&out.stderr).contains(&role_password));
}
