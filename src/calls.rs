//! The `Storage` methods as data. One list, `storage_methods!`, names
//! every method with its arguments, result, kind and table; the code that
//! must exist once per method is generated from it: the `Storage` impl of
//! [`Hooked`] (the decorator the `tracing` feature uses, and anyone who
//! wants metrics or fault injection around a real store) and the async
//! methods of `AsyncStorage` (feature `tokio`). Adding a method to the trait
//! without adding it here fails to compile (`Hooked` misses it).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StorageResult;
use crate::kernel::*;
use crate::schema_info::SchemaFingerprint;
use crate::storage::Storage;
use crate::types::*;

/// Calls `$then!` with every `Storage` method except `backend()` (which
/// does no I/O). Each entry is
/// `Kind "table" name(borrowed: &Type, ..; owned: Type, .. [; text: Option<&str>, ..]) -> Result;`:
/// borrowed arguments before the `;`, owned ones after it (the async facade
/// clones the borrowed ones to move them onto a blocking thread), and
/// optionally, last, optional borrowed text (cloned the same way); the table
/// is the main one the call touches (`""` for none).
macro_rules! storage_methods {
    ($then:ident) => {
        $then! {
            Admin "" ping(;) -> ();
            Admin "" run_migrations(;) -> ();
            Admin "" migration_status(;) -> MigrationStatus;
            Admin "" migration_version(;) -> Option<u64>;
            Admin "" schema_fingerprint(;) -> SchemaFingerprint;

            Read "workspaces" list_workspaces(;) -> Vec<Workspace>;
            Write "workspaces" create_workspace(ctx: &WriteContext; workspace: NewWorkspace) -> Workspace;
            Read "workspaces" get_workspace(id: &str;) -> Option<Workspace>;
            Write "workspaces" delete_workspace(ctx: &WriteContext, id: &str;) -> ();

            Read "documents" list_documents(workspace_id: &str;) -> Vec<Document>;
            Read "documents" get_document(id: &str;) -> Document;
            Write "documents" create_document(ctx: &WriteContext; doc: NewDocument) -> Document;
            Write "documents" delete_document(ctx: &WriteContext, id: &str;) -> ();

            Read "blocks" get_blocks(document_id: &str;) -> Vec<Block>;
            Read "blocks" get_block(id: &str;) -> Block;
            Write "blocks" create_block(ctx: &WriteContext; block: NewBlock) -> Block;
            Write "blocks" update_block(ctx: &WriteContext, id: &str; update: BlockUpdate) -> Block;
            Write "blocks" delete_block(ctx: &WriteContext, id: &str;) -> ();
            Write "blocks" replace_blocks(ctx: &WriteContext, document_id: &str; blocks: Vec<NewBlock>) -> Vec<Block>;

            Write "canvases" create_canvas(ctx: &WriteContext; canvas: NewCanvas) -> Canvas;
            Read "canvases" list_canvases(workspace_id: &str;) -> Vec<Canvas>;
            Read "canvases" get_canvas_with_graph(id: &str;) -> CanvasGraph;
            Write "canvases" update_canvas_graph(ctx: &WriteContext, id: &str; nodes: Vec<NewCanvasNode>, edges: Vec<NewCanvasEdge>) -> CanvasGraph;
            Write "canvases" delete_canvas(ctx: &WriteContext, id: &str;) -> ();

            Write "ai_jobs" create_ai_job(; job: NewAiJob) -> AiJob;
            Read "ai_jobs" get_ai_job(; job_id: Uuid) -> AiJob;
            Read "ai_jobs" list_ai_jobs(; filter: AiJobListFilter) -> Vec<AiJob>;
            Write "ai_jobs" update_ai_job_status(; update: JobStatusUpdate) -> AiJob;
            Write "ai_jobs" set_job_outputs(; job_id: Uuid, outputs: Option<Value>) -> ();
            Write "ai_jobs" set_job_pinned(; job_id: Uuid, pinned: bool) -> ();

            Write "workflow_runs" create_workflow_run(; job_id: Uuid, status: JobState, last_heartbeat: Option<DateTime<Utc>>) -> WorkflowRun;
            Write "workflow_runs" update_workflow_run_status(; run_id: Uuid, status: JobState, error_message: Option<String>) -> WorkflowRun;
            Write "workflow_runs" heartbeat_workflow(; run_id: Uuid, at: DateTime<Utc>) -> ();
            Write "workflow_node_executions" create_workflow_node_execution(; exec: NewNodeExecution) -> WorkflowNodeExecution;
            Write "workflow_node_executions" update_workflow_node_execution_status(; exec_id: Uuid, status: JobState, output: Option<Value>, error_message: Option<String>) -> WorkflowNodeExecution;
            Read "workflow_node_executions" list_workflow_node_executions(; run_id: Uuid) -> Vec<WorkflowNodeExecution>;
            Read "workflow_runs" find_stalled_workflows(; threshold_secs: u64) -> Vec<WorkflowRun>;

            Admin "" validate_write_with_guard(ctx: &WriteContext, resource_id: &str;) -> MutationMetadata;
            Write "ai_jobs" prune_ai_jobs(; cutoff: DateTime<Utc>, min_versions: u32, dry_run: bool) -> PruneReport;

            Write "kernel_events" append_kernel_event(; event: NewKernelEvent) -> KernelEvent;
            Write "kernel_events" append_kernel_events_atomic(; events: Vec<NewKernelEvent>) -> Vec<KernelEvent>;
            Write "kernel_events" append_kernel_event_pair_atomic_with_causation(; first: NewKernelEvent, second: NewKernelEvent) -> (KernelEvent, KernelEvent);
            Read "kernel_events" list_kernel_events_for_session(session_run_id: &str;) -> Vec<KernelEvent>;
            Read "kernel_events" list_kernel_events_for_aggregate(aggregate_type: &str, aggregate_id: &str;) -> Vec<KernelEvent>;
            Read "kernel_events" list_kernel_events_after(; after_sequence: i64, limit: u32) -> Vec<KernelEvent>;

            Write "kernel_session_runs" enqueue_kernel_session_run(; run: SessionRun) -> SessionRun;
            Write "kernel_session_runs" enqueue_kernel_session_run_and_record_event(; run: SessionRun, causation_id: Option<String>, correlation_id: Option<String>) -> (SessionRun, KernelEvent);
            Write "kernel_session_runs" claim_kernel_session_run(session_run_id: &str, claimed_by: &str; lease: Duration) -> Option<KernelSessionLease>;
            Write "kernel_session_runs" claim_kernel_session_run_and_record_event(session_run_id: &str, claimed_by: &str; lease: Duration, causation_id: Option<String>, correlation_id: Option<String>) -> Option<(KernelSessionLease, KernelEvent)>;
            Write "kernel_session_runs" claim_next_kernel_session_run(claimed_by: &str; lease: Duration; adapter_id: Option<&str>) -> Option<KernelSessionLease>;
            Write "kernel_session_runs" renew_kernel_session_lease(fence: &LeaseFence; lease: Duration) -> KernelSessionLease;
            Write "kernel_session_runs" update_kernel_session_run_state(session_run_id: &str; update: SessionRunUpdate) -> KernelSessionLease;
            Write "kernel_session_runs" update_kernel_session_run_state_and_record_event(session_run_id: &str; update: SessionRunUpdate, causation_id: Option<String>, correlation_id: Option<String>) -> (KernelSessionLease, KernelEvent);
            Read "kernel_session_claims" list_kernel_session_claims(session_run_id: &str;) -> Vec<SessionClaim>;
        }
    };
}
#[cfg_attr(not(feature = "tokio"), allow(unused_imports))]
pub(crate) use storage_methods;

/// What a call does, for hooks (tracing records returned rows for reads,
/// affected rows for writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// Reads rows.
    Read,
    /// Writes rows.
    Write,
    /// Neither: health, migrations, the guard check.
    Admin,
}

/// One `Storage` method, as a [`StorageHook`] sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Call {
    /// The method's name (`"get_block"`).
    pub method: &'static str,
    /// The main table the method touches, if any (`"blocks"`).
    pub collection: Option<&'static str>,
    /// Whether the method reads, writes or neither.
    pub kind: CallKind,
    /// Starts this method's span (one callsite per method, so the span is
    /// named after it).
    #[cfg(feature = "tracing")]
    pub(crate) span: fn(&SpanTarget, &Call) -> tracing::Span,
}

/// What every span of one store carries (feature `tracing`; the
/// `tracing_layer` fills it in).
#[cfg(feature = "tracing")]
#[derive(Debug)]
pub(crate) struct SpanTarget {
    pub(crate) system: &'static str,
    pub(crate) namespace: Option<String>,
}

/// Starts the span of one method; expanded once per method (by
/// `hooked_storage!` below), so that each span is named after its method.
#[cfg(feature = "tracing")]
macro_rules! call_span {
    ($name:ident, $target:expr, $call:expr) => {
        tracing::info_span!(
            stringify!($name),
            "db.system.name" = $target.system,
            "db.namespace" = $target.namespace.as_deref(),
            "db.operation.name" = $call.method,
            "db.collection.name" = $call.collection,
            "db.response.returned_rows" = tracing::field::Empty,
            "db.response.affected_rows" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        )
    };
}

/// How many rows a successful call's result stands for: the rows a read
/// returned, or the rows a write touched (a write that returns `()`
/// affected exactly one row, or it would have failed with `NotFound`).
pub trait CallOutcome {
    /// `None` where a count means nothing (health and migration calls).
    fn rows(&self) -> Option<u64>;
}

impl CallOutcome for () {
    fn rows(&self) -> Option<u64> {
        Some(1)
    }
}

impl<T> CallOutcome for Vec<T> {
    fn rows(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

impl<T> CallOutcome for Option<T> {
    fn rows(&self) -> Option<u64> {
        Some(u64::from(self.is_some()))
    }
}

impl CallOutcome for CanvasGraph {
    fn rows(&self) -> Option<u64> {
        Some(1 + self.nodes.len() as u64 + self.edges.len() as u64)
    }
}

impl CallOutcome for PruneReport {
    fn rows(&self) -> Option<u64> {
        Some(if self.dry_run {
            0
        } else {
            u64::from(self.items_pruned)
        })
    }
}

impl CallOutcome for MigrationStatus {
    fn rows(&self) -> Option<u64> {
        None
    }
}

impl CallOutcome for SchemaFingerprint {
    fn rows(&self) -> Option<u64> {
        None
    }
}

impl CallOutcome for MutationMetadata {
    fn rows(&self) -> Option<u64> {
        None
    }
}

macro_rules! one_row {
    ($($ty:ty),*) => {
        $(impl CallOutcome for $ty {
            fn rows(&self) -> Option<u64> {
                Some(1)
            }
        })*
    };
}
impl<A, B> CallOutcome for (A, B) {
    fn rows(&self) -> Option<u64> {
        Some(2)
    }
}

one_row!(
    KernelEvent,
    KernelSessionLease,
    SessionRun,
    Workspace,
    Document,
    Block,
    Canvas,
    AiJob,
    WorkflowRun,
    WorkflowNodeExecution
);

/// Code run around every call of a [`Hooked`] store: `run` is the call on
/// the inner store, to be run at most once.
pub trait StorageHook: Send + Sync + 'static {
    /// Runs `run` (the call on the inner store) at most once, with whatever the
    /// hook does around it, and returns its result or an error of the hook's.
    fn call<T: CallOutcome>(
        &self,
        call: &Call,
        run: impl FnOnce() -> StorageResult<T>,
    ) -> StorageResult<T>;
}

/// A store whose every call (all but `backend()`) goes through a hook.
pub struct Hooked<H> {
    inner: Arc<dyn Storage>,
    hook: H,
}

impl<H: StorageHook> Hooked<H> {
    /// `inner` with every call going through `hook`.
    pub fn new(inner: Arc<dyn Storage>, hook: H) -> Self {
        Hooked { inner, hook }
    }

    /// The hook, e.g. to read what it has collected.
    pub fn hook(&self) -> &H {
        &self.hook
    }
}

macro_rules! hooked_storage {
    ($(
        $kind:ident $table:literal $name:ident
        ($($r:ident : &$rt:ty),* ; $($o:ident : $ot:ty),* $(; $($s:ident : Option<&str>),*)?) -> $ret:ty;
    )*) => {
        impl<H: StorageHook> Storage for Hooked<H> {
            fn backend(&self) -> Backend {
                self.inner.backend()
            }

            $(
                fn $name(&self, $($r: &$rt,)* $($o: $ot,)* $($($s: Option<&str>),*)?) -> StorageResult<$ret> {
                    const CALL: Call = Call {
                        method: stringify!($name),
                        collection: if $table.is_empty() { None } else { Some($table) },
                        kind: CallKind::$kind,
                        #[cfg(feature = "tracing")]
                        span: |target, call| call_span!($name, target, call),
                    };
                    self.hook.call(&CALL, || self.inner.$name($($r,)* $($o,)* $($($s),*)?))
                }
            )*
        }
    };
}
storage_methods!(hooked_storage);
