//! The deterministic simulator (tests/src/sim): whole ensembles of the production member, sequencer and
//! applier cores on a simulated network, disk and clock, hundreds of seeds, every checker on each; the
//! same seed replays bit for bit; and each planted bug is caught within a bounded number of seeds.
//! A longer soak: `cargo run --release -p fk-tests --bin sim -- --seeds 10000`.

use ferrokeeper::planted::PlantedBug;
use fk_tests::sim::faults::FaultMix;
use fk_tests::sim::run::{SeedReport, replay_command, run_seed};
use fk_tests::sim::storage::{StorageReport, run_storage_seed};
use fk_tests::sim::world::Options;

/// Runs `seeds` and fails with every failing seed's replay command.
fn all_pass(seeds: std::ops::Range<u64>, options: &Options) -> Vec<SeedReport> {
    let reports: Vec<SeedReport> = seeds.map(|seed| run_seed(seed, options)).collect();
    let failures: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.result
                .as_ref()
                .err()
                .map(|e| format!("seed {} ({}): {e}\n  replay: {}", r.seed, r.mix, replay_command(r.seed, options)))
        })
        .collect();
    assert!(failures.is_empty(), "{} of the seeds failed:\n{}", failures.len(), failures.join("\n"));
    reports
}

#[test]
fn three_voters_pass_every_checker_on_200_seeds() {
    let reports = all_pass(0..200, &Options::default());
    let acknowledged: usize = reports.iter().map(|r| r.result.as_ref().map_or(0, |s| s.writes_acknowledged)).sum();
    let faults: u64 = reports.iter().flat_map(|r| r.faults.values()).sum();
    assert!(acknowledged > 100_000, "the runs did work: {acknowledged} writes acknowledged");
    assert!(faults > 500, "and met faults: {faults}");
}

#[test]
fn five_voters_and_an_observer_pass_every_checker() {
    let options = Options { voters: 5, observers: 1, ..Options::default() };
    all_pass(10_000..10_030, &options);
}

/// Members found damaged at restarts (on top of each seed's mix) keep what preceded the damage, do not
/// vote, and heal from their ensemble: every checker on each seed, and every damaged member healed.
#[test]
fn members_found_damaged_recover_from_their_ensemble() {
    let options = Options { storage_faults: true, ..Options::default() };
    let reports = all_pass(30_000..30_060, &options);
    let damaged: u64 = reports.iter().map(|r| r.damaged).sum();
    let healed: u64 = reports.iter().map(|r| r.healed).sum();
    assert!(damaged > 50, "members were found damaged: {damaged}");
    assert!(healed > 3 * damaged / 4, "and their ensembles healed them: {healed} of {damaged}");
}

/// The real txn log and recovery on a simulated filesystem: fsyncs failing with EIO, crashes losing,
/// tearing and reordering unsynced sectors, bits flipped at rest; every acknowledged batch recovered,
/// damage reported only where there was some, on each seed (fk_tests::sim::storage).
#[test]
fn the_storage_engine_keeps_every_acknowledged_write_under_storage_faults() {
    let reports: Vec<StorageReport> = (0..3_000).map(|seed| run_storage_seed(seed, None)).collect();
    let failures: Vec<String> =
        reports.iter().filter_map(|r| r.result.as_ref().err().map(|e| format!("seed {}: {e}", r.seed))).collect();
    assert!(failures.is_empty(), "{} seeds failed:\n{}", failures.len(), failures.join("\n"));
    let sum = |f: fn(&StorageReport) -> u64| reports.iter().map(f).sum::<u64>();
    assert!(sum(|r| r.acknowledged) > 100_000, "the runs did work");
    for (what, n) in [
        ("fsync EIO", sum(|r| r.tally.eio)),
        ("sectors lost", sum(|r| r.tally.sectors_lost)),
        ("sectors torn", sum(|r| r.tally.sectors_torn)),
        ("crashes out of order", sum(|r| r.tally.out_of_order)),
        ("bits flipped", sum(|r| r.tally.bits_flipped)),
        ("damage found", sum(|r| r.damage_found)),
    ] {
        assert!(n > 100, "{what}: only {n}");
    }
}

/// The first storage seed (of `budget`) on which the checker catches `bug`.
fn storage_caught_within(bug: PlantedBug, budget: u64) -> u64 {
    (0..budget)
        .find(|&seed| run_storage_seed(seed, Some(bug)).result.is_err())
        .unwrap_or_else(|| panic!("{bug:?} went unnoticed for {budget} storage seeds"))
}

#[test]
fn trusting_a_write_after_a_failed_fsync_is_caught() {
    storage_caught_within(PlantedBug::TrustFailedFsync, 20);
}

#[test]
fn a_bit_flipped_mid_log_taken_for_a_torn_tail_is_caught() {
    storage_caught_within(PlantedBug::FlipAsTornTail, 20);
}

/// reconfigEnabled, two spare members, and the operator reconfiguring during the faults: every checker,
/// the configuration history's among them, on each seed; and the runs did reconfigure.
#[test]
fn reconfiguring_ensembles_pass_every_checker() {
    let options = Options { reconfig: true, spares: 2, ..Options::default() };
    let reports = all_pass(20_000..20_060, &options);
    let applied: u64 = reports.iter().filter_map(|r| r.reconfigs.get("OK")).sum();
    let activations: usize = reports.iter().map(|r| r.activations).sum();
    assert!(applied > 60, "the operator's reconfigs took effect: {applied}");
    assert!(activations > 5 * applied as usize / 2, "and the members activated them: {activations}");
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let options = Options { faults: Some(FaultMix::all()), ..Options::default() };
    let reconfiguring = Options { reconfig: true, spares: 2, ..options.clone() };
    for (seed, options) in [(3, &options), (77, &options), (5, &reconfiguring)] {
        let (a, b) = (run_seed(seed, options), run_seed(seed, options));
        assert_eq!((a.events, a.virtual_ms, a.ops, &a.trees), (b.events, b.virtual_ms, b.ops, &b.trees), "seed {seed}");
        assert_eq!(format!("{:?}", a.result), format!("{:?}", b.result), "seed {seed}");
        assert_eq!((a.activations, &a.reconfigs), (b.activations, &b.reconfigs), "seed {seed}");
    }
}

/// The same seeds replayed by two separate processes give the same digest: nothing in a run depends on
/// per-process state (hash keys, addresses, the wall clock), which one process replaying twice cannot see.
#[test]
fn a_seed_replays_alike_in_two_processes() {
    let digests = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(["--start", "3", "--seeds", "3", "--digest"])
            .args(args)
            .output()
            .expect("run the simulator");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<String> = text.lines().filter(|l| l.contains(" digest ")).map(str::to_owned).collect();
        assert_eq!(lines.len(), 3, "one digest per seed:\n{text}{}", String::from_utf8_lossy(&out.stderr));
        lines
    };
    for args in [&["--faults", "all"][..], &["--reconfig"][..]] {
        assert_eq!(digests(args), digests(args), "{args:?}");
    }
}

/// Seeds that found bugs, kept once fixed.
#[test]
fn regressions() {
    // A learner logged a synchronisation into a newer epoch, died before writing its current epoch, and
    // would then refuse to start ("the current epoch is older than the last zxid"): ZooKeeper's
    // updatingEpoch mark now covers that window (zab/learner.rs, fk_engine::epoch).
    all_pass(122..123, &Options::default());
    // Five voters and an observer, two voters cut off with the observer: the LOOKING voters and the
    // OBSERVING observer answered each other's notifications for as long as the cut lasted (as
    // ZooKeeper's do: not unsafe, but a message per round trip for nothing), and the simulator's
    // duplicated deliveries of the time multiplied the exchanges until the run stalled. A voter now
    // answers a non-voter only while that one is LOOKING (election/mod.rs); duplicates now come only
    // as ZooKeeper makes them, the last notification again on a new connection.
    all_pass(10_004..10_005, &Options { voters: 5, observers: 1, ..Options::default() });
    // The same with a LOOKING observer ahead of a LOOKING voter that hears only it (ZooKeeper answers
    // such a voter every time): livelocked under the old duplication, now a bounded exchange.
    all_pass(101_960..101_962, &Options { voters: 5, observers: 1, ..Options::default() });
    // Reconfiguring: a learner's info reached a leader that had not decided its epoch, then an
    // ACKEPOCH answering no LEADERINFO of this leader: it panicked; it now drops that learner.
    all_pass(326..327, &Options { reconfig: true, spares: 2, ..Options::default() });
    // Storage faults: a bit flipped in an old snapshot start-up did not need; a TRUNC's reload needed
    // it, failed, and the learner looked again with its old facts, was elected a follower again, and
    // failed again, for ever (the ensemble never served again). The reload now recovers as start-up
    // does: the damage is marked and the learner heals from its ensemble (storage::recover_at_start).
    all_pass(2_234..2_235, &Options { storage_faults: true, ..Options::default() });
}

/// The first seed (of `budget`) on which the checkers catch `bug`, with faults that give it a chance.
fn caught_within(bug: PlantedBug, faults: &str, budget: u64) -> u64 {
    caught_within_runs(bug, faults, budget, Options::default())
}

fn caught_within_runs(bug: PlantedBug, faults: &str, budget: u64, runs: Options) -> u64 {
    let options = Options { planted: Some(bug), faults: Some(FaultMix::parse(faults).unwrap()), ..runs };
    (0..budget)
        .find(|&seed| run_seed(seed, &options).result.is_err())
        .unwrap_or_else(|| panic!("{bug:?} went unnoticed for {budget} seeds of {faults}"))
}

#[test]
fn acknowledging_before_fsync_is_caught() {
    // Acknowledged, not yet durable anywhere, and every member loses power.
    caught_within(PlantedBug::AckBeforeFsync, "power-loss,slow-fsync", 10);
}

#[test]
fn committing_on_a_minority_is_caught() {
    // A leader cut off with a minority goes on acknowledging; the majority's new leader never heard.
    caught_within(PlantedBug::CommitOnMinority, "partition", 20);
}

#[test]
fn keeping_txns_a_trunc_removes_is_caught() {
    // A leader that logged txns nobody acknowledged comes back (power loss, or a cut) to a new leader.
    caught_within(PlantedBug::KeepTxnsOnTrunc, "power-loss,partition", 40);
}

#[test]
fn a_stale_read_after_sync_is_caught() {
    // A follower behind the leader (slow disk, slow network) answers sync from what it has.
    caught_within(PlantedBug::SyncAnsweredEarly, "slow-fsync,slow-network", 20);
}

#[test]
fn a_damaged_member_voting_before_it_is_synchronised_is_caught() {
    // It lost txns it acknowledged with the leader; the leader dies; its vote elects a member that
    // never had them.
    caught_within(PlantedBug::DamagedVotes, "damage,crash", 30);
}

#[test]
fn activating_on_a_quorum_of_the_new_members_only_is_caught() {
    // The two voters besides the leader cut off, the operator (its session kept on the leader's side)
    // replaces or removes them: committed by the new membership alone, the reconfig leaves an old
    // majority that never heard of it to elect a leader of its own.
    let reconfiguring = Options { reconfig: true, spares: 2, ..Options::default() };
    caught_within_runs(PlantedBug::NewQuorumOnly, "partition", 60, reconfiguring);
}
