//! Which log files a command reads, and reading them record by record.
//!
//! A command takes a log file, a `version-2` directory or a dataDir holding one; a directory's files are
//! read in zxid order of their names, as recovery reads them (reference/on-disk.md §1).

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use fk_engine::files::{LOG_PREFIX, VERSION_DIR, list, parse_name};
use fk_engine::log::{LogEnd, LogError, LogReader, LogRecord, Next};
use indicatif::{ProgressBar, ProgressStyle};

/// The log files a command works on, oldest first: `(zxid in the name, path)`.
pub(crate) struct LogFiles {
    /// The directory holding them.
    pub dir: PathBuf,
    pub files: Vec<(i64, PathBuf)>,
    /// Whether one file was named (rather than a directory).
    pub single: bool,
}

/// Resolves a file, a `version-2` directory, or a dataDir containing `version-2/`.
pub(crate) fn resolve(path: &Path) -> anyhow::Result<LogFiles> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_dir() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // A file not named log.<zxid> (a copy, a chopped range) is still readable; its name says nothing.
        let zxid = parse_name(name, LOG_PREFIX).unwrap_or(-1);
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        return Ok(LogFiles { dir, files: vec![(zxid, path.to_path_buf())], single: true });
    }
    let nested = path.join(VERSION_DIR);
    let dir = if nested.is_dir() { nested } else { path.to_path_buf() };
    let files = list(&dir, LOG_PREFIX).with_context(|| format!("cannot list {}", dir.display()))?;
    if files.is_empty() {
        bail!("no txn log files (log.<zxid>) in {}", dir.display());
    }
    Ok(LogFiles { dir, files, single: false })
}

/// The file name alone, for messages about files in one directory.
pub(crate) fn short_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// A progress bar over the bytes of `files`, drawn only when stderr is a terminal and, for a command
/// that prints a line per txn (`stdout_busy`), stdout is not: a script reading our output, or a
/// terminal already scrolling it, gets no bar.
pub(crate) fn progress(files: &[(i64, PathBuf)], stdout_busy: bool) -> ProgressBar {
    let stdout_shown = stdout_busy && std::io::stdout().is_terminal();
    if !std::io::stderr().is_terminal() || stdout_shown {
        return ProgressBar::hidden();
    }
    let total = files.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{bar:40} {binary_bytes}/{binary_total_bytes} {msg}")
        .expect("a valid progress template");
    bar.set_style(style);
    bar
}

/// Why reading one file stopped.
pub(crate) enum Stop {
    End(LogEnd),
    /// Unreadable: I/O, a bad header, or corruption (a damaged record with valid data after it).
    Broken(LogError),
    /// A log whose header was never written (a crash while creating it): it holds no txn, and start-up
    /// recovery removes it.
    NeverWritten(LogError),
    /// The caller had seen enough.
    Early,
}

/// Bytes a record takes in the file: checksum, length, entry and end marker.
pub(crate) fn record_len(record: &LogRecord) -> u64 {
    record.end_marker_offset() + 1 - record.offset
}

/// Reads `path` record by record until its end, damage, or `each` breaks; advances `bar` by the file.
pub(crate) fn scan_file(path: &Path, bar: &ProgressBar, mut each: impl FnMut(LogRecord) -> ControlFlow<()>) -> Stop {
    bar.set_message(short_name(path));
    let file_len = std::fs::metadata(path).map_or(0, |m| m.len());
    let mut done = 0;
    let stop = match LogReader::open(path) {
        Err(e @ LogError::NeverWritten { .. }) => Stop::NeverWritten(e),
        Err(e) => Stop::Broken(e),
        Ok(mut reader) => loop {
            match reader.read_next() {
                Ok(Next::Record(record)) => {
                    let end = record.offset + record_len(&record);
                    bar.inc(end - done);
                    done = end;
                    if each(record).is_break() {
                        break Stop::Early;
                    }
                }
                Ok(Next::End(end)) => break Stop::End(end),
                Err(e) => break Stop::Broken(e),
            }
        },
    };
    bar.inc(file_len.saturating_sub(done));
    stop
}
