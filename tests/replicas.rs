//! Read replicas against real streaming replicas: each test starts its own
//! private primary (`wal_level = replica`) and a replica made with
//! `pg_basebackup -R`, with a `recovery_min_apply_delay` so that lag is
//! deterministic, on loopback ports of their own, and stops both when it
//! ends. The machine's main PostgreSQL cluster is never touched.
//!
//! Which server a statement went to is counted by a Diesel
//! instrumentation: each connection is tagged with the port it was opened
//! on, and every statement it sends counts for that port.
#![cfg(all(feature = "postgres", unix))]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::cluster::{ClusterOptions, PgCluster};
use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use handshake_storage::*;
use serial_test::serial;

// ---------------------------------------------------------------------------
// Statements per server

/// Statements sent, by server port, by every connection of this process.
fn sent() -> &'static Mutex<HashMap<u16, Vec<String>>> {
    static SENT: OnceLock<Mutex<HashMap<u16, Vec<String>>>> = OnceLock::new();
    SENT.get_or_init(Mutex::default)
}

thread_local! {
    /// The port the connection being established on this thread goes to:
    /// Diesel hands the URL to the instrumentation it creates inside
    /// `establish`, and the pool's manager creates the connection's lasting
    /// instrumentation right after, on the same thread.
    static CONNECTING_TO: std::cell::Cell<Option<u16>> = const { std::cell::Cell::new(None) };
}

struct CountByPort {
    port: Option<u16>,
}

impl Instrumentation for CountByPort {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                let port = url::Url::parse(url).ok().and_then(|u| u.port());
                CONNECTING_TO.with(|c| c.set(port));
                self.port = port;
            }
            InstrumentationEvent::StartQuery { query, .. } => {
                if let Some(port) = self.port {
                    sent()
                        .lock()
                        .unwrap()
                        .entry(port)
                        .or_default()
                        .push(query.to_string());
                }
            }
            _ => {}
        }
    }
}

fn install_counter() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        set_default_instrumentation(|| {
            Some(Box::new(CountByPort {
                port: CONNECTING_TO.with(|c| c.get()),
            }))
        })
        .expect("install the statement counter");
    });
}

/// Statements that read or write our tables (not the router's own
/// position queries), sent to `port` so far.
fn data_statements(port: u16) -> usize {
    sent()
        .lock()
        .unwrap()
        .get(&port)
        .map_or(0, |list| list.iter().filter(|sql| is_data(sql)).count())
}

fn is_data(sql: &str) -> bool {
    !sql.contains("pg_last_wal_replay_lsn") && !sql.contains("pg_current_wal_insert_lsn")
}

/// The data statements `op` sends to the primary and to the replica.
fn routed<T>(pair: &Pair, op: impl FnOnce() -> T) -> (T, usize, usize) {
    let (p0, r0) = (
        data_statements(pair.primary.port()),
        data_statements(pair.replica.port()),
    );
    let value = op();
    (
        value,
        data_statements(pair.primary.port()) - p0,
        data_statements(pair.replica.port()) - r0,
    )
}

// ---------------------------------------------------------------------------
// Setup

struct Pair {
    // The replica first: it is stopped before its primary.
    replica: PgCluster,
    primary: PgCluster,
}

fn pair(apply_delay: Duration) -> Pair {
    install_counter();
    let primary = PgCluster::start(ClusterOptions {
        replication: true,
        ..ClusterOptions::default()
    });
    let replica = PgCluster::replica_of(&primary, apply_delay);
    Pair { replica, primary }
}

fn config(pair: &Pair, max_lag: Duration) -> StorageConfig {
    StorageConfig::default()
        .connection_timeout(Duration::from_secs(30))
        .read_replicas(vec![pair.replica.url("")])
        .replica_max_lag(max_lag)
        .replica_check_interval(Duration::from_millis(100))
}

fn open_replicated(pair: &Pair, max_lag: Duration) -> Arc<dyn Storage> {
    open_with_config(&pair.primary.url(""), &config(pair, max_lag)).expect("open with a replica")
}

fn raw(url: &str) -> PgConnection {
    PgConnection::establish(url).expect("a raw connection")
}

/// Whether the replica has the block with this id, asked directly.
fn replica_has_block(pair: &Pair, id: &str) -> bool {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let found: Result<Count, _> =
        diesel::sql_query("SELECT count(*) AS n FROM blocks WHERE id = $1")
            .bind::<diesel::sql_types::Text, _>(id)
            .get_result(&mut raw(&pair.replica.url("")));
    // Before the migrations are replayed the table does not exist yet.
    found.is_ok_and(|c| c.n == 1)
}

fn wait_until(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the replica has replayed `block`.
fn wait_for_replay(pair: &Pair, block: &Block) {
    wait_until(
        "the replica replays the writes",
        Duration::from_secs(30),
        || replica_has_block(pair, &block.id),
    );
}

/// Waits until reading `block` sends its statement to the replica (the
/// replica's state is measured again within the check interval, so the
/// first reads after it caught up may still go to the primary).
fn wait_for_replica_reads(pair: &Pair, store: &dyn Storage, block: &Block) {
    wait_until(
        "a read reaches the replica",
        Duration::from_secs(30),
        || routed(pair, || store.get_block(&block.id)).2 == 1,
    );
}

fn human() -> WriteContext {
    WriteContext::human(Some("replica-test".into()))
}

/// A workspace, a document in it and one block.
fn seed(store: &dyn Storage) -> (Workspace, Document, Block) {
    let ws = store
        .create_workspace(&human(), NewWorkspace { name: "ws".into() })
        .expect("workspace");
    let doc = store
        .create_document(
            &human(),
            NewDocument {
                workspace_id: ws.id.clone(),
                title: "doc".into(),
            },
        )
        .expect("document");
    let block = store
        .create_block(
            &human(),
            NewBlock {
                document_id: doc.id.clone(),
                kind: "paragraph".into(),
                raw_content: "hello".into(),
                ..NewBlock::default()
            },
        )
        .expect("block");
    (ws, doc, block)
}

// ---------------------------------------------------------------------------
// Read-your-writes and routing

/// A call under test, its result dropped.
type Read<'a> = Box<dyn Fn() -> StorageResult<()> + 'a>;

#[test]
fn a_write_is_read_back_at_once_while_the_replica_lags_two_seconds() {
    let pair = pair(Duration::from_secs(2));
    // A lag bound far above the delay: only read-your-writes keeps these
    // reads off the replica.
    let store = open_replicated(&pair, Duration::from_secs(3600));
    let (_, doc, seeded) = seed(&*store);
    // Once the replica has the tables and the seed, a read it served too
    // early would find no row rather than fail.
    wait_for_replay(&pair, &seeded);
    for k in 0..5 {
        let block = store
            .create_block(
                &human(),
                NewBlock {
                    document_id: doc.id.clone(),
                    kind: "paragraph".into(),
                    raw_content: format!("written {k}"),
                    sequence: k + 1,
                    ..NewBlock::default()
                },
            )
            .expect("create_block");
        let (read, _, on_replica) = routed(&pair, || store.get_block(&block.id));
        assert_eq!(read.expect("get_block right after create_block"), block);
        assert_eq!(
            on_replica, 0,
            "a replica that has not replayed the write served it"
        );
        assert!(
            !replica_has_block(&pair, &block.id),
            "the replica already shows the row: the apply delay is not in effect"
        );
    }
    let blocks = store.get_blocks(&doc.id).expect("get_blocks");
    assert_eq!(blocks.len(), 6);
}

#[test]
fn lag_tolerant_reads_go_to_the_replica_once_it_has_caught_up() {
    let pair = pair(Duration::from_secs(2));
    let store = open_replicated(&pair, Duration::from_secs(3600));
    let (ws, doc, block) = seed(&*store);
    let job = store
        .create_ai_job(handshake_storage::conformance::fixtures::workspace_job(
            &ws.id,
        ))
        .expect("job");
    let run = store
        .create_workflow_run(job.job_id, JobState::Running, None)
        .expect("run");
    wait_for_replay(&pair, &block);
    wait_for_replica_reads(&pair, &*store, &block);

    let reads: Vec<(&str, Read<'_>)> = vec![
        (
            "get_block",
            Box::new(|| store.get_block(&block.id).map(drop)),
        ),
        (
            "get_blocks",
            Box::new(|| store.get_blocks(&doc.id).map(drop)),
        ),
        (
            "get_document",
            Box::new(|| store.get_document(&doc.id).map(drop)),
        ),
        (
            "list_documents",
            Box::new(|| store.list_documents(&ws.id).map(drop)),
        ),
        (
            "get_workspace",
            Box::new(|| store.get_workspace(&ws.id).map(drop)),
        ),
        (
            "list_workspaces",
            Box::new(|| store.list_workspaces().map(drop)),
        ),
        (
            "list_canvases",
            Box::new(|| store.list_canvases(&ws.id).map(drop)),
        ),
        (
            "get_ai_job",
            Box::new(|| store.get_ai_job(job.job_id).map(drop)),
        ),
        (
            "list_ai_jobs",
            Box::new(|| store.list_ai_jobs(AiJobListFilter::default()).map(drop)),
        ),
        (
            "list_workflow_node_executions",
            Box::new(|| store.list_workflow_node_executions(run.id).map(drop)),
        ),
    ];
    for (name, read) in &reads {
        let (result, on_primary, on_replica) = routed(&pair, read);
        result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (on_primary, on_replica),
            (0, 1),
            "{name}: (primary, replica) statements"
        );
    }

    let cursor = AiJobCursor::after(&job);
    let primary_only: Vec<(&str, Read<'_>)> = vec![
        (
            "find_stalled_workflows",
            Box::new(|| store.find_stalled_workflows(0).map(drop)),
        ),
        (
            "prune_ai_jobs (dry run)",
            Box::new(|| store.prune_ai_jobs(chrono::Utc::now(), 0, true).map(drop)),
        ),
        (
            "list_ai_jobs after a cursor",
            Box::new(|| {
                store
                    .list_ai_jobs(AiJobListFilter {
                        cursor: Some(cursor),
                        ..AiJobListFilter::default()
                    })
                    .map(drop)
            }),
        ),
        ("ping", Box::new(|| store.ping())),
        (
            "migration_status",
            Box::new(|| store.migration_status().map(drop)),
        ),
    ];
    for (name, read) in &primary_only {
        let (result, on_primary, on_replica) = routed(&pair, read);
        result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(on_replica, 0, "{name} must not read the replica");
        assert!(on_primary >= 1, "{name} read nothing on the primary");
    }

    // A write goes to the primary, and the next read, which the replica
    // cannot serve for two seconds, follows it there.
    let (updated, on_primary, on_replica) = routed(&pair, || {
        store.update_block(
            &human(),
            &block.id,
            BlockUpdate {
                raw_content: Some("changed".into()),
                ..BlockUpdate::default()
            },
        )
    });
    let updated = updated.expect("update_block");
    assert_eq!((on_primary, on_replica), (1, 0), "update_block");
    let (read, _, on_replica) = routed(&pair, || store.get_block(&block.id));
    assert_eq!(read.expect("read after update"), updated);
    assert_eq!(
        on_replica, 0,
        "read after update served by the lagging replica"
    );
}

#[test]
fn a_replica_lagging_past_the_bound_is_skipped_until_it_catches_up() {
    let pair = pair(Duration::from_secs(2));
    let store = open_replicated(&pair, Duration::from_millis(500));
    let (_, doc, block) = seed(&*store);
    wait_for_replay(&pair, &block);
    wait_for_replica_reads(&pair, &*store, &block);
    // Another client keeps writing to the primary: the replica's lag grows
    // to the apply delay, past the bound, though it has replayed every
    // write of this store.
    let other = open(&pair.primary.url("")).expect("a plain store on the primary");
    let (_, other_doc, _) = seed(&*other);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                other
                    .create_block(
                        &human(),
                        NewBlock {
                            document_id: other_doc.id.clone(),
                            kind: "paragraph".into(),
                            sequence: k,
                            ..NewBlock::default()
                        },
                    )
                    .expect("the other client's write");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(3000));
    let mut on_replica = 0;
    for _ in 0..50 {
        let (read, _, r) = routed(&pair, || store.get_blocks(&doc.id));
        read.expect("a read while the replica lags");
        on_replica += r;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        on_replica, 0,
        "a replica 2 s behind served reads with a 500 ms bound"
    );
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    wait_for_replica_reads(&pair, &*store, &block);
}

// ---------------------------------------------------------------------------
// Failure

#[test]
fn the_replica_stopped_during_eight_reading_threads_costs_no_call_and_is_used_again() {
    let pair = pair(Duration::ZERO);
    let store = open_replicated(&pair, Duration::from_secs(30));
    let (ws, doc, block) = seed(&*store);
    let job = store
        .create_ai_job(handshake_storage::conformance::fixtures::workspace_job(
            &ws.id,
        ))
        .expect("job");
    wait_for_replica_reads(&pair, &*store, &block);

    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            let (doc_id, block_id, ws_id) = (doc.id.clone(), block.id.clone(), ws.id.clone());
            std::thread::spawn(move || {
                let mut calls = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    calls += 1;
                    let result = match calls % 4 {
                        0 => store.get_block(&block_id).map(drop),
                        1 => store.get_blocks(&doc_id).map(drop),
                        2 => store
                            .list_ai_jobs(AiJobListFilter {
                                wsid: Some(ws_id.clone()),
                                limit: Some(50),
                                ..AiJobListFilter::default()
                            })
                            .map(drop),
                        // A write now and then: read-your-writes in play.
                        _ if t == 0 && calls % 40 == 3 => store
                            .create_block(
                                &human(),
                                NewBlock {
                                    document_id: doc_id.clone(),
                                    kind: "paragraph".into(),
                                    sequence: calls as i64,
                                    ..NewBlock::default()
                                },
                            )
                            .map(drop),
                        _ => store.get_ai_job(job.job_id).map(drop),
                    };
                    if let Err(err) = result {
                        panic!("thread {t}, call {calls}: {err}");
                    }
                }
                calls
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    pair.replica.stop();
    std::thread::sleep(Duration::from_millis(2000));
    let while_down = data_statements(pair.replica.port());
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        data_statements(pair.replica.port()),
        while_down,
        "statements reached a stopped replica"
    );
    pair.replica.start_server();
    let restarted = data_statements(pair.replica.port());
    wait_until(
        "reads return to the restarted replica",
        Duration::from_secs(30),
        || data_statements(pair.replica.port()) > restarted + 100,
    );
    stop.store(true, Ordering::SeqCst);
    let calls: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("no call failed"))
        .sum();
    assert!(calls > 0);
}

#[test]
fn a_replica_that_refuses_connections_is_skipped() {
    let pair = pair(Duration::ZERO);
    // A port nobody listens on.
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = StorageConfig::default()
        .read_replicas(vec![format!(
            "postgres://postgres@127.0.0.1:{refused}/postgres"
        )])
        .replica_check_interval(Duration::from_millis(50));
    let store = open_with_config(&pair.primary.url(""), &config).expect("open despite the replica");
    let (_, doc, block) = seed(&*store);
    let start = Instant::now();
    for _ in 0..200 {
        assert_eq!(store.get_block(&block.id).expect("get_block"), block);
        store.get_blocks(&doc.id).expect("get_blocks");
    }
    // Each failed measurement is one refused connection: the reads do not
    // wait for a pool checkout timeout.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "400 reads took {:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Paging

#[test]
fn paging_ten_thousand_jobs_while_jobs_are_created_never_skips_or_repeats() {
    let pair = pair(Duration::ZERO);
    let store = open_replicated(&pair, Duration::from_secs(30));
    const JOBS: usize = 10_000;
    // Created by 4 threads so the seeding takes seconds, not a minute.
    let seeded: HashSet<uuid::Uuid> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..JOBS / 4)
                    .map(|_| {
                        store
                            .create_ai_job(NewAiJob::default())
                            .expect("job")
                            .job_id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|t| t.join().expect("seeding"))
        .collect();
    assert_eq!(seeded.len(), JOBS);

    // Jobs keep arriving, through this store and through another client.
    let stop = Arc::new(AtomicBool::new(false));
    let other = open(&pair.primary.url("")).expect("a plain store on the primary");
    let creators: Vec<_> = [Arc::clone(&store), other]
        .into_iter()
        .map(|s| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut made = 0;
                while !stop.load(Ordering::SeqCst) {
                    s.create_ai_job(NewAiJob::default())
                        .expect("a job meanwhile");
                    made += 1;
                }
                made
            })
        })
        .collect();

    let mut seen = HashSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_ai_jobs(AiJobListFilter {
                limit: Some(97),
                cursor,
                ..AiJobListFilter::default()
            })
            .expect("a page");
        let Some(last) = page.last() else { break };
        cursor = Some(AiJobCursor::after(last));
        for job in &page {
            assert!(seen.insert(job.job_id), "job {} repeated", job.job_id);
        }
        pages += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let made: usize = creators
        .into_iter()
        .map(|c| c.join().expect("creator"))
        .sum();
    let missing = seeded.difference(&seen).count();
    assert_eq!(missing, 0, "{missing} jobs skipped in {pages} pages");
    assert!(made > 0, "no job was created while paging");
}

// ---------------------------------------------------------------------------
// Opening

#[test]
fn a_replica_url_of_another_backend_is_a_validation_error_at_open() {
    // Checked before any connection: no server is needed.
    let primary = "postgres://postgres@127.0.0.1:1/none";
    for replica in [
        "sqlite://replica.db",
        "sqlite::memory:",
        "./replica.db",
        "mysql://u:s3cret@h/db",
    ] {
        let config = StorageConfig::default().read_replicas(vec![replica.into()]);
        match open_with_config(primary, &config) {
            Err(StorageError::Validation(message)) => {
                assert!(message.contains("replica"), "{message}");
                assert!(!message.contains("s3cret"), "{message}");
            }
            Err(other) => panic!("{replica}: {other}"),
            Ok(_) => panic!("{replica}: opened"),
        }
    }
    let config = StorageConfig::default().read_replicas(vec![primary.into()]);
    assert!(matches!(
        open_with_config("sqlite::memory:", &config),
        Err(StorageError::Validation(_))
    ));
}

#[test]
#[serial]
fn open_from_env_reads_database_replica_urls() {
    let pair = pair(Duration::ZERO);
    std::env::set_var("DATABASE_URL", pair.primary.url(""));
    std::env::set_var(REPLICA_URLS_ENV, "sqlite://nope.db");
    let refused = open_from_env();
    std::env::set_var(REPLICA_URLS_ENV, format!(" {} ,", pair.replica.url("")));
    let store = open_from_env();
    std::env::remove_var(REPLICA_URLS_ENV);
    std::env::remove_var("DATABASE_URL");
    assert!(matches!(refused, Err(StorageError::Validation(_))));
    let store = store.expect("open_from_env with a replica");
    let (_, _, block) = seed(&*store);
    wait_for_replica_reads(&pair, &*store, &block);
}
