//! When a txn is committed: once a quorum of voters has it durable. Pure: it is told what each voter
//! has persisted and answers with the commit point.
//!
//! Every voter persists txns in zxid order (a learner's log, like the leader's, is append-only), so
//! "voter v has persisted through zxid z" covers everything before z too, and the commit point is the
//! highest zxid that a quorum's watermarks have reached. Standalone, the only voter is the server itself
//! and a txn is committed the moment its batch is fsynced; a leader adds its learners' ACKs (each sent
//! only after the learner's own fsync).

use std::collections::BTreeMap;

/// A voter's id (ZooKeeper's sid; 0 stands for a standalone server).
pub type VoterId = i64;

#[derive(Debug, Clone)]
pub struct Commit {
    /// What each voter has persisted through.
    persisted: BTreeMap<VoterId, i64>,
    quorum: usize,
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
        Commit { quorum: voters.len() / 2 + 1, persisted, committed: last_zxid }
    }

    pub fn committed(&self) -> i64 {
        self.committed
    }

    /// `voter` has every txn through `zxid` durable. Returns the new commit point if this moved it.
    /// Reports from unknown voters count for nothing; a watermark never moves back.
    pub fn persisted(&mut self, voter: VoterId, zxid: i64) -> Option<i64> {
        let watermark = self.persisted.get_mut(&voter)?;
        if zxid <= *watermark {
            return None;
        }
        *watermark = zxid;
        // The quorum-th highest watermark: reached by a quorum. Ensembles are small; no allocation.
        let reached = self
            .persisted
            .values()
            .filter(|&&mark| self.persisted.values().filter(|&&other| other >= mark).count() >= self.quorum)
            .copied()
            .max()
            .expect("the lowest watermark is reached by every voter");
        (reached > self.committed).then(|| {
            self.committed = reached;
            reached
        })
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
}
