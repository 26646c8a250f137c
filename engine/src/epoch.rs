//! `currentEpoch` and `acceptedEpoch` (reference/on-disk.md §1, §5): the epochs a quorum member has
//! accepted and acted in, each a decimal number in a file next to the snapshots, written atomically
//! (temp file, fsync, rename, directory fsync) exactly as ZooKeeper writes them, so either server can
//! start on the other's directory. Standalone servers do not use them.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::fs::Fs;

pub const CURRENT_EPOCH: &str = "currentEpoch";
pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";
/// ZooKeeper's `QuorumPeer.UPDATING_EPOCH_FILENAME`: present while a learner makes its synchronised
/// history durable before it writes the new current epoch; a crash in between leaves a log ahead of
/// the current epoch, which start-up then accepts.
pub const UPDATING_EPOCH: &str = "updatingEpoch";
/// ZooKeeper's `AtomicFileOutputStream.TMP_EXTENSION`.
const TMP_SUFFIX: &str = ".tmp";

#[derive(Debug, Error)]
pub enum EpochError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} holds '{text}', not an epoch number")]
    NotANumber { path: PathBuf, text: String },
    #[error("the current epoch, {current}, is older than the last zxid, 0x{last_zxid:x} (epoch {})", last_zxid >> 32)]
    CurrentBehindLog { current: i64, last_zxid: i64 },
    #[error("the accepted epoch, {accepted}, is less than the current epoch, {current}")]
    AcceptedBehindCurrent { accepted: i64, current: i64 },
}

impl EpochError {
    /// Whether the files themselves are wrong (a number that does not read, or epochs that contradict
    /// each other or the log) rather than unreachable: what a flipped bit or a lost write leaves. ZooKeeper
    /// refuses to start on it; an ensemble member may recover from its ensemble instead
    /// (`ferrokeeper::storage::recover_at_start`). ZooKeeper's format has no checksum, so a flip that
    /// leaves another plausible number is not seen, here as there.
    pub fn is_damage(&self) -> bool {
        !matches!(self, EpochError::Io { .. })
    }
}

/// The epochs a member starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epochs {
    pub current: i64,
    pub accepted: i64,
}

/// The epoch in a zxid's upper 32 bits.
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// Reads `dir/name`; `None` if the file does not exist.
pub fn read_epoch(fs: &dyn Fs, dir: &Path, name: &str) -> Result<Option<i64>, EpochError> {
    let path = dir.join(name);
    let text = match fs.read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(EpochError::Io { path, source }),
    };
    // ZooKeeper reads the first line and parses it as a long.
    let line = text.lines().next().unwrap_or_default().to_owned();
    line.parse().map(Some).map_err(|_| EpochError::NotANumber { path, text: line })
}

/// Writes `value` to `dir/name` atomically and durably.
pub fn write_epoch(fs: &dyn Fs, dir: &Path, name: &str, value: i64) -> Result<(), EpochError> {
    let tmp = format!("{name}{TMP_SUFFIX}");
    crate::files::replace_durably(fs, dir, name, &tmp, value.to_string().as_bytes())
        .map_err(|source| EpochError::Io { path: dir.join(name), source })
}

/// Creates the `updatingEpoch` marker durably (before a learner logs a history newer than its current
/// epoch).
pub fn mark_epoch_update(fs: &dyn Fs, dir: &Path) -> Result<(), EpochError> {
    let path = dir.join(UPDATING_EPOCH);
    let create = || -> std::io::Result<()> {
        fs.open(&path, true)?.sync_data()?;
        fs.sync_dir(dir)
    };
    create().map_err(|source| EpochError::Io { path: path.clone(), source })
}

/// Removes the `updatingEpoch` marker (once the new current epoch is written), if there is one.
pub fn clear_epoch_update(fs: &dyn Fs, dir: &Path) -> Result<(), EpochError> {
    crate::files::remove_durably(fs, dir, UPDATING_EPOCH)
        .map_err(|source| EpochError::Io { path: dir.join(UPDATING_EPOCH), source })
}

/// The epoch files as start-up finds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochFiles {
    pub current: Option<i64>,
    /// A leftover `currentEpoch.tmp` (a crash between writing and renaming it): its number, or its first
    /// line if that is none (an error only if the rules need it).
    pub current_tmp: Option<Result<i64, String>>,
    pub accepted: Option<i64>,
    /// The `updatingEpoch` marker is there.
    pub updating: bool,
}

/// What start-up decided: the epochs, and what to write so the files say the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochDecision {
    pub epochs: Epochs,
    /// `currentEpoch` must be written with `epochs.current` (then the marker cleared, if `clear_updating`).
    pub write_current: bool,
    pub clear_updating: bool,
    /// `acceptedEpoch` must be written with `epochs.accepted`.
    pub write_accepted: bool,
    /// What was decided beyond reading the files, for the log.
    pub notes: Vec<String>,
}

/// ZooKeeper's `QuorumPeer.loadDataBase` rules, given the files and the last zxid recovery reached: a
/// missing file is created from that zxid's epoch (an upgrade from a version without them); a current
/// epoch behind the log is the log's epoch if the `updatingEpoch` marker is there (a learner died between
/// making its synchronised history durable and writing the new epoch), else taken from a leftover
/// `currentEpoch.tmp`, else refused; an accepted epoch behind the current one is refused. Pure: the
/// member thread and the simulator both decide with it. `dir` names the files in errors.
pub fn decide_epochs(files: &EpochFiles, last_zxid: i64, dir: &Path) -> Result<EpochDecision, EpochError> {
    let log_epoch = epoch_of(last_zxid);
    let mut decision = EpochDecision {
        epochs: Epochs { current: log_epoch, accepted: log_epoch },
        write_current: false,
        clear_updating: false,
        write_accepted: false,
        notes: Vec::new(),
    };
    let mut current = match files.current {
        Some(epoch) => epoch,
        None => {
            decision.write_current = true;
            decision
                .notes
                .push(format!("{CURRENT_EPOCH} not found; created with {log_epoch}, the epoch of the last zxid"));
            log_epoch
        }
    };
    if log_epoch > current && files.updating {
        (decision.write_current, decision.clear_updating) = (true, true);
        decision.notes.push(format!(
            "{UPDATING_EPOCH} found: this member died while updating its epoch; current epoch set to {log_epoch}"
        ));
        current = log_epoch;
    }
    if log_epoch > current {
        let tmp = format!("{CURRENT_EPOCH}{TMP_SUFFIX}");
        match &files.current_tmp {
            Some(Ok(epoch)) => {
                decision.write_current = true;
                decision.notes.push(format!("{tmp} found; current epoch set to {epoch}"));
                current = *epoch;
            }
            Some(Err(text)) => return Err(EpochError::NotANumber { path: dir.join(tmp), text: text.clone() }),
            None => return Err(EpochError::CurrentBehindLog { current, last_zxid }),
        }
    }
    let accepted = match files.accepted {
        Some(epoch) => epoch,
        None => {
            decision.write_accepted = true;
            decision
                .notes
                .push(format!("{ACCEPTED_EPOCH} not found; created with {log_epoch}, the epoch of the last zxid"));
            log_epoch
        }
    };
    if accepted < current {
        return Err(EpochError::AcceptedBehindCurrent { accepted, current });
    }
    decision.epochs = Epochs { current, accepted };
    Ok(decision)
}

/// The epoch files in `dir`.
pub fn read_epoch_files(fs: &dyn Fs, dir: &Path) -> Result<EpochFiles, EpochError> {
    let current_tmp = match read_epoch(fs, dir, &format!("{CURRENT_EPOCH}{TMP_SUFFIX}")) {
        Ok(epoch) => epoch.map(Ok),
        Err(EpochError::NotANumber { text, .. }) => Some(Err(text)),
        Err(e) => return Err(e),
    };
    Ok(EpochFiles {
        current: read_epoch(fs, dir, CURRENT_EPOCH)?,
        current_tmp,
        accepted: read_epoch(fs, dir, ACCEPTED_EPOCH)?,
        updating: fs.read(&dir.join(UPDATING_EPOCH)).is_ok(),
    })
}

/// Reads the epoch files in `dir`, decides with [`decide_epochs`] and writes what it decided. Returns
/// the epochs and the notes.
pub fn load_epochs(fs: &dyn Fs, dir: &Path, last_zxid: i64) -> Result<(Epochs, Vec<String>), EpochError> {
    let decision = decide_epochs(&read_epoch_files(fs, dir)?, last_zxid, dir)?;
    if decision.write_current {
        write_epoch(fs, dir, CURRENT_EPOCH, decision.epochs.current)?;
    }
    if decision.clear_updating {
        clear_epoch_update(fs, dir)?;
    }
    if decision.write_accepted {
        write_epoch(fs, dir, ACCEPTED_EPOCH, decision.epochs.accepted)?;
    }
    Ok((decision.epochs, decision.notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    #[test]
    fn written_as_zookeeper_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        write_epoch(&RealFs, dir.path(), CURRENT_EPOCH, 7).unwrap();
        assert_eq!(std::fs::read(dir.path().join(CURRENT_EPOCH)).unwrap(), b"7", "decimal, no newline");
        assert!(!dir.path().join("currentEpoch.tmp").exists());
        assert_eq!(read_epoch(&RealFs, dir.path(), CURRENT_EPOCH).unwrap(), Some(7));
        assert_eq!(read_epoch(&RealFs, dir.path(), ACCEPTED_EPOCH).unwrap(), None);
        std::fs::write(dir.path().join(ACCEPTED_EPOCH), "8\n").unwrap();
        assert_eq!(read_epoch(&RealFs, dir.path(), ACCEPTED_EPOCH).unwrap(), Some(8), "a trailing newline is fine");
        std::fs::write(dir.path().join(ACCEPTED_EPOCH), "eight").unwrap();
        let err = read_epoch(&RealFs, dir.path(), ACCEPTED_EPOCH).unwrap_err().to_string();
        assert!(err.contains("acceptedEpoch holds 'eight', not an epoch number"), "{err}");
    }

    fn read_epoch_text(files: &[(&str, &str)], name: &str) -> Option<i64> {
        files.iter().find(|f| f.0 == name).and_then(|f| f.1.parse().ok())
    }

    /// (files present, last zxid) → epochs, or the error.
    #[test]
    fn start_up_rules_match_zookeepers() {
        let zxid = |epoch: i64, counter: i64| (epoch << 32) | counter;
        type Files = &'static [(&'static str, &'static str)];
        /// (current, accepted), or a part of the error.
        type Outcome = Result<(i64, i64), &'static str>;
        let cases: [(Files, i64, Outcome); 10] = [
            (&[], zxid(3, 9), Ok((3, 3))),
            (&[("currentEpoch", "3"), ("acceptedEpoch", "4")], zxid(3, 9), Ok((3, 4))),
            (&[("currentEpoch", "2"), ("currentEpoch.tmp", "3"), ("acceptedEpoch", "3")], zxid(3, 1), Ok((3, 3))),
            (&[("currentEpoch", "2"), ("acceptedEpoch", "3")], zxid(3, 1), Err("the current epoch, 2, is older")),
            (&[("currentEpoch", "5"), ("acceptedEpoch", "4")], zxid(3, 1), Err("accepted epoch, 4, is less than")),
            (&[("currentEpoch", "5")], zxid(5, 0), Ok((5, 5))),
            (&[("currentEpoch", "2"), ("updatingEpoch", ""), ("acceptedEpoch", "4")], zxid(3, 1), Ok((3, 4))),
            (&[("currentEpoch", "3"), ("updatingEpoch", ""), ("acceptedEpoch", "4")], zxid(3, 1), Ok((3, 4))),
            // A torn currentEpoch.tmp is read only when the rules need it (as ZooKeeper reads it).
            (&[("currentEpoch", "3"), ("currentEpoch.tmp", ""), ("acceptedEpoch", "3")], zxid(3, 1), Ok((3, 3))),
            (&[("currentEpoch", "2"), ("currentEpoch.tmp", "3x"), ("acceptedEpoch", "3")], zxid(3, 1), Err("'3x'")),
        ];
        for (files, last_zxid, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            for (name, text) in files {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
            match (load_epochs(&RealFs, dir.path(), last_zxid), expected) {
                (Ok((epochs, _)), Ok((current, accepted))) => {
                    assert_eq!(epochs, Epochs { current, accepted }, "{files:?}");
                    assert_eq!(
                        read_epoch(&RealFs, dir.path(), CURRENT_EPOCH).unwrap(),
                        Some(current),
                        "{files:?}: on disk"
                    );
                    assert_eq!(
                        read_epoch(&RealFs, dir.path(), ACCEPTED_EPOCH).unwrap(),
                        Some(accepted),
                        "{files:?}: on disk"
                    );
                    let marker_used = current > read_epoch_text(files, CURRENT_EPOCH).unwrap_or(current);
                    assert_eq!(
                        dir.path().join(UPDATING_EPOCH).exists(),
                        files.iter().any(|f| f.0 == UPDATING_EPOCH) && !marker_used,
                        "{files:?}: marker"
                    );
                }
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{files:?}: {e}"),
                (got, want) => panic!("{files:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
