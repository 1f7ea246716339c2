//! URLs with a password in every form, each failing for some reason, and
//! the texts that must never appear in anything produced from them. Shared
//! by `tests/secrets.rs` (the library) and `cli/tests/secrets.rs` (the
//! binary) through `#[path]`, so the table exists once.

use handshake_storage::{redact_url, ErrorKind, StorageError};

/// A URL with a password in it, and the texts that must never appear in
/// anything produced from it.
pub struct SecretUrl {
    pub url: String,
    forbidden: Vec<String>,
    /// Whether the URL reaches a PostgreSQL server, which then refuses it
    /// (`Database`); else the URL itself is refused (`Validation`).
    reaches_server: bool,
}

impl SecretUrl {
    pub fn new(url: impl Into<String>, forbidden: &[&str]) -> Self {
        Self {
            url: url.into(),
            forbidden: forbidden.iter().map(|s| s.to_string()).collect(),
            reaches_server: false,
        }
    }

    pub fn reaching_server(self) -> Self {
        Self {
            reaches_server: true,
            ..self
        }
    }

    /// The error kind every failure path must give for this URL.
    pub fn expected_kind(&self) -> ErrorKind {
        if self.reaches_server && cfg!(feature = "postgres") {
            ErrorKind::Database
        } else {
            ErrorKind::Validation
        }
    }

    /// Fails the test if `output` (produced by `what`) contains the secret.
    #[track_caller]
    pub fn assert_hidden_in(&self, what: &str, output: &str) {
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
    pub fn assert_hidden_in_error(&self, what: &str, err: &StorageError) {
        self.assert_hidden_in(what, &format!("{err}\n{err:?}"));
    }
}

/// Places that fail on a PostgreSQL server: nothing listens on port 1;
/// the database and the role do not exist.
const CLOSED_PORT: &str = "127.0.0.1:1/handshake_test";
const NO_DATABASE: &str = "127.0.0.1:5432/hsk_no_such_database";

/// Every URL form with a password, each failing for some reason.
pub fn secret_urls() -> Vec<SecretUrl> {
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
            // password with an unescaped `@`.
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
            // Several hosts, none of which serves: a closed port and a
            // missing database, in the authority and as parameters.
            SecretUrl::new(
                "postgres://postgres:Multi-Secret-21@127.0.0.1:1,127.0.0.1:5432/hsk_no_such_database\
                 ?target_session_attrs=read-write",
                &["Multi-Secret-21"],
            ),
            SecretUrl::new(
                "postgresql://postgres@/hsk_no_such_database?host=127.0.0.1&host=127.0.0.1\
                 &port=1&port=5432&password=Multi-Secret-22&target_session_attrs=primary",
                &["Multi-Secret-22"],
            ),
            SecretUrl::new(
                "postgres://postgres:Multi-Secret-23@127.0.0.1:1,127.0.0.1:2/handshake_test\
                 ?load_balance_hosts=random&target_session_attrs=any",
                &["Multi-Secret-23"],
            ),
        ]
        .map(SecretUrl::reaching_server),
    );
    urls.extend([
        // Malformed: bad port numbers, an unclosed IPv6 host, a password
        // with characters that end the authority early (or a fragment).
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
        // A password libpq cannot decode.
        SecretUrl::new(
            "postgres://u:Bad%zzSecret-14@127.0.0.1:1/db",
            &["Bad%zzSecret-14", "Secret-14"],
        ),
        // Several hosts, one with a bad port; a bad session attribute.
        SecretUrl::new(
            "postgres://u:Multi-Secret-24@127.0.0.1:5432,127.0.0.1:bad/db",
            &["Multi-Secret-24"],
        ),
        SecretUrl::new(
            "postgres://u@h1,h2/db?target_session_attrs=sideways&password=Multi-Secret-25",
            &["Multi-Secret-25"],
        ),
        SecretUrl::new(
            "postgres://u:Multi-Secret-26@h1:5432/db?host=h2",
            &["Multi-Secret-26"],
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
