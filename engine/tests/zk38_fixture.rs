//! Apache ZooKeeper 3.8's own data directory (tests/fixtures/zk38, see its README) recovers to exactly
//! the tree ZooKeeper dumped, and its corrupted copies behave as specified.

use std::path::{Path, PathBuf};

use base64::Engine;
use fk_engine::recovery::{RecoveryError, recover};
use fk_engine::tree::{DataTree, EphemeralKind};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zk38").join(name)
}

/// Copies a fixture data dir so a test may modify it (recovery truncates torn tails).
fn scratch(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("version-2");
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(fixture(name).join("version-2")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    dir
}

fn recover_dir(dir: &Path) -> Result<fk_engine::recovery::Recovered, RecoveryError> {
    let v2 = dir.join("version-2");
    recover(&v2, &v2, fk_engine::tree::TreeOptions::fixed_seed(true))
}

/// Compares every node against expected-tree.jsonl: data, all 11 Stat fields, ACLs.
fn assert_matches_expected_tree(tree: &DataTree) {
    let expected = std::fs::read_to_string(fixture("expected-tree.jsonl")).unwrap();
    let mut count = 0;
    for line in expected.lines() {
        let node: serde_json::Value = serde_json::from_str(line).unwrap();
        let path = node["path"].as_str().unwrap();
        let actual = tree.get(path).unwrap_or_else(|| panic!("{path} missing"));
        let data = base64::engine::general_purpose::STANDARD.decode(node["data"].as_str().unwrap()).unwrap();
        assert_eq!(actual.data.as_deref().unwrap_or_default(), data.as_slice(), "data of {path}");
        let stat = tree.client_stat(actual);
        let s = &node["stat"];
        let expected_stat = [
            s["czxid"].as_i64(),
            s["mzxid"].as_i64(),
            s["ctime"].as_i64(),
            s["mtime"].as_i64(),
            s["version"].as_i64(),
            s["cversion"].as_i64(),
            s["aversion"].as_i64(),
            s["ephemeralOwner"].as_i64(),
            s["dataLength"].as_i64(),
            s["numChildren"].as_i64(),
            s["pzxid"].as_i64(),
        ]
        .map(Option::unwrap);
        let actual_stat = [
            stat.czxid,
            stat.mzxid,
            stat.ctime,
            stat.mtime,
            stat.version as i64,
            stat.cversion as i64,
            stat.aversion as i64,
            stat.ephemeral_owner,
            stat.data_length as i64,
            stat.num_children as i64,
            stat.pzxid,
        ];
        assert_eq!(actual_stat, expected_stat, "stat of {path}");
        let acl: Vec<(i64, String, String)> =
            tree.acl(actual).iter().map(|a| (a.perms as i64, a.id.scheme.clone(), a.id.id.clone())).collect();
        let expected_acl: Vec<(i64, String, String)> = node["acl"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (a["perms"].as_i64().unwrap(), a["scheme"].as_str().unwrap().into(), a["id"].as_str().unwrap().into())
            })
            .collect();
        assert_eq!(acl, expected_acl, "ACL of {path}");
        count += 1;
    }
    assert_eq!(count, 1025);
    assert_eq!(tree.node_count(), 1025, "no extra nodes");
}

#[test]
fn zookeepers_data_dir_recovers_to_the_same_tree() {
    let dir = scratch("datadir");
    let recovered = recover_dir(dir.path()).unwrap();
    assert!(recovered.snapshot.unwrap().ends_with("snapshot.1e6"));
    assert!(recovered.truncated.is_none());
    let tree = &recovered.tree;
    assert_eq!(tree.last_processed_zxid(), 0x215);
    assert_eq!(recovered.digest_mismatches, 0, "our tree digest equals the one ZooKeeper logged after every txn");
    assert!(recovered.digests_checked >= 40, "{} digests checked", recovered.digests_checked);
    assert_matches_expected_tree(tree);
    let sessions: Vec<(i64, i32)> = tree.sessions().collect();
    assert_eq!(sessions, vec![(0x0100_007e_a1af_0001, 30000)], "only session B is open");
    let mut b: Vec<&str> = tree.ephemerals_of(0x0100_007e_a1af_0001).collect();
    b.sort();
    assert_eq!(b, vec!["/live/ephB", "/live/member-0000000001", "/queue/lock-0000000006"]);
    let ttl = tree.get("/ttl-long").unwrap();
    assert_eq!(tree.ephemeral_kind(ttl), EphemeralKind::Ttl(3_600_000));
    assert_eq!(tree.ephemeral_kind(tree.get("/cont").unwrap()), EphemeralKind::Container);
}

#[test]
fn every_snapshot_replays_to_the_same_tree() {
    // Forcing replay from each older snapshot exercises idempotent replay over fuzzy snapshots
    // (snapshot.b3 carries effects of txn 0xb4) and replay of every txn type, multis included.
    for keep in ["snapshot.0", "snapshot.b3", "snapshot.121"] {
        let dir = scratch("datadir");
        for entry in std::fs::read_dir(dir.path().join("version-2")).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.starts_with("snapshot.") && name != keep {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        let recovered = recover_dir(dir.path()).unwrap();
        assert!(recovered.snapshot.as_ref().unwrap().ends_with(keep));
        assert_eq!(recovered.tree.last_processed_zxid(), 0x215, "from {keep}");
        assert_eq!(recovered.digest_mismatches, 0, "replay from {keep} matches every logged digest");
        assert!(recovered.digests_checked > 40, "from {keep}: {} digests checked", recovered.digests_checked);
        assert_matches_expected_tree(&recovered.tree);
    }
}

#[test]
fn a_torn_tail_is_truncated_and_the_last_complete_txn_wins() {
    let dir = scratch("datadir-corrupt-tail");
    let recovered = recover_dir(dir.path()).unwrap();
    let (path, offset) = recovered.truncated.expect("the torn tail is reported");
    assert!(path.ends_with("log.1e8"));
    assert_eq!(offset, 3582, "the torn closeSession record starts at 3582");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 3582);
    let tree = &recovered.tree;
    assert_eq!(tree.last_processed_zxid(), 0x214);
    // The lost closeSession leaves session A and its two ephemerals alive, as ZooKeeper finds them.
    assert_eq!(tree.session_timeout(0x0100_007e_a1af_0000), Some(10000));
    assert!(tree.get("/app/ephA").is_some() && tree.get("/queue/lock-0000000005").is_some());
    assert_eq!(tree.node_count() + 1, 1028, "ZooKeeper's srvr Node count: 1028");
    // A second recovery finds a clean log.
    assert!(recover_dir(dir.path()).unwrap().truncated.is_none());
}

#[test]
fn a_flipped_byte_in_a_log_that_must_be_replayed_stops_recovery() {
    let dir = scratch("datadir-corrupt-middle");
    // As shipped, log.1 is older than every log the newest snapshot needs: recovery never reads it.
    assert_eq!(recover_dir(dir.path()).unwrap().tree.last_processed_zxid(), 0x215);
    for name in ["snapshot.b3", "snapshot.121", "snapshot.1e6"] {
        std::fs::remove_file(dir.path().join("version-2").join(name)).unwrap();
    }
    let err = recover_dir(dir.path()).err().expect("corruption must stop recovery").to_string();
    assert!(
        err.contains("log.1: the record at offset 138 (zxid 0x3, after 0x2) is damaged (checksum mismatch"),
        "{err}"
    );
    assert!(err.contains("fktool log verify"), "{err}");
}

#[test]
fn missing_or_corrupt_newest_snapshot_falls_back_to_an_older_one() {
    let dir = scratch("datadir");
    let newest = dir.path().join("version-2/snapshot.1e6");
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes[5000] ^= 0xff;
    std::fs::write(&newest, bytes).unwrap();
    let recovered = recover_dir(dir.path()).unwrap();
    assert!(recovered.snapshot.unwrap().ends_with("snapshot.121"));
    assert_matches_expected_tree(&recovered.tree);
    std::fs::remove_file(&newest).unwrap();
    std::fs::write(dir.path().join("version-2/snapshot.121"), b"truncated").unwrap();
    let recovered = recover_dir(dir.path()).unwrap();
    assert!(recovered.snapshot.unwrap().ends_with("snapshot.b3"));
    assert_matches_expected_tree(&recovered.tree);
}

#[test]
fn logs_without_any_usable_snapshot_are_refused_unless_they_start_at_zxid_1() {
    let dir = scratch("datadir");
    let v2 = dir.path().join("version-2");
    for entry in std::fs::read_dir(&v2).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("snapshot.") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    // log.1 starts at zxid 1: replaying everything from an empty tree loses nothing.
    assert_matches_expected_tree(&recover_dir(dir.path()).unwrap().tree);
    std::fs::remove_file(v2.join("log.1")).unwrap();
    let err = recover_dir(dir.path()).err().unwrap().to_string();
    assert!(err.contains("logs start at zxid 0xb5"), "{err}");
}

#[test]
fn an_empty_or_missing_directory_is_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let recovered = recover_dir(dir.path()).unwrap();
    assert!(recovered.fresh);
    assert_eq!(recovered.tree.last_processed_zxid(), 0);
    assert_eq!(recovered.tree.node_count(), 4);
}

#[test]
fn a_bit_flipped_anywhere_in_a_snapshot_is_an_error_not_a_panic() {
    // Nodes are decoded before the seal's checksum is reached, so every field a flip can reach
    // (lengths, paths, ACL indexes) must be checked as it is read.
    let original = std::fs::read(fixture("datadir/version-2/snapshot.b3")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.b3");
    for offset in 0..original.len() {
        let mut bytes = original.clone();
        bytes[offset] ^= 1 << (offset % 8);
        std::fs::write(&path, &bytes).unwrap();
        let loaded = fk_engine::snap::load_snapshot(&path, 0xb3, fk_engine::tree::TreeOptions::fixed_seed(true));
        assert!(loaded.is_err(), "a bit flipped at offset {offset} went unnoticed");
    }
}
