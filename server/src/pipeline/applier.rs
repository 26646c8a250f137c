//! The applier: the only writer of the tree. Applies each committed batch under the write lock, and before
//! releasing it hands every shard the batch's watch triggers and that shard's replies, so no reader can
//! see a change before its watch events are queued for delivery.
//!
//! Replies come from the route table, not from the txns: the replicated record (a committed txn) says
//! nothing about who asked for it. Each route waits here, in order, for the txn it belongs to — or, for
//! a barrier (sync, a check that passed), for the last txn proposed before it — to be applied. A
//! learner's routes wait for their request's (session, xid) instead: it learns the zxid only when the
//! txn comes back committed.
//!
//! In an ensemble, txns arrive durable but not yet committed, and the commit point separately (a quorum
//! may have them before this member's own log does); a txn is applied once both are true.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use fk_engine::tree::{DataTree, WatchTrigger};
use fk_engine::txn::{TxnResult, apply};
use fk_net::txn::{Txn, TxnBody};

use super::Shared;
use super::messages::*;
use super::replies::{Replies, route};

/// Txns applied under one lock hold.
const BATCH_MAX: usize = 4096;

struct Applier {
    shared: Arc<Shared>,
    /// Routes not yet released, in proposal order.
    routes: VecDeque<PendingRoute>,
    /// A learner's routes, by the request they answer.
    by_request: HashMap<(i64, i32), Route>,
    /// Durable txns waiting for the commit point (ensembles).
    uncommitted: VecDeque<Txn>,
    commit_point: i64,
    scratch: Vec<WatchTrigger>,
}

/// Applies what `rx` delivers; `routes` is read only then, without waiting: a route is sent before its
/// txn enters the log (or its request is forwarded), so it is always there by the time the txn is
/// committed (and the applier is not woken for routes alone).
pub fn run(shared: Arc<Shared>, rx: Receiver<ApplierMsg>, routes: Receiver<Vec<PendingRoute>>) {
    let commit_point = shared.tree.read().last_processed_zxid();
    let mut applier = Applier {
        shared,
        routes: VecDeque::new(),
        by_request: HashMap::new(),
        uncommitted: VecDeque::new(),
        commit_point,
        scratch: Vec::new(),
    };
    while let Ok(msg) = rx.recv() {
        let mut batch = Vec::new();
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            match msg {
                ApplierMsg::Committed(txns) => batch.extend(txns),
                ApplierMsg::Persisted(txns) => applier.uncommitted.extend(txns),
                ApplierMsg::CommitThrough(zxid) => applier.commit_point = applier.commit_point.max(zxid),
                ApplierMsg::Wake => {}
                ApplierMsg::Reset(done) => {
                    applier.flush(&routes, std::mem::take(&mut batch));
                    applier.reset(&routes);
                    let _ = done.send(());
                }
            }
            if batch.len() < BATCH_MAX {
                next = rx.try_recv().ok();
            }
        }
        applier.flush(&routes, batch);
    }
}

impl Applier {
    /// Applies `batch` and whatever the commit point now covers.
    fn flush(&mut self, routes: &Receiver<Vec<PendingRoute>>, mut batch: Vec<Txn>) {
        let ready = self.uncommitted.iter().take_while(|t| t.header.zxid <= self.commit_point).count();
        batch.extend(self.uncommitted.drain(..ready));
        while let Ok(more) = routes.try_recv() {
            for pending in more {
                match pending.wait {
                    Wait::Request { session_id, cxid } => {
                        self.by_request.insert((session_id, cxid), pending.route);
                    }
                    Wait::Zxid(_) => self.routes.push_back(pending),
                }
            }
        }
        if batch.is_empty() {
            self.release_due_barriers();
            return;
        }
        self.apply(batch);
    }

    /// Barriers whose txns were all applied before they arrived (a learner's sync answered by the
    /// leader after its txns came back) are answered now rather than with the next txn.
    fn release_due_barriers(&mut self) {
        let shared = self.shared.clone();
        let tree = shared.tree.read();
        let applied = tree.last_processed_zxid();
        let mut replies: Replies = (0..shared.shards.len()).map(|_| Vec::new()).collect();
        while let Some(PendingRoute { wait: Wait::Zxid(waits_for), route }) = self.routes.front()
            && *waits_for <= applied
            && route.is_barrier()
        {
            let pending = self.routes.pop_front().expect("front exists");
            super::replies::route(pending.route, None, applied, 0, &tree, &mut replies);
        }
        deliver(&shared, Vec::new(), replies, tree);
    }

    /// A role ended: nobody waits any more (their connections are closed), and what was logged but not
    /// yet known to be committed is applied, so that the tree holds exactly the log (see
    /// [`ApplierMsg::Reset`]).
    fn reset(&mut self, routes: &Receiver<Vec<PendingRoute>>) {
        while routes.try_recv().is_ok() {}
        self.routes.clear();
        self.by_request.clear();
        let logged: Vec<Txn> = self.uncommitted.drain(..).collect();
        if !logged.is_empty() {
            self.apply(logged);
        }
        self.commit_point = self.shared.tree.read().last_processed_zxid();
    }

    fn apply(&mut self, batch: Vec<Txn>) {
        let mut triggers = Vec::new();
        let mut replies: Replies = (0..self.shared.shards.len()).map(|_| Vec::new()).collect();
        let shared = self.shared.clone();
        let mut tree = shared.tree.write();
        for (seq, txn) in batch.iter().enumerate() {
            let seq = seq as u32;
            let result = apply(&mut tree, txn, &mut self.scratch);
            triggers.extend(self.scratch.drain(..).map(|t| (seq, t)));
            check_digest(&tree, txn, &shared);
            self.release(&tree, txn, &result, seq, &mut replies);
        }
        deliver(&shared, triggers, replies, tree);
    }

    /// Releases the routes at the head of the table that waited for `txn` (just applied, with its
    /// result): its own route and the barriers proposed after it.
    fn release(&mut self, tree: &DataTree, txn: &Txn, result: &TxnResult, seq: u32, replies: &mut Replies) {
        let zxid = txn.header.zxid;
        let mut answered = false;
        if let Some(own) = self.by_request.remove(&(txn.header.client_id, txn.header.cxid)) {
            answered = true;
            route(own, Some((&txn.body, result)), zxid, seq, tree, replies);
        }
        if let Some(PendingRoute { wait: Wait::Zxid(waits_for), route }) = self.routes.front() {
            answered |= *waits_for == zxid && !route.is_barrier();
        }
        // A session ended with nobody here waiting for it (expired by the leader, or closed through
        // another member): whichever shard holds a connection of it closes that.
        if !answered && matches!(txn.body, TxnBody::CloseSession { .. }) {
            for shard in replies.iter_mut() {
                shard.push((seq, ShardReply::EndSession { session_id: txn.header.client_id }));
            }
        }
        while let Some(PendingRoute { wait: Wait::Zxid(waits_for), .. }) = self.routes.front()
            && *waits_for <= zxid
        {
            let waits_for = *waits_for;
            let pending = self.routes.pop_front().expect("front exists");
            let applied = if pending.route.is_barrier() {
                None
            } else {
                assert_eq!(waits_for, zxid, "the route of zxid 0x{waits_for:x} was not released with its txn");
                Some((&txn.body, result))
            };
            route(pending.route, applied, zxid, seq, tree, replies);
        }
    }
}

/// Hands each shard its replies and the triggers (shared by all), then lets go of the tree and wakes
/// the shards: no reader sees the batch's changes before its events and replies are queued.
fn deliver(shared: &Shared, triggers: Vec<(u32, WatchTrigger)>, replies: Replies, tree: impl Sized) {
    let triggers = Arc::new(triggers);
    let mut woken = Vec::new();
    for (shard, replies) in replies.into_iter().enumerate() {
        if replies.is_empty() && triggers.is_empty() {
            continue;
        }
        shared.shards[shard].send_quietly(ShardMsg::Applied(AppliedBatch { triggers: triggers.clone(), replies }));
        woken.push(shard);
    }
    drop(tree);
    for shard in woken {
        shared.shards[shard].wake();
    }
}

/// The digest prep computed must be the tree's after applying: if not, prep and apply disagree about
/// what a txn does, which is a bug (ZooKeeper logs and counts these too).
fn check_digest(tree: &DataTree, txn: &Txn, shared: &Shared) {
    if let Some(logged) = &txn.digest
        && logged.tree_digest as u64 != tree.digest()
    {
        shared.stats.record_digest_mismatch();
        tracing::error!(
            "digest mismatch after zxid 0x{:x}: prepared 0x{:x}, applied tree 0x{:x}",
            txn.header.zxid,
            logged.tree_digest,
            tree.digest()
        );
        debug_assert!(false, "digest mismatch after zxid 0x{:x}", txn.header.zxid);
    }
}
