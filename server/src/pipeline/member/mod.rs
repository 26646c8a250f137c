//! An ensemble member's protocol thread: the driver of the pure [`MemberCore`]. It feeds the core what
//! arrives — client inputs from the shards, election notifications, quorum-port events, the log
//! stage's "persisted through z" — with the time and the tree, and carries out the core's effects in
//! order: notifications and packets to peers, epoch files, log appends, truncation and snapshots,
//! routes and commit points for the applier, notices for the shards.
//!
//! Between roles the member does not serve: clients are disconnected (they reconnect elsewhere or
//! later), the log and the applier settle so that the tree holds everything logged, as ZooKeeper's
//! `fastForwardDataBase` leaves it, and the core looks again with what the disk now says. A learner
//! told to TRUNC, or given a snapshot, rebuilds the tree from disk instead.

mod read_only;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use fk_engine::epoch::{
    ACCEPTED_EPOCH, CURRENT_EPOCH, clear_epoch_update, load_epochs, mark_epoch_update, write_epoch,
};
use fk_engine::fs::RealFs;
use fk_net::quorum::{Notification, ServerState};
use tracing::{info, warn};

use super::Mode;
use super::Shared;
pub use super::messages::QuorumEvent;
use super::messages::*;
use super::quorum_link::{Link, LinkContext, Outgoing, connect_to_leader, start_leader_side};
use super::sequencer::{BATCH_MAX, Clock, notify_shard, session_figures, settings};
use crate::config::members::Resolve;
use crate::election::{ElectionSettings, FINALIZE_WAIT_MS, MAX_NOTIFICATION_INTERVAL_MS};
use crate::member::drive::{EffectDriver, drive};
use crate::member::{DiskFacts, Effect, MemberCore, MemberSettings, Tally};
use crate::ops::stats::ServerStats;
use crate::peers::admission::Admitted;
use crate::peers::election_link::{ElectionLinks, Incoming, IncomingReceiver};
use crate::storage::{Dirs, adopt_received_snapshot, truncate_after};
use crate::zab::leader::LeaderCount;
use crate::zab::{Limits, LinkId, Sid};
use read_only::{ReadOnlyChange, ReadOnlyTimer};

use super::settle::settle;

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

pub struct MemberThread {
    core: MemberCore,
    shared: Arc<Shared>,
    rx: Receiver<SequencerMsg>,
    persisted_rx: Receiver<()>,
    persisted: Arc<AtomicI64>,
    log: Sender<LogMsg>,
    applier: Sender<ApplierMsg>,
    routes: Sender<Vec<PendingRoute>>,
    dirs: Dirs,
    election_links: ElectionLinks,
    election_rx: IncomingReceiver,
    link_context: LinkContext,
    clock: Clock,
    /// Quorum connections the core knows by id: links running, and learners' connections held until
    /// the core adopts or closes them.
    links: HashMap<LinkId, Link>,
    held: HashMap<LinkId, Admitted>,
    /// Txn log failures already acted on (the count in the server stats).
    log_failures_seen: u64,
    /// Client inputs gathered this turn.
    inputs: Vec<SequencerInput>,
    effects: Vec<Effect>,
    read_only: ReadOnlyTimer,
    /// The membership a reconfiguration activated (`None`: the configuration's): where members are.
    membership: Option<crate::membership::Membership>,
}

/// Why an ensemble member does not restore from a snapshot (ZooKeeper swaps the member's database and
/// nothing else, which breaks what the ensemble knows of its history).
pub const RESTORE_IN_ENSEMBLE: &str = "restore is supported on a standalone server only: a member restored \
    alone would hold a history its ensemble does not have. Restore a standalone server, or stop every member \
    and give each the same snapshot as its only data";

/// The member core's settings from the configuration.
fn member_settings(config: &crate::config::Config) -> MemberSettings {
    let my_id = config.my_id.expect("an ensemble member has a myid") as Sid;
    MemberSettings {
        election: ElectionSettings {
            my_id,
            voters: config.voter_ids().into_iter().map(|id| id as Sid).collect(),
            observer: config.is_observer(),
            finalize_wait_ms: FINALIZE_WAIT_MS,
            max_notification_interval_ms: MAX_NOTIFICATION_INTERVAL_MS,
            config: config.quorum_config_text().into_bytes(),
        },
        peers: config.servers.iter().map(|s| s.id as Sid).filter(|&id| id != my_id).collect(),
        limits: Limits {
            tick_ms: config.tick_time_ms as u64,
            init_limit_ticks: config.init_limit.max(1) as u64,
            sync_limit_ticks: config.sync_limit.max(1) as u64,
        },
        sequencer: settings(config),
        standalone_enabled: config.standalone_enabled,
    }
}

impl MemberThread {
    pub fn new(setup: MemberSetup) -> MemberThread {
        let MemberSetup { shared, channels, dirs, election_links, election_rx, recent_txns } = setup;
        let MemberChannels { member_tx, rx, persisted_rx, persisted, log, applier, routes } = channels;
        let damaged = shared.status.damaged().is_some();
        let core = MemberCore::new(member_settings(&shared.config), &recent_txns, damaged);
        let link_context = LinkContext { shared: shared.clone(), member: member_tx, dirs: dirs.clone() };
        let log_failures_seen = shared.stats.log_write_failures();
        let read_only = ReadOnlyTimer::new(shared.config.read_only_mode, shared.config.tick_time_ms as u64);
        MemberThread {
            core,
            shared,
            rx,
            persisted_rx,
            persisted,
            log,
            applier,
            routes,
            dirs,
            election_links,
            election_rx,
            link_context,
            clock: Clock::start(),
            links: HashMap::new(),
            held: HashMap::new(),
            log_failures_seen,
            inputs: Vec::with_capacity(BATCH_MAX),
            effects: Vec::new(),
            read_only,
            membership: None,
        }
    }

    pub fn run(mut self) {
        self.look();
        self.carry_out();
        loop {
            let now = self.clock.now().mono_ms;
            let next = [self.core.next_deadline_ms(), self.read_only.deadline_ms()].into_iter().flatten().min();
            let wait = next.map_or(Duration::from_millis(500), |at| Duration::from_millis(at.saturating_sub(now)));
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
                    Ok(()) => self.on_log_progress(),
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
            let change = self.read_only.poll(self.clock.now().mono_ms);
            self.read_only_changed(change);
        }
    }

    /// The shards look at the status again: ConnectRequests held while this member was between roles
    /// go on.
    fn wake_shards(&self) {
        for shard in &self.shared.shards {
            shard.wake();
        }
    }

    /// Starts or ends read-only service; the shards take read-only sessions while it runs.
    fn read_only_changed(&self, change: Option<ReadOnlyChange>) {
        let my_id = self.shared.config.my_id.expect("an ensemble member has a myid");
        match change {
            Some(ReadOnlyChange::Start) => {
                info!("no quorum for a while: serving read-only clients (readonlymode.enabled)");
                self.shared.status.set_read_only(true, my_id);
                self.wake_shards();
            }
            Some(ReadOnlyChange::End) => {
                info!("the election ended: read-only service stops");
                self.shared.status.set_read_only(false, my_id);
                for shard in &self.shared.shards {
                    shard.send(ShardMsg::EndReadOnly);
                }
            }
            None => {}
        }
    }

    /// One message: client inputs are gathered for the turn, the rest handled at once.
    fn take(&mut self, msg: SequencerMsg) {
        match msg {
            SequencerMsg::Input(input) => self.inputs.push(input),
            SequencerMsg::Sessions(answer) => {
                let _ = answer.send(session_figures(self.core.sequencer(), self.clock.now()));
            }
            SequencerMsg::Quorum(event) => self.on_quorum(event),
            SequencerMsg::Restore(request) => {
                let _ = request.answer.send(Err(RESTORE_IN_ENSEMBLE.into()));
            }
        }
    }

    /// The log stage made more txns durable, or failed to: a batch that could not be written ends the
    /// role (nothing of it was acknowledged; the log was cut back to what is durable).
    fn on_log_progress(&mut self) {
        let failures = self.shared.stats.log_write_failures();
        if failures > self.log_failures_seen {
            self.log_failures_seen = failures;
            let reason = self.shared.stats.log_failure().unwrap_or_else(|| "the txn log failed".into());
            self.core.role_failed(reason, &mut self.effects);
        } else {
            let zxid = self.persisted.load(Ordering::Acquire);
            self.core.persisted(self.clock.now().mono_ms, zxid, &mut self.effects);
        }
        self.carry_out();
    }

    fn on_quorum(&mut self, event: QuorumEvent) {
        let now = self.clock.now();
        match event {
            QuorumEvent::Accepted(admitted) => {
                let link = self.core.learner_connected(now.mono_ms, &mut self.effects);
                self.held.insert(link, admitted);
            }
            QuorumEvent::Linked(link) => self.core.linked(now.mono_ms, link, &mut self.effects),
            QuorumEvent::Packets(link, packets) => {
                let tree = self.shared.tree.read();
                self.core.packets(now, link, packets, &tree, &mut self.effects);
            }
            QuorumEvent::Closed(link, reason) => {
                self.links.remove(&link);
                self.core.link_closed(now.mono_ms, link, &reason, &mut self.effects);
            }
        }
        self.carry_out();
    }

    /// End of a turn: the gathered client inputs, then whatever time made due.
    fn turn(&mut self) {
        let tree = self.shared.tree.read();
        self.core.turn(self.clock.now(), &mut self.inputs, &tree, &mut self.effects);
        drop(tree);
        self.carry_out();
    }

    fn on_notification(&mut self, incoming: Incoming) {
        match Notification::decode(&incoming.payload) {
            Ok(notification) => {
                let connected = self.election_links.connected_peers();
                self.core.notification(self.clock.now(), incoming.from, notification, &connected, &mut self.effects);
                self.carry_out();
            }
            Err(e) => warn!(from = incoming.from, "ignoring an election notification: {e}"),
        }
    }

    /// Carries out the core's effects in order (with the tree's lock let go: the applier may need it
    /// to make room in these channels), by the rules of [`drive`].
    fn carry_out(&mut self) {
        drive(self);
    }

    fn carry_out_effect(&mut self, effect: Effect) -> Result<(), String> {
        let gone = |what: &str| format!("the {what} is gone");
        match effect {
            Effect::Notify { to, notification } => self.election_links.send(to, notification.to_bytes()),
            Effect::ConnectToLeader { link, leader } => {
                self.shared.status.set_leader(Some(leader as u64));
                self.connect_to_leader(link, leader)?
            }
            Effect::AdoptLearner(link) => self.adopt(link),
            Effect::Send(link, packet) => self.send(link, Outgoing::Packet(packet)),
            Effect::SendSnapshot(link, zxid) => self.send(link, Outgoing::Snapshot(zxid)),
            Effect::Close(link) => {
                self.links.remove(&link);
                self.held.remove(&link);
            }
            Effect::PersistAcceptedEpoch(epoch) => {
                write_epoch(&RealFs, &self.dirs.snap, ACCEPTED_EPOCH, epoch).map_err(|e| e.to_string())?
            }
            Effect::MarkEpochUpdate => mark_epoch_update(&RealFs, &self.dirs.snap).map_err(|e| e.to_string())?,
            Effect::Healed => {
                fk_engine::damage::clear_mark(&RealFs, &self.dirs.snap).map_err(|e| e.to_string())?;
                self.shared.status.set_damaged(None);
            }
            Effect::PersistCurrentEpoch(epoch) => {
                write_epoch(&RealFs, &self.dirs.snap, CURRENT_EPOCH, epoch).map_err(|e| e.to_string())?;
                clear_epoch_update(&RealFs, &self.dirs.snap).map_err(|e| e.to_string())?
            }
            Effect::Log(txns) => {
                if let Some(text) = crate::membership::newest_reconfig(&txns) {
                    self.note_proposed_config(text);
                }
                self.log.send(LogMsg::Txns(txns)).map_err(|_| gone("log stage"))?
            }
            Effect::Truncate(zxid) => self.rewrite_disk(zxid, |dirs| truncate_after(&RealFs, dirs, zxid))?,
            Effect::ReceiveSnapshot(zxid) => {
                self.rewrite_disk(zxid, |dirs| adopt_received_snapshot(&RealFs, dirs, zxid))?
            }
            Effect::Routes(routes) => self.routes.send(routes).map_err(|_| gone("applier"))?,
            Effect::WakeApplier => self.applier.send(ApplierMsg::Wake).map_err(|_| gone("applier"))?,
            Effect::CommitThrough(zxid) => {
                self.applier.send(ApplierMsg::CommitThrough(zxid)).map_err(|_| gone("applier"))?
            }
            Effect::Notice(notice) => notify_shard(&self.shared, notice),
            Effect::Status { state, serving } => {
                if state != ServerState::Leading {
                    self.shared.stats.leader.set_established(None);
                }
                match state {
                    ServerState::Leading => self.shared.status.set_leader(self.shared.config.my_id),
                    ServerState::Looking => self.shared.status.set_leader(None),
                    ServerState::Following | ServerState::Observing => {}
                }
                let change = self.read_only.looking(self.clock.now().mono_ms, state == ServerState::Looking);
                self.read_only_changed(change);
                self.shared.status.set(mode_of(state), serving);
                if serving {
                    self.wake_shards();
                }
            }
            Effect::EpochStart(zxid) => {
                self.shared.stats.leader.set_established(Some(std::time::Instant::now()));
                self.shared.status.set_epoch_zxid(zxid)
            }
            Effect::Tally(tally) => record_tally(&self.shared.stats, tally),
            Effect::AdoptConfig(text) => self.adopt_config(text),
            Effect::Activate(text) => self.activate(text),
            Effect::RoleEnded(_) => unreachable!("handled by carry_out"),
        }
        Ok(())
    }

    /// A membership the quorum established, versioned (ZooKeeper's ZOOKEEPER-1783 with
    /// `reconfigEnabled`): adopted as [`crate::membership::Adoption`] says — in `/zookeeper/config` where
    /// it was never a txn, in what this member sends its peers, and on disk (`zoo.cfg.dynamic.<version>`,
    /// zoo.cfg pointing at it), so a restart keeps it.
    fn adopt_config(&mut self, text: Vec<u8>) {
        let config = &self.shared.config;
        let current = self.shared.membership_version.load(std::sync::atomic::Ordering::Relaxed);
        if !config.reconfig_enabled {
            return;
        }
        let startup = config.quorum_config_text();
        let Some(adoption) = crate::membership::adoption(&text, current, startup.as_bytes()) else { return };
        if adoption.set_config_node {
            let version = crate::zab::config_text::version_of(&text).expect("adoption read it");
            crate::config::set_config_node(&mut self.shared.tree.write(), &text, version);
        }
        self.activate(text);
    }

    /// A reconfiguration committed (ZooKeeper's `processReconfig`, which does nothing without
    /// `reconfigEnabled`): its membership is the one in force — for elections, in what this member sends
    /// its peers, and on disk (`zoo.cfg.dynamic.<version>`, zoo.cfg pointing at it). `/zookeeper/config`
    /// got it when the reconfig txn was applied.
    fn activate(&mut self, text: Vec<u8>) {
        let config = &self.shared.config;
        if !config.reconfig_enabled {
            warn!("a reconfiguration was committed, but reconfigEnabled is false here: not activated");
            return;
        }
        let membership = match crate::membership::Membership::parse(&String::from_utf8_lossy(&text)) {
            Ok(membership) => membership,
            Err(e) => return warn!("a reconfiguration's membership is unreadable, not activated: {e}"),
        };
        let version = membership.version;
        self.shared.membership_version.store(version, std::sync::atomic::Ordering::Relaxed);
        self.core.activate(&membership);
        let election_addresses = membership
            .servers()
            .map(|s| (s.id as i64, crate::config::HostPort::new(s.host.clone(), s.election_port).to_string()));
        self.election_links.add_members(election_addresses);
        self.membership = Some(membership.clone());
        info!(version = format!("{version:#x}"), "membership activated:\n{}", membership.text());
        self.move_client_port(&membership);
        let Some(static_path) = &config.source else { return };
        let members: Vec<String> = crate::zab::config_text::members_of(&text).into_iter().map(str::to_owned).collect();
        let erase = config.client_address_in_server_line();
        match crate::config::rewrite::adopt_version(static_path, &members, version as u64, erase) {
            Ok(dynamic) => info!("wrote {} and pointed {} at it", dynamic.display(), static_path.display()),
            Err(e) => warn!("cannot write the configuration files for version {version:#x}: {e}"),
        }
        if let Err(e) = crate::config::rewrite::retire_next(static_path, version) {
            warn!(
                "cannot remove the logged reconfiguration's file (.dynamic.next) now that {version:#x} is in force: {e}"
            );
        }
    }

    /// A reconfiguration is about to be logged (proposed here, or received from the leader): as ZooKeeper
    /// does, its membership goes to `zoo.cfg.dynamic.next` until it is in force, so that a ZooKeeper
    /// member started on these files knows it too.
    fn note_proposed_config(&self, text: &[u8]) {
        let config = &self.shared.config;
        let Some(static_path) = config.source.as_ref().filter(|_| config.reconfig_enabled) else { return };
        // One already in force (a learner's synchronisation replays the log's older txns) is not next.
        let in_force = self.shared.membership_version.load(std::sync::atomic::Ordering::Relaxed);
        if crate::zab::config_text::version_of(text).is_none_or(|version| version <= in_force) {
            return;
        }
        match crate::config::rewrite::write_next(static_path, text) {
            Ok(next) => info!("a reconfiguration is logged: wrote {}", next.display()),
            Err(e) => warn!("cannot write the logged reconfiguration's file (.dynamic.next): {e}"),
        }
    }

    fn publish_figures(&self) {
        let stats = &self.shared.stats.leader;
        let figures = self.core.leader_figures().unwrap_or_default();
        let set = |a: &std::sync::atomic::AtomicU64, v: usize| a.store(v as u64, Ordering::Relaxed);
        set(&stats.learners, figures.learners);
        set(&stats.synced_followers, figures.synced_followers);
        set(&stats.synced_observers, figures.synced_observers);
        set(&stats.pending_syncs, figures.pending_syncs);
        let sizes = self.core.proposal_sizes();
        stats.set_proposal_sizes((sizes.last, sizes.min, sizes.max));
    }

    fn connect_to_leader(&mut self, link: LinkId, leader_sid: Sid) -> Result<(), String> {
        let config = &self.shared.config;
        let activated = self.membership.as_ref().and_then(|m| m.server(leader_sid as u64));
        let leader = activated
            .or_else(|| config.peer(leader_sid as u64))
            .ok_or_else(|| format!("leader {leader_sid} is not in the membership"))?;
        let address = crate::config::HostPort::new(leader.host.clone(), leader.quorum_port).to_string();
        let timeout = Duration::from_millis((config.tick_time_ms as u64 * config.init_limit.max(1) as u64).max(1000));
        let connected = connect_to_leader(&self.link_context, link, address.clone(), timeout)
            .map_err(|e| format!("cannot start the link to the leader at {address}: {e}"))?;
        self.links.insert(link, connected);
        Ok(())
    }

    /// Starts the link threads of a learner's connection the core adopted; a connection that cannot
    /// be started is reported closed.
    fn adopt(&mut self, link: LinkId) {
        let Some(admitted) = self.held.remove(&link) else { return };
        match start_leader_side(&self.link_context, link, admitted) {
            Ok(started) => {
                self.links.insert(link, started);
            }
            Err(e) => {
                warn!("cannot start a learner link: {e}");
                self.core.link_closed(self.clock.now().mono_ms, link, &e.to_string(), &mut self.effects);
            }
        }
    }

    /// Queues on a link; a peer too far behind is dropped and the core told.
    fn send(&mut self, link: LinkId, outgoing: Outgoing) {
        let Some(connected) = self.links.get(&link) else { return };
        if !connected.send(outgoing) {
            warn!(link, "dropping a peer that fell too far behind");
            self.links.remove(&link);
            self.core.link_closed(self.clock.now().mono_ms, link, "fell too far behind", &mut self.effects);
        }
    }

    /// Reads the disk and starts an election round: at start-up, and between roles (after
    /// member::drive::between_roles has closed the links, settled the pipeline and closed the clients).
    fn look(&mut self) {
        // Clients reaching this member in the next moments wait for its next role, if it has one.
        let listed = self.shared.config.my_id.is_some_and(|id| self.in_force_membership().server(id).is_some());
        let hold = crate::pipeline::held_connects::hold_for(self.shared.config.tick_time_ms);
        self.shared.status.expect_service_by(listed.then(|| std::time::Instant::now() + hold));
        let facts = match self.disk_facts() {
            Ok(facts) => facts,
            Err(e) => panic!("cannot read this member's epochs: {e:#}"),
        };
        self.core.note_logged_config(self.logged_config());
        let connected = self.election_links.connected_peers();
        self.core.look(self.clock.now(), facts, &connected, &mut self.effects);
    }

    fn disk_facts(&self) -> anyhow::Result<DiskFacts> {
        let last_zxid = self.shared.tree.read().last_processed_zxid();
        let (epochs, notes) = load_epochs(&RealFs, &self.dirs.snap, last_zxid)?;
        for note in notes {
            info!("{note}");
        }
        Ok(DiskFacts { last_zxid, accepted_epoch: epochs.accepted, current_epoch: epochs.current })
    }

    /// `/zookeeper/config` when it holds a membership newer than the one in force: a reconfig this member
    /// logged (and applied, everything logged being applied before a look) but never saw activated.
    fn logged_config(&self) -> Option<Vec<u8>> {
        if !self.shared.config.reconfig_enabled {
            return None;
        }
        let tree = self.shared.tree.read();
        let node = tree.get(fk_engine::tree::CONFIG_PATH).and_then(|n| n.data.as_deref());
        let current = self.shared.membership_version.load(std::sync::atomic::Ordering::Relaxed);
        crate::membership::logged_newer(node, current)
    }

    /// A membership that gives this member another client address moves its client port there
    /// (ZooKeeper's processReconfig); clients already connected stay.
    fn move_client_port(&self, membership: &crate::membership::Membership) {
        let Some(me) = self.shared.config.my_id.and_then(|id| membership.server(id)) else { return };
        let Some((host, port)) = &me.client_addr else { return };
        let wanted = crate::config::HostPort::new(host.clone().unwrap_or_else(|| "0.0.0.0".into()), *port);
        let moved = wanted.to_socket_addr().and_then(|address| {
            if address == self.shared.client_port.address() {
                return Ok(false);
            }
            self.shared.client_port.move_to(address).map(|()| true)
        });
        match moved {
            Ok(true) => info!(address = %wanted, "the membership moves this member's client port"),
            Ok(false) => {}
            Err(e) => warn!("cannot move the client port to {wanted} as the membership asks: {e}"),
        }
    }

    /// The membership in force: the last one activated, or the one this member started with.
    fn in_force_membership(&self) -> crate::membership::Membership {
        self.membership.clone().unwrap_or_else(|| {
            crate::membership::Membership::parse(&self.shared.config.quorum_config_text())
                .expect("a configuration's own membership text reads back")
        })
    }

    /// Cuts or replaces the log on disk under `change`, then rebuilds the tree from disk, which must
    /// reach `zxid` ([`crate::storage::check_rewritten`]).
    /// Damage the reload finds marks the member damaged, as at start-up.
    fn rewrite_disk(&mut self, zxid: i64, change: impl FnOnce(&Dirs) -> anyhow::Result<()>) -> Result<(), String> {
        let run = || -> anyhow::Result<(i64, Option<String>)> {
            settle(&self.log, &self.applier)?;
            change(&self.dirs)?;
            let in_force = self.in_force_membership();
            reload_tree(&self.shared, &in_force, &self.dirs, &self.log, &self.applier, &self.persisted)
        };
        let (reached, damaged) = run().map_err(|e| format!("{e:#}"))?;
        if damaged.is_some() && !self.core.is_damaged() {
            self.core.found_damaged();
            self.shared.status.set_damaged(damaged);
        }
        crate::storage::check_rewritten(zxid, reached)
    }
}

impl EffectDriver for MemberThread {
    fn core_and_effects(&mut self) -> Option<(&mut MemberCore, &mut Vec<Effect>)> {
        Some((&mut self.core, &mut self.effects))
    }

    fn carry_out_one(&mut self, effect: Effect) -> Result<(), String> {
        self.carry_out_effect(effect)
    }

    fn after_batch(&mut self) {
        self.publish_figures();
    }

    fn close_links(&mut self) {
        self.links.clear();
        self.held.clear();
    }

    fn settle(&mut self) {
        if let Err(e) = settle(&self.log, &self.applier) {
            panic!("cannot settle the pipeline after a role ended: {e:#}");
        }
    }

    fn close_clients(&mut self) {
        for shard in &self.shared.shards {
            shard.send(ShardMsg::CloseClients { reason: "this member is between roles" });
        }
    }

    fn look(&mut self) {
        MemberThread::look(self);
    }
}

fn mode_of(state: ServerState) -> Mode {
    match state {
        ServerState::Looking => Mode::Looking,
        ServerState::Leading => Mode::Leading,
        ServerState::Following => Mode::Following,
        ServerState::Observing => Mode::Observing,
    }
}

/// Replaces the shared tree with what the disk holds and restarts the log after its last zxid, which
/// it returns.
/// The log stage is idle (settled) meanwhile, and nothing is sent to it before this returns, so the
/// durable watermark can be set back with the log: a txn past the cut must not count as durable.
fn reload_tree(
    shared: &Shared,
    in_force: &crate::membership::Membership,
    dirs: &Dirs,
    log: &Sender<LogMsg>,
    applier: &Sender<ApplierMsg>,
    persisted: &AtomicI64,
) -> anyhow::Result<(i64, Option<String>)> {
    let options = crate::storage::tree_options(&shared.config);
    let recovering = crate::storage::recovering(&shared.config);
    let (recovered, damaged) = crate::storage::recover_at_start(&RealFs, dirs, options, &recovering)?;
    let last_zxid = recovered.tree.last_processed_zxid();
    let mut tree = recovered.tree;
    if !shared.config.is_standalone() {
        let text = in_force.text();
        crate::config::refresh_config_node(
            &mut tree,
            text.as_bytes(),
            in_force.version,
            shared.config.reconfig_enabled,
        );
    }
    *shared.tree.write() = tree;
    // Before anything logged from now on reaches the applier (the log stage sends it on later).
    applier.send(ApplierMsg::TreeLoaded(recovered.fuzziness)).map_err(|_| anyhow::anyhow!("the applier is gone"))?;
    persisted.store(last_zxid, Ordering::Release);
    log.send(LogMsg::Restart { last_zxid }).map_err(|_| anyhow::anyhow!("the log stage is gone"))?;
    info!(
        "state rebuilt from disk: zxid 0x{last_zxid:x}, {} txns replayed{}",
        recovered.replayed,
        recovered.snapshot.map_or(String::new(), |p| format!(" after {}", p.display()))
    );
    Ok((last_zxid, damaged))
}

/// Counts what the member core reports for `mntr` and `/metrics`.
fn record_tally(stats: &ServerStats, tally: Tally) {
    let (counter, n) = match tally {
        Tally::Looking => return stats.record_looking(),
        Tally::Elected { took_ms } => return stats.record_election(took_ms),
        Tally::Leader(LeaderCount::LearnerSync { snapshot: true }) => (&stats.leader.snap_syncs, 1),
        Tally::Leader(LeaderCount::LearnerSync { snapshot: false }) => (&stats.leader.diff_syncs, 1),
        Tally::Leader(LeaderCount::Proposed(n)) => (&stats.leader.proposals, n),
        Tally::Leader(LeaderCount::Committed(n)) => (&stats.leader.commits, n),
        Tally::Leader(LeaderCount::QuorumAcked { latency_ms, txns }) => {
            return stats.record_quorum_ack(latency_ms, txns);
        }
    };
    counter.fetch_add(n, Ordering::Relaxed);
}
