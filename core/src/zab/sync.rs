//! How the leader brings a learner to its history, decided from the learner's last zxid — ZooKeeper
//! 3.8's `LearnerHandler.syncFollower` and `queueCommittedProposals`, restricted to the in-memory history
//! (a learner older than it gets a snapshot; ZooKeeper may instead replay its on-disk log).
//!
//! | learner's last zxid `p`                          | plan                                        |
//! |--------------------------------------------------|---------------------------------------------|
//! | `p` = the leader's commit point                  | DIFF(p), nothing to send                    |
//! | `p` > newest committed, `p` not an epoch start   | TRUNC(newest committed)                     |
//! | oldest ≤ `p` ≤ newest committed, `p` in history  | DIFF(newest), then PROPOSAL+COMMIT after p  |
//! | … `p` not in history, same epoch as the next one | TRUNC(the one before), then PROPOSAL+COMMIT |
//! | … `p` an epoch start                             | DIFF(newest), then PROPOSAL+COMMIT after p  |
//! | otherwise                                        | SNAP(commit point) and the snapshot         |

use super::history::History;
use super::{Entry, epoch_of, is_epoch_start};

/// One thing the leader sends a learner while synchronising it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStep {
    Diff(i64),
    Trunc(i64),
    /// SNAP at this zxid, followed on the stream by the tree as of (at least) it.
    Snap(i64),
    Proposal(Entry),
    Commit(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlan {
    pub steps: Vec<SyncStep>,
    /// The learner has everything through this zxid once the steps are done: live proposals after it
    /// follow.
    pub through: i64,
}

pub fn plan(peer_last_zxid: i64, history: &History) -> SyncPlan {
    let committed = history.committed();
    let (min, max) = history.committed_range();
    if peer_last_zxid == committed {
        return SyncPlan { steps: vec![SyncStep::Diff(peer_last_zxid)], through: peer_last_zxid };
    }
    if peer_last_zxid > max && !is_epoch_start(peer_last_zxid) {
        return SyncPlan { steps: vec![SyncStep::Trunc(max)], through: max };
    }
    if (min..=max).contains(&peer_last_zxid)
        && let Some(plan) = replay_committed(peer_last_zxid, history, max)
    {
        return plan;
    }
    SyncPlan { steps: vec![SyncStep::Snap(committed)], through: committed }
}

/// DIFF or TRUNC, then every committed proposal the peer lacks; `None` where only a snapshot will do
/// (ZooKeeper never sends TRUNC across an epoch boundary: the learner could not apply it).
fn replay_committed(peer_last_zxid: i64, history: &History, newest: i64) -> Option<SyncPlan> {
    let new_epoch_peer = is_epoch_start(peer_last_zxid);
    let mut steps = Vec::new();
    let mut head_chosen = false;
    let mut previous = -1;
    let mut through = peer_last_zxid;
    for entry in history.committed_entries() {
        let zxid = entry.zxid;
        if zxid < peer_last_zxid {
            previous = zxid;
            continue;
        }
        if !head_chosen {
            if zxid == peer_last_zxid {
                steps.push(SyncStep::Diff(newest));
                head_chosen = true;
                continue;
            }
            if new_epoch_peer {
                steps.push(SyncStep::Diff(newest));
            } else {
                // The peer has txns this leader never saw (it may have led before): cut them, unless
                // that would cross an epoch.
                if epoch_of(zxid) != epoch_of(peer_last_zxid) {
                    return None;
                }
                steps.push(SyncStep::Trunc(previous));
            }
            head_chosen = true;
        }
        if zxid <= through {
            continue;
        }
        steps.push(SyncStep::Proposal(entry.clone()));
        steps.push(SyncStep::Commit(zxid));
        through = zxid;
    }
    if !head_chosen && new_epoch_peer {
        steps.push(SyncStep::Diff(newest));
        head_chosen = true;
    }
    head_chosen.then_some(SyncPlan { steps, through })
}
