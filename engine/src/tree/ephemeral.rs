//! What `ephemeralOwner` encodes (ZooKeeper's `EphemeralType`, reference/client-wire.md §11).

/// `ephemeralOwner` of a container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;

/// Top byte 0xFF marks an extended type; with extended-type id 0 (TTL) the low 40 bits are the TTL.
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
const EXTENDED_TYPE_MASK: i64 = 0x00ff_ff00_0000_0000;

/// The largest TTL ZooKeeper accepts: 2^40 - 1 ms.
pub const MAX_TTL_MS: i64 = 0x00ff_ffff_ffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralKind {
    Persistent,
    Session(i64),
    Container,
    Ttl(i64),
}

impl EphemeralKind {
    /// Decodes an owner. TTL encodings exist only with extended types enabled; otherwise every other
    /// non-zero owner is a session id.
    pub fn of(owner: i64, extended_types: bool) -> EphemeralKind {
        match owner {
            0 => EphemeralKind::Persistent,
            CONTAINER_OWNER => EphemeralKind::Container,
            o if extended_types && o & EXTENDED_MASK == EXTENDED_MASK && o & EXTENDED_TYPE_MASK == 0 => {
                EphemeralKind::Ttl(o & MAX_TTL_MS)
            }
            o => EphemeralKind::Session(o),
        }
    }

    pub fn owner(self) -> i64 {
        match self {
            EphemeralKind::Persistent => 0,
            EphemeralKind::Session(id) => id,
            EphemeralKind::Container => CONTAINER_OWNER,
            EphemeralKind::Ttl(ttl) => {
                assert!(ttl > 0 && ttl <= MAX_TTL_MS, "TTL {ttl} out of range");
                EXTENDED_MASK | ttl
            }
        }
    }

    pub fn session(self) -> Option<i64> {
        match self {
            EphemeralKind::Session(id) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_zookeeper() {
        assert_eq!(EphemeralKind::Ttl(3_600_000).owner() as u64, 0xff00_0000_0036_ee80);
        assert_eq!(EphemeralKind::of(0xff00_0000_0036_ee80u64 as i64, true), EphemeralKind::Ttl(3_600_000));
        assert_eq!(
            EphemeralKind::of(0xff00_0000_0036_ee80u64 as i64, false),
            EphemeralKind::Session(0xff00_0000_0036_ee80u64 as i64)
        );
        assert_eq!(EphemeralKind::of(i64::MIN, false), EphemeralKind::Container);
        assert_eq!(EphemeralKind::of(0x0100_007e_a1af_0001, true), EphemeralKind::Session(0x0100_007e_a1af_0001));
    }
}
