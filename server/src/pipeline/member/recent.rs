//! The newest txns this member logged, kept in memory across roles, so that a new leader can
//! synchronise a learner a little behind by DIFF (ZooKeeper's committed log) without reading its log
//! files when it takes office — reading a preallocated log to its end took a failover 300 ms.
//!
//! Filled once from disk at start, then by every txn this member proposes (leading) or logs
//! (following); cut back with the log on TRUNC and emptied on SNAP. Between roles the tree is
//! fast-forwarded over everything logged, so the entries through the tree's last zxid are exactly the
//! tail of this member's history.

use std::collections::VecDeque;

use fk_engine::files::{LOG_PREFIX, SNAPSHOT_PREFIX, list};
use fk_engine::log::read_log;
use fk_engine::snap::looks_complete;
use tracing::warn;

use super::super::sequencer::entry;
use crate::storage::Dirs;
use crate::zab::Entry;

/// Committed txns kept for synchronising learners by DIFF (ZooKeeper's `commitLogCount`).
pub const HISTORY_COMMITTED_MAX: usize = 500;

/// Entries kept: the history's worth, plus room for those not yet committed.
const KEPT_MAX: usize = 2 * HISTORY_COMMITTED_MAX;

pub struct RecentLog {
    entries: VecDeque<Entry>,
}

impl RecentLog {
    pub fn load(dirs: &Dirs, last_zxid: i64) -> RecentLog {
        RecentLog { entries: from_disk(dirs, last_zxid) }
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

    /// The log was cut back to `zxid` (TRUNC).
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

/// The newest logged txns through `last_zxid` (at most [`HISTORY_COMMITTED_MAX`]), read once at
/// start. As ZooKeeper fills its committed log while loading, only txns after the newest snapshot
/// count: a member synchronised by SNAP keeps, below the snapshot, log records of a history the
/// ensemble never committed.
fn from_disk(dirs: &Dirs, last_zxid: i64) -> VecDeque<Entry> {
    let snapshot_zxid = list(&dirs.snap, SNAPSHOT_PREFIX)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, path)| looks_complete(path))
        .map(|(zxid, _)| zxid)
        .max()
        .unwrap_or(-1);
    let mut entries = VecDeque::new();
    let files = list(&dirs.log, LOG_PREFIX).unwrap_or_default();
    'files: for (_, path) in files.iter().rev() {
        let log = match read_log(path) {
            Ok(log) => log,
            Err(e) => {
                warn!("cannot read {} for the leader's history: {e}", path.display());
                break;
            }
        };
        for record in log.records.iter().rev() {
            let zxid = record.txn.header.zxid;
            if zxid <= snapshot_zxid {
                break 'files;
            }
            if zxid > last_zxid || entries.front().is_some_and(|e: &Entry| zxid >= e.zxid) {
                continue;
            }
            entries.push_front(entry(&record.txn));
            if entries.len() == HISTORY_COMMITTED_MAX {
                break 'files;
            }
        }
    }
    entries
}
