//! Opening the data directories at start-up: create them, recover the tree, and make sure a snapshot
//! exists before any log is written (so that ZooKeeper, which refuses logs without a snapshot, can open
//! the directory too).

use std::path::{Path, PathBuf};

use anyhow::Context;
use fk_engine::damage;
use fk_engine::files::VERSION_DIR;
use fk_engine::fs::RealFs;
use fk_engine::recovery::{Recovered, RecoveryError, recover};
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

/// What start-up found in the data directories.
pub struct Opened {
    pub dirs: Dirs,
    pub recovered: Recovered,
    /// The member was found damaged (now, or at an earlier start) and its ensemble has not synchronised
    /// it since: what was found (fk_engine::damage).
    pub damaged: Option<String>,
}

/// Creates the directories, removes our own leftover temporary files, and recovers; an ensemble member
/// whose files are damaged keeps what precedes the damage (fk_engine::damage).
pub fn open(config: &Config) -> anyhow::Result<Opened> {
    let dirs = Dirs::of(config);
    for dir in [&dirs.snap, &dirs.log] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        check_writable(dir)?;
        remove_leftovers(dir);
    }
    let mut damaged = damage::read_mark(&dirs.snap)?;
    if let Some(what) = &damaged
        && config.is_standalone()
    {
        anyhow::bail!(
            "{} marks this data as damaged and not yet synchronised by its ensemble ({what}): it lacks txns \
             its ensemble holds. Start it as a member of that ensemble, or, to serve it as it is, remove the mark",
            dirs.snap.join(damage::MARK_FILE).display()
        );
    }
    let options = tree_options(config);
    let recovered = match recover(&dirs.snap, &dirs.log, options) {
        Ok(recovered) => recovered,
        Err(error) if error.is_damage() => {
            if let Some(why) = cannot_recover_from_ensemble(config) {
                return Err(anyhow::Error::new(error).context(why));
            }
            let recovered = keep_what_precedes(&dirs, options, error)?;
            damaged = damage::read_mark(&dirs.snap)?;
            recovered
        }
        Err(error) => return Err(error.into()),
    };
    if let Some(what) = &damaged {
        warn!(
            "this member's data was found damaged ({what}); it keeps what preceded the damage, will not vote or \
             count toward any quorum until a leader has synchronised it, and then rejoins as usual"
        );
    }
    info!(
        "recovered to zxid 0x{:x}: {} nodes, {} sessions, {} txns replayed{}",
        recovered.tree.last_processed_zxid(),
        recovered.tree.node_count(),
        recovered.tree.sessions().count(),
        recovered.replayed,
        recovered.snapshot.as_ref().map_or(String::new(), |p| format!(" after {}", p.display()))
    );
    Ok(Opened { dirs, recovered, damaged })
}

/// Why this server cannot recover damaged files from an ensemble, if it cannot.
fn cannot_recover_from_ensemble(config: &Config) -> Option<&'static str> {
    if config.is_standalone() {
        return Some("a standalone server has no ensemble to recover the damaged txns from");
    }
    let me = config.my_id.expect("an ensemble member has a myid");
    if !config.recover_from_ensemble {
        return Some(
            "ferrokeeper.recoverFromEnsemble=false: this member refuses to start on damage, as ZooKeeper does",
        );
    }
    if config.voter_ids().into_iter().all(|id| id == me) {
        return Some("this member is the ensemble's only voter: no other member holds the damaged txns");
    }
    None
}

/// Marks the member damaged (first, so a crash from here on starts it damaged again), sets the damage
/// aside, and recovers what precedes it (fk_engine::damage::keep_what_precedes).
fn keep_what_precedes(dirs: &Dirs, options: TreeOptions, error: RecoveryError) -> anyhow::Result<Recovered> {
    let first_line = error.to_string().lines().next().unwrap_or_default().to_owned();
    warn!("{error}");
    damage::write_mark(&dirs.snap, &first_line)?;
    let (recovered, passes) = damage::keep_what_precedes(&RealFs, &dirs.snap, &dirs.log, options)
        .with_context(|| format!("while keeping what precedes the damage: {first_line}"))?;
    if passes.is_empty() {
        anyhow::bail!("{error}\n(the damage was not found again when looking for what precedes it)");
    }
    Ok(recovered)
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
