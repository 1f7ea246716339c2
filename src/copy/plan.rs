//! Before any row moves: opening both ends, naming the databases, the
//! schema versions both must be at, the copy's id, and whether the target
//! may be copied into (empty) or resumed (its checkpoint is this copy's).

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::pipeline::VERIFIERS;
use super::CopyOptions;
use crate::backend::copy_end::{Checkpoint, CopyEnd, Table};
use crate::backend::{Maintenance, SchemaOnOpen};
use crate::config::{redact_url, DatabaseUrl, StorageConfig};
use crate::error::{StorageError, StorageResult};

/// The checkpoint found in a target, if this copy may continue from it.
pub(super) fn resume_from(
    found: Vec<Checkpoint>,
    copy_id: &str,
    source_name: &str,
    command: &str,
    options: &CopyOptions,
) -> StorageResult<Vec<Checkpoint>> {
    if let Some(other) = found.iter().find(|c| c.copy_id != copy_id) {
        if other.source == source_name {
            return Err(StorageError::validation(format!(
                "the target holds an unfinished copy or import from {source_name} made at \
                 another schema version, by another command or by another release of this \
                 library, which this {command} cannot finish: {command} into an empty database"
            )));
        }
        return Err(StorageError::validation(format!(
            "the target holds the checkpoint of an unfinished copy or import from {}, not from \
             {source_name}: finish that one, or {command} into an empty database",
            other.source
        )));
    }
    if !options.resume {
        return Err(StorageError::validation(format!(
            "the target holds an unfinished {command} from {source_name}: rerun with resume \
             (`hsk-storage {command} --resume`) to finish it"
        )));
    }
    Table::ALL
        .iter()
        .map(|&table| {
            found
                .iter()
                .find(|c| c.table == table)
                .cloned()
                .ok_or_else(|| {
                    StorageError::Serialization(format!(
                        "the target's copy checkpoint has no row for table {}",
                        table.name()
                    ))
                })
        })
        .collect()
}

/// `Validation` naming the first table of `target` that has rows.
pub(super) fn refuse_non_empty(target: &dyn CopyEnd) -> StorageResult<()> {
    let mut occupied = None;
    target.snapshot(&mut |snap| {
        for table in Table::ALL {
            let rows = snap.count(table)?;
            if rows > 0 {
                occupied = Some((table, rows));
                break;
            }
        }
        Ok(())
    })?;
    match occupied {
        Some((table, rows)) => Err(StorageError::validation(format!(
            "the target is not empty (table {} has {rows} rows): copy into an empty database",
            table.name()
        ))),
        None => Ok(()),
    }
}

/// A copy's end: a source (neither migrated nor checked at open: the
/// copier checks its version itself, with its own message) needs one
/// connection for its snapshot; a target (migrated) one for the copy
/// lock, one for the writer and then the index builder, one for each
/// verifier and one to count the tables at the end.
pub(super) fn open_end(
    url: &DatabaseUrl,
    run_migrations: bool,
) -> StorageResult<Arc<dyn Maintenance>> {
    let connections = if run_migrations { 3 + VERIFIERS } else { 1 };
    let config = StorageConfig::default().pool_size(connections as u32 + 1);
    let schema = if run_migrations {
        SchemaOnOpen::Migrate
    } else {
        SchemaOnOpen::Leave
    };
    crate::backend::open_store(url, &config, schema)
}

/// A name for the database a URL names, the same for two URLs that name
/// the same database, without secrets: a SQLite file's absolute path, a
/// PostgreSQL URL with its password redacted.
pub(crate) fn identity(url: &DatabaseUrl, raw: &str, side: &str) -> StorageResult<String> {
    match url {
        DatabaseUrl::SqliteMemory => Err(StorageError::validation(format!(
            "the {side} is an in-memory SQLite database, which lives only as long as one \
             process: copy to and from files"
        ))),
        DatabaseUrl::SqliteFile(path) => {
            let absolute = std::path::absolute(path).map_err(|e| {
                StorageError::validation(format!("bad SQLite path {}: {e}", path.display()))
            })?;
            Ok(format!(
                "sqlite://{}",
                std::fs::canonicalize(&absolute)
                    .unwrap_or(absolute)
                    .display()
            ))
        }
        DatabaseUrl::Postgres(_) => Ok(redact_url(raw)),
    }
}

/// The applied migrations of a store, refused unless they are exactly the
/// ones this build knows.
pub(super) fn schema_version(
    end: &dyn CopyEnd,
    side: &str,
    name: &str,
) -> StorageResult<Vec<String>> {
    let status = end.migration_status()?;
    if status.applied.is_empty() {
        return Err(StorageError::validation(format!(
            "the {side} {name} has no Handshake schema (no migration applied)"
        )));
    }
    if !status.pending.is_empty() {
        return Err(StorageError::validation(format!(
            "the {side} {name} is at schema version {} but this build copies version {}: \
             run `hsk-storage migrate` on it first",
            last(&status.applied),
            last(&status.pending)
        )));
    }
    Ok(status.applied)
}

pub(super) fn last(versions: &[String]) -> &str {
    versions.last().map_or("(none)", String::as_str)
}

/// The form of [`Record::digest`](crate::backend::copy_end::Record::digest): a checkpoint's digests are comparable
/// only with digests of the same form.
const DIGEST_FORM: &str = "cells-sha256-v2";

/// Names one copy: its source, schema version and digest form. A
/// checkpoint with another id belongs to another copy.
pub(crate) fn copy_id(source_name: &str, versions: &[String]) -> String {
    let mut hash = Sha256::new();
    hash.update(DIGEST_FORM.as_bytes());
    hash.update(b"\n");
    hash.update(source_name.as_bytes());
    for v in versions {
        hash.update(b"\n");
        hash.update(v.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
