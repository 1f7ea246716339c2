//! `hsk-storage import`: the library's `import_handshake` with a progress
//! bar per table and a closing table (source, imported, quarantined,
//! verified). URLs are printed with their passwords redacted.

use std::path::PathBuf;
use std::process::ExitCode;

use handshake_storage::import::{import_handshake, ImportOptions};
use handshake_storage::{redact_url, StorageResult};

use crate::copy_cmd::Bars;

pub fn import(
    from: &str,
    to: &str,
    quarantine: Option<PathBuf>,
    resume: bool,
    batch_rows: usize,
) -> StorageResult<ExitCode> {
    println!(
        "importing Handshake's database {} -> {}{}",
        redact_url(from),
        redact_url(to),
        if resume { " (resume)" } else { "" }
    );
    let bars = Bars::default();
    let options = ImportOptions {
        quarantine,
        resume,
        batch_rows,
        progress: Some(bars.progress()),
    };
    let result = import_handshake(from, to, &options);
    bars.abandon_unfinished();
    let report = result?;
    println!();
    for note in &report.notes {
        println!("note: {note}");
    }
    println!(
        "{:26} {:>10} {:>10} {:>12}  verified",
        "table", "source", "imported", "quarantined"
    );
    for t in &report.tables {
        println!(
            "{:26} {:>10} {:>10} {:>12}  {}",
            t.table,
            t.source_rows,
            t.imported_rows,
            t.quarantined_rows,
            if t.verified { "match" } else { "DIFFERS" }
        );
    }
    let copy = &report.copy;
    println!(
        "{} rows in {:.1} s ({:.0} rows/s){}; every imported row read back and matched",
        copy.rows_this_run,
        copy.seconds,
        copy.rows_per_sec,
        if copy.resumed { ", resumed" } else { "" }
    );
    if let (Some(file), n @ 1..) = (&report.quarantine, report.quarantined_rows()) {
        println!("{n} rows set aside in {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
