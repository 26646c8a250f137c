//! Read-only mode (`readonlymode.enabled`), beside Apache ZooKeeper 3.8 doing the same: a 3-member
//! ensemble with two members SIGSTOPped. The one left serves clients that allow read-only sessions
//! (kazoo with `read_only=True` reads, and its write gets NotReadOnly; `isro` says `ro`; srvr's mode is
//! `read-only`), closes those that do not and those resuming one of the ensemble's sessions, answers an
//! unknown session as expired; after SIGCONT the same kazoo client is moved to a read-write session
//! and writes. ZooKeeper 3.8 runs with `localSessionsEnabled=true` (and upgrading, for the ephemeral of a
//! session to resume): without it, its read-only server
//! answers a new session with a bare NotReadOnly reply header that no client can read (its
//! ReadOnlyRequestProcessor refuses global createSession requests), so there is nothing to compare. Skips the ZooKeeper half with a printed reason
//! where Java or Debian's package is missing, and the kazoo part where python3-kazoo is.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use fk_net::client::{ConnectRequest, PathRequest, Request};
use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, TestEnsemble};
use fk_tests::raw::RawClient;
use fk_tests::zk;
use serde_json::Value;

const ELECTION_TIMEOUT: Duration = Duration::from_secs(90);
const KAZOO_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kazoo/read_only_session.py");

/// Debian's python3-kazoo is installed for the system python.
fn kazoo_or_skip() -> bool {
    let found = Command::new("/usr/bin/python3").args(["-c", "import kazoo"]).status().is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED (kazoo part): /usr/bin/python3 cannot import kazoo (Debian's python3-kazoo)");
    }
    found
}

/// The kazoo client of `read_only_session.py`, one JSON answer per step.
struct Kazoo {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Kazoo {
    fn start(hosts: &str) -> Kazoo {
        let mut child = Command::new("/usr/bin/python3")
            .args([KAZOO_SCRIPT, hosts])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Kazoo { child, stdin, stdout }
    }

    fn step(&mut self, step: &str) -> Value {
        writeln!(self.stdin, "{step}").expect("tell kazoo");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("kazoo's answer");
        let answer: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("kazoo said {line:?}: {e}"));
        assert!(answer.get("error").is_none(), "kazoo, step {step}: {answer}");
        answer
    }
}

impl Drop for Kazoo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a client sees of one implementation, compared between the two.
#[derive(Debug, PartialEq)]
struct Seen {
    isro: String,
    mode: Option<Mode>,
    kazoo_read_only: Option<Value>,
    /// Raw protocol: a client that does not allow read-only sessions, and one resuming one of the
    /// ensemble's sessions, are closed; an unknown session is answered as expired (timeout 0); a
    /// read-only client gets its session, and NotReadOnly (-119) for a sync.
    plain_client_refused: bool,
    resumed_session_refused: bool,
    unknown_session_timeout: Option<i32>,
    sync_err: i32,
    /// A read-only session silent for longer than its timeout has its connection closed.
    silent_session_closed: bool,
    kazoo_read_write: Option<Value>,
    isro_after: String,
}

fn open_acl() -> Vec<fk_net::client::Acl> {
    vec![fk_net::client::Acl { perms: fk_net::client::perms::ALL, id: fk_net::client::Id::new("world", "anyone") }]
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(implementation: Implementation) -> Option<Seen> {
    let spec = EnsembleSpec::uniform(implementation, 3, 0)
        .with_ticks(500, 10, 5)
        .with_extra("readonlymode.enabled=true\nlocalSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true")
        // ZooKeeper reads the switch from this JVM property only.
        .with_java_option("-Dreadonlymode.enabled=true");
    let mut ensemble = match TestEnsemble::start(spec) {
        Ok(ensemble) => ensemble,
        Err(reason) => {
            eprintln!("SKIPPED ({implementation:?}): {reason}");
            return None;
        }
    };
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let keep = (leader + 1) % 3;
    let address = ensemble.client_address(keep).to_string();
    runtime.block_on(async {
        let c = zk::synced_client(&ensemble.connect_string(), Duration::from_secs(10), "/").await;
        c.create("/ro", b"v1", &zk::persistent()).await.expect("create /ro");
        let member = zk::synced_client(&address, Duration::from_secs(10), "/ro").await;
        assert_eq!(member.get_data("/ro").await.expect("read /ro").0, b"v1");
    });
    // A session of the ensemble (global: it owns an ephemeral), whose client will try to resume it.
    let mut global = RawClient::connect(&address);
    let ephemeral = fk_net::client::CreateRequest { path: "/owned".into(), data: None, acl: open_acl(), flags: 1 };
    let create =
        Request::Write(fk_net::client::WriteOp::Create { op: fk_net::client::OpCode::Create, request: ephemeral });
    assert_eq!(global.call(&create).0.err(), 0, "create an ephemeral");
    let (global_id, global_password) = (global.session_id, global.passwd.clone());
    drop(global);
    // Its leader and the other follower hang: the member left has no quorum.
    for i in (0..3).filter(|&i| i != keep) {
        ensemble.stop(i);
    }
    wait_until("read-only service", ELECTION_TIMEOUT, || ensemble.four_letter(keep, "isro") == "ro");
    let isro = ensemble.four_letter(keep, "isro");
    let mode = ensemble.mode(keep);

    let with_kazoo = kazoo_or_skip();
    let mut kazoo = with_kazoo.then(|| Kazoo::start(&address));
    let kazoo_read_only = kazoo.as_mut().map(|k| k.step("ro"));

    let plain =
        ConnectRequest { timeout_ms: 10_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() };
    let plain_client_refused = RawClient::connect_with(&address, plain.clone()).is_none();
    let resuming = ConnectRequest {
        session_id: global_id,
        passwd: global_password,
        read_only: Some(true),
        timeout_ms: 30_000,
        ..plain.clone()
    };
    let resumed_session_refused = RawClient::connect_with(&address, resuming).is_none();
    let unknown = ConnectRequest { session_id: 0x1234_5678, read_only: Some(true), ..plain.clone() };
    let unknown_session_timeout = RawClient::connect_with(&address, unknown).map(|c| c.timeout_ms);
    let mut raw = RawClient::connect_with(&address, ConnectRequest { read_only: Some(true), ..plain.clone() })
        .expect("a read-only client gets a session");
    let sync_err = raw.call(&Request::Sync(PathRequest { path: "/ro".into() })).0.err();
    let read = raw.call(&Request::Exists(fk_net::client::PathWatchRequest { path: "/ro".into(), watch: false })).0;
    assert_eq!(read.err(), 0, "reads are served");
    drop(raw);
    let short = ConnectRequest { timeout_ms: 1_000, read_only: Some(true), ..plain };
    let mut silent = RawClient::connect_with(&address, short).expect("a short read-only session");
    std::thread::sleep(Duration::from_millis(3_500));
    let silent_session_closed = silent.try_send(&Request::Ping).is_err() || silent.recv().is_none();

    for i in (0..3).filter(|&i| i != keep) {
        ensemble.resume(i);
    }
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let kazoo_read_write = kazoo.as_mut().map(|k| k.step("rw"));
    wait_until("read-write service", ELECTION_TIMEOUT, || ensemble.mode(keep).is_some_and(|m| m != Mode::ReadOnly));
    let isro_after = ensemble.four_letter(keep, "isro");
    runtime.block_on(async {
        let c = zk::synced_client(&address, Duration::from_secs(10), "/").await;
        assert_eq!(c.check_stat("/ro-write").await.expect("exists"), None, "the refused write left nothing");
        if with_kazoo {
            assert_eq!(c.get_data("/rw-write").await.expect("kazoo's write").0, b"y");
        }
    });
    Some(Seen {
        isro,
        mode,
        kazoo_read_only,
        plain_client_refused,
        resumed_session_refused,
        unknown_session_timeout,
        sync_err,
        silent_session_closed,
        kazoo_read_write,
        isro_after,
    })
}

#[test]
fn a_member_cut_off_from_its_quorum_serves_read_only_clients_as_zookeeper_does() {
    let ours = run(Implementation::Ferrokeeper).expect("ferrokeeper ensembles always run");
    assert_eq!((ours.isro.as_str(), ours.mode), ("ro", Some(Mode::ReadOnly)));
    if let Some(answer) = &ours.kazoo_read_only {
        assert_eq!(answer["state"], "CONNECTED_RO", "{answer}");
        assert_eq!(answer["data"], "v1", "{answer}");
        assert_eq!(answer["write"], "NotReadOnly", "{answer}");
    }
    assert!(ours.plain_client_refused && ours.resumed_session_refused, "{ours:?}");
    assert_eq!(ours.unknown_session_timeout, Some(0), "answered as expired");
    assert_eq!(ours.sync_err, -119, "NotReadOnly");
    assert!(ours.silent_session_closed);
    if let Some(answer) = &ours.kazoo_read_write {
        assert_eq!((&answer["state"], &answer["data"]), (&Value::from("CONNECTED"), &Value::from("y")), "{answer}");
    }
    assert_eq!(ours.isro_after, "rw");
    if let Some(theirs) = run(Implementation::ZooKeeper) {
        eprintln!("ferrokeeper: {ours:?}\nZooKeeper 3.8: {theirs:?}");
        assert_eq!(ours, theirs, "ferrokeeper (left) and ZooKeeper 3.8 (right) differ");
    }
}
