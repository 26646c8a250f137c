//! The election port's records (reference/quorum-wire.md §1–2).
//!
//! A connection opens with an [`InitialMessage`] (raw, no length prefix); after it every message, both
//! ways, is an `int32` length and a [`Notification`] of that length. Notifications come in four sizes
//! from four generations of ZooKeeper; all are read, and the current one (version 2, with the sender's
//! config text) is written.

use thiserror::Error;

use crate::jute::{DecodeError, JuteReader, JuteWriter};

/// The protocol version in an opening message ZooKeeper 3.5+ sends without multi-address support.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// The same, with several `|`-separated addresses (`multiAddress.enabled`).
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Longest election address an opening message may announce; a longer one drops the connection.
pub const MAX_ADDRESS_LEN: usize = 2048;
/// Largest election frame a peer accepts (ZooKeeper's `PACKETMAXSIZE`).
pub const MAX_FRAME_LEN: usize = 512 * 1024;
/// The notification version written (2: with the sender's config).
pub const NOTIFICATION_VERSION: i32 = 2;

/// A member's state as its notifications announce it (ZooKeeper's `ServerState` ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking,
    Following,
    Leading,
    Observing,
}

impl ServerState {
    pub fn as_i32(self) -> i32 {
        match self {
            ServerState::Looking => 0,
            ServerState::Following => 1,
            ServerState::Leading => 2,
            ServerState::Observing => 3,
        }
    }

    pub fn from_i32(value: i32) -> Option<ServerState> {
        Some(match value {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }

    /// As `srvr` and `mntr` print it.
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Looking => "looking",
            ServerState::Following => "following",
            ServerState::Leading => "leading",
            ServerState::Observing => "observing",
        }
    }
}

/// A vote: who should lead, and the facts that rank the candidate — (peer epoch, zxid, sid) compared in
/// that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    pub leader: i64,
    pub zxid: i64,
    pub peer_epoch: i64,
}

/// One election notification: the sender's state and vote in the sender's election round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: ServerState,
    pub vote: Vote,
    /// The sender's logical clock (election round).
    pub election_epoch: i64,
    /// 0 for the 28- and 40-byte forms, 1 without config, 2 with it.
    pub version: i32,
    /// The sender's membership as text (`server.N=…` lines, then `version=<hex>`); empty before version 2.
    pub config: Vec<u8>,
}

/// Why an election frame was not a usable notification. ZooKeeper logs these and ignores the message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotificationError {
    #[error("a {0}-byte notification is too short (28 bytes at least)")]
    TooShort(usize),
    #[error("unknown server state {0}")]
    UnknownState(i32),
    #[error("config length {length} does not fit the {capacity}-byte notification")]
    BadConfigLength { length: i32, capacity: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl Notification {
    /// The frame's payload, in the current (version 2) form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.state.as_i32());
        out.put_i64(self.vote.leader);
        out.put_i64(self.vote.zxid);
        out.put_i64(self.election_epoch);
        out.put_i64(self.vote.peer_epoch);
        out.put_i32(NOTIFICATION_VERSION);
        out.put_buffer(Some(&self.config));
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(44 + self.config.len());
        self.encode(&mut out);
        out
    }

    /// Reads any generation's notification, as ZooKeeper 3.8's receiver does: 28 bytes (no peer epoch:
    /// the zxid's epoch stands in), 40 bytes (no version), version 1 (no config), version 2+ (config).
    pub fn decode(bytes: &[u8]) -> Result<Notification, NotificationError> {
        let capacity = bytes.len();
        if capacity < 28 {
            return Err(NotificationError::TooShort(capacity));
        }
        let mut r = JuteReader::new(bytes);
        let raw_state = r.read_i32()?;
        let state = ServerState::from_i32(raw_state).ok_or(NotificationError::UnknownState(raw_state))?;
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let (peer_epoch, version) = match capacity {
            28 => (zxid >> 32, 0),
            40 => (r.read_i64()?, 0),
            _ => (r.read_i64()?, r.read_i32()?),
        };
        let mut config = Vec::new();
        if version > 1 {
            let length = r.read_i32()?;
            if length < 0 || length as usize > capacity {
                return Err(NotificationError::BadConfigLength { length, capacity });
            }
            config = r.take(length as usize)?.to_vec();
        }
        Ok(Notification { state, vote: Vote { leader, zxid, peer_epoch }, election_epoch, version, config })
    }
}

/// What a connecting member says first on the election port: who it is and where it can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    pub sid: i64,
    /// `host:port` of the sender's election address; V2 senders may list several, `|`-separated. Empty
    /// from a pre-3.5 sender (which sends only its sid).
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InitialMessageError {
    #[error("unknown election protocol version {0}")]
    UnknownVersion(i64),
    #[error("announced address length {0} is outside 1..=2048")]
    BadAddressLength(i32),
    #[error("announced address is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl InitialMessage {
    /// The V1 form, as ZooKeeper 3.8 sends it without multi-address support.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let joined = self.addresses.join("|");
        out.put_i64(if self.addresses.len() > 1 { PROTOCOL_VERSION_V2 } else { PROTOCOL_VERSION_V1 });
        out.put_i64(self.sid);
        out.put_buffer(Some(joined.as_bytes()));
    }

    /// Parses an opening message from the start of `bytes`. `Ok(None)`: more bytes are needed; otherwise
    /// the message and how many bytes it took.
    pub fn parse(bytes: &[u8]) -> Result<Option<(InitialMessage, usize)>, InitialMessageError> {
        let mut r = JuteReader::new(bytes);
        let incomplete = |e: DecodeError| match e {
            DecodeError::UnexpectedEof { .. } => Ok(None),
            e => Err(InitialMessageError::Decode(e)),
        };
        let first = match r.read_i64() {
            Ok(v) => v,
            Err(e) => return incomplete(e),
        };
        if first >= 0 {
            return Ok(Some((InitialMessage { sid: first, addresses: Vec::new() }, 8)));
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(InitialMessageError::UnknownVersion(first));
        }
        let (sid, length) = match (r.read_i64(), r.read_i32()) {
            (Ok(sid), Ok(length)) => (sid, length),
            (Err(e), _) | (_, Err(e)) => return incomplete(e),
        };
        if !(1..=MAX_ADDRESS_LEN as i32).contains(&length) {
            return Err(InitialMessageError::BadAddressLength(length));
        }
        let text = match r.take(length as usize) {
            Ok(text) => text,
            Err(e) => return incomplete(e),
        };
        let text = std::str::from_utf8(text).map_err(|_| InitialMessageError::NotUtf8)?;
        let addresses = text.split('|').map(str::to_owned).collect();
        Ok(Some((InitialMessage { sid, addresses }, r.position())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        Notification {
            state: ServerState::Looking,
            vote: Vote { leader: 3, zxid: 0x2_0000_0007, peer_epoch: 2 },
            election_epoch: 5,
            version: 2,
            config: b"server.1=127.0.0.1:2888:3888:participant\nversion=0".to_vec(),
        }
    }

    #[test]
    fn notifications_round_trip_in_the_current_form() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes.len(), 44 + sample().config.len());
        assert_eq!(&bytes[..4], &[0, 0, 0, 0], "state LOOKING");
        assert_eq!(&bytes[36..40], &[0, 0, 0, 2], "version 2");
        assert_eq!(Notification::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn older_generations_are_read() {
        let bytes = sample().to_bytes();
        let n28 = Notification::decode(&bytes[..28]).unwrap();
        assert_eq!((n28.vote.peer_epoch, n28.version), (2, 0), "peer epoch from the zxid");
        let n40 = Notification::decode(&bytes[..36].iter().chain(&[0, 0, 0, 0]).copied().collect::<Vec<_>>());
        assert_eq!(n40.unwrap().vote.peer_epoch, 2);
        let mut v1 = bytes[..40].to_vec();
        v1[39] = 1;
        v1.extend_from_slice(&[0; 4]);
        let n = Notification::decode(&v1).unwrap();
        assert_eq!((n.version, n.config.len()), (1, 0));
        assert_eq!(Notification::decode(&bytes[..27]), Err(NotificationError::TooShort(27)));
        let mut bad = bytes.clone();
        bad[3] = 9;
        assert_eq!(Notification::decode(&bad), Err(NotificationError::UnknownState(9)));
        let mut huge = bytes;
        huge[40..44].copy_from_slice(&10_000i32.to_be_bytes());
        assert!(matches!(Notification::decode(&huge), Err(NotificationError::BadConfigLength { .. })));
    }

    #[test]
    fn opening_messages_parse_in_pieces_and_every_form() {
        let message = InitialMessage { sid: 2, addresses: vec!["127.0.0.1:3888".into()] };
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        assert_eq!(&bytes[..8], &PROTOCOL_VERSION_V1.to_be_bytes());
        for cut in 0..bytes.len() {
            assert_eq!(InitialMessage::parse(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(InitialMessage::parse(&bytes), Ok(Some((message, bytes.len()))));
        let legacy = 7i64.to_be_bytes();
        assert_eq!(InitialMessage::parse(&legacy), Ok(Some((InitialMessage { sid: 7, addresses: vec![] }, 8))));
        let mut two = Vec::new();
        InitialMessage { sid: 4, addresses: vec!["a:1".into(), "b:2".into()] }.encode(&mut two);
        assert_eq!(&two[..8], &PROTOCOL_VERSION_V2.to_be_bytes());
        assert_eq!(InitialMessage::parse(&two).unwrap().unwrap().0.addresses, ["a:1", "b:2"]);
        let mut long = Vec::new();
        long.put_i64(PROTOCOL_VERSION_V1);
        long.put_i64(1);
        long.put_i32(5000);
        assert_eq!(InitialMessage::parse(&long), Err(InitialMessageError::BadAddressLength(5000)));
        assert_eq!(InitialMessage::parse(&(-3i64).to_be_bytes()), Err(InitialMessageError::UnknownVersion(-3)));
    }
}
