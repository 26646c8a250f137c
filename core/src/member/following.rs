//! A follower's (or an observer's) role: the ZAB learner machine on its link to the leader, and the
//! [`Forwarder`] for its own clients' writes. Proposals go to the local log; the leader's COMMITs (an
//! observer's INFORMs) move the commit point.

use fk_net::quorum::packet::SessionTouch;
use fk_net::quorum::{PacketType, QuorumPacket, ServerState};
use fk_net::txn::Txn;
use tracing::info;

use super::{Context, Effect, MemberSettings};
use crate::membership::{Membership, ends_learner_role};
use crate::sequencer::SequencerInput;
use crate::sequencer::forwarder::{Forwarded, Forwarder};
use crate::sequencer::{Now, PendingRoute};
use crate::zab::config_text::version_of;
use crate::zab::learner::{Learner, LearnerInput, LearnerOutput, LearnerSettings, LearnerStart};
use crate::zab::{LinkId, Sid};

pub struct Following {
    leader_sid: Sid,
    link: LinkId,
    settings: LearnerSettings,
    /// Created once the connection to the leader is up.
    learner: Option<Learner>,
    forwarder: Forwarder,
    started_ms: u64,
    tick_every_ms: u64,
    next_tick_ms: u64,
    /// Proposals for the log and the commit point, gathered over a batch of packets and handed on
    /// together ([`Following::flush`]).
    to_log: Vec<Txn>,
    commit_to: Option<i64>,
}

impl Following {
    pub fn start(settings: &MemberSettings, leader_sid: Sid, link: LinkId, now: Now) -> Following {
        let now_ms = now.mono_ms;
        let observer = settings.election.observer;
        info!("{}: connecting to leader {leader_sid}", if observer { "OBSERVING" } else { "FOLLOWING" });
        let learner_settings =
            LearnerSettings { my_id: settings.my_id(), observer, limits: settings.limits, config_version: 0 };
        Following {
            leader_sid,
            link,
            settings: learner_settings,
            learner: None,
            forwarder: Forwarder::new(settings.sequencer, now),
            started_ms: now_ms,
            tick_every_ms: (settings.limits.tick_ms / 2).max(1),
            next_tick_ms: now_ms,
            to_log: Vec::new(),
            commit_to: None,
        }
    }

    pub fn state(&self) -> ServerState {
        if self.settings.observer { ServerState::Observing } else { ServerState::Following }
    }

    pub fn next_deadline_ms(&self) -> u64 {
        self.next_tick_ms
    }

    pub fn linked(&mut self, cx: &mut Context<'_>, now_ms: u64, link: LinkId) -> Result<(), String> {
        if link != self.link {
            return Ok(());
        }
        let start = LearnerStart {
            accepted_epoch: cx.facts.accepted_epoch,
            current_epoch: cx.facts.current_epoch,
            last_logged_zxid: cx.facts.last_zxid,
        };
        let mut learner = Learner::connect(self.settings.clone(), start, now_ms);
        let outputs = learner.take_outputs();
        self.learner = Some(learner);
        self.carry_out_all(cx, outputs)?;
        self.flush(cx);
        Ok(())
    }

    pub fn packets(
        &mut self,
        cx: &mut Context<'_>,
        now_ms: u64,
        link: LinkId,
        packets: Vec<QuorumPacket>,
    ) -> Result<(), String> {
        if link != self.link {
            return Ok(());
        }
        for packet in packets {
            self.step(cx, now_ms, LearnerInput::Packet(packet))?;
        }
        self.flush(cx);
        Ok(())
    }

    pub fn link_closed(&mut self, link: LinkId, reason: &str) -> Result<(), String> {
        match link == self.link {
            true => Err(format!("the link to leader {} ended: {reason}", self.leader_sid)),
            false => Ok(()),
        }
    }

    pub fn persisted(&mut self, cx: &mut Context<'_>, now_ms: u64, zxid: i64) -> Result<(), String> {
        self.step(cx, now_ms, LearnerInput::Persisted(zxid))?;
        self.flush(cx);
        Ok(())
    }

    /// The timer, then the turn's client inputs, forwarded once this member serves; `last_zxid` is the
    /// tree's (what a local sync or a reattaching client has seen).
    pub fn turn(
        &mut self,
        cx: &mut Context<'_>,
        now_ms: u64,
        inputs: &mut Vec<SequencerInput>,
        last_zxid: i64,
    ) -> Result<(), String> {
        if now_ms >= self.next_tick_ms {
            self.next_tick_ms = now_ms + self.tick_every_ms;
            if self.learner.is_none() && now_ms.saturating_sub(self.started_ms) > self.settings.limits.init_ms() {
                return Err(format!("leader {} did not take our connection within initLimit", self.leader_sid));
            }
            self.step(cx, now_ms, LearnerInput::Tick)?;
        }
        if !self.learner.as_ref().is_some_and(Learner::is_serving) || inputs.is_empty() {
            self.flush(cx);
            return Ok(());
        }
        let mut forwarded = Forwarded::default();
        for input in inputs.drain(..) {
            self.forwarder.input(input, last_zxid, &mut forwarded);
        }
        let Forwarded { routes, requests, revalidate, notices } = forwarded;
        // Routes first: each must wait in the applier before its txn can come back.
        if !routes.is_empty() {
            cx.out.push(Effect::Routes(routes));
        }
        for (request, auth) in requests {
            self.step(cx, now_ms, LearnerInput::Forward { request, auth })?;
        }
        for (session_id, timeout_ms) in revalidate {
            self.step(cx, now_ms, LearnerInput::Revalidate { session_id, timeout_ms })?;
        }
        cx.out.extend(notices.into_iter().map(Effect::Notice));
        self.flush(cx);
        Ok(())
    }

    /// Whether `membership` ends this learner's role (its leader no voter of it, or a new role for this
    /// member).
    fn ends_role(&self, cx: &Context<'_>, membership: &Membership) -> bool {
        ends_learner_role(membership, cx.settings.my_id() as u64, self.settings.observer, self.leader_sid)
    }

    /// Hands on the gathered proposals (one log append for the batch), then the commit point.
    fn flush(&mut self, cx: &mut Context<'_>) {
        if !self.to_log.is_empty() {
            cx.out.push(Effect::Log(std::mem::take(&mut self.to_log)));
        }
        if let Some(zxid) = self.commit_to.take() {
            cx.out.push(Effect::CommitThrough(zxid));
        }
    }

    fn step(&mut self, cx: &mut Context<'_>, now_ms: u64, input: LearnerInput) -> Result<(), String> {
        let Some(learner) = &mut self.learner else { return Ok(()) };
        let outputs = learner.step(now_ms, input);
        self.carry_out_all(cx, outputs)
    }

    fn carry_out_all(&mut self, cx: &mut Context<'_>, outputs: Vec<LearnerOutput>) -> Result<(), String> {
        outputs.into_iter().try_for_each(|output| self.carry_out(cx, output))
    }

    /// Does what the learner decided.
    fn carry_out(&mut self, cx: &mut Context<'_>, output: LearnerOutput) -> Result<(), String> {
        match output {
            LearnerOutput::Send(packet) => cx.out.push(Effect::Send(self.link, packet)),
            LearnerOutput::PersistAcceptedEpoch(epoch) => cx.out.push(Effect::PersistAcceptedEpoch(epoch)),
            LearnerOutput::MarkEpochUpdate => cx.out.push(Effect::MarkEpochUpdate),
            LearnerOutput::PersistCurrentEpoch(epoch) => {
                cx.out.push(Effect::PersistCurrentEpoch(epoch));
                cx.election.update_election_vote(epoch);
            }
            LearnerOutput::Truncate(zxid) => {
                self.flush(cx);
                info!("truncating the log to 0x{zxid:x} as the leader asks");
                cx.out.push(Effect::Truncate(zxid));
                cx.recent.truncate_after(zxid);
            }
            LearnerOutput::ReceiveSnapshot(zxid) => {
                self.flush(cx);
                info!("loading the leader's snapshot at 0x{zxid:x}");
                cx.out.push(Effect::ReceiveSnapshot(zxid));
                cx.recent.clear();
            }
            LearnerOutput::Append(entries) => {
                for e in entries {
                    let txn =
                        Txn::decode(&e.bytes).map_err(|err| format!("undecodable proposal 0x{:x}: {err}", e.zxid))?;
                    self.to_log.push(txn);
                    cx.recent.push(e);
                }
            }
            LearnerOutput::Commit(zxid) => self.commit_to = Some(self.commit_to.map_or(zxid, |c| c.max(zxid))),
            LearnerOutput::LeaderConfig(config) => {
                let newer = cx.settings.sequencer.prep.reconfig_enabled
                    && version_of(&config) > version_of(&cx.settings.election.config);
                let membership = newer.then(|| Membership::parse(&String::from_utf8_lossy(&config)).ok()).flatten();
                cx.out.push(Effect::AdoptConfig(config));
                // ZooKeeper's UPTODATE: a newer membership (a reconfig this leader established) without
                // this leader among its voters, or with a new role for this member, is a major change:
                // the role ends, and an election under the new membership follows.
                if let Some(membership) = membership
                    && self.ends_role(cx, &membership)
                {
                    return Err("changes proposed in reconfig".into());
                }
            }
            LearnerOutput::Activate { config, designated_leader } => {
                // The reconfig's commit is applied before the membership changes under it.
                self.flush(cx);
                let membership = Membership::parse(&String::from_utf8_lossy(&config))
                    .map_err(|e| format!("an unreadable membership in a reconfig: {e}"))?;
                let ends_role = self.ends_role(cx, &membership);
                cx.out.push(Effect::Activate(config));
                // ZooKeeper's processReconfig: a new leader or a new role for this member is a major
                // change, which ends this role; the next election starts from the new membership.
                if designated_leader != self.leader_sid || ends_role {
                    cx.election.designate(designated_leader);
                    return Err("changes proposed in reconfig".into());
                }
                info!(version = format!("{:#x}", membership.version), "reconfiguration activated");
            }
            LearnerOutput::Serve => {
                if std::mem::replace(cx.damaged, false) {
                    // UPTODATE: the leader's history is durable here (NEWLEADER was acknowledged once it
                    // was), so what the damage took is back.
                    info!(
                        "synchronised by leader {} after the damage found at start-up; voting again",
                        self.leader_sid
                    );
                    cx.out.push(Effect::Healed);
                }
                cx.out.push(Effect::Status { state: self.state(), serving: true });
                info!("{}: synchronised with leader {}; serving clients", self.state().name(), self.leader_sid);
            }
            LearnerOutput::ReplyToPing(zxid) => {
                let touches = self.forwarder.take_touches();
                let data = SessionTouch::list_to_bytes(&touches);
                cx.out.push(Effect::Send(self.link, QuorumPacket::new(PacketType::Ping, zxid, Some(data))));
            }
            LearnerOutput::SyncAnswered { after } => {
                if let Some(route) = self.forwarder.sync_answered(after) {
                    let route: PendingRoute = route;
                    cx.out.push(Effect::Routes(vec![route]));
                    // The txns the sync waits for may all be applied already.
                    cx.out.push(Effect::WakeApplier);
                }
            }
            LearnerOutput::RevalidateAnswer { session_id, valid } => {
                if let Some(notice) = self.forwarder.revalidated(session_id, valid) {
                    cx.out.push(Effect::Notice(notice));
                }
            }
            LearnerOutput::Abandon(reason) => return Err(reason),
        }
        Ok(())
    }
}
