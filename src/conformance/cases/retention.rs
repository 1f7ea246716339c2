//! Retention: `prune_ai_jobs` by state, cutoff, pinning and
//! `min_versions`, dry runs, and what a prune cascades to.

#[allow(unused_imports)]
use super::*;

/// Creates one job per `(state, pinned)`, oldest first and apart in time.
pub(super) fn seed_jobs(h: &Harness, specs: &[(JobState, bool)]) -> Vec<AiJob> {
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
pub(super) fn cutoff_now() -> DateTime<Utc> {
    pause();
    let cutoff = Utc::now();
    pause();
    cutoff
}

pub(super) fn prune(
    h: &Harness,
    cutoff: DateTime<Utc>,
    min_versions: u32,
    dry_run: bool,
) -> PruneReport {
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
pub(super) fn counts(r: &PruneReport) -> (u32, u32, u32, u32) {
    (
        r.items_scanned,
        r.items_pruned,
        r.items_spared_pinned,
        r.items_spared_window,
    )
}

/// The jobs of `jobs` at `keep` indexes, as the store now holds them,
/// newest first: what must remain after a prune.
pub(super) fn remaining(jobs: &[AiJob], keep: &[usize]) -> Vec<AiJob> {
    let mut kept: Vec<AiJob> = keep.iter().map(|&i| jobs[i].clone()).collect();
    kept.sort_by_key(|j| std::cmp::Reverse((j.created_at, j.job_id)));
    kept
}

/// `prune_ai_jobs` removes only completed or failed jobs older than the cutoff,
/// and never a pinned one.
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
        expect_kind(h.store().get_ai_job(gone.job_id), ErrorKind::NotFound);
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
    expect_kind(h.store().get_ai_job(jobs[2].job_id), ErrorKind::NotFound);
    assert_eq!(all_jobs(h).len(), 7);
}

/// `prune_ai_jobs` keeps the newest `min_versions` candidates.
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

/// A dry run reports what a real run then does, and changes nothing.
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

/// Pruning a job removes its workflow runs and their node executions.
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
    expect_kind(h.store().get_ai_job(old[0].job_id), ErrorKind::NotFound);
    expect_kind(
        h.store()
            .update_workflow_run_status(runs[0].id, JobState::Failed, None),
        ErrorKind::NotFound,
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
        ErrorKind::NotFound,
    );
    assert_eq!(
        execs(h, runs[1].id),
        kept_execs[1],
        "the running job keeps its run"
    );
    assert_eq!(job_by(h, old[1].job_id), old[1]);
}
