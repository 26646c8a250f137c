//! The ordering guarantees that need no data model: per-session FIFO replies, zxids that never go back,
//! sync, and the real-time order of writes.

use std::collections::HashMap;

use super::violation::{Violation, ViolationKind};
use crate::sim::history::{History, Op, OpKind, Outcome, SessionId, Zxid};

/// Per session, in request order: replies come in that order (ZooKeeper answers a connection's
/// requests FIFO), their zxids never decrease, and from a completed sync on, no reply is older than
/// the newest write acknowledged to anyone before the sync was sent. Returns how many syncs were checked.
pub fn check_sessions(history: &History) -> Result<usize, Violation> {
    let acked = AckedWrites::new(history);
    let mut sessions: HashMap<SessionId, Vec<&Op>> = HashMap::new();
    for op in history.ops() {
        sessions.entry(op.session_id).or_default().push(op);
    }
    let mut syncs = 0;
    for ops in sessions.values_mut() {
        // The request order is the order the client sent them in.
        ops.sort_by_key(|op| op.invoked.seq);
        syncs += check_session(ops, &acked)?;
    }
    Ok(syncs)
}

fn check_session(ops: &[&Op], acked: &AckedWrites) -> Result<usize, Violation> {
    // The earlier op whose reply (or giving up) came last so far; u64::MAX while one is pending.
    let mut latest_done: Option<(u64, &Op)> = None;
    let mut newest_seen: Option<(Zxid, &Op)> = None;
    let mut sync_floor: Option<(Zxid, &Op, &Op)> = None;
    let mut syncs = 0;
    for op in ops {
        let Some(zxid) = op.outcome.zxid() else {
            let done = op.completed.map_or(u64::MAX, |c| c.seq);
            if latest_done.is_none_or(|(seq, _)| done > seq) {
                latest_done = Some((done, op));
            }
            continue;
        };
        let reply_seq = op.completed.expect("a reply has a completion stamp").seq;
        if let Some((seq, earlier)) = latest_done
            && seq > reply_seq
        {
            let expected = format!("the reply to xid {} before the reply to xid {}", earlier.xid, op.xid);
            let seen = match earlier.completed {
                Some(_) => "the later request answered first".to_string(),
                None => "the later request answered while the earlier one never was".to_string(),
            };
            return Err(Violation::new(ViolationKind::FifoOrder, expected, seen).op(earlier).op(op));
        }
        latest_done = Some((reply_seq, op));
        if matches!(op.kind, OpKind::Sync { .. }) {
            syncs += 1;
            if let Some((floor, write)) = acked.newest_before(op.invoked.seq)
                && sync_floor.is_none_or(|(f, _, _)| floor > f)
            {
                sync_floor = Some((floor, write, op));
            }
        }
        if let Some((floor, write, sync)) = sync_floor
            && zxid < floor
        {
            let expected = format!("state at zxid {floor:#x} or later (acknowledged before the sync)");
            let seen = format!("state at zxid {zxid:#x}");
            let v = Violation::new(ViolationKind::StaleAfterSync, expected, seen);
            return Err(v.op(op).op(sync).op(write).zxid(floor).zxid(zxid));
        }
        if let Some((newest, earlier)) = newest_seen
            && zxid < newest
        {
            let expected = format!("zxid {newest:#x} or later (seen by xid {} before)", earlier.xid);
            let v = Violation::new(ViolationKind::ZxidWentBack, expected, format!("zxid {zxid:#x}"));
            return Err(v.op(op).op(earlier).zxid(newest).zxid(zxid));
        }
        newest_seen = Some((zxid, op));
    }
    Ok(syncs)
}

/// Writes acknowledged with a zxid (success or error), by when the reply arrived.
struct AckedWrites<'h> {
    /// `(reply seq, newest zxid among replies up to this one, the write that has it)`.
    prefix_newest: Vec<(u64, Zxid, &'h Op)>,
}

impl<'h> AckedWrites<'h> {
    fn new(history: &'h History) -> AckedWrites<'h> {
        let mut acked: Vec<(u64, Zxid, &Op)> = history
            .ops()
            .iter()
            .filter(|op| op.kind.is_write())
            .filter_map(|op| Some((op.completed?.seq, op.outcome.zxid()?, op)))
            .collect();
        acked.sort_by_key(|(seq, _, _)| *seq);
        let mut newest: Option<(Zxid, &Op)> = None;
        let prefix_newest = acked
            .into_iter()
            .map(|(seq, zxid, op)| {
                if newest.is_none_or(|(z, _)| zxid > z) {
                    newest = Some((zxid, op));
                }
                let (z, o) = newest.expect("set above");
                (seq, z, o)
            })
            .collect();
        AckedWrites { prefix_newest }
    }

    /// The newest zxid acknowledged before event `seq`, and its write.
    fn newest_before(&self, seq: u64) -> Option<(Zxid, &'h Op)> {
        let count = self.prefix_newest.partition_point(|(s, _, _)| *s < seq);
        let (_, zxid, op) = self.prefix_newest.get(count.checked_sub(1)?)?;
        Some((*zxid, op))
    }
}

/// Writes are linearizable in zxid order: a write acknowledged before another was invoked must have
/// the smaller zxid. `zxid_of[i]` is op i's zxid where known (acknowledged, or found in the log). A
/// write whose client gave up never counts as acknowledged: it may take effect any time later.
pub fn check_real_time(history: &History, zxid_of: &[Option<Zxid>]) -> Result<usize, Violation> {
    let writes: Vec<(&Op, Zxid)> =
        history.ops().iter().filter(|op| op.kind.is_write()).filter_map(|op| Some((op, zxid_of[op.id.0]?))).collect();
    let mut by_invoke = writes.clone();
    by_invoke.sort_by_key(|(op, _)| op.invoked.seq);
    let mut by_reply: Vec<(u64, &Op, Zxid)> = writes
        .iter()
        .filter(|(op, _)| !matches!(op.outcome, Outcome::Unknown))
        .filter_map(|(op, zxid)| Some((op.completed?.seq, *op, *zxid)))
        .collect();
    by_reply.sort_by_key(|(seq, _, _)| *seq);
    let mut replied = by_reply.iter().peekable();
    let mut newest: Option<(Zxid, &Op)> = None;
    for (op, zxid) in &by_invoke {
        while let Some((_, done, done_zxid)) = replied.next_if(|(seq, _, _)| *seq < op.invoked.seq) {
            if newest.is_none_or(|(z, _)| *done_zxid > z) {
                newest = Some((*done_zxid, done));
            }
        }
        if let Some((before, earlier)) = newest
            && before >= *zxid
        {
            let expected = format!("a zxid above {before:#x} (the write acknowledged before this one was sent)");
            let v = Violation::new(ViolationKind::RealTimeOrder, expected, format!("zxid {zxid:#x}"));
            return Err(v.op(op).op(earlier).zxid(before).zxid(*zxid));
        }
    }
    Ok(by_invoke.len())
}
