//! The sequencer thread (standalone): drives the pure [`crate::sequencer::Sequencer`] with what the
//! shards send and the clocks, holding the tree's read lock for each step, and hands proposals to the
//! log stage and notices to the shards. An ensemble's leader drives the same [`Sequencing`] from its
//! member thread ([`super::member`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use fk_engine::tree::DataTree;
use fk_net::txn::Txn;

use super::Shared;
use super::messages::*;
use super::replies::{self, Replies};
use crate::sequencer::{Notice, Now, Sequencer, SequencerInput, SequencerSettings};
use crate::zab::{Entry, LinkId};

/// Messages taken per batch: enough to amortise the tree lock and the hand-off, small enough to keep
/// latency low under a flood.
pub const BATCH_MAX: usize = 4096;

/// The clocks a step is given.
#[derive(Clone, Copy)]
pub struct Clock {
    /// The monotonic clock's zero.
    origin: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock { origin: Instant::now() }
    }

    pub fn now(&self) -> Now {
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Now { mono_ms: self.origin.elapsed().as_millis() as u64, wall_ms }
    }

    pub fn instant_at(&self, mono_ms: u64) -> Instant {
        self.origin + Duration::from_millis(mono_ms)
    }
}

/// What a 4lw inspection sees: the core (none on a learner, or between roles), and the time, to turn
/// its monotonic times into dates.
pub struct SequencerState<'a> {
    pub core: Option<&'a Sequencer>,
    pub now: Now,
}

impl SequencerState<'_> {
    /// Wall-clock ms of a monotonic time, for the `dump` 4lw.
    pub fn wall_ms_at(&self, mono_ms: u64) -> i64 {
        self.now.wall_ms + mono_ms as i64 - self.now.mono_ms as i64
    }
}

/// The sequencer's settings from the configuration.
pub fn settings(config: &crate::config::Config) -> SequencerSettings {
    SequencerSettings {
        prep: crate::prep::PrepSettings {
            extended_types: config.extended_types_enabled,
            skip_acl: config.skip_acl,
            reconfig_enabled: config.reconfig_enabled,
        },
        server_id: config.my_id.map_or(1, |id| id as u8),
        tick_ms: config.tick_time_ms as u64,
        min_session_timeout_ms: config.min_session_timeout_ms,
        max_session_timeout_ms: config.max_session_timeout_ms,
        container_check_interval_ms: config.container_check_interval_ms,
        container_max_per_minute: config.container_max_per_minute,
    }
}

/// What a step leaves for a leader to tell its learners.
#[derive(Default)]
pub struct ForLearners {
    /// The txns proposed, in order, as PROPOSAL bytes (already on their way to the log); only when
    /// asked for.
    pub entries: Vec<Entry>,
    /// Learners' syncs, each after the last zxid proposed before it.
    pub syncs: Vec<(LinkId, i64)>,
    /// Answers to learners' REVALIDATEs: (link, session, valid).
    pub revalidated: Vec<(LinkId, i64, bool)>,
}

/// The sequencer core and where its decisions go: txns to the log stage, routes to the applier,
/// notices and answered barriers to the shards.
pub struct Sequencing {
    pub core: Sequencer,
    log: Sender<LogMsg>,
    routes: Sender<Vec<PendingRoute>>,
    /// The last zxid proposed: what a barrier waits for.
    last_zxid: i64,
}

/// What one step hands on: txns for the log, routes for the applier, and barriers already answered.
struct Handoff {
    txns: Vec<Txn>,
    routes: Vec<PendingRoute>,
    answered: Replies,
}

impl Sequencing {
    /// A core starting after the tree's last txn.
    pub fn new(shared: &Shared, now: Now, log: Sender<LogMsg>, routes: Sender<Vec<PendingRoute>>) -> Sequencing {
        let tree = shared.tree.read();
        let core = Sequencer::new(settings(&shared.config), &tree, now);
        Sequencing { core, log, routes, last_zxid: tree.last_processed_zxid() }
    }

    /// A leader's zxids continue at its epoch's start.
    pub fn start_epoch(&mut self, epoch: i64) {
        self.core.start_epoch(epoch);
    }

    /// Runs one step of the core on `inputs` and hands its results on; returns what concerns learners
    /// (with the txns' bytes if `propose`).
    pub fn step(&mut self, shared: &Shared, now: Now, inputs: &mut Vec<SequencerInput>, propose: bool) -> ForLearners {
        let mut for_learners = ForLearners::default();
        let tree = shared.tree.read();
        let output = self.core.step(now, inputs.drain(..), &tree);
        let handoff = self.split(shared, output.proposals, &tree, &mut for_learners);
        drop(tree);
        for notice in output.notices {
            match notice {
                Notice::Revalidated { link, session_id, valid } => {
                    for_learners.revalidated.push((link, session_id, valid))
                }
                notice => {
                    let (shard, msg) = shard_message(notice);
                    shared.shards[shard].send(msg);
                }
            }
        }
        if propose {
            for_learners.entries = handoff.txns.iter().map(entry).collect();
        }
        self.hand_on(shared, handoff);
        for_learners
    }

    /// Splits proposals into the replicated record (txns, for the log) and local routing (for the
    /// applier). A barrier whose txns are all applied already (`tree` is the state the step saw) is
    /// answered at once: the applier queued the replies of those txns for the shards before the tree
    /// showed them, so this answer comes after them.
    fn split(
        &mut self,
        shared: &Shared,
        proposals: Vec<Proposal>,
        tree: &DataTree,
        learners: &mut ForLearners,
    ) -> Handoff {
        let mut handoff = Handoff { txns: Vec::new(), routes: Vec::new(), answered: Vec::new() };
        for Proposal { txn, route } in proposals {
            if let Some(txn) = txn {
                self.last_zxid = txn.header.zxid;
                handoff.txns.push(txn);
            }
            match route {
                Route::None => {}
                Route::LearnerSync { link } => learners.syncs.push((link, self.last_zxid)),
                route if route.is_barrier() && self.last_zxid <= tree.last_processed_zxid() => {
                    handoff.answered.resize_with(shared.shards.len(), Vec::new);
                    replies::route(route, None, tree.last_processed_zxid(), 0, tree, &mut handoff.answered);
                }
                route => handoff.routes.push(PendingRoute { wait: Wait::Zxid(self.last_zxid), route }),
            }
        }
        handoff
    }

    /// Sends what a step decided, after the tree's lock is let go (the applier may need it to make room
    /// in these channels). Routes go before txns, so that each is waiting when its txn is committed.
    fn hand_on(&self, shared: &Shared, handoff: Handoff) {
        let Handoff { txns, routes, answered } = handoff;
        for (shard, replies) in answered.into_iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            let batch = AppliedBatch { triggers: Arc::new(Vec::new()), replies };
            shared.shards[shard].send(ShardMsg::Applied(batch));
        }
        if !routes.is_empty() {
            self.routes.send(routes).expect("applier thread is gone");
        }
        if !txns.is_empty() {
            self.log.send(LogMsg::Txns(txns)).expect("log thread is gone");
        }
    }
}

pub struct SequencerThread {
    sequencing: Sequencing,
    clock: Clock,
    shared: Arc<Shared>,
    rx: Receiver<SequencerMsg>,
}

impl SequencerThread {
    pub fn new(
        shared: Arc<Shared>,
        rx: Receiver<SequencerMsg>,
        log: Sender<LogMsg>,
        routes: Sender<Vec<PendingRoute>>,
    ) -> Self {
        let clock = Clock::start();
        let sequencing = Sequencing::new(&shared, clock.now(), log, routes);
        SequencerThread { sequencing, clock, shared, rx }
    }

    pub fn run(mut self) {
        let mut inputs = Vec::with_capacity(BATCH_MAX);
        loop {
            let deadline = self.clock.instant_at(self.sequencing.core.next_deadline_ms());
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
            let for_learners = self.sequencing.step(&self.shared, self.clock.now(), &mut inputs, false);
            debug_assert!(for_learners.syncs.is_empty() && for_learners.revalidated.is_empty());
        }
    }

    /// Queues an input; an inspection runs at once, on the state as of the last step.
    fn take(&self, msg: SequencerMsg, inputs: &mut Vec<SequencerInput>) {
        match msg {
            SequencerMsg::Input(input) => inputs.push(input),
            SequencerMsg::Inspect(f) => f(&SequencerState { core: Some(&self.sequencing.core), now: self.clock.now() }),
            SequencerMsg::Quorum(_) => {
                unreachable!("a standalone server has no quorum")
            }
        }
    }
}

/// A txn as a PROPOSAL carries it: the bytes of its log record's entry.
pub fn entry(txn: &Txn) -> Entry {
    let mut bytes = Vec::new();
    txn.encode(&mut bytes);
    Entry { zxid: txn.header.zxid, bytes: bytes.into() }
}

pub fn shard_message(notice: Notice) -> (usize, ShardMsg) {
    match notice {
        Notice::Reattached { origin, session_id, timeout_ms } => {
            (origin.shard, ShardMsg::Reattached { conn: origin.conn, session_id, timeout_ms })
        }
        Notice::Refused { origin } => (origin.shard, ShardMsg::ConnectRefused { conn: origin.conn }),
        Notice::Close { origin, reason } => (origin.shard, ShardMsg::Close { conn: origin.conn, reason }),
        Notice::Revalidated { .. } => unreachable!("answered to the learner, not a shard"),
    }
}
