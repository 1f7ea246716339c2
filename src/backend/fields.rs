//! The field types whose storage differs by backend, so that the
//! query code above them is written once (the chirpstack `storage/fields`
//! pattern):
//!
//! | type      | PostgreSQL    | SQLite                                         |
//! |-----------|---------------|------------------------------------------------|
//! | [`DbUuid`] | `uuid`        | `TEXT`, hyphenated lower case                  |
//! | [`DbTime`] | `timestamptz` | `TEXT`, `YYYY-MM-DD HH:MM:SS.ffffff+00:00` UTC |
//! | [`DbJson`] | `jsonb`       | `TEXT`, serialized JSON                        |
//! | [`DbJsonText`] | `jsonb`   | `TEXT`, serialized JSON                        |
//!
//! [`DbJsonText`] holds the JSON as text, for columns read straight into a
//! typed value (parsed once, with no `Value` tree in between).
//!
//! JSON is written by [`write_json`] on both backends: whole floats of
//! 1e16 and above (which serde_json writes as `1e16`) get a `.0`, because
//! PostgreSQL's `jsonb` would turn `1e16` into the integer
//! `10000000000000000` and hand back a different `Value`; and `-0.0` is
//! written as `0.0`, which is what `jsonb` hands back for it.
//!
//! The SQLite time text is fixed width, so comparing it as text orders it
//! in time (years 1..=9999, which `validate::timestamp` enforces), and it
//! compares correctly with SQLite's own `CURRENT_TIMESTAMP`.

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[cfg_attr(feature = "sqlite", diesel(sql_type = diesel::sql_types::Text))]
#[cfg_attr(feature = "postgres", diesel(sql_type = diesel::sql_types::Uuid))]
pub(crate) struct DbUuid(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[cfg_attr(feature = "sqlite", diesel(sql_type = diesel::sql_types::Text))]
#[cfg_attr(feature = "postgres", diesel(sql_type = diesel::sql_types::Timestamptz))]
pub(crate) struct DbTime(pub DateTime<Utc>);

#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[cfg_attr(feature = "sqlite", diesel(sql_type = diesel::sql_types::Text))]
#[cfg_attr(feature = "postgres", diesel(sql_type = diesel::sql_types::Jsonb))]
pub(crate) struct DbJson(pub Value);

#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[cfg_attr(feature = "sqlite", diesel(sql_type = diesel::sql_types::Text))]
#[cfg_attr(feature = "postgres", diesel(sql_type = diesel::sql_types::Jsonb))]
pub(crate) struct DbJsonText(pub String);

impl DbJsonText {
    /// `value` as the stores keep it (see [`write_json`]).
    pub(crate) fn of(value: &Value) -> serde_json::Result<Self> {
        let mut text = Vec::new();
        write_json(value, &mut text)?;
        // serde_json writes UTF-8.
        Ok(DbJsonText(String::from_utf8_lossy(&text).into_owned()))
    }
}

/// serde_json's compact output, except that a whole float too large for
/// plain decimal notation keeps a fraction, so it reads back as a float on
/// every backend, and `-0.0` is written `0.0` (`jsonb` has no negative
/// zero; SQLite text would keep it).
struct FloatsStayFloats;

impl serde_json::ser::Formatter for FloatsStayFloats {
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        let value = if value == 0.0 { 0.0 } else { value };
        if value.is_finite() && value.fract() == 0.0 && value.abs() >= 1e16 {
            write!(writer, "{value:.1}")
        } else {
            serde_json::ser::CompactFormatter.write_f64(writer, value)
        }
    }
}

/// Writes `value` as JSON text the way every backend stores it.
pub(crate) fn write_json<W: std::io::Write>(value: &Value, writer: W) -> serde_json::Result<()> {
    write_json_of(value, writer)
}

/// Writes any serialisable value as the JSON text [`write_json`] writes
/// for its `serde_json::to_value`, without building that value.
pub(crate) fn write_json_of<T: serde::Serialize + ?Sized, W: std::io::Write>(
    value: &T,
    writer: W,
) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(
        writer,
        FloatsStayFloats,
    ))
}

/// How SQLite stores a timestamp: fixed-width UTC text.
#[cfg(feature = "sqlite")]
const SQLITE_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f+00:00";

/// A timestamp as SQLite stores it.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_time_text(at: &DateTime<Utc>) -> String {
    at.format(SQLITE_TIME_FORMAT).to_string()
}

/// The text the store writes (`SQLITE_TIME_FORMAT`, 32 bytes), read by
/// hand: the general parser below costs about as much as the rest of a
/// row's decoding. `None` for any other shape, or an invalid date or time
/// (the general parser then decides, with its message).
#[cfg(feature = "sqlite")]
fn parse_stored_utc(text: &[u8]) -> Option<DateTime<Utc>> {
    let shape = text.len() == 32
        && text.ends_with(b"+00:00")
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b' '),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
        ]
        .iter()
        .all(|&(at, sep)| text[at] == sep);
    if !shape {
        return None;
    }
    let digits = |from: usize, to: usize| -> Option<u32> {
        text[from..to].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(digits(0, 4)?).ok()?,
        digits(5, 7)?,
        digits(8, 10)?,
    )?;
    let time = chrono::NaiveTime::from_hms_micro_opt(
        digits(11, 13)?,
        digits(14, 16)?,
        digits(17, 19)?,
        digits(20, 26)?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// Reads a timestamp stored as SQLite text (any offset, any fraction).
#[cfg(feature = "sqlite")]
pub(crate) fn parse_sqlite_time(raw: &str) -> Result<DateTime<Utc>, String> {
    if let Some(at) = parse_stored_utc(raw.as_bytes()) {
        return Ok(at);
    }
    DateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f%:z")
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| format!("invalid timestamp {raw:?}: {e}"))
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use diesel::serialize::IsNull;
    use diesel::sql_types::Text;
    use diesel::sqlite::{Sqlite, SqliteValue};

    fn text(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<String> {
        <String as FromSql<Text, Sqlite>>::from_sql(value)
    }

    impl ToSql<Text, Sqlite> for DbUuid {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(self.0.hyphenated().to_string());
            Ok(IsNull::No)
        }
    }

    impl FromSql<Text, Sqlite> for DbUuid {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            Ok(DbUuid(Uuid::parse_str(&text(value)?)?))
        }
    }

    impl ToSql<Text, Sqlite> for DbTime {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(sqlite_time_text(&self.0));
            Ok(IsNull::No)
        }
    }

    impl FromSql<Text, Sqlite> for DbTime {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            Ok(DbTime(parse_sqlite_time(&text(value)?)?))
        }
    }

    impl ToSql<Text, Sqlite> for DbJson {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            let mut text = Vec::new();
            write_json(&self.0, &mut text)?;
            out.set_value(String::from_utf8(text)?);
            Ok(IsNull::No)
        }
    }

    impl FromSql<Text, Sqlite> for DbJson {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            Ok(DbJson(serde_json::from_str(&text(value)?)?))
        }
    }

    impl ToSql<Text, Sqlite> for DbJsonText {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(self.0.as_str());
            Ok(IsNull::No)
        }
    }

    impl FromSql<Text, Sqlite> for DbJsonText {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            text(value).map(DbJsonText)
        }
    }
}

/// PostgreSQL has native types for them: reading delegates to Diesel's
/// impls, and so does writing, but for JSON (see [`write_json`]); the
/// text of a `jsonb` value ([`DbJsonText`]) is read as it arrives.
#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use diesel::pg::{Pg, PgValue};
    use diesel::serialize::IsNull;
    use diesel::sql_types::{Jsonb, Timestamptz, Uuid as SqlUuid};
    use std::io::Write;

    macro_rules! delegate_pg {
        (from $wrapper:ident, $inner:ty, $sql:ty) => {
            impl FromSql<$sql, Pg> for $wrapper {
                fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                    <$inner as FromSql<$sql, Pg>>::from_sql(value).map($wrapper)
                }
            }
        };
    }

    macro_rules! delegate_pg_both {
        ($wrapper:ident, $inner:ty, $sql:ty) => {
            impl ToSql<$sql, Pg> for $wrapper {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                    <$inner as ToSql<$sql, Pg>>::to_sql(&self.0, out)
                }
            }

            delegate_pg!(from $wrapper, $inner, $sql);
        };
    }

    delegate_pg_both!(DbUuid, Uuid, SqlUuid);
    delegate_pg_both!(DbTime, DateTime<Utc>, Timestamptz);
    delegate_pg!(from DbJson, Value, Jsonb);

    impl ToSql<Jsonb, Pg> for DbJson {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            // jsonb's binary format: a version byte, then JSON text.
            out.write_all(&[1])?;
            write_json(&self.0, out)?;
            Ok(IsNull::No)
        }
    }

    impl ToSql<Jsonb, Pg> for DbJsonText {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            out.write_all(&[1])?;
            out.write_all(self.0.as_bytes())?;
            Ok(IsNull::No)
        }
    }

    impl FromSql<Jsonb, Pg> for DbJsonText {
        fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
            match value.as_bytes().split_first() {
                Some((1, text)) => Ok(DbJsonText(std::str::from_utf8(text)?.to_owned())),
                _ => Err("unsupported jsonb encoding version".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: &Value) -> String {
        let mut out = Vec::new();
        write_json(value, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_written_as_every_backend_reads_them_back() {
        assert_eq!(text(&json!([-0.0, 0.0])), "[0.0,0.0]");
        assert_eq!(
            text(&json!({"a": [1e16, -2e20]})),
            r#"{"a":[10000000000000000.0,-200000000000000000000.0]}"#
        );
        assert_eq!(
            text(&json!([0.5, -1.5, u64::MAX, i64::MIN])),
            "[0.5,-1.5,18446744073709551615,-9223372036854775808]"
        );
    }

    /// The hand-read fast path gives exactly what the general parser
    /// gives, and leaves every other shape to it.
    #[cfg(feature = "sqlite")]
    #[test]
    fn stored_timestamps_read_by_hand_as_by_chrono() {
        let general = |raw: &str| {
            DateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f%:z")
                .map(|at| at.with_timezone(&Utc))
        };
        for raw in [
            "2026-11-27 04:15:00.123456+00:00",
            "0001-01-01 00:00:00.000000+00:00",
            "9999-12-31 23:59:59.999999+00:00",
            "2024-02-29 12:00:00.000001+00:00",
            "1970-01-01 00:00:00.000000+00:00",
        ] {
            let fast = parse_stored_utc(raw.as_bytes()).expect(raw);
            assert_eq!(Ok(fast), general(raw), "{raw}");
            assert_eq!(sqlite_time_text(&fast), raw);
        }
        for other in [
            "2023-02-29 12:00:00.000000+00:00",
            "2026-11-27 24:00:00.000000+00:00",
            "2026-11-27 23:59:60.000000+00:00",
            "2026-11-27 04:15:00.123456+01:00",
            "2026-11-27 04:15:00.1234+00:00",
            "2026-11-27T04:15:00.123456+00:00",
            "2026-1a-27 04:15:00.123456+00:00",
            "+026-11-27 04:15:00.123456+00:00",
        ] {
            assert_eq!(parse_stored_utc(other.as_bytes()), None, "{other}");
            assert_eq!(
                parse_sqlite_time(other).ok(),
                general(other).ok(),
                "{other}"
            );
        }
    }
}
