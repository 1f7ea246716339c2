//! Statements per point operation, counted by a Diesel instrumentation that
//! sees every statement a connection sends: BEGIN/COMMIT, and any pool
//! validation query, included. A point op over its budget fails the test.
//!
//! Every point op is one statement on both backends: on PostgreSQL each
//! statement is a round trip. AI jobs carry their entity refs in a column
//! (a trigger copies them into the indexed `ai_job_entity_refs` table), so
//! creating, reading, listing and updating a job touches one row.
//!
//! Bulk writes send their rows in a number of statements that grows only
//! with the bind-parameter limit: on PostgreSQL one binary COPY per table
//! (from 100 rows on, `COPY_FROM_ROWS`), on SQLite multi-row INSERTs of up
//! to 32,766 binds.

use std::cell::RefCell;

use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
use handshake_storage::conformance::fixtures;
use handshake_storage::conformance::TestTarget;
use handshake_storage::*;
use uuid::Uuid;

thread_local! {
    /// The statements sent from this thread: tests run in parallel threads,
    /// and a store call runs its statements on the calling thread.
    static STATEMENTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct CountStatements;

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let sql = query.to_string();
            STATEMENTS.with(|s| s.borrow_mut().push(sql));
        }
    }
}

fn install_counter() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        set_default_instrumentation(|| Some(Box::new(CountStatements)))
            .expect("install the statement counter");
    });
}

/// The statements `op` sends.
fn statements_of<T>(op: impl FnOnce() -> StorageResult<T>) -> (T, Vec<String>) {
    STATEMENTS.with(|s| s.borrow_mut().clear());
    #[cfg(feature = "tracing")]
    statement_events::take();
    let value = op().expect("the operation succeeds");
    let statements = STATEMENTS.with(|s| s.take());
    #[cfg(feature = "tracing")]
    assert_eq!(
        statement_events::take(),
        statements.len(),
        "one DEBUG event per statement"
    );
    (value, statements)
}

/// With feature `tracing`: the budgets hold on a traced store with a
/// subscriber that takes every event, and each statement gives one event.
#[cfg(feature = "tracing")]
mod statement_events {
    use std::cell::Cell;

    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    thread_local! {
        static EVENTS: Cell<usize> = const { Cell::new(0) };
    }

    struct CountEvents;

    impl<S: tracing::Subscriber> Layer<S> for CountEvents {
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            if event.metadata().fields().field("db.query.text").is_some() {
                EVENTS.with(|e| e.set(e.get() + 1));
            }
        }
    }

    pub fn install() -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(CountEvents))
    }

    pub fn take() -> usize {
        EVENTS.with(|e| e.replace(0))
    }
}

#[track_caller]
fn within_budget<T>(name: &str, budget: usize, op: impl FnOnce() -> StorageResult<T>) -> T {
    let (value, statements) = statements_of(op);
    assert!(
        statements.len() <= budget,
        "{name} sent {} statements, budget {budget}:\n{}",
        statements.len(),
        statements.join("\n")
    );
    assert!(!statements.is_empty(), "{name}: no statement was counted");
    value
}

fn check_budgets(target: TestTarget) {
    install_counter();
    #[cfg(feature = "tracing")]
    let _subscriber = statement_events::install();
    let harness = target.harness().expect("a fresh database");
    // Opened by `open` (traced when feature `tracing` is on).
    let store = harness.reopen().expect("open the store");
    let store = &*store;
    let ctx = WriteContext::human(Some("budget".into()));
    let ws = store
        .create_workspace(&ctx, NewWorkspace { name: "ws".into() })
        .unwrap();
    let doc = store
        .create_document(
            &ctx,
            NewDocument {
                workspace_id: ws.id.clone(),
                title: "doc".into(),
            },
        )
        .unwrap();

    let block = within_budget("create_block", 1, || {
        store.create_block(
            &ctx,
            NewBlock {
                document_id: doc.id.clone(),
                kind: "paragraph".into(),
                raw_content: "hello".into(),
                ..NewBlock::default()
            },
        )
    });
    within_budget("get_block", 1, || store.get_block(&block.id));
    within_budget("update_block", 1, || {
        store.update_block(
            &ctx,
            &block.id,
            BlockUpdate {
                raw_content: Some("changed".into()),
                ..BlockUpdate::default()
            },
        )
    });
    within_budget("get_blocks", 1, || store.get_blocks(&doc.id));
    within_budget("get_document", 1, || store.get_document(&doc.id));

    let bare = within_budget("create_ai_job without refs", 1, || {
        store.create_ai_job(NewAiJob::default())
    });
    within_budget("get_ai_job without refs", 1, || {
        store.get_ai_job(bare.job_id)
    });
    let job = within_budget("create_ai_job with refs", 1, || {
        store.create_ai_job(fixtures::workspace_job(&ws.id))
    });
    let read = within_budget("get_ai_job with refs", 1, || store.get_ai_job(job.job_id));
    assert_eq!(read, job, "get_ai_job reads back what create_ai_job wrote");
    within_budget("set_job_pinned", 1, || {
        store.set_job_pinned(job.job_id, true)
    });
    let listed = within_budget("list_ai_jobs by workspace", 1, || {
        store.list_ai_jobs(AiJobListFilter {
            wsid: Some(ws.id.clone()),
            ..AiJobListFilter::default()
        })
    });
    let listed: Vec<_> = listed.iter().map(|j| (j.job_id, &j.entity_refs)).collect();
    assert_eq!(
        listed,
        vec![(job.job_id, &job.entity_refs)],
        "the workspace filter finds the job"
    );
    let updated = within_budget("update_ai_job_status", 1, || {
        store.update_ai_job_status(JobStatusUpdate {
            job_id: job.job_id,
            state: JobState::Running,
            error_message: None,
            status_reason: "started".into(),
            metrics: None,
            workflow_run_id: None,
            trace_id: None,
            job_outputs: None,
        })
    });
    assert_eq!(
        updated.entity_refs, job.entity_refs,
        "the update returns the refs"
    );
    let run = within_budget("create_workflow_run", 1, || {
        store.create_workflow_run(job.job_id, JobState::Running, None)
    });
    within_budget("heartbeat_workflow", 1, || {
        store.heartbeat_workflow(run.id, chrono::Utc::now())
    });
    within_budget("update_workflow_run_status", 1, || {
        store.update_workflow_run_status(run.id, JobState::Completed, None)
    });
    within_budget("find_stalled_workflows", 1, || {
        store.find_stalled_workflows(60)
    });
    within_budget("set_job_outputs", 1, || {
        store.set_job_outputs(job.job_id, Some(serde_json::json!({"ok": true})))
    });
    let exec = within_budget("create_workflow_node_execution", 1, || {
        store.create_workflow_node_execution(NewNodeExecution {
            workflow_run_id: run.id,
            node_id: "n1".into(),
            node_type: "llm".into(),
            status: JobState::Running,
            sequence: 1,
            input_payload: None,
            started_at: chrono::Utc::now(),
        })
    });
    within_budget("update_workflow_node_execution_status", 1, || {
        store.update_workflow_node_execution_status(exec.id, JobState::Completed, None, None)
    });
    within_budget("list_workflow_node_executions", 1, || {
        store.list_workflow_node_executions(run.id)
    });
    within_budget("prune_ai_jobs dry run", 1, || {
        store.prune_ai_jobs(chrono::Utc::now(), 0, true)
    });

    let missing = Uuid::new_v4();
    STATEMENTS.with(|s| s.borrow_mut().clear());
    assert!(matches!(
        store.get_ai_job(missing),
        Err(StorageError::NotFound(_))
    ));
    assert_eq!(
        STATEMENTS.with(|s| s.take()).len(),
        1,
        "get_ai_job of a missing job"
    );
}

/// The statements of `replace_blocks` of 10,000 blocks and
/// `update_canvas_graph` of 5,000 nodes and 10,000 edges that write rows,
/// by their first word.
fn check_bulk(target: TestTarget) {
    install_counter();
    #[cfg(feature = "tracing")]
    let _subscriber = statement_events::install();
    let harness = target.harness().expect("a fresh database");
    let store = harness.reopen().expect("open the store");
    let store = &*store;
    let ctx = WriteContext::human(Some("budget".into()));
    let ws = store
        .create_workspace(&ctx, NewWorkspace { name: "ws".into() })
        .unwrap();
    let doc = store
        .create_document(
            &ctx,
            NewDocument {
                workspace_id: ws.id.clone(),
                title: "doc".into(),
            },
        )
        .unwrap();
    let canvas = store
        .create_canvas(
            &ctx,
            NewCanvas {
                workspace_id: ws.id.clone(),
                title: "canvas".into(),
            },
        )
        .unwrap();
    let row_writes = |statements: Vec<String>| -> Vec<String> {
        statements
            .iter()
            .filter_map(|s| s.split_whitespace().next())
            .filter(|word| ["INSERT", "COPY"].contains(word))
            .map(str::to_string)
            .collect()
    };
    let blocks = (0..10_000)
        .map(|i| fixtures::ordinary_block(&doc.id, i))
        .collect();
    let (_, statements) = statements_of(|| store.replace_blocks(&ctx, &doc.id, blocks));
    let (nodes, edges) = fixtures::graph("budget", 5_000, 10_000);
    let (_, graph_statements) =
        statements_of(|| store.update_canvas_graph(&ctx, &canvas.id, nodes, edges));
    let (blocks_expected, graph_expected) = match store.backend() {
        // One COPY per table.
        Backend::Postgres => (vec!["COPY"], vec!["COPY", "COPY"]),
        // 16 binds per block, 13 per node, 12 per edge: 2,047, 2,520 and
        // 2,730 rows per INSERT.
        _ => (vec!["INSERT"; 5], vec!["INSERT"; 2 + 4]),
    };
    assert_eq!(row_writes(statements), blocks_expected, "replace_blocks");
    assert_eq!(
        row_writes(graph_statements),
        graph_expected,
        "update_canvas_graph"
    );
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_bulk_writes_send_rows_in_few_statements() {
    check_bulk(TestTarget::standard("sqlite"));
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_bulk_writes_send_rows_by_copy() {
    check_bulk(TestTarget::standard("postgres"));
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_point_ops_within_statement_budget() {
    check_budgets(TestTarget::standard("sqlite"));
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_point_ops_within_statement_budget() {
    check_budgets(TestTarget::standard("postgres"));
}
