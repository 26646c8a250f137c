//! Links to the other members: the I/O drivers that move the quorum protocols' messages. They decide
//! nothing about votes or proposals; the pure state machines (`election`, Zab) do.
//!
//! # Layout
//! - [`admission`]: [`admission::Gate`], the quorum and election ports' admission: a connection gets
//!   threads and buffers only once its opening message is complete and acceptable, within a deadline,
//!   with a bounded number of openings in progress.
//! - [`handshake`]: the election port's opening message, framing, and the pure "who keeps the
//!   connection" rules (reference/quorum-wire.md §1), table-tested.
//! - [`election_link`]: [`ElectionLinks`], ZooKeeper's `QuorumCnxManager`: a listener thread, one sender
//!   and one receiver thread per connected peer, a one-message outbox per peer, and a bounded channel of
//!   [`Incoming`] notifications for the election.
//! - [`tls`]: TLS between members (`sslQuorum`, `portUnification`, `ssl.quorum.*`).
//! - [`sasl`]: SASL (DIGEST-MD5) between members (`quorum.auth.*`).

pub mod admission;
pub mod election_link;
pub mod handshake;
pub mod sasl;
pub mod tls;

pub use election_link::{ElectionLinkSettings, ElectionLinks, Incoming, IncomingReceiver, LinkStats};
