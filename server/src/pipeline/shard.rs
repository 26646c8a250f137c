//! A shard: one thread with its own mio `Poll`, owning its connections for their whole life. Reads are
//! answered here from the tree; writes go to the sequencer and their replies come back through the
//! shard's channel, which is drained under the tree's read lock before any read is answered, so a
//! client always sees a watch event before data that is newer than the event.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use fk_engine::tree::DataTree;
use fk_net::client::watch::{AddWatchMode, WatcherType};
use fk_net::client::*;
use fk_net::jute::{Jute, JuteReader};
use fk_net::reactor::ReadStatus;
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, info, warn};

use super::Shared;
use super::connection::{Connection, Pending, Phase};
use super::messages::*;
use crate::ops::fourlw::{self, FourLetterJob};
use crate::read::Reader;
use crate::watch::{ConnId, WatchKind, WatchTable};

pub const WAKER_TOKEN: Token = Token(0);

/// Requests a connection may have waiting before the shard stops reading from it (ZooKeeper's
/// per-connection throttle); replies drain it.
const PENDING_LIMIT: usize = 1000;
/// Unsent output above which a connection is not read until the client catches up.
const OUTPUT_LIMIT_BYTES: usize = 4 << 20;
/// Input buffered per connection before reading pauses.
const INPUT_LIMIT_BYTES: usize = 1 << 20;
/// Frames handled per connection per loop turn, so one busy client cannot starve the others.
const FRAMES_PER_TURN: usize = 256;

/// The shard's state; `pub` for 4lw inspection closures.
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
    outbox: Vec<SequencerMsg>,
}

pub struct Shard {
    state: ShardState,
    shared: Arc<Shared>,
    poll: Poll,
    rx: Receiver<ShardMsg>,
    sequencer: Sender<SequencerMsg>,
    fourlw: Sender<FourLetterJob>,
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
            watches: WatchTable::default(),
            next_conn: 1,
            touched: HashSet::new(),
            last_touch_report: Instant::now(),
            input_ready: Vec::new(),
            output_dirty: Vec::new(),
            outbox: Vec::new(),
        };
        Shard { state, shared, poll, rx, sequencer, fourlw }
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
            let timeout = if self.state.input_ready.is_empty() { self.touch_interval() } else { Duration::ZERO };
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
            self.process_input(&tree);
        }
        for msg in self.state.outbox.drain(..) {
            self.sequencer.send(msg).expect("sequencer thread is gone");
        }
        self.report_touches();
        self.flush_output();
    }

    fn read_sockets(&mut self) {
        let ids = std::mem::take(&mut self.state.input_ready);
        for id in &ids {
            let Some(conn) = self.state.conns.get_mut(id) else { continue };
            if !conn.readable || conn.read_paused || conn.closing.is_some() {
                continue;
            }
            match conn.buffers.fill(&mut conn.stream, INPUT_LIMIT_BYTES) {
                Ok(ReadStatus::Open) => conn.readable = conn.buffers.buffered_input() >= INPUT_LIMIT_BYTES,
                Ok(ReadStatus::Closed) => {
                    conn.readable = false;
                    conn.peer_closed = true;
                }
                Err(e) => {
                    debug!(peer = %conn.peer, "read failed: {e}");
                    conn.close("read error");
                    self.state.output_dirty.push(*id);
                }
            }
        }
        self.state.input_ready = ids;
    }

    fn drain_channel(&mut self, tree: &DataTree) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                ShardMsg::NewConnection(stream, peer) => self.accept(stream, peer),
                ShardMsg::Applied(batch) => self.apply_batch(batch, tree),
                ShardMsg::Reattached { conn, session_id, timeout_ms } => {
                    self.established(conn, session_id, timeout_ms, tree)
                }
                ShardMsg::ConnectRefused { conn } => self.refuse_connect(conn),
                ShardMsg::Close { conn, reason } => self.close_later(conn, reason),
                ShardMsg::Inspect(f) => f(&mut self.state),
            }
        }
    }

    fn accept(&mut self, mut stream: mio::net::TcpStream, peer: std::net::SocketAddr) {
        let id = self.state.next_conn;
        self.state.next_conn += 1;
        if let Err(e) = self.poll.registry().register(&mut stream, Token(id as usize), Interest::READABLE) {
            warn!(%peer, "cannot register connection: {e}");
            self.shared.limiter.release(peer.ip());
            return;
        }
        self.shared.stats.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.state.conns.insert(id, Connection::new(id, stream, peer, Instant::now()));
        self.state.input_ready.push(id);
        debug!(%peer, shard = self.state.index, conn = id, "accepted");
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
        let mut replies = batch.replies.into_iter().peekable();
        for (seq, trigger) in batch.triggers.iter() {
            while let Some((reply_seq, _)) = replies.peek() {
                if reply_seq >= seq {
                    break;
                }
                let (_, reply) = replies.next().expect("peeked");
                self.deliver_reply(reply, tree);
            }
            notifications.clear();
            self.state.watches.trigger(trigger, &mut notifications);
            for (conn, event, path) in notifications.drain(..) {
                if let Some(c) = self.state.conns.get_mut(&conn) {
                    c.push_notification(event, &path);
                    self.shared.stats.sent(1);
                    self.state.output_dirty.push(conn);
                }
            }
        }
        for (_, reply) in replies {
            self.deliver_reply(reply, tree);
        }
    }

    fn deliver_reply(&mut self, reply: ShardReply, tree: &DataTree) {
        match reply {
            ShardReply::Response { conn, xid, zxid, err, response, close_after } => {
                let Some(c) = self.state.conns.get_mut(&conn) else { return };
                let received = match c.pending.pop_front() {
                    Some(Pending::Write { xid: expected, op, received }) if expected == xid => {
                        c.stats.last_op = op.short_name();
                        received
                    }
                    other => {
                        warn!(conn, xid, "reply does not match the oldest pending request {other:?}; closing");
                        c.close("reply out of order");
                        self.state.output_dirty.push(conn);
                        return;
                    }
                };
                c.push_reply(xid, zxid, err, &response);
                let op = c.stats.last_op;
                let latency_us = c.record_response(xid, zxid, op, received, Instant::now());
                self.shared.stats.sent(1);
                self.shared.stats.request_finished(latency_us);
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
        }
    }

    fn established(&mut self, conn: ConnId, session_id: i64, timeout_ms: u32, tree: &DataTree) {
        let Some(c) = self.state.conns.get_mut(&conn) else { return };
        let Phase::Connecting { read_only_byte } = c.phase else { return };
        c.push_connect_response(
            timeout_ms,
            session_id,
            crate::session::session_password(session_id).to_vec(),
            read_only_byte,
        );
        c.phase = Phase::Session { session_id, timeout_ms };
        self.shared.stats.sent(1);
        debug!(peer = %c.peer, session = format!("0x{session_id:x}"), timeout_ms, "session established");
        self.state.output_dirty.push(conn);
        self.state.input_ready.push(conn);
        self.process_conn_input(conn, tree);
    }

    fn refuse_connect(&mut self, conn: ConnId) {
        let Some(c) = self.state.conns.get_mut(&conn) else { return };
        let Phase::Connecting { read_only_byte } = c.phase else { return };
        c.push_connect_response(0, 0, vec![0; PASSWORD_LEN], read_only_byte);
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
            if conn.closing.is_some() || matches!(conn.phase, Phase::Connecting { .. }) {
                break;
            }
            if conn.pending.len() >= PENDING_LIMIT || conn.buffers.pending_output() >= OUTPUT_LIMIT_BYTES {
                break;
            }
            if conn.phase == Phase::Handshake && self.try_four_letter_word(id) {
                return;
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
                Phase::Handshake => self.handle_connect(id, &frame),
                Phase::Session { session_id, .. } => self.handle_request(id, session_id, &frame, tree),
                Phase::Connecting { .. } => unreachable!("checked above"),
            }
        }
        self.state.output_dirty.push(id);
        self.update_read_pause(id);
    }

    /// A connection whose first four bytes are a known 4-letter word is an admin command, not a
    /// session: hand its socket to the 4lw thread.
    fn try_four_letter_word(&mut self, id: ConnId) -> bool {
        let conn = self.state.conns.get(&id).expect("caller checked");
        let Some(first) = conn.buffers.peek(4) else { return false };
        let command: [u8; 4] = first.try_into().expect("4 bytes");
        if !fourlw::is_command(&command) {
            return false;
        }
        let mut conn = self.state.conns.remove(&id).expect("present");
        conn.buffers.consume(4);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.shared.stats.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let job = FourLetterJob::new(command, conn.stream, conn.peer, conn.buffers);
        self.shared.limiter.release(conn.peer.ip());
        let _ = self.fourlw.send(job);
        true
    }

    fn handle_connect(&mut self, id: ConnId, frame: &[u8]) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        self.shared.stats.received(1);
        conn.stats.received += 1;
        match ConnectRequest::decode(&mut JuteReader::new(frame)) {
            Ok(request) => {
                conn.phase = Phase::Connecting { read_only_byte: request.read_only.is_some() };
                let origin = Origin { shard: self.state.index, conn: id };
                self.state.outbox.push(SequencerMsg::Connect { origin, request });
            }
            Err(e) => {
                info!(peer = %conn.peer, "closing connection: malformed ConnectRequest: {e}");
                conn.close("malformed ConnectRequest");
            }
        }
    }

    fn handle_request(&mut self, id: ConnId, session_id: i64, frame: &[u8], tree: &DataTree) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        self.shared.stats.received(1);
        conn.stats.received += 1;
        self.state.touched.insert(session_id);
        let mut r = JuteReader::new(frame);
        let header = match RequestHeader::decode(&mut r) {
            Ok(header) => header,
            Err(e) => {
                info!(peer = %conn.peer, "closing connection: malformed request header: {e}");
                conn.close("malformed request header");
                return;
            }
        };
        let received = Instant::now();
        let body = &frame[r.position()..];
        let request = match Request::decode(header.op, body) {
            Ok(request) => request,
            Err(RequestError::UnknownOp(op)) => {
                info!(peer = %conn.peer, op, "unknown opcode; replying Unimplemented and closing");
                return self.enqueue(
                    id,
                    Pending::Error { xid: header.xid, err: ErrorCode::Unimplemented, close: true, received },
                    tree,
                );
            }
            Err(RequestError::Malformed(op, e)) => {
                debug!(peer = %conn.peer, op = op.name(), "undecodable request body: {e}");
                if is_txn_op(op) {
                    return self.sequence(
                        id,
                        session_id,
                        header.xid,
                        op,
                        Sequenced::Refused(op, ErrorCode::MarshallingError),
                        received,
                    );
                }
                return self.enqueue(
                    id,
                    Pending::Error { xid: header.xid, err: ErrorCode::MarshallingError, close: false, received },
                    tree,
                );
            }
        };
        self.dispatch(id, session_id, header.xid, request, received, tree);
    }

    fn dispatch(
        &mut self,
        id: ConnId,
        session_id: i64,
        xid: i32,
        request: Request,
        received: Instant,
        tree: &DataTree,
    ) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        match request {
            Request::Auth(packet) => {
                let super_digest = self.shared.config.super_digest.as_deref();
                let mut auth = (*conn.auth).clone();
                let err =
                    match auth.authenticate(&packet.scheme, packet.auth.as_deref().unwrap_or_default(), super_digest) {
                        Ok(()) => ErrorCode::Ok,
                        Err(code) => code,
                    };
                conn.auth = Arc::new(auth);
                // ZooKeeper echoes the request's xid (-4 from the Java client, but not from every client).
                conn.push_reply(xid, 0, err, &Response::Empty);
                self.shared.stats.sent(1);
                if err != ErrorCode::Ok {
                    info!(peer = %conn.peer, scheme = packet.scheme, "authentication failed; closing");
                    conn.close("authentication failed");
                }
            }
            Request::Write(_) | Request::Multi(_) | Request::Sync(_) | Request::CloseSession | Request::Reconfig(_) => {
                let op = request.op_code();
                self.sequence(id, session_id, xid, op, Sequenced::Request(request), received);
            }
            // Only the server's reaper may delete containers; ZooKeeper refuses a client's with BadArguments.
            Request::DeleteContainer(_) => {
                let op = OpCode::DeleteContainer;
                self.sequence(id, session_id, xid, op, Sequenced::Refused(op, ErrorCode::BadArguments), received);
            }
            request => self.enqueue(id, Pending::Read { xid, request, received }, tree),
        }
    }

    /// Sends a request down the write pipeline; its reply comes back in order through the applier.
    fn sequence(&mut self, id: ConnId, session_id: i64, xid: i32, op: OpCode, work: Sequenced, received: Instant) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        self.shared.stats.request_started();
        conn.pending.push_back(Pending::Write { xid, op, received });
        if op == OpCode::CloseSession {
            // Nothing after closeSession is served; the reply closes the connection.
            conn.read_paused = true;
        }
        let origin = Origin { shard: self.state.index, conn: id };
        let auth = conn.auth.clone();
        self.state.outbox.push(SequencerMsg::Write(WriteRequest { origin, session_id, xid, work, auth }));
    }

    /// Queues a locally answered request behind the connection's pending writes, or answers it now.
    fn enqueue(&mut self, id: ConnId, pending: Pending, tree: &DataTree) {
        let conn = self.state.conns.get_mut(&id).expect("caller checked");
        self.shared.stats.request_started();
        conn.pending.push_back(pending);
        self.answer_ready_reads(id, tree);
    }

    /// Answers the reads at the head of the connection's queue, up to its first pending write.
    fn answer_ready_reads(&mut self, id: ConnId, tree: &DataTree) {
        let ShardState { conns, watches, .. } = &mut self.state;
        let Some(conn) = conns.get_mut(&id) else { return };
        while matches!(conn.pending.front(), Some(Pending::Read { .. } | Pending::Error { .. })) {
            let now = Instant::now();
            let zxid = tree.last_processed_zxid();
            let (xid, received, op) = match conn.pending.pop_front().expect("front exists") {
                Pending::Read { xid, request, received } => {
                    let (reply_xid, err, response) = answer_read(&self.shared, conn, watches, xid, &request, tree);
                    // ZooKeeper answers SASL outside its request pipeline, with zxid 0.
                    let reply_zxid = if matches!(request, Request::Sasl(_)) { 0 } else { zxid };
                    conn.push_reply(reply_xid, reply_zxid, err, &response);
                    (xid, received, request.op_code().short_name())
                }
                Pending::Error { xid, err, close, received } => {
                    let reply_zxid = if err == ErrorCode::Unimplemented { -1 } else { zxid };
                    conn.push_reply(xid, reply_zxid, err, &Response::Empty);
                    if close {
                        conn.close("unknown opcode");
                    }
                    (xid, received, "ERR")
                }
                Pending::Write { .. } => unreachable!("loop condition"),
            };
            let latency_us = conn.record_response(xid, zxid, op, received, now);
            self.shared.stats.sent(1);
            self.shared.stats.request_finished(latency_us);
        }
    }

    fn update_read_pause(&mut self, id: ConnId) {
        let Some(conn) = self.state.conns.get_mut(&id) else { return };
        let closing_session = conn.pending.iter().any(|p| matches!(p, Pending::Write { op: OpCode::CloseSession, .. }));
        conn.read_paused = closing_session
            || conn.pending.len() >= PENDING_LIMIT
            || conn.buffers.pending_output() >= OUTPUT_LIMIT_BYTES
            || conn.buffers.buffered_input() >= INPUT_LIMIT_BYTES;
    }

    fn report_touches(&mut self) {
        if self.state.touched.is_empty() || self.state.last_touch_report.elapsed() < self.touch_interval() {
            return;
        }
        let sessions: Vec<i64> = self.state.touched.drain().collect();
        self.state.last_touch_report = Instant::now();
        let _ = self.sequencer.send(SequencerMsg::Touch(sessions));
    }

    fn flush_output(&mut self) {
        let mut ids = std::mem::take(&mut self.state.output_dirty);
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let Some(conn) = self.state.conns.get_mut(&id) else { continue };
            let flushed = match conn.buffers.flush(&mut conn.stream) {
                Ok(flushed) => flushed,
                Err(e) => {
                    debug!(peer = %conn.peer, "write failed: {e}");
                    conn.close("write error");
                    true
                }
            };
            let finished = conn.peer_closed && conn.pending.iter().all(|p| !matches!(p, Pending::Write { .. }));
            if flushed && (conn.closing.is_some() || finished) {
                self.remove_connection(id);
                continue;
            }
            let want_write = !flushed;
            if want_write != conn.writable_registered {
                let interest = if want_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                let _ = self.poll.registry().reregister(&mut conn.stream, Token(id as usize), interest);
                conn.writable_registered = want_write;
            }
            let was_paused = conn.read_paused;
            self.update_read_pause(id);
            let conn = self.state.conns.get_mut(&id).expect("present");
            if was_paused && !conn.read_paused {
                // Reading resumed: the socket may hold bytes that arrived while paused.
                conn.readable = true;
                self.state.input_ready.push(id);
            }
        }
    }

    fn remove_connection(&mut self, id: ConnId) {
        let Some(mut conn) = self.state.conns.remove(&id) else { return };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.state.watches.remove_connection(id);
        self.shared.limiter.release(conn.peer.ip());
        self.shared.stats.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        for pending in &conn.pending {
            if !matches!(pending, Pending::Write { .. }) {
                self.shared.stats.request_finished(0);
            }
        }
        let reason = conn.closing.unwrap_or("peer closed the connection");
        if let Some(session_id) = conn.session_id() {
            debug!(peer = %conn.peer, session = format!("0x{session_id:x}"), reason, "connection closed");
            let origin = Origin { shard: self.state.index, conn: id };
            let _ = self.sequencer.send(SequencerMsg::Disconnected { origin, session_id });
        } else {
            debug!(peer = %conn.peer, reason, "connection closed");
        }
    }
}

/// Ops whose requests become txns in ZooKeeper even when their body cannot be decoded.
fn is_txn_op(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Check
            | OpCode::Multi
            | OpCode::Reconfig
    )
}

/// Answers one locally served request: (reply xid, error, body).
fn answer_read(
    shared: &Shared,
    conn: &mut Connection,
    watches: &mut WatchTable,
    xid: i32,
    request: &Request,
    tree: &DataTree,
) -> (i32, ErrorCode, Response) {
    let session_id = conn.session_id().unwrap_or(0);
    let reader = Reader { tree, auth: &conn.auth, session_id, skip_acl: shared.config.skip_acl };
    let answer = match request {
        Request::Ping => return (xid::PING, ErrorCode::Ok, Response::Empty),
        Request::Exists(r) => reader.exists(r),
        Request::GetData(r) => reader.get_data(r),
        Request::GetChildren(r) => reader.get_children(r, false),
        Request::GetChildren2(r) => reader.get_children(r, true),
        Request::GetAcl(r) => reader.get_acl(r),
        Request::GetEphemerals(r) => reader.get_ephemerals(r),
        Request::GetAllChildrenNumber(r) => reader.get_all_children_number(r),
        Request::MultiRead(ops) => reader.multi_read(ops),
        Request::WhoAmI => {
            let client_info = conn.auth.client_infos();
            return (xid, ErrorCode::Ok, Response::WhoAmI(WhoAmIResponse { client_info }));
        }
        Request::SetWatches(r) => {
            for (event, path) in reader.set_watches(r, conn.id, watches) {
                conn.push_notification(event, &path);
            }
            return (xid, ErrorCode::Ok, Response::Empty);
        }
        Request::CheckWatches(r) | Request::RemoveWatches(r) => {
            let Some(watcher_type) = WatcherType::from_i32(r.watcher_type) else {
                return (xid, ErrorCode::MarshallingError, Response::Empty);
            };
            let found = match request {
                Request::RemoveWatches(_) => watches.remove(conn.id, &r.path, watcher_type),
                _ => watches.contains(conn.id, &r.path, watcher_type),
            };
            let err = if found { ErrorCode::Ok } else { ErrorCode::NoWatcher };
            return (xid, err, Response::Empty);
        }
        Request::AddWatch(r) => {
            let kind = match AddWatchMode::from_i32(r.mode) {
                Some(AddWatchMode::Persistent) => WatchKind::Persistent,
                Some(AddWatchMode::PersistentRecursive) => WatchKind::PersistentRecursive,
                None => return (xid, ErrorCode::MarshallingError, Response::Empty),
            };
            watches.add(conn.id, &r.path, kind);
            return (xid, ErrorCode::Ok, Response::AddWatch(ErrorResponse { err: 0 }));
        }
        // Without a SASL provider configured, ZooKeeper answers every token with a null one.
        Request::Sasl(_) => return (xid, ErrorCode::Ok, Response::Sasl(SaslRequest { token: None })),
        Request::Auth(_)
        | Request::Write(_)
        | Request::Multi(_)
        | Request::Sync(_)
        | Request::CloseSession
        | Request::Reconfig(_)
        | Request::DeleteContainer(_) => unreachable!("{:?} is not answered locally", request.op_code()),
    };
    if let Some((path, kind)) = answer.watch {
        watches.add(conn.id, &path, kind);
    }
    match answer.result {
        Ok(response) => (xid, ErrorCode::Ok, response),
        Err(err) => (xid, err, Response::Empty),
    }
}
