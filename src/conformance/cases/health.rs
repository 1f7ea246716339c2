//! Health, migrations (run, rerun, revert and reapply) and the schema
//! every migration leaves, compared column by column.

#[allow(unused_imports)]
use super::*;

/// The columns every migration creates, per table, in migration order; a
/// trailing `?` marks a nullable column (one without NOT NULL).
pub(super) const EXPECTED_COLUMNS: &[(&str, &str)] = &[
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
        "job_id position entity_id entity_kind created_at",
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
    (
        "kernel_events",
        "event_sequence event_id event_version kernel_task_run_id session_run_id \
         aggregate_type aggregate_id idempotency_key event_type actor_kind actor_id \
         causation_id? correlation_id? source_component payload payload_hash created_at",
    ),
    (
        "kernel_session_runs",
        "session_run_id kernel_task_run_id adapter_id state claimed_by? lease_expires_at? \
         attempt_count available_at created_at updated_at",
    ),
    (
        "kernel_session_claims",
        "session_run_id attempt claimed_by claimed_at lease_expires_at ended_at? outcome?",
    ),
];

/// [`EXPECTED_COLUMNS`] as sorted `Column`s, as `Harness::columns` returns.
pub(super) fn expected_columns() -> Vec<Column> {
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

pub(super) const MIGRATION_VERSIONS: [&str; 6] = [
    "20261124000001",
    "20261124000002",
    "20261124000003",
    "20261203000001",
    "20261203000002",
    "20261204000001",
];

/// Reverts migrations, newest first, until the `entity_refs` migration
/// (000003) is undone.
#[track_caller]
pub(super) fn revert_through_entity_refs(h: &Harness) {
    while h.store().migration_version().expect("migration version") > Some(20261124000002) {
        h.revert_last_migration()
            .expect("revert down to the entity_refs migration");
    }
}

#[track_caller]
pub(super) fn assert_all_applied(h: &Harness) {
    let status = h.store().migration_status().expect("migration status");
    assert_eq!(status.backend, h.backend());
    assert_eq!(status.applied, MIGRATION_VERSIONS.to_vec());
    assert!(status.pending.is_empty(), "pending: {:?}", status.pending);
}

// ---------------------------------------------------------------------------
// Health, migrations, schema

/// `backend()` names the harness's backend and `ping` answers.
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

/// A fresh store has every migration applied and none pending.
pub fn migrations_status_all_applied(h: &Harness) {
    assert_all_applied(h);
}

/// Running the migrations again changes neither the status nor the data.
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

/// Reverting every migration leaves no table; migrating up again restores the
/// same columns.
pub fn migrations_revert_all_then_up_again(h: &Harness) {
    let columns_before = h.columns().expect("columns");
    assert!(!columns_before.is_empty());
    assert_eq!(
        h.revert_all_migrations().expect("revert all"),
        MIGRATION_VERSIONS.len()
    );
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
pub(super) fn seed_ref_jobs(h: &Harness) -> Vec<AiJob> {
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

pub(super) fn jobs_in_workspace(h: &Harness, wsid: &str) -> Vec<Uuid> {
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

pub(super) fn sorted_ids(jobs: &[&AiJob]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = jobs.iter().map(|j| j.job_id).collect();
    ids.sort();
    ids
}

/// Reverting the `entity_refs` migration with jobs present and applying it
/// again rebuilds every job's refs, in order, from `ai_job_entity_refs`.
pub fn migrations_entity_refs_revert_and_reapply_with_jobs(h: &Harness) {
    let jobs = seed_ref_jobs(h);
    revert_through_entity_refs(h);
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
    assert_eq!(
        h.revert_all_migrations().expect("revert all"),
        MIGRATION_VERSIONS.len()
    );
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
    revert_through_entity_refs(h);
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
    assert_eq!(tables.len(), EXPECTED_COLUMNS.len(), "tables: {tables:?}");
    for column in &expected {
        assert!(actual.contains(column), "missing or different: {column:?}");
    }
    for column in &actual {
        assert!(expected.contains(column), "unexpected: {column:?}");
    }
    assert_eq!(actual, expected);
    assert_keys_indexes_and_triggers_portable(h);
}

/// A second store opened on the same database sees the same data.
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
