//! The replies a route gets once what it waited for is applied: ZooKeeper's `FinalRequestProcessor`
//! for writes, syncs and checks, and the session notices.

use fk_engine::tree::{DataTree, WatchTrigger};
use fk_engine::txn::TxnResult;
use fk_net::client::*;
use fk_net::txn::TxnBody;

use crate::sequencer::{Origin, Route};
use crate::watch::ConnId;

/// One step of handing an applied batch to the clients.
pub enum Delivery<'a> {
    Reply(ShardReply),
    /// A txn's watch trigger: its events go to the watching connections.
    Trigger(&'a WatchTrigger),
}

/// An applied batch's replies and watch triggers (each tagged with its txn's position in the batch) in
/// the order clients must see them: a txn's watch events after the replies of the txns before it and
/// before its own reply, so that no client sees data newer than an event it has not had yet. One copy
/// for the shard and the simulator.
pub fn in_delivery_order<'a>(
    triggers: &'a [(u32, WatchTrigger)],
    replies: impl IntoIterator<Item = (u32, ShardReply)>,
    mut deliver: impl FnMut(Delivery<'a>),
) {
    let mut replies = replies.into_iter().peekable();
    for (seq, trigger) in triggers {
        while let Some((_, reply)) = replies.next_if(|(reply_seq, _)| reply_seq < seq) {
            deliver(Delivery::Reply(reply));
        }
        deliver(Delivery::Trigger(trigger));
    }
    replies.for_each(|(_, reply)| deliver(Delivery::Reply(reply)));
}

/// What a shard is told about one of its connections once what it waited for is applied.
pub enum ShardReply {
    Response {
        conn: ConnId,
        xid: i32,
        zxid: i64,
        err: ErrorCode,
        response: Response,
        close_after: bool,
    },
    Connected {
        conn: ConnId,
        session_id: i64,
        timeout_ms: u32,
    },
    Close {
        conn: ConnId,
        reason: &'static str,
    },
    /// Close the connection holding this session, if this shard has it.
    EndSession {
        session_id: i64,
    },
}

/// Replies per shard, each tagged with the position of the txn it follows in its batch so that it
/// interleaves with that batch's watch triggers.
pub type Replies = Vec<Vec<(u32, ShardReply)>>;

/// Adds the replies `route` gets to `replies`: `applied` is its txn's body and result (None for a
/// barrier, answered from `tree` as it is), `zxid` the zxid the replies carry.
pub fn route(
    route: Route,
    applied: Option<(&TxnBody, &TxnResult)>,
    zxid: i64,
    seq: u32,
    tree: &DataTree,
    replies: &mut Replies,
) {
    let respond = |origin: Origin, xid, err, response, close_after| {
        (origin.shard, ShardReply::Response { conn: origin.conn, xid, zxid, err, response, close_after })
    };
    let (shard, reply) = match route {
        Route::None => return,
        Route::LearnerSync { .. } => unreachable!("a learner's sync is answered by the leader's member thread"),
        Route::Reply { origin, xid, op } => {
            let (body, result) = applied.expect("a reply route follows its txn");
            let (err, response) = response_for(op, body, result);
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
        // A reconfig is answered with the membership it set and /zookeeper/config's stat.
        TxnResult::SetData(stat) if op == OpCode::Reconfig => {
            let TxnBody::Reconfig(txn) = body else { unreachable!("reconfig result for a {} txn", body.txn_type()) };
            let data = txn.data.clone();
            (ErrorCode::Ok, Response::GetData(GetDataResponse { data, stat: stat.clone() }))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use fk_net::client::watch::EventType;

    /// Triggers of the batch's txns 1 and 3, replies to txns 0 to 4: each trigger goes out after the
    /// replies before its txn and before its txn's reply.
    #[test]
    fn a_txns_watch_events_go_out_between_the_earlier_replies_and_its_own() {
        let trigger = |path: &str| WatchTrigger { event: EventType::NodeDataChanged, path: path.into() };
        let triggers = [(1, trigger("/a")), (3, trigger("/b"))];
        let close = |seq: u32| (seq, ShardReply::Close { conn: seq as ConnId, reason: "test" });
        let mut order = Vec::new();
        in_delivery_order(&triggers, (0..5).map(close), |delivery| {
            order.push(match delivery {
                Delivery::Reply(ShardReply::Close { conn, .. }) => format!("reply {conn}"),
                Delivery::Reply(_) => unreachable!("only closes here"),
                Delivery::Trigger(t) => format!("event {}", t.path),
            })
        });
        assert_eq!(order, ["reply 0", "event /a", "reply 1", "reply 2", "event /b", "reply 3", "reply 4"]);
    }
}
