//! What the async facade and tracing cost, each against what a user would
//! have instead, measured side by side in one run on every enabled backend
//! (SQLite file in WAL mode; PostgreSQL from `POSTGRES_TEST_URL`, in a
//! throwaway schema):
//!
//! - `async`: point ops through `AsyncStorage` (as configured by default,
//!   and with every call on the blocking pool) against a bare
//!   `tokio::task::spawn_blocking(move || store.get_block(..))` on the same
//!   store, from a task on a worker thread;
//! - `throughput`: 64 tasks x 16 `get_block` calls at once on a pool of 8,
//!   through `AsyncStorage` (8 in flight) against bare `spawn_blocking`
//!   (64 blocking threads queueing for 8 connections);
//! - `tracing`: point ops on a traced store (feature `tracing`) with a
//!   subscriber that discards everything it is given, at INFO (the call
//!   spans) and at TRACE (spans and a DEBUG event per statement), against
//!   the same database through a store without the tracing layer.
//!
//! Each group prints the median time per call of every variant and its
//! ratio to the first, from rounds that interleave the variants. `cargo bench --features postgres,tokio,tracing
//! --bench async_storage`; `HSK_BENCH_GROUPS=async,tracing` picks groups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use handshake_storage::conformance::TestTarget;

mod common;
use common::{compare, on_worker, runtime, seed, targets, wanted};
use handshake_storage::*;
use tracing_subscriber::layer::SubscriberExt;

fn update(k: u64) -> BlockUpdate {
    BlockUpdate {
        raw_content: Some(format!("update {k}")),
        ..BlockUpdate::default()
    }
}

/// `AsyncStorage` against bare `spawn_blocking`, one call at a time, from
/// a task on a worker thread: the facade as configured by default (point
/// reads inline), and with every call on the blocking pool.
fn async_point(c: &mut Criterion, target: &TestTarget, summary: &mut Vec<String>) {
    let harness = target.harness().expect("a fresh database");
    let backend = target.backend().to_string();
    let store = harness.shared_store();
    let (_, ids) = seed(&*store, 64);
    let facade = AsyncStorage::new(Arc::clone(&store), 8);
    let rt = runtime();
    let ctx = WriteContext::human(Some("bench".into()));
    for op in ["get_block", "update_block"] {
        let bare = {
            let (store, ids, ctx) = (Arc::clone(&store), ids.clone(), ctx.clone());
            let rt = &rt;
            Box::new(move |iters: u64| {
                let (store, ids, ctx) = (Arc::clone(&store), ids.clone(), ctx.clone());
                on_worker(rt, async move {
                    let start = Instant::now();
                    for k in 0..iters {
                        let (store, id, ctx) = (
                            Arc::clone(&store),
                            ids[k as usize % ids.len()].clone(),
                            ctx.clone(),
                        );
                        if op == "get_block" {
                            tokio::task::spawn_blocking(move || store.get_block(&id))
                                .await
                                .unwrap()
                                .unwrap();
                        } else {
                            tokio::task::spawn_blocking(move || {
                                store.update_block(&ctx, &id, update(k))
                            })
                            .await
                            .unwrap()
                            .unwrap();
                        }
                    }
                    start.elapsed()
                })
            }) as Box<dyn FnMut(u64) -> Duration + '_>
        };
        let through = |facade: AsyncStorage| {
            let (ids, ctx) = (ids.clone(), ctx.clone());
            let rt = &rt;
            Box::new(move |iters: u64| {
                let (facade, ids, ctx) = (facade.clone(), ids.clone(), ctx.clone());
                on_worker(rt, async move {
                    let start = Instant::now();
                    for k in 0..iters {
                        let id = &ids[k as usize % ids.len()];
                        if op == "get_block" {
                            facade.get_block(id).await.unwrap();
                        } else {
                            facade.update_block(&ctx, id, update(k)).await.unwrap();
                        }
                    }
                    start.elapsed()
                })
            }) as Box<dyn FnMut(u64) -> Duration + '_>
        };
        compare(
            c,
            &backend,
            &format!("async/{op}"),
            1,
            vec![
                ("bare_spawn_blocking", bare),
                ("async_storage", through(facade.clone())),
                (
                    "async_storage_pool",
                    through(facade.clone().with_dispatch(AsyncDispatch::BlockingPool)),
                ),
            ],
            summary,
        );
    }
}

/// 64 tasks x 16 `get_block` calls at once on a pool of 8.
fn throughput(c: &mut Criterion, target: &TestTarget, summary: &mut Vec<String>) {
    const TASKS: u64 = 64;
    const CALLS: u64 = 16;
    let harness = target.harness().expect("a fresh database");
    let backend = target.backend().to_string();
    let config = StorageConfig::default().pool_size(8);
    let store = open_with_config(harness.url(), &config).expect("open");
    let ids = Arc::new(seed(&*store, 64).1);
    let facade = AsyncStorage::new(Arc::clone(&store), 8);
    let rt = runtime();
    let round = |facade: Option<AsyncStorage>| {
        let (store, ids) = (Arc::clone(&store), Arc::clone(&ids));
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..TASKS {
                let (store, ids, facade) = (Arc::clone(&store), Arc::clone(&ids), facade.clone());
                tasks.spawn(async move {
                    for k in 0..CALLS {
                        let id = ids[((t * CALLS + k) % ids.len() as u64) as usize].clone();
                        match &facade {
                            Some(facade) => facade.get_block(&id).await.map(|_| ()),
                            None => {
                                let store = Arc::clone(&store);
                                tokio::task::spawn_blocking(move || {
                                    store.get_block(&id).map(|_| ())
                                })
                                .await
                                .unwrap()
                            }
                        }
                        .unwrap();
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        }
    };
    let timed = |facade: Option<AsyncStorage>| {
        let rt = &rt;
        let round = &round;
        Box::new(move |iters: u64| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(round(facade.clone()));
            }
            start.elapsed()
        }) as Box<dyn FnMut(u64) -> Duration + '_>
    };
    compare(
        c,
        &backend,
        "throughput/64_tasks_pool_8",
        TASKS * CALLS,
        vec![
            ("bare_spawn_blocking", timed(None)),
            ("async_storage", timed(Some(facade.clone()))),
            (
                "async_storage_pool",
                timed(Some(facade.with_dispatch(AsyncDispatch::BlockingPool))),
            ),
        ],
        summary,
    );
}

/// A traced store with a discarding subscriber against an untraced store
/// on the same database.
fn tracing_cost(c: &mut Criterion, target: &TestTarget, summary: &mut Vec<String>) {
    let harness = target.harness().expect("a fresh database");
    let backend = target.backend().to_string();
    // One store, one pool: the traced variant is the same store behind the
    // tracing layer (two pools would put the sides on different server
    // processes, whose scheduling alone differs by more than the layer).
    let untraced = harness.shared_store();
    let traced = handshake_storage::tracing_layer::trace(
        Arc::clone(&untraced),
        harness.url(),
        &StorageConfig::default(),
    )
    .expect("a traced store");
    let (_, ids) = seed(&*untraced, 64);
    let ctx = WriteContext::human(Some("bench".into()));
    for op in ["get_block", "update_block"] {
        let calls = |store: Arc<dyn Storage>, level: Option<tracing::Level>| {
            let (ids, ctx) = (ids.clone(), ctx.clone());
            Box::new(move |iters: u64| {
                let run = || {
                    let start = Instant::now();
                    for k in 0..iters {
                        let id = &ids[k as usize % ids.len()];
                        if op == "get_block" {
                            store.get_block(id).unwrap();
                        } else {
                            store.update_block(&ctx, id, update(k)).unwrap();
                        }
                    }
                    start.elapsed()
                };
                match level {
                    None => run(),
                    Some(level) => {
                        let discard = tracing_subscriber::registry()
                            .with(tracing_subscriber::filter::LevelFilter::from_level(level));
                        tracing::subscriber::with_default(discard, run)
                    }
                }
            }) as Box<dyn FnMut(u64) -> Duration>
        };
        compare(
            c,
            &backend,
            &format!("tracing/{op}"),
            1,
            vec![
                ("no_tracing_layer", calls(Arc::clone(&untraced), None)),
                ("traced_no_subscriber", calls(Arc::clone(&traced), None)),
                (
                    "traced_discard_info",
                    calls(Arc::clone(&traced), Some(tracing::Level::INFO)),
                ),
                (
                    "traced_discard_trace",
                    calls(Arc::clone(&traced), Some(tracing::Level::TRACE)),
                ),
            ],
            summary,
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut summary = Vec::new();
    for target in targets() {
        if wanted("async") {
            async_point(&mut c, &target, &mut summary);
        }
        if wanted("throughput") {
            throughput(&mut c, &target, &mut summary);
        }
        if wanted("tracing") {
            tracing_cost(&mut c, &target, &mut summary);
        }
    }
    c.final_summary();
    println!("\nsummary (median per call, ratio to the first variant of each group):");
    for line in summary {
        println!("{line}");
    }
}
