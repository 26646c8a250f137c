//! `fktool`: inspect, verify and repair txn logs and snapshots offline — ours and Apache ZooKeeper's,
//! which share one format.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use fk_engine::files::{SNAPSHOT_PREFIX, VERSION_DIR, parse_name};
use fk_engine::log::{LogEnd, LogReader, Next, read_log};
use fk_engine::snap::{load_snapshot, looks_complete};
use fk_net::txn::{Txn, TxnBody};

#[derive(Parser)]
#[command(name = "fktool", version, about = "Offline tools for ZooKeeper-format data directories")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Txn log files (log.<zxid>).
    #[command(subcommand)]
    Log(LogCommand),
    /// Snapshot files (snapshot.<zxid>).
    #[command(subcommand)]
    Snap(SnapCommand),
    /// Runs start-up recovery without starting a server: what would load, and from where.
    Recover {
        /// The dataDir (containing version-2/).
        data_dir: PathBuf,
        /// The dataLogDir, if separate.
        #[arg(long)]
        log_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LogCommand {
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

#[derive(Subcommand)]
enum SnapCommand {
    /// Prints the summary, and every node with `--nodes`.
    Dump {
        file: PathBuf,
        #[arg(long)]
        nodes: bool,
    },
    /// Checks the checksums; exit status 0 = valid, 2 = not.
    Verify { file: PathBuf },
}

fn parse_zxid(text: &str) -> Result<i64, String> {
    let hex = text.trim_start_matches("0x");
    i64::from_str_radix(hex, 16).map_err(|e| format!("'{text}' is not a hex zxid: {e}"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fktool: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Log(LogCommand::Dump { file }) => log_dump(&file),
        Command::Log(LogCommand::Verify { file }) => log_verify(&file),
        Command::Log(LogCommand::Truncate { file, offset, zxid }) => log_truncate(&file, offset, zxid),
        Command::Snap(SnapCommand::Dump { file, nodes }) => snap_dump(&file, nodes),
        Command::Snap(SnapCommand::Verify { file }) => snap_verify(&file),
        Command::Recover { data_dir, log_dir } => recover(&data_dir, log_dir.as_deref()),
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

fn snapshot_zxid(file: &Path) -> i64 {
    file.file_name().and_then(|n| n.to_str()).and_then(|n| parse_name(n, SNAPSHOT_PREFIX)).unwrap_or(0)
}

fn snap_dump(file: &Path, nodes: bool) -> anyhow::Result<ExitCode> {
    let (tree, info) = load_snapshot(file, snapshot_zxid(file), fk_engine::tree::TreeOptions::fixed_seed(true))?;
    println!(
        "{}: {} nodes, {} sessions, last zxid 0x{:x}",
        file.display(),
        info.nodes,
        tree.sessions().count(),
        tree.last_processed_zxid()
    );
    if let Some((zxid, _)) = info.digest {
        println!("digest zxid 0x{zxid:x}");
    }
    for (id, timeout) in tree.sessions() {
        println!("session 0x{id:x} timeout {timeout} ephemerals {}", tree.ephemerals_of(id).count());
    }
    if nodes {
        let mut all: Vec<_> = tree.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        for (path, node) in all {
            let s = tree.client_stat(node);
            println!(
                "{path} czxid=0x{:x} mzxid=0x{:x} version={} cversion={} aversion={} owner=0x{:x} bytes={}",
                s.czxid, s.mzxid, s.version, s.cversion, s.aversion, node.stat.ephemeral_owner, s.data_length
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn snap_verify(file: &Path) -> anyhow::Result<ExitCode> {
    if !looks_complete(file) {
        println!("INCOMPLETE: {} does not end with the \"/\" trailer", file.display());
        return Ok(ExitCode::from(2));
    }
    match load_snapshot(file, snapshot_zxid(file), fk_engine::tree::TreeOptions::fixed_seed(true)) {
        Ok((_, info)) => {
            println!("{}: valid, {} nodes", file.display(), info.nodes);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("CORRUPT: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn recover(data_dir: &Path, log_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let snap = data_dir.join(VERSION_DIR);
    let log = log_dir.unwrap_or(data_dir).join(VERSION_DIR);
    // Work on a copy: recovery truncates torn tails, and this command must not change anything.
    let scratch = tempfile::tempdir()?;
    let (snap_copy, log_copy) = (scratch.path().join("snap"), scratch.path().join("log"));
    copy_dir(&snap, &snap_copy)?;
    copy_dir(&log, &log_copy)?;
    let recovered =
        fk_engine::recovery::recover(&snap_copy, &log_copy, fk_engine::tree::TreeOptions::fixed_seed(true))?;
    println!(
        "would recover to zxid 0x{:x}: {} nodes, {} sessions, {} txns replayed after {}",
        recovered.tree.last_processed_zxid(),
        recovered.tree.node_count(),
        recovered.tree.sessions().count(),
        recovered.replayed,
        recovered
            .snapshot
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "no snapshot".into())
    );
    if let Some((path, offset)) = recovered.truncated {
        println!(
            "would truncate the torn tail of {} at offset {offset}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(()) };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
