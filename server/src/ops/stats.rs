//! Server-wide counters read by the 4-letter words, `mntr` and `/metrics`. Relaxed atomics: each counter
//! is independent, and a report that is a few requests stale is fine. Per-batch distributions are
//! [`Summary`]s.

use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Instant;

use super::summary::{self, Summary, SummaryFigures};

/// ZooKeeper's default trace mask (`ZooTrace`: client requests, server packets, sessions, warnings).
const DEFAULT_TRACE_MASK: i64 = 2 | 16 | 32 | 256;

#[derive(Debug)]
pub struct ServerStats {
    pub started: Instant,
    /// How the txn log reaches the disk (`io_uring` or `pwrite`), set at start.
    txn_log_device: std::sync::OnceLock<&'static str>,
    packets_received: AtomicU64,
    packets_sent: AtomicU64,
    latency_count: AtomicU64,
    latency_total_us: AtomicU64,
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
    /// Requests received and not yet answered.
    outstanding: AtomicU64,
    pub connections: AtomicU64,
    /// Write and fsync of each log batch, in ms (ZooKeeper's `fsynctime`), recorded in µs.
    fsync_time: Summary,
    /// Txns per log batch (ZooKeeper's `sync_processor_batch_size`).
    log_batch_size: Summary,
    /// Per shard (indexed by shard): latency of reads (and pings) and of writes, in ms (ZooKeeper's
    /// `readlatency` and `updatelatency`), recorded in µs.
    request_latency: Vec<RequestLatency>,
    /// Snapshots written, in ms (ZooKeeper's `snapshottime`), recorded in µs.
    snapshot_time: Summary,
    digest_mismatches: AtomicU64,
    /// Log batches whose write and fsync took longer than `fsync.warningthresholdms`.
    fsync_threshold_exceeded: AtomicU64,
    /// ZooKeeper's trace mask (`gtmk`/`stmk`); nothing is traced by it here, but it reads back as set.
    trace_mask: AtomicI64,
    /// Elections begun (`looking_count`), and how long each took to decide, in ms (`election_time`).
    looking_count: AtomicU64,
    election_time: Summary,
    /// From a leader's proposal to its quorum's acknowledgement, in ms, per txn (`quorum_ack_latency`).
    quorum_ack_latency: Summary,
    /// Appends to the txn log that failed (a full disk, EIO), since start.
    log_write_failures: AtomicU64,
    /// Why the last append failed, until one succeeds again.
    log_failure: parking_lot::Mutex<Option<String>>,
    /// A leader's figures (all zero elsewhere).
    pub leader: LeaderStats,
}

/// What a leader reports in `mntr`: its learners and the proposals it makes.
#[derive(Debug)]
pub struct LeaderStats {
    pub learners: AtomicU64,
    pub synced_followers: AtomicU64,
    pub synced_observers: AtomicU64,
    pub pending_syncs: AtomicU64,
    /// Bytes of the last, smallest and largest proposal (-1 before the first, as ZooKeeper prints).
    last_proposal_size: AtomicI64,
    min_proposal_size: AtomicI64,
    max_proposal_size: AtomicI64,
    /// Learners synchronised by snapshot (`snap_count`) and by DIFF or TRUNC (`diff_count`).
    pub snap_syncs: AtomicU64,
    pub diff_syncs: AtomicU64,
    /// Txns proposed and committed while leading (`proposal_count`, `commit_count`).
    pub proposals: AtomicU64,
    pub commits: AtomicU64,
    /// When this member's current leadership was established (`leader_uptime`).
    established: parking_lot::Mutex<Option<Instant>>,
}

impl Default for LeaderStats {
    fn default() -> Self {
        LeaderStats {
            learners: AtomicU64::new(0),
            synced_followers: AtomicU64::new(0),
            synced_observers: AtomicU64::new(0),
            pending_syncs: AtomicU64::new(0),
            last_proposal_size: AtomicI64::new(-1),
            min_proposal_size: AtomicI64::new(-1),
            max_proposal_size: AtomicI64::new(-1),
            snap_syncs: AtomicU64::new(0),
            diff_syncs: AtomicU64::new(0),
            proposals: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            established: parking_lot::Mutex::new(None),
        }
    }
}

impl LeaderStats {
    /// The member core keeps the figures (it sees every proposal); this publishes them.
    pub fn set_proposal_sizes(&self, (last, min, max): (i64, i64, i64)) {
        self.last_proposal_size.store(last, Ordering::Relaxed);
        self.min_proposal_size.store(min, Ordering::Relaxed);
        self.max_proposal_size.store(max, Ordering::Relaxed);
    }

    /// Leading from `at` on (`None`: not leading).
    pub fn set_established(&self, at: Option<Instant>) {
        *self.established.lock() = at;
    }

    /// Milliseconds since the current leadership was established; 0 when not leading.
    pub fn uptime_ms(&self) -> u64 {
        self.established.lock().map_or(0, |at| at.elapsed().as_millis() as u64)
    }

    /// (last, min, max) proposal sizes; -1 each before the first proposal.
    pub fn proposal_sizes(&self) -> (i64, i64, i64) {
        let load = |a: &AtomicI64| a.load(Ordering::Relaxed);
        (load(&self.last_proposal_size), load(&self.min_proposal_size), load(&self.max_proposal_size))
    }
}

/// Which of ZooKeeper's latency summaries a request counts in: `updatelatency` for those that became
/// txns, `readlatency` for the rest (pings included, as in ZooKeeper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Read,
    Update,
}

#[derive(Debug)]
struct RequestLatency {
    read: Summary,
    update: Summary,
}

impl ServerStats {
    /// Counters for a server whose requests are answered by `shards` threads.
    pub fn new(shards: usize) -> Self {
        let latency = || RequestLatency {
            read: Summary::new(0.001, &summary::ADVANCED),
            update: Summary::new(0.001, &summary::ADVANCED),
        };
        ServerStats {
            request_latency: (0..shards.max(1)).map(|_| latency()).collect(),
            started: Instant::now(),
            txn_log_device: std::sync::OnceLock::new(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
            latency_total_us: AtomicU64::new(0),
            latency_min_us: AtomicU64::new(u64::MAX),
            latency_max_us: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            leader: LeaderStats::default(),
            fsync_time: Summary::new(0.001, &summary::BASIC),
            log_batch_size: Summary::new(1.0, &summary::BASIC),
            snapshot_time: Summary::new(0.001, &summary::BASIC),
            looking_count: AtomicU64::new(0),
            fsync_threshold_exceeded: AtomicU64::new(0),
            trace_mask: AtomicI64::new(DEFAULT_TRACE_MASK),
            election_time: Summary::new(1.0, &summary::BASIC),
            quorum_ack_latency: Summary::new(1.0, &summary::BASIC),
            digest_mismatches: AtomicU64::new(0),
            log_write_failures: AtomicU64::new(0),
            log_failure: parking_lot::Mutex::new(None),
        }
    }
}

/// A latency summary in ZooKeeper's units: min and max in whole ms, average in fractional ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub min_ms: u64,
    pub avg_ms: f64,
    pub max_ms: u64,
    pub count: u64,
}

impl ServerStats {
    pub fn received(&self, packets: u64) {
        self.packets_received.fetch_add(packets, Relaxed);
    }

    pub fn sent(&self, packets: u64) {
        self.packets_sent.fetch_add(packets, Relaxed);
    }

    pub fn request_started(&self) {
        self.outstanding.fetch_add(1, Relaxed);
    }

    /// A request answered by shard `shard` at `now`, `latency_us` after it arrived.
    pub fn request_finished(&self, shard: usize, kind: RequestKind, latency_us: u64, now: Instant) {
        self.outstanding.fetch_sub(1, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_total_us.fetch_add(latency_us, Relaxed);
        self.latency_min_us.fetch_min(latency_us, Relaxed);
        self.latency_max_us.fetch_max(latency_us, Relaxed);
        let latency = &self.request_latency[shard];
        match kind {
            RequestKind::Read => latency.read.observe_at(latency_us, now),
            RequestKind::Update => latency.update.observe_at(latency_us, now),
        }
    }

    /// A request that will not be answered (its connection closed first).
    pub fn request_abandoned(&self) {
        self.outstanding.fetch_sub(1, Relaxed);
    }

    /// ZooKeeper's `readlatency` or `updatelatency`, over every shard.
    pub fn request_latency(&self, kind: RequestKind) -> SummaryFigures {
        let parts: Vec<&Summary> = self
            .request_latency
            .iter()
            .map(|l| match kind {
                RequestKind::Read => &l.read,
                RequestKind::Update => &l.update,
            })
            .collect();
        summary::figures_of(&parts, Instant::now())
    }

    /// One group commit: `txns` made durable by one write + fdatasync taking `elapsed`.
    pub fn record_log_batch(&self, txns: u64, elapsed: std::time::Duration) {
        self.fsync_time.observe(elapsed.as_micros() as u64);
        self.log_batch_size.observe(txns);
    }

    pub fn fsync_time(&self) -> SummaryFigures {
        self.fsync_time.figures()
    }

    pub fn log_batch_size(&self) -> SummaryFigures {
        self.log_batch_size.figures()
    }

    /// An append to the txn log failed; the reason stays until [`ServerStats::log_writable`].
    pub fn record_log_failure(&self, reason: String) {
        *self.log_failure.lock() = Some(reason);
        self.log_write_failures.fetch_add(1, Relaxed);
    }

    /// An append succeeded: true if the log had been failing until now.
    pub fn log_writable(&self) -> bool {
        self.log_failure.lock().take().is_some()
    }

    /// Why the txn log cannot be written, while that lasts.
    pub fn log_failure(&self) -> Option<String> {
        self.log_failure.lock().clone()
    }

    pub fn log_write_failures(&self) -> u64 {
        self.log_write_failures.load(Relaxed)
    }

    pub fn record_digest_mismatch(&self) {
        self.digest_mismatches.fetch_add(1, Relaxed);
    }

    pub fn digest_mismatches(&self) -> u64 {
        self.digest_mismatches.load(Relaxed)
    }

    pub fn record_snapshot(&self, took: std::time::Duration) {
        self.snapshot_time.observe(took.as_micros() as u64);
    }

    pub fn snapshot_time(&self) -> SummaryFigures {
        self.snapshot_time.figures()
    }

    pub fn record_slow_fsync(&self) {
        self.fsync_threshold_exceeded.fetch_add(1, Relaxed);
    }

    pub fn fsync_threshold_exceeded(&self) -> u64 {
        self.fsync_threshold_exceeded.load(Relaxed)
    }

    pub fn trace_mask(&self) -> i64 {
        self.trace_mask.load(Relaxed)
    }

    pub fn set_trace_mask(&self, mask: i64) {
        self.trace_mask.store(mask, Relaxed);
    }

    pub fn record_looking(&self) {
        self.looking_count.fetch_add(1, Relaxed);
    }

    pub fn looking_count(&self) -> u64 {
        self.looking_count.load(Relaxed)
    }

    pub fn record_election(&self, took_ms: u64) {
        self.election_time.observe(took_ms);
    }

    pub fn set_txn_log_device(&self, name: &'static str) {
        let _ = self.txn_log_device.set(name);
    }

    pub fn txn_log_device(&self) -> Option<&'static str> {
        self.txn_log_device.get().copied()
    }

    pub fn record_quorum_ack(&self, latency_ms: u64, txns: u64) {
        self.quorum_ack_latency.observe_many(latency_ms, txns, std::time::Instant::now());
    }

    pub fn quorum_ack_latency(&self) -> SummaryFigures {
        self.quorum_ack_latency.figures()
    }

    pub fn election_time(&self) -> SummaryFigures {
        self.election_time.figures()
    }

    pub fn packets_received(&self) -> u64 {
        self.packets_received.load(Relaxed)
    }

    pub fn packets_sent(&self) -> u64 {
        self.packets_sent.load(Relaxed)
    }

    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Relaxed)
    }

    pub fn latency(&self) -> LatencySummary {
        let count = self.latency_count.load(Relaxed);
        let total = self.latency_total_us.load(Relaxed);
        let min = self.latency_min_us.load(Relaxed);
        LatencySummary {
            min_ms: if count == 0 { 0 } else { min / 1000 },
            // ZooKeeper rounds the average to 4 decimals (AvgMinMaxCounter.getAvg).
            avg_ms: if count == 0 { 0.0 } else { (total as f64 / count as f64 / 1000.0 * 10_000.0).round() / 10_000.0 },
            max_ms: self.latency_max_us.load(Relaxed) / 1000,
            count,
        }
    }

    /// `srst`: zero the counters (connections and outstanding requests are state, not counters).
    pub fn reset(&self) {
        self.packets_received.store(0, Relaxed);
        self.packets_sent.store(0, Relaxed);
        self.latency_count.store(0, Relaxed);
        self.latency_total_us.store(0, Relaxed);
        self.latency_min_us.store(u64::MAX, Relaxed);
        self.latency_max_us.store(0, Relaxed);
    }
}

/// Per-connection counters for `cons`.
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub established: Instant,
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response: Option<Instant>,
    pub last_latency_ms: u64,
    pub min_latency_ms: u64,
    pub max_latency_ms: u64,
    pub total_latency_ms: u64,
    pub count: u64,
}

impl ConnStats {
    /// The smallest latency, 0 before the first response (as ZooKeeper reports it).
    pub fn min_latency(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min_latency_ms }
    }

    /// The mean latency in whole ms, 0 before the first response.
    pub fn avg_latency(&self) -> u64 {
        self.total_latency_ms.checked_div(self.count).unwrap_or(0)
    }

    pub fn new(now: Instant) -> Self {
        ConnStats {
            established: now,
            received: 0,
            sent: 0,
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            last_response: None,
            last_latency_ms: 0,
            min_latency_ms: u64::MAX,
            max_latency_ms: 0,
            total_latency_ms: 0,
            count: 0,
        }
    }

    pub fn reset(&mut self) {
        *self = ConnStats { established: self.established, ..ConnStats::new(self.established) };
    }
}
