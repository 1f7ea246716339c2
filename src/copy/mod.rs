//! Moving a store's data to another database, and proving it arrived:
//! [`copy_store`] and [`verify_stores`], between any two compiled backends
//! (SQLite to PostgreSQL, back, and each to itself).
//!
//! How a copy works:
//! - The source must be at the schema version this build knows (its
//!   migrations all applied, none unknown); it is opened without migrating
//!   and only read. The target is migrated to that version.
//! - The source is read in one snapshot (PostgreSQL `REPEATABLE READ READ
//!   ONLY`, SQLite one read transaction), table by table in foreign-key
//!   order, each in key order, a page of `batch_rows` at a time: memory
//!   holds a few pages, whatever the size of the data.
//! - Every row is decoded into its domain value and checked against the
//!   limits `Storage` enforces on input; a row that fails stops the copy
//!   with an error naming the table and key, before its page is written.
//! - Each page is written (PostgreSQL: binary `COPY FROM STDIN`; SQLite:
//!   multi-row INSERTs) in one target transaction together with the
//!   checkpoint: per table, the last key written, the row count and the
//!   order-independent digest of the rows so far. A copy killed at any
//!   point resumes after the last committed page.
//! - The source is read on the calling thread and the target written on
//!   another, a page behind: reading and decoding one page overlaps with
//!   the target storing the one before (memory holds three pages, and
//!   the verifiers' pages below).
//! - `ai_job_entity_refs` is written with the jobs, as the target's
//!   `ai_jobs` insert trigger would write it (on PostgreSQL the trigger is
//!   switched off inside the page's transaction and the refs copied
//!   beside the jobs, when the role owns the table; otherwise the trigger
//!   fills them); its expected digest is derived from the source jobs'
//!   refs and verified.
//! - Every target table is read back and its count and digest compared
//!   with the source's; only when all match is the checkpoint table
//!   dropped. The reading trails the writer on two more threads: each page
//!   is read back (in its own read transaction, 2,000 rows a query) once
//!   it has committed, the rows earlier runs committed when a resumed copy
//!   starts, and each table's keys after its last, so the ranges read tile
//!   every table. At the end every table is counted again in one snapshot
//!   (a row another session inserted or deleted in a range already read
//!   shows there; one it changed there does not: nothing else should write
//!   to a copy's target).
//!
//! The per-backend half (reading pages with the store's own row types,
//! the checkpoint table, the PostgreSQL copy lock) is `end.rs`, compiled
//! with `backend/store.rs`; the writers are `sqlite_write.rs` and
//! `pg_write.rs`.

#[cfg(feature = "sqlite")]
mod lock;
#[cfg(feature = "postgres")]
mod pg_write;
#[cfg(all(feature = "bench", feature = "sqlite", feature = "postgres"))]
mod raw_baseline;
mod record;
#[cfg(feature = "sqlite")]
mod sqlite_write;

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::backend::Maintenance;
use crate::config::{redact_url, DatabaseUrl, StorageConfig};
use crate::error::{StorageError, StorageResult};
use crate::storage::Storage;

#[cfg(all(feature = "bench", feature = "sqlite", feature = "postgres"))]
pub use raw_baseline::raw_copy;
#[cfg_attr(not(feature = "postgres"), allow(unused_imports))]
pub(crate) use record::Cell;
pub(crate) use record::{at_row, IndexedRef, Key, Record, Table};

/// Called as a copy moves: after each page, and once when a table starts.
pub type ProgressFn = Arc<dyn Fn(&CopyProgress) + Send + Sync>;

/// How [`copy_store`] runs.
#[derive(Clone)]
pub struct CopyOptions {
    /// Rows per page: read, written and checkpointed together (default
    /// 10,000).
    pub batch_rows: usize,
    /// Continue a copy that was interrupted: the target must hold this
    /// copy's checkpoint (or be untouched, and the copy simply starts).
    pub resume: bool,
    /// Progress reports, e.g. for a progress bar.
    pub progress: Option<ProgressFn>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            batch_rows: 10_000,
            resume: false,
            progress: None,
        }
    }
}

impl std::fmt::Debug for CopyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOptions")
            .field("batch_rows", &self.batch_rows)
            .field("resume", &self.resume)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Where a copy is: `rows_done` of `rows_total` rows of `table`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyProgress {
    pub table: &'static str,
    pub rows_done: u64,
    pub rows_total: u64,
}

/// What [`copy_store`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyReport {
    /// Per copied table, in the order copied (`ai_job_entity_refs` right
    /// after `ai_jobs`, whose pages carry them).
    pub tables: Vec<TableCopy>,
    /// Rows in the target's copied tables (earlier runs of a resumed copy
    /// included).
    pub rows: u64,
    /// Rows written by this run.
    pub rows_this_run: u64,
    /// Wall time of this run, verification included.
    pub seconds: f64,
    /// Of `seconds`, the time after the last page committed: building the
    /// indexes again while the last pages are read back (the rest of the
    /// reading back runs beside the copy).
    pub verify_seconds: f64,
    /// `rows_this_run / seconds`.
    pub rows_per_sec: f64,
    /// Whether this run continued an interrupted copy.
    pub resumed: bool,
    /// The target read back and compared with the source's digests (`a`
    /// is the source as copied, `b` the target).
    pub verify: VerifyReport,
}

/// One table of a [`CopyReport`].
#[derive(Clone, Debug, PartialEq)]
pub struct TableCopy {
    pub table: String,
    /// Rows in the target when the table was done.
    pub rows: u64,
    /// Rows written by this run.
    pub rows_this_run: u64,
    pub seconds: f64,
    pub rows_per_sec: f64,
}

/// Two stores compared table by table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub tables: Vec<TableDigest>,
    /// Every table has the same count and digest on both sides.
    pub identical: bool,
}

/// One table on both sides: row counts and the order-independent digest
/// of the rows' decoded domain values (the same on every backend for the
/// same rows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDigest {
    pub table: String,
    pub rows_a: u64,
    pub rows_b: u64,
    pub digest_a: String,
    pub digest_b: String,
    /// The first key (in key order) whose row differs or exists on one
    /// side only, when the comparison could name one.
    pub first_difference: Option<String>,
}

impl TableDigest {
    /// Same count and digest.
    pub fn matches(&self) -> bool {
        self.rows_a == self.rows_b && self.digest_a == self.digest_b
    }
}

impl VerifyReport {
    fn new(tables: Vec<TableDigest>) -> Self {
        let identical = tables.iter().all(TableDigest::matches);
        VerifyReport { tables, identical }
    }

    /// The tables that differ, as one line each.
    pub fn differences(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter(|t| !t.matches())
            .map(|t| {
                let mut line = format!(
                    "{}: {} rows (digest {}) against {} rows (digest {})",
                    t.table, t.rows_a, t.digest_a, t.rows_b, t.digest_b
                );
                if let Some(key) = &t.first_difference {
                    line.push_str(&format!(", first differing key {key}"));
                }
                line
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// What the backends provide (implemented in end.rs, sqlite_write.rs,
// pg_write.rs)

/// A table's progress in a target, as stored in its checkpoint table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub table: Table,
    pub copy_id: String,
    /// The source, password redacted (for messages).
    pub source: String,
    pub last_key: Option<Key>,
    pub rows: u64,
    pub digest: u128,
    pub done: bool,
}

/// Held for the length of a copy; dropping it releases the lock.
pub(crate) type CopyLock = Box<dyn std::any::Any>;

/// Reads of one consistent snapshot of a store.
pub(crate) trait Snapshot {
    /// Up to `limit` rows of `table` after `after`, in key order, decoded
    /// and checked.
    fn page(
        &mut self,
        table: Table,
        after: Option<&Key>,
        limit: usize,
    ) -> StorageResult<Vec<Record>>;
    fn count(&mut self, table: Table) -> StorageResult<u64>;
}

/// A store as a copy's source or target.
pub(crate) trait CopyEnd: Storage {
    /// Runs `f` on one read snapshot.
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&mut dyn Snapshot) -> StorageResult<()>,
    ) -> StorageResult<()>;
    /// Writes `records` into `table` and updates `progress` in the
    /// checkpoint, in one transaction.
    fn write_batch(
        &self,
        table: Table,
        records: &[Record],
        progress: &[Checkpoint],
    ) -> StorageResult<()>;
    /// The checkpoint, `None` when the target has no checkpoint table.
    fn checkpoints(&self) -> StorageResult<Option<Vec<Checkpoint>>>;
    /// Creates the checkpoint table with these rows, and drops the
    /// secondary indexes of the copied tables, keeping their definitions
    /// beside the checkpoint: rows first, indexes after.
    fn start_checkpoint(&self, checkpoints: &[Checkpoint]) -> StorageResult<()>;
    /// Builds the indexes `start_checkpoint` dropped (if it did, and they
    /// are not built yet), in one transaction.
    fn restore_indexes(&self) -> StorageResult<()>;
    fn drop_checkpoint(&self) -> StorageResult<()>;
    /// Takes the server's lock against a second copy into this database
    /// (`Conflict` when it is taken); `None` where the backend has none
    /// (SQLite: see `lock.rs`).
    fn lock_copies(&self) -> StorageResult<Option<CopyLock>>;
}

/// Inserts decoded rows, each backend its fastest way.
pub(crate) trait WriteRecords {
    fn write_records(&mut self, table: Table, records: &[Record]) -> StorageResult<()>;
}

// ---------------------------------------------------------------------------
// Copy

/// Copies every row of the store at `from_url` into the empty store at
/// `to_url` (any compiled backend to any), then verifies the target
/// against the source's digests. See the module doc for the guarantees;
/// refusals (a source at another schema version, a non-empty target, an
/// unfinished copy without `resume`) are `Validation` errors, a second
/// copy into the same target at once is `Conflict`, and a source row the
/// library cannot read stops the copy with an error naming its table and
/// key.
pub fn copy_store(
    from_url: &str,
    to_url: &str,
    options: &CopyOptions,
) -> StorageResult<CopyReport> {
    let started = Instant::now();
    if options.batch_rows == 0 {
        return Err(StorageError::validation("batch_rows must be at least 1"));
    }
    let from = DatabaseUrl::parse(from_url)?;
    let to = DatabaseUrl::parse(to_url)?;
    let source_name = identity(&from, from_url, "source")?;
    let target_name = identity(&to, to_url, "target")?;
    if source_name == target_name {
        return Err(StorageError::validation(format!(
            "source and target are the same database ({source_name})"
        )));
    }
    if let DatabaseUrl::SqliteFile(path) = &from {
        if !path.exists() {
            return Err(StorageError::validation(format!(
                "the source SQLite file {} does not exist",
                path.display()
            )));
        }
    }

    let source = open_end(from_url, false)?;
    let source_version = schema_version(&*source, "source", &source_name)?;

    let target = open_end(to_url, true)?;
    #[cfg(feature = "sqlite")]
    let _file_lock = match &to {
        DatabaseUrl::SqliteFile(path) => Some(lock::lock_sqlite_target(path)?),
        _ => None,
    };
    let _server_lock = target.lock_copies()?;
    let target_version = schema_version(&*target, "target", &target_name)?;
    if target_version != source_version {
        return Err(StorageError::validation(format!(
            "the target is at schema version {} but the source at {}: copy into an empty \
             database, which is migrated to the source's version",
            last(&target_version),
            last(&source_version)
        )));
    }

    let copy_id = copy_id(&source_name, &source_version);
    let (mut checkpoints, resumed) = match target.checkpoints()? {
        Some(found) => (resume_from(found, &copy_id, &source_name, options)?, true),
        None => {
            refuse_non_empty(&*target)?;
            let fresh: Vec<Checkpoint> = Table::ALL
                .iter()
                .map(|&table| Checkpoint {
                    table,
                    copy_id: copy_id.clone(),
                    source: source_name.clone(),
                    last_key: None,
                    rows: 0,
                    digest: 0,
                    done: false,
                })
                .collect();
            target.start_checkpoint(&fresh)?;
            (fresh, false)
        }
    };

    let copied = pipeline(&*source, &*target, &mut checkpoints, options)?;
    let (tables, verify_seconds) = (copied.tables, copied.finish_seconds);
    let verify = compare_found(&checkpoints, &copied.found, &copied.counts);
    if !verify.identical {
        return Err(StorageError::Validation(format!(
            "the copy did not verify, the checkpoint is kept: {}",
            verify.differences().join("; ")
        )));
    }
    target.drop_checkpoint()?;
    let seconds = started.elapsed().as_secs_f64();
    let rows_this_run = tables.iter().map(|t: &TableCopy| t.rows_this_run).sum();
    Ok(CopyReport {
        rows: tables.iter().map(|t| t.rows).sum(),
        rows_this_run,
        seconds,
        verify_seconds,
        rows_per_sec: per_sec(rows_this_run, seconds),
        resumed,
        tables,
        verify,
    })
}

/// What the reader hands the writer.
enum Step {
    /// A table starts: rows already in the target, rows in all.
    Begin { table: Table, done: u64, total: u64 },
    /// A page, and the checkpoints to commit with it (the table's; with
    /// jobs, the refs' too).
    Page {
        table: Table,
        records: Vec<Record>,
        next: Vec<Checkpoint>,
        /// What to read back once the page has committed.
        written: Vec<Part>,
    },
    /// Ranges to read back that no page of this run writes: rows an
    /// earlier run committed, and the keys after a table's last.
    Verify(Vec<Part>),
    /// A table is done: per table written with it (jobs: their refs
    /// too), rows in the target and rows written by this run.
    End(Vec<(Table, u64, u64)>),
}

/// Pages read ahead of the writer: memory holds at most this many plus
/// the one being read and the one being written.
const PAGES_AHEAD: usize = 1;

/// Threads reading the target back while the copy runs.
const VERIFIERS: usize = 2;

/// A range of one table's keys to read back: after `after` (from the
/// first) up to and including `until` (to the last), holding `expected`
/// rows if the target is what the copy wrote.
struct Part {
    table: Table,
    after: Option<Key>,
    until: Option<Key>,
    expected: u64,
}

/// The first failure of any of the pipeline's threads, which is the cause:
/// the others stop when they see it (the reader when the writer has gone,
/// the writer and the verifiers at their next step) with errors that only
/// say so.
#[derive(Default)]
struct Failure {
    stopped: std::sync::atomic::AtomicBool,
    first: std::sync::Mutex<Option<StorageError>>,
}

impl Failure {
    fn fail<T>(&self, result: StorageResult<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                if let Ok(mut first) = self.first.lock() {
                    first.get_or_insert(e);
                }
                self.stopped
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                None
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn check(&self) -> StorageResult<()> {
        match self.first.lock().ok().and_then(|mut first| first.take()) {
            Some(e) => Err(e),
            None if self.stopped() => Err(StorageError::Database(
                "the copy stopped (a thread of it failed)".into(),
            )),
            None => Ok(()),
        }
    }
}

/// What [`pipeline`] did: per table written, and per table read back
/// (rows and digest, summed over ranges).
struct Copied {
    tables: Vec<TableCopy>,
    found: Vec<(Table, u64, u128)>,
    /// Per table, its rows at the end, counted in one snapshot.
    counts: Vec<(Table, u64)>,
    /// From the last page's commit to the end of verification (the
    /// indexes built again meanwhile).
    finish_seconds: f64,
}

/// Reads the source on this thread and writes the target on another, so
/// decoding, checking and digesting a page overlaps with the target
/// storing the previous one; two more threads read each committed page
/// back from the target (in their own read transactions) and digest it,
/// trailing the writer, so verification runs while the copy does. Pages
/// are committed in order; `checkpoints` ends as the last committed state.
///
/// The ranges read back tile every table's keys (the rows earlier runs
/// committed, each page, and everything after the last key), so what the
/// verifiers sum is the whole target table: a row that is missing, extra
/// or different shows in its count or digest.
fn pipeline(
    source: &dyn CopyEnd,
    target: &dyn CopyEnd,
    checkpoints: &mut [Checkpoint],
    options: &CopyOptions,
) -> StorageResult<Copied> {
    let (to_writer, steps) = std::sync::mpsc::sync_channel::<Step>(PAGES_AHEAD);
    let (to_verifiers, parts) = std::sync::mpsc::channel::<Part>();
    let parts = std::sync::Mutex::new(parts);
    let failure = Failure::default();
    fn panicked<T>(what: &str) -> StorageResult<T> {
        Err(StorageError::Database(format!(
            "the copy's {what} panicked"
        )))
    }
    let mut finishing = Instant::now();
    let found = std::thread::scope(|scope| {
        let verifiers: Vec<_> = (0..VERIFIERS)
            .map(|_| scope.spawn(|| verify_parts(target, &parts, &failure)))
            .collect();
        // Each thread records its failure as it happens, so the others
        // stop at their next step.
        let writer = scope
            .spawn(|| failure.fail(write_steps(target, steps, options, to_verifiers, &failure)));
        let read = source.snapshot(&mut |snap| {
            for table in Table::ALL.into_iter().filter(|t| t.written()) {
                read_table(snap, table, checkpoints, options, &to_writer)?;
            }
            Ok(())
        });
        drop(to_writer);
        // The writer's failure first: the reader then only saw it go.
        let tables = writer
            .join()
            .unwrap_or_else(|_| failure.fail(panicked("writer thread")));
        failure.fail(read);
        finishing = Instant::now();
        // Every table counted once the writer is done, and the indexes
        // built, while the verifiers finish (they read by primary key,
        // which is never dropped).
        let counter = (!failure.stopped()).then(|| scope.spawn(|| count_tables(target)));
        if !failure.stopped() {
            failure.fail(target.restore_indexes());
        }
        let counts = counter
            .and_then(|counter| {
                failure.fail(
                    counter
                        .join()
                        .unwrap_or_else(|_| panicked("counting thread")),
                )
            })
            .unwrap_or_default();
        let mut found = Vec::new();
        for verifier in verifiers {
            let sums = verifier
                .join()
                .unwrap_or_else(|_| failure.fail(panicked("verifying thread")));
            found.extend(sums.unwrap_or_default());
        }
        tables.map(|tables| (tables, found, counts))
    });
    failure.check()?;
    let (tables, found, counts) =
        found.ok_or_else(|| StorageError::Database("the copy stopped".into()))?;
    Ok(Copied {
        tables,
        found,
        counts,
        finish_seconds: finishing.elapsed().as_secs_f64(),
    })
}

/// A verifier: takes committed ranges off the queue until it closes (or
/// the copy fails), reads each back in a read transaction and sums rows
/// and digests per table.
fn verify_parts(
    target: &dyn CopyEnd,
    parts: &std::sync::Mutex<std::sync::mpsc::Receiver<Part>>,
    failure: &Failure,
) -> Option<Vec<(Table, u64, u128)>> {
    let mut sums: Vec<(Table, u64, u128)> = Vec::new();
    while !failure.stopped() {
        let next = match parts.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => break,
        };
        let Ok(part) = next else {
            break;
        };
        let mut rows_digest = (0, 0);
        failure.fail(target.snapshot(&mut |snap| {
            let mut pages = Pager::range(part.table, part.after.clone(), part.until.clone())
                .expecting(part.expected);
            rows_digest = pages.digest(snap)?;
            Ok(())
        }))?;
        match sums.iter_mut().find(|(t, _, _)| *t == part.table) {
            Some((_, rows, digest)) => {
                *rows += rows_digest.0;
                *digest = digest.wrapping_add(rows_digest.1);
            }
            None => sums.push((part.table, rows_digest.0, rows_digest.1)),
        }
    }
    Some(sums)
}

/// Reads one table from where its checkpoint stands, page by page, and
/// hands each page with its next checkpoints, and the ranges to read back
/// once it commits, to the writer.
fn read_table(
    snap: &mut dyn Snapshot,
    table: Table,
    checkpoints: &mut [Checkpoint],
    options: &CopyOptions,
    writer: &std::sync::mpsc::SyncSender<Step>,
) -> StorageResult<()> {
    let send = |step: Step| {
        writer
            .send(step)
            .map_err(|_| StorageError::Database("the copy's writer stopped".into()))
    };
    let index = |t: Table| Table::ALL.iter().position(|&x| x == t).unwrap_or(0);
    let (mine, refs) = (index(table), index(Table::AiJobEntityRefs));
    let with_refs = table == Table::AiJobs;
    // The ranges of this table's keys (and, for jobs, of their refs: all
    // of a job's refs come after the job's key with position MAX).
    // `expected`: rows of this table, and of refs, in the range.
    let ranges = |after: &Option<Key>, until: &Option<Key>, expected: (u64, u64)| {
        let mut parts = vec![Part {
            table,
            after: after.clone(),
            until: until.clone(),
            expected: expected.0,
        }];
        if with_refs {
            let refs_key = |k: &Option<Key>| {
                k.as_ref().map(|k| Key {
                    id: k.id.clone(),
                    pos: Some(i64::MAX),
                })
            };
            parts.push(Part {
                table: Table::AiJobEntityRefs,
                after: refs_key(after),
                until: refs_key(until),
                expected: expected.1,
            });
        }
        parts
    };
    let done = checkpoints[mine].rows;
    let refs_before = checkpoints[refs].rows;
    let total = if checkpoints[mine].done {
        done
    } else {
        done + count_after(snap, table, &checkpoints[mine])?
    };
    send(Step::Begin { table, done, total })?;
    let start = checkpoints[mine].last_key.clone();
    if start.is_some() {
        send(Step::Verify(ranges(&None, &start, (done, refs_before))))?;
    }
    while !checkpoints[mine].done {
        let before = checkpoints[mine].last_key.clone();
        let page = snap.page(table, before.as_ref(), options.batch_rows)?;
        let mut next = vec![checkpoints[mine].clone()];
        next[0].done = page.len() < options.batch_rows;
        if let Some(last) = page.last() {
            next[0].last_key = Some(last.key());
        }
        if with_refs {
            next.push(checkpoints[refs].clone());
        }
        for record in &page {
            add(&mut next[0], record)?;
            for indexed in record.indexed_refs() {
                add(&mut next[1], &indexed)?;
            }
        }
        if with_refs {
            next[1].done = next[0].done;
        }
        let written = if page.is_empty() {
            Vec::new()
        } else {
            let refs_written = next.get(1).map_or(0, |r| r.rows - checkpoints[refs].rows);
            ranges(
                &before,
                &next[0].last_key,
                (page.len() as u64, refs_written),
            )
        };
        for c in &next {
            checkpoints[index(c.table)] = c.clone();
        }
        send(Step::Page {
            table,
            records: page,
            next,
            written,
        })?;
    }
    // After the last key: nothing, unless the target holds rows this copy
    // did not write.
    send(Step::Verify(ranges(
        &checkpoints[mine].last_key,
        &None,
        (0, 0),
    )))?;
    let mut tables = vec![(table, checkpoints[mine].rows, checkpoints[mine].rows - done)];
    if with_refs {
        let refs = &checkpoints[refs];
        tables.push((refs.table, refs.rows, refs.rows - refs_before));
    }
    send(Step::End(tables))
}

/// The writer's half of [`pipeline`]: commits each page with its
/// checkpoints, then hands its ranges to the verifiers; reports progress,
/// and times each table.
fn write_steps(
    target: &dyn CopyEnd,
    steps: std::sync::mpsc::Receiver<Step>,
    options: &CopyOptions,
    verifiers: std::sync::mpsc::Sender<Part>,
    failure: &Failure,
) -> StorageResult<Vec<TableCopy>> {
    let mut tables = Vec::new();
    let (mut started, mut total) = (Instant::now(), 0u64);
    let report = |table: Table, done: u64, total: u64| {
        if let Some(progress) = &options.progress {
            progress(&CopyProgress {
                table: table.name(),
                rows_done: done,
                rows_total: total,
            });
        }
    };
    let verify = |parts: Vec<Part>| -> StorageResult<()> {
        for part in parts {
            verifiers
                .send(part)
                .map_err(|_| StorageError::Database("the copy's verifiers stopped".into()))?;
        }
        Ok(())
    };
    for step in steps {
        if failure.stopped() {
            return Err(StorageError::Database("the copy stopped".into()));
        }
        match step {
            Step::Begin {
                table,
                done,
                total: all,
            } => {
                (started, total) = (Instant::now(), all);
                report(table, done, total);
            }
            Step::Page {
                table,
                records,
                next,
                written,
            } => {
                target.write_batch(table, &records, &next)?;
                verify(written)?;
                report(table, next[0].rows, total);
            }
            Step::Verify(parts) => verify(parts)?,
            Step::End(done) => {
                let seconds = started.elapsed().as_secs_f64();
                for (table, rows, written) in done {
                    tables.push(TableCopy {
                        table: table.name().to_string(),
                        rows,
                        rows_this_run: written,
                        seconds,
                        rows_per_sec: per_sec(written, seconds),
                    });
                }
            }
        }
    }
    Ok(tables)
}

/// Rows of `table` after the checkpoint's key (all of them at the start),
/// for the progress total.
fn count_after(snap: &mut dyn Snapshot, table: Table, at: &Checkpoint) -> StorageResult<u64> {
    let all = snap.count(table)?;
    Ok(all.saturating_sub(at.rows))
}

fn add(checkpoint: &mut Checkpoint, record: &Record) -> StorageResult<()> {
    checkpoint.rows += 1;
    checkpoint.digest = checkpoint.digest.wrapping_add(record.digest()?);
    Ok(())
}

/// The checkpoint found in a target, if this copy may continue from it.
fn resume_from(
    found: Vec<Checkpoint>,
    copy_id: &str,
    source_name: &str,
    options: &CopyOptions,
) -> StorageResult<Vec<Checkpoint>> {
    if let Some(other) = found.iter().find(|c| c.copy_id != copy_id) {
        if other.source == source_name {
            return Err(StorageError::validation(format!(
                "the target holds an unfinished copy from {source_name} made at another schema \
                 version or by another release of this library, which this one cannot finish: \
                 copy into an empty database"
            )));
        }
        return Err(StorageError::validation(format!(
            "the target holds the checkpoint of an unfinished copy from {}, not from {source_name}: \
             finish that copy, or copy into an empty database",
            other.source
        )));
    }
    if !options.resume {
        return Err(StorageError::validation(format!(
            "the target holds an unfinished copy from {source_name}: rerun with resume \
             (`hsk-storage copy --resume`) to finish it"
        )));
    }
    Table::ALL
        .iter()
        .map(|&table| {
            found
                .iter()
                .find(|c| c.table == table)
                .cloned()
                .ok_or_else(|| {
                    StorageError::Serialization(format!(
                        "the target's copy checkpoint has no row for table {}",
                        table.name()
                    ))
                })
        })
        .collect()
}

/// `Validation` naming the first table of `target` that has rows.
fn refuse_non_empty(target: &dyn CopyEnd) -> StorageResult<()> {
    let mut occupied = None;
    target.snapshot(&mut |snap| {
        for table in Table::ALL {
            let rows = snap.count(table)?;
            if rows > 0 {
                occupied = Some((table, rows));
                break;
            }
        }
        Ok(())
    })?;
    match occupied {
        Some((table, rows)) => Err(StorageError::validation(format!(
            "the target is not empty (table {} has {rows} rows): copy into an empty database",
            table.name()
        ))),
        None => Ok(()),
    }
}

/// Every table's rows in one snapshot of the target, once the verifiers
/// are done: a row another session inserted or deleted in a range after
/// it was read back shows here.
fn count_tables(target: &dyn CopyEnd) -> StorageResult<Vec<(Table, u64)>> {
    let mut counts = Vec::new();
    target.snapshot(&mut |snap| {
        for table in Table::ALL {
            counts.push((table, snap.count(table)?));
        }
        Ok(())
    })?;
    Ok(counts)
}

/// What the verifiers read back, compared table by table with what the
/// copy read from the source (the checkpoints' counts and digests); a
/// table whose final count (`counts`) is not what was read back reports
/// that count.
fn compare_found(
    source: &[Checkpoint],
    found: &[(Table, u64, u128)],
    counts: &[(Table, u64)],
) -> VerifyReport {
    let tables = source
        .iter()
        .map(|expected| {
            let (rows, digest) = found
                .iter()
                .filter(|(t, _, _)| *t == expected.table)
                .fold((0u64, 0u128), |(r, d), (_, rows, digest)| {
                    (r + rows, d.wrapping_add(*digest))
                });
            let rows = counts
                .iter()
                .find(|(t, _)| *t == expected.table)
                .map_or(rows, |&(_, count)| count);
            TableDigest {
                table: expected.table.name().to_string(),
                rows_a: expected.rows,
                rows_b: rows,
                digest_a: hex(expected.digest),
                digest_b: hex(digest),
                first_difference: None,
            }
        })
        .collect();
    VerifyReport::new(tables)
}

// ---------------------------------------------------------------------------
// Verify

/// Rows read per page when verifying.
const VERIFY_PAGE_ROWS: usize = 2_000;

/// Compares the stores at `a_url` and `b_url` (any compiled backends):
/// per table the row count and the order-independent digest of every
/// row's decoded domain value, and the first key whose row differs. Both
/// are read in one snapshot each and never written (neither is migrated;
/// they must be at the same schema version).
pub fn verify_stores(a_url: &str, b_url: &str) -> StorageResult<VerifyReport> {
    let a_name = identity(&DatabaseUrl::parse(a_url)?, a_url, "first")?;
    let b_name = identity(&DatabaseUrl::parse(b_url)?, b_url, "second")?;
    let a = open_end(a_url, false)?;
    let b = open_end(b_url, false)?;
    let a_version = schema_version(&*a, "first store", &a_name)?;
    let b_version = schema_version(&*b, "second store", &b_name)?;
    if a_version != b_version {
        return Err(StorageError::validation(format!(
            "{a_name} is at schema version {} but {b_name} at {}",
            last(&a_version),
            last(&b_version)
        )));
    }
    let mut tables = Vec::new();
    a.snapshot(&mut |sa| {
        b.snapshot(&mut |sb| {
            for table in Table::ALL {
                tables.push(compare_table(sa, sb, table)?);
            }
            Ok(())
        })
    })?;
    Ok(VerifyReport::new(tables))
}

/// One table of both snapshots, walked together in key order.
fn compare_table(
    a: &mut dyn Snapshot,
    b: &mut dyn Snapshot,
    table: Table,
) -> StorageResult<TableDigest> {
    let (mut pa, mut pb) = (Pager::new(table), Pager::new(table));
    let (mut rows_a, mut rows_b, mut digest_a, mut digest_b) = (0u64, 0u64, 0u128, 0u128);
    let mut first_difference = None;
    let (mut next_a, mut next_b) = (pa.next(a)?, pb.next(b)?);
    loop {
        let order = match (&next_a, &next_b) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.key().cmp(&y.key()),
        };
        let (mut hash_a, mut hash_b) = (None, None);
        if order.is_le() {
            let record = next_a.take().unwrap_or_else(|| unreachable!());
            hash_a = Some((record.digest()?, record.key()));
            next_a = pa.next(a)?;
        }
        if order.is_ge() {
            let record = next_b.take().unwrap_or_else(|| unreachable!());
            hash_b = Some((record.digest()?, record.key()));
            next_b = pb.next(b)?;
        }
        if let Some((h, _)) = &hash_a {
            rows_a += 1;
            digest_a = digest_a.wrapping_add(*h);
        }
        if let Some((h, _)) = &hash_b {
            rows_b += 1;
            digest_b = digest_b.wrapping_add(*h);
        }
        if first_difference.is_none() {
            first_difference = match (hash_a, hash_b) {
                (Some((x, key)), Some((y, _))) if x != y => Some(format!("{key} (rows differ)")),
                (Some((_, key)), None) => Some(format!("{key} (only in the first store)")),
                (None, Some((_, key))) => Some(format!("{key} (only in the second store)")),
                _ => None,
            };
        }
    }
    Ok(TableDigest {
        table: table.name().to_string(),
        rows_a,
        rows_b,
        digest_a: hex(digest_a),
        digest_b: hex(digest_b),
        first_difference,
    })
}

/// The rows of one table (or of a range of its keys), fetched a page at a
/// time.
struct Pager {
    table: Table,
    page: std::vec::IntoIter<Record>,
    after: Option<Key>,
    /// The last key to return.
    until: Option<Key>,
    /// Rows the range should still hold: a query asks for one more than
    /// that (to see a row that should not be there), not for rows of the
    /// next range.
    budget: Option<u64>,
    exhausted: bool,
}

impl Pager {
    fn new(table: Table) -> Self {
        Pager::range(table, None, None)
    }

    /// The rows after `after` (from the first) up to and including
    /// `until` (to the last).
    fn range(table: Table, after: Option<Key>, until: Option<Key>) -> Self {
        Pager {
            table,
            page: Vec::new().into_iter(),
            after,
            until,
            budget: None,
            exhausted: false,
        }
    }

    /// The range should hold `rows` rows.
    fn expecting(self, rows: u64) -> Self {
        Pager {
            budget: Some(rows),
            ..self
        }
    }

    fn next(&mut self, snap: &mut dyn Snapshot) -> StorageResult<Option<Record>> {
        if let Some(record) = self.page.next() {
            return Ok(Some(record));
        }
        if self.exhausted {
            return Ok(None);
        }
        let limit = self.budget.map_or(VERIFY_PAGE_ROWS, |rows| {
            usize::try_from(rows.saturating_add(1))
                .map_or(VERIFY_PAGE_ROWS, |r| r.min(VERIFY_PAGE_ROWS))
        });
        let mut page = snap.page(self.table, self.after.as_ref(), limit)?;
        self.exhausted = page.len() < limit;
        self.after = page.last().map(Record::key);
        if let Some(until) = &self.until {
            if self.after.as_ref().is_some_and(|last| last > until) {
                page.retain(|r| r.key() <= *until);
                self.exhausted = true;
            }
        }
        if let Some(budget) = &mut self.budget {
            *budget = budget.saturating_sub(page.len() as u64);
        }
        self.page = page.into_iter();
        Ok(self.page.next())
    }

    /// Rows and the sum of their digests.
    fn digest(&mut self, snap: &mut dyn Snapshot) -> StorageResult<(u64, u128)> {
        let (mut rows, mut digest) = (0u64, 0u128);
        while let Some(record) = self.next(snap)? {
            rows += 1;
            digest = digest.wrapping_add(record.digest()?);
        }
        Ok((rows, digest))
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// A copy's end: a source (not migrated) needs one connection for its
/// snapshot; a target (migrated) one for the copy lock, one for the writer
/// and then the index builder, one for each verifier and one to count the
/// tables at the end.
fn open_end(url: &str, run_migrations: bool) -> StorageResult<Arc<dyn Maintenance>> {
    let connections = if run_migrations { 3 + VERIFIERS } else { 1 };
    let config = StorageConfig::default()
        .pool_size(connections as u32 + 1)
        .run_migrations(run_migrations);
    crate::backend::open_maintained(url, &config)
}

/// A name for the database a URL names, the same for two URLs that name
/// the same database, without secrets: a SQLite file's absolute path, a
/// PostgreSQL URL with its password redacted.
fn identity(url: &DatabaseUrl, raw: &str, side: &str) -> StorageResult<String> {
    match url {
        DatabaseUrl::SqliteMemory => Err(StorageError::validation(format!(
            "the {side} is an in-memory SQLite database, which lives only as long as one \
             process: copy to and from files"
        ))),
        DatabaseUrl::SqliteFile(path) => {
            let absolute = std::path::absolute(path).map_err(|e| {
                StorageError::validation(format!("bad SQLite path {}: {e}", path.display()))
            })?;
            Ok(format!(
                "sqlite://{}",
                std::fs::canonicalize(&absolute)
                    .unwrap_or(absolute)
                    .display()
            ))
        }
        DatabaseUrl::Postgres(_) => Ok(redact_url(raw)),
    }
}

/// The applied migrations of a store, refused unless they are exactly the
/// ones this build knows.
fn schema_version(end: &dyn CopyEnd, side: &str, name: &str) -> StorageResult<Vec<String>> {
    let status = end.migration_status()?;
    if status.applied.is_empty() {
        return Err(StorageError::validation(format!(
            "the {side} {name} has no Handshake schema (no migration applied)"
        )));
    }
    if !status.pending.is_empty() {
        return Err(StorageError::validation(format!(
            "the {side} {name} is at schema version {} but this build copies version {}: \
             run `hsk-storage migrate` on it first",
            last(&status.applied),
            last(&status.pending)
        )));
    }
    Ok(status.applied)
}

/// Lists the secondary indexes of the copied tables (those no primary key
/// or unique constraint stands behind) as `name` and `definition`, the
/// statement that creates each. On PostgreSQL only those of tables this
/// role owns (only an owner may drop and create them).
pub(crate) fn secondary_indexes_sql(backend: crate::Backend) -> String {
    let tables = Table::ALL
        .iter()
        .map(|t| format!("'{}'", t.name()))
        .collect::<Vec<_>>()
        .join(", ");
    match backend {
        crate::Backend::Sqlite => format!(
            "SELECT name, sql AS definition FROM sqlite_master \
             WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({tables}) \
             ORDER BY name"
        ),
        crate::Backend::Postgres => format!(
            "SELECT i.indexname::text AS name, i.indexdef AS definition FROM pg_indexes i \
             WHERE i.schemaname = current_schema() AND i.tablename IN ({tables}) \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k \
                 WHERE k.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass) \
             AND pg_has_role(current_user, (SELECT t.relowner FROM pg_class t \
                 WHERE t.oid = format('%I.%I', i.schemaname, i.tablename)::regclass), 'USAGE') \
             ORDER BY 1"
        ),
    }
}

/// `DROP INDEX` of an index by its name, quoted.
pub(crate) fn drop_index_sql(name: &str) -> String {
    format!("DROP INDEX \"{}\"", name.replace('"', "\"\""))
}

/// Whether a kept index definition is what it should be: one `CREATE
/// [UNIQUE] INDEX` statement of the index of that name (the list lives in
/// the target between a kill and a resume, and is run as it reads).
pub(crate) fn is_index_definition(name: &str, definition: &str) -> bool {
    let upper = definition.trim_start().to_ascii_uppercase();
    (upper.starts_with("CREATE INDEX ") || upper.starts_with("CREATE UNIQUE INDEX "))
        && definition.contains(name)
        && !definition.contains(';')
}

fn last(versions: &[String]) -> &str {
    versions.last().map_or("(none)", String::as_str)
}

/// The form of [`Record::digest`]: a checkpoint's digests are comparable
/// only with digests of the same form.
const DIGEST_FORM: &str = "cells-sha256-v2";

/// Names one copy: its source, schema version and digest form. A
/// checkpoint with another id belongs to another copy.
fn copy_id(source_name: &str, versions: &[String]) -> String {
    let mut hash = Sha256::new();
    hash.update(DIGEST_FORM.as_bytes());
    hash.update(b"\n");
    hash.update(source_name.as_bytes());
    for v in versions {
        hash.update(b"\n");
        hash.update(v.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex(digest: u128) -> String {
    format!("{digest:032x}")
}

fn per_sec(rows: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        rows as f64 / seconds
    } else {
        0.0
    }
}
