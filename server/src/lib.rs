//! `ferrokeeper`: a ZooKeeper-compatible server.
//!
//! # Layout
//! - [`config`]: `zoo.cfg` and `myid`.
//! - [`auth`]: identities and ACL checks.
//! - [`session`]: the session tracker (pure).
//! - [`prep`]: validating writes and turning them into txns (pure).
//! - [`sequencer`]: zxids, txns, session lifecycle and the reaper's decisions (pure).
//! - [`zab`]: ZAB's leader and learner, discovery to broadcast (pure).
//! - [`election`]: FastLeaderElection as a pure state machine — notifications and time in, sends and
//!   the decision out.
//! - [`commit`]: when a txn is committed — a quorum of voters has it durable (pure).
//! - [`read`]: answering reads from the tree (pure).
//! - [`watch`]: a shard's watch table (pure).
//! - [`storage`]: opening and recovering the data directories.
//! - [`pipeline`]: the threads that drive the pure parts — acceptor, shards, sequencer, log stage
//!   (group commit), applier, snapshotter.
//! - [`ops`]: 4-letter words, the Prometheus endpoint, the AdminServer, the audit log, and server
//!   statistics.
//! - [`java_order`]: the order Java's hash tables list things in, where ZooKeeper shows it.
//! - [`peers`]: links to the other members — the election port's connection manager (a driver).

pub mod apply;
pub mod auth;
pub mod commit;

pub mod config;
pub mod election;
pub mod java_order;
pub mod member;
pub mod membership;
pub mod ops;
pub mod peers;
pub mod pipeline;
/// The deliberate bugs, kept in the engine (its storage has some too).
pub use fk_engine::planted;
pub mod prep;
pub mod read;
pub mod rng;
pub mod sasl;
pub mod sequencer;
pub mod session;
pub mod storage;
pub mod watch;
pub mod zab;
