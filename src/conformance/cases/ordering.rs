//! Ordering: text ids sort bytewise on every backend.

#[allow(unused_imports)]
use super::*;

/// Text ids order bytewise on every list, whatever the collation.
pub fn ordering_text_ids_are_bytewise(h: &Harness) {
    let ids = [
        "b", "B", "a", "_", "é", "Z", "aa", "a b", "A", "0", "~", "ä", "😀", "Ω", "a-", "ab",
    ];
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();
    let doc = seed_document(h);
    let blocks: Vec<NewBlock> = ids
        .iter()
        .map(|id| new_block(&doc.id, 0, Some(id)))
        .collect();
    let returned = h
        .store()
        .replace_blocks(&human(), &doc.id, blocks)
        .expect("replace blocks");
    let returned_ids: Vec<&str> = returned.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(returned_ids, expected, "replace_blocks result order");
    let read = blocks_of(h, &doc.id);
    assert_eq!(
        read.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        expected,
        "get_blocks order"
    );
    let canvas = seed_canvas_in(h, &doc.workspace_id, "ids");
    let nodes = ids.iter().map(|id| node(id, 0.0, 0.0)).collect();
    let edges = ids.iter().map(|id| edge(id, id, "b")).collect();
    let written = h
        .store()
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("graph with text ids");
    let graph = graph_of(h, &canvas.id);
    assert_eq!(graph, written);
    assert_eq!(node_ids(&graph), expected, "node order");
    assert_eq!(edge_ids(&graph), expected, "edge order");
}
