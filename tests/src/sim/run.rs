//! One seed, end to end: the run, then every checker. What a soak and `cargo test` call.

use std::collections::{BTreeMap, BTreeSet};

use ferrokeeper::membership::Membership;
use ferrokeeper::planted::PlantedBug;
use ferrokeeper::zab::Entry;
use ferrokeeper::zab::config_text::members_of;
use fk_net::txn::{Txn, TxnBody};

use super::faults::{FaultKind, FaultMix};
use super::fs::FsTally;
use super::linearizability::{self, Summary};
use super::world::{Options, World, initial_membership};

/// How long a healed run may take to converge after its planned end.
const SETTLE_MS: u64 = 30_000;

/// What one seed did and found.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub seed: u64,
    pub mix: FaultMix,
    pub faults: BTreeMap<FaultKind, u64>,
    pub events: u64,
    pub elections_won: u64,
    /// Members found damaged at a restart, and synchronisations that healed one.
    pub damaged: u64,
    pub healed: u64,
    /// Bits flipped in epoch files (also counted in `disk`).
    pub epoch_flips: u64,
    /// What the members' simulated filesystems did to their files.
    pub disk: FsTally,
    /// The virtual time the run took, ms.
    pub virtual_ms: u64,
    /// Each member's tree at the end (digest, last zxid): with `events`, what a replay must repeat.
    pub trees: Vec<Option<(u64, i64)>>,
    pub ops: usize,
    /// The operator's reconfigurations, by answer (reconfiguring runs).
    pub reconfigs: BTreeMap<String, u64>,
    /// Memberships activated, over every member.
    pub activations: usize,
    pub result: Result<Summary, String>,
}

impl SeedReport {
    /// What a replay must repeat, as one number: the run's events, virtual time, client operations,
    /// final trees, reconfigurations and result. `DefaultHasher::new` has fixed keys, so two processes
    /// of one build agree — unless something in the run depends on per-process state (random hash keys,
    /// addresses, the wall clock), which is what comparing two processes' digests is for.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        (self.events, self.virtual_ms, self.ops, &self.trees, self.activations, &self.reconfigs).hash(&mut hasher);
        format!("{:?}", self.result).hash(&mut hasher);
        hasher.finish()
    }
}

/// Runs `seed` and checks it.
pub fn run_seed(seed: u64, options: &Options) -> SeedReport {
    ferrokeeper::planted::plant(options.planted);
    let mut world = World::new(seed, options.clone());
    let result = world.run(SETTLE_MS).and_then(|()| check(&world));
    ferrokeeper::planted::plant(None);
    SeedReport {
        seed,
        mix: world.mix().clone(),
        faults: world.figures.faults.clone(),
        events: world.figures.events,
        elections_won: world.figures.elections_won,
        damaged: world.members.iter().map(|m| m.disk.found_damaged).sum(),
        epoch_flips: world.members.iter().map(|m| m.disk.epoch_flips).sum(),
        disk: world.members.iter().fold(FsTally::default(), |mut t, m| {
            t.absorb(m.disk.fs.tally());
            t
        }),
        healed: world.members.iter().map(|m| m.healed).sum(),
        virtual_ms: world.now(),
        trees: world.members.iter().map(|m| m.tree_summary()).collect(),
        ops: world.history.ops().len(),
        reconfigs: world.reconfig_outcomes().clone(),
        activations: world.members.iter().map(|m| m.activations.len()).sum(),
        result,
    }
}

/// The checkers, on a converged run: the members' histories agree wherever they overlap; the
/// committed log (the leader's, through what it applied) holds every acknowledged write and explains
/// every client observation (linearizable writes, sequentially consistent reads, sync, FIFO).
fn check(world: &World) -> Result<Summary, String> {
    let histories: Vec<(i64, Vec<Txn>)> = world.members.iter().map(|m| (m.sid, m.disk.history())).collect();
    logs_agree(&histories)?;
    let leader = world.members.iter().find(|m| m.state() == Some(fk_net::quorum::ServerState::Leading));
    let leader = leader.ok_or("no leader at the end")?;
    let applied = leader.tree_summary().map_or(0, |(_, zxid)| zxid);
    let log: Vec<Txn> = leader.disk.history().into_iter().filter(|t| t.header.zxid <= applied).collect();
    configurations_linear(world, &log)?;
    linearizability::check(&world.history, &log).map_err(|v| format!("{v}"))
}

/// The configuration history is one line: every membership a member activated is either the initial
/// one, versioned by an epoch's start (ZooKeeper's ZOOKEEPER-1783), or a committed reconfig's, at its
/// zxid with its text; each member activated them in increasing order; every member ends on the same.
fn configurations_linear(world: &World, log: &[Txn]) -> Result<(), String> {
    let normal = |text: &str| Membership::parse(text).map(|m| m.text()).unwrap_or_else(|e| format!("unreadable: {e}"));
    let committed: BTreeMap<i64, String> = log
        .iter()
        .filter_map(|t| match &t.body {
            TxnBody::Reconfig(r) => Some((t.header.zxid, normal(&String::from_utf8_lossy(r.data.as_deref()?)))),
            _ => None,
        })
        .collect();
    let initial = initial_membership(world.options()).text();
    for member in &world.members {
        let mut last = i64::MIN;
        for (version, text) in &member.activations {
            if *version < last {
                return Err(format!("member {} activated version {version:#x} after {last:#x}", member.sid));
            }
            last = *version;
            let made = match committed.get(version) {
                Some(reconfig) => reconfig == text,
                None => version & 0xffff_ffff == 0 && members_of(initial.as_bytes()) == members_of(text.as_bytes()),
            };
            if !made {
                return Err(format!(
                    "member {} activated a membership no committed reconfig made (version {version:#x}):\n{text}",
                    member.sid
                ));
            }
        }
    }
    let ends: BTreeSet<Option<String>> = world.members.iter().map(|m| m.in_force().map(|m| m.text())).collect();
    if ends.len() > 1 {
        return Err(format!("the members end on different memberships: {ends:?}"));
    }
    Ok(())
}

/// Every zxid two members both hold is the same txn, and each member's history is in zxid order.
fn logs_agree(histories: &[(i64, Vec<Txn>)]) -> Result<(), String> {
    let mut first_seen: BTreeMap<i64, (i64, std::sync::Arc<[u8]>)> = BTreeMap::new();
    for (sid, history) in histories {
        if let Some(w) = history.windows(2).find(|w| w[0].header.zxid >= w[1].header.zxid) {
            return Err(format!("member {sid}'s history goes from {:#x} to {:#x}", w[0].header.zxid, w[1].header.zxid));
        }
        for txn in history {
            let bytes = Entry::of(txn).bytes;
            match first_seen.get(&txn.header.zxid) {
                Some((other, theirs)) if *theirs != bytes => {
                    return Err(format!(
                        "members {other} and {sid} hold different txns at zxid {:#x}",
                        txn.header.zxid
                    ));
                }
                Some(_) => {}
                None => {
                    first_seen.insert(txn.header.zxid, (*sid, bytes));
                }
            }
        }
    }
    Ok(())
}

/// The command that replays one seed.
pub fn replay_command(seed: u64, options: &Options) -> String {
    let faults = match (&options.faults, options.storage_faults) {
        (Some(mix), false) => format!(" --faults {mix}"),
        (Some(mix), true) => format!(" --faults {mix},storage"),
        (None, true) => " --faults storage".to_owned(),
        (None, false) => String::new(),
    };
    let planted = options.planted.map_or(String::new(), |bug| format!(" --planted {}", planted_name(bug)));
    let reconfig = if options.reconfig { format!(" --reconfig --spares {}", options.spares) } else { String::new() };
    format!(
        "cargo run --release -p fk-tests --bin sim -- --start {seed} --seeds 1 --voters {} --observers {} --clients {}{faults}{planted}{reconfig}",
        options.voters, options.observers, options.clients
    )
}

pub fn planted_name(bug: PlantedBug) -> &'static str {
    match bug {
        PlantedBug::AckBeforeFsync => "ack-before-fsync",
        PlantedBug::CommitOnMinority => "commit-on-minority",
        PlantedBug::KeepTxnsOnTrunc => "keep-txns-on-trunc",
        PlantedBug::SyncAnsweredEarly => "sync-answered-early",
        PlantedBug::NewQuorumOnly => "new-quorum-only",
        PlantedBug::DamagedVotes => "damaged-votes",
        PlantedBug::TrustFailedFsync => "trust-failed-fsync",
        PlantedBug::FlipAsTornTail => "flip-as-torn-tail",
    }
}

pub fn parse_planted(name: &str) -> Result<PlantedBug, String> {
    PlantedBug::ALL.into_iter().find(|&bug| planted_name(bug) == name).ok_or_else(|| {
        let names: Vec<&str> = PlantedBug::ALL.into_iter().map(planted_name).collect();
        format!("no planted bug called '{name}' (there are: {})", names.join(", "))
    })
}
