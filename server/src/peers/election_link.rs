//! The election port's connection manager: ZooKeeper 3.8's `QuorumCnxManager`, as a driver.
//!
//! Threads, blocking std I/O as in ZooKeeper once a connection is admitted:
//! - one admission thread (a [`Gate`]) accepting on the election port and reading each connection's
//!   opening message without blocking, with at most [`MAX_HANDSHAKES`] in progress (one more closes the
//!   oldest) and the handshake timeout: a peer that connects and stays silent costs a socket for that
//!   long and delays nobody (ZooKeeper reads the opening message on its listener thread unless quorum
//!   SASL is on, with `tickTime × syncLimit` as the socket timeout);
//! - one short-lived connector per peer being dialled (ZooKeeper's `QuorumConnectionReqThread`);
//! - per connected peer, a sender draining that peer's outbox and a receiver feeding the shared
//!   [`Incoming`] channel (`SendWorker`/`RecvWorker`).
//!
//! Invariants kept:
//! - at most one live connection per peer sid: installing a new one closes the old one (ZooKeeper
//!   finishes the old `SendWorker`), and a thread that ends removes only its own connection;
//! - exactly one TCP connection per pair once both sides settle: only the larger sid keeps a connection
//!   ([`super::handshake::on_accept`], [`super::handshake::on_initiate`]);
//! - every queue is bounded: an outbox holds one message (a newer one replaces it: ZooKeeper's
//!   capacity-1 `CircularBlockingQueue`), the incoming channel [`INCOMING_CAPACITY`] (when full the
//!   oldest is dropped, as ZooKeeper's `recvQueue` does). Dropped messages are harmless: the election
//!   resends its current vote every round.
//!
//! Messages to ourselves are looped back into the incoming channel, as ZooKeeper's `toSend` does, so the
//! election handles its own vote like any other.
//!
//! Where this differs from ZooKeeper 3.8, and why:
//! - openings are read side by side, so the connection that wins for a sid is the one accepted last, not
//!   the one whose opening completed last (a peer that replaced its connection must not see the old win);
//! - a sender whose connection was replaced or failed puts its message back in the outbox (unless a
//!   newer one waits) instead of losing it; ZooKeeper relies on the resend of the last message alone
//!   (both rules are [`PeerOutbox`]'s, which the simulator's network uses too);
//! - a connection from our own sid is closed (ZooKeeper logs it and leaves the socket open);
//! - an id-less observer (`Long.MAX_VALUE`) keeps its connection under its assigned negative id
//!   (ZooKeeper would dial it back and loop, see `handshake_accepted`);
//! - `have_delivered` means every outbox is empty (ZooKeeper's: at least one is);
//! - a message to an unknown sid with no connection is dropped (ZooKeeper queues it forever).
//!
//! As in ZooKeeper, a `send` while a dial to that peer is in progress starts no second dial; if that dial
//! fails, the message waits until the next `send` or `connect_all`, which the election issues every
//! notification timeout.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded, select};
use fk_net::quorum::InitialMessage;
use mio::Waker;
use parking_lot::Mutex;
use tracing::{debug, error, info, warn};

use fk_tls::blocking::{ReadHalf, WriteHalf};

use super::admission::{Admitted, Gate, GateCounters, GateLimits};
use super::handshake::{
    LinkError, OBSERVER_ID, OPENING_MAX, OnAccept, OnInitiate, is_sendable, judge_opening, on_accept, on_initiate,
    reachable_address, read_frame, write_frame, write_opening,
};
use super::sasl::PeerSasl;
use super::tls::{PeerTls, dialled};
use crate::election::outbox::PeerOutbox;

/// ZooKeeper's `cnxTimeout` default.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5000;
/// ZooKeeper's `zookeeper.electionPortBindRetry` default.
pub const DEFAULT_BIND_RETRIES: u32 = 3;
/// How long an accepted connection may take to send its opening message. ZooKeeper uses the socket
/// timeout `tickTime × syncLimit`; 2000 × 5 is the sample configuration's.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Notifications waiting for the election (ZooKeeper's `RECV_CAPACITY`).
pub const INCOMING_CAPACITY: usize = 100;
/// Accepted connections still in their opening message; one more closes the oldest.
pub const MAX_HANDSHAKES: usize = super::admission::PENDING_MAX;
/// Sids outside our configuration (observers) we keep a connection and outbox for.
pub const MAX_UNKNOWN_PEERS: usize = 64;
/// ZooKeeper sleeps a second between attempts to bind the election port.
const BIND_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Where this member listens, who it is, and whom it talks to.
#[derive(Debug, Clone)]
pub struct ElectionLinkSettings {
    pub my_id: i64,
    /// Where to bind (`0.0.0.0:port` with `quorumListenOnAllIPs`).
    pub listen: SocketAddr,
    /// `host:port` sent in our opening message.
    pub announced: String,
    /// Every other member: sid and `host:electionPort`, resolved at each connection attempt (ZooKeeper
    /// re-resolves before connecting, in case a peer's address changed).
    pub peers: Vec<(i64, String)>,
    /// zoo.cfg `cnxTimeout`.
    pub connect_timeout_ms: u64,
    /// `electionPortBindRetry`: attempts to bind; 0 retries forever (and `start` blocks until it binds).
    pub bind_retries: u32,
    /// How long an accepted connection may take to send its opening message.
    pub handshake_timeout_ms: u64,
    /// TLS between members, when on.
    pub tls: Option<Arc<PeerTls>>,
    /// SASL between members, when on.
    pub sasl: Option<Arc<PeerSasl>>,
}

impl ElectionLinkSettings {
    /// Settings with ZooKeeper's defaults for the timeouts and retries.
    pub fn new(my_id: i64, listen: SocketAddr, announced: String, peers: Vec<(i64, String)>) -> Self {
        ElectionLinkSettings {
            my_id,
            listen,
            announced,
            peers,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            bind_retries: DEFAULT_BIND_RETRIES,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
            tls: None,
            sasl: None,
        }
    }
}

/// One frame's payload (an election notification) and the sid it came from. A pre-3.5 observer that
/// announced no sid appears under a negative sid assigned on accept (-1, -2, ... as in ZooKeeper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub from: i64,
    pub payload: Vec<u8>,
}

/// Where the election reads [`Incoming`] notifications (named so callers need no channel crate).
pub type IncomingReceiver = Receiver<Incoming>;

/// Counts since start, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connections accepted from a larger sid and kept.
    pub accepted: u64,
    /// Connections accepted from a smaller sid, closed, and answered by dialling it.
    pub connected_back: u64,
    /// Connections we opened to a smaller sid and kept.
    pub opened: u64,
    /// Connections we opened to a larger sid, closed after the opening message.
    pub opened_and_closed: u64,
    /// Connections refused: bad, late or crowded-out opening message, our own sid, or unknown peers.
    pub refused: u64,
    /// Live connections that ended by an error, end of stream, or a bad frame.
    pub broken: u64,
    /// Unsent messages replaced by a newer one for the same peer.
    pub replaced: u64,
    /// Received notifications dropped because the election had not taken the oldest yet.
    pub incoming_dropped: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    connected_back: AtomicU64,
    opened: AtomicU64,
    opened_and_closed: AtomicU64,
    refused: AtomicU64,
    broken: AtomicU64,
    replaced: AtomicU64,
    incoming_dropped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> LinkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStats {
            accepted: get(&self.accepted),
            connected_back: get(&self.connected_back),
            opened: get(&self.opened),
            opened_and_closed: get(&self.opened_and_closed),
            refused: get(&self.refused),
            broken: get(&self.broken),
            replaced: get(&self.replaced),
            incoming_dropped: get(&self.incoming_dropped),
        }
    }
}

/// A peer's send queue ([`PeerOutbox`]: the newest message wins, a new connection resends the last one)
/// and a doorbell that wakes the peer's sender when a message is queued or put back.
#[derive(Clone)]
struct Outbox {
    queue: Arc<Mutex<PeerOutbox<Vec<u8>>>>,
    ring: Sender<()>,
    bell: Receiver<()>,
}

impl Outbox {
    fn new() -> Outbox {
        let (ring, bell) = bounded(1);
        Outbox { queue: Arc::default(), ring, bell }
    }

    /// Queues `payload`; returns whether an unsent message was replaced.
    fn replace(&self, payload: Vec<u8>) -> bool {
        let replaced = self.queue.lock().queue(payload);
        self.wake();
        replaced
    }

    /// Puts back a message its connection could not send, unless a newer one is already waiting, and
    /// wakes whichever sender waits (the replacing connection's may be the one).
    fn requeue(&self, payload: Vec<u8>) {
        self.queue.lock().unsent(payload);
        self.wake();
    }

    fn wake(&self) {
        // A full doorbell already has a wake-up pending: one is enough.
        let _ = self.ring.try_send(());
    }
}

/// A live connection, as the manager holds it. Dropping it closes the socket (unblocking the receiver's
/// read and any write in progress) and the stop channel (waking the sender).
struct Link {
    id: u64,
    /// For an accepted connection, its place in accept order (see `install_link`).
    accepted: Option<u64>,
    stream: WriteHalf,
    _stop: Sender<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.stream.shutdown();
    }
}

/// Whether a peer was last reached, so a failure is logged once per change, not once per attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Up,
    Down,
}

#[derive(Default)]
struct State {
    outboxes: HashMap<i64, Outbox>,
    links: HashMap<i64, Link>,
    connecting: HashSet<i64>,
    /// Addresses announced by sids outside the configuration.
    learned: HashMap<i64, String>,
    reach: HashMap<i64, Reach>,
    threads: Vec<JoinHandle<()>>,
    next_id: u64,
    /// The next id for an observer announcing `OBSERVER_ID` (ZooKeeper's `observerCounter`).
    next_observer_id: i64,
}

struct Shared {
    my_id: i64,
    announced: String,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    configured: HashMap<i64, String>,
    state: Mutex<State>,
    incoming_tx: Sender<Incoming>,
    /// Held to drop the oldest notification when the election falls behind.
    incoming_rx: Receiver<Incoming>,
    stopping: AtomicBool,
    counters: Counters,
    /// The admission's own counts (refusals before a connection reaches us).
    gate: Arc<GateCounters>,
    tls: Option<Arc<PeerTls>>,
    sasl: Option<Arc<PeerSasl>>,
}

/// The election port's connections to every other member. Dropping it is `shutdown`.
pub struct ElectionLinks {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    listener: Option<(Arc<Waker>, JoinHandle<()>)>,
}

impl ElectionLinks {
    /// Binds the election port (with ZooKeeper's bind retries) and starts accepting. Nothing is dialled
    /// until the first `send` or `connect_all`.
    pub fn start(settings: ElectionLinkSettings) -> io::Result<(ElectionLinks, IncomingReceiver)> {
        let listener = bind_with_retries(settings.listen, settings.bind_retries)?;
        let local_addr = listener.local_addr()?;
        let limits = GateLimits {
            deadline: Duration::from_millis(settings.handshake_timeout_ms.max(1)),
            pending_max: MAX_HANDSHAKES,
            opening_bytes_max: OPENING_MAX,
        };
        let gate = Gate::with_tls("election", listener, limits, settings.tls.clone())?;
        let (incoming_tx, incoming) = bounded(INCOMING_CAPACITY);
        let mut state = State { next_observer_id: -1, ..State::default() };
        for (sid, _) in &settings.peers {
            state.outboxes.insert(*sid, Outbox::new());
        }
        let shared = Arc::new(Shared {
            my_id: settings.my_id,
            announced: settings.announced,
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms.max(1)),
            handshake_timeout: Duration::from_millis(settings.handshake_timeout_ms.max(1)),
            configured: settings.peers.into_iter().collect(),
            state: Mutex::new(state),
            incoming_tx,
            incoming_rx: incoming.clone(),
            stopping: AtomicBool::new(false),
            counters: Counters::default(),
            gate: gate.counters(),
            tls: settings.tls,
            sasl: settings.sasl,
        });
        let listening = shared.clone();
        let waker = gate.waker();
        let handle = spawn_loud(format!("election-listen-{}", settings.my_id), move || {
            gate.run(&listening.stopping, judge_opening, |admitted| {
                listening.opened(admitted);
                true
            })
        })?;
        info!(my_id = shared.my_id, %local_addr, "election port listening");
        Ok((ElectionLinks { shared, local_addr, listener: Some((waker, handle)) }, incoming))
    }

    /// Queues `payload` for `to`, replacing a message to `to` not yet sent, and connects if needed. A
    /// message to ourselves is looped back to the incoming channel. A payload the receiver would refuse
    /// (empty, or over 512 KiB) and a message to an unknown, unconnected sid are dropped with a warning.
    pub fn send(&self, to: i64, payload: Vec<u8>) {
        if !is_sendable(payload.len()) {
            warn!(to, length = payload.len(), "election message not sent: its length would drop the connection");
            return;
        }
        if to == self.shared.my_id {
            self.shared.deliver(Incoming { from: to, payload });
            return;
        }
        let outbox = self.shared.state.lock().outboxes.get(&to).cloned();
        let Some(outbox) = outbox else {
            self.shared.note_down(to, "not sent: an unknown sid with no connection");
            return;
        };
        if outbox.replace(payload) {
            bump(&self.shared.counters.replaced);
        }
        self.shared.connect_one(to, None);
    }

    /// Members a reconfiguration brought in, with their election addresses (`host:port`): messages to
    /// them are queued and dialled from now on as to configured members (within the bound on peers the
    /// configuration does not list).
    pub fn add_members(&self, members: impl IntoIterator<Item = (i64, String)>) {
        let shared = &self.shared;
        let mut state = shared.state.lock();
        for (sid, address) in members {
            if sid == shared.my_id || shared.configured.contains_key(&sid) {
                continue;
            }
            let unknown = state.outboxes.len().saturating_sub(shared.configured.len());
            if !state.outboxes.contains_key(&sid) && unknown >= MAX_UNKNOWN_PEERS {
                warn!(my_id = shared.my_id, sid, "member not added: {MAX_UNKNOWN_PEERS} unknown peers already");
                continue;
            }
            state.learned.insert(sid, address);
            state.outboxes.entry(sid).or_insert_with(Outbox::new);
        }
    }

    /// Dials every peer we have an outbox for (every configured member, and observers that connected)
    /// and are not connected or connecting to.
    pub fn connect_all(&self) {
        let sids: Vec<i64> = self.shared.state.lock().outboxes.keys().copied().collect();
        for sid in sids {
            self.shared.connect_one(sid, None);
        }
    }

    /// Whether every outbox is empty. ZooKeeper's `haveDelivered` answers true as soon as *one* queue is
    /// empty; the election uses it only to choose between resending and reconnecting, and both converge.
    pub fn have_delivered(&self) -> bool {
        self.shared.state.lock().outboxes.values().all(|o| o.queue.lock().is_empty())
    }

    /// Sids with a live connection, ascending.
    pub fn connected_peers(&self) -> Vec<i64> {
        let mut sids: Vec<i64> = self.shared.state.lock().links.keys().copied().collect();
        sids.sort_unstable();
        sids
    }

    pub fn stats(&self) -> LinkStats {
        let mut stats = self.shared.counters.snapshot();
        let gate = self.shared.gate.snapshot();
        stats.refused += gate.refused + gate.timed_out + gate.evicted;
        stats
    }

    /// The bound election address (useful when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes the listener and every connection and joins every thread. Bounded by the connect timeout
    /// (a connector in `connect` cannot be interrupted); nothing else blocks.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some((waker, listener)) = self.listener.take() else { return };
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Err(e) = waker.wake() {
            error!(my_id = self.shared.my_id, "cannot wake the election port's admission to stop it: {e}");
        }
        // Its connections still in their opening close with it.
        let _ = listener.join();
        self.shared.state.lock().links.clear();
        loop {
            let threads = std::mem::take(&mut self.shared.state.lock().threads);
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                // A panic was already logged by the thread itself.
                let _ = thread.join();
            }
        }
        info!(my_id = self.shared.my_id, "election links shut down");
    }
}

impl Drop for ElectionLinks {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind_with_retries(listen: SocketAddr, retries: u32) -> io::Result<TcpListener> {
    let mut attempts = 0u32;
    loop {
        match bind(listen) {
            Ok(listener) => return Ok(listener),
            Err(e) => {
                attempts += 1;
                if retries != 0 && attempts >= retries {
                    error!(%listen, attempts, "cannot bind the election port: {e}");
                    return Err(e);
                }
                warn!(%listen, attempts, "cannot bind the election port, retrying: {e}");
                std::thread::sleep(BIND_RETRY_PAUSE);
            }
        }
    }
}

/// ZooKeeper sets SO_REUSEADDR so a restarted member rebinds while old connections sit in TIME_WAIT.
fn bind(listen: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(listen), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&listen.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// Spawns a named thread whose panic is logged (the default hook prints to stderr, not to the log).
fn spawn_loud(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    struct LoudOnPanic(String);
    impl Drop for LoudOnPanic {
        fn drop(&mut self) {
            if std::thread::panicking() {
                error!(thread = %self.0, "election link thread panicked; its connection or listener is gone");
            }
        }
    }
    let guard = LoudOnPanic(name.clone());
    std::thread::Builder::new().name(name).spawn(move || {
        let _guard = guard;
        f()
    })
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Spawns a worker and registers it for shutdown's join. Refused once shutdown has begun: every spawn
    /// happens under the state lock after this check, so shutdown's one pass over `threads` sees them all.
    fn spawn(&self, state: &mut State, name: String, f: impl FnOnce() + Send + 'static) -> bool {
        if self.stopping() {
            return false;
        }
        state.threads.retain(|t| !t.is_finished());
        match spawn_loud(name, f) {
            Ok(handle) => {
                state.threads.push(handle);
                true
            }
            Err(e) => {
                error!(my_id = self.my_id, "cannot start an election link thread: {e}");
                false
            }
        }
    }

    /// The accepting side (QuorumCnxManager.handleConnection), once the admission has read a whole
    /// opening message.
    fn opened(self: &Arc<Self>, admitted: Admitted) {
        let Admitted { reader, writer, peer: from, mut read, sequence: accepted } = admitted;
        let Ok(Some((message, used))) = InitialMessage::parse(&read) else {
            unreachable!("admitted on a whole opening message");
        };
        // Frames the peer sent right behind its opening are the receiver's.
        let behind = read.split_off(used);
        let Some(sasl) = self.sasl.clone() else {
            return self.identified(message, (reader, writer), from, accepted, behind);
        };
        // SASL comes next (ZooKeeper's handleConnection authenticates before the sid rules); its
        // exchange blocks, so it runs on a thread of its own, bounded by the handshake timeout.
        let shared = self.clone();
        let mut state = self.state.lock();
        self.spawn(&mut state, format!("election-auth-{}", message.sid), move || {
            let (mut reader, mut writer) = (reader, writer);
            let mut behind = behind;
            let _ = reader.socket().set_read_timeout(Some(shared.handshake_timeout));
            match sasl.authenticate_from(&mut reader, &mut writer, &mut behind) {
                Ok(admission) => {
                    debug!(my_id = shared.my_id, sid = message.sid, ?admission, "election connection: SASL");
                    let _ = reader.socket().set_read_timeout(None);
                    shared.identified(message, (reader, writer), from, accepted, behind);
                }
                Err(why) => {
                    warn!(my_id = shared.my_id, %from, sid = message.sid, "election connection refused: SASL: {why}");
                    bump(&shared.counters.refused);
                    let _ = writer.shutdown();
                }
            }
        });
    }

    /// The rest of the accepting side, once the peer is who it says (or need not prove it).
    fn identified(
        self: &Arc<Self>,
        message: InitialMessage,
        stream: (ReadHalf, WriteHalf),
        from: SocketAddr,
        accepted: u64,
        behind: Vec<u8>,
    ) {
        let address = reachable_address(&message);
        if message.sid == OBSERVER_ID {
            // ZooKeeper names such an observer with a fresh negative id and then applies the sid rule, which
            // (the id being smaller than any member's) makes it dial the observer back, and the observer, a
            // larger sid, close and reconnect: a loop. The observer connected and cannot be told its new
            // id, so its connection is kept instead.
            let sid = self.assign_observer_id();
            info!(my_id = self.my_id, %from, sid, "an observer without an id connected");
            return self.accept_link(sid, stream, address, accepted, behind);
        }
        match on_accept(self.my_id, message.sid) {
            OnAccept::Keep => self.accept_link(message.sid, stream, address, accepted, behind),
            OnAccept::ConnectBack => {
                drop(stream);
                bump(&self.counters.connected_back);
                // The smaller sid thinks it has no connection to us; ours to it may be stale.
                self.drop_link(message.sid);
                self.connect_one(message.sid, address);
            }
            OnAccept::Refuse => {
                warn!(my_id = self.my_id, %from, "election connection from a member with our own sid: a configuration error?");
                bump(&self.counters.refused);
            }
        }
    }

    fn assign_observer_id(&self) -> i64 {
        let mut state = self.state.lock();
        let sid = state.next_observer_id;
        state.next_observer_id -= 1;
        sid
    }

    fn accept_link(
        self: &Arc<Self>,
        sid: i64,
        stream: (ReadHalf, WriteHalf),
        address: Option<String>,
        accepted: u64,
        behind: Vec<u8>,
    ) {
        if let Some(address) = address {
            self.learn_address(sid, address);
        }
        if self.install_link(sid, stream, Some(accepted), behind) {
            bump(&self.counters.accepted);
        }
    }

    fn learn_address(&self, sid: i64, address: String) {
        if self.configured.contains_key(&sid) {
            return;
        }
        let mut state = self.state.lock();
        if state.learned.len() < MAX_UNKNOWN_PEERS || state.learned.contains_key(&sid) {
            state.learned.insert(sid, address);
        }
    }

    /// Makes `stream` the live connection to `sid`, closing any older one, and starts its workers;
    /// `behind` holds bytes already read from it past its opening message.
    ///
    /// "Older" is by accept order, not by whose opening completed first: openings are read side by side
    /// (ZooKeeper reads them one at a time on its listener), and a peer that replaced its connection must
    /// not see the replaced one win. A dialled connection (`accepted` None) is never raced by another for
    /// the same sid: one dial at a time, and we only dial sids we do not accept from.
    fn install_link(
        self: &Arc<Self>,
        sid: i64,
        stream: (ReadHalf, WriteHalf),
        accepted: Option<u64>,
        behind: Vec<u8>,
    ) -> bool {
        self.install_locked(&mut self.state.lock(), sid, stream, accepted, behind)
    }

    fn install_locked(
        self: &Arc<Self>,
        state: &mut State,
        sid: i64,
        (reader, writer): (ReadHalf, WriteHalf),
        accepted: Option<u64>,
        behind: Vec<u8>,
    ) -> bool {
        if self.stopping() {
            return false;
        }
        let current = state.links.get(&sid).and_then(|link| link.accepted);
        if let (Some(newer), Some(this)) = (current, accepted)
            && newer > this
        {
            debug!(my_id = self.my_id, sid, "an older connection finished its handshake after a newer one: closed");
            return false;
        }
        let unknown = state.outboxes.len().saturating_sub(self.configured.len());
        if !state.outboxes.contains_key(&sid) && unknown >= MAX_UNKNOWN_PEERS {
            warn!(my_id = self.my_id, sid, "election connection refused: {MAX_UNKNOWN_PEERS} unknown peers already");
            bump(&self.counters.refused);
            return false;
        }
        let closer = writer.clone();
        let outbox = state.outboxes.entry(sid).or_insert_with(Outbox::new).clone();
        state.next_id += 1;
        let id = state.next_id;
        let (stop_tx, stop_rx) = bounded::<()>(0);
        if state.links.insert(sid, Link { id, accepted, stream: closer, _stop: stop_tx }).is_some() {
            debug!(my_id = self.my_id, sid, "election connection replaced by a newer one");
        }
        self.note_up(state, sid);
        let (receiving, sending) = (self.clone(), self.clone());
        let receiver = move || receiving.receive_loop(sid, id, io::Cursor::new(behind).chain(reader));
        let sender = move || sending.send_loop(sid, id, writer, outbox, stop_rx);
        let started = self.spawn(state, format!("election-recv-{sid}"), receiver)
            && self.spawn(state, format!("election-send-{sid}"), sender);
        if !started {
            state.links.remove(&sid);
        }
        started
    }

    fn drop_link(&self, sid: i64) {
        let link = self.state.lock().links.remove(&sid);
        drop(link);
    }

    /// Called by both workers of a connection as they end; the first one removes it, if still current.
    fn link_ended(&self, sid: i64, id: u64, cause: Option<LinkError>) {
        let mut state = self.state.lock();
        if state.links.get(&sid).is_none_or(|link| link.id != id) {
            return;
        }
        let link = state.links.remove(&sid);
        drop(state);
        if !self.stopping() {
            bump(&self.counters.broken);
            let cause = cause.map_or_else(|| "closed".to_owned(), |e| e.to_string());
            info!(my_id = self.my_id, sid, "election connection ended: {cause}");
        }
        // Counted before the socket closes, so whoever sees the close also sees the count.
        drop(link);
    }

    /// ZooKeeper's RecvWorker: frames in, until the connection breaks or sends a bad length.
    fn receive_loop(&self, sid: i64, id: u64, stream: impl Read) {
        let mut reader = BufReader::new(stream);
        let mut payload = Vec::new();
        let cause = loop {
            if let Err(e) = read_frame(&mut reader, &mut payload) {
                break e;
            }
            self.deliver(Incoming { from: sid, payload: std::mem::take(&mut payload) });
        };
        self.link_ended(sid, id, Some(cause));
    }

    /// ZooKeeper's SendWorker: the outbox out, until the connection breaks or is replaced.
    fn send_loop(&self, sid: i64, id: u64, mut stream: WriteHalf, outbox: Outbox, stop: Receiver<()>) {
        let mut scratch = Vec::new();
        let last = outbox.queue.lock().on_connect();
        if let Some(last) = last
            && let Err(e) = write_frame(&mut stream, &mut scratch, &last)
        {
            return self.link_ended(sid, id, Some(e.into()));
        }
        let stopped = || matches!(stop.try_recv(), Err(TryRecvError::Disconnected));
        let cause = 'connection: loop {
            // `select!` picks at random among ready operations; a replaced link must not take a message,
            // and a doorbell it took belongs to the replacing connection's sender.
            if stopped() {
                outbox.wake();
                break None;
            }
            loop {
                let message = outbox.queue.lock().take();
                let Some(message) = message else { break };
                if stopped() {
                    outbox.requeue(message);
                    break 'connection None;
                }
                if let Err(e) = write_frame(&mut stream, &mut scratch, &message) {
                    // The replacing connection's sender may already be waiting on the outbox.
                    outbox.requeue(message);
                    break 'connection Some(e.into());
                }
            }
            select! {
                recv(outbox.bell) -> ring => {
                    ring.expect("the outbox holds its own doorbell");
                }
                recv(stop) -> _ => {
                    outbox.wake();
                    break None;
                }
            }
        };
        self.link_ended(sid, id, cause);
    }

    /// Hands a notification to the election; when it is behind by `INCOMING_CAPACITY`, the oldest goes.
    fn deliver(&self, mut incoming: Incoming) {
        loop {
            match self.incoming_tx.try_send(incoming) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) => {
                    if self.incoming_rx.try_recv().is_ok() {
                        bump(&self.counters.incoming_dropped);
                        debug!(my_id = self.my_id, "incoming election queue full: dropped the oldest notification");
                    }
                    incoming = back;
                }
                Err(TrySendError::Disconnected(_)) => unreachable!("the manager holds a receiver"),
            }
        }
    }

    /// ZooKeeper's connectOne: dial `sid` unless connected or already dialling. `hint` is the address the
    /// peer announced, preferred over the configured one as ZooKeeper does when connecting back.
    fn connect_one(self: &Arc<Self>, sid: i64, hint: Option<String>) {
        let mut state = self.state.lock();
        if self.stopping() || state.links.contains_key(&sid) || state.connecting.contains(&sid) {
            return;
        }
        let address = hint.or_else(|| self.configured.get(&sid).cloned()).or_else(|| state.learned.get(&sid).cloned());
        let Some(address) = address else {
            drop(state);
            return self.note_down(sid, "no election address known");
        };
        state.connecting.insert(sid);
        let shared = self.clone();
        let started = self.spawn(&mut state, format!("election-connect-{sid}"), move || {
            let result = shared.dial(sid, &address);
            shared.finish_dial(sid, &address, result);
        });
        if !started {
            state.connecting.remove(&sid);
        }
    }

    /// Connects (over TLS with `sslQuorum`), sends our opening message, and returns the connection if we
    /// are the side that keeps it.
    fn dial(&self, sid: i64, address: &str) -> io::Result<Option<(ReadHalf, WriteHalf)>> {
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing");
        let mut connected = None;
        for candidate in address.to_socket_addrs()? {
            match TcpStream::connect_timeout(&candidate, self.connect_timeout) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        let stream = connected.ok_or(last_error)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(self.handshake_timeout))?;
        stream.set_read_timeout(Some(self.handshake_timeout))?;
        let (mut reader, mut writer) = dialled(self.tls.as_deref(), stream, address)?;
        write_opening(&mut writer, self.my_id, &self.announced)?;
        if let Some(sasl) = &self.sasl {
            sasl.authenticate_to(&mut reader, &mut writer, super::sasl::host_of(address))
                .map_err(|why| io::Error::new(io::ErrorKind::PermissionDenied, format!("SASL: {why}")))?;
        }
        writer.socket().set_write_timeout(None)?;
        writer.socket().set_read_timeout(None)?;
        match on_initiate(self.my_id, sid) {
            OnInitiate::Keep => Ok(Some((reader, writer))),
            OnInitiate::CloseAfterOpening => Ok(None),
        }
    }

    fn finish_dial(self: &Arc<Self>, sid: i64, address: &str, result: io::Result<Option<(ReadHalf, WriteHalf)>>) {
        let mut state = self.state.lock();
        // Cleared in the same critical section as the install: the peer's opening message, if handled
        // meanwhile, then finds either the new link (drops it and dials again) or no dial in progress
        // (dials). Cleared after the install, it could find neither and leave the pair unconnected.
        state.connecting.remove(&sid);
        match result {
            Ok(Some(stream)) => {
                if self.install_locked(&mut state, sid, stream, None, Vec::new()) {
                    bump(&self.counters.opened);
                }
            }
            Ok(None) => {
                bump(&self.counters.opened_and_closed);
                self.note_up(&mut state, sid);
            }
            Err(e) => {
                drop(state);
                self.note_down(sid, &format!("cannot connect to {address}: {e}"));
            }
        }
    }

    fn note_down(&self, sid: i64, why: &str) {
        let mut state = self.state.lock();
        let bounded = state.reach.len() < self.configured.len() + MAX_UNKNOWN_PEERS || state.reach.contains_key(&sid);
        if bounded && state.reach.insert(sid, Reach::Down) != Some(Reach::Down) {
            warn!(my_id = self.my_id, sid, "election peer unreachable: {why}");
        } else {
            debug!(my_id = self.my_id, sid, "election peer still unreachable: {why}");
        }
    }

    fn note_up(&self, state: &mut State, sid: i64) {
        if state.reach.insert(sid, Reach::Up) == Some(Reach::Down) {
            info!(my_id = self.my_id, sid, "election peer reachable again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_wakes_its_sender_once_per_change() {
        let outbox = Outbox::new();
        assert!(!outbox.replace(b"one".to_vec()), "nothing to replace yet");
        assert!(outbox.replace(b"two".to_vec()), "the unsent message is replaced");
        assert!(outbox.bell.try_recv().is_ok(), "the sender is woken");
        assert!(outbox.bell.try_recv().is_err(), "one wake-up for both");
        outbox.requeue(b"older, put back".to_vec());
        assert!(outbox.bell.try_recv().is_ok(), "a put-back message wakes the sender too");
        assert_eq!(outbox.queue.lock().take().unwrap(), b"two", "a put-back message never displaces a newer one");
    }

    #[test]
    fn messages_to_self_loop_back_and_the_oldest_go_when_the_election_falls_behind() {
        let settings = ElectionLinkSettings::new(7, "127.0.0.1:0".parse().unwrap(), "127.0.0.1:1".into(), vec![]);
        let (links, incoming) = ElectionLinks::start(settings).unwrap();
        let extra = 30;
        for i in 0..INCOMING_CAPACITY + extra {
            links.send(7, i.to_string().into_bytes());
        }
        assert_eq!(links.stats().incoming_dropped, extra as u64);
        let first = incoming.try_recv().unwrap();
        assert_eq!((first.from, first.payload), (7, extra.to_string().into_bytes()));
        assert_eq!(incoming.len(), INCOMING_CAPACITY - 1);
        // Payloads the receiver would refuse are not sent at all.
        links.send(7, Vec::new());
        assert_eq!(incoming.len(), INCOMING_CAPACITY - 1);
        assert!(links.have_delivered(), "no peers, nothing pending");
        links.shutdown();
        // The channel closes once every thread is gone: iteration ends after what was left in it.
        assert_eq!(incoming.iter().count(), INCOMING_CAPACITY - 1);
    }
}
