//! The benchmarks' baseline: the store's hot paths written by hand as raw
//! SQL through the same driver, for `crate::bench` to measure the store
//! against (the trait is `seeding::Baseline`). Like `store.rs`, this file is written once and compiled per
//! backend (`#[path]` from `sqlite.rs` and `postgres.rs`), so the SQL text
//! is the same on both; `?` marks a bind parameter (`$n` on PostgreSQL).
//!
//! What makes it a fair floor: a pool of the same size with no checkout
//! query, prepared statements cached by the driver connection (by SQL
//! text), one transaction per multi-statement call, and bulk rows sent the
//! store's way: multi-row INSERTs sized to the bind-parameter limit, or one
//! binary COPY (the copier's encoder) from the same number of rows on
//! (`store::copies`). Rows are decoded into plain tuples: the baseline
//! skips the store's conversion into domain types.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::expression::Expression;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::r2d2::{Pool, PooledConnection};
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text};
use uuid::Uuid;

use super::schema::ai_jobs;
use super::{
    read_tx, write_tx, Conn, DbBackend, Manager, BACKEND, COPY_FROM_ROWS, MAX_BIND_PARAMS,
};
use crate::backend::copy_end::{Record, Table, WriteRecords};
use crate::backend::fields::{DbJson, DbTime, DbUuid};
use crate::backend::from_diesel;
use crate::backend::seeding::sql;
use crate::backend::seeding::{Baseline, BulkMethod};
use crate::error::{StorageError, StorageResult};
use crate::kernel::NewKernelEvent;
use crate::types::*;

type SqlUuid = <ai_jobs::id as Expression>::SqlType;
type SqlTime = <ai_jobs::created_at as Expression>::SqlType;
type SqlJson = <ai_jobs::metrics as Expression>::SqlType;

/// A bind parameter.
enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Float(f64),
    Bool(bool),
    OptBool(Option<bool>),
    Uuid(DbUuid),
    OptUuid(Option<DbUuid>),
    Time(DbTime),
    Json(DbJson),
    OptJson(Option<DbJson>),
}

/// Raw SQL with `?` placeholders and its arguments; `Row` is the SQL type
/// of a result row. Safe to cache: the connection keeps one prepared
/// statement per distinct SQL text.
struct Raw<Row = ()> {
    pieces: Vec<String>,
    args: Vec<Arg>,
    _row: PhantomData<Row>,
}

fn raw<Row>(sql: &str, args: Vec<Arg>) -> Raw<Row> {
    Raw {
        pieces: sql.split('?').map(str::to_string).collect(),
        args,
        _row: PhantomData,
    }
}

impl<Row> QueryId for Raw<Row> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Row: 'static> Query for Raw<Row> {
    type SqlType = Row;
}

impl<Row> RunQueryDsl<Conn> for Raw<Row> {}

impl<Row> QueryFragment<DbBackend> for Raw<Row> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        if self.pieces.len() != self.args.len() + 1 {
            return Err(diesel::result::Error::QueryBuilderError(
                "placeholder and argument counts differ".into(),
            ));
        }
        out.push_sql(&self.pieces[0]);
        for (arg, piece) in self.args.iter().zip(&self.pieces[1..]) {
            match arg {
                Arg::Text(v) => out.push_bind_param::<Text, _>(v)?,
                Arg::OptText(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Arg::Int(v) => out.push_bind_param::<BigInt, _>(v)?,
                Arg::Float(v) => out.push_bind_param::<Double, _>(v)?,
                Arg::Bool(v) => out.push_bind_param::<Bool, _>(v)?,
                Arg::OptBool(v) => out.push_bind_param::<Nullable<Bool>, _>(v)?,
                Arg::Uuid(v) => out.push_bind_param::<SqlUuid, _>(v)?,
                Arg::OptUuid(v) => out.push_bind_param::<Nullable<SqlUuid>, _>(v)?,
                Arg::Time(v) => out.push_bind_param::<SqlTime, _>(v)?,
                Arg::Json(v) => out.push_bind_param::<SqlJson, _>(v)?,
                Arg::OptJson(v) => out.push_bind_param::<Nullable<SqlJson>, _>(v)?,
            }
            out.push_sql(piece);
        }
        Ok(())
    }
}

const JOB_COLUMNS: &str = "ai_jobs.id, trace_id, workflow_run_id, job_kind, status, \
     status_reason, error_message, protocol_id, profile_id, capability_profile_id, access_mode, \
     safety_mode, planned_operations, metrics, job_inputs, job_outputs, pinned, created_at, \
     updated_at, entity_refs";
const NODE_COLUMNS: &str = "id, canvas_id, kind, position_x, position_y, data, created_at, \
     updated_at, last_actor_kind, last_actor_id, last_job_id, last_workflow_id, edit_event_id";
const EDGE_COLUMNS: &str = "id, canvas_id, from_node_id, to_node_id, kind, created_at, \
     updated_at, last_actor_kind, last_actor_id, last_job_id, last_workflow_id, edit_event_id";
const CANVAS_COLUMNS: &str = "id, workspace_id, title, created_at, updated_at, last_actor_kind, \
     last_actor_id, last_job_id, last_workflow_id, edit_event_id";
const RUN_COLUMNS: &str =
    "id, job_id, status, error_message, last_heartbeat, created_at, updated_at";

type StampSql = (
    SqlTime,
    Text,
    Nullable<Text>,
    Nullable<SqlUuid>,
    Nullable<SqlUuid>,
    SqlUuid,
);
type Stamp = (
    DbTime,
    String,
    Option<String>,
    Option<DbUuid>,
    Option<DbUuid>,
    DbUuid,
);
type BlockSql = (
    Text,
    Text,
    Text,
    BigInt,
    Text,
    Text,
    SqlJson,
    Nullable<Text>,
    Nullable<Bool>,
    SqlTime,
    StampSql,
);
type BlockTuple = (
    String,
    String,
    String,
    i64,
    String,
    String,
    DbJson,
    Option<String>,
    Option<bool>,
    DbTime,
    Stamp,
);
type JobSql = (
    (SqlUuid, SqlUuid, Nullable<SqlUuid>, Text, Text, Text),
    (Nullable<Text>, Text, Text, Text, Text, Text),
    (SqlJson, SqlJson, Nullable<SqlJson>, Nullable<SqlJson>),
    (Bool, SqlTime, SqlTime, SqlJson),
);
type JobTuple = (
    (DbUuid, DbUuid, Option<DbUuid>, String, String, String),
    (Option<String>, String, String, String, String, String),
    (DbJson, DbJson, Option<DbJson>, Option<DbJson>),
    (bool, DbTime, DbTime, DbJson),
);
type NodeSql = (Text, Text, Text, Double, Double, SqlJson, SqlTime, StampSql);
type NodeTuple = (String, String, String, f64, f64, DbJson, DbTime, Stamp);
type EdgeSql = (Text, Text, Text, Text, Text, SqlTime, StampSql);
type EdgeTuple = (String, String, String, String, String, DbTime, Stamp);
type CanvasSql = (Text, Text, Text, SqlTime, StampSql);
type CanvasTuple = (String, String, String, DbTime, Stamp);
type RunSql = (
    SqlUuid,
    SqlUuid,
    Text,
    Nullable<Text>,
    SqlTime,
    SqlTime,
    SqlTime,
);
type RunTuple = (
    DbUuid,
    DbUuid,
    String,
    Option<String>,
    DbTime,
    DbTime,
    DbTime,
);

fn now() -> DateTime<Utc> {
    crate::validate::now()
}

/// The store's ledger lock (`backend/kernel_store.rs`).
const KERNEL_LEDGER_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended(\
     'handshake-storage kernel ledger ' || current_schema(), 0))";

/// The database's clock, as the kernel's transactions read it.
fn database_now(c: &mut Conn) -> StorageResult<DateTime<Utc>> {
    let sql = match BACKEND {
        Backend::Sqlite => "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'",
        Backend::Postgres => "SELECT date_trunc('microseconds', clock_timestamp())",
    };
    raw::<SqlTime>(sql, vec![])
        .get_result::<DbTime>(c)
        .map(|t| t.0)
        .map_err(|e| from_diesel(e, "database clock"))
}

/// Which ledger a baseline append writes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ledger {
    /// `kernel_events`, numbered as the store numbers it.
    NoSkip,
    /// [`PLAIN_LEDGER`], numbered by its own sequence.
    PlainSequence,
}

/// `kernel_events` with a plain sequence for a key (an identity column on
/// PostgreSQL, SQLite's rowid), for what the no-skip numbering costs:
/// made by `seeding::plain_ledger_sql` on the baseline's database (for
/// `crate::bench::Fixture::kernel_append_sequences`).
const PLAIN_LEDGER: &str = "kernel_events_plain";

const KERNEL_EVENT_INSERT_COLUMNS: &str = "event_sequence, event_id, event_version, \
     kernel_task_run_id, session_run_id, aggregate_type, aggregate_id, idempotency_key, \
     event_type, actor_kind, actor_id, causation_id, correlation_id, source_component, \
     payload_hash, payload, created_at";
const KERNEL_EVENT_COLUMNS: &str = "event_sequence, event_id, event_version, \
     kernel_task_run_id, session_run_id, aggregate_type, aggregate_id, idempotency_key, \
     event_type, actor_kind, actor_id, causation_id, correlation_id, source_component, \
     payload, payload_hash, created_at";
type KernelEventSql = (
    (BigInt, Text, Text, Text, Text, Text, Text, Text),
    (Text, Text, Text, Nullable<Text>, Nullable<Text>, Text),
    (SqlJson, Text, SqlTime),
);
type KernelEventTuple = (
    (i64, String, String, String, String, String, String, String),
    (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
    ),
    (DbJson, String, DbTime),
);

/// A write by the benchmark's human, with a fresh edit event.
fn provenance() -> Provenance {
    Provenance {
        actor_kind: WriteActorKind::Human,
        actor_id: Some("bench".into()),
        job_id: None,
        workflow_id: None,
        edit_event_id: crate::ids::new_uuid(),
    }
}

/// The values of [`sql::STAMP_COLUMNS`].
fn provenance_args(updated_at: DateTime<Utc>, p: Provenance) -> [Arg; 6] {
    [
        Arg::Time(DbTime(updated_at)),
        Arg::Text(p.actor_kind.as_str().to_string()),
        Arg::OptText(p.actor_id),
        Arg::OptUuid(p.job_id.map(DbUuid)),
        Arg::OptUuid(p.workflow_id.map(DbUuid)),
        Arg::Uuid(DbUuid(p.edit_event_id)),
    ]
}

/// The values of [`sql::STAMP_COLUMNS`] for a write by the benchmark's human.
fn stamp_args(at: DateTime<Utc>) -> [Arg; 6] {
    provenance_args(at, provenance())
}

/// Inserts `rows` into `table` inside the caller's transaction, by
/// `method`: one binary COPY (the copier's writer, as the store) or
/// multi-row INSERTs, as few as the bind-parameter limit allows. `args`
/// and `record` give a row's INSERT values and its copier record.
fn insert_rows<T>(
    conn: &mut Conn,
    method: BulkMethod,
    table: Table,
    rows: Vec<T>,
    args: fn(T) -> Vec<Arg>,
    record: fn(T) -> Record,
) -> StorageResult<()> {
    let copy = match method {
        BulkMethod::Insert => false,
        BulkMethod::Copy => true,
        BulkMethod::AsStore => super::store::copies(rows.len()),
    };
    if copy {
        if COPY_FROM_ROWS.is_none() {
            return Err(StorageError::validation(format!("{BACKEND} has no COPY")));
        }
        let records: Vec<Record> = rows.into_iter().map(record).collect();
        return conn.write_records(table, &records, None, false).map(drop);
    }
    let columns = table.columns();
    let column_list = columns.join(", ");
    let per_statement = (MAX_BIND_PARAMS / columns.len()).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Arg> = rows.by_ref().take(per_statement).flat_map(args).collect();
        let sql = sql::insert(
            table.name(),
            &column_list,
            columns.len(),
            chunk.len() / columns.len(),
        );
        raw::<()>(&sql, chunk)
            .execute(conn)
            .map_err(|e| from_diesel(e, table.name()))?;
    }
    Ok(())
}

/// The block a write of `block` into `document_id` at `at` stores.
fn new_block(document_id: &str, block: &NewBlock, at: DateTime<Utc>) -> Block {
    Block {
        id: new_id(&block.id),
        document_id: document_id.to_string(),
        kind: block.kind.clone(),
        sequence: block.sequence,
        raw_content: block.raw_content.clone(),
        display_content: block
            .display_content
            .clone()
            .unwrap_or_else(|| block.raw_content.clone()),
        derived_content: block
            .derived_content
            .clone()
            .unwrap_or_else(|| serde_json::json!({})),
        created_at: at,
        updated_at: at,
        sensitivity: block.sensitivity.clone(),
        exportable: Some(block.exportable.unwrap_or(true)),
        provenance: provenance(),
    }
}

/// A block's values in [`Table::columns`] order.
fn block_args(b: Block) -> Vec<Arg> {
    let mut args = vec![
        Arg::Text(b.id),
        Arg::Text(b.document_id),
        Arg::Text(b.kind),
        Arg::Int(b.sequence),
        Arg::Text(b.raw_content),
        Arg::Text(b.display_content),
        Arg::Json(DbJson(b.derived_content)),
        Arg::OptText(b.sensitivity),
        Arg::OptBool(b.exportable),
        Arg::Time(DbTime(b.created_at)),
    ];
    args.extend(provenance_args(b.updated_at, b.provenance));
    args
}

fn new_node(canvas_id: &str, n: &NewCanvasNode, at: DateTime<Utc>) -> CanvasNode {
    CanvasNode {
        id: new_id(&n.id),
        canvas_id: canvas_id.into(),
        kind: n.kind.clone(),
        position_x: n.position_x,
        position_y: n.position_y,
        data: n.data.clone().unwrap_or_else(|| serde_json::json!({})),
        created_at: at,
        updated_at: at,
        provenance: provenance(),
    }
}

/// A node's values in [`Table::columns`] order.
fn node_args(n: CanvasNode) -> Vec<Arg> {
    let mut args = vec![
        Arg::Text(n.id),
        Arg::Text(n.canvas_id),
        Arg::Text(n.kind),
        Arg::Float(n.position_x),
        Arg::Float(n.position_y),
        Arg::Json(DbJson(n.data)),
        Arg::Time(DbTime(n.created_at)),
    ];
    args.extend(provenance_args(n.updated_at, n.provenance));
    args
}

fn new_edge(canvas_id: &str, e: &NewCanvasEdge, at: DateTime<Utc>) -> CanvasEdge {
    CanvasEdge {
        id: new_id(&e.id),
        canvas_id: canvas_id.into(),
        from_node_id: e.from_node_id.clone(),
        to_node_id: e.to_node_id.clone(),
        kind: e.kind.clone(),
        created_at: at,
        updated_at: at,
        provenance: provenance(),
    }
}

/// An edge's values in [`Table::columns`] order.
fn edge_args(e: CanvasEdge) -> Vec<Arg> {
    let mut args = vec![
        Arg::Text(e.id),
        Arg::Text(e.canvas_id),
        Arg::Text(e.from_node_id),
        Arg::Text(e.to_node_id),
        Arg::Text(e.kind),
        Arg::Time(DbTime(e.created_at)),
    ];
    args.extend(provenance_args(e.updated_at, e.provenance));
    args
}

/// The id given, or a new one.
fn new_id(id: &Option<String>) -> String {
    id.clone()
        .unwrap_or_else(|| crate::ids::new_uuid().to_string())
}

fn json_of<T: serde::Serialize>(value: &T) -> StorageResult<DbJson> {
    Ok(DbJson(serde_json::to_value(value)?))
}

/// The raw-SQL baseline on one database.
pub(crate) struct RawSql {
    pool: Pool<Manager>,
}

impl RawSql {
    pub(crate) fn new(pool: Pool<Manager>) -> Self {
        RawSql { pool }
    }

    /// A ledger append in one transaction: on the real ledger
    /// ([`Ledger::NoSkip`]) the ledger lock (PostgreSQL), the clock, the
    /// idempotency lookup, the largest sequence and the INSERT, as the
    /// store sends them; on [`PLAIN_LEDGER`] the same without the lock and
    /// the largest sequence, the key coming from the table's own sequence.
    fn append_event(&self, event: &NewKernelEvent, ledger: Ledger) -> StorageResult<()> {
        let e = event.clone();
        let no_skip = ledger == Ledger::NoSkip;
        let table = if no_skip {
            "kernel_events"
        } else {
            PLAIN_LEDGER
        };
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            if no_skip && BACKEND == Backend::Postgres {
                raw::<()>(KERNEL_LEDGER_LOCK, vec![])
                    .execute(c)
                    .map_err(|e| from_diesel(e, "ledger lock"))?;
            }
            let at = database_now(c)?;
            let found: Option<(i64, String)> = raw::<(BigInt, Text)>(
                &format!(
                    "SELECT event_sequence, payload_hash FROM {table} WHERE idempotency_key = ?"
                ),
                vec![Arg::Text(e.idempotency_key.clone())],
            )
            .get_result(c)
            .optional()
            .map_err(|e| from_diesel(e, "kernel event"))?;
            if found.is_some() {
                return Ok(());
            }
            let mut args = Vec::with_capacity(17);
            let mut columns = KERNEL_EVENT_INSERT_COLUMNS;
            if no_skip {
                let last: Option<i64> = raw::<Nullable<BigInt>>(
                    "SELECT MAX(event_sequence) FROM kernel_events",
                    vec![],
                )
                .get_result(c)
                .map_err(|e| from_diesel(e, "kernel ledger"))?;
                args.push(Arg::Int(last.unwrap_or(0) + 1));
            } else {
                columns = columns.trim_start_matches("event_sequence, ");
            }
            args.extend([
                Arg::Text(format!("KE-{}", crate::ids::new_uuid())),
                Arg::Text(e.event_version),
                Arg::Text(e.kernel_task_run_id),
                Arg::Text(e.session_run_id),
                Arg::Text(e.aggregate_type),
                Arg::Text(e.aggregate_id),
                Arg::Text(e.idempotency_key),
                Arg::Text(e.event_type),
                Arg::Text(e.actor.kind.as_str().to_string()),
                Arg::Text(e.actor.id),
                Arg::OptText(e.causation_id),
                Arg::OptText(e.correlation_id),
                Arg::Text(e.source_component),
                Arg::Text(crate::kernel::payload_hash(&e.payload)),
                Arg::Json(DbJson(e.payload)),
                Arg::Time(DbTime(at)),
            ]);
            raw::<()>(
                &format!(
                    "INSERT INTO {table} ({columns}) VALUES ({}) \
                     ON CONFLICT (idempotency_key) DO NOTHING",
                    vec!["?"; args.len()].join(", ")
                ),
                args,
            )
            .execute(c)
            .map(drop)
            .map_err(|e| from_diesel(e, "kernel event"))
        })
    }

    fn conn(&self) -> StorageResult<PooledConnection<Manager>> {
        self.pool
            .get()
            .map_err(|e| StorageError::Database(format!("no {BACKEND} connection available: {e}")))
    }
}

impl Baseline for RawSql {
    fn create_block(&self, block: &NewBlock) -> StorageResult<()> {
        raw::<()>(
            &sql::create_block(),
            block_args(new_block(&block.document_id, block, now())),
        )
        .execute(&mut *self.conn()?)
        .map(drop)
        .map_err(|e| from_diesel(e, "block"))
    }

    fn get_block(&self, id: &str) -> StorageResult<()> {
        raw::<BlockSql>(&sql::get_block(), vec![Arg::Text(id.into())])
            .get_result::<BlockTuple>(&mut *self.conn()?)
            .map(drop)
            .map_err(|e| from_diesel(e, "block"))
    }

    fn update_block(&self, id: &str, raw_content: &str) -> StorageResult<()> {
        let sql = sql::update_block();
        let mut args = vec![Arg::Text(raw_content.into())];
        args.extend(stamp_args(now()));
        args.push(Arg::Text(id.into()));
        raw::<BlockSql>(&sql, args)
            .get_result::<BlockTuple>(&mut *self.conn()?)
            .map(drop)
            .map_err(|e| from_diesel(e, "block"))
    }

    fn create_ai_job(&self, job: &NewAiJob) -> StorageResult<Uuid> {
        let id = crate::ids::new_uuid();
        self.create_ai_job_with_id(id, job)?;
        Ok(id)
    }

    fn append_kernel_event(&self, event: &NewKernelEvent) -> StorageResult<()> {
        self.append_event(event, Ledger::NoSkip)
    }

    fn append_kernel_event_plain_sequence(&self, event: &NewKernelEvent) -> StorageResult<()> {
        self.append_event(event, Ledger::PlainSequence)
    }

    fn list_kernel_events_after(&self, after: i64, limit: u32) -> StorageResult<usize> {
        raw::<KernelEventSql>(
            &format!(
                "SELECT {KERNEL_EVENT_COLUMNS} FROM kernel_events WHERE event_sequence > ? \
                 ORDER BY event_sequence LIMIT ?"
            ),
            vec![Arg::Int(after), Arg::Int(i64::from(limit))],
        )
        .load::<KernelEventTuple>(&mut *self.conn()?)
        .map(|rows| rows.len())
        .map_err(|e| from_diesel(e, "kernel events"))
    }

    fn enqueue_kernel_session_run(&self, id: &str, adapter: &str) -> StorageResult<()> {
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            let now = DbTime(database_now(c)?);
            raw::<()>(
                "INSERT INTO kernel_session_runs (session_run_id, kernel_task_run_id, adapter_id, \
                 state, claimed_by, lease_expires_at, attempt_count, available_at, created_at, \
                 updated_at) VALUES (?, ?, ?, 'QUEUED', NULL, NULL, 0, ?, ?, ?)",
                vec![
                    Arg::Text(id.into()),
                    Arg::Text("KTR-bench".into()),
                    Arg::Text(adapter.into()),
                    Arg::Time(now),
                    Arg::Time(now),
                    Arg::Time(now),
                ],
            )
            .execute(c)
            .map(drop)
            .map_err(|e| from_diesel(e, "kernel session run"))
        })
    }

    fn claim_next_and_complete(&self, worker: &str) -> StorageResult<bool> {
        let mut conn = self.conn()?;
        let lease = chrono::Duration::seconds(300);
        let claimed = write_tx(&mut conn, |c| {
            let now = database_now(c)?;
            let next: Option<(String, i64)> = raw::<(Text, BigInt)>(
                &format!(
                    "SELECT session_run_id, attempt_count FROM kernel_session_runs \
                     WHERE state IN ('QUEUED', 'RETRY_SCHEDULED', 'CLAIMED', 'RUNNING') \
                     AND available_at <= ? ORDER BY available_at, session_run_id LIMIT 1{}",
                    if BACKEND == Backend::Postgres {
                        " FOR UPDATE SKIP LOCKED"
                    } else {
                        ""
                    }
                ),
                vec![Arg::Time(DbTime(now))],
            )
            .get_result(c)
            .optional()
            .map_err(|e| from_diesel(e, "kernel session runs"))?;
            let Some((id, attempts)) = next else {
                return Ok(None);
            };
            let expires = DbTime(now + lease);
            raw::<()>(
                "UPDATE kernel_session_runs SET state = 'CLAIMED', claimed_by = ?, \
                 lease_expires_at = ?, attempt_count = ?, available_at = ?, updated_at = ? \
                 WHERE session_run_id = ?",
                vec![
                    Arg::Text(worker.into()),
                    Arg::Time(expires),
                    Arg::Int(attempts + 1),
                    Arg::Time(expires),
                    Arg::Time(DbTime(now)),
                    Arg::Text(id.clone()),
                ],
            )
            .execute(c)
            .map_err(|e| from_diesel(e, "kernel session run"))?;
            raw::<()>(
                "INSERT INTO kernel_session_claims (session_run_id, attempt, claimed_by, \
                 claimed_at, lease_expires_at, ended_at, outcome) VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                vec![
                    Arg::Text(id.clone()),
                    Arg::Int(attempts + 1),
                    Arg::Text(worker.into()),
                    Arg::Time(DbTime(now)),
                    Arg::Time(expires),
                ],
            )
            .execute(c)
            .map_err(|e| from_diesel(e, "kernel session claim"))?;
            Ok(Some((id, attempts + 1)))
        })?;
        let Some((id, attempt)) = claimed else {
            return Ok(false);
        };
        for state in ["RUNNING", "COMPLETED"] {
            write_tx(&mut conn, |c| {
                let now = DbTime(database_now(c)?);
                let _: (String, i64) = raw::<(Text, BigInt)>(
                    &format!(
                        "SELECT state, attempt_count FROM kernel_session_runs \
                         WHERE session_run_id = ?{}",
                        if BACKEND == Backend::Postgres {
                            " FOR UPDATE"
                        } else {
                            ""
                        }
                    ),
                    vec![Arg::Text(id.clone())],
                )
                .get_result(c)
                .map_err(|e| from_diesel(e, "kernel session run"))?;
                if state == "COMPLETED" {
                    raw::<()>(
                        "UPDATE kernel_session_claims SET ended_at = ?, outcome = ? \
                         WHERE session_run_id = ? AND attempt = ? AND ended_at IS NULL",
                        vec![
                            Arg::Time(now),
                            Arg::Text(state.into()),
                            Arg::Text(id.clone()),
                            Arg::Int(attempt),
                        ],
                    )
                    .execute(c)
                    .map_err(|e| from_diesel(e, "kernel session claim"))?;
                }
                raw::<()>(
                    "UPDATE kernel_session_runs SET state = ?, updated_at = ? WHERE session_run_id = ?",
                    vec![Arg::Text(state.into()), Arg::Time(now), Arg::Text(id.clone())],
                )
                .execute(c)
                .map(drop)
                .map_err(|e| from_diesel(e, "kernel session run"))
            })?;
        }
        Ok(true)
    }

    fn ai_jobs_pkey_bytes(&self) -> StorageResult<u64> {
        #[derive(QueryableByName)]
        struct Size {
            #[diesel(sql_type = BigInt)]
            bytes: i64,
        }
        diesel::sql_query(super::AI_JOBS_PKEY_BYTES_SQL)
            .get_result::<Size>(&mut *self.conn()?)
            .map(|s| s.bytes.max(0) as u64)
            .map_err(|e| from_diesel(e, "ai_jobs primary key size"))
    }

    fn create_ai_job_with_id(&self, id: Uuid, job: &NewAiJob) -> StorageResult<()> {
        let at = now();
        let job_sql = format!(
            "INSERT INTO ai_jobs ({}) VALUES {}",
            JOB_COLUMNS.replace("ai_jobs.", ""),
            sql::placeholders(20)
        );
        let job_args = vec![
            Arg::Uuid(DbUuid(id)),
            Arg::Uuid(DbUuid(job.trace_id)),
            Arg::OptUuid(None),
            Arg::Text(job.job_kind.as_str().into()),
            Arg::Text(JobState::Queued.as_str().into()),
            Arg::Text(job.status_reason.clone()),
            Arg::OptText(None),
            Arg::Text(job.protocol_id.clone()),
            Arg::Text(job.profile_id.clone()),
            Arg::Text(job.capability_profile_id.clone()),
            Arg::Text(job.access_mode.as_str().into()),
            Arg::Text(job.safety_mode.as_str().into()),
            Arg::Json(json_of(&job.planned_operations)?),
            Arg::Json(json_of(&job.metrics)?),
            Arg::OptJson(job.job_inputs.clone().map(DbJson)),
            Arg::OptJson(None),
            Arg::Bool(false),
            Arg::Time(DbTime(at)),
            Arg::Time(DbTime(at)),
            Arg::Json(json_of(&job.entity_refs)?),
        ];
        // One INSERT, like the store: the trigger fills ai_job_entity_refs.
        raw::<()>(&job_sql, job_args)
            .execute(&mut *self.conn()?)
            .map_err(|e| from_diesel(e, "ai job"))?;
        Ok(())
    }

    fn update_ai_job_status(&self, id: Uuid, state: JobState, reason: &str) -> StorageResult<()> {
        let sql = format!(
            "UPDATE ai_jobs SET status = ?, status_reason = ?, updated_at = ? WHERE id = ? \
             RETURNING {JOB_COLUMNS}"
        );
        let args = vec![
            Arg::Text(state.as_str().into()),
            Arg::Text(reason.into()),
            Arg::Time(DbTime(now())),
            Arg::Uuid(DbUuid(id)),
        ];
        raw::<JobSql>(&sql, args)
            .get_result::<JobTuple>(&mut *self.conn()?)
            .map(drop)
            .map_err(|e| from_diesel(e, "ai job"))
    }

    fn get_ai_job(&self, id: Uuid) -> StorageResult<()> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM ai_jobs WHERE id = ?");
        let rows: Vec<JobTuple> = raw::<JobSql>(&sql, vec![Arg::Uuid(DbUuid(id))])
            .load(&mut *self.conn()?)
            .map_err(|e| from_diesel(e, "ai job"))?;
        if rows.is_empty() {
            return Err(StorageError::not_found("ai job", id));
        }
        Ok(())
    }

    fn replace_blocks(
        &self,
        method: BulkMethod,
        document_id: &str,
        blocks: &[NewBlock],
    ) -> StorageResult<()> {
        let at = now();
        let rows = blocks
            .iter()
            .map(|b| new_block(document_id, b, at))
            .collect();
        let stamp_sql = sql::stamp("documents");
        let mut stamp = Vec::from(stamp_args(at));
        stamp.push(Arg::Text(document_id.into()));
        write_tx(&mut *self.conn()?, |conn| {
            raw::<()>(&stamp_sql, stamp)
                .execute(conn)
                .map_err(|e| from_diesel(e, "document"))?;
            raw::<()>(sql::delete_blocks(), vec![Arg::Text(document_id.into())])
                .execute(conn)
                .map_err(|e| from_diesel(e, "blocks"))?;
            insert_rows(conn, method, Table::Blocks, rows, block_args, Record::Block)
        })
    }

    fn get_blocks(&self, document_id: &str) -> StorageResult<usize> {
        raw::<BlockSql>(&sql::get_blocks(), vec![Arg::Text(document_id.into())])
            .load::<BlockTuple>(&mut *self.conn()?)
            .map(|rows| rows.len())
            .map_err(|e| from_diesel(e, "blocks"))
    }

    fn update_canvas_graph(
        &self,
        method: BulkMethod,
        canvas_id: &str,
        nodes: &[NewCanvasNode],
        edges: &[NewCanvasEdge],
    ) -> StorageResult<()> {
        let at = now();
        let node_rows = nodes.iter().map(|n| new_node(canvas_id, n, at)).collect();
        let edge_rows = edges.iter().map(|e| new_edge(canvas_id, e, at)).collect();
        let stamp_sql = sql::stamp("canvases");
        let mut stamp = Vec::from(stamp_args(at));
        stamp.push(Arg::Text(canvas_id.into()));
        write_tx(&mut *self.conn()?, |conn| {
            raw::<()>(&stamp_sql, stamp)
                .execute(conn)
                .map_err(|e| from_diesel(e, "canvas"))?;
            for table in ["canvas_edges", "canvas_nodes"] {
                raw::<()>(
                    &format!("DELETE FROM {table} WHERE canvas_id = ?"),
                    vec![Arg::Text(canvas_id.into())],
                )
                .execute(conn)
                .map_err(|e| from_diesel(e, table))?;
            }
            insert_rows(
                conn,
                method,
                Table::CanvasNodes,
                node_rows,
                node_args,
                Record::Node,
            )?;
            insert_rows(
                conn,
                method,
                Table::CanvasEdges,
                edge_rows,
                edge_args,
                Record::Edge,
            )
        })
    }

    fn get_canvas_with_graph(&self, canvas_id: &str) -> StorageResult<usize> {
        let id = || vec![Arg::Text(canvas_id.into())];
        read_tx(&mut *self.conn()?, |conn| {
            raw::<CanvasSql>(
                &format!("SELECT {CANVAS_COLUMNS} FROM canvases WHERE id = ?"),
                id(),
            )
            .get_result::<CanvasTuple>(conn)
            .map_err(|e| from_diesel(e, "canvas"))?;
            let nodes = raw::<NodeSql>(
                &format!("SELECT {NODE_COLUMNS} FROM canvas_nodes WHERE canvas_id = ? ORDER BY id"),
                id(),
            )
            .load::<NodeTuple>(conn)
            .map_err(|e| from_diesel(e, "canvas nodes"))?;
            let edges = raw::<EdgeSql>(
                &format!("SELECT {EDGE_COLUMNS} FROM canvas_edges WHERE canvas_id = ? ORDER BY id"),
                id(),
            )
            .load::<EdgeTuple>(conn)
            .map_err(|e| from_diesel(e, "canvas edges"))?;
            Ok(nodes.len() + edges.len())
        })
    }

    fn list_ai_jobs(&self, filter: &AiJobListFilter) -> StorageResult<usize> {
        let columns: Vec<String> = JOB_COLUMNS
            .split(", ")
            .map(|c| format!("ai_jobs.{}", c.trim_start_matches("ai_jobs.")))
            .collect();
        let mut args = Vec::new();
        // The store's shapes: with the workspace filter, read in the order
        // of the refs index (a job holding the ref twice listed once).
        let (mut sql, created_at, id) = match &filter.wsid {
            None => (
                format!("SELECT {} FROM ai_jobs WHERE 1 = 1", columns.join(", ")),
                "ai_jobs.created_at",
                "ai_jobs.id",
            ),
            Some(wsid) => {
                args.push(Arg::Text(wsid.clone()));
                (
                    format!(
                        "SELECT {} FROM ai_job_entity_refs r JOIN ai_jobs ON ai_jobs.id = r.job_id \
                         WHERE r.entity_kind = 'workspace' AND r.entity_id = ? \
                         AND (r.position = 0 OR NOT EXISTS (SELECT 1 FROM ai_job_entity_refs e \
                         WHERE e.job_id = r.job_id AND e.position < r.position \
                         AND e.entity_kind = r.entity_kind AND e.entity_id = r.entity_id))",
                        columns.join(", ")
                    ),
                    "r.created_at",
                    "r.job_id",
                )
            }
        };
        if let Some(state) = filter.status {
            sql.push_str(" AND ai_jobs.status = ?");
            args.push(Arg::Text(state.as_str().into()));
        }
        if let Some(kind) = filter.job_kind {
            sql.push_str(" AND ai_jobs.job_kind = ?");
            args.push(Arg::Text(kind.as_str().into()));
        }
        if let Some(from) = filter.from {
            sql.push_str(&format!(" AND {created_at} >= ?"));
            args.push(Arg::Time(DbTime(from)));
        }
        if let Some(to) = filter.to {
            sql.push_str(&format!(" AND {created_at} < ?"));
            args.push(Arg::Time(DbTime(to)));
        }
        sql.push_str(&format!(" ORDER BY {created_at} DESC, {id} DESC"));
        if let Some(limit) = filter.limit {
            sql.push_str(" LIMIT ?");
            args.push(Arg::Int(i64::from(limit)));
        }
        raw::<JobSql>(&sql, args)
            .load::<JobTuple>(&mut *self.conn()?)
            .map(|jobs| jobs.len())
            .map_err(|e| from_diesel(e, "ai jobs"))
    }

    fn find_stalled_workflows(&self, threshold_secs: u64) -> StorageResult<usize> {
        let Some(cutoff) = crate::validate::stalled_cutoff(threshold_secs) else {
            return Ok(0);
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE status = ? AND last_heartbeat < ? \
             ORDER BY last_heartbeat, id"
        );
        raw::<RunSql>(
            &sql,
            vec![
                Arg::Text(JobState::Running.as_str().into()),
                Arg::Time(DbTime(cutoff)),
            ],
        )
        .load::<RunTuple>(&mut *self.conn()?)
        .map(|rows| rows.len())
        .map_err(|e| from_diesel(e, "workflow runs"))
    }

    fn prune_ai_jobs_dry_run(&self, cutoff: DateTime<Utc>) -> StorageResult<u64> {
        // The store counts recent jobs too: they fill the min_versions
        // window first.
        let sql = "SELECT pinned, COUNT(*), COUNT(CASE WHEN created_at < ? THEN id END) \
                   FROM ai_jobs WHERE status IN (?, ?) GROUP BY pinned";
        let counts: Vec<(bool, i64, i64)> = raw::<(Bool, BigInt, BigInt)>(
            sql,
            vec![
                Arg::Time(DbTime(cutoff)),
                Arg::Text(JobState::Completed.as_str().into()),
                Arg::Text(JobState::Failed.as_str().into()),
            ],
        )
        .load(&mut *self.conn()?)
        .map_err(|e| from_diesel(e, "ai jobs"))?;
        Ok(counts.iter().map(|(_, _, n)| *n as u64).sum())
    }
}
