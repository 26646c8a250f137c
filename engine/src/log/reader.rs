//! Reads a txn log file record by record, telling a clean end, a torn tail and corruption apart.

use std::path::{Path, PathBuf};

use fk_net::jute::{Jute, JuteReader};
use fk_net::txn::{Txn, TxnHeader};
use thiserror::Error;

use super::format::{END_OF_RECORD, FORMAT_VERSION, HEADER_LEN, LOG_MAGIC, RECORD_OVERHEAD, adler32};

/// A log file that cannot be read as one. Every variant names the file and the byte offset.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a txn log (bad header at offset 0: {reason})")]
    BadHeader { path: PathBuf, reason: String },
    #[error(
        "{path}: checksum mismatch in the record at offset {offset} (zxid {zxid}): stored 0x{stored:x}, computed 0x{computed:x}"
    )]
    Checksum { path: PathBuf, offset: u64, zxid: String, stored: u64, computed: u32 },
    #[error("{path}: the record at offset {offset} (zxid {zxid}) does not decode: {reason}")]
    Undecodable { path: PathBuf, offset: u64, zxid: String, reason: String },
}

/// Why reading a log stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// A zero length (preallocated padding) or the end of the file at a record boundary.
    Clean { offset: u64 },
    /// A record that was not completely written: the file ends inside it, or its end-of-record byte is
    /// not 'B'. Everything from `offset` on is the torn tail.
    Torn { offset: u64, reason: String },
}

/// One record: where it starts, its raw entry bytes and the decoded txn.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub offset: u64,
    pub txn: Txn,
}

/// A whole log file read into memory (mapped), with its records.
pub struct LogFile {
    pub path: PathBuf,
    pub records: Vec<LogRecord>,
    pub end: LogEnd,
    pub file_len: u64,
}

fn zxid_of(entry: &[u8]) -> String {
    TxnHeader::decode(&mut JuteReader::new(entry)).map_or_else(|_| "unknown".into(), |h| format!("0x{:x}", h.zxid))
}

/// Reads every record of `path`. Stops at the first clean end or torn record; a checksum mismatch or an
/// undecodable record is an error (corruption, not a crash artefact).
pub fn read_log(path: &Path) -> Result<LogFile, LogError> {
    let mut reader = LogReader::open(path)?;
    let mut records = Vec::new();
    let end = loop {
        match reader.read_next()? {
            Next::Record(record) => records.push(record),
            Next::End(end) => break end,
        }
    };
    Ok(LogFile { path: path.to_owned(), records, end, file_len: reader.file_len })
}

/// A log file read one record at a time, for recovery to apply each txn as it is decoded rather than
/// hold a whole file's worth of them.
pub struct LogReader {
    path: PathBuf,
    map: Option<memmap2::Mmap>,
    offset: usize,
    pub file_len: u64,
}

impl LogReader {
    /// Maps `path` and checks its header.
    pub fn open(path: &Path) -> Result<LogReader, LogError> {
        let io_err = |source| LogError::Io { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        // SAFETY: the log is only appended to by this process (and only after recovery has finished); a
        // concurrent truncation by another process would be an operator error we cannot guard against.
        let map = if file_len == 0 { None } else { Some(unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?) };
        check_header(path, map.as_deref().unwrap_or_default())?;
        Ok(LogReader { path: path.to_owned(), map, offset: HEADER_LEN, file_len })
    }

    /// The next record, or how the file ends; corruption is an error.
    pub fn read_next(&mut self) -> Result<Next, LogError> {
        let bytes = self.map.as_deref().unwrap_or_default();
        Ok(match next_record(&self.path, bytes, self.offset)? {
            Step::Record(entry_len, txn) => {
                let record = LogRecord { offset: self.offset as u64, txn };
                self.offset += RECORD_OVERHEAD + entry_len;
                Next::Record(record)
            }
            Step::End(end) => Next::End(end),
        })
    }
}

/// What [`LogReader::read_next`] found.
pub enum Next {
    Record(LogRecord),
    End(LogEnd),
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let bad = |reason: String| LogError::BadHeader { path: path.to_owned(), reason };
    let mut r = JuteReader::new(bytes);
    let magic = r.read_i32().map_err(|_| bad(format!("file is only {} bytes", bytes.len())))?;
    let version = r.read_i32().map_err(|_| bad("truncated".into()))?;
    r.read_i64().map_err(|_| bad("truncated".into()))?;
    if magic != LOG_MAGIC {
        return Err(bad(format!("magic 0x{magic:08x}, expected 0x{LOG_MAGIC:08x}")));
    }
    if version != FORMAT_VERSION {
        return Err(bad(format!("version {version}, expected {FORMAT_VERSION}")));
    }
    Ok(())
}

enum Step {
    Record(usize, Txn),
    End(LogEnd),
}

fn next_record(path: &Path, bytes: &[u8], offset: usize) -> Result<Step, LogError> {
    let at = offset as u64;
    let torn = |reason: &str| Ok(Step::End(LogEnd::Torn { offset: at, reason: reason.to_owned() }));
    let rest = &bytes[offset.min(bytes.len())..];
    if rest.is_empty() {
        return Ok(Step::End(LogEnd::Clean { offset: at }));
    }
    if rest.len() < 12 {
        return torn("file ends inside a record header");
    }
    let stored = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
    let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    if length == 0 {
        return Ok(Step::End(LogEnd::Clean { offset: at }));
    }
    if length < 0 || rest.len() < 12 + length as usize + 1 {
        return torn("file ends inside a record");
    }
    let entry = &rest[12..12 + length as usize];
    if rest[12 + length as usize] != END_OF_RECORD {
        return torn("end-of-record marker missing (partial write)");
    }
    let computed = adler32(entry);
    if stored != computed as u64 {
        return Err(LogError::Checksum { path: path.to_owned(), offset: at, zxid: zxid_of(entry), stored, computed });
    }
    let txn = Txn::decode(entry).map_err(|e| LogError::Undecodable {
        path: path.to_owned(),
        offset: at,
        zxid: zxid_of(entry),
        reason: e.to_string(),
    })?;
    Ok(Step::Record(length as usize, txn))
}
