//! The kernel ledger (and, below it, the session queue): what
//! `docs/kernel.md` promises, on every backend.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------
// Helpers

/// A complete event with idempotency key `key`, in session `SR-1`, about
/// aggregate `session_run/SR-1`.
pub(super) fn kernel_event(key: &str) -> NewKernelEvent {
    NewKernelEvent {
        event_version: "1".into(),
        kernel_task_run_id: "KTR-1".into(),
        session_run_id: "SR-1".into(),
        aggregate_type: "session_run".into(),
        aggregate_id: "SR-1".into(),
        idempotency_key: key.into(),
        event_type: "SESSION_QUEUED".into(),
        actor: KernelActor::new(KernelActorKind::SessionBroker, "broker-1"),
        causation_id: None,
        correlation_id: Some("corr-1".into()),
        source_component: "conformance".into(),
        payload: json!({"step": key, "nested": {"b": [1, 2.5, "x"], "a": null}}),
    }
}

/// Every event in the ledger, by sequence.
pub(super) fn whole_ledger(store: &dyn Storage) -> Vec<KernelEvent> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .list_kernel_events_after(after, 1000)
            .expect("tail of the ledger");
        match page.last() {
            Some(last) => after = last.event_sequence,
            None => return out,
        }
        out.extend(page);
    }
}

/// The fields an append was given, as the stored event has them.
#[track_caller]
fn assert_holds(stored: &KernelEvent, new: &NewKernelEvent) {
    assert_eq!(stored.event_version, new.event_version);
    assert_eq!(stored.kernel_task_run_id, new.kernel_task_run_id);
    assert_eq!(stored.session_run_id, new.session_run_id);
    assert_eq!(stored.aggregate_type, new.aggregate_type);
    assert_eq!(stored.aggregate_id, new.aggregate_id);
    assert_eq!(stored.idempotency_key, new.idempotency_key);
    assert_eq!(stored.event_type, new.event_type);
    assert_eq!(stored.actor, new.actor);
    assert_eq!(stored.causation_id, new.causation_id);
    assert_eq!(stored.correlation_id, new.correlation_id);
    assert_eq!(stored.source_component, new.source_component);
    assert_eq!(stored.payload, new.payload);
}

// ---------------------------------------------------------------------------
// Ledger

/// An append stores every field and assigns `KE-<uuid v7>`, the next
/// sequence (from 1), the canonical payload hash and the time.
pub fn kernel_append_assigns_id_sequence_hash_and_time(h: &Harness) {
    let store = h.store();
    let before = Utc::now() - Duration::seconds(5);
    let mut events = Vec::new();
    for (n, kind) in KernelActorKind::ALL.into_iter().enumerate() {
        let new = NewKernelEvent {
            actor: KernelActor::new(kind, format!("actor-{n}")),
            causation_id: (n % 2 == 0).then(|| format!("cause-{n}")),
            correlation_id: None,
            ..kernel_event(&format!("k-{n}"))
        };
        let event = store.append_kernel_event(new.clone()).expect("append");
        assert_holds(&event, &new);
        assert_eq!(event.event_sequence, n as i64 + 1, "dense, from 1");
        let id = event.event_id.strip_prefix("KE-").expect("KE- prefix");
        let uuid = Uuid::parse_str(id).expect("a uuid after KE-");
        assert_eq!(uuid.get_version_num(), 7, "uuid v7");
        assert_eq!(event.payload_hash.len(), 64);
        assert_eq!(
            event.payload_hash,
            crate::kernel::payload_hash(&new.payload)
        );
        assert!(event.created_at > before && event.created_at < Utc::now() + Duration::seconds(5));
        events.push(event);
    }
    assert_eq!(whole_ledger(store), events, "read back as appended");
    // The hash is of the canonical JSON: sorted keys, no whitespace.
    let known = store
        .append_kernel_event(NewKernelEvent {
            payload: json!({"b": 1, "a": [true, null]}),
            ..kernel_event("known-hash")
        })
        .expect("append");
    assert_eq!(
        known.payload_hash,
        crate::kernel::payload_hash(&json!({"a": [true, null], "b": 1}))
    );
    assert_eq!(
        crate::kernel::canonical_json(&json!({"b": 1, "a": [true, null]})),
        r#"{"a":[true,null],"b":1}"#
    );
}

/// A blank required field (after trimming), a blank optional id, an
/// `event_type` that is not SCREAMING_SNAKE, a NUL byte, and the `Default`
/// event are `Validation`, and nothing is written.
pub fn kernel_append_invalid_events_are_validation(h: &Harness) {
    let store = h.store();
    type Set = fn(&mut NewKernelEvent, String);
    let blanks: Vec<(&str, Set)> = vec![
        ("event_version", |e, v| e.event_version = v),
        ("kernel_task_run_id", |e, v| e.kernel_task_run_id = v),
        ("session_run_id", |e, v| e.session_run_id = v),
        ("aggregate_type", |e, v| e.aggregate_type = v),
        ("aggregate_id", |e, v| e.aggregate_id = v),
        ("idempotency_key", |e, v| e.idempotency_key = v),
        ("event_type", |e, v| e.event_type = v),
        ("actor.id", |e, v| e.actor.id = v),
        ("source_component", |e, v| e.source_component = v),
        ("causation_id", |e, v| e.causation_id = Some(v)),
        ("correlation_id", |e, v| e.correlation_id = Some(v)),
    ];
    for (field, set) in blanks {
        for blank in ["", "  ", "\t\n"] {
            let event = edited(kernel_event("k"), |e| set(e, blank.to_string()));
            let err = expect_kind(store.append_kernel_event(event), ErrorKind::Validation);
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }
    for bad in [
        "session_queued",
        "Session_Queued",
        "SESSION-QUEUED",
        "1_EVENT",
        "_X",
        "SESSION QUEUED",
    ] {
        let event = NewKernelEvent {
            event_type: bad.into(),
            ..kernel_event("k")
        };
        let err = expect_kind(store.append_kernel_event(event), ErrorKind::Validation);
        assert!(err.to_string().contains("event_type"), "{bad}: {err}");
    }
    expect_kind(
        store.append_kernel_event(NewKernelEvent {
            aggregate_id: "a\0b".into(),
            ..kernel_event("k")
        }),
        ErrorKind::Validation,
    );
    expect_kind(
        store.append_kernel_event(NewKernelEvent {
            payload: json!({"text": "nul \0 here"}),
            ..kernel_event("k")
        }),
        ErrorKind::Validation,
    );
    expect_kind(
        store.append_kernel_event(NewKernelEvent::default()),
        ErrorKind::Validation,
    );
    assert!(whole_ledger(store).is_empty(), "nothing written");
    // Valid forms of the checked fields.
    store
        .append_kernel_event(NewKernelEvent {
            event_type: "SESSION_2_DONE".into(),
            ..kernel_event("ok")
        })
        .expect("digits and underscores are SCREAMING_SNAKE");
}

/// The same key with the same content returns the stored event, whatever
/// the payload's key order, writes nothing and uses no sequence number.
pub fn kernel_append_same_key_same_content_returns_stored(h: &Harness) {
    let store = h.store();
    let first = store
        .append_kernel_event(kernel_event("once"))
        .expect("append");
    let reordered: Value =
        serde_json::from_str(r#"{"nested": {"a": null, "b": [1, 2.5, "x"]}, "step": "once"}"#)
            .expect("json");
    for payload in [kernel_event("once").payload, reordered] {
        let again = store
            .append_kernel_event(NewKernelEvent {
                payload,
                ..kernel_event("once")
            })
            .expect("idempotent append");
        assert_eq!(again, first, "the stored event, unchanged");
    }
    let batch = store
        .append_kernel_events_atomic(vec![kernel_event("once"), kernel_event("twice")])
        .expect("batch with a known key");
    assert_eq!(batch[0], first);
    assert_eq!(
        batch[1].event_sequence, 2,
        "no sequence number used by a repeat"
    );
    assert_eq!(whole_ledger(store).len(), 2);
}

/// The same key with other content is `Conflict` naming the key and every
/// field that differs, and writes nothing.
pub fn kernel_append_same_key_other_content_is_conflict(h: &Harness) {
    let store = h.store();
    let first = store
        .append_kernel_event(kernel_event("key-1"))
        .expect("append");
    let err = expect_kind(
        store.append_kernel_event(NewKernelEvent {
            event_type: "SESSION_CLAIMED".into(),
            payload: json!({"other": true}),
            ..kernel_event("key-1")
        }),
        ErrorKind::Conflict,
    );
    let text = err.to_string();
    for named in ["key-1", "event_type", "payload"] {
        assert!(text.contains(named), "{named} in {text}");
    }
    for unnamed in ["aggregate_id", "actor", "source_component"] {
        assert!(!text.contains(unnamed), "{unnamed} not in {text}");
    }
    let others: Vec<(&str, NewKernelEvent)> = vec![
        (
            "event_version",
            NewKernelEvent {
                event_version: "2".into(),
                ..kernel_event("key-1")
            },
        ),
        (
            "kernel_task_run_id",
            NewKernelEvent {
                kernel_task_run_id: "KTR-2".into(),
                ..kernel_event("key-1")
            },
        ),
        (
            "session_run_id",
            NewKernelEvent {
                session_run_id: "SR-2".into(),
                ..kernel_event("key-1")
            },
        ),
        (
            "aggregate_type",
            NewKernelEvent {
                aggregate_type: "task".into(),
                ..kernel_event("key-1")
            },
        ),
        (
            "aggregate_id",
            NewKernelEvent {
                aggregate_id: "SR-2".into(),
                ..kernel_event("key-1")
            },
        ),
        (
            "actor.kind",
            NewKernelEvent {
                actor: KernelActor::new(KernelActorKind::Operator, "broker-1"),
                ..kernel_event("key-1")
            },
        ),
        (
            "actor.id",
            NewKernelEvent {
                actor: KernelActor::new(KernelActorKind::SessionBroker, "broker-2"),
                ..kernel_event("key-1")
            },
        ),
        (
            "causation_id",
            NewKernelEvent {
                causation_id: Some("KE-x".into()),
                ..kernel_event("key-1")
            },
        ),
        (
            "correlation_id",
            NewKernelEvent {
                correlation_id: None,
                ..kernel_event("key-1")
            },
        ),
        (
            "source_component",
            NewKernelEvent {
                source_component: "other".into(),
                ..kernel_event("key-1")
            },
        ),
        (
            "payload",
            NewKernelEvent {
                payload: json!({"step": "key-1"}),
                ..kernel_event("key-1")
            },
        ),
    ];
    for (field, event) in others {
        let err = expect_kind(store.append_kernel_event(event), ErrorKind::Conflict);
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    assert_eq!(whole_ledger(store), vec![first], "nothing written");
}

/// A batch is all or nothing: a conflict or invalid event anywhere in it
/// writes none of it; a good batch is stored in order with ascending
/// sequences.
pub fn kernel_append_batch_is_all_or_nothing(h: &Harness) {
    let store = h.store();
    let existing = store
        .append_kernel_event(kernel_event("taken"))
        .expect("append");
    let conflicting = NewKernelEvent {
        event_type: "OTHER".into(),
        ..kernel_event("taken")
    };
    expect_kind(
        store.append_kernel_events_atomic(vec![
            kernel_event("b-1"),
            kernel_event("b-2"),
            conflicting,
        ]),
        ErrorKind::Conflict,
    );
    expect_kind(
        store.append_kernel_events_atomic(vec![
            kernel_event("b-1"),
            NewKernelEvent {
                source_component: " ".into(),
                ..kernel_event("b-2")
            },
        ]),
        ErrorKind::Validation,
    );
    // A key twice in one batch with other content.
    expect_kind(
        store.append_kernel_events_atomic(vec![
            kernel_event("b-1"),
            NewKernelEvent {
                payload: json!(1),
                ..kernel_event("b-1")
            },
        ]),
        ErrorKind::Conflict,
    );
    assert_eq!(
        whole_ledger(store),
        vec![existing.clone()],
        "nothing written"
    );
    assert!(store
        .append_kernel_events_atomic(Vec::new())
        .expect("empty")
        .is_empty());
    let batch = store
        .append_kernel_events_atomic(vec![
            kernel_event("b-1"),
            kernel_event("b-2"),
            kernel_event("b-1"),
        ])
        .expect("batch");
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].event_sequence, 2);
    assert_eq!(batch[1].event_sequence, 3);
    assert_eq!(
        batch[2], batch[0],
        "a repeat within the batch is the same event"
    );
    assert_eq!(
        whole_ledger(store),
        vec![existing, batch[0].clone(), batch[1].clone()]
    );
}

/// The pair's second event is caused by the first; both or neither.
pub fn kernel_append_pair_links_causation_all_or_nothing(h: &Harness) {
    let store = h.store();
    let (first, second) = store
        .append_kernel_event_pair_atomic_with_causation(
            kernel_event("cause"),
            NewKernelEvent {
                causation_id: Some("ignored".into()),
                ..kernel_event("effect")
            },
        )
        .expect("pair");
    assert_eq!(
        second.causation_id.as_deref(),
        Some(first.event_id.as_str())
    );
    assert_eq!(second.event_sequence, first.event_sequence + 1);
    // Repeating the pair returns both stored events.
    let again = store
        .append_kernel_event_pair_atomic_with_causation(
            kernel_event("cause"),
            kernel_event("effect"),
        )
        .expect("idempotent pair");
    assert_eq!(again, (first.clone(), second.clone()));
    // A second event that conflicts leaves the first unwritten too.
    expect_kind(
        store.append_kernel_event_pair_atomic_with_causation(
            kernel_event("new-cause"),
            NewKernelEvent {
                event_type: "OTHER".into(),
                ..kernel_event("effect")
            },
        ),
        ErrorKind::Conflict,
    );
    expect_kind(
        store.append_kernel_event_pair_atomic_with_causation(
            kernel_event("new-cause"),
            NewKernelEvent {
                event_version: "".into(),
                ..kernel_event("new-effect")
            },
        ),
        ErrorKind::Validation,
    );
    assert_eq!(whole_ledger(store), vec![first, second]);
}

/// Events of a session and of an aggregate, each by sequence; unknown ones
/// have none; a NUL byte in an argument is `Validation`.
pub fn kernel_lists_by_session_and_aggregate_in_sequence_order(h: &Harness) {
    let store = h.store();
    let at = |key: &str, session: &str, kind: &str, id: &str| NewKernelEvent {
        session_run_id: session.into(),
        aggregate_type: kind.into(),
        aggregate_id: id.into(),
        ..kernel_event(key)
    };
    let mut all = Vec::new();
    // Keys and ids out of their sequence order, so only the sequence orders.
    for (key, session, kind, id) in [
        ("z", "SR-b", "session_run", "SR-b"),
        ("y", "SR-a", "session_run", "SR-a"),
        ("x", "SR-b", "task", "T-1"),
        ("w", "SR-a", "task", "T-1"),
        ("v", "SR-b", "session_run", "SR-b"),
        ("u", "SR-a", "task", "T-2"),
    ] {
        all.push(
            store
                .append_kernel_event(at(key, session, kind, id))
                .expect("append"),
        );
    }
    let pick = |idx: &[usize]| idx.iter().map(|&i| all[i].clone()).collect::<Vec<_>>();
    assert_eq!(
        store.list_kernel_events_for_session("SR-b").expect("list"),
        pick(&[0, 2, 4])
    );
    assert_eq!(
        store.list_kernel_events_for_session("SR-a").expect("list"),
        pick(&[1, 3, 5])
    );
    assert_eq!(
        store
            .list_kernel_events_for_aggregate("task", "T-1")
            .expect("list"),
        pick(&[2, 3])
    );
    assert_eq!(
        store
            .list_kernel_events_for_aggregate("session_run", "SR-b")
            .expect("list"),
        pick(&[0, 4])
    );
    assert!(store
        .list_kernel_events_for_session("SR-none")
        .expect("list")
        .is_empty());
    assert!(store
        .list_kernel_events_for_aggregate("task", "SR-a")
        .expect("list")
        .is_empty());
    assert!(store
        .list_kernel_events_for_aggregate("session_run", "T-1")
        .expect("list")
        .is_empty());
    expect_kind(
        store.list_kernel_events_for_session("a\0"),
        ErrorKind::Validation,
    );
    expect_kind(
        store.list_kernel_events_for_aggregate("task", "\0"),
        ErrorKind::Validation,
    );
}

/// Paging the tail from 0 returns every event once, in ascending sequence;
/// a limit of 0 and a negative position are `Validation`.
pub fn kernel_tail_pages_every_event_once_in_order(h: &Harness) {
    let store = h.store();
    assert!(store
        .list_kernel_events_after(0, 10)
        .expect("empty ledger")
        .is_empty());
    let appended: Vec<KernelEvent> = (0..7)
        .map(|n| {
            store
                .append_kernel_event(kernel_event(&format!("t-{n}")))
                .expect("append")
        })
        .collect();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.list_kernel_events_after(after, 3).expect("page");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.event_sequence;
        seen.extend(page);
    }
    assert_eq!(seen, appended);
    assert_eq!(
        store.list_kernel_events_after(5, 1).expect("page"),
        vec![appended[5].clone()]
    );
    assert!(store
        .list_kernel_events_after(i64::MAX, u32::MAX)
        .expect("past the end")
        .is_empty());
    expect_kind(store.list_kernel_events_after(0, 0), ErrorKind::Validation);
    expect_kind(
        store.list_kernel_events_after(-1, 10),
        ErrorKind::Validation,
    );
}

/// Payloads of any shape, and text of any valid UTF-8, come back equal.
pub fn kernel_events_roundtrip_payloads_and_text(h: &Harness) {
    let store = h.store();
    let payloads = [
        json!(null),
        json!([]),
        json!("just text ✓"),
        json!(-9_223_372_036_854_775_808_i64),
        json!(18_446_744_073_709_551_615_u64),
        json!({"unicode": "é 📄 \u{1F600}", "deep": {"a": {"b": {"c": [1, {"d": 0.1}]}}}}),
        json!({"big": "x".repeat(100_000)}),
    ];
    for (n, payload) in payloads.into_iter().enumerate() {
        let new = NewKernelEvent {
            aggregate_id: format!("agg \"quoted\" 'single' \\ {n} 日本"),
            payload,
            ..kernel_event(&format!("rt-{n} ✓"))
        };
        let event = store.append_kernel_event(new.clone()).expect("append");
        assert_holds(&event, &new);
        let listed = store
            .list_kernel_events_for_aggregate(&new.aggregate_type, &new.aggregate_id)
            .expect("list");
        assert_eq!(listed, vec![event.clone()]);
        let again = store.append_kernel_event(new).expect("idempotent");
        assert_eq!(again, event);
    }
}

/// Eight threads appending one new key at once: one row, and every caller
/// gets it (upstream fails the losers).
pub fn kernel_concurrent_first_appends_of_one_key_write_one_row(h: &Harness) {
    let store = h.shared_store();
    for round in 0..3 {
        let key = format!("race-{round}");
        let barrier = std::sync::Barrier::new(8);
        let got: Vec<KernelEvent> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (store, key, barrier) = (&store, &key, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        store.append_kernel_event(kernel_event(key))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|t| {
                    t.join()
                        .expect("appender panicked")
                        .expect("every caller succeeds")
                })
                .collect()
        });
        assert!(got.iter().all(|e| e == &got[0]), "all got the one event");
    }
    let ledger = whole_ledger(&*store);
    assert_eq!(ledger.len(), 3, "one row per key");
    assert_eq!(
        ledger.iter().map(|e| e.event_sequence).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

// ---------------------------------------------------------------------------
// Session queue

/// A short lease, for the cases that wait for one to end.
const SHORT_LEASE: std::time::Duration = std::time::Duration::from_millis(1000);
/// A lease no case outlives.
const LONG_LEASE: std::time::Duration = std::time::Duration::from_secs(600);

/// Waits until a lease of [`SHORT_LEASE`] taken before the call has ended.
fn outlive_short_lease() {
    std::thread::sleep(SHORT_LEASE + std::time::Duration::from_millis(150));
}

/// Enqueues a fresh run of `adapter`.
pub(super) fn enqueue(store: &dyn Storage, adapter: &str) -> SessionRun {
    store
        .enqueue_kernel_session_run(SessionRun::queued("KTR-1", adapter))
        .expect("enqueue")
}

/// Claims run `id` for `worker`, which must succeed.
#[track_caller]
fn claim(store: &dyn Storage, id: &str, worker: &str) -> KernelSessionLease {
    store
        .claim_kernel_session_run(id, worker, LONG_LEASE)
        .expect("claim")
        .expect("claimable")
}

/// Moves run `id` to `state` (fenced by `lease` when given).
#[track_caller]
fn move_to(
    store: &dyn Storage,
    id: &str,
    state: SessionRunState,
    lease: Option<&KernelSessionLease>,
) -> KernelSessionLease {
    let mut update = SessionRunUpdate::to(state);
    if let Some(fence) = lease.and_then(KernelSessionLease::fence) {
        update = update.fenced(fence);
    }
    store
        .update_kernel_session_run_state(id, update)
        .unwrap_or_else(|e| panic!("{id} to {state}: {e}"))
}

/// A fresh run brought to `state` through legal moves.
fn run_in(store: &dyn Storage, state: SessionRunState) -> String {
    use SessionRunState::*;
    let id = enqueue(store, "adapter").session_run_id;
    let via: &[SessionRunState] = match state {
        Queued => &[],
        Claimed => &[Claimed],
        Running => &[Claimed, Running],
        Completed => &[Claimed, Running, Completed],
        Failed => &[Claimed, Running, Failed],
        Cancelled => &[Cancelled],
        BackpressureDelayed => &[BackpressureDelayed],
        RetryScheduled => &[Claimed, RetryScheduled],
        DeadLettered => &[Claimed, Running, Failed, DeadLettered],
    };
    for &step in via {
        if step == Claimed {
            claim(store, &id, "w");
        } else {
            move_to(store, &id, step, None);
        }
    }
    id
}

/// Enqueue stores a `Queued` run with the database's times; a duplicate
/// id is `Conflict`; blank fields and another state are `Validation`.
pub fn kernel_queue_enqueue_validates_and_refuses_duplicates(h: &Harness) {
    let store = h.store();
    let asked = SessionRun::queued("KTR-7", "adapter-a");
    let id = asked
        .session_run_id
        .strip_prefix("SR-")
        .expect("SR- prefix");
    assert_eq!(Uuid::parse_str(id).expect("uuid").get_version_num(), 7);
    let before = Utc::now() - Duration::seconds(5);
    let run = store
        .enqueue_kernel_session_run(asked.clone())
        .expect("enqueue");
    assert_eq!(run.session_run_id, asked.session_run_id);
    assert_eq!(
        (run.kernel_task_run_id.as_str(), run.adapter_id.as_str()),
        ("KTR-7", "adapter-a")
    );
    assert_eq!(run.state, SessionRunState::Queued);
    assert!(run.created_at > before && run.created_at < Utc::now() + Duration::seconds(5));
    assert_eq!(run.created_at, run.updated_at);
    expect_kind(
        store.enqueue_kernel_session_run(asked.clone()),
        ErrorKind::Conflict,
    );
    for bad in [
        SessionRun {
            session_run_id: " ".into(),
            ..asked.clone()
        },
        SessionRun {
            kernel_task_run_id: "".into(),
            ..SessionRun::queued("x", "a")
        },
        SessionRun {
            adapter_id: "\t".into(),
            ..SessionRun::queued("x", "a")
        },
        SessionRun {
            adapter_id: "a\0".into(),
            ..SessionRun::queued("x", "a")
        },
        SessionRun {
            state: SessionRunState::Running,
            ..SessionRun::queued("x", "a")
        },
    ] {
        expect_kind(store.enqueue_kernel_session_run(bad), ErrorKind::Validation);
    }
    let lease = store
        .claim_next_kernel_session_run("w", LONG_LEASE, None)
        .expect("claim next")
        .expect("the one run");
    assert_eq!(lease.session_run_id, run.session_run_id);
    assert!(store
        .claim_next_kernel_session_run("w", LONG_LEASE, None)
        .expect("next")
        .is_none());
}

/// A claim of a named run: attempt 1, the worker, a lease on the
/// database's clock, a fence; a live claim is not claimable again; an
/// unknown run is `NotFound`; a zero lease and a blank worker are
/// `Validation`.
pub fn kernel_queue_claim_named_run(h: &Harness) {
    let store = h.store();
    let run = enqueue(store, "adapter");
    expect_kind(
        store.claim_kernel_session_run(&run.session_run_id, "w", std::time::Duration::ZERO),
        ErrorKind::Validation,
    );
    expect_kind(
        store.claim_kernel_session_run(&run.session_run_id, "  ", LONG_LEASE),
        ErrorKind::Validation,
    );
    expect_kind(
        store.claim_kernel_session_run("SR-missing", "w", LONG_LEASE),
        ErrorKind::NotFound,
    );
    let lease = claim(store, &run.session_run_id, "worker-1");
    assert_eq!(lease.state, SessionRunState::Claimed);
    assert_eq!(lease.attempt_count, 1);
    assert_eq!(lease.claimed_by.as_deref(), Some("worker-1"));
    let expires = lease.lease_expires_at.expect("a lease");
    assert_eq!(
        lease.available_at, expires,
        "available again when the lease ends"
    );
    assert_eq!(
        expires - lease.updated_at,
        Duration::seconds(600),
        "lease from the database's clock"
    );
    assert_eq!(
        lease.fence(),
        Some(LeaseFence {
            session_run_id: run.session_run_id.clone(),
            claimed_by: "worker-1".into(),
            attempt: 1,
        })
    );
    assert!(store
        .claim_kernel_session_run(&run.session_run_id, "worker-2", LONG_LEASE)
        .expect("claim")
        .is_none());
    assert!(store
        .claim_next_kernel_session_run("worker-2", LONG_LEASE, None)
        .expect("next")
        .is_none());
    let finished = run_in(store, SessionRunState::Completed);
    assert!(
        store
            .claim_kernel_session_run(&finished, "w", LONG_LEASE)
            .expect("claim")
            .is_none(),
        "a completed run is not claimable"
    );
    // A retry is claimable again, with the next attempt.
    let retry = run_in(store, SessionRunState::RetryScheduled);
    assert_eq!(claim(store, &retry, "w2").attempt_count, 2);
}

/// Every pair of states: the 17 legal moves succeed, every other move is
/// `Validation` and changes nothing; a move to `Claimed` goes through the
/// claim methods only.
pub fn kernel_queue_legal_and_illegal_moves(h: &Harness) {
    let store = h.store();
    let mut legal = 0;
    for from in SessionRunState::ALL {
        for to in SessionRunState::ALL {
            let id = run_in(store, from);
            let result = store.update_kernel_session_run_state(&id, SessionRunUpdate::to(to));
            if to != SessionRunState::Claimed && from.can_move_to(to) {
                let lease = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(lease.state, to);
                legal += 1;
            } else {
                let err = expect_kind(result, ErrorKind::Validation);
                assert!(
                    err.to_string().contains(if to == SessionRunState::Claimed {
                        "claim"
                    } else {
                        from.as_str()
                    }),
                    "{from} -> {to}: {err}"
                );
                let again = store.update_kernel_session_run_state(&id, SessionRunUpdate::to(to));
                assert!(again.is_err(), "still {from}: {again:?}");
            }
        }
    }
    assert_eq!(
        legal,
        17 - 2,
        "the 17 legal moves, less the two into Claimed"
    );
    for from in [SessionRunState::Queued, SessionRunState::RetryScheduled] {
        let id = run_in(store, from);
        assert_eq!(
            claim(store, &id, "w").state,
            SessionRunState::Claimed,
            "{from} -> CLAIMED by a claim"
        );
    }
    expect_kind(
        store.update_kernel_session_run_state(
            "SR-missing",
            SessionRunUpdate::to(SessionRunState::Cancelled),
        ),
        ErrorKind::NotFound,
    );
}

/// Claim-next takes the run available longest, of one adapter when asked,
/// skips live claims and delayed runs, and finds nothing when nothing is
/// claimable.
pub fn kernel_queue_claim_next_oldest_first_and_by_adapter(h: &Harness) {
    let store = h.store();
    let first = enqueue(store, "a");
    pause();
    let second = enqueue(store, "b");
    pause();
    let third = enqueue(store, "a");
    assert!(store
        .claim_next_kernel_session_run("w", LONG_LEASE, Some("none"))
        .expect("next")
        .is_none());
    let got = store
        .claim_next_kernel_session_run("w", LONG_LEASE, Some("b"))
        .expect("next")
        .expect("b's run");
    assert_eq!(got.session_run_id, second.session_run_id);
    let got = store
        .claim_next_kernel_session_run("w", LONG_LEASE, None)
        .expect("next")
        .expect("oldest");
    assert_eq!(got.session_run_id, first.session_run_id);
    let got = store
        .claim_next_kernel_session_run("w", LONG_LEASE, Some("a"))
        .expect("next")
        .expect("a's next");
    assert_eq!(got.session_run_id, third.session_run_id);
    assert!(store
        .claim_next_kernel_session_run("w", LONG_LEASE, None)
        .expect("next")
        .is_none());
    // A retry with a delay waits for it.
    let retried = store
        .update_kernel_session_run_state(
            &first.session_run_id,
            SessionRunUpdate::to(SessionRunState::RetryScheduled)
                .fenced(LeaseFence {
                    session_run_id: first.session_run_id.clone(),
                    claimed_by: "w".into(),
                    attempt: 1,
                })
                .after(LONG_LEASE),
        )
        .expect("retry later");
    assert!(retried.available_at > Utc::now() + Duration::seconds(500));
    assert!(store
        .claim_next_kernel_session_run("w", LONG_LEASE, None)
        .expect("next")
        .is_none());
    expect_kind(
        store.claim_next_kernel_session_run("", LONG_LEASE, None),
        ErrorKind::Validation,
    );
}

/// A claim whose lease ended is taken over by the next claim (named or
/// next): a new attempt; the old claim ends with no outcome, and its fence
/// is `Conflict` on renew and on every state change.
pub fn kernel_queue_expired_lease_is_reclaimed_and_old_fence_refused(h: &Harness) {
    let store = h.store();
    let held = enqueue(store, "a");
    let running = enqueue(store, "a");
    let old = store
        .claim_kernel_session_run(&held.session_run_id, "dead-worker", SHORT_LEASE)
        .expect("claim")
        .expect("claimable");
    let old_running = store
        .claim_kernel_session_run(&running.session_run_id, "dead-worker", SHORT_LEASE)
        .expect("claim")
        .expect("claimable");
    let old_running = move_to(
        store,
        &running.session_run_id,
        SessionRunState::Running,
        Some(&old_running),
    );
    assert!(
        store
            .claim_next_kernel_session_run("w2", LONG_LEASE, None)
            .expect("next")
            .is_none(),
        "live leases"
    );
    outlive_short_lease();
    let new = store
        .claim_next_kernel_session_run("w2", LONG_LEASE, None)
        .expect("next")
        .expect("expired claim");
    assert_eq!(
        new.session_run_id, held.session_run_id,
        "the lease that ended first"
    );
    assert_eq!(
        (new.attempt_count, new.claimed_by.as_deref()),
        (2, Some("w2"))
    );
    let taken = claim(store, &running.session_run_id, "w3");
    assert_eq!(
        (taken.attempt_count, taken.state),
        (2, SessionRunState::Claimed),
        "a RUNNING run whose lease ended is taken over"
    );
    for (stale, id) in [
        (old.fence().expect("fence"), &held.session_run_id),
        (old_running.fence().expect("fence"), &running.session_run_id),
    ] {
        expect_kind(
            store.renew_kernel_session_lease(&stale, LONG_LEASE),
            ErrorKind::Conflict,
        );
        for to in [
            SessionRunState::Running,
            SessionRunState::Completed,
            SessionRunState::Failed,
            SessionRunState::Cancelled,
            SessionRunState::RetryScheduled,
        ] {
            let err = expect_kind(
                store.update_kernel_session_run_state(
                    id,
                    SessionRunUpdate::to(to).fenced(stale.clone()),
                ),
                ErrorKind::Conflict,
            );
            assert!(err.to_string().contains("not the current claim"), "{err}");
        }
    }
    let claims = store
        .list_kernel_session_claims(&held.session_run_id)
        .expect("claims");
    assert_eq!(claims.len(), 2);
    assert_eq!(
        (
            claims[0].attempt,
            claims[0].claimed_by.as_str(),
            claims[0].outcome
        ),
        (1, "dead-worker", None)
    );
    assert!(
        claims[0].ended_at.is_some(),
        "the expired claim ended at the takeover"
    );
    assert_eq!((claims[1].attempt, claims[1].ended_at), (2, None));
    // The new claim's fence works.
    let done = move_to(
        store,
        &held.session_run_id,
        SessionRunState::Running,
        Some(&new),
    );
    assert_eq!(done.attempt_count, 2);
}

/// Renewing moves the lease (and `available_at`) forward on the
/// database's clock and in the claim history; a fence of a claim that
/// ended, of another worker or of another attempt is `Conflict`; an
/// unknown run is `NotFound`.
pub fn kernel_queue_renew_extends_the_current_claim_only(h: &Harness) {
    let store = h.store();
    let run = enqueue(store, "a");
    let lease = store
        .claim_kernel_session_run(&run.session_run_id, "w", SHORT_LEASE)
        .expect("claim")
        .expect("claimable");
    let fence = lease.fence().expect("fence");
    let renewed = store
        .renew_kernel_session_lease(&fence, LONG_LEASE)
        .expect("renew");
    let expires = renewed.lease_expires_at.expect("lease");
    assert!(expires > lease.lease_expires_at.expect("lease") + Duration::seconds(500));
    assert_eq!(renewed.available_at, expires);
    outlive_short_lease();
    assert!(
        store
            .claim_next_kernel_session_run("w2", LONG_LEASE, None)
            .expect("next")
            .is_none(),
        "renewed, so still held"
    );
    let claims = store
        .list_kernel_session_claims(&run.session_run_id)
        .expect("claims");
    assert_eq!(claims[0].lease_expires_at, expires);
    for wrong in [
        LeaseFence {
            attempt: 2,
            ..fence.clone()
        },
        LeaseFence {
            claimed_by: "other".into(),
            ..fence.clone()
        },
    ] {
        expect_kind(
            store.renew_kernel_session_lease(&wrong, LONG_LEASE),
            ErrorKind::Conflict,
        );
    }
    expect_kind(
        store.renew_kernel_session_lease(
            &LeaseFence {
                session_run_id: "SR-missing".into(),
                ..fence.clone()
            },
            LONG_LEASE,
        ),
        ErrorKind::NotFound,
    );
    expect_kind(
        store.renew_kernel_session_lease(&fence, std::time::Duration::ZERO),
        ErrorKind::Validation,
    );
    let running = move_to(
        store,
        &run.session_run_id,
        SessionRunState::Running,
        Some(&renewed),
    );
    store
        .renew_kernel_session_lease(&fence, LONG_LEASE)
        .expect("renew while running");
    move_to(
        store,
        &run.session_run_id,
        SessionRunState::Completed,
        Some(&running),
    );
    expect_kind(
        store.renew_kernel_session_lease(&fence, LONG_LEASE),
        ErrorKind::Conflict,
    );
}

/// A delay makes a retry or a backpressured run available that long from
/// now (and no sooner, through `Queued` too); a delay on another state is
/// `Validation`.
pub fn kernel_queue_delay_pushes_available_at(h: &Harness) {
    let store = h.store();
    let retry = enqueue(store, "a");
    let lease = claim(store, &retry.session_run_id, "w");
    let delayed = store
        .update_kernel_session_run_state(
            &retry.session_run_id,
            SessionRunUpdate::to(SessionRunState::RetryScheduled)
                .fenced(lease.fence().expect("fence"))
                .after(SHORT_LEASE),
        )
        .expect("retry after a delay");
    assert_eq!(
        delayed.available_at - delayed.updated_at,
        Duration::milliseconds(1000)
    );
    assert_eq!(delayed.lease_expires_at, None, "the claim ended");
    let held_back = enqueue(store, "a");
    let backpressured = store
        .update_kernel_session_run_state(
            &held_back.session_run_id,
            SessionRunUpdate::to(SessionRunState::BackpressureDelayed).after(SHORT_LEASE),
        )
        .expect("backpressure");
    let queued = move_to(
        store,
        &held_back.session_run_id,
        SessionRunState::Queued,
        None,
    );
    assert_eq!(
        queued.available_at, backpressured.available_at,
        "back in the queue, still delayed"
    );
    assert!(store
        .claim_next_kernel_session_run("w", LONG_LEASE, None)
        .expect("next")
        .is_none());
    assert!(store
        .claim_kernel_session_run(&retry.session_run_id, "w", LONG_LEASE)
        .expect("claim")
        .is_none());
    outlive_short_lease();
    let mut got = BTreeSet::new();
    while let Some(l) = store
        .claim_next_kernel_session_run("w", LONG_LEASE, None)
        .expect("next")
    {
        got.insert(l.session_run_id);
    }
    assert_eq!(
        got,
        BTreeSet::from([
            retry.session_run_id.clone(),
            held_back.session_run_id.clone()
        ])
    );
    let running = move_to(store, &retry.session_run_id, SessionRunState::Running, None);
    expect_kind(
        store.update_kernel_session_run_state(
            &retry.session_run_id,
            SessionRunUpdate::to(SessionRunState::Failed).after(SHORT_LEASE),
        ),
        ErrorKind::Validation,
    );
    assert_eq!(
        move_to(
            store,
            &retry.session_run_id,
            SessionRunState::Failed,
            Some(&running)
        )
        .state,
        SessionRunState::Failed
    );
    // A zero delay is available at once.
    let now_again = store
        .update_kernel_session_run_state(
            &retry.session_run_id,
            SessionRunUpdate::to(SessionRunState::RetryScheduled).after(std::time::Duration::ZERO),
        )
        .expect("retry now");
    assert_eq!(now_again.available_at, now_again.updated_at);
    assert!(store
        .claim_next_kernel_session_run("w", LONG_LEASE, None)
        .expect("next")
        .is_some());
}

/// The claim history: every claim, oldest first, with how each ended.
pub fn kernel_queue_claim_history_records_every_claim(h: &Harness) {
    let store = h.store();
    let run = enqueue(store, "a");
    let id = run.session_run_id.as_str();
    assert!(store
        .list_kernel_session_claims(id)
        .expect("claims")
        .is_empty());
    let first = claim(store, id, "w1");
    let running = move_to(store, id, SessionRunState::Running, Some(&first));
    assert_eq!(running.fence(), first.fence(), "running keeps the claim");
    move_to(store, id, SessionRunState::Failed, Some(&running));
    move_to(store, id, SessionRunState::RetryScheduled, None);
    let second = claim(store, id, "w2");
    move_to(store, id, SessionRunState::Cancelled, Some(&second));
    let claims = store.list_kernel_session_claims(id).expect("claims");
    assert_eq!(claims.len(), 2);
    assert_eq!(
        claims
            .iter()
            .map(|c| (c.attempt, c.claimed_by.as_str(), c.outcome))
            .collect::<Vec<_>>(),
        vec![
            (1, "w1", Some(SessionRunState::Failed)),
            (2, "w2", Some(SessionRunState::Cancelled))
        ]
    );
    for c in &claims {
        assert_eq!(c.session_run_id, id);
        let ended = c.ended_at.expect("ended");
        assert!(c.claimed_at <= ended);
    }
    assert_eq!(claims[0].claimed_at, first.updated_at);
    assert!(store
        .list_kernel_session_claims("SR-missing")
        .expect("claims")
        .is_empty());
    expect_kind(
        store.list_kernel_session_claims("\0"),
        ErrorKind::Validation,
    );
}

/// The `_and_record_event` variants write the state and its event in one
/// transaction: upstream's event types, the caller's causation and
/// correlation; a claim that finds nothing appends nothing; a refused
/// change appends nothing and changes nothing.
pub fn kernel_queue_record_event_variants_write_state_and_event_together(h: &Harness) {
    let store = h.store();
    let cause = || Some("KE-cause".to_string());
    let corr = || Some("corr-9".to_string());
    let (run, queued) = store
        .enqueue_kernel_session_run_and_record_event(
            SessionRun::queued("KTR-9", "a"),
            cause(),
            corr(),
        )
        .expect("enqueue and record");
    let id = run.session_run_id.clone();
    assert_eq!(queued.event_type, "SESSION_QUEUED");
    assert_eq!(
        (queued.session_run_id.as_str(), queued.aggregate_id.as_str()),
        (id.as_str(), id.as_str())
    );
    assert_eq!(queued.kernel_task_run_id, "KTR-9");
    assert_eq!(
        (queued.causation_id.clone(), queued.correlation_id.clone()),
        (cause(), corr())
    );
    let (lease, claimed) = store
        .claim_kernel_session_run_and_record_event(&id, "w", LONG_LEASE, None, corr())
        .expect("claim and record")
        .expect("claimable");
    assert_eq!(claimed.event_type, "SESSION_CLAIMED");
    assert_eq!(
        claimed.actor,
        KernelActor::new(KernelActorKind::SessionBroker, "w")
    );
    assert_eq!(claimed.payload["attempt"], json!(1));
    assert!(store
        .claim_kernel_session_run_and_record_event(&id, "w2", LONG_LEASE, None, None)
        .expect("claim")
        .is_none());
    let mut lease = lease;
    for (to, event_type) in [
        (SessionRunState::Running, "SESSION_STARTED"),
        (SessionRunState::Failed, "SESSION_FAILED"),
    ] {
        let (next, event) = store
            .update_kernel_session_run_state_and_record_event(
                &id,
                SessionRunUpdate::to(to).fenced(lease.fence().expect("fence")),
                cause(),
                None,
            )
            .expect("update and record");
        assert_eq!((next.state, event.event_type.as_str()), (to, event_type));
        assert_eq!(event.payload["state"], json!(to.as_str()));
        lease = next;
    }
    for (to, event_type) in [
        (SessionRunState::RetryScheduled, "SESSION_RETRY_SCHEDULED"),
        (SessionRunState::DeadLettered, "SESSION_DEAD_LETTERED"),
    ] {
        let (_, event) = store
            .update_kernel_session_run_state_and_record_event(
                &id,
                SessionRunUpdate::to(to),
                None,
                None,
            )
            .expect("update and record");
        assert_eq!(event.event_type, event_type);
    }
    let other = enqueue(store, "a");
    for (to, event_type) in [
        (
            SessionRunState::BackpressureDelayed,
            "SESSION_BACKPRESSURE_DELAYED",
        ),
        (SessionRunState::Cancelled, "SESSION_CANCELLED"),
    ] {
        let (_, event) = store
            .update_kernel_session_run_state_and_record_event(
                &other.session_run_id,
                SessionRunUpdate::to(to),
                None,
                None,
            )
            .expect("update and record");
        assert_eq!(event.event_type, event_type);
    }
    let done = run_in(store, SessionRunState::Running);
    let (_, completed) = store
        .update_kernel_session_run_state_and_record_event(
            &done,
            SessionRunUpdate::to(SessionRunState::Completed),
            None,
            None,
        )
        .expect("complete and record");
    assert_eq!(completed.event_type, "SESSION_COMPLETED");
    let events = store.list_kernel_events_for_session(&id).expect("events");
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        [
            "SESSION_QUEUED",
            "SESSION_CLAIMED",
            "SESSION_STARTED",
            "SESSION_FAILED",
            "SESSION_RETRY_SCHEDULED",
            "SESSION_DEAD_LETTERED"
        ]
    );
    // Refused: an illegal move, a stale fence, a blank causation. Nothing
    // is appended and the run is unchanged.
    let ledger = whole_ledger(store);
    let before = store.list_kernel_session_claims(&id).expect("claims");
    expect_kind(
        store.update_kernel_session_run_state_and_record_event(
            &id,
            SessionRunUpdate::to(SessionRunState::Running),
            None,
            None,
        ),
        ErrorKind::Validation,
    );
    let fresh = enqueue(store, "z");
    let held = claim(store, &fresh.session_run_id, "w");
    expect_kind(
        store.update_kernel_session_run_state_and_record_event(
            &fresh.session_run_id,
            SessionRunUpdate::to(SessionRunState::Running).fenced(LeaseFence {
                attempt: 9,
                ..held.fence().expect("fence")
            }),
            None,
            None,
        ),
        ErrorKind::Conflict,
    );
    expect_kind(
        store.update_kernel_session_run_state_and_record_event(
            &fresh.session_run_id,
            SessionRunUpdate::to(SessionRunState::Running),
            Some(" ".into()),
            None,
        ),
        ErrorKind::Validation,
    );
    expect_kind(
        store.enqueue_kernel_session_run_and_record_event(
            SessionRun::queued("KTR", "a"),
            None,
            Some("".into()),
        ),
        ErrorKind::Validation,
    );
    assert_eq!(whole_ledger(store), ledger, "nothing appended");
    assert_eq!(
        store.list_kernel_session_claims(&id).expect("claims"),
        before
    );
    assert_eq!(
        store
            .claim_kernel_session_run(&fresh.session_run_id, "w9", LONG_LEASE)
            .expect("claim"),
        None,
        "still claimed, not running"
    );
    let still = move_to(
        store,
        &fresh.session_run_id,
        SessionRunState::Running,
        Some(&held),
    );
    assert_eq!(still.attempt_count, 1);
}
