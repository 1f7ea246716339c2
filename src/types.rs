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
    /// the README); a row holding the legacy `term_exec` reads as
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
    Sqlite,
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
    pub actor_kind: WriteActorKind,
    pub actor_id: Option<String>,
    pub job_id: Option<Uuid>,
    pub workflow_id: Option<Uuid>,
    /// Fresh and non-nil for every accepted write.
    pub edit_event_id: Uuid,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewWorkspace {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub workspace_id: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewDocument {
    pub workspace_id: String,
    pub title: String,
}

/// A document block with content and classification metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub id: String,
    pub document_id: String,
    pub kind: String,
    pub sequence: i64,
    pub raw_content: String,
    pub display_content: String,
    pub derived_content: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// "low" | "medium" | "high" | "unknown"; `None` reads as unknown.
    pub sensitivity: Option<String>,
    /// Whether content may go to cloud models; stored `true` when not given.
    pub exportable: Option<bool>,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewBlock {
    /// A UUID v7 is generated when `None`.
    pub id: Option<String>,
    pub document_id: String,
    pub kind: String,
    pub sequence: i64,
    pub raw_content: String,
    /// Defaults to `raw_content`.
    pub display_content: Option<String>,
    /// Defaults to `{}`.
    pub derived_content: Option<Value>,
    pub sensitivity: Option<String>,
    /// Defaults to `true`.
    pub exportable: Option<bool>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockUpdate {
    pub kind: Option<String>,
    pub sequence: Option<i64>,
    pub raw_content: Option<String>,
    pub display_content: Option<String>,
    pub derived_content: Option<Value>,
    pub sensitivity: Option<String>,
    pub exportable: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Canvas {
    pub id: String,
    pub workspace_id: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCanvas {
    pub workspace_id: String,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanvasNode {
    pub id: String,
    pub canvas_id: String,
    pub kind: String,
    pub position_x: f64,
    pub position_y: f64,
    pub data: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanvasEdge {
    pub id: String,
    pub canvas_id: String,
    pub from_node_id: String,
    pub to_node_id: String,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provenance: Provenance,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCanvasNode {
    /// A UUID v7 is generated when `None`.
    pub id: Option<String>,
    pub kind: String,
    pub position_x: f64,
    pub position_y: f64,
    /// Defaults to `{}`.
    pub data: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCanvasEdge {
    /// A UUID v7 is generated when `None`.
    pub id: Option<String>,
    pub from_node_id: String,
    pub to_node_id: String,
    pub kind: String,
}

/// A canvas with its nodes and edges, each list ordered by id (bytewise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanvasGraph {
    pub canvas: Canvas,
    pub nodes: Vec<CanvasNode>,
    pub edges: Vec<CanvasEdge>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    pub entity_id: String,
    pub entity_kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOperation {
    pub op_type: OperationType,
    pub target: EntityRef,
    pub description: Option<String>,
}

/// Counters of an AI job; all zero by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMetrics {
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default)]
    pub total_tokens: u32,
    #[serde(default)]
    pub input_tokens: u32,
    #[serde(default)]
    pub output_tokens: u32,
    #[serde(default)]
    pub tokens_planner: u32,
    #[serde(default)]
    pub tokens_executor: u32,
    #[serde(default)]
    pub entities_read: u32,
    #[serde(default)]
    pub entities_written: u32,
    #[serde(default)]
    pub validators_run_count: u32,
}

impl JobMetrics {
    pub fn zero() -> Self {
        Self::default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AiJob {
    pub job_id: Uuid,
    pub trace_id: Uuid,
    pub workflow_run_id: Option<Uuid>,
    pub job_kind: JobKind,
    pub state: JobState,
    pub error_message: Option<String>,
    pub protocol_id: String,
    pub profile_id: String,
    pub capability_profile_id: String,
    pub access_mode: AccessMode,
    pub safety_mode: SafetyMode,
    /// In the order they were given.
    pub entity_refs: Vec<EntityRef>,
    pub planned_operations: Vec<PlannedOperation>,
    pub metrics: JobMetrics,
    pub status_reason: String,
    pub job_inputs: Option<Value>,
    pub job_outputs: Option<Value>,
    /// Pinned jobs are never pruned.
    pub pinned: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewAiJob {
    pub trace_id: Uuid,
    pub job_kind: JobKind,
    pub protocol_id: String,
    pub profile_id: String,
    pub capability_profile_id: String,
    pub access_mode: AccessMode,
    pub safety_mode: SafetyMode,
    pub entity_refs: Vec<EntityRef>,
    pub planned_operations: Vec<PlannedOperation>,
    pub status_reason: String,
    pub metrics: JobMetrics,
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
    pub job_id: Uuid,
    pub state: JobState,
    pub error_message: Option<String>,
    pub status_reason: String,
    pub metrics: Option<JobMetrics>,
    pub workflow_run_id: Option<Uuid>,
    pub trace_id: Option<Uuid>,
    pub job_outputs: Option<Value>,
}

/// Where a page of `list_ai_jobs` ends: the next page starts after this job
/// in the list's order (`created_at` descending, then `job_id` descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiJobCursor {
    pub created_at: DateTime<Utc>,
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
    pub status: Option<JobState>,
    pub job_kind: Option<JobKind>,
    /// Jobs with an entity ref `{entity_kind: "workspace", entity_id: wsid}`.
    pub wsid: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// At most this many jobs (all when `None`).
    pub limit: Option<u32>,
    /// Continue after this position (see [`AiJobCursor::after`]).
    pub cursor: Option<AiJobCursor>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRun {
    pub id: Uuid,
    pub job_id: Uuid,
    pub status: JobState,
    pub error_message: Option<String>,
    pub last_heartbeat: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowNodeExecution {
    pub id: Uuid,
    pub workflow_run_id: Uuid,
    pub node_id: String,
    pub node_type: String,
    pub status: JobState,
    pub sequence: i64,
    pub input_payload: Option<Value>,
    pub output_payload: Option<Value>,
    pub error_message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewNodeExecution {
    pub workflow_run_id: Uuid,
    pub node_id: String,
    pub node_type: String,
    pub status: JobState,
    pub sequence: i64,
    pub input_payload: Option<Value>,
    pub started_at: DateTime<Utc>,
}

/// Who is writing, checked by the mutation guard before any write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteContext {
    pub actor_kind: WriteActorKind,
    pub actor_id: Option<String>,
    pub job_id: Option<Uuid>,
    pub workflow_id: Option<Uuid>,
}

impl WriteContext {
    pub fn human(actor_id: Option<String>) -> Self {
        Self {
            actor_kind: WriteActorKind::Human,
            actor_id,
            job_id: None,
            workflow_id: None,
        }
    }

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
    pub actor_kind: WriteActorKind,
    pub actor_id: Option<String>,
    pub job_id: Option<Uuid>,
    pub workflow_id: Option<Uuid>,
    pub edit_event_id: Uuid,
    pub resource_id: String,
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
    pub timestamp: DateTime<Utc>,
    pub items_scanned: u32,
    pub items_pruned: u32,
    pub items_spared_pinned: u32,
    pub items_spared_window: u32,
    pub total_bytes_freed: u64,
    pub dry_run: bool,
}

/// Applied and pending migrations, by version, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStatus {
    pub backend: Backend,
    pub applied: Vec<String>,
    pub pending: Vec<String>,
}
