//! The three field types whose storage differs by backend, so that the
//! query code above them is written once (the chirpstack `storage/fields`
//! pattern):
//!
//! | type      | PostgreSQL    | SQLite                                         |
//! |-----------|---------------|------------------------------------------------|
//! | [`DbUuid`] | `uuid`        | `TEXT`, hyphenated lower case                  |
//! | [`DbTime`] | `timestamptz` | `TEXT`, `YYYY-MM-DD HH:MM:SS.ffffff+00:00` UTC |
//! | [`DbJson`] | `jsonb`       | `TEXT`, serialized JSON                        |
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

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use diesel::serialize::IsNull;
    use diesel::sql_types::Text;
    use diesel::sqlite::{Sqlite, SqliteValue};

    const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f+00:00";

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
            out.set_value(self.0.format(TIME_FORMAT).to_string());
            Ok(IsNull::No)
        }
    }

    impl FromSql<Text, Sqlite> for DbTime {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            let raw = text(value)?;
            let parsed = DateTime::parse_from_str(&raw, "%Y-%m-%d %H:%M:%S%.f%:z")
                .map_err(|e| format!("invalid timestamp {raw:?}: {e}"))?;
            Ok(DbTime(parsed.with_timezone(&Utc)))
        }
    }

    impl ToSql<Text, Sqlite> for DbJson {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(serde_json::to_string(&self.0)?);
            Ok(IsNull::No)
        }
    }

    impl FromSql<Text, Sqlite> for DbJson {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            Ok(DbJson(serde_json::from_str(&text(value)?)?))
        }
    }
}

/// PostgreSQL has native types for all three: delegate to Diesel's impls.
#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use diesel::pg::{Pg, PgValue};
    use diesel::sql_types::{Jsonb, Timestamptz, Uuid as SqlUuid};

    macro_rules! delegate_pg {
        ($wrapper:ident, $inner:ty, $sql:ty) => {
            impl ToSql<$sql, Pg> for $wrapper {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                    <$inner as ToSql<$sql, Pg>>::to_sql(&self.0, out)
                }
            }

            impl FromSql<$sql, Pg> for $wrapper {
                fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                    <$inner as FromSql<$sql, Pg>>::from_sql(value).map($wrapper)
                }
            }
        };
    }

    delegate_pg!(DbUuid, Uuid, SqlUuid);
    delegate_pg!(DbTime, DateTime<Utc>, Timestamptz);
    delegate_pg!(DbJson, Value, Jsonb);
}
