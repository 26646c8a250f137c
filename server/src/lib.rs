//! `ferrokeeper`: a ZooKeeper-compatible server: the drivers around the pure protocol cores of
//! [`fk_core`] (re-exported here under their names, so `ferrokeeper::zab` is `fk_core::zab`).
//!
//! # Layout
//! - [`config`]: `zoo.cfg` and `myid`.
//! - [`storage`]: opening and recovering the data directories.
//! - [`pipeline`]: the threads that drive the pure parts — acceptor, shards, sequencer, log stage
//!   (group commit), applier, snapshotter, member thread.
//! - [`peers`]: links to the other members — the election port's connection manager (a driver).
//! - [`sasl`]: the server side of SASL exchanges (clients and quorum links).
//! - [`ops`]: 4-letter words, the Prometheus endpoint, the AdminServer, the audit log, and server
//!   statistics.

pub use fk_core::{
    apply, auth, commit, election, java_order, member, membership, planted, prep, read, requests, rng, sequencer,
    session, watch, zab,
};
pub mod config;
pub mod ops;
pub mod peers;
pub mod pipeline;
pub mod sasl;
pub mod storage;
