//! Reading database URLs and store settings. Nothing here touches a
//! database; it decides which backend a URL names and how to open it.
//! The read-replica settings, part of `StorageConfig`, are `replicas.rs`;
//! PostgreSQL URLs (several hosts included) are parsed by `pg_url.rs`.

mod pg_options;
mod pg_url;
mod replicas;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{StorageError, StorageResult};

#[cfg(feature = "postgres")]
pub(crate) use pg_url::PgHost;
pub(crate) use pg_url::PgUrl;
use pg_url::SECRET_PARAMS;
pub(crate) use replicas::replica_urls_from_env;
pub use replicas::{ReplicaConfig, REPLICA_URLS_ENV};

/// Where `open_from_env` goes when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/handshake.db";

/// A database URL, classified by backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DatabaseUrl {
    /// `sqlite::memory:` or `:memory:`: one private in-memory database.
    SqliteMemory,
    /// `sqlite://path`, `sqlite:path` or a plain file path.
    SqliteFile(PathBuf),
    /// `postgres://...` or `postgresql://...`, parsed once here (see
    /// [`PgUrl`]; several hosts allowed).
    Postgres(PgUrl),
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

/// `url` with its passwords (in the user part and in `password=` /
/// `sslpassword=` parameters) replaced by `***`, for messages. A URL
/// without a password shows none. A PostgreSQL URL, multi-host forms
/// included, is shown as the store reads it.
pub fn redact_url(url: &str) -> String {
    match PgUrl::parse_parts(url.trim()) {
        Ok(url) => url.redacted(),
        Err(_) => redact_text(url),
    }
}

/// [`redact_url`] for text that is not a PostgreSQL URL we can read:
/// through the `url` crate when it reads it, else by cutting text.
fn redact_text(url: &str) -> String {
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
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..start + 3], &url[at..]),
                None => url.to_string(),
            }
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
    if let Ok(parsed) = PgUrl::parse_parts(url.trim()) {
        raw.extend(parsed.secrets().into_iter().map(String::from));
    }
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
    /// Whether `open` applies pending migrations (else it checks that
    /// none is pending; see [`StorageConfig::run_migrations`]).
    pub run_migrations: bool,
    /// With feature `tracing`: a call that takes at least this long is
    /// logged as a WARN event (`None`: never).
    pub slow_call_threshold: Option<Duration>,
    /// Read replicas (PostgreSQL only; none by default).
    pub replicas: ReplicaConfig,
    /// Longest a statement may run (PostgreSQL's `statement_timeout`; on
    /// SQLite a progress handler that interrupts the statement). `None`,
    /// the default: the server's setting, or no bound on SQLite.
    pub statement_timeout: Option<Duration>,
    /// Longest a statement may wait for a lock (PostgreSQL's
    /// `lock_timeout`; on SQLite it replaces `sqlite_busy_timeout`).
    /// `None`, the default: the server's setting, or the busy timeout.
    pub lock_timeout: Option<Duration>,
    /// SQLite's `PRAGMA synchronous` on every connection: how much a
    /// commit survives a power loss, and what it costs (default
    /// [`SqliteSynchronous::Full`]).
    pub sqlite_synchronous: SqliteSynchronous,
}

/// SQLite's `PRAGMA synchronous`, set on every pooled connection (the
/// store's SQLite files run in WAL mode). What each setting loses and costs:
///
/// - `Normal`: a commit is written to the WAL but not flushed to disk; the
///   WAL is flushed at checkpoints. The database is never corrupted, and a
///   crash of the process loses nothing, but a power loss or an operating
///   system crash may roll back the last commits before the latest
///   checkpoint. The cheapest: no flush per commit.
/// - `Full` (the default): every commit flushes the WAL (one `fsync`)
///   before it returns, so a commit that returned survives a power loss.
///   Each write call pays one flush; its cost is the disk's (see
///   docs/performance.md, "SQLite durability").
/// - `Extra`: as `Full`; in WAL mode SQLite also flushes the directory
///   after creating the WAL file, in case the file system does not
///   journal it. Costs about what `Full` costs.
///
/// PostgreSQL has no such setting here: its commits are durable unless the
/// server is configured otherwise (`synchronous_commit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SqliteSynchronous {
    /// `synchronous = NORMAL`: no flush per commit; a power loss may roll
    /// back the last commits.
    Normal,
    /// `synchronous = FULL`: each commit flushed before it returns.
    #[default]
    Full,
    /// `synchronous = EXTRA`: `Full`, and the directory flushed too.
    Extra,
}

impl SqliteSynchronous {
    /// The pragma's value as SQLite spells it (`NORMAL`, `FULL`, `EXTRA`).
    pub fn as_sql(self) -> &'static str {
        match self {
            SqliteSynchronous::Normal => "NORMAL",
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Extra => "EXTRA",
        }
    }

    /// The number `PRAGMA synchronous` reads back (1, 2, 3).
    pub fn pragma_value(self) -> i64 {
        match self {
            SqliteSynchronous::Normal => 1,
            SqliteSynchronous::Full => 2,
            SqliteSynchronous::Extra => 3,
        }
    }
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
            statement_timeout: None,
            lock_timeout: None,
            sqlite_synchronous: SqliteSynchronous::Full,
        }
    }
}

impl StorageConfig {
    /// Most connections the pool holds (default 8).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// How long a call waits for a free connection (default 10 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long a SQLite writer waits for the write lock (default 10 s).
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    /// Whether `open` applies pending migrations (default `true`). With
    /// `false` the store never issues DDL and `open` checks the schema
    /// instead: the applied migrations and the live schema fingerprint must
    /// be this build's, else `open` fails with `StorageError::Migration`
    /// saying what it found (run `hsk-storage migrate` as the owner). This is
    /// how an application runs as a role that may only read and write rows
    /// (`hsk-storage grant`).
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }

    /// With feature `tracing`: log calls that take at least this long (default
    /// 1 s; `None`: never).
    pub fn slow_call_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.slow_call_threshold = threshold;
        self
    }

    /// Bounds every statement's run time: one that runs longer fails with a
    /// `Database` error naming `statement_timeout`, its transaction rolled
    /// back. On PostgreSQL it is the server's `statement_timeout` (SQLSTATE
    /// 57014); on SQLite a progress handler interrupts the statement
    /// (`SQLITE_INTERRUPT`). Time spent waiting for a lock is bounded by
    /// [`lock_timeout`](Self::lock_timeout) instead on SQLite.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// Bounds every statement's wait for a lock: one that waits longer
    /// fails with a `Database` error naming `lock_timeout` (SQLSTATE
    /// 55P03), its transaction rolled back. On SQLite it is the busy
    /// timeout.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// SQLite's `PRAGMA synchronous` on every connection (default
    /// [`SqliteSynchronous::Full`]: a commit that returned survives a power
    /// loss). `Normal` skips the flush per commit, at the risk of losing the
    /// last commits to a power loss; see [`SqliteSynchronous`]. PostgreSQL
    /// ignores it.
    pub fn sqlite_synchronous(mut self, synchronous: SqliteSynchronous) -> Self {
        self.sqlite_synchronous = synchronous;
        self
    }

    /// How long a SQLite writer waits for the write lock: `lock_timeout`
    /// when set, else `sqlite_busy_timeout`.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn sqlite_lock_wait(&self) -> Duration {
        self.lock_timeout.unwrap_or(self.sqlite_busy_timeout)
    }

    pub(crate) fn validate(&self) -> StorageResult<()> {
        const DAY: Duration = Duration::from_secs(24 * 60 * 60);
        if !(1..=1024).contains(&self.pool_size) {
            return Err(StorageError::validation(format!(
                "pool_size must be between 1 and 1024, got {}",
                self.pool_size
            )));
        }
        let optional = [
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.lock_timeout),
        ];
        for (name, value) in [
            ("connection_timeout", self.connection_timeout),
            ("sqlite_busy_timeout", self.sqlite_busy_timeout),
        ]
        .into_iter()
        .chain(optional.into_iter().filter_map(|(n, v)| Some((n, v?))))
        {
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

    #[test]
    fn multi_host_urls_parse_and_redact() {
        let url = "postgres://app@db1:5432,db2:5432/handshake?target_session_attrs=read-write";
        let DatabaseUrl::Postgres(parsed) = DatabaseUrl::parse(url).unwrap() else {
            panic!("{url} is a PostgreSQL URL");
        };
        assert_eq!(parsed.hosts().len(), 2);
        // No password, none shown.
        assert_eq!(redact_url(url), url);
        let url = "postgresql:///handshake?host=db1&host=db2&port=5432&password=Pw-Secret";
        assert_eq!(
            redact_url(url),
            "postgresql://db1:5432,db2:5432/handshake?password=***"
        );
        let m = scrub_secrets("auth failed: Pw-Secret", url);
        assert_eq!(m, "auth failed: ***");
        // URLs we refuse: a password is cut, a missing one is not invented.
        let r = redact_url("postgres://app@db1:5432,db2:bad/handshake");
        assert_eq!(r, "postgres://app@db1:5432,db2:bad/handshake");
        let r = redact_url("postgres://app:Pw-Secret@db1:5432,db2:bad/handshake");
        assert_eq!(r, "postgres://app:***@db1:5432,db2:bad/handshake");
        let r = redact_url("postgres://app@db1,db2:x/h?password=Pw-Secret&sslpassword=Pw-2");
        assert!(!r.contains("Pw-") && !r.contains(":***@"), "{r}");
        let err = DatabaseUrl::parse("postgres://app:Pw-Secret@db1:5432,db2:bad/h").unwrap_err();
        assert!(
            matches!(&err, StorageError::Validation(m)
                if m.contains("app:***@") && m.contains("port number for host 2")),
            "{err}"
        );
    }
}
