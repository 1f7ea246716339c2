//! Cases for Handshake's current storage contract (see
//! docs/handshake-contract.md): the newer job kinds and the job-contract
//! check, the semantics aligned with Handshake, replay-safe migrations, the
//! schema fingerprint and time-ordered ids.

use super::*;
use crate::job_contract::{
    LOOM_PREVIEW_PROTOCOL, MEDIA_DOWNLOADER_PROTOCOLS, MICRO_TASK_EXECUTOR_V1,
};

// ---------------------------------------------------------------------------
// Helpers

fn job_with(kind: JobKind, profile_id: &str, protocol_id: &str) -> NewAiJob {
    NewAiJob {
        profile_id: profile_id.into(),
        protocol_id: protocol_id.into(),
        ..new_job(kind, Vec::new())
    }
}

/// Every `(kind, profile, protocol)` is refused with `Validation` naming the
/// job contract, and nothing is written.
#[track_caller]
fn assert_refused(h: &Harness, jobs: &[(JobKind, &str, &str)]) {
    for &(kind, profile, protocol) in jobs {
        let err = expect_kind(
            h.store().create_ai_job(job_with(kind, profile, protocol)),
            ErrorKind::Validation,
        );
        assert!(
            err.to_string().contains("job contract"),
            "{kind}/{profile}/{protocol}: {err}"
        );
    }
    assert!(all_jobs(h).is_empty(), "a refused job writes nothing");
}

/// Every `(kind, profile, protocol)` is accepted and reads back as given.
#[track_caller]
fn assert_accepted(h: &Harness, jobs: &[(JobKind, &str, &str)]) {
    for &(kind, profile, protocol) in jobs {
        let job = h
            .store()
            .create_ai_job(job_with(kind, profile, protocol))
            .unwrap_or_else(|e| panic!("{kind}/{profile}/{protocol} refused: {e}"));
        assert_eq!(
            (
                job.job_kind,
                job.profile_id.as_str(),
                job.protocol_id.as_str()
            ),
            (kind, profile, protocol)
        );
        assert_eq!(job_by(h, job.job_id), job);
    }
}

// ---------------------------------------------------------------------------
// Job kinds and the job contract

/// `model_run`, `media_downloader` and `loom_preview_generate` are stored,
/// read back and filtered on.
pub fn contract_job_kinds_model_run_media_downloader_loom_preview(h: &Harness) {
    for (kind, text) in [
        (JobKind::ModelRun, "model_run"),
        (JobKind::MediaDownloader, "media_downloader"),
        (JobKind::LoomPreviewGenerate, "loom_preview_generate"),
    ] {
        assert_eq!(kind.as_str(), text);
        assert_eq!(text.parse::<JobKind>().expect("parse"), kind);
        let job = h
            .store()
            .create_ai_job(new_job(kind, Vec::new()))
            .expect("create");
        assert_eq!(job_by(h, job.job_id).job_kind, kind);
        let listed = h
            .store()
            .list_ai_jobs(AiJobListFilter {
                job_kind: Some(kind),
                ..AiJobListFilter::default()
            })
            .expect("list by kind");
        assert_eq!(listed, vec![job]);
    }
}

/// A row holding the legacy `term_exec` reads as `terminal_exec`, is found
/// by that kind's filter, and is written back as `terminal_exec`.
pub fn contract_job_kind_legacy_term_exec_reads_as_terminal_exec(h: &Harness) {
    assert_eq!(
        "term_exec".parse::<JobKind>().expect("parse"),
        JobKind::TerminalExec
    );
    assert_eq!(JobKind::TerminalExec.as_str(), "terminal_exec");
    let legacy = h
        .store()
        .create_ai_job(new_job(JobKind::TerminalExec, Vec::new()))
        .expect("create");
    let current = h
        .store()
        .create_ai_job(new_job(JobKind::TerminalExec, Vec::new()))
        .expect("create");
    let planted = h
        .execute_sql(&format!(
            "UPDATE ai_jobs SET job_kind = 'term_exec' WHERE id = '{}'",
            legacy.job_id
        ))
        .expect("plant term_exec");
    assert_eq!(planted, 1);
    assert_eq!(
        job_by(h, legacy.job_id),
        legacy,
        "term_exec reads as terminal_exec"
    );
    let mut found: Vec<Uuid> = h
        .store()
        .list_ai_jobs(AiJobListFilter {
            job_kind: Some(JobKind::TerminalExec),
            ..AiJobListFilter::default()
        })
        .expect("list by kind")
        .iter()
        .map(|j| j.job_id)
        .collect();
    found.sort();
    let mut expected = vec![legacy.job_id, current.job_id];
    expected.sort();
    assert_eq!(found, expected, "the kind's filter finds the legacy row");
    assert_eq!(all_jobs(h).len(), 2);
}

/// `micro_task_execution` needs profile and protocol `micro_task_executor_v1`.
pub fn contract_job_micro_task_kind_needs_its_profile_and_protocol(h: &Harness) {
    let kind = JobKind::MicroTaskExecution;
    assert_refused(
        h,
        &[
            (kind, "default", "default"),
            (kind, MICRO_TASK_EXECUTOR_V1, "default"),
            (kind, "default", MICRO_TASK_EXECUTOR_V1),
            (kind, "micro_task_executor_v2", MICRO_TASK_EXECUTOR_V1),
        ],
    );
    assert_accepted(h, &[(kind, MICRO_TASK_EXECUTOR_V1, MICRO_TASK_EXECUTOR_V1)]);
}

/// Profile or protocol `micro_task_executor_v1` needs kind
/// `micro_task_execution`.
pub fn contract_job_micro_task_profile_or_protocol_needs_its_kind(h: &Harness) {
    let mut refused = Vec::new();
    for kind in JobKind::ALL
        .iter()
        .filter(|k| **k != JobKind::MicroTaskExecution)
    {
        let (profile, protocol) = contract_ids(*kind);
        refused.push((*kind, MICRO_TASK_EXECUTOR_V1, protocol));
        if *kind != JobKind::MediaDownloader && *kind != JobKind::LoomPreviewGenerate {
            refused.push((*kind, profile, MICRO_TASK_EXECUTOR_V1));
        }
    }
    assert_refused(h, &refused);
    assert_accepted(
        h,
        &[(JobKind::DocEdit, "micro_task_executor_v1 ", "default")],
    );
}

/// `media_downloader` needs one of its three protocols.
pub fn contract_job_media_downloader_needs_a_media_protocol(h: &Harness) {
    let kind = JobKind::MediaDownloader;
    assert_refused(
        h,
        &[
            (kind, "default", "default"),
            (kind, "default", "hsk.media_downloader.batch.v1"),
            (kind, "default", "HSK.MEDIA_DOWNLOADER.BATCH.V0"),
            (kind, "default", LOOM_PREVIEW_PROTOCOL),
        ],
    );
    let accepted: Vec<_> = MEDIA_DOWNLOADER_PROTOCOLS
        .iter()
        .map(|p| (kind, "default", *p))
        .collect();
    assert_accepted(h, &accepted);
    // The protocols are not reserved to the kind.
    assert_accepted(
        h,
        &[(JobKind::DocEdit, "default", MEDIA_DOWNLOADER_PROTOCOLS[1])],
    );
}

/// `loom_preview_generate` needs protocol `hsk.loom.preview_generate@v1`.
pub fn contract_job_loom_preview_kind_needs_its_protocol(h: &Harness) {
    let kind = JobKind::LoomPreviewGenerate;
    assert_refused(
        h,
        &[
            (kind, "default", "default"),
            (kind, "default", "hsk.loom.preview_generate@v2"),
            (kind, "default", MEDIA_DOWNLOADER_PROTOCOLS[0]),
        ],
    );
    assert_accepted(h, &[(kind, "default", LOOM_PREVIEW_PROTOCOL)]);
}

/// Protocol `hsk.loom.preview_generate@v1` needs kind
/// `loom_preview_generate`.
pub fn contract_job_loom_preview_protocol_needs_its_kind(h: &Harness) {
    let refused: Vec<_> = JobKind::ALL
        .iter()
        .filter(|k| **k != JobKind::LoomPreviewGenerate)
        .map(|k| (*k, contract_ids(*k).0, LOOM_PREVIEW_PROTOCOL))
        .collect();
    assert_refused(h, &refused);
    assert_accepted(
        h,
        &[(
            JobKind::LoomPreviewGenerate,
            "default",
            LOOM_PREVIEW_PROTOCOL,
        )],
    );
}

// ---------------------------------------------------------------------------
// Semantics aligned with Handshake

/// A node execution that enters `stalled` has finished: `finished_at` is set.
pub fn contract_node_execution_stalled_sets_finished_at(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let exec = add_exec(h, run.id, "n", 0);
    assert_eq!(exec.finished_at, None);
    let stalled = h
        .store()
        .update_workflow_node_execution_status(exec.id, JobState::Stalled, None, None)
        .expect("to stalled");
    assert_eq!(stalled.status, JobState::Stalled);
    let finished = stalled.finished_at.expect("stalled sets finished_at");
    assert!(finished >= exec.started_at.min(exec.created_at));
    assert_eq!(execs(h, run.id), vec![stalled]);
    let running = h
        .store()
        .update_workflow_node_execution_status(exec.id, JobState::Running, None, None)
        .expect("back to running");
    assert_eq!(
        running.finished_at,
        Some(finished),
        "a later state keeps it"
    );
}

/// Runs a status update through `update` (state and error message in, the
/// stored message out): `None` keeps the stored message, `Some` replaces
/// it, the empty string included.
#[track_caller]
fn assert_none_keeps_error_message(update: impl Fn(JobState, Option<&str>) -> Option<String>) {
    assert_eq!(update(JobState::Running, None), None);
    let boom = Some("boom 💥".to_string());
    assert_eq!(update(JobState::Failed, Some("boom 💥")), boom);
    assert_eq!(update(JobState::Queued, None), boom, "None keeps it");
    assert_eq!(
        update(JobState::Poisoned, Some("")),
        Some(String::new()),
        "Some replaces it"
    );
}

/// `update_workflow_node_execution_status` with `error_message: None` keeps
/// the stored message, as Handshake's `COALESCE(new, old)`.
pub fn contract_node_execution_none_error_message_keeps_stored(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let exec = add_exec(h, run.id, "n", 0);
    assert_none_keeps_error_message(|state, error| {
        h.store()
            .update_workflow_node_execution_status(exec.id, state, None, error.map(String::from))
            .expect("update node execution")
            .error_message
    });
    assert_eq!(execs(h, run.id)[0].error_message.as_deref(), Some(""));
}

/// `update_ai_job_status` with `error_message: None` keeps the stored
/// message, as Handshake's `COALESCE(new, old)`.
pub fn contract_ai_job_none_error_message_keeps_stored(h: &Harness) {
    let job = add_job(h);
    assert_none_keeps_error_message(|state, error| {
        h.store()
            .update_ai_job_status(JobStatusUpdate {
                error_message: error.map(String::from),
                ..status_update(job.job_id, state)
            })
            .expect("update ai job status")
            .error_message
    });
    let read = job_by(h, job.job_id);
    assert_eq!(
        (read.state, read.error_message.as_deref()),
        (JobState::Poisoned, Some(""))
    );
}

/// `min_versions` counts every unpinned completed or failed job, the recent
/// ones (created after the cutoff) included: they fill the window first.
pub fn contract_prune_min_versions_counts_recent_jobs(h: &Harness) {
    use JobState::*;
    let old = seed_jobs(
        h,
        &[
            (Completed, false),
            (Failed, false),
            (Completed, false),
            (Completed, true),
        ],
    );
    let cutoff = cutoff_now();
    let recent = seed_jobs(h, &[(Completed, false), (Running, false)]);
    let mut jobs = old.clone();
    jobs.extend(recent);
    // One recent completed job takes one of the two window places.
    assert_eq!(counts(&prune(h, cutoff, 2, true)), (4, 2, 1, 1));
    // With a window no bigger than the recent jobs, every old one goes.
    assert_eq!(counts(&prune(h, cutoff, 1, true)), (4, 3, 1, 0));
    assert_eq!(counts(&prune(h, cutoff, 2, false)), (4, 2, 1, 1));
    assert_eq!(all_jobs(h), remaining(&jobs, &[2, 3, 4, 5]));
    assert_eq!(counts(&prune(h, cutoff, 5, false)), (2, 0, 1, 1));
    assert_eq!(counts(&prune(h, cutoff, 0, false)), (2, 1, 1, 0));
    assert_eq!(all_jobs(h), remaining(&jobs, &[3, 4, 5]));
}

// ---------------------------------------------------------------------------
// Time-ordered ids

/// New ids are UUID version 7 (time-ordered); rows with version 4 ids, as
/// written before, keep working.
pub fn contract_new_ids_are_v7_and_v4_ids_keep_working(h: &Harness) {
    let ctx = human();
    let ws = h
        .store()
        .create_workspace(&ctx, NewWorkspace { name: "ids".into() })
        .expect("workspace");
    let doc = seed_document_in(h, &ws.id, "ids");
    let block = add_block(h, &doc.id, 0, None);
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let exec = add_exec(h, run.id, "n", 0);
    let content_ids = [&ws.id, &doc.id, &block.id];
    for id in content_ids {
        let uuid = Uuid::parse_str(id).expect("a generated id is a UUID");
        assert_eq!(uuid.get_version_num(), 7, "{id}");
    }
    for uuid in [job.job_id, run.id, exec.id, block.provenance.edit_event_id] {
        assert_eq!(uuid.get_version_num(), 7, "{uuid}");
    }
    // v4 ids: a caller's block id, and a job row written before v7.
    let v4 = Uuid::new_v4();
    assert_eq!(v4.get_version_num(), 4);
    let given = add_block(h, &doc.id, 1, Some(&v4.to_string()));
    assert_eq!(h.store().get_block(&v4.to_string()).expect("get"), given);
    let old_job = Uuid::new_v4();
    let fresh = add_job(h);
    let planted = h
        .execute_sql(&format!(
            "UPDATE ai_jobs SET id = '{old_job}' WHERE id = '{}'",
            fresh.job_id
        ))
        .expect("plant a v4 job id");
    assert_eq!(planted, 1);
    let read = job_by(h, old_job);
    assert_eq!(read.job_id, old_job);
    let run = add_run(h, old_job, JobState::Running);
    assert_eq!(run.job_id, old_job);
    let done = set_state(h.store(), old_job, JobState::Completed);
    assert_eq!(done.job_id, old_job);
}

// ---------------------------------------------------------------------------
// Schema: fingerprint, version, replay-safe migrations

/// The newest migration this crate ships, as `migration_version` gives it.
const NEWEST_MIGRATION: u64 = 20261204000001;

/// The fingerprint of a freshly migrated store equals the one committed for
/// its backend, so a schema change nobody regenerated (and reviewed) fails.
pub fn contract_schema_fingerprint_matches_committed(h: &Harness) {
    let fingerprint = h.store().schema_fingerprint().expect("fingerprint");
    assert_eq!(fingerprint.backend, h.backend());
    assert_eq!(fingerprint.version, Some(NEWEST_MIGRATION));
    assert_eq!(fingerprint.hash.len(), 16);
    let committed = crate::schema_info::committed_fingerprint(h.backend());
    let live = fingerprint.to_file_text();
    if live != committed {
        let (live_lines, committed_lines): (Vec<&str>, Vec<&str>) =
            (live.lines().collect(), committed.lines().collect());
        let missing: Vec<&&str> = committed_lines
            .iter()
            .filter(|l| !live_lines.contains(l))
            .collect();
        let added: Vec<&&str> = live_lines
            .iter()
            .filter(|l| !committed_lines.contains(l))
            .collect();
        panic!(
            "the live {} schema differs from src/schema/fingerprint_{}.txt; if the change is \
             intended, regenerate with `cargo run --example schema_fingerprints --features \
             postgres` and review the diff.\nonly committed: {missing:#?}\nonly live: {added:#?}",
            h.backend(),
            h.backend()
        );
    }
    assert_eq!(
        h.store().schema_fingerprint().expect("again"),
        fingerprint,
        "stable"
    );
}

/// `migration_version` is the newest applied version as a number, `None`
/// with nothing applied, and follows reverts and re-runs.
pub fn contract_migration_version_is_newest_applied(h: &Harness) {
    assert_eq!(
        h.store().migration_version().expect("version"),
        Some(NEWEST_MIGRATION)
    );
    h.revert_last_migration().expect("revert the newest");
    assert_eq!(
        h.store().migration_version().expect("version"),
        Some(20261203000002)
    );
    revert_through_entity_refs(h);
    assert_eq!(
        h.store().migration_version().expect("version"),
        Some(20261124000002)
    );
    let fingerprint = h.store().schema_fingerprint().expect("fingerprint");
    assert_eq!(fingerprint.version, Some(20261124000002));
    assert!(
        !fingerprint
            .description
            .columns
            .iter()
            .any(|c| c.column == "entity_refs"),
        "the fingerprint describes the live schema"
    );
    h.revert_all_migrations().expect("revert all");
    assert_eq!(h.store().migration_version().expect("version"), None);
    let empty = h.store().schema_fingerprint().expect("fingerprint");
    assert_eq!((empty.version, empty.description.tables.len()), (None, 0));
    h.store().run_migrations().expect("migrate");
    assert_eq!(
        h.store().migration_version().expect("version"),
        Some(NEWEST_MIGRATION)
    );
}

/// What the API can read of every table, for comparing a store before and
/// after its migrations ran again.
fn full_dump(h: &Harness, runs: &[Uuid]) -> String {
    let store = h.store();
    let mut dump = String::new();
    let mut push = |what: &str, value: &dyn std::fmt::Debug| {
        dump.push_str(&format!("{what}: {value:?}\n"));
    };
    let workspaces = store.list_workspaces().expect("workspaces");
    push("workspaces", &workspaces);
    for ws in &workspaces {
        let docs = store.list_documents(&ws.id).expect("documents");
        push("documents", &docs);
        for doc in &docs {
            push("blocks", &store.get_blocks(&doc.id).expect("blocks"));
        }
        for canvas in store.list_canvases(&ws.id).expect("canvases") {
            push(
                "graph",
                &store.get_canvas_with_graph(&canvas.id).expect("graph"),
            );
        }
        let in_ws = store
            .list_ai_jobs(AiJobListFilter {
                wsid: Some(ws.id.clone()),
                ..AiJobListFilter::default()
            })
            .expect("jobs by workspace");
        push("jobs in workspace", &in_ws);
    }
    push("jobs", &all_jobs(h));
    push(
        "stalled runs",
        &store.find_stalled_workflows(0).expect("runs"),
    );
    push("kernel events", &whole_ledger(store));
    for run in runs {
        push("executions", &execs(h, *run));
    }
    dump
}

/// Every `up.sql` runs again on a database that already has its effect
/// (Handshake CX-DBP-022): with Diesel's record of applied migrations
/// deleted, migrating again succeeds and changes neither the schema nor
/// the data, and the trigger still indexes new jobs.
pub fn contract_migrations_replay_keeps_schema_and_data(h: &Harness) {
    let ctx = human();
    let ws = seed_workspace(h);
    let doc = seed_document_in(h, &ws.id, "replayed");
    add_block(h, &doc.id, 0, Some("b-0"));
    add_block(h, &doc.id, 1, None);
    let canvas = seed_canvas_in(h, &ws.id, "replayed");
    seed_graph(h, &canvas.id);
    let tricky = EntityRef {
        entity_id: "quote \" backslash \\ tab \t é 📄".into(),
        entity_kind: "document".into(),
    };
    let jobs: Vec<AiJob> = [
        vec![ws_ref(&ws.id), tricky, ws_ref(&ws.id)],
        vec![],
        vec![ws_ref(&ws.id)],
    ]
    .into_iter()
    .map(|refs| {
        h.store()
            .create_ai_job(new_job(JobKind::DocEdit, refs))
            .expect("job")
    })
    .collect();
    h.store().set_job_pinned(jobs[1].job_id, true).expect("pin");
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let runs: Vec<Uuid> = jobs
        .iter()
        .map(|j| {
            h.store()
                .create_workflow_run(j.job_id, JobState::Running, Some(an_hour_ago))
                .expect("run")
                .id
        })
        .collect();
    for (i, run) in runs.iter().enumerate() {
        add_exec(h, *run, "n", i as i64);
    }
    h.store()
        .update_block(&ctx, "b-0", raw_update("edited"))
        .expect("edit");
    h.store()
        .append_kernel_events_atomic(vec![kernel_event("replayed-1"), kernel_event("replayed-2")])
        .expect("kernel events");
    let fingerprint = h.store().schema_fingerprint().expect("fingerprint");
    let dump = full_dump(h, &runs);
    for round in 0..2 {
        let forgotten = h
            .execute_sql("DELETE FROM __diesel_schema_migrations")
            .expect("forget the applied migrations");
        assert_eq!(forgotten, MIGRATION_VERSIONS.len(), "round {round}");
        assert_eq!(h.store().migration_version().expect("version"), None);
        h.store()
            .run_migrations()
            .unwrap_or_else(|e| panic!("migrations replayed (round {round}): {e}"));
        assert_eq!(
            h.store().migration_version().expect("version"),
            Some(NEWEST_MIGRATION)
        );
        assert_eq!(
            h.store().schema_fingerprint().expect("fingerprint"),
            fingerprint,
            "schema unchanged (round {round})"
        );
        assert_eq!(full_dump(h, &runs), dump, "data unchanged (round {round})");
    }
    let later = h
        .store()
        .create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref(&ws.id)]))
        .expect("a job after the replay");
    let in_ws = h
        .store()
        .list_ai_jobs(AiJobListFilter {
            wsid: Some(ws.id.clone()),
            ..AiJobListFilter::default()
        })
        .expect("jobs by workspace");
    assert_eq!(
        in_ws.iter().map(|j| j.job_id).collect::<Vec<_>>(),
        vec![later.job_id, jobs[2].job_id, jobs[0].job_id],
        "the trigger indexes new jobs once, old ones stay indexed once"
    );
    let next = h
        .store()
        .append_kernel_event(kernel_event("after-replay"))
        .expect("an event after the replay");
    assert_eq!(next.event_sequence, 3, "the ledger continues where it was");
}

/// Indexes (columns, order, uniqueness), primary keys, foreign keys with
/// their actions and triggers, as every backend must have them.
const EXPECTED_PORTABLE_SCHEMA: &[&str] = &[
    "primary key ai_job_entity_refs (job_id, position)",
    "primary key ai_jobs (id)",
    "primary key blocks (id)",
    "primary key canvas_edges (id)",
    "primary key canvas_nodes (id)",
    "primary key canvases (id)",
    "primary key documents (id)",
    "primary key kernel_events (event_sequence)",
    "primary key kernel_session_claims (session_run_id, attempt)",
    "primary key kernel_session_runs (session_run_id)",
    "primary key workflow_node_executions (id)",
    "primary key workflow_runs (id)",
    "primary key workspaces (id)",
    "index ai_job_entity_refs.ai_job_entity_refs_entity_created_idx (entity_kind, entity_id, created_at DESC, job_id DESC)",
    "index ai_jobs.ai_jobs_created_idx (created_at DESC, id DESC)",
    "index ai_jobs.ai_jobs_kind_created_idx (job_kind, created_at DESC, id DESC)",
    "index ai_jobs.ai_jobs_status_created_idx (status, created_at DESC, id DESC)",
    "index blocks.blocks_document_sequence_idx (document_id, sequence, id)",
    "index canvas_edges.canvas_edges_canvas_idx (canvas_id, id)",
    "index canvas_edges.canvas_edges_from_idx (from_node_id)",
    "index canvas_edges.canvas_edges_to_idx (to_node_id)",
    "index canvas_nodes.canvas_nodes_canvas_idx (canvas_id, id)",
    "index canvases.canvases_workspace_idx (workspace_id, created_at, id)",
    "index documents.documents_workspace_idx (workspace_id, created_at, id)",
    "index kernel_events.kernel_events_aggregate_idx (aggregate_type, aggregate_id, event_sequence)",
    "unique index kernel_events.kernel_events_event_id_idx (event_id)",
    "unique index kernel_events.kernel_events_idempotency_key_idx (idempotency_key)",
    "index kernel_events.kernel_events_session_idx (session_run_id, event_sequence)",
    "index kernel_session_runs.kernel_session_runs_adapter_claimable_idx (adapter_id, available_at, session_run_id)",
    "index kernel_session_runs.kernel_session_runs_claimable_idx (available_at, session_run_id)",
    "index workflow_node_executions.workflow_node_executions_run_idx (workflow_run_id, sequence, id)",
    "index workflow_runs.workflow_runs_job_idx (job_id)",
    "index workflow_runs.workflow_runs_status_heartbeat_idx (status, last_heartbeat, id)",
    "index workspaces.workspaces_created_idx (created_at, id)",
    "foreign key ai_job_entity_refs (job_id) references ai_jobs (id) on update NO ACTION on delete CASCADE",
    "foreign key blocks (document_id) references documents (id) on update NO ACTION on delete CASCADE",
    "foreign key canvas_edges (canvas_id) references canvases (id) on update NO ACTION on delete CASCADE",
    "foreign key canvas_edges (from_node_id) references canvas_nodes (id) on update NO ACTION on delete CASCADE",
    "foreign key canvas_edges (to_node_id) references canvas_nodes (id) on update NO ACTION on delete CASCADE",
    "foreign key canvas_nodes (canvas_id) references canvases (id) on update NO ACTION on delete CASCADE",
    "foreign key canvases (workspace_id) references workspaces (id) on update NO ACTION on delete CASCADE",
    "foreign key documents (workspace_id) references workspaces (id) on update NO ACTION on delete CASCADE",
    "foreign key kernel_session_claims (session_run_id) references kernel_session_runs (session_run_id) on update NO ACTION on delete CASCADE",
    "foreign key workflow_node_executions (workflow_run_id) references workflow_runs (id) on update NO ACTION on delete CASCADE",
    "foreign key workflow_runs (job_id) references ai_jobs (id) on update NO ACTION on delete CASCADE",
    "trigger ai_jobs.ai_jobs_index_entity_refs:",
];

/// The schema parity case's second half: every backend agrees on
/// [`EXPECTED_PORTABLE_SCHEMA`] (columns are checked by the first half).
pub(super) fn assert_keys_indexes_and_triggers_portable(h: &Harness) {
    let description = h
        .store()
        .schema_fingerprint()
        .expect("fingerprint")
        .description;
    let live: Vec<String> = description
        .portable_lines()
        .into_iter()
        .filter(|l| !l.starts_with("column ") && !l.starts_with("table "))
        .collect();
    assert_eq!(
        live,
        EXPECTED_PORTABLE_SCHEMA
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>(),
        "{} keys, indexes, foreign keys or triggers differ",
        h.backend()
    );
}
