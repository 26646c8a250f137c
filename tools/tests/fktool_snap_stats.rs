//! `fktool snap stats`: sizes, biggest subtrees, widest nodes, ephemerals per session and ACL use, of a
//! snapshot file as it is or of a data directory's recovered state.

use std::path::{Path, PathBuf};
use std::process::Command;

use fk_engine::snap::{Compression, TreeAccess, write_snapshot};
use fk_engine::tree::{CONTAINER_OWNER, DataTree, TreeOptions};
use fk_net::client::{Acl, perms};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zk38").join(name)
}

fn stats(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_fktool")).args(["snap", "stats", "--json"]).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Owned(DataTree);

impl TreeAccess for Owned {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.0)
    }
}

#[test]
fn the_fixture_after_recovery() {
    let s = stats(&[fixture("datadir").to_str().unwrap(), "--top", "2"]);
    assert_eq!(s["last_zxid"], "0x215");
    assert_eq!((s["nodes"].as_u64(), s["data_bytes"].as_u64()), (Some(1025), Some(3304)));
    assert_eq!(
        (s["ephemerals"].as_u64(), s["containers"].as_u64(), s["ttl_nodes"].as_u64()),
        (Some(3), Some(1), Some(2))
    );
    // Session A closed at 0x215; B is open with its three ephemerals.
    assert_eq!(s["sessions"], json!([{"id": "0x100007ea1af0001", "timeout_ms": 30000, "ephemerals": 3}]));
    assert_eq!(s["orphan_ephemerals"], json!([]));
    // 1,000 bulk nodes less 11 deleted, plus /bulk itself.
    assert_eq!(
        s["top_subtrees_by_nodes"],
        json!([{"path": "/bulk", "nodes": 990, "bytes": 2902}, {"path": "/queue", "nodes": 7, "bytes": 21}])
    );
    assert_eq!(s["top_subtrees_by_bytes"][1], json!({"path": "/app", "nodes": 6, "bytes": 330}));
    assert_eq!(s["top_by_children"], json!([{"path": "/bulk", "children": 989}, {"path": "/", "children": 12}]));
    let alice = "digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=:cdrwa";
    assert_eq!(
        s["acls"],
        json!([
            {"acl": ["world:anyone:cdrwa"], "nodes": 1019},
            {"acl": [alice], "nodes": 2},
            // /acl/changed (setACL to READ) and /zookeeper/config, world-readable only in ZooKeeper too.
            {"acl": ["world:anyone:r"], "nodes": 2},
            {"acl": ["ip:127.0.0.1:cdrwa"], "nodes": 1},
            {"acl": ["world:anyone:r", alice], "nodes": 1},
        ])
    );
    assert_eq!(s["schemes"], json!({"digest": 3, "ip": 1, "world": 1022}));
}

#[test]
fn a_snapshot_file_as_it_is() {
    // snapshot.b3 alone: both sessions still open, the reaper has not run yet.
    let s = stats(&[fixture("datadir/version-2/snapshot.b3").to_str().unwrap()]);
    assert_eq!(s["last_zxid"], "0xb3");
    assert_eq!(s["nodes"], 39);
    assert_eq!(
        s["sessions"],
        json!([
            {"id": "0x100007ea1af0001", "timeout_ms": 30000, "ephemerals": 3},
            {"id": "0x100007ea1af0000", "timeout_ms": 10000, "ephemerals": 2},
        ])
    );
    assert_eq!((s["containers"].as_u64(), s["ttl_nodes"].as_u64()), (Some(2), Some(3)));
}

#[test]
fn an_engine_written_snapshot_with_an_orphan_ephemeral() {
    let open = [Acl::new(perms::ALL, "world", "anyone")];
    let mut tree = DataTree::new(TreeOptions::fixed_seed(true));
    tree.add_session(0x5, 6000);
    tree.create_node("/w", Some(&[7; 100]), &open, 0, -1, 1, 0).unwrap();
    for (i, owner) in [0, 0x5, 0x5, 0x9, CONTAINER_OWNER].into_iter().enumerate() {
        tree.create_node(&format!("/w/{i}"), Some(b"ab"), &open, owner, -1, 2 + i as i64, 0).unwrap();
    }
    tree.set_last_processed_zxid(6);
    let dir = tempfile::tempdir().unwrap();
    let written = write_snapshot(&Owned(tree), dir.path(), false, Compression::None).unwrap();
    let s = stats(&[written.path.to_str().unwrap(), "--top", "1"]);
    assert_eq!((s["nodes"].as_u64(), s["data_bytes"].as_u64()), (Some(10), Some(110)));
    assert_eq!(s["sessions"], json!([{"id": "0x5", "timeout_ms": 6000, "ephemerals": 2}]));
    // A fuzzy snapshot can hold an ephemeral whose session's close came after the session list was read.
    assert_eq!(s["orphan_ephemerals"], json!([{"id": "0x9", "ephemerals": 1}]));
    assert_eq!(s["top_subtrees_by_nodes"], json!([{"path": "/w", "nodes": 6, "bytes": 110}]));
    assert_eq!(s["top_by_children"], json!([{"path": "/w", "children": 5}]));
    assert_eq!(s["containers"], 1);
}
