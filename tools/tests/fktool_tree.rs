//! `fktool tree` rebuilds a data directory's tree offline, exactly as recovery would, and exports it in
//! the shape of the zk38 fixture's expected-tree.jsonl (what a live ZooKeeper 3.8 served).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zk38").join(name)
}

/// A copy of a fixture data dir, so that a tool that wrongly wrote would not damage the fixture.
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

/// Exit code, stdout, stderr.
fn fktool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fktool")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap(), text(&out.stdout), text(&out.stderr))
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Every file of a directory and its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).map(|p| (p.clone(), std::fs::read(p).unwrap())).collect()
}

#[test]
fn the_fixture_exports_as_the_tree_zookeeper_served() {
    let dir = scratch("datadir");
    let (code, stdout, stderr) = fktool(&["tree", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "", "nothing to note, and no progress bar when stderr is not a terminal");
    let mut exported = lines(&stdout);
    let paths: Vec<&str> = exported.iter().map(|n| n["path"].as_str().unwrap()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted, "one line per znode, in path order");
    // What a client cannot see, added where it applies: the container and TTL kinds.
    let kinds: Vec<(String, Value, Value)> = exported
        .iter_mut()
        .filter_map(|n| {
            let n = n.as_object_mut().unwrap();
            let (container, ttl) = (n.remove("container"), n.remove("ttl"));
            (container.is_some() || ttl.is_some()).then(|| {
                (n["path"].as_str().unwrap().to_owned(), container.unwrap_or(Value::Null), ttl.unwrap_or(Value::Null))
            })
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("/cont".into(), Value::Bool(true), Value::Null),
            ("/ttl-long".into(), Value::Null, 3_600_000.into()),
            ("/ttl-seq-0000000005".into(), Value::Null, 3_600_000.into()),
        ]
    );
    let expected = std::fs::read_to_string(fixture("expected-tree.jsonl")).unwrap();
    let mut expected = lines(&expected);
    expected.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    assert_eq!(exported.len(), 1025);
    for (ours, theirs) in exported.iter().zip(&expected) {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn at_a_zxid_the_tree_is_what_recovery_had_there_and_nothing_is_written() {
    let full = scratch("datadir");
    let torn = scratch("datadir-corrupt-tail");
    let before = contents(&torn.path().join("version-2"));
    // The torn copy lost only the last txn (0x215): the full directory as of 0x214 is the same tree.
    let (code, at_214, _) = fktool(&["tree", full.path().to_str().unwrap(), "--at-zxid", "0x214"]);
    assert_eq!(code, 0);
    let (code, torn_tree, stderr) = fktool(&["tree", torn.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stderr.contains("log.1e8 ends with a torn record at offset 3582"), "{stderr}");
    assert_eq!(at_214, torn_tree);
    assert_eq!(lines(&at_214).len(), 1027, "session A's two ephemerals are still there at 0x214");
    let (code, recover, _) = fktool(&["recover", torn.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(recover.contains("would truncate the torn tail of log.1e8 at offset 3582"), "{recover}");
    assert_eq!(contents(&torn.path().join("version-2")), before, "read-only: the torn tail is left as it is");
    // Before the fuzzy snapshot.1e6's digest zxid (0x1e7) the tree comes from an older snapshot + replay;
    // /counter's version counts its setData txns up to there.
    let (_, early, _) = fktool(&["tree", full.path().to_str().unwrap(), "--at-zxid", "0x1e6", "--path", "/counter"]);
    let (_, late, _) = fktool(&["tree", full.path().to_str().unwrap(), "--path", "/counter"]);
    let version = |out: &str| lines(out)[0]["stat"]["version"].as_i64().unwrap();
    let mzxid = |out: &str| lines(out)[0]["stat"]["mzxid"].as_i64().unwrap();
    assert_eq!(version(&late), 440, "220 + 220 setData");
    assert!(mzxid(&early) <= 0x1e6 && version(&early) < 440, "{early}");
}

#[test]
fn a_subtree_and_text_data_on_request() {
    let dir = scratch("datadir");
    let (code, stdout, _) = fktool(&["tree", dir.path().to_str().unwrap(), "--path", "/app", "--utf8"]);
    assert_eq!(code, 0);
    let nodes = lines(&stdout);
    let paths: Vec<&str> = nodes.iter().map(|n| n["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/app", "/app/bin", "/app/config", "/app/config/db", "/app/config/db/replica", "/app/utf8"]);
    let utf8 = &nodes[5];
    assert_eq!((utf8["data"].as_str(), utf8["utf8"].as_bool()), (Some("zoé ☃ 雪"), Some(true)));
    // Bytes 0x00..0xFF are not UTF-8: they stay base64, with no flag.
    let bin = &nodes[1];
    assert_eq!(bin["utf8"], Value::Null);
    assert_eq!(bin["data"].as_str().unwrap().len(), 344, "256 bytes in base64");
}

#[test]
fn exit_status_two_for_usage_and_input_errors() {
    let dir = scratch("datadir");
    let data = dir.path().to_str().unwrap();
    let missing = dir.path().join("nope");
    let cases: [(&[&str], &str); 6] = [
        (&["tree", missing.to_str().unwrap()], "is not a directory"),
        (&["tree", data, "--path", "/nope"], "no znode /nope in the tree at zxid 0x215"),
        (&["tree", data, "--at-zxid", "xyz"], "not a hex zxid"),
        (&["diff", data], "give a second data directory, or --against-zxid"),
        (&["snap", "stats", missing.to_str().unwrap()], "is not a directory"),
        (&["compact", missing.to_str().unwrap()], "is not a directory"),
    ];
    for (args, message) in cases {
        let (code, _, stderr) = fktool(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
