//! The newest txns this member logged, kept in memory across roles, so that a new leader can
//! synchronise a learner a little behind by DIFF (ZooKeeper's committed log) without reading its log
//! files when it takes office — reading a preallocated log to its end took a failover 300 ms.
//!
//! Filled at start with the txns recovery replayed after the snapshot (as ZooKeeper fills its committed
//! log while loading: records below a snapshot may be history nobody committed, left by a SNAP), then
//! by every txn this member proposes (leading) or logs (following); cut back with the log on TRUNC,
//! to the tree's last zxid when a role ends (a batch whose write failed never reached the log), and
//! emptied on SNAP. Between roles the tree is
//! fast-forwarded over everything logged, so the entries through the tree's last zxid are exactly the
//! tail of this member's history.

use std::collections::VecDeque;

use fk_net::txn::Txn;

use crate::zab::Entry;

/// Committed txns kept for synchronising learners by DIFF (ZooKeeper's `commitLogCount`).
pub const HISTORY_COMMITTED_MAX: usize = 500;

/// Entries kept: the history's worth, plus room for those not yet committed.
const KEPT_MAX: usize = 2 * HISTORY_COMMITTED_MAX;

pub struct RecentLog {
    entries: VecDeque<Entry>,
}

impl RecentLog {
    /// Starts from the txns recovery replayed, oldest first.
    pub fn new(replayed: &[Txn]) -> RecentLog {
        let start = replayed.len().saturating_sub(KEPT_MAX);
        RecentLog { entries: replayed[start..].iter().map(Entry::of).collect() }
    }

    /// A txn this member logs next; anything at or after its zxid was never logged (a role ended with
    /// it still on its way) and goes.
    pub fn push(&mut self, entry: Entry) {
        while self.entries.back().is_some_and(|e| e.zxid >= entry.zxid) {
            self.entries.pop_back();
        }
        self.entries.push_back(entry);
        if self.entries.len() > KEPT_MAX {
            self.entries.pop_front();
        }
    }

    /// The log was cut back to `zxid` (TRUNC), or ends there (between roles).
    pub fn truncate_after(&mut self, zxid: i64) {
        while self.entries.back().is_some_and(|e| e.zxid > zxid) {
            self.entries.pop_back();
        }
    }

    /// The tree was replaced by a snapshot (SNAP): what came before is not this member's history.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The newest entries through `last_zxid`, if they reach it: a history with a hole before the
    /// commit point would synchronise learners wrongly, so then none.
    pub fn history_through(&self, last_zxid: i64) -> Vec<Entry> {
        let end = self.entries.partition_point(|e| e.zxid <= last_zxid);
        if end == 0 || self.entries[end - 1].zxid != last_zxid {
            return Vec::new();
        }
        let start = end.saturating_sub(HISTORY_COMMITTED_MAX);
        self.entries.range(start..end).cloned().collect()
    }
}
