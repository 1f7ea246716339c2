//! PostgreSQL's writer for the copier: binary `COPY ... FROM STDIN`
//! (`diesel::copy_from`), inside the caller's transaction. Each value is
//! encoded in PostgreSQL's binary format for its column type.

use diesel::pg::{CopyFormat, PgConnection};
use diesel::{ExecuteCopyFromDsl, RunQueryDsl};

use super::{Cell, Record, Table, WriteRecords};
use crate::backend::fields::write_json;
use crate::backend::from_diesel;
use crate::error::{one_line, StorageError, StorageResult};
use crate::schema::postgres as schema;

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
pub(crate) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A binary COPY stream's header: signature, flags, extension length.
pub(crate) const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Its trailer: a tuple of -1 fields.
pub(crate) const COPY_TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// Bytes encoded before each write to the COPY stream: the server stores
/// one chunk while the next is encoded.
pub(crate) const COPY_CHUNK: usize = 1 << 16;

/// Streams the binary COPY data of `records` to `w`: header, one tuple per
/// record, trailer, a chunk at a time.
fn stream(table: Table, records: &[Record], w: &mut dyn std::io::Write) -> StorageResult<()> {
    // libpq's message for a lost server spans lines.
    let sent = |e: std::io::Error| {
        StorageError::Database(one_line(&format!("COPY into {}: {e}", table.name())))
    };
    let mut out = Vec::with_capacity(2 * COPY_CHUNK);
    out.extend_from_slice(COPY_HEADER);
    for record in records {
        let cells = record.cells()?;
        if cells.len() != table.columns().len() {
            return Err(StorageError::Serialization(format!(
                "a {} row has {} values for {} columns",
                table.name(),
                cells.len(),
                table.columns().len()
            )));
        }
        out.extend_from_slice(&(cells.len() as i16).to_be_bytes());
        for cell in cells {
            field(&mut out, cell)?;
        }
        if out.len() >= COPY_CHUNK {
            w.write_all(&out).map_err(sent)?;
            out.clear();
        }
    }
    out.extend_from_slice(COPY_TRAILER);
    w.write_all(&out).map_err(sent)
}

fn field(out: &mut Vec<u8>, cell: Cell<'_>) -> StorageResult<()> {
    let mut fixed = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    match cell {
        Cell::Null => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Cell::Int(v) => fixed(&v.to_be_bytes()),
        Cell::Float(v) => fixed(&v.to_bits().to_be_bytes()),
        Cell::Bool(v) => fixed(&[u8::from(v)]),
        Cell::Uuid(v) => fixed(v.as_bytes()),
        Cell::Time(v) => fixed(&(v.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes()),
        Cell::Text(v) => variable(out, |buf| {
            buf.extend_from_slice(v.as_bytes());
            Ok(())
        })?,
        Cell::Json(v) => jsonb(out, v)?,
        typed @ Cell::Typed(..) => jsonb(out, typed.json()?.as_ref())?,
    }
    Ok(())
}

fn jsonb(out: &mut Vec<u8>, value: &serde_json::Value) -> StorageResult<()> {
    variable(out, |buf| {
        buf.push(1); // jsonb's binary format version
        write_json(value, buf).map_err(StorageError::from)
    })
}

/// A field whose length is known once written: a length placeholder,
/// the bytes, then the length filled in.
fn variable(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> StorageResult<()>,
) -> StorageResult<()> {
    let at = out.len();
    out.extend_from_slice(&0i32.to_be_bytes());
    write(out)?;
    let len = i32::try_from(out.len() - at - 4).map_err(|_| {
        StorageError::validation("a value is larger than PostgreSQL's 1 GiB field limit")
    })?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The trigger that fills `ai_job_entity_refs` from `ai_jobs.entity_refs`
/// (migration 000003).
pub(crate) const REFS_TRIGGER: &str = "ai_jobs_index_entity_refs";

/// `COPY table FROM STDIN (FORMAT binary)` with the stream `send` writes;
/// the rows the server took.
pub(crate) fn copy_stream(
    conn: &mut PgConnection,
    table: Table,
    send: impl Fn(&mut dyn std::io::Write) -> diesel::QueryResult<()>,
) -> StorageResult<usize> {
    macro_rules! copy {
        ($t:ident) => {
            diesel::copy_from(schema::$t::table)
                .from_raw_data(schema::$t::table, send)
                .with_format(CopyFormat::Binary)
                .execute(conn)
        };
    }
    match table {
        Table::Workspaces => copy!(workspaces),
        Table::Documents => copy!(documents),
        Table::Blocks => copy!(blocks),
        Table::Canvases => copy!(canvases),
        Table::CanvasNodes => copy!(canvas_nodes),
        Table::CanvasEdges => copy!(canvas_edges),
        Table::AiJobs => copy!(ai_jobs),
        Table::AiJobEntityRefs => copy!(ai_job_entity_refs),
        Table::WorkflowRuns => copy!(workflow_runs),
        Table::WorkflowNodeExecutions => copy!(workflow_node_executions),
        Table::KernelEvents => copy!(kernel_events),
        Table::KernelSessionRuns => copy!(kernel_session_runs),
        Table::KernelSessionClaims => copy!(kernel_session_claims),
    }
    .map_err(|e| from_diesel(e, &format!("{} rows", table.name())))
}

/// Binary COPY of `records` into `table`, checking the row count. A row
/// that cannot be encoded ends the COPY with its error (the server then
/// discards what it was sent).
fn copy_into(conn: &mut PgConnection, table: Table, records: &[Record]) -> StorageResult<()> {
    let failure = std::cell::RefCell::new(None);
    let copied = copy_stream(conn, table, |w| {
        stream(table, records, w).map_err(|e| {
            let message = e.to_string();
            *failure.borrow_mut() = Some(e);
            diesel::result::Error::SerializationError(message.into())
        })
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    let written = copied?;
    if written != records.len() {
        return Err(StorageError::Database(format!(
            "COPY into {} wrote {written} rows of {}",
            table.name(),
            records.len()
        )));
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Owner {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    owns: bool,
}

/// Whether this connection's role may disable `ai_jobs`' triggers (it owns
/// the table, as the role that migrated the target does).
fn owns_jobs(conn: &mut PgConnection) -> StorageResult<bool> {
    diesel::sql_query(
        "SELECT pg_has_role(current_user, relowner, 'USAGE') AS owns \
         FROM pg_class WHERE oid = 'ai_jobs'::regclass",
    )
    .get_result::<Owner>(conn)
    .map(|o| o.owns)
    .map_err(|e| from_diesel(e, "ai_jobs owner"))
}

pub(crate) fn execute(conn: &mut PgConnection, sql: &str) -> StorageResult<()> {
    diesel::sql_query(sql)
        .execute(conn)
        .map(drop)
        .map_err(|e| from_diesel(e, sql))
}

impl WriteRecords for PgConnection {
    /// Jobs and their indexed refs: the refs trigger runs a statement per
    /// job, which costs more than the COPY itself, so when this role owns
    /// `ai_jobs` the trigger is disabled inside the caller's transaction
    /// (no other session ever sees it off: DDL is transactional, and the
    /// table stays locked until commit) and the refs the trigger would
    /// have written (position, id, kind per job, `Record::indexed_refs`)
    /// are copied beside the jobs. Otherwise the trigger fills them.
    fn write_records(&mut self, table: Table, records: &[Record]) -> StorageResult<()> {
        if table != Table::AiJobs || !owns_jobs(self)? {
            return copy_into(self, table, records);
        }
        execute(
            self,
            &format!("ALTER TABLE ai_jobs DISABLE TRIGGER {REFS_TRIGGER}"),
        )?;
        copy_into(self, table, records)?;
        let refs: Vec<Record> = records.iter().flat_map(Record::indexed_refs).collect();
        copy_into(self, Table::AiJobEntityRefs, &refs)?;
        execute(
            self,
            &format!("ALTER TABLE ai_jobs ENABLE TRIGGER {REFS_TRIGGER}"),
        )
    }
}
