//! The leader's recent history: the last proposals it made or inherited, committed or not, in zxid
//! order. A returning learner whose last zxid falls inside it is synchronised by DIFF (or TRUNC + DIFF);
//! one older than its start needs a snapshot. ZooKeeper keeps the last `zookeeper.commitLogCount`
//! (500) committed proposals in memory for this; so do we, plus the ones still outstanding.

use std::collections::VecDeque;

use super::Entry;

#[derive(Debug, Clone)]
pub struct History {
    entries: VecDeque<Entry>,
    /// Everything through this zxid is committed.
    committed: i64,
    /// Committed entries kept beyond the outstanding ones.
    committed_max: usize,
}

impl History {
    /// A history whose last committed zxid is `committed`, seeded with the committed `recent` entries
    /// before it (ascending, ending at `committed` when not empty).
    pub fn new(committed: i64, recent: Vec<Entry>, committed_max: usize) -> History {
        assert!(recent.windows(2).all(|w| w[0].zxid < w[1].zxid), "history in zxid order");
        assert!(recent.last().is_none_or(|e| e.zxid <= committed), "seeded entries are committed");
        let mut history = History { entries: recent.into(), committed, committed_max };
        history.trim();
        history
    }

    pub fn committed(&self) -> i64 {
        self.committed
    }

    /// The last zxid proposed (committed or not).
    pub fn last_proposed(&self) -> i64 {
        self.entries.back().map_or(self.committed, |e| e.zxid).max(self.committed)
    }

    /// Appends a new proposal.
    pub fn propose(&mut self, entry: Entry) {
        assert!(
            entry.zxid > self.last_proposed(),
            "proposals in zxid order: {:#x} after {:#x}",
            entry.zxid,
            self.last_proposed()
        );
        self.entries.push_back(entry);
    }

    /// Moves the commit point to `zxid` (never back) and returns the entries it committed, in order.
    pub fn commit_through(&mut self, zxid: i64) -> Vec<Entry> {
        if zxid <= self.committed {
            return Vec::new();
        }
        let from = self.committed_count();
        self.committed = zxid;
        let to = self.committed_count();
        let newly = self.entries.range(from..to).cloned().collect();
        self.trim();
        newly
    }

    /// How many of the entries (a prefix, by zxid order) are committed.
    fn committed_count(&self) -> usize {
        self.entries.partition_point(|e| e.zxid <= self.committed)
    }

    /// Committed entries, oldest first.
    pub fn committed_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.range(..self.committed_count())
    }

    /// Proposed but not yet committed, oldest first.
    pub fn outstanding(&self) -> impl Iterator<Item = &Entry> {
        self.entries.range(self.committed_count()..)
    }

    /// The oldest and newest committed zxids held; both the commit point when none is held (as
    /// ZooKeeper's min/maxCommittedLog with an empty committed log).
    pub fn committed_range(&self) -> (i64, i64) {
        let mut committed = self.committed_entries();
        match committed.next() {
            None => (self.committed, self.committed),
            Some(first) => (first.zxid, self.committed_entries().last().map_or(first.zxid, |e| e.zxid)),
        }
    }

    fn trim(&mut self) {
        let excess = self.committed_count().saturating_sub(self.committed_max);
        self.entries.drain(..excess);
    }
}
