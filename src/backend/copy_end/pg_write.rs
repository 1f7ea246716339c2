//! PostgreSQL's writer for the copier: binary `COPY ... FROM STDIN`
//! (`diesel::copy_from`), inside the caller's transaction. Each value is
//! encoded in PostgreSQL's binary format for its column type.

use diesel::pg::{CopyFormat, PgConnection};
use diesel::{ExecuteCopyFromDsl, RunQueryDsl};

use sha2::Digest;

use super::{with_scratch, Cell, Record, Table, WriteRecords, Written};
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
/// record, trailer, a chunk at a time. With `digest`, each tuple is also
/// hashed as `record_send` will send the row back (see [`RowBytes`]).
fn stream(
    table: Table,
    records: &[Record],
    w: &mut dyn std::io::Write,
    mut digest: Option<&mut RowBytes>,
) -> StorageResult<()> {
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
        let tuple = out.len();
        out.extend_from_slice(&(cells.len() as i16).to_be_bytes());
        for cell in cells {
            field(&mut out, cell)?;
        }
        if let Some(digest) = digest.as_deref_mut() {
            digest.add(&out[tuple..]);
        }
        if out.len() >= COPY_CHUNK {
            w.write_all(&out).map_err(sent)?;
            out.clear();
        }
    }
    out.extend_from_slice(COPY_TRAILER);
    w.write_all(&out).map_err(sent)
}

/// The SHA-256 of rows as PostgreSQL's `record_send` sends them (column
/// count, then per column its type oid, length and bytes), which the
/// writer computes from its COPY tuples (a field's bytes are the same:
/// both are the type's binary send format) and the verifier asks the
/// target for (`super::written_digest_sql`): equal digests mean the
/// target holds exactly the rows written, byte for byte.
pub(crate) struct RowBytes {
    types: Vec<i32>,
    hash: sha2::Sha256,
    rows: u64,
    bytes: usize,
    scratch: Vec<u8>,
}

/// The largest page checked by digest: the server holds a page's bytes
/// in memory to hash them (and `bytea` stops at 1 GiB); a larger page is
/// read back row by row.
const MAX_DIGEST_BYTES: usize = 64 << 20;

impl RowBytes {
    fn new(types: Vec<i32>) -> Self {
        RowBytes {
            types,
            hash: sha2::Sha256::new(),
            rows: 0,
            bytes: 0,
            scratch: Vec::new(),
        }
    }

    /// One binary COPY tuple: an `i16` field count, then per field an
    /// `i32` length (-1: NULL) and its bytes.
    /// The row's `record_send` form is gathered in `scratch` and hashed
    /// in one call (a call per field costs more than the copy).
    fn add(&mut self, tuple: &[u8]) {
        let fields = self.types.len();
        let row = &mut self.scratch;
        row.clear();
        row.extend_from_slice(&(fields as i32).to_be_bytes());
        let mut at = 2;
        for oid in &self.types {
            let len = tuple
                .get(at..at + 4)
                .map_or(-1, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let end = (at + 4 + usize::try_from(len).unwrap_or(0)).min(tuple.len());
            row.extend_from_slice(&oid.to_be_bytes());
            row.extend_from_slice(&tuple[at.min(end)..end]);
            at = end;
        }
        self.hash.update(&*row);
        self.rows += 1;
        self.bytes += tuple.len() + 2 * fields;
    }

    fn finish(self, table: Table) -> Option<Written> {
        (self.bytes <= MAX_DIGEST_BYTES).then(|| Written {
            table,
            rows: self.rows,
            bytes: self.hash.finalize().into(),
        })
    }
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
        Cell::Json(v) => jsonb(out, |stored| Ok(write_json(v, stored)?))?,
        Cell::Typed(column, v) => jsonb(out, |stored| {
            v.write_stored(stored)
                .map_err(|e| StorageError::Serialization(format!("cannot encode {column}: {e}")))
        })?,
    }
    Ok(())
}

/// A `jsonb` field: the JSON text `stored` writes (as the stores write
/// it, `write_json`'s form), in jsonb's binary format (a version byte,
/// then text) and spelt as `jsonb_out` spells it ([`respell`]), so that
/// `jsonb_send` gives back the bytes written.
fn jsonb(
    out: &mut Vec<u8>,
    stored: impl FnOnce(&mut Vec<u8>) -> StorageResult<()>,
) -> StorageResult<()> {
    variable(out, |buf| {
        with_scratch(|text| {
            stored(text)?;
            buf.push(1); // jsonb's binary format version
            respell(text, buf).map(drop)
        })
    })
}

/// JSON text as the stores write it (serde_json's compact form,
/// `write_json`) spelt again as `jsonb_out` prints the same value, token
/// by token, without building a `serde_json::Value`: spaces after
/// `,` and `:`, object keys ordered by length then bytes, floats in
/// `numeric`'s plain notation; strings, integers and literals as they
/// are. Returns the text after the first value.
fn respell<'t>(text: &'t [u8], out: &mut Vec<u8>) -> StorageResult<&'t [u8]> {
    let bad = || StorageError::Serialization("malformed JSON text from serde_json".into());
    let after = |rest: &'t [u8], byte: u8| match rest.split_first() {
        Some((&b, rest)) if b == byte => Ok(rest),
        _ => Err(bad()),
    };
    let Some(&first) = text.first() else {
        return Err(bad());
    };
    match first {
        b'[' => {
            let mut rest = &text[1..];
            out.push(b'[');
            if let Some(rest) = rest.strip_prefix(b"]") {
                out.push(b']');
                return Ok(rest);
            }
            loop {
                rest = respell(rest, out)?;
                match rest.split_first() {
                    Some((b',', more)) => {
                        out.extend_from_slice(b", ");
                        rest = more;
                    }
                    Some((b']', more)) => {
                        out.push(b']');
                        return Ok(more);
                    }
                    _ => return Err(bad()),
                }
            }
        }
        b'{' => {
            let mut rest = &text[1..];
            if let Some(rest) = rest.strip_prefix(b"}") {
                out.extend_from_slice(b"{}");
                return Ok(rest);
            }
            // Each entry spelt in turn into `spelt`, then copied out in
            // jsonb's key order.
            let mut spelt = Vec::new();
            let mut entries: Vec<(std::borrow::Cow<'t, [u8]>, std::ops::Range<usize>)> = Vec::new();
            loop {
                let key_len = string_len(rest).ok_or_else(bad)?;
                let (key, more) = rest.split_at(key_len);
                let start = spelt.len();
                spelt.extend_from_slice(key);
                spelt.extend_from_slice(b": ");
                rest = respell(after(more, b':')?, &mut spelt)?;
                let inner = &key[1..key.len() - 1];
                let sort_key = if inner.contains(&b'\\') {
                    let decoded: String = serde_json::from_slice(key)?;
                    std::borrow::Cow::Owned(decoded.into_bytes())
                } else {
                    std::borrow::Cow::Borrowed(inner)
                };
                entries.push((sort_key, start..spelt.len()));
                match rest.split_first() {
                    Some((b',', more)) => rest = more,
                    Some((b'}', more)) => {
                        rest = more;
                        break;
                    }
                    _ => return Err(bad()),
                }
            }
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
            out.push(b'{');
            for (i, (_, range)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(&spelt[range]);
            }
            out.push(b'}');
            Ok(rest)
        }
        b'"' => {
            let len = string_len(text).ok_or_else(bad)?;
            out.extend_from_slice(&text[..len]);
            Ok(&text[len..])
        }
        _ => {
            let len = text
                .iter()
                .position(|b| matches!(b, b',' | b']' | b'}' | b':'))
                .unwrap_or(text.len());
            let (token, rest) = text.split_at(len);
            if token
                .first()
                .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
                && token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'))
            {
                plain_numeric(token, out);
            } else {
                out.extend_from_slice(token);
            }
            Ok(rest)
        }
    }
}

/// The length of the JSON string token `text` starts with, quotes
/// included.
fn string_len(text: &[u8]) -> Option<usize> {
    if text.first() != Some(&b'"') {
        return None;
    }
    let mut at = 1;
    while let Some(&b) = text.get(at) {
        match b {
            b'\\' => at += 2,
            b'"' => return Some(at + 1),
            _ => at += 1,
        }
    }
    None
}

/// A JSON number (`-?digits[.digits][e[+-]digits]`) as `numeric_out`
/// prints the value `numeric_in` reads from it: no exponent, as many
/// fraction digits as the text had less the exponent (none below zero),
/// no sign on zero. Text of another shape is copied as it is.
fn plain_numeric(text: &[u8], out: &mut Vec<u8>) {
    let Ok(text) = std::str::from_utf8(text) else {
        out.extend_from_slice(text);
        return;
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().ok()),
        None => (text, Some(0)),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let Some(exponent) = exponent.filter(|e| e.abs() < 10_000) else {
        out.extend_from_slice(text.as_bytes());
        return;
    };
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
    // The value is 0.digits x 10^point.
    let point = whole.len() as i64 + exponent;
    let scale = (fraction.len() as i64 - exponent).max(0);
    let digit = |i: i64| -> u8 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(b'0')
    };
    let mut plain = Vec::new();
    for i in 0..point.max(0) {
        plain.push(digit(i));
    }
    let leading = plain.iter().take_while(|&&d| d == b'0').count();
    plain.drain(..leading);
    if plain.is_empty() {
        plain.push(b'0');
    }
    if scale > 0 {
        plain.push(b'.');
        for i in point..point + scale {
            plain.push(digit(i));
        }
    }
    if negative && plain.iter().any(|&d| (b'1'..=b'9').contains(&d)) {
        out.push(b'-');
    }
    out.extend_from_slice(&plain);
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

/// Binary COPY of `records` into `table`, checking the row count; what
/// was written, with the digest of its bytes when that is asked for and the columns' types are known. A row that cannot be encoded ends the COPY with its error (the
/// server then discards what it was sent).
fn copy_into(
    conn: &mut PgConnection,
    table: Table,
    records: &[Record],
    digest: bool,
) -> StorageResult<Option<Written>> {
    let types = if digest {
        column_types(conn, table)?
    } else {
        Vec::new()
    };
    let digest = std::cell::RefCell::new(
        (digest && types.len() == table.columns().len()).then(|| RowBytes::new(types)),
    );
    let failure = std::cell::RefCell::new(None);
    let copied = copy_stream(conn, table, |w| {
        // A second call (never made) would start over.
        let mut digest = digest.borrow_mut();
        if let Some(d) = digest.as_mut() {
            *d = RowBytes::new(std::mem::take(&mut d.types));
        }
        stream(table, records, w, digest.as_mut()).map_err(|e| {
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
    Ok(digest.into_inner().and_then(|d| d.finish(table)))
}

#[derive(diesel::QueryableByName)]
struct ColumnType {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    oid: i32,
}

/// The type oids of `table`'s columns, in column order (as `record_send`
/// sends them).
fn column_types(conn: &mut PgConnection, table: Table) -> StorageResult<Vec<i32>> {
    diesel::sql_query(
        "SELECT atttypid::int4 AS oid FROM pg_attribute \
         WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    .bind::<diesel::sql_types::Text, _>(table.name())
    .load::<ColumnType>(conn)
    .map(|types| types.into_iter().map(|t| t.oid).collect())
    .map_err(|e| from_diesel(e, &format!("{} column types", table.name())))
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
    fn write_records(
        &mut self,
        table: Table,
        records: &[Record],
        refs: Option<&[Record]>,
        digest: bool,
    ) -> StorageResult<Vec<Written>> {
        if table != Table::AiJobs || !owns_jobs(self)? {
            return Ok(copy_into(self, table, records, digest)?
                .into_iter()
                .collect());
        }
        execute(
            self,
            &format!("ALTER TABLE ai_jobs DISABLE TRIGGER {REFS_TRIGGER}"),
        )?;
        let jobs = copy_into(self, table, records, digest)?;
        let built: Vec<Record>;
        let refs = match refs {
            Some(refs) => refs,
            None => {
                built = records.iter().flat_map(Record::indexed_refs).collect();
                &built
            }
        };
        let refs = copy_into(self, Table::AiJobEntityRefs, refs, digest)?;
        execute(
            self,
            &format!("ALTER TABLE ai_jobs ENABLE TRIGGER {REFS_TRIGGER}"),
        )?;
        Ok(jobs.into_iter().chain(refs).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plain(text: &str) -> String {
        let mut out = Vec::new();
        plain_numeric(text.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    /// The tests' oracle for [`respell`], written from the `Value` and not
    /// from text: `value` as `jsonb_out` prints it: object keys ordered by length, then bytewise; `", "`
    /// between items and `": "` after a key; strings escaped as serde_json
    /// escapes them (the same rules); numbers as the stores write them
    /// (`write_json`), then in `numeric`'s plain notation. The value is the
    /// one `write_json` writes, only spelt as PostgreSQL spells it.
    fn jsonb_text(value: &serde_json::Value, out: &mut Vec<u8>) -> StorageResult<()> {
        use serde_json::Value;
        match value {
            Value::Null | Value::Bool(_) | Value::String(_) => {
                serde_json::to_writer(&mut *out, value)?;
            }
            Value::Number(n) if !n.is_f64() => {
                use std::io::Write;
                write!(out, "{n}").map_err(|e| StorageError::Serialization(e.to_string()))?;
            }
            Value::Number(_) => {
                let mut text = Vec::new();
                write_json(value, &mut text)?;
                plain_numeric(&text, out);
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    jsonb_text(item, out)?;
                }
                out.push(b']');
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(b.0)));
                out.push(b'{');
                for (i, (key, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    serde_json::to_writer(&mut *out, key)?;
                    out.extend_from_slice(b": ");
                    jsonb_text(item, out)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }

    fn jsonb(value: &serde_json::Value) -> String {
        let mut out = Vec::new();
        jsonb_text(value, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A `jsonb` field as the COPY sends it: length, version byte, text.
    fn jsonb_field(text: &str) -> Vec<u8> {
        let mut field = ((text.len() + 1) as i32).to_be_bytes().to_vec();
        field.push(1);
        field.extend_from_slice(text.as_bytes());
        field
    }

    /// What PostgreSQL 15 printed for `SELECT '<text>'::jsonb` of each.
    #[test]
    fn numbers_are_spelt_as_numeric_spells_them() {
        for (text, numeric) in [
            ("0", "0"),
            ("-12", "-12"),
            ("18446744073709551615", "18446744073709551615"),
            ("15.0", "15.0"),
            ("1.50e1", "15.0"),
            ("2e-3", "0.002"),
            ("1.5e-7", "0.00000015"),
            ("1e20", "100000000000000000000"),
            ("-0.0", "0.0"),
            ("-1.25e2", "-125"),
            ("0.001", "0.001"),
        ] {
            assert_eq!(plain(text), numeric, "{text}");
        }
    }

    /// Every float the stores write (`write_json`), spelt plainly, is the
    /// same float: the spelling never changes a value.
    #[test]
    fn plain_floats_read_back_as_the_same_float() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut checked = 0;
        while checked < 200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f64::from_bits(state);
            if !value.is_finite() {
                continue;
            }
            let mut text = Vec::new();
            write_json(&json!(value), &mut text).unwrap();
            let spelt = plain(std::str::from_utf8(&text).unwrap());
            assert!(!spelt.contains(['e', 'E']), "{spelt}");
            let back: f64 = spelt.parse().unwrap();
            let expected = if value == 0.0 { 0.0 } else { value };
            assert_eq!(back.to_bits(), expected.to_bits(), "{value:e} as {spelt}");
            checked += 1;
        }
    }

    /// `respell` of the stored text of `value` is `jsonb_text` of it, and
    /// so is the COPY field of the value.
    fn respelt_as_jsonb(value: &serde_json::Value) -> Result<(), String> {
        let mut stored = Vec::new();
        write_json(value, &mut stored).unwrap();
        let mut out = Vec::new();
        let rest = respell(&stored, &mut out).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("left {rest:?}"));
        }
        let (got, want) = (String::from_utf8(out).unwrap(), jsonb(value));
        if got != want {
            return Err(format!("{got} != {want}"));
        }
        let mut encoded = Vec::new();
        field(&mut encoded, Cell::Json(value)).map_err(|e| e.to_string())?;
        if encoded != jsonb_field(&want) {
            return Err(format!("the field of {want} is {encoded:?}"));
        }
        Ok(())
    }

    #[test]
    fn stored_text_is_respelt_as_jsonb_text_spells_its_value() {
        for value in [
            json!(null),
            json!([]),
            json!({}),
            json!([[], {}, [{}]]),
            json!(-0.0),
            json!(1e16),
            json!(1.5e-7),
            json!(u64::MAX),
            json!(i64::MIN),
            json!({"bb": 1, "a": [1.5, "x\u{1}y\"\\", null, true], "ccc": {}, "é": []}),
            json!({"a\"b": 1, "a\\": 2, "ab": 3, "\u{7f}": [-2.5e300, 0.001]}),
            json!({"nested": {"z": {"yy": 1, "x": [1, {"b": 2, "a": 1}]}}}),
        ] {
            respelt_as_jsonb(&value).unwrap();
        }
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,6}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(".{0,4}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_stored_json_is_respelt_as_jsonb_text_spells_it(value in any_json()) {
            proptest::prop_assert_eq!(respelt_as_jsonb(&value), Ok(()));
        }
    }

    /// A typed cell is encoded as the `Value` its type serialises to.
    #[test]
    fn typed_cells_are_encoded_as_their_json_values() {
        use crate::{EntityRef, JobMetrics, OperationType, PlannedOperation};
        let refs = vec![
            EntityRef {
                entity_id: "d\"1".into(),
                entity_kind: "document".into(),
            },
            EntityRef {
                entity_id: "w".into(),
                entity_kind: "workspace".into(),
            },
        ];
        let plan = vec![PlannedOperation {
            op_type: OperationType::Write,
            target: refs[0].clone(),
            description: Some("ä\n".into()),
        }];
        let metrics = JobMetrics {
            duration_ms: u64::MAX,
            total_tokens: 7,
            ..JobMetrics::default()
        };
        let cells: [(&str, &dyn super::super::record::TypedJson); 4] = [
            ("entity_refs", &refs),
            ("planned_operations", &plan),
            ("metrics", &metrics),
            ("entity_refs", &Vec::<EntityRef>::new()),
        ];
        for (column, typed) in cells {
            let mut direct = Vec::new();
            field(&mut direct, Cell::Typed(column, typed)).unwrap();
            let by_value = jsonb_field(&jsonb(&typed.to_value().unwrap()));
            assert_eq!(
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&by_value),
                "{column}"
            );
        }
    }

    #[test]
    fn objects_are_spelt_as_jsonb_out_spells_them() {
        let value = json!({"bb": 1, "a": [1.5, "x\u{1}y\"\\", null, true], "ccc": {}, "é": []});
        // Keys by length, then bytes ("é" is two bytes).
        assert_eq!(
            jsonb(&value),
            r#"{"a": [1.5, "x\u0001y\"\\", null, true], "bb": 1, "é": [], "ccc": {}}"#
        );
    }
}
