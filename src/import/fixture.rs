//! Legacy databases for tests and benchmarks (feature `testing`): the
//! schema Handshake's nine migrations leave (`LEGACY.md` §2), spelled as
//! its DDL spells it on each backend, `_sqlx_migrations` with the real
//! checksums, and rows written in the legacy representation (timestamps
//! as Handshake's code writes them on each backend, JSON as text, ...).

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::connection::SimpleConnection;

use crate::conformance::TestTarget;
use crate::error::{StorageError, StorageResult};
use crate::types::Backend;

use super::recognise::{committed_checksums, crlf_checksum_prefixes};

/// Which build of Handshake's migrations made the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegacyBuild {
    /// Checksums of a CRLF (Windows) checkout instead of the committed
    /// files (the published 8-byte prefixes, then filler).
    pub crlf: bool,
    /// Migration 8 of efa3d04f: `ai_jobs` without `is_pinned`.
    pub lost_is_pinned: bool,
}

/// A value written into a legacy column, rendered per backend the way
/// Handshake's storage stores it.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    /// SQL NULL.
    Null,
    /// Text as stored (may hold a NUL byte on SQLite).
    Text(String),
    /// An integer.
    Int(i64),
    /// A float (PostgreSQL's `real` rounds it to f32, as Handshake's did).
    Real(f64),
    /// A timestamp as Handshake writes a bound `DateTime<Utc>`: RFC 3339
    /// with `+00:00` and the shortest of 0/3/6/9 fraction digits on
    /// SQLite; the UTC wall clock cut to microseconds on PostgreSQL.
    Time(DateTime<Utc>),
}

/// Shorthand for [`Lit::Text`].
pub fn text(value: impl Into<String>) -> Lit {
    Lit::Text(value.into())
}

/// A Handshake database made for a test, removed when dropped.
pub struct LegacyDatabase {
    url: String,
    backend: Backend,
    path: Option<PathBuf>,
    schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for LegacyDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, schema)) = &self.schema {
            let _ = crate::backend::scratch_schema_drop(admin_url, schema);
        }
    }
}

impl LegacyDatabase {
    /// An empty Handshake database at migration 9 (the build given) on the
    /// target's backend: a new SQLite file, or a new PostgreSQL schema.
    pub fn create(target: &TestTarget, build: LegacyBuild) -> StorageResult<Self> {
        let db = match target {
            TestTarget::Sqlite { parent } => {
                let mut builder = tempfile::Builder::new();
                builder.prefix("hsk-legacy-");
                let dir = match parent {
                    Some(p) => builder.tempdir_in(p),
                    None => builder.tempdir(),
                }
                .map_err(|e| StorageError::Database(format!("cannot create a temp dir: {e}")))?;
                let path = dir.path().join("handshake.db");
                LegacyDatabase {
                    url: format!("sqlite://{}", path.display()),
                    backend: Backend::Sqlite,
                    path: Some(path),
                    schema: None,
                    _dir: Some(dir),
                }
            }
            TestTarget::Postgres { admin_url }
            | TestTarget::PostgresWithReplicas { admin_url, .. }
            | TestTarget::PostgresLeastPrivilege { admin_url, .. } => {
                let created = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let schema = format!("hsk_test_{created}_{}", uuid::Uuid::new_v4().simple());
                let url = crate::backend::scratch_schema_create(admin_url, &schema)?;
                LegacyDatabase {
                    url,
                    backend: Backend::Postgres,
                    path: None,
                    schema: Some((admin_url.clone(), schema)),
                    _dir: None,
                }
            }
        };
        db.execute(&ddl(db.backend, build))?;
        db.execute(&migrations(db.backend, build))?;
        Ok(db)
    }

    /// The database's URL (may hold a password: never print it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend it is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file, if it is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The PostgreSQL schema holding it, if it is one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_ref().map(|(_, s)| s.as_str())
    }

    /// Runs SQL on it, in one transaction, as another program might.
    /// Foreign keys are not checked (SQLite `foreign_keys = OFF`,
    /// PostgreSQL `session_replication_role = replica`), so a test can
    /// plant a row whose parent is missing.
    pub fn execute(&self, sql: &str) -> StorageResult<()> {
        let err = |e: diesel::result::Error| {
            StorageError::Database(format!("legacy fixture: {e} in {}", cut(sql)))
        };
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                use diesel::Connection;
                let path = self.path.as_deref().unwrap_or(Path::new(""));
                let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())
                    .map_err(|e| StorageError::Database(format!("legacy fixture: {e}")))?;
                conn.batch_execute(&format!("PRAGMA foreign_keys = OFF; BEGIN; {sql}; COMMIT;"))
                    .map_err(err)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let url = crate::config::PgUrl::parse(&self.url)?;
                let mut conn = crate::backend::connect_postgres(&url)?;
                conn.batch_execute(&format!(
                    "SET TimeZone = 'UTC'; SET session_replication_role = replica; BEGIN; {sql}; COMMIT;"
                ))
                .map_err(err)
            }
            #[allow(unreachable_patterns)]
            other => Err(StorageError::Database(format!(
                "this build has no {other} backend"
            ))),
        }
    }

    /// Inserts rows (each a value per column) in statements of a few
    /// hundred rows, in one transaction.
    pub fn insert(&self, table: &str, columns: &[&str], rows: &[Vec<Lit>]) -> StorageResult<()> {
        let mut sql = String::new();
        for chunk in rows.chunks(200) {
            sql.push_str(&format!(
                "INSERT INTO {table} ({}) VALUES ",
                columns.join(", ")
            ));
            let values: Vec<String> = chunk
                .iter()
                .map(|row| {
                    let cells: Vec<String> = row.iter().map(|v| self.literal(v)).collect();
                    format!("({})", cells.join(", "))
                })
                .collect();
            sql.push_str(&values.join(", "));
            sql.push_str(";\n");
        }
        if sql.is_empty() {
            return Ok(());
        }
        self.execute(sql.trim_end().trim_end_matches(';'))
    }

    /// A value as an SQL literal of this backend.
    pub fn literal(&self, value: &Lit) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match value {
            Lit::Null => "NULL".into(),
            Lit::Int(v) => v.to_string(),
            Lit::Real(v) => format!("{v:?}"),
            Lit::Text(s) if self.backend == Backend::Sqlite && s.contains('\0') => s
                .split('\0')
                .map(quote)
                .collect::<Vec<_>>()
                .join(" || char(0) || "),
            Lit::Text(s) => quote(s),
            Lit::Time(at) => quote(&time_text(self.backend, *at)),
        }
    }
}

/// A timestamp as Handshake's storage writes it on `backend`.
pub fn time_text(backend: Backend, at: DateTime<Utc>) -> String {
    match backend {
        Backend::Sqlite => at.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        Backend::Postgres => at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
    }
}

fn cut(sql: &str) -> String {
    sql.chars().take(200).collect()
}

/// The tables of migration 9, as Handshake's DDL leaves them.
fn ddl(backend: Backend, build: LegacyBuild) -> String {
    let t5 = "last_job_id TEXT DEFAULT NULL, last_workflow_id TEXT DEFAULT NULL, \
              last_actor_id TEXT DEFAULT NULL, \
              edit_event_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000', \
              last_actor_kind TEXT NOT NULL DEFAULT 'SYSTEM', \
              CHECK (last_actor_kind <> 'AI' OR last_job_id IS NOT NULL)";
    let times = "created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
                 updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP";
    let (installed, blob) = match backend {
        Backend::Sqlite => ("TIMESTAMP", "BLOB"),
        Backend::Postgres => ("TIMESTAMPTZ", "BYTEA"),
    };
    let pinned = if build.lost_is_pinned {
        ""
    } else {
        "is_pinned INTEGER NOT NULL DEFAULT 0,"
    };
    let gc_index = if build.lost_is_pinned {
        ""
    } else {
        "CREATE INDEX idx_ai_jobs_gc ON ai_jobs (status, created_at, is_pinned);"
    };
    format!(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
           installed_on {installed} NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
           checksum {blob} NOT NULL, execution_time BIGINT NOT NULL);
         CREATE TABLE workspaces (id TEXT PRIMARY KEY, name TEXT NOT NULL, {times}, {t5});
         CREATE TABLE documents (id TEXT PRIMARY KEY, \
           workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE, \
           title TEXT NOT NULL, {times}, {t5});
         CREATE TABLE blocks (id TEXT PRIMARY KEY, \
           document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE, \
           kind TEXT NOT NULL, sequence INTEGER NOT NULL, raw_content TEXT NOT NULL, \
           display_content TEXT NOT NULL, derived_content TEXT NOT NULL, {times}, \
           last_job_id TEXT DEFAULT NULL, last_workflow_id TEXT DEFAULT NULL, \
           last_actor_id TEXT DEFAULT NULL, \
           edit_event_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000', \
           last_actor_kind TEXT NOT NULL DEFAULT 'SYSTEM', \
           sensitivity TEXT DEFAULT NULL, exportable INTEGER DEFAULT 1, \
           CHECK (last_actor_kind <> 'AI' OR last_job_id IS NOT NULL));
         CREATE TABLE canvases (id TEXT PRIMARY KEY, \
           workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE, \
           title TEXT NOT NULL, {times}, {t5});
         CREATE TABLE canvas_nodes (id TEXT PRIMARY KEY, \
           canvas_id TEXT NOT NULL REFERENCES canvases(id) ON DELETE CASCADE, \
           kind TEXT NOT NULL, position_x REAL NOT NULL, position_y REAL NOT NULL, \
           data TEXT NOT NULL, {times}, {t5});
         CREATE TABLE canvas_edges (id TEXT PRIMARY KEY, \
           canvas_id TEXT NOT NULL REFERENCES canvases(id) ON DELETE CASCADE, \
           from_node_id TEXT NOT NULL REFERENCES canvas_nodes(id) ON DELETE CASCADE, \
           to_node_id TEXT NOT NULL REFERENCES canvas_nodes(id) ON DELETE CASCADE, \
           kind TEXT NOT NULL, {times}, {t5});
         CREATE TABLE ai_jobs (id TEXT PRIMARY KEY NOT NULL, trace_id TEXT NOT NULL, \
           workflow_run_id TEXT, job_kind TEXT NOT NULL, status TEXT NOT NULL, \
           status_reason TEXT NOT NULL DEFAULT 'queued', error_message TEXT, \
           protocol_id TEXT NOT NULL, profile_id TEXT NOT NULL, capability_profile_id TEXT NOT NULL, \
           access_mode TEXT NOT NULL, safety_mode TEXT NOT NULL, \
           entity_refs TEXT NOT NULL DEFAULT '[]', planned_operations TEXT NOT NULL DEFAULT '[]', \
           metrics TEXT NOT NULL DEFAULT '{{\"duration_ms\":0,\"total_tokens\":0,\"input_tokens\":0,\"output_tokens\":0,\"tokens_planner\":0,\"tokens_executor\":0,\"entities_read\":0,\"entities_written\":0,\"validators_run_count\":0}}', \
           job_inputs TEXT, job_outputs TEXT, {pinned} {times});
         {gc_index}
         CREATE TABLE workflow_runs (id TEXT PRIMARY KEY NOT NULL, \
           job_id TEXT NOT NULL REFERENCES ai_jobs(id) ON DELETE CASCADE, status TEXT NOT NULL, \
           last_heartbeat TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, {times});
         CREATE TABLE workflow_node_executions (id TEXT PRIMARY KEY NOT NULL, \
           workflow_run_id TEXT NOT NULL REFERENCES workflow_runs(id) ON DELETE CASCADE, \
           node_id TEXT NOT NULL, node_type TEXT NOT NULL, status TEXT NOT NULL, \
           sequence INTEGER NOT NULL, input_payload TEXT, output_payload TEXT, error_message TEXT, \
           started_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, finished_at TIMESTAMP, {times});
         CREATE INDEX idx_wne_run_sequence ON workflow_node_executions (workflow_run_id, sequence);
         CREATE INDEX idx_wne_run_node ON workflow_node_executions (workflow_run_id, node_id);
         CREATE INDEX idx_wne_status ON workflow_node_executions (status)"
    )
}

/// `_sqlx_migrations` as sqlx fills it for versions 1..9 of `build`.
fn migrations(backend: Backend, build: LegacyBuild) -> String {
    const DESCRIPTIONS: [&str; 9] = [
        "init",
        "create ai core tables",
        "add is pinned",
        "mutation traceability",
        "add canvas traceability",
        "expand ai job model",
        "workflow persistence",
        "expand ai job model",
        "add block classification",
    ];
    let mut checksums = committed_checksums();
    if build.crlf {
        for (sum, prefix) in checksums.iter_mut().zip(crlf_checksum_prefixes()) {
            sum[..prefix.len()].copy_from_slice(&prefix);
            // What follows the published prefix is unknown; any filler.
            for b in &mut sum[prefix.len()..] {
                *b ^= 0x5a;
            }
        }
    }
    if build.lost_is_pinned {
        let prefix = [0xc3, 0xa5, 0xea, 0x60, 0x7d, 0x71, 0x36, 0x7b];
        checksums[7][..8].copy_from_slice(&prefix);
    }
    let rows: Vec<String> = checksums
        .iter()
        .zip(DESCRIPTIONS)
        .enumerate()
        .map(|(i, (sum, description))| {
            let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
            let bytes = match backend {
                Backend::Sqlite => format!("X'{hex}'"),
                Backend::Postgres => format!("decode('{hex}', 'hex')"),
            };
            format!(
                "({}, '{description}', TRUE, {bytes}, {})",
                i + 1,
                1_000_000 + i * 17
            )
        })
        .collect();
    format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES {}",
        rows.join(", ")
    )
}

/// The columns [`LegacyDatabase::insert`] is given by the fill functions,
/// per table.
pub mod cols {
    /// `workspaces`.
    pub const WORKSPACES: &[&str] = &[
        "id",
        "name",
        "created_at",
        "updated_at",
        "last_job_id",
        "last_workflow_id",
        "last_actor_id",
        "edit_event_id",
        "last_actor_kind",
    ];
    /// `documents` and `canvases` (their parent column second).
    pub const DOCUMENTS: &[&str] = &[
        "id",
        "workspace_id",
        "title",
        "created_at",
        "updated_at",
        "last_job_id",
        "last_workflow_id",
        "last_actor_id",
        "edit_event_id",
        "last_actor_kind",
    ];
    /// `blocks`.
    pub const BLOCKS: &[&str] = &[
        "id",
        "document_id",
        "kind",
        "sequence",
        "raw_content",
        "display_content",
        "derived_content",
        "created_at",
        "updated_at",
        "last_job_id",
        "last_workflow_id",
        "last_actor_id",
        "edit_event_id",
        "last_actor_kind",
        "sensitivity",
        "exportable",
    ];
    /// `canvas_nodes`.
    pub const NODES: &[&str] = &[
        "id",
        "canvas_id",
        "kind",
        "position_x",
        "position_y",
        "data",
        "created_at",
        "updated_at",
        "last_job_id",
        "last_workflow_id",
        "last_actor_id",
        "edit_event_id",
        "last_actor_kind",
    ];
    /// `canvas_edges`.
    pub const EDGES: &[&str] = &[
        "id",
        "canvas_id",
        "from_node_id",
        "to_node_id",
        "kind",
        "created_at",
        "updated_at",
        "last_job_id",
        "last_workflow_id",
        "last_actor_id",
        "edit_event_id",
        "last_actor_kind",
    ];
    /// `ai_jobs` without `is_pinned`.
    pub const JOBS: &[&str] = &[
        "id",
        "trace_id",
        "workflow_run_id",
        "job_kind",
        "status",
        "status_reason",
        "error_message",
        "protocol_id",
        "profile_id",
        "capability_profile_id",
        "access_mode",
        "safety_mode",
        "entity_refs",
        "planned_operations",
        "metrics",
        "job_inputs",
        "job_outputs",
        "created_at",
        "updated_at",
    ];
    /// `workflow_runs`.
    pub const RUNS: &[&str] = &[
        "id",
        "job_id",
        "status",
        "last_heartbeat",
        "created_at",
        "updated_at",
    ];
    /// `workflow_node_executions`.
    pub const EXECUTIONS: &[&str] = &[
        "id",
        "workflow_run_id",
        "node_id",
        "node_type",
        "status",
        "sequence",
        "input_payload",
        "output_payload",
        "error_message",
        "started_at",
        "finished_at",
        "created_at",
        "updated_at",
    ];
}

/// A fixed instant plus `micros` microseconds and `nanos` nanoseconds.
pub fn at(micros: i64, nanos: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_863_710 + micros / 1_000_000, 0).unwrap_or_default()
        + chrono::Duration::microseconds(micros % 1_000_000)
        + chrono::Duration::nanoseconds(i64::from(nanos))
}

/// Traceability of a row a person wrote (`HUMAN`, a fresh edit event).
pub fn human_stamp() -> Vec<Lit> {
    vec![
        Lit::Null,
        Lit::Null,
        Lit::Null,
        text(uuid::Uuid::new_v4().to_string()),
        text("HUMAN"),
    ]
}

/// Fills every table of `db` with `blocks` blocks in one document and
/// `jobs` jobs, each with one run and one node execution, as Handshake
/// writes them (for benchmarks and interruption tests).
pub fn fill_bulk(db: &LegacyDatabase, jobs: usize, blocks: usize) -> StorageResult<()> {
    let t = Lit::Time(at(0, 919_430_632));
    let ws = "99a476a8-e9d0-46ec-9905-d04332a6d3f4";
    let doc = "ec65c366-4d1e-4549-90f9-f0449478ec13";
    let canvas = "11a509ae-5eeb-4329-91e1-630566761201";
    let content = |id: &str, parent: Option<&str>, title: &str| {
        let mut row = vec![text(id)];
        row.extend(parent.map(text));
        row.extend([text(title), t.clone(), t.clone()]);
        row.extend(human_stamp());
        row
    };
    db.insert(
        "workspaces",
        cols::WORKSPACES,
        &[content(ws, None, "Research")],
    )?;
    db.insert(
        "documents",
        cols::DOCUMENTS,
        &[content(doc, Some(ws), "Notes")],
    )?;
    db.insert(
        "canvases",
        cols::DOCUMENTS,
        &[content(canvas, Some(ws), "Board")],
    )?;
    for start in (0..blocks).step_by(10_000) {
        let rows: Vec<Vec<Lit>> = (start..blocks.min(start + 10_000))
            .map(|k| {
                let mut row = vec![
                    text(format!("b-{k:07}")),
                    text(doc),
                    text("paragraph"),
                    Lit::Int(k as i64),
                    text(format!("block {k} with *some* text ✓")),
                    text(format!("block {k} with some text ✓")),
                    text(format!("{{\"k\":{k}}}")),
                    Lit::Time(at(k as i64, 0)),
                    Lit::Time(at(k as i64, 0)),
                ];
                row.extend(human_stamp());
                row.extend([Lit::Null, Lit::Int(1)]);
                row
            })
            .collect();
        db.insert("blocks", cols::BLOCKS, &rows)?;
    }
    for start in (0..jobs).step_by(5_000) {
        let range = start..jobs.min(start + 5_000);
        let id = |kind: u8, k: usize| format!("{:08x}-0000-4000-8000-{kind:02x}{k:010x}", k);
        let job_rows: Vec<Vec<Lit>> = range
            .clone()
            .map(|k| {
                vec![
                    text(id(1, k)),
                    text(id(1, k)),
                    text(id(2, k)),
                    text("doc_summarize"),
                    text("completed"),
                    text("completed"),
                    Lit::Null,
                    text("protocol-default"),
                    text("default"),
                    text("cap-doc"),
                    text("analysis_only"),
                    text("normal"),
                    text(format!("[{{\"entity_id\":\"{doc}\",\"entity_kind\":\"document\"}}]")),
                    text("[]"),
                    text("{\"duration_ms\":12,\"total_tokens\":34,\"input_tokens\":0,\"output_tokens\":0,\"tokens_planner\":0,\"tokens_executor\":0,\"entities_read\":1,\"entities_written\":0,\"validators_run_count\":0}"),
                    text(format!("{{\"doc_id\":\"{doc}\"}}")),
                    text("{\"summary\":\"…\"}"),
                    Lit::Time(at(k as i64, 37_321_944)),
                    Lit::Time(at(k as i64 + 1, 118_116_233)),
                ]
            })
            .collect();
        db.insert("ai_jobs", cols::JOBS, &job_rows)?;
        let run_rows: Vec<Vec<Lit>> = range
            .clone()
            .map(|k| {
                vec![
                    text(id(2, k)),
                    text(id(1, k)),
                    text("completed"),
                    Lit::Time(at(k as i64, 65_745_481)),
                    text("2026-01-08 09:20:03"),
                    Lit::Time(at(k as i64, 111_475_612)),
                ]
            })
            .collect();
        db.insert("workflow_runs", cols::RUNS, &run_rows)?;
        let execution_rows: Vec<Vec<Lit>> = range
            .map(|k| {
                vec![
                    text(id(3, k)),
                    text(id(2, k)),
                    text(id(1, k)),
                    text("doc_summarize"),
                    text("completed"),
                    Lit::Int(1),
                    text(format!("{{\"doc_id\":\"{doc}\"}}")),
                    text("{\"summary\":\"…\"}"),
                    Lit::Null,
                    Lit::Time(at(k as i64, 79_300_419)),
                    Lit::Time(at(k as i64, 86_208_121)),
                    text("2026-01-08 09:20:03"),
                    Lit::Time(at(k as i64, 86_208_121)),
                ]
            })
            .collect();
        db.insert(
            "workflow_node_executions",
            cols::EXECUTIONS,
            &execution_rows,
        )?;
    }
    Ok(())
}
