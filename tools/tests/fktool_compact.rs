//! `fktool compact` writes one fresh snapshot from a data directory's snapshot + logs: recovery from it
//! alone rebuilds the same tree, the inputs are never changed, and Apache ZooKeeper 3.8 (Debian's
//! package, where installed) loads it and serves that tree with no digest mismatch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use fk_engine::recovery::{RecoverLimits, recover_with};
use fk_engine::tree::TreeOptions;
use fk_net::client::*;
use fk_net::jute::Jute;
use fk_tests::TestServer;
use fk_tests::java::JavaStandalone;
use fk_tests::raw::RawClient;
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zk38").join(name)
}

/// A copy of a fixture data dir in a fresh temporary directory.
fn scratch(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name).join("version-2"), &dir.path().join("version-2"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn fktool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fktool")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap(), text(&out.stdout), text(&out.stderr))
}

fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Compacts `dir` in place, then deletes what an operator's purge would: every older snapshot and the
/// logs compact reported as no longer needed. Returns the new snapshot's name.
fn compact_and_purge(dir: &Path) -> String {
    let (code, stdout, stderr) = fktool(&["compact", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let written = stdout.split_whitespace().find(|w| w.contains("snapshot.")).unwrap();
    let name = Path::new(written).file_name().unwrap().to_string_lossy().into_owned();
    for line in stdout.lines().filter(|l| l.starts_with("  ")) {
        std::fs::remove_file(line.trim()).unwrap();
    }
    for (file, _) in contents(&dir.join("version-2")) {
        if file.starts_with("snapshot.") && file != name {
            std::fs::remove_file(dir.join("version-2").join(file)).unwrap();
        }
    }
    name
}

#[test]
fn the_new_snapshot_alone_recovers_the_same_tree_and_the_inputs_stay() {
    let dir = scratch("datadir");
    let v2 = dir.path().join("version-2");
    let before = contents(&v2);
    let (code, stdout, _) = fktool(&["compact", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("snapshot.215 (1025 znodes"), "{stdout}");
    assert!(stdout.contains("from snapshot.1e6 + 47 txns"), "{stdout}");
    let purgeable: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  ")).map(str::trim).collect();
    let expected: Vec<String> =
        ["log.1", "log.b5", "log.123"].iter().map(|l| v2.join(l).display().to_string()).collect();
    assert_eq!(purgeable, expected, "log.1e8 starts before 0x215 and stays: {stdout}");
    let mut after = contents(&v2);
    assert!(after.remove("snapshot.215").is_some());
    assert_eq!(after, before, "every input file is unchanged and nothing else was left behind");
    // A second run finds the work done.
    let (code, stdout, _) = fktool(&["compact", dir.path().to_str().unwrap()]);
    assert_eq!((code, stdout.contains("nothing to compact")), (0, true), "{stdout}");
    compact_and_purge(dir.path());
    let (code, stdout, _) = fktool(&["diff", dir.path().to_str().unwrap(), fixture("datadir").to_str().unwrap()]);
    assert_eq!(code, 0, "the same znodes and sessions as the original:\n{stdout}");
    let (_, stdout, _) = fktool(&["recover", dir.path().to_str().unwrap()]);
    assert!(stdout.contains("0 txns replayed after snapshot.215"), "{stdout}");
}

#[test]
fn into_another_directory_from_a_torn_log_without_touching_it() {
    let torn = scratch("datadir-corrupt-tail");
    let before = contents(&torn.path().join("version-2"));
    let out = tempfile::tempdir().unwrap();
    let out_v2 = out.path().join("version-2");
    let (code, stdout, stderr) = fktool(&["compact", torn.path().to_str().unwrap(), "--out", out_v2.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("log.1e8 ends with a torn record at offset 3582"), "{stderr}");
    assert!(stdout.contains("snapshot.214 (1027 znodes"), "{stdout}");
    assert_eq!(contents(&torn.path().join("version-2")), before, "the torn log is left for recovery to cut");
    assert_eq!(contents(&out_v2).into_keys().collect::<Vec<_>>(), ["snapshot.214"]);
    let (code, stdout, _) = fktool(&["diff", out.path().to_str().unwrap(), torn.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn compressed_as_asked_and_read_back_by_every_command() {
    let dir = scratch("datadir");
    for method in ["gz", "snappy"] {
        let out = tempfile::tempdir().unwrap();
        let out_v2 = out.path().join("version-2");
        let args =
            ["compact", dir.path().to_str().unwrap(), "--out", out_v2.to_str().unwrap(), "--compression", method];
        let (code, stdout, stderr) = fktool(&args);
        assert_eq!(code, 0, "{stderr}");
        let name = format!("snapshot.215.{method}");
        assert!(stdout.contains(&format!("{name} (1025 znodes")), "{stdout}");
        assert_eq!(contents(&out_v2).into_keys().collect::<Vec<_>>(), [name.as_str()]);
        let (code, stdout, _) = fktool(&["diff", out.path().to_str().unwrap(), dir.path().to_str().unwrap()]);
        assert_eq!(code, 0, "{method}: the same state as the original:\n{stdout}");
        let (code, stdout, stderr) = fktool(&["snap", "verify", out_v2.join(&name).to_str().unwrap()]);
        assert_eq!(code, 0, "{method}: {stdout}{stderr}");
    }
    let (code, _, stderr) = fktool(&["compact", dir.path().to_str().unwrap(), "--compression", "lz4"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("'lz4' is not gz, snappy or empty"), "{stderr}");
}

/// `fktool tree`'s export without the fields a client cannot see, for comparison with a live server.
fn exported_tree(dir: &Path) -> Vec<Value> {
    let (code, stdout, stderr) = fktool(&["tree", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let strip = |mut node: Value| {
        for key in ["container", "ttl", "system", "utf8"] {
            node.as_object_mut().unwrap().remove(key);
        }
        node
    };
    stdout.lines().map(|l| strip(serde_json::from_str(l).unwrap())).collect()
}

fn call<T: Jute>(c: &mut RawClient, request: &Request) -> T {
    let (reply, _) = c.call(request);
    assert_eq!(reply.err(), 0, "{request:?}");
    T::decode_exact(&reply.body).unwrap()
}

/// Every znode a server serves, in `fktool tree`'s shape, walked as a client authenticated as the
/// fixture's digest user (alice:secret) from 127.0.0.1, which every ACL in the tests lets read.
fn served_tree(address: &str) -> Vec<Value> {
    let mut c = RawClient::connect(address);
    let auth = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"alice:secret".to_vec()) };
    assert_eq!(c.call(&Request::Auth(auth)).0.err(), 0);
    let mut nodes = Vec::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(path) = stack.pop() {
        let read = PathWatchRequest { path: path.clone(), watch: false };
        let data: GetDataResponse = call(&mut c, &Request::GetData(read.clone()));
        let acl: GetAclResponse = call(&mut c, &Request::GetAcl(PathRequest { path: path.clone() }));
        let children: GetChildrenResponse = call(&mut c, &Request::GetChildren(read));
        let prefix = if path == "/" { "" } else { &path };
        stack.extend(children.children.iter().map(|name| format!("{prefix}/{name}")));
        let s = data.stat;
        nodes.push(json!({
            "path": path,
            "data": base64::engine::general_purpose::STANDARD.encode(data.data.unwrap_or_default()),
            "stat": {"czxid": s.czxid, "mzxid": s.mzxid, "ctime": s.ctime, "mtime": s.mtime,
                     "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
                     "ephemeralOwner": s.ephemeral_owner, "dataLength": s.data_length,
                     "numChildren": s.num_children, "pzxid": s.pzxid},
            "acl": acl.acl.iter().map(|a| json!({"perms": a.perms, "scheme": a.id.scheme, "id": a.id.id}))
                .collect::<Vec<_>>(),
        }));
    }
    nodes.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    nodes
}

/// Compacts `dir` (and purges what that makes unnecessary), starts ZooKeeper on it and checks: it serves
/// exactly the tree `fktool tree` rebuilt from the original files, with no digest mismatch; and after a
/// write on ZooKeeper, the digest it logs (computed over the tree it loaded from our snapshot) matches
/// the tree our recovery rebuilds.
fn zookeeper_serves_the_compacted(dir: &Path) {
    let expected = exported_tree(dir);
    let snapshot = compact_and_purge(dir);
    let options = ["-Dzookeeper.extendedTypesEnabled=true"];
    let zk = JavaStandalone::start_with(Some(dir), "maxSessionTimeout=60000", &options)
        .expect("the caller checked that ZooKeeper can run here");
    let loaded = zk.log_text().lines().any(|l| l.contains("Reading snapshot") && l.ends_with(&snapshot));
    assert!(loaded, "ZooKeeper loads {snapshot}:\n{}", zk.log_text());
    let address = zk.address();
    let served = served_tree(&address);
    assert_eq!(served.len(), expected.len());
    for (theirs, ours) in served.iter().zip(&expected) {
        assert_eq!(theirs, ours);
    }
    let mntr = zk.four_letter("mntr");
    assert!(mntr.contains("zk_digest_mismatches_count\t0\n"), "{mntr}");
    let mut c = RawClient::connect(&address);
    let create = CreateRequest {
        path: "/after-compact".into(),
        data: Some(b"z".to_vec()),
        acl: vec![Acl::new(perms::ALL, "world", "anyone")],
        flags: 0,
    };
    assert_eq!(c.call(&Request::Write(WriteOp::Create { op: OpCode::Create, request: create })).0.err(), 0);
    drop(zk);
    let v2 = dir.join("version-2");
    let limits = RecoverLimits { up_to_zxid: None, read_only: true, ..RecoverLimits::default() };
    let recovered = recover_with(&v2, &v2, TreeOptions::fixed_seed(true), limits).unwrap();
    assert!(recovered.tree.get("/after-compact").is_some());
    assert!(
        recovered.digests_checked >= 1 && recovered.digest_mismatches == 0,
        "{} digests checked",
        recovered.digests_checked
    );
}

#[test]
fn zookeeper_loads_the_compacted_fixture() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let dir = scratch("datadir");
    zookeeper_serves_the_compacted(dir.path());
}

#[test]
fn zookeeper_loads_a_compacted_ferrokeeper_directory() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    // snapCount=20: several snapshots and logs to compact.
    let mut server = TestServer::with_config("snapCount=20\nextendedTypesEnabled=true");
    let open = vec![Acl::new(perms::ALL, "world", "anyone")];
    let alice = vec![Acl::new(perms::ALL, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")];
    let mut c = RawClient::connect(&server.address());
    let mut create = |path: &str, data: &[u8], flags: i32, acl: &Vec<Acl>| {
        let request = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: acl.clone(), flags };
        let (reply, _) = c.call(&Request::Write(WriteOp::Create { op: OpCode::Create, request }));
        assert_eq!(reply.err(), 0, "create {path}");
    };
    create("/app", b"hello", 0, &open);
    for i in 0..45 {
        create("/app/seq-", format!("{i}").as_bytes(), 2, &open);
    }
    create("/app/eph", b"mine", 1, &open);
    create("/secret", b"s", 0, &alice);
    create("/cont", b"", 4, &open);
    create("/cont/child", b"", 0, &open);
    let set = SetDataRequest { path: "/app".into(), data: Some(b"world".to_vec()), version: 0 };
    assert_eq!(c.call(&Request::Write(WriteOp::SetData(set))).0.err(), 0);
    // The session stays open: its ephemeral and session (30 s) travel in the snapshot.
    server.kill();
    let snapshots = contents(&server.data_dir().join("version-2")).into_keys().filter(|f| f.starts_with("snapshot."));
    assert!(snapshots.count() >= 2, "ferrokeeper wrote snapshots to compact");
    zookeeper_serves_the_compacted(&server.data_dir());
}
