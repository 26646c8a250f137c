//! A connection's limits — what it may buffer, how long it may stay without a session, how much output
//! may queue for it — hold without stalling it or anyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fk_net::client::*;
use fk_net::jute::Jute;
use fk_tests::raw::{RawClient, frame};
use fk_tests::{TestServer, zk};

fn open_acl() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

fn create(path: &str, data: &[u8]) -> Request {
    let request = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: open_acl(), flags: 0 };
    Request::Write(WriteOp::Create { op: OpCode::Create, request })
}

fn set(path: &str, data: Vec<u8>) -> Request {
    Request::Write(WriteOp::SetData(SetDataRequest { path: path.into(), data: Some(data), version: -1 }))
}

/// Sends every request before reading any reply, then checks each reply: its xid, in order, and Ok.
fn pipelined_set_data(c: &mut RawClient, sizes: &[usize]) {
    let xids: Vec<i32> = sizes.iter().map(|&size| c.send(&set("/big", vec![size as u8; size]))).collect();
    for (xid, size) in xids.iter().zip(sizes) {
        let reply = c.recv().unwrap_or_else(|| panic!("no reply to the {size}-byte setData (xid {xid})"));
        assert_eq!((reply.header.xid, reply.err()), (*xid, 0), "{size}-byte setData");
    }
}

fn data_length(c: &mut RawClient, path: &str) -> usize {
    let (reply, _) = c.call(&Request::GetData(PathWatchRequest { path: path.into(), watch: false }));
    GetDataResponse::decode_exact(&reply.body).unwrap().data.map_or(0, |d| d.len())
}

/// Bursts of 100 KiB – 1 MiB setData requests, several MiB in flight on one connection: every one is
/// answered. Before, reading stopped at the connection's 1 MiB input cap and nothing re-armed it once
/// the buffered frames were consumed, so some requests never got a reply.
#[test]
fn pipelined_bursts_of_large_requests_are_all_answered() {
    let server = TestServer::start();
    let mut c = RawClient::connect(&server.address());
    c.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(c.call(&create("/big", b"")).0.err(), 0);
    let max = 1_000_000;
    for round in 0..4 {
        let sizes: Vec<usize> =
            (0..12).map(|i| 100 * 1024 + (i * 77_777 + round * 131_071) % (max - 100 * 1024)).collect();
        pipelined_set_data(&mut c, &sizes);
        assert_eq!(data_length(&mut c, "/big"), *sizes.last().unwrap());
    }
    pipelined_set_data(&mut c, &[max; 8]);
    assert_eq!(data_length(&mut c, "/big"), max);
}

/// With jute.maxbuffer raised, one frame may be larger than the default input cap: it still completes.
#[test]
fn a_frame_larger_than_the_default_input_cap_completes() {
    let server = TestServer::with_config("jute.maxbuffer=4194304");
    let mut c = RawClient::connect(&server.address());
    c.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(c.call(&create("/big", b"")).0.err(), 0);
    pipelined_set_data(&mut c, &[3 << 20, 1 << 20, 3 << 20, 100]);
    assert_eq!(data_length(&mut c, "/big"), 100);
}

/// A client library's async pipeline: 20 setData of 512 KiB in flight at once all succeed (before:
/// ConnectionLoss after the stall).
#[tokio::test]
async fn a_client_librarys_deep_async_pipeline_of_large_values_succeeds() {
    let server = TestServer::start();
    let client = zk::connect(&server).await;
    client.create("/big", b"", &zk::persistent()).await.unwrap();
    for round in 0..3u8 {
        let values: Vec<Vec<u8>> = (0..20u8).map(|i| vec![round * 20 + i; 512 * 1024]).collect();
        let writes = values.iter().map(|v| client.set_data("/big", v, None));
        let stats = futures_join_all(writes).await;
        let versions: Vec<i32> = stats.into_iter().map(|r| r.expect("setData").version).collect();
        assert!(versions.windows(2).all(|w| w[1] == w[0] + 1), "applied in order: {versions:?}");
        assert_eq!(client.get_data("/big").await.unwrap().0, values[19]);
    }
}

/// Awaits every future (they were all sent when created), in order.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<F> = futures.collect();
    let mut out = Vec::with_capacity(handles.len());
    for f in handles {
        out.push(f.await);
    }
    out
}

fn connect_request() -> Vec<u8> {
    frame(|out| {
        ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() }
            .encode(out)
    })
}

/// Reads until the server closes the connection; how long that took.
fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink).ok().map(|_| started.elapsed())
}

/// Connections that never finish their ConnectRequest (or send nothing) are closed after
/// sessionlessCnxnTimeout, as ZooKeeper closes them, so they cannot hold every maxClientCnxns slot.
#[test]
fn half_open_handshakes_are_closed_and_free_their_slots() {
    let server = TestServer::with_config("maxClientCnxns=60\nnio.sessionlessCnxnTimeout=1500");
    let half = connect_request()[..10].to_vec();
    let mut stuck: Vec<TcpStream> = (0..60)
        .map(|i| {
            let mut s = TcpStream::connect(server.address()).unwrap();
            if i % 2 == 0 {
                s.write_all(&half).unwrap();
            }
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let refused = RawClient::connect_with(&server.address(), ConnectRequest::default());
    assert!(refused.is_none(), "60 half-open connections hold every slot of 127.0.0.1");
    for s in &mut stuck {
        assert!(time_until_closed(s, Duration::from_secs(10)).is_some(), "a half-open connection is closed");
    }
    let mut c = RawClient::connect(&server.address());
    assert_eq!(c.call(&Request::Ping).0.err(), 0, "their slots are free again");
    assert!(server.log_text().contains("no session was established within 1500 ms"), "{}", server.log_text());
}

/// `ruok` is answered at once while 30 connections hold incomplete `stmk` requests (no mask, or part of
/// one). Before, the 4lw thread blocked on each in turn and `ruok` waited a minute.
#[test]
fn ruok_is_answered_while_incomplete_four_letter_words_hang() {
    let server = TestServer::with_config("nio.sessionlessCnxnTimeout=3000");
    let mut hanging: Vec<TcpStream> = (0..30)
        .map(|i| {
            let mut s = TcpStream::connect(server.address()).unwrap();
            s.write_all(if i % 2 == 0 { b"stmk" } else { b"stmk\0\0\0" }).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut ruok = TcpStream::connect(server.address()).unwrap();
    // A liveness bound, not a speed test: before, this answer took 60 s.
    ruok.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    ruok.write_all(b"ruok").unwrap();
    let mut answer = String::new();
    ruok.read_to_string(&mut answer).expect("ruok answered while stmk requests hang");
    assert_eq!(answer, "imok");
    // A complete stmk is answered with its mask; the incomplete ones are closed at their deadline,
    // unanswered (ZooKeeper cannot read a mask that is not there either).
    let mut stmk = TcpStream::connect(server.address()).unwrap();
    stmk.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stmk.write_all(b"stmk").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stmk.write_all(&0x1234i64.to_be_bytes()).unwrap();
    let mut answer = String::new();
    stmk.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, 0x1234.to_string());
    assert_eq!(server.four_letter("gtmk"), 0x1234.to_string());
    for s in &mut hanging {
        let mut sink = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.read_to_end(&mut sink).expect("closed at its deadline");
        assert!(sink.is_empty(), "no answer without a mask");
    }
}

/// A client that watches everything and never reads: once more than maxQueuedOutputBytes of events
/// are queued for it, its connection is closed with a log line, and the server's memory stays bounded
/// (before: RSS grew from 17 MB to 1.9 GB in 20 s). Other clients are unaffected.
#[test]
fn a_watcher_that_never_reads_is_closed_and_memory_stays_bounded() {
    let server = TestServer::with_config("ferrokeeper.maxQueuedOutputBytes=1048576");
    let path = format!("/{}", "w".repeat(1000));
    let mut writer = RawClient::connect(&server.address());
    assert_eq!(writer.call(&create(&path, b"")).0.err(), 0);
    let mut watcher = RawClient::connect(&server.address());
    let add = Request::AddWatch(AddWatchRequest { path: "/".into(), mode: 1 });
    assert_eq!(watcher.call(&add).0.err(), 0);
    let rss_before = server.rss_bytes();
    let mut writes = 0;
    while !server.log_text().contains("the client is not reading") {
        assert!(writes < 400_000, "the watcher was never closed:\n{}", server.log_text());
        let xids: Vec<i32> = (0..500).map(|_| writer.send(&set(&path, b"x".to_vec()))).collect();
        for xid in xids {
            assert_eq!(writer.recv().expect("writer served").header.xid, xid);
        }
        writes += 500;
    }
    let rss_after = server.rss_bytes();
    assert!(
        rss_after < rss_before + (64 << 20),
        "RSS grew from {rss_before} to {rss_after} bytes over {writes} events for a client that does not read"
    );
    // The watcher gets what the kernel had buffered for it, then the end of the connection.
    watcher.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut events = 0;
    while let Some(reply) = watcher.recv() {
        assert_eq!(reply.header.xid, xid::NOTIFICATION);
        events += 1;
    }
    assert!(events < writes, "the connection ended before every event was delivered");
    assert_eq!(writer.call(&Request::Ping).0.err(), 0);
}

/// More connections ready at once than a shard reads in one turn (64): every one is served, those
/// deferred first on the next turn.
#[test]
fn many_connections_ready_at_once_are_all_served() {
    let server = TestServer::with_config("maxClientCnxns=0");
    let mut clients: Vec<RawClient> = (0..300).map(|_| RawClient::connect(&server.address())).collect();
    for round in 0..3 {
        let sent: Vec<Vec<i32>> = clients
            .iter_mut()
            .map(|c| {
                (0..20)
                    .map(|_| c.send(&Request::GetData(PathWatchRequest { path: "/".into(), watch: false })))
                    .collect()
            })
            .collect();
        for (c, xids) in clients.iter_mut().zip(sent) {
            for xid in xids {
                let reply = c.recv().unwrap_or_else(|| panic!("round {round}: a connection was not served"));
                assert_eq!((reply.header.xid, reply.err()), (xid, 0));
            }
        }
    }
}
