//! Snapshots: ZooKeeper's `snapshot.<zxid>` files.
//!
//! # Layout
//! - [`format`]: the layout and its constants.
//! - [`reader`]: loading from a memory map, checking every seal.
//! - [`writer`]: the fuzzy writer, reading the tree in short lock holds.
//! - [`stream`]: the same body sent over the quorum port for SNAP sync, and received into a file.
//! - [`compression`]: `.gz` and `.snappy` snapshots (ZooKeeper's `snapshot.compression.method`);
//!   [`xerial`]: the snappy-java framing those use.

pub mod compression;
pub mod format;
pub mod reader;
pub mod stream;
pub mod writer;
pub mod xerial;

pub use compression::Compression;
pub use reader::{SnapError, SnapshotInfo, load_snapshot, load_snapshot_in, looks_complete, looks_complete_in};
pub use stream::{
    SIGNATURE, StreamError, StreamItem, StreamStats, receive_snapshot, receive_snapshot_in, send_snapshot,
};
pub use writer::{SnapshotStats, TreeAccess, WriteOptions, write_snapshot, write_snapshot_in, write_snapshot_with};
