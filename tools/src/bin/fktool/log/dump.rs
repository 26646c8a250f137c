//! `fktool log dump`: every txn (or those the filters pass), then how each file ends.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use fk_engine::log::LogEnd;

use super::describe;
use super::filter::{Filter, parse_op, parse_session};
use super::source::{LogFiles, Stop, progress, resolve, scan_file, short_name};
use crate::parse_zxid;

#[derive(clap::Args)]
pub(crate) struct DumpArgs {
    /// A log file, a version-2 directory, or a dataDir holding one (files are read in zxid order).
    path: PathBuf,
    /// One JSON object per txn on stdout; how files end goes to stderr.
    #[arg(long)]
    json: bool,
    /// Only txns with zxid >= this (hex).
    #[arg(long, value_parser = parse_zxid)]
    from_zxid: Option<i64>,
    /// Only txns with zxid <= this (hex).
    #[arg(long, value_parser = parse_zxid)]
    to_zxid: Option<i64>,
    /// Only txns of this session (hex).
    #[arg(long, value_parser = parse_session)]
    session: Option<i64>,
    /// Only txns touching a znode whose path starts with this.
    #[arg(long)]
    path_prefix: Option<String>,
    /// Only txns of this op (ZooKeeper's name: create, setData, multi, closeSession, …); repeatable.
    #[arg(long = "op", value_parser = parse_op)]
    ops: Vec<&'static str>,
}

pub(crate) const MARKER_TEXT: &str =
    "end-of-record byte damaged, checksum holds: the record is intact (recovery rewrites the byte)";

pub(crate) fn end_text(end: &LogEnd) -> String {
    match end {
        LogEnd::Clean { offset } => format!("clean end at offset {offset}"),
        LogEnd::Torn { offset, reason } => {
            format!("torn tail at offset {offset} ({reason}); nothing valid follows it, recovery truncates it")
        }
    }
}

/// Exit status 0 when every file read to its end (clean or torn), 2 when one is corrupt or unreadable
/// (its records before the damage are still printed, and later files are read).
pub(crate) fn run(args: DumpArgs) -> anyhow::Result<ExitCode> {
    let logs = resolve(&args.path)?;
    let filter = Filter {
        from_zxid: args.from_zxid,
        to_zxid: args.to_zxid,
        session: args.session,
        path_prefix: args.path_prefix,
        ops: args.ops,
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    match dump(&logs, &filter, args.json, &mut out).and_then(|broken| out.flush().map(|()| broken)) {
        Ok(broken) => Ok(if broken { ExitCode::from(2) } else { ExitCode::SUCCESS }),
        // `fktool log dump … | head` closes the pipe: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

/// Returns whether some file was corrupt or unreadable.
fn dump(logs: &LogFiles, filter: &Filter, json: bool, out: &mut impl Write) -> std::io::Result<bool> {
    let bar = progress(&logs.files, true);
    let mut broken = false;
    for (index, (_, path)) in logs.files.iter().enumerate() {
        // A file whose successor starts at or before --from-zxid holds only older txns.
        if logs.files.get(index + 1).is_some_and(|(next, _)| filter.from_zxid.is_some_and(|from| *next <= from)) {
            bar.inc(std::fs::metadata(path).map_or(0, |m| m.len()));
            continue;
        }
        let name = short_name(path);
        if !logs.single && !json {
            writeln!(out, "== {name} ==")?;
        }
        let mut written = Ok(());
        let mut past_end = false;
        let stop = scan_file(path, &bar, |record| {
            if filter.past_end(record.txn.header.zxid) {
                past_end = true;
                return ControlFlow::Break(());
            }
            if filter.matches(&record.txn) {
                written = if json {
                    let mut object = describe::json(&name, record.offset, &record.txn);
                    if record.end_marker_damaged {
                        object["end_marker_damaged"] = true.into();
                    }
                    writeln!(out, "{object}")
                } else {
                    write_text(out, &record)
                };
            }
            if written.is_err() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        written?;
        let note = match stop {
            Stop::Early => None,
            Stop::End(end) => Some(end_text(&end)),
            Stop::NeverWritten(e) => Some(format!("{e}; start-up removes it")),
            Stop::Broken(e) => {
                broken = true;
                Some(format!("CORRUPT: {e}"))
            }
        };
        match note {
            Some(note) if json => eprintln!("{name}: {note}"),
            Some(note) => writeln!(out, "{note}")?,
            None => {}
        }
        if past_end {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(broken)
}

fn write_text(out: &mut impl Write, record: &fk_engine::log::LogRecord) -> std::io::Result<()> {
    writeln!(out, "{:>10} {}", record.offset, describe::text(&record.txn))?;
    if record.end_marker_damaged {
        writeln!(out, "{:>10} {MARKER_TEXT}", record.end_marker_offset())?;
    }
    Ok(())
}
