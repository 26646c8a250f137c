//! A follower's (or an observer's) role: the ZAB learner machine on its link to the leader, and the
//! [`Forwarder`] for its own clients' writes. Proposals go to the local log; the leader's COMMITs (an
//! observer's INFORMs) move the applier's commit point.

use fk_engine::files::{SNAPSHOT_PREFIX, list};
use fk_engine::log::truncate::{TruncateError, truncate_to};
use fk_net::quorum::packet::SessionTouch;
use fk_net::quorum::{PacketType, QuorumPacket};
use fk_net::txn::Txn;
use tracing::info;

use super::super::Mode;
use super::super::messages::*;
use super::super::quorum_link::{Link, Outgoing, QuorumEvent, connect_to_leader};
use super::super::sequencer::{settings, shard_message};
use super::{MemberIo, MemberThread};
use crate::sequencer::forwarder::{Forwarded, Forwarder};
use crate::storage::Dirs;
use crate::zab::learner::{Learner, LearnerInput, LearnerOutput, LearnerSettings, LearnerStart};
use crate::zab::{LinkId, Sid};

pub struct Following {
    leader_sid: Sid,
    link_id: LinkId,
    link: Link,
    settings: LearnerSettings,
    /// Created once the connection to the leader is up.
    learner: Option<Learner>,
    forwarder: Forwarder,
    mode: Mode,
    started_ms: u64,
    tick_every_ms: u64,
    next_tick_ms: u64,
    /// Proposals for the log and the commit point for the applier, gathered over a batch of packets
    /// and handed on together ([`Following::flush`]).
    to_log: Vec<Txn>,
    commit_to: Option<i64>,
}

impl Following {
    pub fn start(m: &mut MemberThread, leader_sid: Sid, now_ms: u64) -> Result<Following, String> {
        let config = &m.shared.config;
        let leader =
            config.peer(leader_sid as u64).ok_or_else(|| format!("leader {leader_sid} is not in the config"))?;
        let address = format!("{}:{}", leader.host, leader.quorum_port);
        let link_id = m.next_link;
        m.next_link += 1;
        let timeout = std::time::Duration::from_millis(m.limits.init_ms().max(1000));
        let link = connect_to_leader(&m.link_context, link_id, address.clone(), timeout)
            .map_err(|e| format!("cannot start the link to the leader: {e}"))?;
        let observer = config.is_observer();
        let mode = if observer { Mode::Observing } else { Mode::Following };
        m.shared.status.set(mode, false);
        info!("{}: connecting to leader {leader_sid} at {address}", if observer { "OBSERVING" } else { "FOLLOWING" });
        let settings = LearnerSettings { my_id: m.my_id, observer, limits: m.limits, config_version: 0 };
        Ok(Following {
            leader_sid,
            link_id,
            link,
            settings,
            learner: None,
            forwarder: Forwarder::new(settings_of(m), m.clock.now()),
            mode,
            started_ms: now_ms,
            tick_every_ms: (m.limits.tick_ms / 2).max(1),
            next_tick_ms: now_ms,
            to_log: Vec::new(),
            commit_to: None,
        })
    }

    pub fn next_deadline_ms(&self) -> u64 {
        self.next_tick_ms
    }

    pub fn persisted(&mut self, m: &mut MemberIo<'_>, zxid: i64) -> Result<(), String> {
        self.step(m, LearnerInput::Persisted(zxid))?;
        self.flush(m)
    }

    /// Hands the gathered proposals to the log (one message for the batch) and then the commit point to
    /// the applier.
    fn flush(&mut self, m: &mut MemberIo<'_>) -> Result<(), String> {
        if !self.to_log.is_empty() {
            let txns = std::mem::take(&mut self.to_log);
            m.log.send(LogMsg::Txns(txns)).map_err(|_| "the log stage is gone".to_owned())?;
        }
        if let Some(zxid) = self.commit_to.take() {
            m.applier.send(ApplierMsg::CommitThrough(zxid)).map_err(|_| "the applier is gone".to_owned())?;
        }
        Ok(())
    }

    pub fn quorum_event(&mut self, m: &mut MemberIo<'_>, event: QuorumEvent) -> Result<(), String> {
        match event {
            QuorumEvent::Linked(id) if id == self.link_id => {
                let epochs = m.epochs()?;
                let last_logged_zxid = m.shared.tree.read().last_processed_zxid();
                let start =
                    LearnerStart { accepted_epoch: epochs.accepted, current_epoch: epochs.current, last_logged_zxid };
                let mut learner = Learner::connect(self.settings.clone(), start, m.now_ms());
                let outputs = learner.take_outputs();
                self.learner = Some(learner);
                self.carry_out_all(m, outputs)?;
                self.flush(m)
            }
            QuorumEvent::Packets(id, packets) if id == self.link_id => {
                for packet in packets {
                    self.step(m, LearnerInput::Packet(packet))?;
                }
                self.flush(m)
            }
            QuorumEvent::Closed(id, reason) if id == self.link_id => {
                Err(format!("the link to leader {} ended: {reason}", self.leader_sid))
            }
            _ => Ok(()),
        }
    }

    /// The timer, then the turn's client inputs, forwarded once this member serves.
    pub fn turn(&mut self, m: &mut MemberIo<'_>, inputs: &mut Vec<SequencerInput>) -> Result<(), String> {
        let now_ms = m.now_ms();
        if now_ms >= self.next_tick_ms {
            self.next_tick_ms = now_ms + self.tick_every_ms;
            if self.learner.is_none() && now_ms.saturating_sub(self.started_ms) > self.settings.limits.init_ms() {
                return Err(format!("leader {} did not take our connection within initLimit", self.leader_sid));
            }
            self.step(m, LearnerInput::Tick)?;
        }
        if !self.learner.as_ref().is_some_and(Learner::is_serving) || inputs.is_empty() {
            return self.flush(m);
        }
        let last_zxid = m.shared.tree.read().last_processed_zxid();
        let mut forwarded = Forwarded::default();
        for input in inputs.drain(..) {
            self.forwarder.input(input, last_zxid, &mut forwarded);
        }
        let Forwarded { routes, requests, revalidate, notices } = forwarded;
        // Routes first: each must wait in the applier before its txn can come back.
        if !routes.is_empty() {
            m.routes.send(routes).map_err(|_| "the applier is gone".to_owned())?;
        }
        for (request, auth) in requests {
            self.step(m, LearnerInput::Forward { request, auth })?;
        }
        for (session_id, timeout_ms) in revalidate {
            self.step(m, LearnerInput::Revalidate { session_id, timeout_ms })?;
        }
        for notice in notices {
            let (shard, msg) = shard_message(notice);
            m.shared.shards[shard].send(msg);
        }
        self.flush(m)
    }

    fn step(&mut self, m: &mut MemberIo<'_>, input: LearnerInput) -> Result<(), String> {
        let Some(learner) = &mut self.learner else { return Ok(()) };
        let outputs = learner.step(m.now_ms(), input);
        self.carry_out_all(m, outputs)
    }

    fn carry_out_all(&mut self, m: &mut MemberIo<'_>, outputs: Vec<LearnerOutput>) -> Result<(), String> {
        let mut queue = std::collections::VecDeque::from(outputs);
        while let Some(output) = queue.pop_front() {
            if let Some(more) = self.carry_out(m, output)? {
                queue.extend(more);
            }
        }
        Ok(())
    }

    /// Does what the learner decided; may return what the learner says in turn.
    fn carry_out(&mut self, m: &mut MemberIo<'_>, output: LearnerOutput) -> Result<Option<Vec<LearnerOutput>>, String> {
        match output {
            LearnerOutput::Send(packet) => self.send(packet)?,
            LearnerOutput::PersistAcceptedEpoch(epoch) => m.write_accepted_epoch(epoch)?,
            LearnerOutput::PersistCurrentEpoch(epoch) => {
                m.write_current_epoch(epoch)?;
                m.election.update_election_vote(epoch);
            }
            LearnerOutput::Truncate(zxid) => {
                self.flush(m)?;
                info!("truncating the log to 0x{zxid:x} as the leader asks");
                m.rewrite_disk(|dirs| {
                    truncate_to(&dirs.log, zxid)?;
                    remove_snapshots_after(dirs, zxid)
                })?;
                m.recent.truncate_after(zxid);
            }
            LearnerOutput::ReceiveSnapshot(zxid) => {
                self.flush(m)?;
                info!("loading the leader's snapshot at 0x{zxid:x}");
                m.rewrite_disk(|dirs| {
                    // Whatever this member logged after the snapshot's point is not the leader's history.
                    match truncate_to(&dirs.log, zxid) {
                        Ok(_) | Err(TruncateError::NoLog { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    remove_snapshots_after(dirs, zxid)
                })?;
                m.recent.clear();
            }
            LearnerOutput::Append(entries) => {
                for e in entries {
                    let txn =
                        Txn::decode(&e.bytes).map_err(|err| format!("undecodable proposal 0x{:x}: {err}", e.zxid))?;
                    self.to_log.push(txn);
                    m.recent.push(e);
                }
            }
            LearnerOutput::Commit(zxid) => self.commit_to = Some(self.commit_to.map_or(zxid, |c| c.max(zxid))),
            LearnerOutput::Serve => {
                m.shared.status.set(self.mode, true);
                info!("{}: synchronised with leader {}; serving clients", self.mode.name(), self.leader_sid);
            }
            LearnerOutput::ReplyToPing(zxid) => {
                let touches = self.forwarder.take_touches();
                let data = SessionTouch::list_to_bytes(&touches);
                self.send(QuorumPacket::new(PacketType::Ping, zxid, Some(data)))?;
            }
            LearnerOutput::SyncAnswered { after } => {
                if let Some(route) = self.forwarder.sync_answered(after) {
                    m.routes.send(vec![route]).map_err(|_| "the applier is gone".to_owned())?;
                    // Wake the applier: the txns the sync waits for may all be applied already.
                    m.applier.send(ApplierMsg::Wake).map_err(|_| "the applier is gone".to_owned())?;
                }
            }
            LearnerOutput::RevalidateAnswer { session_id, valid } => {
                if let Some(notice) = self.forwarder.revalidated(session_id, valid) {
                    let (shard, msg) = shard_message(notice);
                    m.shared.shards[shard].send(msg);
                }
            }
            LearnerOutput::Abandon(reason) => return Err(reason),
        }
        Ok(None)
    }

    fn send(&self, packet: QuorumPacket) -> Result<(), String> {
        match self.link.send(Outgoing::Packet(packet)) {
            true => Ok(()),
            false => Err("the link to the leader is backed up".into()),
        }
    }
}

fn settings_of(m: &MemberThread) -> crate::sequencer::SequencerSettings {
    settings(&m.shared.config)
}

/// Snapshots newer than `zxid` describe a history the leader does not have; recovery must not load them.
fn remove_snapshots_after(dirs: &Dirs, zxid: i64) -> anyhow::Result<()> {
    for (snapshot_zxid, path) in list(&dirs.snap, SNAPSHOT_PREFIX)? {
        if snapshot_zxid > zxid {
            info!("removing {}: it is newer than the leader's history", path.display());
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}
