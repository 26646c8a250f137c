//! Appends batches of txns to `log.<zxid>` files: one write and one fdatasync per batch, whatever its
//! size. The caller (the group-commit thread) decides what a batch is; this type only makes it durable.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fk_net::txn::Txn;

use super::device::LogDevice;
use super::format::{HEADER_LEN, encode_header, encode_record, padded_size};
use crate::files::{LOG_PREFIX, file_name};
use crate::fs::{Fs, FsFile, RealFs};

/// The open log file being appended to.
struct OpenLog {
    file: Box<dyn FsFile>,
    path: PathBuf,
    position: u64,
    size: u64,
    /// Preallocation fell short of a whole step in this file (warned about once).
    short_of_space: bool,
}

/// What one batch cost, for statistics and the slow-fsync warning.
#[derive(Debug, Clone, Copy)]
pub struct BatchStats {
    pub txns: usize,
    pub bytes: usize,
    pub write_and_sync: Duration,
}

pub struct LogWriter {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    device: Box<dyn LogDevice>,
    current: Option<OpenLog>,
    prealloc_bytes: u64,
    force_sync: bool,
    last_zxid: i64,
    buffer: Vec<u8>,
    /// The last append failed and `rewind` has not run since.
    failed: bool,
}

impl LogWriter {
    /// `dir` is the `version-2` directory. `last_zxid` is the highest zxid already durable (recovery's):
    /// every appended txn must be above it.
    pub fn new(dir: &Path, device: Box<dyn LogDevice>, prealloc_bytes: u64, force_sync: bool, last_zxid: i64) -> Self {
        LogWriter::on(Arc::new(RealFs), dir, device, prealloc_bytes, force_sync, last_zxid)
    }

    /// [`LogWriter::new`] on `fs`.
    pub fn on(
        fs: Arc<dyn Fs>,
        dir: &Path,
        device: Box<dyn LogDevice>,
        prealloc_bytes: u64,
        force_sync: bool,
        last_zxid: i64,
    ) -> Self {
        LogWriter {
            fs,
            dir: dir.to_owned(),
            device,
            current: None,
            prealloc_bytes,
            force_sync,
            last_zxid,
            buffer: Vec::new(),
            failed: false,
        }
    }

    /// The file being written, if any.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// Closes the current file; the next append starts `log.<its first zxid>` (after a snapshot).
    pub fn roll(&mut self) {
        self.current = None;
    }

    /// Goes on after `last_zxid` in a new file: the log on disk was cut back or replaced under this
    /// writer (a learner told to TRUNC, or given a snapshot).
    pub fn restart(&mut self, last_zxid: i64) {
        self.current = None;
        self.last_zxid = last_zxid;
        self.failed = false;
    }

    /// Appends `txns` (strictly increasing zxids) and returns once they are durable (unless forceSync is
    /// off). On error nothing of the batch may be acknowledged, and nothing written since the last
    /// successful append can be trusted (after a failed fsync the page cache's state is unknown): the
    /// caller either stops or calls [`LogWriter::rewind`] before appending again.
    pub fn append<'a>(&mut self, txns: impl IntoIterator<Item = &'a Txn>) -> io::Result<BatchStats> {
        let durable_zxid = self.last_zxid;
        let appended = self.append_batch(txns);
        if appended.is_err() {
            self.last_zxid = durable_zxid;
            self.failed = true;
        }
        appended
    }

    /// After a failed append: cuts the current file back to the end of its last durable batch — a
    /// partial write, or pages a failed fsync may have dropped, leave nothing behind — and makes the
    /// cut durable, so the next append goes on from what the disk really holds. An error here means the
    /// file cannot be brought back to a known state.
    pub fn rewind(&mut self) -> io::Result<()> {
        if !std::mem::replace(&mut self.failed, false) {
            return Ok(());
        }
        let Some(log) = self.current.as_mut() else { return Ok(()) };
        log.file.set_len_durably(log.position)?;
        log.size = log.position;
        Ok(())
    }

    fn append_batch<'a>(&mut self, txns: impl IntoIterator<Item = &'a Txn>) -> io::Result<BatchStats> {
        assert!(!self.failed, "append after a failed append without rewind");
        self.buffer.clear();
        let mut count = 0;
        let mut first_zxid = None;
        let mut entry = Vec::new();
        for txn in txns {
            let zxid = txn.header.zxid;
            assert!(zxid > self.last_zxid, "txn log append out of order: zxid 0x{zxid:x} after 0x{:x}", self.last_zxid);
            self.last_zxid = zxid;
            first_zxid.get_or_insert(zxid);
            entry.clear();
            txn.encode(&mut entry);
            encode_record(&mut self.buffer, &entry);
            count += 1;
        }
        let Some(first_zxid) = first_zxid else {
            return Ok(BatchStats { txns: 0, bytes: 0, write_and_sync: Duration::ZERO });
        };
        if self.current.is_none() {
            self.current = Some(self.create(first_zxid)?);
        }
        let started = Instant::now();
        let log = self.current.as_mut().expect("opened above");
        let end = log.position + self.buffer.len() as u64;
        // ZooKeeper pads from the position before the write, so a fresh log becomes header + prealloc;
        // a batch larger than the padding grows the file again.
        let mut new_size = padded_size(log.position, log.size, self.prealloc_bytes);
        // Without preallocation (preAllocSize <= 0) the write itself extends the file.
        while self.prealloc_bytes > 0 && end > new_size {
            new_size = padded_size(end, new_size, self.prealloc_bytes);
        }
        if new_size > log.size {
            log.size = grow(log, new_size, end)?;
        }
        let written = self.device.write_and_sync(log.file.as_ref(), &self.buffer, log.position, self.force_sync);
        if written.is_err() && crate::planted::is_planted(crate::planted::PlantedBug::TrustFailedFsync) {
            // The planted bug: sync again, and believe it.
            log.file.sync_data()?;
        } else {
            written?;
        }
        log.position = end;
        Ok(BatchStats { txns: count, bytes: self.buffer.len(), write_and_sync: started.elapsed() })
    }

    /// Creates `log.<first_zxid>` with its header, durable together with its directory entry.
    ///
    /// A file of that name may exist: a previous run created it and died before any txn in it became
    /// durable (recovery replayed every valid record, so none of its txns can be at or above
    /// `first_zxid`). It holds nothing, and is overwritten, as ZooKeeper does.
    fn create(&mut self, first_zxid: i64) -> io::Result<OpenLog> {
        let path = self.dir.join(file_name(LOG_PREFIX, first_zxid));
        let file = self.fs.open(&path, true)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        encode_header(&mut header);
        self.device.write_and_sync(file.as_ref(), &header, 0, self.force_sync)?;
        if self.force_sync {
            self.fs.sync_dir(&self.dir)?;
        }
        Ok(OpenLog { file, path, position: HEADER_LEN as u64, size: HEADER_LEN as u64, short_of_space: false })
    }
}

/// Grows the log towards `wanted` bytes of zeros, and at least to `needed` (the end of the batch about to
/// be written). When the volume has less than a preallocation step free, it grows only as far as the
/// batch needs, so the server keeps writing until the disk is really full (ZooKeeper's sparse padding
/// behaves the same way); when even that does not fit, the error stops the server before anything of
/// the batch is written or acknowledged. Returns the new size.
fn grow(log: &mut OpenLog, wanted: u64, needed: u64) -> io::Result<u64> {
    match log.file.allocate(log.size, wanted) {
        Ok(()) => Ok(wanted),
        Err(e) if is_out_of_space(&e) && needed < wanted => {
            let step = needed.div_ceil(PAGE_BYTES) * PAGE_BYTES;
            if !std::mem::replace(&mut log.short_of_space, true) {
                tracing::warn!(
                    "{}: no room to preallocate {} bytes ({e}); growing the log only as far as each batch needs",
                    log.path.display(),
                    wanted - log.size
                );
            }
            log.file.allocate(log.size, step.max(needed))?;
            Ok(step.max(needed))
        }
        Err(e) => Err(e),
    }
}

const PAGE_BYTES: u64 = 4096;

fn is_out_of_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogEnd, PwriteDevice, read_log, test_txn as txn};

    #[test]
    fn batches_land_in_one_file_until_rolled() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::new(dir.path(), Box::new(PwriteDevice), 64 * 1024, true, 0);
        writer.append(&[txn(1), txn(2)]).unwrap();
        writer.append(&[txn(3)]).unwrap();
        writer.roll();
        writer.append(&[txn(4)]).unwrap();
        let first = read_log(&dir.path().join("log.1")).unwrap();
        assert_eq!(first.records.len(), 3);
        assert_eq!(first.file_len, 16 + 64 * 1024, "padded as ZooKeeper pads");
        assert!(matches!(first.end, LogEnd::Clean { .. }));
        assert_eq!(read_log(&dir.path().join("log.4")).unwrap().records.len(), 1);
    }

    #[test]
    fn without_preallocation_the_file_holds_only_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::new(dir.path(), Box::new(PwriteDevice), 0, false, 0);
        writer.append(&[txn(1), txn(2)]).unwrap();
        writer.append(&[txn(3)]).unwrap();
        let log = read_log(&dir.path().join("log.1")).unwrap();
        assert_eq!(log.records.len(), 3);
        assert_eq!(log.end, LogEnd::Clean { offset: log.file_len }, "the file ends after the last record");
    }

    #[test]
    fn a_file_left_empty_by_a_crash_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log.5"), vec![0u8; 100]).unwrap();
        let mut writer = LogWriter::new(dir.path(), Box::new(PwriteDevice), 4096, true, 4);
        writer.append(&[txn(5)]).unwrap();
        assert_eq!(read_log(&dir.path().join("log.5")).unwrap().records.len(), 1);
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn zxids_must_increase() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::new(dir.path(), Box::new(PwriteDevice), 4096, false, 10);
        let _ = writer.append(&[txn(10)]);
    }

    /// Writes the first half of one batch's bytes and then fails, as a full disk or a failing fsync
    /// would; works normally otherwise.
    struct FailOnce {
        fail_at_batch: usize,
        batches: usize,
    }

    impl LogDevice for FailOnce {
        fn write_and_sync(&mut self, file: &dyn FsFile, bytes: &[u8], offset: u64, sync: bool) -> io::Result<()> {
            self.batches += 1;
            if self.batches == self.fail_at_batch {
                file.write_at(&bytes[..bytes.len() / 2], offset)?;
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            PwriteDevice.write_and_sync(file, bytes, offset, sync)
        }

        fn name(&self) -> &'static str {
            "fail-once"
        }
    }

    #[test]
    fn a_failed_append_is_rewound_to_the_last_durable_batch() {
        let dir = tempfile::tempdir().unwrap();
        // Batch 1 is the header, 2 the first txns, 3 fails half-written.
        let device = FailOnce { fail_at_batch: 3, batches: 0 };
        let mut writer = LogWriter::new(dir.path(), Box::new(device), 0, true, 0);
        writer.append(&[txn(1), txn(2)]).unwrap();
        assert!(writer.append(&[txn(3), txn(4), txn(5)]).is_err());
        writer.rewind().unwrap();
        // The same zxids again (a leader's resynchronisation), then more.
        writer.append(&[txn(3)]).unwrap();
        writer.append(&[txn(4), txn(5), txn(6)]).unwrap();
        let log = read_log(&dir.path().join("log.1")).unwrap();
        let zxids: Vec<i64> = log.records.iter().map(|r| r.txn.header.zxid).collect();
        assert_eq!(zxids, [1, 2, 3, 4, 5, 6]);
        assert!(matches!(log.end, LogEnd::Clean { .. }), "{:?}", log.end);
    }

    #[test]
    #[should_panic(expected = "without rewind")]
    fn appending_after_a_failure_without_rewinding_is_a_bug() {
        let dir = tempfile::tempdir().unwrap();
        let device = FailOnce { fail_at_batch: 2, batches: 0 };
        let mut writer = LogWriter::new(dir.path(), Box::new(device), 0, true, 0);
        assert!(writer.append(&[txn(1)]).is_err());
        let _ = writer.append(&[txn(1)]);
    }
}
