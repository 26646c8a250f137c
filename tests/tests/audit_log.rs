//! The audit log (`audit.enable=true`), beside Apache ZooKeeper 3.8: the same client actions through
//! the `zookeeper-client` crate — creates that succeed and fail, setData, setAcl, multis that succeed and
//! fail, an authenticated user, an ephemeral removed with its closed session — give the same audit lines
//! on both servers (session ids numbered by first appearance, timestamps left out), and ours start with
//! ZooKeeper's pattern. A SIGTERM logs the server's stop. Skips the ZooKeeper half with a printed reason
//! where Java or Debian's package is missing.

use std::path::Path;
use std::time::{Duration, Instant};

use fk_tests::TestServer;
use fk_tests::java::JavaStandalone;
use fk_tests::zk;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn connect(address: &str, auth: Option<&[u8]>) -> zk::Client {
    let mut connector = zk::Client::connector().with_session_timeout(Duration::from_secs(10));
    if let Some(auth) = auth {
        connector = connector.with_auth("digest", auth);
    }
    connector.connect(address).await.unwrap_or_else(|e| panic!("connect to {address}: {e}"))
}

/// The actions whose audit lines are compared; the same on both servers.
async fn actions(address: &str) {
    let c = connect(address, None).await;
    c.create("/a", b"1", &zk::persistent()).await.expect("create /a");
    assert!(c.create("/a", b"1", &zk::persistent()).await.is_err(), "a second /a");
    c.set_data("/a", b"2", None).await.expect("set /a");
    assert!(c.set_data("/missing", b"2", None).await.is_err());
    c.set_acl("/a", &zk::Acls::anyone_all(), None).await.expect("setAcl /a");
    let sequential = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    c.create("/s-", b"", &sequential).await.expect("create /s-");
    let mut multi = c.new_multi_writer();
    multi.add_create("/m", b"", &zk::persistent()).unwrap();
    multi.add_create("/m/s-", b"", &sequential).unwrap();
    multi.add_set_data("/a", b"3", None).unwrap();
    multi.add_check_version("/a", -1).unwrap();
    multi.add_delete("/s-0000000001", None).unwrap();
    multi.commit().await.expect("a multi that succeeds");
    let mut multi = c.new_multi_writer();
    multi.add_create("/n", b"", &zk::persistent()).unwrap();
    multi.add_create("/a", b"", &zk::persistent()).unwrap();
    assert!(multi.commit().await.is_err(), "a multi that fails");
    let alice = connect(address, Some(b"alice:secret")).await;
    alice.create("/b", b"", &zk::persistent()).await.expect("alice creates /b");
    alice.delete("/b", None).await.expect("alice deletes /b");
    let owner = connect(address, None).await;
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    owner.create("/e", b"", &ephemeral).await.expect("create /e");
    drop(owner);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.check_stat("/e").await.expect("exists /e").is_some() {
        assert!(Instant::now() < deadline, "the closed session's ephemeral is still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.delete("/a", None).await.expect("delete /a");
}

/// The audit messages in `text` (from the first pair after the logger's name: its layout differs), with
/// session ids numbered by first appearance.
fn audit_messages(text: &str) -> Vec<String> {
    let mut sessions: Vec<String> = Vec::new();
    text.lines()
        .filter_map(|line| {
            let after = line.split_once("Slf4jAuditLogger")?.1;
            let start = ["session=", "user="].iter().filter_map(|key| after.find(key)).min()?;
            Some(&after[start..])
        })
        .map(|message| {
            message
                .split('\t')
                .map(|pair| match pair.strip_prefix("session=") {
                    Some(id) => {
                        let n = sessions.iter().position(|s| s == id).unwrap_or_else(|| {
                            sessions.push(id.to_owned());
                            sessions.len() - 1
                        });
                        format!("session=S{n}")
                    }
                    None => pair.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect()
}

/// What `read` gives once it holds `needle` (the audit lines of a reply are written after the reply).
fn wait_for(read: impl Fn() -> String, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = read();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "no '{needle}' in:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_line(path: &Path, needle: &str) -> String {
    wait_for(|| std::fs::read_to_string(path).unwrap_or_default(), needle)
}

#[test]
fn audit_lines_match_zookeepers_for_the_same_actions() {
    let logs = tempfile::tempdir().unwrap();
    let server = TestServer::with_config(&format!(
        "audit.enable=true\nzookeeper.log.dir={}\nzookeeper.auditlog.file=audit.log",
        logs.path().display()
    ));
    let audit_file = logs.path().join("audit.log");
    runtime().block_on(actions(&server.address()));
    let ours = wait_for_line(&audit_file, "operation=delete\tznode=/a\tresult=success");
    let first = ours.lines().next().unwrap();
    // logback's `%d{ISO8601} %p %c{2}: %m`.
    let (date, rest) = first.split_at(23);
    assert!(date.as_bytes()[10] == b' ' && date.as_bytes()[19] == b',', "timestamp: {first}");
    assert!(rest.starts_with(" INFO audit.Slf4jAuditLogger: user="), "{first}");
    assert!(rest.ends_with("\toperation=serverStart\tresult=success"), "{first}");
    assert!(ours.contains(" ERROR audit.Slf4jAuditLogger: session="), "failures at ERROR:\n{ours}");
    let ours = audit_messages(&ours);
    let expected_tail = [
        "session=S0\tuser=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/a\tznode_type=persistent\tresult=success",
        "session=S0\tuser=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/a\tznode_type=persistent\tresult=failure",
    ];
    assert_eq!(ours[1..3], expected_tail, "{ours:#?}");
    assert!(ours.iter().any(|l| l.contains("user=alice,127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/b")));
    assert!(ours.iter().any(|l| l.contains("operation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/e")));

    let Some(java) = JavaStandalone::start(None, "audit.enable=true") else { return };
    runtime().block_on(actions(&java.address()));
    let theirs = audit_messages(&wait_for(|| java.log_text(), "operation=delete\tznode=/a\tresult=success"));
    // The server user differs only if the two run as different users; both run as this test's.
    assert_eq!(ours, theirs, "ours:\n{}\n\nZooKeeper's:\n{}", ours.join("\n"), theirs.join("\n"));
}

#[test]
fn a_sigterm_logs_the_servers_stop_and_still_ends_the_process() {
    let logs = tempfile::tempdir().unwrap();
    let mut server =
        TestServer::with_config(&format!("audit.enable=true\nzookeeper.log.dir={}", logs.path().display()));
    let audit_file = logs.path().join("zookeeper_audit.log");
    wait_for_line(&audit_file, "operation=serverStart");
    fk_tests::signal(server.pid(), "TERM");
    let text = wait_for_line(&audit_file, "operation=serverStop\tresult=invoked");
    assert!(text.lines().last().unwrap().contains(" INFO audit.Slf4jAuditLogger: user="), "{text}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.is_running() {
        assert!(Instant::now() < deadline, "SIGTERM did not end the server");
        std::thread::sleep(Duration::from_millis(20));
    }
}
