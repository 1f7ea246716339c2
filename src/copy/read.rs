//! The reader's half of the pipeline: each table read from where its
//! checkpoint stands, page by page, with the checkpoints to commit with
//! each page and the ranges to read back once it has.

use super::pipeline::{Part, Step};
use super::CopyOptions;
use crate::backend::copy_end::{Checkpoint, Key, Record, Snapshot, SourcePage, Table};
use crate::error::{StorageError, StorageResult};

/// Reads one table from where its checkpoint stands, page by page, and
/// hands each page with its next checkpoints, and the ranges to read back
/// once it commits, to the writer.
pub(super) fn read_table(
    snap: &mut dyn Snapshot,
    table: Table,
    checkpoints: &mut [Checkpoint],
    options: &CopyOptions,
    writer: &std::sync::mpsc::SyncSender<Step>,
    spent: &std::sync::mpsc::Receiver<Vec<Record>>,
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
    // `expected`: rows of this table, and of refs, in the range; `digests`,
    // for a page this run writes, the sums of their source digests.
    let ranges = |after: &Option<Key>,
                  until: &Option<Key>,
                  expected: (u64, u64),
                  digests: Option<(u128, u128)>| {
        let mut parts = vec![Part {
            table,
            after: after.clone(),
            until: until.clone(),
            expected: expected.0,
            source_digest: digests.map(|d| d.0),
            written: None,
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
                source_digest: digests.map(|d| d.1),
                written: None,
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
        send(Step::Verify(ranges(
            &None,
            &start,
            (done, refs_before),
            None,
        )))?;
    }
    // Emptied pages, to hold the next ones.
    let mut spare: Vec<Vec<Record>> = Vec::new();
    while !checkpoints[mine].done {
        // The pages the writer is done with: their rows freed here, where
        // they were allocated, and the vectors kept for the next pages (a
        // page-sized block allocated and freed per page costs the
        // allocator more than the copy of a page; see `checked` in
        // `copy_end`).
        while let Ok(mut done) = spent.try_recv() {
            done.clear();
            if done.capacity() > 0 && spare.len() < 4 {
                spare.push(done);
            }
        }
        let before = checkpoints[mine].last_key.clone();
        let SourcePage {
            records: page,
            last_key,
            exhausted,
        } = snap.source_page_into(
            table,
            before.as_ref(),
            options.batch_rows,
            spare.pop().unwrap_or_default(),
        )?;
        let mut next = vec![checkpoints[mine].clone()];
        next[0].done = exhausted;
        if last_key.is_some() {
            next[0].last_key = last_key;
        }
        if with_refs {
            next.push(checkpoints[refs].clone());
        }
        // With jobs, their refs: digested here for the checkpoint, and
        // written beside the jobs.
        let mut page_refs = if with_refs {
            spare.pop().unwrap_or_default()
        } else {
            Vec::new()
        };
        for record in &page {
            add(&mut next[0], record)?;
            for indexed in record.indexed_refs() {
                add(&mut next[1], &indexed)?;
                page_refs.push(indexed);
            }
        }
        if with_refs {
            next[1].done = next[0].done;
        }
        let written = if next[0].last_key == before {
            Vec::new()
        } else {
            let refs_written = next.get(1).map_or(0, |r| r.rows - checkpoints[refs].rows);
            let page_digest =
                |c: &Checkpoint| c.digest.wrapping_sub(checkpoints[index(c.table)].digest);
            ranges(
                &before,
                &next[0].last_key,
                (page.len() as u64, refs_written),
                Some((page_digest(&next[0]), next.get(1).map_or(0, page_digest))),
            )
        };
        for c in &next {
            checkpoints[index(c.table)] = c.clone();
        }
        send(Step::Page {
            table,
            records: page,
            refs: page_refs,
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
        None,
    )))?;
    let mut tables = vec![(table, checkpoints[mine].rows, checkpoints[mine].rows - done)];
    if with_refs {
        let refs = &checkpoints[refs];
        tables.push((refs.table, refs.rows, refs.rows - refs_before));
    }
    send(Step::End(tables))
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
