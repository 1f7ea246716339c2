//! What the async facade and tracing cost, each against what a user would
//! have instead, measured side by side in one run on every enabled backend
//! (SQLite file in WAL mode; PostgreSQL from `POSTGRES_TEST_URL`, in a
//! throwaway schema):
//!
//! - `async`: point ops through `AsyncStorage` against a bare
//!   `tokio::task::spawn_blocking(move || store.get_block(..))` on the same
//!   store;
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
use handshake_storage::bench;
use handshake_storage::conformance::TestTarget;
use handshake_storage::*;
use tracing_subscriber::layer::SubscriberExt;

fn targets() -> Vec<TestTarget> {
    [
        #[cfg(feature = "sqlite")]
        "sqlite",
        #[cfg(feature = "postgres")]
        "postgres",
    ]
    .into_iter()
    .map(TestTarget::standard)
    .collect()
}

fn wanted(group: &str) -> bool {
    match std::env::var("HSK_BENCH_GROUPS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|g| g.trim() == group),
        _ => true,
    }
}

/// A variant: runs `iters` calls (or rounds) and returns the time taken.
type Variant<'a> = (&'static str, Box<dyn FnMut(u64) -> Duration + 'a>);

/// One criterion group, then the ratios: the variants are timed again in
/// interleaved rounds (A B C, B C A, ...), batches of about 20 ms each, so
/// that a machine whose load drifts during the run (a shared CI box) slows
/// every variant alike; prints each variant's median per call and its
/// ratio to the first variant's.
fn compare(
    c: &mut Criterion,
    backend: &str,
    name: &str,
    calls_per_iter: u64,
    mut variants: Vec<Variant<'_>>,
    summary: &mut Vec<String>,
) {
    const ROUNDS: usize = 31;
    let mut group = c.benchmark_group(name.to_string());
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let mut batch = u64::MAX;
    for (label, run) in variants.iter_mut() {
        let mut means = Vec::new();
        group.bench_function(format!("{label}/{backend}"), |b| {
            b.iter_custom(|iters| {
                let elapsed = run(iters);
                means.push(elapsed / iters.max(1) as u32);
                elapsed
            })
        });
        let per_iter = bench::median(&mut means).max(Duration::from_nanos(1));
        batch = batch.min((Duration::from_millis(20).as_nanos() / per_iter.as_nanos()) as u64);
    }
    group.finish();
    let batch = batch.max(1);
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for round in 0..ROUNDS {
        for k in 0..variants.len() {
            let v = (round + k) % variants.len();
            let elapsed = (variants[v].1)(batch);
            times[v].push(elapsed / (batch * calls_per_iter) as u32);
        }
    }
    let medians: Vec<Duration> = times.iter_mut().map(|t| bench::median(t)).collect();
    let first = medians[0].as_secs_f64().max(1e-12);
    for ((label, _), median) in variants.iter().zip(medians) {
        let line = format!(
            "{backend:8} {name:28} {label:22} {median:>11.3?} per call  ratio {:5.2}",
            median.as_secs_f64() / first
        );
        println!("{line}");
        summary.push(line);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A document with `blocks` blocks on `store`; returns the block ids.
fn seed(store: &dyn Storage, blocks: usize) -> Vec<String> {
    let ctx = WriteContext::human(Some("bench".into()));
    let ws = store
        .create_workspace(
            &ctx,
            NewWorkspace {
                name: "bench".into(),
            },
        )
        .unwrap();
    let doc = store
        .create_document(
            &ctx,
            NewDocument {
                workspace_id: ws.id,
                title: "bench".into(),
            },
        )
        .unwrap();
    let blocks = (0..blocks as i64)
        .map(|k| bench::block(&doc.id, k))
        .collect();
    store
        .replace_blocks(&ctx, &doc.id, blocks)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect()
}

fn update(k: u64) -> BlockUpdate {
    BlockUpdate {
        raw_content: Some(format!("update {k}")),
        ..BlockUpdate::default()
    }
}

/// `AsyncStorage` against bare `spawn_blocking`, one call at a time.
fn async_point(c: &mut Criterion, target: &TestTarget, summary: &mut Vec<String>) {
    let harness = target.harness().expect("a fresh database");
    let backend = target.backend().to_string();
    let store = harness.shared_store();
    let ids = seed(&*store, 64);
    let facade = AsyncStorage::new(Arc::clone(&store), 8);
    let rt = runtime();
    let ctx = WriteContext::human(Some("bench".into()));
    for op in ["get_block", "update_block"] {
        let bare = {
            let (store, ids, ctx) = (Arc::clone(&store), ids.clone(), ctx.clone());
            let rt = &rt;
            Box::new(move |iters: u64| {
                rt.block_on(async {
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
        let through = {
            let (facade, ids, ctx) = (facade.clone(), ids.clone(), ctx.clone());
            let rt = &rt;
            Box::new(move |iters: u64| {
                rt.block_on(async {
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
            vec![("bare_spawn_blocking", bare), ("async_storage", through)],
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
    let ids = Arc::new(seed(&*store, 64));
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
            ("async_storage", timed(Some(facade))),
        ],
        summary,
    );
}

/// A traced store with a discarding subscriber against an untraced store
/// on the same database.
fn tracing_cost(c: &mut Criterion, target: &TestTarget, summary: &mut Vec<String>) {
    let harness = target.harness().expect("a fresh database");
    let backend = target.backend().to_string();
    let untraced = harness.shared_store();
    let traced = harness.reopen().expect("a traced store");
    let ids = seed(&*untraced, 64);
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
