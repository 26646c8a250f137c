//! Opening the data directories at start-up: create them, recover the tree, and make sure a snapshot
//! exists before any log is written (so that ZooKeeper, which refuses logs without a snapshot, can open
//! the directory too).

use std::path::{Path, PathBuf};

use anyhow::Context;
use fk_engine::files::VERSION_DIR;
use fk_engine::recovery::{Recovered, recover};
use fk_engine::tree::{HashSeed, TreeOptions};
use tracing::{info, warn};

use crate::config::Config;

/// The `version-2` directories snapshots and logs live in.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub snap: PathBuf,
    pub log: PathBuf,
}

impl Dirs {
    pub fn of(config: &Config) -> Dirs {
        Dirs { snap: config.data_dir.join(VERSION_DIR), log: config.data_log_dir().join(VERSION_DIR) }
    }
}

/// Creates the directories, removes our own leftover temporary files, and recovers.
pub fn open(config: &Config) -> anyhow::Result<(Dirs, Recovered)> {
    let dirs = Dirs::of(config);
    for dir in [&dirs.snap, &dirs.log] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        check_writable(dir)?;
        remove_leftovers(dir);
    }
    let recovered = recover(&dirs.snap, &dirs.log, tree_options(config))?;
    info!(
        "recovered to zxid 0x{:x}: {} nodes, {} sessions, {} txns replayed{}",
        recovered.tree.last_processed_zxid(),
        recovered.tree.node_count(),
        recovered.tree.sessions().count(),
        recovered.replayed,
        recovered.snapshot.as_ref().map_or(String::new(), |p| format!(" after {}", p.display()))
    );
    Ok((dirs, recovered))
}

/// A seed nobody outside the process knows (std's per-process random keys), so clients cannot aim
/// colliding paths at the tree's tables.
/// How a tree is built for `config` (at start-up, and whenever it is rebuilt from disk or a snapshot):
/// its node types, and a fresh hash seed.
pub fn tree_options(config: &Config) -> TreeOptions {
    TreeOptions { extended_types: config.extended_types_enabled, hash_seed: random_hash_seed() }
}

pub fn random_hash_seed() -> HashSeed {
    use std::hash::BuildHasher;
    let keys = std::collections::hash_map::RandomState::new();
    HashSeed([1u8, 2, 3, 4].map(|i| keys.hash_one(i)))
}

fn check_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(".ferrokeeper-write-test");
    std::fs::write(&probe, b"").with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Snapshot scratch files of a run that died mid-snapshot (dot-prefixed, never mistaken for data).
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".snapshot.") && (name.ends_with(".tmp") || name.ends_with(".nodes")) {
            warn!("removing {} left by an interrupted snapshot", entry.path().display());
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
