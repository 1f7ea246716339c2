//! The benchmark workloads (feature `bench`), each paired with a baseline:
//! the same work as hand-written raw SQL through the same driver, on a
//! twin database of the same backend, measured in the same run. Written once here and used by
//! `benches/storage.rs` (criterion) and `hsk-storage bench` (a short run).
//!
//! Groups: `point` (one row), `bulk` (whole documents and canvases),
//! `scale` (job queries over seeded tables of a given size),
//! `concurrency` (a mixed load from several threads through one store) and
//! `ids` (UUID v7 against v4 as job ids: [`IdVersions`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

pub use crate::backend::seeding::sql;
use crate::backend::seeding::{plain_ledger_sql, seed_sql, seed_time, STALLED_RUNS};
pub use crate::backend::seeding::{Baseline, BulkMethod};
use crate::conformance::fixtures::{graph, ordinary_block, workspace_job, PARAGRAPH};
use crate::conformance::{Harness, TestTarget};
#[cfg(all(feature = "sqlite", feature = "postgres"))]
pub use crate::copy::raw_copy;
use crate::error::{StorageError, StorageResult};
use crate::kernel::*;
use crate::storage::Storage;
use crate::types::*;

/// One unit of work, done once per call.
pub type Work<'a> = Box<dyn FnMut() -> StorageResult<()> + 'a>;

/// Times `iters` calls of `work` for criterion's `iter_custom`, and keeps
/// the mean per call in `means` (for a ratio of medians).
pub fn timed(work: &mut Work<'_>, iters: u64, means: &mut Vec<Duration>) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        work().expect("benchmark workload");
    }
    let elapsed = start.elapsed();
    means.push(elapsed / iters.max(1) as u32);
    elapsed
}

/// A workload and its baseline.
pub struct Workload<'a> {
    /// The group the workload reports under (`point`, `bulk`, `scale`, ...).
    pub group: &'static str,
    /// The workload's name within its group.
    pub name: String,
    /// Operations one call performs (for ops/s).
    pub ops: u64,
    /// The work through the store.
    pub store: Work<'a>,
    /// The same work as raw SQL.
    pub baseline: Work<'a>,
}

/// How big the workloads are.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Blocks per document in the bulk workloads.
    pub blocks: usize,
    /// Nodes per canvas in the bulk workloads.
    pub nodes: usize,
    /// Edges per canvas in the bulk workloads.
    pub edges: usize,
    /// Job table sizes of the `scale` group.
    pub jobs: Vec<usize>,
    /// Thread counts of the `concurrency` group.
    pub threads: Vec<usize>,
    /// Operations per thread per call in the `concurrency` group.
    pub ops_per_thread: usize,
}

impl Sizes {
    /// The sizes the performance issue names.
    pub fn full() -> Self {
        Sizes {
            blocks: 10_000,
            nodes: 5_000,
            edges: 10_000,
            jobs: vec![10_000, 1_000_000],
            threads: vec![1, 2, 4, 8],
            ops_per_thread: 40,
        }
    }

    /// A short run for `hsk-storage bench` and CI.
    pub fn quick() -> Self {
        Sizes {
            blocks: 2_000,
            nodes: 1_000,
            edges: 2_000,
            jobs: vec![10_000],
            threads: vec![1, 2, 4, 8],
            ops_per_thread: 20,
        }
    }
}

/// Two fresh databases of the same backend, one for the store and one for
/// the baseline, so that neither side's writes (a growing table, a longer
/// WAL) slow the other down, whichever runs first.
pub struct Fixture {
    store_db: Db,
    baseline_db: Db,
    baseline: Box<dyn Baseline>,
    ctx: WriteContext,
}

/// A fresh database and the workspace the workloads write into.
struct Db {
    harness: Harness,
    workspace_id: String,
}

impl Db {
    fn new(target: &TestTarget, ctx: &WriteContext) -> StorageResult<Self> {
        let harness = target.harness()?;
        let workspace = NewWorkspace {
            name: "bench".into(),
        };
        let workspace_id = harness.store().create_workspace(ctx, workspace)?.id;
        Ok(Db {
            harness,
            workspace_id,
        })
    }
}

/// Per-side ids a workload works on.
struct Side {
    document_id: String,
    canvas_id: String,
    prefix: &'static str,
}

impl Fixture {
    /// A store and a baseline, each on a fresh database of `target`.
    pub fn new(target: &TestTarget) -> StorageResult<Self> {
        let ctx = WriteContext::human(Some("bench".into()));
        let store_db = Db::new(target, &ctx)?;
        let baseline_db = Db::new(target, &ctx)?;
        let baseline = baseline_db.harness.baseline()?;
        Ok(Fixture {
            store_db,
            baseline_db,
            baseline,
            ctx,
        })
    }

    /// The store under measurement.
    pub fn store(&self) -> &dyn Storage {
        self.store_db.harness.store()
    }

    /// The backend both sides run on.
    pub fn backend(&self) -> Backend {
        self.store_db.harness.backend()
    }

    /// The store side's document and canvas.
    fn store_side(&self) -> StorageResult<Side> {
        self.side(&self.store_db, "store")
    }

    /// The baseline side's document and canvas (made through a store on
    /// the baseline's database).
    fn baseline_side(&self) -> StorageResult<Side> {
        self.side(&self.baseline_db, "baseline")
    }

    fn side(&self, db: &Db, prefix: &'static str) -> StorageResult<Side> {
        let store = db.harness.store();
        let document_id = store
            .create_document(
                &self.ctx,
                NewDocument {
                    workspace_id: db.workspace_id.clone(),
                    title: format!("{prefix} document"),
                },
            )?
            .id;
        let canvas_id = store
            .create_canvas(
                &self.ctx,
                NewCanvas {
                    workspace_id: db.workspace_id.clone(),
                    title: format!("{prefix} canvas"),
                },
            )?
            .id;
        Ok(Side {
            document_id,
            canvas_id,
            prefix,
        })
    }

    /// `create_block`, `get_block`, `update_block`, `create_ai_job`,
    /// `get_ai_job`, `update_ai_job_status`: one row each.
    pub fn point(&self) -> StorageResult<Vec<Workload<'_>>> {
        let (s, b) = (self.store_side()?, self.baseline_side()?);
        let store = self.store();
        let base = &*self.baseline;
        let ctx = &self.ctx;
        let block_s = store
            .create_block(ctx, ordinary_block(&s.document_id, 0))?
            .id;
        let block_b = self
            .baseline_db
            .harness
            .store()
            .create_block(ctx, ordinary_block(&b.document_id, 0))?
            .id;
        let job_in_s = workspace_job(&self.store_db.workspace_id);
        let job_in_b = workspace_job(&self.baseline_db.workspace_id);
        let job_s = store.create_ai_job(job_in_s.clone())?.job_id;
        let job_b = base.create_ai_job(&job_in_b)?;
        let (doc_s, doc_b) = (s.document_id.clone(), b.document_id.clone());
        let (get_s, get_b) = (block_s.clone(), block_b.clone());
        let mut seq_s = 0;
        let mut seq_b = 0;
        Ok(vec![
            pair(
                "point",
                "create_block",
                1,
                move || {
                    seq_s += 1;
                    store
                        .create_block(ctx, ordinary_block(&doc_s, seq_s))
                        .map(drop)
                },
                move || {
                    seq_b += 1;
                    base.create_block(&ordinary_block(&doc_b, seq_b))
                },
            ),
            pair(
                "point",
                "get_block",
                1,
                move || store.get_block(&get_s).map(drop),
                move || base.get_block(&get_b),
            ),
            pair(
                "point",
                "update_block",
                1,
                move || {
                    store
                        .update_block(
                            ctx,
                            &block_s,
                            BlockUpdate {
                                raw_content: Some(PARAGRAPH.into()),
                                ..BlockUpdate::default()
                            },
                        )
                        .map(drop)
                },
                move || base.update_block(&block_b, PARAGRAPH),
            ),
            pair(
                "point",
                "create_ai_job",
                1,
                move || store.create_ai_job(job_in_s.clone()).map(drop),
                move || base.create_ai_job(&job_in_b).map(drop),
            ),
            pair(
                "point",
                "get_ai_job",
                1,
                move || store.get_ai_job(job_s).map(drop),
                move || base.get_ai_job(job_b),
            ),
            pair(
                "point",
                "update_ai_job_status",
                1,
                move || {
                    store
                        .update_ai_job_status(JobStatusUpdate {
                            job_id: job_s,
                            state: JobState::Running,
                            error_message: None,
                            status_reason: "running".into(),
                            metrics: None,
                            workflow_run_id: None,
                            trace_id: None,
                            job_outputs: None,
                        })
                        .map(drop)
                },
                move || base.update_ai_job_status(job_b, JobState::Running, "running"),
            ),
        ])
    }

    /// `replace_blocks` of `sizes.blocks` blocks, `update_canvas_graph` of
    /// `sizes.nodes` nodes and `sizes.edges` edges, and reading both back.
    pub fn bulk(&self, sizes: &Sizes) -> StorageResult<Vec<Workload<'_>>> {
        let (s, b) = (self.store_side()?, self.baseline_side()?);
        let store = self.store();
        let base = &*self.baseline;
        let ctx = &self.ctx;
        let blocks: Vec<NewBlock> = (0..sizes.blocks as i64)
            .map(|i| ordinary_block("", i))
            .collect();
        let (nodes_s, edges_s) = graph(s.prefix, sizes.nodes, sizes.edges);
        let (nodes_b, edges_b) = graph(b.prefix, sizes.nodes, sizes.edges);
        // Fill both sides once, so the reads have data from the start.
        store.replace_blocks(ctx, &s.document_id, blocks.clone())?;
        base.replace_blocks(BulkMethod::AsStore, &b.document_id, &blocks)?;
        store.update_canvas_graph(ctx, &s.canvas_id, nodes_s.clone(), edges_s.clone())?;
        base.update_canvas_graph(BulkMethod::AsStore, &b.canvas_id, &nodes_b, &edges_b)?;
        let blocks_b = blocks.clone();
        let (doc_s, doc_b) = (s.document_id.clone(), b.document_id.clone());
        let (canvas_s, canvas_b) = (s.canvas_id.clone(), b.canvas_id.clone());
        let expected_blocks = sizes.blocks;
        let expected_graph = sizes.nodes + sizes.edges;
        Ok(vec![
            pair(
                "bulk",
                format!("replace_blocks/{}", sizes.blocks),
                1,
                move || store.replace_blocks(ctx, &doc_s, blocks.clone()).map(drop),
                move || base.replace_blocks(BulkMethod::AsStore, &doc_b, &blocks_b),
            ),
            pair(
                "bulk",
                format!("get_blocks/{}", sizes.blocks),
                1,
                {
                    let doc = s.document_id.clone();
                    move || expect_rows(store.get_blocks(&doc)?.len(), expected_blocks)
                },
                {
                    let doc = b.document_id.clone();
                    move || expect_rows(base.get_blocks(&doc)?, expected_blocks)
                },
            ),
            pair(
                "bulk",
                format!("update_canvas_graph/{}+{}", sizes.nodes, sizes.edges),
                1,
                move || {
                    store
                        .update_canvas_graph(ctx, &canvas_s, nodes_s.clone(), edges_s.clone())
                        .map(drop)
                },
                move || {
                    base.update_canvas_graph(BulkMethod::AsStore, &canvas_b, &nodes_b, &edges_b)
                },
            ),
            pair(
                "bulk",
                format!("get_canvas_with_graph/{}+{}", sizes.nodes, sizes.edges),
                1,
                {
                    let canvas = s.canvas_id.clone();
                    move || {
                        let graph = store.get_canvas_with_graph(&canvas)?;
                        expect_rows(graph.nodes.len() + graph.edges.len(), expected_graph)
                    }
                },
                {
                    let canvas = b.canvas_id.clone();
                    move || expect_rows(base.get_canvas_with_graph(&canvas)?, expected_graph)
                },
            ),
        ])
    }

    /// The baseline's bulk writes by multi-row INSERT and by binary COPY,
    /// to find where COPY starts to win (`benches/bulk_write.rs`):
    /// `replace_blocks` of each block count, then `update_canvas_graph` of
    /// each (nodes, edges), each size into a document or canvas of its own
    /// on the baseline's database (both methods write the same one, so
    /// both see the same tables).
    pub fn bulk_methods(
        &self,
        blocks: &[usize],
        graphs: &[(usize, usize)],
    ) -> StorageResult<Vec<Methods<'_>>> {
        let base = &*self.baseline;
        let methods = [("insert", BulkMethod::Insert), ("copy", BulkMethod::Copy)];
        let mut out = Vec::new();
        for &n in blocks {
            let doc = self.baseline_side()?.document_id;
            let rows: Vec<NewBlock> = (0..n as i64).map(|i| ordinary_block("", i)).collect();
            let variants = methods.map(|(label, method)| {
                let (doc, rows) = (doc.clone(), rows.clone());
                let work: Work<'_> = Box::new(move || base.replace_blocks(method, &doc, &rows));
                (label, work)
            });
            out.push(Methods {
                name: format!("replace_blocks/{n}"),
                variants: variants.into(),
            });
        }
        for &(n, e) in graphs {
            let b = self.baseline_side()?;
            // Node and edge ids are unique across canvases.
            let (nodes, edges) = graph(&format!("{}-{n}", b.prefix), n, e);
            let variants = methods.map(|(label, method)| {
                let (canvas, nodes, edges) = (b.canvas_id.clone(), nodes.clone(), edges.clone());
                let work: Work<'_> =
                    Box::new(move || base.update_canvas_graph(method, &canvas, &nodes, &edges));
                (label, work)
            });
            out.push(Methods {
                name: format!("update_canvas_graph/{n}+{e}"),
                variants: variants.into(),
            });
        }
        Ok(out)
    }

    /// Job queries over `jobs` seeded jobs (set-based SQL, not API calls):
    /// `list_ai_jobs` with each filter and a limit of 50,
    /// `find_stalled_workflows` and a dry-run `prune_ai_jobs`. Every
    /// workspace has about 100 jobs and 50 runs are stalled whatever the
    /// size, so an indexed query costs the same at every size.
    pub fn scale(&self, jobs: usize) -> StorageResult<Vec<Workload<'_>>> {
        for db in [&self.store_db, &self.baseline_db] {
            seed_jobs(&db.harness, jobs)?;
        }
        let store = self.store();
        let base = &*self.baseline;
        let mut filters = vec![
            ("none", AiJobListFilter::default()),
            (
                "status",
                AiJobListFilter {
                    status: Some(JobState::Completed),
                    ..Default::default()
                },
            ),
            (
                "job_kind",
                AiJobListFilter {
                    job_kind: Some(JobKind::DocRewrite),
                    ..Default::default()
                },
            ),
            (
                "wsid",
                AiJobListFilter {
                    wsid: Some("ws-7".into()),
                    ..Default::default()
                },
            ),
            (
                "from_to",
                AiJobListFilter {
                    from: Some(seed_time(jobs as i64 / 2 + 1000)),
                    to: Some(seed_time(jobs as i64 / 2)),
                    ..Default::default()
                },
            ),
        ];
        for (_, filter) in &mut filters {
            filter.limit = Some(50);
        }
        let mut workloads: Vec<Workload<'_>> = filters
            .into_iter()
            .map(|(name, filter)| {
                let filter_b = filter.clone();
                pair(
                    "scale",
                    format!("list_ai_jobs_{name}/{jobs}"),
                    1,
                    move || store.list_ai_jobs(filter.clone()).map(drop),
                    move || base.list_ai_jobs(&filter_b).map(drop),
                )
            })
            .collect();
        workloads.push(pair(
            "scale",
            format!("find_stalled_workflows/{jobs}"),
            1,
            move || expect_rows(store.find_stalled_workflows(3600)?.len(), STALLED_RUNS),
            move || expect_rows(base.find_stalled_workflows(3600)?, STALLED_RUNS),
        ));
        let cutoff = seed_time(jobs as i64 - 200);
        workloads.push(pair(
            "scale",
            format!("prune_ai_jobs_dry_run/{jobs}"),
            1,
            move || store.prune_ai_jobs(cutoff, 10, true).map(drop),
            move || base.prune_ai_jobs_dry_run(cutoff).map(drop),
        ));
        Ok(workloads)
    }

    /// `threads` threads each doing `sizes.ops_per_thread` rounds of
    /// create, read, update of a block and a read of a job, through one
    /// store (and one baseline pool).
    pub fn concurrency(&self, sizes: &Sizes) -> StorageResult<Vec<Workload<'_>>> {
        let (s, b) = (self.store_side()?, self.baseline_side()?);
        let store = self.store();
        let base = &*self.baseline;
        let ctx = &self.ctx;
        let rounds = sizes.ops_per_thread;
        let job_s = store
            .create_ai_job(workspace_job(&self.store_db.workspace_id))?
            .job_id;
        let job_b = base.create_ai_job(&workspace_job(&self.baseline_db.workspace_id))?;
        let mut workloads = Vec::new();
        for &threads in &sizes.threads {
            let (doc_s, doc_b) = (s.document_id.clone(), b.document_id.clone());
            workloads.push(pair(
                "concurrency",
                format!("mixed/{threads}_threads"),
                (threads * rounds * 4) as u64,
                move || {
                    in_threads(threads, |_| {
                        for i in 0..rounds {
                            let id = store
                                .create_block(ctx, ordinary_block(&doc_s, i as i64))?
                                .id;
                            store.get_block(&id)?;
                            let update = BlockUpdate {
                                raw_content: Some(PARAGRAPH.into()),
                                ..BlockUpdate::default()
                            };
                            store.update_block(ctx, &id, update)?;
                            store.get_ai_job(job_s)?;
                        }
                        Ok(())
                    })
                },
                move || {
                    in_threads(threads, |_| {
                        for i in 0..rounds {
                            let id = Uuid::new_v4().to_string();
                            base.create_block(&NewBlock {
                                id: Some(id.clone()),
                                ..ordinary_block(&doc_b, i as i64)
                            })?;
                            base.get_block(&id)?;
                            base.update_block(&id, PARAGRAPH)?;
                            base.get_ai_job(job_b)?;
                        }
                        Ok(())
                    })
                },
            ));
        }
        Ok(workloads)
    }
}

/// Numbers the kernel workloads' keys and ids, so none repeats.
static KERNEL_KEYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// An event of the kernel workloads: `key` is its idempotency key.
fn kernel_event(key: String) -> NewKernelEvent {
    NewKernelEvent {
        event_version: "1".into(),
        kernel_task_run_id: "KTR-bench".into(),
        session_run_id: "SR-bench".into(),
        aggregate_type: "session_run".into(),
        aggregate_id: "SR-bench".into(),
        event_type: "SESSION_PROGRESS".into(),
        actor: KernelActor::new(KernelActorKind::ModelAdapter, "bench"),
        source_component: "bench".into(),
        payload: serde_json::json!({"key": key, "tokens": 1234, "note": PARAGRAPH}),
        idempotency_key: key,
        ..Default::default()
    }
}

impl Fixture {
    /// The kernel, in this order: `tail/<events>` (a reader pages through
    /// a ledger of `tail_events` events, 1,000 a page; first, since the
    /// others append), `append` (one event) and
    /// `claim_next_complete/<n>_workers` (each worker enqueues a run,
    /// claims the next and takes it through RUNNING to COMPLETED, `rounds`
    /// times).
    pub fn kernel(
        &self,
        workers: &[usize],
        rounds: usize,
        tail_events: usize,
    ) -> StorageResult<Vec<Workload<'_>>> {
        let store = self.store();
        let base = &*self.baseline;
        let next = || KERNEL_KEYS.fetch_add(1, Ordering::Relaxed);
        let mut workloads = Vec::new();
        workloads.push(pair(
            "kernel",
            "append",
            1,
            move || {
                store
                    .append_kernel_event(kernel_event(format!("s-{}", next())))
                    .map(drop)
            },
            move || base.append_kernel_event(&kernel_event(format!("b-{}", next()))),
        ));
        let lease = Duration::from_secs(300);
        for &threads in workers {
            workloads.push(pair(
                "kernel",
                format!("claim_next_complete/{threads}_workers"),
                (threads * rounds) as u64,
                move || {
                    in_threads(threads, |t| {
                        let me = format!("worker-{t}");
                        for _ in 0..rounds {
                            store.enqueue_kernel_session_run(SessionRun::queued("KTR", "a"))?;
                            let claim = until_claimed(|| {
                                store.claim_next_kernel_session_run(&me, lease, None)
                            })?;
                            let fence = claim.fence();
                            for state in [SessionRunState::Running, SessionRunState::Completed] {
                                let mut update = SessionRunUpdate::to(state);
                                if let Some(f) = fence.clone() {
                                    update = update.fenced(f);
                                }
                                store.update_kernel_session_run_state(
                                    &claim.session_run_id,
                                    update,
                                )?;
                            }
                        }
                        Ok(())
                    })
                },
                move || {
                    in_threads(threads, |t| {
                        let me = format!("worker-{t}");
                        for _ in 0..rounds {
                            base.enqueue_kernel_session_run(&format!("SR-b-{}", next()), "a")?;
                            until_claimed(|| Ok(base.claim_next_and_complete(&me)?.then_some(())))?;
                        }
                        Ok(())
                    })
                },
            ));
        }
        for db in [&self.store_db, &self.baseline_db] {
            let ledger = db.harness.store();
            let have = ledger.list_kernel_events_after(0, u32::MAX)?.len();
            for start in (have..tail_events).step_by(1_000) {
                let batch = (start..(start + 1_000).min(tail_events))
                    .map(|k| kernel_event(format!("tail-{k}")))
                    .collect();
                ledger.append_kernel_events_atomic(batch)?;
            }
        }
        let total = |db: &Db| -> StorageResult<usize> {
            Ok(db
                .harness
                .store()
                .list_kernel_events_after(0, u32::MAX)?
                .len())
        };
        let (store_total, base_total) = (total(&self.store_db)?, total(&self.baseline_db)?);
        // First: the workloads after it append to the ledger, and both
        // sides must page through the same number of events.
        workloads.insert(
            0,
            pair(
                "kernel",
                format!("tail/{tail_events}"),
                store_total as u64,
                move || {
                    let (mut after, mut seen) = (0, 0);
                    loop {
                        let page = store.list_kernel_events_after(after, 1_000)?;
                        let Some(last) = page.last() else { break };
                        after = last.event_sequence;
                        seen += page.len();
                    }
                    expect_rows(seen, store_total)
                },
                move || {
                    let (mut after, mut seen) = (0i64, 0);
                    loop {
                        let n = base.list_kernel_events_after(after, 1_000)?;
                        if n == 0 {
                            break;
                        }
                        // Sequences are dense from 1.
                        after += n as i64;
                        seen += n;
                    }
                    expect_rows(seen, base_total)
                },
            ),
        );
        Ok(workloads)
    }
}

impl Fixture {
    /// What the ledger's no-skip numbering costs appenders: for each count
    /// in `appenders`, that many threads each append `rounds` events at
    /// once, three ways: `plain_sequence` (raw SQL into a copy of
    /// `kernel_events` keyed by a plain sequence: no ledger lock, no
    /// largest-sequence lookup), `no_skip` (raw SQL, the store's
    /// statements: ledger lock, clock, key lookup, largest sequence,
    /// INSERT) and `store` (`append_kernel_event`). The raw sides run on
    /// the baseline's database, the store on its own.
    pub fn kernel_append_sequences(
        &self,
        appenders: &[usize],
        rounds: usize,
    ) -> StorageResult<Vec<Methods<'_>>> {
        for sql in plain_ledger_sql(self.backend()) {
            self.baseline_db.harness.execute_sql(sql)?;
        }
        let store = self.store();
        let base = &*self.baseline;
        let next = || KERNEL_KEYS.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        for &threads in appenders {
            let variants: [(&'static str, Work<'_>); 3] = [
                (
                    "plain_sequence",
                    Box::new(move || {
                        in_threads(threads, |_| {
                            (0..rounds).try_for_each(|_| {
                                base.append_kernel_event_plain_sequence(&kernel_event(format!(
                                    "p-{}",
                                    next()
                                )))
                            })
                        })
                    }),
                ),
                (
                    "no_skip",
                    Box::new(move || {
                        in_threads(threads, |_| {
                            (0..rounds).try_for_each(|_| {
                                base.append_kernel_event(&kernel_event(format!("b-{}", next())))
                            })
                        })
                    }),
                ),
                (
                    "store",
                    Box::new(move || {
                        in_threads(threads, |_| {
                            (0..rounds).try_for_each(|_| {
                                store
                                    .append_kernel_event(kernel_event(format!("s-{}", next())))
                                    .map(drop)
                            })
                        })
                    }),
                ),
            ];
            out.push(Methods {
                name: format!("append/{threads}_appenders"),
                variants: variants.into(),
            });
        }
        Ok(out)
    }
}

/// Seeds `jobs` jobs into `harness`'s empty database as the `scale` group
/// does (set-based SQL, not API calls): each with one workspace ref
/// (`ws-0`, `ws-1`, ...: about 100 jobs per workspace, `ws-N` holding jobs
/// `N`, `N + jobs / 100`, ...), one second apart, a run per ten jobs; then
/// `ANALYZE`, so the planner knows the sizes.
pub fn seed_jobs(harness: &Harness, jobs: usize) -> StorageResult<()> {
    for sql in seed_sql(harness.backend(), jobs) {
        harness.execute_sql(&sql)?;
    }
    Ok(())
}

/// Ways of doing the same work, measured side by side.
pub struct Methods<'a> {
    /// What the variants do.
    pub name: String,
    /// Each way by name, with its work.
    pub variants: Vec<(&'static str, Work<'a>)>,
}

fn pair<'a>(
    group: &'static str,
    name: impl Into<String>,
    ops: u64,
    store: impl FnMut() -> StorageResult<()> + 'a,
    baseline: impl FnMut() -> StorageResult<()> + 'a,
) -> Workload<'a> {
    Workload {
        group,
        name: name.into(),
        ops,
        store: Box::new(store),
        baseline: Box::new(baseline),
    }
}

/// Claims until a run comes back. Each worker enqueues a run before it
/// claims one, so a run is always left for it, but under concurrent
/// workers on PostgreSQL a claim-next can find none: it skips the runs other
/// claims hold locked, and another worker may take the last run this
/// claim's snapshot shows (for one it enqueued after that snapshot). That
/// claim is an empty transaction; the next one finds a run.
fn until_claimed<T>(mut claim: impl FnMut() -> StorageResult<Option<T>>) -> StorageResult<T> {
    for _ in 0..10_000 {
        if let Some(claimed) = claim()? {
            return Ok(claimed);
        }
    }
    Err(StorageError::Database("nothing to claim".into()))
}

fn expect_rows(got: usize, expected: usize) -> StorageResult<()> {
    if got == expected {
        Ok(())
    } else {
        Err(StorageError::Database(format!(
            "benchmark read {got} rows, expected {expected}"
        )))
    }
}

fn in_threads(
    threads: usize,
    work: impl Fn(usize) -> StorageResult<()> + Sync,
) -> StorageResult<()> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                scope.spawn(move || work(t))
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| StorageError::Database("a benchmark thread panicked".into()))?
        })
    })
}

/// Medians of one workload, both sides.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The workload's group.
    pub group: &'static str,
    /// The workload's name.
    pub name: String,
    /// Median time of one call through the store.
    pub store: Duration,
    /// Median time of one call of the baseline.
    pub baseline: Duration,
    /// Operations one call performs.
    pub ops: u64,
}

impl Figure {
    /// Store time over baseline time (1.0: no overhead).
    pub fn ratio(&self) -> f64 {
        self.store.as_secs_f64() / self.baseline.as_secs_f64().max(1e-12)
    }

    /// Operations per second through the store.
    pub fn store_ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.store.as_secs_f64().max(1e-12)
    }

    /// Operations per second of the baseline.
    pub fn baseline_ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.baseline.as_secs_f64().max(1e-12)
    }
}

/// Runs each side `samples` times, alternating, and keeps the medians per
/// call. A sample is as many calls as fill about 10 ms (judged from one
/// warm-up call of the store), so that fast point ops are not lost in the
/// clock's noise; both sides make the same number of calls.
pub fn measure(workload: &mut Workload<'_>, samples: usize) -> StorageResult<Figure> {
    const SAMPLE: Duration = Duration::from_millis(10);
    let warm_up = time(&mut workload.store, 1)?;
    time(&mut workload.baseline, 1)?;
    let calls = (SAMPLE.as_nanos() / warm_up.as_nanos().max(1)).clamp(1, 1000) as u32;
    let mut store = Vec::with_capacity(samples);
    let mut baseline = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        store.push(time(&mut workload.store, calls)? / calls);
        baseline.push(time(&mut workload.baseline, calls)? / calls);
    }
    Ok(Figure {
        group: workload.group,
        name: workload.name.clone(),
        store: median(&mut store),
        baseline: median(&mut baseline),
        ops: workload.ops,
    })
}

fn time(work: &mut Work<'_>, calls: u32) -> StorageResult<Duration> {
    let start = Instant::now();
    for _ in 0..calls {
        work()?;
    }
    Ok(start.elapsed())
}

/// The median of `times` (zero for none).
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// How many workloads [`run_all`] measures for `sizes`.
pub fn workload_count(sizes: &Sizes) -> usize {
    6 + 4 + 7 * sizes.jobs.len() + sizes.threads.len()
}

/// Measures every workload on a fresh database of `target` (one per
/// group, and one per job table size), `samples` times each, calling
/// `progress` after each workload.
pub fn run_all(
    target: &TestTarget,
    sizes: &Sizes,
    samples: usize,
    mut progress: impl FnMut(&Figure),
) -> StorageResult<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut measure_all = |workloads: Vec<Workload<'_>>| -> StorageResult<()> {
        for mut workload in workloads {
            let figure = measure(&mut workload, samples)?;
            progress(&figure);
            figures.push(figure);
        }
        Ok(())
    };
    measure_all(Fixture::new(target)?.point()?)?;
    measure_all(Fixture::new(target)?.bulk(sizes)?)?;
    for &jobs in &sizes.jobs {
        measure_all(Fixture::new(target)?.scale(jobs)?)?;
    }
    measure_all(Fixture::new(target)?.concurrency(sizes)?)?;
    Ok(figures)
}

/// How many times faster one `replace_blocks` of `blocks` blocks is than
/// as many `create_block` calls, from the figures of one run.
pub fn replace_speedup(figures: &[Figure], blocks: usize) -> Option<f64> {
    let find = |name: &str| figures.iter().find(|f| f.name == name).map(|f| f.store);
    let create = find("create_block")?;
    let replace = find(&format!("replace_blocks/{blocks}"))?;
    Some(create.as_secs_f64() * blocks as f64 / replace.as_secs_f64().max(1e-12))
}

/// A global allocator that counts live heap bytes and their peak, for
/// [`get_blocks_memory`]. Install it in the binary that measures:
/// `#[global_allocator] static A: CountingAllocator = CountingAllocator;`
pub struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(true);

/// Switches [`CountingAllocator`]'s counting off (`false`) or on again.
/// Counting costs two atomic updates per allocation, shared by every
/// thread: a timed run switches it off, a memory run on. While it is off
/// the live count is not kept, so [`heap_mark`] must follow switching it
/// on (bytes allocated while off and freed while on are not subtracted:
/// the count saturates at zero, and a peak is growth since a mark).
pub fn count_heap(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which we forward.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract, which we forward.
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            let _ = LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
                Some(live.saturating_sub(layout.size()))
            });
        }
    }
}

/// Peak heap growth while reading blocks, and the heap size of what was read.
#[derive(Clone, Copy, Debug)]
pub struct MemoryFigure {
    /// Peak heap growth while reading, in bytes.
    pub peak: usize,
    /// Heap size of what was read, in bytes.
    pub data: usize,
}

impl MemoryFigure {
    /// Peak over data: 1.0 would mean no memory beyond the result.
    pub fn ratio(&self) -> f64 {
        self.peak as f64 / self.data.max(1) as f64
    }
}

/// Writes `blocks` blocks to a new document of `store`, then measures the
/// peak heap of one `get_blocks` of them against the heap size of the
/// `Vec<Block>` it returns. Needs [`CountingAllocator`] installed as the
/// global allocator (an error otherwise).
pub fn get_blocks_memory(store: &dyn Storage, blocks: usize) -> StorageResult<MemoryFigure> {
    let ctx = WriteContext::human(Some("bench".into()));
    let ws = store.create_workspace(&ctx, NewWorkspace { name: "m".into() })?;
    let doc = store.create_document(
        &ctx,
        NewDocument {
            workspace_id: ws.id,
            title: "m".into(),
        },
    )?;
    let new_blocks = (0..blocks as i64)
        .map(|i| ordinary_block(&doc.id, i))
        .collect();
    drop(store.replace_blocks(&ctx, &doc.id, new_blocks)?);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let read = store.get_blocks(&doc.id)?;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    if peak == 0 {
        return Err(StorageError::validation(
            "get_blocks_memory needs bench::CountingAllocator as the global allocator",
        ));
    }
    let data = std::mem::size_of::<Vec<Block>>()
        + (read.capacity() - read.len()) * std::mem::size_of::<Block>()
        + read.iter().map(block_bytes).sum::<usize>();
    Ok(MemoryFigure { peak, data })
}

/// Heap bytes a block owns, itself included.
fn block_bytes(block: &Block) -> usize {
    let text = |s: &String| s.capacity();
    std::mem::size_of::<Block>()
        + text(&block.id)
        + text(&block.document_id)
        + text(&block.kind)
        + text(&block.raw_content)
        + text(&block.display_content)
        + json_bytes(&block.derived_content)
        + block.sensitivity.as_ref().map_or(0, text)
        + block.provenance.actor_id.as_ref().map_or(0, text)
}

fn json_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::String(s) => s.capacity(),
        Value::Array(items) => items
            .iter()
            .map(|v| std::mem::size_of::<Value>() + json_bytes(v))
            .sum(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                std::mem::size_of::<String>()
                    + k.capacity()
                    + std::mem::size_of::<Value>()
                    + json_bytes(v)
            })
            .sum(),
        _ => 0,
    }
}

/// Live heap bytes now, counted by [`CountingAllocator`], and the peak is
/// reset to it: the start of a measurement of [`heap_peak_since`].
pub fn heap_mark() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// Peak heap growth since `mark` (from [`heap_mark`]).
pub fn heap_peak_since(mark: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(mark)
}

/// UUID v7 (time-ordered) against v4 (random) as `ai_jobs` ids: two fresh
/// databases, one seeded with `rows` jobs keyed by v7 ids and one by v4
/// ids, each id generated in Rust in insertion order as the store would.
/// The seeding is timed (bulk insert), then single `create_ai_job`
/// inserts on top (raw SQL, the id the only difference) and the size of
/// the primary-key index compared.
pub struct IdVersions {
    v7: IdSide,
    v4: IdSide,
    /// Jobs seeded on each side.
    pub rows: usize,
    /// Time to bulk insert `rows` jobs: v7, v4.
    pub bulk: (Duration, Duration),
}

/// One database of [`IdVersions`] and its raw-SQL access.
struct IdSide {
    harness: Harness,
    baseline: Box<dyn Baseline>,
}

impl IdSide {
    /// Rows per INSERT of the bulk seeding.
    const CHUNK: usize = 10_000;

    /// A fresh database with `rows` jobs whose ids `new_id` makes, and how
    /// long inserting them took.
    fn seed(
        target: &TestTarget,
        rows: usize,
        new_id: fn() -> Uuid,
    ) -> StorageResult<(Self, Duration)> {
        let harness = target.harness()?;
        let baseline = harness.baseline()?;
        let backend = harness.backend();
        let start = Instant::now();
        let mut done = 0;
        while done < rows {
            let n = Self::CHUNK.min(rows - done);
            let ids: Vec<Uuid> = (0..n).map(|_| new_id()).collect();
            harness.execute_sql(&bulk_jobs_sql(backend, &ids))?;
            done += n;
        }
        let elapsed = start.elapsed();
        harness.execute_sql("ANALYZE ai_jobs")?;
        Ok((IdSide { harness, baseline }, elapsed))
    }
}

impl IdVersions {
    /// Two fresh databases of `target`, one seeded with `rows` jobs with v7
    /// ids, the other with v4 ids.
    pub fn seed(target: &TestTarget, rows: usize) -> StorageResult<Self> {
        let (v7, bulk_v7) = IdSide::seed(target, rows, Uuid::now_v7)?;
        let (v4, bulk_v4) = IdSide::seed(target, rows, Uuid::new_v4)?;
        Ok(IdVersions {
            v7,
            v4,
            rows,
            bulk: (bulk_v7, bulk_v4),
        })
    }

    /// The backend both databases run on.
    pub fn backend(&self) -> Backend {
        self.v7.harness.backend()
    }

    /// One `create_ai_job` insert on top of the seeded rows: `store` is the
    /// v7 side, `baseline` the v4 side.
    pub fn create_ai_job(&self) -> Workload<'_> {
        let (v7, v4) = (&*self.v7.baseline, &*self.v4.baseline);
        let job = || workspace_job("ws-ids");
        pair(
            "ids",
            format!("create_ai_job/{}", self.rows),
            1,
            move || v7.create_ai_job_with_id(Uuid::now_v7(), &job()),
            move || v4.create_ai_job_with_id(Uuid::new_v4(), &job()),
        )
    }

    /// Bytes of the primary-key index: v7, v4.
    pub fn pkey_bytes(&self) -> StorageResult<(u64, u64)> {
        Ok((
            self.v7.baseline.ai_jobs_pkey_bytes()?,
            self.v4.baseline.ai_jobs_pkey_bytes()?,
        ))
    }
}

/// One multi-row INSERT of jobs with the given ids, the other columns
/// constant (as `seed_sql`'s), ids inlined as literals: the same statement
/// text for either version.
fn bulk_jobs_sql(backend: Backend, ids: &[Uuid]) -> String {
    let (uuid, json) = match backend {
        Backend::Postgres => ("::uuid", "::jsonb"),
        _ => ("", ""),
    };
    let values: Vec<String> = ids.iter().map(|id| format!("('{id}'{uuid})")).collect();
    format!(
        "INSERT INTO ai_jobs (id, trace_id, workflow_run_id, job_kind, status, status_reason, \
         error_message, protocol_id, profile_id, capability_profile_id, access_mode, \
         safety_mode, planned_operations, metrics, job_inputs, job_outputs, pinned, \
         created_at, updated_at, entity_refs) \
         SELECT v.id, v.id, NULL, 'doc_edit', 'completed', 'seeded', NULL, 'default', \
         'default', 'default', 'analysis_only', 'normal', '[]'{json}, '{{}}'{json}, NULL, NULL, \
         {f}, '{t}', '{t}', '[]'{json} FROM (VALUES {values}) AS v(id)",
        f = if backend == Backend::Postgres {
            "false"
        } else {
            "0"
        },
        t = "2026-01-01 00:00:00.000000+00:00",
        values = values.join(", "),
    )
}
