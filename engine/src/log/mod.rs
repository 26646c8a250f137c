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
pub use reader::{LogEnd, LogError, LogFile, LogReader, LogRecord, Next, read_log, read_log_in, take_never_written};
pub use truncate::{TruncateError, Truncated, truncate_in, truncate_to};
pub use writer::{BatchStats, LogWriter};

/// A small txn for the log modules' tests: a createSession with the given zxid.
#[cfg(test)]
pub(crate) fn test_txn(zxid: i64) -> fk_net::txn::Txn {
    use fk_net::txn::{CreateSessionTxn, TxnBody, TxnHeader};
    let body = TxnBody::CreateSession(CreateSessionTxn { timeout_ms: 30_000 });
    let txn_type = fk_net::client::OpCode::CreateSession.as_i32();
    let header = TxnHeader { client_id: zxid, cxid: 0, zxid, time: 0, txn_type };
    fk_net::txn::Txn { header, body, digest: None }
}
