//! What the benchmarks' raw-SQL side needs from the backend layer, owned
//! here so that `backend/` depends on nothing above it: the [`Baseline`]
//! trait that `baseline.rs` implements per backend, and the set-based SQL
//! that seeds the `scale` group's job tables (the same rows on the store's
//! and the baseline's database). Feature `bench`; `crate::bench` measures
//! with it. Touches no database itself: it only builds SQL text.

pub mod sql;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StorageResult;
use crate::kernel::NewKernelEvent;
use crate::types::*;

/// The store's hot paths as raw SQL (implemented once in `baseline.rs`, compiled per backend). Reads
/// decode every column into plain values and return the row count.
pub trait Baseline: Send + Sync {
    /// Inserts one block.
    fn create_block(&self, block: &NewBlock) -> StorageResult<()>;
    /// Reads one block by id.
    fn get_block(&self, id: &str) -> StorageResult<()>;
    /// Changes a block's raw content and stamps it; reads the row back.
    fn update_block(&self, id: &str, raw_content: &str) -> StorageResult<()>;
    /// Inserts one job with a new id and returns it.
    fn create_ai_job(&self, job: &NewAiJob) -> StorageResult<Uuid>;
    /// Reads one job by id.
    fn get_ai_job(&self, id: Uuid) -> StorageResult<()>;
    /// Sets status, reason and `updated_at` (no error: the stored one
    /// stays); reads the row back.
    fn update_ai_job_status(&self, id: Uuid, state: JobState, reason: &str) -> StorageResult<()>;
    /// Replaces a document's blocks in one transaction, bulk rows sent by
    /// `method`.
    fn replace_blocks(
        &self,
        method: BulkMethod,
        document_id: &str,
        blocks: &[NewBlock],
    ) -> StorageResult<()>;
    /// Reads a document's blocks; returns how many.
    fn get_blocks(&self, document_id: &str) -> StorageResult<usize>;
    /// Replaces a canvas's nodes and edges in one transaction, bulk rows sent
    /// by `method`.
    fn update_canvas_graph(
        &self,
        method: BulkMethod,
        canvas_id: &str,
        nodes: &[NewCanvasNode],
        edges: &[NewCanvasEdge],
    ) -> StorageResult<()>;
    /// Reads a canvas with its nodes and edges; returns how many rows.
    fn get_canvas_with_graph(&self, canvas_id: &str) -> StorageResult<usize>;
    /// Lists the jobs `filter` selects; returns how many.
    fn list_ai_jobs(&self, filter: &AiJobListFilter) -> StorageResult<usize>;
    /// Lists the runs stalled longer than `threshold_secs`; returns how many.
    fn find_stalled_workflows(&self, threshold_secs: u64) -> StorageResult<usize>;
    /// The counting part of a dry-run prune; returns the candidates.
    fn prune_ai_jobs_dry_run(&self, cutoff: DateTime<Utc>) -> StorageResult<u64>;
    /// `create_ai_job` with the id given (the `ids` group's v4 and v7).
    fn create_ai_job_with_id(&self, id: Uuid, job: &NewAiJob) -> StorageResult<()>;
    /// Bytes of the `ai_jobs` primary-key index on disk.
    fn ai_jobs_pkey_bytes(&self) -> StorageResult<u64>;
    /// The ledger append, statement for statement as the store sends it:
    /// in one transaction the ledger lock (PostgreSQL), the database's
    /// clock, the idempotency lookup, the largest sequence, the INSERT.
    fn append_kernel_event(&self, event: &NewKernelEvent) -> StorageResult<()>;
    /// [`Baseline::append_kernel_event`] into `kernel_events_plain`,
    /// whose key is a plain sequence (which can skip, and be seen out of
    /// order): the same statements without the ledger lock and the largest
    /// sequence. The table is made by `plain_ledger_sql`.
    fn append_kernel_event_plain_sequence(&self, event: &NewKernelEvent) -> StorageResult<()>;
    /// The tail: events after `after`, at most `limit`; the rows read.
    fn list_kernel_events_after(&self, after: i64, limit: u32) -> StorageResult<usize>;
    /// Enqueues run `id` of `adapter`.
    fn enqueue_kernel_session_run(&self, id: &str, adapter: &str) -> StorageResult<()>;
    /// Claims the run available longest for `worker` (`FOR UPDATE SKIP
    /// LOCKED` on PostgreSQL) and takes it through RUNNING to COMPLETED,
    /// each step a transaction of its own, as a worker using the store
    /// does; `false` when nothing was claimable.
    fn claim_next_and_complete(&self, worker: &str) -> StorageResult<bool>;
}

/// How the baseline's bulk writes send their rows, per table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkMethod {
    /// Multi-row INSERTs, as few as the bind-parameter limit allows.
    Insert,
    /// One binary `COPY FROM STDIN` (PostgreSQL; a `Validation` error on
    /// a backend without COPY).
    Copy,
    /// As the store sends them: COPY from the backend's crossover on
    /// (`COPY_FROM_ROWS`), INSERTs below it and where there is no COPY.
    AsStore,
}

pub(crate) const STALLED_RUNS: usize = 50;

/// When seeded job `i` was created: one second apart, newest first.
pub(crate) fn seed_time(i: i64) -> DateTime<Utc> {
    // 2026-01-01 00:00:00 UTC, the time `seed_sql` counts back from.
    DateTime::UNIX_EPOCH + chrono::Duration::seconds(1_767_225_600 - i)
}

/// Creates `kernel_events_plain`: `kernel_events` with the same columns
/// and indexes, but keyed by a plain sequence (an identity column on
/// PostgreSQL, the rowid on SQLite) instead of the store's no-skip
/// numbering, for [`Baseline::append_kernel_event_plain_sequence`].
pub(crate) fn plain_ledger_sql(backend: Backend) -> Vec<&'static str> {
    match backend {
        Backend::Postgres => vec![
            "CREATE TABLE kernel_events_plain (LIKE kernel_events INCLUDING ALL)",
            "ALTER TABLE kernel_events_plain ALTER COLUMN event_sequence \
             ADD GENERATED BY DEFAULT AS IDENTITY",
        ],
        Backend::Sqlite => vec![
            "CREATE TABLE kernel_events_plain (event_sequence INTEGER PRIMARY KEY NOT NULL, \
             event_id TEXT NOT NULL, event_version TEXT NOT NULL, \
             kernel_task_run_id TEXT NOT NULL, session_run_id TEXT NOT NULL, \
             aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, \
             idempotency_key TEXT NOT NULL, event_type TEXT NOT NULL, actor_kind TEXT NOT NULL, \
             actor_id TEXT NOT NULL, causation_id TEXT, correlation_id TEXT, \
             source_component TEXT NOT NULL, payload TEXT NOT NULL, payload_hash TEXT NOT NULL, \
             created_at TEXT NOT NULL)",
            "CREATE UNIQUE INDEX kernel_events_plain_event_id_idx \
             ON kernel_events_plain (event_id)",
            "CREATE UNIQUE INDEX kernel_events_plain_idempotency_key_idx \
             ON kernel_events_plain (idempotency_key)",
            "CREATE INDEX kernel_events_plain_session_idx \
             ON kernel_events_plain (session_run_id, event_sequence)",
            "CREATE INDEX kernel_events_plain_aggregate_idx \
             ON kernel_events_plain (aggregate_type, aggregate_id, event_sequence)",
        ],
    }
}

/// Set-based SQL that seeds `jobs` jobs (each with one workspace ref, about
/// 100 per workspace, indexed by the ai_jobs trigger; every tenth pinned;
/// states and kinds in rotation) and a run per ten jobs, of which [`STALLED_RUNS`] are running
/// with a stale heartbeat; then `ANALYZE` of those tables, so the planner
/// knows their sizes.
pub(crate) fn seed_sql(backend: Backend, jobs: usize) -> Vec<String> {
    let n = jobs.max(1);
    let workspaces = (n / 100).max(1);
    let metrics = serde_json::to_string(&JobMetrics::zero())
        .unwrap_or_else(|_| "{}".into())
        .replace('\'', "''");
    let states = [
        JobState::Queued,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
    ];
    let kinds = [JobKind::DocEdit, JobKind::DocRewrite, JobKind::DocSummarize];
    let case = |expr: &str, values: &[&str]| {
        let arms: String = values
            .iter()
            .enumerate()
            .map(|(k, v)| format!(" WHEN {k} THEN '{v}'"))
            .collect();
        format!("CASE {expr} % {}{arms} END", values.len())
    };
    let state = case("i", &states.map(|s| s.as_str()));
    let kind = case("i", &kinds.map(|k| k.as_str()));
    // What differs: generating rows, uuids, times, JSON and booleans.
    let (series, uuid, time, json, pinned, json_ref) = match backend {
        Backend::Postgres => (
            format!("generate_series(0, {}) AS s(i)", n - 1),
            "(lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid"
                .to_string(),
            "(TIMESTAMPTZ '2026-01-01 00:00:00+00' - i * INTERVAL '1 second')".to_string(),
            "::jsonb",
            "(i % 10 = 0)",
            "jsonb_build_array(jsonb_build_object",
        ),
        _ => (
            format!(
                "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {}) \
                 SELECT i FROM s)",
                n - 1
            ),
            "printf('%08x-0000-4000-8000-%012x', i, i)".to_string(),
            "(strftime('%Y-%m-%d %H:%M:%S', '2026-01-01 00:00:00', '-' || i || ' seconds') \
             || '.000000+00:00')"
                .to_string(),
            "",
            "(i % 10 = 0)",
            "json_array(json_object",
        ),
    };
    vec![
        format!(
            "INSERT INTO ai_jobs (id, trace_id, workflow_run_id, job_kind, status, status_reason, \
             error_message, protocol_id, profile_id, capability_profile_id, access_mode, \
             safety_mode, planned_operations, metrics, job_inputs, job_outputs, pinned, \
             created_at, updated_at, entity_refs) \
             SELECT {uuid}, {uuid}, NULL, {kind}, {state}, 'seeded', NULL, 'default', 'default', \
             'default', '{access}', '{safety}', '[]'{json}, '{metrics}'{json}, NULL, NULL, \
             {pinned}, {time}, {time}, \
             {json_ref}('entity_id', 'ws-' || (i % {workspaces}), 'entity_kind', 'workspace')) \
             FROM {series}",
            access = AccessMode::AnalysisOnly.as_str(),
            safety = SafetyMode::Normal.as_str(),
        ),
        format!(
            "INSERT INTO workflow_runs (id, job_id, status, error_message, last_heartbeat, \
             created_at, updated_at) \
             SELECT {uuid}, {uuid}, CASE WHEN i < {stalled} THEN '{running}' ELSE '{done}' END, \
             NULL, {time}, {time}, {time} FROM {series} WHERE i % 10 = 0",
            stalled = STALLED_RUNS * 10,
            running = JobState::Running.as_str(),
            done = JobState::Completed.as_str(),
        ),
        "ANALYZE ai_jobs".to_string(),
        "ANALYZE ai_job_entity_refs".to_string(),
        "ANALYZE workflow_runs".to_string(),
    ]
}
