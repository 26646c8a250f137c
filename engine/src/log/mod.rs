//! The txn log: ZooKeeper's `log.<zxid>` files.
//!
//! # Layout
//! - [`format`]: header, record framing, checksum, preallocation sizes.
//! - [`reader`]: reading a file back, telling a clean end, a torn tail and corruption apart.
//! - [`device`]: io_uring or pwrite, each a write + fdatasync per batch.
//! - [`writer`]: appending batches, opening and rolling files.
//! - [`truncate`]: cutting the log back to a zxid (a learner's TRUNC).

pub mod device;
pub mod format;
pub mod reader;
pub mod truncate;
pub mod writer;

pub use device::{LogDevice, PwriteDevice, UringDevice, best_available};
pub use reader::{LogEnd, LogError, LogFile, LogReader, LogRecord, Next, read_log};
pub use truncate::{TruncateError, Truncated, truncate_to};
pub use writer::{BatchStats, LogWriter};
