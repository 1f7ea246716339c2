//! What a copy or a comparison reports: per table, rows and digests on
//! both sides, and the timings of a copy.

/// What [`copy_store`](super::copy_store) did.
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
    /// Of the rows this run wrote, those read back by digest: a
    /// PostgreSQL target hashed each page's rows as it holds them, and the
    /// hash and count were those of the bytes written (the rest of the
    /// target, a SQLite target, and a page whose hash differed, were read
    /// back and compared row by row; see the copy guide).
    pub rows_verified_by_bytes: u64,
    /// The target read back and compared with the source's digests (`a`
    /// is the source as copied, `b` the target).
    pub verify: VerifyReport,
}

/// One table of a [`CopyReport`].
#[derive(Clone, Debug, PartialEq)]
pub struct TableCopy {
    /// The table's name.
    pub table: String,
    /// Rows in the target when the table was done.
    pub rows: u64,
    /// Rows written by this run.
    pub rows_this_run: u64,
    /// Wall time of this run on the table.
    pub seconds: f64,
    /// `rows_this_run / seconds`.
    pub rows_per_sec: f64,
}

/// Two stores compared table by table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Per table, in foreign-key order.
    pub tables: Vec<TableDigest>,
    /// Every table has the same count and digest on both sides.
    pub identical: bool,
}

/// One table on both sides: row counts and the order-independent digest
/// of the rows' decoded domain values (the same on every backend for the
/// same rows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDigest {
    /// The table's name.
    pub table: String,
    /// Rows on the first side (the source, for a copy).
    pub rows_a: u64,
    /// Rows on the second side (the target, for a copy).
    pub rows_b: u64,
    /// Digest of the first side's rows (32 hex digits).
    pub digest_a: String,
    /// Digest of the second side's rows (32 hex digits).
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
    pub(super) fn new(tables: Vec<TableDigest>) -> Self {
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

pub(super) fn hex(digest: u128) -> String {
    format!("{digest:032x}")
}

pub(super) fn per_sec(rows: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        rows as f64 / seconds
    } else {
        0.0
    }
}
