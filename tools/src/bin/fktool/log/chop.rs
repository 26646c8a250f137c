//! `fktool log chop`: the txns of a zxid range, copied byte for byte (checksums, digests and all) into a
//! new log file with ZooKeeper's file header and no preallocation — a reader stops at its end as at a
//! zero length. The file appears complete or not at all: written beside the target, fsynced, then
//! linked into place (which also refuses to replace an existing file).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use fk_engine::files::{LOG_PREFIX, file_name, sync_dir};
use fk_engine::log::format::encode_header;

use super::source::{Stop, progress, record_len, resolve, scan_file, short_name};
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
    let mut out = Vec::new();
    encode_header(&mut out);
    let bar = progress(&logs.files, false);
    let mut zxids = Vec::new();
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
                failed = copy_record(&source, record.offset, record_len(&record), &mut out);
                zxids.push(zxid);
            }
            if failed.is_err() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        failed.with_context(|| format!("cannot read {}", path.display()))?;
        match stop {
            Stop::Early => break,
            Stop::Broken(e) => bail!("the range reaches damage, so the copy would miss txns: {e}"),
            Stop::End(_) => {}
        }
    }
    bar.finish_and_clear();
    let (Some(first), Some(last)) = (zxids.first(), zxids.last()) else {
        println!("no txn in zxid 0x{:x}..=0x{:x}: nothing written", args.from_zxid, args.to_zxid);
        return Ok(ExitCode::from(1));
    };
    write_new(&args.out, &out)?;
    println!("wrote {} txns, zxid 0x{first:x}..=0x{last:x}, to {}", zxids.len(), args.out.display());
    let expected = file_name(LOG_PREFIX, *first);
    if short_name(&args.out) != expected {
        println!("note: ZooKeeper finds a log by its name; in a version-2 directory this one must be {expected}");
    }
    Ok(ExitCode::SUCCESS)
}

fn copy_record(source: &File, offset: u64, len: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
    let start = out.len();
    out.resize(start + len as usize, 0);
    source.read_exact_at(&mut out[start..], offset)
}

/// Writes `bytes` beside `target`, fsyncs, and links it into place (failing if `target` appeared).
fn write_new(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = dir.join(format!(".fktool-chop.{}", short_name(target)));
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&temp, target)?;
        sync_dir(dir)
    };
    let result = write();
    let _ = std::fs::remove_file(&temp);
    result.with_context(|| format!("cannot write {}", target.display()))
}
