//! How a batch reaches the disk: a write followed by fdatasync, as one linked io_uring submission where the
//! kernel allows it, or `pwrite` + `fdatasync` otherwise. Chosen once at start-up.

use std::io;

use crate::fs::FsFile;

/// Writes a batch at an offset and, if asked, makes it durable before returning.
pub trait LogDevice: Send {
    fn write_and_sync(&mut self, file: &dyn FsFile, bytes: &[u8], offset: u64, sync: bool) -> io::Result<()>;
    /// For the start-up log line.
    fn name(&self) -> &'static str;
}

/// `pwrite` (looping over short writes) and `fdatasync`.
pub struct PwriteDevice;

impl LogDevice for PwriteDevice {
    fn write_and_sync(&mut self, file: &dyn FsFile, bytes: &[u8], offset: u64, sync: bool) -> io::Result<()> {
        file.write_at(bytes, offset)?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "pwrite + fdatasync"
    }
}

/// io_uring: the write and the fdatasync are linked in one submission, so one system call carries both
/// and the sync cannot start before the write has completed.
pub struct UringDevice {
    ring: io_uring::IoUring,
}

const WRITE_TAG: u64 = 1;
const SYNC_TAG: u64 = 2;

impl UringDevice {
    /// Fails where the kernel (or a seccomp policy) does not allow io_uring.
    pub fn new() -> io::Result<UringDevice> {
        let mut ring = io_uring::IoUring::new(4)?;
        // A no-op round trip: some sandboxes allow io_uring_setup but refuse submissions.
        let nop = io_uring::opcode::Nop::new().build().user_data(0);
        // SAFETY: a NOP references no memory.
        unsafe { ring.submission().push(&nop) }.map_err(|_| io::Error::other("io_uring queue full"))?;
        ring.submit_and_wait(1)?;
        ring.completion().for_each(drop);
        Ok(UringDevice { ring })
    }

    fn write_once(&mut self, fd: i32, bytes: &[u8], offset: u64, sync: bool) -> io::Result<usize> {
        use io_uring::{opcode, squeue, types};
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let write = opcode::Write::new(types::Fd(fd), bytes.as_ptr(), len).offset(offset).build().user_data(WRITE_TAG);
        let sync_entry =
            opcode::Fsync::new(types::Fd(fd)).flags(types::FsyncFlags::DATASYNC).build().user_data(SYNC_TAG);
        let expected = if sync { 2 } else { 1 };
        // SAFETY: `bytes` outlives the submission: we wait for both completions before returning.
        unsafe {
            let mut sq = self.ring.submission();
            if sync {
                sq.push(&write.flags(squeue::Flags::IO_LINK)).map_err(|_| io::Error::other("io_uring queue full"))?;
                sq.push(&sync_entry).map_err(|_| io::Error::other("io_uring queue full"))?;
            } else {
                sq.push(&write).map_err(|_| io::Error::other("io_uring queue full"))?;
            }
        }
        let mut written = None;
        let mut sync_result = Ok(());
        let mut completed = 0;
        // io_uring_enter may come back before the completions are in — a signal, or the process being
        // stopped and continued, ends the wait once the entries are submitted — so wait until both are
        // in; returning early would free `bytes` under the kernel.
        while completed < expected {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for cqe in self.ring.completion() {
                completed += 1;
                let result = cqe.result();
                match cqe.user_data() {
                    WRITE_TAG if result < 0 => written = Some(Err(io::Error::from_raw_os_error(-result))),
                    WRITE_TAG => written = Some(Ok(result as usize)),
                    // A short write cancels the linked sync (ECANCELED); the caller retries both.
                    SYNC_TAG if result < 0 && result != -libc::ECANCELED => {
                        sync_result = Err(io::Error::from_raw_os_error(-result))
                    }
                    _ => {}
                }
            }
        }
        sync_result?;
        written.unwrap_or_else(|| Err(io::Error::other("io_uring returned no write completion")))
    }
}

impl LogDevice for UringDevice {
    fn write_and_sync(&mut self, file: &dyn FsFile, bytes: &[u8], offset: u64, sync: bool) -> io::Result<()> {
        // A file without a descriptor (a simulated one) is written as pwrite would.
        let Some(fd) = file.raw_fd() else { return PwriteDevice.write_and_sync(file, bytes, offset, sync) };
        let mut done = 0;
        while done < bytes.len() {
            let n = self.write_once(fd, &bytes[done..], offset + done as u64, sync)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "io_uring wrote 0 bytes"));
            }
            done += n;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "io_uring (linked write + fdatasync)"
    }
}

/// io_uring if it works here, else pwrite; the reason for a fallback is returned for the log.
pub fn best_available() -> (Box<dyn LogDevice>, Option<String>) {
    match UringDevice::new() {
        Ok(device) => (Box::new(device), None),
        Err(e) => (Box::new(PwriteDevice), Some(format!("io_uring unavailable ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(device: &mut dyn LogDevice) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        device.write_and_sync(&file, b"hello", 0, true).unwrap();
        device.write_and_sync(&file, b" world", 5, false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    }

    #[test]
    fn both_devices_write_where_asked() {
        round_trip(&mut PwriteDevice);
        if let Ok(mut uring) = UringDevice::new() {
            round_trip(&mut uring);
        }
    }
}
