//! A private PostgreSQL cluster for one test: `initdb` into a temporary
//! directory, started on a free loopback port, stopped (and its files
//! removed) when the guard drops. Never the machine's main cluster.
//!
//! PostgreSQL refuses to run as root; as root the server binaries run as
//! the `postgres` user through `runuser`. The binaries come from
//! `pg_config --bindir`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// What to set up besides a plain cluster.
#[derive(Default)]
pub struct ClusterOptions {
    /// Serve TLS with a fresh self-signed certificate (`ssl = on`).
    pub tls: bool,
}

/// A running private cluster; stopped and removed on drop.
pub struct PgCluster {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PgCluster {
    /// Starts a cluster or panics with what failed (a test needs it).
    pub fn start(options: ClusterOptions) -> PgCluster {
        let bindir = bindir();
        let dir = tempfile::Builder::new()
            .prefix("hsk-pg-cluster-")
            .tempdir()
            .expect("a temporary directory for the cluster");
        let cluster = PgCluster {
            bindir,
            port: free_port(),
            dir,
        };
        cluster.give_to_server_user(cluster.dir.path());
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_connections = 100\n",
            cluster.port,
            cluster.dir.path().display()
        );
        if options.tls {
            cluster.make_certificate();
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        let conf_path = cluster.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).expect("postgresql.conf");
        text.push_str(&conf);
        std::fs::write(&conf_path, text).expect("write postgresql.conf");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-l",
                &cluster.dir.path().join("server.log").to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        cluster.wait_ready();
        cluster
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for the `postgres` database of this cluster, with extra query
    /// parameters (`sslmode=require`, ...).
    pub fn url(&self, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "?" };
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres{sep}{query}",
            self.port
        )
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A self-signed certificate for `localhost` / 127.0.0.1, made with the
    /// `openssl` command line tool.
    fn make_certificate(&self) {
        let data = self.data();
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(data.join("server.key"))
            .arg("-out")
            .arg(data.join("server.crt"))
            .output()
            .expect("the `openssl` command line tool is needed to make a test certificate");
        check("openssl req", &out);
        self.give_to_server_user(&data);
        let key = data.join("server.key");
        set_mode(&key, 0o600);
    }

    /// Runs a server binary, as the `postgres` user when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bindir.join(program);
        let out = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        } else {
            Command::new(&path)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        }
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        check(program, &out);
        out
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(self.bindir.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "private cluster on port {} not ready after 60 s: {}",
                self.port,
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn give_to_server_user(&self, path: &Path) {
        if is_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .output()
                .expect("chown");
            check("chown", &out);
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let path = self.bindir.join("pg_ctl");
        let data = self.data();
        let args = [
            "-D",
            &data.to_string_lossy(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]
        .map(String::from);
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(&args)
                .output()
        } else {
            Command::new(&path).args(&args).output()
        };
    }
}

fn bindir() -> PathBuf {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("`pg_config` (PostgreSQL's server package) is needed to start a private cluster");
    check("pg_config --bindir", &out);
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

#[track_caller]
fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
