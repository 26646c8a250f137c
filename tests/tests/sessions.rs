//! Sessions through the third-party client: auth and whoAmI, digest ACLs, and a session that moves to a
//! new connection keeping its watches (setWatches on reconnect).

use std::time::Duration;

use fk_tests::TestServer;
use fk_tests::zk::{self, persistent};

#[tokio::test]
async fn digest_auth_acls_and_who_am_i() {
    let server = TestServer::start();
    let alice = zk::Client::connector().with_auth("digest", b"alice:secret").connect(&server.address()).await.unwrap();
    let users = alice.list_auth_users().await.unwrap();
    assert!(users.contains(&zk::AuthUser::new("digest", "alice")), "{users:?}");
    assert!(users.contains(&zk::AuthUser::new("ip", "127.0.0.1")), "{users:?}");
    let private = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    alice.create("/alice", b"mine", &private).await.unwrap();
    let (acl, _) = alice.get_acl("/alice").await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].scheme(), "digest");
    assert_eq!(acl[0].id(), "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");

    let stranger = zk::Client::connect(&server.address()).await.unwrap();
    assert_eq!(stranger.get_data("/alice").await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(stranger.set_data("/alice", b"x", None).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(stranger.create("/alice/x", b"", &persistent()).await.unwrap_err(), zk::Error::NoAuth);
    stranger.auth("digest", b"alice:secret").await.unwrap();
    assert_eq!(stranger.get_data("/alice").await.unwrap().0, b"mine");
    assert_eq!(
        stranger.create("/n", b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all())).await.map(|_| ()),
        Ok(())
    );
    let anonymous = zk::Client::connect(&server.address()).await.unwrap();
    let creator_only = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    assert_eq!(anonymous.create("/m", b"", &creator_only).await.unwrap_err(), zk::Error::InvalidAcl);
}

#[tokio::test]
async fn a_moved_session_keeps_its_watches_and_ephemerals() {
    let server = TestServer::start();
    let writer = zk::Client::connect(&server.address()).await.unwrap();
    writer.create("/x", b"0", &persistent()).await.unwrap();
    let client =
        zk::Client::connector().with_session_timeout(Duration::from_secs(20)).connect(&server.address()).await.unwrap();
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    client.create("/mine", b"", &eph).await.unwrap();
    let (_, _, watch) = client.get_and_watch_data("/x").await.unwrap();
    let mut persistent_watch = client.watch("/x", zk::AddWatchMode::Persistent).await.unwrap();
    let mut states = client.state_watcher();

    // Another connection takes over the session: the server closes the client's connection, and the
    // client reconnects and re-registers its watches with setWatches/setWatches2.
    let thief = zk::Client::connector()
        .with_session(client.session().clone())
        .with_detached()
        .connect(&server.address())
        .await
        .unwrap();
    drop(thief);
    // The state watcher reports the latest state: a quick reconnect may show only SyncConnected.
    let mut state = tokio::time::timeout(Duration::from_secs(10), states.changed()).await.unwrap();
    if state == zk::SessionState::Disconnected {
        state = tokio::time::timeout(Duration::from_secs(10), states.changed()).await.unwrap();
    }
    assert_eq!(state, zk::SessionState::SyncConnected);

    writer.set_data("/x", b"1", None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.changed()).await.unwrap();
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged, "{event:?}");
    // A persistent watcher also hears the connection's state changes; skip those.
    let event = loop {
        let event = tokio::time::timeout(Duration::from_secs(5), persistent_watch.changed()).await.unwrap();
        if event.event_type != zk::EventType::Session {
            break event;
        }
    };
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(client.list_ephemerals("/").await.unwrap(), vec!["/mine"], "the session and its ephemerals survived");
}
