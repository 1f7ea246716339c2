//! The SQL text of the benchmarks' hand-written baselines, with `?` for
//! each bind parameter: one copy for the raw-SQL baseline over Diesel
//! (`backend/baseline.rs`) and for the sqlx comparison (`bench-sqlx/`,
//! through `handshake_storage::bench::sql`), so that both send exactly the
//! statements described here.

/// A block row's columns, in the order every block statement uses.
pub const BLOCK_COLUMNS: &str = "id, document_id, kind, sequence, raw_content, display_content, \
     derived_content, sensitivity, exportable, created_at, updated_at, last_actor_kind, \
     last_actor_id, last_job_id, last_workflow_id, edit_event_id";
/// How many columns [`BLOCK_COLUMNS`] names.
pub const BLOCK_COLUMN_COUNT: usize = 16;
/// The provenance columns every write sets.
pub const STAMP_COLUMNS: &str =
    "updated_at, last_actor_kind, last_actor_id, last_job_id, last_workflow_id, edit_event_id";

/// `(?, ?, ...)` with `columns` placeholders.
pub fn placeholders(columns: usize) -> String {
    format!("({})", vec!["?"; columns].join(", "))
}

/// A multi-row INSERT of `rows` rows of `columns` values each.
pub fn insert(table: &str, column_list: &str, columns: usize, rows: usize) -> String {
    format!(
        "INSERT INTO {table} ({column_list}) VALUES {}",
        vec![placeholders(columns); rows].join(", ")
    )
}

/// One block's INSERT.
pub fn create_block() -> String {
    insert("blocks", BLOCK_COLUMNS, BLOCK_COLUMN_COUNT, 1)
}

/// One block by id.
pub fn get_block() -> String {
    format!("SELECT {BLOCK_COLUMNS} FROM blocks WHERE id = ?")
}

/// Binds: raw_content, the six stamp values, id.
pub fn update_block() -> String {
    format!(
        "UPDATE blocks SET raw_content = ?, ({STAMP_COLUMNS}) = {} WHERE id = ? \
         RETURNING {BLOCK_COLUMNS}",
        placeholders(6)
    )
}

/// Binds: the six stamp values, the row's id.
pub fn stamp(table: &str) -> String {
    format!(
        "UPDATE {table} SET ({STAMP_COLUMNS}) = {} WHERE id = ?",
        placeholders(6)
    )
}

/// A document's blocks, all of them.
pub fn delete_blocks() -> &'static str {
    "DELETE FROM blocks WHERE document_id = ?"
}

/// A document's blocks in `get_blocks` order.
pub fn get_blocks() -> String {
    format!("SELECT {BLOCK_COLUMNS} FROM blocks WHERE document_id = ? ORDER BY sequence, id")
}
