//! The copier's view of a row: the table it belongs to, its key, its
//! decoded domain value, the checks every row must pass before it is
//! written anywhere, the digest of its domain value, and its column values
//! in a backend-neutral form for the writers. Nothing here touches a
//! database.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{StorageError, StorageResult};
use crate::types::*;
use crate::validate;

/// The tables of the schema, in foreign-key order (a table comes after
/// every table it refers to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    Workspaces,
    Documents,
    Blocks,
    Canvases,
    CanvasNodes,
    CanvasEdges,
    AiJobs,
    /// Filled on the target by the `ai_jobs` insert trigger, never written
    /// by the copier; verified like every other table.
    AiJobEntityRefs,
    WorkflowRuns,
    WorkflowNodeExecutions,
    /// The kernel ledger, keyed by `event_sequence` (`Key::pos`).
    KernelEvents,
    /// The kernel's session queue.
    KernelSessionRuns,
    /// Every claim of a session run, keyed by run and attempt.
    KernelSessionClaims,
}

impl Table {
    pub(crate) const ALL: [Table; 13] = [
        Table::Workspaces,
        Table::Documents,
        Table::Blocks,
        Table::Canvases,
        Table::CanvasNodes,
        Table::CanvasEdges,
        Table::AiJobs,
        Table::AiJobEntityRefs,
        Table::WorkflowRuns,
        Table::WorkflowNodeExecutions,
        Table::KernelEvents,
        Table::KernelSessionRuns,
        Table::KernelSessionClaims,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Workspaces => "workspaces",
            Table::Documents => "documents",
            Table::Blocks => "blocks",
            Table::Canvases => "canvases",
            Table::CanvasNodes => "canvas_nodes",
            Table::CanvasEdges => "canvas_edges",
            Table::AiJobs => "ai_jobs",
            Table::AiJobEntityRefs => "ai_job_entity_refs",
            Table::WorkflowRuns => "workflow_runs",
            Table::WorkflowNodeExecutions => "workflow_node_executions",
            Table::KernelEvents => "kernel_events",
            Table::KernelSessionRuns => "kernel_session_runs",
            Table::KernelSessionClaims => "kernel_session_claims",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether Handshake's legacy database (`LEGACY.md`) has this table,
    /// for the import: not the refs index (the trigger fills it) and not
    /// the kernel's tables (new in this store).
    pub(crate) fn in_legacy(self) -> bool {
        !matches!(
            self,
            Table::AiJobEntityRefs
                | Table::KernelEvents
                | Table::KernelSessionRuns
                | Table::KernelSessionClaims
        )
    }

    /// Whether the copier writes this table (the refs index is written by
    /// the target's trigger).
    pub(crate) fn written(self) -> bool {
        self != Table::AiJobEntityRefs
    }

    /// The columns the writers fill, in the order of the schema modules
    /// (PostgreSQL's binary COPY sends them in this order).
    pub(crate) fn columns(self) -> &'static [&'static str] {
        const STAMP: [&str; 6] = [
            "updated_at",
            "last_actor_kind",
            "last_actor_id",
            "last_job_id",
            "last_workflow_id",
            "edit_event_id",
        ];
        macro_rules! content {
            ($($c:literal),*) => {{
                const C: &[&str] = &[$($c,)* "created_at", STAMP[0], STAMP[1], STAMP[2], STAMP[3], STAMP[4], STAMP[5]];
                C
            }};
        }
        match self {
            Table::Workspaces => content!("id", "name"),
            Table::Documents => content!("id", "workspace_id", "title"),
            Table::Blocks => content!(
                "id",
                "document_id",
                "kind",
                "sequence",
                "raw_content",
                "display_content",
                "derived_content",
                "sensitivity",
                "exportable"
            ),
            Table::Canvases => content!("id", "workspace_id", "title"),
            Table::CanvasNodes => content!(
                "id",
                "canvas_id",
                "kind",
                "position_x",
                "position_y",
                "data"
            ),
            Table::CanvasEdges => content!("id", "canvas_id", "from_node_id", "to_node_id", "kind"),
            Table::AiJobs => &[
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
                "planned_operations",
                "metrics",
                "job_inputs",
                "job_outputs",
                "pinned",
                "created_at",
                "updated_at",
                "entity_refs",
            ],
            Table::AiJobEntityRefs => &[
                "job_id",
                "position",
                "entity_id",
                "entity_kind",
                "created_at",
            ],
            Table::WorkflowRuns => &[
                "id",
                "job_id",
                "status",
                "error_message",
                "last_heartbeat",
                "created_at",
                "updated_at",
            ],
            Table::WorkflowNodeExecutions => &[
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
            ],
            Table::KernelEvents => &[
                "event_sequence",
                "event_id",
                "event_version",
                "kernel_task_run_id",
                "session_run_id",
                "aggregate_type",
                "aggregate_id",
                "idempotency_key",
                "event_type",
                "actor_kind",
                "actor_id",
                "causation_id",
                "correlation_id",
                "source_component",
                "payload",
                "payload_hash",
                "created_at",
            ],
            Table::KernelSessionRuns => &[
                "session_run_id",
                "kernel_task_run_id",
                "adapter_id",
                "state",
                "claimed_by",
                "lease_expires_at",
                "attempt_count",
                "available_at",
                "created_at",
                "updated_at",
            ],
            Table::KernelSessionClaims => &[
                "session_run_id",
                "attempt",
                "claimed_by",
                "claimed_at",
                "lease_expires_at",
                "ended_at",
                "outcome",
            ],
        }
    }

    /// The primary key's columns with their PostgreSQL types, in key
    /// order: `Key::id` is the text (or uuid) column, `Key::pos` the
    /// integer one.
    pub(crate) fn key_columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Table::Workspaces
            | Table::Documents
            | Table::Blocks
            | Table::Canvases
            | Table::CanvasNodes
            | Table::CanvasEdges => &[("id", "text")],
            Table::AiJobs | Table::WorkflowRuns | Table::WorkflowNodeExecutions => {
                &[("id", "uuid")]
            }
            Table::AiJobEntityRefs => &[("job_id", "uuid"), ("position", "int8")],
            Table::KernelEvents => &[("event_sequence", "int8")],
            Table::KernelSessionRuns => &[("session_run_id", "text")],
            Table::KernelSessionClaims => &[("session_run_id", "text"), ("attempt", "int8")],
        }
    }
}

impl Key {
    /// The values of [`Table::key_columns`], as text.
    pub(crate) fn column_values(&self, table: Table) -> Vec<String> {
        table
            .key_columns()
            .iter()
            .map(|(_, kind)| match *kind {
                "int8" => self.pos.unwrap_or(i64::MIN).to_string(),
                _ => self.id.clone(),
            })
            .collect()
    }
}

/// A row's primary key, ordered as both backends order it: ids bytewise
/// (`C` collation on PostgreSQL, BINARY on SQLite), uuids by their bytes,
/// which is the order of their lower-case hyphenated text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub id: String,
    /// The second key column (`position` of an entity ref).
    pub pos: Option<i64>,
}

impl Key {
    pub(crate) fn id(id: impl Into<String>) -> Key {
        Key {
            id: id.into(),
            pos: None,
        }
    }

    pub(crate) fn uuid(id: Uuid) -> Key {
        Key::id(id.hyphenated().to_string())
    }

    /// The key of a table keyed by one integer (`kernel_events`).
    pub(crate) fn number(n: i64) -> Key {
        Key {
            id: String::new(),
            pos: Some(n),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pos {
            Some(pos) if self.id.is_empty() => write!(f, "{pos}"),
            Some(pos) => write!(f, "{:?} position {pos}", self.id),
            None => write!(f, "{:?}", self.id),
        }
    }
}

/// One row of the index behind the workspace filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexedRef {
    pub job_id: Uuid,
    pub position: i64,
    pub entity_id: String,
    pub entity_kind: String,
    /// The job's `created_at`, which orders the workspace filter's index.
    pub created_at: DateTime<Utc>,
}

/// A decoded row of any table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Record {
    Workspace(Workspace),
    Document(Document),
    Block(Block),
    Canvas(Canvas),
    Node(CanvasNode),
    Edge(CanvasEdge),
    Job(AiJob),
    Ref(IndexedRef),
    Run(WorkflowRun),
    Execution(WorkflowNodeExecution),
    KernelEvent(crate::kernel::KernelEvent),
    SessionRun(crate::kernel::KernelSessionLease),
    SessionClaim(crate::kernel::SessionClaim),
}

impl Record {
    pub(crate) fn key(&self) -> Key {
        match self {
            Record::Workspace(r) => Key::id(&r.id),
            Record::Document(r) => Key::id(&r.id),
            Record::Block(r) => Key::id(&r.id),
            Record::Canvas(r) => Key::id(&r.id),
            Record::Node(r) => Key::id(&r.id),
            Record::Edge(r) => Key::id(&r.id),
            Record::Job(r) => Key::uuid(r.job_id),
            Record::Ref(r) => Key {
                id: r.job_id.hyphenated().to_string(),
                pos: Some(r.position),
            },
            Record::Run(r) => Key::uuid(r.id),
            Record::Execution(r) => Key::uuid(r.id),
            Record::KernelEvent(r) => Key::number(r.event_sequence),
            Record::SessionRun(r) => Key::id(&r.session_run_id),
            Record::SessionClaim(r) => Key {
                id: r.session_run_id.clone(),
                pos: Some(r.attempt),
            },
        }
    }

    /// The rows the target's trigger derives from this job's refs.
    pub(crate) fn indexed_refs(&self) -> Vec<Record> {
        match self {
            Record::Job(job) => job
                .entity_refs
                .iter()
                .enumerate()
                .map(|(position, r)| {
                    Record::Ref(IndexedRef {
                        job_id: job.job_id,
                        position: position as i64,
                        entity_id: r.entity_id.clone(),
                        entity_kind: r.entity_kind.clone(),
                        created_at: job.created_at,
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Which table the row belongs to, as a byte of its digest.
    fn tag(&self) -> u8 {
        match self {
            Record::Workspace(_) => 0,
            Record::Document(_) => 1,
            Record::Block(_) => 2,
            Record::Canvas(_) => 3,
            Record::Node(_) => 4,
            Record::Edge(_) => 5,
            Record::Job(_) => 6,
            Record::Ref(_) => 7,
            Record::Run(_) => 8,
            Record::Execution(_) => 9,
            Record::KernelEvent(_) => 10,
            Record::SessionRun(_) => 11,
            Record::SessionClaim(_) => 12,
        }
    }

    /// The digest of the decoded domain value: SHA-256 of a canonical
    /// binary encoding of its cells (the table, then each column's value
    /// tagged by kind: text by length and bytes, integers and float bits
    /// as 8 bytes, UUIDs as 16, timestamps as seconds and nanoseconds, JSON
    /// as a walk of the value with object keys in sorted order), cut to
    /// 128 bits. The same on every backend for the same value.
    pub(crate) fn digest(&self) -> StorageResult<u128> {
        // The encoding is gathered first and hashed in one call: the same
        // bytes, without a call into the hasher per field.
        let hash = super::with_scratch(|buffer| {
            let mut bytes = Canonical(std::mem::take(buffer));
            bytes.update([self.tag()]);
            let cells = self.cells();
            let fed =
                cells.and_then(|cells| cells.iter().try_for_each(|c| c.digest_into(&mut bytes)));
            let hash = Sha256::digest(&bytes.0);
            *buffer = bytes.0;
            fed.map(|()| hash)
        })?;
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash[..16]);
        Ok(u128::from_be_bytes(first))
    }

    /// What every backend can hold and read back: the limits `Storage`
    /// enforces on input, applied to a row read from a source (where other
    /// software may have planted anything).
    pub(crate) fn check(&self) -> StorageResult<()> {
        use validate::{id, indexed_text, json, text};
        fn time(field: &str, at: &DateTime<Utc>) -> StorageResult<()> {
            if validate::timestamp(field, *at)? != *at {
                return Err(StorageError::validation(format!(
                    "{field} {at} has more than microsecond precision"
                )));
            }
            Ok(())
        }
        fn opt_text(field: &str, value: &Option<String>) -> StorageResult<()> {
            value.as_deref().map_or(Ok(()), |v| text(field, v))
        }
        fn opt_json(field: &str, value: &Option<Value>) -> StorageResult<()> {
            value.as_ref().map_or(Ok(()), |v| json(field, v))
        }
        fn finite(field: &str, value: f64) -> StorageResult<()> {
            if validate::coordinate(field, value)?.to_bits() != value.to_bits() {
                return Err(StorageError::validation(format!("{field} is -0.0")));
            }
            Ok(())
        }
        /// What every content row has: id, times, provenance.
        fn content(
            key: &str,
            created_at: &DateTime<Utc>,
            updated_at: &DateTime<Utc>,
            p: &Provenance,
        ) -> StorageResult<()> {
            id("id", key)?;
            time("created_at", created_at)?;
            time("updated_at", updated_at)?;
            opt_text("last_actor_id", &p.actor_id)
        }
        match self {
            Record::Workspace(r) => {
                content(&r.id, &r.created_at, &r.updated_at, &r.provenance)?;
                text("name", &r.name)
            }
            Record::Document(Document {
                id: key,
                workspace_id,
                title,
                created_at,
                updated_at,
                provenance: p,
            })
            | Record::Canvas(Canvas {
                id: key,
                workspace_id,
                title,
                created_at,
                updated_at,
                provenance: p,
            }) => {
                content(key, created_at, updated_at, p)?;
                id("workspace_id", workspace_id)?;
                text("title", title)
            }
            Record::Block(r) => {
                content(&r.id, &r.created_at, &r.updated_at, &r.provenance)?;
                id("document_id", &r.document_id)?;
                text("kind", &r.kind)?;
                text("raw_content", &r.raw_content)?;
                text("display_content", &r.display_content)?;
                json("derived_content", &r.derived_content)?;
                opt_text("sensitivity", &r.sensitivity)
            }
            Record::Node(r) => {
                content(&r.id, &r.created_at, &r.updated_at, &r.provenance)?;
                id("canvas_id", &r.canvas_id)?;
                text("kind", &r.kind)?;
                finite("position_x", r.position_x)?;
                finite("position_y", r.position_y)?;
                json("data", &r.data)
            }
            Record::Edge(r) => {
                content(&r.id, &r.created_at, &r.updated_at, &r.provenance)?;
                id("canvas_id", &r.canvas_id)?;
                id("from_node_id", &r.from_node_id)?;
                id("to_node_id", &r.to_node_id)?;
                text("kind", &r.kind)
            }
            Record::Job(r) => {
                opt_text("error_message", &r.error_message)?;
                for (field, value) in [
                    ("protocol_id", &r.protocol_id),
                    ("profile_id", &r.profile_id),
                    ("capability_profile_id", &r.capability_profile_id),
                    ("status_reason", &r.status_reason),
                ] {
                    text(field, value)?;
                }
                for e in &r.entity_refs {
                    indexed_text("entity_refs.entity_id", &e.entity_id)?;
                    indexed_text("entity_refs.entity_kind", &e.entity_kind)?;
                }
                for op in &r.planned_operations {
                    text("planned_operations.target", &op.target.entity_id)?;
                    text("planned_operations.target", &op.target.entity_kind)?;
                    opt_text("planned_operations.description", &op.description)?;
                }
                opt_json("job_inputs", &r.job_inputs)?;
                opt_json("job_outputs", &r.job_outputs)?;
                time("created_at", &r.created_at)?;
                time("updated_at", &r.updated_at)
            }
            Record::Ref(r) => {
                indexed_text("entity_id", &r.entity_id)?;
                indexed_text("entity_kind", &r.entity_kind)?;
                time("created_at", &r.created_at)
            }
            Record::Run(r) => {
                opt_text("error_message", &r.error_message)?;
                time("last_heartbeat", &r.last_heartbeat)?;
                time("created_at", &r.created_at)?;
                time("updated_at", &r.updated_at)
            }
            Record::Execution(r) => {
                text("node_id", &r.node_id)?;
                text("node_type", &r.node_type)?;
                opt_json("input_payload", &r.input_payload)?;
                opt_json("output_payload", &r.output_payload)?;
                opt_text("error_message", &r.error_message)?;
                time("started_at", &r.started_at)?;
                if let Some(at) = &r.finished_at {
                    time("finished_at", at)?;
                }
                time("created_at", &r.created_at)?;
                time("updated_at", &r.updated_at)
            }
            Record::KernelEvent(r) => {
                for (field, value) in [
                    ("event_id", &r.event_id),
                    ("event_version", &r.event_version),
                    ("kernel_task_run_id", &r.kernel_task_run_id),
                    ("session_run_id", &r.session_run_id),
                    ("aggregate_type", &r.aggregate_type),
                    ("aggregate_id", &r.aggregate_id),
                    ("idempotency_key", &r.idempotency_key),
                    ("event_type", &r.event_type),
                    ("actor_id", &r.actor.id),
                    ("source_component", &r.source_component),
                    ("payload_hash", &r.payload_hash),
                ] {
                    indexed_text(field, value)?;
                }
                opt_text("causation_id", &r.causation_id)?;
                opt_text("correlation_id", &r.correlation_id)?;
                json("payload", &r.payload)?;
                time("created_at", &r.created_at)
            }
            Record::SessionRun(r) => {
                id("session_run_id", &r.session_run_id)?;
                indexed_text("kernel_task_run_id", &r.kernel_task_run_id)?;
                indexed_text("adapter_id", &r.adapter_id)?;
                opt_text("claimed_by", &r.claimed_by)?;
                if let Some(at) = &r.lease_expires_at {
                    time("lease_expires_at", at)?;
                }
                time("available_at", &r.available_at)?;
                time("created_at", &r.created_at)?;
                time("updated_at", &r.updated_at)
            }
            Record::SessionClaim(r) => {
                id("session_run_id", &r.session_run_id)?;
                text("claimed_by", &r.claimed_by)?;
                time("claimed_at", &r.claimed_at)?;
                time("lease_expires_at", &r.lease_expires_at)?;
                if let Some(at) = &r.ended_at {
                    time("ended_at", at)?;
                }
                Ok(())
            }
        }
    }

    /// The row's column values in the order of [`Table::columns`].
    pub(crate) fn cells(&self) -> StorageResult<Vec<Cell<'_>>> {
        use Cell::*;
        fn opt<'a, T>(value: &'a Option<T>, f: impl FnOnce(&'a T) -> Cell<'a>) -> Cell<'a> {
            value.as_ref().map_or(Null, f)
        }
        fn stamp<'a>(
            created: &DateTime<Utc>,
            updated: &DateTime<Utc>,
            p: &'a Provenance,
        ) -> [Cell<'a>; 7] {
            [
                Time(*created),
                Time(*updated),
                Text(p.actor_kind.as_str()),
                opt(&p.actor_id, |v| Text(v)),
                opt(&p.job_id, |v| Uuid(*v)),
                opt(&p.workflow_id, |v| Uuid(*v)),
                Uuid(p.edit_event_id),
            ]
        }
        Ok(match self {
            Record::Workspace(r) => {
                let mut c = vec![Text(&r.id), Text(&r.name)];
                c.extend(stamp(&r.created_at, &r.updated_at, &r.provenance));
                c
            }
            Record::Document(Document {
                id,
                workspace_id,
                title,
                created_at,
                updated_at,
                provenance,
            })
            | Record::Canvas(Canvas {
                id,
                workspace_id,
                title,
                created_at,
                updated_at,
                provenance,
            }) => {
                let mut c = vec![Text(id), Text(workspace_id), Text(title)];
                c.extend(stamp(created_at, updated_at, provenance));
                c
            }
            Record::Block(r) => {
                let mut c = vec![
                    Text(&r.id),
                    Text(&r.document_id),
                    Text(&r.kind),
                    Int(r.sequence),
                    Text(&r.raw_content),
                    Text(&r.display_content),
                    Json(&r.derived_content),
                    opt(&r.sensitivity, |v| Text(v)),
                    opt(&r.exportable, |v| Bool(*v)),
                ];
                c.extend(stamp(&r.created_at, &r.updated_at, &r.provenance));
                c
            }
            Record::Node(r) => {
                let mut c = vec![
                    Text(&r.id),
                    Text(&r.canvas_id),
                    Text(&r.kind),
                    Float(r.position_x),
                    Float(r.position_y),
                    Json(&r.data),
                ];
                c.extend(stamp(&r.created_at, &r.updated_at, &r.provenance));
                c
            }
            Record::Edge(r) => {
                let mut c = vec![
                    Text(&r.id),
                    Text(&r.canvas_id),
                    Text(&r.from_node_id),
                    Text(&r.to_node_id),
                    Text(&r.kind),
                ];
                c.extend(stamp(&r.created_at, &r.updated_at, &r.provenance));
                c
            }
            Record::Job(r) => vec![
                Uuid(r.job_id),
                Uuid(r.trace_id),
                opt(&r.workflow_run_id, |v| Uuid(*v)),
                Text(r.job_kind.as_str()),
                Text(r.state.as_str()),
                Text(&r.status_reason),
                opt(&r.error_message, |v| Text(v)),
                Text(&r.protocol_id),
                Text(&r.profile_id),
                Text(&r.capability_profile_id),
                Text(r.access_mode.as_str()),
                Text(r.safety_mode.as_str()),
                Typed("planned_operations", &r.planned_operations),
                Typed("metrics", &r.metrics),
                opt(&r.job_inputs, Json),
                opt(&r.job_outputs, Json),
                Bool(r.pinned),
                Time(r.created_at),
                Time(r.updated_at),
                Typed("entity_refs", &r.entity_refs),
            ],
            Record::Ref(r) => vec![
                Uuid(r.job_id),
                Int(r.position),
                Text(&r.entity_id),
                Text(&r.entity_kind),
                Time(r.created_at),
            ],
            Record::Run(r) => vec![
                Uuid(r.id),
                Uuid(r.job_id),
                Text(r.status.as_str()),
                opt(&r.error_message, |v| Text(v)),
                Time(r.last_heartbeat),
                Time(r.created_at),
                Time(r.updated_at),
            ],
            Record::Execution(r) => vec![
                Uuid(r.id),
                Uuid(r.workflow_run_id),
                Text(&r.node_id),
                Text(&r.node_type),
                Text(r.status.as_str()),
                Int(r.sequence),
                opt(&r.input_payload, Json),
                opt(&r.output_payload, Json),
                opt(&r.error_message, |v| Text(v)),
                Time(r.started_at),
                opt(&r.finished_at, |v| Time(*v)),
                Time(r.created_at),
                Time(r.updated_at),
            ],
            Record::KernelEvent(r) => vec![
                Int(r.event_sequence),
                Text(&r.event_id),
                Text(&r.event_version),
                Text(&r.kernel_task_run_id),
                Text(&r.session_run_id),
                Text(&r.aggregate_type),
                Text(&r.aggregate_id),
                Text(&r.idempotency_key),
                Text(&r.event_type),
                Text(r.actor.kind.as_str()),
                Text(&r.actor.id),
                opt(&r.causation_id, |v| Text(v)),
                opt(&r.correlation_id, |v| Text(v)),
                Text(&r.source_component),
                Json(&r.payload),
                Text(&r.payload_hash),
                Time(r.created_at),
            ],
            Record::SessionRun(r) => vec![
                Text(&r.session_run_id),
                Text(&r.kernel_task_run_id),
                Text(&r.adapter_id),
                Text(r.state.as_str()),
                opt(&r.claimed_by, |v| Text(v)),
                opt(&r.lease_expires_at, |v| Time(*v)),
                Int(r.attempt_count),
                Time(r.available_at),
                Time(r.created_at),
                Time(r.updated_at),
            ],
            Record::SessionClaim(r) => vec![
                Text(&r.session_run_id),
                Int(r.attempt),
                Text(&r.claimed_by),
                Time(r.claimed_at),
                Time(r.lease_expires_at),
                opt(&r.ended_at, |v| Time(*v)),
                opt(&r.outcome, |v| Text(v.as_str())),
            ],
        })
    }
}

/// A column value as the writers see it; each backend encodes it its own
/// way (`backend::fields` says how).
#[derive(Debug)]
pub(crate) enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Uuid(Uuid),
    Time(DateTime<Utc>),
    Json(&'a Value),
    /// A typed value the store keeps as JSON: its column's name and the
    /// value.
    Typed(&'static str, &'a dyn TypedJson),
}

/// A typed value stored as JSON (a list or struct of the domain). Its
/// serialisation must have a fixed order (no `HashMap` inside): the
/// digest hashes it as serialised.
pub(crate) trait TypedJson: std::fmt::Debug {
    /// Its `serde_json::Value` (what the writers once encoded; the tests
    /// compare with it).
    #[cfg(all(test, feature = "postgres"))]
    fn to_value(&self) -> serde_json::Result<Value>;
    fn write_to(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()>;
    /// The JSON text the stores write for it (`fields::write_json` of
    /// its `to_value`), written straight from the typed value.
    fn write_stored(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()>;
}

impl<T: Serialize + std::fmt::Debug> TypedJson for T {
    #[cfg(all(test, feature = "postgres"))]
    fn to_value(&self) -> serde_json::Result<Value> {
        serde_json::to_value(self)
    }

    fn write_to(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(w, self)
    }

    fn write_stored(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()> {
        crate::backend::fields::write_json_of(self, w)
    }
}

impl Cell<'_> {
    /// Feeds this value's canonical encoding to `h` (see [`Record::digest`]).
    fn digest_into(&self, h: &mut Canonical) -> StorageResult<()> {
        match self {
            Cell::Null => h.update([0]),
            Cell::Text(v) => {
                h.update([1]);
                text(h, v);
            }
            Cell::Int(v) => {
                h.update([2]);
                h.update(v.to_le_bytes());
            }
            Cell::Float(v) => {
                h.update([3]);
                h.update(v.to_bits().to_le_bytes());
            }
            Cell::Bool(v) => h.update([4, u8::from(*v)]),
            Cell::Uuid(v) => {
                h.update([5]);
                h.update(v.as_bytes());
            }
            Cell::Time(v) => {
                h.update([6]);
                h.update(v.timestamp().to_le_bytes());
                h.update(v.timestamp_subsec_nanos().to_le_bytes());
            }
            Cell::Json(v) => {
                h.update([7]);
                json_into(h, v);
            }
            Cell::Typed(field, v) => {
                // Serialised as the type has it (a fixed order).
                h.update([8]);
                v.write_to(&mut h.0).map_err(|e| {
                    StorageError::Serialization(format!("cannot encode {field}: {e}"))
                })?;
            }
        }
        Ok(())
    }
}

/// A row's canonical encoding (see [`Record::digest`]), as it is built.
struct Canonical(Vec<u8>);

impl Canonical {
    fn update(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.extend_from_slice(bytes.as_ref());
    }
}

fn text(h: &mut Canonical, v: &str) {
    h.update((v.len() as u64).to_le_bytes());
    h.update(v.as_bytes());
}

/// A JSON value's canonical encoding: numbers by what they hold (an
/// integer is not the float of the same value: `1` and `1.0` differ, as
/// they do in the stores), object keys in sorted order.
fn json_into(h: &mut Canonical, value: &Value) {
    match value {
        Value::Null => h.update([0]),
        Value::Bool(b) => h.update([1, u8::from(*b)]),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                h.update([2]);
                h.update(i.to_le_bytes());
            } else if let Some(u) = n.as_u64() {
                h.update([3]);
                h.update(u.to_le_bytes());
            } else {
                h.update([4]);
                h.update(n.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
            }
        }
        Value::String(v) => {
            h.update([5]);
            text(h, v);
        }
        Value::Array(items) => {
            h.update([6]);
            h.update((items.len() as u64).to_le_bytes());
            for item in items {
                json_into(h, item);
            }
        }
        Value::Object(map) => {
            h.update([7]);
            h.update((map.len() as u64).to_le_bytes());
            // serde_json's map is ordered by key (no `preserve_order`);
            // sorted here all the same so the digest never depends on it.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            for (key, item) in entries {
                text(h, key);
                json_into(h, item);
            }
        }
    }
}

/// `err` with the table and key of the row it is about in front of its
/// text, of the same kind.
pub(crate) fn at_row(table: Table, key: &str, err: StorageError) -> StorageError {
    let prefix = |m: String| format!("{} row {key}: {m}", table.name());
    match err {
        StorageError::NotFound(m) => StorageError::NotFound(prefix(m)),
        StorageError::Conflict(m) => StorageError::Conflict(prefix(m)),
        StorageError::Validation(m) => StorageError::Validation(prefix(m)),
        StorageError::Guard(m) => StorageError::Guard(prefix(m)),
        StorageError::Serialization(m) => StorageError::Serialization(prefix(m)),
        StorageError::Database(m) => StorageError::Database(prefix(m)),
        StorageError::Migration(m) => StorageError::Migration(prefix(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn digest(cells: &[Cell<'_>]) -> Vec<u8> {
        let mut h = Canonical(Vec::new());
        for cell in cells {
            cell.digest_into(&mut h).unwrap();
        }
        Sha256::digest(&h.0).to_vec()
    }

    #[test]
    fn the_digest_tells_kinds_and_boundaries_apart() {
        let (one, one_float) = (json!(1), json!(1.0));
        let (text, json_text) = (json!("a"), Cell::Text("a"));
        // An integer is not the float of the same value, nor text the
        // JSON string of it.
        assert_ne!(
            digest(&[Cell::Json(&one)]),
            digest(&[Cell::Json(&one_float)])
        );
        assert_ne!(digest(&[Cell::Json(&text)]), digest(&[json_text]));
        // Lengths delimit text: moving a byte between cells changes it.
        assert_ne!(
            digest(&[Cell::Text("ab"), Cell::Text("c")]),
            digest(&[Cell::Text("a"), Cell::Text("bc")])
        );
        assert_ne!(digest(&[Cell::Null]), digest(&[Cell::Text("")]));
        assert_ne!(
            digest(&[Cell::Float(0.0)]),
            digest(&[Cell::Float(-0.0)]),
            "float bits, not values"
        );
        // Object keys: by name, whatever order the map was built in.
        let a: Value = serde_json::from_str(r#"{"x": 1, "y": [true, null]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y": [true, null], "x": 1}"#).unwrap();
        assert_eq!(digest(&[Cell::Json(&a)]), digest(&[Cell::Json(&b)]));
        // A typed value hashes as it serialises.
        let refs = vec![crate::EntityRef {
            entity_id: "d1".into(),
            entity_kind: "document".into(),
        }];
        let other = vec![crate::EntityRef {
            entity_id: "d2".into(),
            entity_kind: "document".into(),
        }];
        assert_ne!(
            digest(&[Cell::Typed("entity_refs", &refs)]),
            digest(&[Cell::Typed("entity_refs", &other)])
        );
    }
}
