//! `fktool`: inspect, verify and repair txn logs and snapshots offline — ours and Apache ZooKeeper's,
//! which share one format. Each subcommand family lives in its own module; exit status 0 = ok,
//! 1 = a problem found, 2 = usage, I/O error or corruption that start-up refuses.

mod compact_cmd;
mod diff_cmd;
mod log_cmd;
mod output;
mod progress;
mod recover_cmd;
mod snap_cmd;
mod snap_stats;
mod state;
mod tree_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Log(log_cmd::LogCommand),
    /// Snapshot files (snapshot.<zxid>).
    #[command(subcommand)]
    Snap(snap_cmd::SnapCommand),
    /// Runs start-up recovery without starting a server: what would load, and from where.
    Recover {
        /// The dataDir (containing version-2/).
        data_dir: PathBuf,
        /// The dataLogDir, if separate.
        #[arg(long)]
        log_dir: Option<PathBuf>,
    },
    /// Rebuilds the tree offline (as recovery would, optionally as of a zxid) and prints it as JSON
    /// lines, one znode per line.
    Tree(tree_cmd::TreeArgs),
    /// Compares two data directories, or one at two zxids; exit status 0 = the same, 1 = different.
    Diff(diff_cmd::DiffArgs),
    /// Writes a fresh snapshot of the recovered state (snapshot + logs) so that start-up replays nothing.
    Compact(compact_cmd::CompactArgs),
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
        Command::Log(command) => log_cmd::run(command),
        Command::Snap(command) => snap_cmd::run(command),
        Command::Recover { data_dir, log_dir } => recover_cmd::recover(&data_dir, log_dir.as_deref()),
        Command::Tree(args) => tree_cmd::run(args),
        Command::Diff(args) => diff_cmd::run(args),
        Command::Compact(args) => compact_cmd::run(args),
    }
}

/// A zxid as operators write it: hex, with or without "0x".
pub(crate) fn parse_zxid(text: &str) -> Result<i64, String> {
    let hex = text.trim_start_matches("0x");
    i64::from_str_radix(hex, 16).map_err(|e| format!("'{text}' is not a hex zxid: {e}"))
}
