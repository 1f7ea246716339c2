//! Killing a copier or importer mid-work: a child process (an ignored test
//! of the same binary) runs the work and prints a progress line per page;
//! the parent SIGKILLs it after a number of them and a random pause, so the
//! kill lands inside a page's read, write or commit. Then the parent
//! resumes, retrying while the server still holds the dead child's lock.
//! Shared by `tests/copy.rs` and `tests/import.rs`.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use handshake_storage::{ErrorKind, StorageResult};
use uuid::Uuid;

/// A random number below `n`.
pub fn random_below(n: u64) -> u64 {
    Uuid::new_v4().as_u64_pair().0 % n
}

/// Runs the ignored test `child` of this test binary with `envs`, waits
/// for `reports` lines of its output containing `progress`, pauses up to
/// 30 ms and SIGKILLs it. Panics if the child ends before the kill.
pub fn kill_mid_work(child: &str, envs: &[(&str, &str)], progress: &str, reports: u64) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut process = command.spawn().unwrap();
    let mut lines = std::io::BufReader::new(process.stdout.take().unwrap()).lines();
    let mut seen = 0;
    while seen < reports {
        match lines.next() {
            Some(line) if line.as_ref().unwrap().contains(progress) => seen += 1,
            Some(_) => {}
            None => panic!("{child} ended before it was killed"),
        }
    }
    let pause = random_below(30);
    std::thread::sleep(Duration::from_millis(pause));
    process.kill().unwrap(); // SIGKILL
    let status = process.wait().unwrap();
    assert!(!status.success(), "{child} finished before the kill");
    eprintln!("{child}: killed after {reports} reports + {pause} ms");
}

/// Reruns a resumable `run` until it succeeds: right after a kill the
/// server may not yet have noticed the dead process's connection is gone,
/// and still holds its lock (a `Conflict`), for up to 30 s.
pub fn resume_to_the_end<T>(mut run: impl FnMut() -> StorageResult<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match run() {
            Ok(report) => return report,
            Err(e) if e.kind() == ErrorKind::Conflict && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("resume failed: {e}"),
        }
    }
}
