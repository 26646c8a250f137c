//! A learner's write path (ZooKeeper's `FollowerRequestProcessor` and `LearnerSessionTracker`), pure:
//! its clients' writes, syncs and session requests go to the leader, and each reply route waits in the
//! applier for the txn its request becomes — known by (session, xid), since the leader picks the zxid.
//!
//! New sessions get their id here (this member's id in the top byte) and are created by the leader's
//! createSession txn; a client re-attaching here is checked by the leader (REVALIDATE). Sessions with
//! activity are reported to the leader with each PING reply; only the leader expires sessions.

use std::collections::{HashMap, VecDeque};

use fk_net::client::{ConnectRequest, Id, OpCode, Request};
use fk_net::jute::JuteWriter;
use fk_net::quorum::packet::{ForwardedRequest, SessionTouch};
use tracing::info;

use super::{
    Notice, Now, Origin, PendingRoute, Route, Sequenced, SequencerInput, SequencerSettings, Wait, WriteRequest, admit,
};
use crate::planted::{self, PlantedBug};
use crate::session::{initial_session_id, session_password};

/// What one input turns into.
#[derive(Default)]
pub struct Forwarded {
    /// Reply routes, for the applier (sent before the requests they answer leave).
    pub routes: Vec<PendingRoute>,
    /// Requests for the leader, with the client's identities.
    pub requests: Vec<(ForwardedRequest, Vec<Id>)>,
    /// Sessions to ask the leader about: (session, timeout).
    pub revalidate: Vec<(i64, i32)>,
    pub notices: Vec<Notice>,
}

pub struct Forwarder {
    settings: SequencerSettings,
    next_session_id: i64,
    /// Sessions whose clients are connected here, with their timeouts (reported in PING replies).
    local: HashMap<i64, u32>,
    /// Sessions with activity since the last PING reply.
    touched: Vec<i64>,
    /// Local syncs, oldest first: the leader answers them in order.
    syncs: VecDeque<Route>,
    /// Re-attaches waiting for the leader's answer.
    revalidating: HashMap<i64, (Origin, u32)>,
}

impl Forwarder {
    pub fn new(settings: SequencerSettings, now: Now) -> Forwarder {
        Forwarder {
            next_session_id: initial_session_id(settings.server_id, now.wall_ms as u64),
            settings,
            local: HashMap::new(),
            touched: Vec::new(),
            syncs: VecDeque::new(),
            revalidating: HashMap::new(),
        }
    }

    /// Handles one input from the shards; `last_zxid` is the tree's.
    pub fn input(&mut self, input: SequencerInput, last_zxid: i64, out: &mut Forwarded) {
        match input {
            SequencerInput::Write(request) => self.write(request, out),
            SequencerInput::Connect { origin, request } => self.connect(origin, request, last_zxid, out),
            SequencerInput::Touch(sessions) => self.touched.extend(sessions),
            SequencerInput::Disconnected { session_id, .. } => {
                self.local.remove(&session_id);
            }
            SequencerInput::Forwarded { .. } | SequencerInput::Revalidate { .. } => {
                unreachable!("only a leader hears from learners")
            }
        }
    }

    fn write(&mut self, w: WriteRequest, out: &mut Forwarded) {
        let WriteRequest { origin, session_id, xid, work, auth } = w;
        let (op, body) = match &work {
            Sequenced::Request(request) => {
                let mut body = Vec::new();
                request.encode_body(&mut body);
                (request.op_code(), body)
            }
            // The leader refuses it in turn (it does not decode, or only the server may send it) and
            // logs the error txn, as ZooKeeper's leader would.
            Sequenced::Refused(op, _) => (*op, Vec::new()),
        };
        let route = match &work {
            Sequenced::Request(Request::Sync(r)) if planted::is_planted(PlantedBug::SyncAnsweredEarly) => {
                // The planted bug: answered from this member's state without asking the leader.
                let route = Route::Sync { origin, xid, path: r.path.clone() };
                out.routes.push(PendingRoute { wait: Wait::Zxid(0), route });
                return;
            }
            Sequenced::Request(Request::Sync(r)) => {
                self.syncs.push_back(Route::Sync { origin, xid, path: r.path.clone() });
                None
            }
            Sequenced::Request(Request::CloseSession) => {
                self.local.remove(&session_id);
                Some(Route::CloseSession { requester: Some((origin, xid)), owner: None })
            }
            _ => Some(Route::Reply { origin, xid, op }),
        };
        if let Some(route) = route {
            out.routes.push(PendingRoute { wait: Wait::Request { session_id, cxid: xid }, route });
        }
        let request = ForwardedRequest { session_id, cxid: xid, op: op.as_i32(), body };
        out.requests.push((request, auth.ids.clone()));
    }

    /// ZooKeeper's `processConnectRequest` on a learner: a new session is made here and created by the
    /// leader; a re-attach is checked by the leader.
    fn connect(&mut self, origin: Origin, request: ConnectRequest, last_zxid: i64, out: &mut Forwarded) {
        let Some(timeout_ms) = admit(origin, &request, last_zxid, &self.settings, &mut out.notices) else { return };
        if request.session_id == 0 {
            let session_id = self.next_session_id;
            self.next_session_id += 1;
            self.local.insert(session_id, timeout_ms);
            let route = Route::Connect { origin, session_id, timeout_ms };
            out.routes.push(PendingRoute { wait: Wait::Request { session_id, cxid: 0 }, route });
            let mut body = Vec::new();
            body.put_i32(timeout_ms as i32);
            let op = OpCode::CreateSession.as_i32();
            out.requests.push((ForwardedRequest { session_id, cxid: 0, op, body }, Vec::new()));
            return;
        }
        let session_id = request.session_id;
        if request.passwd != session_password(session_id) {
            info!(session = format!("0x{session_id:x}"), "refusing re-attach: wrong password");
            out.notices.push(Notice::Refused { origin });
            return;
        }
        self.revalidating.insert(session_id, (origin, timeout_ms));
        out.revalidate.push((session_id, timeout_ms as i32));
    }

    /// The leader's answer to a REVALIDATE.
    pub fn revalidated(&mut self, session_id: i64, valid: bool) -> Option<Notice> {
        let (origin, timeout_ms) = self.revalidating.remove(&session_id)?;
        if !valid {
            info!(session = format!("0x{session_id:x}"), "refusing re-attach: the leader says the session is gone");
            return Some(Notice::Refused { origin });
        }
        self.local.insert(session_id, timeout_ms);
        Some(Notice::Reattached { origin, session_id, timeout_ms })
    }

    /// The leader answered the oldest forwarded sync: its route waits for everything received before
    /// the answer (through `after`).
    pub fn sync_answered(&mut self, after: i64) -> Option<PendingRoute> {
        let route = self.syncs.pop_front()?;
        Some(PendingRoute { wait: Wait::Zxid(after), route })
    }

    /// The sessions to report in a PING reply: those with activity since the last one that still have
    /// a client here.
    pub fn take_touches(&mut self) -> Vec<SessionTouch> {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        touched
            .into_iter()
            .filter_map(|id| self.local.get(&id).map(|&t| SessionTouch { session_id: id, timeout_ms: t as i32 }))
            .collect()
    }
}
