//! What the pipeline's threads say to each other.

use std::net::SocketAddr;
use std::sync::Arc;

use fk_engine::tree::WatchTrigger;
use fk_net::client::{ConnectRequest, ErrorCode, OpCode, Request, Response};
use fk_net::txn::Txn;

use crate::auth::AuthIds;
use crate::watch::ConnId;

use super::sequencer::SequencerState;
use super::shard::ShardState;

/// A connection anywhere in the server: its shard and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub shard: usize,
    pub conn: ConnId,
}

/// Work for the sequencer.
pub enum SequencerMsg {
    /// A request that goes through the txn pipeline: writes, multi, sync, closeSession, reconfig.
    Write(WriteRequest),
    /// A ConnectRequest: create a session or re-attach to one.
    Connect { origin: Origin, request: ConnectRequest },
    /// Sessions that sent something since the shard's last report.
    Touch(Vec<i64>),
    /// A connection that had a session closed (the session lives on until it expires).
    Disconnected { origin: Origin, session_id: i64 },
    /// Runs on the sequencer thread with its state (4lw inspection).
    Inspect(Box<dyn FnOnce(&SequencerState) + Send>),
}

pub struct WriteRequest {
    pub origin: Origin,
    pub session_id: i64,
    pub xid: i32,
    pub work: Sequenced,
    pub auth: Arc<AuthIds>,
}

/// What the sequencer is asked to do for a request.
pub enum Sequenced {
    Request(Request),
    /// A write refused before prep — an undecodable body, or a client's deleteContainer. ZooKeeper still
    /// logs it as an error txn, consuming a zxid, so we do too.
    Refused(OpCode, ErrorCode),
}

/// A txn on its way to the applier, or a barrier (sync) that only needs to keep its place in line.
pub struct Proposal {
    pub txn: Option<Txn>,
    pub route: Route,
}

/// What to do once a proposal is applied.
pub enum Route {
    /// Nobody waits (server-issued txns such as container deletion).
    None,
    /// Reply to a request.
    Reply { origin: Origin, xid: i32, op: OpCode },
    /// Reply to sync with its path.
    Sync { origin: Origin, xid: i32, path: String },
    /// A lone check that passed: reply with the node's Stat as of this point in the order.
    CheckPassed { origin: Origin, xid: i32, path: String },
    /// A new session: answer the ConnectRequest.
    Connect { origin: Origin, session_id: i64, timeout_ms: u32 },
    /// A closeSession, from the client (reply, then close) or from expiry (close the owner's connection).
    CloseSession { requester: Option<(Origin, i32)>, owner: Option<Origin> },
}

/// What a shard is told.
pub enum ShardMsg {
    NewConnection(mio::net::TcpStream, SocketAddr),
    /// One applier batch: the watch triggers it caused (shared by all shards) and this shard's replies,
    /// each tagged with its proposal's position so they interleave in apply order.
    Applied(AppliedBatch),
    /// A re-attach succeeded (no txn needed).
    Reattached {
        conn: ConnId,
        session_id: i64,
        timeout_ms: u32,
    },
    /// A ConnectRequest was refused: answer with an invalid session, then close.
    ConnectRefused {
        conn: ConnId,
    },
    /// Close a connection (its session expired, or moved to another connection).
    Close {
        conn: ConnId,
        reason: &'static str,
    },
    /// The 4lw thread's answer to a 4-letter word: write it, then close.
    FourLetterAnswer {
        conn: ConnId,
        text: String,
    },
    Inspect(Box<dyn FnOnce(&mut ShardState) + Send>),
}

pub struct AppliedBatch {
    pub triggers: Arc<Vec<(u32, WatchTrigger)>>,
    pub replies: Vec<(u32, ShardReply)>,
}

pub enum ShardReply {
    Response { conn: ConnId, xid: i32, zxid: i64, err: ErrorCode, response: Response, close_after: bool },
    Connected { conn: ConnId, session_id: i64, timeout_ms: u32 },
    Close { conn: ConnId, reason: &'static str },
}
