//! Mixed ensembles: ferrokeeper and Apache ZooKeeper 3.8 members in one ensemble, on ZooKeeper's own
//! election and quorum protocols. A ferrokeeper leader with Java followers, and a Java leader with a
//! ferrokeeper follower: writes through every member are on every member, sessions and ephemerals are
//! shared, and the Java members find no digest mismatch. Skips with a printed reason where Java or
//! Debian's zookeeper package is missing.

use std::time::Duration;

use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, TestEnsemble};
use fk_tests::zk;

const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);

fn start_or_skip(members: Vec<Implementation>) -> Option<TestEnsemble> {
    match TestEnsemble::start(EnsembleSpec::new(members).with_ticks(500, 10, 5)) {
        Ok(ensemble) => Some(ensemble),
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

async fn client(ensemble: &TestEnsemble, i: usize) -> zk::Client {
    let address = ensemble.client_address(i).to_string();
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&address)
        .await
        .unwrap_or_else(|e| panic!("connect to member {i}: {e}"))
}

/// A client of member i whose `sync` of `/` completed: everything committed before is applied there.
async fn synced_client(ensemble: &TestEnsemble, i: usize) -> zk::Client {
    zk::synced_client(&ensemble.client_address(i).to_string(), Duration::from_secs(10), "/").await
}

/// `/zookeeper/config` holds the membership as ZooKeeper writes it, on every member alike (data, data
/// version -1 and mzxid the configuration's version, as `initConfigInZKDatabase` sets them).
async fn every_member_holds_the_same_config_node(ensemble: &TestEnsemble) {
    let mut nodes = Vec::new();
    for i in 0..ensemble.len() {
        let (data, stat) =
            client(ensemble, i).await.get_data("/zookeeper/config").await.expect("get /zookeeper/config");
        let text = String::from_utf8(data).expect("UTF-8");
        assert!(text.starts_with("server.") && text.ends_with("version=0"), "member {i}: {text:?}");
        nodes.push((text, stat.version, stat.mzxid));
    }
    assert_eq!(nodes[0].1, -1, "data version");
    for (i, node) in nodes.iter().enumerate().skip(1) {
        assert_eq!(
            node,
            &nodes[0],
            "member {i} ({:?}) and member 0 ({:?})",
            ensemble.implementation(i),
            ensemble.implementation(0)
        );
    }
}

/// Under a write load spread over the members (every acknowledged write recorded), writes
/// `/through-<i>` through every member; then every member has every acknowledged write after a `sync`;
/// an ephemeral whose session closes is gone everywhere; no Java member saw a digest mismatch.
async fn every_member_sees_every_write(ensemble: &TestEnsemble) {
    let n = ensemble.len();
    every_member_holds_the_same_config_node(ensemble).await;
    let load = zk::WriteLoad::start(ensemble.connect_string());
    for i in 0..n {
        let c = client(ensemble, i).await;
        c.create(&format!("/through-{i}"), format!("v{i}").as_bytes(), &zk::persistent())
            .await
            .unwrap_or_else(|e| panic!("create through member {i} ({:?}): {e}", ensemble.implementation(i)));
    }
    let ephemeral = client(ensemble, 0).await;
    let mode = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    ephemeral.create("/ephemeral", b"", &mode).await.expect("ephemeral");
    drop(ephemeral);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = load.finish().await;
    assert!(acked.len() > 10, "the load got writes acknowledged ({})", acked.len());
    for reader in 0..n {
        let c = synced_client(ensemble, reader).await;
        for path in &acked {
            assert!(c.check_stat(path).await.unwrap().is_some(), "member {reader} lost acknowledged {path}");
        }
        for writer in 0..n {
            let (data, _) = c
                .get_data(&format!("/through-{writer}"))
                .await
                .unwrap_or_else(|e| panic!("member {reader} lacks the write through member {writer}: {e}"));
            assert_eq!(data, format!("v{writer}").as_bytes());
        }
        // The closeSession may still be on its way; the ephemeral goes once it is applied.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while c.check_stat("/ephemeral").await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "member {reader} keeps a closed session's ephemeral");
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.sync("/").await.unwrap();
        }
    }
    for i in (0..n).filter(|&i| ensemble.implementation(i) == Implementation::ZooKeeper) {
        let mntr = ensemble.four_letter(i, "mntr");
        assert!(mntr.contains("zk_digest_mismatches_count\t0"), "member {i}: {mntr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ferrokeeper_leader_with_java_followers() {
    use Implementation::*;
    // The highest id wins an election between equal histories, and ferrokeeper (myid 3) starts first.
    let Some(mut ensemble) = start_or_skip(vec![ZooKeeper, ZooKeeper, Ferrokeeper]) else { return };
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), 2);
    assert_eq!((ensemble.mode(0), ensemble.mode(1)), (Some(Mode::Follower), Some(Mode::Follower)));
    every_member_sees_every_write(&ensemble).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_leader_with_a_ferrokeeper_follower() {
    use Implementation::*;
    // Myid 1 never wins against a higher id; which Java member leads depends on how fast each starts.
    let Some(mut ensemble) = start_or_skip(vec![Ferrokeeper, ZooKeeper, ZooKeeper]) else { return };
    assert_ne!(ensemble.wait_for_leader(ELECTION_TIMEOUT), 0);
    assert_eq!(ensemble.mode(0), Some(Mode::Follower));
    every_member_sees_every_write(&ensemble).await;
}

/// The leader dies, whichever implementation it is: the best survivor leads the other (when the Java
/// leader with the highest id dies, the ferrokeeper member takes over and leads a Java follower), no
/// committed write is lost, and the dead member returns as a follower and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_dies_and_the_survivors_carry_on_across_implementations() {
    use Implementation::*;
    let Some(mut ensemble) = start_or_skip(vec![ZooKeeper, Ferrokeeper, ZooKeeper]) else { return };
    let first = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let before = client(&ensemble, 1).await;
    before.create("/before", b"1", &zk::persistent()).await.expect("create through ferrokeeper");
    drop(before);
    ensemble.kill(first);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != first).collect();
    let second = ensemble.wait_for_leader_among(&survivors, ELECTION_TIMEOUT);
    // Equal histories: the higher id wins.
    assert_eq!(second, *survivors.last().unwrap(), "leader {first} died");
    let java_survivor = *survivors.iter().find(|&&i| ensemble.implementation(i) == ZooKeeper).unwrap();
    let c = client(&ensemble, java_survivor).await;
    c.create("/after", b"2", &zk::persistent()).await.expect("create through a Java survivor");
    drop(c);
    ensemble.restart(first);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), second);
    for i in 0..3 {
        let c = synced_client(&ensemble, i).await;
        assert_eq!(c.get_data("/before").await.unwrap().0, b"1", "member {i}");
        assert_eq!(c.get_data("/after").await.unwrap().0, b"2", "member {i}");
    }
    for i in [0, 2] {
        assert!(ensemble.four_letter(i, "mntr").contains("zk_digest_mismatches_count\t0"), "member {i}");
    }
}

/// Every member, one at a time, is stopped and started again as `to` on its own data directory while
/// writes go on and a session with an ephemeral stays open; the same ensemble ends all `to`, with every
/// acknowledged write and the session's ephemeral on every member.
async fn rolling_migration(from: Implementation, to: Implementation) {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let Some(mut ensemble) = start_or_skip(vec![from; 3]) else { return };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let lasting = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(&ensemble.connect_string())
        .await
        .expect("the lasting session");
    let mode = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    lasting.create("/lasting", b"", &mode).await.expect("its ephemeral");
    let session = lasting.session_id();
    let load = zk::WriteLoad::start(ensemble.connect_string());
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = load.acknowledged();
        ensemble.replace(i, to);
        ensemble.wait_for_leader(ELECTION_TIMEOUT);
        // Writes go on through the mixed ensemble.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while load.acknowledged() < before + 10 {
            assert!(std::time::Instant::now() < deadline, "no writes after replacing member {i}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for j in (0..3).filter(|&j| ensemble.implementation(j) == Implementation::ZooKeeper) {
            let mntr = ensemble.four_letter(j, "mntr");
            assert!(mntr.contains("zk_digest_mismatches_count\t0"), "member {j} after replacing {i}: {mntr}");
        }
    }
    let acked = load.finish().await;
    assert!(acked.len() > 30, "writes were acknowledged throughout ({})", acked.len());
    for i in 0..3 {
        assert_eq!(ensemble.implementation(i), to);
        let c = synced_client(&ensemble, i).await;
        for path in &acked {
            assert!(c.check_stat(path).await.unwrap().is_some(), "member {i} lost acknowledged {path}");
        }
        let (_, stat) = c.get_data("/lasting").await.expect("the lasting session's ephemeral survives");
        assert_eq!(stat.ephemeral_owner, session.0, "member {i}");
    }
    lasting.check_stat("/").await.expect("the lasting session still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_ensemble_migrates_to_ferrokeeper_one_member_at_a_time() {
    rolling_migration(Implementation::ZooKeeper, Implementation::Ferrokeeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ferrokeeper_ensemble_rolls_back_to_java_one_member_at_a_time() {
    rolling_migration(Implementation::Ferrokeeper, Implementation::ZooKeeper).await;
}

fn start_with_observer_or_skip(members: Vec<Implementation>, observer: usize) -> Option<TestEnsemble> {
    let spec = EnsembleSpec::new(members).with_observer(observer).with_ticks(500, 10, 5);
    match TestEnsemble::start(spec) {
        Ok(ensemble) => Some(ensemble),
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

/// A ferrokeeper observer of a Java ensemble: synchronised by the Java leader, then informed of every
/// commit (INFORM), forwarding its own clients' writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ferrokeeper_observer_of_a_java_ensemble() {
    use Implementation::*;
    let Some(mut ensemble) = start_with_observer_or_skip(vec![ZooKeeper, ZooKeeper, ZooKeeper, Ferrokeeper], 3) else {
        return;
    };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    ensemble.wait_for_mode(3, Some(Mode::Observer), ELECTION_TIMEOUT);
    every_member_sees_every_write(&ensemble).await;
}

/// A Java observer of a ferrokeeper ensemble: our leader's INFORMs are applied by ZooKeeper, which finds
/// no digest mismatch in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_observer_of_a_ferrokeeper_ensemble() {
    use Implementation::*;
    let Some(mut ensemble) = start_with_observer_or_skip(vec![Ferrokeeper, Ferrokeeper, Ferrokeeper, ZooKeeper], 3)
    else {
        return;
    };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    ensemble.wait_for_mode(3, Some(Mode::Observer), ELECTION_TIMEOUT);
    every_member_sees_every_write(&ensemble).await;
}

/// Two ferrokeeper followers under a Java leader. Ferrokeeper members start faster than JVMs and may elect
/// one of themselves first; then that leader is restarted, and the Java member (the highest id, with the
/// same history) wins the next election.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_leader_with_two_ferrokeeper_followers() {
    use Implementation::*;
    let Some(mut ensemble) = start_or_skip(vec![Ferrokeeper, Ferrokeeper, ZooKeeper]) else { return };
    let first = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    if first != 2 {
        ensemble.restart(first);
    }
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), 2);
    assert_eq!((ensemble.mode(0), ensemble.mode(1)), (Some(Mode::Follower), Some(Mode::Follower)));
    every_member_sees_every_write(&ensemble).await;
}

/// The membership in a `dynamicConfigFile` (as the Kubernetes operators and `reconfig` write it), not in
/// zoo.cfg: every member, Java or not, reads the same file layout, elects, replicates, and shows the same
/// `/zookeeper/config` with the version the file's name carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_ensemble_on_a_dynamic_configuration_file() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let members = vec![Implementation::ZooKeeper, Implementation::Ferrokeeper, Implementation::Ferrokeeper];
    let spec = EnsembleSpec::new(members).with_ticks(500, 10, 5).with_dynamic_file("zoo.cfg.dynamic.100000000");
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let mut nodes = Vec::new();
    for i in 0..3 {
        let c = synced_client(&ensemble, i).await;
        c.create(&format!("/dynamic-{i}"), b"", &zk::persistent()).await.expect("create");
        let (data, stat) = c.get_data("/zookeeper/config").await.expect("get /zookeeper/config");
        let text = String::from_utf8(data).expect("UTF-8");
        assert!(text.starts_with("server.") && text.ends_with("version=100000000"), "member {i}: {text:?}");
        nodes.push((text, stat.version, stat.mzxid));
    }
    for (i, node) in nodes.iter().enumerate().skip(1) {
        assert_eq!(node, &nodes[0], "member {i} ({:?}) and member 0 (ZooKeeper)", ensemble.implementation(i));
    }
    for reader in 0..3 {
        let c = synced_client(&ensemble, reader).await;
        for writer in 0..3 {
            assert!(c.check_stat(&format!("/dynamic-{writer}")).await.unwrap().is_some(), "member {reader}");
        }
    }
}

/// With `reconfigEnabled=true`, an initial membership (version 0, servers listed in zoo.cfg) takes the
/// first epoch's zxid as its version once a quorum is established (ZooKeeper's ZOOKEEPER-1783), and every
/// member writes it down as ZooKeeper does: zoo.cfg backed up to zoo.cfg.bak, zoo.cfg.dynamic.100000000
/// with the membership, zoo.cfg rewritten to point at it. Java and ferrokeeper members end with the same
/// `/zookeeper/config` and the same files (paths aside); a restarted ferrokeeper member starts from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_enabled_versions_the_initial_membership_as_zookeeper_does() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let members = vec![Implementation::ZooKeeper, Implementation::Ferrokeeper, Implementation::Ferrokeeper];
    let spec = EnsembleSpec::new(members).with_ticks(500, 10, 5).with_extra("reconfigEnabled=true");
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let java = ensemble.config_node(0).await;
    assert!(java.0.ends_with("version=100000000") && java.2 == 0x1_0000_0000, "ZooKeeper: {java:?}");
    for i in 1..3 {
        // Learners adopt it with UPTODATE; the leader once a quorum acknowledged NEWLEADER.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ours = ensemble.config_node(i).await;
            if ours == java {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "member {i}: {ours:?}, ZooKeeper {java:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let files = |i: usize| {
        let cfg = ensemble.config_path(i);
        let dir = cfg.parent().unwrap().to_owned();
        let read =
            |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("member {i}: {name}: {e}"));
        let canonical = std::fs::canonicalize(&dir).unwrap();
        let normal = |text: String| {
            text.replace(&canonical.display().to_string(), "<dir>").replace(&dir.display().to_string(), "<dir>")
        };
        (normal(read("zoo.cfg")), normal(read("zoo.cfg.bak")), read("zoo.cfg.dynamic.100000000"))
    };
    let theirs = files(0);
    assert!(theirs.0.contains("dynamicConfigFile=<dir>/zoo.cfg.dynamic.100000000"), "{}", theirs.0);
    for i in 1..3 {
        assert_eq!(files(i), theirs, "member {i}'s files (left), ZooKeeper's (right)");
    }
    ensemble.restart(2);
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    assert_eq!(ensemble.config_node(2).await, java, "a restarted member reads the dynamic file");
}

/// A reconfiguration run by a Java leader reaches a ferrokeeper follower as ZooKeeper's followers get
/// it: the reconfig proposal, then COMMITANDACTIVATE. Removing a Java follower and adding it back, the
/// ferrokeeper member ends each step with the leader's `/zookeeper/config` (text, version, mzxid) and
/// its `zoo.cfg.dynamic.<version>` file, and keeps serving writes that the new quorum acknowledges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ferrokeeper_follower_activates_a_java_leaders_reconfigurations() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    // Member 0 (sid 1) cannot win the first election against two Java members with higher ids.
    let members = vec![Implementation::Ferrokeeper, Implementation::ZooKeeper, Implementation::ZooKeeper];
    let spec = EnsembleSpec::new(members).with_ticks(500, 10, 5).with_extra("reconfigEnabled=true\nskipACL=yes");
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    assert_ne!(leader, 0, "a Java member leads");
    let follower = if leader == 1 { 2 } else { 1 };
    let leader_address = ensemble.client_address(leader);
    let removed = fk_tests::java::shell(leader_address, &format!("reconfig -remove {}", follower + 1));
    assert!(removed.contains("Committed new configuration"), "{removed}");
    let (text, _, version) = ensemble.config_node_once_as(0, leader).await;
    assert!(!text.contains(&format!("server.{}=", follower + 1)), "{text}");
    let dir = ensemble.config_path(0).parent().unwrap().to_owned();
    let dynamic = std::fs::read_to_string(dir.join(format!("zoo.cfg.dynamic.{version:x}"))).expect("the dynamic file");
    assert!(!dynamic.contains(&format!("server.{}=", follower + 1)), "{dynamic}");
    let c = synced_client(&ensemble, 0).await;
    for n in 0..10 {
        c.create(&format!("/after-remove-{n}"), b"", &zk::persistent()).await.expect("a write under the new quorum");
    }
    assert!(matches!(ensemble.mode(0), Some(Mode::Follower)), "still following");
    // Back again, as the line ZooKeeper wrote for it.
    let line = format!(
        "server.{}={}:{}:participant;{}",
        follower + 1,
        ensemble.quorum_address(follower),
        ensemble.election_address(follower).port(),
        ensemble.client_address(follower)
    );
    let added = fk_tests::java::shell(leader_address, &format!("reconfig -add {line}"));
    assert!(added.contains("Committed new configuration"), "{added}");
    let (text, _, _) = ensemble.config_node_once_as(0, leader).await;
    assert!(text.contains(&format!("server.{}=", follower + 1)), "{text}");
    for n in 0..10 {
        c.create(&format!("/after-add-{n}"), b"", &zk::persistent()).await.expect("a write after the add");
    }
}
