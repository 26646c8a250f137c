//! A shard: one thread with its own mio `Poll`, owning its connections for their whole life. Reads are
//! answered here from the tree; writes go to the sequencer and their replies come back through the
//! shard's channel, which is drained under the tree's read lock before any read is answered, so a
//! client always sees a watch event before data that is newer than the event.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use fk_engine::tree::DataTree;
use fk_net::client::*;
use fk_net::frame::LENGTH_PREFIX;
use fk_net::jute::{Jute, JuteReader};
use fk_net::reactor::{BufferPool, POOL_BUFFERS_MAX, ReadStatus};
use fk_net::sasl::digest_md5::Service;
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, info, warn};

use super::Shared;
use super::connection::{Connection, LocalKept, Phase, WriteKept};
use super::held_connects::HeldConnects;
use super::messages::*;
use super::tls::{Port, Transport};
use crate::apply::replies::{Delivery, in_delivery_order};
use crate::config::SaslService;
use crate::ops::audit::{self, Requester, events};
use crate::ops::figures::ConnectionFigures;
use crate::ops::fourlw::{self, FourLetterJob, SET_TRACE_MASK};
use crate::ops::stats::RequestKind;
use crate::read::Reader;
use crate::requests::{Local, Routing, SessionRules, answer_local, route_frame};
use crate::sasl::{Authenticated, ServerExchange};
use crate::watch::{ConnId, WatchTable};
use fk_tls::nonblocking::TlsFailure;

pub const WAKER_TOKEN: Token = Token(0);

/// Requests a connection may have waiting before the shard stops reading from it (ZooKeeper's
/// per-connection throttle); replies drain it.
const PENDING_LIMIT: usize = 1000;
/// Unsent output above which a connection is not read until the client catches up.
const OUTPUT_LIMIT_BYTES: usize = 4 << 20;
/// Input buffered per connection before reading pauses (raised to hold the largest frame allowed).
const INPUT_LIMIT_BYTES: usize = 1 << 20;
/// The bytes after `stmk`: its trace mask.
const TRACE_MASK_BYTES: usize = 8;
/// Frames handled per connection per loop turn, so one busy client cannot starve the others.
const FRAMES_PER_TURN: usize = 256;
/// Connections read per turn. Each read borrows an input buffer until its frames are handled; reading
/// no more connections than the pool keeps buffers bounds that memory (5,000 clients connecting at
/// once would otherwise take 64 KiB each for a moment, and the allocator keeps what it was given).
const READS_PER_TURN: usize = POOL_BUFFERS_MAX;

/// The shard's state.
pub struct ShardState {
    pub index: usize,
    pub conns: HashMap<ConnId, Connection>,
    pub watches: WatchTable,
    next_conn: ConnId,
    touched: HashSet<i64>,
    last_touch_report: Instant,
    /// Connections with input to process this turn.
    input_ready: Vec<ConnId>,
    /// Connections with output to flush (or to close) this turn.
    output_dirty: Vec<ConnId>,
    /// Connections to read next turn (more were ready than one turn reads).
    deferred: Vec<ConnId>,
    outbox: Vec<SequencerMsg>,
    /// When connections without a session, or closing with output unflushed, are given up on (earliest
    /// first). An entry is acted on only if the connection still has that deadline.
    deadlines: BinaryHeap<Reverse<(Instant, ConnId)>>,
    /// ConnectRequests waiting for this member to serve again.
    held_connects: HeldConnects,
    /// Input buffers, lent to connections only while they hold unframed bytes.
    pool: BufferPool,
}

impl ShardState {
    /// Client connections, as `cons` and `stat` list them: not the ones carrying a 4-letter word.
    pub fn clients(&self) -> impl Iterator<Item = &Connection> {
        self.conns.values().filter(|c| !matches!(c.phase, Phase::FourLetter { .. }))
    }

    /// Answers a 4lw or admin figure's question from this shard's state.
    fn answer(&mut self, query: ShardQuery) {
        match query {
            ShardQuery::Connections(answer) => {
                let connections = self
                    .clients()
                    .map(|c| ConnectionFigures {
                        peer: c.peer,
                        queued: c.requests.len(),
                        output_bytes: c.buffers.pending_output(),
                        session: match c.phase {
                            Phase::Session { session_id, timeout_ms, .. } => Some((session_id, timeout_ms)),
                            _ => None,
                        },
                        stats: c.stats.clone(),
                    })
                    .collect();
                let _ = answer.send(connections);
            }
            ShardQuery::ResetConnectionStats => self.conns.values_mut().for_each(|c| c.stats.reset()),
            ShardQuery::Watches(answer) => {
                let entries = self.watches.entries();
                let data_watches = entries
                    .filter(|(_, _, in_data_manager)| *in_data_manager)
                    .filter_map(|(path, conn, _)| {
                        self.conns.get(&conn).and_then(|c| c.session_id()).map(|id| (id, path.to_owned()))
                    })
                    .collect();
                let _ = answer.send(ShardWatches {
                    entries: self.watches.entries().count(),
                    paths: self.watches.entries().map(|(p, _, _)| p.to_owned()).collect(),
                    data_watches,
                });
            }
        }
    }
}

pub struct Shard {
    state: ShardState,
    shared: Arc<Shared>,
    poll: Poll,
    rx: Receiver<ShardMsg>,
    sequencer: Sender<SequencerMsg>,
    fourlw: Sender<FourLetterJob>,
    /// The schemes a connection must have authenticated with before its requests are served
    /// (`enforce.auth.*`, `sessionRequireClientSASLAuth`).
    required_auth: Option<Vec<String>>,
}

impl Shard {
    pub fn new(
        index: usize,
        shared: Arc<Shared>,
        poll: Poll,
        rx: Receiver<ShardMsg>,
        sequencer: Sender<SequencerMsg>,
        fourlw: Sender<FourLetterJob>,
    ) -> Shard {
        let state = ShardState {
            index,
            conns: HashMap::new(),
            watches: WatchTable::new(crate::storage::random_hash_seed()),
            next_conn: 1,
            touched: HashSet::new(),
            last_touch_report: Instant::now(),
            input_ready: Vec::new(),
            output_dirty: Vec::new(),
            deferred: Vec::new(),
            outbox: Vec::new(),
            deadlines: BinaryHeap::new(),
            held_connects: HeldConnects::default(),
            pool: BufferPool::default(),
        };
        let required_auth = shared.config.enforce_auth.required_schemes();
        Shard { state, shared, poll, rx, sequencer, fourlw, required_auth }
    }

    /// How often touched sessions are reported to the session tracker: often enough that the delay is
    /// small next to the shortest session timeout (2 ticks).
    fn touch_interval(&self) -> Duration {
        Duration::from_millis((self.shared.config.tick_time_ms as u64 / 4).clamp(10, 500))
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            // Work left from the last turn (unblocked reads, resumed reading) must not wait for an event.
            let timeout = if self.state.input_ready.is_empty() {
                let next_deadline = self.state.deadlines.peek().map(|Reverse((at, _))| *at);
                let next_deadline = match (next_deadline, self.state.held_connects.next_expiry()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let until = next_deadline.map_or(Duration::MAX, |at| at.saturating_duration_since(Instant::now()));
                self.touch_interval().min(until)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                panic!("shard {} poll failed: {e}", self.state.index);
            }
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    continue;
                }
                let id = event.token().0 as ConnId;
                if let Some(conn) = self.state.conns.get_mut(&id) {
                    conn.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
                    if event.is_writable() {
                        self.state.output_dirty.push(id);
                    }
                    self.state.input_ready.push(id);
                }
            }
            self.turn();
        }
    }

    fn turn(&mut self) {
        self.read_sockets();
        {
            let shared = self.shared.clone();
            let tree = shared.tree.read();
            self.drain_channel(&tree);
            self.serve_held_connects(&tree);
            self.process_input(&tree);
        }
        for msg in self.state.outbox.drain(..) {
            self.sequencer.send(msg).expect("sequencer thread is gone");
        }
        self.report_touches();
        self.expire_deadlines(Instant::now());
        self.flush_output();
        // Connections whose read was deferred go first next turn, so none waits behind newer work.
        let mut next = std::mem::take(&mut self.state.deferred);
        next.append(&mut self.state.input_ready);
        self.state.input_ready = next;
    }

    /// The most input a connection may have buffered: enough for the largest frame `jute.maxbuffer`
    /// allows, so that a frame can always complete.
    fn input_cap(&self) -> usize {
        INPUT_LIMIT_BYTES.max(LENGTH_PREFIX + self.shared.config.jute_max_buffer + 1)
    }

    fn read_sockets(&mut self) {
        let cap = self.input_cap();
        let mut ids = std::mem::take(&mut self.state.input_ready);
        let mut reads = 0;
        let mut established = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            let Some(conn) = self.state.conns.get_mut(id) else { continue };
            if !may_read(conn, cap) {
                continue;
            }
            if reads == READS_PER_TURN {
                // The rest wait for the next turn, which starts at once (input_ready is not empty).
                self.state.deferred.extend(ids.drain(index..));
                break;
            }
            reads += 1;
            let tls = self.shared.client_tls.as_deref();
            match conn.transport.fill(&mut conn.stream, &mut conn.buffers, cap, &mut self.state.pool, tls) {
                Ok(ReadStatus::Drained) => conn.readable = false,
                // The socket may hold more: `readable` stays set, and the connection is rescheduled once
                // its frames are consumed (edge-triggered readiness will not report those bytes again).
                Ok(ReadStatus::Full) => {}
                Ok(ReadStatus::Closed) => {
                    conn.readable = false;
                    conn.peer_closed = true;
                }
                Err(e) if e.get_ref().is_some_and(|inner| inner.is::<TlsFailure>()) => {
                    info!(peer = %conn.peer, "closing connection: {e}");
                    conn.abort("TLS failure");
                    self.state.output_dirty.push(*id);
                }
                Err(e) => {
                    debug!(peer = %conn.peer, "read failed: {e}");
                    conn.abort("read error");
                    self.state.output_dirty.push(*id);
                }
            }
            if conn.transport.is_tls() && !conn.tls_established && !conn.transport.handshaking() && !conn.aborted {
                established.push(*id);
            }
        }
        for id in established {
            self.tls_established(id);
        }
        self.state.input_ready = ids;
    }

    fn drain_channel(&mut self, tree: &DataTree) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                ShardMsg::NewConnection(stream, peer, port) => self.accept(stream, peer, port),
                ShardMsg::Applied(batch) => self.apply_batch(batch, tree),
                ShardMsg::Reattached { conn, session_id, timeout_ms } => {
                    self.established(conn, session_id, timeout_ms, tree)
                }
                ShardMsg::ConnectRefused { conn } => self.refuse_connect(conn),
                ShardMsg::Close { conn, reason } => self.close_later(conn, reason),
                ShardMsg::FourLetterAnswer { conn, text } => self.answer_four_letter(conn, &text),
                ShardMsg::Query(query) => self.state.answer(query),
                ShardMsg::CloseClients { reason } => {
                    // A held ConnectRequest waits for the member's next role, not for the one that ended.
                    let clients: Vec<ConnId> =
                        self.state.clients().filter(|c| c.phase != Phase::AwaitingService).map(|c| c.id).collect();
                    for conn in clients {
                        self.close_later(conn, reason);
                    }
                }
                ShardMsg::EndReadOnly => {
                    let read_only = |c: &&Connection| matches!(c.phase, Phase::Session { read_only: true, .. });
                    let clients: Vec<ConnId> = self.state.clients().filter(read_only).map(|c| c.id).collect();
                    for conn in clients {
                        self.close_later(conn, "read-only service ended");
                    }
                }
            }
        }
    }

    fn accept(&mut self, mut stream: mio::net::TcpStream, peer: std::net::SocketAddr, port: Port) {
        let id = self.state.next_conn;
        self.state.next_conn += 1;
        let transport = match Transport::for_port(port, self.shared.client_tls.as_deref()) {
            Ok(transport) => transport,
            Err(e) => {
                warn!(%peer, "cannot start TLS for the connection: {e}");
                self.shared.limiter.release(peer.ip());
                return;
            }
        };
        if let Err(e) = self.poll.registry().register(&mut stream, Token(id as usize), Interest::READABLE) {
            warn!(%peer, "cannot register connection: {e}");
            self.shared.limiter.release(peer.ip());
            return;
        }
        self.shared.stats.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = Instant::now();
        let mut conn = Connection::new(id, stream, transport, peer, now);
        // ZooKeeper closes a connection that has not established a session within
        // sessionlessCnxnTimeout, so half-open handshakes cannot hold maxClientCnxns slots. A TLS
        // handshake has the shorter of that and ssl.handshakeDetectionTimeoutMillis.
        let mut timeout = Duration::from_millis(self.shared.config.sessionless_cnxn_timeout_ms);
        if let (true, Some(tls)) = (conn.transport.handshaking(), &self.shared.client_tls) {
            timeout = timeout.min(tls.handshake_timeout());
        }
        let deadline = now + timeout;
        conn.deadline = Some(deadline);
        self.state.deadlines.push(Reverse((deadline, id)));
        self.state.conns.insert(id, conn);
        self.state.input_ready.push(id);
        debug!(%peer, shard = self.state.index, conn = id, ?port, "accepted");
    }

    /// A TLS handshake finished: the connection has a full sessionless timeout from now for its session,
    /// and the client certificate it was asked for (`ssl.clientAuth` want or need) becomes its `x509` id.
    /// As in ZooKeeper, a certificate presented without the x509 provider configured closes the
    /// connection.
    fn tls_established(&mut self, id: ConnId) {
        let tls = self.shared.client_tls.clone().expect("a TLS connection has TLS configured");
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        conn.tls_established = true;
        let deadline = Instant::now() + Duration::from_millis(self.shared.config.sessionless_cnxn_timeout_ms);
        conn.deadline = Some(deadline);
        self.state.deadlines.push(Reverse((deadline, id)));
        let Transport::Tls(session) = &conn.transport else { unreachable!("established only over TLS") };
        debug!(peer = %conn.peer, version = ?session.protocol_version(), suite = ?session.negotiated_cipher_suite().map(|s| s.suite()), "TLS handshake done");
        if tls.settings.settings.client_auth == fk_tls::ClientAuth::None {
            return;
        }
        let Some(leaf) = session.peer_certificates().and_then(|chain| chain.first()) else { return };
        if !tls.settings.x509 {
            warn!(
                peer = %conn.peer,
                "X509 Auth provider not found: x509 (a client certificate was asked for and presented; set \
                 authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider); closing"
            );
            conn.abort("no x509 authentication provider");
            self.state.output_dirty.push(id);
            return;
        }
        match fk_tls::java_subject_name(leaf) {
            Ok(subject) => {
                let is_super = tls.settings.x509_super_user.as_deref() == Some(subject.as_str());
                let mut auth = (*conn.auth).clone();
                auth.add_x509(&subject, is_super);
                conn.auth = Arc::new(auth);
                conn.audit_identity = std::cell::OnceCell::new();
                if is_super {
                    info!(peer = %conn.peer, "Authenticated Id '{subject}' as super user");
                }
                info!(peer = %conn.peer, "Authenticated Id '{subject}' for Scheme 'x509'");
            }
            Err(e) => {
                warn!(peer = %conn.peer, "client certificate refused: {e}; closing");
                conn.abort("client certificate unreadable");
                self.state.output_dirty.push(id);
            }
        }
    }

    fn close_later(&mut self, conn: ConnId, reason: &'static str) {
        if let Some(c) = self.state.conns.get_mut(&conn) {
            c.close(reason);
            self.state.output_dirty.push(conn);
        }
    }

    /// Interleaves the batch's watch triggers and this shard's replies in apply order; triggers of a txn
    /// come before its reply, as ZooKeeper sends them.
    fn apply_batch(&mut self, batch: AppliedBatch, tree: &DataTree) {
        let mut notifications = Vec::new();
        in_delivery_order(&batch.triggers, batch.replies, |delivery| match delivery {
            Delivery::Reply(reply) => self.deliver_reply(reply, tree),
            Delivery::Trigger(trigger) => {
                self.state.watches.trigger(trigger, &mut notifications);
                for (conn, event, path) in notifications.drain(..) {
                    if let Some(c) = self.state.conns.get_mut(&conn) {
                        c.push_notification(event, &path);
                        self.shared.stats.sent(1);
                        self.state.output_dirty.push(conn);
                    }
                }
            }
        });
    }

    fn deliver_reply(&mut self, reply: ShardReply, tree: &DataTree) {
        match reply {
            ShardReply::Response { conn, xid, zxid, err, response, close_after } => {
                let Some(c) = self.state.conns.get_mut(&conn) else { return };
                let (received, kind) = match c.requests.write_answered(xid) {
                    Ok((op, WriteKept { received, audit })) => {
                        if let (Some(draft), Some(log)) = (audit, &self.shared.audit) {
                            let Some(session) = c.session_id() else { unreachable!("a write needs a session") };
                            let (users, ip) =
                                c.audit_identity.get_or_init(|| audit::identity(&c.auth, c.peer.ip())).clone();
                            let who = Requester { session, users, ip };
                            events(&draft, err, &response, &who).into_iter().for_each(|e| log.record(e));
                        }
                        c.stats.last_op = op.short_name();
                        // In ZooKeeper's figures a request with a txn is an update (failed ones too:
                        // they log an error txn); a sync, which has none, counts as a read.
                        (received, if op == OpCode::Sync { RequestKind::Read } else { RequestKind::Update })
                    }
                    Err(e) => {
                        warn!(conn, "{e}; closing");
                        c.close("reply out of order");
                        self.state.output_dirty.push(conn);
                        return;
                    }
                };
                c.push_reply(xid, zxid, err, &response);
                let op = c.stats.last_op;
                let now = Instant::now();
                let latency_us = c.record_response(xid, zxid, op, received, now);
                self.shared.stats.sent(1);
                self.shared.stats.request_finished(self.state.index, kind, latency_us, now);
                if close_after {
                    c.close("client closed its session");
                }
                self.state.output_dirty.push(conn);
                self.answer_ready_reads(conn, tree);
                self.state.input_ready.push(conn);
            }
            ShardReply::Connected { conn, session_id, timeout_ms } => {
                self.established(conn, session_id, timeout_ms, tree)
            }
            ShardReply::Close { conn, reason } => self.close_later(conn, reason),
            ShardReply::EndSession { session_id } => {
                let holder = self.state.clients().find(|c| c.session_id() == Some(session_id)).map(|c| c.id);
                if let Some(conn) = holder {
                    self.close_later(conn, "session expired");
                }
            }
        }
    }

    fn established(&mut self, conn: ConnId, session_id: i64, timeout_ms: u32, tree: &DataTree) {
        let Some(c) = self.state.conns.get_mut(&conn) else { return };
        let Phase::Connecting { read_only_byte } = c.phase else { return };
        c.push_connect_response(
            timeout_ms,
            session_id,
            crate::session::session_password(session_id).to_vec(),
            read_only_byte.then_some(false),
        );
        c.phase = Phase::Session { session_id, timeout_ms, read_only: false };
        c.deadline = None;
        self.shared.stats.sent(1);
        debug!(peer = %c.peer, session = format!("0x{session_id:x}"), timeout_ms, "session established");
        self.state.output_dirty.push(conn);
        self.state.input_ready.push(conn);
        self.process_conn_input(conn, tree);
    }

    fn refuse_connect(&mut self, conn: ConnId) {
        let Some(c) = self.state.conns.get_mut(&conn) else { return };
        let Phase::Connecting { read_only_byte } = c.phase else { return };
        c.push_connect_response(0, 0, vec![0; PASSWORD_LEN], read_only_byte.then_some(false));
        c.close("session expired or invalid password");
        self.state.output_dirty.push(conn);
    }

    fn process_input(&mut self, tree: &DataTree) {
        let ids = std::mem::take(&mut self.state.input_ready);
        for id in ids {
            self.process_conn_input(id, tree);
        }
    }

    /// Handles the complete frames buffered on a connection, up to a fair share per turn.
    fn process_conn_input(&mut self, id: ConnId, tree: &DataTree) {
        let max_len = self.shared.config.jute_max_buffer;
        for _ in 0..FRAMES_PER_TURN {
            let Some(conn) = self.state.conns.get_mut(&id) else { return };
            if output_blocked(conn) {
                break;
            }
            let phase = conn.phase;
            match phase {
                Phase::AwaitingService | Phase::Connecting { .. } | Phase::FourLetter { asked: true, .. } => break,
                Phase::FourLetter { command, asked: false } => {
                    self.ask_four_letter(id, command);
                    break;
                }
                Phase::Handshake if self.try_four_letter_word(id) => continue,
                Phase::Handshake | Phase::Session { .. } => {}
            }
            let Some(conn) = self.state.conns.get_mut(&id) else { return };
            let frame = match conn.buffers.next_frame(max_len) {
                Ok(Some(frame)) => frame.to_vec(),
                Ok(None) => break,
                Err(e) => {
                    info!(peer = %conn.peer, "closing connection: {e} (jute.maxbuffer is {max_len})");
                    conn.close("bad frame length");
                    break;
                }
            };
            match conn.phase {
                Phase::Handshake => self.handle_connect(id, &frame, tree),
                Phase::Session { session_id, .. } => self.handle_request(id, session_id, &frame, tree),
                Phase::AwaitingService | Phase::Connecting { .. } | Phase::FourLetter { .. } => {
                    unreachable!("checked above")
                }
            }
        }
        if let Some(conn) = self.state.conns.get_mut(&id) {
            conn.buffers.release_input(&mut self.state.pool);
        }
        self.state.output_dirty.push(id);
    }

    /// A connection whose first four bytes are a known 4-letter word is an admin command, not a
    /// session.
    fn try_four_letter_word(&mut self, id: ConnId) -> bool {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        let Some(first) = conn.buffers.peek(4) else { return false };
        let command: [u8; 4] = first.try_into().expect("4 bytes");
        if !fourlw::is_command(&command) {
            return false;
        }
        conn.buffers.consume(4);
        conn.phase = Phase::FourLetter { command, asked: false };
        // Counted as a client connection only while it could become one (as `srvr` reports them).
        self.shared.stats.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// Hands the command to the 4lw thread once it is complete (stmk needs its mask); the answer comes
    /// back as a [`ShardMsg::FourLetterAnswer`]. Nothing here blocks: a peer that never sends the mask
    /// waits in this phase until its deadline, costing no other client anything.
    fn ask_four_letter(&mut self, id: ConnId, command: [u8; 4]) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        let text = String::from_utf8_lossy(&command);
        let mask = if &command == SET_TRACE_MASK && self.shared.config.four_letter_words.allows(&text) {
            let Some(bytes) = conn.buffers.peek(TRACE_MASK_BYTES) else { return };
            let mask = i64::from_be_bytes(bytes.try_into().expect("8 bytes"));
            conn.buffers.consume(TRACE_MASK_BYTES);
            Some(mask)
        } else {
            None
        };
        conn.phase = Phase::FourLetter { command, asked: true };
        let origin = Origin { shard: self.state.index, conn: id };
        let _ = self.fourlw.send(FourLetterJob { origin, peer: conn.peer, command, mask });
    }

    fn answer_four_letter(&mut self, id: ConnId, text: &str) {
        let Some(conn) = self.state.conns.get_mut(&id) else { return };
        conn.push_text(text);
        conn.close("4-letter word answered");
        self.state.output_dirty.push(id);
    }

    fn handle_connect(&mut self, id: ConnId, frame: &[u8], tree: &DataTree) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        self.shared.stats.received(1);
        conn.stats.received += 1;
        match ConnectRequest::decode(&mut JuteReader::new(frame)) {
            Ok(request) if !self.shared.status.is_serving() && self.shared.status.is_read_only() => {
                self.connect_read_only(id, request, tree)
            }
            // ZooKeeper closes a client's connection while the server is not running (a member between
            // roles): the client tries another member after its reconnection delay. Held a moment first
            // while this member expects to serve again soon.
            Ok(request) if !self.shared.status.is_serving() => match self.shared.status.service_expected_by() {
                Some(until) if until > Instant::now() => {
                    conn.phase = Phase::AwaitingService;
                    self.state.held_connects.hold(id, request, until);
                }
                _ => {
                    info!(peer = %conn.peer, "closing connection: this member is not serving (no quorum yet)");
                    conn.close("not serving");
                }
            },
            Ok(request) => self.start_session(id, request),
            Err(e) => {
                info!(peer = %conn.peer, "closing connection: malformed ConnectRequest: {e}");
                conn.close("malformed ConnectRequest");
            }
        }
    }

    fn start_session(&mut self, id: ConnId, request: ConnectRequest) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        conn.phase = Phase::Connecting { read_only_byte: request.read_only.is_some() };
        let origin = Origin { shard: self.state.index, conn: id };
        self.state.outbox.push(SequencerMsg::Input(SequencerInput::Connect { origin, request }));
    }

    /// Held ConnectRequests go on once this member serves again (or serves read-only clients); those
    /// whose hold ran out are closed as ZooKeeper closes them.
    fn serve_held_connects(&mut self, tree: &DataTree) {
        if self.state.held_connects.is_empty() {
            return;
        }
        let status = &self.shared.status;
        let released =
            if status.is_serving() || status.is_read_only() { self.state.held_connects.release() } else { Vec::new() };
        for (id, request) in released {
            let Some(conn) = self.state.conns.get(&id) else { continue };
            if conn.phase != Phase::AwaitingService || conn.closing.is_some() || conn.aborted {
                continue;
            }
            if self.shared.status.is_serving() {
                self.start_session(id, request);
            } else {
                self.connect_read_only(id, request, tree);
            }
            // Frames sent after the ConnectRequest wait in the buffer for their turn.
            self.state.input_ready.push(id);
        }
        for id in self.state.held_connects.expired(Instant::now()) {
            let Some(conn) = self.state.conns.get_mut(&id) else { continue };
            if conn.phase != Phase::AwaitingService {
                continue;
            }
            info!(peer = %conn.peer, "closing connection: this member is not serving again yet (no quorum)");
            conn.close("not serving");
            self.state.output_dirty.push(id);
        }
    }

    /// A member cut off from its quorum, in read-only mode, takes new sessions of clients that allow
    /// read-only service, as ZooKeeper's ReadOnlyZooKeeperServer does with local sessions: they live on
    /// this connection only. It closes the connections of the other clients and of those resuming one
    /// of the ensemble's sessions (which cannot be renewed here); a session it does not know is answered
    /// as expired. (ZooKeeper 3.8 needs `localSessionsEnabled=true` for any of this: without it, it
    /// answers a new session's request with a bare NotReadOnly reply header that clients cannot read.)
    fn connect_read_only(&mut self, id: ConnId, request: ConnectRequest, tree: &DataTree) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        let refusal = if request.read_only != Some(true) {
            Some("not a read-only client, and this member is read-only (cut off from its quorum)".to_owned())
        } else if request.last_zxid_seen > tree.last_processed_zxid() {
            Some(format!(
                "the client has seen zxid 0x{:x}, this read-only member has only 0x{:x}",
                request.last_zxid_seen,
                tree.last_processed_zxid()
            ))
        } else if tree.session_timeout(request.session_id).is_some() {
            Some(format!("refusing to resume the ensemble's session 0x{:x} in read-only mode", request.session_id))
        } else {
            None
        };
        if let Some(reason) = refusal {
            info!(peer = %conn.peer, "closing connection: {reason}");
            conn.close("refused in read-only mode");
            return;
        }
        if request.session_id != 0 {
            conn.push_connect_response(0, 0, vec![0; PASSWORD_LEN], Some(true));
            conn.close("session expired or invalid password");
            self.state.output_dirty.push(id);
            return;
        }
        let config = &self.shared.config;
        let timeout_ms = crate::sequencer::negotiate_timeout(
            request.timeout_ms,
            config.min_session_timeout_ms,
            config.max_session_timeout_ms,
        );
        let session_id = self.shared.status.read_only_session_id();
        let password = crate::session::session_password(session_id).to_vec();
        conn.push_connect_response(timeout_ms, session_id, password, Some(true));
        conn.phase = Phase::Session { session_id, timeout_ms, read_only: true };
        let deadline = Instant::now() + Duration::from_millis(timeout_ms as u64);
        conn.deadline = Some(deadline);
        self.state.deadlines.push(Reverse((deadline, id)));
        self.shared.stats.sent(1);
        info!(peer = %conn.peer, session = format!("0x{session_id:x}"), timeout_ms, "read-only session established");
        self.state.output_dirty.push(id);
        self.state.input_ready.push(id);
    }

    fn handle_request(&mut self, id: ConnId, session_id: i64, frame: &[u8], tree: &DataTree) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        self.shared.stats.received(1);
        conn.stats.received += 1;
        let received = Instant::now();
        let read_only = match conn.phase {
            Phase::Session { read_only: true, timeout_ms, .. } => {
                // Known to this connection only: it ends after a session timeout of silence (the entry
                // in the deadline queue is moved on when it comes due).
                conn.deadline = Some(received + Duration::from_millis(timeout_ms as u64));
                true
            }
            _ => {
                self.state.touched.insert(session_id);
                false
            }
        };
        let rules = SessionRules {
            read_only,
            required_schemes: self.required_auth.as_deref(),
            sasl: self.shared.config.sasl_service.is_some(),
        };
        let (xid, route) = route_frame(frame, &rules, &conn.auth);
        match route {
            Routing::Sequence { op, work } => {
                let audit = match &work {
                    Sequenced::Request(request) if self.shared.audit.is_some() => audit::draft(request).map(Box::new),
                    _ => None,
                };
                if let Sequenced::Refused(_, err) = work {
                    debug!(peer = %conn.peer, op = op.name(), "refused before prep: {}", err.name());
                }
                self.sequence(id, session_id, xid, op, work, WriteKept { received, audit });
            }
            Routing::Local(local) => {
                if let Local::Error { err, close: Some(why) } = &local {
                    info!(peer = %conn.peer, xid, "replying {} and closing: {why}", err.name());
                }
                self.enqueue(id, LocalKept { local, received }, xid, tree);
            }
            Routing::Authenticate(packet) => self.authenticate(id, xid, &packet),
            Routing::Sasl(token) => self.sasl_step(id, xid, &token),
            Routing::Refuse { err, why } => {
                info!(peer = %conn.peer, "closing connection: {why}");
                conn.push_reply(xid, 0, err, &Response::Empty);
                conn.close("request refused");
                self.shared.stats.sent(1);
            }
            Routing::Close { why } => {
                info!(peer = %conn.peer, "closing connection: {why}");
                conn.close("request refused without a reply");
            }
        }
    }

    /// An `auth` packet, answered at once. ZooKeeper echoes the request's xid (-4 from the Java client,
    /// but not from every client); a failure closes the connection.
    fn authenticate(&mut self, id: ConnId, xid: i32, packet: &AuthPacket) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        let super_digest = self.shared.config.super_digest.as_deref();
        let mut auth = (*conn.auth).clone();
        let err = match auth.authenticate(&packet.scheme, packet.auth.as_deref().unwrap_or_default(), super_digest) {
            Ok(()) => ErrorCode::Ok,
            Err(code) => code,
        };
        conn.auth = Arc::new(auth);
        conn.audit_identity = std::cell::OnceCell::new();
        conn.push_reply(xid, 0, err, &Response::Empty);
        self.shared.stats.sent(1);
        if err != ErrorCode::Ok {
            info!(peer = %conn.peer, scheme = packet.scheme, "authentication failed; closing");
            conn.close("authentication failed");
        }
    }

    /// One token of a client's SASL exchange (DIGEST-MD5 against the JAAS file's users, or Kerberos),
    /// answered at once as ZooKeeper answers it. Once complete the connection holds `sasl:<identity>` (and
    /// `super` for `superUser`); a failure is AuthFailed and the connection closes (ZooKeeper's default,
    /// without `zookeeper.allowSaslFailedClients`).
    fn sasl_step(&mut self, id: ConnId, xid: i32, token: &[u8]) {
        let service = self.shared.config.sasl_service.clone().expect("checked by the caller");
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        let step = match &mut conn.sasl {
            Some(exchange) => exchange.step(&service, token),
            None => ServerExchange::new(&service, Service::CLIENTS)
                .and_then(|exchange| conn.sasl.insert(exchange).step(&service, token)),
        };
        match step {
            Ok(step) => {
                if let Some(authenticated) = &step.authenticated {
                    let identity = client_identity(&service, authenticated);
                    let is_super = self.shared.config.sasl.super_user.as_deref() == Some(identity.as_str());
                    let mut auth = (*conn.auth).clone();
                    auth.add_sasl(&identity, is_super);
                    conn.auth = Arc::new(auth);
                    conn.audit_identity = std::cell::OnceCell::new();
                    let mechanism = conn.sasl.as_ref().map_or("", ServerExchange::mechanism);
                    info!(
                        peer = %conn.peer,
                        principal = authenticated.authentication_id.as_str(),
                        identity = identity.as_str(),
                        "SASL ({mechanism}) authentication succeeded"
                    );
                }
                conn.push_reply(xid, 0, ErrorCode::Ok, &Response::Sasl(SaslRequest { token: step.token }));
            }
            Err(e) => {
                info!(peer = %conn.peer, "SASL authentication failed, closing: {e}");
                // ZooKeeper's code when SASL is what the server requires.
                let required = self.required_auth.as_ref().is_some_and(|s| s.iter().any(|s| s == "sasl"));
                let err = if required { ErrorCode::SessionClosedRequireSaslAuth } else { ErrorCode::AuthFailed };
                conn.push_reply(xid, 0, err, &Response::Empty);
                conn.close("SASL authentication failed");
            }
        }
        self.shared.stats.sent(1);
    }

    /// Sends a request down the write pipeline; its reply comes back in order through the applier.
    fn sequence(&mut self, id: ConnId, session_id: i64, xid: i32, op: OpCode, work: Sequenced, kept: WriteKept) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        self.shared.stats.request_started();
        conn.requests.write(xid, op, kept);
        let origin = Origin { shard: self.state.index, conn: id };
        let auth = conn.auth.clone();
        let write = WriteRequest { origin, session_id, xid, work, auth };
        self.state.outbox.push(SequencerMsg::Input(SequencerInput::Write(write)));
    }

    /// Queues a locally answered request behind the connection's pending writes, or answers it now.
    fn enqueue(&mut self, id: ConnId, kept: LocalKept, xid: i32, tree: &DataTree) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        self.shared.stats.request_started();
        conn.requests.local(xid, kept);
        self.answer_ready_reads(id, tree);
    }

    /// Answers the locally answered requests whose turn has come (up to the session's first waiting
    /// write); the watch events a request sets off go out before its reply.
    fn answer_ready_reads(&mut self, id: ConnId, tree: &DataTree) {
        let ShardState { conns, watches, index, .. } = &mut self.state;
        let Some(conn) = conns.get_mut(&id) else { return };
        while let Some((xid, LocalKept { local, received })) = conn.requests.next_local() {
            let now = Instant::now();
            let session_id = conn.session_id().unwrap_or(0);
            let reader = Reader { tree, auth: &conn.auth, session_id, skip_acl: self.shared.config.skip_acl };
            let reply = answer_local(&reader, conn.id, watches, xid, &local);
            for (event, path) in &reply.events {
                conn.push_notification(*event, path);
            }
            conn.push_reply(reply.xid, reply.zxid, reply.err, &reply.response);
            if let Some(why) = reply.close {
                conn.close(why);
            }
            let latency_us = conn.record_response(xid, tree.last_processed_zxid(), local.short_name(), received, now);
            self.shared.stats.sent(1);
            self.shared.stats.request_finished(*index, RequestKind::Read, latency_us, now);
        }
    }

    fn report_touches(&mut self) {
        if self.state.touched.is_empty() || self.state.last_touch_report.elapsed() < self.touch_interval() {
            return;
        }
        let sessions: Vec<i64> = self.state.touched.drain().collect();
        self.state.last_touch_report = Instant::now();
        let _ = self.sequencer.send(SequencerMsg::Input(SequencerInput::Touch(sessions)));
    }

    /// Closes connections whose deadline passed: no session within sessionlessCnxnTimeout, or closing
    /// with output the peer never read.
    fn expire_deadlines(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.state.deadlines.peek() {
            if at > now {
                break;
            }
            self.state.deadlines.pop();
            let Some(conn) = self.state.conns.get_mut(&id) else { continue };
            match conn.deadline {
                None => continue,
                // A read-only session heard from since: its deadline moved on.
                Some(later) if later > now => {
                    if matches!(conn.phase, Phase::Session { read_only: true, .. }) {
                        self.state.deadlines.push(Reverse((later, id)));
                    }
                    continue;
                }
                Some(_) => {}
            }
            let timeout_ms = self.shared.config.sessionless_cnxn_timeout_ms;
            let what = match conn.phase {
                _ if conn.closing.is_some() => "its output was not read",
                _ if conn.transport.handshaking() => "its TLS handshake did not complete",
                Phase::Handshake | Phase::AwaitingService | Phase::Connecting { .. } => "no session was established",
                Phase::FourLetter { .. } => "its 4-letter word was not completed",
                Phase::Session { read_only: true, .. } => "its read-only session timed out",
                Phase::Session { .. } => unreachable!("a session connection has a deadline only while closing"),
            };
            if conn.transport.handshaking() {
                info!(peer = %conn.peer, "closing connection: {what} in time (ssl.handshakeDetectionTimeoutMillis)");
            } else {
                info!(peer = %conn.peer, "closing connection: {what} within {timeout_ms} ms (sessionlessCnxnTimeout)");
            }
            conn.abort("deadline passed");
            self.state.output_dirty.push(id);
        }
    }

    fn flush_output(&mut self) {
        let mut ids = std::mem::take(&mut self.state.output_dirty);
        ids.sort_unstable();
        ids.dedup();
        let cap = self.input_cap();
        let max_queued = self.shared.config.max_queued_output_bytes;
        let linger = Duration::from_millis(self.shared.config.sessionless_cnxn_timeout_ms);
        for id in ids {
            let Some(conn) = self.state.conns.get_mut(&id) else { continue };
            let flushed = conn.aborted
                || conn.transport.flush(&mut conn.stream, &mut conn.buffers).unwrap_or_else(|e| {
                    debug!(peer = %conn.peer, "write failed: {e}");
                    conn.abort("write error");
                    true
                });
            if conn.buffers.pending_output() > max_queued {
                warn!(
                    peer = %conn.peer,
                    session = conn.session_id().map(|s| format!("0x{s:x}")),
                    "closing connection: {} bytes of replies and watch events are queued for it, more than \
                     ferrokeeper.maxQueuedOutputBytes={max_queued}; the client is not reading",
                    conn.buffers.pending_output()
                );
                conn.abort("client not reading");
            }
            if conn.aborted || (flushed && (conn.closing.is_some() || finished(conn))) {
                self.remove_connection(id);
                continue;
            }
            if conn.closing.is_some() && conn.deadline.is_none() {
                let deadline = Instant::now() + linger;
                conn.deadline = Some(deadline);
                self.state.deadlines.push(Reverse((deadline, id)));
            }
            let want_write = !flushed;
            if want_write != conn.writable_registered {
                let interest = if want_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                let _ = self.poll.registry().reregister(&mut conn.stream, Token(id as usize), interest);
                conn.writable_registered = want_write;
            }
            if wants_turn(conn, cap, self.shared.config.jute_max_buffer) {
                self.state.input_ready.push(id);
            }
        }
    }

    fn remove_connection(&mut self, id: ConnId) {
        let Some(mut conn) = self.state.conns.remove(&id) else { return };
        if !conn.aborted {
            conn.transport.close_notify(&mut conn.stream);
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.state.watches.remove_connection(id);
        self.shared.limiter.release(conn.peer.ip());
        if !matches!(conn.phase, Phase::FourLetter { .. }) {
            self.shared.stats.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        for _ in 0..conn.requests.locals_waiting() {
            self.shared.stats.request_abandoned();
        }
        let reason = conn.closing.unwrap_or("peer closed the connection");
        if let Some(session_id) = conn.session_id() {
            debug!(peer = %conn.peer, session = format!("0x{session_id:x}"), reason, "connection closed");
            let origin = Origin { shard: self.state.index, conn: id };
            let _ = self.sequencer.send(SequencerMsg::Input(SequencerInput::Disconnected { origin, session_id }));
        } else {
            debug!(peer = %conn.peer, reason, "connection closed");
        }
    }
}

/// Whether the connection may not take more requests now: closing, or too much outstanding (replies
/// drain it, and the connection is rescheduled then).
fn output_blocked(conn: &Connection) -> bool {
    conn.closing.is_some()
        || conn.requests.closing_session()
        || conn.requests.len() >= PENDING_LIMIT
        || conn.buffers.pending_output() >= OUTPUT_LIMIT_BYTES
}

/// Whether reading the socket now could make progress.
fn may_read(conn: &Connection, cap: usize) -> bool {
    conn.readable
        && !conn.peer_closed
        && !output_blocked(conn)
        && !matches!(conn.phase, Phase::FourLetter { asked: true, .. })
        && conn.buffers.buffered_input() < cap
}

/// Whether the connection has work the shard must come back for without an event: bytes left in the
/// socket (reading stopped at a limit), or complete frames left in the buffer (a turn's share ran out,
/// or the limits that stopped processing have cleared).
fn wants_turn(conn: &Connection, cap: usize, max_len: usize) -> bool {
    let frames = match conn.phase {
        Phase::Handshake | Phase::Session { .. } => conn.buffers.frame_ready(max_len),
        Phase::FourLetter { asked: false, .. } => conn.buffers.buffered_input() >= TRACE_MASK_BYTES,
        Phase::AwaitingService | Phase::Connecting { .. } | Phase::FourLetter { asked: true, .. } => false,
    };
    may_read(conn, cap) || (frames && !output_blocked(conn))
}

/// The peer closed its side and nothing it sent still waits for a reply.
fn finished(conn: &Connection) -> bool {
    conn.peer_closed && !matches!(conn.phase, Phase::FourLetter { asked: true, .. }) && !conn.requests.writes_waiting()
}

/// The `sasl` identity of an authenticated client: a DIGEST-MD5 user as it is, a Kerberos principal
/// mapped as ZooKeeper's `SaslServerCallbackHandler` maps it (`kerberos.remove*FromPrincipal`).
fn client_identity(service: &SaslService, authenticated: &Authenticated) -> String {
    match service {
        SaslService::Digest(_) => authenticated.authorization_id.clone(),
        SaslService::Kerberos(kerberos) => kerberos.rules.identity(
            &authenticated.authentication_id,
            &authenticated.authorization_id,
            &kerberos.default_realm,
        ),
    }
}
