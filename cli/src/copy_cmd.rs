//! `hsk-storage copy` and `hsk-storage verify`: the library's
//! `copy_store` / `verify_stores` with a progress bar per table and a
//! closing table. URLs are printed with their passwords redacted.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use handshake_storage::copy::{copy_store, verify_stores, CopyOptions, ProgressFn, VerifyReport};
use handshake_storage::{redact_url, StorageResult};
use indicatif::{ProgressBar, ProgressStyle};

pub fn copy(from: &str, to: &str, resume: bool, batch_rows: usize) -> StorageResult<ExitCode> {
    println!(
        "copying {} -> {}{}",
        redact_url(from),
        redact_url(to),
        if resume { " (resume)" } else { "" }
    );
    let bars = Bars::default();
    let options = CopyOptions {
        resume,
        batch_rows,
        progress: Some(bars.progress()),
    };
    let result = copy_store(from, to, &options);
    bars.abandon_unfinished();
    let report = result?;
    println!();
    print_table(&report.verify);
    println!(
        "{} rows in {:.1} s ({:.0} rows/s){}; the target verified identical to the source as read",
        report.rows_this_run,
        report.seconds,
        report.rows_per_sec,
        if report.resumed { ", resumed" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// A progress bar per table (rows/s, ETA), fed by the copy pipeline's
/// progress reports (`copy` and `import`).
#[derive(Clone, Default)]
pub struct Bars(Arc<Mutex<HashMap<&'static str, ProgressBar>>>);

impl Bars {
    pub fn progress(&self) -> ProgressFn {
        let bars = self.0.clone();
        let style = ProgressStyle::with_template(
            "{msg:26} {bar:30} {pos:>9}/{len:9} {per_sec:>14} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        Arc::new(move |p| {
            let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
            let bar = bars.entry(p.table).or_insert_with(|| {
                let bar = ProgressBar::new(p.rows_total).with_style(style.clone());
                bar.set_message(p.table);
                bar.set_position(p.rows_done);
                bar.reset_eta();
                bar
            });
            bar.set_length(p.rows_total.max(p.rows_done));
            bar.set_position(p.rows_done);
            if p.rows_done >= p.rows_total {
                bar.finish();
            }
        })
    }

    /// Leaves the bars of an interrupted run where they stopped.
    pub fn abandon_unfinished(&self) {
        for bar in self.0.lock().unwrap_or_else(|e| e.into_inner()).values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

pub fn verify(a: &str, b: &str) -> StorageResult<ExitCode> {
    println!("verifying {} against {}", redact_url(a), redact_url(b));
    let report = verify_stores(a, b)?;
    print_table(&report);
    if report.identical {
        println!("identical");
        Ok(ExitCode::SUCCESS)
    } else {
        for line in report.differences() {
            eprintln!("hsk-storage: differs: {line}");
        }
        Ok(ExitCode::FAILURE)
    }
}

fn print_table(report: &VerifyReport) {
    println!("{:26} {:>10} {:>10}  digest", "table", "source", "target");
    for t in &report.tables {
        let verdict = if t.matches() {
            "match".to_string()
        } else {
            match &t.first_difference {
                Some(key) => format!("DIFFERS (first at {key})"),
                None => "DIFFERS".to_string(),
            }
        };
        println!(
            "{:26} {:>10} {:>10}  {verdict}",
            t.table, t.rows_a, t.rows_b
        );
    }
}
