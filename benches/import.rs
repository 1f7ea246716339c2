//! Bench group `import`: `import_handshake` of a legacy SQLite file
//! (Handshake's own schema) of `N` jobs, each with one workflow run and one
//! node execution, and `N` blocks (default N = 10^5), into PostgreSQL and
//! into SQLite; rows/s, and the ratio to `copy_store` of the same rows in
//! the same run (from a store of ours holding exactly what the import
//! wrote, into the same backend; goal: at most 1.3); and the peak heap of
//! an import at N/10 and at N (bounded by the pages in flight, not by the
//! source's size: the two should be about equal).
//!
//! `cargo bench --features postgres --bench import`; smaller runs with
//! `HSK_IMPORT_BENCH_ROWS`; `HSK_IMPORT_BENCH_SOURCE=postgres` reads the
//! legacy database from PostgreSQL instead (copy_store still reads a
//! SQLite store of ours).

use std::time::Instant;

use handshake_storage::bench;
use handshake_storage::conformance::TestTarget;
use handshake_storage::copy::{copy_store, CopyOptions};
use handshake_storage::import::fixture::{fill_bulk, LegacyBuild, LegacyDatabase};
use handshake_storage::import::{import_handshake, ImportOptions};
use handshake_storage::*;

#[global_allocator]
static ALLOCATOR: bench::CountingAllocator = bench::CountingAllocator;

/// The legacy source: a SQLite file, or (`HSK_IMPORT_BENCH_SOURCE=postgres`)
/// a PostgreSQL schema.
fn legacy_file(n: usize) -> StorageResult<LegacyDatabase> {
    let on = match std::env::var("HSK_IMPORT_BENCH_SOURCE").as_deref() {
        Ok("postgres") => TestTarget::standard("postgres"),
        _ => TestTarget::Sqlite { parent: None },
    };
    let db = LegacyDatabase::create(&on, LegacyBuild::default())?;
    fill_bulk(&db, n, n)?;
    Ok(db)
}

/// Peak heap of `run` (an import or a copy into a fresh store on
/// `target`, whose URL it is given).
fn peak_heap(
    target: &TestTarget,
    run: impl FnOnce(&str) -> StorageResult<()>,
) -> StorageResult<usize> {
    let into = target.harness()?;
    bench::count_heap(true);
    let mark = bench::heap_mark();
    run(into.url())?;
    let peak = bench::heap_peak_since(mark);
    bench::count_heap(false);
    Ok(peak)
}

fn main() -> StorageResult<()> {
    let n: usize = std::env::var("HSK_IMPORT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    bench::count_heap(false);
    let started = Instant::now();
    let source = legacy_file(n)?;
    println!(
        "import: legacy {} database of {n} jobs (+ {n} runs, {n} node executions) and {n} \
         blocks, seeded in {:.0} s",
        source.backend(),
        started.elapsed().as_secs_f64()
    );
    let targets = [
        ("postgres", TestTarget::standard("postgres")),
        ("sqlite", TestTarget::Sqlite { parent: None }),
    ];
    // A store of ours with exactly the imported rows: copy_store's source.
    let ours = TestTarget::Sqlite { parent: None }.harness()?;
    import_handshake(source.url(), ours.url(), &ImportOptions::default())?;
    for (name, target) in &targets {
        let into = target.harness()?;
        let report = import_handshake(source.url(), into.url(), &ImportOptions::default())?;
        drop(into);
        assert!(report.verified());
        let into = target.harness()?;
        let copy = copy_store(ours.url(), into.url(), &CopyOptions::default())?;
        drop(into);
        assert_eq!(copy.rows, report.copy.rows, "the same rows");
        println!(
            "import/{n}/{}_to_{name}: {} rows in {:.2} s = {:.0} rows/s (verification \
             included); copy_store of the same rows {:.2} s = {:.0} rows/s; import / copy = {:.2}",
            source.backend(),
            report.copy.rows,
            report.copy.seconds,
            report.copy.rows_per_sec,
            copy.seconds,
            copy.rows_per_sec,
            report.copy.seconds / copy.seconds
        );
    }
    // Flat memory: pages of 1,000 rows, so both sizes run many pages.
    let small = legacy_file(n / 10)?;
    let paged = ImportOptions {
        batch_rows: 1_000,
        ..Default::default()
    };
    let pg = &targets[0].1;
    let import_peak = |source: &LegacyDatabase, options: &ImportOptions| {
        peak_heap(pg, |to| {
            import_handshake(source.url(), to, options).map(drop)
        })
    };
    let (peak_small, peak_full) = (import_peak(&small, &paged)?, import_peak(&source, &paged)?);
    println!(
        "import/peak_heap (pages of 1,000 rows): {:.1} MiB at {} rows/table, {:.1} MiB at {n} \
         rows/table ({:.2}; 1.0 = flat)",
        peak_small as f64 / 1048576.0,
        n / 10,
        peak_full as f64 / 1048576.0,
        peak_full as f64 / peak_small.max(1) as f64
    );
    // Default pages of 10,000 rows: the import against copy_store of the
    // same rows.
    let import_default = import_peak(&source, &ImportOptions::default())?;
    let copy_default = peak_heap(pg, |to| {
        copy_store(ours.url(), to, &CopyOptions::default()).map(drop)
    })?;
    println!(
        "import/peak_heap (pages of 10,000 rows, {n} rows/table): import {:.1} MiB, copy_store \
         of the same rows {:.1} MiB",
        import_default as f64 / 1048576.0,
        copy_default as f64 / 1048576.0
    );
    Ok(())
}
