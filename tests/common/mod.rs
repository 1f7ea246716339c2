//! Shared by the concurrency and fault tests: versioned block sets (built
//! on `conformance::fixtures`, the one home of test data), a watchdog, a
//! small random source, and child processes (the test binary re-executed in
//! a mode chosen by an environment variable).
#![allow(dead_code)] // each test binary uses part of it

#[cfg(unix)]
pub mod cluster;
#[cfg(unix)]
pub mod formation;
#[cfg(unix)]
pub mod pki;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use handshake_storage::*;

pub use handshake_storage::conformance::fixtures::human;
use handshake_storage::conformance::fixtures::new_block;

/// A block with the given id and text (`fixtures::new_block` otherwise).
pub fn block(document_id: &str, sequence: i64, id: String, raw_content: String) -> NewBlock {
    NewBlock {
        raw_content,
        ..new_block(document_id, sequence, Some(&id))
    }
}

/// Version `version` of a document's blocks: `count` blocks whose ids and
/// contents all carry the version, so a mix of two versions shows.
pub fn versioned_blocks(document_id: &str, version: u64, count: usize) -> Vec<NewBlock> {
    (0..count)
        .map(|k| {
            block(
                document_id,
                k as i64,
                format!("v{version}-b{k}"),
                format!("version {version} block {k}"),
            )
        })
        .collect()
}

/// The one version `blocks` are wholly made of; panics on a mix or on a
/// set that is not exactly `versioned_blocks(_, v, count)`.
pub fn whole_version(blocks: &[Block], count: usize) -> u64 {
    assert_eq!(blocks.len(), count, "wrong number of blocks");
    let version: u64 = blocks[0]
        .raw_content
        .strip_prefix("version ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a versioned block: {:?}", blocks[0].raw_content));
    for (k, b) in blocks.iter().enumerate() {
        assert_eq!(b.id, format!("v{version}-b{k}"), "blocks mix versions");
        assert_eq!(b.raw_content, format!("version {version} block {k}"));
    }
    version
}

/// Runs `work` on its own thread and fails the test if it has not finished
/// within `bound`, instead of hanging CI. A panic inside `work` fails the
/// test too.
pub fn within<T: Send + 'static>(
    bound: Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = done.send(work());
    });
    match result.recv_timeout(bound) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish within {bound:?}: deadlock or hang")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let panic = worker
                .join()
                .expect_err("a worker that sent nothing panicked");
            std::panic::resume_unwind(panic)
        }
    }
}

/// xorshift64*: reproducible from the seed it prints, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_random(what: &str) -> Self {
        let seed = std::env::var("HSK_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0 | 1);
        eprintln!("{what}: seed {seed} (set HSK_TEST_SEED={seed} to replay)");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------
// Child processes

/// Selects the child's job; unset in a normal test run.
const CHILD_MODE: &str = "HSK_CHILD_MODE";
const CHILD_URL: &str = "HSK_CHILD_URL";
const CHILD_ARG: &str = "HSK_CHILD_ARG";
/// A file the child waits for before starting its work, so that several
/// children start at the same moment.
const CHILD_GO: &str = "HSK_CHILD_GO";
/// Lines the child prints for its parent start with this.
const REPORT: &str = "HSK-CHILD ";

/// The test binary again, running only its `child_process` test (ignored in
/// normal runs) in `mode`.
pub fn child(mode: &str, url: &str, arg: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args([
        "child_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_MODE, mode)
    .env(CHILD_URL, url)
    .env(CHILD_ARG, arg)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    cmd
}

/// A running child's report lines.
pub struct Reports(BufReader<ChildStdout>);

impl Reports {
    pub fn of(child: &mut Child) -> Self {
        Reports(BufReader::new(child.stdout.take().expect("piped stdout")))
    }

    /// The next report line (without the prefix), `None` when the child's
    /// output ended.
    pub fn next_report(&mut self) -> Option<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.0.read_line(&mut line).ok()? == 0 {
                return None;
            }
            // libtest may have begun the line with `test child_process ... `.
            if let Some(at) = line.find(REPORT) {
                return Some(line[at + REPORT.len()..].trim_end().to_string());
            }
        }
    }
}

fn report(text: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{REPORT}{text}").unwrap();
    out.flush().unwrap();
}

/// Starts `children` together: each reports `ready`, then waits for a go
/// file that this creates once all are ready.
pub fn start_together(mut commands: Vec<Command>, dir: &Path) -> Vec<(Child, Reports)> {
    let go = dir.join(format!("go-{}", uuid::Uuid::new_v4().simple()));
    let mut children: Vec<(Child, Reports)> = commands
        .iter_mut()
        .map(|cmd| {
            let mut child = cmd.env(CHILD_GO, &go).spawn().expect("spawn child process");
            let reports = Reports::of(&mut child);
            (child, reports)
        })
        .collect();
    for (_, reports) in &mut children {
        assert_eq!(reports.next_report().as_deref(), Some("ready"));
    }
    std::fs::write(&go, b"go").expect("create the go file");
    children
}

fn wait_for_go() {
    let Some(go) = std::env::var_os(CHILD_GO).map(PathBuf::from) else {
        return;
    };
    report("ready");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !go.exists() {
        assert!(Instant::now() < deadline, "never told to go");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Generous settings for children on a loaded machine.
pub fn patient_config() -> StorageConfig {
    StorageConfig::default()
        .connection_timeout(Duration::from_secs(60))
        .sqlite_busy_timeout(Duration::from_secs(60))
}

/// The body of each test binary's `child_process` test.
pub fn child_process_main() {
    let mode = std::env::var(CHILD_MODE)
        .expect("child_process runs only as a child of another test (HSK_CHILD_MODE unset)");
    let url = std::env::var(CHILD_URL).expect(CHILD_URL);
    let arg = std::env::var(CHILD_ARG).unwrap_or_default();
    wait_for_go();
    match mode.as_str() {
        "migrate" => {
            let store = open_with_config(&url, &patient_config()).expect("open and migrate");
            let status = store.migration_status().expect("migration status");
            assert!(status.pending.is_empty(), "{status:?}");
            report("migrated");
        }
        "replace-forever" => replace_forever(&url, &arg),
        "full-disk" => full_disk(&url, &arg),
        "kernel-claim-and-hold" => kernel_claim_and_hold(&url, &arg),
        other => panic!("unknown child mode {other:?}"),
    }
}

/// The worker of the kernel queue's kill test: claims session run `arg`
/// as `KILLED_WORKER` with a lease of `KILLED_WORKER_LEASE`, reports
/// `claimed <attempt>`, then holds the claim (never renewing) until killed.
pub const KILLED_WORKER: &str = "worker-to-be-killed";
pub const KILLED_WORKER_LEASE: Duration = Duration::from_secs(2);

fn kernel_claim_and_hold(url: &str, session_run_id: &str) {
    let store = open_with_config(url, &patient_config()).expect("open");
    let lease = store
        .claim_kernel_session_run(session_run_id, KILLED_WORKER, KILLED_WORKER_LEASE)
        .expect("claim")
        .expect("the run is claimable");
    report(&format!("claimed {}", lease.attempt_count));
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

pub const KILLED_BLOCKS: usize = 20_000;

/// Replaces the blocks of document `arg` with version after version until
/// killed, reporting `done <version> <millis>` after each commit.
fn replace_forever(url: &str, document_id: &str) {
    let store = open_with_config(url, &patient_config()).expect("open");
    let first = whole_version(&store.get_blocks(document_id).unwrap(), KILLED_BLOCKS);
    for version in first + 1.. {
        let started = Instant::now();
        store
            .replace_blocks(
                &human(),
                document_id,
                versioned_blocks(document_id, version, KILLED_BLOCKS),
            )
            .expect("replace_blocks");
        report(&format!("done {version} {}", started.elapsed().as_millis()));
    }
}

/// Bytes every write may add beyond the files' current sizes.
pub const FULL_DISK_HEADROOM: u64 = 64 * 1024;
pub const FULL_DISK_BLOCKS: usize = 2_000;

/// Caps this process's file size just above the database's (the disk is
/// then "full" for it), tries a large `replace_blocks` on document `arg`,
/// and reports `error <kind> <message>`, then what the store shows after.
fn full_disk(url: &str, document_id: &str) {
    let store = open_with_config(url, &patient_config()).expect("open");
    let before = store.get_blocks(document_id).unwrap();
    let path = url.strip_prefix("sqlite://").expect("a sqlite:// url");
    let largest = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{path}{suffix}")).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    let limit = largest + FULL_DISK_HEADROOM;
    // SAFETY: plain libc calls on this single-purpose child process; with
    // SIGXFSZ ignored, a write past the limit fails with EFBIG instead of
    // killing the process, as a full disk fails with ENOSPC.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let cap = libc::rlimit {
            rlim_cur: limit,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &cap), 0);
    }
    let big = (0..FULL_DISK_BLOCKS)
        .map(|k| block(document_id, k as i64, format!("big-{k}"), "x".repeat(4096)))
        .collect();
    match store.replace_blocks(&human(), document_id, big) {
        Ok(blocks) => report(&format!("ok {}", blocks.len())),
        Err(err) => report(&format!("error {} {err}", err.kind())),
    }
    let after = store.get_blocks(document_id).unwrap();
    report(&format!("unchanged {}", after == before));
}
