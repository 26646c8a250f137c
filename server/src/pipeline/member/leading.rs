//! The leader's role: the ZAB leader machine, the links to its learners, and — once a quorum has
//! acknowledged NEWLEADER — the sequencer core, whose txns are proposed to the followers as they go to
//! the local log.

use std::collections::{BTreeSet, HashMap};
use std::net::TcpStream;

use fk_net::quorum::packet::SessionTouch;
use tracing::{info, warn};

use super::super::Mode;
use super::super::messages::*;
use super::super::quorum_link::{Link, Outgoing, QuorumEvent, start_leader_side};
use super::super::sequencer::Sequencing;
use super::recent::HISTORY_COMMITTED_MAX;
use super::{MemberIo, MemberThread};
use crate::auth::AuthIds;
use crate::sequencer::Sequencer;
use crate::zab::history::History;
use crate::zab::leader::{Leader, LeaderInput, LeaderOutput, LeaderSettings, LeaderStart};
use crate::zab::{LinkId, Sid};

pub struct Leading {
    leader: Leader,
    /// The sequencer core, once established.
    sequencing: Option<Sequencing>,
    links: HashMap<LinkId, Link>,
    /// Work for the sequencer from learners (forwarded requests, touches, revalidations).
    from_learners: Vec<SequencerInput>,
    tick_every_ms: u64,
    next_tick_ms: u64,
    /// The commit point for the applier, gathered over a batch of inputs ([`Leading::flush`]).
    commit_to: Option<i64>,
}

impl Leading {
    pub fn start(m: &mut MemberThread, now_ms: u64) -> Result<Leading, String> {
        let config = &m.shared.config;
        let last_zxid = m.shared.tree.read().last_processed_zxid();
        let (epochs, _) = fk_engine::epoch::load_epochs(&m.dirs.snap, last_zxid).map_err(|e| e.to_string())?;
        let voters: BTreeSet<Sid> = config.voter_ids().into_iter().map(|id| id as Sid).collect();
        let settings = LeaderSettings {
            my_id: m.my_id,
            voters,
            limits: m.limits,
            config: config.quorum_config_text().into_bytes(),
        };
        let start = LeaderStart {
            accepted_epoch: epochs.accepted,
            current_epoch: epochs.current,
            history: History::new(last_zxid, m.recent.history_through(last_zxid), HISTORY_COMMITTED_MAX),
        };
        m.shared.status.set(Mode::Leading, false);
        info!("LEADING: waiting for a quorum of followers (last zxid 0x{last_zxid:x})");
        let tick_every_ms = (m.limits.tick_ms / 2).max(1);
        Ok(Leading {
            leader: Leader::new(settings, start, now_ms),
            sequencing: None,
            links: HashMap::new(),
            from_learners: Vec::new(),
            tick_every_ms,
            next_tick_ms: now_ms,
            commit_to: None,
        })
    }

    pub fn next_deadline_ms(&self) -> u64 {
        let sequencer = self.sequencing.as_ref().map_or(u64::MAX, |s| s.core.next_deadline_ms());
        self.next_tick_ms.min(sequencer)
    }

    pub fn sequencer_core(&self) -> Option<&Sequencer> {
        self.sequencing.as_ref().map(|s| &s.core)
    }

    pub fn persisted(&mut self, m: &mut MemberIo<'_>, zxid: i64) -> Result<(), String> {
        self.step(m, LeaderInput::Persisted(zxid))?;
        self.flush(m)
    }

    /// Tells the applier the commit point reached over the inputs handled since the last flush.
    fn flush(&mut self, m: &mut MemberIo<'_>) -> Result<(), String> {
        match self.commit_to.take() {
            Some(zxid) => m.applier.send(ApplierMsg::CommitThrough(zxid)).map_err(|_| "the applier is gone".to_owned()),
            None => Ok(()),
        }
    }

    pub fn accepted(&mut self, m: &mut MemberIo<'_>, id: LinkId, stream: TcpStream) -> Result<(), String> {
        match start_leader_side(m.links, id, stream) {
            Ok(link) => {
                self.links.insert(id, link);
                self.step(m, LeaderInput::Linked(id))
            }
            Err(e) => {
                warn!("cannot start a learner link: {e}");
                Ok(())
            }
        }
    }

    pub fn quorum_event(&mut self, m: &mut MemberIo<'_>, event: QuorumEvent) -> Result<(), String> {
        match event {
            QuorumEvent::Packets(id, packets) => {
                for packet in packets {
                    // A packet may end the link (the machine closes it): the rest are late.
                    if !self.links.contains_key(&id) {
                        break;
                    }
                    self.step(m, LeaderInput::Packet(id, packet))?;
                }
                self.flush(m)
            }
            QuorumEvent::Closed(id, reason) if self.links.remove(&id).is_some() => {
                info!(link = id, "learner link closed: {reason}");
                self.step(m, LeaderInput::Unlinked(id))
            }
            // Late events of links already dropped.
            _ => Ok(()),
        }
    }

    /// The turn's client inputs (and the learners' work) through the sequencer, then the timer.
    pub fn turn(&mut self, m: &mut MemberIo<'_>, inputs: &mut Vec<SequencerInput>) -> Result<(), String> {
        let now_ms = m.now_ms();
        if now_ms >= self.next_tick_ms {
            self.next_tick_ms = now_ms + self.tick_every_ms;
            self.step(m, LeaderInput::Tick)?;
        }
        let Some(sequencing) = &mut self.sequencing else { return self.flush(m) };
        inputs.splice(0..0, self.from_learners.drain(..));
        let due = sequencing.core.next_deadline_ms() <= m.clock.now().mono_ms;
        if inputs.is_empty() && !due {
            return self.flush(m);
        }
        let for_learners = sequencing.step(m.shared, m.clock.now(), inputs, true);
        if !for_learners.entries.is_empty() {
            self.step(m, LeaderInput::Propose(for_learners.entries))?;
        }
        for (link, after) in for_learners.syncs {
            self.step(m, LeaderInput::SyncBarrier { link, after })?;
        }
        for (link, session_id, valid) in for_learners.revalidated {
            self.step(m, LeaderInput::RevalidateAnswer { link, session_id, valid })?;
        }
        self.flush(m)
    }

    fn step(&mut self, m: &mut MemberIo<'_>, input: LeaderInput) -> Result<(), String> {
        if let LeaderInput::Propose(entries) = &input {
            for entry in entries {
                m.shared.stats.leader.record_proposal(entry.bytes.len());
                m.recent.push(entry.clone());
            }
        }
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            let outputs = self.leader.step(m.now_ms(), input);
            for output in outputs {
                if let Some(next) = self.carry_out(m, output)? {
                    pending.push(next);
                }
            }
        }
        let figures = &m.shared.stats.leader;
        let set = |a: &std::sync::atomic::AtomicU64, v: usize| a.store(v as u64, std::sync::atomic::Ordering::Relaxed);
        set(&figures.learners, self.leader.learners());
        set(&figures.synced_followers, self.leader.synced_followers());
        set(&figures.synced_observers, self.leader.synced_observers());
        set(&figures.pending_syncs, self.leader.pending_syncs());
        Ok(())
    }

    /// Does what the leader decided; returns an input for it when that failed (a learner too slow).
    fn carry_out(&mut self, m: &mut MemberIo<'_>, output: LeaderOutput) -> Result<Option<LeaderInput>, String> {
        match output {
            LeaderOutput::Send(link, packet) => return Ok(self.send(link, Outgoing::Packet(packet))),
            LeaderOutput::SendSnapshot(link, zxid) => return Ok(self.send(link, Outgoing::Snapshot(zxid))),
            LeaderOutput::Close(link, reason) => {
                info!(link, "dropping a learner: {reason}");
                self.links.remove(&link);
            }
            LeaderOutput::PersistAcceptedEpoch(epoch) => m.write_accepted_epoch(epoch)?,
            LeaderOutput::PersistCurrentEpoch(epoch) => m.write_current_epoch(epoch)?,
            LeaderOutput::Established { epoch } => {
                let mut sequencing = Sequencing::new(m.shared, m.clock.now(), m.log.clone(), m.routes.clone());
                sequencing.start_epoch(epoch);
                self.sequencing = Some(sequencing);
                m.election.update_election_vote(epoch);
                m.shared.status.set(Mode::Leading, true);
                m.shared.status.set_epoch_zxid(crate::zab::epoch_start(epoch));
                info!("LEADING: established epoch {epoch} with a quorum; serving clients");
            }
            LeaderOutput::Committed(zxid) => self.commit_to = Some(self.commit_to.map_or(zxid, |c| c.max(zxid))),
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
        }
        Ok(None)
    }

    fn send(&mut self, link: LinkId, outgoing: Outgoing) -> Option<LeaderInput> {
        let sent = self.links.get(&link).map(|l| l.send(outgoing));
        if sent == Some(false) {
            warn!(link, "dropping a learner that fell too far behind");
            self.links.remove(&link);
            return Some(LeaderInput::Unlinked(link));
        }
        None
    }
}
