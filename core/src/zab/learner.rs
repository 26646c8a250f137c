//! A learner's side of ZAB (ZooKeeper 3.8's `Learner`, `Follower`, `Observer`), pure.
//!
//! FOLLOWERINFO/OBSERVERINFO → LEADERINFO (accept the new epoch: persist it, answer ACKEPOCH with our
//! current epoch and last zxid) → DIFF, TRUNC or SNAP and the proposals we lack → NEWLEADER (adopt the
//! epoch as current, and acknowledge once everything received is durable) → UPTODATE (serve clients).
//! Then: PROPOSAL → log → ACK once durable (followers), COMMIT → apply, INFORM → log and apply
//! (observers), PING → reply with the sessions touched here.
//!
//! One deliberate difference from ZooKeeper 3.8: it adopts the new epoch and acknowledges NEWLEADER as
//! soon as the txns of the synchronisation are queued for its log, and applies those committed during a
//! DIFF in memory only (ZOOKEEPER-4646: a follower that crashes right after may have acked history it
//! no longer has). Here every txn received is logged, and `currentEpoch` is written and NEWLEADER
//! acknowledged only once all of them are durable.

use std::collections::VecDeque;
use std::sync::Arc;

use fk_net::client::Id;
use fk_net::quorum::packet::{ForwardedRequest, RevalidateReply, SessionTouch, ZAB_PROTOCOL_VERSION, int_body};
use fk_net::quorum::{LearnerInfo, PacketType, QuorumPacket};

use super::{Entry, Limits, Sid, epoch_of, epoch_start};
use crate::planted::{self, PlantedBug};

#[derive(Debug, Clone)]
pub struct LearnerSettings {
    pub my_id: Sid,
    pub observer: bool,
    pub limits: Limits,
    /// Our membership's version, reported in LearnerInfo (0 for a static config).
    pub config_version: i64,
}

/// What the learner starts from: its epochs and the last txn in its log.
#[derive(Debug, Clone, Copy)]
pub struct LearnerStart {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    pub last_logged_zxid: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerInput {
    Packet(QuorumPacket),
    /// The log holds everything through this zxid durably.
    Persisted(i64),
    /// A local client's write (or sync), for the leader.
    Forward {
        request: ForwardedRequest,
        auth: Vec<Id>,
    },
    /// A client reattaches here to an existing session: ask the leader.
    Revalidate {
        session_id: i64,
        timeout_ms: i32,
    },
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerOutput {
    Send(QuorumPacket),
    PersistAcceptedEpoch(i64),
    /// Mark durably that this member is taking on a new epoch (ZooKeeper's `updatingEpoch` file): the
    /// synchronisation about to be logged may be newer than the current epoch, which is written only
    /// once it is durable; a crash in between must not leave a member that refuses to start.
    MarkEpochUpdate,
    /// Write the current epoch, then drop the `updatingEpoch` mark.
    PersistCurrentEpoch(i64),
    /// Cut the log after this zxid and reload the tree from disk, before anything after this output.
    Truncate(i64),
    /// The leader's snapshot follows on the stream: read it, store it durably as of this zxid and
    /// load it, before anything after this output.
    ReceiveSnapshot(i64),
    /// Append to the log (its durability comes back as [`LearnerInput::Persisted`]).
    Append(Vec<Entry>),
    /// Everything through this zxid is committed: apply it once logged.
    Commit(i64),
    /// Synchronised: serve clients.
    Serve,
    /// The membership the leader's NEWLEADER carried, now established (sent before `Serve`).
    LeaderConfig(Vec<u8>),
    /// Answer the leader's PING with this zxid and the sessions touched since the last one.
    ReplyToPing(i64),
    /// A reconfiguration committed (COMMITANDACTIVATE, an observer's INFORMANDACTIVATE), after its
    /// `Commit`: the membership it activates, and the member the leader designates to lead under it.
    Activate {
        config: Vec<u8>,
        designated_leader: Sid,
    },
    /// The leader answered our oldest forwarded sync: reply to it once everything received before
    /// (through this zxid) is applied.
    SyncAnswered {
        after: i64,
    },
    RevalidateAnswer {
        session_id: i64,
        valid: bool,
    },
    /// Following is over; the reason is for the log.
    Abandon(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Info sent, waiting for LEADERINFO.
    LeaderInfo,
    /// ACKEPOCH sent, waiting for DIFF/TRUNC/SNAP.
    SyncHead,
    /// Receiving the history; NEWLEADER ends it.
    Syncing,
    /// NEWLEADER received: acknowledged once everything received is durable.
    NewLeaderDurable,
    /// NEWLEADER acknowledged, waiting for UPTODATE.
    UpToDate,
    Broadcast,
}

pub struct Learner {
    settings: LearnerSettings,
    phase: Phase,
    accepted_epoch: i64,
    current_epoch: i64,
    new_epoch: i64,
    /// The newest zxid handed to the log (or set by TRUNC/SNAP).
    last_received: i64,
    /// What NEWLEADER covers: the last zxid of the synchronisation that came before it.
    synchronised_through: i64,
    persisted: i64,
    /// Proposals logged but not yet acknowledged (followers ack only after NEWLEADER).
    unacked: VecDeque<i64>,
    last_heard_ms: u64,
    /// The membership NEWLEADER carried, handed on at UPTODATE.
    leader_config: Option<Vec<u8>>,
    /// The memberships of reconfig proposals received and not yet activated, by zxid.
    reconfigs: std::collections::BTreeMap<i64, Vec<u8>>,
    out: Vec<LearnerOutput>,
}

/// Where a txn entry's type is: after the header's clientId (8 bytes), cxid (4), zxid (8) and time (8).
const TXN_TYPE_AT: usize = 28;

/// The membership a reconfig txn (its entry bytes) sets `/zookeeper/config` to; `None` for other txns.
/// Every proposal passes here: only a reconfig's entry is decoded.
pub fn reconfig_membership(entry: &[u8]) -> Option<Vec<u8>> {
    let kind = entry.get(TXN_TYPE_AT..TXN_TYPE_AT + 4)?;
    if i32::from_be_bytes(kind.try_into().expect("4 bytes")) != fk_net::client::OpCode::Reconfig.as_i32() {
        return None;
    }
    match fk_net::txn::Txn::decode(entry).ok()?.body {
        fk_net::txn::TxnBody::Reconfig(set) => set.data,
        _ => None,
    }
}

impl Learner {
    /// A learner that has just connected to the leader: it introduces itself.
    pub fn connect(settings: LearnerSettings, start: LearnerStart, now_ms: u64) -> Learner {
        let mut learner = Learner {
            phase: Phase::LeaderInfo,
            leader_config: None,
            reconfigs: std::collections::BTreeMap::new(),
            accepted_epoch: start.accepted_epoch,
            current_epoch: start.current_epoch,
            new_epoch: -1,
            last_received: start.last_logged_zxid,
            synchronised_through: start.last_logged_zxid,
            persisted: start.last_logged_zxid,
            unacked: VecDeque::new(),
            last_heard_ms: now_ms,
            out: Vec::new(),
            settings,
        };
        let kind = if learner.settings.observer { PacketType::ObserverInfo } else { PacketType::FollowerInfo };
        let info = LearnerInfo {
            sid: learner.settings.my_id,
            protocol_version: ZAB_PROTOCOL_VERSION,
            config_version: learner.settings.config_version,
        };
        learner.send(QuorumPacket::new(kind, epoch_start(start.accepted_epoch), Some(info.to_bytes())));
        learner
    }

    /// The connection's first outputs (the info packet).
    pub fn take_outputs(&mut self) -> Vec<LearnerOutput> {
        std::mem::take(&mut self.out)
    }

    pub fn is_serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// The epoch being followed, once the leader has said it.
    pub fn epoch(&self) -> Option<i64> {
        (self.new_epoch >= 0).then_some(self.new_epoch)
    }

    pub fn step(&mut self, now_ms: u64, input: LearnerInput) -> Vec<LearnerOutput> {
        match input {
            LearnerInput::Packet(packet) => {
                self.last_heard_ms = now_ms;
                self.on_packet(packet);
            }
            LearnerInput::Persisted(zxid) => self.on_persisted(zxid),
            LearnerInput::Forward { request, auth } => {
                let mut packet = QuorumPacket::new(PacketType::Request, -1, Some(request.to_bytes()));
                packet.auth = Some(auth);
                self.send(packet);
            }
            LearnerInput::Revalidate { session_id, timeout_ms } => {
                let data = SessionTouch::list_to_bytes(&[SessionTouch { session_id, timeout_ms }]);
                self.send(QuorumPacket::new(PacketType::Revalidate, -1, Some(data)));
            }
            LearnerInput::Tick => self.tick(now_ms),
        }
        std::mem::take(&mut self.out)
    }

    fn on_packet(&mut self, packet: QuorumPacket) {
        use PacketType::*;
        match (self.phase, packet.kind) {
            (Phase::LeaderInfo, LeaderInfo) => self.on_leader_info(packet.zxid),
            (Phase::SyncHead, Diff) => self.start_sync(),
            (Phase::SyncHead, Trunc) if planted::is_planted(PlantedBug::KeepTxnsOnTrunc) => self.start_sync(),
            (Phase::SyncHead, Trunc) => {
                self.start_sync();
                self.last_received = packet.zxid;
                self.persisted = packet.zxid;
                self.out.push(LearnerOutput::Truncate(packet.zxid));
            }
            (Phase::SyncHead, Snap) => {
                self.start_sync();
                self.last_received = packet.zxid;
                self.persisted = packet.zxid;
                self.out.push(LearnerOutput::ReceiveSnapshot(packet.zxid));
            }
            (Phase::Syncing | Phase::NewLeaderDurable | Phase::UpToDate | Phase::Broadcast, Proposal) => {
                self.on_proposal(packet)
            }
            (Phase::Syncing | Phase::NewLeaderDurable | Phase::UpToDate | Phase::Broadcast, Commit) => {
                self.out.push(LearnerOutput::Commit(packet.zxid))
            }
            (Phase::Syncing | Phase::NewLeaderDurable | Phase::UpToDate | Phase::Broadcast, CommitAndActivate)
                if !self.settings.observer =>
            {
                self.on_commit_and_activate(packet.zxid, packet.data.as_deref().unwrap_or_default())
            }
            (Phase::Syncing, NewLeader) => {
                self.leader_config = packet.data;
                self.on_new_leader(packet.zxid)
            }
            (Phase::UpToDate, UpToDate) => {
                self.phase = Phase::Broadcast;
                if let Some(config) = self.leader_config.take() {
                    self.out.push(LearnerOutput::LeaderConfig(config));
                }
                self.out.push(LearnerOutput::Serve);
                self.send(QuorumPacket::new(Ack, epoch_start(self.new_epoch), None));
            }
            (Phase::UpToDate | Phase::Broadcast, Inform) if self.settings.observer => {
                let zxid = packet.zxid;
                self.on_proposal(packet);
                self.out.push(LearnerOutput::Commit(zxid));
            }
            (Phase::UpToDate | Phase::Broadcast, InformAndActivate) if self.settings.observer => {
                let data = packet.data.unwrap_or_default();
                let Some(txn) = data.get(8..) else {
                    return self.abandon("an INFORMANDACTIVATE shorter than its designated leader".into());
                };
                let zxid = packet.zxid;
                self.on_proposal(QuorumPacket::new(Inform, zxid, Some(txn.to_vec())));
                self.on_commit_and_activate(zxid, &data[..8]);
            }
            (Phase::UpToDate | Phase::Broadcast, Ping) => self.out.push(LearnerOutput::ReplyToPing(packet.zxid)),
            (Phase::Broadcast, Sync) => self.out.push(LearnerOutput::SyncAnswered { after: self.last_received }),
            (Phase::Broadcast, Revalidate) => match RevalidateReply::decode(packet.data.as_deref().unwrap_or_default())
            {
                Ok(r) => self.out.push(LearnerOutput::RevalidateAnswer { session_id: r.session_id, valid: r.valid }),
                Err(e) => self.abandon(format!("undecodable REVALIDATE reply: {e}")),
            },
            (phase, kind) => self.abandon(format!("unexpected {kind:?} from the leader while in {phase:?}")),
        }
    }

    fn on_leader_info(&mut self, zxid: i64) {
        let epoch = epoch_of(zxid);
        let answer = if epoch > self.accepted_epoch {
            self.accepted_epoch = epoch;
            self.out.push(LearnerOutput::PersistAcceptedEpoch(epoch));
            self.current_epoch as i32
        } else if epoch == self.accepted_epoch {
            // Already acked this epoch (ZAB 1.0 acks an epoch once): say so with -1.
            -1
        } else {
            return self
                .abandon(format!("Leaders epoch, {epoch} is less than accepted epoch, {}", self.accepted_epoch));
        };
        self.new_epoch = epoch;
        self.phase = Phase::SyncHead;
        self.send(QuorumPacket::new(PacketType::AckEpoch, self.last_received, Some(int_body(answer))));
    }

    fn start_sync(&mut self) {
        self.phase = Phase::Syncing;
        if self.new_epoch > self.current_epoch {
            self.out.push(LearnerOutput::MarkEpochUpdate);
        }
    }

    fn on_proposal(&mut self, packet: QuorumPacket) {
        if packet.zxid <= self.last_received {
            return self.abandon(format!(
                "proposal {:#x} does not follow {:#x}: the leader's stream is out of order",
                packet.zxid, self.last_received
            ));
        }
        let bytes: Arc<[u8]> = packet.data.unwrap_or_default().into();
        if let Some(config) = reconfig_membership(&bytes) {
            self.reconfigs.insert(packet.zxid, config);
        }
        self.last_received = packet.zxid;
        if !self.settings.observer {
            self.unacked.push_back(packet.zxid);
        }
        self.out.push(LearnerOutput::Append(vec![Entry { zxid: packet.zxid, bytes }]));
    }

    /// ZooKeeper's `Follower`: COMMITANDACTIVATE commits the reconfig proposal `zxid` and activates its
    /// membership; its data is the designated leader's id.
    fn on_commit_and_activate(&mut self, zxid: i64, data: &[u8]) {
        let Some(designated_leader) = data.get(..8).map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes"))) else {
            return self.abandon("a COMMITANDACTIVATE without its designated leader".into());
        };
        let Some(config) = self.reconfigs.remove(&zxid) else {
            return self.abandon(format!("COMMITANDACTIVATE for {zxid:#x}, which was not a reconfig proposal"));
        };
        self.reconfigs.retain(|&pending, _| pending > zxid);
        self.out.push(LearnerOutput::Commit(zxid));
        self.out.push(LearnerOutput::Activate { config, designated_leader });
    }

    fn on_new_leader(&mut self, zxid: i64) {
        if zxid != epoch_start(self.new_epoch) {
            return self.abandon(format!("NEWLEADER for {zxid:#x} in epoch {}", self.new_epoch));
        }
        self.phase = Phase::NewLeaderDurable;
        self.synchronised_through = self.last_received;
        self.ack_new_leader_when_durable();
    }

    fn on_persisted(&mut self, zxid: i64) {
        self.persisted = self.persisted.max(zxid);
        match self.phase {
            Phase::NewLeaderDurable => self.ack_new_leader_when_durable(),
            Phase::UpToDate | Phase::Broadcast => self.send_acks(),
            _ => {}
        }
    }

    /// Once the synchronisation NEWLEADER closed is durable, the new epoch becomes this member's (a vote
    /// carrying it then vouches for a history it really holds) and NEWLEADER is acknowledged. Live
    /// proposals that followed NEWLEADER are acknowledged one by one as usual (as ZooKeeper's learner
    /// acks NEWLEADER before it reads them): waiting for them too would chase a target that a steady
    /// write load keeps moving, past initLimit.
    fn ack_new_leader_when_durable(&mut self) {
        if self.persisted < self.synchronised_through {
            return;
        }
        self.phase = Phase::UpToDate;
        self.current_epoch = self.new_epoch;
        self.out.push(LearnerOutput::PersistCurrentEpoch(self.new_epoch));
        self.send(QuorumPacket::new(PacketType::Ack, epoch_start(self.new_epoch), None));
        self.send_acks();
    }

    /// A follower acknowledges each proposal once it is durable, in order (ZooKeeper's leader counts
    /// acks per proposal).
    fn send_acks(&mut self) {
        while let Some(&zxid) = self.unacked.front() {
            if zxid > self.persisted {
                break;
            }
            self.unacked.pop_front();
            self.send(QuorumPacket::new(PacketType::Ack, zxid, None));
        }
    }

    fn tick(&mut self, now_ms: u64) {
        let limits = self.settings.limits;
        let limit = if self.phase == Phase::Broadcast { limits.sync_ms() } else { limits.init_ms() };
        if now_ms.saturating_sub(self.last_heard_ms) > limit {
            self.abandon(format!("nothing from the leader for {} ms", now_ms - self.last_heard_ms));
        }
    }

    fn send(&mut self, packet: QuorumPacket) {
        self.out.push(LearnerOutput::Send(packet));
    }

    fn abandon(&mut self, reason: String) {
        self.out.push(LearnerOutput::Abandon(reason));
    }
}
