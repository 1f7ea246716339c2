//! The mutation guard (`HSK-403-SILENT-EDIT`) and the provenance every
//! content write leaves.

#[allow(unused_imports)]
use super::*;

/// Every content write of the API.
pub(super) const CONTENT_WRITES: [&str; 11] = [
    "create_workspace",
    "create_document",
    "create_block",
    "update_block",
    "delete_block",
    "replace_blocks",
    "create_canvas",
    "update_canvas_graph",
    "delete_canvas",
    "delete_document",
    "delete_workspace",
];

/// An AI write without its job and workflow is `Guard` (`HSK-403-SILENT-EDIT`)
/// and writes nothing.
pub fn guard_refuses_silent_ai_edits_and_writes_nothing(h: &Harness) {
    let (ws, docs, canvas) = seed_content(h, "guarded");
    let (ws, doc, canvas) = (ws.id.as_str(), docs[0].id.as_str(), canvas.id.as_str());
    let block = "guarded-block-0-0";
    let before = content_view(h, ws);
    let s = h.store();
    let write = |what: &str, c: &WriteContext| -> StorageResult<()> {
        match what {
            "create_workspace" => s
                .create_workspace(c, NewWorkspace { name: "w".into() })
                .map(drop),
            "create_document" => s.create_document(c, new_doc(ws, "t")).map(drop),
            "create_block" => s
                .create_block(c, new_block(doc, 9, Some("silent")))
                .map(drop),
            "update_block" => s.update_block(c, block, raw_update("x")).map(drop),
            "delete_block" => s.delete_block(c, block),
            "replace_blocks" => s
                .replace_blocks(c, doc, vec![new_block(doc, 1, None)])
                .map(drop),
            "create_canvas" => s.create_canvas(c, new_canvas(ws, "c")).map(drop),
            "update_canvas_graph" => {
                let nodes = vec![node("silent", 0.0, 0.0)];
                s.update_canvas_graph(c, canvas, nodes, Vec::new())
                    .map(drop)
            }
            "delete_canvas" => s.delete_canvas(c, canvas),
            "delete_document" => s.delete_document(c, doc),
            "delete_workspace" => s.delete_workspace(c, ws),
            other => unreachable!("no write named {other}"),
        }
    };
    for ctx in silent_ai_contexts() {
        for what in CONTENT_WRITES {
            let result = write(what, &ctx);
            assert!(
                matches!(&result, Err(StorageError::Guard(m)) if m.contains("HSK-403-SILENT-EDIT")),
                "{what} with {ctx:?}: expected a Guard error, got {result:?}"
            );
        }
        expect_guard(s.validate_write_with_guard(&ctx, doc));
    }
    assert_eq!(
        content_view(h, ws),
        before,
        "a refused write changed something"
    );
    assert_eq!(s.list_workspaces().expect("list").len(), 1);
    expect_kind(s.get_block("silent"), ErrorKind::NotFound);
    // The same writes with both ids are accepted.
    for what in CONTENT_WRITES {
        write(what, &ai_ctx()).unwrap_or_else(|e| panic!("{what} with both ids: {e:?}"));
    }
    assert_eq!(
        s.get_workspace(ws).expect("get"),
        None,
        "the last write deleted it"
    );
}

/// An accepted AI write leaves its actor, job and workflow on every row it
/// touches.
pub fn guard_records_ai_provenance(h: &Harness) {
    let ctx = ai_ctx();
    let store = h.store();
    let ws = seed_workspace_as(h, &ctx, "by ai");
    let doc = seed_document_as(h, &ctx, &ws.id, "by ai");
    let block = store
        .create_block(&ctx, new_block(&doc.id, 1, Some("ai-block")))
        .expect("ai creates block");
    let updated = store
        .update_block(&ctx, "ai-block", raw_update("ai text"))
        .expect("ai updates block");
    let replaced = store
        .replace_blocks(&ctx, &doc.id, vec![new_block(&doc.id, 2, Some("ai-2"))])
        .expect("ai replaces blocks");
    let canvas = seed_canvas_as(h, &ctx, &ws.id, "by ai");
    let graph = seed_graph_with(h, &ctx, &canvas.id);
    let stamps = [
        &ws.provenance,
        &doc.provenance,
        &block.provenance,
        &updated.provenance,
        &replaced[0].provenance,
        &canvas.provenance,
        &graph.canvas.provenance,
    ];
    for p in stamps {
        assert_provenance(p, &ctx);
    }
    let events: BTreeSet<Uuid> = stamps.iter().map(|p| p.edit_event_id).collect();
    assert_eq!(
        events.len(),
        stamps.len(),
        "every write has its own edit event id"
    );
    assert_graph_stamped_once(&graph);
    assert_eq!(
        store.get_workspace(&ws.id).expect("get ws").as_ref(),
        Some(&ws)
    );
    // replace_blocks stamps the document it rewrites.
    let doc_now = store.get_document(&doc.id).expect("get doc");
    assert_eq!(doc_now.provenance, replaced[0].provenance);
    assert_eq!((&doc_now.id, &doc_now.title), (&doc.id, &doc.title));
    assert_eq!(blocks_of(h, &doc.id), replaced);
    assert_eq!(graph_of(h, &canvas.id), graph);
    store
        .delete_document(&ctx, &doc.id)
        .expect("ai deletes document");
    store
        .delete_canvas(&ctx, &canvas.id)
        .expect("ai deletes canvas");
    store
        .delete_workspace(&ctx, &ws.id)
        .expect("ai deletes workspace");
    assert!(store.list_workspaces().expect("list").is_empty());
}

/// [`seed_graph`]'s graph written with `ctx`.
pub(super) fn seed_graph_with(h: &Harness, ctx: &WriteContext, canvas: &str) -> CanvasGraph {
    h.store()
        .update_canvas_graph(
            ctx,
            canvas,
            vec![
                node("n1", 0.0, 0.0),
                node("n2", 1.0, 2.0),
                node("n3", -3.5, 4.25),
            ],
            vec![edge("e1", "n1", "n2"), edge("e2", "n2", "n3")],
        )
        .expect("write canvas graph")
}

/// `validate_write_with_guard` returns the write's metadata with a fresh edit
/// event id and writes nothing.
pub fn guard_validate_write_metadata(h: &Harness) {
    let contexts = [
        human(),
        WriteContext::human(None),
        WriteContext::system(Some("scheduler".into())),
        ai_ctx(),
    ];
    let mut events = BTreeSet::new();
    for ctx in &contexts {
        let start = Utc::now() - Duration::seconds(1);
        let meta = h
            .store()
            .validate_write_with_guard(ctx, "res-1")
            .expect("accepted write");
        let end = Utc::now() + Duration::seconds(1);
        assert_eq!(meta.resource_id, "res-1");
        assert_provenance(&meta.provenance(), ctx);
        assert!(
            meta.timestamp >= start && meta.timestamp <= end,
            "timestamp {}",
            meta.timestamp
        );
        assert!(events.insert(meta.edit_event_id), "edit event id reused");
        let again = h
            .store()
            .validate_write_with_guard(ctx, "res-1")
            .expect("again");
        assert!(events.insert(again.edit_event_id), "edit event id reused");
    }
    for ctx in silent_ai_contexts() {
        expect_guard(h.store().validate_write_with_guard(&ctx, "res-1"));
    }
    assert!(
        h.store().list_workspaces().expect("list").is_empty(),
        "validation writes nothing"
    );
}

/// Human and system writes, with and without an actor id, leave their
/// provenance.
pub fn provenance_human_and_system_writes(h: &Harness) {
    let anonymous = WriteContext::human(None);
    let system = WriteContext::system(Some("importer".into()));
    let ws = seed_workspace_as(h, &anonymous, "anon");
    assert_provenance(&ws.provenance, &anonymous);
    assert_eq!(ws.provenance.actor_id, None);
    let doc = seed_document_as(h, &system, &ws.id, "imported");
    assert_provenance(&doc.provenance, &system);
    assert_eq!(doc.provenance.actor_kind, WriteActorKind::System);
    let block = h
        .store()
        .create_block(&system, new_block(&doc.id, 1, Some("sys-block")))
        .expect("create block");
    assert_provenance(&block.provenance, &system);
    let sequence = BlockUpdate {
        sequence: Some(2),
        ..BlockUpdate::default()
    };
    let edited = h
        .store()
        .update_block(&human(), "sys-block", sequence)
        .expect("human edits");
    assert_provenance(&edited.provenance, &human());
    assert_ne!(
        edited.provenance.edit_event_id,
        block.provenance.edit_event_id
    );
    // A write touches only its own rows.
    assert_eq!(h.store().get_workspace(&ws.id).expect("get"), Some(ws));
    assert_eq!(h.store().get_document(&doc.id).expect("get"), doc);
    assert_eq!(h.store().get_block("sys-block").expect("get"), edited);
}
