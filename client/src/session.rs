//! The session machinery: state shared between callers and the I/O thread, and the I/O thread itself
//! (connect, handshake, restore watches and auth, read and dispatch replies, ping, reconnect).
//!
//! Two locks, always taken in this order: `out` (the socket's writing half and the xid counter) and
//! `state` (everything else). A caller enqueues its pending entry and writes its frame under `out`, so
//! the pending queue is in xid order, which is the order ZooKeeper answers in; the I/O thread needs only
//! `state` to dispatch a reply, so a caller blocked writing never stops replies from being read.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use fk_net::client::watch::EventType;
use fk_net::client::{AuthPacket, ConnectRequest, ErrorCode, PASSWORD_LEN, Request, WatcherEvent, xid};
use fk_net::jute::Jute;

use crate::connect_string::ConnectString;
use crate::connection::{self, Frame, Reader};
use crate::error::{Error, Result};
use crate::sasl::{Sasl, SaslFailure};
use crate::watches::{KeeperState, WatchKind, WatchRegistry, WatchedEvent};

/// Longest pause between two rounds over every host while disconnected.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long close() waits for the server to confirm closeSession.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// A reply handed to the caller that sent the request.
pub(crate) type Reply = Result<(i32, Vec<u8>)>;

pub(crate) struct Pending {
    pub xid: i32,
    /// The watch a successful reply leaves on the server (server path).
    pub watch: Option<(WatchKind, String)>,
    pub reply: Sender<Reply>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    Connected,
    Expired,
    Closed,
}

pub(crate) struct State {
    pub phase: Phase,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    pub last_zxid: i64,
    pub pending: VecDeque<Pending>,
    pub watches: WatchRegistry,
    /// Every addAuth so far, sent again after each reconnect as the Java client does.
    pub auth: Vec<AuthPacket>,
    /// closeSession is on its way: the server's hang-up that follows is not a lost connection.
    pub closing: bool,
    /// Rounds over every host that found no server; a request waiting for a connection fails with
    /// ConnectionLoss when one ends, as Java's client fails its queued packets when a connect fails.
    pub failed_rounds: u64,
}

pub(crate) struct Out {
    pub stream: Option<connection::Writer>,
    pub next_xid: i32,
    pub last_send: Instant,
}

pub(crate) struct Shared {
    pub connect: ConnectString,
    pub requested_timeout_ms: i32,
    pub out: Mutex<Out>,
    pub state: Mutex<State>,
    pub changed: Condvar,
    pub events: Sender<WatchedEvent>,
    /// SASL, authenticated on each connection before callers are let in.
    pub sasl: Option<Sasl>,
    /// Connect over TLS with this configuration.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Shared {
    pub fn new(
        connect: ConnectString,
        timeout: Duration,
        events: Sender<WatchedEvent>,
        sasl: Option<Sasl>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Shared {
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        Shared {
            connect,
            requested_timeout_ms: timeout_ms,
            out: Mutex::new(Out { stream: None, next_xid: 1, last_send: Instant::now() }),
            state: Mutex::new(State {
                phase: Phase::Connecting,
                session_id: 0,
                passwd: vec![0; PASSWORD_LEN],
                timeout_ms,
                last_zxid: 0,
                pending: VecDeque::new(),
                watches: WatchRegistry::default(),
                auth: Vec::new(),
                closing: false,
                failed_rounds: 0,
            }),
            changed: Condvar::new(),
            events,
            sasl,
            tls,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("client state lock poisoned")
    }

    pub fn out(&self) -> MutexGuard<'_, Out> {
        self.out.lock().expect("client output lock poisoned")
    }

    /// Waits until the session is connected (or is gone for good) for at most `limit`; with
    /// `one_round`, also gives up when a round of connection attempts over every host has failed.
    pub fn wait_connected(&self, limit: Duration, one_round: bool) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut state = self.state();
        let rounds_at_start = state.failed_rounds;
        loop {
            match state.phase {
                Phase::Connected => return Ok(()),
                Phase::Expired => return Err(Error::session_expired()),
                Phase::Closed => return Err(Error::Closed),
                Phase::Connecting => {}
            }
            let now = Instant::now();
            if now >= deadline || (one_round && state.failed_rounds != rounds_at_start) {
                return Err(Error::connection_loss());
            }
            state = self.changed.wait_timeout(state, deadline - now).expect("client state lock poisoned").0;
        }
    }

    /// Sends `request` with a fresh xid (or its reserved one) and queues `pending` for the reply.
    pub fn send(&self, request: &Request, watch: Option<(WatchKind, String)>, reply: Sender<Reply>) -> Result<()> {
        let mut out = self.out();
        let xid = match request {
            Request::Auth(_) => xid::AUTH,
            _ => {
                out.next_xid = out.next_xid.checked_add(1).unwrap_or(1);
                out.next_xid
            }
        };
        {
            let mut state = self.state();
            match state.phase {
                Phase::Connected => {}
                Phase::Connecting => return Err(Error::connection_loss()),
                Phase::Expired => return Err(Error::session_expired()),
                Phase::Closed => return Err(Error::Closed),
            }
            state.pending.push_back(Pending { xid, watch, reply });
        }
        let Some(stream) = out.stream.as_mut() else { return Err(Error::connection_loss()) };
        if connection::write_request(stream, xid, request).is_err() {
            // The I/O thread sees the broken socket too and fails the pending entry with ConnectionLoss.
            let _ = stream.shutdown();
        }
        out.last_send = Instant::now();
        Ok(())
    }

    fn emit(&self, event: WatchedEvent) {
        // Nobody listening is fine: events are a service, not an obligation.
        let _ = self.events.send(event);
    }

    /// Moves to `phase`, failing everything in flight with `error`.
    fn drop_connection(&self, phase: Phase, error: fn() -> Error) {
        let mut out = self.out();
        if let Some(stream) = out.stream.take() {
            let _ = stream.shutdown();
        }
        let mut state = self.state();
        if matches!(state.phase, Phase::Expired | Phase::Closed) {
            return;
        }
        state.phase = phase;
        for pending in state.pending.drain(..) {
            let _ = pending.reply.send(Err(error()));
        }
        self.changed.notify_all();
    }
}

/// The I/O thread's body: runs until the session expires or the client is closed.
pub(crate) fn run(shared: Arc<Shared>) {
    let mut next_host = 0;
    let mut backoff = Duration::from_millis(10);
    loop {
        if shared.state().phase == Phase::Closed {
            return;
        }
        match establish(&shared, &mut next_host) {
            Establish::Connected(reader) => {
                backoff = Duration::from_millis(10);
                serve(&shared, reader);
                let state = shared.state();
                if state.closing || state.phase == Phase::Closed {
                    return;
                }
                drop(state);
                shared.drop_connection(Phase::Connecting, Error::connection_loss);
                shared.emit(WatchedEvent::state_change(KeeperState::Disconnected));
            }
            Establish::Expired => {
                shared.drop_connection(Phase::Expired, Error::session_expired);
                shared.emit(WatchedEvent::state_change(KeeperState::Expired));
                return;
            }
            // The server refused the credentials: retrying would only be refused again (Java's client
            // stops too, in its AUTH_FAILED state).
            Establish::AuthFailed => {
                shared.drop_connection(Phase::Expired, Error::auth_failed);
                shared.emit(WatchedEvent::state_change(KeeperState::AuthFailed));
                return;
            }
            Establish::Unreachable => {
                shared.state().failed_rounds += 1;
                shared.changed.notify_all();
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
            }
        }
    }
}

enum Establish {
    Connected(Reader),
    Expired,
    AuthFailed,
    Unreachable,
}

/// One round over the hosts, starting after the last one used: the first that answers gets the session.
fn establish(shared: &Shared, next_host: &mut usize) -> Establish {
    let hosts = &shared.connect.hosts;
    for _ in 0..hosts.len() {
        let host = &hosts[*next_host % hosts.len()];
        *next_host = (*next_host + 1) % hosts.len();
        let request = {
            let state = shared.state();
            ConnectRequest {
                protocol_version: fk_net::client::PROTOCOL_VERSION,
                last_zxid_seen: state.last_zxid,
                timeout_ms: shared.requested_timeout_ms,
                session_id: state.session_id,
                passwd: state.passwd.clone(),
                read_only: Some(false),
            }
        };
        let connect_timeout = Duration::from_millis(u64::try_from(shared.requested_timeout_ms).unwrap_or(0) / 3)
            .clamp(Duration::from_millis(100), Duration::from_secs(10));
        let Ok((mut reader, response)) = connection::handshake(host, &request, connect_timeout, shared.tls.as_ref())
        else {
            continue;
        };
        // A reconnect to an expired session is answered with timeout 0 (ZooKeeper's `ClientCnxn`
        // reports Expired then).
        if response.timeout_ms <= 0 {
            return Establish::Expired;
        }
        if let Some(sasl) = &shared.sasl {
            match crate::sasl::authenticate(&mut reader, host, sasl) {
                Ok(()) => {}
                Err(SaslFailure::Refused) => return Establish::AuthFailed,
                Err(SaslFailure::Io) => continue,
            }
        }
        if start_session(shared, &reader, response).is_ok() {
            return Establish::Connected(reader);
        }
    }
    Establish::Unreachable
}

/// Installs the new connection: restores watches and auth (Java's `primeConnection` order), then lets
/// callers in.
fn start_session(shared: &Shared, reader: &Reader, response: fk_net::client::ConnectResponse) -> std::io::Result<()> {
    let mut stream = reader.writer()?;
    let mut out = shared.out();
    let mut state = shared.state();
    state.session_id = response.session_id;
    state.passwd = response.passwd;
    state.timeout_ms = response.timeout_ms;
    if !state.watches.is_empty() {
        let watches = Request::SetWatches(state.watches.set_watches(state.last_zxid));
        connection::write_request(&mut stream, xid::SET_WATCHES, &watches)?;
    }
    for auth in &state.auth {
        connection::write_request(&mut stream, xid::AUTH, &Request::Auth(auth.clone()))?;
    }
    out.stream = Some(stream);
    out.last_send = Instant::now();
    state.phase = Phase::Connected;
    shared.changed.notify_all();
    drop(state);
    drop(out);
    shared.emit(WatchedEvent::state_change(KeeperState::SyncConnected));
    Ok(())
}

/// Reads and dispatches until the connection breaks, goes silent or the client closes. Like Java's
/// `ClientCnxn`: silence for two thirds of the session timeout is a lost connection, and a ping goes out
/// after half of that without a send.
fn serve(shared: &Shared, mut reader: Reader) {
    let timeout_ms = u64::try_from(shared.state().timeout_ms).unwrap_or(1);
    let read_timeout = Duration::from_millis(timeout_ms * 2 / 3).max(Duration::from_millis(10));
    let ping_interval = read_timeout / 2;
    if reader.set_read_timeout((ping_interval / 4).max(Duration::from_millis(5))).is_err() {
        return;
    }
    let mut last_receive = Instant::now();
    loop {
        if shared.state().phase != Phase::Connected {
            return;
        }
        match reader.next_frame() {
            Err(_) => return,
            Ok(Some(frame)) => {
                last_receive = Instant::now();
                if dispatch(shared, frame).is_err() {
                    return;
                }
            }
            Ok(None) if last_receive.elapsed() >= read_timeout => return,
            Ok(None) => {}
        }
        let mut out = shared.out();
        if out.last_send.elapsed() >= ping_interval {
            let Some(stream) = out.stream.as_mut() else { return };
            if connection::write_request(stream, xid::PING, &Request::Ping).is_err() {
                return;
            }
            out.last_send = Instant::now();
        }
    }
}

/// A reply that matches nothing in flight: the connection is out of step and must be dropped.
struct OutOfStep;

fn dispatch(shared: &Shared, frame: Frame) -> std::result::Result<(), OutOfStep> {
    let Frame { header, body } = frame;
    let mut state = shared.state();
    if header.zxid > 0 {
        state.last_zxid = header.zxid;
    }
    match header.xid {
        xid::PING | xid::SET_WATCHES => Ok(()),
        xid::NOTIFICATION => {
            let Ok(event) = WatcherEvent::decode_exact(&body) else { return Err(OutOfStep) };
            let event_type = EventType::from_i32(event.event_type).unwrap_or(EventType::None);
            state.watches.fired(event_type, &event.path);
            drop(state);
            let path = Some(shared.connect.to_client(&event.path));
            shared.emit(WatchedEvent { event_type, state: KeeperState::SyncConnected, path });
            Ok(())
        }
        xid::AUTH => {
            // An addAuth caller waits for its answer; a re-sent auth after reconnect has no waiter.
            if state.pending.front().is_some_and(|p| p.xid == xid::AUTH) {
                let pending = state.pending.pop_front().expect("front exists");
                let _ = pending.reply.send(Ok((header.err, body)));
            }
            drop(state);
            if header.err == ErrorCode::AuthFailed.as_i32() {
                shared.emit(WatchedEvent::state_change(KeeperState::AuthFailed));
            }
            Ok(())
        }
        xid => {
            let Some(pending) = state.pending.pop_front() else { return Err(OutOfStep) };
            if pending.xid != xid {
                let _ = pending.reply.send(Err(Error::connection_loss()));
                return Err(OutOfStep);
            }
            register_watch(&mut state.watches, pending.watch.as_ref(), header.err);
            let _ = pending.reply.send(Ok((header.err, body)));
            Ok(())
        }
    }
}

/// A watching read leaves a watch when it succeeds; exists (registered as `Exist`) leaves a data watch
/// on an existing node and an exist watch on a missing one (ZooKeeper's `ExistsWatchRegistration`).
fn register_watch(watches: &mut WatchRegistry, watch: Option<&(WatchKind, String)>, err: i32) {
    let Some((kind, path)) = watch else { return };
    match (*kind, err) {
        (WatchKind::Exist, 0) => watches.add(WatchKind::Data, path),
        (WatchKind::Exist, err) if err == ErrorCode::NoNode.as_i32() => watches.add(WatchKind::Exist, path),
        (kind, 0) => watches.add(kind, path),
        _ => {}
    }
}

/// Closes the session: sends closeSession, waits a little for its answer, then stops the I/O thread.
pub(crate) fn close(shared: &Shared) {
    shared.state().closing = true;
    let (tx, rx) = crossbeam_channel::bounded(1);
    if shared.send(&Request::CloseSession, None, tx).is_ok() {
        let _ = rx.recv_timeout(CLOSE_WAIT);
    }
    shared.drop_connection(Phase::Closed, || Error::Closed);
    let mut state = shared.state();
    state.phase = Phase::Closed;
    shared.changed.notify_all();
    drop(state);
    shared.emit(WatchedEvent::state_change(KeeperState::Closed));
}
