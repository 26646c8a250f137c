//! Large generated histories: how fast the check is at simulator scale, and that a fault planted in
//! thousands of ops is still found.
//!
//! The generator decides outcomes with the checker's own [`Model`], so a clean pass here shows the
//! plumbing (log indexing, the read schedule, session and real-time sweeps) and the speed, not the
//! model's fidelity to ZooKeeper; the table in `tests` covers that.

use std::time::Instant;

use fk_net::client::{ErrorCode, OpCode};
use fk_net::txn::{CheckVersionTxn, CreateSessionTxn, CreateTxn, ErrorTxn, SetDataTxn, Txn, TxnBody, TxnHeader};

use super::model::{Effect, Model};
use super::{ViolationKind, check};
use crate::sim::history::{History, OpId, OpKind, OpResult, Outcome, SessionId, Zxid};

const SESSIONS: i64 = 8;

/// xorshift64*: a fixed sequence from a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn body_of(effect: &Effect) -> TxnBody {
    match effect {
        Effect::Create { path, data, ephemeral_owner, parent_cversion } => TxnBody::Create {
            op: OpCode::Create2,
            txn: CreateTxn {
                path: path.clone(),
                data: Some(data.clone()),
                acl: vec![],
                ephemeral: *ephemeral_owner != 0,
                parent_cversion: *parent_cversion,
            },
        },
        Effect::SetData { path, data, version } => {
            TxnBody::SetData(SetDataTxn { path: path.clone(), data: Some(data.clone()), version: *version })
        }
        Effect::Delete { path } => TxnBody::Delete { op: OpCode::Delete, path: path.clone() },
        Effect::Check { path } => TxnBody::Check(CheckVersionTxn { path: path.clone(), version: 0 }),
        Effect::Multi(subs) => TxnBody::Multi(subs.iter().map(body_of).collect()),
        other => panic!("the generator makes no {other:?}"),
    }
}

/// A failed request's txn; a failed multi as ZooKeeper logs it (the failing entry, then the rest).
fn error_body(kind: &OpKind, code: ErrorCode) -> TxnBody {
    let error = |err: ErrorCode| TxnBody::Error(ErrorTxn { err: err.as_i32() });
    match kind {
        OpKind::Multi(subs) => TxnBody::Multi(
            (0..subs.len()).map(|i| error(if i == 0 { code } else { ErrorCode::RuntimeInconsistency })).collect(),
        ),
        _ => error(code),
    }
}

fn random_kind(rng: &mut Rng) -> OpKind {
    let path = |rng: &mut Rng| match rng.below(3) {
        0 => format!("/k{}", rng.below(6)),
        _ => format!("/k{}/c{}", rng.below(6), rng.below(4)),
    };
    let data = |rng: &mut Rng| vec![b'a' + rng.below(26) as u8; rng.below(8) as usize];
    let version = |rng: &mut Rng| rng.below(4) as i32 - 1;
    match rng.below(10) {
        0 | 1 => OpKind::Create {
            path: path(rng),
            data: data(rng),
            ephemeral: rng.below(4) == 0,
            sequential: rng.below(4) == 0,
        },
        2 => OpKind::SetData { path: path(rng), data: data(rng), version: version(rng) },
        3 => OpKind::Delete { path: path(rng), version: version(rng) },
        4 => OpKind::GetData { path: path(rng) },
        5 => OpKind::Exists { path: path(rng) },
        6 => OpKind::GetChildren { path: path(rng) },
        7 => OpKind::Sync { path: "/".into() },
        8 => OpKind::Multi(vec![
            OpKind::Check { path: path(rng), version: version(rng) },
            OpKind::SetData { path: path(rng), data: data(rng), version: -1 },
        ]),
        _ => OpKind::Create { path: path(rng), data: data(rng), ephemeral: false, sequential: false },
    }
}

/// A run of `ops` requests from 8 sessions, at most one outstanding per session; 2% of the clients
/// give up on a request (committed or not, at random). Returns the history, the log, and the write
/// ops that were acknowledged.
fn generate(seed: u64, ops: usize) -> (History, Vec<Txn>, Vec<OpId>) {
    let mut rng = Rng(seed | 1);
    let mut history = History::new();
    let mut log: Vec<Txn> = Vec::new();
    let mut model = Model::new();
    let commit = |log: &mut Vec<Txn>, model: &mut Model, session: SessionId, cxid: i32, body: TxnBody| {
        let zxid = log.last().map_or(1, |t| t.header.zxid + 1);
        let header = TxnHeader { client_id: session, cxid, zxid, time: zxid * 10, txn_type: body.txn_type() };
        let txn = Txn { header, body, digest: None };
        let produced = model.apply(&txn).expect("the generator only commits what the model allows");
        log.push(txn);
        (zxid, produced)
    };
    for s in 0..SESSIONS {
        commit(&mut log, &mut model, 0x100 + s, 0, TxnBody::CreateSession(CreateSessionTxn { timeout_ms: 4000 }));
    }
    // Per session: the next xid and the outstanding request with the outcome it will get.
    let mut pending: Vec<Option<(OpId, Outcome)>> = vec![None; SESSIONS as usize];
    let mut xids = vec![1i32; SESSIONS as usize];
    let mut acked = Vec::new();
    let mut now = 0;
    while history.ops().len() < ops || pending.iter().any(Option::is_some) {
        now += 1;
        let s = rng.below(SESSIONS as u64) as usize;
        let session = 0x100 + s as i64;
        if let Some((id, outcome)) = pending[s].take() {
            if rng.below(50) == 0 {
                history.give_up(id, now);
            } else {
                if history.op(id).kind.is_write() && outcome.is_reply() {
                    acked.push(id);
                }
                history.complete(id, now, outcome);
            }
            continue;
        }
        if history.ops().len() >= ops {
            continue;
        }
        let kind = random_kind(&mut rng);
        let xid = xids[s];
        xids[s] += 1;
        let id = history.invoke(now, s, session, xid, kind.clone());
        let last = log.last().map_or(0, |t| t.header.zxid);
        let outcome = if kind.is_write() {
            let never_committed = rng.below(100) == 0;
            match model.expect(&kind, session) {
                _ if never_committed => Outcome::Unknown,
                Ok(effect) => {
                    let (zxid, result) = commit(&mut log, &mut model, session, xid, body_of(&effect));
                    Outcome::Ok { zxid, result }
                }
                Err(code) => {
                    let (zxid, _) = commit(&mut log, &mut model, session, xid, error_body(&kind, code));
                    Outcome::Failed { zxid, code }
                }
            }
        } else if kind.is_read() {
            match model.read(&kind) {
                Ok(result) => Outcome::Ok { zxid: last, result },
                Err(code) => Outcome::Failed { zxid: last, code },
            }
        } else {
            Outcome::Ok { zxid: last, result: OpResult::Synced }
        };
        pending[s] = Some((id, outcome));
    }
    (history, log, acked)
}

#[test]
fn thousands_of_ops_check_in_milliseconds() {
    let mut checking = std::time::Duration::ZERO;
    let mut checked_ops = 0;
    for seed in 1..=20 {
        let (history, log, _) = generate(seed, 3000);
        let started = Instant::now();
        let summary = check(&history, &log).unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        checking += started.elapsed();
        assert!(summary.writes_acknowledged > 500 && summary.reads_checked > 500, "seed {seed}: {summary:?}");
        assert!(summary.unknown_committed + summary.unknown_dropped > 0, "seed {seed}: {summary:?}");
        checked_ops += summary.ops;
    }
    // Printed, not asserted: a loaded machine must not fail the suite.
    eprintln!("checked {checked_ops} ops over 20 seeds in {checking:?}");
}

#[test]
fn a_write_dropped_from_a_long_log_is_found() {
    for seed in 1..=5 {
        let (history, mut log, acked) = generate(seed, 3000);
        let victim = history.op(acked[acked.len() / 2]);
        let zxid: Zxid = victim.outcome.zxid().expect("acknowledged");
        log.retain(|t| t.header.zxid != zxid);
        let v = check(&history, &log).expect_err("a lost write");
        assert_eq!(v.kind, ViolationKind::LostWrite, "seed {seed}: {v}");
        assert_eq!(v.op_ids(), vec![victim.id], "seed {seed}: {v}");
    }
}
