//! The applier: the only writer of the tree. Applies each batch under the write lock, and before
//! releasing it hands every shard the batch's watch triggers and that shard's replies, so no reader can
//! see a change before its watch events are queued for delivery.

use std::sync::Arc;

use crossbeam_channel::Receiver;
use fk_engine::txn::{TxnResult, apply};
use fk_net::client::*;
use fk_net::txn::TxnBody;

use super::Shared;
use super::messages::*;

/// Proposals applied under one lock hold.
const BATCH_MAX: usize = 4096;

pub fn run(shared: Arc<Shared>, rx: Receiver<Vec<Proposal>>) {
    let shard_count = shared.shards.len();
    let mut scratch = Vec::new();
    while let Ok(mut batch) = rx.recv() {
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let mut triggers = Vec::new();
        let mut replies: Vec<Vec<(u32, ShardReply)>> = (0..shard_count).map(|_| Vec::new()).collect();
        let mut tree = shared.tree.write();
        for (seq, proposal) in batch.into_iter().enumerate() {
            let seq = seq as u32;
            let result = proposal.txn.as_ref().map(|txn| {
                let result = apply(&mut tree, txn, &mut scratch);
                triggers.extend(scratch.drain(..).map(|t| (seq, t)));
                check_digest(&tree, txn, &shared);
                result
            });
            let zxid = proposal.txn.as_ref().map_or_else(|| tree.last_processed_zxid(), |t| t.header.zxid);
            route(proposal, result, zxid, seq, &tree, &mut replies);
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
}

/// The digest prep computed must be the tree's after applying: if not, prep and apply disagree about
/// what a txn does, which is a bug (ZooKeeper logs and counts these too).
fn check_digest(tree: &fk_engine::tree::DataTree, txn: &fk_net::txn::Txn, shared: &Shared) {
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

fn route(
    proposal: Proposal,
    result: Option<TxnResult>,
    zxid: i64,
    seq: u32,
    tree: &fk_engine::tree::DataTree,
    replies: &mut [Vec<(u32, ShardReply)>],
) {
    let respond = |origin: Origin, xid, err, response, close_after| {
        (origin.shard, ShardReply::Response { conn: origin.conn, xid, zxid, err, response, close_after })
    };
    let (shard, reply) = match proposal.route {
        Route::None => return,
        Route::Reply { origin, xid, op } => {
            let txn = proposal.txn.as_ref().expect("a reply route carries a txn");
            let (err, response) = response_for(op, &txn.body, result.as_ref().expect("applied"));
            respond(origin, xid, err, response, false)
        }
        Route::CheckPassed { origin, xid, path } => {
            // Prep saw the node; nothing between then and now can have deleted it without the check
            // failing, but answer NoNode rather than panic if it did.
            match tree.get(&path) {
                Some(node) => respond(origin, xid, ErrorCode::Ok, Response::Stat(tree.client_stat(node)), false),
                None => respond(origin, xid, ErrorCode::NoNode, Response::Empty, false),
            }
        }
        Route::Sync { origin, xid, path } => {
            respond(origin, xid, ErrorCode::Ok, Response::Sync(PathRequest { path }), false)
        }
        Route::Connect { origin, session_id, timeout_ms } => {
            (origin.shard, ShardReply::Connected { conn: origin.conn, session_id, timeout_ms })
        }
        Route::CloseSession { requester, owner } => {
            if let Some(owner) = owner {
                let close = ShardReply::Close { conn: owner.conn, reason: "session expired" };
                replies[owner.shard].push((seq, close));
            }
            let Some((origin, xid)) = requester else { return };
            respond(origin, xid, ErrorCode::Ok, Response::Empty, true)
        }
    };
    replies[shard].push((seq, reply));
}

/// The reply ZooKeeper's `FinalRequestProcessor` builds for an applied write.
fn response_for(op: OpCode, body: &TxnBody, result: &TxnResult) -> (ErrorCode, Response) {
    match result {
        TxnResult::Error(code) => (*code, Response::Empty),
        TxnResult::Created { path, stat } => match op {
            OpCode::Create => (ErrorCode::Ok, Response::Create(CreateResponse { path: path.clone() })),
            _ => (ErrorCode::Ok, Response::Create2(Create2Response { path: path.clone(), stat: stat.clone() })),
        },
        TxnResult::SetData(stat) | TxnResult::SetAcl(stat) => (ErrorCode::Ok, Response::Stat(stat.clone())),
        TxnResult::Multi(results) => {
            let TxnBody::Multi(txns) = body else { unreachable!("multi result for a {} txn", body.txn_type()) };
            let results = txns.iter().zip(results).map(|(txn, result)| multi_result(txn, result)).collect();
            (ErrorCode::Ok, Response::Multi(results))
        }
        // A lone check is answered without a txn (Route::CheckPassed); Checked only occurs in a multi.
        TxnResult::Deleted | TxnResult::Checked | TxnResult::SessionCreated | TxnResult::SessionClosed => {
            (ErrorCode::Ok, Response::Empty)
        }
    }
}

fn multi_result(txn: &TxnBody, result: &TxnResult) -> MultiResult {
    match result {
        TxnResult::Created { path, stat } => match txn {
            TxnBody::Create { op: OpCode::Create, .. } => MultiResult::Create(path.clone()),
            _ => MultiResult::Create2(path.clone(), stat.clone()),
        },
        TxnResult::Deleted => MultiResult::Delete,
        TxnResult::SetData(stat) => MultiResult::SetData(stat.clone()),
        TxnResult::Checked => MultiResult::Check,
        TxnResult::Error(code) => MultiResult::Error(code.as_i32()),
        other => unreachable!("{other:?} inside a multi"),
    }
}
