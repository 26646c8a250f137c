//! Exact-byte behaviour at the wire, checked against what Apache ZooKeeper 3.8 answers to the same
//! requests (recorded side by side with Debian's zookeeper 3.8.0).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fk_net::client::watch::EventType;
use fk_net::client::*;
use fk_net::jute::Jute;
use fk_tests::TestServer;
use fk_tests::raw::{RawClient, Reply, frame};

fn open_acl() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

fn create(path: &str, flags: i32) -> Request {
    create_with_acl(path, flags, open_acl())
}

fn create_with_acl(path: &str, flags: i32, acl: Vec<Acl>) -> Request {
    Request::Write(WriteOp::Create {
        op: OpCode::Create,
        request: CreateRequest { path: path.into(), data: None, acl, flags },
    })
}

fn err(code: ErrorCode) -> i32 {
    code.as_i32()
}

#[test]
fn failed_writes_consume_a_zxid_and_reads_do_not() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    let (created, _) = c.call(&create("/z", 0));
    let first = created.header.zxid;
    let (exists, _) = c.call(&create("/z", 0));
    assert_eq!((exists.err(), exists.header.zxid), (err(ErrorCode::NodeExists), first + 1));
    let (missing, _) = c.call(&Request::GetData(PathWatchRequest { path: "/nope".into(), watch: false }));
    assert_eq!((missing.err(), missing.header.zxid), (err(ErrorCode::NoNode), first + 1));
    // A write whose body cannot be decoded is still an (error) txn; a read's is not.
    c.send_raw(100, OpCode::Create.as_i32(), &"/trunc".to_owned().to_bytes());
    let reply = c.recv().unwrap();
    assert_eq!((reply.header.xid, reply.err(), reply.header.zxid), (100, err(ErrorCode::MarshallingError), first + 2));
    c.send_raw(101, OpCode::GetData.as_i32(), &"/z".to_owned().to_bytes());
    let reply = c.recv().unwrap();
    assert_eq!((reply.err(), reply.header.zxid), (err(ErrorCode::MarshallingError), first + 2));
    let (next, _) = c.call(&create("/z2", 0));
    assert_eq!(next.header.zxid, first + 3);
}

#[test]
fn unusual_opcodes_are_answered_like_zookeeper() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    c.call(&create("/n", 0));
    let (check, _) = c.call(&Request::Write(WriteOp::Check(CheckVersionRequest { path: "/n".into(), version: 5 })));
    assert_eq!(check.err(), err(ErrorCode::BadVersion));
    let (check, _) = c.call(&Request::Write(WriteOp::Check(CheckVersionRequest { path: "/n".into(), version: 0 })));
    assert_eq!(check.err(), 0);
    assert_eq!(Stat::decode_exact(&check.body).unwrap().version, 0);
    let (sasl, _) = c.call(&Request::Sasl(SaslRequest { token: Some(b"abc".to_vec()) }));
    assert_eq!((sasl.err(), sasl.header.zxid, sasl.body.as_slice()), (0, 0, &[0xff, 0xff, 0xff, 0xff][..]));
    let reconfig = ReconfigRequest { cur_config_id: -1, ..Default::default() };
    assert_eq!(c.call(&Request::Reconfig(reconfig)).0.err(), err(ErrorCode::ReconfigDisabled));
    // Only the server's reaper deletes containers.
    assert_eq!(c.call(&Request::DeleteContainer("/n".into())).0.err(), err(ErrorCode::BadArguments));
    let (add, _) = c.call(&Request::AddWatch(AddWatchRequest { path: "/n".into(), mode: 0 }));
    assert_eq!((add.err(), add.body.as_slice()), (0, &[0, 0, 0, 0][..]), "addWatch sends a 4-byte ErrorResponse");
    let remove = |t| Request::RemoveWatches(WatchTypeRequest { path: "/n".into(), watcher_type: t });
    let check = |t| Request::CheckWatches(WatchTypeRequest { path: "/n".into(), watcher_type: t });
    assert_eq!(c.call(&remove(1)).0.err(), 0, "removing Children takes the persistent watch's child half");
    assert_eq!(c.call(&check(2)).0.err(), 0, "its data half is still there");
    assert_eq!(c.call(&check(1)).0.err(), err(ErrorCode::NoWatcher));
    assert_eq!(c.call(&check(9)).0.err(), err(ErrorCode::MarshallingError));
    let multi = Request::Multi(vec![]);
    let (empty, _) = c.call(&multi);
    assert_eq!((empty.err(), Response::decode(OpCode::Multi, &empty.body).unwrap()), (0, Response::Multi(vec![])));
    // A read inside a write multi does not decode.
    let mut body = Vec::new();
    Request::MultiRead(vec![ReadOp::GetData(PathWatchRequest { path: "/n".into(), watch: false })])
        .encode_body(&mut body);
    c.send_raw(50, OpCode::Multi.as_i32(), &body);
    assert_eq!(c.recv().unwrap().err(), err(ErrorCode::MarshallingError));
    let (who, _) = c.call(&Request::WhoAmI);
    let who = WhoAmIResponse::decode_exact(&who.body).unwrap();
    assert_eq!(who.client_info, vec![ClientInfo { auth_scheme: "ip".into(), user: "127.0.0.1".into() }]);
}

#[test]
fn unknown_opcode_gets_unimplemented_then_close() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    c.send_raw(7, 999, &[]);
    let reply = c.recv().unwrap();
    assert_eq!((reply.header.xid, reply.header.zxid, reply.err()), (7, -1, err(ErrorCode::Unimplemented)));
    assert!(c.recv().is_none(), "the connection is closed after the reply");
    let mut other = RawClient::connect(&server.address());
    assert_eq!(other.call(&Request::Ping).0.err(), 0);
}

/// Opcodes 0 (notification) and -1 (error) are server messages: ZooKeeper answers them as unknown
/// opcodes (Unimplemented, zxid -1) and closes; a client's createSession (-10) is a MarshallingError.
#[test]
fn server_message_opcodes_are_unimplemented_and_close() {
    let server = TestServer::start();
    for (op, body) in [(0, &[][..]), (0, &[1, 2, 3, 4, 0xff][..]), (-1, &[][..])] {
        let mut c = RawClient::connect(&server.address());
        c.send_raw(5, op, body);
        let reply = c.recv().unwrap();
        assert_eq!(
            (reply.header.xid, reply.header.zxid, reply.err()),
            (5, -1, err(ErrorCode::Unimplemented)),
            "op {op}"
        );
        assert!(c.recv().is_none(), "op {op}: closed after the reply");
    }
    let mut c = RawClient::connect(&server.address());
    c.send_raw(5, -10, &[]);
    assert_eq!(c.recv().unwrap().err(), err(ErrorCode::MarshallingError));
    assert_eq!(c.call(&Request::Ping).0.err(), 0, "and the connection stays");
}

/// Undecodable auth and sasl packets (and a sasl packet without a token) close the connection without
/// a reply, as ZooKeeper does; the session survives and can be resumed. A malformed setWatches is a
/// MarshallingError on a connection that stays open, also as in ZooKeeper.
#[test]
fn malformed_auth_and_sasl_close_the_connection_and_set_watches_does_not() {
    let server = TestServer::start();
    let cases: [(i32, i32, &[u8]); 6] = [
        (xid::AUTH, OpCode::Auth.as_i32(), &[1, 2, 3]),
        (xid::AUTH, OpCode::Auth.as_i32(), &[]),
        (7, OpCode::Auth.as_i32(), &[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]),
        (9, OpCode::Sasl.as_i32(), &[1, 2, 3]),
        (9, OpCode::Sasl.as_i32(), &[0xff, 0xff, 0xff, 0xfb]),
        (9, OpCode::Sasl.as_i32(), &[0xff, 0xff, 0xff, 0xff]),
    ];
    for (xid, op, body) in cases {
        let mut c = RawClient::connect(&server.address());
        c.send_raw(xid, op, body);
        assert!(c.recv().is_none(), "op {op} body {body:?}: closed without a reply");
        let resume = ConnectRequest {
            timeout_ms: 30_000,
            session_id: c.session_id,
            passwd: c.passwd.clone(),
            read_only: Some(false),
            ..Default::default()
        };
        let again = RawClient::connect_with(&server.address(), resume).expect("the session can be resumed");
        assert_eq!(again.session_id, c.session_id);
    }
    for op in [OpCode::SetWatches, OpCode::SetWatches2] {
        let mut c = RawClient::connect(&server.address());
        c.send_raw(xid::SET_WATCHES, op.as_i32(), &[1, 2, 3]);
        assert_eq!(c.recv().unwrap().err(), err(ErrorCode::MarshallingError), "{op:?}");
        assert_eq!(c.call(&Request::Ping).0.err(), 0, "{op:?}: the connection stays open");
    }
}

/// ZooKeeper keys its root under "" as well as "/": reads of "" answer with the root, byte for byte
/// (getAllChildrenNumber counts one more, ZooKeeper's "/" key); writes of "" are BadArguments.
#[test]
fn reads_of_the_empty_path_are_reads_of_the_root() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    c.call(&create("/a", 0));
    c.call(&create("/a/b", 0));
    let path = |path: &str| PathRequest { path: path.into() };
    let reads: [fn(&str) -> Request; 5] = [
        |p| Request::GetData(PathWatchRequest { path: p.into(), watch: false }),
        |p| Request::Exists(PathWatchRequest { path: p.into(), watch: false }),
        |p| Request::GetChildren(PathWatchRequest { path: p.into(), watch: false }),
        |p| Request::GetChildren2(PathWatchRequest { path: p.into(), watch: false }),
        |p| Request::GetAcl(PathRequest { path: p.into() }),
    ];
    for read in reads {
        let (empty, _) = c.call(&read(""));
        let (root, _) = c.call(&read("/"));
        assert_eq!((empty.err(), &empty.body), (0, &root.body), "{:?}", read("").op_code());
    }
    let count = |c: &mut RawClient, p: &str| {
        let (reply, _) = c.call(&Request::GetAllChildrenNumber(path(p)));
        GetAllChildrenNumberResponse::decode_exact(&reply.body).unwrap().total_number
    };
    assert_eq!(count(&mut c, ""), count(&mut c, "/") + 1);
    let set = Request::Write(WriteOp::SetData(SetDataRequest { path: "".into(), data: None, version: -1 }));
    assert_eq!(c.call(&set).0.err(), err(ErrorCode::BadArguments));
}

#[test]
fn paths_are_validated_as_zookeeper_does() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    c.call(&create("/v", 0));
    let cases = [
        ("/", ErrorCode::NodeExists),
        ("/a//b", ErrorCode::NoNode),
        ("abc", ErrorCode::BadArguments),
        ("/v/", ErrorCode::BadArguments),
        ("/v/.", ErrorCode::BadArguments),
        ("/v/..", ErrorCode::BadArguments),
        ("/v/\u{1}", ErrorCode::BadArguments),
        ("/v/\u{1F600}", ErrorCode::BadArguments),
        ("/missing/x", ErrorCode::NoNode),
    ];
    for (path, code) in cases {
        assert_eq!(c.call(&create(path, 0)).0.err(), err(code), "create {path:?}");
    }
    let get = |path: &str| Request::GetData(PathWatchRequest { path: path.into(), watch: false });
    assert_eq!(c.call(&get("/a//b")).0.err(), err(ErrorCode::NoNode), "reads do not validate paths");
    let exists = Request::Exists(PathWatchRequest { path: "/a\0b".into(), watch: false });
    assert_eq!(c.call(&exists).0.err(), err(ErrorCode::BadArguments));
    let set = Request::Write(WriteOp::SetData(SetDataRequest { path: "/a//b".into(), data: None, version: -1 }));
    assert_eq!(c.call(&set).0.err(), err(ErrorCode::BadArguments));
    let delete = Request::Write(WriteOp::Delete(DeleteRequest { path: "/zookeeper/quota".into(), version: -1 }));
    assert_eq!(c.call(&delete).0.err(), err(ErrorCode::BadArguments));
}

#[test]
fn create_flags_and_ttl_rules() {
    let server = TestServer::with_config("extendedTypesEnabled=true");
    let mut c = RawClient::connect(&server.address());
    assert_eq!(c.call(&create("/f", 7)).0.err(), err(ErrorCode::BadArguments));
    assert_eq!(c.call(&create("/f", 5)).0.err(), err(ErrorCode::BadArguments), "a TTL mode needs createTTL");
    let ttl = |flags, ttl| {
        Request::Write(WriteOp::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: open_acl(),
            flags,
            ttl,
        }))
    };
    assert_eq!(c.call(&ttl(5, 0)).0.err(), err(ErrorCode::BadArguments));
    assert_eq!(c.call(&ttl(0, 100)).0.err(), err(ErrorCode::BadArguments));
    assert_eq!(c.call(&ttl(5, 1 << 40)).0.err(), err(ErrorCode::BadArguments));
    let (ok, _) = c.call(&ttl(5, 60_000));
    let created = Create2Response::decode_exact(&ok.body).unwrap();
    assert_eq!((created.path.as_str(), created.stat.ephemeral_owner), ("/t", 0));
    // A plain create with the container flag makes a plain node, as ZooKeeper's create op does.
    assert_eq!(c.call(&create("/pc", 4)).0.err(), 0);
    assert_eq!(c.call(&create("/pc/x", 0)).0.err(), 0);
}

#[test]
fn acl_validation_and_enforcement() {
    let server = TestServer::with_config("DigestAuthenticationProvider.superDigest=super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
    let mut anon = RawClient::connect(&server.address());
    let invalid = [
        vec![],
        vec![Acl::new(31, "ip", "1.2.3.4/33")],
        vec![Acl::new(31, "ip", "::1/64")],
        vec![Acl::new(31, "digest", "nocolon")],
        vec![Acl::new(31, "world", "me")],
        vec![Acl::new(31, "foo", "bar")],
        vec![Acl::new(31, "auth", "")],
    ];
    for acl in invalid {
        assert_eq!(anon.call(&create_with_acl("/acl", 0, acl.clone())).0.err(), err(ErrorCode::InvalidAcl), "{acl:?}");
    }
    let alice_digest = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";
    let mut alice = RawClient::connect(&server.address());
    let auth =
        |user: &[u8]| Request::Auth(AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(user.to_vec()) });
    assert_eq!(alice.call(&auth(b"alice:secret")).0.err(), 0);
    let (made, _) = alice.call(&create_with_acl("/private", 0, vec![Acl::new(31, "auth", "")]));
    assert_eq!(made.err(), 0);
    let get_acl = Request::GetAcl(PathRequest { path: "/private".into() });
    let acl = GetAclResponse::decode_exact(&alice.call(&get_acl).0.body).unwrap().acl;
    assert_eq!(acl, vec![Acl::new(31, "digest", alice_digest)], "auth is expanded to the creator's digest id");
    let read = Request::GetData(PathWatchRequest { path: "/private".into(), watch: false });
    assert_eq!(anon.call(&read).0.err(), err(ErrorCode::NoAuth));
    assert_eq!(anon.call(&get_acl).0.err(), err(ErrorCode::NoAuth));
    assert_eq!(anon.call(&create("/private/child", 0)).0.err(), err(ErrorCode::NoAuth));
    assert_eq!(alice.call(&read).0.err(), 0);
    // ip scheme with a mask, and a mixed list: anyone reads, only alice administers; others see the
    // digest id masked.
    let ip_acl = vec![Acl::new(perms::READ, "ip", "127.0.0.0/8")];
    assert_eq!(alice.call(&create_with_acl("/by-ip", 0, ip_acl)).0.err(), 0);
    let read_ip = Request::GetData(PathWatchRequest { path: "/by-ip".into(), watch: false });
    assert_eq!(anon.call(&read_ip).0.err(), 0);
    let mixed = vec![Acl::new(perms::READ, "world", "anyone"), Acl::new(31, "digest", alice_digest)];
    alice.call(&create_with_acl("/mixed", 0, mixed));
    let masked =
        GetAclResponse::decode_exact(&anon.call(&Request::GetAcl(PathRequest { path: "/mixed".into() })).0.body)
            .unwrap();
    assert_eq!(masked.acl[1].id.id, "alice:x");
    let set_acl =
        Request::Write(WriteOp::SetAcl(SetAclRequest { path: "/mixed".into(), acl: open_acl(), version: -1 }));
    assert_eq!(anon.call(&set_acl).0.err(), err(ErrorCode::NoAuth));
    // The super digest (super:admin) bypasses every check.
    let mut admin = RawClient::connect(&server.address());
    assert_eq!(admin.call(&auth(b"super:admin")).0.err(), 0);
    assert_eq!(admin.call(&read).0.err(), 0);
    assert_eq!(admin.call(&set_acl).0.err(), 0);
    // An unknown scheme fails and closes the connection.
    let bad = Request::Auth(AuthPacket { auth_type: 0, scheme: "kerberos".into(), auth: Some(vec![1]) });
    assert_eq!(anon.call(&bad).0.err(), err(ErrorCode::AuthFailed));
    assert!(anon.recv().is_none());
}

#[test]
fn handshake_edge_cases() {
    let server = TestServer::start();
    let request = |session_id, passwd: Vec<u8>, read_only| ConnectRequest {
        timeout_ms: 1,
        session_id,
        passwd,
        read_only,
        ..Default::default()
    };
    let first = RawClient::connect_with(&server.address(), request(0, vec![0; 16], None)).unwrap();
    assert_eq!(first.timeout_ms, 200, "clamped up to 2 ticks (tickTime=100)");
    let big = ConnectRequest { timeout_ms: 1 << 30, ..request(0, vec![0; 16], Some(false)) };
    assert_eq!(RawClient::connect_with(&server.address(), big).unwrap().timeout_ms, 60_000, "clamped to max");
    // No readOnly byte in, none out: the ConnectResponse is 36 bytes.
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream.write_all(&frame(|out| request(0, vec![0; 16], None).encode(out))).unwrap();
    let mut len = [0; 4];
    stream.read_exact(&mut len).unwrap();
    assert_eq!(i32::from_be_bytes(len), 36);
    // Wrong password: an invalid-session response (all zeros), then close.
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let wrong = ConnectRequest { timeout_ms: 30_000, ..request(first.session_id, vec![9; 16], Some(false)) };
    stream.write_all(&frame(|out| wrong.encode(out))).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert_eq!(answer.len(), 4 + 37);
    let response = ConnectResponse::decode_exact(&answer[4..]).unwrap();
    assert_eq!((response.timeout_ms, response.session_id, response.passwd), (0, 0, vec![0; 16]));
    // A client that has seen a newer zxid than ours is closed without an answer.
    let ahead = ConnectRequest { last_zxid_seen: 1 << 40, timeout_ms: 30_000, ..request(0, vec![0; 16], Some(false)) };
    assert!(RawClient::connect_with(&server.address(), ahead).is_none());
}

#[test]
fn reattach_moves_the_session_and_closes_the_old_connection() {
    let server = TestServer::start();
    let mut old = RawClient::connect(&server.address());
    old.call(&create("/eph", 1));
    let again = ConnectRequest {
        timeout_ms: 30_000,
        session_id: old.session_id,
        passwd: old.passwd.clone(),
        read_only: Some(false),
        ..Default::default()
    };
    let mut new = RawClient::connect_with(&server.address(), again).unwrap();
    assert_eq!(new.session_id, old.session_id);
    assert!(old.recv().is_none(), "the old connection is closed");
    let (eph, _) = new.call(&Request::GetEphemerals(PathRequest { path: "/".into() }));
    assert_eq!(GetEphemeralsResponse::decode_exact(&eph.body).unwrap().ephemerals, vec!["/eph"]);
    let (closed, _) = new.call(&Request::CloseSession);
    assert_eq!(closed.err(), 0);
    assert!(new.recv().is_none(), "closeSession closes the connection after its reply");
}

#[test]
fn set_watches_reports_what_changed_while_away() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    c.call(&create("/kept", 0));
    let (changed, _) = c.call(&create("/changed", 0));
    let since = changed.header.zxid;
    let set = Request::Write(WriteOp::SetData(SetDataRequest { path: "/changed".into(), data: None, version: -1 }));
    c.call(&set);
    let mut w = RawClient::connect(&server.address());
    let request = SetWatches2 {
        relative_zxid: since,
        data_watches: vec!["/kept".into(), "/changed".into(), "/gone".into()],
        exist_watches: vec!["/kept".into(), "/not-yet".into()],
        child_watches: vec!["/kept".into()],
        ..Default::default()
    };
    let (reply, events) = w.call(&Request::SetWatches(request));
    assert_eq!(reply.header.xid, xid::SET_WATCHES);
    let events: Vec<(i32, String)> = events.into_iter().map(|e| (e.event_type, e.path)).collect();
    assert_eq!(
        events,
        vec![
            (EventType::NodeDataChanged.as_i32(), "/changed".into()),
            (EventType::NodeDeleted.as_i32(), "/gone".into()),
            (EventType::NodeCreated.as_i32(), "/kept".into()),
        ],
        "events come before the reply, in ZooKeeper's order"
    );
    // The rest were registered and fire later.
    c.call(&create("/not-yet", 0));
    c.call(&create("/kept/child", 0));
    let mut fired = [w.recv().unwrap().event(), w.recv().unwrap().event()];
    fired.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!((fired[0].event_type, fired[0].path.as_str()), (EventType::NodeChildrenChanged.as_i32(), "/kept"));
    assert_eq!((fired[1].event_type, fired[1].path.as_str()), (EventType::NodeCreated.as_i32(), "/not-yet"));
}

#[test]
fn notifications_use_xid_minus_one_and_zxid_minus_one() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    c.call(&Request::Exists(PathWatchRequest { path: "/soon".into(), watch: true }));
    let mut writer = RawClient::connect(&server.address());
    writer.call(&create("/soon", 0));
    let event = c.recv().unwrap();
    assert_eq!((event.header.xid, event.header.zxid, event.header.err), (-1, -1, 0));
    let body = event.event();
    assert_eq!((body.event_type, body.state, body.path.as_str()), (1, 3, "/soon"));
}

/// Syncs and passed checks (no txn of their own) wait for the writes sent before them and answer in
/// request order, pipelined or not, with or without a write in flight.
#[test]
fn barriers_answer_in_order_after_the_writes_before_them() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    let sync = |path: &str| Request::Sync(PathRequest { path: path.into() });
    let (first, _) = c.call(&sync("/"));
    assert_eq!(first.err(), 0, "a sync with nothing in flight");
    let set = Request::Write(WriteOp::SetData(SetDataRequest { path: "/b".into(), data: None, version: -1 }));
    let check = Request::Write(WriteOp::Check(CheckVersionRequest { path: "/b".into(), version: 1 }));
    for _ in 0..20 {
        let xids = [
            c.send(&create("/b", 0)),
            c.send(&sync("/b")),
            c.send(&set),
            c.send(&check),
            c.send(&Request::Write(WriteOp::Delete(DeleteRequest { path: "/b".into(), version: -1 }))),
            c.send(&sync("/")),
        ];
        let replies: Vec<Reply> = xids.iter().map(|_| c.recv().unwrap()).collect();
        assert_eq!(replies.iter().map(|r| r.header.xid).collect::<Vec<_>>(), xids, "in request order");
        assert!(replies.iter().all(|r| r.err() == 0), "{replies:?}");
        assert_eq!(Stat::decode_exact(&replies[3].body).unwrap().version, 1, "the check saw the setData");
        let zxids: Vec<i64> = replies.iter().map(|r| r.header.zxid).collect();
        assert!(zxids.windows(2).all(|w| w[0] <= w[1]), "never older than an earlier reply: {zxids:?}");
    }
}
