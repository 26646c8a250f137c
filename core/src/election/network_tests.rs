//! Whole ensembles of [`Election`] machines against each other over an in-memory network: message
//! queues, a virtual clock, delivery delays (and so delivery order) and losses drawn from a seed.
//! A failing run names its seed; `run_seed(..)` with that seed replays it exactly.

use std::collections::BTreeMap;

use super::*;
use crate::rng::Rng;

/// How the network and the start behave in one run.
#[derive(Debug, Clone, Copy)]
struct Weather {
    /// Each message takes 1..=delay_max_ms.
    delay_max_ms: u64,
    /// Percent of messages lost.
    loss_percent: u64,
    /// Each member starts at 0..start_spread_ms.
    start_spread_ms: u64,
}

const CALM: Weather = Weather { delay_max_ms: 40, loss_percent: 0, start_spread_ms: 1 };
const STAGGERED: Weather = Weather { delay_max_ms: 40, loss_percent: 0, start_spread_ms: 2_000 };
const LOSSY: Weather = Weather { delay_max_ms: 80, loss_percent: 10, start_spread_ms: 300 };

/// How long a role has to establish itself before it is given up (ZooKeeper's initLimit × tickTime,
/// scaled down): a learner whose leader does not lead, or a leader without a quorum of followers,
/// looks again. The election alone does not guarantee agreement — a member can decide for a candidate
/// that itself moved on to a better one — and in ZooKeeper these role timeouts close that gap.
const ROLE_ESTABLISH_MS: u64 = 4_000;

/// A run that has not settled after this many events has livelocked.
const EVENTS_MAX: usize = 200_000;

struct Flight {
    at_ms: u64,
    seq: u64,
    from: i64,
    to: i64,
    notification: Notification,
}

struct Member {
    settings: ElectionSettings,
    /// `None` while the machine is down.
    election: Option<Election>,
    facts: MyFacts,
    decided: Option<Decision>,
    /// When the driver will call `look`.
    look_at_ms: Option<u64>,
    /// When the decided role must have established itself.
    role_check_at_ms: Option<u64>,
}

struct Net {
    seed: u64,
    weather: Weather,
    rng: Rng,
    now_ms: u64,
    seq: u64,
    members: BTreeMap<i64, Member>,
    in_flight: Vec<Flight>,
    /// Print every event (set `FK_ELECTION_TRACE=1` when replaying a seed).
    trace: bool,
}

enum Event {
    Deliver(usize),
    Look(i64),
    Tick(i64),
    RoleCheck(i64),
}

impl Net {
    /// Members `voters` (participants) and `observers`, each with random facts, starting within the
    /// weather's spread.
    fn new(seed: u64, weather: Weather, voters: &[i64], observers: &[i64]) -> Net {
        let mut rng = Rng::new(seed);
        let voter_set: BTreeSet<i64> = voters.iter().copied().collect();
        let mut members = BTreeMap::new();
        for &id in voters.iter().chain(observers) {
            let settings = ElectionSettings {
                my_id: id,
                voters: voter_set.clone(),
                observer: observers.contains(&id),
                finalize_wait_ms: FINALIZE_WAIT_MS,
                max_notification_interval_ms: 2_000,
                config: b"version=0".to_vec(),
            };
            let epoch = rng.below(3) as i64;
            let facts = MyFacts { current_epoch: epoch, last_zxid: (epoch << 32) + rng.below(4) as i64 };
            let look_at_ms = Some(rng.below(weather.start_spread_ms));
            members.insert(
                id,
                Member { settings, election: None, facts, decided: None, look_at_ms, role_check_at_ms: None },
            );
        }
        let trace = std::env::var_os("FK_ELECTION_TRACE").is_some();
        Net { seed, weather, rng, now_ms: 0, seq: 0, members, in_flight: Vec::new(), trace }
    }

    /// The earliest pending event; messages first at equal times (their order among themselves comes
    /// from their random delays and sequence numbers).
    fn next_event(&self) -> Option<(u64, Event)> {
        let mut best: Option<(u64, Event)> = None;
        let mut consider = |at: u64, event: Event| {
            if best.as_ref().is_none_or(|(t, _)| at < *t) {
                best = Some((at, event));
            }
        };
        if let Some((i, f)) = self.in_flight.iter().enumerate().min_by_key(|(_, f)| (f.at_ms, f.seq)) {
            consider(f.at_ms, Event::Deliver(i));
        }
        for (&id, m) in &self.members {
            if let Some(at) = m.look_at_ms {
                consider(at, Event::Look(id));
            }
            if let Some(at) = m.election.as_ref().and_then(Election::next_deadline_ms) {
                consider(at, Event::Tick(id));
            }
            if let Some(at) = m.role_check_at_ms {
                consider(at, Event::RoleCheck(id));
            }
        }
        best
    }

    /// Runs until nothing is left to happen: every live member decided and every message delivered.
    fn settle(&mut self) {
        for _ in 0..EVENTS_MAX {
            let Some((at, event)) = self.next_event() else { return };
            self.now_ms = self.now_ms.max(at);
            let now = self.now_ms;
            let (id, outputs) = match event {
                Event::Deliver(i) => {
                    let f = self.in_flight.swap_remove(i);
                    let Some(election) = self.members.get_mut(&f.to).and_then(|m| m.election.as_mut()) else {
                        continue; // the receiver is down: lost
                    };
                    if self.trace {
                        let n = &f.notification;
                        eprintln!(
                            "{now:>6} {} <- {}: {:?} {:?} round {}",
                            f.to, f.from, n.state, n.vote, n.election_epoch
                        );
                    }
                    (f.to, election.receive(now, f.from, f.notification))
                }
                Event::RoleCheck(id) => {
                    self.members.get_mut(&id).unwrap().role_check_at_ms = None;
                    if !self.role_holds(id) {
                        self.abandon_role(id);
                    } else if self.members[&id].decided.is_some_and(|d| d.state == ServerState::Leading) {
                        self.assert_sole_established_leader(id);
                    }
                    continue;
                }
                Event::Look(id) => {
                    let m = self.members.get_mut(&id).expect("member");
                    (m.look_at_ms, m.decided, m.role_check_at_ms) = (None, None, None);
                    let settings = m.settings.clone();
                    let election = m.election.get_or_insert_with(|| Election::new(settings));
                    if self.trace {
                        eprintln!("{now:>6} {id} looks with {:?}", m.facts);
                    }
                    (id, election.look(now, m.facts))
                }
                Event::Tick(id) => {
                    if self.trace {
                        eprintln!("{now:>6} {id} tick");
                    }
                    (id, self.members.get_mut(&id).unwrap().election.as_mut().unwrap().tick(now))
                }
            };
            self.dispatch(id, outputs);
        }
        panic!("seed {}: no settlement after {EVENTS_MAX} events (t={} ms)", self.seed, self.now_ms);
    }

    fn dispatch(&mut self, from: i64, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, notification } => {
                    assert_ne!(to, from, "seed {}: the machine sends to itself internally", self.seed);
                    if self.rng.below(100) < self.weather.loss_percent {
                        continue;
                    }
                    let at_ms = self.now_ms + 1 + self.rng.below(self.weather.delay_max_ms);
                    self.seq += 1;
                    self.in_flight.push(Flight { at_ms, seq: self.seq, from, to, notification });
                }
                Output::Decided(decision) => {
                    if self.trace {
                        eprintln!("{:>6} {from} DECIDED {decision:?}", self.now_ms);
                    }
                    let m = self.members.get_mut(&from).unwrap();
                    assert!(m.decided.is_none(), "seed {}: {from} decided twice in one round", self.seed);
                    m.decided = Some(decision);
                    m.role_check_at_ms = Some(self.now_ms + ROLE_ESTABLISH_MS);
                }
            }
        }
    }

    /// Whether `id`'s decided role works: a learner's leader is up and leading; a leader has a quorum
    /// of voters (itself included) following it.
    fn role_holds(&self, id: i64) -> bool {
        let Some(decision) = self.members[&id].decided else { return true };
        let leader = decision.vote.leader;
        if decision.state != ServerState::Leading {
            let leader = self.members.get(&leader).and_then(|m| m.decided);
            return leader.is_some_and(|d| d.state == ServerState::Leading);
        }
        let voters = &self.members[&id].settings.voters;
        let following = |m: &Member| m.decided.is_some_and(|d| d.vote.leader == leader);
        let backing = self.members.iter().filter(|(sid, m)| voters.contains(sid) && following(m)).count();
        backing > voters.len() / 2
    }

    /// No other member leads with a quorum behind it while `id` does.
    fn assert_sole_established_leader(&self, id: i64) {
        for (&other, m) in &self.members {
            let leads = m.decided.is_some_and(|d| d.state == ServerState::Leading);
            assert!(
                other == id || !leads || !self.role_holds(other),
                "seed {}: {id} and {other} both lead with a quorum at {} ms",
                self.seed,
                self.now_ms
            );
        }
    }

    /// `id` gives its role up and looks again; a leader's learners lose it and look again soon after.
    fn abandon_role(&mut self, id: i64) {
        if self.trace {
            eprintln!("{:>6} {id} gives up its role", self.now_ms);
        }
        let was_leading = self.members[&id].decided.is_some_and(|d| d.state == ServerState::Leading);
        self.members.get_mut(&id).unwrap().look_at_ms = Some(self.now_ms);
        if !was_leading {
            return;
        }
        for (&sid, m) in self.members.iter_mut() {
            if sid != id && m.look_at_ms.is_none() && m.decided.is_some_and(|d| d.vote.leader == id) {
                m.look_at_ms = Some(self.now_ms + 1 + self.rng.below(100));
            }
        }
    }

    /// Every live member decided on one leader, which leads; voters follow it, observers observe it.
    fn agreed_leader(&self) -> i64 {
        let seed = self.seed;
        let live: Vec<(&i64, &Member)> = self.members.iter().filter(|(_, m)| m.election.is_some()).collect();
        let leader = live[0].1.decided.unwrap_or_else(|| panic!("seed {seed}: {} undecided", live[0].0)).vote.leader;
        for (id, m) in &live {
            let d = m.decided.unwrap_or_else(|| panic!("seed {seed}: {id} undecided"));
            assert_eq!(d.vote.leader, leader, "seed {seed}: {id} chose {} not {leader}", d.vote.leader);
            let expected = if **id == leader {
                ServerState::Leading
            } else if m.settings.observer {
                ServerState::Observing
            } else {
                ServerState::Following
            };
            assert_eq!(d.state, expected, "seed {seed}: member {id}");
            let election = m.election.as_ref().unwrap();
            assert_eq!((election.state(), election.current_vote()), (d.state, d.vote), "seed {seed}: {id}");
        }
        let leading = live.iter().filter(|(_, m)| m.decided.is_some_and(|d| d.state == ServerState::Leading)).count();
        assert_eq!(leading, 1, "seed {seed}: exactly one member leads");
        leader
    }

    /// The best (peer epoch, zxid, sid) among live voters.
    fn best_live_voter(&self) -> i64 {
        let candidates = self.members.iter().filter(|(_, m)| m.election.is_some() && !m.settings.observer);
        let (id, _) = candidates.max_by_key(|(id, m)| (m.facts.current_epoch, m.facts.last_zxid, **id)).unwrap();
        *id
    }

    /// The ZAB phase that follows a decision, as far as the election sees it: every member reaches the
    /// new epoch and the leader writes a little; followers may lag behind by a few txns.
    fn establish_epoch(&mut self) {
        let epoch = self.members.values().map(|m| m.facts.current_epoch).max().unwrap() + 1;
        for m in self.members.values_mut() {
            let election = m.election.as_mut().unwrap();
            election.update_election_vote(epoch);
            m.facts = MyFacts { current_epoch: epoch, last_zxid: (epoch << 32) + 1 + self.rng.below(3) as i64 };
        }
    }

    fn crash(&mut self, id: i64) {
        let m = self.members.get_mut(&id).unwrap();
        (m.election, m.decided, m.look_at_ms, m.role_check_at_ms) = (None, None, None, None);
    }

    /// The members whose role ended (their leader is gone) look again, within `spread_ms`.
    fn roles_end(&mut self, spread_ms: u64) {
        let now = self.now_ms;
        for m in self.members.values_mut() {
            if m.election.is_some() {
                m.role_check_at_ms = None;
                m.look_at_ms = Some(now + 1 + self.rng.below(spread_ms));
            }
        }
    }

    fn restart(&mut self, id: i64, delay_ms: u64) {
        self.members.get_mut(&id).unwrap().look_at_ms = Some(self.now_ms + delay_ms);
    }
}

/// One full run: elect, settle the epoch, crash the leader, re-elect among the rest, restart the old
/// leader's machine, which must join the sitting leader.
fn run_seed(seed: u64, weather: Weather, voters: &[i64], observers: &[i64]) {
    let mut net = Net::new(seed, weather, voters, observers);
    net.settle();
    let first = net.agreed_leader();
    if weather.start_spread_ms <= 1 && weather.loss_percent == 0 {
        // Everyone hears everyone well inside the finalize wait: the best candidate must win.
        assert_eq!(first, net.best_live_voter(), "seed {seed}: simultaneous start elects the best");
    }

    net.establish_epoch();
    net.crash(first);
    net.roles_end(100);
    net.settle();
    let second = net.agreed_leader();
    assert_ne!(second, first, "seed {seed}: the crashed leader cannot be re-elected");

    net.restart(first, 500);
    net.settle();
    assert_eq!(net.agreed_leader(), second, "seed {seed}: the restarted member joins the sitting leader");
    let rejoined = net.members[&first].decided.unwrap();
    assert!(rejoined.state == ServerState::Following && rejoined.vote.leader == second, "seed {seed}");
}

#[test]
fn three_members_agree_on_one_leader_across_a_leader_restart() {
    for seed in 0..200 {
        run_seed(seed, CALM, &[1, 2, 3], &[]);
    }
}

#[test]
fn five_members_agree_on_one_leader_across_a_leader_restart() {
    for seed in 0..200 {
        run_seed(seed, CALM, &[1, 2, 3, 4, 5], &[]);
    }
}

#[test]
fn staggered_starts_join_whoever_leads() {
    for seed in 0..100 {
        run_seed(seed, STAGGERED, &[1, 2, 3], &[]);
        run_seed(seed, STAGGERED, &[1, 2, 3, 4, 5], &[]);
    }
}

#[test]
fn lost_messages_are_made_up_by_resends() {
    for seed in 0..100 {
        run_seed(seed, LOSSY, &[1, 2, 3], &[]);
        run_seed(seed, LOSSY, &[1, 2, 3, 4, 5], &[]);
    }
}

#[test]
fn observers_learn_the_leader_and_never_lead() {
    for seed in 0..100 {
        run_seed(seed, CALM, &[1, 2, 3], &[9]);
        run_seed(seed, STAGGERED, &[1, 2, 3], &[8, 9]);
    }
}

/// Replays one run: `FK_ELECTION_SEED=<seed> FK_ELECTION_TRACE=1 cargo test -p ferrokeeper --lib
/// election::network_tests::replay -- --ignored --nocapture` (weather and size in the code below).
#[test]
#[ignore]
fn replay() {
    let seed = std::env::var("FK_ELECTION_SEED").map_or(0, |s| s.parse().expect("a number"));
    let weather = match std::env::var("FK_ELECTION_WEATHER").as_deref() {
        Ok("staggered") => STAGGERED,
        Ok("lossy") => LOSSY,
        _ => CALM,
    };
    let voters: Vec<i64> =
        (1..=std::env::var("FK_ELECTION_VOTERS").map_or(3, |s| s.parse().expect("a number"))).collect();
    let observers: Vec<i64> =
        std::env::var("FK_ELECTION_OBSERVERS").map_or(vec![], |s| s.split(',').map(|x| x.parse().unwrap()).collect());
    run_seed(seed, weather, &voters, &observers);
}
