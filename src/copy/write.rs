//! The writer's half of the pipeline: each page committed with its
//! checkpoints, then handed to the verifiers; progress and per-table
//! timings.

use std::time::Instant;

use super::pipeline::{Failure, Part, Step};
use super::report::per_sec;
use super::{CopyOptions, CopyProgress, TableCopy};
use crate::backend::copy_end::{CopyEnd, Record, Table};
use crate::error::{StorageError, StorageResult};

/// The writer's half of [`pipeline`](super::pipeline::pipeline): commits each page with its
/// checkpoints, then hands its ranges to the verifiers; reports progress,
/// and times each table.
pub(super) fn write_steps(
    target: &dyn CopyEnd,
    steps: std::sync::mpsc::Receiver<Step>,
    options: &CopyOptions,
    verifiers: std::sync::mpsc::Sender<Part>,
    spent: std::sync::mpsc::Sender<Vec<Record>>,
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
                refs,
                next,
                written,
            } => {
                let bytes = target.write_batch(table, &records, &refs, &next)?;
                let written = written
                    .into_iter()
                    .map(|mut part| {
                        part.written = bytes
                            .iter()
                            .find(|w| w.table == part.table && w.rows == part.expected)
                            .map(|w| w.bytes);
                        part
                    })
                    .collect();
                verify(written)?;
                // To the reader, to be freed (or here, if it has gone).
                let _ = spent.send(records);
                let _ = spent.send(refs);
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
