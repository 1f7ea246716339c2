//! A private PostgreSQL cluster for one test: `initdb` into a temporary
//! directory, started on a free loopback port, stopped (and its files
//! removed) when the guard drops. Never the machine's main cluster.
//! A cluster can serve streaming replicas ([`ClusterOptions::replication`]),
//! and [`PgCluster::replica_of`] makes one with `pg_basebackup -R`, with a
//! `recovery_min_apply_delay` so that its lag is deterministic.
//!
//! PostgreSQL refuses to run as root; as root the server binaries run as
//! the `postgres` user through `runuser`. The binaries come from
//! `pg_config --bindir`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What to set up besides a plain cluster.
#[derive(Default)]
pub struct ClusterOptions {
    /// Serve TLS with a fresh self-signed certificate (`ssl = on`).
    pub tls: bool,
    /// Serve TLS with these files instead (overrides `tls`).
    pub tls_files: Option<TlsFiles>,
    /// The whole of `pg_hba.conf` (default: initdb's, trust for all).
    pub hba: Option<String>,
    /// Serve streaming replicas: `wal_level = replica`, WAL senders, and
    /// enough WAL kept for a replica stopped for a while to catch up.
    pub replication: bool,
}

/// A server certificate and key, and the CA that client certificates must
/// be signed by (`ssl_ca_file`; none: client certificates are not asked
/// for).
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
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
        let cluster = PgCluster::new_dir();
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
        let mut conf = String::from("fsync = off\nmax_connections = 100\n");
        if let Some(files) = &options.tls_files {
            cluster.install_certificate(files);
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            if files.client_ca.is_some() {
                conf.push_str("ssl_ca_file = 'client_ca.crt'\n");
            }
        } else if options.tls {
            cluster.make_certificate();
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        if let Some(hba) = &options.hba {
            std::fs::write(cluster.data().join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        }
        if options.replication {
            conf.push_str("wal_level = replica\nmax_wal_senders = 10\nwal_keep_size = '512MB'\n");
        }
        cluster.configure(&conf);
        cluster.first_start()
    }

    /// A streaming replica of `primary` (which must have been started with
    /// `replication`), made with `pg_basebackup -R` on a port of its own,
    /// applying WAL no sooner than `apply_delay` after the primary's commit.
    /// Returns once the replica accepts connections.
    pub fn replica_of(primary: &PgCluster, apply_delay: Duration) -> PgCluster {
        let cluster = PgCluster::new_dir();
        cluster.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                &cluster.data().to_string_lossy(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        // `hot_standby_feedback` keeps the primary from vacuuming rows a
        // replica query still reads, so such queries are not cancelled.
        cluster.configure(&format!(
            "hot_standby = on\nhot_standby_feedback = on\n\
             recovery_min_apply_delay = '{}ms'\n",
            apply_delay.as_millis()
        ));
        cluster.first_start()
    }

    /// Starts a new cluster's server. The port was free when it was picked
    /// but may have been taken since (other tests start servers too): then
    /// a new port, up to three times.
    fn first_start(mut self) -> PgCluster {
        for attempt in 1.. {
            let args = self.start_args();
            let out = self.run_unchecked(
                "pg_ctl",
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            if out.status.success() {
                self.wait_ready();
                return self;
            }
            let log = self.server_log();
            let port_taken = log.contains("could not bind") || log.contains("already in use");
            if !port_taken || attempt == 3 {
                check("pg_ctl start", &out);
                panic!("pg_ctl start failed: {log}");
            }
            self.port = free_port();
            self.configure("");
        }
        unreachable!("the loop returns or panics")
    }

    fn start_args(&self) -> Vec<String> {
        [
            "-D",
            &self.data().to_string_lossy(),
            "-l",
            &self.dir.path().join("server.log").to_string_lossy(),
            "-w",
            "-t",
            "60",
            "start",
        ]
        .map(String::from)
        .to_vec()
    }

    /// An empty temporary directory owned by the server user, and a port.
    fn new_dir() -> PgCluster {
        let dir = tempfile::Builder::new()
            .prefix("hsk-pg-cluster-")
            .tempdir()
            .expect("a temporary directory for the cluster");
        let cluster = PgCluster {
            bindir: bindir(),
            port: free_port(),
            dir,
        };
        cluster.give_to_server_user(cluster.dir.path());
        cluster
    }

    /// Appends `extra` to postgresql.conf after this cluster's own address
    /// and socket directory (later lines win over a copied primary's).
    fn configure(&self, extra: &str) {
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n{extra}",
            self.port,
            self.dir.path().display()
        );
        let conf_path = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).expect("postgresql.conf");
        text.push_str(&conf);
        std::fs::write(&conf_path, text).expect("write postgresql.conf");
    }

    /// Starts the server (again, after [`PgCluster::stop`]) and waits until
    /// it accepts connections.
    pub fn start_server(&self) {
        let args = self.start_args();
        let out = self.run_unchecked(
            "pg_ctl",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        if !out.status.success() {
            panic!(
                "pg_ctl start failed ({}): {}\nserver log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.server_log()
            );
        }
        self.wait_ready();
    }

    /// Stops the server (fast shutdown: sessions are cut), keeping its
    /// files, so that [`PgCluster::start_server`] can start it again.
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
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

    /// Copies a certificate and key (and the client CA) into the data
    /// directory, where `ssl_cert_file` and friends find them.
    fn install_certificate(&self, files: &TlsFiles) {
        let data = self.data();
        let copy = |from: &Path, to: &str| {
            std::fs::copy(from, data.join(to))
                .unwrap_or_else(|e| panic!("copy {} into the cluster: {e}", from.display()));
        };
        copy(&files.cert, "server.crt");
        copy(&files.key, "server.key");
        if let Some(ca) = &files.client_ca {
            copy(ca, "client_ca.crt");
        }
        self.give_to_server_user(&data);
        set_mode(&data.join("server.key"), 0o600);
    }

    /// Runs SQL as `postgres` through `psql` on the cluster's Unix socket
    /// (whatever `pg_hba.conf` says of TCP); panics if it fails.
    pub fn psql(&self, sql: &str) -> String {
        let dir = self.dir.path().to_string_lossy().into_owned();
        let port = self.port.to_string();
        let out = self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &dir,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A process that stops this server and removes its files (and
    /// `also_remove`) when this test process exits, however it exits: for
    /// a cluster kept in a static, which is never dropped.
    pub fn reaper(&self, also_remove: &[&Path]) -> Child {
        let mut dirs = vec![self.dir.path()];
        dirs.extend_from_slice(also_remove);
        reaper(&[self.stop_now_command()], &dirs)
    }

    /// Runs a server binary, as the `postgres` user when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self.run_unchecked(program, args);
        check(program, &out);
        out
    }

    /// [`PgCluster::run`] without the check: the caller looks at the status.
    fn run_unchecked(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bindir.join(program);
        if is_root() {
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
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()))
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
        give_to_server_user(path);
    }
}

impl PgCluster {
    /// The command line that stops this server at once, whatever state it
    /// is in (run as the server user when we are root).
    fn stop_now_command(&self) -> Vec<String> {
        let mut line = Vec::new();
        if is_root() {
            line.extend(["runuser", "-u", "postgres", "--"].map(String::from));
        }
        line.push(self.bindir.join("pg_ctl").to_string_lossy().into_owned());
        line.extend(["-D".into(), self.data().to_string_lossy().into_owned()]);
        line.extend(["-m", "immediate", "-w", "stop"].map(String::from));
        line
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let line = self.stop_now_command();
        let _ = Command::new(&line[0]).args(&line[1..]).output();
    }
}

/// A primary and one streaming replica (apply delay 0), started once per
/// test process on first use and shared by every test in it. Statics are
/// never dropped, so a reaper process stops both servers and removes their
/// files when this process exits, however it exits (it waits for the end
/// of a pipe only this process holds).
pub struct SharedPair {
    pub primary: PgCluster,
    pub replica: PgCluster,
    /// Never waited for: it outlives this process by design.
    _reaper: Child,
}

pub fn shared_pair() -> &'static SharedPair {
    static PAIR: OnceLock<SharedPair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let primary = PgCluster::start(ClusterOptions {
            replication: true,
            ..ClusterOptions::default()
        });
        let replica = PgCluster::replica_of(&primary, Duration::ZERO);
        let reaper = reaper(
            &[replica.stop_now_command(), primary.stop_now_command()],
            &[replica.dir.path(), primary.dir.path()],
        );
        SharedPair {
            primary,
            replica,
            _reaper: reaper,
        }
    })
}

/// A process that waits for its standard input to close (this process
/// exiting closes it), then runs the command lines `stop` and removes
/// `dirs`. In a session of its own, so a Ctrl-C to the test run does not
/// kill it first.
pub fn reaper(stop: &[Vec<String>], dirs: &[&Path]) -> Child {
    let quote = |arg: &str| format!("'{}'", arg.replace('\'', "'\\''"));
    let mut script = String::from("cat >/dev/null\n");
    for line in stop {
        let line: Vec<String> = line.iter().map(|arg| quote(arg)).collect();
        script.push_str(&line.join(" "));
        script.push_str(" >/dev/null 2>&1\n");
    }
    for dir in dirs {
        script.push_str(&format!("rm -rf {}\n", quote(&dir.display().to_string())));
    }
    let mut command = Command::new("sh");
    command
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::setsid();
            Ok(())
        });
    }
    // The child keeps the write end of its stdin pipe open for as long as
    // this process lives.
    command.spawn().expect("spawn the cluster reaper")
}

pub fn bindir() -> PathBuf {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("`pg_config` (PostgreSQL's server package) is needed to start a private cluster");
    check("pg_config --bindir", &out);
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Makes `path` (recursively) the server user's, when we are root.
pub fn give_to_server_user(path: &Path) {
    if is_root() {
        let out = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .output()
            .expect("chown");
        check("chown", &out);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

#[track_caller]
pub fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
