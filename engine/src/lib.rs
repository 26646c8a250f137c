//! `fk-engine`: the replicated state — the data tree and how txns change it.
//!
//! # Layout
//! - [`tree`]: znodes, Stat, the ACL cache, ephemeral/container/TTL indexes, sessions.
//! - [`txn`]: applying a txn to the tree (idempotent, for fuzzy-snapshot replay) and the watch triggers
//!   it causes.
//!
//! Nothing here does I/O or reads a clock: time comes in the txn header.

pub mod tree;
pub mod txn;
