//! The leader's role: the ZAB leader machine and — once a quorum has acknowledged NEWLEADER — the
//! sequencer core, whose txns are proposed to the learners as they go to the local log.

use std::collections::BTreeSet;

use fk_engine::tree::DataTree;
use fk_net::quorum::packet::SessionTouch;
use fk_net::quorum::{QuorumPacket, ServerState};
use tracing::info;

use super::recent::{HISTORY_COMMITTED_MAX, RecentLog};
use super::{Context, DiskFacts, Effect, LeaderFigures, MemberSettings, Tally};
use crate::auth::AuthIds;
use crate::membership::Membership;
use crate::sequencer::handoff::Sequencing;
use crate::sequencer::{Now, Sequencer, SequencerInput};
use crate::zab::history::History;
use crate::zab::leader::{Leader, LeaderInput, LeaderOutput, LeaderSettings, LeaderStart};
use crate::zab::{Entry, LinkId, Sid, epoch_start};

pub struct Leading {
    leader: Leader,
    /// The sequencer core, once established.
    sequencing: Option<Sequencing>,
    /// Learner links the leader machine knows (others' events are late).
    links: BTreeSet<LinkId>,
    /// Work for the sequencer from learners (forwarded requests, touches, revalidations).
    from_learners: Vec<SequencerInput>,
    tick_every_ms: u64,
    next_tick_ms: u64,
    /// The commit point, gathered over a batch of inputs ([`Leading::flush`]).
    commit_to: Option<i64>,
    /// An epoch established by an input that brings no tree (a lone voter is its own quorum at once,
    /// and a learner may link before the first tick): the sequencer starts with the next input that
    /// brings one, a tick at the latest.
    established_without_tree: Option<i64>,
}

impl Leading {
    /// `logged_config`: a membership newer than the one in force that this member's log holds.
    pub fn start(
        settings: &MemberSettings,
        facts: DiskFacts,
        recent: &RecentLog,
        logged_config: Option<Vec<u8>>,
        now_ms: u64,
    ) -> Leading {
        let voters: BTreeSet<Sid> = settings.election.voters.clone();
        let leader_settings = LeaderSettings {
            my_id: settings.my_id(),
            voters,
            limits: settings.limits,
            config: settings.election.config.clone(),
            version_initial_config: settings.sequencer.prep.reconfig_enabled,
            logged_config,
        };
        let last_zxid = facts.last_zxid;
        let start = LeaderStart {
            accepted_epoch: facts.accepted_epoch,
            current_epoch: facts.current_epoch,
            history: History::new(last_zxid, recent.history_through(last_zxid), HISTORY_COMMITTED_MAX),
        };
        info!("LEADING: waiting for a quorum of followers (last zxid 0x{last_zxid:x})");
        Leading {
            leader: Leader::new(leader_settings, start, now_ms),
            sequencing: None,
            links: BTreeSet::new(),
            from_learners: Vec::new(),
            tick_every_ms: (settings.limits.tick_ms / 2).max(1),
            next_tick_ms: now_ms,
            commit_to: None,
            established_without_tree: None,
        }
    }

    pub fn next_deadline_ms(&self) -> u64 {
        let sequencer = self.sequencing.as_ref().map_or(u64::MAX, |s| s.core.next_deadline_ms());
        self.next_tick_ms.min(sequencer)
    }

    pub fn sequencer(&self) -> Option<&Sequencer> {
        self.sequencing.as_ref().map(|s| &s.core)
    }

    pub fn figures(&self) -> LeaderFigures {
        LeaderFigures {
            learners: self.leader.learners(),
            synced_followers: self.leader.synced_followers(),
            synced_observers: self.leader.synced_observers(),
            pending_syncs: self.leader.pending_syncs(),
        }
    }

    pub fn linked(&mut self, cx: &mut Context<'_>, now_ms: u64, link: LinkId) -> Result<(), String> {
        self.links.insert(link);
        self.step(cx, now_ms, None, LeaderInput::Linked(link))
    }

    pub fn persisted(&mut self, cx: &mut Context<'_>, now_ms: u64, zxid: i64) -> Result<(), String> {
        self.step(cx, now_ms, None, LeaderInput::Persisted(zxid))?;
        self.flush(cx);
        Ok(())
    }

    pub fn packets(
        &mut self,
        cx: &mut Context<'_>,
        now: Now,
        link: LinkId,
        packets: Vec<QuorumPacket>,
        tree: &DataTree,
    ) -> Result<(), String> {
        for packet in packets {
            // A packet may end the link (the machine closes it): the rest are late.
            if !self.links.contains(&link) {
                break;
            }
            self.step(cx, now.mono_ms, Some((now, tree)), LeaderInput::Packet(link, packet))?;
        }
        self.flush(cx);
        Ok(())
    }

    pub fn link_closed(&mut self, cx: &mut Context<'_>, now_ms: u64, link: LinkId, reason: &str) -> Result<(), String> {
        if !self.links.remove(&link) {
            return Ok(());
        }
        info!(link, "learner link closed: {reason}");
        self.step(cx, now_ms, None, LeaderInput::Unlinked(link))
    }

    /// The timer, then the turn's client inputs (and the learners' work) through the sequencer.
    pub fn turn(
        &mut self,
        cx: &mut Context<'_>,
        now: Now,
        inputs: &mut Vec<SequencerInput>,
        tree: &DataTree,
    ) -> Result<(), String> {
        if now.mono_ms >= self.next_tick_ms {
            self.next_tick_ms = now.mono_ms + self.tick_every_ms;
            self.step(cx, now.mono_ms, Some((now, tree)), LeaderInput::Tick)?;
        }
        let Some(sequencing) = &mut self.sequencing else {
            self.flush(cx);
            return Ok(());
        };
        inputs.splice(0..0, self.from_learners.drain(..));
        if inputs.is_empty() && sequencing.core.next_deadline_ms() > now.mono_ms {
            self.flush(cx);
            return Ok(());
        }
        let handoff = sequencing.step(now, inputs.drain(..), tree);
        cx.out.extend(handoff.notices.into_iter().map(Effect::Notice));
        if !handoff.routes.is_empty() {
            cx.out.push(Effect::Routes(handoff.routes));
        }
        if handoff.wake_applier {
            cx.out.push(Effect::WakeApplier);
        }
        let entries: Vec<Entry> = handoff.txns.iter().map(Entry::of).collect();
        if !handoff.txns.is_empty() {
            cx.out.push(Effect::Log(handoff.txns));
        }
        if !entries.is_empty() {
            for entry in &entries {
                cx.proposal_sizes.record(entry.bytes.len());
                cx.recent.push(entry.clone());
            }
            self.step(cx, now.mono_ms, Some((now, tree)), LeaderInput::Propose(entries))?;
        }
        for (link, after) in handoff.learner_syncs {
            self.step(cx, now.mono_ms, Some((now, tree)), LeaderInput::SyncBarrier { link, after })?;
        }
        for (link, session_id, valid) in handoff.revalidated {
            self.step(cx, now.mono_ms, Some((now, tree)), LeaderInput::RevalidateAnswer { link, session_id, valid })?;
        }
        self.flush(cx);
        Ok(())
    }

    /// Hands on the commit point reached over the inputs handled since the last flush.
    fn flush(&mut self, cx: &mut Context<'_>) {
        if let Some(zxid) = self.commit_to.take() {
            cx.out.push(Effect::CommitThrough(zxid));
        }
        // What a reconfig's quorum check sees (ZooKeeper's isQuorumSynced reads it live).
        if let Some(sequencing) = &mut self.sequencing {
            sequencing.core.set_synced(self.leader.synced_members());
        }
    }

    /// One input to the leader machine and what it decides; `state` (the time and the tree) is needed
    /// where establishment may follow (it starts the sequencer core).
    fn step(
        &mut self,
        cx: &mut Context<'_>,
        now_ms: u64,
        state: Option<(Now, &DataTree)>,
        input: LeaderInput,
    ) -> Result<(), String> {
        if state.is_some()
            && let Some(epoch) = self.established_without_tree.take()
        {
            self.carry_out(cx, state, LeaderOutput::Established { epoch })?;
        }
        for output in self.leader.step(now_ms, input) {
            self.carry_out(cx, state, output)?;
        }
        Ok(())
    }

    fn carry_out(
        &mut self,
        cx: &mut Context<'_>,
        state: Option<(Now, &DataTree)>,
        output: LeaderOutput,
    ) -> Result<(), String> {
        match output {
            LeaderOutput::Send(link, packet) => cx.out.push(Effect::Send(link, packet)),
            LeaderOutput::SendSnapshot(link, zxid) => cx.out.push(Effect::SendSnapshot(link, zxid)),
            LeaderOutput::Close(link, reason) => {
                info!(link, "dropping a learner: {reason}");
                self.links.remove(&link);
                cx.out.push(Effect::Close(link));
            }
            LeaderOutput::PersistAcceptedEpoch(epoch) => cx.out.push(Effect::PersistAcceptedEpoch(epoch)),
            LeaderOutput::PersistCurrentEpoch(epoch) => cx.out.push(Effect::PersistCurrentEpoch(epoch)),
            LeaderOutput::ConfigVersioned(config) => cx.out.push(Effect::AdoptConfig(config)),
            LeaderOutput::Established { epoch } => {
                let Some((now, tree)) = state else {
                    self.established_without_tree = Some(epoch);
                    return Ok(());
                };
                let mut sequencing = Sequencing::new(Sequencer::new(cx.settings.sequencer, tree, now), tree);
                sequencing.core.start_epoch(epoch);
                let membership = Membership::parse(&String::from_utf8_lossy(self.leader.config()))
                    .map_err(|e| format!("this leader's membership is unreadable: {e}"))?;
                let synced = self.leader.synced_members();
                sequencing.core.set_ensemble(membership, synced, cx.settings.standalone_enabled);
                self.sequencing = Some(sequencing);
                cx.election.update_election_vote(epoch);
                cx.out.push(Effect::Status { state: ServerState::Leading, serving: true });
                cx.out.push(Effect::EpochStart(epoch_start(epoch)));
                info!("LEADING: established epoch {epoch} with a quorum; serving clients");
            }
            LeaderOutput::Committed(zxid) => self.commit_to = Some(self.commit_to.map_or(zxid, |c| c.max(zxid))),
            LeaderOutput::Activate(config) => {
                // The reconfig's commit is applied before the membership changes under it.
                self.flush(cx);
                let membership = Membership::parse(&String::from_utf8_lossy(&config))
                    .map_err(|e| format!("an unreadable membership in a reconfig: {e}"))?;
                info!(version = format!("{:#x}", membership.version), "reconfiguration activated");
                if let Some(sequencing) = &mut self.sequencing {
                    let synced = self.leader.synced_members();
                    let standalone_enabled = cx.settings.standalone_enabled;
                    sequencing.core.set_ensemble(membership, synced, standalone_enabled);
                }
                cx.out.push(Effect::Activate(config));
            }
            LeaderOutput::Request { link, sid: _, request, auth } => {
                self.from_learners.push(SequencerInput::Forwarded { link, request, auth: AuthIds { ids: auth } })
            }
            LeaderOutput::Touches(touches) => {
                let ids = touches.iter().map(|t: &SessionTouch| t.session_id).collect();
                self.from_learners.push(SequencerInput::Touch(ids));
            }
            LeaderOutput::Revalidate { link, session_id, timeout_ms } => {
                self.from_learners.push(SequencerInput::Revalidate { link, session_id, timeout_ms })
            }
            LeaderOutput::Abandon(reason) => return Err(reason),
            LeaderOutput::Counted(count) => cx.out.push(Effect::Tally(Tally::Leader(count))),
        }
        Ok(())
    }
}
