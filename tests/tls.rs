//! Verified TLS (issue 22), against a private cluster whose certificate
//! comes from a private CA made by this test (`tests/common/pki.rs`): the
//! server's certificate names `localhost` only, and `pg_hba.conf` accepts
//! TCP connections over TLS only:
//!
//! - `sslmode=verify-full` (to `localhost`) and `verify-ca` (to
//!   `127.0.0.1`, which the certificate does not name) with
//!   `sslrootcert=` the CA open a store that writes and reads;
//! - an unrelated CA, or `verify-full` to a host the certificate does not
//!   name, fails with a `Database` error whose message says so in one
//!   line;
//! - client certificates: a role that authenticates with `cert`, one with
//!   `trust clientcert=verify-full`; each connects with its certificate
//!   and fails clearly without one, or with one of another CA or role;
//! - paths with spaces, quotes and `%` reach libpq whole;
//! - no message carries the URL's password (every URL here has one; the
//!   server trusts whoever shows the right certificate, so it is never
//!   checked, only hidden).
//!
//! One cluster serves every test of this binary; a reaper process stops
//! it and removes its files when the binary exits, however it exits.
#![cfg(all(unix, feature = "postgres"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::time::Duration;

use common::cluster::{ClusterOptions, PgCluster, TlsFiles};
use common::pki::Pki;
use handshake_storage::conformance::fixtures::human;
use handshake_storage::*;

/// In every URL of this file, never in any output.
const PASSWORD: &str = "Tls-Secret-Pw-4711";

/// A role that logs in with its client certificate (`cert`), one that
/// must show a certificate naming it on top of `trust`, and the superuser
/// for the rest; no TCP connection without TLS.
const HBA: &str = "\
local all all trust
hostssl all hsk_cert 127.0.0.1/32 cert
hostssl all hsk_verified 127.0.0.1/32 trust clientcert=verify-full
hostssl all all 127.0.0.1/32 trust
";

/// A directory name with a space, both quotes and a `%`.
const ODD_DIR: &str = "dir with space/it's \"quoted\" 100%";

struct Server {
    cluster: PgCluster,
    pki: Pki,
    _reaper: Child,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let pki = Pki::new();
        let cluster = PgCluster::start(ClusterOptions {
            tls_files: Some(TlsFiles {
                cert: pki.server_cert(),
                key: pki.server_key(),
                client_ca: Some(pki.ca()),
            }),
            hba: Some(HBA.into()),
            ..ClusterOptions::default()
        });
        let reaper = cluster.reaper(&[pki.dir()]);
        for sql in [
            "CREATE ROLE hsk_cert LOGIN",
            "CREATE ROLE hsk_verified LOGIN",
            "CREATE DATABASE verify_full",
            "CREATE DATABASE verify_ca",
            "CREATE DATABASE hsk_cert OWNER hsk_cert",
            "CREATE DATABASE hsk_verified OWNER hsk_verified",
            "CREATE DATABASE odd_paths OWNER hsk_cert",
        ] {
            cluster.psql(sql);
        }
        Server {
            cluster,
            pki,
            _reaper: reaper,
        }
    })
}

/// A URL for `user@host/db` on the TLS cluster, with `PASSWORD` and the
/// parameters given (values percent-encoded here, as a user would).
fn url(user: &str, host: &str, db: &str, params: &[(&str, &str)]) -> String {
    let mut url = format!(
        "postgres://{user}:{PASSWORD}@{host}:{}/{db}?connect_timeout=5",
        server().cluster.port()
    );
    for (key, value) in params {
        url.push_str(&format!("&{key}={}", encode(value)));
    }
    url
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn config() -> StorageConfig {
    StorageConfig::default()
        .pool_size(2)
        .connection_timeout(Duration::from_secs(10))
}

/// Opens a store on `url`, writes a workspace and reads it back.
#[track_caller]
fn writes_and_reads(url: &str) {
    let store = open_with_config(url, &config())
        .unwrap_or_else(|e| panic!("open {}: {e}", redact_url(url)));
    let created = store
        .create_workspace(
            &human(),
            NewWorkspace {
                name: "over verified TLS".into(),
            },
        )
        .unwrap_or_else(|e| panic!("write on {}: {e}", redact_url(url)));
    let read = store
        .get_workspace(&created.id)
        .unwrap_or_else(|e| panic!("read on {}: {e}", redact_url(url)));
    assert_eq!(read, Some(created));
}

/// Opening `url` fails with one `Database` error, on one line, holding
/// every text of `says` and never the password; returns the message.
#[track_caller]
fn fails_clearly(url: &str, says: &[&str]) -> String {
    let err = match open_with_config(url, &config()) {
        Ok(_) => panic!("{} opened", redact_url(url)),
        Err(err) => err,
    };
    let message = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Database, "{message}");
    assert!(!message.contains('\n'), "more than one line: {message}");
    for text in says {
        assert!(message.contains(text), "{message:?} does not say {text:?}");
    }
    let debug = format!("{err:?}");
    for output in [&message, &debug] {
        assert!(!output.contains(PASSWORD), "password shown: {output}");
    }
    message
}

#[test]
fn verify_full_with_the_right_ca_and_host_connects() {
    let s = server();
    writes_and_reads(&url(
        "postgres",
        "localhost",
        "verify_full",
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", path(&s.pki.ca())),
        ],
    ));
}

#[test]
fn verify_ca_with_the_right_ca_connects_to_any_host_name() {
    let s = server();
    // The certificate names `localhost`, not 127.0.0.1: verify-ca checks
    // the signature only.
    writes_and_reads(&url(
        "postgres",
        "127.0.0.1",
        "verify_ca",
        &[("sslmode", "verify-ca"), ("sslrootcert", path(&s.pki.ca()))],
    ));
}

#[test]
fn connections_without_tls_are_refused() {
    // What makes the other tests mean something: this server takes no
    // plain TCP connection.
    fails_clearly(
        &url(
            "postgres",
            "127.0.0.1",
            "verify_full",
            &[("sslmode", "disable")],
        ),
        &["no encryption"],
    );
}

#[test]
fn the_wrong_ca_fails_clearly() {
    let s = server();
    let other = s.pki.other_ca();
    for (mode, host) in [("verify-ca", "127.0.0.1"), ("verify-full", "localhost")] {
        let message = fails_clearly(
            &url(
                "postgres",
                host,
                "verify_full",
                &[("sslmode", mode), ("sslrootcert", path(&other))],
            ),
            &[&format!(
                "TLS: the server's certificate is not signed by the CA in sslrootcert={}",
                other.display()
            )],
        );
        println!("{mode}: {message}");
    }
}

#[test]
fn a_host_the_certificate_does_not_name_fails_clearly() {
    let s = server();
    let message = fails_clearly(
        &url(
            "postgres",
            "127.0.0.1",
            "verify_full",
            &[
                ("sslmode", "verify-full"),
                ("sslrootcert", path(&s.pki.ca())),
            ],
        ),
        &["TLS: the server's certificate does not name the host 127.0.0.1 (sslmode=verify-full"],
    );
    println!("{message}");
}

/// `role` logging in to its own database over `verify-full`, showing the
/// client certificate `cert` with its `key`.
fn cert_url(role: &str, ca: &str, cert: &Path, key: &Path) -> String {
    url(
        role,
        "localhost",
        role,
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", ca),
            ("sslcert", path(cert)),
            ("sslkey", path(key)),
        ],
    )
}

/// No certificate (and none in ~/.postgresql: the defaults point into an
/// empty directory): `role` is refused with one clear line.
fn without_a_certificate_fails_clearly(s: &Server, role: &str, ca: &str) {
    let none = s.pki.dir().join("none");
    let message = fails_clearly(
        &cert_url(role, ca, &none.join("client.crt"), &none.join("client.key")),
        &["TLS: the server requires a client certificate"],
    );
    println!("{role}, no certificate: {message}");
}

/// A certificate of the right CA naming another role: `role` is refused
/// with one line naming the role.
fn another_roles_certificate_fails_clearly(s: &Server, role: &str, other: &str, ca: &str) {
    let (cert, key) = s.pki.client(other, "ca");
    let message = fails_clearly(
        &cert_url(role, ca, &cert, &key),
        &[&format!(
            "TLS: the client certificate in sslcert={} does not name the role {role}",
            cert.display()
        )],
    );
    println!("{role}, {other}'s certificate: {message}");
}

#[test]
fn a_client_certificate_logs_in_as_its_role() {
    let s = server();
    let ca = path(&s.pki.ca()).to_string();
    let (cert, key) = s.pki.client("hsk_cert", "ca");
    writes_and_reads(&cert_url("hsk_cert", &ca, &cert, &key));
    without_a_certificate_fails_clearly(s, "hsk_cert", &ca);
    // A certificate from a CA the server does not trust.
    let (cert, key) = s.pki.client("hsk_cert", "other_ca");
    let message = fails_clearly(
        &cert_url("hsk_cert", &ca, &cert, &key),
        &[&format!(
            "TLS: the server does not trust the client certificate in sslcert={}",
            cert.display()
        )],
    );
    println!("another CA: {message}");
    another_roles_certificate_fails_clearly(s, "hsk_cert", "hsk_verified", &ca);
}

#[test]
fn clientcert_verify_full_needs_a_certificate_naming_the_role() {
    let s = server();
    let ca = path(&s.pki.ca()).to_string();
    let (cert, key) = s.pki.client("hsk_verified", "ca");
    writes_and_reads(&cert_url("hsk_verified", &ca, &cert, &key));
    without_a_certificate_fails_clearly(s, "hsk_verified", &ca);
    another_roles_certificate_fails_clearly(s, "hsk_verified", "hsk_cert", &ca);
}

#[test]
fn paths_with_spaces_quotes_and_percent_reach_libpq() {
    let s = server();
    let dir = s.pki.dir().join(ODD_DIR);
    std::fs::create_dir_all(&dir).expect("create the odd directory");
    let (cert, key) = s.pki.client("hsk_cert", "ca");
    let odd = |from: &Path, name: &str| -> PathBuf {
        let to = dir.join(name);
        std::fs::copy(from, &to).expect("copy into the odd directory");
        to
    };
    let ca = odd(&s.pki.ca(), "root ca's \"cert\".pem");
    let cert = odd(&cert, "client cert.pem");
    let key = odd(&key, "client key %41.pem");
    writes_and_reads(&url(
        "hsk_cert",
        "localhost",
        "odd_paths",
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", path(&ca)),
            ("sslcert", path(&cert)),
            ("sslkey", path(&key)),
        ],
    ));
}

#[test]
fn tls_paths_are_shown_and_passwords_never() {
    let s = server();
    let dir = s.pki.dir().join("dir with space");
    std::fs::create_dir_all(&dir).expect("create the directory");
    let other = dir.join("ca.pem");
    std::fs::copy(s.pki.other_ca(), &other).expect("copy the CA");
    // The password as a parameter and in the user part, the CA path with
    // a space: the path is what a user must fix, so it is shown.
    for url in [
        format!(
            "postgres://postgres@localhost:{}/verify_full?password={PASSWORD}\
             &sslmode=verify-full&sslrootcert={}",
            s.cluster.port(),
            encode(path(&other))
        ),
        url(
            "postgres",
            "localhost",
            "verify_full",
            &[("sslmode", "verify-full"), ("sslrootcert", path(&other))],
        ),
    ] {
        let redacted = redact_url(&url);
        assert!(!redacted.contains(PASSWORD), "{redacted}");
        assert!(redacted.contains("sslrootcert="), "{redacted}");
        let message = fails_clearly(&url, &[&format!("sslrootcert={}", other.display())]);
        println!("{message}");
    }
}
