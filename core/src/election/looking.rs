//! The `lookForLeader` loop's handling of one notification taken off its queue, while a round runs.

use fk_net::quorum::{Notification, ServerState};

use super::vote::{Ballot, beats, has_quorum};
use super::{Election, Output, Phase};

impl Election {
    /// One notification reaching the loop.
    ///
    /// During the finalize wait ZooKeeper polls the queue with `finalizeWait` per poll: a notification
    /// whose vote beats the proposal is put back and the loop goes on with it; any other notification
    /// is dropped unexamined and the wait starts over (each poll has its own timeout).
    pub(super) fn step(&mut self, now_ms: u64, from: i64, n: Notification, out: &mut Vec<Output>) {
        if matches!(self.phase, Phase::Finalizing { .. }) && !beats(&n.vote, &self.proposal) {
            // ZooKeeper drops it unexamined. A vote for the proposal in this round is recorded here
            // first: once every voter we can hear has cast one, nothing is left to wait for.
            let target = Ballot::looking(self.proposal, self.logical_clock);
            let ballot = Ballot::looking(n.vote, n.election_epoch);
            if n.state == ServerState::Looking && self.is_voter(from) && ballot.agrees_with(&target) {
                self.votes.insert(from, ballot);
                if self.every_connected_voter_agrees(&target) {
                    let vote = self.proposal;
                    self.decide(vote, self.logical_clock, out);
                    return;
                }
            }
            self.phase = Phase::Finalizing { deadline_ms: now_ms + self.settings.finalize_wait_ms };
            return;
        }
        // The poll that returned `n` ended; the next one waits a full timeout from now (the timeout only
        // doubles on an empty poll).
        self.phase = Phase::Polling { deadline_ms: now_ms + self.notification_timeout_ms };
        // Only a voter's vote for a voter counts (`validVoter(n.sid) && validVoter(n.leader)`).
        if !self.is_voter(from) || !self.is_voter(n.vote.leader) {
            return;
        }
        match n.state {
            ServerState::Looking => self.on_looking(now_ms, from, &n, out),
            // A voter never announces OBSERVING; ZooKeeper logs and ignores it.
            ServerState::Observing => {}
            // LEADING differs from FOLLOWING only through the 2-member oracle, which is not modelled.
            ServerState::Following | ServerState::Leading => self.on_out_of_election(from, &n, out),
        }
    }

    /// A vote from a member that is itself looking.
    fn on_looking(&mut self, now_ms: u64, from: i64, n: &Notification, out: &mut Vec<Output>) {
        // A member that knows no zxid yet (-1) neither counts nor is counted.
        if self.own_vote.zxid == -1 || n.vote.zxid == -1 {
            return;
        }
        if n.election_epoch > self.logical_clock {
            // I am behind: join the sender's round, forget this round's votes, and propose the better
            // of its candidate and myself (not my old proposal, which was made in a stale round).
            self.logical_clock = n.election_epoch;
            self.votes.clear();
            self.proposal = if beats(&n.vote, &self.own_vote) { n.vote } else { self.own_vote };
            self.send_notifications(out);
        } else if n.election_epoch < self.logical_clock {
            // An older round's vote counts for nothing (its sender was answered in `handle`).
            return;
        } else if beats(&n.vote, &self.proposal) {
            self.proposal = n.vote;
            self.send_notifications(out);
        }
        self.votes.insert(from, Ballot::looking(n.vote, n.election_epoch));
        let target = Ballot::looking(self.proposal, self.logical_clock);
        if has_quorum(&self.settings.voters, &self.votes, &target) {
            if self.every_connected_voter_agrees(&target) {
                let vote = self.proposal;
                self.decide(vote, self.logical_clock, out);
                return;
            }
            self.phase = Phase::Finalizing { deadline_ms: now_ms + self.settings.finalize_wait_ms };
        }
    }

    /// Whether every voter I can hear (and I) voted for `target` in this round: the finalize wait has
    /// nothing left to wait for.
    fn every_connected_voter_agrees(&self, target: &Ballot) -> bool {
        let me = self.settings.my_id;
        self.settings
            .voters
            .iter()
            .filter(|v| **v == me || self.connected.contains(v))
            .all(|v| self.votes.get(v).is_some_and(|ballot| ballot.agrees_with(target)))
    }

    /// A FOLLOWING or LEADING notification (`receivedFollowingNotification`): either the end of my
    /// own round seen from a member that already decided, or a sitting leader for a late joiner.
    fn on_out_of_election(&mut self, from: i64, n: &Notification, out: &mut Vec<Output>) {
        let ballot = Ballot { vote: n.vote, election_epoch: n.election_epoch, state: n.state, version: n.version };
        if n.election_epoch == self.logical_clock {
            // ZooKeeper records it in recvset without the message version (5-argument `Vote`), which
            // matters to `agrees_with`.
            self.votes.insert(from, Ballot { version: 0, ..ballot });
            if has_quorum(&self.settings.voters, &self.votes, &ballot) && self.leader_confirmed(false, &ballot) {
                self.decide(n.vote, n.election_epoch, out);
                return;
            }
        }
        // Every round's FOLLOWING/LEADING votes, current one included (ZOOKEEPER-1732): a quorum of them
        // behind a leader that says it leads is a sitting leader to join, in its round.
        self.out_of_election.insert(from, ballot);
        if has_quorum(&self.settings.voters, &self.out_of_election, &ballot) && self.leader_confirmed(true, &ballot) {
            self.logical_clock = n.election_epoch;
            self.decide(n.vote, n.election_epoch, out);
        }
    }

    /// ZooKeeper's `checkLeader`, over `votes` or `out_of_election`: another member is leader only if
    /// it told me itself that it is LEADING (so a crashed leader's followers cannot re-elect it); I am
    /// leader only if the quorum's round is my round — and never with unknown facts: a damaged leader
    /// restarting before its followers noticed it was gone would be taken back by them, and would cut
    /// their logs back to what it kept.
    fn leader_confirmed(&self, out_of_election: bool, ballot: &Ballot) -> bool {
        let leader = ballot.vote.leader;
        if leader != self.settings.my_id {
            let recorded = if out_of_election { &self.out_of_election } else { &self.votes };
            return recorded.get(&leader).is_some_and(|vote| vote.state == ServerState::Leading);
        }
        self.logical_clock == ballot.election_epoch && !self.facts_unknown
    }
}
