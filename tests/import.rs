//! `import_handshake`, stamped for every pair of compiled backends
//! (`sqlite_to_sqlite`, `sqlite_to_postgres`, ...): legacy databases built
//! here from `LEGACY.md`'s description (the legacy DDL, `_sqlx_migrations`
//! with the real checksums, rows in the legacy representation), imported
//! into a fresh store of ours. The source is compared byte for byte
//! (SQLite) or by `pg_dump` (PostgreSQL) before and after every import.

use std::process::Command;
use std::sync::Arc;

use handshake_storage::conformance::{Harness, TestTarget};
use handshake_storage::import::fixture::{
    at, cols, fill_bulk, human_stamp, text, LegacyBuild, LegacyDatabase, Lit,
};
use handshake_storage::import::{import_handshake, ImportOptions, ImportReport};
use handshake_storage::*;
use serde_json::{json, Value};
use uuid::Uuid;

#[path = "common/sigkill.rs"]
mod sigkill;
use sigkill::random_below;

fn target(backend: &str) -> Harness {
    TestTarget::standard(backend)
        .harness()
        .unwrap_or_else(|e| panic!("a fresh {backend} store: {e}"))
}

fn legacy(backend: &str, build: LegacyBuild) -> LegacyDatabase {
    LegacyDatabase::create(&TestTarget::standard(backend), build)
        .unwrap_or_else(|e| panic!("a legacy {backend} database: {e}"))
}

/// Everything that identifies the source's content: the SQLite file's
/// bytes, or `pg_dump` of the PostgreSQL schema.
fn fingerprint(db: &LegacyDatabase) -> Vec<u8> {
    match db.path() {
        Some(path) => std::fs::read(path).unwrap(),
        None => {
            let admin = std::env::var("POSTGRES_TEST_URL")
                .or_else(|_| std::env::var("DATABASE_URL"))
                .unwrap();
            let out = Command::new("pg_dump")
                .args([
                    "--no-owner",
                    "--schema",
                    db.schema().unwrap(),
                    "--dbname",
                    &admin,
                ])
                .output()
                .expect("pg_dump on PATH");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout.len() > 1000, "pg_dump printed the schema");
            // `\restrict` lines carry a fresh random key on every run.
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        }
    }
}

const WS1: &str = "99a476a8-e9d0-46ec-9905-d04332a6d3f4";
const WS2: &str = "5f0b8f5e-0c43-4c3b-9d55-0e2a3c7d9a10";
const DOC1: &str = "ec65c366-4d1e-4549-90f9-f0449478ec13";
const CANVAS: &str = "11a509ae-5eeb-4329-91e1-630566761201";
const JOB1: &str = "21ab66aa-4c07-47cb-96b3-98becee11ef3";
const JOB2: &str = "78ec716e-1f0b-4a4e-8a0b-3c8c1d2e4f50";
const RUN1: &str = "dd5d8106-9012-45d8-b00e-587f27073320";
const BIG_BLOCK: &str = "259f529c-5f10-4449-924d-dae2d1980d54";
const UNICODE: &str = "Ünïcødé 🚀 計画 \u{202e}'quote' \"dq\" \\ %_";

fn ai_stamp() -> Vec<Lit> {
    vec![
        text(JOB2),
        text(RUN1),
        text("model-x"),
        text(Uuid::new_v4().to_string()),
        text("AI"),
    ]
}

/// 200 KB of unicode text.
fn big_text() -> String {
    "é🚀 ü 計".repeat(200 * 1024 / 13)
}

/// Every table and column, in the legacy representation: client ids,
/// both SQLite timestamp formats (in one row), every fraction length,
/// AI traceability, f32-rounded positions on PostgreSQL, `term_exec`,
/// `is_pinned`, JSON text (`null` among it), a 200 KB text, unicode.
fn fill(db: &LegacyDatabase, build: LegacyBuild) {
    let space_format = text("2026-01-08 09:15:10");
    let row = |mut head: Vec<Lit>, stamp: Vec<Lit>| {
        head.extend(stamp);
        head
    };
    db.insert(
        "workspaces",
        cols::WORKSPACES,
        &[
            row(
                vec![
                    text(WS1),
                    text(UNICODE),
                    Lit::Time(at(1, 919_430_632)),
                    Lit::Time(at(1, 919_430_632)),
                ],
                human_stamp(),
            ),
            row(
                vec![
                    text(WS2),
                    text("Second"),
                    space_format.clone(),
                    space_format.clone(),
                ],
                vec![
                    Lit::Null,
                    Lit::Null,
                    Lit::Null,
                    text("00000000-0000-0000-0000-000000000000"),
                    text("SYSTEM"),
                ],
            ),
        ],
    )
    .unwrap();
    db.insert(
        "documents",
        cols::DOCUMENTS,
        &[row(
            vec![
                text(DOC1),
                text(WS1),
                text(UNICODE),
                Lit::Time(at(2, 28_397_000)),
                Lit::Time(at(2, 28_000_000)),
            ],
            ai_stamp(),
        )],
    )
    .unwrap();
    let block = |id: &str,
                 seq: i64,
                 raw: String,
                 derived: &str,
                 sens: Lit,
                 exp: Lit,
                 created: Lit,
                 updated: Lit| {
        let mut r = vec![
            text(id),
            text(DOC1),
            text("paragraph"),
            Lit::Int(seq),
            text(raw.clone()),
            text(raw),
            text(derived),
            created,
            updated,
        ];
        r.extend(human_stamp());
        r.extend([sens, exp]);
        r
    };
    db.insert(
        "blocks",
        cols::BLOCKS,
        &[
            block(
                "b-1",
                1,
                "Hello *world*".into(),
                "{}",
                Lit::Null,
                Lit::Int(1),
                space_format.clone(),
                Lit::Time(at(3, 48_400_734)),
            ),
            block(
                BIG_BLOCK,
                2,
                big_text(),
                r#"{"score":0.5,"tags":["x"]}"#,
                text("high"),
                Lit::Int(0),
                Lit::Time(at(3, 0)),
                Lit::Time(at(3, 500_000_000)),
            ),
            block(
                "custom-block-Ä",
                2_147_483_647,
                UNICODE.into(),
                r#"{"n":null,"deep":[[[1]]]}"#,
                Lit::Null,
                Lit::Null,
                Lit::Time(at(4, 123_000_000)),
                Lit::Time(at(4, 123_456_000)),
            ),
        ],
    )
    .unwrap();
    db.insert(
        "canvases",
        cols::DOCUMENTS,
        &[row(
            vec![
                text(CANVAS),
                text(WS1),
                text("Board"),
                Lit::Time(at(5, 2_309_020)),
                Lit::Time(at(5, 2_309_020)),
            ],
            ai_stamp(),
        )],
    )
    .unwrap();
    let node = |id: &str, x: f64, y: f64| {
        row(
            vec![
                text(id),
                text(CANVAS),
                text("note"),
                Lit::Real(x),
                Lit::Real(y),
                text(r#"{"text":"hi ✓"}"#),
                Lit::Time(at(6, 21_857_586)),
                Lit::Time(at(6, 21_857_586)),
            ],
            human_stamp(),
        )
    };
    db.insert(
        "canvas_nodes",
        cols::NODES,
        &[node("n1", 100.1, -20.25), node("n2", 1_234_567.891, 0.0)],
    )
    .unwrap();
    db.insert(
        "canvas_edges",
        cols::EDGES,
        &[row(
            vec![
                text("17ed6fab-0f76-4bc4-9543-d7069e943ea3"),
                text(CANVAS),
                text("n1"),
                text("n2"),
                text("link"),
                Lit::Time(at(6, 21_857_586)),
                Lit::Time(at(6, 21_857_586)),
            ],
            human_stamp(),
        )],
    )
    .unwrap();
    let mut job_cols = cols::JOBS.to_vec();
    if !build.lost_is_pinned {
        job_cols.push("is_pinned");
    }
    let job = |id: &str,
               kind: &str,
               run: Lit,
               metrics: &str,
               inputs: Lit,
               outputs: Lit,
               pinned: i64| {
        let mut r = vec![
            text(id),
            text(id),
            run,
            text(kind),
            text("completed"),
            text("completed"),
            if pinned == 1 {
                text("stale error ✗")
            } else {
                Lit::Null
            },
            text("protocol-default"),
            text("default"),
            text("cap-doc"),
            text("analysis_only"),
            text("normal"),
            text(format!(
                r#"[{{"entity_id":"{WS1}","entity_kind":"workspace"}},{{"entity_id":"{DOC1}","entity_kind":"document"}}]"#
            )),
            text(format!(
                r#"[{{"op_type":"read","target":{{"entity_id":"{DOC1}","entity_kind":"document"}},"description":null}}]"#
            )),
            text(metrics),
            inputs,
            outputs,
            Lit::Time(at(7, 37_321_944)),
            Lit::Time(at(8, 118_116_233)),
        ];
        if !build.lost_is_pinned {
            r.push(Lit::Int(pinned));
        }
        r
    };
    db.insert(
        "ai_jobs",
        &job_cols,
        &[
            job(JOB1, "term_exec", Lit::Null, r#"{"duration_ms":7,"total_tokens":3}"#, text("null"), Lit::Null, 1),
            job(
                JOB2,
                "doc_summarize",
                text(RUN1),
                r#"{"duration_ms":1,"total_tokens":2,"input_tokens":3,"output_tokens":4,"tokens_planner":5,"tokens_executor":6,"entities_read":7,"entities_written":8,"validators_run_count":9}"#,
                text(format!(r#"{{"doc_id":"{DOC1}"}}"#)),
                text(r#"{"summary":"… ✓"}"#),
                0,
            ),
        ],
    )
    .unwrap();
    db.insert(
        "workflow_runs",
        cols::RUNS,
        &[vec![
            text(RUN1),
            text(JOB2),
            text("completed"),
            Lit::Time(at(8, 65_745_481)),
            text("2026-01-08 09:20:03"),
            Lit::Time(at(8, 111_475_612)),
        ]],
    )
    .unwrap();
    db.insert(
        "workflow_node_executions",
        cols::EXECUTIONS,
        &[
            vec![
                text("269d0ce3-51c0-42c1-abee-04ba5e3075aa"),
                text(RUN1),
                text(JOB2),
                text("doc_summarize"),
                text("completed"),
                Lit::Int(1),
                text(format!(r#"{{"doc_id":"{DOC1}"}}"#)),
                text(r#"{"summary":"…"}"#),
                Lit::Null,
                Lit::Time(at(8, 79_300_419)),
                Lit::Time(at(9, 86_208_121)),
                text("2026-01-08 09:20:03"),
                Lit::Time(at(9, 86_208_121)),
            ],
            vec![
                text("369d0ce3-51c0-42c1-abee-04ba5e3075ab"),
                text(RUN1),
                text(JOB2),
                text("doc_summarize"),
                text("poisoned"),
                Lit::Int(2),
                Lit::Null,
                Lit::Null,
                text("boom ✗"),
                Lit::Time(at(9, 0)),
                Lit::Null,
                text("2026-01-08 09:20:04"),
                Lit::Time(at(9, 5_000_000)),
            ],
        ],
    )
    .unwrap();
}

/// Rows per legacy table in [`fill`].
const FILLED: [(&str, u64); 9] = [
    ("workspaces", 2),
    ("documents", 1),
    ("blocks", 3),
    ("canvases", 1),
    ("canvas_nodes", 2),
    ("canvas_edges", 1),
    ("ai_jobs", 2),
    ("workflow_runs", 1),
    ("workflow_node_executions", 2),
];

fn assert_counts_add_up(report: &ImportReport) {
    assert_eq!(report.tables.len(), 9, "{report:#?}");
    for t in &report.tables {
        assert_eq!(
            t.source_rows,
            t.imported_rows + t.quarantined_rows,
            "{}: source = imported + quarantined",
            t.table
        );
        assert!(t.verified, "{} verified", t.table);
    }
    assert!(report.verified(), "{:#?}", report.copy.verify.differences());
}

/// The values that prove each conversion rule, read back through the API.
fn assert_converted(store: &dyn Storage, source: Backend, build: LegacyBuild) {
    let ws = store.get_workspace(WS1).unwrap().unwrap();
    assert_eq!(ws.name, UNICODE);
    assert_eq!(ws.created_at, at(1, 919_430_000), "cut to the microsecond");
    assert_eq!(ws.provenance.actor_kind, WriteActorKind::Human);
    let sys = store.get_workspace(WS2).unwrap().unwrap();
    assert_eq!(sys.created_at.to_rfc3339(), "2026-01-08T09:15:10+00:00");
    assert_eq!(sys.provenance.actor_kind, WriteActorKind::System);
    assert_eq!(
        sys.provenance.edit_event_id,
        Uuid::nil(),
        "the sentinel as stored"
    );
    let doc = store.get_document(DOC1).unwrap();
    assert_eq!(doc.provenance.actor_kind, WriteActorKind::Ai);
    assert_eq!(doc.provenance.actor_id.as_deref(), Some("model-x"));
    assert_eq!(doc.provenance.job_id, Some(JOB2.parse().unwrap()));
    let blocks = store.get_blocks(DOC1).unwrap();
    assert_eq!(blocks.len(), 3);
    let b1 = store.get_block("b-1").unwrap();
    assert_eq!(
        b1.created_at.to_rfc3339(),
        "2026-01-08T09:15:10+00:00",
        "space format"
    );
    assert_eq!(b1.updated_at, at(3, 48_400_000), "RFC 3339 in the same row");
    assert_eq!(b1.exportable, Some(true));
    let big = store.get_block(BIG_BLOCK).unwrap();
    assert_eq!(big.raw_content, big_text());
    assert!(big.raw_content.len() >= 200 * 1000);
    assert_eq!(big.derived_content, json!({"score": 0.5, "tags": ["x"]}));
    assert_eq!(
        (big.sensitivity.as_deref(), big.exportable),
        (Some("high"), Some(false))
    );
    let custom = store.get_block("custom-block-Ä").unwrap();
    assert_eq!(custom.sequence, 2_147_483_647);
    assert_eq!(custom.exportable, None, "NULL exportable: not specified");
    assert_eq!(custom.derived_content, json!({"n": null, "deep": [[[1]]]}));
    let graph = store.get_canvas_with_graph(CANVAS).unwrap();
    let n1 = graph.nodes.iter().find(|n| n.id == "n1").unwrap();
    let n2 = graph.nodes.iter().find(|n| n.id == "n2").unwrap();
    match source {
        Backend::Sqlite => {
            assert_eq!((n1.position_x, n2.position_x), (100.1, 1_234_567.891));
        }
        Backend::Postgres => {
            assert_eq!(n1.position_x, 100.0999984741211, "f32 as the app reads it");
            assert_eq!(n2.position_x, 1_234_567.875);
        }
    }
    assert_eq!(n1.position_y, -20.25);
    assert_eq!(n1.data, json!({"text": "hi ✓"}));
    assert_eq!(graph.edges.len(), 1);
    assert_eq!(
        (
            graph.edges[0].from_node_id.as_str(),
            graph.edges[0].to_node_id.as_str()
        ),
        ("n1", "n2")
    );
    let j1 = store.get_ai_job(JOB1.parse().unwrap()).unwrap();
    assert_eq!(j1.job_kind, JobKind::TerminalExec);
    assert_eq!(j1.trace_id, j1.job_id);
    assert_eq!(j1.pinned, !build.lost_is_pinned);
    assert_eq!(j1.job_inputs, Some(Value::Null), "the text null");
    assert_eq!(j1.job_outputs, None, "SQL NULL");
    assert_eq!(j1.metrics.duration_ms, 7);
    assert_eq!(j1.metrics.validators_run_count, 0);
    assert_eq!(j1.error_message.as_deref(), Some("stale error ✗"));
    assert_eq!(j1.entity_refs.len(), 2);
    assert_eq!(j1.planned_operations[0].op_type, OperationType::Read);
    assert_eq!(j1.created_at, at(7, 37_321_000));
    let j2 = store.get_ai_job(JOB2.parse().unwrap()).unwrap();
    assert!(!j2.pinned);
    assert_eq!(j2.workflow_run_id, Some(RUN1.parse().unwrap()));
    assert_eq!(j2.metrics.validators_run_count, 9);
    assert_eq!(j2.job_outputs, Some(json!({"summary": "… ✓"})));
    let executions = store
        .list_workflow_node_executions(RUN1.parse().unwrap())
        .unwrap();
    assert_eq!(executions.len(), 2);
    assert_eq!(
        executions[0].created_at.to_rfc3339(),
        "2026-01-08T09:20:03+00:00"
    );
    assert_eq!(executions[0].finished_at, Some(at(9, 86_208_000)));
    assert_eq!(executions[1].finished_at, None);
    assert_eq!(executions[1].status, JobState::Poisoned);
    assert_eq!(executions[1].error_message.as_deref(), Some("boom ✗"));
    let jobs = store
        .list_ai_jobs(AiJobListFilter {
            wsid: Some(WS1.into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        jobs.len(),
        2,
        "entity refs indexed for the workspace filter"
    );
}

fn imports_every_table_exactly(from: &str, to: &str) {
    let build = LegacyBuild::default();
    let source = legacy(from, build);
    fill(&source, build);
    let before = fingerprint(&source);
    let t = target(to);
    let report = import_handshake(source.url(), t.url(), &ImportOptions::default()).unwrap();
    assert_counts_add_up(&report);
    for (table, rows) in FILLED {
        let found = report.tables.iter().find(|t| t.table == table).unwrap();
        assert_eq!(
            (
                found.source_rows,
                found.imported_rows,
                found.quarantined_rows
            ),
            (rows, rows, 0),
            "{table}"
        );
    }
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_converted(t.store(), source.backend(), build);
    assert!(fingerprint(&source) == before, "the source changed");
    // A second import into the now filled target is refused.
    let again = import_handshake(source.url(), t.url(), &ImportOptions::default()).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Validation);
    assert!(again.to_string().contains("not empty"), "{again}");
}

fn crlf_checksums_and_the_v8_without_is_pinned(from: &str, to: &str) {
    let build = LegacyBuild {
        crlf: true,
        lost_is_pinned: true,
    };
    let source = legacy(from, build);
    fill(&source, build);
    let before = fingerprint(&source);
    let t = target(to);
    let report = import_handshake(source.url(), t.url(), &ImportOptions::default()).unwrap();
    assert_counts_add_up(&report);
    assert!(
        report.notes.iter().any(|n| n.contains("CRLF")),
        "{:?}",
        report.notes
    );
    assert!(
        report.notes.iter().any(|n| n.contains("unpinned")),
        "{:?}",
        report.notes
    );
    assert_converted(t.store(), source.backend(), build);
    assert!(fingerprint(&source) == before, "the source changed");
}

/// One bad row of each kind: where it goes, what names it, and the SQL
/// that mends it.
struct BadRow {
    table: &'static str,
    column: &'static str,
    key: String,
    mend: String,
}

/// Plants one row of each kind our store cannot hold (those the source
/// backend can hold at all) and returns them in import order.
fn plant_bad_rows(db: &LegacyDatabase) -> Vec<BadRow> {
    let sqlite = db.backend() == Backend::Sqlite;
    let t = Lit::Time(at(20, 0));
    let lit = |v: &Lit| db.literal(v);
    let stamp = "NULL, NULL, NULL, '1fec0931-0252-429a-8962-c898f857e855', 'HUMAN'";
    let ws = |id: &str, name: &Lit| {
        format!(
            "INSERT INTO workspaces ({}) VALUES ({}, {}, {t}, {t}, {stamp})",
            cols::WORKSPACES.join(", "),
            if id.is_empty() {
                "NULL".into()
            } else {
                lit(&text(id))
            },
            lit(name),
            t = lit(&t)
        )
    };
    let mut planted = Vec::new();
    let mut sql = Vec::new();
    if sqlite {
        sql.push(ws("", &text("nameless")));
        planted.push(BadRow {
            table: "workspaces",
            column: "id",
            key: "NULL id".into(),
            mend: "DELETE FROM workspaces WHERE id IS NULL".into(),
        });
        // Latin-1 bytes where UTF-8 belongs (`Cafj\xe9`): the driver
        // would hand over U+FFFD in their place.
        sql.push(format!(
            "INSERT INTO workspaces ({}) VALUES ('ws-latin1', CAST(X'4361666AE9' AS TEXT), {t}, {t}, {stamp})",
            cols::WORKSPACES.join(", "),
            t = lit(&t)
        ));
        planted.push(BadRow {
            table: "workspaces",
            column: "name",
            key: "ws-latin1".into(),
            mend: "UPDATE workspaces SET name = 'Café' WHERE id = 'ws-latin1'".into(),
        });
        sql.push(ws("ws-nul", &text("a\0b")));
        planted.push(BadRow {
            table: "workspaces",
            column: "name",
            key: "ws-nul".into(),
            mend: "UPDATE workspaces SET name = 'ab' WHERE id = 'ws-nul'".into(),
        });
    }
    let bad_time = if sqlite { "yesterday" } else { "infinity" };
    sql.push(format!(
        "INSERT INTO documents ({}) VALUES ('doc-bad-time', '{WS1}', 'T', '{bad_time}', {t}, {stamp})",
        cols::DOCUMENTS.join(", "),
        t = lit(&t)
    ));
    planted.push(BadRow {
        table: "documents",
        column: "created_at",
        key: "doc-bad-time".into(),
        mend: "UPDATE documents SET created_at = '2026-01-08 09:15:10' WHERE id = 'doc-bad-time'"
            .into(),
    });
    let block = |id: &str, doc: &str, derived: &str| {
        format!(
            "INSERT INTO blocks ({}) VALUES ('{id}', '{doc}', 'p', 9, 'r', 'r', '{derived}', {t}, {t}, {stamp}, NULL, 1)",
            cols::BLOCKS.join(", "),
            t = lit(&t)
        )
    };
    sql.push(block("bad-json", DOC1, "{\"unclosed\": "));
    planted.push(BadRow {
        table: "blocks",
        column: "derived_content",
        key: "bad-json".into(),
        mend: "UPDATE blocks SET derived_content = '{}' WHERE id = 'bad-json'".into(),
    });
    // A child of a bad row: fine once its parent is mended, set aside with
    // it otherwise.
    sql.push(block("child-of-bad-doc", "doc-bad-time", "{}"));
    let long_id = "x".repeat(2000);
    sql.push(format!(
        "INSERT INTO canvases ({}) VALUES ('{long_id}', '{WS1}', 'T', {t}, {t}, {stamp})",
        cols::DOCUMENTS.join(", "),
        t = lit(&t)
    ));
    planted.push(BadRow {
        table: "canvases",
        column: "id",
        key: long_id,
        mend: "DELETE FROM canvases WHERE length(id) > 1000".into(),
    });
    let node = |id: &str, canvas: &str, data: &str| {
        format!(
            "INSERT INTO canvas_nodes ({}) VALUES ('{id}', '{canvas}', 'note', 1.5, 2.5, '{data}', {t}, {t}, {stamp})",
            cols::NODES.join(", "),
            t = lit(&t)
        )
    };
    let deep = format!("{}1{}", "[".repeat(110), "]".repeat(110));
    sql.push(node("deep", CANVAS, &deep));
    planted.push(BadRow {
        table: "canvas_nodes",
        column: "data",
        key: "deep".into(),
        mend: "UPDATE canvas_nodes SET data = '{}' WHERE id = 'deep'".into(),
    });
    sql.push(node("orphan", "no-such-canvas", "{}"));
    planted.push(BadRow {
        table: "canvas_nodes",
        column: "canvas_id",
        key: "orphan".into(),
        mend: "DELETE FROM canvas_nodes WHERE id = 'orphan'".into(),
    });
    let bogus_job = "aaaaaaaa-4c07-47cb-96b3-98becee11ef3";
    sql.push(format!(
        "INSERT INTO ai_jobs (id, trace_id, job_kind, status, protocol_id, profile_id, capability_profile_id, \
         access_mode, safety_mode, created_at, updated_at) VALUES ('{bogus_job}', '{bogus_job}', 'doc_edit', \
         'bogus', 'p', 'p', 'c', 'analysis_only', 'normal', {t}, {t})",
        t = lit(&t)
    ));
    planted.push(BadRow {
        table: "ai_jobs",
        column: "status",
        key: bogus_job.into(),
        mend: format!("UPDATE ai_jobs SET status = 'failed' WHERE id = '{bogus_job}'"),
    });
    let orphan_run = "eeeeeeee-9012-45d8-b00e-587f27073320";
    sql.push(format!(
        "INSERT INTO workflow_runs ({}) VALUES ('{orphan_run}', 'ffffffff-4c07-47cb-96b3-98becee11ef3', 'running', {t}, {t}, {t})",
        cols::RUNS.join(", "),
        t = lit(&t)
    ));
    planted.push(BadRow {
        table: "workflow_runs",
        column: "job_id",
        key: orphan_run.into(),
        mend: format!("DELETE FROM workflow_runs WHERE id = '{orphan_run}'"),
    });
    db.execute(&sql.join(";\n")).unwrap();
    planted
}

fn bad_rows_stop_the_import_until_mended(from: &str, to: &str) {
    let build = LegacyBuild::default();
    let source = legacy(from, build);
    fill(&source, build);
    let mut planted = plant_bad_rows(&source);
    let t = target(to);
    let resume = ImportOptions {
        resume: true,
        ..Default::default()
    };
    let mut stops = 0;
    let report = loop {
        match import_handshake(source.url(), t.url(), &resume) {
            Ok(report) => break report,
            Err(e) => {
                stops += 1;
                let message = e.to_string();
                assert_eq!(e.kind(), ErrorKind::Validation, "{message}");
                assert!(!message.contains('\n'), "one line: {message}");
                assert!(!message.contains("postgres:postgres@"), "{message}");
                let i = planted
                    .iter()
                    .position(|b| {
                        message.contains(&format!("{} row", b.table))
                            && message.contains(&format!("column {}", b.column))
                            && (b.key == "NULL id" && message.contains("NULL id")
                                || message.contains(&format!("{:?}", b.key)))
                    })
                    .unwrap_or_else(|| panic!("an unexpected stop: {message}"));
                assert_eq!(i, 0, "bad rows stop the import in table order: {message}");
                if stops == 1 {
                    // The unfinished import is refused by name to another
                    // source, and without resume.
                    let other = legacy(from, build);
                    let err = import_handshake(other.url(), t.url(), &resume).unwrap_err();
                    assert!(err.to_string().contains("unfinished"), "{err}");
                    let err = import_handshake(source.url(), t.url(), &ImportOptions::default())
                        .unwrap_err();
                    assert!(err.to_string().contains("--resume"), "{err}");
                }
                let bad = planted.remove(i);
                source.execute(&bad.mend).unwrap();
            }
        }
        assert!(stops <= 10, "the import never finished");
    };
    assert!(
        planted.is_empty(),
        "never stopped at {:?}",
        planted.iter().map(|b| b.table).collect::<Vec<_>>()
    );
    assert!(report.copy.resumed);
    assert_counts_add_up(&report);
    assert_eq!(report.quarantined_rows(), 0);
    assert!(t.store().get_block("child-of-bad-doc").is_ok());
}

fn bad_rows_go_to_quarantine(from: &str, to: &str) {
    let build = LegacyBuild::default();
    let source = legacy(from, build);
    fill(&source, build);
    let planted = plant_bad_rows(&source);
    let before = fingerprint(&source);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quarantine.jsonl");
    let t = target(to);
    let options = ImportOptions {
        quarantine: Some(file.clone()),
        ..Default::default()
    };
    let report = import_handshake(source.url(), t.url(), &options).unwrap();
    assert_counts_add_up(&report);
    // Every planted row, and the block under the set-aside document.
    assert_eq!(report.quarantined_rows() as usize, planted.len() + 1);
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), planted.len() + 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the quarantine file is private");
    }
    for bad in &planted {
        let line = lines
            .iter()
            .find(|l| {
                l["table"] == bad.table
                    && l["column"] == bad.column
                    && (bad.key == "NULL id" || l["key"] == bad.key.as_str())
            })
            .unwrap_or_else(|| panic!("{} {} not quarantined: {lines:?}", bad.table, bad.column));
        assert!(line["reason"].as_str().is_some_and(|r| !r.is_empty()));
        let row = line["row"].as_object().unwrap();
        assert!(
            row.contains_key("created_at") && row.contains_key("id"),
            "every column: {row:?}"
        );
        if bad.key != "NULL id" {
            assert_eq!(line["key"], bad.key.as_str());
        } else {
            assert!(line["key"].is_null() && line["rowid"].is_i64());
        }
    }
    let child = lines
        .iter()
        .find(|l| l["key"] == "child-of-bad-doc")
        .unwrap();
    assert_eq!(child["column"], "document_id");
    for table in [
        "workspaces",
        "documents",
        "blocks",
        "canvases",
        "canvas_nodes",
        "ai_jobs",
        "workflow_runs",
    ] {
        let t = report.tables.iter().find(|t| t.table == table).unwrap();
        assert!(
            t.quarantined_rows > 0 || (table == "workspaces" && from == "postgres"),
            "{table}"
        );
    }
    assert_converted(t.store(), source.backend(), build);
    assert!(fingerprint(&source) == before, "the source changed");
    // A fresh import does not overwrite a quarantine file that holds rows.
    let t2 = target(to);
    let err = import_handshake(source.url(), t2.url(), &options).unwrap_err();
    assert!(err.to_string().contains("already holds rows"), "{err}");
}

fn unknown_schemas_are_refused(from: &str, to: &str) {
    let refused = |url: &str, what: &str| {
        let t = target(to);
        let err = import_handshake(url, t.url(), &ImportOptions::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
        let message = err.to_string();
        assert!(message.contains(what), "{what}: {message}");
        assert!(
            !message.contains('\n') && !message.contains("postgres:postgres@"),
            "{message}"
        );
        assert_eq!(t.store().list_workspaces().unwrap().len(), 0);
    };
    // Our own schema.
    let ours = target(from);
    refused(ours.url(), "hsk-storage copy");
    // A version after 9, a dirty migration, a missing table, an edited
    // migration.
    let cases: [(&str, &str); 4] = [
        ("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
          SELECT 10, 'later', success, checksum, 1 FROM _sqlx_migrations WHERE version = 9", "migration 10"),
        ("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 7", "migration 7 is dirty"),
        ("DROP TABLE canvas_edges", "table canvas_edges is missing"),
        ("UPDATE _sqlx_migrations SET checksum = (SELECT checksum FROM _sqlx_migrations WHERE version = 1) WHERE version = 3", "migration 3 has checksum"),
    ];
    for (sql, what) in cases {
        let db = legacy(from, LegacyBuild::default());
        db.execute(sql).unwrap();
        refused(db.url(), what);
    }
    let db = legacy(from, LegacyBuild::default());
    db.execute("DROP TABLE _sqlx_migrations").unwrap();
    refused(db.url(), "no _sqlx_migrations");
}

// ---------------------------------------------------------------------------
// Interrupted imports

const CHILD_FROM: &str = "HSK_IMPORT_CHILD_FROM";
const CHILD_TO: &str = "HSK_IMPORT_CHILD_TO";
const PROGRESS: &str = "HSK-IMPORT-PROGRESS";

fn kill_options() -> ImportOptions {
    ImportOptions {
        batch_rows: 200,
        resume: true,
        ..Default::default()
    }
}

/// The importer as a child process (this test binary again): prints a
/// line per progress report, so the parent can kill it at a chosen page.
#[test]
#[ignore = "runs only as the child of an interrupted-import test"]
fn import_child() {
    let from = std::env::var(CHILD_FROM).expect("run only as a child");
    let to = std::env::var(CHILD_TO).expect(CHILD_TO);
    let options = ImportOptions {
        progress: Some(Arc::new(|p| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{PROGRESS} {} {}/{}",
                p.table, p.rows_done, p.rows_total
            );
            let _ = out.flush();
        })),
        ..kill_options()
    };
    let _ = import_handshake(&from, &to, &options);
}

/// Reruns a resumable import until it succeeds (`sigkill::resume_to_the_end`).
fn resume_to_the_end(from: &str, to: &str) -> ImportReport {
    sigkill::resume_to_the_end(|| import_handshake(from, to, &kill_options()))
}

fn sigkill_then_resume(from: &str, to: &str) {
    let source = legacy(from, LegacyBuild::default());
    fill_bulk(&source, 1_000, 2_000).unwrap();
    let before = fingerprint(&source);
    let t = target(to);
    for _ in 0..3 {
        sigkill::kill_mid_work(
            "import_child",
            &[(CHILD_FROM, source.url()), (CHILD_TO, t.url())],
            PROGRESS,
            2 + random_below(6),
        );
    }
    let report = resume_to_the_end(source.url(), t.url());
    assert!(report.copy.resumed);
    assert_counts_add_up(&report);
    let total: u64 = report.tables.iter().map(|t| t.imported_rows).sum();
    assert_eq!(total, 3 + 2_000 + 3 * 1_000, "every row");
    assert!(fingerprint(&source) == before, "the source changed");
}

// ---------------------------------------------------------------------------
// Stamping

macro_rules! import_tests {
    ($module:ident, $from:literal, $to:literal) => {
        mod $module {
            import_tests!(@cases $from, $to;
                imports_every_table_exactly,
                crlf_checksums_and_the_v8_without_is_pinned,
                bad_rows_stop_the_import_until_mended,
                bad_rows_go_to_quarantine,
                unknown_schemas_are_refused,
                sigkill_then_resume
            );
        }
    };
    (@cases $from:literal, $to:literal; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                super::$case($from, $to)
            }
        )*
    };
}

#[cfg(feature = "sqlite")]
import_tests!(sqlite_to_sqlite, "sqlite", "sqlite");
#[cfg(all(feature = "sqlite", feature = "postgres"))]
import_tests!(sqlite_to_postgres, "sqlite", "postgres");
#[cfg(all(feature = "sqlite", feature = "postgres"))]
import_tests!(postgres_to_sqlite, "postgres", "sqlite");
#[cfg(feature = "postgres")]
import_tests!(postgres_to_postgres, "postgres", "postgres");
