//! The live schema as the database describes it, and its fingerprint: a
//! stable hash of tables, columns (type, nullability, default), primary
//! keys, indexes (columns, order, uniqueness), foreign keys (with their
//! actions) and triggers. A schema change nobody reviewed changes the
//! fingerprint; the conformance suite compares it with the one committed
//! for the current schema version (`src/schema/fingerprint_<backend>.txt`).

use serde::{Deserialize, Serialize};

use crate::types::Backend;

/// A column of one of our tables.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ColumnSchema {
    /// The table's name.
    pub table: String,
    /// The column's name.
    pub column: String,
    /// The type as the database names it (`uuid`, `text COLLATE "C"`,
    /// `TEXT`, ...): backend-specific.
    pub sql_type: String,
    /// Whether the column admits NULL.
    pub nullable: bool,
    /// The default expression as the database prints it: backend-specific.
    pub default: Option<String>,
}

/// An index other than a primary key's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IndexSchema {
    /// The table it indexes.
    pub table: String,
    /// The index's name.
    pub name: String,
    /// Whether it is a unique index.
    pub unique: bool,
    /// Key columns in order, each followed by ` DESC` when descending.
    pub columns: Vec<String>,
}

/// A foreign key with its actions (`CASCADE`, `NO ACTION`, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ForeignKeySchema {
    /// The table holding the key.
    pub table: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
    /// The table it refers to.
    pub ref_table: String,
    /// The referred columns, in order.
    pub ref_columns: Vec<String>,
    /// `ON UPDATE` action (`CASCADE`, `NO ACTION`, ...).
    pub on_update: String,
    /// `ON DELETE` action (`CASCADE`, `NO ACTION`, ...).
    pub on_delete: String,
}

/// A trigger; `definition` is the database's own text of it (and, on
/// PostgreSQL, of its function): backend-specific.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TriggerSchema {
    /// The table it fires on.
    pub table: String,
    /// The trigger's name.
    pub name: String,
    /// The database's own text of it (backend-specific).
    pub definition: String,
}

/// Everything the fingerprint covers, each list sorted. Diesel's
/// bookkeeping table is left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaDescription {
    /// Table names.
    pub tables: Vec<String>,
    /// Every column of every table.
    pub columns: Vec<ColumnSchema>,
    /// `(table, key columns in order)`.
    pub primary_keys: Vec<(String, Vec<String>)>,
    /// Indexes other than primary keys'.
    pub indexes: Vec<IndexSchema>,
    /// Foreign keys with their actions.
    pub foreign_keys: Vec<ForeignKeySchema>,
    /// Triggers.
    pub triggers: Vec<TriggerSchema>,
}

impl SchemaDescription {
    /// Sorts every list, so equal schemas compare and print equal.
    pub(crate) fn normalized(mut self) -> Self {
        self.tables.sort();
        self.columns.sort();
        self.primary_keys.sort();
        self.indexes.sort();
        self.foreign_keys.sort();
        self.triggers.sort();
        self
    }

    /// One line per item, sorted within each kind: the text the hash is
    /// taken of, and what `src/schema/fingerprint_<backend>.txt` holds.
    pub fn canonical_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        lines.extend(self.tables.iter().map(|t| format!("table {t}")));
        lines.extend(self.columns.iter().map(|c| {
            format!(
                "column {}.{} {} {}{}",
                c.table,
                c.column,
                c.sql_type,
                if c.nullable { "null" } else { "not null" },
                c.default
                    .as_ref()
                    .map(|d| format!(" default {d}"))
                    .unwrap_or_default()
            )
        }));
        lines.extend(
            self.primary_keys
                .iter()
                .map(|(t, cols)| format!("primary key {t} ({})", cols.join(", "))),
        );
        lines.extend(self.indexes.iter().map(|i| {
            format!(
                "{}index {}.{} ({})",
                if i.unique { "unique " } else { "" },
                i.table,
                i.name,
                i.columns.join(", ")
            )
        }));
        lines.extend(self.foreign_keys.iter().map(|f| {
            format!(
                "foreign key {} ({}) references {} ({}) on update {} on delete {}",
                f.table,
                f.columns.join(", "),
                f.ref_table,
                f.ref_columns.join(", "),
                f.on_update,
                f.on_delete
            )
        }));
        lines.extend(self.triggers.iter().map(|t| {
            format!(
                "trigger {}.{}: {}",
                t.table,
                t.name,
                crate::error::one_line(&t.definition)
            )
        }));
        lines
    }

    /// The schema without what is backend-specific by nature (types,
    /// default expressions, trigger bodies): what every backend must agree
    /// on, as one line per item.
    pub fn portable_lines(&self) -> Vec<String> {
        let portable = SchemaDescription {
            tables: self.tables.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| ColumnSchema {
                    sql_type: String::new(),
                    default: c.default.as_ref().map(|_| "<default>".into()),
                    ..c.clone()
                })
                .collect(),
            primary_keys: self.primary_keys.clone(),
            indexes: self.indexes.clone(),
            foreign_keys: self.foreign_keys.clone(),
            triggers: self
                .triggers
                .iter()
                .map(|t| TriggerSchema {
                    definition: String::new(),
                    ..t.clone()
                })
                .collect(),
        };
        portable
            .canonical_lines()
            .into_iter()
            .map(|line| line.trim_end().to_string())
            .collect()
    }
}

/// A store's live schema, its hash and the newest applied migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaFingerprint {
    /// The backend the store runs on.
    pub backend: Backend,
    /// The newest applied migration version (`None`: none applied).
    pub version: Option<u64>,
    /// 16 hex digits: FNV-1a (64 bit) of the canonical lines joined by
    /// newlines. Stable across runs, platforms and releases.
    pub hash: String,
    /// What the hash is computed from.
    pub description: SchemaDescription,
}

impl SchemaFingerprint {
    pub(crate) fn new(
        backend: Backend,
        version: Option<u64>,
        description: SchemaDescription,
    ) -> Self {
        let description = description.normalized();
        let hash = fnv1a_64(description.canonical_lines().join("\n").as_bytes());
        SchemaFingerprint {
            backend,
            version,
            hash: format!("{hash:016x}"),
            description,
        }
    }

    /// The text committed as `src/schema/fingerprint_<backend>.txt`: a
    /// header naming backend, version and hash, then the canonical lines.
    pub fn to_file_text(&self) -> String {
        let version = self.version.map_or("none".to_string(), |v| v.to_string());
        let mut text = format!(
            "# handshake-storage schema fingerprint: backend {}, version {version}, hash {}\n\
             # Regenerate: cargo run --example schema_fingerprints --features postgres\n",
            self.backend, self.hash
        );
        for line in self.description.canonical_lines() {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }
}

/// The committed fingerprint file of `backend`.
pub fn committed_fingerprint(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => include_str!("schema/fingerprint_sqlite.txt"),
        Backend::Postgres => include_str!("schema/fingerprint_postgres.txt"),
    }
}

/// The hash named in the header of [`committed_fingerprint`]`(backend)`.
pub fn committed_hash(backend: Backend) -> Option<&'static str> {
    let header = committed_fingerprint(backend).lines().next()?;
    header.rsplit_once("hash ").map(|(_, hash)| hash.trim())
}

/// FNV-1a, 64 bit: tiny, and fixed by its definition (unlike std's hasher).
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::{committed_hash, fnv1a_64};
    use crate::types::Backend;

    #[test]
    fn committed_hashes_are_read_from_the_headers() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let hash = committed_hash(backend).expect("a header with a hash");
            assert_eq!(hash.len(), 16, "{hash}");
            assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
        }
    }

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x85944171f73967e8);
    }
}
