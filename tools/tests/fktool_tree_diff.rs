//! `fktool diff`: what differs between two data directories, or one directory at two zxids, with exit
//! status 0 = the same and 1 = different.

use std::path::{Path, PathBuf};
use std::process::Command;

use fk_engine::snap::{Compression, TreeAccess, write_snapshot};
use fk_engine::tree::{CONTAINER_OWNER, DataTree, TreeOptions};
use fk_net::client::{Acl, perms};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zk38").join(name)
}

fn fktool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fktool")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap(), text(&out.stdout), text(&out.stderr))
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

struct Owned(DataTree);

impl TreeAccess for Owned {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.0)
    }
}

fn open() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

/// Session 0x11 with ephemeral /a/e; /a ("one"), /b ("x"), all created at time 1000, last zxid 3.
fn base() -> DataTree {
    let mut tree = DataTree::new(TreeOptions::fixed_seed(true));
    tree.add_session(0x11, 30000);
    tree.create_node("/a", Some(b"one"), &open(), 0, -1, 1, 1000).unwrap();
    tree.create_node("/a/e", None, &open(), 0x11, -1, 2, 1000).unwrap();
    tree.create_node("/b", Some(b"x"), &open(), 0, -1, 3, 1000).unwrap();
    tree.set_last_processed_zxid(3);
    tree
}

/// A data dir holding one snapshot of `tree`, written by the engine's snapshot writer.
fn data_dir(tree: DataTree) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("version-2");
    std::fs::create_dir(&v2).unwrap();
    write_snapshot(&Owned(tree), &v2, false, Compression::None).unwrap();
    dir
}

type Change = fn(&mut DataTree);

#[test]
fn each_kind_of_change_is_named_with_its_fields() {
    let cases: [(&str, Change, Vec<Value>); 6] = [
        ("nothing", |_| {}, vec![]),
        (
            "setData",
            |t| {
                t.set_data("/a", Some(b"two"), 1, 4, 2000).unwrap();
            },
            vec![json!({"change": "changed", "path": "/a", "fields": [
                {"field": "data", "before": "3 bytes \"one\"", "after": "3 bytes \"two\""},
                {"field": "version", "before": "0", "after": "1"},
                {"field": "mzxid", "before": "0x1", "after": "0x4"},
                {"field": "mtime", "before": "1000", "after": "2000"}]})],
        ),
        (
            "setACL",
            |t| {
                t.set_acl("/b", &[Acl::new(perms::READ, "ip", "10.0.0.1")], 1).unwrap();
            },
            vec![json!({"change": "changed", "path": "/b", "fields": [
                {"field": "acl", "before": "world:anyone:cdrwa", "after": "ip:10.0.0.1:r"},
                {"field": "aversion", "before": "0", "after": "1"}]})],
        ),
        (
            "delete and create",
            |t| {
                t.delete_node("/b", 4).unwrap();
                t.create_node("/c", None, &open(), 0, -1, 5, 3000).unwrap();
            },
            vec![
                json!({"change": "changed", "path": "/", "fields": [
                    {"field": "cversion", "before": "1", "after": "3"},
                    {"field": "pzxid", "before": "0x3", "after": "0x5"}]}),
                json!({"change": "removed", "path": "/b"}),
                json!({"change": "added", "path": "/c"}),
            ],
        ),
        (
            "a persistent node recreated as a container",
            |t| {
                t.delete_node("/b", 3).unwrap();
                t.create_node("/b", Some(b"x"), &open(), CONTAINER_OWNER, -1, 3, 1000).unwrap();
            },
            vec![
                json!({"change": "changed", "path": "/", "fields": [{"field": "cversion", "before": "1", "after": "3"}]}),
                json!({"change": "changed", "path": "/b", "fields": [
                    {"field": "owner", "before": "Persistent", "after": "Container"}]}),
            ],
        ),
        (
            "sessions",
            |t| {
                t.add_session(0x22, 10000);
                t.add_session(0x11, 4000);
            },
            vec![
                json!({"change": "session_timeout", "session": "0x11", "before": 30000, "after": 4000}),
                json!({"change": "session_added", "session": "0x22", "timeout_ms": 10000}),
            ],
        ),
    ];
    let a = data_dir(base());
    for (name, change, expected) in cases {
        let mut tree = base();
        change(&mut tree);
        let b = data_dir(tree);
        let (code, stdout, stderr) =
            fktool(&["diff", a.path().to_str().unwrap(), b.path().to_str().unwrap(), "--json"]);
        assert_eq!(json_lines(&stdout), expected, "{name}: {stderr}");
        assert_eq!(code, if expected.is_empty() { 0 } else { 1 }, "{name}");
    }
}

#[test]
fn one_directory_at_two_zxids() {
    let dir = fixture("datadir");
    let (code, stdout, _) =
        fktool(&["diff", dir.to_str().unwrap(), "--at-zxid", "0x210", "--against-zxid", "0x215", "--json"]);
    assert_eq!(code, 1);
    let summary: Vec<(String, String)> = json_lines(&stdout)
        .iter()
        .map(|d| {
            let what = d.get("path").or_else(|| d.get("session")).unwrap().as_str().unwrap().to_owned();
            (d["change"].as_str().unwrap().to_owned(), what)
        })
        .collect();
    let expected = [
        ("changed", "/"),
        ("changed", "/app"),
        // Session A's closeSession (0x215) deletes its ephemerals; the reaper's deleteContainer txns
        // remove /cont-reaped and /ttl-short; two bulk nodes get setData.
        ("removed", "/app/ephA"),
        ("changed", "/bulk/n0809"),
        ("changed", "/bulk/n0910"),
        ("removed", "/cont-reaped"),
        ("changed", "/queue"),
        ("removed", "/queue/lock-0000000005"),
        ("removed", "/ttl-short"),
        ("session_removed", "0x100007ea1af0000"),
    ]
    .map(|(c, p)| (c.to_owned(), p.to_owned()));
    assert_eq!(summary, expected);
    let (code, stdout, _) = fktool(&["diff", dir.to_str().unwrap(), dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.ends_with("the same\n"), "{stdout}");
}
