//! Bench group `copy`: `copy_store` from a SQLite file into a PostgreSQL
//! schema (the move), at the sizes of the copy issue: 10^6 AI jobs with
//! one entity ref each, 10^5 blocks, a canvas of 10^4 nodes and 10^4
//! edges; rows/s (verification included), and the peak heap of the copy
//! at a tenth of the size and at the full size (flat memory: a page at a
//! time, whatever the size). The floor, measured in the same run on the
//! same SQLite file: `bench::raw_copy`, the rows streamed by raw binary
//! COPY with none of the copier's work (decoding, checks, digests,
//! checkpoints, verification); the ratio is copy_store's time over it.
//!
//! `cargo bench --features postgres --bench copy`; smaller runs with
//! `HSK_COPY_BENCH_JOBS` (the block and canvas sizes follow at 1/10 and
//! 1/100 of it). `HSK_COPY_BENCH_KEEP=dir` keeps the seeded SQLite files
//! in `dir` and reuses them on the next run (for profiling the copy alone).
//! Each size also prints the CPU seconds the floor and the copy used, in
//! this process and in the rest of the machine (on one machine, that is
//! mostly the PostgreSQL server).

use std::time::Instant;

use handshake_storage::bench;
use handshake_storage::conformance::fixtures::{ordinary_block, workspace_job};
use handshake_storage::conformance::TestTarget;
use handshake_storage::copy::{copy_store, CopyOptions};
use handshake_storage::*;

#[global_allocator]
static ALLOCATOR: bench::CountingAllocator = bench::CountingAllocator;

/// Seeds a SQLite file: `jobs` jobs, `jobs / 10` blocks in documents of
/// 10,000, and one canvas of `jobs / 100` nodes and as many edges.
fn seed(url: &str, jobs: usize) -> StorageResult<usize> {
    let store = open(url)?;
    let ctx = WriteContext::human(Some("bench".into()));
    let ws = store.create_workspace(
        &ctx,
        NewWorkspace {
            name: "bench".into(),
        },
    )?;
    let blocks = jobs / 10;
    for chunk in 0..blocks.div_ceil(10_000) {
        let doc = store.create_document(
            &ctx,
            NewDocument {
                workspace_id: ws.id.clone(),
                title: format!("doc {chunk}"),
            },
        )?;
        let n = (blocks - chunk * 10_000).min(10_000);
        store.replace_blocks(
            &ctx,
            &doc.id,
            (0..n as i64).map(|i| ordinary_block(&doc.id, i)).collect(),
        )?;
    }
    let nodes = jobs / 100;
    let canvas = store.create_canvas(
        &ctx,
        NewCanvas {
            workspace_id: ws.id.clone(),
            title: "bench".into(),
        },
    )?;
    let node_id = |i: usize| format!("n{i}");
    store.update_canvas_graph(
        &ctx,
        &canvas.id,
        (0..nodes)
            .map(|i| NewCanvasNode {
                id: Some(node_id(i)),
                kind: "note".into(),
                position_x: i as f64 * 1.5,
                position_y: -(i as f64) / 3.0,
                data: Some(serde_json::json!({"label": i})),
            })
            .collect(),
        (0..nodes)
            .map(|i| NewCanvasEdge {
                id: Some(format!("e{i}")),
                from_node_id: node_id(i),
                to_node_id: node_id((i * 7 + 1) % nodes),
                kind: "link".into(),
            })
            .collect(),
    )?;
    for _ in 0..jobs {
        store.create_ai_job(workspace_job(&ws.id))?;
    }
    Ok(seeded_rows(jobs))
}

/// Rows [`seed`] writes: jobs and their refs, blocks, nodes and edges (and
/// a few parents, not counted).
fn seeded_rows(jobs: usize) -> usize {
    2 * jobs + jobs / 10 + 2 * (jobs / 100)
}

fn main() -> StorageResult<()> {
    let full: usize = std::env::var("HSK_COPY_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let temp = tempfile::tempdir().map_err(|e| StorageError::Database(e.to_string()))?;
    let keep = std::env::var_os("HSK_COPY_BENCH_KEEP").map(std::path::PathBuf::from);
    let dir = keep.as_deref().unwrap_or(temp.path());
    let postgres = TestTarget::standard("postgres");
    println!("copy: SQLite file -> PostgreSQL schema, default options");
    let mut peaks = Vec::new();
    for jobs in [full / 10, full] {
        let file = dir.join(format!("source-{jobs}.db"));
        let source = format!("sqlite://{}", file.display());
        let started = Instant::now();
        let rows = if keep.is_some() && file.exists() {
            seeded_rows(jobs)
        } else {
            // Seeded under another name and renamed when done, so a kept
            // file is always a whole seed.
            let partial = dir.join(format!("seeding-{jobs}.db"));
            for stale in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{stale}", partial.display()));
            }
            let rows = seed(&format!("sqlite://{}", partial.display()), jobs)?;
            std::fs::rename(&partial, &file).map_err(|e| StorageError::Database(e.to_string()))?;
            rows
        };
        let seeded = started.elapsed().as_secs_f64();
        // Timed with the heap counter off (its atomics, shared by the
        // reading and the writing thread, would slow the copier and not the
        // floor); the peak heap is a second copy's, counted.
        bench::count_heap(false);
        // The floor: the same rows, raw binary COPY, into its own schema.
        let raw_target = postgres.harness()?;
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let raw_rows = bench::raw_copy(&file, raw_target.url())?;
        let raw_seconds = started.elapsed().as_secs_f64();
        let raw_cpu = cpu_since(cpu_before);
        drop(raw_target);
        let target = postgres.harness()?;
        let cpu_before = cpu_seconds();
        let report = copy_store(&source, target.url(), &CopyOptions::default())?;
        let copy_cpu = cpu_since(cpu_before);
        drop(target);
        bench::count_heap(true);
        let target = postgres.harness()?;
        let mark = bench::heap_mark();
        copy_store(&source, target.url(), &CopyOptions::default())?;
        let peak = bench::heap_peak_since(mark);
        drop(target);
        peaks.push(peak);
        println!(
            "copy/{jobs}_jobs/raw_binary_copy: {raw_rows} rows in {raw_seconds:.2} s = {:.0} rows/s",
            raw_rows as f64 / raw_seconds
        );
        println!(
            "copy/{jobs}_jobs: {} rows in {:.2} s = {:.0} rows/s (verification included; \
             about {rows} rows seeded in {seeded:.0} s); peak heap {:.1} MiB",
            report.rows,
            report.seconds,
            report.rows_per_sec,
            peak as f64 / 1048576.0
        );
        for t in &report.tables {
            println!(
                "  {:26} {:>9} rows {:>8.2} s {:>10.0} rows/s",
                t.table, t.rows, t.seconds, t.rows_per_sec
            );
        }
        println!(
            "copy/{jobs}_jobs: copy_store / raw binary COPY = {:.2} (time, verification included; \
             target at most 1.5); without the {:.2} s of reading the target back: {:.2}",
            report.seconds / raw_seconds,
            report.verify_seconds,
            (report.seconds - report.verify_seconds) / raw_seconds
        );
        println!(
            "copy/{jobs}_jobs: {} of {} rows read back by the digest of their bytes, the rest row by row",
            report.rows_verified_by_bytes, report.rows_this_run
        );
        println!(
            "copy/{jobs}_jobs: CPU seconds (this process + the rest of the machine, mostly \
             PostgreSQL): raw binary COPY {:.1} + {:.1}, copy_store {:.1} + {:.1}",
            raw_cpu.0, raw_cpu.1, copy_cpu.0, copy_cpu.1
        );
        assert!(report.verify.identical);
        assert_eq!(report.rows, raw_rows, "the same rows on both sides");
    }
    println!(
        "copy: peak heap at {} jobs / at {} jobs = {:.2} (1.0 = flat)",
        full,
        full / 10,
        peaks[1] as f64 / peaks[0].max(1) as f64
    );
    Ok(())
}

/// CPU seconds used so far by this process and by the rest of the machine
/// (all CPUs' busy time less this process's), from `/proc`; zero where
/// there is none.
fn cpu_seconds() -> (f64, f64) {
    let tick = 100.0; // USER_HZ, fixed at 100 on Linux for /proc
    let fields = |text: &str| -> Vec<f64> {
        text.split_whitespace()
            .map(|v| v.parse().unwrap_or(0.0))
            .collect()
    };
    let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: utime and stime are the 12th
    // and 13th fields.
    let after_name = own.rfind(')').map_or("", |i| &own[i + 1..]);
    let own = fields(after_name);
    let mine = (own.get(11).unwrap_or(&0.0) + own.get(12).unwrap_or(&0.0)) / tick;
    let all = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu = fields(all.lines().next().unwrap_or("").trim_start_matches("cpu"));
    // user, nice, system, irq, softirq, steal.
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| cpu.get(i))
        .sum::<f64>()
        / tick;
    (mine, busy - mine)
}

fn cpu_since(before: (f64, f64)) -> (f64, f64) {
    let now = cpu_seconds();
    (now.0 - before.0, now.1 - before.1)
}
