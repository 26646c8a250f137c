//! What the pipeline's threads say to each other.

use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam_channel::Sender;
use fk_net::txn::Txn;

use fk_engine::tree::WatchTrigger;

use crate::watch::ConnId;

use super::sequencer::SequencerState;
use super::shard::ShardState;

pub use crate::apply::replies::ShardReply;
pub use crate::sequencer::{Origin, PendingRoute, Proposal, Route, Sequenced, SequencerInput, Wait, WriteRequest};

/// Work for the log stage.
pub enum LogMsg {
    /// Txns to make durable, in zxid order.
    Txns(Vec<Txn>),
    /// Answer once everything sent before is durable and handed on.
    Flush(Sender<()>),
    /// The log on disk was cut or replaced (a learner's TRUNC or SNAP): go on in a new file after
    /// `last_zxid`.
    Restart { last_zxid: i64 },
}

/// Work for the applier.
pub enum ApplierMsg {
    /// Committed and durable: apply now (standalone).
    Committed(Vec<Txn>),
    /// Durable: apply once committed.
    Persisted(Vec<Txn>),
    /// Everything through this zxid is committed (an ensemble's commit decision).
    CommitThrough(i64),
    /// Nothing new to apply, but a barrier route just sent may already be due (its txns applied).
    Wake,
    /// The tree was (re)loaded from disk, and may be ahead of the txns to be applied next (a fuzzy
    /// snapshot): their logged digests are compared once it is exact.
    TreeLoaded(fk_engine::recovery::Fuzziness),
    /// A role ended: nobody waits any more (every waiting route is dropped), and the txns logged but
    /// not known to be committed are applied as well — the tree then holds everything in the log, as
    /// after a restart (ZooKeeper's `fastForwardDataBase`); the next role's synchronisation cuts what
    /// the new leader does not have. Answers when done.
    Reset(Sender<()>),
}

/// Work for the sequencer thread.
pub enum SequencerMsg {
    /// For the sequencer's core.
    Input(SequencerInput),
    /// Runs on the sequencer thread with its state (4lw inspection).
    Inspect(Box<dyn FnOnce(&SequencerState<'_>) + Send>),
    /// Something from the quorum port or the election (ensembles).
    Quorum(super::member::QuorumEvent),
    /// The AdminServer's `restore` (a standalone server's sequencer runs it between two steps).
    Restore(super::restore::RestoreRequest),
}

/// What a shard is told.
pub enum ShardMsg {
    NewConnection(mio::net::TcpStream, SocketAddr, super::tls::Port),
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
    /// This member stopped serving (its role in the ensemble ended): close every client connection;
    /// clients reconnect, to this member once it serves again or to another.
    CloseClients {
        reason: &'static str,
    },
    /// Read-only service ended (this member found its quorum, or is synchronising with it): close the
    /// read-only sessions' connections, as ZooKeeper's ReadOnlyZooKeeperServer closes them on shutdown.
    EndReadOnly,
}

pub struct AppliedBatch {
    pub triggers: Arc<Vec<(u32, WatchTrigger)>>,
    pub replies: Vec<(u32, ShardReply)>,
}
