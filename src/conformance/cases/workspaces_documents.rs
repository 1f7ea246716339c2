//! Workspaces and documents: create, get, list order, delete, and the
//! validation of names, titles and parents.

#[allow(unused_imports)]
use super::*;

/// Workspaces get fresh ids and provenance, read back equal, and list oldest
/// first.
pub fn workspace_create_get_list_ordered(h: &Harness) {
    let names = ["Zeta", "alpha", "Mid", "émoji 🎉"];
    let created: Vec<Workspace> = names
        .iter()
        .map(|name| {
            let ws = seed_workspace_named(h, name);
            assert_eq!(ws.name, *name);
            assert!(Uuid::parse_str(&ws.id).is_ok(), "generated id: {}", ws.id);
            assert_eq!(ws.created_at, ws.updated_at);
            assert_provenance(&ws.provenance, &human());
            assert_eq!(
                h.store().get_workspace(&ws.id).expect("get"),
                Some(ws.clone())
            );
            ws
        })
        .collect();
    let ids: BTreeSet<&str> = created.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids.len(), names.len(), "ids must be distinct");
    let expected = sorted_by_created(&created, |w| (w.created_at, w.id.clone()));
    assert_eq!(h.store().list_workspaces().expect("list"), expected);
}

/// `get_workspace` of an unknown id is `None`, not an error.
pub fn workspace_get_missing_is_none(h: &Harness) {
    assert_eq!(
        h.store().get_workspace("no-such-workspace").expect("get"),
        None
    );
    let ws = seed_workspace(h);
    assert_eq!(
        h.store()
            .get_workspace(&Uuid::new_v4().to_string())
            .expect("get"),
        None
    );
    assert!(h.store().get_workspace(&ws.id).expect("get").is_some());
}

/// Deleting an unknown or already deleted workspace is `NotFound`.
pub fn workspace_delete_missing_is_not_found(h: &Harness) {
    expect_kind(
        h.store().delete_workspace(&human(), "no-such-workspace"),
        ErrorKind::NotFound,
    );
    let ws = seed_workspace(h);
    h.store()
        .delete_workspace(&human(), &ws.id)
        .expect("delete");
    assert_eq!(h.store().get_workspace(&ws.id).expect("get"), None);
    expect_kind(
        h.store().delete_workspace(&human(), &ws.id),
        ErrorKind::NotFound,
    );
    assert!(h.store().list_workspaces().expect("list").is_empty());
}

/// A blank workspace name is `Validation`, nothing written.
pub fn workspace_blank_name_is_validation(h: &Harness) {
    for name in ["", " ", "\t\n  "] {
        let result = h
            .store()
            .create_workspace(&human(), NewWorkspace { name: name.into() });
        expect_kind(result, ErrorKind::Validation);
    }
    assert!(h.store().list_workspaces().expect("list").is_empty());
}

// ---------------------------------------------------------------------------
// Documents

/// Documents get fresh ids and provenance, read back equal, and list oldest
/// first per workspace.
pub fn document_create_get_list_ordered(h: &Harness) {
    let ws = seed_workspace(h);
    let other_ws = seed_workspace_named(h, "Other");
    let other_doc = seed_document_in(h, &other_ws.id, "Elsewhere");
    let titles = ["Beta", "alpha", "Ünïcode ✓"];
    let created: Vec<Document> = titles
        .iter()
        .map(|title| {
            let doc = seed_document_in(h, &ws.id, title);
            assert_eq!(doc.title, *title);
            assert_eq!(doc.workspace_id, ws.id);
            assert!(Uuid::parse_str(&doc.id).is_ok(), "generated id: {}", doc.id);
            assert_provenance(&doc.provenance, &human());
            assert_eq!(h.store().get_document(&doc.id).expect("get"), doc);
            doc
        })
        .collect();
    let expected = sorted_by_created(&created, |d| (d.created_at, d.id.clone()));
    assert_eq!(h.store().list_documents(&ws.id).expect("list"), expected);
    assert_eq!(
        h.store().list_documents(&other_ws.id).expect("list other"),
        vec![other_doc]
    );
    assert!(h
        .store()
        .list_documents("no-such-ws")
        .expect("list none")
        .is_empty());
}

/// Reading or deleting an unknown or deleted document is `NotFound`.
pub fn document_get_missing_is_not_found(h: &Harness) {
    expect_kind(
        h.store().get_document("no-such-document"),
        ErrorKind::NotFound,
    );
    let doc = seed_document(h);
    expect_kind(
        h.store().get_document(&Uuid::new_v4().to_string()),
        ErrorKind::NotFound,
    );
    h.store()
        .delete_document(&human(), &doc.id)
        .expect("delete");
    expect_kind(h.store().get_document(&doc.id), ErrorKind::NotFound);
    expect_kind(
        h.store().delete_document(&human(), &doc.id),
        ErrorKind::NotFound,
    );
}

/// A document for an unknown workspace is `Validation`, nothing written.
pub fn document_missing_workspace_is_validation(h: &Harness) {
    let ws = seed_workspace(h);
    for workspace_id in ["no-such-workspace", ""] {
        let result = h
            .store()
            .create_document(&human(), new_doc(workspace_id, "Orphan"));
        expect_kind(result, ErrorKind::Validation);
        assert!(h
            .store()
            .list_documents(workspace_id)
            .expect("list")
            .is_empty());
    }
    assert!(h.store().list_documents(&ws.id).expect("list").is_empty());
}

/// A blank document title is `Validation`, nothing written.
pub fn document_blank_title_is_validation(h: &Harness) {
    let ws = seed_workspace(h);
    for title in ["", "   ", "\n\t"] {
        let result = h.store().create_document(&human(), new_doc(&ws.id, title));
        expect_kind(result, ErrorKind::Validation);
    }
    assert!(h.store().list_documents(&ws.id).expect("list").is_empty());
}

/// Deleting a document removes its blocks and nothing of other documents.
pub fn document_delete_removes_blocks(h: &Harness) {
    let doc = seed_document(h);
    let keep = seed_document_in(h, &doc.workspace_id, "Keep");
    let gone: Vec<Block> = (0..3).map(|i| add_block(h, &doc.id, i, None)).collect();
    let kept = add_block(h, &keep.id, 0, Some("kept"));
    h.store()
        .delete_document(&human(), &doc.id)
        .expect("delete document");
    expect_kind(h.store().get_document(&doc.id), ErrorKind::NotFound);
    assert!(blocks_of(h, &doc.id).is_empty());
    for block in &gone {
        expect_kind(h.store().get_block(&block.id), ErrorKind::NotFound);
    }
    assert_eq!(blocks_of(h, &keep.id), vec![kept]);
    assert_eq!(
        h.store().list_documents(&doc.workspace_id).expect("list"),
        vec![keep]
    );
}
