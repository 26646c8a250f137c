//! Damage found at start-up in an ensemble member's files, kept apart so the member can recover what
//! follows it from its ensemble (protocol-aware recovery, after R. Alagappan et al., "Protocol-Aware
//! Recovery for Consensus-Based Storage", FAST 2018).
//!
//! ZooKeeper refuses to start on a damaged log and waits for an operator. A member of an ensemble can
//! do better: every txn it lost is held by the rest of the ensemble — provided it is never counted as
//! holding what it lost. So it keeps the txns before the damage ([`set_aside`]: the damaged log cut
//! there, a copy of it and every later file moved aside for inspection), writes the [mark](write_mark)
//! *first*, and while the mark exists it neither votes nor counts toward any quorum (the member core's
//! rule); a leader's synchronisation (DIFF, TRUNC or SNAP) brings back what it lost, after which the mark
//! is [cleared](clear_mark). A crash anywhere in between leaves the mark, so the member starts damaged
//! again.
//!
//! # The mark
//! `version-2/ferrokeeper.damaged` in the snapshot directory (next to the epoch files), written
//! atomically: UTF-8 text, the first line `damaged`, then what recovery found. ZooKeeper ignores the
//! file; a ZooKeeper member started on these files would trust them as they are (the damage is set
//! aside, so it would start, and vote with the shorter history — the reason the mark exists).

use std::path::{Path, PathBuf};

use thiserror::Error;
use tracing::warn;

use crate::files::{LOG_PREFIX, SNAPSHOT_PREFIX, list_in, remove_durably, replace_durably};
use crate::fs::{Fs, RealFs};
use crate::recovery::{Damage, RecoverLimits, Recovered, RecoveryError, recover_in};
use crate::tree::TreeOptions;

/// The mark's file name.
pub const MARK_FILE: &str = "ferrokeeper.damaged";
const MARK_TMP: &str = "ferrokeeper.damaged.tmp";
/// The suffix of files set aside; ZooKeeper and ferrokeeper ignore such names (files::parse_name).
pub const SET_ASIDE_SUFFIX: &str = "damaged";

/// More passes than this means the set-aside is not converging: a bug, not damage.
const PASSES_MAX: usize = 64;

#[derive(Debug, Error)]
pub enum DamageError {
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error("damage was set aside {0} times and recovery still finds more; stopping")]
    Endless(usize),
    #[error("cannot write or remove the damage mark {path}: {source}")]
    Mark { path: PathBuf, source: std::io::Error },
    #[error("cannot set {path} aside: {source}")]
    SetAside { path: PathBuf, source: std::io::Error },
}

/// Whether `snap_dir` (a `version-2` directory) holds the mark: the text after its first line.
pub fn read_mark(fs: &dyn Fs, snap_dir: &Path) -> Result<Option<String>, DamageError> {
    let path = snap_dir.join(MARK_FILE);
    match fs.read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            Ok(Some(text.split_once('\n').map_or("", |(_, rest)| rest).trim_end().to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DamageError::Mark { path, source }),
    }
}

/// Writes the mark durably, with `what` (what recovery found) after its first line.
pub fn write_mark(fs: &dyn Fs, snap_dir: &Path, what: &str) -> Result<(), DamageError> {
    let text = format!("damaged\n{what}\n");
    replace_durably(fs, snap_dir, MARK_FILE, MARK_TMP, text.as_bytes())
        .map_err(|source| DamageError::Mark { path: snap_dir.join(MARK_FILE), source })
}

/// Removes the mark durably (the member was synchronised by a leader).
pub fn clear_mark(fs: &dyn Fs, snap_dir: &Path) -> Result<(), DamageError> {
    remove_durably(fs, snap_dir, MARK_FILE)
        .map_err(|source| DamageError::Mark { path: snap_dir.join(MARK_FILE), source })
}

/// Recovery as an ensemble member runs it on damage: stop at the damage, set it aside, and again —
/// an older damage may lie in a file the first pass did not need to read (before the snapshot that
/// pass loaded) — until recovery finds none; then recover. Returns what recovery rebuilt and what each
/// pass set aside (none: no damage was found). The caller writes the [mark](write_mark) first.
pub fn keep_what_precedes(
    fs: &dyn Fs,
    snap_dir: &Path,
    log_dir: &Path,
    options: TreeOptions,
) -> Result<(Recovered, Vec<SetAside>), DamageError> {
    let mut passes = Vec::new();
    loop {
        let limits = RecoverLimits { read_only: true, stop_at_damage: true, ..RecoverLimits::default() };
        let found = recover_in(fs, snap_dir, log_dir, options, limits)?;
        if found.damage.is_none() {
            break;
        }
        passes.push(set_aside_in(fs, snap_dir, log_dir, &found)?);
        if passes.len() > PASSES_MAX {
            return Err(DamageError::Endless(passes.len()));
        }
    }
    Ok((recover_in(fs, snap_dir, log_dir, options, RecoverLimits::default())?, passes))
}

/// What [`set_aside`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAside {
    /// The damaged log, cut at the damage (its whole content copied aside first): (log, offset, copy).
    pub cut: Option<(PathBuf, u64, PathBuf)>,
    /// Files moved aside whole: (from, to).
    pub moved: Vec<(PathBuf, PathBuf)>,
}

impl std::fmt::Display for SetAside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((log, offset, copy)) = &self.cut {
            write!(f, "{} cut at offset {offset} (its content kept as {})", log.display(), copy.display())?;
        }
        for (i, (from, to)) in self.moved.iter().enumerate() {
            let sep = if i == 0 && self.cut.is_none() { "" } else { "; " };
            write!(f, "{sep}{} moved to {}", from.display(), to.display())?;
        }
        Ok(())
    }
}

/// Makes the directories hold exactly what `found` (a recovery that stopped at damage,
/// [`crate::recovery::RecoverLimits::stop_at_damage`]) rebuilt: the damaged log is copied aside and cut
/// at the damage, every later log and every snapshot newer than the one loaded (none of which loaded, or
/// the recovery would have used it) moved aside. Durable when it returns; recovery then starts cleanly
/// and rebuilds the same tree.
pub fn set_aside(snap_dir: &Path, log_dir: &Path, found: &Recovered) -> Result<SetAside, DamageError> {
    set_aside_in(&RealFs, snap_dir, log_dir, found)
}

/// [`set_aside`] on `fs`.
pub fn set_aside_in(fs: &dyn Fs, snap_dir: &Path, log_dir: &Path, found: &Recovered) -> Result<SetAside, DamageError> {
    let Some(Damage { log, offset, .. }) = &found.damage else { return Ok(SetAside::default()) };
    let listing = |dir: &Path, prefix| {
        list_in(fs, dir, prefix).map_err(|source| DamageError::SetAside { path: dir.into(), source })
    };
    let logs = listing(log_dir, LOG_PREFIX)?;
    let snapshots = listing(snap_dir, SNAPSHOT_PREFIX)?;
    let mut done = SetAside::default();
    let damaged_at = logs.iter().position(|(_, path)| path == log).unwrap_or(logs.len());
    for (index, (_, path)) in logs.iter().enumerate().skip(damaged_at) {
        if index == damaged_at && *offset > 0 {
            done.cut = Some(cut(fs, path, *offset)?);
        } else {
            done.moved.push(move_aside(fs, path)?);
        }
    }
    let loaded = snapshots.iter().position(|(_, path)| Some(path) == found.snapshot.as_ref());
    for (_, path) in snapshots.iter().skip(loaded.map_or(0, |i| i + 1)) {
        done.moved.push(move_aside(fs, path)?);
    }
    for dir in [log_dir, snap_dir] {
        fs.sync_dir(dir).map_err(|source| DamageError::SetAside { path: dir.into(), source })?;
    }
    warn!("damaged files set aside: {done}");
    Ok(done)
}

/// `path.damaged`, or `path.damaged.<n>` for the first n free (damage found again after an earlier one).
fn aside_name(fs: &dyn Fs, path: &Path) -> PathBuf {
    let base = format!("{}.{SET_ASIDE_SUFFIX}", path.display());
    let taken = path.parent().and_then(|dir| fs.list(dir).ok()).unwrap_or_default();
    (0..)
        .map(|n| if n == 0 { PathBuf::from(&base) } else { PathBuf::from(format!("{base}.{n}")) })
        .find(|candidate| !taken.contains(candidate))
        .expect("some name is free")
}

fn move_aside(fs: &dyn Fs, path: &Path) -> Result<(PathBuf, PathBuf), DamageError> {
    let to = aside_name(fs, path);
    fs.rename(path, &to).map_err(|source| DamageError::SetAside { path: path.into(), source })?;
    Ok((path.to_owned(), to))
}

/// Copies the log aside (durably), then cuts it at `offset` (durably).
fn cut(fs: &dyn Fs, path: &Path, offset: u64) -> Result<(PathBuf, u64, PathBuf), DamageError> {
    let copy = aside_name(fs, path);
    let run = || -> std::io::Result<()> {
        let whole = fs.read(path)?;
        let out = fs.open(&copy, true)?;
        out.write_at(&whole, 0)?;
        out.sync_data()?;
        drop(whole);
        fs.open(path, false)?.set_len_durably(offset)
    };
    run().map_err(|source| DamageError::SetAside { path: path.into(), source })?;
    Ok((path.to_owned(), offset, copy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::{RecoverLimits, recover, recover_with};
    use crate::tree::TreeOptions;

    /// A copy of ZooKeeper 3.8's data dir (tests/fixtures/zk38/README.md: snapshots 0, b3, 121, 1e6;
    /// logs 1, b5, 123 (through 0x1e7), 1e8 (through 0x215)) with one byte flipped in `log` at `offset`.
    fn flipped(log: &str, offset: u64) -> tempfile::TempDir {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zk38/datadir/version-2");
        let scratch = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), scratch.path().join(entry.file_name())).unwrap();
        }
        let path = scratch.path().join(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset as usize] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
        scratch
    }

    fn options() -> TreeOptions {
        TreeOptions::fixed_seed(true)
    }

    /// Recovery as an ensemble member runs it on damage: find it, set it aside, recover again.
    fn keep_what_precedes_once(dir: &Path) -> (Recovered, SetAside, Recovered) {
        let refused = recover(dir, dir, options()).err().expect("damage stops plain recovery");
        assert!(refused.is_damage(), "{refused}");
        let limits = RecoverLimits { read_only: true, stop_at_damage: true, ..RecoverLimits::default() };
        let found = recover_with(dir, dir, options(), limits).unwrap();
        let (again, mut passes) = keep_what_precedes(&RealFs, dir, dir, options()).unwrap();
        assert_eq!(passes.len(), 1, "one damage, one pass");
        assert_eq!(again.damage, None);
        assert_eq!(again.tree.last_processed_zxid(), found.tree.last_processed_zxid());
        assert_eq!(again.tree.digest(), found.tree.digest(), "the same tree, from the files now on disk");
        (found, passes.remove(0), again)
    }

    #[test]
    fn a_flip_mid_log_keeps_the_txns_before_it_and_sets_the_rest_aside() {
        let scratch = flipped("log.1e8", 1500);
        let dir = scratch.path();
        let (found, done, again) = keep_what_precedes_once(dir);
        let damage = found.damage.unwrap();
        assert_eq!(damage.log, dir.join("log.1e8"));
        assert!(damage.reason.contains("fktool"), "the refusal it replaces: {}", damage.reason);
        let reached = again.tree.last_processed_zxid();
        assert!((0x1e8..0x215).contains(&reached), "{reached:#x}");
        let (log, offset, copy) = done.cut.unwrap();
        assert_eq!((log, offset), (dir.join("log.1e8"), damage.offset));
        assert!(done.moved.is_empty());
        assert_eq!(std::fs::metadata(dir.join("log.1e8")).unwrap().len(), damage.offset);
        assert_eq!(copy, dir.join("log.1e8.damaged"));
        assert_eq!(std::fs::metadata(&copy).unwrap().len(), 65552, "the damaged file kept whole for fktool");
        // The same damage found again (say the cut was undone by hand) keeps another copy.
        assert_eq!(aside_name(&RealFs, &dir.join("log.1e8")), dir.join("log.1e8.damaged.1"));
    }

    #[test]
    fn damage_before_the_snapshot_keeps_the_snapshot_and_sets_later_logs_aside() {
        // Early in log.123, which the newest snapshot (0x1e6) covers up to 0x1e7.
        let scratch = flipped("log.123", 200);
        let dir = scratch.path();
        let (_, done, again) = keep_what_precedes_once(dir);
        assert_eq!(again.tree.last_processed_zxid(), 0x1e6, "snapshot.1e6, and nothing readable after it");
        assert!(again.snapshot.unwrap().ends_with("snapshot.1e6"));
        assert_eq!(done.moved, vec![(dir.join("log.1e8"), dir.join("log.1e8.damaged"))]);
    }

    #[test]
    fn the_mark_round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_mark(&RealFs, dir.path()).unwrap(), None);
        write_mark(&RealFs, dir.path(), "log.5: bad checksum at offset 100").unwrap();
        assert_eq!(read_mark(&RealFs, dir.path()).unwrap().as_deref(), Some("log.5: bad checksum at offset 100"));
        assert!(!dir.path().join(MARK_TMP).exists());
        clear_mark(&RealFs, dir.path()).unwrap();
        clear_mark(&RealFs, dir.path()).unwrap();
        assert_eq!(read_mark(&RealFs, dir.path()).unwrap(), None);
    }
}
