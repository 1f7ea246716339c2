//! The conformance cases. Each case is a plain function over a [`Harness`]
//! that panics on failure; it starts from a fresh, migrated, empty database
//! of the backend under test, so cases are independent and run in parallel.
//! Cases assert what `SPEC.md` ("Behaviour that must be identical on every
//! backend") and the [`Storage`] docs promise, never backend details.
//!
//! The list of every case is the `__hsk_cases!` macro at the end of the file.

use std::collections::BTreeSet;
use std::fmt::Debug;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::conformance::{Column, Harness};
use crate::*;

mod contract;
pub use contract::*;

// ---------------------------------------------------------------------------
// Helpers

/// A human write with an actor id.
fn human() -> WriteContext {
    WriteContext::human(Some("tester".into()))
}

/// An AI write that names both its job and its workflow.
fn ai_ctx() -> WriteContext {
    WriteContext::ai(
        Some("model-x".into()),
        Some(Uuid::new_v4()),
        Some(Uuid::new_v4()),
    )
}

/// Every AI context the guard must refuse: a job or a workflow id missing.
fn silent_ai_contexts() -> Vec<WriteContext> {
    let id = || Some(Uuid::new_v4());
    vec![
        WriteContext::ai(Some("model-x".into()), id(), None),
        WriteContext::ai(Some("model-x".into()), None, id()),
        WriteContext::ai(None, None, None),
    ]
}

/// Asserts that `result` failed with the error variant named `kind` and
/// returns the error.
#[track_caller]
fn expect_kind<T: Debug>(result: StorageResult<T>, kind: &str) -> StorageError {
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
fn expect_guard<T: Debug>(result: StorageResult<T>) {
    let err = expect_kind(result, "Guard");
    assert!(
        err.to_string().contains("HSK-403-SILENT-EDIT"),
        "guard error without HSK-403-SILENT-EDIT: {err}"
    );
}

/// Asserts that `result` failed with the variant named `kind`; `what` names
/// the attempt in the failure message.
#[track_caller]
fn assert_fails<T: Debug>(what: &str, result: StorageResult<T>, kind: &str) {
    assert!(
        matches!(&result, Err(err) if err.kind() == kind),
        "{what}: expected {kind}, got {result:?}"
    );
}

/// Text with a NUL byte, which no backend may store.
const NUL: &str = "a\0b";

/// A named change to an input, for tables of invalid inputs.
type Edit<T> = (&'static str, fn(&mut T));

/// `value` after `edit`: one input of a table of invalid inputs.
fn edited<T>(mut value: T, edit: impl FnOnce(&mut T)) -> T {
    edit(&mut value);
    value
}

fn new_doc(workspace_id: &str, title: &str) -> NewDocument {
    NewDocument {
        workspace_id: workspace_id.into(),
        title: title.into(),
    }
}

fn new_canvas(workspace_id: &str, title: &str) -> NewCanvas {
    NewCanvas {
        workspace_id: workspace_id.into(),
        title: title.into(),
    }
}

fn seed_workspace_as(h: &Harness, ctx: &WriteContext, name: &str) -> Workspace {
    h.store()
        .create_workspace(ctx, NewWorkspace { name: name.into() })
        .expect("create workspace")
}

fn seed_workspace_named(h: &Harness, name: &str) -> Workspace {
    seed_workspace_as(h, &human(), name)
}

fn seed_workspace(h: &Harness) -> Workspace {
    seed_workspace_named(h, "Workspace")
}

fn seed_document_as(h: &Harness, ctx: &WriteContext, workspace_id: &str, title: &str) -> Document {
    h.store()
        .create_document(ctx, new_doc(workspace_id, title))
        .expect("create document")
}

fn seed_document_in(h: &Harness, workspace_id: &str, title: &str) -> Document {
    seed_document_as(h, &human(), workspace_id, title)
}

/// A fresh workspace with one document in it; returns the document.
fn seed_document(h: &Harness) -> Document {
    let ws = seed_workspace(h);
    seed_document_in(h, &ws.id, "Document")
}

fn seed_canvas_as(h: &Harness, ctx: &WriteContext, workspace_id: &str, title: &str) -> Canvas {
    h.store()
        .create_canvas(ctx, new_canvas(workspace_id, title))
        .expect("create canvas")
}

fn seed_canvas_in(h: &Harness, workspace_id: &str, title: &str) -> Canvas {
    seed_canvas_as(h, &human(), workspace_id, title)
}

/// A fresh workspace with one canvas in it; returns the canvas.
fn seed_canvas(h: &Harness) -> Canvas {
    let ws = seed_workspace(h);
    seed_canvas_in(h, &ws.id, "Canvas")
}

/// A block for `doc` at `seq`, with the given id (generated when `None`).
fn new_block(doc: &str, seq: i64, id: Option<&str>) -> NewBlock {
    NewBlock {
        id: id.map(str::to_string),
        document_id: doc.into(),
        kind: "paragraph".into(),
        sequence: seq,
        raw_content: format!("block {seq}"),
        ..NewBlock::default()
    }
}

/// An update that changes only `raw_content`.
fn raw_update(text: &str) -> BlockUpdate {
    BlockUpdate {
        raw_content: Some(text.into()),
        ..BlockUpdate::default()
    }
}

fn add_block(h: &Harness, doc: &str, seq: i64, id: Option<&str>) -> Block {
    h.store()
        .create_block(&human(), new_block(doc, seq, id))
        .expect("create block")
}

fn node(id: &str, x: f64, y: f64) -> NewCanvasNode {
    NewCanvasNode {
        id: Some(id.into()),
        kind: "note".into(),
        position_x: x,
        position_y: y,
        data: None,
    }
}

fn edge(id: &str, from: &str, to: &str) -> NewCanvasEdge {
    NewCanvasEdge {
        id: Some(id.into()),
        from_node_id: from.into(),
        to_node_id: to.into(),
        kind: "link".into(),
    }
}

/// Gives `canvas` the nodes `n1`, `n2`, `n3` and the edges `e1` (n1→n2),
/// `e2` (n2→n3).
fn seed_graph(h: &Harness, canvas: &str) -> CanvasGraph {
    seed_graph_with(h, &human(), canvas)
}

fn ws_ref(id: &str) -> EntityRef {
    EntityRef {
        entity_id: id.into(),
        entity_kind: "workspace".into(),
    }
}

fn new_job(kind: JobKind, refs: Vec<EntityRef>) -> NewAiJob {
    let (profile_id, protocol_id) = contract::fitting_ids(kind);
    NewAiJob {
        job_kind: kind,
        profile_id: profile_id.into(),
        protocol_id: protocol_id.into(),
        entity_refs: refs,
        status_reason: "created".into(),
        ..NewAiJob::default()
    }
}

fn add_job(h: &Harness) -> AiJob {
    h.store()
        .create_ai_job(new_job(JobKind::DocEdit, Vec::new()))
        .expect("create ai job")
}

/// Creates `n` jobs of `kind`, a couple of milliseconds apart so that their
/// `created_at` differ.
fn add_jobs_apart(h: &Harness, n: usize, kind: JobKind, refs: &[EntityRef]) -> Vec<AiJob> {
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

fn pause() {
    std::thread::sleep(std::time::Duration::from_millis(2));
}

fn status_update(job_id: Uuid, state: JobState) -> JobStatusUpdate {
    JobStatusUpdate {
        job_id,
        state,
        error_message: None,
        status_reason: "x".into(),
        metrics: None,
        workflow_run_id: None,
        trace_id: None,
        job_outputs: None,
    }
}

fn set_state(store: &dyn Storage, job_id: Uuid, state: JobState) -> AiJob {
    store
        .update_ai_job_status(status_update(job_id, state))
        .expect("update ai job status")
}

fn job_ids(jobs: &[AiJob]) -> Vec<Uuid> {
    jobs.iter().map(|j| j.job_id).collect()
}

fn all_jobs(h: &Harness) -> Vec<AiJob> {
    h.store()
        .list_ai_jobs(AiJobListFilter::default())
        .expect("list ai jobs")
}

fn add_run(h: &Harness, job_id: Uuid, status: JobState) -> WorkflowRun {
    h.store()
        .create_workflow_run(job_id, status, None)
        .expect("create workflow run")
}

fn new_exec(run_id: Uuid, node_id: &str, sequence: i64) -> NewNodeExecution {
    NewNodeExecution {
        workflow_run_id: run_id,
        node_id: node_id.into(),
        node_type: "llm".into(),
        status: JobState::Running,
        sequence,
        input_payload: Some(json!({"node": node_id})),
        started_at: Utc::now(),
    }
}

fn add_exec(h: &Harness, run_id: Uuid, node_id: &str, sequence: i64) -> WorkflowNodeExecution {
    h.store()
        .create_workflow_node_execution(new_exec(run_id, node_id, sequence))
        .expect("create node execution")
}

fn execs(h: &Harness, run_id: Uuid) -> Vec<WorkflowNodeExecution> {
    h.store()
        .list_workflow_node_executions(run_id)
        .expect("list node executions")
}

/// Asserts the provenance a write with `ctx` must leave.
#[track_caller]
fn assert_provenance(p: &Provenance, ctx: &WriteContext) {
    assert_eq!(p.actor_kind, ctx.actor_kind, "actor kind");
    assert_eq!(p.actor_id, ctx.actor_id, "actor id");
    assert_eq!(p.job_id, ctx.job_id, "job id");
    assert_eq!(p.workflow_id, ctx.workflow_id, "workflow id");
    assert!(!p.edit_event_id.is_nil(), "edit event id must not be nil");
}

/// Sorts by `(created_at, id)`, the order of workspaces, documents and
/// canvases.
fn sorted_by_created<T: Clone>(items: &[T], key: impl Fn(&T) -> (DateTime<Utc>, String)) -> Vec<T> {
    let mut out = items.to_vec();
    out.sort_by_key(|item| key(item));
    out
}

/// The columns every migration creates, per table, in migration order; a
/// trailing `?` marks a nullable column (one without NOT NULL).
const EXPECTED_COLUMNS: &[(&str, &str)] = &[
    (
        "workspaces",
        "id name created_at updated_at last_actor_kind last_actor_id? last_job_id? \
         last_workflow_id? edit_event_id",
    ),
    (
        "documents",
        "id workspace_id title created_at updated_at last_actor_kind last_actor_id? \
         last_job_id? last_workflow_id? edit_event_id",
    ),
    (
        "blocks",
        "id document_id kind sequence raw_content display_content derived_content \
         sensitivity? exportable? created_at updated_at last_actor_kind last_actor_id? \
         last_job_id? last_workflow_id? edit_event_id",
    ),
    (
        "canvases",
        "id workspace_id title created_at updated_at last_actor_kind last_actor_id? \
         last_job_id? last_workflow_id? edit_event_id",
    ),
    (
        "canvas_nodes",
        "id canvas_id kind position_x position_y data created_at updated_at \
         last_actor_kind last_actor_id? last_job_id? last_workflow_id? edit_event_id",
    ),
    (
        "canvas_edges",
        "id canvas_id from_node_id to_node_id kind created_at updated_at last_actor_kind \
         last_actor_id? last_job_id? last_workflow_id? edit_event_id",
    ),
    (
        "ai_jobs",
        "id trace_id workflow_run_id? job_kind status status_reason error_message? \
         protocol_id profile_id capability_profile_id access_mode safety_mode \
         planned_operations metrics job_inputs? job_outputs? pinned created_at updated_at \
         entity_refs",
    ),
    (
        "ai_job_entity_refs",
        "job_id position entity_id entity_kind",
    ),
    (
        "workflow_runs",
        "id job_id status error_message? last_heartbeat created_at updated_at",
    ),
    (
        "workflow_node_executions",
        "id workflow_run_id node_id node_type status sequence input_payload? \
         output_payload? error_message? started_at finished_at? created_at updated_at",
    ),
];

/// [`EXPECTED_COLUMNS`] as sorted `Column`s, as `Harness::columns` returns.
fn expected_columns() -> Vec<Column> {
    let mut columns: Vec<Column> = EXPECTED_COLUMNS
        .iter()
        .flat_map(|(table, spec)| {
            spec.split_whitespace().map(move |c| Column {
                table: table.to_string(),
                column: c.trim_end_matches('?').to_string(),
                nullable: c.ends_with('?'),
            })
        })
        .collect();
    columns.sort();
    columns
}

const MIGRATION_VERSIONS: [&str; 3] = ["20261124000001", "20261124000002", "20261124000003"];

#[track_caller]
fn assert_all_applied(h: &Harness) {
    let status = h.store().migration_status().expect("migration status");
    assert_eq!(status.backend, h.backend());
    assert_eq!(status.applied, MIGRATION_VERSIONS.to_vec());
    assert!(status.pending.is_empty(), "pending: {:?}", status.pending);
}

// ---------------------------------------------------------------------------
// Health, migrations, schema

pub fn health_backend_and_ping(h: &Harness) {
    let store = h.store();
    assert_eq!(store.backend(), h.backend());
    assert!(matches!(
        store.backend(),
        Backend::Sqlite | Backend::Postgres
    ));
    store.ping().expect("ping");
    assert_eq!(h.shared_store().backend(), h.backend());
}

pub fn migrations_status_all_applied(h: &Harness) {
    assert_all_applied(h);
}

pub fn migrations_rerun_is_noop(h: &Harness) {
    let ws = seed_workspace(h);
    let doc = seed_document_in(h, &ws.id, "Kept");
    let block = add_block(h, &doc.id, 1, Some("kept-block"));
    let before = h.store().migration_status().expect("status before");
    h.store().run_migrations().expect("run migrations again");
    h.store().run_migrations().expect("and once more");
    assert_eq!(h.store().migration_status().expect("status after"), before);
    assert_all_applied(h);
    assert_eq!(h.store().get_workspace(&ws.id).expect("get ws"), Some(ws));
    assert_eq!(h.store().get_document(&doc.id).expect("get doc"), doc);
    assert_eq!(h.store().get_blocks(&doc.id).expect("blocks"), vec![block]);
}

pub fn migrations_revert_all_then_up_again(h: &Harness) {
    let columns_before = h.columns().expect("columns");
    assert!(!columns_before.is_empty());
    assert_eq!(h.revert_all_migrations().expect("revert all"), 3);
    assert!(h.columns().expect("columns after revert").is_empty());
    let status = h.store().migration_status().expect("status after revert");
    assert!(status.applied.is_empty(), "applied: {:?}", status.applied);
    assert_eq!(status.pending, MIGRATION_VERSIONS.to_vec());
    h.store().run_migrations().expect("migrate up again");
    assert_all_applied(h);
    assert_eq!(h.columns().expect("columns after up"), columns_before);
    let doc = seed_document(h);
    add_block(h, &doc.id, 0, None);
    assert_eq!(h.store().get_blocks(&doc.id).expect("blocks").len(), 1);
}

/// Jobs whose refs exercise the `entity_refs` column: several in order,
/// unicode, empty strings, 1 KiB values, and none at all.
fn seed_ref_jobs(h: &Harness) -> Vec<AiJob> {
    let long = "é".repeat(512);
    [
        vec![ws_ref("ws-a"), ws_ref("ws-b"), ws_ref("ws-a")],
        vec![
            EntityRef {
                entity_id: long.clone(),
                entity_kind: "document 📄".into(),
            },
            EntityRef {
                entity_id: String::new(),
                entity_kind: String::new(),
            },
            ws_ref("ws-a"),
        ],
        vec![ws_ref(&long)],
        vec![],
    ]
    .into_iter()
    .map(|refs| {
        h.store()
            .create_ai_job(new_job(JobKind::DocEdit, refs))
            .expect("create ai job")
    })
    .collect()
}

fn jobs_in_workspace(h: &Harness, wsid: &str) -> Vec<Uuid> {
    let mut ids = list_jobs(
        h,
        AiJobListFilter {
            wsid: Some(wsid.into()),
            ..AiJobListFilter::default()
        },
    );
    ids.sort();
    ids
}

fn sorted_ids(jobs: &[&AiJob]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = jobs.iter().map(|j| j.job_id).collect();
    ids.sort();
    ids
}

/// Reverting the `entity_refs` migration with jobs present and applying it
/// again rebuilds every job's refs, in order, from `ai_job_entity_refs`.
pub fn migrations_entity_refs_revert_and_reapply_with_jobs(h: &Harness) {
    let jobs = seed_ref_jobs(h);
    h.revert_last_migration()
        .expect("revert the entity_refs migration");
    let columns = h.columns().expect("columns after revert");
    assert!(!columns
        .iter()
        .any(|c| c.table == "ai_jobs" && c.column == "entity_refs"));
    h.store().run_migrations().expect("migrate up again");
    assert_all_applied(h);
    for job in &jobs {
        assert_eq!(&job_by(h, job.job_id), job, "job read back after redo");
    }
    let listed = h
        .store()
        .list_ai_jobs(AiJobListFilter::default())
        .expect("list");
    assert_eq!(listed.len(), jobs.len());
    for job in listed {
        assert!(jobs.contains(&job), "listed job differs: {job:?}");
    }
    assert_eq!(
        jobs_in_workspace(h, "ws-a"),
        sorted_ids(&[&jobs[0], &jobs[1]])
    );
    // All of them, with jobs present, and back up again.
    assert_eq!(h.revert_all_migrations().expect("revert all"), 3);
    h.store().run_migrations().expect("migrate up from nothing");
    assert_all_applied(h);
    assert!(list_jobs(h, AiJobListFilter::default()).is_empty());
}

/// The trigger indexes jobs created after the migration, including after a
/// revert and reapply, so the `wsid` filter finds old and new jobs alike,
/// each once.
pub fn jobs_wsid_filter_finds_jobs_created_after_migration(h: &Harness) {
    let before = seed_ref_jobs(h);
    assert_eq!(
        jobs_in_workspace(h, "ws-a"),
        sorted_ids(&[&before[0], &before[1]])
    );
    assert_eq!(jobs_in_workspace(h, "ws-b"), sorted_ids(&[&before[0]]));
    assert_eq!(
        jobs_in_workspace(h, &"é".repeat(512)),
        sorted_ids(&[&before[2]])
    );
    assert!(jobs_in_workspace(h, "").is_empty(), "kind is not workspace");
    h.revert_last_migration()
        .expect("revert the entity_refs migration");
    h.store().run_migrations().expect("migrate up again");
    let after = seed_ref_jobs(h);
    assert_eq!(
        jobs_in_workspace(h, "ws-a"),
        sorted_ids(&[&before[0], &before[1], &after[0], &after[1]])
    );
    assert_eq!(
        jobs_in_workspace(h, "ws-b"),
        sorted_ids(&[&before[0], &after[0]])
    );
    for job in before.iter().chain(&after) {
        assert_eq!(&job_by(h, job.job_id), job);
    }
    let deleted = h
        .execute_sql(&format!(
            "DELETE FROM ai_jobs WHERE id = '{}'",
            after[0].job_id
        ))
        .expect("delete a job");
    assert_eq!(deleted, 1);
    assert_eq!(
        jobs_in_workspace(h, "ws-b"),
        sorted_ids(&[&before[0]]),
        "deleting a job drops its index rows"
    );
}

/// Columns and nullability, then keys, indexes (with order and uniqueness),
/// foreign keys with their actions, and triggers: the same on every backend.
pub fn schema_parity_columns_and_nullability(h: &Harness) {
    let actual = h.columns().expect("columns");
    let expected = expected_columns();
    let tables: BTreeSet<&str> = actual.iter().map(|c| c.table.as_str()).collect();
    assert_eq!(tables.len(), 10, "tables: {tables:?}");
    for column in &expected {
        assert!(actual.contains(column), "missing or different: {column:?}");
    }
    for column in &actual {
        assert!(expected.contains(column), "unexpected: {column:?}");
    }
    assert_eq!(actual, expected);
    contract::assert_keys_indexes_and_triggers_portable(h);
}

pub fn reopen_sees_same_data(h: &Harness) {
    let other = h.reopen().expect("reopen");
    assert_eq!(other.backend(), h.backend());
    let ws = seed_workspace_named(h, "through the first");
    assert_eq!(other.get_workspace(&ws.id).expect("get"), Some(ws.clone()));
    let doc = other
        .create_document(&human(), new_doc(&ws.id, "through the second"))
        .expect("create through second store");
    assert_eq!(h.store().get_document(&doc.id).expect("get doc"), doc);
    assert_eq!(other.list_workspaces().expect("list"), vec![ws]);
}

// ---------------------------------------------------------------------------
// Workspaces

pub fn workspace_create_get_list_ordered(h: &Harness) {
    let names = ["Zeta", "alpha", "Mid", "émoji 🎉"];
    let created: Vec<Workspace> = names
        .iter()
        .map(|name| {
            let ws = seed_workspace_named(h, name);
            assert_eq!(ws.name, *name);
            assert!(Uuid::parse_str(&ws.id).is_ok(), "generated id: {}", ws.id);
            assert_eq!(ws.created_at, ws.updated_at);
            assert_provenance(&ws.provenance, &human());
            assert_eq!(
                h.store().get_workspace(&ws.id).expect("get"),
                Some(ws.clone())
            );
            ws
        })
        .collect();
    let ids: BTreeSet<&str> = created.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids.len(), names.len(), "ids must be distinct");
    let expected = sorted_by_created(&created, |w| (w.created_at, w.id.clone()));
    assert_eq!(h.store().list_workspaces().expect("list"), expected);
}

pub fn workspace_get_missing_is_none(h: &Harness) {
    assert_eq!(
        h.store().get_workspace("no-such-workspace").expect("get"),
        None
    );
    let ws = seed_workspace(h);
    assert_eq!(
        h.store()
            .get_workspace(&Uuid::new_v4().to_string())
            .expect("get"),
        None
    );
    assert!(h.store().get_workspace(&ws.id).expect("get").is_some());
}

pub fn workspace_delete_missing_is_not_found(h: &Harness) {
    expect_kind(
        h.store().delete_workspace(&human(), "no-such-workspace"),
        "NotFound",
    );
    let ws = seed_workspace(h);
    h.store()
        .delete_workspace(&human(), &ws.id)
        .expect("delete");
    assert_eq!(h.store().get_workspace(&ws.id).expect("get"), None);
    expect_kind(h.store().delete_workspace(&human(), &ws.id), "NotFound");
    assert!(h.store().list_workspaces().expect("list").is_empty());
}

pub fn workspace_blank_name_is_validation(h: &Harness) {
    for name in ["", " ", "\t\n  "] {
        let result = h
            .store()
            .create_workspace(&human(), NewWorkspace { name: name.into() });
        expect_kind(result, "Validation");
    }
    assert!(h.store().list_workspaces().expect("list").is_empty());
}

// ---------------------------------------------------------------------------
// Documents

pub fn document_create_get_list_ordered(h: &Harness) {
    let ws = seed_workspace(h);
    let other_ws = seed_workspace_named(h, "Other");
    let other_doc = seed_document_in(h, &other_ws.id, "Elsewhere");
    let titles = ["Beta", "alpha", "Ünïcode ✓"];
    let created: Vec<Document> = titles
        .iter()
        .map(|title| {
            let doc = seed_document_in(h, &ws.id, title);
            assert_eq!(doc.title, *title);
            assert_eq!(doc.workspace_id, ws.id);
            assert!(Uuid::parse_str(&doc.id).is_ok(), "generated id: {}", doc.id);
            assert_provenance(&doc.provenance, &human());
            assert_eq!(h.store().get_document(&doc.id).expect("get"), doc);
            doc
        })
        .collect();
    let expected = sorted_by_created(&created, |d| (d.created_at, d.id.clone()));
    assert_eq!(h.store().list_documents(&ws.id).expect("list"), expected);
    assert_eq!(
        h.store().list_documents(&other_ws.id).expect("list other"),
        vec![other_doc]
    );
    assert!(h
        .store()
        .list_documents("no-such-ws")
        .expect("list none")
        .is_empty());
}

pub fn document_get_missing_is_not_found(h: &Harness) {
    expect_kind(h.store().get_document("no-such-document"), "NotFound");
    let doc = seed_document(h);
    expect_kind(
        h.store().get_document(&Uuid::new_v4().to_string()),
        "NotFound",
    );
    h.store()
        .delete_document(&human(), &doc.id)
        .expect("delete");
    expect_kind(h.store().get_document(&doc.id), "NotFound");
    expect_kind(h.store().delete_document(&human(), &doc.id), "NotFound");
}

pub fn document_missing_workspace_is_validation(h: &Harness) {
    let ws = seed_workspace(h);
    for workspace_id in ["no-such-workspace", ""] {
        let result = h
            .store()
            .create_document(&human(), new_doc(workspace_id, "Orphan"));
        expect_kind(result, "Validation");
        assert!(h
            .store()
            .list_documents(workspace_id)
            .expect("list")
            .is_empty());
    }
    assert!(h.store().list_documents(&ws.id).expect("list").is_empty());
}

pub fn document_blank_title_is_validation(h: &Harness) {
    let ws = seed_workspace(h);
    for title in ["", "   ", "\n\t"] {
        let result = h.store().create_document(&human(), new_doc(&ws.id, title));
        expect_kind(result, "Validation");
    }
    assert!(h.store().list_documents(&ws.id).expect("list").is_empty());
}

pub fn document_delete_removes_blocks(h: &Harness) {
    let doc = seed_document(h);
    let keep = seed_document_in(h, &doc.workspace_id, "Keep");
    let gone: Vec<Block> = (0..3).map(|i| add_block(h, &doc.id, i, None)).collect();
    let kept = add_block(h, &keep.id, 0, Some("kept"));
    h.store()
        .delete_document(&human(), &doc.id)
        .expect("delete document");
    expect_kind(h.store().get_document(&doc.id), "NotFound");
    assert!(blocks_of(h, &doc.id).is_empty());
    for block in &gone {
        expect_kind(h.store().get_block(&block.id), "NotFound");
    }
    assert_eq!(blocks_of(h, &keep.id), vec![kept]);
    assert_eq!(
        h.store().list_documents(&doc.workspace_id).expect("list"),
        vec![keep]
    );
}

// ---------------------------------------------------------------------------
// Blocks

pub fn block_create_defaults(h: &Harness) {
    let doc = seed_document(h);
    let block = add_block(h, &doc.id, 7, None);
    let id = Uuid::parse_str(&block.id).expect("generated block id is a UUID");
    assert_eq!(id.get_version_num(), 7, "generated id must be a UUID v7");
    assert_eq!(block.document_id, doc.id);
    assert_eq!(block.sequence, 7);
    assert_eq!(block.display_content, block.raw_content);
    assert_eq!(block.derived_content, json!({}));
    assert_eq!(block.exportable, Some(true));
    assert_eq!(block.sensitivity, None);
    assert_eq!(block.created_at, block.updated_at);
    assert_provenance(&block.provenance, &human());
    assert_eq!(h.store().get_block(&block.id).expect("get"), block);
    let second = add_block(h, &doc.id, 7, None);
    assert_ne!(second.id, block.id, "generated ids must differ");
    assert_ne!(
        second.provenance.edit_event_id,
        block.provenance.edit_event_id
    );
}

/// A block with every optional field given.
fn full_block(doc: &str, id: &str) -> NewBlock {
    NewBlock {
        id: Some(id.into()),
        document_id: doc.into(),
        kind: "heading".into(),
        sequence: 42,
        raw_content: "# Raw".into(),
        display_content: Some("Shown".into()),
        derived_content: Some(json!({"links": ["a", "b"], "level": 1, "meta": {"x": null}})),
        sensitivity: Some("high".into()),
        exportable: Some(false),
    }
}

pub fn block_create_keeps_given_values(h: &Harness) {
    let doc = seed_document(h);
    let given = full_block(&doc.id, "given-id");
    let block = h
        .store()
        .create_block(&human(), given.clone())
        .expect("create");
    assert_eq!(Some(block.id.clone()), given.id);
    assert_eq!(block.kind, given.kind);
    assert_eq!(block.sequence, given.sequence);
    assert_eq!(block.raw_content, given.raw_content);
    assert_eq!(Some(block.display_content.clone()), given.display_content);
    assert_eq!(Some(block.derived_content.clone()), given.derived_content);
    assert_eq!(block.sensitivity, given.sensitivity);
    assert_eq!(block.exportable, given.exportable);
    assert_eq!(h.store().get_block("given-id").expect("get"), block);
    assert_eq!(blocks_of(h, &doc.id), vec![block]);
}

pub fn block_get_blocks_ordered_by_sequence_then_id(h: &Harness) {
    let doc = seed_document(h);
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    add_block(h, &other.id, 0, Some("other-doc-block"));
    let specs: [(i64, &str); 7] = [
        (2, "b"),
        (1, "z"),
        (2, "a"),
        (-5, "m"),
        (1, "c"),
        (10, "a2"),
        (2, "B"),
    ];
    for (seq, id) in specs {
        add_block(h, &doc.id, seq, Some(id));
    }
    let mut expected: Vec<(i64, String)> = specs.iter().map(|(s, i)| (*s, i.to_string())).collect();
    expected.sort();
    let actual: Vec<(i64, String)> = blocks_of(h, &doc.id)
        .into_iter()
        .map(|b| (b.sequence, b.id))
        .collect();
    assert_eq!(actual, expected);
}

pub fn block_update_changes_fields_and_provenance(h: &Harness) {
    let doc = seed_document(h);
    let before = h
        .store()
        .create_block(&human(), full_block(&doc.id, "upd"))
        .expect("create");
    pause();
    let ctx = ai_ctx();
    let update = BlockUpdate {
        raw_content: Some("new raw".into()),
        sequence: Some(-3),
        derived_content: Some(json!({"rewritten": true})),
        ..BlockUpdate::default()
    };
    let after = h.store().update_block(&ctx, "upd", update).expect("update");
    assert_eq!(after.raw_content, "new raw");
    assert_eq!(after.sequence, -3);
    assert_eq!(after.derived_content, json!({"rewritten": true}));
    assert_eq!(after.kind, before.kind, "kind untouched");
    assert_eq!(
        after.display_content, before.display_content,
        "display untouched"
    );
    assert_eq!(
        after.sensitivity, before.sensitivity,
        "sensitivity untouched"
    );
    assert_eq!(after.exportable, before.exportable, "exportable untouched");
    assert_eq!(after.created_at, before.created_at);
    assert!(after.updated_at >= before.updated_at);
    assert_provenance(&after.provenance, &ctx);
    assert_ne!(
        after.provenance.edit_event_id,
        before.provenance.edit_event_id
    );
    assert_eq!(h.store().get_block("upd").expect("get"), after);
    let second = h
        .store()
        .update_block(
            &human(),
            "upd",
            BlockUpdate {
                kind: Some("quote".into()),
                display_content: Some("shown again".into()),
                sensitivity: Some("low".into()),
                exportable: Some(true),
                ..BlockUpdate::default()
            },
        )
        .expect("second update");
    assert_eq!(
        (second.kind.as_str(), second.display_content.as_str()),
        ("quote", "shown again")
    );
    assert_eq!(
        (second.sensitivity.as_deref(), second.exportable),
        (Some("low"), Some(true))
    );
    assert_eq!(second.raw_content, "new raw", "earlier update kept");
    assert_eq!(second.sequence, -3);
    assert_provenance(&second.provenance, &human());
    assert_ne!(
        second.provenance.edit_event_id,
        after.provenance.edit_event_id
    );
    assert_eq!(h.store().get_block("upd").expect("get"), second);
}

pub fn block_update_missing_is_not_found(h: &Harness) {
    let doc = seed_document(h);
    let block = add_block(h, &doc.id, 1, Some("present"));
    let update = BlockUpdate {
        raw_content: Some("x".into()),
        ..BlockUpdate::default()
    };
    expect_kind(
        h.store().update_block(&human(), "missing", update),
        "NotFound",
    );
    expect_kind(
        h.store()
            .update_block(&human(), "missing", BlockUpdate::default()),
        "NotFound",
    );
    expect_kind(h.store().get_block("missing"), "NotFound");
    assert_eq!(blocks_of(h, &doc.id), vec![block]);
}

pub fn block_delete_and_delete_missing(h: &Harness) {
    let doc = seed_document(h);
    let gone = add_block(h, &doc.id, 1, Some("gone"));
    let kept = add_block(h, &doc.id, 2, Some("kept"));
    h.store().delete_block(&human(), &gone.id).expect("delete");
    expect_kind(h.store().get_block(&gone.id), "NotFound");
    assert_eq!(blocks_of(h, &doc.id), vec![kept]);
    expect_kind(h.store().delete_block(&human(), &gone.id), "NotFound");
    expect_kind(
        h.store().delete_block(&human(), "never-existed"),
        "NotFound",
    );
}

pub fn block_duplicate_id_is_conflict(h: &Harness) {
    let doc = seed_document(h);
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    let original = add_block(h, &doc.id, 1, Some("dup"));
    for target in [&doc.id, &other.id] {
        let mut again = new_block(target, 9, Some("dup"));
        again.raw_content = "second".into();
        expect_kind(h.store().create_block(&human(), again), "Conflict");
    }
    assert_eq!(h.store().get_block("dup").expect("get"), original);
    assert_eq!(blocks_of(h, &doc.id), vec![original]);
    assert!(blocks_of(h, &other.id).is_empty());
}

pub fn block_missing_document_is_validation(h: &Harness) {
    let doc = seed_document(h);
    for document_id in ["no-such-document", ""] {
        let result = h
            .store()
            .create_block(&human(), new_block(document_id, 1, Some("orphan")));
        expect_kind(result, "Validation");
        expect_kind(h.store().get_block("orphan"), "NotFound");
    }
    assert!(blocks_of(h, &doc.id).is_empty());
}

// ---------------------------------------------------------------------------
// replace_blocks

fn blocks_of(h: &Harness, doc: &str) -> Vec<Block> {
    h.store().get_blocks(doc).expect("get blocks")
}

/// Asserts that `replace_blocks` with `items` fails with `kind` and leaves
/// the document's blocks exactly as they were.
#[track_caller]
fn assert_replace_fails_unchanged(
    h: &Harness,
    doc: &str,
    what: &str,
    items: Vec<NewBlock>,
    kind: &str,
) {
    let before = blocks_of(h, doc);
    assert_fails(what, h.store().replace_blocks(&human(), doc, items), kind);
    assert_eq!(
        blocks_of(h, doc),
        before,
        "{what}: a failed replace_blocks changed blocks"
    );
}

/// A document holding the blocks `old-1`, `old-2`, `old-3`.
fn seed_document_with_blocks(h: &Harness) -> Document {
    let doc = seed_document(h);
    for (seq, id) in [(1, "old-1"), (2, "old-2"), (3, "old-3")] {
        add_block(h, &doc.id, seq, Some(id));
    }
    doc
}

pub fn replace_blocks_replaces_all(h: &Harness) {
    let doc = seed_document_with_blocks(h);
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    let untouched = add_block(h, &other.id, 1, Some("other-1"));
    let old = blocks_of(h, &doc.id);
    let ctx = ai_ctx();
    let items = vec![
        new_block(&doc.id, 5, Some("new-b")),
        new_block("ignored-document-id", 0, None),
        full_block(&doc.id, "new-a"),
        new_block(&doc.id, 5, Some("new-a2")),
        new_block(&doc.id, 2, Some("old-2")),
    ];
    let returned = h
        .store()
        .replace_blocks(&ctx, &doc.id, items)
        .expect("replace blocks");
    assert_eq!(returned.len(), 5);
    let mut order: Vec<(i64, String)> = returned
        .iter()
        .map(|b| (b.sequence, b.id.clone()))
        .collect();
    order.sort();
    let got: Vec<(i64, String)> = returned
        .iter()
        .map(|b| (b.sequence, b.id.clone()))
        .collect();
    assert_eq!(got, order, "returned blocks ordered by sequence then id");
    for block in &returned {
        assert_eq!(block.document_id, doc.id);
        assert_provenance(&block.provenance, &ctx);
        assert!(old
            .iter()
            .all(|o| o.provenance.edit_event_id != block.provenance.edit_event_id));
    }
    assert_eq!(blocks_of(h, &doc.id), returned);
    for id in ["old-1", "old-3"] {
        expect_kind(h.store().get_block(id), "NotFound");
    }
    assert_eq!(blocks_of(h, &other.id), vec![untouched]);
    let emptied = h
        .store()
        .replace_blocks(&human(), &doc.id, Vec::new())
        .expect("replace with nothing");
    assert!(emptied.is_empty());
    assert!(blocks_of(h, &doc.id).is_empty());
}

pub fn replace_blocks_duplicate_id_changes_nothing(h: &Harness) {
    let doc = seed_document_with_blocks(h);
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    let foreign = add_block(h, &other.id, 1, Some("foreign"));
    let twice = vec![
        new_block(&doc.id, 1, Some("x")),
        new_block(&doc.id, 2, Some("x")),
    ];
    assert_replace_fails_unchanged(h, &doc.id, "same id twice", twice, "Conflict");
    let clash = vec![
        new_block(&doc.id, 1, Some("fresh")),
        new_block(&doc.id, 2, Some("foreign")),
    ];
    assert_replace_fails_unchanged(h, &doc.id, "id of another document", clash, "Conflict");
    assert_eq!(blocks_of(h, &other.id), vec![foreign]);
    expect_kind(h.store().get_block("fresh"), "NotFound");
    assert_eq!(blocks_of(h, &doc.id).len(), 3);
}

/// Blocks each of which a write must refuse with `Validation`.
/// Large enough to need several multi-row INSERTs on every backend
/// (SQLite binds at most 32,766 parameters per statement, PostgreSQL 65,535).
const BULK_ROWS: usize = 9_000;

/// A replace of thousands of blocks is written whole, in order, and a
/// failure in its last chunk leaves the old blocks untouched.
pub fn replace_blocks_bulk_spans_statement_chunks(h: &Harness) {
    let doc = seed_document(h);
    let items = |tag: &str| -> Vec<NewBlock> {
        (0..BULK_ROWS)
            .map(|i| new_block(&doc.id, i as i64, Some(&format!("{tag}-{i:05}"))))
            .collect()
    };
    let written = h
        .store()
        .replace_blocks(&human(), &doc.id, items("first"))
        .expect("replace with many blocks");
    assert_eq!(written.len(), BULK_ROWS);
    assert_eq!(blocks_of(h, &doc.id), written);
    // The last block clashes with a block of another document: the whole
    // replace fails after earlier chunks were inserted, and rolls back.
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    add_block(h, &other.id, 0, Some("clash"));
    let mut second = items("second");
    second.last_mut().expect("non-empty").id = Some("clash".into());
    expect_kind(
        h.store().replace_blocks(&human(), &doc.id, second),
        "Conflict",
    );
    assert_eq!(blocks_of(h, &doc.id), written, "nothing changed");
}

/// A graph of thousands of nodes and edges round-trips whole.
pub fn canvas_update_graph_bulk_spans_statement_chunks(h: &Harness) {
    let canvas = seed_canvas(h);
    let nodes: Vec<NewCanvasNode> = (0..BULK_ROWS)
        .map(|i| node(&format!("n{i:05}"), i as f64, -(i as f64)))
        .collect();
    let edges: Vec<NewCanvasEdge> = (1..BULK_ROWS)
        .map(|i| {
            edge(
                &format!("e{i:05}"),
                &format!("n{:05}", i - 1),
                &format!("n{i:05}"),
            )
        })
        .collect();
    let written = h
        .store()
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("large graph");
    assert_eq!(written.nodes.len(), BULK_ROWS);
    assert_eq!(written.edges.len(), BULK_ROWS - 1);
    assert_eq!(graph_of(h, &canvas.id), written);
}

fn invalid_blocks(doc: &str) -> Vec<(&'static str, NewBlock)> {
    let edits: [Edit<NewBlock>; 9] = [
        ("NUL in raw_content", |b| b.raw_content = NUL.into()),
        ("NUL in display_content", |b| {
            b.display_content = Some(NUL.into())
        }),
        ("NUL in kind", |b| b.kind = NUL.into()),
        ("NUL in sensitivity", |b| b.sensitivity = Some(NUL.into())),
        ("NUL in id", |b| b.id = Some(NUL.into())),
        ("empty id", |b| b.id = Some(String::new())),
        ("NUL in JSON string", |b| {
            b.derived_content = Some(json!({"k": NUL}))
        }),
        ("NUL in JSON key", |b| {
            b.derived_content = Some(json!({NUL: 1}))
        }),
        ("JSON too deep", |b| {
            b.derived_content = Some(deep_json(101))
        }),
    ];
    edits
        .into_iter()
        .map(|(what, edit)| (what, edited(new_block(doc, 1, Some("bad")), edit)))
        .collect()
}

/// `depth` nested arrays around a number.
fn deep_json(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| Value::Array(vec![inner]))
}

pub fn replace_blocks_invalid_item_changes_nothing(h: &Harness) {
    let doc = seed_document_with_blocks(h);
    for (what, bad) in invalid_blocks(&doc.id) {
        let items = vec![new_block(&doc.id, 0, Some("good")), bad];
        assert_replace_fails_unchanged(h, &doc.id, what, items, "Validation");
    }
    expect_kind(h.store().get_block("good"), "NotFound");
}

pub fn replace_blocks_missing_document_is_not_found(h: &Harness) {
    let doc = seed_document_with_blocks(h);
    let before = blocks_of(h, &doc.id);
    let items = vec![new_block("no-such-document", 1, Some("orphan"))];
    expect_kind(
        h.store()
            .replace_blocks(&human(), "no-such-document", items),
        "NotFound",
    );
    expect_kind(
        h.store()
            .replace_blocks(&human(), "no-such-document", Vec::new()),
        "NotFound",
    );
    expect_kind(h.store().get_block("orphan"), "NotFound");
    assert_eq!(blocks_of(h, &doc.id), before);
}

// ---------------------------------------------------------------------------
// Canvases

fn graph_of(h: &Harness, canvas: &str) -> CanvasGraph {
    h.store()
        .get_canvas_with_graph(canvas)
        .expect("get canvas graph")
}

/// Asserts that `update_canvas_graph` fails with `kind` and leaves the
/// canvas's graph exactly as it was.
#[track_caller]
fn assert_graph_update_fails_unchanged(
    h: &Harness,
    canvas: &str,
    what: &str,
    nodes: Vec<NewCanvasNode>,
    edges: Vec<NewCanvasEdge>,
    kind: &str,
) {
    let before = graph_of(h, canvas);
    let result = h
        .store()
        .update_canvas_graph(&human(), canvas, nodes, edges);
    assert_fails(what, result, kind);
    assert_eq!(
        graph_of(h, canvas),
        before,
        "{what}: a failed update changed the graph"
    );
}

/// Asserts that one write stamped the canvas and every node and edge alike.
#[track_caller]
fn assert_graph_stamped_once(graph: &CanvasGraph) {
    let stamp = &graph.canvas.provenance;
    assert!(
        graph.nodes.iter().all(|n| &n.provenance == stamp),
        "node provenance"
    );
    assert!(
        graph.edges.iter().all(|e| &e.provenance == stamp),
        "edge provenance"
    );
}

fn node_ids(graph: &CanvasGraph) -> Vec<&str> {
    graph.nodes.iter().map(|n| n.id.as_str()).collect()
}

fn edge_ids(graph: &CanvasGraph) -> Vec<&str> {
    graph.edges.iter().map(|e| e.id.as_str()).collect()
}

pub fn canvas_create_list_and_get_graph(h: &Harness) {
    let ws = seed_workspace(h);
    let other_ws = seed_workspace_named(h, "Other");
    seed_canvas_in(h, &other_ws.id, "Elsewhere");
    let created: Vec<Canvas> = ["Board", "alpha board"]
        .iter()
        .map(|title| {
            let canvas = seed_canvas_in(h, &ws.id, title);
            assert_eq!(
                (canvas.title.as_str(), canvas.workspace_id.as_str()),
                (*title, ws.id.as_str())
            );
            assert!(
                Uuid::parse_str(&canvas.id).is_ok(),
                "generated id: {}",
                canvas.id
            );
            assert_provenance(&canvas.provenance, &human());
            let graph = graph_of(h, &canvas.id);
            assert_eq!(graph.canvas, canvas);
            assert!(graph.nodes.is_empty() && graph.edges.is_empty());
            canvas
        })
        .collect();
    let expected = sorted_by_created(&created, |c| (c.created_at, c.id.clone()));
    assert_eq!(h.store().list_canvases(&ws.id).expect("list"), expected);
    assert!(h
        .store()
        .list_canvases("no-such-ws")
        .expect("list none")
        .is_empty());
    let canvas = &created[0];
    let graph = seed_graph(h, &canvas.id);
    assert_eq!(graph_of(h, &canvas.id), graph);
    assert_eq!(node_ids(&graph), ["n1", "n2", "n3"]);
    assert_eq!(edge_ids(&graph), ["e1", "e2"]);
    let n3 = &graph.nodes[2];
    assert_eq!(
        (n3.kind.as_str(), n3.position_x, n3.position_y),
        ("note", -3.5, 4.25)
    );
    assert_eq!(n3.data, json!({}), "node data defaults to {{}}");
    assert!(graph.nodes.iter().all(|n| n.canvas_id == canvas.id));
    let e1 = &graph.edges[0];
    assert_eq!(
        (
            e1.from_node_id.as_str(),
            e1.to_node_id.as_str(),
            e1.kind.as_str()
        ),
        ("n1", "n2", "link")
    );
    assert!(graph.edges.iter().all(|e| e.canvas_id == canvas.id));
}

pub fn canvas_update_graph_replaces_graph(h: &Harness) {
    let canvas = seed_canvas(h);
    let old = seed_graph(h, &canvas.id);
    let ctx = ai_ctx();
    let mut with_data = node("n9", 10.0, -10.0);
    with_data.data = Some(json!({"label": "nine", "tags": [1, 2]}));
    let generated = NewCanvasNode {
        id: None,
        ..node("unused", 0.5, 0.5)
    };
    let nodes = vec![with_data, node("n1", 7.0, 8.0), generated];
    let edges = vec![
        edge("e7", "n1", "n1"),
        NewCanvasEdge {
            id: None,
            ..edge("unused", "n9", "n1")
        },
    ];
    let graph = h
        .store()
        .update_canvas_graph(&ctx, &canvas.id, nodes, edges)
        .expect("update graph");
    assert_eq!(graph_of(h, &canvas.id), graph);
    let mut sorted_nodes = node_ids(&graph);
    sorted_nodes.sort_unstable();
    assert_eq!(node_ids(&graph), sorted_nodes, "nodes ordered by id");
    let mut sorted_edges = edge_ids(&graph);
    sorted_edges.sort_unstable();
    assert_eq!(edge_ids(&graph), sorted_edges, "edges ordered by id");
    assert_eq!((graph.nodes.len(), graph.edges.len()), (3, 2));
    assert!(!node_ids(&graph).contains(&"n2") && !node_ids(&graph).contains(&"n3"));
    assert!(!edge_ids(&graph).contains(&"e1") && !edge_ids(&graph).contains(&"e2"));
    let generated_ids: Vec<&str> = node_ids(&graph)
        .into_iter()
        .chain(edge_ids(&graph))
        .filter(|id| !["n1", "n9", "e7"].contains(id))
        .collect();
    assert_eq!(
        generated_ids.len(),
        2,
        "one generated node id and one edge id"
    );
    for id in generated_ids {
        let uuid = Uuid::parse_str(id).expect("generated id is a UUID");
        assert_eq!(uuid.get_version_num(), 7, "generated ids are UUID v7");
    }
    let n9 = graph.nodes.iter().find(|n| n.id == "n9").expect("n9");
    assert_eq!(n9.data, json!({"label": "nine", "tags": [1, 2]}));
    assert_provenance(&graph.canvas.provenance, &ctx);
    assert_ne!(
        graph.canvas.provenance.edit_event_id,
        old.canvas.provenance.edit_event_id
    );
    assert!(graph.canvas.updated_at >= old.canvas.updated_at);
    assert_eq!(graph.canvas.created_at, old.canvas.created_at);
    assert_graph_stamped_once(&graph);
    let empty = h
        .store()
        .update_canvas_graph(&human(), &canvas.id, Vec::new(), Vec::new())
        .expect("clear graph");
    assert!(empty.nodes.is_empty() && empty.edges.is_empty());
    assert_eq!(graph_of(h, &canvas.id), empty);
}

pub fn canvas_update_graph_dangling_edge_changes_nothing(h: &Harness) {
    let canvas = seed_canvas(h);
    seed_graph(h, &canvas.id);
    let cases = [
        ("edge to an unknown node", edge("e9", "a", "zz")),
        ("edge from an unknown node", edge("e9", "zz", "a")),
        ("edge to an old node not passed", edge("e9", "a", "n1")),
    ];
    for (what, bad) in cases {
        let nodes = vec![node("a", 0.0, 0.0), node("b", 1.0, 1.0)];
        let edges = vec![edge("ok", "a", "b"), bad];
        assert_graph_update_fails_unchanged(h, &canvas.id, what, nodes, edges, "Validation");
    }
}

pub fn canvas_update_graph_duplicate_node_changes_nothing(h: &Harness) {
    let canvas = seed_canvas(h);
    seed_graph(h, &canvas.id);
    let other = seed_canvas_in(h, &canvas.workspace_id, "Other");
    h.store()
        .update_canvas_graph(
            &human(),
            &other.id,
            vec![node("taken", 0.0, 0.0)],
            Vec::new(),
        )
        .expect("graph of the other canvas");
    let other_before = graph_of(h, &other.id);
    let cases = [
        (
            "same node id twice",
            vec![node("x", 0.0, 0.0), node("x", 1.0, 1.0)],
            Vec::new(),
        ),
        (
            "node id of another canvas",
            vec![node("x", 0.0, 0.0), node("taken", 1.0, 1.0)],
            Vec::new(),
        ),
        (
            "same edge id twice",
            vec![node("x", 0.0, 0.0), node("y", 1.0, 1.0)],
            vec![edge("dup", "x", "y"), edge("dup", "y", "x")],
        ),
    ];
    for (what, nodes, edges) in cases {
        assert_graph_update_fails_unchanged(h, &canvas.id, what, nodes, edges, "Conflict");
    }
    assert_eq!(graph_of(h, &other.id), other_before);
}

pub fn canvas_get_missing_is_not_found(h: &Harness) {
    let canvas = seed_canvas(h);
    let before = graph_of(h, &canvas.id);
    expect_kind(
        h.store().get_canvas_with_graph("no-such-canvas"),
        "NotFound",
    );
    let nodes = vec![node("m1", 0.0, 0.0)];
    expect_kind(
        h.store()
            .update_canvas_graph(&human(), "no-such-canvas", nodes, Vec::new()),
        "NotFound",
    );
    expect_kind(
        h.store()
            .update_canvas_graph(&human(), "no-such-canvas", Vec::new(), Vec::new()),
        "NotFound",
    );
    expect_kind(
        h.store().delete_canvas(&human(), "no-such-canvas"),
        "NotFound",
    );
    assert_eq!(graph_of(h, &canvas.id), before);
    // The node of the refused update was not written anywhere.
    h.store()
        .update_canvas_graph(&human(), &canvas.id, vec![node("m1", 0.0, 0.0)], Vec::new())
        .expect("m1 is still free");
}

pub fn canvas_delete_removes_graph(h: &Harness) {
    let canvas = seed_canvas(h);
    let kept = seed_canvas_in(h, &canvas.workspace_id, "Kept");
    seed_graph(h, &canvas.id);
    h.store()
        .delete_canvas(&human(), &canvas.id)
        .expect("delete canvas");
    expect_kind(h.store().get_canvas_with_graph(&canvas.id), "NotFound");
    expect_kind(h.store().delete_canvas(&human(), &canvas.id), "NotFound");
    assert_eq!(
        h.store().list_canvases(&canvas.workspace_id).expect("list"),
        vec![kept.clone()]
    );
    // Node and edge ids are unique across canvases: reusing them proves the
    // old graph is gone.
    let graph = seed_graph(h, &kept.id);
    assert_eq!(node_ids(&graph), ["n1", "n2", "n3"]);
}

pub fn canvas_blank_title_and_missing_workspace_are_validation(h: &Harness) {
    let ws = seed_workspace(h);
    let attempts = [
        ("empty title", ws.id.as_str(), ""),
        ("blank title", ws.id.as_str(), " \t\n"),
        ("unknown workspace", "no-such-workspace", "Board"),
        ("empty workspace id", "", "Board"),
    ];
    for (what, workspace_id, title) in attempts {
        let result = h
            .store()
            .create_canvas(&human(), new_canvas(workspace_id, title));
        assert_fails(what, result, "Validation");
    }
    assert!(h.store().list_canvases(&ws.id).expect("list").is_empty());
    assert!(h
        .store()
        .list_canvases("no-such-workspace")
        .expect("list")
        .is_empty());
}

// ---------------------------------------------------------------------------
// Cascades

/// A workspace holding two documents with blocks and a canvas with a graph;
/// ids are prefixed with `tag`.
fn seed_content(h: &Harness, tag: &str) -> (Workspace, Vec<Document>, Canvas) {
    let ws = seed_workspace_named(h, tag);
    let docs: Vec<Document> = (0..2)
        .map(|d| {
            let doc = seed_document_in(h, &ws.id, &format!("{tag} doc {d}"));
            for seq in 0..2 {
                add_block(h, &doc.id, seq, Some(&format!("{tag}-block-{d}-{seq}")));
            }
            doc
        })
        .collect();
    let canvas = seed_canvas_in(h, &ws.id, tag);
    let nodes = vec![
        node(&format!("{tag}-n1"), 0.0, 0.0),
        node(&format!("{tag}-n2"), 1.0, 1.0),
    ];
    let edges = vec![edge(
        &format!("{tag}-e1"),
        &format!("{tag}-n1"),
        &format!("{tag}-n2"),
    )];
    h.store()
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("seed graph");
    (ws, docs, canvas)
}

/// Everything the API shows of a workspace's content.
type ContentView = (
    Option<Workspace>,
    Vec<Document>,
    Vec<Vec<Block>>,
    Vec<Canvas>,
    Vec<CanvasGraph>,
);

fn content_view(h: &Harness, ws: &str) -> ContentView {
    let docs = h.store().list_documents(ws).expect("list documents");
    let blocks = docs.iter().map(|d| blocks_of(h, &d.id)).collect();
    let canvases = h.store().list_canvases(ws).expect("list canvases");
    let graphs = canvases.iter().map(|c| graph_of(h, &c.id)).collect();
    (
        h.store().get_workspace(ws).expect("get workspace"),
        docs,
        blocks,
        canvases,
        graphs,
    )
}

pub fn cascade_delete_workspace_removes_everything(h: &Harness) {
    let (ws, docs, canvas) = seed_content(h, "gone");
    let (kept_ws, _, _) = seed_content(h, "kept");
    let kept_before = content_view(h, &kept_ws.id);
    h.store()
        .delete_workspace(&human(), &ws.id)
        .expect("delete workspace");
    assert_eq!(
        content_view(h, &ws.id),
        (None, Vec::new(), Vec::new(), Vec::new(), Vec::new())
    );
    for doc in &docs {
        expect_kind(h.store().get_document(&doc.id), "NotFound");
        assert!(blocks_of(h, &doc.id).is_empty());
    }
    expect_kind(h.store().get_block("gone-block-0-0"), "NotFound");
    expect_kind(h.store().get_canvas_with_graph(&canvas.id), "NotFound");
    assert_eq!(content_view(h, &kept_ws.id), kept_before);
    // Block, node and edge ids are unique store-wide: reusing them proves
    // the rows are gone.
    let kept_doc = &kept_before.1[0];
    add_block(h, &kept_doc.id, 5, Some("gone-block-0-0"));
    let nodes = vec![node("gone-n1", 0.0, 0.0), node("gone-n2", 0.0, 0.0)];
    let edges = vec![edge("gone-e1", "gone-n1", "gone-n2")];
    h.store()
        .update_canvas_graph(&human(), &kept_before.3[0].id, nodes, edges)
        .expect("node and edge ids of the deleted workspace are free");
}

pub fn cascade_delete_run_removes_executions(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let kept_run = add_run(h, job.job_id, JobState::Running);
    let gone: Vec<WorkflowNodeExecution> = (0..3).map(|i| add_exec(h, run.id, "node", i)).collect();
    let kept = vec![add_exec(h, kept_run.id, "kept", 0)];
    assert_eq!(execs(h, run.id).len(), 3);
    let deleted = h
        .execute_sql(&format!(
            "DELETE FROM workflow_runs WHERE id = '{}'",
            run.id
        ))
        .expect("delete run by SQL");
    assert_eq!(deleted, 1);
    assert!(execs(h, run.id).is_empty());
    for exec in &gone {
        expect_kind(
            h.store().update_workflow_node_execution_status(
                exec.id,
                JobState::Completed,
                None,
                None,
            ),
            "NotFound",
        );
    }
    expect_kind(
        h.store()
            .update_workflow_run_status(run.id, JobState::Failed, None),
        "NotFound",
    );
    assert_eq!(execs(h, kept_run.id), kept);
    assert_eq!(h.store().get_ai_job(job.job_id).expect("job stays"), job);
}

// ---------------------------------------------------------------------------
// Guard and provenance

/// Every content write of the API.
const CONTENT_WRITES: [&str; 11] = [
    "create_workspace",
    "create_document",
    "create_block",
    "update_block",
    "delete_block",
    "replace_blocks",
    "create_canvas",
    "update_canvas_graph",
    "delete_canvas",
    "delete_document",
    "delete_workspace",
];

pub fn guard_refuses_silent_ai_edits_and_writes_nothing(h: &Harness) {
    let (ws, docs, canvas) = seed_content(h, "guarded");
    let (ws, doc, canvas) = (ws.id.as_str(), docs[0].id.as_str(), canvas.id.as_str());
    let block = "guarded-block-0-0";
    let before = content_view(h, ws);
    let s = h.store();
    let write = |what: &str, c: &WriteContext| -> StorageResult<()> {
        match what {
            "create_workspace" => s
                .create_workspace(c, NewWorkspace { name: "w".into() })
                .map(drop),
            "create_document" => s.create_document(c, new_doc(ws, "t")).map(drop),
            "create_block" => s
                .create_block(c, new_block(doc, 9, Some("silent")))
                .map(drop),
            "update_block" => s.update_block(c, block, raw_update("x")).map(drop),
            "delete_block" => s.delete_block(c, block),
            "replace_blocks" => s
                .replace_blocks(c, doc, vec![new_block(doc, 1, None)])
                .map(drop),
            "create_canvas" => s.create_canvas(c, new_canvas(ws, "c")).map(drop),
            "update_canvas_graph" => {
                let nodes = vec![node("silent", 0.0, 0.0)];
                s.update_canvas_graph(c, canvas, nodes, Vec::new())
                    .map(drop)
            }
            "delete_canvas" => s.delete_canvas(c, canvas),
            "delete_document" => s.delete_document(c, doc),
            "delete_workspace" => s.delete_workspace(c, ws),
            other => unreachable!("no write named {other}"),
        }
    };
    for ctx in silent_ai_contexts() {
        for what in CONTENT_WRITES {
            let result = write(what, &ctx);
            assert!(
                matches!(&result, Err(StorageError::Guard(m)) if m.contains("HSK-403-SILENT-EDIT")),
                "{what} with {ctx:?}: expected a Guard error, got {result:?}"
            );
        }
        expect_guard(s.validate_write_with_guard(&ctx, doc));
    }
    assert_eq!(
        content_view(h, ws),
        before,
        "a refused write changed something"
    );
    assert_eq!(s.list_workspaces().expect("list").len(), 1);
    expect_kind(s.get_block("silent"), "NotFound");
    // The same writes with both ids are accepted.
    for what in CONTENT_WRITES {
        write(what, &ai_ctx()).unwrap_or_else(|e| panic!("{what} with both ids: {e:?}"));
    }
    assert_eq!(
        s.get_workspace(ws).expect("get"),
        None,
        "the last write deleted it"
    );
}

pub fn guard_records_ai_provenance(h: &Harness) {
    let ctx = ai_ctx();
    let store = h.store();
    let ws = seed_workspace_as(h, &ctx, "by ai");
    let doc = seed_document_as(h, &ctx, &ws.id, "by ai");
    let block = store
        .create_block(&ctx, new_block(&doc.id, 1, Some("ai-block")))
        .expect("ai creates block");
    let updated = store
        .update_block(&ctx, "ai-block", raw_update("ai text"))
        .expect("ai updates block");
    let replaced = store
        .replace_blocks(&ctx, &doc.id, vec![new_block(&doc.id, 2, Some("ai-2"))])
        .expect("ai replaces blocks");
    let canvas = seed_canvas_as(h, &ctx, &ws.id, "by ai");
    let graph = seed_graph_with(h, &ctx, &canvas.id);
    let stamps = [
        &ws.provenance,
        &doc.provenance,
        &block.provenance,
        &updated.provenance,
        &replaced[0].provenance,
        &canvas.provenance,
        &graph.canvas.provenance,
    ];
    for p in stamps {
        assert_provenance(p, &ctx);
    }
    let events: BTreeSet<Uuid> = stamps.iter().map(|p| p.edit_event_id).collect();
    assert_eq!(
        events.len(),
        stamps.len(),
        "every write has its own edit event id"
    );
    assert_graph_stamped_once(&graph);
    assert_eq!(
        store.get_workspace(&ws.id).expect("get ws").as_ref(),
        Some(&ws)
    );
    // replace_blocks stamps the document it rewrites.
    let doc_now = store.get_document(&doc.id).expect("get doc");
    assert_eq!(doc_now.provenance, replaced[0].provenance);
    assert_eq!((&doc_now.id, &doc_now.title), (&doc.id, &doc.title));
    assert_eq!(blocks_of(h, &doc.id), replaced);
    assert_eq!(graph_of(h, &canvas.id), graph);
    store
        .delete_document(&ctx, &doc.id)
        .expect("ai deletes document");
    store
        .delete_canvas(&ctx, &canvas.id)
        .expect("ai deletes canvas");
    store
        .delete_workspace(&ctx, &ws.id)
        .expect("ai deletes workspace");
    assert!(store.list_workspaces().expect("list").is_empty());
}

/// [`seed_graph`]'s graph written with `ctx`.
fn seed_graph_with(h: &Harness, ctx: &WriteContext, canvas: &str) -> CanvasGraph {
    h.store()
        .update_canvas_graph(
            ctx,
            canvas,
            vec![
                node("n1", 0.0, 0.0),
                node("n2", 1.0, 2.0),
                node("n3", -3.5, 4.25),
            ],
            vec![edge("e1", "n1", "n2"), edge("e2", "n2", "n3")],
        )
        .expect("write canvas graph")
}

pub fn guard_validate_write_metadata(h: &Harness) {
    let contexts = [
        human(),
        WriteContext::human(None),
        WriteContext::system(Some("scheduler".into())),
        ai_ctx(),
    ];
    let mut events = BTreeSet::new();
    for ctx in &contexts {
        let start = Utc::now() - Duration::seconds(1);
        let meta = h
            .store()
            .validate_write_with_guard(ctx, "res-1")
            .expect("accepted write");
        let end = Utc::now() + Duration::seconds(1);
        assert_eq!(meta.resource_id, "res-1");
        assert_provenance(&meta.provenance(), ctx);
        assert!(
            meta.timestamp >= start && meta.timestamp <= end,
            "timestamp {}",
            meta.timestamp
        );
        assert!(events.insert(meta.edit_event_id), "edit event id reused");
        let again = h
            .store()
            .validate_write_with_guard(ctx, "res-1")
            .expect("again");
        assert!(events.insert(again.edit_event_id), "edit event id reused");
    }
    for ctx in silent_ai_contexts() {
        expect_guard(h.store().validate_write_with_guard(&ctx, "res-1"));
    }
    assert!(
        h.store().list_workspaces().expect("list").is_empty(),
        "validation writes nothing"
    );
}

pub fn provenance_human_and_system_writes(h: &Harness) {
    let anonymous = WriteContext::human(None);
    let system = WriteContext::system(Some("importer".into()));
    let ws = seed_workspace_as(h, &anonymous, "anon");
    assert_provenance(&ws.provenance, &anonymous);
    assert_eq!(ws.provenance.actor_id, None);
    let doc = seed_document_as(h, &system, &ws.id, "imported");
    assert_provenance(&doc.provenance, &system);
    assert_eq!(doc.provenance.actor_kind, WriteActorKind::System);
    let block = h
        .store()
        .create_block(&system, new_block(&doc.id, 1, Some("sys-block")))
        .expect("create block");
    assert_provenance(&block.provenance, &system);
    let sequence = BlockUpdate {
        sequence: Some(2),
        ..BlockUpdate::default()
    };
    let edited = h
        .store()
        .update_block(&human(), "sys-block", sequence)
        .expect("human edits");
    assert_provenance(&edited.provenance, &human());
    assert_ne!(
        edited.provenance.edit_event_id,
        block.provenance.edit_event_id
    );
    // A write touches only its own rows.
    assert_eq!(h.store().get_workspace(&ws.id).expect("get"), Some(ws));
    assert_eq!(h.store().get_document(&doc.id).expect("get"), doc);
    assert_eq!(h.store().get_block("sys-block").expect("get"), edited);
}

// ---------------------------------------------------------------------------
// AI jobs

fn job_by(h: &Harness, job_id: Uuid) -> AiJob {
    h.store().get_ai_job(job_id).expect("get ai job")
}

fn list_jobs(h: &Harness, filter: AiJobListFilter) -> Vec<Uuid> {
    job_ids(&h.store().list_ai_jobs(filter).expect("list ai jobs"))
}

/// Ids of `jobs` picked by `pick` (indexes), newest first as lists return.
fn newest_first(jobs: &[AiJob], pick: &[usize]) -> Vec<Uuid> {
    let mut ids: Vec<(DateTime<Utc>, Uuid)> = pick
        .iter()
        .map(|&i| (jobs[i].created_at, jobs[i].job_id))
        .collect();
    ids.sort();
    ids.into_iter().rev().map(|(_, id)| id).collect()
}

pub fn ai_job_create_and_get_with_defaults(h: &Harness) {
    let refs = vec![
        ws_ref("ws-1"),
        EntityRef {
            entity_id: "doc-9".into(),
            entity_kind: "document".into(),
        },
        ws_ref("ws-0"),
    ];
    let ops = vec![PlannedOperation {
        op_type: OperationType::Write,
        target: refs[1].clone(),
        description: Some("rewrite ✍".into()),
    }];
    let given = NewAiJob {
        planned_operations: ops.clone(),
        job_inputs: Some(json!({"prompt": "hi", "n": [1, 2.5, null]})),
        access_mode: AccessMode::ApplyScoped,
        safety_mode: SafetyMode::Strict,
        protocol_id: "proto-1".into(),
        ..new_job(JobKind::DocRewrite, refs.clone())
    };
    let job = h.store().create_ai_job(given.clone()).expect("create");
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.metrics, JobMetrics::default());
    assert!(!job.pinned);
    assert_eq!(job.workflow_run_id, None);
    assert_eq!(
        (job.error_message.clone(), job.job_outputs.clone()),
        (None, None)
    );
    assert_eq!(job.created_at, job.updated_at);
    assert_eq!(
        (job.trace_id, job.job_kind),
        (given.trace_id, JobKind::DocRewrite)
    );
    assert_eq!(
        (job.access_mode, job.safety_mode),
        (AccessMode::ApplyScoped, SafetyMode::Strict)
    );
    assert_eq!(job.entity_refs, refs, "entity refs in the given order");
    assert_eq!(job.planned_operations, ops);
    assert_eq!(job.job_inputs, given.job_inputs);
    assert_eq!(
        (job.protocol_id.as_str(), job.status_reason.as_str()),
        ("proto-1", "created")
    );
    assert!(!job.job_id.is_nil());
    assert_eq!(job_by(h, job.job_id), job);
    // Every kind and mode is stored and read back.
    for (i, kind) in JobKind::ALL.iter().enumerate() {
        let new = NewAiJob {
            access_mode: AccessMode::ALL[i % AccessMode::ALL.len()],
            safety_mode: SafetyMode::ALL[i % SafetyMode::ALL.len()],
            ..new_job(*kind, Vec::new())
        };
        let created = h.store().create_ai_job(new).expect("create kind");
        assert_eq!(job_by(h, created.job_id), created);
        assert_eq!(created.job_kind, *kind);
    }
    assert_eq!(all_jobs(h).len(), JobKind::ALL.len() + 1);
}

pub fn ai_job_get_missing_is_not_found(h: &Harness) {
    expect_kind(h.store().get_ai_job(Uuid::new_v4()), "NotFound");
    let job = add_job(h);
    expect_kind(h.store().get_ai_job(Uuid::nil()), "NotFound");
    assert_eq!(job_by(h, job.job_id), job);
}

pub fn ai_job_update_status(h: &Harness) {
    let job = add_job(h);
    pause();
    let metrics = JobMetrics {
        duration_ms: u64::MAX,
        total_tokens: u32::MAX,
        input_tokens: 7,
        output_tokens: 8,
        entities_written: 3,
        ..JobMetrics::default()
    };
    let (run_id, trace_id) = (Uuid::new_v4(), Uuid::new_v4());
    let running = h
        .store()
        .update_ai_job_status(JobStatusUpdate {
            status_reason: "started".into(),
            metrics: Some(metrics.clone()),
            workflow_run_id: Some(run_id),
            trace_id: Some(trace_id),
            job_outputs: Some(json!({"partial": true})),
            ..status_update(job.job_id, JobState::Running)
        })
        .expect("to running");
    assert_eq!(
        (running.state, running.status_reason.as_str()),
        (JobState::Running, "started")
    );
    assert_eq!(
        (running.metrics.clone(), running.workflow_run_id),
        (metrics.clone(), Some(run_id))
    );
    assert_eq!(
        (running.trace_id, running.job_outputs.clone()),
        (trace_id, Some(json!({"partial": true})))
    );
    assert_eq!(running.error_message, None);
    assert!(running.updated_at >= job.updated_at);
    assert_eq!(running.created_at, job.created_at);
    assert_eq!(job_by(h, job.job_id), running);
    let failed = h
        .store()
        .update_ai_job_status(JobStatusUpdate {
            error_message: Some("boom 💥".into()),
            ..status_update(job.job_id, JobState::Failed)
        })
        .expect("to failed");
    assert_eq!(
        (failed.state, failed.error_message.as_deref()),
        (JobState::Failed, Some("boom 💥"))
    );
    assert_eq!(failed.status_reason, "x");
    assert_eq!(
        (failed.metrics.clone(), failed.workflow_run_id),
        (metrics, Some(run_id)),
        "None keeps"
    );
    assert_eq!(
        (failed.trace_id, failed.job_outputs.clone()),
        (trace_id, running.job_outputs.clone())
    );
    assert!(failed.updated_at >= running.updated_at);
    assert_eq!(job_by(h, job.job_id), failed);
    // Handshake keeps the stored message when none is given (see the
    // contract cases).
    let completed = set_state(h.store(), job.job_id, JobState::Completed);
    assert_eq!(
        completed.error_message.as_deref(),
        Some("boom 💥"),
        "error_message None keeps it"
    );
    assert_eq!(job_by(h, job.job_id), completed);
}

pub fn ai_job_set_outputs_and_pinned(h: &Harness) {
    let job = add_job(h);
    let other = add_job(h);
    let outputs = json!({"result": ["a", {"b": 1}], "score": 0.5});
    h.store()
        .set_job_outputs(job.job_id, Some(outputs.clone()))
        .expect("set outputs");
    assert_eq!(job_by(h, job.job_id).job_outputs, Some(outputs));
    h.store().set_job_pinned(job.job_id, true).expect("pin");
    let pinned = job_by(h, job.job_id);
    assert!(pinned.pinned);
    assert!(pinned.updated_at >= job.updated_at);
    h.store()
        .set_job_outputs(job.job_id, None)
        .expect("clear outputs");
    assert_eq!(job_by(h, job.job_id).job_outputs, None);
    assert!(job_by(h, job.job_id).pinned, "outputs do not touch pinned");
    h.store().set_job_pinned(job.job_id, false).expect("unpin");
    assert!(!job_by(h, job.job_id).pinned);
    assert_eq!(job_by(h, other.job_id), other, "other job untouched");
}

pub fn ai_job_missing_targets_are_not_found(h: &Harness) {
    let missing = Uuid::new_v4();
    let store = h.store();
    expect_kind(
        store.update_ai_job_status(status_update(missing, JobState::Running)),
        "NotFound",
    );
    expect_kind(
        store.set_job_outputs(missing, Some(json!({"x": 1}))),
        "NotFound",
    );
    expect_kind(store.set_job_outputs(missing, None), "NotFound");
    expect_kind(store.set_job_pinned(missing, true), "NotFound");
    expect_kind(
        store.update_workflow_run_status(missing, JobState::Running, None),
        "NotFound",
    );
    expect_kind(store.heartbeat_workflow(missing, Utc::now()), "NotFound");
    expect_kind(
        store.update_workflow_node_execution_status(missing, JobState::Completed, None, None),
        "NotFound",
    );
    assert!(all_jobs(h).is_empty(), "nothing was created");
    assert!(store
        .list_workflow_node_executions(missing)
        .expect("list")
        .is_empty());
}

pub fn ai_job_list_filters(h: &Harness) {
    let doc_ref = |id: &str| EntityRef {
        entity_id: id.into(),
        entity_kind: "document".into(),
    };
    let specs: Vec<(JobKind, Vec<EntityRef>, JobState)> = vec![
        (JobKind::DocEdit, vec![ws_ref("ws-a")], JobState::Running),
        (
            JobKind::DocRewrite,
            vec![doc_ref("d1"), ws_ref("ws-a")],
            JobState::Completed,
        ),
        (JobKind::DocEdit, vec![ws_ref("ws-b")], JobState::Running),
        (JobKind::DocEdit, vec![doc_ref("ws-a")], JobState::Queued),
        (JobKind::CanvasCluster, Vec::new(), JobState::Running),
    ];
    let jobs: Vec<AiJob> = specs
        .into_iter()
        .map(|(kind, refs, state)| {
            let job = add_jobs_apart(h, 1, kind, &refs).remove(0);
            if state != JobState::Queued {
                set_state(h.store(), job.job_id, state);
            }
            job
        })
        .collect();
    let filter = |f: fn(&mut AiJobListFilter)| {
        let mut filter = AiJobListFilter::default();
        f(&mut filter);
        filter
    };
    let cases: Vec<(&str, AiJobListFilter, Vec<usize>)> = vec![
        ("no filter", AiJobListFilter::default(), vec![0, 1, 2, 3, 4]),
        (
            "running",
            filter(|f| f.status = Some(JobState::Running)),
            vec![0, 2, 4],
        ),
        (
            "failed",
            filter(|f| f.status = Some(JobState::Failed)),
            vec![],
        ),
        (
            "doc_edit",
            filter(|f| f.job_kind = Some(JobKind::DocEdit)),
            vec![0, 2, 3],
        ),
        ("ws-a", filter(|f| f.wsid = Some("ws-a".into())), vec![0, 1]),
        ("ws-b", filter(|f| f.wsid = Some("ws-b".into())), vec![2]),
        (
            "unknown ws",
            filter(|f| f.wsid = Some("ws-z".into())),
            vec![],
        ),
        (
            "ws-a and running",
            filter(|f| {
                f.wsid = Some("ws-a".into());
                f.status = Some(JobState::Running);
            }),
            vec![0],
        ),
        (
            "doc_edit and running",
            filter(|f| {
                f.job_kind = Some(JobKind::DocEdit);
                f.status = Some(JobState::Running);
            }),
            vec![0, 2],
        ),
        ("limit 2", filter(|f| f.limit = Some(2)), vec![4, 3]),
        ("limit 0", filter(|f| f.limit = Some(0)), vec![]),
    ];
    for (what, f, pick) in cases {
        assert_eq!(list_jobs(h, f), newest_first(&jobs, &pick), "filter {what}");
    }
}

/// Reads every job through pages of `size`, following the cursor.
fn page_through(h: &Harness, size: u32) -> Vec<Vec<Uuid>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = h
            .store()
            .list_ai_jobs(AiJobListFilter {
                limit: Some(size),
                cursor,
                ..AiJobListFilter::default()
            })
            .expect("list page");
        assert!(page.len() <= size as usize, "page larger than the limit");
        let Some(last) = page.last() else { break };
        cursor = Some(AiJobCursor::after(last));
        pages.push(job_ids(&page));
        assert!(pages.len() <= 10, "paging does not end");
    }
    pages
}

pub fn ai_job_list_order_and_cursor_paging(h: &Harness) {
    let jobs = add_jobs_apart(h, 7, JobKind::DocEdit, &[]);
    let full = job_ids(&all_jobs(h));
    let mut expected = job_ids(&jobs);
    expected.reverse();
    assert_eq!(full, expected, "newest first");
    let pages = page_through(h, 3);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(pages.concat(), full, "each job exactly once, in list order");
    // Equal creation times: job_id descending decides, and paging still
    // sees each job once.
    let anchor = jobs[3].job_id;
    let changed = h
        .execute_sql(&format!(
            "UPDATE ai_jobs SET created_at = (SELECT created_at FROM ai_jobs WHERE id = '{anchor}')"
        ))
        .expect("equalize created_at");
    assert_eq!(changed, 7);
    let mut by_id = job_ids(&jobs);
    by_id.sort();
    by_id.reverse();
    assert_eq!(
        job_ids(&all_jobs(h)),
        by_id,
        "ties broken by job_id descending"
    );
    for size in [1, 2, 3, 7, 8] {
        assert_eq!(page_through(h, size).concat(), by_id, "pages of {size}");
    }
}

pub fn ai_job_date_filters_are_typed(h: &Harness) {
    let jobs = add_jobs_apart(h, 5, JobKind::DocSummarize, &[]);
    let at = |i: usize| jobs[i].created_at;
    let micro = Duration::microseconds(1);
    let far_past = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
    let far_future = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    let range = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| AiJobListFilter {
        from,
        to,
        ..AiJobListFilter::default()
    };
    let cases: Vec<(&str, AiJobListFilter, Vec<usize>)> = vec![
        (
            "from inclusive, to exclusive",
            range(Some(at(1)), Some(at(3))),
            vec![1, 2],
        ),
        ("from only", range(Some(at(3)), None), vec![3, 4]),
        ("to only", range(None, Some(at(1))), vec![0]),
        ("from == to", range(Some(at(2)), Some(at(2))), vec![]),
        (
            "one microsecond after",
            range(Some(at(2) + micro), Some(at(4))),
            vec![3],
        ),
        (
            "to one microsecond after",
            range(Some(at(2)), Some(at(2) + micro)),
            vec![2],
        ),
        (
            "year 1 to year 9999",
            range(Some(far_past), Some(far_future)),
            vec![0, 1, 2, 3, 4],
        ),
        ("after everything", range(Some(far_future), None), vec![]),
        ("before everything", range(None, Some(far_past)), vec![]),
        (
            "year 999",
            range(
                Some(Utc.with_ymd_and_hms(999, 1, 1, 0, 0, 0).unwrap()),
                None,
            ),
            vec![0, 1, 2, 3, 4],
        ),
    ];
    for (what, f, pick) in cases {
        assert_eq!(list_jobs(h, f), newest_first(&jobs, &pick), "{what}");
    }
}

// ---------------------------------------------------------------------------
// Workflows

fn near_now(at: DateTime<Utc>) -> bool {
    (Utc::now() - at).num_seconds().abs() <= 5
}

pub fn workflow_run_lifecycle(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Queued);
    assert_eq!(
        (run.job_id, run.status, run.error_message.clone()),
        (job.job_id, JobState::Queued, None)
    );
    assert!(
        near_now(run.last_heartbeat),
        "heartbeat defaults to now: {}",
        run.last_heartbeat
    );
    assert_eq!(run.created_at, run.updated_at);
    assert!(!run.id.is_nil());
    pause();
    let running = h
        .store()
        .update_workflow_run_status(run.id, JobState::Running, None)
        .expect("to running");
    assert_eq!((running.id, running.status), (run.id, JobState::Running));
    assert_eq!(
        (running.created_at, running.last_heartbeat),
        (run.created_at, run.last_heartbeat)
    );
    assert!(running.updated_at >= run.updated_at);
    let beat = Utc.timestamp_opt(1_800_000_000, 654_321_000).unwrap();
    h.store()
        .heartbeat_workflow(run.id, beat)
        .expect("heartbeat");
    let failed = h
        .store()
        .update_workflow_run_status(run.id, JobState::Failed, Some("node crashed".into()))
        .expect("to failed");
    assert_eq!(
        (failed.status, failed.error_message.as_deref()),
        (JobState::Failed, Some("node crashed"))
    );
    assert_eq!(failed.last_heartbeat, beat, "heartbeat stored");
    let done = h
        .store()
        .update_workflow_run_status(run.id, JobState::Completed, None)
        .expect("to completed");
    assert_eq!(
        (done.status, done.error_message),
        (JobState::Completed, None)
    );
    let given = Utc.timestamp_opt(1_600_000_000, 1_000).unwrap();
    let with_beat = h
        .store()
        .create_workflow_run(job.job_id, JobState::Running, Some(given))
        .expect("run with heartbeat");
    assert_eq!(with_beat.last_heartbeat, given);
    assert_eq!(job_by(h, job.job_id), job, "runs do not change the job");
}

pub fn workflow_missing_parents_are_validation(h: &Harness) {
    let missing = Uuid::new_v4();
    expect_kind(
        h.store()
            .create_workflow_run(missing, JobState::Running, None),
        "Validation",
    );
    expect_kind(
        h.store()
            .create_workflow_node_execution(new_exec(missing, "n", 0)),
        "Validation",
    );
    assert!(execs(h, missing).is_empty());
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    assert!(execs(h, run.id).is_empty());
    let stale = Utc::now() - Duration::hours(1);
    h.store()
        .heartbeat_workflow(run.id, stale)
        .expect("heartbeat");
    let stalled = h.store().find_stalled_workflows(60).expect("stalled");
    assert_eq!(
        stalled.iter().map(|r| r.id).collect::<Vec<_>>(),
        [run.id],
        "only the real run exists"
    );
}

pub fn workflow_node_executions_ordered_by_sequence(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let other_run = add_run(h, job.job_id, JobState::Running);
    add_exec(h, other_run.id, "elsewhere", 0);
    let specs: [(i64, &str); 7] = [
        (3, "c"),
        (1, "a"),
        (-2, "z"),
        (1, "b"),
        (i64::MAX, "last"),
        (i64::MIN, "first"),
        (1, "b2"),
    ];
    let mut created: Vec<WorkflowNodeExecution> = specs
        .iter()
        .map(|(seq, node)| add_exec(h, run.id, node, *seq))
        .collect();
    for exec in &created {
        assert_eq!(
            (exec.workflow_run_id, exec.status, exec.finished_at),
            (run.id, JobState::Running, None)
        );
        assert_eq!(exec.input_payload, Some(json!({"node": exec.node_id})));
        assert_eq!(
            (exec.output_payload.clone(), exec.error_message.clone()),
            (None, None)
        );
        assert_eq!(exec.node_type, "llm");
    }
    created.sort_by_key(|e| (e.sequence, e.id));
    assert_eq!(execs(h, run.id), created);
}

pub fn workflow_node_execution_status_sets_finished_at(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    // Stalled finishes an execution too (see the contract cases).
    let terminal = [
        JobState::Stalled,
        JobState::Completed,
        JobState::CompletedWithIssues,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Poisoned,
    ];
    for (i, state) in JobState::ALL.iter().enumerate() {
        let exec = add_exec(h, run.id, state.as_str(), i as i64);
        let output = json!({"state": state.as_str(), "i": i});
        let updated = h
            .store()
            .update_workflow_node_execution_status(
                exec.id,
                *state,
                Some(output.clone()),
                Some(format!("e{i}")),
            )
            .expect("update node execution");
        assert_eq!(updated.status, *state);
        assert_eq!(
            updated.finished_at.is_some(),
            terminal.contains(state),
            "finished_at for {state}"
        );
        assert_eq!(updated.output_payload, Some(output), "output for {state}");
        assert_eq!(updated.error_message, Some(format!("e{i}")));
        assert_eq!(
            (updated.input_payload.clone(), updated.started_at),
            (exec.input_payload.clone(), exec.started_at)
        );
        assert!(updated.updated_at >= exec.updated_at);
        let kept = h
            .store()
            .update_workflow_node_execution_status(exec.id, *state, None, None)
            .expect("update without output");
        assert_eq!(
            kept.output_payload, updated.output_payload,
            "None keeps the output"
        );
        assert_eq!(kept.error_message, updated.error_message, "None keeps it");
    }
    let listed = execs(h, run.id);
    assert_eq!(listed.len(), JobState::ALL.len());
    let finished: Vec<JobState> = listed
        .iter()
        .filter(|e| e.finished_at.is_some())
        .map(|e| e.status)
        .collect();
    assert_eq!(finished, terminal.to_vec());
}

pub fn workflow_stalled_detection(h: &Harness) {
    let job = add_job(h);
    let ago = |minutes: i64| Utc::now() - Duration::minutes(minutes);
    let run_at = |status: JobState, beat: Option<DateTime<Utc>>| {
        h.store()
            .create_workflow_run(job.job_id, status, beat)
            .expect("create run")
    };
    let a = run_at(JobState::Running, Some(ago(60)));
    let b = run_at(JobState::Running, Some(ago(120)));
    let fresh = run_at(JobState::Running, None);
    let queued_old = run_at(JobState::Queued, Some(ago(180)));
    let done_old = run_at(JobState::Completed, Some(ago(180)));
    let e = run_at(JobState::Running, None);
    h.store()
        .heartbeat_workflow(e.id, ago(30))
        .expect("heartbeat e into the past");
    let tie = ago(240);
    let mut tied = vec![
        run_at(JobState::Running, Some(tie)).id,
        run_at(JobState::Running, Some(tie)).id,
    ];
    tied.sort();
    let stalled_ids = |threshold: u64| -> Vec<Uuid> {
        h.store()
            .find_stalled_workflows(threshold)
            .expect("find stalled")
            .iter()
            .map(|r| r.id)
            .collect()
    };
    let mut expected = tied.clone();
    expected.extend([b.id, a.id, e.id]);
    assert_eq!(
        stalled_ids(60),
        expected,
        "oldest heartbeat first, ties by id"
    );
    assert_eq!(stalled_ids(90 * 60), [tied[0], tied[1], b.id]);
    assert!(stalled_ids(u64::MAX).is_empty());
    for id in [fresh.id, queued_old.id, done_old.id] {
        assert!(!stalled_ids(1).contains(&id), "{id} is not stalled");
    }
    h.store()
        .heartbeat_workflow(b.id, Utc::now())
        .expect("b beats");
    h.store()
        .update_workflow_run_status(a.id, JobState::Completed, None)
        .expect("a completes");
    assert_eq!(stalled_ids(60), [tied[0], tied[1], e.id]);
    let runs = h.store().find_stalled_workflows(60).expect("stalled runs");
    assert!(runs
        .iter()
        .all(|r| r.status == JobState::Running && r.job_id == job.job_id));
}

// ---------------------------------------------------------------------------
// Retention

/// Creates one job per `(state, pinned)`, oldest first and apart in time.
fn seed_jobs(h: &Harness, specs: &[(JobState, bool)]) -> Vec<AiJob> {
    specs
        .iter()
        .map(|&(state, pinned)| {
            let job = add_jobs_apart(h, 1, JobKind::DocEdit, &[]).remove(0);
            if state != JobState::Queued {
                set_state(h.store(), job.job_id, state);
            }
            if pinned {
                h.store().set_job_pinned(job.job_id, true).expect("pin");
            }
            job_by(h, job.job_id)
        })
        .collect()
}

/// A point in time after everything created so far and before anything
/// created later.
fn cutoff_now() -> DateTime<Utc> {
    pause();
    let cutoff = Utc::now();
    pause();
    cutoff
}

fn prune(h: &Harness, cutoff: DateTime<Utc>, min_versions: u32, dry_run: bool) -> PruneReport {
    let report = h
        .store()
        .prune_ai_jobs(cutoff, min_versions, dry_run)
        .expect("prune ai jobs");
    assert_eq!(report.dry_run, dry_run);
    assert_eq!(
        report.items_scanned,
        report.items_pruned + report.items_spared_pinned + report.items_spared_window,
        "scanned = pruned + spared: {report:?}"
    );
    assert!(near_now(report.timestamp));
    report
}

/// `(scanned, pruned, spared_pinned, spared_window)`.
fn counts(r: &PruneReport) -> (u32, u32, u32, u32) {
    (
        r.items_scanned,
        r.items_pruned,
        r.items_spared_pinned,
        r.items_spared_window,
    )
}

/// The jobs of `jobs` at `keep` indexes, as the store now holds them,
/// newest first: what must remain after a prune.
fn remaining(jobs: &[AiJob], keep: &[usize]) -> Vec<AiJob> {
    let mut kept: Vec<AiJob> = keep.iter().map(|&i| jobs[i].clone()).collect();
    kept.sort_by_key(|j| std::cmp::Reverse((j.created_at, j.job_id)));
    kept
}

pub fn prune_respects_state_cutoff_and_pinned(h: &Harness) {
    use JobState::*;
    let mut jobs = seed_jobs(
        h,
        &[
            (Completed, false),
            (Failed, false),
            (Completed, true),
            (Running, false),
            (Queued, false),
            (Cancelled, false),
            (AwaitingUser, false),
            (CompletedWithIssues, false),
        ],
    );
    let cutoff = cutoff_now();
    jobs.extend(seed_jobs(h, &[(Completed, false), (Failed, false)]));
    let report = prune(h, cutoff, 0, false);
    assert_eq!(counts(&report), (3, 2, 1, 0));
    for gone in &jobs[..2] {
        expect_kind(h.store().get_ai_job(gone.job_id), "NotFound");
    }
    assert_eq!(
        all_jobs(h),
        remaining(&jobs, &[2, 3, 4, 5, 6, 7, 8, 9]),
        "others untouched"
    );
    let again = prune(h, cutoff, 0, false);
    assert_eq!(counts(&again), (1, 0, 1, 0));
    h.store()
        .set_job_pinned(jobs[2].job_id, false)
        .expect("unpin");
    assert_eq!(counts(&prune(h, cutoff, 0, false)), (1, 1, 0, 0));
    expect_kind(h.store().get_ai_job(jobs[2].job_id), "NotFound");
    assert_eq!(all_jobs(h).len(), 7);
}

pub fn prune_keeps_min_versions(h: &Harness) {
    use JobState::*;
    let jobs = seed_jobs(
        h,
        &[
            (Completed, false),
            (Failed, false),
            (Completed, false),
            (Failed, false),
            (Completed, false),
            (Completed, true),
        ],
    );
    let cutoff = cutoff_now();
    let report = prune(h, cutoff, 2, false);
    assert_eq!(counts(&report), (6, 3, 1, 2));
    // The newest two unpinned survive; the pinned one does not count.
    assert_eq!(all_jobs(h), remaining(&jobs, &[3, 4, 5]));
    assert_eq!(counts(&prune(h, cutoff, 2, false)), (3, 0, 1, 2));
    assert_eq!(counts(&prune(h, cutoff, 10, false)), (3, 0, 1, 2));
    assert_eq!(counts(&prune(h, cutoff, 1, false)), (3, 1, 1, 1));
    assert_eq!(all_jobs(h), remaining(&jobs, &[4, 5]));
}

pub fn prune_dry_run_changes_nothing(h: &Harness) {
    use JobState::*;
    seed_jobs(
        h,
        &[
            (Completed, false),
            (Failed, true),
            (Failed, false),
            (Completed, false),
            (Running, false),
        ],
    );
    let cutoff = cutoff_now();
    seed_jobs(h, &[(Completed, false)]);
    let before = all_jobs(h);
    let dry = prune(h, cutoff, 1, true);
    // The recent completed job fills the one-job window.
    assert_eq!(counts(&dry), (4, 3, 1, 0));
    assert_eq!(all_jobs(h), before, "a dry run changes nothing");
    assert_eq!(
        counts(&prune(h, cutoff, 1, true)),
        counts(&dry),
        "and repeats"
    );
    let real = prune(h, cutoff, 1, false);
    assert_eq!(
        counts(&real),
        counts(&dry),
        "the real run does what the dry run said"
    );
    assert_eq!(all_jobs(h).len(), before.len() - 3);
}

pub fn prune_cascades_runs_and_executions(h: &Harness) {
    let old = seed_jobs(
        h,
        &[(JobState::Completed, false), (JobState::Running, false)],
    );
    let runs: Vec<WorkflowRun> = old
        .iter()
        .map(|j| add_run(h, j.job_id, JobState::Running))
        .collect();
    let kept_execs: Vec<Vec<WorkflowNodeExecution>> = runs
        .iter()
        .map(|r| (0..2).map(|i| add_exec(h, r.id, "n", i)).collect())
        .collect();
    let cutoff = cutoff_now();
    assert_eq!(counts(&prune(h, cutoff, 0, false)), (1, 1, 0, 0));
    expect_kind(h.store().get_ai_job(old[0].job_id), "NotFound");
    expect_kind(
        h.store()
            .update_workflow_run_status(runs[0].id, JobState::Failed, None),
        "NotFound",
    );
    assert!(
        execs(h, runs[0].id).is_empty(),
        "executions of the pruned run are gone"
    );
    expect_kind(
        h.store().update_workflow_node_execution_status(
            kept_execs[0][0].id,
            JobState::Failed,
            None,
            None,
        ),
        "NotFound",
    );
    assert_eq!(
        execs(h, runs[1].id),
        kept_execs[1],
        "the running job keeps its run"
    );
    assert_eq!(job_by(h, old[1].job_id), old[1]);
}

// ---------------------------------------------------------------------------
// Round trips

pub fn roundtrip_f64_positions(h: &Harness) {
    let canvas = seed_canvas(h);
    let values = [
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        5e-324,
        0.1 + 0.2,
        -1.5,
        1e300,
        std::f64::consts::PI,
        0.0,
        -0.0,
        -f64::MIN_POSITIVE,
    ];
    let nodes = values
        .iter()
        .enumerate()
        .map(|(i, v)| node(&format!("p{i:02}"), *v, -*v))
        .collect();
    let written = h
        .store()
        .update_canvas_graph(&human(), &canvas.id, nodes, Vec::new())
        .expect("write positions");
    let read = graph_of(h, &canvas.id);
    assert_eq!(read, written);
    assert_eq!(read.nodes.len(), values.len());
    // -0.0 is stored as 0.0 on every backend (SQLite's REAL drops the sign).
    let stored = |v: f64| if v == 0.0 { 0.0_f64 } else { v };
    for (n, v) in read.nodes.iter().zip(values) {
        assert_eq!(
            n.position_x.to_bits(),
            stored(v).to_bits(),
            "x of {}: {} != {v}",
            n.id,
            n.position_x
        );
        assert_eq!(
            n.position_y.to_bits(),
            stored(-v).to_bits(),
            "y of {}: {} != {}",
            n.id,
            n.position_y,
            -v
        );
    }
}

pub fn roundtrip_i64_sequence_extremes(h: &Harness) {
    let doc = seed_document(h);
    let sequences = [i64::MAX, 0, i64::MIN, -1, i64::MIN + 1, i64::MAX - 1, 1];
    for (i, seq) in sequences.iter().enumerate() {
        add_block(h, &doc.id, *seq, Some(&format!("s{i}")));
    }
    let mut expected = sequences.to_vec();
    expected.sort_unstable();
    let read: Vec<i64> = blocks_of(h, &doc.id).iter().map(|b| b.sequence).collect();
    assert_eq!(read, expected);
    for seq in [i64::MIN, i64::MAX] {
        let update = BlockUpdate {
            sequence: Some(seq),
            ..BlockUpdate::default()
        };
        let updated = h
            .store()
            .update_block(&human(), "s1", update)
            .expect("update sequence");
        assert_eq!(updated.sequence, seq);
        assert_eq!(h.store().get_block("s1").expect("get").sequence, seq);
    }
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    for seq in [i64::MAX, i64::MIN] {
        add_exec(h, run.id, "n", seq);
    }
    let read: Vec<i64> = execs(h, run.id).iter().map(|e| e.sequence).collect();
    assert_eq!(read, [i64::MIN, i64::MAX]);
}

/// Parents for the JSON channels: a document with block `json-block`, a
/// canvas, a job, a run and a node execution.
struct Fixture {
    doc: String,
    canvas: String,
    job: Uuid,
    run: Uuid,
    exec: Uuid,
}

fn fixture(h: &Harness) -> Fixture {
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

fn exec_by(h: &Harness, run: Uuid, exec: Uuid) -> WorkflowNodeExecution {
    execs(h, run)
        .into_iter()
        .find(|e| e.id == exec)
        .expect("node execution listed")
}

/// Every place the API stores JSON.
const JSON_CHANNELS: [&str; 8] = [
    "block derived_content (create)",
    "block derived_content (update)",
    "canvas node data",
    "job inputs",
    "job outputs (set_job_outputs)",
    "job outputs (status update)",
    "node execution input",
    "node execution output",
];

/// Writes `v` through the JSON channel named `channel` and reads it back.
fn json_write(h: &Harness, fx: &Fixture, channel: &str, v: Value) -> StorageResult<Value> {
    let s = h.store();
    let some = |v: Option<Value>| v.expect("stored JSON is Some");
    Ok(match channel {
        "block derived_content (create)" => {
            let block = edited(new_block(&fx.doc, 1, None), |b| b.derived_content = Some(v));
            let id = s.create_block(&human(), block)?.id;
            s.get_block(&id)?.derived_content
        }
        "block derived_content (update)" => {
            let update = edited(BlockUpdate::default(), |u| u.derived_content = Some(v));
            s.update_block(&human(), "json-block", update)?;
            s.get_block("json-block")?.derived_content
        }
        "canvas node data" => {
            let n = edited(node("json-node", 1.0, 2.0), |n| n.data = Some(v));
            s.update_canvas_graph(&human(), &fx.canvas, vec![n], Vec::new())?;
            s.get_canvas_with_graph(&fx.canvas)?.nodes.remove(0).data
        }
        "job inputs" => {
            let job = edited(new_job(JobKind::DocIngest, Vec::new()), |j| {
                j.job_inputs = Some(v)
            });
            let id = s.create_ai_job(job)?.job_id;
            some(s.get_ai_job(id)?.job_inputs)
        }
        "job outputs (set_job_outputs)" => {
            s.set_job_outputs(fx.job, Some(v))?;
            some(s.get_ai_job(fx.job)?.job_outputs)
        }
        "job outputs (status update)" => {
            let update = edited(status_update(fx.job, JobState::Running), |u| {
                u.job_outputs = Some(v)
            });
            s.update_ai_job_status(update)?;
            some(s.get_ai_job(fx.job)?.job_outputs)
        }
        "node execution input" => {
            let exec = edited(new_exec(fx.run, "in", 1), |e| e.input_payload = Some(v));
            let id = s.create_workflow_node_execution(exec)?.id;
            some(exec_by(h, fx.run, id).input_payload)
        }
        "node execution output" => {
            s.update_workflow_node_execution_status(fx.exec, JobState::Running, Some(v), None)?;
            some(exec_by(h, fx.run, fx.exec).output_payload)
        }
        other => unreachable!("no JSON channel named {other}"),
    })
}

/// Asserts that each of `values` comes back equal through every channel.
#[track_caller]
fn assert_json_roundtrips(h: &Harness, fx: &Fixture, values: &[Value]) {
    for channel in JSON_CHANNELS {
        for value in values {
            let read = json_write(h, fx, channel, value.clone())
                .unwrap_or_else(|e| panic!("{channel}: writing {value}: {e:?}"));
            assert!(
                &read == value,
                "{channel} changed the value {value}: read {read}"
            );
        }
    }
}

/// Everything the JSON channels can change.
type JsonView = (
    Vec<Block>,
    CanvasGraph,
    Vec<AiJob>,
    Vec<WorkflowNodeExecution>,
);

fn json_view(h: &Harness, fx: &Fixture) -> JsonView {
    (
        blocks_of(h, &fx.doc),
        graph_of(h, &fx.canvas),
        all_jobs(h),
        execs(h, fx.run),
    )
}

/// Asserts that every JSON channel refuses each of `values` with
/// `Validation` and that nothing changes.
#[track_caller]
fn assert_json_refused(h: &Harness, fx: &Fixture, values: &[(&str, Value)]) {
    let before = json_view(h, fx);
    for channel in JSON_CHANNELS {
        for (what, value) in values {
            let result = json_write(h, fx, channel, value.clone());
            assert_fails(&format!("{what} through {channel}"), result, "Validation");
        }
    }
    assert_eq!(
        json_view(h, fx),
        before,
        "a refused JSON write changed something"
    );
}

/// Nested objects `{"k": {"k": ... 1}}`, `depth` of them.
fn deep_object(depth: usize) -> Value {
    // Not `json!`: it would serialize `inner` recursively at every level.
    (0..depth).fold(json!(1), |inner, _| {
        Value::Object(serde_json::Map::from_iter([("k".to_string(), inner)]))
    })
}

pub fn roundtrip_json_shapes(h: &Harness) {
    let values = vec![
        json!({"a": {"b": {"c": [1, [2, [3, {"d": null}]]]}}, "e": [true, false]}),
        json!({"emoji": "😀🎉👩‍👩‍👧", "cjk": "漢字かなカナ한국어", "rtl": "שלום مرحبا", "combining": "e\u{301}a\u{308}"}),
        json!({"ключ 🔑": "значение", "quote\"back\\slash": "tab\tnew\nline"}),
        json!([u64::MAX, i64::MIN, 0.1, 1e300, -0.5, 0, -1]),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(0.1),
        json!(1e300),
        // Whole floats that serde_json writes in exponent form: jsonb must
        // not turn them into integers.
        json!([
            1e16,
            1.5e17,
            -1e18,
            1e19,
            9007199254740993.0,
            f64::MAX,
            1.5e-7
        ]),
        json!(1e16),
        json!({}),
        json!([]),
        json!(null),
        json!(true),
        json!(false),
        json!("just a string"),
        json!([{}, [], {"": ""}]),
        deep_json(50),
        deep_object(50),
    ];
    assert_json_roundtrips(h, &fixture(h), &values);
}

/// More than 1 MiB of text mixing one- to four-byte UTF-8 sequences.
fn large_text() -> String {
    let piece = "héllo wörld 🌍 中文字 עברית e\u{301} ∑ ";
    let text = piece.repeat((1 << 20) / piece.len() + 64);
    assert!(text.len() > 1 << 20);
    text
}

pub fn roundtrip_large_unicode_text(h: &Harness) {
    let doc = seed_document(h);
    let text = large_text();
    let block = h
        .store()
        .create_block(
            &human(),
            NewBlock {
                raw_content: text.clone(),
                ..new_block(&doc.id, 1, Some("big"))
            },
        )
        .expect("create big block");
    let read = h.store().get_block("big").expect("get big block");
    assert_eq!(read, block);
    assert_eq!(read.raw_content.len(), text.len());
    assert!(read.raw_content == text && read.display_content == text);
    let reversed: String = text.chars().rev().collect();
    let update = BlockUpdate {
        display_content: Some(reversed.clone()),
        ..BlockUpdate::default()
    };
    h.store()
        .update_block(&human(), "big", update)
        .expect("update big block");
    let read = h.store().get_block("big").expect("get again");
    assert!(
        read.display_content == reversed,
        "updated display content differs"
    );
    assert!(read.raw_content == text);
    let name = "名前 🏷️ Ωmega e\u{301}";
    let ws = seed_workspace_named(h, name);
    assert_eq!(
        h.store()
            .get_workspace(&ws.id)
            .expect("get")
            .expect("some")
            .name,
        name
    );
}

pub fn roundtrip_timestamps_microseconds(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let micros = Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap();
    let nanos = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
    // Reads the heartbeat back through the stalled list (past times) and
    // through the row a status update returns (any time).
    let heartbeat_of = |at: DateTime<Utc>| {
        h.store().heartbeat_workflow(run.id, at).expect("heartbeat");
        let stalled = h.store().find_stalled_workflows(1).expect("stalled");
        let row = h
            .store()
            .update_workflow_run_status(run.id, JobState::Running, None)
            .expect("read run");
        if at < Utc::now() {
            assert_eq!(stalled.len(), 1, "the run is stalled");
            assert_eq!(stalled[0].last_heartbeat, row.last_heartbeat);
        } else {
            assert!(stalled.is_empty(), "a future heartbeat is not stalled");
        }
        row.last_heartbeat
    };
    assert_eq!(heartbeat_of(micros), micros);
    assert_eq!(heartbeat_of(nanos), micros, "nanoseconds are truncated");
    let extremes = [
        Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap() + Duration::microseconds(999_999),
        Utc.timestamp_opt(0, 1_000).unwrap(),
        Utc.timestamp_opt(-1, 999_999_000).unwrap(),
    ];
    for at in extremes {
        assert_eq!(heartbeat_of(at), at);
    }
    let started = [micros, nanos, extremes[0], extremes[1]];
    for (i, at) in started.iter().enumerate() {
        let exec = NewNodeExecution {
            started_at: *at,
            ..new_exec(run.id, "t", i as i64)
        };
        let created = h
            .store()
            .create_workflow_node_execution(exec)
            .expect("create exec");
        assert_eq!(
            created.started_at.timestamp_subsec_nanos() % 1_000,
            0,
            "microseconds"
        );
    }
    let read: Vec<DateTime<Utc>> = execs(h, run.id).iter().map(|e| e.started_at).collect();
    assert_eq!(read, [micros, micros, extremes[0], extremes[1]]);
    let given = h
        .store()
        .create_workflow_run(job.job_id, JobState::Queued, Some(nanos))
        .expect("run with heartbeat");
    assert_eq!(given.last_heartbeat, micros);
}

// ---------------------------------------------------------------------------
// Errors

/// Asserts that every result failed with `kind`.
#[track_caller]
fn assert_all_fail(results: Vec<(&str, StorageResult<()>)>, kind: &str) {
    for (what, result) in results {
        assert_fails(what, result, kind);
    }
}

/// A NUL byte in an id argument is `Validation` on every backend (not
/// `NotFound` on one and a driver error on the other), and writes nothing.
pub fn error_nul_byte_in_id_arguments_is_validation(h: &Harness) {
    let fx = fixture(h);
    let ws = h.store().get_document(&fx.doc).expect("doc").workspace_id;
    let before = content_view(h, &ws);
    let s = h.store();
    let ctx = human();
    let results: Vec<(&str, StorageResult<()>)> = vec![
        ("get_workspace", s.get_workspace(NUL).map(drop)),
        ("list_documents", s.list_documents(NUL).map(drop)),
        ("get_document", s.get_document(NUL).map(drop)),
        ("get_blocks", s.get_blocks(NUL).map(drop)),
        ("get_block", s.get_block(NUL).map(drop)),
        ("list_canvases", s.list_canvases(NUL).map(drop)),
        (
            "get_canvas_with_graph",
            s.get_canvas_with_graph(NUL).map(drop),
        ),
        (
            "update_block",
            s.update_block(&ctx, NUL, raw_update("x")).map(drop),
        ),
        (
            "replace_blocks",
            s.replace_blocks(&ctx, NUL, Vec::new()).map(drop),
        ),
        (
            "update_canvas_graph",
            s.update_canvas_graph(&ctx, NUL, Vec::new(), Vec::new())
                .map(drop),
        ),
        ("delete_workspace", s.delete_workspace(&ctx, NUL)),
        ("delete_document", s.delete_document(&ctx, NUL)),
        ("delete_block", s.delete_block(&ctx, NUL)),
        ("delete_canvas", s.delete_canvas(&ctx, NUL)),
    ];
    assert_all_fail(results, "Validation");
    assert_eq!(content_view(h, &ws), before, "nothing changed");
}

/// Two `replace_blocks` of one document racing: the document ends with
/// exactly one of the two sets, never a mix or a union.
pub fn concurrent_replace_blocks_last_writer_wins_whole(h: &Harness) {
    let doc = seed_document(h);
    let store = h.shared_store();
    let set = |tag: &str| -> Vec<NewBlock> {
        (0..50)
            .map(|i| new_block(&doc.id, i, Some(&format!("{tag}-{i:02}"))))
            .collect()
    };
    for round in 0..5 {
        let tags = [format!("a{round}"), format!("b{round}")];
        std::thread::scope(|scope| {
            for tag in &tags {
                let (store, doc, items) = (&store, &doc.id, set(tag));
                scope.spawn(move || {
                    store
                        .replace_blocks(&human(), doc, items)
                        .expect("concurrent replace")
                });
            }
        });
        let ids: Vec<String> = blocks_of(h, &doc.id).into_iter().map(|b| b.id).collect();
        let whole =
            |tag: &str| -> Vec<String> { (0..50).map(|i| format!("{tag}-{i:02}")).collect() };
        assert!(
            ids == whole(&tags[0]) || ids == whole(&tags[1]),
            "round {round}: a mix of both replaces: {ids:?}"
        );
    }
}

pub fn error_nul_byte_in_text_is_validation(h: &Harness) {
    let fx = fixture(h);
    let ws = h.store().get_document(&fx.doc).expect("doc").workspace_id;
    let before = (content_view(h, &ws), json_view(h, &fx));
    let s = h.store();
    let nul_actor = WriteContext::human(Some(NUL.into()));
    let failed = JobState::Failed;
    let nul_wsid = AiJobListFilter {
        wsid: Some(NUL.into()),
        ..AiJobListFilter::default()
    };
    let mut results: Vec<(&str, StorageResult<()>)> = vec![
        (
            "workspace name",
            s.create_workspace(&human(), NewWorkspace { name: NUL.into() })
                .map(drop),
        ),
        (
            "document title",
            s.create_document(&human(), new_doc(&ws, NUL)).map(drop),
        ),
        (
            "canvas title",
            s.create_canvas(&human(), new_canvas(&ws, NUL)).map(drop),
        ),
        (
            "actor id",
            s.create_workspace(&nul_actor, NewWorkspace { name: "w".into() })
                .map(drop),
        ),
        (
            "run error",
            s.update_workflow_run_status(fx.run, failed, Some(NUL.into()))
                .map(drop),
        ),
        (
            "execution error",
            s.update_workflow_node_execution_status(fx.exec, failed, None, Some(NUL.into()))
                .map(drop),
        ),
        ("wsid filter", s.list_ai_jobs(nul_wsid).map(drop)),
    ];
    for (what, block) in invalid_blocks(&fx.doc) {
        results.push((what, s.create_block(&human(), block).map(drop)));
    }
    let block_edits: [Edit<BlockUpdate>; 4] = [
        ("update raw_content", |u| u.raw_content = Some(NUL.into())),
        ("update display_content", |u| {
            u.display_content = Some(NUL.into())
        }),
        ("update kind", |u| u.kind = Some(NUL.into())),
        ("update sensitivity", |u| u.sensitivity = Some(NUL.into())),
    ];
    for (what, edit) in block_edits {
        let update = edited(BlockUpdate::default(), edit);
        results.push((
            what,
            s.update_block(&human(), "json-block", update).map(drop),
        ));
    }
    let one = || vec![node("a", 0.0, 0.0)];
    let graphs: Vec<(&str, Vec<NewCanvasNode>, Vec<NewCanvasEdge>)> = vec![
        (
            "node kind",
            vec![edited(node("k", 0.0, 0.0), |n| n.kind = NUL.into())],
            vec![],
        ),
        ("node id", vec![node(NUL, 0.0, 0.0)], vec![]),
        ("empty node id", vec![node("", 0.0, 0.0)], vec![]),
        (
            "edge kind",
            one(),
            vec![edited(edge("e", "a", "a"), |e| e.kind = NUL.into())],
        ),
        ("edge id", one(), vec![edge(NUL, "a", "a")]),
        ("empty edge id", one(), vec![edge("", "a", "a")]),
    ];
    for (what, nodes, edges) in graphs {
        results.push((
            what,
            s.update_canvas_graph(&human(), &fx.canvas, nodes, edges)
                .map(drop),
        ));
    }
    let job_edits: [Edit<NewAiJob>; 5] = [
        ("job status_reason", |j| j.status_reason = NUL.into()),
        ("job protocol_id", |j| j.protocol_id = NUL.into()),
        ("job profile_id", |j| j.profile_id = NUL.into()),
        ("entity ref id", |j| j.entity_refs[0].entity_id = NUL.into()),
        ("entity ref kind", |j| {
            j.entity_refs[0].entity_kind = NUL.into()
        }),
    ];
    for (what, edit) in job_edits {
        let job = edited(new_job(JobKind::DocEdit, vec![ws_ref("w")]), edit);
        results.push((what, s.create_ai_job(job).map(drop)));
    }
    let status_edits: [Edit<JobStatusUpdate>; 2] = [
        ("status update reason", |u| u.status_reason = NUL.into()),
        ("status update error", |u| {
            u.error_message = Some(NUL.into())
        }),
    ];
    for (what, edit) in status_edits {
        let update = edited(status_update(fx.job, failed), edit);
        results.push((what, s.update_ai_job_status(update).map(drop)));
    }
    let exec_edits: [Edit<NewNodeExecution>; 2] = [
        ("execution node_id", |e| e.node_id = NUL.into()),
        ("execution node_type", |e| e.node_type = NUL.into()),
    ];
    for (what, edit) in exec_edits {
        let exec = edited(new_exec(fx.run, "n", 5), edit);
        results.push((what, s.create_workflow_node_execution(exec).map(drop)));
    }
    assert_all_fail(results, "Validation");
    let after = (content_view(h, &ws), json_view(h, &fx));
    assert_eq!(after, before, "a refused write changed something");
}

pub fn error_nul_byte_in_json_is_validation(h: &Harness) {
    let with_nul = [
        ("NUL in a string value", json!({"k": NUL})),
        ("NUL in a key", json!({NUL: 1})),
        ("NUL deep in an array", json!([1, [2, {"x": ["ok", NUL]}]])),
        ("a NUL string alone", json!("\u{0}")),
    ];
    assert_json_refused(h, &fixture(h), &with_nul);
}

pub fn error_json_too_deep_is_validation(h: &Harness) {
    let fx = fixture(h);
    let too_deep = [
        ("101 nested arrays", deep_json(101)),
        ("101 nested objects", deep_object(101)),
        ("1000 nested arrays", deep_json(1_000)),
    ];
    assert_json_refused(h, &fx, &too_deep);
    // The limit itself is accepted.
    assert_json_roundtrips(h, &fx, &[deep_json(100), deep_object(100)]);
}

pub fn error_non_finite_position_is_validation(h: &Harness) {
    let canvas = seed_canvas(h);
    seed_graph(h, &canvas.id);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for (what, n) in [("x", node("bad", bad, 0.0)), ("y", node("bad", 0.0, bad))] {
            let nodes = vec![node("fine", 1.0, 1.0), n];
            let label = format!("{bad} as {what}");
            assert_graph_update_fails_unchanged(
                h,
                &canvas.id,
                &label,
                nodes,
                Vec::new(),
                "Validation",
            );
        }
    }
}

pub fn error_timestamp_out_of_range_is_validation(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let exec = add_exec(h, run.id, "n", 0);
    let s = h.store();
    let bad_times = [
        Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(0, 12, 31, 23, 59, 59).unwrap(),
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
    ];
    for at in bad_times {
        let list = |edit: fn(&mut AiJobListFilter, DateTime<Utc>)| {
            let mut filter = AiJobListFilter::default();
            edit(&mut filter, at);
            s.list_ai_jobs(filter).map(drop)
        };
        let cursor = AiJobCursor {
            created_at: at,
            job_id: Uuid::nil(),
        };
        let late_exec = edited(new_exec(run.id, "late", 1), |e| e.started_at = at);
        let results: Vec<(&str, StorageResult<()>)> = vec![
            ("heartbeat", s.heartbeat_workflow(run.id, at)),
            (
                "run heartbeat",
                s.create_workflow_run(job.job_id, JobState::Running, Some(at))
                    .map(drop),
            ),
            (
                "started_at",
                s.create_workflow_node_execution(late_exec).map(drop),
            ),
            ("from", list(|f, at| f.from = Some(at))),
            ("to", list(|f, at| f.to = Some(at))),
            (
                "cursor",
                s.list_ai_jobs(AiJobListFilter {
                    cursor: Some(cursor),
                    ..AiJobListFilter::default()
                })
                .map(drop),
            ),
            ("prune cutoff", s.prune_ai_jobs(at, 0, false).map(drop)),
            (
                "prune cutoff (dry run)",
                s.prune_ai_jobs(at, 0, true).map(drop),
            ),
        ];
        assert_all_fail(results, "Validation");
    }
    let row = s
        .update_workflow_run_status(run.id, JobState::Running, None)
        .expect("read run");
    assert_eq!(
        row.last_heartbeat, run.last_heartbeat,
        "heartbeat unchanged"
    );
    assert_eq!(execs(h, run.id), vec![exec], "no execution added");
    assert_eq!(all_jobs(h), vec![job], "no job removed");
    let stalled = s.find_stalled_workflows(u64::MAX).expect("huge threshold");
    assert!(stalled.is_empty());
}

pub fn error_corrupt_enum_in_row_is_serialization(h: &Harness) {
    let doc = seed_document(h);
    add_block(h, &doc.id, 0, Some("corrupt-block"));
    let ws = doc.workspace_id.clone();
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    add_exec(h, run.id, "n", 0);
    let s = h.store();
    // Every read of a row of `table`.
    let reads = |table: &str| -> Vec<(&'static str, StorageResult<()>)> {
        match table {
            "ai_jobs" => vec![
                ("get_ai_job", s.get_ai_job(job.job_id).map(drop)),
                (
                    "list_ai_jobs",
                    s.list_ai_jobs(AiJobListFilter::default()).map(drop),
                ),
            ],
            "workspaces" => vec![
                ("get_workspace", s.get_workspace(&ws).map(drop)),
                ("list_workspaces", s.list_workspaces().map(drop)),
            ],
            "blocks" => vec![
                ("get_block", s.get_block("corrupt-block").map(drop)),
                ("get_blocks", s.get_blocks(&doc.id).map(drop)),
            ],
            "workflow_node_executions" => vec![(
                "list_workflow_node_executions",
                s.list_workflow_node_executions(run.id).map(drop),
            )],
            other => unreachable!("no reads of {other}"),
        }
    };
    // (table, column, corrupt value, valid value)
    let corruptions = [
        ("ai_jobs", "status", "'bogus'", "'queued'"),
        ("ai_jobs", "job_kind", "'x'", "'doc_edit'"),
        ("ai_jobs", "access_mode", "'ALL'", "'analysis_only'"),
        ("ai_jobs", "safety_mode", "''", "'normal'"),
        ("ai_jobs", "metrics", "'\"nope\"'", "'{}'"),
        (
            "ai_jobs",
            "planned_operations",
            "'[{\"op_type\": \"delete\"}]'",
            "'[]'",
        ),
        ("workspaces", "last_actor_kind", "'ROBOT'", "'HUMAN'"),
        ("blocks", "last_actor_kind", "'human'", "'HUMAN'"),
        ("workflow_node_executions", "status", "'done'", "'running'"),
    ];
    for (table, column, bad, good) in corruptions {
        let set = |value: &str| {
            let sql = format!("UPDATE {table} SET {column} = {value}");
            assert_eq!(h.execute_sql(&sql).expect("raw update"), 1, "{sql}");
        };
        set(bad);
        for (what, result) in reads(table) {
            assert_fails(
                &format!("{what} with {column} = {bad}"),
                result,
                "Serialization",
            );
        }
        set(good);
        for (what, result) in reads(table) {
            result.unwrap_or_else(|e| panic!("{what} after restoring {column}: {e:?}"));
        }
    }
    assert_eq!(job_by(h, job.job_id), job, "restored row reads as before");
}

// ---------------------------------------------------------------------------
// Hostile input

/// 10 MiB of text mixing one- to four-byte UTF-8 sequences, quotes,
/// backslashes and SQL punctuation.
fn ten_mib_text() -> String {
    let piece = "héllo wörld 🌍 中文字 e\u{301} '\"\\ %_; -- ";
    piece.repeat((10 << 20) / piece.len() + 1)
}

/// Asserts that `read` is `expected`, without printing megabytes.
#[track_caller]
fn assert_same_text(what: &str, read: &str, expected: &str) {
    assert!(
        read == expected,
        "{what}: {} bytes went in, {} bytes came back different",
        expected.len(),
        read.len()
    );
}

/// 10 MiB of text round-trips exactly through every kind of text field:
/// content, names, titles, kinds, reasons, errors, actor ids and JSON
/// string values.
pub fn hostile_ten_mib_text_roundtrips_everywhere(h: &Harness) {
    let big = ten_mib_text();
    let s = h.store();
    let actor = WriteContext::human(Some(big.clone()));
    let ws = s
        .create_workspace(&actor, NewWorkspace { name: big.clone() })
        .expect("workspace with a 10 MiB name");
    let read_ws = s.get_workspace(&ws.id).expect("get").expect("some");
    assert_same_text("workspace name", &read_ws.name, &big);
    let actor_id = read_ws.provenance.actor_id.unwrap_or_default();
    assert_same_text("actor id", &actor_id, &big);
    let doc = s
        .create_document(&human(), new_doc(&ws.id, &big))
        .expect("document with a 10 MiB title");
    assert_same_text(
        "document title",
        &s.get_document(&doc.id).expect("doc").title,
        &big,
    );
    let block = NewBlock {
        kind: big.clone(),
        raw_content: big.clone(),
        sensitivity: Some(big.clone()),
        derived_content: Some(json!({ "text": big })),
        ..new_block(&doc.id, 1, Some("big"))
    };
    s.create_block(&human(), block).expect("10 MiB block");
    let read = s.get_block("big").expect("get big block");
    assert_same_text("block kind", &read.kind, &big);
    assert_same_text("raw_content", &read.raw_content, &big);
    assert_same_text("display_content (defaulted)", &read.display_content, &big);
    assert_same_text(
        "sensitivity",
        read.sensitivity.as_deref().unwrap_or(""),
        &big,
    );
    assert!(
        read.derived_content == json!({ "text": big }),
        "JSON string value"
    );
    let update = BlockUpdate {
        display_content: Some(big.to_uppercase()),
        ..BlockUpdate::default()
    };
    s.update_block(&human(), "big", update).expect("update");
    let read = s.get_block("big").expect("get again");
    assert_same_text(
        "updated display_content",
        &read.display_content,
        &big.to_uppercase(),
    );
    let canvas = s
        .create_canvas(&human(), new_canvas(&ws.id, &big))
        .expect("canvas with a 10 MiB title");
    let n = NewCanvasNode {
        kind: big.clone(),
        data: Some(json!([big])),
        ..node("n", 0.0, 0.0)
    };
    let e = NewCanvasEdge {
        kind: big.clone(),
        ..edge("e", "n", "n")
    };
    s.update_canvas_graph(&human(), &canvas.id, vec![n], vec![e])
        .expect("graph with 10 MiB kinds");
    let graph = graph_of(h, &canvas.id);
    assert_same_text("canvas title", &graph.canvas.title, &big);
    assert_same_text("node kind", &graph.nodes[0].kind, &big);
    assert!(graph.nodes[0].data == json!([big]), "node data");
    assert_same_text("edge kind", &graph.edges[0].kind, &big);
    let job = NewAiJob {
        protocol_id: big.clone(),
        status_reason: big.clone(),
        job_inputs: Some(json!({ big.clone(): 1 })),
        ..new_job(JobKind::DocEdit, Vec::new())
    };
    let job = s.create_ai_job(job).expect("job with 10 MiB text");
    let update = JobStatusUpdate {
        error_message: Some(big.clone()),
        job_outputs: Some(json!(big)),
        ..status_update(job.job_id, JobState::Failed)
    };
    s.update_ai_job_status(update).expect("status update");
    let read = job_by(h, job.job_id);
    assert_same_text("protocol_id", &read.protocol_id, &big);
    assert_same_text(
        "error_message",
        read.error_message.as_deref().unwrap_or(""),
        &big,
    );
    assert!(
        read.job_inputs == Some(json!({ big.clone(): 1 })),
        "JSON key"
    );
    assert!(read.job_outputs == Some(json!(big)), "JSON string");
    let run = add_run(h, job.job_id, JobState::Running);
    let run_read = s
        .update_workflow_run_status(run.id, JobState::Failed, Some(big.clone()))
        .expect("run error");
    assert_same_text(
        "run error",
        run_read.error_message.as_deref().unwrap_or(""),
        &big,
    );
    let exec = NewNodeExecution {
        node_id: big.clone(),
        node_type: big.clone(),
        ..new_exec(run.id, "x", 0)
    };
    let exec = s.create_workflow_node_execution(exec).expect("execution");
    s.update_workflow_node_execution_status(exec.id, JobState::Failed, None, Some(big.clone()))
        .expect("execution error");
    let read = exec_by(h, run.id, exec.id);
    assert_same_text("node_id", &read.node_id, &big);
    assert_same_text("node_type", &read.node_type, &big);
    assert_same_text(
        "execution error",
        read.error_message.as_deref().unwrap_or(""),
        &big,
    );
}

/// Incompressible text of exactly `len` bytes (compressible text would
/// hide PostgreSQL's index entry limit).
fn random_text(len: usize) -> String {
    let mut text = String::new();
    while text.len() < len {
        text.push_str(&Uuid::new_v4().simple().to_string());
    }
    text.truncate(len);
    text
}

/// Ids and entity refs are at most 1,024 bytes on every backend (longer is
/// `Validation`, nothing written); exactly 1,024 bytes round-trips.
pub fn hostile_ids_over_1_kib_are_validation(h: &Harness) {
    let fx = fixture(h);
    let ws = h.store().get_document(&fx.doc).expect("doc").workspace_id;
    let before = (content_view(h, &ws), all_jobs(h));
    let s = h.store();
    for long in [random_text(1_025), "é".repeat(513), random_text(10 << 20)] {
        let job_with_ref = |r: EntityRef| s.create_ai_job(new_job(JobKind::DocEdit, vec![r]));
        let results: Vec<(&str, StorageResult<()>)> = vec![
            (
                "block id",
                s.create_block(&human(), new_block(&fx.doc, 0, Some(&long)))
                    .map(drop),
            ),
            (
                "block id in replace_blocks",
                s.replace_blocks(&human(), &fx.doc, vec![new_block(&fx.doc, 0, Some(&long))])
                    .map(drop),
            ),
            (
                "block document_id",
                s.create_block(&human(), new_block(&long, 0, Some("b")))
                    .map(drop),
            ),
            (
                "document workspace_id",
                s.create_document(&human(), new_doc(&long, "t")).map(drop),
            ),
            (
                "canvas workspace_id",
                s.create_canvas(&human(), new_canvas(&long, "t")).map(drop),
            ),
            (
                "node id",
                s.update_canvas_graph(&human(), &fx.canvas, vec![node(&long, 0.0, 0.0)], vec![])
                    .map(drop),
            ),
            (
                "edge id",
                s.update_canvas_graph(
                    &human(),
                    &fx.canvas,
                    vec![node("a", 0.0, 0.0)],
                    vec![edge(&long, "a", "a")],
                )
                .map(drop),
            ),
            (
                "edge from_node_id",
                s.update_canvas_graph(
                    &human(),
                    &fx.canvas,
                    vec![node("a", 0.0, 0.0)],
                    vec![edge("e", &long, "a")],
                )
                .map(drop),
            ),
            ("entity ref id", job_with_ref(ws_ref(&long)).map(drop)),
            (
                "entity ref kind",
                job_with_ref(EntityRef {
                    entity_id: "w".into(),
                    entity_kind: long.clone(),
                })
                .map(drop),
            ),
        ];
        assert_all_fail(results, "Validation");
        // A lookup by a long id simply finds nothing.
        expect_kind(s.get_block(&long), "NotFound");
        assert!(s.get_workspace(&long).expect("lookup").is_none());
    }
    assert_eq!(
        (content_view(h, &ws), all_jobs(h)),
        before,
        "nothing written"
    );
    // The limit itself is accepted everywhere.
    let id = random_text(1_024);
    let block = s
        .create_block(&human(), new_block(&fx.doc, 0, Some(&id)))
        .expect("1 KiB block id");
    assert_eq!(s.get_block(&id).expect("get"), block);
    let other = random_text(1_024);
    let written = s
        .update_canvas_graph(
            &human(),
            &fx.canvas,
            vec![node(&id, 0.0, 0.0), node(&other, 1.0, 1.0)],
            vec![edge(&id, &id, &other)],
        )
        .expect("1 KiB node and edge ids");
    assert_eq!(graph_of(h, &fx.canvas), written);
    let job = s
        .create_ai_job(new_job(
            JobKind::DocEdit,
            vec![EntityRef {
                entity_id: id.clone(),
                entity_kind: random_text(1_024),
            }],
        ))
        .expect("1 KiB entity ref");
    assert_eq!(job_by(h, job.job_id), job);
}

/// Builds one hostile JSON value afresh (such values are never cloned).
type DeepBuilder = fn() -> Value;

/// JSON nested 10,000 and 100,000 levels (a recursive drop of the latter
/// overflows a thread's stack) is refused with `Validation` through every
/// JSON channel, with nothing written and no stack overflow: the store
/// never drops such a value recursively. The case never clones or drops
/// one either; each attempt builds its own and hands it over.
pub fn hostile_json_nested_100000_levels_is_validation(h: &Harness) {
    let fx = fixture(h);
    let before = json_view(h, &fx);
    let builders: [(&str, DeepBuilder); 4] = [
        ("10,000 nested arrays", || deep_json(10_000)),
        ("10,000 nested objects", || deep_object(10_000)),
        ("100,000 nested arrays", || deep_json(100_000)),
        ("100,000 nested objects", || deep_object(100_000)),
    ];
    for channel in JSON_CHANNELS {
        for (what, build) in builders {
            let result = json_write(h, &fx, channel, build()).map(drop);
            assert_fails(&format!("{what} through {channel}"), result, "Validation");
        }
    }
    let s = h.store();
    for (what, build) in builders {
        // A deep value behind an item refused for another reason, and in
        // a write the guard would refuse: too-deep JSON is refused first.
        let items = vec![
            new_block(&fx.doc, 0, Some(NUL)),
            edited(new_block(&fx.doc, 1, None), |b| {
                b.derived_content = Some(build())
            }),
        ];
        let result = s.replace_blocks(&human(), &fx.doc, items).map(drop);
        assert_fails(&format!("{what} after a NUL id"), result, "Validation");
        let nodes = vec![
            node(NUL, 0.0, 0.0),
            edited(node("deep", 0.0, 0.0), |n| n.data = Some(build())),
        ];
        let result = s
            .update_canvas_graph(&human(), &fx.canvas, nodes, Vec::new())
            .map(drop);
        assert_fails(&format!("{what} after a NUL node id"), result, "Validation");
        let silent = &silent_ai_contexts()[0];
        let block = edited(new_block(&fx.doc, 1, None), |b| {
            b.derived_content = Some(build())
        });
        let result = s.create_block(silent, block).map(drop);
        // The guard's verdict comes first; the deep value is still taken
        // apart without recursion.
        assert!(
            matches!(&result, Err(StorageError::Guard(m)) if m.contains("HSK-403-SILENT-EDIT")),
            "{what} in a silent AI edit: expected the guard, got {result:?}"
        );
    }
    assert_eq!(
        json_view(h, &fx),
        before,
        "a refused JSON write changed something"
    );
}

/// Every JSON column a case can damage, with the call that reads it.
const JSON_COLUMNS: [(&str, &str); 4] = [
    ("blocks", "derived_content"),
    ("canvas_nodes", "data"),
    ("ai_jobs", "job_inputs"),
    ("workflow_node_executions", "input_payload"),
];

/// Reads the one row of `table` that [`fixture`] (plus one node) holds.
fn read_json_column(h: &Harness, fx: &Fixture, table: &str) -> StorageResult<Value> {
    let s = h.store();
    Ok(match table {
        "blocks" => s.get_block("json-block")?.derived_content,
        "canvas_nodes" => s.get_canvas_with_graph(&fx.canvas)?.nodes.remove(0).data,
        "ai_jobs" => s.get_ai_job(fx.job)?.job_inputs.unwrap_or(Value::Null),
        "workflow_node_executions" => s
            .list_workflow_node_executions(fx.run)?
            .remove(0)
            .input_payload
            .unwrap_or(Value::Null),
        other => unreachable!("no JSON column in {other}"),
    })
}

/// A fixture whose JSON columns each hold one row.
fn json_fixture(h: &Harness) -> Fixture {
    let fx = fixture(h);
    h.store()
        .update_canvas_graph(&human(), &fx.canvas, vec![node("n", 0.0, 0.0)], vec![])
        .expect("one node");
    fx
}

/// Writes `json_text` (SQL-quoted) into every JSON column by raw SQL.
fn plant_json(h: &Harness, json_text: &str) {
    let literal = json_text.replace('\'', "''");
    for (table, column) in JSON_COLUMNS {
        let sql = format!("UPDATE {table} SET {column} = '{literal}'");
        assert_eq!(
            h.execute_sql(&sql).expect("plant JSON"),
            1,
            "{table}.{column}"
        );
    }
}

/// JSON nested deeper than the JSON reader allows (200 and 10,000 levels),
/// planted in the database by raw SQL, reads back as `Serialization` on
/// every backend, never a crash; a repaired row reads again.
pub fn hostile_deep_json_in_row_is_serialization(h: &Harness) {
    let fx = json_fixture(h);
    for depth in [200, 10_000] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            plant_json(h, &text);
            for (table, _) in JSON_COLUMNS {
                let result = read_json_column(h, &fx, table).map(drop);
                assert_fails(
                    &format!("{depth} levels in {table}"),
                    result,
                    "Serialization",
                );
            }
        }
    }
    plant_json(h, "{\"ok\": [1]}");
    for (table, _) in JSON_COLUMNS {
        let read = read_json_column(h, &fx, table).expect("repaired row");
        assert_eq!(read, json!({"ok": [1]}), "{table}");
    }
}

/// JSON numbers beyond i64/u64 planted in the database: an integer too big
/// for 64 bits reads as the nearest `f64`, a number beyond `f64`'s range
/// is `Serialization`, one below its smallest magnitude reads as 0.0; the
/// same on every backend.
pub fn hostile_json_numbers_beyond_64_bits_in_row(h: &Harness) {
    let fx = json_fixture(h);
    let readable = [
        (
            "123456789012345678901234567890",
            json!(1.2345678901234568e29),
        ),
        (
            "-123456789012345678901234567890",
            json!(-1.2345678901234568e29),
        ),
        ("[18446744073709551616]", json!([18446744073709551616.0])),
        ("1e-400", json!(0.0)),
    ];
    for (text, expected) in readable {
        plant_json(h, text);
        for (table, _) in JSON_COLUMNS {
            let read = read_json_column(h, &fx, table)
                .unwrap_or_else(|e| panic!("{text} in {table}: {e:?}"));
            assert_eq!(read, expected, "{text} in {table}");
        }
    }
    for text in ["1e400", "[-1e400]", "{\"n\": 1e309}"] {
        plant_json(h, text);
        for (table, _) in JSON_COLUMNS {
            let result = read_json_column(h, &fx, table).map(drop);
            assert_fails(&format!("{text} in {table}"), result, "Serialization");
        }
    }
}

/// Ids, names and filters full of SQL and pattern metacharacters.
const METACHARACTER_IDS: [&str; 16] = [
    "'",
    "''",
    "\"",
    "%",
    "_",
    "\\",
    "\\%",
    "a%",
    "a_c",
    "abc",
    "'; DROP TABLE blocks; --",
    "\" OR 1=1 --",
    "NULL",
    "$1",
    "e\u{301} 😀 \u{202e}",
    " ",
];

/// Ids with quotes, percent signs, underscores, backslashes and SQL
/// keywords round-trip exactly and match only themselves (no `LIKE`
/// leakage, no injection), in lookups, deletes and the `wsid` filter.
pub fn hostile_metacharacter_ids_match_only_themselves(h: &Harness) {
    let doc = seed_document(h);
    let s = h.store();
    for id in METACHARACTER_IDS {
        let block = add_block(h, &doc.id, 0, Some(id));
        assert_eq!(block.id, id);
        assert_eq!(s.get_block(id).expect("get").id, id);
    }
    assert_eq!(blocks_of(h, &doc.id).len(), METACHARACTER_IDS.len());
    for absent in ["%%", "a", "ab", "\\\\", "' OR '1'='1", "*", "."] {
        expect_kind(s.get_block(absent), "NotFound");
        expect_kind(s.delete_block(&human(), absent), "NotFound");
    }
    s.delete_block(&human(), "%").expect("delete %");
    s.delete_block(&human(), "_").expect("delete _");
    let left: BTreeSet<String> = blocks_of(h, &doc.id).into_iter().map(|b| b.id).collect();
    let expected: BTreeSet<String> = METACHARACTER_IDS
        .iter()
        .filter(|id| !["%", "_"].contains(id))
        .map(|id| id.to_string())
        .collect();
    assert_eq!(left, expected, "a delete removed only its own id");
    let canvas = seed_canvas_in(h, &doc.workspace_id, "'; DROP TABLE canvases; --");
    let nodes = METACHARACTER_IDS
        .iter()
        .map(|id| node(id, 0.0, 0.0))
        .collect();
    let edges = METACHARACTER_IDS
        .iter()
        .map(|id| edge(id, id, "%"))
        .collect();
    let written = s
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("graph with metacharacter ids");
    let mut expected: Vec<&str> = METACHARACTER_IDS.to_vec();
    expected.sort_unstable();
    assert_eq!(node_ids(&written), expected);
    assert_eq!(graph_of(h, &canvas.id), written);
    let jobs: Vec<AiJob> = METACHARACTER_IDS
        .iter()
        .map(|id| {
            s.create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref(id)]))
                .expect("job")
        })
        .collect();
    for (id, job) in METACHARACTER_IDS.iter().zip(&jobs) {
        let filter = AiJobListFilter {
            wsid: Some(id.to_string()),
            ..AiJobListFilter::default()
        };
        let found = job_ids(&s.list_ai_jobs(filter).expect("list by wsid"));
        assert_eq!(found, vec![job.job_id], "wsid {id:?} matched other ids");
    }
    for name in METACHARACTER_IDS.iter().filter(|n| !n.trim().is_empty()) {
        let ws = seed_workspace_named(h, name);
        assert_eq!(
            s.get_workspace(&ws.id).expect("get").expect("some").name,
            *name
        );
    }
    assert!(s.list_workspaces().expect("tables still there").len() > 1);
}

/// Empty and blank ids: an empty id given to a write is `Validation`; a
/// blank one is an id like any other (exact, distinct from other blanks);
/// an empty id in a lookup finds nothing.
pub fn hostile_empty_and_blank_ids(h: &Harness) {
    let doc = seed_document(h);
    let ws = doc.workspace_id.clone();
    let canvas = seed_canvas_in(h, &ws, "c");
    let before = content_view(h, &ws);
    let s = h.store();
    let results: Vec<(&str, StorageResult<()>)> = vec![
        (
            "block id",
            s.create_block(&human(), new_block(&doc.id, 0, Some("")))
                .map(drop),
        ),
        (
            "block document_id",
            s.create_block(&human(), new_block("", 0, None)).map(drop),
        ),
        (
            "document workspace_id",
            s.create_document(&human(), new_doc("", "t")).map(drop),
        ),
        (
            "canvas workspace_id",
            s.create_canvas(&human(), new_canvas("", "t")).map(drop),
        ),
        (
            "edge from_node_id",
            s.update_canvas_graph(
                &human(),
                &canvas.id,
                vec![node("a", 0.0, 0.0)],
                vec![edge("e", "", "a")],
            )
            .map(drop),
        ),
        (
            "edge to_node_id",
            s.update_canvas_graph(
                &human(),
                &canvas.id,
                vec![node("a", 0.0, 0.0)],
                vec![edge("e", "a", "")],
            )
            .map(drop),
        ),
    ];
    assert_all_fail(results, "Validation");
    assert_eq!(content_view(h, &ws), before, "nothing written");
    assert!(s.get_workspace("").expect("lookup").is_none());
    expect_kind(s.get_document(""), "NotFound");
    expect_kind(s.get_block(""), "NotFound");
    expect_kind(s.get_canvas_with_graph(""), "NotFound");
    assert!(s.list_documents("").expect("list").is_empty());
    assert!(s.get_blocks("").expect("list").is_empty());
    assert!(s.list_canvases("").expect("list").is_empty());
    expect_kind(s.delete_block(&human(), ""), "NotFound");
    expect_kind(s.delete_workspace(&human(), ""), "NotFound");
    let blanks = [" ", "  ", "\t", "\n", "\u{a0}"];
    for id in blanks {
        add_block(h, &doc.id, 0, Some(id));
    }
    for id in blanks {
        assert_eq!(s.get_block(id).expect("blank id").id, id);
    }
    let nodes = blanks.iter().map(|id| node(id, 0.0, 0.0)).collect();
    let written = s
        .update_canvas_graph(&human(), &canvas.id, nodes, vec![edge(" ", " ", "  ")])
        .expect("blank node ids");
    assert_eq!(written.nodes.len(), blanks.len());
    assert_eq!(graph_of(h, &canvas.id), written);
    // Empty text that is not an id (entity refs, actor ids, execution node
    // ids) is stored and matched exactly.
    let empty_ref = EntityRef {
        entity_id: String::new(),
        entity_kind: String::new(),
    };
    let jobs = [
        s.create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref("")]))
            .expect("empty workspace ref"),
        s.create_ai_job(new_job(JobKind::DocEdit, vec![empty_ref]))
            .expect("empty entity ref"),
        s.create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref(" ")]))
            .expect("blank workspace ref"),
    ];
    for job in &jobs {
        assert_eq!(&job_by(h, job.job_id), job);
    }
    let by_wsid = |wsid: &str| {
        let filter = AiJobListFilter {
            wsid: Some(wsid.into()),
            ..AiJobListFilter::default()
        };
        job_ids(&s.list_ai_jobs(filter).expect("list by wsid"))
    };
    assert_eq!(by_wsid(""), vec![jobs[0].job_id]);
    assert_eq!(by_wsid(" "), vec![jobs[2].job_id]);
    let empty_actor = WriteContext::human(Some(String::new()));
    let ws = s
        .create_workspace(&empty_actor, NewWorkspace { name: "w".into() })
        .expect("empty actor id");
    let read = s.get_workspace(&ws.id).expect("get").expect("some");
    assert_eq!(read.provenance.actor_id.as_deref(), Some(""));
    let run = add_run(h, jobs[0].job_id, JobState::Running);
    let exec = add_exec(h, run.id, "", 0);
    assert_eq!(execs(h, run.id), vec![exec]);
}

/// Corrupt enum strings in the columns the first corruption case leaves
/// out: every read of the row is `Serialization`, and restoring the value
/// makes it readable again.
pub fn hostile_corrupt_enum_in_every_column_is_serialization(h: &Harness) {
    let doc = seed_document(h);
    let ws = doc.workspace_id.clone();
    add_block(h, &doc.id, 0, Some("b"));
    let canvas = seed_canvas_in(h, &ws, "c");
    seed_graph(h, &canvas.id);
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    h.store()
        .heartbeat_workflow(run.id, Utc::now() - Duration::hours(1))
        .expect("old heartbeat");
    let s = h.store();
    let reads = |table: &str| -> Vec<(&'static str, StorageResult<()>)> {
        match table {
            "documents" => vec![
                ("get_document", s.get_document(&doc.id).map(drop)),
                ("list_documents", s.list_documents(&ws).map(drop)),
            ],
            "canvases" => vec![
                (
                    "get_canvas_with_graph",
                    s.get_canvas_with_graph(&canvas.id).map(drop),
                ),
                ("list_canvases", s.list_canvases(&ws).map(drop)),
            ],
            "canvas_nodes" | "canvas_edges" => vec![(
                "get_canvas_with_graph",
                s.get_canvas_with_graph(&canvas.id).map(drop),
            )],
            other => unreachable!("no reads of {other}"),
        }
    };
    // (table, column, corrupt value, valid value, rows)
    let corruptions = [
        ("documents", "last_actor_kind", "'Human'", "'HUMAN'", 1),
        ("canvases", "last_actor_kind", "'system '", "'HUMAN'", 1),
        ("canvas_nodes", "last_actor_kind", "'AGENT'", "'HUMAN'", 3),
        ("canvas_edges", "last_actor_kind", "''", "'HUMAN'", 2),
    ];
    for (table, column, bad, good, rows) in corruptions {
        let set = |value: &str| {
            let sql = format!("UPDATE {table} SET {column} = {value}");
            assert_eq!(h.execute_sql(&sql).expect("raw update"), rows, "{sql}");
        };
        set(bad);
        for (what, result) in reads(table) {
            assert_fails(
                &format!("{what} with {table}.{column} = {bad}"),
                result,
                "Serialization",
            );
        }
        set(good);
        for (what, result) in reads(table) {
            result.unwrap_or_else(|e| panic!("{what} after restoring {table}.{column}: {e:?}"));
        }
    }
    // No call reads a run without writing it: a run whose status is not
    // ours is not `running`, so it is never stalled, and a status update
    // overwrites it.
    let sql = "UPDATE workflow_runs SET status = 'RUNNING'";
    assert_eq!(h.execute_sql(sql).expect("raw update"), 1);
    assert!(s.find_stalled_workflows(1).expect("stalled").is_empty());
    let repaired = s
        .update_workflow_run_status(run.id, JobState::Running, None)
        .expect("status update over a corrupt status");
    assert_eq!(repaired.status, JobState::Running);
    assert_eq!(
        s.find_stalled_workflows(1).expect("stalled"),
        vec![repaired]
    );
}

/// Extreme thresholds, cutoffs and filters give sane answers, never a
/// panic or an overflow: a stall threshold reaching before year 1 finds
/// nothing, 0 finds every running run with a past heartbeat; a cutoff in
/// the future prunes every eligible job, one in year 1 none; `min_versions`
/// of `u32::MAX` spares them all; `from > to` and `limit 0` list nothing.
pub fn hostile_extreme_thresholds_cutoffs_and_filters(h: &Harness) {
    let s = h.store();
    let job = add_job(h);
    let ancient = add_run(h, job.job_id, JobState::Running);
    let year_one = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
    s.heartbeat_workflow(ancient.id, year_one)
        .expect("heartbeat");
    let recent = add_run(h, job.job_id, JobState::Running);
    s.heartbeat_workflow(recent.id, Utc::now() - Duration::hours(1))
        .expect("heartbeat");
    let stalled = |threshold: u64| -> Vec<Uuid> {
        s.find_stalled_workflows(threshold)
            .unwrap_or_else(|e| panic!("threshold {threshold}: {e:?}"))
            .iter()
            .map(|r| r.id)
            .collect()
    };
    let since_year_one = (Utc::now() - year_one).num_seconds() as u64;
    assert_eq!(stalled(0), vec![ancient.id, recent.id]);
    assert_eq!(stalled(2 * 3_600), vec![ancient.id]);
    assert_eq!(stalled(since_year_one - 3_600), vec![ancient.id]);
    for huge in [
        since_year_one + 3_600,
        i64::MAX as u64,
        i64::MAX as u64 + 1,
        u64::MAX,
    ] {
        assert!(stalled(huge).is_empty(), "threshold {huge}");
    }

    use JobState::*;
    let jobs = seed_jobs(
        h,
        &[
            (Completed, false),
            (Failed, false),
            (Completed, true),
            (Running, false),
        ],
    );
    let all = all_jobs(h);
    let far_future = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    for cutoff in [year_one, Utc::now() - Duration::days(365 * 1000)] {
        for dry_run in [true, false] {
            let report = prune(h, cutoff, 0, dry_run);
            assert_eq!(report.items_pruned, 0, "cutoff {cutoff}");
        }
        assert_eq!(all_jobs(h), all, "an old cutoff prunes nothing");
    }
    for dry_run in [true, false] {
        let report = prune(h, far_future, u32::MAX, dry_run);
        assert_eq!((report.items_pruned, report.items_spared_window), (0, 2));
    }
    assert_eq!(all_jobs(h), all, "u32::MAX min_versions prunes nothing");
    let dry = prune(h, far_future, 0, true);
    let real = prune(h, Utc::now() + Duration::days(1), 0, false);
    assert_eq!(
        counts(&dry),
        counts(&real),
        "dry run reports what a run does"
    );
    assert_eq!(real.items_pruned, 2);
    let kept: BTreeSet<Uuid> = job_ids(&all_jobs(h)).into_iter().collect();
    let expected: BTreeSet<Uuid> = [job.job_id, jobs[2].job_id, jobs[3].job_id].into();
    assert_eq!(
        kept, expected,
        "the pinned and the running job and the first job remain"
    );

    let now = Utc::now();
    let list = |filter: AiJobListFilter| s.list_ai_jobs(filter).expect("list");
    let window = |from, to| AiJobListFilter {
        from: Some(from),
        to: Some(to),
        ..AiJobListFilter::default()
    };
    assert!(list(window(now + Duration::days(1), now - Duration::days(1))).is_empty());
    assert!(list(window(far_future, year_one)).is_empty());
    assert!(list(window(now, now)).is_empty(), "an empty window");
    assert_eq!(list(window(year_one, far_future)).len(), 3);
    let limited = |limit| AiJobListFilter {
        limit: Some(limit),
        ..AiJobListFilter::default()
    };
    assert!(list(limited(0)).is_empty(), "limit 0");
    assert_eq!(list(limited(u32::MAX)).len(), 3);
}

// ---------------------------------------------------------------------------
// Ordering

pub fn ordering_text_ids_are_bytewise(h: &Harness) {
    let ids = [
        "b", "B", "a", "_", "é", "Z", "aa", "a b", "A", "0", "~", "ä", "😀", "Ω", "a-", "ab",
    ];
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();
    let doc = seed_document(h);
    let blocks: Vec<NewBlock> = ids
        .iter()
        .map(|id| new_block(&doc.id, 0, Some(id)))
        .collect();
    let returned = h
        .store()
        .replace_blocks(&human(), &doc.id, blocks)
        .expect("replace blocks");
    let returned_ids: Vec<&str> = returned.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(returned_ids, expected, "replace_blocks result order");
    let read = blocks_of(h, &doc.id);
    assert_eq!(
        read.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        expected,
        "get_blocks order"
    );
    let canvas = seed_canvas_in(h, &doc.workspace_id, "ids");
    let nodes = ids.iter().map(|id| node(id, 0.0, 0.0)).collect();
    let edges = ids.iter().map(|id| edge(id, id, "b")).collect();
    let written = h
        .store()
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("graph with text ids");
    let graph = graph_of(h, &canvas.id);
    assert_eq!(graph, written);
    assert_eq!(node_ids(&graph), expected, "node order");
    assert_eq!(edge_ids(&graph), expected, "edge order");
}

// ---------------------------------------------------------------------------
// Concurrency

const THREADS: usize = 8;
const WRITES_PER_THREAD: usize = 25;

/// One writer's share: blocks `t{thread}-{i}` created then updated, and one
/// job per write taken to `Completed`. Every call must succeed.
fn concurrent_writer(store: &dyn Storage, doc: &str, thread: usize) -> Vec<Uuid> {
    (0..WRITES_PER_THREAD)
        .map(|i| {
            let id = format!("t{thread}-{i:02}");
            let seq = (thread * WRITES_PER_THREAD + i) as i64;
            store
                .create_block(&human(), new_block(doc, seq, Some(&id)))
                .unwrap_or_else(|e| panic!("create_block {id}: {e}"));
            let update = BlockUpdate {
                raw_content: Some(format!("updated {id}")),
                ..BlockUpdate::default()
            };
            store
                .update_block(&ai_ctx(), &id, update)
                .unwrap_or_else(|e| panic!("update_block {id}: {e}"));
            let job = store
                .create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref(&id)]))
                .unwrap_or_else(|e| panic!("create_ai_job {id}: {e}"));
            store
                .update_ai_job_status(status_update(job.job_id, JobState::Completed))
                .unwrap_or_else(|e| panic!("update_ai_job_status {id}: {e}"));
            job.job_id
        })
        .collect()
}

pub fn concurrent_writers_lose_nothing(h: &Harness) {
    let doc = seed_document(h);
    let store = h.shared_store();
    let mut written: Vec<Uuid> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = std::sync::Arc::clone(&store);
                let doc = doc.id.clone();
                scope.spawn(move || concurrent_writer(&*store, &doc, t))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("writer thread panicked"))
            .collect()
    });
    let blocks = blocks_of(h, &doc.id);
    assert_eq!(
        blocks.len(),
        THREADS * WRITES_PER_THREAD,
        "every block present"
    );
    for (n, block) in blocks.iter().enumerate() {
        let (t, i) = (n / WRITES_PER_THREAD, n % WRITES_PER_THREAD);
        assert_eq!(block.id, format!("t{t}-{i:02}"));
        assert_eq!(
            block.raw_content,
            format!("updated {}", block.id),
            "update kept"
        );
        assert_eq!(block.provenance.actor_kind, WriteActorKind::Ai);
    }
    let jobs = all_jobs(h);
    assert!(
        jobs.iter().all(|j| j.state == JobState::Completed),
        "every job completed"
    );
    let mut listed = job_ids(&jobs);
    listed.sort();
    written.sort();
    assert_eq!(listed, written, "every job present once");
}

/// The list of every case; `CASES` and `conformance_tests!` expand from it.
#[doc(hidden)]
#[macro_export]
macro_rules! __hsk_cases {
    ($($mode:tt)*) => {
        $crate::__hsk_emit! { $($mode)* ;
            health_backend_and_ping,
            migrations_status_all_applied,
            migrations_rerun_is_noop,
            migrations_revert_all_then_up_again,
            migrations_entity_refs_revert_and_reapply_with_jobs,
            jobs_wsid_filter_finds_jobs_created_after_migration,
            schema_parity_columns_and_nullability,
            reopen_sees_same_data,
            workspace_create_get_list_ordered,
            workspace_get_missing_is_none,
            workspace_delete_missing_is_not_found,
            workspace_blank_name_is_validation,
            document_create_get_list_ordered,
            document_get_missing_is_not_found,
            document_missing_workspace_is_validation,
            document_blank_title_is_validation,
            document_delete_removes_blocks,
            block_create_defaults,
            block_create_keeps_given_values,
            block_get_blocks_ordered_by_sequence_then_id,
            block_update_changes_fields_and_provenance,
            block_update_missing_is_not_found,
            block_delete_and_delete_missing,
            block_duplicate_id_is_conflict,
            block_missing_document_is_validation,
            replace_blocks_replaces_all,
            replace_blocks_duplicate_id_changes_nothing,
            replace_blocks_invalid_item_changes_nothing,
            replace_blocks_missing_document_is_not_found,
            replace_blocks_bulk_spans_statement_chunks,
            canvas_create_list_and_get_graph,
            canvas_update_graph_replaces_graph,
            canvas_update_graph_dangling_edge_changes_nothing,
            canvas_update_graph_duplicate_node_changes_nothing,
            canvas_update_graph_bulk_spans_statement_chunks,
            canvas_get_missing_is_not_found,
            canvas_delete_removes_graph,
            canvas_blank_title_and_missing_workspace_are_validation,
            cascade_delete_workspace_removes_everything,
            cascade_delete_run_removes_executions,
            guard_refuses_silent_ai_edits_and_writes_nothing,
            guard_records_ai_provenance,
            guard_validate_write_metadata,
            provenance_human_and_system_writes,
            ai_job_create_and_get_with_defaults,
            ai_job_get_missing_is_not_found,
            ai_job_update_status,
            ai_job_set_outputs_and_pinned,
            ai_job_missing_targets_are_not_found,
            ai_job_list_filters,
            ai_job_list_order_and_cursor_paging,
            ai_job_date_filters_are_typed,
            workflow_run_lifecycle,
            workflow_missing_parents_are_validation,
            workflow_node_executions_ordered_by_sequence,
            workflow_node_execution_status_sets_finished_at,
            workflow_stalled_detection,
            prune_respects_state_cutoff_and_pinned,
            prune_keeps_min_versions,
            prune_dry_run_changes_nothing,
            prune_cascades_runs_and_executions,
            roundtrip_f64_positions,
            roundtrip_i64_sequence_extremes,
            roundtrip_json_shapes,
            roundtrip_large_unicode_text,
            roundtrip_timestamps_microseconds,
            error_nul_byte_in_text_is_validation,
            error_nul_byte_in_id_arguments_is_validation,
            error_nul_byte_in_json_is_validation,
            error_json_too_deep_is_validation,
            error_non_finite_position_is_validation,
            error_timestamp_out_of_range_is_validation,
            error_corrupt_enum_in_row_is_serialization,
            hostile_ten_mib_text_roundtrips_everywhere,
            hostile_ids_over_1_kib_are_validation,
            hostile_json_nested_100000_levels_is_validation,
            hostile_deep_json_in_row_is_serialization,
            hostile_json_numbers_beyond_64_bits_in_row,
            hostile_metacharacter_ids_match_only_themselves,
            hostile_empty_and_blank_ids,
            hostile_corrupt_enum_in_every_column_is_serialization,
            hostile_extreme_thresholds_cutoffs_and_filters,
            ordering_text_ids_are_bytewise,
            concurrent_writers_lose_nothing,
            concurrent_replace_blocks_last_writer_wins_whole,
            contract_job_kinds_model_run_media_downloader_loom_preview,
            contract_job_kind_legacy_term_exec_reads_as_terminal_exec,
            contract_job_micro_task_kind_needs_its_profile_and_protocol,
            contract_job_micro_task_profile_or_protocol_needs_its_kind,
            contract_job_media_downloader_needs_a_media_protocol,
            contract_job_loom_preview_kind_needs_its_protocol,
            contract_job_loom_preview_protocol_needs_its_kind,
            contract_node_execution_stalled_sets_finished_at,
            contract_node_execution_none_error_message_keeps_stored,
            contract_ai_job_none_error_message_keeps_stored,
            contract_prune_min_versions_counts_recent_jobs,
            contract_new_ids_are_v7_and_v4_ids_keep_working,
            contract_schema_fingerprint_matches_committed,
            contract_migration_version_is_newest_applied,
            contract_migrations_replay_keeps_schema_and_data,
        }
    };
}
