//! Apache ZooKeeper's own shell, `zkCli.sh` (Debian's `zookeeper` package), driving ferrokeeper.
//! Skips with a printed reason where the package is not installed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use fk_tests::TestServer;

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// Runs a zkCli.sh script against the server and returns everything it printed.
fn zkcli(server: &TestServer, script: &str) -> Option<String> {
    if !Path::new(ZKCLI).exists() {
        eprintln!("SKIPPED: {ZKCLI} not found (install Debian's zookeeper package to run this test)");
        return None;
    }
    let mut child = Command::new(ZKCLI)
        .args(["-server", &server.address()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start zkCli.sh");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let output = child.wait_with_output().expect("zkCli.sh output");
    Some(String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr))
}

#[test]
fn zkcli_session_works_end_to_end() {
    let server = TestServer::with_config("extendedTypesEnabled=true");
    let script = "\
create /app hello
create -s /app/seq- a
create -e /app/eph b
create -c /cont
create -t 60000 /ttl t
ls /app
get -s /app
set -v 0 /app world
set -v 0 /app again
get /app
stat /app/eph
getAllChildrenNumber /
getEphemerals /app
addauth digest alice:secret
create /secret s auth::cdrwa
getAcl /secret
whoami
delete /app
deleteall /app
ls /
sync /cont
quit
";
    let Some(out) = zkcli(&server, script) else { return };
    let expect = [
        "Created /app\n",
        "Created /app/seq-0000000000",
        "Created /app/eph",
        "Created /cont",
        "Created /ttl",
        "[eph, seq-0000000000]",
        "dataVersion = 0",
        "version No is not valid : /app",
        "world\n",
        "ephemeralOwner = 0x",
        "[/app/eph]",
        "Created /secret",
        "'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=\n: cdrwa",
        "digest: alice",
        "Node not empty: /app",
        "Sync is OK",
    ];
    for e in expect {
        assert!(out.contains(e), "zkCli.sh output lacks {e:?}:\n{out}");
    }
    let ls_root = out.lines().rev().find(|l| l.starts_with('[')).unwrap_or_default();
    for node in ["cont", "secret", "ttl", "zookeeper"] {
        assert!(ls_root.contains(node) && !ls_root.contains("app"), "ls / after deleteall: {ls_root}");
    }
}

#[test]
fn zkcli_sees_watch_events() {
    let server = TestServer::start();
    let script = "\
create /watched v0
get -w /watched
set /watched v1
ls -w /watched
create /watched/child x
quit
";
    let Some(out) = zkcli(&server, script) else { return };
    assert!(out.contains("WatchedEvent state:SyncConnected type:NodeDataChanged path:/watched"), "{out}");
    assert!(out.contains("WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/watched"), "{out}");
}
