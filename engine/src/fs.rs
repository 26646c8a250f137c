//! The file operations of the txn log and of recovery, behind a small trait so the same code runs on a
//! simulated filesystem that loses, tears and damages what it holds (tests/src/sim/fs.rs). Production
//! uses [`RealFs`]: `std::fs`, mmap for reading, `fallocate` for preallocation, and the file's descriptor
//! for io_uring.
//!
//! What callers may rely on is what a POSIX filesystem promises, no more: a write is durable only once
//! a `sync_data` of its file returned Ok after it; a created, renamed or removed name only once its
//! directory's `sync_dir` returned Ok; after a failed `sync_data`, nothing written since the last good
//! one may be trusted, even if a later `sync_data` succeeds (the kernel may have dropped those pages).

use std::io;
use std::os::unix::io::RawFd;
use std::path::{Path, PathBuf};

/// A file's whole contents, mapped or read.
pub enum Contents {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Contents {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::ops::Deref for Contents {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Contents::Mapped(map) => map,
            Contents::Owned(bytes) => bytes,
        }
    }
}

/// A filesystem, as the log and recovery use one.
pub trait Fs: Send + Sync {
    /// The paths in `dir` (any order); `NotFound` if there is no such directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Everything `path` holds now, read as it is used.
    fn read(&self, path: &Path) -> io::Result<Contents>;
    /// Everything `path` holds now, about to be read whole: a real file's pages are faulted in at once
    /// (a snapshot loads faster so).
    fn read_whole(&self, path: &Path) -> io::Result<Contents> {
        self.read(path)
    }
    /// Opens `path` for writing; with `create`, creates it or cuts it to nothing.
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn FsFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the names in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// A file open for writing.
pub trait FsFile: Send {
    fn write_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Cuts or extends (with zeros) the file to `len`, and makes that durable.
    fn set_len_durably(&self, len: u64) -> io::Result<()>;
    /// Grows the file from `from` to `to` with zeros, allocating blocks where the filesystem can.
    fn allocate(&self, from: u64, to: u64) -> io::Result<()>;
    /// The descriptor, where there is one (io_uring needs it).
    fn raw_fd(&self) -> Option<RawFd>;
}

/// The operating system's filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl Fs for RealFs {
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?.map(|entry| entry.map(|e| e.path())).collect()
    }

    fn read(&self, path: &Path) -> io::Result<Contents> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Contents::Owned(Vec::new()));
        }
        // SAFETY: logs are only appended to by this process (and only after recovery has finished); a
        // concurrent truncation by another process would be an operator error we cannot guard against.
        Ok(Contents::Mapped(unsafe { memmap2::Mmap::map(&file) }?))
    }

    fn read_whole(&self, path: &Path) -> io::Result<Contents> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Contents::Owned(Vec::new()));
        }
        // SAFETY: snapshots are written once under a temporary name and renamed into place; nothing
        // writes a file of that name while it is mapped.
        Ok(Contents::Mapped(unsafe { memmap2::MmapOptions::new().populate().map(&file) }?))
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn FsFile>> {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(create).truncate(create).open(path)?;
        Ok(Box::new(file))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

impl FsFile for std::fs::File {
    fn write_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, bytes, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }

    fn set_len_durably(&self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        self.sync_all()
    }

    fn allocate(&self, from: u64, to: u64) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;
        if to <= from {
            return Ok(());
        }
        // SAFETY: fallocate only touches the file behind the descriptor we own.
        let rc = unsafe { libc::fallocate(self.as_raw_fd(), 0, from as libc::off_t, (to - from) as libc::off_t) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => self.set_len(to),
            _ => Err(err),
        }
    }

    fn raw_fd(&self) -> Option<RawFd> {
        use std::os::unix::io::AsRawFd;
        Some(self.as_raw_fd())
    }
}

/// `io::Write` over an [`FsFile`], from its start: for files written once, front to back (snapshots).
pub struct FsWriter {
    file: Box<dyn FsFile>,
    offset: u64,
}

impl FsWriter {
    pub fn new(file: Box<dyn FsFile>) -> FsWriter {
        FsWriter { file, offset: 0 }
    }

    /// The file, to sync.
    pub fn file(&self) -> &dyn FsFile {
        self.file.as_ref()
    }
}

impl io::Write for FsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_at(buf, self.offset)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
