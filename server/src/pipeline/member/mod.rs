//! An ensemble member's protocol thread (ZooKeeper's `QuorumPeer.run`): it drives the pure election and
//! ZAB machines ([`crate::election`], [`crate::zab`]) and, while leading, the sequencer core; while
//! following, the [`Forwarder`](crate::sequencer::forwarder::Forwarder). It takes the same messages a standalone server's sequencer thread
//! takes (client writes, connects, touches), plus election notifications, quorum-port events and the
//! log stage's "persisted through z", and carries out what the machines decide: packets to peers,
//! epoch files, log appends, truncation, commit points for the applier.
//!
//! Between roles the member does not serve: clients are disconnected (they reconnect elsewhere or
//! later), and the txns logged but not known to be committed are applied too, so that the tree holds
//! everything logged, as ZooKeeper's `fastForwardDataBase` leaves it, before the next election. A
//! learner told to TRUNC, or given a snapshot, rebuilds the tree from disk instead.
//!
//! # Layout
//! - `leading`: the leader's role.
//! - `following`: a follower's or an observer's role.
//! - `recent`: the newest txns logged, for a new leader's DIFF history.

mod following;
mod leading;
mod recent;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use fk_engine::epoch::{ACCEPTED_EPOCH, CURRENT_EPOCH, load_epochs, write_epoch};
use fk_engine::recovery::recover;
use fk_engine::tree::TreeOptions;
use fk_net::quorum::{Notification, ServerState};
use tracing::{debug, info, warn};

use super::Mode;
use super::Shared;
use super::messages::*;
use super::quorum_link::LinkContext;
pub use super::quorum_link::QuorumEvent;
use super::sequencer::{BATCH_MAX, Clock, SequencerState};
use crate::election::{
    Decision, Election, ElectionSettings, FINALIZE_WAIT_MS, MAX_NOTIFICATION_INTERVAL_MS, MyFacts, Output,
};
use crate::peers::election_link::{ElectionLinks, Incoming, IncomingReceiver};
use crate::storage::Dirs;
use crate::zab::{Limits, LinkId, Sid};
use following::Following;
use leading::Leading;
use recent::RecentLog;

/// The pipeline's channels the member thread uses.
pub struct MemberChannels {
    /// Where the link threads send their events (the other end is `rx`).
    pub member_tx: Sender<SequencerMsg>,
    pub rx: Receiver<SequencerMsg>,
    /// Wake-ups from the log stage, and its durable watermark (see `log_stage::PersistedSignal`).
    pub persisted_rx: Receiver<()>,
    pub persisted: Arc<AtomicI64>,
    pub log: Sender<LogMsg>,
    pub applier: Sender<ApplierMsg>,
    pub routes: Sender<Vec<PendingRoute>>,
}

/// What the member thread is given at start.
pub struct MemberSetup {
    pub shared: Arc<Shared>,
    pub channels: MemberChannels,
    pub dirs: Dirs,
    pub election_links: ElectionLinks,
    pub election_rx: IncomingReceiver,
    /// The txns recovery replayed after the snapshot, oldest first.
    pub recent_txns: Vec<fk_net::txn::Txn>,
}

enum Role {
    Looking,
    Leading(Box<Leading>),
    Following(Box<Following>),
}

pub struct MemberThread {
    shared: Arc<Shared>,
    rx: Receiver<SequencerMsg>,
    persisted_rx: Receiver<()>,
    persisted: Arc<AtomicI64>,
    log: Sender<LogMsg>,
    applier: Sender<ApplierMsg>,
    routes: Sender<Vec<PendingRoute>>,
    dirs: Dirs,
    links: ElectionLinks,
    election_rx: IncomingReceiver,
    election: Election,
    link_context: LinkContext,
    clock: Clock,
    role: Role,
    next_link: LinkId,
    my_id: Sid,
    limits: Limits,
    /// Client inputs gathered this turn.
    inputs: Vec<SequencerInput>,
    /// Learners that connected before this member took the leadership, with when (dropped after
    /// `initLimit`).
    early_learners: Vec<(std::net::TcpStream, u64)>,
    /// Every other member, and those an election connection was ever made with.
    all_peers: BTreeSet<Sid>,
    ever_connected: BTreeSet<Sid>,
    recent: RecentLog,
}

impl MemberThread {
    pub fn new(setup: MemberSetup) -> MemberThread {
        let MemberSetup { shared, channels, dirs, election_links, election_rx, recent_txns } = setup;
        let MemberChannels { member_tx, rx, persisted_rx, persisted, log, applier, routes } = channels;
        let config = &shared.config;
        let my_id = config.my_id.expect("an ensemble member has a myid") as Sid;
        let voters: BTreeSet<Sid> = config.voter_ids().into_iter().map(|id| id as Sid).collect();
        let election = Election::new(ElectionSettings {
            my_id,
            voters,
            observer: config.is_observer(),
            finalize_wait_ms: FINALIZE_WAIT_MS,
            max_notification_interval_ms: MAX_NOTIFICATION_INTERVAL_MS,
            config: config.quorum_config_text().into_bytes(),
        });
        let limits = Limits {
            tick_ms: config.tick_time_ms as u64,
            init_limit_ticks: config.init_limit.max(1) as u64,
            sync_limit_ticks: config.sync_limit.max(1) as u64,
        };
        let link_context = LinkContext { shared: shared.clone(), member: member_tx, dirs: dirs.clone() };
        let recent = RecentLog::new(&recent_txns);
        let all_peers: BTreeSet<Sid> = config.servers.iter().map(|s| s.id as Sid).filter(|&id| id != my_id).collect();
        MemberThread {
            shared,
            rx,
            persisted_rx,
            persisted,
            log,
            applier,
            routes,
            dirs,
            links: election_links,
            election_rx,
            election,
            link_context,
            clock: Clock::start(),
            role: Role::Looking,
            next_link: 1,
            my_id,
            limits,
            inputs: Vec::with_capacity(BATCH_MAX),
            early_learners: Vec::new(),
            all_peers,
            ever_connected: BTreeSet::new(),
            recent,
        }
    }

    pub fn run(mut self) {
        self.look(false);
        loop {
            let now = self.now_ms();
            let wait = self
                .next_deadline_ms()
                .map_or(Duration::from_millis(500), |at| Duration::from_millis(at.saturating_sub(now)));
            crossbeam_channel::select! {
                recv(self.rx) -> msg => match msg {
                    Ok(msg) => self.take(msg),
                    Err(_) => return,
                },
                recv(self.election_rx) -> incoming => match incoming {
                    Ok(incoming) => self.on_notification(incoming),
                    Err(_) => return,
                },
                recv(self.persisted_rx) -> woken => match woken {
                    Ok(()) => self.on_persisted(),
                    Err(_) => return,
                },
                default(wait) => {}
            }
            while self.inputs.len() < BATCH_MAX {
                match self.rx.try_recv() {
                    Ok(msg) => self.take(msg),
                    Err(_) => break,
                }
            }
            self.turn();
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.now().mono_ms
    }

    fn next_deadline_ms(&self) -> Option<u64> {
        let role = match &self.role {
            Role::Looking => None,
            Role::Leading(l) => Some(l.next_deadline_ms()),
            Role::Following(f) => Some(f.next_deadline_ms()),
        };
        [self.election.next_deadline_ms(), role].into_iter().flatten().min()
    }

    /// One message: client inputs are gathered for the turn, the rest handled at once.
    fn take(&mut self, msg: SequencerMsg) {
        match msg {
            SequencerMsg::Input(input) => self.inputs.push(input),
            SequencerMsg::Inspect(f) => {
                let core = match &self.role {
                    Role::Leading(l) => l.sequencer_core(),
                    _ => None,
                };
                f(&SequencerState { core, now: self.clock.now() })
            }
            SequencerMsg::Quorum(event) => self.on_quorum(event),
        }
    }

    /// The log stage made more durable.
    fn on_persisted(&mut self) {
        let zxid = self.persisted.load(Ordering::Acquire);
        self.with_role(|role, m| match role {
            Role::Leading(l) => l.persisted(m, zxid),
            Role::Following(f) => f.persisted(m, zxid),
            Role::Looking => Ok(()),
        });
    }

    fn on_quorum(&mut self, event: QuorumEvent) {
        if let QuorumEvent::Accepted(stream, peer) = event {
            match &mut self.role {
                Role::Leading(_) => {
                    let id = self.next_link;
                    self.next_link += 1;
                    self.with_role(|role, m| match role {
                        Role::Leading(l) => l.accepted(m, id, stream),
                        _ => Ok(()),
                    });
                }
                // A learner may learn that we won before we do: keep its connection for the leadership
                // this member may be about to take (ZooKeeper refuses it, and the learner retries a
                // second later).
                _ => {
                    debug!(%peer, "holding a quorum connection until this member leads");
                    self.early_learners.push((stream, self.now_ms()));
                }
            }
            return;
        }
        self.with_role(|role, m| match role {
            Role::Leading(l) => l.quorum_event(m, event),
            Role::Following(f) => f.quorum_event(m, event),
            Role::Looking => Ok(()),
        });
    }

    /// End of a turn: the gathered client inputs, then whatever time made due.
    fn turn(&mut self) {
        let mut inputs = std::mem::take(&mut self.inputs);
        self.with_role(|role, m| match role {
            Role::Leading(l) => l.turn(m, &mut inputs),
            Role::Following(f) => f.turn(m, &mut inputs),
            Role::Looking => Ok(()),
        });
        // Nobody is served between roles; the shards close such clients, and their inputs go nowhere.
        inputs.clear();
        self.inputs = inputs;
        let now = self.now_ms();
        let init_ms = self.limits.init_ms();
        self.early_learners.retain(|(_, at)| now.saturating_sub(*at) <= init_ms);
        if self.election.next_deadline_ms().is_some_and(|at| at <= now) {
            let outputs = self.election.tick(now);
            self.election_outputs(outputs);
        }
    }

    /// Runs `f` on the current role; an `Err` ends the role (its reason is logged) and starts an
    /// election.
    fn with_role(&mut self, f: impl FnOnce(&mut Role, &mut MemberIo<'_>) -> Result<(), String>) {
        let mut role = std::mem::replace(&mut self.role, Role::Looking);
        let mut io = MemberIo {
            shared: &self.shared,
            log: &self.log,
            persisted: &self.persisted,
            applier: &self.applier,
            routes: &self.routes,
            dirs: &self.dirs,
            links: &self.link_context,
            clock: self.clock,
            next_link: &mut self.next_link,
            election: &mut self.election,
            recent: &mut self.recent,
        };
        let result = f(&mut role, &mut io);
        self.role = role;
        if let Err(reason) = result {
            let what = match self.role {
                Role::Leading(_) => "leading",
                Role::Following(_) => "following",
                Role::Looking => "looking",
            };
            warn!("stopped {what}: {reason}");
            self.look(true);
        }
    }

    fn on_notification(&mut self, incoming: Incoming) {
        match Notification::decode(&incoming.payload) {
            Ok(notification) => {
                self.tell_election_who_is_reachable();
                let outputs = self.election.receive(self.now_ms(), incoming.from, notification);
                self.election_outputs(outputs);
            }
            Err(e) => warn!(from = incoming.from, "ignoring an election notification: {e}"),
        }
    }

    /// The election may end its finalize wait early once every voter it can hear has voted; a peer
    /// this member was never connected to (one still starting) counts as one to wait for, a peer whose
    /// connection broke (one that died) does not.
    fn tell_election_who_is_reachable(&mut self) {
        let connected = self.links.connected_peers();
        self.ever_connected.extend(connected.iter().copied());
        let never_seen = self.all_peers.iter().copied().filter(|p| !self.ever_connected.contains(p));
        let reachable: Vec<Sid> = connected.iter().copied().chain(never_seen).collect();
        self.election.set_connected(reachable);
    }

    fn election_outputs(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, notification } => self.links.send(to, notification.to_bytes()),
                Output::Decided(decision) => self.become_(decision),
            }
        }
    }

    /// Ends whatever role ran, rebuilds the state from disk and starts an election round.
    fn look(&mut self, after_role: bool) {
        self.role = Role::Looking;
        self.shared.status.set(Mode::Looking, false);
        if after_role {
            for shard in &self.shared.shards {
                shard.send(ShardMsg::CloseClients { reason: "this member is between roles" });
            }
            if let Err(e) = MemberIo::settle(&self.log, &self.applier) {
                panic!("cannot settle the pipeline after a role ended: {e:#}");
            }
        }
        let facts = match self.facts() {
            Ok(facts) => facts,
            Err(e) => panic!("cannot read this member's epochs: {e:#}"),
        };
        info!(last_zxid = format!("0x{:x}", facts.last_zxid), epoch = facts.current_epoch, "LOOKING");
        self.tell_election_who_is_reachable();
        let outputs = self.election.look(self.now_ms(), facts);
        self.election_outputs(outputs);
    }

    fn facts(&self) -> anyhow::Result<MyFacts> {
        let last_zxid = self.shared.tree.read().last_processed_zxid();
        let (epochs, notes) = load_epochs(&self.dirs.snap, last_zxid)?;
        for note in notes {
            info!("{note}");
        }
        Ok(MyFacts { last_zxid, current_epoch: epochs.current })
    }

    fn become_(&mut self, decision: Decision) {
        let Decision { state, vote, election_epoch } = decision;
        info!(leader = vote.leader, zxid = format!("0x{:x}", vote.zxid), election_epoch, "elected: {}", state.name());
        let now = self.now_ms();
        let result = match state {
            ServerState::Leading => Leading::start(self, now).map(|l| Role::Leading(Box::new(l))),
            ServerState::Following | ServerState::Observing => {
                Following::start(self, vote.leader, now).map(|f| Role::Following(Box::new(f)))
            }
            ServerState::Looking => unreachable!("a decision is never LOOKING"),
        };
        match result {
            Ok(role) => {
                self.role = role;
                let early = std::mem::take(&mut self.early_learners);
                if matches!(self.role, Role::Leading(_)) {
                    for (stream, _) in early {
                        let id = self.next_link;
                        self.next_link += 1;
                        self.with_role(|role, m| match role {
                            Role::Leading(l) => l.accepted(m, id, stream),
                            _ => Ok(()),
                        });
                    }
                }
            }
            Err(reason) => {
                warn!("cannot take the role: {reason}");
                self.look(true);
            }
        }
    }
}

/// What a role's handlers may use: the pipeline's channels, the disk, the clock.
pub struct MemberIo<'a> {
    pub shared: &'a Arc<Shared>,
    pub log: &'a Sender<LogMsg>,
    /// The log stage's durable watermark.
    pub persisted: &'a AtomicI64,
    pub applier: &'a Sender<ApplierMsg>,
    pub routes: &'a Sender<Vec<PendingRoute>>,
    pub dirs: &'a Dirs,
    pub links: &'a LinkContext,
    pub clock: Clock,
    pub next_link: &'a mut LinkId,
    pub election: &'a mut Election,
    pub recent: &'a mut RecentLog,
}

impl MemberIo<'_> {
    pub fn now_ms(&self) -> u64 {
        self.clock.now().mono_ms
    }

    pub fn write_accepted_epoch(&self, epoch: i64) -> Result<(), String> {
        write_epoch(&self.dirs.snap, ACCEPTED_EPOCH, epoch).map_err(|e| e.to_string())
    }

    pub fn write_current_epoch(&self, epoch: i64) -> Result<(), String> {
        write_epoch(&self.dirs.snap, CURRENT_EPOCH, epoch).map_err(|e| e.to_string())
    }

    pub fn epochs(&self) -> Result<fk_engine::epoch::Epochs, String> {
        let last_zxid = self.shared.tree.read().last_processed_zxid();
        load_epochs(&self.dirs.snap, last_zxid).map(|(e, _)| e).map_err(|e| e.to_string())
    }

    /// Everything sent to the log is durable and handed on; then the applier drops every waiting route
    /// and applies what was logged, so the tree holds exactly the log.
    fn settle(log: &Sender<LogMsg>, applier: &Sender<ApplierMsg>) -> anyhow::Result<()> {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        log.send(LogMsg::Flush(done_tx)).map_err(|_| anyhow::anyhow!("the log stage is gone"))?;
        done_rx.recv().map_err(|_| anyhow::anyhow!("the log stage is gone"))?;
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        applier.send(ApplierMsg::Reset(done_tx)).map_err(|_| anyhow::anyhow!("the applier is gone"))?;
        done_rx.recv().map_err(|_| anyhow::anyhow!("the applier is gone"))?;
        Ok(())
    }

    /// Cuts or replaces the log on disk under `change`, then rebuilds the tree from disk.
    pub fn rewrite_disk(&self, change: impl FnOnce(&Dirs) -> anyhow::Result<()>) -> Result<(), String> {
        let run = || -> anyhow::Result<()> {
            MemberIo::settle(self.log, self.applier)?;
            change(self.dirs)?;
            reload_tree(self.shared, self.dirs, self.log, self.persisted)
        };
        run().map_err(|e| format!("{e:#}"))
    }
}

/// Replaces the shared tree with what the disk holds and restarts the log after its last zxid.
/// The log stage is idle (settled) meanwhile, and nothing is sent to it before this returns, so the
/// durable watermark can be set back with the log: a txn past the cut must not count as durable.
fn reload_tree(shared: &Shared, dirs: &Dirs, log: &Sender<LogMsg>, persisted: &AtomicI64) -> anyhow::Result<()> {
    let options = TreeOptions {
        extended_types: shared.config.extended_types_enabled,
        hash_seed: crate::storage::random_hash_seed(),
    };
    let recovered = recover(&dirs.snap, &dirs.log, options)?;
    let last_zxid = recovered.tree.last_processed_zxid();
    *shared.tree.write() = recovered.tree;
    persisted.store(last_zxid, Ordering::Release);
    log.send(LogMsg::Restart { last_zxid }).map_err(|_| anyhow::anyhow!("the log stage is gone"))?;
    info!(
        "state rebuilt from disk: zxid 0x{last_zxid:x}, {} txns replayed{}",
        recovered.replayed,
        recovered.snapshot.map_or(String::new(), |p| format!(" after {}", p.display()))
    );
    Ok(())
}
