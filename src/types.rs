//! Domain types: what callers read and write. They know nothing of any
//! database; names and fields follow handshake_core's storage module so that
//! callers port mechanically. Fields added beyond handshake_core (provenance,
//! `pinned`, paging) sit beside the originals.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StorageError;

/// Declares an enum stored as a stable string, with `as_str`, `FromStr`
/// (unknown text is a `Serialization` error: it can only come from a row)
/// and `Display`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }
     $(legacy { $($old:literal => $old_variant:ident),+ $(,)? })?) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(
                #[doc = concat!("Stored as `", $text, "`.")]
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable string stored in the database.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Every string a row may hold for this value: [`Self::as_str`]
            /// first, then any legacy spelling that reads as it.
            pub fn stored_forms(&self) -> Vec<&'static str> {
                let legacy: &[(&'static str, $name)] = &[$($(($old, $name::$old_variant)),+)?];
                std::iter::once(self.as_str())
                    .chain(legacy.iter().filter(|(_, v)| v == self).map(|(text, _)| *text))
                    .collect()
            }
        }

        impl std::str::FromStr for $name {
            type Err = StorageError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($text => Ok($name::$variant),)+
                    $($($old => Ok($name::$old_variant),)+)?
                    other => Err(StorageError::Serialization(format!(
                        concat!("invalid ", stringify!($name), " {:?}"),
                        other
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Lifecycle state of an AI job, a workflow run or a node execution.
    JobState {
        Queued => "queued",
        Running => "running",
        Stalled => "stalled",
        AwaitingValidation => "awaiting_validation",
        AwaitingUser => "awaiting_user",
        Completed => "completed",
        CompletedWithIssues => "completed_with_issues",
        Failed => "failed",
        Cancelled => "cancelled",
        Poisoned => "poisoned",
    }
);

string_enum!(
    /// What an AI job does. The kinds of Handshake's storage contract (see
    /// docs/handshake-contract.md); a row holding the legacy `term_exec` reads as
    /// `TerminalExec` (and is written back as `terminal_exec`).
    JobKind {
        DocEdit => "doc_edit",
        DocRewrite => "doc_rewrite",
        SheetTransform => "sheet_transform",
        CanvasCluster => "canvas_cluster",
        AsrTranscribe => "asr_transcribe",
        WorkflowRun => "workflow_run",
        MicroTaskExecution => "micro_task_execution",
        SpecRouter => "spec_router",
        LocusOperation => "locus_operation",
        TerminalExec => "terminal_exec",
        DocSummarize => "doc_summarize",
        DebugBundleExport => "debug_bundle_export",
        DocIngest => "doc_ingest",
        DistillationEval => "distillation_eval",
        ModelRun => "model_run",
        MediaDownloader => "media_downloader",
        LoomPreviewGenerate => "loom_preview_generate",
    }
    legacy {
        "term_exec" => TerminalExec,
    }
);

string_enum!(
    /// How far an AI job may act on what it reads.
    AccessMode {
        AnalysisOnly => "analysis_only",
        PreviewOnly => "preview_only",
        ApplyScoped => "apply_scoped",
    }
);

string_enum!(
    /// The safety profile an AI job runs under.
    SafetyMode {
        Strict => "strict",
        Normal => "normal",
        Experimental => "experimental",
    }
);

string_enum!(
    /// The kind of a planned operation.
    OperationType {
        Read => "read",
        Write => "write",
        Plan => "plan",
        Execute => "execute",
    }
);

string_enum!(
    /// Who made a write.
    WriteActorKind {
        Human => "HUMAN",
        Ai => "AI",
        System => "SYSTEM",
    }
);

impl JobState {
    /// States a job, run or node execution does not leave on its own.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::CompletedWithIssues
                | JobState::Failed
                | JobState::Cancelled
                | JobState::Poisoned
        )
    }
}

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backend {
    /// SQLite, embedded: a file or an in-memory database.
    Sqlite,
    /// PostgreSQL, a server.
    Postgres,
}

impl Backend {
    /// Lower-case name, as used in feature flags and test module names.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who last wrote a content row, readable through the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Whether a person, an AI job or the system wrote the row.
    pub actor_kind: WriteActorKind,
    /// The writer's id, if it gave one.
    pub actor_id: Option<String>,
    /// The AI job behind the write (AI writes only).
    pub job_id: Option<Uuid>,
    /// The workflow behind the write (AI writes only).
    pub workflow_id: Option<Uuid>,
    /// Fresh and non-nil for every accepted write.
    pub edit_event_id: Uuid,
}

/// A workspace: the top of the content tree (documents and canvases).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    /// Generated (UUID v7).
    pub id: String,
    /// Shown to the user; not unique.
    pub name: String,
    /// When the workspace was created.
    pub created_at: DateTime<Utc>,
    /// When the workspace was last written.
    pub updated_at: DateTime<Utc>,
    /// Who last wrote the workspace.
    pub provenance: Provenance,
}

/// What `create_workspace` needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewWorkspace {
    /// Shown to the user; not unique.
    pub name: String,
}

/// A document in a workspace; its content is its blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Generated (UUID v7).
    pub id: String,
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// Shown to the user; not unique.
    pub title: String,
    /// When the document was created.
    pub created_at: DateTime<Utc>,
    /// When the document was last written.
    pub updated_at: DateTime<Utc>,
    /// Who last wrote the document.
    pub provenance: Provenance,
}

/// What `create_document` needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewDocument {
    /// The workspace to create it in (must exist).
    pub workspace_id: String,
    /// Shown to the user; not unique.
    pub title: String,
}

/// A document block with content and classification metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// Given or generated (UUID v7).
    pub id: String,
    /// The document it belongs to.
    pub document_id: String,
    /// The block type (`paragraph`, `heading`, ...), free text.
    pub kind: String,
    /// Its place in the document; blocks list by sequence, then id.
    pub sequence: i64,
    /// The content as written.
    pub raw_content: String,
    /// The content as shown (`raw_content` unless given).
    pub display_content: String,
    /// What tools derived from the content (JSON; `{}` unless given).
    pub derived_content: Value,
    /// When the block was created.
    pub created_at: DateTime<Utc>,
    /// When the block was last written.
    pub updated_at: DateTime<Utc>,
    /// "low" | "medium" | "high" | "unknown"; `None` reads as unknown.
    pub sensitivity: Option<String>,
    /// Whether content may go to cloud models; stored `true` when not given.
    pub exportable: Option<bool>,
    /// Who last wrote the block.
    pub provenance: Provenance,
}

/// What `create_block` and `replace_blocks` need; `None` fields take the
/// defaults noted on them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewBlock {
    /// A UUID v7 is generated when `None`.
    pub id: Option<String>,
    /// The document to add it to (must exist).
    pub document_id: String,
    /// The block type (`paragraph`, `heading`, ...), free text.
    pub kind: String,
    /// Its place in the document.
    pub sequence: i64,
    /// The content as written.
    pub raw_content: String,
    /// Defaults to `raw_content`.
    pub display_content: Option<String>,
    /// Defaults to `{}`.
    pub derived_content: Option<Value>,
    /// "low" | "medium" | "high" | "unknown"; `None` reads as unknown.
    pub sensitivity: Option<String>,
    /// Defaults to `true`.
    pub exportable: Option<bool>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockUpdate {
    /// A new block type.
    pub kind: Option<String>,
    /// A new place in the document.
    pub sequence: Option<i64>,
    /// New content as written.
    pub raw_content: Option<String>,
    /// New content as shown.
    pub display_content: Option<String>,
    /// New derived content.
    pub derived_content: Option<Value>,
    /// A new sensitivity ("low" | "medium" | "high" | "unknown").
    pub sensitivity: Option<String>,
    /// Whether content may go to cloud models.
    pub exportable: Option<bool>,
}

/// A canvas in a workspace: a graph of nodes and edges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Canvas {
    /// Generated (UUID v7).
    pub id: String,
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// Shown to the user; not unique.
    pub title: String,
    /// When the canvas was created.
    pub created_at: DateTime<Utc>,
    /// When the canvas (or its graph) was last written.
    pub updated_at: DateTime<Utc>,
    /// Who last wrote the canvas.
    pub provenance: Provenance,
}

/// What `create_canvas` needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCanvas {
    /// The workspace to create it in (must exist).
    pub workspace_id: String,
    /// Shown to the user; not unique.
    pub title: String,
}

/// A node of a canvas graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanvasNode {
    /// Given or generated (UUID v7); unique within the canvas.
    pub id: String,
    /// The canvas it belongs to.
    pub canvas_id: String,
    /// The node type, free text.
    pub kind: String,
    /// Horizontal position on the canvas.
    pub position_x: f64,
    /// Vertical position on the canvas.
    pub position_y: f64,
    /// What the node holds (JSON; `{}` unless given).
    pub data: Value,
    /// When the node was created.
    pub created_at: DateTime<Utc>,
    /// When the node was last written.
    pub updated_at: DateTime<Utc>,
    /// Who last wrote the node.
    pub provenance: Provenance,
}

/// An edge of a canvas graph, between two of its nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanvasEdge {
    /// Given or generated (UUID v7); unique within the canvas.
    pub id: String,
    /// The canvas it belongs to.
    pub canvas_id: String,
    /// The node it starts at.
    pub from_node_id: String,
    /// The node it ends at.
    pub to_node_id: String,
    /// The edge type, free text.
    pub kind: String,
    /// When the edge was created.
    pub created_at: DateTime<Utc>,
    /// When the edge was last written.
    pub updated_at: DateTime<Utc>,
    /// Who last wrote the edge.
    pub provenance: Provenance,
}

/// A node for `update_canvas_graph`, which replaces the whole graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCanvasNode {
    /// A UUID v7 is generated when `None`.
    pub id: Option<String>,
    /// The node type, free text.
    pub kind: String,
    /// Horizontal position on the canvas.
    pub position_x: f64,
    /// Vertical position on the canvas.
    pub position_y: f64,
    /// Defaults to `{}`.
    pub data: Option<Value>,
}

/// An edge for `update_canvas_graph`; its ends must be nodes of the same
/// update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCanvasEdge {
    /// A UUID v7 is generated when `None`.
    pub id: Option<String>,
    /// The node it starts at.
    pub from_node_id: String,
    /// The node it ends at.
    pub to_node_id: String,
    /// The edge type, free text.
    pub kind: String,
}

/// A canvas with its nodes and edges, each list ordered by id (bytewise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanvasGraph {
    /// The canvas itself.
    pub canvas: Canvas,
    /// Its nodes, by id.
    pub nodes: Vec<CanvasNode>,
    /// Its edges, by id.
    pub edges: Vec<CanvasEdge>,
}

/// Something an AI job refers to (a workspace, a document, ...), by id and
/// kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    /// The entity's id.
    pub entity_id: String,
    /// What the entity is (`workspace`, `document`, ...).
    pub entity_kind: String,
}

/// One step an AI job plans to take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOperation {
    /// What the step does.
    pub op_type: OperationType,
    /// What it acts on.
    pub target: EntityRef,
    /// A note for people, if any.
    pub description: Option<String>,
}

/// Counters of an AI job; all zero by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMetrics {
    /// Wall time of the job, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// Tokens used, input and output together.
    #[serde(default)]
    pub total_tokens: u32,
    /// Tokens sent to models.
    #[serde(default)]
    pub input_tokens: u32,
    /// Tokens models returned.
    #[serde(default)]
    pub output_tokens: u32,
    /// Tokens used by the planner.
    #[serde(default)]
    pub tokens_planner: u32,
    /// Tokens used by the executor.
    #[serde(default)]
    pub tokens_executor: u32,
    /// Entities the job read.
    #[serde(default)]
    pub entities_read: u32,
    /// Entities the job wrote.
    #[serde(default)]
    pub entities_written: u32,
    /// Validators run on the job's output.
    #[serde(default)]
    pub validators_run_count: u32,
}

impl JobMetrics {
    /// All counters zero (the same as `default()`).
    pub fn zero() -> Self {
        Self::default()
    }
}

/// An AI job as stored: what it is, the contract it runs under, its state and
/// its results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AiJob {
    /// Generated (UUID v7) by `create_ai_job`.
    pub job_id: Uuid,
    /// The trace the job belongs to, for correlating logs.
    pub trace_id: Uuid,
    /// The workflow run executing the job, once there is one.
    pub workflow_run_id: Option<Uuid>,
    /// What the job does.
    pub job_kind: JobKind,
    /// Where the job is in its lifecycle.
    pub state: JobState,
    /// Why the job failed, when it did.
    pub error_message: Option<String>,
    /// The protocol it runs under (see [`crate::job_contract`]).
    pub protocol_id: String,
    /// The profile it runs under (see [`crate::job_contract`]).
    pub profile_id: String,
    /// The capabilities it was granted.
    pub capability_profile_id: String,
    /// How far it may act on what it reads.
    pub access_mode: AccessMode,
    /// The safety profile it runs under.
    pub safety_mode: SafetyMode,
    /// In the order they were given.
    pub entity_refs: Vec<EntityRef>,
    /// The steps it planned.
    pub planned_operations: Vec<PlannedOperation>,
    /// Its counters.
    pub metrics: JobMetrics,
    /// A short human-readable reason for its current state.
    pub status_reason: String,
    /// What it was given (JSON).
    pub job_inputs: Option<Value>,
    /// What it produced (JSON).
    pub job_outputs: Option<Value>,
    /// Pinned jobs are never pruned.
    pub pinned: bool,
    /// When the job was created; jobs list newest first by it.
    pub created_at: DateTime<Utc>,
    /// When the job was last written.
    pub updated_at: DateTime<Utc>,
}

/// What `create_ai_job` needs; the job starts `Queued`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAiJob {
    /// The trace the job belongs to.
    pub trace_id: Uuid,
    /// What the job does.
    pub job_kind: JobKind,
    /// The protocol it runs under (checked against the kind, see
    /// [`crate::job_contract`]).
    pub protocol_id: String,
    /// The profile it runs under (checked against the kind).
    pub profile_id: String,
    /// The capabilities it is granted.
    pub capability_profile_id: String,
    /// How far it may act on what it reads.
    pub access_mode: AccessMode,
    /// The safety profile it runs under.
    pub safety_mode: SafetyMode,
    /// What it refers to, in order.
    pub entity_refs: Vec<EntityRef>,
    /// The steps it plans.
    pub planned_operations: Vec<PlannedOperation>,
    /// A short human-readable reason for its state.
    pub status_reason: String,
    /// Its starting counters.
    pub metrics: JobMetrics,
    /// What it is given (JSON).
    pub job_inputs: Option<Value>,
}

impl Default for NewAiJob {
    fn default() -> Self {
        Self {
            trace_id: Uuid::new_v4(),
            job_kind: JobKind::DocEdit,
            protocol_id: "default".into(),
            profile_id: "default".into(),
            capability_profile_id: "default".into(),
            access_mode: AccessMode::AnalysisOnly,
            safety_mode: SafetyMode::Normal,
            entity_refs: Vec::new(),
            planned_operations: Vec::new(),
            status_reason: String::new(),
            metrics: JobMetrics::zero(),
            job_inputs: None,
        }
    }
}

/// A new state for a job. `state` and `status_reason` are always written;
/// `error_message`, `metrics`, `workflow_run_id`, `trace_id` and
/// `job_outputs` keep their stored value when `None` (Handshake writes
/// `COALESCE(new, old)` for each).
#[derive(Clone, Debug, PartialEq)]
pub struct JobStatusUpdate {
    /// The job to update.
    pub job_id: Uuid,
    /// Its new state.
    pub state: JobState,
    /// Why it failed, if it did (kept when `None`).
    pub error_message: Option<String>,
    /// A short human-readable reason for the new state.
    pub status_reason: String,
    /// New counters (kept when `None`).
    pub metrics: Option<JobMetrics>,
    /// The workflow run now executing it (kept when `None`).
    pub workflow_run_id: Option<Uuid>,
    /// A new trace id (kept when `None`).
    pub trace_id: Option<Uuid>,
    /// What it produced (kept when `None`).
    pub job_outputs: Option<Value>,
}

/// Where a page of `list_ai_jobs` ends: the next page starts after this job
/// in the list's order (`created_at` descending, then `job_id` descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiJobCursor {
    /// The `created_at` of the last job of the page.
    pub created_at: DateTime<Utc>,
    /// The `job_id` of the last job of the page.
    pub job_id: Uuid,
}

impl AiJobCursor {
    /// The cursor that continues after `job`, normally the last of a page.
    pub fn after(job: &AiJob) -> Self {
        Self {
            created_at: job.created_at,
            job_id: job.job_id,
        }
    }
}

/// Filters for `list_ai_jobs`; every field is optional and they combine with
/// AND. `from` is inclusive and `to` exclusive, on `created_at`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AiJobListFilter {
    /// Only jobs in this state.
    pub status: Option<JobState>,
    /// Only jobs of this kind.
    pub job_kind: Option<JobKind>,
    /// Jobs with an entity ref `{entity_kind: "workspace", entity_id: wsid}`.
    pub wsid: Option<String>,
    /// Only jobs created at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only jobs created before this instant.
    pub to: Option<DateTime<Utc>>,
    /// At most this many jobs (all when `None`).
    pub limit: Option<u32>,
    /// Continue after this position (see [`AiJobCursor::after`]).
    pub cursor: Option<AiJobCursor>,
}

/// One run of a workflow executing an AI job, with its heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// Generated (UUID v7).
    pub id: Uuid,
    /// The AI job the run executes.
    pub job_id: Uuid,
    /// Where the run is in its lifecycle.
    pub status: JobState,
    /// Why the run failed, when it did.
    pub error_message: Option<String>,
    /// The run's last sign of life; a run silent past a threshold is stalled
    /// (`find_stalled_workflows`).
    pub last_heartbeat: DateTime<Utc>,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// When the run was last written.
    pub updated_at: DateTime<Utc>,
}

/// One node of a workflow run, executed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowNodeExecution {
    /// Generated (UUID v7).
    pub id: Uuid,
    /// The run it belongs to.
    pub workflow_run_id: Uuid,
    /// The workflow node it executes.
    pub node_id: String,
    /// The type of that node.
    pub node_type: String,
    /// Where the execution is in its lifecycle.
    pub status: JobState,
    /// Its place in the run; executions list by sequence, then id.
    pub sequence: i64,
    /// What the node was given (JSON).
    pub input_payload: Option<Value>,
    /// What the node produced (JSON).
    pub output_payload: Option<Value>,
    /// Why the execution failed, when it did.
    pub error_message: Option<String>,
    /// When the execution started.
    pub started_at: DateTime<Utc>,
    /// When it reached a terminal state, if it has.
    pub finished_at: Option<DateTime<Utc>>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row was last written.
    pub updated_at: DateTime<Utc>,
}

/// What `create_workflow_node_execution` needs.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNodeExecution {
    /// The run it belongs to (must exist).
    pub workflow_run_id: Uuid,
    /// The workflow node it executes.
    pub node_id: String,
    /// The type of that node.
    pub node_type: String,
    /// Its starting state.
    pub status: JobState,
    /// Its place in the run.
    pub sequence: i64,
    /// What the node is given (JSON).
    pub input_payload: Option<Value>,
    /// When the execution started.
    pub started_at: DateTime<Utc>,
}

/// Who is writing, checked by the mutation guard before any write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteContext {
    /// Whether a person, an AI job or the system is writing.
    pub actor_kind: WriteActorKind,
    /// The writer's id, if it has one.
    pub actor_id: Option<String>,
    /// The AI job writing (required for AI writes).
    pub job_id: Option<Uuid>,
    /// The workflow writing (required for AI writes).
    pub workflow_id: Option<Uuid>,
}

impl WriteContext {
    /// A write by a person.
    pub fn human(actor_id: Option<String>) -> Self {
        Self {
            actor_kind: WriteActorKind::Human,
            actor_id,
            job_id: None,
            workflow_id: None,
        }
    }

    /// A write by the system itself (maintenance, imports).
    pub fn system(actor_id: Option<String>) -> Self {
        Self {
            actor_kind: WriteActorKind::System,
            actor_id,
            job_id: None,
            workflow_id: None,
        }
    }

    /// An AI write must name both its job and its workflow, or the guard
    /// refuses it with `HSK-403-SILENT-EDIT`.
    pub fn ai(actor_id: Option<String>, job_id: Option<Uuid>, workflow_id: Option<Uuid>) -> Self {
        Self {
            actor_kind: WriteActorKind::Ai,
            actor_id,
            job_id,
            workflow_id,
        }
    }
}

/// What the guard records for an accepted write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MutationMetadata {
    /// Whether a person, an AI job or the system wrote.
    pub actor_kind: WriteActorKind,
    /// The writer's id, if it gave one.
    pub actor_id: Option<String>,
    /// The AI job behind the write (AI writes only).
    pub job_id: Option<Uuid>,
    /// The workflow behind the write (AI writes only).
    pub workflow_id: Option<Uuid>,
    /// Fresh for every accepted write; the rows it touches carry it.
    pub edit_event_id: Uuid,
    /// The row the write was checked for.
    pub resource_id: String,
    /// When the write was accepted.
    pub timestamp: DateTime<Utc>,
}

impl MutationMetadata {
    /// The provenance this write leaves on the rows it touches.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            actor_kind: self.actor_kind,
            actor_id: self.actor_id.clone(),
            job_id: self.job_id,
            workflow_id: self.workflow_id,
            edit_event_id: self.edit_event_id,
        }
    }
}

/// What `prune_ai_jobs` did (or, with `dry_run`, would do).
///
/// `items_scanned` counts the completed/failed jobs created before the
/// cutoff; each of them is pruned, spared for being pinned, or spared to keep
/// the newest `min_versions`: `scanned = pruned + spared_pinned + spared_window`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// When the prune ran.
    pub timestamp: DateTime<Utc>,
    /// Completed or failed jobs created before the cutoff.
    pub items_scanned: u32,
    /// Of those, the jobs removed (or that a real run would remove).
    pub items_pruned: u32,
    /// Of those, the jobs kept for being pinned.
    pub items_spared_pinned: u32,
    /// Of those, the jobs kept to leave the newest `min_versions`.
    pub items_spared_window: u32,
    /// Always 0: kept for handshake_core's report shape; the store does not
    /// measure it.
    pub total_bytes_freed: u64,
    /// Whether this was a dry run (nothing removed).
    pub dry_run: bool,
}

/// Applied and pending migrations, by version, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStatus {
    /// The backend the store runs on.
    pub backend: Backend,
    /// Applied migrations, oldest first.
    pub applied: Vec<String>,
    /// Migrations this build knows that are not applied yet, oldest first.
    pub pending: Vec<String>,
}
