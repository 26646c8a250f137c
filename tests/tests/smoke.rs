//! The basic round trip through a third-party client: connect, create, read, update, delete.

use fk_tests::TestServer;
use zookeeper_client as zk;

#[tokio::test]
async fn create_read_update_delete() {
    let server = TestServer::start();
    let client = zk::Client::connect(&server.address()).await.expect("connect");
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let (stat, _) = client.create("/smoke", b"v0", &options).await.expect("create");
    assert_eq!(stat.version, 0);
    let (data, stat) = client.get_data("/smoke").await.expect("get");
    assert_eq!((data.as_slice(), stat.version), (&b"v0"[..], 0));
    let stat = client.set_data("/smoke", b"v1", Some(0)).await.expect("set");
    assert_eq!(stat.version, 1);
    assert_eq!(client.set_data("/smoke", b"v2", Some(0)).await.unwrap_err(), zk::Error::BadVersion);
    client.delete("/smoke", Some(1)).await.expect("delete");
    assert_eq!(client.get_data("/smoke").await.unwrap_err(), zk::Error::NoNode);
}
