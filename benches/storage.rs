//! Every workload of `handshake_storage::bench` on every enabled backend
//! (SQLite file in WAL mode; PostgreSQL from `POSTGRES_TEST_URL`, in a
//! throwaway schema), each as a criterion group with the store and its
//! raw-SQL baseline side by side. After each group it prints the
//! store/baseline ratio of the medians; at the end, the peak heap of
//! `get_blocks` on 100,000 blocks against the size of what it returns.
//!
//! `cargo bench --features postgres` runs both backends;
//! `HSK_BENCH_GROUPS=point,bulk` picks groups (point, bulk, scale,
//! concurrency, memory, ids, durability). `durability` (SQLite only) runs
//! the same writes under `synchronous = NORMAL` and `FULL`.

use std::time::{Duration, Instant};

use criterion::Criterion;
use handshake_storage::bench::{self, timed, Fixture, Sizes, Workload};
use handshake_storage::conformance::{fixtures, TestTarget};
use handshake_storage::{NewDocument, NewWorkspace, SqliteSynchronous, Storage};

#[allow(dead_code)] // each bench uses part of it
mod common;
use common::{compare, targets, wanted, Variant};

// The memory figure needs every allocation counted.
#[global_allocator]
static ALLOCATOR: bench::CountingAllocator = bench::CountingAllocator;

/// One criterion group per workload: `store/<backend>` beside
/// `baseline/<backend>`.
fn run_group(
    c: &mut Criterion,
    backend: &str,
    workloads: Vec<Workload<'_>>,
    samples: usize,
    measurement: Duration,
    summary: &mut Vec<String>,
) -> Vec<(String, Duration, Duration)> {
    let mut medians = Vec::new();
    for mut w in workloads {
        let mut group = c.benchmark_group(format!("{}/{}", w.group, w.name));
        group
            .sample_size(samples)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(measurement);
        let (mut store_means, mut base_means) = (Vec::new(), Vec::new());
        group.bench_function(format!("store/{backend}"), |b| {
            b.iter_custom(|iters| timed(&mut w.store, iters, &mut store_means))
        });
        group.bench_function(format!("baseline/{backend}"), |b| {
            b.iter_custom(|iters| timed(&mut w.baseline, iters, &mut base_means))
        });
        group.finish();
        let (store, base) = (
            bench::median(&mut store_means),
            bench::median(&mut base_means),
        );
        let line = format!(
            "{backend:8} {:12} {:40} store {:>12.3?}  baseline {:>12.3?}  ratio {:5.2}",
            w.group,
            w.name,
            store,
            base,
            store.as_secs_f64() / base.as_secs_f64().max(1e-12)
        );
        println!("{line}");
        summary.push(line);
        medians.push((w.name.clone(), store, base));
    }
    medians
}

/// Peak heap while `get_blocks` reads 100,000 blocks, against the heap
/// size of the `Vec<Block>` it returns.
fn memory(target: &TestTarget, summary: &mut Vec<String>) {
    const BLOCKS: usize = 100_000;
    let harness = target.harness().expect("a fresh database");
    let figure = bench::get_blocks_memory(harness.store(), BLOCKS).expect("memory figure");
    let line = format!(
        "{:8} {:12} {:40} peak heap {:.1} MiB, returned data {:.1} MiB, ratio {:.2}",
        harness.store().backend().to_string(),
        "memory",
        format!("get_blocks/{BLOCKS}"),
        figure.peak as f64 / 1048576.0,
        figure.data as f64 / 1048576.0,
        figure.ratio()
    );
    println!("{line}");
    summary.push(line);
}

/// UUID v7 against v4 as job ids over 10^6 seeded jobs: the bulk insert
/// of the seed, one `create_ai_job` on top (ratio v7/v4), and the size of
/// the primary-key index.
fn ids(c: &mut Criterion, target: &TestTarget, summary: &mut Vec<String>) {
    const ROWS: usize = 1_000_000;
    let versions = bench::IdVersions::seed(target, ROWS).expect("seed v7 and v4 jobs");
    let backend = versions.backend().to_string();
    let (bulk_v7, bulk_v4) = versions.bulk;
    let line = format!(
        "{backend:8} {:12} {:40} v7 {:>12.3?}  v4 {:>12.3?}  ratio {:5.2}",
        "ids",
        format!("bulk_insert/{ROWS}"),
        bulk_v7,
        bulk_v4,
        bulk_v7.as_secs_f64() / bulk_v4.as_secs_f64().max(1e-12)
    );
    println!("{line}");
    summary.push(line);
    // One v7 and one v4 insert in turn, each timed on its own, so both
    // see the same load on a shared machine (store = v7, baseline = v4).
    let mut w = versions.create_ai_job();
    let (mut v7_means, mut v4_means) = (Vec::new(), Vec::new());
    let mut group = c.benchmark_group(format!("{}/{}", w.group, w.name));
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(6));
    group.bench_function(format!("v7_and_v4_in_turn/{backend}"), |b| {
        b.iter_custom(|iters| {
            let (mut v7, mut v4) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..iters {
                let start = Instant::now();
                (w.store)().expect("v7 insert");
                v7 += start.elapsed();
                let start = Instant::now();
                (w.baseline)().expect("v4 insert");
                v4 += start.elapsed();
            }
            v7_means.push(v7 / iters.max(1) as u32);
            v4_means.push(v4 / iters.max(1) as u32);
            v7 + v4
        })
    });
    group.finish();
    let (v7, v4) = (bench::median(&mut v7_means), bench::median(&mut v4_means));
    let line = format!(
        "{backend:8} {:12} {:40} v7 {:>12.3?}  v4 {:>12.3?}  ratio {:5.2}",
        "ids",
        format!("create_ai_job/{ROWS}"),
        v7,
        v4,
        v7.as_secs_f64() / v4.as_secs_f64().max(1e-12)
    );
    println!("{line}");
    summary.push(line);
    let (pkey_v7, pkey_v4) = versions.pkey_bytes().expect("index sizes");
    let line = format!(
        "{backend:8} {:12} {:40} v7 {:.1} MiB  v4 {:.1} MiB  ratio {:5.2}",
        "ids",
        format!("ai_jobs_pkey_size/{ROWS}"),
        pkey_v7 as f64 / 1048576.0,
        pkey_v4 as f64 / 1048576.0,
        pkey_v7 as f64 / (pkey_v4 as f64).max(1.0)
    );
    println!("{line}");
    summary.push(line);
}

/// Blocks per `replace_blocks` call in the `durability` group.
const DURABILITY_BLOCKS: usize = 1_000;

/// One variant per setting: `work(store, workspace, document, seq)` on
/// that setting's store, with `seq` counting up.
fn durability_variants<'a>(
    settings: &[SqliteSynchronous],
    sides: &'a [(&'a dyn Storage, String, String)],
    work: &'a dyn Fn(&dyn Storage, &str, &str, u64),
) -> Vec<Variant<'a>> {
    settings
        .iter()
        .zip(sides)
        .map(|(&s, (store, ws, doc))| {
            let mut seq = 0;
            let run = move |iters: u64| {
                let start = Instant::now();
                for _ in 0..iters {
                    seq += 1;
                    work(*store, ws, doc, seq);
                }
                start.elapsed()
            };
            let label = match s {
                SqliteSynchronous::Normal => "synchronous=NORMAL",
                SqliteSynchronous::Full => "synchronous=FULL",
                SqliteSynchronous::Extra => "synchronous=EXTRA",
            };
            (label, Box::new(run) as Box<dyn FnMut(u64) -> Duration + 'a>)
        })
        .collect()
}

/// SQLite writes under `synchronous = NORMAL` and `FULL` (each on its own
/// fresh file), timed in interleaved rounds: `create_block`,
/// `create_ai_job` and `replace_blocks` of 1,000 blocks, each printed with
/// the ratio FULL / NORMAL.
fn durability(c: &mut Criterion, target: &TestTarget, summary: &mut Vec<String>) {
    let ctx = fixtures::human();
    let settings = [SqliteSynchronous::Normal, SqliteSynchronous::Full];
    let harnesses: Vec<_> = settings
        .iter()
        .map(|&s| {
            target
                .harness_with(|config| config.sqlite_synchronous(s))
                .expect("a fresh database")
        })
        .collect();
    // Per setting: its store, workspace and document.
    let sides: Vec<(&dyn Storage, String, String)> = harnesses
        .iter()
        .map(|h| {
            let store = h.store();
            let workspace_id = store
                .create_workspace(
                    &ctx,
                    NewWorkspace {
                        name: "bench".into(),
                    },
                )
                .expect("workspace")
                .id;
            let document_id = store
                .create_document(
                    &ctx,
                    NewDocument {
                        workspace_id: workspace_id.clone(),
                        title: "bench".into(),
                    },
                )
                .expect("document")
                .id;
            (store, workspace_id, document_id)
        })
        .collect();
    let variants = |work| durability_variants(&settings, &sides, work);
    let backend = target.backend().to_string();
    let create_block = |store: &dyn Storage, _: &str, doc: &str, seq: u64| {
        store
            .create_block(&ctx, fixtures::ordinary_block(doc, seq as i64))
            .expect("create_block");
    };
    compare(
        c,
        &backend,
        "durability/create_block",
        1,
        variants(&create_block),
        summary,
    );
    let create_ai_job = |store: &dyn Storage, ws: &str, _: &str, _: u64| {
        store
            .create_ai_job(fixtures::workspace_job(ws))
            .expect("create_ai_job");
    };
    compare(
        c,
        &backend,
        "durability/create_ai_job",
        1,
        variants(&create_ai_job),
        summary,
    );
    let replace = |store: &dyn Storage, _: &str, doc: &str, _: u64| {
        let blocks = (0..DURABILITY_BLOCKS as i64)
            .map(|k| fixtures::ordinary_block(doc, k))
            .collect();
        store
            .replace_blocks(&ctx, doc, blocks)
            .expect("replace_blocks");
    };
    compare(
        c,
        &backend,
        &format!("durability/replace_blocks/{DURABILITY_BLOCKS}"),
        1,
        variants(&replace),
        summary,
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let sizes = Sizes::full();
    let mut summary = Vec::new();
    for target in targets() {
        let backend = target.backend().to_string();
        let mut create_block = None;
        if wanted("point") {
            let fixture = Fixture::new(&target).expect("fixture");
            let workloads = fixture.point().expect("point workloads");
            let medians = run_group(
                &mut c,
                &backend,
                workloads,
                30,
                Duration::from_secs(2),
                &mut summary,
            );
            create_block = medians.iter().find(|m| m.0 == "create_block").map(|m| m.1);
        }
        if wanted("bulk") {
            let fixture = Fixture::new(&target).expect("fixture");
            let workloads = fixture.bulk(&sizes).expect("bulk workloads");
            let medians = run_group(
                &mut c,
                &backend,
                workloads,
                10,
                Duration::from_secs(3),
                &mut summary,
            );
            let replace = format!("replace_blocks/{}", sizes.blocks);
            let replace = medians.iter().find(|m| m.0 == replace).map(|m| m.1);
            if let (Some(create), Some(replace)) = (create_block, replace) {
                summary.push(format!(
                    "{backend:8} one replace_blocks of {n} is {:.0}x faster than {n} create_block calls",
                    create.as_secs_f64() * sizes.blocks as f64 / replace.as_secs_f64(),
                    n = sizes.blocks
                ));
            }
        }
        if wanted("scale") {
            for &jobs in &sizes.jobs {
                let fixture = Fixture::new(&target).expect("fixture");
                let workloads = fixture.scale(jobs).expect("scale workloads");
                run_group(
                    &mut c,
                    &backend,
                    workloads,
                    20,
                    Duration::from_secs(2),
                    &mut summary,
                );
            }
        }
        if wanted("concurrency") {
            let fixture = Fixture::new(&target).expect("fixture");
            let workloads = fixture.concurrency(&sizes).expect("concurrency workloads");
            run_group(
                &mut c,
                &backend,
                workloads,
                10,
                Duration::from_secs(3),
                &mut summary,
            );
        }
        if wanted("memory") {
            memory(&target, &mut summary);
        }
        // SQLite only: PostgreSQL's durability is the server's setting.
        if wanted("durability") && target.backend() == handshake_storage::Backend::Sqlite {
            durability(&mut c, &target, &mut summary);
        }
        // PostgreSQL only: Handshake's control plane runs there.
        if wanted("ids") && target.backend() == handshake_storage::Backend::Postgres {
            ids(&mut c, &target, &mut summary);
        }
    }
    c.final_summary();
    println!("\nstore/baseline medians:");
    for line in summary {
        println!("{line}");
    }
}
