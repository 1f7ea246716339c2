//! Feature `tracing`: what a store tells a `tracing` subscriber.
//!
//! - One INFO span per `Storage` call, named after the method, with the
//!   OpenTelemetry database attributes: `db.system.name` (`sqlite` or
//!   `postgresql`), `db.namespace` (the database name, never a URL),
//!   `db.operation.name` (the method), `db.collection.name` (its main
//!   table), `db.response.returned_rows` (reads) or
//!   `db.response.affected_rows` (writes), and `error.type` (the error
//!   kind) when it fails. Made by [`Tracer`], a [`StorageHook`] that `open`
//!   puts around every store.
//! - A WARN event with the same fields and `duration_ms` when a call takes
//!   longer than `StorageConfig::slow_call_threshold`.
//! - One DEBUG event per statement (`db.query.text`, its SQL without bind
//!   values, cut at 2 KiB; `duration_us`; `failed`), from a Diesel
//!   instrumentation on every pooled connection that passes each event on
//!   to the instrumentation that was there before it (the PostgreSQL pool's
//!   own, and the application's default one).
//!
//! No id, text, JSON value, bind value, error message or URL reaches a
//! subscriber: only names, counts, kinds and durations.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};

use crate::calls::{Call, CallKind, CallOutcome, Hooked, SpanTarget, StorageHook};
use crate::config::{DatabaseUrl, StorageConfig};
use crate::error::StorageResult;
use crate::storage::Storage;

/// Statement text longer than this is cut (at a character boundary).
const MAX_SQL_TEXT: usize = 2048;

/// The hook that traces a store's calls.
#[derive(Debug)]
pub struct Tracer {
    target: SpanTarget,
    slow_call_threshold: Option<Duration>,
}

impl StorageHook for Tracer {
    fn call<T: CallOutcome>(
        &self,
        call: &Call,
        run: impl FnOnce() -> StorageResult<T>,
    ) -> StorageResult<T> {
        let span = (call.span)(&self.target, call);
        let started = self.slow_call_threshold.map(|_| Instant::now());
        let result = span.in_scope(run);
        let rows = result.as_ref().ok().and_then(CallOutcome::rows);
        let error_type = result.as_ref().err().map(|e| e.kind().as_str());
        if let Some(rows) = rows {
            match call.kind {
                CallKind::Read => {
                    span.record("db.response.returned_rows", rows);
                }
                CallKind::Write => {
                    span.record("db.response.affected_rows", rows);
                }
                CallKind::Admin => {}
            }
        }
        if let Some(error_type) = error_type {
            span.record("error.type", error_type);
        }
        if let (Some(started), Some(threshold)) = (started, self.slow_call_threshold) {
            let elapsed = started.elapsed();
            if elapsed >= threshold {
                // (A plain field comes first: a string literal there would
                // be taken for the message.)
                tracing::warn!(
                    parent: &span,
                    duration_ms = elapsed.as_millis() as u64,
                    "db.system.name" = self.target.system,
                    "db.namespace" = self.target.namespace.as_deref(),
                    "db.operation.name" = call.method,
                    "db.collection.name" = call.collection,
                    "db.response.rows" = rows,
                    "error.type" = error_type,
                    threshold_ms = threshold.as_millis() as u64,
                    "slow storage call"
                );
            }
        }
        result
    }
}

/// `store` (opened from `url`) with one span per call, as [`crate::open`]
/// returns it with this feature: for a store built without that step
/// (the conformance harness's, or one behind a hook of the caller's own).
/// Only the database name of `url` is kept (`db.namespace`); `config`
/// gives the slow-call threshold. A store from `open` is traced already:
/// wrapping it again gives two spans per call.
pub fn trace(
    store: Arc<dyn Storage>,
    url: &str,
    config: &StorageConfig,
) -> StorageResult<Arc<dyn Storage>> {
    Ok(traced(store, &DatabaseUrl::parse(url)?, config))
}

/// `store` (opened from `url`) with its calls traced.
pub(crate) fn traced(
    store: Arc<dyn Storage>,
    url: &DatabaseUrl,
    config: &StorageConfig,
) -> Arc<dyn Storage> {
    let tracer = Tracer {
        target: SpanTarget {
            system: match store.backend() {
                crate::types::Backend::Sqlite => "sqlite",
                crate::types::Backend::Postgres => "postgresql",
            },
            namespace: namespace(url),
        },
        slow_call_threshold: config.slow_call_threshold,
    };
    Arc::new(Hooked::new(store, tracer))
}

/// The database's name: a SQLite file's name (not its path), `:memory:`,
/// or the database a PostgreSQL URL names (never the URL).
fn namespace(url: &DatabaseUrl) -> Option<String> {
    match url {
        DatabaseUrl::SqliteMemory => Some(":memory:".into()),
        DatabaseUrl::SqliteFile(path) => path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned()),
        DatabaseUrl::Postgres(url) => url.dbname().map(String::from),
    }
}

/// The Diesel instrumentation that sends a DEBUG event per statement and
/// passes every event on to `next`.
pub(crate) struct StatementEvents {
    next: Option<Box<dyn Instrumentation>>,
    started: Option<Instant>,
}

impl StatementEvents {
    pub(crate) fn new(next: Option<Box<dyn Instrumentation>>) -> Self {
        StatementEvents {
            next,
            started: None,
        }
    }
}

impl Instrumentation for StatementEvents {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::StartQuery { .. } => self.started = Some(Instant::now()),
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                let duration = self.started.take().map(|s| s.elapsed());
                // The fields are evaluated only when the event is enabled.
                tracing::debug!(
                    failed = error.is_some(),
                    "db.query.text" = sql_text(query).as_str(),
                    duration_us = duration.map(|d| d.as_micros() as u64),
                    "statement"
                );
            }
            _ => {}
        }
        if let Some(next) = &mut self.next {
            next.on_connection_event(event);
        }
    }
}

/// A statement's SQL without its bind values, cut at [`MAX_SQL_TEXT`].
/// Diesel displays a statement as `SQL -- binds: [values]`; the writer
/// stops at the first ` -- binds: ` (the SQL text holds no values: every
/// value is a bind), so the values are never even formatted.
fn sql_text(query: &(impl std::fmt::Display + ?Sized)) -> String {
    let mut out = SqlText::default();
    let _ = write!(out, "{query}");
    let mut text = out.text;
    if let Some(binds) = text.find(BINDS) {
        text.truncate(binds);
    }
    if out.cut {
        text.push('…');
    }
    text
}

const BINDS: &str = " -- binds: ";

#[derive(Default)]
struct SqlText {
    text: String,
    cut: bool,
}

impl std::fmt::Write for SqlText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if s.starts_with(BINDS) {
            return Err(std::fmt::Error);
        }
        let room = MAX_SQL_TEXT.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&s[..end]);
        self.cut = true;
        Err(std::fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Shown(&'static str);

    impl std::fmt::Display for Shown {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} -- binds: {:?}", self.0, ["secret value -- binds: x"])
        }
    }

    #[test]
    fn sql_text_drops_binds_and_cuts_long_text() {
        assert_eq!(sql_text(&Shown("SELECT 1")), "SELECT 1");
        let long: &'static str = Box::leak("é".repeat(3000).into_boxed_str());
        let text = sql_text(&Shown(long));
        assert!(
            text.len() <= MAX_SQL_TEXT + '…'.len_utf8(),
            "{}",
            text.len()
        );
        assert!(text.ends_with('…') && !text.contains("secret"));
        assert_eq!(
            sql_text(&"PRAGMA foreign_keys = ON;"),
            "PRAGMA foreign_keys = ON;"
        );
    }

    #[test]
    fn namespace_is_a_name_never_a_url() {
        let pg = DatabaseUrl::parse("postgres://u:pw@h:5432/app%20db?password=x").unwrap();
        assert_eq!(namespace(&pg).as_deref(), Some("app db"));
        let file = DatabaseUrl::parse("sqlite:///home/someone/data/handshake.db").unwrap();
        assert_eq!(namespace(&file).as_deref(), Some("handshake.db"));
        assert_eq!(
            namespace(&DatabaseUrl::parse("sqlite::memory:").unwrap()).as_deref(),
            Some(":memory:")
        );
        assert_eq!(
            namespace(&DatabaseUrl::parse("postgres://u@h").unwrap()),
            None
        );
    }
}
