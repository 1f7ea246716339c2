//! AI jobs: create with defaults, status updates, outputs and pinning,
//! list filters, order and cursor paging.

#[allow(unused_imports)]
use super::*;

pub(super) fn job_by(h: &Harness, job_id: Uuid) -> AiJob {
    h.store().get_ai_job(job_id).expect("get ai job")
}

pub(super) fn list_jobs(h: &Harness, filter: AiJobListFilter) -> Vec<Uuid> {
    job_ids(&h.store().list_ai_jobs(filter).expect("list ai jobs"))
}

/// Ids of `jobs` picked by `pick` (indexes), newest first as lists return.
pub(super) fn newest_first(jobs: &[AiJob], pick: &[usize]) -> Vec<Uuid> {
    let mut ids: Vec<(DateTime<Utc>, Uuid)> = pick
        .iter()
        .map(|&i| (jobs[i].created_at, jobs[i].job_id))
        .collect();
    ids.sort();
    ids.into_iter().rev().map(|(_, id)| id).collect()
}

/// A new job is `queued`, unpinned, with zero metrics and no run, its entity
/// refs in the given order, and reads back equal.
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

/// `get_ai_job` of an unknown or nil id is `NotFound`.
pub fn ai_job_get_missing_is_not_found(h: &Harness) {
    expect_kind(h.store().get_ai_job(Uuid::new_v4()), ErrorKind::NotFound);
    let job = add_job(h);
    expect_kind(h.store().get_ai_job(Uuid::nil()), ErrorKind::NotFound);
    assert_eq!(job_by(h, job.job_id), job);
}

/// `update_ai_job_status` writes state and reason, keeps every `None` field,
/// and keeps `created_at`.
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

/// `set_job_outputs` and `set_job_pinned` change only their own field of only
/// their job.
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

/// Every job update of an unknown id is `NotFound`.
pub fn ai_job_missing_targets_are_not_found(h: &Harness) {
    let missing = Uuid::new_v4();
    let store = h.store();
    expect_kind(
        store.update_ai_job_status(status_update(missing, JobState::Running)),
        ErrorKind::NotFound,
    );
    expect_kind(
        store.set_job_outputs(missing, Some(json!({"x": 1}))),
        ErrorKind::NotFound,
    );
    expect_kind(store.set_job_outputs(missing, None), ErrorKind::NotFound);
    expect_kind(store.set_job_pinned(missing, true), ErrorKind::NotFound);
    expect_kind(
        store.update_workflow_run_status(missing, JobState::Running, None),
        ErrorKind::NotFound,
    );
    expect_kind(
        store.heartbeat_workflow(missing, Utc::now()),
        ErrorKind::NotFound,
    );
    expect_kind(
        store.update_workflow_node_execution_status(missing, JobState::Completed, None, None),
        ErrorKind::NotFound,
    );
    assert!(all_jobs(h).is_empty(), "nothing was created");
    assert!(store
        .list_workflow_node_executions(missing)
        .expect("list")
        .is_empty());
}

/// Each `list_ai_jobs` filter, alone and combined, selects exactly its jobs.
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
pub(super) fn page_through(h: &Harness, size: u32) -> Vec<Vec<Uuid>> {
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

/// The `wsid` filter lists each job of the workspace once, newest first,
/// however often and wherever its refs name the workspace, alone and with
/// the other filters, and a cursor pages through it in the same order.
pub fn ai_job_list_wsid_lists_each_job_once_in_order(h: &Harness) {
    let doc = EntityRef {
        entity_id: "ws-a".into(),
        entity_kind: "document".into(),
    };
    let specs: Vec<Vec<EntityRef>> = vec![
        vec![ws_ref("ws-a"), doc.clone(), ws_ref("ws-a")],
        vec![doc.clone(), ws_ref("ws-a"), ws_ref("ws-a")],
        vec![ws_ref("ws-b")],
        vec![ws_ref("ws-a")],
        vec![ws_ref("ws-b"), ws_ref("ws-a"), ws_ref("ws-b")],
        vec![doc],
    ];
    let jobs: Vec<AiJob> = specs
        .iter()
        .map(|refs| add_jobs_apart(h, 1, JobKind::DocEdit, refs).remove(0))
        .collect();
    set_state(h.store(), jobs[1].job_id, JobState::Running);
    let in_ws = |f: fn(&mut AiJobListFilter)| {
        let mut filter = AiJobListFilter {
            wsid: Some("ws-a".into()),
            ..AiJobListFilter::default()
        };
        f(&mut filter);
        list_jobs(h, filter)
    };
    assert_eq!(in_ws(|_| {}), newest_first(&jobs, &[0, 1, 3, 4]));
    assert_eq!(in_ws(|f| f.limit = Some(2)), newest_first(&jobs, &[3, 4]));
    assert_eq!(
        in_ws(|f| f.status = Some(JobState::Running)),
        newest_first(&jobs, &[1])
    );
    let ws_b = AiJobListFilter {
        wsid: Some("ws-b".into()),
        ..AiJobListFilter::default()
    };
    assert_eq!(list_jobs(h, ws_b), newest_first(&jobs, &[2, 4]));
    let (from, to) = (jobs[1].created_at, jobs[4].created_at);
    let window = AiJobListFilter {
        wsid: Some("ws-a".into()),
        from: Some(from),
        to: Some(to),
        ..AiJobListFilter::default()
    };
    assert_eq!(list_jobs(h, window), newest_first(&jobs, &[1, 3]));
    for size in [1, 2, 3] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = h
                .store()
                .list_ai_jobs(AiJobListFilter {
                    wsid: Some("ws-a".into()),
                    limit: Some(size),
                    cursor,
                    ..AiJobListFilter::default()
                })
                .expect("list page");
            assert!(page.len() <= size as usize, "page larger than the limit");
            let Some(last) = page.last() else { break };
            cursor = Some(AiJobCursor::after(last));
            seen.extend(job_ids(&page));
            assert!(seen.len() <= 8, "paging does not end");
        }
        assert_eq!(seen, newest_first(&jobs, &[0, 1, 3, 4]), "pages of {size}");
    }
}

/// Jobs list newest first (ties by id); cursor paging returns each job once, in
/// list order, whatever the page size.
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

/// The `from` (inclusive) and `to` (exclusive) filters compare instants, not
/// text.
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
