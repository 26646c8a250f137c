//! A snapshot sent over the quorum port for SNAP sync, and received straight into a snapshot file.
//!
//! # Layout on the wire
//! After `QuorumPacket{type=SNAP, zxid}` the leader writes, with no packet around it and no length
//! prefix, the body of a snapshot followed by a signature (ZooKeeper 3.8 `LearnerHandler.syncFollower`:
//! `ZKDatabase.serializeSnapshot(oa)` then `oa.writeString("BenWasHere", "signature")`):
//!
//! ```text
//! sessions     count (int), then (session id (long), timeout ms (int)) × count
//! ACL cache    count (int), then (index (long), vector<ACL>) × count
//! nodes        (path (ustring), data (buffer), acl index (long), StatPersisted) in pre-order;
//!              the root is written with path ""
//! end          path "/" with no node after it
//! signature    ustring "BenWasHere"
//! ```
//! These are items 2–6 of the snapshot file (reference/on-disk.md §4) — no FileHeader, no seals, no
//! digest — so [`send_snapshot`] writes them with the same code as the file writer, and
//! [`receive_snapshot`] turns them back into a file by adding the FileHeader before and seal #1 after:
//! items 1–7, which every ZooKeeper 3.x loads. The learner's copy carries no digest record: the digest
//! is not on the wire, and a record for a zxid the leader did not vouch for would be a guess.
//!
//! Nothing after the signature belongs to the snapshot: the leader goes on with NEWLEADER and the queued
//! proposals on the same stream. So the receiver reads exactly the snapshot's bytes and not one more;
//! it is meant to be given the connection's buffered reader, which keeps what follows.
//!
//! Offsets in [`StreamError`] count bytes from the first byte after the SNAP packet.

use std::collections::HashSet;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fk_net::jute::JuteWriter;
use thiserror::Error;

use super::format::END_PATH;
use super::writer::{Checked, IO_BUFFER_BYTES, TreeAccess, file_header, seal, walk_nodes, write_body};
use crate::files::{SNAPSHOT_PREFIX, file_name};
use crate::fs::{Fs, FsWriter, RealFs};
use crate::tree::OPEN_ACL_ID;

/// The string that ends a SNAP stream (`Learner.syncWithLeader` refuses the sync without it).
pub const SIGNATURE: &str = "BenWasHere";

/// Bytes of a `StatPersisted`: czxid, mzxid, ctime, mtime (longs), version, cversion, aversion (ints),
/// ephemeralOwner, pzxid (longs).
const STAT_PERSISTED_BYTES: usize = 4 * 8 + 3 * 4 + 2 * 8;

/// Bytes moved per read when a node's data is copied from the stream to the file: the receiver's
/// memory does not grow with the data, only with the longest path.
const COPY_CHUNK_BYTES: usize = 64 * 1024;

/// Found signatures are quoted in errors up to this many characters.
const QUOTE_CHARS_MAX: usize = 64;

/// What [`send_snapshot`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    /// The last zxid applied when the walk began. The SNAP packet sent before the stream must carry a
    /// zxid no greater than this (read before calling), so that replaying the proposals after the
    /// packet's zxid over the fuzzy body yields the leader's state.
    pub zxid: i64,
    pub sessions: usize,
    pub acl_lists: usize,
    pub nodes: usize,
    /// Bytes written to `out`, signature included.
    pub bytes: u64,
}

/// Side files of concurrent sends (one per syncing learner) must not collide.
static SIDE_FILE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes the SNAP stream's body and signature to `out`, reading the tree fuzzily in short holds of its
/// lock (as [`super::write_snapshot`]). The nodes go to a dot-prefixed side file in `scratch_dir` first,
/// because the ACL lists they use precede them on the wire; the file is removed before returning.
pub fn send_snapshot(tree: &impl TreeAccess, scratch_dir: &Path, out: &mut impl Write) -> io::Result<StreamStats> {
    let (zxid, sessions) = tree.read(|t| (t.last_processed_zxid(), t.sessions().collect::<Vec<_>>()));
    let seq = SIDE_FILE_SEQ.fetch_add(1, Ordering::Relaxed);
    // Dot-prefixed so that neither we nor ZooKeeper ever mistake it for a snapshot.
    let nodes_path = scratch_dir.join(format!(".snap-stream.{}.{seq}.nodes", std::process::id()));
    let result = stream_body(tree, &nodes_path, &sessions, out);
    let _ = std::fs::remove_file(&nodes_path);
    let (nodes, acl_lists, bytes) = result?;
    Ok(StreamStats { zxid, sessions: sessions.len(), acl_lists, nodes, bytes })
}

/// Walks the tree into the side file, then copies sessions, ACL lists, nodes and signature to `out`.
fn stream_body(
    tree: &impl TreeAccess,
    nodes_path: &Path,
    sessions: &[(i64, i32)],
    out: &mut impl Write,
) -> io::Result<(usize, usize, u64)> {
    let side = OpenOptions::new().read(true).write(true).create_new(true).open(nodes_path)?;
    let mut side_out = BufWriter::with_capacity(IO_BUFFER_BYTES, &side);
    let (nodes, acls) = walk_nodes(tree, &mut side_out)?;
    side_out.flush()?;
    drop(side_out);
    (&side).seek(SeekFrom::Start(0))?;
    let mut counted = Counting { inner: out, written: 0 };
    write_body(&mut counted, sessions, &acls, &mut BufReader::with_capacity(IO_BUFFER_BYTES, &side))?;
    let mut signature = Vec::new();
    signature.put_ustring(Some(SIGNATURE));
    counted.write_all(&signature)?;
    counted.flush()?;
    Ok((nodes, acls.len(), counted.written))
}

/// Counts the bytes written through it.
struct Counting<'a, W> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A field of the stream, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamItem {
    SessionCount,
    Session,
    AclCacheCount,
    AclCacheIndex,
    AclList,
    AclPerms,
    AclScheme,
    AclId,
    NodePath,
    NodeData,
    NodeAclIndex,
    NodeStat,
    Signature,
}

impl fmt::Display for StreamItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamItem::SessionCount => "the session count",
            StreamItem::Session => "a session record",
            StreamItem::AclCacheCount => "the ACL cache size",
            StreamItem::AclCacheIndex => "an ACL cache index",
            StreamItem::AclList => "an ACL list",
            StreamItem::AclPerms => "an ACL's perms",
            StreamItem::AclScheme => "an ACL's scheme",
            StreamItem::AclId => "an ACL's id",
            StreamItem::NodePath => "a node path",
            StreamItem::NodeData => "a node's data",
            StreamItem::NodeAclIndex => "a node's ACL index",
            StreamItem::NodeStat => "a node's stat",
            StreamItem::Signature => "the signature",
        })
    }
}

/// Why a SNAP stream was refused. Offsets count from the first byte after the SNAP packet.
#[derive(Debug, Error)]
pub enum StreamError {
    #[error("the snapshot stream ended after {received} bytes, inside {item} starting at byte {offset}")]
    Truncated { item: StreamItem, offset: u64, received: u64 },
    #[error("reading {item} at byte {offset} of the snapshot stream: {source}")]
    Read { item: StreamItem, offset: u64, source: io::Error },
    #[error("{item} at byte {offset} has length {length}, beyond jute.maxbuffer ({max_buffer})")]
    TooLong { item: StreamItem, offset: u64, length: i32, max_buffer: usize },
    #[error("{item} at byte {offset} has the invalid length {length}")]
    NegativeLength { item: StreamItem, offset: u64, length: i32 },
    #[error("{item} at byte {offset} is null")]
    Null { item: StreamItem, offset: u64 },
    #[error("the node path at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: u64 },
    #[error("node {path:?} at byte {offset} {reason}")]
    Misplaced { path: String, offset: u64, reason: &'static str },
    #[error("node {path:?} at byte {offset} refers to ACL index {index}, which the stream's ACL cache lacks")]
    UnknownAcl { path: String, offset: u64, index: i64 },
    #[error("expected the signature {SIGNATURE:?} at byte {offset}, found {found:?}")]
    BadSignature { offset: u64, found: Option<String> },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Receives a SNAP stream (everything after the SNAP packet) into `dir`/`snapshot.<zxid>`, where `dir`
/// is the `version-2` directory and `zxid` the SNAP packet's. The stream is parsed as it arrives:
/// every length is checked against `max_buffer` (the reader's jute.maxbuffer, plus ZooKeeper's extra
/// allowance if it is to be matched) before anything is read for it, and the bytes go to
/// `.snapshot.<zxid>.tmp` as they are checked. Memory holds one field (at most `max_buffer` bytes), the
/// chain of ancestors of the current node, and the ACL cache's indexes — never the data. The file is renamed into place only
/// after the signature is seen (and fsynced first, with the directory after, if `force_sync`); on any
/// error nothing named `snapshot.*` is left behind.
pub fn receive_snapshot(
    input: &mut impl Read,
    dir: &Path,
    zxid: i64,
    max_buffer: usize,
    force_sync: bool,
) -> Result<PathBuf, StreamError> {
    receive_snapshot_in(&RealFs, input, dir, zxid, max_buffer, force_sync)
}

/// [`receive_snapshot`] on `fs`.
pub fn receive_snapshot_in(
    fs: &dyn Fs,
    input: &mut impl Read,
    dir: &Path,
    zxid: i64,
    max_buffer: usize,
    force_sync: bool,
) -> Result<PathBuf, StreamError> {
    let name = file_name(SNAPSHOT_PREFIX, zxid);
    let final_path = dir.join(&name);
    let tmp_path = dir.join(format!(".{name}.tmp"));
    let result = receive_into(fs, input, &tmp_path, max_buffer, force_sync).and_then(|()| {
        fs.rename(&tmp_path, &final_path).map_err(|source| write_error(&final_path, source))?;
        if force_sync && let Err(source) = fs.sync_dir(dir) {
            // The rename may not survive a crash; do not let the caller build on it.
            let _ = fs.remove(&final_path);
            return Err(write_error(dir, source));
        }
        Ok(final_path)
    });
    if result.is_err() {
        let _ = fs.remove(&tmp_path);
    }
    result
}

fn write_error(path: &Path, source: io::Error) -> StreamError {
    StreamError::Write { path: path.to_owned(), source }
}

/// Writes FileHeader, the checked body and seal #1 to `tmp_path`.
fn receive_into(
    fs: &dyn Fs,
    input: &mut impl Read,
    tmp_path: &Path,
    max_buffer: usize,
    force_sync: bool,
) -> Result<(), StreamError> {
    let file = FsWriter::new(fs.open(tmp_path, true).map_err(|e| write_error(tmp_path, e))?);
    // The buffer sits outside the checksum, so the Adler32 runs over large blocks, not jute fields.
    let mut out = BufWriter::with_capacity(IO_BUFFER_BYTES, Checked::new(file));
    out.write_all(&file_header()).map_err(|e| write_error(tmp_path, e))?;
    let mut body = BodyReader { input, out, out_path: tmp_path, offset: 0, max_buffer, scratch: Vec::new() };
    body.sessions()?;
    let acl_ids = body.acl_cache()?;
    body.nodes(&acl_ids)?;
    body.signature()?;
    let mut checked = body.out.into_inner().map_err(|e| write_error(tmp_path, e.into_error()))?;
    seal(&mut checked).map_err(|e| write_error(tmp_path, e))?;
    if force_sync {
        checked.inner.file().sync_data().map_err(|e| write_error(tmp_path, e))?;
    }
    Ok(())
}

/// Reads the stream field by field, copying each checked field to the file.
struct BodyReader<'a, R> {
    input: &'a mut R,
    out: BufWriter<Checked<FsWriter>>,
    out_path: &'a Path,
    /// Stream bytes consumed so far.
    offset: u64,
    max_buffer: usize,
    /// Holds the field being read; never longer than `max_buffer` or [`COPY_CHUNK_BYTES`].
    scratch: Vec<u8>,
}

impl<R: Read> BodyReader<'_, R> {
    /// Reads exactly `n` bytes into `scratch` and nothing beyond them (what follows the signature is
    /// the caller's). `start` is where the field began, for errors.
    fn read_exact(&mut self, n: usize, item: StreamItem, start: u64) -> Result<(), StreamError> {
        self.scratch.clear();
        self.scratch.resize(n, 0);
        let mut filled = 0;
        while filled < n {
            match self.input.read(&mut self.scratch[filled..]) {
                Ok(0) => {
                    let received = self.offset + filled as u64;
                    return Err(StreamError::Truncated { item, offset: start, received });
                }
                Ok(read) => filled += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(StreamError::Read { item, offset: start, source }),
            }
        }
        self.offset += n as u64;
        Ok(())
    }

    /// Reads `n` bytes and copies them to the file.
    fn copy(&mut self, n: usize, item: StreamItem, start: u64) -> Result<(), StreamError> {
        self.read_exact(n, item, start)?;
        self.out.write_all(&self.scratch).map_err(|e| write_error(self.out_path, e))
    }

    fn i32(&mut self, item: StreamItem) -> Result<i32, StreamError> {
        self.copy(4, item, self.offset)?;
        Ok(i32::from_be_bytes(self.scratch[..4].try_into().expect("4 bytes")))
    }

    fn i64(&mut self, item: StreamItem) -> Result<i64, StreamError> {
        self.copy(8, item, self.offset)?;
        Ok(i64::from_be_bytes(self.scratch[..8].try_into().expect("8 bytes")))
    }

    /// A length prefix, checked against jute.maxbuffer before anything is read for it, as ZooKeeper's
    /// `BinaryInputArchive.checkLength` does; `None` for null (-1) where `null_allowed`.
    fn length(&mut self, item: StreamItem, null_allowed: bool) -> Result<Option<usize>, StreamError> {
        let offset = self.offset;
        match self.i32(item)? {
            -1 if null_allowed => Ok(None),
            -1 => Err(StreamError::Null { item, offset }),
            length if length < 0 => Err(StreamError::NegativeLength { item, offset, length }),
            length if length as usize > self.max_buffer => {
                Err(StreamError::TooLong { item, offset, length, max_buffer: self.max_buffer })
            }
            length => Ok(Some(length as usize)),
        }
    }

    /// A record count. ZooKeeper reads it with `while (count > 0)` and bounds it by nothing; we keep -1
    /// (read back as none by our loader too) and refuse other negatives. It is not held against
    /// jute.maxbuffer: nothing is allocated for it, so a forged count only runs into the stream's end,
    /// while a real ensemble may hold more sessions than jute.maxbuffer.
    fn count(&mut self, item: StreamItem) -> Result<usize, StreamError> {
        let offset = self.offset;
        match self.i32(item)? {
            -1 => Ok(0),
            length if length < 0 => Err(StreamError::NegativeLength { item, offset, length }),
            count => Ok(count as usize),
        }
    }

    /// A buffer or ustring copied through in chunks; `None` for null.
    fn copy_buffer(&mut self, item: StreamItem) -> Result<Option<usize>, StreamError> {
        let start = self.offset;
        let Some(len) = self.length(item, true)? else { return Ok(None) };
        let mut left = len;
        while left > 0 {
            let chunk = left.min(COPY_CHUNK_BYTES);
            self.copy(chunk, item, start)?;
            left -= chunk;
        }
        Ok(Some(len))
    }

    fn sessions(&mut self) -> Result<(), StreamError> {
        for _ in 0..self.count(StreamItem::SessionCount)? {
            self.copy(12, StreamItem::Session, self.offset)?;
        }
        Ok(())
    }

    /// The ACL cache; returns its indexes, which nodes must refer to (our loader refuses others).
    fn acl_cache(&mut self) -> Result<HashSet<i64>, StreamError> {
        let mut ids = HashSet::new();
        for _ in 0..self.count(StreamItem::AclCacheCount)? {
            ids.insert(self.i64(StreamItem::AclCacheIndex)?);
            // ZooKeeper's ACL cache refuses a null list ("missing acls").
            let acls = self.length(StreamItem::AclList, false)?.expect("null refused");
            for _ in 0..acls {
                self.i32(StreamItem::AclPerms)?;
                self.copy_buffer(StreamItem::AclScheme)?;
                self.copy_buffer(StreamItem::AclId)?;
            }
        }
        Ok(ids)
    }

    /// Nodes up to and including the "/" end marker; returns how many.
    fn nodes(&mut self, acl_ids: &HashSet<i64>) -> Result<usize, StreamError> {
        let mut order = PreOrder::default();
        let mut count = 0;
        loop {
            let offset = self.offset;
            let len = self.length(StreamItem::NodePath, false)?.expect("null refused");
            self.copy(len, StreamItem::NodePath, offset)?;
            let path = std::str::from_utf8(&self.scratch).map_err(|_| StreamError::InvalidUtf8 { offset })?;
            if path == END_PATH {
                return Ok(count);
            }
            let path = path.to_owned();
            order.admit(&path).map_err(|reason| StreamError::Misplaced { path: path.clone(), offset, reason })?;
            self.copy_buffer(StreamItem::NodeData)?;
            let index = self.i64(StreamItem::NodeAclIndex)?;
            if index != OPEN_ACL_ID && !acl_ids.contains(&index) {
                return Err(StreamError::UnknownAcl { path, offset, index });
            }
            self.copy(STAT_PERSISTED_BYTES, StreamItem::NodeStat, self.offset)?;
            count += 1;
        }
    }

    /// Reads the signature; it is not part of the file.
    fn signature(&mut self) -> Result<(), StreamError> {
        let offset = self.offset;
        let found = match self.i32_uncopied(StreamItem::Signature)? {
            -1 => None,
            length if length < 0 => {
                return Err(StreamError::NegativeLength { item: StreamItem::Signature, offset, length });
            }
            length if length as usize > self.max_buffer => {
                let max_buffer = self.max_buffer;
                return Err(StreamError::TooLong { item: StreamItem::Signature, offset, length, max_buffer });
            }
            length => {
                self.read_exact(length as usize, StreamItem::Signature, offset)?;
                Some(self.scratch.as_slice())
            }
        };
        if found == Some(SIGNATURE.as_bytes()) {
            return Ok(());
        }
        let found = found.map(|bytes| String::from_utf8_lossy(bytes).chars().take(QUOTE_CHARS_MAX).collect());
        Err(StreamError::BadSignature { offset, found })
    }

    fn i32_uncopied(&mut self, item: StreamItem) -> Result<i32, StreamError> {
        self.read_exact(4, item, self.offset)?;
        Ok(i32::from_be_bytes(self.scratch[..4].try_into().expect("4 bytes")))
    }
}

/// Checks that nodes come in pre-order with the root first, as ZooKeeper's `DataTree.serializeNode`
/// and our walker write them: each node's parent is the previous node or one of its ancestors. Holding
/// only that chain keeps memory to the tree's depth, where a set of every path seen would grow with the
/// tree; our loader relies on the same order.
#[derive(Debug, Default)]
struct PreOrder {
    /// The previous node's path and its ancestors', root ("") first.
    chain: Vec<String>,
}

impl PreOrder {
    fn admit(&mut self, path: &str) -> Result<(), &'static str> {
        let Some(slash) = path.rfind('/') else {
            // ZooKeeper takes a path without '/' as the root; only the root may have one, and only once.
            return match (path.is_empty(), self.chain.is_empty()) {
                (true, true) => {
                    self.chain.push(String::new());
                    Ok(())
                }
                (true, false) => Err("repeats the root"),
                (false, _) => Err("is not a path"),
            };
        };
        if self.chain.is_empty() {
            return Err("comes before the root");
        }
        let parent = &path[..slash];
        while self.chain.last().is_some_and(|last| last != parent) {
            self.chain.pop();
        }
        if self.chain.is_empty() {
            return Err("does not follow its parent in pre-order");
        }
        self.chain.push(path.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_order_admits_depth_first_listings_only() {
        // (paths in stream order, index of the first refused path or None)
        let cases: &[(&[&str], Option<usize>)] = &[
            (&["", "/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f"], None),
            (&["", "/zookeeper", "/zookeeper/quota", "/a"], None),
            (&["/a"], Some(0)),
            (&["", ""], Some(1)),
            (&["", "a"], Some(1)),
            (&["", "/a/b"], Some(1)),
            (&["", "/a", "/b", "/a/c"], Some(3)),
            (&["", "/a", "/a/b", "/c", "/a/b/d"], Some(4)),
            (&["", "/a", "//"], Some(2)),
        ];
        for (paths, refused) in cases {
            let mut order = PreOrder::default();
            let first_refused = paths.iter().position(|p| order.admit(p).is_err());
            assert_eq!(first_refused, *refused, "{paths:?}");
        }
    }
}
