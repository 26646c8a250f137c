//! Snapshots: ZooKeeper's `snapshot.<zxid>` files.
//!
//! # Layout
//! - [`format`]: the layout and its constants.
//! - [`reader`]: loading from a memory map, checking every seal.
//! - [`writer`]: the fuzzy writer, reading the tree in short lock holds.

pub mod format;
pub mod reader;
pub mod writer;

pub use reader::{SnapError, SnapshotInfo, load_snapshot, looks_complete};
pub use writer::{SnapshotStats, TreeAccess, write_snapshot};
