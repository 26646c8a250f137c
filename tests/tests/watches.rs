//! Every watch kind through the third-party client: one-shot data/exists/child, persistent, recursive,
//! removal, and re-registration after a reconnect.

use std::time::Duration;

use fk_tests::TestServer;
use fk_tests::zk::{self, connect, persistent};

async fn event(watcher: zk::OneshotWatcher) -> zk::WatchedEvent {
    tokio::time::timeout(Duration::from_secs(5), watcher.changed()).await.expect("watch event within 5s")
}

async fn next(watcher: &mut zk::PersistentWatcher) -> zk::WatchedEvent {
    tokio::time::timeout(Duration::from_secs(5), watcher.changed()).await.expect("watch event within 5s")
}

async fn wait_for_no_watches(server: &TestServer) {
    for _ in 0..100 {
        if server.four_letter("wchs").contains("Total watches:0") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("watches were not removed: {}", server.four_letter("wchs"));
}

#[tokio::test]
async fn one_shot_watches_fire_once_with_the_right_type() {
    let server = TestServer::start();
    let watcher_client = connect(&server).await;
    let writer = connect(&server).await;

    let (_, exists_watch) = watcher_client.check_and_watch_stat("/w").await.unwrap();
    writer.create("/w", b"0", &persistent()).await.unwrap();
    let e = event(exists_watch).await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeCreated, "/w"));

    let (_, _, data_watch) = watcher_client.get_and_watch_data("/w").await.unwrap();
    let (_, _, child_watch) = watcher_client.get_and_watch_children("/w").await.unwrap();
    writer.set_data("/w", b"1", None).await.unwrap();
    assert_eq!(event(data_watch).await.event_type, zk::EventType::NodeDataChanged);
    writer.create("/w/c", b"", &persistent()).await.unwrap();
    let e = event(child_watch).await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeChildrenChanged, "/w"));

    let (_, _, data_watch) = watcher_client.get_and_watch_data("/w/c").await.unwrap();
    let (_, child_watch) = watcher_client.list_and_watch_children("/w/c").await.unwrap();
    writer.delete("/w/c", None).await.unwrap();
    assert_eq!(event(data_watch).await.event_type, zk::EventType::NodeDeleted);
    assert_eq!(event(child_watch).await.event_type, zk::EventType::NodeDeleted);
    let wchs = server.four_letter("wchs");
    assert!(wchs.contains("Total watches:0"), "one-shot watches are gone after firing: {wchs}");
}

#[tokio::test]
async fn event_arrives_before_the_data_it_announces() {
    let server = TestServer::start();
    let watcher_client = connect(&server).await;
    let writer = connect(&server).await;
    writer.create("/order", b"old", &persistent()).await.unwrap();
    for round in 0..50 {
        let (_, _, watch) = watcher_client.get_and_watch_data("/order").await.unwrap();
        let value = format!("v{round}");
        writer.set_data("/order", value.as_bytes(), None).await.unwrap();
        // The read is sent after the write completed: ZooKeeper guarantees the event is seen first.
        let read = watcher_client.get_data("/order");
        let e = event(watch).await;
        assert_eq!(e.event_type, zk::EventType::NodeDataChanged);
        assert_eq!(read.await.unwrap().0, value.as_bytes());
    }
}

#[tokio::test]
async fn persistent_watch_sees_every_change_of_its_node() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let writer = connect(&server).await;
    let mut watcher = client.watch("/pw", zk::AddWatchMode::Persistent).await.unwrap();
    writer.create("/pw", b"", &persistent()).await.unwrap();
    assert_eq!(next(&mut watcher).await.event_type, zk::EventType::NodeCreated);
    writer.set_data("/pw", b"x", None).await.unwrap();
    assert_eq!(next(&mut watcher).await.event_type, zk::EventType::NodeDataChanged);
    writer.create("/pw/child", b"", &persistent()).await.unwrap();
    let e = next(&mut watcher).await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeChildrenChanged, "/pw"));
    writer.set_data("/pw/child", b"x", None).await.unwrap(); // not this watch's business
    writer.delete("/pw/child", None).await.unwrap();
    assert_eq!(next(&mut watcher).await.event_type, zk::EventType::NodeChildrenChanged);
    writer.delete("/pw", None).await.unwrap();
    assert_eq!(next(&mut watcher).await.event_type, zk::EventType::NodeDeleted);
    writer.create("/pw", b"", &persistent()).await.unwrap();
    assert_eq!(next(&mut watcher).await.event_type, zk::EventType::NodeCreated, "still armed after delete");
    // Dropping a watcher makes the client send removeWatches.
    drop(watcher);
    wait_for_no_watches(&server).await;
}

#[tokio::test]
async fn recursive_watch_covers_the_subtree_without_child_events() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let writer = connect(&server).await;
    writer.create("/r", b"", &persistent()).await.unwrap();
    let mut watcher = client.watch("/r", zk::AddWatchMode::PersistentRecursive).await.unwrap();
    writer.create("/r/a", b"", &persistent()).await.unwrap();
    writer.create("/r/a/b", b"", &persistent()).await.unwrap();
    writer.set_data("/r/a/b", b"x", None).await.unwrap();
    writer.delete("/r/a/b", None).await.unwrap();
    writer.create("/other", b"", &persistent()).await.unwrap();
    writer.set_data("/r", b"y", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let e = next(&mut watcher).await;
        seen.push((e.event_type, e.path));
    }
    assert_eq!(
        seen,
        vec![
            (zk::EventType::NodeCreated, "/r/a".to_owned()),
            (zk::EventType::NodeCreated, "/r/a/b".to_owned()),
            (zk::EventType::NodeDataChanged, "/r/a/b".to_owned()),
            (zk::EventType::NodeDeleted, "/r/a/b".to_owned()),
            (zk::EventType::NodeDataChanged, "/r".to_owned()),
        ]
    );
}

#[tokio::test]
async fn removed_watches_do_not_fire() {
    let server = TestServer::start();
    let client = connect(&server).await;
    client.create("/rm", b"", &persistent()).await.unwrap();
    let (_, _, watch) = client.get_and_watch_data("/rm").await.unwrap();
    drop(watch);
    wait_for_no_watches(&server).await;
    client.set_data("/rm", b"x", None).await.unwrap();
    let (_, _, watch) = client.get_and_watch_data("/rm").await.unwrap();
    client.set_data("/rm", b"y", None).await.unwrap();
    assert_eq!(event(watch).await.event_type, zk::EventType::NodeDataChanged, "the next watch is a fresh one");
}

#[tokio::test]
async fn session_expiry_deletes_ephemerals_and_fires_their_watches() {
    let server = TestServer::start();
    let observer = connect(&server).await;
    let doomed = zk::Client::connector()
        .with_session_timeout(Duration::from_millis(400))
        .with_detached()
        .connect(&server.address())
        .await
        .unwrap();
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    doomed.create("/lease", b"", &eph).await.unwrap();
    let (_, _, watch) = observer.get_and_watch_data("/lease").await.unwrap();
    let (_, children) = observer.list_and_watch_children("/").await.unwrap();
    // Kill the client without closing its session: the server must expire it.
    let session = doomed.session().clone();
    drop(doomed);
    let e = event(watch).await;
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeDeleted, "/lease"));
    assert_eq!(event(children).await.event_type, zk::EventType::NodeChildrenChanged);
    assert!(observer.check_stat("/lease").await.unwrap().is_none());
    // The expired session cannot be resumed.
    let resumed = zk::Client::connector().with_session(session).connect(&server.address()).await;
    assert_eq!(resumed.unwrap_err(), zk::Error::SessionExpired);
    assert!(server.log_text().contains("Expiring session"));
}
