//! Fail-closed startup in `hsk-storage`: under
//! `HANDSHAKE_CONTROL_PLANE_REQUIRES_POSTGRES=true` or
//! `HANDSHAKE_STORAGE_MODE=postgres_primary` every command refuses SQLite
//! (the URL given, `DATABASE_URL`, or the default) with one line naming the
//! variable, and creates nothing. The environment is set on the child only.

use std::process::Command;

use handshake_storage::{REQUIRES_POSTGRES_VAR, STORAGE_MODE_VAR};

const VARS: [&str; 3] = ["DATABASE_URL", REQUIRES_POSTGRES_VAR, STORAGE_MODE_VAR];

fn hsk(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hsk-storage"));
    command.args(args);
    for var in VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("run hsk-storage")
}

#[test]
fn hsk_storage_refuses_sqlite_when_postgres_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cli.db");
    let url = format!("sqlite://{}", file.display());
    let commands: [&[&str]; 4] = [
        &["status"],
        &["migrate"],
        &["status", "--database-url", &url],
        &["check"],
    ];
    for (var, value) in [
        (REQUIRES_POSTGRES_VAR, "true"),
        (STORAGE_MODE_VAR, "postgres_primary"),
    ] {
        for args in commands {
            let out = hsk(args, &[(var, value)]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} under {var}");
            assert!(stderr.contains(var), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            let out = hsk(&["migrate"], &[(var, value), ("DATABASE_URL", &url)]);
            assert!(!out.status.success());
        }
    }
    assert!(!file.exists(), "no SQLite file was created");
    let out = hsk(&["migrate", "--database-url", &url], &[]);
    assert!(out.status.success(), "without the settings SQLite works");
    assert!(file.exists());
}
