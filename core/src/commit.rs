//! When a txn is committed: once a quorum of voters has it durable. Pure: it is told what each voter
//! has persisted and answers with the commit point.
//!
//! Every voter persists txns in zxid order (a learner's log, like the leader's, is append-only), so
//! "voter v has persisted through zxid z" covers everything before z too, and the commit point is the
//! highest zxid that a quorum's watermarks have reached. Standalone, the only voter is the server itself
//! and a txn is committed the moment its batch is fsynced; a leader adds its learners' ACKs (each sent
//! only after the learner's own fsync).

use std::collections::{BTreeMap, BTreeSet};

use crate::planted::{self, PlantedBug};

/// A voter's id (ZooKeeper's sid; 0 stands for a standalone server).
pub type VoterId = i64;

/// One configuration's voters and the txns that need a quorum of them: from `from` on (every txn, for
/// the configuration in force at the start), through `until` once a later configuration replaced it.
#[derive(Debug, Clone)]
struct Quorum {
    voters: BTreeSet<VoterId>,
    from: i64,
    until: Option<i64>,
}

/// During a reconfiguration two configurations are in force: ZooKeeper's leader counts a proposal made
/// after the reconfig (and the reconfig itself) committed only once a quorum of the old AND of the new
/// configuration acknowledged it. Watermarks make that one rule: a configuration holds back the commit
/// point to the highest zxid a quorum of its voters reached, for the txns it covers.
#[derive(Debug, Clone)]
pub struct Commit {
    /// What each voter of a configuration in force has persisted through.
    persisted: BTreeMap<VoterId, i64>,
    quorums: Vec<Quorum>,
    committed: i64,
}

impl Commit {
    /// A server that is its own quorum, with everything through `last_zxid` already committed.
    pub fn standalone(last_zxid: i64) -> Commit {
        Commit::new(&[0], last_zxid)
    }

    /// `voters` (a majority of them is a quorum), with everything through `last_zxid` committed.
    pub fn new(voters: &[VoterId], last_zxid: i64) -> Commit {
        assert!(!voters.is_empty(), "a quorum needs voters");
        let persisted: BTreeMap<VoterId, i64> = voters.iter().map(|&v| (v, last_zxid)).collect();
        assert_eq!(persisted.len(), voters.len(), "voter ids are distinct");
        let quorum = Quorum { voters: persisted.keys().copied().collect(), from: i64::MIN, until: None };
        Commit { persisted, quorums: vec![quorum], committed: last_zxid }
    }

    pub fn committed(&self) -> i64 {
        self.committed
    }

    /// What `voter` is known to have persisted through, if it counts in a configuration in force.
    pub fn watermark(&self, voter: VoterId) -> Option<i64> {
        self.persisted.get(&voter).copied()
    }

    /// The voters of every configuration still counted: the one in force, those proposed, and replaced
    /// ones whose txns are not all committed yet.
    pub fn configurations(&self) -> impl Iterator<Item = &BTreeSet<VoterId>> {
        self.quorums.iter().map(|q| &q.voters)
    }

    /// A reconfiguration proposed at `zxid`: from it on, a quorum of `voters` is needed too. Voters new
    /// to the count have persisted nothing known yet.
    pub fn require(&mut self, zxid: i64, voters: &BTreeSet<VoterId>) {
        assert!(!voters.is_empty(), "a quorum needs voters");
        assert!(zxid > self.committed, "a reconfiguration is required before it commits");
        for &voter in voters {
            self.persisted.entry(voter).or_insert(-1);
        }
        self.quorums.push(Quorum { voters: voters.clone(), from: zxid, until: None });
    }

    /// The newest configuration was activated when txns through `last_proposed` had been proposed: the
    /// older ones are needed for those txns only.
    pub fn activate_newest(&mut self, last_proposed: i64) {
        let newest = self.quorums.len() - 1;
        for quorum in &mut self.quorums[..newest] {
            quorum.until.get_or_insert(last_proposed);
        }
        self.forget_done();
    }

    /// `voter` has every txn through `zxid` durable. Returns the new commit point if this moved it.
    /// Reports from voters of no configuration in force count for nothing; a watermark never moves back.
    pub fn persisted(&mut self, voter: VoterId, zxid: i64) -> Option<i64> {
        let watermark = self.persisted.get_mut(&voter)?;
        if zxid <= *watermark {
            return None;
        }
        *watermark = zxid;
        // Each configuration allows the commit point up to what a quorum of it reached, or (for one that
        // starts later) to just before its first txn.
        let newest = self.quorums.len() - 1;
        let point = self
            .quorums
            .iter()
            .enumerate()
            .filter(|&(i, _)| i == newest || !planted::is_planted(PlantedBug::NewQuorumOnly))
            .filter_map(|(_, q)| {
                let reached = self.reached(&q.voters);
                let done = q.until.is_some_and(|until| reached >= until);
                (!done).then(|| reached.max(q.from.saturating_sub(1)))
            })
            .min()
            .expect("the newest configuration is never done");
        let moved = (point > self.committed).then(|| {
            self.committed = point;
            point
        });
        self.forget_done();
        moved
    }

    /// The highest zxid a majority of `voters` has persisted. Ensembles are small; no allocation.
    fn reached(&self, voters: &BTreeSet<VoterId>) -> i64 {
        let quorum = voters.len() / 2 + 1;
        let marks = || voters.iter().map(|v| self.persisted.get(v).copied().unwrap_or(-1));
        marks()
            .filter(|&mark| marks().filter(|&other| other >= mark).count() >= quorum)
            .max()
            .expect("the lowest watermark is reached by every voter")
    }

    /// Drops replaced configurations whose txns are all committed, and the watermarks of voters no
    /// configuration counts any more.
    fn forget_done(&mut self) {
        let committed = self.committed;
        self.quorums.retain(|q| q.until.is_none_or(|until| until > committed));
        let counted: BTreeSet<VoterId> = self.quorums.iter().flat_map(|q| q.voters.iter().copied()).collect();
        self.persisted.retain(|v, _| counted.contains(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_commits_what_it_persists() {
        let mut commit = Commit::standalone(5);
        assert_eq!(commit.persisted(0, 9), Some(9));
        assert_eq!(commit.persisted(0, 9), None, "nothing new");
        assert_eq!(commit.persisted(0, 7), None, "a watermark never moves back");
        assert_eq!(commit.committed(), 9);
    }

    /// (voter, persisted through) in order → the commit point after each.
    #[test]
    fn a_majority_of_watermarks_decides() {
        /// (voters, reports in order, the commit point each report leaves)
        type Case = (&'static [VoterId], &'static [(VoterId, i64)], &'static [Option<i64>]);
        let cases: [Case; 4] = [
            (&[1, 2, 3], &[(1, 10), (2, 8), (3, 12), (2, 12)], &[None, Some(8), Some(10), Some(12)]),
            (&[1, 2, 3, 4, 5], &[(1, 5), (2, 5), (3, 4), (4, 9)], &[None, None, Some(4), Some(5)]),
            (&[1, 2, 3], &[(9, 100), (1, 3)], &[None, None]),
            (&[1], &[(1, 2)], &[Some(2)]),
        ];
        for (voters, reports, expected) in cases {
            let mut commit = Commit::new(voters, 0);
            let got: Vec<Option<i64>> = reports.iter().map(|&(v, z)| commit.persisted(v, z)).collect();
            assert_eq!(got, expected, "voters {voters:?}, reports {reports:?}");
        }
    }

    /// A reconfig at zxid 10 adding voter 4 to {1, 2, 3}: from 10 on a quorum of both counts; once
    /// activated after 12 was proposed, txns after 12 need the new configuration only.
    #[test]
    fn during_a_reconfiguration_both_quorums_count() {
        let mut commit = Commit::new(&[1, 2, 3], 5);
        commit.require(10, &BTreeSet::from([1, 2, 3, 4]));
        assert_eq!(commit.persisted(1, 12), None, "the leader alone");
        assert_eq!(commit.persisted(2, 12), Some(9), "the old quorum has 10, the new one does not");
        assert_eq!(commit.persisted(4, 11), Some(11), "3 of the 4 have 11");
        commit.activate_newest(12);
        assert_eq!(commit.persisted(4, 14), Some(12), "12 still needs the old quorum: 1 and 2 have it");
        assert_eq!(commit.persisted(2, 14), None, "only 2 and 4 of the four have 14");
        assert_eq!(commit.persisted(1, 14), Some(14), "after 12 the new configuration alone: 1, 2 and 4");
        // A configuration that drops voters: {1, 2, 3} → {1, 2}.
        let mut commit = Commit::new(&[1, 2, 3], 0);
        commit.require(3, &BTreeSet::from([1, 2]));
        assert_eq!(commit.persisted(1, 3), None);
        assert_eq!(commit.persisted(3, 3), Some(2), "the old quorum has 3; the new one needs 2 too");
        assert_eq!(commit.persisted(2, 3), Some(3));
        commit.activate_newest(3);
        assert_eq!(commit.persisted(3, 9), None, "a voter of the old configuration only counts no more");
        assert_eq!(commit.persisted(1, 9), None);
        assert_eq!(commit.persisted(2, 9), Some(9));
    }

    /// A replaced configuration is still counted (the leader's quorum check needs it) while txns it must
    /// acknowledge wait; once they commit, only the new one is.
    #[test]
    fn a_replaced_configuration_counts_until_its_txns_are_committed() {
        let mut commit = Commit::new(&[1, 2, 3], 0);
        commit.require(3, &BTreeSet::from([1, 4, 5]));
        assert_eq!(commit.persisted(1, 4), None);
        assert_eq!(commit.persisted(3, 4), Some(2), "the new configuration has no quorum of 3 yet");
        commit.activate_newest(4);
        let counted: Vec<BTreeSet<VoterId>> = commit.configurations().cloned().collect();
        assert_eq!(counted, [BTreeSet::from([1, 2, 3]), BTreeSet::from([1, 4, 5])], "3 and 4 wait for both");
        assert_eq!(commit.persisted(4, 4), Some(4));
        let counted: Vec<BTreeSet<VoterId>> = commit.configurations().cloned().collect();
        assert_eq!(counted, [BTreeSet::from([1, 4, 5])]);
    }
}
