//! `fktool log repair`: find the first damage recovery cannot get past on its own — a corrupt record
//! anywhere, or a torn tail of the last log — show what cutting there loses, cut it (with a backup),
//! then verify.
//!
//! Later logs go with the cut — unless a snapshot covers the txns lost (one named at or after the zxid
//! before the next log's first), so that recovery starts from it and still reads them: damage in an old
//! log that recovery no longer reads (ZooKeeper starts without noticing it) costs only that log's tail.
//!
//! A torn tail in a log that is not the last is left alone: recovery reads on into the next file when
//! that continues at the next zxid (which `verify` checks), as ZooKeeper does after a crash. A damaged
//! end-of-record byte under a good checksum is left too: the record is intact and recovery rewrites it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use fk_engine::log::LogEnd;

use super::cut::{self, BackupArgs, CutPlan};
use super::source::{LogFiles, Stop, progress, resolve, scan_file};
use super::verify;

#[derive(clap::Args)]
pub(crate) struct RepairArgs {
    /// A version-2 directory, a dataDir holding one, or one log file.
    path: PathBuf,
    /// Cut without asking (required when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    backup: BackupArgs,
}

/// Exit status: verify's verdict after the cut (0 when the log is now clean), 1 when the operator
/// declined, 2 when the damage is of a kind repair does not cut (an unreadable header, I/O).
pub(crate) fn run(args: RepairArgs) -> anyhow::Result<ExitCode> {
    let logs = resolve(&args.path)?;
    let Some((plan, what)) = find_damage(&logs)? else {
        println!("nothing to repair: no corrupt record and no torn tail in the last log");
        return Ok(verify::report(&verify::verify(&logs)));
    };
    let loss = cut::loss(&plan)?;
    println!("{what}");
    println!("cutting {} at offset {} would drop {loss}", plan.file.display(), plan.offset);
    for removed in &plan.removed {
        println!("  and remove the later log {}", removed.display());
    }
    if !confirm(args.yes)? {
        println!("nothing changed");
        return Ok(ExitCode::from(1));
    }
    if let Some(backup) = cut::apply(&plan, &args.backup)? {
        println!("originals kept in {} (copy them back to undo)", backup.display());
    }
    println!("cut; verifying:");
    Ok(verify::report(&verify::verify(&resolve(&args.path)?)))
}

/// The first place recovery cannot read past: the cut, and what was found there.
fn find_damage(logs: &LogFiles) -> anyhow::Result<Option<(CutPlan, String)>> {
    let bar = progress(&logs.files, false);
    let snapshots = verify::snapshot_zxids(&logs.dir);
    for (index, (_, path)) in logs.files.iter().enumerate() {
        let is_last = index + 1 == logs.files.len();
        let (offset, mut what) = match scan_file(path, &bar, |_| std::ops::ControlFlow::Continue(())) {
            Stop::Broken(e) => match e.offset() {
                Some(offset) => (offset, format!("CORRUPT: {e}")),
                None => bail!("{e}: repair cuts damaged records, not unreadable files"),
            },
            Stop::End(LogEnd::Torn { offset, reason }) if is_last => {
                (offset, format!("torn tail of {} at offset {offset} ({reason})", path.display()))
            }
            Stop::End(_) | Stop::NeverWritten(_) | Stop::Early => continue,
        };
        bar.finish_and_clear();
        let next_first = logs.files.get(index + 1).map(|(name, _)| *name);
        let covering = next_first.and_then(|next| snapshots.iter().copied().filter(|s| *s >= next - 1).min());
        let removed = match covering {
            Some(snapshot) => {
                what += &format!(
                    "\nlater logs kept: recovery starts from snapshot.{snapshot:x} or later and still reads them"
                );
                Vec::new()
            }
            None => logs.files[index + 1..].iter().map(|(_, p)| p.clone()).collect(),
        };
        return Ok(Some((CutPlan { file: path.clone(), offset, removed }, what)));
    }
    bar.finish_and_clear();
    Ok(None)
}

/// `--yes`, or a "y" typed on the terminal; refused outright when nobody can answer.
fn confirm(yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to cut without --yes: stdin is not a terminal, so nobody can confirm");
    }
    eprint!("cut it? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
