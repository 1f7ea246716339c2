//! Reading database URLs and store settings. Nothing here touches a
//! database; it decides which backend a URL names and how to open it.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{StorageError, StorageResult};

/// Where `open_from_env` goes when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/handshake.db";

/// A database URL, classified by backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DatabaseUrl {
    /// `sqlite::memory:` or `:memory:`: one private in-memory database.
    SqliteMemory,
    /// `sqlite://path`, `sqlite:path` or a plain file path.
    SqliteFile(PathBuf),
    /// `postgres://...` or `postgresql://...`, parsed once here.
    Postgres(PgUrl),
}

/// A PostgreSQL URL as libpq will read it: parsed once by
/// [`DatabaseUrl::parse`] and handed down, so every connection of a store
/// gets the same normalised text. Normalising matters for secrets: libpq
/// ends the user info at the first `@`, the URL parser at the last, so an
/// unescaped `@` in a password would otherwise make libpq name the rest of
/// the password as the host in its error.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PgUrl(url::Url);

impl PgUrl {
    pub(crate) fn parse(url: &str) -> StorageResult<Self> {
        url::Url::parse(url).map(PgUrl).map_err(|e| {
            StorageError::validation(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
        })
    }

    /// The normalised URL, password included: for libpq only, never for a
    /// message (use [`PgUrl::redacted`]).
    #[cfg(any(feature = "postgres", feature = "testing"))]
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The URL with its passwords replaced by `***`.
    pub(crate) fn redacted(&self) -> String {
        redact_url(self.0.as_str())
    }

    /// A copy with the query parameter `key=value` added.
    #[cfg(feature = "postgres")]
    pub(crate) fn with_param(&self, key: &str, value: &str) -> Self {
        let mut url = self.0.clone();
        url.query_pairs_mut().append_pair(key, value);
        PgUrl(url)
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn has_param(&self, key: &str) -> bool {
        self.0.query_pairs().any(|(k, _)| k == key)
    }
}

/// Never shows the password.
impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgUrl({})", self.redacted())
    }
}

impl DatabaseUrl {
    /// The cargo feature that serves this URL's backend.
    pub(crate) fn feature(&self) -> &'static str {
        match self {
            DatabaseUrl::Postgres(_) => "postgres",
            _ => "sqlite",
        }
    }

    pub(crate) fn parse(url: &str) -> StorageResult<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(StorageError::validation("the database URL is empty"));
        }
        if url.contains('\0') {
            return Err(StorageError::validation(
                "the database URL contains a NUL byte",
            ));
        }
        if url == "sqlite::memory:" || url == ":memory:" || url == "sqlite://:memory:" {
            return Ok(DatabaseUrl::SqliteMemory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(PgUrl::parse(url)?));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(StorageError::validation(
                    "a sqlite URL needs a file path, e.g. sqlite://data/handshake.db",
                ));
            }
            return Ok(DatabaseUrl::SqliteFile(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(StorageError::validation(format!(
                "unsupported database URL scheme {scheme:?} in {}: expected sqlite://, \
                 postgres:// or postgresql://",
                redact_url(url)
            )));
        }
        if url.contains('=') && url.contains(char::is_whitespace) {
            return Err(StorageError::validation(
                "this looks like a libpq `key=value` connection string; \
                 give a postgres:// URL instead",
            ));
        }
        Ok(DatabaseUrl::SqliteFile(PathBuf::from(url)))
    }
}

/// Query parameters that carry a secret in a libpq URL.
const SECRET_PARAMS: [&str; 2] = ["password", "sslpassword"];

/// `url` with its passwords (in the user part and in `password=` /
/// `sslpassword=` parameters) replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
            return "<url hidden>".into();
        }
        if parsed
            .query_pairs()
            .any(|(k, _)| SECRET_PARAMS.contains(&k.as_ref()))
        {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if SECRET_PARAMS.contains(&k.as_ref()) {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        return parsed.to_string();
    }
    // Not a URL the parser understands: cut out anything between the
    // scheme's `//user:` and the last `@` before the host, and every
    // secret parameter's value.
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start + 3 => {
            let userinfo = &url[start + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..start + 3], &url[at..])
        }
        _ => url.to_string(),
    };
    for param in SECRET_PARAMS {
        let key = format!("{param}=");
        let mut from = 0;
        while let Some(pos) = out[from..].find(&key).map(|p| p + from + key.len()) {
            let end = out[pos..]
                .find(|c: char| c == '&' || c.is_whitespace())
                .map_or(out.len(), |e| e + pos);
            out.replace_range(pos..end, "***");
            from = pos + 3;
        }
    }
    out
}

/// A driver's `message` made fit for our errors: the password of `url`
/// (raw and percent-decoded) cut out, and folded onto one line (libpq's
/// messages span several).
#[cfg(any(feature = "postgres", feature = "fuzzing", test))]
pub(crate) fn scrub_secrets(message: &str, url: &str) -> String {
    let message = crate::error::one_line(message);
    let mut secrets = url_secrets(url);
    // Longest first, so no secret is cut while a longer one holds it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.replace(url, &redact_url(url));
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = if secret.len() >= 3 {
            out.replace(secret.as_str(), "***")
        } else {
            // A one- or two-character password is cut only where it stands
            // alone, so that "pw" does not also blank out "pwd".
            replace_standalone(&out, secret)
        };
    }
    out
}

/// `text` with every occurrence of `word` that is not part of a longer run
/// of letters and digits replaced by `***`.
#[cfg(any(feature = "postgres", feature = "fuzzing", test))]
fn replace_standalone(text: &str, word: &str) -> String {
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (pos, _) in text.match_indices(word) {
        let end = pos + word.len();
        if pos < rest
            || is_word(text[..pos].chars().next_back())
            || is_word(text[end..].chars().next())
        {
            continue;
        }
        out.push_str(&text[rest..pos]);
        out.push_str("***");
        rest = end;
    }
    out.push_str(&text[rest..]);
    out
}

/// The secrets `url` carries (the user-part password and every secret
/// parameter), as the URL spells them and percent-decoded. Read both by the
/// URL parser and as text, so a URL the parser refuses gives them up too.
#[cfg(any(feature = "postgres", feature = "fuzzing", test))]
fn url_secrets(url: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    if let Ok(parsed) = url::Url::parse(url) {
        raw.extend(parsed.password().map(String::from));
        raw.extend(
            parsed
                .query()
                .unwrap_or_default()
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .filter(|(k, _)| SECRET_PARAMS.contains(k))
                .map(|(_, v)| v.to_string()),
        );
    }
    if let Some(start) = url.find("://").map(|i| i + 3) {
        // An unescaped `@` may sit in the password or after the host.
        for at in [url[start..].find('@'), url[start..].rfind('@')]
            .into_iter()
            .flatten()
        {
            raw.extend(
                url[start..start + at]
                    .split_once(':')
                    .map(|(_, p)| p.to_string()),
            );
        }
    }
    for param in SECRET_PARAMS {
        let key = format!("{param}=");
        for (pos, _) in url.match_indices(&key) {
            if pos > 0 && matches!(url.as_bytes()[pos - 1], b'?' | b'&') {
                let value = &url[pos + key.len()..];
                let end = value
                    .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
                    .unwrap_or(value.len());
                raw.push(value[..end].to_string());
            }
        }
    }
    let decoded: Vec<String> = raw
        .iter()
        .flat_map(|r| {
            url::form_urlencoded::parse(format!("p={r}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    raw.extend(decoded);
    raw
}

/// Settings for `open_with_config`. The defaults suit a desktop app: a small
/// pool, a short wait for a connection, and SQLite writers that wait up to
/// ten seconds for each other instead of failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// Most connections the pool holds (SQLite in-memory databases always
    /// use one).
    pub pool_size: u32,
    /// How long a call waits for a free connection, and how long `open`
    /// waits for the first one.
    pub connection_timeout: Duration,
    /// How long a SQLite writer waits for the write lock.
    pub sqlite_busy_timeout: Duration,
    /// Whether `open` applies pending migrations.
    pub run_migrations: bool,
    /// With feature `tracing`: a call that takes at least this long is
    /// logged as a WARN event (`None`: never).
    pub slow_call_threshold: Option<Duration>,
    /// Read replicas (PostgreSQL only; none by default).
    pub replicas: crate::replicas::ReplicaConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            pool_size: 8,
            connection_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(10),
            run_migrations: true,
            slow_call_threshold: Some(Duration::from_secs(1)),
            replicas: Default::default(),
        }
    }
}

impl StorageConfig {
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }

    pub fn slow_call_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.slow_call_threshold = threshold;
        self
    }

    pub(crate) fn validate(&self) -> StorageResult<()> {
        const DAY: Duration = Duration::from_secs(24 * 60 * 60);
        if !(1..=1024).contains(&self.pool_size) {
            return Err(StorageError::validation(format!(
                "pool_size must be between 1 and 1024, got {}",
                self.pool_size
            )));
        }
        for (name, value) in [
            ("connection_timeout", self.connection_timeout),
            ("sqlite_busy_timeout", self.sqlite_busy_timeout),
        ] {
            if value < Duration::from_millis(1) || value > DAY {
                return Err(StorageError::validation(format!(
                    "{name} must be between 1 ms and 24 hours, got {value:?}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap(),
            DatabaseUrl::SqliteMemory
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/handshake.db").unwrap(),
            DatabaseUrl::SqliteFile("data/handshake.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::SqliteFile("/tmp/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("./local.db").unwrap(),
            DatabaseUrl::SqliteFile("./local.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u:p@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(matches!(
            DatabaseUrl::parse("mysql://root@h/db"),
            Err(StorageError::Validation(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse(""),
            Err(StorageError::Validation(_))
        ));
    }

    #[test]
    fn redaction_hides_passwords() {
        let r = redact_url("postgres://alice:s3cr3t@db.example:5432/app");
        assert!(!r.contains("s3cr3t"), "{r}");
        assert!(r.contains("alice"), "{r}");
        let r = redact_url("postgres://alice:s3cr%40t@[bad/app");
        assert!(!r.contains("s3cr"), "{r}");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        let r = redact_url("postgres://u@h/db?sslmode=require&password=qs3cret&x=1");
        assert!(
            !r.contains("qs3cret") && r.contains("sslmode=require"),
            "{r}"
        );
        let r = redact_url("postgres://u@[bad/db?password=qs3cret&x=1");
        assert!(!r.contains("qs3cret"), "{r}");
        let m = scrub_secrets(
            "failed for qs3cret\n  and more",
            "postgres://u@h/db?password=qs3cret",
        );
        assert_eq!(m, "failed for *** and more");
        let m = scrub_secrets(
            "bad password q%3As3cret (q:s3cret)",
            "postgres://u@h/db?password=q%3As3cret",
        );
        assert_eq!(m, "bad password *** (***)");
        // A URL the parser refuses still gives up its password.
        let url = "postgresql://alice:s3cr%3At@[db.example/app";
        let m = scrub_secrets(&format!("no {url}: s3cr:t or s3cr%3At"), url);
        assert!(!m.contains("s3cr"), "{m}");
        // A short password is cut where it stands alone, not inside words.
        let m = scrub_secrets(
            "host \"pw@db\" unknown; pwd ok; password pw",
            "postgres://u:pw@db/x",
        );
        assert_eq!(m, "host \"***@db\" unknown; pwd ok; password ***");
    }
}
