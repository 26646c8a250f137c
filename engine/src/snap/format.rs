//! The snapshot layout (reference/on-disk.md §4), uncompressed ("CHECKED") mode:
//!
//! ```text
//! FileHeader   magic "ZKSN" (int) | version 2 (int) | dbid -1 (long)
//! sessions     count (int), then (session id (long), timeout ms (int)) × count
//! ACL cache    count (int), then (index (long), vector<ACL>) × count
//! nodes        (path (ustring), data (buffer), acl index (long), StatPersisted) in pre-order;
//!              the root is written with path ""
//! end          path "/" with no node after it
//! seal         Adler32 of every byte so far (long), then ustring "/"
//! [3.6+]       zxid (long), digest version (int), digest (long), cumulative seal, "/"
//! [3.9+]       lastProcessedZxid (long), cumulative seal, "/"
//! ```
//! We write through the digest record (3.8's form; older readers stop after the first seal); we read all
//! three forms. A file is a
//! candidate only if it ends in the ustring "/" (int 1, '/'), as ZooKeeper checks before trying it.

pub const SNAP_MAGIC: i32 = 0x5A4B_534E; // "ZKSN"
pub const FORMAT_VERSION: i32 = 2;
pub const DBID: i64 = -1;
/// Path that ends the node list, and the string written after every seal.
pub const END_PATH: &str = "/";
/// The last five bytes of a complete snapshot: the ustring "/".
pub const TRAILER: [u8; 5] = [0, 0, 0, 1, b'/'];
