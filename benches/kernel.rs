//! The kernel ledger and session queue on every enabled backend, store
//! against its raw-SQL baseline (the same statements by hand,
//! `backend/baseline.rs`): one append; claim-next and complete at 1, 4 and
//! 8 workers; a tail of 10^5 events read 1,000 a page. Each is timed again
//! in interleaved rounds after its criterion group (`common::compare`), and
//! the summary gives the median per operation (per event, per run, per
//! append), operations per second, and the ratio to the baseline.
//!
//! Then what the no-skip numbering costs appenders: 1, 4 and 8 threads
//! appending at once, raw SQL into a table keyed by a plain sequence
//! against raw SQL doing the store's statements (ledger lock, largest
//! sequence) and against the store, timed in interleaved rounds; ratios
//! to the plain sequence (`Fixture::kernel_append_sequences`).
//!
//! `cargo bench --bench kernel --features bench,postgres` runs both
//! backends (PostgreSQL from `POSTGRES_TEST_URL`, in a throwaway schema).

use std::time::Duration;

use criterion::Criterion;
use handshake_storage::bench::{self, Fixture};

#[allow(dead_code)] // each bench uses part of it
mod common;
use common::{compare, targets, Variant};

const WORKERS: [usize; 3] = [1, 4, 8];
/// Runs each worker takes through the queue per call.
const ROUNDS: usize = 10;
const TAIL_EVENTS: usize = 100_000;
const APPENDERS: [usize; 3] = [1, 4, 8];
/// Events each appender appends per call.
const APPENDS: usize = 10;

fn variant<'a>((label, mut work): (&'static str, bench::Work<'a>)) -> Variant<'a> {
    let run = move |iters: u64| {
        let start = std::time::Instant::now();
        for _ in 0..iters {
            work().expect("kernel workload");
        }
        start.elapsed()
    };
    (label, Box::new(run) as Box<dyn FnMut(u64) -> Duration + 'a>)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut summary = Vec::new();
    for target in targets() {
        let backend = target.backend().to_string();
        let fixture = Fixture::new(&target).expect("a fresh pair of databases");
        let workloads = fixture
            .kernel(&WORKERS, ROUNDS, TAIL_EVENTS)
            .expect("the kernel workloads");
        for w in workloads {
            // Interleaved rounds (`common::compare`): on a shared machine
            // whose load drifts, both sides see the same load.
            let name = format!("kernel/{}", w.name);
            let variants = vec![
                variant(("baseline", w.baseline)),
                variant(("store", w.store)),
            ];
            compare(&mut c, &backend, &name, w.ops, variants, &mut summary);
        }
        for methods in fixture
            .kernel_append_sequences(&APPENDERS, APPENDS)
            .expect("the append workloads")
        {
            let threads = methods
                .name
                .trim_start_matches("append/")
                .trim_end_matches("_appenders")
                .parse::<u64>()
                .expect("appenders");
            let variants = methods.variants.into_iter().map(variant).collect();
            let name = format!("kernel/{}", methods.name);
            compare(
                &mut c,
                &backend,
                &name,
                threads * APPENDS as u64,
                variants,
                &mut summary,
            );
        }
    }
    println!("\nkernel, median per operation (ratio to baseline; in kernel/append/*, to plain_sequence):");
    for line in summary {
        println!("{line}");
    }
    c.final_summary();
}
