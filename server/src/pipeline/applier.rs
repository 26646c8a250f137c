//! The applier: the only writer of the tree. Applies each committed batch under the write lock, and before
//! releasing it hands every shard the batch's watch triggers and that shard's replies, so no reader can
//! see a change before its watch events are queued for delivery.
//!
//! Replies come from the route table, not from the txns: the replicated record (a committed txn) says
//! nothing about who asked for it. Each route waits here, in order, for the txn it belongs to — or, for
//! a barrier (sync, a check that passed), for the last txn proposed before it — to be applied.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use fk_engine::tree::{DataTree, WatchTrigger};
use fk_engine::txn::{TxnResult, apply};
use fk_net::txn::Txn;

use super::Shared;
use super::messages::*;
use super::replies::{Replies, route};

/// Txns applied under one lock hold.
const BATCH_MAX: usize = 4096;

struct Applier {
    shared: Arc<Shared>,
    /// Routes not yet released, in proposal order.
    routes: VecDeque<PendingRoute>,
    scratch: Vec<WatchTrigger>,
}

/// Applies what `committed` delivers; `routes` is read only then, without waiting: the sequencer sends
/// a txn's route before the txn enters the log, so it is always there by the time the txn is committed
/// (and the applier is not woken for routes alone).
pub fn run(shared: Arc<Shared>, committed: Receiver<Vec<Txn>>, routes: Receiver<Vec<PendingRoute>>) {
    let mut applier = Applier { shared, routes: VecDeque::new(), scratch: Vec::new() };
    while let Ok(mut batch) = committed.recv() {
        while batch.len() < BATCH_MAX {
            match committed.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        while let Ok(more) = routes.try_recv() {
            applier.routes.extend(more);
        }
        applier.apply(batch);
    }
}

impl Applier {
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
        while self.routes.front().is_some_and(|next| next.zxid <= zxid) {
            let pending = self.routes.pop_front().expect("front exists");
            let applied = if pending.route.is_barrier() {
                None
            } else {
                assert_eq!(pending.zxid, zxid, "the route of zxid 0x{:x} was not released with its txn", pending.zxid);
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
