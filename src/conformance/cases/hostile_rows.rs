//! Hostile values planted by other software or shaped to confuse SQL:
//! deep JSON and huge numbers in rows, SQL and `LIKE` metacharacters in ids,
//! empty and blank ids, corrupt enums in every column, extreme thresholds.

#[allow(unused_imports)]
use super::*;

/// Every JSON column a case can damage, with the call that reads it.
pub(super) const JSON_COLUMNS: [(&str, &str); 4] = [
    ("blocks", "derived_content"),
    ("canvas_nodes", "data"),
    ("ai_jobs", "job_inputs"),
    ("workflow_node_executions", "input_payload"),
];

/// Reads the one row of `table` that [`fixture`] (plus one node) holds.
pub(super) fn read_json_column(h: &Harness, fx: &Fixture, table: &str) -> StorageResult<Value> {
    let s = h.store();
    Ok(match table {
        "blocks" => s.get_block("json-block")?.derived_content,
        "canvas_nodes" => s.get_canvas_with_graph(&fx.canvas)?.nodes.remove(0).data,
        "ai_jobs" => s.get_ai_job(fx.job)?.job_inputs.unwrap_or(Value::Null),
        "workflow_node_executions" => s
            .list_workflow_node_executions(fx.run)?
            .remove(0)
            .input_payload
            .unwrap_or(Value::Null),
        other => unreachable!("no JSON column in {other}"),
    })
}

/// A fixture whose JSON columns each hold one row.
pub(super) fn json_fixture(h: &Harness) -> Fixture {
    let fx = fixture(h);
    h.store()
        .update_canvas_graph(&human(), &fx.canvas, vec![node("n", 0.0, 0.0)], vec![])
        .expect("one node");
    fx
}

/// Writes `json_text` (SQL-quoted) into every JSON column by raw SQL.
pub(super) fn plant_json(h: &Harness, json_text: &str) {
    let literal = json_text.replace('\'', "''");
    for (table, column) in JSON_COLUMNS {
        let sql = format!("UPDATE {table} SET {column} = '{literal}'");
        assert_eq!(
            h.execute_sql(&sql).expect("plant JSON"),
            1,
            "{table}.{column}"
        );
    }
}

/// JSON nested deeper than the JSON reader allows (200 and 10,000 levels),
/// planted in the database by raw SQL, reads back as `Serialization` on
/// every backend, never a crash; a repaired row reads again.
pub fn hostile_deep_json_in_row_is_serialization(h: &Harness) {
    let fx = json_fixture(h);
    for depth in [200, 10_000] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            plant_json(h, &text);
            for (table, _) in JSON_COLUMNS {
                let result = read_json_column(h, &fx, table).map(drop);
                assert_fails(
                    &format!("{depth} levels in {table}"),
                    result,
                    ErrorKind::Serialization,
                );
            }
        }
    }
    plant_json(h, "{\"ok\": [1]}");
    for (table, _) in JSON_COLUMNS {
        let read = read_json_column(h, &fx, table).expect("repaired row");
        assert_eq!(read, json!({"ok": [1]}), "{table}");
    }
}

/// JSON numbers beyond i64/u64 planted in the database: an integer too big
/// for 64 bits reads as the nearest `f64`, a number beyond `f64`'s range
/// is `Serialization`, one below its smallest magnitude reads as 0.0; the
/// same on every backend.
pub fn hostile_json_numbers_beyond_64_bits_in_row(h: &Harness) {
    let fx = json_fixture(h);
    let readable = [
        (
            "123456789012345678901234567890",
            json!(1.2345678901234568e29),
        ),
        (
            "-123456789012345678901234567890",
            json!(-1.2345678901234568e29),
        ),
        ("[18446744073709551616]", json!([18446744073709551616.0])),
        ("1e-400", json!(0.0)),
    ];
    for (text, expected) in readable {
        plant_json(h, text);
        for (table, _) in JSON_COLUMNS {
            let read = read_json_column(h, &fx, table)
                .unwrap_or_else(|e| panic!("{text} in {table}: {e:?}"));
            assert_eq!(read, expected, "{text} in {table}");
        }
    }
    for text in ["1e400", "[-1e400]", "{\"n\": 1e309}"] {
        plant_json(h, text);
        for (table, _) in JSON_COLUMNS {
            let result = read_json_column(h, &fx, table).map(drop);
            assert_fails(
                &format!("{text} in {table}"),
                result,
                ErrorKind::Serialization,
            );
        }
    }
}

/// Ids, names and filters full of SQL and pattern metacharacters.
pub(super) const METACHARACTER_IDS: [&str; 16] = [
    "'",
    "''",
    "\"",
    "%",
    "_",
    "\\",
    "\\%",
    "a%",
    "a_c",
    "abc",
    "'; DROP TABLE blocks; --",
    "\" OR 1=1 --",
    "NULL",
    "$1",
    "e\u{301} 😀 \u{202e}",
    " ",
];

/// Ids with quotes, percent signs, underscores, backslashes and SQL
/// keywords round-trip exactly and match only themselves (no `LIKE`
/// leakage, no injection), in lookups, deletes and the `wsid` filter.
pub fn hostile_metacharacter_ids_match_only_themselves(h: &Harness) {
    let doc = seed_document(h);
    let s = h.store();
    for id in METACHARACTER_IDS {
        let block = add_block(h, &doc.id, 0, Some(id));
        assert_eq!(block.id, id);
        assert_eq!(s.get_block(id).expect("get").id, id);
    }
    assert_eq!(blocks_of(h, &doc.id).len(), METACHARACTER_IDS.len());
    for absent in ["%%", "a", "ab", "\\\\", "' OR '1'='1", "*", "."] {
        expect_kind(s.get_block(absent), ErrorKind::NotFound);
        expect_kind(s.delete_block(&human(), absent), ErrorKind::NotFound);
    }
    s.delete_block(&human(), "%").expect("delete %");
    s.delete_block(&human(), "_").expect("delete _");
    let left: BTreeSet<String> = blocks_of(h, &doc.id).into_iter().map(|b| b.id).collect();
    let expected: BTreeSet<String> = METACHARACTER_IDS
        .iter()
        .filter(|id| !["%", "_"].contains(id))
        .map(|id| id.to_string())
        .collect();
    assert_eq!(left, expected, "a delete removed only its own id");
    let canvas = seed_canvas_in(h, &doc.workspace_id, "'; DROP TABLE canvases; --");
    let nodes = METACHARACTER_IDS
        .iter()
        .map(|id| node(id, 0.0, 0.0))
        .collect();
    let edges = METACHARACTER_IDS
        .iter()
        .map(|id| edge(id, id, "%"))
        .collect();
    let written = s
        .update_canvas_graph(&human(), &canvas.id, nodes, edges)
        .expect("graph with metacharacter ids");
    let mut expected: Vec<&str> = METACHARACTER_IDS.to_vec();
    expected.sort_unstable();
    assert_eq!(node_ids(&written), expected);
    assert_eq!(graph_of(h, &canvas.id), written);
    let jobs: Vec<AiJob> = METACHARACTER_IDS
        .iter()
        .map(|id| {
            s.create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref(id)]))
                .expect("job")
        })
        .collect();
    for (id, job) in METACHARACTER_IDS.iter().zip(&jobs) {
        let filter = AiJobListFilter {
            wsid: Some(id.to_string()),
            ..AiJobListFilter::default()
        };
        let found = job_ids(&s.list_ai_jobs(filter).expect("list by wsid"));
        assert_eq!(found, vec![job.job_id], "wsid {id:?} matched other ids");
    }
    for name in METACHARACTER_IDS.iter().filter(|n| !n.trim().is_empty()) {
        let ws = seed_workspace_named(h, name);
        assert_eq!(
            s.get_workspace(&ws.id).expect("get").expect("some").name,
            *name
        );
    }
    assert!(s.list_workspaces().expect("tables still there").len() > 1);
}

/// Empty and blank ids: an empty id given to a write is `Validation`; a
/// blank one is an id like any other (exact, distinct from other blanks);
/// an empty id in a lookup finds nothing.
pub fn hostile_empty_and_blank_ids(h: &Harness) {
    let doc = seed_document(h);
    let ws = doc.workspace_id.clone();
    let canvas = seed_canvas_in(h, &ws, "c");
    let before = content_view(h, &ws);
    let s = h.store();
    let results: Vec<(&str, StorageResult<()>)> = vec![
        (
            "block id",
            s.create_block(&human(), new_block(&doc.id, 0, Some("")))
                .map(drop),
        ),
        (
            "block document_id",
            s.create_block(&human(), new_block("", 0, None)).map(drop),
        ),
        (
            "document workspace_id",
            s.create_document(&human(), new_doc("", "t")).map(drop),
        ),
        (
            "canvas workspace_id",
            s.create_canvas(&human(), new_canvas("", "t")).map(drop),
        ),
        (
            "edge from_node_id",
            s.update_canvas_graph(
                &human(),
                &canvas.id,
                vec![node("a", 0.0, 0.0)],
                vec![edge("e", "", "a")],
            )
            .map(drop),
        ),
        (
            "edge to_node_id",
            s.update_canvas_graph(
                &human(),
                &canvas.id,
                vec![node("a", 0.0, 0.0)],
                vec![edge("e", "a", "")],
            )
            .map(drop),
        ),
    ];
    assert_all_fail(results, ErrorKind::Validation);
    assert_eq!(content_view(h, &ws), before, "nothing written");
    assert!(s.get_workspace("").expect("lookup").is_none());
    expect_kind(s.get_document(""), ErrorKind::NotFound);
    expect_kind(s.get_block(""), ErrorKind::NotFound);
    expect_kind(s.get_canvas_with_graph(""), ErrorKind::NotFound);
    assert!(s.list_documents("").expect("list").is_empty());
    assert!(s.get_blocks("").expect("list").is_empty());
    assert!(s.list_canvases("").expect("list").is_empty());
    expect_kind(s.delete_block(&human(), ""), ErrorKind::NotFound);
    expect_kind(s.delete_workspace(&human(), ""), ErrorKind::NotFound);
    let blanks = [" ", "  ", "\t", "\n", "\u{a0}"];
    for id in blanks {
        add_block(h, &doc.id, 0, Some(id));
    }
    for id in blanks {
        assert_eq!(s.get_block(id).expect("blank id").id, id);
    }
    let nodes = blanks.iter().map(|id| node(id, 0.0, 0.0)).collect();
    let written = s
        .update_canvas_graph(&human(), &canvas.id, nodes, vec![edge(" ", " ", "  ")])
        .expect("blank node ids");
    assert_eq!(written.nodes.len(), blanks.len());
    assert_eq!(graph_of(h, &canvas.id), written);
    // Empty text that is not an id (entity refs, actor ids, execution node
    // ids) is stored and matched exactly.
    let empty_ref = EntityRef {
        entity_id: String::new(),
        entity_kind: String::new(),
    };
    let jobs = [
        s.create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref("")]))
            .expect("empty workspace ref"),
        s.create_ai_job(new_job(JobKind::DocEdit, vec![empty_ref]))
            .expect("empty entity ref"),
        s.create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref(" ")]))
            .expect("blank workspace ref"),
    ];
    for job in &jobs {
        assert_eq!(&job_by(h, job.job_id), job);
    }
    let by_wsid = |wsid: &str| {
        let filter = AiJobListFilter {
            wsid: Some(wsid.into()),
            ..AiJobListFilter::default()
        };
        job_ids(&s.list_ai_jobs(filter).expect("list by wsid"))
    };
    assert_eq!(by_wsid(""), vec![jobs[0].job_id]);
    assert_eq!(by_wsid(" "), vec![jobs[2].job_id]);
    let empty_actor = WriteContext::human(Some(String::new()));
    let ws = s
        .create_workspace(&empty_actor, NewWorkspace { name: "w".into() })
        .expect("empty actor id");
    let read = s.get_workspace(&ws.id).expect("get").expect("some");
    assert_eq!(read.provenance.actor_id.as_deref(), Some(""));
    let run = add_run(h, jobs[0].job_id, JobState::Running);
    let exec = add_exec(h, run.id, "", 0);
    assert_eq!(execs(h, run.id), vec![exec]);
}

/// Corrupt enum strings in the columns the first corruption case leaves
/// out: every read of the row is `Serialization`, and restoring the value
/// makes it readable again.
pub fn hostile_corrupt_enum_in_every_column_is_serialization(h: &Harness) {
    let doc = seed_document(h);
    let ws = doc.workspace_id.clone();
    add_block(h, &doc.id, 0, Some("b"));
    let canvas = seed_canvas_in(h, &ws, "c");
    seed_graph(h, &canvas.id);
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    h.store()
        .heartbeat_workflow(run.id, Utc::now() - Duration::hours(1))
        .expect("old heartbeat");
    let s = h.store();
    let reads = |table: &str| -> Vec<(&'static str, StorageResult<()>)> {
        match table {
            "documents" => vec![
                ("get_document", s.get_document(&doc.id).map(drop)),
                ("list_documents", s.list_documents(&ws).map(drop)),
            ],
            "canvases" => vec![
                (
                    "get_canvas_with_graph",
                    s.get_canvas_with_graph(&canvas.id).map(drop),
                ),
                ("list_canvases", s.list_canvases(&ws).map(drop)),
            ],
            "canvas_nodes" | "canvas_edges" => vec![(
                "get_canvas_with_graph",
                s.get_canvas_with_graph(&canvas.id).map(drop),
            )],
            other => unreachable!("no reads of {other}"),
        }
    };
    // (table, column, corrupt value, valid value, rows)
    let corruptions = [
        ("documents", "last_actor_kind", "'Human'", "'HUMAN'", 1),
        ("canvases", "last_actor_kind", "'system '", "'HUMAN'", 1),
        ("canvas_nodes", "last_actor_kind", "'AGENT'", "'HUMAN'", 3),
        ("canvas_edges", "last_actor_kind", "''", "'HUMAN'", 2),
    ];
    for (table, column, bad, good, rows) in corruptions {
        let set = |value: &str| {
            let sql = format!("UPDATE {table} SET {column} = {value}");
            assert_eq!(h.execute_sql(&sql).expect("raw update"), rows, "{sql}");
        };
        set(bad);
        for (what, result) in reads(table) {
            assert_fails(
                &format!("{what} with {table}.{column} = {bad}"),
                result,
                ErrorKind::Serialization,
            );
        }
        set(good);
        for (what, result) in reads(table) {
            result.unwrap_or_else(|e| panic!("{what} after restoring {table}.{column}: {e:?}"));
        }
    }
    // No call reads a run without writing it: a run whose status is not
    // ours is not `running`, so it is never stalled, and a status update
    // overwrites it.
    let sql = "UPDATE workflow_runs SET status = 'RUNNING'";
    assert_eq!(h.execute_sql(sql).expect("raw update"), 1);
    assert!(s.find_stalled_workflows(1).expect("stalled").is_empty());
    let repaired = s
        .update_workflow_run_status(run.id, JobState::Running, None)
        .expect("status update over a corrupt status");
    assert_eq!(repaired.status, JobState::Running);
    assert_eq!(
        s.find_stalled_workflows(1).expect("stalled"),
        vec![repaired]
    );
}

/// Extreme thresholds, cutoffs and filters give sane answers, never a
/// panic or an overflow: a stall threshold reaching before year 1 finds
/// nothing, 0 finds every running run with a past heartbeat; a cutoff in
/// the future prunes every eligible job, one in year 1 none; `min_versions`
/// of `u32::MAX` spares them all; `from > to` and `limit 0` list nothing.
pub fn hostile_extreme_thresholds_cutoffs_and_filters(h: &Harness) {
    let s = h.store();
    let job = add_job(h);
    let ancient = add_run(h, job.job_id, JobState::Running);
    let year_one = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
    s.heartbeat_workflow(ancient.id, year_one)
        .expect("heartbeat");
    let recent = add_run(h, job.job_id, JobState::Running);
    s.heartbeat_workflow(recent.id, Utc::now() - Duration::hours(1))
        .expect("heartbeat");
    let stalled = |threshold: u64| -> Vec<Uuid> {
        s.find_stalled_workflows(threshold)
            .unwrap_or_else(|e| panic!("threshold {threshold}: {e:?}"))
            .iter()
            .map(|r| r.id)
            .collect()
    };
    let since_year_one = (Utc::now() - year_one).num_seconds() as u64;
    assert_eq!(stalled(0), vec![ancient.id, recent.id]);
    assert_eq!(stalled(2 * 3_600), vec![ancient.id]);
    assert_eq!(stalled(since_year_one - 3_600), vec![ancient.id]);
    for huge in [
        since_year_one + 3_600,
        i64::MAX as u64,
        i64::MAX as u64 + 1,
        u64::MAX,
    ] {
        assert!(stalled(huge).is_empty(), "threshold {huge}");
    }

    use JobState::*;
    let jobs = seed_jobs(
        h,
        &[
            (Completed, false),
            (Failed, false),
            (Completed, true),
            (Running, false),
        ],
    );
    let all = all_jobs(h);
    let far_future = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    for cutoff in [year_one, Utc::now() - Duration::days(365 * 1000)] {
        for dry_run in [true, false] {
            let report = prune(h, cutoff, 0, dry_run);
            assert_eq!(report.items_pruned, 0, "cutoff {cutoff}");
        }
        assert_eq!(all_jobs(h), all, "an old cutoff prunes nothing");
    }
    for dry_run in [true, false] {
        let report = prune(h, far_future, u32::MAX, dry_run);
        assert_eq!((report.items_pruned, report.items_spared_window), (0, 2));
    }
    assert_eq!(all_jobs(h), all, "u32::MAX min_versions prunes nothing");
    let dry = prune(h, far_future, 0, true);
    let real = prune(h, Utc::now() + Duration::days(1), 0, false);
    assert_eq!(
        counts(&dry),
        counts(&real),
        "dry run reports what a run does"
    );
    assert_eq!(real.items_pruned, 2);
    let kept: BTreeSet<Uuid> = job_ids(&all_jobs(h)).into_iter().collect();
    let expected: BTreeSet<Uuid> = [job.job_id, jobs[2].job_id, jobs[3].job_id].into();
    assert_eq!(
        kept, expected,
        "the pinned and the running job and the first job remain"
    );

    let now = Utc::now();
    let list = |filter: AiJobListFilter| s.list_ai_jobs(filter).expect("list");
    let window = |from, to| AiJobListFilter {
        from: Some(from),
        to: Some(to),
        ..AiJobListFilter::default()
    };
    assert!(list(window(now + Duration::days(1), now - Duration::days(1))).is_empty());
    assert!(list(window(far_future, year_one)).is_empty());
    assert!(list(window(now, now)).is_empty(), "an empty window");
    assert_eq!(list(window(year_one, far_future)).len(), 3);
    let limited = |limit| AiJobListFilter {
        limit: Some(limit),
        ..AiJobListFilter::default()
    };
    assert!(list(limited(0)).is_empty(), "limit 0");
    assert_eq!(list(limited(u32::MAX)).len(), 3);
}
