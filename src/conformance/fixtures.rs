//! Test data, in one place for the conformance cases, the benchmarks and
//! the integration tests in `tests/`: plain builders of the API's input
//! types and write contexts. Nothing here touches a database (seeding
//! through a store is the cases' `support.rs`).

use serde_json::json;
use uuid::Uuid;

use crate::types::*;
use chrono::Utc;

/// A human write with an actor id.
pub fn human() -> WriteContext {
    WriteContext::human(Some("tester".into()))
}

/// An AI write that names both its job and its workflow.
pub fn ai_ctx() -> WriteContext {
    WriteContext::ai(
        Some("model-x".into()),
        Some(Uuid::new_v4()),
        Some(Uuid::new_v4()),
    )
}

/// Every AI context the guard must refuse: a job or a workflow id missing.
pub fn silent_ai_contexts() -> Vec<WriteContext> {
    let id = || Some(Uuid::new_v4());
    vec![
        WriteContext::ai(Some("model-x".into()), id(), None),
        WriteContext::ai(Some("model-x".into()), None, id()),
        WriteContext::ai(None, None, None),
    ]
}

/// A document titled `title` in a workspace.
pub fn new_doc(workspace_id: &str, title: &str) -> NewDocument {
    NewDocument {
        workspace_id: workspace_id.into(),
        title: title.into(),
    }
}

/// A canvas titled `title` in a workspace.
pub fn new_canvas(workspace_id: &str, title: &str) -> NewCanvas {
    NewCanvas {
        workspace_id: workspace_id.into(),
        title: title.into(),
    }
}

/// A block for `doc` at `seq`, with the given id (generated when `None`).
pub fn new_block(doc: &str, seq: i64, id: Option<&str>) -> NewBlock {
    NewBlock {
        id: id.map(str::to_string),
        document_id: doc.into(),
        kind: "paragraph".into(),
        sequence: seq,
        raw_content: format!("block {seq}"),
        ..NewBlock::default()
    }
}

/// An update that changes only `raw_content`.
pub fn raw_update(text: &str) -> BlockUpdate {
    BlockUpdate {
        raw_content: Some(text.into()),
        ..BlockUpdate::default()
    }
}

/// A `note` node at (`x`, `y`) with no data.
pub fn node(id: &str, x: f64, y: f64) -> NewCanvasNode {
    NewCanvasNode {
        id: Some(id.into()),
        kind: "note".into(),
        position_x: x,
        position_y: y,
        data: None,
    }
}

/// A `link` edge from one node to another.
pub fn edge(id: &str, from: &str, to: &str) -> NewCanvasEdge {
    NewCanvasEdge {
        id: Some(id.into()),
        from_node_id: from.into(),
        to_node_id: to.into(),
        kind: "link".into(),
    }
}

/// A reference to a workspace, as a job's entity ref.
pub fn ws_ref(id: &str) -> EntityRef {
    EntityRef {
        entity_id: id.into(),
        entity_kind: "workspace".into(),
    }
}

/// A job of `kind` with the given refs, every other field default.
pub fn new_job(kind: JobKind, refs: Vec<EntityRef>) -> NewAiJob {
    let (profile_id, protocol_id) = contract_ids(kind);
    NewAiJob {
        job_kind: kind,
        profile_id: profile_id.into(),
        protocol_id: protocol_id.into(),
        entity_refs: refs,
        status_reason: "created".into(),
        ..NewAiJob::default()
    }
}

/// The profile and protocol ids that fit `kind` under Handshake's job
/// contract (`crate::job_contract`): what [`new_job`] gives each kind.
pub fn contract_ids(kind: JobKind) -> (&'static str, &'static str) {
    use crate::job_contract::{
        LOOM_PREVIEW_PROTOCOL, MEDIA_DOWNLOADER_PROTOCOLS, MICRO_TASK_EXECUTOR_V1,
    };
    match kind {
        JobKind::MicroTaskExecution => (MICRO_TASK_EXECUTOR_V1, MICRO_TASK_EXECUTOR_V1),
        JobKind::MediaDownloader => ("default", MEDIA_DOWNLOADER_PROTOCOLS[0]),
        JobKind::LoomPreviewGenerate => ("default", LOOM_PREVIEW_PROTOCOL),
        _ => ("default", "default"),
    }
}

/// A status update to `state` with nothing else set.
pub fn status_update(job_id: Uuid, state: JobState) -> JobStatusUpdate {
    JobStatusUpdate {
        job_id,
        state,
        error_message: None,
        status_reason: "x".into(),
        metrics: None,
        workflow_run_id: None,
        trace_id: None,
        job_outputs: None,
    }
}

/// A running `llm` node execution at `sequence`.
pub fn new_exec(run_id: Uuid, node_id: &str, sequence: i64) -> NewNodeExecution {
    NewNodeExecution {
        workflow_run_id: run_id,
        node_id: node_id.into(),
        node_type: "llm".into(),
        status: JobState::Running,
        sequence,
        input_payload: Some(json!({"node": node_id})),
        started_at: Utc::now(),
    }
}

/// Text of an ordinary paragraph, the content of [`ordinary_block`].
pub const PARAGRAPH: &str = "A paragraph of ordinary length: the storage layer should add almost \
                       nothing on top of the database's own cost.";

/// A block of ordinary size in `document_id` (filled in by
/// `replace_blocks` when empty).
pub fn ordinary_block(document_id: &str, sequence: i64) -> NewBlock {
    NewBlock {
        id: None,
        document_id: document_id.into(),
        kind: "paragraph".into(),
        sequence,
        raw_content: PARAGRAPH.into(),
        display_content: None,
        derived_content: Some(serde_json::json!({"words": 17, "lang": "en"})),
        sensitivity: None,
        exportable: None,
    }
}

/// A job that refers to one workspace (what the `wsid` filter finds).
pub fn workspace_job(workspace_id: &str) -> NewAiJob {
    NewAiJob {
        entity_refs: vec![EntityRef {
            entity_id: workspace_id.into(),
            entity_kind: "workspace".into(),
        }],
        ..NewAiJob::default()
    }
}

/// A graph of `nodes` nodes and `edges` edges, ids prefixed so that two
/// sides' graphs never share an id.
pub fn graph(prefix: &str, nodes: usize, edges: usize) -> (Vec<NewCanvasNode>, Vec<NewCanvasEdge>) {
    let node_id = |i: usize| format!("{prefix}-n{i}");
    let nodes_list = (0..nodes)
        .map(|i| NewCanvasNode {
            id: Some(node_id(i)),
            kind: "note".into(),
            position_x: i as f64 * 1.5,
            position_y: -(i as f64) / 3.0,
            data: Some(serde_json::json!({"label": format!("node {i}")})),
        })
        .collect();
    let edges_list = (0..edges)
        .map(|i| NewCanvasEdge {
            id: Some(format!("{prefix}-e{i}")),
            from_node_id: node_id(i % nodes.max(1)),
            to_node_id: node_id((i * 7 + 1) % nodes.max(1)),
            kind: "link".into(),
        })
        .collect();
    (nodes_list, edges_list)
}
