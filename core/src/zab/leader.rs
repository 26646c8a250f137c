//! The leader's side of ZAB (ZooKeeper 3.8's `Leader` and `LearnerHandler`), pure.
//!
//! Per learner link: FOLLOWERINFO/OBSERVERINFO → LEADERINFO (once a quorum of voters, this leader
//! included, has connected: the new epoch is one more than every accepted epoch seen) → ACKEPOCH (once
//! a quorum has acked the epoch, each link is synchronised: DIFF/TRUNC/SNAP and the proposals it lacks,
//! then live traffic, then NEWLEADER) → ACK of NEWLEADER (a quorum of them establishes the leader) →
//! UPTODATE. From then on: PROPOSAL to followers, their ACKs and this leader's own persistence decide
//! the commit point ([`Commit`]), COMMIT to followers and INFORM to observers.
//!
//! The leader gives up (and its member goes back to election) when discovery or synchronisation
//! outlasts `initLimit`, or when the voters it has heard from within `syncLimit` stop forming a quorum.

use std::collections::{BTreeMap, BTreeSet};

use fk_net::client::Id;
use fk_net::quorum::packet::{
    ForwardedRequest, RevalidateReply, SessionTouch, ZAB_PROTOCOL_VERSION, decode_int_body, int_body,
};
use fk_net::quorum::{LearnerInfo, PacketType, QuorumPacket};

use super::history::History;
use super::sync::{SyncStep, plan};
use super::{Entry, Limits, LinkId, Sid, config_text, epoch_of, epoch_start};
use crate::commit::Commit;
use crate::planted::{self, PlantedBug};

#[derive(Debug, Clone)]
pub struct LeaderSettings {
    pub my_id: Sid,
    /// The voting members, this leader included.
    pub voters: BTreeSet<Sid>,
    pub limits: Limits,
    /// Our membership as text, sent with NEWLEADER.
    pub config: Vec<u8>,
    /// `reconfigEnabled`: an initial configuration (version 0) takes the new epoch's first zxid as its
    /// version once a quorum has acknowledged NEWLEADER, which carries it (ZooKeeper's ZOOKEEPER-1783).
    pub version_initial_config: bool,
    /// A membership newer than `config` that this member's log holds (a reconfig proposed, perhaps
    /// committed, but never activated here: its leader failed first). Like ZooKeeper's last-seen
    /// configuration, NEWLEADER carries it, a quorum of it and of `voters` must acknowledge NEWLEADER,
    /// and once established it is the membership in force.
    pub logged_config: Option<Vec<u8>>,
}

/// What the leader starts from: its epochs on disk and its history (everything logged counts as
/// committed: this member won the election with it).
#[derive(Debug, Clone)]
pub struct LeaderStart {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    pub history: History,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderInput {
    /// A learner connected; the driver numbers each connection.
    Linked(LinkId),
    Packet(LinkId, QuorumPacket),
    Unlinked(LinkId),
    /// New txns from the sequencer, in zxid order (only once established).
    Propose(Vec<Entry>),
    /// This member's log holds everything through the zxid durably.
    Persisted(i64),
    /// A learner's forwarded `sync` reached its place in the request order; it is answered once
    /// everything proposed before it (through `after`) is committed.
    SyncBarrier {
        link: LinkId,
        after: i64,
    },
    /// The session tracker's answer to a learner's REVALIDATE.
    RevalidateAnswer {
        link: LinkId,
        session_id: i64,
        valid: bool,
    },
    /// Time passes: pings and liveness checks (call it every half tick).
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderOutput {
    Send(LinkId, QuorumPacket),
    /// Send SNAP(zxid) and then the tree as it is once everything through `zxid` is applied.
    SendSnapshot(LinkId, i64),
    Close(LinkId, String),
    /// Write `acceptedEpoch` before anything after this output.
    PersistAcceptedEpoch(i64),
    /// Write `currentEpoch` before anything after this output.
    PersistCurrentEpoch(i64),
    /// The membership a quorum established with NEWLEADER, versioned (see
    /// `LeaderSettings::version_initial_config`): adopt it.
    ConfigVersioned(Vec<u8>),
    /// A reconfiguration committed and activated (after its `Committed`): this membership is in force.
    Activate(Vec<u8>),
    /// A quorum acknowledged NEWLEADER: serve clients; the sequencer's zxids continue from
    /// `epoch_start(epoch)`.
    Established {
        epoch: i64,
    },
    /// Everything through this zxid is committed: apply it.
    Committed(i64),
    /// A client request a learner forwarded, for the sequencer.
    Request {
        link: LinkId,
        sid: Sid,
        request: ForwardedRequest,
        auth: Vec<Id>,
    },
    /// Sessions a learner saw activity on.
    Touches(Vec<SessionTouch>),
    /// A learner asks whether a session (reconnecting to it) is alive.
    Revalidate {
        link: LinkId,
        session_id: i64,
        timeout_ms: i32,
    },
    /// Leadership is over; the reason is for the log.
    Abandon(String),
    /// Something operators count happened (ZooKeeper's leader metrics).
    Counted(LeaderCount),
}

/// What a leader counts for `mntr` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderCount {
    /// A learner was synchronised: by snapshot (`snap_count`) or by DIFF/TRUNC (`diff_count`).
    LearnerSync { snapshot: bool },
    /// Txns proposed (`proposal_count`).
    Proposed(u64),
    /// Txns committed (`commit_count`).
    Committed(u64),
    /// A batch of `txns` proposals acknowledged by a quorum `latency_ms` after it was proposed
    /// (`quorum_ack_latency`).
    QuorumAcked { latency_ms: u64, txns: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for FOLLOWERINFO/OBSERVERINFO.
    Info,
    /// Its info came before the epoch was decided: LEADERINFO is due once it is (an ACKEPOCH now would
    /// answer nothing this leader sent, and is refused).
    AwaitEpoch,
    /// LEADERINFO sent, waiting for ACKEPOCH.
    EpochAck,
    /// ACKEPOCH received; synchronised once a quorum has acked the epoch.
    AwaitSync,
    /// Synchronisation and NEWLEADER sent, waiting for its ACK. Live traffic flows from here on.
    NewLeaderAck,
    /// NEWLEADER acknowledged; UPTODATE follows once the leader is established.
    AwaitStart,
    Active,
}

#[derive(Debug, Clone)]
struct Link {
    sid: Option<Sid>,
    observer: bool,
    stage: Stage,
    last_heard_ms: u64,
    /// The last zxid its ACKEPOCH reported: where its synchronisation starts.
    peer_last_zxid: i64,
}

impl Link {
    fn forwarding(&self) -> bool {
        matches!(self.stage, Stage::NewLeaderAck | Stage::AwaitStart | Stage::Active)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Gathering a quorum of accepted epochs.
    Discovery,
    /// Epoch decided; gathering a quorum of ACKEPOCHs.
    EpochAcks,
    /// Learners synchronising; gathering a quorum of NEWLEADER ACKs.
    NewLeaderAcks,
    Broadcast,
}

pub struct Leader {
    settings: LeaderSettings,
    phase: Phase,
    started_ms: u64,
    accepted_epoch: i64,
    current_epoch: i64,
    /// The epoch this leadership proposes (decided at the end of discovery).
    new_epoch: Option<i64>,
    /// Voters (this one included) whose accepted epoch / ACKEPOCH / NEWLEADER ACK arrived.
    connected: BTreeMap<Sid, i64>,
    epoch_acked: BTreeSet<Sid>,
    newleader_acked: BTreeSet<Sid>,
    links: BTreeMap<LinkId, Link>,
    history: History,
    commit: Commit,
    /// The voters in force (this leader among them, unless it handed over).
    voters: BTreeSet<Sid>,
    /// The members the membership in force lists as observers: a follower among them (re-roled by the
    /// reconfiguration just activated) is leaving, and no longer counts as synchronised.
    observers: BTreeSet<Sid>,
    /// Reconfig proposals not yet committed, in zxid order: their zxid, membership text and voters.
    reconfigs: std::collections::VecDeque<(i64, Vec<u8>, BTreeSet<Sid>)>,
    /// A reconfiguration removed this leader: it commits nothing more, and leads on only until its
    /// followers, told whom it designated, leave for the new leader (ZooKeeper's `allowedToCommit`).
    handed_over: bool,
    /// Learners' syncs waiting for their zxid to commit.
    pending_syncs: Vec<(i64, LinkId)>,
    /// Batches proposed and not yet committed: (last zxid, when, txns), for `quorum_ack_latency`.
    proposed_at: std::collections::VecDeque<(i64, u64, u64)>,
    /// The time of the step being taken.
    now_ms: u64,
    out: Vec<LeaderOutput>,
}

impl Leader {
    pub fn new(settings: LeaderSettings, start: LeaderStart, now_ms: u64) -> Leader {
        assert!(settings.voters.contains(&settings.my_id), "only a voter leads");
        let voters: Vec<Sid> = settings.voters.iter().copied().collect();
        let committed = start.history.committed();
        let mut leader = Leader {
            phase: Phase::Discovery,
            started_ms: now_ms,
            accepted_epoch: start.accepted_epoch,
            current_epoch: start.current_epoch,
            new_epoch: None,
            connected: BTreeMap::from([(settings.my_id, start.accepted_epoch)]),
            epoch_acked: BTreeSet::new(),
            newleader_acked: BTreeSet::new(),
            links: BTreeMap::new(),
            history: start.history,
            commit: Commit::new(&voters, committed),
            voters: settings.voters.clone(),
            observers: observers_of(&settings.config),
            reconfigs: settings
                .logged_config
                .iter()
                .map(|text| {
                    let membership = crate::membership::Membership::parse(&String::from_utf8_lossy(text))
                        .expect("the driver hands on a membership it read");
                    (membership.version, text.clone(), membership.voters())
                })
                .collect(),
            handed_over: false,
            pending_syncs: Vec::new(),
            proposed_at: std::collections::VecDeque::new(),
            now_ms,
            out: Vec::new(),
            settings,
        };
        // A single-voter ensemble (standaloneEnabled=false) has its quorum already.
        leader.try_decide_epoch();
        leader
    }

    /// The epoch being established or led, once decided.
    pub fn epoch(&self) -> Option<i64> {
        self.new_epoch
    }

    pub fn is_established(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    pub fn last_proposed(&self) -> i64 {
        self.history.last_proposed()
    }

    pub fn committed(&self) -> i64 {
        self.history.committed()
    }

    /// This leader and the followers synchronised and active with it (ZooKeeper's `isQuorumSynced` set),
    /// less those the membership in force made observers: they are leaving to come back as observers,
    /// and a reconfig counting on them as voters could never gather its quorum. (ZooKeeper counts them
    /// until their connection closes.)
    pub fn synced_members(&self) -> BTreeSet<Sid> {
        let followers = self.links.values().filter(|l| l.stage == Stage::Active && !l.observer);
        let followers = followers.filter_map(|l| l.sid).filter(|sid| !self.observers.contains(sid));
        followers.chain([self.settings.my_id]).collect()
    }

    /// The membership in force, as NEWLEADER carries it.
    pub fn config(&self) -> &[u8] {
        &self.settings.config
    }

    /// Voters (followers) that are synchronised and active, for `mntr`'s `zk_synced_followers`.
    pub fn synced_followers(&self) -> usize {
        self.links.values().filter(|l| l.stage == Stage::Active && !l.observer).count()
    }

    /// Observers that are synchronised and active, for `mntr`'s `zk_synced_observers`.
    pub fn synced_observers(&self) -> usize {
        self.links.values().filter(|l| l.stage == Stage::Active && l.observer).count()
    }

    /// Learners' syncs waiting for their commit, for `mntr`'s `zk_pending_syncs`.
    pub fn pending_syncs(&self) -> usize {
        self.pending_syncs.len()
    }

    /// Learners connected (any stage), for `mntr`'s `zk_followers` / `zk_learners`.
    pub fn learners(&self) -> usize {
        self.links.values().filter(|l| l.sid.is_some()).count()
    }

    pub fn step(&mut self, now_ms: u64, input: LeaderInput) -> Vec<LeaderOutput> {
        self.now_ms = now_ms;
        match input {
            LeaderInput::Linked(link) => {
                let fresh =
                    Link { sid: None, observer: false, stage: Stage::Info, last_heard_ms: now_ms, peer_last_zxid: -1 };
                self.links.insert(link, fresh);
            }
            LeaderInput::Packet(link, packet) => self.on_packet(now_ms, link, packet),
            LeaderInput::Unlinked(link) => {
                self.links.remove(&link);
            }
            LeaderInput::Propose(entries) => self.propose(entries),
            LeaderInput::Persisted(zxid) => self.persisted(self.settings.my_id, zxid),
            LeaderInput::SyncBarrier { link, after } => {
                self.pending_syncs.push((after, link));
                self.answer_syncs();
            }
            LeaderInput::RevalidateAnswer { link, session_id, valid } => {
                let data = RevalidateReply { session_id, valid }.to_bytes();
                self.send(link, QuorumPacket::new(PacketType::Revalidate, -1, Some(data)));
            }
            LeaderInput::Tick => self.tick(now_ms),
        }
        std::mem::take(&mut self.out)
    }

    fn on_packet(&mut self, now_ms: u64, link_id: LinkId, packet: QuorumPacket) {
        let Some(link) = self.links.get_mut(&link_id) else { return };
        link.last_heard_ms = now_ms;
        let stage = link.stage;
        match (stage, packet.kind) {
            (Stage::Info, PacketType::FollowerInfo | PacketType::ObserverInfo) => self.on_info(link_id, packet),
            (Stage::EpochAck, PacketType::AckEpoch) => self.on_ack_epoch(link_id, packet),
            (Stage::NewLeaderAck, PacketType::Ack) => self.on_newleader_ack(link_id, packet.zxid),
            (Stage::AwaitStart | Stage::Active, PacketType::Ack) => {
                let link = &self.links[&link_id];
                if let (false, Some(sid)) = (link.observer, link.sid) {
                    // The ACK after UPTODATE carries the epoch start; it acknowledges no txn.
                    if !super::is_epoch_start(packet.zxid) {
                        self.persisted(sid, packet.zxid);
                    }
                }
            }
            (Stage::AwaitStart | Stage::Active, PacketType::Ping) => {
                match SessionTouch::list_decode(packet.data.as_deref().unwrap_or_default()) {
                    Ok(touches) if touches.is_empty() => {}
                    Ok(touches) => self.out.push(LeaderOutput::Touches(touches)),
                    Err(e) => self.close(link_id, format!("undecodable PING reply: {e}")),
                }
            }
            (Stage::Active, PacketType::Request) => self.on_request(link_id, packet),
            (Stage::Active, PacketType::Revalidate) => {
                let data = packet.data.unwrap_or_default();
                match SessionTouch::list_decode(&data).ok().and_then(|t| t.first().copied()) {
                    Some(t) => self.out.push(LeaderOutput::Revalidate {
                        link: link_id,
                        session_id: t.session_id,
                        timeout_ms: t.timeout_ms,
                    }),
                    None => self.close(link_id, "undecodable REVALIDATE".into()),
                }
            }
            (stage, kind) => self.close(link_id, format!("unexpected {kind:?} while in {stage:?}")),
        }
    }

    fn on_info(&mut self, link_id: LinkId, packet: QuorumPacket) {
        let observer = packet.kind == PacketType::ObserverInfo;
        let info = match LearnerInfo::decode(packet.data.as_deref().unwrap_or_default()) {
            Ok(info) => info,
            Err(e) => return self.close(link_id, format!("undecodable learner info: {e}")),
        };
        if info.protocol_version < ZAB_PROTOCOL_VERSION {
            return self.close(link_id, format!("learner {} speaks pre-1.0 Zab", info.sid));
        }
        // A follower outside the voters is a member about to be added by a reconfig (ZooKeeper's
        // non-voting follower): it gets the proposals and its ACKs count for the configurations it is in.
        let voter = !observer
            && (self.voters.contains(&info.sid)
                || self.reconfigs.iter().any(|(_, _, voters)| voters.contains(&info.sid)));
        // A member connects again when it lost its link; whatever is left of the older one is stale. (ZooKeeper
        // keeps both until the older one's socket fails; replacing it bounds the links at one a member.)
        let older: Vec<LinkId> =
            self.links.iter().filter(|(id, l)| **id != link_id && l.sid == Some(info.sid)).map(|(id, _)| *id).collect();
        for stale in older {
            self.close(stale, format!("replaced by a newer connection from {}", info.sid));
        }
        let link = self.links.get_mut(&link_id).expect("checked by the caller");
        link.sid = Some(info.sid);
        link.observer = observer;
        link.stage = Stage::AwaitEpoch;
        let accepted = epoch_of(packet.zxid);
        match self.new_epoch {
            Some(epoch) => self.send_leader_info(link_id, epoch),
            None if voter => {
                self.connected.insert(info.sid, accepted);
                self.try_decide_epoch();
            }
            None => {}
        }
    }

    /// Discovery ends when a quorum of voters (this leader among them) has connected: the new epoch
    /// is one past every accepted epoch they reported.
    fn try_decide_epoch(&mut self) {
        if self.new_epoch.is_some() || !self.is_quorum(self.connected.keys()) {
            return;
        }
        let epoch = self.connected.values().copied().max().expect("the leader itself") + 1;
        self.new_epoch = Some(epoch);
        self.accepted_epoch = epoch;
        self.phase = Phase::EpochAcks;
        self.out.push(LeaderOutput::PersistAcceptedEpoch(epoch));
        let waiting: Vec<LinkId> =
            self.links.iter().filter(|(_, l)| l.stage == Stage::AwaitEpoch).map(|(id, _)| *id).collect();
        for link in waiting {
            self.send_leader_info(link, epoch);
        }
        // The leader's own ACKEPOCH.
        let me = self.settings.my_id;
        self.epoch_acked.insert(me);
        self.try_finish_epoch_acks();
    }

    fn send_leader_info(&mut self, link: LinkId, epoch: i64) {
        self.links.get_mut(&link).expect("present").stage = Stage::EpochAck;
        let data = int_body(ZAB_PROTOCOL_VERSION);
        self.send(link, QuorumPacket::new(PacketType::LeaderInfo, epoch_start(epoch), Some(data)));
    }

    fn on_ack_epoch(&mut self, link_id: LinkId, packet: QuorumPacket) {
        let Ok(their_epoch) = decode_int_body(packet.data.as_deref().unwrap_or_default()) else {
            return self.close(link_id, "undecodable ACKEPOCH".into());
        };
        let link = self.links.get_mut(&link_id).expect("checked by the caller");
        let sid = link.sid.expect("info came first");
        let observer = link.observer;
        link.stage = Stage::AwaitSync;
        link.peer_last_zxid = packet.zxid;
        let their_epoch = their_epoch as i64;
        let (mine, my_zxid) = (self.current_epoch, self.history.committed());
        if their_epoch != -1 {
            // A voter with a newer history than ours must not be synchronised to ours: the election
            // should have found it. Any other member — removed by a reconfig, joining, or a voter only of
            // a logged reconfiguration not yet in force — may hold txns the voters in force never
            // acknowledged: uncommitted, since every committed txn is on a quorum of the voters this
            // leader was elected by; it is truncated like any learner ahead. (ZooKeeper refuses it too,
            // and the member retries for ever.)
            let voter = self.voters.contains(&sid);
            if voter && (their_epoch > mine || (their_epoch == mine && packet.zxid > my_zxid)) {
                return self.close(
                    link_id,
                    format!(
                        "follower {sid} is ahead of the leader (epoch {their_epoch}, zxid {:#x} vs {mine}, {my_zxid:#x})",
                        packet.zxid
                    ),
                );
            }
            if packet.zxid != -1 && !observer && self.phase == Phase::EpochAcks {
                self.epoch_acked.insert(sid);
            }
        }
        self.try_finish_epoch_acks();
        if self.phase != Phase::EpochAcks {
            self.synchronise(link_id);
        }
    }

    /// Once a quorum has acked the epoch, this leader adopts it (currentEpoch) and synchronises every
    /// learner waiting for that.
    fn try_finish_epoch_acks(&mut self) {
        if self.phase != Phase::EpochAcks || !self.is_quorum(self.epoch_acked.iter()) {
            return;
        }
        let epoch = self.new_epoch.expect("decided before epoch acks");
        self.phase = Phase::NewLeaderAcks;
        self.current_epoch = epoch;
        self.out.push(LeaderOutput::PersistCurrentEpoch(epoch));
        let waiting: Vec<LinkId> =
            self.links.iter().filter(|(_, l)| l.stage == Stage::AwaitSync).map(|(id, _)| *id).collect();
        for link in waiting {
            self.synchronise(link);
        }
        let me = self.settings.my_id;
        self.newleader_acked.insert(me);
        self.try_establish();
    }

    /// Brings a learner to our history, then starts forwarding live traffic to it (nothing proposed
    /// in between can be missed: this step is atomic with respect to proposals), then NEWLEADER.
    fn synchronise(&mut self, link_id: LinkId) {
        let link = &self.links[&link_id];
        if link.stage != Stage::AwaitSync {
            return;
        }
        let observer = link.observer;
        let sync = plan(link.peer_last_zxid, &self.history);
        let snapshot = sync.steps.iter().any(|s| matches!(s, SyncStep::Snap(_)));
        self.out.push(LeaderOutput::Counted(LeaderCount::LearnerSync { snapshot }));
        for step in sync.steps {
            let packet = match step {
                SyncStep::Diff(zxid) => QuorumPacket::new(PacketType::Diff, zxid, None),
                SyncStep::Trunc(zxid) => QuorumPacket::new(PacketType::Trunc, zxid, None),
                SyncStep::Snap(zxid) => {
                    self.out.push(LeaderOutput::SendSnapshot(link_id, zxid));
                    continue;
                }
                SyncStep::Proposal(entry) => proposal(&entry),
                SyncStep::Commit(zxid) => QuorumPacket::new(PacketType::Commit, zxid, None),
            };
            self.send(link_id, packet);
        }
        // Observers get committed txns only (as INFORM, later); followers also get what is in flight.
        if !observer {
            let in_flight: Vec<QuorumPacket> =
                self.history.outstanding().filter(|e| e.zxid > sync.through).map(proposal).collect();
            for packet in in_flight {
                self.send(link_id, packet);
            }
        }
        let epoch = self.new_epoch.expect("decided before synchronisation");
        let config = Some(self.newleader_config(epoch));
        self.send(link_id, QuorumPacket::new(PacketType::NewLeader, epoch_start(epoch), config));
        self.links.get_mut(&link_id).expect("present").stage = Stage::NewLeaderAck;
    }

    /// The membership NEWLEADER carries: ours, versioned by the epoch when it is an initial one and
    /// `version_initial_config` is on.
    fn newleader_config(&self, epoch: i64) -> Vec<u8> {
        if let Some(logged) = &self.settings.logged_config {
            return logged.clone();
        }
        let config = &self.settings.config;
        match self.settings.version_initial_config && config_text::version_of(config) == Some(0) {
            true => config_text::with_version(config, epoch_start(epoch)),
            false => config.clone(),
        }
    }

    fn on_newleader_ack(&mut self, link_id: LinkId, zxid: i64) {
        let epoch = self.new_epoch.expect("NEWLEADER was sent");
        if zxid != epoch_start(epoch) {
            return self.close(link_id, format!("NEWLEADER ACK for {zxid:#x}, expected {:#x}", epoch_start(epoch)));
        }
        let link = self.links.get_mut(&link_id).expect("checked by the caller");
        link.stage = Stage::AwaitStart;
        let (sid, observer) = (link.sid.expect("info came first"), link.observer);
        if self.phase == Phase::Broadcast {
            self.activate(link_id);
        } else if !observer {
            self.newleader_acked.insert(sid);
            self.try_establish();
        }
    }

    /// A quorum holds our history and the new epoch: serve, and let the waiting learners serve too.
    fn try_establish(&mut self) {
        if self.phase != Phase::NewLeaderAcks || !self.is_quorum(self.newleader_acked.iter()) {
            return;
        }
        self.phase = Phase::Broadcast;
        let epoch = self.new_epoch.expect("decided");
        self.out.push(LeaderOutput::Established { epoch });
        let config = self.newleader_config(epoch);
        if let Some(logged) = self.settings.logged_config.take() {
            // A quorum of both memberships holds the newer one now: it is in force, here and (with
            // UPTODATE) on every learner; from now on only its quorums count.
            let (_, _, voters) = self.reconfigs.pop_front().expect("pending since the start");
            assert!(self.reconfigs.is_empty(), "no proposal before establishment");
            // ZooKeeper's startZkServer: a leader the membership leaves out commits nothing
            // (allowedToCommit); its followers leave at UPTODATE, and the new voters elect a leader.
            self.handed_over = !voters.contains(&self.settings.my_id);
            let listed: Vec<Sid> = voters.iter().copied().collect();
            self.commit = Commit::new(&listed, self.history.committed());
            self.voters = voters;
            self.observers = observers_of(&logged);
            self.settings.config = logged.clone();
            self.out.push(LeaderOutput::Activate(logged));
        } else if config != self.settings.config {
            // A quorum holds the versioned membership now: it is ours too.
            self.settings.config = config.clone();
            self.out.push(LeaderOutput::ConfigVersioned(config));
        }
        let waiting: Vec<LinkId> =
            self.links.iter().filter(|(_, l)| l.stage == Stage::AwaitStart).map(|(id, _)| *id).collect();
        for link in waiting {
            self.activate(link);
        }
    }

    fn activate(&mut self, link_id: LinkId) {
        self.send(link_id, QuorumPacket::new(PacketType::UpToDate, -1, None));
        self.links.get_mut(&link_id).expect("present").stage = Stage::Active;
    }

    fn on_request(&mut self, link_id: LinkId, packet: QuorumPacket) {
        let sid = self.links[&link_id].sid.expect("active links have a sid");
        match ForwardedRequest::decode(packet.data.as_deref().unwrap_or_default()) {
            Ok(request) => {
                let auth = packet.auth.unwrap_or_default();
                self.out.push(LeaderOutput::Request { link: link_id, sid, request, auth });
            }
            Err(e) => self.close(link_id, format!("undecodable REQUEST: {e}")),
        }
    }

    fn propose(&mut self, entries: Vec<Entry>) {
        assert_eq!(self.phase, Phase::Broadcast, "proposals only once established");
        let epoch = self.new_epoch.expect("established");
        let followers: Vec<LinkId> =
            self.links.iter().filter(|(_, l)| l.forwarding() && !l.observer).map(|(id, _)| *id).collect();
        self.out.push(LeaderOutput::Counted(LeaderCount::Proposed(entries.len() as u64)));
        if let Some(last) = entries.last() {
            self.proposed_at.push_back((last.zxid, self.now_ms, entries.len() as u64));
        }
        for entry in entries {
            assert_eq!(epoch_of(entry.zxid), epoch, "proposals carry this leadership's epoch");
            let packet = proposal(&entry);
            if let Some(config) = super::learner::reconfig_membership(&entry.bytes) {
                let voters = crate::membership::Membership::parse(&String::from_utf8_lossy(&config))
                    .expect("the sequencer proposes memberships it wrote")
                    .voters();
                self.commit.require(entry.zxid, &voters);
                self.reconfigs.push_back((entry.zxid, config, voters));
            }
            self.history.propose(entry);
            for &link in &followers {
                self.send(link, packet.clone());
            }
        }
    }

    /// `voter` has everything through `zxid` durable; a new commit point is announced and applied.
    fn persisted(&mut self, voter: Sid, zxid: i64) {
        let zxid = zxid.min(self.history.last_proposed());
        let point = match self.commit.persisted(voter, zxid) {
            Some(point) => point,
            None if planted::is_planted(PlantedBug::CommitOnMinority)
                && voter == self.settings.my_id
                && zxid > self.history.committed() =>
            {
                zxid
            }
            None => return,
        };
        if self.handed_over {
            return;
        }
        // A reconfiguration that removes this leader is the last txn it commits.
        let point =
            match self.reconfigs.iter().find(|(r, _, voters)| *r <= point && !voters.contains(&self.settings.my_id)) {
                Some((r, _, _)) => *r,
                None => point,
            };
        let newly = self.history.commit_through(point);
        let targets: Vec<(LinkId, bool)> =
            self.links.iter().filter(|(_, l)| l.forwarding()).map(|(id, l)| (*id, l.observer)).collect();
        let mut activated = Vec::new();
        for entry in &newly {
            let reconfig = self.reconfigs.front().is_some_and(|(zxid, _, _)| *zxid == entry.zxid);
            let designated = match reconfig {
                true => self.designated_leader(entry.zxid),
                false => self.settings.my_id,
            }
            .to_be_bytes();
            for &(link, observer) in &targets {
                let packet = match (observer, reconfig) {
                    (true, false) => QuorumPacket::new(PacketType::Inform, entry.zxid, Some(entry.bytes.to_vec())),
                    (false, false) => QuorumPacket::new(PacketType::Commit, entry.zxid, None),
                    (true, true) => {
                        let data = [&designated[..], &entry.bytes[..]].concat();
                        QuorumPacket::new(PacketType::InformAndActivate, entry.zxid, Some(data))
                    }
                    (false, true) => {
                        QuorumPacket::new(PacketType::CommitAndActivate, entry.zxid, Some(designated.to_vec()))
                    }
                };
                self.send(link, packet);
            }
            if reconfig {
                let (_, config, voters) = self.reconfigs.pop_front().expect("checked");
                if !voters.contains(&self.settings.my_id) {
                    self.handed_over = true;
                }
                self.commit.activate_newest(self.history.last_proposed());
                self.voters = voters;
                self.observers = observers_of(&config);
                self.settings.config = config.clone();
                activated.push(config);
            }
        }
        self.out.push(LeaderOutput::Counted(LeaderCount::Committed(newly.len() as u64)));
        while let Some(&(last, at, txns)) = self.proposed_at.front()
            && last <= point
        {
            self.proposed_at.pop_front();
            let latency_ms = self.now_ms.saturating_sub(at);
            self.out.push(LeaderOutput::Counted(LeaderCount::QuorumAcked { latency_ms, txns }));
        }
        self.out.push(LeaderOutput::Committed(point));
        self.out.extend(activated.into_iter().map(LeaderOutput::Activate));
        self.answer_syncs();
    }

    /// Who leads once the reconfiguration at `zxid` is active (ZooKeeper's `getDesignatedLeader`): this
    /// leader if it is a voter of it, else the new configuration's voter that has persisted the most
    /// (the lowest id among equals), so that the fewest proposals are dropped.
    fn designated_leader(&self, zxid: i64) -> Sid {
        let (_, _, voters) = self.reconfigs.front().expect("a reconfig is committing");
        if voters.contains(&self.settings.my_id) {
            return self.settings.my_id;
        }
        voters
            .iter()
            .filter_map(|&v| Some((self.commit.watermark(v)?, v)))
            .filter(|&(mark, _)| mark >= zxid)
            .max_by_key(|&(mark, v)| (mark, std::cmp::Reverse(v)))
            .map(|(_, v)| v)
            .expect("a quorum of the new configuration acknowledged it")
    }

    fn answer_syncs(&mut self) {
        let committed = self.history.committed();
        let (ready, waiting): (Vec<_>, Vec<_>) =
            self.pending_syncs.drain(..).partition(|(after, _)| *after <= committed);
        self.pending_syncs = waiting;
        for (_, link) in ready {
            self.send(link, QuorumPacket::new(PacketType::Sync, 0, None));
        }
    }

    /// Every half tick: ping the learners; give up leadership when the time limits say so.
    fn tick(&mut self, now_ms: u64) {
        let limits = self.settings.limits;
        if self.phase != Phase::Broadcast {
            if now_ms.saturating_sub(self.started_ms) > limits.init_ms() {
                let what = match self.phase {
                    Phase::Discovery => "epoch from quorum",
                    Phase::EpochAcks => "epoch to be acked by quorum",
                    _ => "NEWLEADER to be acked by quorum",
                };
                self.out.push(LeaderOutput::Abandon(format!("Timeout while waiting for {what}")));
            }
            return;
        }
        // ZooKeeper's learner socket times out after initLimit ticks until the learner has acknowledged
        // its synchronisation, syncLimit ticks from then on: a connection that never says who it is,
        // or stalls in its synchronisation, does not stay forever.
        let silent: Vec<(LinkId, &str)> = self
            .links
            .iter()
            .filter_map(|(id, l)| {
                let (limit_ms, what) = match l.stage {
                    Stage::Active => (limits.sync_ms(), "no reply within syncLimit"),
                    _ => (limits.init_ms(), "not synchronised within initLimit"),
                };
                (now_ms.saturating_sub(l.last_heard_ms) > limit_ms).then_some((*id, what))
            })
            .collect();
        for (link, what) in silent {
            self.close(link, what.into());
        }
        let ping = QuorumPacket::new(PacketType::Ping, self.history.last_proposed(), None);
        let active: Vec<LinkId> =
            self.links.iter().filter(|(_, l)| l.stage == Stage::Active).map(|(id, _)| *id).collect();
        for link in active {
            self.send(link, ping.clone());
        }
        let mut synced: BTreeSet<Sid> =
            self.links.values().filter(|l| l.stage == Stage::Active && !l.observer).filter_map(|l| l.sid).collect();
        synced.insert(self.settings.my_id);
        if !self.is_quorum(synced.iter()) {
            let sids: Vec<String> = synced.iter().map(|s| s.to_string()).collect();
            self.out.push(LeaderOutput::Abandon(format!(
                "Not sufficient followers synced, only synced with sids: [ {} ]",
                sids.join(",")
            )));
        }
    }

    /// Whether `sids` hold a quorum of the configuration in force, and of a proposed one too while a
    /// reconfiguration is pending (ZooKeeper's leader checks both) — and of a replaced one whose txns
    /// still wait for it. ZooKeeper does not check the last: a txn proposed before an activation then
    /// waits for ever for the old configuration's voters if they left (one re-roled to observer, say),
    /// and every later txn behind it; this leader gives up instead, and the next one commits them under
    /// the new configuration alone.
    fn is_quorum<'a>(&self, sids: impl Iterator<Item = &'a Sid> + Clone) -> bool {
        let majority = |voters: &BTreeSet<Sid>| sids.clone().filter(|s| voters.contains(s)).count() > voters.len() / 2;
        majority(&self.voters)
            && self.reconfigs.iter().all(|(_, _, voters)| majority(voters))
            && self.commit.configurations().all(majority)
    }

    fn send(&mut self, link: LinkId, packet: QuorumPacket) {
        self.out.push(LeaderOutput::Send(link, packet));
    }

    fn close(&mut self, link: LinkId, reason: String) {
        self.links.remove(&link);
        self.pending_syncs.retain(|(_, l)| *l != link);
        self.out.push(LeaderOutput::Close(link, reason));
    }
}

/// The members a membership text lists as observers (none if it is not one: a test's placeholder).
fn observers_of(config: &[u8]) -> BTreeSet<Sid> {
    let Ok(membership) = crate::membership::Membership::parse(&String::from_utf8_lossy(config)) else {
        return BTreeSet::new();
    };
    let observers = membership.servers().filter(|s| s.role == crate::servers::PeerRole::Observer);
    observers.map(|s| s.id as Sid).collect()
}

fn proposal(entry: &Entry) -> QuorumPacket {
    QuorumPacket::new(PacketType::Proposal, entry.zxid, Some(entry.bytes.to_vec()))
}
