//! Writes a fuzzy snapshot while the applier keeps writing: the tree is read in short holds of its lock,
//! a bounded number of nodes at a time, so writes wait microseconds, not the length of the snapshot.
//!
//! Fuzziness is safe for the reason it is in ZooKeeper: the file is named after the last zxid applied
//! when it started, and replaying every later txn over it (idempotently) yields the exact state. A node
//! deleted while we walk is skipped (its delete replays as a no-op); one created is either included or
//! recreated by replay.
//!
//! The ACL lists go before the nodes in the file, but only the walk knows which lists the nodes use (a
//! list may be created after the walk starts). So the nodes are written to a side file first, the lists
//! they referenced are collected on the way, and the final file is assembled and checksummed from the
//! two. That costs one extra sequential copy and keeps memory flat.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fk_net::client::Acl;
use fk_net::jute::{Jute, JuteWriter};

use super::compression::{Compression, FileSink};
use super::format::{DBID, END_PATH, FORMAT_VERSION, SNAP_MAGIC};
use crate::fs::{Fs, FsWriter, RealFs};
use crate::tree::digest::DIGEST_VERSION;
use crate::tree::{AclId, DataTree, OPEN_ACL_ID};

/// Read access to a tree shared with its writer.
pub trait TreeAccess {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R;
}

/// Nodes serialized per hold of the tree's lock.
const NODES_PER_HOLD: usize = 1000;

#[derive(Debug, Clone)]
pub struct SnapshotStats {
    pub path: PathBuf,
    pub zxid: i64,
    pub nodes: usize,
    /// Bytes of content, before any compression.
    pub bytes: u64,
}

/// Writes `snapshot.<zxid>` (with the compression's suffix) into `dir` (the `version-2` directory), where
/// zxid is the last applied when it starts; durable (fsynced and renamed into place, directory synced)
/// when this returns.
pub fn write_snapshot(
    tree: &impl TreeAccess,
    dir: &Path,
    force_sync: bool,
    compression: Compression,
) -> io::Result<SnapshotStats> {
    write_snapshot_with(tree, dir, WriteOptions { force_sync, compression, last_zxid_trailer: false })
}

/// How [`write_snapshot_with`] writes.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    pub force_sync: bool,
    pub compression: Compression,
    /// End the file with ZooKeeper 3.9's last-processed-zxid record (and its seal), so that the file
    /// says its zxid without its name (a snapshot streamed over HTTP); ZooKeeper 3.8 ignores it. Only for
    /// a tree that does not change while it is written: a fuzzy snapshot has no single zxid.
    pub last_zxid_trailer: bool,
}

/// [`write_snapshot`] with every option.
pub fn write_snapshot_with(tree: &impl TreeAccess, dir: &Path, options: WriteOptions) -> io::Result<SnapshotStats> {
    write_snapshot_in(&RealFs, tree, dir, options)
}

/// [`write_snapshot_with`] on `fs`.
pub fn write_snapshot_in(
    fs: &dyn Fs,
    tree: &impl TreeAccess,
    dir: &Path,
    options: WriteOptions,
) -> io::Result<SnapshotStats> {
    let WriteOptions { force_sync, compression, last_zxid_trailer } = options;
    let (zxid, sessions) = tree.read(|t| (t.last_processed_zxid(), t.sessions().collect::<Vec<_>>()));
    let name = compression.snapshot_name(zxid);
    let final_path = dir.join(&name);
    // Dot-prefixed so that neither we nor ZooKeeper ever mistake them for snapshots.
    let nodes_path = dir.join(format!(".{name}.nodes"));
    let tmp_path = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let (nodes, acls) = write_nodes(fs, tree, &nodes_path)?;
        // The digest record: the tree digest as of the last txn applied when the walk ended (replay
        // checks it once it reaches that zxid).
        let digest = tree.read(|t| (t.last_processed_zxid(), t.digest()));
        let sink = FileSink::new(FsWriter::new(fs.open(&tmp_path, true)?), IO_BUFFER_BYTES, compression)?;
        let trailer = last_zxid_trailer.then_some(digest.0);
        assert!(trailer.is_none_or(|z| z == zxid), "a snapshot with a zxid trailer was written from a changing tree");
        let nodes_file = fs.read_whole(&nodes_path)?;
        let bytes = assemble(sink, &sessions, &acls, nodes_file, (digest, trailer), force_sync)?;
        fs.rename(&tmp_path, &final_path)?;
        if force_sync {
            fs.sync_dir(dir)?;
        }
        Ok(SnapshotStats { path: final_path.clone(), zxid, nodes, bytes })
    })();
    let _ = fs.remove(&nodes_path);
    if result.is_err() {
        let _ = fs.remove(&tmp_path);
    }
    result
}

/// The ACL lists a snapshot's nodes refer to, by index.
pub(super) type UsedAcls = BTreeMap<AclId, Arc<[Acl]>>;

/// Buffer size for the side file and the final file: large sequential writes and reads.
pub(super) const IO_BUFFER_BYTES: usize = 1 << 20;

/// Writes the nodes to the side file `nodes_path`; see [`walk_nodes`].
fn write_nodes(fs: &dyn Fs, tree: &impl TreeAccess, nodes_path: &Path) -> io::Result<(usize, UsedAcls)> {
    let mut out = BufWriter::with_capacity(IO_BUFFER_BYTES, FsWriter::new(fs.open(nodes_path, true)?));
    let walked = walk_nodes(tree, &mut out)?;
    out.flush()?;
    Ok(walked)
}

/// Walks the tree in pre-order, writing `(path, DataNode)` records (item 5 of the layout, without the
/// end marker) to `out`; returns the count and the ACL lists the written nodes refer to. Shared by the
/// snapshot file and the SNAP stream, which carry the same records.
pub(super) fn walk_nodes(tree: &impl TreeAccess, out: &mut impl Write) -> io::Result<(usize, UsedAcls)> {
    let mut acls = BTreeMap::new();
    // Nodes still to write, as (slab slot, czxid): 12 bytes each however long the paths. A slot whose
    // node changed identity while the lock was let go (deleted, slot reused) is skipped; such a node was
    // created after the walk began, and replay recreates it.
    let mut stack: Vec<(u32, i64)> = Vec::new();
    let mut record = Vec::new();
    let mut count = 0;
    let mut first = true;
    while first || !stack.is_empty() {
        record.clear();
        tree.read(|t| {
            for _ in 0..NODES_PER_HOLD {
                let node = if std::mem::take(&mut first) {
                    t.root()
                } else {
                    let Some((slot, czxid)) = stack.pop() else { break };
                    let Some(node) = t.node_in_slot(slot, czxid) else { continue };
                    node
                };
                // The root is written with path "" (ZooKeeper keys its root that way).
                record.put_ustring(Some(if &*node.path == "/" { "" } else { &node.path }));
                record.put_buffer(node.data.as_deref());
                record.put_i64(node.acl);
                node.stat.encode(&mut record);
                if node.acl != OPEN_ACL_ID {
                    acls.entry(node.acl).or_insert_with(|| t.acl_cache().get(node.acl).clone());
                }
                stack.extend(t.children_slots(node));
                count += 1;
            }
        });
        out.write_all(&record)?;
    }
    Ok((count, acls))
}

/// A writer that keeps the running Adler32 of everything written, as ZooKeeper's CheckedOutputStream.
pub(super) struct Checked<W> {
    pub(super) inner: W,
    adler: simd_adler32::Adler32,
    pub(super) written: u64,
}

impl<W> Checked<W> {
    pub(super) fn new(inner: W) -> Checked<W> {
        Checked { inner, adler: simd_adler32::Adler32::new(), written: 0 }
    }
}

impl<W: Write> Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.adler.write(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the running checksum and the "/" after it (which the next seal covers).
pub(super) fn seal<W: Write>(out: &mut Checked<W>) -> io::Result<()> {
    let mut seal = Vec::new();
    seal.put_i64(out.adler.finish() as i64);
    seal.put_ustring(Some(END_PATH));
    out.write_all(&seal)
}

/// The FileHeader (item 1), which only the file carries; the SNAP stream starts after it.
pub(super) fn file_header() -> Vec<u8> {
    let mut head = Vec::new();
    head.put_i32(SNAP_MAGIC);
    head.put_i32(FORMAT_VERSION);
    head.put_i64(DBID);
    head
}

/// Items 2–6: sessions, the ACL lists the nodes use, the nodes copied from `nodes`, and the end marker.
/// The same bytes are the body of a snapshot file and of a SNAP stream (ZooKeeper's
/// `SerializeUtils.serializeSnapshot`), so both are written by this one function.
pub(super) fn write_body(
    out: &mut impl Write,
    sessions: &[(i64, i32)],
    acls: &UsedAcls,
    nodes: &mut impl io::Read,
) -> io::Result<()> {
    let mut head = Vec::new();
    head.put_i32(sessions.len() as i32);
    for (id, timeout) in sessions {
        head.put_i64(*id);
        head.put_i32(*timeout);
    }
    head.put_i32(acls.len() as i32);
    for (id, list) in acls {
        head.put_i64(*id);
        list.to_vec().encode(&mut head);
    }
    out.write_all(&head)?;
    io::copy(nodes, out)?;
    let mut tail = Vec::new();
    tail.put_ustring(Some(END_PATH));
    out.write_all(&tail)
}

/// Writes the whole file through `sink`; the bytes of content (before compression).
fn assemble(
    sink: FileSink,
    sessions: &[(i64, i32)],
    acls: &UsedAcls,
    nodes: crate::fs::Contents,
    (digest, last_zxid): ((i64, u64), Option<i64>),
    force_sync: bool,
) -> io::Result<u64> {
    let mut out = Checked::new(sink);
    out.write_all(&file_header())?;
    let mut nodes = io::Cursor::new(nodes);
    write_body(&mut out, sessions, acls, &mut nodes)?;
    seal(&mut out)?;
    let mut zxid_digest = Vec::new();
    zxid_digest.put_i64(digest.0);
    zxid_digest.put_i32(DIGEST_VERSION);
    zxid_digest.put_i64(digest.1 as i64);
    out.write_all(&zxid_digest)?;
    seal(&mut out)?;
    if let Some(zxid) = last_zxid {
        out.write_all(&zxid.to_be_bytes())?;
        seal(&mut out)?;
    }
    let written = out.written;
    let file = out.inner.finish()?;
    if force_sync {
        file.file().sync_data()?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snap::reader::load_snapshot;
    use fk_net::client::perms;

    struct Plain(std::sync::Mutex<DataTree>);

    impl TreeAccess for Plain {
        fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
            f(&self.0.lock().unwrap())
        }
    }

    #[test]
    fn a_written_snapshot_loads_back_identically() {
        let mut tree = DataTree::new(crate::tree::TreeOptions::fixed_seed(true));
        let open = [Acl::new(perms::ALL, "world", "anyone")];
        let digest = [Acl::new(perms::ALL, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")];
        tree.create_node("/a", Some(b"x"), &open, 0, 1, 1, 10).unwrap();
        tree.create_node("/a/b", None, &digest, 0x55, 1, 2, 11).unwrap();
        tree.create_node("/c", Some(b""), &open, crate::tree::CONTAINER_OWNER, 2, 3, 12).unwrap();
        tree.add_session(0x55, 30000);
        tree.set_last_processed_zxid(3);
        let dir = tempfile::tempdir().unwrap();
        let stats = write_snapshot(&Plain(std::sync::Mutex::new(tree)), dir.path(), true, Compression::None).unwrap();
        assert_eq!(stats.path.file_name().unwrap(), "snapshot.3");
        assert_eq!(stats.nodes, 7);
        assert!(crate::snap::reader::looks_complete(&stats.path));
        let (loaded, info) = load_snapshot(&stats.path, 3, crate::tree::TreeOptions::fixed_seed(true)).unwrap();
        assert_eq!(info.nodes, 7);
        assert_eq!(info.digest, Some((3, loaded.digest())), "the digest record matches the loaded tree");
        assert_eq!(loaded.last_processed_zxid(), 3);
        assert_eq!(loaded.get("/a").unwrap().data.as_deref(), Some(&b"x"[..]));
        assert_eq!(loaded.get("/a/b").unwrap().data, None);
        assert_eq!(loaded.acl(loaded.get("/a/b").unwrap()), &digest);
        assert_eq!(loaded.ephemerals_of(0x55).collect::<Vec<_>>(), vec!["/a/b"]);
        assert_eq!(loaded.containers().collect::<Vec<_>>(), vec!["/c"]);
        assert_eq!(loaded.session_timeout(0x55), Some(30000));
        assert_eq!(loaded.acl(loaded.get("/zookeeper/config").unwrap())[0].perms, perms::READ);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "only the snapshot remains: {leftovers:?}");
    }

    #[test]
    fn the_zxid_trailer_names_the_state_without_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        for compression in [Compression::None, Compression::Gzip] {
            let mut tree = DataTree::new(crate::tree::TreeOptions::fixed_seed(true));
            tree.create_node("/a", Some(b"x"), &[Acl::new(perms::ALL, "world", "anyone")], 0, 1, 1, 10).unwrap();
            tree.set_last_processed_zxid(0x1_0000_0007);
            let digest = tree.digest();
            let options = WriteOptions { force_sync: false, compression, last_zxid_trailer: true };
            let stats = write_snapshot_with(&Plain(std::sync::Mutex::new(tree)), dir.path(), options).unwrap();
            let (loaded, info) = load_snapshot(&stats.path, 0, crate::tree::TreeOptions::fixed_seed(true)).unwrap();
            assert_eq!((info.last_processed_zxid, loaded.last_processed_zxid()), (Some(0x1_0000_0007), 0x1_0000_0007));
            assert_eq!(loaded.digest(), digest, "{compression:?}");
        }
    }

    #[test]
    fn compressed_snapshots_load_back_identically_and_name_their_damage() {
        for compression in [Compression::Gzip, Compression::Snappy] {
            let mut tree = DataTree::new(crate::tree::TreeOptions::fixed_seed(true));
            let open = [Acl::new(perms::ALL, "world", "anyone")];
            // More than one snappy-java block, and content that compresses.
            let big: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
            tree.create_node("/big", Some(&big), &open, 0, 1, 1, 10).unwrap();
            for i in 0..100 {
                tree.create_node(&format!("/n{i}"), Some(format!("v{i}").as_bytes()), &open, 0, 1, 2 + i, 11).unwrap();
            }
            tree.set_last_processed_zxid(101);
            let dir = tempfile::tempdir().unwrap();
            let stats = write_snapshot(&Plain(std::sync::Mutex::new(tree)), dir.path(), true, compression).unwrap();
            let name = format!("snapshot.65.{}", compression.method());
            assert_eq!(stats.path.file_name().unwrap().to_str(), Some(name.as_str()));
            let on_disk = std::fs::metadata(&stats.path).unwrap().len();
            assert!(on_disk * 4 < stats.bytes, "{compression:?}: {on_disk} bytes on disk for {}", stats.bytes);
            assert!(crate::snap::reader::looks_complete(&stats.path), "{compression:?}");
            let options = crate::tree::TreeOptions::fixed_seed(true);
            let (loaded, info) = load_snapshot(&stats.path, 0x65, options).unwrap();
            assert_eq!((info.nodes, info.digest), (105, Some((0x65, loaded.digest()))), "{compression:?}");
            assert_eq!(loaded.get("/big").unwrap().data.as_deref(), Some(&big[..]));
            assert_eq!(loaded.get("/n99").unwrap().data.as_deref(), Some(&b"v99"[..]));

            let bytes = std::fs::read(&stats.path).unwrap();
            std::fs::write(&stats.path, &bytes[..bytes.len() / 2]).unwrap();
            let err = load_snapshot(&stats.path, 0x65, options).unwrap_err().to_string();
            assert!(err.contains(&name) && err.contains("offset"), "{compression:?}: {err}");
            std::fs::write(&stats.path, &bytes[1..]).unwrap();
            assert!(!crate::snap::reader::looks_complete(&stats.path), "{compression:?}: no magic, not a candidate");
        }
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let mut tree = DataTree::new(crate::tree::TreeOptions::fixed_seed(false));
        tree.create_node("/a", Some(b"payload"), &[Acl::new(31, "world", "anyone")], 0, 1, 1, 10).unwrap();
        tree.set_last_processed_zxid(1);
        let dir = tempfile::tempdir().unwrap();
        let stats = write_snapshot(&Plain(std::sync::Mutex::new(tree)), dir.path(), false, Compression::None).unwrap();
        let mut bytes = std::fs::read(&stats.path).unwrap();
        let at = bytes.windows(7).position(|w| w == b"payload").unwrap();
        bytes[at] ^= 1;
        std::fs::write(&stats.path, bytes).unwrap();
        assert!(matches!(
            load_snapshot(&stats.path, 1, crate::tree::TreeOptions::fixed_seed(false)),
            Err(crate::snap::reader::SnapError::Checksum { .. })
        ));
    }
}
