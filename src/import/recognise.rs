//! Which database an import was pointed at, decided before a row is read:
//! from `_sqlx_migrations` (versions, checksums, `success`) and the tables'
//! actual columns. Handshake's nine migrations are accepted as its own
//! builds wrote them (`LEGACY.md` §1): the committed files, a Windows
//! checkout's CRLF files, and the older in-place edits whose columns still
//! hold what an import needs. Anything else is one `Validation` line naming
//! what was found.

use crate::backend::copy_end::Table;
use crate::error::{StorageError, StorageResult};

use super::convert::columns;

/// One applied migration as `_sqlx_migrations` records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
}

/// A build of one migration an import accepts: its version, the checksum
/// (all 48 bytes, or the first 8 where only those are published), and
/// what it means for the data, if anything.
struct Known {
    version: i64,
    checksum: &'static str,
    build: Build,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Build {
    /// The files as committed at c8acabe5 (LF).
    Committed,
    /// The same files checked out with CRLF line endings.
    Crlf,
    /// v1 before 974e689b: TEXT timestamps, no defaults, no traceability.
    OldInit,
    /// v2 before 974e689b: millisecond text defaults and update triggers.
    OldAiCore,
    /// v8 of efa3d04f: the rebuild lost `ai_jobs.is_pinned`.
    LostPinned,
    /// v8 of 485e0277..ff8274b1: the rebuild deleted every workflow run and
    /// node execution on SQLite.
    LostRuns,
}

const KNOWN: &[Known] = &[
    Known { version: 1, build: Build::Committed, checksum: "3111c52d2f3ec92996c271233ffe67694deb97ef6661315d71d49e673b6c3feab431fadddd72df542d9959dd21f98cde" },
    Known { version: 2, build: Build::Committed, checksum: "5226126c2a0815b61bbd853050225acb60061292473de67a33e6b420dc4a717713add8b97829d1eaa45a83ac6180a886" },
    Known { version: 3, build: Build::Committed, checksum: "5d502d4f709a46593d46a3425238d409eb026ddf36a462a1d7fb3d0ee60baa78b48be71426667f9b22ba0c42456d5ff4" },
    Known { version: 4, build: Build::Committed, checksum: "b3f1ed69842abc216e119ab45699eaac432e2f02803ceef3920a2c9471acb69e32565168f48e0f4c792477e1d9941062" },
    Known { version: 5, build: Build::Committed, checksum: "c2d64dbf6512e53299f58995c38b5542b4397876be0dcfd7053fde18d8271726a8a0e840d0cca30c934ac9975a82fa5f" },
    Known { version: 6, build: Build::Committed, checksum: "09e65c9a6969d298e1b53b1b749bea51645994966699c91f7f79d33b120cbcfa4325eeb4a02b45d5b785e6ead49f1726" },
    Known { version: 7, build: Build::Committed, checksum: "b69763a003ca47860d11ce1201e616f4014294cd0bb61a01aaeeea934712c0cc141cc20001ee7a9cf7b361d6e8dfdc91" },
    Known { version: 8, build: Build::Committed, checksum: "a6b843df5ffc871c472dff2b3f009875550aa348519c9da3b4e85e2462d5a5598841be5d74c20df9c26595b3e31565c5" },
    Known { version: 9, build: Build::Committed, checksum: "d5a4a316f67e66579f8170135fc544395b8db5600ea25f6f3a2ff32f3a4d81661e0c560108a6da85feff019e12138b51" },
    Known { version: 1, build: Build::Crlf, checksum: "f8d19a243936ed12" },
    Known { version: 2, build: Build::Crlf, checksum: "565d64d3ba5b3f71" },
    Known { version: 3, build: Build::Crlf, checksum: "73cf0b659aca7cd4" },
    Known { version: 4, build: Build::Crlf, checksum: "891c7c7128e0969e" },
    Known { version: 5, build: Build::Crlf, checksum: "45cb703b6d6a78b0" },
    Known { version: 6, build: Build::Crlf, checksum: "6b50690d1be63330" },
    Known { version: 7, build: Build::Crlf, checksum: "08f7ff469656f084" },
    Known { version: 8, build: Build::Crlf, checksum: "47caa3c281270789" },
    Known { version: 9, build: Build::Crlf, checksum: "8b3badf862c08441" },
    Known { version: 1, build: Build::OldInit, checksum: "4c1f5bf956faec07" },
    Known { version: 2, build: Build::OldAiCore, checksum: "a2384a2e90cb1187" },
    Known { version: 8, build: Build::LostPinned, checksum: "c3a5ea607d71367b" },
    Known { version: 8, build: Build::LostRuns, checksum: "157069b551859adc" },
];

/// The checksums of Handshake's nine committed migrations, in version
/// order (SHA-384 of the files as committed), e.g. for tests that build a
/// legacy database.
pub fn committed_checksums() -> Vec<Vec<u8>> {
    KNOWN
        .iter()
        .filter(|k| k.build == Build::Committed)
        .map(|k| from_hex(k.checksum))
        .collect()
}

/// The first 8 bytes of the checksum of each migration a Windows (CRLF)
/// checkout builds, in version order: all that is published of them.
pub fn crlf_checksum_prefixes() -> Vec<Vec<u8>> {
    KNOWN
        .iter()
        .filter(|k| k.build == Build::Crlf)
        .map(|k| from_hex(k.checksum))
        .collect()
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the recogniser found: the source is a Handshake database, with
/// these remarks for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recognised {
    /// `ai_jobs` has its `is_pinned` column.
    pub has_is_pinned: bool,
    /// One line each on what the source's builds mean for its data.
    pub notes: Vec<String>,
    /// The checksums in version order (names this import in checkpoints).
    pub checksums: Vec<String>,
}

/// Decides from the applied migrations (`None`: there is no
/// `_sqlx_migrations` table; `ours`: it has our own migrations table)
/// and the columns found per table (`table`, `column`) whether this is a
/// Handshake database an import can read.
pub(crate) fn recognise(
    applied: Option<&[Applied]>,
    ours: bool,
    found_columns: &[(String, String)],
) -> StorageResult<Recognised> {
    let refuse = |what: String| {
        Err(StorageError::Validation(format!(
            "not a Handshake database an import can read: {what}"
        )))
    };
    let Some(applied) = applied else {
        if ours {
            return refuse(
                "it has handshake-storage's own schema (__diesel_schema_migrations), not \
                 Handshake's: use `hsk-storage copy` for it"
                    .into(),
            );
        }
        return refuse("it has no _sqlx_migrations table".into());
    };
    let mut builds = Vec::new();
    for version in 1..=9 {
        let Some(row) = applied.iter().find(|a| a.version == version) else {
            return refuse(format!(
                "migration {version} is not applied (found versions {}): open it once with \
                 Handshake to finish its migrations",
                versions(applied)
            ));
        };
        if !row.success {
            return refuse(format!(
                "migration {version} is dirty (success = false in _sqlx_migrations)"
            ));
        }
        let known = KNOWN.iter().find(|k| {
            let sum = from_hex(k.checksum);
            k.version == version && row.checksum.len() == 48 && row.checksum[..sum.len()] == sum[..]
        });
        match known {
            Some(k) => builds.push(k.build),
            None => {
                return refuse(format!(
                    "migration {version} has checksum {}, which is no build of Handshake's \
                     migration {version} this importer knows",
                    to_hex(&row.checksum)
                ))
            }
        }
    }
    if let Some(later) = applied.iter().find(|a| !(1..=9).contains(&a.version)) {
        return refuse(format!(
            "it has migration {}, which Handshake's nine migrations do not include (a newer \
             Handshake, or another application)",
            later.version
        ));
    }
    let has =
        |table: &str, column: &str| found_columns.iter().any(|(t, c)| t == table && c == column);
    let mut has_is_pinned = true;
    for table in Table::ALL.into_iter().filter(|t| t.in_legacy()) {
        if !found_columns.iter().any(|(t, _)| t == table.name()) {
            return refuse(format!("table {} is missing", table.name()));
        }
        for column in columns(table) {
            if has(table.name(), column) {
                continue;
            }
            if table == Table::AiJobs && *column == "is_pinned" {
                has_is_pinned = false;
                continue;
            }
            return refuse(format!("table {} has no column {column}", table.name()));
        }
    }
    let mut notes = Vec::new();
    if builds.contains(&Build::Crlf) {
        notes
            .push("migrations built from a CRLF (Windows) checkout; the schema is the same".into());
    }
    if builds.contains(&Build::OldInit) {
        notes.push(
            "migration 1 predates 974e689b (text timestamps without defaults); read as usual"
                .into(),
        );
    }
    if builds.contains(&Build::OldAiCore) {
        notes.push(
            "migration 2 predates 974e689b (millisecond text timestamps); read as usual".into(),
        );
    }
    if builds.contains(&Build::LostRuns) {
        notes.push(
            "migration 8 of 485e0277..ff8274b1 deleted every workflow run and node execution \
             that existed before it (on SQLite); those cannot be imported"
                .into(),
        );
    }
    if !has_is_pinned {
        notes.push(
            "ai_jobs has no is_pinned column (migration 8 of efa3d04f lost it): every job is \
             imported unpinned"
                .into(),
        );
    }
    let checksums = (1..=9)
        .filter_map(|v| applied.iter().find(|a| a.version == v))
        .map(|a| to_hex(&a.checksum))
        .collect();
    Ok(Recognised {
        has_is_pinned,
        notes,
        checksums,
    })
}

fn versions(applied: &[Applied]) -> String {
    let mut v: Vec<i64> = applied.iter().map(|a| a.version).collect();
    v.sort_unstable();
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_columns() -> Vec<(String, String)> {
        Table::ALL
            .into_iter()
            .flat_map(|t| {
                columns(t)
                    .iter()
                    .map(move |c| (t.name().to_string(), c.to_string()))
            })
            .collect()
    }

    fn committed() -> Vec<Applied> {
        committed_checksums()
            .into_iter()
            .enumerate()
            .map(|(i, checksum)| Applied {
                version: i as i64 + 1,
                success: true,
                checksum,
            })
            .collect()
    }

    fn refusal(applied: Option<&[Applied]>, columns: &[(String, String)]) -> String {
        recognise(applied, false, columns).unwrap_err().to_string()
    }

    #[test]
    fn committed_and_crlf_builds_are_accepted() {
        let found = recognise(Some(&committed()), false, &all_columns()).unwrap();
        assert!(found.has_is_pinned && found.notes.is_empty());
        let mut crlf = committed();
        for (a, prefix) in crlf.iter_mut().zip(crlf_checksum_prefixes()) {
            a.checksum[..8].copy_from_slice(&prefix);
        }
        let found = recognise(Some(&crlf), false, &all_columns()).unwrap();
        assert!(found.notes[0].contains("CRLF"), "{:?}", found.notes);
    }

    #[test]
    fn an_ai_jobs_without_is_pinned_needs_the_v8_that_lost_it_or_reads_unpinned() {
        let mut applied = committed();
        applied[7].checksum[..8].copy_from_slice(&from_hex("c3a5ea607d71367b"));
        let columns: Vec<_> = all_columns()
            .into_iter()
            .filter(|(t, c)| !(t == "ai_jobs" && c == "is_pinned"))
            .collect();
        let found = recognise(Some(&applied), false, &columns).unwrap();
        assert!(!found.has_is_pinned);
        assert!(found.notes.iter().any(|n| n.contains("unpinned")));
    }

    #[test]
    fn anything_else_is_one_line_naming_it() {
        let mut dirty = committed();
        dirty[3].success = false;
        assert!(refusal(Some(&dirty), &all_columns()).contains("migration 4 is dirty"));
        let mut later = committed();
        later.push(Applied {
            version: 10,
            success: true,
            checksum: vec![0; 48],
        });
        assert!(refusal(Some(&later), &all_columns()).contains("migration 10"));
        let mut edited = committed();
        edited[5].checksum[20] ^= 1;
        assert!(refusal(Some(&edited), &all_columns()).contains("migration 6 has checksum"));
        let short = &committed()[..7];
        assert!(refusal(Some(short), &all_columns()).contains("migration 8 is not applied"));
        let no_blocks: Vec<_> = all_columns()
            .into_iter()
            .filter(|(t, _)| t != "blocks")
            .collect();
        assert!(refusal(Some(&committed()), &no_blocks).contains("table blocks is missing"));
        assert!(refusal(None, &all_columns()).contains("no _sqlx_migrations"));
        let ours = recognise(None, true, &[]).unwrap_err().to_string();
        assert!(ours.contains("hsk-storage copy"), "{ours}");
        assert!(!ours.contains('\n'));
    }
}
