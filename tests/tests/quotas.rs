//! ZooKeeper 3.8 quotas (issue 12): usage kept in `/zookeeper/quota/<path>/zookeeper_stats` through every
//! kind of write and across restarts, hard limits refused with QuotaExceeded only under
//! `zookeeper.enforceQuota`, soft limits logged, the `mntr` gauges, and — where Java and Debian's
//! `zookeeper` package are installed — the same zkCli.sh session against Apache ZooKeeper 3.8 and
//! ferrokeeper, and ZooKeeper reading the quotas of a data directory ferrokeeper wrote. Those skip with
//! a printed reason when Java or the package is missing.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fk_tests::TestServer;
use fk_tests::java::JavaStandalone;
use fk_tests::zk::{self, connect, persistent};

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// What zkCli's `setquota` creates for `path`: the quota path's parents, the limits node with `limits`,
/// and a stats node the server fills in.
async fn set_quota(client: &zk::Client, path: &str, limits: &str) {
    let mut quota_path = "/zookeeper/quota".to_owned();
    for component in path.split('/').skip(1) {
        quota_path = format!("{quota_path}/{component}");
        match client.create(&quota_path, b"", &persistent()).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => panic!("create {quota_path}: {e}"),
        }
    }
    client.create(&format!("{quota_path}/zookeeper_limits"), limits.as_bytes(), &persistent()).await.unwrap();
    client.create(&format!("{quota_path}/zookeeper_stats"), b"count=0,bytes=0", &persistent()).await.unwrap();
}

/// The stats node of `path`: its text and its Stat.
async fn usage(client: &zk::Client, path: &str) -> (String, zk::Stat) {
    let (data, stat) = client.get_data(&format!("/zookeeper/quota{path}/zookeeper_stats")).await.unwrap();
    (String::from_utf8(data).unwrap(), stat)
}

#[tokio::test]
async fn usage_follows_every_kind_of_write_and_survives_restarts() {
    // A small snapCount: the restart loads a snapshot with quota nodes and replays the log after it.
    let mut server = TestServer::with_config("snapCount=4");
    let client = connect(&server).await;
    client.create("/q", b"a", &persistent()).await.unwrap();
    client.create("/q/c1", b"hello", &persistent()).await.unwrap();
    set_quota(&client, "/q", "count=100,bytes=-1").await;
    let (text, created) = usage(&client, "/q").await;
    assert_eq!(text, "count=2,bytes=6", "the stats node's create counts the subtree, as ZooKeeper does");

    client.create("/q/c2", b"xy", &persistent()).await.unwrap();
    client.set_data("/q/c1", b"hello-world", None).await.unwrap();
    assert_eq!(usage(&client, "/q").await.0, "count=3,bytes=14");
    client.delete("/q/c2", None).await.unwrap();
    assert_eq!(usage(&client, "/q").await.0, "count=2,bytes=12");

    let mut multi = client.new_multi_writer();
    multi.add_create("/q/m1", b"123", &persistent()).unwrap();
    multi.add_create("/q/m1/m2", b"4", &persistent()).unwrap();
    multi.add_set_data("/q", b"", None).unwrap();
    multi.commit().await.unwrap();
    assert_eq!(usage(&client, "/q").await.0, "count=4,bytes=15");

    // An ephemeral counts while its session lives; closing the session deletes it and uncounts it.
    let owner = connect(&server).await;
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    owner.create("/q/e", b"eph", &ephemeral).await.unwrap();
    assert_eq!(usage(&client, "/q").await.0, "count=5,bytes=18");
    drop(owner);
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.check_stat("/q/e").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the closed session's ephemeral is still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (text, stat) = usage(&client, "/q").await;
    assert_eq!(text, "count=4,bytes=15");
    assert_eq!((stat.mzxid, stat.version), (created.mzxid, created.version), "ZooKeeper leaves the Stat alone");
    assert_eq!(stat.data_length as usize, text.len());

    drop(client);
    server.restart();
    let client = connect(&server).await;
    assert_eq!(usage(&client, "/q").await.0, "count=4,bytes=15", "after loading the snapshot and the log");
    client.create("/q/after", b"", &persistent()).await.unwrap();
    assert_eq!(usage(&client, "/q").await.0, "count=5,bytes=15", "the quota is still registered");
}

#[tokio::test]
async fn hard_limits_refuse_writes_only_when_enforced() {
    for enforced in [true, false] {
        let server = TestServer::with_config(if enforced { "zookeeper.enforceQuota=true" } else { "" });
        let client = connect(&server).await;
        client.create("/h", b"", &persistent()).await.unwrap();
        set_quota(&client, "/h", "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3").await;
        client.create("/h/a", b"12345", &persistent()).await.unwrap();
        client.create("/h/b", b"", &persistent()).await.unwrap();

        let create = client.create("/h/c", b"", &persistent()).await;
        let set = client.set_data("/h/a", b"1234567890x", None).await;
        let mut multi = client.new_multi_writer();
        multi.add_set_data("/h", b"12345", None).unwrap();
        multi.add_set_data("/h/b", b"123456", None).unwrap();
        let multi = multi.commit().await;
        if enforced {
            assert_eq!(create.unwrap_err(), zk::Error::QuotaExceeded, "count: 4 > 3");
            assert_eq!(set.unwrap_err(), zk::Error::QuotaExceeded, "bytes: 11 > 10");
            // Each op is checked against the applied tree (5 bytes): 10 and 11, so the second fails.
            match multi {
                Err(zk::MultiWriteError::OperationFailed { index: 1, source: zk::Error::QuotaExceeded }) => {}
                other => panic!("multi: {other:?}"),
            }
            assert_eq!(usage(&client, "/h").await.0, "count=3,bytes=5", "nothing of the refused writes");
            let log = server.log_text();
            assert!(log.contains("Quota exceeded: /h [current count=4, hardCountLimit=3]"), "{log}");
            assert!(log.contains("Quota exceeded: /h [current bytes=11, hardByteLimit=10]"), "{log}");
            let mntr = server.four_letter("mntr");
            assert!(mntr.contains("zk_h_quota_exceeded_error_per_namespace\t3\n"), "{mntr}");
        } else {
            create.unwrap();
            set.unwrap();
            multi.unwrap();
            assert_eq!(usage(&client, "/h").await.0, "count=4,bytes=22", "limits passed, usage still counted");
            assert!(!server.log_text().contains("Quota exceeded"), "ZooKeeper checks nothing unless enforcing");
        }
    }
}

#[tokio::test]
async fn soft_limits_are_logged_and_reported_in_mntr() {
    let server = TestServer::with_config("enforceQuota=true");
    let client = connect(&server).await;
    client.create("/s", b"", &persistent()).await.unwrap();
    client.create("/s/t", b"", &persistent()).await.unwrap();
    set_quota(&client, "/s", "count=2,bytes=-1").await;
    set_quota(&client, "/s/t", "count=-1,bytes=3").await;
    client.create("/s/x", b"", &persistent()).await.expect("a soft limit refuses nothing");
    client.create("/s/t/y", b"1234", &persistent()).await.unwrap();
    let log = server.log_text();
    assert!(log.contains("Quota exceeded: /s [current count=3, softCountLimit=2]"), "{log}");
    assert!(log.contains("Quota exceeded: /s/t [current bytes=4, softByteLimit=3]"), "{log}");

    let mntr = server.four_letter("mntr");
    // Two quotas in namespace "s", summed: limits 2 + -1 and -1 + 3; usage 3 nodes (/s, /s/t, /s/x) for
    // /s and 2 (/s/t, /s/t/y: a node counts only in its deepest quota), bytes 0 and 4.
    for line in [
        "zk_s_quota_count_limit_per_namespace\t1\n",
        "zk_s_quota_bytes_limit_per_namespace\t2\n",
        "zk_s_quota_count_usage_per_namespace\t5\n",
        "zk_s_quota_bytes_usage_per_namespace\t4\n",
    ] {
        assert!(mntr.contains(line), "mntr lacks {line:?}:\n{mntr}");
    }
}

// ----- side by side with Apache ZooKeeper 3.8 -----

/// Runs a zkCli.sh script against `address`; stdout and stderr in one stream, as a terminal shows them.
fn zkcli(address: &str, script: &str) -> String {
    let mut child = Command::new("sh")
        .args(["-c", &format!("{ZKCLI} -server {address} 2>&1")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start zkCli.sh");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    String::from_utf8_lossy(&child.wait_with_output().expect("zkCli.sh output").stdout).into_owned()
}

/// What the session printed, without what differs between any two runs: log lines, connection chatter,
/// watcher events and wall-clock times.
fn answers(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("20") && !l.starts_with("SLF4J") && !l.starts_with('\t'))
        .filter(|l| {
            !["Connecting to", "Welcome to", "JLine", "WATCHER", "WatchedEvent"].iter().any(|p| l.starts_with(p))
        })
        .filter(|l| !l.starts_with("ctime") && !l.starts_with("mtime"))
        .collect()
}

/// Whether Java, ZooKeeper's jars and zkCli.sh are all here; prints why a test skips when not.
fn side_by_side_available() -> bool {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return false;
    }
    if !Path::new(ZKCLI).exists() {
        eprintln!("SKIPPED: {ZKCLI} not found (install Debian's zookeeper package)");
        return false;
    }
    true
}

/// Apache ZooKeeper 3.8 on `data_dir` (a fresh one if `None`) with the system property
/// `zookeeper.enforceQuota=true`; `None` (after printing why) where Java, the package or zkCli.sh is
/// missing.
fn start_zookeeper(data_dir: Option<&Path>) -> Option<JavaStandalone> {
    if !side_by_side_available() {
        return None;
    }
    JavaStandalone::start_with(data_dir, "", &["-Dzookeeper.enforceQuota=true"])
}

/// The quota lines of a `mntr` answer, sorted (ZooKeeper prints its gauges in hash order).
fn quota_gauges(mntr: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = mntr.lines().filter(|l| l.contains("_quota_") && l.contains("_per_namespace")).collect();
    lines.sort_unstable();
    lines
}

/// The distinct "Quota exceeded: <path> [...]" messages of a server log.
fn quota_warnings(log: &str) -> std::collections::BTreeSet<&str> {
    log.match_indices("Quota exceeded: ")
        .filter_map(|(start, _)| log[start..].find(']').map(|end| &log[start..=start + end]))
        .collect()
}

const SESSION: &str = "\
create /q a
setquota -n 5 /q
create /q/c1 hello
create /q/c2 xy
listquota /q
get -s /zookeeper/quota/q/zookeeper_stats
get /zookeeper/quota/q/zookeeper_limits
set /q/c1 hello-world
delete /q/c2
create /q/c3
create /q/c4
create /q/c5
create /q/c6
listquota /q
delquota -n /q
listquota /q
create /h
setquota -N 2 /h
create /h/a
create /h/b
listquota /h
create /g 12345
setquota -B 10 /g
set /g 1234567890
set /g 12345678901
create /g/x 1
create /g/y
listquota /g
setquota -b 4 /g
listquota /g
get -s /zookeeper/quota/g/zookeeper_stats
delquota /h
listquota /h
setquota -n 2 /q/c1
setquota -n 2 /
setquota -n 2 /zookeeper
listquota /zookeeper
create /zookeeper/extra x
listquota /zookeeper
ls /zookeeper/quota
quit
";

#[test]
fn a_zkcli_quota_session_answers_as_zookeeper_does() {
    let Some(zookeeper) = start_zookeeper(None) else { return };
    let server = TestServer::with_config("zookeeper.enforceQuota=true");
    let theirs = zkcli(&zookeeper.address(), SESSION);
    let ours = zkcli(&server.address(), SESSION);
    let (their_answers, our_answers) = (answers(&theirs), answers(&ours));
    assert!(their_answers.iter().any(|l| l.contains("Quota has exceeded")), "the script hits limits:\n{theirs}");
    assert_eq!(our_answers, their_answers, "ferrokeeper:\n{ours}\nZooKeeper:\n{theirs}");

    // The same limits logged as passed (ZooKeeper's rate logger folds repeats, so compare distinct lines).
    let (their_log, our_log) = (zookeeper.log_text(), server.log_text());
    assert!(!quota_warnings(&their_log).is_empty(), "{their_log}");
    assert_eq!(quota_warnings(&our_log), quota_warnings(&their_log));

    let (their_mntr, our_mntr) = (zookeeper.four_letter("mntr"), server.four_letter("mntr"));
    assert!(!quota_gauges(&their_mntr).is_empty(), "{their_mntr}");
    assert_eq!(quota_gauges(&our_mntr), quota_gauges(&their_mntr));
}

const LISTQUOTAS: &str =
    "listquota /q\nlistquota /g\nlistquota /g/deep\nget /zookeeper/quota/g/zookeeper_stats\nquit\n";

#[test]
fn each_reads_the_quotas_of_the_others_data_directory() {
    if !side_by_side_available() {
        return;
    }
    // snapCount=4: ZooKeeper loads a snapshot of ours holding quota nodes, then replays our log.
    let mut server = TestServer::with_config("snapCount=4\nenforceQuota=true");
    let script = "\
create /q 12
setquota -n 10 /q
create /q/a 345
create /q/b
create /g
create /g/deep 6789
setquota -B 100 /g/deep
create /g/deep/x 0
set /g/deep 67890
delete /q/b
quit
";
    zkcli(&server.address(), script);
    let ours = zkcli(&server.address(), LISTQUOTAS);
    server.kill();
    let Some(zookeeper) = start_zookeeper(Some(&server.data_dir())) else { return };
    let theirs = zkcli(&zookeeper.address(), LISTQUOTAS);
    assert!(ours.contains("Output stat for /q count=2,bytes=5"), "{ours}");
    assert!(ours.contains("Output stat for /g/deep count=2,bytes=6"), "{ours}");
    assert_eq!(answers(&theirs), answers(&ours), "ZooKeeper:\n{theirs}\nferrokeeper:\n{ours}");
    let mntr = zookeeper.four_letter("mntr");
    assert!(mntr.contains("zk_digest_mismatches_count\t0\n"), "{mntr}\n{}", zookeeper.log_text());

    // And back: ferrokeeper loads the snapshot ZooKeeper wrote at start-up and replays ZooKeeper's log.
    zkcli(&zookeeper.address(), "create /q/z 7\nquit\n");
    let theirs = zkcli(&zookeeper.address(), LISTQUOTAS);
    assert!(theirs.contains("Output stat for /q count=3,bytes=6"), "{theirs}");
    drop(zookeeper);
    let source = server.data_dir();
    let back = TestServer::on_data_dir(|dir| copy_tree(&source, dir), "");
    let ours = zkcli(&back.address(), LISTQUOTAS);
    assert_eq!(answers(&ours), answers(&theirs), "ferrokeeper:\n{ours}\nZooKeeper:\n{theirs}");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() { copy_tree(&path, &target) } else { std::fs::copy(&path, &target).map(drop).unwrap() }
    }
}

/// A ferrokeeper leader with two Java followers: quota usage moves alike on every member (each applies
/// it locally), hard limits are refused by the leader whichever member took the write, and the Java
/// followers, which check the leader's digest after every txn, find no mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_in_an_ensemble_led_by_ferrokeeper_keep_java_digests_equal() {
    use fk_tests::ensemble::{EnsembleSpec, Implementation::*, TestEnsemble};
    let spec = EnsembleSpec::new(vec![ZooKeeper, ZooKeeper, Ferrokeeper])
        .with_ticks(500, 10, 5)
        .with_extra("enforceQuota=true")
        .with_java_option("-Dzookeeper.enforceQuota=true");
    let mut ensemble = match TestEnsemble::start(spec) {
        Ok(ensemble) => ensemble,
        Err(reason) => return eprintln!("SKIPPED: {reason}"),
    };
    // The highest id wins an election between equal histories.
    assert_eq!(ensemble.wait_for_leader(Duration::from_secs(60)), 2);
    let mut clients = Vec::new();
    for i in 0..ensemble.len() {
        let address = ensemble.client_address(i).to_string();
        let connector = zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(&address);
        clients.push(connector.await.unwrap_or_else(|e| panic!("connect to member {i}: {e}")));
    }
    let java = &clients[0];
    java.create("/q", b"abc", &persistent()).await.unwrap();
    set_quota(java, "/q", "count=-1,bytes=-1=;countHardLimit=4").await;
    clients[2].create("/q/a", b"12", &persistent()).await.unwrap();
    java.create("/q/b", b"", &persistent()).await.unwrap();
    clients[1].set_data("/q/a", b"1234", None).await.unwrap();
    let mut multi = java.new_multi_writer();
    multi.add_delete("/q/b", None).unwrap();
    multi.add_create("/q/c", b"x", &persistent()).unwrap();
    multi.commit().await.unwrap();
    clients[2].create("/q/d", b"", &persistent()).await.unwrap();
    assert_eq!(java.create("/q/e", b"", &persistent()).await.unwrap_err(), zk::Error::QuotaExceeded);
    assert_eq!(clients[1].create("/q/e", b"", &persistent()).await.unwrap_err(), zk::Error::QuotaExceeded);

    for (i, client) in clients.iter().enumerate() {
        client.sync("/").await.unwrap();
        assert_eq!(usage(client, "/q").await.0, "count=4,bytes=8", "member {i}");
    }
    for i in [0, 1] {
        let mntr = ensemble.four_letter(i, "mntr");
        assert!(mntr.contains("zk_digest_mismatches_count\t0"), "member {i}: {mntr}");
    }
}
