//! Votes as the election compares and counts them: the candidate order (ZooKeeper's
//! `totalOrderPredicate`), a vote as recorded from one sender (ZooKeeper's `Vote` with its round, state
//! and message version, and its peculiar `equals`), and the quorum count over recorded votes
//! (`getVoteTracker` + `hasAllQuorums` for a majority verifier).

use std::collections::{BTreeMap, BTreeSet};

use fk_net::quorum::{ServerState, Vote};

/// Whether `candidate` should replace `current` as the proposed leader: a higher peer epoch wins, then a
/// higher zxid, then a higher sid (ZooKeeper's `totalOrderPredicate`).
///
/// ZooKeeper first refuses any candidate of weight 0; a majority verifier gives every id weight 1, and
/// hierarchical weights are not modelled here, so that check has nothing to refuse.
pub fn beats(candidate: &Vote, current: &Vote) -> bool {
    (candidate.peer_epoch, candidate.zxid, candidate.leader) > (current.peer_epoch, current.zxid, current.leader)
}

/// One sender's vote as the election records it: the vote, the round it was cast in, the state the
/// sender announced and the version of the message it came in (ZooKeeper's `Vote` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ballot {
    pub vote: Vote,
    pub election_epoch: i64,
    pub state: ServerState,
    /// The notification format version (0 for the oldest forms). Only the out-of-election comparison
    /// looks at it.
    pub version: i32,
}

impl Ballot {
    /// A vote cast while LOOKING, as ZooKeeper's four-argument `Vote` constructor makes it (version 0).
    pub fn looking(vote: Vote, election_epoch: i64) -> Ballot {
        Ballot { vote, election_epoch, state: ServerState::Looking, version: 0 }
    }

    /// Whether two recorded votes count as the same vote (ZooKeeper's `Vote.equals`, quirks included):
    /// - if either is LOOKING: same leader, zxid, round and peer epoch;
    /// - otherwise (both out of election): zxid and round are skipped, because members that finished
    ///   an election update their vote's epoch after syncing and would never agree on them
    ///   (ZOOKEEPER-1732/1805); leader and peer epoch must match — except when exactly one of the two
    ///   came in a version-0 message, where the leader alone is compared (mixed 3.4 ensembles).
    pub fn agrees_with(&self, other: &Ballot) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            return self.vote == other.vote && self.election_epoch == other.election_epoch;
        }
        if (self.version > 0) != (other.version > 0) {
            return self.vote.leader == other.vote.leader;
        }
        self.vote.leader == other.vote.leader && self.vote.peer_epoch == other.vote.peer_epoch
    }
}

/// Whether the voters whose recorded vote agrees with `target` form a strict majority of `voters`.
/// Votes recorded from non-voters count for nothing (ZooKeeper's `SyncedLearnerTracker.addAck` only
/// adds voting members).
pub fn has_quorum(voters: &BTreeSet<i64>, recorded: &BTreeMap<i64, Ballot>, target: &Ballot) -> bool {
    let agreeing = recorded.iter().filter(|(sid, ballot)| voters.contains(sid) && ballot.agrees_with(target)).count();
    agreeing > voters.len() / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(leader: i64, zxid: i64, peer_epoch: i64) -> Vote {
        Vote { leader, zxid, peer_epoch }
    }

    #[test]
    fn candidates_are_ordered_by_peer_epoch_then_zxid_then_sid() {
        // (candidate, current, candidate beats current)
        let table = [
            (vote(1, 0, 2), vote(3, 9, 1), true), // a newer epoch beats a newer zxid and higher sid
            (vote(3, 9, 1), vote(1, 0, 2), false), // ... and loses the other way round
            (vote(1, 8, 1), vote(3, 7, 1), true), // same epoch: the newer zxid beats the higher sid
            (vote(3, 7, 1), vote(1, 8, 1), false),
            (vote(3, 7, 1), vote(2, 7, 1), true), // same epoch and zxid: the higher sid
            (vote(2, 7, 1), vote(3, 7, 1), false),
            (vote(2, 7, 1), vote(2, 7, 1), false), // a vote never beats itself
            (vote(1, 0, 0), vote(i64::MIN, i64::MIN, i64::MIN), true), // anything beats an observer's vote
        ];
        for (candidate, current, expected) in table {
            assert_eq!(beats(&candidate, &current), expected, "{candidate:?} vs {current:?}");
        }
    }

    fn ballot(
        leader: i64,
        zxid: i64,
        election_epoch: i64,
        peer_epoch: i64,
        state: ServerState,
        version: i32,
    ) -> Ballot {
        Ballot { vote: vote(leader, zxid, peer_epoch), election_epoch, state, version }
    }

    #[test]
    fn recorded_votes_agree_as_zookeeper_compares_them() {
        use ServerState::*;
        let table = [
            // LOOKING on either side: all four numbers must match
            (ballot(3, 5, 2, 1, Looking, 2), ballot(3, 5, 2, 1, Following, 0), true),
            (ballot(3, 5, 2, 1, Looking, 2), ballot(3, 6, 2, 1, Looking, 2), false),
            (ballot(3, 5, 2, 1, Looking, 2), ballot(3, 5, 3, 1, Looking, 2), false),
            (ballot(3, 5, 2, 1, Looking, 2), ballot(3, 5, 2, 2, Looking, 2), false),
            // both out of election, same version class: leader and peer epoch only
            (ballot(3, 5, 2, 1, Following, 2), ballot(3, 9, 7, 1, Leading, 2), true),
            (ballot(3, 5, 2, 1, Following, 2), ballot(3, 5, 2, 2, Leading, 2), false),
            (ballot(3, 5, 2, 1, Following, 0), ballot(3, 5, 2, 2, Leading, 0), false),
            // exactly one version-0 side: the leader alone
            (ballot(3, 5, 2, 1, Following, 0), ballot(3, 9, 7, 4, Leading, 2), true),
            (ballot(3, 5, 2, 1, Following, 0), ballot(2, 5, 2, 1, Leading, 2), false),
        ];
        for (a, b, expected) in table {
            assert_eq!(a.agrees_with(&b), expected, "{a:?} vs {b:?}");
            assert_eq!(b.agrees_with(&a), expected, "symmetric: {b:?} vs {a:?}");
        }
    }

    #[test]
    fn a_quorum_is_a_strict_majority_of_voters_agreeing() {
        let voters: BTreeSet<i64> = [1, 2, 3, 4].into();
        let target = Ballot::looking(vote(3, 5, 1), 1);
        let other = Ballot::looking(vote(2, 5, 1), 1);
        // (recorded votes, quorum expected)
        let table: [(&[(i64, Ballot)], bool); 4] = [
            (&[(1, target), (3, target)], false), // 2 of 4 is not more than half
            (&[(1, target), (3, target), (4, target)], true),
            (&[(1, target), (3, target), (4, other)], false),
            (&[(1, target), (3, target), (9, target)], false), // 9 is no voter
        ];
        for (recorded, expected) in table {
            let recorded: BTreeMap<i64, Ballot> = recorded.iter().copied().collect();
            assert_eq!(has_quorum(&voters, &recorded, &target), expected, "{recorded:?}");
        }
    }
}
