//! The AdminServer's `snapshot` and `restore` (ZooKeeper 3.9's commands) over real HTTP: a snapshot
//! streamed from one standalone server (`last_zxid` and `snapshot_size` headers) restores another to the
//! same tree, which survives its restart and takes writes after it; requests without an identity holding
//! ALL on `/` are refused (401 without or with a failed authentication, 403 without the permission), a
//! second request within the rate limit gets 429, and a damaged upload changes nothing.

use std::time::Duration;

use fk_tests::TestServer;
use fk_tests::http_exchange;
use fk_tests::zk;
use serde_json::Value;

const ADMIN: &str = "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=0";
const ALICE: (&str, &str) = ("Authorization", "digest alice:secret");

fn admin_address(server: &TestServer) -> String {
    let log = server.log_text();
    let at = log.split("AdminServer at http://").nth(1).expect("the AdminServer address is logged");
    at.split('/').next().expect("host:port").to_owned()
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn client(server: &TestServer, auth: Option<&[u8]>) -> zk::Client {
    let mut connector = zk::Client::connector().with_session_timeout(Duration::from_secs(10));
    if let Some(auth) = auth {
        connector = connector.with_auth("digest", auth);
    }
    connector.connect(&server.address()).await.expect("connect")
}

/// Restores `snapshot` on `server`: status and JSON answer.
fn restore(server: &TestServer, snapshot: &[u8]) -> (u16, Value) {
    let answer = http_exchange(&admin_address(server), "POST", "/commands/restore", &[ALICE], snapshot);
    (answer.status, json(&answer.body))
}

#[test]
fn a_snapshot_streamed_from_one_server_restores_another() {
    let source = TestServer::with_config(ADMIN);
    let runtime = runtime();
    let before = runtime.block_on(async {
        let c = client(&source, Some(b"alice:secret")).await;
        c.create("/app", b"root", &zk::persistent()).await.expect("create /app");
        for i in 0..50 {
            c.create(&format!("/app/n{i}"), format!("value {i}").as_bytes(), &zk::persistent()).await.expect("create");
        }
        c.set_data("/app", b"changed", None).await.expect("set /app");
        // Only alice may take the database away: ALL on / for her alone.
        let alice = ferrokeeper::auth::digest_id("alice:secret");
        let only_alice = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &alice))];
        c.set_acl("/", &only_alice, None).await.expect("setAcl /");
        zk::read_tree(&c).await
    });
    let address = admin_address(&source);
    let snapshot = |headers: &[(&str, &str)]| http_exchange(&address, "GET", "/commands/snapshot", headers, &[]);
    for (headers, status, error) in [
        (&[][..], 401, "Auth info is missing for the command"),
        (&[("Authorization", "kerberos alice")][..], 401, "Not authenticated"),
        (&[("Authorization", "digest bob:secret")][..], 403, "Not authorized"),
        (&[("Authorization", "ip")][..], 403, "Not authorized"),
    ] {
        let refused = snapshot(headers);
        assert_eq!((refused.status, json(&refused.body)["error"].clone()), (status, Value::from(error)), "{headers:?}");
    }
    assert_eq!(http_exchange(&address, "POST", "/commands/snapshot", &[ALICE], &[]).status, 405);

    let taken = snapshot(&[ALICE]);
    assert_eq!(taken.status, 200, "{}", String::from_utf8_lossy(&taken.body));
    assert_eq!(taken.header("content-type"), Some("application/octet-stream"));
    assert_eq!(taken.header("snapshot_size"), Some(taken.body.len().to_string().as_str()));
    let last_zxid = taken.header("last_zxid").expect("last_zxid").to_owned();
    let zxid = i64::from_str_radix(last_zxid.strip_prefix("0x").expect("0x…"), 16).expect("hex");
    assert!(zxid >= 52, "{last_zxid}");
    let written = source.data_dir().join("version-2").join(format!("snapshot.{zxid:x}"));
    assert_eq!(std::fs::read(&written).expect("the snapshot is in the data directory"), taken.body);
    assert_eq!(snapshot(&[ALICE]).status, 429, "one snapshot per rate-limit interval");

    // A damaged upload is refused and changes nothing (its server's permit is spent: the next restore
    // goes to another).
    let damaged_target = TestServer::with_config(ADMIN);
    runtime.block_on(async {
        client(&damaged_target, None).await.create("/kept", b"", &zk::persistent()).await.expect("create /kept");
    });
    let mut damaged = taken.body.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    let (status, answer) = restore(&damaged_target, &damaged);
    assert_eq!(status, 500, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("uploaded snapshot")), "{answer}");
    runtime.block_on(async {
        let c = client(&damaged_target, None).await;
        assert!(c.check_stat("/kept").await.expect("exists").is_some(), "a refused restore changes nothing");
    });
    drop(damaged_target);

    let mut target = TestServer::with_config(ADMIN);

    let (status, answer) = restore(&target, &taken.body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["last_zxid"], zxid, "{answer}");
    assert_eq!(restore(&target, &taken.body).0, 429, "one restore per rate-limit interval");
    let check = |target: &TestServer| {
        runtime.block_on(async {
            let c = client(target, Some(b"alice:secret")).await;
            assert_eq!(zk::read_tree(&c).await, before, "the restored tree is the source's");
        })
    };
    check(&target);
    target.restart();
    check(&target);
    runtime.block_on(async {
        let c = client(&target, Some(b"alice:secret")).await;
        c.create("/after", b"", &zk::persistent()).await.expect("a write after the restore");
    });
    target.restart();
    runtime.block_on(async {
        let c = client(&target, Some(b"alice:secret")).await;
        assert!(c.check_stat("/after").await.expect("exists").is_some(), "writes after a restore are durable");
    });
    let kept_aside = std::fs::read_dir(target.data_dir().join("version-2"))
        .expect("version-2")
        .any(|e| e.expect("entry").file_name().to_string_lossy().starts_with("before-restore-"));
    assert!(kept_aside, "the replaced history is kept aside");
}
