//! Test harness: starts the real `ferrokeeper` binary on a free loopback port with its own data
//! directory, and a raw protocol client for what third-party clients cannot send (malformed frames,
//! unknown opcodes, exact bytes).

pub mod ensemble;
pub mod java;
pub mod kazoo;
pub mod kdc;
pub mod netns;
pub mod pki;
pub mod quorum_auth;
pub mod raw;
pub mod sim;

/// Shorthands for tests that drive the server through the third-party `zookeeper-client` crate.
pub mod zk {
    use std::time::Duration;

    pub use zookeeper_client::*;

    /// Persistent, world-open.
    pub fn persistent() -> CreateOptions<'static> {
        CreateMode::Persistent.with_acls(Acls::anyone_all())
    }

    /// A client with a 10 s session.
    pub async fn connect(server: &crate::TestServer) -> Client {
        Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&server.address())
            .await
            .expect("connect")
    }

    /// A write load on an ensemble (writes through a rotating member) and the paths it got acknowledged.
    pub struct WriteLoad {
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        /// The longest time between two acknowledged writes so far, and when it ended.
        longest_gap: std::sync::Arc<std::sync::Mutex<(Duration, Option<std::time::Instant>)>>,
        writer: tokio::task::JoinHandle<()>,
    }

    impl WriteLoad {
        pub fn start(connect_string: String) -> WriteLoad {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let longest_gap = std::sync::Arc::new(std::sync::Mutex::new((Duration::ZERO, None)));
            let writer = start_writer(connect_string, stop.clone(), acked.clone(), longest_gap.clone());
            WriteLoad { stop, acked, longest_gap, writer }
        }

        /// The longest time between two acknowledged writes so far (the write gap a failover makes).
        pub fn longest_gap(&self) -> Duration {
            self.longest_gap.lock().expect("the writer never panics holding it").0
        }

        /// When the longest gap so far ended (the write acknowledged after it).
        pub fn longest_gap_ended(&self) -> Option<std::time::Instant> {
            self.longest_gap.lock().expect("the writer never panics holding it").1
        }

        /// How many writes were acknowledged so far.
        pub fn acknowledged(&self) -> usize {
            self.acked.lock().expect("the writer never panics holding it").len()
        }

        /// Stops the load; the paths it got acknowledged.
        pub async fn finish(self) -> Vec<String> {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            self.writer.await.expect("the writer task");
            self.acked.lock().expect("the writer never panics holding it").clone()
        }
    }

    /// Writes through a rotating member until told to stop, recording every acknowledged path.
    fn start_writer(
        connect_string: String,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        longest_gap: std::sync::Arc<std::sync::Mutex<(Duration, Option<std::time::Instant>)>>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut n = 0;
            let mut last_ack: Option<std::time::Instant> = None;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(Ok(c)) = tokio::time::timeout(
                    Duration::from_secs(2),
                    Client::connector().with_session_timeout(Duration::from_secs(4)).connect(&connect_string),
                )
                .await
                else {
                    continue;
                };
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let path = format!("/load-{n}");
                    n += 1;
                    match tokio::time::timeout(Duration::from_secs(2), c.create(&path, b"x", &persistent())).await {
                        Ok(Ok(_)) => {
                            acked.lock().unwrap().push(path);
                            let now = std::time::Instant::now();
                            if let Some(last) = last_ack {
                                let mut longest = longest_gap.lock().unwrap();
                                if now - last > longest.0 {
                                    *longest = (now - last, Some(now));
                                }
                            }
                            last_ack = Some(now);
                        }
                        _ => break,
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
    }

    /// Every znode but `/zookeeper`'s, with its data and stat.
    pub type Tree = std::collections::BTreeMap<String, (Vec<u8>, Stat)>;

    /// The whole tree as `client` reads it (every node must be readable by it).
    pub async fn read_tree(client: &Client) -> Tree {
        let mut tree = Tree::new();
        let mut pending = vec!["/".to_owned()];
        while let Some(path) = pending.pop() {
            let (data, stat) = client.get_data(&path).await.unwrap_or_else(|e| panic!("read {path}: {e}"));
            for child in client.list_children(&path).await.unwrap_or_else(|e| panic!("list {path}: {e}")) {
                let child = if path == "/" { format!("/{child}") } else { format!("{path}/{child}") };
                if child != "/zookeeper" {
                    pending.push(child);
                }
            }
            tree.insert(path, (data, stat));
        }
        tree
    }

    /// How long [`synced_client`] keeps trying.
    const SYNC_PATIENCE: Duration = Duration::from_secs(60);

    /// A session on `address` (of `session_timeout`) whose `sync` of `path` has completed: the member
    /// has applied everything the leader committed before. A `sync` waits for the txns ahead of it,
    /// and on a busy machine an fsync can take longer than the client's patience (2/5 of the session
    /// timeout, after which it drops the connection); a `sync` is idempotent, so it is tried again on
    /// a fresh session until [`SYNC_PATIENCE`] runs out. Panics then, with the last error.
    pub async fn synced_client(address: &str, session_timeout: Duration, path: &str) -> Client {
        let start = std::time::Instant::now();
        loop {
            let attempt = async {
                let client = Client::connector().with_session_timeout(session_timeout).connect(address).await?;
                client.sync(path).await?;
                Ok::<_, Error>(client)
            };
            match attempt.await {
                Ok(client) => return client,
                Err(e) if start.elapsed() < SYNC_PATIENCE => {
                    eprintln!("sync on {address} failed ({e}); trying again on a fresh session");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("sync on {address}: {e} (still failing after {SYNC_PATIENCE:?})"),
            }
        }
    }

    /// One attempt: a fresh session on `connect_string` and a create of `path`, within `limit`.
    pub async fn try_create(connect_string: &str, path: &str, limit: Duration) -> bool {
        let attempt = async {
            let c = Client::connector()
                .with_session_timeout(Duration::from_secs(4))
                .with_fail_eagerly()
                .connect(connect_string)
                .await
                .ok()?;
            c.create(path, b"after", &persistent()).await.ok()
        };
        matches!(tokio::time::timeout(limit, attempt).await, Ok(Some(_)))
    }

    /// Retries [`try_create`] (each within `attempt`) every 20 ms until one succeeds; how long that took.
    /// Panics after `limit`.
    pub async fn first_successful_write(
        connect_string: &str,
        path: &str,
        attempt: Duration,
        limit: Duration,
    ) -> Duration {
        let start = std::time::Instant::now();
        while !try_create(connect_string, path, attempt).await {
            assert!(start.elapsed() < limit, "no write succeeded on {connect_string} in {limit:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    }
}

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The `ferrokeeper` binary of this build, built on first use if `cargo test` did not build it.
/// Sends signal `name` (`STOP`, `TERM`, …) to `pid`, as kill(1) does.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{name} {pid} failed");
}

/// This build's `ferrokeeper` (built if needed).
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("ferrokeeper", "ferrokeeper"))
}

/// This build's `fkcli` (built if needed, as [`server_binary`]).
pub fn fkcli_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("fk-client", "fkcli"))
}

/// Binary `bin` of workspace package `package`, in this test's profile, built (or found fresh) by cargo.
fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    // Test executables live in target/<profile>/deps; the binary in target/<profile>.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let binary = profile_dir.join(bin);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let mut build = Command::new(cargo);
    build.args(["build", "-p", package, "--bin", bin]);
    if release {
        build.arg("--release");
    }
    // Always ask cargo: it is a no-op when the binary is fresh, and rebuilds a stale one.
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build -p {package} --bin {bin} failed");
    binary
}

/// What [`http_request`] got back.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// One HTTP/1.1 request with an empty body, the connection closed after it (the `/metrics` and
/// AdminServer endpoints need nothing more).
pub fn http_request(address: &str, method: &str, path: &str) -> HttpResponse {
    let exchange = http_exchange(address, method, path, &[], &[]);
    let content_type = exchange.header("content-type").unwrap_or_default().to_owned();
    HttpResponse { status: exchange.status, content_type, body: String::from_utf8_lossy(&exchange.body).into_owned() }
}

/// What [`http_exchange`] got back: the status, the headers in order, the body's bytes.
#[derive(Debug)]
pub struct HttpExchange {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpExchange {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `headers` and `body`, the connection closed after it.
pub fn http_exchange(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpExchange {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).expect("send the request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the response");
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect();
    HttpExchange { status, headers, body: response[split + 4..].to_vec() }
}

/// The line of a test server's zoo.cfg where the test's own lines begin.
pub const EXTRA_FIRST_LINE: usize = 9;

/// A running server process, killed when dropped.
pub struct TestServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    log: PathBuf,
    config: PathBuf,
    /// How many times the process was started (each start logs to its own file).
    starts: usize,
}

impl TestServer {
    /// A standalone server with a short tick (100 ms) so that session expiry tests are quick; the
    /// negotiated timeout range is then 200 ms .. 2 s unless `extra` overrides it.
    pub fn start() -> TestServer {
        Self::with_config("")
    }

    /// Starts a server with `extra` appended to a minimal zoo.cfg (later keys win).
    pub fn with_config(extra: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = Self::write_config(&dir, extra);
        Self::start_with_file(dir, &cfg)
    }

    /// The data directory (dataDir) of this server.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts a server on a data directory prepared beforehand (e.g. a copy of ZooKeeper's), with
    /// `extra` config.
    pub fn on_data_dir(prepare: impl FnOnce(&Path), extra: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        prepare(&dir.path().join("data"));
        let cfg = Self::write_config(&dir, extra);
        Self::start_with_file(dir, &cfg)
    }

    /// The minimal zoo.cfg has `EXTRA_FIRST_LINE - 1` lines; `extra` follows.
    fn write_config(dir: &tempfile::TempDir, extra: &str) -> PathBuf {
        let cfg = dir.path().join("zoo.cfg");
        let text = format!(
            "tickTime=100\nclientPort=0\nclientPortAddress=127.0.0.1\ndataDir={}\nmaxSessionTimeout=60000\n4lw.commands.whitelist=*\npreAllocSize=1024\nadmin.enableServer=false\n{extra}\n",
            dir.path().join("data").display()
        );
        std::fs::write(&cfg, text).expect("write zoo.cfg");
        cfg
    }

    fn start_with_file(dir: tempfile::TempDir, cfg: &Path) -> TestServer {
        let (child, log) = Self::spawn(&dir, cfg, 0);
        let mut server = TestServer { port: 0, dir, child, log, config: cfg.to_owned(), starts: 1 };
        server.port = server.wait_for_port();
        server
    }

    fn spawn(dir: &tempfile::TempDir, cfg: &Path, start: usize) -> (Child, PathBuf) {
        let log = dir.path().join(format!("server-{start}.log"));
        let log_file = std::fs::File::create(&log).expect("create log");
        let child = Command::new(server_binary())
            .arg(cfg)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn ferrokeeper");
        (child, log)
    }

    /// The server's process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs the process: no shutdown code runs, exactly like a crash (the page cache survives).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process and starts a new one on the same config and data.
    pub fn restart(&mut self) {
        self.kill();
        let (child, log) = Self::spawn(&self.dir, &self.config, self.starts);
        self.starts += 1;
        self.child = child;
        self.log = log;
        self.port = self.wait_for_port();
    }

    /// Runs the binary on a prepared data directory expecting start-up to fail; returns its exit code
    /// and log.
    pub fn expect_start_failure(prepare: impl FnOnce(&Path), extra: &str) -> (Option<i32>, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        prepare(&dir.path().join("data"));
        let cfg = Self::write_config(&dir, extra);
        let (mut child, log) = Self::spawn(&dir, &cfg, 0);
        let status = child.wait().expect("wait for ferrokeeper");
        (status.code(), std::fs::read_to_string(log).unwrap_or_default())
    }

    /// Panics unless the binary, given `line` after the minimal zoo.cfg, refuses to start (exit status
    /// 1) naming the file and that line with `expected`, and never serves.
    pub fn assert_start_refused(line: &str, expected: &str) {
        let (code, log) = Self::expect_start_failure(|_| {}, line);
        assert_eq!(code, Some(1), "{line}: exit status\n{log}");
        let at = format!("zoo.cfg:{EXTRA_FIRST_LINE}: ");
        assert!(log.contains(&at) && log.contains(expected), "{line}: {log}");
        assert!(!log.contains("serving clients"), "{line}: it served\n{log}");
    }

    /// Reads the port the server reports once it listens (it binds port 0).
    fn wait_for_port(&mut self) -> u16 {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ferrokeeper exited with {status} during start-up:\n{}", self.log_text());
            }
            let file = std::fs::File::open(&self.log).expect("open log");
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("address=").nth(1).filter(|_| line.contains("serving clients")) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    if let Some(port) = addr.rsplit(':').next().and_then(|p| p.parse().ok()) {
                        return port;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("ferrokeeper did not start within {START_TIMEOUT:?}:\n{}", self.log_text());
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a 4-letter word and returns the whole answer.
    pub fn four_letter(&self, command: &str) -> String {
        let mut stream = TcpStream::connect(self.address()).expect("connect for 4lw");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(command.as_bytes()).expect("send 4lw");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read 4lw answer");
        answer
    }

    /// The server's resident memory (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("read /proc status");
        let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS line");
        kib.trim().trim_end_matches("kB").trim().parse::<u64>().expect("VmRSS in kB") * 1024
    }

    /// True while the process is alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- ferrokeeper log ----\n{}", self.log_text());
        }
    }
}

/// A small tmpfs volume (root only), unmounted when dropped: a disk that fills up.
pub struct SmallVolume(pub PathBuf);

impl SmallVolume {
    /// Mounts `size_mib` of tmpfs at `at` (created if needed); `None` when this process may not mount.
    pub fn mount(at: &Path, size_mib: u64) -> Option<SmallVolume> {
        std::fs::create_dir_all(at).ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallVolume(at.to_owned()))
    }

    /// Gives the volume `size_mib` in all (space returns to a full disk).
    pub fn resize(&self, size_mib: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size_mib}m")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot resize the tmpfs at {}", self.0.display());
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
