//! Settling the pipeline: what a role's end, a learner's TRUNC or SNAP, and a restore need before they
//! touch the tree or the disk.

use crossbeam_channel::Sender;

use super::messages::{ApplierMsg, LogMsg};

/// Everything sent to the log is durable and handed on; then the applier drops every waiting route
/// and applies what was logged, so the tree holds exactly the log.
pub fn settle(log: &Sender<LogMsg>, applier: &Sender<ApplierMsg>) -> anyhow::Result<()> {
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    log.send(LogMsg::Flush(done_tx)).map_err(|_| anyhow::anyhow!("the log stage is gone"))?;
    done_rx.recv().map_err(|_| anyhow::anyhow!("the log stage is gone"))?;
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    applier.send(ApplierMsg::Reset(done_tx)).map_err(|_| anyhow::anyhow!("the applier is gone"))?;
    done_rx.recv().map_err(|_| anyhow::anyhow!("the applier is gone"))?;
    Ok(())
}
