//! Shared by the benches (`benches/*.rs` and `bench-sqlx/`): the backends
//! to run, the groups picked by `HSK_BENCH_GROUPS`, and variants compared
//! side by side in one run.

use std::time::Duration;

use criterion::Criterion;
use handshake_storage::bench;
use handshake_storage::conformance::{fixtures, TestTarget};
use handshake_storage::*;

pub fn targets() -> Vec<TestTarget> {
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

pub fn wanted(group: &str) -> bool {
    match std::env::var("HSK_BENCH_GROUPS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|g| g.trim() == group),
        _ => true,
    }
}

/// A variant: runs `iters` calls (or rounds) and returns the time taken.
pub type Variant<'a> = (&'static str, Box<dyn FnMut(u64) -> Duration + 'a>);

/// One criterion group, then the ratios: the variants are timed again in
/// interleaved rounds (A B C, B C A, ...), batches of about 20 ms each, so
/// that a machine whose load drifts during the run (a shared CI box) slows
/// every variant alike; prints each variant's median per call and its
/// ratio to the first variant's.
pub fn compare(
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
        if means.is_empty() {
            // Filtered out (`cargo bench -- <filter>`): no figure to
            // compare, and no batch size to time the rounds with.
            group.finish();
            return;
        }
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
            "{backend:8} {name:28} {label:22} {median:>11.3?} per call {:>10.0}/s  ratio {:5.2}",
            1.0 / median.as_secs_f64().max(1e-12),
            median.as_secs_f64() / first
        );
        println!("{line}");
        summary.push(line);
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `future` as a task on one of `rt`'s worker threads, as a
/// service's request handler runs, and waits for it. (`block_on` alone
/// would poll it on this thread, which owns no worker: there
/// `block_in_place` costs nothing and an I/O wake-up always crosses
/// threads, so neither side would be measured as a service runs it.)
pub fn on_worker<F>(rt: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(rt.spawn(future)).expect("the bench task")
}

/// A document with `blocks` blocks on `store`: its id and the block ids.
pub fn seed(store: &dyn Storage, blocks: usize) -> (String, Vec<String>) {
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
        .map(|k| fixtures::ordinary_block(&doc.id, k))
        .collect();
    let ids = store
        .replace_blocks(&ctx, &doc.id, blocks)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    (doc.id, ids)
}
