//! `ferrokeeper`: a ZooKeeper-compatible server.
//!
//! # Layout
//! - [`config`]: `zoo.cfg` and `myid`.
//! - [`auth`]: identities and ACL checks.
//! - [`session`]: the session tracker (pure).
//! - [`prep`]: validating writes and turning them into txns (pure).
//! - [`read`]: answering reads from the tree (pure).
//! - [`watch`]: a shard's watch table (pure).
//! - [`pipeline`]: the threads that drive the pure parts — acceptor, shards, sequencer, applier.
//! - [`ops`]: 4-letter words and server statistics.

pub mod auth;

pub mod config;
pub mod ops;
pub mod pipeline;
pub mod prep;
pub mod read;
pub mod session;
pub mod watch;
