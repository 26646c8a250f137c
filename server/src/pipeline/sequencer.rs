//! The sequencer: the one thread that orders writes. It owns the session tracker and the pending
//! changes, prepares each write into a txn with the next zxid, and hands batches to the applier.
//! (Once the storage engine lands, the log writer sits between it and the applier.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use fk_engine::tree::digest::DIGEST_VERSION;
use fk_engine::tree::{DataTree, EphemeralKind};
use fk_net::client::{ConnectRequest, Request, WriteOp};
use fk_net::txn::{CreateSessionTxn, ErrorTxn, Txn, TxnBody, TxnDigest, TxnHeader};
use tracing::{info, warn};

use super::Shared;
use super::messages::*;
use crate::auth::AuthIds;
use crate::prep::{PendingChanges, PrepSettings, PrepView, RequestCtx, Write, prep_write};
use crate::session::{SessionTracker, session_password};

/// Messages taken per batch: enough to amortise the tree lock and the hand-off, small enough to keep
/// latency low under a flood.
const BATCH_MAX: usize = 4096;

/// The sequencer's state; `pub` for 4lw inspection closures.
pub struct SequencerState {
    pub tracker: SessionTracker,
    /// Which connection currently holds each session.
    pub owners: HashMap<i64, Origin>,
    changes: PendingChanges,
    next_zxid: i64,
    /// The elapsed-time clock's zero (session expiry runs on it).
    clock_origin: Instant,
}

impl SequencerState {
    pub fn now_ms(&self) -> u64 {
        self.clock_origin.elapsed().as_millis() as u64
    }

    /// Wall-clock ms for the `dump` 4lw, from an elapsed-clock time.
    pub fn wall_ms_at(&self, elapsed_ms: u64) -> i64 {
        wall_ms() + elapsed_ms as i64 - self.now_ms() as i64
    }
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub struct Sequencer {
    state: SequencerState,
    shared: Arc<Shared>,
    rx: Receiver<SequencerMsg>,
    /// The next stage: the log writer.
    log: Sender<Vec<Proposal>>,
    next_container_check: Instant,
    /// Whose requests carry no identity (the reaper's).
    server_auth: AuthIds,
}

/// What one batch produced: proposals for the applier and messages straight to shards.
#[derive(Default)]
struct Output {
    proposals: Vec<Proposal>,
    direct: Vec<(usize, ShardMsg)>,
}

impl Sequencer {
    pub fn new(shared: Arc<Shared>, rx: Receiver<SequencerMsg>, log: Sender<Vec<Proposal>>) -> Sequencer {
        let clock_origin = Instant::now();
        let tick_ms = shared.config.tick_time_ms as u64;
        // The session id's time bits come from the wall clock so that restarts do not reuse ids; its top
        // byte is the server id, as ZooKeeper's initializeNextSession makes it: 1 standalone, myid in an
        // ensemble, so that members never hand out the same id.
        let server_id = shared.config.my_id.map_or(1, |id| id as u8);
        let mut tracker = SessionTracker::new(server_id, wall_ms() as u64, tick_ms);
        // Recovered sessions get a full timeout from now to reconnect, as in ZooKeeper.
        for (session_id, timeout_ms) in shared.tree.read().sessions() {
            tracker.track(session_id, timeout_ms.max(0) as u32, 0);
        }
        let next_zxid = shared.tree.read().last_processed_zxid() + 1;
        let interval = Duration::from_millis(shared.config.container_check_interval_ms);
        Sequencer {
            state: SequencerState {
                tracker,
                owners: HashMap::new(),
                changes: PendingChanges::default(),
                next_zxid,
                clock_origin,
            },
            shared,
            rx,
            log,
            next_container_check: Instant::now() + interval,
            server_auth: AuthIds { ids: Vec::new() },
        }
    }

    fn settings(&self) -> PrepSettings {
        let c = &self.shared.config;
        PrepSettings {
            extended_types: c.extended_types_enabled,
            skip_acl: c.skip_acl,
            reconfig_enabled: c.reconfig_enabled,
        }
    }

    fn next_deadline(&self) -> Instant {
        let expiry = self.state.tracker.next_expiry_ms().map(|ms| self.state.clock_origin + Duration::from_millis(ms));
        expiry.map_or(self.next_container_check, |e| e.min(self.next_container_check))
    }

    pub fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH_MAX);
        loop {
            let wait = self.next_deadline().saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(msg) => batch.push(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < BATCH_MAX {
                match self.rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            let output = self.step(&mut batch);
            if !output.proposals.is_empty() {
                self.log.send(output.proposals).expect("log thread is gone");
            }
            for (shard, msg) in output.direct {
                self.shared.shards[shard].send(msg);
            }
        }
    }

    fn step(&mut self, batch: &mut Vec<SequencerMsg>) -> Output {
        let mut out = Output::default();
        let shared = self.shared.clone();
        let tree = shared.tree.read();
        self.state.changes.prune(tree.last_processed_zxid());
        let now_ms = self.state.now_ms();
        for msg in batch.drain(..) {
            match msg {
                SequencerMsg::Write(request) => self.write(request, &tree, &mut out),
                SequencerMsg::Connect { origin, request } => self.connect(origin, request, &tree, &mut out),
                SequencerMsg::Touch(sessions) => {
                    for id in sessions {
                        self.state.tracker.touch(id, now_ms);
                    }
                }
                SequencerMsg::Disconnected { origin, session_id } => {
                    if self.state.owners.get(&session_id) == Some(&origin) {
                        self.state.owners.remove(&session_id);
                    }
                }
                SequencerMsg::Inspect(f) => f(&self.state),
            }
        }
        self.expire_sessions(now_ms, &tree, &mut out);
        if Instant::now() >= self.next_container_check {
            self.reap_containers(&tree, &mut out);
        }
        out
    }

    fn take_zxid(&mut self) -> i64 {
        let zxid = self.state.next_zxid;
        self.state.next_zxid += 1;
        zxid
    }

    /// A txn with the next zxid. It carries the tree digest as of itself (what ZooKeeper logs), except
    /// an error txn, which ZooKeeper logs without one.
    fn txn(&mut self, tree: &DataTree, session_id: i64, cxid: i32, time: i64, body: TxnBody) -> Txn {
        let header = TxnHeader { client_id: session_id, cxid, zxid: self.take_zxid(), time, txn_type: body.txn_type() };
        let digest = match body {
            TxnBody::Error(_) => None,
            _ => {
                let tree_digest = PrepView::new(tree, &mut self.state.changes).digest() as i64;
                Some(TxnDigest { version: DIGEST_VERSION, tree_digest })
            }
        };
        Txn { header, body, digest }
    }

    fn prep(&mut self, tree: &DataTree, session_id: i64, xid: i32, auth: &AuthIds, write: Write<'_>) -> Txn {
        let (time_ms, body) = self.prep_body(tree, session_id, auth, write);
        self.txn(tree, session_id, xid, time_ms, body)
    }

    /// Prepares a write as the next zxid's txn body, without taking the zxid yet.
    fn prep_body(&mut self, tree: &DataTree, session_id: i64, auth: &AuthIds, write: Write<'_>) -> (i64, TxnBody) {
        let time_ms = wall_ms();
        let ctx = RequestCtx {
            session_id,
            session_live: self.state.tracker.is_live(session_id),
            zxid: self.state.next_zxid,
            time_ms,
            auth,
            settings: self.settings(),
        };
        (time_ms, prep_write(&mut PrepView::new(tree, &mut self.state.changes), &ctx, write))
    }

    fn write(&mut self, w: WriteRequest, tree: &DataTree, out: &mut Output) {
        let WriteRequest { origin, session_id, xid, work, auth } = w;
        let request = match work {
            Sequenced::Request(request) => request,
            Sequenced::Refused(op, err) => {
                let txn = self.txn(tree, session_id, xid, wall_ms(), TxnBody::Error(ErrorTxn { err: err.as_i32() }));
                out.proposals.push(Proposal { txn: Some(txn), route: Route::Reply { origin, xid, op } });
                return;
            }
        };
        let op = request.op_code();
        let txn = match &request {
            Request::Sync(r) => {
                let route = Route::Sync { origin, xid, path: r.path.clone() };
                out.proposals.push(Proposal { txn: None, route });
                return;
            }
            Request::CloseSession => {
                let txn = self.prep(tree, session_id, xid, &auth, Write::CloseSession);
                self.state.tracker.remove(session_id);
                self.state.owners.remove(&session_id);
                let route = Route::CloseSession { requester: Some((origin, xid)), owner: None };
                out.proposals.push(Proposal { txn: Some(txn), route });
                return;
            }
            Request::Write(op @ WriteOp::Check(check)) => {
                // A check that passes changes nothing, and ZooKeeper cannot replay a check txn outside a
                // multi ("Unsupported Txn"), though it logs one: we answer it in line without logging.
                // A failing one is an error txn, as in ZooKeeper.
                let (time_ms, body) = self.prep_body(tree, session_id, &auth, Write::Op(op));
                if matches!(body, TxnBody::Check(_)) {
                    let route = Route::CheckPassed { origin, xid, path: check.path.clone() };
                    out.proposals.push(Proposal { txn: None, route });
                    return;
                }
                self.txn(tree, session_id, xid, time_ms, body)
            }
            Request::Write(op) => self.prep(tree, session_id, xid, &auth, Write::Op(op)),
            Request::Multi(ops) => self.prep(tree, session_id, xid, &auth, Write::Multi(ops)),
            Request::Reconfig(_) => self.prep(tree, session_id, xid, &auth, Write::Reconfig),
            other => unreachable!("{:?} is not sequenced", other.op_code()),
        };
        out.proposals.push(Proposal { txn: Some(txn), route: Route::Reply { origin, xid, op } });
    }

    fn negotiate_timeout(&self, requested_ms: i32) -> u32 {
        let c = &self.shared.config;
        (requested_ms.max(0) as u32).clamp(c.min_session_timeout_ms, c.max_session_timeout_ms)
    }

    /// ZooKeeper's `processConnectRequest`: refuse a client that has seen a newer zxid than ours, create a
    /// session through a txn, or re-attach to a live one after checking its password.
    fn connect(&mut self, origin: Origin, request: ConnectRequest, tree: &DataTree, out: &mut Output) {
        let last_zxid = tree.last_processed_zxid();
        if request.last_zxid_seen > last_zxid {
            info!(
                "refusing session request: client has seen zxid 0x{:x}, our last zxid is 0x{last_zxid:x}; client must try another server",
                request.last_zxid_seen
            );
            out.direct.push((origin.shard, ShardMsg::Close { conn: origin.conn, reason: "client is ahead of us" }));
            return;
        }
        let timeout_ms = self.negotiate_timeout(request.timeout_ms);
        let now_ms = self.state.now_ms();
        if request.session_id == 0 {
            let session_id = self.state.tracker.create(timeout_ms, now_ms);
            self.state.owners.insert(session_id, origin);
            let txn = self.txn(
                tree,
                session_id,
                0,
                wall_ms(),
                TxnBody::CreateSession(CreateSessionTxn { timeout_ms: timeout_ms as i32 }),
            );
            out.proposals.push(Proposal { txn: Some(txn), route: Route::Connect { origin, session_id, timeout_ms } });
            return;
        }
        let session_id = request.session_id;
        let password_ok = request.passwd == session_password(session_id);
        if !password_ok || !self.state.tracker.is_live(session_id) {
            info!(
                session = format!("0x{session_id:x}"),
                password_ok, "refusing re-attach to an invalid or expired session"
            );
            out.direct.push((origin.shard, ShardMsg::ConnectRefused { conn: origin.conn }));
            return;
        }
        self.state.tracker.track(session_id, timeout_ms, now_ms);
        if let Some(old) = self.state.owners.insert(session_id, origin).filter(|old| *old != origin) {
            out.direct
                .push((old.shard, ShardMsg::Close { conn: old.conn, reason: "session moved to a new connection" }));
        }
        out.direct.push((origin.shard, ShardMsg::Reattached { conn: origin.conn, session_id, timeout_ms }));
    }

    fn expire_sessions(&mut self, now_ms: u64, tree: &DataTree, out: &mut Output) {
        for session_id in self.state.tracker.expire_due(now_ms) {
            let timeout = self.state.tracker.timeout_ms(session_id).unwrap_or_default();
            info!("Expiring session 0x{session_id:x}, timeout of {timeout}ms exceeded");
            let auth = self.server_auth.clone();
            let txn = self.prep(tree, session_id, 0, &auth, Write::CloseSession);
            self.state.tracker.remove(session_id);
            let owner = self.state.owners.remove(&session_id);
            out.proposals.push(Proposal { txn: Some(txn), route: Route::CloseSession { requester: None, owner } });
        }
    }

    /// ZooKeeper's `ContainerManager`: empty containers that once had children, and empty TTL nodes not
    /// modified for longer than their TTL, are deleted, at most `znode.container.maxPerMinute` a minute.
    fn reap_containers(&mut self, tree: &DataTree, out: &mut Output) {
        let config = &self.shared.config;
        let interval_ms = config.container_check_interval_ms.max(1);
        self.next_container_check = Instant::now() + Duration::from_millis(interval_ms);
        let budget = ((config.container_max_per_minute as u64 * interval_ms) / 60_000).max(1) as usize;
        let now = wall_ms();
        let expired_ttl = |path: &&str| {
            tree.get(path).is_some_and(|n| {
                n.child_count() == 0
                    && matches!(tree.ephemeral_kind(n), EphemeralKind::Ttl(ttl) if now - n.stat.mtime > ttl)
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
            let txn = self.prep(tree, 0, 0, &auth, Write::DeleteContainer(&path));
            out.proposals.push(Proposal { txn: Some(txn), route: Route::None });
        }
    }
}
