//! What a store provides to `crate::copy`: the reads of one snapshot, the
//! page writes with their checkpoint, the checkpoint table, the indexes
//! dropped and built again, and the locks against a second copy; and the
//! copier's view of a row (`record.rs`), which the store reads pages into
//! and writes from. It lives here, below the copier, so that `backend/`
//! imports nothing from the layers above it; the copy itself (planning,
//! the pipeline, verification) is `crate::copy`.
//!
//! - `per_backend.rs`: the per-backend half (reading pages with the
//!   store's own row types, the checkpoint and index tables, the
//!   PostgreSQL advisory lock), included at the end of `backend/store.rs`
//!   (`include!`), so it is compiled once per backend like the rest of
//!   that file.
//! - `sqlite_write.rs`, `pg_write.rs`: [`WriteRecords`] per connection
//!   type (multi-row INSERTs; binary `COPY FROM STDIN`).
//! - `lock.rs`: the SQLite file lock against a second copy.

#[cfg(feature = "sqlite")]
mod lock;
#[cfg(feature = "postgres")]
pub(crate) mod pg_write;
mod record;
#[cfg(feature = "sqlite")]
mod sqlite_write;

#[cfg(feature = "sqlite")]
pub(crate) use lock::lock_sqlite_target;
#[cfg_attr(not(feature = "postgres"), allow(unused_imports))]
pub(crate) use record::Cell;
pub(crate) use record::{at_row, IndexedRef, Key, Record, Table};

use crate::error::StorageResult;
use crate::storage::Storage;

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
    /// The rows of `table` after `after` up to and including `until`, and
    /// the SHA-256 of their bytes as [`Written`] has it, computed by the
    /// store itself, with no row sent or decoded; `None` where the backend
    /// cannot (SQLite).
    fn written_digest(
        &mut self,
        _table: Table,
        _after: Option<&Key>,
        _until: Option<&Key>,
    ) -> StorageResult<Option<(u64, [u8; 32])>> {
        Ok(None)
    }
    /// What a copy reads from a source: a page of up to `limit` source
    /// rows after `after`. A source that sets rows aside (an import's
    /// quarantine) returns fewer records than rows read, so the page says
    /// where it ended and whether the table is exhausted.
    fn source_page(
        &mut self,
        table: Table,
        after: Option<&Key>,
        limit: usize,
    ) -> StorageResult<SourcePage> {
        let records = self.page(table, after, limit)?;
        Ok(SourcePage::of(records, limit))
    }
    /// [`source_page`](Snapshot::source_page), with `buffer` (a page the
    /// copy has done with) to hold the records where the source can reuse
    /// it.
    fn source_page_into(
        &mut self,
        table: Table,
        after: Option<&Key>,
        limit: usize,
        buffer: Vec<Record>,
    ) -> StorageResult<SourcePage> {
        drop(buffer);
        self.source_page(table, after, limit)
    }
}

/// Runs `f` with this thread's scratch buffer, emptied: for the bytes a
/// row is encoded into on its way elsewhere (a digest, a COPY field), so
/// a copy does not allocate and free a buffer per row. A buffer grown
/// past 64 KiB (a large row) is let go afterwards rather than kept.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    // Taken out while `f` runs, so a nested call gets a buffer of its own.
    let mut buffer = SCRATCH.with_borrow_mut(std::mem::take);
    buffer.clear();
    let result = f(&mut buffer);
    if buffer.capacity() <= 64 << 10 {
        SCRATCH.with_borrow_mut(|kept| *kept = buffer);
    }
    result
}

impl SourcePage {
    /// A page of a store's own rows: `records`, read with `limit`.
    pub(crate) fn of(records: Vec<Record>, limit: usize) -> SourcePage {
        SourcePage {
            last_key: records.last().map(Record::key),
            exhausted: records.len() < limit,
            records,
        }
    }
}

/// A page as a source hands it to a copy.
pub(crate) struct SourcePage {
    /// The rows to write, in key order.
    pub records: Vec<Record>,
    /// The last key read (written or not); the next page starts after it.
    pub last_key: Option<Key>,
    /// No rows after this page.
    pub exhausted: bool,
}

/// A store as a copy's source or target.
pub(crate) trait CopyEnd: Storage {
    /// Runs `f` on one read snapshot.
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&mut dyn Snapshot) -> StorageResult<()>,
    ) -> StorageResult<()>;
    /// Writes `records` into `table` and updates `progress` in the
    /// checkpoint, in one transaction; what was written, where the
    /// backend can tell its bytes (see [`WriteRecords`]). `refs`: with
    /// jobs, their indexed refs (`Record::indexed_refs`), which the reader
    /// built already.
    fn write_batch(
        &self,
        table: Table,
        records: &[Record],
        refs: &[Record],
        progress: &[Checkpoint],
    ) -> StorageResult<Vec<Written>>;
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
    /// Threads that read this target back while the copy runs (at most
    /// `copy::pipeline::VERIFIERS`): one where written pages are checked
    /// by bytes (PostgreSQL: the server hashes a page in less time than it
    /// took to store it, so one thread keeps up, and a second only takes
    /// CPU from the writer's server process); two where rows are read back
    /// and decoded on this side (SQLite).
    fn verifiers(&self) -> usize;
}

/// Inserts decoded rows, each backend its fastest way.
pub(crate) trait WriteRecords {
    /// Inserts `records` into `table` (jobs: and their indexed refs, on
    /// PostgreSQL: `refs` when the caller has them, else built here). With
    /// `digest`, says what it wrote per table where the backend can tell
    /// the target's bytes ahead (PostgreSQL; see [`Written`]); otherwise,
    /// and on SQLite, nothing.
    fn write_records(
        &mut self,
        table: Table,
        records: &[Record],
        refs: Option<&[Record]>,
        digest: bool,
    ) -> StorageResult<Vec<Written>>;
}

/// Rows a writer put into one table, and the SHA-256 of the bytes the
/// target will send back for them (`Snapshot::written_digest`), in key
/// order: a range read back whose digest and count are these holds
/// exactly the rows written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    pub table: Table,
    pub rows: u64,
    pub bytes: [u8; 32],
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

/// What the verifier asks the target for one range of `table`'s keys: the
/// rows, and the SHA-256 of their `record_send` bytes in key order (see
/// `pg_write::RowBytes`); PostgreSQL only. Binds: the key values after
/// which the range starts, then those it ends at (`Key::column_values`),
/// each present or not.
pub(crate) fn written_digest_sql(table: Table, after: bool, until: bool) -> String {
    let columns = table.key_columns();
    let names = columns
        .iter()
        .map(|(name, _)| format!("t.{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut param = 0;
    let mut bound = |op: &str| {
        let values = columns
            .iter()
            .map(|(_, kind)| {
                param += 1;
                format!("${param}::{kind}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!("({names}) {op} ({values})")
    };
    let mut filters = Vec::new();
    if after {
        filters.push(bound(">"));
    }
    if until {
        filters.push(bound("<="));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    // The rows come in key order from the subquery and are aggregated in
    // that order (an `ORDER BY` inside `string_agg` would sort the rows'
    // bytes again); were they ever not, the digest would differ and the
    // range be read back row by row: slower, never wrong.
    format!(
        "SELECT count(*)::int8 AS rows, \
         sha256(coalesce(string_agg(record_send(s.t), ''::bytea), ''::bytea)) AS digest \
         FROM (SELECT t FROM {} t{filter} ORDER BY {names}) s",
        table.name()
    )
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
