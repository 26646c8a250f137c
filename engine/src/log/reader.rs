//! Reads a txn log file record by record, telling a clean end, a torn tail and corruption apart.
//!
//! A crash can only damage *the end of what was written*: the batch being appended when the process or
//! the machine died. So a record that fails its length, its end-of-record marker or its checksum (and a
//! zero length, the usual end of a preallocated file) ends the log only if nothing valid follows it in
//! the file. When a checksummed record with a higher zxid does follow, the damage is in the middle of
//! durable data — a bad disk, a stray write — and reading stops with [`LogError::Corrupt`] instead of
//! quietly dropping everything after it. A record whose checksum holds but whose end marker is not 'B'
//! is intact (the checksum covers every byte of the entry) and is read, flagged for the caller.

use std::path::{Path, PathBuf};

use fk_net::jute::{Jute, JuteReader};
use fk_net::txn::{Txn, TxnHeader};
use thiserror::Error;

use super::format::{END_OF_RECORD, FORMAT_VERSION, HEADER_LEN, LOG_MAGIC, RECORD_OVERHEAD, adler32};

/// Checksum (8) and length (4) before the entry.
const RECORD_PREFIX: usize = 12;
/// The smallest entry that can hold a txn: a TxnHeader (clientId, cxid, zxid, time, type).
const MIN_ENTRY: usize = 8 + 4 + 8 + 8 + 4;

/// A log file that cannot be read as one. Every variant names the file and the byte offset.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a txn log (bad header at offset 0: {reason})")]
    BadHeader { path: PathBuf, reason: String },
    /// The header was never written: the file is empty, holds only the start of a header, or only zeros.
    /// The writer makes a new log's header durable before any record goes into it, so such a file is one
    /// whose creation a crash interrupted, and it holds no txn.
    #[error(
        "{path}: no header ({len} bytes: {}), so it holds no txn; a crash interrupted its creation",
        if *len == 0 { "empty" } else { "only the start of a header, or zeros" }
    )]
    NeverWritten { path: PathBuf, len: u64 },
    #[error(
        "{path}: the record at offset {offset} ({zxid}) is damaged ({reason}), but a valid record follows it at \
         offset {valid_offset} (zxid 0x{valid_zxid:x}): this is corruption inside durable data, not a torn tail"
    )]
    Corrupt { path: PathBuf, offset: u64, zxid: String, reason: String, valid_offset: u64, valid_zxid: i64 },
    #[error("{path}: the record at offset {offset} (zxid {zxid}) does not decode: {reason}")]
    Undecodable { path: PathBuf, offset: u64, zxid: String, reason: String },
}

impl LogError {
    /// Where the unreadable record starts, if the error is about one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            LogError::Corrupt { offset, .. } | LogError::Undecodable { offset, .. } => Some(*offset),
            LogError::Io { .. } | LogError::BadHeader { .. } | LogError::NeverWritten { .. } => None,
        }
    }
}

/// Why reading a log stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// A zero length (preallocated padding) or the end of the file at a record boundary.
    Clean { offset: u64 },
    /// A record that was not completely written (the file ends inside it, its length does not fit, or
    /// its checksum fails) with nothing valid after it. Everything from `offset` on is the torn tail.
    Torn { offset: u64, reason: String },
}

impl LogEnd {
    pub fn offset(&self) -> u64 {
        match self {
            LogEnd::Clean { offset } | LogEnd::Torn { offset, .. } => *offset,
        }
    }
}

/// One record: where it starts and the decoded txn.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub offset: u64,
    pub txn: Txn,
    /// The end-of-record byte is not 'B' although the checksum holds: the record is intact, the marker
    /// byte alone was damaged.
    pub end_marker_damaged: bool,
    entry_len: u64,
}

impl LogRecord {
    /// The offset of the end-of-record byte.
    pub fn end_marker_offset(&self) -> u64 {
        self.offset + (RECORD_OVERHEAD - 1) as u64 + self.entry_len
    }
}

/// A whole log file read into memory (mapped), with its records.
pub struct LogFile {
    pub path: PathBuf,
    pub records: Vec<LogRecord>,
    pub end: LogEnd,
    pub file_len: u64,
}

/// Takes out of `logs` the files whose header was never written (a crash, or a full disk, while the
/// file was created): they hold no txn. Returns them, with why, for the caller to remove.
pub fn take_never_written(fs: &dyn crate::fs::Fs, logs: &mut Vec<(i64, PathBuf)>) -> Vec<(PathBuf, LogError)> {
    let mut never_written = Vec::new();
    logs.retain(|(_, path)| match LogReader::open_in(fs, path) {
        Err(error @ LogError::NeverWritten { .. }) => {
            never_written.push((path.clone(), error));
            false
        }
        // Other errors are for whoever reads the file to report, if it needs it at all.
        _ => true,
    });
    never_written
}

/// Reads every record of `path`. Stops at the first clean end or torn tail; corruption (a damaged record
/// with valid data after it, or a checksummed record that does not decode) is an error.
pub fn read_log(path: &Path) -> Result<LogFile, LogError> {
    read_log_in(&crate::fs::RealFs, path)
}

/// [`read_log`] on `fs`.
pub fn read_log_in(fs: &dyn crate::fs::Fs, path: &Path) -> Result<LogFile, LogError> {
    let mut reader = LogReader::open_in(fs, path)?;
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
    contents: crate::fs::Contents,
    offset: usize,
    /// The zxid of the last record read: what follows a damaged record must be newer to count as valid.
    last_zxid: Option<i64>,
    pub file_len: u64,
}

impl LogReader {
    /// Maps `path` and checks its header.
    pub fn open(path: &Path) -> Result<LogReader, LogError> {
        LogReader::open_in(&crate::fs::RealFs, path)
    }

    /// [`LogReader::open`] on `fs`.
    pub fn open_in(fs: &dyn crate::fs::Fs, path: &Path) -> Result<LogReader, LogError> {
        let contents = fs.read(path).map_err(|source| LogError::Io { path: path.to_owned(), source })?;
        check_header(path, &contents)?;
        let file_len = contents.len() as u64;
        Ok(LogReader { path: path.to_owned(), contents, offset: HEADER_LEN, last_zxid: None, file_len })
    }

    /// The next record, or how the file ends; corruption is an error.
    pub fn read_next(&mut self) -> Result<Next, LogError> {
        let bytes: &[u8] = &self.contents;
        let at = self.offset;
        let damage = match parse_record(&bytes[at.min(bytes.len())..]) {
            Parsed::Intact { entry_len, end_marker_ok } => {
                let entry = &bytes[at + RECORD_PREFIX..at + RECORD_PREFIX + entry_len];
                let txn = Txn::decode(entry).map_err(|e| LogError::Undecodable {
                    path: self.path.clone(),
                    offset: at as u64,
                    zxid: header_zxid(entry).map_or_else(|| "unknown".into(), |z| format!("0x{z:x}")),
                    reason: e.to_string(),
                })?;
                self.offset += RECORD_OVERHEAD + entry_len;
                self.last_zxid = Some(txn.header.zxid);
                let record = LogRecord {
                    offset: at as u64,
                    txn,
                    end_marker_damaged: !end_marker_ok,
                    entry_len: entry_len as u64,
                };
                return Ok(Next::Record(record));
            }
            Parsed::End => None,
            Parsed::Damaged(reason) => Some(reason),
        };
        // Whatever stopped us, it is the end of the log only if nothing valid comes after it.
        if let Some((valid_offset, valid_zxid)) = find_valid_record(bytes, at + 1, self.last_zxid)
            && !crate::planted::is_planted(crate::planted::PlantedBug::FlipAsTornTail)
        {
            let reason = damage.unwrap_or_else(|| "a zero length, which marks the end of the log".into());
            return Err(LogError::Corrupt {
                path: self.path.clone(),
                offset: at as u64,
                zxid: self.damaged_zxid(bytes, at, valid_zxid),
                reason,
                valid_offset: valid_offset as u64,
                valid_zxid,
            });
        }
        let offset = at as u64;
        Ok(Next::End(match damage {
            None => LogEnd::Clean { offset },
            Some(reason) => LogEnd::Torn { offset, reason },
        }))
    }

    /// What can be said of a damaged record's zxid: the one in its header if that is plausible (between
    /// its neighbours'), else where it sits.
    fn damaged_zxid(&self, bytes: &[u8], at: usize, next_zxid: i64) -> String {
        let after = self.last_zxid.map_or_else(|| "the file's first record".into(), |z| format!("after 0x{z:x}"));
        match bytes.get(at + RECORD_PREFIX..).and_then(header_zxid) {
            Some(zxid) if self.last_zxid.is_none_or(|last| zxid > last) && zxid < next_zxid => {
                format!("zxid 0x{zxid:x}, {after}")
            }
            _ => format!("zxid unreadable, {after}"),
        }
    }
}

/// What [`LogReader::read_next`] found.
pub enum Next {
    Record(LogRecord),
    End(LogEnd),
}

fn header_zxid(entry: &[u8]) -> Option<i64> {
    TxnHeader::decode(&mut JuteReader::new(entry)).ok().map(|h| h.zxid)
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    if never_written(bytes) {
        return Err(LogError::NeverWritten { path: path.to_owned(), len: bytes.len() as u64 });
    }
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

/// Whether a file's bytes show its header was never written: shorter than a header and the start of one
/// (a write cut short by the crash, or nothing at all), or zeros only (padding whose header write was
/// lost). Anything else without a valid header is damage, not an interrupted creation.
fn never_written(bytes: &[u8]) -> bool {
    let mut header = Vec::with_capacity(HEADER_LEN);
    super::format::encode_header(&mut header);
    (bytes.len() < HEADER_LEN && header.starts_with(bytes)) || bytes.iter().all(|&b| b == 0)
}

/// One record's framing, judged without decoding the entry.
enum Parsed {
    /// Length, checksum (and usually the end marker) hold.
    Intact {
        entry_len: usize,
        end_marker_ok: bool,
    },
    /// A zero length or nothing left: where a log ends.
    End,
    Damaged(String),
}

fn parse_record(rest: &[u8]) -> Parsed {
    if rest.iter().take(RECORD_PREFIX).all(|&b| b == 0) {
        return Parsed::End;
    }
    let Some(prefix) = rest.get(..RECORD_PREFIX) else {
        return Parsed::Damaged("the file ends inside a record header".into());
    };
    let stored = u64::from_be_bytes(prefix[..8].try_into().expect("8 bytes"));
    let length = i32::from_be_bytes(prefix[8..].try_into().expect("4 bytes"));
    if length == 0 {
        return Parsed::End;
    }
    let available = rest.len() - RECORD_PREFIX;
    if length < 0 || length as usize >= available {
        return Parsed::Damaged(format!("length {length} does not fit in the {available} bytes left in the file"));
    }
    let entry_len = length as usize;
    let entry = &rest[RECORD_PREFIX..RECORD_PREFIX + entry_len];
    let end_marker_ok = rest[RECORD_PREFIX + entry_len] == END_OF_RECORD;
    let computed = adler32(entry);
    if stored != u64::from(computed) {
        let marker = if end_marker_ok { "" } else { ", and the end-of-record marker is missing" };
        return Parsed::Damaged(format!("checksum mismatch: stored 0x{stored:x}, computed 0x{computed:x}{marker}"));
    }
    Parsed::Intact { entry_len, end_marker_ok }
}

/// The first record at or after `from` that is whole (length fits, end marker, checksum), decodes, and is
/// newer than `after_zxid`: proof that `from` is not the end of what was written. Zero runs (padding) are
/// skipped a word at a time, so scanning a preallocated tail costs little.
fn find_valid_record(bytes: &[u8], from: usize, after_zxid: Option<i64>) -> Option<(usize, i64)> {
    let mut at = from;
    while at + RECORD_OVERHEAD + MIN_ENTRY <= bytes.len() {
        // A record's length field is non-zero, so it cannot start more than 11 bytes before the next
        // non-zero byte.
        let nonzero = first_nonzero(bytes, at)?;
        at = at.max(nonzero.saturating_sub(RECORD_PREFIX - 1));
        if let Some(zxid) = valid_record_at(bytes, at)
            && after_zxid.is_none_or(|last| zxid > last)
        {
            return Some((at, zxid));
        }
        at += 1;
    }
    None
}

fn valid_record_at(bytes: &[u8], at: usize) -> Option<i64> {
    let rest = bytes.get(at..)?;
    // ZooKeeper stores the 32-bit Adler32 in a long: its upper half is zero.
    if rest.get(..4)? != [0, 0, 0, 0] {
        return None;
    }
    match parse_record(rest) {
        Parsed::Intact { entry_len, end_marker_ok: true } => {
            let entry = &rest[RECORD_PREFIX..RECORD_PREFIX + entry_len];
            Txn::decode(entry).ok().map(|txn| txn.header.zxid)
        }
        _ => None,
    }
}

fn first_nonzero(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut words = rest.chunks_exact(8);
    let tail_start = rest.len() - words.remainder().len();
    let word = words.position(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")) != 0);
    let base = word.map_or(tail_start, |w| w * 8);
    rest[base..].iter().position(|&b| b != 0).map(|i| from + base + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogWriter, PwriteDevice};
    use fk_net::client::OpCode;
    use fk_net::txn::{SetDataTxn, TxnBody};

    const RECORDS: i64 = 50;

    fn txn(zxid: i64) -> Txn {
        let body = TxnBody::SetData(SetDataTxn { path: format!("/n{zxid}"), data: Some(vec![7; 40]), version: 1 });
        let header = TxnHeader { client_id: 1, cxid: zxid as i32, zxid, time: 0, txn_type: OpCode::SetData.as_i32() };
        Txn { header, body, digest: None }
    }

    /// A preallocated log of `RECORDS` txns, and the offset of each record.
    fn written_log(dir: &Path) -> (PathBuf, Vec<u64>) {
        let mut writer = LogWriter::new(dir, Box::new(PwriteDevice), 64 * 1024, false, 0);
        for zxid in 1..=RECORDS {
            writer.append(&[txn(zxid)]).unwrap();
        }
        let path = dir.join("log.1");
        let offsets = read_log(&path).unwrap().records.iter().map(|r| r.offset).collect();
        (path, offsets)
    }

    fn damaged(bytes: &mut [u8], offsets: &[u64], index: usize, what: &str) {
        let at = offsets[index] as usize;
        let entry_len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        match what {
            "end marker" => bytes[at + RECORD_PREFIX + entry_len] = b'X',
            "length" => bytes[at + 10] ^= 0x01,
            "length sign" => bytes[at + 8] = 0xff,
            "checksum" => bytes[at + 7] ^= 0x40,
            "entry" => bytes[at + RECORD_PREFIX + 20] ^= 0x04,
            "zeroed length" => bytes[at + 8..at + 12].fill(0),
            "cut" => bytes[at + 30..].fill(0),
            _ => unreachable!("{what}"),
        }
    }

    /// Damage to one record, and the verdict: how many records are read and how the file ends, or the
    /// corruption error.
    #[test]
    fn damage_is_a_torn_tail_only_when_nothing_valid_follows() {
        #[derive(Debug, PartialEq)]
        enum Verdict {
            Read { records: usize, repaired_markers: usize, torn: bool },
            Corrupt { offset_index: usize },
        }
        use Verdict::*;
        let last = RECORDS as usize - 1;
        let cases = [
            // In the middle, valid records after it.
            (20, "end marker", Read { records: RECORDS as usize, repaired_markers: 1, torn: false }),
            (20, "length", Corrupt { offset_index: 20 }),
            (20, "length sign", Corrupt { offset_index: 20 }),
            (20, "checksum", Corrupt { offset_index: 20 }),
            (20, "entry", Corrupt { offset_index: 20 }),
            (20, "zeroed length", Corrupt { offset_index: 20 }),
            (0, "checksum", Corrupt { offset_index: 0 }),
            // The last record: nothing valid after it.
            (last, "cut", Read { records: last, repaired_markers: 0, torn: true }),
            (last, "checksum", Read { records: last, repaired_markers: 0, torn: true }),
            (last, "length", Read { records: last, repaired_markers: 0, torn: true }),
            (last, "end marker", Read { records: RECORDS as usize, repaired_markers: 1, torn: false }),
            (last, "zeroed length", Read { records: last, repaired_markers: 0, torn: false }),
            // A crash mid-batch: everything from the 40th record on is gone.
            (40, "cut", Read { records: 40, repaired_markers: 0, torn: true }),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (path, offsets) = written_log(dir.path());
        let pristine = std::fs::read(&path).unwrap();
        for (index, what, expected) in cases {
            let mut bytes = pristine.clone();
            damaged(&mut bytes, &offsets, index, what);
            std::fs::write(&path, &bytes).unwrap();
            let verdict = match read_log(&path) {
                Ok(log) => {
                    assert!(log.records.windows(2).all(|w| w[1].txn.header.zxid == w[0].txn.header.zxid + 1));
                    Read {
                        records: log.records.len(),
                        repaired_markers: log.records.iter().filter(|r| r.end_marker_damaged).count(),
                        torn: matches!(log.end, LogEnd::Torn { .. }),
                    }
                }
                Err(LogError::Corrupt { offset, valid_offset, valid_zxid, zxid, .. }) => {
                    assert!(valid_offset > offset, "{what}");
                    assert!(valid_zxid > index as i64, "{what}: the valid record found is newer");
                    assert!(zxid.contains(&format!("after 0x{index:x}")) || index == 0, "{what}: {zxid}");
                    Corrupt { offset_index: offsets.iter().position(|o| *o == offset).unwrap() }
                }
                Err(e) => panic!("{what} at record {index}: unexpected {e}"),
            };
            assert_eq!(verdict, expected, "{what} at record {index}");
        }
    }

    #[test]
    fn a_header_never_written_is_told_apart_from_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.7");
        let mut header = Vec::new();
        crate::log::format::encode_header(&mut header);
        let never_written = [Vec::new(), header[..5].to_vec(), vec![0u8; 4096]];
        for bytes in never_written {
            std::fs::write(&path, &bytes).unwrap();
            let error = read_log(&path).err().unwrap();
            assert!(matches!(error, LogError::NeverWritten { len, .. } if len == bytes.len() as u64), "{error}");
        }
        let mut damaged = header.clone();
        damaged[1] ^= 0x20;
        for bytes in [damaged, b"ZKX".to_vec(), [&header[..], &[1]].concat()[1..].to_vec()] {
            std::fs::write(&path, &bytes).unwrap();
            let error = read_log(&path).err().unwrap();
            assert!(matches!(error, LogError::BadHeader { .. }), "{error}");
        }
    }

    #[test]
    fn a_damaged_marker_offset_points_at_the_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (path, offsets) = written_log(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        damaged(&mut bytes, &offsets, 3, "end marker");
        std::fs::write(&path, &bytes).unwrap();
        let log = read_log(&path).unwrap();
        let record = &log.records[3];
        assert!(record.end_marker_damaged);
        assert_eq!(bytes[record.end_marker_offset() as usize], b'X');
        assert_eq!(record.end_marker_offset() + 1, offsets[4]);
    }

    #[test]
    fn the_corruption_message_names_file_offset_and_zxids() {
        let dir = tempfile::tempdir().unwrap();
        let (path, offsets) = written_log(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        damaged(&mut bytes, &offsets, 9, "entry");
        std::fs::write(&path, &bytes).unwrap();
        let message = read_log(&path).err().unwrap().to_string();
        let expected =
            format!("log.1: the record at offset {} (zxid 0xa, after 0x9) is damaged (checksum mismatch", offsets[9]);
        assert!(message.contains(&expected), "{message}");
        assert!(
            message.contains(&format!("valid record follows it at offset {} (zxid 0xb)", offsets[10])),
            "{message}"
        );
    }

    #[test]
    fn zero_runs_are_skipped_without_missing_a_record() {
        let mut bytes = vec![0u8; 4096];
        let mut record = Vec::new();
        let mut entry = Vec::new();
        txn(9).encode(&mut entry);
        crate::log::format::encode_record(&mut record, &entry);
        for start in [0, 1, 7, 8, 9, 100, 4096 - record.len()] {
            let mut b = bytes.clone();
            b[start..start + record.len()].copy_from_slice(&record);
            assert_eq!(find_valid_record(&b, 0, Some(3)), Some((start, 9)), "record at {start}");
            assert_eq!(find_valid_record(&b, 0, Some(9)), None, "not newer");
        }
        bytes[100] = 1;
        assert_eq!(find_valid_record(&bytes, 0, None), None);
        assert_eq!(first_nonzero(&bytes, 0), Some(100));
        assert_eq!(first_nonzero(&bytes, 101), None);
    }
}
