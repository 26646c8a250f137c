//! What the pipeline's threads say to each other.

use std::net::SocketAddr;
use std::sync::Arc;

use fk_engine::tree::WatchTrigger;
use fk_net::client::{ErrorCode, Response};

use crate::watch::ConnId;

use super::sequencer::SequencerState;
use super::shard::ShardState;

pub use crate::sequencer::{Origin, Proposal, Route, Sequenced, SequencerInput, WriteRequest};

/// A reply route waiting in the applier for the txn it belongs to (`zxid` is that txn's) or, for a
/// barrier, for the last txn proposed before it (`zxid` is that one's) to be applied.
#[derive(Debug)]
pub struct PendingRoute {
    pub zxid: i64,
    pub route: Route,
}

/// Work for the sequencer thread.
pub enum SequencerMsg {
    /// For the sequencer's core.
    Input(SequencerInput),
    /// Runs on the sequencer thread with its state (4lw inspection).
    Inspect(Box<dyn FnOnce(&SequencerState<'_>) + Send>),
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
