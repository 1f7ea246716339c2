//! The kernel ledger and session queue under concurrency, on a SQLite file
//! and, with `--features postgres`, on PostgreSQL (docs/kernel.md):
//! first appends of one key racing, a tailing reader beside several
//! writers, many workers draining the queue, and a worker process killed
//! while it holds a claim.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use handshake_storage::conformance::{Harness, TestTarget};
use handshake_storage::*;
use serde_json::json;

/// Far above the seconds the work takes: only a deadlock reaches it.
const WATCHDOG: Duration = Duration::from_secs(300);

#[test]
#[ignore = "a child process of other tests; runs only when they start it"]
fn child_process() {
    child_process_main()
}

/// A complete event with idempotency key `key`.
fn event(key: &str, session: &str) -> NewKernelEvent {
    NewKernelEvent {
        event_version: "1".into(),
        kernel_task_run_id: "KTR-1".into(),
        session_run_id: session.into(),
        aggregate_type: "session_run".into(),
        aggregate_id: session.into(),
        idempotency_key: key.into(),
        event_type: "SESSION_PROGRESS".into(),
        actor: KernelActor::new(KernelActorKind::ModelAdapter, "adapter-1"),
        source_component: "kernel_concurrency".into(),
        payload: json!({"key": key}),
        ..Default::default()
    }
}

fn harness(backend: &str) -> Harness {
    TestTarget::standard(backend)
        .harness()
        .unwrap_or_else(|e| panic!("a fresh {backend} database: {e}"))
}

/// Stamps a `#[test]` per backend for each scenario.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::harness("sqlite"));
            })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::harness("postgres"));
            })*
        }
    };
}

on_every_backend!(
    eight_threads_append_one_key_one_row_all_get_it,
    tailing_reader_sees_every_event_once_in_order,
    eight_workers_drain_a_thousand_runs_each_completed_once,
    killed_worker_claim_is_taken_over_after_its_lease_and_its_fence_refused,
);

/// Eight threads append the same new key at the same moment, 20 keys in a
/// row: one row per key, and every thread gets that row.
fn eight_threads_append_one_key_one_row_all_get_it(h: Harness) {
    const THREADS: usize = 8;
    const KEYS: usize = 20;
    let store = h.shared_store();
    within(WATCHDOG, "racing appends", move || {
        for k in 0..KEYS {
            let key = format!("race-{k}");
            let barrier = Arc::new(Barrier::new(THREADS));
            let got: Vec<KernelEvent> = (0..THREADS)
                .map(|_| {
                    let (store, key, barrier) =
                        (Arc::clone(&store), key.clone(), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        store.append_kernel_event(event(&key, "SR-race"))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| {
                    t.join()
                        .expect("appender panicked")
                        .unwrap_or_else(|e| panic!("key {key}: every caller succeeds: {e}"))
                })
                .collect();
            assert!(
                got.iter().all(|e| e == &got[0]),
                "key {key}: one event for all"
            );
            assert_eq!(
                got[0].event_sequence,
                k as i64 + 1,
                "no sequence number lost"
            );
        }
        let ledger = store.list_kernel_events_for_session("SR-race").unwrap();
        assert_eq!(ledger.len(), KEYS, "one row per key");
    });
}

/// Four writers append (single events and batches of three) while a
/// reader tails the ledger in pages of 7: the reader sees every event
/// exactly once, in ascending sequence, with no gap it would have to come
/// back for.
fn tailing_reader_sees_every_event_once_in_order(h: Harness) {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 60;
    let store = h.shared_store();
    within(WATCHDOG, "writers and a tailing reader", move || {
        let done = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let session = format!("SR-w{w}");
                    for r in 0..ROUNDS {
                        if r % 2 == 0 {
                            store
                                .append_kernel_event(event(&format!("w{w}-{r}"), &session))
                                .expect("append");
                        } else {
                            let batch = (0..3)
                                .map(|i| event(&format!("w{w}-{r}-{i}"), &session))
                                .collect();
                            store.append_kernel_events_atomic(batch).expect("batch");
                        }
                    }
                })
            })
            .collect();
        let reader = {
            let (store, done) = (Arc::clone(&store), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut seen: Vec<KernelEvent> = Vec::new();
                let mut after = 0;
                loop {
                    // Read `done` before the page: a page read after every
                    // writer finished that comes back short ends the tail.
                    let finished = done.load(Ordering::SeqCst);
                    let page = store.list_kernel_events_after(after, 7).expect("tail");
                    for e in &page {
                        assert_eq!(
                            e.event_sequence,
                            after + 1,
                            "the tail moved past a sequence it never returned"
                        );
                        after = e.event_sequence;
                    }
                    let short = page.len() < 7;
                    seen.extend(page);
                    if finished && short {
                        return seen;
                    }
                }
            })
        };
        for w in writers {
            w.join().expect("writer panicked");
        }
        done.store(true, Ordering::SeqCst);
        let seen = reader.join().expect("reader panicked");
        let expected = WRITERS * (ROUNDS / 2) * 4;
        assert_eq!(seen.len(), expected, "every event seen");
        let keys: BTreeSet<&str> = seen.iter().map(|e| e.idempotency_key.as_str()).collect();
        assert_eq!(keys.len(), expected, "each once");
        let mut whole = Vec::new();
        let mut after = 0;
        loop {
            let page = store.list_kernel_events_after(after, 1000).unwrap();
            let Some(last) = page.last() else { break };
            after = last.event_sequence;
            whole.extend(page);
        }
        assert_eq!(seen, whole, "what the tail saw is the ledger");
        // Each writer's own events are in the order it appended them.
        for w in 0..WRITERS {
            let mine = store
                .list_kernel_events_for_session(&format!("SR-w{w}"))
                .unwrap();
            let order: Vec<&str> = mine.iter().map(|e| e.idempotency_key.as_str()).collect();
            let written: Vec<String> = (0..ROUNDS)
                .flat_map(|r| {
                    if r % 2 == 0 {
                        vec![format!("w{w}-{r}")]
                    } else {
                        (0..3).map(|i| format!("w{w}-{r}-{i}")).collect()
                    }
                })
                .collect();
            assert_eq!(order, written, "writer {w}'s events in its order");
        }
    });
}

/// Eight workers drain 1,000 queued runs with claim-next, each taking its
/// run through `Running` to `Completed` with its fence: every run is
/// completed exactly once, by one claim, and no call fails.
fn eight_workers_drain_a_thousand_runs_each_completed_once(h: Harness) {
    const WORKERS: usize = 8;
    const RUNS: usize = 1_000;
    let store = h.shared_store();
    let lease = Duration::from_secs(120);
    let enqueued: BTreeSet<String> = (0..RUNS)
        .map(|i| {
            store
                .enqueue_kernel_session_run(SessionRun::queued(
                    "KTR-drain",
                    format!("adapter-{}", i % 3),
                ))
                .expect("enqueue")
                .session_run_id
        })
        .collect();
    let store2 = Arc::clone(&store);
    let done: Vec<(String, String)> =
        within(WATCHDOG, "eight workers draining the queue", move || {
            let barrier = Arc::new(Barrier::new(WORKERS));
            let workers: Vec<_> = (0..WORKERS)
                .map(|w| {
                    let (store, barrier) = (Arc::clone(&store2), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        let me = format!("worker-{w}");
                        let mut mine = Vec::new();
                        barrier.wait();
                        // Nothing expires here, so `None` means every
                        // claimable run is claimed.
                        while let Some(claim) = store
                            .claim_next_kernel_session_run(&me, lease, None)
                            .expect("claim next")
                        {
                            let fence = claim.fence().expect("a fence");
                            assert_eq!(
                                (fence.attempt, fence.claimed_by.as_str()),
                                (1, me.as_str())
                            );
                            store
                                .update_kernel_session_run_state(
                                    &claim.session_run_id,
                                    SessionRunUpdate::to(SessionRunState::Running)
                                        .fenced(fence.clone()),
                                )
                                .expect("start");
                            let completed = store
                                .update_kernel_session_run_state(
                                    &claim.session_run_id,
                                    SessionRunUpdate::to(SessionRunState::Completed).fenced(fence),
                                )
                                .expect("complete");
                            assert_eq!(completed.state, SessionRunState::Completed);
                            mine.push((claim.session_run_id, me.clone()));
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("worker panicked"))
                .collect()
        });
    assert_eq!(done.len(), RUNS, "every run completed, none twice");
    let completed: BTreeSet<String> = done.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(completed, enqueued, "each run exactly once");
    let workers: BTreeSet<&str> = done.iter().map(|(_, w)| w.as_str()).collect();
    assert!(workers.len() > 1, "the work was shared: {workers:?}");
    for (id, worker) in &done {
        let claims = store.list_kernel_session_claims(id).unwrap();
        assert_eq!(claims.len(), 1, "{id}: one claim");
        assert_eq!(claims[0].claimed_by, *worker);
        assert_eq!(claims[0].outcome, Some(SessionRunState::Completed));
    }
    assert!(store
        .claim_next_kernel_session_run("late", lease, None)
        .unwrap()
        .is_none());
}

/// A worker process claims a run and is killed (SIGKILL) while it holds
/// the claim: nobody can take the run while the lease lasts; once it has
/// ended, another worker takes it over with the next attempt, the killed
/// worker's fence is refused on renew and on every state change, and the
/// history shows the killed claim ended with no outcome.
fn killed_worker_claim_is_taken_over_after_its_lease_and_its_fence_refused(h: Harness) {
    let store = h.shared_store();
    let run = store
        .enqueue_kernel_session_run(SessionRun::queued("KTR-kill", "adapter"))
        .expect("enqueue");
    let id = run.session_run_id.clone();
    // The worker claims after this, so its lease ends after
    // `spawned + KILLED_WORKER_LEASE`.
    let spawned = std::time::Instant::now();
    let mut worker = child("kernel-claim-and-hold", h.url(), &id)
        .spawn()
        .expect("spawn the worker process");
    let mut reports = Reports::of(&mut worker);
    assert_eq!(reports.next_report().as_deref(), Some("claimed 1"));
    worker.kill().expect("SIGKILL the worker");
    worker.wait().expect("reap the worker");
    assert!(
        store
            .claim_next_kernel_session_run("rescuer", Duration::from_secs(60), None)
            .unwrap()
            .is_none(),
        "the dead worker's lease still holds the run"
    );
    let rescued = within(WATCHDOG, "waiting for the lease to end", move || loop {
        if let Some(lease) = store
            .claim_next_kernel_session_run("rescuer", Duration::from_secs(60), None)
            .expect("claim next")
        {
            return (store, lease);
        }
        std::thread::sleep(Duration::from_millis(50));
    });
    let (store, lease) = rescued;
    assert!(
        spawned.elapsed() >= KILLED_WORKER_LEASE,
        "taken over only once the lease ended"
    );
    assert_eq!(lease.session_run_id, id);
    assert_eq!(
        (lease.attempt_count, lease.claimed_by.as_deref()),
        (2, Some("rescuer"))
    );
    let dead = LeaseFence {
        session_run_id: id.clone(),
        claimed_by: KILLED_WORKER.into(),
        attempt: 1,
    };
    let err = store
        .renew_kernel_session_lease(&dead, Duration::from_secs(60))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    for to in [
        SessionRunState::Running,
        SessionRunState::Completed,
        SessionRunState::Failed,
        SessionRunState::Cancelled,
    ] {
        let err = store
            .update_kernel_session_run_state(&id, SessionRunUpdate::to(to).fenced(dead.clone()))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{to}: {err}");
    }
    let fence = lease.fence().expect("the rescuer's fence");
    store
        .update_kernel_session_run_state(
            &id,
            SessionRunUpdate::to(SessionRunState::Running).fenced(fence.clone()),
        )
        .expect("the rescuer starts it");
    store
        .update_kernel_session_run_state(
            &id,
            SessionRunUpdate::to(SessionRunState::Completed).fenced(fence),
        )
        .expect("the rescuer completes it");
    let claims = store.list_kernel_session_claims(&id).unwrap();
    assert_eq!(claims.len(), 2);
    assert_eq!(
        (claims[0].claimed_by.as_str(), claims[0].outcome),
        (KILLED_WORKER, None)
    );
    assert!(
        claims[0].ended_at.is_some(),
        "the killed claim ended at the takeover"
    );
    assert_eq!(
        (claims[1].claimed_by.as_str(), claims[1].outcome),
        ("rescuer", Some(SessionRunState::Completed))
    );
}
