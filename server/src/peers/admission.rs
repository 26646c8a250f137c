//! Admission on the quorum and election ports: a connection costs a socket and a few bytes until its
//! peer has sent a complete, acceptable opening message (a learner's FOLLOWERINFO/OBSERVERINFO, an
//! election peer's initial message); only then is it handed on to get its threads and buffers.
//!
//! One thread per port runs a [`Gate`]: a mio loop over the listener and the connections still in
//! their opening. What an unproven peer can make us hold is bounded three ways:
//! - time: a connection that has not completed its opening within the deadline is closed (ZooKeeper
//!   closes it when its socket timeout, `initLimit × tickTime` on the quorum port, runs out);
//! - count: at most `pending_max` openings at once; one more closes the *oldest*, so a flood of silent
//!   connections cannot lock a real member out (a member sends its opening as soon as it connects and
//!   is through long before a flood could push it out);
//! - bytes: at most `opening_bytes_max` read per connection before the opening must be complete.
//!
//! The judge deciding whether the bytes so far make an acceptable opening is the caller's; so is what
//! happens to an admitted connection (with every byte read so far, which may run past the opening).
//!
//! With TLS between members (`peers::tls`), the handshake runs here too, inside the same bounds: the
//! judge sees the decrypted bytes, and a connection is admitted with its TLS state.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fk_tls::blocking::{ReadHalf, WriteHalf};
use fk_tls::nonblocking::Plaintext;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{debug, info, warn};

use super::tls::{Accepts, PeerTls};

/// Openings in progress at once, by default, on each port.
pub const PENDING_MAX: usize = 32;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(200);
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// The bounds a gate keeps.
#[derive(Debug, Clone, Copy)]
pub struct GateLimits {
    /// How long a connection may take to send its whole opening.
    pub deadline: Duration,
    /// Openings in progress at once; one more closes the oldest.
    pub pending_max: usize,
    /// Bytes a connection may send before its opening must be complete.
    pub opening_bytes_max: usize,
}

/// What the bytes read so far from a connection amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a whole opening yet.
    Incomplete,
    /// A whole, acceptable opening.
    Admit,
    /// Not acceptable: closed, and the reason logged.
    Refuse(String),
}

/// A connection through the gate: blocking again (over TLS if it came so), as its two halves, with
/// everything read from it so far.
pub struct Admitted {
    pub reader: ReadHalf,
    pub writer: WriteHalf,
    pub peer: SocketAddr,
    /// The opening and whatever arrived behind it.
    pub read: Vec<u8>,
    /// Accept order on this port (increasing): which of two connections is the newer.
    pub sequence: u64,
}

/// Counts since start, for operators and tests.
#[derive(Debug, Default)]
pub struct GateCounters {
    pub admitted: AtomicU64,
    pub refused: AtomicU64,
    pub timed_out: AtomicU64,
    /// Closed to make room for a newer connection.
    pub evicted: AtomicU64,
}

/// A snapshot of [`GateCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    pub admitted: u64,
    pub refused: u64,
    pub timed_out: u64,
    pub evicted: u64,
}

impl GateCounters {
    pub fn snapshot(&self) -> GateStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GateStats {
            admitted: load(&self.admitted),
            refused: load(&self.refused),
            timed_out: load(&self.timed_out),
            evicted: load(&self.evicted),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("peer", &self.peer)
            .field("read", &self.read.len())
            .field("sequence", &self.sequence)
            .finish()
    }
}

/// How an opening connection's bytes travel.
enum Transport {
    Plain,
    /// On a port that takes both, before the first byte.
    Undecided,
    Tls(Box<rustls::Connection>),
}

/// A TLS record of type handshake starts with this byte; a member's plaintext opening with a packet
/// type (0) or the election protocol's version (0xff…).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A connection still in its opening.
struct Opening {
    token: Token,
    stream: TcpStream,
    transport: Transport,
    peer: SocketAddr,
    since: Instant,
    read: Vec<u8>,
    sequence: u64,
}

/// The admission loop of one listening port.
pub struct Gate {
    name: &'static str,
    poll: Poll,
    listener: TcpListener,
    waker: Arc<Waker>,
    limits: GateLimits,
    /// In accept order: the front is the oldest (the first to be evicted or to time out).
    openings: VecDeque<Opening>,
    /// `accept` failed (out of file descriptors, say): connections may wait in the backlog, and mio's
    /// readiness is edge-triggered, so the loop tries again after a pause rather than on a new event.
    accept_failed: bool,
    next_sequence: u64,
    counters: Arc<GateCounters>,
    tls: Option<Arc<PeerTls>>,
}

impl Gate {
    /// A gate on `listener` (blocking or not); `name` tells its port in the log.
    pub fn new(name: &'static str, listener: std::net::TcpListener, limits: GateLimits) -> io::Result<Gate> {
        Self::with_tls(name, listener, limits, None)
    }

    /// A gate whose connections come over TLS, or either way, as `tls` says.
    pub fn with_tls(
        name: &'static str,
        listener: std::net::TcpListener,
        limits: GateLimits,
        tls: Option<Arc<PeerTls>>,
    ) -> io::Result<Gate> {
        assert!(limits.pending_max > 0 && limits.opening_bytes_max > 0, "a gate must admit something");
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let counters = Arc::new(GateCounters::default());
        let openings = VecDeque::new();
        Ok(Gate {
            name,
            poll,
            listener,
            waker,
            limits,
            openings,
            accept_failed: false,
            next_sequence: 0,
            counters,
            tls,
        })
    }

    /// Wakes the loop so it sees `stopping` (see [`Gate::run`]).
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    pub fn counters(&self) -> Arc<GateCounters> {
        self.counters.clone()
    }

    /// Runs until `stopping` is set (and the waker woken) or `admit` returns false. `judge` sees all the
    /// bytes a connection has sent so far, each time more arrive.
    pub fn run(
        mut self,
        stopping: &AtomicBool,
        mut judge: impl FnMut(&[u8]) -> Verdict,
        mut admit: impl FnMut(Admitted) -> bool,
    ) {
        let mut events = Events::with_capacity(256);
        let mut chunk = vec![0u8; self.limits.opening_bytes_max];
        loop {
            let expiry = self.openings.front().map(|o| self.limits.deadline.saturating_sub(o.since.elapsed()));
            let retry = self.accept_failed.then_some(ACCEPT_ERROR_PAUSE);
            let timeout = [expiry, retry].into_iter().flatten().min();
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                panic!("{} admission: poll failed: {e}", self.name);
            }
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            if self.accept_failed {
                self.accept_all();
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    token => {
                        if let Some(admitted) = self.read_opening(token, &mut chunk, &mut judge)
                            && !admit(admitted)
                        {
                            return;
                        }
                    }
                }
            }
            self.close_expired();
        }
    }

    fn accept_all(&mut self) {
        self.accept_failed = false;
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.start_opening(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("{} port: accept failed, trying again in {ACCEPT_ERROR_PAUSE:?}: {e}", self.name);
                    self.accept_failed = true;
                    return;
                }
            }
        }
    }

    fn start_opening(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        if self.openings.len() >= self.limits.pending_max {
            let oldest = self.openings.pop_front().expect("the gate is full");
            debug!(peer = %oldest.peer, "{} port: closing the oldest connection still in its opening to make room", self.name);
            bump(&self.counters.evicted);
            self.close(oldest);
        }
        self.next_sequence += 1;
        let token = Token(self.next_sequence as usize % (usize::MAX - 2));
        if let Err(e) = self.poll.registry().register(&mut stream, token, Interest::READABLE) {
            warn!(%peer, "{} port: cannot watch a new connection: {e}", self.name);
            return;
        }
        let sequence = self.next_sequence;
        let transport = match self.tls.as_ref().map(|tls| (tls.accepts(), tls)) {
            None | Some((Accepts::Plaintext, _)) => Transport::Plain,
            Some((Accepts::Both, _)) => Transport::Undecided,
            Some((Accepts::Tls, tls)) => match tls.accept() {
                Ok(session) => Transport::Tls(Box::new(session)),
                Err(e) => {
                    warn!(%peer, "{} port: cannot start TLS for a connection: {e}", self.name);
                    return;
                }
            },
        };
        let since = Instant::now();
        self.openings.push_back(Opening { token, stream, transport, peer, since, read: Vec::new(), sequence });
    }

    /// Reads what `token`'s connection sent; returns it once its opening is complete and acceptable.
    fn read_opening(
        &mut self,
        token: Token,
        chunk: &mut [u8],
        judge: &mut impl FnMut(&[u8]) -> Verdict,
    ) -> Option<Admitted> {
        let index = self.openings.iter().position(|o| o.token == token)?;
        let opening = &mut self.openings[index];
        let verdict = loop {
            // Never more than the bound in all: what is past it is refused unread.
            let room = self.limits.opening_bytes_max - opening.read.len();
            match read_some(opening, &mut chunk[..room], self.tls.as_deref()) {
                Ok(0) => break Verdict::Refuse("closed by the peer before its opening was complete".into()),
                Ok(n) => {
                    opening.read.extend_from_slice(&chunk[..n]);
                    match judge(&opening.read) {
                        Verdict::Incomplete if opening.read.len() >= self.limits.opening_bytes_max => {
                            break Verdict::Refuse(format!(
                                "no complete opening in {} bytes",
                                self.limits.opening_bytes_max
                            ));
                        }
                        Verdict::Incomplete => {}
                        verdict => break verdict,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Verdict::Refuse(format!("read failed: {e}")),
            }
        };
        let opening = self.openings.remove(index).expect("found above");
        match verdict {
            Verdict::Admit => self.hand_over(opening),
            Verdict::Refuse(reason) => {
                info!(peer = %opening.peer, "{} port: connection refused: {reason}", self.name);
                bump(&self.counters.refused);
                self.close(opening);
                None
            }
            Verdict::Incomplete => unreachable!("the loop breaks on a final verdict only"),
        }
    }

    fn hand_over(&mut self, mut opening: Opening) -> Option<Admitted> {
        let tls = match opening.transport {
            Transport::Tls(session) => Some(session),
            Transport::Plain | Transport::Undecided => None,
        };
        if let (Some(session), Some(peer_tls)) = (&tls, &self.tls)
            && let Err(why) = peer_tls.check_dialler(session, opening.peer.ip())
        {
            info!(peer = %opening.peer, "{} port: connection refused: {why}", self.name);
            bump(&self.counters.refused);
            let _ = self.poll.registry().deregister(&mut opening.stream);
            let _ = opening.stream.shutdown(std::net::Shutdown::Both);
            return None;
        }
        let _ = self.poll.registry().deregister(&mut opening.stream);
        let stream = std::net::TcpStream::from(opening.stream);
        if let Err(e) = stream.set_nonblocking(false) {
            warn!(peer = %opening.peer, "{} port: cannot hand a connection on: {e}", self.name);
            return None;
        }
        let _ = stream.set_nodelay(true);
        bump(&self.counters.admitted);
        let (reader, writer) = match fk_tls::blocking::split(stream, tls.map(|tls| *tls)) {
            Ok(halves) => halves,
            Err(e) => {
                warn!(peer = %opening.peer, "{} port: cannot hand a connection on: {e}", self.name);
                return None;
            }
        };
        Some(Admitted { reader, writer, peer: opening.peer, read: opening.read, sequence: opening.sequence })
    }

    fn close_expired(&mut self) {
        while let Some(oldest) = self.openings.front() {
            if oldest.since.elapsed() < self.limits.deadline {
                return;
            }
            let expired = self.openings.pop_front().expect("looked at above");
            info!(
                peer = %expired.peer,
                "{} port: connection closed: no complete opening within {} ms",
                self.name,
                self.limits.deadline.as_millis()
            );
            bump(&self.counters.timed_out);
            self.close(expired);
        }
    }

    fn close(&mut self, mut opening: Opening) {
        let _ = self.poll.registry().deregister(&mut opening.stream);
        let _ = opening.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Reads what the connection has (decrypted, over TLS); on a port that takes both, the first byte
/// decides first. A TLS failure is an error like a failed read.
fn read_some(opening: &mut Opening, buf: &mut [u8], tls: Option<&PeerTls>) -> io::Result<usize> {
    if let Transport::Undecided = opening.transport {
        let mut first = [0u8; 1];
        if opening.stream.peek(&mut first)? == 0 {
            return Ok(0);
        }
        opening.transport = match (first[0], tls) {
            (TLS_HANDSHAKE_RECORD, Some(tls)) => Transport::Tls(Box::new(tls.accept()?)),
            _ => Transport::Plain,
        };
    }
    match &mut opening.transport {
        Transport::Plain => opening.stream.read(buf),
        Transport::Tls(session) => Plaintext { tls: session, socket: &mut opening.stream }.read(buf),
        Transport::Undecided => unreachable!("decided above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An opening is "hi", then anything up to a '!'; what starts otherwise is refused.
    fn judge(bytes: &[u8]) -> Verdict {
        let n = bytes.len().min(2);
        if bytes[..n] != b"hi"[..n] {
            return Verdict::Refuse("not hi".into());
        }
        if bytes.contains(&b'!') { Verdict::Admit } else { Verdict::Incomplete }
    }

    struct Running {
        address: SocketAddr,
        stopping: Arc<AtomicBool>,
        waker: Arc<Waker>,
        counters: Arc<GateCounters>,
        admitted: crossbeam_channel::Receiver<Admitted>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stopping.store(true, Ordering::SeqCst);
            let _ = self.waker.wake();
            let _ = self.thread.take().map(|t| t.join());
        }
    }

    fn start(limits: GateLimits) -> Running {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let gate = Gate::new("test", listener, limits).unwrap();
        let (waker, counters) = (gate.waker(), gate.counters());
        let stopping = Arc::new(AtomicBool::new(false));
        let (tx, admitted) = crossbeam_channel::unbounded();
        let stop = stopping.clone();
        let thread = std::thread::spawn(move || gate.run(&stop, judge, |a| tx.send(a).is_ok()));
        Running { address, stopping, waker, counters, admitted, thread: Some(thread) }
    }

    fn closed_by_gate(stream: &mut std::net::TcpStream) -> bool {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        matches!(stream.read(&mut [0u8; 1]), Ok(0) | Err(_))
    }

    fn limits(deadline_ms: u64, pending_max: usize) -> GateLimits {
        GateLimits { deadline: Duration::from_millis(deadline_ms), pending_max, opening_bytes_max: 16 }
    }

    #[test]
    fn an_opening_sent_in_pieces_is_admitted_with_what_follows_it() {
        let gate = start(limits(10_000, 4));
        let mut client = std::net::TcpStream::connect(gate.address).unwrap();
        client.write_all(b"h").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        client.write_all(b"i!more").unwrap();
        let admitted = gate.admitted.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(admitted.read.starts_with(b"hi!"), "{:?}", admitted.read);
        assert_eq!(admitted.peer, client.local_addr().unwrap());
        // Blocking again, and still connected.
        client.write_all(b"x").unwrap();
        let mut admitted_stream = admitted.reader;
        let mut rest = Vec::new();
        admitted_stream.socket().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        while !rest.ends_with(b"x") {
            let mut byte = [0u8; 1];
            admitted_stream.read_exact(&mut byte).unwrap();
            rest.push(byte[0]);
        }
        assert_eq!(gate.counters.snapshot(), GateStats { admitted: 1, ..GateStats::default() });
    }

    #[test]
    fn silent_connections_are_closed_at_the_deadline() {
        let gate = start(limits(300, 8));
        let started = Instant::now();
        let mut silent = std::net::TcpStream::connect(gate.address).unwrap();
        assert!(closed_by_gate(&mut silent));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "closed after {waited:?}");
        assert_eq!(gate.counters.snapshot().timed_out, 1);
    }

    #[test]
    fn a_full_gate_closes_its_oldest_opening_and_still_admits_a_member() {
        let gate = start(limits(60_000, 3));
        let mut idle: Vec<std::net::TcpStream> =
            (0..10).map(|_| std::net::TcpStream::connect(gate.address).unwrap()).collect();
        let mut member = std::net::TcpStream::connect(gate.address).unwrap();
        member.write_all(b"hi!").unwrap();
        let admitted = gate.admitted.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(admitted.peer, member.local_addr().unwrap());
        // The first 8 idle ones made room for the rest; the last two (and no more) are still open.
        for stream in &mut idle[..8] {
            assert!(closed_by_gate(stream));
        }
        assert_eq!(gate.counters.snapshot().evicted, 8);
    }

    #[test]
    fn bad_and_overlong_openings_are_refused() {
        let gate = start(limits(60_000, 4));
        let mut wrong = std::net::TcpStream::connect(gate.address).unwrap();
        wrong.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        assert!(closed_by_gate(&mut wrong));
        let mut overlong = std::net::TcpStream::connect(gate.address).unwrap();
        overlong.write_all(b"hiiiiiiiiiiiiiiiiiiiiiiiii!").unwrap();
        assert!(closed_by_gate(&mut overlong));
        let mut early_close = std::net::TcpStream::connect(gate.address).unwrap();
        early_close.write_all(b"h").unwrap();
        drop(early_close);
        let deadline = Instant::now() + Duration::from_secs(10);
        while gate.counters.snapshot().refused < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(gate.counters.snapshot().refused, 3);
        assert!(gate.admitted.try_recv().is_err());
    }
}
