//! A legacy row, as the reader hands it over (every column as text, the
//! canvas positions also as numbers), turned into our domain value by the
//! rules of Handshake's own storage (`LEGACY.md` §3): timestamps in either
//! text format with any fraction, `term_exec`, uppercase actor kinds, JSON
//! text, `is_pinned`, the classification columns as stored. Nothing here
//! touches a database.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::backend::copy_end::{Key, Record, Table};
use crate::types::*;

/// Why a legacy row cannot be held: the column and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadCell {
    pub column: String,
    pub reason: String,
}

impl BadCell {
    pub(crate) fn new(column: &str, reason: impl Into<String>) -> Self {
        BadCell {
            column: column.to_string(),
            reason: reason.into(),
        }
    }
}

type Cell<T> = Result<T, BadCell>;

/// One legacy row: its table's columns (in [`columns`] order) as text,
/// SQL NULL as `None`, and the canvas positions as read as numbers.
pub(crate) struct LegacyRow<'a> {
    pub table: Table,
    pub text: &'a [Option<String>],
    pub floats: [Option<f64>; 2],
}

/// The legacy columns of each table, in the order the reader selects them
/// (`LEGACY.md` §2). `ai_jobs.is_pinned` is read as NULL where an older
/// migration 8 lost it.
pub(crate) fn columns(table: Table) -> &'static [&'static str] {
    const T5: [&str; 5] = [
        "last_job_id",
        "last_workflow_id",
        "last_actor_id",
        "edit_event_id",
        "last_actor_kind",
    ];
    macro_rules! content {
        ($($c:literal),*) => {{
            const C: &[&str] = &[$($c,)* "created_at", "updated_at", T5[0], T5[1], T5[2], T5[3], T5[4]];
            C
        }};
    }
    match table {
        Table::Workspaces => content!("id", "name"),
        Table::Documents => content!("id", "workspace_id", "title"),
        Table::Canvases => content!("id", "workspace_id", "title"),
        Table::Blocks => &[
            "id",
            "document_id",
            "kind",
            "sequence",
            "raw_content",
            "display_content",
            "derived_content",
            "created_at",
            "updated_at",
            T5[0],
            T5[1],
            T5[2],
            T5[3],
            T5[4],
            "sensitivity",
            "exportable",
        ],
        Table::CanvasNodes => content!(
            "id",
            "canvas_id",
            "kind",
            "position_x",
            "position_y",
            "data"
        ),
        Table::CanvasEdges => content!("id", "canvas_id", "from_node_id", "to_node_id", "kind"),
        Table::AiJobs => &[
            "id",
            "trace_id",
            "workflow_run_id",
            "job_kind",
            "status",
            "status_reason",
            "error_message",
            "protocol_id",
            "profile_id",
            "capability_profile_id",
            "access_mode",
            "safety_mode",
            "entity_refs",
            "planned_operations",
            "metrics",
            "job_inputs",
            "job_outputs",
            "is_pinned",
            "created_at",
            "updated_at",
        ],
        Table::WorkflowRuns => &[
            "id",
            "job_id",
            "status",
            "last_heartbeat",
            "created_at",
            "updated_at",
        ],
        Table::WorkflowNodeExecutions => &[
            "id",
            "workflow_run_id",
            "node_id",
            "node_type",
            "status",
            "sequence",
            "input_payload",
            "output_payload",
            "error_message",
            "started_at",
            "finished_at",
            "created_at",
            "updated_at",
        ],
        Table::AiJobEntityRefs
        | Table::KernelEvents
        | Table::KernelSessionRuns
        | Table::KernelSessionClaims => &[],
    }
}

/// How the reader must select a legacy column so that both backends hand
/// over the same text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    Text,
    Time,
    Int,
    /// Also read as a number, into `floats[n]`.
    Float(usize),
}

pub(crate) fn column_kind(column: &str) -> ColumnKind {
    match column {
        "created_at" | "updated_at" | "last_heartbeat" | "started_at" | "finished_at" => {
            ColumnKind::Time
        }
        "sequence" | "exportable" | "is_pinned" => ColumnKind::Int,
        "position_x" => ColumnKind::Float(0),
        "position_y" => ColumnKind::Float(1),
        _ => ColumnKind::Text,
    }
}

/// The tables each legacy table refers to, by column (the foreign keys our
/// schema enforces; the same as the legacy ones).
pub(crate) fn parents(table: Table) -> &'static [(&'static str, Table)] {
    match table {
        Table::Documents | Table::Canvases => &[("workspace_id", Table::Workspaces)],
        Table::Blocks => &[("document_id", Table::Documents)],
        Table::CanvasNodes => &[("canvas_id", Table::Canvases)],
        Table::CanvasEdges => &[
            ("canvas_id", Table::Canvases),
            ("from_node_id", Table::CanvasNodes),
            ("to_node_id", Table::CanvasNodes),
        ],
        Table::WorkflowRuns => &[("job_id", Table::AiJobs)],
        Table::WorkflowNodeExecutions => &[("workflow_run_id", Table::WorkflowRuns)],
        _ => &[],
    }
}

/// Whether the table's key is a UUID in our schema (the legacy text must
/// then be a lower-case hyphenated UUID, so that both sides order it
/// alike).
pub(crate) fn uuid_keyed(table: Table) -> bool {
    matches!(
        table,
        Table::AiJobs | Table::WorkflowRuns | Table::WorkflowNodeExecutions
    )
}

impl LegacyRow<'_> {
    fn at(&self, column: &str) -> Option<&str> {
        columns(self.table)
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.text.get(i))
            .and_then(|v| v.as_deref())
    }

    fn opt_text(&self, column: &str) -> Option<String> {
        self.at(column).map(str::to_string)
    }

    fn text(&self, column: &str) -> Cell<String> {
        self.at(column)
            .map(str::to_string)
            .ok_or_else(|| BadCell::new(column, "is NULL"))
    }

    fn time(&self, column: &str) -> Cell<DateTime<Utc>> {
        let text = self
            .at(column)
            .ok_or_else(|| BadCell::new(column, "is NULL"))?;
        parse_time(text).ok_or_else(|| {
            BadCell::new(
                column,
                format!("{text:?} is not a timestamp Handshake writes"),
            )
        })
    }

    fn opt_time(&self, column: &str) -> Cell<Option<DateTime<Utc>>> {
        match self.at(column) {
            None => Ok(None),
            Some(_) => self.time(column).map(Some),
        }
    }

    fn int(&self, column: &str) -> Cell<Option<i64>> {
        self.at(column)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| BadCell::new(column, format!("{v:?} is not an integer")))
            })
            .transpose()
    }

    fn uuid(&self, column: &str) -> Cell<Uuid> {
        let text = self
            .at(column)
            .ok_or_else(|| BadCell::new(column, "is NULL"))?;
        parse_uuid(column, text)
    }

    fn opt_uuid(&self, column: &str) -> Cell<Option<Uuid>> {
        self.at(column).map(|t| parse_uuid(column, t)).transpose()
    }

    fn json(&self, column: &str) -> Cell<Value> {
        let text = self
            .at(column)
            .ok_or_else(|| BadCell::new(column, "is NULL"))?;
        parse_json(column, text)
    }

    fn opt_json(&self, column: &str) -> Cell<Option<Value>> {
        self.at(column).map(|t| parse_json(column, t)).transpose()
    }

    fn typed<T: DeserializeOwned>(&self, column: &str) -> Cell<T> {
        let text = self
            .at(column)
            .ok_or_else(|| BadCell::new(column, "is NULL"))?;
        serde_json::from_str(text)
            .map_err(|e| BadCell::new(column, format!("is not what Handshake writes here: {e}")))
    }

    fn parsed<T: std::str::FromStr>(&self, column: &str) -> Cell<T> {
        let text = self
            .at(column)
            .ok_or_else(|| BadCell::new(column, "is NULL"))?;
        text.parse()
            .map_err(|_| BadCell::new(column, format!("{text:?} is not a value we know")))
    }

    fn position(&self, column: &str, slot: usize) -> Cell<f64> {
        if self.at(column).is_none() {
            return Err(BadCell::new(column, "is NULL"));
        }
        let value = self.floats[slot].ok_or_else(|| {
            BadCell::new(
                column,
                format!("{:?} is not a number", self.at(column).unwrap_or_default()),
            )
        })?;
        // Our store keeps one zero (SQLite's REAL drops the sign).
        Ok(if value == 0.0 { 0.0 } else { value })
    }

    fn provenance(&self) -> Cell<Provenance> {
        Ok(Provenance {
            actor_kind: self.parsed("last_actor_kind")?,
            actor_id: self.opt_text("last_actor_id"),
            job_id: self.opt_uuid("last_job_id")?,
            workflow_id: self.opt_uuid("last_workflow_id")?,
            edit_event_id: self.uuid("edit_event_id")?,
        })
    }

    /// The row as our domain value (not yet checked against our limits:
    /// `Record::check` does that).
    pub(crate) fn convert(&self) -> Cell<Record> {
        Ok(match self.table {
            Table::Workspaces => Record::Workspace(Workspace {
                id: self.text("id")?,
                name: self.text("name")?,
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
                provenance: self.provenance()?,
            }),
            Table::Documents => Record::Document(Document {
                id: self.text("id")?,
                workspace_id: self.text("workspace_id")?,
                title: self.text("title")?,
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
                provenance: self.provenance()?,
            }),
            Table::Canvases => Record::Canvas(Canvas {
                id: self.text("id")?,
                workspace_id: self.text("workspace_id")?,
                title: self.text("title")?,
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
                provenance: self.provenance()?,
            }),
            Table::Blocks => Record::Block(Block {
                id: self.text("id")?,
                document_id: self.text("document_id")?,
                kind: self.text("kind")?,
                sequence: self
                    .int("sequence")?
                    .ok_or_else(|| BadCell::new("sequence", "is NULL"))?,
                raw_content: self.text("raw_content")?,
                display_content: self.text("display_content")?,
                derived_content: self.json("derived_content")?,
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
                sensitivity: self.opt_text("sensitivity"),
                exportable: self.int("exportable")?.map(|v| v != 0),
                provenance: self.provenance()?,
            }),
            Table::CanvasNodes => Record::Node(CanvasNode {
                id: self.text("id")?,
                canvas_id: self.text("canvas_id")?,
                kind: self.text("kind")?,
                position_x: self.position("position_x", 0)?,
                position_y: self.position("position_y", 1)?,
                data: self.json("data")?,
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
                provenance: self.provenance()?,
            }),
            Table::CanvasEdges => Record::Edge(CanvasEdge {
                id: self.text("id")?,
                canvas_id: self.text("canvas_id")?,
                from_node_id: self.text("from_node_id")?,
                to_node_id: self.text("to_node_id")?,
                kind: self.text("kind")?,
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
                provenance: self.provenance()?,
            }),
            Table::AiJobs => Record::Job(AiJob {
                job_id: self.uuid("id")?,
                trace_id: self.uuid("trace_id")?,
                workflow_run_id: self.opt_uuid("workflow_run_id")?,
                job_kind: self.parsed("job_kind")?,
                state: self.parsed("status")?,
                status_reason: self.text("status_reason")?,
                error_message: self.opt_text("error_message"),
                protocol_id: self.text("protocol_id")?,
                profile_id: self.text("profile_id")?,
                capability_profile_id: self.text("capability_profile_id")?,
                access_mode: self.parsed("access_mode")?,
                safety_mode: self.parsed("safety_mode")?,
                entity_refs: self.typed("entity_refs")?,
                planned_operations: self.typed("planned_operations")?,
                metrics: self.typed("metrics")?,
                job_inputs: self.opt_json("job_inputs")?,
                job_outputs: self.opt_json("job_outputs")?,
                // NULL where an older migration 8 lost the column.
                pinned: self.int("is_pinned")?.is_some_and(|v| v != 0),
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
            }),
            Table::WorkflowRuns => Record::Run(WorkflowRun {
                id: self.uuid("id")?,
                job_id: self.uuid("job_id")?,
                status: self.parsed("status")?,
                error_message: None,
                last_heartbeat: self.time("last_heartbeat")?,
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
            }),
            Table::WorkflowNodeExecutions => Record::Execution(WorkflowNodeExecution {
                id: self.uuid("id")?,
                workflow_run_id: self.uuid("workflow_run_id")?,
                node_id: self.text("node_id")?,
                node_type: self.text("node_type")?,
                status: self.parsed("status")?,
                sequence: self
                    .int("sequence")?
                    .ok_or_else(|| BadCell::new("sequence", "is NULL"))?,
                input_payload: self.opt_json("input_payload")?,
                output_payload: self.opt_json("output_payload")?,
                error_message: self.opt_text("error_message"),
                started_at: self.time("started_at")?,
                finished_at: self.opt_time("finished_at")?,
                created_at: self.time("created_at")?,
                updated_at: self.time("updated_at")?,
            }),
            Table::AiJobEntityRefs
            | Table::KernelEvents
            | Table::KernelSessionRuns
            | Table::KernelSessionClaims => {
                return Err(BadCell::new("", "not a legacy table"));
            }
        })
    }

    /// The row's key as the copier orders it: its id as found.
    pub(crate) fn key(&self) -> Option<Key> {
        self.at("id").map(Key::id)
    }
}

/// A UUID column: Handshake writes `Uuid::to_string()` (lower-case,
/// hyphenated); anything else is refused, so that the text order of the
/// source is the order of our keys.
fn parse_uuid(column: &str, text: &str) -> Cell<Uuid> {
    match Uuid::parse_str(text) {
        Ok(id) if id.hyphenated().to_string() == text => Ok(id),
        Ok(_) => Err(BadCell::new(
            column,
            format!("{text:?} is not a lower-case hyphenated UUID"),
        )),
        Err(_) => Err(BadCell::new(column, format!("{text:?} is not a UUID"))),
    }
}

fn parse_json(column: &str, text: &str) -> Cell<Value> {
    serde_json::from_str(text).map_err(|e| BadCell::new(column, format!("is not JSON: {e}")))
}

/// A legacy timestamp as Handshake's sqlx reads it (`LEGACY.md` §3.1):
/// RFC 3339, then the `%F %T%.f`-like forms with a space or a `T`, with or
/// without seconds, a fraction of any length, `Z` or an offset (none means
/// UTC); an integer is Unix seconds. Kept to the microsecond (the rest is
/// cut, as Handshake's PostgreSQL storage cuts it).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    parse_time_exact(text).map(|at| at.trunc_subsecs(6))
}

fn parse_time_exact(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for sep in [' ', 'T'] {
        for secs in ["%H:%M:%S%.f", "%H:%M"] {
            let base = format!("%Y-%m-%d{sep}{secs}");
            if let Ok(at) = NaiveDateTime::parse_from_str(text, &base) {
                return Some(at.and_utc());
            }
            if let Some(rest) = text.strip_suffix('Z') {
                if let Ok(at) = NaiveDateTime::parse_from_str(rest, &base) {
                    return Some(at.and_utc());
                }
            }
            if let Ok(at) = DateTime::parse_from_str(text, &format!("{base}%:z")) {
                return Some(at.with_timezone(&Utc));
            }
        }
    }
    if !text.is_empty()
        && text
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap_or_else(|| panic!("{s} did not parse"))
    }

    #[test]
    fn both_text_formats_and_every_fraction() {
        let whole = Utc.with_ymd_and_hms(2026, 1, 8, 9, 15, 10).unwrap();
        assert_eq!(at("2026-01-08 09:15:10"), whole);
        assert_eq!(at("2026-01-08T09:15:10+00:00"), whole);
        assert_eq!(at("2026-01-08T09:15:10Z"), whole);
        assert_eq!(at("2026-01-08T09:15:10"), whole);
        assert_eq!(
            at("2026-01-08 09:15"),
            whole - chrono::Duration::seconds(10)
        );
        let micros = |us: i64| whole + chrono::Duration::microseconds(us);
        assert_eq!(at("2026-01-08T09:15:10.919+00:00"), micros(919_000));
        assert_eq!(at("2026-01-08T09:15:10.919430+00:00"), micros(919_430));
        // Nanoseconds are cut, not rounded, to the microsecond.
        assert_eq!(at("2026-01-08T09:15:10.919430632+00:00"), micros(919_430));
        assert_eq!(at("2026-01-08T09:15:10.999999999+00:00"), micros(999_999));
        assert_eq!(at("2026-01-08 09:15:10.5"), micros(500_000));
        // The legacy millisecond default and PostgreSQL's `to_char`.
        assert_eq!(at("2026-01-08 09:15:10.123"), micros(123_000));
        assert_eq!(at("2026-01-08T09:15:10.000001"), micros(1));
        // Offsets are applied.
        assert_eq!(at("2026-01-08T10:15:10+01:00"), whole);
        assert_eq!(at("2026-01-08 10:15:10.000+01:00"), whole);
        assert_eq!(at("1767863710"), whole);
        for bad in [
            "",
            "yesterday",
            "2026-13-08 09:15:10",
            "2026-01-08",
            "09:15:10",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    fn row(table: Table, values: &[(&str, Option<&str>)]) -> Vec<Option<String>> {
        columns(table)
            .iter()
            .map(|c| {
                values
                    .iter()
                    .find(|(name, _)| name == c)
                    .and_then(|(_, v)| v.map(str::to_string))
            })
            .collect()
    }

    const T5: [(&str, Option<&str>); 5] = [
        ("last_job_id", None),
        ("last_workflow_id", None),
        ("last_actor_id", None),
        (
            "edit_event_id",
            Some("00000000-0000-0000-0000-000000000000"),
        ),
        ("last_actor_kind", Some("SYSTEM")),
    ];

    fn job(values: &[(&str, Option<&str>)]) -> Cell<Record> {
        let mut all = vec![
            ("id", Some("21ab66aa-4c07-47cb-96b3-98becee11ef3")),
            ("trace_id", Some("cfa50b3c-c628-4918-a32f-438f2a37f9ef")),
            ("job_kind", Some("term_exec")),
            ("status", Some("completed")),
            ("status_reason", Some("completed")),
            ("protocol_id", Some("p")),
            ("profile_id", Some("default")),
            ("capability_profile_id", Some("cap")),
            ("access_mode", Some("analysis_only")),
            ("safety_mode", Some("normal")),
            (
                "entity_refs",
                Some(r#"[{"entity_id":"w","entity_kind":"workspace"}]"#),
            ),
            (
                "planned_operations",
                Some(r#"[{"op_type":"read","target":{"entity_id":"d","entity_kind":"document"}}]"#),
            ),
            ("metrics", Some(r#"{"duration_ms":5}"#)),
            ("job_inputs", Some("null")),
            ("is_pinned", Some("1")),
            ("created_at", Some("2026-01-08 09:20:03")),
            ("updated_at", Some("2026-01-08T09:20:04.118116233+00:00")),
        ];
        for (k, v) in values {
            all.retain(|(name, _)| name != k);
            all.push((k, *v));
        }
        let text = row(Table::AiJobs, &all);
        LegacyRow {
            table: Table::AiJobs,
            text: &text,
            floats: [None, None],
        }
        .convert()
    }

    #[test]
    fn a_job_converts_by_the_legacy_rules() {
        let Record::Job(j) = job(&[]).unwrap() else {
            panic!("not a job")
        };
        assert_eq!(j.job_kind, JobKind::TerminalExec);
        assert!(j.pinned);
        assert_eq!(
            j.job_inputs,
            Some(Value::Null),
            "the text null is Some(null)"
        );
        assert_eq!(j.job_outputs, None, "SQL NULL is None");
        assert_eq!(j.metrics.duration_ms, 5);
        assert_eq!(j.metrics.validators_run_count, 0, "missing keys are 0");
        assert_eq!(j.planned_operations[0].description, None);
        assert_eq!(j.updated_at.timestamp_subsec_nanos(), 118_116_000);
        let Record::Job(unpinned) = job(&[("is_pinned", None)]).unwrap() else {
            panic!()
        };
        assert!(!unpinned.pinned, "no is_pinned column reads as unpinned");
    }

    #[test]
    fn bad_cells_name_their_column() {
        let column = |values: &[(&str, Option<&str>)]| job(values).unwrap_err().column;
        assert_eq!(column(&[("job_kind", Some("doc_test_x"))]), "job_kind");
        assert_eq!(column(&[("status", Some("done"))]), "status");
        assert_eq!(column(&[("metrics", Some("{"))]), "metrics");
        assert_eq!(
            column(&[("metrics", Some(r#"{"duration_ms":-1}"#))]),
            "metrics"
        );
        assert_eq!(column(&[("job_inputs", Some("{nope"))]), "job_inputs");
        assert_eq!(column(&[("created_at", Some("soon"))]), "created_at");
        assert_eq!(
            column(&[("id", Some("21AB66AA-4C07-47CB-96B3-98BECEE11EF3"))]),
            "id"
        );
        assert_eq!(column(&[("trace_id", None)]), "trace_id");
    }

    #[test]
    fn content_rows_keep_ids_positions_and_classification() {
        let mut values = vec![
            ("id", Some("n1")),
            ("canvas_id", Some("c")),
            ("kind", Some("note")),
            ("position_x", Some("100.0999984741211")),
            ("position_y", Some("-0.0")),
            ("data", Some(r#"{"text":"hi"}"#)),
            ("created_at", Some("2026-01-08 09:18:03")),
            ("updated_at", Some("2026-01-08T09:18:03.021857586+00:00")),
        ];
        values.extend(T5);
        values.retain(|(k, _)| *k != "last_actor_kind");
        values.push(("last_actor_kind", Some("HUMAN")));
        let text = row(Table::CanvasNodes, &values);
        let node = LegacyRow {
            table: Table::CanvasNodes,
            text: &text,
            floats: [Some(f64::from(100.1f32)), Some(-0.0)],
        }
        .convert()
        .unwrap();
        let Record::Node(n) = node else { panic!() };
        assert_eq!(n.id, "n1");
        assert_eq!(n.position_x, 100.0999984741211);
        assert_eq!(n.position_y.to_bits(), 0.0f64.to_bits());
        assert_eq!(n.provenance.actor_kind, WriteActorKind::Human);

        let mut lower = values.clone();
        lower.retain(|(k, _)| *k != "last_actor_kind");
        lower.push(("last_actor_kind", Some("human")));
        let text = row(Table::CanvasNodes, &lower);
        let err = LegacyRow {
            table: Table::CanvasNodes,
            text: &text,
            floats: [Some(1.0), Some(1.0)],
        }
        .convert()
        .unwrap_err();
        assert_eq!(err.column, "last_actor_kind");
    }
}
