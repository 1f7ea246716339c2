//! Helpers shared by several areas: seeding through the store, error-kind
//! assertions, small readers. Test data itself comes from
//! [`fixtures`](crate::conformance::fixtures).

#[allow(unused_imports)]
use super::*;

/// Asserts that `result` failed with the error variant named `kind` and
/// returns the error.
#[track_caller]
pub(super) fn expect_kind<T: Debug>(result: StorageResult<T>, kind: ErrorKind) -> StorageError {
    match result {
        Ok(value) => panic!("expected a {kind} error, got Ok({value:?})"),
        Err(err) => {
            assert_eq!(err.kind(), kind, "wrong error variant: {err:?}");
            err
        }
    }
}

/// Asserts that the guard refused a write with `HSK-403-SILENT-EDIT`.
#[track_caller]
pub(super) fn expect_guard<T: Debug>(result: StorageResult<T>) {
    let err = expect_kind(result, ErrorKind::Guard);
    assert!(
        err.to_string().contains("HSK-403-SILENT-EDIT"),
        "guard error without HSK-403-SILENT-EDIT: {err}"
    );
}

/// Asserts that `result` failed with the variant named `kind`; `what` names
/// the attempt in the failure message.
#[track_caller]
pub(super) fn assert_fails<T: Debug>(what: &str, result: StorageResult<T>, kind: ErrorKind) {
    assert!(
        matches!(&result, Err(err) if err.kind() == kind),
        "{what}: expected {kind}, got {result:?}"
    );
}

/// Text with a NUL byte, which no backend may store.
pub(super) const NUL: &str = "a\0b";

/// A named change to an input, for tables of invalid inputs.
pub(super) type Edit<T> = (&'static str, fn(&mut T));

/// `value` after `edit`: one input of a table of invalid inputs.
pub(super) fn edited<T>(mut value: T, edit: impl FnOnce(&mut T)) -> T {
    edit(&mut value);
    value
}

pub(super) fn seed_workspace_as(h: &Harness, ctx: &WriteContext, name: &str) -> Workspace {
    h.store()
        .create_workspace(ctx, NewWorkspace { name: name.into() })
        .expect("create workspace")
}

pub(super) fn seed_workspace_named(h: &Harness, name: &str) -> Workspace {
    seed_workspace_as(h, &human(), name)
}

pub(super) fn seed_workspace(h: &Harness) -> Workspace {
    seed_workspace_named(h, "Workspace")
}

pub(super) fn seed_document_as(
    h: &Harness,
    ctx: &WriteContext,
    workspace_id: &str,
    title: &str,
) -> Document {
    h.store()
        .create_document(ctx, new_doc(workspace_id, title))
        .expect("create document")
}

pub(super) fn seed_document_in(h: &Harness, workspace_id: &str, title: &str) -> Document {
    seed_document_as(h, &human(), workspace_id, title)
}

/// A fresh workspace with one document in it; returns the document.
pub(super) fn seed_document(h: &Harness) -> Document {
    let ws = seed_workspace(h);
    seed_document_in(h, &ws.id, "Document")
}

pub(super) fn seed_canvas_as(
    h: &Harness,
    ctx: &WriteContext,
    workspace_id: &str,
    title: &str,
) -> Canvas {
    h.store()
        .create_canvas(ctx, new_canvas(workspace_id, title))
        .expect("create canvas")
}

pub(super) fn seed_canvas_in(h: &Harness, workspace_id: &str, title: &str) -> Canvas {
    seed_canvas_as(h, &human(), workspace_id, title)
}

/// A fresh workspace with one canvas in it; returns the canvas.
pub(super) fn seed_canvas(h: &Harness) -> Canvas {
    let ws = seed_workspace(h);
    seed_canvas_in(h, &ws.id, "Canvas")
}

pub(super) fn add_block(h: &Harness, doc: &str, seq: i64, id: Option<&str>) -> Block {
    h.store()
        .create_block(&human(), new_block(doc, seq, id))
        .expect("create block")
}

/// Gives `canvas` the nodes `n1`, `n2`, `n3` and the edges `e1` (n1→n2),
/// `e2` (n2→n3).
pub(super) fn seed_graph(h: &Harness, canvas: &str) -> CanvasGraph {
    seed_graph_with(h, &human(), canvas)
}

pub(super) fn add_job(h: &Harness) -> AiJob {
    h.store()
        .create_ai_job(new_job(JobKind::DocEdit, Vec::new()))
        .expect("create ai job")
}

/// Creates `n` jobs of `kind`, a couple of milliseconds apart so that their
/// `created_at` differ.
pub(super) fn add_jobs_apart(
    h: &Harness,
    n: usize,
    kind: JobKind,
    refs: &[EntityRef],
) -> Vec<AiJob> {
    (0..n)
        .map(|_| {
            pause();
            let job = h
                .store()
                .create_ai_job(new_job(kind, refs.to_vec()))
                .expect("create ai job");
            pause();
            job
        })
        .collect()
}

pub(super) fn pause() {
    std::thread::sleep(std::time::Duration::from_millis(2));
}

pub(super) fn set_state(store: &dyn Storage, job_id: Uuid, state: JobState) -> AiJob {
    store
        .update_ai_job_status(status_update(job_id, state))
        .expect("update ai job status")
}

pub(super) fn job_ids(jobs: &[AiJob]) -> Vec<Uuid> {
    jobs.iter().map(|j| j.job_id).collect()
}

pub(super) fn all_jobs(h: &Harness) -> Vec<AiJob> {
    h.store()
        .list_ai_jobs(AiJobListFilter::default())
        .expect("list ai jobs")
}

pub(super) fn add_run(h: &Harness, job_id: Uuid, status: JobState) -> WorkflowRun {
    h.store()
        .create_workflow_run(job_id, status, None)
        .expect("create workflow run")
}

pub(super) fn add_exec(
    h: &Harness,
    run_id: Uuid,
    node_id: &str,
    sequence: i64,
) -> WorkflowNodeExecution {
    h.store()
        .create_workflow_node_execution(new_exec(run_id, node_id, sequence))
        .expect("create node execution")
}

pub(super) fn execs(h: &Harness, run_id: Uuid) -> Vec<WorkflowNodeExecution> {
    h.store()
        .list_workflow_node_executions(run_id)
        .expect("list node executions")
}

/// Asserts the provenance a write with `ctx` must leave.
#[track_caller]
pub(super) fn assert_provenance(p: &Provenance, ctx: &WriteContext) {
    assert_eq!(p.actor_kind, ctx.actor_kind, "actor kind");
    assert_eq!(p.actor_id, ctx.actor_id, "actor id");
    assert_eq!(p.job_id, ctx.job_id, "job id");
    assert_eq!(p.workflow_id, ctx.workflow_id, "workflow id");
    assert!(!p.edit_event_id.is_nil(), "edit event id must not be nil");
}

/// Sorts by `(created_at, id)`, the order of workspaces, documents and
/// canvases.
pub(super) fn sorted_by_created<T: Clone>(
    items: &[T],
    key: impl Fn(&T) -> (DateTime<Utc>, String),
) -> Vec<T> {
    let mut out = items.to_vec();
    out.sort_by_key(|item| key(item));
    out
}

/// Parents for the JSON channels: a document with block `json-block`, a
/// canvas, a job, a run and a node execution.
pub(super) struct Fixture {
    pub(super) doc: String,
    pub(super) canvas: String,
    pub(super) job: Uuid,
    pub(super) run: Uuid,
    pub(super) exec: Uuid,
}

pub(super) fn fixture(h: &Harness) -> Fixture {
    let doc = seed_document(h);
    add_block(h, &doc.id, 0, Some("json-block"));
    let canvas = seed_canvas_in(h, &doc.workspace_id, "json");
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let exec = add_exec(h, run.id, "json-node", 0);
    Fixture {
        doc: doc.id,
        canvas: canvas.id,
        job: job.job_id,
        run: run.id,
        exec: exec.id,
    }
}
