//! `fktool log …`: txn log files, one at a time or a whole directory in zxid order. Exit status 0 = ok,
//! 1 = a problem found (that recovery handles, or a declined repair), 2 = usage, I/O, or corruption
//! that start-up refuses. Only truncate, repair and chop write anything.

#[path = "log/mod.rs"]
mod log;

use std::process::ExitCode;

use clap::Subcommand;

use log::{chop, dump, repair, truncate, verify};

#[derive(Subcommand)]
pub(crate) enum LogCommand {
    /// Prints one line (or, with --json, one JSON object) per txn, then how each file ends.
    Dump(dump::DumpArgs),
    /// Checks checksums and zxid continuity; exit status 0 = clean, 1 = a torn tail, a damaged end
    /// marker or duplicate txns (all handled at start-up), 2 = corrupt or a gap (start-up refuses).
    Verify(verify::VerifyArgs),
    /// Removes every txn after a zxid as ZooKeeper's TRUNC does (the txn at the zxid stays, later log
    /// files go), or cuts one file at an offset; keeps the originals unless --no-backup.
    Truncate(truncate::TruncateArgs),
    /// Cuts a torn or corrupt tail (or everything from a corrupt record on) after showing what is lost
    /// and asking, with a backup, then verifies.
    Repair(repair::RepairArgs),
    /// Copies the txns of a zxid range into a new log file.
    Chop(chop::ChopArgs),
}

pub(crate) fn run(command: LogCommand) -> anyhow::Result<ExitCode> {
    match command {
        LogCommand::Dump(args) => dump::run(args),
        LogCommand::Verify(args) => verify::run(args),
        LogCommand::Truncate(args) => truncate::run(args),
        LogCommand::Repair(args) => repair::run(args),
        LogCommand::Chop(args) => chop::run(args),
    }
}
