//! What simulated clients did and saw: one [`Op`] per request, logged as it happens by a [`History`].
//!
//! The simulator calls [`History::invoke`] when a client sends a request and [`History::complete_reply`]
//! (or [`History::complete`]) when its reply arrives, or [`History::give_up`] when the client stops
//! waiting (connection lost, timeout). An op still pending when the run ends keeps
//! [`Outcome::Unknown`]. Watch registrations and notifications go through [`History::watch_set`] and
//! [`History::watch_event`], reconnections through [`History::connected`]. [`OpKind::from_request`], [`Outcome::from_reply`] and
//! [`OpKind::watch_left`] turn `fk_net::client` records into these terms.
//!
//! Every invoke, completion and watch notification gets a [`Stamp`]: the simulator's clock (for
//! messages) and the recorder's own event sequence number (for ordering). The checkers order events by
//! the sequence number, never by the clock: in a one-thread simulator the order of the recorder calls is
//! the real-time order, and two events on one clock tick are still ordered.

use fk_net::client::{ErrorCode, MultiResult, OpCode, ReplyHeader, Request, Response, Stat, WriteOp};

/// A ZooKeeper session id (`TxnHeader.client_id` of the txns it caused).
pub type SessionId = i64;
/// A ZooKeeper transaction id.
pub type Zxid = i64;

/// An op's index in [`History::ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub usize);

/// When something happened: `time` is the simulator's clock, `seq` the recorder's event count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub time: u64,
    pub seq: u64,
}

/// A client request, in the terms of the data model (ACLs are not modelled: every node is world-open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral: bool,
        sequential: bool,
    },
    /// `version` -1 matches any version.
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    /// Only inside a multi.
    Check {
        path: String,
        version: i32,
    },
    GetData {
        path: String,
    },
    Exists {
        path: String,
    },
    GetChildren {
        path: String,
    },
    Sync {
        path: String,
    },
    Multi(Vec<OpKind>),
}

impl OpKind {
    /// Whether the request goes through the write pipeline and gets a txn (and so a zxid of its own).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            OpKind::Create { .. }
                | OpKind::SetData { .. }
                | OpKind::Delete { .. }
                | OpKind::Check { .. }
                | OpKind::Multi(_)
        )
    }

    /// The op a client request is, in the model's terms; None for requests the model does not cover
    /// (containers, TTL nodes, ACLs, multiRead, session and watch management).
    pub fn from_request(request: &Request) -> Option<OpKind> {
        Some(match request {
            Request::Write(write) => OpKind::from_write(write)?,
            Request::Multi(writes) => OpKind::Multi(writes.iter().map(OpKind::from_write).collect::<Option<_>>()?),
            Request::GetData(r) => OpKind::GetData { path: r.path.clone() },
            Request::Exists(r) => OpKind::Exists { path: r.path.clone() },
            Request::GetChildren(r) | Request::GetChildren2(r) => OpKind::GetChildren { path: r.path.clone() },
            Request::Sync(r) => OpKind::Sync { path: r.path.clone() },
            _ => return None,
        })
    }

    fn from_write(write: &WriteOp) -> Option<OpKind> {
        let data = |d: &Option<Vec<u8>>| d.clone().unwrap_or_default();
        Some(match write {
            // CreateMode flags: 1 ephemeral, 2 sequential; 4 and up are containers and TTL nodes.
            WriteOp::Create { op: OpCode::Create | OpCode::Create2, request } if (0..4).contains(&request.flags) => {
                OpKind::Create {
                    path: request.path.clone(),
                    data: data(&request.data),
                    ephemeral: request.flags & 1 != 0,
                    sequential: request.flags & 2 != 0,
                }
            }
            WriteOp::Delete(r) => OpKind::Delete { path: r.path.clone(), version: r.version },
            WriteOp::SetData(r) => OpKind::SetData { path: r.path.clone(), data: data(&r.data), version: r.version },
            WriteOp::Check(r) => OpKind::Check { path: r.path.clone(), version: r.version },
            _ => return None,
        })
    }

    /// The watch ZooKeeper leaves for `request` answered with `outcome`: getData and getChildren when
    /// they succeed, exists also when the node is missing (it then waits for the creation).
    pub fn watch_left(request: &Request, outcome: &Outcome) -> Option<WatchKind> {
        let missing = matches!(outcome, Outcome::Failed { code: ErrorCode::NoNode, .. });
        let ok = matches!(outcome, Outcome::Ok { .. });
        match request {
            Request::GetData(r) if r.watch && ok => Some(WatchKind::Data),
            Request::Exists(r) if r.watch && (ok || missing) => Some(WatchKind::Data),
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch && ok => Some(WatchKind::Child),
            _ => None,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, OpKind::GetData { .. } | OpKind::Exists { .. } | OpKind::GetChildren { .. })
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpKind::Create { path, data, ephemeral, sequential } => {
                let mode = match (ephemeral, sequential) {
                    (false, false) => "",
                    (true, false) => " ephemeral",
                    (false, true) => " sequential",
                    (true, true) => " ephemeral-sequential",
                };
                write!(f, "create{mode} {path} ({} bytes)", data.len())
            }
            OpKind::SetData { path, data, version } => {
                write!(f, "setData {path} ({} bytes) version {version}", data.len())
            }
            OpKind::Delete { path, version } => write!(f, "delete {path} version {version}"),
            OpKind::Check { path, version } => write!(f, "check {path} version {version}"),
            OpKind::GetData { path } => write!(f, "getData {path}"),
            OpKind::Exists { path } => write!(f, "exists {path}"),
            OpKind::GetChildren { path } => write!(f, "getChildren {path}"),
            OpKind::Sync { path } => write!(f, "sync {path}"),
            OpKind::Multi(ops) => {
                write!(f, "multi[")?;
                for (i, op) in ops.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{op}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// The body of a successful reply, in the model's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// create (`stat` None) or create2 (`stat` of the new node).
    Created {
        path: String,
        stat: Option<Stat>,
    },
    /// delete and check: no body.
    Empty,
    /// setData, exists and check.
    Stat(Stat),
    Data {
        data: Vec<u8>,
        stat: Stat,
    },
    /// getChildren (`stat` None) or getChildren2; children in the order the server sent them.
    Children {
        children: Vec<String>,
        stat: Option<Stat>,
    },
    Synced,
    /// One result per sub-op of a multi that succeeded as a whole.
    Multi(Vec<OpResult>),
}

impl OpResult {
    /// The result carried by a successful reply body; None for bodies no modelled op gets.
    pub fn from_response(response: &Response) -> Option<OpResult> {
        Some(match response {
            Response::Empty => OpResult::Empty,
            Response::Create(r) => OpResult::Created { path: r.path.clone(), stat: None },
            Response::Create2(r) => OpResult::Created { path: r.path.clone(), stat: Some(r.stat.clone()) },
            Response::Stat(stat) => OpResult::Stat(stat.clone()),
            Response::GetData(r) => OpResult::Data { data: r.data.clone().unwrap_or_default(), stat: r.stat.clone() },
            Response::GetChildren(r) => OpResult::Children { children: r.children.clone(), stat: None },
            Response::GetChildren2(r) => {
                OpResult::Children { children: r.children.clone(), stat: Some(r.stat.clone()) }
            }
            Response::Sync(_) => OpResult::Synced,
            Response::Multi(results) => {
                OpResult::Multi(results.iter().map(from_multi_result).collect::<Option<Vec<_>>>()?)
            }
            _ => return None,
        })
    }
}

fn from_multi_result(result: &MultiResult) -> Option<OpResult> {
    Some(match result {
        MultiResult::Create(path) => OpResult::Created { path: path.clone(), stat: None },
        MultiResult::Create2(path, stat) => OpResult::Created { path: path.clone(), stat: Some(stat.clone()) },
        MultiResult::Delete => OpResult::Empty,
        MultiResult::SetData(stat) => OpResult::Stat(stat.clone()),
        MultiResult::Check => OpResult::Empty,
        MultiResult::GetData(data, stat) => {
            OpResult::Data { data: data.clone().unwrap_or_default(), stat: stat.clone() }
        }
        MultiResult::GetChildren(children) => OpResult::Children { children: children.clone(), stat: None },
        MultiResult::Error(_) => return None,
    })
}

/// What the client learned. Client-side failures (connection loss, a timeout, an expired session
/// noticed by the client) are `Unknown`, not `Failed`: the write may still have been committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The reply header's zxid and the decoded body.
    Ok {
        zxid: Zxid,
        result: OpResult,
    },
    /// The server answered with an error code (a multi: the code of the sub-op that failed).
    Failed {
        zxid: Zxid,
        code: ErrorCode,
    },
    Unknown,
}

impl Outcome {
    /// The outcome a reply gives: `body` is the decoded body, present when `header.err` is 0.
    ///
    /// A failed multi comes back from ZooKeeper with `err` 0 and one error result per sub-op: 0 for
    /// those before the one that failed, its code, then RuntimeInconsistency for the rest. It becomes
    /// `Failed` with the failing sub-op's code.
    pub fn from_reply(header: &ReplyHeader, body: Option<&Response>) -> Outcome {
        let code = |err: i32| ErrorCode::from_i32(err).unwrap_or(ErrorCode::SystemError);
        if header.err != 0 {
            return Outcome::Failed { zxid: header.zxid, code: code(header.err) };
        }
        if let Some(Response::Multi(results)) = body {
            let errors = results.iter().filter_map(|r| match r {
                MultiResult::Error(err) if *err != 0 => Some(*err),
                _ => None,
            });
            let first = errors.clone().find(|err| *err != ErrorCode::RuntimeInconsistency.as_i32());
            if let Some(err) = first.or_else(|| errors.clone().next()) {
                return Outcome::Failed { zxid: header.zxid, code: code(err) };
            }
        }
        match body.and_then(OpResult::from_response) {
            Some(result) => Outcome::Ok { zxid: header.zxid, result },
            // A body the model has no result for is still a successful reply at that zxid.
            None => Outcome::Ok { zxid: header.zxid, result: OpResult::Empty },
        }
    }

    /// The reply header's zxid, when there was a reply.
    pub fn zxid(&self) -> Option<Zxid> {
        match self {
            Outcome::Ok { zxid, .. } | Outcome::Failed { zxid, .. } => Some(*zxid),
            Outcome::Unknown => None,
        }
    }

    pub fn is_reply(&self) -> bool {
        !matches!(self, Outcome::Unknown)
    }
}

/// One request of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub id: OpId,
    /// The simulator's client number (a client may open several sessions over a run).
    pub client: usize,
    pub session_id: SessionId,
    /// The request header's xid: the txn's cxid.
    pub xid: i32,
    pub kind: OpKind,
    pub invoked: Stamp,
    /// When the reply arrived or the client gave up; None while pending.
    pub completed: Option<Stamp>,
    pub outcome: Outcome,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "op #{} (client {}, session {:#x}, xid {}, invoked t={}): {}",
            self.id.0, self.client, self.session_id, self.xid, self.invoked.time, self.kind
        )?;
        match (&self.outcome, self.completed) {
            (Outcome::Ok { zxid, .. }, Some(at)) => write!(f, " -> ok at zxid {zxid:#x}, t={}", at.time),
            (Outcome::Failed { zxid, code }, Some(at)) => {
                write!(f, " -> {code} at zxid {zxid:#x}, t={}", at.time)
            }
            (Outcome::Unknown, Some(at)) => write!(f, " -> unknown (gave up at t={})", at.time),
            (_, None) => write!(f, " -> pending"),
        }
    }
}

/// A watch a session left with a read (getData/exists set a data watch, getChildren a child watch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSet {
    pub session_id: SessionId,
    pub path: String,
    pub kind: WatchKind,
    /// The read that set it: the watch is armed at that read's reply zxid.
    pub op: OpId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// Set by getData or exists: fires on NodeCreated, NodeDeleted, NodeDataChanged.
    Data,
    /// Set by getChildren: fires on NodeChildrenChanged, NodeDeleted.
    Child,
}

/// A notification a session received (reply xid -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub session_id: SessionId,
    pub path: String,
    /// `fk_net::client::watch::EventType` as sent.
    pub event_type: i32,
    pub at: Stamp,
}

/// The recorder: a log of every op, filled as the simulation runs.
#[derive(Debug, Clone, Default)]
pub struct History {
    ops: Vec<Op>,
    watches: Vec<WatchSet>,
    events: Vec<WatchEvent>,
    connections: Vec<(SessionId, Stamp)>,
    next_seq: u64,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    fn stamp(&mut self, time: u64) -> Stamp {
        let seq = self.next_seq;
        self.next_seq += 1;
        Stamp { time, seq }
    }

    /// Logs a request as it is sent.
    pub fn invoke(&mut self, now: u64, client: usize, session_id: SessionId, xid: i32, kind: OpKind) -> OpId {
        let id = OpId(self.ops.len());
        let invoked = self.stamp(now);
        self.ops.push(Op { id, client, session_id, xid, kind, invoked, completed: None, outcome: Outcome::Unknown });
        id
    }

    /// Logs what the client learned about `id`. Completing an op twice is a bug in the caller.
    pub fn complete(&mut self, id: OpId, now: u64, outcome: Outcome) {
        let completed = self.stamp(now);
        let op = &mut self.ops[id.0];
        assert!(op.completed.is_none(), "op #{} completed twice", id.0);
        op.completed = Some(completed);
        op.outcome = outcome;
    }

    /// Logs a reply: its header and the decoded body (None when `header.err` is not 0).
    pub fn complete_reply(&mut self, id: OpId, now: u64, header: &ReplyHeader, body: Option<&Response>) {
        self.complete(id, now, Outcome::from_reply(header, body));
    }

    /// Logs that the client stopped waiting for `id` without a reply.
    pub fn give_up(&mut self, id: OpId, now: u64) {
        self.complete(id, now, Outcome::Unknown);
    }

    /// Logs a watch left by the read `op` (call it when the read's successful reply is logged).
    pub fn watch_set(&mut self, op: OpId, kind: WatchKind) {
        let read = &self.ops[op.0];
        let path = match &read.kind {
            OpKind::GetData { path } | OpKind::Exists { path } | OpKind::GetChildren { path } => path.clone(),
            other => panic!("op #{} ({other}) cannot set a watch", op.0),
        };
        self.watches.push(WatchSet { session_id: read.session_id, path, kind, op });
    }

    /// Logs a notification as the session receives it.
    pub fn watch_event(&mut self, now: u64, session_id: SessionId, path: &str, event_type: i32) {
        let at = self.stamp(now);
        self.events.push(WatchEvent { session_id, path: path.to_string(), event_type, at });
    }

    /// Logs that a session (re)connected to a member: its watches are re-registered (setWatches)
    /// and ZooKeeper may then report a missed change with another event type, or not at all (an
    /// exists watch on a node created and deleted while the session was away).
    pub fn connected(&mut self, now: u64, session_id: SessionId) {
        let at = self.stamp(now);
        self.connections.push((session_id, at));
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn op(&self, id: OpId) -> &Op {
        &self.ops[id.0]
    }

    pub fn watches(&self) -> &[WatchSet] {
        &self.watches
    }

    pub fn watch_events(&self) -> &[WatchEvent] {
        &self.events
    }

    /// Every (re)connection: the session and when.
    pub fn connections(&self) -> &[(SessionId, Stamp)] {
        &self.connections
    }
}

#[cfg(test)]
mod tests {
    use fk_net::client::{Create2Response, CreateResponse, GetChildrenResponse, GetDataResponse};

    use super::*;

    fn header(err: ErrorCode) -> ReplyHeader {
        ReplyHeader { xid: 7, zxid: 0x42, err: err.as_i32() }
    }

    #[test]
    fn replies_become_outcomes() {
        let stat = Stat { version: 3, ..Stat::default() };
        let rc = ErrorCode::RuntimeInconsistency.as_i32();
        let cases: Vec<(&str, ReplyHeader, Option<Response>, Outcome)> = vec![
            (
                "error in the header",
                header(ErrorCode::NoNode),
                None,
                Outcome::Failed { zxid: 0x42, code: ErrorCode::NoNode },
            ),
            (
                "create",
                header(ErrorCode::Ok),
                Some(Response::Create(CreateResponse { path: "/a".into() })),
                Outcome::Ok { zxid: 0x42, result: OpResult::Created { path: "/a".into(), stat: None } },
            ),
            (
                "create2",
                header(ErrorCode::Ok),
                Some(Response::Create2(Create2Response { path: "/a".into(), stat: stat.clone() })),
                Outcome::Ok { zxid: 0x42, result: OpResult::Created { path: "/a".into(), stat: Some(stat.clone()) } },
            ),
            (
                "getData of a null value",
                header(ErrorCode::Ok),
                Some(Response::GetData(GetDataResponse { data: None, stat: stat.clone() })),
                Outcome::Ok { zxid: 0x42, result: OpResult::Data { data: vec![], stat: stat.clone() } },
            ),
            (
                "getChildren",
                header(ErrorCode::Ok),
                Some(Response::GetChildren(GetChildrenResponse { children: vec!["b".into(), "a".into()] })),
                Outcome::Ok {
                    zxid: 0x42,
                    result: OpResult::Children { children: vec!["b".into(), "a".into()], stat: None },
                },
            ),
            (
                "delete",
                header(ErrorCode::Ok),
                Some(Response::Empty),
                Outcome::Ok { zxid: 0x42, result: OpResult::Empty },
            ),
            (
                "multi that succeeded",
                header(ErrorCode::Ok),
                Some(Response::Multi(vec![MultiResult::Check, MultiResult::SetData(stat.clone())])),
                Outcome::Ok { zxid: 0x42, result: OpResult::Multi(vec![OpResult::Empty, OpResult::Stat(stat)]) },
            ),
            (
                "multi whose second op failed: OK, the code, then RuntimeInconsistency",
                header(ErrorCode::Ok),
                Some(Response::Multi(vec![
                    MultiResult::Error(0),
                    MultiResult::Error(ErrorCode::BadVersion.as_i32()),
                    MultiResult::Error(rc),
                ])),
                Outcome::Failed { zxid: 0x42, code: ErrorCode::BadVersion },
            ),
        ];
        for (name, header, body, expected) in cases {
            assert_eq!(Outcome::from_reply(&header, body.as_ref()), expected, "{name}");
        }
    }

    #[test]
    fn requests_become_op_kinds() {
        use fk_net::client::{CreateRequest, DeleteRequest, PathWatchRequest};
        let create = |flags: i32| {
            let request = CreateRequest { path: "/a".into(), data: Some(b"x".to_vec()), acl: vec![], flags };
            Request::Write(WriteOp::Create { op: OpCode::Create2, request })
        };
        let kind =
            |ephemeral, sequential| OpKind::Create { path: "/a".into(), data: b"x".to_vec(), ephemeral, sequential };
        let watched = PathWatchRequest { path: "/a".into(), watch: true };
        let cases: Vec<(&str, Request, Option<OpKind>)> = vec![
            ("persistent", create(0), Some(kind(false, false))),
            ("ephemeral", create(1), Some(kind(true, false))),
            ("persistent sequential", create(2), Some(kind(false, true))),
            ("ephemeral sequential", create(3), Some(kind(true, true))),
            ("container: not modelled", create(4), None),
            ("getChildren2", Request::GetChildren2(watched.clone()), Some(OpKind::GetChildren { path: "/a".into() })),
            (
                "multi",
                Request::Multi(vec![WriteOp::Delete(DeleteRequest { path: "/a".into(), version: 2 })]),
                Some(OpKind::Multi(vec![OpKind::Delete { path: "/a".into(), version: 2 }])),
            ),
            ("ping", Request::Ping, None),
        ];
        for (name, request, expected) in cases {
            assert_eq!(OpKind::from_request(&request), expected, "{name}");
        }
    }

    #[test]
    fn watches_are_left_as_zookeeper_leaves_them() {
        use fk_net::client::PathWatchRequest;
        let path = |watch| PathWatchRequest { path: "/a".into(), watch };
        let ok = Outcome::Ok { zxid: 1, result: OpResult::Empty };
        let missing = Outcome::Failed { zxid: 1, code: ErrorCode::NoNode };
        let cases: Vec<(&str, Request, Outcome, Option<WatchKind>)> = vec![
            ("getData", Request::GetData(path(true)), ok.clone(), Some(WatchKind::Data)),
            ("getData without watch", Request::GetData(path(false)), ok.clone(), None),
            ("getData of a missing node", Request::GetData(path(true)), missing.clone(), None),
            ("exists of a missing node", Request::Exists(path(true)), missing.clone(), Some(WatchKind::Data)),
            ("getChildren", Request::GetChildren(path(true)), ok.clone(), Some(WatchKind::Child)),
            ("getChildren of a missing node", Request::GetChildren(path(true)), missing, None),
            ("no reply", Request::Exists(path(true)), Outcome::Unknown, None),
        ];
        for (name, request, outcome, expected) in cases {
            assert_eq!(OpKind::watch_left(&request, &outcome), expected, "{name}");
        }
    }

    #[test]
    fn the_recorder_stamps_events_in_call_order() {
        let mut history = History::new();
        let a = history.invoke(5, 0, 0xa, 1, OpKind::Sync { path: "/".into() });
        let b = history.invoke(5, 1, 0xb, 1, OpKind::GetData { path: "/".into() });
        history.give_up(b, 5);
        history.complete_reply(a, 6, &ReplyHeader { xid: 1, zxid: 9, err: 0 }, Some(&Response::Empty));
        let (a, b) = (history.op(a), history.op(b));
        assert_eq!((a.invoked.seq, b.invoked.seq, b.completed.unwrap().seq, a.completed.unwrap().seq), (0, 1, 2, 3));
        assert_eq!(b.outcome, Outcome::Unknown);
        assert_eq!(a.outcome.zxid(), Some(9));
    }
}
