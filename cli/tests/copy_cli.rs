//! `hsk-storage copy` and `verify` as a user runs them: exit codes, the
//! closing table, a differing store named by table and key, and never a
//! password in the output.

use std::process::{Command, Output};

use handshake_storage::conformance::TestTarget;
use handshake_storage::*;

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

fn seeded(backend: &str) -> handshake_storage::conformance::Harness {
    let h = TestTarget::standard(backend).harness().unwrap();
    let ctx = WriteContext::human(None);
    let ws = h
        .store()
        .create_workspace(&ctx, NewWorkspace { name: "w".into() })
        .unwrap();
    let doc = h
        .store()
        .create_document(
            &ctx,
            NewDocument {
                workspace_id: ws.id,
                title: "d".into(),
            },
        )
        .unwrap();
    let blocks = (0..50)
        .map(|k| NewBlock {
            id: Some(format!("blk-{k:03}")),
            document_id: doc.id.clone(),
            kind: "p".into(),
            sequence: k,
            raw_content: format!("{k}"),
            ..Default::default()
        })
        .collect();
    h.store().replace_blocks(&ctx, &doc.id, blocks).unwrap();
    h
}

#[test]
fn copy_then_verify_on_sqlite_files() {
    let a = seeded("sqlite");
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("new/target.db").display());
    let out = hsk(&[
        "copy",
        "--from",
        a.url(),
        "--to",
        &target,
        "--batch-rows",
        "7",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("blocks") && shown.contains("match"),
        "{shown}"
    );
    assert!(shown.contains("verified identical"), "{shown}");
    let out = hsk(&["verify", "--from", a.url(), "--to", &target]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("identical"));

    // A changed row: non-zero exit, the table and the first differing key.
    let b = open(&target).unwrap();
    b.update_block(
        &WriteContext::human(None),
        "blk-017",
        BlockUpdate {
            raw_content: Some("edited".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let out = hsk(&["verify", "--from", a.url(), "--to", &target]);
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains("blocks") && shown.contains("blk-017"),
        "{shown}"
    );

    // A second copy into the now non-empty target: one line, non-zero.
    let out = hsk(&["copy", "--from", a.url(), "--to", &target]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not empty"), "{}", text(&out));
}

#[cfg(feature = "postgres")]
#[test]
fn copy_to_postgres_and_back_never_prints_the_password() {
    let a = seeded("sqlite");
    let pg = TestTarget::standard("postgres").harness().unwrap();
    // The harness URL carries the test server's password; make it a
    // recognisable one that the server (trust auth) ignores.
    let mut url = url::Url::parse(pg.url()).unwrap();
    url.set_password(Some("hunter2-secret")).unwrap();
    let pg_url = url.to_string();
    let out = hsk(&["copy", "--from", a.url(), "--to", &pg_url]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
    let dir = tempfile::tempdir().unwrap();
    let back = format!("sqlite://{}", dir.path().join("back.db").display());
    let out = hsk(&["copy", "--from", &pg_url, "--to", &back]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("hunter2"));
    let out = hsk(&["verify", "--from", a.url(), "--to", &back]);
    assert!(out.status.success(), "{}", text(&out));
    // A refusal names the problem without the password.
    let out = hsk(&["copy", "--from", a.url(), "--to", &pg_url]);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains("not empty") && !shown.contains("hunter2"),
        "{shown}"
    );
}
