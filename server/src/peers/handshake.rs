//! The election port's handshake and framing (reference/quorum-wire.md §1), over blocking streams.
//!
//! Opening message, read by the accepting side (no length prefix):
//! ```text
//! V1/V2:  i64 protocolVersion (-65536 / -65535) | i64 sid | i32 addrLen (1..=2048) | addr (UTF-8 host:port[|...])
//! legacy: i64 sid (>= 0), nothing else
//! ```
//! Then both ways: `i32 length` (1..=512 KiB, anything else drops the connection) and `length` bytes.
//!
//! The decisions — whether bytes make an opening, who keeps a connection, which address to connect back
//! to — are pure functions here,
//! table-tested; the manager in `election_link` only acts on them.

use std::io::{self, Read, Write};
use std::net::IpAddr;

use fk_net::frame::LENGTH_PREFIX;
use fk_net::quorum::InitialMessage;
use fk_net::quorum::election::{MAX_ADDRESS_LEN, MAX_FRAME_LEN};
use thiserror::Error;

use super::admission::Verdict;

/// The sid a pre-3.5 observer without an id announces (ZooKeeper's `QuorumPeer.OBSERVER_ID`); the
/// acceptor replaces it with a fresh negative id.
pub const OBSERVER_ID: i64 = i64::MAX;

/// Why a connection was dropped during its handshake or while reading frames.
#[derive(Debug, Error)]
pub enum LinkError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// ZooKeeper's RecvWorker: "Received packet with invalid packet" for `length <= 0 || > PACKETMAXSIZE`.
    #[error("frame length {0} is outside 1..={MAX_FRAME_LEN}")]
    FrameLength(i32),
}

/// What the accepting side does with a connection from `remote` (QuorumCnxManager.handleConnection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAccept {
    /// The larger sid connected: keep it, replacing any older connection from the same sid.
    Keep,
    /// A smaller sid connected: close it, drop our own link to it (it may be stale: the peer
    /// evidently thinks there is none), and connect to it ourselves.
    ConnectBack,
    /// Our own sid: a configuration error (ZOOKEEPER-2164); drop it.
    Refuse,
}

/// What the initiating side does once its opening message is written (QuorumCnxManager.startConnection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInitiate {
    /// We are the larger sid: the connection is ours to keep.
    Keep,
    /// The peer is larger: it will see our opening message, close, and connect back to us.
    CloseAfterOpening,
}

pub fn on_accept(my_id: i64, remote: i64) -> OnAccept {
    match remote.cmp(&my_id) {
        std::cmp::Ordering::Greater => OnAccept::Keep,
        std::cmp::Ordering::Less => OnAccept::ConnectBack,
        std::cmp::Ordering::Equal => OnAccept::Refuse,
    }
}

pub fn on_initiate(my_id: i64, remote: i64) -> OnInitiate {
    if remote > my_id { OnInitiate::CloseAfterOpening } else { OnInitiate::Keep }
}

/// The first announced address a peer can be reached at: ZooKeeper ignores wildcard hosts (a peer bound
/// with `quorumListenOnAllIPs` may announce `0.0.0.0:port`) and addresses without a port.
pub fn reachable_address(message: &InitialMessage) -> Option<String> {
    message.addresses.iter().find(|a| is_usable_address(a)).cloned()
}

fn is_usable_address(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else { return false };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return false;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    !bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// Writes our opening message (V1: one address, as ZooKeeper 3.8 without multi-address support).
pub fn write_opening(stream: &mut impl Write, my_id: i64, announced: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(20 + announced.len());
    InitialMessage { sid: my_id, addresses: vec![announced.to_owned()] }.encode(&mut bytes);
    stream.write_all(&bytes)?;
    stream.flush()
}

/// The most an opening message takes: version, sid, address length and the longest address.
pub const OPENING_MAX: usize = 20 + MAX_ADDRESS_LEN;

/// The election port admission's judge: a whole opening message, or a refusal as soon as the bytes so
/// far cannot start one (before waiting for more bytes a stranger may never send).
pub fn judge_opening(bytes: &[u8]) -> Verdict {
    match InitialMessage::parse(bytes) {
        Ok(Some(_)) => Verdict::Admit,
        Ok(None) => Verdict::Incomplete,
        Err(e) => Verdict::Refuse(format!("bad opening message: {e}")),
    }
}

/// Reads one frame's payload into `payload` (replacing its contents).
pub fn read_frame(stream: &mut impl Read, payload: &mut Vec<u8>) -> Result<(), LinkError> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    stream.read_exact(&mut prefix)?;
    let length = i32::from_be_bytes(prefix);
    if length <= 0 || length as usize > MAX_FRAME_LEN {
        return Err(LinkError::FrameLength(length));
    }
    payload.clear();
    payload.resize(length as usize, 0);
    stream.read_exact(payload)?;
    Ok(())
}

/// Writes one frame: prefix and payload in one buffer, one write (TCP_NODELAY is on).
pub fn write_frame(stream: &mut impl Write, scratch: &mut Vec<u8>, payload: &[u8]) -> io::Result<()> {
    debug_assert!(is_sendable(payload.len()));
    scratch.clear();
    let start = fk_net::frame::begin_frame(scratch);
    scratch.extend_from_slice(payload);
    fk_net::frame::end_frame(scratch, start);
    stream.write_all(scratch)
}

/// A payload the receiving side accepts (ZooKeeper drops the connection on anything else).
pub fn is_sendable(length: usize) -> bool {
    (1..=MAX_FRAME_LEN).contains(&length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fk_net::quorum::election::{PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2};

    #[test]
    fn the_larger_sid_keeps_the_connection() {
        // (my id, remote id, on accept, on initiate)
        let table = [
            (2, 3, OnAccept::Keep, OnInitiate::CloseAfterOpening),
            (3, 2, OnAccept::ConnectBack, OnInitiate::Keep),
            (2, 2, OnAccept::Refuse, OnInitiate::Keep),
            (1, -1, OnAccept::ConnectBack, OnInitiate::Keep),
            (1, i64::MAX, OnAccept::Keep, OnInitiate::CloseAfterOpening),
        ];
        for (me, remote, accept, initiate) in table {
            assert_eq!(on_accept(me, remote), accept, "accept {me} <- {remote}");
            assert_eq!(on_initiate(me, remote), initiate, "initiate {me} -> {remote}");
        }
    }

    #[test]
    fn wildcard_and_portless_addresses_are_not_reachable() {
        let table = [
            (vec!["127.0.0.1:3888"], Some("127.0.0.1:3888")),
            (vec!["0.0.0.0:3888"], None),
            (vec!["[::]:3888"], None),
            (vec!["0.0.0.0:3888", "zk2.example:3888"], Some("zk2.example:3888")),
            (vec!["[::1]:3888"], Some("[::1]:3888")),
            (vec!["host-without-port"], None),
            (vec!["host:notaport"], None),
            (vec![], None),
        ];
        for (addresses, expected) in table {
            let message = InitialMessage { sid: 1, addresses: addresses.iter().map(|a| a.to_string()).collect() };
            assert_eq!(reachable_address(&message).as_deref(), expected, "{addresses:?}");
        }
    }

    #[test]
    fn opening_messages_are_judged_in_every_form() {
        let mut bytes = Vec::new();
        write_opening(&mut bytes, 2, "127.0.0.1:3888").unwrap();
        assert_eq!(&bytes[..8], &PROTOCOL_VERSION_V1.to_be_bytes());
        for end in 0..bytes.len() {
            assert_eq!(judge_opening(&bytes[..end]), Verdict::Incomplete, "{end} bytes");
        }
        let whole = bytes.len();
        bytes.extend_from_slice(&[0, 0, 0, 1, 42]); // a frame right behind it is not part of it
        assert_eq!(judge_opening(&bytes), Verdict::Admit);
        let (message, used) = InitialMessage::parse(&bytes).unwrap().unwrap();
        assert_eq!((message, used), (InitialMessage { sid: 2, addresses: vec!["127.0.0.1:3888".into()] }, whole));

        assert_eq!(judge_opening(&7i64.to_be_bytes()), Verdict::Admit, "legacy: the sid alone");
        let mut v2 = Vec::new();
        InitialMessage { sid: 4, addresses: vec!["a:1".into(), "b:2".into()] }.encode(&mut v2);
        assert_eq!(&v2[..8], &PROTOCOL_VERSION_V2.to_be_bytes());
        assert_eq!(InitialMessage::parse(&v2).unwrap().unwrap().0.addresses, ["a:1", "b:2"]);
        assert!(OPENING_MAX >= v2.len());
    }

    #[test]
    fn bad_opening_messages_are_refused_before_more_bytes_are_awaited() {
        let refused = |bytes: &[u8]| matches!(judge_opening(bytes), Verdict::Refuse(_));
        assert!(refused(&(-3i64).to_be_bytes()), "unknown version");
        for length in [0i32, -1, 2049] {
            let mut bytes = PROTOCOL_VERSION_V1.to_be_bytes().to_vec();
            bytes.extend_from_slice(&5i64.to_be_bytes());
            bytes.extend_from_slice(&length.to_be_bytes());
            assert!(refused(&bytes), "address length {length}");
        }
    }

    #[test]
    fn frame_lengths_outside_the_bound_are_refused() {
        let max = MAX_FRAME_LEN as i32;
        // (length prefix, accepted)
        let table = [(1, true), (max, true), (0, false), (-1, false), (max + 1, false), (i32::MIN, false)];
        for (length, accepted) in table {
            let mut bytes = length.to_be_bytes().to_vec();
            if accepted {
                bytes.resize(4 + length as usize, 7);
            }
            let result = read_frame(&mut io::Cursor::new(&bytes), &mut Vec::new());
            match result {
                Ok(()) => assert!(accepted, "length {length} accepted"),
                Err(LinkError::FrameLength(l)) => assert!(!accepted && l == length, "length {length}"),
                Err(e) => panic!("length {length}: {e}"),
            }
        }
        let mut out = Vec::new();
        write_frame(&mut out, &mut Vec::new(), b"abc").unwrap();
        assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
        assert!(!is_sendable(0) && is_sendable(1) && is_sendable(MAX_FRAME_LEN) && !is_sendable(MAX_FRAME_LEN + 1));
    }
}
