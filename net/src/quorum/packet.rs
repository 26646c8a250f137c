//! The quorum (Zab) port's records (reference/quorum-wire.md §3–5).
//!
//! The stream is a plain sequence of jute `QuorumPacket` records with no length prefix, so a reader
//! parses as far as the bytes go ([`QuorumPacket::parse`]). The one exception is SNAP, which the leader
//! follows with a raw snapshot body; the learner reads that with the snapshot decoder, not with this.

use thiserror::Error;

use crate::client::Id;
use crate::jute::{DecodeError, Jute, JuteReader, JuteWriter};

/// Zab's protocol version, sent in LEADERINFO and LearnerInfo (1.0).
pub const ZAB_PROTOCOL_VERSION: i32 = 0x10000;

/// Room for a packet's fixed fields and auth ids beyond its data: a packet still incomplete after
/// `max_data` plus this many bytes is refused.
const AUTH_ALLOWANCE: usize = 64 * 1024;

/// A packet's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Request,
    Proposal,
    Ack,
    Commit,
    Ping,
    Revalidate,
    Sync,
    Inform,
    CommitAndActivate,
    NewLeader,
    FollowerInfo,
    UpToDate,
    Diff,
    Trunc,
    Snap,
    ObserverInfo,
    LeaderInfo,
    AckEpoch,
    InformAndActivate,
    /// A type this implementation does not know; read so that it can be reported and skipped.
    Unknown(i32),
}

impl PacketType {
    pub fn as_i32(self) -> i32 {
        use PacketType::*;
        match self {
            Request => 1,
            Proposal => 2,
            Ack => 3,
            Commit => 4,
            Ping => 5,
            Revalidate => 6,
            Sync => 7,
            Inform => 8,
            CommitAndActivate => 9,
            NewLeader => 10,
            FollowerInfo => 11,
            UpToDate => 12,
            Diff => 13,
            Trunc => 14,
            Snap => 15,
            ObserverInfo => 16,
            LeaderInfo => 17,
            AckEpoch => 18,
            InformAndActivate => 19,
            Unknown(other) => other,
        }
    }

    pub fn from_i32(value: i32) -> PacketType {
        use PacketType::*;
        match value {
            1 => Request,
            2 => Proposal,
            3 => Ack,
            4 => Commit,
            5 => Ping,
            6 => Revalidate,
            7 => Sync,
            8 => Inform,
            9 => CommitAndActivate,
            10 => NewLeader,
            11 => FollowerInfo,
            12 => UpToDate,
            13 => Diff,
            14 => Trunc,
            15 => Snap,
            16 => ObserverInfo,
            17 => LeaderInfo,
            18 => AckEpoch,
            19 => InformAndActivate,
            other => Unknown(other),
        }
    }
}

/// One packet on the quorum port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub kind: PacketType,
    pub zxid: i64,
    /// `None` is jute's null buffer (−1), distinct from an empty one (PING replies use both).
    pub data: Option<Vec<u8>>,
    /// The forwarding connection's auth ids on REQUEST; null elsewhere.
    pub auth: Option<Vec<Id>>,
}

/// Why the quorum stream cannot go on: the peer is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("quorum packet data of {length} bytes exceeds the {max}-byte limit")]
    TooLarge { length: usize, max: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl QuorumPacket {
    pub fn new(kind: PacketType, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
        QuorumPacket { kind, zxid, data, auth: None }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.kind.as_i32());
        out.put_i64(self.zxid);
        out.put_buffer(self.data.as_deref());
        match &self.auth {
            None => out.put_i32(-1),
            Some(ids) => ids.encode(out),
        }
    }

    /// Parses a packet from the start of `bytes`: `Ok(None)` if more bytes are needed, otherwise the
    /// packet and how many bytes it took. A data buffer longer than `max_data` is refused before its
    /// bytes arrive, so a forged length cannot make the reader wait for (or buffer) gigabytes.
    pub fn parse(bytes: &[u8], max_data: usize) -> Result<Option<(QuorumPacket, usize)>, PacketError> {
        if bytes.len() >= 16 {
            let length = i32::from_be_bytes(bytes[12..16].try_into().expect("4 bytes"));
            if length > 0 && length as usize > max_data {
                return Err(PacketError::TooLarge { length: length as usize, max: max_data });
            }
        }
        let mut r = JuteReader::new(bytes);
        let parsed = (|| {
            let kind = PacketType::from_i32(r.read_i32()?);
            let zxid = r.read_i64()?;
            let data = r.read_buffer()?.map(<[u8]>::to_vec);
            let auth = match r.read_count(8)? {
                None => None,
                Some(count) => Some((0..count).map(|_| Id::decode(&mut r)).collect::<Result<_, _>>()?),
            };
            Ok(QuorumPacket { kind, zxid, data, auth })
        })();
        match parsed {
            Ok(packet) => Ok(Some((packet, r.position()))),
            // A length or count reaching past the bytes so far may be complete later, unless even the
            // largest packet allowed would have ended by now.
            Err(DecodeError::UnexpectedEof { .. } | DecodeError::LengthTooLarge { .. }) => {
                match bytes.len() > max_data + AUTH_ALLOWANCE {
                    true => Err(PacketError::TooLarge { length: bytes.len(), max: max_data + AUTH_ALLOWANCE }),
                    false => Ok(None),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What a learner says about itself in FOLLOWERINFO / OBSERVERINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfo {
    pub sid: i64,
    pub protocol_version: i32,
    pub config_version: i64,
}

impl LearnerInfo {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        out.put_i64(self.sid);
        out.put_i32(self.protocol_version);
        out.put_i64(self.config_version);
        out
    }

    /// Read by length, as ZooKeeper's leader does: older learners send only the sid, or no config
    /// version (pre-1.0 protocol 0, config version 0).
    pub fn decode(bytes: &[u8]) -> Result<LearnerInfo, DecodeError> {
        let mut r = JuteReader::new(bytes);
        let sid = r.read_i64()?;
        let protocol_version = if bytes.len() >= 12 { r.read_i32()? } else { 0 };
        let config_version = if bytes.len() >= 20 { r.read_i64()? } else { 0 };
        Ok(LearnerInfo { sid, protocol_version, config_version })
    }
}

/// A client request a learner forwards to the leader (REQUEST's data): the client's session, its xid,
/// the opcode, and the request body exactly as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub session_id: i64,
    pub cxid: i32,
    pub op: i32,
    pub body: Vec<u8>,
}

impl ForwardedRequest {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.body.len());
        out.put_i64(self.session_id);
        out.put_i32(self.cxid);
        out.put_i32(self.op);
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ForwardedRequest, DecodeError> {
        let mut r = JuteReader::new(bytes);
        let session_id = r.read_i64()?;
        let cxid = r.read_i32()?;
        let op = r.read_i32()?;
        let body = r.take(r.remaining())?.to_vec();
        Ok(ForwardedRequest { session_id, cxid, op, body })
    }
}

/// A session and its timeout: the unit of a learner's PING reply (sessions it saw activity on) and of
/// its REVALIDATE question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTouch {
    pub session_id: i64,
    pub timeout_ms: i32,
}

impl SessionTouch {
    /// A PING reply's data: the touches back to back (empty, not null, when there are none).
    pub fn list_to_bytes(touches: &[SessionTouch]) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 * touches.len());
        for t in touches {
            out.put_i64(t.session_id);
            out.put_i32(t.timeout_ms);
        }
        out
    }

    pub fn list_decode(bytes: &[u8]) -> Result<Vec<SessionTouch>, DecodeError> {
        let mut r = JuteReader::new(bytes);
        let mut touches = Vec::with_capacity(bytes.len() / 12);
        while !r.is_empty() {
            touches.push(SessionTouch { session_id: r.read_i64()?, timeout_ms: r.read_i32()? });
        }
        Ok(touches)
    }
}

/// The leader's answer to REVALIDATE: whether the session is alive (and now owned by the asker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateReply {
    pub session_id: i64,
    pub valid: bool,
}

impl RevalidateReply {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9);
        out.put_i64(self.session_id);
        out.put_bool(self.valid);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<RevalidateReply, DecodeError> {
        let mut r = JuteReader::new(bytes);
        Ok(RevalidateReply { session_id: r.read_i64()?, valid: r.read_bool()? })
    }
}

/// A 4-byte `int` body (LEADERINFO's protocol version, ACKEPOCH's epoch).
pub fn int_body(value: i32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

pub fn decode_int_body(bytes: &[u8]) -> Result<i32, DecodeError> {
    JuteReader::new(bytes).read_i32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_parse_from_a_stream_in_pieces() {
        let packets = [
            QuorumPacket::new(PacketType::Proposal, 0x1_0000_0002, Some(vec![1, 2, 3])),
            QuorumPacket::new(PacketType::UpToDate, -1, None),
            QuorumPacket {
                kind: PacketType::Request,
                zxid: -1,
                data: Some(vec![]),
                auth: Some(vec![Id { scheme: "ip".into(), id: "127.0.0.1".into() }]),
            },
            QuorumPacket::new(PacketType::Unknown(77), 5, None),
        ];
        let mut stream = Vec::new();
        for p in &packets {
            p.encode(&mut stream);
        }
        let mut at = 0;
        let mut read = Vec::new();
        let mut end = 0;
        while at < stream.len() {
            end = (end + 3).min(stream.len());
            while let Some((p, used)) = QuorumPacket::parse(&stream[at..end], 1024).unwrap() {
                read.push(p);
                at += used;
            }
        }
        assert_eq!(read, packets);
        let mut first = Vec::new();
        packets[0].encode(&mut first);
        assert_eq!(&first[..4], &[0, 0, 0, 2]);
        assert_eq!(first.len(), 4 + 8 + 4 + 3 + 4, "type, zxid, data, null auth");
    }

    #[test]
    fn an_oversized_packet_is_refused_before_its_bytes_arrive() {
        let mut head = Vec::new();
        head.put_i32(2);
        head.put_i64(1);
        head.put_i32(1 << 30);
        assert_eq!(QuorumPacket::parse(&head, 1 << 20), Err(PacketError::TooLarge { length: 1 << 30, max: 1 << 20 }));
    }

    #[test]
    fn bodies_round_trip() {
        let info = LearnerInfo { sid: 3, protocol_version: ZAB_PROTOCOL_VERSION, config_version: 0x1_0000_0000 };
        assert_eq!(LearnerInfo::decode(&info.to_bytes()).unwrap(), info);
        assert_eq!(LearnerInfo::decode(&3i64.to_be_bytes()).unwrap().protocol_version, 0, "a pre-1.0 learner");
        let request = ForwardedRequest { session_id: 9, cxid: 4, op: 5, body: b"body".to_vec() };
        assert_eq!(ForwardedRequest::decode(&request.to_bytes()).unwrap(), request);
        let touches = [SessionTouch { session_id: 1, timeout_ms: 3000 }, SessionTouch { session_id: 2, timeout_ms: 9 }];
        assert_eq!(SessionTouch::list_decode(&SessionTouch::list_to_bytes(&touches)).unwrap(), touches);
        assert!(SessionTouch::list_to_bytes(&[]).is_empty());
        let reply = RevalidateReply { session_id: 8, valid: true };
        assert_eq!(RevalidateReply::decode(&reply.to_bytes()).unwrap(), reply);
        assert_eq!(decode_int_body(&int_body(-1)).unwrap(), -1);
    }
}
