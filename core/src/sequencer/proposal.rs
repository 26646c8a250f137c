//! What the sequencer takes in and hands on: client writes with where they came from, and proposals —
//! a txn (the replicated record) plus what to do locally once it is applied.

use std::sync::Arc;

use fk_net::client::{ErrorCode, OpCode, Request};
use fk_net::txn::Txn;

use crate::auth::AuthIds;
use crate::watch::ConnId;
use crate::zab::LinkId;

/// A connection anywhere in the server: its shard and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub shard: usize,
    pub conn: ConnId,
}

pub struct WriteRequest {
    pub origin: Origin,
    pub session_id: i64,
    pub xid: i32,
    pub work: Sequenced,
    pub auth: Arc<AuthIds>,
}

/// What the sequencer is asked to do for a request.
#[derive(Debug)]
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
#[derive(Debug)]
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
    /// A learner's forwarded sync (the leader only): the learner is told once everything proposed before
    /// it is committed.
    LearnerSync { link: LinkId },
}

impl Route {
    /// Routes without a txn of their own: they wait for the txns proposed before them.
    pub fn is_barrier(&self) -> bool {
        matches!(self, Route::Sync { .. } | Route::CheckPassed { .. } | Route::LearnerSync { .. })
    }
}

/// Who answers a request once it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// A client of this server.
    Local(Origin),
    /// The learner that forwarded it (the leader only): it answers its client when the txn comes back
    /// committed, so nothing waits here.
    Learner(LinkId),
}

/// A reply route waiting in the applier.
#[derive(Debug)]
pub struct PendingRoute {
    pub wait: Wait,
    pub route: Route,
}

/// What a route waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The txn with this zxid (the route's own), or, for a barrier, the last txn proposed before it.
    Zxid(i64),
    /// The txn a request became, known by its session and xid: a learner forwards requests and learns
    /// their zxids only when they come back committed.
    Request { session_id: i64, cxid: i32 },
}
