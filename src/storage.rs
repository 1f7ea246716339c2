//! The `Storage` trait: the whole API a caller sees, synchronous and object
//! safe, mirroring handshake_core's async `Database` trait method for method.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StorageResult;
use crate::kernel::*;
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
/// - stalled workflows: `last_heartbeat`, then `id`;
/// - kernel events: `event_sequence`.
///
/// Routing with read replicas (`StorageConfig::read_replicas`, PostgreSQL
/// only; without replicas everything goes to the one database):
///
/// | where | methods |
/// |---|---|
/// | a replica that has replayed this process's last write, is within `replica_max_lag` and is up; else the primary | `list_workspaces`, `get_workspace`, `list_documents`, `get_document`, `get_blocks`, `get_block`, `list_canvases`, `get_canvas_with_graph`, `get_ai_job`, `list_ai_jobs` without a cursor, `list_workflow_node_executions`, `list_kernel_events_for_session`, `list_kernel_events_for_aggregate`, `list_kernel_session_claims` |
/// | the primary, then the store notes the primary's WAL position so later reads see the write | every write: `create_*`, `update_*`, `delete_*`, `replace_blocks`, `update_canvas_graph`, `set_job_outputs`, `set_job_pinned`, `heartbeat_workflow`, `run_migrations`, `prune_ai_jobs` (not a dry run), `append_kernel_event*`, `enqueue_kernel_session_run*`, `claim_*kernel_session_run*`, `renew_kernel_session_lease`, `update_kernel_session_run_state*` |
/// | the primary, always | `list_ai_jobs` with a cursor (a page must never come from an older snapshot than the page before), `find_stalled_workflows` (lag would show false stalls), `list_kernel_events_after` (the tail: a lagging replica would look like the end of the ledger), `prune_ai_jobs` dry run (it reports what a real run would do), `ping`, `migration_status`, `migration_version`, `schema_fingerprint` |
/// | no database | `backend`, `validate_write_with_guard` |
///
/// A replica that fails a read with a `Database` error is skipped and the
/// read is answered by the primary: the caller never sees a replica's
/// failure.
///
/// A round trip: what is written reads back equal, on every backend.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> Result<(), handshake_storage::StorageError> {
/// use std::sync::Arc;
/// use handshake_storage::*;
///
/// let store: Arc<dyn Storage> = open("sqlite::memory:")?;
/// let ctx = WriteContext::system(None);
/// let ws = store.create_workspace(&ctx, NewWorkspace { name: "Team".into() })?;
/// let doc = store.create_document(
///     &ctx,
///     NewDocument { workspace_id: ws.id.clone(), title: "Plan".into() },
/// )?;
/// let block = store.create_block(
///     &ctx,
///     NewBlock {
///         document_id: doc.id.clone(),
///         kind: "heading".into(),
///         raw_content: "# Plan".into(),
///         ..Default::default()
///     },
/// )?;
///
/// assert_eq!(store.get_workspace(&ws.id)?, Some(ws.clone()));
/// assert_eq!(store.get_document(&doc.id)?, doc);
/// assert_eq!(store.get_blocks(&doc.id)?, vec![block.clone()]);
///
/// // Deleting the workspace removes what it holds.
/// store.delete_workspace(&ctx, &ws.id)?;
/// assert_eq!(store.get_block(&block.id).unwrap_err().kind(), ErrorKind::NotFound);
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
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
    /// `20261204000001`); `None` before any migration ran.
    fn migration_version(&self) -> StorageResult<Option<u64>>;
    /// The live schema as the database describes it (tables, columns with
    /// type, nullability and default, primary keys, indexes, foreign keys
    /// with their actions, triggers) and its stable hash. The fingerprint of
    /// a freshly migrated store equals the one committed for its backend in
    /// `src/schema/fingerprint_<backend>.txt`.
    fn schema_fingerprint(&self) -> StorageResult<SchemaFingerprint>;

    // Workspaces
    /// Every workspace, oldest first.
    fn list_workspaces(&self) -> StorageResult<Vec<Workspace>>;
    /// Creates a workspace with a new id, stamped with `ctx`'s provenance.
    fn create_workspace(
        &self,
        ctx: &WriteContext,
        workspace: NewWorkspace,
    ) -> StorageResult<Workspace>;
    /// The workspace with this id, `None` when there is none.
    fn get_workspace(&self, id: &str) -> StorageResult<Option<Workspace>>;
    /// Removes the workspace with its documents, blocks, canvases, nodes and
    /// edges. `NotFound` when there is no such workspace.
    fn delete_workspace(&self, ctx: &WriteContext, id: &str) -> StorageResult<()>;

    // Documents
    /// The documents of a workspace, oldest first (none for an unknown
    /// workspace).
    fn list_documents(&self, workspace_id: &str) -> StorageResult<Vec<Document>>;
    /// The document with this id; `NotFound` when there is none.
    fn get_document(&self, id: &str) -> StorageResult<Document>;
    /// Creates a document in an existing workspace (`Validation` when it does
    /// not exist).
    fn create_document(&self, ctx: &WriteContext, doc: NewDocument) -> StorageResult<Document>;
    /// Removes the document with its blocks. `NotFound` when there is no such
    /// document.
    fn delete_document(&self, ctx: &WriteContext, id: &str) -> StorageResult<()>;

    // Blocks
    /// The blocks of a document (none for an unknown document).
    fn get_blocks(&self, document_id: &str) -> StorageResult<Vec<Block>>;
    /// The block with this id; `NotFound` when there is none.
    fn get_block(&self, id: &str) -> StorageResult<Block>;
    /// Adds a block to an existing document; the defaults are on [`NewBlock`]'s
    /// fields.
    fn create_block(&self, ctx: &WriteContext, block: NewBlock) -> StorageResult<Block>;
    /// Changes the fields `update` gives and keeps the rest; `NotFound` when
    /// there is no such block.
    fn update_block(
        &self,
        ctx: &WriteContext,
        id: &str,
        update: BlockUpdate,
    ) -> StorageResult<Block>;
    /// Removes one block. `NotFound` when there is no such block.
    fn delete_block(&self, ctx: &WriteContext, id: &str) -> StorageResult<()>;
    /// Replaces every block of a document in one transaction: on any invalid
    /// item nothing changes. Each item's `document_id` is ignored: every
    /// block goes to `document_id`. The document is stamped with the
    /// write's provenance too. Returns the blocks in `get_blocks` order.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> Result<(), handshake_storage::StorageError> {
    /// use handshake_storage::*;
    ///
    /// let store = open("sqlite::memory:")?;
    /// let ctx = WriteContext::human(None);
    /// let ws = store.create_workspace(&ctx, NewWorkspace { name: "W".into() })?;
    /// let doc = store.create_document(
    ///     &ctx,
    ///     NewDocument { workspace_id: ws.id, title: "D".into() },
    /// )?;
    /// let block = |sequence: i64, text: &str| NewBlock {
    ///     kind: "paragraph".into(),
    ///     sequence,
    ///     raw_content: text.into(),
    ///     ..Default::default()
    /// };
    ///
    /// store.replace_blocks(&ctx, &doc.id, vec![block(1, "old")])?;
    /// let now = store.replace_blocks(&ctx, &doc.id, vec![block(2, "b"), block(1, "a")])?;
    /// let texts: Vec<_> = now.iter().map(|b| b.raw_content.as_str()).collect();
    /// assert_eq!(texts, ["a", "b"]);
    /// assert_eq!(store.get_blocks(&doc.id)?, now);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
    fn replace_blocks(
        &self,
        ctx: &WriteContext,
        document_id: &str,
        blocks: Vec<NewBlock>,
    ) -> StorageResult<Vec<Block>>;

    // Canvases
    /// Creates an empty canvas in an existing workspace.
    fn create_canvas(&self, ctx: &WriteContext, canvas: NewCanvas) -> StorageResult<Canvas>;
    /// The canvases of a workspace, oldest first (none for an unknown
    /// workspace).
    fn list_canvases(&self, workspace_id: &str) -> StorageResult<Vec<Canvas>>;
    /// The canvas with its nodes and edges; `NotFound` when there is no such
    /// canvas.
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
    /// Removes the canvas with its nodes and edges. `NotFound` when there is no
    /// such canvas.
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
    /// The job with this id; `NotFound` when there is none.
    fn get_ai_job(&self, job_id: Uuid) -> StorageResult<AiJob>;
    /// The jobs `filter` selects, newest first, a page at a time when it has a
    /// `limit` (continue with its `cursor`).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> Result<(), handshake_storage::StorageError> {
    /// use handshake_storage::*;
    ///
    /// let store = open("sqlite::memory:")?;
    /// for _ in 0..5 {
    ///     store.create_ai_job(NewAiJob { job_kind: JobKind::DocSummarize, ..Default::default() })?;
    /// }
    ///
    /// // Pages of two: each job exactly once, newest first.
    /// let mut filter = AiJobListFilter { limit: Some(2), ..Default::default() };
    /// let mut seen = Vec::new();
    /// loop {
    ///     let page = store.list_ai_jobs(filter.clone())?;
    ///     let Some(last) = page.last() else { break };
    ///     filter.cursor = Some(AiJobCursor::after(last));
    ///     seen.extend(page.iter().map(|job| job.job_id));
    /// }
    /// let all: Vec<_> = store
    ///     .list_ai_jobs(AiJobListFilter::default())?
    ///     .iter()
    ///     .map(|job| job.job_id)
    ///     .collect();
    /// assert_eq!((seen.len(), &seen), (5, &all));
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
    fn list_ai_jobs(&self, filter: AiJobListFilter) -> StorageResult<Vec<AiJob>>;
    /// Writes `state` and `status_reason`; every `None` field of `update`,
    /// `error_message` included, keeps the stored value (Handshake's
    /// `COALESCE(new, old)`).
    fn update_ai_job_status(&self, update: JobStatusUpdate) -> StorageResult<AiJob>;
    /// Replaces the job's outputs (`None` clears them). `NotFound` when there
    /// is no such job.
    fn set_job_outputs(&self, job_id: Uuid, outputs: Option<Value>) -> StorageResult<()>;
    /// Pins or unpins a job; `prune_ai_jobs` never removes a pinned one.
    /// `NotFound` when there is no such job.
    fn set_job_pinned(&self, job_id: Uuid, pinned: bool) -> StorageResult<()>;

    // Workflows
    /// `last_heartbeat` defaults to now.
    fn create_workflow_run(
        &self,
        job_id: Uuid,
        status: JobState,
        last_heartbeat: Option<DateTime<Utc>>,
    ) -> StorageResult<WorkflowRun>;
    /// Sets the run's status and replaces its error message (`None` clears it).
    /// `NotFound` when there is no such run.
    fn update_workflow_run_status(
        &self,
        run_id: Uuid,
        status: JobState,
        error_message: Option<String>,
    ) -> StorageResult<WorkflowRun>;
    /// Records a sign of life of the run at `at`. `NotFound` when there is no
    /// such run.
    fn heartbeat_workflow(&self, run_id: Uuid, at: DateTime<Utc>) -> StorageResult<()>;
    /// Records a node of an existing run starting.
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
    /// The node executions of a run, by `sequence`, then id (none for an
    /// unknown run).
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

    // Kernel ledger (docs/kernel.md)
    /// Appends one event; the store assigns `event_id`, `event_sequence`,
    /// `payload_hash` and `created_at`. A blank required field (after
    /// trimming) or an `event_type` that is not SCREAMING_SNAKE is
    /// `Validation`. An `idempotency_key` already in the ledger returns the
    /// stored event, writing nothing, when every field is the same (the
    /// payload compared by its canonical hash, so key order does not
    /// matter), and is `Conflict` naming the key and the fields that differ
    /// otherwise. Concurrent first appends of one key write one row and
    /// every caller gets it.
    fn append_kernel_event(&self, event: NewKernelEvent) -> StorageResult<KernelEvent>;
    /// Appends every event in one transaction, in order: all or nothing.
    /// Each behaves as in [`Storage::append_kernel_event`] (a key repeated
    /// within the batch with the same content gives the same event twice).
    fn append_kernel_events_atomic(
        &self,
        events: Vec<NewKernelEvent>,
    ) -> StorageResult<Vec<KernelEvent>>;
    /// Appends `first`, then `second` with its `causation_id` set to the
    /// first's `event_id`, in one transaction: both or neither.
    fn append_kernel_event_pair_atomic_with_causation(
        &self,
        first: NewKernelEvent,
        second: NewKernelEvent,
    ) -> StorageResult<(KernelEvent, KernelEvent)>;
    /// The events of a session run, by `event_sequence` ascending.
    fn list_kernel_events_for_session(
        &self,
        session_run_id: &str,
    ) -> StorageResult<Vec<KernelEvent>>;
    /// The events of one aggregate, by `event_sequence` ascending.
    fn list_kernel_events_for_aggregate(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> StorageResult<Vec<KernelEvent>>;
    /// At most `limit` (at least 1) events with `event_sequence` above
    /// `after_sequence` (not negative), ascending: the tail for
    /// projections. Sequence order is commit order, so a reader paging
    /// from 0 sees every committed event exactly once, in order, however
    /// many writers append meanwhile.
    fn list_kernel_events_after(
        &self,
        after_sequence: i64,
        limit: u32,
    ) -> StorageResult<Vec<KernelEvent>>;

    // Kernel session queue (docs/kernel.md). Lease times come from the
    // database's clock, never the caller's.
    /// Enqueues a run in state `Queued` (any other state is `Validation`),
    /// available at once; an id already queued is `Conflict`. The stored
    /// times are the database's.
    fn enqueue_kernel_session_run(&self, run: SessionRun) -> StorageResult<SessionRun>;
    /// [`Storage::enqueue_kernel_session_run`] and its `SESSION_QUEUED`
    /// event in one transaction.
    fn enqueue_kernel_session_run_and_record_event(
        &self,
        run: SessionRun,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<(SessionRun, KernelEvent)>;
    /// Claims one named run for `claimed_by` for `lease` (more than zero):
    /// a `Queued` or `RetryScheduled` run whose `available_at` has passed,
    /// or a `Claimed` or `Running` run whose lease has expired (taken
    /// over: the old claim ends with no outcome and its fence is refused
    /// from then on). The claim gets the next attempt number, its fence.
    /// `None` when the run is not claimable; `NotFound` for an unknown run.
    fn claim_kernel_session_run(
        &self,
        session_run_id: &str,
        claimed_by: &str,
        lease: Duration,
    ) -> StorageResult<Option<KernelSessionLease>>;
    /// [`Storage::claim_kernel_session_run`] and its `SESSION_CLAIMED`
    /// event in one transaction; a claim that finds nothing appends
    /// nothing.
    fn claim_kernel_session_run_and_record_event(
        &self,
        session_run_id: &str,
        claimed_by: &str,
        lease: Duration,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<Option<(KernelSessionLease, KernelEvent)>>;
    /// Claims the claimable run (as above) that has been available longest
    /// (`available_at`, then id), of one adapter when `adapter_id` is
    /// given. Concurrent workers never get the same live claim and never
    /// wait on each other's rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`;
    /// SQLite: one writer at a time). `None` when nothing is claimable.
    fn claim_next_kernel_session_run(
        &self,
        claimed_by: &str,
        lease: Duration,
        adapter_id: Option<&str>,
    ) -> StorageResult<Option<KernelSessionLease>>;
    /// The heartbeat: the claim `fence` names gets a lease of `lease` from
    /// now. `Conflict` once it is not the current claim (another claim
    /// took the run over, or the run left `Claimed`/`Running`);
    /// `NotFound` for an unknown run.
    fn renew_kernel_session_lease(
        &self,
        fence: &LeaseFence,
        lease: Duration,
    ) -> StorageResult<KernelSessionLease>;
    /// Moves a run to `update.state`. `NotFound` for an unknown run; a
    /// fence that is not the current claim is `Conflict` (checked first: a
    /// worker whose lease was taken over cannot complete or fail the run);
    /// a move outside the 17 legal ones, a move to `Claimed` (claims are
    /// taken with the claim methods) and a delay on a state other than
    /// `RetryScheduled` and `BackpressureDelayed` are `Validation`. A delay
    /// makes the run available that long from now. Leaving `Claimed` or
    /// `Running` ends the claim with the state reached as its outcome.
    fn update_kernel_session_run_state(
        &self,
        session_run_id: &str,
        update: SessionRunUpdate,
    ) -> StorageResult<KernelSessionLease>;
    /// [`Storage::update_kernel_session_run_state`] and the event of the
    /// state reached (`SESSION_STARTED` for `Running`, ...) in one
    /// transaction.
    fn update_kernel_session_run_state_and_record_event(
        &self,
        session_run_id: &str,
        update: SessionRunUpdate,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<(KernelSessionLease, KernelEvent)>;
    /// Every claim of a run, oldest first, with how each ended (none for
    /// an unknown run).
    fn list_kernel_session_claims(&self, session_run_id: &str) -> StorageResult<Vec<SessionClaim>>;
}
