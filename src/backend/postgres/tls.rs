//! Why a TLS connection failed, in one line that says what to fix.
//!
//! libpq's TLS failures name neither the CA file nor the setting behind
//! them ("SSL error: certificate verify failed"), and a server's refusal
//! of a client without a certificate reads like any other `FATAL`. The
//! message of a failed connection leads with one of the lines below when
//! libpq's text (matched on libpq 18's English wording) shows one of these
//! causes, and keeps libpq's own text after it. The paths shown are the
//! URL's parameters: they are what a user must fix, and carry no secret.

use crate::config::PgUrl;

/// The line for libpq's `message` (already scrubbed of secrets), or
/// `None` when it is not one of the TLS failures we know.
pub(super) fn explain(message: &str, url: &PgUrl) -> Option<String> {
    let param = |key: &str| url.param(key).map(shown);
    if message.contains("does not match host name") {
        let host = quoted_after(message, "does not match host name ")
            .unwrap_or_else(|| "it was given".into());
        return Some(format!(
            "TLS: the server's certificate does not name the host {host} \
             (sslmode=verify-full checks the host name; connect with a name the \
             certificate holds)"
        ));
    }
    if message.contains("certificate verify failed") {
        let roots = match param("sslrootcert") {
            Some(system) if system == "system" => {
                "a CA the system trusts (sslrootcert=system)".into()
            }
            Some(path) => format!("the CA in sslrootcert={path}"),
            None => "a CA in the default root file ~/.postgresql/root.crt (no sslrootcert)".into(),
        };
        return Some(format!(
            "TLS: the server's certificate is not signed by {roots}, or is not valid now"
        ));
    }
    if message.contains("requires a valid client certificate") {
        let sent = match param("sslcert") {
            Some(path) => {
                format!("none was sent (libpq sends none when sslcert={path} does not exist)")
            }
            None => "none was sent: give sslcert= and sslkey=".into(),
        };
        return Some(format!(
            "TLS: the server requires a client certificate, and {sent}"
        ));
    }
    // `trust` fails only when `clientcert=verify-full` does; `cert` when
    // the certificate names another role.
    if message.contains("\"trust\" authentication failed for user")
        || message.contains("certificate authentication failed for user")
    {
        let role = quoted_after(message, "authentication failed for user ")
            .unwrap_or_else(|| "the URL names".into());
        let cert = param("sslcert").unwrap_or_else(|| "~/.postgresql/postgresql.crt".into());
        return Some(format!(
            "TLS: the client certificate in sslcert={cert} does not name the role {role} \
             (its common name must be the role, or map to it in pg_ident.conf)"
        ));
    }
    if message.contains("alert unknown ca") || message.contains("alert bad certificate") {
        let cert = param("sslcert").unwrap_or_else(|| "~/.postgresql/postgresql.crt".into());
        return Some(format!(
            "TLS: the server does not trust the client certificate in sslcert={cert} \
             (not signed by a CA in its ssl_ca_file)"
        ));
    }
    None
}

/// A parameter's value for a one-line message: control characters (a
/// newline in a path) escaped, everything else as it is.
fn shown(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The text between the double quotes that follow `prefix` in `message`.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(shown(&rest[..rest.find('"')?]))
}

#[cfg(test)]
mod tests {
    use super::explain;
    use crate::config::PgUrl;

    fn url(query: &str) -> PgUrl {
        PgUrl::parse(&format!("postgres://u:pw@db.example/app?{query}")).unwrap()
    }

    #[test]
    fn names_the_setting_behind_each_failure() {
        let verify = "connection to server at \"db\" (10.0.0.1), port 5432 failed: \
                      SSL error: certificate verify failed";
        let cases = [
            (
                verify,
                "sslmode=verify-ca&sslrootcert=%2Fetc%2Fmy%20ca%0A.pem",
                "TLS: the server's certificate is not signed by the CA in \
                 sslrootcert=/etc/my ca\\n.pem, or is not valid now",
            ),
            (
                verify,
                "sslmode=verify-full&sslrootcert=system",
                "signed by a CA the system trusts",
            ),
            (verify, "sslmode=verify-full", "~/.postgresql/root.crt"),
            (
                "server certificate for \"localhost\" (and 1 other name) does not match \
                 host name \"127.0.0.1\"",
                "sslmode=verify-full",
                "TLS: the server's certificate does not name the host 127.0.0.1 ",
            ),
            (
                "FATAL: connection requires a valid client certificate",
                "sslcert=%2Fhome%2Fa%2Fc.crt",
                "TLS: the server requires a client certificate, and none was sent \
                 (libpq sends none when sslcert=/home/a/c.crt does not exist)",
            ),
            (
                "FATAL: \"trust\" authentication failed for user \"app\"",
                "sslcert=c.crt",
                "TLS: the client certificate in sslcert=c.crt does not name the role app ",
            ),
            (
                "FATAL: certificate authentication failed for user \"app\"",
                "sslcert=c.crt",
                "does not name the role app ",
            ),
            (
                "SSL error: tlsv1 alert unknown ca",
                "sslcert=c.crt",
                "TLS: the server does not trust the client certificate in sslcert=c.crt",
            ),
        ];
        for (message, query, says) in cases {
            let line = explain(message, &url(query)).unwrap_or_default();
            assert!(line.contains(says), "{message} / {query}: {line}");
            assert!(!line.contains('\n'), "{line}");
        }
        assert_eq!(
            explain("FATAL: database \"x\" does not exist", &url("a=b")),
            None
        );
    }
}
