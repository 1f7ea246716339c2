//! Differential property test: random sequences of storage operations,
//! hostile values mixed in, applied step by step to a SQLite store and a
//! PostgreSQL store. Every step must give the same result, or an error of the
//! same kind, on both; after the sequence a dump of both stores must be equal.
//! A failure is shrunk by proptest to a minimal sequence of operations; its
//! seed is saved in `tests/differential.proptest-regressions` and replayed
//! first on every later run.
//!
//! The operations: create/delete/get of workspaces, documents, blocks and
//! canvases, `update_block`, `replace_blocks`, `update_canvas_graph`, AI jobs
//! (create, status changes, outputs, pin, list with filters and cursor), workflow runs
//! and node executions (create, status, heartbeat, stalled), the guard, and
//! `prune_ai_jobs` (dry run or not). Hostile values are mixed in: NUL bytes,
//! blank and empty strings and ids, duplicate ids, missing parents, SQL and
//! LIKE metacharacters, quotes, backslashes and unicode in ids, NaN,
//! infinities and `-0.0` positions, extreme `i64`/`u64`/`u32` values, JSON
//! nested past the limit or holding large or awkward numbers, AI writes
//! without job or workflow, 80 KB strings, and times outside years 1..=9999.
//!
//! The final dump: every workspace with its documents, blocks, canvases and
//! graphs, every job, the executions of every run the case created, the
//! stalled runs, and each table's row count.
//!
//! Cases: 256 by default; `PROPTEST_CASES=5000 cargo test --features postgres
//! --test differential` runs more. Needs `POSTGRES_TEST_URL` (fails without).
//!
//! One store per backend serves every case (cleared between cases), so a
//! case costs a few dozen round trips, not a fresh schema.
//!
//! # What is compared, and how values the stores generate are normalised
//!
//! Each result is serialised to JSON (`Ok`) or reduced to its error kind
//! (`Err`). The stores generate values the caller cannot predict; those are
//! replaced before comparing, consistently across the whole sequence:
//! - UUIDs the store generates (content ids given as `None`, workspace,
//!   document and canvas ids, job, run and execution ids, edit event ids)
//!   become `uuid#n`, numbered by first appearance. Equal ids stay equal, so
//!   an id's later uses are still checked. Caller-chosen UUIDs have their
//!   top 64 bits zero and are compared verbatim.
//! - Timestamps the store generates ("now", in `created_at`, `updated_at`,
//!   `finished_at`, default heartbeats) become `time#n` by first appearance,
//!   so which rows share a write time is checked. Caller-given timestamps
//!   (fixed years up to 2020 or 9999, and the "marks" taken between steps)
//!   are compared verbatim. The `timestamp` of a guard result or prune
//!   report (a bare "now") is only checked to be present.
//! - Ids are referred to by position: "the k-th workspace this case
//!   created", resolved per store, so both stores get the same logical id.
//!
//! Generated ids are random, so an order that ties on them would differ by
//! chance. The generators avoid such ties rather than hide them: caller ids
//! never start with `0-9a-f` (so they sort wholly before or after every
//! UUID), a block with a generated id gets a sequence no other block has, a
//! graph has at most one generated node id and one generated edge id, and
//! node execution sequences and run heartbeats are unique per step.
//!
//! JSON is compared as text, so `-0.0` and `0.0` differ (`Value`'s `==`
//! would call them equal).

#![cfg(all(feature = "sqlite", feature = "postgres"))]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, TimeZone, Utc};
use handshake_storage::conformance::{Harness, TestTarget};
use handshake_storage::*;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Value pools: plain and hostile values side by side.

/// Free text that every store accepts, hostile to SQL and to encodings.
const TEXTS: &[&str] = &[
    "plain",
    "'; DROP TABLE blocks; --",
    "100% _done_",
    "back\\slash",
    "\"double\" 'single'",
    "ünïcødé 🦀",
    "line\nbreak\ttab",
    "NULL",
];

/// Free text some fields refuse: blank, or holding a NUL byte.
const BAD_TEXTS: &[&str] = &["", "   ", "a\0b"];

/// Caller-chosen ids. None starts with `0-9a-f` (see the module doc).
const IDS: &[&str] = &[
    "n1",
    "n2",
    "n3",
    "x'y",
    "%_%",
    "z\\b",
    "select * from blocks;--",
    "über",
    "🦀",
    "q\"q",
    " ",
    "-",
    "",
    "k\0",
];

/// Ids that name nothing (or cannot name anything).
const MISSING: &[&str] = &["nope", "", "'; DROP TABLE workspaces; --", "a\0", "%"];

const ACTORS: &[Option<&str>] = &[None, Some("ilja"), Some(""), Some("a\0"), Some("o'brien")];

const SEQUENCES: &[i64] = &[i64::MIN, -1, 0, 1, 2, 7, i64::MAX];

const COORDINATES: &[f64] = &[
    0.0,
    -0.0,
    1.5,
    -1e300,
    f64::MAX,
    f64::MIN_POSITIVE,
    5e-324,
    0.1,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

const JSON_FLOATS: &[f64] = &[
    0.5,
    -0.0,
    1e16,
    1.0e300,
    5e-324,
    0.30000000000000004,
    -1.5e-7,
    123456789.125,
];

const JSON_KEYS: &[&str] = &["a", "", "ünï", "k\0", "$ref", "'"];

const ENTITY_KINDS: &[&str] = &["workspace", "document", "", "'x"];

/// Caller-given times: all before 2021 or in 9999, so they never look like
/// "now" (see the module doc). The last has nanoseconds (truncated on write).
fn fixed_time(i: usize) -> DateTime<Utc> {
    let (y, m, d, h, min, s, nano) = [
        (1, 1, 1, 0, 0, 0, 0),
        (2000, 1, 1, 0, 0, 0, 0),
        (2020, 6, 15, 12, 34, 56, 789_012_000),
        (9999, 12, 31, 23, 59, 59, 999_999_000),
        (2001, 1, 1, 0, 0, 0, 123_456_789),
    ][i % 5];
    let naive = NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_nano_opt(h, min, s, nano))
        .expect("a valid fixed time");
    Utc.from_utc_datetime(&naive)
}

/// Times outside what the store accepts (years 1..=9999).
fn invalid_time(year_zero: bool) -> DateTime<Utc> {
    let year = if year_zero { 0 } else { 10_000 };
    let naive = NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .expect("chrono holds years 0 and 10000");
    Utc.from_utc_datetime(&naive)
}

// ---------------------------------------------------------------------------
// Operations

/// Something that names a row: one this case created (the k-th, per store),
/// or an id naming nothing.
#[derive(Clone, Debug)]
enum Ref {
    Known(Index),
    Missing(&'static str),
}

/// A job, run or execution: one this case created, or a caller UUID that
/// names nothing.
#[derive(Clone, Debug)]
enum UuidRef {
    Known(Index),
    Missing(u128),
}

#[derive(Clone, Debug)]
enum Ctx {
    Human(Option<&'static str>),
    System,
    /// An AI write; it passes the guard only with both a job and a workflow.
    Ai {
        job: bool,
        workflow: bool,
    },
}

#[derive(Clone, Debug)]
enum Time {
    Fixed(usize),
    /// A time taken between two earlier steps (`Op::Mark`).
    Mark(Index),
    Invalid {
        year_zero: bool,
    },
}

#[derive(Clone, Debug)]
struct BlockSpec {
    /// `None`: the store generates one.
    id: Option<&'static str>,
    kind: String,
    sequence: i64,
    raw: String,
    display: Option<String>,
    derived: Option<Value>,
    sensitivity: Option<&'static str>,
    exportable: Option<bool>,
}

#[derive(Clone, Debug)]
struct NodeSpec {
    id: Option<&'static str>,
    kind: String,
    x: f64,
    y: f64,
    data: Option<Value>,
}

/// An edge end: one of this graph's caller-id nodes, or a node that is not
/// in the graph.
#[derive(Clone, Debug)]
enum NodePick {
    Node(Index),
    Ghost,
}

#[derive(Clone, Debug)]
struct EdgeSpec {
    id: Option<&'static str>,
    from: NodePick,
    to: NodePick,
    kind: String,
}

#[derive(Clone, Debug)]
struct JobSpec {
    kind: JobKind,
    access: AccessMode,
    safety: SafetyMode,
    protocol: String,
    refs: Vec<(&'static str, Ref)>,
    planned: Vec<(OperationType, &'static str, Option<String>)>,
    reason: String,
    extreme_metrics: bool,
    inputs: Option<Value>,
    trace: u128,
}

#[derive(Clone, Debug)]
struct StatusSpec {
    job: UuidRef,
    state: JobState,
    error: Option<String>,
    reason: String,
    metrics: Option<bool>,
    run: Option<UuidRef>,
    trace: Option<u128>,
    outputs: Option<Value>,
}

#[derive(Clone, Debug)]
struct FilterSpec {
    status: Option<JobState>,
    kind: Option<JobKind>,
    wsid: Option<Ref>,
    from: Option<Time>,
    to: Option<Time>,
    limit: Option<u32>,
    /// Continue after this job (a missing one: after it at a fixed time).
    after: Option<UuidRef>,
}

/// A node execution sequence, made unique per step (see the module doc).
#[derive(Clone, Copy, Debug)]
enum SeqPick {
    Lowest,
    Negative,
    Positive,
    Highest,
}

#[derive(Clone, Debug)]
enum Op {
    Mark,
    CreateWorkspace(Ctx, String),
    DeleteWorkspace(Ctx, Ref),
    GetWorkspace(Ref),
    CreateDocument(Ctx, Ref, String),
    DeleteDocument(Ctx, Ref),
    ListDocuments(Ref),
    GetDocument(Ref),
    CreateBlock(Ctx, Ref, BlockSpec),
    UpdateBlock(Ctx, Ref, BlockUpdateSpec),
    DeleteBlock(Ctx, Ref),
    GetBlock(Ref),
    GetBlocks(Ref),
    ReplaceBlocks(Ctx, Ref, Vec<BlockSpec>),
    CreateCanvas(Ctx, Ref, String),
    UpdateCanvasGraph(Ctx, Ref, Vec<NodeSpec>, Vec<EdgeSpec>),
    DeleteCanvas(Ctx, Ref),
    GetCanvas(Ref),
    CreateJob(JobSpec),
    GetJob(UuidRef),
    ListJobs(FilterSpec),
    UpdateJobStatus(StatusSpec),
    SetJobOutputs(UuidRef, Option<Value>),
    SetJobPinned(UuidRef, bool),
    CreateRun(UuidRef, JobState, Option<Time>),
    UpdateRunStatus(UuidRef, JobState, Option<String>),
    Heartbeat(UuidRef, Time),
    CreateExecution {
        run: UuidRef,
        node_id: String,
        node_type: String,
        status: JobState,
        sequence: SeqPick,
        input: Option<Value>,
        started: Time,
    },
    UpdateExecution(UuidRef, JobState, Option<Value>, Option<String>),
    ListExecutions(UuidRef),
    FindStalled(u64),
    Guard(Ctx, String),
    Prune(Time, u32, bool),
}

#[derive(Clone, Debug)]
struct BlockUpdateSpec {
    kind: Option<String>,
    sequence: Option<i64>,
    raw: Option<String>,
    display: Option<String>,
    derived: Option<Value>,
    sensitivity: Option<&'static str>,
    exportable: Option<bool>,
}

// ---------------------------------------------------------------------------
// Strategies

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        8 => "[a-z]{1,6}",
        6 => select(TEXTS).prop_map(String::from),
        1 => select(BAD_TEXTS).prop_map(String::from),
        1 => Just("é".repeat(40_000)),
    ]
    .boxed()
}

fn reference() -> BoxedStrategy<Ref> {
    prop_oneof![
        5 => any::<Index>().prop_map(Ref::Known),
        1 => select(MISSING).prop_map(Ref::Missing),
    ]
    .boxed()
}

fn uuid_ref() -> BoxedStrategy<UuidRef> {
    prop_oneof![
        5 => any::<Index>().prop_map(UuidRef::Known),
        1 => (1u128..4).prop_map(UuidRef::Missing),
    ]
    .boxed()
}

fn ctx() -> BoxedStrategy<Ctx> {
    prop_oneof![
        6 => select(ACTORS).prop_map(Ctx::Human),
        1 => Just(Ctx::System),
        2 => (any::<bool>(), any::<bool>()).prop_map(|(job, workflow)| Ctx::Ai { job, workflow }),
    ]
    .boxed()
}

fn time() -> BoxedStrategy<Time> {
    prop_oneof![
        4 => (0usize..5).prop_map(Time::Fixed),
        3 => any::<Index>().prop_map(Time::Mark),
        1 => any::<bool>().prop_map(|year_zero| Time::Invalid { year_zero }),
    ]
    .boxed()
}

fn state() -> BoxedStrategy<JobState> {
    select(JobState::ALL).boxed()
}

/// JSON of any shape: extreme integers, floats that tempt a backend to
/// change them, hostile strings and keys, and now and then nesting deeper
/// than the store accepts.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        select(&[i64::MIN, -1, 0, 1, i64::MAX][..]).prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        select(JSON_FLOATS).prop_map(|f| json!(f)),
        select(TEXTS).prop_map(|s| json!(s)),
        select(BAD_TEXTS).prop_map(|s| json!(s)),
    ];
    let tree = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((select(JSON_KEYS), inner), 0..4).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    });
    prop_oneof![
        30 => tree,
        1 => (99usize..103).prop_map(nested),
    ]
    .boxed()
}

/// `[[[...1...]]]`, `depth` arrays deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |v, _| Value::Array(vec![v]))
}

fn block_spec() -> BoxedStrategy<BlockSpec> {
    (
        prop::option::weighted(0.8, select(IDS)),
        text(),
        select(SEQUENCES),
        text(),
        prop::option::of(text()),
        prop::option::of(json_value()),
        prop::option::of(select(&["low", "high", "", "x\0"][..])),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(id, kind, sequence, raw, display, derived, sensitivity, exportable)| BlockSpec {
                id,
                kind,
                sequence,
                raw,
                display,
                derived,
                sensitivity,
                exportable,
            },
        )
        .boxed()
}

fn block_update() -> BoxedStrategy<BlockUpdateSpec> {
    (
        prop::option::of(text()),
        prop::option::of(select(SEQUENCES)),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(json_value()),
        prop::option::of(select(&["low", "", "x\0"][..])),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(kind, sequence, raw, display, derived, sensitivity, exportable)| BlockUpdateSpec {
                kind,
                sequence,
                raw,
                display,
                derived,
                sensitivity,
                exportable,
            },
        )
        .boxed()
}

fn node_spec(id: BoxedStrategy<Option<&'static str>>) -> BoxedStrategy<NodeSpec> {
    (
        id,
        text(),
        select(COORDINATES),
        select(COORDINATES),
        prop::option::of(json_value()),
    )
        .prop_map(|(id, kind, x, y, data)| NodeSpec {
            id,
            kind,
            x,
            y,
            data,
        })
        .boxed()
}

fn node_pick() -> BoxedStrategy<NodePick> {
    prop_oneof![
        6 => any::<Index>().prop_map(NodePick::Node),
        1 => Just(NodePick::Ghost),
    ]
    .boxed()
}

fn edge_spec(id: BoxedStrategy<Option<&'static str>>) -> BoxedStrategy<EdgeSpec> {
    (id, node_pick(), node_pick(), text())
        .prop_map(|(id, from, to, kind)| EdgeSpec { id, from, to, kind })
        .boxed()
}

/// Caller-id nodes and edges, plus at most one of each with a generated id.
fn graph() -> BoxedStrategy<(Vec<NodeSpec>, Vec<EdgeSpec>)> {
    let caller_id = || select(IDS).prop_map(Some).boxed();
    (
        prop::option::of(node_spec(Just(None).boxed())),
        prop::collection::vec(node_spec(caller_id()), 0..5),
        prop::option::of(edge_spec(Just(None).boxed())),
        prop::collection::vec(edge_spec(caller_id()), 0..4),
    )
        .prop_map(|(gen_node, mut nodes, gen_edge, mut edges)| {
            nodes.extend(gen_node);
            edges.extend(gen_edge);
            (nodes, edges)
        })
        .boxed()
}

fn job_spec() -> BoxedStrategy<JobSpec> {
    (
        (
            select(JobKind::ALL),
            select(AccessMode::ALL),
            select(SafetyMode::ALL),
            text(),
        ),
        prop::collection::vec((select(ENTITY_KINDS), reference()), 0..3),
        prop::collection::vec(
            (
                select(OperationType::ALL),
                select(IDS),
                prop::option::of(text()),
            ),
            0..2,
        ),
        (
            text(),
            any::<bool>(),
            prop::option::of(json_value()),
            1u128..4,
        ),
    )
        .prop_map(
            |(
                (kind, access, safety, protocol),
                refs,
                planned,
                (reason, extreme, inputs, trace),
            )| {
                JobSpec {
                    kind,
                    access,
                    safety,
                    protocol,
                    refs,
                    planned,
                    reason,
                    extreme_metrics: extreme,
                    inputs,
                    trace,
                }
            },
        )
        .boxed()
}

fn status_spec() -> BoxedStrategy<StatusSpec> {
    (
        (uuid_ref(), state(), prop::option::of(text()), text()),
        (
            prop::option::of(any::<bool>()),
            prop::option::of(uuid_ref()),
            prop::option::of(1u128..4),
            prop::option::of(json_value()),
        ),
    )
        .prop_map(
            |((job, state, error, reason), (metrics, run, trace, outputs))| StatusSpec {
                job,
                state,
                error,
                reason,
                metrics,
                run,
                trace,
                outputs,
            },
        )
        .boxed()
}

fn filter_spec() -> BoxedStrategy<FilterSpec> {
    (
        prop::option::of(state()),
        prop::option::of(select(JobKind::ALL)),
        prop::option::of(reference()),
        prop::option::of(time()),
        prop::option::of(time()),
        prop::option::of(select(&[0u32, 1, 2, 1000][..])),
        prop::option::of(uuid_ref()),
    )
        .prop_map(|(status, kind, wsid, from, to, limit, after)| FilterSpec {
            status,
            kind,
            wsid,
            from,
            to,
            limit,
            after,
        })
        .boxed()
}

fn op() -> BoxedStrategy<Op> {
    let seq_pick = select(
        &[
            SeqPick::Lowest,
            SeqPick::Negative,
            SeqPick::Positive,
            SeqPick::Highest,
        ][..],
    );
    let arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (2, Just(Op::Mark).boxed()),
        (
            6,
            (ctx(), text())
                .prop_map(|(c, n)| Op::CreateWorkspace(c, n))
                .boxed(),
        ),
        (
            1,
            (ctx(), reference())
                .prop_map(|(c, r)| Op::DeleteWorkspace(c, r))
                .boxed(),
        ),
        (1, reference().prop_map(Op::GetWorkspace).boxed()),
        (
            6,
            (ctx(), reference(), text())
                .prop_map(|(c, r, t)| Op::CreateDocument(c, r, t))
                .boxed(),
        ),
        (
            1,
            (ctx(), reference())
                .prop_map(|(c, r)| Op::DeleteDocument(c, r))
                .boxed(),
        ),
        (1, reference().prop_map(Op::ListDocuments).boxed()),
        (1, reference().prop_map(Op::GetDocument).boxed()),
        (
            6,
            (ctx(), reference(), block_spec())
                .prop_map(|(c, r, b)| Op::CreateBlock(c, r, b))
                .boxed(),
        ),
        (
            3,
            (ctx(), reference(), block_update())
                .prop_map(|(c, r, u)| Op::UpdateBlock(c, r, u))
                .boxed(),
        ),
        (
            1,
            (ctx(), reference())
                .prop_map(|(c, r)| Op::DeleteBlock(c, r))
                .boxed(),
        ),
        (1, reference().prop_map(Op::GetBlock).boxed()),
        (1, reference().prop_map(Op::GetBlocks).boxed()),
        (
            4,
            (
                ctx(),
                reference(),
                prop::collection::vec(block_spec(), 0..5),
            )
                .prop_map(|(c, r, b)| Op::ReplaceBlocks(c, r, b))
                .boxed(),
        ),
        (
            4,
            (ctx(), reference(), text())
                .prop_map(|(c, r, t)| Op::CreateCanvas(c, r, t))
                .boxed(),
        ),
        (
            4,
            (ctx(), reference(), graph())
                .prop_map(|(c, r, (n, e))| Op::UpdateCanvasGraph(c, r, n, e))
                .boxed(),
        ),
        (
            1,
            (ctx(), reference())
                .prop_map(|(c, r)| Op::DeleteCanvas(c, r))
                .boxed(),
        ),
        (1, reference().prop_map(Op::GetCanvas).boxed()),
        (6, job_spec().prop_map(Op::CreateJob).boxed()),
        (1, uuid_ref().prop_map(Op::GetJob).boxed()),
        (2, filter_spec().prop_map(Op::ListJobs).boxed()),
        (4, status_spec().prop_map(Op::UpdateJobStatus).boxed()),
        (
            1,
            (uuid_ref(), prop::option::of(json_value()))
                .prop_map(|(j, o)| Op::SetJobOutputs(j, o))
                .boxed(),
        ),
        (
            2,
            (uuid_ref(), any::<bool>())
                .prop_map(|(j, p)| Op::SetJobPinned(j, p))
                .boxed(),
        ),
        (
            3,
            (uuid_ref(), state(), prop::option::of(time()))
                .prop_map(|(j, s, t)| Op::CreateRun(j, s, t))
                .boxed(),
        ),
        (
            2,
            (uuid_ref(), state(), prop::option::of(text()))
                .prop_map(|(r, s, e)| Op::UpdateRunStatus(r, s, e))
                .boxed(),
        ),
        (
            2,
            (uuid_ref(), time())
                .prop_map(|(r, t)| Op::Heartbeat(r, t))
                .boxed(),
        ),
        (
            3,
            (
                uuid_ref(),
                text(),
                text(),
                state(),
                seq_pick,
                prop::option::of(json_value()),
                time(),
            )
                .prop_map(
                    |(run, node_id, node_type, status, sequence, input, started)| {
                        Op::CreateExecution {
                            run,
                            node_id,
                            node_type,
                            status,
                            sequence,
                            input,
                            started,
                        }
                    },
                )
                .boxed(),
        ),
        (
            2,
            (
                uuid_ref(),
                state(),
                prop::option::of(json_value()),
                prop::option::of(text()),
            )
                .prop_map(|(e, s, o, m)| Op::UpdateExecution(e, s, o, m))
                .boxed(),
        ),
        (1, uuid_ref().prop_map(Op::ListExecutions).boxed()),
        (
            1,
            select(&[0u64, 3600, 10_000_000_000, u64::MAX][..])
                .prop_map(Op::FindStalled)
                .boxed(),
        ),
        (
            1,
            (ctx(), text()).prop_map(|(c, r)| Op::Guard(c, r)).boxed(),
        ),
        (
            3,
            (time(), select(&[0u32, 1, 2, u32::MAX][..]), any::<bool>())
                .prop_map(|(t, m, d)| Op::Prune(t, m, d))
                .boxed(),
        ),
    ];
    Union::new_weighted(arms).boxed()
}

// ---------------------------------------------------------------------------
// Applying a sequence to one store

/// What one store has created so far in this case, in creation order; refs
/// resolve against these.
#[derive(Default)]
struct Known {
    workspaces: Vec<String>,
    documents: Vec<String>,
    blocks: Vec<String>,
    /// The block ids the store generated (the caller gave `None`).
    generated_blocks: HashSet<String>,
    canvases: Vec<String>,
    jobs: Vec<Uuid>,
    runs: Vec<Uuid>,
    executions: Vec<Uuid>,
}

/// A step's outcome: the result as JSON, or the error's kind.
type Outcome = Result<Value, ErrorKind>;

fn outcome<T: serde::Serialize>(result: StorageResult<T>) -> Outcome {
    result
        .map(|v| serde_json::to_value(v).expect("results serialise to JSON"))
        .map_err(|e| e.kind())
}

/// The one store a step runs on, with what it has created so far.
struct Runner<'a> {
    store: &'a dyn Storage,
    known: Known,
}

impl Runner<'_> {
    fn id(list: &[String], r: &Ref) -> String {
        match r {
            Ref::Known(i) if !list.is_empty() => list[i.index(list.len())].clone(),
            Ref::Known(_) => "none-yet".into(),
            Ref::Missing(id) => id.to_string(),
        }
    }

    fn uuid(list: &[Uuid], r: &UuidRef) -> Uuid {
        match r {
            UuidRef::Known(i) if !list.is_empty() => list[i.index(list.len())],
            UuidRef::Known(_) => Uuid::from_u128(99),
            UuidRef::Missing(n) => Uuid::from_u128(*n),
        }
    }

    fn ctx(c: &Ctx) -> WriteContext {
        match c {
            Ctx::Human(actor) => WriteContext::human(actor.map(String::from)),
            Ctx::System => WriteContext::system(Some("scheduler".into())),
            Ctx::Ai { job, workflow } => WriteContext::ai(
                Some("model".into()),
                job.then(|| Uuid::from_u128(1)),
                workflow.then(|| Uuid::from_u128(2)),
            ),
        }
    }

    fn time(marks: &[DateTime<Utc>], t: &Time) -> DateTime<Utc> {
        match t {
            Time::Fixed(i) => fixed_time(*i),
            Time::Mark(i) if !marks.is_empty() => marks[i.index(marks.len())],
            Time::Mark(_) => fixed_time(1),
            Time::Invalid { year_zero } => invalid_time(*year_zero),
        }
    }

    /// A block with a generated id gets a sequence no other block has:
    /// derived from the step and its place in the step.
    fn new_block(&self, step: usize, item: usize, document_id: &str, b: &BlockSpec) -> NewBlock {
        let sequence = match b.id {
            Some(_) => b.sequence,
            None => generated_block_sequence(step, item),
        };
        NewBlock {
            id: b.id.map(String::from),
            document_id: document_id.to_string(),
            kind: b.kind.clone(),
            sequence,
            raw_content: b.raw.clone(),
            display_content: b.display.clone(),
            derived_content: b.derived.clone(),
            sensitivity: b.sensitivity.map(String::from),
            exportable: b.exportable,
        }
    }

    fn remember_blocks(&mut self, blocks: &[Block], given: &[Option<&str>]) {
        for block in blocks {
            if !given.contains(&Some(block.id.as_str())) {
                self.known.generated_blocks.insert(block.id.clone());
            }
            self.known.blocks.push(block.id.clone());
        }
    }

    fn apply(&mut self, step: usize, op: &Op, marks: &[DateTime<Utc>]) -> Outcome {
        let store = self.store;
        let k = &self.known;
        match op {
            Op::Mark => unreachable!("marks are taken by the driver"),
            Op::CreateWorkspace(c, name) => {
                let r = store.create_workspace(&Self::ctx(c), NewWorkspace { name: name.clone() });
                if let Ok(ws) = &r {
                    self.known.workspaces.push(ws.id.clone());
                }
                outcome(r)
            }
            Op::DeleteWorkspace(c, r) => {
                outcome(store.delete_workspace(&Self::ctx(c), &Self::id(&k.workspaces, r)))
            }
            Op::GetWorkspace(r) => outcome(store.get_workspace(&Self::id(&k.workspaces, r))),
            Op::CreateDocument(c, r, title) => {
                let doc = NewDocument {
                    workspace_id: Self::id(&k.workspaces, r),
                    title: title.clone(),
                };
                let r = store.create_document(&Self::ctx(c), doc);
                if let Ok(d) = &r {
                    self.known.documents.push(d.id.clone());
                }
                outcome(r)
            }
            Op::DeleteDocument(c, r) => {
                outcome(store.delete_document(&Self::ctx(c), &Self::id(&k.documents, r)))
            }
            Op::ListDocuments(r) => outcome(store.list_documents(&Self::id(&k.workspaces, r))),
            Op::GetDocument(r) => outcome(store.get_document(&Self::id(&k.documents, r))),
            Op::CreateBlock(c, r, b) => {
                let block = self.new_block(step, 0, &Self::id(&k.documents, r), b);
                let r = store.create_block(&Self::ctx(c), block);
                if let Ok(b2) = &r {
                    self.remember_blocks(std::slice::from_ref(b2), &[b.id]);
                }
                outcome(r)
            }
            Op::UpdateBlock(c, r, u) => {
                let id = Self::id(&k.blocks, r);
                let generated = k.generated_blocks.contains(&id);
                // A generated-id block keeps a sequence of its own.
                let sequence = match (u.sequence, generated) {
                    (Some(_), true) => Some(generated_block_sequence(step, 0)),
                    (s, _) => s,
                };
                let update = BlockUpdate {
                    kind: u.kind.clone(),
                    sequence,
                    raw_content: u.raw.clone(),
                    display_content: u.display.clone(),
                    derived_content: u.derived.clone(),
                    sensitivity: u.sensitivity.map(String::from),
                    exportable: u.exportable,
                };
                outcome(store.update_block(&Self::ctx(c), &id, update))
            }
            Op::DeleteBlock(c, r) => {
                outcome(store.delete_block(&Self::ctx(c), &Self::id(&k.blocks, r)))
            }
            Op::GetBlock(r) => outcome(store.get_block(&Self::id(&k.blocks, r))),
            Op::GetBlocks(r) => outcome(store.get_blocks(&Self::id(&k.documents, r))),
            Op::ReplaceBlocks(c, r, specs) => {
                let document_id = Self::id(&k.documents, r);
                let blocks = specs
                    .iter()
                    .enumerate()
                    .map(|(i, b)| self.new_block(step, i, &document_id, b))
                    .collect();
                let r = store.replace_blocks(&Self::ctx(c), &document_id, blocks);
                if let Ok(list) = &r {
                    let given: Vec<_> = specs.iter().map(|b| b.id).collect();
                    self.remember_blocks(list, &given);
                }
                outcome(r)
            }
            Op::CreateCanvas(c, r, title) => {
                let canvas = NewCanvas {
                    workspace_id: Self::id(&k.workspaces, r),
                    title: title.clone(),
                };
                let r = store.create_canvas(&Self::ctx(c), canvas);
                if let Ok(canvas) = &r {
                    self.known.canvases.push(canvas.id.clone());
                }
                outcome(r)
            }
            Op::UpdateCanvasGraph(c, r, nodes, edges) => {
                let caller_nodes: Vec<&str> = nodes.iter().filter_map(|n| n.id).collect();
                let end = |pick: &NodePick| match pick {
                    NodePick::Node(i) if !caller_nodes.is_empty() => {
                        caller_nodes[i.index(caller_nodes.len())].to_string()
                    }
                    _ => "ghost".to_string(),
                };
                let nodes = nodes
                    .iter()
                    .map(|n| NewCanvasNode {
                        id: n.id.map(String::from),
                        kind: n.kind.clone(),
                        position_x: n.x,
                        position_y: n.y,
                        data: n.data.clone(),
                    })
                    .collect();
                let edges = edges
                    .iter()
                    .map(|e| NewCanvasEdge {
                        id: e.id.map(String::from),
                        from_node_id: end(&e.from),
                        to_node_id: end(&e.to),
                        kind: e.kind.clone(),
                    })
                    .collect();
                outcome(store.update_canvas_graph(
                    &Self::ctx(c),
                    &Self::id(&k.canvases, r),
                    nodes,
                    edges,
                ))
            }
            Op::DeleteCanvas(c, r) => {
                outcome(store.delete_canvas(&Self::ctx(c), &Self::id(&k.canvases, r)))
            }
            Op::GetCanvas(r) => outcome(store.get_canvas_with_graph(&Self::id(&k.canvases, r))),
            Op::CreateJob(j) => {
                let job = NewAiJob {
                    trace_id: Uuid::from_u128(j.trace),
                    job_kind: j.kind,
                    protocol_id: j.protocol.clone(),
                    profile_id: "default".into(),
                    capability_profile_id: "default".into(),
                    access_mode: j.access,
                    safety_mode: j.safety,
                    entity_refs: j
                        .refs
                        .iter()
                        .map(|(entity_kind, r)| EntityRef {
                            entity_id: Self::id(&k.workspaces, r),
                            entity_kind: entity_kind.to_string(),
                        })
                        .collect(),
                    planned_operations: j
                        .planned
                        .iter()
                        .map(|(op_type, target, description)| PlannedOperation {
                            op_type: *op_type,
                            target: EntityRef {
                                entity_id: target.to_string(),
                                entity_kind: "block".into(),
                            },
                            description: description.clone(),
                        })
                        .collect(),
                    status_reason: j.reason.clone(),
                    metrics: metrics(j.extreme_metrics),
                    job_inputs: j.inputs.clone(),
                };
                let r = store.create_ai_job(job);
                if let Ok(job) = &r {
                    self.known.jobs.push(job.job_id);
                }
                outcome(r)
            }
            Op::GetJob(j) => outcome(store.get_ai_job(Self::uuid(&k.jobs, j))),
            Op::ListJobs(f) => {
                let filter = AiJobListFilter {
                    status: f.status,
                    job_kind: f.kind,
                    wsid: f.wsid.as_ref().map(|r| Self::id(&k.workspaces, r)),
                    from: f.from.as_ref().map(|t| Self::time(marks, t)),
                    to: f.to.as_ref().map(|t| Self::time(marks, t)),
                    limit: f.limit,
                    cursor: f.after.as_ref().map(|j| {
                        let job_id = Self::uuid(&k.jobs, j);
                        match store.get_ai_job(job_id) {
                            Ok(job) => AiJobCursor::after(&job),
                            Err(_) => AiJobCursor {
                                created_at: fixed_time(2),
                                job_id,
                            },
                        }
                    }),
                };
                outcome(store.list_ai_jobs(filter))
            }
            Op::UpdateJobStatus(s) => {
                let update = JobStatusUpdate {
                    job_id: Self::uuid(&k.jobs, &s.job),
                    state: s.state,
                    error_message: s.error.clone(),
                    status_reason: s.reason.clone(),
                    metrics: s.metrics.map(metrics),
                    workflow_run_id: s.run.as_ref().map(|r| Self::uuid(&k.runs, r)),
                    trace_id: s.trace.map(Uuid::from_u128),
                    job_outputs: s.outputs.clone(),
                };
                outcome(store.update_ai_job_status(update))
            }
            Op::SetJobOutputs(j, o) => {
                outcome(store.set_job_outputs(Self::uuid(&k.jobs, j), o.clone()))
            }
            Op::SetJobPinned(j, p) => outcome(store.set_job_pinned(Self::uuid(&k.jobs, j), *p)),
            Op::CreateRun(j, s, t) => {
                let heartbeat = t.as_ref().map(|t| heartbeat(Self::time(marks, t), step));
                let r = store.create_workflow_run(Self::uuid(&k.jobs, j), *s, heartbeat);
                if let Ok(run) = &r {
                    self.known.runs.push(run.id);
                }
                outcome(r)
            }
            Op::UpdateRunStatus(r, s, e) => {
                outcome(store.update_workflow_run_status(Self::uuid(&k.runs, r), *s, e.clone()))
            }
            Op::Heartbeat(r, t) => {
                outcome(store.heartbeat_workflow(Self::uuid(&k.runs, r), Self::time(marks, t)))
            }
            Op::CreateExecution {
                run,
                node_id,
                node_type,
                status,
                sequence,
                input,
                started,
            } => {
                let step = step as i64;
                let sequence = match sequence {
                    SeqPick::Lowest => i64::MIN + step,
                    SeqPick::Negative => -(step + 1),
                    SeqPick::Positive => step + 1,
                    SeqPick::Highest => i64::MAX - step,
                };
                let exec = NewNodeExecution {
                    workflow_run_id: Self::uuid(&k.runs, run),
                    node_id: node_id.clone(),
                    node_type: node_type.clone(),
                    status: *status,
                    sequence,
                    input_payload: input.clone(),
                    started_at: Self::time(marks, started),
                };
                let r = store.create_workflow_node_execution(exec);
                if let Ok(e) = &r {
                    self.known.executions.push(e.id);
                }
                outcome(r)
            }
            Op::UpdateExecution(e, s, o, m) => {
                outcome(store.update_workflow_node_execution_status(
                    Self::uuid(&k.executions, e),
                    *s,
                    o.clone(),
                    m.clone(),
                ))
            }
            Op::ListExecutions(r) => {
                outcome(store.list_workflow_node_executions(Self::uuid(&k.runs, r)))
            }
            Op::FindStalled(threshold) => outcome(store.find_stalled_workflows(*threshold)),
            Op::Guard(c, resource) => {
                outcome(store.validate_write_with_guard(&Self::ctx(c), resource))
            }
            Op::Prune(t, min_versions, dry_run) => {
                outcome(store.prune_ai_jobs(Self::time(marks, t), *min_versions, *dry_run))
            }
        }
    }

    /// Everything the API can show of the store, plus each table's row
    /// count (runs have no list call; their rows are counted and their
    /// executions listed).
    fn dump(&self, harness: &Harness) -> Outcome {
        let store = self.store;
        let mut workspaces = Vec::new();
        for ws in store.list_workspaces().map_err(|e| e.kind())? {
            let mut documents = Vec::new();
            for doc in store.list_documents(&ws.id).map_err(|e| e.kind())? {
                let blocks = store.get_blocks(&doc.id).map_err(|e| e.kind())?;
                documents.push(json!({ "document": doc, "blocks": blocks }));
            }
            let mut canvases = Vec::new();
            for canvas in store.list_canvases(&ws.id).map_err(|e| e.kind())? {
                canvases.push(
                    store
                        .get_canvas_with_graph(&canvas.id)
                        .map_err(|e| e.kind())?,
                );
            }
            workspaces
                .push(json!({ "workspace": ws, "documents": documents, "canvases": canvases }));
        }
        let jobs = store
            .list_ai_jobs(AiJobListFilter::default())
            .map_err(|e| e.kind())?;
        let mut executions = Vec::new();
        for run in &self.known.runs {
            executions.push(
                store
                    .list_workflow_node_executions(*run)
                    .map_err(|e| e.kind())?,
            );
        }
        let stalled = store.find_stalled_workflows(0).map_err(|e| e.kind())?;
        let mut counts = serde_json::Map::new();
        for (table, column) in TABLES {
            // A no-op UPDATE reports how many rows the table holds, on
            // both backends.
            let rows = harness
                .execute_sql(&format!("UPDATE {table} SET {column} = {column}"))
                .map_err(|e| e.kind())?;
            counts.insert(table.to_string(), json!(rows));
        }
        Ok(json!({
            "workspaces": workspaces,
            "jobs": jobs,
            "executions": executions,
            "stalled": stalled,
            "counts": counts,
        }))
    }
}

/// Every table, with a column a no-op UPDATE may set. Deleting from the
/// first and `ai_jobs` clears a store (cascades do the rest).
const TABLES: &[(&str, &str)] = &[
    ("workspaces", "name"),
    ("documents", "title"),
    ("blocks", "kind"),
    ("canvases", "title"),
    ("canvas_nodes", "kind"),
    ("canvas_edges", "kind"),
    ("ai_jobs", "status"),
    ("ai_job_entity_refs", "entity_kind"),
    ("workflow_runs", "status"),
    ("workflow_node_executions", "status"),
];

/// A heartbeat no other run has: `at` moved by the step's number of
/// microseconds (stalled runs tie-break on their generated ids). Invalid
/// times stay invalid.
fn heartbeat(at: DateTime<Utc>, step: usize) -> DateTime<Utc> {
    let shift = chrono::Duration::microseconds(step as i64);
    match at.year() {
        1..=9998 => at + shift,
        9999 => at - shift,
        _ => at,
    }
}

fn generated_block_sequence(step: usize, item: usize) -> i64 {
    (1 << 40) + (step as i64) * 1000 + item as i64
}

fn metrics(extreme: bool) -> JobMetrics {
    if !extreme {
        return JobMetrics::zero();
    }
    JobMetrics {
        duration_ms: u64::MAX,
        total_tokens: u32::MAX,
        input_tokens: u32::MAX,
        output_tokens: 0,
        tokens_planner: 1,
        tokens_executor: u32::MAX,
        entities_read: 7,
        entities_written: 0,
        validators_run_count: u32::MAX,
    }
}

// ---------------------------------------------------------------------------
// Normalising generated values (see the module doc)

const TIME_KEYS: &[&str] = &[
    "created_at",
    "updated_at",
    "last_heartbeat",
    "started_at",
    "finished_at",
];

/// Replaces the values one store generated with tokens numbered by first
/// appearance; one per store per case.
#[derive(Default)]
struct Normaliser {
    uuids: HashMap<String, usize>,
    times: HashMap<String, usize>,
}

impl Normaliser {
    fn outcome(&mut self, outcome: &Outcome, marks: &[DateTime<Utc>]) -> Outcome {
        let mut outcome = outcome.clone();
        if let Ok(value) = &mut outcome {
            self.value(value, marks);
        }
        outcome
    }

    fn value(&mut self, value: &mut Value, marks: &[DateTime<Utc>]) {
        match value {
            Value::String(s) => {
                if let Some(token) = self.uuid(s) {
                    *s = token;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v, marks)),
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match (key.as_str(), &mut *v) {
                        ("timestamp", Value::String(s)) => *s = "<now>".into(),
                        (k, Value::String(s)) if TIME_KEYS.contains(&k) => {
                            if let Some(token) = self.time(s, marks) {
                                *s = token;
                            }
                        }
                        _ => self.value(v, marks),
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn uuid(&mut self, s: &str) -> Option<String> {
        let uuid = Uuid::parse_str(s).ok().filter(|_| s.len() == 36)?;
        // Caller-chosen UUIDs are small numbers: compared as they are.
        if uuid.as_u128() >> 64 == 0 {
            return None;
        }
        let next = self.uuids.len();
        Some(format!(
            "uuid#{}",
            self.uuids.entry(s.to_string()).or_insert(next)
        ))
    }

    fn time(&mut self, s: &str, marks: &[DateTime<Utc>]) -> Option<String> {
        let at: DateTime<Utc> = s.parse().ok()?;
        if at.year() <= 2020 || at.year() >= 9000 || marks.contains(&at) {
            return None;
        }
        let next = self.times.len();
        Some(format!(
            "time#{}",
            self.times.entry(s.to_string()).or_insert(next)
        ))
    }
}

// ---------------------------------------------------------------------------
// The test

fn clear(harness: &Harness) {
    for table in ["workspaces", "ai_jobs"] {
        harness
            .execute_sql(&format!("DELETE FROM {table}"))
            .unwrap_or_else(|e| panic!("cannot clear {table} on {}: {e}", harness.backend()));
    }
}

/// Equal outcomes, down to the text of each JSON number (`Value`'s `==`
/// takes `-0.0` for `0.0`).
fn same(a: &Outcome, b: &Outcome) -> bool {
    let text = |o: &Outcome| o.as_ref().map(Value::to_string).map_err(|k| *k);
    text(a) == text(b)
}

/// A time strictly between the steps before and after it, on every clock
/// read of both stores.
fn take_mark() -> DateTime<Utc> {
    std::thread::sleep(Duration::from_millis(2));
    let mark = Utc::now().trunc_subsecs(6);
    std::thread::sleep(Duration::from_millis(2));
    mark
}

/// What the run did, printed at the end (`--nocapture` shows it).
#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    steps: usize,
    /// Outcomes by kind (`Ok` or the error kind), counted once per step.
    outcomes: std::collections::BTreeMap<&'static str, usize>,
}

fn run_sequence(
    sqlite: &Harness,
    postgres: &Harness,
    ops: &[Op],
    tally: &std::cell::RefCell<Tally>,
) -> Result<(), TestCaseError> {
    tally.borrow_mut().cases += 1;
    clear(sqlite);
    clear(postgres);
    let mut stores = [
        (
            Runner {
                store: sqlite.store(),
                known: Known::default(),
            },
            Normaliser::default(),
        ),
        (
            Runner {
                store: postgres.store(),
                known: Known::default(),
            },
            Normaliser::default(),
        ),
    ];
    let mut marks = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        if let Op::Mark = op {
            marks.push(take_mark());
            continue;
        }
        let [a, b] = stores.each_mut().map(|(runner, normaliser)| {
            let raw = runner.apply(step, op, &marks);
            normaliser.outcome(&raw, &marks)
        });
        {
            let mut tally = tally.borrow_mut();
            tally.steps += 1;
            *tally
                .outcomes
                .entry(a.as_ref().err().map_or("Ok", |kind| kind.as_str()))
                .or_default() += 1;
        }
        prop_assert_eq!(
            a,
            b,
            "step {} ({:?}): sqlite (left) and postgres (right) differ",
            step,
            op
        );
    }
    let [a, b] = stores.each_mut().map(|(runner, normaliser)| {
        let harness = if runner.store.backend() == Backend::Sqlite {
            sqlite
        } else {
            postgres
        };
        let raw = runner.dump(harness);
        normaliser.outcome(&raw, &marks)
    });
    prop_assert!(a.is_ok(), "the sqlite dump failed: {:?}", a);
    prop_assert!(
        same(&a, &b),
        "final dumps differ\n sqlite:   {:?}\n postgres: {:?}",
        a,
        b
    );
    Ok(())
}

#[test]
fn sqlite_and_postgres_agree_on_random_operation_sequences() {
    let sqlite = TestTarget::standard("sqlite")
        .harness()
        .expect("a SQLite store");
    let postgres = TestTarget::standard("postgres")
        .harness()
        .expect("a PostgreSQL store");
    // PROPTEST_CASES (read by Config::default) sets the number of cases. A
    // failing case's seed is saved beside this file and replayed first.
    let config = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/differential.proptest-regressions",
        ))),
        max_shrink_time: 300_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let sequences = prop::collection::vec(op(), 1..60);
    let tally = std::cell::RefCell::new(Tally::default());
    let result = runner.run(&sequences, |ops| {
        run_sequence(&sqlite, &postgres, &ops, &tally)
    });
    eprintln!("differential: {:?}", tally.borrow());
    if let Err(err) = result {
        panic!("{err}");
    }
}
