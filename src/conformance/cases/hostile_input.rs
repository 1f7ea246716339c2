//! Hostile input through the API: 10 MiB texts, ids over 1 KiB, JSON
//! nested 100,000 levels.

#[allow(unused_imports)]
use super::*;

/// 10 MiB of text mixing one- to four-byte UTF-8 sequences, quotes,
/// backslashes and SQL punctuation.
pub(super) fn ten_mib_text() -> String {
    let piece = "héllo wörld 🌍 中文字 e\u{301} '\"\\ %_; -- ";
    piece.repeat((10 << 20) / piece.len() + 1)
}

/// Asserts that `read` is `expected`, without printing megabytes.
#[track_caller]
pub(super) fn assert_same_text(what: &str, read: &str, expected: &str) {
    assert!(
        read == expected,
        "{what}: {} bytes went in, {} bytes came back different",
        expected.len(),
        read.len()
    );
}

/// 10 MiB of text round-trips exactly through every kind of text field:
/// content, names, titles, kinds, reasons, errors, actor ids and JSON
/// string values.
pub fn hostile_ten_mib_text_roundtrips_everywhere(h: &Harness) {
    let big = ten_mib_text();
    let s = h.store();
    let actor = WriteContext::human(Some(big.clone()));
    let ws = s
        .create_workspace(&actor, NewWorkspace { name: big.clone() })
        .expect("workspace with a 10 MiB name");
    let read_ws = s.get_workspace(&ws.id).expect("get").expect("some");
    assert_same_text("workspace name", &read_ws.name, &big);
    let actor_id = read_ws.provenance.actor_id.unwrap_or_default();
    assert_same_text("actor id", &actor_id, &big);
    let doc = s
        .create_document(&human(), new_doc(&ws.id, &big))
        .expect("document with a 10 MiB title");
    assert_same_text(
        "document title",
        &s.get_document(&doc.id).expect("doc").title,
        &big,
    );
    let block = NewBlock {
        kind: big.clone(),
        raw_content: big.clone(),
        sensitivity: Some(big.clone()),
        derived_content: Some(json!({ "text": big })),
        ..new_block(&doc.id, 1, Some("big"))
    };
    s.create_block(&human(), block).expect("10 MiB block");
    let read = s.get_block("big").expect("get big block");
    assert_same_text("block kind", &read.kind, &big);
    assert_same_text("raw_content", &read.raw_content, &big);
    assert_same_text("display_content (defaulted)", &read.display_content, &big);
    assert_same_text(
        "sensitivity",
        read.sensitivity.as_deref().unwrap_or(""),
        &big,
    );
    assert!(
        read.derived_content == json!({ "text": big }),
        "JSON string value"
    );
    let update = BlockUpdate {
        display_content: Some(big.to_uppercase()),
        ..BlockUpdate::default()
    };
    s.update_block(&human(), "big", update).expect("update");
    let read = s.get_block("big").expect("get again");
    assert_same_text(
        "updated display_content",
        &read.display_content,
        &big.to_uppercase(),
    );
    let canvas = s
        .create_canvas(&human(), new_canvas(&ws.id, &big))
        .expect("canvas with a 10 MiB title");
    let n = NewCanvasNode {
        kind: big.clone(),
        data: Some(json!([big])),
        ..node("n", 0.0, 0.0)
    };
    let e = NewCanvasEdge {
        kind: big.clone(),
        ..edge("e", "n", "n")
    };
    s.update_canvas_graph(&human(), &canvas.id, vec![n], vec![e])
        .expect("graph with 10 MiB kinds");
    let graph = graph_of(h, &canvas.id);
    assert_same_text("canvas title", &graph.canvas.title, &big);
    assert_same_text("node kind", &graph.nodes[0].kind, &big);
    assert!(graph.nodes[0].data == json!([big]), "node data");
    assert_same_text("edge kind", &graph.edges[0].kind, &big);
    let job = NewAiJob {
        protocol_id: big.clone(),
        status_reason: big.clone(),
        job_inputs: Some(json!({ big.clone(): 1 })),
        ..new_job(JobKind::DocEdit, Vec::new())
    };
    let job = s.create_ai_job(job).expect("job with 10 MiB text");
    let update = JobStatusUpdate {
        error_message: Some(big.clone()),
        job_outputs: Some(json!(big)),
        ..status_update(job.job_id, JobState::Failed)
    };
    s.update_ai_job_status(update).expect("status update");
    let read = job_by(h, job.job_id);
    assert_same_text("protocol_id", &read.protocol_id, &big);
    assert_same_text(
        "error_message",
        read.error_message.as_deref().unwrap_or(""),
        &big,
    );
    assert!(
        read.job_inputs == Some(json!({ big.clone(): 1 })),
        "JSON key"
    );
    assert!(read.job_outputs == Some(json!(big)), "JSON string");
    let run = add_run(h, job.job_id, JobState::Running);
    let run_read = s
        .update_workflow_run_status(run.id, JobState::Failed, Some(big.clone()))
        .expect("run error");
    assert_same_text(
        "run error",
        run_read.error_message.as_deref().unwrap_or(""),
        &big,
    );
    let exec = NewNodeExecution {
        node_id: big.clone(),
        node_type: big.clone(),
        ..new_exec(run.id, "x", 0)
    };
    let exec = s.create_workflow_node_execution(exec).expect("execution");
    s.update_workflow_node_execution_status(exec.id, JobState::Failed, None, Some(big.clone()))
        .expect("execution error");
    let read = exec_by(h, run.id, exec.id);
    assert_same_text("node_id", &read.node_id, &big);
    assert_same_text("node_type", &read.node_type, &big);
    assert_same_text(
        "execution error",
        read.error_message.as_deref().unwrap_or(""),
        &big,
    );
}

/// Incompressible text of exactly `len` bytes (compressible text would
/// hide PostgreSQL's index entry limit).
pub(super) fn random_text(len: usize) -> String {
    let mut text = String::new();
    while text.len() < len {
        text.push_str(&Uuid::new_v4().simple().to_string());
    }
    text.truncate(len);
    text
}

/// Ids and entity refs are at most 1,024 bytes on every backend (longer is
/// `Validation`, nothing written); exactly 1,024 bytes round-trips.
pub fn hostile_ids_over_1_kib_are_validation(h: &Harness) {
    let fx = fixture(h);
    let ws = h.store().get_document(&fx.doc).expect("doc").workspace_id;
    let before = (content_view(h, &ws), all_jobs(h));
    let s = h.store();
    for long in [random_text(1_025), "é".repeat(513), random_text(10 << 20)] {
        let job_with_ref = |r: EntityRef| s.create_ai_job(new_job(JobKind::DocEdit, vec![r]));
        let results: Vec<(&str, StorageResult<()>)> = vec![
            (
                "block id",
                s.create_block(&human(), new_block(&fx.doc, 0, Some(&long)))
                    .map(drop),
            ),
            (
                "block id in replace_blocks",
                s.replace_blocks(&human(), &fx.doc, vec![new_block(&fx.doc, 0, Some(&long))])
                    .map(drop),
            ),
            (
                "block document_id",
                s.create_block(&human(), new_block(&long, 0, Some("b")))
                    .map(drop),
            ),
            (
                "document workspace_id",
                s.create_document(&human(), new_doc(&long, "t")).map(drop),
            ),
            (
                "canvas workspace_id",
                s.create_canvas(&human(), new_canvas(&long, "t")).map(drop),
            ),
            (
                "node id",
                s.update_canvas_graph(&human(), &fx.canvas, vec![node(&long, 0.0, 0.0)], vec![])
                    .map(drop),
            ),
            (
                "edge id",
                s.update_canvas_graph(
                    &human(),
                    &fx.canvas,
                    vec![node("a", 0.0, 0.0)],
                    vec![edge(&long, "a", "a")],
                )
                .map(drop),
            ),
            (
                "edge from_node_id",
                s.update_canvas_graph(
                    &human(),
                    &fx.canvas,
                    vec![node("a", 0.0, 0.0)],
                    vec![edge("e", &long, "a")],
                )
                .map(drop),
            ),
            ("entity ref id", job_with_ref(ws_ref(&long)).map(drop)),
            (
                "entity ref kind",
                job_with_ref(EntityRef {
                    entity_id: "w".into(),
                    entity_kind: long.clone(),
                })
                .map(drop),
            ),
        ];
        assert_all_fail(results, ErrorKind::Validation);
        // A lookup by a long id simply finds nothing.
        expect_kind(s.get_block(&long), ErrorKind::NotFound);
        assert!(s.get_workspace(&long).expect("lookup").is_none());
    }
    assert_eq!(
        (content_view(h, &ws), all_jobs(h)),
        before,
        "nothing written"
    );
    // The limit itself is accepted everywhere.
    let id = random_text(1_024);
    let block = s
        .create_block(&human(), new_block(&fx.doc, 0, Some(&id)))
        .expect("1 KiB block id");
    assert_eq!(s.get_block(&id).expect("get"), block);
    let other = random_text(1_024);
    let written = s
        .update_canvas_graph(
            &human(),
            &fx.canvas,
            vec![node(&id, 0.0, 0.0), node(&other, 1.0, 1.0)],
            vec![edge(&id, &id, &other)],
        )
        .expect("1 KiB node and edge ids");
    assert_eq!(graph_of(h, &fx.canvas), written);
    let job = s
        .create_ai_job(new_job(
            JobKind::DocEdit,
            vec![EntityRef {
                entity_id: id.clone(),
                entity_kind: random_text(1_024),
            }],
        ))
        .expect("1 KiB entity ref");
    assert_eq!(job_by(h, job.job_id), job);
}

/// Builds one hostile JSON value afresh (such values are never cloned).
pub(super) type DeepBuilder = fn() -> Value;

/// JSON nested 10,000 and 100,000 levels (a recursive drop of the latter
/// overflows a thread's stack) is refused with `Validation` through every
/// JSON channel, with nothing written and no stack overflow: the store
/// never drops such a value recursively. The case never clones or drops
/// one either; each attempt builds its own and hands it over.
pub fn hostile_json_nested_100000_levels_is_validation(h: &Harness) {
    let fx = fixture(h);
    let before = json_view(h, &fx);
    let builders: [(&str, DeepBuilder); 4] = [
        ("10,000 nested arrays", || deep_json(10_000)),
        ("10,000 nested objects", || deep_object(10_000)),
        ("100,000 nested arrays", || deep_json(100_000)),
        ("100,000 nested objects", || deep_object(100_000)),
    ];
    for channel in JSON_CHANNELS {
        for (what, build) in builders {
            let result = json_write(h, &fx, channel, build()).map(drop);
            assert_fails(
                &format!("{what} through {channel}"),
                result,
                ErrorKind::Validation,
            );
        }
    }
    let s = h.store();
    for (what, build) in builders {
        // A deep value behind an item refused for another reason, and in
        // a write the guard would refuse: too-deep JSON is refused first.
        let items = vec![
            new_block(&fx.doc, 0, Some(NUL)),
            edited(new_block(&fx.doc, 1, None), |b| {
                b.derived_content = Some(build())
            }),
        ];
        let result = s.replace_blocks(&human(), &fx.doc, items).map(drop);
        assert_fails(
            &format!("{what} after a NUL id"),
            result,
            ErrorKind::Validation,
        );
        let nodes = vec![
            node(NUL, 0.0, 0.0),
            edited(node("deep", 0.0, 0.0), |n| n.data = Some(build())),
        ];
        let result = s
            .update_canvas_graph(&human(), &fx.canvas, nodes, Vec::new())
            .map(drop);
        assert_fails(
            &format!("{what} after a NUL node id"),
            result,
            ErrorKind::Validation,
        );
        let silent = &silent_ai_contexts()[0];
        let block = edited(new_block(&fx.doc, 1, None), |b| {
            b.derived_content = Some(build())
        });
        let result = s.create_block(silent, block).map(drop);
        // The guard's verdict comes first; the deep value is still taken
        // apart without recursion.
        assert!(
            matches!(&result, Err(StorageError::Guard(m)) if m.contains("HSK-403-SILENT-EDIT")),
            "{what} in a silent AI edit: expected the guard, got {result:?}"
        );
    }
    assert_eq!(
        json_view(h, &fx),
        before,
        "a refused JSON write changed something"
    );
}
