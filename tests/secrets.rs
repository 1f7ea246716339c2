//! No error, panic message, `Debug` output or line printed by `hsk-storage`
//! carries the password of a database URL. URLs with passwords in every
//! form (user info, percent-encoded, `password=` and `sslpassword=`
//! parameters, passwords that also occur elsewhere in the URL) go through
//! every failure path the library and the binary can reach, and every
//! string they produce is searched for the password.
//!
//! PostgreSQL here may trust any password, so server-side failures are
//! provoked with a closed port, a missing database and a missing user.

use std::time::Duration;

use handshake_storage::*;
// Every test is serial: one sets DATABASE_URL, which libpq and the test
// harness read, and the environment may not change under another thread.
use serial_test::serial;

/// A URL with a password in it, and the texts that must never appear in
/// anything produced from it.
struct SecretUrl {
    url: String,
    forbidden: Vec<String>,
    /// Whether the URL reaches a PostgreSQL server, which then refuses it
    /// (`Database`); else the URL itself is refused (`Validation`).
    reaches_server: bool,
}

impl SecretUrl {
    fn new(url: impl Into<String>, forbidden: &[&str]) -> Self {
        Self {
            url: url.into(),
            forbidden: forbidden.iter().map(|s| s.to_string()).collect(),
            reaches_server: false,
        }
    }

    fn reaching_server(self) -> Self {
        Self {
            reaches_server: true,
            ..self
        }
    }

    /// The error kind every failure path must give for this URL.
    fn expected_kind(&self) -> &'static str {
        if self.reaches_server && cfg!(feature = "postgres") {
            "Database"
        } else {
            "Validation"
        }
    }

    /// Fails the test if `output` (produced by `what`) contains the secret.
    #[track_caller]
    fn assert_hidden_in(&self, what: &str, output: &str) {
        for secret in &self.forbidden {
            assert!(
                !output.contains(secret.as_str()),
                "{what} on {:?} leaked {secret:?}: {output}",
                redact_url(&self.url)
            );
        }
    }

    /// Checks an error's `Display` and `Debug` output.
    #[track_caller]
    fn assert_hidden_in_error(&self, what: &str, err: &StorageError) {
        self.assert_hidden_in(what, &format!("{err}\n{err:?}"));
    }
}

/// Places that fail on a PostgreSQL server: nothing listens on port 1;
/// the database and the role do not exist.
const CLOSED_PORT: &str = "127.0.0.1:1/handshake_test";
const NO_DATABASE: &str = "127.0.0.1:5432/hsk_no_such_database";

/// Every URL form with a password, each failing for some reason.
fn secret_urls() -> Vec<SecretUrl> {
    let mut urls = Vec::new();
    for place in [CLOSED_PORT, NO_DATABASE] {
        let reaching: Vec<SecretUrl> = vec![
            SecretUrl::new(
                format!("postgres://postgres:Userinfo-Secret-1@{place}"),
                &["Userinfo-Secret-1"],
            ),
            SecretUrl::new(
                format!("postgresql://postgres:p%40ss%2Fw%3Ard%20Secret-2@{place}"),
                &["p%40ss%2Fw%3Ard%20Secret-2", "p@ss/w:rd Secret-2", "Secret-2"],
            ),
            SecretUrl::new(
                format!("postgres://postgres@{place}?password=Query-Secret-3"),
                &["Query-Secret-3"],
            ),
            SecretUrl::new(
                format!(
                    "postgres://postgres@{place}?sslmode=disable&sslpassword=Ssl-Secret-4&application_name=hsk"
                ),
                &["Ssl-Secret-4"],
            ),
            SecretUrl::new(
                format!("postgres://postgres:Both-Secret-5@{place}?password=Both-Secret-6"),
                &["Both-Secret-5", "Both-Secret-6"],
            ),
            // Passwords that also occur elsewhere in the URL: only their
            // place as a password must never show.
            SecretUrl::new(
                format!("postgres://postgres:postgres@{place}"),
                &[":postgres@"],
            ),
            SecretUrl::new(
                format!("postgres://postgres:handshake@{place}"),
                &[":handshake@"],
            ),
            SecretUrl::new(
                format!("postgres://postgres@{place}?password=127.0.0.1"),
                &["password=127.0.0.1"],
            ),
            SecretUrl::new(format!("postgres://postgres:pw@{place}"), &[":pw@"]),
        ];
        urls.extend(reaching.into_iter().map(SecretUrl::reaching_server));
    }
    urls.extend(
        [
            // A role that does not exist; a host that does not resolve; a
            // password with an unescaped `@`; one libpq cannot decode.
            SecretUrl::new(
                "postgres://hsk_no_such_role:Role-Secret-7@127.0.0.1:5432/handshake_test",
                &["Role-Secret-7"],
            ),
            SecretUrl::new(
                "postgres://u:Host-Secret-20@hsk-no-such-host.invalid:5432/db?connect_timeout=2",
                &["Host-Secret-20"],
            ),
            SecretUrl::new(
                "postgres://u:At@Secret-13@127.0.0.1:1/db",
                &["At@Secret-13", "At%40Secret-13", "Secret-13"],
            ),
            SecretUrl::new(
                "postgres://u:Bad%zzSecret-14@127.0.0.1:1/db",
                &["Bad%zzSecret-14", "Secret-14"],
            ),
        ]
        .map(SecretUrl::reaching_server),
    );
    urls.extend([
        // Malformed: bad port numbers, an unclosed IPv6 host, a password
        // with characters that end the authority early.
        SecretUrl::new(
            "postgres://u:Port-Secret-8@127.0.0.1:99999/db",
            &["Port-Secret-8"],
        ),
        SecretUrl::new(
            "postgres://u:Port-Secret-9@127.0.0.1:abc/db",
            &["Port-Secret-9"],
        ),
        SecretUrl::new("postgresql://u:Ipv6-Secret-10@[::1/db", &["Ipv6-Secret-10"]),
        SecretUrl::new(
            "postgres://u:Slash/Secret-11@127.0.0.1/db",
            &["Slash/Secret-11", "Secret-11"],
        ),
        SecretUrl::new(
            "postgres://u:Hash#Secret-12@127.0.0.1/db",
            &["Hash#Secret-12", "Secret-12"],
        ),
        // Schemes we do not serve.
        SecretUrl::new(
            "mysql://root:Mysql-Secret-15@127.0.0.1/db",
            &["Mysql-Secret-15"],
        ),
        SecretUrl::new(
            "gopher://u:Gopher-Secret-16@example/db?password=Gopher-Secret-17",
            &["Gopher-Secret-16", "Gopher-Secret-17"],
        ),
    ]);
    urls
}

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
    use handshake_storage::conformance::{cases, run_case, TestTarget};
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
            run_case(&target, cases::health_backend_and_ping)
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
    let secret = SecretUrl::new(url.to_string(), &["Working-Secret-18"]);
    let config = StorageConfig::default().run_migrations(false);
    let store = open_with_config(&secret.url, &config).expect("trust auth accepts any password");
    let err = store.get_document("no such document").expect_err("missing");
    secret.assert_hidden_in_error("get_document", &err);
    let target = TestTarget::from_url(&secret.url).expect("target");
    secret.assert_hidden_in("TestTarget Debug", &format!("{target:?}"));
    #[cfg(feature = "cli")]
    {
        let out = cli::hsk(&["status", "--database-url", &secret.url], None);
        assert!(out.status.success(), "{}", cli::printed(&out));
        secret.assert_hidden_in("hsk-storage status", &cli::printed(&out));
    }
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
    let secret = SecretUrl::new(raw, &["Working-Secret-19"]);
    let store = open_with_config(&secret.url, &config)
        .unwrap_or_else(|e| panic!("open with an `@` in the password: {e}"));
    secret.assert_hidden_in_error("ping", &store.get_document("none").expect_err("missing"));
}

#[cfg(feature = "cli")]
mod cli {
    use super::*;
    use std::process::{Command, Output};

    pub(crate) fn hsk(args: &[&str], env_url: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hsk-storage"));
        command.args(args).env_remove("DATABASE_URL");
        if let Some(url) = env_url {
            command.env("DATABASE_URL", url);
        }
        command.output().expect("run hsk-storage")
    }

    pub(crate) fn printed(out: &Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Every command, with the URL as an option and from `DATABASE_URL`,
    /// plus command lines clap refuses while the URL is on them.
    #[test]
    #[serial]
    fn hsk_storage_never_prints_a_password() {
        for secret in secret_urls() {
            let url = secret.url.as_str();
            for command in ["status", "migrate", "check"] {
                for out in [
                    hsk(&[command, "--database-url", url], None),
                    hsk(&[command], Some(url)),
                ] {
                    assert!(!out.status.success(), "{command} succeeded");
                    secret.assert_hidden_in(command, &printed(&out));
                }
            }
            for args in [
                vec!["status", url],
                vec!["--database-url", url, "no-such-command"],
                vec![url],
                vec!["status", "--database-url", url, "--database-url", url],
                vec!["status", &format!("--database-url={url}"), "--bogus"],
            ] {
                let out = hsk(&args, None);
                assert!(!out.status.success(), "{args:?} succeeded");
                secret.assert_hidden_in(&format!("{args:?}"), &printed(&out));
            }
        }
    }
}
