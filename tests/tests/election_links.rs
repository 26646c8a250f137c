//! The election port's connection manager (`ferrokeeper::peers::ElectionLinks`) on loopback: messages
//! both ways between every pair, exactly one TCP connection per pair (read from /proc/net/tcp*), a
//! restarted member reached again, bad input dropping only its own connection, the one-message outbox,
//! and interoperation with a real Apache ZooKeeper 3.8 member (skipped with a reason where Java or
//! Debian's package is missing).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use ferrokeeper::peers::{ElectionLinkSettings, ElectionLinks, IncomingReceiver, LinkStats};
use fk_net::quorum::election::{PROTOCOL_VERSION_V1, ServerState};
use fk_net::quorum::{InitialMessage, Notification, Vote};
use fk_tests::ensemble::JavaMember;

const SETTLE: Duration = Duration::from_secs(20);

/// A free port below the kernel's ephemeral range (32768 and up by default), so that no outgoing
/// connection of a test running beside this one can take it between this choice and the bind.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed =
        std::process::id() ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(step.wrapping_mul(7919)) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn address(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// One of our members: its links, its incoming notifications, its port.
struct Member {
    sid: i64,
    port: u16,
    links: ElectionLinks,
    incoming: IncomingReceiver,
}

fn start_member(sid: i64, ports: &BTreeMap<i64, u16>) -> Member {
    let port = ports[&sid];
    let peers = ports.iter().filter(|(s, _)| **s != sid).map(|(s, p)| (*s, address(*p))).collect();
    let listen: SocketAddr = address(port).parse().unwrap();
    let mut settings = ElectionLinkSettings::new(sid, listen, address(port), peers);
    settings.connect_timeout_ms = 1000;
    settings.handshake_timeout_ms = 2000;
    let (links, incoming) = ElectionLinks::start(settings).expect("start election links");
    assert_eq!(links.local_addr().port(), port);
    Member { sid, port, links, incoming }
}

fn ports_for(sids: &[i64]) -> BTreeMap<i64, u16> {
    sids.iter().map(|sid| (*sid, free_port())).collect()
}

/// Waits until `incoming` has delivered every wanted (from, payload); extra messages (the resend of the
/// last message on a new connection) are allowed.
fn expect_all(incoming: &IncomingReceiver, wanted: &[(i64, Vec<u8>)], what: &str) {
    expect_all_nudging(incoming, wanted, what, || {});
}

/// The same, calling `nudge` every 200 ms as the election does on each notification timeout
/// (`connect_all` when not everything was delivered): a dial already in progress when a peer came back
/// makes the manager skip a new one, and only the next attempt reaches it.
fn expect_all_nudging(incoming: &IncomingReceiver, wanted: &[(i64, Vec<u8>)], what: &str, nudge: impl Fn()) {
    let mut missing: BTreeSet<(i64, Vec<u8>)> = wanted.iter().cloned().collect();
    let deadline = Instant::now() + SETTLE;
    while !missing.is_empty() {
        assert!(Instant::now() < deadline, "{what}: never received {:?}", printable(&missing));
        match incoming.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => {
                missing.remove(&(m.from, m.payload));
            }
            Err(_) => nudge(),
        }
    }
}

fn printable(set: &BTreeSet<(i64, Vec<u8>)>) -> Vec<(i64, String)> {
    set.iter().map(|(s, p)| (*s, String::from_utf8_lossy(p).into_owned())).collect()
}

/// Every member sends `"{tag} {i}->{j}"` to every other member and to itself, and receives all of them.
fn exchange(members: &[Member], tag: &str) {
    for from in members {
        for to in members {
            from.links.send(to.sid, format!("{tag} {}->{}", from.sid, to.sid).into_bytes());
        }
    }
    for to in members {
        let wanted: Vec<(i64, Vec<u8>)> =
            members.iter().map(|from| (from.sid, format!("{tag} {}->{}", from.sid, to.sid).into_bytes())).collect();
        expect_all(&to.incoming, &wanted, &format!("member {}", to.sid));
    }
}

/// ESTABLISHED TCP sockets (IPv4 and IPv6, as the JVM uses dual-stack sockets) as (local port, remote port).
fn established() -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap(), 16).unwrap();
            if fields.len() > 3 && fields[3] == "01" {
                out.push((port(fields[1]), port(fields[2])));
            }
        }
    }
    out
}

/// For each listening port, how many established connections it accepted.
fn accepted_at(ports: &BTreeMap<i64, u16>) -> BTreeMap<i64, usize> {
    let sockets = established();
    ports.iter().map(|(sid, port)| (*sid, sockets.iter().filter(|(local, _)| local == port).count())).collect()
}

/// The larger sid connects, so member k's port has accepted one connection from every larger sid, and
/// nothing else: exactly one connection per pair. Also waits until the members are quiet (no counter
/// moving for 300 ms): a late opening message from a smaller sid still makes the larger one replace its
/// connection, as in ZooKeeper.
fn assert_one_connection_per_pair(members: &[Member]) {
    let ports: BTreeMap<i64, u16> = members.iter().map(|m| (m.sid, m.port)).collect();
    let expected: BTreeMap<i64, usize> =
        ports.keys().map(|sid| (*sid, ports.keys().filter(|other| *other > sid).count())).collect();
    let deadline = Instant::now() + SETTLE;
    loop {
        let stats: Vec<LinkStats> = members.iter().map(|m| m.links.stats()).collect();
        let actual = accepted_at(&ports);
        let all_linked = members.iter().all(|m| m.links.connected_peers().len() == members.len() - 1);
        if actual == expected && all_linked {
            std::thread::sleep(Duration::from_millis(300));
            if members.iter().map(|m| m.links.stats()).eq(stats) && accepted_at(&ports) == expected {
                break;
            }
        }
        if Instant::now() > deadline {
            let links: Vec<(i64, Vec<i64>, LinkStats)> =
                members.iter().map(|m| (m.sid, m.links.connected_peers(), m.links.stats())).collect();
            panic!("connections per listening port {actual:?}, expected {expected:?}; links {links:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for m in members {
        let others: Vec<i64> = members.iter().map(|o| o.sid).filter(|s| *s != m.sid).collect();
        assert_eq!(m.links.connected_peers(), others, "member {}", m.sid);
    }
}

fn start_cluster(sids: &[i64]) -> Vec<Member> {
    let ports = ports_for(sids);
    sids.iter().map(|sid| start_member(*sid, &ports)).collect()
}

#[test]
fn three_members_talk_both_ways_over_one_connection_per_pair() {
    let members = start_cluster(&[1, 2, 3]);
    exchange(&members, "hello");
    assert_one_connection_per_pair(&members);
    exchange(&members, "again");
    for m in &members {
        assert!(m.links.have_delivered(), "member {} delivered everything", m.sid);
        let stats = m.links.stats();
        assert_eq!(stats.refused, 0, "member {}: {stats:?}", m.sid);
    }
    for m in members {
        m.links.shutdown();
    }
}

#[test]
fn five_members_talk_both_ways_over_one_connection_per_pair() {
    let members = start_cluster(&[1, 2, 3, 4, 5]);
    exchange(&members, "hello");
    assert_one_connection_per_pair(&members);
    // The smallest member only accepts; the largest only opens.
    assert_eq!(members[0].links.stats().opened, 0);
    assert_eq!(members[4].links.stats().accepted, 0);
    for m in members {
        m.links.shutdown();
    }
}

#[test]
fn a_restarted_member_is_reached_again() {
    let sids = [1, 2, 3];
    let ports = ports_for(&sids);
    let mut members: Vec<Member> = sids.iter().map(|sid| start_member(*sid, &ports)).collect();
    exchange(&members, "before");
    assert_one_connection_per_pair(&members);

    let old = members.remove(1);
    old.links.shutdown();
    let deadline = Instant::now() + SETTLE;
    while members.iter().any(|m| m.links.connected_peers().contains(&2)) {
        assert!(Instant::now() < deadline, "the others notice member 2's connections closing");
        std::thread::sleep(Duration::from_millis(20));
    }
    // While member 2 is down, the others' messages wait in their outboxes.
    for m in &members {
        m.links.send(2, format!("while down {}->2", m.sid).into_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(members.iter().all(|m| !m.links.have_delivered()), "nothing can be delivered to a stopped member");

    let restarted = start_member(2, &ports);
    let wanted: Vec<(i64, Vec<u8>)> =
        members.iter().map(|m| (m.sid, format!("while down {}->2", m.sid).into_bytes())).collect();
    let reconnect = || members.iter().for_each(|m| m.links.connect_all());
    reconnect();
    expect_all_nudging(&restarted.incoming, &wanted, "restarted member 2", reconnect);
    members.insert(1, restarted);
    exchange(&members, "after");
    assert_one_connection_per_pair(&members);
    for m in members {
        m.links.shutdown();
    }
}

fn opening(sid: i64) -> Vec<u8> {
    let mut bytes = Vec::new();
    InitialMessage { sid, addresses: vec!["127.0.0.1:1".into()] }.encode(&mut bytes);
    bytes
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// Whether the member closed `stream`: end of stream or a reset within a few seconds, not a timeout.
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a resent message; keep reading
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn bad_input_drops_only_its_own_connection() {
    let members = start_cluster(&[1, 2, 3]);
    exchange(&members, "hello");
    assert_one_connection_per_pair(&members);
    let target = &members[0];
    let port = target.port;
    let before = target.links.stats();

    // (what the stranger sends, whether the member must close the connection)
    let oversized = [opening(99), (512 * 1024 + 1i32).to_be_bytes().to_vec()].concat();
    let empty_frame = [opening(98), 0i32.to_be_bytes().to_vec()].concat();
    let negative_frame = [opening(97), (-5i32).to_be_bytes().to_vec()].concat();
    let unknown_version = (-3i64).to_be_bytes().to_vec();
    let huge_address = [PROTOCOL_VERSION_V1.to_be_bytes(), 5i64.to_be_bytes()].concat();
    let huge_address = [huge_address, 4096i32.to_be_bytes().to_vec()].concat();
    let own_sid = opening(1);
    let garbage = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    let table: [(&str, Vec<u8>); 7] = [
        ("frame over 512 KiB", oversized),
        ("empty frame", empty_frame),
        ("negative frame length", negative_frame),
        ("unknown protocol version", unknown_version),
        ("address length over 2048", huge_address),
        ("our own sid", own_sid),
        ("HTTP garbage", garbage),
    ];
    for (what, bytes) in table {
        let mut stranger = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stranger.write_all(&bytes).unwrap();
        assert!(closed_by_peer(&mut stranger), "{what}: the connection must be dropped");
    }
    let stats = target.links.stats();
    // HTTP's first eight bytes read as a legacy opening with a (huge) sid; its next four as a bad length.
    assert_eq!(stats.broken - before.broken, 4, "four accepted connections broken by their frames: {stats:?}");
    assert_eq!(stats.refused - before.refused, 3, "three refused in their handshake: {stats:?}");

    // The members' own connections were untouched.
    assert_one_connection_per_pair(&members);
    exchange(&members, "still");
    for m in members {
        m.links.shutdown();
    }
}

#[test]
fn unknown_sids_and_id_less_observers_are_accepted() {
    let members = start_cluster(&[1, 2]);
    let target = &members[0];
    // An observer not in the configuration, with a larger sid: kept, its frames delivered, and replies
    // reach it over the same connection.
    let mut observer = TcpStream::connect(("127.0.0.1", target.port)).unwrap();
    observer.write_all(&[opening(50), frame(b"from 50")].concat()).unwrap();
    expect_all(&target.incoming, &[(50, b"from 50".to_vec())], "unknown sid 50");
    target.links.send(50, b"to 50".to_vec());
    let mut reply = [0u8; 9];
    observer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    observer.read_exact(&mut reply).unwrap();
    assert_eq!(reply, frame(b"to 50")[..]);

    // A pre-3.5 observer announcing Long.MAX_VALUE gets a fresh negative id, as in ZooKeeper.
    let mut anonymous = TcpStream::connect(("127.0.0.1", target.port)).unwrap();
    anonymous.write_all(&[opening(i64::MAX), frame(b"anonymous")].concat()).unwrap();
    expect_all(&target.incoming, &[(-1, b"anonymous".to_vec())], "observer without an id");
    assert_eq!(target.links.connected_peers(), [-1, 50]);

    // A legacy (3.4) opening: only the sid.
    let mut legacy = TcpStream::connect(("127.0.0.1", target.port)).unwrap();
    legacy.write_all(&[60i64.to_be_bytes().to_vec(), frame(b"legacy")].concat()).unwrap();
    expect_all(&target.incoming, &[(60, b"legacy".to_vec())], "legacy opening");

    // A newer connection from the same sid replaces the older one.
    let mut again = TcpStream::connect(("127.0.0.1", target.port)).unwrap();
    again.write_all(&[opening(50), frame(b"from 50 again")].concat()).unwrap();
    expect_all(&target.incoming, &[(50, b"from 50 again".to_vec())], "replacing connection");
    assert!(closed_by_peer(&mut observer), "the older connection from sid 50 is closed");
    for m in members {
        m.links.shutdown();
    }
}

#[test]
fn an_unsent_message_is_replaced_by_a_newer_one() {
    let ports = ports_for(&[1, 2]);
    let first = start_member(1, &ports);
    // Member 2 is not running: the message cannot leave member 1's outbox.
    first.links.send(2, b"first".to_vec());
    first.links.send(2, b"second".to_vec());
    assert_eq!(first.links.stats().replaced, 1);
    assert!(!first.links.have_delivered());
    // Ours to ourselves loop back, as ZooKeeper's toSend does.
    first.links.send(1, b"myself".to_vec());
    expect_all(&first.incoming, &[(1, b"myself".to_vec())], "loopback");

    let second = start_member(2, &ports);
    first.links.connect_all();
    let got = loop {
        match second.incoming.recv_timeout(Duration::from_millis(200)) {
            Ok(got) => break got,
            Err(_) => first.links.connect_all(),
        }
    };
    assert_eq!((got.from, got.payload.as_slice()), (1, &b"second"[..]), "the newest message arrives");
    let deadline = Instant::now() + SETTLE;
    while !first.links.have_delivered() {
        assert!(Instant::now() < deadline, "the outbox drains");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Duplicates of "second" may follow (a new connection resends the last message); "first" never does.
    while let Ok(late) = second.incoming.recv_timeout(Duration::from_millis(500)) {
        assert_eq!(late.payload, b"second", "the replaced message never leaves");
    }
    first.links.shutdown();
    second.links.shutdown();
}

#[test]
fn shutdown_does_not_wait_for_silent_strangers_or_unreachable_peers() {
    let ports = ports_for(&[1, 2]);
    let member = start_member(1, &ports);
    let _silent = TcpStream::connect(("127.0.0.1", ports[&1])).unwrap();
    member.links.send(2, b"nobody listens".to_vec());
    std::thread::sleep(Duration::from_millis(100));
    let began = Instant::now();
    member.links.shutdown();
    assert!(began.elapsed() < Duration::from_secs(1), "shutdown took {:?}", began.elapsed());
    // The port is free again at once.
    let restarted = start_member(1, &ports);
    restarted.links.shutdown();
}

// ---------------------------------------------------------------------------------------------------
// Against Apache ZooKeeper 3.8

/// Starts ZooKeeper as sid 1 of a three-member loopback ensemble whose election ports are `election`.
fn start_java_member(classpath: &str, work: &Path, election: &BTreeMap<i64, u16>) -> JavaMember {
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("myid"), "1\n").unwrap();
    let mut cfg = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n",
        data.display(),
        free_port()
    );
    for (sid, port) in election {
        cfg.push_str(&format!("server.{sid}=127.0.0.1:{}:{port}\n", free_port()));
    }
    let cfg_path = work.join("zoo.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    JavaMember::start(classpath, &cfg_path, &work.join("zk.log"))
}

/// The next notification from `from`, decoded.
fn next_notification(incoming: &IncomingReceiver, from: i64, deadline: Instant, java: &JavaMember) -> Notification {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = incoming
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no notification from sid {from}; ZooKeeper's log:\n{}", java.log_text()));
        if m.from == from {
            return Notification::decode(&m.payload).expect("ZooKeeper's notification decodes");
        }
    }
}

#[test]
fn apache_zookeeper_connects_by_the_larger_sid_rule_and_its_notifications_decode() {
    let Some(classpath) = fk_tests::ensemble::zookeeper_or_skip() else { return };
    let work = tempfile::tempdir().unwrap();
    let election = ports_for(&[1, 2, 3]);
    let ours: Vec<Member> = [2, 3].iter().map(|sid| start_member(*sid, &election)).collect();
    let java = start_java_member(&classpath, work.path(), &election);
    let deadline = Instant::now() + Duration::from_secs(60);

    // ZooKeeper (sid 1) dials 2 and 3, sends its opening message and hangs up; each of ours, the larger
    // sid, connects back; ZooKeeper keeps those and sends its vote over them.
    let mut first = BTreeMap::new();
    for m in &ours {
        let n = next_notification(&m.incoming, 1, deadline, &java);
        assert_eq!(n.state, ServerState::Looking);
        assert_eq!(n.vote.leader, 1, "a LOOKING member first votes for itself");
        assert_eq!(n.version, 2);
        let config = String::from_utf8(n.config.clone()).expect("config text is UTF-8");
        for (sid, port) in &election {
            assert!(config.contains(&format!("server.{sid}=127.0.0.1:")), "{config}");
            assert!(config.contains(&format!(":{port}:participant")), "{config}");
        }
        first.insert(m.sid, n);
    }
    println!("ZooKeeper's notification: {:?}", first[&2]);
    println!("ZooKeeper's config text:\n{}", String::from_utf8_lossy(&first[&2].config));

    let java_port = election[&1];
    let deadline_links = Instant::now() + SETTLE;
    loop {
        let at_java = established().iter().filter(|(local, _)| *local == java_port).count();
        let at_ours =
            established().iter().filter(|(local, _)| *local == election[&2] || *local == election[&3]).count();
        if at_java == 2 && at_ours == 1 {
            break; // both of ours connected to ZooKeeper; 3 connected to 2
        }
        assert!(Instant::now() < deadline_links, "ZooKeeper accepted {at_java}, ours accepted {at_ours}");
        if at_ours == 0 {
            ours[1].links.send(2, b"link 3->2".to_vec());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for m in &ours {
        let stats = m.links.stats();
        assert!(stats.connected_back >= 1, "member {} answered ZooKeeper's dial by dialling back: {stats:?}", m.sid);
        assert!(m.links.connected_peers().contains(&1));
    }

    // Our frames reach ZooKeeper and decode there: a vote for sid 3 in ZooKeeper's round beats its own
    // vote (larger sid, same epoch and zxid), so it adopts it and tells everyone.
    let theirs = &first[&2];
    let better = Notification {
        state: ServerState::Looking,
        vote: Vote { leader: 3, zxid: theirs.vote.zxid, peer_epoch: theirs.vote.peer_epoch },
        election_epoch: theirs.election_epoch,
        version: 2,
        config: theirs.config.clone(),
    };
    ours[0].links.send(1, better.to_bytes());
    let adopted = loop {
        let n = next_notification(&ours[1].incoming, 1, deadline, &java);
        if n.vote.leader == 3 {
            break n;
        }
    };
    assert_eq!(adopted.election_epoch, theirs.election_epoch);
    println!("ZooKeeper adopted our vote: {adopted:?}");
    drop(java);
    for m in ours {
        m.links.shutdown();
    }
}
