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

/// The statements `op` sends, as the counter saw them.
fn statements_sent<T>(op: impl FnOnce() -> StorageResult<T>) -> (T, Vec<String>) {
    STATEMENTS.with(|s| s.borrow_mut().clear());
    let value = op().expect("the operation succeeds");
    (value, STATEMENTS.with(|s| s.take()))
}

/// The statements `op` sends on a traced store: with feature `tracing`,
/// each one also gave exactly one DEBUG event.
fn statements_of<T>(op: impl FnOnce() -> StorageResult<T>) -> (T, Vec<String>) {
    #[cfg(feature = "tracing")]
    statement_events::take();
    let (value, statements) = statements_sent(op);
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

/// The workspace filter of `list_ai_jobs` is read in list order from the
/// entity-refs index `(entity_kind, entity_id, created_at DESC, job_id
/// DESC)`, joined to the jobs by primary key: no sort, and never every job
/// read. The plan of the very statement the store sends (caught by the
/// statement counter), over seeded jobs (about 100 per workspace) after
/// `ANALYZE`. It fails if the index is dropped or the filter's shape stops
/// matching it.
///
/// 10,000 jobs: the size at which PostgreSQL used to read every job and
/// sort (docs/performance.md, "The workspace filter").
const PLAN_JOBS: usize = 10_000;

fn workspace_filter_plan(target: TestTarget) -> Vec<(String, Vec<String>)> {
    install_counter();
    let harness = target.harness().expect("a fresh database");
    handshake_storage::bench::seed_jobs(&harness, PLAN_JOBS).expect("seed the jobs");
    let filter = AiJobListFilter {
        wsid: Some("ws-7".into()),
        limit: Some(50),
        ..AiJobListFilter::default()
    };
    // The harness's own store is not traced: only the statement counts here.
    let (jobs, statements) = statements_sent(|| harness.store().list_ai_jobs(filter));
    assert_eq!(jobs.len(), 50, "ws-7 holds about 100 jobs");
    assert_eq!(statements.len(), 1, "{statements:#?}");
    let (sql, binds) = statements[0]
        .split_once(" -- binds: ")
        .expect("Diesel's statement text ends with its binds");
    let binds = sql_literals(binds);
    match harness.backend() {
        #[cfg(feature = "postgres")]
        Backend::Postgres => plans::postgres(harness.url(), sql, &binds),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => plans::sqlite(harness.url(), sql, &binds),
        #[allow(unreachable_patterns)]
        other => panic!("no plan reader for {other}"),
    }
}

/// Diesel's bind list (`["workspace", "ws-7", 50]`) as SQL literals; the
/// workspace filter binds only plain strings and numbers.
fn sql_literals(binds: &str) -> Vec<String> {
    let inner = binds.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(", ")
        .map(
            |b| match b.strip_prefix('"').and_then(|b| b.strip_suffix('"')) {
                Some(text) => format!("'{}'", text.replace('\'', "''")),
                None => b.to_string(),
            },
        )
        .collect()
}

mod plans {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[cfg(feature = "postgres")]
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        line: String,
    }

    /// `EXPLAIN` of the statement prepared as the store's driver prepares
    /// it, once as a custom plan (the binds' values known) and once as the
    /// generic plan PostgreSQL may switch a cached statement to.
    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str, sql: &str, binds: &[String]) -> Vec<(String, Vec<String>)> {
        let mut conn = PgConnection::establish(url).expect("connect");
        diesel::sql_query(format!("PREPARE hsk_workspace_filter AS {sql}"))
            .execute(&mut conn)
            .expect("prepare the store's statement");
        // EXPLAIN's rows as `line`, through a function of this session.
        diesel::sql_query(
            "CREATE FUNCTION pg_temp.hsk_explain(statement text) RETURNS SETOF text \
             LANGUAGE plpgsql AS $$ DECLARE l text; BEGIN \
             FOR l IN EXECUTE 'EXPLAIN ' || statement LOOP RETURN NEXT l; END LOOP; END $$",
        )
        .execute(&mut conn)
        .expect("create the EXPLAIN helper");
        let execute = format!("EXECUTE hsk_workspace_filter({})", binds.join(", "));
        ["force_custom_plan", "force_generic_plan"]
            .into_iter()
            .map(|mode| {
                diesel::sql_query(format!("SET plan_cache_mode = {mode}"))
                    .execute(&mut conn)
                    .expect("plan_cache_mode");
                let lines: Vec<Line> =
                    diesel::sql_query("SELECT l AS line FROM pg_temp.hsk_explain($1) AS l")
                        .bind::<Text, _>(&execute)
                        .load(&mut conn)
                        .expect("EXPLAIN");
                (
                    mode.to_string(),
                    lines.into_iter().map(|l| l.line).collect(),
                )
            })
            .collect()
    }

    #[cfg(feature = "sqlite")]
    #[derive(QueryableByName)]
    struct Detail {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// `EXPLAIN QUERY PLAN` of the statement with its binds' values.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(url: &str, sql: &str, binds: &[String]) -> Vec<(String, Vec<String>)> {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        let mut conn = SqliteConnection::establish(path).expect("open the file");
        let mut values = binds.iter();
        let sql: String = sql
            .split('?')
            .enumerate()
            .map(|(i, part)| match i {
                0 => part.to_string(),
                _ => format!("{}{part}", values.next().expect("a value per `?`")),
            })
            .collect();
        let lines: Vec<Detail> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load(&mut conn)
            .expect("EXPLAIN QUERY PLAN");
        vec![(
            "query plan".into(),
            lines.into_iter().map(|l| l.detail).collect(),
        )]
    }
}

#[track_caller]
fn assert_uses_refs_index(plans: &[(String, Vec<String>)], full_scan: &str, sort: &str) {
    for (which, lines) in plans {
        let plan = lines.join("\n");
        eprintln!("{which}:\n{plan}");
        assert!(
            plan.contains("ai_job_entity_refs_entity_created_idx"),
            "{which}: the refs index is not used:\n{plan}"
        );
        assert!(
            !lines.iter().any(|l| l.contains(full_scan)),
            "{which}: every job is read:\n{plan}"
        );
        assert!(
            !lines.iter().any(|l| l.contains(sort)),
            "{which}: the page is sorted, not read in index order:\n{plan}"
        );
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_workspace_filter_uses_the_refs_index() {
    // `SCAN ai_jobs` would be a full scan of the table (an ordered walk
    // through one of its indexes shows as `SCAN ai_jobs USING INDEX`).
    let plans = workspace_filter_plan(TestTarget::standard("sqlite"));
    assert_uses_refs_index(&plans, "SCAN ai_jobs", "TEMP B-TREE");
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_workspace_filter_uses_the_refs_index() {
    let plans = workspace_filter_plan(TestTarget::standard("postgres"));
    assert_uses_refs_index(&plans, "Seq Scan on ai_jobs", "Sort");
}
