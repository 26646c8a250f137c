//! The storage engine alone under storage faults: the real txn log writer appends batches to a
//! [`SimFs`] and the real snapshot writer snapshots (plain, gzip, snappy), fsyncs fail, the machine
//! crashes (unsynced sectors lost, torn or kept out of order), bits flip at rest in logs and
//! snapshots, the real recovery rebuilds the tree, and damage is set aside as a member sets it aside.
//! The checker holds the engine to its promises:
//!
//! - every batch the writer reported durable is recovered, txn for txn, unless recovery reports
//!   damage — and damage is reported only where a bit was flipped, a write was misdirected, or a crash
//!   kept an unsynced write's sectors out of order (a damaged record with valid ones after it looks like
//!   corruption);
//! - a misdirected log write is found as damage, or costs at most the newest acknowledged records: one
//!   that lands on the newest durable record, or lands ahead of its aim and is then cut off with the
//!   file's tail, leaves nothing a reader can tell from a torn write (for us as for ZooKeeper and etcd:
//!   only the ensemble still has those records); it never makes recovery skip or invent a txn;
//! - a flipped bit anywhere but in the newest record is found (a flip there cannot be told from a torn
//!   write, for us as for ZooKeeper, and the writer never acknowledged a record after it);
//! - nothing recovered was never appended, and the tree recovered (from whichever snapshot and logs)
//!   is the one the txns make.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fk_engine::damage::keep_what_precedes;
use fk_engine::files::{LOG_PREFIX, SNAPSHOT_PREFIX, list_in};
use fk_engine::log::{LogWriter, PwriteDevice, read_log_in};
use fk_engine::recovery::{RecoverLimits, recover_in};
use fk_engine::snap::{Compression, WriteOptions, write_snapshot_in};
use fk_engine::tree::{DataTree, TreeOptions};
use fk_net::client::OpCode;
use fk_net::txn::{SetDataTxn, Txn, TxnBody, TxnHeader};

use super::fs::{FsFaults, FsTally, Held, SimFs, disk_trouble};
use super::rng::Rng;

/// What one seed did and found.
#[derive(Debug, Clone)]
pub struct StorageReport {
    pub seed: u64,
    pub batches: u64,
    pub acknowledged: u64,
    pub failed_appends: u64,
    pub crashes: u64,
    /// Recoveries that reported damage after a flipped bit.
    pub damage_found: u64,
    /// Recoveries that reported damage with no bit flipped: a crash kept an unsynced write's sectors out
    /// of order, or a write was misdirected. A damaged record with valid ones after it is what
    /// corruption looks like, so the engine refuses to guess (a standalone server stops and names
    /// fktool; a member recovers from its ensemble).
    pub damage_after_tear: u64,
    /// Snapshots written (of the tree just recovered).
    pub snapshots: u64,
    /// Recoveries stopped by an I/O error (EIO) or a crash, and run again.
    pub recoveries_retried: u64,
    /// Flipped bits recovery did not need to report: in padding or in a torn tail past every
    /// acknowledged record.
    pub flips_harmless: u64,
    /// Acknowledged txns a misdirected log write cost without a trace (see the module's notes).
    pub lost_to_misdirects: u64,
    pub tally: FsTally,
    pub result: Result<(), String>,
}

const DIR: &str = "/data/version-2";

fn txn(zxid: i64, size: usize) -> Txn {
    let body = TxnBody::SetData(SetDataTxn { path: "/".into(), data: Some(vec![zxid as u8; size]), version: -1 });
    let header = TxnHeader { client_id: 1, cxid: zxid as i32, zxid, time: zxid, txn_type: OpCode::SetData.as_i32() };
    Txn { header, body, digest: None }
}

/// Why a recovery did not finish.
enum Stop {
    /// An I/O error or a crash: start the server again.
    Restart,
    Failed(String),
}

struct Run {
    rng: Rng,
    fs: SimFs,
    dir: PathBuf,
    prealloc: u64,
    /// Every txn durable or being appended, by zxid order (the model).
    appended: Vec<Txn>,
    /// The highest zxid the writer reported durable.
    acknowledged: i64,
    /// A bit was flipped, a write misdirected, or a crash kept sectors out of order, earlier in the run:
    /// damage may be found (an old one too, in a file recovery did not read before).
    damage_explained: bool,
    /// Misdirected writes up to the last recovery.
    misdirects_seen: u64,
    report: StorageReport,
}

/// Runs `seed` (with `planted`, if any, on this thread).
pub fn run_storage_seed(seed: u64, planted: Option<fk_engine::planted::PlantedBug>) -> StorageReport {
    fk_engine::planted::plant(planted);
    let mut rng = Rng::new(seed);
    let (eio, crash_in_sync) = (*rng.pick(&[0.0, 0.02, 0.1]), *rng.pick(&[0.0, 0.02, 0.05]));
    let faults = FsFaults { eio, crash_in_sync, enospc: *rng.pick(&[0.0, 0.01]), reorder: true };
    let fs = SimFs::new(rng.fork(), faults);
    let prealloc = *rng.pick(&[0, 4096, 16 * 1024]);
    let report = StorageReport {
        seed,
        batches: 0,
        acknowledged: 0,
        failed_appends: 0,
        crashes: 0,
        damage_found: 0,
        damage_after_tear: 0,
        recoveries_retried: 0,
        snapshots: 0,
        flips_harmless: 0,
        lost_to_misdirects: 0,
        tally: FsTally::default(),
        result: Ok(()),
    };
    let mut run = Run {
        rng,
        fs,
        dir: PathBuf::from(DIR),
        prealloc,
        appended: Vec::new(),
        acknowledged: 0,
        damage_explained: false,
        misdirects_seen: 0,
        report,
    };
    let result = run.go();
    fk_engine::planted::plant(None);
    run.report.tally = run.fs.tally();
    run.report.result = result;
    run.report
}

impl Run {
    fn writer(&self, last_zxid: i64) -> LogWriter {
        let fs: Arc<dyn fk_engine::fs::Fs> = Arc::new(self.fs.clone());
        LogWriter::on(fs, &self.dir, Box::new(PwriteDevice), self.prealloc, true, last_zxid)
    }

    /// Whether a write was misdirected since the last recovery.
    fn misdirected(&self) -> bool {
        self.fs.tally().misdirected > self.misdirects_seen
    }

    fn go(&mut self) -> Result<(), String> {
        let mut writer = self.writer(0);
        let mut last = 0;
        for _ in 0..self.rng.between(5, 12) {
            // Appends until the crash.
            let mut died_in_sync = false;
            for _ in 0..self.rng.between(1, 40) {
                let count = self.rng.between(1, 6) as i64;
                let batch: Vec<Txn> =
                    (last + 1..=last + count).map(|z| txn(z, self.rng.below(1_500) as usize)).collect();
                self.appended.truncate(last as usize);
                self.appended.extend(batch.iter().cloned());
                self.report.batches += 1;
                if self.rng.chance(0.01) {
                    self.fs.misdirect_next_write();
                }
                match writer.append(&batch) {
                    Ok(_) => {
                        last += count;
                        self.acknowledged = last;
                        self.report.acknowledged += count as u64;
                    }
                    Err(_) if self.fs.take_crash() => {
                        died_in_sync = true;
                        break;
                    }
                    Err(_) => {
                        self.report.failed_appends += 1;
                        // The server's log stage stops on a failed append; a member's pipeline settles
                        // and rewinds. Either way the batch is not acknowledged; try it once more after
                        // the rewind, as a leader would resend it.
                        if writer.rewind().is_err() {
                            break;
                        }
                    }
                }
                if self.rng.chance(0.05) {
                    writer.roll();
                }
            }
            self.report.crashes += 1;
            if !died_in_sync {
                self.fs.crash();
            }
            let mut flipped = self.rng.chance(0.3).then(|| self.flip_a_bit()).flatten();
            // Start again (and again, should the machine die while it writes a snapshot).
            last = loop {
                let tree = self.recover(flipped.take())?;
                if !self.rng.chance(0.3) {
                    break tree.last_processed_zxid();
                }
                let compression = *self.rng.pick(&[Compression::None, Compression::Gzip, Compression::Snappy]);
                let options = WriteOptions { force_sync: true, compression, last_zxid_trailer: false };
                match write_snapshot_in(&self.fs, &Held(&tree), &self.dir, options) {
                    Ok(_) => self.report.snapshots += 1,
                    Err(_) if self.fs.take_crash() => continue,
                    Err(_) => {}
                }
                break tree.last_processed_zxid();
            };
            writer = self.writer(last);
        }
        Ok(())
    }

    /// Flips a bit anywhere in the logs and snapshots but in the newest record (of the newest log
    /// holding records); returns where (file, offset).
    fn flip_a_bit(&mut self) -> Option<(PathBuf, usize)> {
        let logs = list_in(&self.fs, &self.dir, LOG_PREFIX).ok()?;
        let newest = logs.iter().rev().find_map(|(_, path)| {
            let log = read_log_in(&self.fs, path).ok()?;
            log.records.last().map(|r| (path.clone(), r.offset as usize))
        });
        let snapshots = list_in(&self.fs, &self.dir, SNAPSHOT_PREFIX).ok()?;
        let files: Vec<PathBuf> = logs.into_iter().chain(snapshots).map(|(_, path)| path).collect();
        if files.is_empty() {
            return None;
        }
        let path = self.rng.pick(&files).clone();
        let len = self.fs.len(&path)?;
        let limit = match &newest {
            Some((newest_path, offset)) if *newest_path == path => *offset,
            _ => len,
        };
        if limit == 0 {
            return None;
        }
        let offset = self.rng.below(limit as u64) as usize;
        let bit = self.rng.below(8) as u8;
        self.fs.flip_bit(&path, offset, bit);
        Some((path, offset))
    }

    /// Recovers and checks it against the model; the tree the run goes on from. On damage, it keeps what
    /// precedes it as a member does (fk_engine::damage) — which would then recover the rest from its
    /// ensemble; alone, the run goes on without it. An I/O error (a failed fsync while recovery repairs,
    /// truncates or sets damage aside) stops start-up, as does the machine dying under it; the server is
    /// started again.
    fn recover(&mut self, flipped: Option<(PathBuf, usize)>) -> Result<DataTree, String> {
        for _ in 0..10 {
            self.damage_explained |= flipped.is_some() || self.fs.last_crash_out_of_order() || self.misdirected();
            match self.recover_once(&flipped) {
                Err(Stop::Restart) => self.report.recoveries_retried += 1,
                Err(Stop::Failed(reason)) => return Err(reason),
                Ok(tree) => {
                    self.misdirects_seen = self.fs.tally().misdirected;
                    return Ok(tree);
                }
            }
        }
        Err("recovery kept failing with I/O errors".into())
    }

    fn recover_once(&mut self, flipped: &Option<(PathBuf, usize)>) -> Result<DataTree, Stop> {
        let options = TreeOptions::fixed_seed(true);
        let dir = self.dir.clone();
        let what = match flipped {
            Some((path, offset)) => format!("a bit flipped at offset {offset} of {}", path.display()),
            None => "no bit flipped".to_owned(),
        };
        let restart_or = |fs: &SimFs, error: String| {
            let died = fs.take_crash();
            if died || disk_trouble(&error) { Stop::Restart } else { Stop::Failed(error) }
        };
        match recover_in(&self.fs, &dir, &dir, options, RecoverLimits::default()) {
            Ok(recovered) => {
                let reached = recovered.tree.last_processed_zxid();
                if reached < self.acknowledged && self.misdirected() {
                    self.report.lost_to_misdirects += (self.acknowledged - reached) as u64;
                } else if reached < self.acknowledged {
                    return Err(Stop::Failed(format!(
                        "recovery reached 0x{reached:x}, but the writer acknowledged up to 0x{:x} ({what})",
                        self.acknowledged
                    )));
                }
                self.check_logged(&dir, reached).map_err(Stop::Failed)?;
                self.check_tree(&recovered.tree).map_err(Stop::Failed)?;
                if flipped.is_some() {
                    self.report.flips_harmless += 1;
                }
                self.acknowledged = reached;
                Ok(recovered.tree)
            }
            Err(error) if error.is_damage() && self.damage_explained => {
                // As a member does: what precedes the damage is kept (and must be the model's own).
                let (kept, _) = keep_what_precedes(&self.fs, &dir, &dir, options)
                    .map_err(|e| restart_or(&self.fs, format!("keeping what precedes the damage ({what}): {e}")))?;
                let reached = kept.tree.last_processed_zxid();
                self.check_logged(&dir, reached).map_err(Stop::Failed)?;
                self.check_tree(&kept.tree).map_err(Stop::Failed)?;
                if flipped.is_some() {
                    self.report.damage_found += 1;
                } else {
                    self.report.damage_after_tear += 1;
                }
                self.acknowledged = reached;
                Ok(kept.tree)
            }
            Err(error) => Err(restart_or(&self.fs, format!("recovery failed ({what}): {error}"))),
        }
    }

    /// The recovered tree is the model's txns applied in order, up to its last zxid.
    fn check_tree(&self, tree: &DataTree) -> Result<(), String> {
        let mut model = DataTree::new(TreeOptions::fixed_seed(true));
        let mut triggers = Vec::new();
        for txn in &self.appended[..tree.last_processed_zxid() as usize] {
            fk_engine::txn::apply(&mut model, txn, &mut triggers);
            triggers.clear();
        }
        if model.digest() != tree.digest() {
            return Err(format!(
                "the tree recovered at 0x{:x} is not the one its txns make",
                tree.last_processed_zxid()
            ));
        }
        Ok(())
    }

    /// Every record the logs hold up to `zxid` is the model's txn of that zxid.
    fn check_logged(&self, dir: &Path, zxid: i64) -> Result<(), String> {
        for (_, path) in list_in(&self.fs, dir, LOG_PREFIX).map_err(|e| e.to_string())? {
            let Ok(log) = read_log_in(&self.fs, &path) else { continue };
            for record in log.records.iter().filter(|r| r.txn.header.zxid <= zxid) {
                let z = record.txn.header.zxid;
                if self.appended.get(z as usize - 1) != Some(&record.txn) {
                    return Err(format!("{} holds at zxid 0x{z:x} a txn never appended there", path.display()));
                }
            }
        }
        Ok(())
    }
}
