//! The `hsk-storage` binary as a user runs it: `status`, `migrate`, and one
//! clear line on stderr with a non-zero exit for every bad target, never a
//! password and never a panic.

use std::process::{Command, Output};

fn hsk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hsk-storage"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run hsk-storage")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn migrate_then_status_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = hsk(&["status", "--database-url", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = text(&out.stdout);
    assert!(status.contains("backend: sqlite"), "{status}");
    assert!(status.contains("pending: 20261124000001"), "{status}");

    let out = hsk(&["migrate", "--database-url", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("applied: 20261204000001"));

    let out = hsk(&["status", "--database-url", &url]);
    let status = text(&out.stdout);
    assert!(
        status.contains("schema version: 20261204000001"),
        "{status}"
    );
    assert!(!status.contains("pending:"), "{status}");
}

#[test]
fn bad_targets_fail_with_one_line_and_no_password() {
    let mut cases = vec![
        "mysql://root:hunter2secret@127.0.0.1/db",
        "gopher://user:hunter2secret@example/db",
        "sqlite://",
    ];
    if cfg!(feature = "postgres") {
        // Nothing listens on port 1; the database does not exist.
        cases.push("postgres://nobody:hunter2secret@127.0.0.1:1/db?connect_timeout=2");
        cases.push("postgres://nobody:hunter2secret@127.0.0.1:5432/no_such_db_hsk");
        cases.push("postgresql://nobody:hunter2secret@[::1/db");
        cases.push("postgres://nobody@127.0.0.1:1/db?connect_timeout=2&password=hunter2secret");
    } else {
        cases.push("postgres://nobody:hunter2secret@127.0.0.1:5432/db");
    }
    for url in cases {
        for command in ["status", "migrate", "check"] {
            let out = hsk(&[command, "--database-url", url]);
            let stderr = text(&out.stderr);
            let all = format!("{}{stderr}", text(&out.stdout));
            assert!(!out.status.success(), "{command} {url} succeeded: {all}");
            assert!(!all.contains("hunter2secret"), "password leaked: {all}");
            assert!(!all.contains("panicked"), "panic: {all}");
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "{command} {url}: {stderr}"
            );
            assert!(stderr.starts_with("hsk-storage: error: "), "{stderr}");
        }
    }
}
