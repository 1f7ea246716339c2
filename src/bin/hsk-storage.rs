//! `hsk-storage`: migrate, inspect and check a Handshake storage database.
//!
//! Every command takes `--database-url` (or `DATABASE_URL`, `.env`
//! honoured). Errors are one line on stderr and a non-zero exit; passwords
//! in URLs are never printed.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use handshake_storage::conformance::{run_suite, TestTarget};
use handshake_storage::{
    database_url_from_env, open_with_config, redact_url, StorageConfig, StorageResult,
};

#[derive(Parser)]
#[command(
    name = "hsk-storage",
    version,
    about = "Handshake storage: migrate, status, check"
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
    /// Show the backend, the schema version and applied/pending migrations.
    Status,
    /// Run the whole conformance suite against the database, each case in a
    /// scratch schema (PostgreSQL) or scratch file (SQLite) removed afterwards.
    Check,
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
            let line = err
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("hsk-storage: error: {line}");
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

fn url_or_env(cli_url: Option<String>) -> String {
    cli_url.unwrap_or_else(database_url_from_env)
}

fn run(cli: Cli) -> StorageResult<ExitCode> {
    match cli.command {
        Command::Migrate => {
            let url = url_or_env(cli.database_url);
            let store = open_with_config(&url, &StorageConfig::default().run_migrations(false))?;
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
            let url = url_or_env(cli.database_url);
            let store = open_with_config(&url, &StorageConfig::default().run_migrations(false))?;
            let status = store.migration_status()?;
            println!("backend: {} ({})", status.backend, redact_url(&url));
            println!(
                "schema version: {}",
                status.applied.last().map(String::as_str).unwrap_or("none")
            );
            for version in &status.applied {
                println!("applied: {version}");
            }
            for version in &status.pending {
                println!("pending: {version}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let target = match cli
                .database_url
                .or_else(|| std::env::var("DATABASE_URL").ok())
            {
                Some(url) if !url.trim().is_empty() => TestTarget::from_url(&url)?,
                _ => TestTarget::Sqlite { parent: None },
            };
            // Fail with one clear line if the target cannot be used at all,
            // rather than once per case.
            drop(target.harness()?);
            println!("conformance suite against {}", target.describe());
            let outcomes = run_suite(&target, |outcome| {
                let ms = outcome.elapsed.as_secs_f64() * 1000.0;
                match &outcome.failure {
                    None => println!("ok    {ms:9.1} ms  {}", outcome.name),
                    Some(why) => println!("FAIL  {ms:9.1} ms  {}: {why}", outcome.name),
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
