//! The quorum port's connections, as threads that move `QuorumPacket`s between a socket and the member
//! thread (the ZAB machines decide everything): on a leader one link per learner, admitted by
//! [`admit_learners`] (a gate: no thread or buffer for a connection before a member's opening), on a
//! learner one link to its leader, made by [`connect_to_leader`].
//!
//! Each link is a reader thread (packets in, tagged with the link's id) and a writer thread (packets
//! out, from a bounded queue: a learner that falls that far behind is dropped and synchronises again).
//! A SNAP on a leader's link is followed by the tree itself, streamed by the writer once everything the
//! SNAP names is applied; a learner's reader stores that stream as a snapshot file before it passes
//! the SNAP packet on.

use std::collections::VecDeque;
use std::io::{self, BufReader, BufWriter, Cursor, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use fk_engine::snap::stream::{receive_snapshot, send_snapshot};
use fk_net::quorum::{LearnerInfo, PacketType, QuorumAuthPacket, QuorumPacket};
use tracing::{debug, info, warn};

use super::Shared;
use super::messages::{QuorumEvent, SequencerMsg};
use super::snapshotter::SharedTree;
use crate::peers::admission::{Admitted, Gate, Verdict};
use crate::peers::sasl::PeerSasl;
use crate::peers::tls::dialled;
use crate::storage::Dirs;
use crate::zab::LinkId;
use fk_tls::blocking::{ReadHalf, WriteHalf};

/// Packets queued for one peer before it counts as too slow and is dropped.
const QUEUE_MAX: usize = 65_536;
/// Read size on a quorum socket.
const READ_CHUNK: usize = 64 * 1024;
/// Room above a packet's data limit for its own fields.
const PACKET_OVERHEAD: usize = 1024;

/// What a link's writer is asked to send.
pub enum Outgoing {
    Packet(QuorumPacket),
    /// SNAP at this zxid, then the tree once it has applied everything through the zxid.
    Snapshot(i64),
}

/// One connection's sending side; dropping it closes the connection.
pub struct Link {
    tx: Sender<Outgoing>,
    stream: Arc<std::sync::OnceLock<WriteHalf>>,
}

impl Link {
    /// Queues a packet; false if the peer is too far behind (the caller drops the link).
    pub fn send(&self, outgoing: Outgoing) -> bool {
        self.tx.try_send(outgoing).is_ok()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.get() {
            let _ = stream.shutdown();
        }
    }
}

/// Everything a link's threads need besides its socket.
#[derive(Clone)]
pub struct LinkContext {
    pub shared: Arc<Shared>,
    pub member: Sender<SequencerMsg>,
    pub dirs: Dirs,
}

impl LinkContext {
    fn tell(&self, event: QuorumEvent) {
        let _ = self.member.send(SequencerMsg::Quorum(event));
    }

    /// The largest record the quorum port takes: jute.maxbuffer plus ZooKeeper's extra allowance
    /// (`zookeeper.jute.maxbuffer.extrasize`, by default jute.maxbuffer again) — a txn around a
    /// maximal znode value is a little larger than the value.
    fn max_record(&self) -> usize {
        2 * self.shared.config.jute_max_buffer
    }

    fn max_packet(&self) -> usize {
        self.max_record() + PACKET_OVERHEAD
    }
}

/// The most a learner may send before its opening (FOLLOWERINFO or OBSERVERINFO) is complete: the
/// packet is 40 bytes (type, zxid, a 20-byte LearnerInfo, an empty auth list); the rest is room.
pub const LEARNER_OPENING_MAX: usize = 1024;

/// Whether `bytes`, the start of a quorum-port connection, are a learner's acceptable opening: a
/// FOLLOWERINFO or OBSERVERINFO from a member of `members` other than `my_id`. ZooKeeper also takes an
/// observer its configuration does not list (and logs it); without authentication the configured sid
/// is all a peer can show, so here only members get a link and its memory — unless `members` is `None`
/// (`reconfigEnabled`): a member about to be added is in no configuration yet, and any sid is taken,
/// as ZooKeeper takes it, within the gate's bounds.
pub fn judge_learner_opening(bytes: &[u8], my_id: u64, members: Option<&[u64]>) -> Verdict {
    let packet = match QuorumPacket::parse(bytes, LEARNER_OPENING_MAX) {
        Ok(Some((packet, _))) => packet,
        Ok(None) => return Verdict::Incomplete,
        Err(e) => return Verdict::Refuse(format!("not a quorum packet: {e}")),
    };
    if !matches!(packet.kind, PacketType::FollowerInfo | PacketType::ObserverInfo) {
        return Verdict::Refuse(format!("first packet {:?} is not FOLLOWERINFO or OBSERVERINFO", packet.kind));
    }
    let info = match LearnerInfo::decode(packet.data.as_deref().unwrap_or_default()) {
        Ok(info) => info,
        Err(e) => return Verdict::Refuse(format!("undecodable learner info: {e}")),
    };
    match u64::try_from(info.sid) {
        Ok(sid) if sid == my_id => Verdict::Refuse(format!("a learner claims this member's own sid {sid}")),
        Ok(sid) if sid > 0 && members.is_none_or(|members| members.contains(&sid)) => Verdict::Admit,
        _ => Verdict::Refuse(format!("sid {} is not a member of this ensemble", info.sid)),
    }
}

/// Runs the quorum port's admission for as long as the process lives, handing each learner that sent an
/// acceptable opening to the member thread (which decides what to do with it: only a leader keeps one).
/// With SASL between members, a learner may open with an auth packet instead: the exchange then runs on
/// a thread of its own (bounded by `init_limit`), and the learner's FOLLOWERINFO is judged after it.
pub fn admit_learners(
    gate: Gate,
    my_id: u64,
    members: Option<Vec<u64>>,
    member: Sender<SequencerMsg>,
    sasl: Option<Arc<PeerSasl>>,
    init_limit: Duration,
) {
    let never = AtomicBool::new(false);
    let judge = move |bytes: &[u8]| judge_learner_opening(bytes, my_id, members.as_deref());
    let judge_first = {
        let judge = judge.clone();
        let sasl = sasl.is_some();
        move |bytes: &[u8]| match (sasl, QuorumAuthPacket::starts(bytes)) {
            (true, Some(true)) => match QuorumAuthPacket::parse(bytes, LEARNER_OPENING_MAX) {
                Ok(Some(_)) => Verdict::Admit,
                Ok(None) => Verdict::Incomplete,
                Err(e) => Verdict::Refuse(e.to_string()),
            },
            _ => judge(bytes),
        }
    };
    gate.run(&never, judge_first, |admitted| match &sasl {
        None => member.send(SequencerMsg::Quorum(QuorumEvent::Accepted(admitted))).is_ok(),
        Some(sasl) => {
            let (sasl, member, judge) = (sasl.clone(), member.clone(), judge.clone());
            let peer = admitted.peer;
            let spawned = spawn(&format!("fk-learner-auth-{peer}"), move || {
                match authenticate_learner(admitted, &sasl, &judge, init_limit) {
                    Ok(admitted) => {
                        let _ = member.send(SequencerMsg::Quorum(QuorumEvent::Accepted(admitted)));
                    }
                    Err(why) => info!(%peer, "quorum port: connection refused: {why}"),
                }
            });
            if let Err(e) = spawned {
                warn!(%peer, "quorum port: cannot start a thread for SASL: {e}");
            }
            true
        }
    });
}

/// The SASL exchange with a learner that just connected, then its FOLLOWERINFO or OBSERVERINFO.
fn authenticate_learner(
    mut admitted: Admitted,
    sasl: &PeerSasl,
    judge: &impl Fn(&[u8]) -> Verdict,
    init_limit: Duration,
) -> Result<Admitted, String> {
    let close = |admitted: &Admitted| {
        let _ = admitted.writer.shutdown();
    };
    let _ = admitted.reader.socket().set_read_timeout(Some(init_limit));
    let admission = sasl.authenticate_from(&mut admitted.reader, &mut admitted.writer, &mut admitted.read);
    if let Err(why) = admission {
        close(&admitted);
        return Err(format!("SASL: {why}"));
    }
    debug!(peer = %admitted.peer, ?admission, "quorum port: SASL");
    loop {
        match judge(&admitted.read) {
            Verdict::Admit => break,
            Verdict::Refuse(why) => {
                close(&admitted);
                return Err(why);
            }
            Verdict::Incomplete if admitted.read.len() >= LEARNER_OPENING_MAX => {
                close(&admitted);
                return Err(format!("no complete opening in {LEARNER_OPENING_MAX} bytes after SASL"));
            }
            Verdict::Incomplete => {}
        }
        let mut chunk = [0u8; 256];
        match admitted.reader.read(&mut chunk) {
            Ok(0) => return Err("closed by the peer after SASL".into()),
            Ok(n) => admitted.read.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                close(&admitted);
                return Err(format!("no opening after SASL: {e}"));
            }
        }
    }
    let _ = admitted.reader.socket().set_read_timeout(None);
    Ok(admitted)
}

/// Starts the threads of a leader's link to a learner that connected, with the bytes the admission
/// read (its opening, and anything behind it).
pub fn start_leader_side(ctx: &LinkContext, id: LinkId, admitted: Admitted) -> io::Result<Link> {
    let (tx, rx) = bounded(QUEUE_MAX);
    let Admitted { reader, writer, read, .. } = admitted;
    let cell = Arc::new(std::sync::OnceLock::new());
    let _ = cell.set(writer.clone());
    let c = ctx.clone();
    spawn(&format!("fk-learner-{id}-in"), move || read_packets(&c, id, reader, read, false))?;
    let c = ctx.clone();
    spawn(&format!("fk-learner-{id}-out"), move || write_packets(&c, id, writer, rx))?;
    Ok(Link { tx, stream: cell })
}

/// Connects to the leader's quorum port in the background (ZooKeeper tries 5 times, a second apart,
/// each within `connect_timeout`; over TLS with `sslQuorum`); `Linked` or `Closed` tells the member
/// thread how it went.
pub fn connect_to_leader(
    ctx: &LinkContext,
    id: LinkId,
    address: String,
    connect_timeout: Duration,
) -> io::Result<Link> {
    let (tx, rx) = bounded(QUEUE_MAX);
    let cell = Arc::new(std::sync::OnceLock::new());
    let c = ctx.clone();
    let published = cell.clone();
    spawn(&format!("fk-leader-{id}"), move || {
        let connected = connect(&address, connect_timeout).and_then(|stream| {
            stream.set_read_timeout(Some(connect_timeout))?;
            stream.set_write_timeout(Some(connect_timeout))?;
            let (mut reader, mut writer) = dialled(c.shared.peer_tls.as_deref(), stream, &address)?;
            if let Some(sasl) = &c.shared.peer_sasl {
                sasl.authenticate_to(&mut reader, &mut writer, crate::peers::sasl::host_of(&address))
                    .map_err(|why| io::Error::new(io::ErrorKind::PermissionDenied, format!("SASL: {why}")))?;
            }
            writer.socket().set_read_timeout(None)?;
            writer.socket().set_write_timeout(None)?;
            Ok((reader, writer))
        });
        let (reader, writer) = match connected {
            Ok(halves) => halves,
            Err(e) => {
                return c.tell(QuorumEvent::Closed(id, format!("cannot connect to the leader at {address}: {e}")));
            }
        };
        let _ = published.set(writer.clone());
        c.tell(QuorumEvent::Linked(id));
        let writer_ctx = c.clone();
        if let Err(e) = spawn(&format!("fk-leader-{id}-out"), move || write_packets(&writer_ctx, id, writer, rx)) {
            return c.tell(QuorumEvent::Closed(id, format!("cannot start a thread: {e}")));
        }
        read_packets(&c, id, reader, Vec::new(), true);
    })?;
    Ok(Link { tx, stream: cell })
}

fn connect(address: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        for addr in address.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last = e,
            }
        }
    }
    Err(last)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new().name(name.to_owned()).spawn(f).map(|_| ())
}

/// Reads packets until the connection ends, handing on what each read completed as one batch (the
/// first batch from `pending`, what was read before); a learner's reader also takes the snapshot after
/// SNAP (the SNAP packet is handed on once it is stored).
fn read_packets(ctx: &LinkContext, id: LinkId, mut stream: ReadHalf, mut pending: Vec<u8>, learner: bool) {
    pending.reserve(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    let reason = 'link: loop {
        let mut batch = Vec::new();
        let mut used = 0;
        loop {
            match QuorumPacket::parse(&pending[used..], ctx.max_packet()) {
                Ok(Some((packet, length))) => {
                    used += length;
                    if learner && packet.kind == PacketType::Snap {
                        pending.drain(..used);
                        used = 0;
                        if let Err(e) = receive_snap(ctx, &mut stream, &mut pending, packet.zxid) {
                            break 'link format!("cannot receive the leader's snapshot: {e}");
                        }
                    }
                    batch.push(packet);
                }
                Ok(None) => break,
                Err(e) => break 'link format!("bad packet: {e}"),
            }
        }
        pending.drain(..used);
        if !batch.is_empty() {
            ctx.tell(QuorumEvent::Packets(id, batch));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break "connection closed by the peer".to_owned(),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break format!("read failed: {e}"),
        }
    };
    debug!(link = id, "quorum link reader ends: {reason}");
    ctx.tell(QuorumEvent::Closed(id, reason));
}

/// Stores the snapshot that follows a SNAP packet; `pending` holds the bytes already read past the
/// packet, and afterwards those read past the snapshot.
fn receive_snap(ctx: &LinkContext, stream: &mut ReadHalf, pending: &mut Vec<u8>, zxid: i64) -> anyhow::Result<()> {
    let mut buffered = BufReader::with_capacity(READ_CHUNK, stream);
    let mut input = Cursor::new(std::mem::take(pending)).chain(&mut buffered);
    let config = &ctx.shared.config;
    let path = receive_snapshot(&mut input, &ctx.dirs.snap, zxid, ctx.max_record(), config.force_sync)?;
    info!("received the leader's snapshot as {}", path.display());
    let (cursor, buffered) = input.into_inner();
    let position = cursor.position() as usize;
    let mut rest = cursor.into_inner().split_off(position);
    rest.extend_from_slice(buffered.buffer());
    *pending = rest;
    Ok(())
}

/// Writes queued packets, flushing whenever the queue runs dry.
fn write_packets(ctx: &LinkContext, id: LinkId, stream: WriteHalf, rx: Receiver<Outgoing>) {
    let shutdown = stream.clone();
    let mut out = BufWriter::with_capacity(READ_CHUNK, stream);
    let mut encoded = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        while let Ok(first) = rx.recv() {
            let mut next = VecDeque::from([first]);
            while let Some(outgoing) = next.pop_front() {
                match outgoing {
                    Outgoing::Packet(packet) => {
                        encoded.clear();
                        packet.encode(&mut encoded);
                        out.write_all(&encoded)?;
                    }
                    Outgoing::Snapshot(zxid) => send_snap(ctx, &mut out, zxid)?,
                }
                if let Ok(more) = rx.try_recv() {
                    next.push_back(more);
                }
            }
            out.flush()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        debug!(link = id, "quorum link writer ends: {e}");
    }
    let _ = shutdown.shutdown();
}

/// SNAP, then the tree as of at least `zxid` (fuzzy beyond it; the txns after `zxid` follow as
/// proposals, and replaying them is idempotent).
fn send_snap(ctx: &LinkContext, out: &mut impl Write, zxid: i64) -> anyhow::Result<()> {
    while ctx.shared.tree.read().last_processed_zxid() < zxid {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut encoded = Vec::new();
    QuorumPacket::new(PacketType::Snap, zxid, None).encode(&mut encoded);
    out.write_all(&encoded)?;
    let stats = send_snapshot(&SharedTree(&ctx.shared.tree), &ctx.dirs.snap, out)?;
    info!("sent a snapshot at 0x{zxid:x} to a learner ({} nodes, {} bytes)", stats.nodes, stats.bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening(kind: PacketType, sid: i64) -> Vec<u8> {
        let info = LearnerInfo { sid, protocol_version: 0x10000, config_version: 0 }.to_bytes();
        let mut bytes = Vec::new();
        QuorumPacket::new(kind, 0x1_0000_0000, Some(info)).encode(&mut bytes);
        bytes
    }

    #[test]
    fn only_a_members_learner_info_opens_a_link() {
        let members = [1, 2, 3, 4];
        let follower = opening(PacketType::FollowerInfo, 2);
        for end in 0..follower.len() {
            assert_eq!(judge_learner_opening(&follower[..end], 1, Some(&members)), Verdict::Incomplete, "{end} bytes");
        }
        let mut overlong = Vec::new();
        QuorumPacket::new(PacketType::FollowerInfo, 0, Some(vec![0; 4096])).encode(&mut overlong);
        overlong.truncate(64);
        // (bytes, admitted, what a refusal says)
        let table: Vec<(Vec<u8>, Option<&str>)> = vec![
            (follower.clone(), None),
            ([follower.clone(), vec![9, 9, 9]].concat(), None),
            (opening(PacketType::ObserverInfo, 4), None),
            (opening(PacketType::FollowerInfo, 1), Some("this member's own sid")),
            (opening(PacketType::FollowerInfo, 7), Some("sid 7 is not a member")),
            (opening(PacketType::ObserverInfo, -1), Some("sid -1 is not a member")),
            (opening(PacketType::Ping, 2), Some("is not FOLLOWERINFO or OBSERVERINFO")),
            (overlong, Some("not a quorum packet")),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Some("")),
        ];
        for (bytes, refusal) in table {
            match (judge_learner_opening(&bytes, 1, Some(&members)), refusal) {
                (Verdict::Admit, None) => {}
                (Verdict::Refuse(why), Some(expected)) => assert!(why.contains(expected), "{why}"),
                (verdict, expected) => panic!("{bytes:?}: {verdict:?}, expected refusal {expected:?}"),
            }
        }
        assert!(follower.len() <= LEARNER_OPENING_MAX);
        // With reconfigEnabled, a sid no configuration lists yet (a member about to be added).
        assert_eq!(judge_learner_opening(&opening(PacketType::FollowerInfo, 7), 1, None), Verdict::Admit);
        for refused in [opening(PacketType::FollowerInfo, 1), opening(PacketType::FollowerInfo, -1)] {
            assert!(matches!(judge_learner_opening(&refused, 1, None), Verdict::Refuse(_)));
        }
    }
}
