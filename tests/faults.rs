//! Faults injected into real databases: PostgreSQL backends killed mid-run,
//! a server that is down or silent at start, an exhausted pool, a SQLite
//! writer killed with SIGKILL mid-transaction, a read-only directory and a
//! full disk. Each ends in a clear error of the documented kind, a store
//! that works again, and nothing half-written.

mod common;

use std::time::Duration;

use common::*;
use handshake_storage::conformance::TestTarget;
use handshake_storage::*;

#[test]
#[ignore = "a child process of other tests; runs only when they start it"]
fn child_process() {
    child_process_main()
}

fn workspace_and_document(store: &dyn Storage) -> (Workspace, Document) {
    let ws = store
        .create_workspace(
            &human(),
            NewWorkspace {
                name: "faults".into(),
            },
        )
        .unwrap();
    let doc = store
        .create_document(
            &human(),
            NewDocument {
                workspace_id: ws.id.clone(),
                title: "target".into(),
            },
        )
        .unwrap();
    (ws, doc)
}

/// A `Database` error on one line that names what failed; never a password.
fn assert_clear_database_error(err: &StorageError, secret: Option<&str>) {
    assert!(matches!(err, StorageError::Database(_)), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains('\n'), "not one line: {text}");
    if let Some(secret) = secret {
        assert!(!text.contains(secret), "password leaked: {text}");
    }
}

#[cfg(feature = "sqlite")]
mod on_sqlite {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    use diesel::sqlite::SqliteConnection;

    #[derive(QueryableByName)]
    struct IntegrityCheck {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }

    fn integrity_check(url: &str) -> Vec<String> {
        let path = url.strip_prefix("sqlite://").expect("a sqlite:// url");
        let mut conn = SqliteConnection::establish(path).expect("open the file directly");
        diesel::sql_query("PRAGMA integrity_check")
            .load::<IntegrityCheck>(&mut conn)
            .expect("PRAGMA integrity_check")
            .into_iter()
            .map(|row| row.integrity_check)
            .collect()
    }

    const KILLS: usize = 5;

    /// A child process replacing 20,000 blocks over and over is SIGKILLed at
    /// a random moment; the reopened file holds exactly the last committed
    /// version or the one being written, never a mix, and is intact.
    #[test]
    fn sigkill_during_replace_blocks_leaves_old_or_new_never_a_mix() {
        let harness = TestTarget::standard("sqlite").harness().unwrap();
        let (_, doc) = workspace_and_document(harness.store());
        harness
            .store()
            .replace_blocks(
                &human(),
                &doc.id,
                versioned_blocks(&doc.id, 0, KILLED_BLOCKS),
            )
            .unwrap();
        let mut rng = Rng::from_env_or_random("sigkill");
        let mut mid_transaction = 0;
        for kill in 0..KILLS {
            let mut child = child("replace-forever", harness.url(), &doc.id)
                .spawn()
                .expect("spawn the writer");
            let mut reports = Reports::of(&mut child);
            // Wait for one whole replace, then kill somewhere in the next
            // two (each takes about as long as the first).
            let first = reports.next_report().expect("the writer died early");
            let (committed, millis) = parse_done(&first);
            std::thread::sleep(Duration::from_millis(rng.below(2 * millis + 1)));
            child.kill().expect("SIGKILL the writer");
            child.wait().unwrap();
            let mut last_done = committed;
            while let Some(line) = reports.next_report() {
                last_done = parse_done(&line).0;
            }

            let reopened = harness.reopen().expect("reopen after SIGKILL");
            let found = whole_version(&reopened.get_blocks(&doc.id).unwrap(), KILLED_BLOCKS);
            assert!(
                found == last_done || found == last_done + 1,
                "kill {kill}: found version {found}, last reported {last_done}"
            );
            mid_transaction += usize::from(found == last_done);
            assert_eq!(integrity_check(harness.url()), ["ok"], "kill {kill}");
        }
        eprintln!(
            "sigkill: {KILLS} writers killed ({mid_transaction} with a replace of \
             {KILLED_BLOCKS} blocks uncommitted), every file whole and intact"
        );
    }

    fn parse_done(line: &str) -> (u64, u64) {
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("done"), "{line}");
        let mut number = || words.next().and_then(|w| w.parse().ok()).expect(line);
        (number(), number())
    }

    /// A file system nobody can create files in, root included: procfs.
    #[test]
    fn unwritable_file_system_is_a_clear_database_error() {
        for url in [
            "sqlite:///proc/hsk-storage-test.db",
            "sqlite:///proc/hsk-storage-test/nested/store.db",
            "/proc/hsk-storage-test.db",
        ] {
            let err = open(url).err().expect("opening in /proc must fail");
            assert_clear_database_error(&err, None);
            assert!(err.to_string().contains("/proc/"), "names the path: {err}");
        }
    }

    /// A directory made read-only: mode 0555, and immutable (`chattr +i`)
    /// when we run as root, whom modes do not stop. Undone on drop.
    struct ReadOnlyDir<'a>(&'a std::path::Path);

    impl<'a> ReadOnlyDir<'a> {
        fn new(dir: &'a std::path::Path) -> Self {
            use std::os::unix::fs::PermissionsExt;
            // The guard exists before anything is changed, so a failed
            // assertion below still undoes it (an immutable directory
            // left behind cannot be deleted, even by root).
            let guard = ReadOnlyDir(dir);
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                let status = std::process::Command::new("chattr")
                    .arg("+i")
                    .arg(dir)
                    .status()
                    .expect("chattr (e2fsprogs) to make a directory read-only for root");
                assert!(status.success(), "chattr +i {}", dir.display());
            }
            let probe = dir.join("probe");
            assert!(
                std::fs::write(&probe, b"x").is_err(),
                "the directory is still writable"
            );
            guard
        }
    }

    impl Drop for ReadOnlyDir<'_> {
        fn drop(&mut self) {
            use std::os::unix::fs::PermissionsExt;
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(self.0)
                    .status();
            }
            let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o755));
        }
    }

    /// Waits (up to 30 s) until no connection has `db` open: SQLite removes
    /// its `-wal` and `-shm` files when the last one closes.
    fn wait_until_closed(db: &std::path::Path) {
        let side = |suffix: &str| {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            std::path::PathBuf::from(path)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while side("-wal").exists() || side("-shm").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} is still open 30 s after its store was dropped",
                db.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// A new database in a read-only directory, and an existing one whose
    /// directory turned read-only (WAL needs to create files beside it):
    /// each a clear `Database` error naming the file, never a panic.
    #[test]
    fn read_only_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing.db");
        let store = open(existing.to_str().unwrap()).unwrap();
        workspace_and_document(&*store);
        drop(store);
        // The pool may still be opening a connection in the background
        // when the store is dropped (r2d2 fills `min_idle` on its own
        // threads, each holding the pool until its connect returns); the
        // last connection to close removes `-wal` and `-shm`. Until then the
        // database is not closed, and a read-only directory would keep the
        // files, which an open can use.
        wait_until_closed(&existing);
        let _read_only = ReadOnlyDir::new(dir.path());

        let new = dir.path().join("new.db");
        let err = open(new.to_str().unwrap())
            .err()
            .expect("cannot create a file");
        assert_clear_database_error(&err, None);
        assert!(err.to_string().contains("new.db"), "names the file: {err}");

        let err = open(existing.to_str().unwrap())
            .err()
            .expect("WAL cannot create its files");
        assert_clear_database_error(&err, None);
        assert!(
            err.to_string().contains("existing.db"),
            "names the file: {err}"
        );
        eprintln!("read-only directory: {err}");
    }

    /// The disk fills up (the writer's file size capped just above the
    /// database's) during a 8 MiB `replace_blocks`: a `Database` error,
    /// the old blocks intact, the file intact.
    #[test]
    fn full_disk_is_a_clear_database_error_and_writes_nothing() {
        let harness = TestTarget::standard("sqlite").harness().unwrap();
        let (_, doc) = workspace_and_document(harness.store());
        let old = harness
            .store()
            .replace_blocks(&human(), &doc.id, versioned_blocks(&doc.id, 1, 100))
            .unwrap();
        let mut child = child("full-disk", harness.url(), &doc.id)
            .spawn()
            .expect("spawn the writer");
        let mut reports = Reports::of(&mut child);
        let outcome = reports.next_report().expect("the writer died early");
        let after = reports.next_report().expect("the writer died early");
        assert!(child.wait().unwrap().success());

        let message = outcome
            .strip_prefix("error Database ")
            .unwrap_or_else(|| panic!("expected a Database error, got {outcome}"));
        assert!(message.contains("disk"), "{message}");
        assert_eq!(after, "unchanged true");
        let reopened = harness.reopen().unwrap();
        assert_eq!(reopened.get_blocks(&doc.id).unwrap(), old);
        assert_eq!(integrity_check(harness.url()), ["ok"]);
        eprintln!("full disk: {message}");
    }
}

#[cfg(feature = "postgres")]
mod on_postgres {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use diesel::connection::SimpleConnection;
    use diesel::pg::PgConnection;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Bool, Text};
    use handshake_storage::conformance::Harness;

    use super::*;

    /// Far above what any of these tests needs: only a hang reaches it.
    const WATCHDOG: Duration = Duration::from_secs(300);

    fn admin_url() -> String {
        match TestTarget::standard("postgres") {
            TestTarget::Postgres { admin_url } => admin_url,
            other => panic!("not a postgres target: {other:?}"),
        }
    }

    /// A store on the harness's database whose connections carry a unique
    /// `application_name`, so an admin session can find them.
    fn tagged_store(harness: &Harness, config: &StorageConfig) -> (Arc<dyn Storage>, String) {
        let app = format!("hsk_fault_{}", uuid::Uuid::new_v4().simple());
        let url = harness.url();
        let sep = if url.contains('?') { '&' } else { '?' };
        let store = open_with_config(&format!("{url}{sep}application_name={app}"), config)
            .expect("open the tagged store");
        (store, app)
    }

    #[derive(QueryableByName)]
    struct Terminated {
        #[diesel(sql_type = Bool)]
        terminated: bool,
    }

    /// Terminates every server process of the store tagged `app` and waits
    /// until each has exited.
    fn kill_backends(admin: &mut PgConnection, app: &str) -> usize {
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid, 30000) AS terminated FROM pg_stat_activity \
             WHERE application_name = $1",
        )
        .bind::<Text, _>(app)
        .load::<Terminated>(admin)
        .expect("pg_terminate_backend")
        .iter()
        .filter(|t| t.terminated)
        .count()
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn backends_waiting_on_a_lock(admin: &mut PgConnection, app: &str) -> i64 {
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind::<Text, _>(app)
        .get_result::<Count>(admin)
        .expect("pg_stat_activity")
        .n
    }

    const KILL_ROUNDS: usize = 30;
    const GRAPH_NODES: usize = 200;

    fn graph(version: u64) -> (Vec<NewCanvasNode>, Vec<NewCanvasEdge>) {
        let id = |k: usize| format!("v{version}-n{k:04}");
        let nodes = (0..GRAPH_NODES)
            .map(|k| NewCanvasNode {
                id: Some(id(k)),
                kind: "note".into(),
                position_x: version as f64,
                position_y: k as f64,
                data: None,
            })
            .collect();
        let edges = (1..GRAPH_NODES)
            .map(|k| NewCanvasEdge {
                id: Some(format!("v{version}-e{k:04}")),
                from_node_id: id(k - 1),
                to_node_id: id(k),
                kind: "link".into(),
            })
            .collect();
        (nodes, edges)
    }

    /// The one version a canvas's graph is wholly made of.
    fn whole_graph_version(g: &CanvasGraph) -> u64 {
        assert_eq!(g.nodes.len(), GRAPH_NODES, "nodes of a half-written graph");
        assert_eq!(
            g.edges.len(),
            GRAPH_NODES - 1,
            "edges of a half-written graph"
        );
        let version = g.nodes[0].position_x as u64;
        let prefix = format!("v{version}-");
        assert!(
            g.nodes.iter().all(|n| n.id.starts_with(&prefix))
                && g.edges.iter().all(|e| e.id.starts_with(&prefix)),
            "graph mixes versions"
        );
        version
    }

    const KILLED_PG_BLOCKS: usize = 2_000;

    /// What the writer saw.
    #[derive(Default)]
    struct Tally {
        /// Every call in order: `None` when it succeeded, else the error.
        calls: Vec<Option<StorageError>>,
        writes_cut_and_absent: usize,
        writes_cut_but_committed: usize,
    }

    /// Writes new versions of a document's blocks and a canvas's graph
    /// until told to stop, reading each back: a write that failed must have
    /// left the old version or the new one, wholly.
    fn write_versions(
        store: &dyn Storage,
        doc: &str,
        canvas: &str,
        stop: &AtomicBool,
        done: &AtomicUsize,
        killing: &AtomicBool,
    ) -> Tally {
        let mut tally = Tally::default();
        let record = |tally: &mut Tally, outcome: Option<StorageError>| {
            if outcome.is_some() {
                // The call after a failure comes once the fault is whole
                // (every killed process gone); a process still dying could
                // answer a ping and fail the next statement.
                while killing.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            tally.calls.push(outcome);
            done.fetch_add(1, Ordering::SeqCst);
        };
        let (mut blocks_at, mut graph_at) = (0, 0);
        let mut version = 0;
        while !stop.load(Ordering::SeqCst) {
            version += 1;
            let wrote = store.replace_blocks(
                &human(),
                doc,
                versioned_blocks(doc, version, KILLED_PG_BLOCKS),
            );
            let failed = wrote.as_ref().err().cloned();
            record(&mut tally, wrote.err());
            let blocks = read_back(&mut tally, &record, || store.get_blocks(doc));
            let seen = whole_version(&blocks, KILLED_PG_BLOCKS);
            check_cut(&mut tally, failed.as_ref(), blocks_at, version, seen);
            blocks_at = seen;

            let (nodes, edges) = graph(version);
            let wrote = store.update_canvas_graph(&human(), canvas, nodes, edges);
            let failed = wrote.as_ref().err().cloned();
            record(&mut tally, wrote.err());
            let g = read_back(&mut tally, &record, || store.get_canvas_with_graph(canvas));
            let seen = whole_graph_version(&g);
            check_cut(&mut tally, failed.as_ref(), graph_at, version, seen);
            graph_at = seen;
        }
        tally
    }

    /// A read, once more if it fails: a second failure in a row means the
    /// pool kept a dead connection, and fails the test.
    fn read_back<T>(
        tally: &mut Tally,
        record: &impl Fn(&mut Tally, Option<StorageError>),
        read: impl Fn() -> StorageResult<T>,
    ) -> T {
        match read() {
            Ok(value) => {
                record(tally, None);
                value
            }
            Err(first) => {
                record(tally, Some(first.clone()));
                let value = read().unwrap_or_else(|second| {
                    panic!("the call after a failed one failed too: {first:?}, then {second:?}")
                });
                record(tally, None);
                value
            }
        }
    }

    /// What a write left, given how it ended: a cut write says whether it
    /// may have been written (`is_outcome_unknown`) or certainly was not
    /// (`is_retryable`), and a retryable one is indeed absent.
    fn check_cut(
        tally: &mut Tally,
        failed: Option<&StorageError>,
        before: u64,
        attempted: u64,
        seen: u64,
    ) {
        let Some(err) = failed else {
            assert_eq!(seen, attempted, "a write that succeeded is not there");
            return;
        };
        assert!(
            err.is_retryable() || err.is_outcome_unknown(),
            "a cut write says neither retryable nor outcome unknown: {err}"
        );
        if seen == attempted {
            assert!(
                !err.is_retryable(),
                "a write said retryable (nothing written) but is there: {err}"
            );
            tally.writes_cut_but_committed += 1;
        } else {
            assert_eq!(seen, before, "a failed write left a third state");
            tally.writes_cut_and_absent += 1;
        }
    }

    /// The store's server processes are terminated at random moments while
    /// it writes: the call in flight fails with `Database` (retryable, and
    /// then absent, or outcome unknown), the next one succeeds on a fresh
    /// connection, and each cut transaction is wholly there or wholly
    /// absent.
    #[test]
    fn killed_backends_fail_one_call_and_never_half_write() {
        let harness = TestTarget::standard("postgres").harness().unwrap();
        let config = StorageConfig::default()
            .pool_size(4)
            .connection_timeout(Duration::from_secs(60));
        let (store, app) = tagged_store(&harness, &config);
        let (ws, doc) = workspace_and_document(&*store);
        let canvas = store
            .create_canvas(
                &human(),
                NewCanvas {
                    workspace_id: ws.id,
                    title: "target".into(),
                },
            )
            .unwrap();
        store
            .replace_blocks(
                &human(),
                &doc.id,
                versioned_blocks(&doc.id, 0, KILLED_PG_BLOCKS),
            )
            .unwrap();
        let (nodes, edges) = graph(0);
        store
            .update_canvas_graph(&human(), &canvas.id, nodes, edges)
            .unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let killing = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, stop, done) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&done));
            let killing = Arc::clone(&killing);
            std::thread::spawn(move || {
                write_versions(&*store, &doc.id, &canvas.id, &stop, &done, &killing)
            })
        };
        let mut admin = PgConnection::establish(&admin_url()).expect("admin connection");
        let mut rng = Rng::from_env_or_random("pg kill");
        // Kill on this thread; a writer that dies or stalls ends the rounds.
        let deadline = Instant::now() + WATCHDOG;
        let mut killer = 0;
        'rounds: for _ in 0..KILL_ROUNDS {
            std::thread::sleep(Duration::from_millis(rng.below(80)));
            killing.store(true, Ordering::SeqCst);
            killer += kill_backends(&mut admin, &app);
            killing.store(false, Ordering::SeqCst);
            // Three more calls before the next kill: the one cut (if it had
            // not finished yet), the one after it, and one more, so that
            // each kill's failure stands alone.
            let before = done.load(Ordering::SeqCst);
            while done.load(Ordering::SeqCst) < before + 3 {
                if writer.is_finished() {
                    break 'rounds;
                }
                assert!(Instant::now() < deadline, "the writer stalled");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        stop.store(true, Ordering::SeqCst);
        let tally = within(WATCHDOG, "the writer", move || writer.join())
            .expect("the writer saw a half-written state or a store that did not recover");

        let failures: Vec<&StorageError> = tally.calls.iter().flatten().collect();
        for err in &failures {
            assert_clear_database_error(err, None);
        }
        for pair in tally.calls.windows(2) {
            assert!(
                pair[0].is_none() || pair[1].is_none(),
                "two calls in a row failed: {:?}",
                pair
            );
        }
        assert!(!failures.is_empty(), "no call ever failed: no fault landed");
        assert!(failures.len() <= killer, "more failures than kills");
        // The store is healthy afterwards.
        store.ping().unwrap();
        eprintln!(
            "pg kill: {KILL_ROUNDS} rounds, {killer} server processes terminated, {} calls, \
             {} failed (each followed by a success), {} writes cut and absent, {} cut after \
             commit; nothing half-written",
            tally.calls.len(),
            failures.len(),
            tally.writes_cut_and_absent,
            tally.writes_cut_but_committed,
        );
    }

    const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Room for a loaded machine; a hang would blow far past it.
    const SLACK: Duration = Duration::from_secs(30);

    fn open_fails_in_time(url: &str) -> StorageError {
        let config = StorageConfig::default().connection_timeout(CONNECT_TIMEOUT);
        let url = url.to_string();
        let started = Instant::now();
        let err = within(WATCHDOG, "open", move || {
            open_with_config(&url, &config).err()
        })
        .expect("open must fail");
        assert!(
            started.elapsed() < CONNECT_TIMEOUT + SLACK,
            "open took {:?}",
            started.elapsed()
        );
        assert_clear_database_error(&err, Some("down-secret"));
        err
    }

    /// Nothing listens: refused at once. A listener that accepts and never
    /// answers: libpq's connect timeout (set from the config) ends it.
    #[test]
    fn server_down_or_silent_at_start_fails_within_the_timeout() {
        let free_port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let err = open_fails_in_time(&format!(
            "postgres://u:down-secret@127.0.0.1:{free_port}/db"
        ));
        assert!(err.to_string().contains("cannot connect"), "{err}");

        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let err = open_fails_in_time(&format!("postgres://u:down-secret@127.0.0.1:{port}/db"));
        assert!(err.to_string().contains("timeout"), "{err}");
        drop(silent);
    }

    /// Pool of one, its connection held by a write blocked on a row lock:
    /// the next call gets a `Database` timeout error, not a hang; when the
    /// lock goes, the blocked write completes and the store works.
    #[test]
    fn exhausted_pool_is_a_timeout_error_not_a_hang() {
        let harness = TestTarget::standard("postgres").harness().unwrap();
        let config = StorageConfig::default()
            .pool_size(1)
            .connection_timeout(CONNECT_TIMEOUT);
        let (store, app) = tagged_store(&harness, &config);
        let (ws, doc) = workspace_and_document(&*store);
        let blk = store
            .create_block(
                &human(),
                block(&doc.id, 0, "locked".into(), "before".into()),
            )
            .unwrap();

        let mut locker = PgConnection::establish(harness.url()).expect("locking session");
        locker.batch_execute("BEGIN").unwrap();
        diesel::sql_query("SELECT id FROM blocks WHERE id = $1 FOR UPDATE")
            .bind::<Text, _>(&blk.id)
            .execute(&mut locker)
            .unwrap();
        let blocked = {
            let store = Arc::clone(&store);
            let id = blk.id.clone();
            std::thread::spawn(move || {
                store.update_block(
                    &human(),
                    &id,
                    BlockUpdate {
                        raw_content: Some("after".into()),
                        ..Default::default()
                    },
                )
            })
        };
        let mut admin = PgConnection::establish(&admin_url()).unwrap();
        let deadline = Instant::now() + WATCHDOG;
        while backends_waiting_on_a_lock(&mut admin, &app) == 0 {
            assert!(Instant::now() < deadline, "the write never blocked");
            std::thread::sleep(Duration::from_millis(10));
        }

        let started = Instant::now();
        let probe = Arc::clone(&store);
        let err = within(WATCHDOG, "a call on an exhausted pool", move || {
            probe.get_workspace(&ws.id).err()
        })
        .expect("the pool has no free connection");
        assert!(started.elapsed() < CONNECT_TIMEOUT + SLACK);
        assert_clear_database_error(&err, None);
        assert!(err.to_string().contains("timed out"), "{err}");

        locker.batch_execute("ROLLBACK").unwrap();
        let updated = blocked
            .join()
            .unwrap()
            .expect("the blocked write completes");
        assert_eq!(updated.raw_content, "after");
        assert_eq!(store.get_block(&blk.id).unwrap().raw_content, "after");
    }
}
