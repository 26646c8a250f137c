//! The group-commit stage between the sequencer and the applier: every proposal that arrived while the
//! previous batch was being written and synced forms the next batch — one write and one fdatasync for
//! all of them — and only then goes on to be applied and answered. Batch size follows load, never a
//! timer.
//!
//! It also decides when to snapshot (ZooKeeper's SyncRequestProcessor rule: after `snapCount/2 + r` txns
//! or `snapSizeLimit/2 + r` bytes, `r` random per round, so that servers of an ensemble do not all
//! snapshot at once), rolling the log at that point.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use fk_engine::log::LogWriter;
use tracing::{info, warn};

use fk_net::txn::Txn;

use super::messages::{ApplierMsg, LogMsg};
use super::{FatalHandler, Shared};
use crate::commit::{Commit, VoterId};

/// Proposals written per batch at most, so that one huge burst does not delay its first replies.
const BATCH_MAX: usize = 8192;

/// How the log stage asks for a snapshot: the request channel, and whether one is running.
pub struct Snapshots {
    pub tx: Sender<super::snapshotter::SnapshotRequest>,
    pub busy: Arc<AtomicBool>,
}

/// How a batch's write went.
enum Written {
    /// Durable through this zxid.
    Durable(i64),
    /// Not durable, the log cut back to its last durable batch; the member thread was told.
    Failed,
    /// Not durable and the server stops (the fatal handler ran).
    Fatal,
}

/// This server's vote in [`Commit`]: standalone, the only one.
const SELF: VoterId = 0;

/// Who decides that a persisted txn is committed.
pub enum CommitRule {
    /// This stage, with the server as its own quorum; persisted txns wait in the queue until then.
    Standalone(Commit, VecDeque<Txn>),
    /// The member's protocol thread (an ensemble's quorum, or the leader's COMMIT): it is told what was
    /// persisted and tells the applier what is committed.
    Replicated(PersistedSignal),
}

/// How the log stage tells the member thread what is durable without ever waiting for it: the
/// watermark moves, and a wake-up is queued unless one already is. (A blocking send would close a
/// cycle — the member thread blocks on a full log queue while the log stage blocks on a full member
/// queue.)
#[derive(Clone)]
pub struct PersistedSignal {
    watermark: Arc<AtomicI64>,
    wake: Sender<()>,
}

impl PersistedSignal {
    /// The signal, and the member thread's end: wake-ups and the watermark to read after each.
    pub fn new(last_zxid: i64) -> (PersistedSignal, Receiver<()>, Arc<AtomicI64>) {
        let watermark = Arc::new(AtomicI64::new(last_zxid));
        let (wake, woken) = crossbeam_channel::bounded(1);
        (PersistedSignal { watermark: watermark.clone(), wake }, woken, watermark)
    }

    fn persisted(&self, zxid: i64) {
        self.watermark.fetch_max(zxid, Ordering::AcqRel);
        self.wake();
    }

    /// Wakes the member thread (to see a new watermark or a failure in the server's stats).
    fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

impl CommitRule {
    pub fn standalone(last_zxid: i64) -> CommitRule {
        CommitRule::Standalone(Commit::standalone(last_zxid), VecDeque::new())
    }
}

pub struct LogStage {
    shared: Arc<Shared>,
    rx: Receiver<LogMsg>,
    applier: Sender<ApplierMsg>,
    writer: LogWriter,
    commit: CommitRule,
    snapshots: Snapshots,
    on_fatal: FatalHandler,
    /// The last batch failed: txns are dropped until the member thread settles the pipeline (Flush).
    failed: bool,
    /// An append failed and none has succeeded since (cleared in the server's stats on the next one).
    failing: bool,
    txns_since_snapshot: u64,
    bytes_since_snapshot: u64,
    txn_threshold: u64,
    byte_threshold: Option<u64>,
    /// Spreads snapshot points (seeded from the clock).
    rng: crate::rng::Rng,
}

impl LogStage {
    pub fn new(
        shared: Arc<Shared>,
        rx: Receiver<LogMsg>,
        applier: Sender<ApplierMsg>,
        writer: LogWriter,
        commit: CommitRule,
        snapshots: Snapshots,
        on_fatal: FatalHandler,
    ) -> LogStage {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let mut stage = LogStage {
            shared,
            rx,
            applier,
            writer,
            commit,
            snapshots,
            on_fatal,
            failed: false,
            failing: false,
            txns_since_snapshot: 0,
            bytes_since_snapshot: 0,
            txn_threshold: 0,
            byte_threshold: None,
            rng: crate::rng::Rng::new(seed),
        };
        stage.draw_thresholds();
        stage
    }

    fn draw_thresholds(&mut self) {
        let half = (self.shared.config.snap_count / 2).max(1);
        self.txn_threshold = half + self.rng.below(half);
        let size_kb = self.shared.config.snap_size_limit_kb;
        self.byte_threshold = (size_kb > 0).then(|| {
            let half = size_kb as u64 * 1024 / 2;
            half + self.rng.below(half)
        });
    }

    pub fn run(mut self) {
        while let Ok(msg) = self.rx.recv() {
            let mut batch = match msg {
                // The role whose batch failed sends what it had queued; it ends, and its successor
                // starts by settling the pipeline (a Flush).
                LogMsg::Txns(_) if self.failed => continue,
                LogMsg::Txns(batch) => batch,
                control => {
                    self.control(control);
                    continue;
                }
            };
            // More txns that are already waiting join the batch; anything else waits for the next turn.
            let mut held = None;
            while batch.len() < BATCH_MAX {
                match self.rx.try_recv() {
                    Ok(LogMsg::Txns(more)) => batch.extend(more),
                    Ok(other) => {
                        held = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            match self.write(&batch) {
                Written::Durable(persisted) if self.hand_on(batch, persisted) => {}
                Written::Durable(_) | Written::Fatal => return,
                Written::Failed => {}
            }
            if let Some(control) = held {
                self.control(control);
            }
        }
    }

    /// Passes a durable batch on: nothing reaches the applier as committed, and so no reply leaves,
    /// before the commit decision. False once the next stage is gone.
    fn hand_on(&mut self, batch: Vec<Txn>, persisted: i64) -> bool {
        let ready = match &mut self.commit {
            CommitRule::Replicated(signal) => {
                let sent = self.applier.send(ApplierMsg::Persisted(batch)).is_ok();
                signal.persisted(persisted);
                return sent;
            }
            CommitRule::Standalone(commit, uncommitted) => match commit.persisted(SELF, persisted) {
                // All of it (always, standalone): no copy through the queue.
                Some(committed) if committed == persisted && uncommitted.is_empty() => batch,
                Some(committed) => {
                    uncommitted.extend(batch);
                    let count = uncommitted.iter().take_while(|t| t.header.zxid <= committed).count();
                    uncommitted.drain(..count).collect()
                }
                None => {
                    uncommitted.extend(batch);
                    return true;
                }
            },
        };
        self.applier.send(ApplierMsg::Committed(ready)).is_ok()
    }

    /// A message other than txns: answered once everything before it was written (or failed).
    fn control(&mut self, msg: LogMsg) {
        match msg {
            // The member thread settles the pipeline: whatever failed belongs to a role that ended.
            LogMsg::Flush(done) => {
                self.failed = false;
                let _ = done.send(());
            }
            LogMsg::Restart { last_zxid } => {
                self.writer.restart(last_zxid);
                // Standalone, this stage is the quorum: its commit point starts over with the log (a
                // restore may set it back).
                if let CommitRule::Standalone(commit, uncommitted) = &mut self.commit {
                    assert!(uncommitted.is_empty(), "the log restarted with txns waiting to be committed");
                    *commit = crate::commit::Commit::standalone(last_zxid);
                }
            }
            LogMsg::Txns(_) => unreachable!("txns are batched, not controls"),
        }
    }

    /// Makes the batch's txns durable. When that fails nothing of the batch is acknowledged. Standalone,
    /// the fatal handler stops the server (recovery at the next start keeps every acknowledged write).
    /// An ensemble member cuts the log back to its last durable batch and tells its member thread,
    /// which ends the role: the member stays up, rejoins its ensemble by synchronisation, and this stage
    /// tries again with what that brings (a full disk may have room by then).
    fn write(&mut self, batch: &[Txn]) -> Written {
        let last = batch.last().expect("the sequencer sends no empty batch").header.zxid;
        let stats = match self.writer.append(batch) {
            Ok(stats) => stats,
            Err(e) => return self.failed_write(e),
        };
        if std::mem::replace(&mut self.failing, false) && self.shared.stats.log_writable() {
            info!("the txn log is writable again");
        }
        self.shared.stats.record_log_batch(stats.txns as u64, stats.write_and_sync);
        let elapsed_ms = stats.write_and_sync.as_millis() as i64;
        if elapsed_ms > self.shared.config.fsync_warning_threshold_ms {
            self.shared.stats.record_slow_fsync();
            warn!(
                "fsync-ing the write ahead log took {elapsed_ms}ms which will adversely effect operation latency \
                 ({} txns, {} bytes)",
                stats.txns, stats.bytes
            );
        }
        self.txns_since_snapshot += stats.txns as u64;
        self.bytes_since_snapshot += stats.bytes as u64;
        let due = self.txns_since_snapshot > self.txn_threshold
            || self.byte_threshold.is_some_and(|t| self.bytes_since_snapshot > t);
        if due {
            self.start_snapshot();
        }
        Written::Durable(last)
    }

    fn failed_write(&mut self, e: std::io::Error) -> Written {
        let file = self.writer.current_path().map_or("a new log file".into(), |p| p.display().to_string());
        let reason = format!("cannot write or sync the txn log ({file}): {e}");
        let CommitRule::Replicated(signal) = &self.commit else {
            (self.on_fatal)(&format!("{reason}; stopping without acknowledging the batch"));
            return Written::Fatal;
        };
        if let Err(cut) = self.writer.rewind() {
            (self.on_fatal)(&format!("{reason}; cannot cut the log back to its last durable batch: {cut}"));
            return Written::Fatal;
        }
        warn!("{reason}; nothing of the batch is acknowledged, this member leaves its role and rejoins when it can");
        self.failed = true;
        self.failing = true;
        self.shared.stats.record_log_failure(reason);
        signal.wake();
        Written::Failed
    }

    fn start_snapshot(&mut self) {
        self.txns_since_snapshot = 0;
        self.bytes_since_snapshot = 0;
        self.draw_thresholds();
        if self.snapshots.busy.swap(true, Ordering::AcqRel) {
            warn!("Too busy to snap, skipping");
            return;
        }
        // The snapshot covers everything applied when it starts; later txns go to a new log.
        self.writer.roll();
        info!("rolling the txn log and taking a snapshot");
        let _ = self.snapshots.tx.send(super::snapshotter::SnapshotRequest::Fuzzy);
    }
}
