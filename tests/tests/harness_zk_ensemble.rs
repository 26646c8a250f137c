//! The ensemble harness proven against Apache ZooKeeper 3.8 (Debian's package): Java ensembles on
//! loopback elect one leader, report their modes, replicate a write to every member, fail over after a
//! SIGKILL, take a restarted member back, and carry an observer and a SIGSTOPped follower.
//! Skips with a printed reason where Java or the package is missing.

use std::time::Duration;

use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, Role, TestEnsemble};
use fk_tests::zk;

/// A Java ensemble of 3-5 JVMs on 2 busy cores needs a while to start and elect.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of one write attempt during failover (connect + create).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);

fn start_or_skip(spec: EnsembleSpec) -> Option<TestEnsemble> {
    match TestEnsemble::start(spec) {
        Ok(ensemble) => Some(ensemble),
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

async fn client(connect_string: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(connect_string)
        .await
        .unwrap_or_else(|e| panic!("connect to {connect_string}: {e}"))
}

/// Reads `path` on member i after a `sync`, so the member has applied everything the leader committed
/// before.
async fn read_synced(ensemble: &TestEnsemble, i: usize, path: &str) -> Vec<u8> {
    let c = zk::synced_client(&ensemble.client_address(i).to_string(), Duration::from_secs(10), path).await;
    c.get_data(path).await.unwrap_or_else(|e| panic!("read {path} on member {i}: {e}")).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_ensemble_elects_replicates_and_fails_over() {
    // ZooKeeper's sample timing: the failover time printed below is the baseline ferrokeeper is
    // compared with.
    let spec = EnsembleSpec::uniform(Implementation::ZooKeeper, 3, 0).with_ticks(2000, 10, 5);
    let Some(mut ensemble) = start_or_skip(spec) else { return };
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    for i in 0..3 {
        let expected = if i == leader { Mode::Leader } else { Mode::Follower };
        assert_eq!(ensemble.mode(i), Some(expected), "member {i}");
        assert!(ensemble.four_letter(i, "srvr").contains("Zookeeper version: 3.8"), "member {i} is not ZooKeeper 3.8");
    }

    let writer = client(&ensemble.client_address(leader).to_string()).await;
    writer.create("/harness", b"v1", &zk::persistent()).await.expect("create on the leader");
    for i in 0..3 {
        assert_eq!(read_synced(&ensemble, i, "/harness").await, b"v1", "member {i}");
    }
    drop(writer);

    ensemble.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let failover = zk::first_successful_write(
        &ensemble.connect_string_of(&survivors),
        "/after-failover",
        ATTEMPT_TIMEOUT,
        FAILOVER_TIMEOUT,
    )
    .await;
    eprintln!(
        "MEASURED: Java ZooKeeper 3.8 failover, leader SIGKILL -> first successful write \
         (tickTime=2000 initLimit=10 syncLimit=5, 3 voters on loopback): {} ms",
        failover.as_millis()
    );
    let new_leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    assert_ne!(new_leader, leader, "a killed member cannot lead");
    assert!(survivors.contains(&new_leader));
    for &i in &survivors {
        assert_eq!(read_synced(&ensemble, i, "/harness").await, b"v1", "member {i} lost the write before failover");
    }

    // The old leader comes back as a follower of the new one and catches up on the write it missed.
    ensemble.restart(leader);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), new_leader);
    assert_eq!(ensemble.mode(leader), Some(Mode::Follower));
    assert_eq!(read_synced(&ensemble, leader, "/after-failover").await, b"after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_ensemble_with_an_observer_and_a_stopped_follower() {
    let spec = EnsembleSpec::uniform(Implementation::ZooKeeper, 3, 1).with_ticks(500, 10, 5);
    let Some(mut ensemble) = start_or_skip(spec) else { return };
    let observer = 3;
    assert_eq!(ensemble.role(observer), Role::Observer);
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    assert_ne!(leader, observer, "an observer never leads");
    ensemble.wait_for_mode(observer, Some(Mode::Observer), ELECTION_TIMEOUT);

    // A hung follower (SIGSTOP) leaves two of three voters: writes through the observer, which forwards
    // them to the leader, still commit.
    let stopped = (0..3).find(|&i| i != leader).expect("a follower");
    ensemble.stop(stopped);
    assert!(!ensemble.is_live(stopped));
    assert_eq!(ensemble.four_letter(stopped, "srvr"), "", "a stopped member answers nothing");
    let through_observer = client(&ensemble.client_address(observer).to_string()).await;
    through_observer.create("/observed", b"o", &zk::persistent()).await.expect("create through the observer");
    for i in (0..4).filter(|&i| i != stopped) {
        assert_eq!(read_synced(&ensemble, i, "/observed").await, b"o", "member {i}");
    }

    // Resumed, it is still a follower of the same leader and catches up.
    ensemble.resume(stopped);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), leader);
    assert_eq!(read_synced(&ensemble, stopped, "/observed").await, b"o");
}
