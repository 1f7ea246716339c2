//! A pg_auto_failover formation for one test: a monitor and two Postgres
//! nodes (a primary and its synchronous secondary) in a temporary
//! directory, on free loopback ports, run by `pg_autoctl` as the server
//! user. Stopped and removed when the guard drops, and by a reaper process
//! if this process dies first. Never the machine's main cluster.
//!
//! Needs `pg_autoctl` and the monitor's extension (Debian:
//! `postgresql-15-auto-failover pg-auto-failover-cli`).
//!
//! The monitor's health checks and the demotion timeout are shortened
//! (production defaults detect a dead primary in about 20 s and wait 30 s
//! for it to demote) so that a failover takes seconds; how each default
//! maps to production is in docs/operations.md, "Failover".

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::{bindir, check, free_port, give_to_server_user, is_root, reaper};

/// The monitor settings the formation runs with (milliseconds).
const MONITOR_SETTINGS: [(&str, u32); 6] = [
    ("pgautofailover.health_check_period", 500),
    ("pgautofailover.health_check_timeout", 1000),
    ("pgautofailover.health_check_max_retries", 1),
    ("pgautofailover.health_check_retry_delay", 200),
    ("pgautofailover.node_considered_unhealthy_timeout", 2000),
    ("pgautofailover.primary_demote_timeout", 3000),
];

/// Where pg_autoctl keeps its configuration, state and pid files: inside
/// the formation's directory, not the server user's home.
const XDG_DIRS: [(&str, &str); 3] = [
    ("XDG_CONFIG_HOME", "config"),
    ("XDG_DATA_HOME", "share"),
    ("XDG_RUNTIME_DIR", "run"),
];

/// The database the nodes serve.
pub const DATABASE: &str = "handshake";

/// One Postgres node of the formation.
pub struct Node {
    pub name: &'static str,
    pub port: u16,
}

/// A state change the monitor recorded (`pg_autoctl show events`).
#[derive(Clone, Debug)]
pub struct Event {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub node: String,
    pub reported: String,
    pub goal: String,
    pub description: String,
}

/// A running formation; stopped and removed on drop.
pub struct Formation {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    monitor_port: u16,
    pub nodes: [Node; 2],
    services: Vec<Child>,
    _reaper: Child,
}

impl Formation {
    /// Starts the monitor, then node1 (which becomes the primary), then
    /// node2 (cloned from it, the secondary); returns once the monitor
    /// sees `primary` and `secondary`. Panics with what failed.
    pub fn start() -> Formation {
        let installed = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|d| d.join("pg_autoctl").is_file())
        });
        assert!(
            installed,
            "pg_autoctl is not on PATH: the failover tests need pg_auto_failover \
             (Debian: apt-get install postgresql-15-auto-failover pg-auto-failover-cli; \
             `bash .ci/run` installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("hsk-pg-formation-")
            .tempdir()
            .expect("a temporary directory for the formation");
        give_to_server_user(dir.path());
        let bindir = bindir();
        let reaper = reaper(&stop_commands(dir.path(), &bindir), &[dir.path()]);
        let mut formation = Formation {
            bindir,
            monitor_port: free_port(),
            nodes: [
                Node {
                    name: "node1",
                    port: free_port(),
                },
                Node {
                    name: "node2",
                    port: free_port(),
                },
            ],
            services: Vec::new(),
            _reaper: reaper,
            dir,
        };
        formation.start_monitor();
        formation.start_node(0);
        formation.wait_for("node1 to run alone", |s| {
            s.contains(&("node1".into(), "single".into()))
        });
        formation.start_node(1);
        formation.wait_settled();
        formation
    }

    fn pgdata(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `program` to be run as the server user (through `runuser` when we
    /// are root: PostgreSQL refuses to run as root).
    fn server_user(&self, program: Command) -> Command {
        if !is_root() {
            return program;
        }
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(program.get_program())
            .args(program.get_args());
        command
    }

    /// `pg_autoctl` with this formation's private configuration, state and
    /// socket directories, as the server user.
    fn autoctl(&self) -> Command {
        let mut command = self.server_user(Command::new("pg_autoctl"));
        let path = format!(
            "{}:{}",
            self.bindir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        for (var, sub) in XDG_DIRS {
            command.env(var, self.dir.path().join(sub));
        }
        command
            .env("PGHOST", self.dir.path())
            .env("PATH", path)
            .current_dir(self.dir.path());
        command
    }

    /// Runs `pg_autoctl args` to its end; panics on failure.
    fn autoctl_run(&self, args: &[&str]) -> String {
        let out = self
            .autoctl()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run pg_autoctl (is it installed?): {e}"));
        check(&format!("pg_autoctl {}", args.join(" ")), &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `pg_autoctl create ... --run` as a service child, its output
    /// in `<name>.log`.
    fn spawn_service(&self, name: &str, args: &[&str]) -> Child {
        let log =
            std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("a log file");
        self.autoctl()
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start pg_autoctl (is it installed?): {e}"))
    }

    fn monitor_uri(&self) -> String {
        format!(
            "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
            self.monitor_port
        )
    }

    /// An initialised, stopped data directory for pg_autoctl to adopt,
    /// with its Unix socket in the formation's directory (not the system's
    /// `/var/run/postgresql`, which another user may not write to) and no
    /// fsync (a test's data need not survive the machine). A secondary's
    /// base backup copies these settings.
    fn init_data(&self, name: &str) {
        let pgdata = self.pgdata(name);
        let out = self
            .server_user(Command::new(self.bindir.join("initdb")))
            .args(["-D", &pgdata.to_string_lossy()])
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb: {e}"));
        check("initdb", &out);
        let conf = pgdata.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(&format!(
            "unix_socket_directories = '{}'\nfsync = off\n",
            self.dir.path().display()
        ));
        std::fs::write(&conf, text).expect("write postgresql.conf");
    }

    fn start_monitor(&mut self) {
        self.init_data("monitor");
        let pgdata = self.pgdata("monitor");
        let pg_ctl = self.bindir.join("pg_ctl");
        let child = self.spawn_service(
            "monitor",
            &[
                "create",
                "monitor",
                "--pgdata",
                &pgdata.to_string_lossy(),
                "--pgport",
                &self.monitor_port.to_string(),
                "--pgctl",
                &pg_ctl.to_string_lossy(),
                "--hostname",
                "127.0.0.1",
                "--auth",
                "trust",
                "--no-ssl",
                "--run",
            ],
        );
        self.services.push(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .monitor_sql("SELECT count(*) FROM pgautofailover.formation")
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the monitor did not start within 60 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for (name, ms) in MONITOR_SETTINGS {
            self.monitor_sql(&format!("ALTER SYSTEM SET {name} = {ms}"))
                .expect("tune the monitor");
        }
        self.monitor_sql("SELECT pg_reload_conf()")
            .expect("reload the monitor's settings");
    }

    fn start_node(&mut self, n: usize) {
        // The first node's data is made here; the second's is a base
        // backup of the first, made by pg_autoctl.
        if n == 0 {
            self.init_data(self.nodes[n].name);
        }
        let pgdata = self.pgdata(self.nodes[n].name);
        let pg_ctl = self.bindir.join("pg_ctl");
        let child = self.spawn_service(
            self.nodes[n].name,
            &[
                "create",
                "postgres",
                "--pgdata",
                &pgdata.to_string_lossy(),
                "--pgport",
                &self.nodes[n].port.to_string(),
                "--pgctl",
                &pg_ctl.to_string_lossy(),
                "--listen",
                "127.0.0.1",
                "--hostname",
                "127.0.0.1",
                "--name",
                self.nodes[n].name,
                "--dbname",
                DATABASE,
                "--auth",
                "trust",
                "--no-ssl",
                "--monitor",
                &self.monitor_uri(),
                "--run",
            ],
        );
        self.services.push(child);
    }

    /// Runs SQL on the monitor's database (as `postgres`, trusted).
    pub fn monitor_sql(&self, sql: &str) -> Result<String, String> {
        self.sql(self.monitor_port, "pg_auto_failover", sql)
    }

    /// Runs SQL through `psql`; the rows unaligned, one per line.
    pub fn sql(&self, port: u16, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bindir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", db, "-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `(node name, reported state)` of every node with its goal reached,
    /// as the monitor sees them.
    pub fn states(&self) -> Vec<(String, String)> {
        self.monitor_sql(
            "SELECT nodename, reportedstate FROM pgautofailover.node \
             WHERE reportedstate = goalstate ORDER BY nodename",
        )
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('|'))
        .map(|(name, state)| (name.to_string(), state.to_string()))
        .collect()
    }

    /// Waits (up to 60 s) until `ready` holds for the monitor's states.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&[(String, String)]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let states = self.states();
            if ready(&states) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited 60 s for {what}; the monitor shows {states:?}\n{}",
                self.logs()
            );
            // A new secondary's base backup waits for a checkpoint, which
            // is spread over minutes unless one is asked for.
            if let Some(primary) = self.primary() {
                let _ = self.sql(primary.port, "postgres", "CHECKPOINT");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until one node is `primary` and the other `secondary`.
    pub fn wait_settled(&self) {
        self.wait_for("a primary and a secondary", |states| {
            let count = |state: &str| states.iter().filter(|(_, s)| s == state).count();
            count("primary") == 1 && count("secondary") == 1
        });
    }

    /// The node the monitor has as primary (or writable alone), if any.
    pub fn primary(&self) -> Option<&Node> {
        let states = self.states();
        self.nodes.iter().find(|node| {
            states.iter().any(|(name, state)| {
                name == node.name && matches!(state.as_str(), "primary" | "wait_primary" | "single")
            })
        })
    }

    /// The multi-host URL of the formation's database: every node, the
    /// writable one chosen by libpq.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{DATABASE}?target_session_attrs=read-write",
            self.nodes[0].port, self.nodes[1].port
        )
    }

    /// `pg_autoctl perform failover`: the monitor demotes the primary and
    /// promotes the secondary; returns when the formation has settled.
    pub fn perform_failover(&self) {
        let monitor = self.pgdata("monitor");
        self.autoctl_run(&[
            "perform",
            "failover",
            "--pgdata",
            &monitor.to_string_lossy(),
            "--wait",
            "60",
        ]);
    }

    /// Stops `node`'s pg_autoctl and Postgres at once (`pg_autoctl stop
    /// --immediate`: Postgres gets an immediate shutdown, as in a crash).
    pub fn stop_immediately(&self, node: &Node) {
        let pgdata = self.pgdata(node.name);
        self.autoctl_run(&["stop", "--pgdata", &pgdata.to_string_lossy(), "--immediate"]);
    }

    /// The monitor's events after `after` (an event id), oldest first,
    /// read from `pg_autoctl show events --json`.
    pub fn events_after(&self, after: i64) -> Vec<Event> {
        let monitor = self.pgdata("monitor");
        let json = self.autoctl_run(&[
            "show",
            "events",
            "--pgdata",
            &monitor.to_string_lossy(),
            "--count",
            "200",
            "--json",
        ]);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("pg_autoctl show events --json: {e}: {json}"));
        let text =
            |row: &serde_json::Value, key: &str| row[key].as_str().unwrap_or_default().to_string();
        let mut events: Vec<Event> = rows
            .iter()
            .map(|row| Event {
                id: row["eventid"].as_i64().unwrap_or_default(),
                at: chrono::DateTime::parse_from_rfc3339(&text(row, "eventtime"))
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(|e| panic!("event time in {row}: {e}")),
                node: text(row, "nodename"),
                reported: text(row, "reportedstate"),
                goal: text(row, "goalstate"),
                description: text(row, "description"),
            })
            .filter(|event| event.id > after)
            .collect();
        events.sort_by_key(|event| event.id);
        events
    }

    /// The id of the monitor's latest event.
    pub fn last_event_id(&self) -> i64 {
        self.monitor_sql("SELECT coalesce(max(eventid), 0) FROM pgautofailover.event")
            .ok()
            .and_then(|out| out.trim().parse().ok())
            .unwrap_or_default()
    }

    /// Every service's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["monitor", "node1", "node2"] {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            out.push_str(&format!("--- {name}.log (last lines)\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// The command lines that stop a formation in `dir` at once, whatever
/// state it is in: each node's and the monitor's pg_autoctl, then each
/// data directory's Postgres (in case its pg_autoctl is gone).
fn stop_commands(dir: &Path, bindir: &Path) -> Vec<Vec<String>> {
    let user: Vec<String> = if is_root() {
        ["runuser", "-u", "postgres", "--"]
            .map(String::from)
            .to_vec()
    } else {
        Vec::new()
    };
    let env: Vec<String> = XDG_DIRS
        .iter()
        .map(|(var, sub)| format!("{var}={}", dir.join(sub).display()))
        .collect();
    let mut lines = Vec::new();
    for name in ["node1", "node2", "monitor"] {
        let pgdata = dir.join(name).to_string_lossy().into_owned();
        let mut line = user.clone();
        line.push("env".into());
        line.extend(env.iter().cloned());
        line.extend(["pg_autoctl", "stop", "--immediate", "--pgdata"].map(String::from));
        line.push(pgdata.clone());
        lines.push(line);
        let mut line = user.clone();
        line.push(bindir.join("pg_ctl").to_string_lossy().into_owned());
        line.extend(["-D".into(), pgdata]);
        line.extend(["-m", "immediate", "-w", "stop"].map(String::from));
        lines.push(line);
    }
    lines
}

impl Drop for Formation {
    fn drop(&mut self) {
        for line in stop_commands(self.dir.path(), &self.bindir) {
            let _ = Command::new(&line[0])
                .args(&line[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for child in &mut self.services {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
