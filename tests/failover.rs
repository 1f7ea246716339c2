//! Surviving a PostgreSQL failover (issue 21), on a real pg_auto_failover
//! formation (`tests/common/formation.rs`): a monitor, a primary and its
//! synchronous secondary, reached through one multi-host URL with
//! `target_session_attrs=read-write`.
//!
//! Four threads write blocks with ids they choose, through one store,
//! while the formation fails over twice: (a) `pg_autoctl perform
//! failover`, (b) the primary stopped at once (`pg_autoctl stop
//! --immediate`: Postgres gets an immediate shutdown, as in a crash). The
//! test asserts that
//! - every write the store acknowledged is there afterwards, read through
//!   a fresh store (synchronous replication: a commit is acknowledged once
//!   the secondary has it);
//! - writes resume on the new primary without reopening the store;
//! - the only errors a caller sees come from calls in flight during a
//!   switch, and each says what happened: `is_retryable()` (certainly not
//!   written) or outcome unknown. The writers handle them as an
//!   application should: the same block (same id) again; an outcome-unknown
//!   write that did commit comes back as `Conflict`.
//!
//! It prints, for each switch, the longest stretch without a successful
//! write and the formation's own timing from the monitor's event log.
//! Needs `pg_autoctl` (Debian: postgresql-15-auto-failover,
//! pg-auto-failover-cli) and PostgreSQL's server binaries.
#![cfg(all(feature = "postgres", unix))]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::formation::{Event, Formation};
use common::{block, human, within};
use handshake_storage::*;

const WRITERS: usize = 4;

/// What the writers saw, shared with the test thread.
#[derive(Default)]
struct Record {
    /// When each acknowledged write returned.
    successes: Vec<Instant>,
    /// Ids the store acknowledged (directly, or as `Conflict` on a retry
    /// after an outcome-unknown error: the first attempt had committed).
    acknowledged: Vec<String>,
    /// `(call started, error)` of every error a call returned.
    errors: Vec<(Instant, StorageError)>,
}

/// One writer: blocks `w{n}-{k}` in `document_id` until `stop`, each
/// retried (same id) until it is known to be written.
fn writer(
    store: Arc<dyn Storage>,
    document_id: String,
    n: usize,
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<Record>>,
) {
    let mut k = 0;
    while !stop.load(Ordering::SeqCst) {
        let id = format!("w{n}-{k}");
        k += 1;
        // Whether an attempt at this id ended with its outcome unknown.
        let mut maybe_written = false;
        loop {
            let started = Instant::now();
            let new = block(
                &document_id,
                k as i64,
                id.clone(),
                format!("writer {n} block {k}"),
            );
            let result = store.create_block(&human(), new);
            let mut record = record.lock().unwrap();
            match result {
                Ok(_) => {
                    record.successes.push(Instant::now());
                    record.acknowledged.push(id);
                    break;
                }
                // The attempt whose outcome was unknown did commit.
                Err(StorageError::Conflict(_)) if maybe_written => {
                    record.acknowledged.push(id);
                    break;
                }
                Err(err) => {
                    let again = err.is_retryable() || err.is_outcome_unknown();
                    maybe_written |= err.is_outcome_unknown();
                    record.errors.push((started, err));
                    if !again {
                        break;
                    }
                    drop(record);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The longest time between two acknowledged writes (or between `from`
/// and the first) within `from..to`, and when it ended (writes back).
fn longest_gap(successes: &[Instant], from: Instant, to: Instant) -> (Duration, Instant) {
    let mut times: Vec<Instant> = successes
        .iter()
        .copied()
        .filter(|t| *t >= from && *t < to)
        .collect();
    times.sort();
    let mut last = from;
    let (mut gap, mut back) = (Duration::ZERO, from);
    for t in times {
        if t - last > gap {
            (gap, back) = (t - last, t);
        }
        last = t;
    }
    (gap, back)
}

/// The formation's own account of a switch begun at `began`: when the
/// monitor's first event came (for a crash: when it noticed), and when the
/// new primary reported `wait_primary` (writable again).
fn formation_timing(events: &[Event], began: chrono::DateTime<chrono::Utc>) -> String {
    let secs = |at: chrono::DateTime<chrono::Utc>| (at - began).num_milliseconds() as f64 / 1000.0;
    let first = events.first().map(|e| secs(e.at));
    let writable = events
        .iter()
        .find(|e| e.reported == "wait_primary" && e.goal == "wait_primary")
        .map(|e| secs(e.at));
    match (first, writable) {
        (Some(first), Some(writable)) => {
            format!("first event at {first:.2} s, new primary writable at {writable:.2} s")
        }
        _ => "no events".into(),
    }
}

fn print_events(what: &str, events: &[Event]) {
    eprintln!("{what}: the monitor's events (pg_autoctl show events):");
    for e in events {
        eprintln!(
            "  {} {:>6} {:>18} -> {:<18} {}",
            e.at.format("%H:%M:%S%.3f"),
            e.node,
            e.reported,
            e.goal,
            e.description
        );
    }
}

/// Waits until some write acknowledged after `since`; panics after 30 s.
fn wait_for_writes_after(record: &Mutex<Record>, since: Instant, what: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = record
            .lock()
            .unwrap()
            .successes
            .iter()
            .copied()
            .find(|t| *t > since)
        {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded within 30 s after {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn writes_survive_a_switchover_and_a_crashed_primary() {
    within(Duration::from_secs(240), "the failover test", run);
}

fn run() {
    let started = Instant::now();
    let formation = Formation::start();
    eprintln!("formation up in {:?}", started.elapsed());
    let url = formation.url();
    // A connection waits up to 10 s for the pool, which covers a switch:
    // a call during it waits for the new primary instead of failing.
    let config = StorageConfig::default()
        .pool_size(8)
        .connection_timeout(Duration::from_secs(10));
    let store = open_with_config(&url, &config)
        .unwrap_or_else(|e| panic!("open {}: {e}\n{}", redact_url(&url), formation.logs()));
    let ws = store
        .create_workspace(
            &human(),
            NewWorkspace {
                name: "failover".into(),
            },
        )
        .unwrap();
    let doc = store
        .create_document(
            &human(),
            NewDocument {
                workspace_id: ws.id.clone(),
                title: "written through failovers".into(),
            },
        )
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(Record::default()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (store, doc, stop, record) =
                (store.clone(), doc.id.clone(), stop.clone(), record.clone());
            std::thread::spawn(move || writer(store, doc, n, stop, record))
        })
        .collect();
    wait_for_writes_after(&record, Instant::now(), "the writers started");
    std::thread::sleep(Duration::from_secs(1));

    // (a) A switchover the operator asks for.
    let first_primary = formation.primary().expect("a primary").name;
    let events_from = formation.last_event_id();
    let a_start = Instant::now();
    let a_wall = chrono::Utc::now();
    formation.perform_failover();
    formation.wait_settled();
    let a_settled = Instant::now();
    let a_resumed = wait_for_writes_after(&record, a_settled, "perform failover");
    let a_events = formation.events_after(events_from);
    let second_primary = formation.primary().expect("a primary after (a)").name;
    assert_ne!(
        first_primary, second_primary,
        "perform failover moved the primary"
    );
    std::thread::sleep(Duration::from_secs(1));

    // (b) The primary crashes.
    let events_from = formation.last_event_id();
    let primary = formation
        .nodes
        .iter()
        .find(|n| n.name == second_primary)
        .expect("the primary is a node");
    let b_start = Instant::now();
    let b_wall = chrono::Utc::now();
    formation.stop_immediately(primary);
    formation.wait_for("the secondary to take over", |states| {
        states
            .iter()
            .any(|(name, state)| name == first_primary && state == "wait_primary")
    });
    let b_settled = Instant::now();
    let b_resumed = wait_for_writes_after(&record, b_settled, "the primary stopped");
    let b_events = formation.events_after(events_from);
    std::thread::sleep(Duration::from_secs(1));
    let b_end = Instant::now();

    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().expect("a writer panicked");
    }
    drop(store);
    let record = Arc::try_unwrap(record)
        .unwrap_or_else(|_| unreachable!("the writers are joined"))
        .into_inner()
        .unwrap();

    // Every acknowledged write is there, read through a fresh store.
    let fresh = open_with_config(&url, &config.clone().run_migrations(false)).unwrap();
    let present: HashSet<String> = fresh
        .get_blocks(&doc.id)
        .expect("read back the blocks")
        .into_iter()
        .map(|b| b.id)
        .collect();
    let lost: Vec<&String> = record
        .acknowledged
        .iter()
        .filter(|id| !present.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );

    // The errors callers saw: each from a call in flight during a switch,
    // each saying whether it was written.
    // A call in flight when a switch begins started at most a call's time
    // before it; one that ends in error started before the formation had
    // settled (a call waiting for a connection waits at most the pool's
    // timeout).
    let windows = [
        (a_start - Duration::from_secs(1), a_resumed),
        (b_start - Duration::from_secs(1), b_resumed),
    ];
    for (at, err) in &record.errors {
        assert!(
            err.is_retryable() || err.is_outcome_unknown(),
            "an error that says neither retryable nor outcome unknown: {err}"
        );
        assert!(
            windows.iter().any(|(from, to)| at >= from && at <= to),
            "an error outside the switches, {:?} after the start \
             (switches at {:?} and {:?}): {err}\n{}",
            at.duration_since(started),
            a_start.duration_since(started),
            b_start.duration_since(started),
            formation.logs()
        );
    }
    let retryable = record
        .errors
        .iter()
        .filter(|(_, e)| e.is_retryable())
        .count();
    let unknown = record.errors.len() - retryable;

    let (a_gap, a_back) = longest_gap(&record.successes, a_start, b_start);
    let (b_gap, b_back) = longest_gap(&record.successes, b_start, b_end);
    let (a_back, b_back) = (a_back - a_start, b_back - b_start);
    print_events("(a) perform failover", &a_events);
    print_events("(b) primary stopped (immediate)", &b_events);
    eprintln!(
        "FAILOVER RESULT: {} writes acknowledged, all present; {} errors reached callers \
         ({retryable} retryable, {unknown} outcome unknown)",
        record.acknowledged.len(),
        record.errors.len()
    );
    eprintln!(
        "FAILOVER RESULT: (a) perform failover: longest stretch without a successful write {:.2} s; \
         writes back {:.2} s after the command; monitor: {}",
        a_gap.as_secs_f64(),
        a_back.as_secs_f64(),
        formation_timing(&a_events, a_wall)
    );
    eprintln!(
        "FAILOVER RESULT: (b) primary stopped: longest stretch without a successful write {:.2} s; \
         writes back {:.2} s after the stop; monitor: {}",
        b_gap.as_secs_f64(),
        b_back.as_secs_f64(),
        formation_timing(&b_events, b_wall)
    );
    eprintln!(
        "FAILOVER RESULT: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
