//! What a failed check reports: enough to debug a failing seed without re-running it.

use crate::sim::history::{Op, OpId, SessionId, Zxid};

/// Which guarantee a history broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// The committed log's zxids do not strictly increase.
    LogOutOfOrder,
    /// Two txns in the log carry the same session and cxid: one request applied twice.
    DuplicateRequest,
    /// A write the client saw answered (success or error) is not in the committed log.
    LostWrite,
    /// The log has the request at a zxid other than the one its reply carried.
    ZxidMismatch,
    /// The reply's zxid belongs to another request in the log (and this request is not there).
    ZxidOfAnotherRequest,
    /// The logged txn is not what the data model makes of the request at that point (a wrong
    /// BadVersion/NodeExists/NoNode/NotEmpty decision, a wrong sequential name, version or data).
    WrongDecision,
    /// The client's reply disagrees with the logged txn or with the state it produced.
    ReplyDisagrees,
    /// The log has a txn the data model forbids (create of an existing node, delete of a missing one...).
    InvalidTxn,
    /// A read's result is not the state at the zxid its reply carried.
    WrongRead,
    /// A read's reply carried a zxid past the end of the committed log (and not the start of a new
    /// epoch, which a new ZooKeeper leader reports before its first txn).
    ZxidPastLog,
    /// A session got replies out of request order.
    FifoOrder,
    /// A session saw a smaller zxid after a larger one.
    ZxidWentBack,
    /// After a sync, a session saw state older than a write acknowledged before the sync was sent.
    StaleAfterSync,
    /// A write acknowledged before another was invoked has the larger zxid.
    RealTimeOrder,
    /// A session saw data at or past a change's zxid before the watch event for that change.
    WatchEventLate,
    /// A one-shot watch fired more than once.
    WatchFiredTwice,
}

/// A broken guarantee: which ops, sessions and zxids, what the model expected and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    /// The ops involved, each with its description (client, session, xid, request, outcome).
    pub ops: Vec<(OpId, String)>,
    pub session_id: Option<SessionId>,
    pub zxids: Vec<Zxid>,
    pub expected: String,
    pub seen: String,
}

impl Violation {
    pub fn new(kind: ViolationKind, expected: impl Into<String>, seen: impl Into<String>) -> Violation {
        Violation {
            kind,
            ops: Vec::new(),
            session_id: None,
            zxids: Vec::new(),
            expected: expected.into(),
            seen: seen.into(),
        }
    }

    /// Names an op involved; the first one named gives the session.
    pub fn op(mut self, op: &Op) -> Violation {
        self.ops.push((op.id, op.to_string()));
        self.session_id.get_or_insert(op.session_id);
        self
    }

    /// The ids of the ops involved, in the order named.
    pub fn op_ids(&self) -> Vec<OpId> {
        self.ops.iter().map(|(id, _)| *id).collect()
    }

    pub fn zxid(mut self, zxid: Zxid) -> Violation {
        self.zxids.push(zxid);
        self
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if let Some(session) = self.session_id {
            write!(f, " in session {session:#x}")?;
        }
        if !self.zxids.is_empty() {
            let zxids: Vec<String> = self.zxids.iter().map(|z| format!("{z:#x}")).collect();
            write!(f, " at zxid {}", zxids.join(", "))?;
        }
        write!(f, "\n  expected: {}\n  seen:     {}", self.expected, self.seen)?;
        for (_, op) in &self.ops {
            write!(f, "\n  {op}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}
