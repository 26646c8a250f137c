//! The replies a route gets once what it waited for is applied: ZooKeeper's `FinalRequestProcessor`
//! for writes, syncs and checks, and the session notices.

use fk_engine::tree::DataTree;
use fk_engine::txn::TxnResult;
use fk_net::client::*;
use fk_net::txn::TxnBody;

use crate::sequencer::{Origin, Route};
use crate::watch::ConnId;

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
