//! The load engine: many pipelined connections over a few threads, each thread a mio loop.
//!
//! Closed loop keeps `depth` requests in flight per connection. Open loop sends at a target rate: each
//! connection has a schedule of intended send times, and latency is measured from the intended time, so
//! a server that stalls is charged for the requests it kept us from sending (no coordinated omission) —
//! less the first [`LOOP_SLACK`] of lateness, which is the loop's own (see there).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fk_net::client::{ReplyHeader, Request, xid};
use fk_net::jute::{Jute, JuteReader};
use fk_net::reactor::{BufferPool, Buffers, ReadStatus};
use fk_tls::nonblocking::{Plaintext, write_records};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use crate::conn::{Session, encode_request};

/// Makes the requests of one connection.
pub trait RequestGen: Send {
    fn next(&mut self) -> Request;
    /// Error codes that are a normal outcome for this workload (not counted as errors).
    fn tolerates(&self, _err: i32) -> bool {
        false
    }
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub server: String,
    pub connections: usize,
    pub threads: usize,
    pub depth: usize,
    /// Total ops/s across connections (open loop); `None` = closed loop.
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub duration: Duration,
    /// Stop after this many requests in total (bulk load) instead of after `duration`.
    pub total_ops: Option<u64>,
}

/// What a run measured (after warm-up).
pub struct LoadResult {
    /// Latency in microseconds.
    pub histogram: Histogram<u64>,
    pub ops: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Completed ops per second of the measured window.
    pub series: Vec<u64>,
}

/// Counters the progress bar reads.
#[derive(Default)]
pub struct Progress {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
}

struct Conn {
    stream: mio::net::TcpStream,
    /// Over TLS: the session's TLS state, carried over from its blocking handshake.
    tls: Option<Box<rustls::Connection>>,
    buffers: Buffers,
    generator: Box<dyn RequestGen>,
    /// (xid, when its latency counts from) of requests in flight, oldest first: replies come in order.
    /// Closed loop: the send time; open loop: the intended send time (less the loop's slack).
    in_flight: std::collections::VecDeque<(i32, Instant)>,
    next_xid: i32,
    next_send: Instant,
    interval: Option<Duration>,
}

struct Shared {
    config: LoadConfig,
    start: Instant,
    abort: AtomicBool,
    failure: std::sync::Mutex<Option<String>>,
    issued: AtomicU64,
    progress: Arc<Progress>,
}

impl Shared {
    fn fail(&self, message: String) {
        self.failure.lock().unwrap().get_or_insert(message);
        self.abort.store(true, Ordering::Relaxed);
    }

    fn measuring_since(&self) -> Instant {
        self.start + self.config.warmup
    }

    fn deadline(&self) -> Option<Instant> {
        self.config.total_ops.is_none().then(|| self.measuring_since() + self.config.duration)
    }
}

/// Runs the load; `make` builds the generator of connection `i`.
pub fn run(
    config: LoadConfig,
    progress: Arc<Progress>,
    make: impl Fn(usize) -> Box<dyn RequestGen>,
) -> anyhow::Result<LoadResult> {
    let mut per_thread: Vec<Vec<Conn>> = (0..config.threads.max(1)).map(|_| Vec::new()).collect();
    let interval = config.rate.map(|rate| Duration::from_secs_f64(config.connections as f64 / rate.max(0.001)));
    let start = Instant::now();
    for i in 0..config.connections {
        let session = Session::connect(&config.server)?;
        session.stream.set_nonblocking(true)?;
        let stream = mio::net::TcpStream::from_std(session.stream);
        let tls = session.tls.map(|tls| Box::new(rustls::Connection::from(tls)));
        // Spread open-loop schedules so connections do not send in lockstep.
        let offset = interval.map_or(Duration::ZERO, |iv| iv.mul_f64(i as f64 / config.connections as f64));
        let conn = Conn {
            stream,
            tls,
            buffers: Buffers::new(),
            generator: make(i),
            in_flight: Default::default(),
            next_xid: 1,
            next_send: start + offset,
            interval,
        };
        per_thread[i % config.threads.max(1)].push(conn);
    }
    let shared = Arc::new(Shared {
        start: Instant::now(),
        config,
        abort: AtomicBool::new(false),
        failure: Default::default(),
        issued: AtomicU64::new(0),
        progress,
    });
    let handles: Vec<_> = per_thread
        .into_iter()
        .map(|conns| {
            let shared = shared.clone();
            std::thread::spawn(move || drive(conns, &shared))
        })
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.join().map_err(|_| anyhow::anyhow!("a load thread panicked"))??);
    }
    if let Some(failure) = shared.failure.lock().unwrap().take() {
        bail!(failure);
    }
    merge(results, &shared)
}

/// One thread's tally.
struct ThreadResult {
    histogram: Histogram<u64>,
    ops: u64,
    errors: u64,
    series: Vec<u64>,
    last_completion: Option<Instant>,
}

fn merge(results: Vec<ThreadResult>, shared: &Shared) -> anyhow::Result<LoadResult> {
    let mut histogram = new_histogram();
    let (mut ops, mut errors, mut series, mut last) = (0, 0, Vec::new(), shared.measuring_since());
    for r in results {
        histogram.add(&r.histogram).context("merging histograms")?;
        ops += r.ops;
        errors += r.errors;
        add_series(&mut series, &r.series);
        last = last.max(r.last_completion.unwrap_or(last));
    }
    let elapsed = match shared.deadline() {
        Some(deadline) => deadline - shared.measuring_since(),
        None => last - shared.measuring_since(),
    };
    Ok(LoadResult { histogram, ops, errors, elapsed, series })
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn drive(mut conns: Vec<Conn>, shared: &Shared) -> anyhow::Result<ThreadResult> {
    let mut poll = Poll::new()?;
    for (i, conn) in conns.iter_mut().enumerate() {
        poll.registry().register(&mut conn.stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
    }
    let mut tally =
        ThreadResult { histogram: new_histogram(), ops: 0, errors: 0, series: Vec::new(), last_completion: None };
    let mut events = Events::with_capacity(1024);
    let mut pool = BufferPool::default();
    loop {
        if shared.abort.load(Ordering::Relaxed) {
            return Ok(tally);
        }
        let now = Instant::now();
        let sending = shared.deadline().is_none_or(|d| now < d);
        let mut wake_at: Option<Instant> = None;
        for (i, conn) in conns.iter_mut().enumerate() {
            if sending {
                fill_pipeline(conn, shared, now, &mut wake_at);
            }
            if let Err(e) = flush(conn) {
                shared.fail(format!("connection {i} to {} lost while sending: {e}", shared.config.server));
                return Ok(tally);
            }
        }
        if !sending || (shared.config.total_ops.is_some() && conns.iter().all(|c| c.in_flight.is_empty())) {
            let done = shared.config.total_ops.is_none_or(|n| shared.issued.load(Ordering::Relaxed) >= n);
            if done && (!sending || conns.iter().all(|c| c.in_flight.is_empty())) {
                return Ok(tally);
            }
        }
        let timeout = wake_at.map_or(Duration::from_millis(5), |t| t.saturating_duration_since(Instant::now()));
        poll.poll(&mut events, Some(timeout.min(Duration::from_millis(50))))?;
        for event in events.iter() {
            let i = event.token().0;
            if let Err(message) = receive(&mut conns[i], shared, &mut tally, &mut pool) {
                shared.fail(format!("connection {i} to {}: {message}", shared.config.server));
                return Ok(tally);
            }
        }
    }
}

/// How late the loop itself may send an open-loop request without charging it to the server. mio's poll
/// timeout counts whole milliseconds, so a request falls due up to a millisecond before the loop wakes to
/// send it; charging that to the server made a fast server's p50 at 77k getData/s read 570 µs instead of
/// 50 µs. (Waking precisely, with a timerfd per send time, measured the same 50 µs but cost fkbench
/// 15–24 µs of CPU per op, on the cores the server needs.) Lateness beyond this — a full pipeline
/// behind a stalled server — is still charged.
const LOOP_SLACK: Duration = Duration::from_millis(1);

/// Sends what the connection may send now: up to `depth` in flight, and (open loop) only requests whose
/// intended time has come.
fn fill_pipeline(conn: &mut Conn, shared: &Shared, now: Instant, wake_at: &mut Option<Instant>) {
    while conn.in_flight.len() < shared.config.depth {
        let intended = match conn.interval {
            Some(interval) => {
                if conn.next_send > now {
                    *wake_at = Some(wake_at.map_or(conn.next_send, |w| w.min(conn.next_send)));
                    return;
                }
                let intended = conn.next_send;
                conn.next_send += interval;
                now.min(intended + LOOP_SLACK)
            }
            None => now,
        };
        if let Some(total) = shared.config.total_ops
            && shared.issued.fetch_add(1, Ordering::Relaxed) >= total
        {
            return;
        }
        let xid = conn.next_xid;
        conn.next_xid = conn.next_xid.wrapping_add(1).max(1);
        encode_request(conn.buffers.output(), xid, &conn.generator.next());
        conn.in_flight.push_back((xid, intended));
    }
}

/// Writes what the connection has queued (through TLS if it has it).
fn flush(conn: &mut Conn) -> std::io::Result<()> {
    match &mut conn.tls {
        Some(tls) => {
            conn.buffers.flush(&mut Plaintext { tls, socket: &mut conn.stream })?;
            write_records(tls, &mut conn.stream).map(|_| ())
        }
        None => conn.buffers.flush(&mut conn.stream).map(|_| ()),
    }
}

fn receive(conn: &mut Conn, shared: &Shared, tally: &mut ThreadResult, pool: &mut BufferPool) -> Result<(), String> {
    // Readiness is edge-triggered: read until the socket would block, or the rest would wait for an
    // event that never comes.
    let status = match &mut conn.tls {
        Some(tls) => conn.buffers.fill(&mut Plaintext { tls, socket: &mut conn.stream }, usize::MAX, pool),
        None => conn.buffers.fill(&mut conn.stream, usize::MAX, pool),
    }
    .map_err(|e| format!("read failed: {e}"))?;
    // Every reply in this read arrived by now: one clock read and one update of the shared progress
    // counters per read, not per reply, keep fkbench's own cost per op well below a server's.
    let now = Instant::now();
    let (mut completed, mut errors) = (0, 0);
    loop {
        let frame = match conn.buffers.next_frame(64 << 20) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => return Err(format!("bad frame from the server: {e}")),
        };
        let header = ReplyHeader::decode(&mut JuteReader::new(frame)).map_err(|e| format!("bad reply header: {e}"))?;
        if header.xid == xid::NOTIFICATION {
            continue;
        }
        let Some((expected, intended)) = conn.in_flight.pop_front() else {
            return Err(format!("unexpected reply xid {}", header.xid));
        };
        if expected != header.xid {
            return Err(format!("reply xid {} out of order (expected {expected})", header.xid));
        }
        let error = header.err != 0 && !conn.generator.tolerates(header.err);
        record(tally, shared, now, intended, error);
        completed += 1;
        errors += u64::from(error);
    }
    shared.progress.completed.fetch_add(completed, Ordering::Relaxed);
    if errors > 0 {
        shared.progress.errors.fetch_add(errors, Ordering::Relaxed);
    }
    conn.buffers.release_input(pool);
    if status == ReadStatus::Closed {
        return Err(format!("closed by the server with {} requests in flight", conn.in_flight.len()));
    }
    Ok(())
}

fn record(tally: &mut ThreadResult, shared: &Shared, now: Instant, intended: Instant, error: bool) {
    let since = shared.measuring_since();
    if now < since || shared.deadline().is_some_and(|d| now > d) {
        return;
    }
    let micros = now.saturating_duration_since(intended).as_micros().max(1) as u64;
    tally.histogram.saturating_record(micros);
    tally.ops += 1;
    tally.errors += u64::from(error);
    count_in_second(&mut tally.series, (now - since).as_secs() as usize);
    tally.last_completion = Some(now);
}

/// Counts one completion in a per-second series.
pub fn count_in_second(series: &mut Vec<u64>, second: usize) {
    if series.len() <= second {
        series.resize(second + 1, 0);
    }
    series[second] += 1;
}

/// Adds one thread's per-second series into the total.
pub fn add_series(total: &mut Vec<u64>, part: &[u64]) {
    if total.len() < part.len() {
        total.resize(part.len(), 0);
    }
    for (t, n) in total.iter_mut().zip(part) {
        *t += n;
    }
}
