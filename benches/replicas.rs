//! Read replicas, measured as ratios from one run: a private primary and a
//! streaming replica (apply delay 0) on loopback, started here and stopped
//! at the end; two stores on the same primary, one without replicas (the
//! baseline) and one with the replica.
//!
//! - `reads/8_threads`: 8 threads, each doing `get_block`, `get_blocks`
//!   (100 blocks) and `list_ai_jobs` (a workspace's newest 50 of 1,000
//!   jobs) in turn: primary+replica over primary only.
//! - `write/create_block`: the cost per write of read-your-writes (one
//!   statement reading the primary's WAL position after the commit).
//! - `read/get_block`: one thread, the replica caught up: what a routed
//!   read costs next to a primary read.
//! - `write_then_read`: `create_block` then `get_block`, so every read
//!   must first find the replica caught up (or go to the primary).
//!
//! `cargo bench --features postgres --bench replicas` (needs the
//! PostgreSQL server binaries, as the tests do).

#[allow(dead_code)]
#[path = "../tests/common/cluster.rs"]
mod cluster;

use std::sync::Arc;
use std::time::Duration;

use cluster::{ClusterOptions, PgCluster};
use criterion::Criterion;
use handshake_storage::bench::{self, timed, Work};
use handshake_storage::conformance::fixtures::{ordinary_block as block, workspace_job};
use handshake_storage::*;

type Op = Work<'static>;

struct Setup {
    block_id: String,
    doc_id: String,
    ws_id: String,
}

fn seed(store: &dyn Storage) -> Setup {
    let ctx = WriteContext::human(Some("bench".into()));
    let ws = store
        .create_workspace(
            &ctx,
            NewWorkspace {
                name: "bench".into(),
            },
        )
        .expect("workspace");
    let doc = store
        .create_document(
            &ctx,
            NewDocument {
                workspace_id: ws.id.clone(),
                title: "bench".into(),
            },
        )
        .expect("document");
    let blocks = store
        .replace_blocks(&ctx, &doc.id, (0..100).map(|k| block(&doc.id, k)).collect())
        .expect("blocks");
    for _ in 0..1000 {
        store.create_ai_job(workspace_job(&ws.id)).expect("job");
    }
    Setup {
        block_id: blocks[0].id.clone(),
        doc_id: doc.id,
        ws_id: ws.id,
    }
}

/// 8 threads, `rounds` rounds each of get_block, get_blocks, list_ai_jobs.
fn eight_readers(store: &Arc<dyn Storage>, setup: &Setup, rounds: u64) -> StorageResult<()> {
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(store);
            let (block_id, doc_id, ws_id) = (
                setup.block_id.clone(),
                setup.doc_id.clone(),
                setup.ws_id.clone(),
            );
            std::thread::spawn(move || -> StorageResult<()> {
                for _ in 0..rounds {
                    store.get_block(&block_id)?;
                    store.get_blocks(&doc_id)?;
                    store.list_ai_jobs(AiJobListFilter {
                        wsid: Some(ws_id.clone()),
                        limit: Some(50),
                        ..AiJobListFilter::default()
                    })?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("reader thread")?;
    }
    Ok(())
}

fn workloads(store: &Arc<dyn Storage>, setup: &Arc<Setup>) -> Vec<(&'static str, Op)> {
    let ctx = WriteContext::human(Some("bench".into()));
    let (s1, s2, s3, s4) = (
        Arc::clone(store),
        Arc::clone(store),
        Arc::clone(store),
        Arc::clone(store),
    );
    let (p1, p2, p3, p4) = (
        Arc::clone(setup),
        Arc::clone(setup),
        Arc::clone(setup),
        Arc::clone(setup),
    );
    let ctx2 = ctx.clone();
    let mut seq = 1_000;
    let mut seq2 = 1_000_000;
    vec![
        (
            "reads/8_threads_x_10_rounds",
            Box::new(move || eight_readers(&s1, &p1, 10)) as Op,
        ),
        (
            "read/get_block",
            Box::new(move || s2.get_block(&p2.block_id).map(drop)),
        ),
        (
            "write/create_block",
            Box::new(move || {
                seq += 1;
                s3.create_block(&ctx, block(&p3.doc_id, seq)).map(drop)
            }),
        ),
        (
            "write_then_read/create_block+get_block",
            Box::new(move || {
                seq2 += 1;
                let b = s4.create_block(&ctx2, block(&p4.doc_id, seq2))?;
                s4.get_block(&b.id).map(drop)
            }),
        ),
    ]
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let primary = PgCluster::start(ClusterOptions {
        replication: true,
        ..ClusterOptions::default()
    });
    let replica = PgCluster::replica_of(&primary, Duration::ZERO);
    let plain = open(&primary.url("")).expect("primary-only store");
    let routed = open_with_config(
        &primary.url(""),
        &StorageConfig::default().read_replicas(vec![replica.url("")]),
    )
    .expect("store with a replica");
    let setup = Arc::new(seed(&*plain));
    // Let the replica replay the seed, so routed reads can go there.
    std::thread::sleep(Duration::from_secs(2));

    // Each criterion sample runs the primary-only store and then the store
    // with the replica, the same number of times, so both see the same
    // machine (2 shared cores: other load comes and goes) and the ratio
    // is taken between neighbours.
    let mut lines = Vec::new();
    let plain_ops = workloads(&plain, &setup);
    let routed_ops = workloads(&routed, &setup);
    for ((name, mut base), (_, mut with_replica)) in plain_ops.into_iter().zip(routed_ops) {
        let mut group = c.benchmark_group("replicas");
        group
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(6));
        let (mut base_means, mut replica_means) = (Vec::new(), Vec::new());
        group.bench_function(format!("{name}/primary_only+primary_and_replica"), |b| {
            b.iter_custom(|iters| {
                timed(&mut base, iters, &mut base_means)
                    + timed(&mut with_replica, iters, &mut replica_means)
            })
        });
        group.finish();
        let (base, with_replica) = (
            bench::median(&mut base_means),
            bench::median(&mut replica_means),
        );
        lines.push(format!(
            "{name:40} primary only {base:>12.3?}  primary+replica {with_replica:>12.3?}  ratio {:5.2}",
            with_replica.as_secs_f64() / base.as_secs_f64().max(1e-12)
        ));
    }
    c.final_summary();
    println!("\nprimary+replica / primary-only medians (below 1: the replica helps):");
    for line in lines {
        println!("{line}");
    }
    drop((plain, routed));
    drop(replica);
    drop(primary);
}
