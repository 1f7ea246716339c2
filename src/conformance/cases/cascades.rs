//! Cascading deletes: a workspace takes everything under it with it, a
//! workflow run its node executions.

#[allow(unused_imports)]
use super::*;

/// A workspace holding two documents with blocks and a canvas with a graph;
/// ids are prefixed with `tag`.
pub(super) fn seed_content(h: &Harness, tag: &str) -> (Workspace, Vec<Document>, Canvas) {
    let ws = seed_workspace_named(h, tag);
    let docs: Vec<Document> = (0..2)
        .map(|d| {
            let doc = seed_document_in(h, &ws.id, &format!("{tag} doc {d}"));
            for seq in 0..2 {
                add_block(h, &doc.id, seq, Some(&format!("{tag}-block-{d}-{seq}")));
            }
            doc
        })
        .collect();
    let canvas = seed_canvas_in(h, &ws.id, tag);
    let nodes = vec![
        node(&format!("{tag}-n1"), 0.0, 0.0),
        node(&format!("{tag}-n2"), 1.0, 1.0),
    ];
    let edges = vec![edge(
        &format!("{tag}-e1"),
        &format!("{tag}-n1"),
        &format!("{tag}-n2"),
    )];
    h.store()
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("seed graph");
    (ws, docs, canvas)
}

/// Everything the API shows of a workspace's content.
pub(super) type ContentView = (
    Option<Workspace>,
    Vec<Document>,
    Vec<Vec<Block>>,
    Vec<Canvas>,
    Vec<CanvasGraph>,
);

pub(super) fn content_view(h: &Harness, ws: &str) -> ContentView {
    let docs = h.store().list_documents(ws).expect("list documents");
    let blocks = docs.iter().map(|d| blocks_of(h, &d.id)).collect();
    let canvases = h.store().list_canvases(ws).expect("list canvases");
    let graphs = canvases.iter().map(|c| graph_of(h, &c.id)).collect();
    (
        h.store().get_workspace(ws).expect("get workspace"),
        docs,
        blocks,
        canvases,
        graphs,
    )
}

/// Deleting a workspace removes its documents, blocks, canvases, nodes and
/// edges, and nothing of other workspaces.
pub fn cascade_delete_workspace_removes_everything(h: &Harness) {
    let (ws, docs, canvas) = seed_content(h, "gone");
    let (kept_ws, _, _) = seed_content(h, "kept");
    let kept_before = content_view(h, &kept_ws.id);
    h.store()
        .delete_workspace(&human(), &ws.id)
        .expect("delete workspace");
    assert_eq!(
        content_view(h, &ws.id),
        (None, Vec::new(), Vec::new(), Vec::new(), Vec::new())
    );
    for doc in &docs {
        expect_kind(h.store().get_document(&doc.id), ErrorKind::NotFound);
        assert!(blocks_of(h, &doc.id).is_empty());
    }
    expect_kind(h.store().get_block("gone-block-0-0"), ErrorKind::NotFound);
    expect_kind(
        h.store().get_canvas_with_graph(&canvas.id),
        ErrorKind::NotFound,
    );
    assert_eq!(content_view(h, &kept_ws.id), kept_before);
    // Block, node and edge ids are unique store-wide: reusing them proves
    // the rows are gone.
    let kept_doc = &kept_before.1[0];
    add_block(h, &kept_doc.id, 5, Some("gone-block-0-0"));
    let nodes = vec![node("gone-n1", 0.0, 0.0), node("gone-n2", 0.0, 0.0)];
    let edges = vec![edge("gone-e1", "gone-n1", "gone-n2")];
    h.store()
        .update_canvas_graph(&human(), &kept_before.3[0].id, nodes, edges)
        .expect("node and edge ids of the deleted workspace are free");
}

/// Deleting a workflow run removes its node executions; the job and other runs
/// stay.
pub fn cascade_delete_run_removes_executions(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let kept_run = add_run(h, job.job_id, JobState::Running);
    let gone: Vec<WorkflowNodeExecution> = (0..3).map(|i| add_exec(h, run.id, "node", i)).collect();
    let kept = vec![add_exec(h, kept_run.id, "kept", 0)];
    assert_eq!(execs(h, run.id).len(), 3);
    let deleted = h
        .execute_sql(&format!(
            "DELETE FROM workflow_runs WHERE id = '{}'",
            run.id
        ))
        .expect("delete run by SQL");
    assert_eq!(deleted, 1);
    assert!(execs(h, run.id).is_empty());
    for exec in &gone {
        expect_kind(
            h.store().update_workflow_node_execution_status(
                exec.id,
                JobState::Completed,
                None,
                None,
            ),
            ErrorKind::NotFound,
        );
    }
    expect_kind(
        h.store()
            .update_workflow_run_status(run.id, JobState::Failed, None),
        ErrorKind::NotFound,
    );
    assert_eq!(execs(h, kept_run.id), kept);
    assert_eq!(h.store().get_ai_job(job.job_id).expect("job stays"), job);
}
