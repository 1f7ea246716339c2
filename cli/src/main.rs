//! `hsk-storage`: migrate, inspect and check a Handshake storage database.
//!
//! Every command takes `--database-url` (or `DATABASE_URL`, `.env`
//! honoured). Errors are one line on stderr and a non-zero exit; passwords
//! in URLs are never printed.

mod copy_cmd;
mod import_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use handshake_storage::bench::{replace_speedup, run_all, workload_count, Sizes};
use handshake_storage::conformance::{run_suite, TestTarget};
use handshake_storage::{
    grant_application_role, open_for_maintenance, redact_url, require_postgres_if_configured,
    StorageConfig, StorageResult, DEFAULT_DATABASE_URL,
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "hsk-storage",
    version,
    about = "Handshake storage: migrate, status, grant, check, bench, copy, import, verify"
)]
struct Cli {
    /// Database URL: sqlite://path, a file path, sqlite::memory:,
    /// postgres://... [default: DATABASE_URL, else sqlite://data/handshake.db;
    /// `check` defaults to a temporary SQLite database]
    #[arg(long, global = true)]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations.
    Migrate,
    /// Show the backend, the schema version and fingerprint, and
    /// applied/pending migrations.
    Status,
    /// Grant an application role what it needs to use the store and
    /// nothing more (PostgreSQL; run as the owner, after `migrate`): USAGE
    /// on the schema, DML on the tables, USAGE on the sequences, EXECUTE on
    /// the trigger functions. Prints each statement run.
    Grant {
        /// The role to grant to (it must exist).
        #[arg(long)]
        role: String,
    },
    /// Run the whole conformance suite against the database, each case in a
    /// scratch schema (PostgreSQL) or scratch file (SQLite) removed afterwards.
    Check,
    /// Run a short version of the benchmark workloads, each beside a raw-SQL
    /// baseline on the same database, in scratch schemas or files removed
    /// afterwards; print ops/s and store/baseline ratios.
    Bench {
        /// Timed calls per workload and side (the median is reported).
        #[arg(long, default_value_t = 15)]
        samples: usize,
    },
    /// Copy every row of one store into an empty one (any backend to any),
    /// then verify the target against the source.
    Copy {
        /// The store to read (never written).
        #[arg(long)]
        from: String,
        /// The empty store to fill (created and migrated if needed).
        #[arg(long)]
        to: String,
        /// Continue a copy that was interrupted.
        #[arg(long)]
        resume: bool,
        /// Rows per page, committed together with the checkpoint.
        #[arg(long, default_value_t = 10_000)]
        batch_rows: usize,
    },
    /// Import a database written by Handshake's own storage (SQLite or
    /// PostgreSQL, migrations 1-9) into an empty store (any backend),
    /// then verify every imported row against the source.
    Import {
        /// Handshake's database (never written).
        #[arg(long = "from-handshake")]
        from_handshake: String,
        /// The empty store to fill (created and migrated if needed).
        #[arg(long)]
        to: String,
        /// Write rows the store cannot hold to this file (JSON lines)
        /// and go on, instead of stopping at the first.
        #[arg(long)]
        quarantine: Option<std::path::PathBuf>,
        /// Continue an import that was interrupted or stopped.
        #[arg(long)]
        resume: bool,
        /// Rows per page, committed together with the checkpoint.
        #[arg(long, default_value_t = 10_000)]
        batch_rows: usize,
    },
    /// Compare two stores table by table (row counts and content digests);
    /// exits non-zero if they differ.
    Verify {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_message(&err),
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hsk-storage: error: {}", err.to_one_line());
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's own message (help, version, a usage error) with every
/// password cut out: clap quotes an argument it did not expect, and that
/// argument may be a database URL.
fn clap_message(err: &clap::Error) -> ExitCode {
    let mut text = err.render().to_string();
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy();
        let redacted = redact_url(&arg);
        if redacted != arg {
            text = text.replace(arg.as_ref(), &redacted);
        }
    }
    if err.use_stderr() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

/// The URL given, else `DATABASE_URL`, if either is set and not blank.
/// Refused when PostgreSQL is required and it is not a PostgreSQL URL (or
/// there is none: every command's default is SQLite).
fn given_url(cli_url: Option<String>) -> StorageResult<Option<String>> {
    let url = cli_url
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| !u.trim().is_empty());
    require_postgres_if_configured(url.as_deref())?;
    Ok(url)
}

/// The database `migrate` and `status` work on: the URL given, else
/// `DATABASE_URL`, else the default SQLite file.
fn url_or_env(cli_url: Option<String>) -> StorageResult<String> {
    Ok(given_url(cli_url)?.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()))
}

/// Where `check` and `bench` make their scratch databases: the URL given,
/// else `DATABASE_URL`, else temporary SQLite files.
fn scratch_target(cli_url: Option<String>) -> StorageResult<TestTarget> {
    Ok(match given_url(cli_url)? {
        Some(url) => TestTarget::from_url(&url)?,
        None => TestTarget::Sqlite { parent: None },
    })
}

fn bench(target: &TestTarget, samples: usize) -> StorageResult<ExitCode> {
    let sizes = Sizes::quick();
    // Fail with one clear line if the target cannot be used at all.
    drop(target.harness()?);
    println!("benchmark workloads against {}", target.describe());
    let bar = ProgressBar::new(workload_count(&sizes) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let figures = run_all(target, &sizes, samples, |figure| {
        bar.set_message(format!("{} {}", figure.group, figure.name));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let figures = figures?;
    println!(
        "{:12} {:36} {:>14} {:>14} {:>7}",
        "group", "workload", "store ops/s", "raw SQL ops/s", "ratio"
    );
    for f in &figures {
        println!(
            "{:12} {:36} {:>14.1} {:>14.1} {:>7.2}",
            f.group,
            f.name,
            f.store_ops_per_sec(),
            f.baseline_ops_per_sec(),
            f.ratio()
        );
    }
    println!("ratio: store time / raw-SQL time, medians of {samples} runs (1.00 = no overhead)");
    if let Some(speedup) = replace_speedup(&figures, sizes.blocks) {
        println!(
            "one replace_blocks of {n} blocks is {speedup:.0}x faster than {n} create_block calls",
            n = sizes.blocks
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> StorageResult<ExitCode> {
    match cli.command {
        Command::Migrate => {
            let url = url_or_env(cli.database_url)?;
            let store = open_for_maintenance(&url, &StorageConfig::default())?;
            let before = store.migration_status()?;
            store.run_migrations()?;
            let after = store.migration_status()?;
            println!("backend: {} ({})", store.backend(), redact_url(&url));
            for version in after.applied.iter().filter(|v| !before.applied.contains(v)) {
                println!("applied: {version}");
            }
            if before.pending.is_empty() {
                println!("nothing to do: the schema is up to date");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            let url = url_or_env(cli.database_url)?;
            let store = open_for_maintenance(&url, &StorageConfig::default())?;
            let status = store.migration_status()?;
            println!("backend: {} ({})", status.backend, redact_url(&url));
            println!(
                "schema version: {}",
                status.applied.last().map(String::as_str).unwrap_or("none")
            );
            let fingerprint = store.schema_fingerprint()?;
            let committed = handshake_storage::schema_info::committed_fingerprint(status.backend);
            println!(
                "schema fingerprint: {} ({})",
                fingerprint.hash,
                if fingerprint.to_file_text() == committed {
                    "as committed for this release"
                } else {
                    "differs from the one committed for this release"
                }
            );
            for version in &status.applied {
                println!("applied: {version}");
            }
            for version in &status.pending {
                println!("pending: {version}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Grant { role } => {
            let url = url_or_env(cli.database_url)?;
            let report = grant_application_role(&url, &role)?;
            println!(
                "granted to role {:?} on schema {:?} ({})",
                report.role,
                report.schema,
                redact_url(&url)
            );
            for statement in &report.statements {
                println!("{statement};");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Copy {
            from,
            to,
            resume,
            batch_rows,
        } => copy_cmd::copy(&from, &to, resume, batch_rows),
        Command::Import {
            from_handshake,
            to,
            quarantine,
            resume,
            batch_rows,
        } => import_cmd::import(&from_handshake, &to, quarantine, resume, batch_rows),
        Command::Verify { from, to } => copy_cmd::verify(&from, &to),
        Command::Bench { samples } => bench(&scratch_target(cli.database_url)?, samples),
        Command::Check => {
            let target = scratch_target(cli.database_url)?;
            // Fail with one clear line if the target cannot be used at all,
            // rather than once per case.
            drop(target.harness()?);
            println!("conformance suite against {}", target.describe());
            let outcomes = run_suite(&target, |outcome| {
                let ms = outcome.elapsed.as_secs_f64() * 1000.0;
                match (&outcome.failure, outcome.skipped) {
                    (Some(why), _) => println!("FAIL  {ms:9.1} ms  {}: {why}", outcome.name),
                    (None, Some(why)) => println!(
                        "ok    {ms:9.1} ms  {}: refused as it should be ({why})",
                        outcome.name
                    ),
                    (None, None) => println!("ok    {ms:9.1} ms  {}", outcome.name),
                }
            });
            let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
            println!("{} passed, {} failed", outcomes.len() - failed, failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
