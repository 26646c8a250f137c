//! One Apache ZooKeeper 3.8 standalone server (`ZooKeeperServerMain` from Debian's package) for
//! side-by-side checks: on a free loopback port, with its own temp directory (`zoo.cfg`, `zk.log` with
//! stdout and stderr, and `data/` unless the caller names a data directory), killed when dropped.
//!
//! Where Java or the package is missing, [`JavaStandalone::start`] prints why and returns `None`, so the
//! calling test skips instead of failing. The classpath is the one ensembles use
//! ([`crate::ensemble::zookeeper_classpath`]).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ensemble;

/// How long the JVM may take to serve (a JVM on a busy 2-core machine is slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Between two `srvr` probes during start-up.
const START_POLL: Duration = Duration::from_millis(100);
/// Lines of the log printed when a test panics while the server runs.
const LOG_TAIL_LINES: usize = 120;
/// JVM options every start gets: log to the console (captured in `zk.log`); start-up time matters more
/// than peak speed here, and a small heap leaves room for the rest of the test.
const JVM_OPTIONS: &[&str] =
    &["-Dzookeeper.root.logger=INFO,CONSOLE", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m"];

/// A running Apache ZooKeeper standalone server, killed on drop.
pub struct JavaStandalone {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
}

impl JavaStandalone {
    /// Starts on `data_dir` (a fresh `data/` in its temp directory if `None`) with `extra_cfg` appended to
    /// a minimal zoo.cfg; `None`, after printing why, where Java or Debian's package is missing.
    pub fn start(data_dir: Option<&Path>, extra_cfg: &str) -> Option<JavaStandalone> {
        Self::start_with(data_dir, extra_cfg, &[])
    }

    /// As [`start`](Self::start), with extra JVM options, e.g. system properties such as
    /// `-Dzookeeper.enforceQuota=true`.
    pub fn start_with(data_dir: Option<&Path>, extra_cfg: &str, java_options: &[&str]) -> Option<JavaStandalone> {
        let classpath = ensemble::zookeeper_or_skip()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = data_dir.map_or_else(|| dir.path().join("data"), Path::to_owned);
        let port = free_port();
        let cfg = dir.path().join("zoo.cfg");
        let text = format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\n{extra_cfg}\n",
            data_dir.display()
        );
        std::fs::write(&cfg, text).expect("write zoo.cfg");
        let log = std::fs::File::create(dir.path().join("zk.log")).expect("create zk.log");
        let child = Command::new("java")
            .args(JVM_OPTIONS)
            .args(java_options)
            .arg(format!("-Dzookeeper.log.dir={}", dir.path().display()))
            .args(["-cp", &classpath, "org.apache.zookeeper.server.ZooKeeperServerMain"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone zk.log"))
            .stderr(log)
            .spawn()
            .expect("start java");
        let mut zookeeper = JavaStandalone { child, port, dir, data_dir };
        zookeeper.wait_until_serving();
        Some(zookeeper)
    }

    /// The port opens before the database is loaded; `srvr` names the mode only once it serves.
    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.four_letter("srvr").contains("Mode: standalone") {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ZooKeeper exited with {status} during start-up:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not serve within {START_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(START_POLL);
        }
    }

    /// `127.0.0.1:<port>`, for clients.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The data directory (dataDir) it runs on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Its stdout and stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("zk.log")).unwrap_or_default()
    }

    /// Sends a 4-letter word; empty on any failure. ZooKeeper may leave a connection made during its
    /// start-up unanswered, so reads are bounded.
    pub fn four_letter(&self, command: &str) -> String {
        ensemble::four_letter(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)), command)
    }
}

impl Drop for JavaStandalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("---- ZooKeeper {} log tail ----\n{}", self.address(), tail.join("\n"));
        }
    }
}

/// A port free a moment ago; should another process take it before ZooKeeper binds it, ZooKeeper exits
/// during start-up and says so in the log that the panic prints.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// ZooKeeper's shell (Java's `ZooKeeperMain`, Debian's package) running one command against `address`:
/// what it printed, less log and watcher lines. The caller has checked that the package is there.
pub fn shell(address: SocketAddr, command: &str) -> String {
    let classpath = ensemble::zookeeper_or_skip().expect("checked by the caller");
    let output = Command::new("java")
        .args(["-cp", &classpath, "org.apache.zookeeper.ZooKeeperMain", "-server", &address.to_string()])
        .args(command.split(' '))
        .output()
        .expect("run ZooKeeperMain");
    said(&(String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)))
}

/// ZooKeeper's shell started with `options` (JVM flags: TLS, JAAS, Kerberos) on `server`, fed `script`
/// on its standard input: what it printed, as [`said`] keeps it.
pub fn shell_script(options: &[String], server: &str, script: &str) -> String {
    use std::io::Write;
    let classpath = ensemble::zookeeper_or_skip().expect("checked by the caller");
    let mut child = Command::new("java")
        .args(options)
        .args(["-cp", &classpath, "org.apache.zookeeper.ZooKeeperMain", "-server", server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ZooKeeperMain");
    child.stdin.take().expect("piped").write_all(script.as_bytes()).expect("write the script");
    let output = child.wait_with_output().expect("ZooKeeperMain output");
    said(&(String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)))
}

/// What a shell printed (ZooKeeper's or fkcli), less log, connection and watcher lines.
pub fn said(text: &str) -> String {
    let is_log =
        |l: &str| [" INFO ", " WARN ", " ERROR ", "log4j:", "WATCHER::", "WatchedEvent"].iter().any(|p| l.contains(p));
    let said = |l: &&str| !is_log(l) && !l.trim().is_empty() && !l.starts_with("Connecting to ");
    text.lines().filter(said).collect::<Vec<_>>().join("\n")
}
