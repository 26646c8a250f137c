//! The sequencer core driven by hand: inputs and a virtual clock in, proposals and notices out. No
//! threads, sockets or clocks, so every run is the same.

use std::sync::Arc;

use fk_engine::tree::{CONTAINER_OWNER, DataTree, TreeOptions};
use fk_net::client::{Acl, ConnectRequest, OpCode, Request, SetDataRequest, WriteOp, perms};
use fk_net::txn::TxnBody;

use super::*;
use crate::auth::AuthIds;
use crate::prep::PrepSettings;
use crate::session::session_password;

const TICK_MS: u64 = 2000;

fn settings() -> SequencerSettings {
    SequencerSettings {
        prep: PrepSettings { extended_types: true, ..Default::default() },
        server_id: 3,
        tick_ms: TICK_MS,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40_000,
        container_check_interval_ms: 60_000,
        container_max_per_minute: 2,
    }
}

fn at(mono_ms: u64) -> Now {
    Now { mono_ms, wall_ms: 1_800_000_000_000 + mono_ms as i64 }
}

fn origin(conn: u64) -> Origin {
    Origin { shard: 0, conn }
}

fn connect(conn: u64, session_id: i64, passwd: Vec<u8>, timeout_ms: i32) -> SequencerInput {
    let request = ConnectRequest { timeout_ms, session_id, passwd, ..Default::default() };
    SequencerInput::Connect { origin: origin(conn), request }
}

fn set_data(conn: u64, session_id: i64, xid: i32, path: &str) -> SequencerInput {
    let op = WriteOp::SetData(SetDataRequest { path: path.into(), data: Some(b"v".to_vec()), version: -1 });
    let auth = Arc::new(AuthIds::for_peer("127.0.0.1".parse().unwrap()));
    SequencerInput::Write(WriteRequest {
        origin: origin(conn),
        session_id,
        xid,
        work: Sequenced::Request(Request::Write(op)),
        auth,
    })
}

fn tree() -> DataTree {
    let mut t = DataTree::new(TreeOptions::fixed_seed(true));
    let open = [Acl::new(perms::ALL, "world", "anyone")];
    t.create_node("/a", None, &open, 0, -1, 1, 0).unwrap();
    // Two containers that once had children (cversion 2) and are empty now, and one never used.
    for (zxid, path) in [(2, "/c1"), (3, "/c2"), (4, "/c3")] {
        t.create_node(path, None, &open, CONTAINER_OWNER, -1, zxid, 0).unwrap();
    }
    for (zxid, path) in [(5, "/c1/x"), (6, "/c2/x")] {
        t.create_node(path, None, &open, 0, -1, zxid, 0).unwrap();
        t.delete_node(path, zxid + 10).unwrap();
    }
    t
}

fn zxids(out: &SequencerOutput) -> Vec<i64> {
    out.proposals.iter().filter_map(|p| p.txn.as_ref()).map(|t| t.header.zxid).collect()
}

#[test]
fn sessions_are_created_numbered_by_server_id_and_writes_follow_in_zxid_order() {
    let tree = tree();
    let last = tree.last_processed_zxid();
    let mut core = Sequencer::new(settings(), &tree, at(0));
    let out = core.step(at(10), [connect(1, 0, vec![0; 16], 100_000)], &tree);
    let [Proposal { txn: Some(txn), route: Route::Connect { session_id, timeout_ms, .. } }] = &out.proposals[..] else {
        panic!("one createSession proposal")
    };
    assert_eq!(*session_id >> 56, 3, "the server id is the top byte");
    assert_eq!(*timeout_ms, 40_000, "clamped to maxSessionTimeout");
    assert_eq!((txn.header.zxid, txn.header.time), (last + 1, at(10).wall_ms));
    assert!(matches!(txn.body, TxnBody::CreateSession(_)));
    let session = *session_id;
    let out = core.step(at(20), [set_data(1, session, 7, "/a"), set_data(1, session, 8, "/missing")], &tree);
    assert_eq!(zxids(&out), vec![last + 2, last + 3]);
    assert!(matches!(out.proposals[1].txn.as_ref().unwrap().body, TxnBody::Error(_)), "NoNode is an error txn");
}

#[test]
fn reattach_checks_the_password_and_moves_the_session() {
    let tree = tree();
    let mut core = Sequencer::new(settings(), &tree, at(0));
    let out = core.step(at(0), [connect(1, 0, vec![0; 16], 10_000)], &tree);
    let Route::Connect { session_id, .. } = out.proposals[0].route else { panic!("a session") };
    let out = core.step(at(5), [connect(2, session_id, vec![1; 16], 10_000)], &tree);
    assert_eq!(out.notices, vec![Notice::Refused { origin: origin(2) }], "wrong password");
    let out = core.step(at(6), [connect(2, session_id, session_password(session_id).to_vec(), 10_000)], &tree);
    assert_eq!(
        out.notices,
        vec![
            Notice::Close { origin: origin(1), reason: "session moved to a new connection" },
            Notice::Reattached { origin: origin(2), session_id, timeout_ms: 10_000 },
        ]
    );
    let ahead = ConnectRequest { last_zxid_seen: 1000, ..Default::default() };
    let out = core.step(at(7), [SequencerInput::Connect { origin: origin(3), request: ahead }], &tree);
    assert_eq!(out.notices, vec![Notice::Close { origin: origin(3), reason: "client is ahead of us" }]);
}

#[test]
fn an_untouched_session_expires_at_its_tick_aligned_deadline_and_a_touched_one_lives() {
    let tree = tree();
    let mut core = Sequencer::new(settings(), &tree, at(0));
    let out = core.step(at(0), [connect(1, 0, vec![0; 16], 4000), connect(2, 0, vec![0; 16], 4000)], &tree);
    let ids: Vec<i64> = out
        .proposals
        .iter()
        .map(|p| match p.route {
            Route::Connect { session_id, .. } => session_id,
            _ => unreachable!(),
        })
        .collect();
    // Expiry is rounded up to the next tick, as ZooKeeper's ExpiryQueue does.
    assert_eq!(core.next_deadline_ms(), 6000);
    assert!(core.step(at(3000), [SequencerInput::Touch(vec![ids[1]])], &tree).proposals.is_empty());
    let out = core.step(at(6000), [], &tree);
    let [Proposal { txn: Some(txn), route: Route::CloseSession { requester: None, owner: Some(owner) } }] =
        &out.proposals[..]
    else {
        panic!("one expiry")
    };
    assert_eq!((txn.header.client_id, *owner), (ids[0], origin(1)));
    assert!(core.tracker.is_live(ids[1]) && !core.tracker.is_live(ids[0]));
}

#[test]
fn the_reaper_deletes_used_empty_containers_within_its_budget() {
    let tree = tree();
    let mut core = Sequencer::new(settings(), &tree, at(0));
    assert!(core.step(at(59_999), [], &tree).proposals.is_empty(), "not before the interval");
    let out = core.step(at(60_000), [], &tree);
    let deleted: Vec<&str> = out
        .proposals
        .iter()
        .map(|p| match &p.txn.as_ref().unwrap().body {
            TxnBody::Delete { op: OpCode::DeleteContainer, path } => path.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    // Budget: 2 a minute over a 60 s interval; /c3 never had a child.
    let mut sorted = deleted.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["/c1", "/c2"]);
    assert_eq!(core.next_deadline_ms(), 120_000);
}

/// Two cores given the same inputs at the same times decide exactly the same txns.
#[test]
fn the_same_inputs_and_times_give_the_same_txns() {
    let run = || {
        let tree = tree();
        let mut core = Sequencer::new(settings(), &tree, at(0));
        let mut txns = Vec::new();
        let out = core.step(at(1), [connect(1, 0, vec![0; 16], 4000)], &tree);
        let Route::Connect { session_id, .. } = out.proposals[0].route else { unreachable!() };
        txns.extend(out.proposals.into_iter().filter_map(|p| p.txn));
        for (t, xid) in [(10, 1), (20, 2)] {
            let out = core.step(at(t), [set_data(1, session_id, xid, "/a")], &tree);
            txns.extend(out.proposals.into_iter().filter_map(|p| p.txn));
        }
        txns.extend(core.step(at(60_000), [], &tree).proposals.into_iter().filter_map(|p| p.txn));
        txns
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), 6, "session, two writes, an expiry, two reaped containers");
    assert_eq!(a, b);
}
