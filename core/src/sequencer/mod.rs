//! The sequencer's decisions, as a pure state machine: which zxid each write gets and the txn prep makes
//! of it, sessions created, re-attached and expired, containers and TTL nodes reaped. It takes inputs and
//! the time and returns proposals and notices; it reads no clock, channel or shared state, so the
//! pipeline's thread (`ferrokeeper::pipeline::sequencer`) and a simulation drive the same code.
//!
//! # Layout
//! - [`proposal`]: writes in, proposals out, and where their replies go.
//! - [`forwarder`]: a learner's write path: requests to the leader, replies waiting for their txns.

pub mod forwarder;
pub mod handoff;
pub mod proposal;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};

use fk_engine::tree::digest::DIGEST_VERSION;
use fk_engine::tree::{DataTree, EphemeralKind};
use fk_net::client::{ConnectRequest, ErrorCode, OpCode, Request, WriteOp};
use fk_net::quorum::packet::ForwardedRequest;
use fk_net::txn::{CreateSessionTxn, ErrorTxn, Txn, TxnBody, TxnDigest, TxnHeader};
use tracing::{info, warn};

pub use proposal::{Answerer, Origin, PendingRoute, Proposal, Route, Sequenced, Wait, WriteRequest};

use crate::auth::AuthIds;
use crate::membership::Membership;
use crate::prep::{EnsembleView, PendingChanges, PrepSettings, PrepView, RequestCtx, Write, prep_write};
use crate::session::{SessionTracker, session_password};
use crate::zab::{LinkId, epoch_start};

/// The time, as the driver read it: a monotonic clock for timeouts (sessions, reaper) and the wall clock
/// for what txns record (ZooKeeper's `time` header field, TTL ages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: i64,
}

/// The configuration the sequencer's decisions depend on.
#[derive(Debug, Clone, Copy)]
pub struct SequencerSettings {
    pub prep: PrepSettings,
    /// The session id's top byte (ZooKeeper's initializeNextSession): 1 standalone, myid in an ensemble.
    pub server_id: u8,
    pub tick_ms: u64,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
}

/// What the sequencer is given.
pub enum SequencerInput {
    /// A request that goes through the txn pipeline: writes, multi, sync, closeSession, reconfig.
    Write(WriteRequest),
    /// A ConnectRequest: create a session or re-attach to one.
    Connect { origin: Origin, request: ConnectRequest },
    /// Sessions that sent something since the shard's last report.
    Touch(Vec<i64>),
    /// A connection that had a session closed (the session lives on until it expires).
    Disconnected { origin: Origin, session_id: i64 },
    /// A client request a learner forwarded (the leader only).
    Forwarded { link: LinkId, request: ForwardedRequest, auth: AuthIds },
    /// A learner asks whether a session a client reattaches to there is alive (the leader only).
    Revalidate { link: LinkId, session_id: i64, timeout_ms: i32 },
}

/// A decision about a connection that needs no txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A re-attach succeeded.
    Reattached {
        origin: Origin,
        session_id: i64,
        timeout_ms: u32,
    },
    /// A ConnectRequest for an expired session or with a wrong password: answer it as invalid, then close.
    Refused {
        origin: Origin,
    },
    Close {
        origin: Origin,
        reason: &'static str,
    },
    /// The answer to a learner's REVALIDATE.
    Revalidated {
        link: LinkId,
        session_id: i64,
        valid: bool,
    },
}

/// What one step decided, in order.
#[derive(Default)]
pub struct SequencerOutput {
    pub proposals: Vec<Proposal>,
    pub notices: Vec<Notice>,
}

/// A write as the core handles it, whoever sent it.
struct Incoming {
    answerer: Answerer,
    session_id: i64,
    xid: i32,
    work: Sequenced,
}

impl Answerer {
    /// The route of a request's txn: a reply here, or nothing (the learner answers).
    fn reply(self, xid: i32, op: OpCode) -> Route {
        match self {
            Answerer::Local(origin) => Route::Reply { origin, xid, op },
            Answerer::Learner(_) => Route::None,
        }
    }
}

pub struct Sequencer {
    pub tracker: SessionTracker,
    /// Which connection currently holds each session.
    pub owners: HashMap<i64, Origin>,
    changes: PendingChanges,
    next_zxid: i64,
    settings: SequencerSettings,
    next_container_check_ms: u64,
    /// Whose requests carry no identity (the reaper's).
    server_auth: AuthIds,
    /// The ensemble, for reconfig requests: a leader's view (`None` standalone).
    ensemble: Option<LeaderEnsemble>,
}

/// The ensemble as a leader's sequencer sees it, for reconfig requests.
#[derive(Debug, Clone)]
pub struct LeaderEnsemble {
    /// The membership in force.
    pub current: Membership,
    /// The newest membership proposed; a reconfig is under way while it is newer than `current`.
    pub last_seen: Membership,
    /// This leader and the followers synchronised with it.
    pub synced: BTreeSet<i64>,
    pub standalone_enabled: bool,
}

impl Sequencer {
    /// Starts after `tree` (recovered): its sessions get a full timeout from `now` to reconnect, as in
    /// ZooKeeper, and zxids continue after its last.
    pub fn new(settings: SequencerSettings, tree: &DataTree, now: Now) -> Sequencer {
        // The session id's time bits come from the wall clock so that restarts do not reuse ids.
        let mut tracker = SessionTracker::new(settings.server_id, now.wall_ms as u64, settings.tick_ms);
        for (session_id, timeout_ms) in tree.sessions() {
            tracker.track(session_id, timeout_ms.max(0) as u32, now.mono_ms);
        }
        Sequencer {
            tracker,
            owners: HashMap::new(),
            changes: PendingChanges::default(),
            next_zxid: tree.last_processed_zxid() + 1,
            settings,
            next_container_check_ms: now.mono_ms + settings.container_check_interval_ms,
            server_auth: AuthIds { ids: Vec::new() },
            ensemble: None,
        }
    }

    /// A leader's ensemble: the membership in force (established, or just activated) and the members
    /// synchronised with it.
    pub fn set_ensemble(&mut self, current: Membership, synced: BTreeSet<i64>, standalone_enabled: bool) {
        let last_seen = match self.ensemble.take() {
            Some(ensemble) if ensemble.last_seen.version > current.version => ensemble.last_seen,
            _ => current.clone(),
        };
        self.ensemble = Some(LeaderEnsemble { current, last_seen, synced, standalone_enabled });
    }

    /// The members synchronised with this leader changed.
    pub fn set_synced(&mut self, synced: BTreeSet<i64>) {
        if let Some(ensemble) = &mut self.ensemble {
            ensemble.synced = synced;
        }
    }

    /// A leader's first zxid of `epoch` is next (ZooKeeper: `zk.setZxid(makeZxid(epoch, 0))`).
    pub fn start_epoch(&mut self, epoch: i64) {
        let first = epoch_start(epoch) + 1;
        assert!(first >= self.next_zxid, "epoch {epoch} starts before zxid 0x{:x}", self.next_zxid);
        self.next_zxid = first;
    }

    /// When the next step is due without any input (a session expiry or a reaper round), on the
    /// monotonic clock.
    pub fn next_deadline_ms(&self) -> u64 {
        self.tracker.next_expiry_ms().map_or(self.next_container_check_ms, |e| e.min(self.next_container_check_ms))
    }

    /// Handles `inputs` against `tree` (the last applied state; what is proposed but not yet applied is in
    /// the pending changes), then expires sessions and reaps containers that are due.
    pub fn step(
        &mut self,
        now: Now,
        inputs: impl IntoIterator<Item = SequencerInput>,
        tree: &DataTree,
    ) -> SequencerOutput {
        let mut out = SequencerOutput::default();
        self.changes.prune(tree.last_processed_zxid());
        for input in inputs {
            match input {
                SequencerInput::Write(request) => {
                    let WriteRequest { origin, session_id, xid, work, auth } = request;
                    let request = Incoming { answerer: Answerer::Local(origin), session_id, xid, work };
                    self.write(now, request, &auth, tree, &mut out)
                }
                SequencerInput::Forwarded { link, request, auth } => {
                    self.forwarded(now, link, request, &auth, tree, &mut out)
                }
                SequencerInput::Revalidate { link, session_id, timeout_ms } => {
                    let valid = self.tracker.is_live(session_id);
                    if valid {
                        self.tracker.track(session_id, timeout_ms.max(0) as u32, now.mono_ms);
                        // The session now lives on that learner: a connection of it here is stale.
                        if let Some(old) = self.owners.remove(&session_id) {
                            out.notices.push(Notice::Close { origin: old, reason: "session moved to another server" });
                        }
                    }
                    out.notices.push(Notice::Revalidated { link, session_id, valid });
                }
                SequencerInput::Connect { origin, request } => self.connect(now, origin, request, tree, &mut out),
                SequencerInput::Touch(sessions) => {
                    for id in sessions {
                        self.tracker.touch(id, now.mono_ms);
                    }
                }
                SequencerInput::Disconnected { origin, session_id } => {
                    if self.owners.get(&session_id) == Some(&origin) {
                        self.owners.remove(&session_id);
                    }
                }
            }
        }
        self.expire_sessions(now, tree, &mut out);
        if now.mono_ms >= self.next_container_check_ms {
            self.reap_containers(now, tree, &mut out);
        }
        out
    }

    fn take_zxid(&mut self) -> i64 {
        let zxid = self.next_zxid;
        self.next_zxid += 1;
        zxid
    }

    /// A txn with the next zxid. It carries the tree digest as of itself (what ZooKeeper logs), except
    /// an error txn, which ZooKeeper logs without one.
    fn txn(&mut self, tree: &DataTree, session_id: i64, cxid: i32, time: i64, body: TxnBody) -> Txn {
        let header = TxnHeader { client_id: session_id, cxid, zxid: self.take_zxid(), time, txn_type: body.txn_type() };
        let digest = match body {
            TxnBody::Error(_) => None,
            _ => {
                let tree_digest = PrepView::new(tree, &mut self.changes).digest() as i64;
                Some(TxnDigest { version: DIGEST_VERSION, tree_digest })
            }
        };
        Txn { header, body, digest }
    }

    fn prep(&mut self, now: Now, tree: &DataTree, session_id: i64, xid: i32, auth: &AuthIds, write: Write<'_>) -> Txn {
        let body = self.prep_body(now, tree, session_id, auth, write);
        self.txn(tree, session_id, xid, now.wall_ms, body)
    }

    /// Prepares a write as the next zxid's txn body, without taking the zxid yet.
    fn prep_body(&mut self, now: Now, tree: &DataTree, session_id: i64, auth: &AuthIds, write: Write<'_>) -> TxnBody {
        let ctx = RequestCtx {
            session_id,
            session_live: self.tracker.is_live(session_id),
            zxid: self.next_zxid,
            time_ms: now.wall_ms,
            auth,
            settings: self.settings.prep,
            ensemble: self.ensemble.as_ref().map(|e| EnsembleView {
                current: &e.current,
                last_seen: &e.last_seen,
                synced: &e.synced,
                standalone_enabled: e.standalone_enabled,
            }),
        };
        let body = prep_write(&mut PrepView::new(tree, &mut self.changes), &ctx, write);
        if let (TxnBody::Reconfig(txn), Some(ensemble)) = (&body, &mut self.ensemble) {
            let text = String::from_utf8_lossy(txn.data.as_deref().unwrap_or_default());
            ensemble.last_seen = Membership::parse(&text).expect("prep writes memberships it can read");
        }
        body
    }

    fn write(&mut self, now: Now, w: Incoming, auth: &AuthIds, tree: &DataTree, out: &mut SequencerOutput) {
        let Incoming { answerer, session_id, xid, work } = w;
        let request = match work {
            Sequenced::Request(request) => request,
            Sequenced::Refused(op, err) => {
                let body = TxnBody::Error(ErrorTxn { err: err.as_i32() });
                let txn = self.txn(tree, session_id, xid, now.wall_ms, body);
                let route = answerer.reply(xid, op);
                out.proposals.push(Proposal { txn: Some(txn), route });
                return;
            }
        };
        let op = request.op_code();
        let txn = match &request {
            Request::Sync(r) => {
                let route = match answerer {
                    Answerer::Local(origin) => Route::Sync { origin, xid, path: r.path.clone() },
                    Answerer::Learner(link) => Route::LearnerSync { link },
                };
                out.proposals.push(Proposal { txn: None, route });
                return;
            }
            Request::CloseSession => {
                let txn = self.prep(now, tree, session_id, xid, auth, Write::CloseSession);
                self.tracker.remove(session_id);
                let owner = self.owners.remove(&session_id);
                let route = match answerer {
                    Answerer::Local(origin) => Route::CloseSession { requester: Some((origin, xid)), owner: None },
                    Answerer::Learner(_) => Route::CloseSession { requester: None, owner },
                };
                out.proposals.push(Proposal { txn: Some(txn), route });
                return;
            }
            Request::Write(op @ WriteOp::Check(check)) => {
                // A check that passes changes nothing, and ZooKeeper cannot replay a check txn outside a
                // multi ("Unsupported Txn"), though it logs one: we answer it in line without logging.
                // A failing one is an error txn, as in ZooKeeper. A learner's check is logged as
                // ZooKeeper logs it: the learner answers it when the txn comes back.
                let body = self.prep_body(now, tree, session_id, auth, Write::Op(op));
                if let (TxnBody::Check(_), Answerer::Local(origin)) = (&body, answerer) {
                    let route = Route::CheckPassed { origin, xid, path: check.path.clone() };
                    out.proposals.push(Proposal { txn: None, route });
                    return;
                }
                self.txn(tree, session_id, xid, now.wall_ms, body)
            }
            Request::Write(op) => self.prep(now, tree, session_id, xid, auth, Write::Op(op)),
            Request::Multi(ops) => self.prep(now, tree, session_id, xid, auth, Write::Multi(ops)),
            Request::Reconfig(r) => self.prep(now, tree, session_id, xid, auth, Write::Reconfig(r)),
            other => unreachable!("{:?} is not sequenced", other.op_code()),
        };
        out.proposals.push(Proposal { txn: Some(txn), route: answerer.reply(xid, op) });
    }

    /// A request a learner forwarded: its session's creation or end, or a client request in the body
    /// the client sent (ZooKeeper's `Request` from a `LearnerHandler`).
    fn forwarded(
        &mut self,
        now: Now,
        link: LinkId,
        request: ForwardedRequest,
        auth: &AuthIds,
        tree: &DataTree,
        out: &mut SequencerOutput,
    ) {
        let ForwardedRequest { session_id, cxid, op, body } = request;
        if op == OpCode::CreateSession.as_i32() {
            // The learner made the id and negotiated the timeout; the session is tracked here from now.
            let timeout_ms = fk_net::jute::JuteReader::new(&body).read_i32().unwrap_or(0).max(0) as u32;
            self.tracker.track(session_id, timeout_ms, now.mono_ms);
            let body = TxnBody::CreateSession(CreateSessionTxn { timeout_ms: timeout_ms as i32 });
            let txn = self.txn(tree, session_id, cxid, now.wall_ms, body);
            out.proposals.push(Proposal { txn: Some(txn), route: Route::None });
            return;
        }
        let work = match Request::decode(op, &body) {
            Ok(Request::DeleteContainer(_)) => Sequenced::Refused(OpCode::DeleteContainer, ErrorCode::BadArguments),
            Ok(
                request @ (Request::Write(_)
                | Request::Multi(_)
                | Request::Sync(_)
                | Request::CloseSession
                | Request::Reconfig(_)),
            ) => Sequenced::Request(request),
            Ok(other) => {
                warn!(op, "a learner forwarded a {:?}, which is not a write; refusing it", other.op_code());
                Sequenced::Refused(other.op_code(), ErrorCode::BadArguments)
            }
            Err(e) => {
                warn!(op, "a learner forwarded an undecodable request: {e:?}");
                let code = OpCode::from_i32(op).unwrap_or(OpCode::Error);
                Sequenced::Refused(code, ErrorCode::MarshallingError)
            }
        };
        let request = Incoming { answerer: Answerer::Learner(link), session_id, xid: cxid, work };
        self.write(now, request, auth, tree, out);
    }

    /// ZooKeeper's `processConnectRequest`: refuse a client that has seen a newer zxid than ours, create a
    /// session through a txn, or re-attach to a live one after checking its password.
    fn connect(
        &mut self,
        now: Now,
        origin: Origin,
        request: ConnectRequest,
        tree: &DataTree,
        out: &mut SequencerOutput,
    ) {
        let Some(timeout_ms) = admit(origin, &request, tree.last_processed_zxid(), &self.settings, &mut out.notices)
        else {
            return;
        };
        if request.session_id == 0 {
            let session_id = self.tracker.create(timeout_ms, now.mono_ms);
            self.owners.insert(session_id, origin);
            let body = TxnBody::CreateSession(CreateSessionTxn { timeout_ms: timeout_ms as i32 });
            let txn = self.txn(tree, session_id, 0, now.wall_ms, body);
            out.proposals.push(Proposal { txn: Some(txn), route: Route::Connect { origin, session_id, timeout_ms } });
            return;
        }
        let session_id = request.session_id;
        let password_ok = request.passwd == session_password(session_id);
        if !password_ok || !self.tracker.is_live(session_id) {
            info!(
                session = format!("0x{session_id:x}"),
                password_ok, "refusing re-attach to an invalid or expired session"
            );
            out.notices.push(Notice::Refused { origin });
            return;
        }
        self.tracker.track(session_id, timeout_ms, now.mono_ms);
        if let Some(old) = self.owners.insert(session_id, origin).filter(|old| *old != origin) {
            out.notices.push(Notice::Close { origin: old, reason: "session moved to a new connection" });
        }
        out.notices.push(Notice::Reattached { origin, session_id, timeout_ms });
    }

    fn expire_sessions(&mut self, now: Now, tree: &DataTree, out: &mut SequencerOutput) {
        for session_id in self.tracker.expire_due(now.mono_ms) {
            let timeout = self.tracker.timeout_ms(session_id).unwrap_or_default();
            info!("Expiring session 0x{session_id:x}, timeout of {timeout}ms exceeded");
            let auth = self.server_auth.clone();
            let txn = self.prep(now, tree, session_id, 0, &auth, Write::CloseSession);
            self.tracker.remove(session_id);
            let owner = self.owners.remove(&session_id);
            out.proposals.push(Proposal { txn: Some(txn), route: Route::CloseSession { requester: None, owner } });
        }
    }

    /// ZooKeeper's `ContainerManager`: empty containers that once had children, and empty TTL nodes not
    /// modified for longer than their TTL, are deleted, at most `znode.container.maxPerMinute` a minute.
    fn reap_containers(&mut self, now: Now, tree: &DataTree, out: &mut SequencerOutput) {
        let interval_ms = self.settings.container_check_interval_ms.max(1);
        self.next_container_check_ms = now.mono_ms + interval_ms;
        let budget = ((self.settings.container_max_per_minute as u64 * interval_ms) / 60_000).max(1) as usize;
        let expired_ttl = |path: &&str| {
            tree.get(path).is_some_and(|n| {
                n.child_count() == 0
                    && matches!(tree.ephemeral_kind(n), EphemeralKind::Ttl(ttl) if now.wall_ms - n.stat.mtime > ttl)
            })
        };
        let unused_container =
            |path: &&str| tree.get(path).is_some_and(|n| n.child_count() == 0 && n.stat.cversion > 0);
        let mut candidates: Vec<String> = tree.containers().filter(unused_container).map(str::to_owned).collect();
        candidates.extend(tree.ttl_nodes().filter(expired_ttl).map(str::to_owned));
        if candidates.len() > budget {
            warn!(
                candidates = candidates.len(),
                budget, "container reaper is rate limited (znode.container.maxPerMinute)"
            );
            candidates.truncate(budget);
        }
        let auth = self.server_auth.clone();
        for path in candidates {
            let txn = self.prep(now, tree, 0, 0, &auth, Write::DeleteContainer(&path));
            out.proposals.push(Proposal { txn: Some(txn), route: Route::None });
        }
    }
}

/// The session timeout a client gets: what it asked for, within the server's bounds.
pub fn negotiate_timeout(requested_ms: i32, min_ms: u32, max_ms: u32) -> u32 {
    (requested_ms.max(0) as u32).clamp(min_ms, max_ms)
}

/// ZooKeeper's first checks of a ConnectRequest, on a leader as on a learner: a client that has seen a
/// newer zxid than this server has is refused (its connection closed: it must try another server);
/// otherwise, the session timeout it gets.
fn admit(
    origin: Origin,
    request: &ConnectRequest,
    last_zxid: i64,
    settings: &SequencerSettings,
    notices: &mut Vec<Notice>,
) -> Option<u32> {
    if request.last_zxid_seen > last_zxid {
        info!(
            "refusing session request: client has seen zxid 0x{:x}, our last zxid is 0x{last_zxid:x}; client must try another server",
            request.last_zxid_seen
        );
        notices.push(Notice::Close { origin, reason: "client is ahead of us" });
        return None;
    }
    Some(negotiate_timeout(request.timeout_ms, settings.min_session_timeout_ms, settings.max_session_timeout_ms))
}
