//! fk-client: a blocking ZooKeeper client on fk-net's protocol codec, and the `fkcli` shell built on it.
//!
//! ```no_run
//! use fk_client::{Client, CreateMode, Options, open_acl_unsafe};
//! let client = Client::connect("127.0.0.1:2181,127.0.0.1:2182/app", Options::default())?;
//! client.create("/node", Some(b"data"), &open_acl_unsafe(), CreateMode::Persistent)?;
//! let (data, stat) = client.get_data("/node", true)?;
//! # Ok::<(), fk_client::Error>(())
//! ```
//!
//! # Layout
//! - [`connect_string`]: `host:port,…/chroot` parsing and chroot mapping.
//! - [`connection`]: one TCP connection: handshake and frames.
//! - [`session`]: shared state and the I/O thread (replies, events, pings, reconnect with setWatches).
//! - [`client`]: the public operations.
//! - [`watches`]: watch events and the watches to restore after a reconnect.
//! - [`create_mode`]: znode kinds and their flags.
//! - [`error`]: typed errors carrying ZooKeeper's result codes.

pub mod client;
pub mod connect_string;
pub mod connection;
pub mod create_mode;
pub mod error;
pub mod sasl;
mod session;
pub mod watches;

pub use client::{CONFIG_NODE, Client, Options};
pub use create_mode::CreateMode;
pub use error::{Error, Result};
pub use fk_net::client::watch::{AddWatchMode, EventType, WatcherType};
pub use fk_net::client::{Acl, ClientInfo, ErrorCode, Id, MultiResult, Stat, WriteOp, perms};
pub use watches::{KeeperState, WatchedEvent};

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: everyone may do everything.
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}
