//! What the pipeline's threads say to each other.

use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam_channel::Sender;
use fk_net::txn::Txn;

use fk_engine::tree::WatchTrigger;

use crate::watch::ConnId;

use crate::ops::figures::{ConnectionFigures, SessionFigures};
use crate::peers::admission::Admitted;
use crate::zab::LinkId;
use fk_net::quorum::QuorumPacket;

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
    /// The sessions the sequencer's core tracks (4lw `dump`, `mntr`); `None` where no core prepares
    /// txns (a learner, or between roles).
    Sessions(Sender<Option<SessionFigures>>),
    /// Something from the quorum port or the election (ensembles).
    Quorum(QuorumEvent),
    /// The AdminServer's `restore` (a standalone server's sequencer runs it between two steps).
    Restore(RestoreRequest),
}

/// What happened on the quorum port, for the member thread.
#[derive(Debug)]
pub enum QuorumEvent {
    /// A learner connected to our quorum port and sent its opening (the first bytes read).
    Accepted(Admitted),
    /// A link is up (a learner's link to its leader: connected).
    Linked(LinkId),
    /// Every packet one read completed, in order.
    Packets(LinkId, Vec<QuorumPacket>),
    Closed(LinkId, String),
}

/// A restore asked of the sequencer thread: the uploaded file (in the snapshot directory), and where
/// the answer goes (the restored zxid, or why nothing changed / what failed).
pub struct RestoreRequest {
    pub upload: std::path::PathBuf,
    pub answer: Sender<Result<i64, String>>,
}

/// What the 4lw and admin figures ask of a shard.
pub enum ShardQuery {
    /// Its client connections (not those carrying a 4-letter word).
    Connections(Sender<Vec<ConnectionFigures>>),
    /// `crst`: every connection's statistics start again.
    ResetConnectionStats,
    Watches(Sender<ShardWatches>),
}

/// A shard's watches: how many registrations, on which paths, and the data watches by session.
#[derive(Debug, Default)]
pub struct ShardWatches {
    pub entries: usize,
    pub paths: std::collections::HashSet<String>,
    /// (session, path) of each watch ZooKeeper keeps in its data watch manager.
    pub data_watches: Vec<(i64, String)>,
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
    /// A 4lw or admin figure's question.
    Query(ShardQuery),
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
