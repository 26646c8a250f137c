//! A member's data volume fills up under a write load (issue 20). The member stops acknowledging and
//! leaves its role, but stays up and says why (`srvr`, `mntr`, its log); the ensemble keeps committing
//! without it; once the volume has room again the member rejoins by itself through synchronisation; and
//! every acknowledged write is on every member. Once for a follower, once for the leader.

use std::path::Path;
use std::time::{Duration, Instant};

use fk_tests::SmallVolume;
use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, TestEnsemble};
use fk_tests::zk;

const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);
const VOLUME_MIB: u64 = 3;
const VALUE_BYTES: usize = 1000;
/// Creates in flight at once.
const IN_FLIGHT: usize = 16;

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Moves member i's dataDir onto a small tmpfs (the member is restarted on it).
fn put_on_small_volume(ensemble: &mut TestEnsemble, i: usize) -> Option<SmallVolume> {
    let data = ensemble.data_dir(i);
    ensemble.kill(i);
    let aside = data.with_extension("before");
    std::fs::rename(&data, &aside).unwrap();
    let Some(volume) = SmallVolume::mount(&data, VOLUME_MIB) else {
        std::fs::rename(&aside, &data).unwrap();
        return None;
    };
    copy_dir(&aside, &data);
    ensemble.restart(i);
    Some(volume)
}

/// Writes through `connect_string`, `IN_FLIGHT` creates at a time, until `done` says stop; returns the
/// paths acknowledged. A create whose outcome is unknown (the connection lost) is not counted.
struct Writer {
    runtime: tokio::runtime::Runtime,
    client: zk::Client,
    next: usize,
    acked: Vec<String>,
}

impl Writer {
    fn connect(connect_string: &str) -> Writer {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let client = runtime
            .block_on(zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(connect_string))
            .expect("connect the writer");
        Writer { runtime, client, next: 0, acked: Vec::new() }
    }

    /// One round of `IN_FLIGHT` creates; how many were acknowledged.
    fn round(&mut self) -> usize {
        let mut tasks = tokio::task::JoinSet::new();
        let _inside = self.runtime.enter();
        for _ in 0..IN_FLIGHT {
            let (client, path) = (self.client.clone(), format!("/w{:07}", self.next));
            self.next += 1;
            tasks.spawn(async move {
                let value = vec![b'v'; VALUE_BYTES];
                let created =
                    tokio::time::timeout(Duration::from_secs(5), client.create(&path, &value, &zk::persistent()));
                matches!(created.await, Ok(Ok(_))).then_some(path)
            });
        }
        let acked: Vec<String> = self.runtime.block_on(tasks.join_all()).into_iter().flatten().collect();
        let count = acked.len();
        self.acked.extend(acked);
        if count == 0 {
            // Between leaders: give the client a moment to find one.
            std::thread::sleep(Duration::from_millis(100));
        }
        count
    }

    /// Rounds until `until` holds or `limit` passes; panics then.
    fn write_until(&mut self, what: &str, limit: Duration, mut until: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !until(self) {
            assert!(Instant::now() < deadline, "not {what} after {limit:?} ({} writes acknowledged)", self.acked.len());
            self.round();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Follower,
    Leader,
}

fn scenario(target: Target) {
    let spec = EnsembleSpec::uniform(Implementation::Ferrokeeper, 3, 0).with_ticks(200, 10, 5);
    let mut ensemble = TestEnsemble::start(spec).unwrap_or_else(|e| panic!("cannot start the ensemble: {e}"));
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let full = match target {
        Target::Follower => (leader + 1) % 3,
        Target::Leader => leader,
    };
    let Some(volume) = put_on_small_volume(&mut ensemble, full) else {
        eprintln!("skipped: cannot mount a tmpfs here (the test needs root, as CI has)");
        return;
    };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let others: Vec<usize> = (0..3).filter(|&i| i != full).collect();
    let mut writer = Writer::connect(&ensemble.connect_string_of(&others));

    // The volume fills: the member leaves its role but stays up, and says why.
    writer.write_until("out of space", Duration::from_secs(120), |_| {
        ensemble.four_letter(full, "srvr").contains("No space left on device")
    });
    assert!(ensemble.is_live(full), "the member with a full disk exited:\n{}", ensemble.log_text(full));
    let at_full = writer.acked.len();
    let log = ensemble.log_text(full);
    assert!(log.contains("this member leaves its role and rejoins when it can"), "{log}");

    // The others commit without it (a new leader first, if it was the leader).
    let survivors_leader = ensemble.wait_for_leader_among(&others, ELECTION_TIMEOUT);
    writer
        .write_until("committing without the full member", Duration::from_secs(60), |w| w.acked.len() >= at_full + 200);
    assert!(ensemble.is_live(full), "the member exited while full:\n{}", ensemble.log_text(full));
    assert_ne!(ensemble.mode(full), Some(Mode::Leader), "a member that cannot log does not lead");

    // Room again: it rejoins by itself, as a follower, under the same load.
    volume.resize(64);
    let grown = Instant::now();
    writer.write_until("rejoined", Duration::from_secs(60), |_| ensemble.mode(full) == Some(Mode::Follower));
    let rejoin = grown.elapsed();
    if std::env::var_os("FK_DUMP").is_some() {
        std::fs::write("/tmp/full-member.log", ensemble.log_text(full)).unwrap();
        std::fs::write("/tmp/leader-member.log", ensemble.log_text(survivors_leader)).unwrap();
    }
    writer.write_until("writing after the rejoin", Duration::from_secs(60), |w| w.acked.len() >= at_full + 400);
    let mntr = ensemble.four_letter(full, "mntr");
    let failures = mntr.lines().find(|l| l.starts_with("fk_txn_log_write_failures")).unwrap_or_default().to_owned();
    eprintln!(
        "{target:?} full after {at_full} acknowledged writes; leader {survivors_leader} went on; rejoined {rejoin:?} \
         after the volume grew; {failures}; {} writes acknowledged in all",
        writer.acked.len()
    );
    ensemble.assert_every_write_on_every_member(&writer.acked);
    drop(writer);
    drop(ensemble);
    drop(volume);
}

#[test]
fn a_follower_with_a_full_disk_stays_up_and_rejoins_when_space_returns() {
    scenario(Target::Follower);
}

#[test]
fn a_leader_with_a_full_disk_hands_over_and_rejoins_when_space_returns() {
    scenario(Target::Leader);
}
