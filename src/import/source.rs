//! The legacy database as a source of the copy pipeline: a connection that
//! never writes (SQLite opened `mode=ro`, PostgreSQL in read-only
//! transactions), one snapshot for the whole read, every table selected
//! so that both backends hand over the same text, each row converted
//! (`convert.rs`) and checked against our limits, and the rows our store
//! cannot hold either stopping the import or set aside in the quarantine
//! file.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Binary, Double, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};

use crate::backend::copy_end::{Checkpoint, Key, Record, Snapshot, SourcePage, Table};
use crate::config::DatabaseUrl;
use crate::copy::Source;
use crate::error::{StorageError, StorageResult};
use crate::types::Backend;

use super::convert::{self, column_kind, columns, parents, BadCell, ColumnKind, LegacyRow};
use super::recognise::{recognise, Applied, Recognised};

/// The widest legacy table (`ai_jobs`) has this many columns.
const TEXT_CELLS: usize = 20;

/// The tables an import reads, in foreign-key order.
pub(crate) fn legacy_tables() -> impl Iterator<Item = Table> {
    Table::ALL.into_iter().filter(|t| t.in_legacy())
}

/// A table of this store that Handshake's legacy database does not have
/// at all (the kernel's): an import reads it as empty.
fn is_new_here(table: Table) -> bool {
    !table.in_legacy() && table != Table::AiJobEntityRefs
}

/// A connection to the legacy database.
pub(crate) enum LegacyConn {
    #[cfg(feature = "sqlite")]
    Sqlite(diesel::SqliteConnection),
    #[cfg(feature = "postgres")]
    Postgres(diesel::PgConnection),
}

/// Runs `$body` with `$c` bound to the backend's connection.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            #[cfg(feature = "sqlite")]
            LegacyConn::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            LegacyConn::Postgres($c) => $body,
        }
    };
}

/// Every legacy row, selected as text (`t0`..), the positions also as
/// numbers, SQLite's rowid (for rows whose id is NULL) and the first
/// foreign-key column whose parent the source lacks.
#[derive(QueryableByName)]
struct RawRow {
    #[diesel(sql_type = Nullable<Binary>)]
    t0: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t1: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t2: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t3: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t4: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t5: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t6: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t7: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t8: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t9: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t10: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t11: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t12: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t13: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t14: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t15: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t16: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t17: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t18: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    t19: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Double>)]
    f0: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    f1: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    rk: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    missing: Option<String>,
}

/// A [`RawRow`] taken apart.
struct RowParts {
    /// The table's columns as text, in [`columns`] order (then padding).
    text: Vec<Option<String>>,
    floats: [Option<f64>; 2],
    /// SQLite's rowid.
    rowid: Option<String>,
    /// The first foreign-key column whose parent the source lacks.
    missing: Option<String>,
    /// The first column whose text is not valid UTF-8 (SQLite; `text`
    /// then shows U+FFFD in place of the bad bytes).
    not_utf8: Option<usize>,
}

impl RawRow {
    fn into_parts(self) -> RowParts {
        let cells = [
            self.t0, self.t1, self.t2, self.t3, self.t4, self.t5, self.t6, self.t7, self.t8,
            self.t9, self.t10, self.t11, self.t12, self.t13, self.t14, self.t15, self.t16,
            self.t17, self.t18, self.t19,
        ];
        let mut not_utf8 = None;
        let text = cells
            .into_iter()
            .enumerate()
            .map(|(i, cell)| {
                cell.map(|bytes| {
                    String::from_utf8(bytes).unwrap_or_else(|e| {
                        not_utf8.get_or_insert(i);
                        String::from_utf8_lossy(e.as_bytes()).into_owned()
                    })
                })
            })
            .collect();
        RowParts {
            text,
            floats: [self.f0, self.f1],
            rowid: self.rk,
            missing: self.missing,
            not_utf8,
        }
    }
}

#[derive(QueryableByName)]
struct MigrationRow {
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = BigInt)]
    ok: i64,
    #[diesel(sql_type = Binary)]
    checksum: Vec<u8>,
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    t: String,
    #[diesel(sql_type = Text)]
    c: String,
}

#[cfg(feature = "postgres")]
#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    t: String,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn db_err(what: &str) -> impl Fn(diesel::result::Error) -> StorageError + '_ {
    move |e| StorageError::Database(format!("reading the legacy {what}: {e}"))
}

/// A SQLite path as a read-only URI filename (`%`, `?` and `#` escaped).
#[cfg(feature = "sqlite")]
fn read_only_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for ch in path.display().to_string().chars() {
        match ch {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=ro");
    uri
}

impl LegacyConn {
    /// Opens the database a URL names, so that nothing it runs can write.
    pub(crate) fn open(url: &DatabaseUrl) -> StorageResult<Self> {
        match url {
            #[cfg(feature = "sqlite")]
            DatabaseUrl::SqliteFile(path) => {
                use diesel::Connection;
                if !path.is_file() {
                    return Err(StorageError::validation(format!(
                        "the source SQLite file {} does not exist",
                        path.display()
                    )));
                }
                let mut conn =
                    diesel::SqliteConnection::establish(&read_only_uri(path)).map_err(|e| {
                        StorageError::Database(format!(
                            "cannot open {} read-only: {e}",
                            path.display()
                        ))
                    })?;
                conn.batch_execute("PRAGMA query_only = 1; PRAGMA busy_timeout = 30000;")
                    .map_err(db_err("connection settings"))?;
                Ok(LegacyConn::Sqlite(conn))
            }
            #[cfg(feature = "postgres")]
            DatabaseUrl::Postgres(pg) => {
                let mut conn = crate::backend::connect_postgres(pg)?;
                conn.batch_execute(
                    "SET default_transaction_read_only = on; SET TimeZone = 'UTC'; \
                     SET DateStyle = 'ISO, MDY'; SET standard_conforming_strings = on",
                )
                .map_err(db_err("connection settings"))?;
                Ok(LegacyConn::Postgres(conn))
            }
            DatabaseUrl::SqliteMemory => Err(StorageError::validation(
                "the source is an in-memory SQLite database: import from a file",
            )),
            #[allow(unreachable_patterns)]
            other => Err(StorageError::Validation(format!(
                "this build has no `{}` backend: rebuild with `--features {}` to import from it",
                other.feature(),
                other.feature()
            ))),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "sqlite")]
            LegacyConn::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            LegacyConn::Postgres(_) => Backend::Postgres,
        }
    }

    fn execute(&mut self, sql: &str) -> StorageResult<()> {
        on_conn!(self, c => c.batch_execute(sql).map_err(db_err("database")))
    }

    /// Runs `f` in one read transaction: one snapshot of the source.
    fn read_tx<T>(&mut self, f: impl FnOnce(&mut Self) -> StorageResult<T>) -> StorageResult<T> {
        self.execute(match self.backend() {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        })?;
        let result = f(self);
        let end = self.execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
        let value = result?;
        end.map(|()| value)
    }

    fn tables(&mut self) -> StorageResult<Vec<String>> {
        let sql = match self.backend() {
            Backend::Sqlite => "SELECT name AS t, '' AS c FROM sqlite_master WHERE type = 'table'",
            Backend::Postgres => {
                "SELECT table_name::text AS t, '' AS c FROM information_schema.tables \
                 WHERE table_schema = current_schema()"
            }
        };
        let rows: Vec<ColumnRow> =
            on_conn!(self, c => diesel::sql_query(sql).load(c).map_err(db_err("tables"))?);
        Ok(rows.into_iter().map(|r| r.t).collect())
    }

    fn columns(&mut self) -> StorageResult<Vec<(String, String)>> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table'"
            }
            Backend::Postgres => {
                "SELECT table_name::text AS t, column_name::text AS c \
                 FROM information_schema.columns WHERE table_schema = current_schema()"
            }
        };
        let rows: Vec<ColumnRow> =
            on_conn!(self, c => diesel::sql_query(sql).load(c).map_err(db_err("columns"))?);
        Ok(rows.into_iter().map(|r| (r.t, r.c)).collect())
    }

    /// Reads `_sqlx_migrations` and the columns, and decides what the
    /// source is.
    pub(crate) fn recognise(&mut self) -> StorageResult<Recognised> {
        let tables = self.tables()?;
        let applied = if tables.iter().any(|t| t == "_sqlx_migrations") {
            let sql = "SELECT version, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT) AS ok, \
                       checksum FROM _sqlx_migrations ORDER BY version";
            let rows: Vec<MigrationRow> = on_conn!(self, c => diesel::sql_query(sql)
                .load(c)
                .map_err(db_err("_sqlx_migrations"))?);
            Some(
                rows.into_iter()
                    .map(|r| Applied {
                        version: r.version,
                        success: r.ok != 0,
                        checksum: r.checksum,
                    })
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };
        let ours = tables.iter().any(|t| t == "__diesel_schema_migrations");
        let columns = self.columns()?;
        recognise(applied.as_deref(), ours, &columns)
    }

    fn count(&mut self, table: Table) -> StorageResult<u64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", table.name());
        let row: CountRow = on_conn!(self, c => diesel::sql_query(&sql)
            .get_result(c)
            .map_err(db_err(table.name()))?);
        Ok(u64::try_from(row.n).unwrap_or(0))
    }

    /// Rows of `table` after `after` in key order (`None`: from the
    /// first), or (`null_ids`) every row whose id is NULL.
    ///
    /// On PostgreSQL the ids come from one cursor per table, sorted once
    /// in `C` order (an index in the database's collation cannot serve
    /// that order, and a sort per page would make the read quadratic);
    /// each page then reads its rows by primary key.
    fn rows(
        &mut self,
        cursor: &mut IdCursor,
        table: Table,
        has_is_pinned: bool,
        after: Option<&str>,
        limit: usize,
        null_ids: bool,
    ) -> StorageResult<Vec<RawRow>> {
        let backend = self.backend();
        let what = table.name();
        #[cfg(feature = "postgres")]
        if let (LegacyConn::Postgres(c), false) = (&mut *self, null_ids) {
            let continues =
                matches!(cursor, Some((t, last)) if *t == table && last.as_deref() == after);
            if !continues {
                if cursor.take().is_some() {
                    c.batch_execute("CLOSE hsk_legacy_ids")
                        .map_err(db_err(what))?;
                }
                let after_sql = after.map_or(String::new(), |a| {
                    format!(" WHERE id COLLATE \"C\" > '{}'", a.replace('\'', "''"))
                });
                c.batch_execute(&format!(
                    "DECLARE hsk_legacy_ids NO SCROLL CURSOR FOR SELECT id AS t FROM {what}\
                     {after_sql} ORDER BY id COLLATE \"C\""
                ))
                .map_err(db_err(what))?;
            }
            let ids: Vec<IdRow> =
                diesel::sql_query(format!("FETCH FORWARD {limit} FROM hsk_legacy_ids"))
                    .load(c)
                    .map_err(db_err(what))?;
            let ids: Vec<String> = ids.into_iter().map(|r| r.t).collect();
            *cursor = Some((table, ids.last().cloned().or(after.map(str::to_string))));
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            return diesel::sql_query(select_sql(backend, table, has_is_pinned, Range::Ids))
                .bind::<diesel::sql_types::Array<Text>, _>(&ids)
                .load(c)
                .map_err(db_err(what));
        }
        let _ = cursor;
        let range = match (null_ids, after) {
            (true, _) => Range::NullIds,
            (false, None) => Range::First,
            (false, Some(_)) => Range::After,
        };
        let sql = select_sql(backend, table, has_is_pinned, range);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_conn!(self, c => {
            let query = diesel::sql_query(sql);
            match (null_ids, after) {
                (true, _) => query.load(c),
                (false, None) => query.bind::<BigInt, _>(limit).load(c),
                (false, Some(after)) => query
                    .bind::<Text, _>(after)
                    .bind::<BigInt, _>(limit)
                    .load(c),
            }
            .map_err(db_err(what))
        })
    }
}

/// The SELECT of one legacy table: every column as text in
/// [`columns`] order, so both backends hand over the same text
/// (PostgreSQL's `timestamp` as `to_char` at the microsecond, integers and
/// floats as their text), the positions also as numbers.
fn select_sql(backend: Backend, table: Table, has_is_pinned: bool, range: Range) -> String {
    let pg = backend == Backend::Postgres;
    let mut select = Vec::new();
    let mut floats = [
        "CAST(NULL AS DOUBLE PRECISION)".to_string(),
        "CAST(NULL AS DOUBLE PRECISION)".to_string(),
    ];
    let cols = columns(table);
    for (i, column) in cols.iter().enumerate() {
        let x = format!("x.{column}");
        let expr = match column_kind(column) {
            _ if *column == "is_pinned" && !has_is_pinned => "CAST(NULL AS TEXT)".to_string(),
            ColumnKind::Text => x,
            ColumnKind::Time if pg => format!(
                "CASE WHEN isfinite({x}) THEN to_char({x}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') \
                 ELSE CAST({x} AS TEXT) END"
            ),
            ColumnKind::Time | ColumnKind::Int => format!("CAST({x} AS TEXT)"),
            ColumnKind::Float(n) => {
                floats[n] = if pg {
                    format!("CAST({x} AS DOUBLE PRECISION)")
                } else {
                    format!("CASE WHEN typeof({x}) IN ('real', 'integer') THEN {x} END")
                };
                format!("CAST({x} AS TEXT)")
            }
        };
        // As bytes, so that text that is not UTF-8 reaches us to be named.
        let bytes = if pg {
            format!("convert_to({expr}, 'UTF8')")
        } else {
            format!("CAST({expr} AS BLOB)")
        };
        select.push(format!("{bytes} AS t{i}"));
    }
    let no_bytes = if pg {
        "CAST(NULL AS BYTEA)"
    } else {
        "CAST(NULL AS BLOB)"
    };
    for i in cols.len()..TEXT_CELLS {
        select.push(format!("{no_bytes} AS t{i}"));
    }
    select.push(format!("{} AS f0", floats[0]));
    select.push(format!("{} AS f1", floats[1]));
    select.push(if pg {
        "CAST(NULL AS TEXT) AS rk".into()
    } else {
        "CAST(x.rowid AS TEXT) AS rk".into()
    });
    let missing: Vec<String> = parents(table)
        .iter()
        .map(|(column, parent)| {
            format!(
                "WHEN NOT EXISTS (SELECT 1 FROM {} p WHERE p.id = x.{column}) THEN '{column}'",
                parent.name()
            )
        })
        .collect();
    select.push(if missing.is_empty() {
        "CAST(NULL AS TEXT) AS missing".into()
    } else {
        format!("CASE {} END AS missing", missing.join(" "))
    });
    let from = format!("SELECT {} FROM {} x", select.join(", "), table.name());
    match (range, pg) {
        (Range::NullIds, _) => format!("{from} WHERE x.id IS NULL ORDER BY x.rowid"),
        #[cfg(feature = "postgres")]
        (Range::Ids, _) => format!("{from} WHERE x.id = ANY($1) ORDER BY x.id COLLATE \"C\""),
        (Range::First, true) => format!("{from} ORDER BY x.id COLLATE \"C\" LIMIT $1"),
        (Range::After, true) => {
            format!("{from} WHERE x.id COLLATE \"C\" > $1 ORDER BY x.id COLLATE \"C\" LIMIT $2")
        }
        (Range::First, false) => format!("{from} WHERE x.id IS NOT NULL ORDER BY x.id LIMIT ?"),
        (Range::After, false) => format!("{from} WHERE x.id > ? ORDER BY x.id LIMIT ?"),
    }
}

/// Which rows of a table a SELECT reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Range {
    /// SQLite rows whose id is NULL.
    NullIds,
    /// The first page (a `LIMIT` bound).
    First,
    /// The page after a key (a key and a `LIMIT` bound).
    After,
    /// The rows of a list of ids (PostgreSQL, one array bound).
    #[cfg(feature = "postgres")]
    Ids,
}

/// Where a PostgreSQL source's id cursor stands: its table and the last id
/// it returned.
pub(crate) type IdCursor = Option<(Table, Option<String>)>;

/// A quarantined row's key: its id, or (SQLite, a NULL id) its rowid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RowKey {
    Id(String),
    Rowid(i64),
}

impl std::fmt::Display for RowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowKey::Id(id) => write!(f, "{id:?}"),
            RowKey::Rowid(n) => write!(f, "with a NULL id (rowid {n})"),
        }
    }
}

/// What the reader learns as it goes.
#[derive(Default)]
struct State {
    /// Rows per table in the snapshot.
    counts: HashMap<Table, u64>,
    /// The rows set aside, per table (earlier runs' included).
    quarantined: HashMap<Table, HashSet<RowKey>>,
    file: Option<std::fs::File>,
    /// Lines written since the last sync.
    unsynced: bool,
}

/// Handshake's own database, read as a source of the copy pipeline.
pub(crate) struct LegacySource {
    conn: Mutex<LegacyConn>,
    pub(crate) recognised: Recognised,
    quarantine: Option<PathBuf>,
    resume: bool,
    state: Mutex<State>,
}

/// What an import found per table: rows in the source and rows set aside.
pub(crate) struct SourceCounts {
    pub counts: HashMap<Table, u64>,
    pub quarantined: HashMap<Table, u64>,
}

impl LegacySource {
    pub(crate) fn new(
        mut conn: LegacyConn,
        quarantine: Option<PathBuf>,
        resume: bool,
    ) -> StorageResult<Self> {
        let recognised = conn.recognise()?;
        Ok(LegacySource {
            conn: Mutex::new(conn),
            recognised,
            quarantine,
            resume,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn counts(&self) -> SourceCounts {
        let state = self.state();
        SourceCounts {
            counts: state.counts.clone(),
            quarantined: state
                .quarantined
                .iter()
                .map(|(t, keys)| (*t, keys.len() as u64))
                .collect(),
        }
    }

    /// A row our store cannot hold: into the quarantine file, or the end
    /// of the import.
    fn set_aside(
        &self,
        state: &mut State,
        table: Table,
        key: RowKey,
        text: &[Option<String>],
        bad: BadCell,
    ) -> StorageResult<()> {
        let Some(file) = state.file.as_mut() else {
            return Err(StorageError::Validation(format!(
                "{} row {key}: column {}: {}. Mend the row in the source and rerun with \
                 --resume, or rerun with --quarantine FILE to set such rows aside",
                table.name(),
                bad.column,
                bad.reason
            )));
        };
        let row: serde_json::Map<String, serde_json::Value> = columns(table)
            .iter()
            .zip(text)
            .map(|(c, v)| {
                (
                    c.to_string(),
                    v.clone()
                        .map_or(serde_json::Value::Null, serde_json::Value::String),
                )
            })
            .collect();
        let (id, rowid) = match &key {
            RowKey::Id(id) => (
                serde_json::Value::String(id.clone()),
                serde_json::Value::Null,
            ),
            RowKey::Rowid(n) => (serde_json::Value::Null, serde_json::Value::from(*n)),
        };
        let line = serde_json::json!({
            "table": table.name(),
            "key": id,
            "rowid": rowid,
            "column": bad.column,
            "reason": bad.reason,
            "row": row,
        });
        let mut text = line.to_string();
        text.push('\n');
        file.write_all(text.as_bytes())
            .map_err(|e| quarantine_err(self.quarantine.as_deref(), e))?;
        state.unsynced = true;
        state.quarantined.entry(table).or_default().insert(key);
        Ok(())
    }

    /// Makes the lines written so far durable: before the page they
    /// belong to commits.
    fn sync(&self, state: &mut State) -> StorageResult<()> {
        if let (true, Some(file)) = (state.unsynced, state.file.as_mut()) {
            file.sync_data()
                .map_err(|e| quarantine_err(self.quarantine.as_deref(), e))?;
            state.unsynced = false;
        }
        Ok(())
    }

    fn page(
        &self,
        conn: &mut LegacyConn,
        cursor: &mut IdCursor,
        table: Table,
        after: Option<&Key>,
        limit: usize,
    ) -> StorageResult<SourcePage> {
        let has_is_pinned = self.recognised.has_is_pinned;
        let mut state = self.state();
        let state = &mut *state;
        let sqlite = conn.backend() == Backend::Sqlite;
        if after.is_none() && sqlite && !convert::uuid_keyed(table) {
            for raw in conn.rows(cursor, table, has_is_pinned, None, limit, true)? {
                let RowParts { text, rowid, .. } = raw.into_parts();
                let rowid = rowid.and_then(|r| r.parse().ok()).unwrap_or(-1);
                let bad = BadCell::new("id", "is NULL");
                self.set_aside(state, table, RowKey::Rowid(rowid), &text, bad)?;
            }
        }
        let raws = conn.rows(
            cursor,
            table,
            has_is_pinned,
            after.map(|k| k.id.as_str()),
            limit,
            false,
        )?;
        let exhausted = raws.len() < limit;
        let mut records = Vec::with_capacity(raws.len());
        let mut last_key = None;
        for raw in raws {
            let RowParts {
                text,
                floats,
                missing,
                not_utf8,
                ..
            } = raw.into_parts();
            let row = LegacyRow {
                table,
                text: &text[..columns(table).len()],
                floats,
            };
            let Some(key) = row.key() else {
                continue; // not selected: ids are not NULL here
            };
            last_key = Some(key.clone());
            let judged = match not_utf8.and_then(|i| columns(table).get(i)) {
                Some(column) => Err(BadCell::new(
                    column,
                    "is not valid UTF-8 text (shown here with U+FFFD in place of the bad bytes)",
                )),
                None => self.judge(state, &row, missing.as_deref()),
            };
            match judged {
                Ok(record) => records.push(record),
                Err(bad) => self.set_aside(state, table, RowKey::Id(key.id), &text, bad)?,
            }
        }
        self.sync(state)?;
        Ok(SourcePage {
            records,
            last_key,
            exhausted,
        })
    }

    /// The row as our domain value, if our store can hold it.
    fn judge(
        &self,
        state: &State,
        row: &LegacyRow<'_>,
        missing: Option<&str>,
    ) -> Result<Record, BadCell> {
        let record = row.convert()?;
        record.check().map_err(|e| {
            let message = match e {
                StorageError::Validation(m) => m,
                other => other.to_string(),
            };
            let column = message.split_whitespace().next().unwrap_or("").to_string();
            BadCell::new(&column, message)
        })?;
        if let Some(column) = missing {
            let parent = parents(row.table)
                .iter()
                .find(|(c, _)| *c == column)
                .map_or("", |(_, p)| p.name());
            let value = row.text[columns(row.table)
                .iter()
                .position(|c| *c == column)
                .unwrap_or(0)]
            .clone()
            .unwrap_or_default();
            return Err(BadCell::new(
                column,
                format!("refers to {parent} {value:?}, which the source does not have"),
            ));
        }
        for (column, parent) in parents(row.table) {
            let i = columns(row.table)
                .iter()
                .position(|c| c == column)
                .unwrap_or(0);
            if let Some(value) = &row.text[i] {
                let set_aside = state
                    .quarantined
                    .get(parent)
                    .is_some_and(|keys| keys.contains(&RowKey::Id(value.clone())));
                if set_aside {
                    return Err(BadCell::new(
                        column,
                        format!(
                            "refers to {} {value:?}, which was set aside in the quarantine file",
                            parent.name()
                        ),
                    ));
                }
            }
        }
        Ok(record)
    }
}

fn quarantine_err(path: Option<&Path>, e: std::io::Error) -> StorageError {
    StorageError::Database(format!(
        "cannot write the quarantine file {}: {e}",
        path.map_or_else(String::new, |p| p.display().to_string())
    ))
}

/// One line of a quarantine file, as far as resuming needs it.
#[derive(serde::Deserialize)]
struct QuarantineLine {
    table: String,
    key: Option<String>,
    rowid: Option<i64>,
}

impl Source for LegacySource {
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&mut dyn Snapshot) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.read_tx(|conn| {
            for table in legacy_tables() {
                let n = conn.count(table)?;
                self.state().counts.insert(table, n);
            }
            f(&mut LegacySnap {
                conn,
                source: self,
                cursor: None,
            })
        })
    }

    /// Opens the quarantine file: a fresh import refuses one that holds
    /// lines; a resumed one keeps the lines of the rows its committed pages
    /// passed (the others are read again) and appends.
    fn begin(&self, checkpoints: &[Checkpoint]) -> StorageResult<()> {
        let Some(path) = &self.quarantine else {
            return Ok(());
        };
        let err = |e: std::io::Error| quarantine_err(Some(path), e);
        let mut kept = Vec::new();
        let mut state = self.state();
        if path.exists() {
            let file = std::fs::File::open(path).map_err(err)?;
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(err)?;
                if line.trim().is_empty() {
                    continue;
                }
                if !self.resume {
                    return Err(StorageError::validation(format!(
                        "the quarantine file {} already holds rows: move it away, or pass \
                         --resume to continue the import that wrote it",
                        path.display()
                    )));
                }
                let parsed: QuarantineLine = serde_json::from_str(&line).map_err(|e| {
                    StorageError::validation(format!(
                        "the quarantine file {} has a line that is not one of ours: {e}",
                        path.display()
                    ))
                })?;
                let Some(table) = Table::from_name(&parsed.table) else {
                    continue;
                };
                let Some(at) = checkpoints.iter().find(|c| c.table == table) else {
                    continue;
                };
                let (key, passed) = match (parsed.key, parsed.rowid) {
                    (Some(id), _) => {
                        let passed = at.done
                            || at
                                .last_key
                                .as_ref()
                                .is_some_and(|last| Key::id(&id) <= *last);
                        (RowKey::Id(id), passed)
                    }
                    (None, Some(rowid)) => (RowKey::Rowid(rowid), at.done || at.last_key.is_some()),
                    (None, None) => continue,
                };
                if passed && state.quarantined.entry(table).or_default().insert(key) {
                    kept.push(line);
                }
            }
        }
        // Quarantined rows are the user's data: a new file is 0600.
        let mut file = crate::private_file::private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(err)?;
        for line in &kept {
            writeln!(file, "{line}").map_err(err)?;
        }
        file.sync_data().map_err(err)?;
        state.file = Some(file);
        Ok(())
    }

    /// Every source row is either in the target or in the quarantine file.
    fn finish(&self, checkpoints: &[Checkpoint]) -> StorageResult<()> {
        let counts = self.counts();
        for table in legacy_tables() {
            let source = counts.counts.get(&table).copied().unwrap_or(0);
            let quarantined = counts.quarantined.get(&table).copied().unwrap_or(0);
            let imported = checkpoints
                .iter()
                .find(|c| c.table == table)
                .map_or(0, |c| c.rows);
            if source != imported + quarantined {
                return Err(StorageError::Validation(format!(
                    "{}: the source has {source} rows, but {imported} were imported and \
                     {quarantined} set aside; was the source changed between runs, or resumed \
                     with another --quarantine file? The checkpoint is kept",
                    table.name()
                )));
            }
        }
        Ok(())
    }
}

struct LegacySnap<'a> {
    conn: &'a mut LegacyConn,
    source: &'a LegacySource,
    /// PostgreSQL: the id cursor of the table being read.
    cursor: IdCursor,
}

impl Snapshot for LegacySnap<'_> {
    fn page(
        &mut self,
        table: Table,
        after: Option<&Key>,
        limit: usize,
    ) -> StorageResult<Vec<Record>> {
        self.source_page(table, after, limit).map(|p| p.records)
    }

    fn count(&mut self, table: Table) -> StorageResult<u64> {
        if is_new_here(table) {
            return Ok(0);
        }
        self.conn.count(table)
    }

    fn source_page(
        &mut self,
        table: Table,
        after: Option<&Key>,
        limit: usize,
    ) -> StorageResult<SourcePage> {
        if is_new_here(table) {
            return Ok(SourcePage {
                records: Vec::new(),
                last_key: None,
                exhausted: true,
            });
        }
        self.source
            .page(self.conn, &mut self.cursor, table, after, limit)
    }
}
