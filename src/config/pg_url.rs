//! PostgreSQL URLs as libpq reads them, multi-host forms included, parsed
//! once into a [`PgUrl`].
//!
//! libpq takes several servers in one URL, either in the authority
//! (`postgres://app@db1:5432,db2:5432/handshake`) or as `host=` and
//! `port=` parameters (`postgres:///handshake?host=db1,db2&port=5432`),
//! and picks one by `target_session_attrs` (and, libpq 16 on, spreads
//! connections with `load_balance_hosts=random`). The `url` crate cannot
//! read an authority with several hosts, so this is our own parser of
//! libpq's URI grammar. What libpq is handed is a URL written here from
//! the parsed parts, every part percent-encoded: libpq and we then read
//! the same user, password, hosts and parameters, whatever the input
//! spelled (an unescaped `@` in a password, `host=` given twice).
//!
//! Nothing here contacts a server. Error messages never quote a piece of
//! the URL: a piece that failed to parse may be part of a password.

use crate::error::{StorageError, StorageResult};

/// Query parameters that carry a secret.
pub(crate) const SECRET_PARAMS: [&str; 2] = ["password", "sslpassword"];

/// The values libpq accepts for `target_session_attrs` (all of them since
/// libpq 14; the bundled libpq is 18).
const TARGET_SESSION_ATTRS: [&str; 6] = [
    "any",
    "read-write",
    "read-only",
    "primary",
    "standby",
    "prefer-standby",
];

/// The values libpq (16 on) accepts for `load_balance_hosts`.
const LOAD_BALANCE_HOSTS: [&str; 2] = ["disable", "random"];

/// One server of a URL: a host name, an IP address or a Unix socket
/// directory (empty: libpq's default), and a port (`None`: libpq's
/// default, 5432).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PgHost {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

/// A PostgreSQL URL, parsed once by [`PgUrl::parse`] and handed down, so
/// every connection of a store gets the same text. Parts are kept
/// percent-decoded; [`PgUrl::as_str`] is what libpq gets and
/// [`PgUrl::redacted`] what a message may show.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PgUrl {
    scheme: &'static str,
    user: Option<String>,
    password: Option<String>,
    hosts: Vec<PgHost>,
    dbname: Option<String>,
    /// Every query parameter but `host` and `port` (folded into `hosts`),
    /// in the order given.
    params: Vec<(String, String)>,
    /// The URL libpq gets, written from the parts above.
    text: String,
}

impl PgUrl {
    /// Parses a `postgres://` or `postgresql://` URL; anything libpq would
    /// refuse, or read differently from us, is a `Validation` error that
    /// shows the URL redacted.
    pub(crate) fn parse(url: &str) -> StorageResult<Self> {
        Self::parse_parts(url).map_err(|reason| {
            StorageError::validation(format!(
                "invalid PostgreSQL URL {}: {reason}",
                super::redact_text(url)
            ))
        })
    }

    /// [`PgUrl::parse`] with the reason alone (which never quotes the URL).
    pub(crate) fn parse_parts(url: &str) -> Result<Self, String> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("postgresql://") {
            ("postgresql", rest)
        } else if let Some(rest) = url.strip_prefix("postgres://") {
            ("postgres", rest)
        } else {
            return Err("it does not start with postgres:// or postgresql://".into());
        };
        if rest.contains('#') {
            return Err("a `#` must be written %23 (libpq has no fragments)".into());
        }
        if rest.contains(char::is_whitespace) {
            return Err("it contains white space (write a space as %20)".into());
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.split_once('/') {
            Some((authority, path)) => (authority, Some(path)),
            None => (before_query, None),
        };
        // The last `@` ends the user info: a password may hold an
        // unescaped `@`, a host never does.
        let (userinfo, hostlist) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (info, None),
                };
                let user = decode(user).map_err(|e| format!("the user name {e}"))?;
                let password = password
                    .map(|p| decode(p).map_err(|e| format!("the password {e}")))
                    .transpose()?;
                (non_empty(user), password.and_then(non_empty))
            }
        };
        let mut hosts = parse_authority_hosts(hostlist)?;
        let dbname = match path {
            Some(path) => non_empty(decode(path).map_err(|e| format!("the database name {e}"))?),
            None => None,
        };

        let mut params = Vec::new();
        let mut param_hosts: Vec<String> = Vec::new();
        let mut param_ports: Vec<String> = Vec::new();
        for (n, pair) in query.unwrap_or_default().split('&').enumerate() {
            if pair.is_empty() {
                continue;
            }
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!("query parameter {} has no `=`", n + 1));
            };
            let key = decode(key).map_err(|e| format!("query parameter {} {e}", n + 1))?;
            let value = decode(value).map_err(|e| format!("the value of `{key}` {e}"))?;
            match key.as_str() {
                // Repeated or comma-separated: each adds servers.
                "host" => param_hosts.extend(value.split(',').map(String::from)),
                "port" => param_ports.extend(value.split(',').map(String::from)),
                "target_session_attrs" if !TARGET_SESSION_ATTRS.contains(&value.as_str()) => {
                    return Err(format!(
                        "target_session_attrs must be one of {}",
                        TARGET_SESSION_ATTRS.join(", ")
                    ))
                }
                "load_balance_hosts" if !LOAD_BALANCE_HOSTS.contains(&value.as_str()) => {
                    return Err(format!(
                        "load_balance_hosts must be one of {}",
                        LOAD_BALANCE_HOSTS.join(", ")
                    ))
                }
                _ => params.push((key, value)),
            }
        }
        for (_, options) in params.iter().filter(|(k, _)| k == "options") {
            super::pg_options::check(options)?;
        }
        if !param_hosts.is_empty() {
            if hosts.iter().any(|h| !h.host.is_empty() || h.port.is_some()) {
                return Err(
                    "it names servers both before the path and in `host=` parameters; \
                            give them in one place"
                        .into(),
                );
            }
            hosts = param_hosts
                .into_iter()
                .map(|host| check_host(&host).map(|()| PgHost { host, port: None }))
                .collect::<Result<_, _>>()?;
        }
        if !param_ports.is_empty() {
            if hosts.iter().any(|h| h.port.is_some()) {
                return Err(
                    "it gives ports both in the host list and in `port=` parameters; \
                            give them in one place"
                        .into(),
                );
            }
            let ports = param_ports
                .iter()
                .enumerate()
                .map(|(n, p)| parse_port(p, n))
                .collect::<Result<Vec<_>, _>>()?;
            if hosts.is_empty() {
                hosts.push(PgHost {
                    host: String::new(),
                    port: None,
                });
            }
            match ports.len() {
                1 => hosts.iter_mut().for_each(|h| h.port = ports[0]),
                n if n == hosts.len() => {
                    for (host, port) in hosts.iter_mut().zip(ports) {
                        host.port = port;
                    }
                }
                n => {
                    return Err(format!(
                        "it gives {n} ports for {} hosts (give one port for all, or one per host)",
                        hosts.len()
                    ))
                }
            }
        }
        // One default server is no server named: libpq's default either way.
        if hosts.len() == 1 && hosts[0].host.is_empty() && hosts[0].port.is_none() {
            hosts.clear();
        }
        let mut url = PgUrl {
            scheme,
            user,
            password,
            hosts,
            dbname,
            params,
            text: String::new(),
        };
        url.text = url.write(false);
        Ok(url)
    }

    /// The URL libpq gets, password included: for libpq only, never for a
    /// message (use [`PgUrl::redacted`]).
    #[cfg(any(feature = "postgres", feature = "testing", feature = "fuzzing"))]
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The URL with its passwords (user info, `password=`, `sslpassword=`)
    /// replaced by `***`; a URL without one shows none.
    pub(crate) fn redacted(&self) -> String {
        self.write(true)
    }

    /// The servers, in the order libpq tries them.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn hosts(&self) -> &[PgHost] {
        &self.hosts
    }

    /// The database name, percent-decoded (`None`: libpq's default).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn dbname(&self) -> Option<&str> {
        self.dbname.as_deref()
    }

    /// The secrets this URL carries, decoded: the password and every
    /// secret parameter's value.
    #[cfg(any(feature = "postgres", feature = "fuzzing", test))]
    pub(crate) fn secrets(&self) -> Vec<&str> {
        self.password
            .iter()
            .map(String::as_str)
            .chain(
                self.params
                    .iter()
                    .filter(|(k, _)| SECRET_PARAMS.contains(&k.as_str()))
                    .map(|(_, v)| v.as_str()),
            )
            .collect()
    }

    /// A copy with the query parameter `key=value` added.
    #[cfg(feature = "postgres")]
    pub(crate) fn with_param(&self, key: &str, value: &str) -> Self {
        let mut url = self.clone();
        url.params.push((key.to_string(), value.to_string()));
        url.text = url.write(false);
        url
    }

    /// A copy that logs in as `user` with `password` (any `user=` or
    /// `password=` parameter dropped, so they cannot override it).
    #[cfg(all(feature = "postgres", feature = "testing"))]
    pub(crate) fn with_login(&self, user: &str, password: &str) -> Self {
        let mut url = self.clone();
        url.user = Some(user.to_string());
        url.password = Some(password.to_string());
        url.params.retain(|(k, _)| k != "user" && k != "password");
        url.text = url.write(false);
        url
    }

    /// What libpq takes from the environment in place of a part this URL
    /// leaves out, checked as that part would be: `PGOPTIONS` (a
    /// `Validation` error).
    #[cfg(feature = "postgres")]
    pub(crate) fn check_environment(&self) -> StorageResult<()> {
        super::pg_options::check_environment(self.has_param("options"))
            .map_err(StorageError::validation)
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn has_param(&self, key: &str) -> bool {
        self.params.iter().any(|(k, _)| k == key)
    }

    /// The value of query parameter `key` (the last one given, as libpq
    /// reads it).
    #[cfg(feature = "postgres")]
    pub(crate) fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Writes the URL from its parts, every part percent-encoded, in a
    /// form libpq reads back into the same parts.
    fn write(&self, redact: bool) -> String {
        let mut out = format!("{}://", self.scheme);
        if self.user.is_some() || self.password.is_some() {
            out.push_str(&encode(self.user.as_deref().unwrap_or_default(), ""));
            if let Some(password) = &self.password {
                out.push(':');
                out.push_str(&if redact {
                    "***".to_string()
                } else {
                    encode(password, "")
                });
            }
            out.push('@');
        }
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| {
                let host = if h.host.contains(':') {
                    format!("[{}]", encode(&h.host, ":"))
                } else {
                    encode(&h.host, "")
                };
                match h.port {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect();
        out.push_str(&hosts.join(","));
        if let Some(dbname) = &self.dbname {
            out.push('/');
            out.push_str(&encode(dbname, ""));
        }
        for (n, (key, value)) in self.params.iter().enumerate() {
            out.push(if n == 0 { '?' } else { '&' });
            out.push_str(&encode(key, ""));
            out.push('=');
            if redact && SECRET_PARAMS.contains(&key.as_str()) {
                out.push_str("***");
            } else {
                out.push_str(&encode(value, ""));
            }
        }
        out
    }
}

/// Never shows the password.
impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgUrl({})", self.redacted())
    }
}

/// The servers of an authority: `host[:port]` items separated by commas,
/// a host in brackets when it is an IPv6 address. An empty list is
/// libpq's default server.
fn parse_authority_hosts(list: &str) -> Result<Vec<PgHost>, String> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .enumerate()
        .map(|(n, item)| {
            let (host, port) = if let Some(bracketed) = item.strip_prefix('[') {
                let Some((host, after)) = bracketed.split_once(']') else {
                    return Err(format!("host {} has a `[` without its `]`", n + 1));
                };
                if host.is_empty() {
                    return Err(format!("host {} is an empty IPv6 address", n + 1));
                }
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or_else(|| {
                        format!("host {} has text after its IPv6 address", n + 1)
                    })?),
                };
                (host, port)
            } else {
                match item.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (item, None),
                }
            };
            let host = decode(host).map_err(|e| format!("host {} {e}", n + 1))?;
            check_host(&host).map_err(|e| format!("host {}: {e}", n + 1))?;
            let port = match port {
                Some(port) => parse_port(port, n)?,
                None => None,
            };
            Ok(PgHost { host, port })
        })
        .collect()
}

/// A host libpq will read back as one host.
fn check_host(host: &str) -> Result<(), String> {
    if host.contains(',') {
        return Err("a host name cannot contain a comma".into());
    }
    if host.contains(['[', ']', '@', '/']) && !host.starts_with('/') {
        return Err("a host name cannot contain `[`, `]`, `@` or `/`".into());
    }
    Ok(())
}

/// A port number (empty: libpq's default). Never quotes the text.
fn parse_port(text: &str, n: usize) -> Result<Option<u16>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(port)),
        _ => Err(format!(
            "invalid port number for host {} (a number from 1 to 65535 expected)",
            n + 1
        )),
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// Percent-decodes as libpq does: `%XX` only (a `+` stays a `+`), and the
/// result must be UTF-8. The error names what is wrong, not the text.
fn decode(text: &str) -> Result<String, &'static str> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("has a `%` that is not followed by two hex digits")?;
            if hex == 0 {
                return Err("holds a NUL byte (%00)");
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once percent-decoded")
}

/// Percent-encodes every byte but the unreserved ones (and those in
/// `keep`).
fn encode(text: &str, keep: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || b"-._~".contains(&byte)
            || keep.as_bytes().contains(&byte)
        {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(url: &PgUrl) -> Vec<(&str, Option<u16>)> {
        url.hosts()
            .iter()
            .map(|h| (h.host.as_str(), h.port))
            .collect()
    }

    #[test]
    fn reads_a_single_host_url() {
        let url =
            PgUrl::parse("postgres://alice:s3cr3t@db.example:5433/app?sslmode=require").unwrap();
        assert_eq!(hosts(&url), [("db.example", Some(5433))]);
        assert_eq!(url.dbname(), Some("app"));
        assert_eq!(url.secrets(), ["s3cr3t"]);
        assert_eq!(
            url.redacted(),
            "postgres://alice:***@db.example:5433/app?sslmode=require"
        );
        let url = PgUrl::parse("postgresql:///app").unwrap();
        assert!(url.hosts().is_empty());
        assert_eq!(url.redacted(), "postgresql:///app");
    }

    #[test]
    fn reads_hosts_in_the_authority() {
        let url = PgUrl::parse(
            "postgres://app@db1:5432,db2:5433,[::1]:5434,db4/handshake?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(
            hosts(&url),
            [
                ("db1", Some(5432)),
                ("db2", Some(5433)),
                ("::1", Some(5434)),
                ("db4", None)
            ]
        );
        assert_eq!(url.dbname(), Some("handshake"));
        // No password: none shown.
        assert_eq!(
            url.redacted(),
            "postgres://app@db1:5432,db2:5433,[::1]:5434,db4/handshake?target_session_attrs=read-write"
        );
    }

    #[test]
    fn reads_hosts_in_parameters() {
        for query in [
            "host=db1&host=db2&port=5432&port=5433",
            "host=db1,db2&port=5432,5433",
            "host=db1&port=5432&host=db2&port=5433",
        ] {
            let url = PgUrl::parse(&format!("postgres://app@/handshake?{query}")).unwrap();
            assert_eq!(
                hosts(&url),
                [("db1", Some(5432)), ("db2", Some(5433))],
                "{query}"
            );
            assert_eq!(
                url.as_str(),
                "postgres://app@db1:5432,db2:5433/handshake",
                "{query}"
            );
        }
        // One port for every host; a socket directory as a host.
        let url = PgUrl::parse(
            "postgresql:///db?host=/var/run/postgresql&host=db2&port=6000&load_balance_hosts=random",
        )
        .unwrap();
        assert_eq!(
            hosts(&url),
            [("/var/run/postgresql", Some(6000)), ("db2", Some(6000))]
        );
        assert_eq!(
            url.as_str(),
            "postgresql://%2Fvar%2Frun%2Fpostgresql:6000,db2:6000/db?load_balance_hosts=random"
        );
        // A port alone: the default host.
        let url = PgUrl::parse("postgres:///db?port=5439").unwrap();
        assert_eq!(hosts(&url), [("", Some(5439))]);
    }

    #[test]
    fn what_libpq_gets_reads_back_the_same() {
        for raw in [
            "postgres://u:At@Pass@h1:1,h2:2/d%20b?options=-csearch_path%3Ds&application_name=a+b",
            "postgresql://u%3Ax:p%2Fw@[fe80::1%25eth0]:5432/db?password=x%26y&sslpassword=z",
            "postgres:///db?host=",
            "postgres:///db?host=a,b&port=1",
        ] {
            let url = PgUrl::parse(raw).unwrap();
            let again = PgUrl::parse(url.as_str()).unwrap();
            assert_eq!(again, url, "{raw}");
            assert_eq!(
                PgUrl::parse(&url.redacted()).unwrap().redacted(),
                url.redacted()
            );
        }
        let url = PgUrl::parse("postgres://u:At@Pass@h/db").unwrap();
        assert_eq!(url.secrets(), ["At@Pass"]);
        assert_eq!(url.as_str(), "postgres://u:At%40Pass@h/db");
        // `+` is not a space to libpq.
        let url = PgUrl::parse("postgres://h/db?application_name=a+b").unwrap();
        assert_eq!(url.as_str(), "postgres://h/db?application_name=a%2Bb");
    }

    #[test]
    fn redacts_every_password() {
        let url =
            PgUrl::parse("postgres://u:pw1@h1,h2/db?password=pw2&sslpassword=pw3&sslmode=require")
                .unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://u:***@h1,h2/db?password=***&sslpassword=***&sslmode=require"
        );
        assert_eq!(url.secrets(), ["pw1", "pw2", "pw3"]);
        assert!(!format!("{url:?}").contains("pw"));
    }

    #[test]
    fn refuses_what_libpq_would_read_otherwise() {
        for (url, says) in [
            (
                "postgres://u:secret@h:abc/db",
                "invalid port number for host 1",
            ),
            (
                "postgres://u@h1:5432,h2:99999/db",
                "invalid port number for host 2",
            ),
            ("postgres://u@h1:0/db", "invalid port number"),
            ("postgres://u@[::1/db", "without its `]`"),
            (
                "postgres://u@h/db?target_session_attrs=master",
                "target_session_attrs",
            ),
            (
                "postgres://u@h/db?load_balance_hosts=yes",
                "load_balance_hosts",
            ),
            ("postgres://u@h/db?host=h2", "in one place"),
            ("postgres://u@h:1/db?port=2", "in one place"),
            ("postgres:///db?host=a,b,c&port=1,2", "2 ports for 3 hosts"),
            ("postgres://u:Bad%zzsecret@h/db", "the password has a `%`"),
            ("postgres://u@h/db?sslmode", "has no `=`"),
            ("postgres://u:Hash#secret@h/db", "%23"),
            ("postgres://u@h/d%00b", "NUL"),
        ] {
            let err = PgUrl::parse(url).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, StorageError::Validation(_)), "{url}: {text}");
            assert!(text.contains(says), "{url}: {text}");
            assert!(!text.contains("secret"), "{url}: {text}");
        }
    }
}
