//! Which old snapshots and logs can go (ZooKeeper's `PurgeTxnLog`, reference/on-disk.md §6): keep the
//! `retain` newest snapshots and every log needed to recover from the oldest of them.

use std::io;
use std::path::{Path, PathBuf};

use crate::files::{LOG_PREFIX, SNAPSHOT_PREFIX, list};

/// Files to delete, given `(zxid, path)` lists sorted by zxid. Pure.
pub fn select(snapshots: &[(i64, PathBuf)], logs: &[(i64, PathBuf)], retain: usize) -> Vec<PathBuf> {
    let retain = retain.max(1);
    if snapshots.len() <= retain {
        return Vec::new();
    }
    let oldest_kept = snapshots[snapshots.len() - retain].0;
    // The newest log starting at or before the oldest kept snapshot holds txns it needs.
    let first_needed_log = logs.iter().rev().find(|(zxid, _)| *zxid <= oldest_kept).map(|(zxid, _)| *zxid);
    let mut doomed: Vec<PathBuf> =
        snapshots.iter().filter(|(zxid, _)| *zxid < oldest_kept).map(|(_, p)| p.clone()).collect();
    if let Some(first_needed) = first_needed_log {
        doomed.extend(logs.iter().filter(|(zxid, _)| *zxid < first_needed).map(|(_, p)| p.clone()));
    }
    doomed
}

/// Deletes what [`select`] picks in the two directories; returns the deleted paths.
pub fn purge(snap_dir: &Path, log_dir: &Path, retain: usize) -> io::Result<Vec<PathBuf>> {
    let snapshots = list(snap_dir, SNAPSHOT_PREFIX)?;
    let logs = list(log_dir, LOG_PREFIX)?;
    let doomed = select(&snapshots, &logs, retain);
    for path in &doomed {
        std::fs::remove_file(path)?;
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(prefix: &str, zxids: &[i64]) -> Vec<(i64, PathBuf)> {
        zxids.iter().map(|z| (*z, PathBuf::from(format!("{prefix}.{z:x}")))).collect()
    }

    #[test]
    fn keeps_the_newest_snapshots_and_the_logs_they_need() {
        let snaps = files("snapshot", &[0, 0x10, 0x20, 0x30, 0x40]);
        let logs = files("log", &[1, 0x11, 0x1c, 0x25, 0x41]);
        let doomed = select(&snaps, &logs, 3);
        let names: Vec<_> = doomed.iter().map(|p| p.display().to_string()).collect();
        // Oldest kept snapshot is 0x20; log.1c holds txns after it, so it stays.
        assert_eq!(names, vec!["snapshot.0", "snapshot.10", "log.1", "log.11"]);
        assert!(select(&snaps, &logs, 5).is_empty());
    }
}
