//! One simulated run: members, clients and the network between them on one virtual clock, every choice
//! drawn from the seed. Events (a message delivered, an fsync finished, a timer, a fault) are taken in
//! (time, sequence) order, so a seed replays the same run bit for bit.
//!
//! The network: every pair of endpoints is a FIFO channel (TCP) with a random delay; a partition drops
//! what crosses it (election notifications and quorum packets alike), so the ZAB timeouts find it as
//! they find a real one; a crash breaks its connections (the peers see them close, as the kernel's RST
//! tells them) and loses what it had queued but not yet written; a power loss also loses each machine's
//! unsynced pages. Each member's disk is the production storage engine on its own simulated filesystem
//! ([`super::fs::SimFs`]; with storage faults: failed fsyncs, machines dying inside one, bits flipped).
//!
//! A run has a fault phase (faults drawn from the seed's mix: crashes and restarts, partitions, slow
//! fsyncs, slow or duplicating networks, broken quorum connections), then a healing phase (every member
//! up, the network whole) in which the ensemble must converge, and then the checkers run.

use std::collections::{BTreeMap, BTreeSet};

use ferrokeeper::config::PeerRole;
use ferrokeeper::election::outbox::PeerOutbox;
use ferrokeeper::election::{ElectionSettings, FINALIZE_WAIT_MS, MAX_NOTIFICATION_INTERVAL_MS};
use ferrokeeper::member::MemberSettings;
use ferrokeeper::membership::Membership;
use ferrokeeper::planted::PlantedBug;
use ferrokeeper::prep::PrepSettings;
use ferrokeeper::sequencer::{Now, SequencerSettings};
use ferrokeeper::zab::{Limits, LinkId, Sid};
use fk_net::quorum::ServerState;

use super::admin::{AdminOut, EnsembleView, Reconfigurer, server_value};
use super::client::{ClientOut, SimClient};
use super::faults::{Fault, FaultKind, FaultMix};
use super::fs::FsFaults;
use super::history::History;
use super::member::{ConnId, Ctx, FromClient, Out, PeerMsg, SimMember, ToClient};
use super::rng::Rng;

/// The ensemble's timing, in virtual milliseconds.
const TICK_MS: u64 = 100;
const INIT_LIMIT: u64 = 10;
const SYNC_LIMIT: u64 = 5;
/// Events a run may take: a few hundred thousand at most in a healthy run; far more is a storm of
/// messages (a livelock), reported instead of running forever.
const EVENTS_MAX: u64 = 5_000_000;
/// The wall clock at time zero (txn times and session ids come from it).
const WALL_START_MS: i64 = 1_767_225_600_000;

/// What one run looks like.
#[derive(Debug, Clone)]
pub struct Options {
    pub voters: usize,
    pub observers: usize,
    pub clients: usize,
    /// How long faults are injected.
    pub fault_ms: u64,
    /// How long the healed ensemble gets to converge before the checks.
    pub heal_ms: u64,
    /// Which faults may be drawn; `None`: the seed chooses a mix (swarm testing).
    pub faults: Option<FaultMix>,
    /// The storage faults ([`FaultKind::STORAGE`]) on top of the mix.
    pub storage_faults: bool,
    /// A deliberate bug to run with (the checkers' own tests).
    pub planted: Option<PlantedBug>,
    /// reconfigEnabled, and an operator that reconfigures the ensemble during the fault phase.
    pub reconfig: bool,
    /// Members outside the initial membership (each starts as a joiner does: the membership plus
    /// itself), for reconfigurations to add.
    pub spares: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            voters: 3,
            observers: 0,
            clients: 5,
            fault_ms: 8_000,
            heal_ms: 8_000,
            faults: None,
            storage_faults: false,
            planted: None,
            reconfig: false,
            spares: 0,
        }
    }
}

/// An endpoint of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Member(usize),
    Client(usize),
    /// The operator's connection.
    Admin,
}

#[derive(Debug)]
enum Event {
    Peer {
        from: usize,
        to: usize,
        incarnation: u64,
        msg: PeerMsg,
    },
    FromClient {
        member: usize,
        incarnation: u64,
        conn: ConnId,
        msg: FromClient,
    },
    /// To a client or the operator.
    ToClient {
        to: Node,
        conn: ConnId,
        msg: ToClient,
    },
    Fsync {
        member: usize,
        incarnation: u64,
        generation: u64,
        count: usize,
    },
    MemberWake {
        member: usize,
        incarnation: u64,
    },
    /// Only the newest wake of a client counts (`token`).
    ClientWake {
        client: usize,
        token: u64,
    },
    /// Clients stop making requests: the quiet end of the run.
    StopClients,
    /// The operator's turn: a reconfiguration, or giving up on one.
    Reconfigure,
    Fault(Fault),
    /// A crashed member comes back.
    Restart {
        member: usize,
    },
    Heal,
}

/// Counts of what a run did, for the soak's summary.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub events: u64,
    pub faults: BTreeMap<FaultKind, u64>,
    pub elections_won: u64,
    /// Bits flipped by [`FaultKind::Damage`] (one drawn may be skipped: see `may_damage`).
    pub flips: u64,
}

pub struct World {
    now: u64,
    seq: u64,
    rng: Rng,
    queue: BTreeMap<(u64, u64), Event>,
    pub members: Vec<SimMember>,
    pub clients: Vec<SimClient>,
    pub history: History,
    /// Directions (from, to) in which nothing gets through.
    cut: BTreeSet<(usize, usize)>,
    /// When the last message on each channel is delivered (FIFO).
    channel_free_at: BTreeMap<(Node, Node), u64>,
    /// Each member's next timer, so that a wake is scheduled once.
    wake_at: Vec<Option<u64>>,
    client_wake_token: Vec<u64>,
    /// Each member's election outbox for each other: the simulated connection takes every notification
    /// at once, and a healed cut is a new connection, which resends the last one (the production rule).
    election_outboxes: BTreeMap<(usize, usize), PeerOutbox<fk_net::quorum::Notification>>,
    /// Quorum connections that lost a message to a cut: (member, its incarnation, its link id). TCP
    /// never delivers past a gap, so nothing more arrives on them.
    broken: BTreeSet<(usize, u64, LinkId)>,
    /// Which member leads each established epoch.
    pub leaders: BTreeMap<i64, Sid>,
    /// Each client connection's two ends: the client (or operator) and the member.
    conn_member: BTreeMap<ConnId, (Node, usize)>,
    admin: Reconfigurer,
    next_conn: ConnId,
    mix: FaultMix,
    slow_fsync_until: u64,
    slow_network_until: u64,
    /// Clients say nothing until then (an expiry storm).
    clients_quiet_until: u64,
    /// How far each member's wall clock is off.
    wall_offset_ms: Vec<i64>,
    healed: bool,
    end_at: u64,
    pub figures: Figures,
    /// Safety violations seen while running (checked again at the end).
    pub failures: Vec<String>,
    options: Options,
}

/// The membership a run starts with: its voters, then its observers, unversioned.
pub fn initial_membership(options: &Options) -> Membership {
    let sids = 1..=(options.voters + options.observers) as u64;
    let text: String = sids
        .map(|sid| {
            let role = if sid as usize > options.voters { PeerRole::Observer } else { PeerRole::Participant };
            format!("server.{sid}={}\n", server_value(sid, role))
        })
        .collect();
    Membership::parse(&format!("{text}version=0")).expect("the simulator writes memberships it can read")
}

/// The membership member `sid` starts with: the initial one, plus itself as a participant for a spare
/// (as a Kubernetes operator's new pod starts: the members it found, and itself).
fn startup_membership(sid: u64, options: &Options) -> Membership {
    let initial = initial_membership(options);
    if initial.server(sid).is_some() {
        return initial;
    }
    let text = initial
        .text()
        .replace("version=0", &format!("server.{sid}={}\nversion=0", server_value(sid, PeerRole::Participant)));
    Membership::parse(&text).expect("the simulator writes memberships it can read")
}

fn member_settings(index: usize, options: &Options, standalone_enabled: bool) -> MemberSettings {
    let all = options.voters + options.observers + options.spares;
    let my_id = index as Sid + 1;
    let mut settings = MemberSettings {
        election: ElectionSettings {
            my_id,
            voters: (1..=options.voters as Sid).collect(),
            observer: index >= options.voters,
            finalize_wait_ms: FINALIZE_WAIT_MS,
            max_notification_interval_ms: MAX_NOTIFICATION_INTERVAL_MS,
            config: b"version=0".to_vec(),
        },
        peers: (1..=all as Sid).filter(|&id| id != my_id).collect(),
        limits: Limits { tick_ms: TICK_MS, init_limit_ticks: INIT_LIMIT, sync_limit_ticks: SYNC_LIMIT },
        sequencer: SequencerSettings {
            prep: PrepSettings {
                extended_types: true,
                // The operator may write /zookeeper/config (ZooKeeper's skipACL; the clients' nodes are
                // open to all anyway).
                skip_acl: options.reconfig,
                reconfig_enabled: options.reconfig,
                ..PrepSettings::default()
            },
            server_id: my_id as u8,
            tick_ms: TICK_MS,
            min_session_timeout_ms: (2 * TICK_MS) as u32,
            max_session_timeout_ms: (20 * TICK_MS) as u32 * 4,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
        },
        standalone_enabled,
    };
    if options.reconfig {
        // A joiner's startup membership names it; the election counts what its membership says.
        let membership = startup_membership(my_id as u64, options);
        let election = &mut settings.election;
        election.voters = membership.voters();
        election.observer = membership.server(my_id as u64).is_some_and(|s| s.role == PeerRole::Observer);
        election.config = membership.text().into_bytes();
        settings.peers = membership.servers().map(|s| s.id as Sid).filter(|&id| id != my_id).collect();
    }
    settings
}

impl World {
    pub fn new(seed: u64, options: Options) -> World {
        let mut rng = Rng::new(seed);
        let mut mix = options.faults.clone().unwrap_or_else(|| FaultMix::drawn(&mut rng));
        if options.storage_faults {
            for kind in FaultKind::STORAGE {
                if !mix.kinds.contains(&kind) {
                    mix.kinds.push(kind);
                }
            }
        }
        let all = options.voters + options.observers + options.spares;
        // A reconfiguring run draws standaloneEnabled: with it off an ensemble may shrink to one voter.
        let standalone_enabled = !options.reconfig || rng.chance(0.5);
        // Per fsync; rare enough that a run still makes progress between them.
        let disk_faults = if options.storage_faults {
            let (eio, crash_in_sync) = (*rng.pick(&[0.0, 0.001, 0.005]), *rng.pick(&[0.0, 0.0005, 0.002]));
            let enospc = *rng.pick(&[0.0, 0.0005]);
            // In order: sectors kept out of order damage a member (a record torn before a whole one), and
            // whole-machine crashes could damage a majority, beyond what may_damage bounds.
            FsFaults { eio, crash_in_sync, enospc, reorder: false }
        } else {
            FsFaults::NONE
        };
        let members = (0..all)
            .map(|i| {
                let settings = member_settings(i, &options, standalone_enabled);
                SimMember::new(i, settings, options.reconfig, disk_faults, &mut rng)
            })
            .collect();
        let clients = (0..options.clients).map(SimClient::new).collect();
        let end_at = options.fault_ms + options.heal_ms;
        let mut world = World {
            now: 0,
            seq: 0,
            rng,
            queue: BTreeMap::new(),
            members,
            clients,
            history: History::new(),
            cut: BTreeSet::new(),
            channel_free_at: BTreeMap::new(),
            wake_at: vec![None; all],
            client_wake_token: vec![0; options.clients],
            election_outboxes: BTreeMap::new(),
            broken: BTreeSet::new(),
            leaders: BTreeMap::new(),
            conn_member: BTreeMap::new(),
            admin: Reconfigurer::default(),
            next_conn: 0,
            mix,
            slow_fsync_until: 0,
            slow_network_until: 0,
            clients_quiet_until: 0,
            wall_offset_ms: vec![0; all],
            healed: false,
            end_at,
            figures: Figures::default(),
            failures: Vec::new(),
            options,
        };
        let founders = world.options.voters + world.options.observers;
        for member in 0..all {
            // Spares come later, as an operator's new pods do.
            let at = if member < founders { world.rng.below(50) } else { world.rng.between(1_000, 4_000) };
            world.schedule(at, Event::Restart { member });
        }
        if world.options.reconfig {
            let at = world.rng.between(1_500, 2_500);
            world.schedule(at, Event::Reconfigure);
        }
        for client in 0..world.clients.len() {
            let at = 300 + world.rng.below(300);
            world.schedule_client_wake(client, at);
        }
        let first_fault = world.next_fault_delay();
        world.schedule(first_fault, Event::Fault(Fault::Draw));
        let heal_at = world.options.fault_ms;
        world.schedule(heal_at, Event::Heal);
        let quiet_at = heal_at + world.options.heal_ms / 2;
        world.schedule(quiet_at, Event::StopClients);
        world
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn mix(&self) -> &FaultMix {
        &self.mix
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    /// Runs the fault and healing phases, then on until the ensemble has converged (every member
    /// serving the same tree under one leader) or `settle_ms` more have passed. Err: what went wrong.
    pub fn run(&mut self, settle_ms: u64) -> Result<(), String> {
        self.run_until(self.end_at, false)?;
        self.run_until(self.end_at + settle_ms, true)?;
        self.converged()
    }

    fn run_until(&mut self, end: u64, until_converged: bool) -> Result<(), String> {
        while let Some((&(at, _), _)) = self.queue.first_key_value() {
            if at > end || (until_converged && self.converged().is_ok()) {
                break;
            }
            if self.figures.events >= EVENTS_MAX {
                return Err(format!(
                    "{EVENTS_MAX} events by t={} ms ({} queued): messages without end, a livelock?",
                    self.now,
                    self.queue.len()
                ));
            }
            let (_, event) = self.queue.pop_first().expect("peeked");
            self.now = at;
            self.figures.events += 1;
            self.dispatch(event);
            self.collect_member_failures();
            if !self.failures.is_empty() {
                return Err(self.failures.join("\n"));
            }
        }
        Ok(())
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), event);
    }

    /// Member `i`'s clocks.
    fn clocks(&self, i: usize) -> Now {
        Now { mono_ms: self.now, wall_ms: WALL_START_MS + self.now as i64 + self.wall_offset_ms[i] }
    }

    /// Whether what `from` sends reaches `to`.
    fn reachable(&self, from: usize, to: usize) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Cuts `from → to` for `length` ms.
    fn cut_for(&mut self, from: usize, to: usize, length: u64) {
        self.cut.insert((from, to));
        self.schedule(length, Event::Fault(Fault::Rejoin(from, to)));
    }

    /// The peers member `i`'s election links reach: up and not cut off either way (a TCP connection
    /// needs both directions).
    fn connected_peers(&self, i: usize) -> Vec<Sid> {
        (0..self.members.len())
            .filter(|&j| j != i && self.members[j].is_up() && self.reachable(i, j) && self.reachable(j, i))
            .map(|j| self.members[j].sid)
            .collect()
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Peer { from, to, incarnation, msg } => self.deliver_peer(from, to, incarnation, msg),
            Event::FromClient { member, incarnation, conn, msg } => {
                if self.members[member].incarnation != incarnation || !self.members[member].is_up() {
                    if !matches!(msg, FromClient::Close) {
                        self.refuse_client(conn);
                    }
                    return;
                }
                self.with_member(member, |m, cx| m.on_client(cx, conn, msg));
            }
            Event::ToClient { to: Node::Client(client), conn, msg } => {
                let (now, mut rng) = (self.now, self.rng.fork());
                match self.clients[client].receive(now, &mut rng, conn, msg, &mut self.history) {
                    Ok(out) => self.client_outs(client, out),
                    Err(e) => self.failures.push(e),
                }
                self.wake_client_soon(client);
            }
            Event::ToClient { to, conn, msg } => {
                assert_eq!(to, Node::Admin, "members are not sent client messages");
                self.admin.receive(conn, msg);
            }
            Event::Fsync { member, incarnation, generation, count } => {
                if self.members[member].incarnation == incarnation {
                    self.with_member(member, |m, cx| m.on_fsync(cx, generation, count));
                }
            }
            Event::MemberWake { member, incarnation } => {
                if self.members[member].incarnation == incarnation {
                    self.wake_at[member] = None;
                    self.with_member(member, |m, cx| m.on_wake(cx));
                }
            }
            Event::ClientWake { client, token } => {
                if self.client_wake_token[client] == token {
                    self.client_wake(client);
                }
            }
            Event::StopClients => self.stop_clients(),
            Event::Reconfigure => self.reconfigure(),
            Event::Fault(fault) => self.fault(fault),
            Event::Restart { member } => {
                if !self.members[member].is_up() {
                    self.with_member(member, |m, cx| m.start(cx));
                }
            }
            Event::Heal => self.heal(),
        }
    }

    /// A message between members: lost if it crosses a cut (a quorum connection then hangs for good
    /// in both directions), or if the receiver died since it was sent.
    fn deliver_peer(&mut self, from: usize, to: usize, incarnation: u64, msg: PeerMsg) {
        if self.members[to].incarnation != incarnation {
            return;
        }
        let links = match &msg {
            PeerMsg::Packet { link, from_link, .. } | PeerMsg::Snapshot { link, from_link, .. } => {
                Some((*link, Some(*from_link)))
            }
            PeerMsg::QuorumAccepted { link, .. } | PeerMsg::QuorumClosed { link } | PeerMsg::QuorumRefused { link } => {
                Some((*link, None))
            }
            PeerMsg::Notify(_) | PeerMsg::QuorumConnect { .. } => None,
        };
        let from_incarnation = self.members[from].incarnation;
        if !self.reachable(from, to) {
            if let Some((link, from_link)) = links {
                self.broken.insert((to, incarnation, link));
                if let Some(from_link) = from_link {
                    self.broken.insert((from, from_incarnation, from_link));
                }
            }
            return;
        }
        if let Some((link, _)) = links
            && self.broken.contains(&(to, incarnation, link))
        {
            return;
        }
        let sid = self.members[from].sid;
        self.with_member(to, |m, cx| m.on_peer(cx, from, sid, msg));
    }

    /// Runs `f` on member `i` with a fresh view of who it reaches, then routes what it sent.
    fn with_member(&mut self, i: usize, f: impl FnOnce(&mut SimMember, &mut Ctx<'_>)) {
        let _span = tracing::info_span!("member", sid = self.members[i].sid, t = self.now).entered();
        self.members[i].connected = self.connected_peers(i);
        let mut out = Vec::new();
        let mut cx = Ctx { now: self.clocks(i), out: &mut out };
        f(&mut self.members[i], &mut cx);
        for o in out {
            if let Out::Died = o {
                // Nothing it sent after dying leaves.
                tracing::info!(member = self.members[i].sid, "died");
                self.crash(i);
                let downtime = self.rng.between(50, 1_000);
                self.schedule(downtime, Event::Restart { member: i });
                break;
            }
            self.route(i, o);
        }
        self.schedule_member_wake(i);
    }

    fn schedule_member_wake(&mut self, i: usize) {
        let Some(at) = self.members[i].next_deadline_ms() else { return };
        let at = at.max(self.now + 1);
        if self.wake_at[i].is_some_and(|w| w <= at && w > self.now) {
            return;
        }
        self.wake_at[i] = Some(at);
        let incarnation = self.members[i].incarnation;
        self.schedule(at - self.now, Event::MemberWake { member: i, incarnation });
    }

    /// A delay on channel `from → to`, never overtaking what is already on its way.
    fn delivery_delay(&mut self, from: Node, to: Node) -> u64 {
        let slow = self.now < self.slow_network_until;
        let delay = if slow { self.rng.between(5, 150) } else { self.rng.between(1, 4) };
        let free_at = self.channel_free_at.get(&(from, to)).copied().unwrap_or(0);
        let at = (self.now + delay).max(free_at);
        self.channel_free_at.insert((from, to), at);
        at - self.now
    }

    fn route(&mut self, from: usize, out: Out) {
        match out {
            Out::Peer { to, msg } => {
                // Whether a cut loses it is decided when it would arrive ([`World::deliver_peer`]):
                // a connection either delivers in order or hangs for good, never skips a message.
                // A peer not listening refuses a quorum connection at once (its kernel answers).
                if !self.members[to].is_up()
                    && self.reachable(from, to)
                    && let PeerMsg::QuorumConnect { link } = msg
                {
                    let delay = self.delivery_delay(Node::Member(to), Node::Member(from));
                    let incarnation = self.members[from].incarnation;
                    let msg = PeerMsg::QuorumRefused { link };
                    self.schedule(delay, Event::Peer { from: to, to: from, incarnation, msg });
                    return;
                }
                let msg = match msg {
                    PeerMsg::Notify(notification) => {
                        let outbox = self.election_outboxes.entry((from, to)).or_default();
                        outbox.queue(notification);
                        PeerMsg::Notify(outbox.take().expect("just queued"))
                    }
                    msg => msg,
                };
                let incarnation = self.members[to].incarnation;
                let delay = self.delivery_delay(Node::Member(from), Node::Member(to));
                self.schedule(delay, Event::Peer { from, to, incarnation, msg });
            }
            Out::Client { conn, msg } => {
                let Some(&(to, _)) = self.conn_member.get(&conn) else { return };
                if matches!(msg, ToClient::Closed | ToClient::Expired) {
                    self.conn_member.remove(&conn);
                }
                let delay = self.delivery_delay(Node::Member(from), to);
                self.schedule(delay, Event::ToClient { to, conn, msg });
            }
            Out::Died => unreachable!("handled by with_member"),
            Out::Fsync { generation } => {
                let slow = self.now < self.slow_fsync_until;
                let delay = if slow { self.rng.between(20, 300) } else { self.rng.between(1, 5) };
                let count = self.members[from].fsync_size();
                let incarnation = self.members[from].incarnation;
                self.schedule(delay, Event::Fsync { member: from, incarnation, generation, count });
            }
            Out::Established { epoch } => {
                self.figures.elections_won += 1;
                let sid = self.members[from].sid;
                if let Some(other) = self.leaders.insert(epoch, sid)
                    && other != sid
                {
                    self.failures.push(format!("two leaders established epoch {epoch}: members {other} and {sid}"));
                }
            }
        }
    }

    fn refuse_client(&mut self, conn: ConnId) {
        let Some((to, member)) = self.conn_member.remove(&conn) else { return };
        let delay = self.delivery_delay(Node::Member(member), to);
        self.schedule(delay, Event::ToClient { to, conn, msg: ToClient::Closed });
    }

    /// The operator's turn, through the member it is connected to (else one drawn among those up and
    /// reaching the leader), reading that member's `/zookeeper/config`; again a while later, until the
    /// fault phase ends.
    fn reconfigure(&mut self) {
        if self.healed {
            return;
        }
        let leader = self.leaders.last_key_value().map(|(_, &sid)| sid as usize - 1);
        let unhealthy: Vec<u64> = (0..self.members.len())
            .filter(|&m| {
                let cut_off = leader.is_some_and(|l| !self.reachable(l, m) || !self.reachable(m, l));
                !self.members[m].is_up() || cut_off
            })
            .map(|m| self.members[m].sid as u64)
            .collect();
        // The operator works through a member that answers it (any, if none seems to).
        let healthy: Vec<usize> =
            (0..self.members.len()).filter(|&m| !unhealthy.contains(&(self.members[m].sid as u64))).collect();
        let member = match (self.admin.member(), healthy.is_empty()) {
            (Some(member), _) => member,
            (None, true) => self.rng.below(self.members.len() as u64) as usize,
            (None, false) => *self.rng.pick(&healthy),
        };
        let membership = self.members[member].config_node();
        let ensemble =
            EnsembleView { slots: self.members.len() as u64, leader: leader.map(|l| l as u64 + 1), unhealthy };
        let (now, mut rng) = (self.now, self.rng.fork());
        let out = self.admin.act(now, &mut rng, member, membership, &ensemble, &mut self.next_conn);
        self.admin_outs(out);
        let next = self.rng.between(100, 800);
        self.schedule(next, Event::Reconfigure);
    }

    fn admin_outs(&mut self, outs: Vec<AdminOut>) {
        for out in outs {
            let (member, conn, msg) = match out {
                AdminOut::Connect { member, conn, request } => {
                    self.conn_member.insert(conn, (Node::Admin, member));
                    (member, conn, FromClient::Connect(request))
                }
                AdminOut::Send { member, conn, msg } => (member, conn, msg),
            };
            let delay = self.delivery_delay(Node::Admin, Node::Member(member));
            let incarnation = self.members[member].incarnation;
            self.schedule(delay, Event::FromClient { member, incarnation, conn, msg });
        }
    }

    /// The operator's answers so far, by code.
    pub fn reconfig_outcomes(&self) -> &BTreeMap<String, u64> {
        &self.admin.outcomes
    }

    fn client_wake(&mut self, client: usize) {
        let (now, members) = (self.now, self.members.len());
        let mut rng = self.rng.fork();
        let quiet = now < self.clients_quiet_until;
        let out = self.clients[client].wake(now, quiet, &mut rng, members, &mut self.next_conn, &mut self.history);
        self.client_outs(client, out);
        if self.clients[client].active {
            let next = self.clients[client].next_wake(now, &mut rng);
            self.schedule_client_wake(client, next - now);
        }
    }

    /// Schedules the client's next wake, replacing the one scheduled before.
    fn schedule_client_wake(&mut self, client: usize, delay: u64) {
        self.client_wake_token[client] += 1;
        let token = self.client_wake_token[client];
        self.schedule(delay, Event::ClientWake { client, token });
    }

    fn wake_client_soon(&mut self, client: usize) {
        let delay = self.rng.between(0, 5);
        self.schedule_client_wake(client, delay);
    }

    fn client_outs(&mut self, client: usize, outs: Vec<ClientOut>) {
        for out in outs {
            let (member, conn, msg) = match out {
                ClientOut::Connect { member, conn, request } => {
                    self.conn_member.insert(conn, (Node::Client(client), member));
                    (member, conn, FromClient::Connect(request))
                }
                ClientOut::Send { member, conn, msg } => (member, conn, msg),
            };
            let delay = self.delivery_delay(Node::Client(client), Node::Member(member));
            let incarnation = self.members[member].incarnation;
            self.schedule(delay, Event::FromClient { member, incarnation, conn, msg });
        }
    }

    fn next_fault_delay(&mut self) -> u64 {
        self.rng.between(100, 1_500)
    }

    fn fault(&mut self, fault: Fault) {
        if self.healed {
            return;
        }
        match fault {
            Fault::Draw => {
                if let Some(kind) = self.mix.draw(&mut self.rng) {
                    *self.figures.faults.entry(kind).or_default() += 1;
                    self.inject(kind);
                }
                let next = self.next_fault_delay();
                self.schedule(next, Event::Fault(Fault::Draw));
            }
            Fault::Rejoin(from, to) => {
                self.cut.remove(&(from, to));
                // The election connection, made again, starts by sending the last notification again:
                // the peer may get it twice.
                if self.mix.duplicate_notifications
                    && let Some(notification) = self.election_outboxes.get(&(from, to)).and_then(PeerOutbox::on_connect)
                {
                    let delay = self.delivery_delay(Node::Member(from), Node::Member(to));
                    let incarnation = self.members[to].incarnation;
                    let msg = PeerMsg::Notify(notification);
                    self.schedule(delay, Event::Peer { from, to, incarnation, msg });
                }
            }
        }
    }

    fn inject(&mut self, kind: FaultKind) {
        let n = self.members.len();
        match kind {
            FaultKind::Crash => {
                let member = self.rng.below(n as u64) as usize;
                self.crash(member);
                let downtime = self.rng.between(50, 3_000);
                self.schedule(downtime, Event::Restart { member });
            }
            FaultKind::PowerLoss => {
                for member in 0..n {
                    self.crash(member);
                    // The page cache goes with the machine.
                    self.members[member].disk.fs.crash();
                    let downtime = self.rng.between(50, 1_000);
                    self.schedule(downtime, Event::Restart { member });
                }
            }
            FaultKind::Partition => {
                // One side of at most a minority; sometimes the leader's side.
                let size = 1 + self.rng.below((n as u64 - 1) / 2 + 1) as usize;
                let mut side = BTreeSet::new();
                while side.len() < size.min(n - 1) {
                    side.insert(self.rng.below(n as u64) as usize);
                }
                let length = self.rng.between(100, 4_000);
                let sids: Vec<Sid> = side.iter().map(|&m| self.members[m].sid).collect();
                tracing::info!(side = ?sids, length, "fault: partition");
                for &a in &side {
                    for b in (0..n).filter(|b| !side.contains(b)) {
                        self.cut_for(a, b, length);
                        self.cut_for(b, a, length);
                    }
                }
            }
            FaultKind::BreakLinks => {
                if let Some((a, b)) = self.two_members() {
                    // A brief cut: connections between them break, both sides see it by timeout.
                    let length = self.rng.between(1, 50);
                    self.cut_for(a, b, length);
                    self.cut_for(b, a, length);
                }
            }
            FaultKind::OneWayCut => {
                if let Some((a, b)) = self.two_members() {
                    let length = self.rng.between(100, 3_000);
                    self.cut_for(a, b, length);
                }
            }
            FaultKind::SlowFsync => self.slow_fsync_until = self.now + self.rng.between(200, 3_000),
            FaultKind::SlowNetwork => self.slow_network_until = self.now + self.rng.between(200, 3_000),
            FaultKind::ClockJump => {
                let member = self.rng.below(n as u64) as usize;
                self.wall_offset_ms[member] += self.rng.between(0, 120_000) as i64 - 60_000;
            }
            FaultKind::ExpiryStorm => {
                self.clients_quiet_until = self.now + self.rng.between(3_000, 6_000);
            }
            FaultKind::Damage => {
                let member = self.rng.below(n as u64) as usize;
                if !self.may_damage(member) {
                    return;
                }
                let was_up = self.members[member].is_up();
                self.crash(member);
                let mut rng = self.rng.fork();
                let flipped = self.members[member].disk.flip_a_bit(&mut rng);
                tracing::info!(member = self.members[member].sid, ?flipped, "fault: a bit flipped");
                self.figures.flips += 1;
                if was_up {
                    let downtime = self.rng.between(50, 3_000);
                    self.schedule(downtime, Event::Restart { member });
                }
            }
        }
    }

    /// Whether `member` may be found damaged: only while the voters not damaged stay a quorum. A
    /// majority damaged at once can elect nobody until an operator steps in (ZooKeeper would not even
    /// start them) — beyond what recovery from the ensemble promises. Not in reconfiguring runs, where
    /// who votes changes under the count.
    fn may_damage(&self, member: usize) -> bool {
        let voters = self.options.voters;
        if self.options.reconfig || member >= voters {
            return !self.options.reconfig;
        }
        let damaged = (0..voters)
            .filter(|&m| m == member || self.members[m].disk.damaged() || self.members[m].disk.flip_unfound)
            .count();
        voters - damaged > voters / 2
    }

    /// Two members drawn at random; none when the draw picks one twice (a draw as the runs always
    /// made it, so seeds replay as before).
    fn two_members(&mut self) -> Option<(usize, usize)> {
        let n = self.members.len() as u64;
        let (a, b) = (self.rng.below(n) as usize, self.rng.below(n) as usize);
        (a != b).then_some((a, b))
    }

    /// SIGKILL: the process and its connections are gone.
    fn crash(&mut self, member: usize) {
        if !self.members[member].is_up() {
            return;
        }
        let (conns, links) = self.members[member].crash();
        self.wake_at[member] = None;
        for conn in conns {
            self.refuse_client(conn);
        }
        for (peer, link) in links {
            if self.reachable(member, peer) {
                let delay = self.delivery_delay(Node::Member(member), Node::Member(peer));
                let incarnation = self.members[peer].incarnation;
                let msg = PeerMsg::QuorumClosed { link };
                self.schedule(delay, Event::Peer { from: member, to: peer, incarnation, msg });
            }
        }
    }

    /// The end of the fault phase: the network whole, every member up; clients stop a little later.
    fn heal(&mut self) {
        self.healed = true;
        self.cut.clear();
        self.slow_fsync_until = 0;
        self.slow_network_until = 0;
        self.clients_quiet_until = 0;
        for member in 0..self.members.len() {
            self.members[member].set_storage_faults(FsFaults::NONE);
            if !self.members[member].is_up() {
                self.with_member(member, |m, cx| m.start(cx));
            }
        }
    }

    /// Clients stop issuing requests (the quiet end of a run before the final comparison).
    pub fn stop_clients(&mut self) {
        for client in &mut self.clients {
            client.active = false;
        }
    }

    fn collect_member_failures(&mut self) {
        for member in &mut self.members {
            self.failures.append(&mut member.failures);
        }
    }

    /// Whether every member is up, serving and applied to the same tree.
    pub fn converged(&self) -> Result<(), String> {
        let summaries: Vec<_> =
            self.members.iter().map(|m| (m.sid, m.state(), m.is_serving(), m.tree_summary())).collect();
        let leaders = summaries.iter().filter(|s| s.1 == Some(ServerState::Leading)).count();
        let all_serving = summaries.iter().all(|s| s.2);
        let trees: BTreeSet<_> = summaries.iter().map(|s| s.3).collect();
        if leaders == 1 && all_serving && trees.len() == 1 {
            return Ok(());
        }
        let mut report =
            format!("not converged at t={}: (member, state, serving, (digest, zxid)) = {summaries:?}", self.now);
        if self.options.reconfig {
            let memberships: Vec<_> = self.members.iter().map(|m| m.in_force().map(|m| m.text())).collect();
            report.push_str(&format!("; memberships in force: {memberships:?}"));
        }
        Err(report)
    }
}
