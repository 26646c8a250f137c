//! Cutting a log: one file keeps the bytes before an offset, every later file goes.
//!
//! Done so that a crash at any point leaves either the old or the new state of each file, never a
//! half-written one: the kept bytes are written to a temporary file beside the log (named so that
//! neither ZooKeeper nor we take it for a log: it does not start with `log.`), fsynced, and renamed over
//! it; the later files are removed only after that rename is durable. Unless told otherwise, the
//! original of every file changed or removed is kept, byte for byte, in a backup directory beside the
//! log directory — not inside it, because ZooKeeper takes any `log.<hex>.<anything>` there for a log.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use fk_engine::files::sync_dir;
use fk_engine::log::format::{HEADER_LEN, RECORD_OVERHEAD, adler32};
use fk_net::txn::TxnHeader;

use super::source::short_name;

/// `file` keeps its bytes before `offset`; the `removed` files (later logs) go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CutPlan {
    pub file: PathBuf,
    pub offset: u64,
    pub removed: Vec<PathBuf>,
}

/// Where backups go: `None` = no backup.
#[derive(clap::Args, Debug)]
pub(crate) struct BackupArgs {
    /// Keep no copy of the files changed or removed.
    #[arg(long, conflicts_with = "backup_dir")]
    no_backup: bool,
    /// Where to keep the originals (default: fktool-backup-<unix time> beside the log directory).
    #[arg(long)]
    backup_dir: Option<PathBuf>,
}

/// What a cut drops: txns still readable after the cut point, and bytes of data (zero padding aside).
#[derive(Debug, Default)]
pub(crate) struct Loss {
    pub txns: usize,
    pub zxids: Option<(i64, i64)>,
    pub bytes: u64,
    /// Bytes at the cut point that are no readable record (a damaged record, a torn tail).
    pub unreadable: bool,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} txns", self.txns)?;
        if let Some((first, last)) = self.zxids {
            write!(f, " (zxid 0x{first:x}..=0x{last:x})")?;
        }
        if self.unreadable {
            write!(f, " plus the damaged bytes at the cut")?;
        }
        write!(f, ", {} bytes of log data", self.bytes)
    }
}

/// Counts what `plan` would drop. Records after a damaged one are found by their framing and checksum,
/// as the reader finds "a valid record follows it".
pub(crate) fn loss(plan: &CutPlan) -> anyhow::Result<Loss> {
    let mut loss = Loss::default();
    let bytes = std::fs::read(&plan.file).with_context(|| format!("cannot read {}", plan.file.display()))?;
    loss.bytes = data_end_of(&bytes).saturating_sub(plan.offset);
    let records = intact_records(&bytes, plan.offset as usize);
    loss.unreadable = loss.bytes > 0 && records.first().is_none_or(|(at, _)| *at != plan.offset);
    let mut zxids: Vec<i64> = records.into_iter().map(|(_, zxid)| zxid).collect();
    for removed in &plan.removed {
        let bytes = std::fs::read(removed).with_context(|| format!("cannot read {}", removed.display()))?;
        loss.bytes += data_end_of(&bytes).saturating_sub(HEADER_LEN as u64);
        zxids.extend(intact_records(&bytes, HEADER_LEN).into_iter().map(|(_, zxid)| zxid));
    }
    loss.txns = zxids.len();
    loss.zxids = zxids.iter().min().zip(zxids.iter().max()).map(|(a, b)| (*a, *b));
    Ok(loss)
}

/// Just past the last non-zero byte: what follows is preallocation.
fn data_end_of(bytes: &[u8]) -> u64 {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i as u64 + 1)
}

/// Every whole record (checksum holds, end marker present) at or after `from`, skipping damage a byte
/// at a time: (offset, zxid).
fn intact_records(bytes: &[u8], from: usize) -> Vec<(u64, i64)> {
    let mut records = Vec::new();
    let mut at = from;
    while at + RECORD_OVERHEAD <= bytes.len() {
        match intact_at(bytes, at) {
            Some((entry_len, zxid)) => {
                records.push((at as u64, zxid));
                at += RECORD_OVERHEAD + entry_len;
            }
            None => at = next_candidate(bytes, at),
        }
    }
    records
}

/// The next offset after `at` where a record could start. A record's checksum long has a non-zero lower
/// half (an Adler32 is never 0), so no record starts more than 11 bytes before the next non-zero byte:
/// a zero run (preallocation) is crossed in one scan instead of a parse per byte.
fn next_candidate(bytes: &[u8], at: usize) -> usize {
    match bytes[at + 1..].iter().position(|&b| b != 0) {
        Some(i) => (at + 1 + i).saturating_sub(11).max(at + 1),
        None => bytes.len(),
    }
}

fn intact_at(bytes: &[u8], at: usize) -> Option<(usize, i64)> {
    let prefix = bytes.get(at..at + 12)?;
    // ZooKeeper stores the 32-bit Adler32 in a long: its upper half is zero.
    if prefix[..4] != [0; 4] {
        return None;
    }
    let checksum = u32::from_be_bytes(prefix[4..8].try_into().expect("4 bytes"));
    let entry_len = usize::try_from(i32::from_be_bytes(prefix[8..12].try_into().expect("4 bytes"))).ok()?;
    let entry = bytes.get(at + 12..at + 12 + entry_len)?;
    if entry_len == 0 || bytes.get(at + 12 + entry_len) != Some(&b'B') || adler32(entry) != checksum {
        return None;
    }
    let header = <TxnHeader as fk_net::jute::Jute>::decode(&mut fk_net::jute::JuteReader::new(entry)).ok()?;
    Some((entry_len, header.zxid))
}

/// Carries out `plan`; returns the backup directory, if one was kept.
pub(crate) fn apply(plan: &CutPlan, backup: &BackupArgs) -> anyhow::Result<Option<PathBuf>> {
    let dir = plan.file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let backup_dir = if backup.no_backup { None } else { Some(make_backup_dir(&dir, backup.backup_dir.as_deref())?) };
    if let Some(backup_dir) = &backup_dir {
        copy_durably(&plan.file, &backup_dir.join(short_name(&plan.file)))?;
    }
    write_cut(&plan.file, plan.offset, &dir)?;
    for removed in &plan.removed {
        match &backup_dir {
            Some(backup_dir) => move_durably(removed, &backup_dir.join(short_name(removed)))?,
            None => std::fs::remove_file(removed).with_context(|| format!("cannot remove {}", removed.display()))?,
        }
    }
    sync_dir(&dir).with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(backup_dir)
}

/// `fktool-backup-<unix seconds>` beside the log directory, or the directory given; never one that
/// already holds a file of the same name.
fn make_backup_dir(log_dir: &Path, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(given) = given {
        std::fs::create_dir_all(given).with_context(|| format!("cannot create {}", given.display()))?;
        return Ok(given.to_path_buf());
    }
    let log_dir = log_dir.canonicalize().with_context(|| format!("cannot resolve {}", log_dir.display()))?;
    let parent = log_dir.parent().unwrap_or(&log_dir);
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for attempt in 0..100 {
        let name = if attempt == 0 {
            format!("fktool-backup-{seconds}")
        } else {
            format!("fktool-backup-{seconds}-{attempt}")
        };
        let candidate = parent.join(name);
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", candidate.display())),
        }
    }
    bail!("cannot find a free backup directory name in {}", parent.display())
}

fn copy_durably(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        bail!("{} already exists; not overwriting a backup", to.display());
    }
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    File::open(to).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", to.display()))?;
    sync_dir(to.parent().unwrap_or(Path::new("."))).context("cannot sync the backup directory")
}

/// A rename when the backup is on the same file system; a copy and a removal when it is not.
fn move_durably(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        bail!("{} already exists; not overwriting a backup", to.display());
    }
    if std::fs::rename(from, to).is_err() {
        copy_durably(from, to)?;
        std::fs::remove_file(from).with_context(|| format!("cannot remove {}", from.display()))?;
    }
    sync_dir(to.parent().unwrap_or(Path::new("."))).context("cannot sync the backup directory")
}

/// Writes the first `offset` bytes of `file` beside it, fsyncs, and renames over it.
fn write_cut(file: &Path, offset: u64, dir: &Path) -> anyhow::Result<()> {
    let temp = dir.join(format!(".fktool-cut.{}", short_name(file)));
    let write = || -> std::io::Result<()> {
        let source = File::open(file)?;
        let mut out = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        std::io::copy(&mut source.take(offset), &mut out)?;
        out.set_permissions(std::fs::metadata(file)?.permissions())?;
        out.flush()?;
        out.sync_all()?;
        std::fs::rename(&temp, file)?;
        sync_dir(dir)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        anyhow::Error::from(e).context(format!("cannot cut {} at offset {offset}", file.display()))
    })
}
