//! `fktool log chop`: the txns of a zxid range, copied byte for byte (checksums, digests and all) into a
//! new log file with ZooKeeper's file header and no preallocation — a reader stops at its end as at a
//! zero length. The file appears complete or not at all: streamed into a temporary file beside the
//! target (the range is never held in memory), fsynced, then linked into place.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use fk_engine::files::{LOG_PREFIX, file_name, sync_dir};
use fk_engine::log::format::encode_header;

use super::source::{LogFiles, Stop, progress, record_len, resolve, scan_file, short_name};
use crate::parse_zxid;

#[derive(clap::Args)]
pub(crate) struct ChopArgs {
    /// A log file, a version-2 directory, or a dataDir holding one.
    path: PathBuf,
    /// The first zxid to copy (hex).
    #[arg(long, value_parser = parse_zxid)]
    from_zxid: i64,
    /// The last zxid to copy (hex).
    #[arg(long, value_parser = parse_zxid)]
    to_zxid: i64,
    /// The new log file; must not exist.
    out: PathBuf,
}

/// Exit status 0 written, 1 no txn in the range (nothing written), 2 the range reaches damage.
pub(crate) fn run(args: ChopArgs) -> anyhow::Result<ExitCode> {
    if args.from_zxid > args.to_zxid {
        bail!("--from-zxid 0x{:x} is after --to-zxid 0x{:x}", args.from_zxid, args.to_zxid);
    }
    if args.out.exists() {
        bail!("{} already exists; not overwriting it", args.out.display());
    }
    let logs = resolve(&args.path)?;
    let dir = args.out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = dir.join(format!(".fktool-chop.{}", short_name(&args.out)));
    let file = OpenOptions::new().write(true).create_new(true).open(&temp);
    let file = file.with_context(|| format!("cannot create {}", temp.display()))?;
    let copied = copy_range(&logs, &args, file).and_then(|zxids| {
        if !zxids.is_empty() {
            // A hard link, unlike a rename, fails if the target appeared meanwhile.
            std::fs::hard_link(&temp, &args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
            sync_dir(dir).with_context(|| format!("cannot sync {}", dir.display()))?;
        }
        Ok(zxids)
    });
    let _ = std::fs::remove_file(&temp);
    let zxids = copied?;
    let (Some(first), Some(last)) = (zxids.first(), zxids.last()) else {
        println!("no txn in zxid 0x{:x}..=0x{:x}: nothing written", args.from_zxid, args.to_zxid);
        return Ok(ExitCode::from(1));
    };
    println!("wrote {} txns, zxid 0x{first:x}..=0x{last:x}, to {}", zxids.len(), args.out.display());
    let expected = file_name(LOG_PREFIX, *first);
    if short_name(&args.out) != expected {
        println!("note: ZooKeeper finds a log by its name; in a version-2 directory this one must be {expected}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the header and the records of the range to `out`, fsynced; returns the zxids copied.
fn copy_range(logs: &LogFiles, args: &ChopArgs, out: File) -> anyhow::Result<Vec<i64>> {
    let mut out = BufWriter::new(out);
    let mut header = Vec::new();
    encode_header(&mut header);
    out.write_all(&header)?;
    let bar = progress(&logs.files, false);
    let mut zxids = Vec::new();
    let mut record_bytes = Vec::new();
    for (index, (_, path)) in logs.files.iter().enumerate() {
        if logs.files.get(index + 1).is_some_and(|(next, _)| *next <= args.from_zxid) {
            continue;
        }
        let source = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut failed = Ok(());
        let stop = scan_file(path, &bar, |record| {
            let zxid = record.txn.header.zxid;
            if zxid > args.to_zxid {
                return ControlFlow::Break(());
            }
            if zxid >= args.from_zxid {
                record_bytes.resize(record_len(&record) as usize, 0);
                failed =
                    source.read_exact_at(&mut record_bytes, record.offset).and_then(|()| out.write_all(&record_bytes));
                zxids.push(zxid);
            }
            if failed.is_err() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        failed.with_context(|| format!("cannot copy from {}", path.display()))?;
        match stop {
            Stop::Early => break,
            Stop::Broken(e) => bail!("the range reaches damage, so the copy would miss txns: {e}"),
            Stop::End(_) | Stop::NeverWritten(_) => {}
        }
    }
    bar.finish_and_clear();
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(zxids)
}
