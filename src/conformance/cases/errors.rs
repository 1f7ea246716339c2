//! Error kinds for bad input: NUL bytes, too-deep JSON, non-finite
//! positions, out-of-range timestamps, corrupt enum strings in rows; each
//! with a check that nothing was written.

#[allow(unused_imports)]
use super::*;

/// Asserts that every result failed with `kind`.
#[track_caller]
pub(super) fn assert_all_fail(results: Vec<(&str, StorageResult<()>)>, kind: ErrorKind) {
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
    assert_all_fail(results, ErrorKind::Validation);
    assert_eq!(content_view(h, &ws), before, "nothing changed");
}

/// A NUL byte in any text field is `Validation`, nothing written.
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
    assert_all_fail(results, ErrorKind::Validation);
    let after = (content_view(h, &ws), json_view(h, &fx));
    assert_eq!(after, before, "a refused write changed something");
}

/// A NUL byte in a JSON string or key is `Validation`, nothing written.
pub fn error_nul_byte_in_json_is_validation(h: &Harness) {
    let with_nul = [
        ("NUL in a string value", json!({"k": NUL})),
        ("NUL in a key", json!({NUL: 1})),
        ("NUL deep in an array", json!([1, [2, {"x": ["ok", NUL]}]])),
        ("a NUL string alone", json!("\u{0}")),
    ];
    assert_json_refused(h, &fixture(h), &with_nul);
}

/// JSON nested deeper than the limit is `Validation`; 100 levels round-trip.
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

/// A NaN or infinite node position is `Validation` and changes nothing.
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
                ErrorKind::Validation,
            );
        }
    }
}

/// A timestamp outside the range both backends store is `Validation`, nothing
/// written or removed.
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
        assert_all_fail(results, ErrorKind::Validation);
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

/// A stored enum string that is not one of ours reads as `Serialization`.
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
                ErrorKind::Serialization,
            );
        }
        set(good);
        for (what, result) in reads(table) {
            result.unwrap_or_else(|e| panic!("{what} after restoring {column}: {e:?}"));
        }
    }
    assert_eq!(job_by(h, job.job_id), job, "restored row reads as before");
}
