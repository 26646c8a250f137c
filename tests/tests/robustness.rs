//! Bad input closes only the connection it came on; the server keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fk_net::client::*;
use fk_tests::TestServer;
use fk_tests::raw::{RawClient, frame};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use zookeeper_client as zk;

/// Sends `bytes` on a fresh connection and waits until the server closes it (or 2 s pass).
fn send_garbage(address: &str, bytes: &[u8]) {
    let Ok(mut stream) = TcpStream::connect(address) else { return };
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = stream.write_all(bytes);
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

fn assert_still_serving(server: &TestServer) {
    let mut c = RawClient::connect(&server.address());
    assert_eq!(c.call(&Request::Ping).0.err(), 0);
}

#[test]
fn oversized_and_negative_frames_close_only_their_connection() {
    let server = TestServer::with_config("jute.maxbuffer=1000");
    let mut healthy = RawClient::connect(&server.address());
    let mut big = RawClient::connect(&server.address());
    big.send_raw(1, OpCode::SetData.as_i32(), &vec![0u8; 2000]);
    assert!(big.recv().is_none(), "a frame over jute.maxbuffer closes the connection");
    let mut negative = RawClient::connect(&server.address());
    negative.stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(negative.recv().is_none(), "a negative length closes the connection");
    send_garbage(&server.address(), &0x7fff_ffffi32.to_be_bytes());
    assert_eq!(healthy.call(&Request::Ping).0.err(), 0);
    assert!(server.log_text().contains("exceeds jute.maxbuffer"), "the log says why");
}

#[test]
fn malformed_handshakes_and_headers_close_the_connection() {
    let server = TestServer::start();
    send_garbage(&server.address(), &frame(|out| out.extend_from_slice(&[1, 2, 3])));
    // A valid handshake followed by a frame too short for a request header.
    let mut c = RawClient::connect(&server.address());
    c.stream.write_all(&frame(|out| out.extend_from_slice(&[0, 0, 1]))).unwrap();
    assert!(c.recv().is_none());
    assert_still_serving(&server);
}

#[test]
fn max_client_connections_per_address_is_enforced() {
    let server = TestServer::with_config("maxClientCnxns=3");
    let clients: Vec<RawClient> = (0..3).map(|_| RawClient::connect(&server.address())).collect();
    let refused = RawClient::connect_with(
        &server.address(),
        ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() },
    );
    assert!(refused.is_none(), "the fourth connection from one address is closed");
    assert!(server.log_text().contains("Too many connections from 127.0.0.1 - max is 3"));
    drop(clients);
    std::thread::sleep(Duration::from_millis(200));
    assert_still_serving(&server);
}

/// Arbitrary byte streams, before and after a handshake, on many connections, while a real client keeps
/// working: nothing panics, every well-formed request is answered.
#[tokio::test]
async fn garbage_floods_do_not_disturb_other_sessions() {
    let server = TestServer::start();
    let address = server.address();
    let client = zk::Client::connect(&address).await.unwrap();
    let flood = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config { cases: 200, failure_persistence: None, ..Config::default() });
        let strategy = (any::<bool>(), prop::collection::vec(any::<u8>(), 0..2048));
        runner
            .run(&strategy, |(after_handshake, bytes)| {
                if after_handshake {
                    if let Some(mut c) = RawClient::connect_with(
                        &address,
                        ConnectRequest {
                            timeout_ms: 30_000,
                            passwd: vec![0; 16],
                            read_only: Some(false),
                            ..Default::default()
                        },
                    ) {
                        let _ = c.stream.write_all(&bytes);
                        let _ = c.stream.set_read_timeout(Some(Duration::from_millis(200)));
                        let mut sink = Vec::new();
                        let _ = c.stream.read_to_end(&mut sink);
                    }
                } else {
                    send_garbage(&address, &bytes);
                }
                Ok(())
            })
            .unwrap();
        // Framed garbage: well-formed lengths, random headers and bodies.
        let mut runner = TestRunner::new(Config { cases: 200, failure_persistence: None, ..Config::default() });
        let framed = (-20..120i32, prop::collection::vec(any::<u8>(), 0..512));
        runner
            .run(&framed, |(op, body)| {
                let mut c = RawClient::connect(&address);
                c.send_raw(1, op, &body);
                let _ = c.stream.set_read_timeout(Some(Duration::from_millis(300)));
                let _ = c.recv();
                Ok(())
            })
            .unwrap();
    });
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut i = 0;
    while !flood.is_finished() {
        let path = format!("/alive-{i}");
        client.create(&path, b"x", &options).await.expect("create during the flood");
        assert_eq!(client.get_data(&path).await.unwrap().0, b"x");
        i += 1;
    }
    flood.await.unwrap();
    assert!(i > 0);
    assert_still_serving(&server);
}
