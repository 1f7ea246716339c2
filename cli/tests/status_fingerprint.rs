//! `hsk-storage status` prints the schema fingerprint and says whether it is
//! the one committed for this release, on every backend.

use std::process::Command;

use handshake_storage::conformance::TestTarget;

fn status(url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hsk-storage"))
        .args(["status", "--database-url", url])
        .env_remove("DATABASE_URL")
        .env_remove(handshake_storage::REQUIRES_POSTGRES_VAR)
        .env_remove(handshake_storage::STORAGE_MODE_VAR)
        .output()
        .expect("run hsk-storage");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_status_prints_fingerprint(target: &TestTarget) {
    let harness = target.harness().expect("a fresh migrated database");
    let fingerprint = harness.store().schema_fingerprint().expect("fingerprint");
    let printed = status(harness.url());
    assert!(
        printed.contains(&format!(
            "schema fingerprint: {} (as committed for this release)",
            fingerprint.hash
        )),
        "{printed}"
    );
    // An unreviewed schema change shows.
    harness
        .execute_sql("CREATE INDEX unreviewed_idx ON blocks (kind)")
        .expect("change the schema");
    let printed = status(harness.url());
    assert!(
        printed.contains("differs from the one committed for this release"),
        "{printed}"
    );
    assert!(!printed.contains(&fingerprint.hash), "{printed}");
}

#[cfg(feature = "sqlite")]
#[test]
fn status_prints_the_fingerprint_on_sqlite() {
    assert_status_prints_fingerprint(&TestTarget::standard("sqlite"));
}

#[cfg(feature = "postgres")]
#[test]
fn status_prints_the_fingerprint_on_postgres() {
    assert_status_prints_fingerprint(&TestTarget::standard("postgres"));
}
