//! The container entrypoint (`packaging/docker/docker-entrypoint.sh`) makes the zoo.cfg and myid the
//! official ZooKeeper image's entrypoint makes for the same variables (its 3.8.6 script is kept in
//! `tests/fixtures`), and ferrokeeper started through it serves where that configuration says: the
//! image's default, a single `server.1=...;port` line and no `clientPort`, included.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OURS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/docker/docker-entrypoint.sh");
const OFFICIAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/zookeeper-docker-3.8.6-entrypoint.sh");

/// The image's directories under `root`, and the environment both Dockerfiles set.
fn image_env(root: &Path) -> Vec<(String, String)> {
    let dir = |name: &str| root.join(name).display().to_string();
    [
        ("ZOO_CONF_DIR", dir("conf")),
        ("ZOO_DATA_DIR", dir("data")),
        ("ZOO_DATA_LOG_DIR", dir("datalog")),
        ("ZOO_LOG_DIR", dir("logs")),
        ("ZOO_TICK_TIME", "2000".into()),
        ("ZOO_INIT_LIMIT", "5".into()),
        ("ZOO_SYNC_LIMIT", "2".into()),
        ("ZOO_AUTOPURGE_PURGEINTERVAL", "0".into()),
        ("ZOO_AUTOPURGE_SNAPRETAINCOUNT", "3".into()),
        ("ZOO_MAX_CLIENT_CNXNS", "60".into()),
        ("ZOO_STANDALONE_ENABLED", "true".into()),
        ("ZOO_ADMINSERVER_ENABLED", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn fresh_dirs(root: &Path) {
    for name in ["conf", "data", "datalog", "logs"] {
        let _ = std::fs::remove_dir_all(root.join(name));
        std::fs::create_dir_all(root.join(name)).expect("create an image directory");
    }
}

/// Runs `script` with the image's environment plus `vars` and the command `true`; what it wrote.
fn generate(script: &str, root: &Path, vars: &[(&str, &str)]) -> (String, String) {
    let status = Command::new("bash")
        .arg(script)
        .arg("true")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(image_env(root))
        .envs(vars.iter().copied())
        .status()
        .expect("run bash");
    assert!(status.success(), "{script} failed: {status}");
    let read = |path: PathBuf| std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (read(root.join("conf/zoo.cfg")), read(root.join("data/myid")))
}

#[test]
fn the_same_zoo_cfg_and_myid_as_the_official_image() {
    let root = tempfile::tempdir().expect("temp dir");
    let cases: [&[(&str, &str)]; 3] = [
        &[],
        &[
            ("ZOO_MY_ID", "2"),
            ("ZOO_SERVERS", "server.1=zk1:2888:3888;2181 server.2=zk2:2888:3888;2181 server.3=zk3:2888:3888;2181"),
            ("ZOO_4LW_COMMANDS_WHITELIST", "srvr,ruok,mntr"),
            ("ZOO_STANDALONE_ENABLED", "false"),
            ("ZOO_ADMINSERVER_ENABLED", "false"),
            (
                "ZOO_CFG_EXTRA",
                "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider \
                 metricsProvider.httpPort=7000 snapshot.compression.method=gz",
            ),
        ],
        &[("ZOO_TICK_TIME", "500"), ("ZOO_MAX_CLIENT_CNXNS", "0"), ("ZOO_AUTOPURGE_PURGEINTERVAL", "1")],
    ];
    for vars in cases {
        fresh_dirs(root.path());
        let theirs = generate(OFFICIAL, root.path(), vars);
        fresh_dirs(root.path());
        let ours = generate(OURS, root.path(), vars);
        assert_eq!(ours, theirs, "{vars:?}");
    }
    // Both leave an existing zoo.cfg and myid alone.
    std::fs::write(root.path().join("conf/zoo.cfg"), "mine\n").unwrap();
    std::fs::write(root.path().join("data/myid"), "7\n").unwrap();
    assert_eq!(generate(OURS, root.path(), &[("ZOO_MY_ID", "3")]), ("mine\n".into(), "7\n".into()));
}

#[test]
fn ferrokeeper_started_through_it_serves_where_the_image_default_says() {
    let root = tempfile::tempdir().expect("temp dir");
    fresh_dirs(root.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let servers = format!("server.1=localhost:2888:3888;{port}");
    let config = root.path().join("conf/zoo.cfg");
    let mut child = Command::new("bash")
        .arg(OURS)
        .arg(fk_tests::server_binary())
        .arg(&config)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(image_env(root.path()))
        .envs([
            ("ZOO_SERVERS", servers.as_str()),
            ("ZOO_ADMINSERVER_ENABLED", "false"),
            ("ZOO_4LW_COMMANDS_WHITELIST", "ruok,srvr"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the entrypoint");
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    let srvr = loop {
        let answer = fk_tests::ensemble::four_letter(address, "srvr");
        if answer.contains("Mode: standalone") {
            break answer;
        }
        assert!(Instant::now() < deadline, "ferrokeeper did not serve on the server line's client port {port}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(srvr.contains("Zookeeper version: "), "{srvr}");
}
