//! No error, panic message or `Debug` output of the library carries the
//! password of a database URL. URLs with passwords in every
//! form (user info, percent-encoded, `password=` and `sslpassword=`
//! parameters, passwords that also occur elsewhere in the URL) go through
//! every failure path the library can reach (`cli/tests/secrets.rs` does
//! the same for the `hsk-storage` binary), and every
//! string they produce is searched for the password.
//!
//! Multi-host URLs (`h1:p1,h2:p2`, repeated `host=`/`port=`) are among
//! them, and a URL without a password is shown without one.
//!
//! PostgreSQL here may trust any password, so server-side failures are
//! provoked with a closed port, a missing database and a missing user.

use std::time::Duration;

use handshake_storage::*;
// Every test is serial: one sets DATABASE_URL, which libpq and the test
// harness read, and the environment may not change under another thread.
use serial_test::serial;

#[path = "common/secret_urls.rs"]
mod secret_urls;
use secret_urls::secret_urls;

fn quick_config() -> StorageConfig {
    StorageConfig::default().connection_timeout(Duration::from_secs(2))
}

#[test]
#[serial]
fn open_failures_never_show_a_password() {
    for secret in secret_urls() {
        let url = &secret.url;
        secret.assert_hidden_in("redact_url", &redact_url(url));
        for (what, result) in [
            ("open", open(url)),
            ("open_with_config", open_with_config(url, &quick_config())),
        ] {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{what} {url:?} opened"));
            secret.assert_hidden_in_error(what, &err);
            assert_eq!(
                err.kind(),
                secret.expected_kind(),
                "{what} on {}: {err}",
                redact_url(url)
            );
        }
    }
}

/// What `hsk-storage status` showed for a multi-host URL without a
/// password (issue 21): no `:***` invented, every host kept.
#[test]
#[serial]
fn redaction_shows_no_password_where_there_was_none() {
    for url in [
        "postgres://app@db1:5432,db2:5432/handshake?target_session_attrs=read-write",
        "postgres://app@db1:5432/handshake",
        "postgresql://db1,db2/handshake?load_balance_hosts=random",
        "postgres://app@db1:5432,db2:bad/handshake",
    ] {
        assert_eq!(redact_url(url), url);
    }
    assert_eq!(
        redact_url("postgresql://app@/handshake?host=db1&host=db2&port=5432,5433"),
        "postgresql://app@db1:5432,db2:5433/handshake"
    );
}

#[test]
#[serial]
fn config_debug_has_no_url() {
    let text = format!("{:?}", StorageConfig::default());
    assert!(!text.contains("://"), "{text}");
}

#[test]
#[serial]
fn open_from_env_failures_never_show_a_password() {
    for secret in secret_urls() {
        std::env::set_var("DATABASE_URL", &secret.url);
        let result = open_from_env();
        std::env::remove_var("DATABASE_URL");
        let err = result.err().expect("a failing DATABASE_URL must fail");
        secret.assert_hidden_in_error("open_from_env", &err);
    }
}

/// `TestTarget` (Debug, describe), preparing a case's database, and the
/// panic a case run on an unreachable target raises.
#[cfg(feature = "testing")]
#[test]
#[serial]
fn conformance_targets_never_show_a_password() {
    use handshake_storage::conformance::{cases, run_case, Case, TestTarget};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    for secret in secret_urls() {
        let target = match TestTarget::from_url(&secret.url) {
            Ok(target) => target,
            Err(err) => {
                secret.assert_hidden_in_error("TestTarget::from_url", &err);
                continue;
            }
        };
        secret.assert_hidden_in("TestTarget Debug", &format!("{target:?}"));
        secret.assert_hidden_in("TestTarget::describe", &target.describe());
        let err = target
            .harness()
            .err()
            .expect("a harness on a failing URL must fail");
        secret.assert_hidden_in_error("TestTarget::harness", &err);
        let panic = catch_unwind(AssertUnwindSafe(|| {
            run_case(
                &target,
                &Case {
                    name: "health_backend_and_ping",
                    run: cases::health_backend_and_ping,
                },
            )
        }))
        .expect_err("a case on a failing URL must fail");
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .expect("a text panic");
        secret.assert_hidden_in("run_case panic", &message);
    }
}

/// A store opened with a password the server does not check: what it
/// prints and its errors never show the password either.
#[cfg(feature = "postgres")]
#[test]
#[serial]
fn working_store_with_a_password_never_shows_it() {
    use handshake_storage::conformance::TestTarget;
    let TestTarget::Postgres { admin_url } = TestTarget::standard("postgres") else {
        unreachable!("the standard postgres target is a PostgreSQL server");
    };
    let mut url = url::Url::parse(&admin_url).expect("POSTGRES_TEST_URL is a URL");
    url.set_password(Some("Working-Secret-18"))
        .expect("a URL with a host takes a password");
    let secret = secret_urls::SecretUrl::new(url.to_string(), &["Working-Secret-18"]);
    // For maintenance: neither migrated nor checked, whatever the default
    // schema of the test database holds.
    let config = StorageConfig::default();
    let store =
        open_for_maintenance(&secret.url, &config).expect("trust auth accepts any password");
    let err = store.get_document("no such document").expect_err("missing");
    secret.assert_hidden_in_error("get_document", &err);
    let target = TestTarget::from_url(&secret.url).expect("target");
    secret.assert_hidden_in("TestTarget Debug", &format!("{target:?}"));
    // An unescaped `@` in the password: libpq and we must read the URL the
    // same way on every connection, the pool's included.
    let raw = secret
        .url
        .replace("Working-Secret-18", "At@Working-Secret-19")
        .replace("?", "?connect_timeout=5&");
    let raw = if raw.contains('?') {
        raw
    } else {
        format!("{raw}?connect_timeout=5")
    };
    let secret = secret_urls::SecretUrl::new(raw, &["Working-Secret-19"]);
    let store = open_for_maintenance(&secret.url, &config)
        .unwrap_or_else(|e| panic!("open with an `@` in the password: {e}"));
    secret.assert_hidden_in_error("ping", &store.get_document("none").expect_err("missing"));
}
