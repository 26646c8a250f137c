//! `fk-core`: ferrokeeper's protocol logic as pure state machines. Each takes its inputs (messages,
//! the time, a seeded random source) and returns what to do; none opens a socket or a file, starts a
//! thread, reads a clock or owns a channel. The server's drivers and the simulator run the same code.
//! This crate's Cargo.toml is what keeps it so: no reactor, channel, lock or io_uring crate is there to use.
//!
//! # Layout
//! - [`servers`]: `server.N` lines and members as ZooKeeper reads and prints them.
//! - [`membership`]: the members in force and their configuration text.
//! - [`auth`]: identities and ACL checks.
//! - [`session`]: the session tracker.
//! - [`prep`]: validating writes and turning them into txns.
//! - [`sequencer`]: zxids, txns, session lifecycle and the reaper's decisions.
//! - [`zab`]: ZAB's leader and learner, discovery to broadcast.
//! - [`election`]: FastLeaderElection — notifications and time in, sends and the decision out.
//! - [`member`]: a member's life: election, then its role, and the order its driver carries effects out.
//! - [`commit`]: when a txn is committed — a quorum of voters has it durable.
//! - [`apply`]: applying committed txns, and the replies and watch events each releases.
//! - [`read`]: answering reads from the tree.
//! - [`requests`]: a client session's request protocol: routing, FIFO order, local answers.
//! - [`watch`]: a shard's watch table.
//! - [`rng`]: the one random source (seeded).
//! - [`java_order`]: the order Java's hash tables list things in, where ZooKeeper shows it.

pub mod apply;
pub mod auth;
pub mod commit;
pub mod election;
pub mod java_order;
pub mod member;
pub mod membership;
/// The deliberate bugs, kept in the engine (its storage has some too).
pub use fk_engine::planted;
pub mod prep;
pub mod read;
pub mod requests;
pub mod rng;
pub mod sequencer;
pub mod servers;
pub mod session;
pub mod watch;
pub mod zab;
