//! Canvases and their graphs: create, list, `update_canvas_graph`
//! (atomic replace, dangling edges, duplicate nodes), delete.

#[allow(unused_imports)]
use super::*;

pub(super) fn graph_of(h: &Harness, canvas: &str) -> CanvasGraph {
    h.store()
        .get_canvas_with_graph(canvas)
        .expect("get canvas graph")
}

/// Asserts that `update_canvas_graph` fails with `kind` and leaves the
/// canvas's graph exactly as it was.
#[track_caller]
pub(super) fn assert_graph_update_fails_unchanged(
    h: &Harness,
    canvas: &str,
    what: &str,
    nodes: Vec<NewCanvasNode>,
    edges: Vec<NewCanvasEdge>,
    kind: ErrorKind,
) {
    let before = graph_of(h, canvas);
    let result = h
        .store()
        .update_canvas_graph(&human(), canvas, nodes, edges);
    assert_fails(what, result, kind);
    assert_eq!(
        graph_of(h, canvas),
        before,
        "{what}: a failed update changed the graph"
    );
}

/// Asserts that one write stamped the canvas and every node and edge alike.
#[track_caller]
pub(super) fn assert_graph_stamped_once(graph: &CanvasGraph) {
    let stamp = &graph.canvas.provenance;
    assert!(
        graph.nodes.iter().all(|n| &n.provenance == stamp),
        "node provenance"
    );
    assert!(
        graph.edges.iter().all(|e| &e.provenance == stamp),
        "edge provenance"
    );
}

pub(super) fn node_ids(graph: &CanvasGraph) -> Vec<&str> {
    graph.nodes.iter().map(|n| n.id.as_str()).collect()
}

pub(super) fn edge_ids(graph: &CanvasGraph) -> Vec<&str> {
    graph.edges.iter().map(|e| e.id.as_str()).collect()
}

/// A new canvas has an empty graph, lists oldest first, and reads back with its
/// graph, nodes and edges by id.
pub fn canvas_create_list_and_get_graph(h: &Harness) {
    let ws = seed_workspace(h);
    let other_ws = seed_workspace_named(h, "Other");
    seed_canvas_in(h, &other_ws.id, "Elsewhere");
    let created: Vec<Canvas> = ["Board", "alpha board"]
        .iter()
        .map(|title| {
            let canvas = seed_canvas_in(h, &ws.id, title);
            assert_eq!(
                (canvas.title.as_str(), canvas.workspace_id.as_str()),
                (*title, ws.id.as_str())
            );
            assert!(
                Uuid::parse_str(&canvas.id).is_ok(),
                "generated id: {}",
                canvas.id
            );
            assert_provenance(&canvas.provenance, &human());
            let graph = graph_of(h, &canvas.id);
            assert_eq!(graph.canvas, canvas);
            assert!(graph.nodes.is_empty() && graph.edges.is_empty());
            canvas
        })
        .collect();
    let expected = sorted_by_created(&created, |c| (c.created_at, c.id.clone()));
    assert_eq!(h.store().list_canvases(&ws.id).expect("list"), expected);
    assert!(h
        .store()
        .list_canvases("no-such-ws")
        .expect("list none")
        .is_empty());
    let canvas = &created[0];
    let graph = seed_graph(h, &canvas.id);
    assert_eq!(graph_of(h, &canvas.id), graph);
    assert_eq!(node_ids(&graph), ["n1", "n2", "n3"]);
    assert_eq!(edge_ids(&graph), ["e1", "e2"]);
    let n3 = &graph.nodes[2];
    assert_eq!(
        (n3.kind.as_str(), n3.position_x, n3.position_y),
        ("note", -3.5, 4.25)
    );
    assert_eq!(n3.data, json!({}), "node data defaults to {{}}");
    assert!(graph.nodes.iter().all(|n| n.canvas_id == canvas.id));
    let e1 = &graph.edges[0];
    assert_eq!(
        (
            e1.from_node_id.as_str(),
            e1.to_node_id.as_str(),
            e1.kind.as_str()
        ),
        ("n1", "n2", "link")
    );
    assert!(graph.edges.iter().all(|e| e.canvas_id == canvas.id));
}

/// `update_canvas_graph` replaces the whole graph, generates missing ids (UUID
/// v7) and stamps the canvas.
pub fn canvas_update_graph_replaces_graph(h: &Harness) {
    let canvas = seed_canvas(h);
    let old = seed_graph(h, &canvas.id);
    let ctx = ai_ctx();
    let mut with_data = node("n9", 10.0, -10.0);
    with_data.data = Some(json!({"label": "nine", "tags": [1, 2]}));
    let generated = NewCanvasNode {
        id: None,
        ..node("unused", 0.5, 0.5)
    };
    let nodes = vec![with_data, node("n1", 7.0, 8.0), generated];
    let edges = vec![
        edge("e7", "n1", "n1"),
        NewCanvasEdge {
            id: None,
            ..edge("unused", "n9", "n1")
        },
    ];
    let graph = h
        .store()
        .update_canvas_graph(&ctx, &canvas.id, nodes, edges)
        .expect("update graph");
    assert_eq!(graph_of(h, &canvas.id), graph);
    let mut sorted_nodes = node_ids(&graph);
    sorted_nodes.sort_unstable();
    assert_eq!(node_ids(&graph), sorted_nodes, "nodes ordered by id");
    let mut sorted_edges = edge_ids(&graph);
    sorted_edges.sort_unstable();
    assert_eq!(edge_ids(&graph), sorted_edges, "edges ordered by id");
    assert_eq!((graph.nodes.len(), graph.edges.len()), (3, 2));
    assert!(!node_ids(&graph).contains(&"n2") && !node_ids(&graph).contains(&"n3"));
    assert!(!edge_ids(&graph).contains(&"e1") && !edge_ids(&graph).contains(&"e2"));
    let generated_ids: Vec<&str> = node_ids(&graph)
        .into_iter()
        .chain(edge_ids(&graph))
        .filter(|id| !["n1", "n9", "e7"].contains(id))
        .collect();
    assert_eq!(
        generated_ids.len(),
        2,
        "one generated node id and one edge id"
    );
    for id in generated_ids {
        let uuid = Uuid::parse_str(id).expect("generated id is a UUID");
        assert_eq!(uuid.get_version_num(), 7, "generated ids are UUID v7");
    }
    let n9 = graph.nodes.iter().find(|n| n.id == "n9").expect("n9");
    assert_eq!(n9.data, json!({"label": "nine", "tags": [1, 2]}));
    assert_provenance(&graph.canvas.provenance, &ctx);
    assert_ne!(
        graph.canvas.provenance.edit_event_id,
        old.canvas.provenance.edit_event_id
    );
    assert!(graph.canvas.updated_at >= old.canvas.updated_at);
    assert_eq!(graph.canvas.created_at, old.canvas.created_at);
    assert_graph_stamped_once(&graph);
    let empty = h
        .store()
        .update_canvas_graph(&human(), &canvas.id, Vec::new(), Vec::new())
        .expect("clear graph");
    assert!(empty.nodes.is_empty() && empty.edges.is_empty());
    assert_eq!(graph_of(h, &canvas.id), empty);
}

/// An edge to a node not in the update is `Validation` and changes nothing.
pub fn canvas_update_graph_dangling_edge_changes_nothing(h: &Harness) {
    let canvas = seed_canvas(h);
    seed_graph(h, &canvas.id);
    let cases = [
        ("edge to an unknown node", edge("e9", "a", "zz")),
        ("edge from an unknown node", edge("e9", "zz", "a")),
        ("edge to an old node not passed", edge("e9", "a", "n1")),
    ];
    for (what, bad) in cases {
        let nodes = vec![node("a", 0.0, 0.0), node("b", 1.0, 1.0)];
        let edges = vec![edge("ok", "a", "b"), bad];
        assert_graph_update_fails_unchanged(
            h,
            &canvas.id,
            what,
            nodes,
            edges,
            ErrorKind::Validation,
        );
    }
}

/// A node or edge id given twice is `Conflict` and changes nothing, here or on
/// other canvases.
pub fn canvas_update_graph_duplicate_node_changes_nothing(h: &Harness) {
    let canvas = seed_canvas(h);
    seed_graph(h, &canvas.id);
    let other = seed_canvas_in(h, &canvas.workspace_id, "Other");
    h.store()
        .update_canvas_graph(
            &human(),
            &other.id,
            vec![node("taken", 0.0, 0.0)],
            Vec::new(),
        )
        .expect("graph of the other canvas");
    let other_before = graph_of(h, &other.id);
    let cases = [
        (
            "same node id twice",
            vec![node("x", 0.0, 0.0), node("x", 1.0, 1.0)],
            Vec::new(),
        ),
        (
            "node id of another canvas",
            vec![node("x", 0.0, 0.0), node("taken", 1.0, 1.0)],
            Vec::new(),
        ),
        (
            "same edge id twice",
            vec![node("x", 0.0, 0.0), node("y", 1.0, 1.0)],
            vec![edge("dup", "x", "y"), edge("dup", "y", "x")],
        ),
    ];
    for (what, nodes, edges) in cases {
        assert_graph_update_fails_unchanged(h, &canvas.id, what, nodes, edges, ErrorKind::Conflict);
    }
    assert_eq!(graph_of(h, &other.id), other_before);
}

/// Reading, updating or deleting an unknown canvas is `NotFound`.
pub fn canvas_get_missing_is_not_found(h: &Harness) {
    let canvas = seed_canvas(h);
    let before = graph_of(h, &canvas.id);
    expect_kind(
        h.store().get_canvas_with_graph("no-such-canvas"),
        ErrorKind::NotFound,
    );
    let nodes = vec![node("m1", 0.0, 0.0)];
    expect_kind(
        h.store()
            .update_canvas_graph(&human(), "no-such-canvas", nodes, Vec::new()),
        ErrorKind::NotFound,
    );
    expect_kind(
        h.store()
            .update_canvas_graph(&human(), "no-such-canvas", Vec::new(), Vec::new()),
        ErrorKind::NotFound,
    );
    expect_kind(
        h.store().delete_canvas(&human(), "no-such-canvas"),
        ErrorKind::NotFound,
    );
    assert_eq!(graph_of(h, &canvas.id), before);
    // The node of the refused update was not written anywhere.
    h.store()
        .update_canvas_graph(&human(), &canvas.id, vec![node("m1", 0.0, 0.0)], Vec::new())
        .expect("m1 is still free");
}

/// `delete_canvas` removes the canvas with its graph and leaves other canvases
/// alone.
pub fn canvas_delete_removes_graph(h: &Harness) {
    let canvas = seed_canvas(h);
    let kept = seed_canvas_in(h, &canvas.workspace_id, "Kept");
    seed_graph(h, &canvas.id);
    h.store()
        .delete_canvas(&human(), &canvas.id)
        .expect("delete canvas");
    expect_kind(
        h.store().get_canvas_with_graph(&canvas.id),
        ErrorKind::NotFound,
    );
    expect_kind(
        h.store().delete_canvas(&human(), &canvas.id),
        ErrorKind::NotFound,
    );
    assert_eq!(
        h.store().list_canvases(&canvas.workspace_id).expect("list"),
        vec![kept.clone()]
    );
    // Node and edge ids are unique across canvases: reusing them proves the
    // old graph is gone.
    let graph = seed_graph(h, &kept.id);
    assert_eq!(node_ids(&graph), ["n1", "n2", "n3"]);
}

/// A blank title or an unknown workspace is `Validation`, nothing written.
pub fn canvas_blank_title_and_missing_workspace_are_validation(h: &Harness) {
    let ws = seed_workspace(h);
    let attempts = [
        ("empty title", ws.id.as_str(), ""),
        ("blank title", ws.id.as_str(), " \t\n"),
        ("unknown workspace", "no-such-workspace", "Board"),
        ("empty workspace id", "", "Board"),
    ];
    for (what, workspace_id, title) in attempts {
        let result = h
            .store()
            .create_canvas(&human(), new_canvas(workspace_id, title));
        assert_fails(what, result, ErrorKind::Validation);
    }
    assert!(h.store().list_canvases(&ws.id).expect("list").is_empty());
    assert!(h
        .store()
        .list_canvases("no-such-workspace")
        .expect("list")
        .is_empty());
}
