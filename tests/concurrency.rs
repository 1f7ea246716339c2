//! Concurrency on a real database: eight threads writing through one store
//! lose nothing and never fail, and processes migrating one fresh database
//! at the same moment both succeed with the schema applied once. Each test
//! runs on a SQLite file and, with `--features postgres`, on PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use handshake_storage::conformance::{Harness, TestTarget};
use handshake_storage::*;
use uuid::Uuid;

const THREADS: usize = 8;
const WRITES_PER_THREAD: usize = 1_000;
/// Far above the few seconds the work takes: only a deadlock reaches it.
const WATCHDOG: Duration = Duration::from_secs(300);

#[test]
#[ignore = "a child process of other tests; runs only when they start it"]
fn child_process() {
    child_process_main()
}

/// What one writer thread knows it wrote: the state its rows must have at
/// the end.
struct Written {
    thread: usize,
    workspace_id: String,
    /// Blocks created, updated and deleted one at a time: id to content.
    document_id: String,
    blocks: BTreeMap<String, String>,
    /// The document whose blocks are replaced wholesale, and the last set.
    replaced_document_id: String,
    replaced: Vec<(String, String)>,
    canvas_id: String,
    nodes: Vec<(String, f64)>,
    edges: Vec<(String, String, String)>,
    jobs: BTreeMap<Uuid, JobState>,
    writes: usize,
}

impl Written {
    fn check(&self, store: &dyn Storage) {
        let t = self.thread;
        let blocks: BTreeMap<String, String> = store
            .get_blocks(&self.document_id)
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.raw_content))
            .collect();
        assert_eq!(blocks, self.blocks, "thread {t}: blocks");

        let replaced: Vec<(String, String)> = store
            .get_blocks(&self.replaced_document_id)
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.raw_content))
            .collect();
        assert_eq!(replaced, self.replaced, "thread {t}: replaced blocks");

        let graph = store.get_canvas_with_graph(&self.canvas_id).unwrap();
        let nodes: Vec<(String, f64)> = graph
            .nodes
            .iter()
            .map(|n| (n.id.clone(), n.position_x))
            .collect();
        assert_eq!(nodes, self.nodes, "thread {t}: canvas nodes");
        let edges: Vec<(String, String, String)> = graph
            .edges
            .iter()
            .map(|e| (e.id.clone(), e.from_node_id.clone(), e.to_node_id.clone()))
            .collect();
        assert_eq!(edges, self.edges, "thread {t}: canvas edges");

        for (job_id, state) in &self.jobs {
            assert_eq!(
                store.get_ai_job(*job_id).unwrap().state,
                *state,
                "thread {t}: job {job_id}"
            );
        }
        let refs = store
            .list_ai_jobs(AiJobListFilter {
                wsid: Some(self.workspace_id.clone()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(refs.len(), self.jobs.len(), "thread {t}: jobs listed");
    }
}

/// One thread's 1,000 writes, cycling through every kind of write; any
/// error fails the test with the thread, write number and error.
fn write_mix(store: &dyn Storage, t: usize) -> Written {
    let ctx = human();
    let ws = store
        .create_workspace(
            &ctx,
            NewWorkspace {
                name: format!("writer {t}"),
            },
        )
        .unwrap();
    let doc = |title: &str| {
        store
            .create_document(
                &ctx,
                NewDocument {
                    workspace_id: ws.id.clone(),
                    title: title.into(),
                },
            )
            .unwrap()
            .id
    };
    let canvas = store
        .create_canvas(
            &ctx,
            NewCanvas {
                workspace_id: ws.id.clone(),
                title: "canvas".into(),
            },
        )
        .unwrap();
    let mut w = Written {
        thread: t,
        document_id: doc("one by one"),
        replaced_document_id: doc("replaced"),
        workspace_id: ws.id.clone(),
        blocks: BTreeMap::new(),
        replaced: Vec::new(),
        canvas_id: canvas.id,
        nodes: Vec::new(),
        edges: Vec::new(),
        jobs: BTreeMap::new(),
        writes: 5,
    };
    let ws_ref = EntityRef {
        entity_id: ws.id.clone(),
        entity_kind: "workspace".into(),
    };
    let mut i = w.writes;
    while i < WRITES_PER_THREAD {
        let what = |op: &str| format!("thread {t} write {i} ({op})");
        match i % 8 {
            1 if !w.blocks.is_empty() => {
                let id = w.blocks.keys().nth(i % w.blocks.len()).unwrap().clone();
                let content = format!("t{t} updated at {i}");
                store
                    .update_block(
                        &ctx,
                        &id,
                        BlockUpdate {
                            raw_content: Some(content.clone()),
                            ..Default::default()
                        },
                    )
                    .unwrap_or_else(|e| panic!("{}: {e:?}", what("update_block")));
                w.blocks.insert(id, content);
            }
            2 => {
                let set: Vec<(String, String)> = (0..3)
                    .map(|k| (format!("t{t}-r{i}-{k}"), format!("t{t} replaced at {i}")))
                    .collect();
                let doc_id = w.replaced_document_id.clone();
                let blocks = set
                    .iter()
                    .enumerate()
                    .map(|(k, (id, c))| block(&doc_id, k as i64, id.clone(), c.clone()))
                    .collect();
                store
                    .replace_blocks(&ctx, &doc_id, blocks)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", what("replace_blocks")));
                w.replaced = set;
            }
            3 if !w.blocks.is_empty() => {
                let id = w.blocks.keys().next().unwrap().clone();
                store
                    .delete_block(&ctx, &id)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", what("delete_block")));
                w.blocks.remove(&id);
            }
            4 => {
                let job = store
                    .create_ai_job(NewAiJob {
                        entity_refs: vec![ws_ref.clone()],
                        ..Default::default()
                    })
                    .unwrap_or_else(|e| panic!("{}: {e:?}", what("create_ai_job")));
                w.jobs.insert(job.job_id, job.state);
            }
            5 if !w.jobs.is_empty() => {
                let job_id = *w.jobs.keys().nth(i % w.jobs.len()).unwrap();
                let state = if w.jobs[&job_id] == JobState::Running {
                    JobState::Completed
                } else {
                    JobState::Running
                };
                store
                    .update_ai_job_status(JobStatusUpdate {
                        job_id,
                        state,
                        error_message: None,
                        status_reason: format!("write {i}"),
                        metrics: None,
                        workflow_run_id: None,
                        trace_id: None,
                        job_outputs: None,
                    })
                    .unwrap_or_else(|e| panic!("{}: {e:?}", what("update_ai_job_status")));
                w.jobs.insert(job_id, state);
            }
            6 => {
                let a = format!("t{t}-n{i}-a");
                let b = format!("t{t}-n{i}-b");
                let e = format!("t{t}-e{i}");
                let node = |id: &str, x: f64| NewCanvasNode {
                    id: Some(id.into()),
                    kind: "note".into(),
                    position_x: x,
                    position_y: -x,
                    data: None,
                };
                store
                    .update_canvas_graph(
                        &ctx,
                        &w.canvas_id,
                        vec![node(&a, i as f64 + 0.25), node(&b, i as f64 + 0.5)],
                        vec![NewCanvasEdge {
                            id: Some(e.clone()),
                            from_node_id: a.clone(),
                            to_node_id: b.clone(),
                            kind: "link".into(),
                        }],
                    )
                    .unwrap_or_else(|err| panic!("{}: {err:?}", what("update_canvas_graph")));
                w.nodes = vec![(a.clone(), i as f64 + 0.25), (b.clone(), i as f64 + 0.5)];
                w.edges = vec![(e, a, b)];
            }
            _ => {
                let id = format!("t{t}-b{i}");
                let content = format!("t{t} created at {i}");
                store
                    .create_block(
                        &ctx,
                        block(&w.document_id, i as i64, id.clone(), content.clone()),
                    )
                    .unwrap_or_else(|e| panic!("{}: {e:?}", what("create_block")));
                w.blocks.insert(id, content);
            }
        }
        i += 1;
        w.writes += 1;
    }
    w
}

fn eight_threads_of_mixed_writes(target: TestTarget) {
    let harness = target.harness().expect("a fresh database");
    let store = harness.shared_store();
    let written = within(WATCHDOG, "8 threads x 1,000 writes", move || {
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || write_mix(&*store, t))
            })
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().expect("a writer failed"))
            .collect::<Vec<_>>()
    });
    let store = harness.store();
    for w in &written {
        assert_eq!(w.writes, WRITES_PER_THREAD);
        w.check(store);
    }
    assert_eq!(store.list_workspaces().unwrap().len(), THREADS);
    let jobs: usize = written.iter().map(|w| w.jobs.len()).sum();
    assert_eq!(
        store
            .list_ai_jobs(AiJobListFilter::default())
            .unwrap()
            .len(),
        jobs
    );
    eprintln!(
        "{}: {THREADS} threads x {WRITES_PER_THREAD} writes, all accounted for",
        harness.backend()
    );
}

/// Bookkeeping rows of the migration table (an UPDATE counts them on every
/// backend).
fn migration_rows(harness: &Harness) -> usize {
    harness
        .execute_sql("UPDATE __diesel_schema_migrations SET version = version")
        .expect("the migration table")
}

const MIGRATION_RACES: usize = 3;
const MIGRATING_PROCESSES: usize = 2;

/// Empties a fresh harness database back to nothing, lets processes
/// migrate it at the same moment, and checks it ends as `open` leaves it.
fn processes_migrating_at_once(target: TestTarget) {
    let dir = tempfile::tempdir().unwrap();
    for race in 0..MIGRATION_RACES {
        let harness = target.harness().expect("a fresh database");
        let migrated_columns = harness.columns().unwrap();
        let migrations = harness.store().migration_status().unwrap().applied.len();
        assert!(migrations > 0);
        harness.revert_all_migrations().unwrap();
        harness
            .execute_sql("DROP TABLE __diesel_schema_migrations")
            .unwrap();
        assert!(harness.columns().unwrap().is_empty());

        let commands = (0..MIGRATING_PROCESSES)
            .map(|_| child("migrate", harness.url(), ""))
            .collect();
        let children = start_together(commands, dir.path());
        within(WATCHDOG, "migrating processes", move || {
            for (mut child, mut reports) in children {
                assert_eq!(reports.next_report().as_deref(), Some("migrated"));
                assert!(child.wait().unwrap().success());
            }
        });

        assert_eq!(harness.columns().unwrap(), migrated_columns, "race {race}");
        assert_eq!(migration_rows(&harness), migrations, "race {race}");
        assert!(harness
            .store()
            .migration_status()
            .unwrap()
            .pending
            .is_empty());
    }
}

#[cfg(feature = "sqlite")]
mod on_sqlite {
    use super::*;

    #[test]
    fn eight_threads_of_mixed_writes_lose_nothing() {
        eight_threads_of_mixed_writes(TestTarget::standard("sqlite"));
    }

    #[test]
    fn two_processes_migrating_at_once_apply_the_schema_once() {
        processes_migrating_at_once(TestTarget::standard("sqlite"));
    }
}

#[cfg(feature = "postgres")]
mod on_postgres {
    use super::*;

    #[test]
    fn eight_threads_of_mixed_writes_lose_nothing() {
        eight_threads_of_mixed_writes(TestTarget::standard("postgres"));
    }

    #[test]
    fn two_processes_migrating_at_once_apply_the_schema_once() {
        processes_migrating_at_once(TestTarget::standard("postgres"));
    }
}
