//! Fills a store with a small demo data set through the public API (every
//! table: workspaces, documents, blocks, a canvas graph, AI jobs with entity
//! refs, a workflow run with node executions), e.g. to try `hsk-storage
//! copy` and `verify`:
//!
//! ```sh
//! cargo run --example seed_demo -- sqlite://demo.db
//! ```

use handshake_storage::*;
use serde_json::json;

fn main() -> StorageResult<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(database_url_from_env);
    let store = open(&url)?;
    let ctx = WriteContext::human(Some("seed-demo".into()));
    for w in 0..3 {
        let ws = store.create_workspace(
            &ctx,
            NewWorkspace {
                name: format!("Workspace {w} ✓"),
            },
        )?;
        for d in 0..2 {
            let doc = store.create_document(
                &ctx,
                NewDocument {
                    workspace_id: ws.id.clone(),
                    title: format!("Document {d}"),
                },
            )?;
            let blocks = (0..200)
                .map(|k| NewBlock {
                    document_id: doc.id.clone(),
                    kind: "paragraph".into(),
                    sequence: k,
                    raw_content: format!("block {k} of document {d} — ünïcødé"),
                    derived_content: Some(json!({"k": k, "ratio": k as f64 / 7.0})),
                    ..Default::default()
                })
                .collect();
            store.replace_blocks(&ctx, &doc.id, blocks)?;
        }
        let canvas = store.create_canvas(
            &ctx,
            NewCanvas {
                workspace_id: ws.id.clone(),
                title: "Board".into(),
            },
        )?;
        let nodes = (0..50)
            .map(|i| NewCanvasNode {
                id: Some(format!("{}-n{i}", ws.id)),
                kind: "note".into(),
                position_x: i as f64 * 1.5,
                position_y: -(i as f64) / 3.0,
                data: Some(json!({"label": format!("node {i}")})),
            })
            .collect();
        let edges = (1..50)
            .map(|i| NewCanvasEdge {
                id: Some(format!("{}-e{i}", ws.id)),
                from_node_id: format!("{}-n{}", ws.id, i - 1),
                to_node_id: format!("{}-n{i}", ws.id),
                kind: "link".into(),
            })
            .collect();
        store.update_canvas_graph(&ctx, &canvas.id, nodes, edges)?;
        for _ in 0..100 {
            store.create_ai_job(NewAiJob {
                entity_refs: vec![EntityRef {
                    entity_id: ws.id.clone(),
                    entity_kind: "workspace".into(),
                }],
                ..Default::default()
            })?;
        }
    }
    let job = store.create_ai_job(NewAiJob::default())?;
    let run = store.create_workflow_run(job.job_id, JobState::Running, None)?;
    for k in 0..5 {
        store.create_workflow_node_execution(NewNodeExecution {
            workflow_run_id: run.id,
            node_id: format!("node-{k}"),
            node_type: "llm".into(),
            status: JobState::Queued,
            sequence: k,
            input_payload: Some(json!({"prompt": k})),
            started_at: chrono::Utc::now(),
        })?;
    }
    println!("seeded {}", redact_url(&url));
    Ok(())
}
