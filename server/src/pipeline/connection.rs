//! One client connection as its shard sees it: the handshake, the per-session request order, and the
//! bytes of every reply and notification it is owed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use fk_net::client::watch::{EventType, STATE_SYNC_CONNECTED};
use fk_net::client::*;
use fk_net::frame::{begin_frame, end_frame};
use fk_net::jute::Jute;
use fk_net::reactor::Buffers;

use super::tls::Transport;
use crate::auth::AuthIds;
use crate::ops::stats::ConnStats;
use crate::requests::{Local, RequestQueue};
use crate::watch::ConnId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the ConnectRequest (or a 4-letter word).
    Handshake,
    /// The ConnectRequest came while this member was between roles: held until it serves again or the
    /// hold runs out (pipeline/held_connects.rs); later frames wait in the buffer.
    AwaitingService,
    /// The ConnectRequest went to the sequencer; later frames wait in the buffer.
    Connecting { read_only_byte: bool },
    /// `read_only`: a session of a member cut off from its quorum (`readonlymode.enabled`), known to this
    /// connection only: writes are refused with NotReadOnly, and it ends with the connection.
    Session { session_id: i64, timeout_ms: u32, read_only: bool },
    /// The first four bytes named a 4-letter word: waiting for stmk's 8-byte mask (`asked` false), or for
    /// the 4lw thread's answer (`asked` true). The answer is written like any output, then the
    /// connection closes.
    FourLetter { command: [u8; 4], asked: bool },
}

/// What a shard keeps of a write in the pipeline until its reply comes back: when it arrived, and what
/// the audit log needs of it once the reply is known (only when the log is on).
#[derive(Debug)]
pub struct WriteKept {
    pub received: Instant,
    pub audit: Option<Box<crate::ops::audit::AuditDraft>>,
}

/// A request answered here in its turn, and when it arrived.
#[derive(Debug)]
pub struct LocalKept {
    pub local: Local,
    pub received: Instant,
}

pub struct Connection {
    pub id: ConnId,
    pub stream: mio::net::TcpStream,
    /// Plaintext or TLS between the socket and `buffers`.
    pub transport: Transport,
    /// A TLS handshake finished and its client certificate was looked at (x509 authentication).
    pub tls_established: bool,
    pub peer: SocketAddr,
    pub buffers: Buffers,
    pub phase: Phase,
    /// Replaced (not mutated) on auth, so requests already in the pipeline keep the ids they were sent with.
    pub auth: Arc<AuthIds>,
    /// The audit log's `user` (for `auth`) and `ip`, worked out on first use; emptied whenever `auth` is
    /// replaced.
    pub audit_identity: std::cell::OnceCell<(Option<Arc<str>>, Arc<str>)>,
    /// A SASL exchange under way (or done), once the client sent its first token.
    pub sasl: Option<crate::sasl::ServerExchange>,
    /// The session's requests waiting for their reply, in order (the per-session protocol core).
    pub requests: RequestQueue<WriteKept, LocalKept>,
    pub stats: ConnStats,
    /// Set when the connection must close once its output is flushed; the reason is logged.
    pub closing: Option<&'static str>,
    /// Closed without flushing: whatever was queued is dropped, and nothing more is queued.
    pub aborted: bool,
    /// When the connection is closed if it is still without a session, or still unflushed while closing.
    pub deadline: Option<Instant>,
    /// The socket may have bytes we have not read (edge-triggered readiness: set by an event, cleared
    /// only when a read finds the socket empty).
    pub readable: bool,
    /// The peer closed its side; finish what was received, then close.
    pub peer_closed: bool,
    pub writable_registered: bool,
}

impl Connection {
    pub fn new(id: ConnId, stream: mio::net::TcpStream, transport: Transport, peer: SocketAddr, now: Instant) -> Self {
        Connection {
            id,
            stream,
            transport,
            tls_established: false,
            peer,
            buffers: Buffers::new(),
            phase: Phase::Handshake,
            auth: Arc::new(AuthIds::for_peer(peer.ip())),
            audit_identity: std::cell::OnceCell::new(),
            sasl: None,
            requests: RequestQueue::default(),
            stats: ConnStats::new(now),
            closing: None,
            aborted: false,
            deadline: None,
            readable: true,
            peer_closed: false,
            writable_registered: false,
        }
    }

    pub fn session_id(&self) -> Option<i64> {
        match self.phase {
            Phase::Session { session_id, .. } => Some(session_id),
            _ => None,
        }
    }

    pub fn close(&mut self, reason: &'static str) {
        self.closing.get_or_insert(reason);
    }

    /// Closes at once, dropping queued output (the client is not reading it).
    pub fn abort(&mut self, reason: &'static str) {
        self.close(reason);
        self.aborted = true;
        self.buffers.discard_output();
    }

    /// Queues raw bytes (a 4-letter word's answer is plain text, not a frame).
    pub fn push_text(&mut self, text: &str) {
        if !self.aborted {
            self.buffers.output().extend_from_slice(text.as_bytes());
        }
    }

    /// Appends a reply frame: header, then the body unless the request failed.
    pub fn push_reply(&mut self, xid: i32, zxid: i64, err: ErrorCode, response: &Response) {
        if self.aborted {
            return;
        }
        let out = self.buffers.output();
        let start = begin_frame(out);
        ReplyHeader { xid, zxid, err: err.as_i32() }.encode(out);
        if err == ErrorCode::Ok {
            response.encode(out);
        }
        end_frame(out, start);
        self.stats.sent += 1;
    }

    /// Appends a watch notification. 3.8 sends zxid -1 in its header.
    pub fn push_notification(&mut self, event: EventType, path: &str) {
        if self.aborted {
            return;
        }
        let out = self.buffers.output();
        let start = begin_frame(out);
        ReplyHeader { xid: xid::NOTIFICATION, zxid: -1, err: 0 }.encode(out);
        WatcherEvent { event_type: event.as_i32(), state: STATE_SYNC_CONNECTED, path: path.to_owned() }.encode(out);
        end_frame(out, start);
        self.stats.sent += 1;
    }

    /// Appends a ConnectResponse; `read_only` is its readOnly byte, `None` for a client whose request
    /// carried none (an old client).
    pub fn push_connect_response(
        &mut self,
        timeout_ms: u32,
        session_id: i64,
        passwd: Vec<u8>,
        read_only: Option<bool>,
    ) {
        let response = ConnectResponse {
            protocol_version: PROTOCOL_VERSION,
            timeout_ms: timeout_ms as i32,
            session_id,
            passwd,
            read_only,
        };
        let out = self.buffers.output();
        let start = begin_frame(out);
        response.encode(out);
        end_frame(out, start);
        self.stats.sent += 1;
    }

    /// Records a finished request in the connection's stats; returns its latency in µs.
    pub fn record_response(&mut self, xid: i32, zxid: i64, op: &'static str, received: Instant, now: Instant) -> u64 {
        let latency_us = now.saturating_duration_since(received).as_micros() as u64;
        let latency_ms = latency_us / 1000;
        let s = &mut self.stats;
        s.last_cxid = xid;
        s.last_zxid = zxid;
        s.last_op = op;
        s.last_response = Some(now);
        s.last_latency_ms = latency_ms;
        s.min_latency_ms = s.min_latency_ms.min(latency_ms);
        s.max_latency_ms = s.max_latency_ms.max(latency_ms);
        s.total_latency_ms += latency_ms;
        s.count += 1;
        latency_us
    }
}
