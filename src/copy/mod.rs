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
//!   dropped. The reading trails the writer on more threads (one into
//!   PostgreSQL, two into SQLite: `CopyEnd::verifiers`): each page
//!   is read back (in its own read transaction, 2,000 rows a query) once
//!   it has committed, the rows earlier runs committed when a resumed copy
//!   starts, and each table's keys after its last, so the ranges read tile
//!   every table. At the end every table is counted again in one snapshot
//!   (a row another session inserted or deleted in a range already read
//!   shows there; one it changed there does not: nothing else should write
//!   to a copy's target).
//!
//! What a store provides to a copy (reading pages with the store's own row
//! types, writing them with their checkpoint, the checkpoint table, the
//! locks against a second copy, and the row type itself) is
//! `backend::copy_end`, below this module.
//!
//! The copy by stage: `plan.rs` (the checks before any row moves, the
//! copy's id, resuming), `pipeline.rs` (the threads and what they hand
//! each other), `read.rs` (the source, page by page), `write.rs` (the
//! target, page by page), `verify.rs` (reading the target back, and
//! [`verify_stores`]) and `report.rs` (what a copy reports).

mod pipeline;
mod plan;
#[cfg(all(feature = "bench", feature = "sqlite", feature = "postgres"))]
mod raw_baseline;
mod read;
mod report;
mod verify;
mod write;

use std::sync::Arc;
use std::time::Instant;

use crate::backend::copy_end::{Checkpoint, CopyEnd, Snapshot, Table};
use crate::config::DatabaseUrl;
use crate::error::{StorageError, StorageResult};
use pipeline::pipeline;
pub(crate) use plan::{copy_id, identity};
use plan::{last, open_end, refuse_non_empty, resume_from, schema_version};
use report::per_sec;
use verify::{compare_found, compare_table};

#[cfg(all(feature = "bench", feature = "sqlite", feature = "postgres"))]
pub use raw_baseline::raw_copy;
pub use report::{CopyReport, TableCopy, TableDigest, VerifyReport};

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
    /// The table being copied.
    pub table: &'static str,
    /// Its rows in the target so far.
    pub rows_done: u64,
    /// Its rows in the source.
    pub rows_total: u64,
}

/// Copies every row of the store at `from_url` into the empty store at
/// `to_url` (any compiled backend to any), then verifies the target
/// against the source's digests. See the module doc for the guarantees;
/// refusals (a source at another schema version, a non-empty target, an
/// unfinished copy without `resume`) are `Validation` errors, a second
/// copy into the same target at once is `Conflict`, and a source row the
/// library cannot read stops the copy with an error naming its table and
/// key.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use handshake_storage::copy::{copy_store, verify_stores, CopyOptions};
/// use handshake_storage::{open, NewWorkspace, WriteContext};
///
/// let dir = tempfile::tempdir()?;
/// let from = format!("sqlite://{}", dir.path().join("old.db").display());
/// let to = format!("sqlite://{}", dir.path().join("new.db").display());
///
/// let source = open(&from)?;
/// let ws = source.create_workspace(
///     &WriteContext::system(None),
///     NewWorkspace { name: "Archive".into() },
/// )?;
/// drop(source);
///
/// // A PostgreSQL URL on either side works the same way.
/// let report = copy_store(&from, &to, &CopyOptions::default())?;
/// assert!(report.verify.identical);
/// assert_eq!(report.rows, 1);
/// assert!(verify_stores(&from, &to)?.identical);
/// assert_eq!(open(&to)?.get_workspace(&ws.id)?, Some(ws));
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
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

    let source = open_end(&from, false)?;
    let source_version = schema_version(&*source, "source", &source_name)?;
    let plan = CopyPlan {
        source_name: &source_name,
        copy_id: copy_id(&source_name, &source_version),
        version: Some(&source_version),
        command: "copy",
    };
    copy_into(
        &StoreSource(&*source),
        &plan,
        (&to, to_url),
        options,
        started,
    )
}

/// What a copy reads from: a store of ours, or (`crate::import`) a
/// database of another schema read as ours.
pub(crate) trait Source {
    /// Runs `f` on one read snapshot.
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&mut dyn Snapshot) -> StorageResult<()>,
    ) -> StorageResult<()>;
    /// Called once the target's checkpoints are known (fresh, or those a
    /// resumed run continues from), before any row is read.
    fn begin(&self, _checkpoints: &[Checkpoint]) -> StorageResult<()> {
        Ok(())
    }
    /// Called once the target has verified, before its checkpoint is
    /// dropped: a last chance to refuse the result.
    fn finish(&self, _checkpoints: &[Checkpoint]) -> StorageResult<()> {
        Ok(())
    }
}

/// A store of ours as a copy's source.
struct StoreSource<'a>(&'a dyn CopyEnd);

impl Source for StoreSource<'_> {
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&mut dyn Snapshot) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.0.snapshot(f)
    }
}

/// Where a copy goes and how it is named: what [`copy_into`] needs beyond
/// its source.
pub(crate) struct CopyPlan<'a> {
    /// The source's name for messages and checkpoints (no password).
    pub source_name: &'a str,
    /// Names this copy in the target's checkpoint (see [`copy_id`]).
    pub copy_id: String,
    /// The schema version the target must be at, when it must match the
    /// source's; `None`: this build's.
    pub version: Option<&'a [String]>,
    /// The command that continues it, for messages (`copy`, `import`).
    pub command: &'static str,
}

/// The target's half of a copy, from any [`Source`]: opens and migrates
/// the target, locks it, starts or resumes the checkpoint, runs the
/// pipeline, verifies and drops the checkpoint.
pub(crate) fn copy_into(
    source: &dyn Source,
    plan: &CopyPlan<'_>,
    (to, to_url): (&DatabaseUrl, &str),
    options: &CopyOptions,
    started: Instant,
) -> StorageResult<CopyReport> {
    let target_name = identity(to, to_url, "target")?;
    let source_name = plan.source_name;
    let target = open_end(to, true)?;
    #[cfg(feature = "sqlite")]
    let _file_lock = match to {
        DatabaseUrl::SqliteFile(path) => Some(crate::backend::copy_end::lock_sqlite_target(path)?),
        _ => None,
    };
    let _server_lock = target.lock_copies()?;
    let target_version = schema_version(&*target, "target", &target_name)?;
    if let Some(source_version) = plan.version {
        if target_version != source_version {
            return Err(StorageError::validation(format!(
                "the target is at schema version {} but the source at {}: copy into an empty \
                 database, which is migrated to the source's version",
                last(&target_version),
                last(source_version)
            )));
        }
    }

    let copy_id = &plan.copy_id;
    let (mut checkpoints, resumed) = match target.checkpoints()? {
        Some(found) => (
            resume_from(found, copy_id, source_name, plan.command, options)?,
            true,
        ),
        None => {
            refuse_non_empty(&*target)?;
            let fresh: Vec<Checkpoint> = Table::ALL
                .iter()
                .map(|&table| Checkpoint {
                    table,
                    copy_id: copy_id.clone(),
                    source: source_name.to_string(),
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
    source.begin(&checkpoints)?;

    let copied = pipeline(source, &*target, &mut checkpoints, options)?;
    let (tables, verify_seconds) = (copied.tables, copied.finish_seconds);
    let verify = compare_found(&checkpoints, &copied.found, &copied.counts);
    if !verify.identical {
        return Err(StorageError::Validation(format!(
            "the {} did not verify, the checkpoint is kept: {}",
            plan.command,
            verify.differences().join("; ")
        )));
    }
    source.finish(&checkpoints)?;
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
        rows_verified_by_bytes: copied.by_bytes,
        verify,
    })
}

/// Compares the stores at `a_url` and `b_url` (any compiled backends):
/// per table the row count and the order-independent digest of every
/// row's decoded domain value, and the first key whose row differs. Both
/// are read in one snapshot each and never written (neither is migrated;
/// they must be at the same schema version).
pub fn verify_stores(a_url: &str, b_url: &str) -> StorageResult<VerifyReport> {
    let a_parsed = DatabaseUrl::parse(a_url)?;
    let a_name = identity(&a_parsed, a_url, "first")?;
    let b_parsed = DatabaseUrl::parse(b_url)?;
    let b_name = identity(&b_parsed, b_url, "second")?;
    let a = open_end(&a_parsed, false)?;
    let b = open_end(&b_parsed, false)?;
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
