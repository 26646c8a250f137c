//! What the operator surfaces (4-letter words) report, as an interface: the pipeline gathers the figures
//! from its threads and hands them over, so the reports never reach into its private state and `ops`
//! does not depend on `pipeline`.

use std::net::SocketAddr;

use fk_engine::tree::DataTree;
use parking_lot::RwLockReadGuard;

use super::stats::{ConnStats, ServerStats};
use crate::config::Config;

/// One client connection, as `cons` and `stat` report it.
#[derive(Debug, Clone)]
pub struct ConnectionFigures {
    pub peer: SocketAddr,
    /// Requests received and not yet answered.
    pub queued: usize,
    /// Bytes of replies and watch events written for it and not yet sent.
    pub output_bytes: usize,
    /// (session id, negotiated timeout) once the handshake is done.
    pub session: Option<(i64, u32)>,
    pub stats: ConnStats,
}

/// The session tracker, as `dump` reports it.
#[derive(Debug, Clone)]
pub struct SessionFigures {
    pub count: usize,
    /// Expiry buckets in order: (wall-clock ms the bucket expires at, its sessions).
    pub expiry_buckets: Vec<(i64, Vec<i64>)>,
}

/// The watch tables of every shard.
#[derive(Debug, Clone, Default)]
pub struct WatchFigures {
    /// Watch entries as ZooKeeper counts them (both of its watch managers).
    pub entries: usize,
    /// Distinct watched paths.
    pub paths: usize,
    /// (session, path) of the watches in ZooKeeper's data watch manager (data, exists, persistent and
    /// recursive; child watches are not listed), which `wch*` report.
    pub data_watches: Vec<(i64, String)>,
}

impl WatchFigures {
    /// `wchs`'s figures: (sessions watching, paths watched, watches) in the data watch manager.
    pub fn summary(&self) -> (usize, usize, usize) {
        let sessions: std::collections::HashSet<i64> = self.data_watches.iter().map(|(s, _)| *s).collect();
        let paths: std::collections::HashSet<&String> = self.data_watches.iter().map(|(_, p)| p).collect();
        (sessions.len(), paths.len(), self.data_watches.len())
    }
}

/// The figures a running server reports.
pub trait Figures: Send + Sync {
    fn config(&self) -> &Config;
    /// The port clients connect to (the OS's choice when configured as 0).
    fn client_port(&self) -> u16;
    fn stats(&self) -> &ServerStats;
    fn tree(&self) -> RwLockReadGuard<'_, DataTree>;
    fn connections(&self) -> Vec<ConnectionFigures>;
    fn reset_connection_stats(&self);
    /// `None` if the session tracker did not answer in time.
    fn sessions(&self) -> Option<SessionFigures>;
    fn watches(&self) -> WatchFigures;
    /// The server's mode as `srvr` names it (`standalone`, `leader`, `follower`, `observer`,
    /// `read-only`, or `looking` between roles), and whether it serves clients.
    fn mode(&self) -> (&'static str, bool);
    /// Serving read-only clients, cut off from the quorum (`readonlymode.enabled`).
    fn read_only(&self) -> bool;
    /// The leader this member follows or is; `None` while looking, and for a standalone server.
    fn leader_id(&self) -> Option<u64>;
    /// What start-up found damaged, while this member awaits its ensemble's synchronisation
    /// (fk_engine::damage); it does not vote meanwhile.
    fn damaged(&self) -> Option<String>;
    /// The zxid `srvr` shows: the tree's, or on a new leader its epoch's start.
    fn zxid(&self, tree_zxid: i64) -> i64;
    /// Messages waiting in each shard's channel (replies, new connections, controls).
    fn shard_queue_depths(&self) -> Vec<usize>;
    /// Audit events dropped because the audit log's writer fell behind; `None` with the log off.
    fn audit_events_dropped(&self) -> Option<u64>;
    /// Writes a snapshot of one state of the tree into the data directory (the AdminServer's `snapshot`).
    fn take_snapshot(&self) -> Result<fk_engine::snap::SnapshotStats, String>;
    /// Where an uploaded snapshot is put before it is restored (the snapshot directory: same filesystem).
    fn snapshot_dir(&self) -> std::path::PathBuf;
    /// Restores from the snapshot in `upload` (the AdminServer's `restore`): the restored zxid.
    fn restore(&self, upload: std::path::PathBuf) -> Result<i64, String>;
}
