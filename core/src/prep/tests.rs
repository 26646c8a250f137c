//! Prep decisions, table-driven: each case is a request against a fixed tree and the txn or error
//! ZooKeeper would produce for it.

use super::*;
use fk_engine::tree::DataTree;
use fk_net::client::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, SetAclRequest, SetDataRequest,
};

const SESSION: i64 = 0x0100_0000_0000_0001;

fn open() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

/// "/a" (version 2, one child "/a/b"), "/eph" (ephemeral of SESSION), "/ro" (world read-only),
/// "/c" (a container).
fn tree() -> DataTree {
    let mut t = DataTree::new(fk_engine::tree::TreeOptions::fixed_seed(true));
    t.create_node("/a", None, &open(), 0, 1, 1, 0).unwrap();
    t.set_data("/a", None, 2, 2, 0).unwrap();
    t.create_node("/a/b", None, &open(), 0, 1, 3, 0).unwrap();
    t.create_node("/eph", None, &open(), SESSION, 2, 4, 0).unwrap();
    t.create_node("/ro", None, &[Acl::new(perms::READ, "world", "anyone")], 0, 3, 5, 0).unwrap();
    t.create_node("/c", None, &open(), CONTAINER_OWNER, 4, 6, 0).unwrap();
    t
}

fn ctx(auth: &AuthIds) -> RequestCtx<'_> {
    RequestCtx {
        session_id: SESSION,
        session_live: true,
        zxid: 100,
        time_ms: 5000,
        auth,
        settings: PrepSettings { extended_types: true, ..Default::default() },
        ensemble: None,
    }
}

fn create(path: &str, flags: i32) -> WriteOp {
    WriteOp::Create {
        op: OpCode::Create2,
        request: CreateRequest { path: path.into(), data: Some(b"x".to_vec()), acl: open(), flags },
    }
}

fn error_of(body: &TxnBody) -> Option<ErrorCode> {
    match body {
        TxnBody::Error(e) => ErrorCode::from_i32(e.err),
        _ => None,
    }
}

fn run(op: &WriteOp) -> TxnBody {
    let tree = tree();
    let mut changes = PendingChanges::default();
    let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
    prep_write(&mut PrepView::new(&tree, &mut changes), &ctx(&auth), Write::Op(op))
}

#[test]
fn error_table() {
    let ttl = |path: &str, flags, ttl| {
        WriteOp::CreateTtl(CreateTtlRequest { path: path.into(), data: None, acl: open(), flags, ttl })
    };
    let cases: Vec<(&str, WriteOp, ErrorCode)> = vec![
        ("bad flags", create("/x", 7), ErrorCode::BadArguments),
        ("ttl flag on create", create("/x", 5), ErrorCode::BadArguments),
        ("ttl zero", ttl("/x", 5, 0), ErrorCode::BadArguments),
        ("ttl too large", ttl("/x", 5, MAX_TTL_MS + 1), ErrorCode::BadArguments),
        ("createTTL, non-TTL mode", ttl("/x", 0, 100), ErrorCode::BadArguments),
        ("no slash", create("x", 0), ErrorCode::BadArguments),
        ("missing parent", create("/nope/x", 0), ErrorCode::NoNode),
        ("empty component: parent missing", create("/a//b", 0), ErrorCode::NoNode),
        ("trailing slash", create("/a/", 0), ErrorCode::BadArguments),
        ("relative", create("/a/..", 0), ErrorCode::BadArguments),
        ("exists", create("/a", 0), ErrorCode::NodeExists),
        ("root exists", create("/", 0), ErrorCode::NodeExists),
        ("under ephemeral", create("/eph/x", 0), ErrorCode::NoChildrenForEphemerals),
        ("no create perm", create("/ro/x", 0), ErrorCode::NoAuth),
        ("delete non-empty", WriteOp::Delete(DeleteRequest { path: "/a".into(), version: -1 }), ErrorCode::NotEmpty),
        (
            "delete bad version",
            WriteOp::Delete(DeleteRequest { path: "/a/b".into(), version: 3 }),
            ErrorCode::BadVersion,
        ),
        ("delete missing", WriteOp::Delete(DeleteRequest { path: "/zz".into(), version: -1 }), ErrorCode::NoNode),
        ("delete root", WriteOp::Delete(DeleteRequest { path: "/".into(), version: -1 }), ErrorCode::BadArguments),
        (
            "delete /zookeeper",
            WriteOp::Delete(DeleteRequest { path: "/zookeeper".into(), version: -1 }),
            ErrorCode::BadArguments,
        ),
        (
            "setData bad version",
            WriteOp::SetData(SetDataRequest { path: "/a".into(), data: None, version: 1 }),
            ErrorCode::BadVersion,
        ),
        (
            "setData no write perm",
            WriteOp::SetData(SetDataRequest { path: "/ro".into(), data: None, version: -1 }),
            ErrorCode::NoAuth,
        ),
        (
            "setData bad path",
            WriteOp::SetData(SetDataRequest { path: "/a/".into(), data: None, version: -1 }),
            ErrorCode::BadArguments,
        ),
        (
            "setACL empty list",
            WriteOp::SetAcl(SetAclRequest { path: "/a".into(), acl: vec![], version: -1 }),
            ErrorCode::InvalidAcl,
        ),
        (
            "setACL auth without ids",
            WriteOp::SetAcl(SetAclRequest { path: "/a".into(), acl: vec![Acl::new(31, "auth", "")], version: -1 }),
            ErrorCode::InvalidAcl,
        ),
        (
            "setACL bad aversion",
            WriteOp::SetAcl(SetAclRequest { path: "/a".into(), acl: open(), version: 4 }),
            ErrorCode::BadVersion,
        ),
        (
            "check bad version",
            WriteOp::Check(CheckVersionRequest { path: "/a".into(), version: 1 }),
            ErrorCode::BadVersion,
        ),
        ("check missing", WriteOp::Check(CheckVersionRequest { path: "/q".into(), version: 1 }), ErrorCode::NoNode),
    ];
    for (name, op, expected) in cases {
        assert_eq!(error_of(&run(&op)), Some(expected), "{name}");
    }
}

#[test]
fn sequential_names_use_the_parents_cversion() {
    match run(&create("/a/s-", 2)) {
        TxnBody::Create { txn, .. } => {
            assert_eq!(txn.path, "/a/s-0000000001");
            assert_eq!(txn.parent_cversion, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn check_logs_the_incremented_version() {
    assert_eq!(
        run(&WriteOp::Check(CheckVersionRequest { path: "/a".into(), version: 2 })),
        TxnBody::Check(CheckVersionTxn { path: "/a".into(), version: 3 })
    );
}

#[test]
fn pending_changes_are_seen_by_later_requests() {
    let tree = tree();
    let mut changes = PendingChanges::default();
    let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
    let mut view = PrepView::new(&tree, &mut changes);
    let first = prep_write(&mut view, &ctx(&auth), Write::Op(&create("/n", 0)));
    assert!(matches!(first, TxnBody::Create { .. }));
    let second = prep_write(&mut view, &ctx(&auth), Write::Op(&create("/n", 0)));
    assert_eq!(error_of(&second), Some(ErrorCode::NodeExists));
    let delete_parent = WriteOp::Delete(DeleteRequest { path: "/a/b".into(), version: -1 });
    assert!(matches!(prep_write(&mut view, &ctx(&auth), Write::Op(&delete_parent)), TxnBody::Delete { .. }));
    let delete_a = WriteOp::Delete(DeleteRequest { path: "/a".into(), version: -1 });
    assert!(matches!(prep_write(&mut view, &ctx(&auth), Write::Op(&delete_a)), TxnBody::Delete { .. }));
    changes.prune(100);
    assert!(changes.is_empty());
}

#[test]
fn a_failed_multi_rolls_back_its_earlier_ops() {
    let tree = tree();
    let mut changes = PendingChanges::default();
    let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
    let mut view = PrepView::new(&tree, &mut changes);
    let ops =
        vec![create("/m", 0), WriteOp::Check(CheckVersionRequest { path: "/a".into(), version: 99 }), create("/m2", 0)];
    let body = prep_write(&mut view, &ctx(&auth), Write::Multi(&ops));
    let TxnBody::Multi(txns) = body else { panic!("{body:?}") };
    assert!(matches!(txns[0], TxnBody::Create { .. }), "earlier ops keep their txn");
    assert_eq!(error_of(&txns[1]), Some(ErrorCode::BadVersion));
    assert_eq!(error_of(&txns[2]), Some(ErrorCode::RuntimeInconsistency));
    assert!(view.node("/m").is_none(), "the create of /m was rolled back");
    assert!(matches!(prep_write(&mut view, &ctx(&auth), Write::Op(&create("/m", 0))), TxnBody::Create { .. }));
}

#[test]
fn close_session_names_tree_and_pending_ephemerals() {
    let tree = tree();
    let mut changes = PendingChanges::default();
    let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
    let mut view = PrepView::new(&tree, &mut changes);
    prep_write(&mut view, &ctx(&auth), Write::Op(&create("/e2", 1)));
    let body = prep_write(&mut view, &ctx(&auth), Write::CloseSession);
    assert_eq!(body, TxnBody::CloseSession { paths_to_delete: Some(vec!["/e2".into(), "/eph".into()]) });
    assert!(view.node("/eph").is_none());
}

/// The session's ephemeral, deleted by another session and created again as a persistent node by this
/// one, both in flight: the close deletes nothing (it deleted the persistent node, found by the
/// simulator: reconfig seed 5007).
#[test]
fn close_session_leaves_a_node_recreated_in_flight() {
    let tree = tree();
    let mut changes = PendingChanges::default();
    let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
    let mut view = PrepView::new(&tree, &mut changes);
    let other = RequestCtx { session_id: SESSION + 1, ..ctx(&auth) };
    let delete = WriteOp::Delete(fk_net::client::DeleteRequest { path: "/eph".into(), version: -1 });
    assert!(matches!(prep_write(&mut view, &other, Write::Op(&delete)), TxnBody::Delete { .. }));
    prep_write(&mut view, &ctx(&auth), Write::Op(&create("/eph", 0)));
    let body = prep_write(&mut view, &ctx(&auth), Write::CloseSession);
    assert_eq!(body, TxnBody::CloseSession { paths_to_delete: Some(vec![]) });
    assert!(view.node("/eph").is_some());
}

#[test]
fn expired_sessions_and_reconfig() {
    let tree = tree();
    let mut changes = PendingChanges::default();
    let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
    let mut view = PrepView::new(&tree, &mut changes);
    let dead = RequestCtx { session_live: false, ..ctx(&auth) };
    assert_eq!(error_of(&prep_write(&mut view, &dead, Write::Op(&create("/x", 0)))), Some(ErrorCode::SessionExpired));
    let reconfig = fk_net::client::ReconfigRequest::default();
    let asked = Write::Reconfig(&reconfig);
    assert_eq!(error_of(&prep_write(&mut view, &ctx(&auth), asked)), Some(ErrorCode::ReconfigDisabled));
    assert_eq!(
        error_of(&prep_write(&mut view, &ctx(&auth), Write::DeleteContainer("/eph"))),
        Some(ErrorCode::BadVersion)
    );
    assert!(matches!(prep_write(&mut view, &ctx(&auth), Write::DeleteContainer("/c")), TxnBody::Delete { .. }));
}

/// `tree()` with a quota on "/a" (as zkCli's setquota leaves it): `limits` in its limits node.
fn quota_tree(limits: &str) -> DataTree {
    let mut t = tree();
    t.create_node("/zookeeper/quota/a", None, &open(), 0, -1, 10, 0).unwrap();
    t.create_node("/zookeeper/quota/a/zookeeper_limits", Some(limits.as_bytes()), &open(), 0, -1, 11, 0).unwrap();
    t.create_node("/zookeeper/quota/a/zookeeper_stats", Some(b"count=0,bytes=0"), &open(), 0, -1, 12, 0).unwrap();
    t
}

#[test]
fn quota_checks_follow_zookeepers_order_and_switch() {
    let enforcing = PrepSettings { extended_types: true, enforce_quota: true, ..Default::default() };
    let set_data = |data: &[u8], version| {
        WriteOp::SetData(SetDataRequest { path: "/a/b".into(), data: Some(data.to_vec()), version })
    };
    // ("/a" and "/a/b" exist: usage count=2, bytes=0.) (case, limits, enforce, op, error)
    let cases: Vec<(&str, &str, bool, WriteOp, Option<ErrorCode>)> = vec![
        ("hard count", "countHardLimit=2", true, create("/a/x", 0), Some(ErrorCode::QuotaExceeded)),
        ("hard count, not enforced", "countHardLimit=2", false, create("/a/x", 0), None),
        ("soft count", "count=2,bytes=-1", true, create("/a/x", 0), None),
        ("room left", "countHardLimit=3", true, create("/a/x", 0), None),
        ("outside the quota", "countHardLimit=2", true, create("/x", 0), None),
        ("sequential name checked", "countHardLimit=2", true, create("/a/s-", 2), Some(ErrorCode::QuotaExceeded)),
        // Node existence and an ephemeral parent come first; the version check after.
        ("exists first", "countHardLimit=2", true, create("/a/b", 0), Some(ErrorCode::NodeExists)),
        ("hard bytes", "byteHardLimit=1", true, set_data(b"xy", -1), Some(ErrorCode::QuotaExceeded)),
        ("quota before version", "byteHardLimit=1", true, set_data(b"xy", 7), Some(ErrorCode::QuotaExceeded)),
        ("bytes fit", "byteHardLimit=2", true, set_data(b"xy", -1), None),
        ("bad limits text", "countHardLimit=x", true, create("/a/x", 0), Some(ErrorCode::MarshallingError)),
    ];
    for (name, limits, enforce, op, expected) in cases {
        let tree = quota_tree(limits);
        let mut changes = PendingChanges::default();
        let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        let settings = PrepSettings { enforce_quota: enforce, ..enforcing };
        let ctx = RequestCtx { settings, ..ctx(&auth) };
        let body = prep_write(&mut PrepView::new(&tree, &mut changes), &ctx, Write::Op(&op));
        assert_eq!(error_of(&body), expected, "{name}: {body:?}");
    }
}

#[test]
fn quota_checks_read_the_applied_tree_not_the_writes_in_flight() {
    // ZooKeeper's checkQuota reads the DataTree: two creates prepared before either applies both pass a
    // hard limit that leaves room for one; once one has applied, the next is refused.
    let mut tree = quota_tree("countHardLimit=3");
    let mut changes = PendingChanges::default();
    let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
    let settings = PrepSettings { extended_types: true, enforce_quota: true, ..Default::default() };
    let ctx = RequestCtx { settings, ..ctx(&auth) };
    let ops = vec![create("/a/m1", 0), create("/a/m2", 0)];
    let body = prep_write(&mut PrepView::new(&tree, &mut changes), &ctx, Write::Multi(&ops));
    let TxnBody::Multi(txns) = body else { panic!("{body:?}") };
    assert!(txns.iter().all(|t| matches!(t, TxnBody::Create { .. })), "{txns:?}");
    tree.create_node("/a/m1", None, &open(), 0, -1, 100, 0).unwrap();
    let body = prep_write(&mut PrepView::new(&tree, &mut changes), &ctx, Write::Op(&create("/a/m3", 0)));
    assert_eq!(error_of(&body), Some(ErrorCode::QuotaExceeded));
}

#[test]
fn creates_in_a_multi_are_logged_as_zookeeper_rebuilds_them() {
    // (opcode, flags) -> the sub-txn's opcode: the flags decide, as in ZooKeeper's MultiOperationRecord.
    let cases = [
        (OpCode::Create2, 0, OpCode::Create),
        (OpCode::Create, 1, OpCode::Create),
        (OpCode::Create2, 4, OpCode::CreateContainer),
        (OpCode::CreateContainer, 0, OpCode::Create),
        (OpCode::CreateContainer, 4, OpCode::CreateContainer),
    ];
    for (op, flags, logged) in cases {
        let tree = tree();
        let mut changes = PendingChanges::default();
        let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        let request = CreateRequest { path: "/m".into(), data: None, acl: open(), flags };
        let ops = vec![WriteOp::Create { op, request }];
        let body = prep_write(&mut PrepView::new(&tree, &mut changes), &ctx(&auth), Write::Multi(&ops));
        let TxnBody::Multi(txns) = &body else { panic!("{body:?}") };
        assert_eq!(txns[0].txn_type(), logged.as_i32(), "{op:?} with flags {flags}: {body:?}");
    }
}

/// A reconfig's checks in ZooKeeper's order, and the txn it becomes: /zookeeper/config set to the new
/// membership, versioned by the txn's zxid, data version -1.
#[test]
fn reconfig_checks_in_zookeepers_order() {
    use crate::membership::Membership;
    use std::collections::BTreeSet;
    let tree = tree();
    let mut changes = PendingChanges::default();
    let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
    let mut view = PrepView::new(&tree, &mut changes);
    let three = Membership::parse(
        "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
         server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\nversion=100000000",
    )
    .unwrap();
    let pending = three.with_version(0x1_0000_0005);
    let all = BTreeSet::from([1, 2, 3]);
    let leader_only = BTreeSet::from([1]);
    let ensemble = |last_seen, synced| EnsembleView { current: &three, last_seen, synced, standalone_enabled: true };
    let enabled = PrepSettings { reconfig_enabled: true, skip_acl: false, ..Default::default() };
    fn with<'a>(auth: &'a AuthIds, settings: PrepSettings, ensemble: Option<EnsembleView<'a>>) -> RequestCtx<'a> {
        RequestCtx { settings, ensemble, ..ctx(auth) }
    }
    let remove = |config: i64| fk_net::client::ReconfigRequest {
        leaving_servers: "3".into(),
        cur_config_id: config,
        ..Default::default()
    };
    let cases: Vec<(RequestCtx<'_>, fk_net::client::ReconfigRequest, ErrorCode)> = vec![
        (with(&auth, enabled, None), remove(-1), ErrorCode::Unimplemented),
        (with(&auth, enabled, Some(ensemble(&pending, &all))), remove(-1), ErrorCode::ReconfigInProgress),
        (with(&auth, enabled, Some(ensemble(&three, &all))), remove(0x1234), ErrorCode::BadVersion),
        (with(&auth, enabled, Some(ensemble(&three, &leader_only))), remove(-1), ErrorCode::NewConfigNoQuorum),
        // /zookeeper/config is world-readable only: writing it takes skipACL or a super user.
        (with(&auth, enabled, Some(ensemble(&three, &all))), remove(-1), ErrorCode::NoAuth),
    ];
    for (request_ctx, request, code) in cases {
        assert_eq!(
            error_of(&prep_write(&mut view, &request_ctx, Write::Reconfig(&request))),
            Some(code),
            "{request:?}"
        );
    }
    let skip = PrepSettings { skip_acl: true, ..enabled };
    let request = remove(0x1_0000_0000);
    let TxnBody::Reconfig(txn) =
        prep_write(&mut view, &with(&auth, skip, Some(ensemble(&three, &all))), Write::Reconfig(&request))
    else {
        panic!("a reconfig txn")
    };
    assert_eq!(txn.path, "/zookeeper/config");
    assert_eq!(txn.version, -1);
    let next = Membership::parse(std::str::from_utf8(txn.data.as_deref().unwrap()).unwrap()).unwrap();
    assert_eq!((next.voters(), next.version), (BTreeSet::from([1, 2]), 100), "versioned by the txn's zxid");
}
