//! The deterministic simulator (tests/src/sim): whole ensembles of the production member, sequencer and
//! applier cores on a simulated network, disk and clock, hundreds of seeds, every checker on each; the
//! same seed replays bit for bit; and each planted bug is caught within a bounded number of seeds.
//! A longer soak: `cargo run --release -p fk-tests --bin sim -- --seeds 10000`.

use ferrokeeper::planted::PlantedBug;
use fk_tests::sim::faults::FaultMix;
use fk_tests::sim::run::{SeedReport, replay_command, run_seed};
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

#[test]
fn a_seed_replays_bit_for_bit() {
    let options = Options { faults: Some(FaultMix::all()), ..Options::default() };
    for seed in [3, 77] {
        let (a, b) = (run_seed(seed, &options), run_seed(seed, &options));
        assert_eq!((a.events, a.virtual_ms, a.ops, &a.trees), (b.events, b.virtual_ms, b.ops, &b.trees), "seed {seed}");
        assert_eq!(format!("{:?}", a.result), format!("{:?}", b.result), "seed {seed}");
    }
}

/// Seeds that found bugs, kept once fixed.
#[test]
fn regressions() {
    // A learner logged a synchronisation into a newer epoch, died before writing its current epoch, and
    // would then refuse to start ("the current epoch is older than the last zxid"): ZooKeeper's
    // updatingEpoch mark now covers that window (zab/learner.rs, fk_engine::epoch).
    all_pass(122..123, &Options::default());
}

/// The first seed (of `budget`) on which the checkers catch `bug`.
fn caught_within(bug: PlantedBug, budget: u64) -> u64 {
    let options = Options { planted: Some(bug), ..Options::default() };
    (0..budget)
        .find(|&seed| run_seed(seed, &options).result.is_err())
        .unwrap_or_else(|| panic!("{bug:?} went unnoticed for {budget} seeds"))
}

#[test]
fn acknowledging_before_fsync_is_caught() {
    caught_within(PlantedBug::AckBeforeFsync, 30);
}

#[test]
fn committing_on_a_minority_is_caught() {
    caught_within(PlantedBug::CommitOnMinority, 30);
}

#[test]
fn keeping_txns_a_trunc_removes_is_caught() {
    caught_within(PlantedBug::KeepTxnsOnTrunc, 60);
}

#[test]
fn a_stale_read_after_sync_is_caught() {
    caught_within(PlantedBug::SyncAnsweredEarly, 30);
}
