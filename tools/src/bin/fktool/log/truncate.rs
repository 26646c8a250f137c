//! `fktool log truncate`: cut the log back to a zxid, as ZooKeeper's `FileTxnLog.truncate` does when a
//! learner gets TRUNC, or (one file) at a record's offset.
//!
//! ZooKeeper 3.8's truncate opens a `FileTxnIterator` at the zxid: it starts reading at the newest log
//! named below the zxid (the oldest log when none is), moves to the next file at the end of each, and
//! stops at the first txn whose zxid is at or above it. The file it stopped in is cut just *after* that
//! txn — so the txn at the zxid itself is kept, and in a zxid gap the first txn after the gap is kept —
//! and every later log file is deleted. The cut file loses its preallocated padding. When no txn at or
//! above the zxid exists, ZooKeeper fails ("No log files found to truncate!"); so do we, changing
//! nothing.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use fk_engine::log::LogRecord;

use super::cut::{self, BackupArgs, CutPlan};
use super::source::{LogFiles, Stop, progress, record_len, resolve, scan_file, short_name};
use crate::parse_zxid;

#[derive(clap::Args)]
pub(crate) struct TruncateArgs {
    /// A version-2 directory, a dataDir holding one, or one log file.
    path: PathBuf,
    /// Keep every txn up to and including this zxid (hex) and remove the rest, later files included.
    #[arg(long, value_parser = parse_zxid, required_unless_present = "offset")]
    zxid: Option<i64>,
    /// One file only: cut it at this offset, which must be where a record starts or where the readable
    /// records end.
    #[arg(long, conflicts_with = "zxid")]
    offset: Option<u64>,
    #[command(flatten)]
    backup: BackupArgs,
}

pub(crate) fn run(args: TruncateArgs) -> anyhow::Result<ExitCode> {
    let logs = resolve(&args.path)?;
    let plan = match (args.zxid, args.offset) {
        (Some(zxid), _) => plan_zxid(&logs, zxid)?,
        (None, Some(offset)) if logs.single => plan_offset(&logs.files[0].1, offset)?,
        (None, Some(_)) => bail!("--offset cuts one file: name the log file, not a directory"),
        (None, None) => bail!("give --zxid or --offset"),
    };
    let loss = cut::loss(&plan)?;
    let backup = cut::apply(&plan, &args.backup)?;
    println!("cut {} at offset {}", plan.file.display(), plan.offset);
    for removed in &plan.removed {
        println!("removed {}", removed.display());
    }
    println!("dropped {loss}");
    if let Some(backup) = backup {
        println!("originals kept in {} (copy them back to undo)", backup.display());
    }
    if logs.single && args.zxid.is_some() {
        note_later_logs(&plan.file);
    }
    Ok(ExitCode::SUCCESS)
}

/// The file ZooKeeper's iterator starts in: the newest named below `zxid`, else the oldest.
pub(crate) fn start_file(names: &[i64], zxid: i64) -> usize {
    names.iter().rposition(|name| *name < zxid).unwrap_or(0)
}

/// ZooKeeper's cut point for `zxid` (module doc); damage before it is an error, changing nothing.
pub(crate) fn plan_zxid(logs: &LogFiles, zxid: i64) -> anyhow::Result<CutPlan> {
    let names: Vec<i64> = logs.files.iter().map(|(name, _)| *name).collect();
    let bar = progress(&logs.files[start_file(&names, zxid)..], false);
    for (index, (_, path)) in logs.files.iter().enumerate().skip(start_file(&names, zxid)) {
        let mut kept: Option<LogRecord> = None;
        let stop = scan_file(path, &bar, |record| {
            if record.txn.header.zxid < zxid {
                return ControlFlow::Continue(());
            }
            kept = Some(record);
            ControlFlow::Break(())
        });
        if let Some(record) = kept {
            bar.finish_and_clear();
            if record.txn.header.zxid != zxid {
                println!(
                    "no txn 0x{zxid:x} in the log: keeping the first txn after it, 0x{:x}, as ZooKeeper does",
                    record.txn.header.zxid
                );
            }
            let removed = logs.files[index + 1..].iter().map(|(_, p)| p.clone()).collect();
            return Ok(CutPlan { file: path.clone(), offset: record.offset + record_len(&record), removed });
        }
        if let Stop::Broken(e) = stop {
            bail!("cannot read the log up to zxid 0x{zxid:x}: {e}\n(`fktool log repair` cuts damage)");
        }
    }
    bar.finish_and_clear();
    bail!(
        "no txn at or after zxid 0x{zxid:x} in {}: nothing to truncate (ZooKeeper's truncate fails here too, \
         with \"No log files found to truncate!\")",
        if logs.single { logs.files[0].1.display() } else { logs.dir.display() }
    )
}

/// A cut at `offset`, refused unless it is a record boundary (cutting inside a record would make a torn
/// tail on purpose).
fn plan_offset(file: &Path, offset: u64) -> anyhow::Result<CutPlan> {
    let bar = progress(&[(0, file.to_path_buf())], false);
    let mut boundaries = Vec::new();
    let stop = scan_file(file, &bar, |record| {
        boundaries.push(record.offset);
        if record.offset >= offset { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    });
    bar.finish_and_clear();
    match stop {
        Stop::End(end) => boundaries.push(end.offset()),
        Stop::Broken(e) => boundaries.extend(e.offset()),
        Stop::Early | Stop::NeverWritten(_) => {}
    }
    if !boundaries.contains(&offset) {
        let near: Vec<String> = boundaries.iter().rev().take(3).rev().map(u64::to_string).collect();
        bail!(
            "offset {offset} of {} is not where a record starts (nearest record offsets: {}); \
             use `fktool log dump` to find one",
            file.display(),
            near.join(", ")
        );
    }
    Ok(CutPlan { file: file.to_path_buf(), offset, removed: Vec::new() })
}

/// Given one file, later logs beside it stay; recovery would still read them.
fn note_later_logs(file: &Path) {
    let Some(dir) = file.parent() else { return };
    let Ok(logs) = super::source::resolve(dir) else { return };
    let name = fk_engine::files::parse_name(&short_name(file), fk_engine::files::LOG_PREFIX);
    let later: Vec<String> =
        logs.files.iter().filter(|(z, _)| name.is_some_and(|n| *z > n)).map(|(_, p)| short_name(p)).collect();
    if !later.is_empty() {
        println!(
            "note: later logs beside it were left alone: {} (give the directory to remove them, as ZooKeeper does)",
            later.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_starts_where_zookeepers_iterator_does() {
        // (log names, zxid, index of the first file read)
        let cases: [(&[i64], i64, usize); 6] = [
            (&[1, 0xb5, 0x123], 0x10, 0),
            (&[1, 0xb5, 0x123], 0xb5, 0),
            (&[1, 0xb5, 0x123], 0xb6, 1),
            (&[1, 0xb5, 0x123], 0x500, 2),
            (&[0xa, 0x20], 5, 0),
            (&[0xa], 0xa, 0),
        ];
        for (names, zxid, expected) in cases {
            assert_eq!(start_file(names, zxid), expected, "{names:?} to 0x{zxid:x}");
        }
    }
}
