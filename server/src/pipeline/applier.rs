//! The applier thread: the only writer of the tree. Drives the pure [`ApplyCore`] with what the log
//! stage and the member thread send, under the tree's write lock, and before releasing it hands every
//! shard the batch's watch triggers and that shard's replies, so no reader can see a change before its
//! watch events are queued for delivery.

use std::sync::Arc;

use crossbeam_channel::Receiver;
use fk_engine::tree::WatchTrigger;
use fk_net::client::watch::EventType;
use fk_net::txn::{Txn, TxnBody};

use super::Shared;
use super::messages::*;
use crate::apply::{Applied, ApplyCore};
use crate::ops::audit::{AuditEvent, AuditLog};

/// Txns applied under one lock hold.
const BATCH_MAX: usize = 4096;

/// Applies what `rx` delivers; `routes` is read only then, without waiting: a route is sent before its
/// txn enters the log (or its request is forwarded), so it is always there by the time the txn is
/// committed (and the applier is not woken for routes alone).
pub fn run(shared: Arc<Shared>, rx: Receiver<ApplierMsg>, routes: Receiver<Vec<PendingRoute>>) {
    let commit_point = shared.tree.read().last_processed_zxid();
    let mut core = ApplyCore::new(shared.shards.len(), commit_point);
    while let Ok(msg) = rx.recv() {
        let mut batch = Vec::new();
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            match msg {
                ApplierMsg::Committed(txns) => batch.extend(txns),
                ApplierMsg::Persisted(txns) => core.persisted(txns),
                ApplierMsg::CommitThrough(zxid) => core.commit_through(zxid),
                ApplierMsg::Wake => {}
                ApplierMsg::TreeLoaded(fuzziness) => core.tree_loaded(fuzziness),
                ApplierMsg::Reset(done) => {
                    flush(&shared, &mut core, &routes, std::mem::take(&mut batch));
                    while routes.try_recv().is_ok() {}
                    let mut tree = shared.tree.write();
                    let applied = core.reset(&mut tree);
                    deliver(&shared, applied, tree);
                    let _ = done.send(());
                }
            }
            if batch.len() < BATCH_MAX {
                next = rx.try_recv().ok();
            }
        }
        flush(&shared, &mut core, &routes, batch);
    }
}

/// Applies `batch` and whatever the commit point now covers, after taking the routes sent so far.
/// With nothing to apply, only the barriers already due are answered, under the read lock.
fn flush(shared: &Shared, core: &mut ApplyCore, routes: &Receiver<Vec<PendingRoute>>, mut batch: Vec<Txn>) {
    while let Ok(more) = routes.try_recv() {
        core.add_routes(more);
    }
    core.take_ready(&mut batch);
    if batch.is_empty() {
        let tree = shared.tree.read();
        let replies = core.release_due_barriers(&tree);
        deliver(shared, Applied { replies, ..Applied::default() }, tree);
    } else {
        let ending = shared.audit.as_ref().map(|_| ending_sessions(&batch)).unwrap_or_default();
        let mut tree = shared.tree.write();
        let applied = core.apply(&mut tree, batch);
        if let Some(log) = shared.audit.as_ref().filter(|_| !ending.is_empty()) {
            audit_removed_ephemerals(log, &ending, &applied.triggers);
        }
        deliver(shared, applied, tree);
    }
}

/// The sessions `batch` ends: (position in the batch, session id).
fn ending_sessions(batch: &[Txn]) -> Vec<(u32, i64)> {
    let ends = |(seq, txn): (usize, &Txn)| {
        matches!(txn.body, TxnBody::CloseSession { .. }).then_some((seq as u32, txn.header.client_id))
    };
    batch.iter().enumerate().filter_map(ends).collect()
}

/// Audits the ephemerals removed with their sessions: the deletions among the triggers of those txns.
fn audit_removed_ephemerals(log: &AuditLog, ending: &[(u32, i64)], triggers: &[(u32, WatchTrigger)]) {
    for (seq, trigger) in triggers.iter().filter(|(_, t)| t.event == EventType::NodeDeleted) {
        if let Some((_, session)) = ending.iter().find(|(at, _)| at == seq) {
            log.record(AuditEvent::ephemeral_removed(*session, &trigger.path));
        }
    }
}

/// Hands each shard its replies and the triggers (shared by all), then lets go of the tree and wakes
/// the shards: no reader sees the batch's changes before its events and replies are queued.
fn deliver(shared: &Shared, applied: Applied, tree: impl Sized) {
    let Applied { triggers, replies, digest_mismatches } = applied;
    for (zxid, prepared, applied) in digest_mismatches {
        shared.stats.record_digest_mismatch();
        tracing::error!("digest mismatch after zxid 0x{zxid:x}: prepared 0x{prepared:x}, applied tree 0x{applied:x}");
        debug_assert!(false, "digest mismatch after zxid 0x{zxid:x}");
    }
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
