//! Durability through the real binary: restarts, SIGKILL under concurrent load, and every kind of damage
//! a data directory can suffer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fk_net::client::*;
use fk_net::jute::Jute;
use fk_tests::TestServer;
use fk_tests::raw::RawClient;

fn open_acl() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    let request = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: open_acl(), flags };
    Request::Write(WriteOp::Create { op: OpCode::Create, request })
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::Write(WriteOp::SetData(SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 }))
}

fn get(c: &mut RawClient, path: &str) -> Option<GetDataResponse> {
    let (reply, _) = c.call(&Request::GetData(PathWatchRequest { path: path.into(), watch: false }));
    (reply.err() == 0).then(|| GetDataResponse::decode_exact(&reply.body).unwrap())
}

fn copy_fixture(name: &str, to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/zk38").join(name).join("version-2");
    let to = to.join("version-2");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn data_and_sessions_survive_a_restart() {
    let mut server = TestServer::with_config("snapCount=50");
    let mut c = RawClient::connect(&server.address());
    c.call(&create("/kept", b"v0", 0));
    c.call(&create("/eph", b"", 1));
    for i in 0..120 {
        c.call(&set("/kept", format!("v{}", i + 1).as_bytes()));
    }
    let (session, passwd) = (c.session_id, c.passwd.clone());
    server.restart();
    // The session is restored with its ephemeral, and the client may resume it with its password.
    let again = ConnectRequest {
        timeout_ms: 30_000,
        session_id: session,
        passwd,
        read_only: Some(false),
        ..Default::default()
    };
    let mut c = RawClient::connect_with(&server.address(), again).expect("resume the session after a restart");
    assert_eq!(c.session_id, session);
    let kept = get(&mut c, "/kept").unwrap();
    assert_eq!((kept.data.as_deref(), kept.stat.version), (Some(&b"v120"[..]), 120));
    assert!(get(&mut c, "/eph").is_some());
    let snapshots = std::fs::read_dir(server.data_dir().join("version-2"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("snapshot."))
        .count();
    assert!(snapshots >= 2, "snapCount=50 took snapshots while running");
}

/// The latest acknowledged (data, version) of each node a writer owns.
type Acked = HashMap<String, (Vec<u8>, i32)>;

#[test]
fn sigkill_under_concurrent_writes_loses_no_acknowledged_write() {
    let mut server = TestServer::with_config("snapCount=500");
    let acked: Arc<Mutex<Acked>> = Arc::default();
    for round in 0..5 {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (address, acked, stop) = (server.address(), acked.clone(), stop.clone());
                std::thread::spawn(move || write_until_killed(&address, round, w, &acked, &stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + round * 100));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        server.restart();
        let mut c = RawClient::connect(&server.address());
        let acked = acked.lock().unwrap();
        assert!(!acked.is_empty());
        for (path, (data, version)) in acked.iter() {
            let node = get(&mut c, path).unwrap_or_else(|| panic!("round {round}: acknowledged {path} is gone"));
            assert!(node.stat.version >= *version, "round {round}: {path} lost acknowledged version {version}");
            if node.stat.version == *version {
                assert_eq!(node.data.as_deref(), Some(&data[..]), "round {round}: {path} data");
            }
        }
    }
}

/// Pipelines creates and setData on its own nodes and records each acknowledged result.
fn write_until_killed(address: &str, round: u64, writer: u64, acked: &Mutex<Acked>, stop: &AtomicBool) {
    let Some(mut c) = RawClient::connect_with(
        address,
        ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() },
    ) else {
        return;
    };
    let path = format!("/crash-{round}-{writer}");
    if c.stream.set_read_timeout(Some(Duration::from_secs(5))).is_err() {
        return;
    }
    // The server is SIGKILLed at any moment: a failed send or read ends this writer.
    if c.try_send(&create(&path, b"0", 0)).is_err() {
        return;
    }
    let mut in_flight = std::collections::VecDeque::from([(path.clone(), b"0".to_vec(), 0)]);
    let mut next = 1;
    while !stop.load(Ordering::Relaxed) {
        while in_flight.len() < 16 {
            let data = format!("{next}").into_bytes();
            if c.try_send(&set(&path, &data)).is_err() {
                return;
            }
            in_flight.push_back((path.clone(), data, next));
            next += 1;
        }
        let Some(reply) = c.recv() else { return };
        let (p, data, version) = in_flight.pop_front().unwrap();
        assert_eq!(reply.err(), 0, "{p}");
        acked.lock().unwrap().insert(p, (data, version));
    }
}

#[test]
fn zookeepers_data_directory_opens_and_serves() {
    let server = TestServer::on_data_dir(|data| copy_fixture("datadir", data), "extendedTypesEnabled=true");
    let mut c = RawClient::connect(&server.address());
    let config = get(&mut c, "/app/config").unwrap();
    assert_eq!(config.stat.version, 8);
    assert_eq!(get(&mut c, "/app/utf8").unwrap().data.unwrap(), "zoé ☃ 雪".as_bytes());
    let (secret, _) = c.call(&Request::GetData(PathWatchRequest { path: "/acl/digest".into(), watch: false }));
    assert_eq!(secret.err(), ErrorCode::NoAuth.as_i32());
    let (count, _) = c.call(&Request::GetAllChildrenNumber(PathRequest { path: "/bulk".into() }));
    assert_eq!(GetAllChildrenNumberResponse::decode_exact(&count.body).unwrap().total_number, 989);
    assert!(server.four_letter("srvr").contains("Zxid: 0x216"), "new session = first txn after 0x215");
    assert!(server.four_letter("srvr").contains("Node count: 1026"), "as ZooKeeper reports this tree");
    // Session B is alive after recovery and owns its ephemerals.
    assert!(server.four_letter("dump").contains("0x100007ea1af0001:\n\t/live/ephB"));
}

#[test]
fn a_torn_tail_is_cut_and_logged_and_the_server_starts() {
    let server =
        TestServer::on_data_dir(|data| copy_fixture("datadir-corrupt-tail", data), "extendedTypesEnabled=true");
    let log = server.log_text();
    assert!(log.contains("log.1e8: the last record is torn at offset 3582"), "{log}");
    let mut c = RawClient::connect(&server.address());
    assert!(get(&mut c, "/app/ephA").is_some(), "the lost closeSession leaves session A's ephemeral");
}

#[test]
fn a_partial_record_followed_by_zeros_is_a_torn_tail() {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    c.call(&create("/a", b"1", 0));
    server.kill();
    // Append a record that lost its end to the newest log, the way a crash mid-write leaves one in a
    // preallocated (zero-filled) file.
    let v2 = server.data_dir().join("version-2");
    let newest = std::fs::read_dir(&v2)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("log."))
        .max_by_key(|p| u64::from_str_radix(&p.file_name().unwrap().to_string_lossy()[4..], 16).unwrap())
        .unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    let end = fk_engine_end(&bytes);
    let mut damaged = bytes[..end].to_vec();
    damaged.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 9]);
    damaged.resize(bytes.len(), 0);
    std::fs::write(&newest, damaged).unwrap();
    server.restart();
    assert!(server.log_text().contains("torn at offset"), "{}", server.log_text());
    let mut c = RawClient::connect(&server.address());
    assert_eq!(get(&mut c, "/a").unwrap().data.unwrap(), b"1");
}

/// Where the records of a log file end (the first zero length after the header).
fn fk_engine_end(bytes: &[u8]) -> usize {
    let mut offset = 16;
    loop {
        let len = i32::from_be_bytes(bytes[offset + 8..offset + 12].try_into().unwrap());
        if len == 0 {
            return offset;
        }
        offset += 13 + len as usize;
    }
}

#[test]
fn corruption_before_the_tail_refuses_to_start_and_names_fktool() {
    let (code, log) = TestServer::expect_start_failure(
        |data| {
            copy_fixture("datadir-corrupt-middle", data);
            for name in ["snapshot.b3", "snapshot.121", "snapshot.1e6"] {
                std::fs::remove_file(data.join("version-2").join(name)).unwrap();
            }
            // The damaged log.1 must now be replayed; leave the server nothing else to start from.
        },
        "extendedTypesEnabled=true",
    );
    assert_eq!(code, Some(1));
    assert!(
        log.contains("log.1: the record at offset 138 (zxid 0x3, after 0x2) is damaged (checksum mismatch"),
        "{log}"
    );
    assert!(log.contains("fktool log verify"), "{log}");
    assert!(log.contains("--offset 138"), "{log}");
}

/// Acknowledged creates `/n0..` in one log file, one record each; the server is killed afterwards.
const ACKED: usize = 3000;

/// A data directory holding `ACKED` acknowledged creates (replayed from the log at start-up: no
/// snapshot covers them), and the record offsets of its log.
fn acknowledged_creates() -> (tempfile::TempDir, std::path::PathBuf, Vec<u64>) {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    for batch in (0..ACKED).collect::<Vec<_>>().chunks(100) {
        for i in batch {
            c.send(&create(&format!("/n{i}"), format!("value {i}").as_bytes(), 0));
        }
        for i in batch {
            assert_eq!(c.recv().unwrap().err(), 0, "create /n{i} acknowledged");
        }
    }
    server.kill();
    let v2 = server.data_dir().join("version-2");
    let log = fk_engine::files::list(&v2, "log").unwrap().pop().unwrap().1;
    let offsets: Vec<u64> = fk_engine::log::read_log(&log).unwrap().records.iter().map(|r| r.offset).collect();
    assert!(offsets.len() > ACKED, "one record per create, plus the session");
    let copy = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(copy.path().join("version-2")).unwrap();
    for entry in std::fs::read_dir(&v2).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join("version-2").join(entry.file_name())).unwrap();
    }
    let log = copy.path().join("version-2").join(log.file_name().unwrap());
    (copy, log, offsets)
}

/// One byte of a record in the middle of the log, with thousands of acknowledged records after it: a
/// damaged end marker under a good checksum loses nothing; a damaged length or checksum refuses to
/// start (naming file, offset, zxid and fktool) and leaves the log as it was. Before, all three cut
/// the log there and dropped every acknowledged write after it.
#[test]
fn one_damaged_byte_in_the_middle_of_the_log_never_drops_acknowledged_writes() {
    let (pristine, log, offsets) = acknowledged_creates();
    let middle = offsets.len() / 2;
    let at = offsets[middle] as usize;
    let bytes = std::fs::read(&log).unwrap();
    let entry_len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    for (what, byte, new_value) in [
        ("end marker", at + 12 + entry_len, b'X'),
        ("length", at + 10, bytes[at + 10] ^ 0x02),
        ("checksum", at + 6, bytes[at + 6] ^ 0x80),
    ] {
        let copy = |data: &Path| {
            std::fs::create_dir_all(data).unwrap();
            let v2 = data.join("version-2");
            std::fs::create_dir_all(&v2).unwrap();
            for entry in std::fs::read_dir(pristine.path().join("version-2")).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), v2.join(entry.file_name())).unwrap();
            }
            let damaged = v2.join(log.file_name().unwrap());
            let mut b = std::fs::read(&damaged).unwrap();
            b[byte] = new_value;
            std::fs::write(&damaged, b).unwrap();
        };
        if what == "end marker" {
            let server = TestServer::on_data_dir(copy, "");
            assert!(server.log_text().contains("its record's checksum holds"), "{}", server.log_text());
            let mut c = RawClient::connect(&server.address());
            for i in (0..ACKED).step_by(7).chain([ACKED - 1]) {
                let node = get(&mut c, &format!("/n{i}")).unwrap_or_else(|| panic!("acknowledged /n{i} lost"));
                assert_eq!(node.data.unwrap(), format!("value {i}").into_bytes());
            }
            continue;
        }
        let mut damaged_dir = None;
        let (code, text) = TestServer::expect_start_failure(
            |data| {
                copy(data);
                damaged_dir = Some(data.join("version-2").join(log.file_name().unwrap()));
            },
            "",
        );
        assert_eq!(code, Some(1), "{what}: {text}");
        let zxid = format!("(zxid 0x{:x}, after 0x{:x})", middle + 1, middle);
        for wanted in [format!("the record at offset {at} {zxid} is damaged"), format!("--offset {at}")] {
            assert!(text.contains(&wanted), "{what}: {text}\n  lacks: {wanted}");
        }
        assert!(text.contains(&format!("fktool log verify {}", damaged_dir.unwrap().display())), "{what}: {text}");
        assert!(!text.contains("truncating"), "{what}: nothing is cut");
    }
}

#[test]
fn a_data_dir_that_is_not_a_directory_is_a_clear_error() {
    let (code, log) = TestServer::expect_start_failure(|data| std::fs::write(data, b"not a directory").unwrap(), "");
    assert_eq!(code, Some(1));
    assert!(log.contains("cannot create the data directory"), "{log}");
}

#[test]
fn a_separate_data_log_dir_holds_the_logs() {
    let logs = tempfile::tempdir().unwrap();
    let mut server = TestServer::with_config(&format!("dataLogDir={}", logs.path().display()));
    let mut c = RawClient::connect(&server.address());
    c.call(&create("/split", b"x", 0));
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir.join("version-2"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(names(logs.path()).iter().all(|n| n.starts_with("log.")) && !names(logs.path()).is_empty());
    assert!(names(&server.data_dir()).iter().all(|n| n.starts_with("snapshot.")));
    server.restart();
    let mut c = RawClient::connect(&server.address());
    assert_eq!(get(&mut c, "/split").unwrap().data.unwrap(), b"x");
}

/// Values an operator's zoo.cfg may hold that ZooKeeper 3.8 starts with: the server starts, takes the
/// meaning ZooKeeper gives them (no preallocation, a snapshot every other txn, no connection limit, the
/// default frame limit), and keeps every write across a restart.
#[test]
fn a_zoo_cfg_zookeeper_accepts_starts_the_server_with_its_meaning() {
    let mut server = TestServer::with_config("preAllocSize=0\nsnapCount=1\nmaxClientCnxns=-1\njute.maxbuffer=abc");
    let log = server.log_text();
    for warning in ["SnapCount should be 2 or more", "jute.maxbuffer: 'abc' is not a valid number"] {
        assert!(log.contains(warning), "{log}");
    }
    let clients: Vec<RawClient> = (0..70).map(|_| RawClient::connect(&server.address())).collect();
    let mut c = RawClient::connect(&server.address());
    for i in 0..20 {
        assert_eq!(c.call(&create(&format!("/n{i}"), b"x", 0)).0.err(), 0);
    }
    let big = vec![7u8; 1_000_000];
    assert_eq!(c.call(&set("/n0", &big)).0.err(), 0, "the default 1 MiB frame limit applies");
    let v2 = server.data_dir().join("version-2");
    let files = |prefix: &str| fk_engine::files::list(&v2, prefix).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(files("snapshot").len() >= 5, "a snapshot every other txn: {:?}", files("snapshot"));
    for (_, log) in files("log") {
        let read = fk_engine::log::read_log(&log).unwrap();
        assert_eq!(read.end.offset(), read.file_len, "{}: no preallocated padding", log.display());
    }
    drop(clients);
    server.restart();
    let mut c = RawClient::connect(&server.address());
    assert_eq!(get(&mut c, "/n0").unwrap().data.unwrap(), big);
    assert!(get(&mut c, "/n19").is_some());
}

/// Stopping and continuing the server (a debugger, `kill -STOP`, a hung VM) while it waits for its log
/// writes must not fail them: io_uring's wait ends early then, and the server once treated that as a
/// failed write and stopped.
#[test]
fn stopping_and_continuing_the_server_under_writes_loses_nothing() {
    let server = TestServer::start();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let writer = {
        let (address, acked, stop) = (server.address(), acked.clone(), stop.clone());
        std::thread::spawn(move || write_until_killed(&address, 0, 0, &acked, &stop))
    };
    let pid = server.pid().to_string();
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(3));
        assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
        assert!(std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let mut c = RawClient::connect(&server.address());
    let acked = acked.lock().unwrap();
    let (path, (data, version)) = acked.iter().next().expect("writes were acknowledged");
    assert!(*version > 20, "writes went on through the stops ({version})");
    let node = get(&mut c, path).expect("the server still serves");
    // Writes sent after the last one read back may have been applied too.
    assert!(node.stat.version >= *version, "acknowledged version {version} lost");
    if node.stat.version == *version {
        assert_eq!(node.data.as_deref(), Some(&data[..]));
    }
}
