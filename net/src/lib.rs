//! `fk-net`: ZooKeeper's wire and disk records, in ZooKeeper's own jute layouts, and their framing.
//!
//! # Layout
//! - [`jute`]: bounds-checked primitives (`int`, `long`, `ustring`, `buffer`, `vector`) and the
//!   [`jute_record!`] macro that declares a record field by field.
//! - [`client`]: the client protocol — opcodes, result codes, requests, replies, watch events.
//! - [`txn`]: txn headers and bodies, the same bytes in a txn log and in a quorum proposal.
//! - [`frame`]: the `int32` length prefix every packet carries.
//! - [`path`]: ZooKeeper's path validation.
//! - [`quorum`]: the election and Zab ports' records.
//! - [`reactor`]: a non-blocking connection's read and write buffers (over any `Read`/`Write`: mio
//!   sockets in the server and fkbench, TLS plaintext sides).
//! - [`sasl`]: SASL DIGEST-MD5 (both sides) and the JAAS files that configure it.

pub mod client;
pub mod frame;
pub mod jute;
pub mod path;
pub mod quorum;
pub mod reactor;
pub mod sasl;
pub mod txn;
