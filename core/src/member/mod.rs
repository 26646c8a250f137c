//! An ensemble member's decisions as one pure state machine — ZooKeeper's `QuorumPeer.run` without its
//! threads: the election, then the role it decided (the ZAB leader with the sequencer core, or a
//! learner with the [`Forwarder`](crate::sequencer::forwarder::Forwarder)), then the election again
//! when the role ends.
//!
//! The core takes what happened (an election notification, quorum packets, a learner's connection,
//! "the log is durable through z", client inputs, the time) and appends [`Effect`]s a driver carries
//! out in order: the production member thread (`ferrokeeper::pipeline::member`) with sockets, files and the
//! pipeline's threads, the simulator (tests/src/sim) with simulated ones. It reads no clock, socket,
//! file or channel. An effect that persists something (an epoch file, a log append, a truncation)
//! comes before the effects that depend on it; if carrying one out fails, the driver drops the rest
//! and tells the core ([`MemberCore::role_failed`]).
//!
//! Between roles the member does not serve: the driver closes client connections, lets the log and
//! the applier settle (everything logged is applied, ZooKeeper's `fastForwardDataBase`), then calls
//! [`MemberCore::look`] with what its disk now says.
//!
//! # Layout
//! - [`drive`]: the loop a driver runs over the effects (one copy for the member thread and the
//!   simulator).
//! - `leading`: the leader's role.
//! - `following`: a follower's or an observer's role.
//! - [`recent`]: the newest txns logged, for a new leader's DIFF history.

pub mod drive;
mod following;
mod leading;
pub mod recent;

use std::collections::BTreeSet;

use fk_engine::tree::DataTree;
use fk_net::quorum::{Notification, QuorumPacket, ServerState};
use fk_net::txn::Txn;
use tracing::{debug, info, warn};

use crate::election::{Decision, Election, ElectionSettings, MyFacts, Output};
use crate::planted::{self, PlantedBug};
use crate::sequencer::{Notice, Now, PendingRoute, Sequencer, SequencerInput, SequencerSettings};
use crate::zab::leader::LeaderCount;
use crate::zab::{Limits, LinkId, Sid};
use following::Following;
use leading::Leading;
use recent::RecentLog;

/// What a member's decisions depend on, from its configuration.
#[derive(Clone)]
pub struct MemberSettings {
    pub election: ElectionSettings,
    /// Every member but this one.
    pub peers: BTreeSet<Sid>,
    pub limits: Limits,
    pub sequencer: SequencerSettings,
    /// `standaloneEnabled`: a reconfiguration must leave at least 2 voters.
    pub standalone_enabled: bool,
}

impl MemberSettings {
    fn my_id(&self) -> Sid {
        self.election.my_id
    }
}

/// What this member's disk says when it starts looking (the tree holds everything logged by then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskFacts {
    pub last_zxid: i64,
    pub accepted_epoch: i64,
    pub current_epoch: i64,
}

/// What the driver is asked to do, in order.
#[derive(Debug)]
pub enum Effect {
    /// An election notification for a peer.
    Notify {
        to: Sid,
        notification: Notification,
    },
    /// Connect to the leader's quorum port; the link is `link` (a learner's only one).
    ConnectToLeader {
        link: LinkId,
        leader: Sid,
    },
    /// Start serving a learner that connected to our quorum port as `link`.
    AdoptLearner(LinkId),
    Send(LinkId, QuorumPacket),
    /// SNAP at this zxid, then the tree once everything through it is applied.
    SendSnapshot(LinkId, i64),
    /// Close the link (a learner given up, or a held connection never adopted).
    Close(LinkId),
    PersistAcceptedEpoch(i64),
    /// Create the `updatingEpoch` mark durably (see `LearnerOutput::MarkEpochUpdate`).
    MarkEpochUpdate,
    /// Write the current epoch durably, then remove the `updatingEpoch` mark if there is one.
    PersistCurrentEpoch(i64),
    /// Txns for the log, in zxid order.
    Log(Vec<Txn>),
    /// Cut the log after this zxid (TRUNC), remove newer snapshots, rebuild the tree from disk.
    Truncate(i64),
    /// The leader's snapshot at this zxid follows on the link: store it, cut what this member logged
    /// after it, rebuild the tree from disk.
    ReceiveSnapshot(i64),
    /// Routes for the applier (before the txns they wait for can be applied).
    Routes(Vec<PendingRoute>),
    /// A barrier route may be due without a txn: the applier must look.
    WakeApplier,
    /// Everything through this zxid is committed.
    CommitThrough(i64),
    /// For the shard holding the connection.
    Notice(Notice),
    /// The member's state for 4lw and the shards: its role, and whether it serves clients.
    Status {
        state: ServerState,
        serving: bool,
    },
    /// A leader established its epoch: its txns start after this zxid.
    EpochStart(i64),
    /// The role ended: close clients, settle the pipeline, then call [`MemberCore::look`].
    RoleEnded(String),
    /// Something operators count happened.
    Tally(Tally),
    /// A membership the quorum established (an initial configuration versioned by the leader's epoch,
    /// with `reconfigEnabled`): the driver adopts it if it is this member's membership, newer.
    AdoptConfig(Vec<u8>),
    /// A reconfiguration committed: this membership is the one in force (the driver then calls
    /// [`MemberCore::activate`] and writes its files).
    Activate(Vec<u8>),
    /// A member found damaged at start-up has been synchronised by a leader, its log durable through
    /// the leader's history: remove the damage mark durably (fk_engine::damage); it votes from now on.
    Healed,
}

/// What a member counts for `mntr` and `/metrics` (ZooKeeper's names in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// An election began (`looking_count`).
    Looking,
    /// An election decided this member's role, `took_ms` after it began (`election_time`).
    Elected {
        took_ms: u64,
    },
    Leader(LeaderCount),
}

/// What a leader reports for 4lw (`zk_learners`, `zk_synced_followers`, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaderFigures {
    pub learners: usize,
    pub synced_followers: usize,
    pub synced_observers: usize,
    pub pending_syncs: usize,
}

/// Proposal sizes in bytes since start (`zk_last_proposal_size`, min, max); -1 before the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposalSizes {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

impl ProposalSizes {
    fn record(&mut self, bytes: usize) {
        let bytes = bytes as i64;
        self.last = bytes;
        self.max = self.max.max(bytes);
        self.min = if self.min < 0 { bytes } else { self.min.min(bytes) };
    }
}

enum Role {
    /// Electing, or between roles until the driver calls `look` (`ended`).
    Looking {
        ended: bool,
    },
    Leading(Box<Leading>),
    Following(Box<Following>),
}

/// What a role's handlers may use besides their own state.
struct Context<'a> {
    settings: &'a MemberSettings,
    facts: DiskFacts,
    /// Found damaged at start-up and not synchronised since ([`MemberCore::new`]).
    damaged: &'a mut bool,
    election: &'a mut Election,
    recent: &'a mut RecentLog,
    proposal_sizes: &'a mut ProposalSizes,
    out: &'a mut Vec<Effect>,
}

pub struct MemberCore {
    settings: MemberSettings,
    election: Election,
    role: Role,
    /// What the disk said at the last `look`.
    facts: DiskFacts,
    next_link: LinkId,
    /// Learners that connected before this member took the leadership, with when (closed after
    /// `initLimit`): a learner may learn that we won before we do.
    early_learners: Vec<(LinkId, u64)>,
    /// Peers an election connection was ever made with.
    ever_connected: BTreeSet<Sid>,
    recent: RecentLog,
    proposal_sizes: ProposalSizes,
    /// When the current (or last) election began.
    looking_since_ms: u64,
    /// A membership newer than the one in force that this member's log holds, for the next leadership
    /// ([`MemberCore::note_logged_config`]).
    logged_config: Option<Vec<u8>>,
    /// Found damaged (at start-up, or when a TRUNC or SNAP reloaded its disk), and no leader has
    /// synchronised it since: it looks with [`MyFacts::UNKNOWN`], so no election counts it, and it can
    /// only follow.
    damaged: bool,
}

impl MemberCore {
    /// `replayed`: the txns recovery replayed after the snapshot, oldest first. `damaged`: start-up
    /// found the member's files damaged, now or before, and no leader has synchronised it since
    /// (fk_engine::damage).
    pub fn new(settings: MemberSettings, replayed: &[Txn], damaged: bool) -> MemberCore {
        MemberCore {
            election: Election::new(settings.election.clone()),
            settings,
            role: Role::Looking { ended: false },
            facts: DiskFacts { last_zxid: 0, accepted_epoch: 0, current_epoch: 0 },
            next_link: 1,
            early_learners: Vec::new(),
            ever_connected: BTreeSet::new(),
            recent: RecentLog::new(replayed),
            proposal_sizes: ProposalSizes { last: -1, min: -1, max: -1 },
            looking_since_ms: 0,
            logged_config: None,
            damaged,
        }
    }

    /// Found damaged and not yet synchronised by a leader.
    pub fn is_damaged(&self) -> bool {
        self.damaged
    }

    /// A TRUNC or SNAP reloaded the disk and found damage start-up had not read (in a file it did not
    /// need then): the member kept what precedes it (`ferrokeeper::storage::recover_at_start`) and, as one
    /// found damaged at start-up, neither votes nor counts toward a quorum until a leader has
    /// synchronised it. Only a learner rewrites its disk.
    pub fn found_damaged(&mut self) {
        assert!(!matches!(self.role, Role::Leading(_)), "a leader never rewrites its disk");
        self.damaged = true;
    }

    /// What this member offers an election: its disk's facts, or none while it is damaged.
    fn my_facts(&self) -> MyFacts {
        if self.damaged && !planted::is_planted(PlantedBug::DamagedVotes) {
            return MyFacts::UNKNOWN;
        }
        MyFacts { last_zxid: self.facts.last_zxid, current_epoch: self.facts.current_epoch }
    }

    pub fn state(&self) -> ServerState {
        match &self.role {
            Role::Looking { .. } => ServerState::Looking,
            Role::Leading(_) => ServerState::Leading,
            Role::Following(f) => f.state(),
        }
    }

    /// Whether the role ended and the core waits for [`MemberCore::look`].
    pub fn awaits_look(&self) -> bool {
        matches!(self.role, Role::Looking { ended: true })
    }

    /// A reconfiguration activated (ZooKeeper's `processReconfig`): elections from now on count the new
    /// voters and send the new membership, and this member's role in it is its role.
    pub fn activate(&mut self, membership: &crate::membership::Membership) {
        let me = self.settings.my_id();
        let election = &mut self.settings.election;
        election.voters = membership.voters();
        election.observer = membership.server(me as u64).is_some_and(|s| s.role == crate::servers::PeerRole::Observer);
        election.config = membership.text().into_bytes();
        self.settings.peers = membership.servers().map(|s| s.id as i64).filter(|&id| id != me).collect();
        self.election.set_membership(election.voters.clone(), election.observer, election.config.clone());
    }

    /// What the tree holds before a look: a membership (in `/zookeeper/config`, from a logged reconfig)
    /// newer than the one in force, if any. Should this member lead next, it establishes that one.
    pub fn note_logged_config(&mut self, config: Option<Vec<u8>>) {
        self.logged_config = config;
    }

    /// The leader's sequencer core, once established (for 4lw inspection).
    pub fn sequencer(&self) -> Option<&Sequencer> {
        match &self.role {
            Role::Leading(l) => l.sequencer(),
            _ => None,
        }
    }

    pub fn leader_figures(&self) -> Option<LeaderFigures> {
        match &self.role {
            Role::Leading(l) => Some(l.figures()),
            _ => None,
        }
    }

    pub fn proposal_sizes(&self) -> ProposalSizes {
        self.proposal_sizes
    }

    /// The next time [`MemberCore::turn`] has something to do without any input.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let role = match &self.role {
            Role::Looking { .. } => None,
            Role::Leading(l) => Some(l.next_deadline_ms()),
            Role::Following(f) => Some(f.next_deadline_ms()),
        };
        let early = self.early_learners.first().map(|(_, at)| at + self.settings.limits.init_ms() + 1);
        [self.election.next_deadline_ms(), role, early].into_iter().flatten().min()
    }

    /// Starts an election round (at start, and after a role ended and the pipeline settled).
    /// `connected`: the peers the election links are connected to now.
    pub fn look(&mut self, now: Now, facts: DiskFacts, connected: &[Sid], out: &mut Vec<Effect>) {
        let now_ms = now.mono_ms;
        self.role = Role::Looking { ended: false };
        self.facts = facts;
        // Everything logged is applied between roles, so the history ends where the tree does: txns
        // past it were never made durable (a failed write ended the role) and must not reach a
        // learner's DIFF — not even from between older entries and the next epoch's.
        self.recent.truncate_after(facts.last_zxid);
        out.push(Effect::Status { state: ServerState::Looking, serving: false });
        out.push(Effect::Tally(Tally::Looking));
        self.looking_since_ms = now_ms;
        info!(last_zxid = format!("0x{:x}", facts.last_zxid), epoch = facts.current_epoch, "LOOKING");
        self.tell_election_who_is_reachable(connected);
        let outputs = self.election.look(now_ms, self.my_facts());
        self.election_outputs(now, outputs, out);
    }

    /// An election notification from peer `from`.
    pub fn notification(
        &mut self,
        now: Now,
        from: Sid,
        notification: Notification,
        connected: &[Sid],
        out: &mut Vec<Effect>,
    ) {
        self.tell_election_who_is_reachable(connected);
        if let Some(membership) = self.newer_membership(&notification.config) {
            // ZooKeeper's election receiver: a LOOKING member shown a newer configuration takes it
            // (processReconfig) and starts its round again under it. A member about to join an ensemble
            // of one learns it is not a voter yet, and follows the leader it finds.
            info!(from, version = format!("{:#x}", membership.version), "a newer membership, from an election peer");
            self.activate(&membership);
            out.push(Effect::Activate(notification.config));
            let outputs = self.election.look(now.mono_ms, self.my_facts());
            return self.election_outputs(now, outputs, out);
        }
        let outputs = self.election.receive(now.mono_ms, from, notification);
        self.election_outputs(now, outputs, out);
    }

    /// The membership a peer's notification carries, if this member is looking, reconfigures, and it is
    /// newer than the one in force.
    fn newer_membership(&self, config: &[u8]) -> Option<crate::membership::Membership> {
        let looking = matches!(self.role, Role::Looking { ended: false });
        if !looking || !self.settings.sequencer.prep.reconfig_enabled || config.is_empty() {
            return None;
        }
        let ours = crate::zab::config_text::version_of(&self.settings.election.config).unwrap_or(0);
        let theirs = crate::zab::config_text::version_of(config)?;
        if theirs <= ours {
            return None;
        }
        crate::membership::Membership::parse(&String::from_utf8_lossy(config)).ok()
    }

    /// A learner connected to our quorum port; returns the link id the driver knows it by from now on.
    pub fn learner_connected(&mut self, now_ms: u64, out: &mut Vec<Effect>) -> LinkId {
        let link = self.new_link();
        if matches!(self.role, Role::Leading(_)) {
            self.adopt(now_ms, link, out);
        } else {
            // ZooKeeper refuses it and the learner retries a second later; holding it saves that second.
            debug!(link, "holding a quorum connection until this member leads");
            self.early_learners.push((link, now_ms));
        }
        link
    }

    /// A learner's link to its leader is up.
    pub fn linked(&mut self, now_ms: u64, link: LinkId, out: &mut Vec<Effect>) {
        self.with_role(out, |role, cx| match role {
            Role::Following(f) => f.linked(cx, now_ms, link),
            _ => Ok(()),
        });
    }

    /// Packets read from `link`, in order.
    pub fn packets(
        &mut self,
        now: Now,
        link: LinkId,
        packets: Vec<QuorumPacket>,
        tree: &DataTree,
        out: &mut Vec<Effect>,
    ) {
        self.with_role(out, |role, cx| match role {
            Role::Leading(l) => l.packets(cx, now, link, packets, tree),
            Role::Following(f) => f.packets(cx, now.mono_ms, link, packets),
            Role::Looking { .. } => Ok(()),
        });
    }

    /// `link` closed (by the peer, or because it fell too far behind).
    pub fn link_closed(&mut self, now_ms: u64, link: LinkId, reason: &str, out: &mut Vec<Effect>) {
        self.early_learners.retain(|(held, _)| *held != link);
        self.with_role(out, |role, cx| match role {
            Role::Leading(l) => l.link_closed(cx, now_ms, link, reason),
            Role::Following(f) => f.link_closed(link, reason),
            Role::Looking { .. } => Ok(()),
        });
    }

    /// The log holds everything through `zxid` durably.
    pub fn persisted(&mut self, now_ms: u64, zxid: i64, out: &mut Vec<Effect>) {
        self.with_role(out, |role, cx| match role {
            Role::Leading(l) => l.persisted(cx, now_ms, zxid),
            Role::Following(f) => f.persisted(cx, now_ms, zxid),
            Role::Looking { .. } => Ok(()),
        });
    }

    /// Carrying out an effect of this role failed (an epoch file not written, the leader unreachable):
    /// the role ends.
    pub fn role_failed(&mut self, reason: String, out: &mut Vec<Effect>) {
        if !self.awaits_look() {
            self.end_role(reason, out);
        }
    }

    /// The turn's client inputs (left empty: between roles nobody is served and they go nowhere), then
    /// whatever time made due.
    pub fn turn(&mut self, now: Now, inputs: &mut Vec<SequencerInput>, tree: &DataTree, out: &mut Vec<Effect>) {
        self.with_role(out, |role, cx| match role {
            Role::Leading(l) => l.turn(cx, now, inputs, tree),
            Role::Following(f) => f.turn(cx, now.mono_ms, inputs, tree.last_processed_zxid()),
            Role::Looking { .. } => Ok(()),
        });
        inputs.clear();
        let init_ms = self.settings.limits.init_ms();
        let now_ms = now.mono_ms;
        self.early_learners.retain(|&(link, at)| {
            let keep = now_ms.saturating_sub(at) <= init_ms;
            if !keep {
                out.push(Effect::Close(link));
            }
            keep
        });
        if self.election.next_deadline_ms().is_some_and(|at| at <= now_ms) {
            let outputs = self.election.tick(now_ms);
            self.election_outputs(now, outputs, out);
        }
    }

    fn new_link(&mut self) -> LinkId {
        let link = self.next_link;
        self.next_link += 1;
        link
    }

    fn adopt(&mut self, now_ms: u64, link: LinkId, out: &mut Vec<Effect>) {
        out.push(Effect::AdoptLearner(link));
        self.with_role(out, |role, cx| match role {
            Role::Leading(l) => l.linked(cx, now_ms, link),
            _ => Ok(()),
        });
    }

    /// Runs `f` on the current role; an `Err` ends the role.
    fn with_role(&mut self, out: &mut Vec<Effect>, f: impl FnOnce(&mut Role, &mut Context<'_>) -> Result<(), String>) {
        if self.awaits_look() {
            return;
        }
        let mut cx = Context {
            settings: &self.settings,
            facts: self.facts,
            damaged: &mut self.damaged,
            election: &mut self.election,
            recent: &mut self.recent,
            proposal_sizes: &mut self.proposal_sizes,
            out,
        };
        if let Err(reason) = f(&mut self.role, &mut cx) {
            self.end_role(reason, out);
        }
    }

    fn end_role(&mut self, reason: String, out: &mut Vec<Effect>) {
        let what = match self.role {
            Role::Leading(_) => "leading",
            Role::Following(_) => "following",
            Role::Looking { .. } => "looking",
        };
        warn!("stopped {what}: {reason}");
        self.role = Role::Looking { ended: true };
        out.push(Effect::Status { state: ServerState::Looking, serving: false });
        out.push(Effect::RoleEnded(reason));
    }

    /// The election may end its finalize wait early once every voter it can hear has voted; a peer
    /// this member was never connected to (one still starting) counts as one to wait for, a peer whose
    /// connection broke (one that died) does not.
    fn tell_election_who_is_reachable(&mut self, connected: &[Sid]) {
        self.ever_connected.extend(connected.iter().copied());
        let never_seen = self.settings.peers.iter().copied().filter(|p| !self.ever_connected.contains(p));
        let reachable: Vec<Sid> = connected.iter().copied().chain(never_seen).collect();
        self.election.set_connected(reachable);
    }

    fn election_outputs(&mut self, now: Now, outputs: Vec<Output>, out: &mut Vec<Effect>) {
        for output in outputs {
            match output {
                Output::Send { to, notification } => out.push(Effect::Notify { to, notification }),
                Output::Decided(decision) => self.take_role(now, decision, out),
            }
        }
    }

    fn take_role(&mut self, now: Now, decision: Decision, out: &mut Vec<Effect>) {
        let Decision { state, vote, election_epoch } = decision;
        let now_ms = now.mono_ms;
        info!(leader = vote.leader, zxid = format!("0x{:x}", vote.zxid), election_epoch, "elected: {}", state.name());
        out.push(Effect::Tally(Tally::Elected { took_ms: now_ms.saturating_sub(self.looking_since_ms) }));
        match state {
            ServerState::Leading => {
                // The election never elects a member with unknown facts (MyFacts::UNKNOWN); one that
                // lost txns it acknowledged must not lead.
                assert!(
                    !self.damaged || planted::is_planted(PlantedBug::DamagedVotes),
                    "a member found damaged was elected before a leader synchronised it"
                );
                let logged = self.logged_config.take();
                let leading = Leading::start(&self.settings, self.facts, &self.recent, logged, now_ms);
                self.role = Role::Leading(Box::new(leading));
                out.push(Effect::Status { state: ServerState::Leading, serving: false });
                for (link, _) in std::mem::take(&mut self.early_learners) {
                    self.adopt(now_ms, link, out);
                }
            }
            ServerState::Following | ServerState::Observing => {
                let link = self.new_link();
                let following = Following::start(&self.settings, vote.leader, link, now);
                out.push(Effect::Status { state: following.state(), serving: false });
                out.push(Effect::ConnectToLeader { link, leader: vote.leader });
                out.extend(std::mem::take(&mut self.early_learners).into_iter().map(|(held, _)| Effect::Close(held)));
                self.role = Role::Following(Box::new(following));
            }
            ServerState::Looking => unreachable!("a decision is never LOOKING"),
        }
    }
}
