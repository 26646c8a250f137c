//! Ensembles for tests: N member processes (voters and observers), each ferrokeeper or Apache ZooKeeper
//! 3.8 (`QuorumPeerMain` from Debian's package), on loopback or each in its own network namespace of a
//! [`Lab`] so that tests can cut the network between them.
//!
//! Member i has `myid` i+1 and its own temp directory: `zoo.cfg`, `data/` (dataDir, with `myid`) and one
//! log per start (`member-<start>.log`, stdout and stderr), printed when a test panics.
//!
//! Ports: on loopback every member needs three distinct ports (client, quorum, election) written into
//! every member's zoo.cfg before any starts, so they cannot be port 0 as for `TestServer`. They are
//! reserved by binding listeners (below the kernel's ephemeral range, so no outgoing connection takes
//! them meanwhile) and each member's are released just before that member is spawned; another process
//! can only take one in that short window. In a lab each member has its own address, so every member
//! uses ZooKeeper's standard ports.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Lab;
use crate::{server_binary, signal};

/// How long a member may take to open its client port (a JVM on a busy 2-core machine is slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Connect and read bound of one 4-letter word: a stopped or partitioned member must not hang a test.
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(2);
/// Ports reserved on loopback are drawn from here: below Linux's default ephemeral range (32768..).
const RESERVED_PORTS: std::ops::Range<u16> = 15_000..32_000;
const RESERVE_ATTEMPTS_MAX: usize = 1000;
/// Starts of one member tried again after its port was briefly held by another test's child process.
const BIND_RETRIES_MAX: u32 = 5;
/// Lines of each member's log printed when a test panics.
const LOG_TAIL_LINES: usize = 120;
/// Debian's zookeeper jar (its manifest's Class-Path brings the other jars) and log4j binding.
/// zookeeper.jar's manifest names most of its dependencies; Netty's codec and resolver (which its TLS
/// handler and Netty connection factory need) it does not.
const ZOOKEEPER_JARS: &[&str] = &[
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
];
/// Debian's configuration directory: log4j.properties, read from the classpath.
const ZOOKEEPER_CONF_DIR: &str = "/etc/zookeeper/conf";

/// Which server a member runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// This build's `ferrokeeper` binary.
    Ferrokeeper,
    /// Apache ZooKeeper's `QuorumPeerMain` on Java.
    ZooKeeper,
}

/// A member's role in the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A voter (ZooKeeper's "participant").
    Participant,
    Observer,
}

/// What a member reports on `srvr` (`Mode: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    ReadOnly,
}

impl Mode {
    /// The mode in a `srvr` answer; `None` when the member is not serving ("This ZooKeeper instance is
    /// not currently serving requests") or the answer is empty.
    pub fn from_srvr(answer: &str) -> Option<Mode> {
        let mode = answer.lines().find_map(|l| l.strip_prefix("Mode:"))?.trim();
        match mode {
            "leader" => Some(Mode::Leader),
            "follower" => Some(Mode::Follower),
            "observer" => Some(Mode::Observer),
            "standalone" => Some(Mode::Standalone),
            "read-only" => Some(Mode::ReadOnly),
            _ => None,
        }
    }
}

/// Why an ensemble cannot run here (the test prints it and skips).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// What to start: one implementation per member, which members observe, timing and extra config.
#[derive(Debug, Clone)]
pub struct EnsembleSpec {
    /// Member i runs `members[i]`, with myid i+1.
    pub members: Vec<Implementation>,
    /// Indices of observer members; the others vote.
    pub observers: BTreeSet<usize>,
    pub tick_time_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// Lines appended to every member's zoo.cfg (later keys win).
    pub extra: String,
    /// JVM options for ZooKeeper members (e.g. `-Dzookeeper.cnxTimeout=1000`).
    pub java_options: Vec<String>,
    /// The server list in a `dynamicConfigFile` of this name (beside zoo.cfg) instead of zoo.cfg itself.
    pub dynamic_file: Option<String>,
    /// How many of the last members join later ([`TestEnsemble::start_joiner`]): the others' configs do not
    /// list them, theirs lists the others and themselves, as a member about to be added by `reconfig`.
    pub joiners: usize,
}

impl EnsembleSpec {
    /// Voters only, with ZooKeeper's sample timing (tickTime=2000, initLimit=10, syncLimit=5).
    pub fn new(members: Vec<Implementation>) -> EnsembleSpec {
        EnsembleSpec {
            members,
            observers: BTreeSet::new(),
            tick_time_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            extra: String::new(),
            java_options: Vec::new(),
            dynamic_file: None,
            joiners: 0,
        }
    }

    /// `voters` voters then `observers` observers, all of one implementation.
    pub fn uniform(implementation: Implementation, voters: usize, observers: usize) -> EnsembleSpec {
        let mut spec = EnsembleSpec::new(vec![implementation; voters + observers]);
        spec.observers = (voters..voters + observers).collect();
        spec
    }

    pub fn with_observer(mut self, member: usize) -> EnsembleSpec {
        assert!(member < self.members.len(), "no member {member}");
        self.observers.insert(member);
        self
    }

    pub fn with_ticks(mut self, tick_time_ms: u32, init_limit: u32, sync_limit: u32) -> EnsembleSpec {
        (self.tick_time_ms, self.init_limit, self.sync_limit) = (tick_time_ms, init_limit, sync_limit);
        self
    }

    /// The server list goes to a dynamic configuration file named `name` (ZooKeeper takes the version
    /// from its last dot-separated part, in hex).
    pub fn with_dynamic_file(mut self, name: &str) -> EnsembleSpec {
        self.dynamic_file = Some(name.to_owned());
        self
    }

    /// The last `joiners` members start only when asked, to be added by `reconfig`.
    pub fn with_joiners(mut self, joiners: usize) -> EnsembleSpec {
        assert!(joiners < self.members.len(), "an ensemble to join");
        self.joiners = joiners;
        self
    }

    /// The members started with the ensemble.
    fn initial(&self) -> usize {
        self.members.len() - self.joiners
    }

    pub fn with_extra(mut self, lines: &str) -> EnsembleSpec {
        self.extra.push_str(lines);
        self.extra.push('\n');
        self
    }

    pub fn with_java_option(mut self, option: &str) -> EnsembleSpec {
        self.java_options.push(option.to_owned());
        self
    }

    pub fn role(&self, member: usize) -> Role {
        if self.observers.contains(&member) { Role::Observer } else { Role::Participant }
    }

    /// Why this ensemble cannot start here, if it cannot (Java or Debian's ZooKeeper missing).
    pub fn unavailable(&self) -> Option<Unavailable> {
        if self.members.contains(&Implementation::ZooKeeper) {
            return zookeeper_classpath().err();
        }
        None
    }
}

/// Debian's ZooKeeper classpath (as its zkEnv.sh sets it, plus a log4j binding so the members log to
/// their captured stdout), or why ZooKeeper cannot run here.
pub fn zookeeper_classpath() -> Result<String, Unavailable> {
    if let Err(e) = Command::new("java").arg("-version").output() {
        return Err(Unavailable(format!("java cannot run: {e}")));
    }
    if !Path::new(ZOOKEEPER_JARS[0]).exists() {
        return Err(Unavailable(format!("{} not found (install Debian's zookeeper package)", ZOOKEEPER_JARS[0])));
    }
    let jars = ZOOKEEPER_JARS.iter().filter(|j| Path::new(j).exists()).copied();
    Ok(std::iter::once(ZOOKEEPER_CONF_DIR).chain(jars).collect::<Vec<_>>().join(":"))
}

/// ZooKeeper's classpath, or `None` after printing why the calling test skips.
pub fn zookeeper_or_skip() -> Option<String> {
    zookeeper_classpath().map_err(|reason| eprintln!("SKIPPED: {reason}")).ok()
}

/// Where a member listens.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: u16,
    quorum: u16,
    election: u16,
}

struct Member {
    implementation: Implementation,
    role: Role,
    host: IpAddr,
    ports: Ports,
    dir: tempfile::TempDir,
    process: Option<Child>,
    stopped: bool,
    /// How many times the process was started (each start logs to its own file).
    starts: usize,
}

impl Member {
    fn config_path(&self) -> PathBuf {
        self.dir.path().join("zoo.cfg")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("member-{}.log", self.starts.saturating_sub(1)))
    }

    fn client_address(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.ports.client)
    }

    fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| matches!(p.try_wait(), Ok(None)))
    }

    /// SIGKILL, after SIGCONT for a stopped process so nothing is left half-alive.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            if self.stopped {
                signal(process.id(), "CONT");
            }
            let _ = process.kill();
            let _ = process.wait();
        }
        self.stopped = false;
    }
}

/// A running ensemble; every member process is killed on drop, even on panic.
pub struct TestEnsemble {
    // Declared before `lab`: members are killed before their namespaces go.
    members: Vec<Member>,
    java_options: Vec<String>,
    classpath: Option<String>,
    lab: Option<Lab>,
    /// Joiners' reserved ports, let go when each starts.
    joiner_ports: Vec<Vec<TcpListener>>,
}

impl TestEnsemble {
    /// Starts every member on loopback and waits until each accepts client connections (not until a
    /// leader is elected: see [`TestEnsemble::wait_for_leader`]).
    /// As [`TestEnsemble::start`], or `None` after printing why the calling test skips (Java or Debian's
    /// package missing for a ZooKeeper member).
    pub fn start_or_skip(spec: EnsembleSpec) -> Option<TestEnsemble> {
        TestEnsemble::start(spec).map_err(|reason| eprintln!("SKIPPED: {reason}")).ok()
    }

    pub fn start(spec: EnsembleSpec) -> Result<TestEnsemble, Unavailable> {
        Self::launch(spec, None)
    }

    /// Starts member i inside `lab`'s namespace i, with the lab's addresses in every zoo.cfg.
    pub fn start_in_lab(spec: EnsembleSpec, lab: Lab) -> Result<TestEnsemble, Unavailable> {
        assert_eq!(lab.len(), spec.members.len(), "one lab namespace per member");
        Self::launch(spec, Some(lab))
    }

    fn launch(spec: EnsembleSpec, lab: Option<Lab>) -> Result<TestEnsemble, Unavailable> {
        if let Some(reason) = spec.unavailable() {
            return Err(reason);
        }
        let classpath = spec.members.contains(&Implementation::ZooKeeper).then(zookeeper_classpath).transpose()?;
        let (addresses, mut reservations) = match &lab {
            Some(lab) => ((0..spec.members.len()).map(|i| lab_address(lab, i)).collect(), Vec::new()),
            None => reserve_loopback(spec.members.len()),
        };
        let members = (0..spec.members.len()).map(|i| new_member(&spec, i, &addresses)).collect();
        let initial = spec.initial();
        let joiner_ports = reservations.split_off(initial.min(reservations.len()));
        let mut ensemble = TestEnsemble { members, java_options: spec.java_options, classpath, lab, joiner_ports };
        for i in 0..initial {
            // Released only now: this member binds them within the next moments.
            if let Some(held) = reservations.get_mut(i) {
                held.clear();
            }
            ensemble.spawn(i);
        }
        for i in 0..initial {
            ensemble.wait_for_client_port(i);
        }
        Ok(ensemble)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Starts joiner i (see [`EnsembleSpec::with_joiners`]) and waits until it accepts clients.
    pub fn start_joiner(&mut self, i: usize) {
        assert_eq!(self.members[i].starts, 0, "member {i} started before");
        let first_joiner = self.members.len() - self.joiner_ports.len();
        if let Some(held) = self.joiner_ports.get_mut(i - first_joiner) {
            held.clear();
        }
        self.spawn(i);
        self.wait_for_client_port(i);
    }

    /// Member i's `server.N=…` line as `reconfig -add` takes it:
    /// `host:quorumPort:electionPort:participant;host:clientPort`.
    pub fn server_line(&self, i: usize) -> String {
        format!(
            "server.{}={}:{}:participant;{}",
            i + 1,
            self.quorum_address(i),
            self.election_address(i).port(),
            self.client_address(i)
        )
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The lab the members run in; panics for a loopback ensemble.
    pub fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("this ensemble runs on loopback, not in a lab")
    }

    pub fn implementation(&self, i: usize) -> Implementation {
        self.members[i].implementation
    }

    pub fn role(&self, i: usize) -> Role {
        self.members[i].role
    }

    /// Member i's client address.
    pub fn client_address(&self, i: usize) -> SocketAddr {
        self.members[i].client_address()
    }

    /// A connect string naming every member.
    pub fn connect_string(&self) -> String {
        self.connect_string_of(&(0..self.len()).collect::<Vec<_>>())
    }

    /// A connect string naming the given members.
    pub fn connect_string_of(&self, members: &[usize]) -> String {
        members.iter().map(|&i| self.client_address(i).to_string()).collect::<Vec<_>>().join(",")
    }

    /// A rolling change of a running ensemble, as ZooKeeper documents them (TLS, SASL): for each step,
    /// its lines are appended to every member's zoo.cfg and the members restart one at a time; after
    /// each restart a leader is waited for, and `acknowledged` (the count of a write load's acknowledged
    /// writes) must grow by 10 within 30 s.
    pub async fn restart_through(&mut self, steps: &[String], acknowledged: impl Fn() -> usize) {
        for step in steps {
            for i in 0..self.len() {
                let before = acknowledged();
                self.append_config(i, step);
                self.restart(i);
                self.wait_for_leader(Duration::from_secs(60));
                let deadline = Instant::now() + Duration::from_secs(30);
                while acknowledged() < before + 10 {
                    assert!(Instant::now() < deadline, "no writes after restarting member {i} with {step:?}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Panics unless every path in `acked` (children of `/`) is on every member, each read from the
    /// member itself after a `sync` through the third-party client.
    pub fn assert_every_write_on_every_member(&self, acked: &[String]) {
        self.assert_every_write_on(acked, &(0..self.len()).collect::<Vec<_>>());
    }

    /// As [`assert_every_write_on_every_member`](Self::assert_every_write_on_every_member), for `members`.
    pub fn assert_every_write_on(&self, acked: &[String], members: &[usize]) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        for &i in members {
            let children = runtime.block_on(async {
                let address = self.client_address(i).to_string();
                let client = crate::zk::synced_client(&address, Duration::from_secs(20), "/").await;
                client.list_children("/").await.unwrap_or_else(|e| panic!("list / on member {i}: {e}"))
            });
            let present: BTreeSet<String> = children.into_iter().map(|c| format!("/{c}")).collect();
            let missing: Vec<&String> = acked.iter().filter(|p| !present.contains(*p)).collect();
            assert!(
                missing.is_empty(),
                "member {i} lacks {} of {} acknowledged writes, e.g. {:?}",
                missing.len(),
                acked.len(),
                &missing[..missing.len().min(5)]
            );
        }
    }

    /// Member i's `/zookeeper/config`: its text, data version and mzxid.
    pub async fn config_node(&self, i: usize) -> (String, i32, i64) {
        let address = self.client_address(i).to_string();
        let c = crate::zk::synced_client(&address, Duration::from_secs(10), "/").await;
        let (data, stat) = c.get_data("/zookeeper/config").await.expect("get /zookeeper/config");
        (String::from_utf8(data).expect("UTF-8"), stat.version, stat.mzxid)
    }

    /// Member i's `/zookeeper/config` once it is the same as member `other`'s (within 10 s).
    pub async fn config_node_once_as(&self, i: usize, other: usize) -> (String, i32, i64) {
        let theirs = self.config_node(other).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ours = self.config_node(i).await;
            if ours == theirs {
                return theirs;
            }
            assert!(Instant::now() < deadline, "member {i}: {ours:?}, member {other}: {theirs:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Member i's quorum port (where learners connect to a leader).
    pub fn quorum_address(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.members[i].host, self.members[i].ports.quorum)
    }

    /// Member i's election port.
    pub fn election_address(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.members[i].host, self.members[i].ports.election)
    }

    /// Member i's process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].process.as_ref().map(Child::id)
    }

    /// Member i's dataDir.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.members[i].dir.path().join("data")
    }

    /// Member i's log of its current (or last) start.
    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(self.members[i].log_path()).unwrap_or_default()
    }

    /// Sends a 4-letter word to member i; empty when it cannot be reached within a short bound (killed,
    /// stopped, partitioned).
    pub fn four_letter(&self, i: usize, command: &str) -> String {
        four_letter(self.client_address(i), command)
    }

    /// Sends a 4-letter word to member i from inside its own namespace (in a lab; from loopback
    /// otherwise): the member answers even while the lab isolates it.
    pub fn four_letter_inside(&self, i: usize, command: &str) -> String {
        match &self.lab {
            Some(lab) => lab.exchange(i, self.client_address(i), command, FOUR_LETTER_TIMEOUT).unwrap_or_default(),
            None => self.four_letter(i, command),
        }
    }

    /// Member i's own mode from `srvr`, asked from inside its namespace so that a partition does not
    /// hide it; `None` when it is not serving or does not answer (killed, stopped).
    pub fn mode(&self, i: usize) -> Option<Mode> {
        Mode::from_srvr(&self.four_letter_inside(i, "srvr"))
    }

    /// Whether member i's process is alive and not stopped.
    pub fn is_live(&mut self, i: usize) -> bool {
        !self.members[i].stopped && self.members[i].is_running()
    }

    /// Waits until exactly one live member leads and every other live voter follows; returns the
    /// leader's index. Panics with every member's mode and log after `timeout`.
    pub fn wait_for_leader(&mut self, timeout: Duration) -> usize {
        self.wait_for_leader_among(&(0..self.len()).collect::<Vec<_>>(), timeout)
    }

    /// As [`TestEnsemble::wait_for_leader`], considering only `members` (e.g. one side of a partition).
    pub fn wait_for_leader_among(&mut self, members: &[usize], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let live: Vec<usize> = members.iter().copied().filter(|&i| self.is_live(i)).collect();
            let views: Vec<MemberView> = live.iter().map(|&i| (i, self.role(i), self.mode(i))).collect();
            if let Some(leader) = settled_leader(&views) {
                return leader;
            }
            if Instant::now() >= deadline {
                panic!("no settled leader among {members:?} within {timeout:?}: {views:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until member i reports `mode` (`None`: not serving / unreachable). Returns how long it took.
    pub fn wait_for_mode(&self, i: usize, mode: Option<Mode>, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let now = self.mode(i);
            if now == mode {
                return start.elapsed();
            }
            if start.elapsed() >= timeout {
                panic!("member {i} reports {now:?}, not {mode:?}, after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs member i: no shutdown code runs, like a crash.
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// SIGSTOPs member i: a hung process whose sockets stay open.
    pub fn stop(&mut self, i: usize) {
        let member = &mut self.members[i];
        let pid = member.process.as_ref().expect("member is running").id();
        signal(pid, "STOP");
        member.stopped = true;
        // A signal is delivered asynchronously: until the process shows as stopped it may still read,
        // log and answer what a test sends next.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !is_stopped(pid) {
            assert!(Instant::now() < deadline, "member {i} (pid {pid}) did not stop");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGCONTs a stopped member i.
    pub fn resume(&mut self, i: usize) {
        let member = &mut self.members[i];
        let pid = member.process.as_ref().expect("member is running").id();
        signal(pid, "CONT");
        member.stopped = false;
    }

    /// Kills member i (if running) and starts it again on the same config and data; waits until it
    /// accepts client connections.
    pub fn restart(&mut self, i: usize) {
        self.members[i].kill();
        self.spawn(i);
        self.wait_for_client_port(i);
    }

    /// Member i's zoo.cfg (the directory holds what the member writes beside it, e.g. dynamic files).
    pub fn config_path(&self, i: usize) -> PathBuf {
        self.members[i].config_path()
    }

    /// Appends `lines` to member i's zoo.cfg (later keys win), for its next start.
    pub fn append_config(&mut self, i: usize, lines: &str) {
        let path = self.members[i].config_path();
        let mut text = std::fs::read_to_string(&path).expect("read the member's zoo.cfg");
        text.push_str(lines);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        std::fs::write(&path, text).expect("write the member's zoo.cfg");
    }

    /// A rolling-migration step: member i is stopped (SIGKILL) and started again as `implementation` on
    /// the same zoo.cfg, `myid` and data directory.
    pub fn replace(&mut self, i: usize, implementation: Implementation) {
        if implementation == Implementation::ZooKeeper && self.classpath.is_none() {
            self.classpath = Some(zookeeper_classpath().unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}")));
        }
        self.members[i].kill();
        self.members[i].implementation = implementation;
        self.spawn(i);
        self.wait_for_client_port(i);
    }

    fn spawn(&mut self, i: usize) {
        let member = &self.members[i];
        let log_path = member.dir.path().join(format!("member-{}.log", member.starts));
        let log = std::fs::File::create(&log_path).expect("create member log");
        let mut command = self.base_command(i);
        command.stdin(Stdio::null()).stdout(log.try_clone().expect("clone log handle")).stderr(log);
        let process = command.spawn().unwrap_or_else(|e| panic!("spawn member {i}: {e}"));
        let member = &mut self.members[i];
        member.process = Some(process);
        member.starts += 1;
    }

    /// The command line of member i, inside its namespace when in a lab.
    fn base_command(&self, i: usize) -> Command {
        let member = &self.members[i];
        let (program, args): (PathBuf, Vec<String>) = match member.implementation {
            Implementation::Ferrokeeper => (server_binary().to_owned(), Vec::new()),
            Implementation::ZooKeeper => (PathBuf::from("java"), self.java_args(member)),
        };
        let mut command = match &self.lab {
            Some(lab) => lab.command(i, &program),
            None => Command::new(&program),
        };
        command.args(args).arg(member.config_path());
        if member.implementation == Implementation::Ferrokeeper {
            command.env("RUST_LOG", "debug");
        }
        command
    }

    fn java_args(&self, member: &Member) -> Vec<String> {
        let classpath = self.classpath.clone().expect("classpath resolved at start");
        let mut args = vec![
            "-Dzookeeper.root.logger=INFO,CONSOLE".to_owned(),
            format!("-Dzookeeper.log.dir={}", member.dir.path().display()),
            // Start-up time matters more than peak speed here; a small heap keeps 5 JVMs on one machine.
            "-XX:+UseSerialGC".to_owned(),
            "-XX:TieredStopAtLevel=1".to_owned(),
            "-Xmx256m".to_owned(),
        ];
        args.extend(self.java_options.iter().cloned());
        args.extend(["-cp".to_owned(), classpath, "org.apache.zookeeper.server.quorum.QuorumPeerMain".to_owned()]);
        args
    }

    fn wait_for_client_port(&mut self, i: usize) {
        if let Err(status) = self.wait_for_client_port_or_exit(i) {
            panic!("member {i} exited with {status} during start-up:\n{}", self.log_text(i));
        }
    }

    /// Kills member i (if running) and starts it again on the same config and data; waits until it
    /// accepts client connections, or returns how it exited: for a start that may be refused.
    pub fn restart_or_exit(&mut self, i: usize) -> Result<(), std::process::ExitStatus> {
        self.members[i].kill();
        self.spawn(i);
        self.wait_for_client_port_or_exit(i)
    }

    /// How member i's process exited, if it does within `timeout`.
    pub fn exit_within(&mut self, i: usize, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(Ok(Some(status))) = self.members[i].process.as_mut().map(Child::try_wait) {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_client_port_or_exit(&mut self, i: usize) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = self.client_address(i);
        let mut bind_retries = 0;
        loop {
            if let Some(Ok(Some(status))) = self.members[i].process.as_mut().map(Child::try_wait) {
                // A reserved port is let go just before the member binds it, but a process another
                // test spawns in that moment holds a copy of the reservation until its exec: the bind
                // can fail while nothing else ever listens there. Such a start is tried again.
                let log = self.log_text(i);
                if log.contains("Address already in use") && bind_retries < BIND_RETRIES_MAX {
                    bind_retries += 1;
                    eprintln!("member {i} found a port still held (try {bind_retries}); starting it again");
                    std::thread::sleep(Duration::from_millis(100));
                    self.spawn(i);
                    continue;
                }
                return Err(status);
            }
            if TcpStream::connect_timeout(&address, FOUR_LETTER_TIMEOUT).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                panic!("member {i} did not listen on {address} within {START_TIMEOUT:?}:\n{}", self.log_text(i));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn print_logs(&self) {
        for i in 0..self.len() {
            let text = self.log_text(i);
            // The test's own polling (a `srvr` every 100 ms) would fill the tail.
            let polling = |l: &&str| {
                let four_letter = l.contains("ops::fourlw") || l.contains("pipeline::shard") && l.contains("4-letter");
                let accepted = l.contains("pipeline::shard: accepted") && l.contains("port=Plain");
                !four_letter && !accepted
            };
            let lines: Vec<&str> = text.lines().filter(polling).collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            let m = &self.members[i];
            eprintln!(
                "---- member {i} (myid {}, {:?} {:?}, {}) log tail ----\n{}",
                i + 1,
                m.implementation,
                m.role,
                m.client_address(),
                tail.join("\n")
            );
        }
    }
}

impl Drop for TestEnsemble {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

/// One member as seen by a poll: its index, its role in the config, and the mode it reports.
pub type MemberView = (usize, Role, Option<Mode>);

/// The leader, if exactly one member leads and every voter other than it follows. Observers and
/// unreachable observers do not hold up the decision: observers do not vote.
pub fn settled_leader(views: &[MemberView]) -> Option<usize> {
    let mut leaders = views.iter().filter(|(_, _, mode)| *mode == Some(Mode::Leader));
    let (leader, _, _) = leaders.next()?;
    if leaders.next().is_some() {
        return None;
    }
    let voters_follow = views
        .iter()
        .filter(|(i, role, _)| i != leader && *role == Role::Participant)
        .all(|(_, _, mode)| *mode == Some(Mode::Follower));
    voters_follow.then_some(*leader)
}

/// Sends a 4-letter word; empty on any failure (a member that is down, stopped or cut off).
pub fn four_letter(address: SocketAddr, command: &str) -> String {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, FOUR_LETTER_TIMEOUT) else { return String::new() };
    // ZooKeeper may leave a 4-letter connection made during its start-up unanswered and open.
    let _ = stream.set_read_timeout(Some(FOUR_LETTER_TIMEOUT));
    let _ = stream.set_write_timeout(Some(FOUR_LETTER_TIMEOUT));
    if stream.write_all(command.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn lab_address(lab: &Lab, i: usize) -> (IpAddr, Ports) {
    (IpAddr::V4(lab.ip(i)), Ports { client: 2181, quorum: 2888, election: 3888 })
}

/// Every port this process handed out: a member lets go of its reservation just before it binds the
/// port itself, and another test running meanwhile must not reserve it in that moment.
static HANDED_OUT: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());

/// Three reserved loopback ports per member, with the listeners that hold them.
fn reserve_loopback(members: usize) -> (Vec<(IpAddr, Ports)>, Vec<Vec<TcpListener>>) {
    let mut seed = random_seed();
    let mut taken = HANDED_OUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut reserve = || reserve_port(&mut seed, &mut taken);
    let mut addresses = Vec::new();
    let mut reservations = Vec::new();
    for _ in 0..members {
        let held = vec![reserve(), reserve(), reserve()];
        let port = |k: usize| held[k].local_addr().expect("reserved address").port();
        addresses
            .push((IpAddr::V4(Ipv4Addr::LOCALHOST), Ports { client: port(0), quorum: port(1), election: port(2) }));
        reservations.push(held);
    }
    (addresses, reservations)
}

fn reserve_port(seed: &mut u64, taken: &mut BTreeSet<u16>) -> TcpListener {
    let span = (RESERVED_PORTS.end - RESERVED_PORTS.start) as u64;
    for _ in 0..RESERVE_ATTEMPTS_MAX {
        // xorshift: a spread of candidates so parallel tests rarely try the same port.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let port = RESERVED_PORTS.start + (*seed % span) as u16;
        if taken.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            taken.insert(port);
            return listener;
        }
    }
    panic!("no free loopback port in {RESERVED_PORTS:?} after {RESERVE_ATTEMPTS_MAX} attempts");
}

fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one((std::process::id(), Instant::now())) | 1
}

fn new_member(spec: &EnsembleSpec, i: usize, addresses: &[(IpAddr, Ports)]) -> Member {
    let dir = tempfile::tempdir().expect("member temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("create dataDir");
    std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("write myid");
    let mut text = zoo_cfg(spec, i, &data, addresses);
    if let Some(name) = &spec.dynamic_file {
        let (servers, rest): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("server."));
        let dynamic = dir.path().join(name);
        std::fs::write(&dynamic, servers.join("\n") + "\n").expect("write the dynamic file");
        text = rest.join("\n") + &format!("\ndynamicConfigFile={}\n", dynamic.display());
    }
    std::fs::write(dir.path().join("zoo.cfg"), text).expect("write zoo.cfg");
    let (host, ports) = addresses[i];
    Member {
        implementation: spec.members[i],
        role: spec.role(i),
        host,
        ports,
        dir,
        process: None,
        stopped: false,
        starts: 0,
    }
}

/// Member i's zoo.cfg: the same server list for every member, `peerType=observer` on observers (ZooKeeper
/// takes the role from the server list and warns when peerType disagrees), then the test's lines.
fn zoo_cfg(spec: &EnsembleSpec, i: usize, data_dir: &Path, addresses: &[(IpAddr, Ports)]) -> String {
    let mut text = format!(
        "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\n4lw.commands.whitelist=*\nadmin.enableServer=false\n",
        spec.tick_time_ms,
        spec.init_limit,
        spec.sync_limit,
        data_dir.display()
    );
    for (k, (host, ports)) in addresses.iter().enumerate() {
        // The initial members know each other; a joiner knows them and itself.
        if k >= spec.initial() && k != i {
            continue;
        }
        let role = if spec.role(k) == Role::Observer { ":observer" } else { "" };
        let Ports { client, quorum, election } = ports;
        text += &format!("server.{}={host}:{quorum}:{election}{role};{host}:{client}\n", k + 1);
    }
    if spec.role(i) == Role::Observer {
        text += "peerType=observer\n";
    }
    text + &spec.extra
}

/// Whether the process is stopped (state `T` in /proc/<pid>/stat); a process that is gone counts as
/// stopped too.
fn is_stopped(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    // The state follows the command name, which is in parentheses and may itself hold spaces.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_none_or(|state| state == "T" || state == "t")
}

/// One Java ZooKeeper member started on its own (`QuorumPeerMain` on `config`, its output in `log`),
/// for tests that speak to it directly; killed however the test ends.
pub struct JavaMember {
    pub child: Child,
    log: PathBuf,
}

impl JavaMember {
    pub fn start(classpath: &str, config: &Path, log: &Path) -> JavaMember {
        let out = std::fs::File::create(log).expect("create the Java member's log");
        let child = Command::new("java")
            .args(["-Dzookeeper.root.logger=INFO,CONSOLE", "-cp", classpath])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(config)
            .stdout(out.try_clone().expect("clone the log file"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start java");
        JavaMember { child, log: log.to_owned() }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for JavaMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_read_from_srvr() {
        let cases = [
            ("Zookeeper version: 3.8.0\nZxid: 0x0\nMode: follower\nNode count: 5\n", Some(Mode::Follower)),
            ("Mode: leader\nProposal sizes last/min/max: -1/-1/-1\n", Some(Mode::Leader)),
            ("Mode: observer\n", Some(Mode::Observer)),
            ("Mode: standalone\n", Some(Mode::Standalone)),
            ("Mode: read-only\n", Some(Mode::ReadOnly)),
            ("This ZooKeeper instance is not currently serving requests\n", None),
            ("", None),
            ("Mode: looking\n", None),
        ];
        for (answer, mode) in cases {
            assert_eq!(Mode::from_srvr(answer), mode, "{answer:?}");
        }
    }

    #[test]
    fn a_leader_is_settled_only_when_every_voter_follows_it() {
        use Mode::{Follower, Leader, Standalone};
        use Role::{Observer, Participant};
        let cases: &[(&[MemberView], Option<usize>)] = &[
            (&[], None),
            (
                &[(0, Participant, Some(Leader)), (1, Participant, Some(Follower)), (2, Participant, Some(Follower))],
                Some(0),
            ),
            (&[(0, Participant, Some(Follower)), (1, Participant, None), (2, Participant, Some(Leader))], None),
            (&[(0, Participant, Some(Leader)), (1, Participant, Some(Leader))], None),
            (&[(1, Participant, Some(Follower)), (2, Participant, Some(Leader))], Some(2)),
            (&[(0, Participant, Some(Leader)), (1, Participant, Some(Follower)), (3, Observer, None)], Some(0)),
            (&[(0, Participant, Some(Follower)), (1, Participant, Some(Follower))], None),
            (&[(0, Participant, Some(Leader)), (1, Participant, Some(Standalone))], None),
        ];
        for (views, leader) in cases {
            assert_eq!(settled_leader(views), *leader, "{views:?}");
        }
    }

    #[test]
    fn zoo_cfg_lists_every_member_and_marks_observers() {
        let spec = EnsembleSpec::uniform(Implementation::ZooKeeper, 2, 1).with_ticks(200, 10, 5).with_extra("x=1");
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let addresses: Vec<(IpAddr, Ports)> =
            (0..3).map(|k| (loopback, Ports { client: 100 + k, quorum: 200 + k, election: 300 + k })).collect();
        let observer = zoo_cfg(&spec, 2, Path::new("/d"), &addresses);
        let voter = zoo_cfg(&spec, 0, Path::new("/d"), &addresses);
        for line in [
            "tickTime=200",
            "initLimit=10",
            "syncLimit=5",
            "dataDir=/d",
            "4lw.commands.whitelist=*",
            "server.1=127.0.0.1:200:300;127.0.0.1:100",
            "server.3=127.0.0.1:202:302:observer;127.0.0.1:102",
            "x=1",
        ] {
            assert!(observer.lines().any(|l| l == line), "{line} missing:\n{observer}");
            assert!(voter.lines().any(|l| l == line), "{line} missing:\n{voter}");
        }
        assert!(observer.contains("peerType=observer"));
        assert!(!voter.contains("peerType"));
    }
}
