//! SNAP sync streams: what `send_snapshot` writes, `receive_snapshot` turns back into a snapshot file that
//! loads to the same tree; the body is the one our snapshot files (and ZooKeeper 3.8's) hold; damaged,
//! forged or unsigned streams are refused without leaving a snapshot behind; and a send taken while
//! another thread writes to the tree replays to that thread's final tree.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use fk_engine::snap::{
    Compression, SIGNATURE, StreamError, StreamItem, StreamStats, TreeAccess, load_snapshot, looks_complete,
    receive_snapshot, send_snapshot, write_snapshot,
};
use fk_engine::tree::{CONTAINER_OWNER, DataTree, EphemeralKind, TreeOptions};
use fk_net::client::{Acl, OpCode, perms};
use fk_net::jute::{Jute, JuteReader, JuteWriter};
use fk_net::txn::{CreateSessionTxn, CreateTxn, SetAclTxn, SetDataTxn, Txn, TxnBody, TxnHeader};

/// ZooKeeper's default jute.maxbuffer.
const MAX_BUFFER: usize = 0xfffff;
/// A FileHeader: magic, version, dbid.
const FILE_HEADER_BYTES: usize = 16;
/// The ustring "BenWasHere" that ends a stream.
const SIGNATURE_BYTES: usize = 4 + 10;
/// Seal #1: the Adler32 (long) and the ustring "/".
const SEAL_BYTES: usize = 8 + 5;

fn options() -> TreeOptions {
    TreeOptions::fixed_seed(true)
}

struct Shared(Mutex<DataTree>);

impl TreeAccess for Shared {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.0.lock().unwrap())
    }
}

fn acls() -> Vec<Vec<Acl>> {
    vec![
        vec![Acl::new(perms::ALL, "world", "anyone")],
        vec![Acl::new(perms::READ, "world", "anyone")],
        vec![Acl::new(perms::ALL, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")],
        vec![Acl::new(perms::ALL, "ip", "10.0.0.0/8")],
        vec![
            Acl::new(perms::ALL, "digest", "bob:x4LR1LzQG0HpAk4/SFDXnW8DuXU="),
            Acl::new(perms::READ | perms::WRITE, "world", "anyone"),
        ],
    ]
}

/// Persistent, ephemeral (two sessions), container and TTL nodes; five ACL lists; data empty, null,
/// small and half a megabyte; a deep chain; and 10,000 children of one node.
fn sample_tree() -> DataTree {
    let mut tree = DataTree::new(options());
    let acls = acls();
    let mut zxid = 0;
    let mut create = |tree: &mut DataTree, path: &str, data: Option<&[u8]>, acl: usize, owner: i64| {
        zxid += 1;
        tree.create_node(path, data, &acls[acl % acls.len()], owner, -1, zxid, 1_700_000_000_000 + zxid).unwrap();
    };
    tree.add_session(0x101, 30_000);
    tree.add_session(0x102, 10_000);
    tree.add_session(0x103, 4_000);
    create(&mut tree, "/app", Some(b"x"), 0, 0);
    create(&mut tree, "/app/empty", Some(b""), 1, 0);
    create(&mut tree, "/app/null", None, 2, 0);
    create(&mut tree, "/app/big", Some(&vec![0xa5; 512 * 1024]), 3, 0);
    create(&mut tree, "/app/eph", Some(b"e"), 4, 0x102);
    create(&mut tree, "/eph", None, 0, 0x101);
    create(&mut tree, "/cont", None, 0, CONTAINER_OWNER);
    create(&mut tree, "/cont/child", Some(b"c"), 2, 0);
    create(&mut tree, "/ttl", Some(b"t"), 1, EphemeralKind::Ttl(60_000).owner());
    let mut deep = String::new();
    for level in 0..20 {
        deep.push_str(&format!("/d{level}"));
        create(&mut tree, &deep, Some(deep.as_bytes()), level, 0);
    }
    create(&mut tree, "/many", None, 0, 0);
    for i in 0..10_000usize {
        let data = vec![i as u8; i % 37];
        let owner = if i % 10 == 0 { 0x101 } else { 0 };
        create(&mut tree, &format!("/many/n{i}"), Some(&data), i, owner);
    }
    tree.set_last_processed_zxid(zxid);
    tree
}

fn send(tree: &impl TreeAccess) -> (Vec<u8>, StreamStats) {
    let scratch = tempfile::tempdir().unwrap();
    let mut stream = Vec::new();
    let stats = send_snapshot(tree, scratch.path(), &mut stream).unwrap();
    assert_eq!(entries(scratch.path()), Vec::<String>::new(), "the side file is gone");
    (stream, stats)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// Every node (data, stat, ACL list), session, ephemeral, container, TTL node and the digest.
fn assert_same_tree(actual: &DataTree, expected: &DataTree) {
    assert_eq!(actual.node_count(), expected.node_count(), "node count");
    for (path, node) in expected.iter() {
        let got = actual.get(path).unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!(got.data, node.data, "data of {path}");
        assert_eq!(got.stat, node.stat, "stat of {path}");
        assert_eq!(actual.acl(got), expected.acl(node), "ACL of {path}");
    }
    let sorted = |t: &DataTree| {
        let mut sessions: Vec<(i64, i32)> = t.sessions().collect();
        sessions.sort();
        sessions
    };
    assert_eq!(sorted(actual), sorted(expected), "sessions");
    let ephemerals = |t: &DataTree| t.all_ephemerals().map(|(s, p)| (s, p.clone())).collect::<BTreeMap<_, _>>();
    assert_eq!(ephemerals(actual), ephemerals(expected), "ephemerals");
    let paths = |it: &mut dyn Iterator<Item = &str>| {
        let mut v: Vec<String> = it.map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(paths(&mut actual.containers()), paths(&mut expected.containers()), "containers");
    assert_eq!(paths(&mut actual.ttl_nodes()), paths(&mut expected.ttl_nodes()), "TTL nodes");
    assert_eq!(actual.digest(), expected.digest(), "tree digest");
}

#[test]
fn a_sent_tree_is_received_into_a_snapshot_that_loads_back_identically() {
    let original = sample_tree();
    let zxid = original.last_processed_zxid();
    let shared = Shared(Mutex::new(original));
    let (stream, stats) = send(&shared);
    let original = shared.0.into_inner().unwrap();
    assert_eq!((stats.zxid, stats.sessions, stats.acl_lists), (zxid, 3, acls().len()));
    assert_eq!(stats.nodes, original.node_count());
    assert_eq!(stats.bytes, stream.len() as u64);
    assert!(stream.ends_with(&[&[0, 0, 0, 10][..], SIGNATURE.as_bytes()].concat()));

    let dir = tempfile::tempdir().unwrap();
    let path = receive_snapshot(&mut Cursor::new(&stream), dir.path(), zxid, MAX_BUFFER, true).unwrap();
    assert_eq!(path, dir.path().join(format!("snapshot.{zxid:x}")));
    assert_eq!(entries(dir.path()), vec![format!("snapshot.{zxid:x}")], "no temporary file is left");
    assert!(looks_complete(&path), "ends in the ustring \"/\", as ZooKeeper checks");
    let (loaded, info) = load_snapshot(&path, zxid, options()).unwrap();
    assert_eq!(info.nodes, original.node_count());
    assert_eq!(info.digest, None, "the stream carries no digest, so the learner's file has none");
    assert_eq!(loaded.last_processed_zxid(), zxid);
    assert_same_tree(&loaded, &original);
    assert_eq!(loaded.get("/app/null").unwrap().data, None, "null stays null");
    assert_eq!(loaded.get("/app/empty").unwrap().data.as_deref(), Some(&b""[..]), "empty stays empty");
    assert_eq!(loaded.ephemeral_kind(loaded.get("/ttl").unwrap()), EphemeralKind::Ttl(60_000));
}

/// Hands out one byte per read, like a slow socket.
struct Trickle<R>(R);

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

fn small_tree() -> DataTree {
    let mut tree = DataTree::new(options());
    tree.add_session(0x7, 6_000);
    tree.create_node("/a", Some(b"alpha"), &acls()[2], 0, -1, 1, 10).unwrap();
    tree.create_node("/a/e", None, &acls()[0], 0x7, -1, 2, 11).unwrap();
    tree.set_last_processed_zxid(2);
    tree
}

#[test]
fn the_signature_ends_the_stream_and_what_follows_is_left_to_the_caller() {
    let (stream, _) = send(&Shared(Mutex::new(small_tree())));
    let following = b"\x00\x00\x00\x0aNEWLEADER and the queued proposals";
    let mut input = Trickle(Cursor::new([&stream[..], following].concat()));
    let dir = tempfile::tempdir().unwrap();
    let path = receive_snapshot(&mut input, dir.path(), 2, MAX_BUFFER, false).unwrap();
    let mut rest = Vec::new();
    input.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, following, "not one byte after the signature was consumed");
    assert_same_tree(&load_snapshot(&path, 2, options()).unwrap().0, &small_tree());
}

/// What a refused stream's signature was.
enum Signature {
    Absent,
    Found(Option<&'static str>),
}

#[test]
fn a_missing_or_wrong_signature_is_refused_and_leaves_no_snapshot() {
    let (stream, _) = send(&Shared(Mutex::new(small_tree())));
    let body = &stream[..stream.len() - SIGNATURE_BYTES];
    let signed = |signature: Option<&str>| {
        let mut bytes = body.to_vec();
        bytes.put_ustring(signature);
        bytes
    };
    let at = body.len() as u64;
    let cases: Vec<(&str, Vec<u8>, Signature)> = vec![
        ("absent", body.to_vec(), Signature::Absent),
        ("one letter off", signed(Some("BenWasHerf")), Signature::Found(Some("BenWasHerf"))),
        ("longer", signed(Some("BenWasHere!")), Signature::Found(Some("BenWasHere!"))),
        ("empty", signed(Some("")), Signature::Found(Some(""))),
        ("null", signed(None), Signature::Found(None)),
    ];
    for (name, bytes, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let err = receive_snapshot(&mut Cursor::new(bytes), dir.path(), 2, MAX_BUFFER, false).unwrap_err();
        match (expected, &err) {
            (Signature::Absent, StreamError::Truncated { item: StreamItem::Signature, offset, .. }) => {
                assert_eq!(*offset, at)
            }
            (Signature::Found(expected), StreamError::BadSignature { offset, found }) => {
                assert_eq!((*offset, found.as_deref()), (at, expected), "{name}");
            }
            _ => panic!("{name}: unexpected {err}"),
        }
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "{name}: nothing left behind");
    }
}

#[test]
fn a_stream_cut_anywhere_is_refused_and_leaves_no_snapshot() {
    let (stream, _) = send(&Shared(Mutex::new(small_tree())));
    let dir = tempfile::tempdir().unwrap();
    for cut in 0..stream.len() {
        let err = receive_snapshot(&mut Cursor::new(&stream[..cut]), dir.path(), 2, MAX_BUFFER, false).unwrap_err();
        match err {
            StreamError::Truncated { offset, received, .. } => {
                assert_eq!(received, cut as u64, "cut at {cut}");
                assert!(offset <= received, "cut at {cut}: the cut item starts at {offset}");
            }
            other => panic!("cut at {cut}: {other}"),
        }
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "cut at {cut}: nothing left behind");
    }
}

/// The start of a stream with no sessions and one ACL list (index 1).
fn head_with_acl_cache() -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.put_i32(0);
    bytes.put_i32(1);
    bytes.put_i64(1);
    vec![Acl::new(perms::ALL, "world", "anyone")].encode(&mut bytes);
    bytes
}

/// The root's record after `head`.
fn with_root(mut head: Vec<u8>) -> Vec<u8> {
    head.put_ustring(Some(""));
    head.put_buffer(Some(b""));
    head.put_i64(-1);
    head.extend_from_slice(&[0; 60]);
    head
}

/// What an error says, reduced to what the table compares: kind, item, offset.
type Summary = (&'static str, Option<StreamItem>, u64);

fn summary(err: &StreamError) -> Summary {
    match err {
        StreamError::TooLong { item, offset, .. } => ("too long", Some(*item), *offset),
        StreamError::NegativeLength { item, offset, .. } => ("negative", Some(*item), *offset),
        StreamError::Null { item, offset } => ("null", Some(*item), *offset),
        StreamError::Truncated { item, offset, .. } => ("truncated", Some(*item), *offset),
        StreamError::UnknownAcl { offset, .. } => ("unknown ACL", None, *offset),
        StreamError::Misplaced { offset, .. } => ("misplaced", None, *offset),
        StreamError::InvalidUtf8 { offset } => ("UTF-8", None, *offset),
        StreamError::BadSignature { offset, .. } => ("signature", None, *offset),
        StreamError::Read { .. } | StreamError::Write { .. } => ("I/O", None, 0),
    }
}

#[test]
fn forged_lengths_and_broken_records_are_refused_where_they_stand() {
    const MAX: usize = 1024;
    let head = head_with_acl_cache();
    let at_path = head.len() as u64;
    let at_data = at_path + 4;
    let root_len = 4 + 4 + 8 + 60;
    let then = |prefix: &[u8], f: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = prefix.to_vec();
        f(&mut bytes);
        bytes
    };
    let root = with_root(head.clone());
    let at_node = (head.len() + root_len) as u64;
    // (case, stream — each ends right after the field in question, so "too long" and not "truncated"
    // shows the length was refused before anything was read or allocated for it, expected)
    let cases: Vec<(&str, Vec<u8>, Summary)> = vec![
        ("session count -5", then(&[], &|b| b.put_i32(-5)), ("negative", Some(StreamItem::SessionCount), 0)),
        (
            "ACL cache size -2",
            then(&[0, 0, 0, 0], &|b| b.put_i32(-2)),
            ("negative", Some(StreamItem::AclCacheCount), 4),
        ),
        (
            "ACL list of 2^30 entries",
            then(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], &|b| b.put_i32(1 << 30)),
            ("too long", Some(StreamItem::AclList), 16),
        ),
        (
            "null ACL list",
            then(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], &|b| b.put_i32(-1)),
            ("null", Some(StreamItem::AclList), 16),
        ),
        (
            "ACL scheme of 2 GiB",
            then(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 31], &|b| b.put_i32(i32::MAX)),
            ("too long", Some(StreamItem::AclScheme), 24),
        ),
        ("path of 2 GiB", then(&head, &|b| b.put_i32(i32::MAX)), ("too long", Some(StreamItem::NodePath), at_path)),
        ("null path", then(&head, &|b| b.put_i32(-1)), ("null", Some(StreamItem::NodePath), at_path)),
        (
            "data of 2 GiB",
            then(&head, &|b| {
                b.put_ustring(Some(""));
                b.put_i32(i32::MAX);
            }),
            ("too long", Some(StreamItem::NodeData), at_data),
        ),
        (
            "data one byte over jute.maxbuffer",
            then(&head, &|b| {
                b.put_ustring(Some(""));
                b.put_i32(MAX as i32 + 1);
            }),
            ("too long", Some(StreamItem::NodeData), at_data),
        ),
        (
            "data of exactly jute.maxbuffer is read",
            then(&head, &|b| {
                b.put_ustring(Some(""));
                b.put_i32(MAX as i32);
            }),
            ("truncated", Some(StreamItem::NodeData), at_data),
        ),
        (
            "data length -2",
            then(&head, &|b| {
                b.put_ustring(Some(""));
                b.put_i32(-2);
            }),
            ("negative", Some(StreamItem::NodeData), at_data),
        ),
        ("path not UTF-8", then(&root, &|b| b.put_buffer(Some(&[b'/', 0xff]))), ("UTF-8", None, at_node)),
        (
            "ACL index not in the cache",
            then(&root, &|b| {
                b.put_ustring(Some("/a"));
                b.put_buffer(None);
                b.put_i64(7);
            }),
            ("unknown ACL", None, at_node),
        ),
        ("a child before the root", then(&head, &|b| b.put_ustring(Some("/a"))), ("misplaced", None, at_path)),
        ("an orphan", then(&root, &|b| b.put_ustring(Some("/a/b"))), ("misplaced", None, at_node)),
        (
            "signature of 2 GiB",
            then(&root, &|b| {
                b.put_ustring(Some("/"));
                b.put_i32(i32::MAX);
            }),
            ("too long", Some(StreamItem::Signature), at_node + 5),
        ),
    ];
    for (name, bytes, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let err = receive_snapshot(&mut Cursor::new(&bytes), dir.path(), 1, MAX, false).unwrap_err();
        assert_eq!(summary(&err), expected, "{name}: {err}");
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "{name}: nothing left behind");
    }
}

#[test]
fn errors_name_the_item_and_the_offset() {
    let mut bytes = head_with_acl_cache();
    bytes.put_ustring(Some(""));
    bytes.put_i32(0x7fff_0000);
    let dir = tempfile::tempdir().unwrap();
    let err = receive_snapshot(&mut Cursor::new(bytes), dir.path(), 1, MAX_BUFFER, false).unwrap_err();
    assert_eq!(err.to_string(), "a node's data at byte 47 has length 2147418112, beyond jute.maxbuffer (1048575)");
}

/// The body of a snapshot file: from after the FileHeader to the end of the "/" marker, found by
/// walking the records.
fn body_end(file: &[u8]) -> usize {
    let mut r = JuteReader::new(file);
    r.take(FILE_HEADER_BYTES).unwrap();
    let sessions = r.read_i32().unwrap();
    r.take(12 * sessions as usize).unwrap();
    for _ in 0..r.read_i32().unwrap() {
        r.read_i64().unwrap();
        Vec::<Acl>::decode(&mut r).unwrap();
    }
    while r.read_ustring().unwrap() != Some("/") {
        r.read_buffer().unwrap();
        r.take(8 + 60).unwrap();
    }
    r.position()
}

#[test]
fn the_stream_is_the_body_of_our_snapshot_file_and_the_received_file_its_first_seal() {
    let shared = Shared(Mutex::new(sample_tree()));
    let written_dir = tempfile::tempdir().unwrap();
    let written =
        std::fs::read(write_snapshot(&shared, written_dir.path(), false, Compression::None).unwrap().path).unwrap();
    let (stream, stats) = send(&shared);
    let end = body_end(&written);
    assert_eq!(&stream[..stream.len() - SIGNATURE_BYTES], &written[FILE_HEADER_BYTES..end], "items 2-6 are identical");
    let dir = tempfile::tempdir().unwrap();
    let received = receive_snapshot(&mut Cursor::new(&stream), dir.path(), stats.zxid, MAX_BUFFER, false).unwrap();
    let received = std::fs::read(received).unwrap();
    assert_eq!(received, &written[..end + SEAL_BYTES], "items 1-7 of the writer's file, seal included");
}

fn zk38_snapshots() -> Vec<(i64, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zk38/datadir/version-2");
    fk_engine::files::list(&dir, fk_engine::files::SNAPSHOT_PREFIX).unwrap()
}

#[test]
fn zookeeper_38_snapshot_bodies_are_received_into_the_files_zookeeper_wrote() {
    let snapshots = zk38_snapshots();
    assert_eq!(snapshots.len(), 4);
    for (zxid, path) in snapshots {
        let original = std::fs::read(&path).unwrap();
        let end = body_end(&original);
        let mut stream = original[FILE_HEADER_BYTES..end].to_vec();
        stream.put_ustring(Some(SIGNATURE));
        stream.extend_from_slice(b"NEWLEADER...");
        let dir = tempfile::tempdir().unwrap();
        let mut input = Cursor::new(&stream);
        let received = receive_snapshot(&mut input, dir.path(), zxid, MAX_BUFFER, false).unwrap();
        assert_eq!(input.position() as usize, stream.len() - 12, "{}: stopped at the signature", path.display());
        let bytes = std::fs::read(&received).unwrap();
        assert_eq!(bytes, &original[..end + SEAL_BYTES], "{}: ZooKeeper's own bytes and seal", path.display());
        let (ours, _) = load_snapshot(&received, zxid, options()).unwrap();
        let (theirs, _) = load_snapshot(&path, zxid, options()).unwrap();
        assert_same_tree(&ours, &theirs);
    }
}

/// Reads a SNAP stream the way ZooKeeper 3.8's `Learner.syncWithLeader` does (`deserializeSnapshot`,
/// then the signature), then the int after it, and prints what it loaded.
const JAVA_LEARNER_PROBE: &str = r#"import java.io.*;
import java.util.*;
import org.apache.jute.BinaryInputArchive;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.server.DataNode;
import org.apache.zookeeper.server.DataTree;
import org.apache.zookeeper.server.util.SerializeUtils;

public class SnapStreamProbe {
    public static void main(String[] args) throws Exception {
        DataInputStream in = new DataInputStream(new BufferedInputStream(new FileInputStream(args[0])));
        BinaryInputArchive ia = BinaryInputArchive.getArchive(in);
        DataTree dt = new DataTree();
        Map<Long, Integer> sessions = new HashMap<>();
        SerializeUtils.deserializeSnapshot(dt, ia, sessions);
        String signature = ia.readString("signature");
        System.out.println("signature " + signature);
        System.out.println("next " + in.readInt());
        System.out.println("nodes " + dt.getNodeCount());
        System.out.println("digest " + Long.toHexString(dt.getTreeDigest()));
        for (Map.Entry<Long, Integer> e : new TreeMap<>(sessions).entrySet()) {
            System.out.println("session " + Long.toHexString(e.getKey()) + " " + e.getValue());
        }
        TreeMap<String, String> lines = new TreeMap<>();
        Deque<String> todo = new ArrayDeque<>(List.of(""));
        while (!todo.isEmpty()) {
            String path = todo.pop();
            DataNode node = dt.getNode(path);
            StringBuilder acl = new StringBuilder();
            for (ACL a : dt.getACL(node)) {
                acl.append(' ').append(a.getPerms()).append(':').append(a.getId().getScheme()).append(':').append(a.getId().getId());
            }
            lines.put(path.isEmpty() ? "/" : path, acl.toString());
            for (String child : node.getChildren()) {
                todo.push(path + "/" + child);
            }
        }
        for (Map.Entry<String, String> e : lines.entrySet()) {
            System.out.println("acl " + e.getKey() + e.getValue());
        }
        System.out.println("containers " + dt.getContainers().size() + " ttls " + dt.getTtls().size() + " ephemerals " + dt.getEphemeralsCount());
    }
}
"#;

/// Debian's ZooKeeper 3.8 classpath, or why it is unavailable.
fn zookeeper_classpath() -> Result<String, String> {
    if std::process::Command::new("java").arg("-version").output().is_err() {
        return Err("java not found".into());
    }
    if !Path::new("/usr/share/java/zookeeper.jar").exists() {
        return Err("/usr/share/java/zookeeper.jar not found (Debian's zookeeper package)".into());
    }
    let mut jars: Vec<String> = std::fs::read_dir("/usr/share/java")
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
        .filter(|p| p.ends_with(".jar"))
        .collect();
    jars.sort();
    Ok(jars.join(":"))
}

/// What the probe prints for `tree` sent with `next` after the signature.
fn expected_probe_output(tree: &DataTree, next: i32) -> String {
    let mut lines = vec![
        format!("signature {SIGNATURE}"),
        format!("next {next}"),
        // ZooKeeper's node map holds the root twice, under "" and "/".
        format!("nodes {}", tree.node_count() + 1),
        format!("digest {:x}", tree.digest()),
    ];
    let mut sessions: Vec<(i64, i32)> = tree.sessions().collect();
    sessions.sort();
    lines.extend(sessions.iter().map(|(id, timeout)| format!("session {id:x} {timeout}")));
    let mut acls: Vec<String> = tree
        .iter()
        .map(|(path, node)| {
            let list: String =
                tree.acl(node).iter().map(|a| format!(" {}:{}:{}", a.perms, a.id.scheme, a.id.id)).collect();
            format!("acl {path}{list}")
        })
        .collect();
    acls.sort();
    lines.extend(acls);
    let (containers, ttls) = (tree.containers().count(), tree.ttl_nodes().count());
    lines.push(format!("containers {containers} ttls {ttls} ephemerals {}", tree.ephemeral_count()));
    lines.join("\n") + "\n"
}

#[test]
fn zookeeper_38s_learner_reads_our_stream_to_the_same_tree() {
    let classpath = match zookeeper_classpath() {
        Ok(classpath) => classpath,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let tree = sample_tree();
    let shared = Shared(Mutex::new(tree));
    let (mut stream, _) = send(&shared);
    let tree = shared.0.into_inner().unwrap();
    stream.put_i32(0x1234); // the next packet's first field, which the learner reads after the signature
    let work = tempfile::tempdir().unwrap();
    let (probe, stream_path) = (work.path().join("SnapStreamProbe.java"), work.path().join("stream"));
    std::fs::write(&probe, JAVA_LEARNER_PROBE).unwrap();
    std::fs::write(&stream_path, &stream).unwrap();
    let out = std::process::Command::new("java")
        .args(["-Dzookeeper.extendedTypesEnabled=true", "-cp", &classpath])
        .arg(&probe)
        .arg(&stream_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let expected = expected_probe_output(&tree, 0x1234);
    if stdout != expected {
        let first = stdout.lines().zip(expected.lines()).find(|(a, b)| a != b);
        panic!("ZooKeeper read another tree; first difference (theirs, ours): {first:?}");
    }
}

/// A tree written by another thread: each hold of the lock by the sender waits until that thread has
/// applied more txns, so the walk surely spans many of them.
struct Racing {
    tree: Mutex<DataTree>,
    applied_zxid: AtomicI64,
    seen_zxid: AtomicI64,
    writer_done: AtomicBool,
}

impl TreeAccess for Racing {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        let seen = self.seen_zxid.load(Ordering::SeqCst);
        while self.applied_zxid.load(Ordering::SeqCst) == seen && !self.writer_done.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let tree = self.tree.lock().unwrap();
        self.seen_zxid.store(tree.last_processed_zxid(), Ordering::SeqCst);
        f(&tree)
    }
}

fn txn(zxid: i64, client_id: i64, body: TxnBody) -> Txn {
    let header = TxnHeader { client_id, cxid: 1, zxid, time: 1_800_000_000_000 + zxid, txn_type: body.txn_type() };
    Txn { header, body, digest: None }
}

/// Sets data on, re-ACLs and creates nodes (ephemerals of a new session too) all over the tree; deletes
/// are covered by [`a_delete_of_a_node_the_walk_had_not_reached_replays_to_the_same_parent`].
fn concurrent_txns(first_zxid: i64) -> Vec<Txn> {
    let mut bodies = vec![(0x201, TxnBody::CreateSession(CreateSessionTxn { timeout_ms: 8_000 }))];
    for i in 0..3_000 {
        let (client, body) = match i % 4 {
            0 => (0x5, set_data(format!("/many/n{}", i * 3), i % 50)),
            1 => {
                let path = format!("/many/n{}", i * 3 + 1);
                (0x5, TxnBody::SetAcl(SetAclTxn { path, acl: acls()[3].clone(), version: 1 }))
            }
            2 => (0x5, create(format!("/many/n{}/sub", i * 3), false)),
            _ => (0x201, create(format!("/d0/e{i}"), true)),
        };
        bodies.push((client, body));
    }
    bodies.into_iter().enumerate().map(|(i, (client, body))| txn(first_zxid + i as i64, client, body)).collect()
}

fn create(path: String, ephemeral: bool) -> TxnBody {
    let txn = CreateTxn { path, data: Some(b"new".to_vec()), acl: acls()[2].clone(), ephemeral, parent_cversion: -1 };
    TxnBody::Create { op: OpCode::Create, txn }
}

fn set_data(path: String, len: usize) -> TxnBody {
    TxnBody::SetData(SetDataTxn { path, data: Some(vec![1; len]), version: 1 })
}

/// Receives `stream`, loads it and replays the txns after the snapshot's zxid over it.
fn receive_and_replay(stream: &[u8], zxid: i64, txns: &[Txn]) -> DataTree {
    let dir = tempfile::tempdir().unwrap();
    let path = receive_snapshot(&mut Cursor::new(stream), dir.path(), zxid, MAX_BUFFER, false).unwrap();
    let (mut replayed, _) = load_snapshot(&path, zxid, options()).unwrap();
    for txn in txns.iter().filter(|t| t.header.zxid > zxid) {
        fk_engine::txn::apply(&mut replayed, txn, &mut Vec::new());
    }
    replayed
}

#[test]
fn a_send_while_another_thread_writes_replays_to_that_threads_final_tree() {
    let start = sample_tree();
    let txns = concurrent_txns(start.last_processed_zxid() + 1);
    let racing = Racing {
        applied_zxid: AtomicI64::new(start.last_processed_zxid()),
        seen_zxid: AtomicI64::new(i64::MIN),
        tree: Mutex::new(start),
        writer_done: AtomicBool::new(false),
    };
    let (stream, stats, zxid_when_sent) = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Starts once the sender has read its zxid, so that every txn lands after it.
            while racing.seen_zxid.load(Ordering::SeqCst) == i64::MIN {
                std::thread::yield_now();
            }
            for batch in txns.chunks(10) {
                let mut tree = racing.tree.lock().unwrap();
                for txn in batch {
                    fk_engine::txn::apply(&mut tree, txn, &mut Vec::new());
                }
                racing.applied_zxid.store(tree.last_processed_zxid(), Ordering::SeqCst);
                drop(tree);
                std::thread::yield_now();
            }
            racing.writer_done.store(true, Ordering::SeqCst);
        });
        let (stream, stats) = send(&racing);
        (stream, stats, racing.applied_zxid.load(Ordering::SeqCst))
    });
    let last = racing.tree.into_inner().unwrap();
    assert!(
        zxid_when_sent > stats.zxid + 10,
        "txns landed during the walk: {:#x} vs {:#x}",
        zxid_when_sent,
        stats.zxid
    );

    let replayed = receive_and_replay(&stream, stats.zxid, &txns);
    assert_eq!(replayed.last_processed_zxid(), last.last_processed_zxid());
    assert_same_tree(&replayed, &last);
}

/// Applies every pending txn at the third hold of the lock: after the walk's first batch (which
/// writes the root's subtree as far as it gets), before the rest.
struct Stepped {
    tree: Mutex<DataTree>,
    pending: Mutex<Vec<Txn>>,
    holds: std::sync::atomic::AtomicUsize,
}

impl TreeAccess for Stepped {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        let mut tree = self.tree.lock().unwrap();
        if self.holds.fetch_add(1, Ordering::SeqCst) == 2 {
            for txn in self.pending.lock().unwrap().drain(..) {
                fk_engine::txn::apply(&mut tree, &txn, &mut Vec::new());
            }
        }
        f(&tree)
    }
}

/// ZooKeeper 3.8's `DataTree.deleteNode` raises the parent's pzxid before it finds the child missing
/// ("the child might already be deleted during taking fuzzy snapshot"), so replaying a delete over a
/// snapshot whose walk wrote the parent but not the (since deleted) child still yields the parent's
/// final pzxid; `DataTree::delete_node` does the same, for `write_snapshot` files as for SNAP streams.
#[test]
fn a_delete_of_a_node_the_walk_had_not_reached_replays_to_the_same_parent() {
    let mut tree = DataTree::new(options());
    for i in 0..3_000 {
        let path = if i == 0 { "/p".to_owned() } else { format!("/p/c{i}") };
        tree.create_node(&path, None, &acls()[0], 0, -1, i + 1, 0).unwrap();
    }
    tree.set_last_processed_zxid(3_000);
    let txns: Vec<Txn> = (1..3_000)
        .map(|i| txn(3_000 + i, 0x5, TxnBody::Delete { op: OpCode::Delete, path: format!("/p/c{i}") }))
        .collect();
    let stepped = Stepped { tree: Mutex::new(tree), pending: Mutex::new(txns.clone()), holds: Default::default() };
    let (stream, stats) = send(&stepped);
    assert!(stepped.pending.lock().unwrap().is_empty(), "the deletes landed during the walk");
    let last = stepped.tree.into_inner().unwrap();
    let replayed = receive_and_replay(&stream, stats.zxid, &txns);
    assert_eq!(replayed.get("/p").unwrap().stat, last.get("/p").unwrap().stat, "stat of /p");
    assert_same_tree(&replayed, &last);
}
