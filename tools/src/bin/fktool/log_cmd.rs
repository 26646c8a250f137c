//! `fktool log …`: txn log files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use fk_engine::log::{LogEnd, LogReader, Next, read_log};
use fk_net::txn::{Txn, TxnBody};

use crate::parse_zxid;

#[derive(Subcommand)]
pub(crate) enum LogCommand {
    /// Prints one line per txn.
    Dump { file: PathBuf },
    /// Checks every record; exit status 0 = clean, 1 = a torn tail or a damaged end marker (both
    /// recovered at start-up), 2 = corrupt (start-up refuses).
    Verify { file: PathBuf },
    /// Cuts the log before the record at `--offset` or the first txn at or after `--zxid`. The txns cut
    /// are lost: keep a copy of the file first.
    Truncate {
        file: PathBuf,
        #[arg(long, conflicts_with = "zxid")]
        offset: Option<u64>,
        #[arg(long, value_parser = parse_zxid)]
        zxid: Option<i64>,
    },
}

pub(crate) fn run(command: LogCommand) -> anyhow::Result<ExitCode> {
    match command {
        LogCommand::Dump { file } => log_dump(&file),
        LogCommand::Verify { file } => log_verify(&file),
        LogCommand::Truncate { file, offset, zxid } => log_truncate(&file, offset, zxid),
    }
}

fn describe(txn: &Txn) -> String {
    let h = &txn.header;
    let body = match &txn.body {
        TxnBody::Create { op, txn } => format!(
            "{} {} ({} bytes, ephemeral={})",
            op.name(),
            txn.path,
            txn.data.as_ref().map_or(0, Vec::len),
            txn.ephemeral
        ),
        TxnBody::CreateContainer(t) => format!("createContainer {}", t.path),
        TxnBody::CreateTtl(t) => format!("createTTL {} ttl={}", t.path, t.ttl),
        TxnBody::Delete { op, path } => format!("{} {path}", op.name()),
        TxnBody::SetData(t) => format!("setData {} version={}", t.path, t.version),
        TxnBody::Reconfig(_) => "reconfig".to_owned(),
        TxnBody::SetAcl(t) => format!("setACL {} aversion={}", t.path, t.version),
        TxnBody::Check(t) => format!("check {} version={}", t.path, t.version),
        TxnBody::Multi(txns) => format!("multi ({} ops)", txns.len()),
        TxnBody::CreateSession(t) => format!("createSession timeout={}", t.timeout_ms),
        TxnBody::CloseSession { paths_to_delete } => {
            format!("closeSession {:?}", paths_to_delete.as_deref().unwrap_or_default())
        }
        TxnBody::Error(t) => format!("error {}", t.err),
    };
    format!("zxid 0x{:x} session 0x{:x} cxid 0x{:x} time {} {body}", h.zxid, h.client_id, h.cxid, h.time)
}

/// Prints every readable record, then how the file ends — or, for damage in the middle, what is wrong
/// and where the valid data after it starts (exit status 2).
fn log_dump(file: &Path) -> anyhow::Result<ExitCode> {
    let mut log = LogReader::open(file)?;
    loop {
        match log.read_next() {
            Ok(Next::Record(record)) => {
                println!("{:>10} {}", record.offset, describe(&record.txn));
                if record.end_marker_damaged {
                    println!("{:>10} {}", record.end_marker_offset(), MARKER_TEXT);
                }
            }
            Ok(Next::End(end)) => {
                println!("{}", end_text(&end));
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => {
                println!("CORRUPT: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
}

const MARKER_TEXT: &str =
    "end-of-record byte damaged, checksum holds: the record is intact (recovery rewrites the byte)";

fn end_text(end: &LogEnd) -> String {
    match end {
        LogEnd::Clean { offset } => format!("clean end at offset {offset}"),
        LogEnd::Torn { offset, reason } => {
            format!("torn tail at offset {offset} ({reason}); nothing valid follows it, recovery truncates it")
        }
    }
}

/// The verdicts recovery reaches on the file alone: 0 = clean, 1 = a torn tail or a repairable end
/// marker, 2 = corrupt (recovery refuses to start).
fn log_verify(file: &Path) -> anyhow::Result<ExitCode> {
    let log = match read_log(file) {
        Ok(log) => log,
        Err(e) => {
            println!("CORRUPT: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let zxids = log.records.first().zip(log.records.last()).map(|(f, l)| (f.txn.header.zxid, l.txn.header.zxid));
    let range = zxids.map_or("no txns".into(), |(f, l)| format!("zxid 0x{f:x}..=0x{l:x}"));
    println!("{}: {} txns, {range}, {}", file.display(), log.records.len(), end_text(&log.end));
    let mut markers = 0;
    for record in log.records.iter().filter(|r| r.end_marker_damaged) {
        println!("offset {}: {MARKER_TEXT}", record.end_marker_offset());
        markers += 1;
    }
    Ok(match log.end {
        LogEnd::Clean { .. } if markers == 0 => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// Finds the cut point by reading records up to the damage (a corrupt record ends the readable part).
fn log_truncate(file: &Path, offset: Option<u64>, zxid: Option<i64>) -> anyhow::Result<ExitCode> {
    let cut = match (offset, zxid) {
        (Some(offset), _) => offset,
        (None, Some(zxid)) => {
            let log = read_log(file).context("the log must be readable up to the cut to find a zxid in it")?;
            match log.records.iter().find(|r| r.txn.header.zxid >= zxid) {
                Some(record) => record.offset,
                None => bail!("no txn at or after zxid 0x{zxid:x} in {}", file.display()),
            }
        }
        (None, None) => bail!("give --offset or --zxid"),
    };
    if cut < fk_engine::log::format::HEADER_LEN as u64 {
        bail!("offset {cut} is inside the file header");
    }
    let f = std::fs::OpenOptions::new().write(true).open(file).with_context(|| format!("open {}", file.display()))?;
    f.set_len(cut)?;
    f.sync_all()?;
    println!("truncated {} at offset {cut}", file.display());
    Ok(ExitCode::SUCCESS)
}
