//! Cutting the log back to a zxid: what a learner does on the leader's TRUNC (ZooKeeper's
//! `FileTxnLog.truncate`). Every record up to and including `zxid` stays; the rest of its file is cut and
//! every later log file deleted. Runs on a closed log (the writer is rolled first), and is durable when
//! it returns.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::reader::{LogError, LogReader, Next};
use crate::files::{LOG_PREFIX, list_in};
use crate::fs::{Fs, RealFs};

#[derive(Debug, Error)]
pub enum TruncateError {
    #[error("cannot truncate the txn log in {dir} to zxid 0x{zxid:x}: {source}")]
    Io { dir: PathBuf, zxid: i64, source: std::io::Error },
    #[error(
        "cannot truncate the txn log in {dir} to zxid 0x{zxid:x}: no log file starts at or before it (the logs \
         start at {first}); were log files deleted, or dataLogDir changed?"
    )]
    NoLog { dir: PathBuf, zxid: i64, first: String },
    #[error("cannot truncate to zxid 0x{zxid:x}: {source}")]
    Unreadable { zxid: i64, source: LogError },
}

/// What a truncation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncated {
    /// The file cut, and the offset it now ends at.
    pub file: PathBuf,
    pub offset: u64,
    /// Later log files deleted.
    pub deleted: Vec<PathBuf>,
}

/// Keeps the records with zxid <= `zxid` in `dir` (a `version-2` directory) and removes the rest.
pub fn truncate_to(dir: &Path, zxid: i64) -> Result<Truncated, TruncateError> {
    truncate_in(&RealFs, dir, zxid)
}

/// [`truncate_to`] on `fs`.
pub fn truncate_in(fs: &dyn Fs, dir: &Path, zxid: i64) -> Result<Truncated, TruncateError> {
    let io = |source| TruncateError::Io { dir: dir.to_owned(), zxid, source };
    let mut logs = list_in(fs, dir, LOG_PREFIX).map_err(io)?;
    // A file left without its header (its creation cut short by a full disk) holds no txn: it goes, as
    // recovery removes it at start-up, rather than stopping every truncation.
    let never_written = super::reader::take_never_written(fs, &mut logs);
    for (path, error) in &never_written {
        tracing::warn!("{error}: removing it");
        fs.remove(path).map_err(io)?;
    }
    // The newest file starting at or before zxid holds it (or the records just before it).
    let Some(index) = logs.iter().rposition(|(first, _)| *first <= zxid) else {
        let first = logs.first().map_or_else(|| "none: there are no log files".into(), |(z, _)| format!("0x{z:x}"));
        return Err(TruncateError::NoLog { dir: dir.to_owned(), zxid, first });
    };
    let file = logs[index].1.clone();
    let offset = cut_point(fs, &file, zxid).map_err(|source| TruncateError::Unreadable { zxid, source })?;
    fs.open(&file, false).and_then(|f| f.set_len_durably(offset)).map_err(io)?;
    let mut deleted = Vec::new();
    for (_, later) in &logs[index + 1..] {
        fs.remove(later).map_err(io)?;
        deleted.push(later.clone());
    }
    fs.sync_dir(dir).map_err(io)?;
    Ok(Truncated { file, offset, deleted })
}

/// Where the first record newer than `zxid` starts (or where the readable records end).
fn cut_point(fs: &dyn Fs, file: &Path, zxid: i64) -> Result<u64, LogError> {
    let mut reader = LogReader::open_in(fs, file)?;
    loop {
        match reader.read_next()? {
            Next::Record(record) if record.txn.header.zxid > zxid => return Ok(record.offset),
            Next::Record(_) => {}
            Next::End(end) => return Ok(end.offset()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogWriter, PwriteDevice, read_log, test_txn as txn};

    /// log.1 holds 1..=10, log.b holds 11..=20 (a new epoch would look the same to truncation).
    fn two_logs(dir: &Path) {
        let mut writer = LogWriter::new(dir, Box::new(PwriteDevice), 4096, false, 0);
        writer.append(&(1..=10).map(txn).collect::<Vec<_>>()).unwrap();
        writer.roll();
        writer.append(&(11..=20).map(txn).collect::<Vec<_>>()).unwrap();
    }

    fn zxids(file: &Path) -> Vec<i64> {
        read_log(file).unwrap().records.iter().map(|r| r.txn.header.zxid).collect()
    }

    #[test]
    fn keeps_records_up_to_the_zxid_and_deletes_later_files() {
        // (truncate to, records left in log.1, log.b kept)
        for (zxid, left, later_kept) in [(5, 5, false), (10, 10, false), (1, 1, false), (15, 10, true), (20, 10, true)]
        {
            let dir = tempfile::tempdir().unwrap();
            two_logs(dir.path());
            let truncated = truncate_to(dir.path(), zxid).unwrap();
            assert_eq!(zxids(&dir.path().join("log.1")), (1..=left).collect::<Vec<_>>(), "to 0x{zxid:x}");
            assert_eq!(dir.path().join("log.b").exists(), later_kept, "to 0x{zxid:x}");
            if later_kept {
                assert_eq!(zxids(&dir.path().join("log.b")), (11..=zxid).collect::<Vec<_>>());
                assert!(truncated.deleted.is_empty());
            } else {
                assert_eq!(truncated.deleted, vec![dir.path().join("log.b")]);
            }
            let end = read_log(&truncated.file).unwrap();
            assert_eq!((end.file_len, end.end.offset()), (truncated.offset, truncated.offset), "cut right there");
        }
    }

    #[test]
    fn a_log_whose_header_was_never_written_is_removed_not_an_error() {
        // The simulator found it: a full disk cut a new log's creation short, and every TRUNC and SNAP
        // after failed on the empty file, so the member could never be synchronised again.
        let dir = tempfile::tempdir().unwrap();
        two_logs(dir.path());
        std::fs::write(dir.path().join("log.15"), b"").unwrap();
        let truncated = truncate_to(dir.path(), 15).unwrap();
        assert_eq!(zxids(&truncated.file), (11..=15).collect::<Vec<_>>());
        assert!(!dir.path().join("log.15").exists());
    }

    #[test]
    fn a_zxid_before_every_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::new(dir.path(), Box::new(PwriteDevice), 4096, false, 9);
        writer.append(&[txn(10)]).unwrap();
        let err = truncate_to(dir.path(), 5).unwrap_err();
        assert!(err.to_string().contains("no log file starts at or before it (the logs start at 0xa)"), "{err}");
        assert_eq!(zxids(&dir.path().join("log.a")), vec![10], "nothing changed");
    }
}
