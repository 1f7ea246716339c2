//! `copy_store` and `verify_stores`, stamped for every pair of compiled
//! backends (`sqlite_to_sqlite`, `sqlite_to_postgres`, ...): exact copies of
//! hostile data, refusals, bad source rows, a concurrent writer, SIGKILL and
//! (PostgreSQL) terminated connections with resume. Every store is a fresh
//! SQLite file or PostgreSQL schema (the conformance harness).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use handshake_storage::conformance::{Harness, TestTarget};
use handshake_storage::copy::{copy_store, verify_stores, CopyOptions, CopyReport};
use handshake_storage::*;
use serde_json::{json, Value};
#[cfg(feature = "postgres")]
use uuid::Uuid;

#[path = "common/sigkill.rs"]
mod sigkill;
use sigkill::random_below;

fn store(backend: &str) -> Harness {
    TestTarget::standard(backend)
        .harness()
        .unwrap_or_else(|e| panic!("a fresh {backend} store: {e}"))
}

fn human() -> WriteContext {
    WriteContext::human(Some("copy-test".into()))
}

/// JSON nested `depth` levels deep (a scalar is one level).
fn nested(depth: usize) -> Value {
    let mut value = json!("bottom");
    for level in 1..depth {
        value = if level % 2 == 0 {
            json!([value])
        } else {
            json!({ "k": value })
        };
    }
    value
}

/// Seeds every table with hostile values through the public API: 10 MiB
/// text, unicode, JSON at the depth limit, i64 and f64 extremes, AI
/// provenance, entity refs, pinned and finished jobs, runs and executions.
/// `scale` sets the number of blocks, nodes and jobs; `huge` adds a block
/// of 10 MiB text.
fn seed(store: &dyn Storage, scale: usize, huge: bool) {
    let ctx = human();
    let ws = store
        .create_workspace(
            &ctx,
            NewWorkspace {
                name: "Ünïcødé 🚀 \u{202e}'quote' \"dq\" \\ %_".into(),
            },
        )
        .unwrap();
    let job = store
        .create_ai_job(NewAiJob {
            entity_refs: vec![
                EntityRef {
                    entity_id: ws.id.clone(),
                    entity_kind: "workspace".into(),
                },
                EntityRef {
                    entity_id: "ドキュメント \"x\"".into(),
                    entity_kind: "document".into(),
                },
            ],
            planned_operations: vec![PlannedOperation {
                op_type: OperationType::ALL[0],
                target: EntityRef {
                    entity_id: "t".into(),
                    entity_kind: "block".into(),
                },
                description: Some("ümlaut".into()),
            }],
            metrics: JobMetrics {
                duration_ms: u64::MAX,
                total_tokens: u32::MAX,
                ..JobMetrics::zero()
            },
            job_inputs: Some(
                json!({"big": u64::MAX, "neg": i64::MIN, "f": 1e300, "deep": nested(90)}),
            ),
            ..Default::default()
        })
        .unwrap();
    let run = store
        .create_workflow_run(job.job_id, JobState::Running, None)
        .unwrap();
    let ai = WriteContext::ai(Some("model".into()), Some(job.job_id), Some(run.id));
    let doc = store
        .create_document(
            &ai,
            NewDocument {
                workspace_id: ws.id.clone(),
                title: "计划 ✓".into(),
            },
        )
        .unwrap();
    let mut blocks = vec![
        NewBlock {
            id: Some("huge".into()),
            document_id: doc.id.clone(),
            kind: "paragraph".into(),
            sequence: i64::MIN,
            raw_content: if huge {
                "é🚀".repeat(10 * 1024 * 1024 / 6)
            } else {
                "small".into()
            },
            ..Default::default()
        },
        NewBlock {
            id: Some("it's 100% \"_odd_\" \\".into()),
            document_id: doc.id.clone(),
            kind: "heading".into(),
            sequence: i64::MAX,
            raw_content: "raw".into(),
            display_content: Some("display ≠ raw".into()),
            derived_content: Some(nested(100)),
            sensitivity: Some("secret".into()),
            exportable: Some(false),
        },
    ];
    blocks.extend((0..scale).map(|k| NewBlock {
        id: Some(format!("b{k:06}")),
        document_id: doc.id.clone(),
        kind: "paragraph".into(),
        sequence: k as i64,
        raw_content: format!("block {k} ✓"),
        derived_content: Some(json!({"k": k, "f": k as f64 / 3.0})),
        ..Default::default()
    }));
    store.replace_blocks(&ai, &doc.id, blocks).unwrap();
    let canvas = store
        .create_canvas(
            &ctx,
            NewCanvas {
                workspace_id: ws.id.clone(),
                title: "Canvas".into(),
            },
        )
        .unwrap();
    let positions = [
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        0.1 + 0.2,
        -1.5e-300,
    ];
    let nodes: Vec<NewCanvasNode> = (0..scale.max(positions.len()))
        .map(|k| NewCanvasNode {
            id: Some(format!("n{k:05}")),
            kind: "note".into(),
            position_x: positions[k % positions.len()],
            position_y: -(k as f64) * 1.000_000_1,
            data: Some(json!({"ключ": k, "max": u64::MAX, "min": i64::MIN})),
        })
        .collect();
    let edges: Vec<NewCanvasEdge> = (1..nodes.len())
        .map(|k| NewCanvasEdge {
            id: Some(format!("e{k:05}")),
            from_node_id: format!("n{:05}", k - 1),
            to_node_id: format!("n{k:05}"),
            kind: "link".into(),
        })
        .collect();
    store
        .update_canvas_graph(&ai, &canvas.id, nodes, edges)
        .unwrap();
    for k in 0..scale {
        let j = store
            .create_ai_job(NewAiJob {
                entity_refs: (0..k % 4)
                    .map(|r| EntityRef {
                        entity_id: format!("ref-{k}-{r}"),
                        entity_kind: "workspace".into(),
                    })
                    .collect(),
                ..Default::default()
            })
            .unwrap();
        if k % 3 == 0 {
            store
                .update_ai_job_status(JobStatusUpdate {
                    job_id: j.job_id,
                    state: JobState::Completed,
                    error_message: Some("done\nwith a newline".into()),
                    status_reason: "finished".into(),
                    metrics: None,
                    workflow_run_id: Some(run.id),
                    trace_id: None,
                    job_outputs: Some(json!([1, 2.5, "three"])),
                })
                .unwrap();
            store.set_job_pinned(j.job_id, true).unwrap();
        }
    }
    for k in 0..3 {
        let exec = store
            .create_workflow_node_execution(NewNodeExecution {
                workflow_run_id: run.id,
                node_id: format!("node-{k}"),
                node_type: "llm".into(),
                status: JobState::Running,
                sequence: [i64::MIN, 0, i64::MAX][k],
                input_payload: Some(json!({"prompt": "héllo"})),
                started_at: Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            })
            .unwrap();
        if k == 1 {
            store
                .update_workflow_node_execution_status(
                    exec.id,
                    JobState::Completed,
                    Some(json!({"out": nested(50)})),
                    None,
                )
                .unwrap();
        }
    }
    store
        .heartbeat_workflow(
            run.id,
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
        )
        .unwrap();
    seed_kernel(store, scale);
}

/// The kernel's tables: ledger events with hostile payloads, and session
/// runs in several states with their claims and events.
fn seed_kernel(store: &dyn Storage, scale: usize) {
    let event = |k: usize| NewKernelEvent {
        event_version: "1".into(),
        kernel_task_run_id: "KTR \"ü\"".into(),
        session_run_id: format!("SR-seed-{}", k % 5),
        aggregate_type: "task".into(),
        aggregate_id: format!("агрегат {k}"),
        idempotency_key: format!("seed-{k:06} 🚀"),
        event_type: "SEEDED_EVENT".into(),
        actor: KernelActor::new(KernelActorKind::ALL[k % 7], format!("actor-{k}")),
        causation_id: (k % 2 == 0).then(|| format!("cause-{k}")),
        correlation_id: (k % 3 == 0).then(|| "corr".to_string()),
        source_component: "seed".into(),
        payload: json!({"k": k, "big": u64::MAX, "neg": i64::MIN, "f": k as f64 / 7.0, "deep": nested(20)}),
    };
    store
        .append_kernel_events_atomic((0..scale.max(3)).map(event).collect())
        .unwrap();
    let lease = std::time::Duration::from_secs(3600);
    for k in 0..(scale / 5).max(3) {
        let (run, _) = store
            .enqueue_kernel_session_run_and_record_event(
                SessionRun::queued(format!("KTR-{k}"), format!("adapter-{}", k % 2)),
                Some("seed".into()),
                None,
            )
            .unwrap();
        let id = run.session_run_id;
        if k % 4 == 0 {
            continue;
        }
        let (claim, _) = store
            .claim_kernel_session_run_and_record_event(
                &id,
                &format!("worker-{k}"),
                lease,
                None,
                None,
            )
            .unwrap()
            .unwrap();
        let fence = claim.fence().unwrap();
        let to = |state| SessionRunUpdate::to(state).fenced(fence.clone());
        match k % 4 {
            1 => {}
            2 => {
                store
                    .update_kernel_session_run_state_and_record_event(
                        &id,
                        to(SessionRunState::Running),
                        None,
                        None,
                    )
                    .unwrap();
                store
                    .update_kernel_session_run_state_and_record_event(
                        &id,
                        to(SessionRunState::Completed),
                        None,
                        None,
                    )
                    .unwrap();
            }
            _ => {
                store
                    .update_kernel_session_run_state_and_record_event(
                        &id,
                        to(SessionRunState::RetryScheduled).after(lease),
                        None,
                        Some("retry".into()),
                    )
                    .unwrap();
            }
        }
    }
}

/// Everything the public API shows of a store, in the API's orders.
fn dump(store: &dyn Storage) -> Value {
    let mut out = Vec::new();
    for ws in store.list_workspaces().unwrap() {
        let docs = store.list_documents(&ws.id).unwrap();
        let blocks: Vec<_> = docs
            .iter()
            .map(|d| store.get_blocks(&d.id).unwrap())
            .collect();
        let graphs: Vec<_> = store
            .list_canvases(&ws.id)
            .unwrap()
            .iter()
            .map(|c| store.get_canvas_with_graph(&c.id).unwrap())
            .collect();
        let jobs = store
            .list_ai_jobs(AiJobListFilter {
                wsid: Some(ws.id.clone()),
                ..Default::default()
            })
            .unwrap();
        out.push(
            json!({"ws": ws, "docs": docs, "blocks": blocks, "graphs": graphs, "ws_jobs": jobs}),
        );
    }
    let jobs = store.list_ai_jobs(AiJobListFilter::default()).unwrap();
    let executions: Vec<_> = jobs
        .iter()
        .filter_map(|j| j.workflow_run_id)
        .map(|run| store.list_workflow_node_executions(run).unwrap())
        .collect();
    let stalled = store.find_stalled_workflows(0).unwrap();
    let mut ledger = Vec::new();
    loop {
        let after = ledger.last().map_or(0, |e: &KernelEvent| e.event_sequence);
        let page = store.list_kernel_events_after(after, 500).unwrap();
        if page.is_empty() {
            break;
        }
        ledger.extend(page);
    }
    let sessions: std::collections::BTreeSet<&str> =
        ledger.iter().map(|e| e.session_run_id.as_str()).collect();
    let claims: Vec<_> = sessions
        .iter()
        .map(|id| store.list_kernel_session_claims(id).unwrap())
        .collect();
    json!({"workspaces": out, "jobs": jobs, "executions": executions, "stalled": stalled,
           "ledger": ledger, "claims": claims})
}

fn assert_identical(a: &str, b: &str) {
    let report = verify_stores(a, b).expect("verify");
    assert!(report.identical, "{:#?}", report.differences());
    assert_eq!(report.tables.len(), 13);
}

/// The target's schema is whole again after a copy: its fingerprint
/// (tables, columns, indexes, triggers) equals a freshly migrated store's
/// (the copier drops secondary indexes while it loads rows).
fn assert_schema_whole(target: &Harness, backend: &str) {
    let fresh = store(backend);
    assert_eq!(
        target.store().schema_fingerprint().unwrap().hash,
        fresh.store().schema_fingerprint().unwrap().hash,
        "the target's schema after the copy"
    );
}

/// Rows of `table` in the target after the copy.
fn copied_rows(report: &CopyReport, table: &str) -> u64 {
    let found = report.tables.iter().find(|t| t.table == table);
    found
        .unwrap_or_else(|| panic!("no {table} in {report:?}"))
        .rows
}

fn copy(from: &Harness, to: &Harness, options: &CopyOptions) -> StorageResult<CopyReport> {
    copy_store(from.url(), to.url(), options)
}

/// A copy's target must be empty: a harness migrates its store, so a
/// second harness is as empty as a new database.
fn copy_cases_for(from: &str, to: &str) -> (Harness, Harness) {
    (store(from), store(to))
}

// ---------------------------------------------------------------------------
// Cases, each over a (source backend, target backend) pair

fn copies_every_table_exactly(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed(a.store(), 300, true);
    let report = copy(&a, &b, &CopyOptions::default()).unwrap();
    assert!(report.verify.identical);
    assert!(!report.resumed);
    assert_eq!(copied_rows(&report, "ai_jobs"), 301);
    assert_identical(a.url(), b.url());
    assert_schema_whole(&b, to);
    assert_eq!(dump(a.store()), dump(b.store()));
    // PostgreSQL hashed every row as it holds it, and every hash was that
    // of the bytes written (the writer spells JSON as jsonb does, even the
    // seed's extremes); a SQLite target reads every row back by value.
    let by_bytes = if to == "postgres" {
        report.rows_this_run
    } else {
        0
    };
    assert_eq!(report.rows_verified_by_bytes, by_bytes, "{report:?}");
    // The checkpoint is gone: a second copy finds a non-empty target.
    let err = copy(&a, &b, &CopyOptions::default()).unwrap_err();
    assert_eq!(err.kind().to_string(), "Validation", "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
}

/// More refs than one verification page holds (2,000), several per job: the
/// refs table is read back page after page by its two-column key, in the
/// ranges of the jobs' pages.
fn refs_across_verification_pages(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    for i in 0..2_600 {
        a.store()
            .create_ai_job(NewAiJob {
                entity_refs: (0..3)
                    .map(|k| EntityRef {
                        entity_id: format!("e{}", (i * 3 + k) % 97),
                        entity_kind: ["workspace", "document", "canvas"][k].into(),
                    })
                    .collect(),
                ..NewAiJob::default()
            })
            .unwrap();
    }
    let options = CopyOptions {
        batch_rows: 1_000,
        ..CopyOptions::default()
    };
    let report = copy(&a, &b, &options).unwrap();
    assert!(report.verify.identical);
    assert_eq!(copied_rows(&report, "ai_job_entity_refs"), 7_800);
    let by_bytes = if to == "postgres" { 2_600 + 7_800 } else { 0 };
    assert_eq!(report.rows_verified_by_bytes, by_bytes, "{report:?}");
    assert_identical(a.url(), b.url());
}

/// A page larger than the server should hash in memory (64 MiB: seven
/// blocks of 10 MiB) is read back row by row on PostgreSQL; the rest by
/// the digest of its bytes.
fn a_page_too_large_to_hash_is_read_back_row_by_row(from: &str, to: &str) {
    use handshake_storage::conformance::fixtures::{new_block, new_doc};
    let (a, b) = copy_cases_for(from, to);
    let (store, ctx) = (a.store(), human());
    let ws = store
        .create_workspace(&ctx, NewWorkspace { name: "w".into() })
        .unwrap();
    let doc = store.create_document(&ctx, new_doc(&ws.id, "d")).unwrap();
    for i in 0..7 {
        let block = NewBlock {
            raw_content: format!("{i}").repeat(10 << 20),
            ..new_block(&doc.id, i, None)
        };
        store.create_block(&ctx, block).unwrap();
    }
    let report = copy(&a, &b, &CopyOptions::default()).unwrap();
    assert!(report.verify.identical);
    assert_eq!(report.rows_this_run, 9);
    let by_bytes = if to == "postgres" { 2 } else { 0 };
    assert_eq!(report.rows_verified_by_bytes, by_bytes, "{report:?}");
    assert_identical(a.url(), b.url());
}

/// A target that stores something else than it was sent (here a trigger
/// changes a block as it is inserted) fails verification. On PostgreSQL
/// the page's hash is not the hash of the bytes written, so the page is
/// read back row by row: the digest the error reports for the target is
/// the digest of what the target holds.
fn a_target_that_changes_rows_as_written_fails_verification(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed(a.store(), 20, false);
    if to == "postgres" {
        by_hand(
            &b,
            "CREATE FUNCTION hsk_test_tamper() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.id = 'b000003' THEN NEW.raw_content := 'tampered'; END IF; \
             RETURN NEW; END $$",
        );
        by_hand(
            &b,
            "CREATE TRIGGER hsk_test_tamper BEFORE INSERT ON blocks \
             FOR EACH ROW EXECUTE FUNCTION hsk_test_tamper()",
        );
    } else {
        by_hand(
            &b,
            "CREATE TRIGGER hsk_test_tamper AFTER INSERT ON blocks WHEN NEW.id = 'b000003' \
             BEGIN UPDATE blocks SET raw_content = 'tampered' WHERE id = NEW.id; END",
        );
    }
    let err = copy(&a, &b, &CopyOptions::default()).unwrap_err();
    assert_did_not_verify(err.clone(), "blocks");
    let report = verify_stores(a.url(), b.url()).unwrap();
    let blocks = report.tables.iter().find(|t| t.table == "blocks").unwrap();
    assert_ne!(blocks.digest_a, blocks.digest_b);
    assert!(
        err.to_string()
            .contains(&format!("digest {})", blocks.digest_b)),
        "{err} {blocks:?}"
    );
    let first = blocks.first_difference.as_deref().unwrap();
    assert!(first.contains("b000003"), "{first}");
}

/// A copy stopped after its first page has dropped the target's secondary
/// indexes; one of them is built again by hand before the resume, which
/// builds the others and leaves the schema whole. A fresh copy into a
/// target that holds the index list but no checkpoint is refused.
fn resume_builds_the_indexes_one_built_by_hand(from: &str, to: &str) {
    // Stops a copy (its writer's progress report panics) after 3 reports.
    let stopped_copy = |a: &Harness, b: &Harness| {
        let reports = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = CopyOptions {
            progress: Some(Arc::new(move |_| {
                if reports.fetch_add(1, Ordering::SeqCst) == 3 {
                    panic!("stopping the copy after its first pages");
                }
            })),
            ..kill_options()
        };
        let err = copy(a, b, &stop).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    };
    let (a, b) = copy_cases_for(from, to);
    seed_for_interruption(a.store());
    stopped_copy(&a, &b);
    // By hand, on a connection of its own (a SQLite connection opened
    // before the copy dropped the index would still see it).
    by_hand(
        &b,
        "CREATE INDEX ai_jobs_created_idx ON ai_jobs (created_at DESC, id DESC)",
    );
    let report = resume_to_the_end(a.url(), b.url());
    assert!(report.resumed && report.verify.identical);
    assert_schema_whole(&b, to);

    let (c, d) = copy_cases_for(from, to);
    seed_for_interruption(c.store());
    stopped_copy(&c, &d);
    by_hand(&d, "DROP TABLE hsk_copy_checkpoint");
    for table in ["workspaces", "documents", "blocks"] {
        by_hand(&d, &format!("DELETE FROM {table}"));
    }
    let err = copy(&c, &d, &CopyOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    assert!(err.to_string().contains("hsk_copy_index"), "{err}");
}

/// Runs `sql` on a new connection to the harness's database.
fn by_hand(target: &Harness, sql: &str) {
    match target.url().strip_prefix("sqlite://") {
        #[cfg(feature = "sqlite")]
        Some(path) => {
            use diesel::{Connection, RunQueryDsl};
            let mut conn = diesel::SqliteConnection::establish(path).unwrap();
            diesel::sql_query(sql).execute(&mut conn).unwrap();
        }
        _ => {
            target.execute_sql(sql).unwrap();
        }
    }
}

fn verify_names_the_first_difference(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed(a.store(), 20, false);
    copy(&a, &b, &CopyOptions::default()).unwrap();
    b.store()
        .update_block(
            &human(),
            "b000007",
            BlockUpdate {
                raw_content: Some("changed".into()),
                ..Default::default()
            },
        )
        .unwrap();
    b.store().delete_block(&human(), "b000011").unwrap();
    let report = verify_stores(a.url(), b.url()).unwrap();
    assert!(!report.identical);
    let blocks = report.tables.iter().find(|t| t.table == "blocks").unwrap();
    assert_eq!((blocks.rows_a, blocks.rows_b), (22, 21));
    assert_ne!(blocks.digest_a, blocks.digest_b);
    let first = blocks.first_difference.as_deref().unwrap();
    assert!(
        first.contains("b000007") && first.contains("differ"),
        "{first}"
    );
    let others_match = report
        .tables
        .iter()
        .filter(|t| t.table != "blocks")
        .all(|t| t.matches());
    assert!(others_match, "{report:#?}");
}

fn non_empty_target_is_refused(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed(a.store(), 5, false);
    b.store()
        .create_workspace(
            &human(),
            NewWorkspace {
                name: "mine".into(),
            },
        )
        .unwrap();
    for resume in [false, true] {
        let err = copy(
            &a,
            &b,
            &CopyOptions {
                resume,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.kind().to_string(), "Validation", "{err}");
        assert!(
            err.to_string().contains("table workspaces has 1 rows"),
            "{err}"
        );
    }
    assert_eq!(b.store().list_workspaces().unwrap().len(), 1);
}

fn source_at_another_version_is_refused(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    a.revert_last_migration().unwrap();
    let err = copy(&a, &b, &CopyOptions::default()).unwrap_err();
    assert_eq!(err.kind().to_string(), "Validation", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("schema version 20261203000002") && text.contains("20261204000001"),
        "{text}"
    );
    assert!(!text.contains("postgres:postgres@"), "{text}");
}

/// A copy in pages of 10 stopped by a bad block (`b000030`) in the middle
/// of the blocks, after some pages were committed.
fn stop_at_a_bad_block(from: &str, to: &str) -> (Harness, Harness, CopyOptions) {
    let (a, b) = copy_cases_for(from, to);
    seed(a.store(), 50, false);
    a.execute_sql("UPDATE blocks SET kind = 'x', last_actor_kind = 'ROBOT' WHERE id = 'b000030'")
        .unwrap();
    let small = CopyOptions {
        batch_rows: 10,
        ..Default::default()
    };
    let err = copy(&a, &b, &small).unwrap_err();
    assert!(err.to_string().contains("b000030"), "{err}");
    (a, b, small)
}

fn resume_needs_the_flag_and_this_copys_checkpoint(from: &str, to: &str) {
    let (a, b, small) = stop_at_a_bad_block(from, to);
    let partial = b
        .store()
        .get_blocks(&a.store().get_block("b000000").unwrap().document_id)
        .unwrap();
    assert_eq!(
        partial.len(),
        30,
        "the pages before the bad row are committed"
    );
    // Without resume: refused, and so is another source.
    let err = copy(&a, &b, &small).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    let other = store(from);
    seed(other.store(), 1, false);
    let err = copy(
        &other,
        &b,
        &CopyOptions {
            resume: true,
            ..small.clone()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("another") || err.to_string().contains("not from"),
        "{err}"
    );
    // Fixed at the source, the copy resumes and finishes.
    a.execute_sql("UPDATE blocks SET last_actor_kind = 'HUMAN' WHERE id = 'b000030'")
        .unwrap();
    let report = copy(
        &a,
        &b,
        &CopyOptions {
            resume: true,
            ..small
        },
    )
    .unwrap();
    assert!(report.resumed);
    let blocks = report.tables.iter().find(|t| t.table == "blocks").unwrap();
    assert_eq!((blocks.rows, blocks.rows_this_run), (52, 22));
    assert_identical(a.url(), b.url());
}

/// A copy stopped by a bad block after three pages, its source then fixed:
/// the target holds committed pages and this copy's checkpoint; the
/// options resume it.
fn stopped_copy(from: &str, to: &str) -> (Harness, Harness, CopyOptions) {
    let (a, b, small) = stop_at_a_bad_block(from, to);
    a.execute_sql("UPDATE blocks SET last_actor_kind = 'HUMAN' WHERE id = 'b000030'")
        .unwrap();
    let resume = CopyOptions {
        resume: true,
        ..small
    };
    (a, b, resume)
}

fn assert_did_not_verify(err: StorageError, table: &str) {
    assert_eq!(err.kind().to_string(), "Validation", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("did not verify") && text.contains(table),
        "{text}"
    );
}

/// A resumed copy reads back the rows earlier runs committed too: one
/// changed in the target while the copy was stopped fails verification,
/// the checkpoint is kept, and with the row put back the copy finishes.
fn resume_verifies_the_rows_earlier_runs_committed(from: &str, to: &str) {
    let (a, b, small) = stopped_copy(from, to);
    // Changed by hand in the target: the resumed copy fails; put back: it
    // may go on.
    let changed_while_stopped = |table: &str, column: &str, filter: &str, original: &str| {
        let set = |value: &str| {
            let value = value.replace('\'', "''");
            by_hand(
                &b,
                &format!("UPDATE {table} SET {column} = '{value}' {filter}"),
            );
        };
        set("changed while stopped");
        assert_did_not_verify(copy(&a, &b, &small).unwrap_err(), table);
        set(original);
    };
    let content = a.store().get_block("b000005").unwrap().raw_content;
    changed_while_stopped("blocks", "raw_content", "WHERE id = 'b000005'", &content);
    // So is a table the earlier run finished.
    let name = a.store().list_workspaces().unwrap()[0].name.clone();
    changed_while_stopped("workspaces", "name", "", &name);
    let report = copy(&a, &b, &small).unwrap();
    assert!(report.resumed && report.verify.identical);
    assert_identical(a.url(), b.url());
}

/// Verification reads every key of the target, not only the ranges the
/// copy wrote: a row after the source's last key (the seed's last block id
/// starts with `i`) fails it.
fn a_row_the_copy_did_not_write_fails_verification(from: &str, to: &str) {
    let (a, b, small) = stopped_copy(from, to);
    by_hand(
        &b,
        "INSERT INTO blocks (id, document_id, kind, sequence, raw_content, display_content, \
         derived_content, sensitivity, exportable, created_at, updated_at, last_actor_kind, \
         last_actor_id, last_job_id, last_workflow_id, edit_event_id) \
         SELECT 'zz-not-from-the-source', document_id, kind, sequence + 1000, raw_content, display_content, \
         derived_content, sensitivity, exportable, created_at, updated_at, last_actor_kind, \
         last_actor_id, last_job_id, last_workflow_id, edit_event_id \
         FROM blocks WHERE id = 'b000001'",
    );
    assert_did_not_verify(copy(&a, &b, &small).unwrap_err(), "blocks");
}

fn resume_on_an_untouched_target_just_starts(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed(a.store(), 5, false);
    let report = copy(
        &a,
        &b,
        &CopyOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!report.resumed);
    assert_identical(a.url(), b.url());
}

/// Plants `sql` in the source, then checks the copy stops naming `table`
/// and `key`, and the page holding the row left nothing in the target.
fn bad_row_stops_the_copy(from: &str, to: &str, sql: &str, table: &str, key: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed(a.store(), 10, false);
    a.execute_sql(sql).unwrap();
    let err = copy(&a, &b, &CopyOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err.kind().to_string().as_str(),
            "Serialization" | "Validation"
        ),
        "{err}"
    );
    assert!(
        text.contains(&format!("{table} row")) && text.contains(key),
        "{text}"
    );
    let report = verify_stores(a.url(), b.url());
    // The source cannot be read in full either; the target's table is empty.
    assert!(report.is_err());
    let count = |h: &Harness| -> usize {
        match table {
            "blocks" => h
                .store()
                .list_workspaces()
                .unwrap()
                .iter()
                .flat_map(|w| h.store().list_documents(&w.id).unwrap())
                .map(|d| h.store().get_blocks(&d.id).unwrap().len())
                .sum(),
            "ai_jobs" => h
                .store()
                .list_ai_jobs(AiJobListFilter::default())
                .unwrap()
                .len(),
            "workspaces" => h.store().list_workspaces().unwrap().len(),
            other => panic!("{other}"),
        }
    };
    assert_eq!(count(&b), 0, "nothing of {table} committed");
}

fn corrupt_enum_stops_the_copy(from: &str, to: &str) {
    bad_row_stops_the_copy(
        from,
        to,
        "UPDATE ai_jobs SET status = 'half-done' WHERE pinned = true",
        "ai_jobs",
        "half-done",
    );
}

fn too_deep_json_stops_the_copy(from: &str, to: &str) {
    let deep = serde_json::to_string(&nested(200)).unwrap();
    let value = if from == "postgres" {
        format!("'{deep}'::jsonb")
    } else {
        format!("'{deep}'")
    };
    bad_row_stops_the_copy(
        from,
        to,
        &format!("UPDATE blocks SET derived_content = {value} WHERE id = 'b000004'"),
        "blocks",
        "b000004",
    );
    if from == "sqlite" {
        bad_row_stops_the_copy(
            from,
            to,
            "UPDATE blocks SET derived_content = '{\"unclosed\": [1, 2' WHERE id = 'b000005'",
            "blocks",
            "b000005",
        );
        // A typed column (parsed straight into its type) that is not JSON.
        bad_row_stops_the_copy(
            from,
            to,
            "UPDATE ai_jobs SET metrics = '{' WHERE pinned = true",
            "ai_jobs",
            "stored metrics is not valid",
        );
    }
    // A typed column holding JSON of the wrong shape.
    bad_row_stops_the_copy(
        from,
        to,
        "UPDATE ai_jobs SET planned_operations = '{\"not\": \"a list\"}' WHERE pinned = true",
        "ai_jobs",
        "stored planned_operations is not valid",
    );
}

fn out_of_range_timestamp_stops_the_copy(from: &str, to: &str) {
    let value = if from == "postgres" {
        "'10000-01-01 00:00:00+00'::timestamptz"
    } else {
        "'10000-01-01 00:00:00.000000+00:00'"
    };
    bad_row_stops_the_copy(
        from,
        to,
        &format!("UPDATE workspaces SET updated_at = {value}"),
        "workspaces",
        "workspaces row \"",
    );
}

fn a_second_copy_into_the_same_target_is_refused(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed(a.store(), 30, false);
    let (a_url, b_url) = (a.url().to_string(), b.url().to_string());
    let second: Arc<std::sync::Mutex<Option<StorageError>>> = Default::default();
    let tried = Arc::new(AtomicBool::new(false));
    let options = CopyOptions {
        batch_rows: 10,
        progress: Some({
            let second = second.clone();
            let tried = tried.clone();
            Arc::new(move |_| {
                if !tried.swap(true, Ordering::SeqCst) {
                    let result = copy_store(
                        &a_url,
                        &b_url,
                        &CopyOptions {
                            resume: true,
                            ..Default::default()
                        },
                    );
                    *second.lock().unwrap() = result.err();
                }
            })
        }),
        ..Default::default()
    };
    copy(&a, &b, &options).unwrap();
    let err = second
        .lock()
        .unwrap()
        .take()
        .expect("the second copy was refused");
    assert_eq!(err.kind().to_string(), "Conflict", "{err}");
    assert!(err.to_string().contains("another copy"), "{err}");
    assert_identical(a.url(), b.url());
}

fn same_database_is_refused(from: &str, _to: &str) {
    let a = store(from);
    let err = copy_store(a.url(), a.url(), &CopyOptions::default()).unwrap_err();
    assert_eq!(err.kind().to_string(), "Validation", "{err}");
    assert!(err.to_string().contains("same database"), "{err}");
}

/// A writer replaces a document's blocks with version after version (all
/// blocks of one version carry its number) while the copy runs in small
/// pages: the target holds exactly one version.
fn copy_reads_one_snapshot_under_a_concurrent_writer(from: &str, to: &str) {
    const N: usize = 400;
    let (a, b) = copy_cases_for(from, to);
    let ws = a
        .store()
        .create_workspace(&human(), NewWorkspace { name: "w".into() })
        .unwrap();
    let doc = a
        .store()
        .create_document(
            &human(),
            NewDocument {
                workspace_id: ws.id,
                title: "d".into(),
            },
        )
        .unwrap();
    let doc_id = doc.id.clone();
    let version = move |v: usize| -> Vec<NewBlock> {
        (0..N)
            .map(|k| NewBlock {
                id: Some(format!("v{v}-b{k:04}")),
                document_id: doc_id.clone(),
                kind: "p".into(),
                sequence: k as i64,
                raw_content: format!("version {v}"),
                ..Default::default()
            })
            .collect()
    };
    a.store()
        .replace_blocks(&human(), &doc.id, version(0))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop, doc_id) = (a.shared_store(), stop.clone(), doc.id.clone());
        let version = version.clone();
        std::thread::spawn(move || {
            let mut v = 1;
            while !stop.load(Ordering::SeqCst) {
                store.replace_blocks(&human(), &doc_id, version(v)).unwrap();
                v += 1;
            }
            v
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let report = copy(
        &a,
        &b,
        &CopyOptions {
            batch_rows: 7,
            ..Default::default()
        },
    );
    stop.store(true, Ordering::SeqCst);
    let versions = writer.join().unwrap();
    report.unwrap();
    assert!(versions > 1, "the writer wrote during the copy");
    let blocks = b.store().get_blocks(&doc.id).unwrap();
    assert_eq!(blocks.len(), N);
    let v = &blocks[0].raw_content;
    assert!(
        blocks.iter().all(|b| &b.raw_content == v),
        "blocks of several versions"
    );
}

// ---------------------------------------------------------------------------
// Interrupted copies

const CHILD_FROM: &str = "HSK_COPY_CHILD_FROM";
const CHILD_TO: &str = "HSK_COPY_CHILD_TO";

/// The copier as a child process (the test binary again, this test only):
/// prints a line per progress report, so the parent can kill it at a
/// chosen page.
#[test]
#[ignore = "runs only as the child of an interrupted-copy test"]
fn copy_child() {
    let from = std::env::var(CHILD_FROM).expect("run only as a child (HSK_COPY_CHILD_FROM unset)");
    let to = std::env::var(CHILD_TO).expect(CHILD_TO);
    let options = CopyOptions {
        progress: Some(Arc::new(|p| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{PROGRESS} {} {}/{}",
                p.table, p.rows_done, p.rows_total
            );
            let _ = out.flush();
        })),
        ..kill_options()
    };
    let _ = copy_store(&from, &to, &options);
}

const PROGRESS: &str = "HSK-COPY-PROGRESS";

fn kill_options() -> CopyOptions {
    CopyOptions {
        batch_rows: 200,
        resume: true,
        ..Default::default()
    }
}

/// Reruns a resumable copy until it succeeds (`sigkill::resume_to_the_end`).
fn resume_to_the_end(from: &str, to: &str) -> CopyReport {
    sigkill::resume_to_the_end(|| copy_store(from, to, &kill_options()))
}

fn seed_for_interruption(store: &dyn Storage) {
    seed(store, 1500, false);
}

fn sigkill_at_five_points_then_resume(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed_for_interruption(a.store());
    for _ in 0..5 {
        // After a random number of progress reports (pages), then a
        // random pause: inside the next page's read, write or commit.
        sigkill::kill_mid_work(
            "copy_child",
            &[(CHILD_FROM, a.url()), (CHILD_TO, b.url())],
            PROGRESS,
            1 + random_below(4),
        );
    }
    let report = resume_to_the_end(a.url(), b.url());
    assert!(report.resumed);
    assert!(report.verify.identical);
    assert_identical(a.url(), b.url());
    assert_schema_whole(&b, to);
}

/// Ends every PostgreSQL connection whose application_name is `tag`.
#[cfg(feature = "postgres")]
fn terminate(admin_url: &str, tag: &str) {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::PgConnection::establish(admin_url).unwrap();
    diesel::sql_query(format!(
        // The timeout form waits until each backend has exited.
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = '{tag}'"
    ))
    .execute(&mut conn)
    .unwrap();
}

/// Terminates the copier's PostgreSQL connections (found by their
/// application_name) at random points; each rerun resumes.
#[cfg(feature = "postgres")]
fn terminated_connections_then_resume(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed_for_interruption(a.store());
    let tag = format!("hsk_copy_{}", Uuid::new_v4().simple());
    let with_tag = |url: &str| {
        if url.starts_with("postgres") {
            let mut u = url::Url::parse(url).unwrap();
            u.query_pairs_mut().append_pair("application_name", &tag);
            u.to_string()
        } else {
            url.to_string()
        }
    };
    let (from_url, to_url) = (with_tag(a.url()), with_tag(b.url()));
    let admin = if to == "postgres" { b.url() } else { a.url() }.to_string();
    let mut failures = 0;
    for _ in 0..5 {
        // Terminate after a random number of pages and a random pause.
        let at_report = 1 + random_below(4);
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (admin, tag) = (admin.clone(), tag.clone());
        let options = CopyOptions {
            progress: Some(Arc::new(move |_| {
                // On the copier's own thread, so the copy cannot finish
                // first however loaded the machine is.
                if seen.fetch_add(1, Ordering::SeqCst) + 1 == at_report {
                    std::thread::sleep(Duration::from_millis(random_below(30)));
                    terminate(&admin, &tag);
                }
            })),
            ..kill_options()
        };
        match copy_store(&from_url, &to_url, &options) {
            Err(e) => {
                failures += 1;
                eprintln!("interrupted: {e}");
                assert!(!e.to_string().contains("postgres:postgres@"), "{e}");
            }
            Ok(_) => panic!("the copy finished before its connections were terminated"),
        }
    }
    assert_eq!(failures, 5);
    let report = resume_to_the_end(&from_url, &to_url);
    assert!(report.resumed);
    assert!(report.verify.identical);
    assert_identical(a.url(), b.url());
    assert_schema_whole(&b, to);
}

/// The copy lock lives on a connection of its own (PostgreSQL targets): if
/// that connection ends, the copy stops at its next page instead of
/// writing on unguarded, and a resume finishes it.
#[cfg(feature = "postgres")]
fn losing_the_lock_stops_the_copy(from: &str, to: &str) {
    let (a, b) = copy_cases_for(from, to);
    seed_for_interruption(a.store());
    let target = b.url().to_string();
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let options = CopyOptions {
        progress: Some(Arc::new(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                use diesel::{Connection, RunQueryDsl};
                // Only the backend holding this target's copy lock (the
                // key is per schema, as the copier computes it).
                let mut conn = diesel::PgConnection::establish(&target).unwrap();
                diesel::sql_query(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks, \
                     (SELECT hashtextextended('handshake-storage copy ' || current_schema(), 0) AS k) AS copy_key \
                     WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
                     AND classid::bigint = (copy_key.k >> 32) & 4294967295 \
                     AND objid::bigint = copy_key.k & 4294967295",
                )
                .execute(&mut conn)
                .unwrap();
            }
        })),
        ..kill_options()
    };
    let err = copy_store(a.url(), b.url(), &options).unwrap_err();
    assert!(err.to_string().contains("lost its lock"), "{err}");
    let report = resume_to_the_end(a.url(), b.url());
    assert!(report.resumed && report.verify.identical);
    assert_identical(a.url(), b.url());
}

// ---------------------------------------------------------------------------
// Stamping

macro_rules! copy_tests {
    ($module:ident, $from:literal, $to:literal $(, $extra:ident)*) => {
        mod $module {
            copy_tests!(@cases $from, $to;
                copies_every_table_exactly,
                refs_across_verification_pages,
                a_target_that_changes_rows_as_written_fails_verification,
                a_page_too_large_to_hash_is_read_back_row_by_row,
                resume_builds_the_indexes_one_built_by_hand,
                verify_names_the_first_difference,
                non_empty_target_is_refused,
                source_at_another_version_is_refused,
                resume_needs_the_flag_and_this_copys_checkpoint,
                resume_on_an_untouched_target_just_starts,
                resume_verifies_the_rows_earlier_runs_committed,
                a_row_the_copy_did_not_write_fails_verification,
                corrupt_enum_stops_the_copy,
                too_deep_json_stops_the_copy,
                out_of_range_timestamp_stops_the_copy,
                a_second_copy_into_the_same_target_is_refused,
                same_database_is_refused,
                copy_reads_one_snapshot_under_a_concurrent_writer,
                sigkill_at_five_points_then_resume
                $(, $extra)*
            );
        }
    };
    (@cases $from:literal, $to:literal; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                super::$case($from, $to)
            }
        )*
    };
}

#[cfg(feature = "sqlite")]
copy_tests!(sqlite_to_sqlite, "sqlite", "sqlite");
#[cfg(all(feature = "sqlite", feature = "postgres"))]
copy_tests!(
    sqlite_to_postgres,
    "sqlite",
    "postgres",
    terminated_connections_then_resume,
    losing_the_lock_stops_the_copy
);
#[cfg(all(feature = "sqlite", feature = "postgres"))]
copy_tests!(
    postgres_to_sqlite,
    "postgres",
    "sqlite",
    terminated_connections_then_resume
);
#[cfg(feature = "postgres")]
copy_tests!(
    postgres_to_postgres,
    "postgres",
    "postgres",
    terminated_connections_then_resume,
    losing_the_lock_stops_the_copy
);

/// A PostgreSQL role that may write the tables but does not own them can
/// neither switch the refs trigger off nor drop indexes: the copy then
/// lets the trigger fill `ai_job_entity_refs` and keeps the indexes, with
/// the same result.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[test]
fn a_role_that_does_not_own_the_tables_copies_through_the_trigger() {
    let (a, b) = (store("sqlite"), store("postgres"));
    seed(a.store(), 50, false);
    b.execute_sql(
        "DO $$ BEGIN CREATE ROLE hsk_copy_writer LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    .unwrap();
    b.execute_sql(
        "DO $$ BEGIN \
         EXECUTE format('GRANT ALL ON SCHEMA %I TO hsk_copy_writer', current_schema()); \
         EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO hsk_copy_writer', current_schema()); \
         END $$",
    )
    .unwrap();
    let mut writer = url::Url::parse(b.url()).unwrap();
    writer.set_username("hsk_copy_writer").unwrap();
    writer.set_password(None).unwrap();
    let report = copy_store(a.url(), writer.as_str(), &CopyOptions::default()).unwrap();
    assert!(report.verify.identical);
    let refs = copied_rows(&report, "ai_job_entity_refs");
    assert!(refs > 50, "{report:?}");
    // The refs the trigger wrote are read back row by row, the rest by
    // the digest of the bytes written.
    assert_eq!(
        report.rows_verified_by_bytes,
        report.rows_this_run - refs,
        "{report:?}"
    );
    assert_identical(a.url(), b.url());
    assert_schema_whole(&b, "postgres");
}

/// The move and back: SQLite -> PostgreSQL -> SQLite ends where it began.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[test]
fn round_trip_sqlite_postgres_sqlite() {
    let (a, b, c) = (store("sqlite"), store("postgres"), store("sqlite"));
    seed(a.store(), 100, true);
    copy(&a, &b, &CopyOptions::default()).unwrap();
    copy(&b, &c, &CopyOptions::default()).unwrap();
    let ab = verify_stores(a.url(), b.url()).unwrap();
    let ac = verify_stores(a.url(), c.url()).unwrap();
    assert!(ab.identical && ac.identical, "{ab:#?} {ac:#?}");
    assert_eq!(ab.tables, ac.tables, "the same digests on both backends");
    assert_eq!(dump(a.store()), dump(c.store()));
}
