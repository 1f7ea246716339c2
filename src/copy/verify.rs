//! Reading the target back: the verifiers that trail the writer, the
//! final count, the comparison with what was read from the source, and
//! the table-by-table walk of `verify_stores`.

use super::pipeline::{Failure, Part};
use super::report::hex;
use super::{TableDigest, VerifyReport};
use crate::backend::copy_end::{Checkpoint, CopyEnd, Key, Record, Snapshot, Table};
use crate::error::StorageResult;

/// What a verifier read back: per table, rows and the sum of their
/// digests; and of those rows, how many matched the bytes written.
#[derive(Default)]
pub(super) struct Found {
    pub(super) tables: Vec<(Table, u64, u128)>,
    pub(super) by_bytes: u64,
}

/// A verifier: takes committed ranges off the queue until it closes (or
/// the copy fails), reads each back in a read transaction and sums rows
/// and digests per table.
///
/// A range this run wrote, whose writer knew the bytes of its rows as the
/// target sends them back (PostgreSQL), is first compared by digest: the
/// target hashes the range's rows itself and sends only the count and the
/// digest. If both are the writer's, the target holds exactly the rows
/// written, and the range counts with its source rows' digests. Any other
/// range, and one whose digest differs, is read back row by row, each row
/// decoded and digested as the source's were.
pub(super) fn verify_parts(
    target: &dyn CopyEnd,
    parts: &std::sync::Mutex<std::sync::mpsc::Receiver<Part>>,
    failure: &Failure,
) -> Option<Found> {
    let mut found = Found::default();
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
            if let (Some(written), Some(source)) = (part.written, part.source_digest) {
                let held =
                    snap.written_digest(part.table, part.after.as_ref(), part.until.as_ref())?;
                if held == Some((part.expected, written)) {
                    rows_digest = (part.expected, source);
                    found.by_bytes += part.expected;
                    return Ok(());
                }
            }
            let mut pages = Pager::range(part.table, part.after.clone(), part.until.clone())
                .expecting(part.expected);
            rows_digest = pages.digest(snap)?;
            Ok(())
        }))?;
        match found.tables.iter_mut().find(|(t, _, _)| *t == part.table) {
            Some((_, rows, digest)) => {
                *rows += rows_digest.0;
                *digest = digest.wrapping_add(rows_digest.1);
            }
            None => found
                .tables
                .push((part.table, rows_digest.0, rows_digest.1)),
        }
    }
    Some(found)
}

/// Every table's rows in one snapshot of the target, once the verifiers
/// are done: a row another session inserted or deleted in a range after
/// it was read back shows here.
pub(super) fn count_tables(target: &dyn CopyEnd) -> StorageResult<Vec<(Table, u64)>> {
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
pub(super) fn compare_found(
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

/// Rows read per page when verifying.
const VERIFY_PAGE_ROWS: usize = 2_000;

/// One table of both snapshots, walked together in key order.
pub(super) fn compare_table(
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
