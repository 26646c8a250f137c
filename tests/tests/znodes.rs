//! Znode types, Stat maintenance and the error codes of writes, through the third-party client.

use std::time::Duration;

use fk_tests::TestServer;
use fk_tests::zk::{self, connect, persistent};

#[tokio::test]
async fn stat_fields_follow_zookeeper() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let (parent, _) = client.create("/p", b"abc", &persistent()).await.unwrap();
    assert_eq!(parent.czxid, parent.mzxid);
    assert_eq!(parent.pzxid, parent.czxid);
    assert_eq!(
        (parent.version, parent.cversion, parent.aversion, parent.data_length, parent.num_children),
        (0, 0, 0, 3, 0)
    );
    assert!(parent.ctime > 1_600_000_000_000 && parent.ctime == parent.mtime);

    let (child, _) = client.create("/p/c", b"", &persistent()).await.unwrap();
    let (_, parent_after) = client.get_data("/p").await.unwrap();
    assert_eq!((parent_after.cversion, parent_after.num_children, parent_after.pzxid), (1, 1, child.czxid));
    assert_eq!(parent_after.mzxid, parent.mzxid, "a child create does not touch the parent's mzxid");

    let set = client.set_data("/p/c", b"12345", None).await.unwrap();
    assert_eq!((set.version, set.data_length, set.czxid), (1, 5, child.czxid));
    assert!(set.mzxid > child.mzxid);

    client.delete("/p/c", None).await.unwrap();
    let (_, parent_deleted) = client.get_data("/p").await.unwrap();
    assert_eq!(parent_deleted.cversion, 2, "clients see child creates plus deletes");
    assert_eq!(parent_deleted.num_children, 0);
    assert!(parent_deleted.pzxid > set.mzxid, "delete moves pzxid");

    let (acl, stat) = client.get_acl("/p").await.unwrap();
    assert_eq!(acl.len(), 1);
    let after_acl = client.set_acl("/p", &zk::Acls::anyone_read(), Some(stat.aversion)).await.unwrap();
    assert_eq!(after_acl.aversion, 1);
    assert_eq!(after_acl.mzxid, stat.mzxid, "setACL does not change mzxid");
}

#[tokio::test]
async fn sequential_names_count_from_the_parent_cversion() {
    let server = TestServer::start();
    let client = connect(&server).await;
    client.create("/q", b"", &persistent()).await.unwrap();
    let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let (_, first) = client.create("/q/item-", b"", &seq).await.unwrap();
    assert_eq!(first.into_i64(), 0);
    client.create("/q/plain", b"", &persistent()).await.unwrap();
    client.delete("/q/plain", None).await.unwrap();
    let (_, second) = client.create("/q/item-", b"", &seq).await.unwrap();
    assert_eq!(second.into_i64(), 2, "the suffix counts creates only: the plain create, not its delete");
    let mut children = client.list_children("/q").await.unwrap();
    children.sort();
    assert_eq!(children, vec!["item-0000000000", "item-0000000002"]);
    let eph_seq = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let (stat, third) = client.create("/q/lock-", b"", &eph_seq).await.unwrap();
    assert_eq!(third.into_i64(), 3);
    assert_eq!(stat.ephemeral_owner, client.session_id().0);
}

#[tokio::test]
async fn ephemerals_belong_to_their_session() {
    let server = TestServer::start();
    let owner = connect(&server).await;
    let other = connect(&server).await;
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let (stat, _) = owner.create("/e", b"", &eph).await.unwrap();
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);
    assert_eq!(owner.create("/e/child", b"", &persistent()).await.unwrap_err(), zk::Error::NoChildrenForEphemerals);
    assert_eq!(owner.list_ephemerals("/").await.unwrap(), vec!["/e"]);
    assert!(other.list_ephemerals("/").await.unwrap().is_empty());
    drop(owner);
    // Dropping the client closes its session: the ephemeral goes with it.
    assert!(wait_until_gone(&other, "/e").await, "ephemeral /e outlived its closed session");
}

/// Polls until `path` is gone (up to 5 s); false if it is still there.
async fn wait_until_gone(client: &zk::Client, path: &str) -> bool {
    for _ in 0..100 {
        if client.check_stat(path).await.unwrap().is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn containers_are_reaped_once_emptied() {
    let server = TestServer::with_config("znode.container.checkIntervalMs=100");
    let client = connect(&server).await;
    let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    let (stat, _) = client.create("/c", b"", &container).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "clients see 0 for containers");
    client.create("/never-used", b"", &container).await.unwrap();
    client.create("/c/x", b"", &persistent()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(client.check_stat("/c").await.unwrap().is_some(), "a container with children stays");
    client.delete("/c/x", None).await.unwrap();
    assert!(wait_until_gone(&client, "/c").await, "the emptied container was not reaped");
    assert!(client.check_stat("/never-used").await.unwrap().is_some(), "a never-used container stays");
}

#[tokio::test]
async fn ttl_nodes_need_extended_types_and_expire() {
    let plain = TestServer::start();
    let client = connect(&plain).await;
    let ttl = persistent().with_ttl(Duration::from_millis(200));
    assert_eq!(client.create("/t", b"", &ttl).await.unwrap_err(), zk::Error::Unimplemented);

    let server = TestServer::with_config("extendedTypesEnabled=true\nznode.container.checkIntervalMs=100");
    let client = connect(&server).await;
    let (stat, _) = client.create("/t", b"", &ttl).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "clients see 0 for TTL nodes");
    let seq_ttl =
        zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all()).with_ttl(Duration::from_secs(3600));
    let (_, n) = client.create("/long-", b"", &seq_ttl).await.unwrap();
    let long_path = format!("/long-{:010}", n.into_i64());
    assert!(wait_until_gone(&client, "/t").await, "the TTL node was not reaped after its TTL");
    assert!(client.check_stat(&long_path).await.unwrap().is_some());
}

#[tokio::test]
async fn write_errors_match_zookeeper() {
    let server = TestServer::start();
    let client = connect(&server).await;
    client.create("/a", b"", &persistent()).await.unwrap();
    client.create("/a/b", b"", &persistent()).await.unwrap();
    assert_eq!(client.create("/a", b"", &persistent()).await.unwrap_err(), zk::Error::NodeExists);
    assert_eq!(client.create("/missing/x", b"", &persistent()).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(client.delete("/a", None).await.unwrap_err(), zk::Error::NotEmpty);
    assert_eq!(client.delete("/a/b", Some(7)).await.unwrap_err(), zk::Error::BadVersion);
    assert_eq!(client.delete("/nope", None).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(client.set_data("/nope", b"", None).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(client.set_data("/a", b"", Some(3)).await.unwrap_err(), zk::Error::BadVersion);
    assert_eq!(client.set_acl("/a", &zk::Acls::anyone_all(), Some(9)).await.unwrap_err(), zk::Error::BadVersion);
    assert!(matches!(client.delete("/zookeeper", None).await.unwrap_err(), zk::Error::BadArguments(_)));
    let empty: &[zk::Acl] = &[];
    let no_acl = zk::CreateMode::Persistent.with_acls(zk::Acls::new(empty));
    assert!(client.create("/x", b"", &no_acl).await.is_err());
}

#[tokio::test]
async fn system_nodes_exist_as_in_zookeeper() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let mut root = client.list_children("/").await.unwrap();
    root.sort();
    assert_eq!(root, vec!["zookeeper"]);
    let mut system = client.list_children("/zookeeper").await.unwrap();
    system.sort();
    assert_eq!(system, vec!["config", "quota"]);
    let (acl, _) = client.get_acl("/zookeeper/config").await.unwrap();
    assert_eq!(acl, zk::Acls::anyone_read().to_vec());
    let (data, stat) = client.get_data("/").await.unwrap();
    assert!(data.is_empty());
    assert_eq!((stat.czxid, stat.version, stat.num_children), (0, 0, 1));
    assert_eq!(client.count_descendants_number("/").await.unwrap(), 3);
    assert_eq!(client.count_descendants_number("/nope").await.unwrap_err(), zk::Error::NoNode);
}

#[tokio::test]
async fn multi_is_atomic_with_per_op_results() {
    let server = TestServer::start();
    let client = connect(&server).await;
    client.create("/m", b"v0", &persistent()).await.unwrap();

    let mut writer = client.new_multi_writer();
    writer.add_create("/m/a", b"", &persistent()).unwrap();
    writer.add_check_version("/m", 5).unwrap();
    writer.add_create("/m/b", b"", &persistent()).unwrap();
    let err = writer.commit().await.unwrap_err();
    assert_eq!(err, zk::MultiWriteError::OperationFailed { index: 1, source: zk::Error::BadVersion });
    assert!(client.check_stat("/m/a").await.unwrap().is_none(), "nothing of a failed multi is applied");

    let mut writer = client.new_multi_writer();
    writer.add_create("/m/a", b"", &persistent()).unwrap();
    writer.add_set_data("/m", b"v1", Some(0)).unwrap();
    writer.add_check_version("/m", 1).unwrap();
    writer.add_delete("/m/a", None).unwrap();
    let results = writer.commit().await.unwrap();
    assert_eq!(results.len(), 4);
    assert!(matches!(results[0], zk::MultiWriteResult::Create { .. }));
    assert!(matches!(results[1], zk::MultiWriteResult::SetData { ref stat } if stat.version == 1));
    assert!(matches!(results[2], zk::MultiWriteResult::Check));
    assert!(matches!(results[3], zk::MultiWriteResult::Delete));
    let (data, stat) = client.get_data("/m").await.unwrap();
    assert_eq!((data.as_slice(), stat.cversion), (&b"v1"[..], 2), "the successful multi's create and delete count");

    let mut reader = client.new_multi_reader();
    reader.add_get_data("/m").unwrap();
    reader.add_get_data("/nope").unwrap();
    reader.add_get_children("/m").unwrap();
    let results = reader.commit().await.unwrap();
    assert!(matches!(results[0], zk::MultiReadResult::Data { ref data, .. } if data == b"v1"));
    assert!(matches!(results[1], zk::MultiReadResult::Error { err: zk::Error::NoNode }));
    assert!(matches!(results[2], zk::MultiReadResult::Children { ref children } if children.is_empty()));
}

#[tokio::test]
async fn sync_and_pipelined_writes_keep_order() {
    let server = TestServer::start();
    let client = connect(&server).await;
    client.create("/s", b"", &persistent()).await.unwrap();
    // Many writes and reads in flight at once on one session: every read sees every earlier write.
    let mut futures = Vec::new();
    for i in 0..200 {
        futures.push(client.set_data("/s", format!("{i}").as_bytes(), None));
    }
    let get = client.get_data("/s");
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().version, i as i32 + 1);
    }
    assert_eq!(get.await.unwrap().0, b"199");
    client.sync("/s").await.unwrap();
    client.sync("/does-not-matter").await.unwrap();
}
