//! The snapshot thread: writes fuzzy snapshots on request and purges old files on a timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use fk_engine::snap::{TreeAccess, write_snapshot};
use fk_engine::tree::DataTree;
use parking_lot::RwLock;
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

pub fn run(shared: Arc<Shared>, dirs: Dirs, rx: Receiver<()>, busy: Arc<AtomicBool>) {
    let purge_every = match shared.config.autopurge_purge_interval_hours {
        0 => None,
        hours => Some(Duration::from_secs(hours as u64 * 3600)),
    };
    let mut next_purge = purge_every.map(|every| Instant::now() + every);
    loop {
        let wait = next_purge.map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(()) => {
                take(&shared, &dirs);
                busy.store(false, Ordering::Release);
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

/// Writes one snapshot. A failure is logged and the next trigger retries: the logs it would have made
/// redundant are all still there, so nothing durable is at risk.
pub fn take(shared: &Shared, dirs: &Dirs) {
    let started = Instant::now();
    match write_snapshot(
        &SharedTree(&shared.tree),
        &dirs.snap,
        shared.config.force_sync,
        shared.config.snapshot_compression,
    ) {
        Ok(stats) => {
            shared.stats.record_snapshot(started.elapsed());
            info!(
                "wrote {} ({} nodes, {} bytes) in {} ms",
                stats.path.display(),
                stats.nodes,
                stats.bytes,
                started.elapsed().as_millis()
            );
        }
        Err(e) => error!("cannot write a snapshot in {}: {e}", dirs.snap.display()),
    }
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
