//! Start-up recovery (reference/on-disk.md §5): load the newest snapshot whose checksums hold, then replay
//! every logged txn after it. A torn tail of the last log — a write the crash interrupted, never
//! acknowledged — is truncated and logged. A tail counts as torn only when nothing after it holds valid
//! data: no valid record later in the file (the reader checks), no snapshot newer than the last record
//! before it, and, for a log that is not the last, a next log that continues at the next zxid. Anything
//! else that would lose or skip a durable txn (damage in the middle of a log, a missing log, a gap in
//! zxids) stops start-up with a message naming the file, the offset and the `fktool` command to use. A
//! record whose checksum holds but whose end-of-record byte was damaged is intact: it is replayed and
//! the byte rewritten.

use std::path::{Path, PathBuf};

use fk_net::txn::Txn;
use thiserror::Error;
use tracing::{info, warn};

use crate::files::{LOG_PREFIX, SNAPSHOT_PREFIX, list_in};
use crate::fs::{Fs, RealFs};
use crate::log::{LogEnd, LogError, LogReader, Next};
use crate::snap::{load_snapshot_in, looks_complete_in};
use crate::tree::{DataTree, TreeOptions};

/// ZooKeeper tries at most this many snapshots, newest first.
const SNAPSHOT_CANDIDATES: usize = 100;

#[derive(Debug, Error)]
pub enum RecoveryError {
    #[error("cannot read directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{source}\nStarting would silently drop durable txns, so start-up stops here. Inspect the log with \
         `fktool log verify {}` and `fktool log dump {}`. If losing every txn from the damaged record on is \
         acceptable (say, this member can be resynchronised from others), keep a copy of the file and cut it \
         there with `fktool log truncate {} --offset {}`",
        path.display(), path.display(), path.display(),
        source.offset().map_or_else(|| "<offset>".to_owned(), |o| o.to_string())
    )]
    CorruptLog { path: PathBuf, source: LogError },
    #[error(
        "{path}: the record at offset {offset} is damaged ({reason}) and ends the log after zxid 0x{last_zxid:x}, \
         but {snapshot} shows txns up to 0x{snapshot_zxid:x} were durable: the damage is not a torn write, and \
         acknowledged txns may be in it. Inspect it with `fktool log verify {}`; if losing the txns from that \
         record on is acceptable, keep a copy and cut it with `fktool log truncate {} --offset {offset}`",
        path.display(), path.display()
    )]
    DamagedBeforeSnapshot {
        path: PathBuf,
        offset: u64,
        reason: String,
        last_zxid: i64,
        snapshot: String,
        snapshot_zxid: i64,
    },
    #[error(
        "{path} cannot be loaded ({reason}), yet its name says txns up to 0x{zxid:x} were durable, and the logs \
         and older snapshots reach only 0x{reached:x}: the txns after that are in no readable file. Inspect it \
         with `fktool snap dump {}`",
        path.display()
    )]
    UnreadableSnapshotAhead { path: PathBuf, zxid: i64, reason: String, reached: i64 },
    #[error("txn zxid 0x{found:x} in {path} follows 0x{previous:x}: txns are missing (a log file deleted?)")]
    Gap { path: PathBuf, previous: i64, found: i64 },
    #[error(
        "no usable snapshot in {dir} ({detail}) and the logs start at zxid 0x{first_log:x}, not 1: the txns before it are gone"
    )]
    NoSnapshot { dir: PathBuf, detail: String, first_log: i64 },
    #[error("cannot truncate the torn tail of {path}: {source}")]
    Truncate { path: PathBuf, source: std::io::Error },
    #[error("cannot remove {path}, a log whose header was never written: {source}")]
    RemoveNeverWritten { path: PathBuf, source: std::io::Error },
    #[error("cannot rewrite the end-of-record marker at offset {offset} of {path}: {source}")]
    RepairMarker { path: PathBuf, offset: u64, source: std::io::Error },
}

impl RecoveryError {
    /// Whether this is damage to the files' contents (which an ensemble member can recover from its
    /// ensemble, [`crate::damage`]) rather than a failure to read or change them.
    pub fn is_damage(&self) -> bool {
        match self {
            RecoveryError::CorruptLog { source, .. } => !matches!(source, LogError::Io { .. }),
            RecoveryError::DamagedBeforeSnapshot { .. }
            | RecoveryError::UnreadableSnapshotAhead { .. }
            | RecoveryError::Gap { .. }
            | RecoveryError::NoSnapshot { .. } => true,
            RecoveryError::Io { .. }
            | RecoveryError::Truncate { .. }
            | RecoveryError::RemoveNeverWritten { .. }
            | RecoveryError::RepairMarker { .. } => false,
        }
    }
}

/// The state recovery rebuilt, and what it found on the way.
pub struct Recovered {
    pub tree: DataTree,
    /// The snapshot loaded, if any.
    pub snapshot: Option<PathBuf>,
    pub replayed: usize,
    /// A torn tail that was cut (or, read-only, would have been): (file, offset).
    pub truncated: Option<(PathBuf, u64)>,
    /// Logs whose header was never written (a crash while creating them): they hold no txn and were
    /// removed (or, read-only, would have been).
    pub never_written: Vec<PathBuf>,
    /// Records whose end-of-record byte was damaged while their checksum held, rewritten.
    pub end_markers_repaired: usize,
    /// Whether the data directory held nothing at all (a first start).
    pub fresh: bool,
    /// Logged digests compared with the replayed tree, and how many did not match.
    pub digests_checked: usize,
    pub digest_mismatches: usize,
    /// Whether the tree may hold changes of txns replay has not reached (a fuzzy snapshot): whoever
    /// applies the next txns compares their logged digests only once the tree is exact.
    pub fuzziness: Fuzziness,
    /// The last txns replayed (at most [`RECENT_KEPT`]), oldest first: what an ensemble's leader keeps
    /// to synchronise learners by DIFF (ZooKeeper fills its committed log with them while loading).
    pub recent: Vec<Txn>,
    /// With [`RecoverLimits::stop_at_damage`]: the damage replay stopped at, if any.
    pub damage: Option<Damage>,
}

/// Replayed txns kept in [`Recovered::recent`] (ZooKeeper's default `commitLogCount`).
pub const RECENT_KEPT: usize = 500;

/// Recovers from `snap_dir` and `log_dir` (the `version-2` directories).
pub fn recover(snap_dir: &Path, log_dir: &Path, options: TreeOptions) -> Result<Recovered, RecoveryError> {
    recover_with(snap_dir, log_dir, options, RecoverLimits::default())
}

/// How far [`recover_with`] goes and whether it may change files; the default is start-up recovery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoverLimits {
    /// Rebuild the tree as of this zxid: start from the newest snapshot that holds nothing newer (a fuzzy
    /// snapshot may hold changes past its name, up to its digest record's zxid) and replay up to it.
    pub up_to_zxid: Option<i64>,
    /// Change no file (offline tools): a torn tail is reported in [`Recovered::truncated`] but not cut,
    /// and damaged end-of-record bytes are not rewritten.
    pub read_only: bool,
    /// Stop replay at damage instead of failing, and say where in [`Recovered::damage`]: the tree then
    /// holds everything before it (an ensemble member about to recover the rest from its ensemble,
    /// [`crate::damage`]). I/O errors still fail.
    pub stop_at_damage: bool,
}

/// Where [`RecoverLimits::stop_at_damage`] stopped: the first byte of the logs not to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The log holding it; every later log depends on it.
    pub log: PathBuf,
    /// Where the damaged part starts (0: the whole file).
    pub offset: u64,
    /// What recovery would have refused to start with.
    pub reason: String,
}

/// Recovery within `limits`: the same snapshot choice, replay, checks and errors as [`recover`].
pub fn recover_with(
    snap_dir: &Path,
    log_dir: &Path,
    options: TreeOptions,
    limits: RecoverLimits,
) -> Result<Recovered, RecoveryError> {
    recover_in(&RealFs, snap_dir, log_dir, options, limits)
}

/// [`recover_with`] on `fs`.
pub fn recover_in(
    fs: &dyn Fs,
    snap_dir: &Path,
    log_dir: &Path,
    options: TreeOptions,
    limits: RecoverLimits,
) -> Result<Recovered, RecoveryError> {
    let snapshots =
        list_in(fs, snap_dir, SNAPSHOT_PREFIX).map_err(|source| RecoveryError::Io { path: snap_dir.into(), source })?;
    let mut logs =
        list_in(fs, log_dir, LOG_PREFIX).map_err(|source| RecoveryError::Io { path: log_dir.into(), source })?;
    let never_written = set_aside_never_written(fs, &mut logs, log_dir, limits.read_only)?;
    let fresh = snapshots.is_empty() && logs.is_empty();
    let Loaded { mut tree, snapshot, digest: snapshot_digest, rejected, unreadable } =
        newest_valid_snapshot(fs, &snapshots, options, limits.up_to_zxid);
    let mut digests =
        DigestCheck { snapshot: snapshot_digest.filter(|(zxid, _)| *zxid != 0), checked: 0, mismatches: 0 };
    let replayed = if snapshot.is_none() && logs.first().is_some_and(|(first, _)| *first > 1) {
        let detail = if rejected.is_empty() { "none found".into() } else { rejected.join("; ") };
        let error = RecoveryError::NoSnapshot { dir: snap_dir.into(), detail, first_log: logs[0].0 };
        if !limits.stop_at_damage {
            return Err(error);
        }
        // Nothing is usable: the damage starts at the first log.
        let damage = Damage { log: logs[0].1.clone(), offset: 0, reason: error.to_string() };
        Replayed { damage: Some(damage), ..Replayed::default() }
    } else {
        digests.check_snapshot(&tree);
        replay(fs, &mut tree, &logs, &snapshots, &mut digests, limits)?
    };
    let mut replayed = replayed;
    // A snapshot is renamed into place only once durable, so one that looks whole but will not load
    // was damaged, and its name still says how far the state was durable.
    if let Some((zxid, path, reason)) = unreadable.filter(|(zxid, ..)| *zxid > tree.last_processed_zxid())
        && replayed.damage.is_none()
        && limits.up_to_zxid.is_none()
    {
        let reached = tree.last_processed_zxid();
        let error = RecoveryError::UnreadableSnapshotAhead { path: path.clone(), zxid, reason, reached };
        if !limits.stop_at_damage {
            return Err(error);
        }
        // The logs are whole; what to set aside is that snapshot (newer than the one loaded).
        replayed.damage = Some(Damage { log: path, offset: 0, reason: error.to_string() });
    }
    let fuzziness = match (digests.snapshot, &snapshot, snapshot_digest) {
        (Some((zxid, _)), _, _) => Fuzziness::Through(zxid),
        (None, Some(_), None) => Fuzziness::Unknown,
        _ => Fuzziness::Exact,
    };
    Ok(Recovered {
        tree,
        snapshot,
        recent: replayed.recent.into(),
        replayed: replayed.txns,
        truncated: replayed.truncated,
        damage: replayed.damage,
        never_written,
        end_markers_repaired: replayed.end_markers_repaired,
        fresh,
        digests_checked: digests.checked,
        digest_mismatches: digests.mismatches,
        fuzziness,
    })
}

/// How far a tree loaded from a fuzzy snapshot (written while the tree changed) may be ahead of the txns
/// replayed onto it. Replaying a txn whose change the tree already holds is harmless (txns are
/// idempotent), but the digest logged with it describes the tree right after that txn alone, so it is
/// compared only once the tree is exact — ZooKeeper's `DataTree.compareDigest` skips the fuzzy part too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fuzziness {
    /// Exact: every logged digest can be compared.
    Exact,
    /// It may hold changes of txns through this zxid: the snapshot's digest record is past replay.
    Through(i64),
    /// It may hold changes of later txns, and how far is not recorded: a snapshot without a digest record,
    /// such as one just received from a leader (the SNAP stream carries none). Exact from the first
    /// txn whose logged digest it matches (a 64-bit digest matching by chance is not a concern).
    Unknown,
}

/// Compares the replayed tree with the digests ZooKeeper logged, as its `compareDigest` does: a mismatch
/// means replay did not rebuild the tree that was running (logged, not fatal, as in ZooKeeper).
struct DigestCheck {
    /// The snapshot's (zxid, digest), checked once replay reaches that zxid.
    snapshot: Option<(i64, u64)>,
    checked: usize,
    mismatches: usize,
}

impl DigestCheck {
    fn check_snapshot(&mut self, tree: &DataTree) {
        if let Some((zxid, digest)) = self.snapshot
            && tree.last_processed_zxid() >= zxid
        {
            self.snapshot = None;
            self.checked += usize::from(tree.last_processed_zxid() == zxid);
            if tree.last_processed_zxid() == zxid && tree.digest() != digest {
                warn!(
                    "snapshot digest mismatch at zxid 0x{zxid:x}: logged 0x{digest:x}, rebuilt 0x{:x}",
                    tree.digest()
                );
                self.mismatches += 1;
            }
        }
    }

    /// Compares the digest logged with `txn` (just replayed) with the tree's. Not while the tree is
    /// still fuzzy — replay has not yet reached the zxid of the snapshot's digest record, so the tree may
    /// hold changes of txns not replayed yet — as ZooKeeper's `DataTree.compareDigest` skips them too.
    fn check_txn(&mut self, tree: &DataTree, txn: &fk_net::txn::Txn) {
        self.check_snapshot(tree);
        if self.snapshot.is_some() {
            return;
        }
        self.checked += usize::from(txn.digest.is_some());
        if let Some(logged) = &txn.digest
            && logged.tree_digest as u64 != tree.digest()
        {
            if self.mismatches < 10 {
                warn!(
                    "digest mismatch after zxid 0x{:x}: logged 0x{:x}, replayed tree 0x{:x}",
                    txn.header.zxid,
                    logged.tree_digest,
                    tree.digest()
                );
            }
            self.mismatches += 1;
        }
    }
}

/// What [`newest_valid_snapshot`] found.
struct Loaded {
    tree: DataTree,
    snapshot: Option<PathBuf>,
    /// Its digest record.
    digest: Option<(i64, u64)>,
    /// Why others were passed over.
    rejected: Vec<String>,
    /// The newest snapshot passed over that looked whole but did not load: (zxid, file, why).
    unreadable: Option<(i64, PathBuf, String)>,
}

/// The newest snapshot that loads with valid checksums and holds nothing past `up_to_zxid` (or an empty
/// tree), its digest record, why others were passed over, and the newest that did not load.
fn newest_valid_snapshot(
    fs: &dyn Fs,
    snapshots: &[(i64, PathBuf)],
    options: TreeOptions,
    up_to_zxid: Option<i64>,
) -> Loaded {
    let mut rejected = Vec::new();
    let mut unreadable = None;
    let limit = up_to_zxid.unwrap_or(i64::MAX);
    for (zxid, path) in snapshots.iter().rev().filter(|(zxid, _)| *zxid <= limit).take(SNAPSHOT_CANDIDATES) {
        if !looks_complete_in(fs, path) {
            warn!("skipping {}: incomplete (does not end with the \"/\" trailer)", path.display());
            rejected.push(format!("{} incomplete", path.display()));
            continue;
        }
        let started = std::time::Instant::now();
        match load_snapshot_in(fs, path, *zxid, options) {
            Ok((tree, stats)) if fuzzy_end(&tree, &stats) > limit => {
                let reason = format!(
                    "{} holds changes up to zxid 0x{:x}, past 0x{limit:x}",
                    path.display(),
                    fuzzy_end(&tree, &stats)
                );
                info!("skipping {reason}; trying an older snapshot");
                rejected.push(reason);
            }
            Ok((tree, stats)) => {
                info!(
                    "loaded {} ({} nodes, last zxid 0x{:x}) in {} ms",
                    path.display(),
                    stats.nodes,
                    tree.last_processed_zxid(),
                    started.elapsed().as_millis()
                );
                return Loaded { tree, snapshot: Some(path.clone()), digest: stats.digest, rejected, unreadable };
            }
            Err(e) => {
                warn!("skipping {}: {e}; trying an older snapshot", path.display());
                unreadable.get_or_insert_with(|| (*zxid, path.clone(), e.to_string()));
                rejected.push(e.to_string());
            }
        }
    }
    Loaded { tree: DataTree::new(options), snapshot: None, digest: None, rejected, unreadable }
}

/// The newest zxid whose changes a loaded snapshot may hold: its digest record's zxid when that is past
/// the name (the walk went on while txns were applied), else the tree's last processed zxid.
fn fuzzy_end(tree: &DataTree, info: &crate::snap::SnapshotInfo) -> i64 {
    let digest_zxid = info.digest.map_or(0, |(zxid, _)| zxid);
    digest_zxid.max(tree.last_processed_zxid())
}

/// What replay did besides applying txns.
#[derive(Default)]
struct Replayed {
    txns: usize,
    truncated: Option<(PathBuf, u64)>,
    end_markers_repaired: usize,
    recent: std::collections::VecDeque<Txn>,
    damage: Option<Damage>,
}

/// Replays every txn newer than the tree from the logs that can hold them. `snapshots` are every
/// snapshot file, by zxid: each name says txns up to it were durable once.
fn replay(
    fs: &dyn Fs,
    tree: &mut DataTree,
    logs: &[(i64, PathBuf)],
    snapshots: &[(i64, PathBuf)],
    digests: &mut DigestCheck,
    limits: RecoverLimits,
) -> Result<Replayed, RecoveryError> {
    let newest_snapshot = snapshots.last();
    let from = tree.last_processed_zxid();
    let up_to = limits.up_to_zxid.unwrap_or(i64::MAX);
    // The newest log starting at or before the snapshot holds the first txns after it.
    let start = logs.iter().rposition(|(zxid, _)| *zxid <= from).unwrap_or(0);
    let mut done = Replayed::default();
    let mut triggers = Vec::new();
    // Damage ends replay: an error, or (stop_at_damage) where the trusted part of the logs ends.
    let damaged = |done: &mut Replayed, log: &Path, offset: u64, error: RecoveryError| {
        if !limits.stop_at_damage {
            return Err(error);
        }
        done.damage = Some(Damage { log: log.to_owned(), offset, reason: error.to_string() });
        Ok(())
    };
    for (index, (first_zxid, path)) in logs.iter().enumerate().skip(start) {
        let corrupt = |source| RecoveryError::CorruptLog { path: path.clone(), source };
        let mut log = match LogReader::open_in(fs, path) {
            Ok(log) => log,
            Err(source @ LogError::BadHeader { .. }) => {
                damaged(&mut done, path, 0, corrupt(source))?;
                return Ok(done);
            }
            Err(source) => return Err(corrupt(source)),
        };
        let mut file_last_zxid = first_zxid - 1;
        let mut damaged_markers = Vec::new();
        // `None`: replay reached `up_to`, and nothing after it matters.
        let end = loop {
            let record = match log.read_next() {
                Ok(Next::Record(record)) if record.txn.header.zxid > up_to => break None,
                Ok(Next::Record(record)) => record,
                Ok(Next::End(end)) => break Some(end),
                Err(source) => match source.offset() {
                    Some(offset) => {
                        damaged(&mut done, path, offset, corrupt(source))?;
                        break None;
                    }
                    None => return Err(corrupt(source)),
                },
            };
            if record.end_marker_damaged {
                damaged_markers.push(record.end_marker_offset());
            }
            let zxid = record.txn.header.zxid;
            file_last_zxid = zxid;
            let last = tree.last_processed_zxid();
            if zxid <= last {
                continue;
            }
            if !continues(last, zxid, snapshots) {
                let gap = RecoveryError::Gap { path: path.clone(), previous: last, found: zxid };
                damaged(&mut done, path, record.offset, gap)?;
                break None;
            }
            crate::txn::apply(tree, &record.txn, &mut triggers);
            triggers.clear();
            digests.check_txn(tree, &record.txn);
            done.txns += 1;
            if done.recent.len() == RECENT_KEPT {
                done.recent.pop_front();
            }
            done.recent.push_back(record.txn);
        };
        for offset in damaged_markers.into_iter().filter(|_| !limits.read_only) {
            repair_end_marker(fs, path, offset)?;
            done.end_markers_repaired += 1;
        }
        let Some(end) = end else { return Ok(done) };
        let LogEnd::Torn { offset, reason } = end else { continue };
        if index + 1 < logs.len() {
            // ZooKeeper never cuts a torn tail: after a crash it starts a new log at the next zxid. Such
            // a tail is harmless exactly when the next file continues where this one stops, which the
            // zxid continuity check on the next file's first txn decides.
            warn!("{}: torn record at offset {offset} ({reason}); continuing with the next log", path.display());
            continue;
        }
        if let Some((snapshot_zxid, snapshot)) = newest_snapshot.filter(|(zxid, _)| *zxid > file_last_zxid) {
            let error = RecoveryError::DamagedBeforeSnapshot {
                path: path.clone(),
                offset,
                reason,
                last_zxid: file_last_zxid,
                snapshot: snapshot.display().to_string(),
                snapshot_zxid: *snapshot_zxid,
            };
            damaged(&mut done, path, offset, error)?;
            return Ok(done);
        }
        if !limits.read_only {
            truncate(fs, path, offset, &reason)?;
        }
        done.truncated = Some((path.clone(), offset));
        return Ok(done);
    }
    Ok(done)
}

/// Takes the logs whose header was never written out of `logs` and returns them: the writer makes a header durable before
/// any record goes into its file, so such a file holds no txn, and nothing is lost by skipping it (the zxid
/// continuity check still sees any txn missing). ZooKeeper fails on an empty log with an EOFException; and
/// left in place, one would be refused at the next start as damage once a newer log follows it, so
/// start-up removes them.
fn set_aside_never_written(
    fs: &dyn Fs,
    logs: &mut Vec<(i64, PathBuf)>,
    log_dir: &Path,
    read_only: bool,
) -> Result<Vec<PathBuf>, RecoveryError> {
    let mut never_written = Vec::new();
    for (path, error) in crate::log::take_never_written(fs, logs) {
        warn!("{error}: {}", if read_only { "skipping it" } else { "removing it" });
        never_written.push(path);
    }
    if !read_only && !never_written.is_empty() {
        let remove = |path: &PathBuf| {
            fs.remove(path).map_err(|source| RecoveryError::RemoveNeverWritten { path: path.clone(), source })
        };
        never_written.iter().try_for_each(remove)?;
        fs.sync_dir(log_dir).map_err(|source| RecoveryError::RemoveNeverWritten { path: log_dir.into(), source })?;
    }
    Ok(never_written)
}

/// Whether `zxid` may follow `last` in a member's history. Within an epoch zxids count up by one; a new
/// epoch's first txn is its leader's first proposal, counter 1 (a learner sent a snapshot mid-epoch
/// loads it, or replay would not start there). Where an epoch ends is known only when a snapshot name
/// falls between: txns up to it were durable, so it must not lie between `last` and `zxid` (unless it
/// names the new epoch's start, counter 0). Anything else lacks txns: an older snapshot was fallen back
/// on, or a log is missing.
fn continues(last: i64, zxid: i64, snapshots: &[(i64, PathBuf)]) -> bool {
    if zxid >> 32 == last >> 32 {
        return zxid == last + 1;
    }
    let epoch_start = zxid - 1;
    let mut between = snapshots.iter().map(|(z, _)| *z).filter(|z| *z > last && *z < zxid);
    zxid & 0xffff_ffff == 1 && between.all(|z| z == epoch_start)
}

/// Rewrites the end-of-record byte of a record whose checksum proved it intact, so that the file reads
/// cleanly again (ZooKeeper itself would stop at the bad byte and drop every record after it).
fn repair_end_marker(fs: &dyn Fs, path: &Path, offset: u64) -> Result<(), RecoveryError> {
    warn!(
        "{}: the end-of-record byte at offset {offset} is not 'B' but its record's checksum holds; the record \
         is intact, rewriting the byte",
        path.display()
    );
    let repair = || -> std::io::Result<()> {
        let file = fs.open(path, false)?;
        file.write_at(&[crate::log::format::END_OF_RECORD], offset)?;
        file.sync_data()
    };
    repair().map_err(|source| RecoveryError::RepairMarker { path: path.into(), offset, source })
}

fn truncate(fs: &dyn Fs, path: &Path, offset: u64, reason: &str) -> Result<(), RecoveryError> {
    warn!(
        "{}: the last record is torn at offset {offset} ({reason}); it was never acknowledged, truncating the log there",
        path.display()
    );
    fs.open(path, false)
        .and_then(|file| file.set_len_durably(offset))
        .map_err(|source| RecoveryError::Truncate { path: path.into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache ZooKeeper 3.8's data dir (tests/fixtures/zk38/README.md): snapshots 0, b3 (digest record
    /// at 0xb4), 121, 1e6 (0x1e7); logs up to 0x215; `-corrupt-tail` cuts the record of 0x215.
    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zk38").join(name).join("version-2")
    }

    fn at(dir: &Path, up_to_zxid: Option<i64>) -> Recovered {
        let limits = RecoverLimits { up_to_zxid, read_only: true, ..RecoverLimits::default() };
        recover_with(dir, dir, TreeOptions::fixed_seed(true), limits).unwrap()
    }

    #[test]
    fn what_may_follow_what_in_a_history() {
        let named = |zxids: &[i64]| -> Vec<(i64, PathBuf)> { zxids.iter().map(|z| (*z, PathBuf::new())).collect() };
        let none = named(&[]);
        assert!(continues(0x100000007, 0x100000008, &none));
        assert!(!continues(0x100000007, 0x100000009, &none), "a txn missing within an epoch");
        assert!(continues(0x100000007, 0x200000001, &none), "a new epoch's first proposal");
        assert!(!continues(0x100000007, 0x200000002, &none), "the new epoch's first txn missing");
        assert!(continues(0, 0x100000001, &none));
        // A snapshot named between says txns reached it: they are missing (the simulator found a damaged
        // snapshot.10000004d, snapshot.0 loaded instead, and log.200000001 replayed onto it).
        assert!(!continues(0, 0x200000001, &named(&[0, 0x10000004d])));
        assert!(continues(0x10000004d, 0x200000001, &named(&[0x10000004d, 0x200000000])), "an epoch's start");
    }

    #[test]
    fn logs_that_do_not_continue_the_snapshot_fallen_back_on_are_a_gap() {
        // Only snapshot.0 and the logs from 0x123 on: replaying them onto the empty tree would build a
        // tree without txns 1..0x122 (the simulator found it: a learner's only snapshot, the one its
        // leader sent, damaged, and snapshot.0 loaded in its place).
        let scratch = tempfile::tempdir().unwrap();
        for name in ["snapshot.0", "log.123", "log.1e8"] {
            std::fs::copy(fixture("datadir").join(name), scratch.path().join(name)).unwrap();
        }
        let dir = scratch.path();
        let error = recover(dir, dir, TreeOptions::fixed_seed(true)).err().expect("a gap");
        assert!(matches!(error, RecoveryError::Gap { previous: 0, found: 0x123, .. }), "{error}");
        assert!(error.is_damage());
    }

    #[test]
    fn replay_stops_at_the_zxid_asked_for_from_the_newest_snapshot_holding_nothing_newer() {
        // (up to, snapshot expected, zxid reached)
        let cases = [
            (None, "snapshot.1e6", 0x215),
            (Some(0x215), "snapshot.1e6", 0x215),
            (Some(0x1_0000_0000), "snapshot.1e6", 0x215),
            (Some(0x1e7), "snapshot.1e6", 0x1e7),
            // snapshot.1e6 holds changes up to 0x1e7, so the tree as of 0x1e6 starts from snapshot.121.
            (Some(0x1e6), "snapshot.121", 0x1e6),
            (Some(0x100), "snapshot.b3", 0x100),
            (Some(0xb4), "snapshot.b3", 0xb4),
            (Some(0xb3), "snapshot.0", 0xb3),
            (Some(0x3), "snapshot.0", 0x3),
        ];
        let dir = fixture("datadir");
        for (up_to, snapshot, reached) in cases {
            let recovered = at(&dir, up_to);
            assert!(recovered.snapshot.as_ref().unwrap().ends_with(snapshot), "{up_to:x?}: {:?}", recovered.snapshot);
            assert_eq!(recovered.tree.last_processed_zxid(), reached, "{up_to:x?}");
            // Every digest ZooKeeper logged up to there matches the rebuilt tree: the state is exact.
            assert_eq!(recovered.digest_mismatches, 0, "{up_to:x?}");
            assert!(recovered.digests_checked > 0, "{up_to:x?}");
        }
    }

    #[test]
    fn read_only_recovery_reports_a_torn_tail_without_cutting_it() {
        let scratch = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture("datadir-corrupt-tail")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), scratch.path().join(entry.file_name())).unwrap();
        }
        let log = scratch.path().join("log.1e8");
        let before = std::fs::metadata(&log).unwrap().len();
        let recovered = at(scratch.path(), None);
        assert_eq!(recovered.truncated, Some((log.clone(), 3582)));
        assert_eq!(recovered.tree.last_processed_zxid(), 0x214);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), before, "read-only leaves the file alone");
        // Stopping before the torn record never reaches it.
        assert_eq!(at(scratch.path(), Some(0x213)).truncated, None);
    }

    #[test]
    fn logs_whose_header_was_never_written_are_skipped_and_removed_at_start_up() {
        let scratch = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture("datadir")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), scratch.path().join(entry.file_name())).unwrap();
        }
        // The newest log created by a process killed before its header was written, and an older one
        // left by an earlier such crash whose txn was then written under another name.
        let newest = scratch.path().join("log.216");
        std::fs::write(&newest, b"").unwrap();
        let older = scratch.path().join("log.1e7");
        std::fs::write(&older, [0x5a, 0x4b]).unwrap();
        let read_only = at(scratch.path(), None);
        assert_eq!(read_only.never_written, vec![older.clone(), newest.clone()]);
        assert_eq!(read_only.tree.last_processed_zxid(), 0x215);
        assert!(newest.exists() && older.exists(), "read-only leaves them");
        let dir = scratch.path();
        let recovered = recover(dir, dir, TreeOptions::fixed_seed(true)).unwrap();
        assert_eq!((recovered.tree.last_processed_zxid(), recovered.replayed), (0x215, read_only.replayed));
        assert_eq!(recovered.digest_mismatches, 0);
        assert!(!newest.exists() && !older.exists(), "start-up removes them");
    }
}
