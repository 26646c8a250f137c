//! Ensemble scenarios on real processes (loopback): five voters losing a leader and a follower at once;
//! a restarted member synchronised by DIFF and one absent for many snapshots by SNAP; a former leader
//! holding txns nobody committed truncated when it returns (TRUNC); a hung leader replaced and rejoining
//! as a follower; a client's session, watches and ephemerals surviving a move between members; session
//! expiry seen by every member while a pinging client on a follower lives on; watches set on a follower.
//!
//! Every scenario is written once for both implementations: `ferrokeeper_*` tests run it on our binary,
//! and the ignored `zookeeper_*` tests run the very same steps on Apache ZooKeeper 3.8 — the oracle for
//! what each scenario expects (`cargo test -p fk-tests --test ensemble_scenarios -- --ignored`; slower:
//! every member is a JVM).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use fk_engine::files::{LOG_PREFIX, list};
use fk_engine::log::read_log;
use fk_net::client::{Acl, CreateRequest, OpCode, Request, WriteOp, perms};
use fk_net::txn::TxnBody;
use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, TestEnsemble};
use fk_tests::raw::RawClient;
use fk_tests::zk;

use Implementation::{Ferrokeeper, ZooKeeper};

/// Java members start slowly on two busy cores; ferrokeeper elects in well under a second.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of one client operation in a poll.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// tickTime 200 ms: syncLimit (5 ticks) is 1 s, sessions may last 400 ms .. 4 s.
const TICK_MS: u32 = 200;
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

/// How each implementation's learner tells, in its log, how it was synchronised.
struct SyncMarkers {
    /// A line only a DIFF sync writes (ferrokeeper writes none: a DIFF is told by the absence of the
    /// others and by the missed txns in the member's own log).
    diff: Option<&'static str>,
    snap: &'static str,
    trunc: &'static str,
}

fn sync_markers(implementation: Implementation) -> SyncMarkers {
    match implementation {
        Ferrokeeper => {
            SyncMarkers { diff: None, snap: "received the leader's snapshot", trunc: "truncating the log to" }
        }
        // Learner.syncWithLeader's INFO/WARN lines.
        ZooKeeper => SyncMarkers {
            diff: Some("Getting a diff from the leader"),
            snap: "Getting a snapshot from leader",
            trunc: "Truncating log to get in sync with the leader",
        },
    }
}

fn spec(implementation: Implementation, voters: usize) -> EnsembleSpec {
    // initLimit 10 ticks = 2 s: a JVM learner's first sync must fit in it.
    EnsembleSpec::uniform(implementation, voters, 0).with_ticks(TICK_MS, 10, 5)
}

fn start(spec: EnsembleSpec) -> TestEnsemble {
    TestEnsemble::start(spec).unwrap_or_else(|e| panic!("cannot start the ensemble: {e}"))
}

/// Runs a scenario on a runtime of its own (the oracle and ferrokeeper tests share the code).
fn run(scenario: impl FnOnce() -> Pin<Box<dyn Future<Output = ()>>>) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    runtime.block_on(scenario());
}

async fn client(connect_string: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .connect(connect_string)
        .await
        .unwrap_or_else(|e| panic!("connect to {connect_string}: {e}"))
}

async fn member_client(ensemble: &TestEnsemble, i: usize) -> zk::Client {
    client(&ensemble.client_address(i).to_string()).await
}

/// A client of member i whose `sync` of `path` completed (retried on a fresh session should a slow
/// disk keep the member silent past the client's patience).
async fn synced_member_client(ensemble: &TestEnsemble, i: usize, path: &str) -> zk::Client {
    zk::synced_client(&ensemble.client_address(i).to_string(), SESSION_TIMEOUT, path).await
}

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

/// Every znode (but `/zookeeper`'s) with its data and stat, as member i sees it after a `sync`.
async fn tree_of(ensemble: &TestEnsemble, i: usize) -> zk::Tree {
    zk::read_tree(&synced_member_client(ensemble, i, "/").await).await
}

/// Every member in `members` holds the same znodes with the same data and stats; returns that tree.
async fn assert_same_trees(ensemble: &TestEnsemble, members: &[usize]) -> zk::Tree {
    let first = tree_of(ensemble, members[0]).await;
    for &i in &members[1..] {
        let tree = tree_of(ensemble, i).await;
        if tree != first {
            let differ: Vec<&String> =
                first.keys().chain(tree.keys()).filter(|p| first.get(*p) != tree.get(*p)).collect();
            panic!("member {i} differs from member {} at {differ:?}", members[0]);
        }
    }
    first
}

/// `path`'s data on member i after a `sync`.
async fn read_synced(ensemble: &TestEnsemble, i: usize, path: &str) -> Option<Vec<u8>> {
    let c = synced_member_client(ensemble, i, path).await;
    match c.get_data(path).await {
        Ok((data, _)) => Some(data),
        Err(zk::Error::NoNode) => None,
        Err(e) => panic!("read {path} on member {i}: {e}"),
    }
}

/// The (zxid, path) of every create in member i's txn logs on disk.
fn logged_creates(ensemble: &TestEnsemble, i: usize) -> Vec<(i64, String)> {
    let dir = ensemble.data_dir(i).join("version-2");
    let mut creates = Vec::new();
    for (_, path) in list(&dir, LOG_PREFIX).unwrap_or_default() {
        let Ok(log) = read_log(&path) else { continue };
        for record in log.records {
            if let TxnBody::Create { txn, .. } = record.txn.body {
                creates.push((record.txn.header.zxid, txn.path));
            }
        }
    }
    creates
}

fn voters_but(ensemble: &TestEnsemble, out: &[usize]) -> Vec<usize> {
    (0..ensemble.len()).filter(|i| !out.contains(i)).collect()
}

/// Polls `check` until it holds; panics with `what` after `timeout`. Returns how long it took.
async fn eventually<F: Future<Output = bool>>(what: &str, timeout: Duration, mut check: impl FnMut() -> F) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// Creates `path` through `connect_string` with a fresh session that fails fast: true only when the
/// create was acknowledged.
async fn try_create(connect_string: &str, path: &str) -> bool {
    let attempt = async {
        let c = zk::Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .with_fail_eagerly()
            .connect(connect_string)
            .await
            .ok()?;
        c.create(path, b"w", &zk::persistent()).await.ok()
    };
    matches!(tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await, Ok(Some(_)))
}

// ---- 1. five voters lose their leader and a follower at once ----

async fn five_voters_survive_losing_the_leader_and_a_follower(implementation: Implementation) {
    let mut ensemble = start(spec(implementation, 5));
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let modes: Vec<Option<Mode>> = (0..5).map(|i| ensemble.mode(i)).collect();
    assert_eq!(modes.iter().filter(|m| **m == Some(Mode::Leader)).count(), 1, "{modes:?}");
    assert_eq!(modes.iter().filter(|m| **m == Some(Mode::Follower)).count(), 4, "{modes:?}");

    // A write through every member, leader and followers alike, lands on all five.
    for i in 0..5 {
        let c = member_client(&ensemble, i).await;
        c.create(&format!("/through-{i}"), format!("{i}").as_bytes(), &zk::persistent())
            .await
            .unwrap_or_else(|e| panic!("create through member {i}: {e}"));
    }
    let before = assert_same_trees(&ensemble, &[0, 1, 2, 3, 4]).await;
    assert_eq!(before.len(), 6, "the root and five nodes: {:?}", before.keys());

    let follower = (leader + 1) % 5;
    let started = Instant::now();
    ensemble.kill(leader);
    ensemble.kill(follower);
    let survivors = voters_but(&ensemble, &[leader, follower]);
    let new_leader = ensemble.wait_for_leader_among(&survivors, ELECTION_TIMEOUT);
    eprintln!("MEASURED {implementation:?}: 3 of 5 elected a new leader in {} ms", started.elapsed().as_millis());
    assert!(survivors.contains(&new_leader));
    for &i in &survivors {
        let c = member_client(&ensemble, i).await;
        c.create(&format!("/survivor-{i}"), b"s", &zk::persistent())
            .await
            .unwrap_or_else(|e| panic!("create through survivor {i}: {e}"));
    }
    assert_same_trees(&ensemble, &survivors).await;

    // Both return; the leader of the three keeps leading and they catch up on what they missed.
    ensemble.restart(leader);
    ensemble.restart(follower);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), new_leader);
    let after = assert_same_trees(&ensemble, &[0, 1, 2, 3, 4]).await;
    for &i in &survivors {
        assert!(after.contains_key(&format!("/survivor-{i}")), "{:?}", after.keys());
    }
}

#[test]
fn ferrokeeper_five_voters_survive_losing_the_leader_and_a_follower() {
    run(|| Box::pin(five_voters_survive_losing_the_leader_and_a_follower(Ferrokeeper)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (five JVMs, slow)"]
fn zookeeper_five_voters_survive_losing_the_leader_and_a_follower() {
    run(|| Box::pin(five_voters_survive_losing_the_leader_and_a_follower(ZooKeeper)));
}

// ---- 2. catch-up by DIFF, then by SNAP ----

/// Writes `count` setData on `path` through `c`, pipelined (the client sends each request when the call
/// is made), and waits for every reply.
async fn set_many(c: &zk::Client, path: &str, count: usize) {
    const WINDOW: usize = 200;
    for chunk_start in (0..count).step_by(WINDOW) {
        let replies: Vec<_> = (chunk_start..(chunk_start + WINDOW).min(count))
            .map(|n| c.set_data(path, format!("{n}").as_bytes(), None))
            .collect();
        for reply in replies {
            reply.await.unwrap_or_else(|e| panic!("setData {path}: {e}"));
        }
    }
}

async fn restarted_followers_catch_up_by_diff_and_by_snap(implementation: Implementation) {
    // Small snapshots intervals: thousands of writes roll many snapshots and logs.
    let mut ensemble = start(spec(implementation, 3).with_extra("snapCount=100"));
    let markers = sync_markers(implementation);
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let writer = member_client(&ensemble, leader).await;
    writer.create("/hot", b"", &zk::persistent()).await.expect("create /hot");
    let [a, b] = [(leader + 1) % 3, (leader + 2) % 3];

    // DIFF: a few writes missed.
    ensemble.kill(a);
    let mut missed = Vec::new();
    for n in 0..5 {
        let (stat, _) = writer
            .create(&format!("/missed-{n}"), b"d", &zk::persistent())
            .await
            .unwrap_or_else(|e| panic!("create /missed-{n}: {e}"));
        missed.push(stat.czxid);
    }
    ensemble.restart(a);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), leader);
    assert_same_trees(&ensemble, &[0, 1, 2]).await;
    let log = ensemble.log_text(a);
    assert!(!log.contains(markers.snap), "member {a} got a snapshot for 5 missed txns:\n{log}");
    assert!(!log.contains(markers.trunc), "member {a} was truncated:\n{log}");
    if let Some(diff) = markers.diff {
        assert!(log.contains(diff), "member {a} does not report a DIFF:\n{log}");
    }
    // A DIFF hands the txns themselves: the member logged each missed one under the leader's zxid.
    let logged: Vec<i64> = logged_creates(&ensemble, a).into_iter().map(|(zxid, _)| zxid).collect();
    for zxid in &missed {
        assert!(logged.contains(zxid), "member {a} did not log missed txn 0x{zxid:x}");
    }

    // SNAP: thousands of writes (many snapshots) missed.
    ensemble.kill(b);
    set_many(&writer, "/hot", 3000).await;
    for n in 0..3 {
        writer.create(&format!("/late-{n}"), b"l", &zk::persistent()).await.expect("create /late-n");
    }
    ensemble.restart(b);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), leader);
    let tree = assert_same_trees(&ensemble, &[0, 1, 2]).await;
    assert_eq!(tree["/hot"].1.version, 3000, "every setData counted");
    let log = ensemble.log_text(b);
    assert!(log.contains(markers.snap), "member {b} was not synchronised by a snapshot:\n{log}");
}

#[test]
fn ferrokeeper_restarted_followers_catch_up_by_diff_and_by_snap() {
    run(|| Box::pin(restarted_followers_catch_up_by_diff_and_by_snap(Ferrokeeper)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_restarted_followers_catch_up_by_diff_and_by_snap() {
    run(|| Box::pin(restarted_followers_catch_up_by_diff_and_by_snap(ZooKeeper)));
}

// ---- 3. TRUNC of txns nobody else has ----

fn raw_create(path: &str) -> Request {
    let acl = vec![Acl::new(perms::ALL, "world", "anyone")];
    let request = CreateRequest { path: path.into(), data: Some(b"u".to_vec()), acl, flags: 0 };
    Request::Write(WriteOp::Create { op: OpCode::Create, request })
}

/// The pid of member i, found by its zoo.cfg on the command line (the harness keeps it private).
fn member_pid(ensemble: &TestEnsemble, i: usize) -> u32 {
    let config = ensemble.data_dir(i).parent().expect("member dir").join("zoo.cfg");
    let config = config.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if cmdline.split(|b| *b == 0).any(|arg| arg == config.as_bytes()) {
            return pid;
        }
    }
    panic!("no process runs {config}");
}

/// SIGKILLs a SIGSTOPped member without resuming it first: it dies without reading what waits in its
/// sockets (the harness's kill sends SIGCONT first, which gives it a moment to run).
fn kill_while_stopped(ensemble: &mut TestEnsemble, i: usize) {
    let pid = member_pid(ensemble, i);
    let status = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -KILL {pid}");
    // Reaps it (its SIGCONT to the dead process is harmless).
    ensemble.kill(i);
}

/// A leader logs txns it cannot commit (its followers hang), dies, and the followers — which never read
/// those proposals — elect a new leader. The old leader returns either before the new leader commits
/// anything (`new_writes_first` false) or after. ZooKeeper 3.8's `LearnerHandler.syncFollower` sends
/// TRUNC in the first case (the peer's zxid is above everything the leader has). In the second it
/// cannot: the proposal after the common point is of the new epoch, and a TRUNC may not cross an epoch
/// ("Cannot send TRUNC to peer sid: .. peer zxid is from different epoch"), so it falls back to SNAP.
/// Either way the uncommitted txns must be gone everywhere.
/// Which members play which part once [`leader_with_uncommitted_txns`] returns.
struct Uncommitted {
    /// The old leader, down, its log holding `paths`' creates.
    old: usize,
    /// The leader the other two elected without it.
    new: usize,
    /// Creates the old leader logged and nobody committed.
    paths: Vec<String>,
}

/// Steps shared by the TRUNC scenarios: `/base` committed, then the old leader logs creates nobody
/// acknowledges and dies; the two others elect a new leader without it.
async fn leader_with_uncommitted_txns(ensemble: &mut TestEnsemble) -> Uncommitted {
    let old = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let followers = voters_but(&*ensemble, &[old]);
    // One session for everything, committed before the followers hang and open throughout (its 30 s
    // timeout outlives the test): the new leader commits nothing of its own (no session expiry).
    let mut raw = RawClient::connect(&ensemble.client_address(old).to_string());
    let (reply, _) = raw.call(&raw_create("/base"));
    assert_eq!(reply.err(), 0, "create /base");

    for &f in &followers {
        ensemble.stop(f);
    }
    // The leader logs and proposes these, but no follower acknowledges them: within syncLimit the
    // leader gives up, and they are committed nowhere.
    let uncommitted: Vec<String> = (0..5).map(|n| format!("/uncommitted-{n}")).collect();
    let xids: Vec<i32> = uncommitted.iter().map(|p| raw.send(&raw_create(p))).collect();
    let logged = eventually("the leader logs the uncommitted creates", Duration::from_secs(5), || {
        let creates = logged_creates(&*ensemble, old);
        let done = uncommitted.iter().all(|p| creates.iter().any(|(_, c)| c == p));
        async move { done }
    })
    .await;
    eprintln!("the leader logged 5 uncommitted creates in {} ms", logged.as_millis());
    raw.stream.set_read_timeout(Some(Duration::from_secs(3))).expect("read timeout");
    while let Some(reply) = raw.recv() {
        let acknowledged = xids.contains(&reply.header.xid) && reply.err() == 0;
        assert!(!acknowledged, "a create without a quorum was acknowledged: {reply:?}");
    }

    // The leader dies; the followers die too without ever reading the proposals in their sockets, and
    // come back to elect a leader of their own.
    ensemble.kill(old);
    for &f in &followers {
        kill_while_stopped(ensemble, f);
    }
    for &f in &followers {
        ensemble.restart(f);
    }
    let new = ensemble.wait_for_leader_among(&followers, ELECTION_TIMEOUT);
    Uncommitted { old, new, paths: uncommitted }
}

async fn a_returning_leader_loses_the_txns_nobody_committed(implementation: Implementation, new_writes_first: bool) {
    a_returning_leader_of_a_mixed_ensemble_loses_the_txns_nobody_committed(spec(implementation, 3), new_writes_first)
        .await
}

/// The same for any ensemble (mixed ones included); the markers are those of the old leader's kind.
async fn a_returning_leader_of_a_mixed_ensemble_loses_the_txns_nobody_committed(
    spec: EnsembleSpec,
    new_writes_first: bool,
) {
    let mut ensemble = start(spec);
    let Uncommitted { old, new, paths: uncommitted } = leader_with_uncommitted_txns(&mut ensemble).await;
    let markers = sync_markers(ensemble.implementation(old));
    let write_after = async |ensemble: &TestEnsemble| {
        member_client(ensemble, new).await.create("/after", b"a", &zk::persistent()).await.expect("create /after");
    };
    if new_writes_first {
        write_after(&ensemble).await;
    }

    // The old leader returns as a follower.
    ensemble.restart(old);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), new);
    if !new_writes_first {
        write_after(&ensemble).await;
    }
    let tree = assert_same_trees(&ensemble, &[0, 1, 2]).await;
    assert!(tree.contains_key("/base") && tree.contains_key("/after"), "{:?}", tree.keys());
    for path in &uncommitted {
        assert!(!tree.contains_key(path), "{path} was never committed but exists: {:?}", tree.keys());
    }
    let log = ensemble.log_text(old);
    if new_writes_first {
        assert!(log.contains(markers.snap), "the old leader was not sent a snapshot:\n{log}");
    } else {
        assert!(log.contains(markers.trunc), "the old leader was not truncated:\n{log}");
        // A truncation cuts the log file itself.
        let creates = logged_creates(&ensemble, old);
        for path in &uncommitted {
            assert!(!creates.iter().any(|(_, c)| c == path), "{path} is still in the old leader's log");
        }
    }
}

#[test]
fn ferrokeeper_a_leader_returning_at_once_is_truncated() {
    run(|| Box::pin(a_returning_leader_loses_the_txns_nobody_committed(Ferrokeeper, false)));
}

/// A ferrokeeper leader (myid 3, the first to start) with Java followers logs txns nobody acknowledges
/// and dies; the Java members elect one of themselves, which truncates the returning ferrokeeper member.
#[test]
fn mixed_a_java_leader_truncates_a_returning_ferrokeeper_leader() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let spec = EnsembleSpec::new(vec![ZooKeeper, ZooKeeper, Ferrokeeper]).with_ticks(TICK_MS, 10, 5);
    run(|| Box::pin(a_returning_leader_of_a_mixed_ensemble_loses_the_txns_nobody_committed(spec, false)));
}

#[test]
fn ferrokeeper_a_leader_returning_after_new_writes_gets_a_snapshot() {
    run(|| Box::pin(a_returning_leader_loses_the_txns_nobody_committed(Ferrokeeper, true)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_a_leader_returning_at_once_is_truncated() {
    run(|| Box::pin(a_returning_leader_loses_the_txns_nobody_committed(ZooKeeper, false)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_a_leader_returning_after_new_writes_gets_a_snapshot() {
    run(|| Box::pin(a_returning_leader_loses_the_txns_nobody_committed(ZooKeeper, true)));
}

/// The member synchronised by SNAP above keeps, below the snapshot, the txns nobody committed in its log
/// (ZooKeeper keeps them too: a SNAP does not cut the log, but ZooKeeper only replays txns after the
/// snapshot, into its committed log as well). Later it leads: the history it synchronises learners from
/// must hold committed txns only, and a learner it brings up to date must end equal to it.
async fn a_member_synchronised_by_snapshot_later_leads_without_the_txns_nobody_committed(
    implementation: Implementation,
) {
    let mut ensemble = start(spec(implementation, 3));
    let Uncommitted { old, new, paths: uncommitted } = leader_with_uncommitted_txns(&mut ensemble).await;
    let other = voters_but(&ensemble, &[old, new])[0];
    member_client(&ensemble, new).await.create("/after", b"a", &zk::persistent()).await.expect("create /after");
    ensemble.restart(old);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), new);

    // `other` misses a write that `old` takes; then `old`, the most up to date, leads `other`.
    ensemble.kill(other);
    member_client(&ensemble, new).await.create("/second", b"s", &zk::persistent()).await.expect("create /second");
    ensemble.kill(new);
    ensemble.restart(other);
    assert_eq!(ensemble.wait_for_leader_among(&[old, other], ELECTION_TIMEOUT), old);
    ensemble.restart(new);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), old);
    let tree = assert_same_trees(&ensemble, &[0, 1, 2]).await;
    for path in ["/base", "/after", "/second"] {
        assert!(tree.contains_key(path), "{path} is lost: {:?}", tree.keys());
    }
    for path in &uncommitted {
        assert!(!tree.contains_key(path), "{path} was never committed but exists: {:?}", tree.keys());
    }
}

#[test]
fn ferrokeeper_a_member_synchronised_by_snapshot_later_leads_without_the_txns_nobody_committed() {
    run(|| Box::pin(a_member_synchronised_by_snapshot_later_leads_without_the_txns_nobody_committed(Ferrokeeper)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_a_member_synchronised_by_snapshot_later_leads_without_the_txns_nobody_committed() {
    run(|| Box::pin(a_member_synchronised_by_snapshot_later_leads_without_the_txns_nobody_committed(ZooKeeper)));
}

// ---- 4. a hung leader ----

async fn a_hung_leader_is_replaced_and_rejoins_as_a_follower(implementation: Implementation) {
    let mut ensemble = start(spec(implementation, 3));
    let old = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let followers = voters_but(&ensemble, &[old]);
    member_client(&ensemble, followers[0]).await.create("/before", b"b", &zk::persistent()).await.unwrap();

    let stopped_at = Instant::now();
    ensemble.stop(old);
    let new = ensemble.wait_for_leader_among(&followers, ELECTION_TIMEOUT);
    let replaced = stopped_at.elapsed();
    eprintln!("MEASURED {implementation:?}: hung leader replaced in {} ms", replaced.as_millis());
    // syncLimit is 1 s: the followers give up on the leader within it, then elect (200 ms finalize wait).
    assert!(replaced < Duration::from_secs(8), "replacing the hung leader took {replaced:?}");
    member_client(&ensemble, new).await.create("/during", b"d", &zk::persistent()).await.unwrap();

    // Resumed, the old leader must notice it lost its followers: whatever it acknowledges meanwhile is
    // something the quorum committed.
    ensemble.resume(old);
    let old_address = ensemble.client_address(old).to_string();
    let mut attempted = Vec::new();
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ensemble.mode(old) != Some(Mode::Follower) {
        assert!(Instant::now() < deadline, "the old leader reports {:?}, not follower", ensemble.mode(old));
        let path = format!("/stale-{}", attempted.len());
        if try_create(&old_address, &path).await {
            acknowledged.push(path.clone());
        }
        attempted.push(path);
    }
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), new);
    eprintln!("old leader: {} write attempts while rejoining, {} acknowledged", attempted.len(), acknowledged.len());
    let tree = assert_same_trees(&ensemble, &[0, 1, 2]).await;
    assert!(tree.contains_key("/before") && tree.contains_key("/during"), "{:?}", tree.keys());
    for path in &acknowledged {
        assert!(tree.contains_key(path), "{path} was acknowledged by the old leader but is lost");
    }
    assert_eq!(read_synced(&ensemble, old, "/during").await.as_deref(), Some(&b"d"[..]));
}

#[test]
fn ferrokeeper_a_hung_leader_is_replaced_and_rejoins_as_a_follower() {
    run(|| Box::pin(a_hung_leader_is_replaced_and_rejoins_as_a_follower(Ferrokeeper)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_a_hung_leader_is_replaced_and_rejoins_as_a_follower() {
    run(|| Box::pin(a_hung_leader_is_replaced_and_rejoins_as_a_follower(ZooKeeper)));
}

// ---- 5. a session moves between members ----

/// Whether member i's `cons` lists a connection of `session`.
fn serves_session(ensemble: &TestEnsemble, i: usize, session: zk::SessionId) -> bool {
    ensemble.four_letter(i, "cons").contains(&format!("sid=0x{:x}", session.0))
}

/// A client of every member's connect string that landed on a member `wanted`; and that member.
async fn on_member(ensemble: &TestEnsemble, wanted: impl Fn(usize) -> bool) -> (zk::Client, usize) {
    for _ in 0..50 {
        let c = client(&ensemble.connect_string()).await;
        let home = (0..ensemble.len()).find(|&i| serves_session(ensemble, i, c.session_id()));
        if let Some(home) = home.filter(|&i| wanted(i)) {
            return (c, home);
        }
    }
    panic!("the client never landed on a wanted member in 50 connections");
}

async fn a_session_moves_with_its_watches_and_ephemerals(implementation: Implementation, kill_leader: bool) {
    let mut ensemble = start(spec(implementation, 3));
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let setter = member_client(&ensemble, (leader + 1) % 3).await;
    setter.create("/watched", b"0", &zk::persistent()).await.unwrap();

    // The client picks a member at random: reconnect until it is on the kind of member to kill.
    let (mover, home) = on_member(&ensemble, |i| (i == leader) == kill_leader).await;
    let session = mover.session_id();
    let others = voters_but(&ensemble, &[home]);
    mover.create("/mine", b"e", &ephemeral()).await.unwrap();
    let (_, _, watch) = mover.get_and_watch_data("/watched").await.unwrap();

    ensemble.kill(home);
    let (e, o) = (&ensemble, &others);
    let moved = eventually("the client reconnects to another member", SESSION_TIMEOUT, || {
        let connected = mover.state() == zk::SessionState::SyncConnected;
        async move { connected && o.iter().any(|&i| serves_session(e, i, session)) }
    })
    .await;
    eprintln!("MEASURED {implementation:?}: session moved in {} ms", moved.as_millis());
    if kill_leader {
        ensemble.wait_for_leader_among(&others, ELECTION_TIMEOUT);
    }
    assert_eq!(mover.session_id(), session);

    // The ephemeral lives on (owned by the same session), and the watch fires on a change by another
    // client on another member.
    for &i in &others {
        let c = synced_member_client(&ensemble, i, "/").await;
        let stat = c.check_stat("/mine").await.unwrap().unwrap_or_else(|| panic!("/mine is gone on member {i}"));
        assert_eq!(stat.ephemeral_owner, session.0, "member {i}");
    }
    let setter = member_client(&ensemble, others[1]).await;
    setter.set_data("/watched", b"1", None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.changed()).await.expect("the watch fires");
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged, "{event:?}");
    assert_eq!(event.path, "/watched");
    assert_eq!(mover.list_ephemerals("/").await.unwrap(), vec!["/mine"]);
}

#[test]
fn ferrokeeper_a_session_moves_from_a_dead_follower_with_its_watches_and_ephemerals() {
    run(|| Box::pin(a_session_moves_with_its_watches_and_ephemerals(Ferrokeeper, false)));
}

#[test]
fn ferrokeeper_a_session_moves_from_a_dead_leader_with_its_watches_and_ephemerals() {
    run(|| Box::pin(a_session_moves_with_its_watches_and_ephemerals(Ferrokeeper, true)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_a_session_moves_from_a_dead_follower_with_its_watches_and_ephemerals() {
    run(|| Box::pin(a_session_moves_with_its_watches_and_ephemerals(ZooKeeper, false)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_a_session_moves_from_a_dead_leader_with_its_watches_and_ephemerals() {
    run(|| Box::pin(a_session_moves_with_its_watches_and_ephemerals(ZooKeeper, true)));
}

// ---- 6. session expiry ----

/// A raw session of `timeout_ms` on `address` that creates the ephemeral `path`.
fn raw_session_with_ephemeral(address: &str, timeout_ms: i32, path: &str) -> RawClient {
    let request = fk_net::client::ConnectRequest {
        timeout_ms,
        passwd: vec![0; 16],
        read_only: Some(false),
        ..Default::default()
    };
    let mut raw = RawClient::connect_with(address, request).expect("handshake");
    let acl = vec![Acl::new(perms::ALL, "world", "anyone")];
    let create = CreateRequest { path: path.into(), data: Some(Vec::new()), acl, flags: 1 };
    let (reply, _) = raw.call(&Request::Write(WriteOp::Create { op: OpCode::Create, request: create }));
    assert_eq!(reply.err(), 0, "create ephemeral {path}");
    raw
}

async fn exists_on(ensemble: &TestEnsemble, i: usize, path: &str) -> bool {
    let c = synced_member_client(ensemble, i, path).await;
    c.check_stat(path).await.unwrap().is_some()
}

async fn a_silent_session_expires_everywhere_and_a_pinging_one_lives(implementation: Implementation) {
    const TIMEOUT_MS: i32 = 2000;
    let mut ensemble = start(spec(implementation, 3));
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let [f1, f2] = [(leader + 1) % 3, (leader + 2) % 3];
    let silent = raw_session_with_ephemeral(&ensemble.client_address(f1).to_string(), TIMEOUT_MS, "/silent");
    assert_eq!(silent.timeout_ms, TIMEOUT_MS);
    let mut pinging = raw_session_with_ephemeral(&ensemble.client_address(f2).to_string(), TIMEOUT_MS, "/pinging");
    let created = Instant::now();
    for i in 0..3 {
        assert!(exists_on(&ensemble, i, "/silent").await && exists_on(&ensemble, i, "/pinging").await, "member {i}");
    }

    // The pinging client pings its follower a few times per timeout; the silent one never sends again.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (reply, _) = pinging.call(&Request::Ping);
                assert_eq!(reply.err(), 0, "ping");
                std::thread::sleep(Duration::from_millis(TIMEOUT_MS as u64 / 4));
            }
            pinging
        })
    };
    let e = &ensemble;
    for i in 0..3 {
        eventually(&format!("/silent expires on member {i}"), Duration::from_secs(15), || async move {
            !exists_on(e, i, "/silent").await
        })
        .await;
        eprintln!("member {i}: /silent gone {} ms after its creation", created.elapsed().as_millis());
    }
    assert!(
        created.elapsed() >= Duration::from_millis(TIMEOUT_MS as u64),
        "the session expired before its timeout ({:?})",
        created.elapsed()
    );
    // Another full timeout with pings: the pinging session is alive everywhere.
    tokio::time::sleep(Duration::from_millis(TIMEOUT_MS as u64 * 3 / 2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut pinging = pinger.join().expect("the pinging client's session stayed valid");
    for i in 0..3 {
        assert!(exists_on(&ensemble, i, "/pinging").await, "member {i} expired a pinging session");
    }
    let (reply, _) = pinging.call(&Request::Ping);
    assert_eq!(reply.err(), 0);
    // The follower closed the silent client's connection once its session was gone.
    let mut silent = silent;
    silent.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(silent.recv().is_none(), "the expired session's connection is still open");
}

#[test]
fn ferrokeeper_a_silent_session_expires_everywhere_and_a_pinging_one_lives() {
    run(|| Box::pin(a_silent_session_expires_everywhere_and_a_pinging_one_lives(Ferrokeeper)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_a_silent_session_expires_everywhere_and_a_pinging_one_lives() {
    run(|| Box::pin(a_silent_session_expires_everywhere_and_a_pinging_one_lives(ZooKeeper)));
}

// ---- 7. watches and reads on followers ----

async fn watches_set_on_a_follower_fire_on_changes_made_elsewhere(implementation: Implementation) {
    let mut ensemble = start(spec(implementation, 3));
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let [f1, f2] = [(leader + 1) % 3, (leader + 2) % 3];
    let watcher = member_client(&ensemble, f1).await;
    watcher.create("/w", b"0", &zk::persistent()).await.unwrap();
    let (_, _, data_watch) = watcher.get_and_watch_data("/w").await.unwrap();
    let (_, child_watch) = watcher.list_and_watch_children("/w").await.unwrap();
    let (_, exists_watch) = watcher.check_and_watch_stat("/w/later").await.unwrap();

    // Changes through the other follower and through the leader.
    member_client(&ensemble, f2).await.set_data("/w", b"1", None).await.unwrap();
    member_client(&ensemble, leader).await.create("/w/later", b"", &zk::persistent()).await.unwrap();

    let within = Duration::from_secs(5);
    let event = tokio::time::timeout(within, data_watch.changed()).await.expect("data watch fires");
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeDataChanged, "/w"));
    let event = tokio::time::timeout(within, child_watch.changed()).await.expect("child watch fires");
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeChildrenChanged, "/w"));
    let event = tokio::time::timeout(within, exists_watch.changed()).await.expect("exists watch fires");
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeCreated, "/w/later"));
    watcher.sync("/w").await.unwrap();
    let (data, stat) = watcher.get_data("/w").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"1"[..], 1));
    assert_eq!(watcher.list_children("/w").await.unwrap(), vec!["later"]);
}

#[test]
fn ferrokeeper_watches_set_on_a_follower_fire_on_changes_made_elsewhere() {
    run(|| Box::pin(watches_set_on_a_follower_fire_on_changes_made_elsewhere(Ferrokeeper)));
}

#[test]
#[ignore = "oracle: Java ZooKeeper 3.8 (slow)"]
fn zookeeper_watches_set_on_a_follower_fire_on_changes_made_elsewhere() {
    run(|| Box::pin(watches_set_on_a_follower_fire_on_changes_made_elsewhere(ZooKeeper)));
}
