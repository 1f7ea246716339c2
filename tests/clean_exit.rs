//! A short-lived program on PostgreSQL exits cleanly: "open, ping, return
//! from main", run as its own process 200 times with the default `sslmode`
//! against the test server, and 200 times with `sslmode=require` against a
//! private cluster serving TLS. Every exit must be status 0.
//!
//! Why: the pool opens connections on its own worker threads, and libpq
//! sets up OpenSSL on them. The vendored OpenSSL used to tear itself down in
//! an `atexit` handler while such a thread was still connecting, and about
//! one process in twenty died with SIGSEGV after `main` returned.
//!
//! Its own test binary without libtest's harness, so the child really is
//! "open, ping, return from main" and nothing else.

mod common;

use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::cluster::{ClusterOptions, PgCluster};

/// Set in a child: the URL to open.
const CHILD_URL: &str = "HSK_CLEAN_EXIT_CHILD_URL";
const RUNS: usize = 200;
/// Children running at once.
const PARALLEL: usize = 4;

fn main() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        return child(&url);
    }
    let server_url = std::env::var("POSTGRES_TEST_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| panic!("{}", handshake_storage::conformance::POSTGRES_URL_HELP));

    let mut failed = 0;
    failed += runs_exit_cleanly("default sslmode, test server", &server_url);
    let tls = PgCluster::start(ClusterOptions {
        tls: true,
        ..ClusterOptions::default()
    });
    failed += runs_exit_cleanly(
        "sslmode=require, private TLS cluster",
        &tls.url("sslmode=require"),
    );
    drop(tls);
    println!("clean_exit: {} passed, {failed} failed", 2 - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}

/// The program a user writes: open a store, ping it, return from `main`.
fn child(url: &str) {
    let store = match handshake_storage::open(url) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("open failed: {err}");
            std::process::exit(2);
        }
    };
    if let Err(err) = store.ping() {
        eprintln!("ping failed: {err}");
        std::process::exit(3);
    }
}

/// Runs the child `RUNS` times against `url`; prints the outcome and
/// returns 1 if any exit was not clean, else 0.
fn runs_exit_cleanly(what: &str, url: &str) -> u32 {
    let exe = std::env::current_exe().expect("the test binary's path");
    let next = AtomicUsize::new(0);
    let bad: Mutex<Vec<(ExitStatus, String)>> = Mutex::default();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < RUNS {
                    let out = Command::new(&exe)
                        .env(CHILD_URL, url)
                        .stdin(Stdio::null())
                        .output()
                        .expect("spawn the child");
                    if !out.status.success() {
                        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                        bad.lock().unwrap().push((out.status, stderr));
                    }
                }
            });
        }
    });
    let bad = bad.into_inner().unwrap();
    if bad.is_empty() {
        println!("test {what}: {RUNS} of {RUNS} processes exited cleanly ... ok");
        return 0;
    }
    println!(
        "test {what}: {} of {RUNS} processes did not exit cleanly ... FAILED",
        bad.len()
    );
    for (status, stderr) in bad.iter().take(5) {
        println!("  {status}: {}", stderr.trim());
    }
    1
}
