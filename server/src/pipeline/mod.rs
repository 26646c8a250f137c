//! The threads that drive the pure parts, and the channels between them:
//!
//! ```text
//! acceptor ──NewConnection──▶ shard × N ──Write/Connect/Touch──▶ sequencer thread (pure core: crate::sequencer)
//!                               ▲  reads answered here              │ txns                │ reply routes
//!                               │                                   ▼                     │
//!                               │                  log stage (write + fdatasync per batch, │
//!                               │                  then the commit decision: crate::commit)│
//!                               │                                   │ committed txns      ▼
//!                               └── replies + watch triggers ◀── applier (route table: zxid → reply)
//! ```
//! Nothing reaches the applier, and so no reply leaves, before its batch is durable and committed. A
//! txn carries nothing about who asked for it; the member that took the request keeps the route.
//! Bounds: a shard stops reading a connection with `PENDING_LIMIT` requests outstanding, which bounds
//! what the sequencer and applier channels can hold; the applier→shard channels are unbounded so that
//! the applier never blocks while it holds the tree's write lock.
//! Every thread reports its end, and the first end stops the process ([`Server::wait`]): none ends while
//! the server is healthy, and serving on with one gone would be serving half a server.

pub mod acceptor;
pub mod applier;
pub mod connection;
pub mod figures;
pub mod held_connects;
pub mod log_stage;
pub mod member;
pub mod messages;
mod notify;
pub mod quorum_link;
pub mod restore;
pub mod sequencer;
mod settle;
pub mod shard;
pub mod snapshotter;
pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Sender, bounded, unbounded};
use fk_engine::log::{LogDevice, LogWriter};
use fk_engine::recovery::Recovered;
use fk_engine::tree::DataTree;
use mio::{Poll, Waker};
use parking_lot::RwLock;

use crate::config::Config;
use crate::config::members::Resolve;
use crate::ops::audit::{self, AuditEvent, AuditLog, Outcome};
use crate::ops::http::HttpEndpoint;
use crate::ops::stats::ServerStats;
use crate::ops::{admin, fourlw, prometheus};
use crate::peers::admission::{Gate, GateLimits, PENDING_MAX};
use crate::storage::Dirs;
use acceptor::ConnectionLimiter;
use messages::{ApplierMsg, Origin, ShardMsg};

/// State every thread shares.
pub struct Shared {
    pub config: Config,
    /// Where clients connect (the configured port, or the one the OS chose for port 0), at start.
    pub client_addr: SocketAddr,
    /// The client port (plaintext or unified), which a reconfiguration may move.
    pub client_port: acceptor::MovablePort,
    /// One writer (the applier), many readers (shards, sequencer). See DESIGN.md for why a lock: reads
    /// take it once per shard turn, not per request, so it is uncontended in practice.
    pub tree: RwLock<DataTree>,
    pub stats: ServerStats,
    pub limiter: ConnectionLimiter,
    pub shards: Vec<ShardHandle>,
    pub sequencer: Sender<messages::SequencerMsg>,
    pub status: MemberStatus,
    /// Asks the snapshot thread for a snapshot (the AdminServer's `snapshot` command).
    pub snapshots: Sender<snapshotter::SnapshotRequest>,
    /// The audit log, when `audit.enable=true`.
    pub audit: Option<Arc<crate::ops::audit::AuditLog>>,
    /// TLS for clients, when a port serves it (`secureClientPort`, `client.portUnification`).
    pub client_tls: Option<Arc<tls::ClientTlsRuntime>>,
    /// TLS between members (`sslQuorum`, `portUnification`), on an ensemble.
    pub peer_tls: Option<Arc<crate::peers::tls::PeerTls>>,
    /// SASL between members (`quorum.auth.enableSasl`), on an ensemble.
    pub peer_sasl: Option<Arc<crate::peers::sasl::PeerSasl>>,
    /// The membership's version in force (`config_version` at start; a versioned initial configuration
    /// once the quorum established it, with `reconfigEnabled`).
    pub membership_version: std::sync::atomic::AtomicI64,
}

/// What this server is doing: its mode (standalone, or its role in the ensemble) and whether it serves
/// clients — an ensemble member serves only once synchronised with a leader.
pub struct MemberStatus {
    mode: AtomicU8,
    serving: AtomicBool,
    /// A leader's zxid before its first txn of the epoch: the epoch's start (ZooKeeper's leader sets
    /// its zxid so, and `srvr` shows it).
    epoch_zxid: std::sync::atomic::AtomicI64,
    /// The leader this member follows or is (-1: none, while looking or standalone).
    leader: std::sync::atomic::AtomicI64,
    /// Cut off from its quorum, this member serves read-only clients (`readonlymode.enabled`).
    read_only: AtomicBool,
    /// The next id of a read-only session (ZooKeeper's `SessionTrackerImpl` layout: the member id in the
    /// top byte, the time below), set when read-only service starts.
    next_read_only_session: std::sync::atomic::AtomicI64,
    /// Until when a ConnectRequest reaching this member between roles may wait for it to serve again
    /// (pipeline/held_connects.rs); `None`: closed at once, as ZooKeeper closes it.
    service_expected_by: std::sync::Mutex<Option<std::time::Instant>>,
    /// Tells systemd when this server serves and what it is doing.
    notifier: notify::Notifier,
    /// What start-up found damaged, until a leader has synchronised this member (fk_engine::damage).
    damaged: std::sync::Mutex<Option<String>>,
}

/// A server's mode, as `srvr` and `mntr` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Looking,
    Leading,
    Following,
    Observing,
}

impl Mode {
    const ALL: [Mode; 5] = [Mode::Standalone, Mode::Looking, Mode::Leading, Mode::Following, Mode::Observing];

    /// As ZooKeeper's `srvr` prints it (`Mode: leader`); `looking` never prints there (not serving).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Looking => "looking",
            Mode::Leading => "leader",
            Mode::Following => "follower",
            Mode::Observing => "observer",
        }
    }
}

impl MemberStatus {
    pub fn new(mode: Mode) -> MemberStatus {
        MemberStatus {
            mode: AtomicU8::new(mode as u8),
            serving: AtomicBool::new(mode == Mode::Standalone),
            epoch_zxid: std::sync::atomic::AtomicI64::new(0),
            leader: std::sync::atomic::AtomicI64::new(-1),
            read_only: AtomicBool::new(false),
            next_read_only_session: std::sync::atomic::AtomicI64::new(0),
            service_expected_by: std::sync::Mutex::new(None),
            notifier: notify::Notifier::from_env(),
            damaged: std::sync::Mutex::new(None),
        }
    }

    /// This member was found damaged (`Some`: what was found), or a leader synchronised it (`None`).
    pub fn set_damaged(&self, damaged: Option<String>) {
        *self.damaged.lock().expect("never poisoned: no panics under it") = damaged;
    }

    /// What start-up found damaged, while this member awaits its ensemble's synchronisation.
    pub fn damaged(&self) -> Option<String> {
        self.damaged.lock().expect("never poisoned: no panics under it").clone()
    }

    pub fn mode(&self) -> Mode {
        Mode::ALL[self.mode.load(Ordering::Acquire) as usize]
    }

    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    pub fn set(&self, mode: Mode, serving: bool) {
        self.mode.store(mode as u8, Ordering::Release);
        let was_serving = self.serving.swap(serving, Ordering::AcqRel);
        if mode != Mode::Leading {
            self.epoch_zxid.store(0, Ordering::Release);
        }
        if serving != was_serving || !serving {
            self.announce();
        }
    }

    /// Tells systemd the mode, and that this server is ready the first time it serves.
    pub fn announce(&self) {
        let mode = self.mode();
        if self.is_serving() {
            self.notifier.serving(&format!("serving clients ({})", mode.name()));
        } else {
            self.notifier.status(&format!("{}: not serving clients until in a quorum", mode.name()));
        }
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// Starts read-only service (`my_id` and the wall clock seed its session ids) or ends it.
    pub fn set_read_only(&self, read_only: bool, my_id: u64) {
        if read_only {
            let now_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            let first = ((now_ms << 24) as u64 >> 8) as i64 | ((my_id as i64) << 56);
            self.next_read_only_session.store(first, Ordering::Release);
        }
        self.read_only.store(read_only, Ordering::Release);
        if read_only {
            self.notifier.status("read-only: cut off from the quorum, serving read-only clients");
        } else {
            self.announce();
        }
    }

    /// Between roles, this member expects to serve again by `until` (`None`: it does not expect to).
    pub fn expect_service_by(&self, until: Option<std::time::Instant>) {
        *self.service_expected_by.lock().expect("never poisoned: no panics under it") = until;
    }

    /// Until when a ConnectRequest reaching this member between roles may wait for it.
    pub fn service_expected_by(&self) -> Option<std::time::Instant> {
        *self.service_expected_by.lock().expect("never poisoned: no panics under it")
    }

    /// A new read-only session's id.
    pub fn read_only_session_id(&self) -> i64 {
        self.next_read_only_session.fetch_add(1, Ordering::AcqRel)
    }

    pub fn set_leader(&self, sid: Option<u64>) {
        self.leader.store(sid.map_or(-1, |s| s as i64), Ordering::Release);
    }

    pub fn leader(&self) -> Option<u64> {
        u64::try_from(self.leader.load(Ordering::Acquire)).ok()
    }

    /// A leader established its epoch, whose txns start after `zxid`.
    pub fn set_epoch_zxid(&self, zxid: i64) {
        self.epoch_zxid.store(zxid, Ordering::Release);
    }

    /// The zxid `srvr` reports, given the tree's.
    pub fn zxid(&self, tree_zxid: i64) -> i64 {
        tree_zxid.max(self.epoch_zxid.load(Ordering::Acquire))
    }
}

/// How other threads reach a shard: its channel and the waker of its poll loop.
pub struct ShardHandle {
    tx: Sender<ShardMsg>,
    waker: Arc<Waker>,
}

impl ShardHandle {
    pub fn send(&self, msg: ShardMsg) {
        self.send_quietly(msg);
        self.wake();
    }

    /// Sends without waking, for a sender that wakes once after a burst.
    pub fn send_quietly(&self, msg: ShardMsg) {
        // A shard only exits with the process, so a closed channel means shutdown is under way.
        let _ = self.tx.send(msg);
    }

    /// Messages waiting in its channel.
    pub fn queue_depth(&self) -> usize {
        self.tx.len()
    }

    pub fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            tracing::error!("cannot wake shard: {e}");
        }
    }
}

/// What the server persists to and how: the recovered state, the directories, the log device, and what
/// to do when the disk fails (production: exit; tests: record it).
pub struct Storage {
    pub dirs: Dirs,
    pub recovered: Recovered,
    /// What start-up found damaged, if this member awaits its ensemble's synchronisation
    /// (crate::storage::Opened).
    pub damaged: Option<String>,
    pub device: Box<dyn LogDevice>,
    pub on_fatal: FatalHandler,
}

/// Called once when the txn log cannot be written or synced; the log stage stops after it returns.
pub type FatalHandler = Box<dyn Fn(&str) + Send + Sync>;

/// The production handler: a failed fsync leaves the page cache in an unknown state, so nothing more
/// may be acknowledged — stop the process (ZooKeeper exits too).
pub fn exit_on_fatal() -> FatalHandler {
    Box::new(|message| {
        tracing::error!("{message}");
        std::process::exit(2);
    })
}

/// A running server: its threads and the address it listens on.
pub struct Server {
    pub client_addr: SocketAddr,
    pub shared: Arc<Shared>,
    threads: Threads,
}

impl Server {
    /// Binds the client port (and, for an ensemble member, the quorum and election ports) and starts
    /// every thread on the recovered state.
    pub fn start(config: Config, storage: Storage) -> anyhow::Result<Server> {
        let Storage { dirs, recovered, damaged, device, on_fatal } = storage;
        let shard_count = std::thread::available_parallelism().map_or(1, |n| n.get()).max(1);
        let client_tls = match &config.client_tls {
            Some(settings) => {
                Some(Arc::new(tls::ClientTlsRuntime::new(settings.clone()).context("cannot set up TLS for clients")?))
            }
            None => None,
        };
        let peer_tls = match config.is_standalone() {
            false => crate::peers::tls::PeerTls::new(config.quorum_tls.as_ref())
                .context("cannot set up TLS between members")?,
            true => None,
        };
        let membership_version = config.config_version as i64;
        // ZooKeeper keeps a copy of a zoo.cfg it may rewrite (a member with reconfigEnabled whose servers
        // are still listed in it).
        if let (false, true, None, Some(path)) =
            (config.is_standalone(), config.reconfig_enabled, &config.dynamic_file, &config.source)
        {
            crate::config::rewrite::backup_static(path)
                .with_context(|| format!("cannot back {} up", path.display()))?;
        }
        let peer_sasl = crate::peers::sasl::PeerSasl::new(
            config.quorum_sasl.as_ref().filter(|_| !config.is_standalone()),
            config.servers.iter().map(|server| server.host.clone()),
        );
        let listeners = acceptor::bind_all(&config).context("cannot bind the client port")?;
        // Where clients are told to connect: the plaintext (or unified) port, else the secure one.
        let client_addr = listeners[0].0.local_addr()?;
        let client_port = acceptor::MovablePort::new(&listeners[0].0)?;
        for (listener, port) in &listeners {
            if *port != tls::Port::Plain {
                tracing::info!(address = %listener.local_addr()?, "client port takes TLS ({port:?})");
            }
        }
        let metrics = match &config.prometheus {
            Some(at) => Some(HttpEndpoint::bind(&at.host, at.port).with_context(|| {
                format!(
                    "cannot serve /metrics on metricsProvider.httpHost={} metricsProvider.httpPort={}",
                    at.host, at.port
                )
            })?),
            None => None,
        };
        let admin = match &config.admin {
            Some(at) => Some(HttpEndpoint::bind(&at.host, at.port).with_context(|| {
                format!(
                    "cannot start the AdminServer on admin.serverAddress={} admin.serverPort={} (set \
                     admin.enableServer=false to run without it)",
                    at.host, at.port
                )
            })?),
            None => None,
        };
        let audit = match &config.audit_log {
            Some(path) => {
                Some(AuditLog::open(path).map(|(log, writer)| (Arc::new(log), writer)).with_context(|| {
                    format!("cannot open the audit log {} (audit.enable=true, zookeeper.auditlog.file)", path.display())
                })?)
            }
            None => None,
        };
        let (audit, audit_writer) = audit.unzip();
        let ensemble = !config.is_standalone();
        // Far more than the shards ever have in flight; a bounded channel's slots are allocated (and
        // touched) up front, and 64Ki of them were half of an idle server's memory.
        let (sequencer_tx, sequencer_rx) = bounded(4096);
        let (log_tx, log_rx) = bounded(1024);
        let (applier_tx, applier_rx) = bounded(1024);
        applier_tx.send(ApplierMsg::TreeLoaded(recovered.fuzziness)).expect("the applier's channel has room");
        let (routes_tx, routes_rx) = bounded(1024);
        // Room for the log stage's request and an AdminServer one.
        let (snapshot_tx, snapshot_rx) = bounded(2);
        let owed_snapshot = crate::storage::start_snapshot(&recovered);
        let mut tree = recovered.tree;
        config.write_config_node(&mut tree);
        let recent_txns = recovered.recent;
        let last_zxid = tree.last_processed_zxid();
        let device_name = device.name();
        let stats = ServerStats::new(shard_count);
        stats.set_txn_log_device(device_name);
        let prealloc = config.pre_alloc_size_kb * 1024;
        let writer = LogWriter::new(&dirs.log, device, prealloc, config.force_sync, last_zxid);
        let (fourlw_tx, fourlw_rx) = unbounded();
        let mut polls = Vec::new();
        let mut shard_handles = Vec::new();
        let mut shard_rxs = Vec::new();
        for _ in 0..shard_count {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), shard::WAKER_TOKEN)?);
            let (tx, rx) = unbounded();
            polls.push(poll);
            shard_handles.push(ShardHandle { tx, waker });
            shard_rxs.push(rx);
        }
        let shared = Arc::new(Shared {
            limiter: ConnectionLimiter::new(config.max_client_cnxns.max(0) as u32),
            status: MemberStatus::new(if ensemble { Mode::Looking } else { Mode::Standalone }),
            config,
            client_addr,
            client_port,
            tree: RwLock::new(tree),
            stats,
            shards: shard_handles,
            sequencer: sequencer_tx.clone(),
            snapshots: snapshot_tx.clone(),
            audit,
            client_tls,
            peer_tls,
            peer_sasl,
            membership_version: std::sync::atomic::AtomicI64::new(membership_version),
        });
        shared.status.set_damaged(damaged);
        let mut threads = Threads::new();
        if let (Some(writer), Some(log)) = (audit_writer, &shared.audit) {
            tracing::info!("audit log: {}", log.path().display());
            threads.spawn("fk-audit", move || {
                if let Err(e) = writer.run() {
                    tracing::error!("cannot write the audit log: {e}");
                }
            })?;
            log.record(AuditEvent::server("serverStart", Outcome::Success));
            audit::log_stop_on_signal(log.clone())?;
        }
        for (index, (poll, rx)) in polls.into_iter().zip(shard_rxs).enumerate() {
            let shard = shard::Shard::new(index, shared.clone(), poll, rx, sequencer_tx.clone(), fourlw_tx.clone());
            threads.spawn(&format!("fk-shard-{index}"), move || shard.run())?;
        }
        let commit = if ensemble {
            let (signal, persisted_rx, persisted) = log_stage::PersistedSignal::new(last_zxid);
            let channels = member::MemberChannels {
                member_tx: sequencer_tx.clone(),
                rx: sequencer_rx,
                persisted_rx,
                persisted,
                log: log_tx,
                applier: applier_tx.clone(),
                routes: routes_tx,
            };
            let member = start_member(&shared, &dirs, &mut threads, channels, recent_txns)?;
            threads.spawn("fk-member", move || member.run())?;
            log_stage::CommitRule::Replicated(signal)
        } else {
            let outlets = sequencer::Outlets { log: log_tx, routes: routes_tx, applier: applier_tx.clone() };
            let sequencer = sequencer::SequencerThread::new(shared.clone(), sequencer_rx, outlets, dirs.clone());
            threads.spawn("fk-sequencer", move || sequencer.run())?;
            log_stage::CommitRule::standalone(last_zxid)
        };
        let snapshot_busy = Arc::new(AtomicBool::new(false));
        let log_stage = log_stage::LogStage::new(
            shared.clone(),
            log_rx,
            applier_tx,
            writer,
            commit,
            log_stage::Snapshots { tx: snapshot_tx.clone(), busy: snapshot_busy.clone() },
            on_fatal,
        );
        threads.spawn("fk-log", move || log_stage.run())?;
        let s = shared.clone();
        let snap_dirs = dirs.clone();
        let busy = snapshot_busy.clone();
        threads.spawn("fk-snapshot", move || snapshotter::run(s, snap_dirs, snapshot_rx, busy))?;
        let s = shared.clone();
        threads.spawn("fk-applier", move || applier::run(s, applier_rx, routes_rx))?;
        let s = shared.clone();
        threads.spawn("fk-4lw", move || {
            let answer = |origin: Origin, text| {
                s.shards[origin.shard].send(ShardMsg::FourLetterAnswer { conn: origin.conn, text })
            };
            fourlw::run(&*s, fourlw_rx, answer)
        })?;
        for (listener, port) in listeners {
            let s = shared.clone();
            let name = if port == tls::Port::Secure { "fk-acceptor-tls" } else { "fk-acceptor" };
            threads.spawn(name, move || acceptor::run(s, listener, port))?;
        }
        if let Some(tls) = shared.client_tls.clone().filter(|tls| tls.settings.cert_reload) {
            threads.spawn("fk-cert-reload", move || tls.watch_stores())?;
        }
        if let Some(tls) = shared.peer_tls.clone().filter(|tls| tls.reloads()) {
            threads.spawn("fk-quorum-cert-reload", move || tls.watch_stores())?;
        }
        if let Some(endpoint) = metrics {
            tracing::info!("serving Prometheus metrics at http://{}/metrics", endpoint.local_addr());
            let s = shared.clone();
            threads.spawn("fk-metrics", move || endpoint.serve(|request| prometheus::handle(&*s, request)))?;
        }
        if let (Some(endpoint), Some(at)) = (admin, &shared.config.admin) {
            tracing::info!("AdminServer at http://{}{}", endpoint.local_addr(), at.command_url);
            let (s, url) = (shared.clone(), at.command_url.clone());
            let data = crate::ops::admin_data::DataCommands::new(at);
            threads.spawn("fk-admin", move || endpoint.serve(|request| admin::handle(&*s, &url, &data, request)))?;
        }
        tracing::info!(
            "txn log: {device_name}{}, preAllocSize {} KiB, in {}",
            if shared.config.force_sync { "" } else { " WITHOUT fsync (forceSync=no)" },
            shared.config.pre_alloc_size_kb,
            dirs.log.display()
        );
        // A data directory must hold a snapshot before its first log (ZooKeeper refuses logs without one),
        // and a recovery that replayed txns is worth a snapshot so the next start is quick (ZooKeeper
        // snapshots after every load; we do it in the background).
        match owed_snapshot {
            // Logs written without it could not be recovered (the first start after would refuse them).
            crate::storage::StartSnapshot::Now => snapshotter::take(&shared, &dirs).with_context(|| {
                format!("cannot write the first snapshot in {}, which must precede any log", dirs.snap.display())
            })?,
            crate::storage::StartSnapshot::Soon => {
                snapshot_busy.store(true, std::sync::atomic::Ordering::Release);
                let _ = snapshot_tx.send(snapshotter::SnapshotRequest::Fuzzy);
            }
            crate::storage::StartSnapshot::None => {}
        }
        // A standalone server serves from here on; a member announces when it joins a quorum.
        shared.status.announce();
        Ok(Server { client_addr, shared, threads })
    }

    /// Blocks until any of the server's threads ends — none does while the server is healthy — and says
    /// which and how. The caller must then stop the process: serving on with, say, the applier gone would
    /// answer reads from a tree that no longer changes and leave writes hanging.
    pub fn wait(self) -> ThreadEnded {
        self.threads.first_to_end()
    }
}

/// An ensemble member's own threads — the election links and the quorum port's acceptor — and its
/// member thread, returned to be started with the rest.
fn start_member(
    shared: &Arc<Shared>,
    dirs: &Dirs,
    threads: &mut Threads,
    channels: member::MemberChannels,
    recent_txns: Vec<fk_net::txn::Txn>,
) -> anyhow::Result<member::MemberThread> {
    use crate::peers::election_link::{ElectionLinkSettings, ElectionLinks};
    let config = &shared.config;
    let me = config.me().context("this member is not in its own server list")?;
    let my_id = me.id as i64;
    let quorum_addr = config.quorum_bind_address().context("no quorum address")?.to_socket_addr()?;
    let quorum_listener = std::net::TcpListener::bind(quorum_addr)
        .with_context(|| format!("cannot bind the quorum port {quorum_addr}"))?;
    // ZooKeeper gives a learner's connection initLimit ticks to say who it is (its socket timeout).
    let limits = GateLimits {
        deadline: Duration::from_millis(config.init_limit_ms().max(1)),
        pending_max: PENDING_MAX,
        opening_bytes_max: quorum_link::LEARNER_OPENING_MAX,
    };
    let gate = Gate::with_tls("quorum", quorum_listener, limits, shared.peer_tls.clone())
        .context("cannot watch the quorum port")?;
    // With reconfigEnabled the members change, and a member about to be added connects before any
    // configuration lists it.
    let members: Option<Vec<u64>> = (!config.reconfig_enabled).then(|| config.servers.iter().map(|s| s.id).collect());
    let (tx, my_sid) = (channels.member_tx.clone(), me.id);
    let sasl = shared.peer_sasl.clone();
    let init_limit = Duration::from_millis(config.init_limit_ms().max(1));
    threads.spawn("fk-quorum-admission", move || {
        quorum_link::admit_learners(gate, my_sid, members, tx, sasl, init_limit)
    })?;
    let election_addr = config.election_bind_address().context("no election address")?.to_socket_addr()?;
    let peers = config
        .servers
        .iter()
        .filter(|s| s.id != me.id)
        .map(|s| (s.id as i64, format!("{}:{}", s.host, s.election_port)))
        .collect();
    let announced = format!("{}:{}", me.host, me.election_port);
    let mut settings = ElectionLinkSettings::new(my_id, election_addr, announced, peers);
    settings.connect_timeout_ms = config.cnx_timeout_ms as u64;
    settings.bind_retries = config.election_port_bind_retry;
    // ZooKeeper's election socket timeout is syncLimit ticks; never longer than initLimit ticks here, the
    // bound on every connection that has not said who it is.
    settings.handshake_timeout_ms = config.sync_limit_ms().min(config.init_limit_ms()).max(1);
    settings.tls = shared.peer_tls.clone();
    settings.sasl = shared.peer_sasl.clone();
    if let Some(tls) = &shared.peer_tls {
        tracing::info!("{}", tls.describe());
    }
    if let Some(sasl) = &config.quorum_sasl {
        tracing::info!(
            learner_require = sasl.learner_require,
            server_require = sasl.server_require,
            "SASL between members, as {}",
            match &sasl.learner {
                crate::config::LearnerLogin::Digest { user, .. } => format!("DIGEST-MD5 user {user}"),
                crate::config::LearnerLogin::Kerberos { identity, .. } =>
                    format!("Kerberos principal {}", identity.principal),
            }
        );
    }
    let (links, election_rx) =
        ElectionLinks::start(settings).with_context(|| format!("cannot listen for elections on {election_addr}"))?;
    tracing::info!(
        "ensemble member {my_id}: quorum port {quorum_addr}, election port {election_addr}, {} members",
        config.servers.len()
    );
    Ok(member::MemberThread::new(member::MemberSetup {
        shared: shared.clone(),
        channels,
        dirs: dirs.clone(),
        election_links: links,
        election_rx,
        recent_txns,
    }))
}

/// Which thread ended first, and whether it panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadEnded {
    pub name: String,
    pub panicked: bool,
}

impl std::fmt::Display for ThreadEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.panicked { "panicked" } else { "stopped" };
        write!(f, "server thread {} {how}; stopping the server rather than serving with part of it gone", self.name)
    }
}

/// The server's threads (detached: none is ever joined), each of which reports when it ends, however it
/// ends.
struct Threads {
    ended_tx: Sender<ThreadEnded>,
    ended_rx: crossbeam_channel::Receiver<ThreadEnded>,
}

/// Sends the thread's end when dropped: on return, and while unwinding from a panic.
struct EndNotice {
    name: String,
    tx: Sender<ThreadEnded>,
}

impl Drop for EndNotice {
    fn drop(&mut self) {
        let _ = self.tx.send(ThreadEnded { name: std::mem::take(&mut self.name), panicked: std::thread::panicking() });
    }
}

impl Threads {
    fn new() -> Threads {
        let (ended_tx, ended_rx) = unbounded();
        Threads { ended_tx, ended_rx }
    }

    fn spawn(&mut self, name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let notice = EndNotice { name: name.to_owned(), tx: self.ended_tx.clone() };
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let _notice = notice;
            f()
        })?;
        Ok(())
    }

    fn first_to_end(self) -> ThreadEnded {
        self.ended_rx.recv().expect("the sender lives in self")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_thread_to_end_is_reported_however_it_ends() {
        let mut threads = Threads::new();
        let (release, wait) = bounded::<()>(0);
        threads
            .spawn("healthy", move || {
                let _ = wait.recv();
            })
            .unwrap();
        threads.spawn("doomed", || panic!("an invariant broke")).unwrap();
        assert_eq!(threads.first_to_end(), ThreadEnded { name: "doomed".into(), panicked: true });
        drop(release);
        let mut threads = Threads::new();
        threads.spawn("returns", || {}).unwrap();
        let ended = threads.first_to_end();
        assert_eq!(ended, ThreadEnded { name: "returns".into(), panicked: false });
        assert!(ended.to_string().contains("server thread returns stopped; stopping the server"));
    }
}
