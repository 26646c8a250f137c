//! Dynamic reconfiguration (`reconfig`) on a ferrokeeper leader, beside ZooKeeper 3.8 doing the same
//! steps through its own shell: a follower removed and added back (the leader proposes the new
//! membership, a quorum of the old and the new one acknowledges it, COMMITANDACTIVATE activates it on
//! every member), writes acknowledged throughout; a stale `-v` answered BadVersion, a membership without a
//! synced quorum NewConfigNoQuorum, a server without `reconfigEnabled` ReconfigDisabled; and a mixed
//! ensemble whose Java followers activate a ferrokeeper leader's reconfigurations. Skips with a printed
//! reason where Java or Debian's package is missing.

use std::time::Duration;

use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, TestEnsemble};
use fk_tests::java::{self, JavaStandalone};
use fk_tests::zk;

const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);
const RECONFIG: &str = "reconfigEnabled=true\nskipACL=yes\n";

/// Three members with reconfigEnabled, ticks short enough for the tests.
fn three_members(implementation: Implementation) -> EnsembleSpec {
    EnsembleSpec::uniform(implementation, 3, 0).with_ticks(500, 10, 5).with_extra(RECONFIG)
}

/// The shell's answer to `command` at `address`, kept in `said` with the ensemble's ports taken out.
fn shell(ensemble: &TestEnsemble, address: std::net::SocketAddr, said: &mut Vec<String>, command: String) -> String {
    let out = java::shell(address, &command);
    let mut normal = out.clone();
    for i in 0..ensemble.len() {
        for a in [ensemble.quorum_address(i), ensemble.client_address(i)] {
            normal = normal.replace(&a.port().to_string(), &format!("<port{i}>"));
        }
        normal = normal.replace(&ensemble.election_address(i).port().to_string(), &format!("<eport{i}>"));
    }
    said.push(normal);
    out
}

/// `steps` on a ferrokeeper ensemble of `spec`, then on a ZooKeeper 3.8 one; `None` (skipped, the reason
/// printed) where Java or Debian's package is missing.
async fn ours_then_zookeeper<T>(
    spec: impl Fn(Implementation) -> EnsembleSpec,
    steps: impl AsyncFn(&mut TestEnsemble) -> T,
) -> Option<(T, T)> {
    fk_tests::ensemble::zookeeper_or_skip()?;
    let mut ours = TestEnsemble::start_or_skip(spec(Implementation::Ferrokeeper))?;
    let ours_did = steps(&mut ours).await;
    drop(ours);
    let mut theirs = TestEnsemble::start_or_skip(spec(Implementation::ZooKeeper))?;
    Some((ours_did, steps(&mut theirs).await))
}

/// What one ensemble says to the same reconfig steps through its leader, as the shell printed it with
/// this ensemble's addresses and versions taken out.
async fn reconfig_steps(ensemble: &mut TestEnsemble) -> Vec<String> {
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let (f1, f2) = match leader {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let address = ensemble.client_address(leader);
    let mut said = Vec::new();
    // f2 stopped: {leader, f1} still make a quorum of the three, but a membership of {leader, f2} would
    // have no synced quorum.
    ensemble.kill(f2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    shell(ensemble, address, &mut said, format!("reconfig -remove {}", f1 + 1));
    ensemble.restart(f2);
    ensemble.wait_for_mode(f2, Some(Mode::Follower), ELECTION_TIMEOUT);
    let removed = shell(ensemble, address, &mut said, format!("reconfig -remove {}", f1 + 1));
    assert!(removed.contains("Committed new configuration"), "{removed}");
    let c = zk::synced_client(&address.to_string(), Duration::from_secs(10), "/").await;
    for n in 0..10 {
        c.create(&format!("/after-remove-{n}"), b"", &zk::persistent()).await.expect("a write under {leader, f2}");
    }
    // Every remaining member activated it.
    ensemble.config_node_once_as(f2, leader).await;
    // A stale version.
    shell(ensemble, address, &mut said, format!("reconfig -add {} -v 1", ensemble.server_line(f1)));
    let added = shell(ensemble, address, &mut said, format!("reconfig -add {}", ensemble.server_line(f1)));
    assert!(added.contains("Committed new configuration"), "{added}");
    for i in [f1, f2] {
        ensemble.config_node_once_as(i, leader).await;
    }
    for n in 0..10 {
        c.create(&format!("/after-add-{n}"), b"", &zk::persistent()).await.expect("a write after the add");
    }
    // Versions differ between the two ensembles (they are zxids): only their presence is compared.
    said.iter().map(|s| s.lines().filter(|l| !l.starts_with("version=")).collect::<Vec<_>>().join("\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_on_a_ferrokeeper_leader_as_on_zookeeper() {
    let Some((ours_said, theirs_said)) = ours_then_zookeeper(three_members, reconfig_steps).await else { return };
    eprintln!("ferrokeeper:\n{}\nZooKeeper 3.8:\n{}", ours_said.join("\n--\n"), theirs_said.join("\n--\n"));
    // zkCli's words for NewConfigNoQuorum and BadVersion.
    assert!(ours_said[0].contains("No quorum of new config is connected"), "{}", ours_said[0]);
    assert!(ours_said[2].contains("version No is not valid"), "{}", ours_said[2]);
    assert_eq!(ours_said, theirs_said, "ferrokeeper (left) and ZooKeeper 3.8 (right)");
}

/// Without `reconfigEnabled` every server refuses reconfig with ReconfigDisabled; a standalone server
/// with it answers Unimplemented.
#[test]
fn reconfig_refused_where_zookeeper_refuses_it() {
    let ours = fk_tests::TestServer::start();
    let ours_enabled = fk_tests::TestServer::with_config("reconfigEnabled=true");
    let Some(theirs) = JavaStandalone::start(None, "") else { return };
    let Some(theirs_enabled) = JavaStandalone::start(None, "reconfigEnabled=true") else { return };
    let ask = "reconfig -remove 3";
    let address = |a: String| a.parse().unwrap();
    let disabled = java::shell(address(ours.address()), ask);
    assert!(disabled.contains("ReconfigDisabled") || disabled.contains("Reconfig is disabled"), "{disabled}");
    assert_eq!(disabled, java::shell(address(theirs.address()), ask));
    let standalone = java::shell(address(ours_enabled.address()), ask);
    assert_eq!(standalone, java::shell(address(theirs_enabled.address()), ask));
}

/// Java followers activate a ferrokeeper leader's reconfigurations: the membership they end with is
/// the leader's (text, version and mzxid alike), and the ensemble goes on acknowledging writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_followers_activate_a_ferrokeeper_leaders_reconfigurations() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    // Member 2 (sid 3) wins the first election against two Java members with lower ids.
    let members = vec![Implementation::ZooKeeper, Implementation::ZooKeeper, Implementation::Ferrokeeper];
    let spec = EnsembleSpec::new(members).with_ticks(500, 10, 5).with_extra(RECONFIG);
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    if leader != 2 {
        eprintln!("SKIPPED: a Java member won the first election (member {leader}); this test needs ours to lead");
        return;
    }
    let address = ensemble.client_address(leader);
    let removed = java::shell(address, "reconfig -remove 2");
    assert!(removed.contains("Committed new configuration"), "{removed}\n{}", ensemble.log_text(leader));
    let (text, version, _) = ensemble.config_node_once_as(0, leader).await;
    assert!(!text.contains("server.2=") && version == -1, "{text}");
    let c = zk::synced_client(&address.to_string(), Duration::from_secs(10), "/").await;
    for n in 0..10 {
        c.create(&format!("/after-remove-{n}"), b"", &zk::persistent()).await.expect("a write under {1, 3}");
    }
    let added = java::shell(address, &format!("reconfig -add {}", ensemble.server_line(1)));
    assert!(added.contains("Committed new configuration"), "{added}\n{}", ensemble.log_text(leader));
    for i in [0, 1] {
        ensemble.config_node_once_as(i, leader).await;
    }
    for n in 0..10 {
        c.create(&format!("/after-add-{n}"), b"", &zk::persistent()).await.expect("a write after the add");
    }
}

/// The longest write gap and who leads after `reconfig -remove <leader>` under a write load; every
/// acknowledged write is on the members that remain.
async fn remove_the_leader(ensemble: &mut TestEnsemble) -> (Duration, usize) {
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let load = zk::WriteLoad::start(ensemble.connect_string_of(&others));
    while load.acknowledged() < 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let removed = java::shell(ensemble.client_address(leader), &format!("reconfig -remove {}", leader + 1));
    assert!(removed.contains("Committed new configuration"), "{removed}\n{}", ensemble.log_text(leader));
    let successor = tokio::task::block_in_place(|| ensemble.wait_for_leader_among(&others, ELECTION_TIMEOUT));
    let before = load.acknowledged();
    while load.acknowledged() < before + 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gap = load.longest_gap();
    let acked = load.finish().await;
    tokio::task::block_in_place(|| ensemble.assert_every_write_on(&acked, &others));
    let (text, _, _) = ensemble.config_node_once_as(others[0], successor).await;
    assert!(!text.contains(&format!("server.{}=", leader + 1)), "{text}");
    (gap, successor)
}

/// `reconfig -remove` of the leader itself, under a write load: it commits the change, designates a
/// successor among the remaining voters and hands over; writes resume under the new leader with nothing
/// acknowledged lost, on ferrokeeper as on ZooKeeper 3.8 (the longest write gap is printed for both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_leader_hands_over_as_on_zookeeper() {
    let Some(((our_gap, _), (their_gap, _))) = ours_then_zookeeper(three_members, remove_the_leader).await else {
        return;
    };
    eprintln!("longest write gap when the leader is removed: ferrokeeper {our_gap:?}, ZooKeeper 3.8 {their_gap:?}");
}

/// Growing 3 → 5 → 3 twice under an acknowledged write load, the way ZooKeeper's Kubernetes operators
/// do it: a new member starts with a configuration listing the current members and itself, follows the
/// leader as a non-voting follower, and is then added (`reconfig -add`); on scale-down a member is
/// removed (`reconfig -remove`) before it is stopped. Every step leaves every running member with the
/// same `/zookeeper/config`, and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_to_five_and_back_twice_under_load() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    // Members 3..7 join later: 3 and 4 in the first round, 5 and 6 in the second.
    let spec = EnsembleSpec::uniform(Implementation::Ferrokeeper, 7, 0)
        .with_joiners(4)
        .with_ticks(500, 10, 5)
        .with_extra(RECONFIG);
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    ensemble.wait_for_leader_among(&[0, 1, 2], ELECTION_TIMEOUT);
    let load = zk::WriteLoad::start(ensemble.connect_string_of(&[0, 1, 2]));
    let shell = |ensemble: &TestEnsemble, command: String| {
        let said = java::shell(ensemble.client_address(0), &command);
        assert!(said.contains("Committed new configuration"), "{command}: {said}");
    };
    for joiners in [[3, 4], [5, 6]] {
        for j in joiners {
            ensemble.start_joiner(j);
            ensemble.wait_for_mode(j, Some(Mode::Follower), ELECTION_TIMEOUT);
            shell(&ensemble, format!("reconfig -add {}", ensemble.server_line(j)));
        }
        let running: Vec<usize> = [0, 1, 2].into_iter().chain(joiners).collect();
        for &i in &running[1..] {
            ensemble.config_node_once_as(i, 0).await;
        }
        let (five, _, _) = ensemble.config_node(0).await;
        assert_eq!(five.matches("server.").count(), 5, "{five}");
        for j in joiners.into_iter().rev() {
            shell(&ensemble, format!("reconfig -remove {}", j + 1));
            ensemble.kill(j);
        }
        for i in [1, 2] {
            ensemble.config_node_once_as(i, 0).await;
        }
        let (three, _, _) = ensemble.config_node(0).await;
        assert_eq!(three.matches("server.").count(), 3, "{three}");
    }
    let gap = load.longest_gap();
    let acked = load.finish().await;
    assert!(acked.len() > 100, "writes were acknowledged throughout ({})", acked.len());
    tokio::task::block_in_place(|| ensemble.assert_every_write_on(&acked, &[0, 1, 2]));
    eprintln!("3 → 5 → 3 twice: {} writes acknowledged, longest gap {gap:?}", acked.len());
}

/// The steps of issue 18's acceptance, on one ensemble of 3 voters and 2 joiners, under a write load:
/// 3 → 5 (`reconfig -add` of two members started with the current members and themselves), the leader
/// removed, a follower made an observer and a participant again, `reconfig -members` back to 3, the
/// others stopped. Returns the longest write gap, the load's count, and the three that remain.
async fn acceptance_steps(ensemble: &mut TestEnsemble) -> (Duration, usize, Vec<usize>) {
    let first_leader = ensemble.wait_for_leader_among(&[0, 1, 2], ELECTION_TIMEOUT);
    let load = zk::WriteLoad::start(ensemble.connect_string_of(&[0, 1, 2, 3, 4]));
    // When each step was asked, to tell which one the longest gap fell in.
    let steps = std::sync::Mutex::new(Vec::new());
    let run = |ensemble: &TestEnsemble, through: usize, command: String| {
        steps.lock().unwrap().push((std::time::Instant::now(), command.clone()));
        let said = java::shell(ensemble.client_address(through), &command);
        assert!(said.contains("Committed new configuration"), "{command}: {said}");
    };
    for j in [3, 4] {
        ensemble.start_joiner(j);
        ensemble.wait_for_mode(j, Some(Mode::Follower), ELECTION_TIMEOUT);
    }
    run(ensemble, first_leader, format!("reconfig -add {},{}", ensemble.server_line(3), ensemble.server_line(4)));
    // The leader goes; the four others elect (or are handed) a new one.
    let others: Vec<usize> = (0..5).filter(|&i| i != first_leader).collect();
    // Through the leader: a ZooKeeper follower that forwarded it leaves its role when the change commits
    // and closes its clients, so the shell would see ConnectionLoss there (ferrokeeper's answers first).
    run(ensemble, first_leader, format!("reconfig -remove {}", first_leader + 1));
    let leader = tokio::task::block_in_place(|| ensemble.wait_for_leader_among(&others, ELECTION_TIMEOUT));
    // A follower becomes an observer, then a participant again.
    let follower = *others.iter().find(|&&i| i != leader).expect("four members");
    let observer_line = ensemble.server_line(follower).replace(":participant;", ":observer;");
    run(ensemble, leader, format!("reconfig -add {observer_line}"));
    ensemble.wait_for_mode(follower, Some(Mode::Observer), ELECTION_TIMEOUT);
    run(ensemble, leader, format!("reconfig -add {}", ensemble.server_line(follower)));
    ensemble.wait_for_mode(follower, Some(Mode::Follower), ELECTION_TIMEOUT);
    // Back to three: the leader, the follower that changed roles, and one more.
    let third = *others.iter().find(|&&i| i != leader && i != follower).expect("four members");
    let remaining = vec![leader, follower, third];
    let members: Vec<String> = remaining.iter().map(|&i| ensemble.server_line(i)).collect();
    run(ensemble, leader, format!("reconfig -members {}", members.join(",")));
    steps.lock().unwrap().push((std::time::Instant::now(), "the removed members killed".to_owned()));
    for i in (0..5).filter(|i| !remaining.contains(i)) {
        ensemble.kill(i);
    }
    for &i in &remaining[1..] {
        ensemble.config_node_once_as(i, leader).await;
    }
    let (three, _, _) = ensemble.config_node(leader).await;
    assert_eq!(three.matches("server.").count(), 3, "{three}");
    let before = load.acknowledged();
    while load.acknowledged() < before + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gap = load.longest_gap();
    if let Some(ended) = load.longest_gap_ended() {
        let steps = steps.lock().unwrap();
        let during = steps.iter().rev().find(|(at, _)| *at <= ended - gap).or(steps.first());
        let during = during.map(|(at, step)| format!("{} ms after `{step}`", (ended - gap - *at).as_millis()));
        eprintln!("the longest gap ({gap:?}) began {}", during.unwrap_or_default());
    }
    let acked = load.finish().await;
    tokio::task::block_in_place(|| ensemble.assert_every_write_on(&acked, &remaining));
    (gap, acked.len(), remaining)
}

/// Issue 18's acceptance steps on ferrokeeper and on ZooKeeper 3.8, each under a write load: every step
/// succeeds on both, nothing acknowledged is lost on either; the longest write gaps are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_remove_the_leader_re_role_and_shrink_as_on_zookeeper() {
    let spec = |implementation| {
        EnsembleSpec::uniform(implementation, 5, 0).with_joiners(2).with_ticks(500, 10, 5).with_extra(RECONFIG)
    };
    let Some(((our_gap, our_writes, _), (their_gap, their_writes, _))) =
        ours_then_zookeeper(spec, acceptance_steps).await
    else {
        return;
    };
    eprintln!(
        "3 → 5, leader removed, follower → observer → participant, back to 3: ferrokeeper {our_writes} writes, \
         longest gap {our_gap:?}; ZooKeeper 3.8 {their_writes} writes, longest gap {their_gap:?}"
    );
}

const MEMBERSHIP_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/scripts/ferrokeeper-membership");

/// A member started by `ferrokeeper-membership join`, stopped when dropped.
struct Joined {
    child: std::process::Child,
    client: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Joined {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new("bash");
    command
        .arg(MEMBERSHIP_SCRIPT)
        .args(args)
        .env("FERROKEEPER", fk_tests::server_binary())
        .env("FKCLI", fk_tests::fkcli_binary());
    command
}

/// `ferrokeeper-membership join` for member `myid` on fresh ports, through `ensemble`'s member 0.
fn join(ensemble: &TestEnsemble, myid: u64) -> Joined {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("zoo.cfg");
    let port = fk_tests::java::free_port;
    let (client, quorum, election) = (port(), port(), port());
    std::fs::write(
        &config,
        format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\n4lw.commands.whitelist=*\n\
             admin.enableServer=false\n{RECONFIG}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("member.log")).unwrap();
    let child = script(&[
        "join",
        "--ensemble",
        &ensemble.client_address(0).to_string(),
        "--config",
        &config.display().to_string(),
        "--myid",
        &myid.to_string(),
        "--server",
        &format!("127.0.0.1:{quorum}:{election}"),
        "--client-port",
        &client.to_string(),
    ])
    .stdout(log.try_clone().unwrap())
    .stderr(log)
    .spawn()
    .expect("run ferrokeeper-membership join");
    Joined { child, client: ([127, 0, 0, 1], client).into(), _dir: dir }
}

/// Member 0's `/zookeeper/config` once it lists exactly `ids` (within 60 s).
async fn membership_becomes(ensemble: &TestEnsemble, ids: &[u64]) -> String {
    let deadline = std::time::Instant::now() + ELECTION_TIMEOUT;
    loop {
        let (text, _, _) = ensemble.config_node(0).await;
        let listed: Vec<u64> =
            text.lines().filter_map(|l| l.strip_prefix("server.")?.split('=').next()?.parse().ok()).collect();
        if listed == ids {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "membership {listed:?}, waiting for {ids:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The operator flow as a script (packaging/scripts/ferrokeeper-membership): 3 → 5 → 3 twice under a
/// write load, new members joining with a dynamic file written from the ensemble's own configuration and
/// asking to be added once they follow, members asking to be removed before they stop. Nothing
/// acknowledged is lost, and each new member serves clients in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_membership_script_grows_and_shrinks_an_ensemble() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let spec = EnsembleSpec::uniform(Implementation::Ferrokeeper, 3, 0).with_ticks(500, 10, 5).with_extra(RECONFIG);
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let load = zk::WriteLoad::start(ensemble.connect_string());
    for round in 0..2u64 {
        let (a, b) = (4 + 2 * round, 5 + 2 * round);
        let first = join(&ensemble, a);
        membership_becomes(&ensemble, &[1, 2, 3, a]).await;
        let second = join(&ensemble, b);
        membership_becomes(&ensemble, &[1, 2, 3, a, b]).await;
        for member in [&first, &second] {
            let c = zk::synced_client(&member.client.to_string(), Duration::from_secs(10), "/").await;
            c.create(&format!("/through-{}", member.client.port()), b"", &zk::persistent()).await.expect("serves");
        }
        for (member, id) in [(second, b), (first, a)] {
            let left =
                script(&["leave", "--ensemble", &ensemble.client_address(0).to_string(), "--myid", &id.to_string()])
                    .output()
                    .expect("run ferrokeeper-membership leave");
            assert!(left.status.success(), "{}", String::from_utf8_lossy(&left.stdout));
            drop(member);
        }
        membership_becomes(&ensemble, &[1, 2, 3]).await;
    }
    let acked = load.finish().await;
    assert!(acked.len() > 50, "writes were acknowledged throughout ({})", acked.len());
    tokio::task::block_in_place(|| ensemble.assert_every_write_on_every_member(&acked));
}

/// Three members of which only the first starts; the others join later.
fn lone_member(implementation: Implementation) -> EnsembleSpec {
    EnsembleSpec::uniform(implementation, 3, 0)
        .with_joiners(2)
        .with_ticks(500, 10, 5)
        .with_extra(&format!("{RECONFIG}standaloneEnabled=false\n"))
}

async fn grow_a_lone_member(ensemble: &mut TestEnsemble) {
    ensemble.wait_for_mode(0, Some(Mode::Leader), ELECTION_TIMEOUT);
    let c = zk::synced_client(&ensemble.client_address(0).to_string(), Duration::from_secs(10), "/").await;
    c.create("/alone", b"", &zk::persistent()).await.expect("a lone leader serves writes");
    for j in [1, 2] {
        ensemble.start_joiner(j);
        ensemble.wait_for_mode(j, Some(Mode::Follower), ELECTION_TIMEOUT);
        let said = java::shell(ensemble.client_address(0), &format!("reconfig -add {}", ensemble.server_line(j)));
        assert!(said.contains("Committed new configuration"), "{said}");
    }
    membership_becomes(ensemble, &[1, 2, 3]).await;
    c.create("/together", b"", &zk::persistent()).await.expect("a write of the three");
    let written = ["/alone".to_owned(), "/together".to_owned()];
    tokio::task::block_in_place(|| ensemble.assert_every_write_on_every_member(&written));
}

/// `standaloneEnabled=false`: a lone member runs as an ensemble of one (it leads itself) and grows by
/// reconfig, as ZooKeeper's documentation describes. A new member configured with the lone one and
/// itself takes the lone member's newer configuration from its election notifications (ZooKeeper's
/// election does the same), follows it as a non-voting follower, and is added; then a third. Writes made
/// alone are on every member afterwards, on ferrokeeper as on ZooKeeper 3.8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_member_grows_into_an_ensemble_as_on_zookeeper() {
    ours_then_zookeeper(lone_member, grow_a_lone_member).await;
}

/// A follower's client port moved by `reconfig -add` of its own server line with another client port:
/// whether a client then reaches it on the new port, whether the old one still answers, and whether a
/// session opened before the move lives on.
async fn move_a_client_port(ensemble: &mut TestEnsemble) -> (bool, bool, bool) {
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let follower = (leader + 1) % 3;
    let old = ensemble.client_address(follower);
    let before = zk::synced_client(&old.to_string(), Duration::from_secs(10), "/").await;
    before.create("/before-move", b"", &zk::persistent()).await.expect("a write before the move");
    let new_port = java::free_port();
    let line = ensemble.server_line(follower);
    let (head, _) = line.rsplit_once(':').expect("the client address ends the line");
    let moved = java::shell(ensemble.client_address(leader), &format!("reconfig -add {head}:{new_port}"));
    assert!(moved.contains("Committed new configuration"), "{moved}\n{}", ensemble.log_text(follower));
    let new = std::net::SocketAddr::new(old.ip(), new_port);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut serves_new = false;
    while !serves_new && std::time::Instant::now() < deadline {
        serves_new = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(5))
            .connect(&new.to_string())
            .await
            .is_ok_and(|_| true);
        if !serves_new {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let old_answers = std::net::TcpStream::connect_timeout(&old, Duration::from_secs(2)).is_ok();
    let session_lives = before.get_data("/before-move").await.is_ok();
    (serves_new, old_answers, session_lives)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconfig_moves_a_members_client_port_as_on_zookeeper() {
    let Some((ours_did, theirs_did)) = ours_then_zookeeper(three_members, move_a_client_port).await else { return };
    assert_eq!(ours_did, (true, false, true), "ferrokeeper: (serves the new port, old port answers, session lives)");
    assert_eq!(ours_did, theirs_did, "ferrokeeper (left) and ZooKeeper 3.8 (right)");
}
