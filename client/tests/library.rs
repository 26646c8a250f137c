//! The library against a real ferrokeeper: every operation zkCli needs, watches, chroot, reconnect.

use std::time::Duration;

use fk_client::{
    AddWatchMode, Client, CreateMode, Error, ErrorCode, EventType, KeeperState, MultiResult, Options, WatchedEvent,
    WatcherType, WriteOp, open_acl_unsafe,
};
use fk_net::client::{CheckVersionRequest, DeleteRequest};
use fk_tests::TestServer;

const EVENT_WAIT: Duration = Duration::from_secs(10);

fn options() -> Options {
    Options { session_timeout: Duration::from_secs(10), connect_wait: Duration::from_secs(10), ..Options::default() }
}

fn connect(server: &TestServer) -> Client {
    Client::connect(&server.address(), options()).expect("connect")
}

/// The next event that is not a connection-state change.
fn next_node_event(client: &Client) -> WatchedEvent {
    loop {
        let event = client.events().recv_timeout(EVENT_WAIT).expect("an event");
        if event.event_type != EventType::None {
            return event;
        }
    }
}

fn code(result: Result<impl std::fmt::Debug, Error>) -> ErrorCode {
    result.expect_err("an error").code().expect("a ZooKeeper code")
}

#[test]
fn basic_operations_and_their_errors() {
    let server = TestServer::with_config("extendedTypesEnabled=true");
    let client = connect(&server);
    let acl = open_acl_unsafe();
    let (path, stat) = client.create("/a", Some(b"one"), &acl, CreateMode::Persistent).unwrap();
    assert_eq!((path.as_str(), stat.version, stat.data_length), ("/a", 0, 3));
    assert_eq!(code(client.create("/a", None, &acl, CreateMode::Persistent)), ErrorCode::NodeExists);
    let (seq, _) = client.create("/a/s-", None, &acl, CreateMode::PersistentSequential).unwrap();
    assert_eq!(seq, "/a/s-0000000000");
    client.create("/a/e", None, &acl, CreateMode::Ephemeral).unwrap();
    client.create("/c", None, &acl, CreateMode::Container).unwrap();
    client.create("/t", None, &acl, CreateMode::PersistentWithTtl(60_000)).unwrap();

    let (data, stat) = client.get_data("/a", false).unwrap();
    assert_eq!((data.as_deref(), stat.num_children), (Some(&b"one"[..]), 2));
    assert_eq!(client.set_data("/a", Some(b"two"), 0).unwrap().version, 1);
    assert_eq!(code(client.set_data("/a", Some(b"x"), 0)), ErrorCode::BadVersion);
    assert_eq!(client.exists("/missing", false).unwrap(), None);
    assert!(client.exists("/a", false).unwrap().is_some());
    let mut children = client.get_children("/a", false).unwrap();
    children.sort();
    assert_eq!(children, ["e", "s-0000000000"]);
    let all = client.get_all_children_number("/").unwrap();
    assert_eq!(all, 8, "a, a/s, a/e, c, t, zookeeper, zookeeper/config, zookeeper/quota");
    assert_eq!(client.get_ephemerals("/").unwrap(), ["/a/e"]);
    assert_eq!(code(client.delete("/a", -1)), ErrorCode::NotEmpty);
    assert_eq!(code(client.delete("/nope", -1)), ErrorCode::NoNode);
    assert!(matches!(client.get_data("bad", false), Err(Error::InvalidPath { .. })));
    client.sync("/").unwrap();
}

#[test]
fn acls_auth_and_who_am_i() {
    let server = TestServer::start();
    let client = connect(&server);
    client.add_auth("digest", b"alice:secret").unwrap();
    let who = client.who_am_i().unwrap();
    assert!(who.iter().any(|c| c.auth_scheme == "digest" && c.user == "alice"), "{who:?}");
    let auth_acl = [fk_client::Acl::new(fk_client::perms::ALL, "auth", "")];
    client.create("/secret", Some(b"s"), &auth_acl, CreateMode::Persistent).unwrap();
    let (acl, _) = client.get_acl("/secret").unwrap();
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("alice:"));

    let stranger = connect(&server);
    assert_eq!(code(stranger.get_data("/secret", false)), ErrorCode::NoAuth);
    let stat = client.set_acl("/secret", &open_acl_unsafe(), 0).unwrap();
    assert_eq!(stat.aversion, 1);
    assert!(stranger.get_data("/secret", false).is_ok());
}

#[test]
fn multi_commits_all_or_reports_each() {
    let server = TestServer::start();
    let client = connect(&server);
    let acl = open_acl_unsafe();
    let ops = vec![
        client.create_op("/m1", Some(b"x"), &acl, CreateMode::Persistent),
        client.create_op("/m2", None, &acl, CreateMode::Persistent),
    ];
    let results = client.multi(ops).unwrap();
    // ZooKeeper 3.8 answers a create2 inside a multi with a plain create result (path, no Stat).
    assert_eq!(results, [MultiResult::Create("/m1".into()), MultiResult::Create("/m2".into())]);
    let failing = vec![
        WriteOp::Delete(DeleteRequest { path: "/m1".into(), version: -1 }),
        WriteOp::Check(CheckVersionRequest { path: "/m2".into(), version: 5 }),
    ];
    let results = client.multi(failing).unwrap();
    assert_eq!(results.last(), Some(&MultiResult::Error(ErrorCode::BadVersion.as_i32())));
    assert!(client.exists("/m1", false).unwrap().is_some(), "a failed multi changes nothing");
}

#[test]
fn one_shot_and_persistent_watches_deliver_events() {
    let server = TestServer::start();
    let client = connect(&server);
    let writer = connect(&server);
    let acl = open_acl_unsafe();
    assert_eq!(client.exists("/w", true).unwrap(), None);
    writer.create("/w", None, &acl, CreateMode::Persistent).unwrap();
    let event = next_node_event(&client);
    assert_eq!((event.event_type, event.path.as_deref()), (EventType::NodeCreated, Some("/w")));
    assert_eq!(event.state, KeeperState::SyncConnected);

    client.add_watch("/w", AddWatchMode::PersistentRecursive).unwrap();
    writer.create("/w/x", None, &acl, CreateMode::Persistent).unwrap();
    writer.set_data("/w/x", Some(b"1"), -1).unwrap();
    let first = next_node_event(&client);
    let second = next_node_event(&client);
    assert_eq!((first.event_type, first.path.as_deref()), (EventType::NodeCreated, Some("/w/x")));
    assert_eq!((second.event_type, second.path.as_deref()), (EventType::NodeDataChanged, Some("/w/x")));

    client.remove_watches("/w", WatcherType::Any, false).unwrap();
    assert_eq!(code(client.remove_watches("/w", WatcherType::Any, false)), ErrorCode::NoWatcher);
}

#[test]
fn chroot_is_applied_to_requests_replies_and_events() {
    let server = TestServer::start();
    let root = connect(&server);
    root.create("/app", None, &open_acl_unsafe(), CreateMode::Persistent).unwrap();
    let chrooted = Client::connect(&format!("{}/app", server.address()), options()).unwrap();
    chrooted.get_children("/", true).unwrap();
    let (path, _) = chrooted.create("/n-", None, &open_acl_unsafe(), CreateMode::EphemeralSequential).unwrap();
    assert_eq!(path, "/n-0000000000");
    assert!(root.exists("/app/n-0000000000", false).unwrap().is_some());
    let event = next_node_event(&chrooted);
    assert_eq!((event.event_type, event.path.as_deref()), (EventType::NodeChildrenChanged, Some("/")));
    assert_eq!(chrooted.get_ephemerals("/").unwrap(), ["/n-0000000000"]);
    // getConfig ignores the chroot: /zookeeper/config always exists on a 3.5+ server.
    assert!(chrooted.get_config(false).is_ok());
}

/// A port nothing listens on now (bound, then released), for a server that must come back on it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn session_and_watches_survive_a_server_restart() {
    let port = free_port();
    let mut server = TestServer::with_config(&format!("clientPort={port}"));
    // A dead host first: each (re)connection goes round the list and must skip it.
    let connect = format!("127.0.0.1:{},127.0.0.1:{port}", free_port());
    let client = Client::connect(&connect, options()).unwrap();
    let acl = open_acl_unsafe();
    client.create("/keep", None, &acl, CreateMode::Persistent).unwrap();
    client.create("/eph", None, &acl, CreateMode::Ephemeral).unwrap();
    client.get_data("/keep", true).unwrap();
    client.add_watch("/tree", AddWatchMode::PersistentRecursive).unwrap();
    let session = client.session_id();
    while client.events().try_recv().is_ok() {}

    server.restart();
    let writer = connect_to(&server);
    // Changed while the client is away or just back: either way its data watch (restored with
    // setWatches2, which fires at once for a change after the client's last zxid) reports it once.
    writer.set_data("/keep", Some(b"changed"), -1).unwrap();
    let mut seen = Vec::new();
    loop {
        let event = client.events().recv_timeout(EVENT_WAIT).expect("reconnected");
        match event.path {
            Some(path) => seen.push((event.event_type, path)),
            None if event.state == KeeperState::SyncConnected => break,
            None => {}
        }
    }
    // A persistent watch is restored without catch-up events (as ZooKeeper's setWatches): create the
    // node only once the client is back.
    writer.create("/tree", None, &acl, CreateMode::Persistent).unwrap();
    while seen.len() < 2 {
        let event = next_node_event(&client);
        seen.push((event.event_type, event.path.unwrap()));
    }
    seen.sort_by_key(|(_, path)| path.clone());
    assert_eq!(seen, [(EventType::NodeDataChanged, "/keep".into()), (EventType::NodeCreated, "/tree".into())]);
    assert_eq!(client.session_id(), session, "the same session, re-established");
    assert_eq!(client.get_ephemerals("/").unwrap(), ["/eph"], "its ephemeral lived through the restart");
}

fn connect_to(server: &TestServer) -> Client {
    Client::connect(&server.address(), options()).expect("connect")
}

#[test]
fn requests_fail_with_connection_loss_when_no_server_answers() {
    let mut server = TestServer::start();
    let client = Client::connect(
        &server.address(),
        Options {
            session_timeout: Duration::from_secs(10),
            connect_wait: Duration::from_millis(300),
            ..Options::default()
        },
    )
    .unwrap();
    server.kill();
    // The in-flight or next request fails once the connection is seen broken; nothing hangs.
    let mut result = client.exists("/", false);
    for _ in 0..50 {
        if result.is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        result = client.exists("/", false);
    }
    assert!(matches!(result, Err(Error::ConnectionLoss { .. })), "{result:?}");
    let disconnected = client.events().iter().find(|e| e.state == KeeperState::Disconnected);
    assert!(disconnected.is_some());
}

#[test]
fn closing_the_session_removes_its_ephemerals() {
    let server = TestServer::start();
    let owner = connect(&server);
    owner.create("/gone", None, &open_acl_unsafe(), CreateMode::Ephemeral).unwrap();
    let observer = connect(&server);
    assert!(observer.exists("/gone", true).unwrap().is_some());
    owner.close();
    let event = next_node_event(&observer);
    assert_eq!((event.event_type, event.path.as_deref()), (EventType::NodeDeleted, Some("/gone")));
}

#[test]
fn pings_keep_an_idle_session_alive() {
    let server = TestServer::start();
    let options = Options {
        session_timeout: Duration::from_secs(2),
        connect_wait: Duration::from_secs(10),
        ..Options::default()
    };
    let client = Client::connect(&server.address(), options).unwrap();
    assert_eq!(client.session_timeout_ms(), 2000);
    client.create("/idle", None, &open_acl_unsafe(), CreateMode::Ephemeral).unwrap();
    let session = client.session_id();
    // Idle for well over the session timeout: only pings keep the session.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(client.get_ephemerals("/").unwrap(), ["/idle"]);
    assert_eq!(client.session_id(), session);
    let lost = client.events().try_iter().find(|e| e.state != KeeperState::SyncConnected);
    assert_eq!(lost, None, "no disconnect while idle");
}
