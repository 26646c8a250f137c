//! Checks a client [`History`] against the committed txn log: ZooKeeper's consistency guarantees.
//!
//! # What is checked
//! - **Writes are linearizable in zxid order.** Every write that got a reply (success or error: ZooKeeper
//!   3.8 logs a failed write as an error txn) is in the log under its session and xid, at the zxid its
//!   reply carried. Replaying the log through an independent [`model`] of the data tree, each write's
//!   txn is what the data model makes of the request at that point (the right error code, sequential
//!   name, version, data), and each reply agrees with the txn and the state it produced (paths, stats).
//!   A write acknowledged before another was invoked has the smaller zxid.
//! - **Writes whose outcome the client never learned** are resolved by the log: found there, they are
//!   checked like acknowledged ones (and may not precede a write acknowledged before they were sent);
//!   absent, they did not happen.
//! - **Reads are sequentially consistent.** A read's reply carries the serving member's last applied
//!   zxid, and ZooKeeper never runs a read while a write is applied (CommitProcessor drains reads before
//!   a commit), so the read must return exactly the model's state after the log's txns up to that zxid.
//!   Per session, in request order, replies arrive FIFO and their zxids never decrease (which makes a
//!   read see the session's own earlier writes), and after a completed sync no reply is older than the
//!   newest write acknowledged to anyone before the sync was sent.
//! - The log itself: strictly increasing zxids, no request applied twice, no txn the data model forbids
//!   (ephemerals go with their session's closeSession, whose txn must list exactly them).
//!
//! # Why this is as strong as a search, and linear
//! A general linearizability checker (Wing & Gong, Knossos, Porcupine) must guess the order of
//! concurrent operations, which is exponential in the worst case. Here the order is observed, not
//! guessed: ZooKeeper's zxid is a total order on writes, every reply carries its zxid, and the
//! committed log names the request behind each zxid (session id and cxid in the txn header). The only
//! candidate linearization is the zxid order, so checking it (real-time precedence, and every outcome
//! against the model at its position) decides the question that a search would: if the zxid order
//! fails, no other order is allowed, because the system itself committed to that one. The cost is one
//! replay of the log, one sort of the reads by zxid and of the writes by invocation and reply: O(n log n)
//! for n ops and txns, with tiny constants (a few thousand ops check in about a millisecond).
//!
//! # What the caller provides
//! `log` holds every committed txn in zxid order (the members' logs agree where they overlap; pass the
//! longest, not the common prefix: a member's reply may come from a txn a lagging member lacks).
//!
//! # Layout
//! - [`model`]: the independent data tree (expected effects of requests, application of txns, reads).
//! - `order`: FIFO, zxid monotonicity and sync per session; real-time order of writes.
//! - `violation`: [`Violation`], what a failing seed reports.
//! - `watches`: the one-shot watch guarantee.
//! - Tests: `tests` (a table of planted anomalies and clean histories), `generated_tests` (thousands of
//!   generated ops: speed, and a fault found among them), `fidelity_tests` (a scripted history recorded
//!   against Apache ZooKeeper 3.8 and against ferrokeeper passes against each one's own txn log: the
//!   model is held to the specification, not to our reading of it).

#[cfg(test)]
mod fidelity_tests;
#[cfg(test)]
mod generated_tests;
pub mod model;
mod order;
#[cfg(test)]
mod tests;
mod violation;
mod watches;

use std::collections::{HashMap, HashSet};

use fk_net::client::ErrorCode;
use fk_net::txn::{Txn, TxnBody};

pub use violation::{Violation, ViolationKind};

use crate::sim::history::{History, Op, OpId, OpResult, Outcome, SessionId, Zxid};
use model::{Effect, Model};

/// What a passing check covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub ops: usize,
    pub log_txns: usize,
    pub last_zxid: Zxid,
    /// Writes with a reply: success or an error code.
    pub writes_acknowledged: usize,
    /// Writes without a reply that the log shows committed.
    pub unknown_committed: usize,
    /// Writes without a reply that never happened.
    pub unknown_dropped: usize,
    pub reads_checked: usize,
    pub syncs_checked: usize,
    pub watch_events_checked: usize,
    /// Nodes in the model at the end of the log.
    pub final_nodes: usize,
}

/// Checks `history` against the committed `log`; the first broken guarantee, or what was covered.
pub fn check(history: &History, log: &[Txn]) -> Result<Summary, Violation> {
    let by_request = index_log(log)?;
    let placed = place_writes(history, log, &by_request)?;
    let mut summary = Summary {
        ops: history.ops().len(),
        log_txns: log.len(),
        last_zxid: log.last().map_or(0, |t| t.header.zxid),
        ..Summary::default()
    };
    for op in history.ops().iter().filter(|op| op.kind.is_write()) {
        match (op.outcome.is_reply(), placed.txn_of[op.id.0].is_some()) {
            (true, _) => summary.writes_acknowledged += 1,
            (false, true) => summary.unknown_committed += 1,
            (false, false) => summary.unknown_dropped += 1,
        }
    }
    let replay = replay(history, log, &placed)?;
    summary.reads_checked = replay.reads_checked;
    summary.final_nodes = replay.final_nodes;
    summary.syncs_checked = order::check_sessions(history)?;
    let zxid_of: Vec<Option<Zxid>> = placed.txn_of.iter().map(|txn| txn.map(|i| log[i].header.zxid)).collect();
    order::check_real_time(history, &zxid_of)?;
    summary.watch_events_checked = watches::check(history, log)?;
    Ok(summary)
}

/// Txns a client request caused, by `(session, cxid)`. Left out: session open and close (an expired
/// session's close carries cxid 0, which a client's request may also have) and session 0, the
/// server's own requests (ZooKeeper's container and TTL reaper sends them as session 0, cxid 0).
fn index_log(log: &[Txn]) -> Result<HashMap<(SessionId, i32), usize>, Violation> {
    let mut by_request = HashMap::with_capacity(log.len());
    for (i, txn) in log.iter().enumerate() {
        let header = &txn.header;
        if let Some(before) = i.checked_sub(1).map(|b| &log[b].header)
            && before.zxid >= header.zxid
        {
            let expected = format!("a zxid above {:#x} after it", before.zxid);
            let v = Violation::new(ViolationKind::LogOutOfOrder, expected, format!("{:#x}", header.zxid));
            return Err(v.zxid(before.zxid).zxid(header.zxid));
        }
        if header.client_id == 0 || matches!(txn.body, TxnBody::CreateSession(_) | TxnBody::CloseSession { .. }) {
            continue;
        }
        if let Some(first) = by_request.insert((header.client_id, header.cxid), i) {
            let expected = format!("one txn for session {:#x} cxid {}", header.client_id, header.cxid);
            let seen = format!("{} and {}", describe_txn(&log[first]), describe_txn(txn));
            let v = Violation::new(ViolationKind::DuplicateRequest, expected, seen);
            return Err(v.zxid(log[first].header.zxid).zxid(header.zxid));
        }
    }
    Ok(by_request)
}

fn describe_txn(txn: &Txn) -> String {
    let h = &txn.header;
    let effect = match Effect::from_txn(txn) {
        Ok(effect) => effect.to_string(),
        Err(code) => format!("error {code}"),
    };
    format!("txn {:#x} (session {:#x}, cxid {}): {effect}", h.zxid, h.client_id, h.cxid)
}

/// Which log entry each write op is, and which op each log entry is.
struct Placement {
    txn_of: Vec<Option<usize>>,
    op_of: Vec<Option<OpId>>,
}

fn place_writes(
    history: &History,
    log: &[Txn],
    by_request: &HashMap<(SessionId, i32), usize>,
) -> Result<Placement, Violation> {
    let mut placed = Placement { txn_of: vec![None; history.ops().len()], op_of: vec![None; log.len()] };
    for op in history.ops().iter().filter(|op| op.kind.is_write()) {
        let reply_zxid = op.outcome.zxid();
        let refused = matches!(op.outcome, Outcome::Failed { code, .. } if refused_unordered(code));
        match (by_request.get(&(op.session_id, op.xid)), reply_zxid) {
            (Some(&i), _) if refused => {
                let expected = "no txn: the server refused the request before ordering it";
                let v = Violation::new(ViolationKind::ReplyDisagrees, expected, describe_txn(&log[i]));
                return Err(v.op(op).zxid(log[i].header.zxid));
            }
            (None, _) if refused => {}
            (Some(&i), Some(zxid)) if log[i].header.zxid != zxid => {
                let expected = format!("the request at zxid {zxid:#x}, as its reply said");
                let v = Violation::new(ViolationKind::ZxidMismatch, expected, describe_txn(&log[i]));
                return Err(v.op(op).zxid(zxid).zxid(log[i].header.zxid));
            }
            (Some(&i), _) => {
                placed.txn_of[op.id.0] = Some(i);
                placed.op_of[i] = Some(op.id);
            }
            (None, Some(zxid)) => return Err(missing_write(op, zxid, log)),
            (None, None) => {}
        }
    }
    Ok(placed)
}

/// Codes ZooKeeper answers a write with before it reaches PrepRequestProcessor, so without a txn: a
/// throttled request skips prep (RequestThrottler), a read-only member refuses writes outright. The
/// reply's zxid is then only the member's last applied zxid.
fn refused_unordered(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::Throttled | ErrorCode::NotReadOnly)
}

/// An acknowledged write absent from the log: lost, or acknowledged with another request's zxid.
fn missing_write(op: &Op, zxid: Zxid, log: &[Txn]) -> Violation {
    let expected = format!("a txn for session {:#x} cxid {} at zxid {zxid:#x}", op.session_id, op.xid);
    match log.binary_search_by_key(&zxid, |t| t.header.zxid) {
        Ok(i) => Violation::new(ViolationKind::ZxidOfAnotherRequest, expected, describe_txn(&log[i])),
        Err(_) => Violation::new(ViolationKind::LostWrite, expected, "no txn of this request in the log"),
    }
    .op(op)
    .zxid(zxid)
}

struct Replay {
    reads_checked: usize,
    final_nodes: usize,
}

/// Replays the log through the model; each write is checked at its txn, each read at its zxid.
fn replay(history: &History, log: &[Txn], placed: &Placement) -> Result<Replay, Violation> {
    let mut reads: Vec<(Zxid, &Op)> =
        history.ops().iter().filter(|op| op.kind.is_read()).filter_map(|op| Some((op.outcome.zxid()?, op))).collect();
    reads.sort_by_key(|(zxid, op)| (*zxid, op.id));
    let mut reads = reads.into_iter().peekable();
    let mut model = Model::new();
    let closed = closed_sessions(log);
    let mut reads_checked = 0;
    for (i, txn) in log.iter().enumerate() {
        while let Some((zxid, read)) = reads.next_if(|(zxid, _)| *zxid < txn.header.zxid) {
            check_read(&model, read, zxid, &closed)?;
            reads_checked += 1;
        }
        match placed.op_of[i] {
            Some(id) => check_write(&mut model, history.op(id), txn)?,
            None => {
                model.apply(txn).map_err(|why| invalid_txn(txn, why))?;
            }
        }
    }
    let last = log.last().map_or(0, |t| t.header.zxid);
    for (zxid, read) in reads {
        if zxid > last && !is_epoch_start(zxid) {
            let expected = format!("a zxid at most {last:#x} (the end of the committed log) or an epoch's start");
            let v = Violation::new(ViolationKind::ZxidPastLog, expected, format!("{zxid:#x}"));
            return Err(v.op(read).zxid(zxid));
        }
        check_read(&model, read, zxid, &closed)?;
        reads_checked += 1;
    }
    Ok(Replay { reads_checked, final_nodes: model.node_count() })
}

/// A zxid with counter 0: a new ZooKeeper leader sets its last processed zxid to its epoch's start
/// when it takes office (Leader.lead), so its replies carry one before its first txn in the epoch.
fn is_epoch_start(zxid: Zxid) -> bool {
    zxid & 0xffff_ffff == 0
}

fn invalid_txn(txn: &Txn, why: String) -> Violation {
    let expected = "a txn the data model allows at its point in the log";
    Violation::new(ViolationKind::InvalidTxn, expected, format!("{}: {why}", describe_txn(txn))).zxid(txn.header.zxid)
}

/// A write at its txn: the txn is what the model makes of the request, the reply agrees with both.
fn check_write(model: &mut Model, op: &Op, txn: &Txn) -> Result<(), Violation> {
    let zxid = txn.header.zxid;
    let expected = model.expect(&op.kind, op.session_id);
    let logged = Effect::from_txn(txn);
    // The session's owner is not modelled: a SessionMoved error txn is taken as the server's word.
    if logged != Err(ErrorCode::SessionMoved) && logged != expected {
        let v = Violation::new(ViolationKind::WrongDecision, show_decision(&expected), show_decision(&logged));
        return Err(v.op(op).zxid(zxid));
    }
    let produced = model.apply(txn).map_err(|why| invalid_txn(txn, why).op(op))?;
    let disagrees = |expected: String, seen: String| {
        Err(Violation::new(ViolationKind::ReplyDisagrees, expected, seen).op(op).zxid(zxid))
    };
    match (&op.outcome, &logged) {
        (Outcome::Ok { result, .. }, Ok(_)) if !results_agree(result, &produced) => {
            disagrees(format!("{produced:?}"), format!("{result:?}"))
        }
        (Outcome::Ok { .. }, Err(code)) => disagrees(format!("error {code} (logged)"), "success".into()),
        (Outcome::Failed { code, .. }, Ok(_)) => disagrees("success (logged)".into(), format!("error {code}")),
        (Outcome::Failed { code, .. }, Err(logged)) if code != logged => {
            disagrees(format!("error {logged} (logged)"), format!("error {code}"))
        }
        _ => Ok(()),
    }
}

fn show_decision(decision: &Result<Effect, ErrorCode>) -> String {
    match decision {
        Ok(effect) => effect.to_string(),
        Err(code) => format!("error {code}"),
    }
}

/// A read must return the model's state after every txn up to its zxid, exactly.
fn check_read(model: &Model, op: &Op, zxid: Zxid, closed: &HashSet<SessionId>) -> Result<(), Violation> {
    let expected = model.read(&op.kind);
    let agrees = match (&op.outcome, &expected) {
        (Outcome::Ok { result, .. }, Ok(state)) => results_agree(result, state),
        (Outcome::Failed { code, .. }, Err(state)) => code == state,
        (Outcome::Failed { code, .. }, Ok(_)) => read_refused(*code, op.session_id, closed),
        _ => false,
    };
    if agrees {
        return Ok(());
    }
    let seen = match &op.outcome {
        Outcome::Ok { result, .. } => format!("{result:?}"),
        Outcome::Failed { code, .. } => format!("error {code}"),
        Outcome::Unknown => unreachable!("only reads with a reply are checked"),
    };
    let expected = format!("the state at zxid {zxid:#x}: {}", show_read(&expected));
    Err(Violation::new(ViolationKind::WrongRead, expected, seen).op(op).zxid(zxid))
}

/// Errors a read may get whatever the tree holds: ZooKeeper checks the session of every request in
/// prep (SessionExpired once its close is under way, SessionMoved when another member owns it, which
/// is not modelled), and a throttled request is answered without being run.
fn read_refused(code: ErrorCode, session: SessionId, closed: &HashSet<SessionId>) -> bool {
    match code {
        ErrorCode::SessionExpired => closed.contains(&session),
        ErrorCode::SessionMoved | ErrorCode::Throttled => true,
        _ => false,
    }
}

/// Sessions the log closes (by the client or by expiry).
fn closed_sessions(log: &[Txn]) -> HashSet<SessionId> {
    log.iter().filter(|t| matches!(t.body, TxnBody::CloseSession { .. })).map(|t| t.header.client_id).collect()
}

fn show_read(read: &Result<OpResult, ErrorCode>) -> String {
    match read {
        Ok(result) => format!("{result:?}"),
        Err(code) => format!("error {code}"),
    }
}

/// Whether a reply's result is the model's. A create's reply has a stat only for create2, a
/// getChildren's only for getChildren2; children may come in any order.
fn results_agree(seen: &OpResult, model: &OpResult) -> bool {
    match (seen, model) {
        (OpResult::Created { path, stat }, OpResult::Created { path: p, stat: s }) => {
            path == p && (stat.is_none() || stat == s)
        }
        (OpResult::Children { children, stat }, OpResult::Children { children: c, stat: s }) => {
            let mut sorted = children.clone();
            sorted.sort();
            &sorted == c && (stat.is_none() || stat == s)
        }
        (OpResult::Multi(seen), OpResult::Multi(model)) => {
            seen.len() == model.len() && seen.iter().zip(model).all(|(a, b)| results_agree(a, b))
        }
        _ => seen == model,
    }
}
