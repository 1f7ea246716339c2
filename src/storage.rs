//! The `Storage` trait: the whole API a caller sees, synchronous and object
//! safe, mirroring handshake_core's async `Database` trait method for method.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StorageResult;
use crate::schema_info::SchemaFingerprint;
use crate::types::*;

/// One storage API over every backend. Callers hold an `Arc<dyn Storage>`.
///
/// Orderings (all deterministic, independent of collation and insertion
/// order; text ids compare bytewise):
/// - workspaces, documents, canvases: `created_at`, then `id`;
/// - blocks: `sequence`, then `id`;
/// - canvas nodes and edges: `id`;
/// - AI jobs: `created_at` descending, then `job_id` descending;
/// - node executions: `sequence`, then `id`;
/// - stalled workflows: `last_heartbeat`, then `id`.
///
/// Routing with read replicas (`StorageConfig::read_replicas`, PostgreSQL
/// only; without replicas everything goes to the one database):
///
/// | where | methods |
/// |---|---|
/// | a replica that has replayed this process's last write, is within `replica_max_lag` and is up; else the primary | `list_workspaces`, `get_workspace`, `list_documents`, `get_document`, `get_blocks`, `get_block`, `list_canvases`, `get_canvas_with_graph`, `get_ai_job`, `list_ai_jobs` without a cursor, `list_workflow_node_executions` |
/// | the primary, then the store notes the primary's WAL position so later reads see the write | every write: `create_*`, `update_*`, `delete_*`, `replace_blocks`, `update_canvas_graph`, `set_job_outputs`, `set_job_pinned`, `heartbeat_workflow`, `run_migrations`, `prune_ai_jobs` (not a dry run) |
/// | the primary, always | `list_ai_jobs` with a cursor (a page must never come from an older snapshot than the page before), `find_stalled_workflows` (lag would show false stalls), `prune_ai_jobs` dry run (it reports what a real run would do), `ping`, `migration_status`, `migration_version`, `schema_fingerprint` |
/// | no database | `backend`, `validate_write_with_guard` |
///
/// A replica that fails a read with a `Database` error is skipped and the
/// read is answered by the primary: the caller never sees a replica's
/// failure.
pub trait Storage: Send + Sync {
    // Health
    /// Which database this store runs on.
    fn backend(&self) -> Backend;
    /// One round trip to the database.
    fn ping(&self) -> StorageResult<()>;
    /// Applies pending migrations; a no-op when there are none.
    fn run_migrations(&self) -> StorageResult<()>;
    /// Which migrations are applied and which are pending.
    fn migration_status(&self) -> StorageResult<MigrationStatus>;
    /// The newest applied migration's version as a number (for example
    /// `20261124000003`); `None` before any migration ran.
    fn migration_version(&self) -> StorageResult<Option<u64>>;
    /// The live schema as the database describes it (tables, columns with
    /// type, nullability and default, primary keys, indexes, foreign keys
    /// with their actions, triggers) and its stable hash. The fingerprint of
    /// a freshly migrated store equals the one committed for its backend in
    /// `src/schema/fingerprint_<backend>.txt`.
    fn schema_fingerprint(&self) -> StorageResult<SchemaFingerprint>;

    // Workspaces
    fn list_workspaces(&self) -> StorageResult<Vec<Workspace>>;
    fn create_workspace(
        &self,
        ctx: &WriteContext,
        workspace: NewWorkspace,
    ) -> StorageResult<Workspace>;
    fn get_workspace(&self, id: &str) -> StorageResult<Option<Workspace>>;
    /// Removes the workspace with its documents, blocks, canvases, nodes and
    /// edges. `NotFound` when there is no such workspace.
    fn delete_workspace(&self, ctx: &WriteContext, id: &str) -> StorageResult<()>;

    // Documents
    fn list_documents(&self, workspace_id: &str) -> StorageResult<Vec<Document>>;
    fn get_document(&self, id: &str) -> StorageResult<Document>;
    fn create_document(&self, ctx: &WriteContext, doc: NewDocument) -> StorageResult<Document>;
    fn delete_document(&self, ctx: &WriteContext, id: &str) -> StorageResult<()>;

    // Blocks
    /// The blocks of a document (none for an unknown document).
    fn get_blocks(&self, document_id: &str) -> StorageResult<Vec<Block>>;
    fn get_block(&self, id: &str) -> StorageResult<Block>;
    fn create_block(&self, ctx: &WriteContext, block: NewBlock) -> StorageResult<Block>;
    fn update_block(
        &self,
        ctx: &WriteContext,
        id: &str,
        update: BlockUpdate,
    ) -> StorageResult<Block>;
    fn delete_block(&self, ctx: &WriteContext, id: &str) -> StorageResult<()>;
    /// Replaces every block of a document in one transaction: on any invalid
    /// item nothing changes. Each item's `document_id` is ignored: every
    /// block goes to `document_id`. The document is stamped with the
    /// write's provenance too. Returns the blocks in `get_blocks` order.
    fn replace_blocks(
        &self,
        ctx: &WriteContext,
        document_id: &str,
        blocks: Vec<NewBlock>,
    ) -> StorageResult<Vec<Block>>;

    // Canvases
    fn create_canvas(&self, ctx: &WriteContext, canvas: NewCanvas) -> StorageResult<Canvas>;
    fn list_canvases(&self, workspace_id: &str) -> StorageResult<Vec<Canvas>>;
    fn get_canvas_with_graph(&self, id: &str) -> StorageResult<CanvasGraph>;
    /// Replaces a canvas's nodes and edges in one transaction: on any invalid
    /// item (duplicate id, edge to a node not in `nodes`) nothing changes.
    fn update_canvas_graph(
        &self,
        ctx: &WriteContext,
        id: &str,
        nodes: Vec<NewCanvasNode>,
        edges: Vec<NewCanvasEdge>,
    ) -> StorageResult<CanvasGraph>;
    fn delete_canvas(&self, ctx: &WriteContext, id: &str) -> StorageResult<()>;

    // AI jobs
    /// Refuses, with `Validation` and nothing written, a job whose kind,
    /// `profile_id` and `protocol_id` break Handshake's job contract (see
    /// [`crate::job_contract`]): `micro_task_execution` needs profile and
    /// protocol `micro_task_executor_v1`, and they need that kind;
    /// `media_downloader` needs a `hsk.media_downloader.*.v0` protocol;
    /// `loom_preview_generate` and `hsk.loom.preview_generate@v1` need each
    /// other. New ids are UUID v7.
    fn create_ai_job(&self, job: NewAiJob) -> StorageResult<AiJob>;
    fn get_ai_job(&self, job_id: Uuid) -> StorageResult<AiJob>;
    fn list_ai_jobs(&self, filter: AiJobListFilter) -> StorageResult<Vec<AiJob>>;
    /// Writes `state` and `status_reason`; every `None` field of `update`,
    /// `error_message` included, keeps the stored value (Handshake's
    /// `COALESCE(new, old)`).
    fn update_ai_job_status(&self, update: JobStatusUpdate) -> StorageResult<AiJob>;
    fn set_job_outputs(&self, job_id: Uuid, outputs: Option<Value>) -> StorageResult<()>;
    fn set_job_pinned(&self, job_id: Uuid, pinned: bool) -> StorageResult<()>;

    // Workflows
    /// `last_heartbeat` defaults to now.
    fn create_workflow_run(
        &self,
        job_id: Uuid,
        status: JobState,
        last_heartbeat: Option<DateTime<Utc>>,
    ) -> StorageResult<WorkflowRun>;
    fn update_workflow_run_status(
        &self,
        run_id: Uuid,
        status: JobState,
        error_message: Option<String>,
    ) -> StorageResult<WorkflowRun>;
    fn heartbeat_workflow(&self, run_id: Uuid, at: DateTime<Utc>) -> StorageResult<()>;
    fn create_workflow_node_execution(
        &self,
        exec: NewNodeExecution,
    ) -> StorageResult<WorkflowNodeExecution>;
    /// A terminal state (completed, failed, cancelled, ...) or `stalled`
    /// sets `finished_at` (as Handshake does). `output` and
    /// `error_message` replace the stored values when `Some` and keep them
    /// when `None` (Handshake's `COALESCE(new, old)`).
    fn update_workflow_node_execution_status(
        &self,
        exec_id: Uuid,
        status: JobState,
        output: Option<Value>,
        error_message: Option<String>,
    ) -> StorageResult<WorkflowNodeExecution>;
    fn list_workflow_node_executions(
        &self,
        run_id: Uuid,
    ) -> StorageResult<Vec<WorkflowNodeExecution>>;
    /// Runs in `running` whose heartbeat is older than `threshold_secs`.
    fn find_stalled_workflows(&self, threshold_secs: u64) -> StorageResult<Vec<WorkflowRun>>;

    // Guard
    /// Checks `ctx` against the no-silent-edits rule and returns what an
    /// accepted write would record. Writes nothing.
    fn validate_write_with_guard(
        &self,
        ctx: &WriteContext,
        resource_id: &str,
    ) -> StorageResult<MutationMetadata>;

    // Retention
    /// Deletes completed/failed, unpinned jobs created before `cutoff`,
    /// except those among the newest `min_versions` of all unpinned
    /// completed/failed jobs, recent ones (created at or after `cutoff`)
    /// included, as Handshake counts them. `dry_run` reports the same
    /// counts and changes nothing.
    fn prune_ai_jobs(
        &self,
        cutoff: DateTime<Utc>,
        min_versions: u32,
        dry_run: bool,
    ) -> StorageResult<PruneReport>;
}
