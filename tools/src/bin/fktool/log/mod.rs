//! The `fktool log …` subcommands, one module each, over a few shared pieces.
//!
//! # Layout
//! - [`source`]: a file or a directory as log files in zxid order; scanning them with a progress bar.
//! - [`describe`]: a txn as a text line or a JSON object; op names.
//! - [`filter`]: the dump filters (zxid range, session, path prefix, op).
//! - [`dump`], [`verify`]: read-only.
//! - [`cut`]: cutting a log at an offset and removing later files, atomically and with a backup.
//! - [`truncate`], [`repair`]: decide where to cut ([`cut`] does it).
//! - [`chop`]: a zxid range into a new log file.

pub(crate) mod chop;
pub(crate) mod cut;
pub(crate) mod describe;
pub(crate) mod dump;
pub(crate) mod filter;
pub(crate) mod repair;
pub(crate) mod source;
pub(crate) mod truncate;
pub(crate) mod verify;
