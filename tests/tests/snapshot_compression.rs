//! Compressed snapshots (`snapshot.compression.method` gz and snappy) interchange with Apache ZooKeeper
//! 3.8 both ways: a data directory whose snapshots one of them compressed opens in the other, which
//! reads the compressed snapshot (its log says so) and serves every znode with the same data and stat.
//! Skips with a printed reason where Java or Debian's package is missing.

use std::path::Path;
use std::time::Duration;

use fk_tests::TestServer;
use fk_tests::java::JavaStandalone;
use fk_tests::zk;

const METHODS: [&str; 2] = ["gz", "snappy"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn connect(address: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect to {address}: {e}"))
}

/// Enough writes for several snapshots at snapCount=20, data that spans snappy-java blocks (32 KiB)
/// and data that does not compress; returns the tree as the server then serves it.
async fn write_and_read(address: &str) -> zk::Tree {
    let c = connect(address).await;
    c.create("/app", b"root of the app", &zk::persistent()).await.expect("create /app");
    let compressible: Vec<u8> = (0..100_000u32).map(|i| b"abcdefgh"[(i % 8) as usize]).collect();
    c.create("/app/big", &compressible, &zk::persistent()).await.expect("create /app/big");
    let noise: Vec<u8> = (0..40_000u64).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8).collect();
    c.create("/app/noise", &noise, &zk::persistent()).await.expect("create /app/noise");
    let sequential = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    for i in 0..60 {
        c.create("/app/item-", format!("value {i}").as_bytes(), &sequential).await.expect("create an item");
    }
    c.set_data("/app", b"changed", None).await.expect("set /app");
    c.delete("/app/item-0000000007", None).await.expect("delete an item");
    zk::read_tree(&c).await
}

/// The names of the snapshots in `data_dir`, oldest first.
fn snapshots(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<(u64, String)> = std::fs::read_dir(data_dir.join("version-2"))
        .expect("version-2")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| Some((u64::from_str_radix(n.strip_prefix("snapshot.")?.split('.').next()?, 16).ok()?, n)))
        .collect();
    names.sort();
    names.into_iter().map(|(_, n)| n).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the original") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

#[test]
fn zookeeper_reads_our_compressed_snapshots() {
    for method in METHODS {
        let mut ours = TestServer::with_config(&format!("snapCount=20\nsnapshot.compression.method={method}"));
        let expected = runtime().block_on(async {
            let expected = write_and_read(&ours.address()).await;
            // A snapshot asked for while the previous one is still being written is skipped ("Too busy
            // to snap", as in ZooKeeper) until snapCount more txns: on a loaded machine the writes above
            // can all fall in that shadow, so more follow until a snapshot past the first is there.
            let c = connect(&ours.address()).await;
            let mut filler = 0;
            while snapshots(&ours.data_dir()).len() < 2 && filler < 2000 {
                c.create(&format!("/filler-{filler}"), b"", &zk::persistent()).await.expect("create a filler");
                filler += 1;
            }
            if filler == 0 { expected } else { zk::read_tree(&c).await }
        });
        ours.kill();
        let written = snapshots(&ours.data_dir());
        assert!(written.len() >= 2, "{method}: we wrote snapshots: {written:?}");
        assert!(written.iter().all(|n| n.ends_with(&format!(".{method}"))), "{method}: all compressed: {written:?}");

        let Some(zookeeper) = JavaStandalone::start(Some(&ours.data_dir()), "") else { return };
        let log = zookeeper.log_text();
        let newest = written.last().expect("a snapshot");
        assert!(
            log.contains(&format!("Reading snapshot {}", ours.data_dir().join("version-2").join(newest).display())),
            "{method}: ZooKeeper did not read our newest snapshot {newest}:\n{log}"
        );
        let served = runtime().block_on(async { zk::read_tree(&connect(&zookeeper.address()).await).await });
        assert_eq!(served, expected, "{method}: ZooKeeper serves what we served");
    }
}

#[test]
fn we_read_zookeepers_compressed_snapshots() {
    for method in METHODS {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("zk-data");
        let compression = format!("-Dzookeeper.snapshot.compression.method={method}");
        let Some(zookeeper) = JavaStandalone::start_with(Some(&data), "snapCount=20", &[&compression]) else {
            return;
        };
        let expected = runtime().block_on(write_and_read(&zookeeper.address()));
        drop(zookeeper);
        let written = snapshots(&data);
        let suffix = format!(".{method}");
        assert!(written.last().is_some_and(|n| n.ends_with(&suffix)), "{method}: ZooKeeper compressed: {written:?}");

        let ours = TestServer::on_data_dir(|ours| copy_dir(&data, ours), "");
        let newest = written.last().expect("a snapshot");
        let log = ours.log_text();
        assert!(log.contains(&format!("{newest} (")), "{method}: we did not load ZooKeeper's {newest}:\n{log}");
        let served = runtime().block_on(async { zk::read_tree(&connect(&ours.address()).await).await });
        assert_eq!(served, expected, "{method}: we serve what ZooKeeper served");
    }
}
