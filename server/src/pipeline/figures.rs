//! The pipeline's side of [`Figures`]: each figure is gathered by asking the thread that owns it — every
//! shard, or the sequencer thread — a typed question ([`ShardQuery`], [`SequencerMsg::Sessions`]) and
//! waiting a bounded time for the answer. No thread ever blocks on an inspection.

use std::collections::HashSet;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};
use fk_engine::tree::DataTree;
use parking_lot::RwLockReadGuard;
use tracing::warn;

use super::Shared;
use super::messages::{SequencerMsg, ShardMsg, ShardQuery};
use crate::config::Config;
use crate::ops::figures::{ConnectionFigures, Figures, SessionFigures, WatchFigures};
use crate::ops::stats::ServerStats;

/// How long a figure waits for a shard or the sequencer to answer.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Figures for Shared {
    fn config(&self) -> &Config {
        &self.config
    }

    fn mode(&self) -> (&'static str, bool) {
        if self.status.is_read_only() {
            // ZooKeeper's read-only server is a running server whose state is "read-only".
            return ("read-only", true);
        }
        (self.status.mode().name(), self.status.is_serving())
    }

    fn read_only(&self) -> bool {
        self.status.is_read_only()
    }

    fn leader_id(&self) -> Option<u64> {
        self.status.leader()
    }

    fn damaged(&self) -> Option<String> {
        self.status.damaged()
    }

    fn zxid(&self, tree_zxid: i64) -> i64 {
        self.status.zxid(tree_zxid)
    }

    fn take_snapshot(&self) -> Result<fk_engine::snap::SnapshotStats, String> {
        let (answer, written) = crossbeam_channel::bounded(1);
        self.snapshots
            .send(super::snapshotter::SnapshotRequest::Consistent(answer))
            .map_err(|_| "the snapshot thread is gone".to_owned())?;
        written.recv().map_err(|_| "the snapshot thread is gone".to_owned())?
    }

    fn snapshot_dir(&self) -> std::path::PathBuf {
        crate::storage::Dirs::of(&self.config).snap
    }

    fn restore(&self, upload: std::path::PathBuf) -> Result<i64, String> {
        if !self.config.is_standalone() {
            let _ = std::fs::remove_file(&upload);
            return Err(super::member::RESTORE_IN_ENSEMBLE.into());
        }
        let (answer, restored) = crossbeam_channel::bounded(1);
        let request = super::restore::RestoreRequest { upload, answer };
        self.sequencer.send(SequencerMsg::Restore(request)).map_err(|_| "the sequencer is gone".to_owned())?;
        restored.recv().map_err(|_| "the sequencer is gone".to_owned())?
    }

    fn shard_queue_depths(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.queue_depth()).collect()
    }

    fn audit_events_dropped(&self) -> Option<u64> {
        self.audit.as_ref().map(|log| log.dropped())
    }

    fn client_port(&self) -> u16 {
        self.client_addr.port()
    }

    fn stats(&self) -> &ServerStats {
        &self.stats
    }

    fn tree(&self) -> RwLockReadGuard<'_, DataTree> {
        self.tree.read()
    }

    fn connections(&self) -> Vec<ConnectionFigures> {
        ask_shards(self, ShardQuery::Connections).into_iter().flatten().collect()
    }

    fn reset_connection_stats(&self) {
        for shard in &self.shards {
            shard.send(ShardMsg::Query(ShardQuery::ResetConnectionStats));
        }
    }

    fn sessions(&self) -> Option<SessionFigures> {
        let (tx, rx) = bounded(1);
        let _ = self.sequencer.send(SequencerMsg::Sessions(tx));
        rx.recv_timeout(INSPECT_TIMEOUT).ok().flatten()
    }

    fn watches(&self) -> WatchFigures {
        let mut figures = WatchFigures::default();
        let mut paths = HashSet::new();
        for shard in ask_shards(self, ShardQuery::Watches) {
            figures.entries += shard.entries;
            paths.extend(shard.paths);
            figures.data_watches.extend(shard.data_watches);
        }
        figures.paths = paths.len();
        figures
    }
}

/// Asks every shard the question `query` makes of an answer channel, and collects the answers that
/// come within [`INSPECT_TIMEOUT`].
fn ask_shards<T: Send + 'static>(shared: &Shared, query: impl Fn(Sender<T>) -> ShardQuery) -> Vec<T> {
    let mut answers = Vec::new();
    for shard in &shared.shards {
        let (tx, rx) = bounded(1);
        shard.send(ShardMsg::Query(query(tx)));
        match rx.recv_timeout(INSPECT_TIMEOUT) {
            Ok(answer) => answers.push(answer),
            Err(_) => warn!("a shard did not answer a 4lw inspection in time"),
        }
    }
    answers
}
