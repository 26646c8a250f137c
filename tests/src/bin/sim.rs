//! Soaks the deterministic simulator: runs seeds `start..start+seeds` and prints a summary; exits
//! non-zero if any seed fails, printing the command that replays it.
//!
//! `cargo run --release -p fk-tests --bin sim -- --seeds 10000 [--start S] [--faults crash,partition]`

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ferrokeeper::planted::PlantedBug;
use fk_tests::sim::faults::{FaultKind, FaultMix, parse_choice};
use fk_tests::sim::fs::FsTally;
use fk_tests::sim::run::{SeedReport, parse_planted, planted_name, replay_command, run_seed};
use fk_tests::sim::storage::run_storage_seed;
use fk_tests::sim::world::Options;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(name = "sim", about = "Deterministic simulation of ferrokeeper ensembles, seed by seed")]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    #[arg(long, default_value_t = 3)]
    voters: usize,
    #[arg(long, default_value_t = 0)]
    observers: usize,
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Faults to inject (crash, partition, break-links, slow-fsync, slow-network, dup-notifications,
    /// all, none, damage); by default each seed draws its own mix. `storage` adds the storage faults
    /// (damage) on top, of the mix named or of each seed's draw.
    #[arg(long, value_parser = parse_choice)]
    faults: Option<(Option<FaultMix>, bool)>,
    /// Run with a deliberate bug (the checkers' own tests): ack-before-fsync, commit-on-minority,
    /// keep-txns-on-trunc, sync-answered-early, new-quorum-only, damaged-votes.
    #[arg(long, value_parser = parse_planted)]
    planted: Option<PlantedBug>,
    /// reconfigEnabled, and an operator reconfiguring the ensemble (add, remove, re-role, new members)
    /// during the fault phase.
    #[arg(long)]
    reconfig: bool,
    /// Members outside the initial membership, for reconfigurations to add.
    #[arg(long, default_value_t = 2)]
    spares: usize,
    /// Run the storage engine alone instead (fk_tests::sim::storage): the real txn log and recovery
    /// on a simulated filesystem with failing fsyncs, crashes that lose or tear unsynced sectors, and
    /// bits flipped at rest.
    #[arg(long)]
    storage_engine: bool,
    /// Print each seed's line.
    #[arg(long)]
    verbose: bool,
    /// Print each seed's digest (what a replay must repeat), one line per seed.
    #[arg(long)]
    digest: bool,
    /// Print the members' logs (at RUST_LOG's level, info by default), tagged with member and virtual
    /// time: for replaying one failing seed.
    #[arg(long)]
    log: bool,
}

#[derive(Default)]
struct Totals {
    seeds: u64,
    failed: Vec<u64>,
    faults: BTreeMap<FaultKind, u64>,
    writes_acknowledged: u64,
    unknown_committed: u64,
    reads_checked: u64,
    syncs_checked: u64,
    watch_events_checked: u64,
    elections: u64,
    damaged: u64,
    healed: u64,
    epoch_flips: u64,
    disk: FsTally,
    reconfigs: BTreeMap<String, u64>,
    activations: u64,
    events: u64,
    virtual_ms: u64,
}

impl Totals {
    fn add(&mut self, report: &SeedReport) {
        self.seeds += 1;
        for (kind, n) in &report.faults {
            *self.faults.entry(*kind).or_default() += n;
        }
        self.elections += report.elections_won;
        self.damaged += report.damaged;
        self.epoch_flips += report.epoch_flips;
        self.healed += report.healed;
        self.disk.absorb(report.disk);
        for (outcome, n) in &report.reconfigs {
            *self.reconfigs.entry(outcome.clone()).or_default() += n;
        }
        self.activations += report.activations as u64;
        self.events += report.events;
        self.virtual_ms += report.virtual_ms;
        match &report.result {
            Ok(summary) => {
                self.writes_acknowledged += summary.writes_acknowledged as u64;
                self.unknown_committed += summary.unknown_committed as u64;
                self.reads_checked += summary.reads_checked as u64;
                self.syncs_checked += summary.syncs_checked as u64;
                self.watch_events_checked += summary.watch_events_checked as u64;
            }
            Err(_) => self.failed.push(report.seed),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.log {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .without_time()
            .with_writer(std::io::stderr)
            .init();
    }
    if args.storage_engine {
        return storage_engine(&args);
    }
    let options = Options {
        voters: args.voters,
        observers: args.observers,
        clients: args.clients,
        faults: args.faults.clone().and_then(|(fixed, _)| fixed),
        storage_faults: args.faults.as_ref().is_some_and(|(_, storage)| *storage),
        planted: args.planted,
        reconfig: args.reconfig,
        spares: if args.reconfig { args.spares } else { 0 },
        ..Options::default()
    };
    let bar = ProgressBar::new(args.seeds);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta} {msg}")
            .expect("a valid template"),
    );
    let started = Instant::now();
    let mut totals = Totals::default();
    for seed in args.start..args.start + args.seeds {
        let report = run_seed(seed, &options);
        totals.add(&report);
        if let Err(e) = &report.result {
            bar.suspend(|| {
                println!("seed {seed} FAILED ({}): {e}\n  replay: {}", report.mix, replay_command(seed, &options))
            });
        } else if args.verbose {
            bar.suspend(|| println!("seed {seed} ok ({}): {:?}", report.mix, report.result));
        }
        if args.digest {
            bar.suspend(|| println!("seed {seed} digest {:016x}", report.digest()));
        }
        bar.set_message(format!("{} failed", totals.failed.len()));
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_summary(&totals, started.elapsed().as_secs_f64());
    if totals.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `--storage-engine`: seeds of the storage simulation, a summary, and each failing seed's replay.
fn storage_engine(args: &Args) -> ExitCode {
    let started = Instant::now();
    let (mut failed, mut sum) = (Vec::new(), [0u64; 18]);
    for seed in args.start..args.start + args.seeds {
        let r = run_storage_seed(seed, args.planted);
        let t = r.tally;
        let figures = [
            r.batches,
            r.acknowledged,
            r.failed_appends,
            r.crashes,
            r.damage_found,
            r.damage_after_tear,
            r.recoveries_retried,
            r.snapshots,
            r.flips_harmless,
            t.eio,
            t.enospc,
            t.sectors_lost,
            t.sectors_torn,
            t.names_lost,
            t.bits_flipped,
            t.out_of_order,
            t.misdirected,
            r.lost_to_misdirects,
        ];
        sum.iter_mut().zip(figures).for_each(|(s, f)| *s += f);
        if let Err(e) = &r.result {
            let planted = args.planted.map_or(String::new(), |b| format!(" --planted {}", planted_name(b)));
            println!(
                "seed {seed} FAILED: {e}\n  replay: cargo run --release -p fk-tests --bin sim -- --storage-engine --start {seed} --seeds 1{planted}"
            );
            failed.push(seed);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("seeds                  {} ({:.1} seeds/s, {seconds:.1} s)", args.seeds, args.seeds as f64 / seconds);
    println!("failed                 {} {failed:?}", failed.len());
    let names = [
        "batches appended",
        "txns acknowledged",
        "appends failed",
        "crashes",
        "damage found (flips)",
        "damage, no flip",
        "recoveries retried",
        "snapshots written",
        "flips harmless",
        "fsync EIO",
        "ENOSPC",
        "sectors lost",
        "sectors torn",
        "names lost",
        "bits flipped",
        "crashes out of order",
        "writes misdirected",
        "txns lost, misdirects",
    ];
    for (name, n) in names.iter().zip(sum) {
        println!("{name:<22} {n}");
    }
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn print_summary(t: &Totals, seconds: f64) {
    println!("seeds                  {} ({:.1} seeds/s, {seconds:.1} s)", t.seeds, t.seeds as f64 / seconds);
    println!("failed                 {} {:?}", t.failed.len(), t.failed);
    println!("virtual time           {:.0} s", t.virtual_ms as f64 / 1000.0);
    println!("events                 {}", t.events);
    println!("leaders established    {}", t.elections);
    println!("writes acknowledged    {} (checked against the committed log)", t.writes_acknowledged);
    println!("unknown writes in log  {}", t.unknown_committed);
    println!("reads checked          {}", t.reads_checked);
    println!("syncs checked          {}", t.syncs_checked);
    println!("watch events checked   {}", t.watch_events_checked);
    if !t.reconfigs.is_empty() {
        println!("memberships activated  {} (over every member)", t.activations);
    }
    for (outcome, n) in &t.reconfigs {
        println!("reconfig {outcome:<18} {n}");
    }
    for (kind, n) in &t.faults {
        println!("fault {:<16} {n}", kind.name());
    }
    if t.faults.contains_key(&FaultKind::Damage) {
        let d = t.disk;
        let injected = [
            ("disk: bits flipped", d.bits_flipped, ""),
            ("  in epoch files", t.epoch_flips, " (a digit turned into a letter)"),
            ("disk: fsync EIO", d.eio, " (the member's role ends, as its log stage makes it)"),
            ("disk: ENOSPC", d.enospc, " (a write or an allocation refused)"),
            ("disk: machine crashes", d.crashes, " (in an fsync, or a power loss)"),
            ("disk: sectors lost", d.sectors_lost, " (unsynced, at a crash)"),
            ("disk: sectors torn", d.sectors_torn, ""),
            ("disk: names lost", d.names_lost, " (created or renamed, directory not yet synced)"),
        ];
        for (name, n, why) in injected {
            println!("{name:<22} {n}{why}");
        }
        println!(
            "members found damaged  {} (at a restart, or a reload after TRUNC or SNAP; one may be found again before it heals)",
            t.damaged
        );
        println!("recovered from ensemble {} (synchronised by a leader, then voting again)", t.healed);
    }
}
