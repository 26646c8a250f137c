//! The pipeline's side of [`Figures`]: each figure is gathered by asking the thread that owns it — a
//! closure run on every shard, or on the sequencer thread — and waiting a bounded time for the answer.
//! No thread ever blocks on an inspection.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::bounded;
use fk_engine::tree::DataTree;
use parking_lot::RwLockReadGuard;
use tracing::warn;

use super::Shared;
use super::connection::Phase;
use super::messages::{SequencerMsg, ShardMsg};
use super::sequencer::SequencerState;
use super::shard::ShardState;
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
        on_shards(self, |s| {
            s.clients()
                .map(|c| ConnectionFigures {
                    peer: c.peer,
                    queued: c.pending.len(),
                    output_bytes: c.buffers.pending_output(),
                    session: match c.phase {
                        Phase::Session { session_id, timeout_ms, .. } => Some((session_id, timeout_ms)),
                        _ => None,
                    },
                    stats: c.stats.clone(),
                })
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect()
    }

    fn reset_connection_stats(&self) {
        on_shards(self, |s| s.conns.values_mut().for_each(|c| c.stats.reset()));
    }

    fn sessions(&self) -> Option<SessionFigures> {
        // Only a server that prepares txns (standalone, or a leader) tracks session expiry.
        on_sequencer(self, |s| {
            let core = s.core?;
            let expiry_buckets = core.tracker.buckets().map(|(at, ids)| (s.wall_ms_at(at), ids)).collect();
            Some(SessionFigures { count: core.tracker.len(), expiry_buckets })
        })
        .flatten()
    }

    fn watches(&self) -> WatchFigures {
        let per_shard = on_shards(self, |s| {
            let paths: HashSet<String> = s.watches.entries().map(|(p, _, _)| p.to_owned()).collect();
            let data_watches: Vec<(i64, String)> = s
                .watches
                .entries()
                .filter(|(_, _, in_data_manager)| *in_data_manager)
                .filter_map(|(path, conn, _)| {
                    s.conns.get(&conn).and_then(|c| c.session_id()).map(|id| (id, path.to_owned()))
                })
                .collect();
            (s.watches.entries().count(), paths, data_watches)
        });
        let mut figures = WatchFigures::default();
        let mut paths = HashSet::new();
        for (entries, shard_paths, data_watches) in per_shard {
            figures.entries += entries;
            paths.extend(shard_paths);
            figures.data_watches.extend(data_watches);
        }
        figures.paths = paths.len();
        figures
    }
}

/// Runs `f` on every shard and collects the answers.
fn on_shards<T: Send + 'static>(shared: &Shared, f: impl Fn(&mut ShardState) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let mut answers = Vec::new();
    for shard in &shared.shards {
        let (tx, rx) = bounded(1);
        let f = f.clone();
        shard.send(ShardMsg::Inspect(Box::new(move |state| {
            let _ = tx.send(f(state));
        })));
        match rx.recv_timeout(INSPECT_TIMEOUT) {
            Ok(answer) => answers.push(answer),
            Err(_) => warn!("a shard did not answer a 4lw inspection in time"),
        }
    }
    answers
}

fn on_sequencer<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&SequencerState<'_>) -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = bounded(1);
    let _ = shared.sequencer.send(SequencerMsg::Inspect(Box::new(move |state| {
        let _ = tx.send(f(state));
    })));
    rx.recv_timeout(INSPECT_TIMEOUT).ok()
}
