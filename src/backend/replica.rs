//! A PostgreSQL store with read replicas: every write, and every read that
//! lag could make wrong, goes to the primary; the other reads go to a
//! streaming replica when one is up, within the configured lag, and has
//! replayed this process's last write. Compiled as a child of
//! `backend::postgres`, over two or more of its [`Store`]s: the query code
//! is the same on both sides, only the pool differs.
//!
//! # Read-your-writes: the commit position, not a time window
//!
//! After each write the store reads the primary's WAL insert position
//! (`pg_current_wal_insert_lsn()`, one statement, taken after the commit so
//! it is at or past the commit record) and raises a high-water mark shared
//! by every store of this process on the same server. A replica serves a
//! read only once `pg_last_wal_replay_lsn()` on it has reached that mark.
//! The replica's position is measured with one statement and cached
//! (see [`ReplicaConfig::check_interval`]); reads while it is known to be
//! caught up cost nothing extra.
//!
//! Why not a stickiness window (Rails' two seconds on the primary after a
//! write): a store is shared by every request of a server, so the window
//! would be store-wide, and a server that writes more often than once per
//! window would never read from a replica at all; a window also guesses at
//! lag instead of knowing it, and a replica lagging past the window would
//! serve stale reads. The position is exact whatever the lag, costs one
//! statement per write, and sends reads back to a replica as soon as it
//! has replayed the write (usually milliseconds).
//!
//! What it costs, in statements: one per write; none per read while the
//! chosen replica is known to have caught up; one on the replica when its
//! state is older than the check interval, or at most every
//! [`CATCH_UP_POLL`] while it is behind this process's writes (the read
//! then goes to the primary). In time, `benches/replicas.rs` (figures in
//! docs/performance.md): about 1.2x per `create_block`, about 1.1x per routed
//! `get_block`, and 2.1x for a `create_block` followed at once by a read.
//!
//! # Failure
//!
//! A replica that cannot be reached, answers a read with a `Database` error
//! (a dropped connection, a query cancelled by recovery), is not in
//! recovery, or lags by more than [`ReplicaConfig::max_lag`] is skipped:
//! the read goes to the primary and the caller sees no error. A replica
//! that failed a read is measured again by the next read, on a fresh
//! connection (refused at once when the server is down); one found down is
//! measured again once per check interval, and used again as soon as it
//! answers. Only one thread measures a given
//! replica at a time; the others read from the primary meanwhile.
//!
//! Lag is measured on the replica as the age of the last replayed
//! transaction while WAL it received is still waiting to be replayed, and
//! zero when everything received is replayed: the usual standby query. A
//! primary idle for a while and then written to shows a large lag until
//! the write is replayed, which errs on the side of the primary.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::r2d2::Pool;
use serde_json::Value;
use uuid::Uuid;

use super::{connect, with_connect_timeout, Conn, Manager, Store};
#[cfg(feature = "testing")]
use crate::backend::ColumnInfo;
use crate::backend::{from_diesel, Maintenance, SchemaOnOpen};
use crate::config::{PgHost, PgUrl, ReplicaConfig, StorageConfig};
use crate::error::{StorageError, StorageResult};
use crate::kernel::*;
use crate::schema_info::SchemaFingerprint;
use crate::storage::Storage;
use crate::types::*;

/// The high-water mark when the last write's position could not be read
/// (the primary went away mid-call): no replica serves until it is read.
const UNKNOWN: u64 = u64::MAX;

/// A replica known to be behind this process's writes is measured again at
/// most this often, so a burst of reads right after a write costs at most
/// one extra replica round trip per poll.
const CATCH_UP_POLL: Duration = Duration::from_millis(2);

/// The longest a read waits for a replica connection before it goes to the
/// primary instead.
const REPLICA_CHECKOUT: Duration = Duration::from_secs(1);

/// One store over a primary and its read replicas.
pub(crate) struct Replicated {
    primary: Store,
    /// The primary's pool, shared with `primary`, for reading the WAL
    /// position after a write.
    primary_pool: Pool<Manager>,
    replicas: Vec<Replica>,
    /// The WAL position every read must see: shared by the stores of this
    /// process on the same server.
    written: Arc<AtomicU64>,
    settings: ReplicaConfig,
    next: AtomicUsize,
}

struct Replica {
    /// The URL as given, with `connect_timeout`, for fresh connections.
    url: PgUrl,
    store: Store,
    pool: Pool<Manager>,
    state: RwLock<State>,
    measuring: Mutex<()>,
}

#[derive(Clone, Copy, Debug)]
enum Health {
    /// In recovery, replayed up to `replayed`, `lag` behind.
    Up { replayed: u64, lag: Duration },
    /// Unreachable, failed a read, or not a standby at all.
    Down,
}

#[derive(Clone, Copy, Debug)]
struct State {
    health: Health,
    /// When `health` was measured; `None`: measure before the next read.
    measured: Option<Instant>,
}

/// Opens the primary (migrating or checking it as `open` does) and a pool
/// per replica (whose schema is the primary's, replayed).
/// Replicas are not contacted here: one that is down at open is skipped
/// like one that goes down later.
pub(crate) fn open_replicated(
    url: &PgUrl,
    config: &StorageConfig,
    schema: SchemaOnOpen,
) -> StorageResult<Replicated> {
    let primary_pool = super::build_pool(url, config)?;
    let primary = Store::new(primary_pool.clone(), (), schema)?;
    let replicas = config
        .replicas
        .urls
        .iter()
        .map(|replica_url| Replica::open(replica_url, config))
        .collect::<StorageResult<Vec<_>>>()?;
    let store = Replicated {
        primary,
        primary_pool,
        replicas,
        written: high_water_mark(url),
        settings: config.replicas.clone(),
        next: AtomicUsize::new(0),
    };
    // What was committed before this store opened (its migrations
    // included) is visible to its first read.
    store.note_write();
    Ok(store)
}

/// The high-water mark shared by every store of this process on the
/// servers `url` names (WAL positions are per server, not per database or
/// schema; the servers of a multi-host URL are one primary and its
/// standbys, whose positions continue each other's across a failover).
fn high_water_mark(url: &PgUrl) -> Arc<AtomicU64> {
    static MARKS: OnceLock<Mutex<HashMap<Vec<PgHost>, Arc<AtomicU64>>>> = OnceLock::new();
    let mut marks = MARKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Arc::clone(marks.entry(url.hosts().to_vec()).or_default())
}

impl Replica {
    fn open(url: &str, config: &StorageConfig) -> StorageResult<Self> {
        let url = with_connect_timeout(&PgUrl::parse(url)?, config);
        // No connection at open and none kept idle: a replica that is down
        // must not fail `open` nor keep background threads dialling it.
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(0))
            .connection_timeout(config.connection_timeout.min(REPLICA_CHECKOUT))
            .test_on_check_out(true)
            .build_unchecked(Manager::new(&url, config));
        Ok(Replica {
            store: Store::new(pool.clone(), (), SchemaOnOpen::Leave)?,
            pool,
            url,
            state: RwLock::new(State {
                health: Health::Down,
                measured: None,
            }),
            measuring: Mutex::new(()),
        })
    }

    fn state(&self) -> State {
        *self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state(&self, state: State) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// Whether this replica may serve a read that must see `required`;
    /// measures it first when its state is stale.
    fn serves(&self, required: u64, settings: &ReplicaConfig) -> bool {
        let ok = |health: Health| {
            matches!(health, Health::Up { replayed, lag }
                if replayed >= required && lag <= settings.max_lag)
        };
        let state = self.state();
        let age = state.measured.map(|at| at.elapsed());
        let fresh = age.is_some_and(|age| age < settings.check_interval);
        match state.health {
            _ if fresh && ok(state.health) => return true,
            // Caught up on lag but behind our writes: poll for the catch-up.
            Health::Up { lag, .. }
                if fresh
                    && lag <= settings.max_lag
                    && age.is_some_and(|age| age >= CATCH_UP_POLL) => {}
            _ if fresh => return false,
            _ => {}
        }
        let Ok(_measuring) = self.measuring.try_lock() else {
            return false;
        };
        let health = self.measure(matches!(state.health, Health::Up { .. }));
        self.set_state(State {
            health,
            measured: Some(Instant::now()),
        });
        ok(health)
    }

    /// Reads the replica's replay position and lag: through the pool when
    /// it was up, else on a fresh connection, which a server that is down
    /// refuses at once (the pool would wait for its checkout timeout).
    fn measure(&self, was_up: bool) -> Health {
        let result = if was_up {
            match self.pool.get() {
                Ok(mut conn) => replica_position(&mut conn),
                Err(_) => return Health::Down,
            }
        } else {
            connect(&self.url).and_then(|mut conn| replica_position(&mut conn))
        };
        match result {
            Ok(Some((replayed, lag))) => Health::Up { replayed, lag },
            Ok(None) | Err(_) => Health::Down,
        }
    }

    /// A read failed on this replica: skip it until it is measured again,
    /// which the next read does on a fresh connection.
    fn failed(&self) {
        self.set_state(State {
            health: Health::Down,
            measured: None,
        });
    }
}

/// `(replayed position, lag)` of a standby; `None` for a server that is
/// not in recovery (a primary given as a replica serves no reads).
fn replica_position(conn: &mut Conn) -> StorageResult<Option<(u64, Duration)>> {
    #[derive(QueryableByName)]
    struct Position {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        replayed: Option<i64>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        lag_ms: Option<i64>,
    }
    let row: Position = diesel::sql_query(
        "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed, \
         CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::bigint \
         ELSE (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint \
         END AS lag_ms",
    )
    .get_result(conn)
    .map_err(|e| from_diesel(e, "replica position"))?;
    Ok(row.replayed.map(|replayed| {
        let lag = row
            .lag_ms
            .map_or(Duration::MAX, |ms| Duration::from_millis(ms.max(0) as u64));
        (replayed.max(0) as u64, lag)
    }))
}

/// The primary's WAL insert position: at or past every commit that has
/// returned.
fn primary_position(conn: &mut Conn) -> StorageResult<u64> {
    #[derive(QueryableByName)]
    struct Position {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        lsn: i64,
    }
    let row: Position =
        diesel::sql_query("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS lsn")
            .get_result(conn)
            .map_err(|e| from_diesel(e, "primary WAL position"))?;
    Ok(row.lsn.max(0) as u64)
}

impl Replicated {
    /// Raises the high-water mark to the primary's current position; when
    /// that cannot be read, no replica serves until it can.
    fn note_write(&self) {
        match self.read_primary_position() {
            Ok(lsn) => {
                self.written.fetch_max(lsn, Ordering::SeqCst);
            }
            Err(_) => self.written.store(UNKNOWN, Ordering::SeqCst),
        }
    }

    fn read_primary_position(&self) -> StorageResult<u64> {
        let mut conn = self.primary_pool.get().map_err(|e| {
            StorageError::Database(format!("no postgres connection available: {e}"))
        })?;
        primary_position(&mut conn)
    }

    /// The position reads must see, reading it again if it was lost.
    fn required(&self) -> Option<u64> {
        let required = self.written.load(Ordering::SeqCst);
        if required != UNKNOWN {
            return Some(required);
        }
        let lsn = self.read_primary_position().ok()?;
        let _ = self
            .written
            .compare_exchange(UNKNOWN, lsn, Ordering::SeqCst, Ordering::SeqCst);
        Some(lsn)
    }

    /// A replica that may serve a read now, taking turns among them.
    fn pick(&self) -> Option<&Replica> {
        let required = self.required()?;
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.replicas[(start + i) % n])
            .find(|r| r.serves(required, &self.settings))
    }

    /// A read that tolerates lag: on a replica when one serves, else (or
    /// when the replica fails it with a `Database` error) on the primary.
    fn read<T>(&self, op: impl Fn(&Store) -> StorageResult<T>) -> StorageResult<T> {
        if let Some(replica) = self.pick() {
            match op(&replica.store) {
                Err(StorageError::Database(_)) => replica.failed(),
                other => return other,
            }
        }
        op(&self.primary)
    }

    /// A write, or a read that must be exact: on the primary, and a call
    /// that may have committed raises the high-water mark.
    fn write<T>(&self, op: impl FnOnce(&Store) -> StorageResult<T>) -> StorageResult<T> {
        let result = op(&self.primary);
        if matches!(result, Ok(_) | Err(StorageError::Database(_))) {
            self.note_write();
        }
        result
    }
}

impl Storage for Replicated {
    fn backend(&self) -> Backend {
        self.primary.backend()
    }
    fn ping(&self) -> StorageResult<()> {
        self.primary.ping()
    }
    fn run_migrations(&self) -> StorageResult<()> {
        self.write(|s| s.run_migrations())
    }
    fn migration_status(&self) -> StorageResult<MigrationStatus> {
        self.primary.migration_status()
    }
    fn migration_version(&self) -> StorageResult<Option<u64>> {
        self.primary.migration_version()
    }
    fn schema_fingerprint(&self) -> StorageResult<SchemaFingerprint> {
        self.primary.schema_fingerprint()
    }

    fn list_workspaces(&self) -> StorageResult<Vec<Workspace>> {
        self.read(|s| s.list_workspaces())
    }
    fn create_workspace(&self, ctx: &WriteContext, ws: NewWorkspace) -> StorageResult<Workspace> {
        self.write(|s| s.create_workspace(ctx, ws))
    }
    fn get_workspace(&self, id: &str) -> StorageResult<Option<Workspace>> {
        self.read(|s| s.get_workspace(id))
    }
    fn delete_workspace(&self, ctx: &WriteContext, id: &str) -> StorageResult<()> {
        self.write(|s| s.delete_workspace(ctx, id))
    }

    fn list_documents(&self, workspace_id: &str) -> StorageResult<Vec<Document>> {
        self.read(|s| s.list_documents(workspace_id))
    }
    fn get_document(&self, id: &str) -> StorageResult<Document> {
        self.read(|s| s.get_document(id))
    }
    fn create_document(&self, ctx: &WriteContext, doc: NewDocument) -> StorageResult<Document> {
        self.write(|s| s.create_document(ctx, doc))
    }
    fn delete_document(&self, ctx: &WriteContext, id: &str) -> StorageResult<()> {
        self.write(|s| s.delete_document(ctx, id))
    }

    fn get_blocks(&self, document_id: &str) -> StorageResult<Vec<Block>> {
        self.read(|s| s.get_blocks(document_id))
    }
    fn get_block(&self, id: &str) -> StorageResult<Block> {
        self.read(|s| s.get_block(id))
    }
    fn create_block(&self, ctx: &WriteContext, block: NewBlock) -> StorageResult<Block> {
        self.write(|s| s.create_block(ctx, block))
    }
    fn update_block(
        &self,
        ctx: &WriteContext,
        id: &str,
        update: BlockUpdate,
    ) -> StorageResult<Block> {
        self.write(|s| s.update_block(ctx, id, update))
    }
    fn delete_block(&self, ctx: &WriteContext, id: &str) -> StorageResult<()> {
        self.write(|s| s.delete_block(ctx, id))
    }
    fn replace_blocks(
        &self,
        ctx: &WriteContext,
        document_id: &str,
        blocks: Vec<NewBlock>,
    ) -> StorageResult<Vec<Block>> {
        self.write(|s| s.replace_blocks(ctx, document_id, blocks))
    }

    fn create_canvas(&self, ctx: &WriteContext, canvas: NewCanvas) -> StorageResult<Canvas> {
        self.write(|s| s.create_canvas(ctx, canvas))
    }
    fn list_canvases(&self, workspace_id: &str) -> StorageResult<Vec<Canvas>> {
        self.read(|s| s.list_canvases(workspace_id))
    }
    fn get_canvas_with_graph(&self, id: &str) -> StorageResult<CanvasGraph> {
        self.read(|s| s.get_canvas_with_graph(id))
    }
    fn update_canvas_graph(
        &self,
        ctx: &WriteContext,
        id: &str,
        nodes: Vec<NewCanvasNode>,
        edges: Vec<NewCanvasEdge>,
    ) -> StorageResult<CanvasGraph> {
        self.write(|s| s.update_canvas_graph(ctx, id, nodes, edges))
    }
    fn delete_canvas(&self, ctx: &WriteContext, id: &str) -> StorageResult<()> {
        self.write(|s| s.delete_canvas(ctx, id))
    }

    fn create_ai_job(&self, job: NewAiJob) -> StorageResult<AiJob> {
        self.write(|s| s.create_ai_job(job))
    }
    fn get_ai_job(&self, job_id: Uuid) -> StorageResult<AiJob> {
        self.read(|s| s.get_ai_job(job_id))
    }
    fn list_ai_jobs(&self, filter: AiJobListFilter) -> StorageResult<Vec<AiJob>> {
        // A page after a cursor reads the primary: a replica further behind
        // than the page before it could skip rows older than the cursor.
        if filter.cursor.is_some() {
            return self.primary.list_ai_jobs(filter);
        }
        self.read(|s| s.list_ai_jobs(filter.clone()))
    }
    fn update_ai_job_status(&self, update: JobStatusUpdate) -> StorageResult<AiJob> {
        self.write(|s| s.update_ai_job_status(update))
    }
    fn set_job_outputs(&self, job_id: Uuid, outputs: Option<Value>) -> StorageResult<()> {
        self.write(|s| s.set_job_outputs(job_id, outputs))
    }
    fn set_job_pinned(&self, job_id: Uuid, pinned: bool) -> StorageResult<()> {
        self.write(|s| s.set_job_pinned(job_id, pinned))
    }

    fn create_workflow_run(
        &self,
        job_id: Uuid,
        status: JobState,
        last_heartbeat: Option<DateTime<Utc>>,
    ) -> StorageResult<WorkflowRun> {
        self.write(|s| s.create_workflow_run(job_id, status, last_heartbeat))
    }
    fn update_workflow_run_status(
        &self,
        run_id: Uuid,
        status: JobState,
        error_message: Option<String>,
    ) -> StorageResult<WorkflowRun> {
        self.write(|s| s.update_workflow_run_status(run_id, status, error_message))
    }
    fn heartbeat_workflow(&self, run_id: Uuid, at: DateTime<Utc>) -> StorageResult<()> {
        self.write(|s| s.heartbeat_workflow(run_id, at))
    }
    fn create_workflow_node_execution(
        &self,
        exec: NewNodeExecution,
    ) -> StorageResult<WorkflowNodeExecution> {
        self.write(|s| s.create_workflow_node_execution(exec))
    }
    fn update_workflow_node_execution_status(
        &self,
        exec_id: Uuid,
        status: JobState,
        output: Option<Value>,
        error_message: Option<String>,
    ) -> StorageResult<WorkflowNodeExecution> {
        self.write(|s| {
            s.update_workflow_node_execution_status(exec_id, status, output, error_message)
        })
    }
    fn list_workflow_node_executions(
        &self,
        run_id: Uuid,
    ) -> StorageResult<Vec<WorkflowNodeExecution>> {
        self.read(|s| s.list_workflow_node_executions(run_id))
    }
    fn find_stalled_workflows(&self, threshold_secs: u64) -> StorageResult<Vec<WorkflowRun>> {
        // On a lagging replica a heartbeat sent since looks missing.
        self.primary.find_stalled_workflows(threshold_secs)
    }

    fn validate_write_with_guard(
        &self,
        ctx: &WriteContext,
        resource_id: &str,
    ) -> StorageResult<MutationMetadata> {
        self.primary.validate_write_with_guard(ctx, resource_id)
    }

    fn prune_ai_jobs(
        &self,
        cutoff: DateTime<Utc>,
        min_versions: u32,
        dry_run: bool,
    ) -> StorageResult<PruneReport> {
        // On the primary: a dry run reports what a real run would do now.
        if dry_run {
            return self.primary.prune_ai_jobs(cutoff, min_versions, dry_run);
        }
        self.write(|s| s.prune_ai_jobs(cutoff, min_versions, dry_run))
    }

    fn append_kernel_event(&self, event: NewKernelEvent) -> StorageResult<KernelEvent> {
        self.write(|s| s.append_kernel_event(event))
    }
    fn append_kernel_events_atomic(
        &self,
        events: Vec<NewKernelEvent>,
    ) -> StorageResult<Vec<KernelEvent>> {
        self.write(|s| s.append_kernel_events_atomic(events))
    }
    fn append_kernel_event_pair_atomic_with_causation(
        &self,
        first: NewKernelEvent,
        second: NewKernelEvent,
    ) -> StorageResult<(KernelEvent, KernelEvent)> {
        self.write(|s| s.append_kernel_event_pair_atomic_with_causation(first, second))
    }
    fn list_kernel_events_for_session(
        &self,
        session_run_id: &str,
    ) -> StorageResult<Vec<KernelEvent>> {
        self.read(|s| s.list_kernel_events_for_session(session_run_id))
    }
    fn list_kernel_events_for_aggregate(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> StorageResult<Vec<KernelEvent>> {
        self.read(|s| s.list_kernel_events_for_aggregate(aggregate_type, aggregate_id))
    }
    fn list_kernel_events_after(
        &self,
        after_sequence: i64,
        limit: u32,
    ) -> StorageResult<Vec<KernelEvent>> {
        // The tail reads the primary: a page from a replica further behind
        // than the page before it would look like the end of the ledger.
        self.primary.list_kernel_events_after(after_sequence, limit)
    }

    fn enqueue_kernel_session_run(&self, run: SessionRun) -> StorageResult<SessionRun> {
        self.write(|s| s.enqueue_kernel_session_run(run))
    }
    fn enqueue_kernel_session_run_and_record_event(
        &self,
        run: SessionRun,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<(SessionRun, KernelEvent)> {
        self.write(|s| {
            s.enqueue_kernel_session_run_and_record_event(run, causation_id, correlation_id)
        })
    }
    fn claim_kernel_session_run(
        &self,
        session_run_id: &str,
        claimed_by: &str,
        lease: Duration,
    ) -> StorageResult<Option<KernelSessionLease>> {
        self.write(|s| s.claim_kernel_session_run(session_run_id, claimed_by, lease))
    }
    fn claim_kernel_session_run_and_record_event(
        &self,
        session_run_id: &str,
        claimed_by: &str,
        lease: Duration,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<Option<(KernelSessionLease, KernelEvent)>> {
        self.write(|s| {
            s.claim_kernel_session_run_and_record_event(
                session_run_id,
                claimed_by,
                lease,
                causation_id,
                correlation_id,
            )
        })
    }
    fn claim_next_kernel_session_run(
        &self,
        claimed_by: &str,
        lease: Duration,
        adapter_id: Option<&str>,
    ) -> StorageResult<Option<KernelSessionLease>> {
        self.write(|s| s.claim_next_kernel_session_run(claimed_by, lease, adapter_id))
    }
    fn renew_kernel_session_lease(
        &self,
        fence: &LeaseFence,
        lease: Duration,
    ) -> StorageResult<KernelSessionLease> {
        self.write(|s| s.renew_kernel_session_lease(fence, lease))
    }
    fn update_kernel_session_run_state(
        &self,
        session_run_id: &str,
        update: SessionRunUpdate,
    ) -> StorageResult<KernelSessionLease> {
        self.write(|s| s.update_kernel_session_run_state(session_run_id, update))
    }
    fn update_kernel_session_run_state_and_record_event(
        &self,
        session_run_id: &str,
        update: SessionRunUpdate,
        causation_id: Option<String>,
        correlation_id: Option<String>,
    ) -> StorageResult<(KernelSessionLease, KernelEvent)> {
        self.write(|s| {
            s.update_kernel_session_run_state_and_record_event(
                session_run_id,
                update,
                causation_id,
                correlation_id,
            )
        })
    }
    fn list_kernel_session_claims(&self, session_run_id: &str) -> StorageResult<Vec<SessionClaim>> {
        self.read(|s| s.list_kernel_session_claims(session_run_id))
    }
}

#[cfg(not(feature = "testing"))]
impl Maintenance for Replicated {}

#[cfg(feature = "testing")]
impl Maintenance for Replicated {
    fn revert_all_migrations(&self) -> StorageResult<usize> {
        self.write(|s| s.revert_all_migrations())
    }
    fn revert_last_migration(&self) -> StorageResult<()> {
        self.write(|s| s.revert_last_migration())
    }
    fn columns(&self) -> StorageResult<Vec<ColumnInfo>> {
        self.primary.columns()
    }
    fn execute_sql(&self, sql: &str) -> StorageResult<usize> {
        self.write(|s| s.execute_sql(sql))
    }
    fn value_on_every_connection(&self, sql: &str) -> StorageResult<Vec<i64>> {
        self.primary.value_on_every_connection(sql)
    }
}

/// Copying reads one exact snapshot and writes: the primary, always.
impl crate::backend::copy_end::CopyEnd for Replicated {
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&mut dyn crate::backend::copy_end::Snapshot) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.primary.snapshot(f)
    }
    fn write_batch(
        &self,
        table: crate::backend::copy_end::Table,
        records: &[crate::backend::copy_end::Record],
        refs: &[crate::backend::copy_end::Record],
        progress: &[crate::backend::copy_end::Checkpoint],
    ) -> StorageResult<Vec<crate::backend::copy_end::Written>> {
        self.write(|s| s.write_batch(table, records, refs, progress))
    }
    fn checkpoints(&self) -> StorageResult<Option<Vec<crate::backend::copy_end::Checkpoint>>> {
        self.primary.checkpoints()
    }
    fn start_checkpoint(
        &self,
        checkpoints: &[crate::backend::copy_end::Checkpoint],
    ) -> StorageResult<()> {
        self.write(|s| s.start_checkpoint(checkpoints))
    }
    fn restore_indexes(&self) -> StorageResult<()> {
        self.write(|s| s.restore_indexes())
    }
    fn drop_checkpoint(&self) -> StorageResult<()> {
        self.write(|s| s.drop_checkpoint())
    }
    fn lock_copies(&self) -> StorageResult<Option<crate::backend::copy_end::CopyLock>> {
        self.primary.lock_copies()
    }
    fn verifiers(&self) -> usize {
        self.primary.verifiers()
    }
}
