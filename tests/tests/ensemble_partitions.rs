//! Real network partitions against ensembles in a network-namespace [`Lab`]: frames are dropped
//! silently on the bridge, so members only notice through their own timeouts (syncLimit, connect
//! timeouts), as with a pulled cable.
//!
//! What is watched, and how:
//! - **Writes, from inside each member's namespace.** A [`Prober`] thread enters member i's network
//!   namespace (`setns`) and keeps one raw session to member i, sending a `create` every
//!   [`PROBE_INTERVAL`] and recording each reply (error code and the reply header's zxid) with when it
//!   came. Being inside the namespace, it reaches even an isolated member: a write sent to an isolated
//!   leader really arrives there, and its fate is recorded. A session made before the cut is what
//!   delivers them (creating a session needs a quorum in ZooKeeper).
//! - **Modes, from inside too.** A [`ModePoller`] thread asks every member `srvr` in rounds (switching
//!   namespace per member) and records each member's mode and zxid: the timeline the leadership checks
//!   read.
//! - **Safety checks** ([`stale_epoch_acks`], [`equal_epoch_leaders`]): no write acknowledged in epoch
//!   e1 was sent after a write of a later epoch e2 had been acknowledged (ZAB's promise: once a leader of
//!   e2 committed, the quorum that accepted e2 refuses e1's proposals, so the old leader can commit
//!   nothing new; two leaders may briefly *claim* leadership, but never both accept writes); no round
//!   sees two leaders of one epoch; and, after healing, every acknowledged write is on every member and
//!   all members hold the same nodes.
//!
//! Every scenario runs on ferrokeeper members and, as `oracle_zookeeper_*`, on Java ZooKeeper 3.8
//! members with the same assertions: where the expected outcome is "what ZooKeeper does", the oracle
//! run is what shows the assertions are ZooKeeper's behaviour. `FK_PARTITION_LOGS=1` prints every
//! member's log of a passing run; `FK_PARTITION_SEED=<seed>` replays a random schedule.
//! Tests skip with a printed reason where namespaces cannot be made (Lab::new's error) or Java is
//! missing (oracle runs only).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::c_int;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fk_net::client::{Acl, ConnectRequest, ConnectResponse, CreateRequest, OpCode, ReplyHeader, RequestHeader, perms};
use fk_net::client::{PASSWORD_LEN, PROTOCOL_VERSION};
use fk_net::frame::{LENGTH_PREFIX, begin_frame, complete_frame, end_frame};
use fk_net::jute::{Jute, JuteReader};
use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, TestEnsemble, four_letter};
use fk_tests::netns::Lab;
use fk_tests::zk;

const TICK_MS: u32 = 200;
const INIT_LIMIT: u32 = 10;
const SYNC_LIMIT: u32 = 5;
/// syncLimit in time: how long a leader keeps a silent follower, and a follower a silent leader.
const SYNC_LIMIT_TIME: Duration = Duration::from_millis((TICK_MS * SYNC_LIMIT) as u64);
/// Slack above syncLimit for a leader to notice and step down: ZooKeeper checks its quorum every half
/// tick, and the poll that sees it spawns nothing but is one round late at worst.
const STEP_DOWN_SLACK: Duration = Duration::from_millis(1500);
/// First election of a fresh ensemble (a JVM on a busy 2-core machine is slow).
const START_ELECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// A side that holds a quorum elects and serves writes within this.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(15);
/// Healed members settle on one leader within this.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A prober sends one write per interval.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Session creation is a quorum write in ZooKeeper: bounded so that a prober on a member without a
/// quorum keeps trying instead of hanging.
const PROBE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
const PROBE_SESSION_TIMEOUT_MS: i32 = 4000;
/// Replies are small; anything larger is a broken stream.
const PROBE_FRAME_MAX: usize = 1 << 20;
const POLL_INTERVAL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------------------
// Network namespaces for threads.

unsafe extern "C" {
    /// glibc's setns(2); std links glibc already, so no crate is needed for this one call.
    fn setns(fd: c_int, nstype: c_int) -> c_int;
}

/// setns(2)'s flag for a network namespace.
const CLONE_NEWNET: c_int = 0x4000_0000;

/// A handle on a lab member's network namespace (`ip netns` keeps it at /run/netns/<name>).
struct Namespace(File);

impl Namespace {
    fn open(lab: &Lab, member: usize) -> Namespace {
        let path = format!("/run/netns/{}", lab.namespace(member));
        Namespace(File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}")))
    }

    /// Moves the calling thread (only it) into this namespace: its sockets are made there from now on.
    fn enter(&self) {
        // SAFETY: setns reads the descriptor, which `self.0` keeps open across the call, and changes
        // only the calling thread's network namespace; no memory is shared with the call.
        let rc = unsafe { setns(self.0.as_raw_fd(), CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    }
}

// ---------------------------------------------------------------------------------------------------
// Write probes.

/// One write a prober sent, and its reply if one came.
#[derive(Debug, Clone)]
struct Attempt {
    member: usize,
    path: String,
    sent: Instant,
    reply: Option<Reply>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reply {
    at: Instant,
    err: i32,
    zxid: i64,
}

impl Attempt {
    fn acked(&self) -> bool {
        self.reply.is_some_and(|r| r.err == 0)
    }

    fn acked_at(&self) -> Option<Instant> {
        self.reply.filter(|r| r.err == 0).map(|r| r.at)
    }

    fn epoch(&self) -> Option<u32> {
        self.reply.filter(|r| r.err == 0).map(|r| epoch_of(r.zxid as u64))
    }
}

fn epoch_of(zxid: u64) -> u32 {
    (zxid >> 32) as u32
}

/// A raw client session from inside a member's namespace to that member.
struct Session {
    stream: TcpStream,
    buffer: Vec<u8>,
    next_xid: i32,
    /// xid -> index of the attempt it carries, until its reply comes.
    outstanding: HashMap<i32, usize>,
}

/// Why a session is over.
#[derive(Debug)]
struct Closed;

impl Session {
    /// Connects and creates a session; `None` if the member refuses, closes, or does not answer within
    /// [`PROBE_HANDSHAKE_TIMEOUT`] (it has no quorum to create the session with).
    fn open(address: SocketAddr) -> Option<Session> {
        Session::resume(address, 0, vec![0; PASSWORD_LEN]).map(|(session, _)| session)
    }

    /// Connects and asks for session `session_id` (0: a new one); returns the member's answer, in
    /// which a session id of 0 means "expired". `None` as for [`Session::open`].
    fn resume(address: SocketAddr, session_id: i64, passwd: Vec<u8>) -> Option<(Session, ConnectResponse)> {
        let stream = TcpStream::connect_timeout(&address, PROBE_CONNECT_TIMEOUT).ok()?;
        stream.set_nodelay(true).ok()?;
        let mut session = Session { stream, buffer: Vec::new(), next_xid: 1, outstanding: HashMap::new() };
        let request = ConnectRequest {
            protocol_version: PROTOCOL_VERSION,
            last_zxid_seen: 0,
            timeout_ms: PROBE_SESSION_TIMEOUT_MS,
            session_id,
            passwd,
            read_only: Some(false),
        };
        session.send(|out| request.encode(out)).ok()?;
        let body = session.read_frame(Instant::now() + PROBE_HANDSHAKE_TIMEOUT).ok()??;
        let response = ConnectResponse::decode_exact(&body).ok()?;
        (response.session_id != 0 || session_id != 0).then_some((session, response))
    }

    fn send(&mut self, body: impl FnOnce(&mut Vec<u8>)) -> Result<(), Closed> {
        let mut out = Vec::new();
        let start = begin_frame(&mut out);
        body(&mut out);
        end_frame(&mut out, start);
        self.stream.write_all(&out).map_err(|_| Closed)
    }

    /// Sends a persistent, world-open `create path` for attempt `index`.
    fn create(&mut self, path: &str, index: usize) -> Result<(), Closed> {
        let xid = self.send_create(path, CREATE_PERSISTENT)?;
        self.outstanding.insert(xid, index);
        Ok(())
    }

    /// Sends a world-open `create path` with ZooKeeper's create `flags`; returns its xid.
    fn send_create(&mut self, path: &str, flags: i32) -> Result<i32, Closed> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let request = CreateRequest { path: path.to_owned(), data: Some(Vec::new()), acl: open_acl(), flags };
        self.send(|out| {
            RequestHeader { xid, op: OpCode::Create.as_i32() }.encode(out);
            request.encode(out);
        })?;
        Ok(xid)
    }

    /// Creates `path` and waits for its reply: its error code (0: created), `None` if none came.
    fn create_and_wait(&mut self, path: &str, flags: i32, timeout: Duration) -> Option<i32> {
        let xid = self.send_create(path, flags).ok()?;
        let deadline = Instant::now() + timeout;
        while let Some(body) = self.read_frame(deadline).ok()? {
            let header = ReplyHeader::decode(&mut JuteReader::new(&body)).ok()?;
            if header.xid == xid {
                return Some(header.err);
            }
        }
        None
    }

    /// Reads replies until `until`, filling in the attempts they answer (a leader waiting for a quorum
    /// answers late, or never).
    fn collect_replies(&mut self, attempts: &mut [Attempt], until: Instant) -> Result<(), Closed> {
        while let Some(body) = self.read_frame(until)? {
            let header = ReplyHeader::decode(&mut JuteReader::new(&body)).map_err(|_| Closed)?;
            if let Some(index) = self.outstanding.remove(&header.xid) {
                attempts[index].reply = Some(Reply { at: Instant::now(), err: header.err, zxid: header.zxid });
            }
        }
        Ok(())
    }

    /// The next whole frame; `Ok(None)` if none is complete by `deadline`.
    fn read_frame(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, Closed> {
        loop {
            if let Some(len) = complete_frame(&self.buffer, PROBE_FRAME_MAX).map_err(|_| Closed)? {
                let frame = self.buffer[LENGTH_PREFIX..LENGTH_PREFIX + len].to_vec();
                self.buffer.drain(..LENGTH_PREFIX + len);
                return Ok(Some(frame));
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                return Ok(None);
            };
            self.stream.set_read_timeout(Some(left)).map_err(|_| Closed)?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Closed),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                Err(_) => return Err(Closed),
            }
        }
    }
}

/// ZooKeeper's CreateMode flags.
const CREATE_PERSISTENT: i32 = 0;
const CREATE_EPHEMERAL: i32 = 1;

fn open_acl() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

/// A thread in member i's namespace writing `/<prefix>-<i>-<n>` through member i, one per
/// [`PROBE_INTERVAL`], on one session while it lasts, a new one when it is lost.
struct Prober {
    member: usize,
    stop: Arc<AtomicBool>,
    /// When the latest-sent acknowledged write was sent: lets a test wait for "serving writes again".
    newest_acked_sent: Arc<Mutex<Option<Instant>>>,
    thread: JoinHandle<Vec<Attempt>>,
}

impl Prober {
    fn start(ensemble: &TestEnsemble, member: usize, prefix: &str) -> Prober {
        let namespace = Namespace::open(ensemble.lab(), member);
        let address = ensemble.client_address(member);
        let stop = Arc::new(AtomicBool::new(false));
        let newest_acked_sent = Arc::new(Mutex::new(None));
        let (flag, watermark) = (stop.clone(), newest_acked_sent.clone());
        let prefix = format!("{prefix}-{member}");
        let thread = std::thread::spawn(move || {
            namespace.enter();
            probe(member, address, &prefix, &flag, &watermark)
        });
        Prober { member, stop, newest_acked_sent, thread }
    }

    /// Whether a write sent at or after `since` was acknowledged through this member.
    fn acked_since(&self, since: Instant) -> bool {
        self.newest_acked_sent.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|sent| sent >= since)
    }

    /// Probers on every member.
    fn start_all(ensemble: &TestEnsemble, prefix: &str) -> Vec<Prober> {
        (0..ensemble.len()).map(|i| Prober::start(ensemble, i, prefix)).collect()
    }

    fn finish(self) -> Vec<Attempt> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("prober thread")
    }

    fn finish_all(probers: Vec<Prober>) -> Vec<Attempt> {
        probers.into_iter().flat_map(Prober::finish).collect()
    }
}

fn probe(
    member: usize,
    address: SocketAddr,
    prefix: &str,
    stop: &AtomicBool,
    newest_acked_sent: &Mutex<Option<Instant>>,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    let mut session: Option<Session> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(live) = session.as_mut() else {
            session = Session::open(address);
            if session.is_none() {
                std::thread::sleep(PROBE_INTERVAL);
            }
            continue;
        };
        let path = format!("/{prefix}-{}", attempts.len());
        let sent = Instant::now();
        attempts.push(Attempt { member, path: path.clone(), sent, reply: None });
        let index = attempts.len() - 1;
        let turn = live.create(&path, index).and_then(|()| live.collect_replies(&mut attempts, sent + PROBE_INTERVAL));
        if turn.is_err() {
            session = None;
        }
        if let Some(newest) = attempts.iter().rev().find(|a| a.acked()).map(|a| a.sent) {
            *newest_acked_sent.lock().unwrap_or_else(|e| e.into_inner()) = Some(newest);
        }
    }
    attempts
}

/// Waits until every prober of `members` has a write sent at or after `since` acknowledged; returns
/// how long after `since` that was.
fn wait_for_acks(probers: &[Prober], members: &[usize], since: Instant, timeout: Duration) -> Duration {
    let deadline = Instant::now() + timeout;
    let serving = |p: &&Prober| !members.contains(&p.member) || p.acked_since(since);
    while !probers.iter().all(|p| serving(&p)) {
        let waiting: Vec<usize> = probers.iter().filter(|p| !serving(p)).map(|p| p.member).collect();
        assert!(Instant::now() < deadline, "no write acknowledged through members {waiting:?} within {timeout:?}");
        std::thread::sleep(POLL_INTERVAL);
    }
    since.elapsed()
}

// ---------------------------------------------------------------------------------------------------
// Mode timeline.

/// What one member reported in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct View {
    /// `None`: not serving (or no answer).
    mode: Option<Mode>,
    zxid: Option<u64>,
}

impl View {
    fn parse(srvr: &str) -> View {
        let zxid =
            srvr.lines().find_map(|l| l.strip_prefix("Zxid: 0x")).and_then(|z| u64::from_str_radix(z.trim(), 16).ok());
        View { mode: Mode::from_srvr(srvr), zxid }
    }

    fn leads(&self) -> bool {
        self.mode == Some(Mode::Leader)
    }
}

#[derive(Debug, Clone)]
struct Round {
    at: Instant,
    views: Vec<View>,
}

impl Round {
    /// (member, epoch of its zxid) of every member claiming leadership.
    fn leaders(&self) -> Vec<(usize, Option<u32>)> {
        let leaders = self.views.iter().enumerate().filter(|(_, v)| v.leads());
        leaders.map(|(i, v)| (i, v.zxid.map(epoch_of))).collect()
    }
}

/// A thread asking every member `srvr` from inside its namespace, round after round.
struct ModePoller {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Round>>,
}

impl ModePoller {
    fn start(ensemble: &TestEnsemble) -> ModePoller {
        let targets: Vec<(Namespace, SocketAddr)> =
            (0..ensemble.len()).map(|i| (Namespace::open(ensemble.lab(), i), ensemble.client_address(i))).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut rounds = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let at = Instant::now();
                let views = targets.iter().map(|(ns, address)| {
                    ns.enter();
                    View::parse(&four_letter(*address, "srvr"))
                });
                rounds.push(Round { at, views: views.collect() });
                std::thread::sleep(POLL_INTERVAL);
            }
            rounds
        });
        ModePoller { stop, thread }
    }

    fn finish(self) -> Vec<Round> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("mode poller thread")
    }
}

// ---------------------------------------------------------------------------------------------------
// Safety checks and timings, pure over the records.

/// Rounds in which two members claim leadership with the same epoch: two leaders of one epoch can both
/// reach a quorum of their own, which ZAB's epoch agreement exists to rule out.
///
/// The epoch is read from `srvr`'s zxid. ZooKeeper's leader sets its zxid to (new epoch, 0) as soon as
/// the epoch is agreed (`Leader.lead`); a ferrokeeper leader still reports its last logged zxid, of the
/// previous epoch, until it commits its first txn. So while a ferrokeeper leader has written nothing, a
/// stale leader of the previous epoch would be flagged here too: an overlap ZooKeeper's srvr would show
/// as two epochs. None of these scenarios has shown such an overlap on ferrokeeper.
fn equal_epoch_leaders(rounds: &[Round]) -> Vec<&Round> {
    let same = |r: &&Round| {
        let epochs: Vec<u32> = r.leaders().iter().filter_map(|(_, e)| *e).collect();
        epochs.iter().collect::<BTreeSet<_>>().len() < epochs.len()
    };
    rounds.iter().filter(same).collect()
}

/// Acknowledged writes of an older epoch sent after a write of a newer epoch had been acknowledged,
/// each with that newer write. ZAB rules them out: before the newer leader commits anything, a quorum
/// has accepted its epoch and refuses the older leader's proposals, so the older leader can commit
/// nothing sent later. Two leaders may both *claim* leadership for a while; only one accepts writes.
fn stale_epoch_acks(attempts: &[Attempt]) -> Vec<(&Attempt, &Attempt)> {
    let mut first_ack: BTreeMap<u32, &Attempt> = BTreeMap::new();
    for a in attempts.iter().filter(|a| a.acked()) {
        let slot = first_ack.entry(a.epoch().expect("acked")).or_insert(a);
        if a.acked_at() < slot.acked_at() {
            *slot = a;
        }
    }
    let mut stale = Vec::new();
    for a in attempts.iter().filter(|a| a.acked()) {
        let newer = first_ack.range(a.epoch().expect("acked") + 1..).map(|(_, w)| *w);
        if let Some(w) = newer.filter(|w| w.acked_at().is_some_and(|t| t <= a.sent)).min_by_key(|w| w.acked_at()) {
            stale.push((a, w));
        }
    }
    stale
}

/// The first round at or after `from` where `holds`, and how long after `from` it began.
fn first_round(rounds: &[Round], from: Instant, holds: impl Fn(&Round) -> bool) -> Option<Duration> {
    rounds.iter().filter(|r| r.at >= from).find(|r| holds(r)).map(|r| r.at - from)
}

/// How long, summed over round gaps, at least two members claimed leadership at once.
fn two_leaders_time(rounds: &[Round]) -> Duration {
    rounds.windows(2).filter(|w| w[0].leaders().len() >= 2).map(|w| w[1].at - w[0].at).sum()
}

/// Writes sent through `members` in `[from, until)` that were acknowledged.
fn acked_between<'a>(attempts: &'a [Attempt], members: &[usize], from: Instant, until: Instant) -> Vec<&'a Attempt> {
    let inside = |a: &&Attempt| members.contains(&a.member) && a.sent >= from && a.sent < until;
    attempts.iter().filter(inside).filter(|a| a.acked()).collect()
}

/// The common safety checks over a whole run.
fn assert_safe(rounds: &[Round], attempts: &[Attempt]) {
    let same = equal_epoch_leaders(rounds);
    assert!(same.is_empty(), "two leaders of one epoch: {:?}", same.first());
    let stale = stale_epoch_acks(attempts);
    assert!(
        stale.is_empty(),
        "{} writes acknowledged in an older epoch after a newer one acknowledged, e.g. {:?}",
        stale.len(),
        stale.first()
    );
}

// ---------------------------------------------------------------------------------------------------
// Ensembles, clients and convergence.

/// An ensemble of `members` voters of one implementation in a fresh lab, with this file's timing;
/// `None` (with the reason printed) where a lab or Java is unavailable.
fn start_in_lab(implementation: Implementation, members: usize) -> Option<TestEnsemble> {
    let spec = EnsembleSpec::uniform(implementation, members, 0).with_ticks(TICK_MS, INIT_LIMIT, SYNC_LIMIT);
    if let Some(reason) = spec.unavailable() {
        eprintln!("SKIPPED: {reason}");
        return None;
    }
    let lab = match Lab::new(members) {
        Ok(lab) => lab,
        Err(reason) => {
            eprintln!("SKIPPED: cannot build a network lab: {reason}");
            return None;
        }
    };
    Some(TestEnsemble::start_in_lab(spec, lab).expect("availability checked above"))
}

fn others(members: usize, excluded: &[usize]) -> Vec<usize> {
    (0..members).filter(|i| !excluded.contains(i)).collect()
}

/// Cuts every path between the two sides (both directions); the root namespace reaches everyone.
fn split(lab: &Lab, side_a: &[usize], side_b: &[usize]) {
    for &a in side_a {
        for &b in side_b {
            lab.cut(a, b);
        }
    }
}

const CLIENT_OP_TIMEOUT: Duration = Duration::from_secs(10);

/// The children of `/` on member i after a `sync`: everything committed before is applied there.
async fn synced_children(ensemble: &TestEnsemble, i: usize) -> BTreeSet<String> {
    // A sync on a loaded machine can outlast the client's request timeout (2/5 of the 4 s session the
    // members grant): `synced_client` tries again on a fresh session, for up to a minute.
    let connect = ensemble.client_address(i).to_string();
    let c = zk::synced_client(&connect, Duration::from_secs(10), "/").await;
    match tokio::time::timeout(CLIENT_OP_TIMEOUT, c.list_children("/")).await {
        Ok(Ok(children)) => children.into_iter().map(|c| format!("/{c}")).collect(),
        Ok(Err(e)) => panic!("read / on member {i}: {e}"),
        Err(_) => panic!("read / on member {i}: no answer in {CLIENT_OP_TIMEOUT:?}"),
    }
}

/// After healing: every member holds the same nodes, every acknowledged write among them, and none of
/// the `lost` writes (sent where no quorum was, never acknowledged).
async fn assert_converged(ensemble: &TestEnsemble, acked: &BTreeSet<String>, lost: &[&Attempt]) {
    if let Some(failure) = divergence(ensemble, acked, lost).await {
        panic!("{failure}");
    }
}

/// How the members fail to have converged (see [`assert_converged`]), if they do.
async fn divergence(ensemble: &TestEnsemble, acked: &BTreeSet<String>, lost: &[&Attempt]) -> Option<String> {
    let mut trees = Vec::new();
    for i in 0..ensemble.len() {
        let children = synced_children(ensemble, i).await;
        let missing: Vec<&String> = acked.difference(&children).collect();
        if !missing.is_empty() {
            return Some(format!("member {i} lacks {} acknowledged writes: {missing:?}", missing.len()));
        }
        let resurrected: Vec<&str> = lost.iter().map(|a| a.path.as_str()).filter(|p| children.contains(*p)).collect();
        if !resurrected.is_empty() {
            return Some(format!("member {i} holds writes a minority took: {resurrected:?}"));
        }
        trees.push(children);
    }
    trees.iter().enumerate().skip(1).find_map(|(i, tree)| {
        let differ: Vec<&String> = tree.symmetric_difference(&trees[0]).collect();
        (!differ.is_empty()).then(|| format!("members 0 and {i} differ on {differ:?}"))
    })
}

/// With `FK_PARTITION_LOGS` set, prints every member's log (the harness prints them only on panic):
/// how a passing run's timings were spent.
fn dump_logs_if_asked(ensemble: &TestEnsemble) {
    if std::env::var_os("FK_PARTITION_LOGS").is_none() {
        return;
    }
    for i in 0..ensemble.len() {
        eprintln!("---- member {i} (myid {}) log ----\n{}", i + 1, ensemble.log_text(i));
    }
}

fn acked_paths(attempts: &[Attempt]) -> BTreeSet<String> {
    attempts.iter().filter(|a| a.acked()).map(|a| a.path.clone()).collect()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Prints a member's mode over time (compressed to changes), for the report and for comparing with
/// ZooKeeper.
fn mode_changes(rounds: &[Round], member: usize, origin: Instant) -> String {
    let mut out = Vec::new();
    let mut last = None;
    for r in rounds {
        let v = r.views[member];
        let now = (v.mode, v.zxid.map(epoch_of));
        if last != Some(now) {
            let at =
                r.at.checked_duration_since(origin)
                    .map(|d| d.as_millis() as i128)
                    .unwrap_or_else(|| -(ms(origin - r.at) as i128));
            out.push(format!("{at}ms:{:?}/e{:?}", now.0, now.1));
            last = Some(now);
        }
    }
    out.join(" ")
}

// ---------------------------------------------------------------------------------------------------
// Scenarios.

/// What a leader isolation showed, for the report.
struct IsolationTimes {
    /// Cut -> a write sent after the cut acknowledged through each majority member.
    majority_serving: Duration,
    /// Cut -> the isolated leader no longer reports leading (from the poll rounds).
    old_leader_stopped: Duration,
    /// Summed time two members claimed leadership at once.
    two_leaders: Duration,
}

/// Tests 1 and 2: the leader of 3 is isolated. It stops serving within syncLimit, nothing sent to it
/// meanwhile is acknowledged, the other two elect and serve, and never do two members both accept
/// writes. With `heal`, it rejoins as a follower and catches up.
async fn leader_isolated(implementation: Implementation, heal: bool) {
    let Some(mut ensemble) = start_in_lab(implementation, 3) else { return };
    let leader = ensemble.wait_for_leader(START_ELECTION_TIMEOUT);
    let majority = others(3, &[leader]);
    let poller = ModePoller::start(&ensemble);
    let probers = Prober::start_all(&ensemble, "iso");
    wait_for_acks(&probers, &[0, 1, 2], Instant::now(), START_ELECTION_TIMEOUT);

    ensemble.lab().isolate(leader);
    // Taken once the cut is in place: a write sent earlier may still be committed, legitimately.
    let cut_at = Instant::now();
    let new_leader = ensemble.wait_for_leader_among(&majority, FAILOVER_TIMEOUT);
    assert_ne!(new_leader, leader);
    let majority_serving = wait_for_acks(&probers, &majority, cut_at, FAILOVER_TIMEOUT);
    ensemble.wait_for_mode(leader, None, FAILOVER_TIMEOUT);
    // Held on: the isolated member keeps being sent writes while it is out of the quorum, too.
    std::thread::sleep(SYNC_LIMIT_TIME);
    let heal_at = Instant::now();
    if heal {
        ensemble.lab().rejoin(leader);
        assert_eq!(ensemble.wait_for_leader(CONVERGE_TIMEOUT), new_leader, "the majority's leader stays");
        assert_eq!(ensemble.mode(leader), Some(Mode::Follower));
        // The rejoined member serves again: a write through it is acknowledged.
        wait_for_acks(&probers, &[leader], Instant::now(), CONVERGE_TIMEOUT);
    }
    let attempts = Prober::finish_all(probers);
    let rounds = poller.finish();

    let times = isolation_times(&rounds, &attempts, leader, cut_at, majority_serving);
    let during = acked_between(&attempts, &[leader], cut_at, heal_at);
    assert!(during.is_empty(), "the isolated leader acknowledged writes sent after the cut: {during:?}");
    assert_safe(&rounds, &attempts);
    let bound = SYNC_LIMIT_TIME + STEP_DOWN_SLACK;
    assert!(times.old_leader_stopped <= bound, "isolated leader led {} ms after the cut", ms(times.old_leader_stopped));
    eprintln!(
        "MEASURED: {implementation:?} leader isolated (tick {TICK_MS} ms, syncLimit {SYNC_LIMIT}): majority serving writes \
         after {} ms, old leader stopped leading after {} ms, two members claimed leadership for {} ms\n  \
         old leader: {}\n  new leader: {}",
        ms(times.majority_serving),
        ms(times.old_leader_stopped),
        ms(times.two_leaders),
        mode_changes(&rounds, leader, cut_at),
        mode_changes(&rounds, new_leader, cut_at)
    );
    dump_logs_if_asked(&ensemble);
    if heal {
        let lost: Vec<&Attempt> =
            attempts.iter().filter(|a| a.member == leader && a.sent >= cut_at && a.sent < heal_at).collect();
        assert_converged(&ensemble, &acked_paths(&attempts), &lost).await;
    }
}

fn isolation_times(
    rounds: &[Round],
    attempts: &[Attempt],
    leader: usize,
    cut_at: Instant,
    majority_serving: Duration,
) -> IsolationTimes {
    let old_leader_stopped = first_round(rounds, cut_at, |r| !r.views[leader].leads())
        .unwrap_or_else(|| panic!("member {leader} never stopped leading: {}", mode_changes(rounds, leader, cut_at)));
    assert!(!attempts.is_empty());
    IsolationTimes { majority_serving, old_leader_stopped, two_leaders: two_leaders_time(rounds) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_stops_serving_and_the_majority_elects() {
    leader_isolated(Implementation::Ferrokeeper, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_rejoins_as_a_follower_and_catches_up() {
    leader_isolated(Implementation::Ferrokeeper, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_zookeeper_isolated_leader_rejoins() {
    leader_isolated(Implementation::ZooKeeper, true).await;
}

/// How long a partition is held before healing: several syncLimits, so that a member that lost its
/// leader goes through election rounds (and whatever it does about them shows).
const HOLD: Duration = Duration::from_secs(4);

/// The largest gap between consecutive acknowledged writes sent in `[from, until)` through `members`.
fn longest_ack_gap(attempts: &[Attempt], members: &[usize], from: Instant, until: Instant) -> Duration {
    let mut acks: Vec<Instant> =
        acked_between(attempts, members, from, until).iter().filter_map(|a| a.acked_at()).collect();
    acks.sort();
    let edges = std::iter::once(from).chain(acks).chain(std::iter::once(until)).collect::<Vec<_>>();
    edges.windows(2).map(|w| w[1].saturating_duration_since(w[0])).max().unwrap_or_default()
}

/// Which frames between the leader and one follower are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaderCut {
    BothWays,
    /// The follower stops hearing the leader; the leader still hears it.
    LeaderToFollower,
    /// The leader stops hearing the follower; the follower still hears the leader.
    FollowerToLeader,
}

/// Tests 3 and 4: the path between the leader and one follower is cut (both ways or one way) while
/// both still reach the third member.
///
/// ZooKeeper 3.8 (same scenario in this lab, the oracle tests below): whichever direction is cut, the
/// follower leaves within syncLimit (it times out on a silent leader, or the leader drops a silent
/// follower and closes) and then stays LOOKING, not serving, for as long as the cut lasts: the bystander
/// answers its notifications with "following <leader>", but FastLeaderElection joins an established
/// leader only once it has that leader's own LEADING vote (`checkLeader`), which cannot cross the cut.
/// The leader keeps its quorum with the bystander and serves throughout, without an election; once
/// healed, the follower rejoins the same leader in the same epoch.
async fn follower_cut_from_leader(implementation: Implementation, cut: LeaderCut) {
    let Some(mut ensemble) = start_in_lab(implementation, 3) else { return };
    let leader = ensemble.wait_for_leader(START_ELECTION_TIMEOUT);
    let [cut_off, bystander] = others(3, &[leader])[..] else { unreachable!("3 members") };
    let poller = ModePoller::start(&ensemble);
    let probers = Prober::start_all(&ensemble, "cut");
    wait_for_acks(&probers, &[0, 1, 2], Instant::now(), START_ELECTION_TIMEOUT);

    match cut {
        LeaderCut::BothWays => ensemble.lab().cut(leader, cut_off),
        LeaderCut::LeaderToFollower => ensemble.lab().cut_one_way(leader, cut_off),
        LeaderCut::FollowerToLeader => ensemble.lab().cut_one_way(cut_off, leader),
    }
    let cut_at = Instant::now();
    std::thread::sleep(HOLD);
    let heal_at = Instant::now();
    ensemble.lab().heal(leader, cut_off);
    let settled = ensemble.wait_for_leader(CONVERGE_TIMEOUT);
    let rejoined = wait_for_acks(&probers, &[cut_off], heal_at, CONVERGE_TIMEOUT);
    let attempts = Prober::finish_all(probers);
    let rounds = poller.finish();
    dump_logs_if_asked(&ensemble);

    let gap = longest_ack_gap(&attempts, &[leader, bystander], cut_at, heal_at);
    let left = first_round(&rounds, cut_at, |r| r.views[cut_off].mode.is_none());
    eprintln!(
        "MEASURED: {implementation:?} follower cut from the leader ({cut:?}): follower stopped serving after {:?} ms; \
         healed -> serving through it after {} ms; longest gap between writes acknowledged through the leader and \
         the bystander {} ms\n  leader: {}\n  bystander: {}\n  cut off: {}",
        left.map(ms),
        ms(rejoined),
        ms(gap),
        mode_changes(&rounds, leader, cut_at),
        mode_changes(&rounds, bystander, cut_at),
        mode_changes(&rounds, cut_off, cut_at),
    );
    assert_safe(&rounds, &attempts);
    assert_leadership_kept(&rounds, leader, bystander, cut_at);
    assert!(gap < SYNC_LIMIT_TIME, "writes through the leader's side stalled {} ms", ms(gap));
    let left = left.unwrap_or_else(|| panic!("member {cut_off} kept serving across the cut"));
    assert!(left <= SYNC_LIMIT_TIME + STEP_DOWN_SLACK, "member {cut_off} served {} ms into the cut", ms(left));
    let back = first_round(&rounds, cut_at + left, |r| r.views[cut_off].mode.is_some()).map(|d| cut_at + left + d);
    assert!(back.is_none_or(|t| t >= heal_at), "member {cut_off} served again before the heal: {back:?}");
    let through_cut_off = acked_between(&attempts, &[cut_off], cut_at, heal_at);
    assert!(through_cut_off.is_empty(), "writes acknowledged through the cut-off member: {through_cut_off:?}");
    assert_eq!(settled, leader, "the leader stays");
    assert_converged(&ensemble, &acked_paths(&attempts), &[]).await;
}

/// Every round from `from` on shows `leader` leading and `bystander` following, each in one epoch.
fn assert_leadership_kept(rounds: &[Round], leader: usize, bystander: usize, from: Instant) {
    let mut epochs = BTreeSet::new();
    for r in rounds.iter().filter(|r| r.at >= from) {
        let (l, b) = (r.views[leader], r.views[bystander]);
        assert!(l.leads() && b.mode == Some(Mode::Follower), "leadership changed: {:?}", r.views);
        epochs.insert(l.zxid.map(epoch_of));
    }
    assert_eq!(epochs.len(), 1, "the leader's epoch changed: {epochs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_cut_from_the_leader_only() {
    follower_cut_from_leader(Implementation::Ferrokeeper, LeaderCut::BothWays).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_zookeeper_follower_cut_from_the_leader_only() {
    follower_cut_from_leader(Implementation::ZooKeeper, LeaderCut::BothWays).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_no_longer_hears_the_leader() {
    follower_cut_from_leader(Implementation::Ferrokeeper, LeaderCut::LeaderToFollower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_zookeeper_follower_no_longer_hears_the_leader() {
    follower_cut_from_leader(Implementation::ZooKeeper, LeaderCut::LeaderToFollower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_no_longer_hears_a_follower() {
    follower_cut_from_leader(Implementation::Ferrokeeper, LeaderCut::FollowerToLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_zookeeper_leader_no_longer_hears_a_follower() {
    follower_cut_from_leader(Implementation::ZooKeeper, LeaderCut::FollowerToLeader).await;
}

/// Test 5: 5 members split 2|3 with the leader on the 2-side. The 3-side elects and serves; the 2-side
/// stops serving within syncLimit and acknowledges nothing; healed, all follow the 3-side's leader and
/// hold the same data, without the 2-side's unacknowledged writes.
async fn minority_with_the_leader(implementation: Implementation) {
    let Some(mut ensemble) = start_in_lab(implementation, 5) else { return };
    let leader = ensemble.wait_for_leader(START_ELECTION_TIMEOUT);
    let minority = [leader, (leader + 1) % 5];
    let majority = others(5, &minority);
    let poller = ModePoller::start(&ensemble);
    let probers = Prober::start_all(&ensemble, "split");
    wait_for_acks(&probers, &others(5, &[]), Instant::now(), START_ELECTION_TIMEOUT);

    split(ensemble.lab(), &minority, &majority);
    let cut_at = Instant::now();
    let new_leader = ensemble.wait_for_leader_among(&majority, FAILOVER_TIMEOUT);
    let majority_serving = wait_for_acks(&probers, &majority, cut_at, FAILOVER_TIMEOUT);
    for &m in &minority {
        ensemble.wait_for_mode(m, None, FAILOVER_TIMEOUT);
    }
    std::thread::sleep(SYNC_LIMIT_TIME);
    let heal_at = Instant::now();
    ensemble.lab().heal_all();
    let settled = ensemble.wait_for_leader(CONVERGE_TIMEOUT);
    let rejoined = wait_for_acks(&probers, &minority, heal_at, CONVERGE_TIMEOUT);
    let attempts = Prober::finish_all(probers);
    let rounds = poller.finish();
    dump_logs_if_asked(&ensemble);

    let stopped: Vec<Option<Duration>> =
        minority.iter().map(|&m| first_round(&rounds, cut_at, |r| r.views[m].mode.is_none())).collect();
    let stopped_ms: Vec<Option<u128>> = stopped.iter().map(|d| d.map(ms)).collect();
    eprintln!(
        "MEASURED: {implementation:?} 2|3 split, leader in the 2: 3-side serving writes after {} ms; 2-side stopped \
         serving after {stopped_ms:?} ms; healed -> serving through the 2-side after {} ms; two members claimed \
         leadership for {} ms\n  old leader: {}\n  new leader: {}",
        ms(majority_serving),
        ms(rejoined),
        ms(two_leaders_time(&rounds)),
        mode_changes(&rounds, leader, cut_at),
        mode_changes(&rounds, new_leader, cut_at),
    );
    assert_safe(&rounds, &attempts);
    for (m, stopped) in minority.iter().zip(&stopped) {
        let stopped = stopped.unwrap_or_else(|| panic!("member {m} kept serving in the minority"));
        assert!(stopped <= SYNC_LIMIT_TIME + STEP_DOWN_SLACK, "member {m} served {} ms into the split", ms(stopped));
    }
    let minority_acks = acked_between(&attempts, &minority, cut_at, heal_at);
    assert!(minority_acks.is_empty(), "the 2-side acknowledged writes: {minority_acks:?}");
    assert_eq!(settled, new_leader, "the 3-side's leader stays");
    let lost: Vec<&Attempt> =
        attempts.iter().filter(|a| minority.contains(&a.member) && a.sent >= cut_at && a.sent < heal_at).collect();
    assert_converged(&ensemble, &acked_paths(&attempts), &lost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_split_two_three_only_the_three_serve() {
    minority_with_the_leader(Implementation::Ferrokeeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_zookeeper_five_split_two_three() {
    minority_with_the_leader(Implementation::ZooKeeper).await;
}

/// How many times test 6 flips the partition.
const FLIPS: usize = 3;
/// How long each flipped partition is held once its majority serves writes.
const FLIP_HOLD: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// A client in the root namespace writing `/<prefix>-<n>` through `connect` (one side's members) as
/// fast as acknowledgements come, reconnecting on failure, until stopped. Returns the acknowledged
/// paths. A write that times out is not counted: it may or may not have been committed.
fn spawn_writer(connect: String, prefix: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let connector = zk::Client::connector().with_session_timeout(Duration::from_secs(4)).connect(&connect);
            let Ok(Ok(c)) = tokio::time::timeout(WRITE_TIMEOUT, connector).await else { continue };
            while !stop.load(Ordering::Relaxed) {
                let path = format!("/{prefix}-{n}");
                n += 1;
                match tokio::time::timeout(WRITE_TIMEOUT, c.create(&path, b"", &zk::persistent())).await {
                    Ok(Ok(_)) => acked.push(path),
                    _ => break,
                }
            }
        }
        acked
    })
}

/// The members on the 2-side of flip `k`: the current leader (so that every flip forces an election)
/// and a member that was not on the 2-side before (so the old 2-side joins the majority whole).
fn next_minority(leader: usize, previous: &[usize]) -> [usize; 2] {
    let other = (1..5).map(|d| (leader + d) % 5).find(|m| !previous.contains(m)).expect("3 candidates");
    [leader, other]
}

/// Test 6: under a continuous write load through the 3-side, the 2|3 split is flipped `FLIPS` times,
/// the current leader always sent to the 2-side; at the end every acknowledged write is on every
/// member.
async fn flipping_partitions_under_load(implementation: Implementation) {
    let Some(mut ensemble) = start_in_lab(implementation, 5) else { return };
    let mut leader = ensemble.wait_for_leader(START_ELECTION_TIMEOUT);
    let poller = ModePoller::start(&ensemble);
    let probers = Prober::start_all(&ensemble, "flip");
    wait_for_acks(&probers, &others(5, &[]), Instant::now(), START_ELECTION_TIMEOUT);
    let mut acked_by_writers = BTreeSet::new();
    let mut minority_windows = Vec::new();
    let mut minority: Vec<usize> = Vec::new();
    for flip in 0..FLIPS {
        minority = next_minority(leader, &minority).to_vec();
        let majority = others(5, &minority);
        ensemble.lab().heal_all();
        split(ensemble.lab(), &minority, &majority);
        let cut_at = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = spawn_writer(ensemble.connect_string_of(&majority), format!("w{flip}"), stop.clone());
        let serving = wait_for_acks(&probers, &majority, cut_at, FAILOVER_TIMEOUT);
        std::thread::sleep(FLIP_HOLD);
        stop.store(true, Ordering::Relaxed);
        let acked = writer.await.expect("writer task");
        let new_leader = ensemble.wait_for_leader_among(&majority, FAILOVER_TIMEOUT);
        eprintln!(
            "MEASURED: {implementation:?} flip {flip}: 2-side {minority:?} (leader {leader}), 3-side serving writes after \
             {} ms, new leader {new_leader}, {} writes acknowledged through the 3-side",
            ms(serving),
            acked.len()
        );
        assert!(!acked.is_empty(), "flip {flip}: nothing acknowledged through the 3-side {majority:?}");
        acked_by_writers.extend(acked);
        minority_windows.push((minority.clone(), cut_at, Instant::now()));
        leader = new_leader;
    }
    let heal_at = Instant::now();
    ensemble.lab().heal_all();
    ensemble.wait_for_leader(CONVERGE_TIMEOUT);
    wait_for_acks(&probers, &others(5, &[]), heal_at, CONVERGE_TIMEOUT);
    let attempts = Prober::finish_all(probers);
    let rounds = poller.finish();
    dump_logs_if_asked(&ensemble);

    assert_safe(&rounds, &attempts);
    for (side, from, until) in &minority_windows {
        let acks = acked_between(&attempts, side, *from, *until);
        assert!(acks.is_empty(), "the 2-side {side:?} acknowledged writes: {acks:?}");
    }
    let mut acked = acked_paths(&attempts);
    acked.extend(acked_by_writers);
    assert_converged(&ensemble, &acked, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_partitions_lose_no_acknowledged_write() {
    flipping_partitions_under_load(Implementation::Ferrokeeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_zookeeper_flipping_partitions() {
    flipping_partitions_under_load(Implementation::ZooKeeper).await;
}

// ---------------------------------------------------------------------------------------------------
// Random faults.

/// One fault of a random schedule (member indices of a 5-member lab).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    Isolate(usize),
    Cut(usize, usize),
    OneWay(usize, usize),
    /// The listed members on one side, the rest on the other.
    Split(Vec<usize>),
}

impl Fault {
    fn apply(&self, lab: &Lab) {
        match self {
            Fault::Isolate(i) => lab.isolate(*i),
            Fault::Cut(i, j) => lab.cut(*i, *j),
            Fault::OneWay(i, j) => lab.cut_one_way(*i, *j),
            Fault::Split(side) => split(lab, side, &others(lab.len(), side)),
        }
    }
}

/// xorshift64: a schedule is a function of its seed, printed so that a failing run can be replayed
/// with `FK_PARTITION_SEED=<seed>`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Two distinct members of `members`.
    fn pair(&mut self, members: usize) -> (usize, usize) {
        let i = self.below(members);
        (i, (i + 1 + self.below(members - 1)) % members)
    }

    fn fault(&mut self, members: usize) -> Fault {
        match self.below(4) {
            0 => Fault::Isolate(self.below(members)),
            1 => {
                let (i, j) = self.pair(members);
                Fault::Cut(i, j)
            }
            2 => {
                let (i, j) = self.pair(members);
                Fault::OneWay(i, j)
            }
            _ => {
                let (i, j) = self.pair(members);
                Fault::Split(vec![i, j])
            }
        }
    }
}

/// Steps of a random schedule: each heals everything, then holds 1-2 faults for a while.
const CHAOS_STEPS: usize = 8;
const CHAOS_HOLD_MS: std::ops::Range<u64> = 300..2500;

/// `CHAOS_STEPS` steps of (faults, hold) drawn from `seed`.
fn chaos_schedule(seed: u64, members: usize) -> Vec<(Vec<Fault>, Duration)> {
    let mut rng = Rng(seed | 1);
    (0..CHAOS_STEPS)
        .map(|_| {
            let faults = (0..1 + rng.below(2)).map(|_| rng.fault(members)).collect();
            let span = CHAOS_HOLD_MS.end - CHAOS_HOLD_MS.start;
            (faults, Duration::from_millis(CHAOS_HOLD_MS.start + rng.next() % span))
        })
        .collect()
}

fn chaos_seed() -> u64 {
    match std::env::var("FK_PARTITION_SEED") {
        Ok(seed) => seed.parse().unwrap_or_else(|e| panic!("FK_PARTITION_SEED={seed}: {e}")),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64,
    }
}

/// Random partitions of 5 members under writes through every member: whatever the faults did, no two
/// leaders of one epoch, no write acknowledged in an older epoch after a newer one, and once healed
/// every acknowledged write is on every member.
async fn random_partitions(implementation: Implementation) {
    let Some(mut ensemble) = start_in_lab(implementation, 5) else { return };
    let seed = chaos_seed();
    let schedule = chaos_schedule(seed, 5);
    eprintln!("{implementation:?} random partitions: FK_PARTITION_SEED={seed} schedule {schedule:?}");
    ensemble.wait_for_leader(START_ELECTION_TIMEOUT);
    let poller = ModePoller::start(&ensemble);
    let probers = Prober::start_all(&ensemble, "chaos");
    wait_for_acks(&probers, &others(5, &[]), Instant::now(), START_ELECTION_TIMEOUT);
    for (faults, hold) in &schedule {
        ensemble.lab().heal_all();
        faults.iter().for_each(|f| f.apply(ensemble.lab()));
        std::thread::sleep(*hold);
    }
    let heal_at = Instant::now();
    ensemble.lab().heal_all();
    ensemble.wait_for_leader(CONVERGE_TIMEOUT);
    let serving = wait_for_acks(&probers, &others(5, &[]), heal_at, CONVERGE_TIMEOUT);
    let attempts = Prober::finish_all(probers);
    let rounds = poller.finish();
    dump_logs_if_asked(&ensemble);
    let acked = acked_paths(&attempts);
    eprintln!(
        "MEASURED: {implementation:?} random partitions (seed {seed}): {} of {} writes acknowledged; healed -> all \
         serving after {} ms; two members claimed leadership for {} ms",
        acked.len(),
        attempts.len(),
        ms(serving),
        ms(two_leaders_time(&rounds))
    );
    assert_safe(&rounds, &attempts);
    match implementation {
        Implementation::Ferrokeeper => assert_converged(&ensemble, &acked, &[]).await,
        // Debian's ZooKeeper is 3.8.0, which has known txn-loss bugs in a follower's synchronisation
        // (ZOOKEEPER-4785, fixed in 3.8.4, among them): one run in this lab left a Java member without 36
        // acknowledged writes after a sync. That is ZooKeeper's finding to report, not a reason to fail
        // ferrokeeper's suite; the oracle's safety checks above still hold it to one leader per epoch.
        Implementation::ZooKeeper => {
            if let Some(failure) = divergence(&ensemble, &acked, &[]).await {
                eprintln!("ORACLE FINDING: ZooKeeper 3.8.0 did not converge (seed {seed}): {failure}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_partitions_keep_every_acknowledged_write() {
    random_partitions(Implementation::Ferrokeeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_zookeeper_random_partitions() {
    random_partitions(Implementation::ZooKeeper).await;
}

// ---------------------------------------------------------------------------------------------------
// Sessions across a partition.

/// Whether `path` exists, read through member i after a `sync`.
async fn exists_on(ensemble: &TestEnsemble, i: usize, path: &str) -> bool {
    synced_children(ensemble, i).await.contains(path)
}

/// A client's member is cut from the leader and leaves the quorum; the client takes its session to
/// another member within the session timeout: the session is alive there (the leader tracks sessions
/// for the whole ensemble; the bystander revalidates it with the leader), its ephemeral node survives
/// the move, and it goes once the session is closed. ZooKeeper 3.8 does exactly this (oracle below).
async fn session_moves_off_a_member_that_left(implementation: Implementation) {
    let Some(mut ensemble) = start_in_lab(implementation, 3) else { return };
    let leader = ensemble.wait_for_leader(START_ELECTION_TIMEOUT);
    let [cut_off, bystander] = others(3, &[leader])[..] else { unreachable!("3 members") };
    let (mut first, hello) = Session::resume(ensemble.client_address(cut_off), 0, vec![0; PASSWORD_LEN])
        .expect("a session through a follower");
    assert_eq!(first.create_and_wait("/owned", CREATE_EPHEMERAL, CLIENT_OP_TIMEOUT), Some(0), "ephemeral create");

    ensemble.lab().cut(leader, cut_off);
    let cut_at = Instant::now();
    ensemble.wait_for_mode(cut_off, None, FAILOVER_TIMEOUT);
    let left = cut_at.elapsed();
    drop(first);
    let (mut moved, answer) = Session::resume(ensemble.client_address(bystander), hello.session_id, hello.passwd)
        .expect("the bystander answers a reconnecting session");
    let moved_after = cut_at.elapsed();
    eprintln!(
        "MEASURED: {implementation:?} session moved: member left the quorum {} ms after the cut, session resumed \
         on the bystander {} ms after the cut (timeout {} ms): {answer:?}",
        ms(left),
        ms(moved_after),
        PROBE_SESSION_TIMEOUT_MS
    );
    assert_eq!(answer.session_id, hello.session_id, "the session is alive on the bystander");
    assert!(exists_on(&ensemble, leader, "/owned").await, "the ephemeral node survived the move");
    assert_eq!(moved.create_and_wait("/moved", CREATE_EPHEMERAL, CLIENT_OP_TIMEOUT), Some(0), "writes go on");

    ensemble.lab().heal(leader, cut_off);
    assert_eq!(ensemble.wait_for_leader(CONVERGE_TIMEOUT), leader);
    moved.send(|out| RequestHeader { xid: 0, op: OpCode::CloseSession.as_i32() }.encode(out)).expect("close");
    let _ = moved.read_frame(Instant::now() + CLIENT_OP_TIMEOUT);
    for i in 0..3 {
        let children = synced_children(&ensemble, i).await;
        assert!(!children.contains("/owned") && !children.contains("/moved"), "member {i} keeps ephemerals");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_off_a_member_that_left_the_quorum() {
    session_moves_off_a_member_that_left(Implementation::Ferrokeeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_zookeeper_a_session_moves_off_a_member_that_left_the_quorum() {
    session_moves_off_a_member_that_left(Implementation::ZooKeeper).await;
}

// ---------------------------------------------------------------------------------------------------
// The checks themselves.

/// (epoch, sent ms, acked ms) of acknowledged writes -> how many are stale.
#[test]
fn stale_epoch_acks_are_older_epochs_sent_after_a_newer_ack() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    type Case = (&'static [(u32, u64, u64)], usize);
    let cases: &[Case] = &[
        (&[], 0),
        (&[(1, 0, 10), (1, 20, 30), (2, 40, 50)], 0),
        // Sent before epoch 2's first ack, acknowledged after it: committed by the old quorum in time.
        (&[(1, 0, 60), (2, 10, 50)], 0),
        // Sent after epoch 2 acknowledged a write, yet acknowledged in epoch 1: two leaders took writes.
        (&[(2, 0, 10), (1, 20, 30)], 1),
        (&[(1, 0, 5), (3, 10, 20), (2, 30, 40), (1, 50, 60)], 2),
    ];
    for (writes, stale) in cases {
        let attempts: Vec<Attempt> = writes
            .iter()
            .map(|&(epoch, sent, acked)| Attempt {
                member: 0,
                path: format!("/{sent}"),
                sent: at(sent),
                reply: Some(Reply { at: at(acked), err: 0, zxid: (epoch as i64) << 32 }),
            })
            .collect();
        assert_eq!(stale_epoch_acks(&attempts).len(), *stale, "{writes:?}");
    }
}

#[test]
fn leaders_of_one_epoch_are_caught_and_modes_parsed() {
    let view = |mode, epoch: u64| View { mode, zxid: Some(epoch << 32) };
    let (l, f) = (Some(Mode::Leader), Some(Mode::Follower));
    let cases: &[(Vec<View>, bool)] = &[
        (vec![view(l, 1), view(f, 1), view(f, 1)], false),
        (vec![view(l, 1), view(l, 2), view(f, 2)], false),
        (vec![view(l, 2), view(l, 2), view(None, 0)], true),
    ];
    for (views, caught) in cases {
        let rounds = [Round { at: Instant::now(), views: views.clone() }];
        assert_eq!(!equal_epoch_leaders(&rounds).is_empty(), *caught, "{views:?}");
    }
    let srvr = "Zookeeper version: 3.8.0\nZxid: 0x200000003\nMode: leader\nNode count: 5\n";
    assert_eq!(View::parse(srvr), View { mode: l, zxid: Some(0x2_0000_0003) });
    assert_eq!(View::parse("This ZooKeeper instance is not currently serving requests\n").mode, None);
}

#[test]
fn flips_send_the_leader_and_a_fresh_member_to_the_minority() {
    let cases: &[(usize, &[usize], [usize; 2])] =
        &[(4, &[], [4, 0]), (3, &[4, 0], [3, 1]), (2, &[3, 1], [2, 4]), (0, &[0, 1], [0, 2])];
    for &(leader, previous, expected) in cases {
        assert_eq!(next_minority(leader, previous), expected, "leader {leader}, previous {previous:?}");
    }
    assert_eq!(chaos_schedule(42, 5), chaos_schedule(42, 5), "a seed replays its schedule");
    for (faults, hold) in chaos_schedule(7, 5) {
        assert!((1..=2).contains(&faults.len()) && CHAOS_HOLD_MS.contains(&(hold.as_millis() as u64)));
    }
}
