//! Loads a snapshot by mapping it and decoding straight from the mapping.

use std::path::{Path, PathBuf};

use fk_net::client::{Acl, StatPersisted};
use fk_net::jute::{Jute, JuteReader};
use thiserror::Error;

use super::compression::Compression;
use super::format::{END_PATH, FORMAT_VERSION, SNAP_MAGIC, TRAILER};
use crate::fs::{Fs, RealFs};
use crate::tree::{DataTree, LoadCursor, Node, TreeOptions};

#[derive(Debug, Error)]
pub enum SnapError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// Offsets count bytes of the content: of the decompressed stream in a compressed file.
    #[error("{path}: checksum mismatch at offset {offset}{of}: stored 0x{stored:x}, computed 0x{computed:x}")]
    Checksum { path: PathBuf, offset: usize, of: &'static str, stored: u64, computed: u32 },
    #[error("{path}: {reason}")]
    Decompress { path: PathBuf, reason: String },
}

/// How offsets in a compressed file's errors are told apart from file offsets.
const OF_CONTENT: &str = " of the decompressed content";

/// What a snapshot held beyond the tree itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub nodes: usize,
    /// The ZxidDigest record (3.6+ snapshots): the tree digest as of that zxid, which may exceed the
    /// name's zxid (fuzziness).
    pub digest: Option<(i64, u64)>,
    /// The 3.9+ trailer: lastProcessedZxid at the end of serialization.
    pub last_processed_zxid: Option<i64>,
}

/// ZooKeeper's cheap validity check before it tries a snapshot: a compressed file starts with its
/// method's magic; an uncompressed one is big enough and ends in the ustring "/".
pub fn looks_complete(path: &Path) -> bool {
    looks_complete_in(&RealFs, path)
}

/// [`looks_complete`] on `fs`.
pub fn looks_complete_in(fs: &dyn Fs, path: &Path) -> bool {
    let Ok(bytes) = fs.read(path) else { return false };
    let compression = Compression::of_file(path);
    if compression != Compression::None {
        return compression.has_magic(&bytes[..bytes.len().min(8)]);
    }
    bytes.len() >= 10 && bytes[bytes.len() - TRAILER.len()..] == TRAILER[..]
}

/// Loads `path` into a fresh tree. The tree's last processed zxid is `name_zxid`, or the 3.9 trailer's
/// value when present, as ZooKeeper does. A compressed file (told by its name) is decompressed into
/// memory first; an uncompressed one is decoded straight from a memory map.
pub fn load_snapshot(path: &Path, name_zxid: i64, options: TreeOptions) -> Result<(DataTree, SnapshotInfo), SnapError> {
    load_snapshot_in(&RealFs, path, name_zxid, options)
}

/// [`load_snapshot`] on `fs`.
pub fn load_snapshot_in(
    fs: &dyn Fs,
    path: &Path,
    name_zxid: i64,
    options: TreeOptions,
) -> Result<(DataTree, SnapshotInfo), SnapError> {
    // Read whole up front: the kernel reads the file in large sequential chunks instead of one page
    // fault per 4 KiB while decoding.
    let map = fs.read_whole(path).map_err(|source| SnapError::Io { path: path.to_owned(), source })?;
    match Compression::of_file(path) {
        Compression::None => decode(path, &map, "", name_zxid, options),
        compression => {
            let content = compression
                .decompress(&map)
                .map_err(|reason| SnapError::Decompress { path: path.to_owned(), reason })?;
            drop(map);
            decode(path, &content, OF_CONTENT, name_zxid, options)
        }
    }
}

/// Decodes a snapshot's uncompressed content; `of` qualifies offsets in errors.
fn decode(
    path: &Path,
    bytes: &[u8],
    of: &'static str,
    name_zxid: i64,
    options: TreeOptions,
) -> Result<(DataTree, SnapshotInfo), SnapError> {
    let mut decoder =
        Decoder { path, bytes, of, r: JuteReader::new(bytes), adler: simd_adler32::Adler32::new(), summed: 0 };
    let mut tree = DataTree::for_loading(options);
    decoder.header()?;
    decoder.sessions(&mut tree)?;
    decoder.acl_cache(&mut tree)?;
    let nodes = decoder.nodes(&mut tree)?;
    decoder.seal()?;
    let digest = decoder.optional_digest()?;
    let last_processed_zxid = if digest.is_some() { decoder.optional_last_zxid()? } else { None };
    tree.finish_loading();
    tree.set_last_processed_zxid(last_processed_zxid.unwrap_or(name_zxid));
    Ok((tree, SnapshotInfo { nodes, digest, last_processed_zxid }))
}

struct Decoder<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    /// Appended to offsets in errors: "" for a file's own bytes.
    of: &'static str,
    r: JuteReader<'a>,
    adler: simd_adler32::Adler32,
    /// Bytes already added to the running checksum.
    summed: usize,
}

impl Decoder<'_> {
    fn invalid(&self, reason: impl std::fmt::Display) -> SnapError {
        SnapError::Invalid {
            path: self.path.to_owned(),
            reason: format!("at offset {}{}: {reason}", self.r.position(), self.of),
        }
    }

    fn header(&mut self) -> Result<(), SnapError> {
        let magic = self.r.read_i32().map_err(|e| self.invalid(e))?;
        let version = self.r.read_i32().map_err(|e| self.invalid(e))?;
        self.r.read_i64().map_err(|e| self.invalid(e))?;
        if magic != SNAP_MAGIC {
            return Err(self.invalid(format!("magic 0x{magic:08x} is not a snapshot's (0x{SNAP_MAGIC:08x})")));
        }
        if version != FORMAT_VERSION {
            return Err(self.invalid(format!("format version {version}, expected {FORMAT_VERSION}")));
        }
        Ok(())
    }

    fn sessions(&mut self, tree: &mut DataTree) -> Result<(), SnapError> {
        let count = self.r.read_count(12).map_err(|e| self.invalid(e))?.unwrap_or(0);
        for _ in 0..count {
            let id = self.r.read_i64().map_err(|e| self.invalid(e))?;
            let timeout = self.r.read_i32().map_err(|e| self.invalid(e))?;
            tree.add_session(id, timeout);
        }
        Ok(())
    }

    fn acl_cache(&mut self, tree: &mut DataTree) -> Result<(), SnapError> {
        let count = self.r.read_count(12).map_err(|e| self.invalid(e))?.unwrap_or(0);
        for _ in 0..count {
            let index = self.r.read_i64().map_err(|e| self.invalid(e))?;
            let acl = Vec::<Acl>::decode(&mut self.r).map_err(|e| self.invalid(e))?;
            tree.acl_cache_mut().insert_with_id(index, acl);
        }
        Ok(())
    }

    fn nodes(&mut self, tree: &mut DataTree) -> Result<usize, SnapError> {
        let mut count = 0;
        let mut cursor = LoadCursor::default();
        loop {
            let path = self.r.read_ustring().map_err(|e| self.invalid(e))?.unwrap_or_default();
            if path == END_PATH {
                tree.end_load(cursor);
                return Ok(count);
            }
            let data = self.r.read_buffer().map_err(|e| self.invalid(e))?.map(Box::from);
            let acl = self.r.read_i64().map_err(|e| self.invalid(e))?;
            let stat = StatPersisted::decode(&mut self.r).map_err(|e| self.invalid(e))?;
            if acl != crate::tree::OPEN_ACL_ID && !tree.acl_cache().contains(acl) {
                return Err(self.invalid(format!("node {path:?} refers to ACL index {acl}, which the snapshot lacks")));
            }
            let tree_path = if path.is_empty() { "/" } else { path };
            // Checked before the seal's checksum can be: a damaged length or byte must not reach the tree.
            if !tree_path.starts_with('/') {
                return Err(self.invalid(format!("node path {path:?} does not start with \"/\"")));
            }
            tree.load_node(Node::new(tree_path, data, acl, stat), &mut cursor)
                .map_err(|_| self.invalid(format!("node {path:?} comes before its parent")))?;
            count += 1;
        }
    }

    /// Checks a seal: the stored checksum covers every byte before it; then reads the "/" after it.
    fn seal(&mut self) -> Result<(), SnapError> {
        let seal_at = self.r.position();
        self.adler.write(&self.bytes[self.summed..seal_at]);
        self.summed = seal_at;
        let stored = self.r.read_i64().map_err(|e| self.invalid(e))? as u64;
        let computed = self.adler.finish();
        if stored != computed as u64 {
            let path = self.path.to_owned();
            return Err(SnapError::Checksum { path, offset: seal_at, of: self.of, stored, computed });
        }
        match self.r.read_ustring().map_err(|e| self.invalid(e))? {
            Some(END_PATH) => Ok(()),
            other => Err(self.invalid(format!("expected \"/\" after the checksum, found {other:?}"))),
        }
    }

    /// The 3.6+ ZxidDigest and its seal, if present (end of file means an older snapshot). Zxid 0 is
    /// ZooKeeper's "no digest yet".
    fn optional_digest(&mut self) -> Result<Option<(i64, u64)>, SnapError> {
        if self.r.is_empty() {
            return Ok(None);
        }
        let zxid = self.r.read_i64().map_err(|e| self.invalid(e))?;
        let version = self.r.read_i32().map_err(|e| self.invalid(e))?;
        let digest = if version >= 2 {
            Some(self.r.read_i64().map_err(|e| self.invalid(e))? as u64)
        } else {
            self.r.read_ustring().map_err(|e| self.invalid(e))?;
            None
        };
        self.seal()?;
        Ok(Some((zxid, digest.filter(|_| zxid != 0).unwrap_or(0))))
    }

    fn optional_last_zxid(&mut self) -> Result<Option<i64>, SnapError> {
        if self.r.is_empty() {
            return Ok(None);
        }
        let zxid = self.r.read_i64().map_err(|e| self.invalid(e))?;
        self.seal()?;
        Ok(Some(zxid))
    }
}
