//! The storage engine alone under storage faults: the real txn log writer appends batches to a
//! [`SimFs`], fsyncs fail, the machine crashes (unsynced sectors lost or torn), bits flip at rest, and
//! the real recovery rebuilds the tree. The checker holds the engine to its promises:
//!
//! - every batch the writer reported durable is recovered, txn for txn, unless recovery reports
//!   damage — and damage is reported only where a bit was flipped, or where a crash kept an unsynced
//!   write's sectors out of order (a damaged record with valid ones after it looks like corruption);
//! - a flipped bit anywhere but in the newest record is found (a flip there cannot be told from a torn
//!   write, for us as for ZooKeeper, and the writer never acknowledged a record after it);
//! - nothing recovered was never appended.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fk_engine::files::{LOG_PREFIX, list_in};
use fk_engine::log::{LogWriter, PwriteDevice, read_log_in};
use fk_engine::recovery::{RecoverLimits, recover_in};
use fk_engine::tree::TreeOptions;
use fk_net::client::OpCode;
use fk_net::txn::{SetDataTxn, Txn, TxnBody, TxnHeader};

use super::fs::{FsFaults, FsTally, SimFs};
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
    /// Recoveries that reported damage after a crash kept an unsynced write's sectors out of order:
    /// a damaged record with valid ones after it is what corruption looks like, so the engine refuses
    /// to guess (a standalone server stops and names fktool; a member recovers from its ensemble).
    pub damage_after_tear: u64,
    /// Recoveries stopped by an I/O error (EIO) or a crash, and run again.
    pub recoveries_retried: u64,
    /// Flipped bits recovery did not need to report: in padding or in a torn tail past every
    /// acknowledged record.
    pub flips_harmless: u64,
    pub tally: FsTally,
    pub result: Result<(), String>,
}

const DIR: &str = "/data/version-2";

fn txn(zxid: i64, size: usize) -> Txn {
    let body = TxnBody::SetData(SetDataTxn { path: "/".into(), data: Some(vec![zxid as u8; size]), version: -1 });
    let header = TxnHeader { client_id: 1, cxid: zxid as i32, zxid, time: zxid, txn_type: OpCode::SetData.as_i32() };
    Txn { header, body, digest: None }
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
    report: StorageReport,
}

/// Runs `seed` (with `planted`, if any, on this thread).
pub fn run_storage_seed(seed: u64, planted: Option<fk_engine::planted::PlantedBug>) -> StorageReport {
    fk_engine::planted::plant(planted);
    let mut rng = Rng::new(seed);
    let faults = FsFaults { eio: *rng.pick(&[0.0, 0.02, 0.1]), crash_in_sync: *rng.pick(&[0.0, 0.02, 0.05]) };
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
        flips_harmless: 0,
        tally: FsTally::default(),
        result: Ok(()),
    };
    let mut run = Run { rng, fs, dir: PathBuf::from(DIR), prealloc, appended: Vec::new(), acknowledged: 0, report };
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
            let flipped = self.rng.chance(0.3).then(|| self.flip_a_bit()).flatten();
            let Some(recovered) = self.recover(flipped)? else { break };
            last = recovered;
            writer = self.writer(last);
        }
        Ok(())
    }

    /// Flips a bit anywhere in the logs but in the newest record (of the newest log holding records);
    /// returns where (file, offset).
    fn flip_a_bit(&mut self) -> Option<(PathBuf, usize)> {
        let logs = list_in(&self.fs, &self.dir, LOG_PREFIX).ok().filter(|logs| !logs.is_empty())?;
        let newest = logs.iter().rev().find_map(|(_, path)| {
            let log = read_log_in(&self.fs, path).ok()?;
            log.records.last().map(|r| (path.clone(), r.offset as usize))
        });
        let (_, path) = self.rng.pick(&logs).clone();
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

    /// Recovers and checks it against the model: the zxid the log goes on from, or `None` once damage
    /// was found (a member would now recover the rest from its ensemble; alone, the run ends).
    fn recover(&mut self, flipped: Option<(PathBuf, usize)>) -> Result<Option<i64>, String> {
        let options = TreeOptions::fixed_seed(true);
        let dir = self.dir.clone();
        let what = |flip: &Option<(PathBuf, usize)>| match flip {
            Some((path, offset)) => format!("a bit flipped at offset {offset} of {}", path.display()),
            None => "no bit flipped".to_owned(),
        };
        // An I/O error (a failed fsync while recovery repairs or truncates) stops start-up, as does the
        // machine dying under it; the server is started again.
        let mut attempt = recover_in(&self.fs, &dir, &dir, options, RecoverLimits::default());
        for _ in 0..10 {
            let died = self.fs.take_crash();
            match &attempt {
                Err(error) if died || (!error.is_damage() && error.to_string().contains("Input/output error")) => {
                    self.report.recoveries_retried += 1;
                    attempt = recover_in(&self.fs, &dir, &dir, options, RecoverLimits::default());
                }
                _ => break,
            }
        }
        match attempt {
            Ok(recovered) => {
                let reached = recovered.tree.last_processed_zxid();
                if reached < self.acknowledged {
                    return Err(format!(
                        "recovery reached 0x{reached:x}, but the writer acknowledged up to 0x{:x} ({})",
                        self.acknowledged,
                        what(&flipped)
                    ));
                }
                self.check_logged(&dir, reached)?;
                if flipped.is_some() {
                    self.report.flips_harmless += 1;
                }
                self.acknowledged = reached;
                Ok(Some(reached))
            }
            Err(error) if error.is_damage() && (flipped.is_some() || self.fs.last_crash_out_of_order()) => {
                if flipped.is_some() {
                    self.report.damage_found += 1;
                } else {
                    self.report.damage_after_tear += 1;
                }
                // What precedes the damage must be the model's own.
                let limits = RecoverLimits { read_only: true, stop_at_damage: true, ..RecoverLimits::default() };
                let found = recover_in(&self.fs, &dir, &dir, options, limits)
                    .map_err(|e| format!("stopping at the damage failed: {e}"))?;
                self.check_logged(&dir, found.tree.last_processed_zxid())?;
                Ok(None)
            }
            Err(error) => Err(format!("recovery failed ({}): {error}", what(&flipped))),
        }
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
