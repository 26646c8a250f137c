//! The snapshot thread: writes fuzzy snapshots when the log stage asks, consistent ones for the
//! AdminServer's `snapshot` command, and purges old files on a timer. One thread, so two snapshots
//! never write the same file at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use fk_engine::snap::{SnapshotStats, TreeAccess, WriteOptions, write_snapshot, write_snapshot_with};
use fk_engine::tree::DataTree;
use parking_lot::{RwLock, RwLockReadGuard};
use tracing::{error, info};

use super::Shared;
use crate::storage::Dirs;

/// The shared tree, read in short holds of its lock.
pub struct SharedTree<'a>(pub &'a RwLock<DataTree>);

impl TreeAccess for SharedTree<'_> {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.0.read())
    }
}

/// What the snapshot thread is asked for.
pub enum SnapshotRequest {
    /// A fuzzy snapshot, written while the tree changes (the log stage's, every `snapCount` txns).
    Fuzzy,
    /// A snapshot of one state of the tree, for the AdminServer: written under the tree's read lock, so
    /// writes wait for it (and reads behind them). The answer names the file.
    Consistent(Sender<Result<SnapshotStats, String>>),
}

/// The shared tree, read under one hold of its lock for a whole snapshot.
struct HeldTree<'a>(RwLockReadGuard<'a, DataTree>);

impl TreeAccess for HeldTree<'_> {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.0)
    }
}

pub fn run(shared: Arc<Shared>, dirs: Dirs, rx: Receiver<SnapshotRequest>, busy: Arc<AtomicBool>) {
    let purge_every = match shared.config.autopurge_purge_interval_hours {
        0 => None,
        hours => Some(Duration::from_secs(hours as u64 * 3600)),
    };
    let mut next_purge = purge_every.map(|every| Instant::now() + every);
    loop {
        let wait = next_purge.map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(SnapshotRequest::Fuzzy) => {
                if let Err(e) = take(&shared, &dirs) {
                    error!("cannot write a snapshot in {}: {e}", dirs.snap.display());
                }
                busy.store(false, Ordering::Release);
            }
            Ok(SnapshotRequest::Consistent(answer)) => {
                let started = Instant::now();
                let held = HeldTree(shared.tree.read());
                let options = WriteOptions {
                    force_sync: shared.config.force_sync,
                    compression: shared.config.snapshot_compression,
                    // One state: the file says its zxid, so it can be restored from a stream.
                    last_zxid_trailer: true,
                };
                let written = write_snapshot_with(&held, &dirs.snap, options);
                drop(held);
                if let Ok(stats) = &written {
                    shared.stats.record_snapshot(started.elapsed());
                    info!(
                        "wrote {} for the AdminServer ({} nodes) in {} ms",
                        stats.path.display(),
                        stats.nodes,
                        started.elapsed().as_millis()
                    );
                }
                let _ = answer
                    .send(written.map_err(|e| format!("cannot write a snapshot in {}: {e}", dirs.snap.display())));
            }
            Err(RecvTimeoutError::Timeout) => {
                if let (Some(at), Some(every)) = (next_purge, purge_every)
                    && Instant::now() >= at
                {
                    purge(&shared, &dirs);
                    next_purge = Some(Instant::now() + every);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Writes one snapshot. A fuzzy one that fails is logged and the next trigger retries: the logs it
/// would have made redundant are all still there, so nothing durable is at risk. The first one of a
/// data directory must not fail: start-up stops.
pub fn take(shared: &Shared, dirs: &Dirs) -> std::io::Result<()> {
    let started = Instant::now();
    let stats = write_snapshot(
        &SharedTree(&shared.tree),
        &dirs.snap,
        shared.config.force_sync,
        shared.config.snapshot_compression,
    )?;
    shared.stats.record_snapshot(started.elapsed());
    info!(
        "wrote {} ({} nodes, {} bytes) in {} ms",
        stats.path.display(),
        stats.nodes,
        stats.bytes,
        started.elapsed().as_millis()
    );
    Ok(())
}

fn purge(shared: &Shared, dirs: &Dirs) {
    let retain = shared.config.autopurge_snap_retain_count as usize;
    match fk_engine::purge::purge(&dirs.snap, &dirs.log, retain) {
        Ok(deleted) => {
            for path in deleted {
                info!("purged {}", path.display());
            }
        }
        Err(e) => error!("purge failed: {e}"),
    }
}
