//! The model against the specification: a scripted history recorded against Apache ZooKeeper 3.8 (where
//! Debian's package is installed) and against ferrokeeper, each checked against the server's own txn
//! log. Every reply (error codes, sequential names, full stats, watch events) must be what the model
//! derives from that log, so a model that drifted from ZooKeeper fails here, not in a simulator seed.

use std::path::{Path, PathBuf};

use fk_net::client::{
    Acl, CheckVersionRequest, CreateRequest, DeleteRequest, OpCode, PathRequest, PathWatchRequest, Request, Response,
    SetDataRequest, WatcherEvent, WriteOp, xid,
};
use fk_net::jute::Jute;
use fk_net::txn::Txn;

use super::{Summary, check};
use crate::java::JavaStandalone;
use crate::raw::RawClient;
use crate::sim::history::{History, OpId, OpKind};

/// Records every request of the script, its reply and the notifications before it.
struct Recorder {
    history: History,
    now: u64,
}

impl Recorder {
    fn call(&mut self, client: &mut RawClient, request: Request) {
        let id = self.send(client, &request);
        self.receive(client, id, &request);
    }

    fn send(&mut self, client: &mut RawClient, request: &Request) -> (i32, OpId) {
        let xid = client.send(request);
        self.now += 1;
        let kind = OpKind::from_request(request).expect("the script sends only modelled requests");
        (xid, self.history.invoke(self.now, 0, client.session_id, xid, kind))
    }

    fn receive(&mut self, client: &mut RawClient, (xid, id): (i32, OpId), request: &Request) {
        loop {
            let reply = client.recv().expect("the server closed the connection");
            self.now += 1;
            if reply.header.xid == xid::NOTIFICATION {
                let event = WatcherEvent::decode_exact(&reply.body).expect("a notification");
                self.history.watch_event(self.now, client.session_id, &event.path, event.event_type);
                continue;
            }
            assert_eq!(reply.header.xid, xid, "replies in request order");
            let body = (reply.header.err == 0).then(|| Response::decode(request.op_code(), &reply.body).expect("body"));
            self.history.complete_reply(id, self.now, &reply.header, body.as_ref());
            if let Some(kind) = OpKind::watch_left(request, &self.history.op(id).outcome) {
                self.history.watch_set(id, kind);
            }
            return;
        }
    }
}

fn create_op(path: &str, data: &[u8], flags: i32, op: OpCode) -> WriteOp {
    let acl = vec![Acl::new(31, "world", "anyone")];
    WriteOp::Create { op, request: CreateRequest { path: path.into(), data: Some(data.to_vec()), acl, flags } }
}

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Write(create_op(path, data, flags, OpCode::Create2))
}

fn set_op(path: &str, data: &[u8], version: i32) -> WriteOp {
    WriteOp::SetData(SetDataRequest { path: path.into(), data: Some(data.to_vec()), version })
}

fn delete_op(path: &str, version: i32) -> WriteOp {
    WriteOp::Delete(DeleteRequest { path: path.into(), version })
}

fn watch(path: &str) -> PathWatchRequest {
    PathWatchRequest { path: path.into(), watch: true }
}

/// Creates of every mode, each error a write can get, multis that succeed and fail, reads with
/// stats, watches of both kinds, a session close taking its ephemeral, and a pipelined burst.
fn run_script(address: &str) -> History {
    let (mut a, mut b, mut c) = (RawClient::connect(address), RawClient::connect(address), RawClient::connect(address));
    let mut r = Recorder { history: History::new(), now: 0 };
    let r = &mut r;
    r.call(&mut a, Request::Write(create_op("/app", b"v0", 0, OpCode::Create)));
    r.call(&mut a, Request::Write(set_op("/app", b"v1", 0)));
    r.call(&mut b, create("/app/lock-", b"", 3));
    r.call(&mut b, Request::Write(set_op("/app", b"no", 5)));
    r.call(&mut a, Request::GetChildren2(watch("/app")));
    r.call(&mut a, Request::Sync(PathRequest { path: "/".into() }));
    r.call(&mut a, Request::Multi(vec![create_op("/app/m", b"x", 0, OpCode::Create), set_op("/app/m", b"y", 0)]));
    r.call(&mut a, Request::GetData(watch("/app")));
    r.call(&mut b, Request::Write(set_op("/app", b"v2", -1)));
    r.call(&mut a, Request::Exists(watch("/app")));
    for (path, flags) in [("/missing/x", 0), ("/app", 0), ("/app/lock-0000000000/child", 0), ("bad", 0), ("/", 0)] {
        r.call(&mut b, create(path, b"", flags));
    }
    for (path, version) in [("/app", -1), ("/app/m", 9), ("/zookeeper", -1), ("/", -1)] {
        r.call(&mut b, Request::Write(delete_op(path, version)));
    }
    let check_op = WriteOp::Check(CheckVersionRequest { path: "/app".into(), version: 7 });
    r.call(&mut a, Request::Multi(vec![check_op, create_op("/app/n", b"", 0, OpCode::Create)]));
    r.call(&mut a, Request::Multi(vec![create_op("/app/n", b"", 0, OpCode::Create2), delete_op("/app/nope", -1)]));
    r.call(&mut a, create("/app/m/deep", b"d", 0));
    r.call(&mut a, Request::Exists(watch("/app/lock-0000000000")));
    b.send(&Request::CloseSession);
    b.recv().expect("closeSession reply");
    r.call(&mut a, Request::Exists(watch("/app/lock-0000000000")));
    for path in ["/", "/zookeeper"] {
        r.call(&mut a, Request::GetData(PathWatchRequest { path: path.into(), watch: false }));
        r.call(&mut a, Request::GetChildren2(PathWatchRequest { path: path.into(), watch: false }));
    }
    r.call(&mut a, Request::Write(delete_op("/app/m/deep", -1)));
    r.call(&mut a, Request::Write(delete_op("/app/m", 1)));
    for (path, flags) in [("/app/s-", 2), ("/app/e-", 3), ("/app/", 2), ("/app/./x", 0), ("/app//x", 0)] {
        r.call(&mut a, create(path, b"", flags));
    }
    r.call(&mut a, Request::Write(set_op("/zookeeper/quota", b"q", -1)));
    r.call(&mut a, Request::GetData(watch("/app")));
    // Watches of another session: exists on a missing node, then a child and a data watch on it.
    r.call(&mut c, Request::Exists(watch("/w")));
    r.call(&mut a, create("/w", b"", 0));
    r.call(&mut c, Request::GetChildren(watch("/w")));
    r.call(&mut c, Request::GetData(watch("/w")));
    r.call(&mut a, create("/w/k", b"", 0));
    r.call(&mut c, Request::GetChildren(watch("/w")));
    r.call(&mut a, Request::Multi(vec![delete_op("/w/k", -1), delete_op("/w", -1)]));
    r.call(&mut c, Request::Exists(watch("/w")));
    let again = create_op("/t", b"again", 0, OpCode::Create);
    r.call(&mut a, Request::Multi(vec![create_op("/t", b"", 0, OpCode::Create), delete_op("/t", 0), again]));
    r.call(&mut a, Request::GetChildren2(PathWatchRequest { path: "/".into(), watch: false }));
    // Pipelined: all sent before any reply is read.
    let burst = [
        create("/p", b"1", 0),
        Request::GetData(watch("/p")),
        Request::Write(set_op("/p", b"2", 0)),
        Request::GetChildren(watch("/")),
    ];
    let sent: Vec<_> = burst.iter().map(|request| r.send(&mut a, request)).collect();
    for (request, id) in burst.iter().zip(sent) {
        r.receive(&mut a, id, request);
    }
    r.history.clone()
}

/// Every txn in `data_dir`'s log files, in zxid order.
fn committed_log(data_dir: &Path) -> Vec<Txn> {
    let dir = data_dir.join("version-2");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("log.")))
        .collect();
    files.sort();
    let read = |p: &PathBuf| fk_engine::log::reader::read_log(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    files.iter().flat_map(|p| read(p).records).map(|record| record.txn).collect()
}

fn assert_covers_script(summary: &Summary) {
    assert_eq!(summary.writes_acknowledged, 32, "{summary:?}");
    assert_eq!(summary.reads_checked, 18, "{summary:?}");
    assert_eq!(summary.watch_events_checked, 8, "{summary:?}");
}

#[test]
fn zookeeper_replies_agree_with_the_model_of_its_own_log() {
    let Some(zookeeper) = JavaStandalone::start(None, "") else { return };
    let history = run_script(&zookeeper.address());
    let log = committed_log(zookeeper.data_dir());
    let summary = check(&history, &log).unwrap_or_else(|v| panic!("ZooKeeper 3.8 disagrees with the model:\n{v}"));
    assert_covers_script(&summary);
}

#[test]
fn ferrokeeper_replies_agree_with_the_model_of_its_own_log() {
    let server = crate::TestServer::start();
    let history = run_script(&server.address());
    let log = committed_log(&server.data_dir());
    let summary = check(&history, &log).unwrap_or_else(|v| panic!("ferrokeeper disagrees with the model:\n{v}"));
    assert_covers_script(&summary);
}
