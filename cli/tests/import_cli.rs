//! `hsk-storage import` as a user runs it: the closing table, a bad row
//! stopping the import (then `--quarantine`, then `--resume`), and never a
//! password in the output.

use std::process::{Command, Output};

use handshake_storage::conformance::TestTarget;
use handshake_storage::import::fixture::{fill_bulk, LegacyBuild, LegacyDatabase};

fn hsk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hsk-storage"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run hsk-storage")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn legacy(backend: &str) -> LegacyDatabase {
    let db =
        LegacyDatabase::create(&TestTarget::standard(backend), LegacyBuild::default()).unwrap();
    fill_bulk(&db, 20, 50).unwrap();
    db
}

#[test]
fn import_a_sqlite_file_with_a_bad_row_then_quarantine() {
    let source = legacy("sqlite");
    source
        .execute("UPDATE blocks SET derived_content = 'not json' WHERE id = 'b-0000007'")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("new/target.db").display());
    let args = |extra: &[&str]| {
        let mut a = vec![
            "import",
            "--from-handshake",
            source.url(),
            "--to",
            &target,
            "--batch-rows",
            "7",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        hsk(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Stops at the bad row, naming it.
    let out = run(&[]);
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains("blocks row \"b-0000007\"") && shown.contains("derived_content"),
        "{shown}"
    );
    // Resumed with a quarantine file: the row is set aside, the rest
    // imported and verified.
    let file = dir.path().join("quarantine.jsonl");
    let out = run(&["--resume", "--quarantine", &file.display().to_string()]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("quarantined") && shown.contains("match"),
        "{shown}"
    );
    assert!(shown.contains("1 rows set aside"), "{shown}");
    assert!(shown.contains("resumed"), "{shown}");
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains("b-0000007"));
}

#[test]
fn an_unknown_schema_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let ours = TestTarget::standard("sqlite").harness().unwrap();
    let target = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = hsk(&["import", "--from-handshake", ours.url(), "--to", &target]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("hsk-storage copy"), "{err}");
}

#[cfg(feature = "postgres")]
#[test]
fn import_from_and_to_postgres_never_prints_the_password() {
    let source = legacy("postgres");
    let pg = TestTarget::standard("postgres").harness().unwrap();
    let secret = |raw: &str| {
        let mut url = url::Url::parse(raw).unwrap();
        url.set_password(Some("hunter2-secret")).unwrap();
        url.to_string()
    };
    let (from, to) = (secret(source.url()), secret(pg.url()));
    let out = hsk(&["import", "--from-handshake", &from, "--to", &to]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        !shown.contains("hunter2") && shown.contains("***"),
        "{shown}"
    );
    assert!(shown.contains("workflow_node_executions"), "{shown}");
    // A refusal too.
    let out = hsk(&["import", "--from-handshake", &from, "--to", &to]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(
        shown.contains("not empty") && !shown.contains("hunter2"),
        "{shown}"
    );
}
