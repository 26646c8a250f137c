//! A small volume: the server takes writes until the disk is really full (not just too full for a
//! whole preallocation step), stops without acknowledging the batch that did not fit, and after space
//! is freed restarts with every acknowledged write.

use fk_net::client::*;
use fk_net::jute::Jute;
use fk_tests::raw::RawClient;
use fk_tests::{SmallVolume, TestServer};

const VOLUME_MIB: u64 = 20;
const FILLER_MIB: usize = 4;
const VALUE_BYTES: usize = 1000;

fn create(path: &str, data: &[u8]) -> Request {
    let acl = vec![Acl::new(perms::ALL, "world", "anyone")];
    Request::Write(WriteOp::Create {
        op: OpCode::Create,
        request: CreateRequest { path: path.into(), data: Some(data.to_vec()), acl, flags: 0 },
    })
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("{i}:").into_bytes();
    v.resize(VALUE_BYTES, b'v');
    v
}

/// Creates nodes, 50 in flight at a time, until the server goes away; returns how many were
/// acknowledged (always a prefix: replies come in order).
fn write_until_the_server_stops(address: &str) -> usize {
    let mut c = RawClient::connect(address);
    let mut acked = 0;
    loop {
        let mut sent = Vec::new();
        for i in acked..acked + 50 {
            match c.try_send(&create(&format!("/n{i}"), &value(i))) {
                Ok(xid) => sent.push(xid),
                Err(_) => break,
            }
        }
        let complete = sent.len() == 50;
        for xid in sent {
            match c.recv() {
                Some(reply) if reply.header.xid == xid && reply.err() == 0 => acked += 1,
                Some(reply) => panic!("unexpected reply {reply:?} after {acked} creates"),
                None => return acked,
            }
        }
        if !complete {
            return acked;
        }
    }
}

#[test]
fn a_full_disk_stops_the_server_without_losing_an_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let Some(volume) = SmallVolume::mount(&dir.path().join("vol"), VOLUME_MIB) else {
        eprintln!("skipped: cannot mount a tmpfs here (the test needs root, as CI has)");
        return;
    };
    let filler = volume.0.join("filler");
    std::fs::write(&filler, vec![1u8; FILLER_MIB << 20]).unwrap();
    let data = volume.0.join("data");
    // The default 64 MiB preallocation step is larger than the whole volume.
    let mut server = TestServer::with_config(&format!("dataDir={}\npreAllocSize=65536", data.display()));
    let acked = write_until_the_server_stops(&server.address());
    for _ in 0..100 {
        if !server.is_running() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!server.is_running(), "a write that does not fit stops the server");
    let log = server.log_text();
    assert!(log.contains("cannot write or sync the txn log"), "{log}");
    assert!(log.contains("growing the log only as far as each batch needs"), "{log}");
    // Most of the volume's free space went to acknowledged txns, not only the first preallocation.
    let free_bytes = (VOLUME_MIB as usize - FILLER_MIB) << 20;
    eprintln!("{acked} creates of {VALUE_BYTES} bytes acknowledged with {free_bytes} bytes free");
    assert!(
        acked * VALUE_BYTES > free_bytes / 2,
        "only {acked} creates of {VALUE_BYTES} bytes fit in {free_bytes} bytes"
    );

    // Room for the restart's snapshot too (written in the background after a replay): it would otherwise
    // take the freed space from under the first session's log file, and a standalone server stops when
    // its log cannot be written.
    std::fs::remove_file(&filler).unwrap();
    volume.resize(VOLUME_MIB * 3);
    server.restart();
    let mut c = RawClient::connect(&server.address());
    for i in 0..acked {
        let (reply, _) = c.call(&Request::GetData(PathWatchRequest { path: format!("/n{i}"), watch: false }));
        assert_eq!(reply.err(), 0, "acknowledged /n{i} (of {acked}) is missing after the restart");
        assert_eq!(GetDataResponse::decode_exact(&reply.body).unwrap().data.unwrap(), value(i));
    }
    drop(server);
    drop(volume);
}
