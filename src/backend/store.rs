//! The query code of the store, written once and compiled once per backend.
//!
//! How the sharing works: `backend/sqlite.rs` and `backend/postgres.rs` each
//! include this file as their child module `store` (`#[path = "store.rs"]`),
//! after defining, in the parent, the few things that differ: `schema` (the
//! committed `diesel print-schema` module), `Conn` and `DbBackend`, the
//! embedded `MIGRATIONS`, `BACKEND`, `MAX_BIND_PARAMS`, `COPY_FROM_ROWS`
//! (from how many rows a bulk write is one binary COPY), `read_tx` and
//! `write_tx` (SQLite takes the write lock up front with `BEGIN IMMEDIATE`;
//! PostgreSQL reads in one REPEATABLE READ snapshot), `migration_lock` (a
//! `BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL), `COLUMNS_SQL` (the
//! catalog query behind the schema parity case; feature `testing`),
//! `KeepAlive` and the pool's connection `Manager`. Values whose storage
//! differs (uuids, timestamps, JSON) go through the field types of
//! `backend::fields`.
//!
//! What it may touch: its parent's pieces above, the schema module,
//! `backend::fields`, the validation and guard rules, the domain types, and
//! the copier's row writers (`copy_end::WriteRecords`, for bulk writes by COPY).
//! Nothing above the backend layer (conformance, bench, the CLI).
//!
//! Why not the alternatives: Diesel's `MultiConnection` supports neither
//! `Timestamptz` nor `Json`, and generic functions over `Backend` need
//! where-clauses longer than the queries themselves. Compiling the same
//! text against two schema modules keeps every query plain, fully
//! type-checked for each backend, and written exactly once.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::connection::DefaultLoadingMode;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::query_dsl::LoadQuery;
use diesel::r2d2::{Pool, PooledConnection};
use diesel_migrations::MigrationHarness;
use serde_json::Value;
use uuid::Uuid;

use super::schema::{
    ai_job_entity_refs, ai_jobs, blocks, canvas_edges, canvas_nodes, canvases, documents,
    kernel_events, kernel_session_claims, kernel_session_runs, workflow_node_executions,
    workflow_runs, workspaces,
};
use super::{
    check_schema_access, migration_lock, read_tx, write_tx, Conn, DbBackend, KeepAlive, Manager,
    BACKEND, COPY_FROM_ROWS, MAX_BIND_PARAMS, MIGRATIONS, MIGRATIONS_TABLE_PRESENT_SQL,
    SCHEMA_COLUMNS_SQL, SCHEMA_FOREIGN_KEYS_SQL, SCHEMA_INDEXES_SQL, SCHEMA_TRIGGERS_SQL,
};
use crate::backend::copy_end::{Record, Table as CopyTable, WriteRecords};
use crate::backend::fields::{DbJson, DbJsonText, DbTime, DbUuid};
#[cfg(feature = "testing")]
use crate::backend::ColumnInfo;
use crate::backend::{from_diesel, Maintenance, SchemaOnOpen};
use crate::error::{StorageError, StorageResult};
use crate::guard;
use crate::kernel::*;
use crate::schema_info::{
    committed_fingerprint, committed_hash, ColumnSchema, ForeignKeySchema, IndexSchema,
    SchemaDescription, SchemaFingerprint, TriggerSchema,
};
use crate::storage::Storage;
use crate::types::*;
use crate::validate;

/// A store on one database: a connection pool and the queries.
pub(crate) struct Store {
    pool: Pool<Manager>,
    // Held only to keep the database alive (SQLite in-memory).
    _keep_alive: KeepAlive,
}

type PooledConn = PooledConnection<Manager>;

/// An UPDATE whose prepared statement the connection may cache, keyed by
/// its SQL text (this marks the statement; it caches no results). Diesel never caches an
/// UPDATE's prepared statement (its shape varies with the changeset, and
/// Diesel keys the cache by Rust type), so SQLite would re-prepare every
/// update and PostgreSQL re-plan it. Keyed by the text, each shape gets its
/// own statement, which is safe; used only on single-row UPDATEs, whose
/// shapes are few, and on the kernel's raw statements (`sql_query`, never
/// cached by Diesel either), whose texts are fixed.
struct CacheablePrepared<Q>(Q);

trait CachePrepared: Sized {
    /// Marks this UPDATE's prepared statement cacheable.
    fn cache_prepared(self) -> CacheablePrepared<Self> {
        CacheablePrepared(self)
    }
}

impl<Q> CachePrepared for Q {}

impl<Q: QueryFragment<DbBackend>> QueryFragment<DbBackend> for CacheablePrepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DbBackend>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DbBackend) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for CacheablePrepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for CacheablePrepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> RunQueryDsl<Conn> for CacheablePrepared<Q> {}

impl Store {
    pub(super) fn new(
        pool: Pool<Manager>,
        keep_alive: KeepAlive,
        schema: SchemaOnOpen,
    ) -> StorageResult<Self> {
        let store = Store {
            pool,
            _keep_alive: keep_alive,
        };
        match schema {
            SchemaOnOpen::Migrate => store.run_migrations()?,
            SchemaOnOpen::Check => store.check_schema()?,
            SchemaOnOpen::Leave => {}
        }
        Ok(store)
    }

    /// With migrations off: the applied migrations must be exactly this
    /// build's and the live schema's fingerprint the committed one, else
    /// `Migration` with one line saying what was found. Reads only, so a
    /// role that may not run DDL can open the store.
    fn check_schema(&self) -> StorageResult<()> {
        let status = self.migration_status()?;
        let expected = embedded_versions()?;
        let newest = |versions: &[String]| versions.last().cloned().unwrap_or("none".into());
        let wanted = newest(&expected);
        let unknown: Vec<&String> = status
            .applied
            .iter()
            .filter(|v| !expected.contains(v))
            .collect();
        if status.applied.is_empty() {
            return Err(StorageError::Migration(format!(
                "schema at version none (no migration applied), this build expects {wanted}; \
                 run `hsk-storage migrate` as the owner"
            )));
        }
        if !unknown.is_empty() {
            return Err(StorageError::Migration(format!(
                "schema at version {}, this build expects {wanted} (migrated by a newer \
                 build: {} unknown here); run a build that knows it",
                newest(&status.applied),
                unknown.len()
            )));
        }
        if let Some(first) = status.pending.first() {
            let found = newest(&status.applied);
            // Pending migrations older than the newest applied: a gap.
            let gap = if *first < found {
                format!(" but without {first}")
            } else {
                String::new()
            };
            return Err(StorageError::Migration(format!(
                "schema at version {found}{gap}, this build expects {wanted}; \
                 run `hsk-storage migrate` as the owner"
            )));
        }
        let live = self.schema_fingerprint()?;
        if live.to_file_text() != committed_fingerprint(BACKEND) {
            return Err(StorageError::Migration(format!(
                "schema at version {wanted} has fingerprint {}, this build expects {} \
                 (changed outside the migrations?); compare with `hsk-storage status`",
                live.hash,
                committed_hash(BACKEND).unwrap_or("the committed one")
            )));
        }
        Ok(())
    }

    fn conn(&self) -> StorageResult<PooledConn> {
        self.pool.get().map_err(|e| {
            StorageError::not_applied(format!("no {BACKEND} connection available: {e}"))
        })
    }

    /// Runs a read. One whose connection failed under it (lost, refused,
    /// or none free in time) runs once more: the pool has dropped the
    /// broken connection and checks the others before handing them out,
    /// and after a failover libpq reaches the new primary. A read writes
    /// nothing, so its errors are never "outcome unknown". When no server
    /// answers at all, a read thus waits up to twice the connection
    /// timeout before it fails.
    fn read<T>(&self, f: impl Fn() -> StorageResult<T>) -> StorageResult<T> {
        match f().map_err(StorageError::known_not_applied) {
            Err(err) if err.is_retryable() => f().map_err(StorageError::known_not_applied),
            other => other,
        }
    }

    /// Runs one statement; `what` names its subject in errors.
    fn run<S>(&self, statement: S, what: &str) -> StorageResult<usize>
    where
        S: RunQueryDsl<Conn> + ExecuteDsl<Conn>,
    {
        statement
            .execute(&mut *self.conn()?)
            .map_err(|e| from_diesel(e, what))
    }

    /// Loads every row of `query` and converts each as it is read: no
    /// intermediate Vec of rows, so peak memory stays near the result's.
    fn load_all<'q, Q, R, D>(
        &self,
        query: Q,
        what: &str,
        into: fn(R) -> StorageResult<D>,
    ) -> StorageResult<Vec<D>>
    where
        Q: RunQueryDsl<Conn> + LoadQuery<'q, Conn, R> + 'q,
        R: 'q,
    {
        let mut conn = self.conn()?;
        let rows = query
            .load_iter::<R, DefaultLoadingMode>(&mut *conn)
            .map_err(|e| from_diesel(e, what))?;
        let mut out = Vec::with_capacity(rows.size_hint().0);
        for row in rows {
            out.push(into(row.map_err(|e| from_diesel(e, what))?)?);
        }
        Ok(out)
    }

    /// Loads the one row of `query` (`NotFound` when there is none).
    fn load_one<'q, Q, R, D>(
        &self,
        query: Q,
        what: &str,
        into: fn(R) -> StorageResult<D>,
    ) -> StorageResult<D>
    where
        Q: RunQueryDsl<Conn> + LoadQuery<'q, Conn, R>,
    {
        into(
            query
                .get_result(&mut *self.conn()?)
                .map_err(|e| from_diesel(e, what))?,
        )
    }

    /// A guarded delete of one content row; `NotFound` when there is none.
    fn delete_one<S>(
        &self,
        ctx: &WriteContext,
        entity: &str,
        id: &str,
        statement: S,
    ) -> StorageResult<()>
    where
        S: RunQueryDsl<Conn> + ExecuteDsl<Conn>,
    {
        guard::validate_write(ctx, id)?;
        validate::key(entity, id)?;
        let affected = self.run(statement, &format!("{entity} {id}"))?;
        expect_one(affected, entity, id)
    }
}

// ---------------------------------------------------------------------------
// Rows

/// Declares a content table's row and its `Stamp`: when and by whom the
/// row was last written, shared by inserts, updates and reads. Written as
/// `content_row!(struct BlockRow, struct BlockStamp, blocks { ... })` so
/// that `struct BlockRow` is found by grep.
macro_rules! content_row {
    (struct $row:ident, struct $stamp:ident, $table:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Clone, Queryable, Selectable, Insertable)]
        #[diesel(table_name = $table, check_for_backend(DbBackend))]
        #[diesel(treat_none_as_default_value = false)]
        struct $row {
            $($field: $ty,)*
            created_at: DbTime,
            #[diesel(embed)]
            stamp: $stamp,
        }

        #[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
        #[diesel(table_name = $table, check_for_backend(DbBackend))]
        #[diesel(treat_none_as_default_value = false, treat_none_as_null = true)]
        struct $stamp {
            updated_at: DbTime,
            last_actor_kind: String,
            last_actor_id: Option<String>,
            last_job_id: Option<DbUuid>,
            last_workflow_id: Option<DbUuid>,
            edit_event_id: DbUuid,
        }

        impl $row {
            /// Columns per row: binds per row of a multi-row INSERT. The
            /// table's own fields, `created_at`, and the stamp's columns.
            #[allow(dead_code)]
            const COLUMNS: usize = [$(stringify!($field)),*].len() + 1 + $stamp::COLUMNS;
        }

        impl $stamp {
            /// The six fields above.
            const COLUMNS: usize = 6;

            fn new(meta: &MutationMetadata) -> Self {
                Self {
                    updated_at: DbTime(meta.timestamp),
                    last_actor_kind: meta.actor_kind.as_str().to_string(),
                    last_actor_id: meta.actor_id.clone(),
                    last_job_id: meta.job_id.map(DbUuid),
                    last_workflow_id: meta.workflow_id.map(DbUuid),
                    edit_event_id: DbUuid(meta.edit_event_id),
                }
            }

            fn provenance(&self) -> StorageResult<Provenance> {
                Ok(Provenance {
                    actor_kind: self.last_actor_kind.parse()?,
                    actor_id: self.last_actor_id.clone(),
                    job_id: self.last_job_id.map(|u| u.0),
                    workflow_id: self.last_workflow_id.map(|u| u.0),
                    edit_event_id: self.edit_event_id.0,
                })
            }
        }
    };
}

content_row!(
    struct WorkspaceRow,
    struct WorkspaceStamp,
    workspaces {
        id: String,
        name: String
    }
);
content_row!(
    struct DocumentRow,
    struct DocumentStamp,
    documents {
        id: String,
        workspace_id: String,
        title: String,
    }
);
content_row!(struct BlockRow, struct BlockStamp, blocks {
    id: String,
    document_id: String,
    kind: String,
    sequence: i64,
    raw_content: String,
    display_content: String,
    derived_content: DbJson,
    sensitivity: Option<String>,
    exportable: Option<bool>,
});
content_row!(
    struct CanvasRow,
    struct CanvasStamp,
    canvases {
        id: String,
        workspace_id: String,
        title: String,
    }
);
content_row!(
    struct NodeRow,
    struct NodeStamp,
    canvas_nodes {
        id: String,
        canvas_id: String,
        kind: String,
        position_x: f64,
        position_y: f64,
        data: DbJson,
    }
);
content_row!(
    struct EdgeRow,
    struct EdgeStamp,
    canvas_edges {
        id: String,
        canvas_id: String,
        from_node_id: String,
        to_node_id: String,
        kind: String,
    }
);

impl WorkspaceRow {
    fn into_domain(self) -> StorageResult<Workspace> {
        Ok(Workspace {
            provenance: self.stamp.provenance()?,
            id: self.id,
            name: self.name,
            created_at: self.created_at.0,
            updated_at: self.stamp.updated_at.0,
        })
    }
}

impl DocumentRow {
    fn into_domain(self) -> StorageResult<Document> {
        Ok(Document {
            provenance: self.stamp.provenance()?,
            id: self.id,
            workspace_id: self.workspace_id,
            title: self.title,
            created_at: self.created_at.0,
            updated_at: self.stamp.updated_at.0,
        })
    }
}

impl BlockRow {
    fn new(block: NewBlock, meta: &MutationMetadata) -> StorageResult<Self> {
        let id = validate::id_or_new("block id", block.id.as_deref())?;
        validate::id("document_id", &block.document_id)?;
        validate::text("block kind", &block.kind)?;
        validate::text("raw_content", &block.raw_content)?;
        if let Some(display) = &block.display_content {
            validate::text("display_content", display)?;
        }
        if let Some(sensitivity) = &block.sensitivity {
            validate::text("sensitivity", sensitivity)?;
        }
        let derived = block.derived_content.unwrap_or_else(empty_object);
        validate::json("derived_content", &derived)?;
        Ok(BlockRow {
            id,
            document_id: block.document_id,
            kind: block.kind,
            sequence: block.sequence,
            display_content: block
                .display_content
                .unwrap_or_else(|| block.raw_content.clone()),
            raw_content: block.raw_content,
            derived_content: DbJson(derived),
            sensitivity: block.sensitivity,
            exportable: Some(block.exportable.unwrap_or(true)),
            created_at: DbTime(meta.timestamp),
            stamp: BlockStamp::new(meta),
        })
    }

    fn into_domain(self) -> StorageResult<Block> {
        Ok(Block {
            provenance: self.stamp.provenance()?,
            id: self.id,
            document_id: self.document_id,
            kind: self.kind,
            sequence: self.sequence,
            raw_content: self.raw_content,
            display_content: self.display_content,
            derived_content: self.derived_content.0,
            created_at: self.created_at.0,
            updated_at: self.stamp.updated_at.0,
            sensitivity: self.sensitivity,
            exportable: self.exportable,
        })
    }
}

/// The fields `update_block` may change; `None` leaves a column alone.
#[derive(AsChangeset)]
#[diesel(table_name = blocks, check_for_backend(DbBackend))]
struct BlockChanges {
    kind: Option<String>,
    sequence: Option<i64>,
    raw_content: Option<String>,
    display_content: Option<String>,
    derived_content: Option<DbJson>,
    sensitivity: Option<String>,
    exportable: Option<bool>,
}

impl BlockChanges {
    fn new(update: BlockUpdate) -> StorageResult<Self> {
        for (field, value) in [
            ("block kind", &update.kind),
            ("raw_content", &update.raw_content),
            ("display_content", &update.display_content),
            ("sensitivity", &update.sensitivity),
        ] {
            if let Some(v) = value {
                validate::text(field, v)?;
            }
        }
        if let Some(derived) = &update.derived_content {
            validate::json("derived_content", derived)?;
        }
        Ok(BlockChanges {
            kind: update.kind,
            sequence: update.sequence,
            raw_content: update.raw_content,
            display_content: update.display_content,
            derived_content: update.derived_content.map(DbJson),
            sensitivity: update.sensitivity,
            exportable: update.exportable,
        })
    }
}

impl CanvasRow {
    fn into_domain(self) -> StorageResult<Canvas> {
        Ok(Canvas {
            provenance: self.stamp.provenance()?,
            id: self.id,
            workspace_id: self.workspace_id,
            title: self.title,
            created_at: self.created_at.0,
            updated_at: self.stamp.updated_at.0,
        })
    }
}

impl NodeRow {
    fn new(canvas_id: &str, node: NewCanvasNode, meta: &MutationMetadata) -> StorageResult<Self> {
        let id = validate::id_or_new("node id", node.id.as_deref())?;
        validate::text("node kind", &node.kind)?;
        let data = node.data.unwrap_or_else(empty_object);
        validate::json("node data", &data)?;
        Ok(NodeRow {
            id,
            canvas_id: canvas_id.to_string(),
            kind: node.kind,
            position_x: validate::coordinate("position_x", node.position_x)?,
            position_y: validate::coordinate("position_y", node.position_y)?,
            data: DbJson(data),
            created_at: DbTime(meta.timestamp),
            stamp: NodeStamp::new(meta),
        })
    }

    fn into_domain(self) -> StorageResult<CanvasNode> {
        Ok(CanvasNode {
            provenance: self.stamp.provenance()?,
            id: self.id,
            canvas_id: self.canvas_id,
            kind: self.kind,
            position_x: self.position_x,
            position_y: self.position_y,
            data: self.data.0,
            created_at: self.created_at.0,
            updated_at: self.stamp.updated_at.0,
        })
    }
}

impl EdgeRow {
    fn new(canvas_id: &str, edge: NewCanvasEdge, meta: &MutationMetadata) -> StorageResult<Self> {
        let id = validate::id_or_new("edge id", edge.id.as_deref())?;
        validate::id("from_node_id", &edge.from_node_id)?;
        validate::id("to_node_id", &edge.to_node_id)?;
        validate::text("edge kind", &edge.kind)?;
        Ok(EdgeRow {
            id,
            canvas_id: canvas_id.to_string(),
            from_node_id: edge.from_node_id,
            to_node_id: edge.to_node_id,
            kind: edge.kind,
            created_at: DbTime(meta.timestamp),
            stamp: EdgeStamp::new(meta),
        })
    }

    fn into_domain(self) -> StorageResult<CanvasEdge> {
        Ok(CanvasEdge {
            provenance: self.stamp.provenance()?,
            id: self.id,
            canvas_id: self.canvas_id,
            from_node_id: self.from_node_id,
            to_node_id: self.to_node_id,
            kind: self.kind,
            created_at: self.created_at.0,
            updated_at: self.stamp.updated_at.0,
        })
    }
}

/// A row that `replace_blocks` and `update_canvas_graph` write in bulk
/// ([`insert_all`]): its multi-row INSERT, and its domain value as the
/// copier's `Record` for the backend's bulk writer.
trait BulkRow: Sized {
    type Domain;
    const TABLE: CopyTable;
    /// Binds per row of a multi-row INSERT.
    const COLUMNS: usize;
    fn insert(conn: &mut Conn, rows: &[Self]) -> QueryResult<usize>;
    fn into_domain(self) -> StorageResult<Self::Domain>;
    fn record(value: Self::Domain) -> Record;
    /// `None` for another table's record.
    fn from_record(record: Record) -> Option<Self::Domain>;
}

macro_rules! bulk_row {
    ($row:ident, $table:ident, $copy:ident, $variant:ident($domain:ty)) => {
        impl BulkRow for $row {
            type Domain = $domain;
            const TABLE: CopyTable = CopyTable::$copy;
            const COLUMNS: usize = $row::COLUMNS;

            fn insert(conn: &mut Conn, rows: &[Self]) -> QueryResult<usize> {
                diesel::insert_into($table::table)
                    .values(rows)
                    .execute(conn)
            }

            fn into_domain(self) -> StorageResult<$domain> {
                $row::into_domain(self)
            }

            fn record(value: $domain) -> Record {
                Record::$variant(value)
            }

            fn from_record(record: Record) -> Option<$domain> {
                match record {
                    Record::$variant(value) => Some(value),
                    _ => None,
                }
            }
        }
    };
}

bulk_row!(BlockRow, blocks, Blocks, Block(Block));
bulk_row!(NodeRow, canvas_nodes, CanvasNodes, Node(CanvasNode));
bulk_row!(EdgeRow, canvas_edges, CanvasEdges, Edge(CanvasEdge));

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ai_jobs, check_for_backend(DbBackend))]
#[diesel(treat_none_as_default_value = false)]
struct AiJobRow {
    id: DbUuid,
    trace_id: DbUuid,
    workflow_run_id: Option<DbUuid>,
    job_kind: String,
    status: String,
    status_reason: String,
    error_message: Option<String>,
    protocol_id: String,
    profile_id: String,
    capability_profile_id: String,
    access_mode: String,
    safety_mode: String,
    planned_operations: DbJsonText,
    metrics: DbJsonText,
    job_inputs: Option<DbJson>,
    job_outputs: Option<DbJson>,
    pinned: bool,
    created_at: DbTime,
    updated_at: DbTime,
    /// `[{"entity_id", "entity_kind"}]` in order; a trigger copies it into
    /// `ai_job_entity_refs`, the index behind the workspace filter.
    entity_refs: DbJsonText,
}

impl AiJobRow {
    fn into_domain(self) -> StorageResult<AiJob> {
        Ok(AiJob {
            job_id: self.id.0,
            trace_id: self.trace_id.0,
            workflow_run_id: self.workflow_run_id.map(|u| u.0),
            job_kind: self.job_kind.parse()?,
            state: self.status.parse()?,
            error_message: self.error_message,
            protocol_id: self.protocol_id,
            profile_id: self.profile_id,
            capability_profile_id: self.capability_profile_id,
            access_mode: self.access_mode.parse()?,
            safety_mode: self.safety_mode.parse()?,
            entity_refs: from_json("entity_refs", self.entity_refs)?,
            planned_operations: from_json("planned_operations", self.planned_operations)?,
            metrics: from_json("metrics", self.metrics)?,
            status_reason: self.status_reason,
            job_inputs: self.job_inputs.map(|j| j.0),
            job_outputs: self.job_outputs.map(|j| j.0),
            pinned: self.pinned,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

/// What `update_ai_job_status` writes; `None` keeps the stored value
/// (Handshake writes `COALESCE(new, old)`).
#[derive(AsChangeset)]
#[diesel(table_name = ai_jobs, check_for_backend(DbBackend))]
struct JobStatusChanges {
    status: String,
    status_reason: String,
    error_message: Option<String>,
    metrics: Option<DbJson>,
    workflow_run_id: Option<DbUuid>,
    trace_id: Option<DbUuid>,
    job_outputs: Option<DbJson>,
    updated_at: DbTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workflow_runs, check_for_backend(DbBackend))]
#[diesel(treat_none_as_default_value = false)]
struct RunRow {
    id: DbUuid,
    job_id: DbUuid,
    status: String,
    error_message: Option<String>,
    last_heartbeat: DbTime,
    created_at: DbTime,
    updated_at: DbTime,
}

impl RunRow {
    fn into_domain(self) -> StorageResult<WorkflowRun> {
        Ok(WorkflowRun {
            id: self.id.0,
            job_id: self.job_id.0,
            status: self.status.parse()?,
            error_message: self.error_message,
            last_heartbeat: self.last_heartbeat.0,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workflow_node_executions, check_for_backend(DbBackend))]
#[diesel(treat_none_as_default_value = false)]
struct ExecutionRow {
    id: DbUuid,
    workflow_run_id: DbUuid,
    node_id: String,
    node_type: String,
    status: String,
    sequence: i64,
    input_payload: Option<DbJson>,
    output_payload: Option<DbJson>,
    error_message: Option<String>,
    started_at: DbTime,
    finished_at: Option<DbTime>,
    created_at: DbTime,
    updated_at: DbTime,
}

impl ExecutionRow {
    fn into_domain(self) -> StorageResult<WorkflowNodeExecution> {
        Ok(WorkflowNodeExecution {
            id: self.id.0,
            workflow_run_id: self.workflow_run_id.0,
            node_id: self.node_id,
            node_type: self.node_type,
            status: self.status.parse()?,
            sequence: self.sequence,
            input_payload: self.input_payload.map(|j| j.0),
            output_payload: self.output_payload.map(|j| j.0),
            error_message: self.error_message,
            started_at: self.started_at.0,
            finished_at: self.finished_at.map(|t| t.0),
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

/// What `update_workflow_node_execution_status` writes; `None` keeps the
/// stored value (Handshake writes `COALESCE(new, old)`).
#[derive(AsChangeset)]
#[diesel(table_name = workflow_node_executions, check_for_backend(DbBackend))]
struct ExecutionStatusChanges {
    status: String,
    output_payload: Option<DbJson>,
    error_message: Option<String>,
    finished_at: Option<DbTime>,
    updated_at: DbTime,
}

// ---------------------------------------------------------------------------
// Helpers

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A typed value from its stored JSON text, parsed straight into the type.
fn from_json<T: serde::de::DeserializeOwned>(field: &str, value: DbJsonText) -> StorageResult<T> {
    serde_json::from_str(&value.0)
        .map_err(|e| StorageError::Serialization(format!("stored {field} is not valid: {e}")))
}

fn to_json<T: serde::Serialize>(field: &str, value: &T) -> StorageResult<DbJson> {
    let json = serde_json::to_value(value)?;
    validate::json(field, &json)?;
    Ok(DbJson(json))
}

/// A typed value as the stores keep it: the text of [`to_json`]'s value.
fn to_json_text<T: serde::Serialize>(field: &str, value: &T) -> StorageResult<DbJsonText> {
    Ok(DbJsonText::of(&to_json(field, value)?.0)?)
}

fn optional_json(field: &str, value: Option<Value>) -> StorageResult<Option<DbJson>> {
    value
        .map(|v| validate::json(field, &v).map(|()| DbJson(v)))
        .transpose()
}

fn optional_text(field: &str, value: &Option<String>) -> StorageResult<()> {
    value
        .as_deref()
        .map_or(Ok(()), |v| validate::text(field, v))
}

/// Rows per multi-row INSERT so that one statement stays under the
/// backend's bind-parameter limit.
fn chunk_rows(columns: usize) -> usize {
    (MAX_BIND_PARAMS / columns).max(1)
}

/// Whether a bulk write of `rows` rows into one table goes through the
/// backend's bulk writer (binary COPY) rather than multi-row INSERTs: from
/// `COPY_FROM_ROWS` rows on, where the backend has COPY. The raw-SQL
/// baseline asks the same.
pub(super) fn copies(rows: usize) -> bool {
    matches!(COPY_FROM_ROWS, Some(from) if rows >= from)
}

/// Inserts `rows` inside the caller's transaction and returns them as domain
/// values, in the same order: as one binary COPY when [`copies`] says so,
/// else as multi-row INSERTs sized to the bind-parameter limit. Either way
/// a failing row fails the call, and the caller's transaction rolls back
/// every row. `what` names the rows in errors.
fn insert_all<R: BulkRow>(
    conn: &mut Conn,
    rows: Vec<R>,
    what: &str,
) -> StorageResult<Vec<R::Domain>> {
    if !copies(rows.len()) {
        for chunk in rows.chunks(chunk_rows(R::COLUMNS)) {
            R::insert(conn, chunk).map_err(|e| from_diesel(e, what))?;
        }
        return rows.into_iter().map(R::into_domain).collect();
    }
    let records = rows
        .into_iter()
        .map(|row| row.into_domain().map(R::record))
        .collect::<StorageResult<Vec<_>>>()?;
    conn.write_records(R::TABLE, &records, None, false)?;
    // Every record was made from an `R` above.
    Ok(records.into_iter().filter_map(R::from_record).collect())
}

/// Refuses a list whose items share an id, before anything is written.
fn unique_ids<'a>(
    what: &str,
    ids: impl Iterator<Item = &'a str>,
) -> StorageResult<HashSet<&'a str>> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(StorageError::Conflict(format!(
                "{what} {id:?} appears more than once"
            )));
        }
    }
    Ok(seen)
}

/// `NotFound` when a delete or update touched no row.
fn expect_one(affected: usize, entity: &str, id: impl std::fmt::Display) -> StorageResult<()> {
    if affected == 0 {
        Err(StorageError::not_found(entity, id))
    } else {
        Ok(())
    }
}

fn load_graph(conn: &mut Conn, canvas: CanvasRow) -> StorageResult<CanvasGraph> {
    let nodes = canvas_nodes::table
        .filter(canvas_nodes::canvas_id.eq(&canvas.id))
        .order(canvas_nodes::id)
        .select(NodeRow::as_select())
        .load(conn)
        .map_err(|e| from_diesel(e, "canvas nodes"))?;
    let edges = canvas_edges::table
        .filter(canvas_edges::canvas_id.eq(&canvas.id))
        .order(canvas_edges::id)
        .select(EdgeRow::as_select())
        .load(conn)
        .map_err(|e| from_diesel(e, "canvas edges"))?;
    Ok(CanvasGraph {
        canvas: canvas.into_domain()?,
        nodes: nodes
            .into_iter()
            .map(NodeRow::into_domain)
            .collect::<StorageResult<_>>()?,
        edges: edges
            .into_iter()
            .map(EdgeRow::into_domain)
            .collect::<StorageResult<_>>()?,
    })
}

/// The jobs `prune_ai_jobs` considers: completed or failed, created before
/// `cutoff`. Macros, not functions: a DELETE's filter must be a concrete
/// expression, not a boxed one.
macro_rules! prune_window {
    ($cutoff:expr) => {
        ai_jobs::status
            .eq_any([JobState::Completed.as_str(), JobState::Failed.as_str()])
            .and(ai_jobs::created_at.lt($cutoff))
    };
}

/// The jobs of [`prune_window!`] that are pinned, or not, as asked.
macro_rules! prune_candidates {
    ($cutoff:expr, $pinned:expr) => {
        prune_window!($cutoff).and(ai_jobs::pinned.eq($pinned))
    };
}

/// Completed and failed jobs counted for a prune, in one statement.
#[derive(Default)]
struct PruneCounts {
    /// Pinned, created before the cutoff.
    pinned: i64,
    /// Unpinned, created before the cutoff: the candidates.
    unpinned: i64,
    /// Unpinned, created at or after the cutoff: newer than every
    /// candidate, so they fill the `min_versions` window first.
    recent: i64,
}

impl PruneCounts {
    /// Candidates kept to make up the newest `min_versions` unpinned
    /// completed/failed jobs, recent ones included (Handshake's rule).
    fn window(&self, min_versions: u32) -> i64 {
        (i64::from(min_versions) - self.recent).clamp(0, self.unpinned)
    }
}

fn prune_counts(conn: &mut Conn, cutoff: DbTime) -> StorageResult<PruneCounts> {
    use diesel::dsl::{case_when, count, count_star};
    let rows: Vec<(bool, i64, i64)> = ai_jobs::table
        .filter(ai_jobs::status.eq_any([JobState::Completed.as_str(), JobState::Failed.as_str()]))
        .group_by(ai_jobs::pinned)
        .select((
            ai_jobs::pinned,
            count_star(),
            count(case_when(ai_jobs::created_at.lt(cutoff), ai_jobs::id)),
        ))
        .load(conn)
        .map_err(|e| from_diesel(e, "ai jobs"))?;
    Ok(rows
        .into_iter()
        .fold(PruneCounts::default(), |mut c, (pinned, all, expired)| {
            if pinned {
                c.pinned += expired;
            } else {
                c.unpinned += expired;
                c.recent += all - expired;
            }
            c
        }))
}

/// Whether a node execution entering `status` has finished: a terminal
/// state, or `stalled` (as in Handshake).
fn ends_execution(status: JobState) -> bool {
    status.is_terminal() || status == JobState::Stalled
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The versions of this build's migrations, oldest first.
fn embedded_versions() -> StorageResult<Vec<String>> {
    let mut versions: Vec<String> = MigrationSource::<DbBackend>::migrations(&MIGRATIONS)
        .map_err(|e| StorageError::Migration(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    versions.sort();
    Ok(versions)
}

/// The applied migration versions, oldest first, read with plain SELECTs:
/// Diesel's `MigrationHarness::applied_migrations` first creates its
/// bookkeeping table if it is missing, which is DDL that a role allowed
/// only to read and write rows may not run (and a store with migrations
/// off must not).
fn applied_versions(conn: &mut Conn) -> StorageResult<Vec<String>> {
    use diesel::sql_types::{Bool, Text};
    #[derive(QueryableByName)]
    struct Present {
        #[diesel(sql_type = Bool)]
        present: bool,
    }
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let err = |e| from_diesel(e, "the applied migrations (__diesel_schema_migrations)");
    let present: Present = diesel::sql_query(MIGRATIONS_TABLE_PRESENT_SQL)
        .get_result(conn)
        .map_err(err)?;
    if !present.present {
        // Perhaps there, but out of this role's reach: say so.
        check_schema_access(conn)?;
        return Ok(Vec::new());
    }
    let mut versions: Vec<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Version>(conn)
            .map_err(err)?
            .into_iter()
            .map(|v| v.version)
            .collect();
    versions.sort();
    Ok(versions)
}

/// The newest of the applied migration versions, as a number.
fn newest_version(applied: &[String]) -> StorageResult<Option<u64>> {
    applied
        .iter()
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                StorageError::Migration(format!("applied migration version {v:?} is not a number"))
            })
        })
        .try_fold(None, |newest: Option<u64>, v| Ok(newest.max(Some(v?))))
}

/// The live schema, read from the catalog by the backend's `SCHEMA_*_SQL`.
fn describe_schema(conn: &mut Conn) -> StorageResult<SchemaDescription> {
    use diesel::sql_types::{BigInt, Bool, Nullable, Text};
    #[derive(QueryableByName)]
    struct ColumnRow {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        sql_type: String,
        #[diesel(sql_type = Bool)]
        nullable: bool,
        #[diesel(sql_type = Nullable<Text>)]
        default_value: Option<String>,
    }
    #[derive(QueryableByName)]
    struct IndexRow {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        index_name: String,
        #[diesel(sql_type = Bool)]
        is_unique: bool,
        #[diesel(sql_type = Bool)]
        is_primary: bool,
        #[diesel(sql_type = BigInt)]
        position: i64,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Bool)]
        descending: bool,
    }
    #[derive(QueryableByName)]
    struct ForeignKeyRow {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = BigInt)]
        position: i64,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        ref_table: String,
        #[diesel(sql_type = Text)]
        ref_column: String,
        #[diesel(sql_type = Text)]
        on_update: String,
        #[diesel(sql_type = Text)]
        on_delete: String,
    }
    #[derive(QueryableByName)]
    struct TriggerRow {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        definition: String,
    }
    let err = |e| from_diesel(e, "schema catalog");
    let columns: Vec<ColumnRow> = diesel::sql_query(SCHEMA_COLUMNS_SQL)
        .load(conn)
        .map_err(err)?;
    let mut index_rows: Vec<IndexRow> = diesel::sql_query(SCHEMA_INDEXES_SQL)
        .load(conn)
        .map_err(err)?;
    let mut fk_rows: Vec<ForeignKeyRow> = diesel::sql_query(SCHEMA_FOREIGN_KEYS_SQL)
        .load(conn)
        .map_err(err)?;
    let triggers: Vec<TriggerRow> = diesel::sql_query(SCHEMA_TRIGGERS_SQL)
        .load(conn)
        .map_err(err)?;
    let mut description = SchemaDescription::default();
    for c in columns {
        if !description.tables.contains(&c.table_name) {
            description.tables.push(c.table_name.clone());
        }
        description.columns.push(ColumnSchema {
            table: c.table_name,
            column: c.column_name,
            sql_type: c.sql_type,
            nullable: c.nullable,
            default: c.default_value,
        });
    }
    // Rows come one per key column: group them by index, in key order.
    index_rows.sort_by(|a, b| {
        (&a.table_name, &a.index_name, a.position).cmp(&(&b.table_name, &b.index_name, b.position))
    });
    for chunk in
        index_rows.chunk_by(|a, b| (&a.table_name, &a.index_name) == (&b.table_name, &b.index_name))
    {
        let first = &chunk[0];
        let columns: Vec<String> = chunk
            .iter()
            .map(|r| {
                format!(
                    "{}{}",
                    r.column_name,
                    if r.descending { " DESC" } else { "" }
                )
            })
            .collect();
        if first.is_primary {
            description
                .primary_keys
                .push((first.table_name.clone(), columns));
        } else {
            description.indexes.push(IndexSchema {
                table: first.table_name.clone(),
                name: first.index_name.clone(),
                unique: first.is_unique,
                columns,
            });
        }
    }
    fk_rows.sort_by(|a, b| {
        (&a.table_name, &a.name, a.position).cmp(&(&b.table_name, &b.name, b.position))
    });
    for chunk in fk_rows.chunk_by(|a, b| (&a.table_name, &a.name) == (&b.table_name, &b.name)) {
        let first = &chunk[0];
        description.foreign_keys.push(ForeignKeySchema {
            table: first.table_name.clone(),
            columns: chunk.iter().map(|r| r.column_name.clone()).collect(),
            ref_table: first.ref_table.clone(),
            ref_columns: chunk.iter().map(|r| r.ref_column.clone()).collect(),
            on_update: first.on_update.clone(),
            on_delete: first.on_delete.clone(),
        });
    }
    description.triggers = triggers
        .into_iter()
        .map(|t| TriggerSchema {
            table: t.table_name,
            name: t.name,
            definition: t.definition,
        })
        .collect();
    Ok(description.normalized())
}

// ---------------------------------------------------------------------------
// The API

impl Storage for Store {
    fn backend(&self) -> Backend {
        BACKEND
    }

    fn ping(&self) -> StorageResult<()> {
        diesel::sql_query("SELECT 1")
            .execute(&mut self.conn()?)
            .map(drop)
            .map_err(|e| from_diesel(e, "ping"))
    }

    fn run_migrations(&self) -> StorageResult<()> {
        // Nothing pending: done, without DDL (Diesel's harness would create
        // its bookkeeping table first), so a least-privilege role may call
        // this on a current schema.
        if self.migration_status()?.pending.is_empty() {
            return Ok(());
        }
        // Under the backend's migration lock, so that two processes opening
        // one database at once apply each migration once.
        migration_lock(&mut *self.conn()?, |conn| {
            conn.run_pending_migrations(MIGRATIONS)
                .map(drop)
                .map_err(|e| StorageError::Migration(e.to_string()))
        })
    }

    fn migration_status(&self) -> StorageResult<MigrationStatus> {
        let applied = read_tx(&mut *self.conn()?, applied_versions)?;
        let pending = embedded_versions()?
            .into_iter()
            .filter(|v| !applied.contains(v))
            .collect();
        Ok(MigrationStatus {
            backend: BACKEND,
            applied,
            pending,
        })
    }

    fn migration_version(&self) -> StorageResult<Option<u64>> {
        newest_version(&self.migration_status()?.applied)
    }

    fn schema_fingerprint(&self) -> StorageResult<SchemaFingerprint> {
        let version = self.migration_version()?;
        let mut conn = self.conn()?;
        let description = read_tx(&mut conn, describe_schema)?;
        Ok(SchemaFingerprint::new(BACKEND, version, description))
    }

    fn list_workspaces(&self) -> StorageResult<Vec<Workspace>> {
        self.read(|| {
            self.load_all(
                workspaces::table
                    .order((workspaces::created_at, workspaces::id))
                    .select(WorkspaceRow::as_select()),
                "workspaces",
                WorkspaceRow::into_domain,
            )
        })
    }

    fn create_workspace(
        &self,
        ctx: &WriteContext,
        workspace: NewWorkspace,
    ) -> StorageResult<Workspace> {
        let id = crate::ids::new_uuid().to_string();
        let meta = guard::validate_write(ctx, &id)?;
        validate::non_blank("workspace name", &workspace.name)?;
        let row = WorkspaceRow {
            id,
            name: workspace.name,
            created_at: DbTime(meta.timestamp),
            stamp: WorkspaceStamp::new(&meta),
        };
        self.run(
            diesel::insert_into(workspaces::table).values(&row),
            &format!("workspace {}", row.id),
        )?;
        row.into_domain()
    }

    fn get_workspace(&self, id: &str) -> StorageResult<Option<Workspace>> {
        self.read(|| {
            validate::key("workspace id", id)?;
            workspaces::table
                .find(id)
                .select(WorkspaceRow::as_select())
                .get_result(&mut self.conn()?)
                .optional()
                .map_err(|e| from_diesel(e, &format!("workspace {id}")))?
                .map(WorkspaceRow::into_domain)
                .transpose()
        })
    }

    fn delete_workspace(&self, ctx: &WriteContext, id: &str) -> StorageResult<()> {
        self.delete_one(
            ctx,
            "workspace",
            id,
            diesel::delete(workspaces::table.find(id)),
        )
    }

    fn list_documents(&self, workspace_id: &str) -> StorageResult<Vec<Document>> {
        self.read(|| {
            validate::key("workspace id", workspace_id)?;
            self.load_all(
                documents::table
                    .filter(documents::workspace_id.eq(workspace_id))
                    .order((documents::created_at, documents::id))
                    .select(DocumentRow::as_select()),
                "documents",
                DocumentRow::into_domain,
            )
        })
    }

    fn get_document(&self, id: &str) -> StorageResult<Document> {
        self.read(|| {
            validate::key("document id", id)?;
            self.load_one(
                documents::table.find(id).select(DocumentRow::as_select()),
                &format!("document {id}"),
                DocumentRow::into_domain,
            )
        })
    }

    fn create_document(&self, ctx: &WriteContext, doc: NewDocument) -> StorageResult<Document> {
        let id = crate::ids::new_uuid().to_string();
        let meta = guard::validate_write(ctx, &id)?;
        validate::id("workspace_id", &doc.workspace_id)?;
        validate::non_blank("document title", &doc.title)?;
        let row = DocumentRow {
            id,
            workspace_id: doc.workspace_id,
            title: doc.title,
            created_at: DbTime(meta.timestamp),
            stamp: DocumentStamp::new(&meta),
        };
        self.run(
            diesel::insert_into(documents::table).values(&row),
            &format!("document in workspace {}", row.workspace_id),
        )?;
        row.into_domain()
    }

    fn delete_document(&self, ctx: &WriteContext, id: &str) -> StorageResult<()> {
        self.delete_one(
            ctx,
            "document",
            id,
            diesel::delete(documents::table.find(id)),
        )
    }

    fn get_blocks(&self, document_id: &str) -> StorageResult<Vec<Block>> {
        self.read(|| {
            validate::key("document id", document_id)?;
            self.load_all(
                blocks::table
                    .filter(blocks::document_id.eq(document_id))
                    .order((blocks::sequence, blocks::id))
                    .select(BlockRow::as_select()),
                "blocks",
                BlockRow::into_domain,
            )
        })
    }

    fn get_block(&self, id: &str) -> StorageResult<Block> {
        self.read(|| {
            validate::key("block id", id)?;
            self.load_one(
                blocks::table.find(id).select(BlockRow::as_select()),
                &format!("block {id}"),
                BlockRow::into_domain,
            )
        })
    }

    fn create_block(&self, ctx: &WriteContext, mut block: NewBlock) -> StorageResult<Block> {
        // Too-deep JSON is taken apart first (dropping it whole could
        // overflow the stack), but the guard's verdict comes first.
        let deep = validate::shallow_json("derived_content", [&mut block.derived_content]);
        let resource = block
            .id
            .clone()
            .unwrap_or_else(|| block.document_id.clone());
        let meta = guard::validate_write(ctx, &resource)?;
        deep?;
        let row = BlockRow::new(block, &meta)?;
        self.run(
            diesel::insert_into(blocks::table).values(&row),
            &format!("block {}", row.id),
        )?;
        row.into_domain()
    }

    fn update_block(
        &self,
        ctx: &WriteContext,
        id: &str,
        mut update: BlockUpdate,
    ) -> StorageResult<Block> {
        let deep = validate::shallow_json("derived_content", [&mut update.derived_content]);
        let meta = guard::validate_write(ctx, id)?;
        deep?;
        validate::key("block id", id)?;
        let changes = BlockChanges::new(update)?;
        self.load_one(
            diesel::update(blocks::table.find(id))
                .set((&changes, &BlockStamp::new(&meta)))
                .returning(BlockRow::as_returning())
                .cache_prepared(),
            &format!("block {id}"),
            BlockRow::into_domain,
        )
    }

    fn delete_block(&self, ctx: &WriteContext, id: &str) -> StorageResult<()> {
        self.delete_one(ctx, "block", id, diesel::delete(blocks::table.find(id)))
    }

    fn replace_blocks(
        &self,
        ctx: &WriteContext,
        document_id: &str,
        mut new_blocks: Vec<NewBlock>,
    ) -> StorageResult<Vec<Block>> {
        let deep = validate::shallow_json(
            "derived_content",
            new_blocks.iter_mut().map(|b| &mut b.derived_content),
        );
        let meta = guard::validate_write(ctx, document_id)?;
        deep?;
        validate::key("document id", document_id)?;
        let mut rows = new_blocks
            .into_iter()
            .map(|b| {
                BlockRow::new(
                    NewBlock {
                        document_id: document_id.to_string(),
                        ..b
                    },
                    &meta,
                )
            })
            .collect::<StorageResult<Vec<_>>>()?;
        unique_ids("block id", rows.iter().map(|r| r.id.as_str()))?;
        rows.sort_by(|a, b| (a.sequence, &a.id).cmp(&(b.sequence, &b.id)));
        let mut conn = self.conn()?;
        write_tx(&mut conn, |conn| {
            // Stamping the document checks that it exists and, on
            // PostgreSQL, row-locks it so concurrent replaces of one
            // document run one after the other, as on SQLite.
            let touched = diesel::update(documents::table.find(document_id))
                .set(&DocumentStamp::new(&meta))
                .cache_prepared()
                .execute(conn)
                .map_err(|e| from_diesel(e, &format!("document {document_id}")))?;
            expect_one(touched, "document", document_id)?;
            diesel::delete(blocks::table.filter(blocks::document_id.eq(document_id)))
                .execute(conn)
                .map_err(|e| from_diesel(e, "blocks"))?;
            insert_all(conn, rows, &format!("blocks of document {document_id}"))
        })
    }

    fn create_canvas(&self, ctx: &WriteContext, canvas: NewCanvas) -> StorageResult<Canvas> {
        let id = crate::ids::new_uuid().to_string();
        let meta = guard::validate_write(ctx, &id)?;
        validate::id("workspace_id", &canvas.workspace_id)?;
        validate::non_blank("canvas title", &canvas.title)?;
        let row = CanvasRow {
            id,
            workspace_id: canvas.workspace_id,
            title: canvas.title,
            created_at: DbTime(meta.timestamp),
            stamp: CanvasStamp::new(&meta),
        };
        self.run(
            diesel::insert_into(canvases::table).values(&row),
            &format!("canvas in workspace {}", row.workspace_id),
        )?;
        row.into_domain()
    }

    fn list_canvases(&self, workspace_id: &str) -> StorageResult<Vec<Canvas>> {
        self.read(|| {
            validate::key("workspace id", workspace_id)?;
            self.load_all(
                canvases::table
                    .filter(canvases::workspace_id.eq(workspace_id))
                    .order((canvases::created_at, canvases::id))
                    .select(CanvasRow::as_select()),
                "canvases",
                CanvasRow::into_domain,
            )
        })
    }

    fn get_canvas_with_graph(&self, id: &str) -> StorageResult<CanvasGraph> {
        self.read(|| {
            validate::key("canvas id", id)?;
            let mut conn = self.conn()?;
            read_tx(&mut conn, |conn| {
                let canvas = canvases::table
                    .find(id)
                    .select(CanvasRow::as_select())
                    .get_result(conn)
                    .map_err(|e| from_diesel(e, &format!("canvas {id}")))?;
                load_graph(conn, canvas)
            })
        })
    }

    fn update_canvas_graph(
        &self,
        ctx: &WriteContext,
        id: &str,
        mut nodes: Vec<NewCanvasNode>,
        edges: Vec<NewCanvasEdge>,
    ) -> StorageResult<CanvasGraph> {
        let deep = validate::shallow_json("node data", nodes.iter_mut().map(|n| &mut n.data));
        let meta = guard::validate_write(ctx, id)?;
        deep?;
        validate::key("canvas id", id)?;
        let node_rows = nodes
            .into_iter()
            .map(|n| NodeRow::new(id, n, &meta))
            .collect::<StorageResult<Vec<_>>>()?;
        let edge_rows = edges
            .into_iter()
            .map(|e| EdgeRow::new(id, e, &meta))
            .collect::<StorageResult<Vec<_>>>()?;
        let node_ids = unique_ids("node id", node_rows.iter().map(|n| n.id.as_str()))?;
        unique_ids("edge id", edge_rows.iter().map(|e| e.id.as_str()))?;
        if let Some(edge) = edge_rows.iter().find(|e| {
            !node_ids.contains(e.from_node_id.as_str()) || !node_ids.contains(e.to_node_id.as_str())
        }) {
            return Err(StorageError::validation(format!(
                "edge {:?} joins {:?} to {:?}, but both must be nodes of this graph",
                edge.id, edge.from_node_id, edge.to_node_id
            )));
        }
        let mut conn = self.conn()?;
        write_tx(&mut conn, |conn| {
            let canvas = diesel::update(canvases::table.find(id))
                .set(&CanvasStamp::new(&meta))
                .returning(CanvasRow::as_returning())
                .cache_prepared()
                .get_result(conn)
                .map_err(|e| from_diesel(e, &format!("canvas {id}")))?;
            diesel::delete(canvas_edges::table.filter(canvas_edges::canvas_id.eq(id)))
                .execute(conn)
                .map_err(|e| from_diesel(e, "canvas edges"))?;
            diesel::delete(canvas_nodes::table.filter(canvas_nodes::canvas_id.eq(id)))
                .execute(conn)
                .map_err(|e| from_diesel(e, "canvas nodes"))?;
            let mut nodes = insert_all(conn, node_rows, &format!("nodes of canvas {id}"))?;
            let mut edges = insert_all(conn, edge_rows, &format!("edges of canvas {id}"))?;
            nodes.sort_by(|a, b| a.id.cmp(&b.id));
            edges.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(CanvasGraph {
                canvas: canvas.into_domain()?,
                nodes,
                edges,
            })
        })
    }

    fn delete_canvas(&self, ctx: &WriteContext, id: &str) -> StorageResult<()> {
        self.delete_one(ctx, "canvas", id, diesel::delete(canvases::table.find(id)))
    }

    fn create_ai_job(&self, mut job: NewAiJob) -> StorageResult<AiJob> {
        validate::shallow_json("job_inputs", [&mut job.job_inputs])?;
        for (field, value) in [
            ("protocol_id", &job.protocol_id),
            ("profile_id", &job.profile_id),
            ("capability_profile_id", &job.capability_profile_id),
            ("status_reason", &job.status_reason),
        ] {
            validate::text(field, value)?;
        }
        crate::job_contract::check(job.job_kind, &job.profile_id, &job.protocol_id)?;
        let now = validate::now();
        for r in &job.entity_refs {
            validate::indexed_text("entity_id", &r.entity_id)?;
            validate::indexed_text("entity_kind", &r.entity_kind)?;
        }
        let id = DbUuid(crate::ids::new_uuid());
        let row = AiJobRow {
            id,
            trace_id: DbUuid(job.trace_id),
            workflow_run_id: None,
            job_kind: job.job_kind.as_str().to_string(),
            status: JobState::Queued.as_str().to_string(),
            status_reason: job.status_reason,
            error_message: None,
            protocol_id: job.protocol_id,
            profile_id: job.profile_id,
            capability_profile_id: job.capability_profile_id,
            access_mode: job.access_mode.as_str().to_string(),
            safety_mode: job.safety_mode.as_str().to_string(),
            planned_operations: to_json_text("planned_operations", &job.planned_operations)?,
            metrics: to_json_text("metrics", &job.metrics)?,
            job_inputs: optional_json("job_inputs", job.job_inputs)?,
            job_outputs: None,
            pinned: false,
            created_at: DbTime(now),
            updated_at: DbTime(now),
            entity_refs: to_json_text("entity_refs", &job.entity_refs)?,
        };
        // One INSERT: the trigger fills ai_job_entity_refs in the same statement.
        diesel::insert_into(ai_jobs::table)
            .values(&row)
            .execute(&mut *self.conn()?)
            .map_err(|e| from_diesel(e, &format!("ai job {}", id.0)))?;
        row.into_domain()
    }

    fn get_ai_job(&self, job_id: Uuid) -> StorageResult<AiJob> {
        self.read(|| {
            self.load_one(
                ai_jobs::table
                    .find(DbUuid(job_id))
                    .select(AiJobRow::as_select()),
                &format!("ai job {job_id}"),
                AiJobRow::into_domain,
            )
        })
    }

    fn list_ai_jobs(&self, filter: AiJobListFilter) -> StorageResult<Vec<AiJob>> {
        self.read(|| {
            let filter = filter.clone();
            if let Some(wsid) = &filter.wsid {
                validate::text("wsid", wsid)?;
            }
            let from = filter
                .from
                .map(|at| validate::timestamp("from", at).map(DbTime))
                .transpose()?;
            let to = filter
                .to
                .map(|at| validate::timestamp("to", at).map(DbTime))
                .transpose()?;
            let cursor = filter
                .cursor
                .map(|c| {
                    validate::timestamp("cursor", c.created_at)
                        .map(|at| (DbTime(at), DbUuid(c.job_id)))
                })
                .transpose()?;
            // One page in list order, `(created_at, id)` newest first, as
            // `$created_at` and `$id` name them: the job's own columns, or
            // with the workspace filter the copies its refs carry, so the
            // page is read in the order of the refs index and stops after
            // `limit` rows instead of fetching the workspace's every job.
            macro_rules! page {
                ($query:expr, $created_at:expr, $id:expr) => {{
                    let mut query = $query;
                    if let Some(state) = filter.status {
                        query = query.filter(ai_jobs::status.eq(state.as_str()));
                    }
                    if let Some(kind) = filter.job_kind {
                        // A legacy spelling (`term_exec`) reads as its kind,
                        // so it is found by that kind's filter too.
                        query = match kind.stored_forms().as_slice() {
                            [only] => query.filter(ai_jobs::job_kind.eq(*only)),
                            forms => query.filter(ai_jobs::job_kind.eq_any(forms.to_vec())),
                        };
                    }
                    if let Some(from) = from {
                        query = query.filter($created_at.ge(from));
                    }
                    if let Some(to) = to {
                        query = query.filter($created_at.lt(to));
                    }
                    if let Some((at, id)) = cursor {
                        query =
                            query.filter($created_at.lt(at).or($created_at.eq(at).and($id.lt(id))));
                    }
                    if let Some(limit) = filter.limit {
                        query = query.limit(i64::from(limit));
                    }
                    query
                        .order(($created_at.desc(), $id.desc()))
                        .select(AiJobRow::as_select())
                        .load(&mut *self.conn()?)
                        .map_err(|e| from_diesel(e, "ai jobs"))?
                }};
            }
            let rows: Vec<AiJobRow> = match filter.wsid.clone() {
                None => page!(
                    ai_jobs::table.into_boxed(),
                    ai_jobs::created_at,
                    ai_jobs::id
                ),
                Some(wsid) => {
                    use ai_job_entity_refs as refs;
                    // A job that holds the same workspace ref twice is
                    // listed once, at its first such ref. The check looks
                    // for an earlier one only past position 0 (a probe of
                    // the primary key): inside an OR, PostgreSQL keeps it
                    // a per-row subplan, where a bare NOT EXISTS becomes
                    // an anti-join reading all of the workspace's refs.
                    let earlier = diesel::alias!(ai_job_entity_refs as earlier_ref);
                    let repeated = earlier
                        .filter(earlier.field(refs::job_id).eq(refs::job_id))
                        .filter(earlier.field(refs::position).lt(refs::position))
                        .filter(earlier.field(refs::entity_kind).eq(refs::entity_kind))
                        .filter(earlier.field(refs::entity_id).eq(refs::entity_id));
                    page!(
                        refs::table
                            .inner_join(ai_jobs::table)
                            .filter(refs::entity_kind.eq("workspace"))
                            .filter(refs::entity_id.eq(wsid))
                            .filter(
                                refs::position
                                    .eq(0)
                                    .or(diesel::dsl::not(diesel::dsl::exists(repeated))),
                            )
                            .into_boxed(),
                        refs::created_at,
                        refs::job_id
                    )
                }
            };
            rows.into_iter().map(AiJobRow::into_domain).collect()
        })
    }

    fn update_ai_job_status(&self, mut update: JobStatusUpdate) -> StorageResult<AiJob> {
        validate::shallow_json("job_outputs", [&mut update.job_outputs])?;
        validate::text("status_reason", &update.status_reason)?;
        optional_text("error_message", &update.error_message)?;
        let changes = JobStatusChanges {
            status: update.state.as_str().to_string(),
            status_reason: update.status_reason,
            error_message: update.error_message,
            metrics: update.metrics.map(|m| to_json("metrics", &m)).transpose()?,
            workflow_run_id: update.workflow_run_id.map(DbUuid),
            trace_id: update.trace_id.map(DbUuid),
            job_outputs: optional_json("job_outputs", update.job_outputs)?,
            updated_at: DbTime(validate::now()),
        };
        let job_id = update.job_id;
        diesel::update(ai_jobs::table.find(DbUuid(job_id)))
            .set(&changes)
            .returning(AiJobRow::as_returning())
            .cache_prepared()
            .get_result(&mut *self.conn()?)
            .map_err(|e| from_diesel(e, &format!("ai job {job_id}")))?
            .into_domain()
    }

    fn set_job_outputs(&self, job_id: Uuid, mut outputs: Option<Value>) -> StorageResult<()> {
        validate::shallow_json("job_outputs", [&mut outputs])?;
        let outputs = optional_json("job_outputs", outputs)?;
        let affected = self.run(
            diesel::update(ai_jobs::table.find(DbUuid(job_id)))
                .set((
                    ai_jobs::job_outputs.eq(outputs),
                    ai_jobs::updated_at.eq(DbTime(validate::now())),
                ))
                .cache_prepared(),
            &format!("ai job {job_id}"),
        )?;
        expect_one(affected, "ai job", job_id)
    }

    fn set_job_pinned(&self, job_id: Uuid, pinned: bool) -> StorageResult<()> {
        let affected = self.run(
            diesel::update(ai_jobs::table.find(DbUuid(job_id)))
                .set((
                    ai_jobs::pinned.eq(pinned),
                    ai_jobs::updated_at.eq(DbTime(validate::now())),
                ))
                .cache_prepared(),
            &format!("ai job {job_id}"),
        )?;
        expect_one(affected, "ai job", job_id)
    }

    fn create_workflow_run(
        &self,
        job_id: Uuid,
        status: JobState,
        last_heartbeat: Option<DateTime<Utc>>,
    ) -> StorageResult<WorkflowRun> {
        let now = validate::now();
        let heartbeat = match last_heartbeat {
            Some(at) => validate::timestamp("last_heartbeat", at)?,
            None => now,
        };
        let row = RunRow {
            id: DbUuid(crate::ids::new_uuid()),
            job_id: DbUuid(job_id),
            status: status.as_str().to_string(),
            error_message: None,
            last_heartbeat: DbTime(heartbeat),
            created_at: DbTime(now),
            updated_at: DbTime(now),
        };
        self.run(
            diesel::insert_into(workflow_runs::table).values(&row),
            &format!("workflow run of ai job {job_id}"),
        )?;
        row.into_domain()
    }

    fn update_workflow_run_status(
        &self,
        run_id: Uuid,
        status: JobState,
        error_message: Option<String>,
    ) -> StorageResult<WorkflowRun> {
        optional_text("error_message", &error_message)?;
        self.load_one(
            diesel::update(workflow_runs::table.find(DbUuid(run_id)))
                .set((
                    workflow_runs::status.eq(status.as_str()),
                    workflow_runs::error_message.eq(error_message),
                    workflow_runs::updated_at.eq(DbTime(validate::now())),
                ))
                .returning(RunRow::as_returning())
                .cache_prepared(),
            &format!("workflow run {run_id}"),
            RunRow::into_domain,
        )
    }

    fn heartbeat_workflow(&self, run_id: Uuid, at: DateTime<Utc>) -> StorageResult<()> {
        let at = validate::timestamp("heartbeat", at)?;
        let affected = self.run(
            diesel::update(workflow_runs::table.find(DbUuid(run_id)))
                .set((
                    workflow_runs::last_heartbeat.eq(DbTime(at)),
                    workflow_runs::updated_at.eq(DbTime(validate::now())),
                ))
                .cache_prepared(),
            &format!("workflow run {run_id}"),
        )?;
        expect_one(affected, "workflow run", run_id)
    }

    fn create_workflow_node_execution(
        &self,
        mut exec: NewNodeExecution,
    ) -> StorageResult<WorkflowNodeExecution> {
        validate::shallow_json("input_payload", [&mut exec.input_payload])?;
        validate::text("node_id", &exec.node_id)?;
        validate::text("node_type", &exec.node_type)?;
        let now = validate::now();
        let run_id = exec.workflow_run_id;
        let row = ExecutionRow {
            id: DbUuid(crate::ids::new_uuid()),
            workflow_run_id: DbUuid(run_id),
            node_id: exec.node_id,
            node_type: exec.node_type,
            status: exec.status.as_str().to_string(),
            sequence: exec.sequence,
            input_payload: optional_json("input_payload", exec.input_payload)?,
            output_payload: None,
            error_message: None,
            started_at: DbTime(validate::timestamp("started_at", exec.started_at)?),
            finished_at: None,
            created_at: DbTime(now),
            updated_at: DbTime(now),
        };
        self.run(
            diesel::insert_into(workflow_node_executions::table).values(&row),
            &format!("node execution of workflow run {run_id}"),
        )?;
        row.into_domain()
    }

    fn update_workflow_node_execution_status(
        &self,
        exec_id: Uuid,
        status: JobState,
        mut output: Option<Value>,
        error_message: Option<String>,
    ) -> StorageResult<WorkflowNodeExecution> {
        validate::shallow_json("output_payload", [&mut output])?;
        optional_text("error_message", &error_message)?;
        let now = validate::now();
        let changes = ExecutionStatusChanges {
            status: status.as_str().to_string(),
            output_payload: optional_json("output_payload", output)?,
            error_message,
            finished_at: ends_execution(status).then_some(DbTime(now)),
            updated_at: DbTime(now),
        };
        self.load_one(
            diesel::update(workflow_node_executions::table.find(DbUuid(exec_id)))
                .set(&changes)
                .returning(ExecutionRow::as_returning())
                .cache_prepared(),
            &format!("node execution {exec_id}"),
            ExecutionRow::into_domain,
        )
    }

    fn list_workflow_node_executions(
        &self,
        run_id: Uuid,
    ) -> StorageResult<Vec<WorkflowNodeExecution>> {
        self.read(|| {
            self.load_all(
                workflow_node_executions::table
                    .filter(workflow_node_executions::workflow_run_id.eq(DbUuid(run_id)))
                    .order((
                        workflow_node_executions::sequence,
                        workflow_node_executions::id,
                    ))
                    .select(ExecutionRow::as_select()),
                "node executions",
                ExecutionRow::into_domain,
            )
        })
    }

    fn find_stalled_workflows(&self, threshold_secs: u64) -> StorageResult<Vec<WorkflowRun>> {
        self.read(|| {
            let Some(cutoff) = validate::stalled_cutoff(threshold_secs) else {
                return Ok(Vec::new());
            };
            self.load_all(
                workflow_runs::table
                    .filter(workflow_runs::status.eq(JobState::Running.as_str()))
                    .filter(workflow_runs::last_heartbeat.lt(DbTime(cutoff)))
                    .order((workflow_runs::last_heartbeat, workflow_runs::id))
                    .select(RunRow::as_select()),
                "workflow runs",
                RunRow::into_domain,
            )
        })
    }

    fn validate_write_with_guard(
        &self,
        ctx: &WriteContext,
        resource_id: &str,
    ) -> StorageResult<MutationMetadata> {
        guard::validate_write(ctx, resource_id)
    }

    fn prune_ai_jobs(
        &self,
        cutoff: DateTime<Utc>,
        min_versions: u32,
        dry_run: bool,
    ) -> StorageResult<PruneReport> {
        let cutoff = DbTime(validate::timestamp("cutoff", cutoff)?);
        let report = |c: &PruneCounts, pruned: i64| PruneReport {
            timestamp: validate::now(),
            items_scanned: count(c.pinned + c.unpinned),
            items_pruned: count(pruned),
            items_spared_pinned: count(c.pinned),
            items_spared_window: count(c.window(min_versions)),
            total_bytes_freed: 0,
            dry_run,
        };
        let mut conn = self.conn()?;
        if dry_run {
            // One statement reads one snapshot: no transaction needed.
            let c = prune_counts(&mut conn, cutoff)?;
            return Ok(report(&c, c.unpinned - c.window(min_versions)));
        }
        write_tx(&mut conn, |conn| {
            let c = prune_counts(conn, cutoff)?;
            let window = c.window(min_versions);
            let mut pruned = c.unpinned - window;
            if pruned > 0 {
                let victims = ai_jobs::table
                    .filter(prune_candidates!(cutoff, false))
                    .order((ai_jobs::created_at.desc(), ai_jobs::id.desc()))
                    .offset(window)
                    .select(ai_jobs::id)
                    .into_boxed::<DbBackend>();
                // The candidate filter is repeated on the DELETE itself, so
                // a row pinned meanwhile (PostgreSQL rechecks only the outer
                // condition after a row lock wait) is never deleted.
                pruned = diesel::delete(
                    ai_jobs::table
                        .filter(prune_candidates!(cutoff, false))
                        .filter(ai_jobs::id.eq_any(victims)),
                )
                .execute(conn)
                .map_err(|e| from_diesel(e, "ai jobs"))? as i64;
            }
            Ok(report(&c, pruned))
        })
    }

    fn append_kernel_event(&self, event: NewKernelEvent) -> StorageResult<KernelEvent> {
        let mut events = self.append_kernel_batch(vec![event], false)?;
        events
            .pop()
            .ok_or_else(|| StorageError::Database("an append returned no event".into()))
    }

    fn append_kernel_events_atomic(
        &self,
        events: Vec<NewKernelEvent>,
    ) -> StorageResult<Vec<KernelEvent>> {
        self.append_kernel_batch(events, false)
    }

    fn append_kernel_event_pair_atomic_with_causation(
        &self,
        first: NewKernelEvent,
        second: NewKernelEvent,
    ) -> StorageResult<(KernelEvent, KernelEvent)> {
        let mut events = self
            .append_kernel_batch(vec![first, second], true)?
            .into_iter();
        match (events.next(), events.next()) {
            (Some(first), Some(second)) => Ok((first, second)),
            _ => Err(StorageError::Database(
                "a paired append returned fewer than two events".into(),
            )),
        }
    }

    fn list_kernel_events_for_session(
        &self,
        session_run_id: &str,
    ) -> StorageResult<Vec<KernelEvent>> {
        self.kernel_events_where(Some(session_run_id), None, None)
    }

    fn list_kernel_events_for_aggregate(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> StorageResult<Vec<KernelEvent>> {
        self.kernel_events_where(None, Some((aggregate_type, aggregate_id)), None)
    }

    fn list_kernel_events_after(
        &self,
        after_sequence: i64,
        limit: u32,
    ) -> StorageResult<Vec<KernelEvent>> {
        self.kernel_events_where(None, None, Some((after_sequence, limit)))
    }

    fn enqueue_kernel_session_run(&self, run: SessionRun) -> StorageResult<SessionRun> {
        Ok(self.enqueue_session_run(run, None)?.0)
    }

    fn enqueue_kernel_session_run_and_record_event(
        &self,
        run: SessionRun,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<(SessionRun, KernelEvent)> {
        let (run, event) = self.enqueue_session_run(run, Some((causation_id, correlation_id)))?;
        Ok((run, recorded(event)?))
    }

    fn claim_kernel_session_run(
        &self,
        session_run_id: &str,
        claimed_by: &str,
        lease: std::time::Duration,
    ) -> StorageResult<Option<KernelSessionLease>> {
        let claimed =
            self.claim_session_run(Some(session_run_id), None, claimed_by, lease, None)?;
        Ok(claimed.map(|(lease, _)| lease))
    }

    fn claim_kernel_session_run_and_record_event(
        &self,
        session_run_id: &str,
        claimed_by: &str,
        lease: std::time::Duration,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<Option<(KernelSessionLease, KernelEvent)>> {
        self.claim_session_run(
            Some(session_run_id),
            None,
            claimed_by,
            lease,
            Some((causation_id, correlation_id)),
        )?
        .map(|(lease, event)| Ok((lease, recorded(event)?)))
        .transpose()
    }

    fn claim_next_kernel_session_run(
        &self,
        claimed_by: &str,
        lease: std::time::Duration,
        adapter_id: Option<&str>,
    ) -> StorageResult<Option<KernelSessionLease>> {
        let claimed = self.claim_session_run(None, adapter_id, claimed_by, lease, None)?;
        Ok(claimed.map(|(lease, _)| lease))
    }

    fn renew_kernel_session_lease(
        &self,
        fence: &LeaseFence,
        lease: std::time::Duration,
    ) -> StorageResult<KernelSessionLease> {
        self.renew_session_lease(fence, lease)
    }

    fn update_kernel_session_run_state(
        &self,
        session_run_id: &str,
        update: SessionRunUpdate,
    ) -> StorageResult<KernelSessionLease> {
        Ok(self.update_session_run(session_run_id, update, None)?.0)
    }

    fn update_kernel_session_run_state_and_record_event(
        &self,
        session_run_id: &str,
        update: SessionRunUpdate,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<(KernelSessionLease, KernelEvent)> {
        let (lease, event) =
            self.update_session_run(session_run_id, update, Some((causation_id, correlation_id)))?;
        Ok((lease, recorded(event)?))
    }

    fn list_kernel_session_claims(&self, session_run_id: &str) -> StorageResult<Vec<SessionClaim>> {
        self.session_claims(session_run_id)
    }
}

#[cfg(not(feature = "testing"))]
impl Maintenance for Store {}

#[cfg(feature = "testing")]
impl Maintenance for Store {
    fn revert_all_migrations(&self) -> StorageResult<usize> {
        self.conn()?
            .revert_all_migrations(MIGRATIONS)
            .map(|reverted| reverted.len())
            .map_err(|e| StorageError::Migration(e.to_string()))
    }

    fn revert_last_migration(&self) -> StorageResult<()> {
        self.conn()?
            .revert_last_migration(MIGRATIONS)
            .map(drop)
            .map_err(|e| StorageError::Migration(e.to_string()))
    }

    fn columns(&self) -> StorageResult<Vec<ColumnInfo>> {
        let mut columns: Vec<ColumnInfo> = describe_schema(&mut *self.conn()?)?
            .columns
            .into_iter()
            .map(|c| ColumnInfo {
                table: c.table,
                column: c.column,
                nullable: c.nullable,
            })
            .collect();
        columns.sort();
        Ok(columns)
    }

    fn execute_sql(&self, sql: &str) -> StorageResult<usize> {
        diesel::sql_query(sql)
            .execute(&mut self.conn()?)
            .map_err(|e| from_diesel(e, "raw SQL"))
    }

    fn value_on_every_connection(&self, sql: &str) -> StorageResult<Vec<i64>> {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            value: i64,
        }
        // All checked out at once, so the pool opens every connection it
        // may hold and each one is asked.
        let mut conns = (0..self.pool.max_size())
            .map(|_| self.conn())
            .collect::<StorageResult<Vec<_>>>()?;
        conns
            .iter_mut()
            .map(|conn| {
                diesel::sql_query(sql)
                    .get_result::<Value>(&mut **conn)
                    .map(|v| v.value)
                    .map_err(|e| from_diesel(e, "raw SQL"))
            })
            .collect()
    }
}

// The kernel ledger and session queue, compiled per backend with this file.
include!("kernel_store.rs");

// The copier's reading and writing, compiled per backend with this file.
include!("copy_end/per_backend.rs");
