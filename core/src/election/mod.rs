//! FastLeaderElection (ZooKeeper 3.8, electionAlg=3) as a pure state machine: notifications and the
//! time in, notifications to send and the decision out. No clock, socket, thread or channel inside;
//! the driver owns the election port's connections and one timer ([`Election::next_deadline_ms`]).
//!
//! ZooKeeper splits the algorithm between `lookForLeader` (a loop polling a queue while LOOKING) and the
//! `WorkerReceiver` thread (which answers some senders at once, in every state). Here both run inside
//! [`Election::receive`]: first the receiver's immediate replies, then, while a round runs, the loop's
//! step for that notification. ZooKeeper's blocking polls become deadlines: the notification timeout
//! ("nothing arrived for `notTimeout` ms: resend, double the timeout") and the finalize wait ("a quorum
//! agrees with my proposal: decide unless a better vote arrives within `finalizeWait` ms").
//! reference/quorum-wire.md §2 summarises the rules; the comments below name the Java they follow.
//!
//! # Contract with the driver
//! - Call [`Election::look`] at start-up and whenever the member's role (leader, follower, observer)
//!   ends. The logical clock carries on across rounds, as in ZooKeeper.
//! - Feed every decoded notification to [`Election::receive`], in every state: once decided, the
//!   machine still answers LOOKING members and non-voters (the `WorkerReceiver` replies).
//! - Call [`Election::tick`] when [`Election::next_deadline_ms`] has passed (early or extra calls are
//!   harmless).
//! - Messages to this member itself never leave the machine: ZooKeeper's `QuorumCnxManager.toSend`
//!   loops a message to its own sid straight into the receive queue, and the machine does the same
//!   internally, so no [`Output::Send`] ever names `my_id`.
//! - Reconnecting is the driver's business: ZooKeeper's notification timeout resends when some peer's
//!   send queue has drained and calls `connectAll` otherwise; here the timeout always emits the resends,
//!   and a driver that (like `QuorumCnxManager.toSend` → `connectOne`) connects to a peer it has no
//!   connection to whenever it has something to send it, keeping at most the newest unsent message per
//!   peer, gets the same effect.
//! - After a [`Output::Decided`] with state LEADING/FOLLOWING, the ZAB role calls
//!   [`Election::update_election_vote`] once it has the new epoch (ZooKeeper's `updateElectionVote`), so
//!   the vote it shows late joiners carries that epoch.
//!
//! # Deliberate differences from ZooKeeper
//! - One configuration: `voters` is the current config's participants. A pending reconfig's next
//!   config (counted with `getCurrentAndNextConfigVoters` and a second quorum in `getVoteTracker`) is
//!   not modelled; adopting a newer config gossiped in a notification is the member core's
//!   (`MemberCore::notification`: it activates the membership and starts the round again).
//! - Majority quorums only (`QuorumMaj`): hierarchical weights and the 2-member oracle
//!   (`QuorumOracleMaj`) are not modelled.
//! - ZooKeeper queues notifications that arrive between the role ending and `lookForLeader` starting;
//!   here a notification received before the first [`Election::look`] gets only the immediate replies
//!   (the sender resends on its own timeout).
//! - ZooKeeper's voters answer every notification of a non-voter, and an observer answers every
//!   LOOKING member's: a voter LOOKING (say, cut off from the leader with an observer) and an
//!   observer OBSERVING answer each other for as long as the voter looks, one notification per round
//!   trip (the simulator found it: with duplicated deliveries the exchanges multiplied). Here a voter
//!   answers a non-voter only while that one is LOOKING, which is when it needs the answer.
//! - The minimum notification interval is the finalize wait, ZooKeeper's default
//!   (`zookeeper.fastleader.minNotificationInterval` is not a separate setting).
//! - The finalize wait ends early once every voter this member can hear (the driver says which,
//!   [`Election::set_connected`]; the pipeline counts members it never reached yet as ones to wait
//!   for, and members whose connection broke as gone) has voted for the proposal in this round: no
//!   better vote can still be on its way, except from a member we cannot hear, which would find the
//!   new leader sitting (as ZooKeeper 3.4 did when all voters had answered). A failover then takes
//!   the time of one exchange of notifications instead of 200 ms more. Agreement is unaffected: the
//!   election only proposes a leader, and ZAB lets it lead only with a quorum.
//!
//! # Layout
//! - [`vote`]: candidate order, recorded votes and the quorum count.

mod looking;
#[cfg(test)]
mod network_tests;
pub mod outbox;
#[cfg(test)]
mod tests;
pub mod vote;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use fk_net::quorum::election::NOTIFICATION_VERSION;
use thiserror::Error;

pub use fk_net::quorum::{Notification, ServerState, Vote};
pub use vote::{Ballot, beats};

/// ZooKeeper's `finalizeWait`.
pub const FINALIZE_WAIT_MS: u64 = 200;
/// ZooKeeper's default `maxNotificationInterval`.
pub const MAX_NOTIFICATION_INTERVAL_MS: u64 = 60_000;

/// The vote a non-voter (observer) proposes: it can never win and never counts (ZooKeeper's
/// `getInitId`/`getInitLastLoggedZxid`/`getPeerEpoch` for a non-participant).
pub const NON_VOTER_VOTE: Vote = Vote { leader: i64::MIN, zxid: i64::MIN, peer_epoch: i64::MIN };

/// What the election depends on; fixed for the machine's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionSettings {
    pub my_id: i64,
    /// The participants of the current config (observers are not voters).
    pub voters: BTreeSet<i64>,
    /// This member observes: it learns the leader and never votes.
    pub observer: bool,
    /// ZooKeeper's `finalizeWait` ([`FINALIZE_WAIT_MS`]); also the first notification timeout.
    pub finalize_wait_ms: u64,
    /// The notification timeout's ceiling ([`MAX_NOTIFICATION_INTERVAL_MS`]).
    pub max_notification_interval_ms: u64,
    /// Our config text, sent in every notification.
    pub config: Vec<u8>,
}

/// Settings that cannot run an election. The config layer refuses these first; [`Election::new`]
/// panics on them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SettingsError {
    #[error("the election has no voters")]
    NoVoters,
    #[error("server {0} is configured as an observer but is listed among the voters")]
    ObserverVotes(i64),
    #[error("finalize wait must be at least 1 ms")]
    ZeroFinalizeWait,
    #[error("max notification interval {max_ms} ms is below the finalize wait {finalize_ms} ms")]
    IntervalBelowFinalizeWait { max_ms: u64, finalize_ms: u64 },
}

impl ElectionSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.voters.is_empty() {
            return Err(SettingsError::NoVoters);
        }
        if self.observer && self.voters.contains(&self.my_id) {
            return Err(SettingsError::ObserverVotes(self.my_id));
        }
        if self.finalize_wait_ms == 0 {
            return Err(SettingsError::ZeroFinalizeWait);
        }
        if self.max_notification_interval_ms < self.finalize_wait_ms {
            return Err(SettingsError::IntervalBelowFinalizeWait {
                max_ms: self.max_notification_interval_ms,
                finalize_ms: self.finalize_wait_ms,
            });
        }
        Ok(())
    }
}

/// What this member knows about its own data when a round starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MyFacts {
    /// The last zxid in its log (ZooKeeper's `getLastLoggedZxid`).
    pub last_zxid: i64,
    /// Its `currentEpoch` file.
    pub current_epoch: i64,
}

impl MyFacts {
    /// The facts of a member that cannot vouch for its own data: one found damaged at start-up and not
    /// yet synchronised (fk_engine::damage). ZooKeeper's rule for a zxid of -1 keeps it out of every
    /// tally — its LOOKING votes are ignored by every member, Java ones included, and it ignores theirs
    /// — so it can only join a sitting leader (the out-of-election path), never help elect one; nor does
    /// it take a reconfiguration's designation of itself.
    pub const UNKNOWN: MyFacts = MyFacts { last_zxid: -1, current_epoch: -1 };
}

/// The outcome of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Leading, Following or Observing.
    pub state: ServerState,
    /// The leader and the facts it was elected on (ZooKeeper's `endVote`).
    pub vote: Vote,
    /// The round the decision belongs to: my logical clock when my own round decided, or the round of
    /// the notification that told me the sitting leader.
    pub election_epoch: i64,
}

/// What a step asks of the driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `notification` to member `to` on the election port (never to myself). Sends may be lost or
    /// replaced by a newer one to the same member; the notification timeout resends.
    Send { to: i64, notification: Notification },
    /// The round ended: run this role. Comes last in its step; the machine answers notifications with
    /// the decided vote until the driver calls [`Election::look`] again.
    Decided(Decision),
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created, [`Election::look`] not yet called.
    Idle,
    /// `lookForLeader` waiting on its queue; `deadline_ms` is when the notification timeout fires.
    Polling { deadline_ms: u64 },
    /// A quorum agrees with the proposal; decide at `deadline_ms` unless a better vote arrives first.
    Finalizing { deadline_ms: u64 },
    /// The round ended; the member runs this role until the driver calls [`Election::look`] again.
    Decided(ServerState),
}

/// At most this many messages to myself are handled after one input. Each one carries my own proposal
/// in my own round, which cannot change either, so one is all a step ever produces.
const SELF_DELIVERIES_MAX: usize = 4;

#[derive(Debug, Clone)]
pub struct Election {
    settings: ElectionSettings,
    phase: Phase,
    /// The election round (ZooKeeper's `logicalclock`).
    logical_clock: i64,
    /// What this round proposes (`proposedLeader`, `proposedZxid`, `proposedEpoch`).
    proposal: Vote,
    /// My own candidacy this round (`getInitId`, `getInitLastLoggedZxid`, `getPeerEpoch`).
    own_vote: Vote,
    /// The member's vote as shown to others outside the round: the last decision, or my own candidacy
    /// before the first one (`QuorumPeer.currentVote`).
    current: Ballot,
    /// This round's votes (`recvset`): every notification cast in my current round.
    votes: BTreeMap<i64, Ballot>,
    /// FOLLOWING/LEADING notifications of any round (`outofelection`), to join a sitting leader.
    out_of_election: BTreeMap<i64, Ballot>,
    /// The current notification timeout (`notTimeout`).
    notification_timeout_ms: u64,
    /// Notifications to myself, handled after the step that sent them.
    self_inbox: VecDeque<Notification>,
    /// The voters the driver currently has an election connection with.
    connected: BTreeSet<i64>,
    /// The leader a reconfiguration designated, taken without a round at the next look.
    designated: Option<i64>,
    /// This round's facts are [`MyFacts::UNKNOWN`]: this member cannot lead, whoever names it.
    facts_unknown: bool,
}

impl Election {
    /// A reconfiguration activated with `leader` designated to lead it: the next look takes it.
    pub fn designate(&mut self, leader: i64) {
        self.designated = Some(leader);
    }

    /// A reconfiguration activated: its voters count from now on, its text goes in notifications.
    pub fn set_membership(&mut self, voters: BTreeSet<i64>, observer: bool, config: Vec<u8>) {
        self.settings.voters = voters;
        self.settings.observer = observer;
        self.settings.config = config;
    }

    /// # Panics
    /// If `settings` fail [`ElectionSettings::validate`].
    pub fn new(settings: ElectionSettings) -> Election {
        if let Err(error) = settings.validate() {
            panic!("election settings for server {}: {error}", settings.my_id);
        }
        let startup = Vote { leader: settings.my_id, zxid: -1, peer_epoch: -1 };
        Election {
            phase: Phase::Idle,
            logical_clock: 0,
            proposal: startup,
            own_vote: startup,
            current: Ballot::looking(startup, -1),
            votes: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            notification_timeout_ms: settings.finalize_wait_ms,
            self_inbox: VecDeque::new(),
            // Until the driver says otherwise, every voter counts as connected: the full finalize wait.
            connected: settings.voters.clone(),
            designated: None,
            facts_unknown: false,
            settings,
        }
    }

    /// The members the driver has an election connection with right now (it tells before each input).
    pub fn set_connected(&mut self, connected: impl IntoIterator<Item = i64>) {
        self.connected = connected.into_iter().collect();
    }

    /// Starts a round (`lookForLeader`): logical clock + 1, propose myself (a non-voter proposes
    /// [`NON_VOTER_VOTE`]), notify every voter. My own notification is handled internally.
    pub fn look(&mut self, now_ms: u64, facts: MyFacts) -> Vec<Output> {
        let designated = self.designated.take().filter(|&l| l == self.settings.my_id || self.is_voter(l));
        if let Some(leader) = designated.filter(|&l| l != self.settings.my_id || facts != MyFacts::UNKNOWN) {
            // ZooKeeper's updateVote + updateServerState: a reconfiguration named the leader; every member
            // it reached goes straight to it, without a round.
            let mut out = Vec::new();
            let vote = Vote { leader, zxid: facts.last_zxid, peer_epoch: facts.current_epoch };
            self.decide(vote, self.logical_clock, &mut out);
            return out;
        }
        if self.phase == Phase::Idle {
            // QuorumPeer.startLeaderElection: the vote shown to others until the first decision.
            let vote = Vote { leader: self.settings.my_id, zxid: facts.last_zxid, peer_epoch: facts.current_epoch };
            self.current = Ballot::looking(vote, -1);
        }
        self.logical_clock += 1;
        self.facts_unknown = facts == MyFacts::UNKNOWN;
        self.own_vote = self.own_candidacy(facts);
        self.proposal = self.own_vote;
        self.votes.clear();
        self.out_of_election.clear();
        self.notification_timeout_ms = self.settings.finalize_wait_ms;
        self.phase = Phase::Polling { deadline_ms: now_ms + self.notification_timeout_ms };
        let mut out = Vec::new();
        self.send_notifications(&mut out);
        self.deliver_to_self(now_ms, &mut out);
        out
    }

    /// A notification from `from`, in any state.
    pub fn receive(&mut self, now_ms: u64, from: i64, notification: Notification) -> Vec<Output> {
        let mut out = Vec::new();
        self.handle(now_ms, from, notification, &mut out);
        self.deliver_to_self(now_ms, &mut out);
        out
    }

    /// The timer. An expired finalize wait decides for the proposal; an expired notification timeout
    /// resends my notifications and doubles the timeout up to the ceiling.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        match self.phase {
            Phase::Finalizing { deadline_ms } if now_ms >= deadline_ms => {
                let vote = self.proposal;
                self.decide(vote, self.logical_clock, &mut out);
            }
            Phase::Polling { deadline_ms } if now_ms >= deadline_ms => {
                self.send_notifications(&mut out);
                self.notification_timeout_ms =
                    (self.notification_timeout_ms * 2).min(self.settings.max_notification_interval_ms);
                self.phase = Phase::Polling { deadline_ms: now_ms + self.notification_timeout_ms };
                self.deliver_to_self(now_ms, &mut out);
            }
            _ => {}
        }
        out
    }

    pub fn next_deadline_ms(&self) -> Option<u64> {
        match self.phase {
            Phase::Polling { deadline_ms } | Phase::Finalizing { deadline_ms } => Some(deadline_ms),
            Phase::Idle | Phase::Decided(_) => None,
        }
    }

    /// LOOKING while a round runs (and before the first), else the decided role.
    pub fn state(&self) -> ServerState {
        match self.phase {
            Phase::Decided(state) => state,
            Phase::Idle | Phase::Polling { .. } | Phase::Finalizing { .. } => ServerState::Looking,
        }
    }

    /// The vote this member shows outside a round (ZooKeeper's `QuorumPeer.getCurrentVote`): the last
    /// decision, or its own candidacy before the first decision. Not the running round's proposal.
    pub fn current_vote(&self) -> Vote {
        self.current.vote
    }

    /// The running round's proposal (ZooKeeper's `getVote`).
    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    pub fn settings(&self) -> &ElectionSettings {
        &self.settings
    }

    /// The ZAB role established `peer_epoch` (ZooKeeper's `QuorumPeer.updateElectionVote`, called by
    /// the leader once a quorum acked its epoch and by a learner on NEWLEADER): the vote shown to late
    /// joiners carries the new epoch, so their out-of-election count (leader and peer epoch) matches.
    pub fn update_election_vote(&mut self, peer_epoch: i64) {
        self.current.vote.peer_epoch = peer_epoch;
    }

    /// The `WorkerReceiver` half, then (while a round runs) the `lookForLeader` half.
    fn handle(&mut self, now_ms: u64, from: i64, n: Notification, out: &mut Vec<Output>) {
        if !self.is_voter(from) {
            // A LOOKING non-voter (an observer) is answered at once with my current vote and round;
            // its notification goes no further. One that is observing already is not answered (see
            // the module doc): that was only its own answer to a notification of mine.
            if n.state == ServerState::Looking {
                out.push(self.reply(from, self.current.vote, self.logical_clock, self.state()));
            }
            return;
        }
        match self.phase {
            Phase::Idle => {}
            Phase::Decided(state) => {
                if n.state == ServerState::Looking {
                    // Tell a LOOKING member whom I follow, in the round I decided it.
                    out.push(self.reply(from, self.current.vote, self.current.election_epoch, state));
                }
            }
            Phase::Polling { .. } | Phase::Finalizing { .. } => {
                if n.state == ServerState::Looking && n.election_epoch < self.logical_clock {
                    // A LOOKING member behind my round learns my round and proposal.
                    out.push(self.reply(from, self.proposal, self.logical_clock, ServerState::Looking));
                }
                self.step(now_ms, from, n, out);
            }
        }
    }

    /// Sends my proposal in my round to every voter (`sendNotifications`); the one to myself is queued
    /// for [`Election::deliver_to_self`].
    fn send_notifications(&mut self, out: &mut Vec<Output>) {
        for &voter in &self.settings.voters {
            let notification = self.notification(self.proposal, self.logical_clock, ServerState::Looking);
            if voter == self.settings.my_id {
                self.self_inbox.push_back(notification);
            } else {
                out.push(Output::Send { to: voter, notification });
            }
        }
    }

    fn deliver_to_self(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let mut delivered = 0;
        while let Some(n) = self.self_inbox.pop_front() {
            delivered += 1;
            assert!(delivered <= SELF_DELIVERIES_MAX, "messages to myself keep producing messages to myself");
            self.handle(now_ms, self.settings.my_id, n, out);
        }
    }

    /// Ends the round (`setPeerState` + `leaveInstance`): the member leads if the vote names it, else
    /// it follows (or observes, if it is an observer).
    fn decide(&mut self, vote: Vote, election_epoch: i64, out: &mut Vec<Output>) {
        let state = if vote.leader == self.settings.my_id {
            ServerState::Leading
        } else if self.settings.observer {
            ServerState::Observing
        } else {
            ServerState::Following
        };
        self.phase = Phase::Decided(state);
        self.current = Ballot::looking(vote, election_epoch);
        self.self_inbox.clear();
        self.votes.clear();
        self.out_of_election.clear();
        out.push(Output::Decided(Decision { state, vote, election_epoch }));
    }

    /// My candidacy: a voter proposes itself; a member outside the voters proposes nobody, and an
    /// observer has no facts to offer either (ZooKeeper's `getInitId` looks at the voting members,
    /// `getInitLastLoggedZxid`/`getPeerEpoch` at the learner type).
    fn own_candidacy(&self, facts: MyFacts) -> Vote {
        let leader = if self.is_voter(self.settings.my_id) { self.settings.my_id } else { i64::MIN };
        if self.settings.observer {
            return Vote { leader, ..NON_VOTER_VOTE };
        }
        Vote { leader, zxid: facts.last_zxid, peer_epoch: facts.current_epoch }
    }

    fn is_voter(&self, sid: i64) -> bool {
        self.settings.voters.contains(&sid)
    }

    fn notification(&self, vote: Vote, election_epoch: i64, state: ServerState) -> Notification {
        Notification {
            state,
            vote,
            election_epoch,
            version: NOTIFICATION_VERSION,
            config: self.settings.config.clone(),
        }
    }

    fn reply(&self, to: i64, vote: Vote, election_epoch: i64, state: ServerState) -> Output {
        Output::Send { to, notification: self.notification(vote, election_epoch, state) }
    }
}
