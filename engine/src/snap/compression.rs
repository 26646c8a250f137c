//! Compressed snapshots, as ZooKeeper 3.6+ writes them (`SnapStream`): the same bytes as an uncompressed
//! snapshot (seals included, computed over the uncompressed content) through gzip or snappy-java's
//! framing, in a file named `snapshot.<zxid>.gz` or `snapshot.<zxid>.snappy`. The operator picks the
//! method for writing (`snapshot.compression.method`); a reader tells it by the file name, so a data
//! directory may hold all three kinds.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use flate2::write::GzEncoder;

use super::xerial::{self, SnappyJavaWriter};
use crate::files::{SNAPSHOT_PREFIX, file_name};
use crate::fs::FsWriter;

/// gzip's magic, ZooKeeper's validity check for a `.gz` snapshot.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How a snapshot file is compressed (ZooKeeper's `SnapStream.StreamMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// ZooKeeper's "CHECKED": no compression, no suffix.
    #[default]
    None,
    Gzip,
    Snappy,
}

impl Compression {
    /// The value of `snapshot.compression.method`: empty, `gz` or `snappy`, in any case (as ZooKeeper
    /// compares them); `None` for anything else.
    pub fn from_method(method: &str) -> Option<Compression> {
        [Compression::None, Compression::Gzip, Compression::Snappy]
            .into_iter()
            .find(|c| c.method().eq_ignore_ascii_case(method.trim()))
    }

    /// The name `snapshot.compression.method` gives it.
    pub fn method(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "gz",
            Compression::Snappy => "snappy",
        }
    }

    /// The method of the file `path`, from the text after its last dot, as ZooKeeper tells it.
    pub fn of_file(path: &Path) -> Compression {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Compression::from_method)
            .filter(|c| *c != Compression::None)
            .unwrap_or(Compression::None)
    }

    /// `snapshot.<hex zxid>` with this method's suffix.
    pub fn snapshot_name(self, zxid: i64) -> String {
        match self {
            Compression::None => file_name(SNAPSHOT_PREFIX, zxid),
            other => format!("{}.{}", file_name(SNAPSHOT_PREFIX, zxid), other.method()),
        }
    }

    /// Whether a compressed file starts as its method's streams start (ZooKeeper's check before it
    /// tries one); the uncompressed kind is checked by its trailer instead.
    pub(super) fn has_magic(self, head: &[u8]) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => head.starts_with(&GZIP_MAGIC),
            Compression::Snappy => xerial::has_magic(head),
        }
    }

    /// The uncompressed content of a compressed file's `bytes`.
    pub(super) fn decompress(self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Compression::None => Ok(bytes.to_vec()),
            Compression::Gzip => {
                let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
                let mut rest = bytes;
                // Java's GZIPInputStream reads concatenated members too.
                let read = flate2::bufread::MultiGzDecoder::new(&mut rest).read_to_end(&mut out);
                read.map_err(|e| format!("gzip stream at offset {}: {e}", bytes.len() - rest.len()))?;
                Ok(out)
            }
            Compression::Snappy => xerial::decode(bytes).map_err(|e| format!("snappy-java stream {e}")),
        }
    }
}

/// The file end of a snapshot writer: buffered, and compressed as asked.
pub(super) enum FileSink {
    Plain(BufWriter<FsWriter>),
    Gzip(GzEncoder<BufWriter<FsWriter>>),
    /// Boxed: the encoder keeps its hash table inline (2 KiB).
    Snappy(Box<SnappyJavaWriter<BufWriter<FsWriter>>>),
}

impl FileSink {
    pub(super) fn new(file: FsWriter, buffer_bytes: usize, compression: Compression) -> io::Result<FileSink> {
        let buffered = BufWriter::with_capacity(buffer_bytes, file);
        Ok(match compression {
            Compression::None => FileSink::Plain(buffered),
            // Level 6, as Java's Deflater by default.
            Compression::Gzip => FileSink::Gzip(GzEncoder::new(buffered, flate2::Compression::default())),
            Compression::Snappy => FileSink::Snappy(Box::new(SnappyJavaWriter::new(buffered)?)),
        })
    }

    /// Ends the stream (gzip trailer, last chunk) and hands the file back, flushed but not synced.
    pub(super) fn finish(self) -> io::Result<FsWriter> {
        let buffered = match self {
            FileSink::Plain(b) => b,
            FileSink::Gzip(g) => g.finish()?,
            FileSink::Snappy(s) => s.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            FileSink::Plain(w) => w.write(buf),
            FileSink::Gzip(w) => w.write(buf),
            FileSink::Snappy(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            FileSink::Plain(w) => w.flush(),
            FileSink::Gzip(w) => w.flush(),
            FileSink::Snappy(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_names_as_zookeeper_spells_them() {
        assert_eq!(Compression::from_method("GZ"), Some(Compression::Gzip));
        assert_eq!(Compression::from_method("snappy"), Some(Compression::Snappy));
        assert_eq!(Compression::from_method(""), Some(Compression::None));
        assert_eq!(Compression::from_method("lz4"), None);
        assert_eq!(Compression::Gzip.snapshot_name(0x1b), "snapshot.1b.gz");
        assert_eq!(Compression::Snappy.snapshot_name(0), "snapshot.0.snappy");
        assert_eq!(Compression::None.snapshot_name(0x1b), "snapshot.1b");
        assert_eq!(Compression::of_file(Path::new("v/snapshot.1b.gz")), Compression::Gzip);
        assert_eq!(Compression::of_file(Path::new("v/snapshot.1b.snappy")), Compression::Snappy);
        assert_eq!(Compression::of_file(Path::new("v/snapshot.1b")), Compression::None);
    }
}
