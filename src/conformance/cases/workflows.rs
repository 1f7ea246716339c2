//! Workflow runs and node executions: lifecycle, order, `finished_at`,
//! stalled-run detection.

#[allow(unused_imports)]
use super::*;

pub(super) fn near_now(at: DateTime<Utc>) -> bool {
    (Utc::now() - at).num_seconds().abs() <= 5
}

/// A run is created, changes status and heartbeats, each step read back.
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

/// A run for an unknown job, or an execution for an unknown run, is
/// `Validation`, nothing written.
pub fn workflow_missing_parents_are_validation(h: &Harness) {
    let missing = Uuid::new_v4();
    expect_kind(
        h.store()
            .create_workflow_run(missing, JobState::Running, None),
        ErrorKind::Validation,
    );
    expect_kind(
        h.store()
            .create_workflow_node_execution(new_exec(missing, "n", 0)),
        ErrorKind::Validation,
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

/// Node executions list by `sequence`, then id, each as written.
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

/// A terminal or `stalled` status sets `finished_at`; `None` output or error
/// keeps the stored one.
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

/// `find_stalled_workflows` returns the running runs whose heartbeat is older
/// than the threshold, oldest first.
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
