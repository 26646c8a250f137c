//! Server-wide counters read by the 4-letter words and `mntr`. Relaxed atomics: each counter is
//! independent, and a report that is a few requests stale is fine.

use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Instant;

#[derive(Debug)]
pub struct ServerStats {
    pub started: Instant,
    packets_received: AtomicU64,
    packets_sent: AtomicU64,
    latency_count: AtomicU64,
    latency_total_us: AtomicU64,
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
    /// Requests received and not yet answered.
    outstanding: AtomicU64,
    pub connections: AtomicU64,
    fsyncs: AtomicU64,
    logged_txns: AtomicU64,
    fsync_total_us: AtomicU64,
    fsync_max_us: AtomicU64,
    snapshots: AtomicU64,
    digest_mismatches: AtomicU64,
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

    /// (last, min, max) proposal sizes; -1 each before the first proposal.
    pub fn proposal_sizes(&self) -> (i64, i64, i64) {
        let load = |a: &AtomicI64| a.load(Ordering::Relaxed);
        (load(&self.last_proposal_size), load(&self.min_proposal_size), load(&self.max_proposal_size))
    }
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
            latency_total_us: AtomicU64::new(0),
            latency_min_us: AtomicU64::new(u64::MAX),
            latency_max_us: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            leader: LeaderStats::default(),
            fsyncs: AtomicU64::new(0),
            logged_txns: AtomicU64::new(0),
            fsync_total_us: AtomicU64::new(0),
            fsync_max_us: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
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

    /// A request answered after `latency_us`.
    pub fn request_finished(&self, latency_us: u64) {
        self.outstanding.fetch_sub(1, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_total_us.fetch_add(latency_us, Relaxed);
        self.latency_min_us.fetch_min(latency_us, Relaxed);
        self.latency_max_us.fetch_max(latency_us, Relaxed);
    }

    /// One group commit: `txns` made durable by one write + fdatasync taking `elapsed`.
    pub fn record_log_batch(&self, txns: u64, elapsed: std::time::Duration) {
        let us = elapsed.as_micros() as u64;
        self.fsyncs.fetch_add(1, Relaxed);
        self.logged_txns.fetch_add(txns, Relaxed);
        self.fsync_total_us.fetch_add(us, Relaxed);
        self.fsync_max_us.fetch_max(us, Relaxed);
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

    pub fn record_snapshot(&self) {
        self.snapshots.fetch_add(1, Relaxed);
    }

    /// (fsyncs, txns logged, total fsync µs, max fsync µs, snapshots).
    pub fn storage(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.fsyncs.load(Relaxed),
            self.logged_txns.load(Relaxed),
            self.fsync_total_us.load(Relaxed),
            self.fsync_max_us.load(Relaxed),
            self.snapshots.load(Relaxed),
        )
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
