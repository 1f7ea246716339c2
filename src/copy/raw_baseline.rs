//! The copy benchmark's floor (feature `bench`): the same rows moved from a
//! SQLite file into PostgreSQL the raw way, with nothing of the copier's
//! work on top. Each table is read with one SQLite statement through the C
//! API (`libsqlite3-sys`, key order, as the copier reads it) and streamed
//! as one binary `COPY ... FROM STDIN` per table, every value converted
//! straight from SQLite's storage to PostgreSQL's binary format for the
//! column's type. No domain decoding, no checks, no digests, no
//! checkpoints, no verification; one transaction; the refs trigger off and
//! `ai_job_entity_refs` copied as stored; secondary indexes dropped first
//! and built after the rows, as the copier does.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use libsqlite3_sys as ffi;
use std::ffi::{c_int, CStr, CString};
use std::path::Path;
use std::ptr;

use crate::backend::copy_end::pg_write::{
    copy_stream, execute, COPY_CHUNK, COPY_HEADER, COPY_TRAILER, PG_EPOCH_MICROS, REFS_TRIGGER,
};
use crate::backend::copy_end::{drop_index_sql, secondary_indexes_sql, Table};
use crate::backend::from_diesel;
use crate::error::{StorageError, StorageResult};

/// A read-only SQLite connection.
struct Db(*mut ffi::sqlite3);

impl Drop for Db {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `sqlite3_open_v2` and every statement
        // on it was finalized first (a `Stmt` borrows its `Db`).
        unsafe { ffi::sqlite3_close(self.0) };
    }
}

impl Db {
    fn open(path: &Path) -> StorageResult<Db> {
        #[cfg(unix)]
        let name = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
        #[cfg(not(unix))]
        let name = CString::new(path.to_string_lossy().as_bytes());
        let name = name.map_err(|_| StorageError::validation("a SQLite path with a NUL byte"))?;
        let mut db = ptr::null_mut();
        // SAFETY: a valid C string and an out pointer; the handle is closed
        // by `Db` even when opening failed (SQLite's contract).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                name.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READONLY,
                ptr::null(),
            )
        };
        let db = Db(db);
        if rc != ffi::SQLITE_OK {
            return Err(db.error("open"));
        }
        Ok(db)
    }

    fn error(&self, what: &str) -> StorageError {
        // SAFETY: `sqlite3_errmsg` returns a NUL-terminated string owned by
        // the connection, copied before any other call.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.0)) };
        StorageError::Database(format!("SQLite {what}: {}", message.to_string_lossy()))
    }

    fn prepare(&self, sql: &str) -> StorageResult<Stmt<'_>> {
        let sql = CString::new(sql).map_err(|_| StorageError::validation("SQL with a NUL"))?;
        let mut stmt = ptr::null_mut();
        // SAFETY: valid connection, C string and out pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(self.0, sql.as_ptr(), -1, &mut stmt, ptr::null_mut())
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error("prepare"));
        }
        Ok(Stmt { db: self, stmt })
    }
}

/// A prepared statement, stepped row by row.
struct Stmt<'db> {
    db: &'db Db,
    stmt: *mut ffi::sqlite3_stmt,
}

impl Drop for Stmt<'_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` came from `sqlite3_prepare_v2` on a live `Db`.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

/// A column value as SQLite stores it.
enum Stored<'row> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'row [u8]),
}

impl Stmt<'_> {
    /// Moves to the next row; `false` at the end.
    fn step(&mut self) -> StorageResult<bool> {
        // SAFETY: a live statement.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(self.db.error("step")),
        }
    }

    /// Column `i` of the current row, valid until the next step.
    fn column(&self, i: c_int) -> Stored<'_> {
        // SAFETY: the statement is on a row (`step` returned true) and `i`
        // is below its column count; the text pointer stays valid until the
        // next step, which needs `&mut self`.
        unsafe {
            match ffi::sqlite3_column_type(self.stmt, i) {
                ffi::SQLITE_NULL => Stored::Null,
                ffi::SQLITE_INTEGER => Stored::Int(ffi::sqlite3_column_int64(self.stmt, i)),
                ffi::SQLITE_FLOAT => Stored::Float(ffi::sqlite3_column_double(self.stmt, i)),
                _ => {
                    let text = ffi::sqlite3_column_text(self.stmt, i);
                    let len = ffi::sqlite3_column_bytes(self.stmt, i);
                    if text.is_null() {
                        Stored::Text(&[])
                    } else {
                        Stored::Text(std::slice::from_raw_parts(text, len as usize))
                    }
                }
            }
        }
    }
}

/// A target column's type, as the binary format needs it.
#[derive(Clone, Copy)]
enum PgType {
    Uuid,
    Time,
    Jsonb,
    Bool,
    Float,
    Int,
    Text,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
}

#[derive(QueryableByName)]
struct Index {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    definition: String,
}

/// The target's type of each of `table`'s copied columns, in order.
fn column_types(conn: &mut PgConnection, table: Table) -> StorageResult<Vec<PgType>> {
    let found: Vec<Column> = diesel::sql_query(
        "SELECT column_name::text AS column_name, data_type::text AS data_type \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(table.name())
    .load(conn)
    .map_err(|e| from_diesel(e, "column types"))?;
    table
        .columns()
        .iter()
        .map(|name| {
            let column = found
                .iter()
                .find(|c| c.column_name == *name)
                .ok_or_else(|| {
                    StorageError::Database(format!("{}.{name} is not in the target", table.name()))
                })?;
            Ok(match column.data_type.as_str() {
                "uuid" => PgType::Uuid,
                "timestamp with time zone" => PgType::Time,
                "jsonb" => PgType::Jsonb,
                "boolean" => PgType::Bool,
                "double precision" => PgType::Float,
                "bigint" | "integer" => PgType::Int,
                _ => PgType::Text,
            })
        })
        .collect()
}

/// Microseconds since 2000-01-01 of a timestamp as SQLite stores it.
fn pg_micros(text: &[u8]) -> Result<i64, String> {
    let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
    crate::backend::fields::parse_sqlite_time(text)
        .map(|at| at.timestamp_micros() - PG_EPOCH_MICROS)
}

/// Appends one field in PostgreSQL's binary format.
fn put(out: &mut Vec<u8>, ty: PgType, value: Stored<'_>) -> Result<(), String> {
    let mut fixed = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    match (ty, value) {
        (_, Stored::Null) => out.extend_from_slice(&(-1i32).to_be_bytes()),
        (PgType::Int, Stored::Int(v)) => fixed(&v.to_be_bytes()),
        (PgType::Bool, Stored::Int(v)) => fixed(&[u8::from(v != 0)]),
        (PgType::Float, Stored::Float(v)) => fixed(&v.to_bits().to_be_bytes()),
        (PgType::Float, Stored::Int(v)) => fixed(&(v as f64).to_bits().to_be_bytes()),
        (PgType::Uuid, Stored::Text(t)) => {
            let id = uuid::Uuid::try_parse_ascii(t).map_err(|e| e.to_string())?;
            fixed(id.as_bytes())
        }
        (PgType::Time, Stored::Text(t)) => fixed(&pg_micros(t)?.to_be_bytes()),
        (PgType::Jsonb, Stored::Text(t)) => {
            out.extend_from_slice(&(t.len() as i32 + 1).to_be_bytes());
            out.push(1);
            out.extend_from_slice(t);
        }
        (PgType::Text, Stored::Text(t)) => fixed(t),
        _ => return Err("a value of another type than its column".into()),
    }
    Ok(())
}

/// Copies every table of the SQLite file at `sqlite_file` into the migrated,
/// empty PostgreSQL database at `postgres_url`; the rows copied.
pub fn raw_copy(sqlite_file: &Path, postgres_url: &str) -> StorageResult<u64> {
    let db = Db::open(sqlite_file)?;
    let mut rows = 0u64;
    crate::backend::raw_write(postgres_url, |conn| {
        execute(
            conn,
            &format!("ALTER TABLE ai_jobs DISABLE TRIGGER {REFS_TRIGGER}"),
        )?;
        let indexes: Vec<Index> =
            diesel::sql_query(secondary_indexes_sql(crate::Backend::Postgres))
                .load(conn)
                .map_err(|e| from_diesel(e, "secondary indexes"))?;
        for index in &indexes {
            execute(conn, &drop_index_sql(&index.name))?;
        }
        for table in Table::ALL {
            let types = column_types(conn, table)?;
            let key = match table {
                Table::AiJobEntityRefs => "job_id, position",
                Table::KernelEvents => "event_sequence",
                Table::KernelSessionRuns => "session_run_id",
                Table::KernelSessionClaims => "session_run_id, attempt",
                _ => "id",
            };
            let stmt = std::cell::RefCell::new(db.prepare(&format!(
                "SELECT {} FROM {} ORDER BY {key}",
                table.columns().join(", "),
                table.name()
            ))?);
            let failure = std::cell::RefCell::new(None);
            let copied = copy_stream(conn, table, |w| {
                let mut out = Vec::with_capacity(2 * COPY_CHUNK);
                out.extend_from_slice(COPY_HEADER);
                let fields = (types.len() as i16).to_be_bytes();
                let mut stmt = stmt.borrow_mut();
                let mut stream = || -> Result<(), String> {
                    while stmt.step().map_err(|e| e.to_string())? {
                        out.extend_from_slice(&fields);
                        for (i, ty) in types.iter().enumerate() {
                            put(&mut out, *ty, stmt.column(i as c_int))?;
                        }
                        if out.len() >= COPY_CHUNK {
                            w.write_all(&out).map_err(|e| e.to_string())?;
                            out.clear();
                        }
                    }
                    out.extend_from_slice(COPY_TRAILER);
                    w.write_all(&out).map_err(|e| e.to_string())
                };
                stream().map_err(|e| {
                    *failure.borrow_mut() = Some(e.clone());
                    diesel::result::Error::SerializationError(e.into())
                })
            })?;
            if let Some(e) = failure.into_inner() {
                return Err(StorageError::Database(format!("{}: {e}", table.name())));
            }
            rows += copied as u64;
        }
        for index in &indexes {
            execute(conn, &index.definition)?;
        }
        execute(
            conn,
            &format!("ALTER TABLE ai_jobs ENABLE TRIGGER {REFS_TRIGGER}"),
        )
    })?;
    Ok(rows)
}
