//! The quorum protocols' records, byte for byte as ZooKeeper 3.8 writes them (reference/quorum-wire.md):
//! - [`election`]: the election port — the connection's opening message and the FastLeaderElection
//!   notification carried in each length-prefixed frame.
//! - [`packet`]: the quorum (Zab) port — `QuorumPacket` records and the bodies some of them carry.
//! - [`auth`]: `QuorumAuthPacket`, SASL between members on either port.
//!
//! Only records live here; who sends what when is the server's election and Zab state machines' business.

pub mod auth;
pub mod election;
pub mod packet;

pub use auth::{AuthStatus, QuorumAuthPacket};
pub use election::{InitialMessage, Notification, ServerState, Vote};
pub use packet::{LearnerInfo, PacketType, QuorumPacket};
