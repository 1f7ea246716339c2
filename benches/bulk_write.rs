//! Multi-row INSERT against binary `COPY FROM STDIN` for the rows of a bulk
//! write on PostgreSQL, to find the size from which COPY wins (the
//! backend's `COPY_FROM_ROWS`): `replace_blocks` of 10 to 10,000 blocks and
//! `update_canvas_graph` of 5+10 to 5,000+10,000 nodes and edges, each
//! through the raw-SQL baseline by one method and by the other, in one
//! transaction with the stamp and the delete, as the store writes. Timed
//! in interleaved rounds; the ratio is COPY's median over INSERT's (below
//! 1: COPY is faster). The store's own figures beside its baseline are the
//! `bulk` group of `benches/storage.rs`.
//!
//! `cargo bench --features postgres --bench bulk_write`

use std::time::Duration;

use criterion::Criterion;
use handshake_storage::bench::{Fixture, Work};
use handshake_storage::conformance::TestTarget;

#[allow(dead_code)] // each bench uses part of it
mod common;
use common::{compare, Variant};

const BLOCKS: [usize; 8] = [10, 20, 50, 100, 300, 1_000, 3_000, 10_000];
const GRAPHS: [(usize, usize); 8] = [
    (5, 10),
    (10, 20),
    (25, 50),
    (50, 100),
    (150, 300),
    (500, 1_000),
    (1_500, 3_000),
    (5_000, 10_000),
];

fn variant<'a>((label, mut work): (&'static str, Work<'a>)) -> Variant<'a> {
    let run = move |iters: u64| {
        let start = std::time::Instant::now();
        for _ in 0..iters {
            work().expect("bulk write");
        }
        start.elapsed()
    };
    (label, Box::new(run) as Box<dyn FnMut(u64) -> Duration + 'a>)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut summary = Vec::new();
    let fixture = Fixture::new(&TestTarget::standard("postgres")).expect("fixture");
    let backend = fixture.backend().to_string();
    for methods in fixture
        .bulk_methods(&BLOCKS, &GRAPHS)
        .expect("bulk write methods")
    {
        let variants = methods.variants.into_iter().map(variant).collect();
        compare(&mut c, &backend, &methods.name, 1, variants, &mut summary);
    }
    c.final_summary();
    println!("\nmedians per call, ratio to multi-row INSERT:");
    for line in summary {
        println!("{line}");
    }
}
