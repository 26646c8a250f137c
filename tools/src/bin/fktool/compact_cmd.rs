//! `fktool compact`: writes a fresh snapshot of a data directory's state — the newest snapshot plus every
//! logged txn after it, replayed offline — so that a member with a long log restarts from one file.
//!
//! The snapshot comes from the engine's writer (ZooKeeper's `snapshot.<zxid>` format with the session
//! list and the digest record, written to a temporary name, fsynced and renamed, the directory synced),
//! then is loaded back and its digest compared before this reports success. Logs are never deleted:
//! which ones the new snapshot makes unnecessary is printed, for ZooKeeper's purge (or an operator) to
//! remove under its own retention rule.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, ensure};
use clap::Args;
use fk_engine::files::{LOG_PREFIX, list};
use fk_engine::recovery::Recovered;
use fk_engine::snap::{Compression, SnapshotStats, TreeAccess, load_snapshot, write_snapshot};
use fk_engine::tree::DataTree;

use crate::state::{DataDirs, rebuild, tree_options};

#[derive(Args)]
pub(crate) struct CompactArgs {
    /// The dataDir (containing version-2/).
    data_dir: PathBuf,
    /// The dataLogDir, if separate.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Write snapshot.<zxid> into this directory (created if missing) instead of the dataDir's version-2/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compress the snapshot as ZooKeeper's snapshot.compression.method does: gz or snappy (the file
    /// name gets the suffix); uncompressed by default.
    #[arg(long, value_parser = parse_compression, default_value = "")]
    compression: Compression,
}

fn parse_compression(method: &str) -> Result<Compression, String> {
    Compression::from_method(method).ok_or_else(|| format!("'{method}' is not gz, snappy or empty"))
}

/// The rebuilt tree, owned: nothing else reads or writes it while the writer walks it.
struct Owned(DataTree);

impl TreeAccess for Owned {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.0)
    }
}

pub(crate) fn run(args: CompactArgs) -> anyhow::Result<ExitCode> {
    let dirs = DataDirs::resolve(&args.data_dir, args.log_dir.as_deref())?;
    let recovered = rebuild(&dirs, None)?;
    let zxid = recovered.tree.last_processed_zxid();
    let out = args.out.clone().unwrap_or_else(|| dirs.snap.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // In place, the purge advice applies; elsewhere, the logs beside the data dir are not ours to judge.
    let in_place = same_file(&out, &dirs.snap);
    let target = out.join(args.compression.snapshot_name(zxid));
    if recovered.snapshot.as_deref().is_some_and(|loaded| same_file(loaded, &target)) {
        println!("{} already holds the state at zxid 0x{zxid:x}: nothing to compact", target.display());
        if in_place {
            print_purgeable(&dirs, zxid)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if target.exists() {
        let why = if in_place { ", which recovery passed over (it does not load)" } else { "" };
        println!("replacing {}{why}", target.display());
    }
    let summary = describe_source(&recovered);
    let digest = recovered.tree.digest();
    let progress = crate::progress::spinner(format!("writing {}", target.display()));
    let written = write_snapshot(&Owned(recovered.tree), &out, true, args.compression)
        .with_context(|| format!("writing a snapshot into {}", out.display()))?;
    progress.finish_and_clear();
    check_written(&written, digest)?;
    println!(
        "wrote {} ({} znodes, {} bytes, digest 0x{digest:x}) from {summary}",
        written.path.display(),
        written.nodes,
        written.bytes
    );
    if in_place {
        print_purgeable(&dirs, zxid)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

fn describe_source(recovered: &Recovered) -> String {
    let snapshot = recovered.snapshot.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    format!("{} + {} txns", snapshot.unwrap_or_else(|| "an empty tree".into()), recovered.replayed)
}

/// Loads the new file back: its seals hold and it rebuilds the digest of the tree it was written from.
fn check_written(written: &SnapshotStats, digest: u64) -> anyhow::Result<()> {
    let (tree, info) = load_snapshot(&written.path, written.zxid, tree_options())
        .with_context(|| format!("reading back {}", written.path.display()))?;
    ensure!(
        tree.digest() == digest && info.digest == Some((written.zxid, digest)),
        "{} reads back with digest 0x{:x} (record {:x?}), not the 0x{digest:x} it was written from",
        written.path.display(),
        tree.digest(),
        info.digest
    );
    Ok(())
}

/// Prints the logs recovery no longer reads now that the newest snapshot is at `zxid`.
fn print_purgeable(dirs: &DataDirs, zxid: i64) -> anyhow::Result<()> {
    let logs = list(&dirs.log, LOG_PREFIX).with_context(|| format!("listing {}", dirs.log.display()))?;
    let purgeable = logs_before_snapshot(&logs, zxid);
    if purgeable.is_empty() {
        println!("no log file is purgeable: recovery from the new snapshot still reads each of them");
        return Ok(());
    }
    println!("no longer needed to recover (not deleted; ZooKeeper's purge removes them by its retention count):");
    for path in purgeable {
        println!("  {}", path.display());
    }
    Ok(())
}

/// The logs before the newest one starting at or before `zxid`: that one may hold the first txns after
/// the snapshot, and ZooKeeper's purge (reference/on-disk.md §6, `fk_engine::purge`) keeps it and every
/// later log; the rest only hold txns the snapshot already has.
fn logs_before_snapshot(logs: &[(i64, PathBuf)], zxid: i64) -> Vec<&Path> {
    let Some(first_needed) = logs.iter().rev().map(|(start, _)| *start).find(|start| *start <= zxid) else {
        return Vec::new();
    };
    logs.iter().filter(|(start, _)| *start < first_needed).map(|(_, path)| path.as_path()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_older_than_the_one_holding_the_snapshots_successors_are_purgeable() {
        let logs: Vec<(i64, PathBuf)> =
            [1, 0xb5, 0x123, 0x1e8].iter().map(|z| (*z, PathBuf::from(format!("log.{z:x}")))).collect();
        // (snapshot zxid, purgeable logs)
        let cases: [(i64, &[&str]); 5] = [
            (0x215, &["log.1", "log.b5", "log.123"]),
            (0x1e8, &["log.1", "log.b5", "log.123"]),
            (0x1e7, &["log.1", "log.b5"]),
            (0xb5, &["log.1"]),
            (0x0, &[]),
        ];
        for (zxid, expected) in cases {
            let names: Vec<String> =
                logs_before_snapshot(&logs, zxid).iter().map(|p| p.display().to_string()).collect();
            assert_eq!(names, expected, "snapshot at 0x{zxid:x}");
        }
    }
}
