//! Opening the data directories at start-up: create them, recover the tree, and make sure a snapshot
//! exists before any log is written (so that ZooKeeper, which refuses logs without a snapshot, can open
//! the directory too).

use std::path::{Path, PathBuf};

use anyhow::Context;
use fk_engine::damage;
use fk_engine::epoch::{self, decide_epochs};
use fk_engine::files::{SNAPSHOT_PREFIX, VERSION_DIR, list_in};
use fk_engine::fs::{Fs, RealFs};
use fk_engine::log::truncate::{TruncateError, truncate_in};
use fk_engine::recovery::{RecoverLimits, Recovered, RecoveryError, recover_in};
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
    let (recovered, damaged) = recover_at_start(&RealFs, &dirs, tree_options(config), &recovering(config))?;
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

/// What start-up (or a learner's reload after TRUNC or SNAP) may do about damage.
#[derive(Debug, Clone)]
pub struct Recovering {
    /// A standalone server refuses to serve data marked damaged.
    pub standalone: bool,
    /// Why damaged files cannot be recovered from an ensemble, if they cannot: start-up then refuses.
    pub cannot_recover_from_ensemble: Option<&'static str>,
}

/// What `config` allows about damage.
pub fn recovering(config: &Config) -> Recovering {
    Recovering {
        standalone: config.is_standalone(),
        cannot_recover_from_ensemble: cannot_recover_from_ensemble(config),
    }
}

/// Start-up's recovery, on `fs` (the server's, and the simulator's): the tree, and the damage mark's
/// text if the member is damaged (found now, or at an earlier start and not synchronised since). A
/// standalone server refuses marked data; damage found now either refuses start-up or, for a member
/// that may recover from its ensemble, is marked and set aside (what precedes it is kept). A learner
/// rebuilding its tree after TRUNC or SNAP recovers the same way: damage in a file start-up did not
/// need (an older snapshot, say) is found then, and handled as at start-up.
pub fn recover_at_start(
    fs: &dyn Fs,
    dirs: &Dirs,
    options: TreeOptions,
    recovering: &Recovering,
) -> anyhow::Result<(Recovered, Option<String>)> {
    let mut damaged = damage::read_mark(fs, &dirs.snap)?;
    if let Some(what) = &damaged
        && recovering.standalone
    {
        anyhow::bail!(
            "{} marks this data as damaged and not yet synchronised by its ensemble ({what}): it lacks txns \
             its ensemble holds. Start it as a member of that ensemble, or, to serve it as it is, remove the mark",
            dirs.snap.join(damage::MARK_FILE).display()
        );
    }
    let recovered = match recover_in(fs, &dirs.snap, &dirs.log, options, RecoverLimits::default()) {
        Ok(recovered) => recovered,
        Err(error) if error.is_damage() => {
            if let Some(why) = recovering.cannot_recover_from_ensemble {
                return Err(anyhow::Error::new(error).context(why));
            }
            let (recovered, marked) = keep_what_precedes(fs, dirs, options, error)?;
            damaged = Some(marked);
            recovered
        }
        Err(error) => return Err(error.into()),
    };
    if !recovering.standalone
        && let Some(found) = check_epochs(fs, dirs, recovered.tree.last_processed_zxid(), recovering)?
    {
        damaged.get_or_insert(found);
    }
    if let Some(what) = &damaged {
        warn!(
            "this member's data was found damaged ({what}); it keeps what it holds intact, will not vote or count \
             toward any quorum until a leader has synchronised it, and then rejoins as usual"
        );
    }
    Ok((recovered, damaged))
}

/// A member's epoch files against ZooKeeper's start-up rules (fk_engine::epoch::decide_epochs). Damaged
/// ones (a number that does not read, epochs that contradict each other or the log) refuse start-up, as
/// ZooKeeper refuses, unless the member may recover from its ensemble: then it is marked damaged and
/// its epochs are taken from its log (it neither votes nor counts toward a quorum until a leader has
/// synchronised it, and that leader's epoch is written then). Returns what was found damaged.
fn check_epochs(fs: &dyn Fs, dirs: &Dirs, last_zxid: i64, recovering: &Recovering) -> anyhow::Result<Option<String>> {
    let decided =
        epoch::read_epoch_files(fs, &dirs.snap).and_then(|files| decide_epochs(&files, last_zxid, &dirs.snap));
    let error = match decided {
        Ok(_) => return Ok(None),
        Err(error) if error.is_damage() => error,
        Err(error) => return Err(error.into()),
    };
    if let Some(why) = recovering.cannot_recover_from_ensemble {
        return Err(anyhow::Error::new(error).context(why));
    }
    let what = error.to_string();
    warn!("{what}");
    damage::write_mark(fs, &dirs.snap, &what)?;
    let log_epoch = epoch::epoch_of(last_zxid);
    for name in [epoch::CURRENT_EPOCH, epoch::ACCEPTED_EPOCH] {
        epoch::write_epoch(fs, &dirs.snap, name, log_epoch)?;
    }
    epoch::clear_epoch_update(fs, &dirs.snap)?;
    warn!("{} and {} set to {log_epoch}, the epoch of the last zxid", epoch::CURRENT_EPOCH, epoch::ACCEPTED_EPOCH);
    Ok(Some(what))
}

/// The snapshot start-up owes the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartSnapshot {
    /// Before anything is logged: the directory was empty, and ZooKeeper refuses logs without a
    /// snapshot before them.
    Now,
    /// In the background: recovery replayed txns (the next start is quicker from a new snapshot;
    /// ZooKeeper snapshots after every load), or found logs without a snapshot.
    Soon,
    None,
}

/// What [`StartSnapshot`] `recovered` calls for.
pub fn start_snapshot(recovered: &Recovered) -> StartSnapshot {
    if recovered.fresh {
        StartSnapshot::Now
    } else if recovered.replayed > 0 || recovered.snapshot.is_none() {
        StartSnapshot::Soon
    } else {
        StartSnapshot::None
    }
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
        return Some(ONLY_VOTER);
    }
    None
}

/// Why a member that is its ensemble's only voter cannot recover from it.
pub const ONLY_VOTER: &str = "this member is the ensemble's only voter: no other member holds the damaged txns";

/// Marks the member damaged (first, so a crash from here on starts it damaged again), sets the damage
/// aside, and recovers what precedes it (fk_engine::damage::keep_what_precedes). Returns the tree and
/// the mark's text.
fn keep_what_precedes(
    fs: &dyn Fs,
    dirs: &Dirs,
    options: TreeOptions,
    error: RecoveryError,
) -> anyhow::Result<(Recovered, String)> {
    let first_line = error.to_string().lines().next().unwrap_or_default().to_owned();
    warn!("{error}");
    damage::write_mark(fs, &dirs.snap, &first_line)?;
    let (recovered, passes) = damage::keep_what_precedes(fs, &dirs.snap, &dirs.log, options)
        .with_context(|| format!("while keeping what precedes the damage: {first_line}"))?;
    if passes.is_empty() {
        anyhow::bail!("{error}\n(the damage was not found again when looking for what precedes it)");
    }
    Ok((recovered, first_line))
}

/// A learner told to TRUNC: nothing after `zxid` stays, in the logs or in a newer snapshot.
pub fn truncate_after(fs: &dyn Fs, dirs: &Dirs, zxid: i64) -> anyhow::Result<()> {
    truncate_in(fs, &dirs.log, zxid)?;
    remove_snapshots_after(fs, dirs, zxid)
}

/// A learner given a snapshot at `zxid` (already durable in the snapshot directory): whatever it logged
/// after that point is not the leader's history, nor is a newer snapshot.
pub fn adopt_received_snapshot(fs: &dyn Fs, dirs: &Dirs, zxid: i64) -> anyhow::Result<()> {
    match truncate_in(fs, &dirs.log, zxid) {
        Ok(_) | Err(TruncateError::NoLog { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    remove_snapshots_after(fs, dirs, zxid)
}

/// After TRUNC or SNAP to `zxid`, recovery must rebuild the tree at exactly `zxid`. Short of it the
/// disk lacks txns the leader counts this learner to hold (damage was set aside below a snapshot that
/// TRUNC has since removed): it must not acknowledge the sync. The error ends the role; the next
/// election and sync start from where the disk really is.
pub fn check_rewritten(zxid: i64, reached: i64) -> Result<(), String> {
    if reached == zxid {
        return Ok(());
    }
    Err(format!(
        "the leader synchronised this member to 0x{zxid:x}, but its disk rebuilds the tree only to 0x{reached:x}: \
         txns between them are in no file (damage set aside earlier); leaving the role to be synchronised from \
         0x{reached:x}"
    ))
}

/// Snapshots newer than `zxid` describe a history the leader does not have; recovery must not load them.
fn remove_snapshots_after(fs: &dyn Fs, dirs: &Dirs, zxid: i64) -> anyhow::Result<()> {
    for (snapshot_zxid, path) in list_in(fs, &dirs.snap, SNAPSHOT_PREFIX)? {
        if snapshot_zxid > zxid {
            info!("removing {}: it is newer than the leader's history", path.display());
            fs.remove(&path)?;
        }
    }
    fs.sync_dir(&dirs.snap)?;
    Ok(())
}

/// How a tree is built for `config` (at start-up, and whenever it is rebuilt from disk or a snapshot):
/// its node types, and a fresh hash seed.
pub fn tree_options(config: &Config) -> TreeOptions {
    TreeOptions { extended_types: config.extended_types_enabled, hash_seed: random_hash_seed() }
}

/// A seed nobody outside the process knows (std's per-process random keys), so clients cannot aim
/// colliding paths at the tree's tables.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn member(cannot: Option<&'static str>) -> Recovering {
        Recovering { standalone: false, cannot_recover_from_ensemble: cannot }
    }

    /// An epoch file that does not read is damage: refused where the member cannot recover from its
    /// ensemble (as ZooKeeper refuses), else marked, with the epochs taken from the log.
    #[test]
    fn a_damaged_epoch_file_marks_the_member_or_refuses_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = Dirs { snap: dir.path().to_owned(), log: dir.path().to_owned() };
        let options = TreeOptions::fixed_seed(true);
        let (recovered, damaged) = recover_at_start(&RealFs, &dirs, options, &member(None)).unwrap();
        assert!(recovered.fresh && damaged.is_none());
        epoch::load_epochs(&RealFs, dir.path(), 0).unwrap(); // as the member's first look writes them

        std::fs::write(dir.path().join(epoch::ACCEPTED_EPOCH), "u").unwrap();
        let refused = recover_at_start(&RealFs, &dirs, options, &member(Some(ONLY_VOTER))).err().unwrap();
        assert!(format!("{refused:#}").contains("acceptedEpoch holds 'u', not an epoch number"), "{refused:#}");
        assert!(damage::read_mark(&RealFs, dir.path()).unwrap().is_none(), "a refusal marks nothing");

        let (_, damaged) = recover_at_start(&RealFs, &dirs, options, &member(None)).unwrap();
        let damaged = damaged.expect("found damaged");
        assert!(damaged.contains("acceptedEpoch holds 'u'"), "{damaged}");
        assert_eq!(damage::read_mark(&RealFs, dir.path()).unwrap().as_deref(), Some(damaged.as_str()));
        assert_eq!(epoch::read_epoch(&RealFs, dir.path(), epoch::ACCEPTED_EPOCH).unwrap(), Some(0), "from the log");

        // Marked, it stays damaged at the next start (until a leader synchronises it), epochs now reading.
        let (_, again) = recover_at_start(&RealFs, &dirs, options, &member(None)).unwrap();
        assert_eq!(again.as_deref(), Some(damaged.as_str()));

        // Epochs that contradict each other are damage too.
        damage::clear_mark(&RealFs, dir.path()).unwrap();
        std::fs::write(dir.path().join(epoch::CURRENT_EPOCH), "4").unwrap();
        let (_, damaged) = recover_at_start(&RealFs, &dirs, options, &member(None)).unwrap();
        assert!(damaged.unwrap().contains("the accepted epoch, 0, is less than the current epoch, 4"));
    }
}
