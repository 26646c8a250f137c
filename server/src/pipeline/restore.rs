//! Restoring a standalone server from a snapshot (the AdminServer's `restore`, ZooKeeper 3.9's): the
//! sequencer thread, which alone makes txns, runs it between two steps, so nothing new is in flight:
//!
//! 1. the uploaded file is loaded and checked (checksums, its zxid from ZooKeeper 3.9's trailer) before
//!    anything changes; a bad upload changes nothing;
//! 2. the pipeline settles: every txn sent to the log is durable and applied (and answered);
//! 3. the data directory's snapshots and logs — a history the restored state does not continue — are
//!    moved into `version-2/before-restore-<ms>/` (kept for the operator; recovery looks only at
//!    `version-2` itself), and the upload becomes `snapshot.<zxid>`, durable with its directory;
//! 4. the tree is replaced and the log restarts after the restored zxid.
//!
//! Unlike ZooKeeper, whose restore swaps the in-memory database only (a restart brings back what the
//! disk held), the restored state is what the server recovers after a restart too. The caller then
//! rebuilds the sequencer's state from the tree and closes every client connection: their sessions
//! belong to the replaced state, and clients reconnect to the restored one (its sessions, if any, are
//! the snapshot's).

use std::path::{Path, PathBuf};

use anyhow::Context;
use crossbeam_channel::Sender;
use fk_engine::files::{LOG_PREFIX, SNAPSHOT_PREFIX, list, sync_dir};
use fk_engine::recovery::Fuzziness;
use fk_engine::snap::compression::Compression;
use fk_engine::snap::load_snapshot;
use tracing::info;

use super::Shared;
pub use super::messages::RestoreRequest;
use super::messages::{ApplierMsg, LogMsg};
use super::settle::settle;
use crate::storage::Dirs;

/// Restores from `upload`; returns the restored zxid.
pub fn restore(
    shared: &Shared,
    dirs: &Dirs,
    upload: &Path,
    log: &Sender<LogMsg>,
    applier: &Sender<ApplierMsg>,
) -> anyhow::Result<i64> {
    let (tree, info) = load_snapshot(upload, 0, crate::storage::tree_options(&shared.config))
        .with_context(|| format!("the uploaded snapshot {}", upload.display()))?;
    let zxid = info.last_processed_zxid.context(
        "the uploaded snapshot does not say its zxid (ZooKeeper 3.9's last-processed-zxid record, which the \
         AdminServer's snapshot command writes, is missing)",
    )?;
    settle(log, applier)?;
    let aside = move_history_aside(dirs)?;
    let restored = dirs.snap.join(Compression::None.snapshot_name(zxid));
    std::fs::rename(upload, &restored).with_context(|| format!("cannot move the upload to {}", restored.display()))?;
    sync_dir(&dirs.snap)?;
    let nodes = tree.node_count();
    *shared.tree.write() = tree;
    // Before anything logged from now on reaches the applier. The snapshot was written from one state.
    applier.send(ApplierMsg::TreeLoaded(Fuzziness::Exact)).map_err(|_| anyhow::anyhow!("the applier is gone"))?;
    log.send(LogMsg::Restart { last_zxid: zxid }).map_err(|_| anyhow::anyhow!("the log stage is gone"))?;
    info!(
        "restored from an uploaded snapshot: zxid 0x{zxid:x}, {nodes} znodes, in {}; the previous snapshots and \
         logs are in {}",
        restored.display(),
        aside.display()
    );
    Ok(zxid)
}

/// Moves every snapshot and log into a new `before-restore-<ms>` directory beside them (in each of the
/// two directories when the logs have their own, which may be another filesystem).
fn move_history_aside(dirs: &Dirs) -> anyhow::Result<PathBuf> {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let name = format!("before-restore-{millis}");
    for (dir, prefix) in [(&dirs.snap, SNAPSHOT_PREFIX), (&dirs.log, LOG_PREFIX)] {
        let aside = dir.join(&name);
        if !aside.exists() {
            std::fs::create_dir(&aside).with_context(|| format!("cannot make {}", aside.display()))?;
        }
        for (_, path) in list(dir, prefix)? {
            let to = aside.join(path.file_name().expect("listed files have names"));
            std::fs::rename(&path, &to)
                .with_context(|| format!("cannot move {} to {}", path.display(), to.display()))?;
        }
        sync_dir(&aside)?;
        sync_dir(dir)?;
    }
    Ok(dirs.snap.join(name))
}
