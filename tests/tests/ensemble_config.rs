//! `Config::quorum_config_text` is byte for byte the membership text a real ZooKeeper 3.8 member puts in
//! its election notifications, for the same zoo.cfg. A Java QuorumPeerMain runs as sid 1 of a
//! three-member loopback ensemble whose other members are absent; we connect to its election port as
//! sid 3 (the higher sid, so it keeps our connection), send our opening message and one notification,
//! and read its notifications back with our codec. This also checks that codec against ZooKeeper.
//! Skips with a printed reason where Java or Debian's zookeeper package is missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ferrokeeper::config::Config;
use fk_net::quorum::{InitialMessage, Notification, ServerState, Vote};
use fk_tests::ensemble::JavaMember;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Connects once the Java member listens on its election port.
fn connect_when_up(java: &mut JavaMember, port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            return stream;
        }
        if let Ok(Some(status)) = java.child.try_wait() {
            panic!("ZooKeeper exited ({status}):\n{}", java.log_text());
        }
        assert!(Instant::now() < deadline, "ZooKeeper's election port never opened:\n{}", java.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = i32::from_be_bytes(length);
    assert!((1..=512 * 1024).contains(&length), "frame length {length}");
    let mut payload = vec![0u8; length as usize];
    stream.read_exact(&mut payload)?;
    Ok(payload)
}

#[test]
fn quorum_config_text_is_what_a_java_member_sends() {
    let Some(classpath) = fk_tests::ensemble::zookeeper_or_skip() else { return };
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("myid"), "1\n").unwrap();
    let [q1, e1, c1, q2, e2, q3, e3, c3] = std::array::from_fn(|_| free_port());
    // Client addresses in two forms (from a line, with and without a host) and none for member 2, so
    // the text covers each way ZooKeeper prints a member.
    let text = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\nadmin.enableServer=false\n\
         server.1=127.0.0.1:{q1}:{e1};127.0.0.1:{c1}\nserver.2=localhost:{q2}:{e2}\n\
         server.3=127.0.0.1:{q3}:{e3}:participant;{c3}\n",
        data.display()
    );
    let cfg = work.path().join("zoo.cfg");
    std::fs::write(&cfg, &text).unwrap();
    let ours = Config::from_file(&cfg).expect("our reading of the config");
    assert_eq!(ours.my_id, Some(1));
    let expected = ours.quorum_config_text();

    let mut java = JavaMember::start(&classpath, &cfg, &work.path().join("zk.log"));
    let mut stream = connect_when_up(&mut java, e1);
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut opening = Vec::new();
    InitialMessage { sid: 3, addresses: vec![format!("127.0.0.1:{e3}")] }.encode(&mut opening);
    let vote = Notification {
        state: ServerState::Looking,
        vote: Vote { leader: 3, zxid: 0, peer_epoch: 0 },
        election_epoch: 1,
        version: 2,
        config: expected.clone().into_bytes(),
    };
    let payload = vote.to_bytes();
    opening.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    opening.extend_from_slice(&payload);
    stream.write_all(&opening).unwrap();

    // Its first notification (its own vote, or ours adopted): a LOOKING member's, with its config.
    let frame = read_frame(&mut stream).unwrap_or_else(|e| panic!("no notification ({e}):\n{}", java.log_text()));
    let theirs = Notification::decode(&frame).expect("our codec reads ZooKeeper's notification");
    assert_eq!(theirs.state, ServerState::Looking);
    assert_eq!(theirs.version, 2);
    assert!([1, 3].contains(&theirs.vote.leader), "{theirs:?}");
    assert_eq!(String::from_utf8_lossy(&theirs.config), expected, "ZooKeeper's membership text differs from ours");
    assert!(expected.contains(&format!("server.3=127.0.0.1:{q3}:{e3}:participant;0.0.0.0:{c3}\n")), "{expected}");

    // ZooKeeper read our notification: our vote (same epoch and zxid, higher sid) beats its own, so it
    // adopts it and says so.
    let mut adopted = theirs.vote.leader == 3;
    for _ in 0..5 {
        if adopted {
            break;
        }
        let frame =
            read_frame(&mut stream).unwrap_or_else(|e| panic!("no second notification ({e}):\n{}", java.log_text()));
        let next = Notification::decode(&frame).expect("our codec reads ZooKeeper's notification");
        assert_eq!(next.config, theirs.config);
        adopted = next.vote.leader == 3 && next.election_epoch == 1;
    }
    assert!(adopted, "ZooKeeper never adopted our vote:\n{}", java.log_text());
}
