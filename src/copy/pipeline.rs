//! The copy's threads: the reader on the calling thread (`read.rs`), the
//! writer (`write.rs`) a page behind it, and the verifiers (`verify.rs`)
//! trailing the writer; what they hand each other, and how the first
//! failure of any of them stops the rest.

use std::time::Instant;

use super::read::read_table;
use super::verify::{count_tables, verify_parts, Found};
use super::write::write_steps;
use super::{CopyOptions, Source, TableCopy};
use crate::backend::copy_end::{Checkpoint, CopyEnd, Key, Record, Table};
use crate::error::{StorageError, StorageResult};

/// What the reader hands the writer.
pub(super) enum Step {
    /// A table starts: rows already in the target, rows in all.
    Begin { table: Table, done: u64, total: u64 },
    /// A page, and the checkpoints to commit with it (the table's; with
    /// jobs, the refs' too).
    Page {
        table: Table,
        records: Vec<Record>,
        /// With jobs, their indexed refs.
        refs: Vec<Record>,
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

/// Threads reading the target back while the copy runs, at most (the
/// target says how many: `CopyEnd::verifiers`).
pub(super) const VERIFIERS: usize = 2;

/// A range of one table's keys to read back: after `after` (from the
/// first) up to and including `until` (to the last), holding `expected`
/// rows if the target is what the copy wrote.
pub(super) struct Part {
    pub(super) table: Table,
    pub(super) after: Option<Key>,
    pub(super) until: Option<Key>,
    pub(super) expected: u64,
    /// A range this run writes: the sum of its source rows' digests.
    pub(super) source_digest: Option<u128>,
    /// Once written, the digest of the bytes written, when the target
    /// can compute the same over what it holds (see `verify_parts`).
    pub(super) written: Option<[u8; 32]>,
}

/// The first failure of any of the pipeline's threads, which is the cause:
/// the others stop when they see it (the reader when the writer has gone,
/// the writer and the verifiers at their next step) with errors that only
/// say so.
#[derive(Default)]
pub(super) struct Failure {
    stopped: std::sync::atomic::AtomicBool,
    first: std::sync::Mutex<Option<StorageError>>,
}

impl Failure {
    pub(super) fn fail<T>(&self, result: StorageResult<T>) -> Option<T> {
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

    pub(super) fn stopped(&self) -> bool {
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
pub(super) struct Copied {
    pub(super) tables: Vec<TableCopy>,
    pub(super) found: Vec<(Table, u64, u128)>,
    /// Of the rows read back, those that matched the bytes written.
    pub(super) by_bytes: u64,
    /// Per table, its rows at the end, counted in one snapshot.
    pub(super) counts: Vec<(Table, u64)>,
    /// From the last page's commit to the end of verification (the
    /// indexes built again meanwhile).
    pub(super) finish_seconds: f64,
}

/// Reads the source on this thread and writes the target on another, so
/// decoding, checking and digesting a page overlaps with the target
/// storing the previous one; one or two more threads (as the target
/// says) read each committed page
/// back from the target (in their own read transactions) and digest it,
/// trailing the writer, so verification runs while the copy does. Pages
/// are committed in order; `checkpoints` ends as the last committed state.
///
/// The ranges read back tile every table's keys (the rows earlier runs
/// committed, each page, and everything after the last key), so what the
/// verifiers sum is the whole target table: a row that is missing, extra
/// or different shows in its count or digest.
pub(super) fn pipeline(
    source: &dyn Source,
    target: &dyn CopyEnd,
    checkpoints: &mut [Checkpoint],
    options: &CopyOptions,
) -> StorageResult<Copied> {
    let (to_writer, steps) = std::sync::mpsc::sync_channel::<Step>(PAGES_AHEAD);
    let (to_verifiers, parts) = std::sync::mpsc::channel::<Part>();
    // Written pages go back to the reader, which allocated their rows, to
    // be freed there: off the writer's path (the copy's slowest), and
    // with the allocator's bookkeeping on the thread that owns it.
    let (to_reader, spent) = std::sync::mpsc::channel::<Vec<Record>>();
    let parts = std::sync::Mutex::new(parts);
    let failure = Failure::default();
    fn panicked<T>(what: &str) -> StorageResult<T> {
        Err(StorageError::Database(format!(
            "the copy's {what} panicked"
        )))
    }
    let mut finishing = Instant::now();
    let found = std::thread::scope(|scope| {
        let verifiers: Vec<_> = (0..target.verifiers().clamp(1, VERIFIERS))
            .map(|_| scope.spawn(|| verify_parts(target, &parts, &failure)))
            .collect();
        // Each thread records its failure as it happens, so the others
        // stop at their next step.
        let writer = scope.spawn(|| {
            failure.fail(write_steps(
                target,
                steps,
                options,
                to_verifiers,
                to_reader,
                &failure,
            ))
        });
        let read = source.snapshot(&mut |snap| {
            for table in Table::ALL.into_iter().filter(|t| t.written()) {
                read_table(snap, table, checkpoints, options, &to_writer, &spent)?;
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
        let mut found = Found::default();
        for verifier in verifiers {
            let sums = verifier
                .join()
                .unwrap_or_else(|_| failure.fail(panicked("verifying thread")))
                .unwrap_or_default();
            found.tables.extend(sums.tables);
            found.by_bytes += sums.by_bytes;
        }
        tables.map(|tables| (tables, found, counts))
    });
    failure.check()?;
    let (tables, found, counts) =
        found.ok_or_else(|| StorageError::Database("the copy stopped".into()))?;
    Ok(Copied {
        tables,
        found: found.tables,
        by_bytes: found.by_bytes,
        counts,
        finish_seconds: finishing.elapsed().as_secs_f64(),
    })
}
