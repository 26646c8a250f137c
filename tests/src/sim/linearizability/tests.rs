//! Planted anomalies must be caught with the right kind; clean histories must pass.

use fk_net::client::watch::EventType;
use fk_net::client::{ErrorCode, OpCode, Stat};
use fk_net::txn::{CreateContainerTxn, CreateSessionTxn, CreateTxn, ErrorTxn, SetDataTxn, Txn, TxnBody, TxnHeader};

use super::{Summary, ViolationKind, check};
use crate::sim::history::{History, OpId, OpKind, OpResult, Outcome, SessionId, WatchKind, Zxid};

const A: SessionId = 0xa;
const B: SessionId = 0xb;

/// A history and its log, built in the order things happen.
struct Fixture {
    history: History,
    log: Vec<Txn>,
    now: u64,
}

impl Fixture {
    /// Sessions A and B open at zxids 1 and 2.
    fn new() -> Fixture {
        let mut f = Fixture { history: History::new(), log: Vec::new(), now: 0 };
        for session in [A, B] {
            f.commit(session, 0, TxnBody::CreateSession(CreateSessionTxn { timeout_ms: 10_000 }));
        }
        f
    }

    fn next_zxid(&self) -> Zxid {
        self.log.last().map_or(1, |t| t.header.zxid + 1)
    }

    fn commit(&mut self, session: SessionId, cxid: i32, body: TxnBody) -> Zxid {
        let zxid = self.next_zxid();
        self.commit_at(zxid, session, cxid, body);
        zxid
    }

    fn commit_at(&mut self, zxid: Zxid, session: SessionId, cxid: i32, body: TxnBody) {
        let header = TxnHeader { client_id: session, cxid, zxid, time: 0, txn_type: body.txn_type() };
        self.log.push(Txn { header, body, digest: None });
    }

    fn invoke(&mut self, session: SessionId, xid: i32, kind: OpKind) -> OpId {
        self.now += 1;
        self.history.invoke(self.now, session as usize, session, xid, kind)
    }

    fn reply(&mut self, id: OpId, outcome: Outcome) {
        self.now += 1;
        self.history.complete(id, self.now, outcome);
    }

    fn ok(&mut self, id: OpId, zxid: Zxid, result: OpResult) {
        self.reply(id, Outcome::Ok { zxid, result });
    }

    fn fail(&mut self, id: OpId, zxid: Zxid, code: ErrorCode) {
        self.reply(id, Outcome::Failed { zxid, code });
    }

    /// Invoked, committed as `body`, acknowledged with `result(zxid)`.
    fn write(
        &mut self,
        s: SessionId,
        xid: i32,
        kind: OpKind,
        body: TxnBody,
        result: impl Fn(Zxid) -> OpResult,
    ) -> Zxid {
        let id = self.invoke(s, xid, kind);
        let zxid = self.commit(s, xid, body);
        self.ok(id, zxid, result(zxid));
        zxid
    }

    /// Invoked, committed as an error txn, answered with the error.
    fn failed_write(&mut self, s: SessionId, xid: i32, kind: OpKind, code: ErrorCode) -> Zxid {
        let id = self.invoke(s, xid, kind);
        let zxid = self.commit(s, xid, error(code));
        self.fail(id, zxid, code);
        zxid
    }

    /// A read answered at `zxid`.
    fn read(&mut self, s: SessionId, xid: i32, kind: OpKind, zxid: Zxid, answer: Result<OpResult, ErrorCode>) -> OpId {
        let id = self.invoke(s, xid, kind);
        match answer {
            Ok(result) => self.ok(id, zxid, result),
            Err(code) => self.fail(id, zxid, code),
        }
        id
    }

    fn event(&mut self, s: SessionId, path: &str, event: EventType) {
        self.now += 1;
        self.history.watch_event(self.now, s, path, event.as_i32());
    }

    fn check(&self) -> Result<Summary, super::Violation> {
        check(&self.history, &self.log)
    }
}

fn create_body(path: &str, data: &[u8], ephemeral: bool, parent_cversion: i32) -> TxnBody {
    let txn = CreateTxn { path: path.into(), data: Some(data.to_vec()), acl: vec![], ephemeral, parent_cversion };
    TxnBody::Create { op: OpCode::Create, txn }
}

fn set_body(path: &str, data: &[u8], version: i32) -> TxnBody {
    TxnBody::SetData(SetDataTxn { path: path.into(), data: Some(data.to_vec()), version })
}

fn delete_body(path: &str) -> TxnBody {
    TxnBody::Delete { op: OpCode::Delete, path: path.into() }
}

fn error(code: ErrorCode) -> TxnBody {
    TxnBody::Error(ErrorTxn { err: code.as_i32() })
}

fn close_body(paths: &[&str]) -> TxnBody {
    TxnBody::CloseSession { paths_to_delete: Some(paths.iter().map(|p| p.to_string()).collect()) }
}

fn create(path: &str, data: &[u8]) -> OpKind {
    OpKind::Create { path: path.into(), data: data.to_vec(), ephemeral: false, sequential: false }
}

fn set(path: &str, data: &[u8], version: i32) -> OpKind {
    OpKind::SetData { path: path.into(), data: data.to_vec(), version }
}

fn get(path: &str) -> OpKind {
    OpKind::GetData { path: path.into() }
}

fn created(path: &str) -> impl Fn(Zxid) -> OpResult {
    let path = path.to_string();
    move |_| OpResult::Created { path: path.clone(), stat: None }
}

/// The stat of a childless node that was created at `czxid` and last written at `mzxid`.
fn leaf(czxid: Zxid, mzxid: Zxid, version: i32, data_length: i32, owner: SessionId) -> Stat {
    Stat { czxid, mzxid, pzxid: czxid, version, data_length, ephemeral_owner: owner, ..Stat::default() }
}

/// Creates, a correct BadVersion, an ephemeral sequential node, a sync, a multi that succeeds and one
/// that fails, a session close taking its ephemeral, a delete, and reads between them.
fn clean_mixed() -> Fixture {
    let mut f = Fixture::new();
    let app = f.write(A, 1, create("/app", b"v0"), create_body("/app", b"v0", false, 1), created("/app"));
    let v1 =
        f.write(A, 2, set("/app", b"v1", 0), set_body("/app", b"v1", 1), |z| OpResult::Stat(leaf(app, z, 1, 2, 0)));
    let lock = OpKind::Create { path: "/app/lock-".into(), data: vec![], ephemeral: true, sequential: true };
    let lock_path = "/app/lock-0000000000";
    let body = create_body(lock_path, b"", true, 1);
    f.write(B, 1, lock, body, |z| OpResult::Created { path: lock_path.into(), stat: Some(leaf(z, z, 0, 0, B)) });
    f.failed_write(B, 2, set("/app", b"no", 5), ErrorCode::BadVersion);
    let now = f.next_zxid() - 1;
    let children = OpResult::Children { children: vec!["lock-0000000000".into()], stat: None };
    f.read(A, 3, OpKind::GetChildren { path: "/app".into() }, now, Ok(children));
    f.read(A, 4, OpKind::Sync { path: "/".into() }, now, Ok(OpResult::Synced));
    let multi = OpKind::Multi(vec![create("/app/m", b"x"), set("/app/m", b"y", 0)]);
    let body = TxnBody::Multi(vec![create_body("/app/m", b"x", false, 2), set_body("/app/m", b"y", 1)]);
    f.write(A, 5, multi, body, |z| {
        OpResult::Multi(vec![
            OpResult::Created { path: "/app/m".into(), stat: None },
            OpResult::Stat(leaf(z, z, 1, 1, 0)),
        ])
    });
    let closed = f.commit(B, 3, close_body(&[lock_path]));
    // Two children created, one still there: a client sees cversion 2 * 2 - 1 (ZooKeeper's copyStat).
    let app_stat = Stat { cversion: 3, num_children: 1, pzxid: closed, ..leaf(app, v1, 1, 2, 0) };
    f.read(A, 6, get("/app"), closed, Ok(OpResult::Data { data: b"v1".to_vec(), stat: app_stat }));
    f.read(A, 7, OpKind::Exists { path: lock_path.into() }, closed, Err(ErrorCode::NoNode));
    let delete = OpKind::Delete { path: "/app/m".into(), version: -1 };
    f.write(A, 8, delete, delete_body("/app/m"), |_| OpResult::Empty);
    let failing = OpKind::Multi(vec![OpKind::Check { path: "/app".into(), version: 7 }, create("/app/n", b"")]);
    let id = f.invoke(A, 9, failing);
    let body = TxnBody::Multi(vec![error(ErrorCode::BadVersion), error(ErrorCode::RuntimeInconsistency)]);
    let zxid = f.commit(A, 9, body);
    f.fail(id, zxid, ErrorCode::BadVersion);
    f
}

/// A write whose client gave up, and whether the log has it.
fn unknown_write(committed: bool) -> Fixture {
    let mut f = Fixture::new();
    let id = f.invoke(A, 1, create("/u", b""));
    f.now += 1;
    f.history.give_up(id, f.now);
    if committed {
        f.commit(A, 1, create_body("/u", b"", false, 1));
        f.read(B, 1, OpKind::Exists { path: "/u".into() }, 3, Ok(OpResult::Stat(leaf(3, 3, 0, 0, 0))));
    } else {
        f.read(B, 1, OpKind::Exists { path: "/u".into() }, 2, Err(ErrorCode::NoNode));
    }
    f
}

/// Two overlapping writes committed in the opposite order of their invocations: fine.
fn concurrent_writes() -> Fixture {
    let mut f = Fixture::new();
    let first = f.invoke(A, 1, create("/a", b""));
    let second = f.invoke(B, 1, create("/b", b""));
    let b = f.commit(B, 1, create_body("/b", b"", false, 1));
    let a = f.commit(A, 1, create_body("/a", b"", false, 2));
    f.ok(second, b, OpResult::Created { path: "/b".into(), stat: None });
    f.ok(first, a, OpResult::Created { path: "/a".into(), stat: None });
    f
}

/// A write refused before ordering (throttled), `logged` or not, and B's read on its closed session.
fn refused_requests(logged: bool) -> Fixture {
    let mut f = Fixture::new();
    let id = f.invoke(A, 1, create("/x", b""));
    if logged {
        f.commit(A, 1, create_body("/x", b"", false, 1));
    }
    let last = f.next_zxid() - 1;
    f.fail(id, last, ErrorCode::Throttled);
    let closed = f.commit(B, 1, close_body(&[]));
    f.read(B, 2, get("/"), closed, Err(ErrorCode::SessionExpired));
    f
}

/// Two containers emptied and reaped by the server's own requests (session 0, cxid 0, twice).
fn containers_reaped() -> Fixture {
    let mut f = Fixture::new();
    for (i, path) in ["/c1", "/c2"].into_iter().enumerate() {
        let txn = CreateContainerTxn { path: path.into(), data: None, acl: vec![], parent_cversion: i as i32 + 1 };
        f.commit(A, 10 + i as i32, TxnBody::CreateContainer(txn));
    }
    for path in ["/c1", "/c2"] {
        f.commit(0, 0, TxnBody::Delete { op: OpCode::DeleteContainer, path: path.into() });
    }
    f
}

fn lost_write() -> Fixture {
    let mut f = Fixture::new();
    let id = f.invoke(A, 1, create("/x", b""));
    f.ok(id, 3, OpResult::Created { path: "/x".into(), stat: None });
    f
}

fn acked_with_another_requests_zxid() -> Fixture {
    let mut f = Fixture::new();
    let y = f.write(B, 1, create("/y", b""), create_body("/y", b"", false, 1), created("/y"));
    let id = f.invoke(A, 1, create("/x", b""));
    f.ok(id, y, OpResult::Created { path: "/x".into(), stat: None });
    f
}

fn acked_with_wrong_zxid() -> Fixture {
    let mut f = Fixture::new();
    let id = f.invoke(A, 1, create("/x", b""));
    f.commit(A, 1, create_body("/x", b"", false, 1));
    f.commit(B, 1, create_body("/y", b"", false, 2));
    f.ok(id, 4, OpResult::Created { path: "/x".into(), stat: None });
    f
}

/// B syncs after A's write was acknowledged, then reads the state from before it.
fn stale_read_after_sync(sync_zxid_stale: bool) -> Fixture {
    let mut f = Fixture::new();
    let x = f.write(A, 1, create("/x", b"1"), create_body("/x", b"1", false, 1), created("/x"));
    let sync_zxid = if sync_zxid_stale { x - 1 } else { x };
    f.read(B, 1, OpKind::Sync { path: "/".into() }, sync_zxid, Ok(OpResult::Synced));
    f.read(B, 2, get("/x"), x - 1, Err(ErrorCode::NoNode));
    f
}

fn read_goes_back() -> Fixture {
    let mut f = Fixture::new();
    let x = f.write(A, 1, create("/x", b"1"), create_body("/x", b"1", false, 1), created("/x"));
    f.read(B, 1, get("/x"), x, Ok(OpResult::Data { data: b"1".to_vec(), stat: leaf(x, x, 0, 1, 0) }));
    f.read(B, 2, get("/x"), x - 1, Err(ErrorCode::NoNode));
    f
}

/// A's write is acknowledged before B's is sent, yet B's has the smaller zxid; with B's reply
/// lost (`b_unknown`) the log alone places it.
fn real_time_inversion(b_unknown: bool) -> Fixture {
    let mut f = Fixture::new();
    let first = f.invoke(A, 1, create("/a", b""));
    let b = f.commit(B, 1, create_body("/b", b"", false, 1));
    let a = f.commit(A, 1, create_body("/a", b"", false, 2));
    f.ok(first, a, OpResult::Created { path: "/a".into(), stat: None });
    let second = f.invoke(B, 1, create("/b", b""));
    if b_unknown {
        f.now += 1;
        f.history.give_up(second, f.now);
    } else {
        f.ok(second, b, OpResult::Created { path: "/b".into(), stat: None });
    }
    f
}

fn bad_version_where_version_matched() -> Fixture {
    let mut f = Fixture::new();
    f.write(A, 1, create("/x", b""), create_body("/x", b"", false, 1), created("/x"));
    f.failed_write(B, 1, set("/x", b"new", 0), ErrorCode::BadVersion);
    f
}

/// B's ephemeral /e, B's session closed by the log (`listed`: the close txn names /e), then A reads /e.
fn ephemeral_read_after_close(listed: bool) -> Fixture {
    let mut f = Fixture::new();
    let kind = OpKind::Create { path: "/e".into(), data: vec![], ephemeral: true, sequential: false };
    let e = f.write(B, 1, kind, create_body("/e", b"", true, 1), created("/e"));
    let closed = f.commit(B, 2, close_body(if listed { &["/e"] } else { &[] }));
    f.read(A, 1, get("/e"), closed, Ok(OpResult::Data { data: vec![], stat: leaf(e, e, 0, 0, B) }));
    f
}

/// A sends xid 1 and 2; the reply to 2 arrives first.
fn fifo_violation() -> Fixture {
    let mut f = Fixture::new();
    let one = f.invoke(A, 1, create("/a", b""));
    let two = f.invoke(A, 2, get("/"));
    let a = f.commit(A, 1, create_body("/a", b"", false, 1));
    // One child created, two present (/zookeeper came without a create): cversion 1 * 2 - 2.
    let root =
        OpResult::Data { data: vec![], stat: Stat { cversion: 0, pzxid: a, num_children: 2, ..Stat::default() } };
    f.ok(two, a, root);
    f.ok(one, a, OpResult::Created { path: "/a".into(), stat: None });
    f
}

/// A create under a missing parent, rightly logged as NoNode, reported to the client as a success.
fn success_reported_error_logged() -> Fixture {
    let mut f = Fixture::new();
    let id = f.invoke(A, 1, create("/missing/x", b""));
    f.commit(A, 1, error(ErrorCode::NoNode));
    f.ok(id, 3, OpResult::Created { path: "/missing/x".into(), stat: None });
    f
}

fn wrong_stat_in_reply() -> Fixture {
    let mut f = Fixture::new();
    let x = f.write(A, 1, create("/x", b""), create_body("/x", b"", false, 1), created("/x"));
    f.write(A, 2, set("/x", b"ab", -1), set_body("/x", b"ab", 1), |z| OpResult::Stat(leaf(x, z, 7, 2, 0)));
    f
}

fn wrong_sequential_name() -> Fixture {
    let mut f = Fixture::new();
    f.write(A, 1, create("/q", b""), create_body("/q", b"", false, 1), created("/q"));
    f.write(A, 2, create("/q/n", b""), create_body("/q/n", b"", false, 1), created("/q/n"));
    let kind = OpKind::Create { path: "/q/s-".into(), data: vec![], ephemeral: false, sequential: true };
    // /q's cversion is 1 after one child: the name must end in 0000000001.
    let body = create_body("/q/s-0000000000", b"", false, 2);
    f.write(A, 3, kind, body, created("/q/s-0000000000"));
    f
}

fn request_logged_twice() -> Fixture {
    let mut f = Fixture::new();
    f.write(A, 1, create("/x", b""), create_body("/x", b"", false, 1), created("/x"));
    f.commit(A, 1, error(ErrorCode::NodeExists));
    f
}

fn read_past_log() -> Fixture {
    let mut f = Fixture::new();
    let root = OpResult::Children { children: vec!["zookeeper".into()], stat: None };
    f.read(A, 1, OpKind::GetChildren { path: "/".into() }, 9, Ok(root));
    f
}

/// A read served by a new leader before its epoch's first txn (`counter` 0), or past the log.
fn read_at_epoch_start(counter: i64) -> Fixture {
    let mut f = Fixture::new();
    let root = OpResult::Children { children: vec!["zookeeper".into()], stat: None };
    f.read(A, 1, OpKind::GetChildren { path: "/".into() }, (1 << 32) | counter, Ok(root));
    f
}

fn log_out_of_order() -> Fixture {
    let mut f = Fixture::new();
    f.commit_at(1, A, 1, create_body("/x", b"", false, 1));
    f
}

/// A watches /x at its creation, B changes it; the event arrives (`Some(before)`: before or after A's
/// next read at the new zxid) or not at all, `times` times.
fn watch(event: Option<bool>, times: usize) -> Fixture {
    watch_across(event, times, false)
}

/// As [`watch`]; `reconnect`: A's session moves to another member after leaving the watch.
fn watch_across(event: Option<bool>, times: usize, reconnect: bool) -> Fixture {
    let mut f = Fixture::new();
    let x = f.write(B, 1, create("/x", b""), create_body("/x", b"", false, 1), created("/x"));
    let read = f.read(A, 1, get("/x"), x, Ok(OpResult::Data { data: vec![], stat: leaf(x, x, 0, 0, 0) }));
    f.history.watch_set(read, WatchKind::Data);
    let changed = f.write(B, 2, set("/x", b"1", 0), set_body("/x", b"1", 1), |z| OpResult::Stat(leaf(x, z, 1, 1, 0)));
    if reconnect {
        f.now += 1;
        f.history.connected(f.now, A);
    }
    let deliver = |f: &mut Fixture| (0..times).for_each(|_| f.event(A, "/x", EventType::NodeDataChanged));
    if event == Some(true) {
        deliver(&mut f);
    }
    let data = OpResult::Data { data: b"1".to_vec(), stat: leaf(x, changed, 1, 1, 0) };
    f.read(A, 2, get("/x"), changed, Ok(data));
    if event == Some(false) {
        deliver(&mut f);
    }
    f
}

#[test]
fn planted_anomalies_are_caught_and_clean_histories_pass() {
    type Case = (&'static str, fn() -> Fixture, Option<ViolationKind>);
    let cases: &[Case] = &[
        ("clean mixed history", clean_mixed, None),
        ("unknown write that happened", || unknown_write(true), None),
        ("unknown write that did not happen", || unknown_write(false), None),
        ("concurrent writes in either order", concurrent_writes, None),
        ("watch event before the new state", || watch(Some(true), 1), None),
        ("throttled write, not logged; read on a closed session", || refused_requests(false), None),
        ("throttled write found in the log", || refused_requests(true), Some(ViolationKind::ReplyDisagrees)),
        ("containers reaped by the server's own requests", containers_reaped, None),
        ("lost acknowledged write", lost_write, Some(ViolationKind::LostWrite)),
        (
            "acked with another request's zxid",
            acked_with_another_requests_zxid,
            Some(ViolationKind::ZxidOfAnotherRequest),
        ),
        ("acked with a zxid the log disagrees with", acked_with_wrong_zxid, Some(ViolationKind::ZxidMismatch)),
        ("stale read after sync", || stale_read_after_sync(false), Some(ViolationKind::StaleAfterSync)),
        ("sync answered with stale state", || stale_read_after_sync(true), Some(ViolationKind::StaleAfterSync)),
        ("read going back in time", read_goes_back, Some(ViolationKind::ZxidWentBack)),
        ("real-time order between two writes", || real_time_inversion(false), Some(ViolationKind::RealTimeOrder)),
        (
            "unknown write placed before an earlier ack",
            || real_time_inversion(true),
            Some(ViolationKind::RealTimeOrder),
        ),
        ("BadVersion where the version matched", bad_version_where_version_matched, Some(ViolationKind::WrongDecision)),
        (
            "ephemeral read after its session closed",
            || ephemeral_read_after_close(true),
            Some(ViolationKind::WrongRead),
        ),
        (
            "close that keeps the session's ephemeral",
            || ephemeral_read_after_close(false),
            Some(ViolationKind::InvalidTxn),
        ),
        ("FIFO violation", fifo_violation, Some(ViolationKind::FifoOrder)),
        ("success reported, error logged", success_reported_error_logged, Some(ViolationKind::ReplyDisagrees)),
        ("wrong stat in a setData reply", wrong_stat_in_reply, Some(ViolationKind::ReplyDisagrees)),
        ("wrong sequential name", wrong_sequential_name, Some(ViolationKind::WrongDecision)),
        ("request logged twice", request_logged_twice, Some(ViolationKind::DuplicateRequest)),
        ("read at a zxid past the log", read_past_log, Some(ViolationKind::ZxidPastLog)),
        ("read at a new epoch's start, before its first txn", || read_at_epoch_start(0), None),
        ("read in a new epoch past the log", || read_at_epoch_start(1), Some(ViolationKind::ZxidPastLog)),
        ("log zxids going back", log_out_of_order, Some(ViolationKind::LogOutOfOrder)),
        ("watch event after the new state", || watch(Some(false), 1), Some(ViolationKind::WatchEventLate)),
        ("watch event never sent", || watch(None, 1), Some(ViolationKind::WatchEventLate)),
        ("one-shot watch fired twice", || watch(Some(true), 2), Some(ViolationKind::WatchFiredTwice)),
        ("watch event missed across a reconnection", || watch_across(None, 1, true), None),
        (
            "watch fired twice across a reconnection",
            || watch_across(Some(true), 2, true),
            Some(ViolationKind::WatchFiredTwice),
        ),
    ];
    for (name, build, expected) in cases {
        let fixture = build();
        match (fixture.check(), expected) {
            (Ok(_), None) => {}
            (Err(v), Some(kind)) => assert_eq!(v.kind, *kind, "{name}: caught as\n{v}"),
            (Err(v), None) => panic!("{name}: clean history rejected:\n{v}"),
            (Ok(summary), Some(kind)) => panic!("{name}: {kind:?} not caught ({summary:?})"),
        }
    }
}

#[test]
fn summary_counts_what_was_checked() {
    let summary = clean_mixed().check().expect("clean");
    assert_eq!(summary.writes_acknowledged, 7);
    assert_eq!(summary.reads_checked, 3);
    assert_eq!(summary.syncs_checked, 1);
    assert_eq!(summary.log_txns, 10);
    assert_eq!(summary.final_nodes, 5, "the 4 system nodes and /app");
    let committed = unknown_write(true).check().expect("clean");
    assert_eq!((committed.unknown_committed, committed.unknown_dropped), (1, 0));
    let dropped = unknown_write(false).check().expect("clean");
    assert_eq!((dropped.unknown_committed, dropped.unknown_dropped), (0, 1));
}

#[test]
fn a_violation_names_the_ops_sessions_and_zxids() {
    let v = real_time_inversion(false).check().expect_err("inverted");
    assert_eq!(v.session_id, Some(B));
    assert_eq!(v.zxids, vec![4, 3]);
    let text = v.to_string();
    assert!(text.contains("RealTimeOrder in session 0xb at zxid 0x4, 0x3"), "{text}");
    assert!(text.contains("create /a") && text.contains("create /b"), "{text}");
}
