//! The sequencer thread: drives the pure [`crate::sequencer::Sequencer`] with what the shards send and
//! the clocks, holding the tree's read lock for each step, and hands proposals to the log stage and
//! notices to the shards.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use fk_engine::tree::DataTree;
use fk_net::txn::Txn;

use super::Shared;
use super::messages::*;
use super::replies::{self, Replies};
use crate::sequencer::{Notice, Now, Sequencer, SequencerInput, SequencerSettings};

/// Messages taken per batch: enough to amortise the tree lock and the hand-off, small enough to keep
/// latency low under a flood.
const BATCH_MAX: usize = 4096;

/// The clocks a step is given.
pub struct Clock {
    /// The monotonic clock's zero.
    origin: Instant,
}

impl Clock {
    pub fn now(&self) -> Now {
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Now { mono_ms: self.origin.elapsed().as_millis() as u64, wall_ms }
    }

    fn instant_at(&self, mono_ms: u64) -> Instant {
        self.origin + Duration::from_millis(mono_ms)
    }
}

/// What one step hands on: txns for the log, routes for the applier, and barriers already answered.
struct Handoff {
    txns: Vec<Txn>,
    routes: Vec<PendingRoute>,
    answered: Replies,
}

/// What a 4lw inspection sees: the core, and the time, to turn its monotonic times into dates.
pub struct SequencerState<'a> {
    pub core: &'a Sequencer,
    pub now: Now,
}

impl SequencerState<'_> {
    /// Wall-clock ms of a monotonic time, for the `dump` 4lw.
    pub fn wall_ms_at(&self, mono_ms: u64) -> i64 {
        self.now.wall_ms + mono_ms as i64 - self.now.mono_ms as i64
    }
}

pub struct SequencerThread {
    core: Sequencer,
    clock: Clock,
    shared: Arc<Shared>,
    rx: Receiver<SequencerMsg>,
    /// Txns go to the log stage; their routes, separately, to the applier.
    log: Sender<Vec<Txn>>,
    routes: Sender<Vec<PendingRoute>>,
    /// The last zxid proposed: what a barrier waits for.
    last_zxid: i64,
}

impl SequencerThread {
    pub fn new(
        shared: Arc<Shared>,
        rx: Receiver<SequencerMsg>,
        log: Sender<Vec<Txn>>,
        routes: Sender<Vec<PendingRoute>>,
    ) -> Self {
        let clock = Clock { origin: Instant::now() };
        let c = &shared.config;
        let settings = SequencerSettings {
            prep: crate::prep::PrepSettings {
                extended_types: c.extended_types_enabled,
                skip_acl: c.skip_acl,
                reconfig_enabled: c.reconfig_enabled,
            },
            server_id: c.my_id.map_or(1, |id| id as u8),
            tick_ms: c.tick_time_ms as u64,
            min_session_timeout_ms: c.min_session_timeout_ms,
            max_session_timeout_ms: c.max_session_timeout_ms,
            container_check_interval_ms: c.container_check_interval_ms,
            container_max_per_minute: c.container_max_per_minute,
        };
        let (core, last_zxid) = {
            let tree = shared.tree.read();
            (Sequencer::new(settings, &tree, clock.now()), tree.last_processed_zxid())
        };
        SequencerThread { core, clock, shared, rx, log, routes, last_zxid }
    }

    pub fn run(mut self) {
        let mut inputs = Vec::with_capacity(BATCH_MAX);
        loop {
            let deadline = self.clock.instant_at(self.core.next_deadline_ms());
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(msg) => self.take(msg, &mut inputs),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while inputs.len() < BATCH_MAX {
                match self.rx.try_recv() {
                    Ok(msg) => self.take(msg, &mut inputs),
                    Err(_) => break,
                }
            }
            let shared = self.shared.clone();
            let tree = shared.tree.read();
            let output = self.core.step(self.clock.now(), inputs.drain(..), &tree);
            let handoff = self.split(output.proposals, &tree);
            drop(tree);
            self.hand_on(handoff);
            for notice in output.notices {
                let (shard, msg) = shard_message(notice);
                self.shared.shards[shard].send(msg);
            }
        }
    }

    /// Splits proposals into the replicated record (txns, for the log) and local routing (for the
    /// applier). A barrier whose txns are all applied already (`tree` is the state the step saw) is
    /// answered at once: the applier queued the replies of those txns for the shards before the tree
    /// showed them, so this answer comes after them.
    fn split(&mut self, proposals: Vec<Proposal>, tree: &DataTree) -> Handoff {
        let mut handoff = Handoff { txns: Vec::new(), routes: Vec::new(), answered: Vec::new() };
        for Proposal { txn, route } in proposals {
            if let Some(txn) = txn {
                self.last_zxid = txn.header.zxid;
                handoff.txns.push(txn);
            }
            match route {
                Route::None => {}
                route if route.is_barrier() && self.last_zxid <= tree.last_processed_zxid() => {
                    handoff.answered.resize_with(self.shared.shards.len(), Vec::new);
                    replies::route(route, None, tree.last_processed_zxid(), 0, tree, &mut handoff.answered);
                }
                route => handoff.routes.push(PendingRoute { zxid: self.last_zxid, route }),
            }
        }
        handoff
    }

    /// Sends what a step decided, after the tree's lock is let go (the applier may need it to make room
    /// in these channels). Routes go before txns, so that each is waiting when its txn is committed.
    fn hand_on(&self, handoff: Handoff) {
        let Handoff { txns, routes, answered } = handoff;
        for (shard, replies) in answered.into_iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            let batch = AppliedBatch { triggers: Arc::new(Vec::new()), replies };
            self.shared.shards[shard].send(ShardMsg::Applied(batch));
        }
        if !routes.is_empty() {
            self.routes.send(routes).expect("applier thread is gone");
        }
        if !txns.is_empty() {
            self.log.send(txns).expect("log thread is gone");
        }
    }

    /// Queues an input; an inspection runs at once, on the state as of the last step.
    fn take(&self, msg: SequencerMsg, inputs: &mut Vec<SequencerInput>) {
        match msg {
            SequencerMsg::Input(input) => inputs.push(input),
            SequencerMsg::Inspect(f) => f(&SequencerState { core: &self.core, now: self.clock.now() }),
        }
    }
}

fn shard_message(notice: Notice) -> (usize, ShardMsg) {
    match notice {
        Notice::Reattached { origin, session_id, timeout_ms } => {
            (origin.shard, ShardMsg::Reattached { conn: origin.conn, session_id, timeout_ms })
        }
        Notice::Refused { origin } => (origin.shard, ShardMsg::ConnectRefused { conn: origin.conn }),
        Notice::Close { origin, reason } => (origin.shard, ShardMsg::Close { conn: origin.conn, reason }),
    }
}
