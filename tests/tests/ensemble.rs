//! ferrokeeper ensembles as real processes on loopback: election at start, writes through any member
//! replicated to all, failover after the leader's SIGKILL with no acknowledged write lost, a restarted
//! member catching up, observers, a hung leader, and a lost quorum refusing writes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, Role, TestEnsemble};
use fk_tests::zk;

const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

fn start(voters: usize, observers: usize) -> TestEnsemble {
    let spec = EnsembleSpec::uniform(Implementation::Ferrokeeper, voters, observers).with_ticks(200, 10, 5);
    TestEnsemble::start(spec).unwrap_or_else(|e| panic!("cannot start a ferrokeeper ensemble: {e}"))
}

async fn client(connect_string: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .connect(connect_string)
        .await
        .unwrap_or_else(|e| panic!("connect to {connect_string}: {e}"))
}

/// `path`'s data on member i after a `sync`: everything committed before is applied there.
async fn read_synced(ensemble: &TestEnsemble, i: usize, path: &str) -> Option<Vec<u8>> {
    let c = zk::synced_client(&ensemble.client_address(i).to_string(), SESSION_TIMEOUT, path).await;
    match c.get_data(path).await {
        Ok((data, _)) => Some(data),
        Err(zk::Error::NoNode) => None,
        Err(e) => panic!("read {path} on member {i}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_replicate_and_fail_over() {
    let mut ensemble = start(3, 0);
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    for i in 0..3 {
        let expected = if i == leader { Mode::Leader } else { Mode::Follower };
        assert_eq!(ensemble.mode(i), Some(expected), "member {i}");
    }
    // A write through a follower is forwarded, committed by the quorum and applied everywhere.
    let follower = (leader + 1) % 3;
    let writer = client(&ensemble.client_address(follower).to_string()).await;
    writer.create("/replicated", b"v1", &zk::persistent()).await.expect("create through a follower");
    let stat = writer.set_data("/replicated", b"v2", None).await.expect("setData");
    assert_eq!(stat.version, 1);
    for i in 0..3 {
        assert_eq!(read_synced(&ensemble, i, "/replicated").await.as_deref(), Some(&b"v2"[..]), "member {i}");
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
    eprintln!("MEASURED: ferrokeeper failover, leader SIGKILL -> first successful write: {} ms", failover.as_millis());
    let new_leader = ensemble.wait_for_leader_among(&survivors, ELECTION_TIMEOUT);
    assert_ne!(new_leader, leader);
    for &i in &survivors {
        assert_eq!(read_synced(&ensemble, i, "/replicated").await.as_deref(), Some(&b"v2"[..]), "member {i}");
    }

    // The old leader returns as a follower and catches up on what it missed.
    ensemble.restart(leader);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), new_leader);
    assert_eq!(ensemble.mode(leader), Some(Mode::Follower));
    assert_eq!(read_synced(&ensemble, leader, "/after-failover").await.as_deref(), Some(&b"after"[..]));
}

/// Writers on every member record what was acknowledged; the leader is SIGKILLed in the middle; every
/// acknowledged write is on every surviving member afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_when_the_leader_dies_under_load() {
    let mut ensemble = start(3, 0);
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let acked: Arc<Mutex<BTreeMap<String, i32>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (acked, stop) = (acked.clone(), stop.clone());
        let connect = ensemble.connect_string();
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(Ok(c)) = tokio::time::timeout(
                    ATTEMPT_TIMEOUT,
                    zk::Client::connector().with_session_timeout(Duration::from_secs(4)).connect(&connect),
                )
                .await
                else {
                    continue;
                };
                loop {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let path = format!("/load-{w}-{n}");
                    match tokio::time::timeout(ATTEMPT_TIMEOUT, c.create(&path, b"x", &zk::persistent())).await {
                        Ok(Ok(_)) => {
                            acked.lock().unwrap().insert(path, 0);
                            n += 1;
                        }
                        _ => {
                            n += 1;
                            break;
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = acked.lock().unwrap().len();
    ensemble.kill(leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(before > 10, "writes were acknowledged before the kill ({before})");
    assert!(acked.len() > before, "writes resumed after the failover ({} then {})", before, acked.len());
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    ensemble.wait_for_leader_among(&survivors, ELECTION_TIMEOUT);
    for &i in &survivors {
        let c = zk::synced_client(&ensemble.client_address(i).to_string(), SESSION_TIMEOUT, "/").await;
        for path in acked.keys() {
            assert!(c.check_stat(path).await.unwrap().is_some(), "member {i} lost acknowledged {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_serves_and_forwards_and_a_hung_follower_does_not_stop_writes() {
    let mut ensemble = start(3, 1);
    let observer = 3;
    assert_eq!(ensemble.role(observer), Role::Observer);
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    assert_ne!(leader, observer);
    ensemble.wait_for_mode(observer, Some(Mode::Observer), ELECTION_TIMEOUT);
    let stopped = (0..3).find(|&i| i != leader).expect("a follower");
    ensemble.stop(stopped);
    let through_observer = client(&ensemble.client_address(observer).to_string()).await;
    through_observer.create("/observed", b"o", &zk::persistent()).await.expect("create through the observer");
    for i in (0..4).filter(|&i| i != stopped) {
        assert_eq!(read_synced(&ensemble, i, "/observed").await.as_deref(), Some(&b"o"[..]), "member {i}");
    }
    ensemble.resume(stopped);
    assert_eq!(ensemble.wait_for_leader(ELECTION_TIMEOUT), leader);
    assert_eq!(read_synced(&ensemble, stopped, "/observed").await.as_deref(), Some(&b"o"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_nothing_is_acknowledged() {
    let mut ensemble = start(3, 0);
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    ensemble.kill(followers[0]);
    ensemble.kill(followers[1]);
    // The leader loses its quorum within syncLimit and stops serving; no write may succeed meanwhile.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert!(
            !zk::try_create(&ensemble.client_address(leader).to_string(), "/minority", ATTEMPT_TIMEOUT).await,
            "a minority acknowledged a write"
        );
    }
    assert_eq!(ensemble.mode(leader), None, "the leader without a quorum does not serve");
    // The followers come back: the ensemble forms again and never saw /minority.
    ensemble.restart(followers[0]);
    ensemble.restart(followers[1]);
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    assert_eq!(read_synced(&ensemble, leader, "/minority").await, None);
}

/// Deep pipelines of writes on every member at once keep every queue between the threads full; the
/// members must keep serving (a blocking cycle between the member thread and the log stage once hung a
/// follower here) and end with the same data.
#[test]
fn members_under_pipelined_write_load_keep_serving() {
    use fk_net::client::{Request, SetDataRequest, WriteOp};
    let mut ensemble = start(3, 0);
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let mut setup = fk_tests::raw::RawClient::connect(&ensemble.client_address(0).to_string());
    let create = fk_net::client::CreateRequest {
        path: "/hot".into(),
        data: Some(vec![]),
        acl: vec![fk_net::client::Acl::new(fk_net::client::perms::ALL, "world", "anyone")],
        flags: 0,
    };
    let create = Request::Write(WriteOp::Create { op: fk_net::client::OpCode::Create, request: create });
    assert_eq!(setup.call(&create).0.err(), 0);
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let address = ensemble.client_address(w % 3).to_string();
            std::thread::spawn(move || {
                let mut c = fk_tests::raw::RawClient::connect(&address);
                let set = Request::Write(WriteOp::SetData(SetDataRequest {
                    path: "/hot".into(),
                    data: Some(vec![w as u8; 512]),
                    version: -1,
                }));
                let deadline = Instant::now() + Duration::from_secs(2);
                let mut acknowledged = 0;
                while Instant::now() < deadline {
                    for _ in 0..256 {
                        c.send(&set);
                    }
                    for _ in 0..256 {
                        assert_eq!(c.recv().expect("a reply").err(), 0);
                        acknowledged += 1;
                    }
                }
                acknowledged
            })
        })
        .collect();
    let acknowledged: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let versions: Vec<i32> = (0..3)
        .map(|i| {
            runtime.block_on(async {
                let c = zk::synced_client(&ensemble.client_address(i).to_string(), SESSION_TIMEOUT, "/hot").await;
                c.get_data("/hot").await.unwrap().1.version
            })
        })
        .collect();
    assert_eq!(versions, vec![acknowledged as i32; 3], "every acknowledged setData on every member");
}
