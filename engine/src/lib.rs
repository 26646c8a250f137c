//! `fk-engine`: the replicated state — the data tree and how txns change it.
//!
//! # Layout
//! - [`tree`]: znodes, Stat, the ACL cache, ephemeral/container/TTL indexes, sessions.
//! - [`txn`]: applying a txn to the tree (idempotent, for fuzzy-snapshot replay) and the watch triggers
//!   it causes.
//! - [`files`]: `log.<zxid>` / `snapshot.<zxid>` names in `version-2/`.
//! - [`fs`]: the file operations of the log and recovery, real or simulated.
//! - [`log`]: the txn log — format, reader, group-commit writer.
//! - [`snap`]: snapshots — format, fuzzy writer, mmap loader.
//! - [`recovery`]: newest valid snapshot + log replay, torn-tail truncation; [`purge`]: old files.
//! - [`planted`]: deliberate bugs behind a feature, for the simulators' tests of their checkers.
//! - [`epoch`]: the `currentEpoch`/`acceptedEpoch` files of a quorum member.
//! - [`damage`]: damage found at start-up set aside, and the mark a member keeps until its ensemble
//!   has synchronised it.
//!
//! The tree and txn application do no I/O and read no clock (time comes in the txn header); the file
//! modules do I/O and nothing else.

pub mod damage;
pub mod epoch;
pub mod files;
pub mod fs;
pub mod log;
pub mod planted;
pub mod purge;
pub mod recovery;
pub mod snap;
pub mod tree;
pub mod txn;
