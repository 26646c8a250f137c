//! `fktool log verify`: the verdicts start-up recovery reaches, for one file or a whole directory.
//!
//! Per file: checksums and framing (the engine's reader tells a clean end, a torn tail and corruption
//! apart). Across records and files: zxid continuity as recovery checks it — within an epoch each zxid
//! is the previous one plus one; a jump to a later epoch is how a new leader's txns start; a zxid at or
//! below the previous one is a duplicate recovery skips (ZooKeeper logs it as an error and goes on).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fk_engine::files::{SNAPSHOT_PREFIX, list};
use fk_engine::log::LogEnd;

use super::dump::{MARKER_TEXT, end_text};
use super::source::{LogFiles, Stop, progress, resolve, scan_file, short_name};

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// A log file, a version-2 directory, or a dataDir holding one.
    path: PathBuf,
}

/// How one zxid follows the one before it in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follows {
    Next,
    /// The first txn of a later epoch (its counter restarts).
    NewEpoch,
    /// Txns of the same epoch are missing: recovery refuses to start.
    Gap,
    /// The same or an older zxid again: recovery skips it.
    Overlap,
}

pub(crate) fn follows(previous: i64, next: i64) -> Follows {
    match () {
        _ if next == previous.wrapping_add(1) => Follows::Next,
        _ if next <= previous => Follows::Overlap,
        _ if next >> 32 > previous >> 32 => Follows::NewEpoch,
        _ => Follows::Gap,
    }
}

/// Problems by what recovery does with them; the exit status is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Recovery handles it (a torn tail, a damaged end marker, a duplicate).
    Handled = 1,
    /// Start-up refuses (corruption, a gap).
    Refused = 2,
}

pub(crate) struct Finding {
    pub severity: Severity,
    pub text: String,
    /// Where the first bad byte is, when it is in one place.
    pub at: Option<(PathBuf, u64)>,
}

/// What reading one file found.
struct FileScan {
    count: usize,
    first: Option<i64>,
    last: Option<i64>,
    stop: Stop,
}

pub(crate) fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let logs = resolve(&args.path)?;
    let findings = verify(&logs);
    Ok(report(&findings))
}

/// Prints the first bad place and returns the exit status: 0 clean, 1 handled by recovery, 2 refused.
pub(crate) fn report(findings: &[Finding]) -> ExitCode {
    let worst = findings.iter().map(|f| f.severity).max();
    let first = findings.iter().filter(|f| Some(f.severity) == worst).find_map(|f| f.at.as_ref());
    if let Some((path, offset)) = first {
        println!("first bad offset: {} at offset {offset}", path.display());
    }
    ExitCode::from(worst.map_or(0, |s| s as u8))
}

/// Checks every file and the seams between them, printing a line per file and per finding.
pub(crate) fn verify(logs: &LogFiles) -> Vec<Finding> {
    let bar = progress(&logs.files, false);
    let snapshots = snapshot_zxids(&logs.dir);
    let mut findings = Vec::new();
    let mut previous: Option<(i64, &Path)> = None;
    for (index, (_, path)) in logs.files.iter().enumerate() {
        let scan = scan_one(path, &bar, &mut findings);
        if let (Some((last, before)), Some(first)) = (previous, scan.first) {
            seam(&mut findings, (last, before), (first, path), &snapshots);
        }
        let zxids = scan.first.zip(scan.last).map_or("no txns".into(), |(f, l)| format!("zxid 0x{f:x}..=0x{l:x}"));
        match &scan.stop {
            Stop::End(end) => println!("{}: {} txns, {zxids}, {}", path.display(), scan.count, end_text(end)),
            Stop::Broken(e) => {
                println!("CORRUPT: {e}");
                note_unread(logs, index, &snapshots);
            }
            Stop::NeverWritten(e) => println!("{e}; start-up removes it"),
            Stop::Early => unreachable!("verify reads every file to its end"),
        }
        let is_last = index + 1 == logs.files.len();
        findings.extend(stop_finding(path, &scan, is_last, &snapshots));
        // After corruption nothing is known about where the file really ends: no seam check after it.
        previous = match scan.stop {
            Stop::Broken(_) => None,
            _ => scan.last.map(|last| (last, path.as_path())).or(previous),
        };
    }
    bar.finish_and_clear();
    // Findings already shown in a file's own lines carry no text.
    findings.iter().filter(|f| !f.text.is_empty()).for_each(|f| println!("{}", f.text));
    findings
}

/// Reads one file, noting damaged end markers and zxid steps inside it.
fn scan_one(path: &Path, bar: &indicatif::ProgressBar, findings: &mut Vec<Finding>) -> FileScan {
    let mut scan = FileScan { count: 0, first: None, last: None, stop: Stop::Early };
    scan.stop = scan_file(path, bar, |record| {
        let zxid = record.txn.header.zxid;
        if record.end_marker_damaged {
            let offset = record.end_marker_offset();
            println!("offset {offset}: {MARKER_TEXT}");
            findings.push(Finding {
                severity: Severity::Handled,
                text: String::new(),
                at: Some((path.into(), offset)),
            });
        }
        if let Some(last) = scan.last {
            let step = follows(last, zxid);
            if matches!(step, Follows::Gap | Follows::Overlap) {
                findings.push(step_finding(step, (last, path), (zxid, path), record.offset));
            }
        }
        scan.first.get_or_insert(zxid);
        scan.last = Some(zxid);
        scan.count += 1;
        ControlFlow::Continue(())
    });
    scan
}

fn step_finding(step: Follows, (last, before): (i64, &Path), (zxid, path): (i64, &Path), offset: u64) -> Finding {
    let (severity, what) = match step {
        Follows::Gap => (Severity::Refused, "gap: txns are missing, recovery refuses to start"),
        _ => (Severity::Handled, "overlap: recovery skips the txns it has already applied"),
    };
    let text = format!(
        "{what}: zxid 0x{zxid:x} at offset {offset} of {} follows 0x{last:x} in {}",
        short_name(path),
        short_name(before)
    );
    Finding { severity, text, at: Some((path.into(), offset)) }
}

/// The seam between two files: a gap is harmless when a snapshot at or after the txn before the gap
/// exists, because recovery then starts from it and never reads across (a learner synced by SNAP
/// leaves exactly that).
fn seam(findings: &mut Vec<Finding>, before: (i64, &Path), after: (i64, &Path), snapshots: &[i64]) {
    let step = follows(before.0, after.0);
    match step {
        Follows::Next | Follows::NewEpoch => {}
        Follows::Gap if snapshots.iter().any(|s| *s >= after.0 - 1) => {
            let text = format!(
                "note: zxids 0x{:x}..0x{:x} are in no log ({} to {}), but a snapshot at or after 0x{:x} exists: \
                 recovery starts from it and never reads across the gap",
                before.0 + 1,
                after.0 - 1,
                short_name(before.1),
                short_name(after.1),
                after.0 - 1
            );
            println!("{text}");
        }
        Follows::Gap | Follows::Overlap => findings.push(step_finding(step, before, after, 16)),
    }
}

/// What the way a file ends means: corruption is refused; a torn tail is cut by recovery, unless a
/// snapshot newer than the last txn before it proves the txns after it were durable.
fn stop_finding(path: &Path, scan: &FileScan, is_last: bool, snapshots: &[i64]) -> Option<Finding> {
    let at = |offset| Some((path.to_path_buf(), offset));
    match &scan.stop {
        Stop::Broken(e) => {
            Some(Finding { severity: Severity::Refused, text: String::new(), at: at(e.offset().unwrap_or(0)) })
        }
        Stop::End(LogEnd::Torn { offset, .. }) => {
            let last = scan.last.unwrap_or(-1);
            let newer = snapshots.iter().copied().filter(|s| *s > last).max();
            Some(match newer {
                Some(snapshot) if is_last => Finding {
                    severity: Severity::Refused,
                    text: format!(
                        "the torn tail of {} follows zxid 0x{last:x}, but snapshot.{snapshot:x} shows later txns \
                         were durable: recovery refuses to cut it",
                        path.display()
                    ),
                    at: at(*offset),
                },
                _ => Finding { severity: Severity::Handled, text: String::new(), at: at(*offset) },
            })
        }
        Stop::NeverWritten(_) => Some(Finding { severity: Severity::Handled, text: String::new(), at: None }),
        Stop::End(LogEnd::Clean { .. }) | Stop::Early => None,
    }
}

/// Recovery reads the logs from the newest one named at or before the newest snapshot: damage in an
/// older log goes unnoticed at start-up (as ZooKeeper starts on the corrupt-middle fixture). Still
/// corruption — an older snapshot, or a learner syncing from this log, would need it — but worth saying.
fn note_unread(logs: &LogFiles, index: usize, snapshots: &[i64]) {
    let Some(newest) = snapshots.iter().copied().max() else { return };
    let start = logs.files.iter().rposition(|(name, _)| *name <= newest).unwrap_or(0);
    if index < start {
        println!(
            "note: recovery from snapshot.{newest:x} starts at {} and does not read {}",
            short_name(&logs.files[start].1),
            short_name(&logs.files[index].1)
        );
    }
}

/// Zxids of the snapshots beside the logs (dataDir = dataLogDir, the common case).
pub(crate) fn snapshot_zxids(dir: &Path) -> Vec<i64> {
    list(dir, SNAPSHOT_PREFIX).map(|s| s.into_iter().map(|(zxid, _)| zxid).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_steps() {
        let epoch = |e: i64, counter: i64| (e << 32) | counter;
        let cases = [
            (1, 2, Follows::Next),
            (epoch(1, 0xffff_ffff), epoch(2, 0), Follows::Next),
            (epoch(1, 5), epoch(2, 1), Follows::NewEpoch),
            (epoch(1, 5), epoch(3, 7), Follows::NewEpoch),
            (5, 7, Follows::Gap),
            (epoch(2, 1), epoch(2, 9), Follows::Gap),
            (5, 5, Follows::Overlap),
            (5, 3, Follows::Overlap),
            (epoch(2, 1), epoch(1, 9), Follows::Overlap),
        ];
        for (previous, next, expected) in cases {
            assert_eq!(follows(previous, next), expected, "0x{previous:x} then 0x{next:x}");
        }
    }
}
