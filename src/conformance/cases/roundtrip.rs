//! Round trips: every value type comes back exactly as written
//! (floats, extreme integers, JSON shapes, large unicode text, microsecond
//! timestamps).

#[allow(unused_imports)]
use super::*;

/// Node positions round-trip exactly, extremes and subnormals included (`-0.0`
/// reads as `0.0` on every backend).
pub fn roundtrip_f64_positions(h: &Harness) {
    let canvas = seed_canvas(h);
    let values = [
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        5e-324,
        0.1 + 0.2,
        -1.5,
        1e300,
        std::f64::consts::PI,
        0.0,
        -0.0,
        -f64::MIN_POSITIVE,
    ];
    let nodes = values
        .iter()
        .enumerate()
        .map(|(i, v)| node(&format!("p{i:02}"), *v, -*v))
        .collect();
    let written = h
        .store()
        .update_canvas_graph(&human(), &canvas.id, nodes, Vec::new())
        .expect("write positions");
    let read = graph_of(h, &canvas.id);
    assert_eq!(read, written);
    assert_eq!(read.nodes.len(), values.len());
    // -0.0 is stored as 0.0 on every backend (SQLite's REAL drops the sign).
    let stored = |v: f64| if v == 0.0 { 0.0_f64 } else { v };
    for (n, v) in read.nodes.iter().zip(values) {
        assert_eq!(
            n.position_x.to_bits(),
            stored(v).to_bits(),
            "x of {}: {} != {v}",
            n.id,
            n.position_x
        );
        assert_eq!(
            n.position_y.to_bits(),
            stored(-v).to_bits(),
            "y of {}: {} != {}",
            n.id,
            n.position_y,
            -v
        );
    }
}

/// Block sequences round-trip at `i64::MIN` and `i64::MAX` and order correctly.
pub fn roundtrip_i64_sequence_extremes(h: &Harness) {
    let doc = seed_document(h);
    let sequences = [i64::MAX, 0, i64::MIN, -1, i64::MIN + 1, i64::MAX - 1, 1];
    for (i, seq) in sequences.iter().enumerate() {
        add_block(h, &doc.id, *seq, Some(&format!("s{i}")));
    }
    let mut expected = sequences.to_vec();
    expected.sort_unstable();
    let read: Vec<i64> = blocks_of(h, &doc.id).iter().map(|b| b.sequence).collect();
    assert_eq!(read, expected);
    for seq in [i64::MIN, i64::MAX] {
        let update = BlockUpdate {
            sequence: Some(seq),
            ..BlockUpdate::default()
        };
        let updated = h
            .store()
            .update_block(&human(), "s1", update)
            .expect("update sequence");
        assert_eq!(updated.sequence, seq);
        assert_eq!(h.store().get_block("s1").expect("get").sequence, seq);
    }
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    for seq in [i64::MAX, i64::MIN] {
        add_exec(h, run.id, "n", seq);
    }
    let read: Vec<i64> = execs(h, run.id).iter().map(|e| e.sequence).collect();
    assert_eq!(read, [i64::MIN, i64::MAX]);
}

pub(super) fn exec_by(h: &Harness, run: Uuid, exec: Uuid) -> WorkflowNodeExecution {
    execs(h, run)
        .into_iter()
        .find(|e| e.id == exec)
        .expect("node execution listed")
}

/// Every place the API stores JSON.
pub(super) const JSON_CHANNELS: [&str; 8] = [
    "block derived_content (create)",
    "block derived_content (update)",
    "canvas node data",
    "job inputs",
    "job outputs (set_job_outputs)",
    "job outputs (status update)",
    "node execution input",
    "node execution output",
];

/// Writes `v` through the JSON channel named `channel` and reads it back.
pub(super) fn json_write(
    h: &Harness,
    fx: &Fixture,
    channel: &str,
    v: Value,
) -> StorageResult<Value> {
    let s = h.store();
    let some = |v: Option<Value>| v.expect("stored JSON is Some");
    Ok(match channel {
        "block derived_content (create)" => {
            let block = edited(new_block(&fx.doc, 1, None), |b| b.derived_content = Some(v));
            let id = s.create_block(&human(), block)?.id;
            s.get_block(&id)?.derived_content
        }
        "block derived_content (update)" => {
            let update = edited(BlockUpdate::default(), |u| u.derived_content = Some(v));
            s.update_block(&human(), "json-block", update)?;
            s.get_block("json-block")?.derived_content
        }
        "canvas node data" => {
            let n = edited(node("json-node", 1.0, 2.0), |n| n.data = Some(v));
            s.update_canvas_graph(&human(), &fx.canvas, vec![n], Vec::new())?;
            s.get_canvas_with_graph(&fx.canvas)?.nodes.remove(0).data
        }
        "job inputs" => {
            let job = edited(new_job(JobKind::DocIngest, Vec::new()), |j| {
                j.job_inputs = Some(v)
            });
            let id = s.create_ai_job(job)?.job_id;
            some(s.get_ai_job(id)?.job_inputs)
        }
        "job outputs (set_job_outputs)" => {
            s.set_job_outputs(fx.job, Some(v))?;
            some(s.get_ai_job(fx.job)?.job_outputs)
        }
        "job outputs (status update)" => {
            let update = edited(status_update(fx.job, JobState::Running), |u| {
                u.job_outputs = Some(v)
            });
            s.update_ai_job_status(update)?;
            some(s.get_ai_job(fx.job)?.job_outputs)
        }
        "node execution input" => {
            let exec = edited(new_exec(fx.run, "in", 1), |e| e.input_payload = Some(v));
            let id = s.create_workflow_node_execution(exec)?.id;
            some(exec_by(h, fx.run, id).input_payload)
        }
        "node execution output" => {
            s.update_workflow_node_execution_status(fx.exec, JobState::Running, Some(v), None)?;
            some(exec_by(h, fx.run, fx.exec).output_payload)
        }
        other => unreachable!("no JSON channel named {other}"),
    })
}

/// Asserts that each of `values` comes back equal through every channel.
#[track_caller]
pub(super) fn assert_json_roundtrips(h: &Harness, fx: &Fixture, values: &[Value]) {
    for channel in JSON_CHANNELS {
        for value in values {
            let read = json_write(h, fx, channel, value.clone())
                .unwrap_or_else(|e| panic!("{channel}: writing {value}: {e:?}"));
            assert!(
                &read == value,
                "{channel} changed the value {value}: read {read}"
            );
        }
    }
}

/// Everything the JSON channels can change.
pub(super) type JsonView = (
    Vec<Block>,
    CanvasGraph,
    Vec<AiJob>,
    Vec<WorkflowNodeExecution>,
);

pub(super) fn json_view(h: &Harness, fx: &Fixture) -> JsonView {
    (
        blocks_of(h, &fx.doc),
        graph_of(h, &fx.canvas),
        all_jobs(h),
        execs(h, fx.run),
    )
}

/// Asserts that every JSON channel refuses each of `values` with
/// `Validation` and that nothing changes.
#[track_caller]
pub(super) fn assert_json_refused(h: &Harness, fx: &Fixture, values: &[(&str, Value)]) {
    let before = json_view(h, fx);
    for channel in JSON_CHANNELS {
        for (what, value) in values {
            let result = json_write(h, fx, channel, value.clone());
            assert_fails(
                &format!("{what} through {channel}"),
                result,
                ErrorKind::Validation,
            );
        }
    }
    assert_eq!(
        json_view(h, fx),
        before,
        "a refused JSON write changed something"
    );
}

/// Nested objects `{"k": {"k": ... 1}}`, `depth` of them.
pub(super) fn deep_object(depth: usize) -> Value {
    // Not `json!`: it would serialize `inner` recursively at every level.
    (0..depth).fold(json!(1), |inner, _| {
        Value::Object(serde_json::Map::from_iter([("k".to_string(), inner)]))
    })
}

/// JSON values of every shape round-trip unchanged in every JSON field.
pub fn roundtrip_json_shapes(h: &Harness) {
    let values = vec![
        json!({"a": {"b": {"c": [1, [2, [3, {"d": null}]]]}}, "e": [true, false]}),
        json!({"emoji": "😀🎉👩‍👩‍👧", "cjk": "漢字かなカナ한국어", "rtl": "שלום مرحبا", "combining": "e\u{301}a\u{308}"}),
        json!({"ключ 🔑": "значение", "quote\"back\\slash": "tab\tnew\nline"}),
        json!([u64::MAX, i64::MIN, 0.1, 1e300, -0.5, 0, -1]),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(0.1),
        json!(1e300),
        // Whole floats that serde_json writes in exponent form: jsonb must
        // not turn them into integers.
        json!([
            1e16,
            1.5e17,
            -1e18,
            1e19,
            9007199254740993.0,
            f64::MAX,
            1.5e-7
        ]),
        json!(1e16),
        json!({}),
        json!([]),
        json!(null),
        json!(true),
        json!(false),
        json!("just a string"),
        json!([{}, [], {"": ""}]),
        deep_json(50),
        deep_object(50),
    ];
    assert_json_roundtrips(h, &fixture(h), &values);
}

/// More than 1 MiB of text mixing one- to four-byte UTF-8 sequences.
pub(super) fn large_text() -> String {
    let piece = "héllo wörld 🌍 中文字 עברית e\u{301} ∑ ";
    let text = piece.repeat((1 << 20) / piece.len() + 64);
    assert!(text.len() > 1 << 20);
    text
}

/// Large Unicode text round-trips byte for byte.
pub fn roundtrip_large_unicode_text(h: &Harness) {
    let doc = seed_document(h);
    let text = large_text();
    let block = h
        .store()
        .create_block(
            &human(),
            NewBlock {
                raw_content: text.clone(),
                ..new_block(&doc.id, 1, Some("big"))
            },
        )
        .expect("create big block");
    let read = h.store().get_block("big").expect("get big block");
    assert_eq!(read, block);
    assert_eq!(read.raw_content.len(), text.len());
    assert!(read.raw_content == text && read.display_content == text);
    let reversed: String = text.chars().rev().collect();
    let update = BlockUpdate {
        display_content: Some(reversed.clone()),
        ..BlockUpdate::default()
    };
    h.store()
        .update_block(&human(), "big", update)
        .expect("update big block");
    let read = h.store().get_block("big").expect("get again");
    assert!(
        read.display_content == reversed,
        "updated display content differs"
    );
    assert!(read.raw_content == text);
    let name = "名前 🏷️ Ωmega e\u{301}";
    let ws = seed_workspace_named(h, name);
    assert_eq!(
        h.store()
            .get_workspace(&ws.id)
            .expect("get")
            .expect("some")
            .name,
        name
    );
}

/// Timestamps keep microseconds (nanoseconds are truncated) and compare as
/// instants.
pub fn roundtrip_timestamps_microseconds(h: &Harness) {
    let job = add_job(h);
    let run = add_run(h, job.job_id, JobState::Running);
    let micros = Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap();
    let nanos = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
    // Reads the heartbeat back through the stalled list (past times) and
    // through the row a status update returns (any time).
    let heartbeat_of = |at: DateTime<Utc>| {
        h.store().heartbeat_workflow(run.id, at).expect("heartbeat");
        let stalled = h.store().find_stalled_workflows(1).expect("stalled");
        let row = h
            .store()
            .update_workflow_run_status(run.id, JobState::Running, None)
            .expect("read run");
        if at < Utc::now() {
            assert_eq!(stalled.len(), 1, "the run is stalled");
            assert_eq!(stalled[0].last_heartbeat, row.last_heartbeat);
        } else {
            assert!(stalled.is_empty(), "a future heartbeat is not stalled");
        }
        row.last_heartbeat
    };
    assert_eq!(heartbeat_of(micros), micros);
    assert_eq!(heartbeat_of(nanos), micros, "nanoseconds are truncated");
    let extremes = [
        Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap() + Duration::microseconds(999_999),
        Utc.timestamp_opt(0, 1_000).unwrap(),
        Utc.timestamp_opt(-1, 999_999_000).unwrap(),
    ];
    for at in extremes {
        assert_eq!(heartbeat_of(at), at);
    }
    let started = [micros, nanos, extremes[0], extremes[1]];
    for (i, at) in started.iter().enumerate() {
        let exec = NewNodeExecution {
            started_at: *at,
            ..new_exec(run.id, "t", i as i64)
        };
        let created = h
            .store()
            .create_workflow_node_execution(exec)
            .expect("create exec");
        assert_eq!(
            created.started_at.timestamp_subsec_nanos() % 1_000,
            0,
            "microseconds"
        );
    }
    let read: Vec<DateTime<Utc>> = execs(h, run.id).iter().map(|e| e.started_at).collect();
    assert_eq!(read, [micros, micros, extremes[0], extremes[1]]);
    let given = h
        .store()
        .create_workflow_run(job.job_id, JobState::Queued, Some(nanos))
        .expect("run with heartbeat");
    assert_eq!(given.last_heartbeat, micros);
}
