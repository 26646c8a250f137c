//! `QuorumAuthPacket`: SASL between members (ZooKeeper's `QuorumAuth`). With `quorum.auth.enableSasl`, a
//! member dialling another (election or learner connection) that requires SASL sends these first — the
//! election opening message goes before them, a learner's FOLLOWERINFO after — and the accepting member
//! answers each with a challenge until it sends SUCCESS or ERROR.

use thiserror::Error;

use crate::jute::{DecodeError, JuteReader, JuteWriter};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthPacketError {
    #[error("not a quorum auth packet (magic {0:#x})")]
    NotAuth(i64),
    #[error("an auth token of {0} bytes, more than allowed")]
    TooLarge(usize),
    #[error("{0}")]
    Decode(DecodeError),
}

/// The first field of every auth packet; what the accepting side peeks at to tell one from a member
/// that sends none.
/// Java writes it `-0xa0dbcafecafe1234L`: a hex long literal with its top bit set is already negative
/// there, and negating it wraps.
pub const MAGIC: i64 = (0xa0db_cafe_cafe_1234_u64 as i64).wrapping_neg();

/// `QuorumAuth.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStatus {
    InProgress,
    Success,
    Error,
}

impl AuthStatus {
    pub fn as_i32(self) -> i32 {
        match self {
            AuthStatus::InProgress => 0,
            AuthStatus::Success => 1,
            AuthStatus::Error => -1,
        }
    }

    /// ZooKeeper takes any other value as ERROR.
    pub fn from_i32(value: i32) -> AuthStatus {
        match value {
            0 => AuthStatus::InProgress,
            1 => AuthStatus::Success,
            _ => AuthStatus::Error,
        }
    }
}

/// One auth packet (the magic implied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAuthPacket {
    pub status: AuthStatus,
    pub token: Vec<u8>,
}

impl QuorumAuthPacket {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(MAGIC);
        out.put_i32(self.status.as_i32());
        out.put_buffer(Some(&self.token));
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Whether `bytes` start with an auth packet; `None` until 8 bytes are there.
    pub fn starts(bytes: &[u8]) -> Option<bool> {
        Some(i64::from_be_bytes(bytes.get(..8)?.try_into().expect("8 bytes")) == MAGIC)
    }

    /// A whole packet at the start of `bytes` and its length, `None` if more bytes are needed. A token
    /// longer than `max_token` or a wrong magic is an error.
    pub fn parse(bytes: &[u8], max_token: usize) -> Result<Option<(QuorumAuthPacket, usize)>, AuthPacketError> {
        if let Some(false) = Self::starts(bytes) {
            let magic = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
            return Err(AuthPacketError::NotAuth(magic));
        }
        if let Some(length) = bytes.get(12..16) {
            let length = i32::from_be_bytes(length.try_into().expect("4 bytes"));
            if length > 0 && length as usize > max_token {
                return Err(AuthPacketError::TooLarge(length as usize));
            }
        }
        let mut r = JuteReader::new(bytes);
        let parsed = (|| {
            r.read_i64()?;
            let status = AuthStatus::from_i32(r.read_i32()?);
            let token = r.read_buffer()?.map(<[u8]>::to_vec).unwrap_or_default();
            Ok(QuorumAuthPacket { status, token })
        })();
        match parsed {
            Ok(packet) => Ok(Some((packet, r.position()))),
            Err(DecodeError::UnexpectedEof { .. } | DecodeError::LengthTooLarge { .. }) => Ok(None),
            Err(e) => Err(AuthPacketError::Decode(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial_packets() {
        let packet = QuorumAuthPacket { status: AuthStatus::InProgress, token: b"realm=x".to_vec() };
        let bytes = packet.to_bytes();
        // ZooKeeper's layout: magic, status, then the token as a jute buffer.
        assert_eq!(&bytes[..8], &MAGIC.to_be_bytes());
        assert_eq!(&bytes[8..16], &[0, 0, 0, 0, 0, 0, 0, 7]);
        for end in 0..bytes.len() {
            assert_eq!(QuorumAuthPacket::parse(&bytes[..end], 64), Ok(None), "{end} bytes");
        }
        assert_eq!(QuorumAuthPacket::parse(&bytes, 64), Ok(Some((packet, bytes.len()))));
        assert_eq!(QuorumAuthPacket::starts(&bytes), Some(true));
        assert_eq!(QuorumAuthPacket::starts(&[0; 8]), Some(false));
        assert!(QuorumAuthPacket::parse(&[0; 20], 64).is_err());
        assert!(QuorumAuthPacket::parse(&bytes, 3).is_err());
    }
}
