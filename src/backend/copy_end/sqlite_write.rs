//! SQLite's writer for the copier: multi-row INSERTs sized to the bind
//! limit, inside the caller's transaction. Values are encoded as the
//! store's field types encode them (`backend::fields`).

use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::RunQueryDsl;

use super::{Cell, Record, Table, WriteRecords, Written};
use crate::backend::fields::{sqlite_time_text, write_json};
use crate::backend::from_diesel;
use crate::error::{StorageError, StorageResult};

/// SQLITE_MAX_VARIABLE_NUMBER of the bundled SQLite.
const MAX_BIND_PARAMS: usize = 32_766;

type Boxed<'a> = diesel::query_builder::BoxedSqlQuery<'a, Sqlite, diesel::query_builder::SqlQuery>;

fn bind<'a>(query: Boxed<'a>, cell: Cell<'a>) -> StorageResult<Boxed<'a>> {
    Ok(match cell {
        Cell::Null => query.bind::<Nullable<Text>, _>(None::<String>),
        Cell::Text(v) => query.bind::<Text, _>(v),
        Cell::Int(v) => query.bind::<BigInt, _>(v),
        Cell::Float(v) => query.bind::<Double, _>(v),
        Cell::Bool(v) => query.bind::<Bool, _>(v),
        Cell::Uuid(v) => query.bind::<Text, _>(v.hyphenated().to_string()),
        Cell::Time(v) => query.bind::<Text, _>(sqlite_time_text(&v)),
        Cell::Json(v) => query.bind::<Text, _>(json_text(v)?),
        Cell::Typed(column, v) => {
            let mut out = Vec::new();
            v.write_stored(&mut out)
                .map_err(|e| StorageError::Serialization(format!("cannot encode {column}: {e}")))?;
            query.bind::<Text, _>(utf8(out)?)
        }
    })
}

fn json_text(value: &serde_json::Value) -> StorageResult<String> {
    let mut out = Vec::new();
    write_json(value, &mut out)?;
    utf8(out)
}

fn utf8(text: Vec<u8>) -> StorageResult<String> {
    String::from_utf8(text).map_err(|e| StorageError::Serialization(e.to_string()))
}

impl WriteRecords for SqliteConnection {
    fn write_records(
        &mut self,
        table: Table,
        records: &[Record],
        // The refs trigger fills `ai_job_entity_refs` on SQLite.
        _refs: Option<&[Record]>,
        _digest: bool,
    ) -> StorageResult<Vec<Written>> {
        let columns = table.columns();
        let row = format!("({})", vec!["?"; columns.len()].join(", "));
        let per_statement = (MAX_BIND_PARAMS / columns.len()).max(1);
        for chunk in records.chunks(per_statement) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                table.name(),
                columns.join(", "),
                vec![row.as_str(); chunk.len()].join(", ")
            );
            let mut query = diesel::sql_query(sql).into_boxed::<Sqlite>();
            for record in chunk {
                for cell in record.cells()? {
                    query = bind(query, cell)?;
                }
            }
            query
                .execute(self)
                .map_err(|e| from_diesel(e, &format!("{} rows", table.name())))?;
        }
        Ok(Vec::new())
    }
}
