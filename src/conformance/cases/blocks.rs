//! Blocks one at a time, and `replace_blocks` of whole documents
//! (atomicity, validation, statement chunking; the canvas graph's chunking
//! cases sit here beside it, sharing its row count).

#[allow(unused_imports)]
use super::*;

/// A block created with only the required fields gets a UUID v7 and the
/// documented defaults.
pub fn block_create_defaults(h: &Harness) {
    let doc = seed_document(h);
    let block = add_block(h, &doc.id, 7, None);
    let id = Uuid::parse_str(&block.id).expect("generated block id is a UUID");
    assert_eq!(id.get_version_num(), 7, "generated id must be a UUID v7");
    assert_eq!(block.document_id, doc.id);
    assert_eq!(block.sequence, 7);
    assert_eq!(block.display_content, block.raw_content);
    assert_eq!(block.derived_content, json!({}));
    assert_eq!(block.exportable, Some(true));
    assert_eq!(block.sensitivity, None);
    assert_eq!(block.created_at, block.updated_at);
    assert_provenance(&block.provenance, &human());
    assert_eq!(h.store().get_block(&block.id).expect("get"), block);
    let second = add_block(h, &doc.id, 7, None);
    assert_ne!(second.id, block.id, "generated ids must differ");
    assert_ne!(
        second.provenance.edit_event_id,
        block.provenance.edit_event_id
    );
}

/// A block with every optional field given.
pub(super) fn full_block(doc: &str, id: &str) -> NewBlock {
    NewBlock {
        id: Some(id.into()),
        document_id: doc.into(),
        kind: "heading".into(),
        sequence: 42,
        raw_content: "# Raw".into(),
        display_content: Some("Shown".into()),
        derived_content: Some(json!({"links": ["a", "b"], "level": 1, "meta": {"x": null}})),
        sensitivity: Some("high".into()),
        exportable: Some(false),
    }
}

/// A block created with every field given keeps each of them.
pub fn block_create_keeps_given_values(h: &Harness) {
    let doc = seed_document(h);
    let given = full_block(&doc.id, "given-id");
    let block = h
        .store()
        .create_block(&human(), given.clone())
        .expect("create");
    assert_eq!(Some(block.id.clone()), given.id);
    assert_eq!(block.kind, given.kind);
    assert_eq!(block.sequence, given.sequence);
    assert_eq!(block.raw_content, given.raw_content);
    assert_eq!(Some(block.display_content.clone()), given.display_content);
    assert_eq!(Some(block.derived_content.clone()), given.derived_content);
    assert_eq!(block.sensitivity, given.sensitivity);
    assert_eq!(block.exportable, given.exportable);
    assert_eq!(h.store().get_block("given-id").expect("get"), block);
    assert_eq!(blocks_of(h, &doc.id), vec![block]);
}

/// `get_blocks` orders by `sequence`, then id.
pub fn block_get_blocks_ordered_by_sequence_then_id(h: &Harness) {
    let doc = seed_document(h);
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    add_block(h, &other.id, 0, Some("other-doc-block"));
    let specs: [(i64, &str); 7] = [
        (2, "b"),
        (1, "z"),
        (2, "a"),
        (-5, "m"),
        (1, "c"),
        (10, "a2"),
        (2, "B"),
    ];
    for (seq, id) in specs {
        add_block(h, &doc.id, seq, Some(id));
    }
    let mut expected: Vec<(i64, String)> = specs.iter().map(|(s, i)| (*s, i.to_string())).collect();
    expected.sort();
    let actual: Vec<(i64, String)> = blocks_of(h, &doc.id)
        .into_iter()
        .map(|b| (b.sequence, b.id))
        .collect();
    assert_eq!(actual, expected);
}

/// `update_block` changes the fields given, keeps the rest and `created_at`,
/// and stamps the writer's provenance.
pub fn block_update_changes_fields_and_provenance(h: &Harness) {
    let doc = seed_document(h);
    let before = h
        .store()
        .create_block(&human(), full_block(&doc.id, "upd"))
        .expect("create");
    pause();
    let ctx = ai_ctx();
    let update = BlockUpdate {
        raw_content: Some("new raw".into()),
        sequence: Some(-3),
        derived_content: Some(json!({"rewritten": true})),
        ..BlockUpdate::default()
    };
    let after = h.store().update_block(&ctx, "upd", update).expect("update");
    assert_eq!(after.raw_content, "new raw");
    assert_eq!(after.sequence, -3);
    assert_eq!(after.derived_content, json!({"rewritten": true}));
    assert_eq!(after.kind, before.kind, "kind untouched");
    assert_eq!(
        after.display_content, before.display_content,
        "display untouched"
    );
    assert_eq!(
        after.sensitivity, before.sensitivity,
        "sensitivity untouched"
    );
    assert_eq!(after.exportable, before.exportable, "exportable untouched");
    assert_eq!(after.created_at, before.created_at);
    assert!(after.updated_at >= before.updated_at);
    assert_provenance(&after.provenance, &ctx);
    assert_ne!(
        after.provenance.edit_event_id,
        before.provenance.edit_event_id
    );
    assert_eq!(h.store().get_block("upd").expect("get"), after);
    let second = h
        .store()
        .update_block(
            &human(),
            "upd",
            BlockUpdate {
                kind: Some("quote".into()),
                display_content: Some("shown again".into()),
                sensitivity: Some("low".into()),
                exportable: Some(true),
                ..BlockUpdate::default()
            },
        )
        .expect("second update");
    assert_eq!(
        (second.kind.as_str(), second.display_content.as_str()),
        ("quote", "shown again")
    );
    assert_eq!(
        (second.sensitivity.as_deref(), second.exportable),
        (Some("low"), Some(true))
    );
    assert_eq!(second.raw_content, "new raw", "earlier update kept");
    assert_eq!(second.sequence, -3);
    assert_provenance(&second.provenance, &human());
    assert_ne!(
        second.provenance.edit_event_id,
        after.provenance.edit_event_id
    );
    assert_eq!(h.store().get_block("upd").expect("get"), second);
}

/// Updating or deleting an unknown block is `NotFound` and changes nothing.
pub fn block_update_missing_is_not_found(h: &Harness) {
    let doc = seed_document(h);
    let block = add_block(h, &doc.id, 1, Some("present"));
    let update = BlockUpdate {
        raw_content: Some("x".into()),
        ..BlockUpdate::default()
    };
    expect_kind(
        h.store().update_block(&human(), "missing", update),
        ErrorKind::NotFound,
    );
    expect_kind(
        h.store()
            .update_block(&human(), "missing", BlockUpdate::default()),
        ErrorKind::NotFound,
    );
    expect_kind(h.store().get_block("missing"), ErrorKind::NotFound);
    assert_eq!(blocks_of(h, &doc.id), vec![block]);
}

/// `delete_block` removes one block; deleting it again, or an unknown id, is
/// `NotFound`.
pub fn block_delete_and_delete_missing(h: &Harness) {
    let doc = seed_document(h);
    let gone = add_block(h, &doc.id, 1, Some("gone"));
    let kept = add_block(h, &doc.id, 2, Some("kept"));
    h.store().delete_block(&human(), &gone.id).expect("delete");
    expect_kind(h.store().get_block(&gone.id), ErrorKind::NotFound);
    assert_eq!(blocks_of(h, &doc.id), vec![kept]);
    expect_kind(
        h.store().delete_block(&human(), &gone.id),
        ErrorKind::NotFound,
    );
    expect_kind(
        h.store().delete_block(&human(), "never-existed"),
        ErrorKind::NotFound,
    );
}

/// A block id used twice is `Conflict`; the first block stays as it was.
pub fn block_duplicate_id_is_conflict(h: &Harness) {
    let doc = seed_document(h);
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    let original = add_block(h, &doc.id, 1, Some("dup"));
    for target in [&doc.id, &other.id] {
        let mut again = new_block(target, 9, Some("dup"));
        again.raw_content = "second".into();
        expect_kind(h.store().create_block(&human(), again), ErrorKind::Conflict);
    }
    assert_eq!(h.store().get_block("dup").expect("get"), original);
    assert_eq!(blocks_of(h, &doc.id), vec![original]);
    assert!(blocks_of(h, &other.id).is_empty());
}

/// A block for an unknown (or empty) document id is `Validation`, nothing
/// written.
pub fn block_missing_document_is_validation(h: &Harness) {
    let doc = seed_document(h);
    for document_id in ["no-such-document", ""] {
        let result = h
            .store()
            .create_block(&human(), new_block(document_id, 1, Some("orphan")));
        expect_kind(result, ErrorKind::Validation);
        expect_kind(h.store().get_block("orphan"), ErrorKind::NotFound);
    }
    assert!(blocks_of(h, &doc.id).is_empty());
}

// ---------------------------------------------------------------------------
// replace_blocks

pub(super) fn blocks_of(h: &Harness, doc: &str) -> Vec<Block> {
    h.store().get_blocks(doc).expect("get blocks")
}

/// Asserts that `replace_blocks` with `items` fails with `kind` and leaves
/// the document's blocks exactly as they were.
#[track_caller]
pub(super) fn assert_replace_fails_unchanged(
    h: &Harness,
    doc: &str,
    what: &str,
    items: Vec<NewBlock>,
    kind: ErrorKind,
) {
    let before = blocks_of(h, doc);
    assert_fails(what, h.store().replace_blocks(&human(), doc, items), kind);
    assert_eq!(
        blocks_of(h, doc),
        before,
        "{what}: a failed replace_blocks changed blocks"
    );
}

/// A document holding the blocks `old-1`, `old-2`, `old-3`.
pub(super) fn seed_document_with_blocks(h: &Harness) -> Document {
    let doc = seed_document(h);
    for (seq, id) in [(1, "old-1"), (2, "old-2"), (3, "old-3")] {
        add_block(h, &doc.id, seq, Some(id));
    }
    doc
}

/// `replace_blocks` removes the document's old blocks, writes the new ones in
/// order with the writer's provenance, and touches no other document.
pub fn replace_blocks_replaces_all(h: &Harness) {
    let doc = seed_document_with_blocks(h);
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    let untouched = add_block(h, &other.id, 1, Some("other-1"));
    let old = blocks_of(h, &doc.id);
    let ctx = ai_ctx();
    let items = vec![
        new_block(&doc.id, 5, Some("new-b")),
        new_block("ignored-document-id", 0, None),
        full_block(&doc.id, "new-a"),
        new_block(&doc.id, 5, Some("new-a2")),
        new_block(&doc.id, 2, Some("old-2")),
    ];
    let returned = h
        .store()
        .replace_blocks(&ctx, &doc.id, items)
        .expect("replace blocks");
    assert_eq!(returned.len(), 5);
    let mut order: Vec<(i64, String)> = returned
        .iter()
        .map(|b| (b.sequence, b.id.clone()))
        .collect();
    order.sort();
    let got: Vec<(i64, String)> = returned
        .iter()
        .map(|b| (b.sequence, b.id.clone()))
        .collect();
    assert_eq!(got, order, "returned blocks ordered by sequence then id");
    for block in &returned {
        assert_eq!(block.document_id, doc.id);
        assert_provenance(&block.provenance, &ctx);
        assert!(old
            .iter()
            .all(|o| o.provenance.edit_event_id != block.provenance.edit_event_id));
    }
    assert_eq!(blocks_of(h, &doc.id), returned);
    for id in ["old-1", "old-3"] {
        expect_kind(h.store().get_block(id), ErrorKind::NotFound);
    }
    assert_eq!(blocks_of(h, &other.id), vec![untouched]);
    let emptied = h
        .store()
        .replace_blocks(&human(), &doc.id, Vec::new())
        .expect("replace with nothing");
    assert!(emptied.is_empty());
    assert!(blocks_of(h, &doc.id).is_empty());
}

/// `replace_blocks` with an id given twice, or one another document holds, is
/// `Conflict` and changes nothing.
pub fn replace_blocks_duplicate_id_changes_nothing(h: &Harness) {
    let doc = seed_document_with_blocks(h);
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    let foreign = add_block(h, &other.id, 1, Some("foreign"));
    let twice = vec![
        new_block(&doc.id, 1, Some("x")),
        new_block(&doc.id, 2, Some("x")),
    ];
    assert_replace_fails_unchanged(h, &doc.id, "same id twice", twice, ErrorKind::Conflict);
    let clash = vec![
        new_block(&doc.id, 1, Some("fresh")),
        new_block(&doc.id, 2, Some("foreign")),
    ];
    assert_replace_fails_unchanged(
        h,
        &doc.id,
        "id of another document",
        clash,
        ErrorKind::Conflict,
    );
    assert_eq!(blocks_of(h, &other.id), vec![foreign]);
    expect_kind(h.store().get_block("fresh"), ErrorKind::NotFound);
    assert_eq!(blocks_of(h, &doc.id).len(), 3);
}

/// Rows of the bulk cases. Large enough to need several multi-row INSERTs
/// where a backend sends them so (SQLite binds at most 32,766 parameters
/// per statement), and above PostgreSQL's `COPY_FROM_ROWS`, so that there
/// they go as one binary COPY per table.
pub(super) const BULK_ROWS: usize = 9_000;

/// A replace of thousands of blocks is written whole, in order, and a
/// failure in its last rows (its last INSERT, or the end of the COPY)
/// leaves the old blocks untouched.
pub fn replace_blocks_bulk_spans_statement_chunks(h: &Harness) {
    let doc = seed_document(h);
    let items = |tag: &str| -> Vec<NewBlock> {
        (0..BULK_ROWS)
            .map(|i| new_block(&doc.id, i as i64, Some(&format!("{tag}-{i:05}"))))
            .collect()
    };
    let written = h
        .store()
        .replace_blocks(&human(), &doc.id, items("first"))
        .expect("replace with many blocks");
    assert_eq!(written.len(), BULK_ROWS);
    assert_eq!(blocks_of(h, &doc.id), written);
    // The last block clashes with a block of another document: the whole
    // replace fails after earlier chunks were inserted, and rolls back.
    let other = seed_document_in(h, &doc.workspace_id, "Other");
    add_block(h, &other.id, 0, Some("clash"));
    let mut second = items("second");
    second.last_mut().expect("non-empty").id = Some("clash".into());
    expect_kind(
        h.store().replace_blocks(&human(), &doc.id, second),
        ErrorKind::Conflict,
    );
    assert_eq!(blocks_of(h, &doc.id), written, "nothing changed");
}

/// A chain of [`BULK_ROWS`] nodes, `{tag}n00000` to `{tag}n08999`, and
/// the edges between neighbours.
fn bulk_graph(tag: &str) -> (Vec<NewCanvasNode>, Vec<NewCanvasEdge>) {
    let node_id = |i: usize| format!("{tag}n{i:05}");
    let nodes = (0..BULK_ROWS)
        .map(|i| node(&node_id(i), i as f64, -(i as f64)))
        .collect();
    let edges = (1..BULK_ROWS)
        .map(|i| edge(&format!("{tag}e{i:05}"), &node_id(i - 1), &node_id(i)))
        .collect();
    (nodes, edges)
}

/// A graph of thousands of nodes and edges round-trips whole.
pub fn canvas_update_graph_bulk_spans_statement_chunks(h: &Harness) {
    let canvas = seed_canvas(h);
    let (nodes, edges) = bulk_graph("");
    let written = h
        .store()
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("large graph");
    assert_eq!(written.nodes.len(), BULK_ROWS);
    assert_eq!(written.edges.len(), BULK_ROWS - 1);
    assert_eq!(graph_of(h, &canvas.id), written);
}

/// A graph of thousands of nodes and edges whose last node, or last edge,
/// takes the id of another canvas's fails whole (a `Conflict` in the last
/// INSERT, or at the end of the COPY): the graph before it stays, nodes
/// and edges alike.
pub fn canvas_update_graph_bulk_failure_in_last_rows_changes_nothing(h: &Harness) {
    let canvas = seed_canvas(h);
    let (nodes, edges) = bulk_graph("");
    h.store()
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("large graph");
    let other = seed_canvas_in(h, &canvas.workspace_id, "Other");
    h.store()
        .update_canvas_graph(
            &human(),
            &other.id,
            vec![node("taken-a", 0.0, 0.0), node("taken-b", 1.0, 1.0)],
            vec![edge("taken-e", "taken-a", "taken-b")],
        )
        .expect("graph of the other canvas");
    let other_before = graph_of(h, &other.id);

    let (mut nodes, mut edges) = bulk_graph("second-");
    nodes.last_mut().expect("non-empty").id = Some("taken-a".into());
    edges.last_mut().expect("non-empty").to_node_id = "taken-a".into();
    assert_graph_update_fails_unchanged(
        h,
        &canvas.id,
        "last node with another canvas's id",
        nodes,
        edges,
        ErrorKind::Conflict,
    );
    let (nodes, mut edges) = bulk_graph("second-");
    edges.last_mut().expect("non-empty").id = Some("taken-e".into());
    assert_graph_update_fails_unchanged(
        h,
        &canvas.id,
        "last edge with another canvas's id",
        nodes,
        edges,
        ErrorKind::Conflict,
    );
    assert_eq!(graph_of(h, &other.id), other_before);
}

pub(super) fn invalid_blocks(doc: &str) -> Vec<(&'static str, NewBlock)> {
    let edits: [Edit<NewBlock>; 9] = [
        ("NUL in raw_content", |b| b.raw_content = NUL.into()),
        ("NUL in display_content", |b| {
            b.display_content = Some(NUL.into())
        }),
        ("NUL in kind", |b| b.kind = NUL.into()),
        ("NUL in sensitivity", |b| b.sensitivity = Some(NUL.into())),
        ("NUL in id", |b| b.id = Some(NUL.into())),
        ("empty id", |b| b.id = Some(String::new())),
        ("NUL in JSON string", |b| {
            b.derived_content = Some(json!({"k": NUL}))
        }),
        ("NUL in JSON key", |b| {
            b.derived_content = Some(json!({NUL: 1}))
        }),
        ("JSON too deep", |b| {
            b.derived_content = Some(deep_json(101))
        }),
    ];
    edits
        .into_iter()
        .map(|(what, edit)| (what, edited(new_block(doc, 1, Some("bad")), edit)))
        .collect()
}

/// `depth` nested arrays around a number.
pub(super) fn deep_json(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| Value::Array(vec![inner]))
}

/// `replace_blocks` with one invalid item is `Validation` and changes nothing.
pub fn replace_blocks_invalid_item_changes_nothing(h: &Harness) {
    let doc = seed_document_with_blocks(h);
    for (what, bad) in invalid_blocks(&doc.id) {
        let items = vec![new_block(&doc.id, 0, Some("good")), bad];
        assert_replace_fails_unchanged(h, &doc.id, what, items, ErrorKind::Validation);
    }
    expect_kind(h.store().get_block("good"), ErrorKind::NotFound);
}

/// `replace_blocks` on an unknown document is `NotFound`, even with no blocks.
pub fn replace_blocks_missing_document_is_not_found(h: &Harness) {
    let doc = seed_document_with_blocks(h);
    let before = blocks_of(h, &doc.id);
    let items = vec![new_block("no-such-document", 1, Some("orphan"))];
    expect_kind(
        h.store()
            .replace_blocks(&human(), "no-such-document", items),
        ErrorKind::NotFound,
    );
    expect_kind(
        h.store()
            .replace_blocks(&human(), "no-such-document", Vec::new()),
        ErrorKind::NotFound,
    );
    expect_kind(h.store().get_block("orphan"), ErrorKind::NotFound);
    assert_eq!(blocks_of(h, &doc.id), before);
}
