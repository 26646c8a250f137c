//! A sequencer step's results, split by where they go: txns for the log (and, on a leader, the
//! learners), routes for the applier, learners' syncs and revalidations for the ZAB leader, notices
//! for the shards. Pure, so the standalone sequencer thread, an ensemble member and the simulator hand
//! on exactly the same things.

use fk_engine::tree::DataTree;
use fk_net::txn::Txn;

use super::{Notice, Now, PendingRoute, Proposal, Route, Sequencer, SequencerInput, Wait};
use crate::zab::LinkId;

/// What one step hands on, in the order a driver must pass it on: routes before txns (each route
/// must be waiting in the applier before its txn can be applied).
#[derive(Default)]
pub struct Handoff {
    pub routes: Vec<PendingRoute>,
    /// A barrier route whose txns may all be applied already: the applier must look without a txn.
    pub wake_applier: bool,
    /// In zxid order.
    pub txns: Vec<Txn>,
    /// Learners' syncs, each after the last zxid proposed before it (a leader's).
    pub learner_syncs: Vec<(LinkId, i64)>,
    /// Answers to learners' REVALIDATEs: (link, session, valid).
    pub revalidated: Vec<(LinkId, i64, bool)>,
    /// For the shards.
    pub notices: Vec<Notice>,
}

/// The sequencer core and the last zxid it proposed: what a barrier waits for.
pub struct Sequencing {
    pub core: Sequencer,
    last_zxid: i64,
}

impl Sequencing {
    /// A core starting after `tree`'s last txn.
    pub fn new(core: Sequencer, tree: &DataTree) -> Sequencing {
        Sequencing { core, last_zxid: tree.last_processed_zxid() }
    }

    /// Runs one step of the core on `inputs` against `tree` (the last applied state).
    pub fn step(&mut self, now: Now, inputs: impl IntoIterator<Item = SequencerInput>, tree: &DataTree) -> Handoff {
        let output = self.core.step(now, inputs, tree);
        let mut handoff = Handoff::default();
        for Proposal { txn, route } in output.proposals {
            if let Some(txn) = txn {
                self.last_zxid = txn.header.zxid;
                handoff.txns.push(txn);
            }
            match route {
                Route::None => {}
                Route::LearnerSync { link } => handoff.learner_syncs.push((link, self.last_zxid)),
                route => {
                    // A barrier behind txns that are all applied has nothing left to wait for: the
                    // applier answers it when woken, after the replies of those txns.
                    handoff.wake_applier |= route.is_barrier() && self.last_zxid <= tree.last_processed_zxid();
                    handoff.routes.push(PendingRoute { wait: Wait::Zxid(self.last_zxid), route });
                }
            }
        }
        for notice in output.notices {
            match notice {
                Notice::Revalidated { link, session_id, valid } => handoff.revalidated.push((link, session_id, valid)),
                notice => handoff.notices.push(notice),
            }
        }
        handoff
    }
}
