//! `AsyncStorage` on real databases, each case on SQLite and PostgreSQL:
//! the cap on calls in flight (counted inside the store by a hook), futures
//! cut at random moments, cancellation before and after a call begins,
//! panics and the busy timeout; and point reads run on the caller's thread
//! on a multi-thread runtime, under the same cap.
#![cfg(feature = "tokio")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use handshake_storage::calls::{Call, CallOutcome, Hooked, StorageHook};
use handshake_storage::conformance::{Harness, TestTarget};
use handshake_storage::*;
use tokio::task::JoinSet;

use common::{human, versioned_blocks, whole_version, Rng};

/// A gate a call can be held at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicUsize,
}

impl Gate {
    fn wait(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// What the probe saw: calls inside the store now, at most, and in all.
#[derive(Default)]
struct Seen {
    inside: AtomicUsize,
    peak: AtomicUsize,
    calls: AtomicUsize,
    gate: Gate,
    /// The thread each call ran on.
    threads: Mutex<Vec<(&'static str, std::thread::ThreadId)>>,
}

impl Seen {
    /// The threads `method`'s calls ran on.
    fn threads_of(&self, method: &str) -> Vec<std::thread::ThreadId> {
        let threads = self.threads.lock().unwrap();
        threads
            .iter()
            .filter(|(m, _)| *m == method)
            .map(|(_, t)| *t)
            .collect()
    }
}

/// A hook around a real store: counts calls inside it, can hold one
/// method's calls at a gate, and can make one method panic.
struct Probe {
    seen: Arc<Seen>,
    hold: Option<&'static str>,
    panic_on: Option<&'static str>,
}

struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl StorageHook for Probe {
    fn call<T: CallOutcome>(
        &self,
        call: &Call,
        run: impl FnOnce() -> StorageResult<T>,
    ) -> StorageResult<T> {
        let now = self.seen.inside.fetch_add(1, Ordering::SeqCst) + 1;
        let _leave = Leave(&self.seen.inside);
        self.seen.peak.fetch_max(now, Ordering::SeqCst);
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        self.seen
            .threads
            .lock()
            .unwrap()
            .push((call.method, std::thread::current().id()));
        if self.panic_on == Some(call.method) {
            panic!("injected panic in {}", call.method);
        }
        if self.hold == Some(call.method) {
            self.seen.gate.wait();
        }
        run()
    }
}

/// A fresh database and an `AsyncStorage` over a probed store on it.
struct Setup {
    _harness: Harness,
    store: AsyncStorage,
    seen: Arc<Seen>,
}

fn setup(
    target: &TestTarget,
    pool_size: u32,
    hold: Option<&'static str>,
    panic_on: Option<&'static str>,
) -> Setup {
    let harness = target.harness().expect("a fresh database");
    let config = StorageConfig::default()
        .pool_size(pool_size)
        .connection_timeout(Duration::from_secs(60));
    let inner = open_with_config(harness.url(), &config).expect("open");
    let seen = Arc::new(Seen::default());
    let probe = Probe {
        seen: Arc::clone(&seen),
        hold,
        panic_on,
    };
    let store = AsyncStorage::new(Arc::new(Hooked::new(inner, probe)), pool_size as usize);
    Setup {
        _harness: harness,
        store,
        seen,
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A document holding version `version` of `blocks` blocks (block ids are
/// global: each version is used once per database).
async fn document(store: &AsyncStorage, version: u64, blocks: usize) -> Document {
    let ws = store
        .create_workspace(&human(), NewWorkspace { name: "ws".into() })
        .await
        .unwrap();
    let doc = store
        .create_document(
            &human(),
            NewDocument {
                workspace_id: ws.id,
                title: "doc".into(),
            },
        )
        .await
        .unwrap();
    store
        .replace_blocks(
            &human(),
            &doc.id,
            versioned_blocks(&doc.id, version, blocks),
        )
        .await
        .unwrap();
    doc
}

/// Waits (bounded) until no call holds a slot: a cut call that had begun
/// runs to its end on its blocking thread.
async fn drained(store: &AsyncStorage) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.in_flight() > 0 {
        assert!(
            Instant::now() < deadline,
            "calls still in flight after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn open_caps_at_pool_size(target: TestTarget) {
    let harness = target.harness().unwrap();
    current_thread().block_on(async {
        let config = StorageConfig::default().pool_size(3);
        let store = AsyncStorage::open(harness.url(), &config).await.unwrap();
        assert_eq!(store.max_in_flight(), 3);
        assert_eq!(store.backend(), harness.backend());
        store.ping().await.unwrap();
        let memory = AsyncStorage::open("sqlite::memory:", &config).await;
        if let Ok(memory) = memory {
            assert_eq!(
                memory.max_in_flight(),
                1,
                "an in-memory database has one connection"
            );
        }
    });
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn burst_of_500_on_a_pool_of_2(target: TestTarget) {
    burst_of_500(target, current_thread());
}

/// Point reads (one call in four) run inline where a slot is free, the
/// rest on the blocking pool: the cap counts both.
fn burst_of_500_on_a_pool_of_2_multi_thread(target: TestTarget) {
    burst_of_500(target, multi_thread());
}

fn burst_of_500(target: TestTarget, runtime: tokio::runtime::Runtime) {
    let s = setup(&target, 2, None, None);
    runtime.block_on(async {
        let doc = document(&s.store, 0, 3).await;
        let blocks = s.store.get_blocks(&doc.id).await.unwrap();
        let mut calls = JoinSet::new();
        for k in 0..500usize {
            let store = s.store.clone();
            let (doc_id, block_id) = (doc.id.clone(), blocks[k % 3].id.clone());
            calls.spawn(async move {
                match k % 4 {
                    0 => store.get_block(&block_id).await.map(|_| ()),
                    1 => store.get_blocks(&doc_id).await.map(|_| ()),
                    2 => store
                        .update_block(
                            &human(),
                            &block_id,
                            BlockUpdate {
                                raw_content: Some(format!("burst {k}")),
                                ..BlockUpdate::default()
                            },
                        )
                        .await
                        .map(|_| ()),
                    _ => store
                        .list_ai_jobs(AiJobListFilter::default())
                        .await
                        .map(|_| ()),
                }
            });
        }
        let mut finished = 0;
        while let Some(outcome) = calls.join_next().await {
            outcome
                .expect("no task panics")
                .expect("every call succeeds");
            finished += 1;
        }
        assert_eq!(finished, 500);
    });
    let peak = s.seen.peak.load(Ordering::SeqCst);
    assert_eq!(peak, 2, "calls inside the store at once (cap 2)");
    assert!(s.seen.calls.load(Ordering::SeqCst) >= 500);
    assert_eq!(s.store.in_flight(), 0);
}

fn replace_blocks_cut_at_random_moments(target: TestTarget) {
    const DOCS: usize = 8;
    const BLOCKS: usize = 12;
    let s = setup(&target, 8, None, None);
    let mut rng = Rng::from_env_or_random("replace_blocks_cut_at_random_moments");
    let (completed, cut) = current_thread().block_on(async {
        let mut docs = Vec::new();
        for k in 0..DOCS {
            docs.push(document(&s.store, 10_000 + k as u64, BLOCKS).await.id);
        }
        // How long an uncut call takes here, so that the cuts fall before,
        // during and after the call.
        let started = Instant::now();
        for (k, doc_id) in docs.iter().enumerate() {
            let blocks = versioned_blocks(doc_id, 30_000 + k as u64, BLOCKS);
            s.store
                .replace_blocks(&human(), doc_id, blocks)
                .await
                .unwrap();
        }
        let typical = started.elapsed() / DOCS as u32;
        // Eight at a time (the cap): each gets a slot soon, so the cut
        // falls anywhere in its life.
        let mut calls = JoinSet::new();
        let (mut completed, mut cut) = (0, 0);
        for version in 1..=1000u64 {
            if calls.len() == 8 {
                tally(calls.join_next().await, &mut completed, &mut cut);
            }
            let store = s.store.clone();
            let doc_id = docs[version as usize % DOCS].clone();
            let limit = typical.mul_f64(rng.below(3_000) as f64 / 1_000.0);
            calls.spawn(async move {
                let blocks = versioned_blocks(&doc_id, version, BLOCKS);
                tokio::time::timeout(limit, store.replace_blocks(&human(), &doc_id, blocks)).await
            });
        }
        while let Some(outcome) = calls.join_next().await {
            tally(Some(outcome), &mut completed, &mut cut);
        }
        drained(&s.store).await;
        for doc_id in &docs {
            let blocks = s.store.get_blocks(doc_id).await.unwrap();
            whole_version(&blocks, BLOCKS);
        }
        // The pool is healthy: 8 calls at once all succeed.
        let mut after = JoinSet::new();
        for (k, doc_id) in docs.clone().into_iter().enumerate() {
            let store = s.store.clone();
            let version = 20_000 + k as u64;
            after.spawn(async move {
                let blocks = versioned_blocks(&doc_id, version, BLOCKS);
                store.replace_blocks(&human(), &doc_id, blocks).await?;
                let read = store.get_blocks(&doc_id).await?;
                Ok::<_, StorageError>((version, read))
            });
        }
        while let Some(outcome) = after.join_next().await {
            let (version, blocks) = outcome.unwrap().expect("a call after the cuts succeeds");
            assert_eq!(whole_version(&blocks, BLOCKS), version);
        }
        (completed, cut)
    });
    eprintln!("{completed} completed, {cut} cut");
    assert!(completed > 0 && cut > 0, "{completed} completed, {cut} cut");
}

type Cuttable = Result<StorageResult<Vec<Block>>, tokio::time::error::Elapsed>;

fn tally(
    outcome: Option<Result<Cuttable, tokio::task::JoinError>>,
    completed: &mut usize,
    cut: &mut usize,
) {
    match outcome
        .expect("a call to wait for")
        .expect("no task panics")
    {
        Ok(result) => {
            result.expect("an uncut replace succeeds");
            *completed += 1;
        }
        Err(_elapsed) => *cut += 1,
    }
}

fn dropped_before_the_call_begins_does_nothing(target: TestTarget) {
    let s = setup(&target, 4, None, None);
    // One blocking thread, taken by a task of ours: the storage call gets
    // its slot, but its closure waits in the blocking pool's queue.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    runtime.block_on(async {
        let before = s.store.list_workspaces().await.unwrap().len();
        let calls_before = s.seen.calls.load(Ordering::SeqCst);
        let gate = Arc::new(Gate::default());
        let held = Arc::clone(&gate);
        let blocker = tokio::task::spawn_blocking(move || held.wait());
        while gate.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let cut = tokio::time::timeout(
            Duration::from_millis(50),
            s.store.create_workspace(
                &human(),
                NewWorkspace {
                    name: "never".into(),
                },
            ),
        )
        .await;
        assert!(cut.is_err(), "the call could not begin, so it timed out");
        gate.release();
        blocker.await.unwrap();
        drained(&s.store).await;
        assert_eq!(
            s.seen.calls.load(Ordering::SeqCst),
            calls_before,
            "the abandoned call never reached the store"
        );
        assert_eq!(s.store.list_workspaces().await.unwrap().len(), before);
    });
}

fn dropped_after_the_call_began_runs_to_its_end(target: TestTarget) {
    let s = setup(&target, 2, Some("create_workspace"), None);
    current_thread().block_on(async {
        let ctx = human();
        let call = s.store.create_workspace(
            &ctx,
            NewWorkspace {
                name: "kept".into(),
            },
        );
        let waiting = async {
            while s.seen.gate.waiting.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            _ = call => panic!("the call is held at the gate"),
            _ = waiting => {}
        }
        // The future is dropped; the call is inside the store, held.
        assert_eq!(s.store.in_flight(), 1);
        s.seen.gate.release();
        drained(&s.store).await;
        let names: Vec<_> = s
            .store
            .list_workspaces()
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(names, ["kept"], "a begun call runs to its end");
    });
}

/// On a multi-thread runtime a point read runs on the thread of the task
/// that awaits it, and with `Inline` a write does too; a list read, a
/// point read with `BlockingPool` and a point read on a current-thread
/// runtime run on blocking threads.
fn point_reads_run_on_the_callers_thread(target: TestTarget) {
    let s = setup(&target, 4, None, None);
    let (doc, block) = current_thread().block_on(async {
        let doc = document(&s.store, 0, 2).await;
        let block = s.store.get_blocks(&doc.id).await.unwrap().remove(0);
        (doc, block)
    });
    let last_thread = |method: &str| *s.seen.threads_of(method).last().expect("a call");
    // On a worker of a fresh runtime: the thread the task runs on, then
    // `call`'s outcome. (After an inline call the worker's thread may have
    // handed its core on and joined the blocking pool, where it could run
    // the next pooled call: each check starts on a fresh runtime.)
    let on_worker = |call: Box<
        dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send,
    >| {
        let runtime = multi_thread();
        let task = runtime.spawn(async move {
            let me = std::thread::current().id();
            call().await;
            me
        });
        runtime.block_on(task).unwrap()
    };

    let (store, id) = (s.store.clone(), block.id.clone());
    let me = on_worker(Box::new(move || {
        Box::pin(async move {
            assert_eq!(store.get_block(&id).await.unwrap().id, id);
        })
    }));
    assert_eq!(
        last_thread("get_block"),
        me,
        "inline on the caller's thread"
    );

    let (store, id) = (s.store.clone(), doc.id.clone());
    let me = on_worker(Box::new(move || {
        Box::pin(async move {
            store.get_blocks(&id).await.unwrap();
        })
    }));
    assert_ne!(
        last_thread("get_blocks"),
        me,
        "a list read goes to the pool"
    );

    let pooled = s.store.clone().with_dispatch(AsyncDispatch::BlockingPool);
    assert_eq!(pooled.dispatch(), AsyncDispatch::BlockingPool);
    let id = block.id.clone();
    let me = on_worker(Box::new(move || {
        Box::pin(async move {
            pooled.get_block(&id).await.unwrap();
        })
    }));
    assert_ne!(last_thread("get_block"), me, "BlockingPool: on the pool");

    let inline = s.store.clone().with_dispatch(AsyncDispatch::Inline);
    let me = on_worker(Box::new(move || {
        Box::pin(async move {
            let ws = NewWorkspace {
                name: "inline".into(),
            };
            inline.create_workspace(&human(), ws).await.unwrap();
        })
    }));
    assert_eq!(
        last_thread("create_workspace"),
        me,
        "Inline: a write on the caller's thread too"
    );

    let me = current_thread().block_on(async {
        s.store.get_block(&block.id).await.unwrap();
        std::thread::current().id()
    });
    assert_ne!(
        last_thread("get_block"),
        me,
        "a current-thread runtime cannot block in place"
    );
    assert_eq!(s.store.in_flight(), 0);
}

/// A call that queued while an inline read held the only slot runs when
/// the read ends: the read hands its slot to a new blocking thread.
fn a_call_queued_behind_an_inline_read_runs_when_it_ends(target: TestTarget) {
    let s = setup(&target, 1, Some("get_workspace"), None);
    multi_thread().block_on(async {
        let ws = s
            .store
            .create_workspace(&human(), NewWorkspace { name: "ws".into() })
            .await
            .unwrap();
        let reader = tokio::spawn({
            let (store, id) = (s.store.clone(), ws.id.clone());
            async move {
                let me = std::thread::current().id();
                (me, store.get_workspace(&id).await)
            }
        });
        while s.seen.gate.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(s.store.in_flight(), 1);
        let calls = s.seen.calls.load(Ordering::SeqCst);
        let lister = tokio::spawn({
            let store = s.store.clone();
            async move { store.list_workspaces().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!lister.is_finished(), "the list waits for the only slot");
        assert_eq!(s.seen.calls.load(Ordering::SeqCst), calls);
        s.seen.gate.release();
        let (me, read) = reader.await.unwrap();
        assert_eq!(read.unwrap().unwrap().name, "ws");
        assert_eq!(s.seen.threads_of("get_workspace"), [me]);
        assert_eq!(lister.await.unwrap().unwrap().len(), 1);
        drained(&s.store).await;
    });
    assert_eq!(s.seen.peak.load(Ordering::SeqCst), 1, "the cap of 1 held");
}

/// A point read that finds every slot taken waits in the queue like any
/// call, and times out as busy.
fn busy_store_times_out_a_point_read(target: TestTarget) {
    let s = setup(&target, 1, Some("ping"), None);
    let store = s
        .store
        .clone()
        .with_acquire_timeout(Some(Duration::from_millis(50)));
    multi_thread().block_on(async {
        let ws = store
            .create_workspace(&human(), NewWorkspace { name: "ws".into() })
            .await
            .unwrap();
        let holder = tokio::spawn({
            let store = store.clone();
            async move { store.ping().await }
        });
        while s.seen.gate.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let reader = tokio::spawn({
            let (store, id) = (store.clone(), ws.id.clone());
            async move { store.get_workspace(&id).await }
        });
        let err = reader.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database);
        assert!(err.to_string().contains("the store is busy"), "{err}");
        s.seen.gate.release();
        holder.await.unwrap().unwrap();
        assert!(store.get_workspace(&ws.id).await.unwrap().is_some());
    });
    assert_eq!(s.seen.peak.load(Ordering::SeqCst), 1);
}

/// A panic in an inline point read comes back as an error, and frees its
/// slot.
fn a_panic_in_an_inline_read_comes_back_as_an_error(target: TestTarget) {
    let s = setup(&target, 1, None, Some("get_workspace"));
    multi_thread().block_on(async {
        let outcome = tokio::spawn({
            let store = s.store.clone();
            async move { store.get_workspace("ws_missing").await }
        })
        .await
        .expect("the task does not panic");
        let err = outcome.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database);
        assert!(err.to_string().contains("get_workspace panicked"), "{err}");
        assert_eq!(s.store.in_flight(), 0, "the panicked call freed its slot");
        s.store.ping().await.expect("the store works after a panic");
    });
}

fn a_panic_comes_back_as_an_error(target: TestTarget) {
    let s = setup(&target, 2, None, Some("list_workspaces"));
    current_thread().block_on(async {
        let err = s.store.list_workspaces().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database);
        assert!(
            err.to_string().contains("list_workspaces panicked"),
            "{err}"
        );
        assert_eq!(s.store.in_flight(), 0, "the panicked call freed its slot");
        s.store.ping().await.expect("the store works after a panic");
        s.store
            .create_workspace(
                &human(),
                NewWorkspace {
                    name: "after".into(),
                },
            )
            .await
            .unwrap();
    });
}

fn busy_store_times_out_with_a_clear_error(target: TestTarget) {
    let s = setup(&target, 1, Some("ping"), None);
    let store = s
        .store
        .clone()
        .with_acquire_timeout(Some(Duration::from_millis(50)));
    current_thread().block_on(async {
        let holder = tokio::spawn({
            let store = store.clone();
            async move { store.ping().await }
        });
        while s.seen.gate.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let err = store.list_workspaces().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database);
        assert!(err.to_string().contains("the store is busy"), "{err}");
        s.seen.gate.release();
        holder.await.unwrap().unwrap();
        store.list_workspaces().await.expect("a slot is free again");
    });
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $(#[test]
            fn $case() {
                super::$case(super::TestTarget::standard("sqlite"));
            })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[test]
            fn $case() {
                super::$case(super::TestTarget::standard("postgres"));
            })*
        }
    };
}

on_both_backends!(
    open_caps_at_pool_size,
    burst_of_500_on_a_pool_of_2,
    burst_of_500_on_a_pool_of_2_multi_thread,
    point_reads_run_on_the_callers_thread,
    a_call_queued_behind_an_inline_read_runs_when_it_ends,
    busy_store_times_out_a_point_read,
    a_panic_in_an_inline_read_comes_back_as_an_error,
    replace_blocks_cut_at_random_moments,
    dropped_before_the_call_begins_does_nothing,
    dropped_after_the_call_began_runs_to_its_end,
    a_panic_comes_back_as_an_error,
    busy_store_times_out_with_a_clear_error,
);

#[cfg(feature = "sqlite")]
#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let store = AsyncStorage::new(open("sqlite::memory:").unwrap(), 1);
    let err = futures_lite_block_on(store.ping()).unwrap_err();
    assert!(err.to_string().contains("outside a tokio runtime"), "{err}");
}

/// Polls a future to completion on this thread, with no runtime around.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}
