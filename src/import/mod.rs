//! Taking in the data Handshake users already have: [`import_handshake`]
//! reads a database written by Handshake's own sqlx storage (SQLite or
//! PostgreSQL, migrations 1 to 9) and fills an empty store of ours with
//! it, on any compiled backend.
//!
//! How an import works:
//! - The source is recognised before a row is read: from
//!   `_sqlx_migrations` (versions, checksums, `success`) and the tables'
//!   columns (`recognise.rs`). Anything but Handshake's nine migrations,
//!   as its builds wrote them, is one `Validation` error naming what was
//!   found.
//! - The source is never written: SQLite is opened `mode=ro` (and
//!   `query_only`), PostgreSQL only in read-only transactions. It is read
//!   in one snapshot.
//! - Each row is converted by the legacy rules (`convert.rs`) and checked
//!   against the limits our store enforces. A row our store cannot hold
//!   stops the import, naming table, key, column and reason; with a
//!   quarantine file it is written there (one JSON line: table, key,
//!   column, reason, every column as found) and the import goes on.
//! - Everything after reading is the copy pipeline (`crate::copy`): pages,
//!   the checkpoint committed with each page (resume), the writers
//!   (binary COPY on PostgreSQL), and the target read back and digested
//!   against the converted source rows.

mod convert;
#[cfg(feature = "testing")]
pub mod fixture;
mod recognise;
mod source;

use std::path::PathBuf;
use std::time::Instant;

use crate::config::DatabaseUrl;
use crate::copy::{copy_id, copy_into, identity, CopyOptions, CopyPlan, CopyReport, ProgressFn};
use crate::error::{StorageError, StorageResult};

pub use recognise::{committed_checksums, crlf_checksum_prefixes};
use source::{legacy_tables, LegacyConn, LegacySource};

/// How [`import_handshake`] runs.
#[derive(Clone)]
pub struct ImportOptions {
    /// Where rows our store cannot hold go (JSON lines); `None`: such a
    /// row stops the import.
    pub quarantine: Option<PathBuf>,
    /// Continue an import that was interrupted or stopped at a bad row.
    pub resume: bool,
    /// Rows per page, read, written and checkpointed together (default
    /// 10,000).
    pub batch_rows: usize,
    /// Progress reports, as [`crate::copy::copy_store`] makes them.
    pub progress: Option<ProgressFn>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            quarantine: None,
            resume: false,
            batch_rows: CopyOptions::default().batch_rows,
            progress: None,
        }
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("quarantine", &self.quarantine)
            .field("resume", &self.resume)
            .field("batch_rows", &self.batch_rows)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// One legacy table of an [`ImportReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableImport {
    /// The table's name (the same in both schemas).
    pub table: String,
    /// Rows in the source.
    pub source_rows: u64,
    /// Rows in the target (earlier runs of a resumed import included).
    pub imported_rows: u64,
    /// Rows written to the quarantine file (earlier runs included).
    pub quarantined_rows: u64,
    /// The target's rows, read back, matched the converted source rows
    /// (count and digest).
    pub verified: bool,
}

/// What [`import_handshake`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportReport {
    /// Per legacy table, in the order imported.
    pub tables: Vec<TableImport>,
    /// What the source's migrations mean for its data, one line each
    /// (e.g. an `ai_jobs` without `is_pinned`, read as unpinned).
    pub notes: Vec<String>,
    /// The quarantine file, if one was given.
    pub quarantine: Option<PathBuf>,
    /// The copy pipeline's report: timings, rows/s, and the verification
    /// of every target table (`ai_job_entity_refs` included).
    pub copy: CopyReport,
}

impl ImportReport {
    /// Every table verified.
    pub fn verified(&self) -> bool {
        self.copy.verify.identical && self.tables.iter().all(|t| t.verified)
    }

    /// Rows set aside in all.
    pub fn quarantined_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.quarantined_rows).sum()
    }
}

/// Imports the Handshake database at `from_url` (a `sqlite://` file or a
/// `postgres://` database written by Handshake's own storage) into the
/// empty store at `to_url` (created and migrated as needed), then verifies
/// every imported row read back against the source row converted
/// independently of the writer. The source is never written.
///
/// Refusals are `Validation` errors: a source that is not Handshake's
/// nine migrations (one line naming what was found), a non-empty target,
/// an unfinished import without `resume` or from another source, a row
/// the store cannot hold (without a quarantine file: naming table, key,
/// column and reason; the target is left as an unfinished import that
/// `resume` continues once the source is mended).
pub fn import_handshake(
    from_url: &str,
    to_url: &str,
    options: &ImportOptions,
) -> StorageResult<ImportReport> {
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
    let source = LegacySource::new(
        LegacyConn::open(&from)?,
        options.quarantine.clone(),
        options.resume,
    )?;
    let mut naming = vec!["handshake-legacy-import".to_string()];
    naming.extend(source.recognised.checksums.iter().cloned());
    let plan = CopyPlan {
        source_name: &source_name,
        copy_id: copy_id(&source_name, &naming),
        version: None,
        command: "import",
    };
    let copy_options = CopyOptions {
        batch_rows: options.batch_rows,
        resume: options.resume,
        progress: options.progress.clone(),
    };
    let copy = copy_into(&source, &plan, (&to, to_url), &copy_options, started)?;
    let counts = source.counts();
    let tables = legacy_tables()
        .map(|table| {
            let verify = copy.verify.tables.iter().find(|t| t.table == table.name());
            TableImport {
                table: table.name().to_string(),
                source_rows: counts.counts.get(&table).copied().unwrap_or(0),
                imported_rows: verify.map_or(0, |v| v.rows_b),
                quarantined_rows: counts.quarantined.get(&table).copied().unwrap_or(0),
                verified: verify.is_some_and(|v| v.matches()),
            }
        })
        .collect();
    Ok(ImportReport {
        tables,
        notes: source.recognised.notes.clone(),
        quarantine: options.quarantine.clone(),
        copy,
    })
}
