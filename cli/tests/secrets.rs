//! No line printed by `hsk-storage` carries the password of a database URL:
//! every command, with the URL as an option and from `DATABASE_URL`, on
//! every URL of the shared table (`tests/common/secret_urls.rs`, the same
//! one the library's `tests/secrets.rs` uses), plus command lines clap
//! refuses while the URL is on them, and a working store reached with a
//! password the server does not check.

use std::process::{Command, Output};

use serial_test::serial;

#[allow(dead_code)] // the library's test uses the rest
#[path = "../../tests/common/secret_urls.rs"]
mod secret_urls;
use secret_urls::secret_urls;

fn hsk(args: &[&str], env_url: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hsk-storage"));
    command.args(args).env_remove("DATABASE_URL");
    if let Some(url) = env_url {
        command.env("DATABASE_URL", url);
    }
    command.output().expect("run hsk-storage")
}

fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

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

/// `status` on a working PostgreSQL store reached with a password the
/// server does not check prints the backend, never the password.
#[cfg(feature = "postgres")]
#[test]
#[serial]
fn status_on_a_working_store_never_shows_the_password() {
    let admin_url = std::env::var("POSTGRES_TEST_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect(
            "set POSTGRES_TEST_URL to a PostgreSQL server \
             (docker compose -f docker-compose.test.yml up -d --wait)",
        );
    let mut url = url::Url::parse(&admin_url).expect("POSTGRES_TEST_URL is a URL");
    url.set_password(Some("Working-Secret-18"))
        .expect("a URL with a host takes a password");
    let secret = secret_urls::SecretUrl::new(url.to_string(), &["Working-Secret-18"]);
    let out = hsk(&["status", "--database-url", &secret.url], None);
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        printed(&out).contains("backend: postgres"),
        "{}",
        printed(&out)
    );
    secret.assert_hidden_in("hsk-storage status", &printed(&out));
}
